"""The whole pipeline without Airflow: extract → normalize → validate → load, pipelined over the range.

It calls the very step functions the DAGs' operators call (:mod:`pipelines.steps`), so ``skysmart run`` and a
DAG run over the same range leave the same lake and the same warehouse.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import importlib
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final

from pipelines import steps
from pipelines.config import Settings
from pipelines.env import core_env
from pipelines.errors import DataQualityError, SkysmartError, worst_exit_code
from pipelines.validator import ValidatorProcess
from pipelines.windows import SOURCES, Window

if TYPE_CHECKING:
    from pipelines.warehouse import Warehouse

STAGES = ("extract", "normalize", "validate", "load")

ProgressCallback = Callable[[str, str, dict[str, Any] | None], None]
"""Called as ``(window_ref, stage, result_or_None)`` before (None) and after each stage."""


@dataclass(frozen=True, slots=True)
class WindowOutcome:
    """What happened to one window: the stage results it reached, and the error that stopped it."""

    window_ref: str
    results: dict[str, dict[str, Any]]
    error_stage: str | None = None
    error: str | None = None
    error_type: str | None = None
    exit_code: int = 0
    """The stopping error's exit code (its type's, see :mod:`pipelines.errors`); 0 while nothing failed."""

    @property
    def ok(self) -> bool:
        """Loaded without error."""
        return self.error is None and "load" in self.results


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run over a date range: one outcome per window, and the totals a person wants first."""

    start: str
    end: str
    sources: tuple[str, ...]
    outcomes: tuple[WindowOutcome, ...]
    seconds: float
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every window loaded."""
        return all(o.ok for o in self.outcomes)

    @property
    def failed(self) -> list[WindowOutcome]:
        """The windows that stopped before loading."""
        return [o for o in self.outcomes if not o.ok]

    @property
    def exit_code(self) -> int:
        """The worst of the failed windows' exit codes (0 when every window loaded)."""
        return worst_exit_code(o.exit_code or 1 for o in self.failed)


_STAGE_FUNCTIONS: dict[str, Callable[[Settings, str], dict[str, Any]]] = {
    "extract": steps.extract_step,
    "normalize": steps.normalize_step,
    "validate": steps.validate_step,
    "load": steps.load_step,
}

#: Windows extracted at the same time per source; their requests share the vendor's one HTTP budget.
EXTRACT_WINDOWS: Final = 4
#: Extracted windows of a source normalized together at most (small ones as one table: the normalizer's cost
#: is per call and column, not per row; 12 small windows normalize in about the time of 3 one by one).
NORMALIZE_WINDOWS: Final = 12
#: Raw rows normalized together at most, whatever the number of windows. Large windows gain nothing from
#: being normalized together, and a long call holds back the validator (which is sent windows when a call
#: ends); at the end of a range, the last batch to validate and load would be that large.
NORMALIZE_ROWS: Final = 5_000
#: What a great-expectations run costs the validator whatever its rows (0.5 s for 2 windows, 0.9 s for 37 of
#: 2,000 customers over four years, on the 2-core box): an idle validator is not sent a batch when the windows
#: left would be normalized sooner (see :func:`_almost_normalized`).
GX_RUN_SECONDS: Final = 0.5
#: Rows loaded over the run's warehouse connection between two checkpoints (a checkpoint costs about as much
#: for a few windows as for many: 0.2-0.3 s on DuckDB). The rows of one transaction are capped where the
#: loads are (:data:`pipelines.warehouse.load.LOAD_BATCH_ROWS`).
CHECKPOINT_ROWS: Final = 100_000
#: Rows judged fit to load that are loaded while the run still normalizes; fewer wait until every window is
#: normalized, when the run's thread only waits for answers. Loading every batch at once made a 20k-customer
#: run 0.3 s slower (the loads took CPU from normalizing, the critical path) and a 200k one 10 s faster.
EARLY_LOAD_ROWS: Final = 20_000


def run_window(
    settings: Settings, window_ref: str, progress: ProgressCallback | None = None
) -> WindowOutcome:
    """Take one window through every stage; a typed error stops this window only.

    Data-quality errors stop the window before it is loaded, exactly as a failed validate task stops the
    load task in the DAG.
    """
    results: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        if progress:
            progress(window_ref, stage, None)
        try:
            results[stage] = _STAGE_FUNCTIONS[stage](settings, window_ref)
        except SkysmartError as error:
            return _stopped(window_ref, results, stage, error)
        if progress:
            progress(window_ref, stage, results[stage])
    return WindowOutcome(window_ref, results)


