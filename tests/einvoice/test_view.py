"""The sandbox's e-invoice truth against ``v_einvoice_readiness``, on DuckDB and Postgres.

Every seeded mistake is found with exactly its reasons, every customer filled right is ready, a SkyBiz
customer takes its SmartAcc twin's readiness, and a business only SkyBiz holds is named so.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from pipelines.contracts import load_contract
from pipelines.einvoice import NO_SMARTACC_RECORD, load_spec
from pipelines.einvoice.readiness import readiness_counts
from pipelines.lake import CUSTOMERS, NORMALIZED, QUALITY, Lake
from pipelines.quality import REPORT_JSON, frame_from_table, validate_frame
from pipelines.warehouse import open_warehouse
from tests.einvoice.conftest import Loaded

COLUMNS = "systems, skybiz_code, smartacc_id, ready, reasons"


def view(loaded: Loaded) -> list[dict[str, Any]]:
    with open_warehouse(loaded.warehouse_url, read_only=True) as wh:
        names, rows = wh.query_table(f"SELECT {COLUMNS} FROM v_einvoice_readiness")
    return [dict(zip(names, r, strict=True)) for r in rows]


def truth(loaded: Loaded) -> dict[str, dict[str, Any]]:
    return {t["smartacc_id"]: t for t in loaded.data.einvoice.to_pylist()}


def smartacc_rows(loaded: Loaded) -> dict[str, dict[str, Any]]:
    with open_warehouse(loaded.warehouse_url, read_only=True) as wh:
        names, rows = wh.query_table(
            "SELECT source_customer_id, data_issues, source_extras, einvoice_ready, einvoice_reasons "
            "FROM customers WHERE source_system = 'smartacc'"
        )
    return {r[0]: dict(zip(names, r, strict=True)) for r in rows}


def test_every_mistake_is_found_with_its_reasons_and_every_right_customer_is_ready(loaded: Loaded) -> None:
    expected = truth(loaded)
    rows = [r for r in view(loaded) if r["smartacc_id"] is not None]
    assert len({r["smartacc_id"] for r in rows}) > 0.98 * len(expected)  # the rest were quarantined
    wrong = [
        (r["smartacc_id"], expected[r["smartacc_id"]]["mistake"], r["reasons"])
        for r in rows
        if (r["reasons"], r["ready"])
        != (expected[r["smartacc_id"]]["reasons"], expected[r["smartacc_id"]]["mistake"] is None)
    ]
    assert wrong == []
    found = Counter(expected[r["smartacc_id"]]["mistake"] for r in rows)
    # The sample holds every kind of mistake, and most customers are filled right.
    assert set(found) == {None, *_mistakes()}
    assert found[None] > 0.6 * len(rows)


def _mistakes() -> set[str]:
    from skysmart_sandbox.data import EINVOICE_MISTAKES

    return set(EINVOICE_MISTAKES)


def test_a_skybiz_customer_inherits_its_twins_readiness(loaded: Loaded) -> None:
    expected = truth(loaded)
    twins = {m["skybiz_code"]: m["smartacc_id"] for m in loaded.data.matches.to_pylist()}
    rows = view(loaded)
    both = [r for r in rows if r["systems"] == "both"]
    assert len(both) > 0.9 * len(twins)
    for r in both:
        assert twins[r["skybiz_code"]] == r["smartacc_id"]
        assert r["reasons"] == expected[r["smartacc_id"]]["reasons"]
        assert r["ready"] == (expected[r["smartacc_id"]]["mistake"] is None)
    skybiz_only = [r for r in rows if r["systems"] == "skybiz"]
    assert skybiz_only and all((r["ready"], r["reasons"]) == (False, NO_SMARTACC_RECORD) for r in skybiz_only)
    assert not {r["skybiz_code"] for r in skybiz_only} & set(twins)


# Mistakes whose value is present but malformed: flagged in data_issues, kept as sent in source_extras.
PLANTED = {
    "tin_legacy_prefix": ("tax_id_invalid", "EInvoiceRegTIN"),
    "nric_dashes": ("id_number_invalid", "EInvoiceRegNumber_NRIC"),
    "brn_old_format": ("id_number_invalid", "EInvoiceRegNumber_BRN"),
    "state_name": ("lhdn_state_code_invalid", "AcEInvoiceAddressStateID"),
}


def test_malformed_values_are_flagged_and_kept_as_sent(loaded_duckdb: Loaded) -> None:
    sent = {r["AcCustomerID"]: r for r in loaded_duckdb.data.smartacc.to_pylist()}
    rows = smartacc_rows(loaded_duckdb)
    checked: Counter[str] = Counter()
    for sid, t in truth(loaded_duckdb).items():
        if sid not in rows or t["mistake"] not in PLANTED:
            continue
        code, field = PLANTED[t["mistake"]]
        assert code in (rows[sid]["data_issues"] or "").split(";")
        extras = rows[sid]["source_extras"]
        extras = json.loads(extras) if isinstance(extras, str) else extras
        assert extras[field] == sent[sid][field]
        checked[t["mistake"]] += 1
    assert set(checked) == set(PLANTED)


def test_each_readiness_rule_is_a_warning_check_failing_exactly_its_customers(loaded_duckdb: Loaded) -> None:
    lake = Lake(loaded_duckdb.lake_url)
    window = loaded_duckdb.windows["smartacc"]
    table = lake.read(NORMALIZED, "smartacc", CUSTOMERS, window)
    result = validate_frame(
        frame_from_table(table, load_contract("customer")), "customer", lake=lake, window=window
    )
    assert result.failed_errors == 0 and result.failed_warnings > 0
    stored = json.loads(
        (Path(lake.window_dir(QUALITY, "smartacc", CUSTOMERS, window)) / REPORT_JSON).read_text()
    )
    outcome = {r["expectation_config"]["meta"]["check"]: r for r in stored["results"]}
    expected: dict[str, set[str]] = {reason: set() for reason in load_spec().reasons}
    normalized = set(table.column("source_customer_id").to_pylist())
    for sid, t in truth(loaded_duckdb).items():
        for reason in (t["reasons"] or "").split(";") if sid in normalized and t["reasons"] else []:
            expected[reason].add(f"smartacc:{sid}")
    for reason, keys in expected.items():
        r = outcome[f"einvoice_reasons:{reason}"]
        assert r["expectation_config"]["meta"]["severity"] == "warning", reason
        assert r["success"] is (not keys), reason
        assert int(r["result"].get("unexpected_count") or 0) == len(keys), reason
        assert set(_failing_keys(r)) == keys, reason


def _failing_keys(result: dict[str, Any]) -> list[str]:
    """Failing customer keys as stored (GX lists them per key column, one or many per item)."""
    out: list[str] = []
    for item in result["result"].get("unexpected_index_list") or []:
        values = item["customer_key"] if isinstance(item, dict) else item
        out.extend(values if isinstance(values, list) else [values])
    return out


def test_counts_by_reason_match_the_view(loaded: Loaded) -> None:
    rows = view(loaded)
    with open_warehouse(loaded.warehouse_url, read_only=True) as wh:
        counts = readiness_counts(wh)
    assert counts is not None
    assert (counts.businesses, counts.ready) == (len(rows), sum(1 for r in rows if r["ready"]))
    by_reason = Counter(x for r in rows for x in (r["reasons"] or "").split(";") if x)
    assert {c.reason: c.businesses for c in counts.reasons} == dict(by_reason)
    assert [c.businesses for c in counts.reasons] == sorted(
        (c.businesses for c in counts.reasons), reverse=True
    )
    fields = {c.reason: c.field for c in counts.reasons}
    assert fields["tin_legacy_prefix"] == "EInvoiceRegTIN" and fields[NO_SMARTACC_RECORD] == "-"
