"""``make demo``: the full loop through the real DAGs against the sandbox, then what landed.

Starts the sandbox in its own process (``skysmart sandbox serve``) with a history from ``--start`` through
today, points Airflow connections at it through ``AIRFLOW_CONN_*`` variables, and with ``dag.test()`` in a
private Airflow home runs:

1. ``skysmart_backfill`` for SkyBiz from its first day (``--start``) through today — the whole history, so
   "not in the warehouse" means "not in SkyBiz";
2. ``skysmart_backfill`` for SmartAcc over ``--start``..``--end``;
3. ``skysmart_skybiz_push`` as a dry run, then for real, both declaring ``skybiz_covered_from`` = ``--start``
   (each run rebuilds identity resolution's ``customer_matches`` first);

then reads the customers the push created back from SkyBiz (a plain read, as any SkyBiz user would), stops
the sandbox, and prints a report from the warehouse and from the tasks' own results (XCom). Everything lives
under ``.demo/`` (ignored by git).
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
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

DEFAULT_WORKDIR = Path(".demo")
DEFAULT_DAGS = Path("dags")
"""Relative to where the demo runs (a checkout of the project): an installed package has no DAG folder."""
MARKER = ".skysmart-demo"
"""Marks a directory the demo made, so it only ever deletes its own."""
SAMPLE_COLUMNS = (
    "customer_key",
    "customer_name",
    "town",
    "state",
    "phone",
    "email",
    "currency_code",
    "payment_term_days",
)


@dataclass
class DemoRun:
    """One ``dag.test()`` run: its state, wall time, failed tasks and the tasks' results (XCom)."""

    dag_id: str
    state: str
    seconds: float
    conf: dict[str, Any] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    results: dict[tuple[str, int], Any] = field(default_factory=dict)


def _start_sandbox(
    workdir: Path, size: int, history_start: date
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """Serve both emulators on 127.0.0.1 in a child process; its endpoints arrive in a file it writes.

    The sandbox's history runs from ``history_start`` through today, as a live tenant's does.
    """
    endpoints_file = workdir / "endpoints.json"
    endpoints_file.unlink(missing_ok=True)
    with (workdir / "sandbox.log").open("wb") as log:
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
                "--history-start",
                history_start.isoformat(),
                "--history-end",
                "today",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while not endpoints_file.exists():  # written atomically once both servers accept connections
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait(timeout=10)
            raise SystemExit(f"sandbox did not start; see {workdir / 'sandbox.log'}")
        time.sleep(0.2)
    endpoints: dict[str, str] = json.loads(endpoints_file.read_text())
    return proc, endpoints


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _configure_environment(workdir: Path, dags: Path, endpoints: dict[str, str]) -> None:
    """A private Airflow home, our DAGs, and connections as JSON ``AIRFLOW_CONN_*`` variables."""
    home = workdir / "airflow"
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags.resolve()),
            # The provider registers through its entry point; nothing needs Airflow's plugins folder.
            "AIRFLOW__CORE__PLUGINS_FOLDER": str((home / "plugins").resolve()),
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
    )


def _migrate() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"airflow db migrate failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")


def _run_dags(dags: Path, start: date, end: date, today: date) -> list[DemoRun]:
    """SkyBiz's whole history, SmartAcc's range, then the push as a dry run and for real (``dag.test()``)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(dags.resolve()))
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    runs = []
    first_day = start.isoformat()
    for dag_id, conf in (
        ("skysmart_backfill", {"start": first_day, "end": today.isoformat(), "sources": ["skybiz"]}),
        ("skysmart_backfill", {"start": first_day, "end": end.isoformat(), "sources": ["smartacc"]}),
        ("skysmart_skybiz_push", {"dry_run": True, "skybiz_covered_from": first_day}),
        ("skysmart_skybiz_push", {"dry_run": False, "skybiz_covered_from": first_day}),
    ):
        print(f"→ running {dag_id} {conf}", flush=True)
        began = time.perf_counter()
        dag_run = bag.get_dag(dag_id).test(run_conf=conf)
        run = DemoRun(dag_id, str(dag_run.state), time.perf_counter() - began, conf=conf)
        run.failed = sorted({ti.task_id for ti in dag_run.get_task_instances() if str(ti.state) != "success"})
        run.results = _results(dag_id, dag_run.run_id)
        runs.append(run)
        print(f"  {dag_id}: {run.state} in {run.seconds:.1f} s", flush=True)
        if run.failed:
            print(f"  tasks not successful: {run.failed}", flush=True)
            break
    return runs


def _results(dag_id: str, run_id: str) -> dict[tuple[str, int], Any]:
    """Every task's return value in one run: ``(task_id, map_index)`` → the step's small dict."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query: Any = XComModel.get_many(run_id=run_id, dag_ids=dag_id, key="return_value")
        return {
            (row.task_id, int(row.map_index)): XComModel.deserialize_value(row)
            for row in session.scalars(query)
        }


