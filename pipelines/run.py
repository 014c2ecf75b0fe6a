"""The whole pipeline without Airflow: extract → normalize → validate → load, window by window.

It calls the very step functions the DAGs' operators call (:mod:`pipelines.steps`), so ``skysmart run`` and a
DAG run over the same range leave the same lake and the same warehouse.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from time import perf_counter
from typing import Any

from pipelines import steps
from pipelines.config import Settings
from pipelines.errors import DataQualityError, SkysmartError
from pipelines.windows import SOURCES

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


_STAGE_FUNCTIONS: dict[str, Callable[[Settings, str], dict[str, Any]]] = {
    "extract": steps.extract_step,
    "normalize": steps.normalize_step,
    "validate": steps.validate_step,
    "load": steps.load_step,
}


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
            return WindowOutcome(
                window_ref,
                results,
                error_stage=stage,
                error=str(error),
                error_type=type(error).__name__,
            )
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
    """Run every window of ``start``..``end`` (inclusive, Malaysia dates) for each source."""
    began = perf_counter()
    outcomes = tuple(
        run_window(settings, ref, progress) for ref in steps.plan_range(start, end, list(sources))
    )
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
