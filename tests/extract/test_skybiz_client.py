"""SkyBizClient against the SkyBiz emulator over real HTTP (shared/api/SKYBIZ.md)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from typing import Any, cast

import pyarrow as pa
import pytest

from pipelines.config import HttpSettings, Secret
from pipelines.errors import (
    ApiError,
    AuthenticationError,
    CreateOutcomeUnknownError,
    PermissionDeniedError,
    PushValidationError,
    RateLimitedError,
    RequestRejectedError,
    RetriesExhaustedError,
    WindowError,
)
from pipelines.sources.skybiz.client import CreateResult, SkyBizClient
from pipelines.sources.skybiz.settings import SkyBizSettings
from pipelines.windows import Window
from skysmart_sandbox.data import SandboxData
from skysmart_sandbox.server import SandboxServer
from tests.fixtures.sandbox import SandboxFactory, sandbox_data

MAY = Window("skybiz", date(2024, 5, 1), date(2024, 5, 31))


def client_for(
    server: SandboxServer, *, key: str | None = None, secret: str | None = None, **http: Any
) -> SkyBizClient:
    ep = server.endpoints
    settings = HttpSettings(
        **{"max_retries": 1, "backoff_initial": 0.01, "backoff_max": 0.02, "requests_per_second": 0, **http}
    )
    return SkyBizClient(
        SkyBizSettings(
            url=ep.skybiz_url,
            api_key=Secret(key or ep.skybiz_api_key),
            api_secret=Secret(secret or ep.skybiz_api_secret),
            http=settings,
        )
    )


def document(code: str, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "AccountCode": "AR-001",
        "CusCode": code,
        "CusName": f"Kedai {code} Sdn Bhd",
        "CurCode": "RM",
        "D_ay": 30,
        "CategoryCode": "RETAIL",
        "Address1": "12 Jalan SS2/24",
        "CreditLimit": 10000.5,
    }
    doc.update(fields)
    return doc


def one_day(day: date) -> Window:
    return Window("skybiz", day, day)


def forged_window(start: date, end: date) -> Window:
    """A window that skipped its own validation, to prove the client checks again before sending."""
    window = object.__new__(Window)
    for name, value in (("source", "skybiz"), ("start", start), ("end", end)):
        object.__setattr__(window, name, value)
    return window


# -- reading --------------------------------------------------------------------------------------------


def test_read_window_returns_the_servers_rows_as_vendor_text(sandbox: SandboxServer) -> None:
    with client_for(sandbox) as client:
        page = client.read_window(MAY)

    truth = sandbox.skybiz.read_window(MAY.start, MAY.end)
    assert page.page == 1 and page.request_id.startswith("req_")
    assert [r["CusCode"] for r in page.rows] == [r["CusCode"] for r in truth] and len(page.rows) > 10
    # Ordered by CusCode (every row has one).
    assert [r["CusCode"] for r in page.rows] == sorted(cast(str, r["CusCode"]) for r in page.rows)
    for row, expected in zip(page.rows, truth, strict=True):
        assert all(v is None or isinstance(v, str) for v in row.values())
        # Numbers arrive as their JSON text, never as floats; the value is the server's.
        assert float(row["CreditLimit"] or "nan") == float(expected["CreditLimit"])
        assert row["TermCode"] == str(expected["TermCode"])
        modified = datetime.strptime(row["DateTimeModified"] or "", "%Y-%m-%d %H:%M:%S")
        assert MAY.start <= modified.date() <= MAY.end


def test_fields_and_filters_are_sent(sandbox: SandboxServer) -> None:
    with client_for(sandbox) as client:
        every = client.read_window(MAY)
        town = next(r["Town"] for r in every.rows if r["Town"])
        page = client.read_window(MAY, fields=["CusCode", "Town"], filters={"Town": town or ""})
    assert page.rows and all(set(r) == {"CusCode", "Town"} for r in page.rows)
    assert {r["CusCode"] for r in page.rows} == {r["CusCode"] for r in every.rows if r["Town"] == town}


def test_empty_window_is_one_empty_page(sandbox: SandboxServer) -> None:
    with client_for(sandbox) as client:
        page = client.read_window(Window("skybiz", date(2019, 1, 1), date(2019, 1, 31)))
    assert page.rows == [] and page.request_id.startswith("req_") and page.page == 1


def test_test_connection(sandbox: SandboxServer) -> None:
    with client_for(sandbox) as good, client_for(sandbox, secret="not-the-secret") as bad:
        ok, message = good.test_connection()
        failed, reason = bad.test_connection()
    assert ok and "request_id=req_" in message
    assert not failed and "AuthenticationError" in reason and "Invalid API credentials" in reason
    assert "not-the-secret" not in reason


# -- windows ------------------------------------------------------------------------------------------------


def _edge_data() -> tuple[SandboxData, dict[str, datetime]]:
    """The shared dataset with four customers moved onto the Malaysia midnight edges of May 2024."""
    data = sandbox_data()
    table = data.skybiz
    edges = {
        0: datetime(2024, 4, 30, 23, 59, 59),  # last second before the window: out
        1: datetime(2024, 5, 1, 0, 0, 0),  # first second of the first day: in
        2: datetime(2024, 5, 31, 23, 59, 59),  # last second of the last day: in
        3: datetime(2024, 6, 1, 0, 0, 0),  # midnight after the last day: out
    }
    modified = table.column("DateTimeModified").to_pylist()
    for row, when in edges.items():
        modified[row] = when
    column = pa.array(modified, table.schema.field("DateTimeModified").type)
    table = table.set_column(table.schema.get_field_index("DateTimeModified"), "DateTimeModified", column)
    codes = table.column("CusCode").to_pylist()
    return dataclasses.replace(data, skybiz=table), {codes[row]: when for row, when in edges.items()}


def test_window_days_are_inclusive_with_malaysia_midnight_edges(sandbox_factory: SandboxFactory) -> None:
    data, edges = _edge_data()
    server = sandbox_factory(data=data)
    with client_for(server) as client:
        codes = {r["CusCode"] for r in client.read_window(MAY).rows}
        april = {r["CusCode"] for r in client.read_window(one_day(date(2024, 4, 30))).rows}
        june = {r["CusCode"] for r in client.read_window(one_day(date(2024, 6, 1))).rows}
    inside = {code for code, when in edges.items() if when.date().month == 5}
    outside = set(edges) - inside
    assert inside <= codes and not (outside & codes)
    assert {c for c, w in edges.items() if w.date() == date(2024, 4, 30)} <= april
    assert {c for c, w in edges.items() if w.date() == date(2024, 6, 1)} <= june


def test_31_day_window_is_accepted(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory()
    window = Window("skybiz", date(2024, 1, 1), date(2024, 1, 31))
    with client_for(server) as client:
        page = client.read_window(window)
    assert page.rows
    assert server.skybiz.received[-1].body["date_from"] == "2024-01-01"
    assert server.skybiz.received[-1].body["date_to"] == "2024-01-31"


def test_32_day_window_is_refused_before_sending(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory()
    with pytest.raises(WindowError):
        Window("skybiz", date(2024, 1, 1), date(2024, 2, 1))
    with client_for(server) as client:
        with pytest.raises(WindowError, match="32 days"):
            client.read_window(forged_window(date(2024, 1, 1), date(2024, 2, 1)))
        with pytest.raises(WindowError, match="smartacc"):
            client.read_window(Window("smartacc", date(2024, 1, 1), date(2024, 1, 2)))
    assert len(server.skybiz.received) == 0


# -- errors -----------------------------------------------------------------------------------------------

READ = {"action": "read", "date_from": "2024-05-01", "date_to": "2024-05-31"}
ERRORS = [
    pytest.param("bad-secret", READ, AuthenticationError, 401, "Invalid API credentials", id="bad-credentials"),  # noqa: E501
    pytest.param("createonly", READ, PermissionDeniedError, 403, "Customer read permission denied", id="no-read"),  # noqa: E501
    pytest.param("good", {**READ, "date_to": ""}, RequestRejectedError, 400, "date_from and date_to are required", id="dates-required"),  # noqa: E501
    pytest.param("good", {**READ, "date_from": "2024/05/01"}, RequestRejectedError, 400, "Invalid date format. Use YYYY-MM-DD format.", id="date-format"),  # noqa: E501
    pytest.param("good", {**READ, "date_to": "2024-06-01"}, RequestRejectedError, 400, "Date range cannot exceed 31 days.", id="range-too-wide"),  # noqa: E501
    pytest.param("good", {**READ, "date_from": "2024-06-01"}, RequestRejectedError, 400, "date_from cannot be after date_to.", id="from-after-to"),  # noqa: E501
    pytest.param("good", {"action": "delete"}, RequestRejectedError, 400, "Invalid action. Use 'read' or 'create'.", id="bad-action"),  # noqa: E501
    pytest.param("readonly", {"action": "create", "customer_data": {"documents": [document("X1")]}}, PermissionDeniedError, 403, "Customer create permission denied", id="no-create"),  # noqa: E501
    pytest.param("good", {"action": "create", "customer_data": {"documents": [document(f"X{i}") for i in range(501)]}}, RequestRejectedError, 400, "Maximum 500 documents per request", id="too-many-documents"),  # noqa: E501
    pytest.param("good", {"action": "create", "customer_data": {"documents": []}}, RequestRejectedError, 400, "No documents provided", id="no-documents"),  # noqa: E501
]  # fmt: skip


def _key_pair(server: SandboxServer, which: str) -> tuple[str, str]:
    creds = server.skybiz_credentials
    return {
        "good": (creds.api_key, creds.api_secret),
        "bad-secret": (creds.api_key, "definitely-not-it"),
        "readonly": (creds.readonly_api_key, creds.readonly_api_secret),
        "createonly": (creds.createonly_api_key, creds.createonly_api_secret),
    }[which]


@pytest.mark.parametrize(("keys", "payload", "error", "status", "message"), ERRORS)
def test_vendor_error_maps_to_its_type_and_is_not_retried(
    sandbox_factory: SandboxFactory,
    keys: str,
    payload: dict[str, Any],
    error: type[ApiError],
    status: int,
    message: str,
) -> None:
    server = sandbox_factory()
    key, secret = _key_pair(server, keys)
    with client_for(server, key=key, secret=secret, max_retries=3) as client, pytest.raises(error) as info:
        client.call(payload)
    err = info.value
    assert type(err) is error and not err.retryable
    assert err.message.endswith(message) and err.status_code == status
    assert [(r.status, r.message) for r in server.skybiz.received] == [(status, message)]  # one request
    assert err.request_id == server.skybiz.received[-1].request_id


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        pytest.param("0", "API integration is disabled", id="disabled"),
        pytest.param("1", "HTTPS is required in Production mode", id="production-over-http"),
    ],
)
def test_integration_mode_refusals_are_permission_errors(
    sandbox_factory: SandboxFactory, mode: str, message: str
) -> None:
    server = sandbox_factory(skybiz_mode=mode)
    with client_for(server) as client, pytest.raises(PermissionDeniedError, match=message):
        client.read_window(MAY)
    assert len(server.skybiz.received) == 1


def test_rate_limit_is_recognised_by_status(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(rate_limit_per_key_per_min=1, retry_after_seconds=0)
    with client_for(server, max_retries=0) as client:
        client.read_window(MAY)
        with pytest.raises(RetriesExhaustedError) as info:
            client.read_window(MAY)
    cause = info.value.__cause__
    assert isinstance(cause, RateLimitedError) and cause.status_code == 429
    assert server.skybiz.received[-1].status == 429


# -- creating ---------------------------------------------------------------------------------------------


def test_create_success(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory()
    with client_for(server) as client:
        result = client.create([document("ZZ-NEW-1"), document("ZZ-NEW-2", CurCode="SGD")])
    assert isinstance(result, CreateResult) and result.ok
    assert (result.sent, result.total, result.inserted, result.failed) == (2, 2, 2, 0)
    assert result.successful_codes == ("ZZ-NEW-1", "ZZ-NEW-2") and result.failed_codes == ()
    assert result.request_id.startswith("req_")
    stored = server.skybiz.customer("ZZ-NEW-1")
    assert stored is not None and stored["FinCatCode"] == "B55"


def test_failed_batch_is_a_result_with_parsed_details(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory()
    existing = sandbox_data().skybiz.column("CusCode")[0].as_py()
    docs = [
        document("ZZ-OK"),
        document(existing),
        document("ZZ-CUR", CurCode="XXX"),
        {"CusCode": "ZZ-BARE"},
        document("ZZ-TWICE"),
        document("ZZ-TWICE"),
    ]
    with client_for(server) as client:
        result = client.create(docs)
    assert not result.ok and result.status == "response"
    assert result.inserted == 0 and result.sent == 6
    assert set(result.failed_codes) == {existing, "ZZ-CUR", "ZZ-BARE", "ZZ-TWICE"}
    details = result.fail_details
    assert {(d.cuscode, d.error) for d in details.duplicate_customers} == {
        (existing, "Customer code already exists"),
        ("ZZ-TWICE", "Duplicate CusCode found in the same batch"),
    }
    assert details.invalid_currencies == ("Document 3 (CusCode: ZZ-CUR): Currency code 'XXX' does not exist",)
    assert details.compulsory_fields_missing == (
        "Document 4 (CusCode: ZZ-BARE): Missing fields - AccountCode, CusName, CurCode, D_ay, CategoryCode",
    )
    reasons = details.reasons_by_code()
    assert reasons["ZZ-CUR"] == ["Currency code 'XXX' does not exist"]
    assert reasons[existing] == ["Customer code already exists"]
    assert server.skybiz.customer("ZZ-OK") is None  # all or nothing


@pytest.mark.parametrize(
    ("docs", "message"),
    [
        pytest.param([document("A1"), document("")], "Document at position 2 has empty CusCode", id="empty"),
        pytest.param([document("0")], "Document at position 1 has empty CusCode", id="php-empty-zero"),
        pytest.param([{"CusName": "no code"}], "Document at position 1 has empty CusCode", id="missing"),
        pytest.param(
            [document(f"B{i}") for i in range(501)], "You have 501 documents. Maximum is 500.", id="501"
        ),
        pytest.param([], "at least one document", id="none"),
    ],
)
def test_client_side_rules_refuse_before_sending(
    sandbox_factory: SandboxFactory, docs: list[dict[str, Any]], message: str
) -> None:
    server = sandbox_factory()
    with client_for(server) as client, pytest.raises(PushValidationError, match=message):
        client.create(docs)
    assert len(server.skybiz.received) == 0


def test_500_documents_are_sent(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory()
    with client_for(server) as client:
        result = client.create([document(f"ZZ-{i:04d}") for i in range(500)])
    assert result.ok and result.inserted == 500


@pytest.mark.parametrize("fault", ["500", "drop", "truncate", "non_json"])
def test_create_is_never_retried_and_reports_an_unknown_outcome(
    sandbox_factory: SandboxFactory, fault: str
) -> None:
    server = sandbox_factory()
    server.skybiz.switches.inject(fault, fault)
    with client_for(server, max_retries=5) as client, pytest.raises(CreateOutcomeUnknownError) as info:
        client.create([document("ZZ-UNKNOWN")])
    assert list(server.skybiz.switches.fail_next) == [fault]  # exactly one attempt
    assert isinstance(info.value.__cause__, ApiError) and "outcome unknown" in str(info.value)


def test_lost_create_response_really_may_have_committed(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory()
    server.skybiz.switches.inject("drop_after_commit")
    with client_for(server) as client, pytest.raises(CreateOutcomeUnknownError):
        client.create([document("ZZ-LOST")])
    assert server.skybiz.customer("ZZ-LOST") is not None
    assert len(server.skybiz.received) == 1


def test_rate_limited_create_is_known_not_created(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(retry_after_seconds=0)
    server.skybiz.switches.inject("429")
    with client_for(server) as client, pytest.raises(RateLimitedError):
        client.create([document("ZZ-LATER")])
    assert server.skybiz.customer("ZZ-LATER") is None and not server.skybiz.switches.fail_next


def test_created_customer_reads_back_from_its_window_with_exact_numbers(
    sandbox_factory: SandboxFactory,
) -> None:
    server = sandbox_factory()
    with client_for(server) as client:
        assert client.create([document("ZZ-TODAY", CreditLimit=1234.5, D_ay=45)]).ok
        stored = server.skybiz.customer("ZZ-TODAY")
        assert stored is not None and isinstance(stored["DateTimeModified"], datetime)
        day = stored["DateTimeModified"].date()
        rows = client.read_window(Window("skybiz", day - timedelta(days=1), day)).rows
    row = next(r for r in rows if r["CusCode"] == "ZZ-TODAY")
    assert row["TermCode"] == "45"  # D_ay is read back as TermCode (SKYBIZ.md §5.1)
    assert row["CreditLimit"] is not None and float(row["CreditLimit"]) == 1234.5
