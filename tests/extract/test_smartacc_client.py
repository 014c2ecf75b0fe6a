"""SmartAccClient against the SmartAcc emulator over real HTTP (shared/api/SMARTACC.md)."""

from __future__ import annotations

import dataclasses
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any, cast

import pyarrow as pa
import pytest
import requests

from pipelines.config import HttpSettings, Secret
from pipelines.errors import (
    ApiError,
    AuthenticationError,
    PermissionDeniedError,
    RateLimitedError,
    RequestRejectedError,
    TransientApiError,
    WindowError,
)
from pipelines.http import CallContext, JsonResponse
from pipelines.sources import Page
from pipelines.sources.smartacc.client import (
    PAGE_SIZE,
    SmartAccClient,
    WindowStats,
    raise_for_response_status,
)
from pipelines.sources.smartacc.dates import parse_servicestack_date
from pipelines.sources.smartacc.settings import SmartAccSettings
from pipelines.windows import MYT, Window, plan_windows
from skysmart_sandbox.data import SandboxData
from skysmart_sandbox.server import SandboxServer
from tests.fixtures.sandbox import SandboxFactory, sandbox_data

MAY = Window("smartacc", date(2024, 5, 1), date(2024, 5, 31))


def http_settings(**overrides: Any) -> HttpSettings:
    values = {"max_retries": 1, "backoff_initial": 0.01, "backoff_max": 0.02, "requests_per_second": 0}
    return HttpSettings(**{**values, **overrides})


def client_for(server: SandboxServer, *, key: str | None = None, **http: Any) -> SmartAccClient:
    ep = server.endpoints
    return SmartAccClient(
        SmartAccSettings(
            url=ep.smartacc_url, api_key=Secret(key or ep.smartacc_api_key), http=http_settings(**http)
        )
    )


def login_client(server: SandboxServer, *, password: str | None = None, **http: Any) -> SmartAccClient:
    ep = server.endpoints
    settings = SmartAccSettings(
        url=ep.smartacc_url,
        username=ep.smartacc_username,
        password=Secret(password or ep.smartacc_password),
        http=http_settings(**http),
    )
    return SmartAccClient(settings)


def edited(row: dict[str, str | None]) -> datetime:
    moment = parse_servicestack_date(row["EditDate"])
    assert moment is not None
    return moment


def sequential_window(client: SmartAccClient, window: Window) -> list[dict[str, str | None]]:
    """The window read one EditDate page at a time, the plain way (correct only on static data)."""
    rows: list[dict[str, str | None]] = []
    n = 1
    while True:
        page = client.by_edit_date(window.start, n)
        rows.extend(r for r in page.rows if window.contains(edited(r)))
        if len(page.rows) < PAGE_SIZE or edited(page.rows[-1]) >= window.end_utc_exclusive:
            return rows
        n += 1


# -- paging and lookups -------------------------------------------------------------------------------------


