"""Load lake windows into the warehouse, idempotently and in any order.

A load is one transaction over one window or a batch of them: stage the normalized and quarantine windows,
merge ``customers`` (the newest version wins), add unseen versions and recompute the history of the
customers they touch, replace each window's quarantine slice, and finish each window's audit row. Loading a
window twice changes nothing; loading windows out of order (a backfill after the daily runs, a re-run of an
old month) ends in the same tables as loading them in order, because ``customers`` only ever moves forward
and ``customer_history`` is a function of the set of versions seen, not of their arrival order.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from pipelines.contracts import load_contract, quote_ident, sql_type
from pipelines.errors import LakeError, SkysmartError, WarehouseError, redact
from pipelines.lake import CUSTOMERS, NORMALIZED, QUARANTINE, RAW, Lake, Manifest
from pipelines.warehouse import schema
from pipelines.warehouse.base import Warehouse, placeholders
from pipelines.windows import Window

log = logging.getLogger(__name__)

STG_CUSTOMERS: Final = "_stg_customers"
STG_QUARANTINE: Final = "_stg_quarantine"
BATCH_WINDOWS: Final = "_batch_windows"
# Every staged customer row with the window it came from (the lineage check makes that exact); a query, not
# a copy: a batch's memory is a few copies of its rows at most.
STG_WINDOWED: Final = (
    f"(SELECT s.*, b._w, b._load_id FROM {STG_CUSTOMERS} s "
    f"JOIN {BATCH_WINDOWS} b ON b.source_window = s.source_window)"
)
# Rows per Arrow batch handed to the engine: a few MB of customers, so a load's memory does not grow with
# the window.
STAGE_BATCH_ROWS: Final = 65_536
#: Rows (normalized + quarantined) one load transaction takes at most: more windows are loaded in several
#: transactions, one after another (the same end state, as windows load in order). A transaction's memory
#: follows its rows: at DuckDB's default limit (256 MB), 24 SmartAcc windows of a 200k-customer history
#: (104,000 rows) ran out of memory in one, 16 (70,000) did not.
LOAD_BATCH_ROWS: Final = 50_000
# The layers whose manifests a window's load checks against each other, in :class:`Lineage`'s order.
_LINEAGE_LAYERS: Final = (RAW, NORMALIZED, QUARANTINE)
_TEMP_TABLES: Final = (
    STG_CUSTOMERS,
    STG_QUARANTINE,
    BATCH_WINDOWS,
    "_ranked",
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
    _audit_running(warehouse, [win], [load_id], started_at)
    try:
        with warehouse.transaction():
            (result,) = _load(warehouse, lake, [win], [load_id], started_at, clock)
    except BaseException as exc:
        _record_failure(warehouse, load_id, started_at, clock, exc)
        raise
    return result


def load_windows(
    warehouse: Warehouse, lake: Lake, source: str, windows: Sequence[Window | str]
) -> list[LoadResult | SkysmartError]:
    """Load many windows of one source together; one result (or the error) per window, in order.

    The windows are staged together and merged by one set of statements in one transaction, however many
    there are (up to :data:`LOAD_BATCH_ROWS` rows: beyond, in consecutive batches of that many), and the
    warehouse ends exactly as after loading them one by one in the order given: the same rows, the same
    ``load_id`` on each (the window that wrote it), and one ``load_audit`` row per window with the counts
    that window's own load would have reported. If any window fails, the whole batch is rolled back, its
    ``running`` rows are removed (and a warning logged), and the windows are loaded one by one, so a bad
    window stops only itself and is recorded as ``failed`` on its own.

    A caller that keeps the connection for many batches checkpoints it now and then
    (:meth:`~pipelines.warehouse.base.Warehouse.checkpoint`), so that they do not all stay in memory.
    """
    wins = [w if isinstance(w, Window) else Window.parse(source, w) for w in windows]
    foreign = [w for w in wins if w.source != source]
    if foreign or len(wins) < 2 or len({w.key for w in wins}) < len(wins):
        return [_load_one(warehouse, lake, source, w) for w in wins]
    batches = _by_rows(lake, source, wins, LOAD_BATCH_ROWS)
    return [outcome for batch in batches for outcome in _load_batch(warehouse, lake, source, batch)]


def _load_batch(
    warehouse: Warehouse, lake: Lake, source: str, batch: Sequence[tuple[Window, Lineage | None]]
) -> list[LoadResult | SkysmartError]:
    """One transaction over the batch's windows; rolled back and loaded one by one if any window fails."""
    wins = [win for win, _ in batch]
    if len(wins) < 2:
        return [_load_one(warehouse, lake, source, w) for w in wins]
    warehouse.ensure_schema()
    started_at = datetime.now(UTC)
    load_ids = [new_load_id() for _ in wins]
    _audit_running(warehouse, wins, load_ids, started_at)
    try:
        with warehouse.transaction():
            results: list[LoadResult | SkysmartError] = list(
                _load(
                    warehouse,
                    lake,
                    wins,
                    load_ids,
                    started_at,
                    time.perf_counter(),
                    [lineage for _, lineage in batch],
                )
            )
    except Exception as error:
        first_line = next(iter(redact(error).splitlines()), "")[:300]
        log.warning(
            "loading %d %s windows together failed (%s: %s); loading them one by one",
            len(wins),
            source,
            type(error).__name__,
            first_line,
        )
        marks = placeholders(len(load_ids))
        with warehouse.transaction():
            warehouse.execute(
                f"DELETE FROM {quote_ident(schema.AUDIT)} WHERE load_id IN ({marks})", tuple(load_ids)
            )
        return [_load_one(warehouse, lake, source, w) for w in wins]
    return results


