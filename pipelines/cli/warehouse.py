"""``skysmart load``, ``status`` and ``sql``: fill the warehouse, see what it holds, query it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from pipelines.cli import options
from pipelines.cli.ui import console, err_console, print_table, track
from pipelines.windows import Window

if TYPE_CHECKING:
    from pipelines.warehouse import LoadResult

# The warehouse, the lake and pandas load inside the handlers, so `skysmart --help` stays instant.

_ERROR_CHARS = 70


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``load``, ``status`` and ``sql``."""
    load = sub.add_parser(
        "load",
        help="merge committed lake windows into the warehouse",
        description=(
            "Load every committed normalized window (and its quarantine) overlapping --from..--to into the "
            "warehouse, oldest first. Idempotent: loading a window again changes nothing."
        ),
    )
    options.add_range(load)
    options.add_source(load)
    options.add_lake(load)
    options.add_warehouse(load)
    options.add_create(load)
    load.set_defaults(handler=_load)

    status = sub.add_parser(
        "status",
        help="what the warehouse holds: per source, window coverage and gaps, last runs, quarantine",
    )
    options.add_warehouse(status)
    status.add_argument("--runs", type=int, default=10, help="how many recent loads to list (default 10)")
    status.add_argument(
        "--skybiz-covered-from",
        metavar="YYYY-MM-DD",
        help="first day of SkyBiz's history, as for push (default: SKYSMART_PUSH_SKYBIZ_COVERED_FROM)",
    )
    status.set_defaults(handler=_status)

    sql = sub.add_parser(
        "sql",
        help="run one query and print the result (DuckDB opened read-only, Postgres read-only transactions)",
    )
    sql.add_argument("query", help='e.g. "SELECT state, count(*) FROM v_customers GROUP BY 1"')
    options.add_warehouse(sql)
    sql.add_argument("--max-rows", type=int, default=200, help="rows to print at most (default 200)")
    sql.set_defaults(handler=_sql)


# -- load -------------------------------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> int:
    from pipelines.lake import Lake
    from pipelines.warehouse import committed_windows, load_window, open_warehouse

    start, end = options.date_range(args)
    warehouse_url = options.warehouse_url(args, writes=True)  # a mistyped path fails before any work
    lake = Lake(options.lake_url(args))
    plan: list[Window] = [w for s in options.sources(args) for w in committed_windows(lake, s, start, end)]
    if not plan:
        err_console.print(
            f"[yellow]No committed normalized windows of {', '.join(options.sources(args))} overlap "
            f"{start}..{end} in {escape(lake.url)}; nothing loaded."  # a path may hold [brackets]
        )
        return 0
    results: list[LoadResult] = []
    with open_warehouse(warehouse_url) as warehouse:
        try:
            for window in track("load", plan):
                results.append(load_window(warehouse, lake, window.source, window))
        finally:
            if results:
                _print_results(results, warehouse.url)
    return 0


def _print_results(results: Sequence[LoadResult], url: str) -> None:
    rows: list[list[Any]] = [
        [r.source, r.window, r.rows_in, r.inserted, r.updated, r.unchanged, r.quarantined, f"{r.seconds:.2f}"]
        for r in results
    ]
    rows.append(
        [
            "total",
            f"{len(results)} windows",
            *(sum(getattr(r, f) for r in results) for f in ("rows_in", "inserted", "updated", "unchanged")),
            sum(r.quarantined for r in results),
            f"{sum(r.seconds for r in results):.2f}",
        ]
    )
    print_table(
        f"Loaded into {url}",
        ["source", "window", "rows in", "inserted", "updated", "unchanged", "quarantined", "seconds"],
        rows,
    )


