"""The sandbox's e-invoice fields: deterministic, mostly right, every mistake recorded with its reasons."""

from __future__ import annotations

import re
from collections import Counter

import pyarrow as pa

from pipelines.einvoice import load_spec
from skysmart_sandbox.data import EINVOICE_MISTAKES, SandboxData, generate
from tests.einvoice.conftest import SEED, SIZE


def test_the_same_seed_gives_the_same_fields_and_truth(data: SandboxData) -> None:
    again = generate(SIZE, SEED)
    assert again.einvoice.equals(data.einvoice)
    einvoice = [f for f in data.smartacc.column_names if "EInvoice" in f]
    assert again.smartacc.select(einvoice).equals(data.smartacc.select(einvoice))


def test_the_truth_covers_every_record_and_most_are_right(data: SandboxData) -> None:
    assert data.einvoice.column("smartacc_id").to_pylist() == data.smartacc.column("AcCustomerID").to_pylist()
    mistakes = Counter(data.einvoice.column("mistake").to_pylist())
    assert set(mistakes) == {None, *EINVOICE_MISTAKES}
    assert mistakes[None] > 0.6 * data.smartacc.num_rows
    reasons = load_spec().reasons
    for mistake, expected in EINVOICE_MISTAKES.items():
        assert set(expected) <= set(reasons), mistake
        assert list(expected) == [r for r in reasons if r in expected], mistake  # the contract's order


def test_right_records_are_written_the_way_lhdn_reads_them(data: SandboxData) -> None:
    spec = load_spec()
    rows = data.smartacc.select(
        ["AcCustomerID", "EInvoiceRegTIN", "EInvoiceRegType", "EInvoiceRegNumber", "AcEInvoiceAddressStateID"]
    ).to_pylist()
    right = {t["smartacc_id"] for t in data.einvoice.to_pylist() if t["mistake"] is None}
    for r in rows:
        if r["AcCustomerID"] not in right:
            continue
        assert re.fullmatch(spec.tin_pattern, r["EInvoiceRegTIN"])
        assert re.fullmatch(spec.state_pattern, r["AcEInvoiceAddressStateID"])
        if r["EInvoiceRegNumber"] != "NA":
            assert re.fullmatch(spec.id_patterns[r["EInvoiceRegType"]], r["EInvoiceRegNumber"])


def test_the_mistakes_look_like_tenants_typing(data: SandboxData) -> None:
    by_id = {r["AcCustomerID"]: r for r in data.smartacc.to_pylist()}
    seen: Counter[str] = Counter()
    for t in data.einvoice.to_pylist():
        r = by_id[t["smartacc_id"]]
        match t["mistake"]:
            case "tin_legacy_prefix":
                assert re.fullmatch(r"(SG|OG)[0-9]{9,11}", r["EInvoiceRegTIN"])
            case "company_individual_tin":
                assert r["EInvoiceRegTIN"].startswith("IG") and r["EInvoiceRegType"] == "BRN"
            case "nric_dashes":
                assert re.fullmatch(r"[0-9]{6}-[0-9]{2}-[0-9]{4}", r["EInvoiceRegNumber_NRIC"])
            case "brn_old_format":
                assert re.fullmatch(r"[0-9]{5,7}-[A-Z]", r["EInvoiceRegNumber_BRN"])
            case "state_name":
                assert not re.fullmatch(r"[0-9]{2}", r["AcEInvoiceAddressStateID"])
            case "not_set_up":
                assert r["EInvoiceRegTIN"] is None and r["AcEInvoiceAddressStateID"] is None
            case _:
                continue
        seen[t["mistake"]] += 1
    assert len(seen) == 6
    assert isinstance(data.einvoice, pa.Table)
