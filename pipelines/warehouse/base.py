"""What every warehouse engine offers; DuckDB and Postgres each implement it in their own module.

Callers (the load, the push outbox, the CLI) see one interface with typed errors and a ``transaction()``
block; the few things a load needs that differ by engine (bulk staging from Arrow, the customers merge,
temporary tables, locking) are the abstract methods at the bottom.

Parameters are written ``$1``, ``$2``, … — the numbered placeholders both DuckDB and Postgres parse
themselves — and every statement goes to the driver exactly as written: no engine rewrites SQL, so a
comment, a string or a ``$$`` body holding ``?`` or ``%s``, and Postgres's jsonb ``?`` operator, mean what
the server says they mean. A statement run without parameters (``params=None``, what ``skysmart sql``
does) is not parsed for placeholders by either driver.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from pipelines.contracts import quote_ident
from pipelines.warehouse import schema

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from pipelines.contracts import Contract

Params = Sequence[Any]
"""Values for a statement's ``$1``, ``$2``, … placeholders, in order."""


def placeholders(count: int, start: int = 1) -> str:
    """``$start, $start+1, …``: ``count`` numbered placeholders for a statement built in code."""
    return ", ".join(f"${i}" for i in range(start, start + count))


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
    def execute(self, sql: str, params: Params | None = None) -> None:
        """Run one statement as written; values only through ``params`` (``$1``, ``$2``, …)."""

    @abstractmethod
    def query(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        """Run one query and return all rows."""

    @abstractmethod
    def query_df(self, sql: str, params: Params | None = None) -> pd.DataFrame:
        """Run one query and return a pandas frame (column names as in the query)."""

    @abstractmethod
    def query_arrow(self, sql: str, params: Params | None = None) -> pa.Table:
        """Run one query and return an Arrow table: no Python object per value where the engine has Arrow.

        What a large read that feeds pandas or Arrow takes (a rebuild's customers at 200,000 a side: as
        Python tuples they cost four times the memory, and four times the time, of the columns they fill).
        """

    @abstractmethod
    def query_table(self, sql: str, params: Params | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one query and return its column names and rows (what a table printer needs).

        Without ``params`` the text reaches the server untouched: what ``skysmart sql`` relies on.
        """

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """A block that commits when it ends and rolls back when it raises."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection; an open transaction is rolled back."""

    def ensure_schema(self) -> None:
        """Create every table and view the load and the analysts use; safe to run any number of times.

        A warehouse whose ``v_schema`` holds this version's fingerprint has them all already: two queries
        instead of the statements.
        """
        if self._schema_ready:
            return
        if self._schema_is_current():
            self._schema_ready = True
            return
        with self.transaction():
            self.lock("schema")
            for statement in schema.schema_statements(self.dialect):
                self.execute(statement)
        self._schema_ready = True

    def _schema_is_current(self) -> bool:
        if not self.table_exists(schema.V_SCHEMA):
            return False
        rows = self.query(f"SELECT fingerprint FROM {quote_ident(schema.V_SCHEMA)}")
        return rows == [(schema.current_fingerprint(self.dialect),)]

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
            "WHERE table_name = $1 AND table_schema = current_schema()",
            (table,),
        )
        return bool(rows[0][0])

    # -- what a load needs that differs by engine ---------------------------------------------------------
    @abstractmethod
    def lock(self, name: str) -> None:
        """Serialise writers on ``name`` until the transaction ends (a no-op where writes are serial)."""

    @abstractmethod
    def create_temp_table(self, name: str, select_sql: str, params: Params | None = None) -> None:
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
    def stage(self, table: str, contract: Contract, batches: Iterable[pa.RecordBatch]) -> int:
        """Bulk-load Arrow record batches into a new temporary table of ``contract``'s columns.

        The batches come from the lake layer (:meth:`pipelines.lake.Lake.iter_batches`), which alone knows
        where the lake lives (a disk, S3): the engine never opens a lake file itself, and consumes the
        batches one at a time, so memory stays flat however big the window. Returns the number of rows
        staged. Must run inside :meth:`transaction`.
        """
