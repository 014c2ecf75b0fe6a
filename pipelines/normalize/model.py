"""From a source's mapped columns to the common model and the quarantine, the same for every source.

A source module (``skybiz.py``, ``smartacc.py``) fills a :class:`Draft`: typed model columns, the issue
masks of what it could not read, the quarantine rules a row can break, and which raw fields it used. This
module then does what must not differ between sources: pick the first broken rule per row, keep the newest
of duplicate keys, collect every unused raw field into ``source_extras``, write ``data_issues``, hash the
business columns and cast everything to the contracts' Arrow schemas.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contracts import Contract, arrow_schema, load_contract
from pipelines.errors import NormalizeError
from pipelines.normalize.clean import (
    TEXT,
    UTC_TS,
    as_text,
    control_characters,
    flag,
    join_present,
    json_object,
    json_quote,
    lit,
    map_distinct,
    matches,
    sha256_hex,
    where,
    with_validity,
)

CUSTOMER_CONTRACT: Final = "customer"
QUARANTINE_CONTRACT: Final = "customer_quarantine"
LINEAGE: Final = ("_extracted_at", "_request_id", "_page", "_window", "_unknown_fields")
# Columns record_hash leaves out: lineage, the hash itself, and modified_at (an edit that changes nothing
# but the timestamp is not new content).
HASH_EXCLUDED: Final = frozenset({"source_window", "extracted_at", "record_hash", "modified_at"})
DUPLICATE_RULE: Final = "duplicate_superseded"
# data_issues code of a row whose mapped text held control characters (bidi overrides included) that
# cleaning removed; the value is kept cleaned, so the code is the only trace of them.
CONTROL_ISSUE: Final = "text_control_removed"
# Rows are assembled in slices of this size when cast to the contracts' 32-bit-offset ``string`` columns.
_SLICE_ROWS: Final = 131_072


@dataclass(frozen=True, slots=True)
class RowRule:
    """A quarantine rule as evaluated on every row: where it failed and the raw value that broke it."""

    rule: str
    field: str
    failed: pa.Array
    offending: pa.Array


@dataclass(slots=True)
class Draft:
    """What a source module builds for one raw table; :func:`assemble` turns it into output tables.

    Attributes:
        source: ``skybiz`` or ``smartacc``.
        raw: the raw table, as read from the lake (never modified).
        id_field: the raw field holding the source id, named in duplicate quarantines.
        columns: model columns filled so far, already of the contract's Arrow type (text as large_string).
        issues: ``(code, mask)`` in the order codes appear in ``data_issues``.
        extras: ``(key, values, is_json)`` for ``source_extras`` besides the unused raw fields.
        rules: quarantine rules in priority order; a row is quarantined by the first it breaks.
        used: raw fields that have a model column (everything else lands in ``source_extras``).
    """

    source: str
    raw: pa.Table
    id_field: str
    columns: dict[str, pa.Array] = field(default_factory=dict)
    issues: list[tuple[str, pa.Array]] = field(default_factory=list)
    extras: list[tuple[str, pa.Array, bool]] = field(default_factory=list)
    rules: list[RowRule] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    @property
    def rows(self) -> int:
        """Row count of the raw table."""
        return int(self.raw.num_rows)

    def text(self, name: str) -> pa.Array:
        """A raw vendor column as text; a column the table lacks reads as all-null (the key was absent)."""
        if name not in self.raw.column_names:
            return pa.nulls(self.rows, TEXT)
        return as_text(self.raw.column(name))

    def set(self, column: str, values: pa.Array, *fields: str) -> None:
        """Fill a model column from ``fields`` (which then stay out of ``source_extras``)."""
        self.columns[column] = values
        self.used.update(fields)

    def issue(self, code: str, mask: pa.Array, original: tuple[str, pa.Array] | None = None) -> None:
        """Record an issue code where ``mask`` holds, keeping ``original`` text in extras on those rows."""
        self.issues.append((code, flag(mask)))
        if original is not None:
            key, values = original
            self.extras.append((key, where(mask, as_text(values)), False))

    def extra(
        self, key: str, values: pa.Array, *, is_json: bool = False, field_name: str | None = None
    ) -> None:
        """Put a value into ``source_extras`` explicitly (and mark its raw field as handled)."""
        self.extras.append((key, as_text(values), is_json))
        self.used.add(field_name or key)

    def rule(self, rule: str, field_name: str, failed: pa.Array, offending: pa.Array) -> None:
        """Add a quarantine rule (evaluated in the order added)."""
        self.rules.append(RowRule(rule, field_name, flag(failed), as_text(offending)))


@dataclass(frozen=True, slots=True)
class Decisions:
    """Per raw row, the quarantine rule it broke (null: it is normalized), the field and the raw value.

    Decided window-wide (duplicates need every row of the window), then applied batch by batch.
    """

    rule: pa.Array
    field: pa.Array
    offending: pa.Array

    def __len__(self) -> int:
        return len(self.rule)

    def slice(self, offset: int, length: int) -> Decisions:
        """The decisions of rows ``offset`` .. ``offset + length - 1``."""
        rule, field_name, offending = (
            a.slice(offset, length) for a in (self.rule, self.field, self.offending)
        )
        return Decisions(rule, field_name, offending)


@dataclass(frozen=True, slots=True)
class Assembled:
    """The two output tables of one raw table, with the counts the manifest records."""

    normalized: pa.Table
    quarantine: pa.Table
    rows_in: int
    reasons: dict[str, int]


def decide(draft: Draft) -> Decisions:
    """Apply the quarantine rules (first broken rule wins) and supersede older duplicates of a key.

    Only the identity, currency, modification time and version columns of ``draft`` are read, so a draft
    of just those raw fields is enough (see the sources' ``rules_only``).
    """
    n = draft.rows
    rule = pa.nulls(n, TEXT)
    field_name = pa.nulls(n, TEXT)
    offending = pa.nulls(n, TEXT)
    for r in draft.rules:
        first = pc.and_(r.failed, pc.is_null(rule))
        rule = where(first, lit(r.rule), rule)
        field_name = where(first, lit(r.field), field_name)
        offending = where(first, r.offending, offending)
    superseded = _superseded(draft, pc.is_null(rule))
    if len(superseded):
        hit = pc.is_in(pa.array(np.arange(n, dtype=np.int64)), value_set=superseded)
        rule = where(hit, lit(DUPLICATE_RULE), rule)
        field_name = where(hit, lit(draft.id_field), field_name)
        offending = where(hit, draft.text(draft.id_field), offending)
    return Decisions(rule, field_name, offending)


def assemble(
    draft: Draft,
    *,
    now: datetime | None = None,
    decisions: Decisions | None = None,
    row_offset: int = 0,
) -> Assembled:
    """Build the model rows and the quarantine rows of one raw table (or one batch of a window).

    Args:
        draft: the source's mapping of the raw rows.
        now: ``quarantined_at`` (default: the current time).
        decisions: the window-wide decisions for these rows; decided from ``draft`` alone when omitted.
        row_offset: the position of the first row in the raw window file (for ``row_number``).

    Raises:
        NormalizeError: the raw table lacks lineage, or (a bug) rows were lost on the way.
    """
    n = draft.rows
    for name in ("_extracted_at", "_window"):
        if name not in draft.raw.column_names:
            raise NormalizeError(
                f"raw table has no {name} column; it was not written by extract", source=draft.source
            )
    decisions = decisions if decisions is not None else decide(draft)
    if len(decisions) != n:
        raise NormalizeError(f"{len(decisions)} decisions for {n} rows", source=draft.source)
    quarantined_at = now or datetime.now(UTC)
    keep = pc.is_null(decisions.rule)
    normalized = _normalized_table(draft, keep)
    rows = pc.indices_nonzero(pc.is_valid(decisions.rule))
    quarantine = _quarantine_table(draft, rows, decisions, quarantined_at, row_offset)
    if normalized.num_rows + quarantine.num_rows != n:
        raise NormalizeError(
            f"raw rows {n} != normalized {normalized.num_rows} + quarantined {quarantine.num_rows}",
            source=draft.source,
        )
    reasons = {str(k): int(v) for k, v in _value_counts(quarantine.column("rule")).items()}
    return Assembled(normalized=normalized, quarantine=quarantine, rows_in=n, reasons=reasons)


def _superseded(draft: Draft, kept: pa.Array) -> pa.Array:
    """Row numbers of older duplicates of a key among the ``kept`` rows.

    Newest ``modified_at`` wins, then the highest ``source_version``, then the later row in the file (the
    later page was read later).
    """
    idx = pc.indices_nonzero(kept)
    version = draft.columns.get("source_version", pa.nulls(draft.rows, pa.int64()))
    candidates = pa.table(
        {
            "k": draft.columns["customer_key"].take(idx),
            "m": draft.columns["modified_at"].take(idx),
            "v": version.take(idx),
            "r": pc.cast(idx, pa.int64()),
        }
    )
    if candidates.num_rows < 2:
        return pa.array([], pa.int64())
    order = pc.sort_indices(
        candidates,
        sort_keys=[
            ("k", "ascending", "at_end"),
            ("m", "descending", "at_end"),
            ("v", "descending", "at_end"),
            ("r", "descending", "at_end"),
        ],
    )
    keys = candidates.column("k").take(order).combine_chunks()
    rows = candidates.column("r").take(order).combine_chunks()
    repeat = pc.equal(keys.slice(1), keys.slice(0, len(keys) - 1))
    return rows.slice(1).filter(repeat)


def _normalized_table(draft: Draft, keep: pa.Array) -> pa.Table:
    """The model table of the rows in ``keep``, in raw row order.

    Every column is computed for all raw rows and the table filtered once at the end: one filter per
    column is cheaper than taking each input, and quarantined rows are a sliver of a window.
    """
    contract = load_contract(CUSTOMER_CONTRACT)
    schema = arrow_schema(contract)
    n = draft.rows
    cols: dict[str, pa.Array] = {}
    for f in schema:
        if f.name in draft.columns:
            cols[f.name] = draft.columns[f.name]
        else:
            cols[f.name] = pa.nulls(n, TEXT if pa.types.is_string(f.type) else f.type)
    cols["source_window"] = as_text(draft.raw.column("_window"))
    extracted = pc.cast(draft.raw.column("_extracted_at"), UTC_TS)
    cols["extracted_at"] = extracted.combine_chunks() if isinstance(extracted, pa.ChunkedArray) else extracted
    issues = [where(mask, lit(code)) for code, mask in draft.issues]
    controls = _control_rows(draft)
    if controls is not None:
        issues.append(where(controls, lit(CONTROL_ISSUE)))
    cols["data_issues"] = join_present(issues, ";", n)
    cols["source_extras"] = _extras(draft)
    cols["record_hash"] = sha256_hex(canonical_text(cols, contract))
    table = _to_schema(cols, schema, n, check_required=False)
    if not pc.all(keep).as_py():
        table = table.filter(keep)
    _check_required(table)
    return table


def _control_rows(draft: Draft) -> pa.Array | None:
    """Rows where a raw field mapped to a model column held a control character; ``None`` if none did."""
    found: pa.Array | None = None
    for name in sorted(draft.used):
        if name in draft.raw.column_names:
            mask = control_characters(draft.raw.column(name))
            if pc.any(mask).as_py():
                found = mask if found is None else pc.or_(found, mask)
    return found


def _extras(draft: Draft) -> pa.Array:
    """``source_extras``: unused raw fields (non-blank, exactly as sent), then the explicit extras."""
    members: list[tuple[str, pa.Array, bool]] = []
    for name in draft.raw.column_names:
        if name in draft.used or name in LINEAGE:
            continue
        values = as_text(draft.raw.column(name))
        blank = pc.or_(pc.equal(values, lit("")), pc.utf8_is_space(values))
        members.append((name, with_validity(values, pc.invert(blank)), False))
    members += list(draft.extras)
    if "_unknown_fields" in draft.raw.column_names:
        members.append(("_unknown_fields", *_embeddable_json(draft.text("_unknown_fields"))))
    return json_object(members, draft.rows)


def _embeddable_json(values: pa.Array) -> tuple[pa.Array, bool]:
    """Non-empty JSON objects as they are; anything else (never expected) as a quoted string."""

    def kind(text: str) -> str:
        try:
            parsed = json.loads(text)
        except ValueError:
            return "text"
        return "object" if isinstance(parsed, dict) and parsed else ("empty" if parsed == {} else "text")

    kinds = map_distinct(values, kind, TEXT)
    if pc.any(flag(pc.equal(kinds, lit("text")))).as_py():
        quoted = json_quote(values)
        return where(
            pc.not_equal(kinds, lit("empty")), where(pc.equal(kinds, lit("object")), values, quoted)
        ), True
    return where(pc.equal(kinds, lit("object")), values), True


CANONICAL_SEPARATOR: Final = "\x1f"
CANONICAL_NULL: Final = "\x1e"


def canonical_text(columns: dict[str, pa.Array], contract: Contract) -> pa.Array:
    """The text ``record_hash`` digests: the business columns in contract order, as one string.

    Values are joined by U+001F (unit separator) and a null is U+001E (record separator). Text columns
    are as normalized (clean text never holds control characters, and ``source_extras`` is JSON, which
    escapes them), so the form is unambiguous without quoting; decimals are their fixed-scale text
    (``1500.00``), integers decimal, booleans ``true``/``false``, dates days and timestamps microseconds
    since 1970-01-01 UTC. The same values give the same text on any machine, in any run, in any batch.

    Raises:
        NormalizeError: a text value holds a control character (a cleaning step was skipped: a bug).
    """
    parts: list[pa.Array] = []
    for col in contract.columns:
        if col.name in HASH_EXCLUDED:
            continue
        values = columns[col.name]
        if col.physical_type in ("string", "json"):
            text = as_text(values)
            if _has_control_bytes(text):
                raise NormalizeError(f"control character in normalized column {col.name}", field=col.name)
        elif col.physical_type == "date":
            text = pc.cast(pc.cast(values, pa.int32()), TEXT)
        elif col.physical_type == "timestamp":
            text = pc.cast(pc.cast(values, pa.int64()), TEXT)
        else:
            text = pc.cast(values, TEXT)
        parts.append(text)
    return pc.binary_join_element_wise(
        *parts, lit(CANONICAL_SEPARATOR), null_handling="replace", null_replacement=CANONICAL_NULL
    )


def _has_control_bytes(values: pa.Array) -> bool:
    """A buffer scan first (cheap); a regex over the values confirms (a slice's buffer holds other rows)."""
    data = values.buffers()[2]
    if data is None or data.size == 0 or int(np.frombuffer(data, dtype=np.uint8).min()) >= 0x20:
        return False
    return bool(pc.any(matches(values, r"[\x00-\x1f]")).as_py())


def _quarantine_table(
    draft: Draft, rows: pa.Array, decisions: Decisions, quarantined_at: datetime, row_offset: int
) -> pa.Table:
    schema = arrow_schema(load_contract(QUARANTINE_CONTRACT))
    m = len(rows)
    extracted = pc.cast(draft.raw.column("_extracted_at"), UTC_TS)
    if isinstance(extracted, pa.ChunkedArray):
        extracted = extracted.combine_chunks()
    cols = {
        "source_system": pa.repeat(lit(draft.source), m),
        "source_customer_id": draft.text(draft.id_field).take(rows),
        "source_window": as_text(draft.raw.column("_window")).take(rows),
        "row_number": pc.add(pc.cast(rows, pa.int64()), row_offset),
        "rule": decisions.rule.take(rows),
        "field": decisions.field.take(rows),
        "offending_value": decisions.offending.take(rows),
        "raw_record": raw_records(draft.raw, rows),
        "extracted_at": extracted.take(rows),
        "quarantined_at": pa.repeat(pa.scalar(quarantined_at.astimezone(UTC), UTC_TS), m),
    }
    return _to_schema(cols, schema, m)


def raw_records(raw: pa.Table, rows: pa.Array) -> pa.Array:
    """The given raw rows as JSON objects of their present fields, lineage included, to re-drive them."""
    members: list[tuple[str, pa.Array, bool]] = []
    for name in raw.column_names:
        column = raw.column(name).take(rows)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if name == "_unknown_fields":
            members.append((name, *_embeddable_json(as_text(column))))
        elif pa.types.is_timestamp(column.type):
            members.append((name, pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ"), False))
        elif pa.types.is_integer(column.type):
            members.append((name, pc.cast(column, TEXT), True))
        else:
            members.append((name, as_text(column), False))
    return pc.fill_null(json_object(members, len(rows)), lit("{}"))


def _to_schema(
    cols: dict[str, pa.Array], schema: pa.Schema, rows: int, *, check_required: bool = True
) -> pa.Table:
    """A table of exactly ``schema`` (the contract's), cast in slices so no text chunk exceeds 2 GiB."""
    arrays = []
    for f in schema:
        values = cols[f.name]
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if rows <= _SLICE_ROWS or values.type == f.type:
            arrays.append(pa.chunked_array([pc.cast(values, f.type)], f.type))
        else:
            chunks = [
                pc.cast(values.slice(start, _SLICE_ROWS), f.type) for start in range(0, rows, _SLICE_ROWS)
            ]
            arrays.append(pa.chunked_array(chunks, f.type))
    table = pa.Table.from_arrays(arrays, schema=schema)
    if check_required:
        _check_required(table)
    return table


def _check_required(table: pa.Table) -> None:
    """A required column with a null means a quarantine rule is missing: fail loudly, write nothing."""
    required = [f.name for f in table.schema if not f.nullable and table.column(f.name).null_count]
    if required:
        raise NormalizeError(f"required column(s) with nulls after normalization: {', '.join(required)}")


def _value_counts(values: pa.ChunkedArray | pa.Array) -> dict[str, int]:
    counts = pc.value_counts(values)
    return {
        str(v): int(c)
        for v, c in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
        if v is not None
    }
