"""E-invoice readiness: the share of ready customers in the demo data, and what the checks cost at scale.

    python -m bench einvoice -- [--demo-size 20000] [--size 1000000] [--seed 42]

Part 1 (``--demo-size``, the demo's size): both sources of the sandbox go through normalization, the load
into a DuckDB warehouse and identity resolution, as in ``make demo``; ``v_einvoice_readiness`` then gives
the share of businesses (and of SmartAcc customers) ready, the counts by reason, and the view is compared
with the sandbox's truth (which the pipeline never sees): every mistake found with its reasons, every
right customer ready.

Part 2 (``--size`` SmartAcc customers, one window, no HTTP): what e-invoice readiness adds to a run —
``assess`` (the e-invoice columns, issues and reasons, inside normalization) and the readiness expectations
of the quality suite (the suite run with and without them on the same frame) — against a floor measured
in the same run: one bare ``pyarrow`` regex pass of the contract's patterns over the same raw fields. CPU
seconds are printed beside wall seconds (the machine is shared). Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.einvoice.readiness import readiness_counts
from pipelines.einvoice.rules import EinvoiceFields, assess
from pipelines.einvoice.spec import load_spec
from pipelines.windows import Window

T = TypeVar("T")
WINDOW = (date(2026, 1, 1), date(2026, 1, 31))


def _timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def demo_share(size: int, seed: int) -> None:
    """Part 1: readiness of the demo-sized sandbox through the real pipeline."""
    from pipelines.identity import rebuild_matches
    from pipelines.lake import Lake
    from pipelines.normalize import normalize_window
    from pipelines.warehouse import load_window, open_warehouse
    from skysmart_sandbox.data import generate
    from skysmart_sandbox.raw import write_raw_window

    data = generate(size, seed)
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(str(Path(tmp) / "lake"))
        url = str(Path(tmp) / "warehouse.duckdb")
        with open_warehouse(url) as wh:
            for source in ("skybiz", "smartacc"):
                window = Window(source, *WINDOW)
                write_raw_window(lake, data, window, everything=True)
                normalize_window(lake, source, window)
                load_window(wh, lake, source, window)
            rebuild_matches(wh)
            counts = readiness_counts(wh)
            rows = wh.query("SELECT systems, smartacc_id, ready, reasons FROM v_einvoice_readiness")
    assert counts is not None
    truth = {t["smartacc_id"]: t for t in data.einvoice.to_pylist()}
    smartacc = {r[1]: r for r in rows if r[1] is not None}
    wrong = sum(
        1
        for sid, r in smartacc.items()
        if (r[3], r[2]) != (truth[sid]["reasons"], truth[sid]["mistake"] is None)
    )
    ready_smartacc = sum(1 for r in smartacc.values() if r[2])
    print(f"demo data: {size:,} customers per system, seed {seed}")
    print(
        f"  businesses (v_einvoice_readiness): {counts.businesses:,}, ready {counts.ready:,} "
        f"({counts.share_ready:.1%})"
    )
    print(
        f"  SmartAcc customers: {len(smartacc):,} (after quarantine), ready {ready_smartacc:,} "
        f"({ready_smartacc / len(smartacc):.1%}); SkyBiz twins inherit: "
        f"{sum(1 for r in rows if r[0] == 'both'):,} businesses in both systems"
    )
    mistakes = Counter(truth[sid]["mistake"] for sid in smartacc)
    print(f"  sandbox truth: {dict(mistakes.most_common())}")
    print(f"  view against truth: {wrong} SmartAcc customers with other reasons than planted (want 0)")
    print("  reasons (businesses):")
    for r in counts.reasons:
        print(f"    {r.reason:<20} {r.businesses:>7,}  fix {r.field}")


def _fields(raw: pa.Table, state: pa.Array, country: pa.Array) -> EinvoiceFields:
    from pipelines.normalize.clean import as_text

    def text(name: str) -> pa.Array:
        return as_text(raw.column(name))

    return EinvoiceFields(
        tin=text("EInvoiceRegTIN"),
        id_type=text("EInvoiceRegType"),
        id_numbers={t: text(f"EInvoiceRegNumber_{t}") for t in ("BRN", "NRIC", "PASSPORT", "ARMY")},
        id_number=text("EInvoiceRegNumber"),
        sst=text("EInvoiceRegSSTNumber"),
        address_line=text("EInvoiceAddressLine0"),
        city=text("EInvoiceAddressCityName"),
        state_code=text("AcEInvoiceAddressStateID"),
        country_code=text("AcEInvoiceAddressCountryID"),
        validated=text("EInvoiceIsTINValidateSuccess"),
        state=state,
        country=country,
    )


def _floor(raw: pa.Table) -> int:
    """One bare regex pass of the contract's patterns over the same raw fields (no cleaning, no logic)."""
    spec = load_spec()
    passes = [
        ("EInvoiceRegTIN", spec.tin_pattern),
        ("EInvoiceRegNumber_BRN", spec.id_patterns["BRN"]),
        ("EInvoiceRegNumber_NRIC", spec.id_patterns["NRIC"]),
        ("EInvoiceRegNumber", spec.id_patterns["PASSPORT"]),
        ("EInvoiceRegSSTNumber", spec.sst_pattern),
        ("AcEInvoiceAddressStateID", spec.state_pattern),
        ("AcEInvoiceAddressCountryID", spec.country_pattern),
        ("EInvoiceRegType", "^(BRN|NRIC|PASSPORT|ARMY)$"),
        ("EInvoiceIsTINValidateSuccess", "^Y$"),
        ("EInvoiceAddressLine0", "."),
        ("EInvoiceAddressCityName", "."),
    ]
    hits = 0
    for name, pattern in passes:
        hits += int(pc.sum(pc.match_substring_regex(raw.column(name), pattern)).as_py() or 0)
    return hits


