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


@pytest.mark.parametrize("dag_id", ["skysmart_customers", "skysmart_backfill", "skysmart_skybiz_push"])
def test_dag_has_a_doc_for_the_ui_that_names_its_time_zone(dagbag: Any, dag_id: str) -> None:
    doc = dagbag.get_dag(dag_id).doc_md
    assert doc and dag_id in doc and "Malaysia" in doc


def test_the_scheduled_dag_says_when_it_runs_in_malaysia_time(dagbag: Any) -> None:
    dag = dagbag.get_dag("skysmart_customers")
    timetable = dag.timetable
    assert f"`{timetable.expression}`" in dag.doc_md and str(timetable.timezone) in dag.doc_md


@pytest.fixture(scope="module")
def parse_report() -> dict[str, Any]:
    """Import every DAG file in one fresh interpreter, as the DAG processor would, and time each.

    ``airflow.sdk`` is imported first (a DAG processor has it loaded already), so each figure is the file's
    own cost: its imports of ``skysmart_airflow`` and ``pipelines`` plus building the DAG.
    """
    probe = (
        "import importlib.util, json, sys, time\n"
        "t = time.perf_counter(); import airflow.sdk; sdk = time.perf_counter() - t\n"
        "report = {'airflow.sdk': sdk, 'files': {}}\n"
        "for path in json.loads(sys.argv[1]):\n"
        "    spec = importlib.util.spec_from_file_location('probe_' + str(len(report['files'])), path)\n"
        "    module = importlib.util.module_from_spec(spec)\n"
        "    t = time.perf_counter(); spec.loader.exec_module(module); took = time.perf_counter() - t\n"
        f"    heavy = [m for m in {list(HEAVY)!r} if m in sys.modules]\n"
        "    report['files'][path] = {'seconds': took, 'heavy': heavy}\n"
        "print(json.dumps(report))\n"
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-c", probe, json.dumps([str(p) for p in DAG_FILES])]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    times = ", ".join(f"{Path(p).name} {r['seconds']:.3f} s" for p, r in report["files"].items())
    print(f"DAG parse times (after airflow.sdk, {report['airflow.sdk']:.2f} s): {times}")
    return report


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_no_heavy_module(parse_report: dict[str, Any], path: Path) -> None:
    # Cumulative over the files parsed so far in one interpreter, so any file importing one shows up.
    assert parse_report["files"][str(path)]["heavy"] == []


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
