"""``skysmart run``'s batched, pipelined path leaves the warehouse the window-by-window path leaves.

The per-window path is :func:`pipelines.run.run_window` over every window in turn — each step as one DAG task
runs it (its own GX validation, its own load transaction and connection). The batched path is
:func:`pipelines.run.run_pipeline` — windows extracted concurrently, validated together in few GX runs
(one without a validator process) and loaded many to a transaction. Their warehouses are compared as
checksums of every table's content, apart from what names a particular run (load ids, timestamps,
request ids).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import pipelines.run
from pipelines.config import Settings
from pipelines.run import WindowOutcome, _Loader, _rows, run_pipeline, run_window
from pipelines.steps import extract_step, normalize_step, plan_range, validate_batch_step
from skysmart_sandbox.server import SandboxServer
from tests.warehouse.snapshot import checksums

START, END = date(2024, 1, 1), date(2024, 8, 31)


def _settings(sandbox: SandboxServer, where: Path) -> Settings:
    settings = Settings.from_env(sandbox.endpoints.as_env())
    return dataclasses.replace(
        settings, lake_url=str(where / "lake"), warehouse_url=str(where / "warehouse.duckdb")
    )


def test_batched_run_leaves_the_warehouse_of_the_window_by_window_path(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    per_window = _settings(sandbox, tmp_path / "per-window")
    outcomes = [run_window(per_window, ref) for ref in plan_range(START, END)]
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]

    batched = _settings(sandbox, tmp_path / "batched")
    summary = run_pipeline(batched, START, END)
    assert summary.ok, summary.failed
    assert summary.totals["windows"] == len(outcomes) == 16

    expected = checksums(per_window.warehouse_url)
    assert expected["customers"][0] > 0 and expected["load_audit"][0] == 16
    assert checksums(batched.warehouse_url) == expected


@pytest.mark.parametrize("separate", [True, False], ids=["validator-process", "in-process"])
def test_windows_of_every_source_are_validated_together_in_few_great_expectations_runs(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, separate: bool
) -> None:
    monkeypatch.setenv("SKYSMART_VALIDATOR_PROCESS", str(separate).lower())
    if not separate:

        def no_second_process() -> None:
            raise AssertionError("SKYSMART_VALIDATOR_PROCESS=false must not start a validator process")

        monkeypatch.setattr(pipelines.run, "ValidatorProcess", no_second_process)
    settings = _settings(sandbox, tmp_path)
    summary = run_pipeline(settings, date(2024, 1, 1), date(2024, 3, 31))
    assert summary.ok, summary.failed

    reports = [json.loads(p.read_text()) for p in Path(settings.lake_url).glob("quality/**/validation.json")]
    assert len(reports) == 6  # three months, two sources
    assert {r["meta"]["skysmart"]["source"] for r in reports} == {"skybiz", "smartacc"}
    runs = {r["meta"]["validation_id"] for r in reports}
    if separate:
        # Windows go to the validator whenever it is idle (warm, its last batch answered), so a batch holds
        # all those normalized meanwhile: one batch, or a few.
        assert 1 <= len(runs) < len(reports)
    else:
        # The row checks of every window come from one GX validation (the structure check is its own run).
        assert len(runs) == 1


def _until(done: Callable[[], bool], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_judged_windows_load_early_once_enough_rows_wait_and_at_once_when_all_are_normalized(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(sandbox, tmp_path)
    first, second, third = plan_range(date(2024, 1, 1), date(2024, 3, 31), ["skybiz"])
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for ref in (first, second, third):
        results[ref] = {"extract": extract_step(settings, ref), "normalize": normalize_step(settings, ref)}
    both = _rows(results[first]) + _rows(results[second])
    monkeypatch.setattr(pipelines.run, "EARLY_LOAD_ROWS", both)  # reached by the first two together
    answer: Future[list[dict[str, Any]] | None] = Future()
    outcomes: dict[str, WindowOutcome] = {}
    with _Loader(settings, ["skybiz"], results, outcomes, None) as loader:
        loader.put([first], None)  # None: judged in this process
        loader.put([second], answer)
        # The loading thread took the second batch (it waits for its answer), so it is done with the first:
        # judged, and not loaded, for its rows alone are fewer than EARLY_LOAD_ROWS.
        _until(lambda: "validate" in results[first] and loader._batches.empty())
        assert "validate" in results[first] and "load" not in results[first], outcomes
        answer.set_result(validate_batch_step(settings, [second]))
        _until(lambda: "load" in results[second] or bool(outcomes))
        assert "load" in results[first] and "load" in results[second], outcomes  # enough rows: loaded early
        loader.normalized()
        loader.put([third], None)
        _until(lambda: "load" in results[third] or bool(outcomes))
        assert "load" in results[third], outcomes  # at once, before finish() is called
        loader.finish()
    assert not outcomes
    assert checksums(settings.warehouse_url)["load_audit"][0] == 3


def test_windows_are_normalized_together_only_up_to_the_row_cap(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    normalize = pipelines.run._normalize

    def recorded(settings: Settings, source: str, refs: list[str], *args: Any) -> list[str]:
        calls.append(list(refs))
        return normalize(settings, source, refs, *args)

    monkeypatch.setattr(pipelines.run, "_normalize", recorded)
    monkeypatch.setattr(pipelines.run, "NORMALIZE_ROWS", 60)  # two or three of these sandbox months
    settings = _settings(sandbox, tmp_path)
    summary = run_pipeline(settings, START, END)
    assert summary.ok, summary.failed

    rows = {o.window_ref: o.results["extract"]["rows"] for o in summary.outcomes}
    assert sorted(r for call in calls for r in call) == sorted(rows)  # every window once
    for call in calls:  # a call stops at the window that reaches the cap
        assert sum(rows[r] for r in call[:-1]) < 60, [rows[r] for r in call]
    assert any(len(call) > 1 for call in calls) or all(rows[c[0]] >= 60 for c in calls)


def _settled(done: bool) -> Future[dict[str, Any]]:
    future: Future[dict[str, Any]] = Future()
    if done:
        future.set_result({})
    return future


def test_an_idle_validator_waits_for_the_last_windows_only_if_extracted_and_quick_to_normalize() -> None:
    quick = pipelines.run.GX_RUN_SECONDS / 10
    extracted = {f"skybiz:w{n}": _settled(True) for n in range(3)}

    assert pipelines.run._almost_normalized(extracted, quick)
    # Too many windows left for a GX run's fixed cost, or one still being extracted: the batch goes now.
    assert not pipelines.run._almost_normalized(extracted, pipelines.run.GX_RUN_SECONDS / 2)
    assert not pipelines.run._almost_normalized({**extracted, "smartacc:w0": _settled(False)}, quick)
