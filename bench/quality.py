"""Validation throughput and memory: the customer suite on a synthetic normalized window.

    python -m bench quality -- [--size 1000000] [--dirty 0.01]

Builds a realistic normalized frame with the contract's dtypes (vectorized: Malaysian names, E.164 phones,
e-mails, states, decimals, dates, timestamps; ~30% of optional columns null), writes it as a lake window and
times four things:

  frame     ``validate_frame`` on the in-memory frame (GX only)
  window    ``validate_window``: read Parquet, convert to contract dtypes, GX, write both reports
  dirty     ``validate_frame`` with ``--dirty`` of the rows breaking four rules (two errors, two warnings),
            so the cost of collecting failing keys shows
  small     ``validate_window`` on a 10-row and a 10,000-row window, over and over: the fixed cost every
            window pays (a daily run validates four tiny windows, a two-year backfill 48), as CPU seconds
            per call after the first, which alone pays for setting great-expectations up

Peak memory is sampled from /proc (RSS, which counts Arrow buffers that tracemalloc cannot see) while each
run is in progress, and reported above the RSS the process had before it. CPU seconds are printed beside
wall seconds because the machines are shared: CPU time is the steadier figure. Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.contracts import arrow_schema, load_contract, pandas_dtypes
from pipelines.einvoice import COLUMNS as EINVOICE_COLUMNS
from pipelines.errors import DataQualityError
from pipelines.lake import CUSTOMERS, NORMALIZED, Lake
from pipelines.windows import Window

WINDOW = Window("skybiz", date(2024, 1, 1), date(2024, 1, 31))
SMALL_WINDOWS: Final = (10, 10_000)
SMALL_REPEATS: Final = 5
STATES = np.array(
    [
        *("Johor", "Kedah", "Kelantan", "Melaka", "Negeri Sembilan", "Pahang", "Perak", "Perlis"),
        *("Pulau Pinang", "Sabah", "Sarawak", "Selangor", "Terengganu", "Kuala Lumpur", "Labuan"),
        "Putrajaya",
    ]
)
TOWNS = np.array(["Shah Alam", "Petaling Jaya", "Johor Bahru", "Ipoh", "George Town", "Kota Kinabalu"])
FIRST = np.array(["Ahmad", "Siti", "Tan", "Lim", "Raj", "Nurul", "Wong", "Kumar", "Aisyah", "Lee"])
KIND = np.array(["Trading", "Enterprise", "Sdn Bhd", "Hardware", "Kedai Runcit", "Motor", "Textile"])


def _text(values: np.ndarray, null_mask: np.ndarray | None = None) -> pd.Series:
    series = pd.Series(values, dtype="str")
    return series.mask(null_mask) if null_mask is not None else series


def synthetic_customers(size: int, seed: int = 7) -> pd.DataFrame:
    """``size`` clean normalized customers with exactly the contract's pandas dtypes."""
    rng = np.random.default_rng(seed)
    idx = np.arange(size)
    ids = np.char.add("C", np.char.zfill(idx.astype(str), 7))
    first = FIRST[rng.integers(0, len(FIRST), size)]
    kind = KIND[rng.integers(0, len(KIND), size)]

    def nulls(rate: float) -> np.ndarray:
        return rng.random(size) < rate

    def phones(prefix: str) -> np.ndarray:
        return np.char.add(prefix, np.char.zfill(rng.integers(0, 10**8, size).astype(str), 8))

    modified = pd.Timestamp("2024-01-01T00:00:00Z") + pd.to_timedelta(rng.integers(0, 31 * 86400, size), "s")
    money = pa.decimal128(18, 2)
    credit = pa.array(np.char.add((rng.integers(0, 10**5, size) * 100).astype(str), ".00")).cast(money)
    cents = np.char.zfill(rng.integers(0, 100, size).astype(str), 2)
    whole = rng.integers(-(10**4), 10**6, size).astype(str)
    balance = pa.array(np.char.add(np.char.add(whole, "."), cents)).cast(money)
    birth = pa.array(rng.integers(-15000, 10000, size), pa.int32()).cast(pa.date32())
    since = pa.array(rng.integers(10000, 19700, size), pa.int32()).cast(pa.date32())
    hashes = np.char.add(np.char.zfill(idx.astype(str), 32), np.char.zfill(idx.astype(str), 32))
    frame = pd.DataFrame(
        {
            "customer_key": _text(np.char.add("skybiz:", ids)),
            "source_system": _text(np.full(size, "skybiz")),
            "source_customer_id": _text(ids),
            "name": _text(np.char.add(np.char.add(first, " "), kind)),
            "nickname": _text(first, nulls(0.6)),
            "address_line1": _text(np.char.add((idx % 300 + 1).astype(str), " Jalan Ampang"), nulls(0.05)),
            "address_line2": _text(np.full(size, "Taman Melawati"), nulls(0.5)),
            "address_line3": _text(np.full(size, "Blok B"), nulls(0.9)),
            "address_line4": _text(np.full(size, ""), nulls(1.0)),
            "postcode": _text(np.char.zfill(rng.integers(1000, 99999, size).astype(str), 5), nulls(0.1)),
            "town": _text(TOWNS[rng.integers(0, len(TOWNS), size)], nulls(0.1)),
            "state": _text(STATES[rng.integers(0, len(STATES), size)], nulls(0.1)),
            "country": _text(np.full(size, "MY")),
            "phone": _text(phones("+603"), nulls(0.2)),
            "phone_2": _text(phones("+604"), nulls(0.8)),
            "mobile": _text(phones("+6012"), nulls(0.3)),
            "fax": _text(phones("+605"), nulls(0.9)),
            "email": _text(np.char.add(np.char.add(np.char.lower(first), ids), "@kedai.com.my"), nulls(0.3)),
            "website": _text(np.full(size, "https://example.com.my"), nulls(0.9)),
            "contact_name": _text(first, nulls(0.4)),
            "contact_phone": _text(phones("+6019"), nulls(0.6)),
            "currency": _text(np.where(rng.random(size) < 0.95, "MYR", "SGD")),
            "credit_limit": pd.Series(pd.arrays.ArrowExtensionArray(credit)),
            "balance": pd.Series(pd.arrays.ArrowExtensionArray(balance)),
            "payment_terms_days": pd.Series(rng.choice([0, 7, 14, 30, 60, 90], size)),
            "payment_terms_code": _text(np.full(size, "C30"), nulls(0.5)),
            "salesperson_code": _text(np.full(size, "S01"), nulls(0.3)),
            "area_code": _text(np.full(size, "KL"), nulls(0.3)),
            "category_code": _text(np.full(size, "RETAIL"), nulls(0.5)),
            "price_code": _text(np.full(size, "1"), nulls(0.5)),
            "is_active": pd.Series(rng.random(size) < 0.9),
            "is_bad_debtor": pd.Series(rng.random(size) < 0.02),
            "is_member": pd.Series(rng.random(size) < 0.3),
            "member_type": _text(np.full(size, "GOLD"), nulls(0.8)),
            "date_of_birth": pd.Series(pd.arrays.ArrowExtensionArray(birth)).mask(nulls(0.7)),
            "customer_since": pd.Series(pd.arrays.ArrowExtensionArray(since)),
            "gender": _text(np.where(rng.random(size) < 0.5, "M", "F"), nulls(0.5)),
            "registration_no": _text(np.char.add("2020010", ids), nulls(0.6)),
            "tax_id": _text(np.char.add("C2", np.char.zfill(idx.astype(str), 9)), nulls(0.6)),
            "sst_no": _text(np.full(size, "W10-1808-31000000"), nulls(0.9)),
            **{c: pd.Series([None] * size, dtype="object") for c in EINVOICE_COLUMNS},  # SkyBiz: none
            "created_at": pd.Series(modified - pd.Timedelta(days=400)),
            "modified_at": pd.Series(modified),
            "source_version": pd.Series(idx + 1),
            "source_window": _text(np.full(size, WINDOW.key)),
            "extracted_at": pd.Series(np.full(size, pd.Timestamp("2024-02-01T00:00:00Z"))),
            "record_hash": _text(hashes),
            "data_issues": _text(np.full(size, "phone_unparseable"), nulls(0.97)),
            "source_extras": _text(np.full(size, "{}")),
        }
    )
    return frame.astype(pandas_dtypes(load_contract("customer")))


