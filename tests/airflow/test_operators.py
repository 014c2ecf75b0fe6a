"""Operators behave as Airflow operators: DAG defaults apply, template fields render to native values.

Each check compares with what Airflow itself does for its own operators (``EmptyOperator``) under the same
``default_args``, and holds for the serialized DAG the scheduler actually reads.
"""

from __future__ import annotations

import copy
import inspect
import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pendulum
import pytest

from pipelines.errors import ConfigError, redact
from skysmart_airflow.operators import (
    RETRY_DELAY,
    SKYSMART_RETRY_POLICY,
    ExtractWindowOperator,
    LoadWindowOperator,
    NormalizeWindowOperator,
    ProcessWindowsOperator,
    PublishReportOperator,
    PushCustomersOperator,
    RebuildMatchesOperator,
    ValidateWindowOperator,
)

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator

pytestmark = pytest.mark.xdist_group("airflow")

OPERATORS = (
    ExtractWindowOperator,
    NormalizeWindowOperator,
    ValidateWindowOperator,
    LoadWindowOperator,
    ProcessWindowsOperator,
    RebuildMatchesOperator,
    PublishReportOperator,
    PushCustomersOperator,
)
REQUIRED = {"window_ref": "skybiz:2025-01-01_2025-01-31", "window_refs": ["skybiz:2025-01-01_2025-01-31"]}


def _args(cls: type[BaseOperator]) -> dict[str, Any]:
    names = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in REQUIRED.items() if k in names}


def _dag(default_args: dict[str, Any] | None) -> Any:
    from airflow.sdk import DAG

    return DAG(
        dag_id=f"probe_{abs(hash(json.dumps(default_args, default=str)))}",
        schedule=None,
        start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
        default_args=default_args or {},
    )


@pytest.mark.parametrize("cls", OPERATORS, ids=lambda c: c.__name__)
def test_the_dags_retry_delay_wins_over_the_operators_default_as_for_airflows_own(
    cls: type[BaseOperator],
) -> None:
    from airflow.providers.standard.operators.empty import EmptyOperator

    with _dag({"retries": 3, "retry_delay": timedelta(minutes=1)}):
        ours = cls(task_id="ours", **_args(cls))
        theirs = EmptyOperator(task_id="theirs")
    assert theirs.retry_delay == timedelta(minutes=1)
    assert ours.retry_delay == theirs.retry_delay
    assert ours.retries == theirs.retries == 3
    assert ours.retry_policy is SKYSMART_RETRY_POLICY


@pytest.mark.parametrize("cls", OPERATORS, ids=lambda c: c.__name__)
def test_an_explicit_argument_wins_over_default_args_and_our_default_applies_alone(
    cls: type[BaseOperator],
) -> None:
    with _dag({"retry_delay": timedelta(minutes=1)}):
        explicit = cls(task_id="explicit", retry_delay=timedelta(seconds=7), **_args(cls))
    assert explicit.retry_delay == timedelta(seconds=7)
    with _dag(None):
        alone = cls(task_id="alone", **_args(cls))
    names = inspect.signature(cls.__init__).parameters
    # The step operators' own default; the others keep Airflow's.
    from airflow.providers.standard.operators.empty import EmptyOperator

    with _dag(None):
        airflow_default = EmptyOperator(task_id="e").retry_delay
    assert alone.retry_delay == (RETRY_DELAY if "retry_delay" in names else airflow_default)


def test_mapped_operators_take_the_dags_delay_and_our_retry_policy() -> None:
    with _dag({"retries": 2, "retry_delay": timedelta(minutes=1)}):
        mapped = ExtractWindowOperator.partial(task_id="extract").expand(window_ref=["a", "b"])
        plain = ExtractWindowOperator.partial(task_id="plain", retry_delay=timedelta(seconds=5)).expand(
            window_ref=["a"]
        )
    assert mapped.retry_delay == timedelta(minutes=1)
    assert mapped.partial_kwargs["retry_policy"] is SKYSMART_RETRY_POLICY
    assert plain.retry_delay == timedelta(seconds=5)


@pytest.mark.parametrize("dag_id", ["skysmart_customers", "skysmart_backfill", "skysmart_skybiz_push"])
def test_every_task_of_the_real_dags_retries_after_the_dags_own_delay(dagbag: Any, dag_id: str) -> None:
    """Checked on the serialized DAG, which is what the scheduler uses to schedule a retry."""
    from airflow.serialization.serialized_objects import DagSerialization

    dag = dagbag.get_dag(dag_id)
    expected = dag.default_args["retry_delay"]
    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    for task in serialized.tasks:
        assert task.retry_delay == expected, (dag_id, task.task_id, task.retry_delay)
    for task in dag.tasks:
        if task.task_id not in ("plan", "batches"):
            policy = (
                task.partial_kwargs["retry_policy"] if hasattr(task, "partial_kwargs") else task.retry_policy
            )
            assert policy is not None, task.task_id


