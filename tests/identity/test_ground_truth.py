"""Against the sandbox's ground truth, end to end: the push never plans a duplicate of what SkyBiz holds.

A sandbox whose history reaches today, ``run_pipeline`` over all of it (which rebuilds the matches), then the
push's plan. Twins typed differently on purpose (upper case, ``SDN. BHD.``, ``+603-``, a SkyBiz row
quarantined for currency ``XYZ``) are all in the data; none may be planned as a create.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from bench.identity import evaluate
from pipelines.config import Settings
from pipelines.push import PushSettings, plan_push
from pipelines.run import run_pipeline
from pipelines.warehouse import open_warehouse
from pipelines.windows import MYT
from skysmart_sandbox.data import TWIN_VARIANTS, generate
from skysmart_sandbox.server import SandboxServer

START = date(2025, 7, 1)


def test_no_twin_is_planned_as_a_create_and_same_pairs_are_true(tmp_path: Path) -> None:
    today = datetime.now(MYT).date()
    data = generate(2_000, 7, history_start=START, history_end=today, twin_variant_rate=0.05)
    with SandboxServer(data=data) as server:
        env = {**server.endpoints.as_env(), "SKYSMART_HTTP_REQUESTS_PER_SECOND": "0"}
        env |= {"SKYSMART_LAKE": str(tmp_path / "lake"), "SKYSMART_WAREHOUSE": str(tmp_path / "w.duckdb")}
        settings = Settings.from_env(env)
        summary = run_pipeline(settings, START, today)
    with open_warehouse(settings.warehouse_url) as warehouse:
        plan = plan_push(warehouse, settings=PushSettings(skybiz_covered_from=START))
        quality = evaluate(data, warehouse, plan)
        quarantined_twins = warehouse.query(
            "SELECT count(*) FROM customer_matches WHERE skybiz_record = 'customer_quarantine' "
            "AND match_class = 'same'"
        )[0][0]

    assert summary.totals["windows_failed"] == 0
    assert plan.coverage_problem is None  # SkyBiz loaded from its first day through today
    assert set(quality.variants) == set(TWIN_VARIANTS) and min(quality.variants.values()) > 0
    assert quality.duplicates == 0, quality.duplicates_by_variant
    assert quarantined_twins >= quality.variants["quarantined_currency"]
    assert quality.same_pairs > 0 and quality.same_true == quality.same_pairs  # precision 1
    assert quality.smartacc_only_withheld <= quality.smartacc_only // 100  # at most 1 % held for review
