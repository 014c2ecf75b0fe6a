"""Whether the warehouse holds enough of SkyBiz for "no SkyBiz counterpart" to mean "SkyBiz lacks it".

The push decides what SkyBiz lacks from the warehouse, which holds only the SkyBiz customers whose
``DateTimeModified`` fell in windows that were loaded. After a partial backfill, a SmartAcc customer whose
SkyBiz twin was last modified outside the loaded windows looks missing, and a real push would create it a
second time under our CusCode. So a real push first asks this module whether SkyBiz is loaded without gaps
from a configured date up to recently, and refuses (:class:`~pipelines.errors.PushCoverageError`) if not.

Days count as in the ``v_window_coverage`` view: a day is covered when a successful SkyBiz load's window
holds it. One thing more than the view: a window never covers days after its load started (the current
month's window, loaded on the 10th, says nothing about customers modified on the 20th), otherwise a window
that ends in the future would look fresh for weeks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

from pipelines.contracts import quote_ident
from pipelines.errors import PushCoverageError
from pipelines.push.ports import WarehouseLike
from pipelines.warehouse.schema import AUDIT
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
        covered_from: the configured first day that must be loaded (``None``: the first day loaded).
        loaded: the days successful SkyBiz loads cover, merged into disjoint ranges, oldest first.
        gaps: days from ``required_from`` up to the newest loaded day that no successful load covers.
    """

    today: date
    max_staleness_days: int
    covered_from: date | None
    loaded: tuple[DayRange, ...]
    gaps: tuple[DayRange, ...]

    @property
    def required_from(self) -> date | None:
        """The first day that must be loaded; ``None`` when nothing is configured or loaded."""
        if self.covered_from is not None:
            return self.covered_from
        return self.loaded[0].start if self.loaded else None

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
        if not self.gaps and not self.stale:
            return None
        facts: list[str] = []
        if self.newest is None:
            facts.append(f"No successful SkyBiz load in the warehouse ({AUDIT} has none)")
        if self.gaps:
            shown = ", ".join(str(gap) for gap in self.gaps[:_SHOWN])
            more = f" and {len(self.gaps) - _SHOWN} more" if len(self.gaps) > _SHOWN else ""
            since = f"{COVERED_FROM_VAR}={self.covered_from}" if self.covered_from else "the first day loaded"
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
        if not missing:  # nothing loaded and no date configured: the range is the tenant's to say
            load = (
                f"load SkyBiz from the start of its history: skysmart run --source skybiz --from YYYY-MM-DD "
                f"--to {self.today} (and set {COVERED_FROM_VAR}=YYYY-MM-DD)"
            )
        else:
            ranges = missing if len(missing) <= 3 else (DayRange(missing[0].start, missing[-1].end),)
            load = "load them: " + "; ".join(
                f"skysmart run --source skybiz --from {r.start} --to {r.end}" for r in ranges
            )
        return (
            f"To fix, {load} — or the skysmart_backfill DAG with those start/end dates and sources "
            '["skybiz"]. To push anyway: --allow-partial-coverage (DAG param allow_partial_coverage).'
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
        covered_from: the first day that must be loaded; ``None`` takes the first day loaded, which
            means "no gaps after the first load".
        max_staleness_days: how many days the newest loaded day may lie before ``today``.
    """
    loaded = _merge(DayRange(start, end) for start, end in loads if start <= end)
    required_from = covered_from if covered_from is not None else (loaded[0].start if loaded else None)
    gaps = _gaps(loaded, required_from) if required_from is not None else ()
    return Coverage(today, max_staleness_days, covered_from, loaded, gaps)


def skybiz_coverage(
    warehouse: WarehouseLike,
    *,
    covered_from: date | None = None,
    max_staleness_days: int = 2,
    today: date | None = None,
) -> Coverage:
    """Read the successful SkyBiz loads from ``load_audit`` and assess them (``today``: Malaysia's).

    A warehouse without ``load_audit`` has loaded nothing; the check itself writes nothing.
    """
    today = today if today is not None else datetime.now(MYT).date()
    loads: list[tuple[date, date]] = []
    if warehouse.table_exists(AUDIT):
        rows = warehouse.query(
            f"SELECT window_start, window_end, started_at FROM {quote_ident(AUDIT)} "
            "WHERE source = ? AND status = 'succeeded'",
            (SOURCE,),
        )
        loads = [(start, min(end, _myt_date(started))) for start, end, started in rows]
    return assess_coverage(
        loads, today=today, covered_from=covered_from, max_staleness_days=max_staleness_days
    )


def _myt_date(moment: datetime) -> date:
    """The Malaysia date of a warehouse timestamp (stored as UTC; both engines hand it back naive)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(MYT).date()


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
