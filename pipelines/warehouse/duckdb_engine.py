"""The DuckDB warehouse: one file, one writer process; loads scan the Arrow batches the lake layer reads.

DuckDB never opens a lake file itself (an object-store lake would need the ``httpfs`` extension and
credentials, neither of which a worker may have): the load hands it record batches, which it scans as a
stream into the staging table.

DuckDB's ``INSERT … ON CONFLICT DO UPDATE`` falls off a cliff when keys arrive in random order (STACK-NOTES:
602 s against 3.2 s for 1M keys), and it silently keeps one of two duplicate keys in a batch. So the
customers merge de-duplicates and sorts staging by key first, then replaces changed rows with DELETE+INSERT
in the load's one transaction.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import duckdb
import pyarrow as pa

from pipelines.contracts import arrow_schema, quote_ident, sql_type
from pipelines.env import core_env
from pipelines.errors import ConfigError, TransientWarehouseError, WarehouseError
from pipelines.warehouse.base import Params, Warehouse

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.contracts import Contract

# Connection-level trouble: the file is locked by another process, unreadable for now, or the connection is
# gone; a write-write conflict between transactions. The same statement may work later.
_TRANSIENT: tuple[type[duckdb.Error], ...] = (
    duckdb.IOException,
    duckdb.ConnectionException,
    duckdb.TransactionException,
)


def _wrap(exc: duckdb.Error, what: str) -> WarehouseError:
    kind = TransientWarehouseError if isinstance(exc, _TRANSIENT) else WarehouseError
    return kind(f"{what}: {type(exc).__name__}: {exc}")


DEFAULT_MEMORY_LIMIT: Final = "256MB"


def _memory_limit(text: str) -> str:
    """A DuckDB memory size (``256MB``, ``2GB``...); anything else is a configuration error."""
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", text.strip(), re.IGNORECASE):
        raise ConfigError(
            f"SKYSMART_DUCKDB_MEMORY_LIMIT must be a size such as 256MB or 2GB, not {text!r}",
            field="SKYSMART_DUCKDB_MEMORY_LIMIT",
        )
    return text.strip()


class DuckDBWarehouse(Warehouse):
    """A DuckDB database file (or ``:memory:``)."""

    dialect = "duckdb"

    def __init__(self, path: str, *, read_only: bool = False) -> None:
        super().__init__(path)
        self.path = path
        if path != ":memory:":
            if read_only and not Path(path).exists():
                raise WarehouseError(f"no warehouse at {path}; run `skysmart load` first")
            if not read_only:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(path, read_only=read_only)
        except duckdb.Error as exc:
            raise _wrap(exc, f"cannot open DuckDB warehouse {path}") from exc
        self._depth = 0
        self._read_only = read_only
        # The warehouse keeps UTC; without this, TIMESTAMPTZ values print in the machine's zone.
        self.execute("SET TimeZone = 'UTC'")
        # DuckDB draws a progress bar on stdout for any statement running over 2 s (a 200k-customer load's
        # commit, an analyst's query): it would cut into skysmart's own output and a task's log.
        self.execute("SET enable_progress_bar = false")
        if not read_only:
            # DuckDB checkpoints whenever the WAL passes 16 MB, i.e. after every sizeable load, and a
            # checkpoint after DELETE+INSERT rewrites the touched row groups: 2.5 of 6 s for a 100k-row
            # update load. A larger threshold lets a backfill's loads share checkpoints; closing the
            # connection checkpoints what is left. Durability is unchanged: the WAL is synced on commit.
            self.execute("SET checkpoint_threshold = '1GB'")
            # DuckDB's buffer pool may otherwise take 80 % of the machine; the loads' working sets are far
            # smaller, and bigger operations spill to disk. SKYSMART_DUCKDB_MEMORY_LIMIT overrides it.
            limit = core_env().duckdb_memory_limit or DEFAULT_MEMORY_LIMIT
            self.execute(f"SET memory_limit = '{_memory_limit(limit)}'")

    # -- the public interface ----------------------------------------------------------------------------
    def execute(self, sql: str, params: Params | None = None) -> None:
        """Run one statement."""
        self._run(sql, params)

    def query(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        """Run one query and return all rows."""
        return self.query_table(sql, params)[1]

    def query_df(self, sql: str, params: Params | None = None) -> pd.DataFrame:
        """Run one query into a pandas frame."""
        try:
            return self._run(sql, params).df()
        except duckdb.Error as exc:
            raise _wrap(exc, "DuckDB query failed") from exc

    def query_table(self, sql: str, params: Params | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of one query.

        Rows travel through Arrow: DuckDB's own row fetch needs pytz for TIMESTAMPTZ, which the pinned
        tree does not carry, while Arrow gives ``zoneinfo``-aware datetimes.
        """
        table = self.query_arrow(sql, params)
        columns = [column.to_pylist() for column in table.columns]
        return list(table.column_names), list(zip(*columns, strict=True))

    def query_arrow(self, sql: str, params: Params | None = None) -> pa.Table:
        """Run one query into an Arrow table (DuckDB's own columns, no Python values)."""
        try:
            relation = self._con.sql(sql) if params is None else self._con.sql(sql, params=list(params))
            return pa.table({}) if relation is None else relation.to_arrow_table()
        except duckdb.Error as exc:
            raise _wrap(exc, "DuckDB query failed") from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One DuckDB transaction; a nested block joins the outer one (DuckDB has no savepoints)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.execute("BEGIN TRANSACTION")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            with suppress(duckdb.Error):
                self._con.execute("ROLLBACK")
            raise
        self._depth = 0
        self.execute("COMMIT")

    def checkpoint(self) -> None:
        """``CHECKPOINT`` outside a transaction: committed changes move from memory and the WAL to the file.

        With the 1 GB threshold above, a connection kept open across many loads (``skysmart run``) would
        otherwise hold every load's changes in memory until it closes.
        """
        if not self._read_only and self._depth == 0:
            self.execute("CHECKPOINT")

    def close(self) -> None:
        """Checkpoint, then close (an open transaction is rolled back).

        DuckDB checkpoints on close only when the last connection to the file in this process goes away; any
        other live connection (an analyst's session, a leaked cursor) would leave our writes in the WAL, and a
        copy of the ``.duckdb`` file alone would then miss them. An explicit checkpoint makes the file whole.
        """
        if not self._read_only and self._depth == 0:
            with suppress(duckdb.Error):
                self._con.execute("CHECKPOINT")
        with suppress(duckdb.Error):
            self._con.close()

    # -- load primitives ---------------------------------------------------------------------------------
    def lock(self, name: str) -> None:
        """Nothing to do: one process holds the file for writing, and DuckDB aborts conflicting commits."""

    def create_temp_table(self, name: str, select_sql: str, params: Params | None = None) -> None:
        """A temporary table from a query, replacing one of the same name."""
        self.execute(f"CREATE OR REPLACE TEMP TABLE {quote_ident(name)} AS {select_sql}", params)

    def drop_temp(self, *names: str) -> None:
        """Drop temporary tables."""
        for name in names:
            self.execute(f"DROP TABLE IF EXISTS temp.main.{quote_ident(name)}")

    def stage(self, table: str, contract: Contract, batches: Iterable[pa.RecordBatch]) -> int:
        """Scan the batches as one Arrow stream into a temporary table, cast to the contract's SQL types.

        The stream is registered under a one-off name for the one ``CREATE TABLE … AS SELECT``; DuckDB pulls
        batch after batch from it, so only a batch or two is in Python's memory at a time.
        """
        select = ", ".join(
            f"CAST({quote_ident(c.name)} AS {sql_type(c, self.dialect)}) AS {quote_ident(c.name)}"
            for c in contract.columns
        )
        stream = iter(batches)
        first = next(stream, None)
        schema = arrow_schema(contract) if first is None else first.schema
        chained = stream if first is None else itertools.chain([first], stream)
        reader = pa.RecordBatchReader.from_batches(schema, chained)
        view = f"_arrow_{uuid.uuid4().hex[:12]}"
        try:
            self._con.register(view, reader)
        except duckdb.Error as exc:
            raise _wrap(exc, f"cannot stage {table}") from exc
        try:
            self.create_temp_table(table, f"SELECT {select} FROM {quote_ident(view)}")
        finally:
            with suppress(duckdb.Error):
                self._con.unregister(view)
        return int(self.query(f"SELECT count(*) FROM {quote_ident(table)}")[0][0])

    # -- internals ---------------------------------------------------------------------------------------
    def _run(self, sql: str, params: Params | None) -> duckdb.DuckDBPyConnection:
        try:
            return self._con.execute(sql) if params is None else self._con.execute(sql, list(params))
        except duckdb.Error as exc:
            raise _wrap(exc, "DuckDB statement failed") from exc
