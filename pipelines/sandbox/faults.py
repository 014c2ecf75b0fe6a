"""ASGI middleware that makes an emulator misbehave the way real services do, on command.

It reads the emulator's :class:`~pipelines.sandbox.switches.Switches` on every request: added latency, then
at most one fault drawn by :meth:`Switches.draw_fault`. Error bodies come from the emulator's own
``render_error`` callback, so a SkyBiz 500 looks like a SkyBiz error envelope and a SmartAcc 429 carries a
ServiceStack ``ResponseStatus``; only ``non_json`` answers with the HTML page a proxy in front would send.

Faults a client can observe:

- ``500`` — HTTP 500 with the API's error body.
- ``429`` — HTTP 429 with the API's error body and ``Retry-After: <switches.retry_after_seconds>``.
- ``drop`` — the connection is closed before any byte of an answer (the request is not processed).
- ``truncate`` — the real answer's headers with its full ``Content-Length``, half the body, then close.
- ``non_json`` — HTTP 502 with an nginx HTML page.
- ``slow`` — the real answer, after ``switches.slow_seconds``.
- ``drop_after_commit`` — the request is processed (a create commits), then the connection is closed
  without an answer: the lost response an exactly-once push must survive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipelines.sandbox.switches import Switches

ErrorRenderer = Callable[[int, str], tuple[bytes, str]]
"""``render_error(status, message) -> (body, content_type)`` in the emulated API's own error shape."""

DEFAULT_MESSAGES: Final = {500: "Internal Server Error", 429: "Too Many Requests"}
BAD_GATEWAY_HTML: Final = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


class FaultMiddleware:
    """Apply latency and injected faults in front of an emulator app.

    Args:
        app: the emulator's ASGI app.
        switches: the live switches; read on every request, so tests can flip them while serving.
        render_error: builds an error body in the API's own shape.
        messages: the error message each injected status carries in that API (default: the HTTP reason
            phrase, ``Internal Server Error`` / ``Too Many Requests``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        switches: Switches,
        render_error: ErrorRenderer,
        messages: Mapping[int, str] | None = None,
    ) -> None:
        self.app = app
        self.switches = switches
        self.render_error = render_error
        self.messages = {**DEFAULT_MESSAGES, **(messages or {})}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request, misbehaving as the switches say."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        switches = self.switches
        if switches.latency_ms > 0:
            await asyncio.sleep(switches.latency_ms / 1000.0)
        fault = switches.draw_fault()
        if fault is None:
            await self.app(scope, receive, send)
        elif fault in ("500", "429"):
            status = int(fault)
            body, content_type = self.render_error(status, self.messages[status])
            extra = [(b"retry-after", str(switches.retry_after_seconds).encode())] if status == 429 else []
            await _drain(receive)
            await _respond(send, status, body, content_type, extra)
        elif fault == "non_json":
            await _drain(receive)
            await _respond(send, 502, BAD_GATEWAY_HTML, "text/html")
        elif fault == "slow":
            await asyncio.sleep(switches.slow_seconds)
            await self.app(scope, receive, send)
        elif fault == "drop":
            await _drain(receive)
            await _close(receive)
        elif fault == "truncate":
            start, body = await _capture(self.app, scope, receive)
            await send(start)
            await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            await _close(receive)
        elif fault == "drop_after_commit":
            await _capture(self.app, scope, receive)
            await _close(receive)
        else:  # pragma: no cover - Switches validates fault names
            await self.app(scope, receive, send)


async def _respond(
    send: Send, status: int, body: bytes, content_type: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _drain(receive: Receive) -> None:
    """Read the request body, so the connection is in a clean state before we answer or close."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _capture(app: ASGIApp, scope: Scope, receive: Receive) -> tuple[Message, bytes]:
    """Run the app to completion and keep its answer instead of sending it."""
    start: Message = {}
    chunks: list[bytes] = []

    async def keep(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, keep)
    return start, b"".join(chunks)


async def _close(receive: Receive) -> None:
    """Close the client connection with whatever has been sent so far, and stop uvicorn answering for us.

    ASGI has no "abort" message. Uvicorn's ``receive`` is a bound method of its request cycle, which holds the
    transport; closing it and marking the cycle disconnected is how a server that crashed mid-answer looks.
    """
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:  # not uvicorn: the best we can do is fail the request
        raise ConnectionAbortedError("sandbox fault: connection dropped")
    with contextlib.suppress(Exception):
        transport.close()
    cycle.disconnected = True  # type: ignore[union-attr]
    # Let the event loop run connection_lost before uvicorn looks at the cycle again.
    await asyncio.sleep(0)
