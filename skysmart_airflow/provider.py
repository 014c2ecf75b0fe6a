"""Provider metadata: how Airflow discovers skysmart's connection types (entry point in pyproject.toml).

The connection forms are declarative (``conn-fields`` and ``ui-field-behaviour``), so they render in the
Airflow 3 UI without wtforms; ``"format": "password"`` marks the fields the UI must mask.
"""

from __future__ import annotations

from typing import Any

from pipelines import __version__

# The HTTP knobs every vendor connection takes (read one by one in ``hooks._http_settings``). The raw
# "Extra" box is hidden in the form, so each is a typed field of its own; empty means the library default.
_HTTP_FIELDS: dict[str, dict[str, Any]] = {
    "connect_timeout": {
        "label": "Connect timeout (s)",
        "description": "Seconds to wait for a TCP connection; empty: the library default.",
        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
    },
    "read_timeout": {
        "label": "Read timeout (s)",
        "description": "Seconds to wait for an answer; empty: the library default.",
        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
    },
    "max_retries": {
        "label": "Retries per request",
        "description": "Retries of transient failures (timeouts, 5xx, 429) inside one task try.",
        "schema": {"type": ["integer", "null"], "minimum": 0},
    },
    "requests_per_second": {
        "label": "Requests per second",
        "description": "Client-side rate limit, kept under the vendor's.",
        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
    },
    "max_concurrency": {
        "label": "Concurrent requests",
        "description": "Requests in flight at once from one task.",
        "schema": {"type": ["integer", "null"], "minimum": 1},
    },
}


def get_provider_info() -> dict[str, Any]:
    """Provider description read by Airflow's ProvidersManager; ``package-name`` is the distribution name."""
    return {
        "package-name": "skysmart",
        "name": "skysmart",
        "description": "SmartAcc and SkyBiz customers: extract, normalize, validate, warehouse, push.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "skybiz",
                "hook-class-name": "skysmart_airflow.hooks.SkyBizHook",
                "hook-name": "SkyBiz Cloud ERP",
                "conn-fields": {
                    "api_secret": {
                        "label": "API secret",
                        "description": "Delivered once by SkyBiz's registration callback.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    **_HTTP_FIELDS,
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "extra"],
                    "relabeling": {"host": "Modules URL", "login": "API key", "password": "API secret"},
                    "placeholders": {
                        "host": "https://your-domain/01/clientportal/apiv2/modules",
                        "login": "your-api-key",
                    },
                },
            },
            {
                "connection-type": "smartacc",
                "hook-class-name": "skysmart_airflow.hooks.SmartAccHook",
                "hook-name": "SmartAcc DynaMod Web API",
                "conn-fields": {
                    "api_key": {
                        "label": "API key",
                        "description": "Sent as a Bearer token; empty: log in with user name and password.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    **_HTTP_FIELDS,
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "extra"],
                    "relabeling": {"host": "Base URL", "login": "User name", "password": "Password"},
                    "placeholders": {"host": "https://smartacc.example.com:8443"},
                },
            },
            {
                "connection-type": "skysmart_warehouse",
                "hook-class-name": "skysmart_airflow.hooks.WarehouseHook",
                "hook-name": "skysmart warehouse (DuckDB or Postgres)",
                "conn-fields": {
                    "url": {
                        "label": "Warehouse URL",
                        "description": "A DuckDB file path or a postgresql:// URL (its password is masked).",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "port", "schema", "login", "password", "extra"],
                    "relabeling": {},
                    "placeholders": {},
                },
            },
        ],
    }
