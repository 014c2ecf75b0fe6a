"""Data quality: great-expectations suites generated from the data contracts, run one window at a time.

A suite is never written by hand. :func:`build_suite` turns every contract check (``notNull``, ``unique``,
``validValues``, ``pattern``, ``range``, ``length``) into one GX expectation carrying the check's severity,
and adds the structural expectations the contract implies: the columns in contract order and each column's
pandas dtype. :func:`validate_window` runs the suite on a normalized lake window, keeps the GX result
(``validation.json``) and a page for people (``report.html``) beside the window in the quality layer, and
raises :class:`~pipelines.errors.DataQualityError` when an ``error`` expectation fails. ``warning`` failures
are only reported.

Failing rows are named by their ``customer_key`` only. The stored result, the report and the error text carry
counts, contract metadata and keys, never the offending values: the report is meant to be shared, and the
values (e-mails, phones) are personal data.

great-expectations takes 5–6 s to import, so it is imported inside the functions that need it; importing
this module stays light (the CLI and DAG files import it). Setting GX up for a contract (context, data
source, suites, validation definitions) is done once per process and reused by every window validated
after: a call only runs the validation (see :class:`_Validation`).
"""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import math
import re
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.contracts import Check, Contract, load_contract, pandas_dtypes
from pipelines.errors import ContractError, DataQualityError, redact
from pipelines.lake import CUSTOMERS, NORMALIZED, QUALITY, Lake
from pipelines.windows import Window

if TYPE_CHECKING:
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )
    from great_expectations.expectations.expectation import Expectation

REPORT_JSON: Final = "validation.json"
REPORT_HTML: Final = "report.html"
KEY_COLUMN: Final = "customer_key"
#: Failures kept in a :class:`QualityResult` (it travels through XCom) and keys kept per failure there.
MAX_FAILURES: Final = 10
MAX_KEYS: Final = 5
#: Keys listed per expectation in the HTML report; ``validation.json`` lists every one.
HTML_KEYS: Final = 50
#: Failures spelled out in a :class:`DataQualityError` message.
MESSAGE_FAILURES: Final = 3

