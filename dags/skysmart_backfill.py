"""Historical backfill in one run: extract month-sized windows in lean mapped tasks, then process in batches.

Five years is ~60 windows per source rather than 1,800 daily runs. Extraction is mapped over the windows
(at most ``MAX_PARALLEL_EXTRACTS`` at once, so the vendors' rate limits hold) in tasks that import neither
pandas nor great-expectations; normalizing, validating and loading run in batch tasks of ``BATCH_WINDOWS``
windows of one source, each paying the heavy imports once: one GX validation per batch and one warehouse
transaction, with every window still validated on its own rows and audited on its own. A five-year
backfill of both sources is ~132 task instances instead of ~481.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from skysmart_airflow.assets import CUSTOMERS_WAREHOUSE
from skysmart_airflow.groups import MAX_PARALLEL_EXTRACTS
from skysmart_airflow.operators import ExtractWindowOperator, ProcessWindowsOperator

BATCH_WINDOWS = 12
"""Windows of one source normalized, validated and loaded by one batch task (a year of months)."""

with DAG(
    dag_id="skysmart_backfill",
    description="Backfill customers over any range: windows extracted in parallel, processed in batches",
    doc_md="""
### skysmart_backfill — load a range of history in one run

**When:** only when triggered (no schedule). Trigger it with the params `start` and `end`: **Malaysia
calendar dates (UTC+08:00), both inclusive**, and `sources`.

**What:** the range is cut into month-sized windows; each window is extracted into the lake in a light
task, then batch tasks normalize, validate and load a year of one source's months at a time. A failing
window fails its batch task at the end, after the batch's other windows have loaded.

**Connections:** `skybiz_default`, `smartacc_default`, `skysmart_warehouse_default`, and
`skysmart_lake_default` when the lake is on object storage (Variable `skysmart_lake`, e.g. `s3://bucket/lake`).
Before a real SkyBiz push, backfill SkyBiz from the first day of its history through today.
""",
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

    @task
    def batches(window_refs: list[str]) -> list[list[str]]:
        """The windows in batches of ``BATCH_WINDOWS`` of one source, oldest first."""
        by_source: dict[str, list[str]] = {}
        for ref in window_refs:
            by_source.setdefault(ref.partition(":")[0], []).append(ref)
        return [
            refs[i : i + BATCH_WINDOWS]
            for refs in by_source.values()
            for i in range(0, len(refs), BATCH_WINDOWS)
        ]

    refs: Any = plan()  # an XComArg: Airflow resolves it to the list at run time
    # partial() takes the retry policy from the operators' signatures and the delay from default_args.
    extract = ExtractWindowOperator.partial(
        task_id="extract", max_active_tis_per_dagrun=MAX_PARALLEL_EXTRACTS
    ).expand(window_ref=refs)
    chunks = batches(refs)
    # A batch needs its windows' raw data: batches start once every extraction succeeded. One batch task
    # loads at a time across runs (a DuckDB file has a single writer; Postgres serialises loads anyway).
    process = ProcessWindowsOperator.partial(
        task_id="process",
        outlets=[CUSTOMERS_WAREHOUSE],
        max_active_tis_per_dag=1,
    ).expand(window_refs=chunks)
    extract >> process
