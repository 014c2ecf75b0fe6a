"""``skysmart run``'s batched, pipelined path leaves the warehouse the window-by-window path leaves.

The per-window path is :func:`pipelines.run.run_window` over every window in turn — each step as one DAG task
runs it (its own GX validation, its own load transaction and connection). The batched path is
:func:`pipelines.run.run_pipeline` — windows extracted concurrently, validated per source in one GX run and
loaded many to a transaction. Their warehouses are compared as checksums of every table's content, apart
from what names a particular run (load ids, timestamps, request ids).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any

from pipelines.config import Settings
from pipelines.contracts import quote_ident
from pipelines.run import run_pipeline, run_window
from pipelines.sandbox.server import SandboxServer
from pipelines.steps import plan_range
from pipelines.warehouse import open_warehouse

START, END = date(2024, 1, 1), date(2024, 8, 31)
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


def _settings(sandbox: SandboxServer, where: Path) -> Settings:
    settings = Settings.from_env(sandbox.endpoints.as_env())
    return dataclasses.replace(
        settings, lake_url=str(where / "lake"), warehouse_url=str(where / "warehouse.duckdb")
    )


def _checksums(url: str) -> dict[str, tuple[int, str]]:
    """Rows and a SHA-256 of the sorted content of every table, without run-specific columns."""
    out = {}
    with open_warehouse(url, read_only=True) as wh:
        for table in TABLES:
            columns, _ = wh.query_table(f"SELECT * FROM {table} LIMIT 0")
            kept = [c for c in columns if c not in RUN_COLUMNS]
            _, rows = wh.query_table(f"SELECT {', '.join(quote_ident(c) for c in kept)} FROM {table}")
            lines = sorted(
                json.dumps(_stable(dict(zip(kept, row, strict=True))), default=str) for row in rows
            )
            out[table] = (len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest())
    return out


def _stable(row: dict[str, Any]) -> dict[str, Any]:
    """A quarantined row's raw record without the lineage of the request that fetched it."""
    if "raw_record" in row:
        record = json.loads(row["raw_record"])
        row["raw_record"] = {k: v for k, v in record.items() if k not in ("_extracted_at", "_request_id")}
    return row


def test_batched_run_leaves_the_warehouse_of_the_window_by_window_path(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    per_window = _settings(sandbox, tmp_path / "per-window")
    outcomes = [run_window(per_window, ref) for ref in plan_range(START, END)]
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]

    batched = _settings(sandbox, tmp_path / "batched")
    summary = run_pipeline(batched, START, END)
    assert summary.ok, summary.failed
    assert summary.totals["windows"] == len(outcomes) == 16

    expected = _checksums(per_window.warehouse_url)
    assert expected["customers"][0] > 0 and expected["load_audit"][0] == 16
    assert _checksums(batched.warehouse_url) == expected
