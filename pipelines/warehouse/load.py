"""Load one lake window into the warehouse, idempotently and in any order.

A load is one transaction: stage the normalized and quarantine windows, merge ``customers`` (the newest
version wins), add unseen versions and recompute the history of the customers they touch, replace the
window's quarantine slice, and finish the audit row. Loading a window twice changes nothing; loading windows
out of order (a backfill after the daily runs, a re-run of an old month) ends in the same tables as loading
them in order, because ``customers`` only ever moves forward and ``customer_history`` is a function of the
set of versions seen, not of their arrival order.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from pipelines.contracts import load_contract, quote_ident
from pipelines.errors import LakeError, SkysmartError, WarehouseError, redact
from pipelines.lake import CUSTOMERS, NORMALIZED, QUARANTINE, RAW, Lake, Manifest
from pipelines.warehouse import schema
from pipelines.warehouse.base import Warehouse
from pipelines.windows import Window

STG_CUSTOMERS: Final = "_stg_customers"
STG_QUARANTINE: Final = "_stg_quarantine"
_TEMP_TABLES: Final = (
    STG_CUSTOMERS,
    STG_QUARANTINE,
    "_stg_versions",
    "_new_versions",
    "_affected",
    "_content",
)
_MAX_ERROR_CHARS: Final = 2000


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one load did; ``rows_in == inserted + updated + unchanged``.

    Attributes:
        source: the source system.
        window: the window key.
        rows_in: rows in the normalized window.
        inserted: customers new to the warehouse.
        updated: customers whose current row a newer version replaced.
        unchanged: rows that changed nothing (already loaded, or older than what the warehouse holds).
        quarantined: rows in the window's quarantine slice.
        load_id: the ``load_audit`` row of this load.
        seconds: wall-clock duration.
    """

    source: str
    window: str
    rows_in: int
    inserted: int
    updated: int
    unchanged: int
    quarantined: int
    load_id: str
    seconds: float


