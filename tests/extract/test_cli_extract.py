"""``skysmart extract`` as an operator runs it: a subprocess configured by ``SKYSMART_*`` variables.

Every run is started at once by a module fixture (each pays the interpreter start-up, so they overlap), and
each test then checks one run's exit code, output and lake.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pipelines.cli import main
from pipelines.lake import CUSTOMERS, RAW, Lake
from pipelines.windows import Window, plan_windows
from skysmart_sandbox.server import SandboxServer
from skysmart_sandbox.skybiz import SkyBizCredentials
from skysmart_sandbox.smartacc import SmartAccCredentials
from skysmart_sandbox.switches import Switches
from tests.fixtures.sandbox import sandbox_data

# One worker runs the whole module, so the subprocesses are started once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cli_extract")]

SKYSMART = str(Path(sys.executable).with_name("skysmart"))
MODULE = [sys.executable, "-m", "pipelines.cli"]


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    lake: Lake
    env: dict[str, str]


RunCase = Callable[[str], Run]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Each failure class is run once through a real entry point in a subprocess; variants of a class run
# in-process through the same dispatcher (``pipelines.cli.main``), which keeps the module well under a minute.
# id -> (command or None for in-process, arguments after ``extract``, environment changes)
JAN = ["--window", "2024-01-01_2024-01-31"]
CASES: dict[str, tuple[list[str] | None, list[str], dict[str, str]]] = {
    "ok-skybiz-range": ([SKYSMART], ["skybiz", "--from", "2024-01-15", "--to", "2024-03-10"], {}),
    "ok-smartacc-window": (None, ["smartacc", "--window", "2024-03-01_2024-03-31"], {}),
    "ok-source-option": (None, ["--source", "smartacc", "--window", "2024-03-01_2024-03-31", "-v"], {}),
    "window-needs-a-source": (None, ["--window", "2024-03-01_2024-03-31"], {}),
    "bad-date": ([SKYSMART], ["skybiz", "--from", "2024-02-30", "--to", "2024-03-10"], {}),
    "missing-date": (None, ["smartacc", "--from", "2024-02-01"], {}),
    "reversed-range": (None, ["skybiz", "--from", "2024-03-01", "--to", "2024-01-01"], {}),
    "window-too-wide": (None, ["skybiz", "--window", "2024-01-01_2024-02-15"], {}),
    "not-configured": (None, ["skybiz", *JAN], {"SKYBIZ_URL": ""}),
    "skybiz-bad-secret": (MODULE, ["skybiz", *JAN], {"SKYBIZ_API_SECRET": "x" * 48}),
    "smartacc-unknown-key": (None, ["smartacc", *JAN], {"SMARTACC_API_KEY": "y" * 32}),
    "skybiz-no-read-permission": (None, ["skybiz", *JAN], {"PERMISSION": "skybiz"}),
    "smartacc-no-permission": (MODULE, ["smartacc", *JAN], {"PERMISSION": "smartacc"}),
    "retries-exhausted": ([SKYSMART], ["smartacc", *JAN], {"FAULTY": "1"}),
    "vendor-unreachable": (None, ["skybiz", *JAN], {"UNREACHABLE": "1"}),
    "host-not-found": (
        None,
        ["skybiz", *JAN],
        {"SKYBIZ_URL": "http://erp.invalid/01/clientportal/apiv2/modules"},
    ),
}
_SWITCHES = ("PERMISSION", "FAULTY", "UNREACHABLE")


def _env(case: str, sandbox: SandboxServer, faulty: SandboxServer, lake: Path) -> dict[str, str]:
    """The ``SKYSMART_*`` variables of a case."""
    changes = CASES[case][2]
    sky, sma = SkyBizCredentials(), SmartAccCredentials()
    env = {**(faulty if "FAULTY" in changes else sandbox).endpoints.as_env()}
    env.update(SKYSMART_HTTP_REQUESTS_PER_SECOND="0", SKYSMART_HTTP_MAX_RETRIES="1", SKYSMART_LAKE=str(lake))
    if changes.get("PERMISSION") == "skybiz":  # a key that may create customers but not read them
        env["SKYSMART_SKYBIZ_API_KEY"] = sky.createonly_api_key
        env["SKYSMART_SKYBIZ_API_SECRET"] = sky.createonly_api_secret
    if changes.get("PERMISSION") == "smartacc":
        env.update(SKYSMART_SMARTACC_API_KEY=sma.no_permission_api_key)
    if "UNREACHABLE" in changes:
        env.update(SKYSMART_SKYBIZ_URL=f"http://127.0.0.1:{_closed_port()}/01/clientportal/apiv2/modules")
    env.update({f"SKYSMART_{k}": v for k, v in changes.items() if k not in _SWITCHES})
    return env


@pytest.fixture(scope="module")
def faulty() -> Iterator[SandboxServer]:
    """A sandbox whose every answer is a 500."""
    server = SandboxServer(
        data=sandbox_data(),
        seed=7,
        skybiz_switches=Switches(fault_rates={"500": 1.0}),
        smartacc_switches=Switches(fault_rates={"500": 1.0}),
    )
    with server:
        yield server


@pytest.fixture(scope="module")
def subprocess_runs(
    sandbox: SandboxServer, faulty: SandboxServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Run]]:
    """Every subprocess case, started together so their interpreter start-ups overlap."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SKYSMART_")}
    started = {}
    try:
        for case, (command, args, _) in CASES.items():
            if command is None:
                continue
            lake = tmp_path_factory.mktemp(case) / "lake"
            env = {**base, **_env(case, sandbox, faulty, lake)}
            argv = [*command, "extract", *args]
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            started[case] = (proc, lake, env)
        out = {}
        for case, (proc, lake, env) in started.items():
            stdout, stderr = proc.communicate(timeout=300)
            out[case] = Run(proc.returncode, stdout, stderr, Lake(str(lake)), env)
        yield out
    finally:
        for proc, _, _ in started.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def run_case(
    request: pytest.FixtureRequest,
    sandbox: SandboxServer,
    faulty: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> RunCase:
    """``run_case(case)``: the subprocess result, or the same command run in-process now."""

    def run(case: str) -> Run:
        command, args, _ = CASES[case]
        if command is not None:
            runs: dict[str, Run] = request.getfixturevalue("subprocess_runs")
            return runs[case]
        lake = tmp_path / "lake"
        env = _env(case, sandbox, faulty, lake)
        for name in [k for k in os.environ if k.startswith("SKYSMART_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code = main(["extract", *args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err, Lake(str(lake)), env)

    return run


def test_extracts_a_range_and_prints_a_summary(run_case: RunCase) -> None:
    run = run_case("ok-skybiz-range")
    assert run.code == 0, run.stderr
    planned = plan_windows("skybiz", date(2024, 1, 15), date(2024, 3, 10))
    assert [w.key for w in planned] == [
        "2024-01-15_2024-01-31",
        "2024-02-01_2024-02-29",
        "2024-03-01_2024-03-10",
    ]
    assert run.lake.windows(RAW, "skybiz") == planned
    rows = sum(run.lake.require_manifest(RAW, "skybiz", CUSTOMERS, w).rows for w in planned)
    for window in planned:
        assert window.key in run.stdout
    assert f"extracted 3 window(s), {rows:,} rows into {run.lake.url}" in run.stdout
    assert "total" in run.stdout and run.stderr == ""


def test_extracts_one_smartacc_window_with_its_terms(run_case: RunCase) -> None:
    run = run_case("ok-smartacc-window")
    assert run.code == 0, run.stderr
    window = Window.parse("smartacc", "2024-03-01_2024-03-31")
    assert run.lake.windows(RAW, "smartacc") == [window]
    assert run.lake.windows(RAW, "smartacc", "terms") == [window]
    rows = run.lake.require_manifest(RAW, "smartacc", CUSTOMERS, window).rows
    assert rows > 0 and f"extracted 1 window(s), {rows:,} rows" in run.stdout


def test_source_is_an_option_like_every_command_and_v_is_accepted(run_case: RunCase) -> None:
    by_option, by_position = run_case("ok-source-option"), run_case("ok-smartacc-window")
    assert by_option.code == 0, by_option.stderr
    window = Window.parse("smartacc", "2024-03-01_2024-03-31")
    assert by_option.lake.windows(RAW, "smartacc") == by_position.lake.windows(RAW, "smartacc") == [window]
    assert by_option.lake.windows(RAW, "skybiz") == []
    rows = by_option.lake.require_manifest(RAW, "smartacc", CUSTOMERS, window).rows
    assert rows == by_position.lake.require_manifest(RAW, "smartacc", CUSTOMERS, window).rows


FAILURES = [
    pytest.param("bad-date", 2, "--from '2024-02-30' is not a date in YYYY-MM-DD form", id="bad-date"),
    pytest.param("missing-date", 2, "--to is required (YYYY-MM-DD), or give --window", id="missing-date"),
    pytest.param("reversed-range", 2, "range starts 2024-03-01 after it ends 2024-01-01", id="reversed"),
    pytest.param("window-too-wide", 2, "window spans 46 days; skybiz accepts at most 31", id="too-wide"),
    pytest.param("not-configured", 2, "SkyBiz is not configured [field=SKYSMART_SKYBIZ_URL]", id="no-config"),
    pytest.param("skybiz-bad-secret", 3, "Invalid API credentials", id="auth-skybiz"),
    pytest.param("smartacc-unknown-key", 3, "Not Authenticated", id="auth-smartacc"),
    pytest.param("skybiz-no-read-permission", 3, "Customer read permission denied", id="permission-skybiz"),
    pytest.param("smartacc-no-permission", 3, "Invalid Permission", id="permission-smartacc"),
    pytest.param("retries-exhausted", 4, "gave up after 2 attempt(s)", id="retries-exhausted"),
    pytest.param("vendor-unreachable", 4, "gave up after 2 attempt(s)", id="vendor-unreachable"),
    pytest.param("window-needs-a-source", 2, "--window is one source's window", id="window-one-source"),
    pytest.param("host-not-found", 2, "host erp.invalid:80 not found; check the URL", id="host-not-found"),
]


@pytest.mark.parametrize(("case", "code", "reason"), FAILURES)
def test_failures_exit_with_their_code_and_a_one_line_reason(
    run_case: RunCase, case: str, code: int, reason: str
) -> None:
    run = run_case(case)
    assert run.code == code, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skysmart extract: "), run.stderr
    assert reason in lines[0]
    assert "Traceback" not in run.stderr + run.stdout
    for name, value in run.env.items():
        if name.endswith(("_API_KEY", "_API_SECRET", "_PASSWORD")) and len(value) >= 8:
            assert value not in run.stderr + run.stdout
    assert run.lake.windows(RAW, "skybiz") == run.lake.windows(RAW, "smartacc") == []


def test_a_connection_failure_names_the_host_and_port_and_a_bad_host_name_is_not_retried(
    run_case: RunCase,
) -> None:
    unreachable, unknown = run_case("vendor-unreachable"), run_case("host-not-found")
    port = urlsplit(unreachable.env["SKYSMART_SKYBIZ_URL"]).port
    assert f"connection to 127.0.0.1:{port} failed (ConnectionRefusedError)" in unreachable.stderr
    assert "gave up" not in unknown.stderr and "attempt" not in unknown.stderr  # failed at once
