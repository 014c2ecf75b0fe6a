r"""SmartAcc DynaMod Web API emulator (customer module): a ServiceStack look-alike on Starlette.

Follows ``shared/api/SMARTACC.md`` to the letter, §8 (behaviour) and §9 (assumptions) in particular, so the
client, the demo and the benchmarks meet the quirks of the real server on loopback: pages of exactly 20
without totals, ``\/Date(ms-0000)\/`` dates computed from Malaysia wall time, null members omitted, API keys
as bearer tokens or Basic user names, ``ss-id``/``ss-pid`` sessions, ServiceStack error bodies with
framework texts, and a dataset that changes while a client pages through it.

Decisions where the vendor is silent (beyond §9) — kept here so client and emulator agree:

- Formats: JSON only. ``?format=json``, a ``.json`` suffix and any ``Accept`` header give JSON (an
  ``Accept`` for XML falls back to JSON); an explicit ``?format=``/suffix for xml, jsv, csv or html answers
  406 ``NotAcceptable``. JSONP (``?callback=name``) is honoured.
- Routes are matched case-insensitively, a trailing ``/`` is ignored. An unknown route, or a known route
  with the wrong verb, answers ServiceStack's release-mode ``404`` as ``text/plain`` (NotFoundHttpHandler).
- Request DTOs bind from path and query string alike, case-insensitively (ServiceStack): ``?Page=3`` on
  ``/Customers/EditDate/{EditDate}`` pages it, ``/Customers?AcCustomerID=X`` looks ``X`` up. Precedence in
  the Customers op: AcCustomerID, MobileNo, EditDate, Page, else everything. A value that does not parse
  (``/Customers/page/abc``) answers 400 ``SerializationException`` ``Unable to bind to request 'Customers'``
  before authentication, as ServiceStack binds the DTO before its auth filters run.
- ``Page`` below 1 (or ``RecordsPerPage`` below 1) answers 400 ``ArgumentException``.
- Decimals are written in their shortest form (``0``, ``1234.5``); the real server may write the column
  scale (``0.00``) — clients must accept any JSON number.
- Create/update bodies: ``Customer.CustomerRecord`` holds AcCustomerSimple fields (AcCustomer minus audit and
  e-invoice fields, §9); other properties are ignored. Update changes only the properties sent. Both answer
  the whole stored AcCustomer record. A new customer gets ``Stamp`` 0, ``CreateDate`` = ``EditDate`` = now,
  ``CreateBy``/``EditBy`` = the caller's user name, and defaults for fields not sent (``_CREATE_DEFAULTS``).
- 401 carries ``WWW-Authenticate: credentials realm="/auth/credentials"`` (the first auth provider); a
  refused login (401 ``Invalid Username or Password``) does not. ``?apikey=`` is not accepted (ServiceStack's
  default), ``/apikeys`` is not served, sessions never expire, ``/auth/logout`` ends one.
- Run-time switches besides :class:`Switches`: ``require_secure_connection`` and ``revoked_permissions`` on
  the state. Latency, faults and 429s are the fault middleware's (it renders them with
  :func:`render_error`); live mutation (``mutate_every_n_requests``) is applied here.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import json
import random
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from json.encoder import encode_basestring
from typing import Any, Final, Protocol
from urllib.parse import parse_qsl

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipelines.errors import redact, register_secret
from skysmart_sandbox.faults import SMARTACC_SHAPE, corrupt_json_records
from skysmart_sandbox.switches import Switches

PAGE_SIZE: Final = 20  # "Each page consists of 20 records" [CU]
GROUPS_PER_PAGE: Final = 20  # CustomerGroups RecordsPerPage default [CG]
MYT_OFFSET_MS: Final = 8 * 3600 * 1000  # server time zone UTC+08:00 (§9)
MIN_VALUE_MS: Final = -62135596800000  # DateTime.MinValue, written without offset shift (§6)
JSON_TYPE: Final = "application/json; charset=utf-8"
_EPOCH: Final = datetime(1970, 1, 1)
_MIN_WALL_MS: Final = (datetime(1, 1, 2) - _EPOCH) // timedelta(milliseconds=1)

PERMISSIONS: Final = frozenset(
    {
        "Customer-Setup.GET",
        "Customer-Setup.ADD",
        "Customer-Setup.UPDATE",
        "Term-Setup.GET",
        "CustomerArea-Setup.GET",
        "CustomerGroup-Setup.GET",
        "CustomerUDGroup-Setup.GET",
    }
)
READ_PERMISSIONS: Final = frozenset(p for p in PERMISSIONS if p.endswith(".GET"))

# ServiceStack framework texts (shared/api/SMARTACC.md §2, [SS-MSG]).
NOT_AUTHENTICATED: Final = "Not Authenticated"
INVALID_CREDENTIALS: Final = "Invalid Username or Password"
API_KEY_DOES_NOT_EXIST: Final = "ApiKey does not exist"
API_KEY_CANCELLED: Final = "ApiKey has been cancelled"
API_KEY_EXPIRED: Final = "ApiKey has expired"
API_KEY_INSECURE: Final = (
    "Sending ApiKey over insecure connection forbidden when RequireSecureConnection=true"
)
INVALID_PERMISSION: Final = "Invalid Permission"
WWW_AUTHENTICATE: Final = 'credentials realm="/auth/credentials"'

# Our assumptions for business errors (§9).
DUPLICATE_CUSTOMER: Final = "Customer ID already exists"
CUSTOMER_NOT_FOUND: Final = "Customer not found"

_OP_PERMISSION: Final = {
    "Customers": "Customer-Setup.GET",
    "CustomersSimple": "Customer-Setup.GET",
    "CreateCustomerSimple": "Customer-Setup.ADD",
    "UpdateCustomerSimple": "Customer-Setup.UPDATE",
    "Terms": "Term-Setup.GET",
    "CustomerAreas": "CustomerArea-Setup.GET",
    "CustomerGroups": "CustomerGroup-Setup.GET",
    "CustomerUDGroups": "CustomerUDGroup-Setup.GET",
}

# (verb, path segments lower-cased, op); "{Name}" binds a DTO property; verb "*" = all verbs [AU].
_ROUTES: Final[tuple[tuple[str, tuple[str, ...], str], ...]] = (
    ("GET", ("customers", "page", "{Page}"), "Customers"),
    ("GET", ("customers", "editdate", "{EditDate}"), "Customers"),
    ("GET", ("customers", "customerid", "{AcCustomerID}"), "Customers"),
    ("GET", ("customers", "mobileno", "{MobileNo}"), "Customers"),
    ("GET", ("customers",), "Customers"),
    ("GET", ("customers", "simple", "page", "{Page}"), "CustomersSimple"),
    ("GET", ("customers", "simple", "editdate", "{EditDate}"), "CustomersSimple"),
    ("GET", ("customers", "simple", "customerid", "{AcCustomerID}"), "CustomersSimple"),
    ("GET", ("customers", "simple", "mobileno", "{MobileNo}"), "CustomersSimple"),
    ("GET", ("customers", "simple"), "CustomersSimple"),
    ("POST", ("customers", "simple", "create"), "CreateCustomerSimple"),
    ("POST", ("customers", "simple", "update"), "UpdateCustomerSimple"),
    ("GET", ("terms",), "Terms"),
    ("GET", ("customerareas",), "CustomerAreas"),
    ("GET", ("customerudgroups",), "CustomerUDGroups"),
    ("GET", ("customergroups",), "CustomerGroups"),
    ("GET", ("customergroups", "page", "{Page}"), "CustomerGroups"),
    ("GET", ("customergroups", "accusgroupid", "{AcCusGroupID}"), "CustomerGroups"),
    ("*", ("auth",), "Authenticate"),
    ("*", ("auth", "{provider}"), "Authenticate"),
)
_OTHER_FORMATS: Final = frozenset({"xml", "jsv", "csv", "html"})

# AcCustomer vocabulary (§3). The field list itself comes from the data (data contract order).
_NULLABLE_DATES: Final = frozenset({"EInvoiceTINValidateDateTime"})  # the only DateTime? (§3)
_AUDIT_FIELDS: Final = frozenset({"CreateBy", "CreateDate", "EditBy", "EditDate", "Stamp"})
_REQUIRED_ON_WRITE: Final = (
    "AcCustomerID",
    "AcCustomerName",
    "AcTermID",
    "AcAreaID",
    "AcCusGroupID",
    "AcCusUDGroupID",
)
_ID_MAX_LENGTH: Final = 20  # NVARCHAR(20) [SO]
_CREATE_DEFAULTS: Final[Mapping[str, Any]] = {
    "IsActive": "Y",
    "IsMember": "N",
    "Gender": "M",
    "AcMemberEthnicID": "NA",
    "AcMemberIncomeID": "NA",
    "AcMemberOccupationID": "NA",
    "MemberPointBalance": 0.0,
    "MemberPointAccumulated": 0.0,
    "PriceCode": "1",
    "AcSalesmanID": "NA",
    "IsGSTRegister": "N",
    "AcCurrencyID": "RM",
    "IsAllowPrintStatement": "Y",
    "IsAllowExceedCreditTerm": "N",
    "IsAllowExceedCreditLimit": "N",
    "LocalCreditLimit": 0.0,
    "LocalBalanceAmount": 0.0,
    "IsAllowCreditSalesForPOS": "N",
}
_MUTATED_FIELDS: Final = ("BillingTel1", "Notes")

# Field kinds of the render-ready form: strings, UTC epoch ms (dates), float (decimal), int.
_S, _D, _DN, _F, _I = "s", "d", "dn", "f", "i"


class SmartAccDataset(Protocol):
    """What the emulator reads of ``skysmart_sandbox.data.SandboxData`` (kept structural on purpose)."""

    @property
    def smartacc(self) -> pa.Table:
        """AcCustomer records, the 93 documented fields in order, sorted by AcCustomerID."""

    @property
    def terms(self) -> pa.Table:
        """AcTermID, AcTermDesc, TermDays."""

    @property
    def customer_groups(self) -> pa.Table:
        """AcCusGroupID, AcCusGroupDesc."""

    @property
    def customer_areas(self) -> pa.Table:
        """AcAreaID, AcAreaDesc."""

    @property
    def customer_ud_groups(self) -> pa.Table:
        """AcCusUDGroupID, AcCusUDGroupDesc."""


# -- credentials ----------------------------------------------------------------------------------------


def _sandbox_key(label: str) -> str:
    """A deterministic key shaped like ServiceStack's: 24 bytes, URL-safe Base64, 32 characters [SS-AK]."""
    digest = hashlib.sha256(f"skysmart-sandbox-smartacc:{label}".encode()).digest()[:24]
    return base64.urlsafe_b64encode(digest).decode("ascii")


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """One API key: whose it is, what it may do, and whether ServiceStack still accepts it."""

    user: str
    permissions: frozenset[str]
    cancelled: bool = False
    expired: bool = False