# Contract severities onto GX 1.x's ``FailureSeverity`` values; the contract's own word is kept in ``meta``.
_GX_SEVERITY: Final = {"error": "critical", "warning": "warning"}
# Result fields that hold counts or contract metadata, never row values: the only ones stored.
_RESULT_FIELDS: Final = (
    "element_count",
    "missing_count",
    "missing_percent",
    "unexpected_count",
    "unexpected_percent",
    "unexpected_percent_total",
    "unexpected_percent_nonmissing",
    "unexpected_index_column_names",
    "observed_value",
    "details",
)
# Expectations whose observed value is structural (a dtype, the column list), safe to store and show.
_STRUCTURAL_RULES: Final = ("columns", "dtype")


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed expectation, small enough for XCom and free of row values.

    Attributes:
        check: the contract check it came from, e.g. ``email:pattern`` (``table:columns``, ``name:dtype`` for
            the structural ones).
        expectation: the GX expectation type, e.g. ``expect_column_values_to_match_regex``.
        column: the column, or ``None`` for table-level expectations.
        severity: ``error`` or ``warning``.
        unexpected_count: failing rows, or ``None`` where the expectation is not row-level or raised.
        keys: the first failing ``customer_key`` values (row numbers where the frame has no key column).
        detail: a short structural explanation (expected versus found dtype, column differences, an
            exception).
    """

    check: str
    expectation: str
    column: str | None
    severity: str
    unexpected_count: int | None
    keys: tuple[str, ...] = ()
    detail: str | None = None

    def describe(self) -> str:
        """One line for logs and error messages: check, expectation, count, keys."""
        text = f"{self.check} ({self.expectation})"
        if self.unexpected_count is not None:
            text += f" {self.unexpected_count:,} row{'s' if self.unexpected_count != 1 else ''}"
        if self.detail:
            text += f": {self.detail}"
        if self.keys:
            text += f", keys {', '.join(self.keys)}"
        return text


@dataclass(frozen=True, slots=True)
class QualityResult:
    """What a validation found; small and secret-free, so it can travel through XCom.

    Attributes:
        source: ``skybiz`` or ``smartacc`` (``None`` for a frame validated outside the lake).
        window: the window key, where known.
        contract: the contract validated against, ``name@version``.
        rows: rows validated.
        success: no ``error`` expectation failed (warnings may have).
        evaluated: expectations evaluated.
        passed: expectations that passed.
        failed_errors: ``error`` expectations that failed.
        failed_warnings: ``warning`` expectations that failed.
        failures: the first failures, errors first.
        report_json_url: where the GX result was stored, if it was.
        report_html_url: where the HTML report was stored, if it was.
        seconds: wall time of the validation run.
    """

    source: str | None
    window: str | None
    contract: str
    rows: int
    success: bool
    evaluated: int
    passed: int
    failed_errors: int
    failed_warnings: int
    failures: tuple[Failure, ...]
    report_json_url: str | None
    report_html_url: str | None
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        """All failed expectations, errors and warnings."""
        return self.failed_errors + self.failed_warnings

    def summary(self) -> str:
        """A readable, value-free summary; the text of :class:`DataQualityError`."""
        where = f"{self.source}:{self.window}" if self.source and self.window else self.contract
        verdict = "passed" if self.success else "failed"
        head = (
            f"data quality check of {where} {verdict}: {self.failed_errors} error and {self.failed_warnings} "
            f"warning expectation(s) failed of {self.evaluated} on {self.rows:,} rows"
        )
        errors = [f for f in self.failures if f.severity == "error"]
        lines = [head]
        if errors:
            shown = "; ".join(f.describe() for f in errors[:MESSAGE_FAILURES])
            more = self.failed_errors - min(len(errors), MESSAGE_FAILURES)
            lines.append(f"errors: {shown}" + (f"; and {more} more" if more > 0 else ""))
        if self.report_html_url:
            lines.append(f"full report: {self.report_html_url} (GX result: {self.report_json_url})")
        else:
            lines.append("no report was stored (frame validated outside the lake)")
        return "\n".join(lines)


# -- suite --------------------------------------------------------------------------------------------


def build_suite(contract: Contract | str) -> gx.ExpectationSuite:
    """Generate the GX suite of a contract: one expectation per check, plus the columns and their dtypes.

    Every expectation carries the contract severity twice: as GX's own ``severity`` (``critical`` for
    ``error``, ``warning``) and in ``meta`` with the check name and rule, which the report and
    :class:`QualityResult` read back. Structural expectations (column order, dtypes) are ``error``.

    Args:
        contract: a parsed contract or the name of one in ``data_contracts/``.

    Returns:
        An unsaved ``ExpectationSuite`` named ``<contract>@<version>``.

    Raises:
        ContractError: a check lacks the parameter its rule needs (e.g. ``pattern`` without ``pattern``).
    """
    ge = _gx()
    contract = load_contract(contract) if isinstance(contract, str) else contract
    dtype_expectation = _dtype_expectation_class()
    expectations: list[Any] = [
        ge.expectations.ExpectTableColumnsToMatchOrderedList(
            column_list=contract.column_names,
            severity=_GX_SEVERITY["error"],
            meta=_meta("table:columns", "columns", "error", None),
        )
    ]
    expectations += [
        dtype_expectation(
            column=column,
            dtype=str(pd.api.types.pandas_dtype(dtype)),
            severity=_GX_SEVERITY["error"],
            meta=_meta(f"{column}:dtype", "dtype", "error", None),
        )
        for column, dtype in pandas_dtypes(contract).items()
    ]
    expectations += [_expectation_for(ge, check) for check in contract.checks]
    # Built whole: ``add_expectation`` on a suite needs an active data context, construction does not.
    suite = ge.ExpectationSuite(name=f"{contract.name}@{contract.version}", expectations=expectations)
    return cast("gx.ExpectationSuite", suite)


def _expectation_for(ge: Any, check: Check) -> Expectation:
    """The one GX expectation of a contract check."""
    e = ge.expectations
    common: dict[str, Any] = {
        "column": check.column,
        "severity": _GX_SEVERITY[check.severity],
        "meta": _meta(check.name, check.rule, check.severity, check.description),
    }
    params = check.params
    if check.rule == "notNull":
        return e.ExpectColumnValuesToNotBeNull(**common)  # type: ignore[no-any-return]
    if check.rule == "unique":
        return e.ExpectColumnValuesToBeUnique(**common)  # type: ignore[no-any-return]
    if check.rule == "validValues":
        values = _require(check, "validValues")
        if not isinstance(values, list) or not values:
            raise ContractError(
                f"check {check.name}: validValues must be a non-empty list", field=check.column
            )
        return e.ExpectColumnValuesToBeInSet(value_set=values, **common)  # type: ignore[no-any-return]
    if check.rule == "pattern":
        pattern = str(_require(check, "pattern"))
        try:
            re.compile(pattern)
        except re.error as exc:
            message = f"check {check.name}: pattern is not a regex: {exc}"
            raise ContractError(message, field=check.column) from None
        return e.ExpectColumnValuesToMatchRegex(regex=pattern, **common)  # type: ignore[no-any-return]
    if check.rule in ("range", "length"):
        low, high = params.get("min"), params.get("max")
        if low is None and high is None:
            raise ContractError(
                f"check {check.name}: {check.rule} needs min, max or both", field=check.column
            )
        if check.rule == "range":
            return e.ExpectColumnValuesToBeBetween(min_value=low, max_value=high, **common)  # type: ignore[no-any-return]
        return e.ExpectColumnValueLengthsToBeBetween(min_value=low, max_value=high, **common)  # type: ignore[no-any-return]
    raise ContractError(f"check {check.name}: no expectation for rule {check.rule!r}", field=check.column)


def _require(check: Check, param: str) -> Any:
    if param not in check.params:
        raise ContractError(f"check {check.name}: rule {check.rule} needs {param!r}", field=check.column)
    return check.params[param]


def _meta(check: str, rule: str, severity: str, description: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"check": check, "rule": rule, "severity": severity}
    if description:
        meta["description"] = description
    return meta


# -- validation ---------------------------------------------------------------------------------------


def validate_frame(
    df: pd.DataFrame,
    contract: Contract | str,
    *,
    key_column: str = KEY_COLUMN,
    lake: Lake | None = None,
    source: str | None = None,
    window: Window | None = None,
    raise_on_error: bool = True,
) -> QualityResult:
    """Validate a frame against a contract's generated suite; store the reports when given a lake window.

    The frame is not changed. Failing rows are identified by ``key_column`` (GX's
    ``unexpected_index_column_names``); when the frame has no such column, by row number.

    Args:
        df: the frame, with the contract's pandas dtypes.
        contract: a parsed contract or the name of one.
        key_column: the column that names a row in reports.
        lake: where to store ``validation.json`` and ``report.html`` (quality layer); needs ``window``.
        source: the source the frame came from (defaults to the window's).
        window: the window the frame is; with ``lake``, the reports go beside it.
        raise_on_error: raise on ``error`` failures (the CLI collects results of many windows first).

    Returns:
        The :class:`QualityResult`; ``success`` is false only when ``raise_on_error`` is false.

    Raises:
        DataQualityError: an ``error`` expectation failed; the message summarises and names the report.
    """
    if lake is not None and window is None:
        raise ValueError("validate_frame: a lake needs the window the reports belong to")
    contract = load_contract(contract) if isinstance(contract, str) else contract
    source = source or (window.source if window else None)
    with _lend(contract) as validation:  # imports and sets up GX on first use: not part of the run's time
        run = _run(validation, df, key_column)
        suite_name = validation.suite.name
    seconds = run.seconds
    keyed = key_column in df.columns
    results = run.results
    failures = [_failure(r, keyed) for r in results if not r.success]
    failures.sort(key=lambda f: f.severity != "error")
    failed_errors = sum(f.severity == "error" for f in failures)
    json_url = html_url = None
    if lake is not None and window is not None:
        facts = {
            "source": source,
            "window": window.key,
            "contract": f"{contract.name}@{contract.version}",
            "rows": len(df),
            "key_column": key_column if keyed else None,
            "validated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(seconds, 3),
        }
        stored = _stored_result(suite_name, run, keyed, key_column, facts)
        json_url = lake.write_file(
            QUALITY, source or window.source, CUSTOMERS, window, REPORT_JSON, _json_bytes(stored)
        )
        page = render_html(stored)
        html_url = lake.write_file(
            QUALITY, source or window.source, CUSTOMERS, window, REPORT_HTML, page.encode("utf-8")
        )
    result = QualityResult(
        source=source,
        window=window.key if window else None,
        contract=f"{contract.name}@{contract.version}",
        rows=len(df),
        success=failed_errors == 0,
        evaluated=len(results),
        passed=sum(bool(r.success) for r in results),
        failed_errors=failed_errors,
        failed_warnings=len(failures) - failed_errors,
        failures=tuple(dataclasses.replace(f, keys=f.keys[:MAX_KEYS]) for f in failures[:MAX_FAILURES]),
        report_json_url=json_url,
        report_html_url=html_url,
        seconds=round(seconds, 3),
    )
    if raise_on_error and not result.success:
        raise DataQualityError(
            result.summary(),
            source=result.source,
            window=result.window,
            failed_errors=result.failed_errors,
            failed_warnings=result.failed_warnings,
        )
    return result


def validate_window(
    lake: Lake, source: str, window: Window | str, *, raise_on_error: bool = True
) -> QualityResult:
    """Validate one normalized customers window and keep its reports beside it in the quality layer.

    Args:
        lake: the lake holding ``normalized/source=<source>/entity=customers/window=<key>/``.
        source: ``skybiz`` or ``smartacc``.
        window: the window or its key.
        raise_on_error: see :func:`validate_frame`.

    Raises:
        LakeError: the normalized window was never committed.
        DataQualityError: an ``error`` expectation failed.
    """
    window = Window.parse(source, window) if isinstance(window, str) else window
    contract = load_contract("customer")
    frame = frame_from_table(lake.read(NORMALIZED, source, CUSTOMERS, window), contract)
    return validate_frame(
        frame, contract, lake=lake, source=source, window=window, raise_on_error=raise_on_error
    )


def frame_from_table(table: pa.Table, contract: Contract) -> pd.DataFrame:
    """Convert an Arrow table to pandas with exactly the contract's dtypes.

    Plain ``to_pandas`` turns nullable ints into floats and decimals and dates into objects, which the dtype
    expectations would rightly fail; this maps each contract column to its pandas dtype on the way. Columns
    the contract does not know keep pandas' default conversion (the column-order expectation reports them).
    """
    wanted = {name: pd.api.types.pandas_dtype(d) for name, d in pandas_dtypes(contract).items()}
    by_type: dict[pa.DataType, Any] = {}
    for name, dtype in wanted.items():
        if name in table.column_names:
            by_type.setdefault(table.schema.field(name).type, dtype)
    frame = table.to_pandas(types_mapper=by_type.get)
    mismatched = {n: d for n, d in wanted.items() if n in frame.columns and frame[n].dtype != d}
    return cast(pd.DataFrame, frame.astype(mismatched)) if mismatched else frame


@dataclass(frozen=True, slots=True)
class _Run:
    """The outcome of one suite on one frame: results in suite order, GX's run metadata, wall seconds."""

    results: list[ExpectationValidationResult]
    meta: dict[str, Any]
    seconds: float


@dataclass(frozen=True, slots=True)
class _Pass:
    """One of the two GX runs of a call, registered once: its expectations, definition and suite order."""

    label: str
    expectations: tuple[Any, ...]
    definition: gx.ValidationDefinition
    order: Mapping[str | None, int]


@dataclass(frozen=True, slots=True)
class _Validation:
    """A contract's suite set up in its own ephemeral context, ready to validate any number of frames.

    Nothing here depends on the data: the context, the pandas data source with its dataframe asset and
    batch definition, the suite and one registered suite and validation definition per pass. Building
    them cost more than a 10-row window's whole validation, so they are built once per contract (and per
    thread validating at the same moment) and lent out by :func:`_lend`. A frame reaches GX only as a
    batch parameter, and :meth:`release` drops everything GX kept of it, so no call sees another's data.
    """

    suite: gx.ExpectationSuite
    datasource: Any
    passes: tuple[_Pass, ...]

    def validate(
        self, part: _Pass, frame: pd.DataFrame, result_format: Mapping[str, Any]
    ) -> ExpectationSuiteValidationResult:
        """Run one pass on a frame: what ``ValidationDefinition.run`` does, minus its two by-products.

        ``run`` first re-reads the suite and definition from the context's stores to check they are
        unchanged (they are: nothing changes them after :func:`_build_validation`), and at the end
        serialises the whole result, every failing key included, into the context's in-memory result
        store, which nobody reads and which would grow by a result per call in a context that lives on.
        That serialising is a third of the run on a 100,000-row window with 5% failing rows. The
        validation itself, and the metadata ``run`` adds to the result, are the same.
        """
        from great_expectations.constants import DATAFRAME_REPLACEMENT_STR
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.validator.v1_validator import Validator

        definition = part.definition
        validator = Validator(
            batch_definition=definition.batch_definition,
            batch_parameters={"dataframe": frame},
            result_format=dict(result_format),
        )
        outcome = validator.validate_expectation_suite(definition.suite)
        run_id = RunIdentifier(run_time=datetime.now(UTC))
        # In ``run``'s order, so validation.json lists them as before.
        outcome.meta["validation_id"] = definition.id
        outcome.meta["checkpoint_id"] = None
        outcome.meta["run_id"] = run_id
        outcome.meta["validation_time"] = run_id.run_time
        outcome.meta["batch_parameters"] = {"dataframe": DATAFRAME_REPLACEMENT_STR}
        return outcome

    def release(self) -> None:
        """Forget the last frame: drop the execution engine, which holds the batch and computed metrics.

        The data source keeps one engine for all its batches, and the engine keeps the last batch and
        every metric it computed (masks as long as the frame), under ids built from a batch id that is the
        same for every frame of the asset. Left alone, the last window would stay in memory until the next
        call and its metrics would sit under the ids the next frame's metrics get. The data source builds
        a fresh engine (a few microseconds) when it next needs one. ``_execution_engine`` is its cache of
        the engine: GX offers no public way to reset it.
        """
        self.datasource._execution_engine = None


@dataclass(slots=True)
class _Lender:
    """The idle validations of one contract; a call borrows one and gives it back when it succeeds."""

    contract: Contract
    idle: list[_Validation] = dataclasses.field(default_factory=list)


# Validations kept per contract, most recently used contract first. Equal contracts share one lender.
_LENDERS: list[_Lender] = []
_LENDERS_LOCK: Final = threading.Lock()
# GX's context factory and expectation registry are process-wide: one build at a time.
_BUILD_LOCK: Final = threading.Lock()
# Contracts whose validations are kept (the pipeline has one; tests parse variants of it).
_MAX_CONTRACTS: Final = 4
# Idle validations kept per contract: one per thread validating at the same moment, up to this many.
_MAX_IDLE: Final = 4


@contextmanager
def _lend(contract: Contract) -> Iterator[_Validation]:
    """Lend this call a validation of the contract, built on first use and reused by later calls.

    A validation serves one call at a time: GX's engine holds the batch being validated, so two threads
    never share one; a thread finding none idle builds its own, which joins the idle ones afterwards.
    One that raised is dropped rather than trusted again.
    """
    with _LENDERS_LOCK:
        lender = next((x for x in _LENDERS if x.contract == contract), None)
        if lender is None:
            lender = _Lender(contract)
        else:
            _LENDERS.remove(lender)
        _LENDERS.insert(0, lender)
        del _LENDERS[_MAX_CONTRACTS:]
        validation = lender.idle.pop() if lender.idle else None
    if validation is None:
        with _BUILD_LOCK:
            validation = _build_validation(contract)
    try:
        yield validation
    finally:
        validation.release()
    with _LENDERS_LOCK:
        if len(lender.idle) < _MAX_IDLE:
            lender.idle.append(validation)


def _build_validation(contract: Contract) -> _Validation:
    """Generate the contract's suite and set it up in a new ephemeral context with progress bars off.

    The suite is split into the two passes :func:`_run` makes, each registered as its own suite (which
    gives every expectation its id) with a validation definition on the one dataframe batch definition.
    """
    suite = build_suite(contract)
    ge = _gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    context = ge.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        ),
    )
    datasource = context.data_sources.add_pandas("skysmart")
    batch = datasource.add_dataframe_asset("frame").add_batch_definition_whole_dataframe("whole")
    structural = [e for e in suite.expectations if (e.meta or {}).get("rule") in _STRUCTURAL_RULES]
    checks = [e for e in suite.expectations if (e.meta or {}).get("rule") not in _STRUCTURAL_RULES]
    passes = []
    for label, expectations in (("structure", structural), ("checks", checks)):
        if not expectations:
            continue
        configurations = [e.configuration for e in expectations]
        registered = context.suites.add(
            ge.ExpectationSuite(name=f"{suite.name}#{label}", expectations=configurations)
        )
        definition = context.validation_definitions.add(
            ge.ValidationDefinition(name=registered.name, data=batch, suite=registered)
        )
        order = {e.id: i for i, e in enumerate(registered.expectations)}
        passes.append(_Pass(label, tuple(expectations), definition, order))
    return _Validation(suite=suite, datasource=datasource, passes=tuple(passes))


