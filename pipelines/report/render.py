"""The report page: gathered data and charts through an autoescaping Jinja2 template, written as one file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup

from pipelines.errors import ConfigError
from pipelines.lake import Lake
from pipelines.report.gather import ReportData, gather
from pipelines.report.template import TEMPLATE
from pipelines.warehouse import open_warehouse

DEFAULT_OUT = "report.html"
LAKE_REPORT = "report.html"
"""Where :func:`publish_report` leaves the report: at the lake's root, beside the layers it links into."""


@dataclass(frozen=True, slots=True)
class Charts:
    """The inline SVG of each chart, empty where its section has nothing to draw."""

    coverage: Markup
    loads: Markup
    quarantine: Markup

    @property
    def count(self) -> int:
        """How many charts the page carries (one ``<svg>`` each)."""
        return sum(1 for svg in (self.coverage, self.loads, self.quarantine) if svg)


def make_charts(data: ReportData) -> Charts:
    """Draw the charts the data has something for (matplotlib is imported only here: it is slow to load)."""
    from pipelines.report import charts

    return Charts(
        coverage=Markup(charts.coverage_chart(data.coverage)) if data.coverage else Markup(""),
        loads=Markup(charts.loads_chart(data.months)) if data.months else Markup(""),
        quarantine=Markup(charts.quarantine_chart(data.quarantine)) if data.quarantine else Markup(""),
    )


def _num(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def render(data: ReportData, charts: Charts) -> str:
    """The page's HTML: every value autoescaped, only the chart SVGs (made here) trusted."""
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=False)
    return env.from_string(TEMPLATE).render(data=data, charts=charts, num=_num)


def write_report(warehouse_url: str, lake_url: str | None, out: str | Path = DEFAULT_OUT) -> Path:
    """Gather, draw and write the report; returns the file's absolute path.

    The warehouse is opened read-only, so a report can be made while nothing else writes and never changes
    what it reports on. The file is written beside its final name and renamed, so a reader never sees half.
    """
    target = Path(out).expanduser().resolve()
    if not target.parent.is_dir():
        raise ConfigError(f"cannot write the report: folder {target.parent} does not exist", field="--out")
    page = _page(warehouse_url, Lake(lake_url) if lake_url else None, links_from=target.parent)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)
    return target


def publish_report(warehouse_url: str, lake_url: str) -> str:
    """Write the report to the lake's root (:data:`LAKE_REPORT`) and return its URL: what a DAG run leaves.

    Every worker and every reader of the lake can reach it there, wherever the task ran; on a local lake
    its links to each window's quality page are relative, so the folder can be copied or served as a whole.
    """
    lake = Lake(lake_url)
    page = _page(warehouse_url, lake, links_from=Path(lake.root) if lake.is_local else None)
    url = lake.write_root_file(LAKE_REPORT, page.encode("utf-8"))
    return Path(url).resolve().as_uri() if lake.is_local else url


def _page(warehouse_url: str, lake: Lake | None, *, links_from: Path | None) -> str:
    """Gather from a read-only warehouse (and the lake's quality results), draw, render."""
    with open_warehouse(warehouse_url, read_only=True) as warehouse:
        data = gather(warehouse, lake, links_from=links_from)
    return render(data, make_charts(data))