def _by_rows(
    lake: Lake, source: str, wins: Sequence[Window], limit: int
) -> list[list[tuple[Window, Lineage | None]]]:
    """Consecutive runs of windows holding at most ``limit`` rows each (a bigger window alone).

    Rows are read off the windows' manifests, which go with them to their load (``None``: one could not be
    read; it counts as empty here, and its load reads it again and reports the error).
    """
    batches: list[list[tuple[Window, Lineage | None]]] = []
    rows = 0
    for win in wins:
        try:
            lineage: Lineage | None = Lineage.read(lake, source, win)
        except SkysmartError:
            lineage = None
        size = lineage.normalized.rows + lineage.quarantine.rows if lineage else 0
        if not batches or (rows and rows + size > limit):
            batches.append([])
            rows = 0
        batches[-1].append((win, lineage))
        rows += size
    return batches


def _load_one(warehouse: Warehouse, lake: Lake, source: str, win: Window) -> LoadResult | SkysmartError:
    try:
        return load_window(warehouse, lake, source, win)
    except SkysmartError as error:
        return error


def _audit_running(
    warehouse: Warehouse, wins: Sequence[Window], load_ids: Sequence[str], started_at: datetime
) -> None:
    """One ``running`` audit row per window, in one statement, committed before the load starts."""
    values = ", ".join(f"({placeholders(5, 6 * i + 1)}, 'running', ${6 * i + 6})" for i in range(len(wins)))
    params: list[Any] = []
    for load_id, win in zip(load_ids, wins, strict=True):
        params += [load_id, win.source, win.key, win.start, win.end, started_at]
    warehouse.execute(
        f"INSERT INTO {quote_ident(schema.AUDIT)} "
        "(load_id, source, source_window, window_start, window_end, status, started_at) "
        f"VALUES {values}",
        tuple(params),
    )


