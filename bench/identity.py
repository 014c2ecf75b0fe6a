"""Identity resolution measured against the sandbox's ground truth (``python -m bench identity``).

Figures only, no assertions (the tests assert the targets). Two parts:

1. **Quality at 20k per side, end to end.** A sandbox of ``--size`` customers per system whose history runs
   from 2021-01-01 through today; ``skysmart run`` over the whole history in this process (fresh lake and
   DuckDB warehouse, which also rebuilds ``customer_matches``), then the push's plan (a dry run). Against
   :attr:`SandboxData.matches` (the businesses both systems hold) and :attr:`SandboxData.twin_variants`:

   * duplicates: twins the push would create although SkyBiz holds them (target 0), per variant;
   * clean active SmartAcc-only customers the push would not create because identity said "exists" or
     "possible" (target 0); the ones the mapping rejects (e.g. a currency SkyBiz lacks) are shown apart;
   * precision and recall of ``same`` pairs.

2. **Matching time at 100k and 1M per side** (``--scale``), on the generated raw fields (the same key
   functions read raw and normalized text): the full :func:`pipelines.identity.match.match` against a floor
   measured in the same run, the bare blocking join alone (:func:`candidate_pairs` on precomputed keys).
   The ratio says what scoring and classing add on top of finding the candidate pairs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.identity.match import Features, candidate_pairs, match
from pipelines.windows import MYT
from skysmart_sandbox.data import SandboxData, generate

HISTORY_START = date(2021, 1, 1)


@dataclass(frozen=True, slots=True)
class Quality:
    """How the push's plan and the ``same`` matches compare with the ground truth."""

    twins: int
    duplicates: int
    duplicates_by_variant: dict[str, int]
    variants: dict[str, int]
    review_twins: int
    smartacc_only: int
    smartacc_only_withheld: int
    smartacc_only_invalid: int
    same_pairs: int
    same_true: int
    truth_pairs: int

    @property
    def precision(self) -> float:
        """Share of ``same`` pairs that are true twins."""
        return self.same_true / self.same_pairs if self.same_pairs else 1.0

    @property
    def recall(self) -> float:
        """Share of true twins (both records in the warehouse) classed ``same``."""
        return self.same_true / self.truth_pairs if self.truth_pairs else 1.0


def evaluate(data: SandboxData, warehouse: Any, plan: Any) -> Quality:
    """Compare a push plan and ``customer_matches`` with the sandbox's truth (shared with the tests)."""
    truth = set(
        zip(data.matches["skybiz_code"].to_pylist(), data.matches["smartacc_id"].to_pylist(), strict=True)
    )
    twin_ids = {s for _, s in truth}
    variant_of = dict(
        zip(
            data.twin_variants["smartacc_id"].to_pylist(),
            data.twin_variants["variant"].to_pylist(),
            strict=True,
        )
    )
    dirty = {(d["system"], d["id"]) for d in data.defects.to_pylist()}
    active = {
        r["AcCustomerID"]: r["IsActive"] != "N"
        for r in data.smartacc.select(["AcCustomerID", "IsActive"]).to_pylist()
    }
    prefix = "smartacc:"
    action = {i.customer_key[len(prefix) :]: i.action for i in plan.items}
    reason = {i.customer_key[len(prefix) :]: i.reason or "" for i in plan.items}
    exists = {c.customer_key[len(prefix) :] for c in plan.counterparts}
    created = {s for s, a in action.items() if a in ("create", "verify")}
    duplicates = sorted(s for s in twin_ids if s in created)
    by_variant: dict[str, int] = {}
    for s in duplicates:
        by_variant[variant_of.get(s, "plain")] = by_variant.get(variant_of.get(s, "plain"), 0) + 1
    variants: dict[str, int] = {}
    for v in variant_of.values():
        variants[v] = variants.get(v, 0) + 1
    only = [s for s in active if s not in twin_ids and active[s] and ("smartacc", s) not in dirty]
    withheld = [
        s
        for s in only
        if s in exists or (action.get(s) == "needs_review" and "possible duplicate" in reason[s])
    ]
    invalid = [s for s in only if action.get(s) == "invalid"]
    same = warehouse.query("SELECT skybiz_code, smartacc_id FROM customer_matches WHERE match_class = 'same'")
    same_pairs = {(str(a), str(b)) for a, b in same}
    in_warehouse = {
        str(s)
        for (s,) in warehouse.query(
            "SELECT source_customer_id FROM customers WHERE source_system = 'smartacc'"
        )
    }
    reachable = {(a, b) for a, b in truth if b in in_warehouse}
    return Quality(
        twins=len(twin_ids),
        duplicates=len(duplicates),
        duplicates_by_variant=by_variant,
        variants=variants,
        review_twins=sum(1 for s in twin_ids if action.get(s) == "needs_review"),
        smartacc_only=len(only),
        smartacc_only_withheld=len(withheld),
        smartacc_only_invalid=len(invalid),
        same_pairs=len(same_pairs),
        same_true=len(same_pairs & truth),
        truth_pairs=len(reachable),
    )


def main(argv: list[str]) -> None:
    """Run both parts and print the figures."""
    parser = argparse.ArgumentParser(prog="bench identity")
    parser.add_argument("--size", type=int, default=20_000, help="customers per system for quality (20000)")
    parser.add_argument("--scale", type=int, nargs="*", default=[100_000, 1_000_000], help="timing sizes")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=2, help="rapidfuzz threads (default 2)")
    parser.add_argument("--skip-quality", action="store_true")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"(bench identity ignores {' '.join(unknown)})")
    if not args.skip_quality:
        quality(args.size, args.seed)
    for size in args.scale:
        timing(size, args.seed, args.workers)


