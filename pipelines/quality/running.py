"""Running the suite: one great-expectations validation for a batch of windows, results told per window.

GX's cost is mostly fixed per call — building the metric graph of ~70 expectations takes longer than
checking a few hundred rows — so validating window by window made the cost of a run grow with the length of
history. Here one call validates any number of windows of one contract:

* the **row checks** run once, through ``ValidationDefinition.run``, on the windows' checked columns stacked
  into one frame, for their counts; the checks that found failing rows run again for those rows, each
  coming back as its position in that frame (a row-number index GX lists directly), which says which
  window holds it and what its ``customer_key`` is. Each window then gets the
  result GX would have given it alone: its own counts and percentages, its own failing keys, its own
  success. Every rule but ``unique`` is a property of a row, so a window's failing rows are the batch's
  failing rows that it holds; for ``unique`` GX flags every occurrence of a repeated value, and a window
  keeps the flagged rows whose value repeats *within the window*, so a customer met in two windows fails
  neither, exactly as when each was validated alone;
* the **structural checks** (column order, dtypes) read only metadata, so they run once per distinct
  structure, on the first window with it; their results are kept (:data:`STRUCTURES_KEPT` of them) and
  told to later windows of the same structure, in this call or a later one, without running GX again.

Only GX's public API is used: a fresh ephemeral context per call with the suite and validation definitions
registered, and ``ValidationDefinition.run``. GX keeps its current context in a process-wide slot that
``run`` reads its stores from, so calls are serialised by a lock and the slot is emptied afterwards — nothing
of a batch's rows outlives the call.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.contracts import Contract, load_contract, pandas_dtypes
from pipelines.errors import DataQualityError
from pipelines.lake import CUSTOMERS, NORMALIZED, QUALITY, Lake
from pipelines.quality.report import (
    KEY_COLUMN,
    MAX_FAILURES,
    MAX_KEYS,
    REPORT_HTML,
    REPORT_JSON,
    QualityResult,
    Run,
    failure_of,
    json_bytes,
    render_html,
    stored_result,
)
from pipelines.quality.suite import STRUCTURAL_RULES, _gx, build_suite
from pipelines.windows import Window

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult

#: Rows validated in one GX call at most: windows are grouped up to this, so memory does not grow with
#: history. A call costs about a second whatever its rows, plus its rows; validating a batch takes some
#: 3.5 kB a row (the frame, SmartAcc's source_extras included, and GX's copies of its columns). At 20,000
#: rows 12 windows of 4,300 rows took 6.8 s in three calls; at 50,000, 5.4 s in two, 95 MB more.
BATCH_ROWS: Final = 50_000
#: The row checks' first run: counts and percentages, no row lists (see :func:`_validate_checks`). A window's
#: result is built from these alone when its batch has no failing row for the check.
_COUNTS_FORMAT: Final = {"result_format": "BASIC", "partial_unexpected_count": 0}
# The row-number column (and index) of the stacked frame GX validates; no contract column has this name.
_ROW: Final = "__skysmart_row__"
# GX's current-context slot is process-wide and read by ValidationDefinition.run: one call at a time.
_GX_LOCK: Final = threading.Lock()
#: Structures whose structural results are kept for later windows. A structure pass costs a GX run (about
#: 0.1 s) and a process meets a handful of structures: one per source and contract version.
STRUCTURES_KEPT: Final = 16
# A validation definition registered in a batch's context, and its expectations' positions by GX's ids.
_Definition = tuple[Any, dict[str | None, int]]
# Registers expectations under a label as a validation definition of the batch (see :func:`_registrar`).
_Register = Callable[[str, Sequence[Any]], _Definition]
# (the contract's id, the frame's (column, dtype) in order, whether it has the key column) -> the contract
# (held, so that its id is not reused while the entry lives) and the structural results.
_StructureKey = tuple[int, tuple[tuple[str, str], ...], bool]
_structures: dict[_StructureKey, tuple[Contract, list[ExpectationValidationResult]]] = {}


@dataclass(frozen=True, slots=True)
class FrameToValidate:
    """One window's frame in a batch: the frame (contract dtypes), where it comes from, where reports go."""

    frame: pd.DataFrame
    window: Window | None = None
    source: str | None = None


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

    The frame is not changed. Failing rows are identified by ``key_column``; when the frame has no such
    column, by row number.

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
    item = FrameToValidate(df, window, source or (window.source if window else None))
    (result,) = validate_frames([item], contract, key_column=key_column, lake=lake)
    if raise_on_error:
        _raise_for(result)
    return result


