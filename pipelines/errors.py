r"""The one error hierarchy of skysmart.

Whether an error is retried is a property of its type (``retryable``), never of its message. Every error
carries context (source, window, record key, field, request id) as attributes, and its text is built
through :func:`redact`, so a secret that reaches an error never reaches a log, a report or XCom.

Context often comes from vendor data, which can hold anything. In the rendered text, control characters and
bidi controls are shown as escapes (``\x1b``, ``\u202e``), so a record key cannot move a terminal's cursor,
forge a log line or display as another key; and a context value is cut at :data:`FACT_CHARS` characters
(saying how long it was), so a 100 kB vendor value does not become a 100 kB log line. The attributes keep
the values as they were.

Every command exits with the code of its error's type (``exit_code``), one table for all of them:

====  ==========================================================================================
code  meaning
====  ==========================================================================================
0     done
1     a bug: an error skysmart did not expect (only this)
2     usage or configuration: options, settings, dates, contracts, SQL, a missing lake window, an
      unknown host, too little SkyBiz history loaded to push
3     credentials or permission refused by a vendor
4     a vendor or the warehouse kept failing or was busy: retry later
5     data: quality errors, records that break a contract or a vendor's rules
6     needs review: a push conflict a person must decide
====  ==========================================================================================

A command over many windows (``skysmart run``) exits with the worst of its windows' codes, worst first in
:data:`EXIT_PRECEDENCE`: a person's action beats "retry later".
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

_SECRET_VALUES: set[str] = set()
_SECRET_LOCK = threading.Lock()
_MASK = "***"
FACT_CHARS = 200
# What a terminal or a log viewer would act on or hide: C0 (in facts also tab and line breaks), DEL, C1, and
# the bidi embeddings, overrides and isolates.
_UNPRINTABLE_MESSAGE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNPRINTABLE_FACT = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

# Secrets that travel in well-known places: SkyBiz puts them in the body, SmartAcc in headers/cookies.
_SECRET_PATTERNS = (
    re.compile(r"(?i)(api_secret|api_key|password|apikey|secret)(\"?\s*[:=]\s*\"?)([^\"&,\s}]+)"),
    re.compile(r"(?i)(authorization\"?\s*[:=]\s*\"?(?:bearer|basic)\s+)([^\"\s,}]+)"),
    re.compile(r"(?i)(bearer\s+)([A-Za-z0-9._~+/=-]{8,})"),
    re.compile(r"(?i)(ss-p?id=)([^;\s]+)"),
)


def printable(text: str, *, one_line: bool = False) -> str:
    """``text`` with control and bidi characters written as escapes (``one_line``: line breaks too)."""
    pattern = _UNPRINTABLE_FACT if one_line else _UNPRINTABLE_MESSAGE
    return pattern.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _fact(value: object) -> str:
    text = printable(str(value), one_line=True)
    if len(text) > FACT_CHARS:
        return f"{text[:FACT_CHARS]}…({len(text):,} chars)"
    return text


def register_secret(value: str) -> None:
    """Remember a secret value so that :func:`redact` masks it wherever it appears."""
    if value and len(value) >= 4:
        with _SECRET_LOCK:
            _SECRET_VALUES.add(value)


def redact(text: object) -> str:
    """Return ``text`` with every registered secret and every credential-shaped fragment masked."""
    out = str(text)
    with _SECRET_LOCK:
        values = sorted(_SECRET_VALUES, key=len, reverse=True)
    for value in values:
        if value in out:
            out = out.replace(value, _MASK)
    for pattern in _SECRET_PATTERNS:
        if pattern.groups == 3:
            out = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{_MASK}", out)
        else:
            out = pattern.sub(lambda m: f"{m.group(1)}{_MASK}", out)
    return out


class SkysmartError(Exception):
    """Base of every error skysmart raises on purpose.

    Attributes:
        message: what went wrong, already redacted.
        source: ``skybiz`` or ``smartacc`` where known.
        window: window key (``2024-01-01_2024-01-31``) where known.
        record_key: the record (``customer_key`` or vendor id) the error is about.
        field: the field the error is about.
        request_id: the vendor's (or our) request id of the failing call.
        context: any further small, secret-free facts.
    """

    retryable: ClassVar[bool] = False
    exit_code: ClassVar[int] = 1

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        window: str | None = None,
        record_key: str | None = None,
        field: str | None = None,
        request_id: str | None = None,
        **context: Any,
    ) -> None:
        self.message = redact(message)
        self.source = source
        self.window = window
        self.record_key = record_key
        self.field = field
        self.request_id = request_id
        self.context: Mapping[str, Any] = {k: v for k, v in context.items() if v is not None}
        super().__init__(self._render())

    def _render(self) -> str:
        facts = {
            "source": self.source,
            "window": self.window,
            "record": self.record_key,
            "field": self.field,
            "request_id": self.request_id,
            **self.context,
        }
        shown = ", ".join(f"{k}={_fact(v)}" for k, v in facts.items() if v is not None)
        message = printable(self.message)
        return redact(f"{message} [{shown}]" if shown else message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep errors picklable across process boundaries (Airflow, executors) with their context.
        return (_rebuild, (type(self), self.message, self._kwargs()))

    def _kwargs(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "window": self.window,
            "record_key": self.record_key,
            "field": self.field,
            "request_id": self.request_id,
            **dict(self.context),
        }


def _rebuild(cls: type[SkysmartError], message: str, kwargs: dict[str, Any]) -> SkysmartError:
    try:
        return cls(message, **kwargs)
    except TypeError:  # a subclass with its own signature: keep the context, skip its __init__
        err = cls.__new__(cls)
        SkysmartError.__init__(err, message, **kwargs)
        return err


class ConfigError(SkysmartError):
    """Settings are missing or malformed; fix the configuration, retrying will not help."""

    exit_code = 2


class HostNotFoundError(ConfigError):
    """A vendor's or the warehouse's host name does not resolve: a typo in a URL, not a passing fault."""


class WindowError(SkysmartError):
    """A date window is invalid for a source (reversed, too wide, bad format)."""

    exit_code = 2


class ApiError(SkysmartError):
    """A vendor API answered with an error, or not in the documented shape.

    Attributes:
        status_code: the HTTP status, where there was a response.
    """

    def __init__(self, message: str, *, status_code: int | None = None, **kwargs: Any) -> None:
        self.status_code = status_code
        super().__init__(message, status_code=status_code, **kwargs)

    def _kwargs(self) -> dict[str, Any]:
        return super()._kwargs()


class TransientApiError(ApiError):
    """Timeouts, dropped connections, 5xx and truncated or non-JSON bodies: worth trying again."""

    retryable = True
    exit_code = 4


class RateLimitedError(TransientApiError):
    """The vendor answered 429; ``retry_after`` holds its ``Retry-After`` in seconds where given."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, retry_after=retry_after, **kwargs)


