"""Push test rig: a function-scoped sandbox (the push creates customers in it), a SkyBiz client, and a
warehouse that is a real DuckDB file or a real Postgres database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipelines.config import Settings
from pipelines.sandbox.server import SandboxServer
from pipelines.sources.skybiz import SkyBizClient
from pipelines.warehouse import Warehouse, open_warehouse


@dataclass
class PushRig:
    """What a push test talks to."""

    sandbox: SandboxServer
    client: SkyBizClient
    warehouse: Warehouse
    warehouse_url: str

    @property
    def creates(self) -> list[Any]:
        """Create requests SkyBiz received, oldest first."""
        return [r for r in self.sandbox.skybiz.received if r.action == "create"]

    def created_codes(self) -> list[str]:
        """Every CusCode in a create SkyBiz processed (answer lost or not), in order, duplicates kept."""
        codes: list[str] = []
        for request in self.creates:
            if request.status == 200:
                codes += [d["CusCode"] for d in request.body["customer_data"]["documents"]]
        return codes


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A DuckDB file, or a fresh Postgres database."""
    if request.param == "duckdb":
        return str(tmp_path / "warehouse.duckdb")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def duckdb_url(tmp_path: Path) -> str:
    """A DuckDB file (for the tests that do not need to run on both engines)."""
    return str(tmp_path / "warehouse.duckdb")


@pytest.fixture
def make_rig(sandbox_factory: Callable[..., SandboxServer]) -> Iterator[Callable[..., PushRig]]:
    """Build a rig on a given warehouse URL; the SkyBiz sandbox is small (the push brings its customers)."""
    opened: list[tuple[SkyBizClient, Warehouse]] = []

    def make(url: str, *, size: int = 20, seed: int = 5) -> PushRig:
        sandbox = sandbox_factory(size=size, seed=seed)
        client = SkyBizClient(Settings.from_env(sandbox.endpoints.as_env()).require_skybiz())
        warehouse = open_warehouse(url)
        opened.append((client, warehouse))
        return PushRig(sandbox, client, warehouse, url)

    yield make
    for client, warehouse in opened:
        client.close()
        warehouse.close()


@pytest.fixture
def rig(make_rig: Callable[..., PushRig], warehouse_url: str) -> PushRig:
    """A rig on DuckDB and on Postgres."""
    return make_rig(warehouse_url)


@pytest.fixture
def duck_rig(make_rig: Callable[..., PushRig], duckdb_url: str) -> PushRig:
    """A rig on DuckDB only."""
    return make_rig(duckdb_url)


# -- until tests/fixtures/sandbox.py provides ``sandbox_factory`` (the sandbox work fills it in) ----------
import tests.fixtures.sandbox as _shared_sandbox_fixtures  # noqa: E402

if not hasattr(_shared_sandbox_fixtures, "sandbox_factory"):

    @pytest.fixture
    def sandbox_factory() -> Iterator[Callable[..., SandboxServer]]:
        """Started sandboxes, stopped after the test (switch fields as keyword arguments)."""
        from pipelines.sandbox.switches import Switches

        servers: list[SandboxServer] = []

        def factory(size: int = 20, seed: int = 5, **switches: Any) -> SandboxServer:
            server = SandboxServer(size=size, seed=seed, skybiz_switches=Switches(**switches)).start()
            servers.append(server)
            return server

        yield factory
        for server in servers:
            server.stop()
