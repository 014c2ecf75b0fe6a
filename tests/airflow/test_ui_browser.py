"""``make airflow`` seen through a real browser: log in, the DAGs, the connection forms, a triggered backfill.

The launcher (``scripts/airflow_local.py``, what ``make airflow`` runs) starts the sandbox and a real Airflow
(api-server with the UI, dag-processor, scheduler) on 127.0.0.1; headless Chromium from Debian's packages,
driven by Playwright, does what a person would do. Screenshots land in the test's temporary directory. The
last test stops the launcher the way a person does (Ctrl-C) and checks that nothing it started survives.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.fixtures.airflow import free_port

pytestmark = [pytest.mark.xdist_group("airflow"), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("SKYSMART_CHROMIUM", "/usr/bin/chromium"))
DAG_IDS = ("skysmart_backfill", "skysmart_customers", "skysmart_skybiz_push")
MONTH = ("2025-03-01", "2025-03-31")


@dataclass
class Stack:
    """The launcher process and what it printed to its ready file."""

    proc: subprocess.Popen[bytes]
    state: Path
    login: dict[str, str]
    port: int
    screenshots: Path


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium first"
    work = tmp_path_factory.mktemp("make-airflow")
    port, ready = free_port(), work / "ready.json"
    log = (work / "launcher.log").open("wb")
    argv = [sys.executable, str(ROOT / "scripts" / "airflow_local.py"), "--home", str(work / "state")]
    proc = subprocess.Popen(
        [*argv, "--port", str(port), "--size", "600", "--ready-file", str(ready)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300
        while not ready.exists():
            assert proc.poll() is None, (work / "launcher.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "make airflow did not come up in 300 s"
            time.sleep(0.5)
        screenshots = work / "screenshots"
        screenshots.mkdir()
        yield Stack(proc, work / "state", json.loads(ready.read_text()), port, screenshots)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        log.close()


@pytest.fixture(scope="module")
def page(stack: Stack) -> Iterator[Any]:
    """A logged-in browser tab (logging in is itself checked: the DAG list needs a session)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.set_default_timeout(30_000)
        tab.goto(stack.login["url"])
        tab.get_by_label("Username").fill(stack.login["username"])
        tab.get_by_label("Password").fill(stack.login["password"])
        tab.get_by_role("button", name="Sign in").click()
        tab.wait_for_url(f"{stack.login['url']}/")
        yield tab
        browser.close()


def test_the_launcher_prints_a_loopback_url_and_a_generated_login(stack: Stack) -> None:
    assert stack.login["url"] == f"http://127.0.0.1:{stack.port}"
    assert stack.login["username"] == "admin"
    assert len(stack.login["password"]) >= 12


def test_after_login_the_three_dags_are_listed_and_no_examples(stack: Stack, page: Any) -> None:
    page.goto(f"{stack.login['url']}/dags")
    page.get_by_text("3 Dags").wait_for()
    page.screenshot(path=str(stack.screenshots / "dags.png"))
    body = page.inner_text("body")
    assert all(dag_id in body for dag_id in DAG_IDS)
    assert "example_" not in body


