"""Every command the README shows is run by a test, so none can rot.

The quick start runs here as written, line for line, in an empty directory beside the project's ``.venv``.
The Airflow connection examples are parsed by Airflow and resolve to skysmart's hooks. The ``make`` targets
that start long-lived or whole-suite work are run by the tests named in :data:`RUN_ELSEWHERE`; this file
checks that the Makefile recipe is what that test runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS: list[str] = re.findall(r"^```\n(.*?)^```$", README, flags=re.S | re.M)

RUN_ELSEWHERE = {
    # target: (what its recipe runs, the file that runs the same thing, how that file names it)
    "demo": ("skysmart_sandbox.demo", "tests/airflow/test_demo.py", "skysmart_sandbox.demo"),
    "airflow": ("scripts/airflow_local.py", "tests/airflow/test_ui_browser.py", "airflow_local"),
    "test": ("pytest", ".ci/run", "make test"),
}


def _block(marker: str) -> str:
    found = [b for b in BLOCKS if marker in b]
    assert len(found) == 1, f"expected one README block with {marker!r}, found {len(found)}"
    return found[0]


def _recipe(target: str) -> str:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(rf"^{target}:[^\n]*\n((?:\t[^\n]*\n)+)", makefile, flags=re.M)
    assert match, f"the Makefile has no target {target!r}"
    return match.group(1)


def test_every_readme_block_is_covered() -> None:
    covered = {"sandbox serve", "AIRFLOW_CONN_SKYBIZ_DEFAULT", "make demo", "make airflow", "SmartAcc (pages"}
    for block in BLOCKS:
        assert any(marker in block for marker in covered), f"no test runs this README block:\n{block}"


@pytest.mark.parametrize("target", sorted(RUN_ELSEWHERE))
def test_make_targets_shown_run_what_their_tests_run(target: str) -> None:
    runs, runner, name = RUN_ELSEWHERE[target]
    assert f"make {target}" in README
    assert runs in _recipe(target)
    assert name in (ROOT / runner).read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_quick_start_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    log = tmp_path / "exit-codes.log"
    # `make` is the project's Makefile; every command's exit code is logged, none stops the script.
    script = (
        f'make() {{ command make -C "{ROOT}" "$@"; }}\n'
        f'trap \'printf "%s %s\\\\0" "$?" "$BASH_COMMAND" >> {log}\' DEBUG\n'
        # DEBUG runs before each command: the code logged with a command is its predecessor's.
        + _block("sandbox serve")
        # After the block: wait for the killed sandbox to exit, and say where it listened.
        + 'trap - DEBUG; wait; echo "sandbox was at $SKYSMART_SKYBIZ_URL"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYSMART_", "AIRFLOW"))}
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    logged = [entry.split(" ", 1) for entry in log.read_text().split("\0") if entry]
    ran = [(int(code), command) for (code, _), (_, command) in zip(logged[1:], logged, strict=False)]
    # A failing `[ … ]` is the wait loop's test, not a command that failed.
    failed = [(code, command) for code, command in ran if code != 0 and not command.startswith("[ ")]
    # The only command allowed to end non-zero is the real push, with "needs review" (6), as the README says.
    assert all(code == 6 and command.strip() == ".venv/bin/skysmart push" for code, command in failed), (
        failed,
        output[-4000:],
    )
    assert "dry run: nothing was sent" in output
    assert re.search(r"created\s+│?\s+[1-9]", output), output[-3000:]
    assert re.search(r"SA-\d{3}-", result.stdout), "the read-back query found no customer created by the push"
    report = tmp_path / "report.html"
    assert report.is_file() and "<svg" in report.read_text(encoding="utf-8")
    port = re.search(r"sandbox was at \S*:(\d+)/", result.stdout)
    assert port, result.stdout[-2000:]
    # `kill %1` stopped the sandbox: nothing listens on its port any more.
    probe = subprocess.run(
        [sys.executable, "-c", f"import socket; socket.create_connection(('127.0.0.1', {port.group(1)}), 1)"],
        capture_output=True,
        check=False,
    )
    assert probe.returncode != 0


def test_the_airflow_connection_examples_resolve_to_skysmart_hooks(tmp_path: Path) -> None:
    exports = _block("AIRFLOW_CONN_SKYBIZ_DEFAULT")
    check = (
        "import json, os\n"
        "from airflow.models.connection import Connection\n"
        "out = {}\n"
        "for var in ('SKYBIZ', 'SMARTACC', 'SKYSMART_WAREHOUSE'):\n"
        "    conn = Connection.from_json(os.environ[f'AIRFLOW_CONN_{var}_DEFAULT'], conn_id=var.lower())\n"
        "    out[var] = [conn.conn_type, type(conn.get_hook()).__module__]\n"
        "print(json.dumps(out))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYSMART_", "AIRFLOW_CONN_"))}
    env["AIRFLOW_HOME"] = str(tmp_path)
    result = subprocess.run(
        ["bash", "-c", f'set -e\n{exports}\nexec {sys.executable} -c "$CHECK"'],
        env={**env, "CHECK": check},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    resolved = json.loads(result.stdout.strip().splitlines()[-1])
    assert {var: kind for var, (kind, _) in resolved.items()} == {
        "SKYBIZ": "skybiz",
        "SMARTACC": "smartacc",
        "SKYSMART_WAREHOUSE": "skysmart_warehouse",
    }
    assert all(module.startswith("skysmart_airflow.") for _, module in resolved.values()), resolved
