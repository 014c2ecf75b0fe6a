"""Report test rig: real warehouses loaded once per module by the whole pipeline from the shared sandbox.

A DuckDB warehouse (with identity matches, so that section has numbers) and a Postgres one (a database of
its own for the module, created and dropped here; a missing server fails, never skips: the report's SQL
must hold on both engines).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
import pytest

from pipelines.config import Settings
from pipelines.identity import rebuild_matches
from pipelines.run import run_pipeline
from pipelines.warehouse import open_warehouse
from skysmart_sandbox.server import SandboxServer
from tests.fixtures.postgres import ADMIN_URL

# Three months of both sources: several windows a source, some quarantine, quality pages in the lake.
START, END = date(2024, 1, 1), date(2024, 3, 31)


@dataclass(frozen=True)
class Loaded:
    """A warehouse and lake the pipeline filled, and where the test may write reports."""

    warehouse_url: str
    lake_url: str
    out_dir: Path


def _load(sandbox: SandboxServer, warehouse_url: str, where: Path) -> Loaded:
    settings = dataclasses.replace(
        Settings.from_env(sandbox.endpoints.as_env()),
        lake_url=str(where / "lake"),
        warehouse_url=warehouse_url,
    )
    summary = run_pipeline(settings, START, END)
    assert summary is not None
    out = where / "out"
    out.mkdir()
    return Loaded(warehouse_url, str(where / "lake"), out)


@pytest.fixture(scope="module")
def loaded_duckdb(sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    """A DuckDB warehouse loaded for START..END, with ``customer_matches`` rebuilt."""
    where = tmp_path_factory.mktemp("report-duckdb")
    loaded = _load(sandbox, str(where / "warehouse.duckdb"), where)
    with open_warehouse(loaded.warehouse_url) as warehouse:
        rebuild_matches(warehouse)
    return loaded


@pytest.fixture(scope="module")
def loaded_postgres(sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """A Postgres database of this module's own, loaded for START..END (no matches: that path too)."""
    admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    name = f"skysmart_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
            yield _load(sandbox, url, tmp_path_factory.mktemp("report-postgres"))
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