def _read_back(endpoints: dict[str, str], runs: list[DemoRun], today: date) -> list[dict[str, Any]]:
    """The customers the real push created, read back from SkyBiz (modified yesterday or today)."""
    from pipelines.config import Settings
    from pipelines.sources.skybiz.client import SkyBizClient
    from pipelines.windows import Window

    pushed = [r for r in runs if r.dag_id == "skysmart_skybiz_push" and not r.conf.get("dry_run")]
    if not pushed or pushed[0].state != "success":
        return []
    settings = Settings.from_env(
        {
            "SKYSMART_SKYBIZ_URL": endpoints["skybiz_url"],
            "SKYSMART_SKYBIZ_API_KEY": endpoints["skybiz_api_key"],
            "SKYSMART_SKYBIZ_API_SECRET": endpoints["skybiz_api_secret"],
        }
    )
    window = Window("skybiz", today - timedelta(days=1), today)
    fields = ["CusCode", "CusName", "CurCode", "Tel", "Email", "DateTimeModified"]
    with SkyBizClient(settings.require_skybiz()) as client:
        rows = client.read_window(window, fields=fields).rows
    return [dict(r) for r in rows if str(r.get("CusCode") or "").startswith("SA-")]


def _report(workdir: Path, runs: list[DemoRun], created: list[dict[str, Any]]) -> None:
    from pipelines.cli.ui import console, print_table
    from pipelines.warehouse import open_warehouse

    warehouse_path = workdir / "warehouse.duckdb"
    print_table(
        "DAG runs",
        ["dag", "conf", "state", "seconds"],
        [[r.dag_id, json.dumps(r.conf), r.state, round(r.seconds, 1)] for r in runs],
    )
    if not warehouse_path.exists():
        console.print("No warehouse was written; see the task logs above.")
        return
    with open_warehouse(str(warehouse_path), read_only=True) as wh:
        print_table(
            "Customers per source",
            ["source", "customers", "with data issues", "quarantined"],
            wh.query(
                "SELECT c.source_system, c.n, c.issues, coalesce(q.n, 0) FROM "
                "(SELECT source_system, count(*) AS n, count(*) FILTER (WHERE data_issues <> '') AS issues"
                " FROM customers GROUP BY 1) c "
                "LEFT JOIN (SELECT source_system, count(*) AS n FROM customer_quarantine GROUP BY 1) q "
                "USING (source_system) ORDER BY 1"
            ),
        )
        print_table(
            "Quarantine by reason",
            ["source", "rule", "field", "rows"],
            wh.query(
                "SELECT source_system, rule, field, count(*) FROM customer_quarantine "
                "GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2"
            ),
        )
        print_table(
            "Window coverage (v_window_coverage)",
            ["source", "windows loaded", "first day", "last day", "gaps", "rows read", "quarantined"],
            wh.query(
                "SELECT source, count(*) FILTER (WHERE coverage = 'loaded'), min(window_start)::DATE, "
                "max(window_end)::DATE, count(*) FILTER (WHERE coverage = 'gap'), "
                "CAST(sum(rows_in) AS BIGINT), CAST(sum(quarantined) AS BIGINT) "
                "FROM v_window_coverage GROUP BY 1 ORDER BY 1"
            ),
        )
        sample = wh.query(
            f"SELECT {', '.join(SAMPLE_COLUMNS)} FROM v_customers ORDER BY customer_key LIMIT 5"
        )
        print_table("A sample of v_customers", list(SAMPLE_COLUMNS), sample)
    reports = _quality(workdir / "lake")
    _push(runs, created)
    example = reports[0] if reports else "-"
    console.print(f"Data Docs: {len(reports)} HTML reports beside the lake windows, e.g. {example}")
    from pipelines.report import write_report

    page = write_report(str(warehouse_path), str(workdir / "lake"), workdir / "report.html")
    console.print(f"Report:    {page} (coverage, loads, quarantine, quality, push, identity: open it)")
    console.print(f"Warehouse: {warehouse_path}")
    query = (
        "SELECT source, state, count(*) AS customers FROM v_customers GROUP BY ALL ORDER BY 3 DESC LIMIT 10"
    )
    console.print(f'Query it:  .venv/bin/skysmart sql --warehouse {warehouse_path} "{query}"')


