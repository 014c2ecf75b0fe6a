"""``skysmart run`` with its lake on S3 builds the warehouse a local lake builds, and leaks no credential.

The real CLI in a subprocess, against the sandbox over HTTP, with ``SKYSMART_LAKE=s3://…`` and the standard
AWS variables (``AWS_ENDPOINT_URL`` pointing at moto on 127.0.0.1), loading a DuckDB file: the warehouse
takes its Arrow data from the lake layer, so DuckDB never needs object-storage access of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from skysmart_sandbox.server import SandboxServer
from tests.fixtures.s3 import S3Store
from tests.warehouse.snapshot import checksums

pytestmark = pytest.mark.slow

RANGE = ["--from", "2024-01-01", "--to", "2024-03-31"]


def _run(sandbox: SandboxServer, lake: str, warehouse: Path, extra_env: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYSMART_", "AWS_"))}
    env.update(sandbox.endpoints.as_env(), SKYSMART_HTTP_REQUESTS_PER_SECOND="0", **extra_env)
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", *RANGE, "--lake", lake, "--warehouse", str(warehouse)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout + result.stderr


def test_run_with_an_s3_lake_builds_the_warehouse_of_a_local_lake(
    sandbox: SandboxServer, s3_store: S3Store, tmp_path: Path
) -> None:
    local = tmp_path / "local.duckdb"
    _run(sandbox, str(tmp_path / "lake"), local, {})
    on_s3 = tmp_path / "s3.duckdb"
    output = _run(sandbox, s3_store.url("lake"), on_s3, s3_store.env())

    expected = checksums(str(local))
    assert expected["customers"][0] > 0 and expected["load_audit"][0] == 6
    assert checksums(str(on_s3)) == expected
    # The bucket holds the windows the local lake holds, and the local disk got nothing of the S3 run.
    manifests = sorted(
        k.removeprefix("lake/") for k in s3_store.object_keys("lake/") if k.endswith("/_manifest.json")
    )
    local_manifests = sorted(
        str(p.relative_to(tmp_path / "lake")) for p in (tmp_path / "lake").rglob("_manifest.json")
    )
    assert manifests == local_manifests
    assert sum(k.startswith("normalized/") for k in manifests) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lake", "local.duckdb", "s3.duckdb"]
    # Neither secret appears in what the run printed or in anything it stored.
    stored = b"".join(s3_store.read(k) for k in s3_store.object_keys())
    for secret in (s3_store.key, s3_store.secret):
        assert secret not in output
        assert secret.encode() not in stored
        assert secret.encode() not in on_s3.read_bytes()
