"""Adding a source is one folder and its contract: a third source, Acme, runs extract → normalize → validate
→ load with no edit anywhere else.

``tests/sources/acme/`` is written the way docs/ADDING_A_SOURCE.md says. The test registers its spec, serves a
tiny fake Acme over real HTTP on 127.0.0.1, and runs the pipeline's own steps into a real lake and a real
DuckDB file. It also counts the files the source is (the figure docs/ADDING_A_SOURCE.md quotes) and proves
that nothing outside its folder names it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb
import pytest

from pipelines import steps
from pipelines.config import Settings
from pipelines.errors import AuthenticationError, ConfigError
from pipelines.sources import registry
from pipelines.windows import Window
from tests.sources import acme

ROOT = Path(__file__).resolve().parents[2]
ACME_DIR = Path(acme.__file__).resolve().parent
TOKEN = "acme-token-7f3c1e9a"
ACME_WORD = re.compile(r"\bacme\b", re.IGNORECASE)
CUSTOMERS: list[dict[str, Any]] = [
    {
        "id": "A-1",
        "name": "Kedai Runcit Ali",
        "currency": "MYR",
        "modified": "2026-03-02 09:15:00",
        "city": "kuala lumpur",
        "country": "Malaysia",
        "phone": "03-2142 1234",
        "email": "Ali@Example.com",
    },
    {
        "id": "A-2",
        "name": "Syarikat Bina Jaya",
        "currency": "MYR",
        "modified": "2026-03-03 17:00:00",
        "city": "ipoh",
        "country": "MY",
        "phone": "+60 5 241 1111",
        "email": "not-an-email",
    },
    {
        "id": "A-3",
        "name": "  ",
        "currency": "MYR",
        "modified": "2026-03-04 08:00:00",
        "city": "Johor Bahru",
        "country": "MY",
        "phone": None,
        "email": None,
    },
    {
        "id": "A-4",
        "name": "Lion City Traders",
        "currency": "SGD",
        "modified": "2026-03-05 10:30:00",
        "city": "singapore",
        "country": "SG",
        "phone": "6123 4567",
        "email": "sales@lion.sg",
        "tier": 2,
    },
]


class _Acme(BaseHTTPRequestHandler):
    """GET /customers?from=&to=: the customers modified in the window (Malaysia dates, inclusive)."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._send(401, {"error": "bad token"})
        if parts.path != "/customers":
            return self._send(404, {"error": "no such route"})
        query = parse_qs(parts.query)
        start, end = query["from"][0], query["to"][0]
        rows = [c for c in CUSTOMERS if start <= str(c["modified"])[:10] <= end]
        self._send(200, {"customers": rows})

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def acme_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Acme)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def registered() -> Iterator[None]:
    registry.register_source(acme.SPEC)
    try:
        yield
    finally:
        registry.unregister_source("acme")


def _settings(tmp_path: Path, url: str, token: str = TOKEN) -> Settings:
    return Settings.from_env(
        {
            "SKYSMART_LAKE": str(tmp_path / "lake"),
            "SKYSMART_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
            "SKYSMART_ACME_URL": url,
            "SKYSMART_ACME_TOKEN": token,
        }
    )


def test_a_third_source_runs_extract_to_load_from_its_folder_alone(
    registered: None, acme_url: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, acme_url)
    refs = steps.plan_range(date(2026, 3, 1), date(2026, 3, 10), sources=["acme"])
    # Acme's own window limit (7 days) and the month alignment cut the range.
    assert refs == ["acme:2026-03-01_2026-03-07", "acme:2026-03-08_2026-03-10"]

    results = {}
    for ref in refs:
        extracted = steps.extract_step(settings, ref)
        normalized = steps.normalize_step(settings, ref)
        validated = steps.validate_step(settings, ref)
        loaded = steps.load_step(settings, ref)
        results[ref] = (extracted, normalized, validated, loaded)

    extracted, normalized, validated, loaded = results["acme:2026-03-01_2026-03-07"]
    assert (extracted["rows"], extracted["pages"]) == (4, 1)
    assert (normalized["normalized"], normalized["quarantined"]) == (3, 1)
    assert normalized["quarantine_reasons"] == {"name_missing": 1}
    assert validated["success"] is True
    assert loaded["inserted"] == 3

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT customer_key, name, currency, town, country, phone, email, data_issues, source_extras "
            "FROM customers WHERE source_system = 'acme' ORDER BY customer_key"
        ).fetchall()
        quarantined = con.execute(
            "SELECT source_customer_id, rule FROM customer_quarantine WHERE source_system = 'acme'"
        ).fetchall()
        audited = con.execute("SELECT DISTINCT source FROM load_audit").fetchall()
    keys = [r[0] for r in rows]
    assert keys == ["acme:A-1", "acme:A-2", "acme:A-4"]
    ali, bina, lion = rows
    assert ali[1:7] == ("Kedai Runcit Ali", "MYR", "Kuala Lumpur", "MY", "+60321421234", "ali@example.com")
    assert bina[6] is None and "email_invalid" in str(bina[7])  # refused, flagged, kept in extras
    assert lion[5] == "+6561234567"  # a Singapore number read in its row's own country
    assert quarantined == [("A-3", "name_missing")]
    assert audited == [("acme",)]
    # The window and the source_system value are the registry's, not a list written somewhere.
    assert Window.from_ref("acme:2026-03-08_2026-03-10").days == 3