def validate_frames(
    items: Sequence[FrameToValidate],
    contract: Contract | str,
    *,
    key_column: str = KEY_COLUMN,
    lake: Lake | None = None,
) -> list[QualityResult]:
    """Validate many windows' frames in one GX call per :data:`BATCH_ROWS`; one result per frame, in order.

    Each result (and each stored report) is what validating that frame alone gives: its own counts, keys and
    verdict. Nothing is raised for failures: the caller decides which windows to hold back.

    Args:
        items: the frames, each with its window and source (reports need both, and a lake).
        contract: a parsed contract or the name of one.
        key_column: the column that names a row in reports.
        lake: where to store each window's ``validation.json`` and ``report.html``.
    """
    contract = load_contract(contract) if isinstance(contract, str) else contract
    results: list[QualityResult] = []
    for chunk in _chunks(items):
        runs = _validate_batch([i.frame for i in chunk], contract, key_column)
        configs: dict[int, Any] = {}  # the chunk's windows share their expectation configurations
        results += [
            _result(item, run, contract, key_column, lake, configs)
            for item, run in zip(chunk, runs, strict=True)
        ]
    return results


def validate_windows(lake: Lake, source: str, windows: Sequence[Window | str]) -> list[QualityResult]:
    """Validate normalized customers windows together; reports beside each window.

    ``source`` names the source of windows given as keys; :class:`Window` objects carry their own, so one
    call can validate the windows of every source at once (they share the customer contract, and a
    great-expectations run costs about the same for 60 rows as for 6,000). Failures are not raised: a
    window whose result is not ``success`` should be held back, the others can load. Windows are read and
    validated :data:`BATCH_ROWS` rows at a time.

    Raises:
        LakeError: a normalized window was never committed.
    """
    contract = load_contract("customer")
    parsed = [Window.parse(source, w) if isinstance(w, str) else w for w in windows]
    results: list[QualityResult] = []
    group: list[tuple[Window, pa.Table]] = []
    rows = 0

    def validate_group() -> None:
        frames = frames_from_tables([table for _, table in group], contract)
        items = [FrameToValidate(f, w, w.source) for (w, _), f in zip(group, frames, strict=True)]
        results.extend(validate_frames(items, contract, lake=lake))

    for window in parsed:
        table = lake.read(NORMALIZED, window.source, CUSTOMERS, window)
        if group and rows + table.num_rows > BATCH_ROWS:  # the batch :func:`validate_frames` would cut here
            validate_group()
            group, rows = [], 0
        group.append((window, table))
        rows += table.num_rows
    if group:
        validate_group()
    return results


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
    (result,) = validate_windows(lake, source, [window])
    if raise_on_error:
        _raise_for(result)
    return result


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


def frames_from_tables(tables: Sequence[pa.Table], contract: Contract) -> list[pd.DataFrame]:
    """:func:`frame_from_table` of each table, converting those with one schema together.

    A conversion costs mostly per column, not per row, so a hundred small windows convert as one table and
    are then cut back into frames (row slices of it, each indexed from 0 as if converted alone).
    """
    frames: list[pd.DataFrame] = []
    start = 0
    while start < len(tables):
        end = start + 1
        while end < len(tables) and tables[end].schema.equals(tables[start].schema):
            end += 1
        run = tables[start:end]
        whole = frame_from_table(pa.concat_tables(run) if len(run) > 1 else run[0], contract)
        offset = 0
        for table in run:
            frame = whole.iloc[offset : offset + table.num_rows]
            frame.index = pd.RangeIndex(table.num_rows)
            frames.append(frame)
            offset += table.num_rows
        start = end
    return frames


def _raise_for(result: QualityResult) -> None:
    if not result.success:
        raise DataQualityError(
            result.summary(),
            source=result.source,
            window=result.window,
            failed_errors=result.failed_errors,
            failed_warnings=result.failed_warnings,
        )


def _chunks(items: Sequence[FrameToValidate]) -> list[list[FrameToValidate]]:
    chunks: list[list[FrameToValidate]] = [[]]
    rows = 0
    for item in items:
        if chunks[-1] and rows + len(item.frame) > BATCH_ROWS:
            chunks.append([])
            rows = 0
        chunks[-1].append(item)
        rows += len(item.frame)
    return [c for c in chunks if c]