def dirty_copy(frame: pd.DataFrame, fraction: float, seed: int = 11) -> pd.DataFrame:
    """A copy where ``fraction`` of rows break email and currency (errors), state and gender (warnings)."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for column, value in (("email", "not-an-email"), ("currency", "RM"), ("state", "KL"), ("gender", "X")):
        rows = rng.random(len(out)) < fraction
        out.loc[rows, column] = value
    return out


class PeakRss:
    """Samples this process's RSS every 10 ms while the block runs (Arrow memory included)."""

    def __init__(self) -> None:
        self.before = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRss:
        self.before = self.peak = _rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss())


def _rss() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


def _measure(label: str, size: int, fn: Callable[[], Any]) -> None:
    with PeakRss() as mem:
        started, cpu = time.perf_counter(), time.process_time()
        try:
            result = fn()
            outcome = f"ok, {result.failed_warnings} warning expectation(s) failed"
        except DataQualityError as err:
            outcome = f"DataQualityError: {err.context.get('failed_errors')} error expectation(s) failed"
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"{label:<7} {size:>10,} rows  wall {seconds:6.2f} s  cpu {cpu:6.2f} s  "
        f"{size / seconds:>10,.0f} rows/s wall  {size / cpu:>10,.0f} rows/s cpu  "
        f"peak +{(mem.peak - mem.before) / 2**20:7.0f} MiB (RSS {mem.peak / 2**20:,.0f} MiB)  {outcome}",
        flush=True,
    )


