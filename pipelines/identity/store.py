"""Rebuild ``customer_matches`` from the warehouse, and tell whether it is current.

The SkyBiz side is every SkyBiz record skysmart has extracted: the current ``customers`` rows *and* the
quarantined rows of ``customer_quarantine`` whose CusCode has no clean version (matched on their raw
fields). Quarantine means "could not be normalized", not "does not exist in SkyBiz": a SkyBiz customer whose
currency is ``XYZ`` still exists, and its SmartAcc twin must not be created again.

A rebuild replaces the table whole in one transaction, so it is idempotent and a reader sees the old or the
new matches, never half of each. It runs after every ``skysmart run`` and before every push when a load
finished after the last rebuild (:func:`ensure_current`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import pandas as pd
import pyarrow as pa

from pipelines.contracts import Contract, arrow_schema, load_contract, quote_ident
from pipelines.identity.match import EVIDENCE_COLUMNS, POSSIBLE, RECORD_COLUMNS, SAME, match
from pipelines.warehouse.schema import AUDIT, CUSTOMERS, MATCHES, QUARANTINE_TABLE

# Customers columns read per side, in RECORD_COLUMNS order (phone_3: SkyBiz's contact phone, SmartAcc's
# mobile — in both systems the number a person answers).
_CUSTOMER_FIELDS: Final = {
    "skybiz": ("name", "phone", "phone_2", "contact_phone", "email", "postcode", "town", "registration_no"),
    "smartacc": ("name", "phone", "phone_2", "mobile", "email", "postcode", "town", "registration_no"),
}
# A quarantined SkyBiz row's raw fields, in RECORD_COLUMNS order (SKYBIZ.md §4; SkyBiz has no BRN field).
_SKYBIZ_RAW_FIELDS: Final = ("CusName", "Tel", "Tel2", "ContactTel", "Email", "PostCode", "Town", None)
_STAGED_MATCHES: Final = "_stg_customer_matches"
MATCH_COLUMNS: Final = (
    "skybiz_code",
    "smartacc_key",
    "smartacc_id",
    "skybiz_record",
    "match_class",
    *EVIDENCE_COLUMNS,
    "evidence",
    "matched_at",
)


class IdentityWarehouse(Protocol):
    """What identity resolution needs of a warehouse (both engines provide it)."""

    @property
    def dialect(self) -> str:
        """``duckdb`` or ``postgres``."""

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run a statement."""

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query and return its rows."""

    def query_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run a query and return its rows as an Arrow table."""

    def transaction(self) -> AbstractContextManager[None]:
        """A block that commits when it ends and rolls back when it raises."""

    def table_exists(self, table: str) -> bool:
        """Whether a table or view exists."""

    def lock(self, name: str) -> None:
        """Serialise writers on ``name`` until the transaction ends."""

    def ensure_schema(self) -> None:
        """Create the warehouse's tables and views if missing."""

    def stage(self, table: str, contract: Contract, batches: Iterable[pa.RecordBatch]) -> int:
        """Bulk-load Arrow batches into a new temporary table of the contract's columns."""

    def drop_temp(self, *names: str) -> None:
        """Drop temporary tables if they exist."""


@dataclass(frozen=True, slots=True)
class MatchSummary:
    """What a rebuild found: records per side, pairs per class, and how long matching took."""

    skybiz_records: int
    skybiz_quarantined: int
    smartacc_records: int
    pairs: int
    same: int
    possible: int
    different: int
    match_seconds: float
    seconds: float


def skybiz_records(warehouse: IdentityWarehouse) -> pd.DataFrame:
    """Every extracted SkyBiz record: ``skybiz_code``, ``skybiz_record`` and :data:`RECORD_COLUMNS`."""
    clean = _customer_records(warehouse, "skybiz").rename(columns={"source_customer_id": "skybiz_code"})
    clean["skybiz_record"] = CUSTOMERS
    quarantined = _quarantined_skybiz(warehouse, known=set(clean["skybiz_code"]))
    frame = pd.concat([clean, quarantined], ignore_index=True) if len(quarantined) else clean
    return frame[["skybiz_code", "skybiz_record", *RECORD_COLUMNS]].reset_index(drop=True)


def smartacc_records(warehouse: IdentityWarehouse) -> pd.DataFrame:
    """Current SmartAcc customers: ``smartacc_key``, ``smartacc_id`` and :data:`RECORD_COLUMNS`."""
    frame = _customer_records(warehouse, "smartacc", with_key=True)
    frame = frame.rename(columns={"customer_key": "smartacc_key", "source_customer_id": "smartacc_id"})
    return frame[["smartacc_key", "smartacc_id", *RECORD_COLUMNS]].reset_index(drop=True)


