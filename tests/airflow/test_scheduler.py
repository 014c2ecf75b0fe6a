"""The real scheduler: ``airflow backfill create`` over three months runs through and fills the warehouse.

Everything ``dag.test()`` skips is exercised here: the dag-processor serializing the DAG files, the scheduler
creating task instances from a backfill, the LocalExecutor forking task processes that talk to the execution
API over HTTP with signed tokens, mapped task groups across concurrent runs, and the DuckDB single-writer
rule (``window.load`` runs one at a time across runs: ``max_active_tis_per_dag=1``).

Cost control (two shared cores): the DAG is scheduled monthly through ``SKYSMART_SCHEDULE`` (the same DAG
file, its deployment knob), the backfill's runs take ``lookback_days=0`` so each run is one window per
source, and the scheduler's own cron scheduling is off (``use_job_schedule``) so unpausing the DAG does not
add a run for the latest interval. Three runs are 27 task instances.
"""

from __future__ import annotations

import time
from datetime import date
from itertools import pairwise
from pathlib import Path

import pytest

from skysmart_sandbox.data import SandboxData, generate
from skysmart_sandbox.server import SandboxServer
from tests.airflow.truth import sandbox_ids, warehouse_ids
from tests.fixtures.airflow import AirflowServices, pipeline_env

pytestmark = [pytest.mark.xdist_group("airflow"), pytest.mark.slow]

DAG_ID = "skysmart_customers"


def _data() -> SandboxData:
    return generate(900, 23, history_start=date(2024, 10, 1), history_end=date(2025, 6, 30))


def test_backfill_create_runs_three_monthly_intervals_through_the_real_scheduler(
    airflow_db: Path, tmp_path: Path
) -> None:
    began = time.perf_counter()
    data = _data()
    with SandboxServer(data=data, seed=23) as sandbox:
        env = {
            **pipeline_env(sandbox.endpoints, tmp_path),
            "SKYSMART_SCHEDULE": "0 0 1 * *",
            "AIRFLOW__CORE__PARALLELISM": "3",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        }
        with AirflowServices(tmp_path / "airflow", env) as services:
            services.start_api_server()
            services.start("dag-processor", "dag-processor")
            services.wait_for(
                "the dag-processor to serialize the DAG",
                lambda: services.query("SELECT 1 FROM serialized_dag WHERE dag_id = ?", (DAG_ID,)),
                timeout=180,
            )
            # Queued before the scheduler starts: SQLite has one writer, and the backfill's run rows go in
            # while only the (idle) dag-processor holds the database.
            services.cli(
                ["dags", "unpause", DAG_ID],
                [
                    "backfill",
                    "create",
                    "--dag-id",
                    DAG_ID,
                    "--from-date",
                    "2025-01-01T00:00:00+08:00",
                    "--to-date",
                    "2025-03-01T00:00:00+08:00",
                    "--dag-run-conf",
                    '{"lookback_days": 0}',
                ],
            )
            queued = services.query(
                "SELECT run_id FROM dag_run WHERE dag_id = ? AND run_type = 'backfill'", (DAG_ID,)
            )
            assert len(queued) == 3
            services.start("scheduler", "scheduler", "--skip-serve-logs")
            # (The backfill row itself is closed by a 30-second scheduler timer; the runs are what count.)
            services.wait_for(
                "the backfill's three runs to finish",
                lambda: services.query(
                    "SELECT count(*) FROM dag_run WHERE dag_id = ? AND state IN ('success', 'failed') "
                    "HAVING count(*) = 3",
                    (DAG_ID,),
                ),
                timeout=480,
                interval=1,
            )
            runs = dict(services.query("SELECT run_id, state FROM dag_run WHERE dag_id = ?", (DAG_ID,)))
            loads = services.query(
                "SELECT start_date, end_date FROM task_instance WHERE dag_id = ? AND task_id = 'window.load' "
                "ORDER BY start_date",
                (DAG_ID,),
            )
            tasks = services.query(
                "SELECT task_id, state, count(*) FROM task_instance WHERE dag_id = ? GROUP BY 1, 2", (DAG_ID,)
            )
    seconds = time.perf_counter() - began

    assert set(runs.values()) == {"success"}, (runs, tasks)
    assert sorted(tasks) == [
        ("plan", "success", 3),
        ("window.extract", "success", 6),
        ("window.load", "success", 6),
        ("window.normalize", "success", 6),
        ("window.validate", "success", 6),
    ]
    # One DuckDB writer: the six loads of three concurrent runs never overlapped.
    assert all(later[0] >= earlier[1] for earlier, later in pairwise(loads))
    warehouse = tmp_path / "warehouse.duckdb"
    for source in ("skybiz", "smartacc"):
        expected = sandbox_ids(data, source, date(2025, 1, 1), date(2025, 3, 31))
        assert expected and warehouse_ids(warehouse, source) == expected
    from pipelines.warehouse import open_warehouse

    with open_warehouse(str(warehouse), read_only=True) as wh:
        audit = wh.query("SELECT source, source_window, status FROM load_audit ORDER BY 1, 2")
    assert audit == [
        (source, window, "succeeded")
        for source in ("skybiz", "smartacc")
        for window in ("2025-01-01_2025-01-31", "2025-02-01_2025-02-28", "2025-03-01_2025-03-31")
    ]
    print(f"real scheduler: backfill of 3 monthly runs (27 task instances) finished in {seconds:.0f} s")