class RetriesExhaustedError(TransientApiError):
    """Every retry of a transient failure failed; a later task retry may still succeed."""


class CreateOutcomeUnknownError(TransientApiError):
    """A create was sent but no trustworthy answer came back (timeout, dropped connection, 5xx, bad body).

    The vendor may or may not have saved the batch, so it is never re-sent blindly: the push outbox must
    first find out what exists (shared/api/SKYBIZ.md §9) and only then decide.
    """


class AuthenticationError(ApiError):
    """The credentials were refused (401, unknown key, bad password)."""

    exit_code = 3


class PermissionDeniedError(ApiError):
    """The credentials work but lack a permission, or the integration mode forbids the call (403)."""

    exit_code = 3


class RequestRejectedError(ApiError):
    """The vendor refused the request itself (400-class validation); sending it again changes nothing."""

    exit_code = 2


class LakeError(SkysmartError):
    """The lake is missing a window or holds something unreadable."""

    exit_code = 2


class ContractError(SkysmartError):
    """A data contract is malformed or data does not fit the contract's schema."""

    exit_code = 2


class NormalizeError(SkysmartError):
    """Normalization could not run for a whole window (row-level problems are quarantined, not raised)."""

    exit_code = 5


class DataQualityError(SkysmartError):
    """Error-severity expectations failed; the message summarises and points at the full report."""

    exit_code = 5


class WarehouseError(SkysmartError):
    """A warehouse load or query failed (bad SQL, a schema that does not fit); it was rolled back."""

    exit_code = 2


class TransientWarehouseError(WarehouseError):
    """The warehouse could not be reached or was busy; the same load may succeed later."""

    retryable = True
    exit_code = 4


class PushError(SkysmartError):
    """Pushing customers into SkyBiz failed as a whole."""


class PushValidationError(PushError):
    """A create document breaks a SkyBiz rule; it is never sent."""

    exit_code = 5


class PushConflictError(PushError):
    """SkyBiz already has a customer code we did not create; a person must review it."""

    exit_code = 6


class PushCoverageError(PushError):
    """The warehouse holds too little of SkyBiz to tell which customers it lacks; load SkyBiz first.

    A real push trusts "no SkyBiz counterpart in the warehouse" to mean "SkyBiz lacks it". With a gap in
    the loaded SkyBiz windows, or none loaded recently, that is false and the push would create duplicates,
    so it refuses before sending or writing anything. Retrying changes nothing until SkyBiz is loaded.
    """

    exit_code = 2


class PushUnfinishedError(PushError):
    """A push ended with customers whose outcome in SkyBiz is still unknown (SkyBiz kept failing).

    Nothing is lost: their outbox rows stay ``sent`` or ``pending``, and the next run reads SkyBiz to settle
    them before sending anything again — so retrying the push later is exactly the fix.
    """

    retryable = True
    exit_code = 4


class OutboxTransitionError(PushError):
    """An outbox row was asked to make a move the outbox's transition table does not allow.

    A bug, or a row edited by hand into a state it cannot leave that way; nothing was written for it.
    """


EXIT_PRECEDENCE: tuple[int, ...] = (1, 3, 2, 5, 6, 4)
"""Exit codes from worst to mildest, for a command that meets several errors: a bug first, then what a
person must fix (credentials, configuration, data, a review), and "retry later" last."""


def worst_exit_code(codes: Iterable[int]) -> int:
    """The exit code of a command whose parts ended with ``codes`` (0 for none, and 0s are ignored)."""
    seen = {code for code in codes if code}
    return next((code for code in EXIT_PRECEDENCE if code in seen), 1 if seen else 0)
