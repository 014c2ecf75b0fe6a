"""Validation in batches: one GX run for many windows, each told exactly what it alone would be told."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from pipelines.contracts import load_contract
from pipelines.lake import CUSTOMERS, NORMALIZED, QUALITY, Lake
from pipelines.quality import (
    REPORT_JSON,
    FrameToValidate,
    QualityResult,
    build_suite,
    running,
    validate_frame,
    validate_frames,
    validate_windows,
)
from pipelines.windows import Window
from tests.quality.frames import customer_frame, customer_table
from tests.quality.gx_reference import plain_definition

MONTHS = [Window("skybiz", date(2024, m, 1), date(2024, m, 28)) for m in range(1, 7)]
# Fields of a stored result that GX computes from the rows: a window's share must equal GX's own figures.
COUNTED = (
    "element_count",
    "missing_count",
    "missing_percent",
    "unexpected_count",
    "unexpected_percent",
    "unexpected_percent_total",
    "unexpected_percent_nonmissing",
    "unexpected_index_list",
)


def _frames() -> list[pd.DataFrame]:
    """Six windows: clean, failing in different rows and rules, with nulls, one of another structure."""
    frames = [customer_frame(n).copy() for n in (30, 25, 12, 40, 1, 30)]
    frames[1].loc[[3, 9], "gender"] = "X"  # warning
    frames[1].loc[6, "email"] = "not-an-email"  # error
    frames[1].loc[[1, 2], "postcode"] = None  # nulls: missing, not unexpected
    frames[2].loc[1, "payment_terms_days"] = -1
    frames[2].loc[[4, 5], "customer_key"] = "skybiz:C000004"  # a key twice inside one window
    frames[4].loc[0, "email"] = None
    frames[5] = frames[5].drop(columns=["website"])  # structure differs: validated in a group of its own
    return frames


def _alone(frames: list[pd.DataFrame]) -> list[QualityResult]:
    return [validate_frame(f.copy(), "customer", raise_on_error=False) for f in frames]


def _plain(result: QualityResult) -> QualityResult:
    return dataclasses.replace(result, seconds=0.0, report_json_url=None, report_html_url=None)


def test_a_batch_gives_every_window_the_result_it_gets_alone() -> None:
    frames = _frames()
    alone = _alone(frames)

    batched = validate_frames([FrameToValidate(f.copy()) for f in frames], "customer")

    assert [_plain(r) for r in batched] == [_plain(r) for r in alone]
    # And the results say what is in each window, not a blend of the batch.
    assert [r.success for r in batched] == [True, False, False, True, True, False]
    assert {f.check: f.keys for f in batched[1].failures} == {
        "email:pattern": ("skybiz:C000006",),
        "gender:validValues": ("skybiz:C000003", "skybiz:C000009"),
    }
    assert {f.check: f.keys for f in batched[2].failures} == {
        "customer_key:unique": ("skybiz:C000004",),
        "payment_terms_days:range": ("skybiz:C000001",),
    }
    assert [r.rows for r in batched] == [30, 25, 12, 40, 1, 30]


def test_a_key_met_in_two_windows_fails_neither() -> None:
    first, second = customer_frame(10), customer_frame(10)  # the same ten keys in both windows

    results = validate_frames([FrameToValidate(first), FrameToValidate(second)], "customer")

    assert all(r.success and r.failed == 0 for r in results)


def test_stored_counts_are_what_gx_computes_on_the_window_alone(tmp_path: Path) -> None:
    frames = _frames()[:5]
    lake = Lake(str(tmp_path / "lake"))
    items = [FrameToValidate(f.copy(), w, "skybiz") for f, w in zip(frames, MONTHS, strict=False)]
    validate_frames(items, "customer", lake=lake)

    definition = plain_definition(build_suite("customer"), datasource="direct", name="direct")
    result_format = {
        "result_format": "COMPLETE",
        "exclude_unexpected_values": True,
        "unexpected_index_column_names": ["customer_key"],
        "return_unexpected_index_query": False,
    }
    for frame, window in zip(frames, MONTHS, strict=False):
        theirs = definition.run(
            batch_parameters={"dataframe": frame.set_index("customer_key", drop=False)},
            result_format=result_format,
        )
        path = Path(lake.window_dir(QUALITY, "skybiz", CUSTOMERS, window)) / REPORT_JSON
        ours = {r["expectation_config"]["meta"]["check"]: r for r in json.loads(path.read_text())["results"]}
        assert len(ours) == len(theirs.results)
        for r in theirs.results:
            mine = ours[r.expectation_config.meta["check"]]
            assert mine["success"] == r.success, r.expectation_config.meta["check"]
            expected = {k: v for k, v in (r.result or {}).items() if k in COUNTED}
            their_keys = _keys(expected.pop("unexpected_index_list", []))
            got = {k: v for k, v in mine["result"].items() if k in COUNTED}
            listed = got.pop("unexpected_index_list", [{"customer_key": []}])
            assert _keys(listed) == their_keys, r.expectation_config.meta["check"]
            named = (r.result or {}).get("unexpected_index_column_names")
            assert mine["result"].get("unexpected_index_column_names") == named, r.expectation_config.meta
            assert got == pytest.approx(expected), r.expectation_config.meta["check"]


def _keys(index_list: list[Any]) -> set[str]:
    """GX's ``[{"customer_key": [k, ...]}]`` (or one dict per row) as a set of keys."""
    out: set[str] = set()
    for item in index_list:
        value = item["customer_key"]
        out |= {str(v) for v in (value if isinstance(value, list) else [value])}
    return out


