"""E-invoice test rig: the sandbox's both systems loaded into a real DuckDB file and a real Postgres database.

Each source's records go into the lake as one raw window (no HTTP: the extract is tested elsewhere), then
through normalization, the load and identity resolution, as ``skysmart run`` would take them. The sandbox's
truth (``SandboxData.einvoice``, ``matches``) is what the tests compare the view with; the pipeline never
sees it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
import pytest

from pipelines.identity import rebuild_matches
from pipelines.lake import Lake
from pipelines.normalize import normalize_window
from pipelines.warehouse import load_window, open_warehouse
from pipelines.windows import Window
from skysmart_sandbox.data import SandboxData, generate
from skysmart_sandbox.raw import write_raw_window
from tests.fixtures.postgres import ADMIN_URL

SIZE, SEED = 1_500, 15


@dataclass(frozen=True)
class Loaded:
    """A warehouse and lake filled from ``data``."""

    data: SandboxData
    warehouse_url: str
    lake_url: str
    windows: dict[str, Window]


@pytest.fixture(scope="session")
def data() -> SandboxData:
    return generate(SIZE, SEED)


def load(data: SandboxData, warehouse_url: str, where: Path) -> Loaded:
    """Every record of each source as one window, normalized, loaded, matched."""
    lake = Lake(str(where / "lake"))
    windows = {s: Window(s, date(2026, 1, 1), date(2026, 1, 31)) for s in ("skybiz", "smartacc")}
    for window in windows.values():
        write_raw_window(lake, data, window, everything=True)
        normalize_window(lake, window.source, window)
    with open_warehouse(warehouse_url) as warehouse:
        for source, window in windows.items():
            load_window(warehouse, lake, source, window)
        rebuild_matches(warehouse)
    return Loaded(data, warehouse_url, str(where / "lake"), windows)


@pytest.fixture(scope="module")
def loaded_duckdb(data: SandboxData, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    where = tmp_path_factory.mktemp("einvoice-duckdb")
    return load(data, str(where / "warehouse.duckdb"), where)


@pytest.fixture(scope="module")
def loaded_postgres(data: SandboxData, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """A Postgres database of the module's own; a missing server fails, never skips."""
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"no Postgres server at {ADMIN_URL} (trust auth, user postgres): {exc}")
    name = f"skysmart_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
            yield load(data, url, tmp_path_factory.mktemp("einvoice-postgres"))
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["duckdb", "postgres"])
def loaded(request: pytest.FixtureRequest) -> Loaded:
    """Each engine in turn."""
    fixture: Loaded = request.getfixturevalue(f"loaded_{request.param}")
    return fixture
