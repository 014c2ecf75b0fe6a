"""``make airflow``: the sandbox and a real Airflow 3 on 127.0.0.1, with skysmart's DAGs and connections.

Starts the vendor emulators (``skysmart sandbox serve``), migrates a private Airflow home, imports the
``skybiz_default``, ``smartacc_default`` and ``skysmart_warehouse_default`` connections pointing at them,
then runs the api-server (UI and execution API), the dag-processor and the scheduler as child processes.
It prints the URL and the login, and on Ctrl-C (or SIGTERM) stops everything it started.

Metadata lives in SQLite inside the home: this is one person's local Airflow, and SQLite needs no server.
For several machines use Postgres (``--metadata-url``), as Airflow's own docs advise for anything shared.

Everything (metadata, logs, lake, DuckDB warehouse, the generated password) stays under ``--home``
(default ``.airflow/``, ignored by git), so a second start keeps the runs and the login of the first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
USERNAME = "admin"
#: Seconds an Airflow process waits for another one's write to the SQLite metadata file before failing.
SQLITE_BUSY_SECONDS = 30
SERVICES = (
    ("api-server", ("api-server",)),
    ("dag-processor", ("dag-processor",)),
    ("scheduler", ("scheduler", "--skip-serve-logs")),
)
"""Airflow's processes, in start order. ``--skip-serve-logs``: the log server would listen on all interfaces;
the api-server reads task logs from the shared local folder instead."""


class LaunchError(RuntimeError):
    """A part of the local stack did not come up; the message says which and where its log is."""


class AirflowApi:
    """Airflow's REST API as a user: a token from ``/auth/token``, then JSON requests with it."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.url = url
        self._headers: dict[str, str] = {}
        token = self.call("POST", "/auth/token", {"username": username, "password": password})
        self._headers = {"Authorization": f"Bearer {token['access_token']}"}

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """One request; the answer's JSON."""
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Content-Type": "application/json", **self._headers},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())


