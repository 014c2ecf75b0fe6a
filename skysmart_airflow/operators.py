"""Operators: each stores its arguments and calls one ``pipelines.steps`` function in ``execute``.

They return the step's small, secret-free dict (lake URLs, counts), which becomes the task's XCom. Whether a
failure is retried is decided by the error's type (``retryable`` in :mod:`pipelines.errors`) through the
Airflow 3 retry policy built by :func:`skysmart_retry_policy`.

``retry_policy`` and ``retry_delay`` are parameters of each ``__init__`` with skysmart's defaults, not
values forced into ``kwargs``: Airflow fills an operator's named parameters from the DAG's ``default_args``
(and ``partial()`` reads their defaults for mapped tasks), so a DAG's own delay wins over ours, as it does
for every Airflow operator.

Steps that read or write the lake open it by URL (``lake_url``, else the ``skysmart_lake`` Variable, else
``SKYSMART_LAKE``) with the object-store credentials of the ``lake_conn_id`` connection (see
:mod:`skysmart_airflow.lake_hook`), so a task runs the same on any worker.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator, ExceptionRetryPolicy, RetryAction, RetryRule
from airflow.sdk.definitions.retry_policy import RetryPolicy

from pipelines import errors
from pipelines.config import Settings

DEFAULT_SKYBIZ_CONN = "skybiz_default"
DEFAULT_SMARTACC_CONN = "smartacc_default"
DEFAULT_WAREHOUSE_CONN = "skysmart_warehouse_default"
DEFAULT_LAKE_CONN = "skysmart_lake_default"
RETRY_DELAY = timedelta(seconds=30)
"""Delay before a retry when neither the operator call nor the DAG's ``default_args`` set one."""


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


SKYSMART_RETRY_POLICY = skysmart_retry_policy()
"""The default ``retry_policy`` of every skysmart operator (also what ``partial()`` gives mapped ones)."""


def lake_url_from_environment() -> str:
    """The lake URL of this deployment: Airflow Variable ``skysmart_lake``, else ``SKYSMART_LAKE``."""
    from airflow.sdk import Variable

    fallback = os.environ.get("SKYSMART_LAKE", "lake")
    return str(Variable.get("skysmart_lake", default=fallback))


def open_lake_url(lake_url: str | None, lake_conn_id: str | None) -> str:
    """The lake URL this task uses, with this process's object-store access set from ``lake_conn_id``."""
    from skysmart_airflow.lake_hook import LakeHook

    url = lake_url or lake_url_from_environment()
    LakeHook(lake_conn_id).configure(url)
    return url


class SkysmartStepOperator(BaseOperator):
    """Shared arguments of the window steps; subclasses name the step."""

    template_fields: Sequence[str] = ("window_ref", "lake_url")
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        window_ref: str,
        lake_url: str | None = None,
        lake_conn_id: str | None = DEFAULT_LAKE_CONN,
        skybiz_conn_id: str = DEFAULT_SKYBIZ_CONN,
        smartacc_conn_id: str = DEFAULT_SMARTACC_CONN,
        warehouse_conn_id: str = DEFAULT_WAREHOUSE_CONN,
        conn_ids: Mapping[str, str] | None = None,
        retry_policy: RetryPolicy | None = SKYSMART_RETRY_POLICY,
        retry_delay: timedelta | float = RETRY_DELAY,
        **kwargs: Any,
    ) -> None:
        super().__init__(retry_policy=retry_policy, retry_delay=retry_delay, **kwargs)
        self.window_ref = window_ref
        self.lake_url = lake_url
        self.lake_conn_id = lake_conn_id
        self.skybiz_conn_id = skybiz_conn_id
        self.smartacc_conn_id = smartacc_conn_id
        self.warehouse_conn_id = warehouse_conn_id
        self.conn_ids = dict(conn_ids or {})

    def vendor_conn_id(self, source: str) -> str:
        """The connection a source's windows read: ``conn_ids``, the named ones, else ``<source>_default``.

        So a source registered later (docs/ADDING_A_SOURCE.md) runs in the DAGs with no edit here.
        """
        named = {"skybiz": self.skybiz_conn_id, "smartacc": self.smartacc_conn_id}
        return self.conn_ids.get(source) or named.get(source) or f"{source}_default"

    def settings(self, *, vendor: bool = False, warehouse: bool = False) -> Settings:
        """Settings reading only the connections this step needs."""
        from skysmart_airflow.hooks import build_settings

        source = self.window_ref.partition(":")[0]
        vendors: dict[str, Any] = {f"{source}_conn_id": self.vendor_conn_id(source)} if vendor else {}
        return build_settings(
            lake_url=open_lake_url(self.lake_url, self.lake_conn_id),
            warehouse_conn_id=self.warehouse_conn_id if warehouse else None,
            **vendors,
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


class LakeAndWarehouseOperator(BaseOperator):
    """Shared arguments of the steps that read the lake and write the warehouse as a whole."""

    template_fields: Sequence[str] = ("lake_url",)

    def __init__(
        self,
        *,
        lake_url: str | None = None,
        lake_conn_id: str | None = DEFAULT_LAKE_CONN,
        warehouse_conn_id: str = DEFAULT_WAREHOUSE_CONN,
        retry_policy: RetryPolicy | None = SKYSMART_RETRY_POLICY,
        retry_delay: timedelta | float = RETRY_DELAY,
        **kwargs: Any,
    ) -> None:
        super().__init__(retry_policy=retry_policy, retry_delay=retry_delay, **kwargs)
        self.lake_url = lake_url
        self.lake_conn_id = lake_conn_id
        self.warehouse_conn_id = warehouse_conn_id

    def settings(self) -> Settings:
        """Settings with this task's lake (and its object-store access) and warehouse."""
        from skysmart_airflow.hooks import build_settings

        return build_settings(
            lake_url=open_lake_url(self.lake_url, self.lake_conn_id), warehouse_conn_id=self.warehouse_conn_id
        )


class ProcessWindowsOperator(LakeAndWarehouseOperator):
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
        retry_policy: RetryPolicy | None = SKYSMART_RETRY_POLICY,
        retry_delay: timedelta | float = RETRY_DELAY,
        **kwargs: Any,
    ) -> None:
        # Named here too: Airflow maps, renders and shows template fields by this signature's names.
        super().__init__(lake_url=lake_url, retry_policy=retry_policy, retry_delay=retry_delay, **kwargs)
        self.window_refs = window_refs

    def execute(self, context: Any) -> dict[str, Any]:
        """Run :func:`pipelines.steps.process_batch_step`."""
        from pipelines.steps import process_batch_step

        return process_batch_step(self.settings(), list(self.window_refs))


