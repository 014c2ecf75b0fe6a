"""Normalize a raw window into the common model: the pure core and the lake step around it.

``normalize_frame`` (pandas in, pandas out) and ``normalize_table`` (Arrow in, Arrow out) are pure: they
read nothing and write nothing. ``normalize_window`` reads a raw window from the lake, normalizes it and
commits ``normalized/`` and ``quarantine/`` for the same window, checking that every raw row is in exactly
one of them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contracts import arrow_schema, load_contract, pandas_dtypes
from pipelines.errors import NormalizeError, SkysmartError
from pipelines.lake import CUSTOMERS, NORMALIZED, QUARANTINE, RAW, Lake, Manifest
from pipelines.normalize.model import (
    CUSTOMER_CONTRACT,
    LINEAGE,
    QUARANTINE_CONTRACT,
    Assembled,
    Decisions,
    Draft,
    RowRule,
    assemble,
    decide,
)
from pipelines.sources import registry
from pipelines.sources.spec import SourceSpec
from pipelines.windows import Window

BATCH_ROWS: Final = 50_000
"""Rows normalized at a time: memory stays flat however big a window is. Measured peak of Arrow memory
for SmartAcc (the wider source): ~6.5 KB per batch row (~370 MB at 50,000), the same CPU time as 100,000."""


@dataclass(frozen=True, slots=True)
class NormalizeResult:
    """What one normalized window produced; small and secret-free, so it can travel through XCom.

    Attributes:
        source: the source's registered name.
        window: the window key, ``YYYY-MM-DD_YYYY-MM-DD``.
        rows_in: raw rows read.
        normalized: rows committed to ``normalized/``.
        quarantined: rows committed to ``quarantine/``; ``rows_in == normalized + quarantined``.
        quarantine_reasons: quarantined rows per rule.
        normalized_url: the committed normalized Parquet file.
        quarantine_url: the committed quarantine Parquet file.
        seconds: wall time of the step.
    """

    source: str
    window: str
    rows_in: int
    normalized: int
    quarantined: int
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    normalized_url: str = ""
    quarantine_url: str = ""
    seconds: float = 0.0


def normalize_table(
    source: str,
    raw: pa.Table,
    lookups: pa.Table | Mapping[str, pa.Table] | None = None,
    *,
    now: datetime | None = None,
) -> Assembled:
    """Normalize one raw Arrow table (the pure core).

    Args:
        source: a registered source.
        raw: the raw window as the lake holds it (vendor text plus lineage).
        lookups: the window's lookup snapshots by entity (SmartAcc: ``{"terms": ...}``); a bare table is
            the source's only lookup (SmartAcc's Terms: ``AcTermID``, ``TermDays``).
        now: the ``quarantined_at`` to stamp (default: the current time).

    Raises:
        NormalizeError: unknown source or one without a normalizer, missing lineage or lookup snapshot.
    """
    spec = _spec(source)
    return assemble(_draft(spec, raw, _lookups(spec, lookups)), now=now)


def _spec(source: str) -> SourceSpec:
    """The source's spec; a source that is unknown, or has no normalizer, is an error (never a default)."""
    spec = registry.find(source)
    if spec is None:
        raise NormalizeError(f"unknown source {source!r}; expected one of {', '.join(registry.names())}")
    if not spec.normalizer:
        raise NormalizeError(f"source {source!r} has no normalizer", source=source)
    return spec


def _lookups(spec: SourceSpec, given: pa.Table | Mapping[str, pa.Table] | None) -> Mapping[str, pa.Table]:
    if given is None:
        return {}
    if isinstance(given, pa.Table):
        if not spec.lookups:
            return {}  # a source without lookups ignores one, as SkyBiz always has
        if len(spec.lookups) > 1:
            raise NormalizeError(
                f"{spec.name} has {len(spec.lookups)} lookups: pass them by entity", source=spec.name
            )
        return {spec.lookups[0].entity: given}
    return given


