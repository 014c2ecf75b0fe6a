"""The source registry is the one list of sources: everything that names sources derives from it."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines import windows
from pipelines.config import Settings
from pipelines.contracts import load_contract
from pipelines.errors import ConfigError, NormalizeError, WindowError
from pipelines.normalize import normalize_table
from pipelines.sources import registry
from pipelines.sources.smartacc import SPEC as SMARTACC
from pipelines.sources.spec import SourceSpec

ROOT = Path(__file__).resolve().parents[2]


def test_built_in_sources_are_the_vendor_packages() -> None:
    packages = sorted(p.parent.name for p in (ROOT / "pipelines" / "sources").glob("*/__init__.py"))
    assert registry.names() == tuple(packages) == ("skybiz", "smartacc")
    assert registry.default_names() == windows.SOURCES
    assert {s.name: s.max_window_days for s in registry.specs()} == windows.MAX_WINDOW_DAYS
    assert {s.name: s.raw_contract for s in registry.specs()} == {
        "skybiz": "skybiz_customer_raw",
        "smartacc": "smartacc_customer_raw",
    }


def _dag_default_sources(path: Path) -> list[object] | None:
    """The default of the DAG's ``"sources"`` Param: a literal list, or the name it refers to."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "sources" and isinstance(value, ast.Call):
                    default = value.args[0]
                    if isinstance(default, ast.List | ast.Tuple):
                        return [ast.literal_eval(e) for e in default.elts]
                    return [ast.unparse(default)]
    return None


@pytest.mark.parametrize("dag", ["skysmart_customers.py", "skysmart_backfill.py"])
def test_dags_default_sources_are_the_registry_sources(dag: str) -> None:
    default = _dag_default_sources(ROOT / "dags" / dag)
    assert default is not None, f"{dag} has no sources param"
    assert default in (list(windows.SOURCES), ["list(SOURCES)"], ["SOURCES"]), default


def test_contracts_allow_exactly_the_registered_sources() -> None:
    def allowed(contract: str, column: str) -> list[object]:
        (check,) = [c for c in load_contract(contract).column(column).checks if c.rule == "validValues"]
        return list(check.params["validValues"])

    assert allowed("customer", "source_system") == list(registry.names())
    assert allowed("load_audit", "source") == list(registry.names())
    key = [c for c in load_contract("customer").column("customer_key").checks if c.rule == "pattern"]
    assert key[0].params["pattern"] == r"^(skybiz|smartacc):\S.*$"


def test_a_source_registered_later_is_allowed_by_the_contracts_and_windows() -> None:
    spec = dataclasses.replace(SMARTACC, name="smartacc_sg", title="SmartAcc SG", max_window_days=7)
    before = load_contract("customer")
    registry.register_source(spec)
    try:
        (check,) = [
            c for c in load_contract("customer").column("source_system").checks if c.rule == "validValues"
        ]
        assert check.params["validValues"] == ["skybiz", "smartacc", "smartacc_sg"]
        assert windows.max_window_days("smartacc_sg") == 7
        with pytest.raises(WindowError, match="at most 7"):
            windows.Window.parse("smartacc_sg", "2026-01-01_2026-01-31")
        with pytest.raises(ConfigError, match="defined twice"):
            registry.register_source(dataclasses.replace(spec, title="another"))
        registry.register_source(spec)  # the same spec again: a no-op
    finally:
        registry.unregister_source("smartacc_sg")
    assert load_contract("customer") == before
    with pytest.raises(WindowError, match="unknown source 'smartacc_sg'"):
        windows.Window.parse("smartacc_sg", "2026-01-01_2026-01-07")


def test_a_source_without_a_normalizer_is_an_error_not_a_default() -> None:
    registry.register_source(dataclasses.replace(SMARTACC, name="bare", normalizer=""))
    try:
        with pytest.raises(NormalizeError, match="has no normalizer"):
            normalize_table("bare", pa.table({"AcCustomerID": ["1"]}))
    finally:
        registry.unregister_source("bare")
    with pytest.raises(NormalizeError, match="unknown source 'nowhere'"):
        normalize_table("nowhere", pa.table({"x": ["1"]}))


def test_spec_names_are_checked() -> None:
    with pytest.raises(ConfigError, match="source name"):
        dataclasses.replace(SMARTACC, name="Smart-Acc")
    with pytest.raises(ConfigError, match="rule_fields"):
        dataclasses.replace(SMARTACC, id_field="Nope")


def test_every_spec_part_imports_and_has_the_shape_it_promises() -> None:
    from pipelines.env import SourceEnv

    for spec in registry.specs():
        assert issubclass(spec.load("settings"), SourceEnv)
        assert spec.load("settings").model_config["env_prefix"] == spec.env_prefix
        assert callable(spec.load("client")) and callable(spec.load("window_adapter"))
        assert callable(spec.load("normalizer"))
        assert spec.load("window_adapter").source == spec.name
        load_contract(spec.raw_contract)
        for lookup in spec.lookups:
            load_contract(lookup.contract)


def test_settings_come_from_each_specs_model() -> None:
    settings = Settings.from_env(
        {
            "SKYSMART_SKYBIZ_URL": "http://127.0.0.1:1/modules",
            "SKYSMART_SKYBIZ_API_KEY": "k-123456",
            "SKYSMART_SKYBIZ_API_SECRET": "s-123456",
            "SKYSMART_SMARTACC_URL": " http://127.0.0.1:2 ",
            "SKYSMART_SMARTACC_API_KEY": "a-123456",
            "SKYSMART_HTTP_MAX_CONCURRENCY": "3",
            "SKYSMART_HTTP_READ_TIMEOUT": "",
        }
    )
    assert sorted(settings.sources) == ["skybiz", "smartacc"]
    assert settings.require("smartacc").url == "http://127.0.0.1:2"
    assert settings.require("smartacc").http.max_concurrency == 3
    assert settings.require("skybiz").http.read_timeout == 30.0  # empty is unset: the default
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"SKYSMART_HTTP_MAX_RETRIES": "many"})
    assert caught.value.field == "SKYSMART_HTTP_MAX_RETRIES"
    assert "SKYSMART_HTTP_MAX_RETRIES must be a whole number, got 'many'" in str(caught.value)


def test_importing_the_registry_imports_no_heavy_module() -> None:
    """windows.py and the DAG files import the registry: it must stay light (specs name heavy parts)."""
    code = (
        "import sys\n"
        "import pipelines.windows\n"
        "from pipelines.sources import registry\n"
        "[s.name for s in registry.specs()]\n"
        "heavy = ('requests', 'pandas', 'pyarrow', 'duckdb', 'tenacity', 'pyrate_limiter',\n"
        "         'pydantic_settings')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_normalizing_imports_no_http() -> None:
    code = (
        "import sys\n"
        "import pipelines.normalize\n"
        "import pipelines.sources.skybiz.normalize, pipelines.sources.smartacc.normalize\n"
        "http = ('requests', 'tenacity', 'pyrate_limiter', 'pipelines.http')\n"
        "print(sorted(m for m in http if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_a_spec_is_plain_data() -> None:
    assert isinstance(SMARTACC, SourceSpec)
    assert SMARTACC.lookup("terms").contract == "smartacc_terms_raw"
    assert SMARTACC.connection.secret_fields == ("api_key",)
    with pytest.raises(ConfigError):
        SMARTACC.lookup("currencies")
