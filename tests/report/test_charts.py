"""Charts are inline SVG that reference nothing: no prologue, no metadata URLs, no fonts, no images."""

from __future__ import annotations

import re
from datetime import date

from pipelines.report.charts import coverage_chart, loads_chart, quarantine_chart
from pipelines.report.gather import CoverageRow, MonthLoad, RuleCount
from tests.report.helpers import NAMESPACES

ROWS = (
    CoverageRow("skybiz", "loaded", "2024-01-01_2024-01-31", date(2024, 1, 1), date(2024, 1, 31),
                date(2024, 1, 31), 31, 1, 10, 1),
    CoverageRow("skybiz", "gap", None, date(2024, 2, 1), date(2024, 3, 31), None, 60, 0, None, None),
    CoverageRow("skybiz", "loaded", "2024-04-01_2024-04-30", date(2024, 4, 1), date(2024, 4, 30),
                date(2024, 4, 12), 30, 2, 7, 0),
)  # fmt: skip


def _check(svg: str) -> None:
    assert svg.startswith("<svg ") and svg.rstrip().endswith("</svg>")
    assert svg.count("<svg") == 1
    assert "<metadata" not in svg and "<?xml" not in svg and "DOCTYPE" not in svg
    assert "<image" not in svg and "@font-face" not in svg and "font-family" not in svg
    assert "<text" not in svg  # labels drawn as paths: no font is needed to read them
    assert set(re.findall(r"https?://[^\s\"'<>]+", svg)) <= NAMESPACES
    assert not re.search(r"<svg\b[^>]*\s(width|height)=", svg)  # scales with the page


def test_every_chart_is_a_self_contained_svg() -> None:
    _check(coverage_chart(ROWS))
    _check(loads_chart([MonthLoad("skybiz", "2024-01", 1, 10, 1), MonthLoad("smartacc", "2024-01", 1, 4, 0)]))
    _check(quarantine_chart([RuleCount("skybiz", "name:missing", 3, 2)]))


def test_charts_use_distinct_element_ids_and_reference_only_their_own() -> None:
    charts = (
        coverage_chart(ROWS),
        loads_chart([MonthLoad("skybiz", "2024-01", 1, 10, 1)]),
        quarantine_chart([RuleCount("skybiz", "name:missing", 3, 2)]),
    )  # fmt: skip
    ids = [set(re.findall(r'\bid="([^"]+)"', svg)) for svg in charts]
    assert all(ids)
    assert not ids[0] & ids[1] and not ids[0] & ids[2] and not ids[1] & ids[2]
    for svg, own in zip(charts, ids, strict=True):
        refs = set(re.findall(r'(?:href="|url\()#([^")]+)', svg))
        assert refs and refs <= own
