"""What the push needs from the warehouse and from the SkyBiz client, as structural types.

The push is written against these few methods rather than the concrete classes, so the exactly-once rules
read in one place and a test can wrap the real client (to crash right after a request, say) without
subclassing it. :class:`pipelines.warehouse.base.Warehouse` and
:class:`pipelines.sources.skybiz.client.SkyBizClient` provide them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from pipelines.sources import Page
from pipelines.sources.skybiz.client import CreateResult
from pipelines.windows import Window

if TYPE_CHECKING:
    import pyarrow as pa

    from pipelines.contracts import Contract


class WarehouseLike(Protocol):
    """The warehouse calls the push makes (``$1``, ``$2``, … placeholders in every dialect)."""

    @property
    def dialect(self) -> str:
        """``duckdb`` or ``postgres``."""
        ...

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run one statement."""
        ...

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query and return its rows."""
        ...

    def query_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run a query and return its rows as an Arrow table (identity reads customers so)."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """Statements inside commit together or not at all."""
        ...

    def ensure_table(
        self, contract_name: str, table: str | None = None, extra_columns: list[str] | None = None
    ) -> None:
        """Create a contract's table if it is missing."""
        ...

    def table_exists(self, table: str) -> bool:
        """Whether a table exists in the current schema."""
        ...

    def lock(self, name: str) -> None:
        """Serialise writers on ``name`` until the current transaction ends."""
        ...

    def ensure_schema(self) -> None:
        """Create the warehouse's tables and views if missing (identity rebuilds need them)."""
        ...

    def stage(self, table: str, contract: Contract, batches: Iterable[pa.RecordBatch]) -> int:
        """Bulk-load Arrow batches into a new temporary table (identity rebuilds write matches so)."""
        ...

    def drop_temp(self, *names: str) -> None:
        """Drop temporary tables if they exist."""
        ...


class SkyBizLike(Protocol):
    """The SkyBiz calls the push makes: create a batch, and read back what exists."""

    def create(self, documents: Sequence[Mapping[str, Any]]) -> CreateResult:
        """Send one create batch (never retried by the client)."""
        ...

    def read_window(
        self,
        window: Window,
        fields: list[str] | None = None,
        filters: dict[str, str] | None = None,
    ) -> Page:
        """Read customers modified in a window."""
        ...
