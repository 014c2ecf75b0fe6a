"""The e-invoice rules: read from the contract, applied column-wide, one reason per broken rule."""

from __future__ import annotations

import dataclasses
import re
from datetime import date
from typing import Any, Literal

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.contracts import load_contract
from pipelines.einvoice import COLUMNS, ReadinessRule, load_spec
from pipelines.einvoice.rules import EinvoiceFields, assess, classify_tins, normalize_tin, nric_date_ok
from pipelines.errors import ContractError

SPEC = load_spec()
TEXT = pa.large_string()
SURROGATES: tuple[Literal["Cs"]] = ("Cs",)  # a Unicode category, as hypothesis types it

# A customer SmartAcc can e-invoice today: every field right.
GOOD: dict[str, Any] = {
    "tin": "C20880050010",
    "id_type": "BRN",
    "BRN": "202001012345",
    "NRIC": None,
    "PASSPORT": None,
    "ARMY": None,
    "id_number": None,
    "sst": "W10-1808-31001234",
    "address_line": "12, Jalan Stesen",
    "city": "Klang",
    "state_code": "10",
    "country_code": "MYS",
    "validated": "Y",
    "state": "Selangor",
    "country": "MY",
}


def run(*rows: dict[str, Any]) -> tuple[dict[str, list[Any]], dict[str, list[bool]], dict[str, list[bool]]]:
    """Assess rows given as changes to :data:`GOOD`; the columns, the issues and the reasons as lists."""
    full = [{**GOOD, **r} for r in rows]

    def col(name: str) -> pa.Array:
        return pa.array([r[name] for r in full], TEXT)

    fields = EinvoiceFields(
        tin=col("tin"),
        id_type=col("id_type"),
        id_numbers={t: col(t) for t in ("BRN", "NRIC", "PASSPORT", "ARMY")},
        id_number=col("id_number"),
        sst=col("sst"),
        address_line=col("address_line"),
        city=col("city"),
        state_code=col("state_code"),
        country_code=col("country_code"),
        validated=col("validated"),
        state=col("state"),
        country=col("country"),
    )
    found = assess(fields, SPEC)
    return (
        {k: v.to_pylist() for k, v in found.columns.items()},
        {k: v.to_pylist() for k, v in found.issues},
        {k: v.to_pylist() for k, v in found.reasons.items()},
    )


def reasons_of(**change: Any) -> list[str]:
    columns, _, _ = run(change)
    text = columns["einvoice_reasons"][0]
    return [] if text is None else text.split(";")


def issues_of(**change: Any) -> list[str]:
    _, issues, _ = run(change)
    return [code for code, mask in issues.items() if mask[0]]


# -- the rules come from the contract ------------------------------------------------------------------


def test_the_rules_are_the_contracts() -> None:
    contract = load_contract("customer")
    assert set(COLUMNS) <= set(contract.column_names)
    assert SPEC.tin_pattern == SPEC.generated_tin_pattern()
    assert set(SPEC.tin_digits) | {"EI"} == set(SPEC.tin_kinds)
    assert SPEC.general_tins.keys() == {"EI00000000010", "EI00000000020", "EI00000000030", "EI00000000040"}
    assert SPEC.state_codes["Selangor"] == "10" and SPEC.state_codes["Putrajaya"] == "16"
    assert SPEC.state_not_applicable == "17"
    state_names = next(c for c in contract.column("state").checks if c.rule == "validValues")
    assert set(SPEC.state_codes) == set(state_names.params["validValues"])
    assert len(SPEC.reasons) == len(set(SPEC.reasons)) >= 15


def test_a_reason_the_code_does_not_compute_is_a_contract_error() -> None:
    extra = dataclasses.replace(SPEC, rules=(*SPEC.rules, ReadinessRule("tin_too_pretty", "X", "?")))
    with pytest.raises(ContractError, match="tin_too_pretty"):
        run_with(extra)


def run_with(spec: Any) -> None:
    one = pa.array(["x"], TEXT)
    assess(
        EinvoiceFields(one, one, {}, one, one, one, one, one, one, one, one, one),
        spec,
    )


# -- one reason per mistake ------------------------------------------------------------------------------


def test_a_right_customer_is_ready_with_every_column_filled() -> None:
    columns, issues, reasons = run({})
    assert columns["einvoice_ready"] == [True] and columns["einvoice_reasons"] == [None]
    assert [columns[c][0] for c in ("tax_id", "tin_kind", "id_type", "id_number", "einvoice_sst_no")] == [
        "C20880050010",
        "C",
        "BRN",
        "202001012345",
        "W10-1808-31001234",
    ]
    assert (columns["lhdn_state_code"], columns["country_alpha3"], columns["tin_validated"]) == (
        ["10"],
        ["MYS"],
        [True],
    )
    assert not any(m[0] for m in issues.values()) and not any(m[0] for m in reasons.values())


