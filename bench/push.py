"""Create requests the push spends per 10,000 customers with 1% invalid documents, against the minimum.

    python -m bench push -- [--size 10000] [--warehouse duckdb|postgres] [--postgres-admin URL]

SkyBiz takes at most 500 documents per request and rejects a whole batch for one bad document, so the
minimum is ceil(size / 500) requests (20 for 10,000) — reachable only if every bad document is known before
sending. Of the 1% invalid here, 60% break a rule the client checks (name too long, no payment term, a
currency outside the configured table) and 40% only SkyBiz can refuse (a currency the client's table allows
but SkyBiz's does not). Two server-only cases:

  one-currency   all server-only refusals are the same unknown currency (SkyBiz names it once, the push
                 remembers it for the rest of the run)
  many-currencies every server-only refusal is a different unknown currency (nothing to learn; each batch
                 holding one costs one extra request)

Against the SkyBiz sandbox over loopback HTTP; figures only, no assertions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from pipelines.config import Settings
from pipelines.contracts import load_contract, quote_ident, sql_type
from pipelines.push import PushSettings, push_customers
from pipelines.sources.skybiz.client import SkyBizClient
from pipelines.warehouse import Warehouse, open_warehouse
from skysmart_sandbox.server import SandboxServer

NOW = datetime(2026, 11, 1, tzinfo=UTC)
BASE_CURRENCIES = ("RM", "SGD", "USD")


def customers(size: int, scenario: str) -> tuple[list[dict[str, Any]], tuple[str, ...], int, int]:
    """Rows, the client currency table, and how many are invalid client-side / server-side only."""
    invalid = max(1, size // 100)
    step = size // invalid
    server_only = round(invalid * 0.4)
    rows: list[dict[str, Any]] = []
    extra: list[str] = []
    client_side = 0
    for i in range(size):
        row: dict[str, Any] = {
            "customer_key": f"smartacc:300-B{i:06d}",
            "source_system": "smartacc",
            "source_customer_id": f"300-B{i:06d}",
            "name": f"Syarikat Bangku {i} Sdn Bhd",
            "address_line1": f"{i % 300 + 1} Jalan Ampang",
            "town": "Kuala Lumpur",
            "state": "Kuala Lumpur",
            "postcode": "50450",
            "country": "MY",
            "phone": f"+603{i:08d}"[:12],
            "email": f"acc{i}@bangku.com.my",
            "currency": "MYR",
            "credit_limit": Decimal("1000.00"),
            "payment_terms_days": 30,
            "category_code": "RETAIL",
            "is_active": True,
            "modified_at": NOW,
            "source_window": "2026-10-01_2026-10-31",
            "extracted_at": NOW,
        }
        k = i // step if i % step == step // 2 else -1
        if 0 <= k < invalid:
            if k * server_only // invalid != (k + 1) * server_only // invalid:  # spread evenly
                code = "XAU" if scenario == "one-currency" else _fake_currency(k)
                row["currency"] = code
                extra.append(code)
            else:
                client_side += 1
                kind = k % 3
                if kind == 0:
                    row["name"] = "N" * 120
                elif kind == 1:
                    row["payment_terms_days"] = None
                else:
                    row["currency"] = "EUR"  # SkyBiz knows EUR; our configured table does not
        rows.append(row)
    currencies = tuple(dict.fromkeys([*BASE_CURRENCIES, *extra]))
    return rows, currencies, client_side, len(extra)


def _fake_currency(k: int) -> str:
    return "Q" + chr(ord("A") + k // 26 % 26) + chr(ord("A") + k % 26)


def insert(warehouse: Warehouse, rows: list[dict[str, Any]]) -> None:
    """Rows into ``customers`` in one statement, one array parameter per column."""
    warehouse.ensure_schema()
    contract = load_contract("customer")
    columns = [*contract.column_names, "loaded_at", "load_id"]
    types = [sql_type(c, warehouse.dialect) for c in contract.columns]
    types += [sql_type(contract.column("extracted_at"), warehouse.dialect), types[0]]
    selects = [f"unnest(CAST(${n} AS {t}[]))" for n, t in enumerate(types, start=1)]
    full = [
        {
            "loaded_at": NOW,
            "load_id": "bench",
            "record_hash": hashlib.sha256(json.dumps(row, default=str).encode()).hexdigest(),
            **row,
        }
        for row in rows
    ]
    with warehouse.transaction():
        warehouse.execute(
            f"INSERT INTO customers ({', '.join(map(quote_ident, columns))}) SELECT {', '.join(selects)}",
            [[r.get(c) for r in full] for c in columns],
        )


def run(size: int, scenario: str, url: str) -> dict[str, Any]:
    """One push of ``size`` customers on a fresh warehouse and sandbox."""
    rows, currencies, client_side, server_only = customers(size, scenario)
    with SandboxServer(size=20, seed=11) as sandbox, open_warehouse(url) as warehouse:
        insert(warehouse, rows)
        client = SkyBizClient(Settings.from_env(sandbox.endpoints.as_env()).require_skybiz())
        started = time.perf_counter()
        # The bench warehouse holds no SkyBiz loads: measure requests, not the coverage guard.
        result = push_customers(
            warehouse, client, settings=PushSettings(currencies=currencies), allow_partial_coverage=True
        )
        seconds = time.perf_counter() - started
        rerun = push_customers(
            warehouse, client, settings=PushSettings(currencies=currencies), allow_partial_coverage=True
        )
        client.close()
    return {
        "scenario": scenario,
        "result": result,
        "seconds": seconds,
        "client_side": client_side,
        "server_only": server_only,
        "rerun_requests": rerun.requests,
    }


def main(argv: list[str]) -> None:
    """Run both scenarios and print the figures."""
    parser = argparse.ArgumentParser(prog="bench push")
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--warehouse", choices=("duckdb", "postgres"), default="duckdb")
    parser.add_argument("--postgres-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)
    minimum = math.ceil(args.size / 500)
    print(f"push of {args.size:,} SmartAcc customers, 1% invalid, {args.warehouse} outbox; minimum {minimum}")
    print(
        f"{'scenario':<16}{'requests':>9}{'minimum':>9}{'extra':>7}{'created':>9}{'invalid':>9}"
        f"{'rejected':>9}{'seconds':>9}{'docs/s':>9}{'rerun req':>10}"
    )
    for scenario in ("one-currency", "many-currencies"):
        with tempfile.TemporaryDirectory() as tmp:
            url, cleanup = _warehouse_url(args.warehouse, Path(tmp), args.postgres_admin)
            try:
                fig = run(args.size, scenario, url)
            finally:
                cleanup()
        r = fig["result"]
        print(
            f"{scenario:<16}{r.requests:>9}{minimum:>9}{r.requests - minimum:>7}{r.created:>9,}"
            f"{r.invalid:>9}{r.rejected:>9}{fig['seconds']:>9.2f}{r.created / fig['seconds']:>9,.0f}"
            f"{fig['rerun_requests']:>10}"
        )
        print(
            f"{'':<16}(invalid: {fig['client_side']} caught client-side, "
            f"{fig['server_only']} only by SkyBiz; "
            f"{r.batches} batches saved)"
        )


def _warehouse_url(kind: str, tmp: Path, admin_url: str) -> tuple[str, Any]:
    if kind == "duckdb":
        return str(tmp / "bench.duckdb"), lambda: None
    name = f"skysmart_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{admin_url.rsplit('/', 1)[0]}/{name}", drop
