"""The outbox as a state machine: one table of moves, every other move refused, stored values unchanged."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.errors import OutboxTransitionError, PushError, PushUnfinishedError, SkysmartError
from pipelines.push.outbox import (
    KEEP,
    STATES,
    TRANSITIONS,
    Outbox,
    OutboxEntry,
    OutboxEvent,
    OutboxState,
    next_state,
)
from pipelines.warehouse import open_warehouse

P, S, C, R, N = (
    OutboxState.PENDING,
    OutboxState.SENT,
    OutboxState.CREATED,
    OutboxState.REJECTED,
    OutboxState.NEEDS_REVIEW,
)
E = OutboxEvent

# The exactly-once protocol written out by hand, move by move, independently of the module's table.
LEGAL: dict[tuple[OutboxState, OutboxEvent], OutboxState] = {
    (P, E.PLAN): P,
    (R, E.PLAN): P,
    (P, E.REFUSE): R,
    (R, E.REFUSE): R,
    (N, E.REFUSE): R,
    (S, E.REFUSE): R,
    (P, E.HOLD): N,
    (R, E.HOLD): N,
    (S, E.HOLD): N,
    (P, E.SEND): S,
    (S, E.NOT_SAVED): P,
    (S, E.CONFIRM): C,
    (P, E.CONFIRM): C,
    (S, E.SKYBIZ_REJECT): R,
    (P, E.SKYBIZ_REJECT): R,
}
ALL_MOVES = list(itertools.product(OutboxState, OutboxEvent))
ILLEGAL = [move for move in ALL_MOVES if move not in LEGAL]


def entry(state: OutboxState, **changes: object) -> OutboxEntry:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    row = OutboxEntry(
        customer_key="smartacc:1",
        cus_code="SA-1",
        payload_hash="h",
        payload="{}",
        state=state,
        run_id="earlier-run",
        first_seen_at=now,
        updated_at=now,
        reason="an earlier reason",
    )
    for name, value in changes.items():
        setattr(row, name, value)
    return row


def test_the_table_is_the_protocol() -> None:
    table = {
        (before, event): after for event, moves in TRANSITIONS.items() for before, after in moves.items()
    }
    assert table == LEGAL


@pytest.mark.parametrize(("move", "after"), LEGAL.items(), ids=[f"{s}-{e}" for s, e in LEGAL])
def test_every_legal_move_is_allowed(move: tuple[OutboxState, OutboxEvent], after: OutboxState) -> None:
    before, event = move
    row = entry(before)
    row.apply(event, run_id="this-run")
    assert row.state is after
    assert row.run_id == "this-run"
    assert next_state(before.value, event) is after  # the stored string works as well as the enum


@pytest.mark.parametrize("move", ILLEGAL, ids=[f"{s}-{e}" for s, e in ILLEGAL])
def test_every_other_move_raises_and_changes_nothing(move: tuple[OutboxState, OutboxEvent]) -> None:
    before, event = move
    row = entry(before)
    with pytest.raises(OutboxTransitionError, match=f"{before.value}.*{event.value}"):
        row.apply(event, reason="never written", run_id="this-run")
    assert (row.state, row.reason, row.run_id) == (before, "an earlier reason", "earlier-run")


def test_created_is_final() -> None:
    assert not any(C in moves for moves in TRANSITIONS.values())


def test_an_unknown_stored_state_is_refused() -> None:
    with pytest.raises(OutboxTransitionError, match="'shipped'"):
        next_state("shipped", E.SEND)


def test_events_say_who_refused_and_why() -> None:
    refused = entry(P)
    refused.apply(E.REFUSE, reason="Email: not an address")
    assert (refused.state, refused.refused_by, refused.reason) == (R, "skysmart", "Email: not an address")

    by_skybiz = entry(S)
    by_skybiz.apply(E.SKYBIZ_REJECT, reason="CurCode: SkyBiz: no such currency")
    assert (by_skybiz.state, by_skybiz.refused_by) == (R, "skybiz")

    planned = entry(R, refused_by="skysmart")
    planned.apply(E.PLAN, reason=None)
    assert (planned.state, planned.refused_by, planned.reason) == (P, None, None)

    put_back = entry(S)
    put_back.apply(E.NOT_SAVED)  # KEEP by default: a 429 says nothing new about the document
    assert (put_back.state, put_back.reason) == (P, "an earlier reason")
    put_back.apply(E.SEND, reason=KEEP)
    assert put_back.state is S


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_states_are_stored_as_the_same_strings(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Warehouses written before the enum keep working: the column holds the plain strings, both ways."""
    url = str(tmp_path / "w.duckdb") if engine == "duckdb" else request.getfixturevalue("postgres_url")
    with open_warehouse(url) as wh:
        wh.ensure_schema()
        outbox = Outbox(wh)
        outbox.ensure()
        rows = [
            entry(state, customer_key=f"k-{state.value}", cus_code=f"C-{state.value}")
            for state in OutboxState
        ]
        outbox.save(rows)
        stored = dict(wh.query("SELECT customer_key, state FROM skybiz_push_outbox"))
        assert stored == {f"k-{s}": s for s in STATES}
        assert all(type(value) is str for value in stored.values())
        # A row written by an older version (plain SQL) reads back as its state.
        wh.execute("UPDATE skybiz_push_outbox SET state = 'needs_review' WHERE customer_key = 'k-pending'")
        loaded = outbox.load()
        assert loaded["k-pending"].state is N
        assert {key: row.state.value for key, row in loaded.items()} == {
            **stored,
            "k-pending": "needs_review",
        }
        wh.execute("UPDATE skybiz_push_outbox SET state = 'shipped' WHERE customer_key = 'k-sent'")
        with pytest.raises(OutboxTransitionError, match="'shipped'"):
            outbox.load()


def test_an_unfinished_push_is_its_own_retryable_error() -> None:
    error = PushUnfinishedError("3 customer(s) still have an unknown outcome in SkyBiz", source="skybiz")
    assert isinstance(error, PushError) and isinstance(error, SkysmartError)
    assert error.retryable is True and error.exit_code == 4  # "retry later"
    assert OutboxTransitionError.retryable is False and OutboxTransitionError.exit_code == 1  # a bug
