"""A warehouse's content without what names one run, for tests that two paths build the same tables.

Load ids, timestamps of receiving and loading, content hashes of lake files and request lineage differ in
every run; everything else must be equal when two runs saw the same data.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pipelines.contracts import quote_ident
from pipelines.warehouse import open_warehouse

TABLES = ("customers", "customer_history", "customer_versions", "customer_quarantine", "load_audit")
RUN_COLUMNS = frozenset(
    {
        "extracted_at",
        "loaded_at",
        "load_id",
        "quarantined_at",
        "started_at",
        "finished_at",
        "seconds",
        "raw_sha256",
        "normalized_sha256",
        "quarantine_sha256",
    }
)
_LINEAGE = ("_extracted_at", "_request_id")


def snapshot(url: str) -> dict[str, list[str]]:
    """Every load table's rows as sorted JSON lines, without run-specific columns or request lineage."""
    out: dict[str, list[str]] = {}
    with open_warehouse(url, read_only=True) as wh:
        for table in TABLES:
            columns, _ = wh.query_table(f"SELECT * FROM {table} LIMIT 0")
            kept = [c for c in columns if c not in RUN_COLUMNS]
            _, rows = wh.query_table(f"SELECT {', '.join(quote_ident(c) for c in kept)} FROM {table}")
            out[table] = sorted(
                json.dumps(_stable(dict(zip(kept, row, strict=True))), default=str) for row in rows
            )
    return out


def checksums(url: str) -> dict[str, tuple[int, str]]:
    """Rows and a SHA-256 of each table's :func:`snapshot`."""
    return {
        table: (len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest())
        for table, lines in snapshot(url).items()
    }


def _stable(row: dict[str, Any]) -> dict[str, Any]:
    """A quarantined row's raw record without the lineage of the request that fetched it."""
    if "raw_record" in row:
        record = json.loads(row["raw_record"])
        row["raw_record"] = {k: v for k, v in record.items() if k not in _LINEAGE}
    return row
