"""Operators: each stores its arguments and calls one ``pipelines.steps`` function in ``execute``.

They return the step's small, secret-free dict (lake URLs, counts), which becomes the task's XCom. Whether a
failure is retried is decided by the error's type (``retryable`` in :mod:`pipelines.errors`) through the
Airflow 3 retry policy built by :func:`skysmart_retry_policy`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator, ExceptionRetryPolicy, RetryAction, RetryRule

from pipelines import errors
from pipelines.config import Settings

DEFAULT_SKYBIZ_CONN = "skybiz_default"
DEFAULT_SMARTACC_CONN = "smartacc_default"
DEFAULT_WAREHOUSE_CONN = "skysmart_warehouse_default"


def _subclasses(cls: type[errors.SkysmartError]) -> list[type[errors.SkysmartError]]:
    found: list[type[errors.SkysmartError]] = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def skysmart_retry_policy() -> ExceptionRetryPolicy:
    """Retry the error types marked ``retryable``; fail the other skysmart errors at once.

    The rules are generated from the hierarchy, so adding a retryable error type needs no change here.
    """
    retryable = sorted(
        {f"{c.__module__}.{c.__qualname__}" for c in _subclasses(errors.SkysmartError) if c.retryable}
    )
    return ExceptionRetryPolicy(
        rules=[
            RetryRule(exception=list(retryable), action=RetryAction.RETRY, reason="transient: retrying"),
            RetryRule(
                exception="pipelines.errors.SkysmartError",
                action=RetryAction.FAIL,
                reason="not retryable: fix the cause, then clear the task",
            ),
        ]
    )


def lake_url_from_environment() -> str:
    """The lake URL of this deployment: Airflow Variable ``skysmart_lake``, else ``SKYSMART_LAKE``."""
    from airflow.sdk import Variable

    fallback = os.environ.get("SKYSMART_LAKE", "lake")
    return str(Variable.get("skysmart_lake", default=fallback))


class SkysmartStepOperator(BaseOperator):
    """Shared arguments of the window steps; subclasses name the step."""

    template_fields: Sequence[str] = ("window_ref", "lake_url")
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        window_ref: str,
        lake_url: str | None = None,
        skybiz_conn_id: str = DEFAULT_SKYBIZ_CONN,
        smartacc_conn_id: str = DEFAULT_SMARTACC_CONN,
        warehouse_conn_id: str = DEFAULT_WAREHOUSE_CONN,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retry_policy", skysmart_retry_policy())
        kwargs.setdefault("retry_delay", timedelta(seconds=30))
        super().__init__(**kwargs)
        self.window_ref = window_ref
        self.lake_url = lake_url
        self.skybiz_conn_id = skybiz_conn_id
        self.smartacc_conn_id = smartacc_conn_id
        self.warehouse_conn_id = warehouse_conn_id

    def settings(self, *, vendor: bool = False, warehouse: bool = False) -> Settings:
        """Settings reading only the connections this step needs."""
        from skysmart_airflow.hooks import build_settings

        source = self.window_ref.partition(":")[0]
        return build_settings(
            lake_url=self.lake_url or lake_url_from_environment(),
            warehouse_conn_id=self.warehouse_conn_id if warehouse else None,
            skybiz_conn_id=self.skybiz_conn_id if vendor and source == "skybiz" else None,
            smartacc_conn_id=self.smartacc_conn_id if vendor and source == "smartacc" else None,
        )


class ExtractWindowOperator(SkysmartStepOperator):
    """Extract one window (``skybiz:2024-01-01_2024-01-31``) from its vendor into the raw lake."""

    def execute(self, context: Any) -> dict[str, Any]:
        """Run :func:`pipelines.steps.extract_step`."""
        from pipelines.steps import extract_step

        return extract_step(self.settings(vendor=True), self.window_ref)


class NormalizeWindowOperator(SkysmartStepOperator):
    """Normalize one raw window into the common model and the quarantine."""

    def execute(self, context: Any) -> dict[str, Any]:
        """Run :func:`pipelines.steps.normalize_step`."""
        from pipelines.steps import normalize_step

        return normalize_step(self.settings(), self.window_ref)


class ValidateWindowOperator(SkysmartStepOperator):
    """Validate one normalized window with the contract's expectation suite."""

    def execute(self, context: Any) -> dict[str, Any]:
        """Run :func:`pipelines.steps.validate_step`."""
        from pipelines.steps import validate_step

        return validate_step(self.settings(), self.window_ref)