@dataclass
class LocalAirflow:
    """The processes of one local stack, stopped together."""

    home: Path
    port: int
    sandbox_size: int
    metadata_url: str | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Where the UI and the APIs answer (loopback only)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def logs(self) -> Path:
        """One log file per process started; Airflow's task logs below ``tasks/``."""
        return self.home / "logs"

    def start(self) -> dict[str, str]:
        """Bring everything up; returns what a person needs to log in."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        endpoints = self._start_sandbox()
        env = self._environment()
        self._airflow(env, "db", "migrate")
        self._import_connections(env, endpoints)
        for name, args in SERVICES:
            self._spawn(name, [sys.executable, "-m", "airflow", *args], env)
            if name == "api-server":
                self._wait_http(f"{self.url}/api/v2/monitor/health", name, timeout=180)
        self._wait_for_dags(timeout=300)
        return {"url": self.url, "username": USERNAME, "password": self._password()}

    def _wait_for_dags(self, *, timeout: float) -> None:
        """Ready means every DAG file is parsed: the UI then shows the DAGs, or the import errors."""
        expected = len(list((ROOT / "dags").glob("*.py")))
        api = AirflowApi(self.url, USERNAME, self._password())
        deadline = time.monotonic() + timeout
        while True:
            self._require_running("dag-processor")
            dags = api.call("GET", "/api/v2/dags?limit=1000")["total_entries"]
            errors = api.call("GET", "/api/v2/importErrors")
            if dags + errors["total_entries"] >= expected:
                for error in errors["import_errors"]:
                    print(
                        f"DAG import error in {error['filename']}:\n{error['stack_trace']}", file=sys.stderr
                    )
                return
            if time.monotonic() > deadline:
                raise LaunchError(
                    f"{dags} of {expected} DAG files parsed in {timeout:.0f} s; see {self.logs}"
                )
            time.sleep(1)

    def stop(self) -> None:
        """SIGTERM every process group we started, newest first; SIGKILL any group still alive after 20 s.

        A group's leader can exit before its members (the api-server's workers, the scheduler's task
        processes), so a group counts as stopped when it is empty, not when its leader has exited.
        """
        for proc in reversed(self.processes.values()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in reversed(self.processes.values()):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            if not _group_empty(proc.pid, deadline):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
                _group_empty(proc.pid, time.monotonic() + 10)
        self.processes.clear()

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str]) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                argv, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _start_sandbox(self) -> dict[str, str]:
        endpoints_file = self.home / "endpoints.json"
        endpoints_file.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "pipelines.cli", "sandbox", "serve", "--size", str(self.sandbox_size)]
        self._spawn("sandbox", [*argv, "--write-endpoints", str(endpoints_file)], os.environ)
        deadline = time.monotonic() + 120
        while not endpoints_file.exists():  # written atomically once both emulators accept connections
            self._require_running("sandbox")
            if time.monotonic() > deadline:
                raise LaunchError(f"the sandbox did not start in 120 s; see {self.logs / 'sandbox.log'}")
            time.sleep(0.2)
        endpoints: dict[str, str] = json.loads(endpoints_file.read_text())
        return endpoints

    def _environment(self) -> dict[str, str]:
        plugins = self.home / "plugins"  # empty on purpose: the provider registers through its entry point
        plugins.mkdir(exist_ok=True)
        return {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self._passwords_file()),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API_AUTH__JWT_SECRET": self._kept_secret("jwt_secret", 64),
            "AIRFLOW__API_AUTH__JWT_ISSUER": "skysmart-local",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_url or self._sqlite_url(),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs / "tasks"),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "PYTHONWARNINGS": "ignore",
            "SKYSMART_LAKE": str(self.home / "lake"),
        }

    def _sqlite_url(self) -> str:
        """The metadata file, each connection waiting up to SQLITE_BUSY_SECONDS for another's write.

        SQLite lets one writer in at a time, and sqlite3 gives up after 5 s: with the scheduler and the
        dag-processor writing on a busy machine, the UI's Trigger (which unpauses the DAG and creates the run
        at once) got a 500 for "database is locked". The timeout reaches the api-server's async engine too.
        """
        return f"sqlite:///{self.home}/airflow.db?timeout={SQLITE_BUSY_SECONDS}"

    def _passwords_file(self) -> Path:
        """The simple auth manager's password file, made once with a random password and then kept."""
        path = self.home / "passwords.json"
        if not path.exists():
            path.write_text(json.dumps({USERNAME: secrets.token_urlsafe(12)}))
            path.chmod(0o600)
        return path

    def _password(self) -> str:
        password: str = json.loads(self._passwords_file().read_text())[USERNAME]
        return password

    def _kept_secret(self, name: str, size: int) -> str:
        path = self.home / name
        if not path.exists():
            path.write_text(secrets.token_urlsafe(size))
            path.chmod(0o600)
        return path.read_text().strip()

    def _import_connections(self, env: Mapping[str, str], endpoints: Mapping[str, str]) -> None:
        connections = {
            "skybiz_default": {
                "conn_type": "skybiz",
                "host": endpoints["skybiz_url"],
                "login": endpoints["skybiz_api_key"],
                "password": endpoints["skybiz_api_secret"],
                "description": "SkyBiz emulator of the local sandbox",
            },
            "smartacc_default": {
                "conn_type": "smartacc",
                "host": endpoints["smartacc_url"],
                "extra": json.dumps({"api_key": endpoints["smartacc_api_key"]}),
                "description": "SmartAcc emulator of the local sandbox",
            },
            "skysmart_warehouse_default": {
                "conn_type": "skysmart_warehouse",
                "extra": json.dumps({"url": str(self.home / "warehouse.duckdb")}),
                "description": "Embedded DuckDB warehouse of the local stack",
            },
        }
        path = self.home / "connections.json"
        path.write_text(json.dumps(connections))
        path.chmod(0o600)
        try:
            self._airflow(env, "connections", "import", "--overwrite", str(path))
        finally:
            path.unlink()  # it holds the sandbox's secrets; Airflow's database keeps them from here

    def _airflow(self, env: Mapping[str, str], *args: str) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            tail = (result.stdout + result.stderr)[-2000:]
            raise LaunchError(f"`airflow {' '.join(args[:2])}` failed (exit {result.returncode}):\n{tail}")

    def _wait_http(self, url: str, name: str, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._require_running(name)
            with (
                contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
                urllib.request.urlopen(url, timeout=5) as response,
            ):
                if response.status == 200:
                    return
            if time.monotonic() > deadline:
                raise LaunchError(
                    f"{name} did not answer {url} in {timeout:.0f} s; see {self.logs}/{name}.log"
                )
            time.sleep(0.5)

    def _require_running(self, name: str) -> None:
        proc = self.processes[name]
        if proc.poll() is not None:
            raise LaunchError(f"{name} exited with {proc.returncode}; see {self.logs / f'{name}.log'}")

    def watch(self) -> None:
        """Block until a signal arrives or a process dies (then say which, and where its log is)."""
        while True:
            for name in self.processes:
                self._require_running(name)
            time.sleep(1)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _group_empty(pgid: int, deadline: float) -> bool:
    """Wait until no process is left in the group (its leader reaped) or the deadline; whether it is empty."""
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    """Run the stack until interrupted: exit 0 after a clean stop, 2 on bad options, 1 if a part died."""
    parser = argparse.ArgumentParser(prog="make airflow", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--home", type=Path, default=ROOT / ".airflow", help="state folder (default .airflow/)"
    )
    parser.add_argument("--port", type=int, default=8080, help="UI and API port on 127.0.0.1 (default 8080)")
    parser.add_argument("--size", type=int, default=2000, help="customers per vendor in the sandbox")
    parser.add_argument(
        "--metadata-url", help="SQLAlchemy URL of Airflow's database (default: SQLite in home)"
    )
    parser.add_argument("--ready-file", type=Path, help="write the URL and login here as JSON once up")
    args = parser.parse_args(argv)
    if not _port_free(args.port):
        print(f"port {args.port} on 127.0.0.1 is taken; choose another with --port", file=sys.stderr)
        return 2
    stack = LocalAirflow(args.home.resolve(), args.port, args.size, args.metadata_url)

    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        login = stack.start()
        print(
            f"Airflow UI:  {login['url']}\nlogin:       {login['username']} / {login['password']}", flush=True
        )
        print(f"logs:        {stack.logs}\nstop:        Ctrl-C", flush=True)
        if args.ready_file:
            args.ready_file.write_text(json.dumps(login))
        stack.watch()
    except KeyboardInterrupt:
        print("stopping…", flush=True)
        return 0
    except LaunchError as exc:
        print(f"make airflow: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
    return 0  # pragma: no cover - watch() only returns by raising


if __name__ == "__main__":
    sys.exit(main())
