r"""SkyBiz Cloud ERP API v2 emulator (customer module) on Starlette, faithful to ``shared/api/SKYBIZ.md``.

One endpoint, ``POST {prefix}/apiv2/modules/customer.php`` (prefix ``/01/clientportal``), with credentials in
the body, JSON or form-encoded (PHP ``http_build_query`` style, ``fields[0]=...``, ``filters[Town]=...``).
The envelope, the read window rules, the create validation and every error string are the vendor's (§3–§5),
and where the vendor is silent the emulator does what §10 says the client and emulator agree on.

Order of checks (each answers the §10 status; the first that fails wins): non-POST 405 ``Method not
allowed``; integration mode (0 → 403 ``API integration is disabled``; 1 → 403 unless the request came over
HTTPS, judged by the scheme uvicorn derives from a trusted ``X-Forwarded-Proto``; 2 → 403 unless the client
is loopback); per-IP rate limit 429; body 400 ``Invalid JSON payload``; credentials 401 ``Invalid API
credentials``; per-key rate limit 429; action 400; module permission 403; then the action's own checks.

Decisions beyond §10, so the client can agree with them:

- A compulsory create field is *missing* when absent, ``null`` or a blank string; ``D_ay`` ``0`` is present.
- ``D_ay`` must be a whole number ≥ 0 and ``CreditLimit`` a number (JSON numbers or numeric strings, as a
  form post sends them); otherwise the document fails with a ``validation_errors`` entry
  ``Document n (CusCode: X): D_ay must be a whole number of days`` / ``CreditLimit must be a number``.
- ``CusCode`` duplicates and ``CurCode`` membership are exact, case-sensitive comparisons.
- A missing, empty or non-list ``customer_data.documents`` answers 400 ``No documents provided``.
- Unknown paths answer the web server's HTML 404 (there is no PHP script there).
- JSON is written the way PHP's ``json_encode`` writes it by default: ASCII only, ``/`` escaped as ``\\/``.

Serving never copies the dataset: reads binary-search an index of ``DateTimeModified`` over the Arrow table
and take only the window's rows; created and edited customers live in a small overlay (an edited customer's
base row is masked), so a 31-day window over a million customers answers in tens of milliseconds.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import ipaddress
import json
import math
import random
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from heapq import merge
from typing import Any, Final
from urllib.parse import parse_qsl

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import requests
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipelines.errors import redact, register_secret
from pipelines.windows import MYT
from skysmart_sandbox.data import SKYBIZ_READ_FIELDS, SandboxData
from skysmart_sandbox.faults import SKYBIZ_SHAPE, FaultMiddleware, corrupt_record
from skysmart_sandbox.switches import Switches

DEFAULT_PREFIX: Final = "/01/clientportal"
MODULES_PATH: Final = "/apiv2/modules"
CUSTOMER_SCRIPT: Final = "customer.php"
MAX_WINDOW_DAYS: Final = 31
MAX_DOCUMENTS: Final = 500
MODES: Final = ("0", "1", "2")
JSON_TYPE: Final = "application/json"

# Exact messages: vendor text [C] (§4, §5.4) and our agreed assumptions (§10).
MSG_DATES_REQUIRED: Final = "date_from and date_to are required"
MSG_DATE_FORMAT: Final = "Invalid date format. Use YYYY-MM-DD format."
MSG_RANGE_TOO_WIDE: Final = "Date range cannot exceed 31 days."
MSG_FROM_AFTER_TO: Final = "date_from cannot be after date_to."
MSG_READ_DENIED: Final = "Customer read permission denied"
MSG_CREATE_DENIED: Final = "Customer create permission denied"
MSG_BAD_CREDENTIALS: Final = "Invalid API credentials"
MSG_BAD_ACTION: Final = "Invalid action. Use 'read' or 'create'."
MSG_BAD_JSON: Final = "Invalid JSON payload"
MSG_DISABLED: Final = "API integration is disabled"
MSG_HTTPS_REQUIRED: Final = "HTTPS is required in Production mode"
MSG_LOCALHOST_ONLY: Final = "Developer mode only accepts requests from localhost"
MSG_TOO_MANY_DOCUMENTS: Final = "Maximum 500 documents per request"
MSG_NO_DOCUMENTS: Final = "No documents provided"
MSG_RATE_LIMITED: Final = "Rate limit exceeded"
MSG_METHOD: Final = "Method not allowed"
MSG_INTERNAL: Final = "Internal server error"
MSG_CODE_EXISTS: Final = "Customer code already exists"
MSG_CODE_TWICE: Final = "Duplicate CusCode found in the same batch"

COMPULSORY_FIELDS: Final[tuple[str, ...]] = (
    "AccountCode",
    "CusCode",
    "CusName",
    "CurCode",
    "D_ay",
    "CategoryCode",
)
OPTIONAL_FIELDS: Final[tuple[str, ...]] = (
    "Address1", "Address2", "Address3", "Address4", "AreaCode", "CreditLimit", "SalesPersonCode", "Tel",
    "Tel2", "Fax", "Fax2", "Contact", "ContactTel", "URL", "Email", "Town", "State", "Country", "PostCode",
    "GSTNo", "NRICNo", "SalesTaxNo", "TaxExemptionNo", "TaxTel", "TaxEmail",
)  # fmt: skip
_STORED_OPTIONAL: Final = tuple(
    f for f in OPTIONAL_FIELDS if f not in SKYBIZ_READ_FIELDS and f[:-1] != "Address"
)
_READ_OPTIONAL: Final = tuple(f for f in OPTIONAL_FIELDS if f in SKYBIZ_READ_FIELDS and f != "CreditLimit")
_DATE_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT_RE: Final = re.compile(r"^\s*\d+\s*$")
_BRACKETS: Final = re.compile(r"\[([^\]]*)\]")

NOT_FOUND_HTML: Final = (
    b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
    b"<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


# -- credentials ----------------------------------------------------------------------------------------


def _sandbox_secret(label: str, length: int) -> str:
    return hashlib.sha256(f"skysmart-sandbox-skybiz:{label}".encode()).hexdigest()[:length]


@dataclass(frozen=True, slots=True)
class SkyBizKey:
    """One key pair as the portal issues it, with its Customer module permissions."""

    api_key: str
    api_secret: str
    read: bool = True
    create: bool = True

    def __repr__(self) -> str:
        return f"SkyBizKey(api_key={self.api_key!r}, api_secret=***, read={self.read}, create={self.create})"


@dataclass(frozen=True, slots=True)
class SkyBizCredentials:
    """The key pairs the sandbox accepts, deterministic so demos and tests can be configured in advance.

    Attributes:
        api_key / api_secret: Customer — Read and Create.
        readonly_api_key / readonly_api_secret: Customer — Read only.
        createonly_api_key / createonly_api_secret: Customer — Create only.
        noperm_api_key / noperm_api_secret: authenticates, but holds no Customer permission.
    """

    api_key: str = field(default_factory=lambda: "sbx_" + _sandbox_secret("key", 28))
    api_secret: str = field(default_factory=lambda: _sandbox_secret("secret", 48))
    readonly_api_key: str = field(default_factory=lambda: "sbx_" + _sandbox_secret("readonly-key", 28))
    readonly_api_secret: str = field(default_factory=lambda: _sandbox_secret("readonly-secret", 48))
    createonly_api_key: str = field(default_factory=lambda: "sbx_" + _sandbox_secret("createonly-key", 28))
    createonly_api_secret: str = field(default_factory=lambda: _sandbox_secret("createonly-secret", 48))
    noperm_api_key: str = field(default_factory=lambda: "sbx_" + _sandbox_secret("noperm-key", 28))
    noperm_api_secret: str = field(default_factory=lambda: _sandbox_secret("noperm-secret", 48))

    def key_pairs(self) -> list[SkyBizKey]:
        """Every key pair with its permissions."""
        return [
            SkyBizKey(self.api_key, self.api_secret, read=True, create=True),
            SkyBizKey(self.readonly_api_key, self.readonly_api_secret, read=True, create=False),
            SkyBizKey(self.createonly_api_key, self.createonly_api_secret, read=False, create=True),
            SkyBizKey(self.noperm_api_key, self.noperm_api_secret, read=False, create=False),
        ]

    def __repr__(self) -> str:
        return f"SkyBizCredentials(api_key={self.api_key!r}, secrets=***)"


@dataclass(slots=True)
class _KeyRecord:
    salt: bytes
    digest: bytes
    read: bool
    create: bool


def _hash_secret(salt: bytes, secret: str) -> bytes:
    # The vendor stores bcrypt hashes [AD]; keyed BLAKE2b keeps "only a hash" without bcrypt's cost per call.
    return hashlib.blake2b(secret.encode("utf-8"), key=salt, digest_size=32).digest()


# -- what the emulator records -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """A request as the emulator saw it; ``api_secret`` (and any known secret anywhere) is masked.

    Attributes:
        request_id: the ``request_id`` the answer carried (``None`` for non-envelope answers).
        time: when it arrived (UTC).
        method: HTTP method.
        path: URL path.
        client_ip: the client address (after trusted proxy headers).
        content_type: the request's ``Content-Type``.
        body: the parsed body with secrets masked (``{}`` when it did not parse).
        status: the HTTP status answered.
        message: the error message answered, if any.
        api_key: the key the request claimed (keys are echoed by the API as ``requested_by``).
        action: the requested action.
    """

    request_id: str | None
    time: datetime
    method: str
    path: str
    client_ip: str
    content_type: str
    body: Mapping[str, Any]
    status: int
    message: str | None
    api_key: str | None
    action: str | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the portal's "Active API Sessions" log: every authenticated request [AD]."""

    request_id: str
    api_key: str
    module: str
    action: str | None
    time: datetime
    client_ip: str
    outcome: str
    status: int


