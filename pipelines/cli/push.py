"""``skysmart push``: create the SmartAcc customers SkyBiz lacks, through the outbox, exactly once.

``--dry-run`` prints what would be created, what is invalid and why, and what SkyBiz already has, and
changes nothing — not SkyBiz, not the outbox, not even by creating the outbox table. A real run shows a
progress bar on stderr and a summary table on stdout; the outbox table ``skybiz_push_outbox`` is the log.

A real run first checks that the warehouse holds SkyBiz without gaps from the declared start of its history
(``--skybiz-covered-from``, else ``SKYSMART_PUSH_SKYBIZ_COVERED_FROM``; no default) through today (else
customers SkyBiz has would look missing and be created twice) and refuses with the missing days and the
exact commands to run; ``--allow-partial-coverage`` pushes anyway. What SkyBiz already has comes from
identity resolution (``customer_matches``), rebuilt first when a load finished since. A dry run prints
the same problem before and after its lists.

Exit codes (besides the dispatcher's): 6 when some customers need review (a code conflict), 4 when some
outcomes are still unknown after the run (SkyBiz kept failing; the next run settles them first), 2 when
the push was refused because SkyBiz coverage is incomplete (like a missing lake window: load it first).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import Any

from pipelines.cli import options
from pipelines.config import Settings
from pipelines.errors import ConfigError

EXIT_NEEDS_REVIEW = 6
EXIT_UNRESOLVED = 4


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``push``."""
    parser = sub.add_parser(
        "push",
        help="create SmartAcc customers that SkyBiz lacks (batches of ≤500, exactly once)",
        description=(
            "Select current SmartAcc customers with no SkyBiz counterpart from the warehouse, map them to "
            "SkyBiz create documents (data_contracts/smartacc_to_skybiz.yaml), check them client-side and "
            "send them in batches of at most 500, recording every step in skybiz_push_outbox."
        ),
    )
    parser.add_argument("--dry-run", action="store_true", help="show what would happen; change nothing")
    parser.add_argument("--limit", type=int, metavar="N", help="take on at most N customers")
    parser.add_argument(
        "--warehouse", metavar="URL", help="DuckDB path or postgresql:// URL (default: SKYSMART_WAREHOUSE)"
    )
    parser.add_argument(
        "--currencies",
        metavar="CODES",
        help="SkyBiz currency table, comma-separated (default: SKYSMART_PUSH_CURRENCIES, else the mapping's)",
    )
    parser.add_argument(
        "--skybiz-covered-from",
        metavar="YYYY-MM-DD",
        help=(
            "first day of the tenant's SkyBiz history; SkyBiz must be loaded from it through today "
            "(default: SKYSMART_PUSH_SKYBIZ_COVERED_FROM; no default beyond that)"
        ),
    )
    parser.add_argument(
        "--allow-partial-coverage",
        action="store_true",
        help=(
            "push even though SkyBiz is not loaded without gaps from its declared start to recently "
            "(SKYSMART_PUSH_SKYBIZ_COVERED_FROM, SKYSMART_PUSH_MAX_STALENESS_DAYS); risks duplicates"
        ),
    )
    parser.add_argument(
        "--show", type=int, default=20, metavar="N", help="rows listed per section of a dry run (default 20)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Plan or push, then print the summary."""
    from pipelines.push import PushSettings
    from pipelines.warehouse import open_warehouse

    if args.limit is not None and args.limit < 0:
        raise ConfigError("--limit must be 0 or more", field="--limit")
    settings = Settings.from_env()
    push_settings = PushSettings.from_env().declaring(args.skybiz_covered_from)
    if args.currencies is not None:
        codes = tuple(c.strip().upper() for c in args.currencies.split(",") if c.strip())
        push_settings = dataclasses.replace(push_settings, currencies=codes or None)
    url = options.warehouse_url(args, must_exist=True)  # a typo must not become a fresh, empty warehouse
    with open_warehouse(url) as warehouse:
        if args.dry_run:
            return _dry_run(warehouse, args, push_settings)
        return _push(warehouse, settings, args, push_settings)


def _dry_run(warehouse: Any, args: argparse.Namespace, push_settings: Any) -> int:
    from pipelines.cli.ui import console
    from pipelines.push import plan_push

    plan = plan_push(warehouse, limit=args.limit, settings=push_settings)
    result = plan.result()
    show = max(args.show, 0)
    _coverage_warning(result.coverage_problem, refused=True)
    _section(
        f"would create ({result.to_create:,} in {result.batches:,} batch(es))",
        ("customer_key", "CusCode", "CusName", "CurCode", "D_ay", "CategoryCode", "note"),
        [
            (
                i.customer_key,
                i.cus_code,
                i.document.get("CusName"),
                i.document.get("CurCode"),
                i.document.get("D_ay"),
                i.document.get("CategoryCode"),
                i.reason or "",
            )
            for i in plan.of("create", "verify")
        ],
        show,
    )
    _section(
        f"invalid — never sent ({result.invalid:,})",
        ("customer_key", "CusCode", "reason"),
        [(i.customer_key, i.cus_code, i.reason) for i in plan.of("invalid")],
        show,
    )
    _section(
        f"held from earlier runs ({result.rejected + result.needs_review:,})",
        ("customer_key", "CusCode", "state", "reason"),
        [(i.customer_key, i.cus_code, i.action, i.reason) for i in plan.of("rejected", "needs_review")],
        show,
    )
    _section(
        f"already in SkyBiz ({result.already_exists:,})",
        ("customer_key", "derived CusCode", "SkyBiz CusCode", "matched by"),
        [(c.customer_key, c.cus_code, c.skybiz_code, c.matched_by) for c in plan.counterparts],
        show,
    )
    _summary(result, "push (dry run)")
    _coverage_warning(result.coverage_problem, refused=True)
    console.print("dry run: nothing was sent and nothing was written")
    return 0


def _coverage_warning(problem: str | None, *, refused: bool) -> None:
    """Say loudly that the warehouse's SkyBiz data is incomplete (stdout, beside the summary it qualifies)."""
    from rich.markup import escape

    from pipelines.cli.ui import console

    if problem is None:
        return
    outcome = (
        "a real push would be refused (--allow-partial-coverage overrides)"
        if refused
        else "pushed anyway (--allow-partial-coverage)"
    )
    console.print(f"[bold red]SkyBiz coverage incomplete — {escape(outcome)}:[/] {escape(problem)}")


def _section(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], show: int) -> None:
    from pipelines.cli.ui import console, print_table

    if not rows:
        return
    if show > 0:
        print_table(title, columns, rows[:show])
    if len(rows) > show:
        console.print(f"{title}: {len(rows) - show:,} more not shown (--show N)")


