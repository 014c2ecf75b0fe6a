"""What random vendor faults cost a run: retries, and extra time against a fault-free run; figures only.

    python -m bench faults -- [--rate 0.10] [--size 2000] [--from 2024-01-01] [--to 2025-12-31] [--seeds 3]

For each seed, the same two-year ``run_pipeline`` (both sources: extract, normalize, validate, load) runs
twice against a sandbox serving the same customers: once well-behaved (the floor) and once with ``--rate``
of requests failing at random, split evenly over HTTP 500, 429 (``Retry-After: 1``), a connection dropped
before an answer and an answer cut off half-way. Retries are counted from the HTTP layer's retry log lines
and classified by what failed; logical requests are what the well-behaved sandbox received. The runs are
sequential in one process, so both pay the same imports and warm caches (the floor runs first, and a
throwaway run warms GX before either).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

from pipelines.config import Settings
from pipelines.run import RunSummary, run_pipeline
from skysmart_sandbox.data import SandboxData, generate
from skysmart_sandbox.server import SandboxServer
from skysmart_sandbox.switches import Switches

KINDS = ("500", "429", "drop", "truncate")
# How the HTTP layer describes each fault when it retries (pipelines.http and the clients' messages).
CAUSES = (("HTTP 429", "429"), ("HTTP 500", "500"), ("connection failed", "drop"), ("cut short", "truncate"))


class _Retries(logging.Handler):
    """Counts the HTTP layer's "retrying in" lines by cause, and the seconds it announced to wait."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.by_cause: Counter[str] = Counter()
        self.waited = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "retrying in" not in text:
            return
        cause = next((label for marker, label in CAUSES if marker in text), "other")
        self.by_cause[cause] += 1
        self.waited += float(text.rsplit("retrying in ", 1)[1].rstrip("s"))


def _run(
    data: SandboxData, tmp: Path, rate: float, seed: int, start: date, end: date
) -> tuple[RunSummary, float, _Retries, int]:
    faults = {kind: rate / len(KINDS) for kind in KINDS} if rate > 0 else {}
    retries = _Retries()
    http_log = logging.getLogger("pipelines.http")
    http_log.addHandler(retries)
    http_log.setLevel(logging.WARNING)
    http_log.propagate = False  # counted, not printed
    try:
        with SandboxServer(
            data=data,
            seed=7,
            skybiz_switches=Switches(fault_rates=dict(faults), seed=seed),
            smartacc_switches=Switches(fault_rates=dict(faults), seed=seed + 1),
        ) as server:
            settings = dataclasses.replace(
                Settings.from_env(server.endpoints.as_env()),
                lake_url=str(tmp / "lake"),
                warehouse_url=str(tmp / "warehouse.duckdb"),
            )
            began = time.perf_counter()
            summary = run_pipeline(settings, start, end)
            seconds = time.perf_counter() - began
            received = len(server.skybiz.received) + len(server.smartacc.received)
    finally:
        http_log.removeHandler(retries)
        http_log.propagate = True
    return summary, seconds, retries, received


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench faults")
    parser.add_argument("--rate", type=float, default=0.10, help="share of requests that fail (default 0.10)")
    parser.add_argument("--size", type=int, default=2_000, help="sandbox customers per system")
    parser.add_argument("--from", dest="start", type=date.fromisoformat, default=date(2024, 1, 1))
    parser.add_argument("--to", dest="end", type=date.fromisoformat, default=date(2025, 12, 31))
    parser.add_argument("--seeds", type=int, default=3, help="fault seeds to run (each: floor + faulty)")
    args = parser.parse_args(argv)

    data = generate(args.size, 7)
    print(
        f"{args.start}..{args.end}, {args.size:,} customers per system, faults {args.rate:.0%} of requests "
        f"({', '.join(KINDS)} evenly)",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        _run(data, Path(tmp) / "warm", 0.0, 0, args.start, args.start)  # imports, GX set-up
        extra: list[float] = []
        for seed in range(1, args.seeds + 1):
            floor, floor_s, _, logical = _run(data, Path(tmp) / f"floor{seed}", 0.0, 0, args.start, args.end)
            faulty, faulty_s, retries, _ = _run(
                data, Path(tmp) / f"faulty{seed}", args.rate, seed, args.start, args.end
            )
            same = floor.totals == faulty.totals
            total = sum(retries.by_cause.values())
            extra.append(faulty_s - floor_s)
            print(
                f"seed {seed}: floor {floor_s:.1f} s, faulty {faulty_s:.1f} s "
                f"(+{faulty_s - floor_s:.1f} s, {faulty_s / floor_s:.2f}x); {logical:,} logical requests, "
                f"{total} retries ({total / max(logical, 1):.1%}): "
                f"{', '.join(f'{k} {v}' for k, v in sorted(retries.by_cause.items()))}; "
                f"announced waits {retries.waited:.1f} s; windows failed {faulty.totals['windows_failed']}; "
                f"totals equal: {same}",
                flush=True,
            )
        print(f"extra time: median {statistics.median(extra):.1f} s over {len(extra)} seed(s)")
