"""The Postgres warehouse (15+), for shared use: psycopg 3, COPY into temporary staging, merge in SQL.

Loads stream the Arrow batches the lake layer reads through pyarrow's C++ CSV writer into
``COPY … FROM STDIN`` (no Python per row; the server never needs to reach the lake), then merge with
``INSERT … ON CONFLICT … DO UPDATE … WHERE newer`` inside the load's transaction. Loads take a
transaction-level advisory lock, so concurrent loads (parallel Airflow tasks) serialise instead of racing on
the history of the same customers.

Statements reach the server as written (psycopg's ``RawCursor``): ``$1``, ``$2``, … are Postgres's own
placeholders, and nothing in this module parses or rewrites SQL.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg.conninfo import conninfo_to_dict

from pipelines.contracts import column_definitions, quote_ident
from pipelines.errors import TransientWarehouseError, WarehouseError, register_secret
from pipelines.warehouse import schema
from pipelines.warehouse.base import Params, Warehouse

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.contracts import Contract


def _wrap(exc: psycopg.Error, what: str) -> WarehouseError:
    # OperationalError covers lost connections, admin shutdowns, serialization failures and deadlocks.
    kind = TransientWarehouseError if isinstance(exc, psycopg.OperationalError) else WarehouseError
    return kind(f"{what}: {type(exc).__name__}: {exc}".strip())


class PostgresWarehouse(Warehouse):
    """A Postgres database reached by a ``postgresql://`` URL."""

    dialect = "postgres"

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        super().__init__(url)
        with suppress(psycopg.ProgrammingError):
            if password := conninfo_to_dict(url).get("password"):
                register_secret(str(password))
        try:
            # RawCursor: the query text goes to the server untouched, with ``$n`` placeholders.
            self._con = psycopg.connect(
                url, autocommit=True, connect_timeout=10, cursor_factory=psycopg.RawCursor
            )
        except psycopg.OperationalError as exc:
            raise TransientWarehouseError(f"cannot connect to Postgres at {self.url}: {exc}") from None
        except psycopg.Error as exc:
            raise WarehouseError(f"cannot connect to Postgres at {self.url}: {exc}") from None
        self.execute("SET TIME ZONE 'UTC'")
        if read_only:
            self.execute("SET default_transaction_read_only = on")

    # -- the public interface ----------------------------------------------------------------------------
    def execute(self, sql: str, params: Params | None = None) -> None:
        """Run one statement."""
        try:
            with self._con.cursor() as cur:
                cur.execute(sql, None if params is None else tuple(params))
        except psycopg.Error as exc:
            raise _wrap(exc, "Postgres statement failed") from exc

    def query(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        """Run one query and return all rows."""
        return self.query_table(sql, params)[1]

    def query_df(self, sql: str, params: Params | None = None) -> pd.DataFrame:
        """Run one query into a pandas frame."""
        import pandas as pd

        names, rows = self.query_table(sql, params)
        return pd.DataFrame(rows, columns=names)

    def query_arrow(self, sql: str, params: Params | None = None) -> pa.Table:
        """Run one query into an Arrow table (built from the rows psycopg returns; types inferred)."""
        names, rows = self.query_table(sql, params)
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        # By position, not by a dict of names: a query may name two columns alike, as DuckDB's result can.
        return pa.Table.from_arrays([pa.array(values) for values in columns], names=names)

    def query_table(self, sql: str, params: Params | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of one query."""
        try:
            with self._con.cursor() as cur:
                cur.execute(sql, None if params is None else tuple(params))
                names = [d.name for d in cur.description or ()]
                return names, cur.fetchall()
        except psycopg.Error as exc:
            raise _wrap(exc, "Postgres query failed") from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A Postgres transaction; a nested block is a savepoint."""
        try:
            with self._con.transaction():
                yield
        except psycopg.Error as exc:
            raise _wrap(exc, "Postgres transaction failed") from exc

    def checkpoint(self) -> None:
        """Nothing to do: the server writes and evicts on its own schedule, not in this process."""

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back)."""
        with suppress(psycopg.Error):
            self._con.close()

    # -- load primitives ---------------------------------------------------------------------------------
    def lock(self, name: str) -> None:
        """Hold an advisory lock named ``name`` until the transaction ends."""
        self.execute("SELECT pg_advisory_xact_lock($1)", (zlib.crc32(f"skysmart:{name}".encode()),))

    def create_temp_table(self, name: str, select_sql: str, params: Params | None = None) -> None:
        """A temporary table from a query, dropped at commit."""
        self.drop_temp(name)
        # No ANALYZE: for a never-analysed table the planner reads its real size, which is what matters
        # here, and analysing wide temporary tables cost as much as the statements using them.
        self.execute(f"CREATE TEMP TABLE {quote_ident(name)} ON COMMIT DROP AS {select_sql}", params)

    def drop_temp(self, *names: str) -> None:
        """Drop temporary tables."""
        for name in names:
            self.execute(f"DROP TABLE IF EXISTS pg_temp.{quote_ident(name)}")

    def stage(self, table: str, contract: Contract, batches: Iterable[pa.RecordBatch]) -> int:
        """COPY the batches into a temporary table, one at a time as CSV written by Arrow.

        Staged rows are then ranked and joined: the transaction's sorts and hashes get 256 MB before they
        spill to disk (``SET LOCAL`` ends with it).
        """
        self.execute("SET LOCAL work_mem = '256MB'")
        self.drop_temp(table)
        columns = ",\n  ".join(column_definitions(contract, self.dialect, with_constraints=False))
        self.execute(f"CREATE TEMP TABLE {quote_ident(table)} (\n  {columns}\n) ON COMMIT DROP")
        rows = self.copy_batches(table, contract.column_names, batches)
        if contract.primary_key:  # key statistics for the joins; the other columns are never filtered on
            self.execute(f"ANALYZE {quote_ident(table)} ({schema.column_list(contract.primary_key)})")
        return rows

    def copy_batches(self, table: str, names: list[str], batches: Iterable[pa.RecordBatch]) -> int:
        """``COPY`` the named columns of Arrow batches into an existing table; returns the row count."""
        copy_sql = f"COPY {quote_ident(table)} ({schema.column_list(names)}) FROM STDIN WITH (FORMAT csv)"
        options = pacsv.WriteOptions(include_header=False)
        rows = 0
        try:
            with self._con.cursor() as cur, cur.copy(copy_sql) as copy:
                for batch in batches:
                    buffer = io.BytesIO()
                    pacsv.write_csv(pa.Table.from_batches([batch]).select(names), buffer, options)
                    copy.write(buffer.getbuffer())
                    rows += batch.num_rows
        except psycopg.Error as exc:
            raise _wrap(exc, f"COPY into {table} failed") from exc
        except (pa.ArrowException, KeyError) as exc:
            raise WarehouseError(f"the batches do not fit the columns of {table}: {exc}") from exc
        return rows