def run_pipeline(
    settings: Settings,
    start: date,
    end: date,
    sources: Sequence[str] = SOURCES,
    progress: ProgressCallback | None = None,
) -> RunSummary:
    """Run every window of ``start``..``end`` (inclusive, Malaysia dates) for each source, as a pipeline.

    Windows are extracted :data:`EXTRACT_WINDOWS` at a time per source, all of a source's requests sharing
    one HTTP client (its concurrency bound and rate limit: the vendor's budget), while this thread
    normalizes the windows as they land (those already extracted together, see
    :func:`pipelines.normalize.core.normalize_windows`), so waiting on the network and CPU work overlap;
    the warehouse engine is imported in the background meanwhile, and great-expectations in the validator
    process (:mod:`pipelines.validator`; in the background here if there is none). The validator is sent,
    whenever it is idle, every window normalized since its last batch, whatever its source (a GX run's cost
    is mostly fixed; each window is judged on its own rows), and the windows that passed are loaded in a
    thread of its own (:class:`_Loader`: a source at a time, in batches of rows over one warehouse
    connection) — beside normalizing on a long range, as each batch is judged after it. Without
    a validator process, all windows are validated here together at the end. A typed error stops only its
    window, at the stage it happened, exactly as in the DAGs; the lake and warehouse end as window-by-window
    runs leave them.
    """
    began = perf_counter()
    refs = steps.plan_range(start, end, list(sources))
    separate = core_env().validator_process
    threading.Thread(target=_warm_imports, args=(not separate,), name="skysmart-warm", daemon=True).start()
    outcomes: dict[str, WindowOutcome] = {}
    results: dict[str, dict[str, dict[str, Any]]] = {ref: {} for ref in refs}
    with (
        ValidatorProcess() if separate else contextlib.nullcontext() as validator,
        steps.sharing_http(settings, list(sources)),
        contextlib.ExitStack() as pools,
    ):
        # A pool per source: each vendor's budget is busy from the start (one pool fed the sources in turn
        # left SmartAcc idle while SkyBiz windows were extracted).
        pool = {
            source: pools.enter_context(
                ThreadPoolExecutor(EXTRACT_WINDOWS, thread_name_prefix=f"skysmart-extract-{source}")
            )
            for source in sources
        }
        extracting = {
            ref: pool[Window.from_ref(ref).source].submit(
                contextvars.copy_context().run, _stage, settings, ref, "extract", progress
            )
            for ref in refs
        }
        normalized: list[str] = []
        # With a validator process, normalized windows go to it whenever it is idle (warm, and done with
        # its last batch: all those normalized since), so GX works on the second core while this thread
        # normalizes the rest; a batch pays GX's fixed cost once, and the batches grow while it is busy.
        # Judged batches are loaded in a thread of their own: beside normalizing once enough rows wait (a
        # long range), and each as soon as it is judged once every window is normalized.
        loader = pools.enter_context(_Loader(settings, sources, results, outcomes, progress))
        unsent: list[str] = []
        normalizing = 0.0  # seconds spent normalizing so far
        for source in sources:
            mine = [ref for ref in refs if Window.from_ref(ref).source == source]
            while mine:
                # Wait for the next window, then take every later one already extracted along with it.
                extracted: list[str] = []
                taken = 0
                while mine and (not extracted or extracting[mine[0]].done()):
                    ref = mine.pop(0)
                    try:
                        results[ref]["extract"] = extracting.pop(ref).result()
                    except SkysmartError as error:
                        outcomes[ref] = _stopped(ref, results[ref], "extract", error)
                        continue
                    extracted.append(ref)
                    taken += int(results[ref]["extract"].get("rows", 0))
                    if len(extracted) == NORMALIZE_WINDOWS or taken >= NORMALIZE_ROWS:
                        break
                began_normalizing = perf_counter()
                passed = _normalize(settings, source, extracted, results, outcomes, progress)
                normalizing += perf_counter() - began_normalizing
                normalized += passed
                unsent += passed
                if (
                    validator
                    and unsent
                    and validator.idle()
                    and not _almost_normalized(extracting, normalizing / max(1, len(refs) - len(extracting)))
                ):
                    loader.put(unsent, validator.submit(settings.lake_url, unsent))
                    unsent = []
        loader.normalized()
        if validator and unsent:
            loader.put(unsent, validator.submit(settings.lake_url, unsent))
        elif unsent:  # no validator process: validated here, all together
            loader.put(unsent, None)
        if validator:
            validator.finish()  # every answer is in; its exit overlaps the last loads
        loader.finish()
    if any("load" in results[r] for r in normalized):  # which records are one business, over what was loaded
        from pipelines.identity.store import rebuild_step

        # On a connection of its own, once the loads' is closed and its DuckDB buffers released: at 200k
        # customers the rebuild's frames on top of them raised the run's peak memory by 220 MB.
        rebuild_step(settings.warehouse_url)
    ordered = tuple(outcomes.get(ref) or WindowOutcome(ref, results[ref]) for ref in refs)
    return _summary(start, end, sources, ordered, began)


