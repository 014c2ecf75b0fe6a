"""Options every command spells the same way: the date range, the sources, the lake and the warehouse.

Values are parsed here, once, into typed errors (a bad date is a :class:`WindowError` naming the option), so
every command answers the same mistake with the same one-line reason and exit code.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.config import Settings
from pipelines.errors import ConfigError, WindowError
from pipelines.sources import registry

if TYPE_CHECKING:
    from pipelines.env import CoreEnv


def add_range(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--from`` / ``--to``: Malaysia calendar dates, both inclusive."""
    parser.add_argument(
        "--from", dest="date_from", required=required, metavar="YYYY-MM-DD", help="first date (inclusive)"
    )
    parser.add_argument(
        "--to", dest="date_to", required=required, metavar="YYYY-MM-DD", help="last date (inclusive)"
    )


def add_source(parser: argparse.ArgumentParser) -> None:
    """``--source <name>|all``: the registered sources (``all``: the default ones)."""
    parser.add_argument(
        "--source",
        choices=(*registry.names(), "all"),
        default="all",
        help="which source's windows (default: all)",
    )


def add_lake(parser: argparse.ArgumentParser) -> None:
    """``--lake PATH``, overriding ``SKYSMART_LAKE``."""
    parser.add_argument("--lake", metavar="PATH", help="lake path or URL (default: SKYSMART_LAKE or ./lake)")


def add_warehouse(parser: argparse.ArgumentParser) -> None:
    """``--warehouse URL``, overriding ``SKYSMART_WAREHOUSE``."""
    parser.add_argument(
        "--warehouse",
        metavar="URL",
        help="DuckDB file or postgresql:// URL (default: SKYSMART_WAREHOUSE or ./warehouse.duckdb)",
    )


def parse_date(text: str | None, option: str) -> date:
    """A ``YYYY-MM-DD`` option value, or a :class:`WindowError` that says which option is wrong."""
    if not text:
        raise WindowError(f"{option} is required (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise WindowError(f"{option} {text!r} is not a date in YYYY-MM-DD form") from None


def date_range(args: argparse.Namespace) -> tuple[date, date]:
    """``--from``..``--to`` as dates, refusing a reversed range."""
    start, end = parse_date(args.date_from, "--from"), parse_date(args.date_to, "--to")
    if start > end:
        raise WindowError(f"--from {start} is after --to {end}")
    return start, end


def sources(args: argparse.Namespace) -> tuple[str, ...]:
    """The sources ``--source`` selects."""
    return registry.default_names() if args.source == "all" else (args.source,)


def add_create(parser: argparse.ArgumentParser) -> None:
    """``--create``: for commands that write, make a missing lake or warehouse folder instead of refusing."""
    parser.add_argument(
        "--create", action="store_true", help="create the lake's or warehouse's folder if it does not exist"
    )


def lake_url(args: argparse.Namespace, *, writes: bool = False) -> str:
    """``--lake``, else ``SKYSMART_LAKE``, else ``./lake`` (read alone: no vendor settings needed).

    A command that ``writes`` refuses a local lake whose parent folder does not exist (a typo would
    otherwise start a new, empty lake), unless ``--create`` was given.
    """
    url = str(args.lake or _env().lake or Settings().lake_url)
    return _checked(url, "lake", "--lake", create=getattr(args, "create", False)) if writes else url


def warehouse_url(args: argparse.Namespace, *, writes: bool = False, must_exist: bool = False) -> str:
    """``--warehouse``, else ``SKYSMART_WAREHOUSE``, else ``./warehouse.duckdb``.

    A command that ``writes`` refuses a DuckDB file whose folder does not exist unless ``--create`` was
    given; one that needs what is already there (``must_exist``) refuses a DuckDB file that does not exist.
    """
    url = str(args.warehouse or _env().warehouse or Settings().warehouse_url)
    path = _local_path(url, "duckdb://")
    if must_exist and path is not None and str(path) != ":memory:" and not path.exists():
        raise ConfigError(f"no warehouse at {path}; check --warehouse, or load one first with `skysmart run`")
    if writes:
        return _checked(url, "warehouse", "--warehouse", create=getattr(args, "create", False))
    return url


def _env() -> CoreEnv:
    """``SKYSMART_*`` through the settings layer (imported here: ``--help`` stays quick)."""
    from pipelines.env import core_env

    return core_env()


def _local_path(url: str, scheme: str) -> Path | None:
    """The local path a lake or warehouse URL names, or ``None`` for a server or object store."""
    if url.startswith((scheme, "file://")):
        return Path(url.removeprefix(scheme).removeprefix("file://"))
    return None if "://" in url else Path(url)


def _checked(url: str, what: str, option: str, *, create: bool) -> str:
    """``url`` unchanged, once its local parent folder exists (made here with ``--create``)."""
    path = _local_path(url, "duckdb://")
    if path is None or str(path) == ":memory:" or path.parent.exists():
        return url
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
        return url
    raise ConfigError(
        f"{what} {path}: folder {path.parent} does not exist; check the path, or pass --create to make it",
        field=option,
    )
