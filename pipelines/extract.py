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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final, Protocol, runtime_checkable
from urllib.parse import urlsplit

import pyarrow as pa

from pipelines.contracts import arrow_schema, load_contract
from pipelines.errors import ContractError
from pipelines.lake import CUSTOMERS, RAW, Lake, WindowWriter
from pipelines.sources import Page
from pipelines.sources.skybiz import SkyBizClient
from pipelines.sources.smartacc import SmartAccClient
from pipelines.windows import Window, plan_windows

TERMS: Final = "terms"
RAW_CONTRACTS: Final = {"skybiz": "skybiz_customer_raw", "smartacc": "smartacc_customer_raw"}
TERMS_CONTRACT: Final = "smartacc_terms_raw"
LINEAGE: Final = ("_extracted_at", "_request_id", "_page", "_window", "_unknown_fields")
# Rows buffered before a Parquet row group is written: big enough for efficient row groups and zstd, small
# enough (tens of MB at most) that a million-row window does not grow memory.
DEFAULT_BATCH_ROWS: Final = 50_000
_WHO: Final = frozenset({"client", "source_host"})


@dataclass(frozen=True, slots=True)
class ExtractResult:
    """What one extracted window produced; small and secret-free, so it can travel through XCom.

    Attributes:
        source: ``skybiz`` or ``smartacc``.
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

    The two vendor clients are adapted by :class:`SkyBizWindows` and :class:`SmartAccWindows`; anything else
    with this shape (a test double, a future source) can be extracted as it is.
    """

    @property
    def source(self) -> str:
        """``skybiz`` or ``smartacc``."""
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


class SkyBizWindows:
    """SkyBiz answers a whole window in one response (shared/api/SKYBIZ.md §4): one page, no lookups."""

    source = "skybiz"

    def __init__(self, client: SkyBizClient) -> None:
        self.client = client

    def iter_pages(self, window: Window) -> Iterator[Page]:
        """The window's single page."""
        yield self.client.read_window(window)

    def lookups(self, window: Window) -> Sequence[Lookup]:
        """None: SkyBiz rows carry their term in days already."""
        return ()

    def manifest_extra(self) -> dict[str, Any]:
        """Client and host."""
        return client_facts(self.client, self.client.settings.url)


class SmartAccWindows:
    """SmartAcc pages of 20, read concurrently and de-duplicated inside the client; plus the Terms lookup."""

    source = "smartacc"

    def __init__(self, client: SmartAccClient) -> None:
        self.client = client

    def iter_pages(self, window: Window) -> Iterator[Page]:
        """The client's pages: every customer of the window once, newest version, stable order."""
        yield from self.client.iter_window(window)

    def lookups(self, window: Window) -> Sequence[Lookup]:
        """The Terms lookup, which normalization needs to turn ``AcTermID`` into days (SMARTACC.md §5)."""
        return (Lookup(TERMS, TERMS_CONTRACT, self.client.terms()),)

    def manifest_extra(self) -> dict[str, Any]:
        """Client and host, and how the window was read: passes, fallback, requests, duplicates dropped."""
        facts = client_facts(self.client, self.client.settings.url)
        stats = self.client.last_window_stats
        if stats is not None:
            facts.update(
                passes=stats.passes,
                keyset_fallback=stats.fallback,
                requests=stats.requests,
                rows_received=stats.rows_received,
                duplicates_dropped=stats.duplicates_dropped,
            )
        return facts


def as_window_source(client: object) -> WindowSource:
    """Adapt a vendor client to :class:`WindowSource` (dispatch on its type; conforming objects pass)."""
    if isinstance(client, SkyBizClient):
        return SkyBizWindows(client)
    if isinstance(client, SmartAccClient):
        return SmartAccWindows(client)
    if isinstance(client, WindowSource):
        return client
    raise TypeError(f"cannot extract from {type(client).__name__}: not a SkyBiz or SmartAcc client")


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
        client: a ``SkyBizClient``, a ``SmartAccClient`` or any :class:`WindowSource`.
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
        schema = arrow_schema(load_contract(lookup.contract))
        with lake.writer(RAW, src.source, lookup.entity, window, schema) as writer:
            writer.write(page_to_batch(lookup.page, window, schema, _now()))
            who = {k: v for k, v in src.manifest_extra().items() if k in _WHO}
            writer.commit(pages=1, request_ids=[lookup.page.request_id], **who)

    schema = raw_schema(src.source)
    pages = 0
    request_ids: list[str] = []
    with lake.writer(RAW, src.source, CUSTOMERS, window, schema) as writer:
        buffer = _Buffer(writer, batch_rows)
        for page in src.iter_pages(window):
            batch = page_to_batch(page, window, schema, _now())
            buffer.add(batch)
            pages += 1
            request_ids.append(page.request_id)
            if progress is not None:
                progress(ExtractProgress(src.source, window.key, pages, buffer.rows, batch.num_rows))
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
    """The Arrow schema of a source's raw customers, generated from its contract."""
    try:
        return arrow_schema(load_contract(RAW_CONTRACTS[source]))
    except KeyError:
        raise ContractError(f"no raw contract for source {source!r}", source=source) from None


def page_to_batch(page: Page, window: Window, schema: pa.Schema, extracted_at: datetime) -> pa.RecordBatch:
    """One page as a record batch of ``schema``: vendor text as-is, unknown keys as JSON, lineage set.

    Raises:
        ContractError: a vendor value is not text (the client must hand over the exact text it received).
    """
    rows = page.rows
    n = len(rows)
    vendor = [name for name in schema.names if name not in LINEAGE]
    arrays: list[pa.Array] = []
    for name in vendor:
        values = [row.get(name) for row in rows]
        try:
            arrays.append(pa.array(values, type=pa.string()))
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            bad = next(v for v in values if v is not None and not isinstance(v, str))
            raise ContractError(
                f"value of type {type(bad).__name__} where the raw contract keeps the vendor's text",
                source=window.source,
                window=window.key,
                field=name,
                request_id=page.request_id,
            ) from None
    lineage: dict[str, pa.Array] = {
        "_extracted_at": pa.repeat(pa.scalar(extracted_at, type=pa.timestamp("us", tz="UTC")), n),
        "_request_id": pa.repeat(pa.scalar(page.request_id, type=pa.string()), n),
        "_page": pa.repeat(pa.scalar(page.page, type=pa.int32()), n),
        "_window": pa.repeat(pa.scalar(window.key, type=pa.string()), n),
        "_unknown_fields": pa.array(_unknown_fields(rows, frozenset(vendor)), type=pa.string()),
    }
    arrays.extend(lineage[name] for name in schema.names if name in LINEAGE)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


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
    """Collects page batches and writes them as one row group once ``limit`` rows are waiting."""

    def __init__(self, writer: WindowWriter, limit: int) -> None:
        self.writer = writer
        self.limit = max(1, limit)
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0
        self.rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        self.pending.append(batch)
        self.pending_rows += batch.num_rows
        self.rows += batch.num_rows
        if self.pending_rows >= self.limit:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.writer.write(pa.Table.from_batches(self.pending, schema=self.writer.schema))
        self.pending, self.pending_rows = [], 0


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


def _now() -> datetime:
    return datetime.now(UTC)