def _run(validation: _Validation, df: pd.DataFrame, key_column: str) -> _Run:
    """Run a prepared suite on a frame: only the validation, the GX setup having been done once.

    Two GX runs, for speed: the structural expectations (column order, dtypes) read only the frame's
    metadata and run on the whole frame; the row checks run on a frame of just the columns they check plus
    the key. GX's pandas engine filters the *whole* frame once per row expectation (nulls out, then the
    failing rows), so narrowing 48 columns to the ~21 the checks read halves the run.
    """
    _gx()
    result_format: dict[str, Any] = {
        "result_format": "COMPLETE",
        "return_unexpected_index_query": False,
        # Keys only: GX leaves the failing values out of the index list and the unexpected lists.
        "exclude_unexpected_values": True,
    }
    keyed = key_column in df.columns
    if keyed:
        result_format["unexpected_index_column_names"] = [key_column]
    checks = [e for part in validation.passes if part.label == "checks" for e in part.expectations]
    checked = [c for c in dict.fromkeys([key_column, *(getattr(e, "column", None) for e in checks)]) if c]
    frames = {"structure": df, "checks": _checks_frame(df, checks, checked)}

    started = time.perf_counter()
    results: list[ExpectationValidationResult] = []
    meta: dict[str, Any] = {}
    for part in validation.passes:
        data = frames[part.label]
        # A named index equal to the key column takes GX's fast path: it lists the failing index labels
        # instead of looking each row up (0.6 s versus 3.7 s for 100k failing rows).
        frame = data.set_index(key_column, drop=False) if keyed else data.reset_index(drop=True)
        outcome = validation.validate(part, frame, result_format)
        order = part.order
        results += sorted(outcome.results, key=lambda r: order.get(_config_id(r), len(order)))
        meta = dict(outcome.meta)
    return _Run(results=results, meta=meta, seconds=time.perf_counter() - started)


