"""Every generator derives the same table from a contract: Arrow, pandas, the GX suite and both SQL dialects.

The expected mappings below are written out independently of ``pipelines.contracts`` on purpose: they are
the spec of the portable ``physicalType`` names, so a change in one generator fails here until the others
(and this table) agree.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import psycopg
import pyarrow as pa
import pytest
import yaml

from pipelines.contracts import (
    CONTRACTS_DIR,
    RULES,
    Column,
    Contract,
    arrow_schema,
    comment_sql,
    create_table_sql,
    load_contract,
    pandas_dtypes,
    quote_ident,
)
from pipelines.einvoice.spec import load_spec
from pipelines.quality import build_suite, frame_from_table
from pipelines.quality.suite import READINESS_RULE

DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)$")
ARROW = {
    "string": pa.string(),
    "json": pa.string(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
PANDAS = {
    "string": "str",
    "json": "str",
    "int32": "Int32",
    "int64": "Int64",
    "float64": "Float64",
    "bool": "boolean",
    "date": "date32[day][pyarrow]",
    "timestamp": "datetime64[us, UTC]",
}
DUCKDB = {
    "string": "VARCHAR",
    "json": "JSON",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float64": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
}
POSTGRES = {
    "string": "text",
    "json": "jsonb",
    "int32": "integer",
    "int64": "bigint",
    "float64": "double precision",
    "bool": "boolean",
    "date": "date",
    "timestamp": "timestamp with time zone",
}
EXPECTATION = {
    "notNull": "expect_column_values_to_not_be_null",
    "unique": "expect_column_values_to_be_unique",
    "validValues": "expect_column_values_to_be_in_set",
    "pattern": "expect_column_values_to_match_regex",
    "range": "expect_column_values_to_be_between",
    "length": "expect_column_value_lengths_to_be_between",
}
SAMPLE = {
    "string": "x",
    "json": '{"a": 1}',
    "int32": 7,
    "int64": 2**40,
    "float64": 1.5,
    "bool": True,
    "date": date(2024, 1, 2),
    "timestamp": pd.Timestamp("2024-01-02T03:04:05.123456Z"),
}


def _contract_names() -> list[str]:
    names = []
    for path in sorted(CONTRACTS_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and doc.get("kind") == "DataContract":  # mappings live here too
            names.append(path.stem)
    return names


CONTRACTS = _contract_names()


def test_the_contract_folder_holds_the_known_contracts() -> None:
    known = {"customer", "customer_quarantine", "skybiz_customer_raw", "smartacc_customer_raw"}
    assert known <= set(CONTRACTS)


@pytest.fixture(params=CONTRACTS)
def contract(request: pytest.FixtureRequest) -> Contract:
    return load_contract(request.param)


def _decimal(col: Column) -> tuple[int, int] | None:
    m = DECIMAL.match(col.physical_type)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _arrow(col: Column) -> pa.DataType:
    dec = _decimal(col)
    return pa.decimal128(*dec) if dec else ARROW[col.physical_type]


def _pandas(col: Column) -> str:
    dec = _decimal(col)
    return f"decimal128({dec[0]}, {dec[1]})[pyarrow]" if dec else PANDAS[col.physical_type]


def _sample(col: Column) -> object:
    dec = _decimal(col)
    return Decimal(1).scaleb(-dec[1]) if dec else SAMPLE[col.physical_type]


def _other(col: Column) -> object:
    """A second value, so the two sample rows never share a primary key."""
    value = _sample(col)
    if isinstance(value, str) and col.physical_type == "string":
        return value + "2"
    if isinstance(value, int) and not isinstance(value, bool):
        return value + 1
    return value


def _frame(contract: Contract) -> pd.DataFrame:
    """Two rows: every column set, then only the required ones."""
    data = {c.name: [_sample(c), _other(c) if c.required else None] for c in contract.columns}
    return pd.DataFrame(data).astype(pandas_dtypes(contract))


# -- Arrow and pandas -----------------------------------------------------------------------------------


def test_arrow_schema_follows_the_contract(contract: Contract) -> None:
    schema = arrow_schema(contract)
    assert schema.names == contract.column_names
    for col, fld in zip(contract.columns, schema, strict=True):
        assert fld.type == _arrow(col), col.name
        assert fld.nullable is not col.required, col.name
        assert (fld.metadata or {}).get(b"description", b"").decode() == col.description
    assert schema.metadata[b"contract"].decode() == contract.id


def test_pandas_dtypes_convert_to_exactly_the_arrow_schema(contract: Contract) -> None:
    frame = _frame(contract)
    assert {n: str(frame[n].dtype) for n in frame.columns} == {c.name: _pandas(c) for c in contract.columns}

    schema = arrow_schema(contract)
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    assert table.schema.remove_metadata().equals(schema.remove_metadata())
    assert table.schema.metadata[b"contract"] == schema.metadata[b"contract"]
    assert table.to_pylist()[0] == {c.name: _python(c, _sample(c)) for c in contract.columns}

    # Without a schema pyarrow infers every type itself: the same, except that pandas 3 text is backed by
    # large_string (64-bit offsets); the lake writer casts it to the contract's string on the way in.
    inferred = pa.Table.from_pandas(frame, preserve_index=False).schema
    for col in contract.columns:
        want = _arrow(col)
        got = inferred.field(col.name).type
        assert got == want or (want == pa.string() and got == pa.large_string()), (col.name, got)

    # And back: the lake's Arrow table becomes the same frame with the same dtypes.
    pd.testing.assert_frame_equal(frame_from_table(table, contract), frame)


def _python(col: Column, value: object) -> object:
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value


# -- the GX suite ---------------------------------------------------------------------------------------


def test_gx_suite_has_one_expectation_per_check_on_the_right_columns(contract: Contract) -> None:
    suite = build_suite(contract)
    # GX types these as the base Expectation, with an optional meta and no column, column_list or dtype.
    expectations: list[Any] = suite.expectations
    checks = [e for e in expectations if e.meta["rule"] in RULES]
    assert [(e.column, e.meta["rule"], e.meta["severity"]) for e in checks] == [
        (c.column, c.rule, c.severity) for c in contract.checks
    ]
    for e in checks:
        assert e.expectation_type == EXPECTATION[e.meta["rule"]]
        assert e.severity.value == {"error": "critical", "warning": "warning"}[e.meta["severity"]]
    required = [c.name for c in contract.columns if c.required]
    assert [e.column for e in checks if e.meta["rule"] == "notNull"] == required

    (columns,) = [e for e in expectations if e.meta["rule"] == "columns"]
    assert columns.column_list == contract.column_names
    dtypes = {e.column: e.dtype for e in expectations if e.meta["rule"] == "dtype"}
    assert dtypes == {c.name: _pandas(c) for c in contract.columns}
    # Plus one warning per e-invoice readiness rule on contracts that carry einvoice_reasons (tests/einvoice).
    readiness = [e for e in expectations if e.meta["rule"] == READINESS_RULE]
    assert {e.column for e in readiness} <= {"einvoice_reasons"}
    expected = len(load_spec().rules) if "einvoice_reasons" in contract.column_names else 0
    assert len(readiness) == expected
    assert len(expectations) == 1 + len(contract.columns) + len(contract.checks) + len(readiness)


# -- DDL ------------------------------------------------------------------------------------------------


def test_duckdb_table_from_the_ddl_matches_the_contract(contract: Contract, tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "contracts.duckdb")) as con:
        con.execute(create_table_sql(contract, "duckdb"))
        for statement in comment_sql(contract):
            con.execute(statement)
        columns = con.execute(
            "SELECT column_name, data_type, is_nullable = 'YES', comment FROM duckdb_columns() "
            "WHERE table_name = ? ORDER BY column_index",
            [contract.table],
        ).fetchall()
        keys = con.execute(
            "SELECT constraint_column_names FROM duckdb_constraints() "
            "WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'",
            [contract.table],
        ).fetchall()
        [(table_comment,)] = con.execute(
            "SELECT comment FROM duckdb_tables() WHERE table_name = ?", [contract.table]
        ).fetchall()

        # The Arrow schema's rows go into the DDL's table unchanged.
        sample = pa.Table.from_pandas(_frame(contract), schema=arrow_schema(contract), preserve_index=False)
        con.register("sample", sample)
        con.execute(f"INSERT INTO {quote_ident(contract.table)} SELECT * FROM sample")
        [(count,)] = con.execute(f"SELECT count(*) FROM {quote_ident(contract.table)}").fetchall()

    assert columns == [(c.name, _duckdb(c), not c.required, c.description or None) for c in contract.columns]
    assert keys == ([(contract.primary_key,)] if contract.primary_key else [])
    assert table_comment == contract.description
    assert count == 2


def _duckdb(col: Column) -> str:
    dec = _decimal(col)
    return f"DECIMAL({dec[0]},{dec[1]})" if dec else DUCKDB[col.physical_type]


@pytest.mark.postgres
def test_postgres_table_from_the_ddl_matches_the_contract(contract: Contract, postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as con:
        con.execute(create_table_sql(contract, "postgres"))
        for statement in comment_sql(contract):
            con.execute(statement)
        columns = con.execute(
            "SELECT column_name, data_type, is_nullable = 'YES', numeric_precision, numeric_scale, "
            "col_description(%s::regclass, ordinal_position::int) "
            "FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s "
            "ORDER BY ordinal_position",
            [quote_ident(contract.table), contract.table],
        ).fetchall()
        keys = con.execute(
            "SELECT k.column_name FROM information_schema.table_constraints t "
            "JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name) "
            "WHERE t.table_name = %s AND t.constraint_type = 'PRIMARY KEY' ORDER BY k.ordinal_position",
            [contract.table],
        ).fetchall()
        row = con.execute(
            "SELECT obj_description(%s::regclass, 'pg_class')", [quote_ident(contract.table)]
        ).fetchone()
        assert row is not None
        (table_comment,) = row

    expected = []
    for c in contract.columns:
        dec = _decimal(c)
        kind = "numeric" if dec else POSTGRES[c.physical_type]
        precision, scale = (
            dec
            if dec
            else {"int32": (32, 0), "int64": (64, 0), "float64": (53, None)}.get(
                c.physical_type, (None, None)
            )
        )
        expected.append((c.name, kind, not c.required, precision, scale, c.description or None))
    assert columns == expected
    assert [k for (k,) in keys] == contract.primary_key
    assert table_comment == contract.description