@pytest.mark.parametrize("cls", OPERATORS, ids=lambda c: c.__name__)
def test_every_template_field_is_the_argument_of_the_same_name(cls: type[BaseOperator]) -> None:
    """Airflow renders, maps (``expand``) and shows template fields by the ``__init__`` argument's name."""
    names = inspect.signature(cls.__init__).parameters
    assert set(cls.template_fields) <= set(names), cls.template_fields
    operator = cls(task_id="t", **_args(cls))
    for name in cls.template_fields:
        assert hasattr(operator, name)


def _render_push(dag: Any, params: dict[str, Any]) -> Any:
    """Render a copy of the DAG's push task (rendering replaces the templates on the object)."""
    task = copy.deepcopy(dag.get_task("push"))
    task.render_template_fields({"params": params})
    return task


def test_push_params_render_as_native_values(dagbag: Any) -> None:
    dag = dagbag.get_dag("skysmart_skybiz_push")
    task = _render_push(
        dag, {"dry_run": True, "limit": 25, "allow_partial_coverage": False, "skybiz_covered_from": None}
    )
    assert task.report_only is True
    assert task.limit == 25
    assert task.allow_partial_coverage is False
    assert task.skybiz_covered_from is None
    task = _render_push(
        dagbag.get_dag("skysmart_skybiz_push"),
        {
            "dry_run": False,
            "limit": None,
            "allow_partial_coverage": True,
            "skybiz_covered_from": "2020-01-01",
        },
    )
    assert (task.report_only, task.limit, task.allow_partial_coverage) == (False, None, True)
    assert task.skybiz_covered_from in ("2020-01-01", pendulum.date(2020, 1, 1))


def test_push_refuses_flags_it_would_have_to_guess() -> None:
    from skysmart_airflow.operators import _flag, _limit

    assert _flag("report_only", True) is True
    for spelled in ("False", "true", "0", "", "None"):
        with pytest.raises(ConfigError, match="report_only must be true or false"):
            _flag("report_only", spelled)
    assert _limit(None) is None and _limit(3) == 3
    for wrong in ("3", -1, True):
        with pytest.raises(ConfigError, match="limit"):
            _limit(wrong)


# -- the lake hook ---------------------------------------------------------------------------------------


def test_lake_hook_reads_an_aws_connection_and_registers_its_secrets(
    airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.lake import object_store_options
    from skysmart_airflow.lake_hook import LakeHook

    conn = {
        "conn_type": "aws",
        "login": "AKIAHOOKTESTKEY1",
        "password": "hook-test-secret-value-9f3k",
        "extra": {"endpoint_url": "http://127.0.0.1:9/", "region_name": "ap-southeast-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SKYSMART_LAKE_DEFAULT", json.dumps(conn))
    hook = LakeHook()
    assert hook.get_storage_options() == {
        "key": "AKIAHOOKTESTKEY1",
        "secret": "hook-test-secret-value-9f3k",
        "endpoint_url": "http://127.0.0.1:9",
        "client_kwargs": {"region_name": "ap-southeast-1"},
    }
    assert redact("hook-test-secret-value-9f3k AKIAHOOKTESTKEY1") == "*** ***"
    try:
        hook.configure("lake")  # a local lake: nothing to configure
        assert "secret" not in object_store_options()
        hook.configure("s3://bucket/lake")
        assert object_store_options()["secret"] == "hook-test-secret-value-9f3k"
    finally:
        from pipelines.lake import configure_object_store

        configure_object_store(None)


def test_lake_hook_without_a_connection(airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.lake import object_store_options
    from skysmart_airflow.lake_hook import LakeHook

    monkeypatch.delenv("AIRFLOW_CONN_SKYSMART_LAKE_DEFAULT", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    LakeHook().configure("s3://bucket/lake")  # the default missing: the worker's own AWS environment
    assert "key" not in object_store_options()
    with pytest.raises(ConfigError, match="lake connection 'no_such_lake' is not defined"):
        LakeHook("no_such_lake").configure("s3://bucket/lake")
    monkeypatch.setenv(
        "AIRFLOW_CONN_HALF_LAKE", json.dumps({"conn_type": "skysmart_lake", "login": "AKIAONLYTHEKEY"})
    )
    with pytest.raises(ConfigError, match="needs both"):
        LakeHook("half_lake").configure("s3://bucket/lake")


def test_lake_connection_form_masks_the_secret_fields() -> None:
    from skysmart_airflow.lake_hook import connection_type_info

    info = connection_type_info()
    assert info["connection-type"] == "skysmart_lake"
    assert info["conn-fields"]["aws_session_token"]["schema"]["format"] == "password"
    assert "password" not in info["ui-field-behaviour"]["hidden-fields"]