def _checks_frame(df: pd.DataFrame, checks: Sequence[Any], columns: Sequence[str]) -> pd.DataFrame:
    """The columns the row checks read, with range-checked numbers as float64 (a copy; ``df`` is untouched).

    GX compares ranges vectorised only for numpy int/float columns; nullable ``Int32`` and Arrow decimals
    go through a Python call per row (1.3 s per million rows per check). As float64, nulls become NaN
    (still skipped as missing) and the comparison is exact for bounds below 2^53 / 10^scale: values are
    only compared with the contract's bounds, never stored. The dtype checks see the original columns.
    """
    frame = df[[c for c in columns if c in df.columns]]
    ranged = {str(getattr(e, "column", "")) for e in checks if (e.meta or {}).get("rule") == "range"}
    for column in ranged:
        if column in frame.columns and _compared_per_row(frame[column].dtype):
            values = frame[column].to_numpy(dtype="float64", na_value=np.nan)
            frame = frame.assign(**{column: pd.Series(values, index=frame.index)})
    return frame


def _compared_per_row(dtype: Any) -> bool:
    """Numbers GX's range check would compare row by row: numeric, but not a plain numpy dtype."""
    if isinstance(dtype, np.dtype) or pd.api.types.is_bool_dtype(dtype):
        return False
    decimal = isinstance(dtype, pd.ArrowDtype) and pa.types.is_decimal(dtype.pyarrow_dtype)
    return decimal or pd.api.types.is_numeric_dtype(dtype)


