"""The layer rules of docs/DESIGN: pipelines/ is framework-free."""

from __future__ import annotations

import ast
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
