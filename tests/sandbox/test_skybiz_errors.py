"""Every documented SkyBiz error string, with its agreed HTTP status (SKYBIZ.md §4, §5.4, §10).

Also the request-level gates around them: integration modes, two-tier rate limits, the audit log, and the
rule that a secret never reaches what the emulator records.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
import requests
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from skysmart_sandbox import skybiz as sb
from skysmart_sandbox.server import _Served
from tests.sandbox.skybiz_helpers import (
    VENDOR_DOC,
    assert_error,
    create_body,
    creds,
    ok_data,
    post,
    url,
)

READ = {"action": "read", "date_from": "2026-04-01", "date_to": "2026-04-30"}


def _docs(n: int) -> list[dict[str, Any]]:
    return [{**VENDOR_DOC, "CusCode": f"BULK{i:04d}"} for i in range(n)]


CREATE_ONE = {"action": "create", "customer_data": {"documents": [VENDOR_DOC]}}


def case(case_id: str, which: str, body: dict[str, Any], status: int, message: str) -> Any:
    """One row of the table: which key pair, the body without credentials, HTTP status, exact message."""
    return pytest.param(which, body, status, message, id=case_id)


ERROR_CASES = [
    case("dates-missing-both", "", {"action": "read"}, 400, sb.MSG_DATES_REQUIRED),
    case("date-from-missing", "", {"action": "read", "date_to": "2026-04-30"}, 400, sb.MSG_DATES_REQUIRED),
    case("date-to-missing", "", {"action": "read", "date_from": "2026-04-01"}, 400, sb.MSG_DATES_REQUIRED),
    case("date-from-empty", "", {**READ, "date_from": ""}, 400, sb.MSG_DATES_REQUIRED),
    case("date-slashes", "", {**READ, "date_from": "2026/04/01"}, 400, sb.MSG_DATE_FORMAT),
    case("date-unpadded", "", {**READ, "date_to": "2026-4-30"}, 400, sb.MSG_DATE_FORMAT),
    case("date-day-first", "", {**READ, "date_from": "01-04-2026"}, 400, sb.MSG_DATE_FORMAT),
    case("date-impossible", "", {**READ, "date_from": "2026-02-30"}, 400, sb.MSG_DATE_FORMAT),
    case("date-with-time", "", {**READ, "date_to": "2026-04-30 00:00:00"}, 400, sb.MSG_DATE_FORMAT),
    case("date-number", "", {**READ, "date_from": 20260401}, 400, sb.MSG_DATE_FORMAT),
    case("range-32-days", "", {**READ, "date_from": "2026-01-01", "date_to": "2026-02-01"}, 400,
         sb.MSG_RANGE_TOO_WIDE),
    case("range-a-year", "", {**READ, "date_from": "2025-01-01", "date_to": "2025-12-31"}, 400,
         sb.MSG_RANGE_TOO_WIDE),
    case("from-after-to", "", {**READ, "date_from": "2026-04-02", "date_to": "2026-04-01"}, 400,
         sb.MSG_FROM_AFTER_TO),
    case("read-denied-createonly", "createonly", READ, 403, sb.MSG_READ_DENIED),
    case("read-denied-noperm", "noperm", READ, 403, sb.MSG_READ_DENIED),
    case("create-denied-readonly", "readonly", CREATE_ONE, 403, sb.MSG_CREATE_DENIED),
    case("create-denied-noperm", "noperm", CREATE_ONE, 403, sb.MSG_CREATE_DENIED),
    case("action-unknown", "", {**READ, "action": "delete"}, 400, sb.MSG_BAD_ACTION),
    case("action-uppercase", "", {**READ, "action": "READ"}, 400, sb.MSG_BAD_ACTION),
    case("action-missing", "", {"date_from": "2026-04-01", "date_to": "2026-04-30"}, 400, sb.MSG_BAD_ACTION),
    case("create-no-customer-data", "", {"action": "create"}, 400, sb.MSG_NO_DOCUMENTS),
    case("create-empty-documents", "", {"action": "create", "customer_data": {"documents": []}}, 400,
         sb.MSG_NO_DOCUMENTS),
    case("create-501-documents", "", {"action": "create", "customer_data": {"documents": _docs(501)}}, 400,
         sb.MSG_TOO_MANY_DOCUMENTS),
]  # fmt: skip


@pytest.mark.parametrize(("which", "body", "status", "message"), ERROR_CASES)
def test_documented_error(sandbox, which, body, status, message):
    resp = post(sandbox, {**creds(sandbox, which), **body})
    assert_error(resp, status, message)


def test_a_refused_create_stores_nothing(sandbox):
    assert_error(post(sandbox, create_body(sandbox, *_docs(501))), 400, sb.MSG_TOO_MANY_DOCUMENTS)
    assert sandbox.skybiz.customer("BULK0000") is None


CREDENTIAL_CASES = [
    ("secret-wrong", lambda c: {**c, "api_secret": "not-the-secret"}),
    ("key-unknown", lambda c: {**c, "api_key": "sbx_nobody"}),
    ("secret-missing", lambda c: {"api_key": c["api_key"]}),
    ("key-missing", lambda c: {"api_secret": c["api_secret"]}),
    ("secret-of-another-key", lambda c: {**c, "api_key": "sbx_nobody"}),
    ("secret-not-a-string", lambda c: {**c, "api_secret": 12345}),
    ("nothing", lambda c: {}),
]


@pytest.mark.parametrize("mangle", [c[1] for c in CREDENTIAL_CASES], ids=[c[0] for c in CREDENTIAL_CASES])
def test_invalid_credentials(sandbox, mangle):
    assert_error(post(sandbox, {**mangle(creds(sandbox)), **READ}), 401, sb.MSG_BAD_CREDENTIALS)


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'"read"', b"\xff\xfe"], ids=str)
def test_invalid_json_payload(sandbox, raw):
    resp = requests.post(url(sandbox), data=raw, headers={"Content-Type": "application/json"}, timeout=30)
    assert_error(resp, 400, sb.MSG_BAD_JSON)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_only_post(sandbox, method):
    resp = requests.request(method, url(sandbox), json={**creds(sandbox), **READ}, timeout=30)
    assert_error(resp, 405, sb.MSG_METHOD)
    assert resp.headers["allow"] == "POST"


def test_exactly_500_documents_are_accepted(sandbox_factory):
    server = sandbox_factory()
    data = ok_data(post(server, create_body(server, *_docs(500))))
    assert data["summary"] == {"total_documents": 500, "inserted": 500, "failed": 0}
    assert server.skybiz.customer("BULK0499") is not None


# -- integration modes ----------------------------------------------------------------------------------


def test_mode_0_rejects_everything(sandbox_factory):
    server = sandbox_factory(skybiz_mode="0")
    assert_error(post(server, {**creds(server), **READ}), 403, sb.MSG_DISABLED)
    assert_error(post(server, {"api_key": "whoever", **READ}), 403, sb.MSG_DISABLED)
    server.skybiz.mode = "2"
    assert ok_data(post(server, {**creds(server), **READ}))["mode"] == "2"


def test_mode_1_requires_https(sandbox_factory):
    server = sandbox_factory(skybiz_mode="1")
    assert_error(post(server, {**creds(server), **READ}), 403, sb.MSG_HTTPS_REQUIRED)
    # Behind a TLS-terminating proxy on loopback the request counts as HTTPS.
    resp = post(server, {**creds(server), **READ}, headers={"X-Forwarded-Proto": "https"})
    assert ok_data(resp)["mode"] == "1"


def test_mode_2_accepts_only_localhost(sandbox_factory):
    server = sandbox_factory()
    resp = post(server, {**creds(server), **READ}, headers={"X-Forwarded-For": "203.0.113.7"})
    assert_error(resp, 403, sb.MSG_LOCALHOST_ONLY)
    assert ok_data(post(server, {**creds(server), **READ}))["mode"] == "2"


def test_mode_is_echoed_as_a_string_on_creates_too(sandbox_factory):
    server = sandbox_factory()
    data = ok_data(post(server, create_body(server, VENDOR_DOC)))
    assert data["mode"] == "2" and data["requested_by"] == server.endpoints.skybiz_api_key


# -- rate limits ----------------------------------------------------------------------------------------


def test_rate_limit_per_key(sandbox_factory):
    server = sandbox_factory(rate_limit_per_key_per_min=3)
    for _ in range(3):
        ok_data(post(server, {**creds(server), **READ}))
    resp = post(server, {**creds(server), **READ})
    assert_error(resp, 429, sb.MSG_RATE_LIMITED)
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    # Another key has its own budget.
    ok_data(post(server, {**creds(server, "readonly"), **READ}))


def test_rate_limit_per_ip(sandbox_factory):
    server = sandbox_factory(rate_limit_per_ip_per_min=2)
    first_ip = {"X-Forwarded-For": "127.0.0.2"}
    for _ in range(2):
        ok_data(post(server, {**creds(server), **READ}, headers=first_ip))
    resp = post(server, {**creds(server, "readonly"), **READ}, headers=first_ip)
    assert_error(resp, 429, sb.MSG_RATE_LIMITED)
    assert int(resp.headers["Retry-After"]) >= 1
    ok_data(post(server, {**creds(server), **READ}, headers={"X-Forwarded-For": "127.0.0.3"}))


def test_rate_limits_can_be_lifted_while_serving(sandbox_factory):
    server = sandbox_factory(rate_limit_per_key_per_min=1)
    ok_data(post(server, {**creds(server), **READ}))
    assert post(server, {**creds(server), **READ}).status_code == 429
    server.skybiz.switches.rate_limit_per_key_per_min = None
    ok_data(post(server, {**creds(server), **READ}))


# -- permissions switched at run time -------------------------------------------------------------------


def test_permissions_can_be_revoked_and_granted(sandbox_factory):
    server = sandbox_factory()
    key = server.endpoints.skybiz_api_key
    server.skybiz.set_permissions(key, read=False)
    assert_error(post(server, {**creds(server), **READ}), 403, sb.MSG_READ_DENIED)
    server.skybiz.set_permissions(key, read=True, create=False)
    ok_data(post(server, {**creds(server), **READ}))
    assert_error(post(server, create_body(server, VENDOR_DOC)), 403, sb.MSG_CREATE_DENIED)
    server.skybiz.add_key("sbx_new", "a-new-secret-value", read=True, create=True)
    ok_data(post(server, {"api_key": "sbx_new", "api_secret": "a-new-secret-value", **READ}))
    server.skybiz.remove_key("sbx_new")
    assert_error(post(server, {"api_key": "sbx_new", "api_secret": "a-new-secret-value", **READ}), 401,
                 sb.MSG_BAD_CREDENTIALS)  # fmt: skip


# -- audit and secrets ----------------------------------------------------------------------------------


def test_audit_entry_per_authenticated_request(sandbox_factory):
    server = sandbox_factory()
    state = server.skybiz
    body = post(server, {**creds(server), **READ}).json()
    entry = state.audit[-1]
    assert entry.request_id == body["request_id"]
    assert (entry.api_key, entry.module, entry.action, entry.outcome, entry.status) == (
        server.endpoints.skybiz_api_key, "customer", "read", "ok", 200,
    )  # fmt: skip
    assert entry.client_ip == "127.0.0.1" and entry.time.tzinfo is not None
    assert body["status"] == "response"
    count = len(state.audit)
    post(server, {**creds(server), "api_secret": "wrong", **READ})
    assert len(state.audit) == count  # not authenticated: not audited
    post(server, {**creds(server, "createonly"), **READ})
    assert state.audit[-1].outcome == sb.MSG_READ_DENIED and state.audit[-1].status == 403


def test_secrets_never_recorded(sandbox_factory):
    server = sandbox_factory()
    state = server.skybiz
    secret = server.endpoints.skybiz_api_secret
    post(server, {**creds(server), **READ})
    post(server, {**creds(server), **READ, "filters": {"CusName": secret}})
    post(server, create_body(server, {**VENDOR_DOC, "CusName": f"x {secret} y"}))
    post(server, {**creds(server), "api_secret": secret + "x", **READ})
    requests.post(url(server), data={**creds(server), **READ}, timeout=30)
    requests.post(url(server), data=b'{"api_secret": "' + secret.encode() + b'", oops', timeout=30)
    assert len(state.received) == 6
    recorded = repr(list(state.received)) + repr(list(state.audit))
    assert secret not in recorded
    assert all(r.body.get("api_secret") in (None, "***") for r in state.received)
    # The key is an identifier SkyBiz echoes back (requested_by); it is masked only where this process
    # already registered it as a secret (a client built from settings does).
    assert state.received[0].body["api_key"] in (server.endpoints.skybiz_api_key, "***")
    # Only salted hashes are kept for verification; the state holds no secret in clear.
    kept = {k: v for k, v in vars(state).items() if k not in ("_table", "_read", "_overlay")}  # not data
    assert secret not in repr(kept)


def test_provisioning_callback_delivers_a_signed_key_pair_once(sandbox_factory):
    delivered = []

    async def receive(request):
        delivered.append((dict(request.headers), await request.body()))
        return Response("ok")

    receiver = _Served("callback", Starlette(routes=[Route("/hook", receive, methods=["POST"])]), 0)
    receiver.start()
    try:
        receiver.wait_started(deadline=time.monotonic() + 30)
        server = sandbox_factory()
        api_key = server.skybiz.provision(f"http://127.0.0.1:{receiver.port}/hook", read=True, create=False)
    finally:
        receiver.stop()
    assert len(delivered) == 1
    headers, raw = delivered[0]
    pair = json.loads(raw)
    assert pair["api_key"] == api_key and len(pair["api_secret"]) >= 32
    expected = hmac.new(
        pair["api_secret"].encode(), headers["x-timestamp"].encode() + b"." + raw, hashlib.sha256
    )
    assert headers["x-signature"] == expected.hexdigest()
    ok_data(post(server, {**pair, **READ}))
    assert_error(post(server, {**pair, **CREATE_ONE}), 403, sb.MSG_CREATE_DENIED)
    assert pair["api_secret"] not in repr(list(server.skybiz.received))
