"""``skysmart validate`` over a real lake: summary per window, reports, exit codes."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.cli import main
from pipelines.lake import CUSTOMERS, NORMALIZED, QUALITY, Lake
from pipelines.quality import REPORT_HTML
from pipelines.windows import Window
from tests.quality.frames import customer_table

JAN = Window("skybiz", date(2024, 1, 1), date(2024, 1, 31))
FEB = Window("skybiz", date(2024, 2, 1), date(2024, 2, 29))
SMART_JAN = Window("smartacc", date(2024, 1, 1), date(2024, 1, 31))
MAR = Window("skybiz", date(2024, 3, 1), date(2024, 3, 31))


def _with(table: pa.Table, column: str, row: int, value: object) -> pa.Table:
    values = table.column(column).to_pylist()
    values[row] = value
    return table.set_column(table.schema.get_field_index(column), column, [values])


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lake:
    """Jan clean, Feb with an error (bad currency), smartacc Jan with a warning, Mar outside most ranges."""
    # Long lake paths stay on one line. (Not `setattr(console, "width")`: undoing that pins the width.)
    monkeypatch.setenv("COLUMNS", "400")
    lake = Lake(str(tmp_path / "lake"))
    lake.write_table(NORMALIZED, "skybiz", CUSTOMERS, JAN, customer_table(30, "skybiz", JAN))
    lake.write_table(
        NORMALIZED, "skybiz", CUSTOMERS, FEB, _with(customer_table(30, "skybiz", FEB), "currency", 4, "RM")
    )
    lake.write_table(
        NORMALIZED,
        "smartacc",
        CUSTOMERS,
        SMART_JAN,
        _with(customer_table(30, "smartacc", SMART_JAN), "gender", 2, "X"),
    )
    lake.write_table(NORMALIZED, "skybiz", CUSTOMERS, MAR, customer_table(5, "skybiz", MAR))
    return lake


def _report(lake: Lake, window: Window) -> Path:
    return Path(lake.window_dir(QUALITY, window.source, CUSTOMERS, window)) / REPORT_HTML


def test_error_in_one_window_exits_5_after_validating_every_window(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["validate", "--from", "2024-01-15", "--to", "2024-02-10", "--lake", lake.url])

    out, err = capsys.readouterr()
    assert code == 5
    summary = f"skysmart validate: 1 of 3 window(s) have error-severity failures (skybiz:{FEB.key})"
    assert summary in err
    assert f"first report: {_report(lake, FEB)}" in err
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.count("│") > 8]
    status = {(c[0], c[1]): (c[5], c[6], c[7]) for c in cells}  # failed errors, failed warnings, status
    assert status == {
        ("skybiz", JAN.key): ("0", "0", "ok"),
        ("skybiz", FEB.key): ("1", "0", "FAILED"),
        ("smartacc", SMART_JAN.key): ("0", "1", "warnings"),
    }
    reports = {c[8] for c in cells}
    assert f"quality/source=skybiz/entity=customers/window={FEB.key}/report.html" in reports
    assert f"skybiz:{FEB.key}: {_report(lake, FEB)}" in out
    assert "error   currency:pattern (expect_column_values_to_match_regex) 1 row, keys skybiz:C000004" in out
    assert "warning gender:validValues (expect_column_values_to_be_in_set) 1 row, keys smartacc:C000002" in (
        out
    )
    assert "validated 3 window(s), 90 rows" in out
    for window in (JAN, FEB, SMART_JAN):
        assert _report(lake, window).exists()
    assert not _report(lake, MAR).exists()


def test_source_filter_and_warnings_only_exit_0(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["validate", "--from", "2024-01-01", "--to", "2024-12-31", "--source", "smartacc"]
    code = main([*argv, "--lake", lake.url])

    out, _ = capsys.readouterr()
    assert code == 0
    assert "validated 1 window(s), 30 rows" in out and "0 with error failures" in out
    assert _report(lake, SMART_JAN).exists() and not _report(lake, JAN).exists()


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        pytest.param(["--from", "2023-01-01", "--to", "2023-12-31"], 2, "no normalized windows", id="none"),
        pytest.param(["--from", "2024-13-01", "--to", "2024-12-31"], 2, "'2024-13-01' is not a", id="bad"),
        pytest.param(["--from", "2024-02-01", "--to", "2024-01-01"], 2, "is after --to", id="reversed"),
    ],
)
def test_usage_problems_have_their_exit_codes(
    lake: Lake, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    assert main(["validate", *argv, "--lake", lake.url]) == code
    assert message in capsys.readouterr().err
