"""Raw lake windows straight from sandbox data, without HTTP — for normalization tests and benchmarks.

The emulators hold typed columns (:mod:`skysmart_sandbox.data`); the raw lake holds the *text* the APIs
send. This module renders one into the other the way the emulators do on the wire, column-wide:
SkyBiz numbers as JSON literals and ``DateTimeModified`` as ``YYYY-MM-DD HH:MM:SS`` Malaysia wall time
(shared/api/SKYBIZ.md §4, §8); SmartAcc dates as ``/Date(<UTC ms>-0000)/`` computed from Malaysia wall
time, ``DateTime.MinValue`` for unset non-nullable dates, the nullable ``EInvoiceTINValidateDateTime``
omitted, decimals in their shortest form (shared/api/SMARTACC.md §6, §8). The JSON decoder has already
turned ServiceStack's escaped slashes into plain ``/``, as it does for the extract step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contracts import arrow_schema, load_contract
from pipelines.lake import CUSTOMERS, RAW, Lake, Manifest
from pipelines.sources.smartacc.normalize import TERMS_ENTITY
from pipelines.windows import MYT, Window

if TYPE_CHECKING:
    from skysmart_sandbox.data import SandboxData

_MIN_VALUE_MS: Final = -62_135_596_800_000
_MYT_MS: Final = 8 * 3_600_000
_NULLABLE_DATES: Final = ("EInvoiceTINValidateDateTime",)
_LINEAGE: Final = ("_extracted_at", "_request_id", "_page", "_window", "_unknown_fields")
SMARTACC_PAGE: Final = 20
DEFAULT_EXTRACTED_AT: Final = datetime(2026, 11, 1, tzinfo=UTC)


def _text(column: pa.ChunkedArray | pa.Array, name: str, source: str) -> pa.Array:
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return pc.cast(arr, pa.string())
    if pa.types.is_timestamp(arr.type):
        if source == "skybiz":
            return pc.strftime(pc.cast(arr, pa.timestamp("s")), format="%Y-%m-%d %H:%M:%S")
        wall_ms = pc.cast(pc.cast(arr, pa.timestamp("ms")), pa.int64())
        utc_ms = pc.subtract(wall_ms, _MYT_MS)
        if name not in _NULLABLE_DATES:
            utc_ms = pc.fill_null(utc_ms, _MIN_VALUE_MS)
        return pc.binary_join_element_wise("/Date(", pc.cast(utc_ms, pa.string()), "-0000)/", "")
    # Numbers: the shortest text that reads back to the same value, "5000" for whole amounts.
    return pc.cast(arr, pa.string())


def render(
    source: str, table: pa.Table, window: Window, *, extracted_at: datetime = DEFAULT_EXTRACTED_AT
) -> pa.Table:
    """Sandbox records of ``source`` as a raw window table (schema of the source's raw contract)."""
    schema = arrow_schema(load_contract(f"{source}_customer_raw"))
    n = table.num_rows
    columns: dict[str, pa.Array] = {}
    for f in schema:
        if f.name in _LINEAGE:
            continue
        columns[f.name] = (
            _text(table.column(f.name), f.name, source)
            if f.name in table.column_names
            else pa.nulls(n, pa.string())
        )
    page = (
        pa.repeat(pa.scalar(1, pa.int32()), n)
        if source == "skybiz"
        else pa.array([i // SMARTACC_PAGE + 1 for i in range(n)], pa.int32())
    )
    columns["_extracted_at"] = pa.repeat(pa.scalar(extracted_at, pa.timestamp("us", tz="UTC")), n)
    columns["_request_id"] = pa.repeat(pa.scalar(f"sandbox-{source}-{window.key}", pa.string()), n)
    columns["_page"] = page
    columns["_window"] = pa.repeat(pa.scalar(window.key, pa.string()), n)
    columns["_unknown_fields"] = pa.nulls(n, pa.string())
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def render_terms(
    terms: pa.Table, window: Window, *, extracted_at: datetime = DEFAULT_EXTRACTED_AT
) -> pa.Table:
    """The Terms lookup as the raw ``entity=terms`` snapshot beside a SmartAcc window."""
    schema = arrow_schema(load_contract("smartacc_terms_raw"))
    n = terms.num_rows
    columns = {name: _text(terms.column(name), name, "smartacc") for name in terms.column_names}
    columns["_extracted_at"] = pa.repeat(pa.scalar(extracted_at, pa.timestamp("us", tz="UTC")), n)
    columns["_request_id"] = pa.repeat(pa.scalar("terms", pa.string()), n)
    columns["_page"] = pa.repeat(pa.scalar(1, pa.int32()), n)
    columns["_window"] = pa.repeat(pa.scalar(window.key, pa.string()), n)
    columns["_unknown_fields"] = pa.nulls(n, pa.string())
    arrays = [columns.get(f.name, pa.nulls(n, f.type)) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def in_window(source: str, table: pa.Table, window: Window) -> pa.Table:
    """The records whose modification time (Malaysia wall time) falls on a date of the window."""
    column = "DateTimeModified" if source == "skybiz" else "EditDate"
    start = datetime.combine(window.start, datetime.min.time())
    end = datetime.combine(window.end, datetime.max.time())
    moment = pc.cast(table.column(column), pa.timestamp("ms"))
    keep = pc.and_(
        pc.greater_equal(moment, pa.scalar(start, pa.timestamp("ms"))),
        pc.less_equal(moment, pa.scalar(end, pa.timestamp("ms"))),
    )
    return table.filter(keep)


def write_raw_window(
    lake: Lake,
    data: SandboxData,
    window: Window,
    *,
    everything: bool = False,
    extracted_at: datetime | None = None,
) -> Manifest:
    """Commit one raw window of sandbox data (and SmartAcc's Terms snapshot) into the lake.

    Args:
        lake: the lake to write.
        data: generated sandbox data.
        window: which source and dates; only records modified in it are written, unless ``everything``.
        everything: write all of the source's records into this one window (benchmarks).
        extracted_at: lineage timestamp (default: a fixed instant, so runs are reproducible).
    """
    source = window.source
    table = data.skybiz if source == "skybiz" else data.smartacc
    if not everything:
        table = in_window(source, table, window)
    when = (extracted_at or DEFAULT_EXTRACTED_AT).astimezone(MYT).astimezone(UTC)
    raw = render(source, table, window, extracted_at=when)
    if source == "smartacc":
        terms = render_terms(data.terms, window, extracted_at=when)
        lake.write_table(RAW, source, TERMS_ENTITY, window, terms)
    return lake.write_table(RAW, source, CUSTOMERS, window, raw)