def _small_windows(lake: Lake) -> None:
    """CPU seconds of ``validate_window`` per small window: the first call, then the median of the next."""
    from pipelines.quality import validate_window

    schema = arrow_schema(load_contract("customer"))
    for month, size in enumerate(SMALL_WINDOWS, start=1):
        window = Window("skybiz", date(2023, month, 1), date(2023, month, 28))
        table = pa.Table.from_pandas(synthetic_customers(size), schema=schema)
        lake.write_table(NORMALIZED, window.source, CUSTOMERS, window, table)
        cpu = time.process_time()
        validate_window(lake, window.source, window)
        first = time.process_time() - cpu
        calls = []
        for _ in range(SMALL_REPEATS):
            cpu = time.process_time()
            validate_window(lake, window.source, window)
            calls.append(time.process_time() - cpu)
        median = statistics.median(calls)
        print(
            f"small   {size:>10,} rows  cpu first call {first:5.2f} s  then {median:6.3f} s per window "
            f"(median of {SMALL_REPEATS}, {min(calls):.3f}–{max(calls):.3f})",
            flush=True,
        )


def main(argv: list[str]) -> None:
    """``--size`` customers (default 1,000,000); ``--dirty`` fraction of rows breaking rules (default 1%)."""
    parser = argparse.ArgumentParser(prog="bench quality")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--dirty", type=float, default=0.01)
    args = parser.parse_args(argv)

    from pipelines.quality import build_suite, validate_frame, validate_window

    started = time.perf_counter()
    build_suite("customer")  # pays the great-expectations import (5–6 s) outside the timings
    print(f"great-expectations import + suite: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    frame = synthetic_customers(args.size)
    print(f"synthetic frame: {args.size:,} × {frame.shape[1]} in {time.perf_counter() - started:.1f} s")
    suite_size = len(build_suite("customer").expectations)
    print(f"suite: {suite_size} expectations (column order, {frame.shape[1]} dtypes, the contract's checks)")

    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        lake = Lake(str(Path(tmp) / "lake"))
        schema = arrow_schema(load_contract("customer"))
        lake.write_table(
            NORMALIZED, WINDOW.source, CUSTOMERS, WINDOW, pa.Table.from_pandas(frame, schema=schema)
        )
        _measure("frame", args.size, lambda: validate_frame(frame, "customer"))
        _measure("window", args.size, lambda: validate_window(lake, WINDOW.source, WINDOW))
        dirty = dirty_copy(frame, args.dirty)
        _measure("dirty", args.size, lambda: validate_frame(dirty, "customer", lake=lake, window=WINDOW))
        report = lake.window_dir("quality", WINDOW.source, CUSTOMERS, WINDOW)
        sizes = {p.name: p.stat().st_size for p in Path(report).iterdir() if not p.name.startswith(".")}
        print("dirty reports:", ", ".join(f"{n} {b / 1024:,.0f} KiB" for n, b in sorted(sizes.items())))
        _small_windows(lake)
