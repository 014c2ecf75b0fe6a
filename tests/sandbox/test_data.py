"""The sandbox generator: deterministic, vendor-shaped, Malaysian, with known overlap and known dirt."""

from __future__ import annotations

import re
from datetime import date, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipelines.contracts import load_contract
from skysmart_sandbox.data import (
    SKYBIZ_CURRENCIES,
    SKYBIZ_READ_FIELDS,
    SMARTACC_FIELDS,
    generate,
)
from tests.fixtures.sandbox import sandbox_data

SIZE = 2_000
CANONICAL_STATES = {
    "Johor", "Kedah", "Kelantan", "Melaka", "Negeri Sembilan", "Pahang", "Pulau Pinang", "Perak", "Perlis",
    "Selangor", "Terengganu", "Sabah", "Sarawak", "Kuala Lumpur", "Labuan", "Putrajaya",
}  # fmt: skip


@pytest.fixture(scope="module")
def data():
    return sandbox_data(SIZE, 7)


def _contract_fields(name: str) -> list[str]:
    return [c for c in load_contract(name).column_names if not c.startswith("_")]


def test_same_seed_same_data_and_other_seed_other_data():
    first, again, other = generate(300, 11), generate(300, 11), generate(300, 12)
    assert first.skybiz.equals(again.skybiz)
    assert first.smartacc.equals(again.smartacc)
    assert first.matches.equals(again.matches)
    assert first.defects.equals(again.defects)
    assert not first.skybiz.column("CusName").equals(other.skybiz.column("CusName"))


@pytest.mark.parametrize("size", [10, 1, 777])
def test_sizes(size):
    d = generate(size, 3)
    assert d.skybiz.num_rows == size
    assert d.smartacc.num_rows == size


def test_skybiz_columns_follow_the_vendor_document(data):
    assert data.skybiz.column_names[:25] == list(SKYBIZ_READ_FIELDS)
    assert data.skybiz.column_names[:25] == _contract_fields("skybiz_customer_raw")
    assert data.skybiz.column_names[25:] == ["AccountCode", "CategoryCode", "FinCatCode"]
    schema = data.skybiz.schema
    assert schema.field("CreditLimit").type == pa.float64()
    assert schema.field("TermCode").type == pa.int32()
    assert schema.field("DateTimeModified").type == pa.timestamp("s")
    strings = [f for f in schema if f.name not in ("CreditLimit", "TermCode", "DateTimeModified")]
    assert all(f.type == pa.string() for f in strings)
    # SkyBiz emits every stored field: strings are "" when empty, never null.
    assert all(data.skybiz.column(f.name).null_count == 0 for f in strings)
    assert set(data.skybiz.column("FinCatCode").to_pylist()) == {"B55"}


def test_smartacc_columns_are_the_93_acustomer_fields_in_order(data):
    assert len(SMARTACC_FIELDS) == 93
    assert data.smartacc.column_names == list(SMARTACC_FIELDS)
    assert data.smartacc.column_names == _contract_fields("smartacc_customer_raw")
    schema = data.smartacc.schema
    for name in ("CreateDate", "EditDate", "DateOfBirth", "MemberJoinDate", "EInvoiceTINValidateDateTime"):
        assert schema.field(name).type == pa.timestamp("ms")
    assert schema.field("Stamp").type == pa.int64()
    assert schema.field("LocalCreditLimit").type == pa.float64()
    # Null (absent property) and "" (kept empty string) both occur in optional strings.
    notes = data.smartacc.column("BillingFax2")
    assert notes.null_count > 0
    assert pc.sum(pc.equal(notes, "")).as_py() > 0


def test_codes_unique_sorted_and_short(data):
    codes = data.skybiz.column("CusCode").to_pylist()
    assert codes == sorted(codes) and len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"C\d{6,}", c) for c in codes)
    ids = data.smartacc.column("AcCustomerID").to_pylist()
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"300-[A-Z]\d{4,}", i) and len(i) <= 20 for i in ids)
    assert data.smartacc.column("AcCustomerIDParentID").to_pylist() == ids


