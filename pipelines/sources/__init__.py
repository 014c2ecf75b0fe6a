"""Sources: one package per vendor (``pipelines/sources/<vendor>/``) and what they all share.

A source is described by one :class:`pipelines.sources.spec.SourceSpec` (its package's ``SPEC``) and found
through :mod:`pipelines.sources.registry`; docs/ADDING_A_SOURCE.md says how to write one. This module holds
the shapes every source speaks — :class:`Page`, :class:`Lookup`, :class:`WindowSource` — and stays light: no
HTTP, no Arrow, so the registry (imported by DAG files) is cheap.

A client hands out :class:`Page` objects whose rows hold the vendor's *text*: every JSON number arrives
as the exact characters sent (parsed with ``parse_float=str, parse_int=str``), so the raw lake stores
what the vendor said and normalization decides what it means.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from pipelines.windows import Window

Row = dict[str, str | None]


class JsonNumber(str):
    """A JSON number (or NaN/Infinity) as the exact text sent; a ``str`` everywhere it is used.

    Being its own type lets a nested value be written back as the JSON the vendor sent: ``[0]`` stays
    ``[0]``, not ``["0"]`` (see :func:`text_row`).
    """

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Page:
    """One response's worth of rows, with the request id that fetched them (lineage for the raw lake).

    Attributes:
        rows: vendor rows; every value is the vendor's text or ``None`` (JSON ``null``).
        request_id: SkyBiz's own ``request_id``, or the ``X-Request-Id`` we sent to SmartAcc.
        page: the vendor page number the rows came from (SkyBiz windows are one page: ``1``).
    """

    rows: list[Row]
    request_id: str
    page: int


@dataclass(frozen=True, slots=True)
class Lookup:
    """A small lookup table snapshotted beside a customers window (SmartAcc Terms).

    Attributes:
        entity: the lake entity it is written to (``terms``).
        contract: the raw contract of its rows.
        page: the rows as received, with the request id that fetched them.
    """

    entity: str
    contract: str
    page: Page


@runtime_checkable
class WindowSource(Protocol):
    """What extraction needs from a vendor, whatever its paging: the pages of one window, in order.

    Each source's ``SourceSpec.window_adapter`` wraps its client into one; anything else with this shape
    (a test double) can be extracted as it is.
    """

    @property
    def source(self) -> str:
        """The source's registered name."""
        ...

    def iter_pages(self, window: Window) -> Iterator[Page]:
        """Every page of ``window``; rows hold the vendor's exact text."""
        ...

    def lookups(self, window: Window) -> Sequence[Lookup]:
        """Lookup tables to snapshot with the window (read before its customers)."""
        ...

    def manifest_extra(self) -> dict[str, Any]:
        """Secret-free facts for the manifest, asked for after :meth:`iter_pages` is exhausted."""
        ...


def client_facts(client: object, url: str) -> dict[str, Any]:
    """Who read a window and from where, with nothing secret: the client class and the URL's host only.

    The manifest records the skysmart version itself (``client_version``).
    """
    parts = urlsplit(url)
    # hostname/port never include userinfo, so credentials embedded in a URL cannot reach the manifest.
    host = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
    return {
        "client": f"{type(client).__module__}.{type(client).__qualname__}",
        "source_host": host,
    }


def int_or_none(value: Any) -> int | None:
    """A vendor's integer text (or number) as an int; ``None`` when absent or not an integer."""
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


NOT_A_RECORD = "_record"
"""The key under which an item of a record list that is not a JSON object is kept, as its JSON text."""


def record_row(item: Any) -> Row:
    """An item of a vendor's record list as a row; one that is not a JSON object is kept, not refused.

    Refusing it would fail the whole window over one record; kept under :data:`NOT_A_RECORD` (which no
    raw contract knows, so extraction stores it in ``_unknown_fields``), it lands in the raw lake as sent
    and normalization quarantines it (``id_missing``) where it can be seen.
    """
    if isinstance(item, Mapping):
        return text_row(item)
    return {NOT_A_RECORD: _json(item)}


def text_row(record: Mapping[str, Any]) -> Row:
    """A vendor record as text: strings and number texts kept, booleans and nested values as JSON text."""
    return {str(key): _text(value) for key, value in record.items()}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)  # a JsonNumber becomes the plain text it is
    # What is left is true/false or a nested value, which the raw contract stores as the JSON the vendor
    # sent: numbers inside it written back as their literal text, not as strings.
    return _json(value)


def _json(value: Any) -> str:
    if isinstance(value, JsonNumber):
        return str(value)
    if isinstance(value, list):
        return "[" + ",".join(_json(item) for item in value) + "]"
    if isinstance(value, dict):
        members = (f"{json.dumps(str(k), ensure_ascii=False)}:{_json(v)}" for k, v in value.items())
        return "{" + ",".join(members) + "}"
    return json.dumps(value, ensure_ascii=False)
