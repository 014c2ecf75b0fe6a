"""Stream one window of vendor customers into the raw lake, page by page.

Each page a client yields becomes an Arrow record batch with the raw contract's schema and is appended to
the window's temporary Parquet file. Pages wait in memory only until ``batch_rows`` rows are buffered, so
the write side stays flat however large the window is and Parquet row groups keep a sensible size although
SmartAcc pages hold 20 rows. The window becomes visible only when
:meth:`pipelines.lake.WindowWriter.commit` swaps its manifest, at the very end: an exception or a kill
part-way leaves the previous version of the window exactly as it was.

Values are stored as the exact text the vendor sent (the clients parse JSON numbers as text); keys the
contract does not know are kept in ``_unknown_fields`` as JSON, so nothing the vendor sent is lost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

import pyarrow as pa

from pipelines.contracts import arrow_schema, contracts_dir, load_contract
from pipelines.errors import ContractError
from pipelines.lake import CUSTOMERS, RAW, Lake, WindowWriter
from pipelines.sources import Lookup, Page, WindowSource, client_facts, registry
from pipelines.windows import Window, plan_windows

LINEAGE: Final = ("_extracted_at", "_request_id", "_page", "_window", "_unknown_fields")
# Rows buffered before a Parquet row group is written: big enough for efficient row groups and compression,
# small enough (tens of MB at most) that a million-row window does not grow memory.
DEFAULT_BATCH_ROWS: Final = 50_000
# Rows converted to Arrow at a time: amortizes pyarrow's per-column cost over many 20-row SmartAcc pages.
CONVERT_ROWS: Final = 4_096
_WHO: Final = frozenset({"client", "source_host"})


@dataclass(frozen=True, slots=True)
class ExtractResult:
    """What one extracted window produced; small and secret-free, so it can travel through XCom.

    Attributes:
        source: the source's registered name.
        window: the window key, ``YYYY-MM-DD_YYYY-MM-DD``.
        rows: customer rows committed.
        pages: pages read from the vendor.
        data_url: the committed Parquet file, openable by DuckDB or pyarrow.
        sha256: checksum of that file, as in the manifest.
        seconds: wall time of the extraction.
    """

    source: str
    window: str
    rows: int
    pages: int
    data_url: str
    sha256: str
    seconds: float


@dataclass(frozen=True, slots=True)
class ExtractProgress:
    """A progress event: sent after every page and once more when the window is committed.

    Attributes:
        source: the source being extracted.
        window: the window key.
        pages: pages read so far in this window.
        rows: rows read so far in this window.
        page_rows: rows of the page just read (0 on the final event).
        done: whether the window has just been committed.
    """

    source: str
    window: str
    pages: int
    rows: int
    page_rows: int
    done: bool = False


ProgressCallback = Callable[[ExtractProgress], None]


def as_window_source(client: object) -> WindowSource:
    """Adapt a vendor client to :class:`WindowSource` through its source's ``SourceSpec.window_adapter``.

    The client's source is found in the registry by its class (``SourceSpec.client``, subclasses too); an
    object that is already a :class:`WindowSource` (a test double, an adapted client) passes as it is.
    """
    for spec in registry.specs():
        if isinstance(client, spec.load("client")):
            adapted: WindowSource = spec.load("window_adapter")(client)
            return adapted
    if isinstance(client, WindowSource):
        return client
    known = ", ".join(registry.names())
    raise TypeError(f"cannot extract from {type(client).__name__}: not the client of a source ({known})")


def extract_window(
    client: object,
    window: Window,
    lake: Lake,
    *,
    progress: ProgressCallback | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> ExtractResult:
    """Replace ``raw/source=<s>/entity=customers/window=<key>/`` with what the vendor holds now.

    Args:
        client: a registered source's client or any :class:`WindowSource`.
        window: the window to read; its source must match the client's.
        lake: where to write.
        progress: called after every page and once when the window is committed.
        batch_rows: rows buffered per Parquet row group (memory bound of the write side).

    Returns:
        The committed window's counts, URL and checksum.

    Raises:
        ContractError: the window's source is not the client's, or a value is not text.
        pipelines.errors.ApiError: whatever the client raised; nothing was committed then.
    """
    started = time.perf_counter()
    src = as_window_source(client)
    if src.source != window.source:
        raise ContractError(
            f"a {src.source} client cannot extract a {window.source} window",
            source=src.source,
            window=window.key,
        )
    for lookup in src.lookups(window):
        # Lookups first: if customers then fail, a fresh Terms snapshot alone is harmless; the reverse would
        # leave a customers window the normalizer cannot map.
        schema = arrow_schema(load_contract(lookup.contract, contracts_dir(src.source)))
        with lake.writer(RAW, src.source, lookup.entity, window, schema) as writer:
            writer.write(page_to_batch(lookup.page, window, schema, _now()))
            who = {k: v for k, v in src.manifest_extra().items() if k in _WHO}
            writer.commit(pages=1, request_ids=[lookup.page.request_id], **who)

    schema = raw_schema(src.source)
    pages = 0
    request_ids: list[str] = []
    with lake.writer(RAW, src.source, CUSTOMERS, window, schema) as writer:
        buffer = _Buffer(writer, window, batch_rows)
        for page in src.iter_pages(window):
            buffer.add(page, _now())
            pages += 1
            request_ids.append(page.request_id)
            if progress is not None:
                progress(ExtractProgress(src.source, window.key, pages, buffer.total, len(page.rows)))
        buffer.flush()
        manifest = writer.commit(pages=pages, request_ids=request_ids, **src.manifest_extra())
        data_url = lake.full_url(f"{writer.directory}/{manifest.file}")
    if progress is not None:
        progress(ExtractProgress(src.source, window.key, pages, manifest.rows, 0, done=True))
    return ExtractResult(
        source=src.source,
        window=window.key,
        rows=manifest.rows,
        pages=pages,
        data_url=data_url,
        sha256=manifest.sha256,
        seconds=round(time.perf_counter() - started, 3),
    )


def extract_range(
    client: object,
    start: date,
    end: date,
    lake: Lake,
    *,
    progress: ProgressCallback | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> list[ExtractResult]:
    """Extract every window :func:`pipelines.windows.plan_windows` cuts ``start``..``end`` into, oldest first.

    Windows are committed one by one, so a failure part-way keeps the windows already done; rerunning the
    range replaces them all.
    """
    src = as_window_source(client)
    return [
        extract_window(src, window, lake, progress=progress, batch_rows=batch_rows)
        for window in plan_windows(src.source, start, end)
    ]


def raw_schema(source: str) -> pa.Schema:
    """The Arrow schema of a source's raw customers, generated from its ``SourceSpec.raw_contract``."""
    spec = registry.find(source)
    if spec is None:
        raise ContractError(f"no raw contract for source {source!r}", source=source)
    return arrow_schema(load_contract(spec.raw_contract, contracts_dir(source)))