def _almost_normalized(waiting: dict[str, Future[dict[str, Any]]], seconds_per_window: float) -> bool:
    """Whether the windows left to normalize are all extracted and would be done within a GX run's fixed cost.

    Then the validator, idle, is better sent them together with the windows normalized since its last batch:
    one more run at the end of the range costs more than waiting for them (at 20,000 customers over two
    years, a last batch of 4 windows took 0.8 s after one of 20 had taken 0.9 s).
    """
    return all(f.done() for f in waiting.values()) and len(waiting) * seconds_per_window < GX_RUN_SECONDS


class _Loader:
    """Loads judged batches in a thread of its own, in the order they were put, over one warehouse connection.

    A batch's windows are judged (the validator's answer) as it comes, and those that passed are loaded a
    source at a time (:func:`pipelines.warehouse.load_windows`: a few transactions however many windows).
    While the run still normalizes they wait until :data:`EARLY_LOAD_ROWS` of them do, so a long range's
    loads overlap its normalizing (DuckDB works without the GIL) instead of following it; after, each batch
    is loaded as soon as it is judged. The warehouse is opened (and its schema checked) while the first batch
    is judged, so its first load does not wait for that (0.1-0.15 s on DuckDB): a DuckDB file stays free
    for other processes until a batch is put.
    """

    def __init__(
        self,
        settings: Settings,
        sources: Sequence[str],
        results: dict[str, dict[str, dict[str, Any]]],
        outcomes: dict[str, WindowOutcome],
        progress: ProgressCallback | None,
    ) -> None:
        self._settings, self._sources = settings, sources
        self._results, self._outcomes, self._progress = results, outcomes, progress
        self._batches: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self._normalized = threading.Event()
        self._stopping = threading.Event()
        self._warehouse: Warehouse | SkysmartError | None = None
        self._unwritten = 0  # rows loaded since the warehouse last wrote its changes to the file
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="skysmart-load")
        self._done = self._thread.submit(contextvars.copy_context().run, self._work)

    def put(self, refs: list[str], answer: Future[list[dict[str, Any]] | None] | None) -> None:
        """A batch to judge (``answer``: the validator's; ``None``: validate here) and load."""
        self._batches.put((refs, answer))

    def normalized(self) -> None:
        """Every window is normalized: judged windows are loaded at once from now on (before the last put)."""
        self._normalized.set()

    def finish(self) -> None:
        """Wait until every batch put is loaded; a failure of the loading thread is raised here."""
        self._batches.put(None)
        self._done.result()

    def __enter__(self) -> _Loader:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is not None:  # the run stopped: load nothing more than the batch under way
            self._stopping.set()
        self._batches.put(None)
        self._thread.shutdown(wait=True)

    def _work(self) -> None:
        waiting: list[str] = []  # windows judged fit to load, not loaded yet
        put_any = False
        try:
            while not self._stopping.is_set() and (batch := self._batches.get()) is not None:
                if self._normalized.is_set() and waiting:  # before waiting for the next answer
                    self._load(waiting)
                    waiting = []
                put_any = True
                refs, answer = batch
                self._connect()
                checked = answer.result() if answer else None
                waiting += _validate(
                    self._settings, refs, self._results, self._outcomes, self._progress, checked
                )
                if (
                    self._normalized.is_set()
                    or sum(_rows(self._results[r]) for r in waiting) >= EARLY_LOAD_ROWS
                ):
                    self._load(waiting)
                    waiting = []
            if put_any and not self._stopping.is_set():
                self._load(waiting)  # opens the warehouse even if every window failed, as a run always did
        finally:
            if self._warehouse is not None and not isinstance(self._warehouse, SkysmartError):
                self._warehouse.close()

    def _connect(self) -> Warehouse | SkysmartError:
        if self._warehouse is None:
            self._warehouse = _open_warehouse(self._settings.warehouse_url)
        return self._warehouse

    def _load(self, refs: list[str]) -> None:
        warehouse = self._connect()
        for source in self._sources:
            mine = [r for r in refs if Window.from_ref(r).source == source]
            self._unwritten += _load(
                self._settings, warehouse, mine, self._results, self._outcomes, self._progress
            )
        if self._unwritten >= CHECKPOINT_ROWS and not isinstance(warehouse, SkysmartError):
            # Not after every batch, but the loads' changes must not all stay in memory until the connection
            # closes (which checkpoints what is left).
            warehouse.checkpoint()
            self._unwritten = 0


