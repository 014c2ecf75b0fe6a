"""Push SmartAcc customers SkyBiz lacks into SkyBiz, whenever the warehouse's customers change."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from skysmart_airflow.assets import CUSTOMERS_WAREHOUSE
from skysmart_airflow.operators import PushCustomersOperator

with DAG(
    dag_id="skysmart_skybiz_push",
    description="Create missing SmartAcc customers in SkyBiz through the outbox (exactly once)",
    schedule=[CUSTOMERS_WAREHOUSE],
    start_date=pendulum.datetime(2020, 1, 1, tz="Asia/Kuala_Lumpur"),
    catchup=False,
    max_active_runs=1,
    tags=["skysmart", "push", "skybiz"],
    default_args={"owner": "skysmart", "retries": 2, "retry_delay": timedelta(minutes=2)},
    params={
        "dry_run": Param(False, type="boolean", description="Only report what would be created"),
        "limit": Param(None, type=["null", "integer"], description="At most this many customers"),
    },
) as dag:
    PushCustomersOperator(task_id="push", dry_run="{{ params.dry_run }}", limit="{{ params.limit }}")
