"""One HTTP layer for both vendors, so both get the same pooling, limits and retry rules.

Pooled keep-alive connections, timeouts, a client-side rate limit, a bound on concurrent requests and
tenacity retries of transient failures only.

The layer knows HTTP and JSON; it does not know what a vendor's error envelope looks like. A client passes
an ``interpret`` function that turns a parsed :class:`JsonResponse` into a value or raises a typed error
from :mod:`pipelines.errors`. Whether a failure is retried is decided by that error's type
(``retryable``), never by its text:

* retried: timeouts, connection errors, truncated or non-JSON bodies, 5xx (:class:`TransientApiError`) and
  429 (:class:`RateLimitedError`, waiting at least its ``Retry-After``);
* never retried: every other 4xx and every vendor-level refusal (authentication, permission, validation).

Bodies are parsed with ``parse_float=str, parse_int=str`` so every vendor number keeps its exact text, the
way the raw lake stores it. Secrets never reach logs or exception text: clients reveal them only while
building a request, and everything this module logs or raises goes through :func:`pipelines.errors.redact`.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookiejar import CookieJar
from typing import Any, Final, TypeVar
from urllib.parse import urlencode, urlsplit

import certifi
import urllib3
from pyrate_limiter import Limiter, Rate, SingleBucketFactory, StateBucket, TokenBucket
from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_exponential_jitter
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    LocationValueError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from pipelines import __version__
from pipelines.config import HttpSettings
from pipelines.errors import (
    ApiError,
    AuthenticationError,
    ConfigError,
    HostNotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RequestRejectedError,
    RetriesExhaustedError,
    SkysmartError,
    TransientApiError,
    redact,
)
from pipelines.sources import JsonNumber

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)

log = logging.getLogger(__name__)

USER_AGENT: Final = f"skysmart/{__version__} (+https://github.com/skysmart)"
_DEFAULT_HEADERS: Final = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", "Accept": "*/*"}
# A server that asks us to come back later than this is not "transient" any more: give up now and let the
# task-level retry (minutes later) try again, rather than holding a worker slot asleep.
MAX_RETRY_AFTER_SECONDS: Final = 120.0
_SNIPPET: Final = 120


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a call is about, for log lines and error text: source, operation, window, page."""

    source: str
    operation: str
    window: str | None = None
    page: int | None = None

    def describe(self) -> str:
        """The words a log line or error starts with: ``smartacc page window=... page=3``."""
        parts = [self.source, self.operation]
        if self.window is not None:
            parts.append(f"window={self.window}")
        if self.page is not None:
            parts.append(f"page={self.page}")
        return " ".join(parts)

    def error_fields(self) -> dict[str, Any]:
        """Keyword arguments every :class:`SkysmartError` raised for this call carries."""
        return {"source": self.source, "window": self.window, "page": self.page}


@dataclass(frozen=True, slots=True)
class JsonResponse:
    """One HTTP response whose body parsed as JSON (numbers kept as their text).

    Attributes:
        status_code: HTTP status.
        headers: response headers (case-insensitive mapping).
        body: the parsed body; every JSON number is a ``str``.
        request_id: the id *we* sent in ``X-Request-Id`` for this attempt, if any; a vendor that issues its
            own id (SkyBiz's ``request_id``) is read from the body by its client.
        seconds: time from sending to the full body.
    """

    status_code: int
    headers: Mapping[str, str]
    body: Any
    request_id: str | None
    seconds: float


def loads_exact(raw: bytes | str) -> Any:
    """Parse JSON keeping every number (and NaN/Infinity) as the exact text the vendor sent."""
    return json.loads(raw, parse_float=JsonNumber, parse_int=JsonNumber, parse_constant=JsonNumber)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Read a ``Retry-After`` header: delta-seconds or an HTTP date; ``None`` when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def status_error(
    status_code: int,
    message: str,
    ctx: CallContext,
    *,
    request_id: str | None,
    retry_after: float | None = None,
) -> ApiError:
    """The typed error an HTTP status means when the body says nothing more specific.

    Used for bodies that are not JSON, and by clients as the fallback after their own envelope rules.
    """
    fields = {**ctx.error_fields(), "request_id": request_id, "status_code": status_code}
    if status_code == 429:
        return RateLimitedError(message, retry_after=retry_after, **fields)
    if status_code >= 500 or status_code < 300:
        # 5xx, and 2xx bodies we could not use (an HTML page from a proxy, a cut-off body).
        return TransientApiError(message, **fields)
    if status_code < 400:
        # Redirects are not followed (a POST must not silently become a GET elsewhere): the URL is wrong.
        return RequestRejectedError(f"{message}; redirected, check the configured URL", **fields)
    if status_code == 401:
        return AuthenticationError(message, **fields)
    if status_code == 403:
        return PermissionDeniedError(message, **fields)
    return RequestRejectedError(message, **fields)


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, SkysmartError) and exc.retryable and not isinstance(exc, RetriesExhaustedError)


