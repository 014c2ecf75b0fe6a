"""Normalized customer frames that satisfy the contract, for tests to break one rule at a time."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from typing import cast

import pandas as pd
import pyarrow as pa

from pipelines.contracts import arrow_schema, load_contract, pandas_dtypes
from pipelines.einvoice.spec import COLUMNS as EINVOICE_COLUMNS
from pipelines.windows import Window

STATES = ("Selangor", "Johor", "Kuala Lumpur", "Pulau Pinang", "Sabah")


def customer_table(n: int, source: str = "skybiz", window: Window | None = None) -> pa.Table:
    """``n`` clean customers as an Arrow table with exactly the contract's schema."""
    window = window or Window(source, date(2024, 1, 1), date(2024, 1, 31))
    ids = [f"C{i:06d}" for i in range(n)]
    modified = pd.Timestamp("2024-01-15T03:00:00Z")
    rows = {
        "customer_key": [f"{source}:{i}" for i in ids],
        "source_system": [source] * n,
        "source_customer_id": ids,
        "name": [f"Kedai Runcit {i}" for i in range(n)],
        "nickname": [None if i % 3 else f"KR{i}" for i in range(n)],
        "address_line1": [f"{i} Jalan Ampang" for i in range(n)],
        "address_line2": [None] * n,
        "address_line3": [None] * n,
        "address_line4": [None] * n,
        "postcode": ["47500" if i % 2 else "50450" for i in range(n)],
        "town": ["Subang Jaya"] * n,
        "state": [STATES[i % len(STATES)] for i in range(n)],
        "country": ["MY"] * n,
        "phone": [f"+603{i:08d}" for i in range(n)],
        "phone_2": [None] * n,
        "mobile": [f"+6012{i:07d}" if i % 2 else None for i in range(n)],
        "fax": [None] * n,
        "email": [f"owner{i}@kedai.example.my" for i in range(n)],
        "website": [None] * n,
        "contact_name": [f"Contact {i}" for i in range(n)],
        "contact_phone": [None] * n,
        "currency": ["MYR"] * n,
        "credit_limit": [Decimal(f"{(i % 50) * 1000}.00") for i in range(n)],
        "balance": [Decimal(f"{i % 977}.50") for i in range(n)],
        "payment_terms_days": [(30, 60, 0)[i % 3] for i in range(n)],
        "payment_terms_code": ["C30"] * n,
        "salesperson_code": ["S01"] * n,
        "area_code": ["KL"] * n,
        "category_code": [None] * n,
        "price_code": ["1"] * n,
        "is_active": [True] * n,
        "is_bad_debtor": [i % 17 == 0 for i in range(n)],
        "is_member": [None] * n,
        "member_type": [None] * n,
        "date_of_birth": [None if i % 4 else date(1980, 1 + i % 12, 1 + i % 28) for i in range(n)],
        "customer_since": [date(2015, 1 + i % 12, 1) for i in range(n)],
        "gender": [("M", "F", None)[i % 3] for i in range(n)],
        "registration_no": [None] * n,
        "tax_id": [None] * n,
        "sst_no": [None] * n,
        **dict.fromkeys(EINVOICE_COLUMNS, [None] * n),
        "created_at": [modified - pd.Timedelta(days=400)] * n,
        "modified_at": [modified] * n,
        "source_version": [i + 1 for i in range(n)],
        "source_window": [window.key] * n,
        "extracted_at": [pd.Timestamp("2024-02-01T00:00:00Z")] * n,
        "record_hash": [hashlib.sha256(i.encode()).hexdigest() for i in ids],
        "data_issues": [None] * n,
        "source_extras": ["{}"] * n,
    }
    schema = arrow_schema(load_contract("customer"))
    return pa.table(rows, schema=schema)


def customer_frame(n: int, source: str = "skybiz") -> pd.DataFrame:
    """``n`` clean customers as a pandas frame with exactly the contract's pandas dtypes."""
    contract = load_contract("customer")
    frame = customer_table(n, source).to_pandas(types_mapper=pd.ArrowDtype)
    return cast(pd.DataFrame, frame.astype(pandas_dtypes(contract)))
