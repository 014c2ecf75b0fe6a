"""What every warehouse engine offers; DuckDB and Postgres each implement it in their own module.

Callers (the load, the push outbox, the CLI) see one interface with ``?`` placeholders, typed errors and a
``transaction()`` block; the few things a load needs that differ by engine (bulk staging, the customers
merge, temporary tables, locking) are the abstract methods at the bottom.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from pipelines.warehouse import schema

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.contracts import Contract
    from pipelines.lake import Lake

Params = Sequence[Any]

_PASSWORD = re.compile(r"^(?P<head>[a-z][a-z0-9+.-]*://[^:/@]*:)(?P<password>[^@]*)(?P<tail>@.*)$", re.I)


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for reprs, logs and error messages."""
    m = _PASSWORD.match(url)
    return f"{m['head']}***{m['tail']}" if m else url


class Warehouse(ABC):
    """A connection to the warehouse; a context manager that closes it.

    Attributes:
        dialect: ``duckdb`` or ``postgres`` (the dialects of :func:`pipelines.contracts.sql_type`).
        url: where it points, password masked.
    """

    dialect: ClassVar[str]

    def __init__(self, url: str) -> None:
        self.url = mask_url(url)
        self._schema_ready = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the public interface ----------------------------------------------------------------------------
    @abstractmethod
    def execute(self, sql: str, params: Params = ()) -> None:
        """Run one statement; values only through ``params`` (``?`` placeholders)."""

    @abstractmethod
    def query(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Run one query and return all rows."""

    @abstractmethod
    def query_df(self, sql: str, params: Params = ()) -> pd.DataFrame:
        """Run one query and return a pandas frame (column names as in the query)."""

    @abstractmethod
    def query_table(self, sql: str, params: Params = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one query and return its column names and rows (what a table printer needs)."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """A block that commits when it ends and rolls back when it raises."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection; an open transaction is rolled back."""

    def ensure_schema(self) -> None:
        """Create every table and view the load and the analysts use; safe to run any number of times."""
        if self._schema_ready:
            return
        with self.transaction():
            self.lock("schema")
            for statement in schema.schema_statements(self.dialect):
                self.execute(statement)
        self._schema_ready = True

    def ensure_table(
        self, contract_name: str, table: str | None = None, extra_columns: list[str] | None = None
    ) -> None:
        """Create a contract's table (named ``table`` or the contract's) with its comments, if missing.

        ``extra_columns`` are extra column definitions (``'"sent_at" TIMESTAMPTZ'``) appended to the
        contract's; write them in SQL both engines accept.
        """
        with self.transaction():
            self.lock("schema")
            for statement in schema.contract_table_statements(
                contract_name, self.dialect, table=table, extra_columns=extra_columns
            ):
                self.execute(statement)

    def table_exists(self, table: str) -> bool:
        """Whether a table or view of that name exists in the current schema."""
        rows = self.query(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_name = ? AND table_schema = current_schema()",
            (table,),
        )
        return bool(rows[0][0])

    # -- what a load needs that differs by engine ---------------------------------------------------------
    @abstractmethod
    def lock(self, name: str) -> None:
        """Serialise writers on ``name`` until the transaction ends (a no-op where writes are serial)."""

    @abstractmethod
    def create_temp_table(self, name: str, select_sql: str, params: Params = ()) -> None:
        """``CREATE TEMP TABLE name AS select_sql``, gone when the transaction ends or :meth:`drop_temp`."""

    @abstractmethod
    def drop_temp(self, *names: str) -> None:
        """Drop temporary tables if they exist."""

    @abstractmethod
    def checkpoint(self) -> None:
        """Write what is committed to the database file and let go of the memory it held.

        An engine that keeps committed changes in memory until a checkpoint (DuckDB) does it here, so a
        connection kept open across many loads does not grow with the history it loads.
        """

    @abstractmethod
    def stage(self, table: str, contract: Contract, lake: Lake, url: str) -> int:
        """Bulk-load one committed lake file into a new temporary table of ``contract``'s columns.

        Returns the number of rows staged. Must run inside :meth:`transaction`.
        """

    @abstractmethod
    def merge_customers(
        self, staging: str, load_id: str, loaded_at: Any, *, unique_keys: bool = False
    ) -> tuple[int, int]:
        """Merge staged customer rows into ``customers``; returns ``(inserted, updated)``.

        The newest version per key wins: ``modified_at``, then ``source_version``, then ``record_hash``.
        An older or equal version never replaces the current row. ``unique_keys`` says the caller checked
        that staging holds each key once, so the newest-per-key step can be skipped.
        """
