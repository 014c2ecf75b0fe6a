"""``skysmart normalize``: raw windows of a date range into the common model and the quarantine.

Windows are planned like the extract plans them (month-aligned, Malaysia dates, both inclusive); windows
that were never extracted are listed and skipped. Progress goes to stderr (when it is a terminal), the
summary tables to stdout. ``--lake`` overrides ``SKYSMART_LAKE``.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

from pipelines.cli import options
from pipelines.errors import LakeError
from pipelines.windows import Window, plan_windows


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``normalize``."""
    parser = sub.add_parser(
        "normalize",
        help="normalize raw windows into the common customer model (and the quarantine)",
        description=(
            "Normalize every extracted raw window of a date range (Malaysia dates, both inclusive) into "
            "normalized/ and quarantine/ in the lake; raw rows = normalized + quarantined for each window."
        ),
    )
    options.add_range(parser)
    options.add_source(parser)
    options.add_lake(parser)
    parser.set_defaults(handler=run)


def plan(args: argparse.Namespace) -> list[Window]:
    """The windows the arguments ask for, source by source."""
    start, end = options.date_range(args)
    return [w for source in options.sources(args) for w in plan_windows(source, start, end)]


def run(args: argparse.Namespace) -> int:
    """Normalize the planned windows that were extracted; print per-window and per-reason summaries."""
    from pipelines.cli.ui import console, print_table, track
    from pipelines.lake import CUSTOMERS, RAW, Lake
    from pipelines.normalize import NormalizeResult, normalize_window

    windows = plan(args)
    lake = Lake(options.lake_url(args))
    present = [w for w in windows if lake.manifest(RAW, w.source, CUSTOMERS, w) is not None]
    missing = [w for w in windows if w not in present]
    if not present:
        raise LakeError(
            f"no extracted raw windows between {args.date_from} and {args.date_to} in {lake.url}; "
            "run skysmart extract first"
        )
    results: list[NormalizeResult] = []
    started = time.perf_counter()
    for window in track("normalize", present):
        results.append(normalize_window(lake, window.source, window))
    seconds = time.perf_counter() - started

    rows_in = sum(r.rows_in for r in results)
    print_table(
        f"normalize → {lake.url}",
        ("source", "window", "rows in", "normalized", "quarantined", "seconds"),
        [(r.source, r.window, r.rows_in, r.normalized, r.quarantined, f"{r.seconds:.2f}") for r in results]
        + [
            (
                "total",
                f"{len(results)} window(s)",
                rows_in,
                sum(r.normalized for r in results),
                sum(r.quarantined for r in results),
                f"{seconds:.2f}",
            )
        ],
    )
    reasons: Counter[tuple[str, str]] = Counter()
    for r in results:
        for rule, count in r.quarantine_reasons.items():
            reasons[(r.source, rule)] += count
    if reasons:
        print_table(
            "quarantined by reason",
            ("source", "rule", "rows"),
            [(source, rule, count) for (source, rule), count in sorted(reasons.items())],
        )
    if missing:
        console.print(
            f"skipped {len(missing)} window(s) never extracted: {', '.join(str(w) for w in missing)}"
        )
    console.print(f"normalized {len(results)} window(s), {rows_in:,} raw rows, in {seconds:.1f} s")
    return 0
