"""Date windows: the unit of extraction, normalization, validation and loading.

A window is a range of *calendar dates in Malaysia time (UTC+08:00), both ends inclusive* — the way
SkyBiz reads ``date_from``/``date_to`` (shared/api/SKYBIZ.md §8) and the way SmartAcc's ``EditDate``
route is queried (shared/api/SMARTACC.md §9). Airflow speaks in half-open UTC intervals ``[start, end)``;
:func:`windows_for_interval` is the one place that converts between the two.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Final

from pipelines.errors import WindowError
from pipelines.sources import registry
from pipelines.sources.spec import SourceSpec

MYT: Final = timezone(timedelta(hours=8), "MYT")
SOURCES: Final = registry.default_names()
"""The sources run by default (``--source all``, the DAGs), as the registry found them at import."""
MAX_WINDOW_DAYS: Final = {spec.name: spec.max_window_days for spec in registry.specs()}
"""Each source's widest window at import; :func:`max_window_days` also knows sources registered later."""


def max_window_days(source: str) -> int:
    """The widest window (inclusive days) ``source`` accepts, from its ``SourceSpec``."""
    return _spec(source).max_window_days


def _spec(source: str) -> SourceSpec:
    spec = registry.find(source)
    if spec is None:
        raise WindowError(f"unknown source {source!r}; expected one of {', '.join(registry.names())}")
    return spec


@dataclass(frozen=True, slots=True, order=True)
class Window:
    """Calendar dates ``start``..``end`` in Malaysia time, both inclusive, for one source."""

    source: str
    start: date
    end: date

    def __post_init__(self) -> None:
        limit = max_window_days(self.source)
        if self.start > self.end:
            raise WindowError(
                f"window starts {self.start} after it ends {self.end}", source=self.source, window=self.key
            )
        if self.days > limit:
            raise WindowError(
                f"window spans {self.days} days; {self.source} accepts at most {limit}",
                source=self.source,
                window=self.key,
            )

    @property
    def key(self) -> str:
        """The lake partition value, ``YYYY-MM-DD_YYYY-MM-DD``."""
        return f"{self.start.isoformat()}_{self.end.isoformat()}"

    @property
    def days(self) -> int:
        """Inclusive day count, as SkyBiz reports it in ``date_range.days``."""
        return (self.end - self.start).days + 1

    @property
    def start_utc(self) -> datetime:
        """The first instant of the window, in UTC."""
        return datetime.combine(self.start, time.min, MYT).astimezone(UTC)

    @property
    def end_utc_exclusive(self) -> datetime:
        """The first instant after the window, in UTC."""
        return datetime.combine(self.end + timedelta(days=1), time.min, MYT).astimezone(UTC)

    def contains(self, moment: datetime) -> bool:
        """Whether an aware instant falls inside the window."""
        return self.start_utc <= moment < self.end_utc_exclusive

    @classmethod
    def parse(cls, source: str, key: str) -> Window:
        """Inverse of :attr:`key`."""
        try:
            start_s, end_s = key.split("_")
            return cls(source, date.fromisoformat(start_s), date.fromisoformat(end_s))
        except ValueError:
            raise WindowError(f"malformed window key {key!r}", source=source, window=key) from None

    @property
    def ref(self) -> str:
        """Source and window in one string, ``skybiz:2024-01-01_2024-01-31`` — what tasks pass around."""
        return f"{self.source}:{self.key}"

    @classmethod
    def from_ref(cls, ref: str) -> Window:
        """Inverse of :attr:`ref`."""
        source, sep, key = ref.partition(":")
        if not sep:
            raise WindowError(f"malformed window reference {ref!r}; expected SOURCE:FROM_TO")
        return cls.parse(source, key)

    def __str__(self) -> str:
        return self.ref


def plan_windows(source: str, start: date, end: date, *, max_days: int | None = None) -> list[Window]:
    """Split ``start``..``end`` (inclusive) into windows the source accepts.

    Windows are aligned to calendar months, so a backfill of five years is 60 windows and the same month
    always gets the same lake partition however the range was cut. ``max_days`` narrows them further.
    """
    widest = max_window_days(source)
    if start > end:
        raise WindowError(f"range starts {start} after it ends {end}", source=source)
    limit = min(max_days or widest, widest)
    if limit < 1:
        raise WindowError(f"max_days must be at least 1, got {max_days}", source=source)
    windows: list[Window] = []
    cursor = start
    while cursor <= end:
        month_end = cursor.replace(day=calendar.monthrange(cursor.year, cursor.month)[1])
        stop = min(end, month_end, cursor + timedelta(days=limit - 1))
        windows.append(Window(source, cursor, stop))
        cursor = stop + timedelta(days=1)
    return windows


def interval_dates(interval_start: datetime, interval_end: datetime) -> tuple[date, date]:
    """Map a half-open Airflow interval ``[start, end)`` onto inclusive Malaysia dates.

    The first date is the Malaysia date of ``start``; the last is the Malaysia date of the last instant
    before ``end``. Consecutive intervals therefore map onto consecutive, non-overlapping date ranges when
    they are aligned to Malaysia midnight, and onto ranges that share a boundary day otherwise (never a gap).
    """
    for moment in (interval_start, interval_end):
        if moment.tzinfo is None:
            raise WindowError(f"interval bound {moment.isoformat()} has no time zone")
    if interval_end <= interval_start:
        raise WindowError(
            f"empty interval [{interval_start.isoformat()}, {interval_end.isoformat()}); "
            "a zero-length data interval cannot be extracted (see STACK-NOTES on @daily)"
        )
    first = interval_start.astimezone(MYT).date()
    last = (interval_end - timedelta(microseconds=1)).astimezone(MYT).date()
    return first, last


def windows_for_interval(
    source: str,
    interval_start: datetime,
    interval_end: datetime,
    *,
    lookback_days: int = 1,
) -> list[Window]:
    """The windows an incremental run reads: its data interval plus ``lookback_days`` before it.

    The lookback re-reads days already extracted so edits that arrive late (or land while the previous
    run was reading) are not missed; loads are idempotent, so reading a day twice costs nothing but time.
    """
    if lookback_days < 0:
        raise WindowError(f"lookback_days must be >= 0, got {lookback_days}", source=source)
    first, last = interval_dates(interval_start, interval_end)
    return plan_windows(source, first - timedelta(days=lookback_days), last)
