"""Settings: plain values a run needs, built once from ``SKYSMART_*`` variables; secrets never print.

The variables themselves are read in one place, :mod:`pipelines.env` (pydantic-settings), imported only
when :meth:`Settings.from_env` runs; this module stays light for the DAG files. Each source's settings
come from its ``SourceSpec.settings`` model (``SKYSMART_<SOURCE>_*``), so a new source needs no edit here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from pipelines.errors import ConfigError, register_secret

if TYPE_CHECKING:
    from pipelines.sources.skybiz.settings import SkyBizSettings
    from pipelines.sources.smartacc.settings import SmartAccSettings

MALAYSIA_TZ_NAME: Final = "Asia/Kuala_Lumpur"


class Secret:
    """A credential whose ``repr``/``str`` are masked; call :meth:`reveal` at the one place it is sent."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        """The clear value, for the HTTP layer only."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        return (Secret, (self._value,))


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """How hard the HTTP layer pushes a vendor, the same knobs for every source."""

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_retries: int = 5
    backoff_initial: float = 0.2
    backoff_max: float = 10.0
    max_concurrency: int = 8
    requests_per_second: float = 50.0


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a run needs; built once from the environment, passed down as plain values.

    Attributes:
        lake_url: the lake's path or URL (``SKYSMART_LAKE``).
        warehouse_url: a DuckDB file or ``postgresql://`` URL (``SKYSMART_WAREHOUSE``).
        lookback_days: days an incremental run re-reads before its interval (``SKYSMART_LOOKBACK_DAYS``).
        sources: each configured source's settings by name (``SKYSMART_<SOURCE>_URL`` set), as its
            ``SourceSpec.settings`` model made them.
        duckdb_memory_limit: DuckDB's buffer pool (``SKYSMART_DUCKDB_MEMORY_LIMIT``); ``None``: the default.
    """

    lake_url: str = "lake"
    warehouse_url: str = "warehouse.duckdb"
    lookback_days: int = 1
    sources: Mapping[str, Any] = field(default_factory=dict)
    duckdb_memory_limit: str | None = None

    def require(self, source: str) -> Any:
        """A source's settings, or a clear error naming the variable to set."""
        settings = self.sources.get(source)
        if settings is None:
            from pipelines.sources import registry

            spec = registry.get(source)
            raise ConfigError(f"{spec.title} is not configured", field=f"{spec.env_prefix}URL")
        return settings

    def require_skybiz(self) -> SkyBizSettings:
        """SkyBiz's settings (also the push's target, not only a source)."""
        settings: SkyBizSettings = self.require("skybiz")
        return settings

    def require_smartacc(self) -> SmartAccSettings:
        """SmartAcc's settings."""
        settings: SmartAccSettings = self.require("smartacc")
        return settings

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``SKYSMART_*`` variables (default: ``os.environ``); a source without a URL is not configured.

        Raises:
            ConfigError: a value does not parse, or a configured source lacks a credential; the error
                names the variable.
        """
        from pipelines.env import CoreEnv, SourceEnv, read_env
        from pipelines.sources import registry

        core = read_env(CoreEnv, env)
        http = core.http()
        sources: dict[str, Any] = {}
        for spec in registry.specs():
            model = spec.load("settings")
            if not (isinstance(model, type) and issubclass(model, SourceEnv)):
                raise ConfigError(
                    f"{spec.name}: settings {spec.settings!r} is not a SourceEnv", field="settings"
                )
            values = read_env(model, env)
            if values.url:
                sources[spec.name] = values.to_settings(http)
        defaults = cls()
        return cls(
            lake_url=core.lake or defaults.lake_url,
            warehouse_url=core.warehouse or defaults.warehouse_url,
            lookback_days=defaults.lookback_days if core.lookback_days is None else core.lookback_days,
            sources=sources,
            duckdb_memory_limit=core.duckdb_memory_limit,
        )


@dataclass(frozen=True, slots=True)
class ConnectionParts:
    """An Airflow Connection's fields as plain values, so sources read connections without Airflow.

    Attributes:
        conn_id: the connection's id (named in errors).
        host, port, schema, login, password: the standard fields.
        extra: the extras, parsed.
    """

    conn_id: str
    host: str | None = None
    port: int | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def base_url(self, *, default_scheme: str = "https") -> str:
        """A URL: the ``url`` extra, a full URL in ``host``, or host/port/schema parts."""
        if self.extra.get("url"):
            return str(self.extra["url"]).rstrip("/")
        host = (self.host or "").strip()
        if not host:
            raise ConfigError(f"connection {self.conn_id!r} has no host or url extra", field="host")
        if "://" in host:
            return host.rstrip("/")
        scheme = self.schema if self.schema in ("http", "https") else default_scheme
        port = f":{self.port}" if self.port else ""
        return f"{scheme}://{host}{port}".rstrip("/")

    def http(self) -> HttpSettings:
        """HTTP knobs from the extras; empty form fields arrive as ``None`` or ``""`` and mean the default."""
        defaults = HttpSettings()

        def number(name: str, kind: type[int] | type[float]) -> Any:
            value = self.extra.get(name)
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

    def postgres_url(self) -> str:
        """``postgresql://login:password@host:port/schema`` from the parts (quoted), Postgres defaults."""
        auth = quote(self.login or "postgres", safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        host, port, database = self.host or "127.0.0.1", self.port or 5432, self.schema or "postgres"
        return f"postgresql://{auth}@{host}:{port}/{database}"
