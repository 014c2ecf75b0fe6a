"""``skysmart identity``: rebuild identity resolution's ``customer_matches`` and show what it found.

``skysmart run`` and the push rebuild the matches themselves; this command is for after a manual
``skysmart load``, or to look: pairs per class, and the ``possible`` ones a person should decide.
"""

from __future__ import annotations

import argparse
from typing import Any

from pipelines.cli import options


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``identity``."""
    parser = sub.add_parser(
        "identity",
        help="rebuild customer_matches (which SkyBiz and SmartAcc records are one business) and summarise",
        description=(
            "Match every extracted SkyBiz record (normalized or quarantined) against every current SmartAcc "
            "customer and replace customer_matches; print pairs per class and the first possible ones."
        ),
    )
    options.add_warehouse(parser)
    parser.add_argument(
        "--show", type=int, default=10, metavar="N", help="possible pairs to list (default 10)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Rebuild, then print the summary and the ``possible`` pairs."""
    from pipelines.cli.ui import print_table
    from pipelines.identity import rebuild_matches
    from pipelines.warehouse import open_warehouse

    with open_warehouse(options.warehouse_url(args, must_exist=True)) as warehouse:
        summary = rebuild_matches(warehouse)
        possible = warehouse.query(
            "SELECT skybiz_code, smartacc_id, skybiz_record, evidence FROM customer_matches "
            "WHERE match_class = 'possible' ORDER BY name_score DESC, skybiz_code, smartacc_id LIMIT $1",
            (max(args.show, 0),),
        )
    print_table(
        "customer_matches rebuilt",
        ["SkyBiz records", "quarantined", "SmartAcc records", "same", "possible", "different", "seconds"],
        [
            [
                summary.skybiz_records,
                summary.skybiz_quarantined,
                summary.smartacc_records,
                summary.same,
                summary.possible,
                summary.different,
                summary.seconds,
            ]
        ],
    )
    print_table(
        f"possible — a person decides (first {len(possible)})",
        ["SkyBiz", "SmartAcc", "SkyBiz record from", "evidence"],
        possible,
    )
    return 0
