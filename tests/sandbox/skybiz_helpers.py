"""Small helpers for talking to the SkyBiz emulator over real HTTP, the way a vendor sample would."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import requests

from pipelines.windows import MYT
from skysmart_sandbox.server import SandboxServer

REQUEST_ID = re.compile(r"^req_[0-9a-f]{13}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")

VENDOR_DOC: dict[str, Any] = {
    "AccountCode": "AR-001",
    "CusCode": "CUST001",
    "CusName": "Customer Name",
    "CurCode": "RM",
    "D_ay": 30,
    "CategoryCode": "RETAIL",
    "Address1": "123 Jalan SS2",
    "Address2": "Section 2",
    "AreaCode": "SEL",
    "CreditLimit": 10000.00,
    "SalesPersonCode": "SALES01",
    "Tel": "03-12345678",
    "Email": "customer@test.com",
    "Town": "Petaling Jaya",
    "State": "Selangor",
    "Country": "Malaysia",
    "PostCode": "47300",
}
"""The create example of the vendor page, verbatim."""


def url(server: SandboxServer) -> str:
    return f"{server.endpoints.skybiz_url}/customer.php"


def creds(server: SandboxServer, which: str = "") -> dict[str, str]:
    c = server.skybiz_credentials
    prefix = f"{which}_" if which else ""
    return {"api_key": getattr(c, f"{prefix}api_key"), "api_secret": getattr(c, f"{prefix}api_secret")}


def read_body(server: SandboxServer, date_from: str, date_to: str, **extra: Any) -> dict[str, Any]:
    return {**creds(server), "action": "read", "date_from": date_from, "date_to": date_to, **extra}


def create_body(server: SandboxServer, *documents: dict[str, Any], which: str = "") -> dict[str, Any]:
    return {**creds(server, which), "action": "create", "customer_data": {"documents": list(documents)}}


def post(server: SandboxServer, body: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("timeout", 30)
    if body is not None:
        kwargs["json"] = body
    return requests.post(url(server), **kwargs)


def ok_data(resp: requests.Response) -> dict[str, Any]:
    """The ``data`` of a successful envelope, after checking the envelope itself (§3)."""
    assert resp.status_code == 200, resp.text[:500]
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"status", "timestamp", "request_id", "data"}
    assert body["status"] == "response"
    assert REQUEST_ID.match(body["request_id"]), body["request_id"]
    assert TIMESTAMP.match(body["timestamp"]) and datetime.fromisoformat(body["timestamp"]).tzinfo
    data: dict[str, Any] = body["data"]
    return data


def assert_error(resp: requests.Response, status: int, message: str) -> dict[str, Any]:
    """An error envelope (§3) with the exact message and the agreed HTTP status (§10)."""
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    body = resp.json()
    assert set(body) == {"status", "timestamp", "request_id", "message"}, body
    assert body["status"] == "error"
    assert body["message"] == message
    assert REQUEST_ID.match(body["request_id"])
    assert TIMESTAMP.match(body["timestamp"])
    return dict(body)


def today_myt() -> str:
    return datetime.now(MYT).date().isoformat()
