"""SkyBiz's settings: what the client takes, from ``SKYSMART_SKYBIZ_*`` or from an Airflow connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from pipelines.config import ConnectionParts, HttpSettings, Secret
from pipelines.env import SourceEnv
from pipelines.errors import ConfigError


@dataclass(frozen=True, slots=True)
class SkyBizSettings:
    """Where SkyBiz lives (the modules URL, ending in ``/apiv2/modules``) and its key pair."""

    url: str
    api_key: Secret
    api_secret: Secret
    http: HttpSettings = field(default_factory=HttpSettings)


class SkyBizEnv(SourceEnv):
    """``SKYSMART_SKYBIZ_URL``, ``_API_KEY``, ``_API_SECRET``."""

    model_config = SettingsConfigDict(env_prefix="SKYSMART_SKYBIZ_")
    title: ClassVar[str] = "SkyBiz"

    api_key: str | None = None
    api_secret: str | None = None

    def to_settings(self, http: HttpSettings) -> SkyBizSettings:
        """The client's settings; the URL is set (the caller checked)."""
        if not self.api_key or not self.api_secret:
            raise ConfigError(
                "SKYSMART_SKYBIZ_URL is set but the API key or secret is missing",
                field="SKYSMART_SKYBIZ_API_KEY/SKYSMART_SKYBIZ_API_SECRET",
            )
        return SkyBizSettings(
            url=str(self.url), api_key=Secret(self.api_key), api_secret=Secret(self.api_secret), http=http
        )


def from_connection(conn: ConnectionParts) -> SkyBizSettings:
    """Host = modules URL, login = API key, password (or the ``api_secret`` extra) = API secret."""
    secret = conn.password or conn.extra.get("api_secret")
    if not conn.login or not secret:
        raise ConfigError(
            f"connection {conn.conn_id!r} needs the API key (login) and secret (password)",
            field="login/password",
        )
    return SkyBizSettings(
        url=conn.base_url(),
        api_key=Secret(conn.login),
        api_secret=Secret(str(secret)),
        http=conn.http(),
    )