_Batch = tuple[list[str], "Future[list[dict[str, Any]] | None] | None"]


def _open_warehouse(url: str) -> Warehouse | SkysmartError:
    """The connection a run's loads share, its schema ready; the error if it cannot be opened."""
    from pipelines.warehouse import open_warehouse

    try:
        warehouse = open_warehouse(url)
    except SkysmartError as error:
        return error
    try:
        warehouse.ensure_schema()
    except SkysmartError as error:
        warehouse.close()
        return error
    except BaseException:
        warehouse.close()
        raise
    return warehouse


def _stage(settings: Settings, ref: str, stage: str, progress: ProgressCallback | None) -> dict[str, Any]:
    if progress:
        progress(ref, stage, None)
    result = _STAGE_FUNCTIONS[stage](settings, ref)
    if progress:
        progress(ref, stage, result)
    return result


def _normalize(
    settings: Settings,
    source: str,
    refs: list[str],
    results: dict[str, dict[str, dict[str, Any]]],
    outcomes: dict[str, WindowOutcome],
    progress: ProgressCallback | None,
) -> list[str]:
    """Normalize extracted windows of one source together (the lake ends as one by one); those that passed."""
    if not refs:
        return []
    from pipelines.lake import Lake
    from pipelines.normalize.core import normalize_windows

    for ref in refs:
        if progress:
            progress(ref, "normalize", None)
    windows = [Window.from_ref(ref) for ref in refs]
    passed = []
    for ref, outcome in zip(refs, normalize_windows(Lake(settings.lake_url), source, windows), strict=True):
        if isinstance(outcome, SkysmartError):
            outcomes[ref] = _stopped(ref, results[ref], "normalize", outcome)
            continue
        results[ref]["normalize"] = steps.to_small_dict(outcome)
        passed.append(ref)
        if progress:
            progress(ref, "normalize", results[ref]["normalize"])
    return passed


def _validate(
    settings: Settings,
    refs: list[str],
    results: dict[str, dict[str, dict[str, Any]]],
    outcomes: dict[str, WindowOutcome],
    progress: ProgressCallback | None,
    answer: list[dict[str, Any]] | None,
) -> list[str]:
    """Judge windows validated together; those that may load.

    ``answer`` is the validator process's results for ``refs``; without one (no process, or it could not
    answer) they are validated here.
    """
    if not refs:
        return []
    for ref in refs:
        if progress:
            progress(ref, "validate", None)
    try:
        checked = answer or steps.validate_batch_step(settings, refs)
    except SkysmartError:
        # Something about one window (its lake files) spoiled the batch: judge them one by one instead.
        checked = []
        for ref in refs:
            try:
                checked.append(steps.validate_batch_step(settings, [ref])[0])
            except SkysmartError as error:
                outcomes[ref] = _stopped(ref, results[ref], "validate", error)
                checked.append({})
    valid = []
    for ref, result in zip(refs, checked, strict=True):
        if ref in outcomes:
            continue
        results[ref]["validate"] = result
        if result.get("success"):
            valid.append(ref)
        else:
            failure = DataQualityError(
                _quality_summary(result),
                source=result.get("source"),
                window=result.get("window"),
                failed_errors=result.get("failed_errors"),
                failed_warnings=result.get("failed_warnings"),
            )
            del results[ref]["validate"]  # as when validate_step raises: the stage has no result
            outcomes[ref] = _stopped(ref, results[ref], "validate", failure)
            continue
        if progress:
            progress(ref, "validate", result)
    return valid


