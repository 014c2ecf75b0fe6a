"""``skysmart report``: one self-contained HTML page of the warehouse and the lake's quality results."""

from __future__ import annotations

import argparse
from typing import Any

from pipelines.cli import options
from pipelines.cli.ui import console

# The report package (pandas through the warehouse, matplotlib) loads inside the handler, so
# `skysmart --help` stays instant.


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``report``."""
    report = sub.add_parser(
        "report",
        help="write one HTML page: coverage, loads, quarantine, quality results, push and identity",
        description=(
            "Write one self-contained HTML file (inline charts, no scripts, nothing fetched from the "
            "network) showing the warehouse's coverage per source and month, rows loaded and quarantined "
            "over time, quarantine by rule, quality results per expectation with links to each window's "
            "page in the lake, push outcomes and identity classes. Customers appear by key only."
        ),
    )
    options.add_warehouse(report)
    options.add_lake(report)
    report.add_argument(
        "--out", metavar="FILE", default="report.html", help="file to write (default: ./report.html)"
    )
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from pipelines.report import write_report

    path = write_report(options.warehouse_url(args, must_exist=True), options.lake_url(args), args.out)
    console.print(str(path), soft_wrap=True, highlight=False)
    return 0