@pytest.fixture
def gx_passes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The pass (``structure``, ``checks``, ``failing``) of every GX run, in a process new to structures."""
    import great_expectations as gx

    passes: list[str] = []
    run = gx.ValidationDefinition.run

    def counted(self: Any, **kwargs: Any) -> Any:
        passes.append(_pass(self))
        return run(self, **kwargs)

    monkeypatch.setattr(gx.ValidationDefinition, "run", counted)
    monkeypatch.setattr(running, "_structures", {})
    return passes


def _pass(definition: Any) -> str:
    """A validation definition's pass: its suite's label without the number a second registration gets."""
    return re.sub(r"-\d+$", "", definition.name.rpartition("#")[2])


def test_only_the_checks_that_found_failing_rows_run_again_for_their_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import great_expectations as gx

    runs: list[tuple[str, list[tuple[str, str]]]] = []
    run = gx.ValidationDefinition.run

    def recorded(self: Any, **kwargs: Any) -> Any:
        checked = [(str(e.meta["rule"]), str(getattr(e, "column", ""))) for e in self.suite.expectations]
        runs.append((_pass(self), checked))
        return run(self, **kwargs)

    monkeypatch.setattr(gx.ValidationDefinition, "run", recorded)
    frames = [customer_frame(30), customer_frame(25)]
    frames[1]["customer_key"] = frames[1]["customer_key"].str.replace("C", "D")  # no key in both windows
    validate_frames([FrameToValidate(f.copy()) for f in frames], "customer")
    assert [label for label, _ in runs if label != "structure"] == ["checks"]  # nothing found: no second run

    runs.clear()
    frames[1].loc[6, "email"] = "not-an-email"
    results = validate_frames([FrameToValidate(f.copy()) for f in frames], "customer")
    assert [label for label, _ in runs] == ["checks", "failing"]
    assert {column for _, column in runs[1][1]} == {"email"}  # only the email checks that flagged the row
    assert [r.success for r in results] == [True, False]
    assert [_plain(r) for r in results] == [_plain(r) for r in _alone(frames)]


def test_many_windows_take_one_gx_run_per_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gx_passes: list[str]
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    for window in MONTHS:
        lake.write_table(NORMALIZED, "skybiz", CUSTOMERS, window, customer_table(20, "skybiz", window))
    results = validate_windows(lake, "skybiz", MONTHS)

    assert [r.window for r in results] == [w.key for w in MONTHS]
    assert all(r.success and r.rows == 20 for r in results)
    # For all six windows. They hold the same customers, so the uniqueness check finds repeated keys in the
    # stacked frame, and it alone runs again for their rows (each window has each key once: none fails).
    assert gx_passes == ["structure", "checks", "failing"]

    gx_passes.clear()
    monkeypatch.setattr(running, "BATCH_ROWS", 50)  # three windows of 20 rows fill more than one batch
    again = validate_windows(lake, "skybiz", MONTHS)
    # Three batches, each its row checks; the structure's results are known from the first call.
    assert gx_passes == ["checks", "failing"] * 3
    assert [_plain(r) for r in again] == [_plain(r) for r in results]


def test_a_structure_met_before_is_told_its_results_without_running_gx_again(gx_passes: list[str]) -> None:
    frames = _frames()  # five of one structure, the last without "website"
    first = validate_frames([FrameToValidate(f.copy()) for f in frames[:2]], "customer")
    assert gx_passes == ["structure", "checks", "failing"]  # frames[1] fails rows

    gx_passes.clear()
    again = validate_frames([FrameToValidate(f.copy()) for f in frames], "customer")
    # The known structure only has its rows checked; the other one is met here first.
    assert sorted(gx_passes) == ["checks", "checks", "failing", "structure"]
    assert [_plain(r) for r in again[:2]] == [_plain(r) for r in first]
    assert [_plain(r) for r in again] == [_plain(r) for r in _alone(frames)]
    assert {f.check for f in again[5].failures} >= {"table:columns"}  # the other structure's own verdict


def test_tables_converted_together_give_the_frames_converted_alone() -> None:
    """Runs of one schema convert as one table; a table with another schema breaks the run, none is lost."""
    contract = load_contract("customer")
    plain = [customer_table(n, window=w) for n, w in zip((3, 0, 5, 2, 4), MONTHS, strict=False)]
    odd = plain[2].drop_columns(["nickname"])  # another schema between two runs of the same one
    tables = [plain[0], plain[1], odd, plain[3], plain[4]]
    frames = running.frames_from_tables(tables, contract)
    assert len(frames) == len(tables)
    for table, frame in zip(tables, frames, strict=True):
        pd.testing.assert_frame_equal(frame, running.frame_from_table(table, contract))


def test_the_checks_see_text_as_categories_of_its_values_and_other_arrow_columns_in_one_chunk() -> None:
    """GX takes rows of the whole frame per expectation: a chunk per window made every take walk them all,
    and a take of text copies every string where a take of categories moves their codes."""
    contract = load_contract("customer")
    frames = running.frames_from_tables(
        [customer_table(n, window=w) for n, w in zip((3, 4, 2), MONTHS, strict=False)], contract
    )
    stacked = pd.concat(frames, ignore_index=True)
    checks = [e for e in build_suite(contract).expectations if getattr(e, "column", None)]
    columns = ["customer_key", *(str(getattr(e, "column", "")) for e in checks)]

    narrowed = running._checks_frame(stacked, checks, columns)

    text = [c for c in narrowed.columns if pd.api.types.is_string_dtype(stacked[c].dtype)]
    arrow = [c for c in narrowed.columns if isinstance(narrowed[c].array, pd.arrays.ArrowExtensionArray)]
    assert "customer_key" in text and arrow  # dates and decimals stay Arrow
    for column in text:
        coded = narrowed[column]
        assert isinstance(coded.dtype, pd.CategoricalDtype), column
        assert coded.cat.categories.is_unique
        pd.testing.assert_series_equal(coded.astype(stacked[column].dtype), stacked[column], check_names=True)
    assert all(_chunks(stacked[c]) == 3 for c in arrow)  # as stacking leaves them
    assert all(_chunks(narrowed[c]) == 1 for c in arrow)
    pd.testing.assert_frame_equal(narrowed[arrow], stacked[arrow])


def _chunks(column: pd.Series) -> int:
    arrow = pa.array(column.array)
    return arrow.num_chunks if isinstance(arrow, pa.ChunkedArray) else 1


def test_each_run_keeps_its_result_in_the_store_as_is_without_making_json(
    monkeypatch: pytest.MonkeyPatch, gx_passes: list[str]
) -> None:
    """GX's own store turned every run's result into indented JSON that nothing read."""
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult

    from pipelines.quality.results_store import KeptAsIsValidationResultsStore

    kept: list[Any] = []
    serialize = KeptAsIsValidationResultsStore.serialize

    def recorded(self: Any, value: Any) -> Any:
        kept.append(serialize(self, value))
        return kept[-1]

    def no_json(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a suite result was turned into JSON")

    monkeypatch.setattr(KeptAsIsValidationResultsStore, "serialize", recorded)
    monkeypatch.setattr(ExpectationSuiteValidationResult, "to_json_dict", no_json)
    frames = _frames()

    results = validate_frames([FrameToValidate(f.copy()) for f in frames], "customer")

    # Two structures, each its structure pass and its checks; one pass for the failing rows of frames[1:5].
    assert len(kept) == len(gx_passes) == 5
    assert all(isinstance(value, ExpectationSuiteValidationResult) for value in kept)
    monkeypatch.undo()  # GX's own store again, for the reference
    assert [_plain(r) for r in results] == [_plain(r) for r in _alone(frames)]
