"""Normalization throughput and peak memory, per source, on one big raw window.

    python -m bench normalize -- --size 1000000 [--sources skybiz,smartacc] [--seed 42]

The sandbox generator's records (with its usual 3% dirt) are rendered to raw text the way the emulators
send them and written straight into a temporary lake as one window per source (no HTTP). Each
``normalize_window`` then runs in a fresh child process, so its peak RSS is its own, not the generator's.
Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pyarrow as pa

from pipelines.lake import Lake
from pipelines.windows import Window
from skysmart_sandbox.data import generate
from skysmart_sandbox.raw import write_raw_window

WINDOW_DATES = (date(2025, 1, 1), date(2025, 1, 31))


def _peak_rss_mb() -> float:
    """This process's peak RSS. ``VmHWM`` where Linux has it: ``ru_maxrss`` survives ``exec`` and would report
    the parent's peak (the generator's millions of rows) instead."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(lake_url: str, source: str) -> None:
    """Run one normalize_window and print its figures as JSON (the child process's whole job)."""
    from pipelines.normalize import normalize_window

    base_rss = _peak_rss_mb()
    window = Window(source, *WINDOW_DATES)
    started = time.perf_counter()
    cpu = time.process_time()
    result = normalize_window(Lake(lake_url), source, window)
    figures = {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "rows_in": result.rows_in,
        "normalized": result.normalized,
        "quarantined": result.quarantined,
        "reasons": result.quarantine_reasons,
        "peak_rss_mb": _peak_rss_mb(),
        "import_rss_mb": base_rss,
        "arrow_peak_mb": pa.default_memory_pool().max_memory() / 2**20,
    }
    print(json.dumps(figures))


def main(argv: list[str]) -> None:
    """Generate, write the raw windows, normalize each in a child process, print the figures."""
    parser = argparse.ArgumentParser(prog="bench normalize")
    parser.add_argument("--size", type=int, default=1_000_000, help="customers per source")
    parser.add_argument("--sources", default="skybiz,smartacc")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--child", nargs=2, metavar=("LAKE", "SOURCE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return

    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    started = time.perf_counter()
    data = generate(args.size, args.seed)
    took = time.perf_counter() - started
    print(f"generated {args.size:,} customers per source in {took:.1f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-normalize-") as tmp:
        lake = Lake(str(Path(tmp) / "lake"))
        for source in sources:
            started = time.perf_counter()
            manifest = write_raw_window(lake, data, Window(source, *WINDOW_DATES), everything=True)
            took = time.perf_counter() - started
            print(f"{source}: raw window of {manifest.rows:,} rows written in {took:.1f} s", flush=True)
        del data
        header = (
            *("source", "rows", "seconds", "cpu s", "rows/s"),
            *("peak RSS", "(imports)", "arrow peak", "quarantined"),
        )
        print("\n{:<9} {:>10} {:>8} {:>7} {:>10} {:>9} {:>9} {:>10} {:>11}".format(*header))
        for source in sources:
            done = subprocess.run(
                [sys.executable, "-m", "bench.normalize", "--child", lake.url, source],
                capture_output=True,
                text=True,
                check=True,
            )
            f = json.loads(done.stdout.strip().splitlines()[-1])
            rate = f["rows_in"] / f["seconds"] if f["seconds"] else 0.0
            print(
                f"{source:<9} {f['rows_in']:>10,} {f['seconds']:>8.2f} {f['cpu_seconds']:>7.2f} "
                f"{rate:>10,.0f} {f['peak_rss_mb']:>7,.0f}MB {f['import_rss_mb']:>7,.0f}MB "
                f"{f['arrow_peak_mb']:>8,.0f}MB "
                f"{f['quarantined']:>11,}"
            )
            print(f"          quarantine reasons: {f['reasons']}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