def quality(size: int, seed: int) -> Quality:
    """Part 1: the whole pipeline over the sandbox's whole history, then the push's plan, against truth."""
    from pipelines.config import Settings
    from pipelines.push import PushSettings, plan_push
    from pipelines.run import run_pipeline
    from pipelines.warehouse import open_warehouse
    from skysmart_sandbox.server import SandboxServer

    today = datetime.now(MYT).date()
    began = time.perf_counter()
    data = generate(size, seed, history_start=HISTORY_START, history_end=today)
    tmp = Path(tempfile.mkdtemp(prefix="bench-identity-"))
    try:
        with SandboxServer(data=data, seed=seed) as server:
            env = {**server.endpoints.as_env(), "SKYSMART_HTTP_REQUESTS_PER_SECOND": "0"}
            env |= {"SKYSMART_LAKE": str(tmp / "lake"), "SKYSMART_WAREHOUSE": str(tmp / "warehouse.duckdb")}
            settings = Settings.from_env(env)
            run = run_pipeline(settings, HISTORY_START, today)
            ran = time.perf_counter() - began
            with open_warehouse(settings.warehouse_url) as warehouse:
                plan = plan_push(warehouse, settings=PushSettings(skybiz_covered_from=HISTORY_START))
                result = evaluate(data, warehouse, plan)
                classes = dict(
                    warehouse.query("SELECT match_class, count(*) FROM customer_matches GROUP BY 1")
                )
                rebuilt = time.perf_counter()
                from pipelines.identity import rebuild_matches

                summary = rebuild_matches(warehouse)
                rebuild_s = time.perf_counter() - rebuilt
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"quality at {size:,} per side, history {HISTORY_START}..{today}: skysmart run {ran:.0f} s "
        f"({run.totals['windows']} windows, {run.totals['quarantined']} quarantined); identity rebuild "
        f"{rebuild_s:.2f} s (matching {summary.match_seconds:.2f} s, {summary.pairs:,} candidate pairs: "
        f"{classes})",
        flush=True,
    )
    print(
        f"  duplicates created for businesses SkyBiz holds: {result.duplicates} of {result.twins} twins "
        f"(by variant {result.duplicates_by_variant or '{}'}; variants present {result.variants}); "
        f"twins held for review: {result.review_twins}",
        flush=True,
    )
    print(
        f"  clean active SmartAcc-only customers withheld by identity: {result.smartacc_only_withheld} of "
        f"{result.smartacc_only} (invalid by mapping rules, apart: {result.smartacc_only_invalid})",
        flush=True,
    )
    print(
        f"  same pairs: {result.same_pairs:,}; precision {result.precision:.4f}, recall {result.recall:.4f} "
        f"(of {result.truth_pairs:,} twins whose SmartAcc record is in the warehouse)",
        flush=True,
    )
    return result


def raw_records(data: SandboxData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both systems' raw fields as match records (what a quarantined row is matched on, for every row)."""
    sky = data.skybiz.select(
        ["CusName", "Tel", "Tel2", "ContactTel", "Email", "PostCode", "Town"]
    ).to_pandas()
    sky.columns = ["name", "phone_1", "phone_2", "phone_3", "email", "postcode", "town"]
    sma_cols = [
        "AcCustomerName",
        "BillingTel1",
        "BillingTel2",
        "MobileNo",
        "BillingEmail",
        "BillingPostalCode",
    ]
    sma = data.smartacc.select([*sma_cols, "BusinessRegisterNumber"]).to_pandas()
    sma.columns = ["name", "phone_1", "phone_2", "phone_3", "email", "postcode", "registration_no"]
    return sky.astype("string"), sma.astype("string")


def timing(size: int, seed: int, workers: int) -> None:
    """Part 2: matching time at ``size`` per side against the bare blocking join as the floor."""
    data = generate(size, seed)
    sky, sma = raw_records(data)
    began = time.perf_counter()
    a, b = Features.of(sky).frame, Features.of(sma).frame
    keys_s = time.perf_counter() - began
    began = time.perf_counter()
    pairs = candidate_pairs(a, b)
    floor_s = time.perf_counter() - began
    began = time.perf_counter()
    matched = match(sky, sma, workers=workers)
    match_s = time.perf_counter() - began
    same = matched[matched["match_class"] == "same"]
    codes = data.skybiz["CusCode"].to_pylist()
    ids = data.smartacc["AcCustomerID"].to_pylist()
    found = {(codes[i], ids[j]) for i, j in zip(same["skybiz_row"], same["smartacc_row"], strict=True)}
    truth = set(
        zip(data.matches["skybiz_code"].to_pylist(), data.matches["smartacc_id"].to_pylist(), strict=True)
    )
    precision = len(found & truth) / len(found) if found else 1.0
    recall = len(found & truth) / len(truth) if truth else 1.0
    print(
        f"timing at {size:,} per side: match {match_s:.1f} s (keys {keys_s:.1f} s of it); floor, the bare "
        f"blocking join on ready keys {floor_s:.1f} s; ratio {match_s / floor_s:.1f}x; {len(pairs):,} "
        f"candidate "
        f"pairs ({len(pairs) / size:.2f} per record); same precision {precision:.4f} recall {recall:.4f} "
        f"(raw fields, no normalization); rapidfuzz workers {workers}; load avg {os.getloadavg()[0]:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