def _load(
    warehouse: Warehouse,
    lake: Lake,
    wins: Sequence[Window],
    load_ids: Sequence[str],
    started_at: datetime,
    clock: float,
    lineages: Sequence[Lineage | None] | None = None,
) -> list[LoadResult]:
    """Load windows of one source as if one after another, with statements whose number does not grow.

    Loading windows in sequence is a fold in which the newest version wins, and "newest" is a total order
    (:data:`schema.VERSION_ORDER`, ending in the window itself): so the end state is the newest of all the
    rows at once, and what window ``n`` alone would have done is read off a ranking — it inserted a key no
    earlier window (nor the warehouse) had, and updated one when its row outranks every earlier row of the
    key. History and versions are functions of the set of versions seen, whatever the order.

    ``lineages``: the windows' manifests if already read (``None`` for one not read: it is read here).
    """
    source = wins[0].source
    manifests = [
        found or Lineage.read(lake, source, w)
        for w, found in zip(wins, lineages or [None] * len(wins), strict=True)
    ]
    warehouse.lock("load")
    _stage(warehouse, lake, STG_CUSTOMERS, "customer", NORMALIZED, wins, [m.normalized for m in manifests])
    _stage(
        warehouse,
        lake,
        STG_QUARANTINE,
        "customer_quarantine",
        QUARANTINE,
        wins,
        [m.quarantine for m in manifests],
    )
    _register_windows(warehouse, wins, load_ids)
    staged = _check_lineage(warehouse, source, wins, manifests)
    repeated_keys, repeated_versions = _duplicates(warehouse)
    changed = _merge_customers(
        warehouse, started_at, repeated_keys=repeated_keys, single_window=len(wins) == 1
    )
    versions = _merge_history(warehouse, started_at, repeated_versions=repeated_versions)
    _replace_quarantine(warehouse, source, started_at)
    warehouse.drop_temp(*_TEMP_TABLES)
    seconds = time.perf_counter() - clock
    total = sum(rows_in + quarantined for rows_in, quarantined in staged) or 1
    results = []
    for n, (win, load_id) in enumerate(zip(wins, load_ids, strict=True), start=1):
        rows_in, quarantined = staged[n - 1]
        inserted, updated = changed.get(n, (0, 0))
        share = (rows_in + quarantined) / total if len(wins) > 1 else 1.0
        results.append(
            LoadResult(
                source=source,
                window=win.key,
                rows_in=rows_in,
                inserted=inserted,
                updated=updated,
                unchanged=rows_in - inserted - updated,
                quarantined=quarantined,
                load_id=load_id,
                seconds=round(seconds * share, 3),
            )
        )
    _audit_succeeded(warehouse, results, manifests, versions)
    return results


@dataclass(frozen=True, slots=True)
class Lineage:
    """The manifests a window's load checks and records: the raw rows must be normalized + quarantined."""

    raw: Manifest
    normalized: Manifest
    quarantine: Manifest

    @classmethod
    def read(cls, lake: Lake, source: str, win: Window) -> Lineage:
        """The window's committed manifests; a missing one is a :class:`LakeError` naming it."""
        return cls(*(lake.require_manifest(layer, source, CUSTOMERS, win) for layer in _LINEAGE_LAYERS))


def _stage(
    warehouse: Warehouse,
    lake: Lake,
    table: str,
    contract: str,
    layer: str,
    wins: Sequence[Window],
    manifests: Sequence[Manifest],
) -> None:
    """Stage the windows' files as one stream: the lake reads them (wherever it lives), the engine takes them.

    The files read are the ones the manifests we checked name, not whatever the windows hold by then.
    """
    spec = load_contract(contract)
    batches = itertools.chain.from_iterable(
        lake.iter_batches(
            layer,
            win.source,
            CUSTOMERS,
            win,
            batch_size=STAGE_BATCH_ROWS,
            columns=spec.column_names,
            manifest=manifest,
        )
        for win, manifest in zip(wins, manifests, strict=True)
    )
    warehouse.stage(table, spec, batches)  # rows per window are counted by the lineage check


