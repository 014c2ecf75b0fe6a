"""Loads are idempotent, order-independent, all-or-nothing — on DuckDB and on Postgres."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import textwrap
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import pipelines.warehouse.load as load_module
from pipelines.errors import LakeError
from pipelines.lake import Lake
from pipelines.warehouse import Warehouse, load_range, load_window, open_warehouse
from tests.warehouse import helpers
from tests.warehouse.factory import at, customer, quarantine_row, window, write_window

ROOT = Path(__file__).resolve().parents[2]
SRC = "skybiz"
JAN = window(SRC, "2024-01-01", "2024-01-31")
FEB = window(SRC, "2024-02-01", "2024-02-29")
MAR = window(SRC, "2024-03-01", "2024-03-31")
APR = window(SRC, "2024-04-01", "2024-04-30")


def scenario() -> dict[Any, list[dict[str, Any]]]:
    """Three months of one source, built so that arrival order matters to a naive merge."""
    jan = [
        customer(SRC, "C001", JAN, modified=at("2024-01-10"), name="Alpha Trading"),
        # C002 goes X (Jan) -> Y (Feb) -> X again (Mar): a late Feb must split the X..X run apart.
        customer(SRC, "C002", JAN, modified=at("2024-01-12")),
        customer(SRC, "C003", JAN, modified=at("2024-01-15")),
        customer(SRC, "C005", JAN, modified=at("2024-01-20"), version=7, credit_limit=Decimal("1000.00")),
        customer(SRC, "C006", JAN, modified=at("2024-01-25"), town="Ipoh"),
        customer(SRC, "C007", JAN, modified=at("2024-01-28"), version=None, fax="+60355551234"),
        customer(SRC, "C008", JAN, modified=at("2024-01-29"), version=3, website="https://v.example.my"),
    ]
    feb = [
        customer(SRC, "C001", FEB, modified=at("2024-02-10"), name="Alpha Trading Sdn Bhd"),
        customer(SRC, "C002", FEB, modified=at("2024-02-12"), email="new@example.com.my"),
        customer(SRC, "C003", FEB, modified=at("2024-02-15")),  # touched: newer, same content
        customer(SRC, "C004", FEB, modified=at("2024-02-18")),
        customer(SRC, "C005", FEB, modified=at("2024-01-20"), version=9, credit_limit=Decimal("2000.00")),
        customer(SRC, "C006", FEB, modified=at("2024-01-05"), town="Taiping"),  # older than Jan's
        customer(SRC, "C008", FEB, modified=at("2024-01-29"), version=3, website="https://w.example.my"),
    ]
    mar = [
        customer(SRC, "C001", MAR, modified=at("2024-03-10"), name="Alpha Trading Sdn. Bhd."),
        customer(SRC, "C002", MAR, modified=at("2024-03-12")),
        customer(SRC, "C007", MAR, modified=at("2024-01-28"), version=1, fax="+60355559999"),
    ]
    return {JAN: jan, FEB: feb, MAR: mar}


def write_scenario(lake: Lake) -> dict[Any, list[dict[str, Any]]]:
    data = scenario()
    for n, (win, rows) in enumerate(data.items()):
        write_window(lake, win, rows, [quarantine_row(SRC, win, i) for i in range(n + 1)])
    return data


def test_load_twice_changes_nothing(warehouse: Warehouse, lake: Lake) -> None:
    write_scenario(lake)
    first = load_window(warehouse, lake, SRC, JAN)
    before = helpers.state(warehouse)

    again = load_window(warehouse, lake, SRC, JAN)

    assert (first.rows_in, first.inserted, first.updated, first.unchanged, first.quarantined) == (
        7,
        7,
        0,
        0,
        1,
    )
    assert (again.rows_in, again.inserted, again.updated, again.unchanged, again.quarantined) == (
        7,
        0,
        0,
        7,
        1,
    )
    assert again.load_id != first.load_id
    assert helpers.state(warehouse) == before
    audit = helpers.audit(warehouse)
    assert [(a["status"], a["inserted"], a["updated"], a["unchanged"]) for a in audit] == [
        ("succeeded", 7, 0, 0),
        ("succeeded", 0, 0, 7),
    ]
    assert audit[1]["normalized_sha256"] == lake.require_manifest("normalized", SRC, "customers", JAN).sha256
    assert audit[1]["raw_sha256"] == lake.require_manifest("raw", SRC, "customers", JAN).sha256
    assert audit[1]["history_versions"] == 0


def test_in_order_counts_and_newest_wins(warehouse: Warehouse, lake: Lake) -> None:
    data = write_scenario(lake)
    w_beats_v = data[FEB][6]["record_hash"] > data[JAN][6]["record_hash"]

    results = [load_window(warehouse, lake, SRC, w) for w in (JAN, FEB, MAR)]

    assert [(r.inserted, r.updated, r.unchanged) for r in results] == [
        (7, 0, 0),
        (1, 4 + w_beats_v, 2 - w_beats_v),
        (0, 3, 0),
    ]
    current = {c["customer_key"]: c for c in helpers.customers(warehouse)}
    assert current["skybiz:C001"]["name"] == "Alpha Trading Sdn. Bhd."
    assert current["skybiz:C002"]["record_hash"] == data[MAR][1]["record_hash"]
    assert current["skybiz:C003"]["source_window"] == FEB.key  # the touch moved modified_at forward
    assert current["skybiz:C005"]["credit_limit"] == Decimal("2000.00")  # higher source_version
    assert current["skybiz:C006"]["town"] == "Ipoh"  # an older record never overwrites a newer one
    assert current["skybiz:C007"]["fax"] == "+60355559999"  # a stamp beats no stamp
    expected_c008 = max(data[JAN][6]["record_hash"], data[FEB][6]["record_hash"])
    assert current["skybiz:C008"]["record_hash"] == expected_c008  # deterministic last tie-break
    assert len(current) == 8


ORDERS = [*itertools.permutations((JAN, FEB, MAR)), (MAR, JAN, MAR, FEB, JAN, FEB)]


def test_any_load_order_gives_the_same_tables(warehouse: Warehouse, lake: Lake) -> None:
    write_scenario(lake)
    for win in (JAN, FEB, MAR):
        load_window(warehouse, lake, SRC, win)
    in_order = helpers.state(warehouse)

    for order in ORDERS:  # one warehouse, wiped between orders: a database per order costs seconds
        helpers.wipe(warehouse)
        for win in order:
            result = load_window(warehouse, lake, SRC, win)
            assert result.rows_in == result.inserted + result.updated + result.unchanged

        names = "-".join(w.start.strftime("%b") for w in order)
        assert helpers.state(warehouse) == in_order, f"loading {names} differs from Jan-Feb-Mar"

    by_key: dict[str, list[dict[str, Any]]] = {}
    for row in in_order["history"]:
        by_key.setdefault(row["customer_key"], []).append(row)
    assert {k: len(v) for k, v in by_key.items()} == {
        "skybiz:C001": 3,
        "skybiz:C002": 3,  # X, Y, X: the late Y splits the run
        "skybiz:C003": 1,  # the touch collapses into the first version
        "skybiz:C004": 1,
        "skybiz:C005": 2,
        "skybiz:C006": 2,
        "skybiz:C007": 2,
        "skybiz:C008": 2,
    }


def random_lake(lake: Lake, seed: int) -> list[Any]:
    """Versions of 30 customers scattered over four windows: ties, touches, repeats, overlaps."""
    rng = random.Random(seed)
    wins = [JAN, FEB, MAR, APR]
    rows: dict[Any, list[dict[str, Any]]] = {w: [] for w in wins}
    for k in range(30):
        for _ in range(rng.randint(1, 5)):
            modified = at(f"2024-01-0{rng.randint(1, 4)}T0{rng.randint(0, 2)}:00")
            content = {"name": f"Kedai {k} v{rng.randint(0, 2)}"}  # few contents: equal hashes recur
            version = rng.choice([None, 1, 2])
            for win in rng.sample(wins, rng.choice([1, 1, 2])):  # some versions in two windows
                extracted = at(win.end.isoformat()) + timedelta(days=1)
                row = customer(
                    SRC, f"P{k:02d}", win, modified=modified, version=version, extracted=extracted, **content
                )
                rows[win].extend([row] * rng.choice([1, 1, 1, 2]))  # and some pages repeated
    for win in wins:
        write_window(lake, win, rows[win])
    return wins


def test_random_histories_do_not_depend_on_load_order(warehouse: Warehouse, lake: Lake) -> None:
    wins = random_lake(lake, seed=2024)
    rng = random.Random(7)
    for win in wins:
        load_window(warehouse, lake, SRC, win)
    in_order = helpers.state(warehouse)
    assert len(in_order["history"]) > len(in_order["customers"])  # there is history to get wrong

    for _ in range(3):
        order = [*rng.sample(wins, len(wins)), rng.choice(wins)]
        helpers.wipe(warehouse)
        for win in order:
            load_window(warehouse, lake, SRC, win)
        assert helpers.state(warehouse) == in_order, [w.key for w in order]


def test_history_is_a_valid_scd2_chain(warehouse: Warehouse, lake: Lake) -> None:
    write_scenario(lake)
    for win in (MAR, JAN, FEB):
        load_window(warehouse, lake, SRC, win)

    history = helpers.history(warehouse)
    current = {c["customer_key"]: c for c in helpers.customers(warehouse)}
    by_key: dict[str, list[dict[str, Any]]] = {}
    for row in history:
        by_key.setdefault(row["customer_key"], []).append(row)
    assert set(by_key) == set(current)
    for key, chain in by_key.items():
        assert [r["is_current"] for r in chain] == [False] * (len(chain) - 1) + [True], key
        assert chain[-1]["valid_to"] is None
        for before, after in itertools.pairwise(chain):
            assert before["valid_to"] == after["valid_from"], key
            assert before["record_hash"] != after["record_hash"], key  # equal neighbours collapse
        assert all(r["valid_from"] == r["modified_at"] for r in chain)
        assert chain[-1]["record_hash"] == current[key]["record_hash"]
    c002 = by_key["skybiz:C002"]
    assert [r["valid_from"] for r in c002] == [at("2024-01-12"), at("2024-02-12"), at("2024-03-12")]
    assert c002[0]["record_hash"] == c002[2]["record_hash"]
    c003 = by_key["skybiz:C003"]
    assert (c003[0]["valid_from"], c003[0]["source_window"]) == (at("2024-01-15"), JAN.key)


def test_overlapping_windows_load_no_duplicates(warehouse: Warehouse, lake: Lake) -> None:
    month = JAN
    day = window(SRC, "2024-01-15", "2024-01-15")
    # The daily run extracted on the 16th; the monthly backfill re-read January on 1 February. They share
    # four versions, and one customer was edited again on the 15th.
    backfilled, daily = at("2024-02-01T03:00"), at("2024-01-16T01:00")
    month_rows = [
        customer(SRC, f"D{i:03d}", month, modified=at(f"2024-01-{10 + i:02d}"), extracted=backfilled)
        for i in range(10)
    ]
    day_rows = [
        customer(SRC, f"D{i:03d}", day, modified=at(f"2024-01-{10 + i:02d}"), extracted=daily)
        for i in range(4)
    ]
    day_rows.append(
        customer(SRC, "D005", day, modified=at("2024-01-15T09:30"), extracted=daily, phone="+60377778888")
    )
    write_window(lake, month, month_rows)
    write_window(lake, day, day_rows)

    load_window(warehouse, lake, SRC, month)
    load_window(warehouse, lake, SRC, day)
    month_first = helpers.state(warehouse)
    helpers.wipe(warehouse)
    load_window(warehouse, lake, SRC, day)
    load_window(warehouse, lake, SRC, month)
    load_window(warehouse, lake, SRC, day)

    # Versions seen in both windows keep their earliest sighting, whichever window was loaded first.
    assert helpers.state(warehouse) == month_first

    current = helpers.customers(warehouse)
    assert len(current) == 10
    assert len({c["customer_key"] for c in current}) == 10
    assert [c["source_window"] for c in current[:4]] == [day.key] * 4
    assert next(c for c in current if c["customer_key"] == "skybiz:D005")["phone"] == "+60377778888"
    history = helpers.history(warehouse)
    assert len(history) == 11  # ten first versions and D005's edit
    assert len({(h["customer_key"], h["valid_from"]) for h in history}) == 11
    assert len(helpers.versions(warehouse)) == 11
    coverage = helpers.rows(warehouse, "SELECT coverage FROM v_window_coverage ORDER BY window_start")
    assert [c["coverage"] for c in coverage] == ["loaded", "loaded"]  # the day inside the month: no gap


def test_a_window_holding_a_key_twice(warehouse: Warehouse, lake: Lake) -> None:
    # The record was edited while the window was paged through, and a page boundary repeated a row.
    rows = [
        customer(SRC, "R1", JAN, modified=at("2024-01-03T10:00"), mobile="+60121111111"),
        customer(SRC, "R1", JAN, modified=at("2024-01-03T10:05"), mobile="+60122222222"),
        customer(SRC, "R2", JAN, modified=at("2024-01-04"), extracted=at("2024-02-01T00:00")),
        customer(SRC, "R2", JAN, modified=at("2024-01-04"), extracted=at("2024-02-01T00:01")),
    ]
    write_window(lake, JAN, rows)

    first = load_window(warehouse, lake, SRC, JAN)
    again = load_window(warehouse, lake, SRC, JAN)

    assert (first.rows_in, first.inserted, first.updated, first.unchanged) == (4, 2, 0, 2)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)
    current = {c["customer_key"]: c for c in helpers.customers(warehouse)}
    assert current["skybiz:R1"]["mobile"] == "+60122222222"
    assert current["skybiz:R2"]["extracted_at"] == at("2024-02-01T00:00")  # the earliest sighting
    history = helpers.history(warehouse)
    assert [(h["customer_key"], h["mobile"], h["is_current"]) for h in history] == [
        ("skybiz:R1", "+60121111111", False),
        ("skybiz:R1", "+60122222222", True),
        ("skybiz:R2", rows[2]["mobile"], True),
    ]
    assert len(helpers.versions(warehouse)) == 3


def test_failure_after_staging_rolls_back_and_is_audited(
    warehouse: Warehouse, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_scenario(lake)
    load_window(warehouse, lake, SRC, JAN)
    before = helpers.state(warehouse)

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full while replacing quarantine")

    # By now FEB is staged, customers merged and history rewritten inside the transaction.
    monkeypatch.setattr(load_module, "_replace_quarantine", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        load_window(warehouse, lake, SRC, FEB)

    assert helpers.state(warehouse) == before
    failed = helpers.audit(warehouse)[-1]
    assert failed["status"] == "failed"
    assert failed["source_window"] == FEB.key
    assert "RuntimeError: disk full" in failed["error"]
    assert failed["finished_at"] is not None and failed["inserted"] is None

    monkeypatch.undo()
    retry = load_window(warehouse, lake, SRC, FEB)
    assert (retry.inserted, retry.rows_in) == (1, 7)
    assert [a["status"] for a in helpers.audit(warehouse)] == ["succeeded", "failed", "succeeded"]


_CRASHING_LOAD = textwrap.dedent(
    """
    import sys, time
    import pipelines.warehouse.load as load
    from pipelines.lake import Lake
    from pipelines.warehouse import open_warehouse

    def stall(*args, **kwargs):
        print("MERGED", flush=True)  # customers and history are written, nothing is committed
        time.sleep(600)

    load._replace_quarantine = stall
    with open_warehouse(sys.argv[1]) as wh:
        load.load_window(wh, Lake(sys.argv[2]), "skybiz", sys.argv[3])
    """
)


def test_killed_load_leaves_nothing_half_written(warehouse_url: str, lake: Lake, tmp_path: Path) -> None:
    write_scenario(lake)
    with open_warehouse(warehouse_url) as wh:
        load_window(wh, lake, SRC, JAN)
        before = helpers.state(wh)
    script = tmp_path / "crashing_load.py"
    script.write_text(_CRASHING_LOAD)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(script), warehouse_url, lake.url, FEB.key],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.strip() == "MERGED", proc.stderr.read() if proc.stderr else ""
    finally:
        proc.kill()
        proc.communicate()

    with open_warehouse(warehouse_url) as wh:
        assert helpers.state(wh) == before
        audit = helpers.audit(wh)
        assert [(a["source_window"], a["status"]) for a in audit] == [
            (JAN.key, "succeeded"),
            (FEB.key, "running"),
        ]
        coverage = helpers.rows(
            wh, "SELECT source_window, coverage FROM v_window_coverage ORDER BY window_start"
        )
        assert [(c["source_window"], c["coverage"]) for c in coverage] == [
            (JAN.key, "loaded"),
            (FEB.key, "running"),
        ]

        retry = load_window(wh, lake, SRC, FEB)
        assert retry.inserted == 1
        assert helpers.audit(wh)[-1]["status"] == "succeeded"


def test_lake_windows_that_do_not_add_up_are_refused(warehouse: Warehouse, lake: Lake) -> None:
    rows = [customer(SRC, f"E{i}", JAN, modified=at("2024-01-03")) for i in range(3)]
    write_window(lake, JAN, rows, [quarantine_row(SRC, JAN, 9)], raw_rows=5)  # a stale normalized window

    with pytest.raises(LakeError, match="raw window has 5 rows but normalized 3 \\+ quarantined 1"):
        load_window(warehouse, lake, SRC, JAN)

    assert helpers.state(warehouse) == {"customers": [], "history": [], "versions": [], "quarantine": []}
    assert [a["status"] for a in helpers.audit(warehouse)] == ["failed"]


def test_missing_window_is_a_lake_error_and_audited(warehouse: Warehouse, lake: Lake) -> None:
    with pytest.raises(LakeError, match="window not found"):
        load_window(warehouse, lake, SRC, JAN)
    assert [(a["status"], a["source_window"]) for a in helpers.audit(warehouse)] == [("failed", JAN.key)]


def test_quarantine_slice_is_replaced_on_reload(warehouse: Warehouse, lake: Lake) -> None:
    jan_rows = [customer(SRC, "Q1", JAN, modified=at("2024-01-02"))]
    feb_rows = [customer(SRC, "Q2", FEB, modified=at("2024-02-02"))]
    write_window(lake, JAN, jan_rows, [quarantine_row(SRC, JAN, i, "currency_unknown") for i in (1, 4, 6)])
    write_window(lake, FEB, feb_rows, [quarantine_row(SRC, FEB, 2)])
    load_window(warehouse, lake, SRC, JAN)
    load_window(warehouse, lake, SRC, FEB)

    # Normalization was fixed and re-run: January now refuses one row, for another reason.
    write_window(lake, JAN, jan_rows, [quarantine_row(SRC, JAN, 6, "name_missing")])
    result = load_window(warehouse, lake, SRC, JAN)

    assert result.quarantined == 1
    assert [(q["source_window"], q["row_number"], q["rule"]) for q in helpers.quarantine(warehouse)] == [
        (JAN.key, 6, "name_missing"),
        (FEB.key, 2, "name_missing"),
    ]


def test_coverage_shows_loaded_windows_and_gaps(warehouse: Warehouse, lake: Lake) -> None:
    for win in (JAN, APR):
        write_window(lake, win, [customer(SRC, "G1", win, modified=at(win.start.isoformat()))])
    other = window("smartacc", "2024-02-01", "2024-02-29")
    write_window(lake, other, [customer("smartacc", "S1", other, modified=at("2024-02-02"))])
    load_window(warehouse, lake, SRC, JAN)
    load_window(warehouse, lake, SRC, APR)
    load_window(warehouse, lake, SRC, APR)
    load_window(warehouse, lake, "smartacc", other)

    coverage = helpers.rows(
        warehouse,
        "SELECT source, coverage, source_window, window_start, window_end, days, loads, rows_in "
        "FROM v_window_coverage ORDER BY source, window_start",
    )

    simplified = [
        (c["source"], c["coverage"], str(c["window_start"]), str(c["window_end"]), c["days"], c["loads"])
        for c in coverage
    ]
    assert simplified == [
        ("skybiz", "loaded", "2024-01-01", "2024-01-31", 31, 1),
        ("skybiz", "gap", "2024-02-01", "2024-03-31", 60, 0),
        ("skybiz", "loaded", "2024-04-01", "2024-04-30", 30, 2),
        ("smartacc", "loaded", "2024-02-01", "2024-02-29", 29, 1),
    ]
    assert [c["rows_in"] for c in coverage] == [1, None, 1, 1]


def test_load_range_loads_committed_windows_in_range(warehouse: Warehouse, lake: Lake) -> None:
    write_scenario(lake)

    results = load_range(warehouse, lake, SRC, JAN.start.replace(day=20), FEB.start.replace(day=3))

    assert [r.window for r in results] == [JAN.key, FEB.key]  # overlapping windows, oldest first
    assert len(helpers.customers(warehouse)) == 8
