"""Credentials never reach the lake, the manifests, the result that travels through XCom, or the logs."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.extract import extract_window
from pipelines.lake import Lake
from pipelines.steps import make_client
from pipelines.windows import Window
from skysmart_sandbox.server import SandboxServer
from skysmart_sandbox.skybiz import SkyBizCredentials
from skysmart_sandbox.smartacc import SmartAccCredentials
from tests.extract.extract_oracles import settings_for
from tests.fixtures.sandbox import sandbox_data

SKY_KEY = "sbx_CANARYskybizKEY0000000000000"
SKY_SECRET = "CANARYskybizSECRET00000000000000000000000000000"
SMA_KEY = "CANARYsmartaccKEY000000000000000"
SMA_PASSWORD = "CANARYsmartaccPW0000"
CANARIES = (SKY_KEY, SKY_SECRET, SMA_KEY, SMA_PASSWORD)


@pytest.fixture
def canary_sandbox():
    server = SandboxServer(
        data=sandbox_data(),
        seed=7,
        skybiz_credentials=SkyBizCredentials(api_key=SKY_KEY, api_secret=SKY_SECRET),
        smartacc_credentials=SmartAccCredentials(api_key=SMA_KEY, password=SMA_PASSWORD),
    )
    with server:
        yield server


def _everything_in(lake_root: Path) -> str:
    """Every byte of every file, plus the decoded values and metadata of every Parquet file."""
    parts: list[str] = []
    for path in sorted(p for p in lake_root.rglob("*") if p.is_file()):
        parts.append(path.as_posix())
        parts.append(path.read_bytes().decode("utf-8", errors="replace"))
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            parts.append(str(table.schema.metadata))
            parts.append(str(table.to_pylist()))
    return "\n".join(parts)


def test_no_credential_reaches_lake_result_or_logs(
    canary_sandbox: SandboxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    month = (date(2024, 3, 1), date(2024, 3, 31))
    login = {"SKYSMART_SMARTACC_API_KEY": "", "SKYSMART_SMARTACC_USERNAME": "sandbox"}
    runs = [
        ("skybiz", Window("skybiz", *month), {}),
        ("smartacc", Window("smartacc", *month), {}),  # API key as bearer token
        ("smartacc", Window("smartacc", date(2024, 4, 1), date(2024, 4, 30)), login),  # name + password
    ]
    results = []
    with caplog.at_level(logging.DEBUG):
        for source, window, env in runs:
            state = canary_sandbox.skybiz if source == "skybiz" else canary_sandbox.smartacc
            state.switches.inject("500")  # a retry, so the HTTP layer logs a failure on the way
            with make_client(settings_for(canary_sandbox, **env), source) as client:
                results.append(extract_window(client, window, lake))

    assert all(r.rows > 0 for r in results)
    assert "retrying" in caplog.text  # the failure path was logged...
    stored = _everything_in(tmp_path / "lake")
    assert "_manifest.json" in stored and '"request_ids"' in stored
    for canary in CANARIES:
        assert canary not in stored  # ...and no credential is in the lake (data, manifests, names)
        assert canary not in caplog.text
        assert canary not in repr(results)