def compute_matches(warehouse: IdentityWarehouse, *, workers: int = 1) -> tuple[pd.DataFrame, MatchSummary]:
    """Match every extracted SkyBiz record against every current SmartAcc customer; write nothing.

    Returns:
        The rows ``customer_matches`` would hold (columns :data:`MATCH_COLUMNS`) and their summary.
    """
    began = time.perf_counter()
    sky, sma = skybiz_records(warehouse), smartacc_records(warehouse)
    match_began = time.perf_counter()
    pairs = match(sky, sma, workers=workers)
    match_seconds = time.perf_counter() - match_began
    frame = _match_frame(pairs, sky, sma, datetime.now(UTC))
    counts = pairs["match_class"].value_counts().to_dict() if len(pairs) else {}
    summary = MatchSummary(
        skybiz_records=len(sky),
        skybiz_quarantined=int((sky["skybiz_record"] == QUARANTINE_TABLE).sum()),
        smartacc_records=len(sma),
        pairs=len(pairs),
        same=int(counts.get("same", 0)),
        possible=int(counts.get("possible", 0)),
        different=int(counts.get("different", 0)),
        match_seconds=round(match_seconds, 3),
        seconds=round(time.perf_counter() - began, 3),
    )
    return frame, summary


def rebuild_matches(warehouse: IdentityWarehouse, *, workers: int = 1) -> MatchSummary:
    """Recompute the matches and replace ``customer_matches`` whole, in one transaction (idempotent).

    Args:
        warehouse: the warehouse (its schema is created if missing).
        workers: threads for name similarity (``-1``: all cores).
    """
    began = time.perf_counter()
    warehouse.ensure_schema()
    frame, summary = compute_matches(warehouse, workers=workers)
    contract = load_contract(MATCHES)
    schema = arrow_schema(contract)
    # An empty frame's columns have no dtypes to convert from (no pairs: nothing to stage but the columns).
    if len(frame):
        batches = pa.Table.from_pandas(frame, schema=schema, preserve_index=False).to_batches()
    else:
        batches = schema.empty_table().to_batches()
    with warehouse.transaction():
        warehouse.lock(MATCHES)
        # Bulk-loaded (DuckDB scans the Arrow, Postgres COPYs it): at 200k customers, INSERTs of 500 rows
        # with bound parameters took longer than matching itself.
        warehouse.stage(_STAGED_MATCHES, contract, batches)
        for statement in _replace_statements(contract):
            warehouse.execute(statement)
        warehouse.drop_temp(_STAGED_MATCHES)
    return dataclasses.replace(summary, seconds=round(time.perf_counter() - began, 3))


def _replace_statements(contract: Contract) -> list[str]:
    """Make ``customer_matches`` hold exactly the staged rows, touching its key index only where pairs change.

    Pairs that vanished are deleted, kept ones updated in place (their key columns unchanged), new ones
    inserted. Deleting every row and inserting them all again, as a rebuild once did, made DuckDB take each
    deleted key out of the primary key's index at commit: 2.5-3.3 s of a 200k-customer rebuild whose pairs
    had hardly changed, against 0.4 s to update them.
    """
    table, staged = quote_ident(MATCHES), quote_ident(_STAGED_MATCHES)
    key = contract.primary_key
    same_pair = " AND ".join(f"s.{quote_ident(c)} = {table}.{quote_ident(c)}" for c in key)
    cols = ", ".join(quote_ident(c) for c in MATCH_COLUMNS)
    kept = ", ".join(f"{quote_ident(c)} = s.{quote_ident(c)}" for c in MATCH_COLUMNS if c not in key)
    return [
        f"DELETE FROM {table} WHERE NOT EXISTS (SELECT 1 FROM {staged} s WHERE {same_pair})",
        f"UPDATE {table} SET {kept} FROM {staged} s WHERE {same_pair}",
        f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {staged} s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE {same_pair})",
    ]


def is_current(warehouse: IdentityWarehouse) -> bool:
    """Whether ``customer_matches`` was rebuilt after the last successful load finished."""
    if not warehouse.table_exists(MATCHES) or not warehouse.table_exists(AUDIT):
        return False
    built = warehouse.query(f"SELECT max(matched_at) FROM {quote_ident(MATCHES)}")[0][0]
    loaded = warehouse.query(f"SELECT max(finished_at) FROM {quote_ident(AUDIT)} WHERE status = 'succeeded'")[
        0
    ][0]
    return built is not None and (loaded is None or _utc(loaded) < _utc(built))


def ensure_current(warehouse: IdentityWarehouse, *, workers: int = 1) -> MatchSummary | None:
    """Rebuild the matches when a load finished after the last rebuild (or none ran); ``None`` if current."""
    return None if is_current(warehouse) else rebuild_matches(warehouse, workers=workers)