def _quality_summary(result: dict[str, Any]) -> str:
    """The same text :func:`pipelines.quality.validate_window` raises with, from the small result."""
    from pipelines.quality import Failure, QualityResult

    fields = {f.name for f in dataclasses.fields(QualityResult)}
    kept = {k: v for k, v in result.items() if k in fields}
    kept["failures"] = tuple(
        Failure(**{**f, "keys": tuple(f.get("keys") or ())}) for f in result.get("failures") or ()
    )
    return QualityResult(**kept).summary()


def _load(
    settings: Settings,
    warehouse: Warehouse | SkysmartError,
    refs: list[str],
    results: dict[str, dict[str, dict[str, Any]]],
    outcomes: dict[str, WindowOutcome],
    progress: ProgressCallback | None,
) -> int:
    """Load a source's valid windows in order (a few transactions, capped by rows); the rows loaded.

    Each window keeps its own audit row and counts, and a failing one stops only itself. ``warehouse`` is
    the error that kept it from opening, which then stops every window.
    """
    if not refs:
        return 0
    from pipelines.lake import Lake
    from pipelines.warehouse import load_windows

    if isinstance(warehouse, SkysmartError):
        for ref in refs:
            outcomes[ref] = _stopped(ref, results[ref], "load", warehouse)
        return 0
    lake = Lake(settings.lake_url)
    rows = 0
    for ref in refs:
        if progress:
            progress(ref, "load", None)
    windows = [Window.from_ref(ref) for ref in refs]
    for ref, outcome in zip(refs, load_windows(warehouse, lake, windows[0].source, windows), strict=True):
        if isinstance(outcome, SkysmartError):
            outcomes[ref] = _stopped(ref, results[ref], "load", outcome)
            continue
        results[ref]["load"] = steps.to_small_dict(outcome)
        rows += _rows(results[ref])
        if progress:
            progress(ref, "load", results[ref]["load"])
    return rows


def _rows(results: dict[str, dict[str, Any]]) -> int:
    """A normalized window's rows: those it normalized and those it quarantined."""
    done = results["normalize"]
    return int(done.get("normalized", 0)) + int(done.get("quarantined", 0))


def _stopped(
    ref: str,
    results: dict[str, dict[str, Any]],
    stage: str,
    error: SkysmartError,
) -> WindowOutcome:
    return WindowOutcome(
        ref,
        dict(results),
        error_stage=stage,
        error=str(error),
        error_type=type(error).__name__,
        exit_code=error.exit_code,
    )


def _warm_imports(with_gx: bool) -> None:
    """Import the heavy libraries of the later stages while the first pages arrive (errors surface later).

    great-expectations only when this process validates (no validator process, see ``pipelines.validator``).
    """
    try:
        for module in ("pipelines.normalize", "pipelines.warehouse", "duckdb"):
            importlib.import_module(module)
        if with_gx:
            importlib.import_module("pipelines.quality.suite")._gx()
    except Exception:
        # A failed warm-up only means the stage imports it itself, and reports the failure there.
        return


def _summary(
    start: date, end: date, sources: Sequence[str], outcomes: tuple[WindowOutcome, ...], began: float
) -> RunSummary:
    totals = {
        "windows": len(outcomes),
        "windows_failed": sum(not o.ok for o in outcomes),
        "quality_failures": sum(o.error_type == DataQualityError.__name__ for o in outcomes),
        "rows_extracted": _sum(outcomes, "extract", "rows"),
        "normalized": _sum(outcomes, "normalize", "normalized"),
        "quarantined": _sum(outcomes, "normalize", "quarantined"),
        "inserted": _sum(outcomes, "load", "inserted"),
        "updated": _sum(outcomes, "load", "updated"),
        "unchanged": _sum(outcomes, "load", "unchanged"),
    }
    return RunSummary(
        start=start.isoformat(),
        end=end.isoformat(),
        sources=tuple(sources),
        outcomes=outcomes,
        seconds=round(perf_counter() - began, 3),
        totals=totals,
    )


def _sum(outcomes: Sequence[WindowOutcome], stage: str, key: str) -> int:
    return sum(int(o.results.get(stage, {}).get(key) or 0) for o in outcomes)
