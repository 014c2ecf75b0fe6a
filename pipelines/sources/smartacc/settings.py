"""SmartAcc's settings: what the client takes, from ``SKYSMART_SMARTACC_*`` or from an Airflow connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from pipelines.config import ConnectionParts, HttpSettings, Secret
from pipelines.env import SourceEnv
from pipelines.errors import ConfigError


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


class SmartAccEnv(SourceEnv):
    """``SKYSMART_SMARTACC_URL``, and ``_API_KEY`` or ``_USERNAME`` with ``_PASSWORD``."""

    model_config = SettingsConfigDict(env_prefix="SKYSMART_SMARTACC_")
    title: ClassVar[str] = "SmartAcc"

    api_key: str | None = None
    username: str | None = None
    password: str | None = None

    def to_settings(self, http: HttpSettings) -> SmartAccSettings:
        """The client's settings; the URL is set (the caller checked)."""
        return SmartAccSettings(
            url=str(self.url),
            api_key=Secret(self.api_key) if self.api_key else None,
            username=self.username,
            password=Secret(self.password) if self.password else None,
            http=http,
        )


def from_connection(conn: ConnectionParts) -> SmartAccSettings:
    """Host = base URL; the ``api_key`` extra (Bearer), or login/password for a credentials session."""
    api_key = conn.extra.get("api_key")
    return SmartAccSettings(
        url=conn.base_url(default_scheme="https"),
        api_key=Secret(str(api_key)) if api_key else None,
        username=conn.login or None,
        password=Secret(conn.password) if conn.password else None,
        http=conn.http(),
    )
