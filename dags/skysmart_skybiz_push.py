"""Push SmartAcc customers SkyBiz lacks into SkyBiz, whenever the warehouse's customers change.

A real run fails (not retried) unless SkyBiz is loaded without gaps from the declared start of its history
(param ``skybiz_covered_from``, else ``SKYSMART_PUSH_SKYBIZ_COVERED_FROM``) through today, since customers
SkyBiz has would look missing and be created twice; load SkyBiz with ``skysmart_backfill``, or set the
``allow_partial_coverage`` param to push anyway. What SkyBiz already has is read from ``customer_matches``,
rebuilt by the ``identity`` task first.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from skysmart_airflow.assets import CUSTOMERS_WAREHOUSE
from skysmart_airflow.operators import PublishReportOperator, PushCustomersOperator, RebuildMatchesOperator

with DAG(
    dag_id="skysmart_skybiz_push",
    description="Create missing SmartAcc customers in SkyBiz through the outbox (exactly once)",
    doc_md="""
### skysmart_skybiz_push — create in SkyBiz the SmartAcc customers it lacks

**When:** after every warehouse load (the `skysmart_customers` Asset), or when triggered.

**What:** rebuilds the identity links between SkyBiz and SmartAcc records (`customer_matches`), then
creates the SmartAcc customers with no SkyBiz counterpart, in batches of at most 500, each exactly once
through the outbox table `skybiz_push_outbox`. A possible match is held for review, never created.

**Params:** `dry_run` (only report), `limit`, `skybiz_covered_from` (the first day of the tenant's SkyBiz
history, a **Malaysia date**), `allow_partial_coverage`. A real push refuses to run unless SkyBiz is loaded
without gaps from that date through today (Malaysia time), because customers SkyBiz already has would look
missing and be created twice.

**Report:** the `report` task then writes one HTML page — coverage per source and month, loads,
quarantine by rule, quality results, e-invoice readiness, push outcomes — to `report.html` at the lake's
root; its XCom `report_url` says where. It runs whatever the push did and never changes the run's state.
""",
    schedule=[CUSTOMERS_WAREHOUSE],
    start_date=pendulum.datetime(2020, 1, 1, tz="Asia/Kuala_Lumpur"),
    catchup=False,
    max_active_runs=1,
    tags=["skysmart", "push", "skybiz"],
    default_args={"owner": "skysmart", "retries": 2, "retry_delay": timedelta(minutes=2)},
    params={
        "dry_run": Param(False, type="boolean", description="Only report what would be created"),
        "limit": Param(None, type=["null", "integer"], description="At most this many customers"),
        "skybiz_covered_from": Param(
            None,
            type=["null", "string"],
            format="date",
            description="First day of the tenant's SkyBiz history (YYYY-MM-DD), loaded from then on",
        ),
        "allow_partial_coverage": Param(
            False,
            type="boolean",
            description="Push even if SkyBiz is not loaded without gaps up to recently (risks duplicates)",
        ),
    },
) as dag:
    identity = RebuildMatchesOperator(task_id="identity")
    push = PushCustomersOperator(
        task_id="push",
        report_only="{{ params.dry_run }}",
        limit="{{ params.limit }}",
        allow_partial_coverage="{{ params.allow_partial_coverage }}",
        skybiz_covered_from="{{ params.skybiz_covered_from }}",
    )
    # A teardown: the report is written whatever the push did, and the run's state stays the push's.
    report = PublishReportOperator(task_id="report").as_teardown()
    identity >> push >> report
