"""``skysmart load``, ``status`` and ``sql`` against both engines."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipelines.cli import main, ui
from pipelines.lake import Lake
from pipelines.warehouse import open_warehouse
from tests.warehouse.factory import at, customer, quarantine_row, window, write_window

JAN = window("skybiz", "2024-01-01", "2024-01-31")
APR = window("skybiz", "2024-04-01", "2024-04-30")


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui.console, "_width", 200)


def fill_lake(lake: Lake) -> None:
    write_window(
        lake,
        JAN,
        [
            customer("skybiz", "300-A001", JAN, modified=at("2024-01-05"), name="Kedai [Besar] Ah Seng"),
            customer("skybiz", "300-A002", JAN, modified=at("2024-01-06"), credit_limit=Decimal("7500.50")),
        ],
        [quarantine_row("skybiz", JAN, 3, "currency_unknown")],
    )
    write_window(
        lake,
        APR,
        [customer("skybiz", "300-A001", APR, modified=at("2024-04-02"), name="Kedai [Besar] Ah Seng")],
    )


def test_load_status_and_read_only_sql(
    warehouse_url: str, lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    fill_lake(lake)

    code = main(
        [
            "load",
            "--from",
            "2024-01-01",
            "--to",
            "2024-12-31",
            "--lake",
            lake.url,
            "--warehouse",
            warehouse_url,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert JAN.key in out and APR.key in out and "2 windows" in out

    assert main(["status", "--warehouse", warehouse_url]) == 0
    out = capsys.readouterr().out
    assert "2024-02-01 → 2024-03-31" in out  # the gap between January and April
    assert "gap" in out and "loaded" in out
    assert "currency_unknown" in out
    assert out.count("succeeded") == 2

    sql = "SELECT source_id, customer_name, credit_limit FROM v_customers ORDER BY customer_key"
    assert main(["sql", sql, "--warehouse", warehouse_url]) == 0
    out = capsys.readouterr().out
    assert "2 rows" in out
    assert "300-A002" in out and "7500.50" in out
    assert "Kedai [Besar] Ah Seng" in out  # data is printed as text, never as rich markup

    assert main(["sql", "DELETE FROM customers", "--warehouse", warehouse_url]) == 2  # usage, not a bug
    assert "read-only" in capsys.readouterr().err.lower()
    with open_warehouse(warehouse_url) as wh:
        assert wh.query("SELECT count(*) FROM customers") == [(2,)]


def test_load_with_nothing_in_range_says_so(
    warehouse_url: str, lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    fill_lake(lake)

    code = main(
        [
            "load",
            "--from",
            "2023-01-01",
            "--to",
            "2023-12-31",
            "--lake",
            lake.url,
            "--warehouse",
            warehouse_url,
        ]
    )

    assert code == 0
    assert "nothing loaded" in " ".join(capsys.readouterr().err.split())


def test_status_of_an_empty_warehouse(warehouse_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with open_warehouse(warehouse_url):
        pass  # creates the DuckDB file / the Postgres database exists already, with no tables

    assert main(["status", "--warehouse", warehouse_url]) == 0
    assert "no skysmart tables yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("SELECT 1 /* why? */ AS answer, 'it''s 100%s sure?' AS note", "it's 100%s sure?"),
        ("SELECT $$ where? $1 %s $$ AS body", "where? $1 %s"),
        ("SELECT 'a' AS x -- a trailing comment? %s\n", "a"),
    ],
    ids=["block-comment-and-percent", "dollar-body", "line-comment"],
)
def test_sql_runs_what_the_analyst_typed(
    warehouse_url: str, query: str, shown: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_warehouse(warehouse_url) as wh:
        wh.ensure_schema()
    assert main(["sql", query, "--warehouse", warehouse_url]) == 0
    out = capsys.readouterr().out
    assert "1 row" in out and shown in out


def test_sql_takes_the_jsonb_question_mark_operator_on_postgres(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_warehouse(postgres_url) as wh:
        wh.ensure_schema()
    query = (
        """SELECT CASE WHEN '{"a":1}'::jsonb ? 'a' THEN 'has a' ELSE 'lacks a' END AS a, """
        """CASE WHEN '{"a":1}'::jsonb ? 'zz' THEN 'has zz' ELSE 'lacks zz' END AS zz"""
    )
    assert main(["sql", query, "--warehouse", postgres_url]) == 0
    out = capsys.readouterr().out
    assert "has a" in out and "lacks zz" in out
