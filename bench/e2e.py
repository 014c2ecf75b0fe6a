"""End-to-end benchmark: ``skysmart run`` against the floor a bare fetch of the same range sets.

``python -m bench e2e`` (part of ``make bench``); figures only, no assertions. For each case a sandbox serves
the generated customers in this process with 20 ms added to every request (``--latency-ms``), and then:

(a) **the fetch floor** — a bare concurrent fetch with 8 threads and one keep-alive session per thread of
    exactly the requests the range needs (one SkyBiz ``customer.php`` read per window; for SmartAcc the
    EditDate-route pages that hold the window's customers, counted from the served data), bodies parsed as
    JSON and dropped. Nothing is written: it is what the network and the vendors' answers cost.
(b) **``skysmart run``** over the same range, in a fresh subprocess writing a fresh lake and DuckDB
    warehouse: wall time, CPU time (user + system of the process and its children), the lake's size on disk
    and peak RSS
    (its own ``VmHWM``, polled every 50 ms: the peak since its exec, whatever this process holds), and the
    peak of the resident sets of it and its children summed (``all procs``: the validator process included;
    polled, so a lower bound). Beside them, the sandbox's CPU while it served the run (``vendor CPU s``:
    this process's CPU but for the thread that polls) and how busy the run and the sandbox kept the
    machine's cores (``busy``: both CPU times over the wall time and the cores). Near 100 % the run is
    CPU-bound on this machine, the vendor emulator included: only less CPU makes it faster.
    ``--before DIR`` also runs skysmart from another checkout (a ``git worktree`` of an older commit),
    alternating with this one against the same sandbox, so before and after meet the same conditions.

Each line prints ``run / floor``. The client-side request-rate limit (``SKYSMART_HTTP_REQUESTS_PER_SECOND``,
50/s by default, a courtesy to the real vendors) is lifted (``--rps 0``) so that the figures measure skysmart
and not the courtesy limit; the concurrency bound (``SKYSMART_HTTP_MAX_CONCURRENCY``, 8) stays, as the floor's
8 threads. The machine's load average is printed next to every figure: the figures are only comparable
between runs on an equally quiet machine. With ``--repeat N`` the fastest run gives the figures and the
slowest run's seconds are printed beside it (``slowest``): the spread says how far a difference between
two checkouts can be trusted.

Cases (``--case``; ``--quick`` runs the 2,000-customer ones and ``20k-2y``):

* ``20k-2y``: 20,000 customers per system, 2023-01-01..2024-12-31 (48 windows);
* ``20k-today``: 20,000 customers, 2023-01-01..today;
* ``200k-2y``: 200,000 customers, 2023-01-01..2024-12-31;
* ``2k-today``: 2,000 customers, 2023-01-01..today;
* ``2k-month``: 2,000 customers, one month (2024-05), the yardstick for "history length costs nothing".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import requests

from bench import STARTED_ENV
from pipelines.windows import MYT, Window, plan_windows
from skysmart_sandbox.data import SandboxData, generate
from skysmart_sandbox.server import SandboxServer
from skysmart_sandbox.switches import Switches

SOURCES = ("skybiz", "smartacc")
SMARTACC_PAGE_ROWS = 20
FLOOR_THREADS = 8


@dataclass(frozen=True)
class Case:
    """One measured range over one dataset size."""

    name: str
    size: int
    start: date
    end: date | None  # None: today (Malaysia)

    def span(self) -> tuple[date, date]:
        """The inclusive Malaysia date range."""
        return self.start, self.end or datetime.now(MYT).date()


CASES = (
    Case("20k-2y", 20_000, date(2023, 1, 1), date(2024, 12, 31)),
    Case("20k-today", 20_000, date(2023, 1, 1), None),
    Case("200k-2y", 200_000, date(2023, 1, 1), date(2024, 12, 31)),
    Case("2k-today", 2_000, date(2023, 1, 1), None),
    Case("2k-month", 2_000, date(2024, 5, 1), date(2024, 5, 31)),
)
QUICK = ("2k-month", "2k-today", "20k-2y")


def main(argv: list[str]) -> None:
    """Run the chosen cases and print one line per case (floor, run, ratios)."""
    names = [c.name for c in CASES]
    parser = argparse.ArgumentParser(prog="bench e2e")
    parser.add_argument("--case", nargs="+", choices=names, help="cases to run (default: all)")
    parser.add_argument("--size", type=int, nargs="+", help="only the cases of these sizes")
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--rps", type=float, default=0.0, help="client request-rate limit (0 = off)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per case (the best is printed, the slowest beside it)"
    )
    parser.add_argument(
        "--before",
        metavar="DIR",
        help="also run skysmart from this checkout (a git worktree of an older commit)",
    )
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"(bench e2e ignores {' '.join(unknown)})")
    chosen = [c for c in CASES if (args.case is None or c.name in args.case)]
    if args.quick:
        chosen = [c for c in chosen if c.name in QUICK]
    if args.size:
        chosen = [c for c in chosen if c.size in args.size]

    print(
        f"sandbox latency {args.latency_ms:.0f} ms/request; floor: {FLOOR_THREADS} threads, keep-alive; "
        f"skysmart run: rate limit {args.rps or 'off'}, fresh process, fresh lake and DuckDB warehouse",
        flush=True,
    )
    header = (
        f"{'case':<17} {'windows':>7} {'requests':>8} {'floor s':>7} {'run s':>6} {'ratio':>6} "
        f"{'slowest':>7} {'CPU s':>6} {'vendor CPU s':>12} {'busy':>5} {'peak RSS MB':>11} "
        f"{'all procs MB':>12} {'lake MB':>7} {'load avg':>8}"
    )
    print(header, flush=True)
    by_size: dict[int, list[Case]] = {}
    for case in chosen:
        by_size.setdefault(case.size, []).append(case)
    for size, cases in by_size.items():
        data = generate(size, args.seed)
        slow = Switches(latency_ms=args.latency_ms)
        with SandboxServer(
            data=data,
            seed=args.seed,
            skybiz_switches=slow,
            smartacc_switches=Switches(latency_ms=args.latency_ms),
        ) as server:
            for case in cases:
                _measure(server, data, case, args)


def _measure(server: SandboxServer, data: SandboxData, case: Case, args: argparse.Namespace) -> None:
    """Floor and run(s) of one case; with ``--before DIR`` that checkout's run too, alternating."""
    start, end = case.span()
    codes: list[tuple[str, str | None]] = [("", None)]
    if args.before:
        codes = [("before", args.before), ("after", None)]
    floors: list[dict[str, Any]] = []
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in codes}
    for _ in range(max(1, args.repeat)):
        floors.append(fetch_floor(server, data, start, end))
        for label, code in codes:
            runs[label].append(
                run_skysmart(server, start, end, args.rps, code) | {"load": os.getloadavg()[0]}
            )
    floor = min(floors, key=lambda f: f["seconds"])
    for label, _ in codes:
        run = min(runs[label], key=lambda r: r["seconds"])
        slowest = max(r["seconds"] for r in runs[label])
        name = f"{case.name} {label}".strip()
        print(
            f"{name:<17} {floor['windows']:>7} {floor['requests']:>8,} {floor['seconds']:>7.2f} "
            f"{run['seconds']:>6.1f} {run['seconds'] / floor['seconds']:>5.1f}x {slowest:>7.1f} "
            f"{run['cpu']:>6.1f} {run['vendor_cpu']:>12.1f} {_busy(run):>4.0%} "
            f"{run['peak_rss_mb']:>11.0f} {run['tree_rss_mb']:>12.0f} {run['lake_mb']:>7.1f} "
            f"{run['load']:>8.2f}",
            flush=True,
        )


