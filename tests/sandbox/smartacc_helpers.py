"""A small SmartAcc dataset of the agreed ``SandboxData`` shape, and a uvicorn runner for the emulator.

The dataset is hand-made so the tests know every value: edge cases (null vs empty strings, quotes and
non-ASCII text, unset member dates, a shared mobile number, EditDate ties) sit at known ids.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
import uvicorn

from pipelines.contracts import load_contract

FIELDS = [c for c in load_contract("smartacc_customer_raw").column_names if not c.startswith("_")]
DATE_FIELDS = (
    "CreateDate",
    "EditDate",
    "DateOfBirth",
    "MemberJoinDate",
    "MemberExpireDate",
    "MemberMarriageDate",
    "EInvoiceTINValidateDateTime",
)
DECIMAL_FIELDS = ("MemberPointBalance", "MemberPointAccumulated", "LocalCreditLimit", "LocalBalanceAmount")
BASE_EDIT = datetime(2024, 5, 1, 0, 0, 0)
SHARED_MOBILE = "012-3456789"
ODD_NAME = 'Kedai "Ah Seng" \\ Sdn. Bhd.\nCafé 咖啡'


@dataclass(frozen=True, slots=True)
class TinyData:
    """The parts of ``SandboxData`` the SmartAcc emulator reads."""

    smartacc: pa.Table
    terms: pa.Table
    customer_groups: pa.Table
    customer_areas: pa.Table
    customer_ud_groups: pa.Table
    history_start: date
    history_end: date


def customer_id(i: int) -> str:
    return f"C{i:05d}"


def edit_date(i: int) -> datetime:
    """EditDate of customer ``i`` (1-based): one per 6 hours, with customers 10 and 11 tied."""
    j = 10 if i == 11 else i
    return BASE_EDIT + timedelta(hours=6 * (j - 1))


def _row(i: int) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(FIELDS)
    row.update(
        AcCustomerID=customer_id(i),
        AcCustomerName=ODD_NAME if i == 3 else f"Customer {i}",
        AcTermID=("CASH", "C30", "C60")[i % 3],
        AcAreaID="NA",
        AcCusGroupID="NA" if i % 2 else "RETAIL",
        AcCusUDGroupID="NA",
        BillingAddress1=f"{i} Jalan Ampang",
        BillingAddress2="" if i % 2 else None,  # empty kept, null omitted
        BillingTel1=f"03-2{i:03d} 4567",
        IsActive="Y" if i % 7 else "N",
        Notes=None,
        CreateBy="ADMIN",
        CreateDate=edit_date(i) - timedelta(days=30),
        EditBy="ADMIN",
        EditDate=edit_date(i),
        Stamp=i,
        DateOfBirth=datetime(1980, 1, 1) + timedelta(days=i) if i % 2 else None,
        IsMember="Y" if i % 2 else "N",
        Gender="M" if i % 2 else "F",
        MobileNo=SHARED_MOBILE if i in (4, 9) else f"019-{i:07d}",
        MemberJoinDate=datetime(2020, 1, 1) if i % 2 else None,
        MemberExpireDate=datetime(2099, 12, 31) if i % 2 else None,
        MemberMarriageDate=None,
        AcMemberEthnicID="NA",
        AcMemberIncomeID="NA",
        MemberPointBalance=float(i) + 0.5 if i % 2 else 0.0,
        MemberPointAccumulated=100.0,
        PriceCode="1",
        AcSalesmanID="NA",
        IsGSTRegister="N",
        AcCurrencyID="RM",
        IsAllowPrintStatement="Y",
        IsAllowExceedCreditTerm="N",
        IsAllowExceedCreditLimit="N",
        LocalCreditLimit=5000.0,
        LocalBalanceAmount=1234.56 if i == 1 else 0.0,
        IsAllowCreditSalesForPOS="N",
        AcCustomerIDParentID=customer_id(i),
        EInvoiceTINValidateDateTime=datetime(2024, 5, 1, 10, 30) if i == 1 else None,
    )
    return row


def tiny_data(n: int = 45) -> TinyData:
    """``n`` customers ``C00001``..: 45 makes pages of 20, 20 and a short last page of 5."""
    rows = [_row(i) for i in range(1, n + 1)]
    types = {
        **{f: pa.timestamp("ms") for f in DATE_FIELDS},
        **{f: pa.float64() for f in DECIMAL_FIELDS},
        "Stamp": pa.int64(),
    }
    schema = pa.schema([pa.field(f, types.get(f, pa.string())) for f in FIELDS])
    table = pa.Table.from_pylist(rows, schema=schema)
    terms = pa.table(
        {
            "AcTermID": ["C30", "C60", "CASH"],
            "AcTermDesc": ["30 days", "60 days", "Cash"],
            "TermDays": pa.array([30, 60, 0], pa.int32()),
        }
    )
    groups = pa.table(
        {
            "AcCusGroupID": [f"G{i:02d}" for i in range(1, 24)] + ["NA", "RETAIL"],
            "AcCusGroupDesc": [f"Group {i}" for i in range(1, 24)] + ["Not applicable", "Retail"],
        }
    )
    areas = pa.table({"AcAreaID": ["KL", "NA"], "AcAreaDesc": ["Kuala Lumpur", "Not applicable"]})
    ud = pa.table({"AcCusUDGroupID": ["NA"], "AcCusUDGroupDesc": ["Not applicable"]})
    return TinyData(table, terms, groups, areas, ud, date(2024, 1, 1), date(2024, 12, 31))


class SwappableApp:
    """An ASGI app that forwards to whichever app is current: one server, a fresh emulator per test."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port in a background thread; yield its URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"smartacc-{port}", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
