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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from pipelines.contracts import load_contract, quote_ident
from pipelines.errors import LakeError, SkysmartError, WarehouseError, redact
from pipelines.lake import CUSTOMERS, NORMALIZED, QUARANTINE, RAW, Lake, Manifest
from pipelines.warehouse import schema
from pipelines.warehouse.base import Warehouse, placeholders
from pipelines.windows import Window

STG_CUSTOMERS: Final = "_stg_customers"
STG_QUARANTINE: Final = "_stg_quarantine"
# Rows per Arrow batch handed to the engine: a few MB of customers, so a load's memory does not grow with
# the window.
STAGE_BATCH_ROWS: Final = 65_536
_TEMP_TABLES: Final = (
    STG_CUSTOMERS,
    STG_QUARANTINE,
    "_stg_versions",
    "_new_versions",
    "_better",
    "_last_old",
    "_rebuild",
    "_kept",
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
        "VALUES ($1, $2, $3, $4, $5, 'running', $6)",
        (load_id, source, win.key, win.start, win.end, started_at),
    )
    try:
        with warehouse.transaction():
            counts = _load(warehouse, lake, win, load_id, started_at, clock)
    except BaseException as exc:
        _record_failure(warehouse, load_id, started_at, clock, exc)
        raise
    return counts


def load_windows(
    warehouse: Warehouse, lake: Lake, source: str, windows: Sequence[Window | str]
) -> list[LoadResult | SkysmartError]:
    """Load many windows of one source in one transaction; one result (or the error) per window, in order.

    Each window is merged exactly as :func:`load_window` merges it, in the order given, and gets its own
    ``load_audit`` row (committed as ``running`` first, all in one statement) with its own counts, so the
    warehouse ends exactly as after loading the windows one by one. What a batch saves is a transaction, a
    commit and the audit round trips per window — about half of a small window's load on DuckDB. If any
    window fails, the whole batch is rolled back, its ``running`` rows are removed, and the windows are
    loaded one by one, so a bad window stops only itself and is recorded as ``failed`` on its own.
    """
    wins = [w if isinstance(w, Window) else Window.parse(source, w) for w in windows]
    foreign = [w for w in wins if w.source != source]
    if foreign or len(wins) < 2:
        return [_load_one(warehouse, lake, source, w) for w in wins]
    warehouse.ensure_schema()
    started_at = datetime.now(UTC)
    load_ids = [new_load_id() for _ in wins]
    audit = quote_ident(schema.AUDIT)
    values = ", ".join(f"({placeholders(5, 6 * i + 1)}, 'running', ${6 * i + 6})" for i in range(len(wins)))
    params: list[Any] = []
    for load_id, win in zip(load_ids, wins, strict=True):
        params += [load_id, source, win.key, win.start, win.end, started_at]
    warehouse.execute(
        f"INSERT INTO {audit} (load_id, source, source_window, window_start, window_end, status, started_at) "
        f"VALUES {values}",
        tuple(params),
    )
    try:
        with warehouse.transaction():
            results: list[LoadResult | SkysmartError] = [
                _load(warehouse, lake, win, load_id, started_at, time.perf_counter())
                for load_id, win in zip(load_ids, wins, strict=True)
            ]
    except Exception:
        marks = placeholders(len(load_ids))
        with warehouse.transaction():
            warehouse.execute(f"DELETE FROM {audit} WHERE load_id IN ({marks})", tuple(load_ids))
        return [_load_one(warehouse, lake, source, w) for w in wins]
    warehouse.checkpoint()  # a connection serving many batches must not keep them all in memory
    return results


def _load_one(warehouse: Warehouse, lake: Lake, source: str, win: Window) -> LoadResult | SkysmartError:
    try:
        return load_window(warehouse, lake, source, win)
    except SkysmartError as error:
        return error


def _load(
    warehouse: Warehouse, lake: Lake, win: Window, load_id: str, started_at: datetime, clock: float
) -> LoadResult:
    source = win.source
    raw = lake.require_manifest(RAW, source, CUSTOMERS, win)
    normalized = lake.require_manifest(NORMALIZED, source, CUSTOMERS, win)
    quarantine = lake.require_manifest(QUARANTINE, source, CUSTOMERS, win)
    warehouse.lock("load")
    rows_in = _stage(warehouse, lake, STG_CUSTOMERS, "customer", NORMALIZED, win, normalized)
    quarantined = _stage(warehouse, lake, STG_QUARANTINE, "customer_quarantine", QUARANTINE, win, quarantine)
    _check_lineage(warehouse, win, raw, normalized, quarantine, rows_in, quarantined)
    # Windows rarely hold a key twice; when none does, both de-duplication passes can be skipped.
    duplicates = warehouse.query(f"SELECT count(*) - count(DISTINCT customer_key) FROM {STG_CUSTOMERS}")
    unique_keys = not duplicates[0][0]
    inserted, updated = warehouse.merge_customers(STG_CUSTOMERS, load_id, started_at, unique_keys=unique_keys)
    versions = _merge_history(warehouse, load_id, started_at, unique_keys=unique_keys)
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
        f"UPDATE {quote_ident(schema.AUDIT)} SET status = 'succeeded', rows_in = $1, inserted = $2, "
        "updated = $3, unchanged = $4, quarantined = $5, history_versions = $6, raw_sha256 = $7, "
        "normalized_sha256 = $8, quarantine_sha256 = $9, finished_at = $10, seconds = $11 "
        "WHERE load_id = $12",
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


