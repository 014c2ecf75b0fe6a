"""ServiceStack JSON dates (shared/api/SMARTACC.md §6), for the client and the normalizer alike.

Kept apart from the HTTP client so normalizing SmartAcc never imports requests, tenacity or the rate
limiter: the codec is pure text and Arrow compute.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

MIN_VALUE_MS: Final = -62_135_596_800_000  # .NET DateTime.MinValue: "not set" (SMARTACC.md §6)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_DATE_PATTERN: Final = r"^\\?/Date\((?P<ms>-?\d+)(?P<offset>[+-]\d{4})?\)\\?/$"
_DATE_RE: Final = re.compile(_DATE_PATTERN, re.ASCII)  # ASCII digits only, as RE2 reads them
_MAX_MS_CHARS: Final = 18  # "-" and 17 digits: beyond .NET's DateTime range, and always inside int64


def parse_servicestack_date(text: str | None) -> datetime | None:
    r"""Read a ServiceStack JSON date as an aware UTC datetime; ``None`` for null, empty and "not set".

    All three forms carry the UTC instant in ``ms`` (SMARTACC.md §6): ``/Date(ms-0000)/`` is a DateTime
    of unspecified kind whose server-local (Malaysia) wall time was converted to UTC, ``/Date(ms)/`` is a
    UTC DateTime, and ``/Date(ms+0800)/`` a local one whose offset is informational. The escaped JSON
    spelling ``\/Date(...)\/`` is accepted too. ``DateTime.MinValue`` (``-62135596800000``) is the server's
    "not set" and becomes ``None``.

    Raises:
        ValueError: the text is not a ServiceStack date.
    """
    if text is None:
        return None
    stripped = text.strip()
    if not stripped:
        return None
    match = _DATE_RE.match(stripped)
    if match is None:
        raise ValueError(f"not a ServiceStack JSON date: {text!r}")
    ms = int(match["ms"])
    if ms == MIN_VALUE_MS:
        return None
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        raise ValueError(f"ServiceStack date out of range: {text!r}") from None


def parse_servicestack_dates(values: Any, *, strict: bool = False) -> pa.TimestampArray:
    """Vectorized :func:`parse_servicestack_date` over a pyarrow/pandas string array, for the normalizer.

    Pure Arrow compute (one RE2 pass, integer arithmetic), so a million values take a fraction of a second.

    Args:
        values: a ``pa.Array``/``pa.ChunkedArray`` of strings, a pandas Series of strings, or a sequence.
        strict: raise on the first text that is not a ServiceStack date instead of giving null for it.

    Returns:
        ``timestamp[ms, tz=UTC]`` values; null where the input is null, empty, "not set" or (when not
        strict) unreadable.

    Raises:
        ValueError: ``strict`` and a value is not a ServiceStack date.
    """
    arr = _string_array(values)
    trimmed = pc.utf8_trim_whitespace(arr)
    parts = pc.extract_regex(trimmed, _DATE_PATTERN)
    ms_text = pc.struct_field(parts, "ms")
    if strict:
        bad = pc.and_(pc.is_null(parts), pc.not_equal(pc.fill_null(trimmed, ""), ""))
        if pc.any(bad).as_py():
            first = pc.filter(arr, bad)[0].as_py()
            raise ValueError(f"not a ServiceStack JSON date: {first!r}")
    # Rows that did not match give a null struct whose child is "" — null them before the cast, and so
    # are more digits than int64 milliseconds can hold (the cast would raise for the whole column).
    too_long = pc.fill_null(pc.greater(pc.utf8_length(ms_text), _MAX_MS_CHARS), False)
    unusable = pc.or_(pc.is_null(parts), too_long)
    if strict and pc.any(too_long).as_py():
        raise ValueError(f"ServiceStack date out of range: {pc.filter(arr, too_long)[0].as_py()!r}")
    ms_text = pc.if_else(unusable, pa.scalar(None, pa.string()), ms_text)
    ms = pc.cast(ms_text, pa.int64())
    ms = pc.if_else(pc.equal(ms, MIN_VALUE_MS), pa.scalar(None, pa.int64()), ms)
    return pc.cast(ms, pa.timestamp("ms", tz="UTC"))


def _string_array(values: Any) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array(values, type=pa.string()) if isinstance(values, list | tuple) else pa.array(values)
    if pa.types.is_large_string(values.type) or pa.types.is_string_view(values.type):
        values = values.cast(pa.string())
    if not pa.types.is_string(values.type):
        if pa.types.is_null(values.type):
            return pa.nulls(len(values), pa.string())
        raise TypeError(f"expected strings, got {values.type}")
    return values


__all__ = ["MIN_VALUE_MS", "parse_servicestack_date", "parse_servicestack_dates"]
