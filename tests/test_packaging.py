"""The wheel works without the checkout: what ``pip install skysmart`` gives a user's own Airflow.

The wheel is built and installed (not editable) into a fresh virtual environment holding the locked
dependencies, then used from an empty directory: the contracts are found where the wheel put them, the CLI
finds the sandbox's command through its entry point, and Airflow finds the provider.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UV = Path(sys.executable).with_name("uv")

pytestmark = pytest.mark.slow


def _run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
    return result.stdout


def test_an_installed_wheel_runs_without_the_checkout(tmp_path: Path) -> None:
    # An sdist first and the wheel from it, as a release is built (and nothing is built inside the checkout).
    _run(UV, "build", "--out-dir", tmp_path / "dist", "--python", sys.executable, ROOT, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("skysmart-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.startswith("skysmart-")} == {
        "pipelines",
        "skysmart_airflow",
        "skysmart_sandbox",
    }
    contracts = sorted(p.name for p in (ROOT / "data_contracts").glob("*.yaml"))
    shipped = sorted(n.rsplit("/", 1)[1] for n in names if "/share/skysmart/data_contracts/" in n)
    assert shipped == contracts

    venv = tmp_path / "venv"
    _run(UV, "venv", "-q", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    _run(UV, "pip", "install", "-q", "--python", python, "-r", ROOT / "requirements.lock")
    _run(UV, "pip", "install", "-q", "--python", python, "--no-deps", wheel)

    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYSMART_", "AIRFLOW", "PYTHONPATH"))}
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow")
    probe = (
        "import json, pipelines, pipelines.contracts as c\n"
        "from airflow.providers_manager import ProvidersManager\n"
        "c.load_contract('customer')\n"
        "hooks = ProvidersManager().hooks\n"
        "print(json.dumps({'package': pipelines.__file__, 'contracts': str(c.CONTRACTS_DIR),\n"
        "    'hooks': sorted(k for k in hooks if k.startswith(('skybiz', 'smartacc', 'skysmart')))}))\n"
    )
    found = json.loads(_run(python, "-c", probe, cwd=away, env=env).strip().splitlines()[-1])
    assert str(venv) in found["package"] and str(ROOT) not in found["package"]
    assert found["contracts"] == str(venv / "share" / "skysmart" / "data_contracts")
    assert found["hooks"] == ["skybiz", "skysmart_lake", "skysmart_warehouse", "smartacc"]
    assert "serve both emulators" in _run(venv / "bin" / "skysmart", "sandbox", "--help", cwd=away, env=env)
