"""Exactly once under faults: lost answers, crashes between send and record, rate limits, refusals.

Faults come from the sandbox's own switches over real HTTP. Where a test needs SkyBiz's answer to go
missing *in our process* (a crash right after the request), it wraps the real client; the request still
reaches the real emulator.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest

import skysmart_sandbox.skybiz as skybiz_emulator
from pipelines.config import Settings
from pipelines.errors import ConfigError, PermissionDeniedError, RateLimitedError
from pipelines.push import push_customers
from pipelines.push.ports import SkyBizLike
from pipelines.sources.skybiz.client import CreateResult, SkyBizClient
from pipelines.warehouse import open_warehouse
from tests.push.conftest import PushRig
from tests.push.helpers import covered_settings, insert_customers, outbox_states, smartacc_row


def outbox_rows(rig: PushRig) -> dict[str, dict[str, Any]]:
    cols = ["customer_key", "state", "attempts", "unanswered_attempts", "reason", "request_ids"]
    rows = rig.warehouse.query(f"SELECT {', '.join(cols)} FROM skybiz_push_outbox")
    return {r[0]: dict(zip(cols, r, strict=True)) for r in rows}


def reads(rig: PushRig) -> list[Any]:
    return [r for r in rig.sandbox.skybiz.received if r.action == "read"]


CODES_30 = {f"SA-300-T{i:05d}" for i in range(30)}


@pytest.mark.parametrize(
    ("fault", "saved"),
    [("drop_after_commit", True), ("truncate", True), ("drop", False), ("500", False), ("non_json", False)],
    ids=["drop-after-commit", "truncated-answer", "dropped-before", "http-500", "html-502"],
)
def test_a_lost_answer_is_read_back_before_anything_is_resent(
    duck_rig: PushRig, fault: str, saved: bool
) -> None:
    insert_customers(duck_rig.warehouse, [smartacc_row(i) for i in range(30)])
    duck_rig.sandbox.skybiz.switches.inject(fault)

    result = push_customers(duck_rig.warehouse, duck_rig.client, settings=covered_settings())

    duck_rig.assert_each_created_once(CODES_30)
    assert (result.created, result.unresolved) == (30, 0)
    assert result.confirmed == (30 if saved else 0)
    assert result.requests == (1 if saved else 2)
    assert len(reads(duck_rig)) == result.reads == 1  # 30 codes: one CusCode-only read of the window
    assert reads(duck_rig)[0].body["fields"] == ["CusCode"]
    rows = outbox_rows(duck_rig)
    assert {r["state"] for r in rows.values()} == {"created"}
    assert {r["unanswered_attempts"] for r in rows.values()} == {1}
    if saved:
        assert {r["attempts"] for r in rows.values()} == {1}
        assert "answer was lost" in rows["smartacc:300-T00007"]["reason"]


def test_drop_after_commit_on_both_engines_filtered_read_back(rig: PushRig) -> None:
    insert_customers(rig.warehouse, [smartacc_row(i) for i in range(3)])
    rig.sandbox.skybiz.switches.inject("drop_after_commit")
    before = rig.sandbox.skybiz.customer_count

    result = push_customers(rig.warehouse, rig.client, settings=covered_settings())

    assert rig.sandbox.skybiz.customer_count == before + 3
    assert (result.created, result.confirmed, result.requests, result.reads) == (3, 3, 1, 3)
    assert sorted(r.body["filters"]["CusCode"] for r in reads(rig)) == [
        "SA-300-T00000",
        "SA-300-T00001",
        "SA-300-T00002",
    ]
    assert set(outbox_states(rig.warehouse).values()) == {"created"}


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the push catches it."""


class CrashingClient:
    """The real client, but the process 'dies' around the ``crash_on``-th create."""

    def __init__(self, real: SkyBizLike, crash_on: int, *, before_sending: bool = False) -> None:
        self.real, self.crash_on, self.before_sending, self.calls = real, crash_on, before_sending, 0

    def create(self, documents: Sequence[Mapping[str, Any]]) -> CreateResult:
        self.calls += 1
        if self.calls == self.crash_on and self.before_sending:
            raise Crash
        result = self.real.create(documents)
        if self.calls == self.crash_on:
            raise Crash  # SkyBiz answered; we die before recording it
        return result

    def read_window(self, *args: Any, **kwargs: Any) -> Any:
        return self.real.read_window(*args, **kwargs)


