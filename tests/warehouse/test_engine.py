"""The Warehouse interface behaves the same on both engines: placeholders, transactions, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.errors import TransientWarehouseError, WarehouseError
from pipelines.warehouse import Warehouse, mask_url, open_warehouse
from pipelines.warehouse.postgres_engine import to_pyformat


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT ?", "SELECT %s"),
        ("SELECT ?, ? FROM t WHERE a = ?", "SELECT %s, %s FROM t WHERE a = %s"),
        ("SELECT '?' || ?", "SELECT '?' || %s"),
        ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', %s"),
        ('SELECT "odd?name" FROM t WHERE x = ?', 'SELECT "odd?name" FROM t WHERE x = %s'),
        ("SELECT 'a%b' LIKE ?", "SELECT 'a%%b' LIKE %s"),
        ("SELECT 1 -- why?\n, ?", "SELECT 1 -- why?\n, %s"),
    ],
    ids=["one", "several", "literal", "escaped-quote", "identifier", "percent", "comment"],
)
def test_question_marks_become_psycopg_placeholders(sql: str, expected: str) -> None:
    assert to_pyformat(sql) == expected


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
    rows = warehouse.query("SELECT ?, '?', 'a%b', ? || '%'", (5, "x'; DROP TABLE t; --"))
    assert rows == [(5, "?", "a%b", "x'; DROP TABLE t; --%")]


def test_transaction_commits_or_rolls_back(warehouse: Warehouse) -> None:
    warehouse.execute("CREATE TABLE t (a INTEGER)")
    with warehouse.transaction():
        warehouse.execute("INSERT INTO t VALUES (?)", (1,))
    with pytest.raises(ZeroDivisionError), warehouse.transaction():
        warehouse.execute("INSERT INTO t VALUES (?)", (2,))
        raise ZeroDivisionError

    assert warehouse.query("SELECT a FROM t ORDER BY a") == [(1,)]
    frame = warehouse.query_df("SELECT a AS answer FROM t")
    assert list(frame.columns) == ["answer"] and frame["answer"].tolist() == [1]


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
