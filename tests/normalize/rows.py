"""Raw rows as the lake holds them, written by hand: vendor text plus lineage, for normalization tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from pipelines.contracts import arrow_schema, load_contract
from pipelines.windows import Window

WINDOW_SKYBIZ = Window("skybiz", date(2026, 4, 1), date(2026, 4, 30))
WINDOW_SMARTACC = Window("smartacc", date(2026, 4, 1), date(2026, 4, 30))
EXTRACTED_AT = datetime(2026, 5, 1, 1, 2, 3, tzinfo=UTC)
NOW = datetime(2026, 5, 2, tzinfo=UTC)

SKYBIZ_BASE: dict[str, str] = {
    "CusCode": "CUST001",
    "CusName": "Acme Sdn Bhd",
    "Address": "No. 1, Jalan Ampang 50450 Kuala Lumpur",
    "CurCode": "RM",
    "Tel": "03-2142 1234",
    "Email": "accounts@acme.com.my",
    "Town": "KUALA LUMPUR",
    "State": "W.P. Kuala Lumpur",
    "Country": "Malaysia",
    "PostCode": "50450",
    "CreditLimit": "5000",
    "TermCode": "30",
    "StatusBadYN": "0",
    "DateStart": "2020-01-15",
    "DOB": "",
    "Sex": "",
    "DateTimeModified": "2026-04-15 10:30:00",
}

SMARTACC_BASE: dict[str, str] = {
    "AcCustomerID": "300-A0001",
    "AcCustomerName": "Apex Murni PLT",
    "AcTermID": "C30",
    "AcAreaID": "SEL",
    "AcCusGroupID": "CORPORATE",
    "AcCusUDGroupID": "NA",
    "BillingAddress1": "214, Jalan Stesen",
    "BillingAddress2": "Taman Perindustrian Puchong",
    "BillingAddress3": "47100 Puchong",
    "BillingAddress4": "Selangor",
    "BillingTel1": "03-7527 0644",
    "BillingPostalCode": "47100",
    "BillingEmail": "info@apexmurni.com",
    "IsActive": "Y",
    "CreateDate": "/Date(1714492800000-0000)/",
    "EditDate": "/Date(1776220200000-0000)/",
    "Stamp": "3",
    "IsMember": "N",
    "Gender": "M",
    "AcCurrencyID": "RM",
    "LocalCreditLimit": "5000",
    "LocalBalanceAmount": "1234.5",
    "MemberJoinDate": "/Date(-62135596800000-0000)/",
    "PriceCode": "1",
    "AcSalesmanID": "S10",
}

TERMS: list[dict[str, str]] = [
    {"AcTermID": "CASH", "AcTermDesc": "Cash", "TermDays": "0"},
    {"AcTermID": "C30", "AcTermDesc": "30 Days", "TermDays": "30"},
    {"AcTermID": "C60", "AcTermDesc": "60 Days", "TermDays": "60"},
]


def raw_table(source: str, rows: list[dict[str, Any]], window: Window | None = None) -> pa.Table:
    """Rows of vendor text (missing keys null) with lineage, in the source's raw contract schema.

    Each row is the source's base record updated with the given values; ``None`` removes a key.
    """
    window = window or (WINDOW_SKYBIZ if source == "skybiz" else WINDOW_SMARTACC)
    base = SKYBIZ_BASE if source == "skybiz" else SMARTACC_BASE
    schema = arrow_schema(load_contract(f"{source}_customer_raw"))
    records = []
    for i, row in enumerate(rows):
        record = {**base, **row}
        record.setdefault("_extracted_at", EXTRACTED_AT)
        record.setdefault("_request_id", f"req_{i:013x}")
        record.setdefault("_page", 1 + i // 20)
        record.setdefault("_window", window.key)
        records.append({f.name: record.get(f.name) for f in schema})
    return pa.Table.from_pylist(records, schema=schema)


def raw_frame(source: str, rows: list[dict[str, Any]], window: Window | None = None) -> pd.DataFrame:
    """:func:`raw_table` as pandas, the way ``normalize_frame`` takes it."""
    frame: pd.DataFrame = raw_table(source, rows, window).to_pandas()
    return frame


def terms_table(terms: list[dict[str, str]] | None = None) -> pa.Table:
    """A Terms snapshot (text columns, as the extract step writes it)."""
    rows = TERMS if terms is None else terms
    return pa.Table.from_pylist(
        [{"AcTermID": t["AcTermID"], "AcTermDesc": t["AcTermDesc"], "TermDays": t["TermDays"]} for t in rows],
        schema=pa.schema([("AcTermID", pa.string()), ("AcTermDesc", pa.string()), ("TermDays", pa.string())]),
    )
