"""Vendor API clients (one module per source) and the page shape they share.

A client hands out :class:`Page` objects whose rows hold the vendor's *text*: every JSON number arrives
as the exact characters sent (parsed with ``parse_float=str, parse_int=str``), so the raw lake stores
what the vendor said and normalization decides what it means.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.http import JsonNumber

Row = dict[str, str | None]


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