def _draft(
    spec: SourceSpec, raw: pa.Table, lookups: Mapping[str, pa.Table], *, rules_only: bool = False
) -> Draft:
    """The source's normalizer (``SourceSpec.normalizer``) applied to one raw table."""
    draft: Draft = spec.load("normalizer")(raw, lookups, rules_only=rules_only)
    if draft.source != spec.name:
        raise NormalizeError(f"the {spec.name} normalizer drafted {draft.source!r} rows", source=spec.name)
    return draft


def normalize_frame(
    source: str, raw_df: pd.DataFrame, terms_df: pd.DataFrame | None = None, *, now: datetime | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Normalize a raw pandas frame: ``(normalized, quarantine)`` frames with the contracts' dtypes.

    ``terms_df`` is the source's lookup snapshot (SmartAcc's Terms). The input frames are not modified.
    """
    raw = pa.Table.from_pandas(raw_df, preserve_index=False)
    terms = pa.Table.from_pandas(terms_df, preserve_index=False) if terms_df is not None else None
    out = normalize_table(source, raw, terms, now=now)
    return to_frame(out.normalized, CUSTOMER_CONTRACT), to_frame(out.quarantine, QUARANTINE_CONTRACT)


def to_frame(table: pa.Table, contract_name: str) -> pd.DataFrame:
    """An output table as pandas with the contract's dtypes (nullable ints and bools, Arrow decimals)."""
    mapping = {
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
        pa.date32(): pd.ArrowDtype(pa.date32()),
    }

    def types_mapper(t: pa.DataType) -> Any:
        if pa.types.is_decimal(t):
            return pd.ArrowDtype(t)
        return mapping.get(t)

    frame: pd.DataFrame = table.to_pandas(types_mapper=types_mapper)
    typed: pd.DataFrame = frame.astype(pandas_dtypes(load_contract(contract_name)))
    return typed


def read_lookups(lake: Lake, spec: SourceSpec, window: Window) -> dict[str, pa.Table]:
    """A window's lookup snapshots by entity, or a NormalizeError that names the missing partition."""
    out: dict[str, pa.Table] = {}
    for lookup in spec.lookups:
        if lake.manifest(RAW, spec.name, lookup.entity, window) is None:
            raise NormalizeError(
                f"the {lookup.entity.title()} lookup snapshot raw/source={spec.name}/entity={lookup.entity} "
                "for this window is missing; re-run the extract step, which writes it beside the customers",
                source=spec.name,
                window=window.key,
                entity=lookup.entity,
            )
        out[lookup.entity] = lake.read(RAW, spec.name, lookup.entity, window)
    return out


def normalize_window(
    lake: Lake,
    source: str,
    window: Window | str,
    *,
    now: datetime | None = None,
    batch_rows: int = BATCH_ROWS,
) -> NormalizeResult:
    """Normalize one committed raw window and commit its ``normalized/`` and ``quarantine/`` partitions.

    Two passes over the raw file: the quarantine rules and the duplicate order are decided for the whole
    window from a narrow read of the identity, currency and modification columns; then the rows are
    normalized ``batch_rows`` at a time and streamed into the normalized file, so memory does not grow
    with the window. Quarantine is committed first (even when empty), then normalized; both manifests
    record ``rows_in``, the counts, the reasons and the raw file's sha256, so a reader can tell they
    belong together. Nothing is committed unless every raw row is in exactly one of them.

    Raises:
        LakeError: the raw window was never committed.
        NormalizeError: a lookup snapshot (SmartAcc's Terms) is missing, or raw rows != normalized +
            quarantined.
    """
    started = time.perf_counter()
    window = _window(source, window)
    spec = _spec(source)
    prepared = _prepare(lake, spec, window)
    stamp = now or datetime.now(UTC)

    def parts() -> Iterator[tuple[int, Assembled]]:
        offset = 0
        for batch in lake.iter_batches(RAW, source, CUSTOMERS, window, batch_size=max(1, batch_rows)):
            rows = batch.num_rows
            draft = _draft(spec, pa.Table.from_batches([batch]), prepared.lookups)
            decisions = prepared.decisions.slice(offset, rows)
            yield rows, assemble(draft, now=stamp, decisions=decisions, row_offset=offset)
            offset += rows

    return _commit(lake, prepared, parts(), started)