@dataclass(frozen=True, slots=True)
class SmartAccCredentials:
    """The sandbox's keys and login, deterministic so demos and tests can be configured in advance.

    Attributes:
        api_key: full access (every permission of the customer module).
        readonly_api_key: the ``.GET`` permissions only — creates/updates answer 403 ``Invalid Permission``.
        no_permission_api_key: authenticates, but every op answers 403.
        cancelled_api_key / expired_api_key: refused with 403 ``ApiKey has been cancelled`` / ``has expired``.
        username / password: for ``POST /auth/credentials``; the session gets ``user_permissions``.
    """

    api_key: str = field(default_factory=lambda: _sandbox_key("live"))
    readonly_api_key: str = field(default_factory=lambda: _sandbox_key("readonly"))
    no_permission_api_key: str = field(default_factory=lambda: _sandbox_key("no-permission"))
    cancelled_api_key: str = field(default_factory=lambda: _sandbox_key("cancelled"))
    expired_api_key: str = field(default_factory=lambda: _sandbox_key("expired"))
    username: str = "sandbox"
    password: str = field(default_factory=lambda: _sandbox_key("password")[:20])
    user_permissions: frozenset[str] = PERMISSIONS

    def api_keys(self) -> dict[str, ApiKeyInfo]:
        """Every key the server knows, with its owner, permissions and state."""
        return {
            self.api_key: ApiKeyInfo(self.username, self.user_permissions),
            self.readonly_api_key: ApiKeyInfo("readonly", READ_PERMISSIONS),
            self.no_permission_api_key: ApiKeyInfo("nopermission", frozenset()),
            self.cancelled_api_key: ApiKeyInfo(self.username, self.user_permissions, cancelled=True),
            self.expired_api_key: ApiKeyInfo(self.username, self.user_permissions, expired=True),
        }

    def __repr__(self) -> str:
        return f"SmartAccCredentials(username={self.username!r}, keys=***, password=***)"


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """A request as the emulator saw it, every credential masked (keys, passwords, cookies).

    Tests assert on what a client sent; a secret is never stored in clear.
    """

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: str
    status: int
    user: str | None


@dataclass(frozen=True, slots=True)
class _Principal:
    user: str
    permissions: frozenset[str]


