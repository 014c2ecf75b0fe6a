"""ASGI middleware that makes an emulator misbehave the way real services do, on command.

It reads the emulator's :class:`~skysmart_sandbox.switches.Switches` on every request: added latency, then
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

Records can be corrupted on the wire too (``Switches.corrupt_rate``): the emulators pass the customer
records they serve through :func:`corrupt_record`, which damages a seeded share of them the ways vendors
do — wrong JSON types, missing keys, nulls, 100 kB strings, control characters with emoji and bidi
overrides, malformed dates — and records which record got which damage in ``Switches.corrupted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skysmart_sandbox.switches import Switches

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


# -- records corrupted on the wire ------------------------------------------------------------------------

LONG_TEXT_CHARS: Final = 100_000
# Control characters, an emoji and bidirectional overrides/isolates around a value: the emoji must survive
# cleaning, everything else must not.
HOSTILE_PREFIX: Final = "\x01\x07\x1b\u202e"
HOSTILE_SUFFIX: Final = "\u202c \U0001f600 \u2066\x7f\u2069"
_DELETE: Final = object()


@dataclass(frozen=True, slots=True)
class RecordShape:
    """Which field of an emulated API's customer record plays which part, for corrupting records.

    Attributes:
        id: the record id (which records are hit is decided from it).
        name, modified, currency: the fields the pipeline's quarantine rules read.
        phone, email, text, date, amount: fields whose damage the normalizer reports as a data issue.
    """

    id: str
    name: str
    modified: str
    currency: str
    phone: str
    email: str
    text: str
    date: str
    amount: str


SKYBIZ_SHAPE: Final = RecordShape(
    id="CusCode",
    name="CusName",
    modified="DateTimeModified",
    currency="CurCode",
    phone="Tel",
    email="Email",
    text="Address",
    date="DateStart",
    amount="CreditLimit",
)
SMARTACC_SHAPE: Final = RecordShape(
    id="AcCustomerID",
    name="AcCustomerName",
    modified="EditDate",
    currency="AcCurrencyID",
    phone="BillingTel1",
    email="BillingEmail",
    text="BillingAddress1",
    date="CreateDate",
    amount="LocalCreditLimit",
)


def _hostile(value: Any) -> str:
    return f"{HOSTILE_PREFIX}{value if isinstance(value, str) else ''}{HOSTILE_SUFFIX}"


# kind → (role, replacement); a callable replacement receives the value it replaces.
_VARIANTS: Final[dict[str, tuple[tuple[str, Any], ...]]] = {
    "wrong_type": (
        ("modified", 1_700_000_000),
        ("currency", ["MYR"]),
        ("phone", True),
        ("email", 12_345),
        ("amount", {"value": "1.00"}),
        ("date", 20_240_101),
    ),
    "missing_key": (("id", _DELETE), ("name", _DELETE), ("currency", _DELETE), ("modified", _DELETE)),
    "null": (("id", None), ("name", None), ("currency", None), ("modified", None)),
    "long_string": (
        ("name", "N" * LONG_TEXT_CHARS),
        ("email", "a" * LONG_TEXT_CHARS),
        ("phone", "x" * LONG_TEXT_CHARS),
    ),
    "control_chars": (("name", _hostile), ("text", _hostile)),
    "bad_date": (
        ("modified", "/Date(abc)/"),
        ("date", "/Date(abc)/"),
        ("modified", "2024-13-45 25:61:00"),
        ("date", "31/02/2024"),
        ("modified", "/Date(99999999999999999999)/"),
    ),
}


def corruption_for(switches: Switches, record_id: str) -> tuple[str, int] | None:
    """Whether (and how) the record ``record_id`` is served corrupted: ``(kind, variant)`` or ``None``.

    A pure function of the switches' seed, rate and kinds and the id, so repeated reads agree.
    """
    rate = switches.corrupt_rate
    if rate <= 0:
        return None
    digest = hashlib.sha256(f"{switches.seed}:{record_id}".encode()).digest()
    if int.from_bytes(digest[:8], "big") / 2**64 >= rate:
        return None
    kinds = switches.corrupt_kinds
    return kinds[digest[8] % len(kinds)], int.from_bytes(digest[9:11], "big")


def corrupt_record(
    record: Mapping[str, Any], shape: RecordShape, switches: Switches
) -> dict[str, Any] | None:
    """The record as it goes out corrupted, or ``None`` when it is not hit (see :func:`corruption_for`).

    The hit is recorded in ``switches.corrupted`` (id → ``(kind, field)``), the truth tests check against.
    A variant whose field the record lacks (a projection) gives way to the next one of the same kind.
    """
    record_id = record.get(shape.id)
    if record_id is None:
        return None
    drawn = corruption_for(switches, str(record_id))
    if drawn is None:
        return None
    kind, variant = drawn
    options = _VARIANTS[kind]
    for step in range(len(options)):
        role, replacement = options[(variant + step) % len(options)]
        name = getattr(shape, role)
        if name not in record:
            continue
        out = dict(record)
        if replacement is _DELETE:
            del out[name]
        else:
            out[name] = replacement(record[name]) if callable(replacement) else replacement
        switches.record_corruption(str(record_id), kind, name)
        return out
    return None


def corrupt_json_records(
    rendered: list[str], ids: list[str], shape: RecordShape, switches: Switches
) -> list[str]:
    """:func:`corrupt_record` over records already rendered as JSON text (only hit ones are re-rendered)."""
    if switches.corrupt_rate <= 0:
        return rendered
    out = list(rendered)
    for i, record_id in enumerate(ids):
        if corruption_for(switches, record_id) is None:
            continue
        corrupted = corrupt_record(json.loads(rendered[i]), shape, switches)
        if corrupted is not None:
            out[i] = json.dumps(corrupted, ensure_ascii=False, separators=(",", ":"))
    return out
