"""Acme's settings, client, window adapter and normalizer: everything the spec names, in one module."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

import pyarrow as pa
from pydantic_settings import SettingsConfigDict

from pipelines.config import ConnectionParts, HttpSettings, Secret
from pipelines.env import SourceEnv
from pipelines.errors import ApiError, ConfigError
from pipelines.http import CallContext, HttpClient, JsonResponse, status_error
from pipelines.normalize.common import (
    malaysia_wall_times,
    map_currency,
    map_email,
    map_identity,
    map_modified,
    map_phone,
    map_place,
)
from pipelines.normalize.model import Draft
from pipelines.sources import Lookup, Page, client_facts, record_row
from pipelines.windows import Window

SOURCE: Final = "acme"


@dataclass(frozen=True, slots=True)
class AcmeSettings:
    """Where Acme lives and its token."""

    url: str
    token: Secret
    http: HttpSettings = field(default_factory=HttpSettings)


class AcmeEnv(SourceEnv):
    """``SKYSMART_ACME_URL`` and ``SKYSMART_ACME_TOKEN``."""

    model_config = SettingsConfigDict(env_prefix="SKYSMART_ACME_")
    title: ClassVar[str] = "Acme"

    token: str | None = None

    def to_settings(self, http: HttpSettings) -> AcmeSettings:
        if not self.token:
            raise ConfigError(
                "SKYSMART_ACME_URL is set but the token is missing", field="SKYSMART_ACME_TOKEN"
            )
        return AcmeSettings(url=str(self.url), token=Secret(self.token), http=http)


def from_connection(conn: ConnectionParts) -> AcmeSettings:
    token = conn.extra.get("token")
    if not token:
        raise ConfigError(f"connection {conn.conn_id!r} needs the token extra", field="token")
    return AcmeSettings(url=conn.base_url(), token=Secret(str(token)), http=conn.http())


class AcmeClient:
    """One GET per window; rows are the vendor's text (the HTTP layer keeps numbers as sent)."""

    def __init__(self, settings: AcmeSettings, *, http: HttpClient | None = None) -> None:
        self.settings = settings
        self.http = http or HttpClient(SOURCE, settings.http)

    def __enter__(self) -> AcmeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def read_window(self, window: Window) -> Page:
        ctx = CallContext(SOURCE, "read", window=window.key, page=1)

        def interpret(resp: JsonResponse) -> Page:
            if resp.status_code != 200 or not isinstance(resp.body, Mapping):
                raise status_error(resp.status_code, "Acme refused the read", ctx, request_id=resp.request_id)
            rows = resp.body.get("customers")
            if not isinstance(rows, list):
                raise ApiError("Acme answered without a customers list", **ctx.error_fields())
            return Page(rows=[record_row(r) for r in rows], request_id=str(resp.request_id), page=1)

        return self.http.request(
            "GET",
            f"{self.settings.url.rstrip('/')}/customers",
            ctx=ctx,
            interpret=interpret,
            params={"from": window.start.isoformat(), "to": window.end.isoformat()},
            headers=lambda: {"Authorization": f"Bearer {self.settings.token.reveal()}"},
            new_request_id=lambda: f"acme-{window.key}",
        )

    def test_connection(self) -> tuple[bool, str]:
        return True, "Acme answers"


class AcmeWindows:
    """A window is one page; Acme has no lookups."""

    source: Final = SOURCE

    def __init__(self, client: AcmeClient) -> None:
        self.client = client

    def iter_pages(self, window: Window) -> Iterator[Page]:
        yield self.client.read_window(window)

    def lookups(self, window: Window) -> Sequence[Lookup]:
        return ()

    def manifest_extra(self) -> dict[str, Any]:
        return client_facts(self.client, self.client.settings.url)


def draft(raw: pa.Table, lookups: Mapping[str, pa.Table], *, rules_only: bool = False) -> Draft:
    """Acme's fields onto the common model, with the shared mappings."""
    d = Draft(SOURCE, raw, "id")
    map_identity(d, "id", "name")
    map_currency(d, "currency")
    map_modified(d, "modified", malaysia_wall_times(d, "modified"))
    if rules_only:
        return d
    map_place(d, town="city", state=None, country="country", postcode=None)
    map_phone(d, "phone", "phone")
    map_email(d, "email", "email")
    return d
