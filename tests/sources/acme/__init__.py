"""Acme CRM: a minimal third source, written the way docs/ADDING_A_SOURCE.md says, to prove that adding a
source is this folder and nothing else (tests/sources/test_third_source.py).

Acme answers ``GET {url}/customers?from=YYYY-MM-DD&to=YYYY-MM-DD`` with ``{"customers": [...]}`` and
authenticates with ``Authorization: Bearer <token>``. Its contract lives here too (``contracts_dir``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from pipelines.sources.spec import ConnectionField, ConnectionForm, SourceSpec

SPEC: Final = SourceSpec(
    name="acme",
    title="Acme",
    max_window_days=7,
    raw_contract="acme_customer_raw",
    settings="tests.sources.acme.source:AcmeEnv",
    client="tests.sources.acme.source:AcmeClient",
    window_adapter="tests.sources.acme.source:AcmeWindows",
    normalizer="tests.sources.acme.source:draft",
    rule_fields=("id", "name", "currency", "modified"),
    id_field="id",
    connection=ConnectionForm(
        conn_type="acme",
        hook_name="Acme CRM",
        from_connection="tests.sources.acme.source:from_connection",
        fields=(ConnectionField("token", "API token", "Sent as a Bearer token.", secret=True),),
        hidden_fields=("schema", "port", "login", "password", "extra"),
        relabeling={"host": "Base URL"},
    ),
    contracts_dir=Path(__file__).resolve().parent,
    default=False,
)
