"""What the report shows, read from the warehouse and the lake into plain, value-free records.

Everything here is counts, dates, window keys, rule names and states: the report is meant to be shared, so
no query selects a customer's name, phone, e-mail, offending value or raw record. Coverage is read from
``v_window_coverage`` as it is (the one place coverage is computed), never recomputed. SQL goes through
:class:`~pipelines.warehouse.base.Warehouse` only and is written to run unchanged on DuckDB and Postgres.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from pipelines.einvoice.readiness import ReadinessCounts, readiness_counts
from pipelines.lake import CUSTOMERS, QUALITY, Lake
from pipelines.quality.report import REPORT_HTML, REPORT_JSON
from pipelines.warehouse.base import Warehouse
from pipelines.warehouse.schema import AUDIT, MATCHES, QUARANTINE_TABLE, V_COVERAGE
from pipelines.windows import SOURCES, Window

OUTBOX: Final = "skybiz_push_outbox"
MATCH_CLASSES: Final = ("same", "possible", "different")


@dataclass(frozen=True, slots=True)
class CoverageRow:
    """One row of ``v_window_coverage``: a loaded, failed or running window, or a gap."""

    source: str
    coverage: str
    window: str | None
    start: date
    end: date
    covered_through: date | None
    days: int
    loads: int
    rows_in: int | None
    quarantined: int | None


@dataclass(frozen=True, slots=True)
class MonthLoad:
    """Rows of one source's windows starting in one month, as their last successful load counted them."""

    source: str
    month: str
    windows: int
    rows_in: int
    quarantined: int


@dataclass(frozen=True, slots=True)
class DayLoads:
    """The loads that started on one UTC day: how many, how they ended, the rows they read."""

    day: date
    source: str
    succeeded: int
    failed: int
    running: int
    rows_in: int
    quarantined: int


@dataclass(frozen=True, slots=True)
class RuleCount:
    """Quarantined rows of one source under one rule."""

    source: str
    rule: str
    rows: int
    windows: int


@dataclass(frozen=True, slots=True)
class QualityWindow:
    """One validated window (or batch member) in the lake's quality layer, with links to its pages."""

    source: str
    window: str
    success: bool
    evaluated: int
    failed: int
    rows: int | None
    validated_at: str | None
    html_link: str
    json_link: str


