"""Run benchmark areas in order; each area is a module ``bench.<area>`` exposing ``main(argv) -> None``."""

from __future__ import annotations

import importlib
import sys

AREAS = (
    "sandbox", "extract", "normalize", "quality", "warehouse", "push", "e2e", "faults", "identity",
    "einvoice", "scaleout", "backfill",
)  # fmt: skip


def main(argv: list[str]) -> None:
    """``python -m bench [AREA ...] [-- extra args passed to each area]``."""
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    chosen = argv or list(AREAS)
    unknown = [a for a in chosen if a not in AREAS]
    if unknown:
        raise SystemExit(f"unknown bench area(s) {unknown}; choose from {', '.join(AREAS)}")
    for area in chosen:
        print(f"\n=== bench: {area} ===", flush=True)
        importlib.import_module(f"bench.{area}").main(extra)


if __name__ == "__main__":
    main(sys.argv[1:])