def normalize_windows(
    lake: Lake,
    source: str,
    windows: Sequence[Window | str],
    *,
    now: datetime | None = None,
    batch_rows: int = BATCH_ROWS,
) -> list[NormalizeResult | SkysmartError]:
    """Normalize many windows of one source; one result (or the typed error) per window, in order.

    Each window's lake output is exactly what :func:`normalize_window` commits (the same files, byte for
    byte, and manifests; one ``quarantined_at`` for the call). What it saves: the normalizer's cost per
    call, which is per column, not per row, and so most of a small window's normalization. Small windows
    that share a raw schema and their lookup snapshots (up to :data:`GROUP_ROWS` rows together) are
    drafted (the narrow rules pass, then the full pass) and assembled as one table — the normalizer is row
    by row, which is what lets a window be normalized in batches — then split back per window (duplicates
    and quarantine decided per window, as alone) and per raw batch. A window that cannot be prepared
    (missing partition, lookup, ...) is normalized alone, and fails alone with that window's error.
    """
    wins = [_window(source, w) for w in windows]
    spec = _spec(source)
    stamp = now or datetime.now(UTC)
    pending: dict[int, _Pending] = {}
    for i, win in enumerate(wins):
        try:
            read = _whole_read(lake, spec, win, max(1, batch_rows))
        except SkysmartError:
            continue  # normalized alone below, where the same error is raised for this window only
        if read is not None:
            pending[i] = read
    ready: dict[int, _Prepared] = {}
    shared: dict[int, list[tuple[int, Assembled]]] = {}
    for group in _groups(pending):
        if len(group) > 1:
            members = _decide_together(spec, {i: pending[i] for i in group})
            ready.update(members)
            shared.update(_assemble_together(spec, members, stamp))
    results: list[NormalizeResult | SkysmartError] = []
    for i, win in enumerate(wins):
        try:
            if i in shared:
                results.append(_commit(lake, ready[i], iter(shared[i]), time.perf_counter()))
            else:
                results.append(normalize_window(lake, source, win, now=stamp, batch_rows=batch_rows))
        except SkysmartError as error:
            results.append(error)
    return results


GROUP_ROWS: Final = 5_000
"""Rows of small windows normalized as one table by :func:`normalize_windows` (about 35 MB of Arrow)."""


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A window's first pass: its raw manifest, lookups and window-wide decisions (and raw batches)."""

    window: Window
    raw_manifest: Manifest
    lookups: Mapping[str, pa.Table]
    decisions: Decisions
    batches: list[pa.RecordBatch] = field(default_factory=list)


def _window(source: str, window: Window | str) -> Window:
    if isinstance(window, str):
        window = Window.parse(source, window)
    if window.source != source:
        raise NormalizeError(f"window {window} is not a {source} window", source=source, window=window.key)
    return window


def _prepare(lake: Lake, spec: SourceSpec, window: Window) -> _Prepared:
    """The raw manifest, the lookups and the quarantine decisions of a window (a narrow read)."""
    read = _first_read(lake, spec, window)
    decisions = decide(_draft(spec, read.narrow, read.lookups, rules_only=True))
    if len(decisions) != read.raw_manifest.rows:
        raise NormalizeError(
            f"raw manifest says {read.raw_manifest.rows} rows, the file holds {len(decisions)}",
            source=spec.name,
            window=window.key,
        )
    return _Prepared(window, read.raw_manifest, read.lookups, decisions)


@dataclass(frozen=True, slots=True)
class _Pending:
    """A window's reads before its decisions: raw manifest, lookups, the narrow read (and raw batches)."""

    window: Window
    raw_manifest: Manifest
    lookups: Mapping[str, pa.Table]
    narrow: pa.Table
    batches: list[pa.RecordBatch] = field(default_factory=list)


def _first_read(lake: Lake, spec: SourceSpec, window: Window) -> _Pending:
    raw_manifest = lake.require_manifest(RAW, spec.name, CUSTOMERS, window)
    lookups = read_lookups(lake, spec, window)
    narrow = lake.read(RAW, spec.name, CUSTOMERS, window, columns=list(spec.rule_fields))
    return _Pending(window, raw_manifest, lookups, narrow)


