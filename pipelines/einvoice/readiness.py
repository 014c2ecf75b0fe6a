"""Counts of ``v_einvoice_readiness`` by reason: what ``skysmart status`` and the HTML report show.

One query groups the view by its reason lists; the lists are split here, so both engines run the same
plain SQL and a business with two reasons counts once under each.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

from pipelines.einvoice.spec import NO_SMARTACC_RECORD, NOT_ASSESSED, load_spec

VIEW: Final = "v_einvoice_readiness"


@dataclass(frozen=True, slots=True)
class ReasonCount:
    """How many businesses a reason holds back, and which SmartAcc field to fix."""

    reason: str
    businesses: int
    field: str
    rule: str


@dataclass(frozen=True, slots=True)
class ReadinessCounts:
    """Businesses in the view, how many are ready, and the reasons of the rest (most frequent first)."""

    businesses: int
    ready: int
    reasons: tuple[ReasonCount, ...]

    @property
    def share_ready(self) -> float:
        """Ready businesses over all (0 when there are none)."""
        return self.ready / self.businesses if self.businesses else 0.0


_VIEW_REASONS: Final = {
    NO_SMARTACC_RECORD: (
        "-",
        "the business is in SkyBiz only: record it in SmartAcc with its e-invoice fields",
    ),
    NOT_ASSESSED: ("-", "loaded before the e-invoice checks: normalize and load its window again"),
}


def readiness_counts(warehouse: Any) -> ReadinessCounts | None:
    """Counts from a :class:`~pipelines.warehouse.Warehouse`; ``None`` if it lacks the view."""
    if not warehouse.table_exists(VIEW):
        return None
    rows = warehouse.query(f"SELECT ready, reasons, count(*) FROM {VIEW} GROUP BY ready, reasons")
    total = sum(int(n) for _, _, n in rows)
    ready = sum(int(n) for r, _, n in rows if r)
    counter: Counter[str] = Counter()
    for _, reasons, n in rows:
        for reason in (reasons or "").split(";"):
            if reason:
                counter[reason] += int(n)
    rules = {r.reason: (r.field, r.rule) for r in load_spec().rules} | _VIEW_REASONS
    order = {reason: i for i, reason in enumerate(rules)}
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], order.get(kv[0], len(order)), kv[0]))
    return ReadinessCounts(
        businesses=total,
        ready=ready,
        reasons=tuple(ReasonCount(r, n, *rules.get(r, ("?", "?"))) for r, n in ranked),
    )