def scale_cost(size: int, seed: int) -> None:
    """Part 2: assess and the readiness expectations at ``size`` SmartAcc customers, against the floor."""
    import pipelines.quality.suite as suite_module
    from pipelines.contracts import load_contract
    from pipelines.normalize.model import assemble
    from pipelines.quality import frame_from_table, validate_frame
    from pipelines.sources.smartacc.normalize import draft
    from skysmart_sandbox.data import generate
    from skysmart_sandbox.raw import render, render_terms

    data = generate(size, seed)
    window = Window("smartacc", *WINDOW)
    raw = render("smartacc", data.smartacc, window)
    terms = render_terms(data.terms, window)
    del data
    print(f"\nscale: {size:,} SmartAcc customers in one window (pid {os.getpid()})")

    drafted, norm_wall, norm_cpu = _timed(lambda: draft(raw, {"terms": terms}))
    fields = _fields(raw, drafted.columns["state"], drafted.columns["country"])
    spec = load_spec()
    found, assess_wall, assess_cpu = _timed(lambda: assess(fields, spec))
    ready = int(pc.sum(found.columns["einvoice_ready"]).as_py() or 0)
    assembled, asm_wall, asm_cpu = _timed(partial(assemble, drafted))
    hits, floor_wall, floor_cpu = _timed(lambda: _floor(raw))
    table = assembled.normalized
    del drafted, assembled
    frame = frame_from_table(table, load_contract("customer"))
    del table

    # Warm up first (great-expectations' import and first context cost seconds that are no check's).
    validate_frame(frame.head(1_000), "customer", raise_on_error=False)
    with_checks, full_wall, full_cpu = _timed(lambda: validate_frame(frame, "customer", raise_on_error=False))
    original = suite_module._readiness_expectations

    def no_readiness(ge: Any, contract: Any) -> list[Any]:
        return []

    suite_module._readiness_expectations = no_readiness
    try:
        without, bare_wall, bare_cpu = _timed(lambda: validate_frame(frame, "customer", raise_on_error=False))
    finally:
        suite_module._readiness_expectations = original
    quality_wall, quality_cpu = full_wall - bare_wall, full_cpu - bare_cpu
    added_wall, added_cpu = assess_wall + quality_wall, assess_cpu + quality_cpu
    print(f"  ready: {ready:,} of {len(raw):,} ({ready / len(raw):.1%})")
    print(
        f"  normalization draft (all fields, assess included): {norm_wall:.1f} s wall, {norm_cpu:.1f} s CPU"
    )
    print(
        f"    of which assess (e-invoice columns, issues, reasons): {assess_wall:.2f} s wall, "
        f"{assess_cpu:.2f} s CPU"
    )
    print(f"  assemble (extras, issues, hash, schema): {asm_wall:.1f} s wall, {asm_cpu:.1f} s CPU")
    print(
        f"  quality suite: {with_checks.evaluated} expectations {full_wall:.1f} s wall / "
        f"{full_cpu:.1f} s CPU; "
        f"without the {with_checks.evaluated - without.evaluated} readiness ones {bare_wall:.1f} s / "
        f"{bare_cpu:.1f} s CPU -> readiness checks {quality_wall:.2f} s wall, {quality_cpu:.2f} s CPU"
    )
    print(
        f"  floor (bare pyarrow regex pass, 11 raw fields, {hits:,} hits): {floor_wall:.2f} s wall, "
        f"{floor_cpu:.2f} s CPU"
    )
    print(
        f"  e-invoice checks in total (assess + readiness expectations): {added_wall:.2f} s wall, "
        f"{added_cpu:.2f} s CPU = {added_cpu / floor_cpu:.1f}x the floor's CPU "
        f"({added_wall / floor_wall:.1f}x wall); assess alone {assess_cpu / floor_cpu:.1f}x"
    )
    print(f"  load average now: {os.getloadavg()[0]:.1f}")


def main(argv: list[str]) -> None:
    """Print the demo share and the cost at scale."""
    parser = argparse.ArgumentParser(prog="bench einvoice")
    parser.add_argument("--demo-size", type=int, default=20_000, help="customers per system (the demo's)")
    parser.add_argument("--size", type=int, default=1_000_000, help="SmartAcc customers for the cost")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args(argv)
    if not args.skip_demo:
        demo_share(args.demo_size, args.seed)
    if args.size:
        scale_cost(args.size, args.seed)
