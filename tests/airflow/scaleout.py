"""Airflow spread over "machines" that share no disk, for the multi-worker test and ``bench/scaleout.py``.

Everything a task needs is reached by URL: the lake on S3 (moto on 127.0.0.1), the warehouse and Airflow's
metadata on Postgres (databases created here and dropped afterwards), the broker on Redis, the vendors on the
sandbox. The control plane (api-server with the execution API, dag-processor, scheduler) runs in one home;
each Celery worker runs in its own empty directory, which is its AIRFLOW_HOME, working directory, TMPDIR and
log folder, and names itself through ``[core] hostname_callable`` so the metadata database records which
worker ran each task instance. With ``executor="LocalExecutor"`` the scheduler runs every task itself, on
the same Postgres and S3: the one-machine baseline of the figures.

The services are :class:`tests.fixtures.airflow.AirflowServices`; this module only says how they are wired.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from skysmart_sandbox.data import SandboxData, generate
from tests.fixtures.airflow import ROOT, AirflowServices, airflow_connection_env, migrate_airflow_db
from tests.fixtures.postgres import ADMIN_URL
from tests.fixtures.s3 import S3Store

FIRST, LAST = date(2025, 1, 1), date(2025, 6, 30)
LAST_RUN = date(2025, 6, 1)  # the logical date of the sixth monthly run


@functools.cache
def history(size: int) -> SandboxData:
    """Customers modified from December 2024 to June 2025 in both systems (deterministic)."""
    return generate(size, 41, history_start=date(2024, 12, 1), history_end=LAST)


CUSTOMERS_DAG = "skysmart_customers"
BACKFILL_DAG = "skysmart_backfill"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
WORKERS = ("worker-a", "worker-b")
SCALEOUT_KNOBS = {
    # The same DAG file, scheduled monthly (its deployment knob): six backfill runs are six months.
    "SKYSMART_SCHEDULE": "0 0 1 * *",
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.airflow.worker_name.hostname",
}


class MissingServiceError(RuntimeError):
    """A server the scale-out test needs (Postgres, Redis) does not answer: the test fails, never skips."""


def _admin() -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise MissingServiceError(
            f"no Postgres server at {ADMIN_URL} (trust auth, user postgres): {exc}"
        ) from exc


def database_url(name: str, driver: str = "") -> str:
    """URL of database ``name`` on the test server; ``driver`` e.g. ``+psycopg`` for SQLAlchemy."""
    base = ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}".replace("postgresql://", f"postgresql{driver}://", 1)


@contextlib.contextmanager
def postgres_database(prefix: str, *, template: str | None = None) -> Iterator[str]:
    """A new database (optionally a copy of ``template``), dropped with its connections afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        try:
            yield name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def migrated_metadata_template(home: Path) -> Iterator[str]:
    """A Postgres database holding a freshly migrated Airflow schema, to copy with ``TEMPLATE`` per case."""
    with postgres_database("skysmart_airflow_tpl") as name:
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url(name, "+psycopg"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": database_url(name, "+psycopg"),
            "PYTHONWARNINGS": "ignore",
        }
        migrate_airflow_db(env)
        yield name


@contextlib.contextmanager
def redis_broker() -> Iterator[str]:
    """A broker URL on an empty Redis database of the local server, flushed again afterwards."""
    import redis

    for number in range(15, 0, -1):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number, socket_connect_timeout=5)
        try:
            if client.dbsize() == 0:
                break
        except redis.exceptions.ConnectionError as exc:
            raise MissingServiceError(f"no Redis server at {REDIS_HOST}:{REDIS_PORT}: {exc}") from exc
    else:
        raise MissingServiceError(f"no empty database on the Redis server at {REDIS_HOST}:{REDIS_PORT}")
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{number}"
    finally:
        client.flushdb()
        client.close()


