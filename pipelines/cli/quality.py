"""``skysmart validate``: run the contract's quality suite on every normalized window of a date range.

Windows are the ones committed in the lake's normalized layer that overlap ``--from``..``--to`` (whatever
cut normalized them: month windows of a backfill or the short windows of incremental runs). Each gets its
``validation.json`` and ``report.html`` in the quality layer. The summary table goes to stdout, progress to
stderr; when any window has error failures the command ends with a :class:`DataQualityError` (exit code 5)
after validating all of them, so one bad month does not hide the state of the others.
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from typing import TYPE_CHECKING, Any

from pipelines.cli import options
from pipelines.errors import DataQualityError, LakeError
from pipelines.windows import Window

if TYPE_CHECKING:
    from pipelines.lake import Lake
    from pipelines.quality import QualityResult


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``validate``."""
    parser = sub.add_parser(
        "validate",
        help="validate normalized customer windows against the contract's quality suite",
        description=(
            "Run the great-expectations suite generated from data_contracts/customer.yaml on every "
            "normalized window overlapping the range (Malaysia dates, both inclusive) and keep "
            "validation.json and report.html beside each window in the quality layer. Exit code 5 when "
            "any window has error-severity failures; warnings are reported only."
        ),
    )
    options.add_range(parser)
    options.add_source(parser)
    options.add_lake(parser)
    parser.set_defaults(handler=run)


def windows_in_range(lake: Lake, sources: tuple[str, ...], start: date, end: date) -> list[Window]:
    """Normalized windows of ``sources`` overlapping ``start``..``end``, oldest first per source."""
    from pipelines.lake import CUSTOMERS, NORMALIZED

    return [
        window
        for source in sources
        for window in lake.windows(NORMALIZED, source, CUSTOMERS)
        if window.start <= end and window.end >= start
    ]


def run(args: argparse.Namespace) -> int:
    """Validate each window with a progress bar, print the summary, raise when errors were found."""
    from pipelines.cli.ui import console, print_table, track
    from pipelines.lake import Lake
    from pipelines.quality import validate_windows

    start, end = options.date_range(args)
    sources = options.sources(args)
    lake = Lake(options.lake_url(args))
    windows = windows_in_range(lake, sources, start, end)
    if not windows:
        raise LakeError(
            f"no normalized windows of {', '.join(sources)} between {start} and {end} in lake {lake.url}; "
            "run skysmart normalize (or skysmart run) first"
        )
    results: list[QualityResult] = []
    started = time.perf_counter()
    # One great-expectations run per source for all its windows (in batches of rows): each window still
    # gets its own result and reports.
    for source in track("validate", [s for s in sources if any(w.source == s for w in windows)]):
        results += validate_windows(lake, source, [w for w in windows if w.source == source])
    seconds = time.perf_counter() - started

    print_table(
        f"quality of normalized customers in {lake.url}",
        ("source", "window", "rows", "expectations", "passed", "errors", "warnings", "status", "report"),
        [
            (
                r.source,
                r.window,
                r.rows,
                r.evaluated,
                r.passed,
                r.failed_errors,
                r.failed_warnings,
                "FAILED" if r.failed_errors else "warnings" if r.failed_warnings else "ok",
                _relative(r.report_html_url, lake),
            )
            for r in results
        ],
    )
    for r in results:
        if r.failed:
            console.print(f"{r.source}:{r.window}: {r.report_html_url}", markup=False)
            for failure in r.failures:
                console.print(f"  {failure.severity:<7} {failure.describe()}", markup=False)
    failed = [r for r in results if not r.success]
    console.print(
        f"validated {len(results)} window(s), {sum(r.rows for r in results):,} rows in {seconds:.1f} s; "
        f"{len(failed)} with error failures; reports under {lake.url}/quality/"
    )
    if failed:
        named = ", ".join(f"{r.source}:{r.window}" for r in failed[:5]) + (" ..." if len(failed) > 5 else "")
        raise DataQualityError(
            f"{len(failed)} of {len(results)} window(s) have error-severity failures ({named}); "
            f"first report: {failed[0].report_html_url}",
            failed_windows=len(failed),
        )
    return 0


def _relative(url: str | None, lake: Lake) -> str:
    """A report's location inside the lake, short enough for a table cell."""
    if not url:
        return ""
    prefix = lake.full_url(lake.root).rstrip("/") + "/"
    return url.removeprefix(prefix)