def _config_id(result: ExpectationValidationResult) -> str | None:
    return result.expectation_config.id if result.expectation_config else None


# -- reading results ----------------------------------------------------------------------------------


def _failure(result: ExpectationValidationResult, keyed: bool) -> Failure:
    config = result.expectation_config
    meta = dict(config.meta or {}) if config else {}
    kwargs = dict(config.kwargs) if config else {}
    res = dict(result.result or {})
    raised = _exception_message(result)
    detail = None
    if raised:
        detail = f"raised {raised}"
    elif meta.get("rule") == "dtype":
        found = res.get("observed_value")
        detail = f"expected {kwargs.get('dtype')}, found {found if found is not None else 'no such column'}"
    elif meta.get("rule") == "columns":
        detail = _columns_detail(kwargs.get("column_list") or [], res.get("observed_value") or [])
    count = res.get("unexpected_count")
    return Failure(
        check=str(meta.get("check", config.type if config else "?")),
        expectation=config.type if config else "?",
        column=kwargs.get("column"),
        severity=str(meta.get("severity", "error")),
        unexpected_count=int(count) if count is not None and not raised else None,
        keys=tuple(_failing_keys(res, keyed)),
        detail=detail,
    )


def _failing_keys(res: Mapping[str, Any], keyed: bool) -> list[str]:
    """Failing row identities from GX's ``unexpected_index_list``, in row order, without repeats."""
    found = res.get("unexpected_index_list") or []
    raw: list[Any] = []
    for item in found:
        if isinstance(item, Mapping):
            for value in item.values():
                raw.extend(value if isinstance(value, list) else [value])
        else:
            raw.append(item)
    out: list[str] = []
    seen: set[str] = set()
    for value in raw:
        text = _key_text(value) if keyed else f"row {value}"
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def _key_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "(no key)"
    return str(value)