def _stage(
    warehouse: Warehouse, lake: Lake, table: str, contract: str, layer: str, win: Window, manifest: Manifest
) -> int:
    """Stage one lake window: the lake reads it (wherever it lives) as Arrow batches, the engine takes them.

    The file read is the one the manifest we checked names, not whatever the window holds by then.
    """
    spec = load_contract(contract)
    batches = lake.iter_batches(
        layer,
        win.source,
        CUSTOMERS,
        win,
        batch_size=STAGE_BATCH_ROWS,
        columns=spec.column_names,
        manifest=manifest,
    )
    return warehouse.stage(table, spec, batches)


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
        f"SELECT (SELECT count(*) FROM {STG_CUSTOMERS} WHERE source_system <> $1), "
        f"(SELECT count(*) FROM {STG_QUARANTINE} WHERE source_system <> $1 OR source_window <> $2)",
        (win.source, win.key),
    )[0]
    if foreign[0] or foreign[1]:
        raise LakeError(
            f"{foreign[0]} normalized and {foreign[1]} quarantined rows belong to another source or window",
            **ctx,
        )


def _merge_history(warehouse: Warehouse, load_id: str, loaded_at: datetime, *, unique_keys: bool) -> int:
    """Record unseen versions and bring the SCD2 history of their customers up to date.

    History is ``collapse(sorted(versions of a key))``: versions oldest first, a version dropped when its
    content (``record_hash``) equals its predecessor's, ``valid_to`` the next kept version's
    ``modified_at``. Two paths compute exactly that:

    * append — every new version of the key is newer than all it had (scheduled runs, in-order
      backfills): close the current row and add the new kept versions;
    * rebuild — a version lands between old ones (out-of-order loads): recompute the key's history from
      ``customer_versions``. Patching in place is not enough here, because a late version can split a
      collapsed run (A and C equal, B arrives later between them); only the full set of versions gives the
      same answer in every arrival order. A version's content comes from any row with the same key and
      hash — equal hash, equal content — so the version table stays narrow.

    Returns:
        the number of versions the warehouse had not seen before.
    """
    versions = quote_ident(schema.VERSIONS)
    history = quote_ident(schema.HISTORY)
    all_cols = schema.customer_columns()
    version_cols = list(schema.VERSION_COLUMNS)
    cols = schema.column_list(all_cols)
    vcols = schema.column_list(version_cols)
    staged = STG_CUSTOMERS
    if not unique_keys:
        # One row per version: the canonical sighting (highest stamp, earliest extraction).
        staged = "_stg_versions"
        warehouse.create_temp_table(
            staged,
            schema.first_per_group(
                cols, STG_CUSTOMERS, "customer_key, modified_at, record_hash", schema.newest_first()
            ),
        )
    same_version = (
        "v.customer_key = s.customer_key AND v.modified_at = s.modified_at AND v.record_hash = s.record_hash"
    )
    warehouse.create_temp_table(
        "_new_versions",
        f"SELECT {schema.column_list(all_cols, 's')} FROM {staged} s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {versions} v WHERE {same_version})",
    )
    # Known versions seen here in a more canonical sighting (an earlier extraction than the one kept).
    warehouse.create_temp_table(
        "_better",
        f"SELECT {schema.column_list(version_cols, 's')} FROM {staged} s JOIN {versions} v "
        f"ON {same_version} WHERE {schema.newer('s', 'v')}",
    )
    new, better = warehouse.query(
        "SELECT (SELECT count(*) FROM _new_versions), (SELECT count(*) FROM _better)"
    )[0]
    if not new and not better:
        return 0
    # Keys where some new version is not newer than the newest version already seen, or whose known
    # version changed its sighting: rebuild those; every other key with new versions appends.
    warehouse.create_temp_table(
        "_last_old",
        schema.first_per_group(
            vcols,
            f"(SELECT {schema.column_list(version_cols, 'v')} FROM {versions} v "
            "WHERE v.customer_key IN (SELECT customer_key FROM _new_versions)) _seen",
            "customer_key",
            schema.newest_first(),
        ),
    )
    warehouse.create_temp_table(
        "_rebuild",
        "SELECT n.customer_key FROM _new_versions n "
        f"JOIN _last_old o ON o.customer_key = n.customer_key WHERE NOT {schema.newer('n', 'o')} "
        "UNION SELECT customer_key FROM _better",
    )
    if better:
        warehouse.execute(
            f"UPDATE {versions} SET source_version = b.source_version, extracted_at = b.extracted_at, "
            "source_window = b.source_window, loaded_at = $1, load_id = $2 FROM _better b "
            f"WHERE {versions}.customer_key = b.customer_key AND {versions}.modified_at = b.modified_at "
            f"AND {versions}.record_hash = b.record_hash",
            (loaded_at, load_id),
        )
    if new:
        warehouse.execute(
            f"INSERT INTO {versions} ({vcols}, loaded_at, load_id) "
            f"SELECT {vcols}, $1, $2 FROM _new_versions ORDER BY customer_key",
            (loaded_at, load_id),
        )
        _append_history(warehouse, history, all_cols)
    if int(warehouse.query("SELECT count(*) FROM _rebuild")[0][0]):
        _rebuild_history(warehouse, history, versions, all_cols)
    return int(new)


