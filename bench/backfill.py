"""A five-year ``skysmart_backfill`` through the real scheduler: wall time and task instances.

``python -m bench backfill [-- --years 5 --size 2000]``; figures only, no assertions. Starts what
``make airflow`` starts (``scripts/airflow_local.py``: the sandbox, the api-server, the dag-processor and
the scheduler with its LocalExecutor, SQLite metadata) in a temporary home, unpauses ``skysmart_backfill``
and triggers one run over the last ``--years`` whole years (both sources) through the REST API, as the UI's
trigger button does, then waits for it. Printed: the wall time from the trigger to the run's end (start-up
and DAG parsing excluded), the task instances per task, and the windows ``load_audit`` recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

import duckdb

from scripts.airflow_local import AirflowApi
from tests.fixtures.airflow import free_port

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "skysmart_backfill"


def main(argv: list[str]) -> None:
    """Run one backfill and print its figures."""
    parser = argparse.ArgumentParser(prog="bench backfill")
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--size", type=int, default=2000, help="customers per vendor in the sandbox")
    args, _ = parser.parse_known_args(argv)
    last = date.today().year - 1
    start, end = date(last - args.years + 1, 1, 1), date(last, 12, 31)
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        home, port = Path(tmp) / "airflow", free_port()
        ready = Path(tmp) / "ready.json"
        command = [sys.executable, str(ROOT / "scripts" / "airflow_local.py"), "--home", str(home)]
        launcher = subprocess.Popen(
            [*command, "--port", str(port), "--size", str(args.size), "--ready-file", str(ready)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            login = _wait_ready(launcher, ready)
            api = AirflowApi(login["url"], login["username"], login["password"])
            api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
            began = time.perf_counter()
            conf = {"start": start.isoformat(), "end": end.isoformat(), "sources": ["skybiz", "smartacc"]}
            run = api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": conf})
            state = _wait_run(api, run["dag_run_id"])
            seconds = time.perf_counter() - began
            per_task = _task_instances(api, run["dag_run_id"])
            with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
                loaded = con.sql("SELECT count(*) FROM load_audit WHERE status = 'succeeded'").fetchall()
        finally:
            launcher.send_signal(signal.SIGINT)
            launcher.wait(timeout=120)
    print(
        f"skysmart_backfill {start}..{end}, both sources, {args.size:,} customers per vendor, "
        f"2 cores, load average {os.getloadavg()[0]:.2f}"
    )
    print(f"run {state} in {seconds:.0f} s; {sum(per_task.values())} task instances: {dict(per_task)}")
    print(f"windows loaded (load_audit succeeded): {loaded[0][0]}")


def _task_instances(api: AirflowApi, run_id: str) -> Counter[str]:
    """Task instances per task id, every page of them (the API answers 100 at most at a time)."""
    per_task: Counter[str] = Counter()
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=100&offset="
    while True:
        page = api.call("GET", f"{path}{sum(per_task.values())}")
        per_task.update(t["task_id"] for t in page["task_instances"])
        if not page["task_instances"] or sum(per_task.values()) >= page["total_entries"]:
            return per_task


def _wait_ready(launcher: subprocess.Popen[bytes], ready: Path) -> dict[str, str]:
    deadline = time.monotonic() + 600
    while not ready.exists():
        if launcher.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the local Airflow did not come up (run `make airflow` to see why)")
        time.sleep(0.5)
    login: dict[str, str] = json.loads(ready.read_text())
    return login


def _wait_run(api: AirflowApi, run_id: str) -> str:
    deadline = time.monotonic() + 7200
    while time.monotonic() < deadline:
        state = str(api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["state"])
        if state in ("success", "failed"):
            return state
        time.sleep(5)
    raise SystemExit(f"run {run_id} did not finish in 2 hours")


if __name__ == "__main__":
    main(sys.argv[1:])
