"""Scale-out, for real: two Celery workers that share no disk run skysmart's DAGs into Postgres from S3.

The deployment is :mod:`tests.airflow.scaleout`: the lake on moto's S3 server (127.0.0.1), Airflow's metadata
and Celery's results in a Postgres database made for the test, Redis on 127.0.0.1:6379 as the broker (a
missing Redis or Postgres fails the test), the warehouse in another Postgres database, the sandbox as the
vendors; api-server, dag-processor and scheduler, and two workers each in its own empty directory.

1. ``airflow backfill create`` over six months of ``skysmart_customers``: every run succeeds, both workers ran
   task instances (``task_instance.hostname`` is the worker's name), the warehouse holds exactly the
   sandbox's customers of those months (each as a customer or a quarantined row, none twice), the lake is in
   the bucket, and the workers' directories hold logs only.
2. Then one ``skysmart_backfill`` run over three of those months, during which a worker is SIGKILLed while it
   runs a task: the scheduler notices the missing heartbeats, Airflow retries the task, the other worker
   runs it, the run succeeds and the warehouse is still exact (the months it reloaded changed nothing).

Cost control (two shared cores): one deployment for both cases (the kill comes last), monthly schedule and
``lookback_days=0`` (one window per source and run), a small sandbox, heartbeat timeouts of seconds.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import date

import pytest

from skysmart_sandbox.server import SandboxServer
from tests.airflow.scaleout import (
    BACKFILL_DAG,
    CUSTOMERS_DAG,
    FIRST,
    LAST,
    LAST_RUN,
    WORKERS,
    Deployment,
    Shared,
    database_url,
    history,
    migrated_metadata_template,
    postgres_database,
    redis_broker,
)
from tests.airflow.truth import sandbox_ids, warehouse_ids
from tests.fixtures.s3 import new_bucket

pytestmark = [pytest.mark.xdist_group("airflow"), pytest.mark.slow]

SOURCES = ("skybiz", "smartacc")
MONTHS = 6


SIZE = 600  # customers per system


KILL_KNOBS = {
    # Notice a dead worker in seconds rather than Airflow's five-minute default.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "2",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "5",
}


@pytest.fixture(scope="module")
def deployment(s3_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The running deployment both cases share, with its own databases, bucket and broker (all removed)."""
    root = tmp_path_factory.mktemp("scaleout")
    store = new_bucket(s3_server)
    with (
        SandboxServer(data=history(SIZE), seed=41) as sandbox,
        migrated_metadata_template(root / "migrate") as metadata,
        postgres_database("skysmart_warehouse") as warehouse,
        redis_broker() as broker,
    ):
        shared = Shared(
            endpoints=sandbox.endpoints,
            store=store,
            warehouse_url=database_url(warehouse),
            metadata_url=database_url(metadata, "+psycopg"),
            broker_url=broker,
        )
        with Deployment(root, shared, env=KILL_KNOBS) as running:
            yield running


def assert_warehouse_exact(shared: Shared, last: date = LAST) -> None:
    for source in SOURCES:
        expected = sandbox_ids(history(SIZE), source, FIRST, last)
        assert expected and warehouse_ids(shared.warehouse_url, source) == expected, source


