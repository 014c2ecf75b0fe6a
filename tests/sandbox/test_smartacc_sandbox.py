"""The SmartAcc emulator inside the shared SandboxServer: generated data end to end, faults in its shape."""

from __future__ import annotations

import requests

from skysmart_sandbox.server import SandboxServer
from tests.fixtures.sandbox import SandboxFactory


def session_for(server: SandboxServer) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {server.endpoints.smartacc_api_key}"
    return session


def test_every_customer_once_by_pages_and_by_edit_date(sandbox: SandboxServer) -> None:
    url = sandbox.endpoints.smartacc_url
    expected = sandbox.smartacc.customer_ids()
    assert expected == sorted(expected) and len(expected) == sandbox.size
    with session_for(sandbox) as http:
        by_page: list[str] = []
        page = 1
        while rows := http.get(f"{url}/Customers/page/{page}?format=json").json()["Customers"]:
            assert len(rows) == 20 or len(by_page) + len(rows) == len(expected)
            by_page += [r["AcCustomerID"] for r in rows]
            page += 1
        by_edit: list[tuple[int, str]] = []
        page = 1
        while rows := http.get(f"{url}/Customers/EditDate/2000-01-01?Page={page}").json()["Customers"]:
            by_edit += [(int(r["EditDate"][6:-7]), r["AcCustomerID"]) for r in rows]
            page += 1
    assert by_page == expected
    assert by_edit == sorted(by_edit)
    assert sorted(cid for _, cid in by_edit) == expected


def test_fault_middleware_answers_429_in_servicestack_shape(sandbox_factory: SandboxFactory) -> None:
    server = sandbox_factory(size=50)
    server.smartacc.switches.inject("429")
    with session_for(server) as http:
        limited = http.get(f"{server.endpoints.smartacc_url}/Customers/page/1")
        after = http.get(f"{server.endpoints.smartacc_url}/Customers/page/1")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.json() == {
        "ResponseStatus": {"ErrorCode": "TooManyRequests", "Message": "Too Many Requests", "Errors": []}
    }
    assert len(after.json()["Customers"]) == 20
