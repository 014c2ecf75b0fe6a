"""Realistic normalized customers and quarantine rows, written into a tmp lake as the normalizer would."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from pipelines.contracts import arrow_schema, load_contract
from pipelines.lake import CUSTOMERS, NORMALIZED, QUARANTINE, RAW, Lake
from pipelines.warehouse.schema import VERSION_COLUMNS
from pipelines.windows import Window

CUSTOMER = load_contract("customer")
QUARANTINE_CONTRACT = load_contract("customer_quarantine")

_NAMES = (
    "Kedai Runcit Ah Seng",
    "Syarikat Perniagaan Nur Jaya Sdn Bhd",
    "Restoran Sri Melaka",
    "Tan & Sons Hardware Sdn Bhd",
    "Klinik Pergigian Senyum",
    "Pustaka Ilmu Enterprise",
)
_TOWNS = (("Kuala Lumpur", "Kuala Lumpur", "50450"), ("George Town", "Pulau Pinang", "10200"),
          ("Johor Bahru", "Johor", "80000"), ("Kota Kinabalu", "Sabah", "88000"))  # fmt: skip


def window(source: str, start: str, end: str) -> Window:
    return Window(source, date.fromisoformat(start), date.fromisoformat(end))


def at(text: str) -> datetime:
    """A UTC timestamp from ``YYYY-MM-DD[THH:MM]``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def customer(
    source: str,
    cid: str,
    win: Window,
    *,
    modified: datetime,
    version: int | None = None,
    extracted: datetime | None = None,
    **content: Any,
) -> dict[str, Any]:
    """One normalized customer row; ``content`` overrides business columns, and the hash follows them."""
    n = sum(map(ord, cid))
    town, state, postcode = _TOWNS[n % len(_TOWNS)]
    row: dict[str, Any] = dict.fromkeys(CUSTOMER.column_names)
    row.update(
        customer_key=f"{source}:{cid}",
        source_system=source,
        source_customer_id=cid,
        name=f"{_NAMES[n % len(_NAMES)]} ({cid})",
        nickname=None if n % 3 else "Ah Seng",
        address_line1=f"No. {n % 90 + 1}, Jalan Bukit Bintang",
        address_line2="Taman Maju",
        postcode=postcode,
        town=town,
        state=state,
        country="MY",
        phone=f"+6031234{n % 10000:04d}",
        mobile=f"+60123{n % 1000000:06d}",
        email=f"accounts.{cid.lower()}@example.com.my",
        currency="MYR",
        credit_limit=Decimal("5000.00") + n,
        balance=Decimal("123.45"),
        payment_terms_days=30,
        payment_terms_code="C30",
        salesperson_code="S01",
        area_code="KL",
        is_active=True,
        is_bad_debtor=False,
        customer_since=date(2019, 3, 1),
        created_at=at("2019-03-01T02:00"),
        modified_at=modified,
        source_version=version,
        source_window=win.key,
        extracted_at=extracted or (modified + timedelta(days=1)),
        source_extras=json.dumps({"Remark": "walk-in"}),
    )
    row.update(content)
    row["record_hash"] = content_hash(row)
    return row


def content_hash(row: dict[str, Any]) -> str:
    """SHA-256 of the business columns, as the normalizer computes it (lineage and modified_at left out)."""
    business = {k: v for k, v in row.items() if k not in VERSION_COLUMNS}
    return hashlib.sha256(json.dumps(business, sort_keys=True, default=str).encode()).hexdigest()


def quarantine_row(source: str, win: Window, row_number: int, rule: str = "name_missing") -> dict[str, Any]:
    return {
        "source_system": source,
        "source_customer_id": f"Q{row_number:04d}",
        "source_window": win.key,
        "row_number": row_number,
        "rule": rule,
        "field": "CusName" if rule == "name_missing" else "Currency",
        "offending_value": None if rule == "name_missing" else "XYZ",
        "raw_record": json.dumps({"CusCode": f"Q{row_number:04d}"}),
        "extracted_at": at("2024-02-01"),
        "quarantined_at": at("2024-02-01T01:00"),
    }


def write_window(
    lake: Lake,
    win: Window,
    rows: Sequence[dict[str, Any]],
    quarantined: Sequence[dict[str, Any]] = (),
    *,
    raw_rows: int | None = None,
) -> None:
    """Commit raw (row count only), normalized and quarantine windows, as extract + normalize would."""
    raw = pa.table({"_row": pa.array(range(len(rows) + len(quarantined) if raw_rows is None else raw_rows))})
    lake.write_table(RAW, win.source, CUSTOMERS, win, raw)
    lake.write_table(
        NORMALIZED, win.source, CUSTOMERS, win, pa.Table.from_pylist(list(rows), arrow_schema(CUSTOMER))
    )
    lake.write_table(
        QUARANTINE,
        win.source,
        CUSTOMERS,
        win,
        pa.Table.from_pylist(list(quarantined), arrow_schema(QUARANTINE_CONTRACT)),
    )