class _ApiError(Exception):
    """A ServiceStack error response, raised inside a handler and rendered by the dispatcher."""

    def __init__(
        self,
        status: int,
        message: str,
        error_code: str | None = None,
        errors: Sequence[Mapping[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.errors = tuple(errors)
        self.headers = dict(headers or {})


# -- rendering ------------------------------------------------------------------------------------------


def error_code_for(status: int) -> str:
    """ServiceStack's ErrorCode for an ``HttpError(status)``: the ``HttpStatusCode`` name.

    For example ``TooManyRequests``, ``Unauthorized``, ``Forbidden``, ``NotFound``.
    """
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return f"Http{status}"
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[\s-]+", phrase) if part)


def render_error(
    status: int,
    message: str,
    *,
    error_code: str | None = None,
    errors: Sequence[Mapping[str, str]] = (),
) -> tuple[bytes, str]:
    """A ServiceStack error body and its content type; the fault middleware uses it for 429/500 answers.

    Args:
        status: the HTTP status; the ErrorCode defaults to its ``HttpStatusCode`` name.
        message: ``ResponseStatus.Message``.
        error_code: overrides the default ErrorCode (an exception type name such as ``ValidationException``).
        errors: field errors, each with ``ErrorCode``, ``FieldName`` and ``Message``.

    Returns:
        ``(body, content_type)``, e.g. ``{"ResponseStatus":{"ErrorCode":"TooManyRequests",...}}``.
    """
    status_dto = {
        "ErrorCode": error_code or error_code_for(status),
        "Message": message,
        "Errors": [dict(e) for e in errors],
    }
    body = json.dumps({"ResponseStatus": status_dto}, ensure_ascii=False, separators=(",", ":"))
    return body.encode("utf-8"), JSON_TYPE


def _date_fragment(ms: int) -> str:
    # ServiceStack writes "\/Date(...)\/" with escaped slashes inside the JSON string (§6).
    return f'"\\/Date({ms}-0000)\\/"'


_SENTINEL_FRAGMENT: Final = _date_fragment(MIN_VALUE_MS)


def _number_text(value: float) -> str:
    """A decimal as .NET writes a value of scale 0 or its shortest exact form: ``0``, ``12.5``."""
    if value != value or value in (float("inf"), float("-inf")):
        return "0"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class _RecordRenderer:
    """Turns columns of render-ready values into JSON objects, precomputing every key prefix once."""

    __slots__ = ("kinds", "names", "prefixes")

    def __init__(self, names: Sequence[str], kinds: Sequence[str]) -> None:
        self.names = tuple(names)
        self.kinds = tuple(kinds)
        self.prefixes = tuple(f'"{n}":' for n in names)

    def render(self, columns: Sequence[Sequence[Any]]) -> list[str]:
        r"""One JSON object per row; ``columns`` hold one list per field, in field order.

        Plain loops over at most a page of values: measured faster than building dicts for ``json.dumps``
        (which also cannot write ServiceStack's ``\/Date(..)\/`` or leave null members out).
        """
        n = len(columns[0]) if columns else 0
        rows: list[list[str]] = [[] for _ in range(n)]
        for prefix, kind, values in zip(self.prefixes, self.kinds, columns, strict=True):
            if kind == _S:
                for row, v in zip(rows, values, strict=True):
                    if v is not None:
                        row.append(prefix + encode_basestring(v))
            elif kind == _D:
                sentinel = prefix + _SENTINEL_FRAGMENT
                for row, v in zip(rows, values, strict=True):
                    row.append(sentinel if v is None else prefix + _date_fragment(v))
            elif kind == _DN:
                for row, v in zip(rows, values, strict=True):
                    if v is not None:
                        row.append(prefix + _date_fragment(v))
            elif kind == _F:
                for row, v in zip(rows, values, strict=True):
                    row.append(prefix + ("0" if v is None else _number_text(v)))
            else:
                for row, v in zip(rows, values, strict=True):
                    row.append(prefix + ("0" if v is None else str(int(v))))
        return ["{" + ",".join(row) + "}" for row in rows]


def _kind_of(name: str, dtype: pa.DataType) -> str:
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return _DN if name in _NULLABLE_DATES else _D
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return _F
    if pa.types.is_integer(dtype):
        return _I
    return _S


def _one_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The column as one array, without the copy ``combine_chunks`` makes even of a single chunk."""
    if isinstance(column, pa.ChunkedArray):
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return column


def _render_ready(column: pa.ChunkedArray | pa.Array, kind: str) -> pa.Array:
    """A column in the form rendering wants: dates as UTC epoch ms (null = not set), decimals as float."""
    arr = _one_array(column)
    if kind in (_D, _DN):
        dtype = arr.type
        if pa.types.is_date(dtype):
            arr = arr.cast(pa.timestamp("ms"))
            dtype = arr.type
        ms = pc.cast(arr, pa.timestamp("ms", tz=dtype.tz), safe=False).cast(pa.int64())
        # Naive values are Malaysia wall time; the server converts local → UTC (§6, [SS-DT]).
        wall = ms if dtype.tz is None else pc.add(ms, MYT_OFFSET_MS)
        utc = ms if dtype.tz is not None else pc.subtract(ms, MYT_OFFSET_MS)
        unset = pc.fill_null(pc.less(wall, _MIN_WALL_MS), True)
        return pc.if_else(unset, pa.scalar(None, pa.int64()), utc)
    if kind == _F and not pa.types.is_float64(arr.type):
        return arr.cast(pa.float64())
    if kind == _I and not pa.types.is_int64(arr.type):
        return arr.cast(pa.int64())
    if kind == _S and not pa.types.is_string(arr.type):
        return arr.cast(pa.string())
    return arr


def _wall_to_utc_ms(wall: datetime) -> int:
    return (wall - _EPOCH) // timedelta(milliseconds=1) - MYT_OFFSET_MS


def _default_now_ms() -> int:
    return time.time_ns() // 1_000_000


_DOTNET_DATE: Final = re.compile(r"^\\?/Date\((-?\d+)([+-]\d{4})?\)\\?/$")


def _parse_datetime(text: str) -> int | None:
    r"""A request date in UTC epoch ms; ``None`` for empty or ``DateTime.MinValue`` ("not set").

    Accepts ISO-8601 (date only = midnight, Malaysia wall time unless an offset is given) and the
    ``\/Date(ms[±hhmm])\/`` form, as ServiceStack does (§6). Raises ``ValueError`` otherwise.
    """
    text = text.strip()
    if not text:
        return None
    if m := _DOTNET_DATE.match(text):
        ms = int(m.group(1))
        return None if ms <= MIN_VALUE_MS else ms
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        utc = parsed.astimezone(UTC).replace(tzinfo=None)
        ms = (utc - _EPOCH) // timedelta(milliseconds=1)
        wall_ms = ms + MYT_OFFSET_MS
    else:
        ms = _wall_to_utc_ms(parsed)
        wall_ms = ms + MYT_OFFSET_MS
    return None if wall_ms < _MIN_WALL_MS else ms


# -- the state ------------------------------------------------------------------------------------------


class SmartAccState:
    """The live SmartAcc server: customers (mutable), lookups, sessions, switches and received requests.

    Customers stay in the Arrow table they came in (never copied per request); edits and creates live in a
    small overlay of render-ready tuples keyed by slot. Two orders are kept as numpy arrays of slots: by
    AcCustomerID (the page route) and by (EditDate, AcCustomerID) (the EditDate route), both maintained under
    mutation, updates and creates. All access goes through one lock, so test threads can read and flip
    switches while uvicorn serves.

    Attributes:
        switches: latency/faults (applied by the fault middleware) and live mutation (applied here).
        credentials: keys and login the server accepts.
        received: recent requests, secrets masked (a bounded deque).
        require_secure_connection: ServiceStack's ``RequireSecureConnection`` for API keys; off by default
            on loopback (§9); on → API keys over plain HTTP answer 403.
        revoked_permissions: permissions taken from every caller at run time (a permissions switch).
    """

    def __init__(
        self,
        data: SmartAccDataset,
        switches: Switches | None = None,
        credentials: SmartAccCredentials | None = None,
        *,
        clock: Callable[[], int] | None = None,
        received_limit: int = 10_000,
    ) -> None:
        """Index the dataset once.

        Args:
            data: the generated dataset (``SandboxData``).
            switches: run-time switches; a well-behaved server when omitted.
            credentials: accepted keys and login; the deterministic sandbox defaults when omitted.
            clock: "now" as UTC epoch ms (for EditDate of edits and creates); the wall clock by default.
            received_limit: how many recent requests ``received`` keeps.
        """
        self.switches = switches if switches is not None else Switches()
        self.credentials = credentials if credentials is not None else SmartAccCredentials()
        self.received: deque[ReceivedRequest] = deque(maxlen=received_limit)
        self.require_secure_connection = False
        self.revoked_permissions: set[str] = set()
        self._clock = clock or _default_now_ms
        self._lock = threading.RLock()
        self._rng = random.Random(self.switches.seed)
        self._since_mutation = 0
        self._keys = self.credentials.api_keys()
        for secret in (*self._keys, self.credentials.password):
            register_secret(secret)
        self._sessions: dict[str, _Principal] = {}

        table = data.smartacc
        for required in ("AcCustomerID", "EditDate", "MobileNo", "Stamp", "CreateDate"):
            if required not in table.column_names:
                raise ValueError(f"SmartAcc data lacks the {required} column")
        table = _sorted_by_id(table)
        self.fields: tuple[str, ...] = tuple(table.column_names)
        self._index = {name: i for i, name in enumerate(self.fields)}
        self._kinds = tuple(_kind_of(f.name, f.type) for f in table.schema)
        columns = [_render_ready(table.column(i), k) for i, k in enumerate(self._kinds)]
        self._batch = pa.RecordBatch.from_arrays(columns, names=list(self.fields))
        self._n_base = self._batch.num_rows
        self._ids: pa.StringArray = self._batch.column(self._index["AcCustomerID"])
        self._renderer = _RecordRenderer(self.fields, self._kinds)
        simple = [i for i, n in enumerate(self.fields) if n not in _AUDIT_FIELDS and "EInvoice" not in n]
        self._simple_indices = simple
        self._all_indices = list(range(len(self.fields)))
        self._simple_batch = self._batch.select(simple)
        self._simple_renderer = _RecordRenderer(
            [self.fields[i] for i in simple], [self._kinds[i] for i in simple]
        )
        self.simple_fields: tuple[str, ...] = tuple(self.fields[i] for i in simple)

        # Orders. Slots 0..n-1 are table rows (already in id order); creates get slots from n upwards.
        self._id_order = np.arange(self._n_base, dtype=np.int64)
        edit_ms = pc.fill_null(self._batch.column(self._index["EditDate"]), MIN_VALUE_MS)
        self._edit_ms = np.asarray(edit_ms.to_numpy(zero_copy_only=False), dtype=np.int64).copy()
        self._edit_order = np.argsort(self._edit_ms, kind="stable").astype(np.int64)
        self._edit_keys = self._edit_ms[self._edit_order]

        mobiles = self._batch.column(self._index["MobileNo"])
        self._mobile_order = pc.array_sort_indices(mobiles, null_placement="at_end")
        self._mobiles_sorted = mobiles.take(self._mobile_order)
        self._mobile_count = len(mobiles) - mobiles.null_count

        self._overlay: dict[int, tuple[Any, ...]] = {}
        self._overlay_mobile: dict[str, set[int]] = {}
        self._created: dict[str, int] = {}
        self._next_slot = self._n_base

        self._lookups = _Lookups(data)

    # -- reading ----------------------------------------------------------------------------------------

    @property
    def customer_count(self) -> int:
        """How many customers the server holds now (creates included)."""
        with self._lock:
            return len(self._id_order)

    def customer_ids(self) -> list[str]:
        """Every AcCustomerID the server holds now, in id order (the order of the page route)."""
        with self._lock:
            order = self._id_order.copy()
            created = {slot: cid for cid, slot in self._created.items()}
        base = self._ids.to_pylist()
        return [created[s] if s >= self._n_base else str(base[s]) for s in order.tolist()]

    def customer(self, customer_id: str) -> dict[str, Any] | None:
        """One customer as the server holds it (render-ready values: dates are UTC epoch ms), or None."""
        with self._lock:
            slot = self._slot_of(customer_id)
            return None if slot is None else dict(zip(self.fields, self._record(slot), strict=True))

    def customer_json(self, customer_id: str) -> dict[str, Any] | None:
        """One customer exactly as the JSON routes render it (parsed back), or None."""
        with self._lock:
            slot = self._slot_of(customer_id)
            if slot is None:
                return None
            obj: dict[str, Any] = json.loads(self._render_slots(np.array([slot]), simple=False)[0])
            return obj

    def _slot_of(self, customer_id: str) -> int | None:
        n = self._n_base
        ids = self._ids
        pos = bisect.bisect_left(range(n), customer_id, key=lambda i: ids[i].as_py())
        if pos < n and ids[pos].as_py() == customer_id:
            return pos
        return self._created.get(customer_id)

    def _id_of(self, slot: int) -> str:
        record = self._overlay.get(slot)
        if record is not None:
            return str(record[self._index["AcCustomerID"]])
        return str(self._ids[slot].as_py())

    def _record(self, slot: int) -> tuple[Any, ...]:
        record = self._overlay.get(slot)
        if record is not None:
            return record
        row = self._batch.slice(slot, 1)
        return tuple(col[0].as_py() for col in row.columns)

    def _columns(
        self, slots: np.ndarray, simple: bool, overlay: Mapping[int, tuple[Any, ...]] | None = None
    ) -> list[list[Any]]:
        """Render-ready values of ``slots``: one list per field (AcCustomer or AcCustomerSimple fields)."""
        batch = self._simple_batch if simple else self._batch
        indices = self._simple_indices if simple else self._all_indices
        overlay = self._overlay if overlay is None else overlay
        n = len(slots)
        if n == 0:
            return [[] for _ in indices]
        base_positions = np.nonzero(slots < self._n_base)[0]
        columns: list[list[Any]]
        if len(base_positions):
            base_slots = slots[base_positions]
            first = int(base_slots[0])
            contiguous = bool(np.all(np.diff(base_slots) == 1))
            part = batch.slice(first, len(base_slots)) if contiguous else batch.take(pa.array(base_slots))
            got = [col.to_pylist() for col in part.columns]
            if len(base_positions) == n:
                columns = got
            else:
                columns = [[None] * n for _ in indices]
                positions = base_positions.tolist()
                for target, values in zip(columns, got, strict=True):
                    for j, pos in enumerate(positions):
                        target[pos] = values[j]
        else:
            columns = [[None] * n for _ in indices]
        if overlay:
            for pos, slot in enumerate(slots.tolist()):
                record = overlay.get(slot)
                if record is not None:
                    for target, i in zip(columns, indices, strict=True):
                        target[pos] = record[i]
        return columns

    def _render_slots(
        self, slots: np.ndarray, *, simple: bool, overlay: Mapping[int, tuple[Any, ...]] | None = None
    ) -> list[str]:
        renderer = self._simple_renderer if simple else self._renderer
        return renderer.render(self._columns(slots, simple, overlay))

    def _page_slots(self, page: int) -> np.ndarray:
        start = (page - 1) * PAGE_SIZE
        return self._id_order[start : start + PAGE_SIZE].copy()

    def _edit_slots(self, since_ms: int, page: int) -> np.ndarray:
        first = int(np.searchsorted(self._edit_keys, since_ms, side="left"))
        start = first + (page - 1) * PAGE_SIZE
        return self._edit_order[start : start + PAGE_SIZE].copy()

    def _mobile_slots(self, mobile: str) -> np.ndarray:
        sorted_mobiles = self._mobiles_sorted
        m = self._mobile_count

        def key(i: int) -> str:
            return str(sorted_mobiles[i].as_py())

        lo = bisect.bisect_left(range(m), mobile, key=key)
        hi = bisect.bisect_right(range(m), mobile, lo=lo, key=key)
        found = {int(s) for s in self._mobile_order.slice(lo, hi - lo).to_pylist()}
        found = {s for s in found if s not in self._overlay}
        found |= self._overlay_mobile.get(mobile, set())
        return np.array(sorted(found, key=self._id_of), dtype=np.int64)

    # -- writing ----------------------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock())

    def _store(self, slot: int, record: tuple[Any, ...]) -> None:
        """Put a record in the overlay and move it in the EditDate order (creates: in the id order too)."""
        mobile_i = self._index["MobileNo"]
        old = self._overlay.get(slot)
        old_mobile = old[mobile_i] if old is not None else None
        if old_mobile is not None:
            self._overlay_mobile.get(old_mobile, set()).discard(slot)
        self._overlay[slot] = record
        if record[mobile_i] is not None:
            self._overlay_mobile.setdefault(record[mobile_i], set()).add(slot)
        edit = record[self._index["EditDate"]]
        new_ms = MIN_VALUE_MS if edit is None else int(edit)
        customer_id = str(record[self._index["AcCustomerID"]])
        if slot >= len(self._edit_ms):  # a create
            pos = bisect.bisect_left(range(len(self._id_order)), customer_id, key=self._id_at_order)
            self._id_order = np.insert(self._id_order, pos, slot)
            self._edit_ms = np.append(self._edit_ms, new_ms)
        else:
            old_ms = int(self._edit_ms[slot])
            lo = int(np.searchsorted(self._edit_keys, old_ms, side="left"))
            hi = int(np.searchsorted(self._edit_keys, old_ms, side="right"))
            at = lo + int(np.nonzero(self._edit_order[lo:hi] == slot)[0][0])
            self._edit_order = np.delete(self._edit_order, at)
            self._edit_keys = np.delete(self._edit_keys, at)
            self._edit_ms[slot] = new_ms
        lo = int(np.searchsorted(self._edit_keys, new_ms, side="left"))
        hi = int(np.searchsorted(self._edit_keys, new_ms, side="right"))
        order = self._edit_order
        pos = bisect.bisect_left(range(lo, hi), customer_id, key=lambda i: self._id_of(int(order[i])))
        self._edit_order = np.insert(self._edit_order, lo + pos, slot)
        self._edit_keys = np.insert(self._edit_keys, lo + pos, new_ms)

    def _id_at_order(self, position: int) -> str:
        return self._id_of(int(self._id_order[position]))

    def mutate(self, count: int = 1) -> list[str]:
        """Edit ``count`` random customers as a user at the real server would.

        EditDate = now, Stamp + 1 and one field (BillingTel1 or Notes) changed, so offset paging over live
        data shifts rows (§9).

        Returns:
            The ids edited, in order.
        """
        edited: list[str] = []
        with self._lock:
            total = len(self._id_order)
            if total == 0:
                return edited
            now = self._now_ms()
            for _ in range(count):
                slot = int(self._id_order[self._rng.randrange(total)])
                record = list(self._record(slot))
                name = self._rng.choice(_MUTATED_FIELDS)
                if name in self._index:
                    if name == "BillingTel1":
                        number = self._rng.randrange(10_000_000, 100_000_000)
                        record[self._index[name]] = f"03-{number // 10_000:04d} {number % 10_000:04d}"
                    else:
                        stamp = datetime.fromtimestamp(now / 1000, UTC) + timedelta(hours=8)
                        record[self._index[name]] = f"Edited {stamp:%Y-%m-%d %H:%M:%S}"
                record[self._index["EditDate"]] = now
                record[self._index["Stamp"]] = int(record[self._index["Stamp"]] or 0) + 1
                self._store(slot, tuple(record))
                edited.append(str(record[self._index["AcCustomerID"]]))
        return edited

    def _after_request(self) -> None:
        """Count a request; after every n-th, mutate (``switches.mutate_every_n_requests``)."""
        every = self.switches.mutate_every_n_requests
        if every <= 0:
            self._since_mutation = 0
            return
        with self._lock:
            self._since_mutation += 1
            due = self._since_mutation >= every
            if due:
                self._since_mutation = 0
        if due:
            self.mutate(max(1, self.switches.mutate_count))

    def _write(self, op: str, fields: Mapping[str, Any], user: str) -> tuple[Any, ...]:
        """Create or update a customer from AcCustomerSimple fields already validated; return the record."""
        with self._lock:
            customer_id = str(fields["AcCustomerID"])
            slot = self._slot_of(customer_id)
            now = self._now_ms()
            if op == "CreateCustomerSimple":
                if slot is not None:
                    raise _ApiError(409, DUPLICATE_CUSTOMER, "DuplicateKey")
                values: dict[str, Any] = dict.fromkeys(self.fields)
                values.update({k: v for k, v in _CREATE_DEFAULTS.items() if k in self._index})
                values.update({k: v for k, v in fields.items() if v is not None})
                values["AcCustomerIDParentID"] = values.get("AcCustomerIDParentID") or customer_id
                values.update(CreateBy=user, CreateDate=now, EditBy=user, EditDate=now, Stamp=0)
                slot = self._next_slot
                self._next_slot += 1
                self._created[customer_id] = slot
            else:
                if slot is None:
                    raise _ApiError(404, CUSTOMER_NOT_FOUND, "NotFound")
                values = dict(zip(self.fields, self._record(slot), strict=True))
                values.update(fields)
                values.update(EditBy=user, EditDate=now, Stamp=int(values["Stamp"] or 0) + 1)
            record = tuple(values.get(name) for name in self.fields)
            self._store(slot, record)
            return record

    # -- sessions ---------------------------------------------------------------------------------------

    def _new_session(self, principal: _Principal) -> str:
        # Not registered with redact(): sessions come and go, and the registry only grows. Cookies are
        # masked where requests are recorded instead.
        session_id = secrets.token_urlsafe(15)
        with self._lock:
            self._sessions[session_id] = principal
        return session_id

    def _session(self, session_id: str | None) -> _Principal | None:
        if not session_id:
            return None
        with self._lock:
            return self._sessions.get(session_id)

    def _end_session(self, *session_ids: str | None) -> None:
        with self._lock:
            for session_id in session_ids:
                if session_id:
                    self._sessions.pop(session_id, None)


def _sorted_by_id(table: pa.Table) -> pa.Table:
    """The table in AcCustomerID order (it should already be); duplicate ids are refused."""
    if table.num_rows < 2:
        return table
    ids = _one_array(table.column("AcCustomerID"))
    if ids.null_count:
        raise ValueError("SmartAcc data has customers without AcCustomerID")
    ascending = pc.all(pc.less(ids.slice(0, len(ids) - 1), ids.slice(1))).as_py()
    if ascending:
        return table
    table = table.take(pc.sort_indices(table, [("AcCustomerID", "ascending")]))
    ids = _one_array(table.column("AcCustomerID"))
    if pc.any(pc.equal(ids.slice(0, len(ids) - 1), ids.slice(1))).as_py():
        raise ValueError("SmartAcc data has duplicate AcCustomerID values")
    return table


class _Lookups:
    """Terms, areas, groups and UD groups, rendered once (they do not change at run time)."""

    def __init__(self, data: SmartAccDataset) -> None:
        terms = data.terms.sort_by("AcTermID")
        areas = data.customer_areas.sort_by("AcAreaID")
        groups = data.customer_groups.sort_by("AcCusGroupID")
        ud_groups = data.customer_ud_groups.sort_by("AcCusUDGroupID")
        self.terms = _lookup_fragments(terms, ("AcTermID", "AcTermDesc", "TermDays"))
        self.areas = _lookup_fragments(areas, ("AcAreaID", "AcAreaDesc"))
        self.groups = _lookup_fragments(groups, ("AcCusGroupID", "AcCusGroupDesc"))
        self.ud_groups = _lookup_fragments(ud_groups, ("AcCusUDGroupID", "AcCusUDGroupDesc"))
        self.term_ids = _ids(terms, "AcTermID")
        self.area_ids = _ids(areas, "AcAreaID")
        self.group_ids_list = [str(v) for v in groups.column("AcCusGroupID").to_pylist()]
        self.group_ids = frozenset(self.group_ids_list)
        self.ud_group_ids = _ids(ud_groups, "AcCusUDGroupID")


def _ids(table: pa.Table, column: str) -> frozenset[str]:
    return frozenset(str(v) for v in table.column(column).to_pylist() if v is not None)


def _lookup_fragments(table: pa.Table, own_fields: tuple[str, ...]) -> list[str]:
    """Each record as a JSON object: its own fields, then the audit fields (§5).

    Audit fields come from the data where it has them; otherwise dates are DateTime defaults (the MinValue
    sentinel), Stamp is 0 and the user names are left out (null).
    """
    names = [*own_fields, "CreateBy", "CreateDate", "EditBy", "EditDate", "Stamp"]
    defaults = {"CreateBy": _S, "EditBy": _S, "CreateDate": _D, "EditDate": _D, "Stamp": _I}
    kinds: list[str] = []
    columns: list[list[Any]] = []
    for name in names:
        if name in table.column_names:
            kind = _kind_of(name, table.schema.field(name).type)
            kinds.append(kind)
            columns.append(_render_ready(table.column(name), kind).to_pylist())
        else:
            kinds.append(defaults.get(name, _S))
            columns.append([None] * table.num_rows)
    return _RecordRenderer(names, kinds).render(columns)


# -- request handling -----------------------------------------------------------------------------------


def _match(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    segments = path.strip("/").split("/") if path.strip("/") else []
    lowered = [s.lower() for s in segments]
    for verb, pattern, op in _ROUTES:
        if len(pattern) != len(segments) or (verb != "*" and verb != method):
            continue
        params: dict[str, str] = {}
        for want, got, raw in zip(pattern, lowered, segments, strict=True):
            if want.startswith("{"):
                params[want[1:-1]] = raw
            elif want != got:
                break
        else:
            return op, params
    return None


def _split_format(path: str) -> tuple[str, str | None]:
    """Strip a ``.json``/``.xml``/... suffix from the last path segment (ServiceStack format suffixes)."""
    head, _, last = path.rpartition("/")
    stem, dot, ext = last.rpartition(".")
    if dot and stem and ext.lower() in {"json", *_OTHER_FORMATS}:
        return f"{head}/{stem}", ext.lower()
    return path, None


def _binding_error(op: str, name: str, value: str) -> _ApiError:
    return _ApiError(
        400,
        f"Unable to bind to request '{op}'",
        "SerializationException",
        [
            {
                "ErrorCode": "SerializationException",
                "FieldName": name,
                "Message": f"'{value}' is an Invalid value for '{name}'",
            }
        ],
    )


def _bind_int(op: str, params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name.lower())
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise _binding_error(op, name, raw) from None


def _bind_date(op: str, params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name.lower())
    if raw is None or raw == "":
        return None
    try:
        return _parse_datetime(raw)
    except ValueError:
        raise _binding_error(op, name, raw) from None


def _json_response(body: str, status: int = 200, callback: str | None = None) -> Response:
    if callback:
        return Response(f"{callback}({body})".encode(), status, media_type="application/javascript")
    return Response(body.encode("utf-8"), status, headers={"content-type": JSON_TYPE})


def _error_response(err: _ApiError) -> Response:
    body, content_type = render_error(err.status, err.message, error_code=err.error_code, errors=err.errors)
    headers = {"content-type": content_type, **err.headers}
    return Response(body, err.status, headers=headers)


_CALLBACK: Final = re.compile(r"^[A-Za-z_$][\w$.]*$")


class _Handler:
    """Dispatches every request: route, format, binding, authentication, permission, then the op."""

    def __init__(self, state: SmartAccState) -> None:
        self.state = state

    async def handle(self, request: Request) -> Response:
        """Answer one request; errors become ServiceStack error bodies, never bare exceptions."""
        state = self.state
        path, suffix = _split_format(request.scope["path"])
        matched = _match(request.method, path)
        if matched is None:
            return Response(b"404", 404, media_type="text/plain")
        op, path_params = matched
        params = {k.lower(): v for k, v in request.query_params.items()}
        params.update({k.lower(): v for k, v in path_params.items()})
        callback = params.get("callback")
        callback = callback if callback and _CALLBACK.match(callback) else None
        try:
            wanted = (params.get("format") or suffix or "json").lower()
            if wanted in _OTHER_FORMATS:
                raise _ApiError(406, f"The '{wanted}' format is not served by the SmartAcc sandbox")
            if op == "Authenticate":
                return await self._authenticate(request, params, callback)
            body = await request.body() if request.method == "POST" else b""
            bound = self._bind(op, params, body)
            principal = self._authenticated(request)
            request.state.user = principal.user
            permission = _OP_PERMISSION[op]
            if permission not in principal.permissions or permission in state.revoked_permissions:
                raise _ApiError(403, INVALID_PERMISSION)
            return self._execute(op, bound, principal, callback)
        except _ApiError as err:
            return _error_response(err)
        except Exception as exc:  # what ServiceStack does with an unhandled exception: 500, type name
            return _error_response(_ApiError(500, str(exc), type(exc).__name__))

    # -- binding --------------------------------------------------------------------------------------

    def _bind(self, op: str, params: Mapping[str, str], body: bytes) -> dict[str, Any]:
        if op in ("Customers", "CustomersSimple"):
            return {
                "Page": _bind_int(op, params, "Page"),
                "EditDate": _bind_date(op, params, "EditDate"),
                "AcCustomerID": params.get("accustomerid") or None,
                "MobileNo": params.get("mobileno") or None,
            }
        if op == "CustomerGroups":
            return {
                "Page": _bind_int(op, params, "Page"),
                "RecordsPerPage": _bind_int(op, params, "RecordsPerPage"),
                "AcCusGroupID": params.get("accusgroupid") or None,
            }
        if op in ("CreateCustomerSimple", "UpdateCustomerSimple"):
            return {"record": self._bind_record(op, body)}
        return {}

    def _bind_record(self, op: str, body: bytes) -> dict[str, Any]:
        """The ``Customer.CustomerRecord`` object, converted to render-ready values (dates → UTC ms)."""
        if not body.strip():
            return {}
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise _ApiError(400, f"Unable to bind to request '{op}'", "SerializationException") from None
        customer = _get_ci(doc, "Customer") if isinstance(doc, dict) else None
        record = _get_ci(customer, "CustomerRecord") if isinstance(customer, dict) else None
        if not isinstance(record, dict):
            return {}
        state = self.state
        simple = set(state.simple_fields)
        kinds = dict(zip(state.fields, state._kinds, strict=True))
        out: dict[str, Any] = {}
        by_lower = {name.lower(): name for name in simple}
        for key, value in record.items():
            name = by_lower.get(str(key).lower())
            if name is None:
                continue  # unknown or non-simple properties are ignored (§9)
            kind = kinds[name]
            try:
                out[name] = _convert(value, kind)
            except (ValueError, TypeError):
                raise _binding_error(op, name, str(value)) from None
        return out

    # -- authentication -------------------------------------------------------------------------------

    def _authenticated(self, request: Request) -> _Principal:
        """Who is calling, by ServiceStack's rules (§2): Basic key, bearer key, then session cookies."""
        state = self.state
        authorization = request.headers.get("authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
        key: str | None = None
        if scheme == "basic" and credentials:
            try:
                user, _, password = base64.b64decode(credentials).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", "x"
            if user and not password:
                self._check_secure(secure)
                info = state._keys.get(user)
                if info is None:
                    raise _ApiError(404, API_KEY_DOES_NOT_EXIST)
                return self._key_principal(info)
        if scheme == "bearer" and credentials:
            key = credentials
            self._check_secure(secure)
            info = state._keys.get(key)
            if info is not None:
                return self._key_principal(info)
            # An unknown bearer key is ignored by the API key provider; the request goes on unauthenticated.
        for cookie in ("ss-pid", "ss-id"):
            principal = state._session(request.cookies.get(cookie))
            if principal is not None:
                return principal
        raise _ApiError(401, NOT_AUTHENTICATED, headers={"WWW-Authenticate": WWW_AUTHENTICATE})

    def _check_secure(self, secure: bool) -> None:
        if self.state.require_secure_connection and not secure:
            raise _ApiError(403, API_KEY_INSECURE)

    @staticmethod
    def _key_principal(info: ApiKeyInfo) -> _Principal:
        if info.cancelled:
            raise _ApiError(403, API_KEY_CANCELLED)
        if info.expired:
            raise _ApiError(403, API_KEY_EXPIRED)
        return _Principal(info.user, info.permissions)

    async def _authenticate(
        self, request: Request, params: Mapping[str, str], callback: str | None
    ) -> Response:
        """``/auth`` and ``/auth/{provider}``, all verbs [AU]: credentials login, session info, logout."""
        state = self.state
        fields = {k.lower(): v for k, v in params.items()}
        body = await request.body()
        if body.strip():
            content_type = request.headers.get("content-type", "")
            parsed: Any
            if "json" in content_type or body.lstrip()[:1] == b"{":
                try:
                    parsed = json.loads(body)
                except (ValueError, UnicodeDecodeError):
                    raise _ApiError(
                        400, "Unable to bind to request 'Authenticate'", "SerializationException"
                    ) from None
            else:
                parsed = dict(parse_qsl(body.decode("utf-8", "replace")))
            if isinstance(parsed, dict):
                fields.update({str(k).lower(): v for k, v in parsed.items()})
        provider = str(fields.get("provider") or "").lower()
        if provider == "logout":
            state._end_session(request.cookies.get("ss-id"), request.cookies.get("ss-pid"))
            response = _json_response("{}", callback=callback)
            for cookie in ("ss-id", "ss-pid", "ss-opt"):
                response.delete_cookie(cookie)
            return response
        username = fields.get("username")
        if provider not in ("", "credentials"):
            raise _ApiError(404, f"No configuration was added for OAuth provider '{provider}'")
        if not username and provider == "":
            principal = None
            for cookie in ("ss-pid", "ss-id"):
                principal = principal or state._session(request.cookies.get(cookie))
            if principal is None:
                raise _ApiError(401, NOT_AUTHENTICATED, headers={"WWW-Authenticate": WWW_AUTHENTICATE})
            request.state.user = principal.user
            session_id = request.cookies.get("ss-pid") or request.cookies.get("ss-id") or ""
            return _json_response(_auth_body(session_id, principal), callback=callback)
        password = fields.get("password")
        errors = [
            {"ErrorCode": "NotEmpty", "FieldName": name, "Message": f"'{name}' must not be empty."}
            for name, value in (("UserName", username), ("Password", password))
            if not value
        ]
        if errors:
            raise _ApiError(400, errors[0]["Message"], "ValidationException", errors)
        creds = state.credentials
        if str(username) != creds.username or not secrets.compare_digest(str(password), creds.password):
            raise _ApiError(401, INVALID_CREDENTIALS)
        principal = _Principal(creds.username, creds.user_permissions)
        request.state.user = principal.user
        remember = str(fields.get("rememberme", "")).lower() in ("true", "1", "yes")
        temporary = state._new_session(principal)
        permanent = state._new_session(principal) if remember else None
        response = _json_response(_auth_body(permanent or temporary, principal), callback=callback)
        response.set_cookie("ss-id", temporary, path="/", httponly=True, samesite="lax")
        if permanent is not None:
            response.set_cookie(
                "ss-pid", permanent, path="/", httponly=True, samesite="lax", max_age=20 * 365 * 86400
            )
            response.set_cookie("ss-opt", "perm", path="/", httponly=True, samesite="lax")
        return response

    # -- ops ------------------------------------------------------------------------------------------

    def _execute(
        self, op: str, bound: Mapping[str, Any], principal: _Principal, callback: str | None
    ) -> Response:
        state = self.state
        lookups = state._lookups
        if op in ("Customers", "CustomersSimple"):
            return self._customers(bound, simple=op == "CustomersSimple", callback=callback)
        if op in ("CreateCustomerSimple", "UpdateCustomerSimple"):
            fields = self._validated(op, bound["record"])
            record = state._write(op, fields, principal.user)
            rendered = state._renderer.render([[v] for v in record])[0]
            return _json_response('{"Customer":{"CustomerRecord":' + rendered + "}}", callback=callback)
        if op == "Terms":
            return _json_response(_list_body("Terms", lookups.terms), callback=callback)
        if op == "CustomerAreas":
            return _json_response(_list_body("CustomerAreas", lookups.areas), callback=callback)
        if op == "CustomerUDGroups":
            return _json_response(_list_body("CustomerUDGroups", lookups.ud_groups), callback=callback)
        return self._customer_groups(bound, callback)

    def _customers(self, bound: Mapping[str, Any], *, simple: bool, callback: str | None) -> Response:
        state = self.state
        page = bound["Page"]
        if page is not None and page < 1:
            raise _ApiError(400, "Page must be 1 or greater", "ArgumentException")
        with state._lock:
            if bound["AcCustomerID"] is not None:
                slot = state._slot_of(bound["AcCustomerID"])
                slots = np.array([] if slot is None else [slot], dtype=np.int64)
            elif bound["MobileNo"] is not None:
                slots = state._mobile_slots(bound["MobileNo"])
            elif bound["EditDate"] is not None:
                slots = state._edit_slots(bound["EditDate"], page or 1)
            elif page is not None:
                slots = state._page_slots(page)
            else:
                return self._everything(simple, callback)
            rows = state._render_slots(slots, simple=simple)
            if state.switches.corrupt_rate > 0:
                ids = [state._id_of(slot) for slot in slots.tolist()]
                rows = corrupt_json_records(rows, ids, SMARTACC_SHAPE, state.switches)
        return _json_response('{"Customers":[' + ",".join(rows) + "]}", callback=callback)

    def _everything(self, simple: bool, callback: str | None) -> Response:
        """Bare ``GET /Customers``: every customer, streamed in chunks from a snapshot of the id order."""
        state = self.state
        order = state._id_order.copy()
        overlay = dict(state._overlay)
        chunk = 1000

        def chunks() -> Iterator[bytes]:
            yield (callback + "(" if callback else "").encode() + b'{"Customers":['
            for start in range(0, len(order), chunk):
                slots = order[start : start + chunk]
                rows = state._render_slots(slots, simple=simple, overlay=overlay)
                yield ((b"," if start else b"") + ",".join(rows).encode("utf-8"))
            yield b"]}" + (b")" if callback else b"")

        media = "application/javascript" if callback else JSON_TYPE
        return StreamingResponse(chunks(), headers={"content-type": media})

    def _customer_groups(self, bound: Mapping[str, Any], callback: str | None) -> Response:
        lookups = self.state._lookups
        page = 1 if bound["Page"] is None else bound["Page"]
        per_page = GROUPS_PER_PAGE if bound["RecordsPerPage"] is None else bound["RecordsPerPage"]
        if page < 1:
            raise _ApiError(400, "Page must be 1 or greater", "ArgumentException")
        if per_page < 1:
            raise _ApiError(400, "RecordsPerPage must be 1 or greater", "ArgumentException")
        records = lookups.groups
        if bound["AcCusGroupID"] is not None:
            records = [
                r for r, i in zip(records, lookups.group_ids_list, strict=True) if i == bound["AcCusGroupID"]
            ]
        selected = records[(page - 1) * per_page : page * per_page]
        body = (
            '{"CustomerGroups":['
            + ",".join(selected)
            + f'],"TotalRecords":{len(records)},"TotalRecordsInPage":{len(selected)}}}'
        )
        return _json_response(body, callback=callback)

    def _validated(self, op: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """Check a create/update record: one ``Errors[]`` entry per failing field (§9)."""
        state = self.state
        lookups = state._lookups
        if op == "UpdateCustomerSimple":
            customer_id = record.get("AcCustomerID")
            current = state.customer(str(customer_id)) if customer_id else None
            if customer_id and current is None:
                raise _ApiError(404, CUSTOMER_NOT_FOUND, "NotFound")
            merged = {**(current or {}), **record}
        else:
            merged = dict(record)
        references = {
            "AcTermID": lookups.term_ids,
            "AcAreaID": lookups.area_ids,
            "AcCusGroupID": lookups.group_ids,
            "AcCusUDGroupID": lookups.ud_group_ids,
        }
        errors: list[dict[str, str]] = []
        for name in _REQUIRED_ON_WRITE:
            value = merged.get(name)
            if value is None or str(value).strip() == "":
                errors.append(
                    {"ErrorCode": "NotEmpty", "FieldName": name, "Message": f"'{name}' must not be empty."}
                )
            elif name == "AcCustomerID" and len(str(value)) > _ID_MAX_LENGTH:
                errors.append(
                    {
                        "ErrorCode": "MaximumLength",
                        "FieldName": name,
                        "Message": f"The length of '{name}' must be {_ID_MAX_LENGTH} characters or fewer. "
                        f"You entered {len(str(value))} characters.",
                    }
                )
            elif name in references and str(value) not in references[name]:
                errors.append(
                    {"ErrorCode": "Predicate", "FieldName": name, "Message": f"'{name}' does not exist."}
                )
        if errors:
            raise _ApiError(400, errors[0]["Message"], "ValidationException", errors)
        return dict(record)


def _get_ci(obj: Mapping[str, Any], name: str) -> Any:
    lowered = name.lower()
    for key, value in obj.items():
        if str(key).lower() == lowered:
            return value
    return None


def _convert(value: Any, kind: str) -> Any:
    """A JSON body value in render-ready form, leniently as ServiceStack.Text binds it."""
    if value is None:
        return None
    if kind == _S:
        if isinstance(value, bool):
            return "True" if value else "False"
        return value if isinstance(value, str) else json.dumps(value)
    if kind in (_D, _DN):
        if not isinstance(value, str):
            raise TypeError("dates are strings")
        return _parse_datetime(value)
    if isinstance(value, bool):
        raise TypeError("not a number")
    if kind == _F:
        return float(value)
    return int(value)


def _list_body(name: str, records: Sequence[str]) -> str:
    return '{"' + name + '":[' + ",".join(records) + "]}"


def _auth_body(session_id: str, principal: _Principal) -> str:
    doc = {
        "UserId": "1",
        "SessionId": session_id,
        "UserName": principal.user,
        "DisplayName": principal.user.title(),
        "Roles": [],
        "Permissions": sorted(principal.permissions),
    }
    return json.dumps(doc, separators=(",", ":"))


# -- recording and mutation -----------------------------------------------------------------------------

_SECRET_KEYS: Final = re.compile(r"(?i)^(password|apikey|api_key|secret|accesstoken|accesstokensecret)$")


_SECRET_HEADERS: Final = frozenset({"proxy-authorization", "x-api-key", "apikey", "x-apikey"})


def _mask_headers(headers: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name == "authorization":
            scheme, _, rest = value.partition(" ")
            value = f"{scheme} ***" if rest else "***"
        elif name == "cookie":
            parts = [p.strip().partition("=") for p in value.split(";") if p.strip()]
            value = "; ".join(f"{k}=***" for k, _, _ in parts)
        elif name in _SECRET_HEADERS:
            value = "***"
        out[name] = value
    return out


def _mask_query(query: str) -> str:
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return redact("&".join(f"{k}={'***' if _SECRET_KEYS.match(k) else v}" for k, v in pairs))


def _mask_body(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    if not text.strip():
        return ""
    try:
        doc = json.loads(text)
    except ValueError:
        pairs = parse_qsl(text, keep_blank_values=True)
        if pairs:
            text = "&".join(f"{k}={'***' if _SECRET_KEYS.match(k) else v}" for k, v in pairs)
        return redact(text)
    return redact(json.dumps(_mask_doc(doc), ensure_ascii=False))


def _mask_doc(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: "***" if _SECRET_KEYS.match(str(k)) else _mask_doc(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_mask_doc(v) for v in doc]
    return doc


class _Recorder:
    """Pure ASGI middleware: records each request (masked) and applies live mutation after every n-th.

    The mutation runs when the response starts, after the handler rendered its body and before the client
    can see it, so "after the n-th request" is deterministic for a client making sequential calls.
    """

    def __init__(self, app: ASGIApp, state: SmartAccState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        status = 0

        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                self.state._after_request()
            await send(message)

        scope.setdefault("state", {})
        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        finally:
            state_map = scope.get("state") or {}
            self.state.received.append(
                ReceivedRequest(
                    method=scope["method"],
                    path=scope["path"],
                    query=_mask_query(scope.get("query_string", b"").decode("latin-1")),
                    headers=_mask_headers(scope.get("headers", [])),
                    body=_mask_body(b"".join(chunks)),
                    status=status,
                    user=state_map.get("user"),
                )
            )


def create_app(state: SmartAccState) -> Starlette:
    """The SmartAcc emulator as an ASGI app; every path goes through one ServiceStack-like dispatcher."""
    handler = _Handler(state)
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    app = Starlette(
        routes=[Route("/{path:path}", handler.handle, methods=methods)],
        middleware=[Middleware(_Recorder, state=state)],
    )
    app.state.smartacc = state
    return app
