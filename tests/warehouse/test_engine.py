"""The Warehouse interface behaves the same on both engines: SQL as written, transactions, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.errors import TransientWarehouseError, WarehouseError
from pipelines.warehouse import Warehouse, mask_url, open_warehouse


def test_no_engine_translates_placeholders() -> None:
    """Nothing between the caller and the driver rewrites SQL: the old ``?`` translator is gone for good."""
    import pipelines.warehouse.postgres_engine as postgres_engine

    assert not hasattr(postgres_engine, "to_pyformat")


@pytest.mark.parametrize(
    ("sql", "params", "expected"),
    [
        ("SELECT $1, $2", (5, "x"), (5, "x")),
        ("SELECT $2, $1, $1", (5, "x"), ("x", 5, 5)),
        ("SELECT 1 /* why? */, $1", (5,), (1, 5)),
        ("SELECT 1 /* $1 or %s? */, $1 -- and ? here\n", (5,), (1, 5)),
        ("SELECT $$ a ? b $1 %s $$, $1", (5,), (" a ? b $1 %s ", 5)),
        ("SELECT 'it''s ?', 'a%s', '%', $1 || '%'", ("x",), ("it's ?", "a%s", "%", "x%")),
        ('SELECT 7 AS "odd?name%s", $1', (8,), (7, 8)),
    ],
    ids=["numbered", "reused", "block-comment", "comments", "dollar-body", "literals", "identifier"],
)
def test_statements_reach_the_server_as_written(
    warehouse: Warehouse, sql: str, params: tuple[object, ...], expected: tuple[object, ...]
) -> None:
    assert warehouse.query(sql, params) == [expected]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1 /* why? */, '?', '%s', '%%'", (1, "?", "%s", "%%")),
        ("SELECT $$ where? %s $1 $$", (" where? %s $1 ",)),
    ],
    ids=["literals", "dollar-body"],
)
def test_without_parameters_nothing_is_parsed(
    warehouse: Warehouse, sql: str, expected: tuple[object, ...]
) -> None:
    assert warehouse.query(sql) == [expected]
    assert warehouse.query_table(sql)[1] == [expected]


def test_postgres_jsonb_question_mark_operator(postgres_url: str) -> None:
    with open_warehouse(postgres_url) as wh:
        assert wh.query("""SELECT '{"a":1}'::jsonb ? 'a', '{"a":1}'::jsonb ? 'b'""") == [(True, False)]
        assert wh.query("SELECT CAST($1 AS jsonb) ? $2", ('{"a": 1}', "a")) == [(True,)]
        assert wh.query("""SELECT '{"a":1,"b":2}'::jsonb ?& array['a','b']""") == [(True,)]


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://etl:s3cret@db.internal:5432/wh", "postgresql://etl:***@db.internal:5432/wh"),
        ("postgresql://etl@db.internal/wh", "postgresql://etl@db.internal/wh"),
        ("warehouse.duckdb", "warehouse.duckdb"),
    ],
    ids=["password", "no-password", "file"],
)
def test_urls_are_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_values_travel_as_parameters(warehouse: Warehouse) -> None:
    rows = warehouse.query("SELECT $1, '?', 'a%b', $2 || '%'", (5, "x'; DROP TABLE t; --"))
    assert rows == [(5, "?", "a%b", "x'; DROP TABLE t; --%")]


def test_transaction_commits_or_rolls_back(warehouse: Warehouse) -> None:
    warehouse.execute("CREATE TABLE t (a INTEGER)")
    with warehouse.transaction():
        warehouse.execute("INSERT INTO t VALUES ($1)", (1,))
    with pytest.raises(ZeroDivisionError), warehouse.transaction():
        warehouse.execute("INSERT INTO t VALUES ($1)", (2,))
        raise ZeroDivisionError

    assert warehouse.query("SELECT a FROM t ORDER BY a") == [(1,)]
    frame = warehouse.query_df("SELECT a AS answer FROM t")
    assert list(frame.columns) == ["answer"] and frame["answer"].tolist() == [1]


def test_query_arrow_gives_the_rows_as_columns(warehouse: Warehouse) -> None:
    warehouse.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    warehouse.execute("INSERT INTO t VALUES (1, 'x'), (2, NULL)")

    table = warehouse.query_arrow("SELECT a, b FROM t WHERE a >= $1 ORDER BY a", (1,))

    assert table.column_names == ["a", "b"]
    assert table.to_pylist() == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]
    assert warehouse.query_arrow("SELECT a FROM t WHERE a > $1", (5,)).num_rows == 0
    with pytest.raises(WarehouseError, match="no_such_table"):
        warehouse.query_arrow("SELECT * FROM no_such_table")


def test_sql_errors_are_warehouse_errors(warehouse: Warehouse) -> None:
    with pytest.raises(WarehouseError, match="no_such_table") as info:
        warehouse.query("SELECT * FROM no_such_table")
    assert not isinstance(info.value, TransientWarehouseError)


def test_read_only_refuses_writes(warehouse_url: str) -> None:
    with open_warehouse(warehouse_url) as wh:
        wh.ensure_schema()
    with open_warehouse(warehouse_url, read_only=True) as ro:
        assert ro.query("SELECT count(*) FROM customers") == [(0,)]
        with pytest.raises(WarehouseError, match=r"(?i)read-only"):
            ro.execute("DELETE FROM customers")


def test_postgres_password_never_shows(postgres_url: str) -> None:
    with_password = postgres_url.replace("postgres@", "postgres:hunter2-secret@")

    with open_warehouse(with_password) as wh:
        assert "hunter2" not in repr(wh) and "hunter2" not in wh.url
        assert wh.query("SELECT 1") == [(1,)]

    unreachable = "postgresql://postgres:hunter2-secret@127.0.0.1:1/nowhere"
    with pytest.raises(TransientWarehouseError) as info:
        open_warehouse(unreachable)
    assert "hunter2" not in str(info.value)
    assert "127.0.0.1" in str(info.value)


def test_duckdb_file_locked_by_another_process_is_transient(tmp_path: Path) -> None:
    path = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('LOCKED', flush=True); "
            "time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "LOCKED"
        with pytest.raises(TransientWarehouseError, match="lock"):
            open_warehouse(str(path))
    finally:
        holder.kill()
        holder.communicate()
    with open_warehouse(str(path)) as wh:  # free again once the holder is gone
        assert wh.query("SELECT 42") == [(42,)]


def test_missing_duckdb_file_read_only_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match="skysmart load") as info:
        open_warehouse(str(tmp_path / "absent.duckdb"), read_only=True)
    assert not isinstance(info.value, TransientWarehouseError)
    assert not (tmp_path / "absent.duckdb").exists()


def test_duckdb_draws_no_progress_bar_into_skysmarts_output(tmp_path: Path) -> None:
    """DuckDB's own bar, drawn on stdout for statements over 2 s, would cut into a run's display."""
    with open_warehouse(str(tmp_path / "w.duckdb")) as wh:
        assert wh.query("SELECT current_setting('enable_progress_bar')") == [(False,)]
