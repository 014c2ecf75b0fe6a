"""Validation of normalized customers: suites from the contract, raising on errors, value-free reports."""

from __future__ import annotations

import dataclasses
import gc
import json
import pickle
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from pipelines.contracts import CONTRACTS_DIR, load_contract, pandas_dtypes, parse_contract
from pipelines.einvoice.spec import load_spec
from pipelines.errors import ContractError, DataQualityError, LakeError
from pipelines.lake import CUSTOMERS, NORMALIZED, QUALITY, Lake
from pipelines.quality import (
    MAX_KEYS,
    REPORT_HTML,
    REPORT_JSON,
    QualityResult,
    build_suite,
    frame_from_table,
    validate_frame,
    validate_window,
)
from pipelines.windows import Window
from tests.quality.frames import customer_frame, customer_table
from tests.quality.gx_reference import plain_definition

JAN = Window("skybiz", date(2024, 1, 1), date(2024, 1, 31))
ROWS = 60
# A personal value planted in every failing row: it must never reach an error message or a report.
CANARY_EMAIL = "siti.canary@kedai.example.my"
CANARY_NAME = "Siti Canary binti Ahmad"


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return customer_frame(ROWS)


def _with_canary(df: pd.DataFrame, rows: list[int]) -> pd.DataFrame:
    out = df.copy()
    for i in rows:
        out.loc[i, "email"] = CANARY_EMAIL
        out.loc[i, "contact_name"] = CANARY_NAME
    return out


def _stored(stored: dict[str, Any], check: str) -> dict[str, Any]:
    return next(r for r in stored["results"] if r["expectation_config"]["meta"]["check"] == check)


def _report_dir(lake: Lake, window: Window = JAN) -> Path:
    return Path(lake.window_dir(QUALITY, window.source, CUSTOMERS, window))


# -- the suite ------------------------------------------------------------------------------------------


def test_suite_has_one_expectation_per_check_plus_columns_and_dtypes() -> None:
    contract = load_contract("customer")
    suite = build_suite(contract)
    # GX types these as the base Expectation, with an optional meta and no column or dtype.
    expectations: list[Any] = suite.expectations
    rules = [e.meta["rule"] for e in expectations]
    readiness = len(load_spec().rules)  # one warning per e-invoice readiness rule (tests/einvoice)
    assert len(expectations) == 1 + len(contract.columns) + len(contract.checks) + readiness
    assert rules.count("columns") == 1
    assert rules.count("dtype") == len(contract.columns)
    email = next(e for e in expectations if e.meta["check"] == "email:pattern")
    assert email.expectation_type == "expect_column_values_to_match_regex"
    assert email.severity.value == "critical" and email.meta["severity"] == "error"
    state = next(e for e in expectations if e.meta["check"] == "state:validValues")
    assert state.severity.value == "warning" and state.meta["severity"] == "warning"
    dtypes = {e.column: e.dtype for e in expectations if e.meta["rule"] == "dtype"}
    assert dtypes["name"] == "str"
    assert dtypes["payment_terms_days"] == "Int32"
    assert dtypes["credit_limit"] == "decimal128(18, 2)[pyarrow]"
    assert dtypes["modified_at"] == "datetime64[us, UTC]"


@pytest.mark.parametrize(
    ("quality", "message"),
    [
        pytest.param({"rule": "pattern"}, "needs 'pattern'", id="pattern-missing"),
        pytest.param({"rule": "pattern", "pattern": "^(skybiz"}, "pattern is not a regex", id="bad-regex"),
        pytest.param({"rule": "validValues", "validValues": []}, "non-empty list", id="no-values"),
        pytest.param({"rule": "length"}, "needs min, max or both", id="no-bounds"),
    ],
)
def test_check_with_unusable_parameters_is_a_contract_error(quality: dict[str, Any], message: str) -> None:
    doc = yaml.safe_load((CONTRACTS_DIR / "customer.yaml").read_text())
    doc["schema"][0]["properties"][0]["quality"] = [quality]
    with pytest.raises(ContractError, match=message) as err:
        build_suite(parse_contract(doc))
    assert err.value.field == "customer_key"


