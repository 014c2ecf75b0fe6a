"""``skysmart extract --source <source>``: read a date range from a vendor into the raw lake, by window.

Configuration comes from ``SKYSMART_*`` variables (:meth:`pipelines.config.Settings.from_env`); ``--lake``
overrides ``SKYSMART_LAKE``. Progress goes to stderr (when it is a terminal), the summary table to stdout.
Failures surface as typed errors, which the dispatcher turns into a one-line reason and an exit code.
"""

from __future__ import annotations

import argparse
import time
from contextlib import ExitStack
from datetime import date
from typing import Any

from pipelines.cli import options
from pipelines.config import Settings
from pipelines.errors import WindowError
from pipelines.sources import registry
from pipelines.windows import Window, plan_windows


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``extract``."""
    parser = sub.add_parser(
        "extract",
        help="extract customers from SkyBiz or SmartAcc into the raw lake",
        description=(
            "Read every window of a date range (Malaysia dates, both inclusive; month-aligned windows of at "
            "most 31 days) and replace raw/source=<source>/entity=customers/window=<key>/ in the lake."
        ),
    )
    options.add_source(parser)
    # The positional form (`extract skybiz …`) of earlier releases still works, unlisted.
    parser.add_argument("positional_source", nargs="?", choices=registry.names(), help=argparse.SUPPRESS)
    parser.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="first date (inclusive)")
    parser.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="last date (inclusive)")
    parser.add_argument(
        "--window",
        metavar="YYYY-MM-DD_YYYY-MM-DD",
        help="extract exactly this window instead of a planned range (at most 31 days)",
    )
    options.add_lake(parser)
    options.add_create(parser)
    parser.set_defaults(handler=run)


def parse_date(text: str | None, option: str) -> date:
    """A ``YYYY-MM-DD`` option value, or a :class:`WindowError` that says which option is wrong."""
    if not text:
        raise WindowError(f"{option} is required (YYYY-MM-DD), or give --window")
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise WindowError(f"{option} {text!r} is not a date in YYYY-MM-DD form") from None


def chosen_sources(args: argparse.Namespace) -> tuple[str, ...]:
    """``--source`` (or the older positional form); a ``--window`` names one source's window."""
    if args.positional_source and args.source not in ("all", args.positional_source):
        raise WindowError(f"source given twice: {args.positional_source} and --source {args.source}")
    chosen = (args.positional_source,) if args.positional_source else options.sources(args)
    if args.window and len(chosen) > 1:
        raise WindowError(
            "--window is one source's window: add --source " + " or --source ".join(registry.default_names())
        )
    return chosen


def plan(args: argparse.Namespace, source: str) -> list[Window]:
    """The windows the arguments ask for, of one source."""
    if args.window:
        if args.date_from or args.date_to:
            raise WindowError("give either --window or --from/--to, not both")
        return [Window.parse(source, args.window.strip())]
    return plan_windows(source, parse_date(args.date_from, "--from"), parse_date(args.date_to, "--to"))


def run(args: argparse.Namespace) -> int:
    """Extract each chosen source's planned windows, then print one summary row per window."""
    sources = chosen_sources(args)
    plans = {source: plan(args, source) for source in sources}  # every date is checked before any request
    for source in sources:
        _run(args, source, plans[source])
    return 0


def _run(args: argparse.Namespace, source: str, windows: list[Window]) -> None:
    from pipelines.cli.ui import console, make_progress, print_table
    from pipelines.extract import ExtractProgress, ExtractResult, extract_window
    from pipelines.lake import Lake
    from pipelines.steps import make_client

    settings = Settings.from_env()
    lake = Lake(options.lake_url(args, writes=True))
    results: list[ExtractResult] = []
    started = time.perf_counter()
    total_rows = 0
    with ExitStack() as stack:
        client = stack.enter_context(make_client(settings, source))
        progress = stack.enter_context(make_progress())
        task = progress.add_task(f"extract {source}", total=len(windows), detail="")

        def on_page(event: ExtractProgress) -> None:
            elapsed = max(time.perf_counter() - started, 1e-6)
            rows = total_rows + event.rows
            rate = rows / elapsed
            progress.update(
                task, detail=f"{event.window} · page {event.pages:,} · {rows:,} rows · {rate:,.0f} rows/s"
            )

        for window in windows:
            result = extract_window(client, window, lake, progress=on_page)
            results.append(result)
            total_rows += result.rows
            progress.advance(task)

    seconds = time.perf_counter() - started
    pages = sum(r.pages for r in results)
    print_table(
        f"{source} → {lake.url}/raw/source={source}/entity=customers",
        ("window", "rows", "pages", "seconds", "rows/s", "sha256"),
        [_row(r.window, r.rows, r.pages, r.seconds, r.sha256[:12]) for r in results]
        + [_row("total", total_rows, pages, seconds, "")],
    )
    # soft_wrap: the closing line is what scripts grep for, so it is never broken at the terminal width.
    console.print(
        f"extracted {len(results)} window(s), {total_rows:,} rows into {lake.url}",
        soft_wrap=True,
        markup=False,
    )


def _row(window: str, rows: int, pages: int, seconds: float, sha: str) -> tuple[Any, ...]:
    return (window, rows, pages, round(seconds, 2), round(rows / seconds) if seconds > 0 else None, sha)
