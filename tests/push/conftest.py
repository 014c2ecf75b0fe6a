"""Push test rig: a function-scoped sandbox (the push creates customers in it), a SkyBiz client, and a
warehouse that is a real DuckDB file or a real Postgres database."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipelines.config import Settings
from pipelines.sources.skybiz.client import CreateResult, SkyBizClient
from pipelines.warehouse import Warehouse, open_warehouse
from skysmart_sandbox.server import SandboxServer


class RecordingClient:
    """The real SkyBiz client, keeping every create answer it hands back (what the push was told)."""

    def __init__(self, real: SkyBizClient) -> None:
        self.real = real
        self.answers: list[CreateResult] = []

    def create(self, documents: Sequence[Mapping[str, Any]]) -> CreateResult:
        result = self.real.create(documents)
        self.answers.append(result)
        return result

    def read_window(self, *args: Any, **kwargs: Any) -> Any:
        return self.real.read_window(*args, **kwargs)

    def close(self) -> None:
        self.real.close()


@dataclass
class PushRig:
    """What a push test talks to."""

    sandbox: SandboxServer
    client: RecordingClient
    warehouse: Warehouse
    warehouse_url: str

    @property
    def creates(self) -> list[Any]:
        """Create requests SkyBiz received, oldest first."""
        return [r for r in self.sandbox.skybiz.received if r.action == "create"]

    def assert_each_created_once(self, codes: set[str]) -> None:
        """Every code exists in SkyBiz, no answer saved one twice, and none was ever sent again once saved.

        SkyBiz cannot store a code twice; a push that resent a created customer would have been told
        "Customer code already exists" for it, so that answer must never have come back.
        """
        assert all(self.sandbox.skybiz.customer(code) is not None for code in codes)
        answers = self.client.answers
        saved = Counter(code for answer in answers if answer.ok for code in answer.successful_codes)
        assert not saved or max(saved.values()) == 1
        exists = {
            dup.cuscode
            for answer in self.client.answers
            for dup in answer.fail_details.duplicate_customers
            if dup.error == "Customer code already exists"
        }
        assert not exists & codes, f"resent after it was created: {sorted(exists & codes)[:5]}"


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
    opened: list[tuple[RecordingClient, Warehouse]] = []

    def make(url: str, *, size: int = 20, seed: int = 5) -> PushRig:
        sandbox = sandbox_factory(size=size, seed=seed)
        client = RecordingClient(SkyBizClient(Settings.from_env(sandbox.endpoints.as_env()).require_skybiz()))
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