@dataclass(slots=True)
class ExpectationSummary:
    """One expectation of the suite over every validated window: where it failed and how many rows."""

    source: str
    check: str
    expectation: str
    column: str | None
    severity: str
    windows: int = 0
    failed_windows: int = 0
    failing_rows: int = 0
    failed_links: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Quality:
    """The quality section: results found in the lake, or why there are none."""

    lake: str | None
    windows: tuple[QualityWindow, ...]
    expectations: tuple[ExpectationSummary, ...]
    note: str | None


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything one report shows; ``None`` tables mean the warehouse does not have them yet."""

    warehouse: str
    generated_at: datetime
    has_audit: bool
    coverage: tuple[CoverageRow, ...]
    months: tuple[MonthLoad, ...]
    days: tuple[DayLoads, ...]
    quarantine: tuple[RuleCount, ...]
    quality: Quality
    push_states: tuple[tuple[str, int], ...] | None
    identity: tuple[tuple[str, int], ...] | None
    einvoice: ReadinessCounts | None = None


def gather(warehouse: Warehouse, lake: Lake | None, *, links_from: Path | None = None) -> ReportData:
    """Read every section's data.

    Args:
        warehouse: an open (read-only is enough) warehouse.
        lake: the lake whose quality layer holds the per-window pages, or ``None`` when not given.
        links_from: the folder the report is written to; links to a local lake are made relative to it so
            the report and the lake can move together. Without it, links are the lake's own URLs.
    """
    has_audit = warehouse.table_exists(AUDIT)
    return ReportData(
        warehouse=warehouse.url,
        generated_at=datetime.now(UTC).replace(microsecond=0),
        has_audit=has_audit,
        coverage=coverage(warehouse) if has_audit else (),
        months=month_loads(warehouse) if has_audit else (),
        days=day_loads(warehouse) if has_audit else (),
        quarantine=quarantine_by_rule(warehouse) if warehouse.table_exists(QUARANTINE_TABLE) else (),
        quality=quality(lake, links_from),
        push_states=push_states(warehouse),
        identity=identity_classes(warehouse),
        einvoice=readiness_counts(warehouse),
    )


def coverage(warehouse: Warehouse) -> tuple[CoverageRow, ...]:
    """``v_window_coverage`` as it stands, ordered by source and date."""
    rows = warehouse.query(
        f"SELECT source, coverage, source_window, window_start, window_end, covered_through, days, loads, "
        f"rows_in, quarantined FROM {V_COVERAGE} ORDER BY source, window_start, coverage"
    )
    return tuple(
        CoverageRow(
            source=str(r[0]),
            coverage=str(r[1]),
            window=None if r[2] is None else str(r[2]),
            start=_date(r[3]),
            end=_date(r[4]),
            covered_through=None if r[5] is None else _date(r[5]),
            days=int(r[6] or 0),
            loads=int(r[7] or 0),
            rows_in=None if r[8] is None else int(r[8]),
            quarantined=None if r[9] is None else int(r[9]),
        )
        for r in rows
    )


def month_loads(warehouse: Warehouse) -> tuple[MonthLoad, ...]:
    """Rows in and quarantined per source and window month, from each window's last successful load.

    The last load only: a window loaded twice holds its rows once, so summing every load would double them.
    """
    rows = warehouse.query(
        f"""SELECT source, window_start, rows_in, quarantined FROM (
  SELECT DISTINCT ON (source, source_window) source, source_window, window_start, rows_in, quarantined
  FROM {AUDIT} WHERE status = 'succeeded'
  ORDER BY source, source_window, finished_at DESC, load_id DESC
) last_ok ORDER BY source, window_start"""
    )
    totals: dict[tuple[str, str], list[int]] = {}
    for source, start, rows_in, quarantined in rows:
        key = (str(source), _date(start).strftime("%Y-%m"))
        acc = totals.setdefault(key, [0, 0, 0])
        acc[0] += 1
        acc[1] += int(rows_in or 0)
        acc[2] += int(quarantined or 0)
    return tuple(
        MonthLoad(source=s, month=m, windows=v[0], rows_in=v[1], quarantined=v[2])
        for (s, m), v in sorted(totals.items())
    )


def day_loads(warehouse: Warehouse) -> tuple[DayLoads, ...]:
    """Loads per UTC start day and source: every attempt, by how it ended."""
    rows = warehouse.query(
        f"""SELECT CAST(started_at AS DATE) AS day, source,
  count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed'),
  count(*) FILTER (WHERE status = 'running'),
  coalesce(sum(rows_in) FILTER (WHERE status = 'succeeded'), 0),
  coalesce(sum(quarantined) FILTER (WHERE status = 'succeeded'), 0)
