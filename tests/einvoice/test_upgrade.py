"""A warehouse created before the e-invoice columns (customer contract 1.0.0) gains them, and says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.einvoice import COLUMNS, NOT_ASSESSED
from pipelines.warehouse import open_warehouse
from pipelines.warehouse.schema import CUSTOMERS, HISTORY, V_EINVOICE, V_SCHEMA


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_an_old_warehouse_gains_the_columns_and_its_rows_read_not_assessed(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = str(tmp_path / "old.duckdb") if engine == "duckdb" else request.getfixturevalue("postgres_url")
    with open_warehouse(url) as wh:
        wh.ensure_schema()
        # What 1.0.0 created: no view over the e-invoice columns, and customers without them (DuckDB cannot
        # drop them from customer_history, whose key columns come after: its ADD COLUMN runs as a no-op),
        # and no schema fingerprint.
        wh.execute(f"DROP VIEW {V_EINVOICE}")
        wh.execute(f"DROP VIEW {V_SCHEMA}")
        for column in COLUMNS:
            wh.execute(f'ALTER TABLE {CUSTOMERS} DROP COLUMN "{column}"')
        wh.execute(
            f"INSERT INTO {CUSTOMERS} (customer_key, source_system, source_customer_id, name, currency, "
            "modified_at, source_window, extracted_at, record_hash, loaded_at, load_id) VALUES "
            "('smartacc:300-A0001', 'smartacc', '300-A0001', 'Apex Murni PLT', 'MYR', "
            "TIMESTAMPTZ '2024-01-01 00:00:00+00', '2024-01-01_2024-01-31', "
            "TIMESTAMPTZ '2024-02-01 00:00:00+00', "
            "'" + "0" * 64 + "', TIMESTAMPTZ '2024-02-01 00:00:00+00', 'old-load')"
        )
        assert not [c for c in COLUMNS if _has_column(wh, CUSTOMERS, c)]
    with open_warehouse(url) as wh:
        wh.ensure_schema()
        for table in (CUSTOMERS, HISTORY):
            assert all(_has_column(wh, table, c) for c in COLUMNS), table
        rows = wh.query(f"SELECT systems, smartacc_id, ready, reasons FROM {V_EINVOICE}")
    assert rows == [("smartacc", "300-A0001", False, NOT_ASSESSED)]


def _has_column(wh: object, table: str, column: str) -> bool:
    found = wh.query(  # type: ignore[attr-defined]
        "SELECT count(*) FROM information_schema.columns WHERE table_name = $1 AND column_name = $2 "
        "AND table_schema = current_schema()",
        (table, column),
    )
    return bool(found[0][0])
