"""great-expectations in a process of its own, so that ``skysmart run`` uses the machine's second core.

Importing GX costs some 4 s of CPU (scipy, altair and SQLAlchemy come with it) and its runs hold the GIL: in
the run's own process both serialize with extraction and normalizing, however many cores there are. A
spawned process imports GX and builds the suite while the first pages arrive, then validates the windows it
is sent and writes their reports to the lake; only small result dicts come back. It is handed the lake's URL
and window refs, never the settings: no secret crosses the process boundary.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Any, Final

#: Optional backends great-expectations imports whenever they are installed (Airflow brings both), for
#: datasources the validator never uses: it only validates pandas frames. Hidden in its process they read as
#: not installed, which GX supports; its start is about 0.35 s shorter (of about 1.7 s).
UNUSED_GX_BACKENDS: Final = ("sqlalchemy", "boto3")


class ValidatorProcess:
    """One spawned worker that validates windows; ``validate`` answers ``None`` when it cannot.

    ``None`` (the worker died, GX failed to import, a window's lake files could not be read) tells the caller
    to validate in its own process, where an error keeps its type and names its window.
    """

    def __init__(self) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_warm
        )
        # Start the worker (and its warm-up) now, not at the first batch; answered once it is warm.
        self._warm: Future[bool] = self._pool.submit(_ready)
        self._last: Future[list[dict[str, Any]] | None] | None = None

    def idle(self) -> bool:
        """Warm, and every batch submitted is answered: a batch sent now would start at once.

        Windows held back until then go in one batch, whose great-expectations run costs about what a
        small one does.
        """
        return self._warm.done() and (self._last is None or self._last.done())

    def submit(self, lake_url: str, window_refs: Sequence[str]) -> Future[list[dict[str, Any]] | None]:
        """:func:`pipelines.steps.validate_refs` in the worker, answered later (``None``: it could not).

        Batches are validated in the order they are submitted, while the caller goes on normalizing.
        """
        answer: Future[list[dict[str, Any]] | None] = Future()
        try:
            work = self._pool.submit(_validate, lake_url, list(window_refs))
        except (BrokenProcessPool, RuntimeError):  # the worker died earlier, or the pool is shut down
            answer.set_result(None)
            return answer

        def settle(done: Future[list[dict[str, Any]] | None]) -> None:
            try:
                answer.set_result(done.result())
            except (BrokenProcessPool, OSError, RuntimeError, CancelledError):
                answer.set_result(None)
            except BaseException as error:  # a bug in the worker: raised to the caller, never lost
                answer.set_exception(error)

        work.add_done_callback(settle)
        self._last = answer
        return answer

    def finish(self) -> None:
        """Wait until every batch submitted is answered, then let the worker exit without waiting for it."""
        if self._last is not None:
            self._last.result()
        self._pool.shutdown(wait=False)

    def close(self) -> None:
        """Stop the worker (a batch it is working on is finished; those not started are dropped)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ValidatorProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _warm() -> None:
    """Import GX and build the customer suite before the first batch arrives (failures surface later)."""
    for name in UNUSED_GX_BACKENDS:
        # None in sys.modules makes ``import name`` raise ImportError; a backend already imported stays.
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    try:
        from pipelines.contracts import load_contract
        from pipelines.quality.suite import build_suite

        build_suite(load_contract("customer"))
    except Exception:
        return  # the first validation imports it again, and reports the failure there


def _ready() -> bool:
    return True


def _validate(lake_url: str, window_refs: list[str]) -> list[dict[str, Any]] | None:
    from pipelines.errors import SkysmartError
    from pipelines.steps import validate_refs

    try:
        return validate_refs(lake_url, window_refs)
    except SkysmartError:
        return None