FROM {AUDIT} GROUP BY CAST(started_at AS DATE), source ORDER BY 1, 2"""
    )
    return tuple(
        DayLoads(_date(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6])) for r in rows
    )


def quarantine_by_rule(warehouse: Warehouse) -> tuple[RuleCount, ...]:
    """Quarantined rows per source and rule (the rule names only, never the offending values)."""
    rows = warehouse.query(
        f"SELECT source_system, rule, count(*), count(DISTINCT source_window) FROM {QUARANTINE_TABLE} "
        f"GROUP BY source_system, rule ORDER BY source_system, count(*) DESC, rule"
    )
    return tuple(RuleCount(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows)


def push_states(warehouse: Warehouse) -> tuple[tuple[str, int], ...] | None:
    """Outbox rows per state, or ``None`` before the first push created the outbox."""
    if not warehouse.table_exists(OUTBOX):
        return None
    rows = warehouse.query(f"SELECT state, count(*) FROM {OUTBOX} GROUP BY state ORDER BY state")
    return tuple((str(r[0]), int(r[1])) for r in rows)


def identity_classes(warehouse: Warehouse) -> tuple[tuple[str, int], ...] | None:
    """Candidate pairs per match class (every class shown, zero included), or ``None`` before matching."""
    if not warehouse.table_exists(MATCHES):
        return None
    found = {
        str(r[0]): int(r[1])
        for r in warehouse.query(f"SELECT match_class, count(*) FROM {MATCHES} GROUP BY match_class")
    }
    ordered = [(c, found.pop(c, 0)) for c in MATCH_CLASSES]
    return tuple(ordered + sorted(found.items()))


def quality(lake: Lake | None, links_from: Path | None) -> Quality:
    """Every ``validation.json`` in the lake's quality layer, summarised per window and per expectation.

    A missing lake, or one without quality results, is a note in the report, not an error: the warehouse
    sections are worth seeing without it.
    """
    if lake is None:
        return Quality(None, (), (), "No lake was given, so no quality results are shown (use --lake).")
    windows: list[QualityWindow] = []
    expectations: dict[tuple[str, str], ExpectationSummary] = {}
    for source in SOURCES:
        for key in _quality_keys(lake, source):
            base = lake.window_dir(QUALITY, source, CUSTOMERS, key)
            try:
                stored = json.loads(lake.read_file(QUALITY, source, CUSTOMERS, key, REPORT_JSON))
            except Exception:  # a half-written or foreign file: show the window as unreadable, go on
                continue
            html_link = _link(lake, f"{base}/{REPORT_HTML}", links_from)
            json_link = _link(lake, f"{base}/{REPORT_JSON}", links_from)
            windows.append(_quality_window(source, key, stored, html_link, json_link))
            for result in stored.get("results") or []:
                _add_result(expectations, source, key, result, html_link)
    if not windows:
        return Quality(lake.url, (), (), f"No quality results in the lake {lake.url} yet.")
    ordered = sorted(expectations.values(), key=lambda e: (-e.failed_windows, e.source, e.check))
    return Quality(lake.url, tuple(windows), tuple(ordered), None)


def _quality_keys(lake: Lake, source: str) -> list[str]:
    """Window keys under ``quality/source=<source>/entity=customers`` that hold a ``validation.json``.

    The quality layer has no manifests (its files are side files), so :meth:`Lake.windows` does not list
    it; the keys are read the same way, by the ``window=`` folder names, and checked with ``Window.parse``.
    """
    base = f"{lake.root}/{QUALITY}/source={source}/entity={CUSTOMERS}"
    try:
        entries = lake.fs.ls(base, detail=False)
    except (FileNotFoundError, NotADirectoryError):
        return []
    keys = []
    for entry in entries:
        name = str(entry).rstrip("/").rsplit("/", 1)[-1]
        if not name.startswith("window=") or not lake.fs.exists(f"{base}/{name}/{REPORT_JSON}"):
            continue
        try:
            keys.append(Window.parse(source, name.removeprefix("window=")))
        except Exception:  # a folder that is not a window key
            continue
    return [w.key for w in sorted(keys)]


def _quality_window(source: str, key: str, stored: dict[str, Any], html: str, js: str) -> QualityWindow:
    stats = stored.get("statistics") or {}
    facts = (stored.get("meta") or {}).get("skysmart") or {}
    rows = facts.get("rows")
    return QualityWindow(
        source=source,
        window=key,
        success=bool(stored.get("success")),
        evaluated=int(stats.get("evaluated_expectations") or 0),
        failed=int(stats.get("unsuccessful_expectations") or 0),
        rows=int(rows) if isinstance(rows, int) else None,
        validated_at=None if facts.get("validated_at") is None else str(facts.get("validated_at")),
        html_link=html,
        json_link=js,
    )


def _add_result(
    into: dict[tuple[str, str], ExpectationSummary],
    source: str,
    key: str,
    result: dict[str, Any],
    html_link: str,
) -> None:
    config = result.get("expectation_config") or {}
    meta = config.get("meta") or {}
    kwargs = config.get("kwargs") or {}
    expectation = str(config.get("type") or "")
    column = kwargs.get("column")
    check = str(meta.get("check") or f"{column or 'table'}:{expectation}")
    summary = into.get((source, check))
    if summary is None:
        summary = into[(source, check)] = ExpectationSummary(
            source=source,
            check=check,
            expectation=expectation,
            column=None if column is None else str(column),
            severity=str(meta.get("severity", "error")),
        )
    summary.windows += 1
    if not result.get("success"):
        summary.failed_windows += 1
        count = (result.get("result") or {}).get("unexpected_count")
        summary.failing_rows += int(count) if isinstance(count, int) else 0
        summary.failed_links.append((key, html_link))


def _link(lake: Lake, path: str, links_from: Path | None) -> str:
    """A link the report can carry: relative to the report for a local lake, else the lake's URL."""
    if lake.is_local and links_from is not None:
        relative = os.path.relpath(Path(path).resolve(), links_from.resolve())
        return quote(Path(relative).as_posix(), safe="/=")
    if lake.is_local:
        return Path(path).resolve().as_uri()
    return lake.full_url(path)


def _date(value: Any) -> date:
    """A DATE column's value as a :class:`date` (drivers may give a datetime or ISO text)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