def test_times_fall_in_the_history_and_create_precedes_edit(data):
    lo = datetime(2021, 1, 1)
    hi = datetime(2026, 10, 31, 23, 59, 59, 999000)
    modified = data.skybiz.column("DateTimeModified")
    assert pc.min(modified).as_py() >= lo and pc.max(modified).as_py() <= hi
    edit, create = data.smartacc.column("EditDate"), data.smartacc.column("CreateDate")
    assert pc.min(edit).as_py() >= lo and pc.max(edit).as_py() <= hi
    assert pc.all(pc.less_equal(create, edit)).as_py()
    # Spread over the range, not bunched: every year of the history has customers.
    years = set(pc.year(modified).to_pylist())
    assert years == {2021, 2022, 2023, 2024, 2025, 2026}


def test_custom_history_range():
    d = generate(200, 5, history_start=date(2024, 2, 1), history_end=date(2024, 2, 29))
    modified = d.skybiz.column("DateTimeModified")
    assert pc.min(modified).as_py() >= datetime(2024, 2, 1)
    assert pc.max(modified).as_py() < datetime(2024, 3, 1)
    assert (d.history_start, d.history_end) == (date(2024, 2, 1), date(2024, 2, 29))


def test_overlap_ground_truth_is_the_same_business(data):
    assert data.matches.num_rows == round(SIZE * 0.3)
    sky = {r["CusCode"]: r for r in data.skybiz.select(["CusCode", "CusName", "CurCode"]).to_pylist()}
    sma = {
        r["AcCustomerID"]: r
        for r in data.smartacc.select(["AcCustomerID", "AcCustomerName", "AcCurrencyID"]).to_pylist()
    }
    dirty = {(d["system"], d["id"]) for d in data.defects.to_pylist()}
    dirty |= {("skybiz", v["skybiz_code"]) for v in data.twin_variants.to_pylist()}  # typed differently
    compared = 0
    for pair in data.matches.to_pylist():
        a, b = sky[pair["skybiz_code"]], sma[pair["smartacc_id"]]
        if ("skybiz", a["CusCode"]) in dirty or ("smartacc", b["AcCustomerID"]) in dirty:
            continue
        assert a["CusName"] == b["AcCustomerName"]
        assert a["CurCode"] == b["AcCurrencyID"]
        compared += 1
    assert compared > 0.75 * data.matches.num_rows
    assert len(set(data.matches.column("skybiz_code").to_pylist())) == data.matches.num_rows
    assert len(set(data.matches.column("smartacc_id").to_pylist())) == data.matches.num_rows


def test_no_overlap_and_no_dirt_when_asked():
    d = generate(300, 9, overlap=0.0, dirty_rate=0.0)
    assert d.matches.num_rows == 0
    assert d.defects.num_rows == 0
    assert set(d.skybiz.column("CurCode").to_pylist()) <= set(SKYBIZ_CURRENCIES)


def test_dirty_share_and_each_defect_is_real(data):
    systems = data.defects.column("system")
    per_system = {s: pc.sum(pc.equal(systems, s)).as_py() for s in ("skybiz", "smartacc")}
    # SkyBiz also carries the quarantined-currency twins (twin_variants), recorded as currency_unknown.
    quarantined_twins = sum(v == "quarantined_currency" for v in data.twin_variants["variant"].to_pylist())
    assert quarantined_twins > 0
    assert per_system == {"skybiz": round(SIZE * 0.03) + quarantined_twins, "smartacc": round(SIZE * 0.03)}
    sky = {r["CusCode"]: r for r in data.skybiz.to_pylist()}
    sma = {r["AcCustomerID"]: r for r in data.smartacc.to_pylist()}
    kinds = set()
    for d in data.defects.to_pylist():
        row = (sky if d["system"] == "skybiz" else sma)[d["id"]]
        value = row[d["field"]]
        kinds.add(d["defect"])
        if d["defect"] == "name_blank":
            assert value.strip() == ""
        elif d["defect"].endswith("_whitespace"):
            assert value != value.strip()
        elif d["defect"] == "currency_unknown":
            assert value not in SKYBIZ_CURRENCIES
        elif d["defect"] == "email_invalid":
            assert not re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", value)
        elif d["defect"] == "date_unparseable":
            with pytest.raises(ValueError):
                date.fromisoformat(value)
        elif d["defect"] == "state_spelling":
            assert value not in CANONICAL_STATES
    assert {"name_blank", "currency_unknown", "state_spelling", "phone_unparseable"} <= kinds


