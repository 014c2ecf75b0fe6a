"""Extraction benchmark: rows/s and peak memory of a full extraction per source; figures only, no assertions.

``python -m bench extract -- --size 20000`` while developing; without ``--size`` it runs 100,000 and 1,000,000
customers per source. For each size a sandbox serves the generated history in this process, and every
extraction runs in a fresh child process whose RSS high-water mark is reset after its imports, so the peak
is the extraction's own and not the server's, the imports' or an earlier run's.

The second part compares SmartAcc paging with one request in flight (``SKYSMART_HTTP_MAX_CONCURRENCY=1``)
against the default concurrency, with 50 ms added to every request, over a few windows of a
``--latency-size`` dataset (100,000 by default, so that it finishes in a minute or two).

The client-side request-rate limit (``SKYSMART_HTTP_REQUESTS_PER_SECOND``, 50/s by default, a courtesy to the
real vendors) is lifted (``--rps 0``) so the figures measure skysmart, not the limit; pass ``--rps 50`` to
see the default.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench import STARTED_ENV
from pipelines.windows import plan_windows
from skysmart_sandbox.data import SandboxData, generate
from skysmart_sandbox.server import SandboxServer
from skysmart_sandbox.switches import Switches

SOURCES = ("skybiz", "smartacc")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench extract")
    parser.add_argument("--size", type=int, nargs="+", default=[100_000, 1_000_000], help="customers/system")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--sources", nargs="+", choices=SOURCES, default=list(SOURCES))
    parser.add_argument("--rps", type=float, default=0.0, help="client request-rate limit (0 = off)")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--latency-size", type=int, default=100_000)
    parser.add_argument("--latency-windows", type=int, default=3)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args, unknown = parser.parse_known_args(argv)
    if args.child:
        _child(json.loads(args.child))
        return
    if unknown:
        print(f"(bench extract ignores {' '.join(unknown)})")

    print(f"client rate limit: {args.rps or 'off'} requests/s; each run in a fresh process", flush=True)
    print(f"{'source':<9} {'customers':>10} {'windows':>7} {'rows':>10} {'pages':>7} {'seconds':>8} "
          f"{'rows/s':>9} {'peak RSS MB':>11} {'+ over imports':>14}")  # fmt: skip
    for size in args.size:
        data = _generate(size, args.seed)
        with SandboxServer(data=data, seed=args.seed) as server, tempfile.TemporaryDirectory() as tmp:
            for source in args.sources:
                span = (data.history_start, data.history_end)
                got = _run_child(server, Path(tmp) / source, source, *span, args)
                print(
                    f"{source:<9} {size:>10,} {got['windows']:>7} {got['rows']:>10,} {got['pages']:>7,} "
                    f"{got['seconds']:>8.1f} {got['rows'] / got['seconds']:>9,.0f} "
                    f"{got['peak_rss_mb']:>11.0f} {got['peak_rss_mb'] - got['start_rss_mb']:>14.0f}",
                    flush=True,
                )

    if not args.skip_latency and "smartacc" in args.sources:
        _latency(args)


def _latency(args: argparse.Namespace) -> None:
    size = min(args.latency_size, max(args.size))
    data = _generate(size, args.seed)
    windows = plan_windows("smartacc", data.history_start, data.history_end)
    middle = len(windows) // 2
    chosen = windows[middle : middle + args.latency_windows]
    slow = Switches(latency_ms=args.latency_ms)
    print(
        f"\nSmartAcc paging at {args.latency_ms:.0f} ms per request: {len(chosen)} window(s) "
        f"{chosen[0].start}..{chosen[-1].end} of {size:,} customers",
        flush=True,
    )
    results = {}
    with SandboxServer(data=data, seed=args.seed, smartacc_switches=slow) as server:
        for label, concurrency in (("sequential", 1), ("concurrent", None)):
            with tempfile.TemporaryDirectory() as tmp:
                got = _run_child(
                    server, Path(tmp), "smartacc", chosen[0].start, chosen[-1].end, args, concurrency
                )
            results[label] = got
            rate = got["rows"] / got["seconds"]
            print(
                f"  {label:<10} (max_concurrency={got['concurrency']}): {got['rows']:,} rows, "
                f"{got['requests']:,} requests, {got['seconds']:.1f} s, {rate:,.0f} rows/s",
                flush=True,
            )
    speedup = results["sequential"]["seconds"] / results["concurrent"]["seconds"]
    print(f"  speed-up: {speedup:.1f}x", flush=True)


def _generate(size: int, seed: int) -> SandboxData:
    began = time.perf_counter()
    data = generate(size, seed)
    print(f"(generated {size:,} customers per system in {time.perf_counter() - began:.1f} s)", flush=True)
    return data


def _run_child(
    server: SandboxServer,
    lake: Path,
    source: str,
    start: date,
    end: date,
    args: argparse.Namespace,
    concurrency: int | None = None,
) -> dict[str, Any]:
    env = {k: v for k, v in STARTED_ENV.items() if not k.startswith("SKYSMART_")}
    env.update(server.endpoints.as_env())
    env["SKYSMART_HTTP_REQUESTS_PER_SECOND"] = str(args.rps)
    if concurrency is not None:
        env["SKYSMART_HTTP_MAX_CONCURRENCY"] = str(concurrency)
    spec = {"source": source, "start": start.isoformat(), "end": end.isoformat(), "lake": str(lake)}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.extract", "--child", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"extraction child failed ({proc.returncode}):\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _child(spec: dict[str, str]) -> None:
    """One full extraction in this (fresh) process; prints its figures as one JSON line."""
    from pipelines.config import Settings
    from pipelines.extract import extract_range
    from pipelines.lake import CUSTOMERS, RAW, Lake
    from pipelines.steps import make_client

    settings = Settings.from_env()
    start_rss = _reset_peak_rss_mb()  # after the imports: the peak from here on is the extraction's
    lake = Lake(spec["lake"])
    began = time.perf_counter()
    with make_client(settings, spec["source"]) as client:
        start, end = date.fromisoformat(spec["start"]), date.fromisoformat(spec["end"])
        results = extract_range(client, start, end, lake)
    seconds = time.perf_counter() - began
    requests = sum(
        int(lake.require_manifest(RAW, spec["source"], CUSTOMERS, r.window).extra.get("requests", r.pages))
        for r in results
    )
    print(
        json.dumps(
            {
                "windows": len(results),
                "rows": sum(r.rows for r in results),
                "pages": sum(r.pages for r in results),
                "requests": requests,
                "seconds": seconds,
                "start_rss_mb": start_rss,
                "peak_rss_mb": _rss_mb(),
                "concurrency": settings.require_smartacc().http.max_concurrency
                if spec["source"] == "smartacc"
                else 1,
            }
        )
    )


def _rss_mb() -> float:
    """The RSS high-water mark (VmHWM; since the last reset where Linux allows one)."""
    status = _proc_status()
    if "VmHWM" in status:
        return status["VmHWM"]
    # Elsewhere ru_maxrss: the high-water mark since the process started (KiB on Linux, bytes on macOS).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss_mb() -> float:
    """Reset the high-water mark to the current RSS (Linux: ``5`` into clear_refs) and return it."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    status = _proc_status()
    return status.get("VmRSS", _rss_mb())


def _proc_status() -> dict[str, float]:
    """``VmRSS``/``VmHWM`` in MB from /proc/self/status, or nothing off Linux."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) / 1024
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
