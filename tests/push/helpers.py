"""Warehouse rows for push tests: common-model customers of both sources, inserted into ``customers``.

The push reads the warehouse, not the lake, so the tests write exactly the customers they need (with the
defects they need) instead of running the whole pipeline for every case. A real push also needs SkyBiz
loaded without gaps up to recently (``load_audit``); ``insert_customers`` records such a load unless told
not to, and :func:`record_skybiz_load` writes the loads a coverage test needs.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pipelines.contracts import load_contract, quote_ident, sql_type
from pipelines.push import PushSettings
from pipelines.windows import MYT

NOW = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)


def smartacc_row(i: int, **overrides: Any) -> dict[str, Any]:
    """A valid SmartAcc customer in the common model; ``overrides`` replace columns."""
    ident = overrides.pop("id", f"300-T{i:05d}")
    row: dict[str, Any] = {
        "customer_key": f"smartacc:{ident}",
        "source_system": "smartacc",
        "source_customer_id": ident,
        "name": f"Syarikat Ujian {i} Sdn Bhd",
        "address_line1": f"{i} Jalan SS2/{i % 70}",
        "address_line2": "Seksyen 2",
        "postcode": "47300",
        "town": "Petaling Jaya",
        "state": "Selangor",
        "country": "MY",
        "phone": f"+6037{i:07d}",
        "mobile": f"+6012{i:07d}",
        "email": f"akaun{i}@ujian{i}.com.my",
        "currency": "MYR",
        "credit_limit": Decimal("5000.00"),
        "payment_terms_days": 30,
        "payment_terms_code": "C30",
        "salesperson_code": "S01",
        "area_code": "SEL",
        "category_code": "WHOLESALE",
        "is_active": True,
        "registration_no": f"20200{i:07d}",
        "modified_at": NOW,
        "source_window": "2026-10-01_2026-10-31",
        "extracted_at": NOW,
        "source_extras": json.dumps({"GSTRegisterNumber": f"GST{i:06d}"}),
    }
    row.update(overrides)
    return row


def skybiz_row(code: str, **overrides: Any) -> dict[str, Any]:
    """A SkyBiz customer in the common model."""
    row: dict[str, Any] = {
        "customer_key": f"skybiz:{code}",
        "source_system": "skybiz",
        "source_customer_id": code,
        "name": f"SkyBiz {code}",
        "currency": "MYR",
        "modified_at": NOW,
        "source_window": "2026-10-01_2026-10-31",
        "extracted_at": NOW,
    }
    row.update(overrides)
    return row


def covered_settings(**overrides: Any) -> PushSettings:
    """Push settings declaring SkyBiz's history to start where ``insert_customers``' load does (30 days ago).

    A real push refuses without a declared start; the tests that are not about coverage declare the one
    their warehouse satisfies.
    """
    return PushSettings(skybiz_covered_from=today_myt() - timedelta(days=30), **overrides)


def today_myt() -> date:
    """Today in Malaysia, the calendar the coverage check measures staleness in."""
    return datetime.now(MYT).date()


def record_skybiz_load(
    warehouse: Any, start: date, end: date, *, status: str = "succeeded", started_at: datetime | None = None
) -> None:
    """One ``load_audit`` row for a SkyBiz load of ``start``..``end``, as ``load_window`` leaves it."""
    warehouse.ensure_schema()
    started = started_at or datetime.now(UTC)
    warehouse.execute(
        "INSERT INTO load_audit (load_id, source, source_window, window_start, window_end, status, "
        "started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        (
            f"test-{uuid.uuid4().hex[:12]}",
            "skybiz",
            f"{start.isoformat()}_{end.isoformat()}",
            start,
            end,
            status,
            started,
            None if status == "running" else started,
        ),
    )


def insert_customers(warehouse: Any, rows: list[dict[str, Any]], *, skybiz_loaded: bool = True) -> None:
    """Create the warehouse schema if needed and insert rows into ``customers`` (one array per column).

    ``skybiz_loaded`` also records a successful SkyBiz load of the last 31 days up to today, the coverage
    a warehouse the daily DAG keeps current has, so a real push trusts it.
    """
    warehouse.ensure_schema()
    contract = load_contract("customer")
    dialect = warehouse.dialect
    text = sql_type(contract.column("name"), dialect)
    selects = [
        f"CAST(unnest(CAST(${n} AS {text}[])) AS {sql_type(c, dialect)})"
        if c.physical_type == "json"
        else f"unnest(CAST(${n} AS {sql_type(c, dialect)}[]))"
        for n, c in enumerate(contract.columns, start=1)
    ]
    columns = [*contract.column_names, "loaded_at", "load_id"]
    stamp = sql_type(contract.column("extracted_at"), dialect)
    n = len(selects)
    selects += [f"unnest(CAST(${n + 1} AS {stamp}[]))", f"unnest(CAST(${n + 2} AS {text}[]))"]
    full = [
        {
            "loaded_at": NOW,
            "load_id": "test",
            "record_hash": hashlib.sha256(repr(sorted(row.items())).encode()).hexdigest(),
            **row,
        }
        for row in rows
    ]
    with warehouse.transaction():
        warehouse.execute(
            f"INSERT INTO customers ({', '.join(map(quote_ident, columns))}) SELECT {', '.join(selects)}",
            [[r.get(c) for r in full] for c in columns],
        )
    if skybiz_loaded:
        today = today_myt()
        record_skybiz_load(warehouse, today - timedelta(days=30), today)


def insert_quarantined_skybiz(warehouse: Any, raw: dict[str, Any], *, rule: str = "currency_unknown") -> None:
    """One quarantined SkyBiz raw row in ``customer_quarantine``, as normalization leaves it."""
    warehouse.ensure_schema()
    window = "2026-10-01_2026-10-31"
    json_type = "JSON" if warehouse.dialect == "duckdb" else "JSONB"
    warehouse.execute(
        "INSERT INTO customer_quarantine (source_system, source_customer_id, source_window, row_number, "
        "rule, field, offending_value, raw_record, extracted_at, quarantined_at, loaded_at, load_id) "
        f"VALUES ('skybiz', $1, $2, 0, $3, 'CurCode', $4, CAST($5 AS {json_type}), $6, $7, $8, 'test')",
        (raw.get("CusCode"), window, rule, raw.get("CurCode"), json.dumps(raw), NOW, NOW, NOW),
    )


def outbox_states(warehouse: Any) -> dict[str, str]:
    """``customer_key → state`` of every outbox row."""
    return dict(warehouse.query("SELECT customer_key, state FROM skybiz_push_outbox"))
