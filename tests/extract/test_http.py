"""The shared HTTP layer: retries of transient failures only, Retry-After, exhaustion, exact number text.

Faults come from the sandbox's fault middleware (``switches.inject``) in front of each emulator, over real
HTTP on 127.0.0.1. An injected fault is answered by the middleware before the emulator sees the request, so
the emulator's ``received`` holds only the requests that got through.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any, cast

import pytest

from pipelines.config import HttpSettings, Secret
from pipelines.errors import (
    AuthenticationError,
    PermissionDeniedError,
    RateLimitedError,
    RequestRejectedError,
    RetriesExhaustedError,
    TransientApiError,
)
from pipelines.http import CallContext, HttpClient, _rate, loads_exact, retry_after_seconds, status_error
from pipelines.sources.skybiz.client import SkyBizClient
from pipelines.sources.skybiz.settings import SkyBizSettings
from pipelines.sources.smartacc.client import SmartAccClient
from pipelines.sources.smartacc.settings import SmartAccSettings
from pipelines.windows import Window
from skysmart_sandbox.server import SandboxServer
from tests.fixtures.sandbox import SandboxFactory

WINDOW = Window("skybiz", date(2024, 5, 1), date(2024, 5, 31))
RECOVERABLE = ["500", "429", "drop", "truncate", "non_json", "slow"]


def fast_http(**overrides: float) -> HttpSettings:
    values: dict[str, Any] = {
        "max_retries": 2,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "requests_per_second": 0,
        "read_timeout": 5.0,
        **overrides,
    }
    return HttpSettings(**values)


def skybiz_client(server: SandboxServer, **http: float) -> SkyBizClient:
    ep = server.endpoints
    return SkyBizClient(
        SkyBizSettings(
            url=ep.skybiz_url,
            api_key=Secret(ep.skybiz_api_key),
            api_secret=Secret(ep.skybiz_api_secret),
            http=fast_http(**http),
        )
    )


def smartacc_client(server: SandboxServer, **http: float) -> SmartAccClient:
    ep = server.endpoints
    return SmartAccClient(
        SmartAccSettings(url=ep.smartacc_url, api_key=Secret(ep.smartacc_api_key), http=fast_http(**http))
    )


def retry_waits(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The waits the layer decided before each retry (the last argument of its retry warning)."""
    return [
        float(cast("tuple[float, ...]", r.args)[-1])
        for r in caplog.records
        if r.name == "pipelines.http" and r.levelno == logging.WARNING
    ]


# -- pure pieces ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rps", "concurrency", "limit", "interval_ms", "burst"),
    [
        pytest.param(50.0, 8, 50, 1000, 8, id="50rps"),
        pytest.param(0.5, 8, 1, 2000, 1, id="half-rps"),
        pytest.param(2.5, 1, 2, 800, 1, id="fractional"),
        pytest.param(1000.0, 32, 1000, 1000, 32, id="fast"),
    ],
)
def test_rate_limit_rate(rps: float, concurrency: int, limit: int, interval_ms: int, burst: int) -> None:
    rate = _rate(rps, concurrency)
    assert (rate.limit, rate.interval, rate.burst) == (limit, interval_ms, burst)


def test_client_side_limits_are_wired() -> None:
    # 1 request per second with bursts of one: a second request right away has to wait for a token.
    with HttpClient("smartacc", HttpSettings(requests_per_second=1, max_concurrency=3)) as http:
        assert http._limiter is not None
        assert http._limiter.try_acquire("smartacc", blocking=False) is True
        assert http._limiter.try_acquire("smartacc", blocking=False) is False
        # The concurrency bound: three slots, and a fourth caller would block.
        taken = [http._slots.acquire(blocking=False) for _ in range(4)]
        assert taken == [True, True, True, False]
    with HttpClient("smartacc", HttpSettings(requests_per_second=0)) as unlimited:
        assert unlimited._limiter is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("3", 3.0, id="seconds"),
        pytest.param(" 0 ", 0.0, id="zero-padded"),
        pytest.param("1.5", 1.5, id="fraction"),
        pytest.param("-4", 0.0, id="negative-clamped"),
        pytest.param(None, None, id="absent"),
        pytest.param("soon", None, id="garbage"),
    ],
)
def test_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header) == expected


def test_retry_after_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(header, now=now) == 30.0


