from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from pipelines.errors import WindowError
from pipelines.windows import MYT, Window, interval_dates, plan_windows, windows_for_interval

UTC = UTC


def _days(windows: list[Window]) -> list[date]:
    out: list[date] = []
    for w in windows:
        out += [w.start + timedelta(days=i) for i in range(w.days)]
    return out


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2024, 1, 1), date(2024, 1, 1), ["2024-01-01_2024-01-01"]),
        (date(2024, 1, 1), date(2024, 1, 31), ["2024-01-01_2024-01-31"]),
        (date(2024, 1, 15), date(2024, 2, 10), ["2024-01-15_2024-01-31", "2024-02-01_2024-02-10"]),
        (date(2024, 2, 1), date(2024, 3, 1), ["2024-02-01_2024-02-29", "2024-03-01_2024-03-01"]),
        (date(2023, 12, 31), date(2024, 1, 1), ["2023-12-31_2023-12-31", "2024-01-01_2024-01-01"]),
    ],
    ids=["one-day", "whole-month", "straddle", "leap-february", "year-end"],
)
def test_plan_windows_cuts_at_month_ends(start: date, end: date, expected: list[str]) -> None:
    assert [w.key for w in plan_windows("skybiz", start, end)] == expected


def test_plan_windows_covers_five_years_without_gaps_or_overlaps() -> None:
    windows = plan_windows("smartacc", date(2021, 1, 1), date(2025, 12, 31))
    days = _days(windows)
    assert len(windows) == 60
    assert len(days) == len(set(days)) == (date(2025, 12, 31) - date(2021, 1, 1)).days + 1
    assert days == sorted(days)
    assert all(w.days <= 31 for w in windows)


def test_plan_windows_max_days_narrows() -> None:
    windows = plan_windows("skybiz", date(2024, 1, 1), date(2024, 1, 31), max_days=7)
    assert [w.days for w in windows] == [7, 7, 7, 7, 3]


@pytest.mark.parametrize(
    ("source", "start", "end", "message"),
    [
        ("skybiz", date(2024, 1, 2), date(2024, 1, 1), "after it ends"),
        ("nosuch", date(2024, 1, 1), date(2024, 1, 1), "unknown source"),
    ],
    ids=["reversed", "unknown-source"],
)
def test_plan_windows_refuses(source: str, start: date, end: date, message: str) -> None:
    with pytest.raises(WindowError, match=message):
        plan_windows(source, start, end)


def test_window_refuses_more_than_31_days() -> None:
    Window("skybiz", date(2024, 1, 1), date(2024, 1, 31))
    with pytest.raises(WindowError, match="32 days"):
        Window("skybiz", date(2024, 1, 1), date(2024, 2, 1))


def test_window_bounds_are_malaysia_midnight() -> None:
    w = Window("skybiz", date(2024, 5, 1), date(2024, 5, 31))
    assert w.start_utc == datetime(2024, 4, 30, 16, 0, tzinfo=UTC)
    assert w.end_utc_exclusive == datetime(2024, 5, 31, 16, 0, tzinfo=UTC)
    assert w.contains(datetime(2024, 5, 31, 23, 59, 59, tzinfo=MYT))
    assert not w.contains(datetime(2024, 6, 1, 0, 0, 0, tzinfo=MYT))
    assert w.contains(datetime(2024, 5, 1, 0, 0, 0, tzinfo=MYT))
    assert not w.contains(datetime(2024, 4, 30, 23, 59, 59, tzinfo=MYT))


def test_window_key_and_ref_round_trip() -> None:
    w = Window("smartacc", date(2024, 2, 1), date(2024, 2, 29))
    assert w.key == "2024-02-01_2024-02-29"
    assert Window.parse("smartacc", w.key) == w
    assert Window.from_ref(w.ref) == w
    with pytest.raises(WindowError):
        Window.from_ref("2024-02-01_2024-02-29")
    with pytest.raises(WindowError):
        Window.parse("smartacc", "2024-02-01")


def test_airflow_interval_maps_to_inclusive_malaysia_dates() -> None:
    # A daily interval aligned to Malaysia midnight is exactly one Malaysia date.
    start = datetime(2024, 2, 29, 16, 0, tzinfo=UTC)
    end = datetime(2024, 3, 1, 16, 0, tzinfo=UTC)
    assert interval_dates(start, end) == (date(2024, 3, 1), date(2024, 3, 1))


def test_consecutive_intervals_tile_days_without_gaps_or_overlaps() -> None:
    first = datetime(2024, 1, 1, 0, 0, tzinfo=MYT)
    seen: list[date] = []
    for i in range(40):
        lo, hi = first + timedelta(days=i), first + timedelta(days=i + 1)
        windows = windows_for_interval("skybiz", lo, hi, lookback_days=0)
        seen += _days(windows)
    assert seen == [date(2024, 1, 1) + timedelta(days=i) for i in range(40)]


def test_unaligned_utc_interval_never_leaves_a_gap() -> None:
    # UTC-midnight intervals straddle two Malaysia dates: neighbours share a day, none is skipped.
    a = interval_dates(datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC))
    b = interval_dates(datetime(2024, 3, 2, tzinfo=UTC), datetime(2024, 3, 3, tzinfo=UTC))
    assert a == (date(2024, 3, 1), date(2024, 3, 2))
    assert b[0] <= a[1] + timedelta(days=1)


def test_lookback_rereads_previous_days_across_a_month_end() -> None:
    start = datetime(2024, 3, 1, 0, 0, tzinfo=MYT)
    windows = windows_for_interval("smartacc", start, start + timedelta(days=1), lookback_days=2)
    assert [w.key for w in windows] == ["2024-02-28_2024-02-29", "2024-03-01_2024-03-01"]


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC), "zero-length"),
        (datetime(2024, 3, 1), datetime(2024, 3, 2), "no time zone"),
    ],
    ids=["zero-length-daily-trap", "naive"],
)
def test_interval_refuses(start: datetime, end: datetime, message: str) -> None:
    with pytest.raises(WindowError, match=message):
        interval_dates(start, end)
