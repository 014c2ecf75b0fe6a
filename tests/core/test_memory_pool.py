"""The Arrow memory pool skysmart's processes allocate from (see ``pipelines/__init__.py``)."""

from __future__ import annotations

import os
import subprocess
import sys

_BACKEND = "import pipelines, pyarrow; print(pyarrow.default_memory_pool().backend_name)"


def _backend(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _BACKEND], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def test_skysmart_allocates_arrow_memory_from_the_c_library() -> None:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}

    assert _backend(env) == "system"


def test_a_pool_the_operator_chose_is_kept() -> None:
    env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}

    assert _backend(env) == "mimalloc"
