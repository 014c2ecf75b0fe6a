"""``skysmart report`` through the real command line: the file, its path printed, exit codes by error type."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.cli import main
from tests.report.conftest import Loaded
from tests.report.helpers import svg_count


def test_report_writes_the_file_and_prints_its_path(
    loaded_duckdb: Loaded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["report", "--warehouse", loaded_duckdb.warehouse_url, "--lake", loaded_duckdb.lake_url])
    assert code == 0
    written = tmp_path / "report.html"
    assert str(written.resolve()) in capsys.readouterr().out
    assert svg_count(written.read_text()) >= 2


def test_a_missing_warehouse_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["report", "--warehouse", str(tmp_path / "nope.duckdb"), "--out", str(tmp_path / "r.html")])
    assert code == 2
    assert "no warehouse" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_an_output_folder_that_does_not_exist_is_refused(
    loaded_duckdb: Loaded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["report", "--warehouse", loaded_duckdb.warehouse_url, "--out", str(tmp_path / "no" / "r.html")]
    )
    assert code == 2
    assert "does not exist" in capsys.readouterr().err