def page_to_batch(page: Page, window: Window, schema: pa.Schema, extracted_at: datetime) -> pa.RecordBatch:
    """One page as a record batch of ``schema``: vendor text as-is, unknown keys as JSON, lineage set.

    Raises:
        ContractError: a vendor value is not text (the client must hand over the exact text it received).
    """
    return _rows_to_batch(page.rows, [_Span(page, extracted_at)], window, schema)


@dataclass(frozen=True, slots=True)
class _Span:
    """The lineage of a run of consecutive rows: the page they came in and when it was received."""

    page: Page
    extracted_at: datetime

    @property
    def rows(self) -> int:
        return len(self.page.rows)


def _rows_to_batch(
    rows: Sequence[Mapping[str, Any]], spans: Sequence[_Span], window: Window, schema: pa.Schema
) -> pa.RecordBatch:
    """Rows of several pages as one batch: Arrow's per-column cost is paid once per batch, not per page.

    The rows convert as one struct array, in Arrow's C++ (a Python loop per column and row cost eight times
    as much); a value that is not text fails that conversion, and the columns are then converted one by one
    to name the first such value.
    """
    vendor = [name for name in schema.names if name not in LINEAGE]
    struct = pa.struct([pa.field(name, pa.string()) for name in vendor])
    try:
        dicts = [row if isinstance(row, dict) else dict(row) for row in rows]
        arrays: list[pa.Array] = pa.array(dicts, type=struct).flatten()
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        error = _non_text_error(rows, spans, window, vendor)
        if error is None:
            raise
        raise error from None
    n = len(rows)
    lineage: dict[str, pa.Array] = {
        "_extracted_at": pa.array(
            [s.extracted_at for s in spans for _ in range(s.rows)], type=pa.timestamp("us", tz="UTC")
        ),
        "_request_id": pa.array([s.page.request_id for s in spans for _ in range(s.rows)], type=pa.string()),
        "_page": pa.array([s.page.page for s in spans for _ in range(s.rows)], type=pa.int32()),
        "_window": pa.repeat(pa.scalar(window.key, type=pa.string()), n),
        "_unknown_fields": pa.array(_unknown_fields(rows, frozenset(vendor)), type=pa.string()),
    }
    arrays.extend(lineage[name] for name in schema.names if name in LINEAGE)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _non_text_error(
    rows: Sequence[Mapping[str, Any]], spans: Sequence[_Span], window: Window, vendor: Sequence[str]
) -> ContractError | None:
    """The :class:`ContractError` naming the first vendor value that is not text, column by column."""
    for name in vendor:
        values = [row.get(name) for row in rows]
        position = next((i for i, v in enumerate(values) if v is not None and not isinstance(v, str)), None)
        if position is not None:
            kind = type(values[position]).__name__
            return ContractError(
                f"value of type {kind} where the raw contract keeps the vendor's text",
                source=window.source,
                window=window.key,
                field=name,
                request_id=_span_at(spans, position).page.request_id,
            )
    return None


