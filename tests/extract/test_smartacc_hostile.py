"""A hostile record never fails a window and lands in its own window, exactly as sent (SmartAcc, SkyBiz).

The client reads only what paging needs (id, EditDate, Stamp). A row whose id or EditDate cannot be read is
kept and placed between its readable neighbours in the server's EditDate order; the rows after the
window's last readable row are settled by the listing that starts where the next window does. These tests
check that against a model of the server (hypothesis) and against the emulator serving corrupted records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.config import HttpSettings, Secret
from pipelines.http import loads_exact
from pipelines.sources import Page, text_row
from pipelines.sources.smartacc.client import (
    PAGE_SIZE,
    SmartAccClient,
    _Counter,
    _Fetched,
    _Rec,
)
from pipelines.sources.smartacc.settings import SmartAccSettings
from pipelines.windows import MYT, Window, plan_windows
from skysmart_sandbox.switches import Switches
from tests.fixtures.sandbox import sandbox_data

FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JAN = Window("smartacc", date(2024, 1, 1), date(2024, 1, 31))
UNREADABLE = ["/Date(abc)/", "", None, "2024-01-05", "/Date(99999999999999999999)/", "1700000000", "[]"]


def _offline_client() -> SmartAccClient:
    return SmartAccClient(SmartAccSettings(url="http://127.0.0.1:9", api_key=Secret("offline-key")))


def _date_text(moment: datetime) -> str:
    ms = int((moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))
    return f"/Date({ms}-0000)/"


class _Untouchable(dict[str, str | None]):
    """A row that fails the test if anything reads it."""

    def get(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a row past the window's end was interpreted")

    def __getitem__(self, key: str) -> Any:
        raise AssertionError("a row past the window's end was interpreted")


# -- a model of the server's EditDate order ------------------------------------------------------------


@st.composite
def listings(draw: st.DrawFn) -> list[tuple[str | None, datetime, bool]]:
    """Customers as the server holds them, EditDate-ordered from JAN's first day: (id, time, readable)."""
    start = datetime.combine(JAN.start, datetime.min.time(), MYT)
    offsets = draw(st.lists(st.integers(min_value=0, max_value=45 * 24 * 60), min_size=0, max_size=60))
    out = []
    for i, minutes in enumerate(sorted(offsets)):
        ident = draw(st.sampled_from([f"C{i:04d}", f"C{i:04d}", f"C{i:04d}", None]))
        readable = draw(st.booleans() | st.just(True))
        out.append((ident, start + timedelta(minutes=minutes), readable))
    return out


def _row(ident: str | None, moment: datetime, readable: bool, filler: str) -> dict[str, str | None]:
    return {
        "AcCustomerID": ident,
        "EditDate": _date_text(moment) if readable else filler,
        "AcCustomerName": f"name of {ident} at {moment.isoformat()}",
    }


