"""``skysmart`` command line: one sub-command module per area, each registering its own parsers.

Exit codes are a property of the error types (``exit_code`` in :mod:`pipelines.errors`, whose docstring is
the table): 0 done, 1 only for bugs, 2 usage or configuration, 3 credentials or permission, 4 retry later,
5 data quality, 6 needs review. argparse's own usage errors exit 2 as well.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import EntryPoint, entry_points

from pipelines import __version__
from pipelines.errors import ConfigError, SkysmartError, redact

SUBCOMMAND_MODULES = (
    "extract",
    "normalize",
    "warehouse",
    "push",
    "run",
    "quality",
    "identity",
    "report",
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
    for entry in entry_points(group=COMMANDS_GROUP):
        _register_plugin(sub, entry)
    for command in sub.choices.values():  # one spelling of -v for every command
        command.add_argument(
            "-v", "--verbose", action="store_true", help="also show retried requests and warnings on stderr"
        )
    return parser


COMMANDS_GROUP = "skysmart.commands"
"""Entry-point group of sub-commands shipped outside the library (``skysmart sandbox`` from the sandbox)."""


def _register_plugin(sub: argparse._SubParsersAction[argparse.ArgumentParser], entry: EntryPoint) -> None:
    """Register a sub-command from its entry point; one whose extra is not installed says which to install."""
    try:
        register = entry.load()
    except ImportError as error:
        missing = error.name or str(error)
        command = sub.add_parser(entry.name, help=f"(needs {missing}: pip install 'skysmart[{entry.name}]')")
        command.set_defaults(handler=lambda _args: _missing_extra(entry.name, missing))
        return
    register(sub)


def _missing_extra(name: str, missing: str) -> int:
    raise ConfigError(f"`skysmart {name}` needs {missing}; install it with pip install 'skysmart[{name}]'")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; typed errors become a one-line reason on stderr and a documented exit code."""
    args = build_parser().parse_args(argv)
    try:
        with _log_level(verbose=args.verbose):
            code: int = args.handler(args)
    except SkysmartError as error:
        print(f"skysmart {args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"skysmart {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        print(f"skysmart {args.command}: unexpected {type(error).__name__}: {redact(error)}", file=sys.stderr)
        return 1
    return code


@contextmanager
def _log_level(*, verbose: bool) -> Iterator[None]:
    """Retries are logged as warnings: shown with ``-v``, otherwise a failure stays one line on stderr."""
    logger = logging.getLogger("pipelines")
    level, handlers = logger.level, list(logger.handlers)
    if verbose:
        from rich.logging import RichHandler

        from pipelines.cli.ui import err_console

        logger.addHandler(RichHandler(console=err_console, show_path=False, markup=False))
        logger.setLevel(logging.WARNING)
    else:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
        logger.handlers[:] = handlers


if __name__ == "__main__":
    raise SystemExit(main())