def test_importing_quality_does_not_import_great_expectations() -> None:
    code = "import sys, pipelines.quality, pipelines.cli.quality; print('great_expectations' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- clean data -----------------------------------------------------------------------------------------


def test_clean_frame_passes_and_is_not_changed(clean: pd.DataFrame) -> None:
    before = clean.copy()
    result = validate_frame(clean, "customer")
    assert result.success
    assert result.evaluated == result.passed == len(build_suite("customer").expectations)
    assert (result.failed_errors, result.failed_warnings, result.failures) == (0, 0, ())
    assert result.rows == ROWS
    assert result.report_json_url is None and result.report_html_url is None
    pd.testing.assert_frame_equal(clean, before)


# -- error failures -------------------------------------------------------------------------------------


def _break_not_null(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[[3, 7], "name"] = None
    return df


def _break_unique(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[7, "customer_key"] = cast(str, df.loc[3, "customer_key"])
    df.loc[7, "source_customer_id"] = cast(str, df.loc[3, "source_customer_id"])
    return df


def _break_valid_values(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[[3, 7], "source_system"] = "quickbooks"
    return df


def _break_pattern(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[[3, 7], "email"] = "siti.canary@@kedai"  # the failing value itself is personal data
    return df


def _break_length(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[[3, 7], "name"] = "Kedai " + "X" * 200
    return df


def _break_dtype(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype({"payment_terms_days": "float64"})


def _break_columns(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["website"])


NOT_NULL = "expect_column_values_to_not_be_null"
UNIQUE = "expect_column_values_to_be_unique"
IN_SET = "expect_column_values_to_be_in_set"
REGEX = "expect_column_values_to_match_regex"
LENGTHS = "expect_column_value_lengths_to_be_between"
TWO = ["C000003", "C000007"]
ERROR_CASES = [
    # (id, breaker, check, expectation, failing rows, keys named, error count: a missing column fails twice)
    ("notNull", _break_not_null, "name:notNull", NOT_NULL, 2, TWO, 1),
    ("unique", _break_unique, "customer_key:unique", UNIQUE, 2, ["C000003"], 1),
    ("validValues", _break_valid_values, "source_system:validValues", IN_SET, 2, TWO, 1),
    ("pattern", _break_pattern, "email:pattern", REGEX, 2, TWO, 1),
    ("length", _break_length, "name:length", LENGTHS, 2, TWO, 1),
    ("dtype", _break_dtype, "payment_terms_days:dtype", "expect_column_dtype_to_equal", None, [], 1),
    ("columns", _break_columns, "table:columns", "expect_table_columns_to_match_ordered_list", None, [], 2),
]


@pytest.mark.parametrize(
    ("breaker", "check", "expectation", "count", "keys", "errors"),
    [pytest.param(*case[1:], id=case[0]) for case in ERROR_CASES],
)
def test_each_kind_of_error_failure_raises_a_readable_value_free_summary(
    tmp_path: Path,
    clean: pd.DataFrame,
    breaker: Callable[[pd.DataFrame], pd.DataFrame],
    check: str,
    expectation: str,
    count: int | None,
    keys: list[str],
    errors: int,
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    bad = breaker(_with_canary(clean, [3, 7]))

    with pytest.raises(DataQualityError) as caught:
        validate_frame(bad, "customer", lake=lake, window=JAN)

    err = caught.value
    text = str(err)
    assert text.startswith(
        f"data quality check of skybiz:2024-01-01_2024-01-31 failed: {errors} error and 0 warning"
    )
    assert f"errors: {check} ({expectation})" in text
    if count is not None:
        assert f"{count} rows" in text
    for key in keys:
        assert f"skybiz:{key}" in text
    report = _report_dir(lake) / REPORT_HTML
    assert f"full report: {report}" in text
    assert str(_report_dir(lake) / REPORT_JSON) in text
    assert (err.source, err.window, err.context["failed_errors"]) == ("skybiz", JAN.key, errors)
    for secret in ("canary", "Canary", "@@"):
        assert secret not in text
        assert secret not in report.read_text()
        assert secret not in (_report_dir(lake) / REPORT_JSON).read_text()


def test_dtype_and_column_failures_say_what_was_expected(tmp_path: Path, clean: pd.DataFrame) -> None:
    result = validate_frame(_break_columns(_break_dtype(clean.copy())), "customer", raise_on_error=False)
    details = {f.check: f.detail for f in result.failures}
    assert details["payment_terms_days:dtype"] == "expected Int32, found float64"
    assert details["table:columns"] == "missing website"
    assert details["website:dtype"] == "expected str, found no such column"
    assert not result.success and result.failed_warnings == 0


def test_a_missing_checked_column_fails_its_checks_without_values(clean: pd.DataFrame) -> None:
    result = validate_frame(clean.drop(columns=["email"]), "customer", raise_on_error=False)
    by_check = {f.check: f for f in result.failures}
    assert set(by_check) == {"table:columns", "email:dtype", "email:pattern"}
    assert by_check["email:pattern"].unexpected_count is None
    assert (by_check["email:pattern"].detail or "").startswith("raised ")
    assert "email" in (by_check["email:pattern"].detail or "")


def test_ranges_on_nullable_ints_and_decimals_are_exact_at_the_bounds(clean: pd.DataFrame) -> None:
    edge = clean.copy()
    # pandas-stubs' scalars leave out Decimal, which the decimal128[pyarrow] column holds.
    edge.loc[0:3, "credit_limit"] = [Decimal("0.00"), Decimal("-0.01"), None, Decimal("9999999999999999.99")]  # type: ignore[index, assignment]
    edge.loc[0:3, "payment_terms_days"] = [3650, 3651, None, 0]
    before = edge.copy()
    result = validate_frame(edge, "customer")
    by_check = {f.check: f for f in result.failures}
    assert by_check["credit_limit:range"].keys == ("skybiz:C000001",)
    assert by_check["payment_terms_days:range"].keys == ("skybiz:C000001",)
    pd.testing.assert_frame_equal(edge, before)  # the float64 view for GX is a copy


def test_range_error_raises(clean: pd.DataFrame) -> None:
    # customer.yaml's ranges are warnings; the same rule at error severity must fail the run.
    doc = yaml.safe_load((CONTRACTS_DIR / "customer.yaml").read_text())
    prop = next(p for p in doc["schema"][0]["properties"] if p["name"] == "payment_terms_days")
    prop["quality"][0]["severity"] = "error"
    bad = clean.copy()
    bad.loc[5, "payment_terms_days"] = 9999
    expected = r"payment_terms_days:range \(expect_column_values_to_be_between\)"
    with pytest.raises(DataQualityError, match=expected):
        validate_frame(bad, parse_contract(doc))


def test_error_summary_names_the_first_three_errors_then_counts_the_rest(clean: pd.DataFrame) -> None:
    bad = _break_pattern(_break_valid_values(_break_not_null(clean.copy())))
    bad.loc[11, "currency"] = "RM"
    bad.loc[12, "country"] = "Malaysia"
    with pytest.raises(DataQualityError) as caught:
        validate_frame(bad, "customer")
    text = str(caught.value)
    assert "5 error and 0 warning expectation(s) failed" in text
    assert text.count("(expect_") == 3
    assert "; and 2 more" in text
    assert "no report was stored" in text


# -- warnings -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def warned(tmp_path_factory: pytest.TempPathFactory, clean: pd.DataFrame) -> tuple[QualityResult, Lake]:
    lake = Lake(str(tmp_path_factory.mktemp("warned") / "lake"))
    bad = _with_canary(clean, [2, 4, 6, 8])
    bad.loc[2, "state"] = "Selangorr"
    bad.loc[4, "postcode"] = "47500!!"
    bad.loc[6, "gender"] = "X"
    bad.loc[8, "credit_limit"] = Decimal("-5.00")  # type: ignore[call-overload]  # stubs' scalars lack Decimal
    bad.loc[list(range(10, 30)), "payment_terms_days"] = -1
    return validate_frame(bad, "customer", lake=lake, window=JAN), lake


def test_warning_failures_do_not_raise_but_are_reported(warned: tuple[QualityResult, Lake]) -> None:
    result, _ = warned
    assert result.success
    assert (result.failed_errors, result.failed_warnings) == (0, 5)
    by_check = {f.check: f for f in result.failures}
    assert set(by_check) == {
        "state:validValues",
        "postcode:pattern",
        "gender:validValues",
        "credit_limit:range",
        "payment_terms_days:range",
    }
    assert all(f.severity == "warning" for f in result.failures)
    assert result.summary().startswith(f"data quality check of skybiz:{JAN.key} passed: 0 error and 5 warn")
    assert by_check["state:validValues"].keys == ("skybiz:C000002",)
    assert by_check["credit_limit:range"].unexpected_count == 1
    terms = by_check["payment_terms_days:range"]
    assert terms.unexpected_count == 20
    assert terms.keys == tuple(f"skybiz:C{i:06d}" for i in range(10, 10 + MAX_KEYS))


def test_reports_sit_beside_the_window_and_name_every_failing_key(warned: tuple[QualityResult, Lake]) -> None:
    result, lake = warned
    directory = _report_dir(lake)
    assert result.report_json_url == str(directory / REPORT_JSON)
    assert result.report_html_url == str(directory / REPORT_HTML)

    stored = json.loads((directory / REPORT_JSON).read_text())
    assert stored["meta"]["skysmart"]["window"] == JAN.key
    assert stored["statistics"]["evaluated_expectations"] == result.evaluated == len(stored["results"])
    terms = _stored(stored, "payment_terms_days:range")
    assert terms["expectation_config"]["severity"] == "warning"
    assert terms["result"]["unexpected_index_list"] == [
        {"customer_key": [f"skybiz:C{i:06d}" for i in range(10, 30)]}
    ]

    page = (directory / REPORT_HTML).read_text()
    assert "PASSED with warnings" in page
    for key in ("skybiz:C000002", "skybiz:C000004", "skybiz:C000006", "skybiz:C000008", "skybiz:C000029"):
        assert key in page
    assert "gender:validValues" in page and "warning" in page
    assert not re.search(r"https?://", page)
    assert "<script" not in page and "src=" not in page and "<link" not in page
    for text in (page, (directory / REPORT_JSON).read_text()):
        assert "canary" not in text.lower()
        assert "Selangorr" not in text and "47500!!" not in text


def test_result_is_small_and_survives_pickling(warned: tuple[QualityResult, Lake]) -> None:
    result, _ = warned
    assert pickle.loads(pickle.dumps(result)) == result
    assert len(pickle.dumps(result)) < 4_000
    err = DataQualityError("x", source="skybiz", window=JAN.key, failed_errors=2)
    assert pickle.loads(pickle.dumps(err)).context["failed_errors"] == 2


# -- keys -----------------------------------------------------------------------------------------------


def test_html_lists_fifty_keys_and_counts_the_rest_while_json_keeps_all(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    bad = customer_frame(130)
    bad.loc[:, "gender"] = "U"
    result = validate_frame(bad, "customer", lake=lake, window=JAN)
    failure = next(f for f in result.failures if f.check == "gender:validValues")
    assert failure.unexpected_count == 130 and len(failure.keys) == MAX_KEYS
    page = Path(result.report_html_url or "").read_text()
    assert "skybiz:C000049" in page and "skybiz:C000050" not in page
    assert "and 80 more" in page
    stored = json.loads(Path(result.report_json_url or "").read_text())
    gender = _stored(stored, "gender:validValues")
    assert len(gender["result"]["unexpected_index_list"][0]["customer_key"]) == 130


def test_frame_without_the_key_column_names_rows_by_number(clean: pd.DataFrame) -> None:
    bad = clean.copy()
    bad.loc[[4, 9], "gender"] = "U"
    result = validate_frame(bad, "customer", key_column="no_such_column")
    failure = next(f for f in result.failures if f.check == "gender:validValues")
    assert failure.keys == ("row 4", "row 9")


# -- windows in the lake --------------------------------------------------------------------------------


def test_validate_window_reads_the_normalized_window_and_reports_beside_it(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    smartacc = Window("smartacc", date(2024, 3, 1), date(2024, 3, 31))
    lake.write_table(NORMALIZED, "smartacc", CUSTOMERS, smartacc, customer_table(40, "smartacc", smartacc))

    result = validate_window(lake, "smartacc", smartacc.key)

    assert result.success and result.rows == 40 and result.failed == 0
    assert (result.source, result.window) == ("smartacc", smartacc.key)
    directory = _report_dir(lake, smartacc)
    assert result.report_html_url == str(directory / REPORT_HTML)
    assert json.loads((directory / REPORT_JSON).read_text())["success"] is True
    assert "PASSED" in (directory / REPORT_HTML).read_text()


def test_validate_window_raises_on_errors_in_the_lake(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    table = customer_table(20)
    emails = table.column("email").to_pylist()
    emails[6] = "not-an-email"
    table = table.set_column(table.schema.get_field_index("email"), "email", [emails])
    lake.write_table(NORMALIZED, "skybiz", CUSTOMERS, JAN, table)
    with pytest.raises(DataQualityError, match=r"email:pattern .* 1 row, keys skybiz:C000006"):
        validate_window(lake, "skybiz", JAN)
    assert (_report_dir(lake) / REPORT_HTML).exists()


def test_validate_window_of_a_missing_window_is_a_lake_error(tmp_path: Path) -> None:
    with pytest.raises(LakeError, match="normalized window not found"):
        validate_window(Lake(str(tmp_path / "lake")), "skybiz", JAN)


def test_frame_from_table_gives_the_contract_dtypes_even_with_nulls() -> None:
    contract = load_contract("customer")
    table = customer_table(3)
    nulls = table.set_column(
        table.schema.get_field_index("payment_terms_days"),
        "payment_terms_days",
        [[None, 30, None]],
    )
    frame = frame_from_table(nulls, contract)
    for name, dtype in pandas_dtypes(contract).items():
        assert frame[name].dtype == pd.api.types.pandas_dtype(dtype), name
    assert frame["payment_terms_days"].isna().tolist() == [True, False, True]


# -- many windows in one process ------------------------------------------------------------------------
# Each call sets GX up afresh and validates a batch: nothing of one window may reach the next.

FEB = Window("skybiz", date(2024, 2, 1), date(2024, 2, 29))


def _write_window(lake: Lake, window: Window, rows: int, **changes: dict[int, object]) -> None:
    """A clean window of ``rows`` customers in the normalized lake, with ``column={row: value}`` changes."""
    table = customer_table(rows, window.source, window)
    for column, values in changes.items():
        field = table.schema.field(column)
        cells = table.column(column).to_pylist()
        for row, value in values.items():
            cells[row] = value
        table = table.set_column(table.schema.get_field_index(column), field, pa.array(cells, field.type))
    lake.write_table(NORMALIZED, window.source, CUSTOMERS, window, table)


def test_a_failing_window_then_a_clean_one_each_get_their_own_result(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    _write_window(lake, JAN, 20, email={6: "not-an-email"}, gender={2: "X", 4: "X"})
    _write_window(lake, FEB, 30)

    failing = validate_window(lake, "skybiz", JAN, raise_on_error=False)
    clean = validate_window(lake, "skybiz", FEB)

    assert not failing.success
    assert (failing.rows, failing.failed_errors, failing.failed_warnings) == (20, 1, 1)
    assert {f.check: f.keys for f in failing.failures} == {
        "email:pattern": ("skybiz:C000006",),
        "gender:validValues": ("skybiz:C000002", "skybiz:C000004"),
    }
    assert clean.success
    assert (clean.window, clean.rows, clean.failed, clean.failures) == (FEB.key, 30, 0, ())
    assert clean.evaluated == clean.passed == failing.evaluated
    stored = json.loads((_report_dir(lake, FEB) / REPORT_JSON).read_text())
    assert stored["success"] is True and stored["meta"]["skysmart"]["rows"] == 30
    assert all(r["success"] and "unexpected_index_list" not in r["result"] for r in stored["results"])
    counts = {r["result"]["element_count"] for r in stored["results"] if "element_count" in r["result"]}
    assert counts == {30}
    page = (_report_dir(lake, FEB) / REPORT_HTML).read_text()
    assert "FAILED" not in page and "skybiz:C000006" not in page and "skybiz:C000002" not in page
    # And the failing window fails the same way again after the clean one.
    with pytest.raises(DataQualityError) as again:
        validate_window(lake, "skybiz", JAN)
    assert str(again.value).startswith(failing.summary())


def _errors_at_6_warnings_at_2_and_4(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[6, "email"] = "not-an-email"
    df.loc[[2, 4], "gender"] = "X"
    return df


def _warnings_at_7_8_and_3(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[[7, 8], "gender"] = "X"
    df.loc[3, "postcode"] = "47500!!"
    return df


def _ranges_at_1_on_twelve_rows(df: pd.DataFrame) -> pd.DataFrame:
    df = df.head(12).copy()
    df.loc[1, "payment_terms_days"] = -1
    return df


def _keep(df: pd.DataFrame) -> pd.DataFrame:
    return df


def _gender_at_4_and_9(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[[4, 9], "gender"] = "U"
    return df


# (id, breaker, keyword arguments, rows, failing checks with the keys they name)
WINDOWS_IN_TURN = [
    (
        "errors",
        _errors_at_6_warnings_at_2_and_4,
        {},
        ROWS,
        {"email:pattern": ("skybiz:C000006",), "gender:validValues": ("skybiz:C000002", "skybiz:C000004")},
    ),
    ("clean", _keep, {}, ROWS, {}),
    (
        "other-keys",
        _warnings_at_7_8_and_3,
        {},
        ROWS,
        {"gender:validValues": ("skybiz:C000007", "skybiz:C000008"), "postcode:pattern": ("skybiz:C000003",)},
    ),
    (
        "structure",
        lambda df: _break_columns(_break_dtype(df)),
        {},
        ROWS,
        {"table:columns": (), "payment_terms_days:dtype": (), "website:dtype": ()},
    ),
    ("fewer-rows", _ranges_at_1_on_twelve_rows, {}, 12, {"payment_terms_days:range": ("skybiz:C000001",)}),
    (
        "unkeyed",
        _gender_at_4_and_9,
        {"key_column": "no_such_column"},
        ROWS,
        {"gender:validValues": ("row 4", "row 9")},
    ),
]


def _validated(clean: pd.DataFrame, case: tuple[Any, ...]) -> QualityResult:
    _, breaker, kwargs, *_ = case
    result = validate_frame(breaker(clean.copy()), "customer", raise_on_error=False, **kwargs)
    return dataclasses.replace(result, seconds=0.0)


def test_windows_validated_in_turn_keep_their_own_failing_keys(clean: pd.DataFrame) -> None:
    forward = {case[0]: _validated(clean, case) for case in WINDOWS_IN_TURN}
    backward = {case[0]: _validated(clean, case) for case in reversed(WINDOWS_IN_TURN)}

    for label, _, _, rows, failing in WINDOWS_IN_TURN:
        result = forward[label]
        assert {f.check: f.keys for f in result.failures} == failing, label
        assert (result.rows, result.evaluated) == (rows, len(build_suite("customer").expectations)), label
        assert backward[label] == result, label


def test_windows_validated_at_once_on_two_threads_match_one_at_a_time(clean: pd.DataFrame) -> None:
    expected = {case[0]: _validated(clean, case) for case in WINDOWS_IN_TURN}
    cases = WINDOWS_IN_TURN * 3

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [(case[0], pool.submit(_validated, clean.copy(), case)) for case in cases]

    for label, future in futures:
        assert future.result() == expected[label], label


def test_nothing_of_a_window_outlives_its_validation() -> None:
    rows = 173  # a length no other frame in these tests has
    frame = _errors_at_6_warnings_at_2_and_4(customer_frame(rows))
    validate_frame(frame, "customer", raise_on_error=False)
    del frame
    gc.collect()
    # type(), not isinstance(): isinstance asks each object's __class__, which lazy proxies (Airflow's, when
    # loaded in the same process) answer by importing optional modules.
    alive = [o for o in gc.get_objects() if type(o) in (pd.DataFrame, pd.Series) and len(o) == rows]
    assert alive == []


def test_stored_gx_metadata_is_what_validation_definition_run_records(
    tmp_path: Path, clean: pd.DataFrame
) -> None:
    # Validation goes through ValidationDefinition.run (once per batch of windows); a window's stored metadata
    # is that run's, checked here against a plain run of GX's own, so a GX upgrade that changes it shows.
    import great_expectations as gx
    from great_expectations.util import convert_to_json_serializable

    result = validate_frame(clean, "customer", lake=Lake(str(tmp_path / "lake")), window=JAN)
    ours = json.loads(Path(result.report_json_url or "").read_text())["meta"]
    del ours["skysmart"]
    # GX's expectations package re-exports its classes without __all__, so mypy sees none as exported.
    suite = gx.ExpectationSuite(
        name="rows",
        expectations=[gx.expectations.ExpectTableRowCountToBeBetween(min_value=1)],  # type: ignore[attr-defined]
    )
    definition = plain_definition(suite, datasource="skysmart", name="rows")
    theirs = convert_to_json_serializable(dict(definition.run(batch_parameters={"dataframe": clean}).meta))

    assert list(ours) == list(theirs)
    volatile = {"batch_markers", "validation_id", "run_id", "validation_time"}
    assert {k: v for k, v in ours.items() if k not in volatile} == {
        k: v for k, v in theirs.items() if k not in volatile
    }
    assert list(ours["run_id"]) == list(theirs["run_id"])
    assert ours["validation_id"] and ours["validation_time"] and ours["batch_markers"]["ge_load_time"]


@pytest.mark.parametrize(
    "value",
    [
        {"element_count": 30, "unexpected_percent": 6.25, "missing_percent": float("nan"), "ok": True},
        {"unexpected_index_list": [{"customer_key": ["skybiz:C1", "skybiz:C2"]}], "nothing": None},
        {1: (2, 3.5), "nested": [{"n": np.int64(7)}, np.float64(0.1), pd.Timestamp("2024-01-01T00:00Z")]},
        [np.bool_(True), {"dtype": "str"}, (), {}],
    ],
)
def test_stored_results_are_converted_as_gx_converts_them(value: Any) -> None:
    """Plain JSON values are passed through without GX's converter; the stored JSON must not change."""
    from great_expectations.util import convert_to_json_serializable

    from pipelines.quality import report

    mine = report._json_ready(value)

    assert json.dumps(mine) == json.dumps(convert_to_json_serializable(value))