def _result(
    item: FrameToValidate,
    run: Run,
    contract: Contract,
    key_column: str,
    lake: Lake | None,
    configs: dict[int, Any],
) -> QualityResult:
    """A window's :class:`QualityResult` from its share of the batch; reports stored when there is a lake."""
    df, window, source = item.frame, item.window, item.source
    keyed = key_column in df.columns
    failures = [failure_of(r, keyed) for r in run.results if not r.success]
    failures.sort(key=lambda f: f.severity != "error")
    failed_errors = sum(f.severity == "error" for f in failures)
    name = f"{contract.name}@{contract.version}"
    json_url = html_url = None
    if lake is not None and window is not None:
        facts = {
            "source": source,
            "window": window.key,
            "contract": name,
            "rows": len(df),
            "key_column": key_column if keyed else None,
            "validated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(run.seconds, 3),
        }
        stored = stored_result(name, run, keyed, key_column, facts, configs)
        where = source or window.source
        json_url = lake.write_file(QUALITY, where, CUSTOMERS, window, REPORT_JSON, json_bytes(stored))
        page = render_html(stored).encode("utf-8")
        html_url = lake.write_file(QUALITY, where, CUSTOMERS, window, REPORT_HTML, page)
    return QualityResult(
        source=source,
        window=window.key if window else None,
        contract=name,
        rows=len(df),
        success=failed_errors == 0,
        evaluated=len(run.results),
        passed=sum(bool(r.success) for r in run.results),
        failed_errors=failed_errors,
        failed_warnings=len(failures) - failed_errors,
        failures=tuple(dataclasses.replace(f, keys=f.keys[:MAX_KEYS]) for f in failures[:MAX_FAILURES]),
        report_json_url=json_url,
        report_html_url=html_url,
        seconds=round(run.seconds, 3),
    )


def _validate_batch(frames: Sequence[pd.DataFrame], contract: Contract, key_column: str) -> list[Run]:
    """Run the contract's suite over the frames in one GX context; each frame's results as if alone."""
    suite = build_suite(contract)
    structural = [e for e in suite.expectations if (e.meta or {}).get("rule") in STRUCTURAL_RULES]
    checks = [e for e in suite.expectations if (e.meta or {}).get("rule") not in STRUCTURAL_RULES]
    results: list[list[ExpectationValidationResult]] = [[] for _ in frames]
    metas: list[dict[str, Any]] = [{} for _ in frames]
    groups: dict[tuple[tuple[str, str], ...], list[int]] = {}
    for i, frame in enumerate(frames):
        groups.setdefault(tuple((str(c), str(t)) for c, t in frame.dtypes.items()), []).append(i)
    started = time.perf_counter()
    with _GX_LOCK:
        ge = _gx()
        # Public in great_expectations.data_context, though its __init__ does not list it for type checkers.
        from great_expectations.data_context import set_context  # type: ignore[attr-defined]
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        from pipelines.quality.results_store import STORE_NAME, store_config

        defaults = InMemoryStoreBackendDefaults()
        context = ge.get_context(
            mode="ephemeral",
            project_config=DataContextConfig(
                store_backend_defaults=defaults,
                stores={**defaults.stores, STORE_NAME: store_config()},
                validation_results_store_name=STORE_NAME,
                analytics_enabled=False,
                progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            ),
        )
        try:
            batch = (
                context.data_sources.add_pandas("skysmart")
                .add_dataframe_asset("frame")
                .add_batch_definition_whole_dataframe("whole")
            )
            keyed = {
                structure: key_column in frames[members[0]].columns for structure, members in groups.items()
            }
            known = {
                structure: _known_structure(contract, structure, keyed[structure]) if checks else None
                for structure in groups
            }
            register = _registrar(context, batch, suite.name)
            definitions = {}
            for label, expectations in (("structure", structural), ("checks", checks)):
                if label == "structure" and all(found is not None for found in known.values()):
                    continue  # every structure's results are known already
                if expectations:
                    definitions[label] = register(label, expectations)
            for structure, members in groups.items():
                group = [frames[i] for i in members]
                ordered = known[structure]
                if ordered is None and "structure" in definitions:
                    definition, order = definitions["structure"]
                    outcome = definition.run(
                        batch_parameters={"dataframe": _keyed(group[0], key_column)},
                        result_format=_result_format(key_column if keyed[structure] else None),
                    )
                    ordered = sorted(outcome.results, key=lambda r: order.get(_config_id(r), len(order)))
                    for i in members:
                        metas[i] = dict(outcome.meta)  # the checks' run, if any, replaces it below
                    if checks:
                        _keep_structure(contract, structure, keyed[structure], ordered)
                for i in members:
                    results[i] += ordered or []
                if "checks" in definitions:
                    definition, order = definitions["checks"]
                    split = _validate_checks(definition, order, group, checks, key_column, register)
                    for i, (window_results, meta) in zip(members, split, strict=True):
                        results[i] += window_results
                        metas[i] = meta
        finally:
            set_context(None)
            del context
    seconds = time.perf_counter() - started
    total = sum(len(f) for f in frames) or 1
    return [
        Run(results=r, meta=m, seconds=seconds * (len(f) or 1) / max(total, len(frames)))
        for r, m, f in zip(results, metas, frames, strict=True)
    ]