def test_numbers_keep_their_exact_text() -> None:
    body = loads_exact(b'{"a": 1.50, "b": 10, "c": 1e3, "d": -0.0, "e": NaN, "f": true, "g": null}')
    assert body == {"a": "1.50", "b": "10", "c": "1e3", "d": "-0.0", "e": "NaN", "f": True, "g": None}


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        pytest.param(200, TransientApiError, True, id="200-unusable-body"),
        pytest.param(302, RequestRejectedError, False, id="302-redirect"),
        pytest.param(400, RequestRejectedError, False, id="400"),
        pytest.param(401, AuthenticationError, False, id="401"),
        pytest.param(403, PermissionDeniedError, False, id="403"),
        pytest.param(404, RequestRejectedError, False, id="404"),
        pytest.param(429, RateLimitedError, True, id="429"),
        pytest.param(500, TransientApiError, True, id="500"),
        pytest.param(502, TransientApiError, True, id="502"),
        pytest.param(504, TransientApiError, True, id="504"),
    ],
)
def test_status_error_types(status: int, error: type[Exception], retryable: bool) -> None:
    err = status_error(status, "boom", CallContext("skybiz", "read", window="w", page=1), request_id="r-1")
    assert type(err) is error and err.retryable is retryable
    assert (err.status_code, err.request_id, err.window, err.context["page"]) == (status, "r-1", "w", 1)


def test_call_context_describes_the_call() -> None:
    ctx = CallContext("smartacc", "window pass 1", window="2024-05-01_2024-05-31", page=3)
    assert ctx.describe() == "smartacc window pass 1 window=2024-05-01_2024-05-31 page=3"
    assert ctx.error_fields() == {"source": "smartacc", "window": "2024-05-01_2024-05-31", "page": 3}


# -- faults recovered -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", RECOVERABLE)
def test_skybiz_read_recovers_from(sandbox_factory: SandboxFactory, fault: str) -> None:
    server = sandbox_factory(slow_seconds=0.4, retry_after_seconds=0)
    with skybiz_client(server, read_timeout=0.2) as client:
        expected = client.read_window(WINDOW)
        served_before = len(server.skybiz.received)
        server.skybiz.switches.inject(fault)

        page = client.read_window(WINDOW)

    assert not server.skybiz.switches.fail_next  # the fault was met
    assert page.rows == expected.rows and page.rows
    assert page.request_id != expected.request_id
    # The answer came from the request after the fault: the last one the emulator answered.
    assert server.skybiz.received[-1].request_id == page.request_id
    assert len(server.skybiz.received) > served_before


@pytest.mark.parametrize("fault", RECOVERABLE)
def test_smartacc_page_recovers_from(sandbox_factory: SandboxFactory, fault: str) -> None:
    server = sandbox_factory(slow_seconds=0.4, retry_after_seconds=0)
    with smartacc_client(server, read_timeout=0.2) as client:
        expected = client.page(3)
        server.smartacc.switches.inject(fault)

        page = client.page(3)

    assert not server.smartacc.switches.fail_next
    assert page.rows == expected.rows and len(page.rows) == 20
    # Every attempt carries a fresh X-Request-Id; the page keeps the one that succeeded.
    assert server.smartacc.received[-1].headers.get("x-request-id") == page.request_id


