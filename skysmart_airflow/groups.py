"""The per-window task group every customers DAG maps over: extract → normalize → validate → load."""

from __future__ import annotations

from typing import Any

from airflow.sdk import task_group

from skysmart_airflow.assets import CUSTOMERS_WAREHOUSE
from skysmart_airflow.operators import (
    ExtractWindowOperator,
    LoadWindowOperator,
    NormalizeWindowOperator,
    ValidateWindowOperator,
)

MAX_PARALLEL_EXTRACTS = 4
"""Windows extracted at once per run, so a backfill stays inside the vendors' rate limits."""


@task_group(group_id="window")
def process_window(window_ref: str) -> Any:
    """One window through the pipeline; mapped with ``process_window.expand(window_ref=...)``."""
    extract = ExtractWindowOperator(
        task_id="extract", window_ref=window_ref, max_active_tis_per_dagrun=MAX_PARALLEL_EXTRACTS
    )
    normalize = NormalizeWindowOperator(task_id="normalize", window_ref=window_ref)
    validate = ValidateWindowOperator(task_id="validate", window_ref=window_ref)
    # One load at a time per DAG, across all its runs: a DuckDB file has a single writer. A writer from
    # elsewhere (another DAG's load, the push, an analyst's session) makes the load raise
    # TransientWarehouseError, which the retry policy retries; Postgres serialises loads with a lock.
    load = LoadWindowOperator(
        task_id="load", window_ref=window_ref, outlets=[CUSTOMERS_WAREHOUSE], max_active_tis_per_dag=1
    )
    extract >> normalize >> validate >> load
    return load
