"""The push against the SkyBiz sandbox over real HTTP, with the outbox in DuckDB and in Postgres."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

from pipelines.push import Outbox, push_customers
from tests.push.conftest import PushRig
from tests.push.helpers import (
    covered_settings,
    insert_customers,
    insert_quarantined_skybiz,
    outbox_states,
    skybiz_row,
    smartacc_row,
)

GOLD = covered_settings(currencies=("RM", "SGD", "USD", "XAU"))  # XAU passes client-side; SkyBiz has no XAU


def test_1200_customers_go_in_three_batches_exactly_once(rig: PushRig) -> None:
    insert_customers(rig.warehouse, [smartacc_row(i) for i in range(1200)])
    before = rig.sandbox.skybiz.customer_count

    result = push_customers(rig.warehouse, rig.client, settings=covered_settings())

    assert (result.selected, result.valid, result.created, result.invalid) == (1200, 1200, 1200, 0)
    assert (result.requests, result.batches, result.reads, result.unresolved) == (3, 3, 0, 0)
    assert [len(r.body["customer_data"]["documents"]) for r in rig.creates] == [500, 500, 200]
    assert rig.sandbox.skybiz.customer_count == before + 1200
    rig.assert_each_created_once({f"SA-300-T{i:05d}" for i in range(1200)})
    stored = rig.sandbox.skybiz.customer("SA-300-T00042")
    assert stored is not None
    assert stored["CusName"] == "Syarikat Ujian 42 Sdn Bhd"
    assert (stored["CurCode"], stored["TermCode"]) == ("RM", 30)
    assert stored["Address"] == "42 Jalan SS2/42 Seksyen 2"  # Address1–4 joined by the server
    assert (stored["FinCatCode"], stored["AccountCode"]) == ("B55", "AR-001")
    assert stored["CategoryCode"] == "WHOLESALE"
    assert stored["Tel"] == "03-70000042"

    rows = rig.warehouse.query(
        "SELECT state, attempts, unanswered_attempts, request_ids, batch_no FROM skybiz_push_outbox"
    )
    assert {(state, tries, unanswered) for state, tries, unanswered, _, _ in rows} == {("created", 1, 0)}
    request_ids = {r.request_id for r in rig.creates}
    for *_, ids, _batch in rows:
        ids = json.loads(ids) if isinstance(ids, str) else ids
        assert len(ids) == 1 and ids[0] in request_ids
    assert sorted(Counter(b for *_, b in rows).values()) == [200, 500, 500]


def test_second_push_sends_nothing(rig: PushRig) -> None:
    insert_customers(rig.warehouse, [smartacc_row(i) for i in range(30)] + [smartacc_row(99, currency="EUR")])
    first = push_customers(rig.warehouse, rig.client, settings=covered_settings())
    snapshot = rig.warehouse.query("SELECT customer_key, state, attempts, updated_at FROM skybiz_push_outbox")

    second = push_customers(rig.warehouse, rig.client, settings=covered_settings())

    assert (first.created, first.invalid) == (30, 1)
    assert (second.selected, second.invalid, second.requests, second.created) == (1, 1, 0, 0)
    assert second.already_exists == 30
    assert len(rig.creates) == 1
    after = rig.warehouse.query("SELECT customer_key, state, attempts, updated_at FROM skybiz_push_outbox")
    assert sorted(after, key=str) == sorted(snapshot, key=str)  # not even rewritten


def test_customers_skybiz_already_has_are_not_selected(rig: PushRig) -> None:
    insert_customers(
        rig.warehouse,
        [smartacc_row(i) for i in range(6)]
        + [
            skybiz_row("SA-300-T00000"),  # our code: created before, or by someone using our rule
            # same BRN (punctuation differs), the name without its legal form
            skybiz_row("CUST-A", registration_no="20200-0000001", name="Syarikat Ujian 1"),
            skybiz_row("CUST-B", email="AKAUN2@UJIAN2.COM.MY", name="SYARIKAT UJIAN 2 SDN. BHD."),
            # SkyBiz phone = SmartAcc mobile
            skybiz_row("CUST-C", phone="+60120000003", name="Syarikat Ujian 3 Sdn. Bhd."),
        ],
    )

    result = push_customers(rig.warehouse, rig.client, settings=covered_settings())

    assert (result.already_exists, result.selected, result.created) == (4, 2, 2)
    sent = {d["CusCode"] for r in rig.creates for d in r.body["customer_data"]["documents"]}
    assert sent == {"SA-300-T00004", "SA-300-T00005"}


def test_a_skybiz_twin_known_only_from_quarantine_is_not_created_again(rig: PushRig) -> None:
    # SkyBiz holds the business; its row was quarantined (currency XYZ), so it is not in customers.
    insert_customers(rig.warehouse, [smartacc_row(1), smartacc_row(2)])
    insert_quarantined_skybiz(
        rig.warehouse,
        {
            "CusCode": "C000777",
            "CusName": "SYARIKAT UJIAN 1 SDN. BHD.",
            "Tel": "03-7000 0001",
            "CurCode": "XYZ",
        },
    )

    result = push_customers(rig.warehouse, rig.client, settings=covered_settings())

    assert (result.already_exists, result.created) == (1, 1)
    assert outbox_states(rig.warehouse) == {"smartacc:300-T00002": "created"}
    found = rig.warehouse.query(
        "SELECT skybiz_code, skybiz_record, match_class FROM customer_matches WHERE match_class = 'same'"
    )
    assert found == [("C000777", "customer_quarantine", "same")]


def test_a_shared_email_with_a_different_name_is_held_for_review_until_a_person_decides(
    duck_rig: PushRig,
) -> None:
    # Group companies share one info@ address: the e-mail alone does not make them one business.
    insert_customers(
        duck_rig.warehouse,
        [
            smartacc_row(1, name="Alam Semenanjung Hardware", email="info@alamsemenanjung.my"),
            skybiz_row(
                "C000408", name="Alam Semenanjung Food Industries Sdn Bhd", email="info@alamsemenanjung.my"
            ),
        ],
    )

    held = push_customers(duck_rig.warehouse, duck_rig.client, settings=covered_settings())
    reason = duck_rig.warehouse.query("SELECT reason FROM skybiz_push_outbox")[0][0]
    still = push_customers(duck_rig.warehouse, duck_rig.client, settings=covered_settings())
    duck_rig.warehouse.execute("UPDATE skybiz_push_outbox SET state = 'pending' WHERE state = 'needs_review'")
    decided = push_customers(duck_rig.warehouse, duck_rig.client, settings=covered_settings())

    assert (held.needs_review, held.already_exists, held.requests) == (1, 0, 0)
    assert reason.startswith("possible duplicate of SkyBiz C000408: name ")
    assert "e-mail info@alamsemenanjung.my" in reason
    assert (still.needs_review, still.requests) == (1, 0)
    assert (decided.created, decided.needs_review) == (1, 0)
    customer = duck_rig.sandbox.skybiz.customer("SA-300-T00001")
    assert customer is not None
    assert customer["CusName"] == "Alam Semenanjung Hardware"


def test_client_side_invalid_documents_are_never_sent(rig: PushRig) -> None:
    rows = [smartacc_row(i) for i in range(10)]
    rows[1]["currency"] = "EUR"  # not in the default (documented) currency table
    rows[2]["name"] = "N" * 101
    rows[3]["payment_terms_days"] = None
    rows[4]["credit_limit"] = Decimal("-1.00")
    insert_customers(rig.warehouse, rows)

    result = push_customers(rig.warehouse, rig.client, settings=covered_settings())

    assert (result.selected, result.invalid, result.valid) == (10, 4, 6)
    assert (result.created, result.requests) == (6, 1)
    sent = {d["CusCode"] for r in rig.creates for d in r.body["customer_data"]["documents"]}
    assert not sent & {f"SA-300-T0000{i}" for i in (1, 2, 3, 4)}
    reasons = dict(
        rig.warehouse.query("SELECT customer_key, reason FROM skybiz_push_outbox WHERE state = 'rejected'")
    )
    assert reasons["smartacc:300-T00001"].startswith("CurCode: Currency code 'EUR' does not exist")
    assert reasons["smartacc:300-T00002"].startswith("CusName: 101 characters")
    assert reasons["smartacc:300-T00003"].startswith("D_ay: compulsory field missing")
    assert reasons["smartacc:300-T00004"].startswith("CreditLimit: -1.0 is below 0")
    attempts = rig.warehouse.query("SELECT max(attempts) FROM skybiz_push_outbox WHERE state = 'rejected'")
    assert attempts == [(0,)]


def test_server_side_reject_takes_out_the_failing_documents_and_resends_the_rest(rig: PushRig) -> None:
    rows = [smartacc_row(i) for i in range(20)]
    rows[3]["currency"] = rows[11]["currency"] = "XAU"
    insert_customers(rig.warehouse, rows)

    result = push_customers(rig.warehouse, rig.client, settings=GOLD)

    assert (result.created, result.rejected, result.invalid) == (18, 2, 0)
    assert (result.requests, result.batches) == (2, 1)
    first, second = rig.creates
    assert len(first.body["customer_data"]["documents"]) == 20
    assert len(second.body["customer_data"]["documents"]) == 18
    reason = rig.warehouse.query(
        "SELECT reason FROM skybiz_push_outbox WHERE customer_key = 'smartacc:300-T00003'"
    )[0][0]
    assert reason == f"CurCode: SkyBiz: Currency code 'XAU' does not exist (request {first.request_id})"
    assert outbox_states(rig.warehouse)["smartacc:300-T00004"] == "created"


def test_a_currency_skybiz_refused_is_not_sent_again_in_the_same_run(duck_rig: PushRig) -> None:
    rows = [smartacc_row(i) for i in range(30)]
    for i in (2, 15, 25):  # one per batch of 10
        rows[i]["currency"] = "XAU"
    insert_customers(duck_rig.warehouse, rows)

    result = push_customers(
        duck_rig.warehouse,
        duck_rig.client,
        settings=covered_settings(batch_size=10, currencies=GOLD.currencies),
    )

    # Batch 1 is refused once; later batches leave XAU out without asking: 1 refusal + 3 saved batches.
    assert (result.created, result.rejected, result.requests, result.batches) == (27, 3, 4, 3)
    reason = duck_rig.warehouse.query(
        "SELECT reason FROM skybiz_push_outbox WHERE customer_key = 'smartacc:300-T00025'"
    )[0][0]
    assert "not sent again" in reason
    rerun = push_customers(
        duck_rig.warehouse,
        duck_rig.client,
        settings=covered_settings(batch_size=10, currencies=GOLD.currencies),
    )
    assert (rerun.rejected, rerun.requests) == (3, 0)  # held: SkyBiz refused them, nothing changed


def test_a_server_rejected_document_is_held_until_it_changes(duck_rig: PushRig) -> None:
    rows = [smartacc_row(i) for i in range(3)]
    rows[0]["currency"] = "XAU"
    insert_customers(duck_rig.warehouse, rows)
    push_customers(duck_rig.warehouse, duck_rig.client, settings=GOLD)
    creates = len(duck_rig.creates)

    held = push_customers(duck_rig.warehouse, duck_rig.client, settings=GOLD)
    duck_rig.warehouse.execute(
        "UPDATE customers SET currency = 'MYR' WHERE customer_key = 'smartacc:300-T00000'"
    )
    fixed = push_customers(duck_rig.warehouse, duck_rig.client, settings=GOLD)

    assert (held.rejected, held.requests) == (1, 0)
    assert len(duck_rig.creates) == creates + 1
    assert (fixed.created, fixed.rejected) == (1, 0)
    customer = duck_rig.sandbox.skybiz.customer("SA-300-T00000")
    assert customer is not None
    assert customer["CurCode"] == "RM"


def test_a_code_skybiz_has_but_we_never_sent_needs_review(duck_rig: PushRig) -> None:
    insert_customers(duck_rig.warehouse, [smartacc_row(i) for i in range(5)])
    # Someone keyed our code into SkyBiz by hand; the warehouse has not seen it yet.
    assert duck_rig.client.create(
        [{"AccountCode": "AR-001", "CusCode": "SA-300-T00002", "CusName": "Typed by hand",
          "CurCode": "RM", "D_ay": 0, "CategoryCode": "RETAIL"}]
    ).ok  # fmt: skip

    result = push_customers(duck_rig.warehouse, duck_rig.client, settings=covered_settings())
    again = push_customers(duck_rig.warehouse, duck_rig.client, settings=covered_settings())

    assert (result.created, result.needs_review, result.requests) == (4, 1, 2)
    state, reason = duck_rig.warehouse.query(
        "SELECT state, reason FROM skybiz_push_outbox WHERE customer_key = 'smartacc:300-T00002'"
    )[0]
    assert state == "needs_review"
    assert reason.startswith("needs review — CusCode: SkyBiz already has SA-300-T00002 but skysmart")
    customer = duck_rig.sandbox.skybiz.customer("SA-300-T00002")
    assert customer is not None
    assert customer["CusName"] == "Typed by hand"
    assert (again.needs_review, again.requests) == (1, 0)  # held for a person, not retried


def test_limit_takes_the_first_customers_and_the_rest_later(duck_rig: PushRig) -> None:
    insert_customers(duck_rig.warehouse, [smartacc_row(i) for i in range(10)])

    first = push_customers(duck_rig.warehouse, duck_rig.client, limit=4, settings=covered_settings())
    rest = push_customers(duck_rig.warehouse, duck_rig.client, settings=covered_settings())

    assert (first.selected, first.created, rest.selected, rest.created) == (4, 4, 6, 6)
    assert set(outbox_states(duck_rig.warehouse).values()) == {"created"}


def test_inactive_customers_are_left_out_unless_asked(duck_rig: PushRig) -> None:
    insert_customers(duck_rig.warehouse, [smartacc_row(0), smartacc_row(1, is_active=False)])

    default = push_customers(duck_rig.warehouse, duck_rig.client, settings=covered_settings())
    everyone = push_customers(
        duck_rig.warehouse, duck_rig.client, settings=covered_settings(include_inactive=True)
    )

    assert (default.selected, everyone.selected, everyone.created) == (1, 1, 1)
    assert Outbox(duck_rig.warehouse).counts() == {"created": 2}