@pytest.mark.parametrize(
    ("hook_name", "fields", "secrets"),
    [
        (
            "SkyBiz Cloud ERP",
            {"api_secret", "connect_timeout", "read_timeout", "max_retries", "max_concurrency"},
            {"api_secret", "password"},
        ),
        ("SmartAcc DynaMod Web API", {"api_key", "requests_per_second"}, {"api_key", "password"}),
        ("skysmart warehouse (DuckDB or Postgres)", {"url"}, {"url"}),
    ],
    ids=["skybiz", "smartacc", "warehouse"],
)
def test_each_connection_form_has_its_fields_and_masks_its_secrets(
    stack: Stack, page: Any, hook_name: str, fields: set[str], secrets: set[str]
) -> None:
    page.goto(f"{stack.login['url']}/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("combobox").fill(hook_name.split(" (")[0])
    page.get_by_role("option", name=hook_name).click()
    dialog.get_by_text("Extra Fields", exact=True).click()  # custom fields sit in a collapsed section
    page.screenshot(path=str(stack.screenshots / f"connection-{hook_name.split()[0].lower()}.png"))
    for name in fields:
        assert dialog.locator(f"input[name=element_{name}]").count() == 1, name
    for name in secrets:
        field = (
            dialog.locator(f"#element_{name}") if name in fields else dialog.locator(f"input[name={name}]")
        )
        assert field.get_attribute("type") == "password", name
    page.keyboard.press("Escape")


def test_a_backfill_triggered_with_params_for_one_month_succeeds_in_the_ui(stack: Stack, page: Any) -> None:
    page.goto(f"{stack.login['url']}/dags/skysmart_backfill")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.locator("#element_start").fill(MONTH[0])
    dialog.locator("#element_end").fill(MONTH[1])
    page.screenshot(path=str(stack.screenshots / "trigger.png"))
    # Submitting sends two requests at once: unpause the DAG ("Unpause on trigger" is ticked) and create
    # the run. Leaving the page before both answered would cancel one of them, as closing the tab would.
    with (
        _response(page, "PATCH", "/api/v2/dags/skysmart_backfill") as unpaused,
        _response(page, "POST", "/api/v2/dags/skysmart_backfill/dagRuns") as triggered,
    ):
        dialog.get_by_role("button", name="Trigger").click()
    assert unpaused.value.ok and triggered.value.ok, (unpaused.value.status, triggered.value.status)
    page.goto(f"{stack.login['url']}/dags/skysmart_backfill/runs")
    deadline = time.monotonic() + 300
    while True:
        page.reload()
        state = page.get_by_role("row").filter(has_text="manual__").first
        if state.count() and any(s in state.inner_text() for s in ("Success", "Failed")):
            break
        assert time.monotonic() < deadline, (
            f"the triggered run did not finish in 300 s: {_task_states(stack)}"
        )
        time.sleep(2)
    page.screenshot(path=str(stack.screenshots / "run.png"))
    assert "Success" in state.inner_text()
    with duckdb.connect(str(stack.state / "warehouse.duckdb"), read_only=True) as con:
        windows = con.sql("SELECT source, source_window, status FROM load_audit ORDER BY 1").fetchall()
    key = f"{MONTH[0]}_{MONTH[1]}"
    assert windows == [("skybiz", key, "succeeded"), ("smartacc", key, "succeeded")]


def _response(page: Any, method: str, path: str) -> Any:
    """Playwright's wait for the answer to one request of the page, by method and URL path."""
    return page.expect_response(
        lambda response: response.request.method == method and response.url.split("?")[0].endswith(path)
    )


def _task_states(stack: Stack) -> dict[str, Any]:
    """Where a run stands, from Airflow's metadata: paused or not, the run's state, each task's tries."""
    import sqlite3

    with sqlite3.connect(f"file:{stack.state / 'airflow.db'}?mode=ro", uri=True) as con:
        where = "WHERE dag_id = 'skysmart_backfill'"
        return {
            "dag": con.execute(f"SELECT is_paused FROM dag {where}").fetchall(),
            "runs": con.execute(f"SELECT run_id, state FROM dag_run {where}").fetchall(),
            "tasks": con.execute(
                "SELECT task_id, map_index, state, try_number, start_date, end_date FROM task_instance "
                f"{where} ORDER BY start_date"
            ).fetchall(),
        }


def test_ctrl_c_stops_everything_the_launcher_started(stack: Stack) -> None:
    children = subprocess.run(
        ["pgrep", "-P", str(stack.proc.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert len(children) == 4  # sandbox, api-server, dag-processor, scheduler
    stack.proc.send_signal(signal.SIGINT)
    assert stack.proc.wait(timeout=60) == 0
    assert not _port_open(stack.port)
    # Each child leads a process group of its own (with its workers): none of those groups has a member left.
    assert [pid for pid in children if _group_alive(int(pid))] == []


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