# -- status -----------------------------------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    from pipelines.warehouse import open_warehouse
    from pipelines.warehouse.schema import AUDIT, V_COVERAGE

    with open_warehouse(args.warehouse, read_only=True) as wh:
        if not wh.table_exists(AUDIT):
            console.print(f"{wh.url} holds no skysmart tables yet; run `skysmart load` first.")
            return 0
        per_source = wh.query(
            """SELECT s.source,
  (SELECT count(*) FROM customers c WHERE c.source_system = s.source),
  (SELECT count(*) FROM customer_history h WHERE h.source_system = s.source),
  (SELECT count(*) FROM v_window_coverage v WHERE v.source = s.source AND v.coverage = 'loaded'),
  (SELECT min(window_start) FROM v_window_coverage v WHERE v.source = s.source AND v.coverage = 'loaded'),
  (SELECT max(covered_through) FROM v_window_coverage v WHERE v.source = s.source AND v.coverage = 'loaded'),
  (SELECT sum(days) FROM v_window_coverage v WHERE v.source = s.source AND v.coverage = 'gap'),
  (SELECT max(finished_at) FROM load_audit a WHERE a.source = s.source AND a.status = 'succeeded')
FROM (SELECT DISTINCT source FROM load_audit) s ORDER BY s.source"""
        )
        print_table(
            f"Warehouse {wh.url}",
            ["source", "customers", "history rows", "windows", "loaded dates", "gap days", "last load"],
            [
                [_fmt(r[0]), r[1], r[2], r[3], _span(r[4], r[5]), int(r[6] or 0), _fmt(r[7])]
                for r in per_source
            ],
        )
        coverage = wh.query(
            f"SELECT source, coverage, window_start, window_end, days, loads, last_loaded_at, rows_in, "
            f"quarantined, covered_through FROM {V_COVERAGE} ORDER BY source, window_start, coverage"
        )
        print_table(
            "Coverage (a gap: days between the first and last loaded window that no load covers; a load "
            "covers its window up to the day it started)",
            [
                "source",
                "coverage",
                "dates",
                "covered to",
                "days",
                "loads",
                "last loaded",
                "rows",
                "quarantined",
            ],
            [
                [_fmt(r[0]), _style(r[1]), _span(r[2], r[3]), _fmt(r[9]), r[4], r[5], _fmt(r[6]), r[7], r[8]]
                for r in coverage
            ],
        )
        _push_readiness(wh, args)
        _einvoice_readiness(wh)
        runs = wh.query(
            "SELECT started_at, source, source_window, status, rows_in, inserted, updated, unchanged, "
            "quarantined, seconds, error FROM load_audit ORDER BY started_at DESC, load_id DESC LIMIT $1",
            (args.runs,),
        )
        print_table(
            f"Last {len(runs)} loads",
            ["started", "window", "status", "rows in", "ins", "upd", "same", "quar", "s", "error"],
            [
                [_fmt(r[0]), _fmt(f"{r[1]}:{r[2]}"), _style(r[3]), *r[4:9], _fmt(r[9]), _fmt(_short(r[10]))]
                for r in runs
            ],
        )
        rules = wh.query(
            "SELECT source_system, rule, count(*), count(DISTINCT source_window) FROM customer_quarantine "
            "GROUP BY source_system, rule ORDER BY source_system, count(*) DESC, rule"
        )
        print_table(
            "Quarantine by rule",
            ["source", "rule", "rows", "windows"],
            [[_fmt(v) for v in row] for row in rules],
        )
    return 0


def _push_readiness(wh: Any, args: argparse.Namespace) -> None:
    """What a real push would say of SkyBiz's coverage (the push's own check), and the identity matches."""
    from rich.text import Text

    from pipelines.push import PushSettings, check_coverage
    from pipelines.warehouse.schema import MATCHES

    settings = PushSettings.from_env().declaring(args.skybiz_covered_from)
    problem = check_coverage(wh, settings).problem
    if problem is None:
        console.print(
            Text(
                f"SkyBiz push coverage: complete from {settings.skybiz_covered_from} through today.", "green"
            )
        )
    else:
        console.print(
            Text("SkyBiz push coverage: a real push would be refused — ", "bold red") + Text(problem)
        )
    if wh.table_exists(MATCHES):
        classes = wh.query(
            f"SELECT match_class, skybiz_record, count(*) FROM {MATCHES} GROUP BY 1, 2 ORDER BY 1, 2"
        )
        print_table(
            "Identity matches (customer_matches; one row per business: v_businesses)",
            ["class", "SkyBiz record from", "pairs"],
            [[_fmt(c), _fmt(r), n] for c, r, n in classes],
        )


def _einvoice_readiness(wh: Any) -> None:
    """Businesses ready for an e-invoice, and how many each reason holds back (v_einvoice_readiness)."""
    from pipelines.einvoice.readiness import readiness_counts

    counts = readiness_counts(wh)
    if counts is None or not counts.businesses:
        return
    print_table(
        f"E-invoice readiness: {counts.ready} of {counts.businesses} businesses ready "
        f"({counts.share_ready:.1%}); why the others are not (v_einvoice_readiness)",
        ["reason", "businesses", "field to fix"],
        [[r.reason, r.businesses, _fmt(r.field)] for r in counts.reasons],
    )


def _style(state: str) -> str:
    colour = {"gap": "red", "failed": "red", "running": "yellow"}.get(state)
    return f"[{colour}]{state}[/]" if colour else state


def _span(start: date | None, end: date | None) -> str:
    return f"{start} → {end}" if start else ""


def _short(text: str | None) -> str | None:
    if text is None or len(text) <= _ERROR_CHARS:
        return text
    return text[: _ERROR_CHARS - 1] + "…"


# -- sql --------------------------------------------------------------------------------------------------


def _sql(args: argparse.Namespace) -> int:
    from pipelines.warehouse import open_warehouse

    with open_warehouse(args.warehouse, read_only=True) as wh:
        # Exactly what the analyst typed, with no parameters: neither driver parses it for placeholders, so
        # comments, $$ bodies, '%s' in strings and Postgres's jsonb ? operators mean what the server says.
        names, rows = wh.query_table(args.query)
    shown = rows[: args.max_rows]
    more = f", first {len(shown)} shown" if len(rows) > len(shown) else ""
    print_table(
        f"{len(rows)} row{'s' if len(rows) != 1 else ''}{more}",
        names,
        [[_fmt(v) for v in row] for row in shown],
    )
    return 0


def _fmt(value: Any) -> Any:
    """Values as an analyst reads them: timestamps (UTC) to the second, decimals as written, text unstyled."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return f"{value:,.2f}"
    return value
