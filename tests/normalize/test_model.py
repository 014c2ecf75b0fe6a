"""What the shared assembly guarantees for every source: schemas, duplicates, the invariant, record_hash."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from pipelines.contracts import arrow_schema, load_contract, pandas_dtypes
from pipelines.normalize import normalize_frame, normalize_table
from pipelines.normalize.model import CANONICAL_NULL, CANONICAL_SEPARATOR, HASH_EXCLUDED, canonical_text
from tests.normalize.rows import NOW, raw_frame, raw_table, terms_table

SOURCES = ("skybiz", "smartacc")


def run(source: str, rows: list[dict[str, Any]]) -> tuple[pa.Table, pa.Table]:
    out = normalize_table(source, raw_table(source, rows), terms_table(), now=NOW)
    return out.normalized, out.quarantine


@pytest.mark.parametrize("source", SOURCES)
def test_output_schemas_are_the_contracts(source: str) -> None:
    normalized, quarantine = run(source, [{}, {"CusName": "", "AcCustomerName": ""}])
    assert normalized.schema.equals(arrow_schema(load_contract("customer")), check_metadata=True)
    assert quarantine.schema.equals(arrow_schema(load_contract("customer_quarantine")), check_metadata=True)
    assert (normalized.num_rows, quarantine.num_rows) == (1, 1)


@pytest.mark.parametrize("source", SOURCES)
def test_empty_window_gives_empty_tables_of_the_contract(source: str) -> None:
    normalized, quarantine = run(source, [])
    assert (normalized.num_rows, quarantine.num_rows) == (0, 0)
    assert normalized.schema.equals(arrow_schema(load_contract("customer")))


@pytest.mark.parametrize("source", SOURCES)
def test_frames_are_not_mutated_and_come_back_with_contract_dtypes(source: str) -> None:
    raw = raw_frame(source, [{}, {"CusCode": " ", "AcCustomerID": " "}])
    before = raw.copy(deep=True)
    terms = terms_table().to_pandas()
    terms_before = terms.copy(deep=True)
    normalized, quarantine = normalize_frame(source, raw, terms, now=NOW)
    pd.testing.assert_frame_equal(raw, before)
    pd.testing.assert_frame_equal(terms, terms_before)
    assert dict(normalized.dtypes) == pandas_dtypes(load_contract("customer"))
    assert dict(quarantine.dtypes) == pandas_dtypes(load_contract("customer_quarantine"))
    assert (len(normalized), len(quarantine)) == (1, 1)
    assert quarantine["rule"].tolist() == ["id_missing"]


# -- duplicates ---------------------------------------------------------------------------------------------


def test_duplicate_keys_keep_the_newest_modification() -> None:
    normalized, quarantine = run(
        "skybiz",
        [
            {"CusCode": "C1", "CusName": "Old", "DateTimeModified": "2026-04-10 09:00:00"},
            {"CusCode": " C1 ", "CusName": "New", "DateTimeModified": "2026-04-12 09:00:00"},
            {"CusCode": "C1", "CusName": "Middle", "DateTimeModified": "2026-04-11 09:00:00"},
            {"CusCode": "C2", "CusName": "Other"},
        ],
    )
    assert normalized.column("name").to_pylist() == ["New", "Other"]
    assert quarantine.column("rule").to_pylist() == ["duplicate_superseded"] * 2
    assert quarantine.column("row_number").to_pylist() == [0, 2]
    assert quarantine.column("field").to_pylist() == ["CusCode", "CusCode"]
    assert quarantine.column("offending_value").to_pylist() == ["C1", "C1"]


def test_duplicate_tie_on_time_is_broken_by_stamp_then_by_the_later_row() -> None:
    same = "/Date(1776220200000-0000)/"
    normalized, quarantine = run(
        "smartacc",
        [
            {"AcCustomerID": "A", "AcCustomerName": "stamp 5", "EditDate": same, "Stamp": "5"},
            {"AcCustomerID": "A", "AcCustomerName": "stamp 4", "EditDate": same, "Stamp": "4"},
            {"AcCustomerID": "B", "AcCustomerName": "first", "EditDate": same, "Stamp": "1"},
            {"AcCustomerID": "B", "AcCustomerName": "second", "EditDate": same, "Stamp": "1"},
        ],
    )
    assert sorted(normalized.column("name").to_pylist()) == ["second", "stamp 5"]
    assert sorted(quarantine.column("row_number").to_pylist()) == [1, 2]


def test_quarantined_rows_do_not_take_part_in_duplicate_handling() -> None:
    normalized, quarantine = run(
        "skybiz",
        [
            {"CusCode": "C1", "CusName": "Good", "DateTimeModified": "2026-04-10 09:00:00"},
            {
                "CusCode": "C1",
                "CusName": "Newer but no currency",
                "CurCode": "",
                "DateTimeModified": "2026-04-20 09:00:00",
            },
        ],
    )
    assert normalized.column("name").to_pylist() == ["Good"]
    assert quarantine.column("rule").to_pylist() == ["currency_missing"]


@pytest.mark.parametrize("source", SOURCES)
def test_every_raw_row_lands_exactly_once(source: str) -> None:
    rows: list[dict[str, Any]] = [
        {},
        {"CusCode": "", "AcCustomerID": ""},
        {"CusName": "", "AcCustomerName": ""},
        {"CurCode": "???", "AcCurrencyID": "???"},
        {"CusCode": "X2", "AcCustomerID": "X2"},
        {"CusCode": "X2", "AcCustomerID": "X2"},
    ]
    normalized, quarantine = run(source, rows)
    assert normalized.num_rows + quarantine.num_rows == len(rows)
    landed = sorted(quarantine.column("row_number").to_pylist())
    assert len(set(landed)) == len(landed)
    assert (
        normalized.column("customer_key").unique().to_pylist()
        == normalized.column("customer_key").to_pylist()
    )


# -- record_hash --------------------------------------------------------------------------------------------


def hashes(source: str, rows: list[dict[str, Any]]) -> list[str]:
    normalized, _ = run(source, rows)
    return list(normalized.column("record_hash").to_pylist())


def test_record_hash_is_sha256_of_the_canonical_text() -> None:
    normalized, _ = run("skybiz", [{}])
    contract = load_contract("customer")
    columns = {name: normalized.column(name).combine_chunks() for name in normalized.column_names}
    text = canonical_text(columns, contract).to_pylist()[0]
    fields = text.split(CANONICAL_SEPARATOR)
    business = [c.name for c in contract.columns if c.name not in HASH_EXCLUDED]
    assert len(fields) == len(business)
    value = dict(zip(business, fields, strict=True))
    assert value["customer_key"] == "skybiz:CUST001"
    assert value["credit_limit"] == "5000.00"
    assert value["customer_since"] == str((date(2020, 1, 15) - date(1970, 1, 1)).days)
    assert value["is_bad_debtor"] == "false"
    assert value["nickname"] == CANONICAL_NULL
    assert normalized.column("record_hash").to_pylist() == [hashlib.sha256(text.encode()).hexdigest()]


def test_control_characters_cannot_reach_the_canonical_text() -> None:
    normalized, _ = run("skybiz", [{"CusName": "Acme\x1fSdn\x1eBhd\x00"}])
    assert normalized.column("name").to_pylist() == ["Acme Sdn Bhd"]


def test_record_hash_is_pinned_for_a_fixed_record() -> None:
    # Any change to the canonical form or to the cleaning of this record changes every stored hash:
    # do it on purpose, and update this value with it.
    # Contract 1.1.0 added the e-invoice columns (null for SkyBiz): a new canonical form, on purpose.
    assert hashes("skybiz", [{}]) == ["09c7b058549b25a5bfd5cf27739ca1d7852c7ab943b957128946ad3c7f95a878"]


@pytest.mark.parametrize("source", SOURCES)
def test_record_hash_is_stable_across_runs_and_lineage(source: str) -> None:
    first = hashes(source, [{}])
    again = hashes(source, [{}])
    moved = hashes(
        source,
        [
            {
                "_extracted_at": NOW,
                "_request_id": "other",
                "_page": 9,
                "DateTimeModified": "2026-04-20 08:00:00",
                "EditDate": "/Date(1776643200000-0000)/",
            }
        ],
    )
    assert first == again == moved


@pytest.mark.parametrize(
    ("source", "change"),
    [
        ("skybiz", {"CusName": "Acme Sdn. Bhd."}),
        ("skybiz", {"Tel": "03-2142 1235"}),
        ("skybiz", {"CreditLimit": "5000.01"}),
        ("skybiz", {"Fax2": "03-1111 2222"}),
        ("skybiz", {"Email": "not-an-email"}),
        ("skybiz", {"_unknown_fields": '{"New":"1"}'}),
        ("smartacc", {"Stamp": "4"}),
        ("smartacc", {"IsActive": "N"}),
        ("smartacc", {"CreateDate": "/Date(1714492800001-0000)/"}),
        ("smartacc", {"Notes": "call first"}),
    ],
    ids=[
        "name",
        "phone",
        "amount",
        "extras-field",
        "issue",
        "unknown-field",
        "stamp",
        "flag",
        "created-ms",
        "notes",
    ],
)
def test_record_hash_changes_with_any_business_value(source: str, change: dict[str, str]) -> None:
    assert hashes(source, [{}]) != hashes(source, [change])


def test_canonical_text_separates_null_from_the_text_null() -> None:
    a = hashes("skybiz", [{"Contact": "null"}])
    b = hashes("skybiz", [{"Contact": ""}])
    assert a != b
