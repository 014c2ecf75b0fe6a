"""Loads in batches: one transaction for many windows leaves exactly what loading them one by one leaves."""

from __future__ import annotations

import itertools
import logging
import random
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import ConfigError, LakeError
from pipelines.lake import Lake
from pipelines.warehouse import LoadResult, Warehouse, load_window, load_windows, open_warehouse
from pipelines.warehouse.duckdb_engine import DuckDBWarehouse
from tests.warehouse import helpers
from tests.warehouse.factory import at, customer, quarantine_row, write_window
from tests.warehouse.test_load import APR, FEB, JAN, MAR, SRC, random_lake, write_scenario

COUNTS = ("window", "rows_in", "inserted", "updated", "unchanged", "quarantined")


def _counts(result: LoadResult) -> tuple[Any, ...]:
    return tuple(getattr(result, name) for name in COUNTS)


def _audit(warehouse: Warehouse) -> list[tuple[Any, ...]]:
    return sorted(
        (a["source_window"], a["status"], a["rows_in"], a["inserted"], a["updated"], a["unchanged"])
        for a in helpers.audit(warehouse)
    )


@pytest.mark.parametrize("order", list(itertools.permutations([JAN, FEB, MAR])), ids=lambda o: "")
def test_a_batch_in_any_order_equals_loading_window_by_window(
    warehouse_url: str, tmp_path: Path, lake: Lake, order: tuple[Any, ...]
) -> None:
    write_scenario(lake)
    with open_warehouse(warehouse_url) as warehouse:
        one_by_one = [_counts(load_window(warehouse, lake, SRC, w)) for w in order]
        expected, expected_audit = helpers.state(warehouse), _audit(warehouse)
        helpers.wipe(warehouse)

        batched = load_windows(warehouse, lake, SRC, list(order))

        assert all(isinstance(r, LoadResult) for r in batched)
        assert [_counts(r) for r in batched if isinstance(r, LoadResult)] == one_by_one
        assert helpers.state(warehouse) == expected
        assert _audit(warehouse) == expected_audit
        # And a second batch over the same windows changes nothing.
        again = load_windows(warehouse, lake, SRC, list(order))
        assert all(isinstance(r, LoadResult) and r.inserted == r.updated == 0 for r in again)
        assert helpers.state(warehouse) == expected


def _full_audit(warehouse: Warehouse) -> list[tuple[Any, ...]]:
    names = ("source_window", "status", "rows_in", "inserted", "updated", "unchanged", "quarantined")
    return sorted((*(a[n] for n in names), a["history_versions"]) for a in helpers.audit(warehouse))


def _written_by_its_own_window(warehouse: Warehouse) -> bool:
    """Every current row and every version names, as its load, the load of the window it came from."""
    windows = {a["load_id"]: a["source_window"] for a in helpers.audit(warehouse)}
    rows = [
        *helpers.rows(warehouse, "SELECT source_window, load_id FROM customers"),
        *helpers.rows(warehouse, "SELECT source_window, load_id FROM customer_versions"),
    ]
    return bool(rows) and all(windows[r["load_id"]] == r["source_window"] for r in rows)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_batches_on_a_loaded_warehouse_equal_loading_one_by_one(
    warehouse_url: str, lake: Lake, seed: int
) -> None:
    """Versions in several windows, ties, repeats; some windows already loaded, the batch in any order."""
    wins = random_lake(lake, seed=seed)
    rng = random.Random(seed)
    before = rng.sample(wins, 2)
    batch = rng.sample(wins, 3)  # may hold a window loaded before: a reload inside the batch
    with open_warehouse(warehouse_url) as warehouse:
        for win in before:
            load_window(warehouse, lake, SRC, win)
        one_by_one = [_counts(load_window(warehouse, lake, SRC, w)) for w in batch]
        expected, expected_audit = helpers.state(warehouse), _full_audit(warehouse)
        assert _written_by_its_own_window(warehouse)
        helpers.wipe(warehouse)
        for win in before:
            load_window(warehouse, lake, SRC, win)

        batched = load_windows(warehouse, lake, SRC, batch)

        assert [_counts(r) for r in batched if isinstance(r, LoadResult)] == one_by_one
        assert helpers.state(warehouse) == expected
        assert _full_audit(warehouse) == expected_audit
        assert _written_by_its_own_window(warehouse)