def test_the_source_is_its_folder_and_nothing_else_names_it() -> None:
    files = sorted(
        p.relative_to(ACME_DIR).as_posix()
        for p in ACME_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    # Adding a source touches three files, all new, in one folder: its spec, its code, its raw contract.
    assert files == ["__init__.py", "acme_customer_raw.yaml", "source.py"]
    shipped = [ROOT / "pipelines", ROOT / "skysmart_airflow", ROOT / "data_contracts", ROOT / "dags"]
    naming = [
        str(p.relative_to(ROOT))
        for folder in shipped
        for p in folder.rglob("*")
        if p.is_file() and p.suffix in (".py", ".yaml") and ACME_WORD.search(p.read_text(encoding="utf-8"))
    ]
    assert naming == []


def test_registered_source_gets_settings_hook_and_connection_form(registered: None, tmp_path: Path) -> None:
    settings = _settings(tmp_path, "http://127.0.0.1:9")
    assert settings.require("acme").token.reveal() == TOKEN and TOKEN not in repr(settings)
    with pytest.raises(ConfigError, match="SKYSMART_ACME_TOKEN"):
        Settings.from_env({"SKYSMART_ACME_URL": "http://127.0.0.1:9"})
    with pytest.raises(ConfigError, match="SKYSMART_ACME_URL"):
        Settings.from_env({}).require("acme")

    from skysmart_airflow import hooks
    from skysmart_airflow.provider import get_provider_info

    (form,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == "acme"]
    assert form["hook-class-name"] == "skysmart_airflow.hooks.AcmeHook"
    assert form["conn-fields"]["token"]["schema"]["format"] == "password"
    hook = hooks.AcmeHook  # made from the spec on first use, what ProvidersManager imports
    assert (hook.conn_type, hook.hook_name, hook.default_conn_name) == ("acme", "Acme CRM", "acme_default")


def test_a_wrong_token_is_refused_before_anything_is_written(
    registered: None, acme_url: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, acme_url, token="acme-wrong-token-000")
    with pytest.raises(AuthenticationError):
        steps.extract_step(settings, "acme:2026-03-01_2026-03-07")
    assert not (tmp_path / "lake").exists() or not any((tmp_path / "lake").rglob("*.parquet"))


def test_an_unregistered_source_is_refused_everywhere() -> None:
    assert "acme" not in registry.names()
    with pytest.raises(ConfigError, match="unknown source 'acme'"):
        steps.make_client(Settings(), "acme")
    with pytest.raises(ConfigError, match="sources must be among"):
        steps.plan_range(date(2026, 3, 1), date(2026, 3, 2), sources=["acme"])


def test_a_registered_source_runs_in_the_dags_operators_through_its_default_connection(
    registered: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from skysmart_airflow.operators import ExtractWindowOperator

    conn = {"conn_type": "acme", "host": "http://127.0.0.1:9", "password": TOKEN, "extra": {"token": TOKEN}}
    monkeypatch.setenv("AIRFLOW_CONN_ACME_DEFAULT", json.dumps(conn))
    operator = ExtractWindowOperator(
        task_id="extract", window_ref="acme:2024-01-01_2024-01-31", lake_url=str(tmp_path), lake_conn_id=None
    )

    assert operator.vendor_conn_id("acme") == "acme_default"
    assert operator.settings(vendor=True).require("acme").token.reveal() == TOKEN
    chosen = ExtractWindowOperator(
        task_id="x", window_ref="acme:2024-01-01_2024-01-31", conn_ids={"acme": "acme_eu"}
    )
    assert chosen.vendor_conn_id("acme") == "acme_eu"
