"""``make demo``: a year of history through the real DAGs against the sandbox, then what landed.

Starts the sandbox in its own process, points Airflow connections at it, runs ``skysmart_backfill`` over a
year and ``skysmart_skybiz_push`` in dry-run mode with ``dag.test()``, prints a report from the warehouse,
and stops the sandbox. Everything lives under ``.demo/`` (ignored by git).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _start_sandbox(workdir: Path, size: int) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    endpoints_file = workdir / "endpoints.json"
    endpoints_file.unlink(missing_ok=True)
    log = (workdir / "sandbox.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "sandbox",
            "serve",
            "--size",
            str(size),
            "--write-endpoints",
            str(endpoints_file),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while not endpoints_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"sandbox did not start; see {workdir / 'sandbox.log'}")
        time.sleep(0.2)
    time.sleep(0.2)
    return proc, json.loads(endpoints_file.read_text())


def _configure_environment(workdir: Path, endpoints: dict[str, str]) -> dict[str, str]:
    home = workdir / "airflow"
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "PYTHONWARNINGS": "ignore",
        "SKYSMART_LAKE": str(workdir / "lake"),
        "AIRFLOW_CONN_SKYBIZ_DEFAULT": json.dumps(
            {
                "conn_type": "skybiz",
                "host": endpoints["skybiz_url"],
                "login": endpoints["skybiz_api_key"],
                "password": endpoints["skybiz_api_secret"],
            }
        ),
        "AIRFLOW_CONN_SMARTACC_DEFAULT": json.dumps(
            {
                "conn_type": "smartacc",
                "host": endpoints["smartacc_url"],
                "extra": {"api_key": endpoints["smartacc_api_key"]},
            }
        ),
        "AIRFLOW_CONN_SKYSMART_WAREHOUSE_DEFAULT": json.dumps(
            {"conn_type": "skysmart_warehouse", "extra": {"url": str(workdir / "warehouse.duckdb")}}
        ),
    }
    os.environ.update(env)
    return env


def _migrate() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"airflow db migrate failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")


def _run_dags(start: date, end: date) -> list[tuple[str, str, float]]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(ROOT / "dags"))
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    runs = []
    for dag_id, conf in (
        ("skysmart_backfill", {"start": start.isoformat(), "end": end.isoformat()}),
        ("skysmart_skybiz_push", {"dry_run": True}),
    ):
        print(f"→ running {dag_id} {conf}", flush=True)
        began = time.perf_counter()
        run = bag.get_dag(dag_id).test(run_conf=conf)
        took = time.perf_counter() - began
        runs.append((dag_id, str(run.state), took))
        print(f"  {dag_id}: {run.state} in {took:.1f} s", flush=True)
        if str(run.state) != "success":
            failed = [ti.task_id for ti in run.get_task_instances() if str(ti.state) != "success"]
            print(f"  tasks not successful: {sorted(set(failed))}", flush=True)
    return runs


def _report(workdir: Path, runs: list[tuple[str, str, float]], push_xcom: Any = None) -> None:
    from pipelines.cli.ui import console, print_table
    from pipelines.lake import CUSTOMERS, QUALITY, Lake
    from pipelines.warehouse import open_warehouse

    warehouse_path = workdir / "warehouse.duckdb"
    print_table("DAG runs", ["dag", "state", "seconds"], [[d, s, round(t, 1)] for d, s, t in runs])
    with open_warehouse(str(warehouse_path)) as wh:
        print_table(
            "Customers per source",
            ["source", "customers", "with data issues"],
            wh.query(
                "SELECT source_system, count(*), count(data_issues) FROM customers GROUP BY 1 ORDER BY 1"
            ),
        )
        print_table(
            "Quarantine by reason",
            ["source", "rule", "rows"],
            wh.query(
                "SELECT source_system, rule, count(*) FROM customer_quarantine GROUP BY 1, 2 ORDER BY 3 DESC"
            ),
        )
        coverage = wh.query_df("SELECT * FROM v_window_coverage")
        print_table("Window coverage", [str(c) for c in coverage.columns], coverage.itertuples(index=False))
        sample = wh.query_df("SELECT * FROM v_customers ORDER BY 1 LIMIT 5")
        cols = [str(c) for c in sample.columns][:8]
        print_table("A sample of v_customers", cols, sample[cols].itertuples(index=False))
    lake = Lake(str(workdir / "lake"))
    reports = [
        f"{lake.window_dir(QUALITY, source, CUSTOMERS, window)}/report.html"
        for source in ("skybiz", "smartacc")
        for window in lake.windows(QUALITY, source)
    ]
    quality_rows = []
    for source in ("skybiz", "smartacc"):
        for window in lake.windows(QUALITY, source):
            try:
                result = json.loads(lake.read_file(QUALITY, source, CUSTOMERS, window, "validation.json"))
            except Exception:
                continue
            stats = result.get("statistics", {})
            quality_rows.append(
                [
                    window.ref,
                    stats.get("evaluated_expectations"),
                    stats.get("successful_expectations"),
                    stats.get("unsuccessful_expectations"),
                ]
            )
    print_table("Quality (great-expectations)", ["window", "evaluated", "passed", "failed"], quality_rows[:6])
    console.print(f"Data Docs reports: {len(reports)} windows, e.g. {reports[0] if reports else '(none)'}")
    console.print(f"Warehouse: {warehouse_path}")
    console.print(
        f"Query it: .venv/bin/skysmart sql --warehouse {warehouse_path} "
        '"SELECT source_system, count(*) FROM v_customers GROUP BY 1"'
    )


def main(argv: list[str] | None = None) -> int:
    """Run the demo; ``--size`` customers per system, ``--start/--end`` the history to backfill."""
    parser = argparse.ArgumentParser(prog="python -m skysmart_airflow.demo")
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2025, 11, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 10, 31))
    parser.add_argument("--workdir", type=Path, default=ROOT / ".demo")
    args = parser.parse_args(argv)

    workdir: Path = args.workdir
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    began = time.perf_counter()
    sandbox, endpoints = _start_sandbox(workdir, args.size)
    try:
        print(f"sandbox up: {endpoints['skybiz_url']} and {endpoints['smartacc_url']}", flush=True)
        _configure_environment(workdir, endpoints)
        _migrate()
        runs = _run_dags(args.start, args.end)
    finally:
        sandbox.send_signal(signal.SIGTERM)
        try:
            sandbox.wait(timeout=15)
        except subprocess.TimeoutExpired:
            sandbox.kill()
    print("sandbox stopped", flush=True)
    _report(workdir, runs)
    print(f"demo finished in {time.perf_counter() - began:.0f} s", flush=True)
    return 0 if all(state == "success" for _, state, _ in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
