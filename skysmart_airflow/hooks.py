"""Hooks: turn an Airflow Connection into ``pipelines`` settings and clients. They hold no state.

Extras are read one by one by name, never splatted into a client. Credentials become
:class:`pipelines.config.Secret` at once, so they print as ``***`` wherever they travel.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseHook

from pipelines.config import HttpSettings, Secret, Settings, SkyBizSettings, SmartAccSettings
from pipelines.errors import ConfigError, SkysmartError


def _base_url(conn: Any, *, default_scheme: str = "https") -> str:
    """A URL from a Connection: the ``url`` extra, a full URL in ``host``, or host/port/schema parts."""
    extra = conn.extra_dejson or {}
    if extra.get("url"):
        return str(extra["url"]).rstrip("/")
    host = (conn.host or "").strip()
    if not host:
        raise ConfigError(f"connection {conn.conn_id!r} has no host or url extra", field="host")
    if "://" in host:
        return host.rstrip("/")
    scheme = conn.schema if conn.schema in ("http", "https") else default_scheme
    port = f":{conn.port}" if conn.port else ""
    return f"{scheme}://{host}{port}".rstrip("/")


def _http_settings(extra: dict[str, Any]) -> HttpSettings:
    """HTTP knobs from the extras; empty form fields arrive as ``None`` or ``""`` and mean the default."""
    defaults = HttpSettings()

    def number(name: str, kind: type[int] | type[float]) -> Any:
        value = extra.get(name)
        if value is None or value == "":
            return getattr(defaults, name)
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"connection extra {name!r} must be a number, got {value!r}", field=name
            ) from None

    return HttpSettings(
        connect_timeout=number("connect_timeout", float),
        read_timeout=number("read_timeout", float),
        max_retries=number("max_retries", int),
        max_concurrency=number("max_concurrency", int),
        requests_per_second=number("requests_per_second", float),
    )


class SkyBizHook(BaseHook):
    """SkyBiz Cloud ERP: host = modules URL, login = API key, password (or ``api_secret`` extra) = secret."""

    conn_name_attr = "skybiz_conn_id"
    default_conn_name = "skybiz_default"
    conn_type = "skybiz"
    hook_name = "SkyBiz Cloud ERP"

    def __init__(self, skybiz_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.skybiz_conn_id = skybiz_conn_id

    def get_settings(self) -> SkyBizSettings:
        """Settings for :class:`pipelines.sources.skybiz.client.SkyBizClient`."""
        conn = self.get_connection(self.skybiz_conn_id)
        extra = conn.extra_dejson or {}
        secret = conn.password or extra.get("api_secret")
        if not conn.login or not secret:
            raise ConfigError(
                f"connection {self.skybiz_conn_id!r} needs the API key (login) and secret (password)",
                field="login/password",
            )
        return SkyBizSettings(
            url=_base_url(conn),
            api_key=Secret(conn.login),
            api_secret=Secret(str(secret)),
            http=_http_settings(extra),
        )

    def get_conn(self) -> Any:
        """A ready :class:`SkyBizClient`."""
        from pipelines.sources.skybiz.client import SkyBizClient

        return SkyBizClient(self.get_settings())

    def test_connection(self) -> tuple[bool, str]:
        """Read one day of customers; the UI's "Test" button calls this."""
        try:
            result: tuple[bool, str] = self.get_conn().test_connection()
        except SkysmartError as error:
            return False, f"{type(error).__name__}: {error}"
        return result


class SmartAccHook(BaseHook):
    """SmartAcc: host = base URL; ``api_key`` extra (Bearer), or login/password for a credentials session."""

    conn_name_attr = "smartacc_conn_id"
    default_conn_name = "smartacc_default"
    conn_type = "smartacc"
    hook_name = "SmartAcc DynaMod Web API"

    def __init__(self, smartacc_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.smartacc_conn_id = smartacc_conn_id

    def get_settings(self) -> SmartAccSettings:
        """Settings for :class:`pipelines.sources.smartacc.client.SmartAccClient`."""
        conn = self.get_connection(self.smartacc_conn_id)
        extra = conn.extra_dejson or {}
        api_key = extra.get("api_key")
        return SmartAccSettings(
            url=_base_url(conn, default_scheme="https"),
            api_key=Secret(str(api_key)) if api_key else None,
            username=conn.login or None,
            password=Secret(conn.password) if conn.password else None,
            http=_http_settings(extra),
        )

    def get_conn(self) -> Any:
        """A ready :class:`SmartAccClient`."""
        from pipelines.sources.smartacc.client import SmartAccClient

        return SmartAccClient(self.get_settings())

    def test_connection(self) -> tuple[bool, str]:
        """Fetch the Terms lookup, which needs authentication and a permission."""
        try:
            terms = self.get_conn().terms()
        except SkysmartError as error:
            return False, f"{type(error).__name__}: {error}"
        return True, f"SmartAcc authenticated; {len(terms.rows)} payment terms visible"


class WarehouseHook(BaseHook):
    """The warehouse: ``url`` extra (DuckDB path or postgresql:// URL), or a Postgres Connection's parts."""

    conn_name_attr = "warehouse_conn_id"
    default_conn_name = "skysmart_warehouse_default"
    conn_type = "skysmart_warehouse"
    hook_name = "skysmart warehouse (DuckDB or Postgres)"

    def __init__(self, warehouse_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.warehouse_conn_id = warehouse_conn_id

    def get_url(self) -> str:
        """The warehouse URL ``pipelines.warehouse.open_warehouse`` takes."""
        conn = self.get_connection(self.warehouse_conn_id)
        extra = conn.extra_dejson or {}
        if extra.get("url"):
            return str(extra["url"])
        if conn.conn_type in ("postgres", "postgresql") or conn.host:
            auth = quote(conn.login or "postgres", safe="")
            if conn.password:
                auth += ":" + quote(conn.password, safe="")
            host, port, database = conn.host or "127.0.0.1", conn.port or 5432, conn.schema or "postgres"
            return f"postgresql://{auth}@{host}:{port}/{database}"
        raise ConfigError(f"connection {self.warehouse_conn_id!r} has no url extra or host", field="url")

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


def build_settings(
    *,
    lake_url: str,
    warehouse_conn_id: str | None = None,
    skybiz_conn_id: str | None = None,
    smartacc_conn_id: str | None = None,
    lookback_days: int = 1,
) -> Settings:
    """Everything a step needs, from connection ids (only the ones a task uses are read)."""
    return Settings(
        lake_url=lake_url,
        warehouse_url=WarehouseHook(warehouse_conn_id).get_url() if warehouse_conn_id else "warehouse.duckdb",
        lookback_days=lookback_days,
        skybiz=SkyBizHook(skybiz_conn_id).get_settings() if skybiz_conn_id else None,
        smartacc=SmartAccHook(smartacc_conn_id).get_settings() if smartacc_conn_id else None,
    )
