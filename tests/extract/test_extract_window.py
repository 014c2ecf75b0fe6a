"""extract_window / extract_range against the sandbox over real HTTP, into real lake directories."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.config import HttpSettings
from pipelines.contracts import arrow_schema, load_contract
from pipelines.errors import ContractError, RetriesExhaustedError
from pipelines.extract import (
    ExtractProgress,
    ExtractResult,
    extract_range,
    extract_window,
    page_to_batch,
    raw_schema,
)
from pipelines.lake import CUSTOMERS, RAW, Lake
from pipelines.sources import Lookup, Page, Row
from pipelines.sources.skybiz.client import SkyBizClient
from pipelines.sources.smartacc.adapter import SmartAccWindows
from pipelines.sources.smartacc.client import SmartAccClient
from pipelines.windows import Window, plan_windows
from skysmart_sandbox.server import SandboxServer
from tests.extract.extract_oracles import (
    present,
    settings_for,
    vendor_rows,
    wire_skybiz_window,
    wire_smartacc_terms,
    wire_smartacc_window,
)
from tests.fixtures.sandbox import SandboxFactory

SKY_WINDOW = Window("skybiz", date(2024, 3, 1), date(2024, 3, 31))
SMA_WINDOW = Window("smartacc", date(2024, 3, 1), date(2024, 3, 31))


def _same_schema(table: pa.Table, contract: str) -> None:
    expected = arrow_schema(load_contract(contract))
    assert table.schema.names == expected.names
    for got, want in zip(table.schema, expected, strict=True):
        assert (got.name, got.type, got.nullable) == (want.name, want.type, want.nullable)


def test_skybiz_window_holds_exactly_what_the_server_sent(sandbox: SandboxServer, tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    before = datetime.now(UTC)
    with SkyBizClient(settings_for(sandbox).require_skybiz()) as client:
        result = extract_window(client, SKY_WINDOW, lake)
    after = datetime.now(UTC)

    wire = wire_skybiz_window(sandbox, SKY_WINDOW)
    table = lake.read(RAW, "skybiz", CUSTOMERS, SKY_WINDOW)
    assert wire, "the chosen window should hold customers"
    assert vendor_rows(table) == [present(r) for r in wire]  # same rows, same order (CusCode), same text
    assert any("." in r["CreditLimit"] for r in vendor_rows(table) if "CreditLimit" in r)  # numbers as text
    _same_schema(table, "skybiz_customer_raw")
    manifest = lake.require_manifest(RAW, "skybiz", CUSTOMERS, SKY_WINDOW)
    assert table.column("_request_id").to_pylist() == manifest.extra["request_ids"] * len(wire)
    assert re.fullmatch(r"req_[0-9a-f]{13}", manifest.extra["request_ids"][0])
    assert set(table.column("_page").to_pylist()) == {1}
    assert set(table.column("_window").to_pylist()) == {SKY_WINDOW.key}
    assert all(before <= t <= after for t in table.column("_extracted_at").to_pylist())
    assert table.column("_unknown_fields").null_count == len(wire)
    assert result == ExtractResult(
        source="skybiz",
        window=SKY_WINDOW.key,
        rows=len(wire),
        pages=1,
        data_url=lake.data_url(RAW, "skybiz", CUSTOMERS, SKY_WINDOW),
        sha256=manifest.sha256,
        seconds=result.seconds,
    )
    assert pq.read_table(result.data_url).num_rows == len(wire)


def test_smartacc_window_holds_every_customer_of_the_window_as_sent(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    events: list[ExtractProgress] = []
    with SmartAccClient(settings_for(sandbox).require_smartacc()) as client:
        result = extract_window(client, SMA_WINDOW, lake, progress=events.append, batch_rows=20)

    wire = wire_smartacc_window(sandbox, SMA_WINDOW)
    table = lake.read(RAW, "smartacc", CUSTOMERS, SMA_WINDOW)
    got = {row["AcCustomerID"]: row for row in vendor_rows(table)}
    assert len(wire) > 20, "the chosen window should span more than one page"
    assert table.num_rows == len(got) == result.rows  # each customer once
    assert got == {key: present(row) for key, row in wire.items()}
    assert all(r["EditDate"].startswith("/Date(") for r in got.values())  # ServiceStack text kept
    _same_schema(table, "smartacc_customer_raw")

    manifest = lake.require_manifest(RAW, "smartacc", CUSTOMERS, SMA_WINDOW)
    assert result.pages == manifest.extra["pages"] == len(manifest.extra["request_ids"]) >= 2
    assert set(table.column("_request_id").to_pylist()) == set(manifest.extra["request_ids"])
    assert manifest.extra["passes"] >= 1 and manifest.extra["duplicates_dropped"] >= 0
    assert manifest.extra["client"] == "pipelines.sources.smartacc.client.SmartAccClient"
    assert manifest.extra["source_host"] == sandbox.endpoints.smartacc_url.removeprefix("http://")
    # Small row groups were asked for: one per page, so rows reached the file as pages arrived.
    assert pq.ParquetFile(result.data_url).num_row_groups == result.pages
    assert [e.pages for e in events] == [*range(1, result.pages + 1), result.pages]
    assert events[-1].done and events[-1].rows == result.rows

    terms = lake.read(RAW, "smartacc", "terms", SMA_WINDOW)
    assert vendor_rows(terms) == [present(r) for r in wire_smartacc_terms(sandbox)]
    assert all(t.isdigit() for t in terms.column("TermDays").to_pylist())
    _same_schema(terms, "smartacc_terms_raw")


def test_extract_range_commits_every_planned_window(sandbox: SandboxServer, tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    with SkyBizClient(settings_for(sandbox).require_skybiz()) as client:
        results = extract_range(client, date(2024, 1, 15), date(2024, 4, 10), lake)

    planned = plan_windows("skybiz", date(2024, 1, 15), date(2024, 4, 10))
    assert [r.window for r in results] == [w.key for w in planned]
    assert lake.windows(RAW, "skybiz") == planned
    for window, result in zip(planned, results, strict=True):
        assert result.rows == len(wire_skybiz_window(sandbox, window))


def test_reextracting_a_window_replaces_it(sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    server = sandbox_factory()
    lake = Lake(str(tmp_path / "lake"))
    settings = settings_for(server)
    with SkyBizClient(settings.require_skybiz()) as sky, SmartAccClient(settings.require_smartacc()) as sma:
        first = {w.source: extract_window(c, w, lake) for c, w in ((sky, SKY_WINDOW), (sma, SMA_WINDOW))}
        # Edit customers until some of each window's have moved to today's window.
        while len(wire_skybiz_window(server, SKY_WINDOW)) >= first["skybiz"].rows:
            server.skybiz.mutate(50)
        while len(wire_smartacc_window(server, SMA_WINDOW)) >= first["smartacc"].rows:
            server.smartacc.mutate(50)
        second = {w.source: extract_window(c, w, lake) for c, w in ((sky, SKY_WINDOW), (sma, SMA_WINDOW))}

    for source, window in (("skybiz", SKY_WINDOW), ("smartacc", SMA_WINDOW)):
        assert second[source].rows < first[source].rows
        assert second[source].sha256 != first[source].sha256
        table = lake.read(RAW, source, CUSTOMERS, window)
        assert table.num_rows == second[source].rows
        directory = Path(lake.window_dir(RAW, source, CUSTOMERS, window))
        parts = sorted(p.name for p in directory.iterdir() if p.name != "_manifest.json")
        assert parts == [Path(second[source].data_url).name]  # the old file is gone, no temp left behind
    assert [present(r) for r in wire_skybiz_window(server, SKY_WINDOW)] == vendor_rows(
        lake.read(RAW, "skybiz", CUSTOMERS, SKY_WINDOW)
    )


def test_a_failing_extraction_leaves_the_previous_window(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    server = sandbox_factory()
    lake = Lake(str(tmp_path / "lake"))
    settings = settings_for(server).require_smartacc()
    with SmartAccClient(settings) as client:
        extract_window(client, SMA_WINDOW, lake)
    before = lake.require_manifest(RAW, "smartacc", CUSTOMERS, SMA_WINDOW)
    table_before = lake.read(RAW, "smartacc", CUSTOMERS, SMA_WINDOW)

    server.smartacc.switches.fault_rates = {"500": 1.0}
    quick = type(settings)(url=settings.url, api_key=settings.api_key, http=HttpSettings(max_retries=1))
    with SmartAccClient(quick) as client, pytest.raises(RetriesExhaustedError) as failure:
        extract_window(client, SMA_WINDOW, lake)

    assert failure.value.source == "smartacc"
    assert lake.require_manifest(RAW, "smartacc", CUSTOMERS, SMA_WINDOW) == before
    assert lake.read(RAW, "smartacc", CUSTOMERS, SMA_WINDOW).equals(table_before)
    directory = Path(lake.window_dir(RAW, "smartacc", CUSTOMERS, SMA_WINDOW))
    assert sorted(p.name for p in directory.iterdir()) == sorted(["_manifest.json", before.file])


class _FailsAfterFirstPage(SmartAccWindows):
    """The real SmartAcc pages, then an error once the first page has been written to the temp file."""

    def iter_pages(self, window: Window) -> Iterator[Page]:
        pages = super().iter_pages(window)
        yield next(pages)
        raise ConnectionResetError("lost the vendor mid-window")


def test_an_exception_after_pages_were_written_discards_them(sandbox: SandboxServer, tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    with SmartAccClient(settings_for(sandbox).require_smartacc()) as client:
        extract_window(client, SMA_WINDOW, lake)
        before = lake.require_manifest(RAW, "smartacc", CUSTOMERS, SMA_WINDOW)
        seen: list[ExtractProgress] = []
        with pytest.raises(ConnectionResetError):
            extract_window(_FailsAfterFirstPage(client), SMA_WINDOW, lake, progress=seen.append, batch_rows=1)

    assert [e.pages for e in seen] == [1]  # a page did go to the temp file before the failure
    assert lake.require_manifest(RAW, "smartacc", CUSTOMERS, SMA_WINDOW) == before
    directory = Path(lake.window_dir(RAW, "smartacc", CUSTOMERS, SMA_WINDOW))
    assert sorted(p.name for p in directory.iterdir()) == sorted(["_manifest.json", before.file])


def test_a_client_cannot_extract_another_sources_window(sandbox: SandboxServer, tmp_path: Path) -> None:
    with (
        SkyBizClient(settings_for(sandbox).require_skybiz()) as client,
        pytest.raises(ContractError, match="skybiz client cannot extract a smartacc window"),
    ):
        extract_window(client, SMA_WINDOW, Lake(str(tmp_path)))
    assert not (tmp_path / "raw").exists()


def test_keys_outside_the_contract_are_kept_as_json() -> None:
    page = Page(
        rows=[
            {"CusCode": "C1", "CreditLimit": "1500.50", "Loyalty": "gold", "Branch": None},
            {"CusCode": "C2", "TermCode": "030"},
        ],
        request_id="req_0123456789abc",
        page=1,
    )
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    batch = page_to_batch(page, SKY_WINDOW, raw_schema("skybiz"), at)

    rows = batch.to_pylist()
    assert [json.loads(r["_unknown_fields"]) if r["_unknown_fields"] else None for r in rows] == [
        {"Branch": None, "Loyalty": "gold"},
        None,
    ]
    assert (rows[0]["CreditLimit"], rows[1]["TermCode"], rows[1]["CreditLimit"]) == ("1500.50", "030", None)
    assert rows[0]["_extracted_at"] == at and rows[1]["_page"] == 1 and rows[1]["_window"] == SKY_WINDOW.key


def test_a_value_that_is_not_text_is_refused() -> None:
    page = Page(rows=[{"CusCode": "C1", "CreditLimit": 1500.5}], request_id="req_x", page=1)  # type: ignore[dict-item]
    with pytest.raises(ContractError) as error:
        page_to_batch(page, SKY_WINDOW, raw_schema("skybiz"), datetime.now(UTC))
    assert (error.value.field, error.value.request_id) == ("CreditLimit", "req_x")


def test_small_pages_share_row_groups_and_keep_their_own_lineage(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    server = sandbox_factory()
    lake = Lake(str(tmp_path / "lake"))
    with SmartAccClient(settings_for(server).require_smartacc()) as client:
        result = extract_window(client, SMA_WINDOW, lake)

    assert pq.ParquetFile(result.data_url).num_row_groups == 1 < result.pages  # pages were combined
    table = lake.read(RAW, "smartacc", CUSTOMERS, SMA_WINDOW)
    sent = {r.headers.get("x-request-id"): r for r in server.smartacc.received}
    runs: list[tuple[str, int, int]] = []  # (request id, page, rows) for each run of equal request ids
    lineage = zip(table.column("_request_id").to_pylist(), table.column("_page").to_pylist(), strict=True)
    for request_id, page in lineage:
        if runs and runs[-1][0] == request_id:
            assert runs[-1][1] == page
            runs[-1] = (request_id, page, runs[-1][2] + 1)
        else:
            runs.append((request_id, page, 1))
    assert [r[0] for r in runs] == lake.require_manifest(RAW, "smartacc", CUSTOMERS, SMA_WINDOW).extra[
        "request_ids"
    ]  # one contiguous run per page, in page order
    for request_id, page, rows in runs:
        request = sent[request_id]  # the request that really returned these rows...
        assert f"Page={page}" in request.query and rows <= 20  # ...and the page it asked for
        assert request.path.startswith("/Customers/EditDate/")


def test_a_huge_page_is_converted_in_slices(sandbox: SandboxServer, tmp_path: Path) -> None:
    rows: list[Row] = [{"CusCode": f"C{i:06d}", "CusName": f"Name {i}"} for i in range(10_000)]
    page = Page(rows=rows, request_id="req_00000000000ff", page=1)

    class OneBigPage:
        source = "skybiz"

        def iter_pages(self, window: Window) -> Iterator[Page]:
            yield page

        def lookups(self, window: Window) -> Sequence[Lookup]:
            return ()

        def manifest_extra(self) -> dict[str, Any]:
            return {"client": "test"}

    lake = Lake(str(tmp_path / "lake"))
    result = extract_window(OneBigPage(), SKY_WINDOW, lake, batch_rows=4_000)

    table = lake.read(RAW, "skybiz", CUSTOMERS, SKY_WINDOW)
    assert result.rows == table.num_rows == 10_000
    assert table.column("CusCode").to_pylist() == [r["CusCode"] for r in rows]
    assert set(table.column("_request_id").to_pylist()) == {"req_00000000000ff"}
    assert pq.ParquetFile(result.data_url).num_row_groups == 3  # 4,096 + 4,096 + 1,808 rows


@pytest.mark.parametrize("source", ["skybiz", "smartacc"])
def test_an_empty_window_is_committed_empty(sandbox: SandboxServer, tmp_path: Path, source: str) -> None:
    window = Window(source, date(2019, 1, 1), date(2019, 1, 31))  # before the sandbox's history
    lake = Lake(str(tmp_path / "lake"))
    client = SkyBizClient if source == "skybiz" else SmartAccClient
    with client(getattr(settings_for(sandbox), f"require_{source}")()) as c:
        result = extract_window(c, window, lake)

    assert result.rows == 0 and lake.windows(RAW, source) == [window]  # "nothing changed" is a fact too
    table = lake.read(RAW, source, CUSTOMERS, window)
    assert table.num_rows == 0 and table.schema.names == raw_schema(source).names