def _registrar(context: Any, batch: Any, suite_name: str) -> _Register:
    """Registers expectations in ``context`` as a validation definition of ``batch``, under a fresh name.

    Returns the definition and each expectation's position among those given, by the id GX gave it.
    """
    ge = _gx()
    registrations: Counter[str] = Counter()  # a label registered again gets a fresh name

    def register(label: str, expectations: Sequence[Any]) -> _Definition:
        registrations[label] += 1
        name = f"{suite_name}#{label}" + (f"-{registrations[label]}" if registrations[label] > 1 else "")
        registered = context.suites.add(
            ge.ExpectationSuite(name=name, expectations=[e.configuration for e in expectations])
        )
        definition = context.validation_definitions.add(
            ge.ValidationDefinition(name=registered.name, data=batch, suite=registered)
        )
        return definition, {e.id: n for n, e in enumerate(registered.expectations)}

    return register


def _known_structure(
    contract: Contract, structure: tuple[tuple[str, str], ...], keyed: bool
) -> list[ExpectationValidationResult] | None:
    """The structural results kept for this contract and structure, if any (callers hold ``_GX_LOCK``)."""
    found = _structures.get((id(contract), structure, keyed))
    return found[1] if found is not None and found[0] is contract else None


def _keep_structure(
    contract: Contract,
    structure: tuple[tuple[str, str], ...],
    keyed: bool,
    results: list[ExpectationValidationResult],
) -> None:
    """Keep a structure's results (the oldest kept is let go beyond :data:`STRUCTURES_KEPT`)."""
    if len(_structures) >= STRUCTURES_KEPT:
        del _structures[next(iter(_structures))]
    _structures[(id(contract), structure, keyed)] = (contract, results)