def _columns_detail(expected: Sequence[str], found: Sequence[str]) -> str:
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    if extra:
        parts.append(f"unexpected {', '.join(extra[:5])}" + (" ..." if len(extra) > 5 else ""))
    if not parts:
        parts.append("columns out of contract order")
    return "; ".join(parts)


def _exception_message(result: ExpectationValidationResult) -> str | None:
    info = result.exception_info or {}
    infos = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, Mapping)]
    for item in infos:
        if item.get("raised_exception"):
            return redact(str(item.get("exception_message") or "an exception")).splitlines()[0][:300]
    return None


def _stored_result(
    suite_name: str,
    run: _Run,
    keyed: bool,
    key_column: str,
    facts: Mapping[str, Any],
) -> dict[str, Any]:
    """The GX result in GX's own JSON shape, with every row value left out and keys made plain strings.

    ``exclude_unexpected_values`` already keeps values out of the index lists; the whitelist of result
    fields keeps them out of anything else an expectation might report. Exception tracebacks are dropped,
    their first line kept. The two GX runs (see :func:`_run`) are stored as one result of the whole suite.
    """
    from great_expectations.util import convert_to_json_serializable

    stored_results = []
    for r in run.results:
        config = r.expectation_config
        res = dict(r.result or {})
        meta = dict(config.meta or {}) if config else {}
        kept = {k: res[k] for k in _RESULT_FIELDS if k in res}
        if "observed_value" in kept and meta.get("rule") not in _STRUCTURAL_RULES:
            del kept["observed_value"]  # an aggregate of data values
        if not r.success:
            keys = _failing_keys(res, keyed)
            kept["unexpected_index_list"] = [{key_column: keys}] if keyed else keys
        raised = _exception_message(r)
        stored_results.append(
            {
                "success": bool(r.success),
                "expectation_config": convert_to_json_serializable(config.to_json_dict()) if config else None,
                "result": convert_to_json_serializable(kept),
                "meta": convert_to_json_serializable(dict(r.meta or {})),
                "exception_info": {
                    "raised_exception": raised is not None,
                    "exception_message": raised,
                    "exception_traceback": None,
                },
            }
        )
    passed = sum(1 for r in run.results if r.success)
    return {
        "success": passed == len(stored_results),
        "suite_name": suite_name,
        "statistics": {
            "evaluated_expectations": len(stored_results),
            "successful_expectations": passed,
            "unsuccessful_expectations": len(stored_results) - passed,
            "success_percent": 100.0 * passed / len(stored_results) if stored_results else None,
        },
        "meta": {**convert_to_json_serializable(run.meta), "skysmart": dict(facts)},
        "results": stored_results,
    }


def _json_bytes(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, indent=1, sort_keys=False, default=str, allow_nan=False).encode("utf-8")


# -- HTML report --------------------------------------------------------------------------------------


