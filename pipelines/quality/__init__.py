"""Data quality: great-expectations suites generated from the data contracts, run over batches of windows.

Split by job: :mod:`~pipelines.quality.suite` turns a contract into a GX suite,
:mod:`~pipelines.quality.running` validates frames and lake windows (one GX call for a batch of windows, each
window getting its own result), and :mod:`~pipelines.quality.report` holds the results, the stored
``validation.json`` and the HTML page.

A window's result says whether it may load: :func:`validate_window` raises
:class:`~pipelines.errors.DataQualityError` when an ``error`` expectation fails; :func:`validate_windows`
returns one result per window so that only the failing windows are held back. ``warning`` failures are only
reported. Failing rows are named by ``customer_key`` only, never by their values (personal data).

great-expectations takes 5–6 s to import, so it is imported inside the functions that need it; importing
this package stays light (the CLI and DAG files import it).
"""

from pipelines.quality.report import (
    HTML_KEYS,
    KEY_COLUMN,
    MAX_FAILURES,
    MAX_KEYS,
    MESSAGE_FAILURES,
    REPORT_HTML,
    REPORT_JSON,
    Failure,
    QualityResult,
    render_html,
)
from pipelines.quality.running import (
    BATCH_ROWS,
    FrameToValidate,
    frame_from_table,
    validate_frame,
    validate_frames,
    validate_window,
    validate_windows,
)
from pipelines.quality.suite import build_suite

__all__ = [
    "BATCH_ROWS",
    "HTML_KEYS",
    "KEY_COLUMN",
    "MAX_FAILURES",
    "MAX_KEYS",
    "MESSAGE_FAILURES",
    "REPORT_HTML",
    "REPORT_JSON",
    "Failure",
    "FrameToValidate",
    "QualityResult",
    "build_suite",
    "frame_from_table",
    "render_html",
    "validate_frame",
    "validate_frames",
    "validate_window",
    "validate_windows",
]
