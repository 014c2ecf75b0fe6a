"""``make demo`` end to end, small: the module ``make demo`` runs, in a subprocess, over one month."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from pipelines.windows import MYT, plan_windows
from tests.fixtures.airflow import AIRFLOW_ENV

pytestmark = [pytest.mark.xdist_group("airflow"), pytest.mark.slow]


def test_demo_runs_the_dags_reports_and_stops_the_sandbox(tmp_path: Path) -> None:
    # Run where `make demo` would leave its default, relative folder, with the DAGs named: as a user of an
    # installed (non-editable) package would, since no DAG folder ships inside it.
    workdir = tmp_path / ".demo"
    # The demo makes its own Airflow home; nothing of the test session's may leak into it.
    env = {k: v for k, v in os.environ.items() if k not in AIRFLOW_ENV and not k.startswith("AIRFLOW_CONN_")}
    dags = Path(__file__).resolve().parents[2] / "dags"
    command = [sys.executable, "-m", "skysmart_sandbox.demo", "--size", "400", "--dags", str(dags)]
    command += ["--start", "2026-10-01", "--end", "2026-10-31"]

    result = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    # SkyBiz is loaded from the sandbox's first day through today; SmartAcc for October only.
    today = datetime.now(MYT).date()
    reports = len(plan_windows("skybiz", date(2026, 10, 1), today)) + 1
    for line in (
        "skysmart_backfill: success",
        "skysmart_skybiz_push: success",
        "Identity resolution (customer_matches",
        "SkyBiz push (sent to the sandbox)",
        "Created in SkyBiz, read back from SkyBiz",
        "sandbox stopped",
        "Customers per source",
        "Quarantine by reason",
        "Window coverage",
        "A sample of v_customers",
        "Quality (great-expectations",
        "SkyBiz push, dry run",
        f"Data Docs: {reports} HTML reports",
        f"Report:    {workdir / 'report.html'}",
        f"Warehouse: {workdir / 'warehouse.duckdb'}",
        "Query it:  .venv/bin/skysmart sql --warehouse",
    ):
        assert line in output, line
    assert "refused" not in output and "coverage problem" not in output
    assert output.count("skysmart_skybiz_push: success") == 2  # the dry run, then the real push
    # The sandbox it started is gone: its ports refuse connections.
    urls = next(line for line in output.splitlines() if line.startswith("sandbox up: ")).split()
    for url in (urls[2], urls[4]):
        port = int(url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    from tests.airflow.truth import table_rows

    loaded = table_rows(
        workdir / "warehouse.duckdb", "SELECT source_system, count(*) FROM customers GROUP BY 1"
    )
    assert {source for source, count in loaded if count > 0} == {"skybiz", "smartacc"}
    page = (workdir / "report.html").read_text()
    assert page.count("<svg") >= 3 and "Coverage" in page  # the one report, with its charts


def test_demo_refuses_to_delete_a_directory_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    command = [sys.executable, "-m", "skysmart_sandbox.demo", "--workdir", str(tmp_path)]

    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode != 0 and "not a demo directory" in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
