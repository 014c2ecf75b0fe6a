"""A two-year run through 10 % random vendor faults ends with the warehouse a fault-free run builds.

Faults are what the network and a busy vendor do: HTTP 500, 429 with ``Retry-After``, connections dropped
before an answer and answers cut off half-way, drawn at random for 10 % of requests to both APIs. Retries
must absorb them all: the run ends without a failed window and every warehouse table equals, row by row,
the one a run against a well-behaved sandbox builds (apart from when rows were received and loaded).
How many retries that took and what it cost in time is measured by ``python -m bench faults``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pipelines.config import Settings
from pipelines.run import RunSummary, run_pipeline
from skysmart_sandbox.server import SandboxServer
from skysmart_sandbox.switches import Switches
from tests.fixtures.sandbox import sandbox_data
from tests.warehouse.snapshot import TABLES, snapshot

pytestmark = pytest.mark.slow

START, END = date(2024, 1, 1), date(2025, 12, 31)
FAULTS = {"500": 0.025, "429": 0.025, "drop": 0.025, "truncate": 0.025}


def _run(tmp: Path, faults: dict[str, float]) -> tuple[RunSummary, dict[str, list[str]]]:
    server = SandboxServer(
        data=sandbox_data(2_000, 7),
        seed=7,
        skybiz_switches=Switches(fault_rates=dict(faults), seed=21),
        smartacc_switches=Switches(fault_rates=dict(faults), seed=22),
    )
    with server:
        settings = Settings.from_env(server.endpoints.as_env())
        settings = dataclasses.replace(
            settings, lake_url=str(tmp / "lake"), warehouse_url=str(tmp / "warehouse.duckdb")
        )
        summary = run_pipeline(settings, START, END)
    return summary, snapshot(settings.warehouse_url)


def test_two_years_through_ten_percent_faults_build_the_same_warehouse(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The fault-free run goes alongside on a thread: the faulty one spends much of its time waiting out
    # Retry-After and backoff, so the pair costs little more than the faulty run alone.
    done: dict[str, Any] = {}

    def baseline() -> None:
        done["clean"] = _run(tmp_path / "clean", {})

    thread = threading.Thread(target=baseline, name="fault-free-run")
    with caplog.at_level(logging.WARNING, logger="pipelines.http"):
        thread.start()
        try:
            faulty_summary, faulty = _run(tmp_path / "faulty", FAULTS)
        finally:
            thread.join()
    clean_summary, clean = done["clean"]

    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) >= 10, "the faults never reached the clients"
    assert clean_summary.ok and faulty_summary.ok, [o.error for o in faulty_summary.failed]
    assert clean["customers"], "the fault-free run loaded nothing to compare"
    for table in TABLES:
        assert faulty[table] == clean[table], table