def test_malaysian_realism(data):
    names = data.skybiz.column("CusName").to_pylist() + data.smartacc.column("AcCustomerName").to_pylist()
    text = "\n".join(names)
    for marker in (" bin ", " binti ", " a/l ", " a/p ", "Sdn Bhd", "Enterprise", "Kedai "):
        assert marker in text, marker
    phones = data.skybiz.column("Tel").to_pylist() + data.smartacc.column("MobileNo").to_pylist()
    styles = {
        "dash": r"0\d{1,2}-\d{6,8}",
        "dash space": r"0\d{1,2}-\d{3,4} \d{4}",
        "plus": r"\+60\d{1,2}-\d{6,8}",
        "bare 60": r"60\d{8,10}",
        "parens": r"\(0\d{1,2}\) \d{2,4} \d{4}",
    }
    for style, pattern in styles.items():
        assert any(re.fullmatch(pattern, p) for p in phones), style
    postcodes = [
        r["PostCode"]
        for r in data.skybiz.select(["PostCode", "Country"]).to_pylist()
        if r["Country"] != "Singapore"
    ]
    assert sum(bool(re.fullmatch(r"\d{5}", p)) for p in postcodes) > 0.95 * len(postcodes)
    assert any(
        re.fullmatch(r"\d{6}-\d{2}-\d{4}", n or "") for n in data.smartacc.column("IdentityNo").to_pylist()
    )
    brn = [b for b in data.smartacc.column("BusinessRegisterNumber").to_pylist() if b]
    assert any(re.fullmatch(r"\d{12}", b) for b in brn) and any(
        re.fullmatch(r"\d{5,7}-[A-Z]", b) for b in brn
    )
    tins = [t for t in data.smartacc.column("EInvoiceRegTIN").to_pylist() if t]
    assert any(t.startswith("C") for t in tins) and any(t.startswith("IG") for t in tins)
    currencies = data.skybiz.column("CurCode").value_counts().to_pylist()
    counts = {c["values"]: c["counts"] for c in currencies}
    assert counts["RM"] > 0.85 * SIZE and counts.get("SGD", 0) > 0 and counts.get("USD", 0) > 0


def test_lookups(data):
    terms = {r["AcTermID"]: r["TermDays"] for r in data.terms.to_pylist()}
    assert terms["CASH"] == 0 and terms["C30"] == 30 and terms["C90"] == 90
    assert data.terms.schema.field("TermDays").type == pa.int32()
    assert set(data.smartacc.column("AcTermID").to_pylist()) <= set(terms)
    assert set(data.skybiz.column("TermCode").to_pylist()) <= set(terms.values())
    groups = set(data.customer_groups.column("AcCusGroupID").to_pylist())
    assert {"RETAIL", "WHOLESALE", "CORPORATE", "GOVT", "NA"} <= groups
    assert set(data.smartacc.column("AcCusGroupID").to_pylist()) <= groups
    areas = set(data.customer_areas.column("AcAreaID").to_pylist())
    assert {"KL", "SEL", "PNG", "JHR", "NA"} <= areas
    assert set(data.smartacc.column("AcAreaID").to_pylist()) <= areas
    assert set(data.smartacc.column("AcCusUDGroupID").to_pylist()) <= set(
        data.customer_ud_groups.column("AcCusUDGroupID").to_pylist()
    )
    assert data.skybiz_currencies[:3] == ("RM", "SGD", "USD")


def test_bad_arguments():
    with pytest.raises(ValueError):
        generate(0)
    with pytest.raises(ValueError):
        generate(10, overlap=1.5)
    with pytest.raises(ValueError):
        generate(10, history_start=date(2024, 1, 2), history_end=date(2024, 1, 1))