def _rate(requests_per_second: float, burst: int) -> Rate:
    # pyrate-limiter counts whole requests per integer milliseconds; express e.g. 0.5 rps as 1 per 2000 ms.
    limit = max(1, round(requests_per_second))
    interval_ms = max(1, round(1000 * limit / requests_per_second))
    return Rate(limit, interval_ms, burst=max(1, min(limit, burst)))


class HttpClient:
    """A thread-safe HTTP client shared by every thread that talks to one vendor.

    Many threads may call :meth:`request` at once: at most ``max_concurrency`` requests are in flight, no
    more than ``requests_per_second`` start per second (a token bucket, bursts up to the concurrency
    bound), and keep-alive connections are pooled to the same bound so concurrent pages reuse sockets.

    Args:
        source: ``skybiz`` or ``smartacc``; names the vendor in logs and errors.
        settings: timeouts, retry and throughput limits.
    """

    def __init__(self, source: str, settings: HttpSettings) -> None:
        if settings.max_concurrency < 1:
            raise ConfigError(
                "max_concurrency must be at least 1", field="HTTP_MAX_CONCURRENCY", source=source
            )
        if settings.max_retries < 0:
            raise ConfigError("max_retries must be >= 0", field="HTTP_MAX_RETRIES", source=source)
        self.source = source
        self.settings = settings
        # urllib3 directly: requests cost 0.5 ms more CPU a request (its per-request merging of session
        # settings and lookups in the environment), which SmartAcc's 20-row pages pay thousands of times.
        self._pools = _Pools(settings.max_concurrency)
        self._cookies = CookieJar()
        self._slots = threading.BoundedSemaphore(settings.max_concurrency)
        self._limiter: Limiter | None = None
        if settings.requests_per_second > 0:
            bucket = StateBucket(
                [_rate(settings.requests_per_second, settings.max_concurrency)], algorithm=TokenBucket()
            )
            # A token bucket keeps two numbers, so there is nothing to leak and no leaker thread to start.
            self._limiter = Limiter(SingleBucketFactory(bucket, schedule_leak=False), buffer_ms=0)
        self._backoff = wait_exponential_jitter(
            initial=settings.backoff_initial, max=settings.backoff_max, jitter=settings.backoff_initial
        )

    def __repr__(self) -> str:
        return (
            f"HttpClient(source={self.source!r}, max_concurrency={self.settings.max_concurrency}, "
            f"requests_per_second={self.settings.requests_per_second}, "
            f"max_retries={self.settings.max_retries})"
        )

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections."""
        self._pools.clear()

    @property
    def cookies(self) -> CookieJar:
        """The cookies the vendor set (SmartAcc credential sessions live here), sent back where they apply."""
        return self._cookies

    def request(
        self,
        method: str,
        url: str,
        *,
        ctx: CallContext,
        interpret: Callable[[JsonResponse], T],
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Callable[[], Mapping[str, str]] | Mapping[str, str] | None = None,
        new_request_id: Callable[[], str] | None = None,
        retry: bool = True,
        read_timeout: float | None = None,
    ) -> T:
        """Send one logical request, retrying transient failures; return what ``interpret`` makes of it.

        Args:
            method: HTTP method.
            url: full URL (no secrets in it; it is logged).
            ctx: what the call is about, for logs and errors.
            interpret: turns a parsed response into the result or raises a typed error; raising a
                retryable one (5xx, 429) makes the layer try again.
            json_body: sent as JSON. May hold secrets; never logged.
            params: query string.
            headers: extra headers, or a function building them per attempt (so a re-authenticated
                session or a rotated key is picked up by the next attempt).
            new_request_id: makes the ``X-Request-Id`` for each attempt (SmartAcc has no ids of its own).
            retry: ``False`` sends exactly once: the typed error of a failure is raised as is (a SkyBiz
                create must not be repeated blindly).
            read_timeout: overrides the settings' read timeout for this call (creates are slow).

        Raises:
            RetriesExhaustedError: every attempt failed transiently; names the source, window, page and
                last request id, with the last failure chained as its cause.
            SkysmartError: the non-retryable typed error ``interpret`` (or the status) raised.
        """
        attempts = 1 + (self.settings.max_retries if retry else 0)
        last_request_id: list[str | None] = [None]

        def attempt() -> T:
            request_id = new_request_id() if new_request_id else None
            try:
                response = self._send(method, url, ctx, json_body, params, headers, request_id, read_timeout)
                result = interpret(response)
            except SkysmartError as exc:
                last_request_id[0] = exc.request_id or request_id or last_request_id[0]
                raise
            last_request_id[0] = request_id
            return result

        if not retry:
            return attempt()
        retrying = Retrying(
            stop=stop_after_attempt(attempts) | _StopOnLongRetryAfter(),
            wait=self._wait,
            retry=retry_if_exception(_is_retryable),
            before_sleep=lambda state: self._log_retry(ctx, state, attempts),
            reraise=False,
        )
        try:
            return retrying(attempt)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            assert isinstance(last, SkysmartError)  # only typed errors are retried
            tries = exc.last_attempt.attempt_number
            reason = last.message.removeprefix(f"{ctx.describe()}: ")
            raise RetriesExhaustedError(
                f"{ctx.describe()}: gave up after {tries} attempt(s); last failure: {reason}",
                **ctx.error_fields(),
                request_id=last_request_id[0],
                status_code=getattr(last, "status_code", None),
                attempts=tries,
            ) from last

    # ----------------------------------------------------------------------------------------------------

    @contextmanager
    def _slot(self) -> Iterator[None]:
        with self._slots:
            if self._limiter is not None:
                self._limiter.try_acquire(self.source)
            yield

    def _send(
        self,
        method: str,
        url: str,
        ctx: CallContext,
        json_body: Mapping[str, Any] | None,
        params: Mapping[str, str] | None,
        headers: Callable[[], Mapping[str, str]] | Mapping[str, str] | None,
        request_id: str | None,
        read_timeout: float | None,
    ) -> JsonResponse:
        sent_headers = {**_DEFAULT_HEADERS, **(headers() if callable(headers) else (headers or {}))}
        if request_id is not None:
            sent_headers["X-Request-Id"] = request_id
        fields = {**ctx.error_fields(), "request_id": request_id}
        timeout = (self.settings.connect_timeout, read_timeout or self.settings.read_timeout)
        full_url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}" if params else url
        payload = None
        if json_body is not None:
            try:
                payload = json.dumps(json_body, allow_nan=False).encode("utf-8")
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{ctx.describe()}: cannot send request: {exc}", **fields) from None
            sent_headers["Content-Type"] = "application/json"
        if len(self._cookies):
            sent_headers.update(_cookie_header(self._cookies, full_url))
        started = time.monotonic()
        with self._slot():
            try:
                resp = self._pools.for_url(full_url).urlopen(
                    method,
                    full_url,
                    body=payload,
                    headers=sent_headers,
                    timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
                    redirect=False,
                    retries=False,
                    preload_content=False,
                )
            except NameResolutionError as exc:
                # A name that does not resolve is a typo far more often than a passing DNS fault.
                where = _host_and_port(url)
                raise HostNotFoundError(
                    f"{ctx.describe()}: host {where} not found; check the URL", **fields, sent=False
                ) from exc
            except NewConnectionError as exc:  # refused, unreachable: before any byte of the request left
                raise _connection_failed(url, ctx, exc, fields, sent=False) from exc
            except ConnectTimeoutError as exc:
                # Nothing was sent: the outcome of even a create is known (nothing happened).
                raise TransientApiError(
                    f"{ctx.describe()}: connect timed out after {timeout[0]}s", **fields, sent=False
                ) from exc
            except ReadTimeoutError as exc:
                raise _no_answer(ctx, timeout[1], fields) from exc
            except LocationValueError as exc:
                # Malformed URL, unsupported scheme...: configuration, not the vendor.
                raise ConfigError(f"{ctx.describe()}: cannot send request: {exc}", **fields) from exc
            except HTTPError as exc:
                # The connection broke (reset, closed, TLS) once the request may have left.
                raise _connection_failed(url, ctx, exc, fields, sent=None) from exc
            try:
                raw = resp.read()  # the whole body: a cut-off body fails here
            except ReadTimeoutError as exc:
                raise _no_answer(ctx, timeout[1], fields) from exc
            except (ProtocolError, DecodeError) as exc:
                raise TransientApiError(
                    f"{ctx.describe()}: response body cut short ({type(exc).__name__})", **fields
                ) from exc
            except HTTPError as exc:
                raise _connection_failed(url, ctx, exc, fields, sent=None) from exc
            finally:
                resp.release_conn()
        if "Set-Cookie" in resp.headers:
            # CookieJar reads only ``info().get_all("Set-Cookie")`` of the response it is given.
            answered = _CookieResponse(resp.headers)
            self._cookies.extract_cookies(answered, urllib.request.Request(full_url))  # type: ignore[arg-type]
        seconds = time.monotonic() - started
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s: %s %s -> HTTP %s, %d bytes in %.3fs (request_id=%s)",
                ctx.describe(),
                method,
                redact(full_url),
                resp.status,
                len(raw),
                seconds,
                request_id,
            )
        try:
            body = loads_exact(raw)
        except (ValueError, UnicodeDecodeError):
            snippet = raw[:_SNIPPET].decode("utf-8", "replace").replace("\n", " ")
            raise status_error(
                resp.status,
                f"{ctx.describe()}: HTTP {resp.status} with a body that is not JSON "
                f"({len(raw)} bytes: {snippet!r})",
                ctx,
                request_id=request_id,
                retry_after=retry_after_seconds(resp.headers.get("Retry-After")),
            ) from None
        return JsonResponse(resp.status, resp.headers, body, request_id, seconds)

    def _wait(self, state: RetryCallState) -> float:
        base = float(self._backoff(state))
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            return max(base, exc.retry_after)
        return base

    def _log_retry(self, ctx: CallContext, state: RetryCallState, attempts: int) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s: attempt %d/%d failed (%s: %s); retrying in %.2fs",
            ctx.describe(),
            state.attempt_number,
            attempts,
            type(exc).__name__,
            redact(exc),
            wait,
        )


class _StopOnLongRetryAfter(stop_base):
    """Stop at once when a 429 asks for a longer pause than :data:`MAX_RETRY_AFTER_SECONDS`."""

    def __call__(self, retry_state: RetryCallState) -> bool:
        """Whether the last failure was a 429 with an overlong ``Retry-After``."""
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        return (
            isinstance(exc, RateLimitedError)
            and exc.retry_after is not None
            and exc.retry_after > MAX_RETRY_AFTER_SECONDS
        )


def _host_and_port(url: str) -> str:
    """``host:port`` of a URL, never its user or password (which may hold a credential)."""
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return f"{parts.hostname}:{port}" if port else str(parts.hostname)


def _cause(exc: BaseException, kind: type[E]) -> E | None:
    """The first exception of ``kind`` in ``exc``'s chain (causes, contexts, urllib3's ``reason``)."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop(0)
        if id(item) in seen or not isinstance(item, BaseException):
            continue
        seen.add(id(item))
        if isinstance(item, kind) and item is not exc:
            return item
        todo.extend([getattr(item, "reason", None), item.__cause__, item.__context__, *item.args])
    return None


