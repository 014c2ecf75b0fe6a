"""Identity tests run on a real DuckDB file and a real Postgres database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.warehouse import Warehouse, open_warehouse


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    """An empty warehouse with the schema created, on each engine."""
    url = str(tmp_path / "w.duckdb") if request.param == "duckdb" else request.getfixturevalue("postgres_url")
    with open_warehouse(url) as wh:
        wh.ensure_schema()
        yield wh