def _register_windows(warehouse: Warehouse, wins: Sequence[Window], load_ids: Sequence[str]) -> None:
    """The batch's windows, in load order (``_w`` from 1; 0 stands for what the warehouse held before)."""
    warehouse.create_temp_table(
        BATCH_WINDOWS,
        "SELECT CAST(NULL AS VARCHAR) AS source_window, CAST(NULL AS INTEGER) AS _w, "
        "CAST(NULL AS VARCHAR) AS _load_id WHERE 1 = 0",
    )
    values = ", ".join(
        f"(${3 * i + 1}, CAST(${3 * i + 2} AS INTEGER), ${3 * i + 3})" for i in range(len(wins))
    )
    params: list[Any] = []
    for n, (win, load_id) in enumerate(zip(wins, load_ids, strict=True), start=1):
        params += [win.key, n, load_id]
    warehouse.execute(
        f"INSERT INTO {BATCH_WINDOWS} (source_window, _w, _load_id) VALUES {values}", tuple(params)
    )


def _check_lineage(
    warehouse: Warehouse, source: str, wins: Sequence[Window], manifests: Sequence[Lineage]
) -> list[tuple[int, int]]:
    """Refuse windows that do not add up, before they change anything; ``(normalized, quarantined)`` each."""
    in_batch = f"source_window IN (SELECT source_window FROM {BATCH_WINDOWS})"
    foreign = warehouse.query(
        f"SELECT (SELECT count(*) FROM {STG_CUSTOMERS} WHERE source_system <> $1 OR NOT {in_batch}), "
        f"(SELECT count(*) FROM {STG_QUARANTINE} WHERE source_system <> $1 OR NOT {in_batch})",
        (source,),
    )[0]
    if foreign[0] or foreign[1]:
        raise LakeError(
            f"{foreign[0]} normalized and {foreign[1]} quarantined rows belong to another source or window",
            source=source,
            window=wins[0].key if len(wins) == 1 else None,
        )
    normalized_rows, quarantined_rows = (
        dict(warehouse.query(f"SELECT source_window, count(*) FROM {table} GROUP BY source_window"))
        for table in (STG_CUSTOMERS, STG_QUARANTINE)
    )
    staged = [(int(normalized_rows.get(w.key, 0)), int(quarantined_rows.get(w.key, 0))) for w in wins]
    for win, lineage, (rows_in, quarantined) in zip(wins, manifests, staged, strict=True):
        ctx: dict[str, Any] = {"source": win.source, "window": win.key}
        normalized, quarantine = lineage.normalized.rows, lineage.quarantine.rows
        if rows_in != normalized or quarantined != quarantine:
            raise LakeError(
                f"staged {rows_in} normalized and {quarantined} quarantined rows, but the manifests say "
                f"{normalized} and {quarantine}",
                **ctx,
            )
        if lineage.raw.rows != rows_in + quarantined:
            raise LakeError(
                f"raw window has {lineage.raw.rows} rows but normalized {rows_in} + quarantined "
                f"{quarantined} = {rows_in + quarantined}; the normalized window is stale or incomplete, "
                "normalize it again",
                **ctx,
            )
    return staged


def _duplicates(warehouse: Warehouse) -> tuple[bool, bool]:
    """Whether a window holds a key twice, and whether the batch holds a version twice (both are rare).

    When neither happens, the newest-per-group steps (window functions over whole rows) can be skipped.
    """
    keys, versions = warehouse.query(
        f"SELECT (SELECT count(*) FROM {STG_CUSTOMERS}) - (SELECT count(*) FROM "
        f"(SELECT DISTINCT source_window, customer_key FROM {STG_CUSTOMERS}) _k), "
        f"(SELECT count(*) FROM {STG_CUSTOMERS}) - (SELECT count(*) FROM "
        f"(SELECT DISTINCT customer_key, modified_at, record_hash FROM {STG_CUSTOMERS}) _v)"
    )[0]
    return bool(keys), bool(versions)


