"""Helpers for the extract tests: settings for a sandbox, and independent oracles of what the server holds.

The oracles read the sandbox over plain ``requests`` (not through the clients under test) and parse JSON the
way the raw contract promises to keep it — numbers as their literal text — so a test can say "the lake holds
exactly what the vendor sent".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import requests

from pipelines.config import Settings
from pipelines.sources.smartacc.dates import parse_servicestack_date
from pipelines.windows import MYT, Window
from skysmart_sandbox.server import SandboxServer

Row = dict[str, Any]


def settings_for(server: SandboxServer, **env: str) -> Settings:
    """Settings pointing at ``server``; the client-side rate limit is off so tests run at loopback speed."""
    return Settings.from_env({**server.endpoints.as_env(), "SKYSMART_HTTP_REQUESTS_PER_SECOND": "0", **env})


def _loads(text: str) -> Any:
    return json.loads(text, parse_float=str, parse_int=str)


def wire_skybiz_window(server: SandboxServer, window: Window) -> list[Row]:
    """The rows SkyBiz sends for ``window``, read by a bare POST."""
    ep = server.endpoints
    resp = requests.post(
        f"{ep.skybiz_url}/customer.php",
        json={
            "api_key": ep.skybiz_api_key,
            "api_secret": ep.skybiz_api_secret,
            "action": "read",
            "date_from": window.start.isoformat(),
            "date_to": window.end.isoformat(),
        },
        timeout=30,
    )
    resp.raise_for_status()
    body = _loads(resp.text)
    assert body["status"] == "response", body
    rows: list[Row] = body["data"]["data"]
    return rows


def wire_smartacc_customers(server: SandboxServer) -> dict[str, Row]:
    """Every SmartAcc customer as ``GET /Customers`` sends it, by ``AcCustomerID``."""
    rows = _smartacc_get(server, "/Customers")["Customers"]
    return {row["AcCustomerID"]: row for row in rows}


def wire_smartacc_window(server: SandboxServer, window: Window) -> dict[str, Row]:
    """The SmartAcc customers whose EditDate falls in ``window``, by id."""
    return {
        key: row
        for key, row in wire_smartacc_customers(server).items()
        if (edited := parse_servicestack_date(row["EditDate"])) is not None and window.contains(edited)
    }


def wire_smartacc_terms(server: SandboxServer) -> list[Row]:
    """The Terms lookup as ``GET /Terms`` sends it."""
    rows: list[Row] = _smartacc_get(server, "/Terms")["Terms"]
    return rows


def _smartacc_get(server: SandboxServer, route: str) -> Any:
    ep = server.endpoints
    resp = requests.get(
        f"{ep.smartacc_url}{route}",
        params={"format": "json"},
        headers={"Authorization": f"Bearer {ep.smartacc_api_key}", "Accept": "application/json"},
        timeout=60,
    )
    resp.raise_for_status()
    return _loads(resp.text)


def present(row: Mapping[str, Any]) -> Row:
    """A row without its null values: the contract stores an absent key and a JSON null alike, as null."""
    return {k: v for k, v in row.items() if v is not None}


def vendor_rows(table: pa.Table) -> list[Row]:
    """Lake rows restricted to vendor columns (lineage dropped), nulls dropped."""
    names = [name for name in table.column_names if not name.startswith("_")]
    return [present(row) for row in table.select(names).to_pylist()]


def newest(rows: Iterable[Row], key: str, version: Any) -> dict[str, Row]:
    """One row per ``key``, the greatest ``version(row)`` winning."""
    out: dict[str, Row] = {}
    for row in rows:
        current = out.get(row[key])
        if current is None or version(row) > version(current):
            out[row[key]] = row
    return out


def smartacc_version(row: Row) -> tuple[datetime, int]:
    """(EditDate, Stamp) of a SmartAcc row, the order the client keeps the newest by."""
    edited = parse_servicestack_date(row["EditDate"]) or datetime.min.replace(tzinfo=UTC)
    return (edited, int(row.get("Stamp") or 0))


def today_myt() -> date:
    """Today's Malaysia date: the window a live edit lands in."""
    return datetime.now(MYT).date()