def _pages(rows: list[dict[str, str | None]], *, first: int = 1) -> list[_Fetched]:
    return [
        _Fetched(Page(rows=rows[i : i + PAGE_SIZE], request_id=f"r{i}", page=first + i // PAGE_SIZE), None)
        for i in range(0, max(len(rows), 1), PAGE_SIZE)
    ]


@FEW
@given(listings(), st.sampled_from(UNREADABLE))
def test_placement_puts_every_row_in_the_window_the_server_holds_it_in(
    server: list[tuple[str | None, datetime, bool]], filler: str | None
) -> None:
    end = JAN.end_utc_exclusive
    rows = [_row(i, t, r, filler or "") for i, t, r in server]
    if filler is None:
        rows = [
            {**row, "EditDate": None} if not r else row for row, (_, _, r) in zip(rows, server, strict=True)
        ]
    # What the client lists: rows from the window's first day up to the first readable row past its end.
    stop = next((n for n, (_, t, r) in enumerate(server) if r and t >= end), len(server))
    fetched = _pages(rows)
    listed: list[_Rec] = []
    after = datetime.combine(JAN.start, datetime.min.time(), MYT)
    for page in fetched:
        recs, past_end = page.recs(after, len(listed), end)
        listed.extend(recs)
        after = recs[-1].at if recs else after
        if past_end:
            break
    assert [rec.row for rec in listed] == rows[:stop]

    # The next window's listing begins with the unreadable rows at or after its first instant.
    head: list[str] = []
    for (_, t, r), rec_row in zip(server, rows, strict=True):
        if t < end:
            continue
        if r:
            break
        head.append(_key(rec_row))
    client = _offline_client()
    client._next_window_head = lambda window, counter: set(head)  # type: ignore[method-assign]
    placed = client._place(listed, JAN, _Counter())
    expected = [row for row, (_, t, _) in zip(rows, server, strict=True) if t < end]
    assert [rec.row for rec in placed] == expected


def _key(row: dict[str, str | None]) -> str:
    ident = row.get("AcCustomerID")
    return ident if ident else "\x00" + json.dumps(row, sort_keys=True, ensure_ascii=False)


@FEW
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["AcCustomerID", "EditDate", "Stamp", "X"]), st.none() | st.text(max_size=30)
        ),
        max_size=25,
    )
)
def test_reading_a_page_never_fails_whatever_its_rows_hold(rows: list[dict[str, str | None]]) -> None:
    page = _Fetched(Page(rows=rows, request_id="r", page=1), None)
    start = datetime(2024, 1, 1, tzinfo=MYT)
    recs, past_end = page.recs(start)
    assert not past_end
    assert [rec.row for rec in recs] == rows
    ats = [rec.at for rec in recs]
    for rec in recs:
        if rec.edited is not None:
            assert rec.at == rec.edited
    assert all(a is not None for a in ats)


def test_rows_after_the_first_row_past_the_window_are_not_read() -> None:
    inside: dict[str, str | None] = {
        "AcCustomerID": "A",
        "EditDate": _date_text(datetime(2024, 1, 10, tzinfo=UTC)),
    }
    beyond: dict[str, str | None] = {
        "AcCustomerID": "B",
        "EditDate": _date_text(datetime(2024, 2, 2, tzinfo=UTC)),
    }
    page = _Fetched(Page(rows=[inside, beyond, _Untouchable(), _Untouchable()], request_id="r", page=3), None)
    recs, past_end = page.recs(datetime(2024, 1, 1, tzinfo=MYT), 0, JAN.end_utc_exclusive)
    assert past_end
    assert [rec.key for rec in recs] == ["A"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@FEW
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=8))
def test_a_record_becomes_text_with_numbers_exactly_as_sent(record: dict[str, Any]) -> None:
    wire = json.dumps(record, ensure_ascii=False)
    row = text_row(loads_exact(wire))
    assert set(row) == set(record)
    for key, value in record.items():
        got = row[key]
        assert got is None or isinstance(got, str)
        if value is None:
            assert got is None
        elif isinstance(value, str):
            assert got == value
        elif isinstance(value, bool):
            assert got == json.dumps(value)
        elif isinstance(value, int | float):
            assert got == json.dumps(value)  # the literal as sent, never re-printed
        else:
            assert got is not None
            assert json.loads(got) == value


# -- against the emulator --------------------------------------------------------------------------------


def _read(server: Any, window: Window, *, concurrency: int = 8) -> list[dict[str, str | None]]:
    ep = server.endpoints
    http = HttpSettings(
        max_retries=1,
        backoff_initial=0.01,
        backoff_max=0.02,
        requests_per_second=0,
        max_concurrency=concurrency,
    )
    with SmartAccClient(
        SmartAccSettings(url=ep.smartacc_url, api_key=Secret(ep.smartacc_api_key), http=http)
    ) as client:
        return [row for page in client.iter_window(window) for row in page.rows]


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Any, Any]]:
    from skysmart_sandbox.server import SandboxServer

    data = sandbox_data(2_000, 7)
    hostile = Switches(corrupt_rate=0.3, corrupt_kinds=("bad_date", "null", "missing_key"), seed=5)
    with (
        SandboxServer(data=data, seed=7) as clean,
        SandboxServer(data=data, seed=7, smartacc_switches=hostile) as bad,
    ):
        yield clean, bad


