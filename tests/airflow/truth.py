"""Ground truth for the DAG tests: what the sandbox holds, and what reached the warehouse, per source.

The sandbox's dataset is the truth: a window of Malaysia dates holds exactly the records whose
modification time (``DateTimeModified`` / ``EditDate``, naive Malaysia wall times) falls on those dates.
Every one of them must end in the warehouse either as a customer or as a quarantined row — never both,
never twice.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from skysmart_sandbox.data import SandboxData

_COLUMNS = {
    "skybiz": ("skybiz", "CusCode", "DateTimeModified"),
    "smartacc": ("smartacc", "AcCustomerID", "EditDate"),
}


def sandbox_ids(data: SandboxData, source: str, first: date, last: date) -> list[str]:
    """The vendor ids modified on ``first``..``last`` (inclusive, Malaysia dates), sorted."""
    table_name, id_column, time_column = _COLUMNS[source]
    table: pa.Table = getattr(data, table_name)
    days = pc.cast(table[time_column], pa.date32())
    inside = pc.and_(pc.greater_equal(days, pa.scalar(first)), pc.less_equal(days, pa.scalar(last)))
    return sorted(str(v) for v in table.filter(inside)[id_column].to_pylist())


def warehouse_ids(warehouse: Path | str, source: str) -> list[str]:
    """Every vendor id of ``source`` in ``customers`` plus every one in ``customer_quarantine``, sorted."""
    from pipelines.warehouse import open_warehouse

    with open_warehouse(str(warehouse), read_only=True) as wh:
        rows = wh.query(
            "SELECT source_customer_id FROM customers WHERE source_system = $1 "
            "UNION ALL SELECT source_customer_id FROM customer_quarantine WHERE source_system = $1",
            (source,),
        )
    return sorted(str(r[0]) for r in rows)


def table_rows(warehouse: Path | str, sql: str) -> list[tuple[Any, ...]]:
    """All rows of a query, read-only."""
    from pipelines.warehouse import open_warehouse

    with open_warehouse(str(warehouse), read_only=True) as wh:
        return wh.query(sql)
