"""The declarative mapping: CusCode derivation, field transforms, translations, defaults."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from pipelines.errors import ContractError
from pipelines.push.mapping import (
    build_document,
    e164_to_local,
    load_mapping,
    parse_mapping,
    payload_hash,
)
from tests.push.helpers import smartacc_row

MAPPING = load_mapping()
CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]*$")


@pytest.mark.parametrize(
    ("source_id", "expected"),
    [
        ("300-A0001", "SA-300-A0001"),
        ("12345", "SA-12345"),
        (" 300-B0002 ", "SA-300-B0002"),
        ("A" * 17, "SA-" + "A" * 17),
    ],
    ids=["smartacc-style", "numeric", "trimmed", "longest-verbatim"],
)
def test_cus_code_keeps_a_readable_id(source_id: str, expected: str) -> None:
    assert MAPPING.cus_code.derive(source_id) == expected


@pytest.mark.parametrize(
    "source_id",
    ["A" * 18, "300-a0001", "300/A 0001", "Pelanggan #12 (KL)", "ÅSA-1"],
    ids=["too-long", "lower-case", "odd-characters", "free-text", "non-ascii"],
)
def test_cus_code_hashes_ids_that_cannot_be_kept(source_id: str) -> None:
    code = MAPPING.cus_code.derive(source_id)
    assert code.startswith("SX-")
    assert len(code) <= 20
    assert CODE.match(code)
    assert MAPPING.cus_code.derive(source_id) == code  # a retry computes the same code


def test_cus_codes_are_collision_free_over_many_ids() -> None:
    ids = [f"300-{c}{n:04d}" for c in "ABC" for n in range(2000)]
    ids += [i.lower() for i in ids]  # case-differing twins take the hashed branch
    ids += ["X" * 18 + str(n) for n in range(2000)]
    codes = {MAPPING.cus_code.derive(i) for i in ids}
    assert len(codes) == len(ids)
    assert all(len(c) <= 20 for c in codes)


def test_document_from_a_smartacc_customer() -> None:
    mapped = build_document(smartacc_row(7), MAPPING)
    doc = mapped.document
    assert mapped.problems == ()
    assert doc["CusCode"] == "SA-300-T00007"
    assert doc["AccountCode"] == "AR-001"
    assert doc["CurCode"] == "RM"  # ISO MYR → SkyBiz RM
    assert doc["D_ay"] == 30 and isinstance(doc["D_ay"], int)
    assert doc["CategoryCode"] == "WHOLESALE"
    assert doc["CreditLimit"] == 5000.0 and isinstance(doc["CreditLimit"], float)
    assert doc["Tel"] == "03-70000007"
    assert doc["Tel2"] == "012-0000007"  # phone_2 empty, so the mobile number
    assert doc["Country"] == "Malaysia"
    assert doc["Address1"] == "7 Jalan SS2/7" and doc["Address2"] == "Seksyen 2"
    assert doc["GSTNo"] == "GST000007"  # a SmartAcc field the model keeps in source_extras
    assert "Address3" not in doc and "Fax" not in doc  # empty optional fields are left out
    assert "FinCatCode" not in doc


def test_unknown_group_falls_to_the_default_category_and_na_is_retail() -> None:
    assert build_document(smartacc_row(1, category_code="ZZZ"), MAPPING).document["CategoryCode"] == "RETAIL"
    assert build_document(smartacc_row(1, category_code="NA"), MAPPING).document["CategoryCode"] == "RETAIL"
    assert build_document(smartacc_row(1, category_code="GOVT"), MAPPING).document["CategoryCode"] == "GOVT"


def test_run_defaults_override_the_mapping() -> None:
    doc = build_document(smartacc_row(1), MAPPING, {"AccountCode": "AR-900"}).document
    assert doc["AccountCode"] == "AR-900"


def test_missing_term_has_no_default_and_unreadable_values_are_problems() -> None:
    assert "D_ay" not in build_document(smartacc_row(1, payment_terms_days=None), MAPPING).document
    mapped = build_document(smartacc_row(1, credit_limit="lots"), MAPPING)
    assert "CreditLimit" not in mapped.document
    assert [p.field for p in mapped.problems] == ["CreditLimit"]


def test_other_currencies_pass_through_untranslated() -> None:
    assert build_document(smartacc_row(1, currency="SGD"), MAPPING).document["CurCode"] == "SGD"


@pytest.mark.parametrize(
    ("e164", "local"),
    [
        ("+60312345678", "03-12345678"),
        ("+60123456789", "012-3456789"),
        ("+601112345678", "011-12345678"),
        ("+6082123456", "082-123456"),
        ("+6045551234", "04-5551234"),
        ("+6561234567", "+6561234567"),
    ],
    ids=["kl-landline", "mobile", "mobile-11", "sarawak", "penang", "singapore-unchanged"],
)
def test_e164_to_local(e164: str, local: str) -> None:
    assert e164_to_local(e164) == local


def test_payload_hash_is_stable_and_content_sensitive() -> None:
    a = build_document(smartacc_row(3), MAPPING).document
    b = build_document(smartacc_row(3), MAPPING).document
    c = build_document(smartacc_row(3, credit_limit=Decimal("1.00")), MAPPING).document
    assert payload_hash(a) == payload_hash(b) != payload_hash(c)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"FinCatCode": {"from": "name"}}, "not a SkyBiz create field"),
        ({"CusName": {"from": "nom"}}, "reads unknown"),
        ({"CusName": {"from": "name", "transform": ["shout"]}}, "unknown transform"),
        ({"CusName": {"from": "name", "translate": "nope"}}, "unknown translation"),
    ],
    ids=["unknown-target", "unknown-column", "unknown-transform", "unknown-translation"],
)
def test_a_broken_mapping_is_refused(fields: dict[str, Any], message: str) -> None:
    doc = {
        "kind": "Mapping",
        "source": {"contract": "customer"},
        "target": {"contract": "skybiz_customer_create"},
        "cus_code": {"prefix": "SA-", "hashed_prefix": "SX-"},
        "fields": fields,
    }
    with pytest.raises(ContractError, match=message):
        parse_mapping(doc)