def test_hostile_rows_stay_in_their_own_window_exactly_as_sent(
    servers: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    clean, bad = servers
    truth = bad.smartacc.switches.corrupted
    heads: list[set[str]] = []
    original = SmartAccClient._next_window_head

    def spy(self: SmartAccClient, window: Window, counter: _Counter) -> set[str]:
        heads.append(original(self, window, counter))
        return heads[-1]

    monkeypatch.setattr(SmartAccClient, "_next_window_head", spy)
    for window in plan_windows("smartacc", date(2024, 1, 1), date(2024, 12, 31)):
        expected = _read(clean, window)
        got = _read(bad, window)
        assert len(got) == len(expected), window.key
        ids = [row["AcCustomerID"] for row in expected]
        by_id = {row["AcCustomerID"]: row for row in got if row.get("AcCustomerID")}
        id_less = [row for row in got if not row.get("AcCustomerID")]
        for ident, row in zip(ids, expected, strict=True):
            hit = truth.get(ident)
            if hit is None:
                assert by_id[ident] == row, (window.key, ident)
            elif hit[1] == "AcCustomerID":
                rest = {k: v for k, v in row.items() if k != "AcCustomerID"}
                assert any({k: v for k, v in r.items() if k != "AcCustomerID"} == rest for r in id_less)
            else:
                sent = by_id[ident]
                assert {k: v for k, v in sent.items() if k != hit[1]} == {
                    k: v for k, v in row.items() if k != hit[1]
                }, (window.key, ident)
    assert len(truth) > 50
    # Unreadable rows after a window's last readable one were met, and some belonged to the next window.
    assert heads and any(heads)


def test_the_window_reads_the_same_however_pages_interleave(servers: tuple[Any, Any]) -> None:
    _, bad = servers
    for window in plan_windows("smartacc", date(2024, 1, 1), date(2024, 3, 31)):
        assert _read(bad, window, concurrency=1) == _read(bad, window, concurrency=8), window.key


def test_a_row_nothing_can_place_fails_its_window_naming_the_row() -> None:
    """The keyset read moves its cursor by readable EditDates; a listing with none fails, naming a row."""
    from pipelines.errors import ApiError

    rows: list[dict[str, str | None]] = [
        {"AcCustomerID": f"300-X{i:04d}", "EditDate": "/Date(abc)/"} for i in range(PAGE_SIZE)
    ]
    client = _offline_client()
    client._read_at = lambda cursor, window, counter: (  # type: ignore[method-assign]
        [_Fetched(Page(rows=rows, request_id="sa-r1", page=1), None)],
        False,
    )
    with pytest.raises(ApiError) as caught:
        client._keyset(datetime(2024, 1, 1, tzinfo=MYT), JAN.end_utc_exclusive, JAN, _Counter())
    error = caught.value
    assert error.record_key == "300-X0000" and error.field == "EditDate"
    assert error.window == JAN.key and error.request_id == "sa-r1"
    assert "300-X0000" in str(error) and "/Date(abc)/" in str(error)


@FEW
@given(st.lists(json_values, max_size=30))
def test_a_skybiz_answer_keeps_every_item_whatever_it_holds(items: list[Any]) -> None:
    """SkyBiz's page parser: any list of items (records or not) is one page of as many rows, as sent."""
    from pipelines.http import CallContext, JsonResponse
    from pipelines.sources.skybiz.client import SkyBizClient
    from pipelines.sources.skybiz.settings import SkyBizSettings

    window = Window("skybiz", date(2024, 1, 1), date(2024, 1, 31))
    wire = json.dumps(
        {
            "status": "response",
            "request_id": "req_1",
            "data": {"total_returned": len(items), "date_range": {"from": "2024-01-01"}, "data": items},
        }
    )
    client = SkyBizClient(
        SkyBizSettings(url="http://127.0.0.1:9/modules", api_key=Secret("k" * 8), api_secret=Secret("s" * 8))
    )
    response = JsonResponse(200, {}, loads_exact(wire), None, 0.0)
    page = client._read_page(response, CallContext("skybiz", "read", window=window.key, page=1), window)
    assert len(page.rows) == len(items) and page.request_id == "req_1"
    for item, row in zip(items, page.rows, strict=True):
        assert all(value is None or isinstance(value, str) for value in row.values())
        if isinstance(item, dict):
            assert set(row) == set(item)
        else:
            record = row["_record"]
            assert record is not None
            assert json.loads(record) == item
