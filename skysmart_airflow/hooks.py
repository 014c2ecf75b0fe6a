"""Hooks: turn an Airflow Connection into ``pipelines`` settings and clients. They hold no state.

One hook class per source, each made from its ``SourceSpec`` (:class:`SourceHook`): the connection type,
form and how a connection becomes settings all come from the source's package, so a new source needs no
edit here — a source without its own ``hook_class`` gets ``<Title>Hook`` from this module on first use.
Extras are read one by one by name, never splatted into a client. Credentials become
:class:`pipelines.config.Secret` at once (so they print as ``***``) and are registered with Airflow's
secrets masker, so task logs redact them too.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from airflow.sdk import BaseHook

from pipelines.config import ConnectionParts, Settings
from pipelines.errors import ConfigError, SkysmartError
from pipelines.sources import registry
from pipelines.sources.spec import SourceSpec
from skysmart_airflow.provider import WAREHOUSE_CONN_TYPE, hook_class_name


def _mask(value: object) -> None:
    """Register a credential with Airflow's secrets masker (task logs print ``***`` instead)."""
    from airflow.sdk.log import mask_secret

    if isinstance(value, str) and value:
        mask_secret(value)


def connection_parts(conn: Any) -> ConnectionParts:
    """An Airflow Connection as the plain values the library reads (secret fields masked in logs)."""
    extra = dict(conn.extra_dejson or {})
    _mask(conn.password)
    return ConnectionParts(
        conn_id=str(conn.conn_id),
        host=conn.host or None,
        port=conn.port or None,
        schema=conn.schema or None,
        login=conn.login or None,
        password=conn.password or None,
        extra=extra,
    )


class SourceHook(BaseHook):
    """A source's connection: settings (``get_settings``), a client (``get_conn``), the UI's "Test".

    Subclasses set ``source``; the Airflow attributes (``conn_type``, ``hook_name``, ``conn_name_attr``,
    ``default_conn_name``) are filled from its ``SourceSpec`` when the class is made.
    """

    source: ClassVar[str] = ""
    conn_type: ClassVar[str] = ""
    hook_name: ClassVar[str] = ""
    conn_name_attr: ClassVar[str] = "conn_id"
    default_conn_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.source:
            spec = registry.get(cls.source)
            cls.conn_type = spec.connection.conn_type
            cls.hook_name = spec.connection.hook_name
            cls.conn_name_attr = f"{spec.name}_conn_id"
            cls.default_conn_name = f"{spec.name}_default"

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        named = kwargs.pop(self.conn_name_attr, None)
        super().__init__(**kwargs)
        self.conn_id: str = conn_id or named or self.default_conn_name
        setattr(self, self.conn_name_attr, self.conn_id)

    @property
    def spec(self) -> SourceSpec:
        """The source's spec."""
        return registry.get(self.source)

    def get_settings(self) -> Any:
        """The source's settings (what its client takes), from the connection."""
        parts = connection_parts(self.get_connection(self.conn_id))
        for name in self.spec.connection.secret_fields:
            _mask(parts.extra.get(name))
        return self.spec.settings_from_connection(parts)

    def get_conn(self) -> Any:
        """A ready client of the source (close it, or use it as a context manager)."""
        return self.spec.load("client")(self.get_settings())

    def test_connection(self) -> tuple[bool, str]:
        """What the UI's "Test" button shows: the spec's connection test, else the client's own."""
        try:
            with self.get_conn() as client:
                result = self.spec.test_connection(client)
        except SkysmartError as error:
            return False, f"{type(error).__name__}: {error}"
        return result


class SkyBizHook(SourceHook):
    """SkyBiz Cloud ERP: host = modules URL, login = API key, password (or ``api_secret`` extra) = secret."""

    source = "skybiz"


class SmartAccHook(SourceHook):
    """SmartAcc: host = base URL; ``api_key`` extra (Bearer), or login/password for a credentials session."""

    source = "smartacc"


class WarehouseHook(BaseHook):
    """The warehouse: ``url`` extra (DuckDB path or postgresql:// URL), or a Postgres Connection's parts.

    The URL carries the Postgres password, so the form masks the field and :meth:`get_url` registers the
    URL and its password with Airflow's secrets masker (the ``url`` key is not one Airflow hides itself).
    """

    conn_name_attr = "warehouse_conn_id"
    default_conn_name = "skysmart_warehouse_default"
    conn_type = WAREHOUSE_CONN_TYPE
    hook_name = "skysmart warehouse (DuckDB or Postgres)"

    def __init__(self, warehouse_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.warehouse_conn_id = warehouse_conn_id

    def get_url(self) -> str:
        """The warehouse URL ``pipelines.warehouse.open_warehouse`` takes (masked in task logs)."""
        conn = self.get_connection(self.warehouse_conn_id)
        parts = connection_parts(conn)
        if parts.extra.get("url"):
            url = str(parts.extra["url"])
        elif conn.conn_type in ("postgres", "postgresql") or parts.host:
            url = parts.postgres_url()
        else:
            raise ConfigError(f"connection {self.warehouse_conn_id!r} has no url extra or host", field="url")
        password = urlsplit(url).password if "://" in url else None
        if password:
            for secret in (url, password, unquote(password)):
                _mask(secret)
        return url

    def get_conn(self) -> Any:
        """An open warehouse (a context manager; close it)."""
        from pipelines.warehouse import open_warehouse

        return open_warehouse(self.get_url())

    def test_connection(self) -> tuple[bool, str]:
        """Open the warehouse and run a trivial query."""
        try:
            with self.get_conn() as warehouse:
                warehouse.query("SELECT 1")
        except SkysmartError as error:
            return False, f"{type(error).__name__}: {error}"
        return True, "warehouse reachable"


def hook_for(source: str) -> type[SourceHook]:
    """The hook class of a source: its ``hook_class`` if it names one here, else one made from its spec."""
    name = hook_class_name(registry.get(source)).rpartition(".")[2]
    hook: type[SourceHook] = __getattr__(name)
    return hook


def __getattr__(name: str) -> Any:
    """``<Title>Hook`` for a registered source without a hook of its own (what ProvidersManager imports)."""
    for spec in registry.specs():
        if hook_class_name(spec) == f"{__name__}.{name}":
            known = globals().get(name)
            if known is None:
                known = type(name, (SourceHook,), {"source": spec.name, "__module__": __name__})
                globals()[name] = known
            return known
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_settings(
    *,
    lake_url: str,
    warehouse_conn_id: str | None = None,
    lookback_days: int = 1,
    **source_conn_ids: str | None,
) -> Settings:
    """Everything a step needs, from connection ids (only the ones a task uses are read).

    ``source_conn_ids`` are ``<source>_conn_id=...`` for each source the task reads (``skybiz_conn_id``).
    """
    sources: dict[str, Any] = {}
    for key, conn_id in source_conn_ids.items():
        source = key.removesuffix("_conn_id")
        if not key.endswith("_conn_id") or registry.find(source) is None:
            raise ConfigError(f"build_settings: {key!r} is not <source>_conn_id of a known source", field=key)
        if conn_id:
            sources[source] = hook_for(source)(conn_id).get_settings()
    return Settings(
        lake_url=lake_url,
        warehouse_url=WarehouseHook(warehouse_conn_id).get_url() if warehouse_conn_id else "warehouse.duckdb",
        lookback_days=lookback_days,
        sources=sources,
    )
