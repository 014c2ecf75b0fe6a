"""Reverse push: SmartAcc customers that SkyBiz lacks become SkyBiz create batches, exactly once.

``push_customers(warehouse, client, dry_run=..., limit=..., settings=PushSettings()) -> PushResult`` is the
entry point; ``plan_push`` decides without writing or sending (what a dry run prints); ``check_coverage``
says whether the warehouse holds enough of SkyBiz for a real push to be safe. The mapping, the
create document and the outbox are defined in ``data_contracts/`` (``smartacc_to_skybiz``,
``skybiz_customer_create``, ``skybiz_push_outbox``).
"""

from __future__ import annotations

from pipelines.push.coverage import Coverage, DayRange, assess_coverage
from pipelines.push.engine import (
    PlannedCustomer,
    PushPlan,
    PushProgress,
    PushResult,
    PushSettings,
    check_coverage,
    plan_push,
    push_customers,
)
from pipelines.push.mapping import PushMapping, load_mapping
from pipelines.push.outbox import Outbox, OutboxEntry

__all__ = [
    "Coverage",
    "DayRange",
    "Outbox",
    "OutboxEntry",
    "PlannedCustomer",
    "PushMapping",
    "PushPlan",
    "PushProgress",
    "PushResult",
    "PushSettings",
    "assess_coverage",
    "check_coverage",
    "load_mapping",
    "plan_push",
    "push_customers",
]
