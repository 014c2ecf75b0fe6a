"""The report's charts: matplotlib figures rendered to inline SVG.

Why matplotlib to SVG: the page must work offline and be one file — no JavaScript, no CDN, no tracking, no
web fonts. Text is drawn as paths (``svg.fonttype = path``), so the SVG names no font and looks the same
everywhere; the XML prologue, DOCTYPE and metadata (which carry URLs) are dropped, so the only URLs left
are the SVG namespace names, which a browser never fetches. Each chart gets its own id salt, so several
inline SVGs in one page do not share element ids by accident.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Final

import matplotlib

matplotlib.use("Agg")  # no display, no GUI toolkit: the report is built on servers and in tasks

from matplotlib import pyplot as plt
from matplotlib.ticker import MaxNLocator

from pipelines.report.gather import CoverageRow, MonthLoad, RuleCount

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COLOURS: Final = {
    "loaded": "#2e7d4f",
    "gap": "#c0392b",
    "failed": "#e67e22",
    "running": "#7f8c8d",
    "rows": "#2f6db5",
    "quarantined": "#c0392b",
}
_PROLOGUE = re.compile(r"\A.*?(?=<svg\b)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_ID = re.compile(r'\b(id)="([^"]+)"')
_REF = re.compile(r"(xlink:href=\"|href=\"|url\()#([^\")]+)")
_EPOCH: Final = date(1970, 1, 1)
_SIZE = re.compile(r'(<svg\b[^>]*?)\s(width|height)="[^"]*"')


def to_svg(fig: Figure, salt: str, label: str) -> str:
    """One figure as an inline ``<svg>`` element that scales to its container and references nothing."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": salt}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    svg = _METADATA.sub("", _PROLOGUE.sub("", buffer.getvalue(), count=1), count=1)
    # Fixed pt sizes would overflow narrow screens; the viewBox keeps the aspect ratio.
    svg = _SIZE.sub(r"\1", svg)
    svg = _SIZE.sub(r"\1", svg)
    # matplotlib's ids (figure_1, axes_1, glyph and clip-path ids) repeat between figures; prefixed, each
    # chart's ids and the references to them stay its own in a page holding several.
    svg = _ID.sub(lambda m: f'{m.group(1)}="{salt}-{m.group(2)}"', svg)
    svg = _REF.sub(lambda m: f"{m.group(1)}#{salt}-{m.group(2)}", svg)
    label = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return svg.replace("<svg ", f'<svg role="img" aria-label="{label}" class="chart" ', 1)


def coverage_chart(rows: Sequence[CoverageRow]) -> str:
    """Per source, one horizontal lane of ``v_window_coverage`` rows over the months.

    A loaded window is drawn up to ``covered_through`` as the view states it (a load vouches for its window
    only up to the day it ran); gaps, failed and running windows over their whole span.
    """
    sources = sorted({r.source for r in rows})
    fig, ax = plt.subplots(figsize=(10, 0.9 + 0.7 * max(len(sources), 1)))
    seen: set[str] = set()
    for lane, source in enumerate(sources):
        for r in (r for r in rows if r.source == source):
            end = r.covered_through if r.coverage == "loaded" and r.covered_through else r.end
            start_num = _day(r.start)
            width = _day(end + timedelta(days=1)) - start_num
            kind = r.coverage if r.coverage in COLOURS else "running"
            ax.broken_barh(
                [(start_num, width)],
                (lane - 0.35, 0.7),
                facecolors=COLOURS[kind],
                edgecolor="white",
                linewidth=0.6,
                label=None if kind in seen else kind,
            )
            seen.add(kind)
    ax.set_yticks(range(len(sources)), labels=sources)
    ax.set_ylim(-0.6, len(sources) - 0.4)
    _month_axis(ax, [r.start for r in rows] + [r.end for r in rows])
    ax.set_title("Coverage per source and month (v_window_coverage)", loc="left", fontsize=11)
    if seen:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=9)
    _tidy(ax)
    return to_svg(fig, "chart-coverage", "Coverage per source and month")


def loads_chart(months: Sequence[MonthLoad]) -> str:
    """Rows loaded and quarantined per window month, one panel per source."""
    sources = sorted({m.source for m in months})
    fig, axes = plt.subplots(len(sources), 1, figsize=(10, 2.6 * len(sources)), squeeze=False, sharex=False)
    for ax, source in zip(axes[:, 0], sources, strict=True):
        mine = [m for m in months if m.source == source]
        labels = [m.month for m in mine]
        xs = range(len(mine))
        ax.bar([x - 0.2 for x in xs], [m.rows_in for m in mine], 0.4, color=COLOURS["rows"], label="rows in")
        ax.bar(
            [x + 0.2 for x in xs],
            [m.quarantined for m in mine],
            0.4,
            color=COLOURS["quarantined"],
            label="quarantined",
        )
        ax.set_xticks(list(xs), labels=labels, rotation=45 if len(labels) > 8 else 0, fontsize=8)
        ax.set_title(f"{source}: rows per window month (last successful load)", loc="left", fontsize=10)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=9)
        _tidy(ax)
    fig.tight_layout()
    return to_svg(fig, "chart-loads", "Rows loaded and quarantined per window month")


def quarantine_chart(rules: Sequence[RuleCount]) -> str:
    """Quarantined rows per rule, one bar per (source, rule), largest first."""
    ordered = sorted(rules, key=lambda r: (r.rows, r.source, r.rule))
    fig, ax = plt.subplots(figsize=(10, 0.8 + 0.35 * len(ordered)))
    ax.barh(
        [f"{r.source}: {r.rule}" for r in ordered], [r.rows for r in ordered], color=COLOURS["quarantined"]
    )
    for y, r in enumerate(ordered):
        ax.annotate(f"{r.rows:,}", (r.rows, y), xytext=(3, 0), textcoords="offset points", va="center")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("quarantined rows")
    ax.set_title("Quarantine by rule", loc="left", fontsize=11)
    _tidy(ax)
    return to_svg(fig, "chart-quarantine", "Quarantined rows per rule")


def _day(value: date) -> int:
    """A date as a day number on the x axis (days since 1970-01-01)."""
    return (value - _EPOCH).days


def _month_axis(ax: Axes, days: Sequence[date]) -> None:
    """Ticks on the first of the months (about a dozen labels at most) across the span of ``days``."""
    if not days:
        return
    lo, hi = min(days), max(days) + timedelta(days=1)
    ax.set_xlim(_day(lo), _day(hi))
    firsts = []
    year, month = lo.year, lo.month
    while date(year, month, 1) <= hi:
        firsts.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    step = max(1, len(firsts) // 12)
    shown = [d for d in firsts[::step] if lo <= d <= hi] or [lo]
    ax.set_xticks(
        [_day(d) for d in shown], labels=[d.strftime("%Y-%m") for d in shown], rotation=45, fontsize=8
    )


def _tidy(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="x", color="#e3e6ec", linewidth=0.6)
    ax.set_axisbelow(True)