def new_load_id() -> str:
    """A sortable, unique load id."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"


def load_window(warehouse: Warehouse, lake: Lake, source: str, window: Window | str) -> LoadResult:
    """Merge one committed lake window (normalized + quarantine) into the warehouse.

    The audit row is committed as ``running`` first, so a load whose process dies stays visible; everything
    else happens in one transaction. On failure that transaction is rolled back, the audit row becomes
    ``failed`` (with the error) in a transaction of its own, and the error is raised again.

    Raises:
        LakeError: a window is missing, or the lake's windows disagree (raw rows != normalized + quarantined).
        WarehouseError: the load failed and was rolled back (``TransientWarehouseError`` if worth retrying).
    """
    win = window if isinstance(window, Window) else Window.parse(source, window)
    if win.source != source:
        raise WarehouseError(f"window {win} is not a {source} window", source=source, window=win.key)
    warehouse.ensure_schema()
    load_id = new_load_id()
    started_at = datetime.now(UTC)
    clock = time.perf_counter()
    warehouse.execute(
        f"INSERT INTO {quote_ident(schema.AUDIT)} "
        "(load_id, source, source_window, window_start, window_end, status, started_at) "
        "VALUES (?, ?, ?, ?, ?, 'running', ?)",
        (load_id, source, win.key, win.start, win.end, started_at),
    )
    try:
        with warehouse.transaction():
            counts = _load(warehouse, lake, win, load_id, started_at, clock)
    except BaseException as exc:
        _record_failure(warehouse, load_id, started_at, clock, exc)
        raise
    return counts


def _load(
    warehouse: Warehouse, lake: Lake, win: Window, load_id: str, started_at: datetime, clock: float
) -> LoadResult:
    source = win.source
    raw = lake.require_manifest(RAW, source, CUSTOMERS, win)
    normalized = lake.require_manifest(NORMALIZED, source, CUSTOMERS, win)
    quarantine = lake.require_manifest(QUARANTINE, source, CUSTOMERS, win)
    warehouse.lock("load")
    rows_in = warehouse.stage(
        STG_CUSTOMERS, load_contract("customer"), lake, _url(lake, NORMALIZED, win, normalized)
    )
    quarantined = warehouse.stage(
        STG_QUARANTINE, load_contract("customer_quarantine"), lake, _url(lake, QUARANTINE, win, quarantine)
    )
    _check_lineage(warehouse, win, raw, normalized, quarantine, rows_in, quarantined)
    inserted, updated = warehouse.merge_customers(STG_CUSTOMERS, load_id, started_at)
    versions = _merge_history(warehouse, load_id, started_at)
    _replace_quarantine(warehouse, win, load_id, started_at)
    warehouse.drop_temp(*_TEMP_TABLES)
    result = LoadResult(
        source=source,
        window=win.key,
        rows_in=rows_in,
        inserted=inserted,
        updated=updated,
        unchanged=rows_in - inserted - updated,
        quarantined=quarantined,
        load_id=load_id,
        seconds=round(time.perf_counter() - clock, 3),
    )
    warehouse.execute(
        f"UPDATE {quote_ident(schema.AUDIT)} SET status = 'succeeded', rows_in = ?, inserted = ?, "
        "updated = ?, unchanged = ?, quarantined = ?, history_versions = ?, raw_sha256 = ?, "
        "normalized_sha256 = ?, quarantine_sha256 = ?, finished_at = ?, seconds = ? WHERE load_id = ?",
        (
            result.rows_in,
            result.inserted,
            result.updated,
            result.unchanged,
            result.quarantined,
            versions,
            raw.sha256,
            normalized.sha256,
            quarantine.sha256,
            datetime.now(UTC),
            result.seconds,
            load_id,
        ),
    )
    return result


def _url(lake: Lake, layer: str, win: Window, manifest: Manifest) -> str:
    # The file the manifest we checked names, not whatever the window holds by the time we read it.
    return lake.full_url(f"{lake.window_dir(layer, win.source, CUSTOMERS, win)}/{manifest.file}")


def _check_lineage(
    warehouse: Warehouse,
    win: Window,
    raw: Manifest,
    normalized: Manifest,
    quarantine: Manifest,
    rows_in: int,
    quarantined: int,
) -> None:
    """Refuse windows that do not add up, before they change anything."""
    ctx: dict[str, Any] = {"source": win.source, "window": win.key}
    if rows_in != normalized.rows or quarantined != quarantine.rows:
        raise LakeError(
            f"staged {rows_in} normalized and {quarantined} quarantined rows, but the manifests say "
            f"{normalized.rows} and {quarantine.rows}",
            **ctx,
        )
    if raw.rows != rows_in + quarantined:
        raise LakeError(
            f"raw window has {raw.rows} rows but normalized {rows_in} + quarantined {quarantined} = "
            f"{rows_in + quarantined}; the normalized window is stale or incomplete, normalize it again",
            **ctx,
        )
    foreign = warehouse.query(
        f"SELECT (SELECT count(*) FROM {STG_CUSTOMERS} WHERE source_system <> ?), "
        f"(SELECT count(*) FROM {STG_QUARANTINE} WHERE source_system <> ? OR source_window <> ?)",
        (win.source, win.source, win.key),
    )[0]
    if foreign[0] or foreign[1]:
        raise LakeError(
            f"{foreign[0]} normalized and {foreign[1]} quarantined rows belong to another source or window",
            **ctx,
        )


def _merge_history(warehouse: Warehouse, load_id: str, loaded_at: datetime) -> int:
    """Record unseen versions, then rebuild the SCD2 history of the customers they belong to.

    History is ``collapse(sorted(versions of a key))``: versions sorted oldest first, a version dropped when
    its content (``record_hash``) equals its predecessor's, ``valid_to`` the next kept version's
    ``modified_at``. It is recomputed from ``customer_versions`` rather than patched in place because a late
    version can split a collapsed run (A, C equal content; B arrives later between them): only the full set
    of versions gives the same answer in every arrival order. A version's content comes from any row with
    the same key and hash — equal hash, equal content — so the version table stays narrow.

    Returns:
        the number of versions the warehouse had not seen before.
    """
    versions = schema.tables()[schema.VERSIONS]
    version_cols = list(schema.VERSION_COLUMNS)
    content = schema.content_columns()
    vcols = schema.column_list(version_cols)
    warehouse.create_temp_table(
        "_stg_versions",
        f"SELECT DISTINCT ON (customer_key, modified_at, record_hash) {vcols} FROM {STG_CUSTOMERS} "
        "ORDER BY customer_key, modified_at, record_hash, "
        f"COALESCE(source_version, {schema.MIN_VERSION}) DESC, extracted_at DESC, source_window DESC",
    )
    warehouse.create_temp_table(
        "_new_versions",
        f"SELECT {schema.column_list(version_cols, 's')} FROM _stg_versions s WHERE NOT EXISTS ("
        f"SELECT 1 FROM {quote_ident(versions.name)} v WHERE v.customer_key = s.customer_key "
        "AND v.modified_at = s.modified_at AND v.record_hash = s.record_hash)",
    )
    new = int(warehouse.query("SELECT count(*) FROM _new_versions")[0][0])
    if not new:
        return 0
    warehouse.execute(
        f"INSERT INTO {quote_ident(versions.name)} ({vcols}, loaded_at, load_id) "
        f"SELECT {vcols}, ?, ? FROM _new_versions ORDER BY customer_key",
        (loaded_at, load_id),
    )
    history = quote_ident(schema.HISTORY)
    warehouse.create_temp_table("_affected", "SELECT DISTINCT customer_key FROM _new_versions")
    ccols = schema.column_list(["customer_key", "record_hash", *content])
    # Prefer content already in history (priority 0) so rewriting a key never changes a kept row's content.
    warehouse.create_temp_table(
        "_content",
        f"SELECT DISTINCT ON (customer_key, record_hash) {ccols} FROM ("
        f"SELECT 0 AS _priority, {ccols} FROM {history} "
        "WHERE customer_key IN (SELECT customer_key FROM _affected) "
        f"UNION ALL SELECT 1 AS _priority, {ccols} FROM {STG_CUSTOMERS} "
        "WHERE customer_key IN (SELECT customer_key FROM _affected)"
        ") u ORDER BY customer_key, record_hash, _priority",
    )
    warehouse.execute(f"DELETE FROM {history} WHERE customer_key IN (SELECT customer_key FROM _affected)")
    out_cols = [*schema.customer_columns(), "valid_from", "valid_to", "is_current"]
    select_cols = ", ".join(
        f"k.{quote_ident(c)}" if c in version_cols else f"c.{quote_ident(c)}"
        for c in schema.customer_columns()
    )
    warehouse.execute(
        f"""INSERT INTO {history} ({schema.column_list(out_cols)})
