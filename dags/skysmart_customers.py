"""Scheduled customers sync: each run reads its data interval plus a lookback, for both sources.

Works with Airflow's native backfill (``airflow backfill create --dag-id skysmart_customers ...``): every
historical interval becomes a run reading that day. For years of history prefer ``skysmart_backfill``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, Param, task

from skysmart_airflow.groups import process_window

SCHEDULE = os.environ.get("SKYSMART_SCHEDULE", "0 0 * * *")

DOC = f"""
### skysmart_customers — the daily customers sync

**When:** cron `{SCHEDULE}` in **Malaysia time (Asia/Kuala_Lumpur, UTC+08:00)**: by default every day at
00:00 MYT, which the UI shows as 16:00 UTC the day before. Each run covers its data interval (whole
Malaysia calendar days) plus `lookback_days` days before it, so late edits are caught.

**What:** for SkyBiz and SmartAcc, each window is extracted into the lake, normalized (bad records go to
quarantine with a reason), validated with great-expectations and loaded into the warehouse; the load
updates the `skysmart_customers` Asset, which triggers `skysmart_skybiz_push`.

**Connections:** `skybiz_default`, `smartacc_default`, `skysmart_warehouse_default`, and
`skysmart_lake_default` when the lake is on object storage (Variable `skysmart_lake`, e.g. `s3://bucket/lake`).
Years of history: use `skysmart_backfill` instead of many daily runs.
"""

with DAG(
    dag_id="skysmart_customers",
    description="Customers from SkyBiz and SmartAcc into the lake and the warehouse, one interval per run",
    doc_md=DOC,
    # Intervals aligned to Malaysia midnight map onto whole Malaysia dates (a data-interval timetable:
    # "@daily" would give zero-length intervals in Airflow 3).
    schedule=CronDataIntervalTimetable(SCHEDULE, timezone="Asia/Kuala_Lumpur"),
    start_date=pendulum.datetime(2020, 1, 1, tz="Asia/Kuala_Lumpur"),
    catchup=False,
    max_active_runs=4,
    tags=["skysmart", "customers"],
    default_args={"owner": "skysmart", "retries": 3, "retry_delay": timedelta(minutes=1)},
    params={
        "lookback_days": Param(1, type="integer", minimum=0, maximum=31, description="Days re-read before"),
        "sources": Param(["skybiz", "smartacc"], type="array", description="Sources to sync"),
    },
) as dag:

    @task
    def plan(
        params: dict[str, Any] | None = None, data_interval_start: Any = None, data_interval_end: Any = None
    ) -> list[str]:
        """Window references for this run's interval and lookback."""
        from pipelines.steps import plan_interval

        assert params is not None  # injected by Airflow

        return plan_interval(
            data_interval_start,
            data_interval_end,
            lookback_days=int(params["lookback_days"]),
            sources=list(params["sources"]),
        )

    process_window.expand(window_ref=plan())