def _merge_customers(
    warehouse: Warehouse, loaded_at: datetime, *, repeated_keys: bool, single_window: bool
) -> dict[int, tuple[int, int]]:
    """Bring ``customers`` to the newest row per key; ``{window: (inserted, updated)}`` as loaded in turn.

    Candidates are each window's newest row per key and the warehouse's current row (window 0). Ranked
    newest first (ties: the earlier window, so a reload never beats itself), a window's row inserted its key
    when no earlier candidate exists, and updated it when it outranks all earlier ones. The ranking reads
    only the version columns; whole rows are read for the keys whose winner is new, the only ones rewritten.
    """
    cols = schema.column_list(schema.customer_columns())
    vcols = schema.column_list(list(schema.VERSION_COLUMNS))
    target = quote_ident(schema.CUSTOMERS)
    windowed = f"{STG_WINDOWED} _windowed"
    # Each window's newest row per key: the staged rows themselves unless a window holds a key twice.
    rows = f"(SELECT {cols}, _w, _load_id FROM {windowed})"
    if repeated_keys:
        newest = schema.first_per_group(
            f"{cols}, _w, _load_id", windowed, "_w, customer_key", schema.newest_first()
        )
        rows = f"({newest})"
    if single_window and not repeated_keys:
        # Two candidates at most per key, the window's row and the current one: ranking them is one
        # comparison (a window function over both would cost a sort of every staged and current row).
        newer = schema.newer("s", "c")
        ranked = (
            f"SELECT s.customer_key, s._w, CASE WHEN c.customer_key IS NULL OR {newer} THEN 1 ELSE 2 END "
            f"AS _rank, CASE WHEN c.customer_key IS NULL THEN NULL WHEN {newer} THEN 2 ELSE 1 END AS _prior "
            f"FROM {rows} s LEFT JOIN {target} c ON c.customer_key = s.customer_key"
        )
    else:
        candidates = (
            f"SELECT {vcols}, _w FROM {rows} _latest "
            f"UNION ALL SELECT {schema.column_list(list(schema.VERSION_COLUMNS), 'c')}, 0 "
            f"FROM {target} c WHERE c.customer_key IN (SELECT customer_key FROM {STG_CUSTOMERS})"
        )
        ranked = (
            "SELECT customer_key, _w, _rank, min(_rank) OVER (PARTITION BY customer_key ORDER BY _w "
            "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS _prior FROM ("
            f"SELECT *, row_number() OVER (PARTITION BY customer_key ORDER BY {schema.newest_first()}, _w) "
            f"AS _rank FROM ({candidates}) _candidates) _by_age"
        )
    warehouse.create_temp_table("_ranked", ranked)
    winners = (
        f"FROM {rows} s JOIN _ranked r ON r.customer_key = s.customer_key AND r._w = s._w "
        "WHERE r._rank = 1 AND r._w > 0"
    )
    new_winner = "SELECT customer_key FROM _ranked WHERE _rank = 1 AND _w > 0"
    warehouse.execute(f"DELETE FROM {target} WHERE customer_key IN ({new_winner})")
    warehouse.execute(
        f"INSERT INTO {target} ({cols}, loaded_at, load_id) "
        f"SELECT {schema.column_list(schema.customer_columns(), 's')}, $1, s._load_id {winners} "
        "ORDER BY s.customer_key",
        (loaded_at,),
    )
    counts = warehouse.query(
        "SELECT _w, count(*) FILTER (WHERE _prior IS NULL), "
        "count(*) FILTER (WHERE _prior IS NOT NULL AND _rank < _prior) FROM _ranked WHERE _w > 0 GROUP BY _w"
    )
    return {int(w): (int(inserted), int(updated)) for w, inserted, updated in counts}


