"""SmartAcc DynaMod Web API (ServiceStack): customers by edit date in pages of 20, plus the Terms lookup.

The package: ``client`` (HTTP, shared/api/SMARTACC.md), ``dates`` (the ServiceStack date codec, no HTTP),
``adapter`` (windows → pages and the Terms snapshot), ``normalize`` (raw → common model), ``settings``
(``SKYSMART_SMARTACC_*`` and the Airflow connection). Importing this module imports none of them.
"""

from __future__ import annotations

from typing import Final

from pipelines.sources.spec import ConnectionField, ConnectionForm, LookupSpec, SourceSpec

SPEC: Final = SourceSpec(
    name="smartacc",
    title="SmartAcc",
    # SmartAcc has no limit, but month-sized windows keep a backfill's units comparable, restartable and
    # small enough for memory-light tasks.
    max_window_days=31,
    raw_contract="smartacc_customer_raw",
    settings="pipelines.sources.smartacc.settings:SmartAccEnv",
    client="pipelines.sources.smartacc.client:SmartAccClient",
    window_adapter="pipelines.sources.smartacc.adapter:SmartAccWindows",
    normalizer="pipelines.sources.smartacc.normalize:draft",
    rule_fields=("AcCustomerID", "AcCustomerName", "AcCurrencyID", "EditDate", "Stamp"),
    id_field="AcCustomerID",
    lookups=(LookupSpec(entity="terms", contract="smartacc_terms_raw"),),
    connection=ConnectionForm(
        conn_type="smartacc",
        hook_name="SmartAcc DynaMod Web API",
        hook_class="skysmart_airflow.hooks.SmartAccHook",
        from_connection="pipelines.sources.smartacc.settings:from_connection",
        test_connection="pipelines.sources.smartacc.adapter:test_connection",
        fields=(
            ConnectionField(
                "api_key",
                "API key",
                "Sent as a Bearer token; empty: log in with user name and password.",
                secret=True,
            ),
        ),
        hidden_fields=("schema", "extra"),
        relabeling={"host": "Base URL", "login": "User name", "password": "Password"},
        placeholders={"host": "https://smartacc.example.com:8443"},
    ),
)
