"""Client-side validation mirrors every SkyBiz create rule and names the field of each problem."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.errors import PushValidationError
from pipelines.push.validate import CreateRules, validate_document, validate_documents

RULES = CreateRules.load(["RM", "SGD", "USD"])


def doc(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "AccountCode": "AR-001",
        "CusCode": "SA-300-A0001",
        "CusName": "Acme Sdn Bhd",
        "CurCode": "RM",
        "D_ay": 30,
        "CategoryCode": "RETAIL",
        "CreditLimit": 100.0,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_a_valid_document_has_no_problems() -> None:
    assert validate_document(doc(), RULES) == []


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"AccountCode": None}, "AccountCode", "Missing fields - AccountCode"),
        ({"CusCode": ""}, "CusCode", "compulsory field missing"),
        ({"CusName": "  "}, "CusName", "compulsory field missing"),
        ({"CurCode": None}, "CurCode", "compulsory field missing"),
        ({"D_ay": None}, "D_ay", "compulsory field missing"),
        ({"CategoryCode": None}, "CategoryCode", "compulsory field missing"),
        ({"CurCode": "EUR"}, "CurCode", "Currency code 'EUR' does not exist"),
        ({"CusName": "x" * 101}, "CusName", "101 characters; SkyBiz takes at most 100"),
        ({"CusCode": "SA-" + "9" * 18}, "CusCode", "at most 20"),
        ({"CusCode": "sa-1"}, "CusCode", "does not match"),
        ({"Email": "a" * 101}, "Email", "at most 100"),
        ({"D_ay": "30"}, "D_ay", "whole number"),
        ({"D_ay": -1}, "D_ay", "below 0"),
        ({"CreditLimit": -5.0}, "CreditLimit", "below 0"),
        ({"CreditLimit": "lots"}, "CreditLimit", "must be a number"),
        ({"Tel": 31234567}, "Tel", "must be text"),
        ({"FinCatCode": "B55"}, "FinCatCode", "set by SkyBiz itself"),
        ({"Nickname": "Ace"}, "Nickname", "not a SkyBiz customer create field"),
    ],
    ids=[
        "no-account",
        "empty-cuscode",
        "blank-name",
        "no-currency",
        "no-term",
        "no-category",
        "unknown-currency",
        "name-too-long",
        "code-too-long",
        "code-pattern",
        "email-too-long",
        "term-as-text",
        "negative-term",
        "negative-credit",
        "credit-not-number",
        "tel-not-text",
        "fincatcode",
        "unknown-field",
    ],
)
def test_each_rule_names_its_field(changes: dict[str, Any], field: str, text: str) -> None:
    problems = validate_document(doc(**changes), RULES, record_key="smartacc:X")
    assert problems, "the document should be refused"
    assert {p.field for p in problems} == {field}
    assert all(p.message.startswith(f"{field}: ") for p in problems)
    assert any(text in p.message for p in problems)
    assert all(isinstance(p, PushValidationError) and p.record_key == "smartacc:X" for p in problems)


def test_all_missing_compulsory_fields_are_listed_in_vendor_order() -> None:
    problems = validate_document({"CusCode": "SA-1"}, RULES)
    assert [p.field for p in problems] == ["AccountCode", "CusName", "CurCode", "D_ay", "CategoryCode"]
    assert "Missing fields - AccountCode, CusName, CurCode, D_ay, CategoryCode" in problems[0].message


def test_the_currency_table_is_configurable() -> None:
    assert validate_document(doc(CurCode="EUR"), CreateRules.load(["RM", "EUR"])) == []


def test_a_code_used_twice_refuses_every_holder_and_a_known_code_is_refused() -> None:
    problems = validate_documents(
        [("k1", doc(CusCode="SA-1")), ("k2", doc(CusCode="SA-1")), ("k3", doc(CusCode="SA-3"))],
        RULES,
        existing_codes={"sa-3"},
    )
    assert "Duplicate CusCode found in the same batch" in problems["k1"][0].message
    assert "Duplicate CusCode found in the same batch" in problems["k2"][0].message
    assert "Customer code already exists" in problems["k3"][0].message
