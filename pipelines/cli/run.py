"""``skysmart run``: the whole pipeline over a date range, without Airflow."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pipelines.cli import options


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the ``run`` command."""
    parser = sub.add_parser(
        "run",
        help="extract both sources, normalize, validate and load a date range",
        description=(
            "The whole pipeline over --from..--to (Malaysia dates, inclusive): windows extracted several "
            "at a time, normalized as they land, validated and loaded per source."
        ),
    )
    options.add_range(parser)
    options.add_source(parser)
    options.add_lake(parser)
    options.add_warehouse(parser)
    options.add_create(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import dataclasses

    from pipelines.cli.ui import console, make_progress, print_table, say
    from pipelines.config import Settings
    from pipelines.run import STAGES, run_pipeline
    from pipelines.steps import plan_range

    settings = Settings.from_env()
    settings = dataclasses.replace(
        settings,
        lake_url=options.lake_url(args, writes=True),
        warehouse_url=options.warehouse_url(args, writes=True),
    )
    start, end = options.date_range(args)
    sources = list(options.sources(args))
    windows = len(plan_range(start, end, sources))
    with make_progress() as progress:
        # One bar per stage: windows are extracted several at a time while earlier ones are normalized,
        # validated and loaded, so every stage moves at once.
        tasks = {stage: progress.add_task(f"{stage:9}", total=windows, detail="") for stage in STAGES}

        def on_stage(window_ref: str, stage: str, result: dict[str, Any] | None) -> None:
            if result is None:
                progress.update(tasks[stage], detail=window_ref)
            else:
                progress.advance(tasks[stage])

        summary = run_pipeline(settings, start, end, sources, progress=on_stage)

    print_table(
        f"skysmart run {summary.start}..{summary.end} ({summary.seconds:.1f} s)",
        ["window", "extracted", "normalized", "quarantined", "inserted", "updated", "unchanged", "status"],
        [
            [
                o.window_ref,
                o.results.get("extract", {}).get("rows"),
                o.results.get("normalize", {}).get("normalized"),
                o.results.get("normalize", {}).get("quarantined"),
                o.results.get("load", {}).get("inserted"),
                o.results.get("load", {}).get("updated"),
                o.results.get("load", {}).get("unchanged"),
                "ok" if o.ok else f"{o.error_stage} failed",
            ]
            for o in summary.outcomes
        ],
    )
    for outcome in summary.failed:
        # The error text is data (it ends in "[source=..., record=...]"): printed whole, never as markup.
        say((outcome.window_ref, "red"), f" {outcome.error_stage}: {outcome.error}")
    console.print(
        f"{summary.totals['windows']} windows, {summary.totals['rows_extracted']:,} rows extracted, "
        f"{summary.totals['normalized']:,} normalized, {summary.totals['quarantined']:,} quarantined, "
        f"{summary.totals['windows_failed']} failed"
    )
    console.print(f"lake: {settings.lake_url}   warehouse: {settings.warehouse_url}")
    console.print(
        f'query it: skysmart sql "SELECT * FROM v_customers LIMIT 10" (or: duckdb {settings.warehouse_url})'
    )
    for outcome in summary.failed:  # the reasons again on stderr, one line a window, for cron and scripts
        print(f"skysmart run: {outcome.window_ref} {outcome.error_stage}: {outcome.error}", file=sys.stderr)
    return summary.exit_code