def _whole_read(lake: Lake, spec: SourceSpec, window: Window, batch_rows: int) -> _Pending | None:
    """A small window's reads for :func:`normalize_windows`, its raw file read once; ``None``: too large.

    The narrow read is the whole read's rule columns (reading the file a second time for them cost as much as
    the first read, per window).
    """
    raw_manifest = lake.require_manifest(RAW, spec.name, CUSTOMERS, window)
    if not 0 < raw_manifest.rows <= GROUP_ROWS:
        return None
    lookups = read_lookups(lake, spec, window)
    batches = list(
        lake.iter_batches(RAW, spec.name, CUSTOMERS, window, batch_size=batch_rows, manifest=raw_manifest)
    )
    if sum(b.num_rows for b in batches) != raw_manifest.rows:
        return None  # normalized alone, where the mismatch is raised for this window
    whole = pa.Table.from_batches(batches)
    # As a read of these columns gives them: in this order, those the file lacks left out.
    narrow = whole.select([name for name in spec.rule_fields if name in whole.column_names])
    return _Pending(window, raw_manifest, lookups, narrow, batches)


def _groups(pending: Mapping[int, _Pending]) -> list[list[int]]:
    """Consecutive runs of windows with equal raw schemas and lookups, up to the group's row budget."""
    groups: list[list[int]] = []
    rows = 0
    last: _Pending | None = None
    for i, read in pending.items():
        n = read.raw_manifest.rows
        if last is None or rows + n > GROUP_ROWS or not _same_input(last, read):
            groups.append([])
            rows = 0
        groups[-1].append(i)
        rows += n
        last = read
    return groups


def _same_input(a: _Pending, b: _Pending) -> bool:
    # Each narrow read is its batches' rule columns (_whole_read): equal raw schemas mean equal narrow ones.
    if not a.batches[0].schema.equals(b.batches[0].schema, check_metadata=True):
        return False
    if a.lookups.keys() != b.lookups.keys():
        return False
    return all(_content(a.lookups[k]).equals(_content(b.lookups[k]), check_metadata=True) for k in a.lookups)


def _content(table: pa.Table) -> pa.Table:
    """A lookup snapshot without its lineage (when and how it was fetched), which normalizers never read."""
    return table.drop_columns([c for c in table.column_names if c in LINEAGE])


def _decide_together(spec: SourceSpec, members: Mapping[int, _Pending]) -> dict[int, _Prepared]:
    """The members' rules drafted as one table, then decided per window (duplicates are window-wide)."""
    first = next(iter(members.values()))
    joint = _draft(
        spec, pa.concat_tables([m.narrow for m in members.values()]), first.lookups, rules_only=True
    )
    out: dict[int, _Prepared] = {}
    start = 0
    for i, read in members.items():
        rows = read.narrow.num_rows
        decisions = decide(_slice(joint, start, rows))
        start += rows
        out[i] = _Prepared(read.window, read.raw_manifest, read.lookups, decisions, read.batches)
    return out


def _slice(draft: Draft, offset: int, length: int) -> Draft:
    """Rows ``offset`` .. ``offset + length - 1`` of a draft (every per-row array sliced alike)."""
    return Draft(
        source=draft.source,
        raw=draft.raw.slice(offset, length),
        id_field=draft.id_field,
        columns={k: v.slice(offset, length) for k, v in draft.columns.items()},
        issues=[(code, mask.slice(offset, length)) for code, mask in draft.issues],
        extras=[(key, v.slice(offset, length), is_json) for key, v, is_json in draft.extras],
        rules=[
            RowRule(r.rule, r.field, r.failed.slice(offset, length), r.offending.slice(offset, length))
            for r in draft.rules
        ],
        used=set(draft.used),
    )


