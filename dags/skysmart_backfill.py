"""Historical backfill in one run: plan ≤31-day windows over years and map the pipeline over them.

Five years is ~60 mapped windows per source rather than 1,800 daily runs; extracts per run are bounded so the
vendors' rate limits hold.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from skysmart_airflow.groups import process_window

with DAG(
    dag_id="skysmart_backfill",
    description="Backfill customers over any historical range, month-sized windows mapped in one run",
    schedule=None,
    start_date=pendulum.datetime(2020, 1, 1, tz="Asia/Kuala_Lumpur"),
    catchup=False,
    max_active_runs=1,
    tags=["skysmart", "customers", "backfill"],
    default_args={"owner": "skysmart", "retries": 3, "retry_delay": timedelta(minutes=1)},
    params={
        "start": Param("2025-01-01", type="string", format="date", description="First Malaysia date"),
        "end": Param(
            "2025-12-31", type="string", format="date", description="Last Malaysia date (inclusive)"
        ),
        "sources": Param(["skybiz", "smartacc"], type="array", description="Sources to backfill"),
    },
) as dag:

    @task
    def plan(params: dict[str, Any] | None = None) -> list[str]:
        """Window references covering start..end for each source."""
        from datetime import date

        from pipelines.steps import plan_range

        assert params is not None  # injected by Airflow

        return plan_range(
            date.fromisoformat(params["start"]), date.fromisoformat(params["end"]), list(params["sources"])
        )

    process_window.expand(window_ref=plan())
