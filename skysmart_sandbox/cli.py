"""``skysmart sandbox serve``: both emulators on loopback until interrupted.

Every option can also come from a ``SKYSMART_SANDBOX_*`` variable (the option wins): ``SIZE``, ``SEED``,
``SKYBIZ_PORT``, ``SMARTACC_PORT``, ``LATENCY_MS``, ``FAULTS`` (``500=0.05,429=0.01``), ``RATE_LIMIT_KEY``,
``RATE_LIMIT_IP``, ``MUTATE_EVERY``, ``CORRUPT`` (a share of records, ``0.05``), ``CORRUPT_KINDS``
(``null,bad_date``), ``WRITE_ENDPOINTS``, ``SKYBIZ_MODE``, ``HISTORY_START``, ``HISTORY_END`` (``today``
ends the history on Malaysia's today, so SkyBiz can be loaded from its first day through today and a real
push is allowed).

``--corrupt 0.05`` makes both APIs send 5 % of customer records damaged on the wire — wrong JSON types,
missing keys, nulls, 100 kB strings, control characters with emoji and bidi overrides, malformed dates —
the same way every time a record is read (``--corrupt-kinds`` narrows the kinds).

SkyBiz rate limits default to the sandbox numbers agreed in ``shared/api/SKYBIZ.md`` §10 (60 requests a minute
per key, 120 per IP); ``0`` turns a tier off. SmartAcc documents no rate limit, so it has none.

``--write-endpoints FILE`` writes the endpoints JSON (URLs and sandbox credentials) atomically once both
servers accept connections, and removes it on a clean stop, so "the file exists" means "the sandbox is up".
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import threading
import time
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pipelines.cli.ui import console
from pipelines.errors import ConfigError
from pipelines.windows import MYT
from skysmart_sandbox.switches import CORRUPTIONS, FAULTS, Switches

ENV_PREFIX = "SKYSMART_SANDBOX_"
DEFAULT_SIZE = 10_000
DEFAULT_SEED = 42
DEFAULT_RATE_LIMIT_KEY = 60
DEFAULT_RATE_LIMIT_IP = 120


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``sandbox serve``."""
    parser = sub.add_parser("sandbox", help="run the SkyBiz and SmartAcc emulators on loopback")
    commands = parser.add_subparsers(dest="sandbox_command", required=True, metavar="SUBCOMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve both emulators until interrupted",
        description="Serve seeded SkyBiz and SmartAcc emulators on 127.0.0.1 until SIGINT/SIGTERM. "
        f"Options default to {ENV_PREFIX}* environment variables.",
    )
    serve.add_argument("--size", type=int, help=f"customers per system (default {DEFAULT_SIZE})")
    serve.add_argument("--seed", type=int, help=f"data seed (default {DEFAULT_SEED})")
    serve.add_argument(
        "--skybiz-port", "--port-skybiz", dest="skybiz_port", type=int, help="SkyBiz port (default: free)"
    )
    serve.add_argument(
        "--smartacc-port",
        "--port-smartacc",
        dest="smartacc_port",
        type=int,
        help="SmartAcc port (default: free)",
    )
    serve.add_argument("--latency-ms", type=float, help="latency added to every answer of both APIs")
    serve.add_argument(
        "--fault",
        action="append",
        default=None,
        metavar="KIND=RATE",
        help=f"random fault rate for both APIs, repeatable; kinds: {', '.join(FAULTS)}",
    )
    serve.add_argument(
        "--rate-limit-key",
        type=int,
        help=f"SkyBiz requests/minute per key (default {DEFAULT_RATE_LIMIT_KEY})",
    )
    serve.add_argument(
        "--rate-limit-ip", type=int, help=f"SkyBiz requests/minute per IP (default {DEFAULT_RATE_LIMIT_IP})"
    )
    serve.add_argument("--mutate-every", type=int, help="edit a customer after every N requests (0: off)")
    serve.add_argument(
        "--history-start",
        metavar="YYYY-MM-DD",
        help="first day a customer can have been modified: the tenant's first day (default 2021-01-01)",
    )
    serve.add_argument(
        "--history-end",
        metavar="YYYY-MM-DD|today",
        help="last day a customer can have been modified (default 2026-10-31; 'today': Malaysia's today)",
    )
    serve.add_argument(
        "--corrupt",
        type=float,
        metavar="SHARE",
        help="share of customer records both APIs send corrupted, 0..1 (default 0)",
    )
    serve.add_argument(
        "--corrupt-kinds",
        metavar="KIND,...",
        help=f"corruptions to draw from (default all): {', '.join(CORRUPTIONS)}",
    )
    serve.add_argument("--skybiz-mode", choices=("0", "1", "2"), help="SkyBiz integration mode (default 2)")
    serve.add_argument("--write-endpoints", metavar="FILE", help="write the endpoints JSON here when ready")
    serve.add_argument(
        "--write-env",
        metavar="FILE",
        help="write `export SKYSMART_...` lines here when ready (source it to use the sandbox)",
    )
    serve.set_defaults(handler=serve_command)