def test_pages_of_20_until_a_short_page(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(size=205, seed=11)
    expected = sorted(server.data.smartacc.column("AcCustomerID").to_pylist())
    with client_for(server) as client:
        pages = [client.page(n) for n in range(1, 13)]
    assert [len(p.rows) for p in pages] == [20] * 10 + [5, 0]
    assert [r["AcCustomerID"] for p in pages for r in p.rows] == expected
    assert [p.page for p in pages] == list(range(1, 13))
    assert math.ceil(len(expected) / PAGE_SIZE) == 11


def test_every_call_sends_json_format_accept_and_our_request_id(sandbox: SandboxServer) -> None:
    with client_for(sandbox) as client:
        page = client.page(2)
    sent = next(r for r in sandbox.smartacc.received if r.headers.get("x-request-id") == page.request_id)
    assert page.request_id.startswith("sa-") and len(page.request_id) == 35
    assert sent.path == "/Customers/page/2" and "format=json" in sent.query
    assert sent.headers["accept"] == "application/json" and sent.headers["authorization"] == "Bearer ***"


def test_rows_are_vendor_text(sandbox: SandboxServer) -> None:
    with client_for(sandbox) as client:
        row = client.page(1).rows[0]
    truth = sandbox.smartacc.customer_json(row["AcCustomerID"] or "")
    assert truth is not None
    for name, value in truth.items():
        assert row[name] == (value if isinstance(value, str) or value is None else str(value)) or (
            isinstance(value, float) and float(row[name] or "nan") == value
        )
    assert all(v is None or isinstance(v, str) for v in row.values())


def test_by_edit_date_paths_and_order(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory()
    since = datetime(2024, 5, 1, 10, 30, tzinfo=MYT)
    with client_for(server) as client:
        by_day = client.by_edit_date(date(2024, 5, 1))
        by_time = client.by_edit_date(since.astimezone(UTC), page=2)
    paths = [r.path for r in server.smartacc.received]
    assert paths == ["/Customers/EditDate/2024-05-01", "/Customers/EditDate/2024-05-01T10:30:00"]
    assert "Page=2" in server.smartacc.received[-1].query
    for page, floor in ((by_day, datetime(2024, 5, 1, tzinfo=MYT)), (by_time, since)):
        moments = [edited(r) for r in page.rows]
        assert len(moments) == PAGE_SIZE and moments == sorted(moments) and moments[0] >= floor


def test_by_id_and_by_mobile_return_lists(sandbox: SandboxServer) -> None:
    table = sandbox_data().smartacc
    some_id = table.column("AcCustomerID")[17].as_py()
    mobile = next(m for m in table.column("MobileNo").to_pylist() if m)
    with client_for(sandbox) as client:
        found = client.by_id(some_id)
        missing = client.by_id("NO SUCH ID")
        slashed = client.by_id("300/A0001")  # cannot be a path segment: sent as ?AcCustomerID=
        by_mobile = client.by_mobile(mobile)
    assert [r["AcCustomerID"] for r in found] == [some_id]
    assert missing == [] and slashed == []
    assert by_mobile and all(r["MobileNo"] == mobile for r in by_mobile)


def test_lookups(sandbox: SandboxServer) -> None:
    data = sandbox_data()
    with client_for(sandbox) as client:
        terms = client.terms()
        areas = client.customer_areas()
        groups = client.customer_groups()
    assert isinstance(terms, Page) and terms.request_id.startswith("sa-")
    term_days = data.terms.column("TermDays").to_pylist()
    assert {r["AcTermID"]: r["TermDays"] for r in terms.rows} == dict(
        zip(data.terms.column("AcTermID").to_pylist(), map(str, term_days), strict=True)
    )
    area_ids = data.customer_areas.column("AcAreaID").to_pylist()
    assert sorted(cast(str, r["AcAreaID"]) for r in areas.rows) == sorted(area_ids)
    assert sorted(cast(str, r["AcCusGroupID"]) for r in groups.rows) == sorted(
        data.customer_groups.column("AcCusGroupID").to_pylist()
    )


def test_customer_groups_page_until_total_records(sandbox_factory: SandboxFactory) -> None:
    groups = pa.table({"AcCusGroupID": [f"G{i:03d}" for i in range(230)], "AcCusGroupDesc": ["x"] * 230})
    server = sandbox_factory(data=dataclasses.replace(sandbox_data(), customer_groups=groups))
    with client_for(server) as client:
        page = client.customer_groups()
    assert [r["AcCusGroupID"] for r in page.rows] == groups.column("AcCusGroupID").to_pylist()
    sent = [(r.path, r.query) for r in server.smartacc.received]
    assert [p for p, _ in sent] == [f"/CustomerGroups/page/{n}" for n in (1, 2, 3)]
    assert all("RecordsPerPage=100" in q for _, q in sent) and page.page == 3


# -- authentication --------------------------------------------------------------------------------


AUTH_ERRORS = [
    pytest.param("unknown", AuthenticationError, 401, "Not Authenticated", id="unknown-key-401"),
    pytest.param(
        "cancelled", PermissionDeniedError, 403, "ApiKey has been cancelled", id="cancelled-key-403"
    ),
    pytest.param("expired", PermissionDeniedError, 403, "ApiKey has expired", id="expired-key-403"),
    pytest.param("no-permission", PermissionDeniedError, 403, "Invalid Permission", id="no-permission-403"),
    pytest.param("insecure", PermissionDeniedError, 403, "insecure connection", id="insecure-connection-403"),
    pytest.param(
        "bad-password", AuthenticationError, 401, "Invalid Username or Password", id="bad-password-401"
    ),
]


@pytest.mark.parametrize(("case", "error", "status", "message"), AUTH_ERRORS)
def test_auth_errors_map_to_types_and_are_not_retried(
    sandbox_factory: SandboxFactory, case: str, error: type[ApiError], status: int, message: str
) -> None:
    server = sandbox_factory()
    creds = server.smartacc.credentials
    keys = {
        "unknown": "A" * 32,
        "cancelled": creds.cancelled_api_key,
        "expired": creds.expired_api_key,
        "no-permission": creds.no_permission_api_key,
        "insecure": creds.api_key,
    }
    if case == "insecure":
        server.smartacc.require_secure_connection = True
    client = (
        login_client(server, password="wrong-password", max_retries=3)
        if case == "bad-password"
        else (client_for(server, key=keys[case], max_retries=3))
    )
    with client, pytest.raises(error) as info:
        client.page(1)
    err = info.value
    assert type(err) is error and err.status_code == status and message in err.message
    assert [r.status for r in server.smartacc.received] == [status]
    assert err.request_id == server.smartacc.received[-1].headers.get("x-request-id")


def test_readonly_key_reads(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory()
    with client_for(server, key=server.smartacc.credentials.readonly_api_key) as client:
        assert len(client.page(1).rows) == PAGE_SIZE


def _body(status: int, code: str | None, message: str | None) -> JsonResponse:
    body: dict[str, Any] = {}
    if code or message:
        body["ResponseStatus"] = {"ErrorCode": code, "Message": message}
    headers = {"Retry-After": "2"} if status == 429 else {}
    return JsonResponse(status, headers, body, "sa-test", 0.0)


@pytest.mark.parametrize(
    ("response", "error"),
    [
        pytest.param(_body(404, "NotFound", "ApiKey does not exist"), AuthenticationError, id="404-apikey"),
        pytest.param(_body(404, "NotFound", "Customer not found"), RequestRejectedError, id="404-other"),
        pytest.param(_body(401, "Unauthorized", "Not Authenticated"), AuthenticationError, id="401"),
        pytest.param(_body(403, "Forbidden", "Invalid Permission"), PermissionDeniedError, id="403"),
        pytest.param(_body(400, "ArgumentException", "Page"), RequestRejectedError, id="400"),
        pytest.param(
            _body(409, "DuplicateKey", "Customer ID already exists"), RequestRejectedError, id="409"
        ),
        pytest.param(_body(429, "TooManyRequests", "Too Many Requests"), RateLimitedError, id="429"),
        pytest.param(_body(503, None, None), TransientApiError, id="503-empty"),
        pytest.param(
            _body(200, "Unauthorized", "Not Authenticated"), AuthenticationError, id="200-with-error"
        ),
    ],
)
def test_response_status_mapping(response: JsonResponse, error: type[ApiError]) -> None:
    with pytest.raises(error) as info:
        raise_for_response_status(response, CallContext("smartacc", "page", page=1))
    assert type(info.value) is error and info.value.request_id == "sa-test"
    assert info.value.retryable == (response.status_code in (429, 503))
    if isinstance(info.value, RateLimitedError):
        assert info.value.retry_after == 2.0


def test_success_is_not_an_error() -> None:
    raise_for_response_status(_body(200, None, None), CallContext("smartacc", "page"))


def test_credentials_login_then_session_cookies(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory()
    with login_client(server) as client:
        page = client.page(1)
        again = client.page(2)
    sent = list(server.smartacc.received)
    assert [(r.method, r.path, r.status) for r in sent] == [
        ("POST", "/auth/credentials", 200),
        ("GET", "/Customers/page/1", 200),
        ("GET", "/Customers/page/2", 200),
    ]
    assert "ss-id=***" in sent[1].headers["cookie"] and "authorization" not in sent[1].headers
    assert len(page.rows) == len(again.rows) == PAGE_SIZE


def test_expired_session_logs_in_again_once(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory()
    ep = server.endpoints
    with login_client(server) as client:
        client.page(1)
        # End the session on the server behind the client's back (what expiry looks like to it).
        requests.post(f"{ep.smartacc_url}/auth/logout?format=json", cookies=client.http.cookies, timeout=5)
        page = client.page(2)
    sent = [(r.method, r.path, r.status) for r in server.smartacc.received]
    assert sent[2:] == [
        ("POST", "/auth/logout", 200),
        ("GET", "/Customers/page/2", 401),
        ("POST", "/auth/credentials", 200),
        ("GET", "/Customers/page/2", 200),
    ]
    assert len(page.rows) == PAGE_SIZE


def test_api_key_401_is_not_followed_by_a_login(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory()
    with client_for(server, key="B" * 32) as client, pytest.raises(AuthenticationError):
        client.page(1)
    assert [r.path for r in server.smartacc.received] == ["/Customers/page/1"]


# -- windows --------------------------------------------------------------------------------


def test_concurrent_window_equals_sequential_paging(sandbox: SandboxServer) -> None:
    with client_for(sandbox, max_concurrency=6) as client:
        pages = list(client.iter_window(MAY))
        stats = client.last_window_stats
        expected = sequential_window(client, MAY)
    rows = [r for p in pages for r in p.rows]
    assert rows == expected and len(rows) > PAGE_SIZE
    assert stats is not None and (stats.passes, stats.fallback, stats.rows) == (1, False, len(rows))
    # Stable order: by (EditDate, AcCustomerID); each page keeps the id of the request that fetched it.
    keys = [(edited(r), r["AcCustomerID"]) for r in rows]
    assert keys == sorted(keys)
    sent_ids = {r.headers.get("x-request-id") for r in sandbox.smartacc.received}
    assert all(p.request_id in sent_ids and 0 < len(p.rows) <= PAGE_SIZE for p in pages)


def test_windows_read_at_once_share_one_set_of_page_threads_closed_with_the_client(
    sandbox: SandboxServer,
) -> None:
    windows = list(plan_windows("smartacc", date(2024, 1, 1), date(2024, 6, 30)))

    def page_threads() -> set[int]:
        return {t.ident or 0 for t in threading.enumerate() if t.name.startswith("smartacc-page")}

    before = page_threads()

    def rows_of(window: Window) -> list[dict[str, str | None]]:
        return [r for p in client.iter_window(window) for r in p.rows]

    with client_for(sandbox, max_concurrency=3) as client, ThreadPoolExecutor(3) as windows_at_once:
        read = list(windows_at_once.map(rows_of, windows))
        used = page_threads() - before
        assert read == [sequential_window(client, w) for w in windows]
    # At most as many threads as the vendor's bound, for all six windows, and none left once closed.
    assert 0 < len(used) <= 3
    assert not page_threads() - before


@pytest.mark.parametrize("size", [4000, 20000])
def test_a_pass_requests_about_the_pages_its_window_needs_not_a_full_width_of_guesses(
    sandbox_factory: SandboxFactory, size: int
) -> None:
    server = sandbox_factory(size=size)
    with client_for(server, max_concurrency=8) as client:
        rows = [r for p in client.iter_window(MAY) for r in p.rows]
        stats = client.last_window_stats
    edit_date_pages = [r for r in server.smartacc.received if r.path.startswith("/Customers/EditDate/")]
    needed = len(rows) // PAGE_SIZE + 1  # the page holding the row past the window's end included
    assert stats is not None and stats.passes == 1 and len(rows) > 2 * PAGE_SIZE
    # The pass (after page 1, only as far as the density read so far reaches: a few pages more when it
    # misjudges) and the edited-since check. Guessing two widths ahead whatever the window's size sent 12
    # requests for 4 pages and 29 for 15.
    assert needed + 1 <= len(edit_date_pages) == stats.requests <= needed + 5


def test_keyset_fallback_reads_the_same_window(sandbox: SandboxServer) -> None:
    with client_for(sandbox) as concurrent, client_for(sandbox) as keyset:
        keyset.max_passes = 0
        expected = [r for p in concurrent.iter_window(MAY) for r in p.rows]
        rows = [r for p in keyset.iter_window(MAY) for r in p.rows]
        stats = keyset.last_window_stats
    assert rows == expected
    assert stats is not None and stats.fallback and stats.passes == 0


def test_empty_window_yields_nothing(sandbox: SandboxServer) -> None:
    with client_for(sandbox) as client:
        assert list(client.iter_window(Window("smartacc", date(2019, 1, 1), date(2019, 1, 31)))) == []
        assert client.last_window_stats is not None and client.last_window_stats.rows == 0


def test_window_of_another_source_is_refused(sandbox: SandboxServer) -> None:
    with client_for(sandbox) as client, pytest.raises(WindowError):
        list(client.iter_window(Window("skybiz", date(2024, 5, 1), date(2024, 5, 31))))


def _edge_data() -> tuple[SandboxData, dict[str, datetime]]:
    """The shared dataset with customers moved onto the Malaysia midnight edges of May 2024."""
    data = sandbox_data()
    table = data.smartacc
    edges = {
        0: datetime(2024, 4, 30, 23, 59, 59, 999000),  # last instant before the window: out
        1: datetime(2024, 5, 1, 0, 0, 0),  # first instant of the first day: in
        2: datetime(2024, 5, 31, 23, 59, 59),  # 23:59:59 on the last day: in
        3: datetime(2024, 5, 31, 23, 59, 59, 999000),  # last millisecond of the last day: in
        4: datetime(2024, 6, 1, 0, 0, 0),  # midnight after the last day: out
    }
    values = table.column("EditDate").to_pylist()
    for row, when in edges.items():
        values[row] = when
    column = pa.array(values, table.schema.field("EditDate").type)
    table = table.set_column(table.schema.get_field_index("EditDate"), "EditDate", column)
    ids = table.column("AcCustomerID").to_pylist()
    return dataclasses.replace(data, smartacc=table), {ids[row]: when for row, when in edges.items()}


def test_window_edges_are_malaysia_midnights(sandbox_factory: SandboxFactory) -> None:
    data, edges = _edge_data()
    server = sandbox_factory(data=data)
    with client_for(server) as client:
        ids = {r["AcCustomerID"] for p in client.iter_window(MAY) for r in p.rows}
        june_1 = {
            r["AcCustomerID"]
            for p in client.iter_window(Window("smartacc", date(2024, 6, 1), date(2024, 6, 1)))
            for r in p.rows
        }
    inside = {i for i, when in edges.items() if when.month == 5}
    assert len(inside) == 3 and inside <= ids and not ((set(edges) - inside) & ids)
    assert {i for i, when in edges.items() if when.month == 6} <= june_1


def test_keyset_reads_ties_longer_than_a_page(sandbox_factory: SandboxFactory) -> None:
    # 45 customers edited in the same millisecond (a bulk update): the keyset cursor cannot move past them
    # with one page, so the fallback pages under one cursor and re-reads the tie until two reads agree.
    data = sandbox_data()
    table = data.smartacc
    values = table.column("EditDate").to_pylist()
    tie = datetime(2024, 5, 15, 12, 0, 0)
    for row in range(100, 145):
        values[row] = tie
    column = pa.array(values, table.schema.field("EditDate").type)
    table = table.set_column(table.schema.get_field_index("EditDate"), "EditDate", column)
    server = sandbox_factory(data=dataclasses.replace(data, smartacc=table))
    with client_for(server) as concurrent, client_for(server) as keyset:
        keyset.max_passes = 0
        expected = [r["AcCustomerID"] for p in concurrent.iter_window(MAY) for r in p.rows]
        got = [r["AcCustomerID"] for p in keyset.iter_window(MAY) for r in p.rows]
    tied = set(table.column("AcCustomerID").to_pylist()[100:145])
    assert got == expected and tied <= set(got) and len(got) == len(set(got))
    tie_reads = [r.query for r in server.smartacc.received if "T12:00:00" in r.path]
    assert any("Page=3" in q for q in tie_reads)  # the tie was paged under one cursor


# -- live data ----------------------------------------------------------------------------------------------


def test_live_mutation_captures_every_customer_once_in_its_latest_state(
    sandbox_factory: SandboxFactory,
) -> None:
    """Iterate every window of the whole history while the server edits customers every few requests.

    Per window every customer appears at most once; over all windows, the newest version captured of each
    customer is the server's state after the run. A customer edited after its window was read also appears
    in the current month's window (the newer version wins), exactly as an edited SkyBiz customer moves to a
    newer window. The only edits no reader can see are the ones the server makes after answering our very
    last request, so those (at most ``count`` customers, all stamped last) are allowed to differ.
    """
    every, count = 8, 3
    server = sandbox_factory(mutate_every_n_requests=every, mutate_count=count)
    state = server.smartacc
    windows = plan_windows("smartacc", server.data.history_start, datetime.now(MYT).date())
    latest: dict[str, tuple[tuple[datetime, int], dict[str, str | None]]] = {}
    stats = []
    with client_for(server, max_concurrency=2) as client:
        for window in windows:
            seen: list[str] = []
            for page in client.iter_window(window):
                for row in page.rows:
                    key = row["AcCustomerID"] or ""
                    seen.append(key)
                    assert window.contains(edited(row))
                    version = (edited(row), int(row["Stamp"] or 0))
                    if key not in latest or version > latest[key][0]:
                        latest[key] = (version, row)
            assert len(seen) == len(set(seen)), f"{window} yielded a customer twice"
            stats.append(client.last_window_stats)
    state.switches.mutate_every_n_requests = 0
    requests_made = len(state.received)

    ids = server.data.smartacc.column("AcCustomerID").to_pylist()
    original_stamps = dict(zip(ids, server.data.smartacc.column("Stamp").to_pylist(), strict=True))
    truth = {i: state.customer_json(i) for i in ids}
    changed = [i for i in ids if cast("dict[str, Any]", truth[i])["Stamp"] != original_stamps[i]]
    assert len(changed) >= 100, "the data must really change while it is read"
    assert any(s.fallback or s.passes > 1 for s in cast("list[WindowStats]", stats))
    assert set(latest) == set(ids)  # nobody skipped

    def differs(i: str) -> bool:
        row = latest[i][1]
        server_row = truth[i]
        assert server_row is not None
        return row["Stamp"] != str(server_row["Stamp"]) or any(
            row.get(k) != v for k, v in server_row.items() if isinstance(v, str)
        )

    stale = [i for i in ids if differs(i)]
    if requests_made % every:
        assert stale == []
    else:
        stamped = {i: parse_servicestack_date(t["EditDate"]) for i, t in truth.items() if t}
        newest = max(v for v in stamped.values() if v)
        assert len(stale) <= count and all(stamped[i] == newest for i in stale)