def _quality(lake: Path) -> list[str]:
    """Validation results per source, read from the lake (``validation.json`` beside each window's report).

    Returns the HTML report locations.
    """
    from pipelines.cli.ui import print_table

    per_source: dict[str, list[int]] = {}
    failed: Counter[tuple[str, str]] = Counter()
    reports: list[str] = []
    for path in sorted(lake.glob("quality/source=*/entity=*/window=*/validation.json")):
        result = json.loads(path.read_text())
        meta = result.get("meta", {}).get("skysmart", {})
        stats = result.get("statistics", {})
        source = str(meta.get("source", "?"))
        totals = per_source.setdefault(source, [0, 0, 0, 0, 0, 0])
        errors = warnings_ = 0
        for check in result.get("results") or []:
            if check.get("success"):
                continue
            config = check.get("expectation_config") or {}
            severity = (config.get("meta") or {}).get("severity", "error")
            errors += severity == "error"
            warnings_ += severity != "error"
            name = str((config.get("meta") or {}).get("check") or config.get("type"))
            failed[(source, name)] += int((check.get("result") or {}).get("unexpected_count") or 0)
        for i, value in enumerate(
            (1, int(meta.get("rows") or 0), int(stats.get("evaluated_expectations") or 0),
             int(stats.get("successful_expectations") or 0), errors, warnings_)
        ):  # fmt: skip
            totals[i] += value
        if (path.parent / "report.html").exists():
            reports.append(str(path.parent / "report.html"))
    print_table(
        "Quality (great-expectations, per source over all windows)",
        ["source", "windows", "rows", "expectations", "passed", "error failures", "warning failures"],
        [[source, *totals] for source, totals in sorted(per_source.items())],
    )
    if failed:
        print_table(
            "Failed expectations (rows)",
            ["source", "check", "rows"],
            [[s, c, n] for (s, c), n in failed.most_common(8)],
        )
    return reports


def _push(runs: list[DemoRun], created: list[dict[str, Any]]) -> None:
    from pipelines.cli.ui import console, print_table

    pushes = [r for r in runs if r.dag_id == "skysmart_skybiz_push"]
    for push in pushes:
        result = push.results.get(("push", -1))
        identity = push.results.get(("identity", -1))
        if not result:
            continue
        dry = bool(push.conf.get("dry_run"))
        if identity:
            print_table(
                "Identity resolution (customer_matches, rebuilt before the push)",
                ["SkyBiz records", "quarantined", "SmartAcc records", "same", "possible", "different"],
                [[identity[k] for k in ("skybiz_records", "skybiz_quarantined", "smartacc_records", "same",
                                        "possible", "different")]],
            )  # fmt: skip
        keys = ("selected", "already_exists", "to_create" if dry else "created", "batches", "invalid")
        print_table(
            "SkyBiz push, dry run (nothing sent)" if dry else "SkyBiz push (sent to the sandbox)",
            ["SmartAcc-only", "already in SkyBiz", "would create" if dry else "created", "batches", "invalid",
             "needs review"],
            [[*(result[k] for k in keys), result["needs_review"]]],
        )  # fmt: skip
        if result.get("coverage_problem"):
            console.print(f"SkyBiz coverage problem: {result['coverage_problem']}", markup=False)
    if created:
        columns = ["CusCode", "CusName", "CurCode", "Tel", "Email", "DateTimeModified"]
        print_table(
            f"Created in SkyBiz, read back from SkyBiz ({len(created):,} customers; the first 5)",
            columns,
            [[row.get(c) for c in columns] for row in sorted(created, key=lambda r: str(r["CusCode"]))[:5]],
        )


def main(argv: list[str] | None = None) -> int:
    """Run the demo; ``--size`` customers per system, ``--start/--end`` the history to backfill."""
    parser = argparse.ArgumentParser(prog="python -m skysmart_sandbox.demo")
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2025, 12, 1),
        help="first day of the sandbox's history",
    )
    parser.add_argument(
        "--end", type=date.fromisoformat, default=None, help="last day of SmartAcc to load (default today)"
    )
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument(
        "--dags", type=Path, default=DEFAULT_DAGS, help="skysmart's DAG folder (default ./dags)"
    )
    args = parser.parse_args(argv)
    if not (args.dags / "skysmart_backfill.py").is_file():
        raise SystemExit(
            f"{args.dags} holds no skysmart DAGs; run from the project's checkout or pass --dags"
        )
    # Airflow's in-process execution API and GX warn about their own dependencies; not the reader's concern.
    warnings.simplefilter("ignore")

    workdir: Path = args.workdir.resolve()  # Airflow wants absolute paths (its SQLite URL, its home)
    ours = workdir.resolve() == DEFAULT_WORKDIR.resolve() or (workdir / MARKER).exists()
    if workdir.exists() and any(workdir.iterdir()) and not ours:
        raise SystemExit(f"{workdir} is not empty and not a demo directory; choose another --workdir")
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text("made by `make demo`; deleted and rebuilt by the next run\n")
    began = time.perf_counter()
    today = datetime.now(ZoneInfo("Asia/Kuala_Lumpur")).date()
    sandbox, endpoints = _start_sandbox(workdir, args.size, args.start)
    try:
        print(f"sandbox up: {endpoints['skybiz_url']} and {endpoints['smartacc_url']}", flush=True)
        _configure_environment(workdir, args.dags, endpoints)
        _migrate()
        runs = _run_dags(args.dags, args.start, args.end or today, today)
        created = _read_back(endpoints, runs, today)
    finally:
        _stop(sandbox)
    print("sandbox stopped", flush=True)
    _report(workdir, runs, created)
    print(f"demo finished in {time.perf_counter() - began:.0f} s", flush=True)
    return 0 if runs and all(r.state == "success" for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