def _validate_checks(
    definition: Any,
    order: dict[str | None, int],
    frames: Sequence[pd.DataFrame],
    checks: Sequence[Any],
    key_column: str,
    register: _Register,
) -> list[tuple[list[ExpectationValidationResult], dict[str, Any]]]:
    """The row checks on the frames stacked, each failing row told back to the frame that holds it.

    The checks run first for their counts only (:data:`_COUNTS_FORMAT`), then again in full, for the
    failing rows' positions, only those that found any (``register`` defines that second run): GX's cost
    is mostly fixed per expectation and metric, and a complete result asks each expectation for several
    more metrics. A check that found no failing row tells every window the same: none of its rows fail.
    """
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult

    columns = [c for c in dict.fromkeys([key_column, *(getattr(e, "column", None) for e in checks)]) if c]
    offsets = np.cumsum([0, *(len(f) for f in frames)])
    # The frames share their columns and dtypes (see _validate_batch): stacked first, then narrowed and
    # converted once, not once per window.
    whole = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    stacked = _checks_frame(whole, checks, columns)
    stacked[_ROW] = np.arange(len(stacked))
    stacked = stacked.set_index(_ROW, drop=False)
    outcome = definition.run(batch_parameters={"dataframe": stacked}, result_format=_COUNTS_FORMAT)
    ordered = sorted(outcome.results, key=lambda r: order.get(_config_id(r), len(order)))
    found = [n for n, r in enumerate(ordered) if _found_rows(r)]
    if found:
        detailed, detail_order = register("failing", [checks[order[_config_id(ordered[n])]] for n in found])
        rows = detailed.run(batch_parameters={"dataframe": stacked}, result_format=_result_format(_ROW))
        for r in rows.results:
            ordered[found[detail_order[_config_id(r)]]] = r
    keyed = [key_column in f.columns for f in frames]
    keys = stacked[key_column].to_numpy() if key_column in stacked else None
    nulls_by_column: dict[str, list[int]] = {}  # each frame's nulls in a column, counted once per column
    split: list[tuple[list[ExpectationValidationResult], dict[str, Any]]] = [
        ([], dict(outcome.meta)) for _ in frames
    ]
    for r in ordered:
        config = r.expectation_config
        res = dict(r.result or {})
        raised = _raised(r)
        positions = np.sort(np.asarray(_positions(res), dtype=np.int64))
        bounds = np.searchsorted(positions, offsets).tolist()  # frame n: positions[bounds[n] : bounds[n + 1]]
        column = str(config.kwargs.get("column")) if config else ""
        rule = (config.meta or {}).get("rule") if config else None
        if column in stacked and column not in nulls_by_column:
            missing = np.concatenate(([0], np.cumsum(stacked[column].isna().to_numpy())))
            nulls_by_column[column] = (missing[offsets[1:]] - missing[offsets[:-1]]).tolist()
        nulls = nulls_by_column.get(column) or [0] * len(frames)
        values = stacked[column].to_numpy() if rule == "unique" and len(positions) else None
        for n, frame in enumerate(frames):
            if raised:
                split[n][0].append(r)
                continue
            mine = positions[bounds[n] : bounds[n + 1]]
            if values is not None and len(mine):
                held = values[mine].tolist()
                repeats = Counter(held)
                mine = mine[np.fromiter((repeats[v] > 1 for v in held), bool, len(mine))]
            if keyed[n] and keys is not None:
                index_list: list[Any] = [{key_column: v} for v in keys[mine].tolist()]
            else:
                index_list = (mine - int(offsets[n])).tolist()
            window_res = _window_counts(res, len(frame), nulls[n], len(mine), config)
            if keyed[n] and keys is not None:  # the rows are named by key, as GX names them alone
                window_res["unexpected_index_column_names"] = [key_column]
            window_res["unexpected_index_list"] = index_list
            split[n][0].append(
                ExpectationValidationResult(
                    success=window_res.pop("success"),
                    expectation_config=config,
                    result=window_res,
                    meta=dict(r.meta or {}),
                    exception_info=r.exception_info,
                )
            )
    return split


def _window_counts(
    res: dict[str, Any], elements: int, nulls: int, unexpected: int, config: Any
) -> dict[str, Any]:
    """A column-map result's counts and percentages for one window, computed as GX computes them."""
    out: dict[str, Any] = {"element_count": elements, "unexpected_count": unexpected}
    counts_missing = "missing_count" in res
    considered = elements - nulls if counts_missing else elements
    total = unexpected / elements * 100 if elements else None
    nonmissing = (unexpected / considered * 100 if considered else None) if counts_missing else total
    out["unexpected_percent"] = nonmissing
    if counts_missing:
        out["missing_count"] = nulls
        out["missing_percent"] = nulls / elements * 100 if elements else None
    if "unexpected_percent_total" in res:
        out["unexpected_percent_total"] = total
    if "unexpected_percent_nonmissing" in res:
        out["unexpected_percent_nonmissing"] = nonmissing
    mostly = float((config.kwargs.get("mostly") if config else None) or 1.0)
    out["success"] = considered == 0 or (considered - unexpected) / considered >= mostly
    return out


def _found_rows(result: ExpectationValidationResult) -> bool:
    """Whether a check's counts-only result found failing rows (a check that raised is told as it is)."""
    return not _raised(result) and bool((result.result or {})["unexpected_count"])


def _raised(result: ExpectationValidationResult) -> bool:
    """Whether a check failed to run: every window is told its result as it is, with no counts of its own."""
    res = result.result or {}
    return bool((result.exception_info or {}).get("raised_exception")) or "unexpected_count" not in res


