"""SkyBiz customer create over real HTTP (SKYBIZ.md §5, §9.7): validation shapes, all-or-nothing, storage.

Also the live dataset: edits move a customer to today's window (§9.5).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pyarrow.compute as pc
import pytest
import requests

from pipelines.windows import MYT
from skysmart_sandbox import skybiz as sb
from tests.sandbox.skybiz_helpers import (
    VENDOR_DOC,
    create_body,
    creds,
    ok_data,
    post,
    read_body,
    today_myt,
    url,
)

EMPTY_DETAILS: dict[str, list[Any]] = {
    "compulsory_fields_missing": [],
    "duplicate_customers": [],
    "invalid_currencies": [],
    "validation_errors": [],
}


def test_vendor_example_creates_and_reads_back(sandbox_factory):
    server = sandbox_factory()
    data = ok_data(post(server, create_body(server, VENDOR_DOC)))
    assert data == {
        "requested_by": server.endpoints.skybiz_api_key,
        "mode": "2",
        "summary": {"total_documents": 1, "inserted": 1, "failed": 0},
        "successful_documents": ["CUST001"],
        "failed_documents": [],
        "fail_details": EMPTY_DETAILS,
    }
    today = today_myt()
    rows = ok_data(post(server, read_body(server, today, today, filters={"CusCode": "CUST001"})))["data"]
    assert len(rows) == 1
    row = rows[0]
    assert row["Address"] == "123 Jalan SS2 Section 2"
    assert row["TermCode"] == 30 and row["CreditLimit"] == 10000.0
    assert (row["CusName"], row["CurCode"], row["Town"], row["PostCode"]) == (
        "Customer Name", "RM", "Petaling Jaya", "47300",
    )  # fmt: skip
    stamped = datetime.strptime(row["DateTimeModified"], "%Y-%m-%d %H:%M:%S")
    assert stamped.date() == datetime.now(MYT).date()
    stored = server.skybiz.customer("CUST001")
    assert stored is not None
    assert (stored["FinCatCode"], stored["AccountCode"], stored["CategoryCode"]) == (
        "B55",
        "AR-001",
        "RETAIL",
    )


def test_server_sets_fincatcode_and_joins_address_lines(sandbox_factory):
    server = sandbox_factory()
    doc = {
        **VENDOR_DOC,
        "CusCode": "ADDR1",
        "FinCatCode": "Z99",
        "Address1": " Lot 5, Jalan Kenari ",
        "Address2": "",
        "Address3": "Taman Sentosa",
        "Address4": "41200 Klang",
        "GSTNo": "001234567890",
    }
    ok_data(post(server, create_body(server, doc)))
    stored = server.skybiz.customer("ADDR1")
    assert stored["FinCatCode"] == "B55"
    assert stored["Address"] == "Lot 5, Jalan Kenari Taman Sentosa 41200 Klang"
    assert stored["GSTNo"] == "001234567890"


def test_optional_fields_default(sandbox_factory):
    server = sandbox_factory()
    minimal = {k: VENDOR_DOC[k] for k in sb.COMPULSORY_FIELDS}
    ok_data(post(server, create_body(server, {**minimal, "CusCode": "MIN1", "D_ay": 0})))
    stored = server.skybiz.customer("MIN1")
    assert stored["CreditLimit"] == 0.0 and stored["TermCode"] == 0 and stored["Address"] == ""
    assert stored["StatusBadYN"] == "0" and stored["Email"] == ""


def test_form_encoded_create_like_http_build_query(sandbox_factory):
    server = sandbox_factory()
    form = {**creds(server), "action": "create"}
    for name, value in {**VENDOR_DOC, "CusCode": "FORM1"}.items():
        form[f"customer_data[documents][0][{name}]"] = str(value)
    data = ok_data(requests.post(url(server), data=form, timeout=30))
    assert data["successful_documents"] == ["FORM1"]
    assert server.skybiz.customer("FORM1")["TermCode"] == 30


def test_missing_fields_exact_vendor_shape(sandbox_factory):
    server = sandbox_factory()
    data = ok_data(post(server, create_body(server, {"CusCode": "CUST001", "Tel": "03-1"})))
    assert data == {
        "requested_by": server.endpoints.skybiz_api_key,
        "mode": "2",
        "summary": {"total_documents": 1, "inserted": 0, "failed": 1},
        "successful_documents": [],
        "failed_documents": ["CUST001"],
        "fail_details": {
            "compulsory_fields_missing": [
                "Document 1 (CusCode: CUST001): Missing fields - "
                "AccountCode, CusName, CurCode, D_ay, CategoryCode"
            ]
        },
    }


@pytest.mark.parametrize(
    ("blank", "shown"),
    [({"CusName": "   "}, "CusName"), ({"D_ay": None}, "D_ay"), ({"CusCode": ""}, "CusCode")],
    ids=["whitespace-name", "null-days", "empty-code"],
)
def test_blank_values_count_as_missing(sandbox_factory, blank, shown):
    server = sandbox_factory()
    data = ok_data(post(server, create_body(server, {**VENDOR_DOC, **blank})))
    code = "" if shown == "CusCode" else "CUST001"
    assert data["fail_details"] == {
        "compulsory_fields_missing": [f"Document 1 (CusCode: {code}): Missing fields - {shown}"]
    }


def test_invalid_currency_exact_vendor_shape(sandbox_factory):
    server = sandbox_factory()
    data = ok_data(post(server, create_body(server, {**VENDOR_DOC, "CurCode": "INVALID"})))
    assert data["summary"] == {"total_documents": 1, "inserted": 0, "failed": 1}
    assert data["failed_documents"] == ["CUST001"]
    assert data["fail_details"] == {
        "invalid_currencies": ["Document 1 (CusCode: CUST001): Currency code 'INVALID' does not exist"]
    }


@pytest.mark.parametrize("currency", ["MYR", "rm", "RM ", "RMX"])
def test_currency_table_is_exact(sandbox_factory, currency):
    server = sandbox_factory()
    data = ok_data(post(server, create_body(server, {**VENDOR_DOC, "CurCode": currency})))
    assert data["fail_details"]["invalid_currencies"] == [
        f"Document 1 (CusCode: CUST001): Currency code '{currency}' does not exist"
    ]


def test_duplicate_in_database_exact_vendor_shape(sandbox_factory):
    server = sandbox_factory()
    existing = server.data.skybiz.column("CusCode")[0].as_py()
    data = ok_data(post(server, create_body(server, {**VENDOR_DOC, "CusCode": existing})))
    assert data == {
        "requested_by": server.endpoints.skybiz_api_key,
        "mode": "2",
        "summary": {"total_documents": 1, "inserted": 0, "failed": 1},
        "successful_documents": [],
        "failed_documents": [existing],
        "fail_details": {
            "duplicate_customers": [{"cuscode": existing, "error": "Customer code already exists"}]
        },
    }


def test_duplicate_in_the_same_batch(sandbox_factory):
    server = sandbox_factory()
    docs = [
        {**VENDOR_DOC, "CusCode": "TWICE"},
        {**VENDOR_DOC, "CusCode": "ONCE"},
        {**VENDOR_DOC, "CusCode": "TWICE"},
    ]
    data = ok_data(post(server, create_body(server, *docs)))
    assert data["summary"] == {"total_documents": 3, "inserted": 0, "failed": 1}
    assert data["failed_documents"] == ["TWICE"]
    assert data["fail_details"] == {
        "duplicate_customers": [{"cuscode": "TWICE", "error": "Duplicate CusCode found in the same batch"}]
    }


def test_create_twice_second_time_is_a_duplicate(sandbox_factory):
    server = sandbox_factory()
    ok_data(post(server, create_body(server, VENDOR_DOC)))
    data = ok_data(post(server, create_body(server, VENDOR_DOC)))
    assert data["fail_details"]["duplicate_customers"] == [
        {"cuscode": "CUST001", "error": sb.MSG_CODE_EXISTS}
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"D_ay": "thirty"}, "D_ay must be a whole number of days"),
        ({"D_ay": 7.5}, "D_ay must be a whole number of days"),
        ({"D_ay": -1}, "D_ay must be a whole number of days"),
        ({"CreditLimit": "lots"}, "CreditLimit must be a number"),
        ({"Tel": ["03", "04"]}, "Tel must be a single value"),
    ],
    ids=["days-text", "days-fraction", "days-negative", "limit-text", "tel-list"],
)
def test_validation_errors(sandbox_factory, change, message):
    server = sandbox_factory()
    data = ok_data(post(server, create_body(server, {**VENDOR_DOC, **change})))
    assert data["fail_details"] == {"validation_errors": [f"Document 1 (CusCode: CUST001): {message}"]}


def test_all_or_nothing(sandbox_factory):
    server = sandbox_factory()
    good = [{**VENDOR_DOC, "CusCode": f"GOOD{i}"} for i in range(3)]
    bad = {**VENDOR_DOC, "CusCode": "BAD", "CurCode": "XXX"}
    missing = {"CusCode": "HALF", "CusName": "Half"}
    data = ok_data(post(server, create_body(server, *good[:2], bad, good[2], missing)))
    assert data["summary"] == {"total_documents": 5, "inserted": 0, "failed": 2}
    assert data["failed_documents"] == ["BAD", "HALF"]
    assert data["successful_documents"] == []
    assert set(data["fail_details"]) == {"invalid_currencies", "compulsory_fields_missing"}
    assert data["fail_details"]["invalid_currencies"] == [
        "Document 3 (CusCode: BAD): Currency code 'XXX' does not exist"
    ]
    assert data["fail_details"]["compulsory_fields_missing"] == [
        "Document 5 (CusCode: HALF): Missing fields - AccountCode, CurCode, D_ay, CategoryCode"
    ]
    assert all(server.skybiz.customer(d["CusCode"]) is None for d in good)
    today = today_myt()
    assert ok_data(post(server, read_body(server, today, today)))["data"] == []
    data = ok_data(post(server, create_body(server, *good)))
    assert data["summary"] == {"total_documents": 3, "inserted": 3, "failed": 0}
    assert data["successful_documents"] == ["GOOD0", "GOOD1", "GOOD2"]


def test_created_customers_are_ordered_by_code_among_the_others(sandbox_factory):
    server = sandbox_factory()
    ok_data(
        post(server, create_body(server, {**VENDOR_DOC, "CusCode": "ZZZ"}, {**VENDOR_DOC, "CusCode": "AAA"}))
    )
    server.skybiz.mutate(5)
    today = today_myt()
    codes = [r["CusCode"] for r in ok_data(post(server, read_body(server, today, today)))["data"]]
    assert codes == sorted(codes) and {"AAA", "ZZZ"} <= set(codes) and len(codes) == 7


# -- the live dataset -----------------------------------------------------------------------------------


def test_edited_customers_leave_their_old_window(sandbox_factory):
    server = sandbox_factory()
    changed = server.skybiz.mutate(3)
    assert len(changed) == 3
    table = server.data.skybiz
    for code in changed:
        original = table.filter(pc.equal(table.column("CusCode"), code)).to_pylist()[0]
        day = original["DateTimeModified"].date().isoformat()
        rows = ok_data(post(server, read_body(server, day, day)))["data"]
        assert code not in {r["CusCode"] for r in rows}
        edited = server.skybiz.customer(code)
        assert edited["DateTimeModified"].date() == datetime.now(MYT).date()
        assert edited["CreditLimit"] == original["CreditLimit"] + 500.0
    today = today_myt()
    rows = ok_data(post(server, read_body(server, today, today)))["data"]
    assert set(changed) <= {r["CusCode"] for r in rows}


def test_mutation_switch_edits_while_serving(sandbox_factory):
    server = sandbox_factory(mutate_every_n_requests=2, mutate_count=3)
    today = today_myt()
    counts = [len(ok_data(post(server, read_body(server, today, today)))["data"]) for _ in range(4)]
    history_over = date.fromisoformat(today) > server.data.history_end
    assert counts == ([0, 0, 3, 3] if history_over else [counts[0], counts[0], counts[0] + 3, counts[0] + 3])