@pytest.mark.parametrize(
    ("change", "reasons", "issues"),
    [
        pytest.param({"tin": None}, ["tin_missing"], [], id="no-tin"),
        pytest.param({"tin": "SG10234567080", "id_type": "NRIC", "BRN": None, "NRIC": "960412105523"},
                     ["tin_legacy_prefix"], ["tax_id_invalid"], id="sg-prefix"),
        pytest.param({"tin": "OG1023456708", "id_type": "NRIC", "BRN": None, "NRIC": "960412105523"},
                     ["tin_legacy_prefix"], ["tax_id_invalid"], id="og-prefix"),
        pytest.param({"tin": "C123"}, ["tin_format"], ["tax_id_invalid"], id="short-tin"),
        pytest.param({"tin": "X12345678901"}, ["tin_format"], ["tax_id_invalid"], id="unknown-prefix"),
        pytest.param({"tin": "IG12345678901"}, ["tin_kind_mismatch"], [], id="company-with-ig"),
        pytest.param({"id_type": "NRIC", "BRN": None, "NRIC": "960412105523"}, ["tin_kind_mismatch"], [],
                     id="c-tin-with-nric"),
        pytest.param({"BRN": "202004012345"}, ["tin_kind_mismatch"], [], id="llp-brn-with-c"),
        pytest.param({"tin": "PT12345678901", "BRN": "202004012345"}, [], [], id="llp-right"),
        pytest.param({"tin": "IG12345678901", "BRN": "202003012345"}, [], [], id="sole-prop-not-checked"),
        pytest.param({"id_type": None}, ["id_missing"], [], id="no-id-type"),
        pytest.param({"BRN": None}, ["id_missing"], [], id="no-id-number"),
        pytest.param({"id_type": "SSM"}, ["id_missing", "id_type_unknown"], ["id_type_unrecognized"],
                     id="unknown-type"),
        pytest.param({"BRN": "1081349-V"}, ["brn_old_format"], ["id_number_invalid"], id="old-brn"),
        pytest.param({"BRN": "202009012345"}, ["brn_format"], ["id_number_invalid"], id="brn-entity-09"),
        pytest.param({"BRN": "2020-01-012345"}, ["brn_format"], ["id_number_invalid"], id="brn-dashes"),
        pytest.param({"tin": "IG12345678901", "id_type": "NRIC", "BRN": None, "NRIC": "960412-10-5523"},
                     ["nric_format"], ["id_number_invalid"], id="nric-dashes"),
        pytest.param({"tin": "IG12345678901", "id_type": "NRIC", "BRN": None, "NRIC": "961312105523"},
                     ["nric_date_invalid"], ["id_number_invalid"], id="nric-month-13"),
        pytest.param({"tin": "IG12345678901", "id_type": "NRIC", "BRN": None, "NRIC": "010229105523"},
                     ["nric_date_invalid"], ["id_number_invalid"], id="nric-feb-29-2001"),
        pytest.param({"tin": "IG12345678901", "id_type": "NRIC", "BRN": None, "NRIC": "000229105523"},
                     [], [], id="nric-feb-29-2000"),
        pytest.param({"tin": "IG12345678901", "id_type": "PASSPORT", "BRN": None, "PASSPORT": "A1"},
                     ["id_format"], ["id_number_invalid"], id="short-passport"),
        pytest.param({"tin": "IG12345678901", "id_type": "ARMY", "BRN": None, "id_number": "T1234567"},
                     [], [], id="army-from-the-generic-field"),
        pytest.param({"sst": None}, ["sst_missing"], [], id="no-sst"),
        pytest.param({"sst": "NA"}, [], [], id="sst-na"),
        pytest.param({"sst": "W10-1808-31001234;B16-1809-32000012"}, [], [], id="two-ssts"),
        pytest.param({"sst": "N/A"}, ["sst_format"], ["einvoice_sst_no_invalid"], id="sst-n/a"),
        pytest.param({"sst": "W1018083100"}, ["sst_format"], ["einvoice_sst_no_invalid"], id="sst-no-dashes"),
        pytest.param({"address_line": None}, ["address_incomplete"], [], id="no-address"),
        pytest.param({"city": " "}, ["address_incomplete"], [], id="no-city"),
        pytest.param({"state_code": None}, ["state_code_missing"], [], id="no-state"),
        pytest.param({"state_code": "Selangor"}, ["state_code_invalid"], ["lhdn_state_code_invalid"],
                     id="state-name"),
        pytest.param({"state_code": "1"}, ["state_code_invalid"], ["lhdn_state_code_invalid"], id="state-1"),
        pytest.param({"state_code": "18"}, ["state_code_invalid"], ["lhdn_state_code_invalid"],
                     id="state-18"),
        pytest.param({"country_code": "MY"}, ["country_invalid"], ["country_alpha3_invalid"], id="alpha-2"),
        pytest.param({"country_code": "XYZ"}, ["country_invalid"], ["country_alpha3_invalid"], id="no-such"),
        pytest.param({"country_code": None}, ["address_incomplete"], [], id="no-country"),
        pytest.param({"validated": "N"}, ["tin_not_validated"], [], id="not-validated"),
        pytest.param({"validated": None}, ["tin_not_validated"], [], id="never-validated"),
        pytest.param({"validated": "maybe"}, ["tin_not_validated"], ["tin_validated_unrecognized"],
                     id="validated-odd"),
        pytest.param({"tin": "EI00000000010", "id_type": "NRIC", "BRN": None, "NRIC": "960412105523"}, [], [],
                     id="general-public"),
        pytest.param({"tin": "EI00000000020", "BRN": "NA", "state_code": "17", "country_code": "SGP",
                      "country": "SG", "state": None}, [], [], id="foreign-buyer"),
        pytest.param({"tin": "EI00000000050"}, ["tin_format"], ["tax_id_invalid"], id="no-such-general-tin"),
    ],
)  # fmt: skip
def test_each_mistake_gives_its_reason(change: dict[str, Any], reasons: list[str], issues: list[str]) -> None:
    assert reasons_of(**change) == reasons
    assert issues_of(**change) == issues


