"""Whether the warehouse holds enough of SkyBiz for "no SkyBiz counterpart" to mean "SkyBiz lacks it".

The push decides what SkyBiz lacks from the warehouse, which holds only the SkyBiz customers whose
``DateTimeModified`` fell in windows that were loaded. After a partial backfill, a SmartAcc customer whose
SkyBiz twin was last modified outside the loaded windows looks missing, and a real push would create it a
second time. So a real push first asks this module whether SkyBiz is loaded without gaps from the *declared*
start of the tenant's SkyBiz history (``SKYSMART_PUSH_SKYBIZ_COVERED_FROM``, ``--skybiz-covered-from``, the
DAG's ``skybiz_covered_from``) through today, and refuses (:class:`~pipelines.errors.PushCoverageError`) if
not. There is no default: "the first day ever loaded" would make a partial history look complete.

The covered days are read from the ``v_window_coverage`` view (each window up to its ``covered_through``:
a load never covers days after it started), the one place coverage is computed; ``skysmart status`` prints
this module's verdict from the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from pipelines.contracts import quote_ident
from pipelines.errors import PushCoverageError
from pipelines.push.ports import WarehouseLike
from pipelines.warehouse.schema import AUDIT, V_COVERAGE
from pipelines.windows import MYT

SOURCE: Final = "skybiz"
COVERED_FROM_VAR: Final = "SKYSMART_PUSH_SKYBIZ_COVERED_FROM"
STALENESS_VAR: Final = "SKYSMART_PUSH_MAX_STALENESS_DAYS"
# Ranges named one by one in a message; more are summarised (a message is read, not parsed).
_SHOWN: Final = 5
_ONE_DAY: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True, order=True)
class DayRange:
    """Malaysia calendar dates ``start``..``end``, both inclusive."""

    start: date
    end: date

    @property
    def days(self) -> int:
        """Inclusive day count."""
        return (self.end - self.start).days + 1

    def __str__(self) -> str:
        unit = "day" if self.days == 1 else "days"
        return f"{self.start.isoformat()}..{self.end.isoformat()} ({self.days} {unit})"


@dataclass(frozen=True, slots=True)
class Coverage:
    """How much of SkyBiz the warehouse holds, against what a real push needs.

    Attributes:
        today: the Malaysia date the check was made for.
        max_staleness_days: how many days the newest loaded day may lie before ``today``.
        covered_from: the declared first day of SkyBiz's history (``None``: undeclared, a push refuses).
        loaded: the days successful SkyBiz loads cover, merged into disjoint ranges, oldest first.
        gaps: days from ``covered_from`` up to the newest loaded day that no successful load covers.
    """

    today: date
    max_staleness_days: int
    covered_from: date | None
    loaded: tuple[DayRange, ...]
    gaps: tuple[DayRange, ...]

    @property
    def required_from(self) -> date | None:
        """The first day that must be loaded: the declared start (``None`` when not declared)."""
        return self.covered_from

    @property
    def newest(self) -> date | None:
        """The newest day a successful SkyBiz load covers; ``None`` when there is none."""
        return self.loaded[-1].end if self.loaded else None

    @property
    def stale(self) -> bool:
        """Whether the newest loaded day is older than the staleness allows (or nothing is loaded)."""
        return self.newest is None or (self.today - self.newest).days > self.max_staleness_days

    @property
    def missing(self) -> tuple[DayRange, ...]:
        """What to load to make the push safe: the gaps, then the days since the newest loaded one."""
        if self.newest is None:
            return (DayRange(self.required_from, self.today),) if self.required_from else ()
        tail = (DayRange(self.newest + _ONE_DAY, self.today),) if self.stale else ()
        return (*self.gaps, *tail)

    @property
    def problem(self) -> str | None:
        """Why a real push must not trust the warehouse, and what to run; ``None`` when it may."""
        if self.covered_from is None:
            return (
                f"The start of the tenant's SkyBiz history is not declared ({COVERED_FROM_VAR}, "
                "--skybiz-covered-from, DAG param skybiz_covered_from), so skysmart cannot tell whether "
                "every SkyBiz customer is in the warehouse; a SmartAcc customer whose SkyBiz twin was not "
                "loaded would be created in SkyBiz a second time. To fix, load SkyBiz from its first day "
                f"and declare it: skysmart run --source skybiz --from YYYY-MM-DD --to {self.today}, then "
                "skysmart push --skybiz-covered-from YYYY-MM-DD (YYYY-MM-DD: the day the tenant started "
                "using SkyBiz)."
            )
        if not self.gaps and not self.stale:
            return None
        facts: list[str] = []
        if self.newest is None:
            facts.append(f"No successful SkyBiz load in the warehouse ({AUDIT} has none)")
        if self.gaps:
            shown = ", ".join(str(gap) for gap in self.gaps[:_SHOWN])
            more = f" and {len(self.gaps) - _SHOWN} more" if len(self.gaps) > _SHOWN else ""
            since = f"{COVERED_FROM_VAR}={self.covered_from}"
            facts.append(
                f"SkyBiz is loaded with {len(self.gaps)} gap(s) since {self.required_from} ({since}): "
                f"{shown}{more} — {sum(g.days for g in self.gaps)} days no successful load covers"
            )
        if self.newest is not None and self.stale:
            facts.append(
                f"SkyBiz is stale: the newest loaded day is {self.newest}, "
                f"{(self.today - self.newest).days} days before today ({self.today}, Malaysia), "
                f"{STALENESS_VAR} allows {self.max_staleness_days}"
            )
        return (
            "; ".join(facts)
            + ". SkyBiz customers last modified on missing days are not in the warehouse, so their "
            "SmartAcc twins look missing and a real push would create them in SkyBiz a second time. "
            + self._remedy()
        )

    def _remedy(self) -> str:
        missing = self.missing
        ranges = missing if len(missing) <= 3 else (DayRange(missing[0].start, missing[-1].end),)
        load = "; ".join(f"skysmart run --source skybiz --from {r.start} --to {r.end}" for r in ranges)
        return (
            f"To fix, run: {load}; then skysmart push --skybiz-covered-from {self.covered_from} — or the "
            'skysmart_backfill DAG with those start/end dates and sources ["skybiz"]. To push anyway: '
            "--allow-partial-coverage (DAG param allow_partial_coverage)."
        )

    def error(self) -> PushCoverageError | None:
        """The refusal a real push raises, or ``None`` when coverage is complete."""
        problem = self.problem
        if problem is None:
            return None
        return PushCoverageError(
            problem,
            source=SOURCE,
            gaps=len(self.gaps),
            newest_loaded=self.newest.isoformat() if self.newest else "none",
        )


def assess_coverage(
    loads: Iterable[tuple[date, date]],
    *,
    today: date,
    covered_from: date | None = None,
    max_staleness_days: int = 2,
) -> Coverage:
    """Coverage from the day ranges of successful SkyBiz loads (pure: no warehouse, no clock).

    Args:
        loads: ``(first day, last day)`` of each successful load, both inclusive, in any order.
        today: the Malaysia date to measure staleness against.
        covered_from: the declared first day of SkyBiz's history; ``None`` (not declared) is a problem.
        max_staleness_days: how many days the newest loaded day may lie before ``today``.
    """
    loaded = _merge(DayRange(start, end) for start, end in loads if start <= end)
    gaps = _gaps(loaded, covered_from) if covered_from is not None else ()
    return Coverage(today, max_staleness_days, covered_from, loaded, gaps)


def skybiz_coverage(
    warehouse: WarehouseLike,
    *,
    covered_from: date | None = None,
    max_staleness_days: int = 2,
    today: date | None = None,
) -> Coverage:
    """Read the loaded SkyBiz windows from ``v_window_coverage`` and assess them (``today``: Malaysia's).

    A warehouse without the view has loaded nothing; the check itself writes nothing.
    """
    today = today if today is not None else datetime.now(MYT).date()
    return assess_coverage(
        covered_windows(warehouse, SOURCE),
        today=today,
        covered_from=covered_from,
        max_staleness_days=max_staleness_days,
    )


def covered_windows(warehouse: WarehouseLike, source: str) -> list[tuple[date, date]]:
    """``(window_start, covered_through)`` of each window of ``source`` a successful load covers."""
    if not warehouse.table_exists(V_COVERAGE):
        return []
    rows = warehouse.query(
        f"SELECT window_start, covered_through FROM {quote_ident(V_COVERAGE)} "
        "WHERE source = $1 AND coverage = 'loaded'",
        (source,),
    )
    return [(start, end) for start, end in rows]


def _merge(ranges: Iterable[DayRange]) -> tuple[DayRange, ...]:
    """Overlapping or touching ranges joined; a daily window inside a monthly one disappears in it."""
    merged: list[DayRange] = []
    for current in sorted(ranges):
        if merged and current.start <= merged[-1].end + _ONE_DAY:
            last = merged[-1]
            merged[-1] = DayRange(last.start, max(last.end, current.end))
        else:
            merged.append(current)
    return tuple(merged)


def _gaps(loaded: Sequence[DayRange], required_from: date) -> tuple[DayRange, ...]:
    """Days from ``required_from`` to the newest loaded day that no loaded range holds."""
    gaps: list[DayRange] = []
    cursor = required_from
    for covered in loaded:
        if covered.start > cursor:
            gaps.append(DayRange(cursor, covered.start - _ONE_DAY))
        cursor = max(cursor, covered.end + _ONE_DAY)
    return tuple(gaps)