def _merge_history(warehouse: Warehouse, loaded_at: datetime, *, repeated_versions: bool) -> dict[int, int]:
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

    A version is stored in its canonical sighting (highest stamp, earliest extraction), with the load of
    the window that sighting came from, as loading the windows one by one would have left it.

    Returns:
        per window of the batch, the versions the warehouse had not seen before it.
    """
    versions = quote_ident(schema.VERSIONS)
    history = quote_ident(schema.HISTORY)
    all_cols = schema.customer_columns()
    version_cols = list(schema.VERSION_COLUMNS)
    cols = schema.column_list(all_cols)
    vcols = schema.column_list(version_cols)
    same_version = _same_version("v", "s")
    # One row per version: the canonical sighting (highest stamp, earliest extraction) when seen twice.
    staged = STG_WINDOWED
    if repeated_versions:
        staged = "_stg_versions"
        warehouse.create_temp_table(
            staged,
            schema.first_per_group(
                f"{cols}, _w, _load_id",
                f"{STG_WINDOWED} _windowed",
                "customer_key, modified_at, record_hash",
                schema.newest_first(),
            ),
        )
    # The version columns only: whole rows are read from the staged ones (one per version) where history
    # needs them; SmartAcc's carry a kilobyte of source_extras each.
    warehouse.create_temp_table(
        "_new_versions",
        f"SELECT {schema.column_list(version_cols, 's')}, s._load_id FROM {staged} s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {versions} v WHERE {same_version})",
    )
    # Known versions seen here in a more canonical sighting (an earlier extraction than the one kept).
    warehouse.create_temp_table(
        "_better",
        f"SELECT {schema.column_list(version_cols, 's')}, s._load_id FROM {staged} s JOIN {versions} v "
        f"ON {same_version} WHERE {schema.newer('s', 'v')}",
    )
    new, better = warehouse.query(
        "SELECT (SELECT count(*) FROM _new_versions), (SELECT count(*) FROM _better)"
    )[0]
    if not new and not better:
        return {}
    # A new version counts for the first window of the batch that holds it.
    firsts = warehouse.query(
        f"SELECT _w, count(*) FROM (SELECT min(s._w) AS _w FROM {STG_WINDOWED} s "
        f"JOIN _new_versions v ON {same_version} "
        "GROUP BY s.customer_key, s.modified_at, s.record_hash) _first GROUP BY _w"
    )
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
            "source_window = b.source_window, loaded_at = $1, load_id = b._load_id FROM _better b "
            f"WHERE {versions}.customer_key = b.customer_key AND {versions}.modified_at = b.modified_at "
            f"AND {versions}.record_hash = b.record_hash",
            (loaded_at,),
        )
    if new:
        warehouse.execute(
            f"INSERT INTO {versions} ({vcols}, loaded_at, load_id) "
            f"SELECT {vcols}, $1, _load_id FROM _new_versions ORDER BY customer_key",
            (loaded_at,),
        )
        _append_history(warehouse, history, all_cols, staged)
    if int(warehouse.query("SELECT count(*) FROM _rebuild")[0][0]):
        _rebuild_history(warehouse, history, versions, all_cols, staged)
    return {int(w): int(count) for w, count in firsts}


def _same_version(a: str, b: str) -> str:
    """A join condition: rows ``a`` and ``b`` (table aliases) are one version of one customer."""
    return " AND ".join(f"{a}.{c} = {b}.{c}" for c in ("customer_key", "modified_at", "record_hash"))


def _append_history(warehouse: Warehouse, history: str, all_cols: list[str], staged: str) -> None:
    """New versions that all come after a key's known ones: close its current row, add the kept ones.

    ``staged`` holds the batch's whole rows, one per version.
    """
    version_cols = list(schema.VERSION_COLUMNS)
    # A new version is kept when its content differs from its predecessor's: the previous new version,
    # or for the first one the key's current history row (the run the newest known version belongs to).
    # Decided on the version columns alone; whole rows are read once, by the insert (SmartAcc's rows carry
    # a kilobyte of source_extras, which a window function over whole rows sorted: 4.2 of 22 s loading
    # 100k of them).
    warehouse.create_temp_table(
        "_kept",
        f"SELECT * FROM (SELECT {schema.column_list(version_cols, 'n')}, "
        "COALESCE(lag(n.record_hash) OVER (PARTITION BY n.customer_key "
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
    warehouse.execute(
        f"INSERT INTO {history} ({schema.column_list(all_cols)}, valid_from, valid_to, is_current) "
        f"SELECT {schema.column_list(all_cols, 'n')}, k.modified_at, k._next, k._next IS NULL "
        "FROM (SELECT customer_key, modified_at, record_hash, lead(modified_at) OVER (PARTITION BY "
        f"customer_key ORDER BY {schema.oldest_first()}) AS _next FROM _kept) k "
        f"JOIN {staged} n ON {_same_version('n', 'k')} "
        f"ORDER BY n.customer_key, {schema.oldest_first('n')}"
    )


def _rebuild_history(
    warehouse: Warehouse, history: str, versions: str, all_cols: list[str], staged: str
) -> None:
    """Recompute the whole history of the keys in ``_rebuild`` from their versions.

    ``staged`` holds the batch's whole rows, one per version: the content of its new versions.
    """
    version_cols = list(schema.VERSION_COLUMNS)
    content = schema.content_columns()
    content_of = ["customer_key", "record_hash", *content]
    ccols = schema.column_list(content_of)
    in_rebuild = "customer_key IN (SELECT customer_key FROM _rebuild)"
    # Prefer content already in history (priority 0) so rewriting a key never changes a kept row's content.
    warehouse.create_temp_table(
        "_content",
        schema.first_per_group(
            ccols,
            f"(SELECT 0 AS _priority, {ccols} FROM {history} WHERE {in_rebuild} "
            f"UNION ALL SELECT 1 AS _priority, {schema.column_list(content_of, 's')} FROM {staged} s "
            f"JOIN _new_versions n ON {_same_version('n', 's')} WHERE s.{in_rebuild}) _candidates",
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


def _replace_quarantine(warehouse: Warehouse, source: str, loaded_at: datetime) -> None:
    """Replace each window's quarantine slice with the staged one, however many rows either has."""
    table = quote_ident(schema.QUARANTINE_TABLE)
    names = load_contract("customer_quarantine").column_names
    warehouse.execute(
        f"DELETE FROM {table} WHERE source_system = $1 "
        f"AND source_window IN (SELECT source_window FROM {BATCH_WINDOWS})",
        (source,),
    )
    warehouse.execute(
        f"INSERT INTO {table} ({schema.column_list(names)}, loaded_at, load_id) "
        f"SELECT {schema.column_list(names, 'q')}, $1, b._load_id FROM {STG_QUARANTINE} q "
        f"JOIN {BATCH_WINDOWS} b ON b.source_window = q.source_window ORDER BY b._w, q.row_number",
        (loaded_at,),
    )