class RebuildMatchesOperator(BaseOperator):
    """Rebuild ``customer_matches``: which SkyBiz and SmartAcc records are one business.

    The push reads those matches and nothing else, so its DAG runs this first; a rebuild is idempotent.
    """

    ui_color = "#e8f3fd"

    def __init__(
        self,
        *,
        warehouse_conn_id: str = DEFAULT_WAREHOUSE_CONN,
        retry_policy: RetryPolicy | None = SKYSMART_RETRY_POLICY,
        **kwargs: Any,
    ) -> None:
        super().__init__(retry_policy=retry_policy, **kwargs)
        self.warehouse_conn_id = warehouse_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        """Run :func:`pipelines.identity.store.rebuild_step`."""
        from pipelines.identity.store import rebuild_step
        from skysmart_airflow.hooks import build_settings

        settings = build_settings(
            lake_url=lake_url_from_environment(), warehouse_conn_id=self.warehouse_conn_id
        )
        return rebuild_step(settings.warehouse_url)


class PublishReportOperator(LakeAndWarehouseOperator):
    """Publish the one-page HTML report of the warehouse to the lake's root (``report.html``).

    Its XCom ``report_url`` is where the page is; a DAG runs it as a teardown after its work, so it is
    written whatever the work's outcome and never changes the run's state.
    """

    ui_color = "#fdf6e3"

    def execute(self, context: Any) -> dict[str, Any]:
        """Run :func:`pipelines.steps.report_step`."""
        from pipelines.steps import report_step

        return report_step(self.settings())


class PushCustomersOperator(BaseOperator):
    """Create the SmartAcc customers SkyBiz lacks (or, with ``report_only``, report what would happen).

    ``allow_partial_coverage`` pushes even when SkyBiz is not loaded without gaps up to recently;
    ``skybiz_covered_from`` (YYYY-MM-DD) declares the first day of the tenant's SkyBiz history.

    The flag is ``report_only``, not ``dry_run``: ``BaseOperator.dry_run()`` is a method Airflow calls, and
    a template field must be the attribute its argument is stored in (Airflow renders, maps and shows
    fields by that name). Every argument is a template field, and templates render to native Python values
    (Airflow's ``render_template_as_native_obj``, on by default here), so ``"{{ params.dry_run }}"`` arrives
    as the boolean the param holds and ``"{{ params.limit }}"`` as an int or ``None``; a string where a flag
    belongs is refused rather than guessed from its spelling.
    """

    template_fields: Sequence[str] = ("report_only", "limit", "allow_partial_coverage", "skybiz_covered_from")
    ui_color = "#fdf2e3"

    def __init__(
        self,
        *,
        report_only: bool | str = False,
        limit: int | str | None = None,
        allow_partial_coverage: bool | str = False,
        skybiz_covered_from: str | None = None,
        skybiz_conn_id: str = DEFAULT_SKYBIZ_CONN,
        warehouse_conn_id: str = DEFAULT_WAREHOUSE_CONN,
        retry_policy: RetryPolicy | None = SKYSMART_RETRY_POLICY,
        render_template_as_native_obj: bool | None = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            retry_policy=retry_policy, render_template_as_native_obj=render_template_as_native_obj, **kwargs
        )
        self.report_only = report_only
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
        return push_step(
            settings,
            dry_run=_flag("report_only", self.report_only),
            limit=_limit(self.limit),
            allow_partial_coverage=_flag("allow_partial_coverage", self.allow_partial_coverage),
            skybiz_covered_from=None if self.skybiz_covered_from is None else str(self.skybiz_covered_from),
        )


def _flag(name: str, value: Any) -> bool:
    """A boolean argument as the param gave it; a string is a mistake in the DAG, not a value to guess."""
    if isinstance(value, bool):
        return value
    raise errors.ConfigError(
        f"{name} must be true or false, got {type(value).__name__} {value!r}", field=name
    )


def _limit(value: Any) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise errors.ConfigError(f"limit must be a whole number or empty, got {value!r}", field="limit")
