"""SandboxServer and ``skysmart sandbox serve``: ports, endpoints, settings, lifecycle, the CLI process."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from pipelines.cli import build_parser
from pipelines.config import Settings
from pipelines.errors import ConfigError
from skysmart_sandbox.cli import parse_faults, resolve_options
from skysmart_sandbox.server import ENV_NAMES, SandboxEndpoints, SandboxServer
from tests.fixtures.sandbox import sandbox_data, sandbox_env
from tests.sandbox.skybiz_helpers import ok_data, read_body

ROOT = Path(__file__).resolve().parents[2]
ENDPOINT_KEYS = {
    "skybiz_url",
    "skybiz_api_key",
    "skybiz_api_secret",
    "smartacc_url",
    "smartacc_api_key",
    "smartacc_username",
    "smartacc_password",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_endpoints_shape(sandbox):
    e = sandbox.endpoints
    assert set(json.loads(e.to_json())) == ENDPOINT_KEYS
    assert e.skybiz_url.startswith("http://127.0.0.1:") and e.skybiz_url.endswith(
        "/01/clientportal/apiv2/modules"
    )
    assert e.smartacc_url.startswith("http://127.0.0.1:")
    assert SandboxEndpoints.from_json(e.to_json()) == e
    assert e.skybiz_api_secret not in repr(e) and e.smartacc_password not in repr(e)


def test_env_configures_the_pipeline_settings(sandbox):
    env = sandbox_env(sandbox.endpoints)
    assert set(env) == set(ENV_NAMES.values())
    settings = Settings.from_env(env)
    skybiz, smartacc = settings.require_skybiz(), settings.require_smartacc()
    assert skybiz.url == sandbox.endpoints.skybiz_url
    assert skybiz.api_secret.reveal() == sandbox.endpoints.skybiz_api_secret
    assert smartacc.url == sandbox.endpoints.smartacc_url
    assert smartacc.username == sandbox.endpoints.smartacc_username


def test_both_apis_answer_with_the_published_credentials(sandbox):
    e = sandbox.endpoints
    body = {
        **read_body(sandbox, "2026-04-01", "2026-04-30"),
        "api_key": e.skybiz_api_key,
        "api_secret": e.skybiz_api_secret,
    }
    resp = requests.post(f"{e.skybiz_url}/customer.php", json=body, timeout=30)
    assert ok_data(resp)["total_returned"] > 0
    page = requests.get(
        f"{e.smartacc_url}/Customers/page/1?format=json",
        headers={"Authorization": f"Bearer {e.smartacc_api_key}"},
        timeout=30,
    )
    assert page.status_code == 200 and len(page.json()["Customers"]) == 20
    login = requests.post(
        f"{e.smartacc_url}/auth/credentials?format=json",
        json={"UserName": e.smartacc_username, "Password": e.smartacc_password},
        timeout=30,
    )
    assert login.status_code == 200 and login.json()["SessionId"]


def test_given_ports_and_release_on_stop():
    sky, sma = _free_port(), _free_port()
    server = SandboxServer(data=sandbox_data(200, 3), skybiz_port=sky, smartacc_port=sma)
    with server:
        assert server.running
        assert server.endpoints.skybiz_url.startswith(f"http://127.0.0.1:{sky}/")
        assert server.endpoints.smartacc_url == f"http://127.0.0.1:{sma}"
        with pytest.raises(OSError), socket.socket() as clash:
            clash.bind(("127.0.0.1", sky))
    assert not server.running
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", sky))  # released
    server.stop()  # idempotent


def test_busy_port_fails_cleanly():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            SandboxServer(data=sandbox_data(200, 3), skybiz_port=port).start()


def test_generates_when_no_data_given():
    with SandboxServer(size=50, seed=5) as server:
        assert server.data.skybiz.num_rows == 50
        assert server.generation_seconds > 0
        assert server.skybiz.customer_count == 50 and server.smartacc.customer_count == 50


def test_not_started_has_no_endpoints():
    server = SandboxServer(size=10)
    with pytest.raises(RuntimeError):
        _ = server.endpoints


# -- the CLI --------------------------------------------------------------------------------------------


def _serve_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["sandbox", "serve", *argv])


def test_cli_options_from_arguments_and_environment():
    env = {
        "SKYSMART_SANDBOX_SIZE": "123",
        "SKYSMART_SANDBOX_SEED": "9",
        "SKYSMART_SANDBOX_FAULTS": "500=0.05, drop=0.01",
        "SKYSMART_SANDBOX_RATE_LIMIT_KEY": "0",
        "SKYSMART_SANDBOX_LATENCY_MS": "12.5",
    }
    options = resolve_options(_serve_args("--seed", "4", "--port-skybiz", "5001"), env)
    assert options["size"] == 123 and options["seed"] == 4 and options["skybiz_port"] == 5001
    assert options["faults"] == {"500": 0.05, "drop": 0.01}
    assert options["rate_limit_key"] == 0 and options["rate_limit_ip"] == 120
    assert options["latency_ms"] == 12.5
    defaults = resolve_options(_serve_args(), {})
    assert (defaults["size"], defaults["rate_limit_key"], defaults["skybiz_mode"]) == (10_000, 60, "2")
    assert resolve_options(_serve_args("--fault", "429=0.5"), env)["faults"] == {"429": 0.5}


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        ((), {"SKYSMART_SANDBOX_SIZE": "many"}),
        (("--size", "0"), {}),
        (("--fault", "teapot=0.1"), {}),
        (("--fault", "500=2"), {}),
        (("--fault", "500"), {}),
        (("--rate-limit-ip", "-1"), {}),
    ],
    ids=["size-text", "size-zero", "unknown-fault", "rate-above-one", "no-rate", "negative-limit"],
)
def test_cli_bad_options(argv, env):
    with pytest.raises(ConfigError):
        resolve_options(_serve_args(*argv), env)


def test_parse_faults():
    assert parse_faults(["500=0", "truncate=0.25"]) == {"500": 0.0, "truncate": 0.25}


@pytest.mark.slow
def test_serve_subprocess_write_endpoints_request_and_sigterm(tmp_path):
    endpoints_file = tmp_path / "endpoints.json"
    env = {**os.environ, "SKYSMART_SANDBOX_SIZE": "300", "SKYSMART_SANDBOX_RATE_LIMIT_KEY": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "sandbox", "serve", "--seed", "3",
         "--write-endpoints", str(endpoints_file)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not endpoints_file.exists():
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "sandbox serve did not write its endpoints"
            time.sleep(0.05)
        endpoints = json.loads(endpoints_file.read_text())
        assert set(endpoints) == ENDPOINT_KEYS
        body = {
            "api_key": endpoints["skybiz_api_key"],
            "api_secret": endpoints["skybiz_api_secret"],
            "action": "read",
            "date_from": "2026-04-01",
            "date_to": "2026-04-30",
        }
        resp = requests.post(f"{endpoints['skybiz_url']}/customer.php", json=body, timeout=30)
        assert resp.status_code == 200 and resp.json()["status"] == "response"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "sandbox: ready" in out and "sandbox: stopped" in out
    assert endpoints["skybiz_api_secret"] in out  # the operator is shown the sandbox credentials
    assert "generated in" in out
    assert not endpoints_file.exists()
