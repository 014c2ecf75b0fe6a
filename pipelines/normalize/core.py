"""Normalize a raw window into the common model: the pure core and the lake step around it.

``normalize_frame`` (pandas in, pandas out) and ``normalize_table`` (Arrow in, Arrow out) are pure: they
read nothing and write nothing. ``normalize_window`` reads a raw window from the lake, normalizes it and
commits ``normalized/`` and ``quarantine/`` for the same window, checking that every raw row is in exactly
one of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import pandas as pd
import pyarrow as pa

from pipelines.contracts import load_contract, pandas_dtypes
from pipelines.errors import NormalizeError
from pipelines.lake import CUSTOMERS, NORMALIZED, QUARANTINE, RAW, Lake
from pipelines.normalize import skybiz, smartacc
from pipelines.normalize.model import CUSTOMER_CONTRACT, QUARANTINE_CONTRACT, Assembled, assemble
from pipelines.windows import SOURCES, Window

TERMS: Final = smartacc.TERMS_ENTITY


@dataclass(frozen=True, slots=True)
class NormalizeResult:
    """What one normalized window produced; small and secret-free, so it can travel through XCom.

    Attributes:
        source: ``skybiz`` or ``smartacc``.
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
    source: str, raw: pa.Table, terms: pa.Table | None = None, *, now: datetime | None = None
) -> Assembled:
    """Normalize one raw Arrow table (the pure core; ``terms`` is SmartAcc's Terms snapshot).

    Args:
        source: ``skybiz`` or ``smartacc``.
        raw: the raw window as the lake holds it (vendor text plus lineage).
        terms: SmartAcc's Terms lookup (``AcTermID``, ``TermDays``); ignored for SkyBiz.
        now: the ``quarantined_at`` to stamp (default: the current time).

    Raises:
        NormalizeError: unknown source, missing lineage or Terms snapshot.
    """
    if source == "skybiz":
        draft = skybiz.draft(raw)
    elif source == "smartacc":
        draft = smartacc.draft(raw, terms)
    else:
        raise NormalizeError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    return assemble(draft, now=now)


def normalize_frame(
    source: str, raw_df: pd.DataFrame, terms_df: pd.DataFrame | None = None, *, now: datetime | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Normalize a raw pandas frame: ``(normalized, quarantine)`` frames with the contracts' dtypes.

    The input frames are not modified.
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


def read_terms(lake: Lake, window: Window) -> pa.Table:
    """SmartAcc's Terms snapshot for a window, or a NormalizeError that names the missing partition."""
    if lake.manifest(RAW, "smartacc", TERMS, window) is None:
        raise NormalizeError(
            "the Terms lookup snapshot raw/source=smartacc/entity=terms for this window is missing; "
            "re-run the extract step, which writes it beside the customers",
            source="smartacc",
            window=window.key,
            entity=TERMS,
        )
    return lake.read(RAW, "smartacc", TERMS, window)


def normalize_window(
    lake: Lake, source: str, window: Window | str, *, now: datetime | None = None
) -> NormalizeResult:
    """Normalize one committed raw window and commit its ``normalized/`` and ``quarantine/`` partitions.

    Quarantine is committed first (even when empty), then normalized; both manifests record ``rows_in``,
    the counts, the reasons and the raw file's sha256, so a reader can tell they belong together.

    Raises:
        LakeError: the raw window was never committed.
        NormalizeError: the Terms snapshot is missing (SmartAcc), or raw rows != normalized + quarantined.
    """
    started = time.perf_counter()
    if isinstance(window, str):
        window = Window.parse(source, window)
    if window.source != source:
        raise NormalizeError(f"window {window} is not a {source} window", source=source, window=window.key)
    raw_manifest = lake.require_manifest(RAW, source, CUSTOMERS, window)
    raw = lake.read(RAW, source, CUSTOMERS, window)
    terms = read_terms(lake, window) if source == "smartacc" else None
    out = normalize_table(source, raw, terms, now=now)
    normalized, quarantined = out.normalized.num_rows, out.quarantine.num_rows
    if raw.num_rows != raw_manifest.rows or normalized + quarantined != raw.num_rows:
        raise NormalizeError(
            f"row counts do not add up: manifest {raw_manifest.rows}, read {raw.num_rows}, "
            f"normalized {normalized} + quarantined {quarantined}",
            source=source,
            window=window.key,
        )
    extra = {
        "rows_in": raw.num_rows,
        "normalized": normalized,
        "quarantined": quarantined,
        "reasons": dict(sorted(out.reasons.items())),
        "raw_sha256": raw_manifest.sha256,
    }
    lake.write_table(QUARANTINE, source, CUSTOMERS, window, out.quarantine, **extra)
    lake.write_table(NORMALIZED, source, CUSTOMERS, window, out.normalized, **extra)
    return NormalizeResult(
        source=source,
        window=window.key,
        rows_in=raw.num_rows,
        normalized=normalized,
        quarantined=quarantined,
        quarantine_reasons=dict(sorted(out.reasons.items())),
        normalized_url=lake.data_url(NORMALIZED, source, CUSTOMERS, window),
        quarantine_url=lake.data_url(QUARANTINE, source, CUSTOMERS, window),
        seconds=round(time.perf_counter() - started, 3),
    )
