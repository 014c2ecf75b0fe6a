"""``skysmart run``'s batched, pipelined path leaves the warehouse the window-by-window path leaves.

The per-window path is :func:`pipelines.run.run_window` over every window in turn — each step as one DAG task
runs it (its own GX validation, its own load transaction and connection). The batched path is
:func:`pipelines.run.run_pipeline` — windows extracted concurrently, validated all together in one GX run and
loaded many to a transaction. Their warehouses are compared as checksums of every table's content, apart
from what names a particular run (load ids, timestamps, request ids).
"""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import pipelines.quality.running as running
from pipelines.config import Settings
from pipelines.run import run_pipeline, run_window
from pipelines.steps import plan_range
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


def test_every_window_of_every_source_is_validated_in_one_great_expectations_batch(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[set[str]] = []
    validate_batch = running._validate_batch

    def recording(frames: Any, *args: Any) -> Any:
        batches.append({str(f["source_system"].iloc[0]) for f in frames if len(f)})
        return validate_batch(frames, *args)

    monkeypatch.setattr(running, "_validate_batch", recording)
    summary = run_pipeline(_settings(sandbox, tmp_path), date(2024, 1, 1), date(2024, 3, 31))
    assert summary.ok, summary.failed
    assert batches == [{"skybiz", "smartacc"}]
