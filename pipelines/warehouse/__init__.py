"""The warehouse: DuckDB (a file, the default) or Postgres, loaded idempotently from the lake.

``open_warehouse(url)`` picks the engine from the URL; everything else (``load_window``, the push outbox,
the CLI) talks to the :class:`Warehouse` interface and never to an engine directly.
"""

from __future__ import annotations

from pipelines.config import Settings
from pipelines.warehouse.base import Warehouse, mask_url
from pipelines.warehouse.load import LoadResult, committed_windows, load_range, load_window, load_windows

__all__ = [
    "LoadResult",
    "Warehouse",
    "committed_windows",
    "default_url",
    "load_range",
    "load_window",
    "load_windows",
    "mask_url",
    "open_warehouse",
]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_DUCKDB_SCHEME = "duckdb://"


def default_url() -> str:
    """``SKYSMART_WAREHOUSE``, or ``warehouse.duckdb`` in the working directory."""
    from pipelines.env import core_env

    return core_env().warehouse or Settings().warehouse_url


def open_warehouse(url: str | None = None, *, read_only: bool = False) -> Warehouse:
    """Connect to the warehouse at ``url``: a DuckDB file path (or ``duckdb://path``) or ``postgresql://…``.

    ``read_only`` opens DuckDB read-only and makes every Postgres transaction read-only, for ad-hoc SQL.

    Raises:
        TransientWarehouseError: the server cannot be reached, or the DuckDB file is locked by a writer.
        WarehouseError: the warehouse cannot be opened for any other reason.
    """
    url = url or default_url()
    if url.startswith(_POSTGRES_SCHEMES):
        from pipelines.warehouse.postgres_engine import PostgresWarehouse

        return PostgresWarehouse(url, read_only=read_only)
    from pipelines.warehouse.duckdb_engine import DuckDBWarehouse

    return DuckDBWarehouse(url.removeprefix(_DUCKDB_SCHEME), read_only=read_only)
