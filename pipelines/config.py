"""Settings from ``SKYSMART_*`` environment variables, with secrets that never print themselves."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from pipelines.errors import ConfigError, register_secret

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
    """How hard the HTTP layer pushes a vendor, shared by both clients."""

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_retries: int = 5
    backoff_initial: float = 0.2
    backoff_max: float = 10.0
    max_concurrency: int = 8
    requests_per_second: float = 50.0


@dataclass(frozen=True, slots=True)
class SkyBizSettings:
    """Where SkyBiz lives (the modules URL, ending in ``/apiv2/modules``) and its key pair."""

    url: str
    api_key: Secret
    api_secret: Secret
    http: HttpSettings = field(default_factory=HttpSettings)


@dataclass(frozen=True, slots=True)
class SmartAccSettings:
    """Where SmartAcc lives and how we authenticate: API key (preferred) or user name and password."""

    url: str
    api_key: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    http: HttpSettings = field(default_factory=HttpSettings)

    def __post_init__(self) -> None:
        if not self.api_key and not (self.username and self.password):
            raise ConfigError(
                "SmartAcc needs an API key or a user name and password",
                field="SKYSMART_SMARTACC_API_KEY",
            )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a run needs; built once from the environment, passed down as plain values."""

    lake_url: str = "lake"
    warehouse_url: str = "warehouse.duckdb"
    lookback_days: int = 1
    skybiz: SkyBizSettings | None = None
    smartacc: SmartAccSettings | None = None

    def require_skybiz(self) -> SkyBizSettings:
        """The SkyBiz settings, or a clear error naming the variable to set."""
        if self.skybiz is None:
            raise ConfigError("SkyBiz is not configured", field="SKYSMART_SKYBIZ_URL")
        return self.skybiz

    def require_smartacc(self) -> SmartAccSettings:
        """The SmartAcc settings, or a clear error naming the variable to set."""
        if self.smartacc is None:
            raise ConfigError("SmartAcc is not configured", field="SKYSMART_SMARTACC_URL")
        return self.smartacc

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``SKYSMART_*`` variables; a source without a URL is simply not configured."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(f"SKYSMART_{name}", "").strip()
            return value or None

        base = HttpSettings()
        http = HttpSettings(
            connect_timeout=_number(get, "HTTP_CONNECT_TIMEOUT", base.connect_timeout),
            read_timeout=_number(get, "HTTP_READ_TIMEOUT", base.read_timeout),
            max_retries=int(_number(get, "HTTP_MAX_RETRIES", base.max_retries)),
            max_concurrency=int(_number(get, "HTTP_MAX_CONCURRENCY", base.max_concurrency)),
            requests_per_second=_number(get, "HTTP_REQUESTS_PER_SECOND", base.requests_per_second),
        )
        skybiz = None
        if url := get("SKYBIZ_URL"):
            key, secret = get("SKYBIZ_API_KEY"), get("SKYBIZ_API_SECRET")
            if not key or not secret:
                raise ConfigError(
                    "SKYSMART_SKYBIZ_URL is set but the API key or secret is missing",
                    field="SKYSMART_SKYBIZ_API_KEY/SKYSMART_SKYBIZ_API_SECRET",
                )
            skybiz = SkyBizSettings(url=url, api_key=Secret(key), api_secret=Secret(secret), http=http)
        smartacc = None
        if url := get("SMARTACC_URL"):
            key, password = get("SMARTACC_API_KEY"), get("SMARTACC_PASSWORD")
            smartacc = SmartAccSettings(
                url=url,
                api_key=Secret(key) if key else None,
                username=get("SMARTACC_USERNAME"),
                password=Secret(password) if password else None,
                http=http,
            )
        defaults = cls()
        return cls(
            lake_url=get("LAKE") or defaults.lake_url,
            warehouse_url=get("WAREHOUSE") or defaults.warehouse_url,
            lookback_days=int(_number(get, "LOOKBACK_DAYS", defaults.lookback_days)),
            skybiz=skybiz,
            smartacc=smartacc,
        )


def _number(get: Callable[[str], str | None], name: str, default: float) -> float:
    raw = get(name)
    if raw is None:
        return float(default)
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(
            f"SKYSMART_{name} must be a number, got {raw!r}", field=f"SKYSMART_{name}"
        ) from None