class LoadWindowOperator(SkysmartStepOperator):
    """Merge one normalized window into the warehouse."""

    def execute(self, context: Any) -> dict[str, Any]:
        """Run :func:`pipelines.steps.load_step`."""
        from pipelines.steps import load_step

        return load_step(self.settings(warehouse=True), self.window_ref)


class ProcessWindowsOperator(BaseOperator):
    """Normalize, validate and load a batch of windows of one source in one task (the backfill's batches).

    One task process pays the pandas and great-expectations imports once for the whole batch, instead of
    three task processes per window paying them each time.
    """

    template_fields: Sequence[str] = ("window_refs", "lake_url")
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        window_refs: list[str],
        lake_url: str | None = None,
        warehouse_conn_id: str = DEFAULT_WAREHOUSE_CONN,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retry_policy", skysmart_retry_policy())
        kwargs.setdefault("retry_delay", timedelta(seconds=30))
        super().__init__(**kwargs)
        self.window_refs = window_refs
        self.lake_url = lake_url
        self.warehouse_conn_id = warehouse_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        """Run :func:`pipelines.steps.process_batch_step`."""
        from pipelines.steps import process_batch_step
        from skysmart_airflow.hooks import build_settings

        settings = build_settings(
            lake_url=self.lake_url or lake_url_from_environment(), warehouse_conn_id=self.warehouse_conn_id
        )
        return process_batch_step(settings, list(self.window_refs))


class RebuildMatchesOperator(BaseOperator):
    """Rebuild ``customer_matches``: which SkyBiz and SmartAcc records are one business.

    The push reads those matches and nothing else, so its DAG runs this first; a rebuild is idempotent.
    """

    ui_color = "#e8f3fd"

    def __init__(self, *, warehouse_conn_id: str = DEFAULT_WAREHOUSE_CONN, **kwargs: Any) -> None:
        kwargs.setdefault("retry_policy", skysmart_retry_policy())
        super().__init__(**kwargs)
        self.warehouse_conn_id = warehouse_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        """Run :func:`pipelines.identity.store.rebuild_step`."""
        from pipelines.identity.store import rebuild_step
        from skysmart_airflow.hooks import build_settings

        settings = build_settings(
            lake_url=lake_url_from_environment(), warehouse_conn_id=self.warehouse_conn_id
        )
        return rebuild_step(settings.warehouse_url)


class PushCustomersOperator(BaseOperator):
    """Create the SmartAcc customers SkyBiz lacks (or, with ``dry_run``, report what would happen).

    ``allow_partial_coverage`` pushes even when SkyBiz is not loaded without gaps up to recently;
    ``skybiz_covered_from`` (YYYY-MM-DD) declares the first day of the tenant's SkyBiz history.
    """

    template_fields: Sequence[str] = ("report_only", "limit", "allow_partial_coverage", "skybiz_covered_from")
    ui_color = "#fdf2e3"

    def __init__(
        self,
        *,
        dry_run: bool | str = False,
        limit: int | str | None = None,
        allow_partial_coverage: bool | str = False,
        skybiz_covered_from: str | None = None,
        skybiz_conn_id: str = DEFAULT_SKYBIZ_CONN,
        warehouse_conn_id: str = DEFAULT_WAREHOUSE_CONN,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retry_policy", skysmart_retry_policy())
        super().__init__(**kwargs)
        # BaseOperator already has a dry_run() method, so the flag lives under another name.
        self.report_only = dry_run
        self.limit = limit
        self.allow_partial_coverage = allow_partial_coverage
        self.skybiz_covered_from = skybiz_covered_from
        self.skybiz_conn_id = skybiz_conn_id
        self.warehouse_conn_id = warehouse_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        """Run :func:`pipelines.steps.push_step`."""
        from pipelines.steps import push_step
        from skysmart_airflow.hooks import build_settings

        settings = build_settings(
            lake_url=lake_url_from_environment(),
            warehouse_conn_id=self.warehouse_conn_id,
            skybiz_conn_id=self.skybiz_conn_id,
        )
        limit = int(self.limit) if self.limit not in (None, "", "None") else None
        return push_step(
            settings,
            dry_run=_truthy(self.report_only),
            limit=limit,
            allow_partial_coverage=_truthy(self.allow_partial_coverage),
            skybiz_covered_from=(
                None if self.skybiz_covered_from in (None, "", "None") else str(self.skybiz_covered_from)
            ),
        )


def _truthy(value: bool | str) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")
