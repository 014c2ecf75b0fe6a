"""A mistyped lake or warehouse path is refused, never silently turned into a fresh, empty one."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.cli import main

RANGE = ["--from", "2024-01-01", "--to", "2024-01-31"]


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["run", *RANGE, "--lake", "{missing}/lake", "--warehouse", "{tmp}/w.duckdb"], "lake"),
        (["run", *RANGE, "--lake", "{tmp}/lake", "--warehouse", "{missing}/w.duckdb"], "warehouse"),
        (["extract", "skybiz", *RANGE, "--lake", "{missing}/lake"], "lake"),
        (["load", *RANGE, "--lake", "{tmp}/lake", "--warehouse", "{missing}/w.duckdb"], "warehouse"),
    ],
    ids=["run-lake", "run-warehouse", "extract-lake", "load-warehouse"],
)
def test_a_write_to_a_path_whose_folder_does_not_exist_is_refused(
    argv: list[str], option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo"
    args = [a.format(missing=missing, tmp=tmp_path) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"folder {missing} does not exist" in err and "--create" in err and option in err
    assert not missing.exists()  # nothing was made


def test_create_makes_the_folder_for_a_new_warehouse(tmp_path: Path) -> None:
    lake, warehouse = tmp_path / "lake", tmp_path / "new" / "deeper" / "w.duckdb"
    lake.mkdir()  # an empty lake: nothing to load, but the path is checked (and its folder made) first
    assert main(["load", *RANGE, "--lake", str(lake), "--warehouse", str(warehouse), "--create"]) == 0
    assert warehouse.parent.is_dir()


@pytest.mark.parametrize("command", [["push", "--dry-run"], ["identity"]], ids=["push-dry-run", "identity"])
def test_commands_that_need_a_warehouse_refuse_a_missing_one(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.duckdb"
    assert main([*command, "--warehouse", str(missing)]) == 2
    assert f"no warehouse at {missing}" in capsys.readouterr().err
    assert not missing.exists()
