"""SmartAcc emulator, authentication and permissions over real HTTP: every path and every error text."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from skysmart_sandbox.smartacc import (
    PERMISSIONS,
    SmartAccCredentials,
    SmartAccState,
    create_app,
    render_error,
)
from tests.sandbox.smartacc_helpers import serve, tiny_data

CREDS = SmartAccCredentials()
NEW_CUSTOMER = {
    "Customer": {
        "CustomerRecord": {
            "AcCustomerID": "AUTH01",
            "AcCustomerName": "Auth test",
            "AcTermID": "CASH",
            "AcAreaID": "NA",
            "AcCusGroupID": "NA",
            "AcCusUDGroupID": "NA",
        }
    }
}


@pytest.fixture(scope="module")
def state() -> SmartAccState:
    return SmartAccState(tiny_data(25), credentials=CREDS)


@pytest.fixture(scope="module")
def url(state: SmartAccState) -> Iterator[str]:
    with serve(create_app(state)) as base:
        yield base


@pytest.fixture(autouse=True)
def _well_behaved(state: SmartAccState) -> Iterator[None]:
    yield
    state.require_secure_connection = False
    state.revoked_permissions.clear()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def basic(user: str, password: str = "") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_credentials_are_deterministic_servicestack_shaped_and_masked() -> None:
    again = SmartAccCredentials()
    keys = list(CREDS.api_keys())
    assert keys == list(again.api_keys())
    assert len(set(keys)) == 5
    assert all(
        len(k) == 32 and set(k) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        for k in keys
    )
    assert CREDS.api_key not in repr(CREDS) and CREDS.password not in repr(CREDS)


# -- every error: status, ErrorCode, Message --------------------------------------------------------------

Setup = Callable[[SmartAccState], None]


def _secure(state: SmartAccState) -> None:
    state.require_secure_connection = True


def _revoke_get(state: SmartAccState) -> None:
    state.revoked_permissions.add("Customer-Setup.GET")


INSECURE = "Sending ApiKey over insecure connection forbidden when RequireSecureConnection=true"
NOT_AUTHENTICATED = (401, "Unauthorized", "Not Authenticated")
INVALID_PERMISSION = (403, "Forbidden", "Invalid Permission")
BAD_LOGIN = (401, "Unauthorized", "Invalid Username or Password")
LOGIN = "/auth/credentials"


def case(
    case_id: str,
    path: str,
    headers: dict[str, str],
    expected: tuple[int, str, str],
    *,
    method: str = "GET",
    body: Any = None,
    setup: Setup | None = None,
) -> Any:
    return pytest.param(method, path, headers, body, setup, *expected, id=case_id)


ERRORS = [
    case("no-credentials", "/Customers/page/1", {}, NOT_AUTHENTICATED),
    case("unknown-bearer-ignored", "/Customers/page/1", bearer("x" * 32), NOT_AUTHENTICATED),
    case("basic-with-password-ignored", "/Terms", basic(CREDS.username, CREDS.password), NOT_AUTHENTICATED),
    case("session-info-without-session", "/auth", {}, NOT_AUTHENTICATED),
    case("unknown-basic-key", "/Terms", basic("y" * 32), (404, "NotFound", "ApiKey does not exist")),
    case(
        "cancelled-bearer",
        "/Terms",
        bearer(CREDS.cancelled_api_key),
        (403, "Forbidden", "ApiKey has been cancelled"),
    ),
    case(
        "cancelled-basic",
        "/Terms",
        basic(CREDS.cancelled_api_key),
        (403, "Forbidden", "ApiKey has been cancelled"),
    ),
    case("expired-bearer", "/Terms", bearer(CREDS.expired_api_key), (403, "Forbidden", "ApiKey has expired")),
    case("insecure-connection", "/Terms", bearer(CREDS.api_key), (403, "Forbidden", INSECURE), setup=_secure),
    case("insecure-unknown-key", "/Terms", bearer("z" * 32), (403, "Forbidden", INSECURE), setup=_secure),
    case("no-permission-key", "/Customers/page/1", bearer(CREDS.no_permission_api_key), INVALID_PERMISSION),
    case(
        "revoked-permission",
        "/Customers/page/1",
        bearer(CREDS.api_key),
        INVALID_PERMISSION,
        setup=_revoke_get,
    ),
    case(
        "read-only-key-create",
        "/Customers/simple/create",
        bearer(CREDS.readonly_api_key),
        INVALID_PERMISSION,
        method="POST",
        body=NEW_CUSTOMER,
    ),
    case(
        "read-only-key-update",
        "/Customers/simple/update",
        bearer(CREDS.readonly_api_key),
        INVALID_PERMISSION,
        method="POST",
        body=NEW_CUSTOMER,
    ),
    case(
        "wrong-password",
        LOGIN,
        {},
        BAD_LOGIN,
        method="POST",
        body={"UserName": CREDS.username, "Password": "x"},
    ),
    case(
        "unknown-user",
        LOGIN,
        {},
        BAD_LOGIN,
        method="POST",
        body={"UserName": "nobody", "Password": CREDS.password},
    ),
    case(
        "empty-credentials",
        LOGIN,
        {},
        (400, "ValidationException", "'UserName' must not be empty."),
        method="POST",
        body={"UserName": "", "Password": ""},
    ),
    case(
        "unknown-auth-provider",
        "/auth/facebook",
        {},
        (404, "NotFound", "No configuration was added for OAuth provider 'facebook'"),
        method="POST",
        body={"UserName": "a", "Password": "b"},
    ),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "setup", "status", "code", "message"), ERRORS)
def test_auth_errors(
    state: SmartAccState,
    url: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any,
    setup: Setup | None,
    status: int,
    code: str,
    message: str,
) -> None:
    if setup is not None:
        setup(state)
    response = requests.request(method, url + path, headers=headers, json=body, timeout=10)
    payload = response.json()
    assert response.status_code == status
    assert set(payload) == {"ResponseStatus"}  # the data list is absent on error
    assert payload["ResponseStatus"]["ErrorCode"] == code
    assert payload["ResponseStatus"]["Message"] == message
    # Only the [Authenticate] filter's challenge carries WWW-Authenticate, not a refused login.
    assert ("www-authenticate" in response.headers) == (message == "Not Authenticated")


def test_401_names_the_credentials_provider(url: str) -> None:
    response = requests.get(f"{url}/Customers/page/1", timeout=10)
    assert response.headers["WWW-Authenticate"] == 'credentials realm="/auth/credentials"'
    assert response.json()["ResponseStatus"]["Errors"] == []


def test_render_error_for_the_fault_middleware() -> None:
    body, content_type = render_error(429, "Too Many Requests")
    assert content_type == "application/json; charset=utf-8"
    assert json.loads(body) == {
        "ResponseStatus": {"ErrorCode": "TooManyRequests", "Message": "Too Many Requests", "Errors": []}
    }
    body, _ = render_error(500, "boom")
    assert json.loads(body)["ResponseStatus"]["ErrorCode"] == "InternalServerError"


# -- the ways in ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [bearer(CREDS.api_key), basic(CREDS.api_key), {"authorization": f"bearer {CREDS.api_key}"}],
    ids=["bearer", "basic-key-as-user", "lower-case-scheme"],
)
def test_api_key_paths(url: str, headers: dict[str, str]) -> None:
    response = requests.get(f"{url}/Customers/page/1", headers=headers, timeout=10)
    assert response.status_code == 200
    assert len(response.json()["Customers"]) == 20


def test_https_behind_a_proxy_satisfies_the_secure_connection_rule(state: SmartAccState, url: str) -> None:
    state.require_secure_connection = True
    headers = bearer(CREDS.api_key) | {"X-Forwarded-Proto": "https"}
    assert requests.get(f"{url}/Terms", headers=headers, timeout=10).status_code == 200
    assert requests.get(f"{url}/Terms", headers=bearer(CREDS.api_key), timeout=10).status_code == 403


def test_credentials_login_without_remember_me_gives_a_temporary_session(url: str) -> None:
    with requests.Session() as session:
        response = session.post(
            f"{url}/auth/credentials", json={"UserName": CREDS.username, "Password": CREDS.password}
        )
        body = response.json()
        assert response.status_code == 200
        assert body["UserName"] == CREDS.username
        assert body["SessionId"] == session.cookies["ss-id"]
        assert "ss-pid" not in session.cookies
        assert set(body["Permissions"]) == PERMISSIONS
        assert "ResponseStatus" not in body
        assert len(session.get(f"{url}/Customers/page/2").json()["Customers"]) == 5
        assert session.get(f"{url}/auth").json()["UserName"] == CREDS.username


def test_remember_me_adds_a_permanent_session(url: str) -> None:
    with requests.Session() as session:
        body = session.post(
            f"{url}/auth/credentials",
            json={"UserName": CREDS.username, "Password": CREDS.password, "RememberMe": True},
        ).json()
        assert body["SessionId"] == session.cookies["ss-pid"]
        assert session.cookies["ss-opt"] == "perm"
        only_permanent = {"ss-pid": session.cookies["ss-pid"]}
    assert requests.get(f"{url}/Terms", cookies=only_permanent, timeout=10).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/auth/credentials", {"params": {"UserName": CREDS.username, "Password": CREDS.password}}),
        ("PUT", "/auth", {"data": {"username": CREDS.username, "password": CREDS.password}}),
        ("POST", "/AUTH/Credentials", {"json": {"userName": CREDS.username, "password": CREDS.password}}),
    ],
    ids=["get-query", "put-form-no-provider", "post-json-any-case"],
)
def test_authenticate_accepts_all_verbs_and_bindings(
    url: str, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    with requests.Session() as session:
        response = session.request(method, url + path, **kwargs)
        assert response.status_code == 200, response.text
        assert session.get(f"{url}/CustomerAreas").status_code == 200


def test_logout_ends_the_session(url: str) -> None:
    with requests.Session() as session:
        session.post(f"{url}/auth/credentials", json={"UserName": CREDS.username, "Password": CREDS.password})
        cookie = session.cookies["ss-id"]
        assert session.get(f"{url}/auth/logout").status_code == 200
    assert requests.get(f"{url}/Terms", cookies={"ss-id": cookie}, timeout=10).status_code == 401


def test_unknown_session_cookie_is_not_authenticated(url: str) -> None:
    assert requests.get(f"{url}/Terms", cookies={"ss-id": "made-up"}, timeout=10).status_code == 401


# -- permissions per op -----------------------------------------------------------------------------------

READ_OPS = [
    ("/Customers/page/1", "Customer-Setup.GET"),
    ("/Customers/simple/page/1", "Customer-Setup.GET"),
    ("/Terms", "Term-Setup.GET"),
    ("/CustomerAreas", "CustomerArea-Setup.GET"),
    ("/CustomerGroups", "CustomerGroup-Setup.GET"),
    ("/CustomerUDGroups", "CustomerUDGroup-Setup.GET"),
]


@pytest.mark.parametrize(("path", "permission"), READ_OPS, ids=[p for p, _ in READ_OPS])
def test_each_op_needs_its_own_permission(state: SmartAccState, url: str, path: str, permission: str) -> None:
    assert requests.get(url + path, headers=bearer(CREDS.readonly_api_key), timeout=10).status_code == 200
    assert (
        requests.get(url + path, headers=bearer(CREDS.no_permission_api_key), timeout=10).status_code == 403
    )
    state.revoked_permissions.add(permission)
    assert requests.get(url + path, headers=bearer(CREDS.api_key), timeout=10).status_code == 403
    others = [p for p, perm in READ_OPS if perm != permission]
    assert all(
        requests.get(url + p, headers=bearer(CREDS.api_key), timeout=10).status_code == 200 for p in others
    )


# -- secrets never recorded -------------------------------------------------------------------------------


def test_received_requests_never_hold_a_secret(state: SmartAccState, url: str) -> None:
    state.received.clear()
    with requests.Session() as session:
        login = session.post(
            f"{url}/auth/credentials?apikey={CREDS.api_key}",
            json={"UserName": CREDS.username, "Password": CREDS.password, "RememberMe": True},
        )
        session_ids = {login.json()["SessionId"], *session.cookies.values()}
        session.get(f"{url}/Customers/page/1")
    requests.get(f"{url}/Terms", headers=bearer(CREDS.api_key), timeout=10)
    requests.get(f"{url}/Terms", headers=basic(CREDS.readonly_api_key), timeout=10)
    requests.get(f"{url}/auth/credentials?UserName=sandbox&Password={CREDS.password}", timeout=10)
    seen = list(state.received)
    text = repr(seen)
    assert len(seen) == 5
    for secret in [CREDS.api_key, CREDS.readonly_api_key, CREDS.password, *session_ids]:
        assert secret not in text
    assert seen[0].user == CREDS.username and json.loads(seen[0].body)["Password"] == "***"
    assert "apikey=***" in seen[0].query
    assert seen[1].headers["cookie"].count("=***") == 3
    assert seen[2].headers["authorization"] == "Bearer ***" and seen[2].status == 200
    assert seen[3].headers["authorization"] == "Basic ***" and seen[3].user == "readonly"
    assert "Password=***" in seen[4].query