def links(warehouse: IdentityWarehouse, *, write: bool = True) -> pd.DataFrame:
    """The ``same`` and ``possible`` matches the push acts on: current ones, rebuilt first if stale.

    Args:
        warehouse: the warehouse.
        write: rebuild ``customer_matches`` when stale; ``False`` (a dry run, which writes nothing)
            computes the same rows in memory instead.

    Returns:
        Columns ``smartacc_key``, ``skybiz_code``, ``skybiz_record``, ``match_class``, ``evidence``.
    """
    columns = ["smartacc_key", "skybiz_code", "skybiz_record", "match_class", "evidence"]
    if not is_current(warehouse):
        if not write:
            frame, _ = compute_matches(warehouse)
            return frame.loc[frame["match_class"].isin([SAME, POSSIBLE]), columns].reset_index(drop=True)
        rebuild_matches(warehouse)
    rows = warehouse.query(
        f"SELECT {', '.join(quote_ident(c) for c in columns)} FROM {quote_ident(MATCHES)} "
        "WHERE match_class IN ($1, $2) ORDER BY smartacc_key, skybiz_code",
        (SAME, POSSIBLE),
    )
    return pd.DataFrame(rows, columns=columns, dtype="string")


def _customer_records(warehouse: IdentityWarehouse, source: str, *, with_key: bool = False) -> pd.DataFrame:
    fields = _CUSTOMER_FIELDS[source]
    head = ("customer_key", "source_customer_id") if with_key else ("source_customer_id",)
    if not warehouse.table_exists(CUSTOMERS):
        return pd.DataFrame(columns=[*head, *RECORD_COLUMNS], dtype="string")
    cols = ", ".join(quote_ident(c) for c in (*head, *fields))
    table = warehouse.query_arrow(
        f"SELECT {cols} FROM {quote_ident(CUSTOMERS)} WHERE source_system = $1 ORDER BY customer_key",
        (source,),
    )
    # Read as Arrow and kept there (pandas' "string" is Arrow-backed): no Python string per value.
    return pd.DataFrame(
        {
            name: pd.Series(column.cast(pa.string()), dtype="string")
            for name, column in zip([*head, *RECORD_COLUMNS], table.columns, strict=True)
        }
    )


def _quarantined_skybiz(warehouse: IdentityWarehouse, *, known: set[str]) -> pd.DataFrame:
    """The newest quarantined raw row per CusCode that has no clean version, as match records."""
    columns = ["skybiz_code", "skybiz_record", *RECORD_COLUMNS]
    if not warehouse.table_exists(QUARANTINE_TABLE):
        return pd.DataFrame(columns=columns, dtype="string")
    rows = warehouse.query(
        f"SELECT source_window, row_number, raw_record FROM {quote_ident(QUARANTINE_TABLE)} "
        "WHERE source_system = 'skybiz' ORDER BY extracted_at DESC, source_window DESC, row_number"
    )
    out: dict[str, list[str | None]] = {}
    for window, row_number, raw in rows:
        record = _raw_object(raw)
        code = _text(record.get("CusCode")) or f"(no CusCode) {window}#{row_number}"
        if code in known or code in out:
            continue
        out[code] = [
            code,
            QUARANTINE_TABLE,
            *(_text(record.get(f)) if f else None for f in _SKYBIZ_RAW_FIELDS),
        ]
    return pd.DataFrame(list(out.values()), columns=columns, dtype="string")


def _raw_object(raw: Any) -> Mapping[str, Any]:
    """A raw record as stored (DuckDB hands JSON back as text, Postgres as a dict)."""
    if isinstance(raw, Mapping):
        return raw
    try:
        value = json.loads(raw) if isinstance(raw, str | bytes) else {}
    except ValueError:
        return {}
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, Mapping | list):
        return None
    text = str(value).strip()
    return text or None


def _match_frame(
    pairs: pd.DataFrame, sky: pd.DataFrame, sma: pd.DataFrame, matched_at: datetime
) -> pd.DataFrame:
    a = sky.iloc[pairs["skybiz_row"].to_numpy()].reset_index(drop=True)
    b = sma.iloc[pairs["smartacc_row"].to_numpy()].reset_index(drop=True)
    # A code is either in customers or (only) in quarantine (skybiz_records), so the key holds.
    return pd.DataFrame(
        {
            "skybiz_code": a["skybiz_code"].astype(str),
            "smartacc_key": b["smartacc_key"].astype(str),
            "smartacc_id": b["smartacc_id"].astype(str),
            "skybiz_record": a["skybiz_record"].astype(str),
            "match_class": pairs["match_class"].astype(str).to_numpy(),
            **{c: pairs[c].to_numpy() for c in EVIDENCE_COLUMNS},
            "evidence": pairs["evidence"].astype(str).to_numpy(),
            "matched_at": [matched_at] * len(pairs),
        },
        columns=list(MATCH_COLUMNS),
    )


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def rebuild_step(warehouse_url: str) -> dict[str, Any]:
    """Rebuild ``customer_matches`` in the warehouse at ``warehouse_url``; the summary as plain values.

    What a task or a command calls: it opens the warehouse, rebuilds, and hands back counts (no data).
    """
    from pipelines.warehouse import open_warehouse

    with open_warehouse(warehouse_url) as warehouse:
        return dataclasses.asdict(rebuild_matches(warehouse))
