"""Provider metadata: what Airflow's ProvidersManager reads (entry point ``apache_airflow_provider``).

Laid out the way official providers' ``get_provider_info`` is: the integration, the modules holding hooks
and operators, and one ``connection-types`` entry per connection type. The sources' connection types come
from the source registry (each ``SourceSpec.connection``), so a new source shows up here without an edit.
The forms are declarative (``conn-fields`` and ``ui-field-behaviour``), so they render in the Airflow 3 UI
without wtforms; ``"format": "password"`` marks the fields the UI must mask. Importing this module imports
no hook (it stays light).
"""

from __future__ import annotations

from typing import Any, Final

from pipelines import __version__
from pipelines.sources import registry
from pipelines.sources.spec import HTTP_FIELDS, ConnectionField, SourceSpec

INTEGRATION: Final = "skysmart"
WAREHOUSE_CONN_TYPE: Final = "skysmart_warehouse"
HOOK_MODULES: Final = ("skysmart_airflow.hooks", "skysmart_airflow.lake_hook")
OPERATOR_MODULES: Final = ("skysmart_airflow.operators",)
WAREHOUSE_URL_FIELD: Final = ConnectionField(
    "url",
    "Warehouse URL",
    "A DuckDB file path or a postgresql:// URL (masked: it carries the Postgres password).",
    secret=True,
)


def hook_class_name(spec: SourceSpec) -> str:
    """A source's hook: its ``ConnectionForm.hook_class``, else ``skysmart_airflow.hooks.<Title>Hook``."""
    if spec.connection.hook_class:
        return spec.connection.hook_class
    title = "".join(part for part in spec.title.title() if part.isalnum())
    return f"skysmart_airflow.hooks.{title}Hook"


def _fields(fields: tuple[ConnectionField, ...]) -> dict[str, Any]:
    return {f.name: {"label": f.label, "description": f.description, "schema": f.schema()} for f in fields}


def source_connection_type(spec: SourceSpec) -> dict[str, Any]:
    """A source's ``connection-types`` entry, from its spec (its fields, then the HTTP knobs)."""
    form = spec.connection
    return {
        "connection-type": form.conn_type,
        "hook-class-name": hook_class_name(spec),
        "hook-name": form.hook_name,
        "conn-fields": _fields((*form.fields, *HTTP_FIELDS)),
        "ui-field-behaviour": {
            "hidden-fields": list(form.hidden_fields),
            "relabeling": dict(form.relabeling),
            "placeholders": dict(form.placeholders),
        },
    }


def warehouse_connection_type() -> dict[str, Any]:
    """The warehouse's ``connection-types`` entry: one masked URL field."""
    return {
        "connection-type": WAREHOUSE_CONN_TYPE,
        "hook-class-name": "skysmart_airflow.hooks.WarehouseHook",
        "hook-name": "skysmart warehouse (DuckDB or Postgres)",
        "conn-fields": _fields((WAREHOUSE_URL_FIELD,)),
        "ui-field-behaviour": {
            "hidden-fields": ["host", "port", "schema", "login", "password", "extra"],
            "relabeling": {},
            "placeholders": {},
        },
    }


def get_provider_info() -> dict[str, Any]:
    """Provider description read by Airflow's ProvidersManager; ``package-name`` is the distribution name."""
    from skysmart_airflow.lake_hook import connection_type_info as lake_connection_type

    return {
        "package-name": "skysmart",
        "name": "skysmart",
        "description": "SmartAcc and SkyBiz customers: extract, normalize, validate, warehouse, push.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://github.com/skysmart/skysmart",
                "tags": ["software"],
            }
        ],
        "hooks": [{"integration-name": INTEGRATION, "python-modules": list(HOOK_MODULES)}],
        "operators": [{"integration-name": INTEGRATION, "python-modules": list(OPERATOR_MODULES)}],
        "connection-types": [
            *(source_connection_type(spec) for spec in registry.specs()),
            warehouse_connection_type(),
            lake_connection_type(),
        ],
    }
