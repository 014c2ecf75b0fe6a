"""What a source is: one declarative :class:`SourceSpec` that every part of skysmart reads.

A vendor package (``pipelines/sources/<vendor>/``, or any installed package) exports one ``SPEC``. The
windows, the settings layer, extraction, normalization, the contracts' allowed ``source`` values, the
Airflow hooks and connection forms all derive from it, so adding a source is one folder and its raw
contract (docs/ADDING_A_SOURCE.md).

The heavy parts (the HTTP client, the normalizer, which need requests, pyarrow...) are named by
``"module:attribute"`` strings and imported on first use: importing a spec costs nothing, which is what
keeps DAG files fast to parse.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pipelines.errors import ConfigError

NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True, slots=True)
class ConnectionField:
    """One typed field of a source's Airflow connection form, stored in the connection's extras.

    Attributes:
        name: the extra's key.
        label: what the form shows.
        description: the help text under it.
        kind: JSON-schema type of the value: ``string``, ``number`` or ``integer``.
        secret: whether the form masks it (``"format": "password"``) and logs redact it.
        minimum: inclusive lower bound for numbers, if any.
        exclusive_minimum: exclusive lower bound for numbers, if any.
    """

    name: str
    label: str
    description: str = ""
    kind: str = "string"
    secret: bool = False
    minimum: float | None = None
    exclusive_minimum: float | None = None

    def schema(self) -> dict[str, Any]:
        """The field's JSON schema, as Airflow's ``conn-fields`` take it."""
        out: dict[str, Any] = {"type": [self.kind, "null"]}
        if self.secret:
            out["format"] = "password"
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.exclusive_minimum is not None:
            out["exclusiveMinimum"] = self.exclusive_minimum
        return out


HTTP_FIELDS: Final = (
    ConnectionField(
        "connect_timeout",
        "Connect timeout (s)",
        "Seconds to wait for a TCP connection; empty: the library default.",
        "number",
        exclusive_minimum=0,
    ),
    ConnectionField(
        "read_timeout",
        "Read timeout (s)",
        "Seconds to wait for an answer; empty: the library default.",
        "number",
        exclusive_minimum=0,
    ),
    ConnectionField(
        "max_retries",
        "Retries per request",
        "Retries of transient failures (timeouts, 5xx, 429) inside one task try.",
        "integer",
        minimum=0,
    ),
    ConnectionField(
        "requests_per_second",
        "Requests per second",
        "Client-side rate limit, kept under the vendor's.",
        "number",
        exclusive_minimum=0,
    ),
    ConnectionField(
        "max_concurrency",
        "Concurrent requests",
        "Requests in flight at once from one task.",
        "integer",
        minimum=1,
    ),
)
"""The HTTP knobs every vendor connection takes (read one by one by :func:`pipelines.config.http_from_extra`).
The raw "Extra" box is hidden in the forms, so each is a typed field of its own; empty means the default."""


@dataclass(frozen=True, slots=True)
class ConnectionForm:
    """How the source appears in Airflow: its connection type, hook and form.

    Attributes:
        conn_type: the Airflow connection type (``skybiz``).
        hook_name: what the connection-type list shows.
        hook_class: the hook's import path; ``None``: ``skysmart_airflow.hooks.<Title>Hook``, made from this
            spec (skysmart_airflow/hooks.py).
        fields: typed extra fields besides the HTTP knobs (:data:`HTTP_FIELDS`, always added).
        hidden_fields: standard fields the form hides.
        relabeling: standard fields shown under another label.
        placeholders: example values shown in empty fields.
        from_connection: ``"module:function"`` turning a :class:`pipelines.config.ConnectionParts` into
            the source's settings (no Airflow import: the library reads plain values).
        test_connection: ``"module:function"`` taking a client and returning ``(ok, message)`` for the
            UI's "Test" button; ``None``: the client's own ``test_connection()``.
    """

    conn_type: str
    hook_name: str
    from_connection: str
    fields: tuple[ConnectionField, ...] = ()
    hidden_fields: tuple[str, ...] = ("schema", "extra")
    relabeling: Mapping[str, str] = field(default_factory=dict)
    placeholders: Mapping[str, str] = field(default_factory=dict)
    hook_class: str | None = None
    test_connection: str | None = None

    @property
    def secret_fields(self) -> tuple[str, ...]:
        """The extras that hold credentials."""
        return tuple(f.name for f in self.fields if f.secret)


@dataclass(frozen=True, slots=True)
class LookupSpec:
    """A lookup table a source snapshots beside each customers window (SmartAcc's Terms).

    Attributes:
        entity: the lake entity (``raw/source=<name>/entity=<entity>/``) and the key under which the
            normalizer receives it.
        contract: its raw contract's name (found in the spec's ``contracts_dir``).
    """

    entity: str
    contract: str


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """Everything skysmart knows about a source, in one place.

    Attributes:
        name: the registry key, the lake's ``source=`` value, ``source_system`` in the warehouse and the
            ``SKYSMART_<NAME>_*`` prefix of its settings (lower-case letters, digits, ``_``).
        title: the vendor's name for people (``SkyBiz``).
        max_window_days: the longest window (inclusive days) the vendor accepts, or we read at once.
        raw_contract: the name of its raw customers contract.
        settings: ``"module:Class"`` of its environment model, a :class:`pipelines.config.SourceEnv`
            (``SKYSMART_<NAME>_*``) whose ``to_settings(http)`` gives what the client takes.
        client: ``"module:Class"`` of its API client: ``Class(settings, http=HttpClient|None)``, a context
            manager with ``close()``.
        window_adapter: ``"module:Class"`` wrapping a client into a
            :class:`pipelines.sources.WindowSource` (paging, lookups, manifest facts).
        normalizer: ``"module:function"``: ``draft(raw, lookups, *, rules_only=False) -> Draft``.
        rule_fields: the raw fields the quarantine rules and duplicate order read (the narrow first pass).
        id_field: the raw field holding the vendor's customer id.
        connection: its Airflow connection type and form.
        lookups: lookup tables extracted with every window.
        contracts_dir: where its contracts live; ``None``: ``data_contracts/``.
        default: whether ``--source all`` and the DAGs' default ``sources`` include it.
    """

    name: str
    title: str
    max_window_days: int
    raw_contract: str
    settings: str
    client: str
    window_adapter: str
    normalizer: str
    rule_fields: tuple[str, ...]
    id_field: str
    connection: ConnectionForm
    lookups: tuple[LookupSpec, ...] = ()
    contracts_dir: Path | None = None
    default: bool = True

    def __post_init__(self) -> None:
        if not self.name or not set(self.name) <= NAME_CHARS or not self.name[0].isalpha():
            raise ConfigError(
                f"source name {self.name!r} must be lower-case letters, digits and _, starting with a letter",
                field="name",
            )
        if self.max_window_days < 1:
            raise ConfigError(f"{self.name}: max_window_days must be at least 1", field="max_window_days")
        if self.id_field not in self.rule_fields:
            raise ConfigError(f"{self.name}: rule_fields must include the id field", field="rule_fields")

    @property
    def env_prefix(self) -> str:
        """``SKYSMART_<NAME>_``: the prefix of the source's environment variables."""
        return f"SKYSMART_{self.name.upper()}_"

    def load(self, attribute: str) -> Any:
        """Import one of the spec's ``"module:attribute"`` parts (``client``, ``normalizer``...)."""
        return load_object(getattr(self, attribute))

    def settings_from_connection(self, parts: Any) -> Any:
        """The source's settings from an Airflow connection's parts (``ConnectionForm.from_connection``)."""
        return load_object(self.connection.from_connection)(parts)

    def test_connection(self, client: Any) -> tuple[bool, str]:
        """What the UI's "Test" button runs: ``ConnectionForm.test_connection``, else the client's own."""
        test = self.connection.test_connection
        result: tuple[bool, str] = load_object(test)(client) if test else client.test_connection()
        return result

    def lookup(self, entity: str) -> LookupSpec:
        """One of the source's lookups by entity."""
        for spec in self.lookups:
            if spec.entity == entity:
                return spec
        raise ConfigError(f"source {self.name!r} has no lookup {entity!r}", field="lookups")


def load_object(path: str) -> Any:
    """``"package.module:attribute"`` → the attribute (imported now)."""
    module, sep, attribute = path.partition(":")
    if not sep or not module or not attribute:
        raise ConfigError(f"{path!r} is not a 'module:attribute' path")
    target: Any = importlib.import_module(module)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target
