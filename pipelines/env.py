"""The one place environment variables are read: pydantic-settings models of every ``SKYSMART_*`` group.

Each group is a :class:`EnvModel` with its prefix (``SKYSMART_``, ``SKYSMART_PUSH_``, ``SKYSMART_<SOURCE>_``);
:func:`read_env` fills one from a mapping (``os.environ`` by default) and turns pydantic's validation
errors into a :class:`~pipelines.errors.ConfigError` naming the variable. Values are stripped; an empty
value is unset. Kept apart from :mod:`pipelines.config` (plain values, imported by DAG files) so
pydantic-settings is imported only when the environment is actually read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, ClassVar, Final, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from pipelines.config import HttpSettings
from pipelines.errors import ConfigError

M = TypeVar("M", bound="EnvModel")

_ENV: ContextVar[Mapping[str, str] | None] = ContextVar("skysmart_env", default=None)
_KINDS: Final = {
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "date_from_datetime_parsing": "a date, YYYY-MM-DD",
    "date_parsing": "a date, YYYY-MM-DD",
    "bool_parsing": "true or false",
}


class _MappingSource(EnvSettingsSource):
    """Environment variables from the mapping :func:`read_env` was given, stripped; empty means unset."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        given = _ENV.get()
        env = os.environ if given is None else given
        stripped = {key: value.strip() for key, value in env.items() if isinstance(value, str)}
        return parse_env_vars(stripped, self.case_sensitive, True, self.env_parse_none_str)


class EnvModel(BaseSettings):
    """A group of variables under one prefix; read it with :func:`read_env`, never by instantiating."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, env_ignore_empty=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the mapping :func:`read_env` was given (no dotenv, no secrets directory)."""
        return (init_settings, _MappingSource(settings_cls))


def read_env(model: type[M], env: Mapping[str, str] | None = None) -> M:
    """Fill ``model`` from ``env`` (default: ``os.environ``).

    Raises:
        ConfigError: a value does not parse; the message and ``field`` name the variable.
    """
    token = _ENV.set(env)
    try:
        return model()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error.get("loc") else ""
        variable = f"{model.model_config.get('env_prefix', '')}{name}".upper()
        kind = _KINDS.get(str(error.get("type")), "valid")
        raise ConfigError(f"{variable} must be {kind}, got {error.get('input')!r}", field=variable) from None
    finally:
        _ENV.reset(token)


class CoreEnv(EnvModel):
    """``SKYSMART_*``: the lake and warehouse, the lookback, the HTTP knobs, memory and processes."""

    model_config = SettingsConfigDict(env_prefix="SKYSMART_")

    lake: str | None = None
    warehouse: str | None = None
    lookback_days: int | None = None
    duckdb_memory_limit: str | None = None
    validator_process: bool = True
    http_connect_timeout: float | None = None
    http_read_timeout: float | None = None
    http_max_retries: int | None = None
    http_max_concurrency: int | None = None
    http_requests_per_second: float | None = None

    def http(self) -> HttpSettings:
        """The HTTP knobs, the library defaults where unset."""
        base = HttpSettings()
        return HttpSettings(
            connect_timeout=_or(self.http_connect_timeout, base.connect_timeout),
            read_timeout=_or(self.http_read_timeout, base.read_timeout),
            max_retries=_or(self.http_max_retries, base.max_retries),
            max_concurrency=_or(self.http_max_concurrency, base.max_concurrency),
            requests_per_second=_or(self.http_requests_per_second, base.requests_per_second),
            backoff_initial=base.backoff_initial,
            backoff_max=base.backoff_max,
        )


class PushEnv(EnvModel):
    """``SKYSMART_PUSH_*`` as the texts given; ``PushSettings.from_env`` interprets them."""

    model_config = SettingsConfigDict(env_prefix="SKYSMART_PUSH_")

    currencies: str | None = None
    defaults: str | None = None
    batch_size: str | None = None
    include_inactive: str | None = None
    skybiz_covered_from: str | None = None
    max_staleness_days: str | None = None


class SourceEnv(EnvModel):
    """``SKYSMART_<SOURCE>_*``: a source's variables. Subclasses set ``env_prefix`` and :meth:`to_settings`.

    A source without a URL is not configured (:meth:`to_settings` is not called then).
    """

    url: str | None = None
    title: ClassVar[str] = "source"

    def to_settings(self, http: HttpSettings) -> Any:
        """What the source's client takes; raise :class:`ConfigError` naming a missing variable."""
        raise NotImplementedError


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def core_env(env: Mapping[str, str] | None = None) -> CoreEnv:
    """The ``SKYSMART_*`` core variables alone (no source settings): for code that needs one of them."""
    return read_env(CoreEnv, env)