def test_reasons_are_listed_in_the_contracts_order() -> None:
    got = reasons_of(tin=None, sst="N/A", validated="N", state_code="Johor")
    assert got == [r for r in SPEC.reasons if r in got]
    assert got == ["tin_missing", "sst_format", "state_code_invalid", "tin_not_validated"]


def test_malformed_values_leave_their_column_null_and_nothing_is_repaired() -> None:
    columns, _, _ = run(
        {"tin": "SG10234567080", "id_type": "NRIC", "BRN": None, "NRIC": "960412-10-5523", "sst": "N/A"}
    )
    assert [columns[c][0] for c in ("tax_id", "tin_kind", "id_number", "einvoice_sst_no")] == [None] * 4
    assert columns["id_type"] == ["NRIC"]


def test_derived_codes_follow_the_normalized_place() -> None:
    columns, _, _ = run(
        {"state": "Pulau Pinang"},
        {"state": None, "country": "SG"},
        {"state": None, "country": None},
        {"state": "Kuala Lumpur", "state_code": "Kuala Lumpur"},
    )
    assert columns["lhdn_state_code"] == ["07", "17", None, "14"]
    assert columns["country_alpha3"] == ["MYS", "SGP", None, "MYS"]


# -- properties ---------------------------------------------------------------------------------------------

KINDS = sorted(SPEC.tin_digits)


@st.composite
def tins(draw: st.DrawFn) -> tuple[str, str]:
    kind = draw(st.sampled_from(KINDS))
    low, high = SPEC.tin_digits[kind]
    digits = draw(st.text("0123456789", min_size=low, max_size=high))
    return kind, kind + digits


@settings(max_examples=200, deadline=None)
@given(tins(), st.lists(st.sampled_from([" ", "  ", "\t"]), max_size=3), st.booleans())
def test_any_well_formed_tin_is_kept_normalized_with_its_kind(
    tin: tuple[str, str], spaces: list[str], lower: bool
) -> None:
    kind, text = tin
    cut = len(text) // 2
    typed = " " + text[:cut] + "".join(spaces) + text[cut:] + " "
    typed = typed.lower() if lower else typed
    normalized = normalize_tin(pa.array([typed], TEXT))
    assert normalized.to_pylist() == [text]
    got_kind, ok, legacy = classify_tins(normalized, SPEC)
    assert (got_kind.to_pylist(), ok.to_pylist(), legacy.to_pylist()) == ([kind], [True], [False])


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SPEC.legacy_prefixes), st.text("0123456789", min_size=9, max_size=11))
def test_any_legacy_individual_tin_is_named_so(prefix: str, digits: str) -> None:
    kind, ok, legacy = classify_tins(pa.array([prefix + digits], TEXT), SPEC)
    assert (kind.to_pylist(), ok.to_pylist(), legacy.to_pylist()) == ([None], [False], [True])
    assert classify_tins(pa.array(["IG" + digits], TEXT), SPEC)[1].to_pylist() == [True]


@settings(max_examples=300, deadline=None)
@given(st.text("0123456789", min_size=6, max_size=6))
def test_nric_date_is_real_exactly_when_some_century_makes_it_a_date(yymmdd: str) -> None:
    def real(year: int) -> bool:
        try:
            date(year, int(yymmdd[2:4]), int(yymmdd[4:6]))
        except ValueError:
            return False
        return True

    expected = real(1900 + int(yymmdd[:2])) or real(2000 + int(yymmdd[:2]))
    assert nric_date_ok(pa.array([yymmdd + "105523"], TEXT)).to_pylist() == [expected]


@settings(max_examples=150, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_categories=SURROGATES), max_size=20))
def test_any_text_as_tin_is_either_well_formed_or_flagged(text: str) -> None:
    columns, issues, reasons = run({"tin": text})
    tin = columns["tax_id"][0]
    if tin is not None:
        assert re.fullmatch(SPEC.tin_pattern, tin)
        assert not issues["tax_id_invalid"][0]
    else:
        flagged = reasons["tin_missing"][0] or reasons["tin_format"][0] or reasons["tin_legacy_prefix"][0]
        assert flagged
        assert issues["tax_id_invalid"][0] != reasons["tin_missing"][0]
