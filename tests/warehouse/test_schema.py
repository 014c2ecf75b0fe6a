"""The warehouse DDL is the contracts': columns, types, nullability and comments."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.contracts import load_contract
from pipelines.warehouse import Warehouse, open_warehouse
from pipelines.warehouse.schema import (
    V_CUSTOMERS,
    V_CUSTOMERS_COLUMNS,
    V_SCHEMA,
    current_fingerprint,
    schema_statements,
    tables,
)

# How each engine's information_schema spells the contract's portable types.
TYPE_NAMES = {
    "duckdb": {
        "string": "VARCHAR",
        "json": "JSON",
        "int32": "INTEGER",
        "int64": "BIGINT",
        "float64": "DOUBLE",
        "bool": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP WITH TIME ZONE",
        "decimal(18,2)": "DECIMAL(18,2)",
    },
    "postgres": {
        "string": "text",
        "json": "jsonb",
        "int32": "integer",
        "int64": "bigint",
        "float64": "double precision",
        "bool": "boolean",
        "date": "date",
        "timestamp": "timestamp with time zone",
        "decimal(18,2)": "numeric",
    },
}


def comments(wh: Warehouse, table: str) -> tuple[str | None, dict[str, str | None]]:
    """The table's (or view's) comment and its columns' comments."""
    if wh.dialect == "duckdb":
        table_comment = wh.query(
            "SELECT comment FROM duckdb_tables() WHERE table_name = $1 "
            "UNION ALL SELECT comment FROM duckdb_views() WHERE view_name = $1",
            (table,),
        )[0][0]
        cols = wh.query("SELECT column_name, comment FROM duckdb_columns() WHERE table_name = $1", (table,))
    else:
        table_comment = wh.query("SELECT obj_description(CAST($1 AS regclass), 'pg_class')", (table,))[0][0]
        cols = wh.query(
            "SELECT attname, col_description(attrelid, attnum) FROM pg_attribute "
            "WHERE attrelid = CAST($1 AS regclass) AND attnum > 0 AND NOT attisdropped",
            (table,),
        )
    return table_comment, dict(cols)


def columns(wh: Warehouse, table: str) -> list[tuple[Any, ...]]:
    return wh.query(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_name = $1 AND table_schema = current_schema() ORDER BY ordinal_position",
        (table,),
    )


def test_tables_match_their_contracts(warehouse: Warehouse) -> None:
    warehouse.ensure_schema()
    names = TYPE_NAMES[warehouse.dialect]

    for table, spec in tables().items():
        found = columns(warehouse, table)
        table_comment, column_comments = comments(warehouse, table)

        expected = [
            (c.name, names[c.physical_type], "NO" if c.required or c.name in spec.primary_key else "YES")
            for c in spec.contract.columns
        ]
        assert found == expected, table
        assert table_comment == spec.contract.description, table
        assert column_comments == {c.name: c.description for c in spec.contract.columns}, table


def test_customers_carry_the_customer_contract_and_load_columns(warehouse: Warehouse) -> None:
    warehouse.ensure_schema()
    customer = load_contract("customer")

    found = [name for name, _, _ in columns(warehouse, "customers")]
    _, column_comments = comments(warehouse, "customers")

    assert found == [*customer.column_names, "loaded_at", "load_id"]
    assert column_comments["phone"] == customer.column("phone").description
    assert "E.164" in (column_comments["phone"] or "")


def test_v_customers_has_friendly_names_and_contract_comments(warehouse: Warehouse) -> None:
    warehouse.ensure_schema()
    customer = tables()["customers"].contract

    view_comment, column_comments = comments(warehouse, "v_customers")

    assert view_comment and "one row per customer_key" in view_comment
    assert list(column_comments) == [friendly for friendly, _ in V_CUSTOMERS_COLUMNS]
    for friendly, source in V_CUSTOMERS_COLUMNS:
        assert column_comments[friendly] == customer.column(source).description
    assert "customer_name" in column_comments and "name" not in column_comments


