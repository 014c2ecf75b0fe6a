"""One HTML report of what the warehouse holds: coverage, loads, quarantine, quality, push and identity.

Split by job: :mod:`~pipelines.report.gather` reads the warehouse and the lake into value-free records,
:mod:`~pipelines.report.charts` draws them to inline SVG, :mod:`~pipelines.report.template` and
:mod:`~pipelines.report.render` make and write the page.
"""

from __future__ import annotations

from pipelines.report.render import DEFAULT_OUT, LAKE_REPORT, publish_report, write_report

__all__ = ["DEFAULT_OUT", "LAKE_REPORT", "publish_report", "write_report"]