@pytest.mark.parametrize("before_sending", [False, True], ids=["after-the-request", "before-the-request"])
def test_a_crash_between_send_and_record_loses_nothing_and_creates_nothing_twice(
    rig: PushRig, before_sending: bool
) -> None:
    insert_customers(rig.warehouse, [smartacc_row(i) for i in range(30)])
    settings = covered_settings(batch_size=10)
    with pytest.raises(Crash):
        crashing = CrashingClient(rig.client, 2, before_sending=before_sending)
        push_customers(rig.warehouse, crashing, settings=settings)
    states = Counter(outbox_states(rig.warehouse).values())
    assert states == {"created": 10, "sent": 10, "pending": 10}

    rerun = push_customers(rig.warehouse, rig.client, settings=settings)

    rig.assert_each_created_once(CODES_30)
    assert set(outbox_states(rig.warehouse).values()) == {"created"}
    assert (rerun.selected, rerun.created, rerun.unresolved) == (20, 20, 0)
    assert rerun.confirmed == (0 if before_sending else 10)
    assert rerun.requests == (2 if before_sending else 1)
    assert rerun.reads == 10  # ten unknown outcomes: one filtered read each
    assert len(rig.creates) == 1 + (0 if before_sending else 1) + rerun.requests


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pipelines.config import Settings
    from pipelines.push import push_customers
    from pipelines.sources.skybiz.client import SkyBizClient
    from tests.push.helpers import covered_settings
    from pipelines.warehouse import open_warehouse

    real = SkyBizClient(Settings.from_env().require_skybiz())

    class KillAfterFirstCreate:
        def create(self, documents):
            real.create(documents)
            os.kill(os.getpid(), signal.SIGKILL)  # the answer arrived; the process dies unrecorded

        def read_window(self, *args, **kwargs):
            return real.read_window(*args, **kwargs)

    with open_warehouse(sys.argv[1]) as warehouse:
        push_customers(warehouse, KillAfterFirstCreate(), settings=covered_settings(batch_size=10))
    """
)


def test_a_killed_push_process_is_settled_by_the_next_run(duck_rig: PushRig) -> None:
    insert_customers(duck_rig.warehouse, [smartacc_row(i) for i in range(30)])
    duck_rig.warehouse.close()  # one DuckDB writer at a time: the child takes the file
    env = {**os.environ, **duck_rig.sandbox.endpoints.as_env()}

    child = subprocess.run(
        [sys.executable, "-c", CHILD, duck_rig.warehouse_url], env=env, capture_output=True, timeout=120
    )

    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    assert len(duck_rig.creates) == 1
    with open_warehouse(duck_rig.warehouse_url) as warehouse:
        assert Counter(outbox_states(warehouse).values()) == {"sent": 10, "pending": 20}
        rerun = push_customers(warehouse, duck_rig.client, settings=covered_settings(batch_size=10))
        assert set(outbox_states(warehouse).values()) == {"created"}
    assert (rerun.created, rerun.confirmed, rerun.requests) == (30, 10, 2)
    duck_rig.assert_each_created_once(CODES_30)


def test_unreadable_skybiz_leaves_outcomes_unresolved_until_the_next_run(
    make_rig: Any, duckdb_url: str
) -> None:
    rig = make_rig(duckdb_url)
    fragile = SkyBizClient(
        Settings.from_env(
            {**rig.sandbox.endpoints.as_env(), "SKYSMART_HTTP_MAX_RETRIES": "1"}
        ).require_skybiz()
    )
    insert_customers(rig.warehouse, [smartacc_row(i) for i in range(30)])
    rig.sandbox.skybiz.switches.inject("drop_after_commit", "500", "500")

    first = push_customers(rig.warehouse, fragile, settings=covered_settings(batch_size=10))

    assert (first.created, first.unresolved, first.requests) == (0, 30, 1)  # stopped after the lost answer
    assert Counter(outbox_states(rig.warehouse).values()) == {"sent": 10, "pending": 20}
    second = push_customers(rig.warehouse, rig.client, settings=covered_settings(batch_size=10))
    assert (second.created, second.confirmed, second.requests) == (30, 10, 2)
    rig.assert_each_created_once(CODES_30)
    fragile.close()


def test_429_is_waited_out_with_retry_after(duck_rig: PushRig) -> None:
    insert_customers(duck_rig.warehouse, [smartacc_row(i) for i in range(30)])
    duck_rig.sandbox.skybiz.switches.retry_after_seconds = 3
    duck_rig.sandbox.skybiz.switches.inject("429", "429")
    waits: list[float] = []

    result = push_customers(
        duck_rig.warehouse, duck_rig.client, sleep=waits.append, settings=covered_settings()
    )

    assert waits == [3.0, 3.0]
    assert (result.created, result.requests, result.batches, result.reads) == (30, 3, 1, 0)
    duck_rig.assert_each_created_once(CODES_30)
    row = outbox_rows(duck_rig)["smartacc:300-T00000"]
    assert (row["attempts"], row["unanswered_attempts"]) == (3, 0)


def test_a_rate_limit_that_outlasts_the_waits_stops_the_run_and_loses_nothing(duck_rig: PushRig) -> None:
    insert_customers(duck_rig.warehouse, [smartacc_row(i) for i in range(30)])
    duck_rig.sandbox.skybiz.switches.rate_limit_per_key_per_min = 1
    waits: list[float] = []
    settings = covered_settings(batch_size=10, max_waits=2)

    with pytest.raises(RateLimitedError):
        push_customers(duck_rig.warehouse, duck_rig.client, settings=settings, sleep=waits.append)

    assert len(waits) == 2 and all(1 <= w <= 60 for w in waits)  # the server's own Retry-After
    assert Counter(outbox_states(duck_rig.warehouse).values()) == {"created": 10, "pending": 20}
    duck_rig.sandbox.skybiz.switches.rate_limit_per_key_per_min = None
    rerun = push_customers(duck_rig.warehouse, duck_rig.client, settings=settings)
    assert (rerun.created, rerun.requests) == (20, 2)
    duck_rig.assert_each_created_once(CODES_30)


def test_create_permission_denied_stops_the_push_with_everything_pending(rig: PushRig) -> None:
    insert_customers(rig.warehouse, [smartacc_row(i) for i in range(30)])
    key = rig.sandbox.endpoints.skybiz_api_key
    rig.sandbox.skybiz.set_permissions(key, create=False)
    before = rig.sandbox.skybiz.customer_count

    with pytest.raises(PermissionDeniedError, match="Customer create permission denied"):
        push_customers(rig.warehouse, rig.client, settings=covered_settings())

    assert rig.sandbox.skybiz.customer_count == before
    rows = outbox_rows(rig)
    assert {r["state"] for r in rows.values()} == {"pending"}
    assert "Customer create permission denied" in rows["smartacc:300-T00000"]["reason"]
    rig.sandbox.skybiz.set_permissions(key, create=True)
    assert push_customers(rig.warehouse, rig.client, settings=covered_settings()).created == 30
    rig.assert_each_created_once(CODES_30)


def test_a_server_that_takes_fewer_documents_gets_halves(
    duck_rig: PushRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(skybiz_emulator, "MAX_DOCUMENTS", 100)  # "Maximum 500 documents per request"
    insert_customers(duck_rig.warehouse, [smartacc_row(i) for i in range(200)])

    result = push_customers(duck_rig.warehouse, duck_rig.client, settings=covered_settings())

    assert [len(r.body["customer_data"]["documents"]) for r in duck_rig.creates] == [200, 100, 100]
    assert duck_rig.creates[0].message == "Maximum 500 documents per request"
    assert (result.created, result.requests, result.batches) == (200, 3, 2)
    duck_rig.assert_each_created_once({f"SA-300-T{i:05d}" for i in range(200)})


def test_more_than_500_per_batch_is_refused_before_anything_runs() -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        covered_settings(batch_size=501)


class TamperFirst:
    """The real client; the first batch is altered on its way out (a server stricter than our checks)."""

    def __init__(self, real: SkyBizLike, tamper: Any) -> None:
        self.real, self.tamper, self.calls = real, tamper, 0

    def create(self, documents: Sequence[Mapping[str, Any]]) -> CreateResult:
        self.calls += 1
        docs = [dict(d) for d in documents]
        return self.real.create(self.tamper(docs) if self.calls == 1 else docs)

    def read_window(self, *args: Any, **kwargs: Any) -> Any:
        return self.real.read_window(*args, **kwargs)


def _drop_compulsory(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    del docs[1]["AccountCode"], docs[1]["CategoryCode"]
    return docs


def _repeat_first_code(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [*docs, dict(docs[0])]


def test_server_compulsory_fields_missing_rejects_that_document_only(duck_rig: PushRig) -> None:
    insert_customers(duck_rig.warehouse, [smartacc_row(i) for i in range(10)])

    result = push_customers(
        duck_rig.warehouse, TamperFirst(duck_rig.client, _drop_compulsory), settings=covered_settings()
    )

    assert (result.created, result.rejected, result.requests) == (9, 1, 2)
    row = outbox_rows(duck_rig)["smartacc:300-T00001"]
    assert row["state"] == "rejected"
    assert row["reason"].startswith(
        "AccountCode, CategoryCode: SkyBiz: Missing fields - AccountCode, CategoryCode (request req_"
    )


def test_server_duplicate_in_batch_sends_the_document_again_later(duck_rig: PushRig) -> None:
    insert_customers(duck_rig.warehouse, [smartacc_row(i) for i in range(10)])

    result = push_customers(
        duck_rig.warehouse, TamperFirst(duck_rig.client, _repeat_first_code), settings=covered_settings()
    )

    refusal = duck_rig.client.answers[0]
    assert [(d.cuscode, d.error) for d in refusal.fail_details.duplicate_customers] == [
        ("SA-300-T00000", "Duplicate CusCode found in the same batch")
    ]
    assert (result.created, result.rejected, result.requests) == (10, 0, 2)
    resent = duck_rig.creates[1].body["customer_data"]["documents"]
    assert resent[-1]["CusCode"] == "SA-300-T00000"  # the named document went to the back of the line
    duck_rig.assert_each_created_once({f"SA-300-T{i:05d}" for i in range(10)})


def test_a_limited_rerun_still_settles_every_unknown_outcome(duck_rig: PushRig) -> None:
    insert_customers(duck_rig.warehouse, [smartacc_row(i) for i in range(30)])
    with pytest.raises(Crash):
        push_customers(
            duck_rig.warehouse, CrashingClient(duck_rig.client, 1), settings=covered_settings(batch_size=10)
        )

    rerun = push_customers(duck_rig.warehouse, duck_rig.client, limit=3, settings=covered_settings())

    assert (rerun.selected, rerun.created, rerun.confirmed, rerun.requests) == (3, 3, 3, 0)
    assert Counter(outbox_states(duck_rig.warehouse).values()) == {"created": 10, "pending": 20}
    # All ten settled in one look-up, one filtered read per code (ten is the filtered-read ceiling).
    assert sorted(r.body["filters"]["CusCode"] for r in reads(duck_rig)) == [
        f"SA-300-T{i:05d}" for i in range(10)
    ]


def test_the_push_step_raises_its_own_retryable_error_while_outcomes_are_unknown(
    make_rig: Any, duckdb_url: str
) -> None:
    from pipelines.errors import PushUnfinishedError, TransientApiError
    from pipelines.steps import push_step
    from tests.push.helpers import today_myt

    rig = make_rig(duckdb_url)
    insert_customers(rig.warehouse, [smartacc_row(i) for i in range(30)])
    rig.warehouse.close()  # the step opens the DuckDB file itself
    env = {
        **rig.sandbox.endpoints.as_env(),
        "SKYSMART_WAREHOUSE": duckdb_url,
        "SKYSMART_HTTP_MAX_RETRIES": "1",
    }
    declared = (today_myt() - timedelta(days=30)).isoformat()
    rig.sandbox.skybiz.switches.inject("drop_after_commit", "500", "500")

    with pytest.raises(PushUnfinishedError, match="30 customer") as info:
        push_step(Settings.from_env(env), dry_run=False, skybiz_covered_from=declared)

    assert info.value.retryable and info.value.exit_code == 4
    assert not isinstance(
        info.value, TransientApiError
    )  # SkyBiz did not fail this step; the push is unfinished
    again = push_step(Settings.from_env(env), dry_run=False, skybiz_covered_from=declared)  # the task's retry
    assert (again["created"], again["unresolved"]) == (30, 0)
    rig.assert_each_created_once(CODES_30)