def _span_at(spans: Sequence[_Span], position: int) -> _Span:
    for span in spans:
        if position < span.rows:
            return span
        position -= span.rows
    raise IndexError(position)


def _unknown_fields(rows: Sequence[Mapping[str, Any]], known: frozenset[str]) -> list[str | None]:
    # One C-level pass finds whether any row carries an unknown key; the per-row work runs only if one does.
    if not rows or set().union(*rows) <= known:
        return [None] * len(rows)
    out: list[str | None] = []
    for row in rows:
        extra = {key: row[key] for key in row if key not in known}
        out.append(json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else None)
    return out


class _Buffer:
    """Turns pages into Arrow and Arrow into Parquet row groups, each in economical amounts.

    Rows of small pages wait (as the dicts the client already holds) until ``convert_rows`` of them can be
    converted in one go; converted batches wait until ``limit`` rows make a row group. Memory held here is
    therefore bounded by ``convert_rows`` dict rows plus ``limit`` Arrow rows, whatever the window's size.
    """

    def __init__(self, writer: WindowWriter, window: Window, limit: int) -> None:
        self.writer = writer
        self.window = window
        self.limit = max(1, limit)
        self.convert_rows = min(CONVERT_ROWS, self.limit)
        self.rows: list[Mapping[str, Any]] = []
        self.spans: list[_Span] = []
        self.batches: list[pa.RecordBatch] = []
        self.batch_rows = 0
        self.total = 0

    def add(self, page: Page, extracted_at: datetime) -> None:
        for start in range(0, len(page.rows), CONVERT_ROWS):  # a huge page (SkyBiz) in slices
            part = page if len(page.rows) <= CONVERT_ROWS else _slice(page, start)
            self.rows.extend(part.rows)
            self.spans.append(_Span(part, extracted_at))
            self.total += len(part.rows)
            if len(self.rows) >= self.convert_rows:
                self._convert()

    def flush(self) -> None:
        """Convert and write whatever is waiting (at the end of the window)."""
        self._convert()
        self._write()

    def _convert(self) -> None:
        if self.rows:
            batch = _rows_to_batch(self.rows, self.spans, self.window, self.writer.schema)
            self.batches.append(batch)
            self.batch_rows += batch.num_rows
        self.rows, self.spans = [], []
        if self.batch_rows >= self.limit:
            self._write()

    def _write(self) -> None:
        if self.batches:
            self.writer.write(pa.Table.from_batches(self.batches, schema=self.writer.schema))
        self.batches, self.batch_rows = [], 0


def _slice(page: Page, start: int) -> Page:
    return Page(rows=page.rows[start : start + CONVERT_ROWS], request_id=page.request_id, page=page.page)


def _now() -> datetime:
    return datetime.now(UTC)


__all__ = [
    "DEFAULT_BATCH_ROWS",
    "LINEAGE",
    "ExtractProgress",
    "ExtractResult",
    "Lookup",
    "ProgressCallback",
    "WindowSource",
    "as_window_source",
    "client_facts",
    "extract_range",
    "extract_window",
    "page_to_batch",
    "raw_schema",
]
