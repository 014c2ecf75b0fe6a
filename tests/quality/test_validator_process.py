"""The validator process: great-expectations on the second core, the run's own process as the fallback."""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pipelines.lake import CUSTOMERS, NORMALIZED, Lake
from pipelines.steps import validate_refs
from pipelines.validator import UNUSED_GX_BACKENDS, ValidatorProcess
from pipelines.windows import Window
from tests.quality.frames import customer_table

WINDOWS = [
    Window(source, date(2024, m, 1), date(2024, m, 28)) for m in (1, 2) for source in ("skybiz", "smartacc")
]
# Facts of a result that name the moment or the duration of a validation, not its outcome.
TIMING = ("seconds",)


def _lake(tmp_path: Path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    for window in WINDOWS:
        lake.write_table(
            NORMALIZED, window.source, CUSTOMERS, window, customer_table(15, window.source, window)
        )
    return lake


def _outcome(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in TIMING}


def test_the_worker_answers_what_validating_in_this_process_answers(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    refs = [w.ref for w in WINDOWS]
    here = validate_refs(lake.url, refs)

    with ValidatorProcess() as validator:
        there = validator.submit(lake.url, refs).result()

    assert there is not None
    assert [_outcome(r) for r in there] == [_outcome(r) for r in here]
    assert {r["source"] for r in there} == {"skybiz", "smartacc"} and all(r["success"] for r in there)


def _imported(names: tuple[str, ...]) -> dict[str, bool]:
    return {name: sys.modules.get(name) is not None for name in names}


def test_the_worker_validates_without_importing_the_backends_gx_would_load_for_nothing(
    tmp_path: Path,
) -> None:
    lake = _lake(tmp_path)
    with ValidatorProcess() as validator:
        answer = validator.submit(lake.url, [w.ref for w in WINDOWS]).result()
        imported = validator._pool.submit(_imported, UNUSED_GX_BACKENDS).result()
    assert answer is not None and all(r["success"] for r in answer)
    assert imported == dict.fromkeys(UNUSED_GX_BACKENDS, False)


def test_a_worker_that_died_answers_none_so_the_caller_validates_itself(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    with ValidatorProcess() as validator:
        assert validator.submit(lake.url, [WINDOWS[0].ref]).result() is not None
        (pid,) = validator._pool._processes  # the one worker
        os.kill(pid, signal.SIGKILL)
        assert validator.submit(lake.url, [WINDOWS[0].ref]).result() is None


def test_a_window_the_worker_cannot_read_answers_none(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    missing = Window("skybiz", date(2023, 1, 1), date(2023, 1, 31))
    with ValidatorProcess() as validator:
        assert validator.submit(lake.url, [WINDOWS[0].ref, missing.ref]).result() is None


def test_a_bug_in_the_worker_reaches_the_caller_and_later_batches_are_still_answered(tmp_path: Path) -> None:
    """An error that is not a SkysmartError is a bug: raised where the answer is read, never read as None."""
    lake = _lake(tmp_path)
    with ValidatorProcess() as validator:
        broken = validator.submit(123, [WINDOWS[0].ref])  # type: ignore[arg-type]  # not a lake URL
        first, second = (validator.submit(lake.url, [w.ref]) for w in WINDOWS[:2])
        with pytest.raises(AttributeError):
            broken.result(timeout=300)
        answers = [first.result(timeout=300), second.result(timeout=300)]
    assert [[r["window"] for r in a or []] for a in answers] == [[WINDOWS[0].key], [WINDOWS[1].key]]


def test_idle_only_once_warm_and_every_batch_it_was_sent_is_answered(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    with ValidatorProcess() as validator:
        assert not validator.idle()  # just spawned: still importing great-expectations
        deadline = time.monotonic() + 120
        while not validator.idle() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert validator.idle()
        answer = validator.submit(lake.url, [w.ref for w in WINDOWS])
        assert not validator.idle()  # a batch of four windows takes GX far longer than this line
        assert answer.result() is not None
        assert validator.idle()
