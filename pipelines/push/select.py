"""Which SmartAcc customers SkyBiz lacks: read current customers from the warehouse and match them.

A SmartAcc customer has a SkyBiz counterpart when SkyBiz holds a customer whose ``CusCode`` is the code we
derive for it (we, or an earlier run, created it), when the outbox already recorded it as created, or when a
configured matching rule finds the same business under another code (same registration number, e-mail or
phone, compared normalized). Everyone else is a candidate for a create document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.contracts import quote_ident
from pipelines.errors import PushValidationError
from pipelines.push.mapping import (
    MatchRule,
    PushMapping,
    Value,
    build_document,
    match_keys,
    name_similarity,
    payload_hash,
)
from pipelines.push.outbox import OutboxEntry
from pipelines.push.ports import WarehouseLike

CUSTOMERS_TABLE = "customers"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A SmartAcc customer SkyBiz lacks, with its create document and what the mapping could not fill."""

    customer_key: str
    cus_code: str
    document: dict[str, Value]
    payload_hash: str
    mapping_problems: tuple[PushValidationError, ...] = ()
    review: str | None = None  # a possible SkyBiz duplicate a person should look at first


@dataclass(frozen=True, slots=True)
class Counterpart:
    """A SmartAcc customer that SkyBiz already has, and how we know."""

    customer_key: str
    cus_code: str
    skybiz_code: str
    matched_by: str


@dataclass(frozen=True, slots=True)
class Selection:
    """The outcome of matching: candidates (limit applied, in sending order) and counterparts."""

    candidates: tuple[Candidate, ...]
    counterparts: tuple[Counterpart, ...]


@dataclass(frozen=True, slots=True)
class SkyBizIndex:
    """SkyBiz customers in the warehouse: codes, and per matching rule normalized value → (code, name)s."""

    codes: frozenset[str]
    by_rule: Mapping[str, Mapping[str, list[tuple[str, str]]]]


def load_skybiz_index(warehouse: WarehouseLike, mapping: PushMapping, rules: Sequence[str]) -> SkyBizIndex:
    """Read the SkyBiz side once (codes upper-cased, so a hand-typed ``sa-300-a0001`` counts as ours)."""
    if not warehouse.table_exists(CUSTOMERS_TABLE):
        return SkyBizIndex(frozenset(), {})
    active = [m for m in mapping.matching if m.name in rules]
    columns = list(dict.fromkeys(["source_customer_id", "name", *(c for m in active for c in m.columns)]))
    rows = _rows(warehouse, columns, "skybiz")
    codes = frozenset(str(r["source_customer_id"]).strip().upper() for r in rows)
    by_rule: dict[str, dict[str, list[tuple[str, str]]]] = {m.name: {} for m in active}
    for row in rows:
        for rule in active:
            for key in match_keys(row, rule):
                entry = (str(row["source_customer_id"]), str(row["name"] or ""))
                by_rule[rule.name].setdefault(key, []).append(entry)
    return SkyBizIndex(codes, by_rule)


def select_customers(
    warehouse: WarehouseLike,
    mapping: PushMapping,
    *,
    outbox: Mapping[str, OutboxEntry],
    match_on: Sequence[str],
    defaults: Mapping[str, Value] | None = None,
    include_inactive: bool = False,
    limit: int | None = None,
) -> Selection:
    """SmartAcc customers without a SkyBiz counterpart, as create documents.

    Order: customers whose last attempt's outcome is unknown (``sent``) come first, then ``pending`` ones,
    then the rest by ``customer_key`` — so a ``--limit`` run always settles earlier attempts before it
    starts new ones, and two runs with the same data choose the same customers.

    Args:
        warehouse: where ``customers`` lives (current rows only: one per key).
        mapping: the SmartAcc → SkyBiz mapping.
        outbox: the outbox rows by customer key.
        match_on: the mapping's matching rules to use (the CusCode rule always applies).
        defaults: per-run field defaults.
        include_inactive: also push customers SmartAcc marks inactive.
        limit: at most this many candidates.
    """
    if not warehouse.table_exists(CUSTOMERS_TABLE):
        return Selection((), ())
    index = load_skybiz_index(warehouse, mapping, match_on)
    active_rules = [m for m in mapping.matching if m.name in match_on]
    columns = list(dict.fromkeys([*mapping.source_columns, "name", "is_active"]))
    rows = _rows(warehouse, columns, mapping.source_system)
    counterparts: list[Counterpart] = []
    candidates: list[tuple[int, str, Candidate]] = []
    for row in rows:
        if not include_inactive and row.get("is_active") is False:
            continue
        key = str(row["customer_key"])
        code = mapping.cus_code.derive(str(row.get(mapping.cus_code.source_column) or ""))
        entry = outbox.get(key)
        found = _counterpart(row, key, code, entry, index, active_rules)
        if isinstance(found, Counterpart):
            counterparts.append(found)
            continue
        mapped = build_document(row, mapping, defaults)
        candidate = Candidate(
            key, code, mapped.document, payload_hash(mapped.document), mapped.problems, review=found
        )
        rank = {"sent": 0, "pending": 1}.get(entry.state, 2) if entry else 2
        candidates.append((rank, key, candidate))
    candidates.sort(key=lambda item: (item[0], item[1]))
    chosen = [c for _, _, c in candidates]
    if limit is not None:
        chosen = chosen[: max(limit, 0)]
    return Selection(tuple(chosen), tuple(counterparts))


def _counterpart(
    row: Mapping[str, Any],
    key: str,
    code: str,
    entry: OutboxEntry | None,
    index: SkyBizIndex,
    rules: Iterable[MatchRule],
) -> Counterpart | str | None:
    """The SkyBiz counterpart; or why a person should look first (a weak match); or ``None``."""
    if code and code.upper() in index.codes:
        return Counterpart(key, code, code, "cus_code")
    if entry is not None and entry.state == "created":
        return Counterpart(key, code, entry.cus_code, "outbox")
    if entry is not None and entry.state == "sent":
        return None  # a request may have created it: the push must look before anything else
    name = str(row.get("name") or "")
    doubt: str | None = None
    # Identifiers that decide alone first; then those that need the names to agree.
    for rule in sorted(rules, key=lambda r: r.confirm_name is not None):
        table = index.by_rule.get(rule.name, {})
        for value in sorted(match_keys(row, rule)):
            holders = table.get(value)
            if not holders:
                continue
            score, sky_code, sky_name = max((name_similarity(name, n), c, n) for c, n in holders)
            if rule.confirm_name is None or score >= rule.confirm_name:
                return Counterpart(key, code, sky_code, rule.name)
            doubt = doubt or (
                f"possible duplicate of SkyBiz {sky_code} {sky_name!r}: same {rule.name}, names share "
                f"{score:.0%} of their words"
            )
    return doubt


def _rows(warehouse: WarehouseLike, columns: Sequence[str], source_system: str) -> list[dict[str, Any]]:
    cols = ", ".join(quote_ident(c) for c in columns)
    result = warehouse.query(
        f"SELECT {cols} FROM {quote_ident(CUSTOMERS_TABLE)} WHERE source_system = ? ORDER BY customer_key",
        (source_system,),
    )
    return [dict(zip(columns, row, strict=True)) for row in result]
