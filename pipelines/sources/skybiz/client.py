"""SkyBiz Cloud ERP, Customer module: read a ≤31-day window in one request, create batches of ≤500.

Everything here follows shared/api/SKYBIZ.md. Its quirks, in one place:

* One endpoint, ``POST {modules url}/customer.php``, credentials **in the JSON body** (§2). The body is
  built only inside :meth:`SkyBizClient._body`; the secret never reaches a log line or an error.
* The JSON envelope is read before the HTTP status (§3, §9: "always parse the JSON body before judging HTTP
  status"); request-level errors are ``"status": "error"`` with an exact vendor message, mapped to typed
  errors below. HTTP 429 and 5xx are transient whatever the body says; a 429 is recognised by its status,
  never by the text ``Rate limit exceeded``.
* A read has no paging: the whole window is one response, rows under ``data.data`` (§4).
* A create is all-or-nothing and a failed batch still answers ``"status": "response"`` (§5.3), so a failed
  batch is a :class:`CreateResult`, not an exception. A create is never retried here: when the answer is
  lost the batch may or may not exist, and only the push outbox can find out (§9).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from pipelines.errors import (
    ApiError,
    AuthenticationError,
    CreateOutcomeUnknownError,
    PermissionDeniedError,
    PushValidationError,
    RateLimitedError,
    RequestRejectedError,
    SkysmartError,
    TransientApiError,
    WindowError,
    redact,
)
from pipelines.http import CallContext, HttpClient, JsonResponse, retry_after_seconds, status_error
from pipelines.sources import Page, int_or_none, record_row, text_row
from pipelines.sources.skybiz import SPEC
from pipelines.sources.skybiz.settings import SkyBizSettings
from pipelines.windows import MYT, Window

SOURCE: Final = SPEC.name
ENDPOINT: Final = "customer.php"
MAX_DOCUMENTS: Final = 500  # SKYBIZ.md §5.1
# The vendor's sample client waits 30 s for a read and 120 s for a create (SKYBIZ.md §2).
CREATE_READ_TIMEOUT: Final = 120.0

# Exact vendor messages (SKYBIZ.md §4, §5.4, §10) → the error type that says what to do about them.
ERROR_MESSAGES: Final[Mapping[str, type[ApiError]]] = {
    "Invalid API credentials": AuthenticationError,
    "Customer read permission denied": PermissionDeniedError,
    "Customer create permission denied": PermissionDeniedError,
    "API integration is disabled": PermissionDeniedError,
    "HTTPS is required in Production mode": PermissionDeniedError,
    "Developer mode only accepts requests from localhost": PermissionDeniedError,
    "date_from and date_to are required": RequestRejectedError,
    "Invalid date format. Use YYYY-MM-DD format.": RequestRejectedError,
    "Date range cannot exceed 31 days.": RequestRejectedError,
    "date_from cannot be after date_to.": RequestRejectedError,
    "Invalid action. Use 'read' or 'create'.": RequestRejectedError,
    "Invalid JSON payload": RequestRejectedError,
    "Maximum 500 documents per request": RequestRejectedError,
    "No documents provided": RequestRejectedError,
    "Method not allowed": RequestRejectedError,
}

_DOCUMENT_REASON = re.compile(r"^Document \d+ \(CusCode: (?P<code>.*?)\): (?P<reason>.*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class DuplicateCustomer:
    """One ``fail_details.duplicate_customers`` entry: a code that exists already or twice in the batch."""

    cuscode: str
    error: str


@dataclass(frozen=True, slots=True)
class CreateFailDetails:
    """``data.fail_details`` of a create; the vendor omits keys freely, so each defaults to empty (§5.3)."""

    compulsory_fields_missing: tuple[str, ...] = ()
    duplicate_customers: tuple[DuplicateCustomer, ...] = ()
    invalid_currencies: tuple[str, ...] = ()
    validation_errors: tuple[str, ...] = ()

    def reasons_by_code(self) -> dict[str, list[str]]:
        """Every failure reason, keyed by the CusCode it names (``""`` when a reason names none)."""
        out: dict[str, list[str]] = {}
        for dup in self.duplicate_customers:
            out.setdefault(dup.cuscode, []).append(dup.error)
        for text in (*self.compulsory_fields_missing, *self.invalid_currencies, *self.validation_errors):
            match = _DOCUMENT_REASON.match(text)
            code, reason = (match["code"], match["reason"]) if match else ("", text)
            out.setdefault(code, []).append(reason)
        return out


@dataclass(frozen=True, slots=True)
class CreateResult:
    """What SkyBiz said about one create batch. A rejected batch is a result too (all-or-nothing, §5).

    Attributes:
        request_id: the vendor's request id.
        status: the envelope status (``response``).
        sent: how many documents we sent.
        total: ``summary.total_documents`` (``None`` when the vendor left it out).
        inserted: ``summary.inserted`` (``None`` when left out).
        failed: ``summary.failed`` (``None`` when left out).
        successful_codes: ``successful_documents``.
        failed_codes: ``failed_documents``.
        fail_details: the parsed ``fail_details``.
    """

    request_id: str
    status: str
    sent: int
    total: int | None
    inserted: int | None
    failed: int | None
    successful_codes: tuple[str, ...] = ()
    failed_codes: tuple[str, ...] = ()
    fail_details: CreateFailDetails = field(default_factory=CreateFailDetails)

    @property
    def ok(self) -> bool:
        """True only when the whole batch was saved (SKYBIZ.md §9).

        ``status`` is ``response``, no document failed, and ``inserted`` equals ``total_documents`` — which
        must also be what we sent, so a summary about a different batch size never passes for success.
        """
        return (
            self.status == "response"
            and not self.failed_codes
            and self.inserted is not None
            and self.inserted == self.total == self.sent
        )


class SkyBizClient:
    """Reads customer windows from, and creates customers in, one SkyBiz tenant.

    Thread-safe: one client (one connection pool, one rate limit) can serve many threads.

    Args:
        settings: the modules URL (ending ``/apiv2/modules``), the key pair and HTTP limits.
        http: an :class:`HttpClient` to share; by default the client makes its own.
    """

    def __init__(self, settings: SkyBizSettings, *, http: HttpClient | None = None) -> None:
        self.settings = settings
        self.url = f"{settings.url.rstrip('/')}/{ENDPOINT}"
        self.http = http or HttpClient(SOURCE, settings.http)

    def __repr__(self) -> str:
        return f"SkyBizClient(url={self.url!r})"

    def __enter__(self) -> SkyBizClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections."""
        self.http.close()

    # -- read ---------------------------------------------------------------------------------------------

    def read_window(
        self,
        window: Window,
        fields: list[str] | None = None,
        filters: dict[str, str] | None = None,
    ) -> Page:
        """Every customer whose ``DateTimeModified`` falls in the window (Malaysia dates, both inclusive).

        One request, one page (SkyBiz has no paging, §4); retried on transient failures.

        Args:
            window: a SkyBiz window of at most 31 days; refused before anything is sent otherwise.
            fields: projection (``None``/empty = every field).
            filters: exact-match filters, e.g. ``{"Town": "Kuala Lumpur"}``.

        Raises:
            WindowError: the window is not a SkyBiz window of at most 31 days.
            AuthenticationError, PermissionDeniedError, RequestRejectedError: the vendor refused.
            RetriesExhaustedError: transient failures outlasted the retries.
        """
        self._check_window(window)
        ctx = CallContext(SOURCE, "read", window=window.key, page=1)
        body = {
            "action": "read",
            "date_from": window.start.isoformat(),
            "date_to": window.end.isoformat(),
            "fields": list(fields or []),
            "filters": dict(filters or {}),
        }
        return self.http.request(
            "POST",
            self.url,
            ctx=ctx,
            interpret=lambda resp: self._read_page(resp, ctx, window),
            json_body=self._body(body),
        )

    def test_connection(self) -> tuple[bool, str]:
        """Whether the credentials can read customers: a one-day read of today (Malaysia), for hooks."""
        today = datetime.now(MYT).date()
        try:
            page = self.read_window(Window(SOURCE, today, today))
        except SkysmartError as exc:
            return False, redact(f"{type(exc).__name__}: {exc}")
        return True, f"SkyBiz customer read ok ({len(page.rows)} row(s) today, request_id={page.request_id})"

    def call(self, payload: Mapping[str, Any], *, retry: bool = True) -> dict[str, Any]:
        """Send one raw ``customer.php`` request (credentials added) and return its envelope.

        For diagnostics and for actions this client has no method for. The envelope's errors are mapped to
        typed errors exactly as for :meth:`read_window`; numbers in the result are their vendor text.
        """
        action = payload.get("action")
        ctx = CallContext(SOURCE, str(action) if isinstance(action, str) and action else "call")
        return self.http.request(
            "POST",
            self.url,
            ctx=ctx,
            interpret=lambda resp: self._envelope(resp, ctx)[0],
            json_body=self._body(payload),
            retry=retry,
        )

    # -- create -------------------------------------------------------------------------------------------

    def create(self, documents: Sequence[Mapping[str, Any]]) -> CreateResult:
        """Send one create batch, exactly once; a rejected batch comes back as a result, not an error.

        The vendor sample's client-side rules run first (every ``CusCode`` non-empty, at most 500
        documents, §5.1); the server's own validation (compulsory fields, duplicates, currencies) answers
        in :class:`CreateResult`. Retrying is left to the push outbox.

        Raises:
            PushValidationError: the batch breaks a client-side rule; nothing was sent.
            CreateOutcomeUnknownError: the batch was (possibly) sent but no trustworthy answer came back
                (timeout, dropped connection, 5xx, unreadable body): it may or may not exist now.
            RateLimitedError: SkyBiz refused with 429; nothing was created.
            TransientApiError: the connection could not even be opened; nothing was sent.
            AuthenticationError, PermissionDeniedError, RequestRejectedError: refused as a whole.
        """
        docs = [dict(doc) for doc in documents]
        self._check_documents(docs)
        ctx = CallContext(SOURCE, "create")
        body = {"action": "create", "customer_data": {"documents": docs}}
        try:
            return self.http.request(
                "POST",
                self.url,
                ctx=ctx,
                interpret=lambda resp: self._create_result(resp, ctx, len(docs)),
                json_body=self._body(body),
                retry=False,
                read_timeout=max(CREATE_READ_TIMEOUT, self.settings.http.read_timeout),
            )
        except RateLimitedError:
            raise  # a 429 is answered before any work: nothing was created
        except TransientApiError as exc:
            if exc.context.get("sent") is False:
                raise  # the connection never opened: nothing was sent
            raise CreateOutcomeUnknownError(
                f"create of {len(docs)} document(s): outcome unknown, the batch may or may not have been "
                f"saved ({exc.message})",
                source=SOURCE,
                request_id=exc.request_id,
                status_code=exc.status_code,
                documents=len(docs),
            ) from exc

    # -- internals ----------------------------------------------------------------------------------------

    def _body(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        # The one place the key pair is revealed: straight into the request body (SKYBIZ.md §2).
        return {
            "api_key": self.settings.api_key.reveal(),
            "api_secret": self.settings.api_secret.reveal(),
            **payload,
        }

    @staticmethod
    def _check_window(window: Window) -> None:
        if window.source != SOURCE:
            raise WindowError(
                f"a {window.source} window cannot be read from SkyBiz", source=SOURCE, window=window.key
            )
        limit = SPEC.max_window_days
        if window.start > window.end or (window.end - window.start) > timedelta(days=limit - 1):
            raise WindowError(
                f"window spans {window.days} days; SkyBiz accepts 1 to {limit}",
                source=SOURCE,
                window=window.key,
            )

    @staticmethod
    def _check_documents(docs: list[dict[str, Any]]) -> None:
        if not docs:
            raise PushValidationError("a create batch needs at least one document", source=SOURCE)
        # The vendor's sample loop, which it asks us not to modify (SKYBIZ.md §5.4): PHP empty() semantics,
        # so a missing, null, "", "0", 0 or false CusCode is empty; position is 1-based; checked before count.
        for position, doc in enumerate(docs, start=1):
            code = doc.get("CusCode")
            if not code or code == "0":
                raise PushValidationError(
                    f"CLIENT-SIDE REJECTION: Document at position {position} has empty CusCode",
                    source=SOURCE,
                    field="CusCode",
                    position=position,
                )
        if len(docs) > MAX_DOCUMENTS:
            raise PushValidationError(
                f"CLIENT-SIDE REJECTION: You have {len(docs)} documents. Maximum is {MAX_DOCUMENTS}.",
                source=SOURCE,
                documents=len(docs),
            )

    def _envelope(self, resp: JsonResponse, ctx: CallContext) -> tuple[dict[str, Any], str]:
        """The envelope and its request id, or the typed error it (or the HTTP status) stands for."""
        body = resp.body
        request_id = body.get("request_id") if isinstance(body, dict) else None
        request_id = request_id if isinstance(request_id, str) else None
        message = body.get("message") if isinstance(body, dict) else None
        message = message if isinstance(message, str) and message else None
        # 429 and 5xx are transient whatever the envelope says (SKYBIZ.md §10).
        if resp.status_code == 429 or resp.status_code >= 500:
            raise status_error(
                resp.status_code,
                f"{ctx.describe()}: HTTP {resp.status_code}: {message or 'no message'}",
                ctx,
                request_id=request_id,
                retry_after=retry_after_seconds(resp.headers.get("Retry-After")),
            )
        if not isinstance(body, dict) or body.get("status") not in ("response", "error"):
            raise ApiError(
                f"{ctx.describe()}: HTTP {resp.status_code} without the documented envelope",
                **ctx.error_fields(),
                request_id=request_id,
                status_code=resp.status_code,
            )
        if body["status"] == "error":
            text = message or "error without a message"
            error_type = ERROR_MESSAGES.get(text)
            if error_type is None:
                # Unknown text: let the HTTP status decide (401/403/other 4xx; a 2xx error is a refusal).
                code = resp.status_code if resp.status_code >= 400 else 400
                raise status_error(code, f"{ctx.describe()}: {text}", ctx, request_id=request_id)
            raise error_type(
                f"{ctx.describe()}: {text}",
                **ctx.error_fields(),
                request_id=request_id,
                status_code=resp.status_code,
            )
        if request_id is None:
            raise ApiError(
                f"{ctx.describe()}: response without a request_id",
                **ctx.error_fields(),
                status_code=resp.status_code,
            )
        return body, request_id

    def _read_page(self, resp: JsonResponse, ctx: CallContext, window: Window) -> Page:
        body, request_id = self._envelope(resp, ctx)
        data = body.get("data")
        rows = data.get("data") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise ApiError(
                f"{ctx.describe()}: response without a data.data row list",
                **ctx.error_fields(),
                request_id=request_id,
                status_code=resp.status_code,
            )
        assert isinstance(data, dict)
        returned = data.get("total_returned")
        if returned is not None and str(returned) != str(len(rows)):
            raise ApiError(
                f"{ctx.describe()}: total_returned={returned} but {len(rows)} rows arrived",
                **ctx.error_fields(),
                request_id=request_id,
            )
        echoed = data.get("date_range")
        if isinstance(echoed, dict) and (
            echoed.get("from") not in (None, window.start.isoformat())
            or echoed.get("to") not in (None, window.end.isoformat())
        ):
            raise ApiError(
                f"{ctx.describe()}: answered for {echoed.get('from')}..{echoed.get('to')}, "
                "not the window asked",
                **ctx.error_fields(),
                request_id=request_id,
            )
        # An item that is not an object is one hostile record, not a broken answer: kept (record_row).
        return Page(rows=[record_row(row) for row in rows], request_id=request_id, page=1)

    def _create_result(self, resp: JsonResponse, ctx: CallContext, sent: int) -> CreateResult:
        body, request_id = self._envelope(resp, ctx)
        data = body.get("data")
        data = data if isinstance(data, dict) else {}
        summary = data.get("summary")
        summary = summary if isinstance(summary, dict) else {}
        details = data.get("fail_details")
        details = details if isinstance(details, dict) else {}
        return CreateResult(
            request_id=request_id,
            status=str(body["status"]),
            sent=sent,
            total=int_or_none(summary.get("total_documents")),
            inserted=int_or_none(summary.get("inserted")),
            failed=int_or_none(summary.get("failed")),
            successful_codes=_texts(data.get("successful_documents")),
            failed_codes=_texts(data.get("failed_documents")),
            fail_details=CreateFailDetails(
                compulsory_fields_missing=_texts(details.get("compulsory_fields_missing")),
                duplicate_customers=tuple(
                    DuplicateCustomer(str(item.get("cuscode", "")), str(item.get("error", "")))
                    if isinstance(item, dict)
                    else DuplicateCustomer("", str(item))
                    for item in _list(details.get("duplicate_customers"))
                ),
                invalid_currencies=_texts(details.get("invalid_currencies")),
                validation_errors=_texts(details.get("validation_errors")),
            ),
        )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(item if isinstance(item, str) else str(text_row({"v": item})["v"]) for item in _list(value))
