"""SkyBiz Cloud ERP: one POST per window (at most 31 days), customers created through the same endpoint.

The package: ``client`` (HTTP, shared/api/SKYBIZ.md), ``adapter`` (windows → pages), ``normalize`` (raw →
common model), ``settings`` (``SKYSMART_SKYBIZ_*`` and the Airflow connection). Importing this module
imports none of them: :data:`SPEC` names them, the registry loads them when used.
"""

from __future__ import annotations

from typing import Final

from pipelines.sources.spec import ConnectionField, ConnectionForm, SourceSpec

SPEC: Final = SourceSpec(
    name="skybiz",
    title="SkyBiz",
    # SkyBiz refuses more than 31 days inclusive.
    max_window_days=31,
    raw_contract="skybiz_customer_raw",
    settings="pipelines.sources.skybiz.settings:SkyBizEnv",
    client="pipelines.sources.skybiz.client:SkyBizClient",
    window_adapter="pipelines.sources.skybiz.adapter:SkyBizWindows",
    normalizer="pipelines.sources.skybiz.normalize:draft",
    rule_fields=("CusCode", "CusName", "CurCode", "DateTimeModified"),
    id_field="CusCode",
    connection=ConnectionForm(
        conn_type="skybiz",
        hook_name="SkyBiz Cloud ERP",
        hook_class="skysmart_airflow.hooks.SkyBizHook",
        from_connection="pipelines.sources.skybiz.settings:from_connection",
        fields=(
            ConnectionField(
                "api_secret", "API secret", "Delivered once by SkyBiz's registration callback.", secret=True
            ),
        ),
        hidden_fields=("schema", "port", "extra"),
        relabeling={"host": "Modules URL", "login": "API key", "password": "API secret"},
        placeholders={"host": "https://your-domain/01/clientportal/apiv2/modules", "login": "your-api-key"},
    ),
)
