"""The layer rules: pipelines/ is framework-free, and the import contracts of .importlinter hold."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIPELINE_FILES = sorted((ROOT / "pipelines").rglob("*.py"))


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_pipelines_has_files() -> None:
    assert len(PIPELINE_FILES) > 5


@pytest.mark.parametrize("path", PIPELINE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pipelines_never_imports_airflow(path: Path) -> None:
    offending = sorted(m for m in _imported_modules(path) if m == "airflow" or m.startswith("airflow."))
    assert not offending, f"{path.relative_to(ROOT)} imports {offending}"


# -- import-linter: the contracts in .importlinter ------------------------------------------------------

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(cwd: Path, *args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"PYTHONPATH": str(pythonpath)} if pythonpath else {})}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_import_contracts_are_kept() -> None:
    """Sources know no storage, the sandbox and the clients stay apart, the library imports no Airflow or
    sandbox, normalizing imports no HTTP (.importlinter)."""
    run = _lint_imports(ROOT)
    contracts = re.findall(r"^\[importlinter:contract:", (ROOT / ".importlinter").read_text(), re.M)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"Contracts: {len(contracts)} kept, 0 broken." in run.stdout
    assert len(contracts) == 5


def test_wildcard_source_contracts_match_every_vendor_package() -> None:
    """The ``pipelines.sources.*.client`` patterns are not vacuous: they match each built-in source."""
    from pipelines.sources import registry

    config = (ROOT / ".importlinter").read_text()
    assert "pipelines.sources.*.client" in config and "pipelines.sources.*.normalize" in config
    for spec in registry.specs():
        for part in ("client", "normalize", "settings", "adapter"):
            assert (ROOT / "pipelines" / "sources" / spec.name / f"{part}.py").is_file(), (spec.name, part)


def test_a_client_importing_storage_breaks_the_contract(tmp_path: Path) -> None:
    """The same contract shape on a tiny package: a vendor client that imports the lake is reported."""
    package = tmp_path / "fakepipe"
    for folder in (package, package / "sources", package / "sources" / "acme"):
        folder.mkdir()
        (folder / "__init__.py").write_text("")
    (package / "lake.py").write_text("")
    (package / "sources" / "acme" / "client.py").write_text("def read():\n    from fakepipe import lake\n")
    (tmp_path / ".importlinter").write_text(
        "[importlinter]\nroot_package = fakepipe\n\n"
        "[importlinter:contract:storage]\nname = Sources know no storage\ntype = forbidden\n"
        "source_modules =\n    fakepipe.sources.*.client\nforbidden_modules =\n    fakepipe.lake\n"
    )
    run = _lint_imports(tmp_path, pythonpath=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "fakepipe.sources.acme.client -> fakepipe.lake" in run.stdout
