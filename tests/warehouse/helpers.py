"""Reading warehouse state back, the same way on both engines."""

from __future__ import annotations

from typing import Any

from pipelines.warehouse import Warehouse
from pipelines.warehouse.schema import customer_columns

TABLES = ("customers", "customer_history", "customer_versions", "customer_quarantine", "load_audit")


def rows(wh: Warehouse, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    names, data = wh.query_table(sql, params)
    return [dict(zip(names, row, strict=True)) for row in data]


def customers(wh: Warehouse) -> list[dict[str, Any]]:
    """The contract columns of every current customer (no load metadata, which differs per run)."""
    cols = ", ".join(customer_columns())
    return rows(wh, f"SELECT {cols} FROM customers ORDER BY customer_key")


def history(wh: Warehouse) -> list[dict[str, Any]]:
    return rows(
        wh,
        "SELECT * FROM customer_history "
        "ORDER BY customer_key, valid_from, COALESCE(source_version, -9223372036854775807), record_hash",
    )


def versions(wh: Warehouse) -> list[dict[str, Any]]:
    cols = "customer_key, modified_at, source_version, record_hash, source_window, extracted_at"
    return rows(wh, f"SELECT {cols} FROM customer_versions ORDER BY customer_key, modified_at, record_hash")


def quarantine(wh: Warehouse) -> list[dict[str, Any]]:
    return rows(
        wh,
        "SELECT source_system, source_window, row_number, rule FROM customer_quarantine "
        "ORDER BY source_system, source_window, row_number",
    )


def audit(wh: Warehouse) -> list[dict[str, Any]]:
    return rows(wh, "SELECT * FROM load_audit ORDER BY started_at, load_id")


def state(wh: Warehouse) -> dict[str, Any]:
    """Everything a load may change, apart from the audit trail."""
    return {
        "customers": customers(wh),
        "history": history(wh),
        "versions": versions(wh),
        "quarantine": quarantine(wh),
    }


def wipe(wh: Warehouse) -> None:
    with wh.transaction():
        for table in TABLES:
            wh.execute(f"DELETE FROM {table}")
