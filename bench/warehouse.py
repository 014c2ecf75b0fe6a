"""Warehouse load throughput on DuckDB and Postgres, against each engine's plain bulk insert.

    python -m bench warehouse -- --size 100000 [--engines duckdb,postgres] [--postgres-admin URL]

For each engine, on a fresh warehouse:
  floor     plain bulk insert of the same Parquet into an empty table of the customers shape
            (DuckDB ``INSERT INTO t SELECT * FROM read_parquet`` on the local file; Postgres ``COPY`` of
            the lake's Arrow batches through the same Arrow-CSV stream the load uses)
  insert    load_window of N new customers (random key order)
  reload    the same window again: all unchanged
  update    a second window where every customer has a newer version (random key order again; the case
            that falls off DuckDB's ON CONFLICT cliff)
  reload    the second window again
Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contracts import arrow_schema, create_table_sql, load_contract
from pipelines.lake import CUSTOMERS, NORMALIZED, QUARANTINE, RAW, Lake
from pipelines.warehouse import Warehouse, load_window, open_warehouse
from pipelines.windows import Window

CUSTOMER = load_contract("customer")
QUARANTINE_CONTRACT = load_contract("customer_quarantine")
SOURCE = "skybiz"
TOWNS = ["Kuala Lumpur", "George Town", "Johor Bahru", "Kota Kinabalu", "Ipoh", "Kuching", "Shah Alam"]
STATES = ["Kuala Lumpur", "Pulau Pinang", "Johor", "Sabah", "Perak", "Sarawak", "Selangor"]


def _text(prefix: str, numbers: np.ndarray, width: int = 8) -> pa.Array:
    padded = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), padded, "")


def customers_table(n: int, window: Window, variant: int, seed: int) -> pa.Table:
    """``n`` realistic customers in random key order; ``variant`` changes content and modified_at."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(n)
    cid = _text("C", ids)
    pick = ids % len(TOWNS)
    base = datetime.combine(window.start, datetime.min.time(), UTC)
    modified = [base + timedelta(seconds=int(s)) for s in rng.integers(0, 86_400 * 27, n)]
    hashes = [
        hashlib.sha256(f"{i}:{variant}".encode()).hexdigest() for i in ids.tolist()
    ]  # content differs per variant
    columns: dict[str, Any] = {
        "customer_key": pc.binary_join_element_wise(pa.scalar(f"{SOURCE}:"), cid, ""),
        "source_system": pa.array([SOURCE] * n),
        "source_customer_id": cid,
        "name": pc.binary_join_element_wise(
            _text("Syarikat Maju ", ids), pa.scalar(f" Sdn Bhd v{variant}"), ""
        ),
        "address_line1": _text("No. ", ids % 200 + 1, 1),
        "address_line2": pa.array(["Jalan Bukit Bintang"] * n),
        "postcode": _text("", ids % 90000 + 10000, 5),
        "town": pa.array(np.array(TOWNS)[pick]),
        "state": pa.array(np.array(STATES)[pick]),
        "country": pa.array(["MY"] * n),
        "phone": _text("+603", ids % 10_000_000, 8),
        "mobile": _text("+6012", ids % 10_000_000, 7),
        "email": pc.binary_join_element_wise(_text("acc", ids), pa.scalar("@example.com.my"), ""),
        "currency": pa.array(["MYR"] * n),
        "credit_limit": pa.array(
            [None if i % 7 == 0 else i % 50_000 * 100 + variant for i in ids.tolist()], pa.int32()
        ).cast(pa.decimal128(18, 2)),
        "balance": pa.array((ids % 99_999).tolist(), pa.int32()).cast(pa.decimal128(18, 2)),
        "payment_terms_days": pa.array((ids % 4 * 30).astype("int32")),
        "payment_terms_code": pc.binary_join_element_wise(
            pa.scalar("C"), pc.cast(pa.array(ids % 4 * 30), pa.string()), ""
        ),
        "salesperson_code": _text("S", ids % 40, 2),
        "area_code": pa.array(["KL"] * n),
        "is_active": pa.array(ids % 10 != 0),
        "customer_since": pa.array([date(2015, 1, 1) + timedelta(days=int(i % 3000)) for i in ids.tolist()]),
        "created_at": pa.array([base - timedelta(days=400)] * n, pa.timestamp("us", tz="UTC")),
        "modified_at": pa.array(modified, pa.timestamp("us", tz="UTC")),
        "source_version": pa.array((ids + variant * n).astype("int64")),
        "source_window": pa.array([window.key] * n),
        "extracted_at": pa.array([base + timedelta(days=28)] * n, pa.timestamp("us", tz="UTC")),
        "record_hash": pa.array(hashes),
        "source_extras": pa.array(['{"Remark":"bench"}'] * n),
    }
    schema = arrow_schema(CUSTOMER)
    arrays = [columns[f.name].cast(f.type) if f.name in columns else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def write_window(lake: Lake, window: Window, table: pa.Table) -> None:
    lake.write_table(RAW, SOURCE, CUSTOMERS, window, pa.table({"_row": pa.array(range(table.num_rows))}))
    lake.write_table(NORMALIZED, SOURCE, CUSTOMERS, window, table)
    lake.write_table(QUARANTINE, SOURCE, CUSTOMERS, window, arrow_schema(QUARANTINE_CONTRACT).empty_table())


def floor_seconds(wh: Warehouse, lake: Lake, window: Window) -> float:
    """The engine's plain bulk insert of the same Parquet into an empty customers-shaped table."""
    wh.execute(create_table_sql(CUSTOMER, wh.dialect, table="bench_floor"))
    url = lake.data_url(NORMALIZED, SOURCE, CUSTOMERS, window)
    start = time.perf_counter()
    with wh.transaction():
        if wh.dialect == "duckdb":
            wh.execute(
                "INSERT INTO bench_floor SELECT * FROM read_parquet($1, hive_partitioning = false)", (url,)
            )
        else:
            batches = lake.iter_batches(NORMALIZED, SOURCE, CUSTOMERS, window, columns=CUSTOMER.column_names)
            wh.copy_batches("bench_floor", CUSTOMER.column_names, batches)  # type: ignore[attr-defined]
    seconds = time.perf_counter() - start
    wh.execute("DROP TABLE bench_floor")
    return seconds


def run_engine(url: str, lake: Lake, windows: list[Window], size: int) -> list[list[Any]]:
    rows: list[list[Any]] = []
    with open_warehouse(url) as wh:
        wh.ensure_schema()
        floor = floor_seconds(wh, lake, windows[0])
        rows.append(
            [wh.dialect, "floor (plain bulk insert)", size, f"{floor:.2f}", f"{size / floor:,.0f}", "1.0"]
        )
        steps = [("insert (all new)", windows[0]), ("reload (unchanged)", windows[0]),
                 ("update (all newer)", windows[1]), ("reload (unchanged)", windows[1])]  # fmt: skip
        for label, window in steps:
            start = time.perf_counter()
            result = load_window(wh, lake, SOURCE, window)
            seconds = time.perf_counter() - start
            detail = f"ins {result.inserted:,} upd {result.updated:,} same {result.unchanged:,}"
            rows.append(
                [wh.dialect, f"{label}: {detail}", size, f"{seconds:.2f}", f"{size / seconds:,.0f}",
                 f"{seconds / floor:.1f}"]
            )  # fmt: skip
            print(
                f"  {wh.dialect:8} {label:20} {seconds:7.2f} s  {size / seconds:>10,.0f} rows/s", flush=True
            )
        start = time.perf_counter()
    seconds = time.perf_counter() - start  # closing checkpoints what the loads left in DuckDB's WAL
    rows.append(
        [wh.dialect, "close (final checkpoint)", None, f"{seconds:.2f}", None, f"{seconds / floor:.1f}"]
    )
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench warehouse")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--engines", default="duckdb,postgres")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--postgres-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    windows = [
        Window(SOURCE, date(2024, 1, 1), date(2024, 1, 31)),
        Window(SOURCE, date(2024, 2, 1), date(2024, 2, 29)),
    ]
    with tempfile.TemporaryDirectory(prefix="bench-warehouse-") as tmp:
        lake = Lake(str(Path(tmp) / "lake"))
        start = time.perf_counter()
        for variant, window in enumerate(windows):
            write_window(lake, window, customers_table(args.size, window, variant, args.seed + variant))
        print(
            f"  generated 2 windows x {args.size:,} customers in {time.perf_counter() - start:.1f} s",
            flush=True,
        )
        table: list[list[Any]] = []
        for engine in engines:
            if engine == "duckdb":
                table += run_engine(str(Path(tmp) / "bench.duckdb"), lake, windows, args.size)
            elif engine == "postgres":
                name = f"skysmart_bench_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(args.postgres_admin, autocommit=True) as admin:
                    admin.execute(f'CREATE DATABASE "{name}"')
                    try:
                        url = f"{args.postgres_admin.rsplit('/', 1)[0]}/{name}"
                        table += run_engine(url, lake, windows, args.size)
                    finally:
                        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            else:
                raise SystemExit(f"unknown engine {engine!r}")
    from pipelines.cli.ui import print_table

    print_table(
        f"Warehouse loads, {args.size:,} customers per window, random key order",
        ["engine", "step", "rows", "seconds", "rows/s", "x floor"],
        table,
    )