def test_a_batch_sends_the_same_statements_however_many_windows_it_holds(
    tmp_path: Path, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    wins = random_lake(lake, seed=5)
    sent: list[str] = []
    run = DuckDBWarehouse._run

    def counting(self: DuckDBWarehouse, sql: str, params: Any) -> Any:
        sent.append(sql)
        return run(self, sql, params)

    monkeypatch.setattr(DuckDBWarehouse, "_run", counting)
    per_batch = []
    for n, batch in enumerate((wins[:2], wins)):
        with open_warehouse(str(tmp_path / f"{n}.duckdb")) as warehouse:
            warehouse.ensure_schema()
            sent.clear()
            results = load_windows(warehouse, lake, SRC, batch)
            assert all(isinstance(r, LoadResult) for r in results)
            per_batch.append(len(sent))
    assert per_batch[0] == per_batch[1], per_batch


def test_a_batch_over_the_row_cap_loads_in_consecutive_transactions_with_the_same_end(
    warehouse_url: str, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More rows than one transaction may take: cut between windows, the warehouse ends as one by one."""
    import pipelines.warehouse.load as load_module

    wins = random_lake(lake, seed=4)
    sizes = [len(lake.read("normalized", SRC, "customers", w)) for w in wins]
    monkeypatch.setattr(load_module, "LOAD_BATCH_ROWS", max(sizes))  # about one window a transaction
    with open_warehouse(warehouse_url) as warehouse:
        one_by_one = [_counts(load_window(warehouse, lake, SRC, w)) for w in wins]
        expected, expected_audit = helpers.state(warehouse), _full_audit(warehouse)
        helpers.wipe(warehouse)
        began = warehouse.transaction
        transactions = 0

        def counted() -> Any:
            nonlocal transactions
            transactions += 1
            return began()

        monkeypatch.setattr(warehouse, "transaction", counted)
        batched = load_windows(warehouse, lake, SRC, wins)

        assert [_counts(r) for r in batched if isinstance(r, LoadResult)] == one_by_one
        assert helpers.state(warehouse) == expected
        assert _full_audit(warehouse) == expected_audit
        assert _written_by_its_own_window(warehouse)
    cut = load_module._by_rows(lake, SRC, wins, max(sizes))
    assert len(cut) > 1
    assert transactions == len(cut)


def test_a_bad_window_stops_only_itself(
    warehouse: Warehouse, lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    write_scenario(lake)
    rows = [customer(SRC, f"E{i}", APR, modified=at("2024-04-03")) for i in range(3)]
    write_window(lake, APR, rows, [quarantine_row(SRC, APR, 9)], raw_rows=5)  # normalized is stale

    with caplog.at_level(logging.WARNING, logger="pipelines.warehouse.load"):
        results = load_windows(warehouse, lake, SRC, [JAN, APR, FEB, MAR])

    # The batch's failure is told, not only undone: the reload one by one is slower.
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "pipelines.warehouse.load"]
    assert "loading 4 " in warning and "LakeError" in warning and "one by one" in warning

    assert [type(r).__name__ for r in results] == ["LoadResult", "LakeError", "LoadResult", "LoadResult"]
    assert isinstance(results[1], LakeError) and "raw window has 5 rows" in str(results[1])
    statuses = sorted((a["source_window"], a["status"]) for a in helpers.audit(warehouse))
    assert statuses == sorted(
        [(JAN.key, "succeeded"), (FEB.key, "succeeded"), (MAR.key, "succeeded"), (APR.key, "failed")]
    )
    keys = {c["customer_key"] for c in helpers.customers(warehouse)}
    assert keys and not any(k.startswith(f"{SRC}:E") for k in keys)


def test_duckdb_memory_limit_is_bounded_and_configurable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_warehouse(str(tmp_path / "a.duckdb")) as warehouse:
        default = warehouse.query("SELECT current_setting('memory_limit')")[0][0]
    monkeypatch.setenv("SKYSMART_DUCKDB_MEMORY_LIMIT", "1GB")
    with open_warehouse(str(tmp_path / "b.duckdb")) as warehouse:
        raised = warehouse.query("SELECT current_setting('memory_limit')")[0][0]
    assert (default, raised) == ("244.1 MiB", "953.6 MiB")  # 256 MB and 1 GB, as DuckDB shows them
    monkeypatch.setenv("SKYSMART_DUCKDB_MEMORY_LIMIT", "1GB'; DROP TABLE x; --")
    with pytest.raises(ConfigError, match="SKYSMART_DUCKDB_MEMORY_LIMIT"):
        open_warehouse(str(tmp_path / "c.duckdb"))
