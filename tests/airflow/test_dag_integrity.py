"""DAG integrity: every file imports cleanly, carries tags, owners and retries, and parses light."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.airflow import DAGS_FOLDER

DAG_FILES = sorted(p for p in DAGS_FOLDER.glob("*.py") if not p.name.startswith("_"))
HEAVY = ("pandas", "pyarrow", "great_expectations", "duckdb", "psycopg", "requests")

pytestmark = pytest.mark.xdist_group("airflow")


def test_every_dag_file_imports_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"skysmart_customers", "skysmart_backfill", "skysmart_skybiz_push"}


@pytest.mark.parametrize("dag_id", ["skysmart_customers", "skysmart_backfill", "skysmart_skybiz_push"])
def test_dag_has_tags_owner_and_retries(dagbag: Any, dag_id: str) -> None:
    dag = dagbag.get_dag(dag_id)
    assert "skysmart" in dag.tags
    for task in dag.tasks:
        assert task.owner == "skysmart", task.task_id
        assert task.retries >= 1, task.task_id


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_no_heavy_module(path: Path) -> None:
    probe = (
        "import importlib.util, json, sys, time\n"
        f"spec = importlib.util.spec_from_file_location('probe_dag', {str(path)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "t = time.perf_counter(); spec.loader.exec_module(module); took = time.perf_counter() - t\n"
        f"print(json.dumps({{'heavy': [m for m in {list(HEAVY)!r} if m in sys.modules], 'seconds': took}}))\n"
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-c", probe]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []


def test_backfill_plans_month_windows_for_five_years() -> None:
    from datetime import date

    from pipelines.steps import plan_range

    refs = plan_range(date(2021, 1, 1), date(2025, 12, 31), ["skybiz"])
    assert len(refs) == 60
    assert refs[0] == "skybiz:2021-01-01_2021-01-31" and refs[-1] == "skybiz:2025-12-01_2025-12-31"


def test_retry_policy_follows_the_error_types() -> None:
    from airflow.sdk import RetryAction

    from pipelines.errors import AuthenticationError, DataQualityError, RateLimitedError, TransientApiError
    from skysmart_airflow.operators import skysmart_retry_policy

    policy = skysmart_retry_policy()
    assert policy.evaluate(TransientApiError("x"), 1, 3).action is RetryAction.RETRY
    assert policy.evaluate(RateLimitedError("x"), 1, 3).action is RetryAction.RETRY
    assert policy.evaluate(AuthenticationError("x"), 1, 3).action is RetryAction.FAIL
    assert policy.evaluate(DataQualityError("x"), 1, 3).action is RetryAction.FAIL
    assert policy.evaluate(ValueError("x"), 1, 3).action is RetryAction.DEFAULT