def _history_end(raw: str) -> date | None:
    """A history bound: ``today`` (Malaysia), a date, or nothing (the generator's default)."""
    if not raw:
        return None
    if raw.strip().lower() == "today":
        return datetime.now(MYT).date()
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ConfigError(
            f"a history bound must be YYYY-MM-DD or today, got {raw!r}", field="history"
        ) from None


def resolve_options(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Options, else ``SKYSMART_SANDBOX_*`` variables, else defaults; bad values raise ConfigError."""
    env = os.environ if env is None else env

    def pick(name: str, var: str, kind: type, default: Any) -> Any:
        given = getattr(args, name, None)
        if given is not None:
            return given
        raw = env.get(ENV_PREFIX + var, "").strip()
        if not raw:
            return default
        try:
            return kind(raw)
        except ValueError:
            raise ConfigError(
                f"{ENV_PREFIX}{var} must be a {kind.__name__}, got {raw!r}", field=var
            ) from None

    fault_specs: list[str] = list(args.fault or [])
    if not fault_specs and env.get(ENV_PREFIX + "FAULTS", "").strip():
        fault_specs = [part for part in env[ENV_PREFIX + "FAULTS"].split(",") if part.strip()]
    options = {
        "size": pick("size", "SIZE", int, DEFAULT_SIZE),
        "seed": pick("seed", "SEED", int, DEFAULT_SEED),
        "skybiz_port": pick("skybiz_port", "SKYBIZ_PORT", int, 0),
        "smartacc_port": pick("smartacc_port", "SMARTACC_PORT", int, 0),
        "latency_ms": pick("latency_ms", "LATENCY_MS", float, 0.0),
        "faults": parse_faults(fault_specs),
        "rate_limit_key": pick("rate_limit_key", "RATE_LIMIT_KEY", int, DEFAULT_RATE_LIMIT_KEY),
        "rate_limit_ip": pick("rate_limit_ip", "RATE_LIMIT_IP", int, DEFAULT_RATE_LIMIT_IP),
        "mutate_every": pick("mutate_every", "MUTATE_EVERY", int, 0),
        "corrupt": pick("corrupt", "CORRUPT", float, 0.0),
        "corrupt_kinds": parse_corruptions(pick("corrupt_kinds", "CORRUPT_KINDS", str, "")),
        "skybiz_mode": pick("skybiz_mode", "SKYBIZ_MODE", str, "2"),
        "write_endpoints": pick("write_endpoints", "WRITE_ENDPOINTS", str, None),
        "write_env": pick("write_env", "WRITE_ENV", str, None),
        "history_end": _history_end(pick("history_end", "HISTORY_END", str, "")),
        "history_start": _history_end(pick("history_start", "HISTORY_START", str, "")),
    }
    if not 1 <= options["size"] <= 10_000_000:
        raise ConfigError(f"--size must be between 1 and 10,000,000, got {options['size']}", field="size")
    if options["skybiz_mode"] not in ("0", "1", "2"):
        raise ConfigError("SkyBiz mode must be 0, 1 or 2", field="skybiz_mode")
    for name in ("skybiz_port", "smartacc_port", "rate_limit_key", "rate_limit_ip", "mutate_every"):
        if options[name] < 0:
            raise ConfigError(f"{name.replace('_', '-')} must not be negative", field=name)
    if not 0.0 <= options["corrupt"] <= 1.0:
        raise ConfigError(f"--corrupt must be between 0 and 1, got {options['corrupt']}", field="corrupt")
    return options


def parse_corruptions(spec: str) -> tuple[str, ...]:
    """``"null,bad_date"`` → ``("null", "bad_date")``, checked; empty means every kind."""
    kinds = tuple(part.strip() for part in spec.split(",") if part.strip())
    unknown = [kind for kind in kinds if kind not in CORRUPTIONS]
    if unknown:
        raise ConfigError(
            f"unknown corruption(s) {', '.join(unknown)}; choose from {', '.join(CORRUPTIONS)}",
            field="corrupt_kinds",
        )
    return kinds or CORRUPTIONS


def parse_faults(specs: list[str]) -> dict[str, float]:
    """``["500=0.05", "drop=0.01"]`` → ``{"500": 0.05, "drop": 0.01}``, checked."""
    rates: dict[str, float] = {}
    for spec in specs:
        kind, sep, rate_text = spec.strip().partition("=")
        if not sep or kind not in FAULTS:
            raise ConfigError(f"bad fault {spec!r}; use KIND=RATE with KIND one of {', '.join(FAULTS)}")
        try:
            rate = float(rate_text)
        except ValueError:
            raise ConfigError(f"bad fault rate in {spec!r}; use a number between 0 and 1") from None
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"fault rate in {spec!r} must be between 0 and 1")
        rates[kind] = rate
    return rates


def _switches(options: Mapping[str, Any], *, skybiz: bool) -> Switches:
    return Switches(
        latency_ms=options["latency_ms"],
        fault_rates=dict(options["faults"]),
        rate_limit_per_key_per_min=(options["rate_limit_key"] or None) if skybiz else None,
        rate_limit_per_ip_per_min=(options["rate_limit_ip"] or None) if skybiz else None,
        mutate_every_n_requests=options["mutate_every"],
        corrupt_rate=options["corrupt"],
        corrupt_kinds=options["corrupt_kinds"],
        seed=options["seed"],
    )


def serve_command(args: argparse.Namespace) -> int:
    """Generate, serve, print the endpoints, and wait for SIGINT/SIGTERM."""
    from skysmart_sandbox.server import SandboxServer

    options = resolve_options(args)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    endpoints_file = Path(options["write_endpoints"]) if options["write_endpoints"] else None
    env_file = Path(options["write_env"]) if options["write_env"] else None
    _say(f"sandbox: generating {options['size']:,} customers per system (seed {options['seed']}) ...")
    server = SandboxServer(
        options["size"],
        options["seed"],
        skybiz_port=options["skybiz_port"],
        smartacc_port=options["smartacc_port"],
        skybiz_switches=_switches(options, skybiz=True),
        smartacc_switches=_switches(options, skybiz=False),
        skybiz_mode=options["skybiz_mode"],
        **{k: options[k] for k in ("history_start", "history_end") if options[k]},
    )
    try:
        try:
            server.start()
        except OSError as exc:
            raise ConfigError(f"cannot bind the sandbox ports: {exc}") from None
        endpoints = server.endpoints
        _say(
            f"sandbox: generated in {server.generation_seconds:.2f} s, "
            f"serving after {server.startup_seconds:.2f} s more"
        )
        _say(f"SkyBiz   {endpoints.skybiz_url}/customer.php  (mode {options['skybiz_mode']})")
        _say(f"         api_key    {endpoints.skybiz_api_key}")
        _say(f"         api_secret {endpoints.skybiz_api_secret}")
        _say(f"SmartAcc {endpoints.smartacc_url}")
        _say(f"         api_key    {endpoints.smartacc_api_key}")
        _say(f"         username   {endpoints.smartacc_username}")
        _say(f"         password   {endpoints.smartacc_password}")
        _say(
            "switches: "
            f"latency {options['latency_ms']:g} ms, faults {options['faults'] or 'none'}, "
            f"SkyBiz rate limits {options['rate_limit_key'] or 'off'}/min per key, "
            f"{options['rate_limit_ip'] or 'off'}/min per IP, "
            f"mutate every {options['mutate_every'] or 'off'}, "
            f"corrupt {options['corrupt']:g} of records ({', '.join(options['corrupt_kinds'])})"
        )
        if endpoints_file is not None:
            _write_atomically(endpoints_file, endpoints.to_json())
            _say(f"endpoints written to {endpoints_file}")
        if env_file is not None:
            exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in endpoints.as_env().items())
            _write_atomically(env_file, exports)
            _say(f"environment written to {env_file} (. {env_file})")
        _say("sandbox: ready (Ctrl-C or SIGTERM to stop)")
        while not stop.wait(0.5):
            if not server.running:
                _say("sandbox: a server thread stopped unexpectedly")
                return 1
        _say("sandbox: stopping")
    finally:
        server.stop()
        for written in (endpoints_file, env_file):
            if written is not None:
                written.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        time.sleep(0)
    _say("sandbox: stopped")
    return 0


def _say(text: str) -> None:
    # Plain lines (no markup, no wrapping): logs stay greppable and credentials copyable.
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text, encoding="utf-8")
    temp.replace(path)