def test_several_faults_in_a_row_then_success(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory()
    with skybiz_client(server, max_retries=4) as client:
        server.skybiz.switches.inject("500", "drop", "non_json", "truncate")
        page = client.read_window(WINDOW)
    assert page.rows and not server.skybiz.switches.fail_next


def test_429_retry_after_is_honoured(
    sandbox_factory: SandboxFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = sandbox_factory(retry_after_seconds=1)
    caplog.set_level(logging.WARNING, logger="pipelines.http")
    with smartacc_client(server, backoff_initial=0.01, backoff_max=0.02) as client:
        server.smartacc.switches.inject("429")
        page = client.page(1)
    assert len(page.rows) == 20
    waits = retry_waits(caplog)
    # Backoff alone would wait <= 0.02 s; the server asked for 1 s, so the layer waited at least that.
    assert len(waits) == 1 and waits[0] >= 1.0


def test_backoff_grows_between_attempts(
    sandbox_factory: SandboxFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = sandbox_factory()
    caplog.set_level(logging.WARNING, logger="pipelines.http")
    with skybiz_client(server, max_retries=3, backoff_initial=0.01, backoff_max=1.0) as client:
        server.skybiz.switches.inject("500", "500", "500")
        client.read_window(WINDOW)
    waits = retry_waits(caplog)
    assert len(waits) == 3
    # initial * 2**n plus jitter in [0, initial): each wait lies in its own band.
    for n, wait in enumerate(waits):
        assert 0.01 * 2**n <= wait < 0.01 * 2**n + 0.01 + 1e-9


# -- exhausted and disabled retries ---------------------------------------------------------------------


def test_skybiz_exhausted_retries_name_source_window_page_and_request(
    sandbox_factory: SandboxFactory,
) -> None:
    server = sandbox_factory()
    with skybiz_client(server, max_retries=2) as client:
        server.skybiz.switches.inject("500", "500", "500")
        with pytest.raises(RetriesExhaustedError) as info:
            client.read_window(WINDOW)
    err = info.value
    assert not server.skybiz.switches.fail_next  # exactly three attempts met the three faults
    assert (err.source, err.window, err.context["page"], err.context["attempts"]) == (
        "skybiz",
        WINDOW.key,
        1,
        3,
    )
    assert err.request_id and err.request_id.startswith("req_")  # from the last 500's error envelope
    assert isinstance(err.__cause__, TransientApiError) and err.__cause__.status_code == 500
    text = str(err)
    for fact in ("skybiz", "read", WINDOW.key, "page=1", err.request_id, "gave up after 3 attempt(s)"):
        assert fact in text


def test_smartacc_exhausted_retries_carry_our_last_request_id(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory()
    with smartacc_client(server, max_retries=1) as client:
        server.smartacc.switches.inject("drop", "drop")
        with pytest.raises(RetriesExhaustedError) as info:
            client.page(7)
    err = info.value
    assert err.source == "smartacc" and err.context["page"] == 7
    assert err.request_id and err.request_id.startswith("sa-") and len(err.request_id) == 35
    assert isinstance(err.__cause__, TransientApiError)
    assert err.request_id in str(err)


def test_rate_limited_to_the_end_keeps_the_429_as_cause(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(retry_after_seconds=0)
    with skybiz_client(server, max_retries=1) as client:
        server.skybiz.switches.inject("429", "429")
        with pytest.raises(RetriesExhaustedError) as info:
            client.read_window(WINDOW)
    assert isinstance(info.value.__cause__, RateLimitedError)
    assert info.value.__cause__.retry_after == 0.0


def test_retry_can_be_disabled_per_call(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory()
    with skybiz_client(server, max_retries=5) as client:
        server.skybiz.switches.inject("500", "500")
        with pytest.raises(TransientApiError) as info:
            client.call({"action": "read", "date_from": "2024-05-01", "date_to": "2024-05-31"}, retry=False)
    assert not isinstance(info.value, RetriesExhaustedError)
    assert list(server.skybiz.switches.fail_next) == ["500"]  # one attempt, one fault used


def test_4xx_is_never_retried(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory()
    ep = server.endpoints
    settings = SkyBizSettings(
        url=ep.skybiz_url,
        api_key=Secret(ep.skybiz_api_key),
        api_secret=Secret("wrong-secret"),
        http=fast_http(),
    )
    with SkyBizClient(settings) as client, pytest.raises(AuthenticationError):
        client.read_window(WINDOW)
    assert [r.status for r in server.skybiz.received] == [401]


def test_a_refused_connection_is_transient_and_marked_unsent() -> None:
    # A port nobody listens on: the connection is refused before a byte leaves.
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with HttpClient("skybiz", fast_http(max_retries=0)) as http, pytest.raises(TransientApiError) as info:
        http.request(
            "GET",
            f"http://127.0.0.1:{port}/",
            ctx=CallContext("skybiz", "probe"),
            interpret=lambda r: r,
            retry=False,
        )
    assert info.value.context.get("sent") is False


# -- one client, many threads ---------------------------------------------------------------------------


def test_one_client_serves_many_threads(sandbox: SandboxServer) -> None:
    with smartacc_client(sandbox, max_concurrency=4) as client:
        results: dict[int, list[str]] = {}
        errors: list[BaseException] = []

        def read(n: int) -> None:
            try:
                results[n] = [row["AcCustomerID"] or "" for row in client.page(n).rows]
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=read, args=(n,)) for n in range(1, 33)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    ids = [i for n in range(1, 33) for i in results[n]]
    assert len(ids) == 32 * 20 and ids == sorted(ids) and len(set(ids)) == len(ids)


# -- proxies from the environment -------------------------------------------------------------------------


class _ForwardingProxy:
    """A plain HTTP forward proxy on 127.0.0.1 that records the absolute URLs it is asked for."""

    def __init__(self) -> None:
        import http.server
        import urllib.request

        self.asked: list[str] = []
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        asked = self.asked

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                asked.append(self.path)  # a proxy is sent the whole URL
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                with direct.open(urllib.request.Request(self.path, headers=headers), timeout=5) as answer:
                    body = answer.read()
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def forwarding_proxy() -> Iterator[_ForwardingProxy]:
    proxy = _ForwardingProxy()
    yield proxy
    proxy.close()


def test_requests_go_through_the_proxy_the_environment_names(
    sandbox: SandboxServer, forwarding_proxy: _ForwardingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", forwarding_proxy.url)
    monkeypatch.setenv("HTTP_PROXY", forwarding_proxy.url)
    with smartacc_client(sandbox) as client:
        page = client.page(2)
    assert len(page.rows) == 20
    assert [url.partition("?")[0] for url in forwarding_proxy.asked] == [
        f"{sandbox.endpoints.smartacc_url}/Customers/page/2"
    ]

    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with smartacc_client(sandbox) as client:
        assert client.page(2).rows == page.rows
    assert len(forwarding_proxy.asked) == 1  # a host NO_PROXY names is reached directly