def _append_history(warehouse: Warehouse, history: str, all_cols: list[str]) -> None:
    """New versions that all come after a key's known ones: close its current row, add the kept ones."""
    n_cols = schema.column_list(all_cols, "n")
    # A new version is kept when its content differs from its predecessor's: the previous new version,
    # or for the first one the key's current history row (the run the newest known version belongs to).
    warehouse.create_temp_table(
        "_kept",
        f"SELECT * FROM (SELECT {n_cols}, COALESCE(lag(n.record_hash) OVER (PARTITION BY n.customer_key "
        f"ORDER BY {schema.oldest_first('n')}), h.record_hash) AS _prev "
        f"FROM _new_versions n LEFT JOIN {history} h ON h.customer_key = n.customer_key AND h.is_current "
        "WHERE n.customer_key NOT IN (SELECT customer_key FROM _rebuild)) _ordered "
        "WHERE _prev IS NULL OR _prev <> record_hash",
    )
    warehouse.execute(
        f"UPDATE {history} SET valid_to = f.first_from, is_current = FALSE "
        "FROM (SELECT customer_key, min(modified_at) AS first_from FROM _kept GROUP BY customer_key) f "
        f"WHERE {history}.customer_key = f.customer_key AND {history}.is_current"
    )
    cols = schema.column_list(all_cols)
    warehouse.execute(
        f"INSERT INTO {history} ({cols}, valid_from, valid_to, is_current) "
        f"SELECT {cols}, modified_at, lead(modified_at) OVER w, lead(modified_at) OVER w IS NULL "
        f"FROM _kept WINDOW w AS (PARTITION BY customer_key ORDER BY {schema.oldest_first()}) "
        f"ORDER BY customer_key, {schema.oldest_first()}"
    )


def _rebuild_history(warehouse: Warehouse, history: str, versions: str, all_cols: list[str]) -> None:
    """Recompute the whole history of the keys in ``_rebuild`` from their versions."""
    version_cols = list(schema.VERSION_COLUMNS)
    content = schema.content_columns()
    ccols = schema.column_list(["customer_key", "record_hash", *content])
    in_rebuild = "customer_key IN (SELECT customer_key FROM _rebuild)"
    # Prefer content already in history (priority 0) so rewriting a key never changes a kept row's content.
    warehouse.create_temp_table(
        "_content",
        schema.first_per_group(
            ccols,
            f"(SELECT 0 AS _priority, {ccols} FROM {history} WHERE {in_rebuild} "
            f"UNION ALL SELECT 1 AS _priority, {ccols} FROM _new_versions WHERE {in_rebuild}) _candidates",
            "customer_key, record_hash",
            "_priority",
        ),
    )
    warehouse.execute(f"DELETE FROM {history} WHERE {in_rebuild}")
    select_cols = ", ".join(
        f"k.{quote_ident(c)}" if c in version_cols else f"c.{quote_ident(c)}" for c in all_cols
    )
    warehouse.execute(
        f"""INSERT INTO {history} ({schema.column_list(all_cols)}, valid_from, valid_to, is_current)
SELECT {select_cols}, k.modified_at, lead(k.modified_at) OVER w, lead(k.modified_at) OVER w IS NULL
FROM (
  SELECT v.*,
         lag(v.record_hash) OVER (PARTITION BY v.customer_key ORDER BY {schema.oldest_first("v")}) AS _prev
  FROM {versions} v WHERE v.{in_rebuild}
) k
JOIN _content c ON c.customer_key = k.customer_key AND c.record_hash = k.record_hash
WHERE k._prev IS NULL OR k._prev <> k.record_hash
WINDOW w AS (PARTITION BY k.customer_key ORDER BY {schema.oldest_first("k")})
ORDER BY k.customer_key, {schema.oldest_first("k")}"""
    )


def _replace_quarantine(warehouse: Warehouse, win: Window, load_id: str, loaded_at: datetime) -> None:
    """Replace the (source, window) quarantine slice with the staged one, however many rows either has."""
    table = quote_ident(schema.QUARANTINE_TABLE)
    cols = schema.column_list(load_contract("customer_quarantine").column_names)
    warehouse.execute(
        f"DELETE FROM {table} WHERE source_system = $1 AND source_window = $2", (win.source, win.key)
    )
    warehouse.execute(
        f"INSERT INTO {table} ({cols}, loaded_at, load_id) SELECT {cols}, $1, $2 FROM {STG_QUARANTINE} "
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
                f"UPDATE {quote_ident(schema.AUDIT)} SET status = 'failed', error = $1, finished_at = $2, "
                "seconds = $3 WHERE load_id = $4",
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
