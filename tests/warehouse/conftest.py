"""Every engine-level warehouse test runs on a real DuckDB file and a real Postgres database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.lake import Lake
from pipelines.warehouse import Warehouse, open_warehouse


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return str(tmp_path / "warehouse.duckdb")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def warehouse(warehouse_url: str) -> Iterator[Warehouse]:
    with open_warehouse(warehouse_url) as wh:
        yield wh


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(str(tmp_path / "lake"))