def _push(warehouse: Any, settings: Settings, args: argparse.Namespace, push_settings: Any) -> int:
    from pipelines.cli.ui import console, make_progress, print_table
    from pipelines.push import Outbox, PushProgress, push_customers
    from pipelines.sources.skybiz.client import SkyBizClient

    with SkyBizClient(settings.require_skybiz()) as client, make_progress() as progress:
        task = progress.add_task("push skybiz", total=None, detail="")

        def on_progress(event: PushProgress) -> None:
            progress.update(
                task,
                total=event.total,
                completed=event.settled,
                detail=f"{event.requests:,} req · {event.created:,} created · {event.rejected:,} refused",
            )

        result = push_customers(
            warehouse,
            client,
            limit=args.limit,
            settings=push_settings,
            allow_partial_coverage=args.allow_partial_coverage,
            progress=on_progress,
        )
    _summary(result, f"push {result.run_id}")
    _coverage_warning(result.coverage_problem, refused=False)
    outbox = Outbox(warehouse)
    problems = warehouse.query(
        "SELECT customer_key, cus_code, state, refused_by, reason FROM skybiz_push_outbox "
        "WHERE state IN ('rejected', 'needs_review') ORDER BY state DESC, customer_key"
    )
    _section(
        "needs attention (all runs)",
        ("customer_key", "CusCode", "state", "refused by", "reason"),
        problems,
        args.show,
    )
    print_table("outbox (all runs)", ("state", "customers"), sorted(outbox.counts().items()))
    console.print("details: SELECT * FROM skybiz_push_outbox WHERE state IN ('rejected', 'needs_review')")
    if result.needs_review:
        return EXIT_NEEDS_REVIEW
    if result.unresolved:
        return EXIT_UNRESOLVED
    return 0


def _summary(result: Any, title: str) -> None:
    from pipelines.cli.ui import print_table

    rows = [
        ("selected", result.selected),
        ("valid", result.valid),
        ("invalid (never sent)", result.invalid),
        ("already in SkyBiz", result.already_exists),
        ("created", result.created),
        ("  of which confirmed after a lost answer", result.confirmed),
        ("rejected by SkyBiz", result.rejected),
        ("needs review", result.needs_review),
        ("unresolved", result.unresolved),
        ("create requests", result.requests),
        ("batches saved" if not result.dry_run else "batches needed", result.batches),
        ("read-backs", result.reads),
    ]
    print_table(title, ("", "customers / requests"), rows)