def _no_answer(ctx: CallContext, seconds: float, fields: dict[str, Any]) -> TransientApiError:
    return TransientApiError(f"{ctx.describe()}: no answer within {seconds}s", **fields)


def _connection_failed(
    url: str, ctx: CallContext, exc: BaseException, fields: dict[str, Any], *, sent: bool | None
) -> TransientApiError:
    """A broken connection, named by its host and the OS error under it (``sent``: ``None`` when unknown)."""
    reason = _cause(exc, OSError)
    why = type(reason or exc).__name__
    return TransientApiError(
        f"{ctx.describe()}: connection to {_host_and_port(url)} failed ({why})", **fields, sent=sent
    )


class _Pools:
    """Keep-alive connection pools, direct or through the proxy the environment names for a host.

    The environment is read once per scheme and host (``HTTP(S)_PROXY``, ``NO_PROXY``, and the CA bundle
    from ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``, as requests read them), not once per request.
    """

    def __init__(self, maxsize: int) -> None:
        ca_certs = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
        self._options: dict[str, Any] = {
            "num_pools": 2,
            "maxsize": maxsize,
            "block": False,
            "retries": False,
            "ca_certs": ca_certs,
        }
        self._direct = urllib3.PoolManager(**self._options)
        self._by_host: dict[tuple[str, str], urllib3.PoolManager] = {}
        self._lock = threading.Lock()

    def for_url(self, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        found = self._by_host.get(key)
        if found is None:
            with self._lock:
                found = self._by_host.get(key)
                if found is None:
                    bypass = urllib.request.proxy_bypass(parts.hostname or "")
                    proxy = None if bypass else urllib.request.getproxies().get(parts.scheme)
                    found = urllib3.ProxyManager(proxy, **self._options) if proxy else self._direct
                    self._by_host[key] = found
        return found

    def clear(self) -> None:
        with self._lock:
            for manager in {self._direct, *self._by_host.values()}:
                manager.clear()
            self._by_host.clear()


def _cookie_header(jar: CookieJar, url: str) -> dict[str, str]:
    """The ``Cookie`` header the jar sends to ``url`` (domain, path, expiry and ``Secure`` applied)."""
    request = urllib.request.Request(url)
    jar.add_cookie_header(request)
    cookie = request.get_header("Cookie")
    return {"Cookie": cookie} if cookie else {}


class _CookieResponse:
    """What :meth:`http.cookiejar.CookieJar.extract_cookies` reads of a response: its headers."""

    def __init__(self, headers: Any) -> None:
        self._headers = headers

    def info(self) -> _CookieResponse:
        return self

    def get_all(self, name: str, default: list[str] | None = None) -> list[str] | None:
        return list(self._headers.getlist(name)) or default