def fetch_floor(server: SandboxServer, data: SandboxData, start: date, end: date) -> dict[str, Any]:
    """The bare concurrent fetch of exactly the requests ``start``..``end`` needs; figures only."""
    e = server.endpoints
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        s: requests.Session = local.session
        return s

    skybiz_url = f"{e.skybiz_url.rstrip('/')}/customer.php"
    creds = {"api_key": e.skybiz_api_key, "api_secret": e.skybiz_api_secret}
    headers = {"Authorization": f"Bearer {e.smartacc_api_key}", "Accept": "application/json"}

    calls: list[Callable[[], None]] = []
    windows = 0
    for window in plan_windows("skybiz", start, end):
        windows += 1
        body = {
            **creds,
            "action": "read",
            "date_from": window.start.isoformat(),
            "date_to": window.end.isoformat(),
        }

        def read_skybiz(body: dict[str, Any] = body) -> None:
            _parse(session().post(skybiz_url, json=body, timeout=120))

        calls.append(read_skybiz)
    edited = data.smartacc.column("EditDate")
    for window in plan_windows("smartacc", start, end):
        windows += 1
        url = f"{e.smartacc_url.rstrip('/')}/Customers/EditDate/{window.start.isoformat()}"
        for page in range(1, _smartacc_rows(edited, window) // SMARTACC_PAGE_ROWS + 2):
            params = {"format": "json", "Page": str(page)}

            def read_smartacc(url: str = url, params: dict[str, str] = params) -> None:
                _parse(session().get(url, params=params, headers=headers, timeout=60))

            calls.append(read_smartacc)

    began = time.perf_counter()
    with ThreadPoolExecutor(FLOOR_THREADS) as pool:
        for future in [pool.submit(call) for call in calls]:
            future.result()
    return {"seconds": time.perf_counter() - began, "requests": len(calls), "windows": windows}


def _smartacc_rows(edited: pa.ChunkedArray, window: Window) -> int:
    """Customers whose EditDate (Malaysia wall time, as served) lies in the window."""
    low = pa.scalar(datetime.combine(window.start, datetime.min.time()), pa.timestamp("ms"))
    high = pa.scalar(datetime.combine(window.end, datetime.max.time()), pa.timestamp("ms"))
    inside = pc.and_(pc.greater_equal(edited, low), pc.less_equal(edited, high))
    return int(pc.sum(inside).as_py() or 0)


def _hwm_mb(pid: int) -> float:
    """A live process's VmHWM (peak resident set since its exec) in MB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _tree_rss_mb(pid: int) -> float:
    """The resident sets of a process and all its descendants, summed (MB); polled, so a lower bound."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return total


def _tree_bytes(root: Path) -> int:
    """Bytes of every file under ``root`` (the lake the run wrote)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _process_cpu() -> float:
    """User and system CPU seconds of this process (all its threads; not its children)."""
    times = os.times()
    return times.user + times.system


def _busy(run: dict[str, float]) -> float:
    """The share of the machine's cores the run and the sandbox serving it kept busy."""
    return (run["cpu"] + run["vendor_cpu"]) / run["seconds"] / (os.cpu_count() or 1)


def _parse(response: requests.Response) -> None:
    response.raise_for_status()
    json.loads(response.content)


def run_skysmart(
    server: SandboxServer, start: date, end: date, rps: float, cwd: str | None = None
) -> dict[str, Any]:
    """``skysmart run`` over the range in a fresh subprocess: wall seconds, CPU seconds, peak RSS (MB).

    ``cwd`` runs the ``pipelines`` package found there (``--code``: another checkout, e.g. an older commit).
    """
    tmp = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    try:
        env = {k: v for k, v in STARTED_ENV.items() if not k.startswith("SKYSMART_")}
        env.update(server.endpoints.as_env())
        env["SKYSMART_HTTP_REQUESTS_PER_SECOND"] = str(rps)
        env["COLUMNS"] = "120"
        command = [sys.executable, "-m", "pipelines.cli", "run"]
        command += ["--from", start.isoformat(), "--to", end.isoformat()]
        command += ["--lake", str(tmp / "lake"), "--warehouse", str(tmp / "warehouse.duckdb")]
        began = time.perf_counter()
        # This process's CPU is the sandbox's (its server threads) but for this thread's polling below.
        served, polled = _process_cpu(), time.thread_time()
        with (tmp / "out.txt").open("wb") as out:
            proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
            peak = tree = 0.0
            while True:
                # VmHWM, the child's own high-water mark since its exec: wait4's ru_maxrss would start from
                # this process's RSS at fork time (the sandbox's data), not from the child's.
                peak = max(peak, _hwm_mb(proc.pid))
                tree = max(tree, _tree_rss_mb(proc.pid))  # with its validator process
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                time.sleep(0.05)
            proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - began
        vendor_cpu = _process_cpu() - served - (time.thread_time() - polled)
        if proc.returncode != 0:
            tail = (tmp / "out.txt").read_text(errors="replace")[-3000:]
            raise SystemExit(f"skysmart run failed ({proc.returncode}):\n{tail}")
        return {
            "seconds": seconds,
            "cpu": usage.ru_utime + usage.ru_stime,
            "vendor_cpu": vendor_cpu,
            "peak_rss_mb": peak,
            "tree_rss_mb": max(tree, peak),
            "lake_mb": _tree_bytes(tmp / "lake") / 1e6,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
