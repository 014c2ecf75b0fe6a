"""The pipeline's steps as plain functions of settings and a window reference.

Airflow operators and ``skysmart run`` call exactly these, so a DAG run and a CLI run over the same range
produce the same lake and the same warehouse. Each step takes plain values, does one thing, and returns a
small JSON-safe, secret-free dict (it travels through XCom).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pipelines.config import Settings
from pipelines.errors import ConfigError, PushUnfinishedError
from pipelines.sources import registry
from pipelines.windows import SOURCES, Window, plan_windows, windows_for_interval

if TYPE_CHECKING:
    from pipelines.http import HttpClient

# One HTTP client per vendor inside a :func:`sharing_http` block: the vendor's whole budget (concurrency
# bound and request-rate limit) shared by every window extracted at once. A context variable, so that runs
# on different threads each have their own (worker threads get it through ``contextvars.copy_context``).
_SHARED_HTTP: ContextVar[Mapping[str, HttpClient]] = ContextVar(
    "skysmart_shared_http", default=MappingProxyType({})
)


def plan_range(start: date, end: date, sources: tuple[str, ...] | list[str] = SOURCES) -> list[str]:
    """Window references covering ``start``..``end`` (inclusive) for each source, in source order."""
    _check_sources(sources)
    return [w.ref for source in sources for w in plan_windows(source, start, end)]


def plan_interval(
    interval_start: datetime,
    interval_end: datetime,
    *,
    lookback_days: int,
    sources: tuple[str, ...] | list[str] = SOURCES,
) -> list[str]:
    """Window references for an incremental run: the data interval plus the lookback, per source."""
    _check_sources(sources)
    return [
        w.ref
        for source in sources
        for w in windows_for_interval(source, interval_start, interval_end, lookback_days=lookback_days)
    ]


def make_client(settings: Settings, source: str) -> Any:
    """The API client of a source (its ``SourceSpec.client``), on the vendor's shared HTTP client if any.

    Raises:
        ConfigError: the source is unknown or not configured.
    """
    spec = registry.get(source)
    vendor = settings.require(source)
    return spec.load("client")(vendor, http=_SHARED_HTTP.get().get(source))


@contextmanager
def sharing_http(settings: Settings, sources: Sequence[str]) -> Iterator[None]:
    """Within the block, every client :func:`make_client` builds for a source shares one HTTP client.

    So windows extracted at the same time (``skysmart run``) stay inside the vendor's limits together: the
    concurrency bound and request-rate limit of ``SKYSMART_HTTP_*`` hold for the vendor, not per window.
    """
    from pipelines.http import HttpClient

    shared = {}
    for source in sources:
        shared[source] = HttpClient(source, settings.require(source).http)
    token = _SHARED_HTTP.set(shared)
    try:
        yield
    finally:
        _SHARED_HTTP.reset(token)
        for http in shared.values():
            http.close()


def extract_step(settings: Settings, window_ref: str) -> dict[str, Any]:
    """Extract one window from its vendor into the raw lake."""
    from pipelines.extract import extract_window
    from pipelines.lake import Lake

    window = Window.from_ref(window_ref)
    client = make_client(settings, window.source)
    try:
        return to_small_dict(extract_window(client, window, Lake(settings.lake_url)))
    finally:
        if window.source not in _SHARED_HTTP.get():  # a shared HTTP client is closed by sharing_http
            client.close()


def normalize_step(settings: Settings, window_ref: str) -> dict[str, Any]:
    """Normalize one raw window into the common model, quarantining what cannot be normalized."""
    from pipelines.lake import Lake
    from pipelines.normalize import normalize_window

    window = Window.from_ref(window_ref)
    return to_small_dict(normalize_window(Lake(settings.lake_url), window.source, window))


def validate_step(settings: Settings, window_ref: str) -> dict[str, Any]:
    """Validate one normalized window; raises ``DataQualityError`` on error-severity failures."""
    from pipelines.lake import Lake
    from pipelines.quality import validate_window

    window = Window.from_ref(window_ref)
    return to_small_dict(validate_window(Lake(settings.lake_url), window.source, window))


def validate_batch_step(settings: Settings, window_refs: Sequence[str]) -> list[dict[str, Any]]:
    """Validate windows (of any sources) together: one great-expectations run per batch of rows.

    Raises nothing for failures: each window's result says ``success``; a failing window must not load.
    """
    return validate_refs(settings.lake_url, window_refs)


def validate_refs(lake_url: str, window_refs: Sequence[str]) -> list[dict[str, Any]]:
    """:func:`validate_batch_step` given only the lake (what a validator process is handed)."""
    from pipelines.lake import Lake
    from pipelines.quality import validate_windows

    windows = [Window.from_ref(ref) for ref in window_refs]
    if not windows:
        return []
    results = validate_windows(Lake(lake_url), windows[0].source, windows)
    return [to_small_dict(result) for result in results]


def process_batch_step(settings: Settings, window_refs: Sequence[str]) -> dict[str, Any]:
    """Normalize, validate and load a batch of windows of one source: the backfill DAG's batch task.

    Windows are normalized one by one, validated together (one GX run per batch of rows) and the valid
    ones loaded in one warehouse transaction (:func:`pipelines.warehouse.load_windows`). A window that
    fails at any stage stops only itself: the others still load. If any failed, the step raises at the
    end — a retryable error first (a retry redoes the batch, which is idempotent), else the first
    failure — with every failed window named in a note.

    Returns:
        ``{"source", "windows", "loaded", "rows_in", "inserted", "updated", "unchanged", "quarantined"}``.
    """
    from pipelines.errors import DataQualityError, SkysmartError
    from pipelines.lake import Lake
    from pipelines.normalize.core import normalize_windows
    from pipelines.warehouse import load_windows, open_warehouse

    windows = [Window.from_ref(ref) for ref in window_refs]
    sources = {w.source for w in windows}
    if len(sources) > 1:
        raise ConfigError(f"a batch holds windows of one source; got {sorted(sources)}", field="window_refs")
    lake = Lake(settings.lake_url)
    failed: dict[str, SkysmartError] = {}
    normalized: list[Window] = []
    quarantined = 0
    # One source per batch (checked above): its small windows are normalized together, as `skysmart run` does.
    drafts = normalize_windows(lake, windows[0].source, windows) if windows else []
    for window, drafted in zip(windows, drafts, strict=True):
        if isinstance(drafted, SkysmartError):
            failed[window.ref] = drafted
        else:
            quarantined += drafted.quarantined
            normalized.append(window)
    valid = []
    if normalized:
        for window, result in zip(
            normalized, validate_batch_step(settings, [w.ref for w in normalized]), strict=True
        ):
            if result["success"]:
                valid.append(window)
            else:
                failed[window.ref] = DataQualityError(
                    f"data quality check of {window.ref} failed: {result['failed_errors']} error "
                    f"expectation(s); report: {result['report_html_url']}",
                    source=window.source,
                    window=window.key,
                )
    totals = {"rows_in": 0, "inserted": 0, "updated": 0, "unchanged": 0}
    loaded = []
    if valid:
        with open_warehouse(settings.warehouse_url) as warehouse:
            for window, outcome in zip(
                valid, load_windows(warehouse, lake, valid[0].source, valid), strict=True
            ):
                if isinstance(outcome, SkysmartError):
                    failed[window.ref] = outcome
                    continue
                loaded.append(window.ref)
                for name in totals:
                    totals[name] += int(getattr(outcome, name))
    if failed:
        first = next((e for e in failed.values() if e.retryable), next(iter(failed.values())))
        first.add_note(
            f"{len(failed)} of {len(windows)} window(s) of this batch failed: "
            + "; ".join(f"{ref}: {type(e).__name__}" for ref, e in failed.items())
        )
        raise first
    return {
        "source": next(iter(sources), None),
        "windows": len(windows),
        "loaded": loaded,
        "quarantined": quarantined,
        **totals,
    }


def load_step(settings: Settings, window_ref: str) -> dict[str, Any]:
    """Merge one normalized window (and its quarantine) into the warehouse."""
    from pipelines.lake import Lake
    from pipelines.warehouse import load_window, open_warehouse

    window = Window.from_ref(window_ref)
    with open_warehouse(settings.warehouse_url) as warehouse:
        return to_small_dict(load_window(warehouse, Lake(settings.lake_url), window.source, window))


def push_step(
    settings: Settings,
    *,
    dry_run: bool,
    limit: int | None = None,
    allow_partial_coverage: bool = False,
    skybiz_covered_from: str | None = None,
) -> dict[str, Any]:
    """Create the SmartAcc customers SkyBiz lacks, through the outbox.

    Customers whose outcome is still unknown after the run (SkyBiz kept failing) make the step fail with a
    retryable error: the outbox settles them on the next try, so a retry is exactly what they need. A
    warehouse whose SkyBiz coverage has gaps or is stale makes a real push fail with ``PushCoverageError``
    (not retried: loading SkyBiz is the fix) unless ``allow_partial_coverage``; the result's
    ``coverage_problem`` says what is missing either way. ``skybiz_covered_from`` (YYYY-MM-DD) declares
    the start of SkyBiz's history over ``SKYSMART_PUSH_SKYBIZ_COVERED_FROM``.
    """
    from pipelines.push import PushSettings, push_customers
    from pipelines.sources.skybiz.client import SkyBizClient
    from pipelines.warehouse import open_warehouse

    with (
        SkyBizClient(settings.require_skybiz()) as client,
        open_warehouse(settings.warehouse_url) as warehouse,
    ):
        result = push_customers(
            warehouse,
            client,
            dry_run=dry_run,
            limit=limit,
            settings=PushSettings.from_env().declaring(skybiz_covered_from),
            allow_partial_coverage=allow_partial_coverage,
        )
    if result.unresolved:
        raise PushUnfinishedError(
            f"{result.unresolved} customer(s) still have an unknown outcome in SkyBiz; "
            "the outbox settles them on the next run",
            source="skybiz",
            created=result.created,
        )
    return to_small_dict(result)


def report_step(settings: Settings) -> dict[str, Any]:
    """Publish the one-page report of the warehouse to the lake's root; returns ``{"report_url"}``."""
    from pipelines.report import publish_report

    return {"report_url": publish_report(settings.warehouse_url, settings.lake_url)}


def to_small_dict(result: Any) -> dict[str, Any]:
    """A step result as JSON-safe primitives (dataclass fields; dates and windows as text)."""
    is_instance = dataclasses.is_dataclass(result) and not isinstance(result, type)
    data = dataclasses.asdict(result) if is_instance else dict(result)
    return {str(k): _json_safe(v) for k, v in data.items()}


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    if isinstance(value, Window):
        return value.ref
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _check_sources(sources: tuple[str, ...] | list[str]) -> None:
    known = registry.names()
    unknown = [s for s in sources if s not in known]
    if unknown or not sources:
        raise ConfigError(f"sources must be among {', '.join(known)}; got {list(sources)}", field="sources")
