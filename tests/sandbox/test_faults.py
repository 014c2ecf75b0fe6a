"""Injected faults, each as a client observes it, on both emulators (faults middleware + switches)."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from skysmart_sandbox import skybiz as sb
from skysmart_sandbox.server import SandboxServer
from tests.sandbox.skybiz_helpers import VENDOR_DOC, assert_error, create_body, ok_data, post, read_body

READ_WINDOW = ("2026-04-01", "2026-04-30")


def _read(server: SandboxServer, **kwargs: Any) -> requests.Response:
    return post(server, read_body(server, *READ_WINDOW), **kwargs)


def test_500_in_the_skybiz_envelope(sandbox_factory):
    server = sandbox_factory()
    server.skybiz.switches.inject("500")
    assert_error(_read(server), 500, sb.MSG_INTERNAL)
    ok_data(_read(server))  # one fault per injection


def test_429_with_retry_after(sandbox_factory):
    server = sandbox_factory(retry_after_seconds=7)
    server.skybiz.switches.inject("429")
    resp = _read(server)
    assert_error(resp, 429, sb.MSG_RATE_LIMITED)
    assert resp.headers["Retry-After"] == "7"


def test_non_json_gateway_page(sandbox_factory):
    server = sandbox_factory()
    server.skybiz.switches.inject("non_json")
    resp = _read(server)
    assert resp.status_code == 502
    assert resp.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in resp.text
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.text)


def test_drop_closes_without_an_answer(sandbox_factory):
    server = sandbox_factory()
    server.skybiz.switches.inject("drop")
    with pytest.raises(requests.ConnectionError):
        _read(server)
    assert len(server.skybiz.audit) == 0  # the request was never processed
    ok_data(_read(server))


def test_truncate_sends_full_length_header_and_half_the_body(sandbox_factory):
    server = sandbox_factory()
    server.skybiz.switches.inject("truncate")
    parts = urlsplit(server.endpoints.skybiz_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        body = json.dumps(read_body(server, *READ_WINDOW))
        conn.request("POST", f"{parts.path}/customer.php", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200
        content_length = resp.getheader("Content-Length")
        assert content_length is not None
        length = int(content_length)
        with pytest.raises(http.client.IncompleteRead) as cut:
            resp.read()
        assert 0 < len(cut.value.partial) < length
    finally:
        conn.close()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        server.skybiz.switches.inject("truncate")
        _read(server)


def test_slow_answers_after_the_client_gave_up(sandbox_factory):
    server = sandbox_factory(slow_seconds=1.0)
    server.skybiz.switches.inject("slow")
    with pytest.raises(requests.exceptions.ReadTimeout):
        _read(server, timeout=0.2)
    ok_data(_read(server))


def test_latency_applies_to_every_request(sandbox_factory):
    server = sandbox_factory(latency_ms=800)
    with pytest.raises(requests.exceptions.ReadTimeout):
        _read(server, timeout=0.1)
    server.skybiz.switches.latency_ms = 0
    ok_data(_read(server))


def test_drop_after_commit_loses_the_answer_not_the_create(sandbox_factory):
    server = sandbox_factory()
    server.skybiz.switches.inject("drop_after_commit")
    with pytest.raises(requests.ConnectionError):
        post(server, create_body(server, VENDOR_DOC))
    assert server.skybiz.customer("CUST001") is not None
    retry = ok_data(post(server, create_body(server, VENDOR_DOC)))
    assert retry["fail_details"] == {
        "duplicate_customers": [{"cuscode": "CUST001", "error": sb.MSG_CODE_EXISTS}]
    }


def test_random_fault_rates(sandbox_factory):
    server = sandbox_factory(fault_rates={"500": 1.0})
    assert [_read(server).status_code for _ in range(3)] == [500, 500, 500]
    server.skybiz.switches.reset()
    ok_data(_read(server))


def test_smartacc_faults_in_servicestack_shape(sandbox_factory):
    server = sandbox_factory(retry_after_seconds=3)
    headers = {"Authorization": f"Bearer {server.endpoints.smartacc_api_key}", "Accept": "application/json"}
    page = f"{server.endpoints.smartacc_url}/Customers/page/1?format=json"
    server.smartacc.switches.inject("429", "500", "non_json", "drop")
    resp = requests.get(page, headers=headers, timeout=30)
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "3"
    assert resp.json()["ResponseStatus"]["ErrorCode"] == "TooManyRequests"
    assert resp.json()["ResponseStatus"]["Message"] == "Too Many Requests"
    resp = requests.get(page, headers=headers, timeout=30)
    assert resp.status_code == 500 and resp.json()["ResponseStatus"]["ErrorCode"] == "InternalServerError"
    resp = requests.get(page, headers=headers, timeout=30)
    assert resp.status_code == 502 and resp.headers["content-type"].startswith("text/html")
    with pytest.raises(requests.ConnectionError):
        requests.get(page, headers=headers, timeout=30)
    assert len(requests.get(page, headers=headers, timeout=30).json()["Customers"]) == 20


def test_faults_of_one_emulator_leave_the_other_alone(sandbox_factory):
    server = sandbox_factory()
    server.skybiz.switches.fault_rates = {"500": 1.0}
    headers = {"Authorization": f"Bearer {server.endpoints.smartacc_api_key}"}
    resp = requests.get(
        f"{server.endpoints.smartacc_url}/Customers/page/1?format=json", headers=headers, timeout=30
    )
    assert resp.status_code == 200
    assert _read(server).status_code == 500
