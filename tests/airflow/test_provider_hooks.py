"""Provider and hooks: Airflow discovers our connection types and forms; hooks turn connections into clients.

Connections come from ``AIRFLOW_CONN_*`` JSON variables (typed extras), and each hook's
``test_connection()`` — what the UI's "Test" button and Airflow's connection-test workers call through
``Connection.test_connection()`` — is checked against the real sandbox over HTTP, with good and bad keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import ConfigError
from skysmart_sandbox.server import SandboxServer
from tests.fixtures.airflow import airflow_connection_env

pytestmark = pytest.mark.xdist_group("airflow")

TYPES = {
    "skybiz": "skysmart_airflow.hooks.SkyBizHook",
    "smartacc": "skysmart_airflow.hooks.SmartAccHook",
    "skysmart_warehouse": "skysmart_airflow.hooks.WarehouseHook",
    "skysmart_lake": "skysmart_airflow.lake_hook.LakeHook",
}
HTTP_FIELDS = {"connect_timeout", "read_timeout", "max_retries", "requests_per_second", "max_concurrency"}


@pytest.fixture(scope="module")
def providers(airflow_db: Path) -> Any:
    from airflow.providers_manager import ProvidersManager

    return ProvidersManager()  # type: ignore[no-untyped-call]


def test_connection_types_are_discovered_with_their_hooks(providers: Any) -> None:
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    assert "skysmart" in providers.providers
    # What the connection UI lists (read from provider metadata, without importing the hooks).
    listed = {m.connection_type: m for m in providers.iter_connection_type_hook_ui_metadata()}
    # What Connection.get_hook() / test_connection() resolve through on a worker (imports the hooks).
    runtime: Any = ProvidersManagerTaskRuntime()  # type: ignore[no-untyped-call]
    for conn_type, hook_class in TYPES.items():
        assert listed[conn_type].hook_class_name == hook_class
        info = runtime.hooks[conn_type]
        assert info is not None, conn_type  # None would mean the hook class failed to import
        assert (info.hook_class_name, info.package_name, info.connection_testable) == (
            hook_class,
            "skysmart",
            True,
        )
    assert listed["skybiz"].hook_name == "SkyBiz Cloud ERP"


def test_connection_forms_declare_typed_fields_and_mask_the_secrets(providers: Any) -> None:
    widgets = providers.connection_form_widgets
    fields = {
        conn_type: {w.field_name: w for w in widgets.values() if w.hook_class_name == hook_class}
        for conn_type, hook_class in TYPES.items()
    }
    assert set(fields["skybiz"]) == {"api_secret", *HTTP_FIELDS}
    assert set(fields["smartacc"]) == {"api_key", *HTTP_FIELDS}
    assert set(fields["skysmart_warehouse"]) == {"url"}
    assert fields["skybiz"]["api_secret"].is_sensitive and fields["smartacc"]["api_key"].is_sensitive
    # A Postgres URL carries its password: the whole field is masked in the form.
    assert fields["skysmart_warehouse"]["url"].is_sensitive
    assert fields["skybiz"]["max_retries"].field["schema"]["type"] == ["integer", "null"]
    assert fields["smartacc"]["read_timeout"].field["schema"]["title"] == "Read timeout (s)"

    behaviours = providers.field_behaviours
    assert behaviours["skybiz"]["relabeling"] == {
        "host": "Modules URL",
        "login": "API key",
        "password": "API secret",
    }
    assert "extra" in behaviours["skybiz"]["hidden_fields"]
    assert set(behaviours["skysmart_warehouse"]["hidden_fields"]) >= {"host", "login", "password"}


def test_hooks_read_json_env_connections_with_typed_extras(sandbox: SandboxServer, airflow_env: Any) -> None:
    from skysmart_airflow.hooks import SkyBizHook, SmartAccHook, WarehouseHook

    endpoints = sandbox.endpoints
    airflow_env(
        airflow_connection_env(
            endpoints,
            "/data/warehouse.duckdb",
            skybiz_extra={"max_retries": 2, "read_timeout": 7.5, "connect_timeout": None},
            smartacc_extra={"requests_per_second": 12},
        )
    )

    skybiz = SkyBizHook().get_settings()
    assert skybiz.url == endpoints.skybiz_url
    assert skybiz.api_key.reveal() == endpoints.skybiz_api_key
    assert skybiz.api_secret.reveal() == endpoints.skybiz_api_secret
    assert (skybiz.http.max_retries, skybiz.http.read_timeout, skybiz.http.connect_timeout) == (2, 7.5, 5.0)
    assert endpoints.skybiz_api_secret not in repr(skybiz)

    smartacc = SmartAccHook().get_settings()
    assert smartacc.url == endpoints.smartacc_url
    assert smartacc.api_key is not None and smartacc.api_key.reveal() == endpoints.smartacc_api_key
    assert smartacc.http.requests_per_second == 12.0
    assert endpoints.smartacc_api_key not in repr(smartacc)

    assert WarehouseHook().get_url() == "/data/warehouse.duckdb"


def test_postgres_parts_become_a_url_and_bad_extras_name_the_field(airflow_env: Any) -> None:
    from skysmart_airflow.hooks import SkyBizHook, WarehouseHook

    airflow_env(
        {
            "AIRFLOW_CONN_PG_WAREHOUSE": json.dumps(
                {
                    "conn_type": "skysmart_warehouse",
                    "host": "db.internal",
                    "login": "etl",
                    "password": "p@ss/word",
                    "schema": "dwh",
                    "port": 6432,
                }
            ),
            "AIRFLOW_CONN_SKYBIZ_BAD": json.dumps(
                {
                    "conn_type": "skybiz",
                    "host": "http://x",
                    "login": "k",
                    "password": "s",
                    "extra": {"max_retries": "many"},
                }
            ),
        }
    )
    assert WarehouseHook("pg_warehouse").get_url() == "postgresql://etl:p%40ss%2Fword@db.internal:6432/dwh"
    with pytest.raises(ConfigError) as caught:
        SkyBizHook("skybiz_bad").get_settings()
    assert caught.value.field == "max_retries"


def test_test_connection_succeeds_against_the_sandbox(
    sandbox: SandboxServer, airflow_env: Any, tmp_path: Path
) -> None:
    from airflow.sdk import Connection

    airflow_env(airflow_connection_env(sandbox.endpoints, str(tmp_path / "warehouse.duckdb")))
    outcomes = {
        conn_id: Connection.get(conn_id).test_connection()
        for conn_id in ("skybiz_default", "smartacc_default", "skysmart_warehouse_default")
    }

    assert outcomes["skybiz_default"][0], outcomes
    assert outcomes["skybiz_default"][1].startswith("SkyBiz customer read ok")
    terms = sandbox.data.terms.num_rows
    assert outcomes["smartacc_default"] == (True, f"SmartAcc authenticated; {terms} payment terms visible")
    assert outcomes["skysmart_warehouse_default"] == (True, "warehouse reachable")


@pytest.mark.parametrize(
    ("conn_id", "connection", "secret", "expected"),
    [
        pytest.param(
            "skybiz_default",
            {"password": "wrong-secret-0123456789abcdef"},
            "wrong-secret-0123456789abcdef",
            "AuthenticationError: ",
            id="skybiz-bad-secret",
        ),
        pytest.param(
            "smartacc_default",
            {"api_key": "wrong-key-0123456789abcdef"},
            "wrong-key-0123456789abcdef",
            "AuthenticationError: smartacc terms: HTTP 401",
            id="smartacc-bad-key",
        ),
        pytest.param(
            "skysmart_warehouse_default",
            {"url": "postgresql://etl:pg-secret-0123456789@127.0.0.1:1/dwh"},
            "pg-secret-0123456789",
            "TransientWarehouseError: cannot connect to Postgres",
            id="warehouse-unreachable",
        ),
    ],
)
def test_test_connection_fails_cleanly_without_the_secret(
    sandbox: SandboxServer,
    airflow_env: Any,
    tmp_path: Path,
    conn_id: str,
    connection: dict[str, Any],
    secret: str,
    expected: str,
) -> None:
    from airflow.sdk import Connection

    endpoints = sandbox.endpoints
    env = airflow_connection_env(endpoints, str(tmp_path / "warehouse.duckdb"))
    variable = f"AIRFLOW_CONN_{conn_id.upper()}"
    doc = json.loads(env[variable])
    if "password" in connection:
        doc["password"] = connection["password"]
    if "api_key" in connection:
        doc["extra"]["api_key"] = connection["api_key"]
    if "url" in connection:
        doc["extra"]["url"] = connection["url"]
    airflow_env({**env, variable: json.dumps(doc)})

    ok, message = Connection.get(conn_id).test_connection()

    assert not ok
    assert expected in message
    assert secret not in message


def test_provider_info_lists_hooks_operators_and_the_registry_sources() -> None:
    from pipelines.sources import registry
    from skysmart_airflow.provider import get_provider_info

    info = get_provider_info()
    (hooks,) = info["hooks"]
    (operators,) = info["operators"]
    assert "skysmart_airflow.hooks" in hooks["python-modules"]
    assert operators["python-modules"] == ["skysmart_airflow.operators"]
    assert {hooks["integration-name"], operators["integration-name"]} == {
        i["integration-name"] for i in info["integrations"]
    }
    types = [c["connection-type"] for c in info["connection-types"]]
    assert types[: len(registry.names())] == [s.connection.conn_type for s in registry.specs()]
    assert "skysmart_warehouse" in types
    for module in (*hooks["python-modules"], *operators["python-modules"]):
        __import__(module)


def test_warehouse_url_is_masked_in_task_logs(airflow_env: Any) -> None:
    """Airflow masks extras by key name and ``url`` is not one; the hook registers the URL's password."""
    from airflow.sdk import Connection
    from airflow.sdk.log import (  # type: ignore[attr-defined]  # Airflow re-exports it without __all__
        redact,  # what task-log processors apply
    )

    from skysmart_airflow.hooks import WarehouseHook

    password = "pg-log-secret-5b81d2"
    url = f"postgresql://etl:{password}@db.internal:5432/dwh"
    airflow_env(
        {
            "AIRFLOW_CONN_MASKED_WAREHOUSE": json.dumps(
                {"conn_type": "skysmart_warehouse", "extra": {"url": url}}
            )
        }
    )
    line = f"opening warehouse {url} for the load"
    assert Connection.get("masked_warehouse").extra_dejson["url"] == url
    assert password in str(redact(line))  # what Airflow alone does with a `url` extra

    assert WarehouseHook("masked_warehouse").get_url() == url
    shown = str(redact(line))
    assert password not in shown and "***" in shown
