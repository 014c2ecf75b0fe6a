"""Real DAG runs with ``dag.test()`` against the sandbox over HTTP and a real DuckDB warehouse file.

One Airflow session (the migrated database of ``tests.fixtures.airflow``) runs every DAG here; after the
first run's warm-up each run costs a second or two plus its tasks' own work. The sandbox serves two years
of history (2024-2025, 1,500 customers per system), so a month window holds ~60 records per source.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pendulum
import pytest

from pipelines.config import Settings
from pipelines.windows import MYT
from skysmart_sandbox.data import SandboxData, generate
from skysmart_sandbox.server import SandboxServer
from tests.airflow.truth import sandbox_ids, table_rows, warehouse_ids
from tests.fixtures.airflow import RunOutcome, pipeline_env, run_dag

pytestmark = [
    pytest.mark.xdist_group("airflow"),
    # dag.test() runs Airflow's execution API in-process through FastAPI's test client, which warns about
    # its own httpx dependency on first use: Airflow's concern, not ours.
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated"),
]

SOURCES = ("skybiz", "smartacc")
FIRST, LAST = date(2024, 1, 1), date(2025, 12, 31)
SEED = 31
WINDOW_TASKS = ("window.extract", "window.normalize", "window.validate", "window.load")
# The backfill: extraction mapped over windows, then batch tasks of up to 12 windows of one source.
BACKFILL_TASKS = ("extract", "batches", "process")
# The lineage of one particular load: which load wrote a row, when, and when it was extracted or refused.
LOAD_COLUMNS = {"load_id", "loaded_at", "extracted_at", "quarantined_at"}
EXTRACTION_LINEAGE = {"_extracted_at", "_request_id"}


@cache
def history() -> SandboxData:
    """Two years of customers in both systems (deterministic; generated once per process)."""
    return generate(1_500, SEED, history_start=FIRST, history_end=LAST)


@pytest.fixture(scope="module")
def history_sandbox() -> Iterator[SandboxServer]:
    """The history served read-only to the tests of this module that never switch faults or create."""
    with SandboxServer(data=history(), seed=SEED) as server:
        yield server


def content(warehouse: Path, table: str, order: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """A table's columns and rows without the load lineage, in a stable order.

    A quarantined row keeps the raw record as extracted, whose ``_extracted_at``/``_request_id`` name one
    particular extraction; they are dropped from it too.
    """
    from pipelines.warehouse import open_warehouse

    with open_warehouse(str(warehouse), read_only=True) as wh:
        columns = [r[0] for r in wh.query(f"SELECT column_name FROM (DESCRIBE {table})")]
        kept = [c for c in columns if c not in LOAD_COLUMNS]
        rows = wh.query(f"SELECT {', '.join(kept)} FROM {table} ORDER BY {order}")
    if "raw_record" in kept:
        at = kept.index("raw_record")
        rows = [(*row[:at], _without_extraction(row[at]), *row[at + 1 :]) for row in rows]
    return kept, rows


def _without_extraction(raw_record: str) -> dict[str, Any]:
    record = json.loads(raw_record)
    return {k: v for k, v in record.items() if k not in EXTRACTION_LINEAGE}


def assert_all_succeeded(outcome: RunOutcome) -> None:
    failed = {key: value for key, value in outcome.tasks.items() if value[0] != "success"}
    assert outcome.state == "success" and not failed, failed


# -- a scheduled interval, and its rerun -------------------------------------------------------------------


@dataclass(frozen=True)
class IntervalRuns:
    """The same interval of ``skysmart_customers`` run twice into one warehouse, with snapshots after each."""

    workdir: Path
    outcomes: tuple[RunOutcome, RunOutcome]
    customers: tuple[Any, Any]
    history: tuple[Any, Any]
    audit: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def interval_runs(
    dagbag: Any, history_sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory
) -> IntervalRuns:
    workdir = tmp_path_factory.mktemp("interval")
    dag = dagbag.get_dag("skysmart_customers")
    # The run for 2025-03-16 00:00 MYT covers the data interval [03-15, 03-16) plus one lookback day.
    logical_date = pendulum.datetime(2025, 3, 16, tz="Asia/Kuala_Lumpur")
    outcomes: list[RunOutcome] = []
    customers: list[Any] = []
    versions: list[Any] = []
    audit: list[list[tuple[Any, ...]]] = []
    with pytest.MonkeyPatch.context() as mp:
        for key, value in pipeline_env(history_sandbox.endpoints, workdir).items():
            mp.setenv(key, value)
        for _ in range(2):
            outcomes.append(run_dag(dag, logical_date=logical_date))
            warehouse = workdir / "warehouse.duckdb"
            customers.append(content(warehouse, "customers", "customer_key"))
            versions.append(content(warehouse, "customer_history", "customer_key, valid_from"))
            audit.append(
                table_rows(
                    warehouse,
                    "SELECT source, source_window, status, rows_in, inserted, updated, unchanged "
                    "FROM load_audit ORDER BY started_at",
                )
            )
    first, rerun = (o.seconds for o in outcomes)
    print(f"dag.test skysmart_customers interval: {first:.1f} s, rerun {rerun:.1f} s")
    return IntervalRuns(
        workdir,
        (outcomes[0], outcomes[1]),
        (customers[0], customers[1]),
        (versions[0], versions[1]),
        (audit[0], audit[1]),
    )


def test_scheduled_interval_loads_what_the_sandbox_holds_for_those_malaysia_dates(
    interval_runs: IntervalRuns,
) -> None:
    outcome = interval_runs.outcomes[0]
    assert_all_succeeded(outcome)
    assert {task for task, _ in outcome.tasks} == {"plan", *WINDOW_TASKS}
    # [03-15 00:00, 03-16 00:00) in Malaysia is the date 03-15; the lookback adds 03-14.
    assert outcome.results[("plan", -1)] == ["skybiz:2025-03-14_2025-03-15", "smartacc:2025-03-14_2025-03-15"]
    assert sorted(row[:3] for row in interval_runs.audit[0]) == [
        ("skybiz", "2025-03-14_2025-03-15", "succeeded"),
        ("smartacc", "2025-03-14_2025-03-15", "succeeded"),
    ]
    warehouse = interval_runs.workdir / "warehouse.duckdb"
    for source in SOURCES:
        expected = sandbox_ids(history(), source, date(2025, 3, 14), date(2025, 3, 15))
        assert expected, f"the sandbox should hold {source} records on those dates"
        assert warehouse_ids(warehouse, source) == expected
        # The neighbouring days exist in the sandbox and must not have leaked in.
        assert sandbox_ids(history(), source, date(2025, 3, 13), date(2025, 3, 13))
        assert sandbox_ids(history(), source, date(2025, 3, 16), date(2025, 3, 16))


def test_rerunning_an_interval_leaves_the_warehouse_unchanged_but_audited(
    interval_runs: IntervalRuns,
) -> None:
    assert_all_succeeded(interval_runs.outcomes[1])
    assert interval_runs.customers[1] == interval_runs.customers[0]
    assert interval_runs.history[1] == interval_runs.history[0]
    first, second = interval_runs.audit
    assert second[: len(first)] == first
    added = second[len(first) :]
    assert len(added) == 2
    for source, window, status, rows_in, inserted, updated, unchanged in added:
        assert (window, status, inserted, updated) == ("2025-03-14_2025-03-15", "succeeded", 0, 0), source
        assert unchanged == rows_in > 0


# -- a backfill over two years, and the same range without Airflow -------------------------------------


@dataclass(frozen=True)
class Backfilled:
    workdir: Path
    outcome: RunOutcome

    @property
    def warehouse(self) -> Path:
        return self.workdir / "warehouse.duckdb"


@pytest.fixture(scope="module")
def backfilled(
    dagbag: Any, history_sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory
) -> Backfilled:
    workdir = tmp_path_factory.mktemp("backfill")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in pipeline_env(history_sandbox.endpoints, workdir).items():
            mp.setenv(key, value)
        outcome = run_dag(
            dagbag.get_dag("skysmart_backfill"), conf={"start": FIRST.isoformat(), "end": LAST.isoformat()}
        )
    print(f"dag.test skysmart_backfill over two years (48 windows): {outcome.seconds:.1f} s")
    return Backfilled(workdir, outcome)


def test_backfill_over_two_years_loads_monthly_windows_matching_the_sandbox(backfilled: Backfilled) -> None:
    assert_all_succeeded(backfilled.outcome)
    assert len(backfilled.outcome.results[("plan", -1)]) == 48
    assert backfilled.outcome.tries("extract") == [1] * 48
    # 24 windows per source in batches of 12: four batch tasks (normalize + validate + load) for 48 windows.
    assert backfilled.outcome.tries("process") == [1] * 4
    assert [len(batch) for batch in backfilled.outcome.results[("batches", -1)]] == [12] * 4
    assert sum(len(r["loaded"]) for k, r in backfilled.outcome.results.items() if k[0] == "process") == 48
    months = [(m.isoformat(), (m + timedelta(days=32)).replace(day=1) - timedelta(days=1)) for m in _months()]
    coverage = table_rows(
        backfilled.warehouse,
        "SELECT source, coverage, source_window FROM v_window_coverage ORDER BY source, window_start",
    )
    assert coverage == [
        (source, "loaded", f"{start}_{end.isoformat()}") for source in SOURCES for start, end in months
    ]
    for source in SOURCES:
        expected = sandbox_ids(history(), source, FIRST, LAST)
        assert len(expected) == 1_500  # the whole history of the source
        assert warehouse_ids(backfilled.warehouse, source) == expected


def _months() -> list[date]:
    return [date(year, month, 1) for year in (2024, 2025) for month in range(1, 13)]


def test_skysmart_run_and_the_backfill_dag_leave_the_same_warehouse(
    backfilled: Backfilled, history_sandbox: SandboxServer, tmp_path: Path
) -> None:
    from pipelines.run import run_pipeline

    settings = Settings.from_env(
        {
            **history_sandbox.endpoints.as_env(),
            "SKYSMART_LAKE": str(tmp_path / "lake"),
            "SKYSMART_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        }
    )
    summary = run_pipeline(settings, FIRST, LAST)

    assert summary.ok, summary.failed
    assert summary.totals["windows"] == 48
    for table, order in (
        ("customers", "customer_key"),
        ("customer_history", "customer_key, valid_from"),
        ("customer_quarantine", "source_system, source_customer_id, rule"),
    ):
        dag_columns, dag_rows = content(backfilled.warehouse, table, order)
        cli_columns, cli_rows = content(tmp_path / "warehouse.duckdb", table, order)
        assert cli_columns == dag_columns, table
        assert cli_rows == dag_rows, table


# -- failing windows: retryable vs fatal ---------------------------------------------------------------

ONE_WINDOW = {"start": "2025-03-01", "end": "2025-03-31", "sources": ["skybiz"]}


def test_a_transient_extract_failure_is_retried_and_the_window_completes(
    dagbag: Any, sandbox_factory: Any, airflow_env: Any, tmp_path: Path
) -> None:
    server = sandbox_factory(data=history(), seed=SEED)
    # One retry inside the HTTP client, then the task gives up with RetriesExhaustedError (retryable).
    airflow_env(pipeline_env(server.endpoints, tmp_path, skybiz_extra={"max_retries": 1}))
    server.skybiz.switches.inject("500", "500")

    outcome = run_dag(dagbag.get_dag("skysmart_backfill"), conf=ONE_WINDOW, retry_delay=timedelta(seconds=1))

    assert_all_succeeded(outcome)
    assert outcome.tries("extract") == [2]
    assert [outcome.tries(t) for t in BACKFILL_TASKS[1:]] == [[1], [1]]
    expected = sandbox_ids(history(), "skybiz", date(2025, 3, 1), date(2025, 3, 31))
    assert warehouse_ids(tmp_path / "warehouse.duckdb", "skybiz") == expected


@pytest.mark.parametrize(
    ("breakage", "error", "vendor_message"),
    [
        pytest.param("revoke_read", "PermissionDeniedError", "Customer read permission denied", id="revoked"),
        pytest.param("bad_secret", "AuthenticationError", "Invalid API credentials", id="bad-credential"),
    ],
)
def test_a_fatal_extract_failure_fails_at_once_with_its_message(
    dagbag: Any,
    sandbox_factory: Any,
    airflow_env: Any,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    breakage: str,
    error: str,
    vendor_message: str,
) -> None:
    server = sandbox_factory(data=history(), seed=SEED)
    bad_secret = "not-the-secret-6f1d0c2b9a8e7d6c5b4a"
    if breakage == "revoke_read":
        server.skybiz.set_permissions(server.endpoints.skybiz_api_key, read=False)
        airflow_env(pipeline_env(server.endpoints, tmp_path))
    else:
        airflow_env(pipeline_env(server.endpoints, tmp_path, skybiz_password=bad_secret))
    capfd.readouterr()

    outcome = run_dag(dagbag.get_dag("skysmart_backfill"), conf=ONE_WINDOW, retry_delay=timedelta(seconds=1))
    output = "".join(capfd.readouterr())

    assert outcome.state == "failed"
    # Failed on the first try although the task has retries left: the retry policy knows the type.
    assert outcome.tasks[("extract", 0)] == ("failed", 1)
    assert {outcome.states("process")[0]} == {"upstream_failed"}
    assert f"pipelines.errors.{error}: skybiz read window=2025-03-01_2025-03-31" in output
    assert vendor_message in output
    reads = list(server.skybiz.received)
    assert len(reads) == 1, reads  # and the HTTP layer did not retry it either
    assert server.endpoints.skybiz_api_secret not in output and bad_secret not in output
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_a_locked_warehouse_is_retried_once_the_other_writer_lets_go(
    dagbag: Any, sandbox_factory: Any, airflow_env: Any, tmp_path: Path
) -> None:
    server = sandbox_factory(data=history(), seed=SEED)
    airflow_env(pipeline_env(server.endpoints, tmp_path))
    warehouse = tmp_path / "warehouse.duckdb"
    # Another process (another DAG's load, an analyst's session) holds DuckDB's single write lock.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        watcher = threading.Thread(target=_release_when_load_awaits_retry, args=(holder,), daemon=True)
        watcher.start()
        outcome = run_dag(
            dagbag.get_dag("skysmart_backfill"), conf=ONE_WINDOW, retry_delay=timedelta(seconds=1)
        )
        watcher.join(timeout=30)
    finally:
        holder.kill()
        holder.wait(timeout=10)

    assert_all_succeeded(outcome)
    # TransientWarehouseError is retryable: the load failed once on the lock, then went through.
    assert [outcome.tries(t) for t in BACKFILL_TASKS] == [[1], [1], [2]]
    expected = sandbox_ids(history(), "skybiz", date(2025, 3, 1), date(2025, 3, 31))
    assert warehouse_ids(warehouse, "skybiz") == expected


HOLD_LOCK = (
    "import duckdb, sys\ncon = duckdb.connect(sys.argv[1])\nprint('locked', flush=True)\nsys.stdin.read()\n"
)


def _release_when_load_awaits_retry(holder: subprocess.Popen[str]) -> None:
    """Close the other writer once the load task has failed on its lock (bounded: at most 60 s)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(TaskInstance.task_id).where(
        TaskInstance.dag_id == "skysmart_backfill",
        TaskInstance.task_id == "process",
        TaskInstance.state == "up_for_retry",
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with create_session() as session:
            if session.scalar(query):
                break
        time.sleep(0.1)
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=10)


