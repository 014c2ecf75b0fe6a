"""Extraction end to end against a misbehaving and a live-changing sandbox."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.extract import ExtractProgress, extract_range, extract_window
from pipelines.lake import CUSTOMERS, RAW, Lake
from pipelines.steps import make_client
from pipelines.windows import plan_windows
from skysmart_sandbox.data import generate
from tests.extract.extract_oracles import (
    newest,
    present,
    settings_for,
    smartacc_version,
    today_myt,
    vendor_rows,
    wire_skybiz_window,
    wire_smartacc_customers,
    wire_smartacc_window,
)
from tests.fixtures.sandbox import SandboxFactory

FAULTS = ("500", "drop", "truncate", "non_json", "429", "500")
HISTORY_START = date(2026, 1, 1)


@pytest.mark.parametrize("source", ["skybiz", "smartacc"])
def test_faults_are_recovered_and_the_lake_is_exact(
    sandbox_factory: SandboxFactory, tmp_path: Path, source: str
) -> None:
    server = sandbox_factory(retry_after_seconds=0)
    state = server.skybiz if source == "skybiz" else server.smartacc
    lake = Lake(str(tmp_path / "lake"))
    start, end = date(2024, 1, 1), date(2024, 7, 31)  # 7 windows: one fault before each of the first 6
    todo = list(FAULTS)

    def next_fault(event: ExtractProgress) -> None:
        if event.done and todo:
            state.switches.inject(todo.pop(0))

    state.switches.inject(todo.pop(0))
    with make_client(settings_for(server), source) as client:
        results = extract_range(client, start, end, lake, progress=next_fault)

    assert not todo and not state.switches.fail_next  # every fault was met by the extraction, and survived
    for window, result in zip(plan_windows(source, start, end), results, strict=True):
        got = vendor_rows(lake.read(RAW, source, CUSTOMERS, window))
        if source == "skybiz":
            assert got == [present(r) for r in wire_skybiz_window(server, window)]
        else:
            want = wire_smartacc_window(server, window)
            assert {r["AcCustomerID"]: r for r in got} == {k: present(r) for k, r in want.items()}
            assert len(got) == len(want)
        assert result.rows == len(got)


def _lake_union(lake: Lake, source: str) -> list[dict[str, str]]:
    tables = [lake.read(RAW, source, CUSTOMERS, w) for w in lake.windows(RAW, source)]
    return vendor_rows(pa.concat_tables(tables))


# SkyBiz answers a window in one request, SmartAcc in dozens: edit often enough that both see many edits.
@pytest.mark.parametrize(("source", "every"), [("skybiz", 1), ("smartacc", 3)])
def test_history_extracted_while_customers_change_captures_every_latest_state(
    sandbox_factory: SandboxFactory, tmp_path: Path, source: str, every: int
) -> None:
    data = generate(1_000, 11, history_start=HISTORY_START, history_end=date(2026, 10, 31))
    server = sandbox_factory(data=data, seed=11, mutate_every_n_requests=every, mutate_count=2)
    state = server.skybiz if source == "skybiz" else server.smartacc
    lake = Lake(str(tmp_path / "lake"))
    today = today_myt()
    windows = plan_windows(source, HISTORY_START, today)

    with make_client(settings_for(server), source) as client:
        extract_range(client, HISTORY_START, today, lake)
        # The next incremental run, once the edits have stopped, re-reads the window they landed in.
        state.switches.mutate_every_n_requests = 0
        extract_window(client, windows[-1], lake)

    union = _lake_union(lake, source)
    if source == "skybiz":
        final = {row["CusCode"]: present(row) for w in windows for row in wire_skybiz_window(server, w)}
        got = newest(union, "CusCode", lambda r: r["DateTimeModified"])
        edited_today = [r for r in final.values() if r["DateTimeModified"] >= f"{windows[-1].start} 00:00:00"]
    else:
        final = {key: present(row) for key, row in wire_smartacc_customers(server).items()}
        got = newest(union, "AcCustomerID", smartacc_version)
        edited_today = [r for r in final.values() if windows[-1].contains(smartacc_version(r)[0])]
    assert len(final) == 1_000
    assert len(edited_today) >= 10  # customers really did change while the history was being read
    assert got == final
