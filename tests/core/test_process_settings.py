"""The Arrow memory pool and BLAS threads of skysmart's processes (see ``pipelines/__init__.py``)."""

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


_THREADS = "import os, pipelines, numpy; print(len(os.listdir('/proc/self/task')))"


def _threads_after_numpy(env: dict[str, str]) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _THREADS], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return int(done.stdout)


def test_numpy_starts_no_blas_threads_in_skysmarts_processes() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}

    assert _threads_after_numpy(env) == 1


def test_a_blas_thread_count_the_operator_chose_is_kept() -> None:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}

    assert _threads_after_numpy(env) == 2