# -- the push DAG ----------------------------------------------------------------------------------------


def test_push_dag_dry_run_changes_nothing_stale_skybiz_refuses_and_a_real_run_creates_the_missing(
    backfilled: Backfilled, dagbag: Any, sandbox_factory: Any, airflow_env: Any, tmp_path: Path
) -> None:
    server = sandbox_factory(data=history(), seed=SEED)  # the same SkyBiz the backfill read, writable
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(backfilled.warehouse, warehouse)
    airflow_env(pipeline_env(server.endpoints, tmp_path))
    dag = dagbag.get_dag("skysmart_skybiz_push")
    before = server.skybiz.customer_count
    customers_before = content(warehouse, "customers", "customer_key")

    declared = FIRST.isoformat()  # the first day of this tenant's SkyBiz history
    dry = run_dag(dag, conf={"dry_run": True, "skybiz_covered_from": declared})

    assert_all_succeeded(dry)
    plan = dry.results[("push", -1)]
    assert plan["dry_run"] is True and plan["to_create"] > 0 and plan["requests"] == 0, plan
    assert server.skybiz.customer_count == before
    assert not [r for r in server.skybiz.received if r.action == "create"]
    assert _outbox(tmp_path) == []
    # The backfill loaded SkyBiz without gaps, but its newest day (LAST) is long before today: stale.
    assert f"SkyBiz is stale: the newest loaded day is {LAST}" in plan["coverage_problem"]

    refused = run_dag(dag, conf={"dry_run": False, "skybiz_covered_from": declared})

    assert refused.state == "failed"
    assert refused.tasks[("push", -1)] == ("failed", 1)  # PushCoverageError: not retried, nothing sent
    # The report is a teardown: written although the push failed, and the run still reads failed.
    assert refused.tasks[("report", -1)] == ("success", 1)
    assert not [r for r in server.skybiz.received if r.action == "create"]
    assert _outbox(tmp_path) == []

    real = run_dag(
        dag, conf={"dry_run": False, "allow_partial_coverage": True, "skybiz_covered_from": declared}
    )

    assert_all_succeeded(real)
    pushed = real.results[("push", -1)]
    assert f"the newest loaded day is {LAST}" in pushed["coverage_problem"]
    # The real run did what the dry run said it would, in the batches it announced.
    decided = ("selected", "valid", "invalid", "already_exists", "needs_review", "to_create", "batches")
    assert {k: pushed[k] for k in decided} == {k: plan[k] for k in decided}
    assert pushed["created"] + pushed["rejected"] + pushed["unresolved"] == plan["to_create"]
    assert pushed["requests"] == plan["batches"]
    outbox = _outbox(tmp_path)
    created = [code for key, code, state in outbox if state == "created"]
    assert len(created) == pushed["created"] > 0
    assert server.skybiz.customer_count == before + len(created)
    assert all(server.skybiz.customer(code) is not None for code in created)
    active_smartacc = {
        f"smartacc:{r[0]}"
        for r in table_rows(
            warehouse,
            "SELECT source_customer_id FROM customers WHERE source_system = 'smartacc' AND is_active",
        )
    }
    assert {key for key, _, _ in outbox} <= active_smartacc
    assert content(warehouse, "customers", "customer_key") == customers_before
    report_url = real.results[("report", -1)]["report_url"]
    page = Path(report_url.removeprefix("file://")).read_text(encoding="utf-8")
    assert report_url.endswith("/report.html") and "<svg" in page
    # The page counts the outbox this run wrote.
    assert f'data-state="created">{len(created):,}<' in page
    # This tenant's SkyBiz history is the backfill's two years, and that is as recent as it gets.
    airflow_env(
        {
            "SKYSMART_PUSH_SKYBIZ_COVERED_FROM": FIRST.isoformat(),
            "SKYSMART_PUSH_MAX_STALENESS_DAYS": str((datetime.now(MYT).date() - LAST).days + 1),
        }
    )

    again = run_dag(dag, conf={"dry_run": False})

    assert_all_succeeded(again)
    assert again.results[("push", -1)]["coverage_problem"] is None
    assert again.results[("push", -1)]["created"] == 0  # exactly once
    assert server.skybiz.customer_count == before + len(created)
    print(
        f"dag.test skysmart_skybiz_push: dry run {dry.seconds:.1f} s, refused {refused.seconds:.1f} s, "
        f"real {real.seconds:.1f} s"
    )


def _outbox(workdir: Path) -> list[tuple[Any, ...]]:
    from pipelines.warehouse import open_warehouse

    with open_warehouse(str(workdir / "warehouse.duckdb"), read_only=True) as wh:
        if not wh.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'skybiz_push_outbox'"):
            return []
        return wh.query("SELECT customer_key, cus_code, state FROM skybiz_push_outbox ORDER BY cus_code")
