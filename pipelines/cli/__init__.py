"""``skysmart`` command line: one sub-command module per area, each registering its own parsers.

Exit codes: 0 success; 1 unexpected failure; 2 bad usage, configuration, dates, a missing lake window or
too little warehouse coverage to push; 3 authentication or permission refused; 4 a vendor or the warehouse
kept failing (worth retrying later); 5 data quality errors; 6 push conflicts.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pipelines import __version__
from pipelines.errors import (
    AuthenticationError,
    ConfigError,
    DataQualityError,
    LakeError,
    PermissionDeniedError,
    PushConflictError,
    PushCoverageError,
    RequestRejectedError,
    SkysmartError,
    TransientApiError,
    TransientWarehouseError,
    WindowError,
    redact,
)

SUBCOMMAND_MODULES = ("sandbox", "extract", "normalize", "warehouse", "push", "run", "quality", "identity")

EXIT_CODES: tuple[tuple[type[SkysmartError], int], ...] = (
    (ConfigError, 2),
    (WindowError, 2),
    (RequestRejectedError, 2),
    (LakeError, 2),
    (PushCoverageError, 2),
    (AuthenticationError, 3),
    (PermissionDeniedError, 3),
    (TransientApiError, 4),
    (TransientWarehouseError, 4),
    (DataQualityError, 5),
    (PushConflictError, 6),
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="skysmart", description="Customers between SmartAcc and SkyBiz, through a lake into a warehouse."
    )
    parser.add_argument("--version", action="version", version=f"skysmart {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"pipelines.cli.{name}").register(sub)
    return parser


def exit_code(error: SkysmartError) -> int:
    """The exit code of a typed error (first match in :data:`EXIT_CODES`)."""
    for kind, code in EXIT_CODES:
        if isinstance(error, kind):
            return code
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; typed errors become a one-line reason on stderr and a documented exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except SkysmartError as error:
        print(f"skysmart {args.command}: {error}", file=sys.stderr)
        return exit_code(error)
    except KeyboardInterrupt:
        print(f"skysmart {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        print(f"skysmart {args.command}: unexpected {type(error).__name__}: {redact(error)}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