def _audit_succeeded(
    warehouse: Warehouse,
    results: Sequence[LoadResult],
    manifests: Sequence[Lineage],
    versions: dict[int, int],
) -> None:
    """Finish every window's audit row with its own counts, in one statement."""
    audit = load_contract("load_audit")
    names = (
        "load_id",
        "rows_in",
        "inserted",
        "updated",
        "unchanged",
        "quarantined",
        "history_versions",
        "raw_sha256",
        "normalized_sha256",
        "quarantine_sha256",
        "finished_at",
        "seconds",
    )
    types = [sql_type(audit.column(name), warehouse.dialect) for name in names]
    width = len(names)
    values = ", ".join(
        "(" + ", ".join(f"CAST(${width * i + k + 1} AS {t})" for k, t in enumerate(types)) + ")"
        for i in range(len(results))
    )
    finished_at = datetime.now(UTC)
    params: list[Any] = []
    for n, (result, lineage) in enumerate(zip(results, manifests, strict=True), start=1):
        params += [
            result.load_id,
            result.rows_in,
            result.inserted,
            result.updated,
            result.unchanged,
            result.quarantined,
            versions.get(n, 0),
            lineage.raw.sha256,
            lineage.normalized.sha256,
            lineage.quarantine.sha256,
            finished_at,
            result.seconds,
        ]
    sets = ", ".join(f"{quote_ident(name)} = v.{quote_ident(name)}" for name in names[1:])
    table = quote_ident(schema.AUDIT)
    warehouse.execute(
        f"UPDATE {table} SET status = 'succeeded', {sets} FROM (VALUES {values}) "
        f"AS v({schema.column_list(names)}) WHERE {table}.load_id = v.load_id",
        tuple(params),
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
