"""A dry run changes nothing; ``skysmart push`` prints what it would do, or does it and summarises."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.cli import main
from pipelines.push import plan_push, push_customers
from tests.push.conftest import PushRig
from tests.push.helpers import covered_settings, insert_customers, skybiz_row, smartacc_row
from tests.push.test_push_faults import Crash, CrashingClient


def _mixed_rows() -> list[dict[str, Any]]:
    rows = [smartacc_row(i) for i in range(12)]
    rows[1]["currency"] = "EUR"  # invalid with the default currency table
    rows[2]["name"] = "N" * 150
    return [*rows, skybiz_row("SA-300-T00011")]  # one already in SkyBiz


def test_dry_run_on_a_fresh_warehouse_sends_and_writes_nothing(rig: PushRig) -> None:
    insert_customers(rig.warehouse, _mixed_rows())
    received = len(rig.sandbox.skybiz.received)

    result = push_customers(rig.warehouse, None, dry_run=True, settings=covered_settings())

    assert result.dry_run
    assert (result.selected, result.valid, result.invalid, result.already_exists) == (11, 9, 2, 1)
    assert (result.to_create, result.batches, result.requests, result.created) == (9, 1, 0, 0)
    assert rig.warehouse.query("SELECT count(*) FROM skybiz_push_outbox") == [(0,)]  # nothing recorded
    assert len(rig.sandbox.skybiz.received) == received


def test_dry_run_after_an_interrupted_push_changes_nothing(duck_rig: PushRig) -> None:
    insert_customers(duck_rig.warehouse, _mixed_rows())
    with pytest.raises(Crash):  # the process dies after its first request: 4 rows left "sent"
        crashing = CrashingClient(duck_rig.client, 1)
        push_customers(duck_rig.warehouse, crashing, settings=covered_settings(batch_size=4))
    snapshot = sorted(duck_rig.warehouse.query("SELECT * FROM skybiz_push_outbox"), key=str)
    received = len(duck_rig.sandbox.skybiz.received)
    customers = duck_rig.sandbox.skybiz.customer_count

    result = push_customers(duck_rig.warehouse, duck_rig.client, dry_run=True, settings=covered_settings())
    plan = plan_push(duck_rig.warehouse, settings=covered_settings())

    assert sorted(duck_rig.warehouse.query("SELECT * FROM skybiz_push_outbox"), key=str) == snapshot
    assert len(duck_rig.sandbox.skybiz.received) == received
    assert duck_rig.sandbox.skybiz.customer_count == customers
    assert [i.action for i in plan.of("verify")] == ["verify"] * 4  # the lost batch is read first
    assert result.to_create == 9 and result.invalid == 2


def test_cli_dry_run_lists_what_would_happen(
    duckdb_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.warehouse import open_warehouse

    monkeypatch.setenv("COLUMNS", "240")
    with open_warehouse(duckdb_url) as warehouse:
        insert_customers(warehouse, _mixed_rows())

    code = main(["push", "--dry-run", "--warehouse", duckdb_url])

    out = capsys.readouterr().out
    assert code == 0
    assert "would create (9 in 1 batch(es))" in out
    assert "SA-300-T00000" in out and "Syarikat Ujian 0 Sdn Bhd" in out
    assert "invalid — never sent (2)" in out
    assert "CurCode: Currency code 'EUR' does not exist in the SkyBiz currency table" in out
    assert "CusName: 150 characters; SkyBiz takes at most 100" in out
    assert "already in SkyBiz (1)" in out and "cus_code" in out
    assert "dry run: nothing was sent and nothing was written" in out
    with open_warehouse(duckdb_url) as warehouse:
        assert warehouse.query("SELECT count(*) FROM skybiz_push_outbox") == [(0,)]  # nothing recorded


def test_cli_push_summarises_and_exits_6_when_something_needs_review(
    make_rig: Any, duckdb_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_rig(duckdb_url)
    insert_customers(rig.warehouse, _mixed_rows())
    rig.warehouse.close()  # the CLI opens the DuckDB file itself
    for name, value in rig.sandbox.endpoints.as_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COLUMNS", "240")
    monkeypatch.setenv("SKYSMART_PUSH_CURRENCIES", "RM,SGD,USD,EUR")
    monkeypatch.setenv("SKYSMART_PUSH_SKYBIZ_COVERED_FROM", str(covered_settings().skybiz_covered_from))

    first = main(["push", "--warehouse", duckdb_url, "--limit", "5"])
    first_out = capsys.readouterr().out
    rig.client.real.create(
        [{"AccountCode": "AR-001", "CusCode": "SA-300-T00009", "CusName": "By hand", "CurCode": "RM",
          "D_ay": 0, "CategoryCode": "RETAIL"}]
    )  # fmt: skip
    second = main(["push", "--warehouse", duckdb_url])
    second_out = capsys.readouterr().out

    assert first == 0
    assert "created" in first_out and "outbox (all runs)" in first_out
    assert second == 6
    assert "needs_review" in second_out and "SA-300-T00009" in second_out
    assert "CusName: 150 characters" in second_out and "skysmart" in second_out  # listed with who refused
    from pipelines.warehouse import open_warehouse

    with open_warehouse(duckdb_url) as warehouse:
        counts = dict(warehouse.query("SELECT state, count(*) FROM skybiz_push_outbox GROUP BY state"))
    assert counts == {"created": 9, "rejected": 1, "needs_review": 1}
