"""Blocking, scoring and classing pairs (pure: frames in, pairs out)."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.identity.match import (
    BLOCK_CAPS,
    DIFFERENT,
    POSSIBLE,
    SAME,
    Features,
    candidate_pairs,
    classify,
    match,
)


def records(*rows: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), dtype="string")


TWIN = {
    "name": "Maju Jaya Sdn Bhd",
    "phone_1": "03-21421234",
    "email": "akaun@majujaya.my",
    "postcode": "47300",
}


@pytest.mark.parametrize(
    ("skybiz", "expected"),
    [
        ({**TWIN, "name": "MAJU JAYA SDN BHD"}, SAME),
        ({**TWIN, "name": "Maju Jaya SDN. BHD.", "email": None}, SAME),
        ({**TWIN, "phone_1": "+603-2142 1234", "email": None}, SAME),
        ({"name": "Maju Jaya Sdn Bhd", "phone_3": "(03) 2142 1234", "postcode": "10000"}, SAME),
        ({**TWIN, "name": "Bintang Timur Hardware", "email": None}, POSSIBLE),  # a shared phone, another name
        ({"name": "Maju Jaya Sdn Bhd", "postcode": "47300"}, POSSIBLE),  # same name and postcode only
        ({"name": "Maju Jaya Trading", "email": "akaun@majujaya.my", "phone_1": "03-99999999"}, DIFFERENT),
    ],
    ids=["upper-case", "legal-form-punctuation", "phone-international", "contact-phone", "shared-phone",
         "name-and-postcode", "group-e-mail"],
)  # fmt: skip
def test_classes(skybiz: dict[str, str], expected: str) -> None:
    pairs = match(records(skybiz), records(TWIN))

    assert pairs["match_class"].tolist() == [expected]
    assert pairs["evidence"].iloc[0].startswith("name ")


def test_records_sharing_no_key_are_never_compared() -> None:
    pairs = match(records(TWIN), records({"name": "Kedai Runcit Aminah", "phone_1": "012-9876543"}))

    assert pairs.empty


def test_the_evidence_names_what_agrees_with_the_shared_values() -> None:
    pairs = match(
        records({**TWIN, "phone_1": "+60 3 2142 1234", "town": "PJ"}), records({**TWIN, "town": "pj"})
    )

    assert pairs["evidence"].iloc[0] == (
        "name 100%; phone 0321421234; e-mail akaun@majujaya.my; postcode 47300; town pj"
    )
    assert (
        pairs[["phone_match", "email_match", "postcode_match", "town_match"]].iloc[0].tolist() == [True] * 4
    )
    assert not pairs["registration_match"].iloc[0]


def test_a_key_held_by_more_than_the_cap_blocks_nobody() -> None:
    # A chain's head-office number on every branch identifies none of them.
    cap = BLOCK_CAPS["phone"]
    branches = records(*({"name": f"Kedai {i}", "phone_1": "03-21421234"} for i in range(cap + 1)))
    one = records({"name": "Lain", "phone_1": "03-21421234"})

    assert candidate_pairs(Features.of(branches).frame, Features.of(one).frame).empty
    assert len(candidate_pairs(Features.of(branches.head(cap)).frame, Features.of(one).frame)) == cap


def test_a_crowded_key_still_pairs_records_of_the_same_name() -> None:
    # A branch whose only links to its twin are the head office's phone and info@ (both far over their caps)
    # must still meet its twin: unmatched, the push would take it for missing and create it twice.
    cap = BLOCK_CAPS["phone"]
    shared = {"phone_1": "03-21421234", "email": "info@majujaya.my"}
    branches = records(
        *({"name": f"Maju Jaya {i} Sdn Bhd", "postcode": f"{40000 + i}", **shared} for i in range(3 * cap))
    )
    twin = records({"name": "MAJU JAYA 7 SDN. BHD.", "postcode": "99999", **shared})

    pairs = match(branches, twin)

    assert pairs["skybiz_row"].tolist() == [7]
    assert pairs["match_class"].tolist() == [SAME]


def test_candidate_pairs_grow_with_the_records_not_their_product() -> None:
    # n distinct businesses per side, each with one twin: n pairs, not n² (blocking keeps cost near-linear).
    for n in (50, 500):
        sky = records(*({"name": f"Syarikat {i} Sdn Bhd", "phone_1": f"03-{i:08d}"} for i in range(n)))
        sma = records(*({"name": f"SYARIKAT {i}", "phone_1": f"+603-{i:08d}"} for i in range(n)))
        pairs = match(sky, sma)
        assert len(pairs) == n
        assert (pairs["skybiz_row"] == pairs["smartacc_row"]).all()
        assert set(pairs["match_class"]) == {SAME}


def test_blocking_pairs_equal_keys_of_one_kind_only() -> None:
    # A phone pairs across the three phone columns; the same text as another kind of key pairs nothing.
    sky = records(
        {"name": "Kedai Satu", "phone_1": "03-21421234"},
        {"name": "Kedai Dua", "registration_no": "0398765432"},
        {"name": "Kedai Tiga", "postcode": "47300"},
    )
    sma = records(
        {"name": "Kedai Lain", "phone_3": "+603-2142 1234"},
        {"name": "Kedai Empat", "phone_2": "03-98765432"},
        {"name": "Kedai Tiga", "postcode": "47301"},
    )

    pairs = candidate_pairs(Features.of(sky).frame, Features.of(sma).frame)

    assert list(zip(pairs["skybiz_row"], pairs["smartacc_row"], strict=True)) == [(0, 0)]


def test_classify_reads_only_the_evidence() -> None:
    rows = [
        # name, phone, email, registration, postcode, phones differ, e-mails differ, expected
        (0.9, True, False, False, False, False, False, SAME),
        (0.7, True, True, False, False, False, False, SAME),
        (0.7, False, False, True, False, False, False, SAME),
        (0.2, True, False, False, False, False, False, POSSIBLE),  # a shared phone under another name
        (1.0, False, True, False, False, True, False, POSSIBLE),  # namesake e-mail, other phones
        (0.7, False, True, False, False, True, False, DIFFERENT),  # group info@, other phones
        (0.95, False, False, False, True, False, False, POSSIBLE),  # same name at the same postcode
        (0.95, False, False, False, True, True, True, DIFFERENT),  # ... but other phones and e-mails
        (0.95, False, False, False, False, False, False, DIFFERENT),
    ]
    columns = ["name_score", "phone_match", "email_match", "registration_match", "postcode_match"]
    evidence = pd.DataFrame(
        [r[:7] for r in rows], columns=[*columns, "phones_differ", "emails_differ"]
    ).assign(town_match=False)

    assert classify(evidence).tolist() == [r[7] for r in rows]