@dataclass(frozen=True)
class Shared:
    """What every machine of the deployment is configured with (the settings docs/scale-out.md lists)."""

    endpoints: Any
    store: S3Store
    warehouse_url: str
    metadata_url: str
    broker_url: str | None
    lake_prefix: str = "lake"

    @property
    def lake_url(self) -> str:
        """The lake on the object store."""
        return self.store.url(self.lake_prefix)

    def env(self, executor: str) -> dict[str, str]:
        """Connections, lake, executor, metadata and broker settings, identical on every machine.

        No ``AWS_*`` variable is set: tasks reach the bucket through the ``skysmart_lake_default`` connection.
        """
        values = {
            **airflow_connection_env(self.endpoints, self.warehouse_url),
            **self.store.airflow_conn_env(),
            **SCALEOUT_KNOBS,
            "SKYSMART_LAKE": self.lake_url,
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": self.metadata_url,
            "PYTHONPATH": str(ROOT),  # the code is installed on every machine (hostname_callable lives here)
        }
        if self.broker_url:
            values["AIRFLOW__CELERY__BROKER_URL"] = self.broker_url
            values["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + self.metadata_url
        return values


class Deployment:
    """The control plane plus ``workers`` Celery workers (none: LocalExecutor), started and stopped together.

    Args:
        root: an empty directory: ``control/`` is the control plane's home, ``<worker>/`` each worker's.
        shared: the deployment's shared settings.
        workers: worker names; empty for the LocalExecutor baseline.
        env: further variables for every process (timeouts of a case).
    """

    def __init__(
        self,
        root: Path,
        shared: Shared,
        workers: tuple[str, ...] = WORKERS,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root
        self.shared = shared
        self.workers = workers
        executor = "CeleryExecutor" if workers else "LocalExecutor"
        control = root / "control"
        environment = {**shared.env(executor), **dict(env or {})}
        self.services = AirflowServices(control, environment, metadata_url=shared.metadata_url)
        for key in [k for k in self.services.env if k.startswith("AWS_")]:
            del self.services.env[key]  # the lake connection, not the test host's AWS identity
        # One configuration file for every process, as a deployment ships it: Airflow writes none elsewhere.
        self.services.env["AIRFLOW_CONFIG"] = str(control / "airflow.cfg")

    def worker_dir(self, name: str) -> Path:
        """The worker's whole local disk as far as Airflow and skysmart are concerned."""
        return self.root / name

    def __enter__(self) -> Deployment:
        self.services.__enter__()
        (self.services.home / "airflow.cfg").touch()
        try:
            self.start()
        except BaseException:
            self.services.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.services.stop()

    def start(self) -> None:
        """api-server, dag-processor (until both DAGs are serialized), scheduler, then the workers."""
        services = self.services
        services.start_api_server()
        services.start("dag-processor", "dag-processor")
        services.wait_for(
            "the dag-processor to serialize the DAGs",
            lambda: services.query(
                "SELECT count(*) FROM serialized_dag WHERE dag_id IN (?, ?) HAVING count(*) = 2",
                (CUSTOMERS_DAG, BACKFILL_DAG),
            ),
            timeout=180,
        )
        services.start("scheduler", "scheduler", "--skip-serve-logs")
        for name in self.workers:
            self.start_worker(name)

    def start_worker(self, name: str) -> None:
        """``airflow celery worker`` as machine ``name``: its own empty home, cwd, TMPDIR and log folder."""
        home = self.worker_dir(name)
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        self.services.start(
            name,
            "celery",
            "worker",
            "--celery-hostname",
            name,
            "--concurrency",
            SCALEOUT_KNOBS["AIRFLOW__CELERY__WORKER_CONCURRENCY"],
            "--skip-serve-logs",
            "--without-mingle",
            "--without-gossip",
            cwd=home,
            env={
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
                "TMPDIR": str(home / "tmp"),
                "SKYSMART_WORKER_NAME": name,
            },
        )

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker with its pool and its running tasks: the machine is gone."""
        self.services.kill(name)

    # -- driving runs ----------------------------------------------------------------------------------------

    def backfill_customers(self, first: date, last_month: date) -> None:
        """``airflow backfill create`` of ``skysmart_customers``, one monthly run per month, no lookback."""
        self.services.cli(
            ["dags", "unpause", CUSTOMERS_DAG],
            [
                "backfill",
                "create",
                "--dag-id",
                CUSTOMERS_DAG,
                "--from-date",
                f"{first.isoformat()}T00:00:00+08:00",
                "--to-date",
                f"{last_month.isoformat()}T00:00:00+08:00",
                "--dag-run-conf",
                '{"lookback_days": 0}',
            ],
        )

    def trigger_backfill_dag(self, first: date, last: date) -> None:
        """One run of ``skysmart_backfill`` over ``first``..``last`` (Malaysia dates)."""
        conf = {"start": first.isoformat(), "end": last.isoformat(), "sources": ["skybiz", "smartacc"]}
        self.services.cli(
            ["dags", "unpause", BACKFILL_DAG], ["dags", "trigger", BACKFILL_DAG, "--conf", json.dumps(conf)]
        )

    def wait_for_runs(self, dag_id: str, count: int, *, timeout: float) -> dict[str, str]:
        """Wait until ``count`` runs of ``dag_id`` are finished; returns ``run_id -> state`` of its runs."""
        self.services.wait_for(
            f"{count} runs of {dag_id} to finish",
            lambda: self.services.query(
                "SELECT count(*) FROM dag_run WHERE dag_id = ? AND state IN ('success', 'failed') "
                "HAVING count(*) >= ?",
                (dag_id, count),
            ),
            timeout=timeout,
            interval=2,
        )
        rows = self.services.query("SELECT run_id, state FROM dag_run WHERE dag_id = ?", (dag_id,))
        return {str(r[0]): str(r[1]) for r in rows}

    def spread(self, dag_id: str | None = None) -> dict[str, int]:
        """Successful task instances (of ``dag_id``, else of all DAGs) per recorded hostname."""
        rows = self.services.query(
            "SELECT hostname, count(*) FROM task_instance WHERE state = 'success' AND dag_id LIKE ? "
            "GROUP BY hostname",
            (dag_id or "%",),
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def tries(self, dag_id: str) -> list[tuple[str, int, int, str, str]]:
        """Every try of a DAG's task instances: ``(task_id, map_index, try_number, hostname, state)``."""
        query = (
            "SELECT task_id, map_index, try_number, coalesce(hostname, ''), coalesce(state, '') FROM {table} "
            "WHERE dag_id = ?"
        )
        rows = [
            *self.services.query(query.format(table="task_instance_history"), (dag_id,)),
            *self.services.query(query.format(table="task_instance"), (dag_id,)),
        ]
        return sorted((str(r[0]), int(r[1]), int(r[2]), str(r[3]), str(r[4])) for r in rows)

    def local_files(self, name: str) -> list[str]:
        """Every file under a worker's directory, relative to it."""
        base = self.worker_dir(name)
        return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


def wait_until(what: str, condition: Any, services: AirflowServices, timeout: float) -> Any:
    """``services.wait_for`` for conditions that may briefly fail while processes come and go."""
    return services.wait_for(what, condition, timeout=timeout, interval=0.5)


def elapsed(began: float) -> float:
    """Seconds since ``began`` (a ``time.perf_counter()``)."""
    return time.perf_counter() - began