class _Reply(Exception):
    """An error envelope (or other answer) decided somewhere inside request handling."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


# -- rendering ------------------------------------------------------------------------------------------


def php_json(value: Any) -> bytes:
    r"""JSON as PHP's ``json_encode`` writes it by default: ASCII, ``\\/`` for ``/``, no spaces."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("/", "\\/").encode("ascii")


def render_error(status: int, message: str) -> tuple[bytes, str]:
    """A SkyBiz error envelope for the fault middleware: ``(body, content_type)``."""
    return php_json(_envelope_error(_request_id(), message)), JSON_TYPE


def _timestamp() -> str:
    return datetime.now(MYT).isoformat(timespec="seconds")


_RID_LOCK = threading.Lock()
_RID_LAST = [0]


def _request_id() -> str:
    """``req_`` + 13 hex digits, like PHP ``uniqid('req_')`` (8 hex seconds + 5 hex microseconds), unique."""
    with _RID_LOCK:
        micros = max(time.time_ns() // 1000, _RID_LAST[0] + 1)
        _RID_LAST[0] = micros
    seconds, fraction = divmod(micros, 1_000_000)
    return f"req_{seconds:08x}{fraction:05x}"


def _envelope_error(request_id: str, message: str) -> dict[str, Any]:
    return {"status": "error", "timestamp": _timestamp(), "request_id": request_id, "message": message}


def _envelope_ok(request_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
    return {"status": "response", "timestamp": _timestamp(), "request_id": request_id, "data": data}


# -- the state ------------------------------------------------------------------------------------------


class _CodeIndex:
    """``CusCode`` of base row ``i``, as a sequence :mod:`bisect` can search (the table is sorted by it)."""

    __slots__ = ("_codes",)

    def __init__(self, codes: pa.StringArray) -> None:
        self._codes = codes

    def __len__(self) -> int:
        return len(self._codes)

    def __getitem__(self, i: int) -> str:
        value: str = self._codes[i].as_py()
        return value


class SkyBizState:
    """The live SkyBiz tenant: customers, keys, mode, switches, rate limits, audit log and received requests.

    Everything is guarded by one lock, so tests can flip switches, keys and the mode from their own thread
    while uvicorn serves.

    Attributes:
        switches: latency/faults (applied by the fault middleware), rate limits and live mutation (here).
        mode: integration mode ``"0"`` disabled, ``"1"`` production (HTTPS only), ``"2"`` developer (default).
        prefix: the path before ``/apiv2``.
        currencies: the currency table a create's ``CurCode`` must be in.
        received: recent requests, secrets masked.
        audit: the audit log of authenticated requests.
    """

    def __init__(
        self,
        data: SandboxData,
        switches: Switches | None = None,
        credentials: SkyBizCredentials | None = None,
        *,
        mode: str = "2",
        prefix: str = DEFAULT_PREFIX,
        clock: Callable[[], datetime] | None = None,
        received_limit: int = 10_000,
    ) -> None:
        """Index the dataset once (no copy of the data).

        Args:
            data: the generated dataset.
            switches: run-time switches; a well-behaved server without rate limits when omitted.
            credentials: accepted key pairs; the deterministic sandbox defaults when omitted. Only salted
                hashes of the secrets are kept; the object itself is not.
            mode: the integration mode.
            prefix: the path before ``/apiv2`` (``/01/clientportal`` in the vendor's sample URL).
            clock: "now" as an aware datetime (stamps creates and edits); the wall clock by default.
            received_limit: how many recent requests ``received`` and ``audit`` keep.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.switches = switches if switches is not None else Switches()
        self.mode = mode
        self.prefix = prefix.rstrip("/")
        self.currencies: frozenset[str] = frozenset(data.skybiz_currencies)
        self.received: deque[ReceivedRequest] = deque(maxlen=received_limit)
        self.audit: deque[AuditEntry] = deque(maxlen=received_limit)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._keys: dict[str, _KeyRecord] = {}
        for key in (credentials if credentials is not None else SkyBizCredentials()).key_pairs():
            self.add_key(key.api_key, key.api_secret, read=key.read, create=key.create)
        self._key_hits: dict[str, deque[float]] = {}
        self._ip_hits: dict[str, deque[float]] = {}
        self._requests = 0
        self._rng = random.Random(self.switches.seed)

        table = data.skybiz
        codes = table.column("CusCode")
        if len(codes) > 1 and not pc.all(pc.less(codes[:-1], codes[1:])).as_py():
            table = table.sort_by("CusCode")
        self._table = table.combine_chunks()
        self._read = self._table.select(list(SKYBIZ_READ_FIELDS))
        self._codes = _CodeIndex(self._table.column("CusCode").chunk(0))
        n = self._table.num_rows
        dtm = self._table.column("DateTimeModified").cast(pa.int64()).to_numpy()
        self._dtm_order = np.argsort(dtm, kind="stable")
        self._dtm_sorted = dtm[self._dtm_order]
        self._live = np.ones(n, dtype=bool)
        self._overlay: dict[str, dict[str, Any]] = {}

    # -- keys and permissions ---------------------------------------------------------------------------

    def add_key(self, api_key: str, api_secret: str, *, read: bool = True, create: bool = True) -> None:
        """Provision a key pair; only a salted hash of the secret is kept."""
        register_secret(api_secret)
        salt = secrets.token_bytes(16)
        with self._lock:
            self._keys[api_key] = _KeyRecord(salt, _hash_secret(salt, api_secret), read, create)

    def provision(
        self, callback_url: str, *, read: bool = True, create: bool = True, timeout: float = 10.0
    ) -> str:
        """Register a new key pair and deliver it once to ``callback_url``, as the portal does (§1, §10).

        The callback is a POST of ``{"api_key": ..., "api_secret": ...}`` with ``X-Timestamp`` (unix seconds)
        and ``X-Signature`` (hex HMAC-SHA256 of ``timestamp + "." + raw body``, keyed with the secret). The
        secret is never available again; the key is returned for reference.

        Raises:
            requests.RequestException: the callback could not be delivered (the pair is then not registered).
        """
        api_key = "sbx_" + secrets.token_hex(14)
        api_secret = secrets.token_hex(24)
        register_secret(api_secret)
        raw = json.dumps({"api_key": api_key, "api_secret": api_secret}).encode()
        stamp = str(int(time.time()))
        signature = hmac.new(api_secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Timestamp": stamp, "X-Signature": signature}
        requests.post(callback_url, data=raw, headers=headers, timeout=timeout).raise_for_status()
        self.add_key(api_key, api_secret, read=read, create=create)
        return api_key

    def set_permissions(self, api_key: str, *, read: bool | None = None, create: bool | None = None) -> None:
        """Grant or revoke Customer — Read / Create for a key at run time."""
        with self._lock:
            record = self._keys[api_key]
            if read is not None:
                record.read = read
            if create is not None:
                record.create = create

    def remove_key(self, api_key: str) -> None:
        """Revoke a key pair entirely."""
        with self._lock:
            self._keys.pop(api_key, None)

    def _authenticate(self, api_key: object, api_secret: object) -> _KeyRecord | None:
        if not isinstance(api_key, str) or not isinstance(api_secret, str):
            return None
        with self._lock:
            record = self._keys.get(api_key)
        if record is None:
            return None
        ok = hmac.compare_digest(record.digest, _hash_secret(record.salt, api_secret))
        return record if ok else None

    # -- reading the data -------------------------------------------------------------------------------

    @property
    def customer_count(self) -> int:
        """Customers held now, creates included."""
        with self._lock:
            created = sum(1 for code in self._overlay if self._base_row(code) is None)
            total: int = self._table.num_rows + created
            return total

    def customer(self, code: str) -> dict[str, Any] | None:
        """The stored customer (read fields, create-only fields, extras), or ``None``."""
        with self._lock:
            if code in self._overlay:
                return {k: v for k, v in self._overlay[code].items() if not k.startswith("_")}
            row = self._base_row(code)
            return None if row is None else self._base_record(row)

    def _base_row(self, code: str) -> int | None:
        i = bisect.bisect_left(self._codes, code)
        return i if i < len(self._codes) and self._codes[i] == code else None

    def _base_record(self, row: int) -> dict[str, Any]:
        record: dict[str, Any] = self._table.slice(row, 1).to_pylist()[0]
        return record

    def _exists(self, code: str) -> bool:
        return code in self._overlay or self._base_row(code) is not None

    def read_window(
        self,
        date_from: date,
        date_to: date,
        fields: Sequence[str] = (),
        filters: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Customers whose ``DateTimeModified`` falls on ``date_from..date_to`` (Malaysia dates, inclusive).

        Ordered by ``CusCode``, projected to ``fields`` (unknown names ignored; none left = all), filtered by
        ``filters`` (case-insensitive equality, ANDed, unknown names ignored). Values are JSON-ready.
        """
        wanted = [f for f in dict.fromkeys(fields) if f in SKYBIZ_READ_FIELDS] or list(SKYBIZ_READ_FIELDS)
        conditions = {k: v for k, v in (filters or {}).items() if k in SKYBIZ_READ_FIELDS}
        lo = (date_from - date(1970, 1, 1)).days * 86_400
        hi = ((date_to - date(1970, 1, 1)).days + 1) * 86_400
        with self._lock:
            first, last = np.searchsorted(self._dtm_sorted, [lo, hi], side="left")
            rows = np.sort(self._dtm_order[first:last])
            rows = rows[self._live[rows]]
            overlay = [
                rec
                for rec in self._overlay.values()
                if lo <= rec["_dtm"] < hi and all(_matches(rec.get(k), v) for k, v in conditions.items())
            ]
        sub = self._read.take(pa.array(rows))
        if conditions and sub.num_rows:
            mask = pa.array(np.ones(sub.num_rows, dtype=bool))
            for name, value in conditions.items():
                mask = pc.and_(mask, _column_matches(sub.column(name), value))
            sub = sub.filter(mask)
        codes: list[str] = sub.column("CusCode").to_pylist()
        base = _json_rows(sub.select(wanted))
        if not overlay:
            return base
        extra = sorted(overlay, key=lambda rec: str(rec["CusCode"]))
        projected = [(str(rec["CusCode"]), {f: _json_value(f, rec.get(f)) for f in wanted}) for rec in extra]
        return [row for _, row in merge(zip(codes, base, strict=True), projected, key=lambda pair: pair[0])]

    # -- writing ----------------------------------------------------------------------------------------

    def _now_wall(self) -> datetime:
        return self._clock().astimezone(MYT).replace(tzinfo=None, microsecond=0)

    def create_documents(self, documents: Sequence[Any]) -> dict[str, Any]:
        """Validate every document, then store all or none (§5); returns the ``data`` of the answer."""
        buckets: dict[str, list[Any]] = {
            "compulsory_fields_missing": [],
            "duplicate_customers": [],
            "invalid_currencies": [],
            "validation_errors": [],
        }
        failed: list[str] = []
        with self._lock:
            seen: set[str] = set()
            for position, doc in enumerate(documents, start=1):
                code, problems = self._validate(position, doc, seen, buckets)
                if problems:
                    failed.append(code)
            total = len(documents)
            if failed:
                return {
                    "summary": {"total_documents": total, "inserted": 0, "failed": len(failed)},
                    "successful_documents": [],
                    "failed_documents": failed,
                    "fail_details": {k: v for k, v in buckets.items() if v},
                }
            now = self._now_wall()
            stored = [self._store_new(doc, now) for doc in documents]
        return {
            "summary": {"total_documents": total, "inserted": total, "failed": 0},
            "successful_documents": stored,
            "failed_documents": [],
            "fail_details": buckets,
        }

    def _validate(
        self, position: int, doc: Any, seen: set[str], buckets: dict[str, list[Any]]
    ) -> tuple[str, bool]:
        if not isinstance(doc, Mapping):
            buckets["validation_errors"].append(f"Document {position}: not an object")
            return "", True
        code = _text(doc.get("CusCode"))
        prefix = f"Document {position} (CusCode: {code}): "
        problems = False
        missing = [f for f in COMPULSORY_FIELDS if _blank(doc.get(f))]
        if missing:
            buckets["compulsory_fields_missing"].append(f"{prefix}Missing fields - {', '.join(missing)}")
            problems = True
        if code.strip():
            if self._exists(code):
                buckets["duplicate_customers"].append({"cuscode": code, "error": MSG_CODE_EXISTS})
                problems = True
            elif code in seen:
                buckets["duplicate_customers"].append({"cuscode": code, "error": MSG_CODE_TWICE})
                problems = True
            seen.add(code)
        currency = doc.get("CurCode")
        if not _blank(currency) and _text(currency) not in self.currencies:
            buckets["invalid_currencies"].append(f"{prefix}Currency code '{_text(currency)}' does not exist")
            problems = True
        if not _blank(doc.get("D_ay")) and _whole_days(doc.get("D_ay")) is None:
            buckets["validation_errors"].append(f"{prefix}D_ay must be a whole number of days")
            problems = True
        if not _blank(doc.get("CreditLimit")) and _number(doc.get("CreditLimit")) is None:
            buckets["validation_errors"].append(f"{prefix}CreditLimit must be a number")
            problems = True
        for name in (*COMPULSORY_FIELDS, *OPTIONAL_FIELDS):
            value = doc.get(name)
            if isinstance(value, Mapping | list):
                buckets["validation_errors"].append(f"{prefix}{name} must be a single value")
                problems = True
        return code, problems

    def _store_new(self, doc: Mapping[str, Any], now: datetime) -> str:
        code = _text(doc["CusCode"])
        parts = [_text(doc.get(f"Address{i}")).strip() for i in range(1, 5)]
        record: dict[str, Any] = dict.fromkeys(SKYBIZ_READ_FIELDS, "")
        for name in _READ_OPTIONAL:
            if not _blank(doc.get(name)):
                record[name] = _text(doc[name])
        credit = _number(doc.get("CreditLimit")) if not _blank(doc.get("CreditLimit")) else None
        record.update(
            {
                "CusCode": code,
                "CusName": _text(doc["CusName"]),
                "CurCode": _text(doc["CurCode"]),
                "Address": " ".join(p for p in parts if p),
                "CreditLimit": credit if credit is not None else 0.0,
                "TermCode": _whole_days(doc["D_ay"]),
                "StatusBadYN": "0",
                "DateTimeModified": now,
                "AccountCode": _text(doc["AccountCode"]),
                "CategoryCode": _text(doc["CategoryCode"]),
                "FinCatCode": "B55",  # set by the server, whatever was sent [C]
            }
        )
        for name in _STORED_OPTIONAL:
            record[name] = _text(doc.get(name))
        record["_dtm"] = _wall_seconds(now)
        self._overlay[code] = record
        return code

    def mutate(self, count: int = 1) -> list[str]:
        """Edit ``count`` random customers as a user would: a field changes and ``DateTimeModified`` = now.

        An edited customer moves to today's window and disappears from re-reads of its old one (§9.5).
        """
        changed: list[str] = []
        with self._lock:
            n = self._table.num_rows
            if n == 0:
                return changed
            now = self._now_wall()
            for row in self._rng.sample(range(n), min(count, n)):
                code = self._codes[row]
                record = self._overlay.get(code) or self._base_record(row)
                record = dict(record)
                record["CreditLimit"] = float(record.get("CreditLimit") or 0.0) + 500.0
                record["SalesPersonCode"] = f"S{self._rng.randint(1, 20):02d}"
                record["DateTimeModified"] = now
                record["_dtm"] = _wall_seconds(now)
                self._overlay[code] = record
                self._live[row] = False
                changed.append(code)
        return changed

    def _after_request(self) -> None:
        every = self.switches.mutate_every_n_requests
        with self._lock:
            self._requests += 1
            due = every > 0 and self._requests % every == 0
        if due:
            self.mutate(max(1, self.switches.mutate_count))

    # -- rate limits ------------------------------------------------------------------------------------

    def _check_rate(self, hits: dict[str, deque[float]], who: str, limit: int | None) -> None:
        if not limit:
            return
        now = time.monotonic()
        with self._lock:
            window = hits.setdefault(who, deque())
            while window and window[0] <= now - 60.0:
                window.popleft()
            if len(window) >= limit:
                wait = max(1, math.ceil(window[0] + 60.0 - now))
                raise _Reply(429, MSG_RATE_LIMITED, {"Retry-After": str(wait)})
            window.append(now)

    # -- recording --------------------------------------------------------------------------------------

    def _mask(self, value: Any) -> Any:
        """A recordable copy: ``api_secret`` masked, and any registered secret wherever else it appears."""
        if isinstance(value, Mapping):
            return {k: "***" if k == "api_secret" else self._mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._mask(v) for v in value]
        if isinstance(value, str):
            return redact(value)
        return value


# -- small value helpers --------------------------------------------------------------------------------


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _whole_days(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and value >= 0 else None
    if isinstance(value, str) and _INT_RE.match(value):
        return int(value)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _wall_seconds(wall: datetime) -> int:
    return int((wall - datetime(1970, 1, 1)).total_seconds())


def _json_value(name: str, value: Any) -> Any:
    if name == "DateTimeModified":
        return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else _text(value)
    if name == "CreditLimit":
        return float(value) if value is not None else 0.0
    if name == "TermCode":
        return int(value) if value is not None else 0
    return "" if value is None else value


def _json_rows(table: pa.Table) -> list[dict[str, Any]]:
    if "DateTimeModified" in table.column_names:
        i = table.column_names.index("DateTimeModified")
        text = pc.strftime(table.column(i), format="%Y-%m-%d %H:%M:%S")
        table = table.set_column(i, "DateTimeModified", text)
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def _scalar_text(value: Any) -> str | None:
    if value is None or isinstance(value, str | int | float | bool):
        return _text(value)
    return None


def _matches(stored: Any, wanted: Any) -> bool:
    """Case-insensitive equality of a stored value and a filter value (numbers compare as numbers)."""
    text = _scalar_text(wanted)
    if text is None:
        return False
    if isinstance(stored, datetime):
        return stored.strftime("%Y-%m-%d %H:%M:%S") == text
    if isinstance(stored, int | float) and not isinstance(stored, bool):
        number = _number(text)
        return number is not None and float(stored) == number
    return _text(stored).lower() == text.lower()


def _column_matches(column: pa.ChunkedArray, wanted: Any) -> pa.ChunkedArray:
    text = _scalar_text(wanted)
    n = len(column)
    if text is None:
        return pa.chunked_array([pa.array(np.zeros(n, dtype=bool))])
    if pa.types.is_timestamp(column.type):
        return pc.equal(pc.strftime(column, format="%Y-%m-%d %H:%M:%S"), text)
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        number = _number(text)
        if number is None:
            return pa.chunked_array([pa.array(np.zeros(n, dtype=bool))])
        return pc.fill_null(pc.equal(pc.cast(column, pa.float64()), number), False)
    return pc.fill_null(pc.equal(pc.utf8_lower(column), text.lower()), False)


def _php_form(body: bytes) -> dict[str, Any]:
    """Decode ``application/x-www-form-urlencoded`` the way PHP fills ``$_POST`` (``a[b][]=c`` nests)."""
    root: dict[str, Any] = {}
    for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        head, _, rest = name.partition("[")
        keys = [head, *_BRACKETS.findall("[" + rest)] if rest else [head]
        node = root
        for depth, key in enumerate(keys):
            last = depth == len(keys) - 1
            if key == "":
                key = str(sum(1 for k in node if k.isdigit()))
            if last:
                node[key] = value
            else:
                child = node.get(key)
                if not isinstance(child, dict):
                    child = {}
                    node[key] = child
                node = child
    form: dict[str, Any] = _listify(root)
    return form


def _listify(node: Any) -> Any:
    """PHP arrays with keys 0..n-1 are lists (that is how ``json_encode`` would write them)."""
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        keys = sorted(converted, key=int)
        if [int(k) for k in keys] == list(range(len(keys))):
            return [converted[k] for k in keys]
    return converted


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "testclient"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_day(text: Any) -> date | None:
    if not isinstance(text, str) or not _DATE_RE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


# -- the app --------------------------------------------------------------------------------------------


class _Handler:
    def __init__(self, state: SkyBizState) -> None:
        self.state = state
        self.script = f"{state.prefix}{MODULES_PATH}/{CUSTOMER_SCRIPT}"

    async def handle(self, request: Request) -> Response:
        state = self.state
        arrived = datetime.now(UTC)
        client_ip = request.client.host if request.client else ""
        content_type = request.headers.get("content-type", "")
        record: dict[str, Any] = {"body": {}, "api_key": None, "action": None}
        if request.url.path.rstrip("/") != self.script:
            state.received.append(
                ReceivedRequest(
                    request_id=None,
                    time=arrived,
                    method=request.method,
                    path=request.url.path,
                    client_ip=client_ip,
                    content_type=content_type,
                    body={},
                    status=404,
                    message=None,
                    api_key=None,
                    action=None,
                )
            )
            return Response(NOT_FOUND_HTML, 404, media_type="text/html")
        request_id = _request_id()
        try:
            data = await self._serve(request, request_id, client_ip, content_type, record)
            status, payload, headers = 200, _envelope_ok(request_id, data), {}
            message = None
        except _Reply as reply:
            status, payload, headers = reply.status, _envelope_error(request_id, reply.message), reply.headers
            message = reply.message
        if record.get("authenticated"):
            state.audit.append(
                AuditEntry(
                    request_id=request_id,
                    api_key=str(record["api_key"]),
                    module="customer",
                    action=record["action"],
                    time=arrived,
                    client_ip=client_ip,
                    outcome="ok" if message is None else message,
                    status=status,
                )
            )
        state.received.append(
            ReceivedRequest(
                request_id=request_id,
                time=arrived,
                method=request.method,
                path=request.url.path,
                client_ip=client_ip,
                content_type=content_type,
                body=state._mask(record["body"]),
                status=status,
                message=message,
                api_key=record["api_key"],
                action=record["action"],
            )
        )
        state._after_request()
        return Response(php_json(payload), status, headers=headers, media_type=JSON_TYPE)

    async def _serve(
        self, request: Request, request_id: str, client_ip: str, content_type: str, record: dict[str, Any]
    ) -> dict[str, Any]:
        state = self.state
        if request.method != "POST":
            raise _Reply(405, MSG_METHOD, {"Allow": "POST"})
        mode = state.mode
        if mode == "0":
            raise _Reply(403, MSG_DISABLED)
        if mode == "1" and request.url.scheme != "https":
            raise _Reply(403, MSG_HTTPS_REQUIRED)
        if mode == "2" and not _is_loopback(client_ip):
            raise _Reply(403, MSG_LOCALHOST_ONLY)
        state._check_rate(state._ip_hits, client_ip, state.switches.rate_limit_per_ip_per_min)
        raw = await request.body()
        body = self._parse(raw, content_type)
        record["body"] = body
        api_key = body.get("api_key")
        record["api_key"] = api_key if isinstance(api_key, str) else None
        key = state._authenticate(api_key, body.get("api_secret"))
        if key is None:
            raise _Reply(401, MSG_BAD_CREDENTIALS)
        record["authenticated"] = True
        action = body.get("action")
        record["action"] = action if isinstance(action, str) else None
        state._check_rate(state._key_hits, str(api_key), state.switches.rate_limit_per_key_per_min)
        if action == "read":
            if not key.read:
                raise _Reply(403, MSG_READ_DENIED)
            return self._read(body, str(api_key), mode)
        if action == "create":
            if not key.create:
                raise _Reply(403, MSG_CREATE_DENIED)
            return self._create(body, str(api_key), mode)
        raise _Reply(400, MSG_BAD_ACTION)

    @staticmethod
    def _parse(raw: bytes, content_type: str) -> dict[str, Any]:
        if "application/x-www-form-urlencoded" in content_type.lower():
            return _php_form(raw)
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _Reply(400, MSG_BAD_JSON) from None
        if not isinstance(body, dict):
            raise _Reply(400, MSG_BAD_JSON)
        return body

    def _read(self, body: Mapping[str, Any], api_key: str, mode: str) -> dict[str, Any]:
        raw_from, raw_to = body.get("date_from"), body.get("date_to")
        if _blank(raw_from) or _blank(raw_to):
            raise _Reply(400, MSG_DATES_REQUIRED)
        date_from, date_to = _parse_day(raw_from), _parse_day(raw_to)
        if date_from is None or date_to is None:
            raise _Reply(400, MSG_DATE_FORMAT)
        if date_from > date_to:
            raise _Reply(400, MSG_FROM_AFTER_TO)
        days = (date_to - date_from).days + 1
        if days > MAX_WINDOW_DAYS:
            raise _Reply(400, MSG_RANGE_TOO_WIDE)
        fields = body.get("fields")
        filters = body.get("filters")
        rows = self.state.read_window(
            date_from,
            date_to,
            [f for f in fields if isinstance(f, str)] if isinstance(fields, list) else (),
            filters if isinstance(filters, Mapping) else None,
        )
        if self.state.switches.corrupt_rate > 0:
            rows = [corrupt_record(row, SKYBIZ_SHAPE, self.state.switches) or row for row in rows]
        return {
            "requested_by": api_key,
            "mode": mode,
            "date_range": {"from": date_from.isoformat(), "to": date_to.isoformat(), "days": days},
            "total_returned": len(rows),
            "data": rows,
        }

    def _create(self, body: Mapping[str, Any], api_key: str, mode: str) -> dict[str, Any]:
        customer_data = body.get("customer_data")
        documents = customer_data.get("documents") if isinstance(customer_data, Mapping) else None
        if not isinstance(documents, list) or not documents:
            raise _Reply(400, MSG_NO_DOCUMENTS)
        if len(documents) > MAX_DOCUMENTS:
            raise _Reply(400, MSG_TOO_MANY_DOCUMENTS)
        result = self.state.create_documents(documents)
        return {"requested_by": api_key, "mode": mode, **result}


def create_app(state: SkyBizState) -> Starlette:
    """The SkyBiz emulator as an ASGI app, with the fault middleware reading ``state.switches``."""
    handler = _Handler(state)
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    app = Starlette(
        routes=[Route("/{path:path}", handler.handle, methods=methods)],
        middleware=[
            Middleware(
                FaultMiddleware,
                switches=state.switches,
                render_error=render_error,
                messages={500: MSG_INTERNAL, 429: MSG_RATE_LIMITED},
            )
        ],
    )
    app.state.skybiz = state
    return app
