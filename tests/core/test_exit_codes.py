"""Exit codes: one table on the error types, and ``skysmart run``'s code is the worst of its windows'."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import errors
from pipelines.errors import EXIT_PRECEDENCE, SkysmartError, worst_exit_code
from skysmart_sandbox.server import SandboxServer

# One row per documented code: an error type that must carry it.
TABLE = [
    (errors.ConfigError, 2),
    (errors.HostNotFoundError, 2),
    (errors.WindowError, 2),
    (errors.RequestRejectedError, 2),
    (errors.LakeError, 2),
    (errors.ContractError, 2),
    (errors.WarehouseError, 2),
    (errors.PushCoverageError, 2),
    (errors.AuthenticationError, 3),
    (errors.PermissionDeniedError, 3),
    (errors.TransientApiError, 4),
    (errors.RateLimitedError, 4),
    (errors.RetriesExhaustedError, 4),
    (errors.TransientWarehouseError, 4),
    (errors.DataQualityError, 5),
    (errors.NormalizeError, 5),
    (errors.PushValidationError, 5),
    (errors.PushConflictError, 6),
    (errors.SkysmartError, 1),
]


@pytest.mark.parametrize(("kind", "code"), TABLE, ids=[k.__name__ for k, _ in TABLE])
def test_each_error_type_carries_its_documented_exit_code(kind: type[SkysmartError], code: int) -> None:
    assert kind.exit_code == code
    assert f"{code}     " in errors.__doc__  # the table in the module's docstring lists the code


def test_every_error_type_has_a_code_from_the_table() -> None:
    def subclasses(kind: type[SkysmartError]) -> list[type[SkysmartError]]:
        return [kind, *(s for sub in kind.__subclasses__() for s in subclasses(sub))]

    assert {kind.exit_code for kind in subclasses(SkysmartError)} <= set(EXIT_PRECEDENCE)


@pytest.mark.parametrize(
    ("codes", "worst"),
    [
        ([], 0),
        ([0, 0], 0),
        ([4, 4], 4),
        ([4, 3], 3),  # a refused credential beats "retry later": retrying will not fix it
        ([4, 5, 6], 5),
        ([6, 4], 6),
        ([2, 3], 3),
        ([5, 1, 3], 1),  # a bug beats everything
        ([130], 1),  # an unknown code is treated as a bug, never as success
    ],
)
def test_the_worst_exit_code_of_several(codes: list[int], worst: int) -> None:
    assert worst_exit_code(codes) == worst


@pytest.mark.slow
def test_run_with_a_refused_secret_exits_3_with_the_reason_on_stderr(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKYSMART_")}
    env.update(sandbox.endpoints.as_env())
    env.update(SKYSMART_SKYBIZ_API_SECRET="wrong-secret-" + "x" * 30, SKYSMART_HTTP_REQUESTS_PER_SECOND="0")
    places = ["--lake", str(tmp_path / "lake"), "--warehouse", str(tmp_path / "w.duckdb")]
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--from", "2024-01-01", "--to", "2024-02-29", *places],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 3, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    # Both SkyBiz windows say why on stderr; SmartAcc's windows loaded and say nothing there.
    assert [line.split(": ")[1].split()[0] for line in lines] == [
        "skybiz:2024-01-01_2024-01-31",
        "skybiz:2024-02-01_2024-02-29",
    ], result.stderr
    assert all("Invalid API credentials" in line for line in lines)
    assert "wrong-secret" not in result.stderr + result.stdout
