"""Secrets never leak: canary key, secret and password values through every path that could show them.

Each canary is a value nobody else uses. The clients are driven through successes, retried faults and
refusals with DEBUG logging on for every logger (urllib3's included); then no log record, exception text,
repr or request the emulator recorded may contain a canary.
"""

from __future__ import annotations

import dataclasses
import logging
import traceback
from datetime import date

import pytest

from pipelines.config import HttpSettings, Secret
from pipelines.errors import AuthenticationError, SkysmartError
from pipelines.sources.skybiz.client import SkyBizClient
from pipelines.sources.skybiz.settings import SkyBizSettings
from pipelines.sources.smartacc.client import SmartAccClient
from pipelines.sources.smartacc.settings import SmartAccSettings
from pipelines.windows import Window
from tests.fixtures.sandbox import SandboxFactory

CANARY_KEY = "canary-key-4c1d9e7a"
CANARY_SECRET = "canary-secret-b52f03e9"
CANARY_PASSWORD = "canary-password-7e6a1c44"
CANARY_SMARTACC_KEY = "canary-smartacc-key-91d0f2b3c4"
CANARIES = (CANARY_KEY, CANARY_SECRET, CANARY_PASSWORD, CANARY_SMARTACC_KEY)

HTTP = HttpSettings(max_retries=3, backoff_initial=0.01, backoff_max=0.02, requests_per_second=0)
MAY = Window("skybiz", date(2024, 5, 1), date(2024, 5, 31))


def skybiz_settings(url: str, key: str, secret: str) -> SkyBizSettings:
    return SkyBizSettings(url=url, api_key=Secret(key), api_secret=Secret(secret), http=HTTP)


def login_settings(url: str, user: str, password: str) -> SmartAccSettings:
    return SmartAccSettings(url=url, username=user, password=Secret(password), http=HTTP)


def texts_of(exc: BaseException) -> list[str]:
    """Everything an exception can show: str, repr, its context attributes, the whole formatted chain."""
    out = ["".join(traceback.format_exception(exc))]
    current: BaseException | None = exc
    while current is not None:
        out += [str(current), repr(current)]
        if isinstance(current, SkysmartError):
            out += [repr(current.context), current.message]
        current = current.__cause__ or current.__context__
    return out


def assert_clean(texts: list[str], secrets: tuple[str, ...]) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"secret leaked into: {text[:200]!r}"


def test_canaries_never_leak(sandbox_factory: SandboxFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = sandbox_factory(retry_after_seconds=0)
    ep = server.endpoints
    # The canary SkyBiz key pair is real on this server, so reads and creates succeed with it.
    server.skybiz.add_key(CANARY_KEY, CANARY_SECRET, read=True, create=True)
    errors: list[BaseException] = []

    skybiz = SkyBizClient(skybiz_settings(ep.skybiz_url, CANARY_KEY, CANARY_SECRET))
    server.skybiz.switches.inject("500", "drop", "truncate")
    assert skybiz.read_window(MAY).rows  # survived three faults, with retry warnings logged
    server.skybiz.switches.inject("non_json", "non_json", "non_json", "non_json")
    with pytest.raises(SkysmartError) as exhausted:
        skybiz.read_window(MAY)
    errors.append(exhausted.value)
    server.skybiz.switches.inject("drop")
    with pytest.raises(SkysmartError) as unknown:
        skybiz.create([{"CusCode": "ZZ-CANARY", "CusName": "x"}])
    errors.append(unknown.value)

    wrong = SkyBizClient(skybiz_settings(ep.skybiz_url, CANARY_KEY, "canary-wrong-1"))
    with pytest.raises(AuthenticationError) as refused:
        wrong.read_window(MAY)
    errors.append(refused.value)
    ok, message = wrong.test_connection()
    assert not ok

    bearer = SmartAccClient(
        SmartAccSettings(url=ep.smartacc_url, api_key=Secret(CANARY_SMARTACC_KEY), http=HTTP)
    )
    server.smartacc.switches.inject("500", "429")
    with pytest.raises(AuthenticationError) as unknown_key:
        bearer.page(1)  # two retried faults, then 401 for the unknown key
    errors.append(unknown_key.value)

    login = SmartAccClient(login_settings(ep.smartacc_url, ep.smartacc_username, CANARY_PASSWORD))
    with pytest.raises(AuthenticationError) as bad_login:
        login.page(1)
    errors.append(bad_login.value)

    good_login = SmartAccClient(login_settings(ep.smartacc_url, ep.smartacc_username, ep.smartacc_password))
    server.smartacc.switches.inject("drop")
    assert len(good_login.page(1).rows) == 20  # login, a retried fault, session cookies on the call

    clients = (skybiz, wrong, bearer, login, good_login)
    session_ids = [c.value for c in good_login.http.cookies if c.name in ("ss-id", "ss-pid") and c.value]
    assert session_ids
    secrets = (*CANARIES, ep.smartacc_password, *session_ids)
    texts: list[str] = [message]
    texts += [record.getMessage() for record in caplog.records]
    texts += [caplog.text]
    for err in errors:
        texts += texts_of(err)
    for client in clients:
        texts += [repr(client), repr(client.settings), repr(client.http)]
    texts += [repr(r) for r in server.smartacc.received]
    # The SkyBiz emulator keeps the key a request claimed (``api_key``) as an identity, like the vendor's
    # audit log and its ``requested_by`` echo; everything else it recorded, the body included, is checked.
    texts += [repr(dataclasses.replace(r, api_key=None)) for r in server.skybiz.received]
    texts += [repr(dataclasses.replace(a, api_key="")) for a in server.skybiz.audit]
    assert any(r.api_key == CANARY_KEY for r in server.skybiz.received)  # the check above is not vacuous

    assert any(r.name == "pipelines.http" and r.levelno == logging.WARNING for r in caplog.records)
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    assert_clean(texts, secrets)
    for client in clients:
        client.close()