def _assemble_together(
    spec: SourceSpec, members: Mapping[int, _Prepared], stamp: datetime
) -> dict[int, list[tuple[int, Assembled]]]:
    """Draft and assemble the members' raw batches as one table; each window's parts as if alone."""
    first = next(iter(members.values()))
    raw = pa.Table.from_batches([b for p in members.values() for b in p.batches])
    decisions = Decisions(
        *(
            pa.concat_arrays([_array(getattr(p.decisions, name)) for p in members.values()])
            for name in ("rule", "field", "offending")
        )
    )
    out = assemble(_draft(spec, raw, first.lookups), now=stamp, decisions=decisions, row_offset=0)
    row_number = out.quarantine.schema.get_field_index("row_number")
    parts: dict[int, list[tuple[int, Assembled]]] = {}
    start = kept_at = held_at = 0  # the window's first row, and where its rows are in the two outputs
    for i, prepared in members.items():
        offset = 0  # the batch's first row in its window
        parts[i] = []
        for batch in prepared.batches:
            rows = batch.num_rows
            held = rows - decisions.rule.slice(start + offset, rows).null_count
            quarantine = out.quarantine.slice(held_at, held)
            # row_number counts from the window's first row, not the joint table's.
            numbers = quarantine.column(row_number)
            renumbered = pc.subtract(numbers, pa.scalar(start, numbers.type))
            quarantine = quarantine.set_column(row_number, quarantine.schema.field(row_number), renumbered)
            normalized = out.normalized.slice(kept_at, rows - held)
            parts[i].append((rows, Assembled(normalized, quarantine, rows, {})))
            kept_at += rows - held
            held_at += held
            offset += rows
        start += offset
    if kept_at != out.normalized.num_rows or held_at != out.quarantine.num_rows:
        raise NormalizeError(f"joint normalize lost rows of {len(members)} windows", source=spec.name)
    return parts


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _commit(
    lake: Lake, prepared: _Prepared, parts: Iterator[tuple[int, Assembled]], started: float
) -> NormalizeResult:
    """Stream a window's assembled parts into ``normalized/``, then commit quarantine and normalized."""
    window, raw_manifest = prepared.window, prepared.raw_manifest
    source = window.source
    schema = arrow_schema(load_contract(CUSTOMER_CONTRACT))
    quarantine_parts: list[pa.Table] = []
    offset = normalized = 0
    with lake.writer(NORMALIZED, source, CUSTOMERS, window, schema) as writer:
        for rows, out in parts:
            writer.write(out.normalized)
            quarantine_parts.append(out.quarantine)
            normalized += out.normalized.num_rows
            offset += rows
        quarantine = (
            pa.concat_tables(quarantine_parts)
            if quarantine_parts
            else arrow_schema(load_contract(QUARANTINE_CONTRACT)).empty_table()
        )
        quarantined = quarantine.num_rows
        if offset != raw_manifest.rows or normalized + quarantined != offset:
            raise NormalizeError(
                f"row counts do not add up: manifest {raw_manifest.rows}, read {offset}, "
                f"normalized {normalized} + quarantined {quarantined}",
                source=source,
                window=window.key,
            )
        reasons = _count(quarantine.column("rule"))
        extra = {
            "rows_in": offset,
            "normalized": normalized,
            "quarantined": quarantined,
            "reasons": reasons,
            "raw_sha256": raw_manifest.sha256,
        }
        lake.write_table(QUARANTINE, source, CUSTOMERS, window, quarantine, **extra)
        writer.commit(**extra)
    return NormalizeResult(
        source=source,
        window=window.key,
        rows_in=offset,
        normalized=normalized,
        quarantined=quarantined,
        quarantine_reasons=reasons,
        normalized_url=lake.data_url(NORMALIZED, source, CUSTOMERS, window),
        quarantine_url=lake.data_url(QUARANTINE, source, CUSTOMERS, window),
        seconds=round(time.perf_counter() - started, 3),
    )


def _count(rules: pa.ChunkedArray) -> dict[str, int]:
    """Rows per quarantine rule, sorted by rule."""
    if len(rules) == 0:
        return {}
    counts = pc.value_counts(rules.combine_chunks()).to_pylist()
    return dict(sorted((str(c["values"]), int(c["counts"])) for c in counts))
