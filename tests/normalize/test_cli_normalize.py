"""``skysmart normalize`` as an operator runs it: the real entry point once, variants in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.lake import CUSTOMERS, NORMALIZED, QUARANTINE, Lake
from pipelines.windows import Window
from skysmart_sandbox.data import generate
from skysmart_sandbox.raw import write_raw_window

SKYSMART = str(Path(sys.executable).with_name("skysmart"))
DATA = generate(600, 9, history_start=date(2025, 1, 1), history_end=date(2025, 2, 28), dirty_rate=0.1)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    for source in ("skybiz", "smartacc"):
        for start, end in ((date(2025, 1, 1), date(2025, 1, 31)), (date(2025, 2, 1), date(2025, 2, 28))):
            write_raw_window(lake, DATA, Window(source, start, end))
    return lake


def test_entry_point_normalizes_the_range_and_prints_the_summary(lake: Lake) -> None:
    done = subprocess.run(
        [SKYSMART, "normalize", "--from", "2025-01-01", "--to", "2025-02-28", "--lake", lake.url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "160"},  # rich wraps tables to 80 columns when not on a terminal
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "normalize" in out and "quarantined by reason" in out
    for key in ("2025-01-01_2025-01-31", "2025-02-01_2025-02-28"):
        assert out.count(key) == 2  # one row per source
    assert "name_missing" in out
    assert "normalized 4 window(s), 1,200 raw rows" in out
    for source in ("skybiz", "smartacc"):
        assert len(lake.windows(NORMALIZED, source, CUSTOMERS)) == 2
        assert len(lake.windows(QUARANTINE, source, CUSTOMERS)) == 2


def test_one_source_and_skipped_windows(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "normalize",
            "--from",
            "2024-12-01",
            "--to",
            "2025-01-31",
            "--source",
            "smartacc",
            "--lake",
            lake.url,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "skipped 1 window(s) never extracted: smartacc:2024-12-01_2024-12-31" in out
    assert "normalized 1 window(s)" in out
    assert lake.windows(NORMALIZED, "skybiz", CUSTOMERS) == []
    assert [w.key for w in lake.windows(NORMALIZED, "smartacc", CUSTOMERS)] == ["2025-01-01_2025-01-31"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--from", "2025-02-30", "--to", "2025-03-01"], 2, "--from '2025-02-30' is not a date"),
        (["--from", "2025-03-01", "--to", "2025-01-01"], 2, "is after --to"),
        (["--from", "2023-01-01", "--to", "2023-01-31"], 2, "no extracted raw windows"),
    ],
    ids=["bad-date", "reversed", "nothing-extracted"],
)
def test_usage_and_lake_errors(
    lake: Lake, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    assert main(["normalize", *args, "--lake", lake.url]) == code
    assert message in capsys.readouterr().err
