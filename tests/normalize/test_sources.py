"""Each source's raw record → the common model: every mapped field, extras, issues and quarantine rules."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from pipelines.errors import NormalizeError
from pipelines.normalize import normalize_table
from tests.normalize.rows import EXTRACTED_AT, NOW, WINDOW_SKYBIZ, WINDOW_SMARTACC, raw_table, terms_table


def one(source: str, **fields: Any) -> dict[str, Any]:
    """Normalize one raw row and return the model row (fails if it was quarantined)."""
    out = normalize_table(source, raw_table(source, [fields]), terms_table(), now=NOW)
    assert out.quarantine.num_rows == 0, out.quarantine.to_pylist()
    row: dict[str, Any] = out.normalized.to_pylist()[0]
    return row


def quarantined(source: str, **fields: Any) -> dict[str, Any]:
    out = normalize_table(source, raw_table(source, [fields]), terms_table(), now=NOW)
    assert out.normalized.num_rows == 0
    row: dict[str, Any] = out.quarantine.to_pylist()[0]
    return row


def issues(row: dict[str, Any]) -> list[str]:
    return row["data_issues"].split(";") if row["data_issues"] else []


def extras(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(row["source_extras"]) if row["source_extras"] else {}


# -- SkyBiz -------------------------------------------------------------------------------------------------


def test_skybiz_record_maps_onto_the_model() -> None:
    row = one(
        "skybiz",
        CusCode=" CUST001 ",
        CusName="  Acme   Sdn Bhd ",
        Tel2="012-345 6789",
        Fax="03-2142 1299",
        Fax2="03-2142 1298",
        Contact="Tan Ah Kow",
        ContactTel="+6012-9876543",
        AreaCode="KL",
        SalesPersonCode="S03",
        MemberType="GOLD",
        StatusBadYN="1",
        DOB="1980-12-12",
        Sex="F",
    )
    assert row["customer_key"] == "skybiz:CUST001"
    assert (row["source_system"], row["source_customer_id"]) == ("skybiz", "CUST001")
    assert row["name"] == "Acme Sdn Bhd"
    assert row["address_line1"] == "No. 1, Jalan Ampang 50450 Kuala Lumpur"
    assert row["address_line2"] is None
    assert (row["town"], row["state"], row["country"], row["postcode"]) == (
        "Kuala Lumpur",
        "Kuala Lumpur",
        "MY",
        "50450",
    )
    assert (row["phone"], row["phone_2"], row["fax"]) == ("+60321421234", "+60123456789", "+60321421299")
    assert (row["contact_name"], row["contact_phone"], row["mobile"]) == ("Tan Ah Kow", "+60129876543", None)
    assert row["email"] == "accounts@acme.com.my"
    assert row["currency"] == "MYR"
    assert row["credit_limit"] == Decimal("5000.00")
    assert (row["payment_terms_days"], row["payment_terms_code"]) == (30, None)
    assert (row["area_code"], row["salesperson_code"], row["member_type"]) == ("KL", "S03", "GOLD")
    assert row["is_bad_debtor"] is True
    assert (row["is_active"], row["is_member"], row["source_version"], row["created_at"]) == (None,) * 4
    assert row["customer_since"] == date(2020, 1, 15)
    assert row["date_of_birth"] == date(1980, 12, 12)
    assert row["gender"] == "F"
    assert row["modified_at"] == datetime(2026, 4, 15, 2, 30, tzinfo=UTC)
    assert row["source_window"] == WINDOW_SKYBIZ.key
    assert row["extracted_at"] == EXTRACTED_AT
    assert row["data_issues"] is None
    assert extras(row) == {"Fax2": "03-2142 1298"}
    assert len(row["record_hash"]) == 64


@pytest.mark.parametrize(
    ("fields", "code", "column", "kept"),
    [
        ({"Tel": "TBA"}, "phone_unparseable", "phone", {"Tel": "TBA"}),
        ({"Tel2": "12345"}, "phone_2_unparseable", "phone_2", {"Tel2": "12345"}),
        ({"Fax": "-"}, "fax_unparseable", "fax", {"Fax": "-"}),
        ({"ContactTel": "N/A"}, "contact_phone_unparseable", "contact_phone", {"ContactTel": "N/A"}),
        ({"Email": "ali@gmail,com"}, "email_invalid", "email", {"Email": "ali@gmail,com"}),
        ({"Country": "Narnia", "State": ""}, "country_unrecognized", "country", {"Country": "Narnia"}),
        ({"CreditLimit": "lots"}, "credit_limit_unparseable", "credit_limit", {"CreditLimit": "lots"}),
        ({"TermCode": "30 days"}, "payment_terms_unparseable", "payment_terms_days", {"TermCode": "30 days"}),
        ({"StatusBadYN": "maybe"}, "is_bad_debtor_unrecognized", "is_bad_debtor", {"StatusBadYN": "maybe"}),
        ({"DOB": "Jan 5 2018"}, "date_of_birth_unparseable", "date_of_birth", {"DOB": "Jan 5 2018"}),
        (
            {"DateStart": "2020-13-45"},
            "customer_since_unparseable",
            "customer_since",
            {"DateStart": "2020-13-45"},
        ),
        ({"Sex": "-"}, "gender_unrecognized", "gender", {"Sex": "-"}),
    ],
    ids=[
        "tel",
        "tel2",
        "fax",
        "contact-tel",
        "email",
        "country",
        "credit-limit",
        "term",
        "bad-flag",
        "dob",
        "date-start",
        "sex",
    ],
)
def test_skybiz_unreadable_values_are_flagged_and_kept(
    fields: dict[str, str], code: str, column: str, kept: dict[str, str]
) -> None:
    row = one("skybiz", **fields)
    assert row[column] is None
    assert issues(row) == [code]
    assert extras(row) == kept


def test_skybiz_extension_goes_to_extras_without_an_issue() -> None:
    row = one("skybiz", Tel="03-2142 1234 ext. 12")
    assert row["phone"] == "+60321421234"
    assert row["data_issues"] is None
    assert extras(row) == {"Tel_extension": "12"}


@pytest.mark.parametrize(
    ("fields", "state", "country", "issue"),
    [
        ({"State": "Penang", "Country": ""}, "Pulau Pinang", "MY", None),
        ({"State": "N. Sembilan", "Country": "MY"}, "Negeri Sembilan", "MY", None),
        ({"State": "Atlantis", "Country": "Malaysia"}, "Atlantis", "MY", "state_unrecognized"),
        ({"State": "Central", "Country": "Singapore"}, "Central", "SG", None),
        ({"State": "", "Country": ""}, None, None, None),
    ],
    ids=[
        "empty-country-malaysian-state",
        "ns-alias",
        "unknown-state-in-malaysia",
        "foreign-state",
        "no-place",
    ],
)
def test_skybiz_state_and_country(
    fields: dict[str, str], state: str | None, country: str | None, issue: str | None
) -> None:
    row = one("skybiz", **fields)
    assert (row["state"], row["country"]) == (state, country)
    assert issues(row) == ([issue] if issue else [])


def test_skybiz_unknown_fields_are_kept_in_extras() -> None:
    row = one("skybiz", _unknown_fields='{"LoyaltyTier":"GOLD","Points":120}')
    assert extras(row) == {"_unknown_fields": {"LoyaltyTier": "GOLD", "Points": 120}}


@pytest.mark.parametrize(
    ("fields", "rule", "field", "offending"),
    [
        ({"CusCode": "   "}, "id_missing", "CusCode", "   "),
        ({"CusCode": None}, "id_missing", "CusCode", None),
        ({"CusName": "\t"}, "name_missing", "CusName", "\t"),
        ({"CusName": "X" * 201}, "name_too_long", "CusName", "X" * 201),
        ({"CurCode": ""}, "currency_missing", "CurCode", ""),
        ({"CurCode": "RMX"}, "currency_unknown", "CurCode", "RMX"),
        ({"DateTimeModified": ""}, "modified_at_missing", "DateTimeModified", ""),
        (
            {"DateTimeModified": "0000-00-00 00:00:00"},
            "modified_at_unparseable",
            "DateTimeModified",
            "0000-00-00 00:00:00",
        ),
        ({"CusName": "", "CurCode": "RMX"}, "name_missing", "CusName", ""),
    ],
    ids=[
        "id-blank",
        "id-absent",
        "name-blank",
        "name-too-long",
        "currency-blank",
        "currency-unknown",
        "modified-blank",
        "modified-zero-date",
        "first-rule-wins",
    ],
)
def test_skybiz_quarantine_rules(
    fields: dict[str, Any], rule: str, field: str, offending: str | None
) -> None:
    row = quarantined("skybiz", **fields)
    assert (row["rule"], row["field"], row["offending_value"]) == (rule, field, offending)
    assert row["source_system"] == "skybiz"
    assert row["source_window"] == WINDOW_SKYBIZ.key
    assert row["row_number"] == 0
    assert row["extracted_at"] == EXTRACTED_AT
    assert row["quarantined_at"] == NOW
    record = json.loads(row["raw_record"])
    assert record["CusName"] == fields.get("CusName", "Acme Sdn Bhd")
    assert record["_window"] == WINDOW_SKYBIZ.key


# -- SmartAcc -----------------------------------------------------------------------------------------------


def test_smartacc_record_maps_onto_the_model() -> None:
    row = one(
        "smartacc",
        AcCustomerNickName="Apex",
        BillingTel2="+60 3 7527 0645",
        BillingFax1="(03) 7527-0699",
        BillingFax2="03-7527 0698",
        MobileNo="012-345 6789",
        BillingContact1="Chan Swee Lian",
        BillingContact2="Lim Ah Beng",
        BillingHomePage="www.apexmurni.com",
        IsMember="Y",
        DateOfBirth="/Date(344707200000-0000)/",
        BusinessRegisterNumber="1081349-V",
        EInvoiceRegNumber_BRN="202001012345",
        EInvoiceRegTIN="C20880050010",
        TaxSLTRegistrationNo="W10-1808-31001234",
        EInvoiceRegSSTNumber="NA",
        AcTaxIDSST="SST10",
    )
    assert row["customer_key"] == "smartacc:300-A0001"
    assert (row["name"], row["nickname"]) == ("Apex Murni PLT", "Apex")
    assert [row[f"address_line{i}"] for i in range(1, 5)] == [
        "214, Jalan Stesen",
        "Taman Perindustrian Puchong",
        "47100 Puchong",
        "Selangor",
    ]
    assert (row["town"], row["state"], row["country"], row["postcode"]) == (
        "Puchong",
        "Selangor",
        "MY",
        "47100",
    )
    assert (row["phone"], row["phone_2"], row["fax"], row["mobile"]) == (
        "+60375270644",
        "+60375270645",
        "+60375270699",
        "+60123456789",
    )
    assert (row["email"], row["website"], row["contact_name"]) == (
        "info@apexmurni.com",
        "www.apexmurni.com",
        "Chan Swee Lian",
    )
    assert (row["currency"], row["credit_limit"], row["balance"]) == (
        "MYR",
        Decimal("5000.00"),
        Decimal("1234.50"),
    )
    assert (row["payment_terms_code"], row["payment_terms_days"]) == ("C30", 30)
    assert (row["salesperson_code"], row["area_code"], row["category_code"], row["price_code"]) == (
        "S10",
        "SEL",
        "CORPORATE",
        "1",
    )
    assert (row["is_active"], row["is_member"], row["is_bad_debtor"]) == (True, True, None)
    assert row["gender"] == "M"
    assert row["date_of_birth"] == date(1980, 12, 4)
    assert row["created_at"] == datetime(2024, 4, 30, 16, 0, tzinfo=UTC)
    assert row["customer_since"] == date(2024, 5, 1)
    assert row["modified_at"] == datetime(2026, 4, 15, 2, 30, tzinfo=UTC)
    assert row["source_version"] == 3
    assert (row["registration_no"], row["tax_id"], row["sst_no"]) == (
        "1081349-V",
        "C20880050010",
        "W10-1808-31001234",
    )
    assert row["data_issues"] is None
    kept = extras(row)
    assert kept["BillingFax2"] == "03-7527 0698"
    assert kept["BillingContact2"] == "Lim Ah Beng"
    assert kept["EInvoiceRegNumber_BRN"] == "202001012345"
    assert kept["EInvoiceRegSSTNumber"] == "NA"
    assert kept["AcTaxIDSST"] == "SST10"
    assert kept["AcCusUDGroupID"] == "NA"
    assert "MemberJoinDate" not in kept  # DateTime.MinValue means "not set"
    assert "BillingAddress4" not in kept and "AcCustomerName" not in kept


def test_smartacc_place_falls_back_to_the_einvoice_address() -> None:
    row = one(
        "smartacc",
        BillingAddress3="Taman Desa",
        BillingAddress4=None,
        EInvoiceAddressCityName="KLANG",
        AcEInvoiceAddressStateID="10",
        AcEInvoiceAddressCountryID="MYS",
    )
    assert (row["town"], row["state"], row["country"]) == ("Klang", "Selangor", "MY")
    assert extras(row)["AcEInvoiceAddressStateID"] == "10"


def test_smartacc_singapore_customer() -> None:
    row = one(
        "smartacc",
        BillingAddress3="Singapore 018956",
        BillingAddress4="Singapore",
        BillingPostalCode="018956",
        BillingTel1="6123 4567",
        AcCurrencyID="SGD",
    )
    assert (row["state"], row["country"], row["postcode"]) == (None, "SG", "018956")
    assert (row["phone"], row["currency"]) == ("+6561234567", "SGD")


@pytest.mark.parametrize(
    ("fields", "code", "column", "kept"),
    [
        ({"BillingTel1": "TBA"}, "phone_unparseable", "phone", {"BillingTel1": "TBA"}),
        ({"MobileNo": "012-345"}, "mobile_unparseable", "mobile", {"MobileNo": "012-345"}),
        ({"BillingEmail": "x @ yahoo.com"}, "email_invalid", "email", {"BillingEmail": "x @ yahoo.com"}),
        ({"Gender": "-"}, "gender_unrecognized", "gender", {"Gender": "-"}),
        ({"IsActive": "?"}, "is_active_unrecognized", "is_active", {"IsActive": "?"}),
        ({"Stamp": "x"}, "source_version_unparseable", "source_version", {"Stamp": "x"}),
        ({"CreateDate": "yesterday"}, "created_at_unparseable", "created_at", {"CreateDate": "yesterday"}),
        (
            {"DateOfBirth": "12/04/1980"},
            "date_of_birth_unparseable",
            "date_of_birth",
            {"DateOfBirth": "12/04/1980"},
        ),
        ({"LocalBalanceAmount": "n/a"}, "balance_unparseable", "balance", {"LocalBalanceAmount": "n/a"}),
        ({"AcTermID": "C999"}, "payment_terms_unknown", "payment_terms_days", {}),
    ],
    ids=["tel", "mobile", "email", "gender", "active", "stamp", "create-date", "dob", "balance", "term"],
)
def test_smartacc_unreadable_values_are_flagged_and_kept(
    fields: dict[str, str], code: str, column: str, kept: dict[str, str]
) -> None:
    row = one("smartacc", **fields)
    assert row[column] is None
    assert code in issues(row)
    for key, value in kept.items():
        assert extras(row)[key] == value


def test_smartacc_term_ids_match_case_insensitively_and_keep_the_code() -> None:
    row = one("smartacc", AcTermID=" c60 ")
    assert (row["payment_terms_code"], row["payment_terms_days"]) == ("c60", 60)


@pytest.mark.parametrize(
    ("fields", "rule", "field"),
    [
        ({"AcCustomerID": ""}, "id_missing", "AcCustomerID"),
        ({"AcCustomerName": None}, "name_missing", "AcCustomerName"),
        ({"AcCurrencyID": "RMX"}, "currency_unknown", "AcCurrencyID"),
        ({"EditDate": "/Date(-62135596800000-0000)/"}, "modified_at_missing", "EditDate"),
        ({"EditDate": "2026-04-15"}, "modified_at_unparseable", "EditDate"),
    ],
    ids=["id", "name", "currency", "edit-date-not-set", "edit-date-iso"],
)
def test_smartacc_quarantine_rules(fields: dict[str, Any], rule: str, field: str) -> None:
    row = quarantined("smartacc", **fields)
    assert (row["rule"], row["field"]) == (rule, field)
    assert row["source_window"] == WINDOW_SMARTACC.key


def test_smartacc_without_terms_snapshot_is_a_normalize_error() -> None:
    with pytest.raises(NormalizeError, match="Terms lookup snapshot"):
        normalize_table("smartacc", raw_table("smartacc", [{}]), None)


def test_terms_snapshot_without_term_days_is_a_normalize_error() -> None:
    broken = pa.table({"AcTermID": ["C30"]})
    with pytest.raises(NormalizeError, match="TermDays"):
        normalize_table("smartacc", raw_table("smartacc", [{}]), broken)


def test_unknown_source_is_a_normalize_error() -> None:
    with pytest.raises(NormalizeError, match="unknown source"):
        normalize_table("quickbooks", raw_table("skybiz", [{}]))
