"""Scale-out figures: the six-month backfill on one LocalExecutor vs two Celery workers.

``python -m bench.scaleout [--sizes 600] [--only local|celery]``; figures only, no assertions. Both set-ups
use the deployment of the multi-worker test (:mod:`tests.airflow.scaleout`): the lake on moto's S3 server on
127.0.0.1, Airflow's metadata and the warehouse in Postgres databases made for the run and dropped after it,
the sandbox as the vendors; Celery adds Redis (127.0.0.1:6379) and two workers with two slots each, the
LocalExecutor runs four task processes itself. The work is the same: ``airflow backfill create`` of six
monthly ``skysmart_customers`` runs (no lookback) plus one ``skysmart_backfill`` run over the same months.

Wall time runs from queuing the runs to the last run finishing (process start-up and DAG parsing excluded);
the spread is successful task instances per ``task_instance.hostname``. All processes share this machine's
cores, so two "machines" here compete for the same CPUs: the figure shows the overhead and the spread, not
the speed-up of real separate machines. The load average is printed with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from pathlib import Path

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
from tests.fixtures.s3 import new_bucket


def run_once(kind: str, size: int, template: str, endpoint: str, root: Path) -> tuple[float, dict[str, int]]:
    """One backfill on ``kind`` (``local`` or ``celery``); returns its wall time and its spread."""
    data = history(size)
    broker = redis_broker() if kind == "celery" else contextlib.nullcontext(None)
    with (
        SandboxServer(data=data, seed=41) as sandbox,
        postgres_database("skysmart_bench_airflow", template=template) as metadata,
        postgres_database("skysmart_bench_warehouse") as warehouse,
        broker as broker_url,
    ):
        shared = Shared(
            endpoints=sandbox.endpoints,
            store=new_bucket(endpoint, "bench"),
            warehouse_url=database_url(warehouse),
            metadata_url=database_url(metadata, "+psycopg"),
            broker_url=broker_url,
        )
        workers = WORKERS if kind == "celery" else ()
        with Deployment(root / kind, shared, workers=workers) as deployment:
            began = time.perf_counter()
            deployment.backfill_customers(FIRST, LAST_RUN)
            deployment.trigger_backfill_dag(FIRST, LAST)
            runs = {
                **deployment.wait_for_runs(CUSTOMERS_DAG, 6, timeout=1800),
                **deployment.wait_for_runs(BACKFILL_DAG, 1, timeout=1800),
            }
            seconds = time.perf_counter() - began
            spread = deployment.spread()
    failed = sorted(run for run, state in runs.items() if state != "success")
    if failed:
        print(f"  (runs not successful: {failed})")
    return seconds, spread


def main(argv: list[str]) -> None:
    """Print one line per set-up and size."""
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout")
    parser.add_argument("--sizes", default="600", help="customers per system, comma-separated")
    parser.add_argument("--only", choices=("local", "celery"), help="run one set-up only")
    args = parser.parse_args(argv)
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="skysmart-scaleout-") as tmp,
            migrated_metadata_template(Path(tmp) / "migrate") as template,
        ):
            for size in (int(s) for s in args.sizes.split(",")):
                for kind in ("local", "celery"):
                    if args.only and kind != args.only:
                        continue
                    seconds, spread = run_once(
                        kind, size, template, f"http://{host}:{port}", Path(tmp) / str(size)
                    )
                    label = (
                        "1 LocalExecutor (4 slots)" if kind == "local" else "2 Celery workers (2 slots each)"
                    )
                    total = sum(spread.values())
                    shares = ", ".join(f"{name} {count}" for name, count in sorted(spread.items()))
                    print(
                        f"{size:>6} customers  {label:<32} {seconds:6.0f} s  {total} task instances: {shares}"
                        f"  (load {os.getloadavg()[0]:.1f})",
                        flush=True,
                    )
    finally:
        server.stop()


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
