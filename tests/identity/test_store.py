"""customer_matches in the warehouse: what a rebuild reads, writes, and when it is current (both engines)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from pipelines.identity import compute_matches, ensure_current, is_current, links, rebuild_matches
from pipelines.warehouse import Warehouse
from tests.push.helpers import (
    insert_customers,
    insert_quarantined_skybiz,
    record_skybiz_load,
    skybiz_row,
    smartacc_row,
)

_ROW_COLUMNS = (
    "skybiz_code",
    "smartacc_key",
    "smartacc_id",
    "skybiz_record",
    "match_class",
    "name_score",
    "phone_match",
    "email_match",
    "registration_match",
    "postcode_match",
    "town_match",
    "evidence",
)


def _rows(warehouse: Warehouse) -> list[tuple[object, ...]]:
    return sorted(warehouse.query(f"SELECT {', '.join(_ROW_COLUMNS)} FROM customer_matches"), key=str)


def _business(warehouse: Warehouse) -> None:
    insert_customers(
        warehouse,
        [
            smartacc_row(1, name="Maju Jaya Sdn Bhd", phone="+60321421234", email="akaun@majujaya.my"),
            smartacc_row(2, name="Kedai Runcit Aminah", phone="+60123456789", email=None, postcode="50000"),
            smartacc_row(3, name="Bintang Timur Hardware"),
            skybiz_row("C000001", name="MAJU JAYA SDN. BHD.", phone="+60321421234", town="Petaling Jaya"),
            skybiz_row("C000009", name="Lim Brothers Trading", phone="+60123456789"),
        ],
    )
    insert_quarantined_skybiz(
        warehouse,
        {"CusCode": "C000002", "CusName": "KEDAI RUNCIT AMINAH", "Tel": "012-345 6789", "CurCode": "XYZ"},
    )


def test_a_rebuild_links_normalized_and_quarantined_skybiz_records_with_evidence(
    warehouse: Warehouse,
) -> None:
    _business(warehouse)

    summary = rebuild_matches(warehouse)

    found = {(r[0], r[2]): (r[3], r[4]) for r in _rows(warehouse)}
    assert found[("C000001", "300-T00001")] == ("customers", "same")
    assert found[("C000002", "300-T00002")] == ("customer_quarantine", "same")
    assert found[("C000009", "300-T00002")] == ("customers", "possible")  # same phone, another name
    assert ("C000009", "300-T00003") not in found
    assert (summary.skybiz_records, summary.skybiz_quarantined, summary.smartacc_records) == (3, 1, 3)
    assert (summary.same, summary.possible) == (2, 1)


def test_a_rebuild_is_idempotent(warehouse: Warehouse) -> None:
    _business(warehouse)

    rebuild_matches(warehouse)
    first = _rows(warehouse)
    rebuild_matches(warehouse)

    assert _rows(warehouse) == first and len(first) == 3


def test_a_rebuild_over_older_matches_leaves_exactly_the_pairs_matching_finds_now(
    warehouse: Warehouse,
) -> None:
    """Vanished pairs go, new ones come, kept ones take their new evidence and time (updated in place)."""
    _business(warehouse)
    rebuild_matches(warehouse)
    before = {(r[0], r[1]): r for r in _rows(warehouse)}
    built_before = warehouse.query("SELECT max(matched_at) FROM customer_matches")[0][0]
    # C000009 loses the phone it shared with T00002; C000001 moves town; C000003 appears, T00003's twin.
    warehouse.execute("UPDATE customers SET phone = '+60399999999' WHERE source_customer_id = 'C000009'")
    warehouse.execute("UPDATE customers SET town = 'Shah Alam' WHERE source_customer_id = 'C000001'")
    insert_customers(warehouse, [skybiz_row("C000003", name="BINTANG TIMUR HARDWARE", phone="+60370000003")])

    rebuild_matches(warehouse)

    after = {(r[0], r[1]): r for r in _rows(warehouse)}
    expected, _ = compute_matches(warehouse)
    now = expected[list(_ROW_COLUMNS)].values.tolist()
    assert sorted(after.values(), key=str) == sorted(map(tuple, now), key=str)
    assert ("C000009", "smartacc:300-T00002") in before and ("C000009", "smartacc:300-T00002") not in after
    assert ("C000003", "smartacc:300-T00003") in after
    kept = ("C000001", "smartacc:300-T00001")
    assert before[kept][10] is True and after[kept][10] is False  # town_match, updated in place
    times = warehouse.query("SELECT DISTINCT matched_at FROM customer_matches")
    assert len(times) == 1 and times[0][0] > built_before  # every row is this rebuild's


def test_a_quarantined_code_that_also_has_a_clean_version_is_matched_once(warehouse: Warehouse) -> None:
    _business(warehouse)
    insert_quarantined_skybiz(warehouse, {"CusCode": "C000001", "CusName": "Maju Jaya", "Tel": "03-21421234"})

    rebuild_matches(warehouse)

    c1 = [r for r in _rows(warehouse) if r[0] == "C000001"]
    assert [(r[3], r[4]) for r in c1] == [("customers", "same")]


def test_matches_are_current_until_a_load_finishes_after_them(warehouse: Warehouse) -> None:
    _business(warehouse)  # records a SkyBiz load
    assert not is_current(warehouse)

    rebuilt = ensure_current(warehouse)
    again = ensure_current(warehouse)
    later = datetime.now(UTC) + timedelta(seconds=5)
    record_skybiz_load(warehouse, date(2026, 1, 1), date(2026, 1, 31), started_at=later)

    assert rebuilt is not None and again is None
    assert not is_current(warehouse)


def test_links_for_a_dry_run_are_computed_in_memory_and_written_nowhere(warehouse: Warehouse) -> None:
    _business(warehouse)

    found = links(warehouse, write=False)

    assert sorted(zip(found["skybiz_code"], found["match_class"], strict=True)) == [
        ("C000001", "same"),
        ("C000002", "same"),
        ("C000009", "possible"),
    ]
    assert warehouse.query("SELECT count(*) FROM customer_matches") == [(0,)]
    frame, summary = compute_matches(warehouse)
    assert len(frame) == summary.pairs == 3


def test_v_businesses_has_one_row_per_business_and_names_the_fields_that_disagree(
    warehouse: Warehouse,
) -> None:
    _business(warehouse)
    rebuild_matches(warehouse)

    rows = warehouse.query(
        "SELECT systems, skybiz_code, smartacc_id, skybiz_record, differs FROM v_businesses "
        "ORDER BY systems, skybiz_code, smartacc_id"
    )

    assert rows == [
        ("both", "C000001", "300-T00001", "customers", "name, email, postcode, credit_limit"),
        ("both", "C000002", "300-T00002", "customer_quarantine", None),
        ("skybiz", "C000009", None, "customers", None),
        ("smartacc", None, "300-T00003", None, None),
    ]
