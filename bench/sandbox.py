"""Sandbox benchmark: generate, start and serve N customers per system; figures only, no assertions.

``python -m bench sandbox -- --size 1000000`` (default 100,000). Measures generation, server start-up, a
31-day SkyBiz window read (the widest the API allows), request rates on loopback over keep-alive sessions,
and the per-request latency floor (a Nagle-delayed server would show ~40 ms here, see STACK-NOTES).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import requests

from skysmart_sandbox.data import generate
from skysmart_sandbox.server import SandboxServer


def _timed(fn: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return times


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench sandbox")
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--requests", type=int, default=300, help="requests per rate measurement")
    args = parser.parse_args(argv)

    began = time.perf_counter()
    data = generate(args.size, args.seed)
    generation = time.perf_counter() - began
    print(f"generate {args.size:,} customers per system: {generation:.2f} s", flush=True)

    with SandboxServer(data=data, seed=args.seed) as server:
        print(f"start both servers (index + bind + serve): {server.startup_seconds:.3f} s", flush=True)
        e = server.endpoints
        url = f"{e.skybiz_url}/customer.php"
        creds = {"api_key": e.skybiz_api_key, "api_secret": e.skybiz_api_secret, "action": "read"}
        session = requests.Session()

        window = {**creds, "date_from": "2026-04-01", "date_to": "2026-05-01"}
        first = session.post(url, json=window, timeout=120)
        rows = first.json()["data"]["total_returned"]
        times = _timed(lambda: session.post(url, json=window, timeout=120).raise_for_status(), 5)
        print(
            f"SkyBiz 31-day window: {rows:,} rows, {len(first.content) / 1e6:.1f} MB, "
            f"median {statistics.median(times) * 1000:.0f} ms (best {min(times) * 1000:.0f} ms)",
            flush=True,
        )
        projected = {
            **window,
            "fields": ["CusCode", "CusName", "DateTimeModified"],
            "filters": {"CurCode": "SGD"},
        }
        times = _timed(lambda: session.post(url, json=projected, timeout=120).raise_for_status(), 5)
        print(f"SkyBiz 31-day window, 3 fields, filtered: median {statistics.median(times) * 1000:.0f} ms")

        empty = {**creds, "date_from": "2020-01-01", "date_to": "2020-01-01"}
        times = _timed(lambda: session.post(url, json=empty, timeout=30).raise_for_status(), args.requests)
        print(
            f"SkyBiz empty-window requests: {len(times) / sum(times):,.0f} req/s, "
            f"median latency {statistics.median(times) * 1000:.2f} ms (a Nagle stall would be ~40 ms)",
            flush=True,
        )
        day = {**creds, "date_from": "2026-04-15", "date_to": "2026-04-15"}
        day_rows = session.post(url, json=day, timeout=30).json()["data"]["total_returned"]
        times = _timed(lambda: session.post(url, json=day, timeout=30).raise_for_status(), args.requests // 3)
        rate = len(times) / sum(times)
        print(f"SkyBiz one-day windows ({day_rows} rows): {rate:,.0f} req/s, {rate * day_rows:,.0f} rows/s")

        headers = {"Authorization": f"Bearer {e.smartacc_api_key}", "Accept": "application/json"}
        pages = iter(range(1, 10**9))
        times = _timed(
            lambda: session.get(
                f"{e.smartacc_url}/Customers/page/{next(pages)}?format=json", headers=headers, timeout=30
            ).raise_for_status(),
            args.requests,
        )
        rate = len(times) / sum(times)
        print(
            f"SmartAcc pages of 20: {rate:,.0f} req/s, {rate * 20:,.0f} rows/s, "
            f"median latency {statistics.median(times) * 1000:.2f} ms",
            flush=True,
        )
        session.close()