def test_a_backfill_spread_over_two_celery_workers_fills_the_warehouse_exactly(
    deployment: Deployment,
) -> None:
    shared = deployment.shared
    began = time.perf_counter()
    deployment.backfill_customers(FIRST, LAST_RUN)
    runs = deployment.wait_for_runs(CUSTOMERS_DAG, MONTHS, timeout=540)
    seconds = time.perf_counter() - began
    spread = deployment.spread(CUSTOMERS_DAG)
    tasks = deployment.services.query(
        "SELECT dag_id, task_id, state, count(*) FROM task_instance WHERE dag_id = ? GROUP BY 1, 2, 3",
        (CUSTOMERS_DAG,),
    )
    files = {name: deployment.local_files(name) for name in WORKERS}
    xcoms = [str(row[0]) for row in deployment.services.query("SELECT value::text FROM xcom")]
    logs = "".join(
        path.read_text(errors="replace") for path in deployment.root.rglob("*.log") if path.is_file()
    )

    assert len(runs) == MONTHS and set(runs.values()) == {"success"}, (runs, tasks)
    assert sorted((r[0], r[1], r[2], r[3]) for r in tasks) == [
        (CUSTOMERS_DAG, "plan", "success", MONTHS),
        *[(CUSTOMERS_DAG, f"window.{step}", "success", MONTHS * 2) for step in sorted(STEPS)],
    ]
    # Both machines worked, and only they: every task instance names the worker that ran it.
    assert set(spread) == set(WORKERS) and all(spread[name] > 0 for name in WORKERS), spread
    assert sum(spread.values()) == MONTHS * 9
    assert_warehouse_exact(shared)
    # The lake is in the bucket: every month of both sources normalized and quarantined there.
    manifests = [key for key in shared.store.object_keys("lake/") if key.endswith("/_manifest.json")]
    layers = Counter(key.split("/")[1] for key in manifests)
    assert layers["normalized"] == layers["quarantine"] == MONTHS * 2 <= layers["raw"], layers
    # Nothing but logs on the workers' own disks (their home, working directory and TMPDIR are there).
    for name, paths in files.items():
        assert paths and all(path.startswith("logs/") for path in paths), (name, paths[:20])
    # The lake's key pair reached the tasks through the connection, and went nowhere else.
    assert xcoms and any(shared.lake_url in value for value in xcoms)
    for secret in (shared.store.key, shared.store.secret):
        assert not any(secret in value for value in xcoms)
        assert secret not in logs
    print(
        f"\nscale-out: 2 Celery workers, {MONTHS}-month backfill ({sum(spread.values())} task instances) "
        f"in {seconds:.0f} s; spread {dict(sorted(spread.items()))}"
    )


STEPS = ("extract", "normalize", "validate", "load")
KILL_MONTHS = 3


def test_a_worker_killed_mid_task_loses_nothing_and_doubles_nothing(deployment: Deployment) -> None:
    """Runs after the backfill (or alone, on an empty warehouse); the kill ends the deployment's worker-a."""
    shared = deployment.shared
    victim_worker, survivor = WORKERS
    deployment.trigger_backfill_dag(FIRST, date(2025, KILL_MONTHS, 31))
    victim = deployment.services.wait_for(
        f"{victim_worker} to run a task",
        lambda: deployment.services.query(
            "SELECT task_id, map_index, try_number FROM task_instance "
            "WHERE dag_id = ? AND state = 'running' AND hostname = ? ORDER BY start_date LIMIT 1",
            (BACKFILL_DAG, victim_worker),
        ),
        timeout=240,
        interval=0.5,
    )[0]
    deployment.kill_worker(victim_worker)
    runs = deployment.wait_for_runs(BACKFILL_DAG, 1, timeout=420)
    tries = deployment.tries(BACKFILL_DAG)
    spread = deployment.spread(BACKFILL_DAG)

    assert list(runs.values()) == ["success"], (runs, tries)
    finished = Counter(t[0] for t in tries if t[4] == "success")
    assert finished == {"plan": 1, "batches": 1, "extract": KILL_MONTHS * 2, "process": 2}, tries
    task_id, map_index, killed_try = victim
    victim_tries = [t for t in tries if (t[0], t[1]) == (task_id, map_index)]
    # The try on the dead worker failed (its heartbeats stopped); a later try succeeded on the survivor.
    assert (task_id, map_index, killed_try, victim_worker) in [t[:4] for t in victim_tries], victim_tries
    final = max(victim_tries, key=lambda t: t[2])
    assert final[2] > killed_try and final[3:] == (survivor, "success"), victim_tries
    assert spread.get(survivor, 0) > 0, spread
    # After the first case the warehouse holds its six months (three of them reloaded now); alone, three.
    after_the_backfill = deployment.services.query("SELECT 1 FROM dag_run WHERE dag_id = ?", (CUSTOMERS_DAG,))
    assert_warehouse_exact(shared, LAST if after_the_backfill else date(2025, KILL_MONTHS, 31))
    print(f"\nkilled {victim_worker} during {task_id}[{map_index}] try {killed_try}; spread after: {spread}")
