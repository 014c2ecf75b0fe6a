"""Which SmartAcc customers SkyBiz lacks: read current customers and the identity matches, and decide.

A SmartAcc customer has a SkyBiz counterpart when SkyBiz holds a customer whose ``CusCode`` is the code we
derive for it (we, or an earlier run, created it), when the outbox already recorded it as created, or when
identity resolution (:mod:`pipelines.identity`, table ``customer_matches``) classes it ``same`` as a SkyBiz
record — normalized *or* quarantined. A ``possible`` match holds it for a person (``needs_review``, with the
evidence). Everyone else is a candidate for a create document. Nothing else decides existence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipelines.contracts import quote_ident
from pipelines.errors import PushValidationError
from pipelines.identity import POSSIBLE, SAME, links
from pipelines.push.mapping import PushMapping, Value, build_document, payload_hash
from pipelines.push.outbox import OutboxEntry, OutboxState
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
class Link:
    """The strongest identity match of one SmartAcc customer (``same`` beats ``possible``)."""

    match_class: str
    skybiz_code: str
    skybiz_record: str
    evidence: str


def skybiz_codes(warehouse: WarehouseLike) -> frozenset[str]:
    """SkyBiz codes in the warehouse, upper-cased (a hand-typed ``sa-300-a0001`` counts as ours)."""
    rows = warehouse.query(
        f"SELECT source_customer_id FROM {quote_ident(CUSTOMERS_TABLE)} WHERE source_system = 'skybiz'"
    )
    return frozenset(str(code).strip().upper() for (code,) in rows)


def strongest_links(matches: pd.DataFrame) -> dict[str, Link]:
    """Per SmartAcc key, its ``same`` match if any, else its ``possible`` one (lowest code first)."""
    rank = {SAME: 0, POSSIBLE: 1}
    ordered = sorted(
        matches.itertuples(index=False),
        key=lambda m: (str(m.smartacc_key), rank.get(str(m.match_class), 2), str(m.skybiz_code)),
    )
    out: dict[str, Link] = {}
    for m in ordered:
        key = str(m.smartacc_key)
        if key not in out and str(m.match_class) in rank:
            out[key] = Link(str(m.match_class), str(m.skybiz_code), str(m.skybiz_record), str(m.evidence))
    return out


def select_customers(
    warehouse: WarehouseLike,
    mapping: PushMapping,
    *,
    outbox: Mapping[str, OutboxEntry],
    defaults: Mapping[str, Value] | None = None,
    include_inactive: bool = False,
    limit: int | None = None,
    write_matches: bool = True,
) -> Selection:
    """SmartAcc customers without a SkyBiz counterpart, as create documents.

    Order: customers whose last attempt's outcome is unknown (``sent``) come first, then ``pending`` ones,
    then the rest by ``customer_key`` — so a ``--limit`` run always settles earlier attempts before it
    starts new ones, and two runs with the same data choose the same customers.

    Args:
        warehouse: where ``customers`` lives (current rows only: one per key).
        mapping: the SmartAcc → SkyBiz mapping.
        outbox: the outbox rows by customer key.
        defaults: per-run field defaults.
        include_inactive: also push customers SmartAcc marks inactive.
        limit: at most this many candidates.
        write_matches: rebuild ``customer_matches`` if stale (``False``: compute in memory; a dry run).
    """
    if not warehouse.table_exists(CUSTOMERS_TABLE):
        return Selection((), ())
    codes = skybiz_codes(warehouse)
    linked = strongest_links(links(warehouse, write=write_matches))
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
        found = _counterpart(key, code, entry, codes, linked.get(key))
        if isinstance(found, Counterpart):
            counterparts.append(found)
            continue
        mapped = build_document(row, mapping, defaults)
        candidate = Candidate(
            key, code, mapped.document, payload_hash(mapped.document), mapped.problems, review=found
        )
        rank = {OutboxState.SENT: 0, OutboxState.PENDING: 1}.get(entry.state, 2) if entry else 2
        candidates.append((rank, key, candidate))
    candidates.sort(key=lambda item: (item[0], item[1]))
    chosen = [c for _, _, c in candidates]
    if limit is not None:
        chosen = chosen[: max(limit, 0)]
    return Selection(tuple(chosen), tuple(counterparts))


def _counterpart(
    key: str, code: str, entry: OutboxEntry | None, codes: frozenset[str], link: Link | None
) -> Counterpart | str | None:
    """The SkyBiz counterpart; or why a person should look first (a ``possible`` match); or ``None``."""
    if code and code.upper() in codes:
        return Counterpart(key, code, code, "cus_code")
    if entry is not None and entry.state == OutboxState.CREATED:
        return Counterpart(key, code, entry.cus_code, "outbox")
    if entry is not None and entry.state == OutboxState.SENT:
        return None  # a request may have created it: the push must look before anything else
    if link is None:
        return None
    where = " (quarantined in skysmart)" if link.skybiz_record != CUSTOMERS_TABLE else ""
    if link.match_class == SAME:
        return Counterpart(key, code, link.skybiz_code, f"identity: {link.evidence}{where}")
    return f"possible duplicate of SkyBiz {link.skybiz_code}{where}: {link.evidence}"


def _rows(warehouse: WarehouseLike, columns: Sequence[str], source_system: str) -> list[dict[str, Any]]:
    cols = ", ".join(quote_ident(c) for c in columns)
    result = warehouse.query(
        f"SELECT {cols} FROM {quote_ident(CUSTOMERS_TABLE)} WHERE source_system = $1 ORDER BY customer_key",
        (source_system,),
    )
    return [dict(zip(columns, row, strict=True)) for row in result]