def render_html(stored: Mapping[str, Any]) -> str:
    """A self-contained report page from a stored (value-free) result.

    Why not GX Data Docs: they need a file-backed context and a site builder, pull Bootstrap, jQuery and
    fonts from CDNs and embed a remote tracking image (unstyled and leaky offline), and their tables print
    the failing *values*, which are personal data here. This page is one file with inline CSS and no
    scripts or remote references, lists every expectation with its severity and outcome, and names failing
    rows by ``customer_key`` only.
    """
    facts: Mapping[str, Any] = stored.get("meta", {}).get("skysmart", {})
    rows = [_html_row(r) for r in stored.get("results", [])]
    rows.sort(key=lambda r: r[0])  # stable: suite order within errors, warnings, passes
    errors = sum(1 for r in rows if r[0] == 0)
    warnings = sum(1 for r in rows if r[0] == 1)
    passed = sum(1 for r in rows if r[0] == 2)
    status = "FAILED" if errors else "PASSED with warnings" if warnings else "PASSED"
    status_class = "fail" if errors else "warn" if warnings else "pass"
    title = f"Data quality — {facts.get('source') or ''} {facts.get('window') or ''}".strip()
    fact_rows = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{html.escape(str(value))}</td></tr>"
        for label, value in (
            ("Source", facts.get("source")),
            ("Window", facts.get("window")),
            ("Contract", facts.get("contract") or stored.get("suite_name")),
            ("Rows", f"{facts.get('rows', 0):,}"),
            ("Rows named by", facts.get("key_column") or "row number"),
            ("Validated at", facts.get("validated_at")),
            ("Seconds", facts.get("seconds")),
            ("great-expectations", stored.get("meta", {}).get("great_expectations_version")),
        )
        if value is not None
    )
    head = (
        "<thead><tr><th>Outcome</th><th>Severity</th><th>Check</th><th>Expectation</th><th>Column</th>"
        '<th>Rule</th><th class="num">Failing rows</th><th>Failing keys</th></tr></thead>'
    )
    failed_rows = "".join(r[1] for r in rows if r[0] < 2)
    passed_rows = "".join(r[1] for r in rows if r[0] == 2)
    failed_table = (
        f"<h2>Failed expectations</h2><table>{head}<tbody>{failed_rows}</tbody></table>"
        if failed_rows
        else "<h2>No expectation failed</h2>"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
body{{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#1d2433}}
h1{{font-size:1.4rem;margin:0 0 .3rem}} h2{{font-size:1.1rem;margin:1.5rem 0 0}}
summary{{cursor:pointer;margin-top:1.5rem;font-weight:600}}
.status{{font-weight:700;padding:.15rem .6rem;border-radius:4px}}
.pass{{background:#dff3e4;color:#17612d}} .fail{{background:#fbe0e0;color:#8f1d1d}}
.warn{{background:#fff1cc;color:#7a5300}}
table{{border-collapse:collapse;margin:1rem 0;width:100%}} th,td{{text-align:left;padding:.35rem .6rem;
vertical-align:top;border-bottom:1px solid #e3e6ec}} .facts{{width:auto}} .facts th{{color:#5b6478}}
.num{{text-align:right;font-variant-numeric:tabular-nums}} code{{font-size:12px;word-break:break-all}}
.keys{{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}} .muted{{color:#6b7385}}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p><span class="status {status_class}">{status}</span>
 {len(rows)} expectations: {passed} passed, {errors} error failures, {warnings} warning failures.</p>
<table class="facts">{fact_rows}</table>
<p class="muted">Failing rows are named by key only; values are never shown. Every failing key is listed in
validation.json beside this file.</p>
{failed_table}
<details><summary>{passed} passed expectations</summary>
<table>{head}<tbody>{passed_rows}</tbody></table></details>
</body></html>
"""


def _html_row(result: Mapping[str, Any]) -> tuple[int, str]:
    """``(rank, <tr>)``: error failures first, then warning failures, then passes."""
    config: Mapping[str, Any] = result.get("expectation_config") or {}
    meta: Mapping[str, Any] = config.get("meta") or {}
    kwargs: Mapping[str, Any] = config.get("kwargs") or {}
    res: Mapping[str, Any] = result.get("result") or {}
    severity = str(meta.get("severity", "error"))
    success = bool(result.get("success"))
    rank = 2 if success else 0 if severity == "error" else 1
    outcome = "pass" if success else "fail" if severity == "error" else "warn"
    label = "passed" if success else "FAILED"
    rule = _rule_text(str(meta.get("rule", "")), kwargs, res)
    count = res.get("unexpected_count")
    count_text = f"{count:,}" if isinstance(count, int) else ""
    raised = (result.get("exception_info") or {}).get("exception_message")
    keys_list: list[str] = []
    for item in res.get("unexpected_index_list") or []:
        if isinstance(item, Mapping):
            for value in item.values():
                keys_list.extend(str(v) for v in (value if isinstance(value, list) else [value]))
        else:
            keys_list.append(str(item))
    keys = ", ".join(html.escape(k) for k in keys_list[:HTML_KEYS])
    if len(keys_list) > HTML_KEYS:
        keys += f' <span class="muted">and {len(keys_list) - HTML_KEYS:,} more</span>'
    if raised:
        keys = f'<span class="muted">raised: {html.escape(str(raised))}</span>'
    row = (
        f'<tr><td><span class="status {outcome}">{label}</span></td><td>{html.escape(severity)}</td>'
        f"<td>{html.escape(str(meta.get('check', '')))}</td><td><code>{html.escape(str(config.get('type')))}"
        f"</code></td><td>{html.escape(str(kwargs.get('column') or ''))}</td><td>{rule}</td>"
        f'<td class="num">{count_text}</td><td class="keys">{keys}</td></tr>'
    )
    return rank, row


def _rule_text(rule: str, kwargs: Mapping[str, Any], res: Mapping[str, Any]) -> str:
    """The contract rule in words: parameters come from the contract, observed values only when structural."""

    def esc(value: Any) -> str:
        return html.escape(str(value))

    if rule == "pattern":
        return f"matches <code>{esc(kwargs.get('regex'))}</code>"
    if rule == "validValues":
        return "one of " + ", ".join(esc(v) for v in kwargs.get("value_set") or [])
    if rule in ("range", "length"):
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        what = "length" if rule == "length" else "value"
        bounds = f"{esc(low) if low is not None else '−∞'} … {esc(high) if high is not None else '∞'}"
        return f"{what} in {bounds}"
    if rule == "notNull":
        return "not null"
    if rule == "unique":
        return "unique"
    if rule == "dtype":
        found = res.get("observed_value")
        text = f"dtype {esc(kwargs.get('dtype'))}"
        return text if found == kwargs.get("dtype") else f"{text} (found {esc(found)})"
    if rule == "columns":
        return f"{len(kwargs.get('column_list') or [])} columns in contract order"
    return esc(rule)


# -- great-expectations, lazily -----------------------------------------------------------------------


def _gx() -> Any:
    """Import great-expectations on first use, with its logging and one pandas warning quieted.

    GX logs ~200 INFO lines, and matches regexes with ``str.contains``, which warns about the contract's
    grouping parentheses on every pattern check. That warning is ignored where GX raises it, for the whole
    process: ``warnings.catch_warnings`` around each run would swap the process's filter list from
    several threads at once, which it is not safe for. :func:`_run` calls this every time, as whoever owns
    the process may reset the filters (pytest does around each test); adding the same filter again only
    moves it to the front.

    Also turns off GX's batch fingerprint: for every pandas batch under 1 GB it hashes every cell
    (``hash_pandas_object`` + MD5) only to record ``pandas_data_fingerprint`` in the result's metadata,
    which we never read; on the customer window that is a third of the run. ``HASH_THRESHOLD`` is the
    module constant GX compares the frame's size against on every batch.
    """
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    warnings.filterwarnings(
        "ignore",
        message="This pattern is interpreted as a regular expression",
        category=UserWarning,
        module="great_expectations",
    )
    import great_expectations
    from great_expectations.execution_engine import pandas_execution_engine

    pandas_execution_engine.HASH_THRESHOLD = 0
    return great_expectations


@cache
def _dtype_expectation_class() -> Any:
    """``ExpectColumnDtypeToEqual``: the column's pandas dtype, compared by name.

    GX's own ``ExpectColumnValuesToBeOfType`` compares only ``dtype.type`` on pandas, and no type name it
    accepts resolves to ``Decimal`` or ``date`` (the scalar types of Arrow decimal and date columns), so it
    cannot express ``decimal128(18, 2)[pyarrow]`` or ``date32[day][pyarrow]`` at all, nor tell ``Int32``
    from numpy ``int32``. Comparing ``str(dtype)`` checks exactly what :func:`pandas_dtypes` generates.
    Defined on first use because subclassing needs GX imported; GX registers it by its snake-case name.
    """
    _gx()
    from great_expectations.expectations.expectation import BatchExpectation

    class ExpectColumnDtypeToEqual(BatchExpectation):
        """Expect a column's pandas dtype to be exactly ``dtype`` (e.g. ``str``, ``Int32``)."""

        column: str
        dtype: str

        metric_dependencies = ("table.column_types",)
        success_keys = ("column", "dtype")
        domain_keys = ("batch_id", "row_condition", "condition_parser")
        args_keys = ("column", "dtype")

        def _validate(
            self,
            metrics: dict[str, Any],
            runtime_configuration: dict[str, Any] | None = None,
            execution_engine: Any = None,
        ) -> dict[str, Any]:
            kwargs = self._get_success_kwargs()
            found = {str(t["name"]): str(t["type"]) for t in metrics["table.column_types"]}
            observed = found.get(kwargs["column"])
            return {"success": observed == kwargs["dtype"], "result": {"observed_value": observed}}

    return ExpectColumnDtypeToEqual