def _positions(res: dict[str, Any]) -> list[int]:
    """Failing row numbers from GX's ``unexpected_index_list`` of the stacked frame."""
    out: list[int] = []
    for item in res.get("unexpected_index_list") or []:
        value = item.get(_ROW) if isinstance(item, dict) else item
        out.extend(int(v) for v in (value if isinstance(value, list) else [value]) if v is not None)
    return sorted(set(out))


def _result_format(index_column: str | None) -> dict[str, Any]:
    result_format: dict[str, Any] = {
        "result_format": "COMPLETE",
        "return_unexpected_index_query": False,
        # Keys only: GX leaves the failing values out of the index list and the unexpected lists.
        "exclude_unexpected_values": True,
    }
    if index_column:
        result_format["unexpected_index_column_names"] = [index_column]
    return result_format


def _keyed(df: pd.DataFrame, key_column: str) -> pd.DataFrame:
    return df.set_index(key_column, drop=False) if key_column in df.columns else df.reset_index(drop=True)


def _checks_frame(df: pd.DataFrame, checks: Sequence[Any], columns: Sequence[str]) -> pd.DataFrame:
    """The columns the row checks read, range-checked numbers as float64 (a new frame; ``df`` is untouched).

    GX's pandas engine filters the *whole* frame once per row expectation, so narrowing 48 columns to the
    ~21 the checks read halves the run. GX compares ranges vectorised only for numpy int/float columns;
    nullable ``Int32`` and Arrow decimals go through a Python call per row (1.3 s per million rows per
    check). As float64, nulls become NaN (still skipped as missing) and the comparison is exact for bounds
    below 2^53 / 10^scale: values are only compared with the contract's bounds, never stored. Arrow-backed
    columns (text) are made one chunk each: stacking windows leaves a chunk per window in every column, and
    GX takes rows of the whole frame three or four times per expectation, each take walking every chunk (a
    96-window batch's run 0.9-1.5 s in 96 chunks, 0.6-0.7 s in one); text columns go further, as
    categories (:func:`_coded`). The dtype checks see the original columns.
    """
    ranged = {str(getattr(e, "column", "")) for e in checks if (e.meta or {}).get("rule") == "range"}
    kept: dict[str, pd.Series] = {}
    for column in columns:
        if column not in df.columns:
            continue
        values = df[column]
        if column in ranged and _compared_per_row(values.dtype):
            values = pd.Series(values.to_numpy(dtype="float64", na_value=np.nan), index=df.index)
        elif isinstance(values.array, pd.arrays.ArrowExtensionArray):
            values = _coded(values) if pd.api.types.is_string_dtype(values.dtype) else _one_chunk(values)
        kept[column] = values
    return pd.DataFrame(kept, index=df.index)


def _compared_per_row(dtype: Any) -> bool:
    """Numbers GX's range check would compare row by row: numeric, but not a plain numpy dtype."""
    if isinstance(dtype, np.dtype) or pd.api.types.is_bool_dtype(dtype):
        return False
    decimal = isinstance(dtype, pd.ArrowDtype) and pa.types.is_decimal(dtype.pyarrow_dtype)
    return decimal or pd.api.types.is_numeric_dtype(dtype)


def _one_chunk(values: pd.Series) -> pd.Series:
    """An Arrow-backed column with its chunks combined into one (the same values and dtype)."""
    arrow = pa.array(values.array)
    if isinstance(arrow, pa.ChunkedArray) and arrow.num_chunks > 1:
        return pd.Series(pd.array(arrow.combine_chunks(), dtype=values.dtype), index=values.index)
    return values


def _coded(values: pd.Series) -> pd.Series:
    """An Arrow-backed text column as categories of the same texts: codes into its distinct values.

    Each take of the frame GX makes copies every string of a text column, but only the 4-byte codes of a
    category column: the takes of 53 checks over 43,000 rows of 25 text columns cost 155 ms as text,
    22 ms as categories (the checks' results are the same; the distinct texts stay in Arrow).
    """
    arrow = pa.array(values.array)
    encoded = (arrow.combine_chunks() if isinstance(arrow, pa.ChunkedArray) else arrow).dictionary_encode()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    texts = pd.Index(pd.array(encoded.dictionary, dtype=values.dtype))
    categories = pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(texts), validate=False)
    return pd.Series(categories, index=values.index, name=values.name)


def _config_id(result: ExpectationValidationResult) -> str | None:
    return result.expectation_config.id if result.expectation_config else None