SELECT {select_cols}, k.modified_at, lead(k.modified_at) OVER w, lead(k.modified_at) OVER w IS NULL
FROM (
  SELECT v.*,
         lag(v.record_hash) OVER (PARTITION BY v.customer_key ORDER BY {schema.oldest_first("v")}) AS _prev
  FROM {quote_ident(versions.name)} v WHERE v.customer_key IN (SELECT customer_key FROM _affected)
) k
JOIN _content c ON c.customer_key = k.customer_key AND c.record_hash = k.record_hash
WHERE k._prev IS NULL OR k._prev <> k.record_hash
WINDOW w AS (PARTITION BY k.customer_key ORDER BY {schema.oldest_first("k")})
ORDER BY k.customer_key, {schema.oldest_first("k")}"""
    )
    return new


def _replace_quarantine(warehouse: Warehouse, win: Window, load_id: str, loaded_at: datetime) -> None:
    """Replace the (source, window) quarantine slice with the staged one, however many rows either has."""
    table = quote_ident(schema.QUARANTINE_TABLE)
    cols = schema.column_list(load_contract("customer_quarantine").column_names)
    warehouse.execute(
        f"DELETE FROM {table} WHERE source_system = ? AND source_window = ?", (win.source, win.key)
    )
    warehouse.execute(
        f"INSERT INTO {table} ({cols}, loaded_at, load_id) SELECT {cols}, ?, ? FROM {STG_QUARANTINE} "
        "ORDER BY row_number",
        (loaded_at, load_id),
    )


def _record_failure(
    warehouse: Warehouse, load_id: str, started_at: datetime, clock: float, exc: BaseException
) -> None:
    """Mark the audit row failed, in its own transaction; a warehouse that is gone keeps it ``running``."""
    message = exc.message if isinstance(exc, SkysmartError) else redact(str(exc))
    error = f"{type(exc).__name__}: {message}"[:_MAX_ERROR_CHARS]
    try:
        with warehouse.transaction():
            warehouse.execute(
                f"UPDATE {quote_ident(schema.AUDIT)} SET status = 'failed', error = ?, finished_at = ?, "
                "seconds = ? WHERE load_id = ?",
                (error, datetime.now(UTC), round(time.perf_counter() - clock, 3), load_id),
            )
    except WarehouseError as audit_exc:
        exc.add_note(f"the failed load could not be recorded in load_audit either: {audit_exc}")


def committed_windows(lake: Lake, source: str, start: date, end: date) -> list[Window]:
    """Committed normalized windows of ``source`` overlapping ``start``..``end`` (inclusive), oldest first."""
    return [w for w in lake.windows(NORMALIZED, source, CUSTOMERS) if w.start <= end and w.end >= start]


def load_range(warehouse: Warehouse, lake: Lake, source: str, start: date, end: date) -> list[LoadResult]:
    """Load every committed window of ``source`` overlapping ``start``..``end``, oldest first.

    Stops at the first failure (raising it); every load before it stays committed, and re-running the range
    is safe because each load is idempotent.
    """
    if start > end:
        raise WarehouseError(f"range starts {start} after it ends {end}", source=source)
    return [load_window(warehouse, lake, source, w) for w in committed_windows(lake, source, start, end)]