def test_ensure_schema_is_idempotent(warehouse_url: str) -> None:
    from pipelines.warehouse import open_warehouse

    for _ in range(2):  # a fresh connection each time: no cached "already done"
        with open_warehouse(warehouse_url) as wh:
            wh.ensure_schema()
            wh.execute(
                "INSERT INTO load_audit (load_id, source, source_window, window_start, window_end, status, "
                "started_at) VALUES ($1, 'skybiz', '2024-01-01_2024-01-31', DATE '2024-01-01', "
                "DATE '2024-01-31', 'running', TIMESTAMP '2024-02-01 00:00:00')",
                (f"id-{_}",),
            )
    with open_warehouse(warehouse_url) as wh:
        assert wh.query("SELECT count(*) FROM load_audit") == [(2,)]


def test_ensure_table_for_another_contract(warehouse: Warehouse) -> None:
    extra = ['"sent_at" TIMESTAMPTZ', '"attempts" INTEGER NOT NULL DEFAULT 0']
    warehouse.ensure_table("customer_quarantine", table="quarantine_outbox", extra_columns=extra)
    warehouse.ensure_table("customer_quarantine", table="quarantine_outbox", extra_columns=extra)
    contract = load_contract("customer_quarantine")

    found = [name for name, _, _ in columns(warehouse, "quarantine_outbox")]
    table_comment, column_comments = comments(warehouse, "quarantine_outbox")

    assert found == [*contract.column_names, "sent_at", "attempts"]
    assert table_comment == contract.description
    assert column_comments["rule"] == contract.column("rule").description


def test_the_push_outbox_exists_empty_from_the_first_schema(warehouse: Warehouse) -> None:
    # Analysts can query it before the first push (the README's outbox query used to fail there).
    warehouse.ensure_schema()
    outbox = load_contract("skybiz_push_outbox")
    assert [name for name, _, _ in columns(warehouse, "skybiz_push_outbox")] == outbox.column_names
    assert warehouse.query("SELECT count(*) FROM skybiz_push_outbox") == [(0,)]


def _statements_run(wh: Warehouse, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement ``wh.execute`` is given from now on (queries go through ``query``)."""
    run: list[str] = []
    execute = wh.execute

    def counted(sql: str, params: Any = None) -> None:
        run.append(sql)
        execute(sql, params)

    monkeypatch.setattr(wh, "execute", counted)
    return run


def _schema_part(run: list[str], dialect: str) -> list[str]:
    """The schema's statements among those run (the transaction's own and the lock's left out)."""
    wanted = set(schema_statements(dialect))
    return [sql for sql in run if sql in wanted]


def test_a_warehouse_with_this_schema_is_opened_without_its_statements(
    warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_warehouse(warehouse_url) as wh:
        first = _statements_run(wh, monkeypatch)
        wh.ensure_schema()
        made = wh.query(f"SELECT fingerprint FROM {V_SCHEMA}")
        dialect = wh.dialect
    with open_warehouse(warehouse_url) as wh:
        again = _statements_run(wh, monkeypatch)
        wh.ensure_schema()
        loadable = wh.query("SELECT count(*) FROM customers")

    assert _schema_part(first, dialect) == list(schema_statements(dialect))
    assert made == [(current_fingerprint(dialect),)]
    assert again == []
    assert loadable == [(0,)]


@pytest.mark.parametrize("made_by", ["another version", "nobody: v_schema dropped"])
def test_a_schema_another_version_made_gets_every_statement_again(
    made_by: str, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_warehouse(warehouse_url) as wh:
        wh.ensure_schema()
        wh.execute(f"DROP VIEW {V_CUSTOMERS}")  # what the statements would bring back
        if made_by == "another version":
            wh.execute(f"CREATE OR REPLACE VIEW {V_SCHEMA} AS SELECT 'from an older skysmart' AS fingerprint")
        else:
            wh.execute(f"DROP VIEW {V_SCHEMA}")
    with open_warehouse(warehouse_url) as wh:
        run = _statements_run(wh, monkeypatch)
        wh.ensure_schema()
        restored = wh.table_exists(V_CUSTOMERS)
        made = wh.query(f"SELECT fingerprint FROM {V_SCHEMA}")
        dialect = wh.dialect

    assert _schema_part(run, dialect) == list(schema_statements(dialect))
    assert restored
    assert made == [(current_fingerprint(dialect),)]
