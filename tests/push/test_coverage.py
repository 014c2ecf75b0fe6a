"""The coverage guard: a real push needs SkyBiz loaded without gaps from the declared start of its history
(no default) up to recently.

Otherwise a SkyBiz customer last modified in a day that was never loaded is not in the warehouse, its
SmartAcc twin looks missing, and the push would create it in SkyBiz a second time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipelines.cli import main
from pipelines.errors import PushCoverageError, PushError
from pipelines.push import PushSettings, assess_coverage, check_coverage, plan_push, push_customers
from pipelines.windows import MYT, plan_windows
from tests.push.conftest import PushRig
from tests.push.helpers import insert_customers, record_skybiz_load, smartacc_row, today_myt

D = date.fromisoformat


# -- assessing day ranges (pure) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loads", "covered_from", "gaps", "newest"),
    [
        ([("2024-01-01", "2024-01-31"), ("2024-02-01", "2024-02-29")], "2024-01-01", [], "2024-02-29"),
        ([("2024-03-01", "2024-03-31"), ("2024-01-01", "2024-01-31")], "2024-01-01",
         [("2024-02-01", "2024-02-29")], "2024-03-31"),
        ([("2024-01-01", "2024-01-31"), ("2024-01-10", "2024-01-10")], "2024-01-01", [], "2024-01-31"),
        ([("2024-01-01", "2024-01-31"), ("2024-01-15", "2024-02-15")], "2024-01-01", [], "2024-02-15"),
        ([("2024-02-01", "2024-02-29")], "2023-12-01", [("2023-12-01", "2024-01-31")], "2024-02-29"),
        ([("2023-06-01", "2023-06-30"), ("2024-02-01", "2024-02-29")], "2024-02-01", [], "2024-02-29"),
        ([("2024-01-01", "2024-01-05"), ("2024-01-07", "2024-01-31"), ("2024-03-01", "2024-03-02")],
         "2024-01-01", [("2024-01-06", "2024-01-06"), ("2024-02-01", "2024-02-29")], "2024-03-02"),
        ([], None, [], None),
    ],
    ids=[
        "adjacent-months",
        "missing-month-any-order",
        "daily-inside-monthly",
        "overlapping",
        "configured-start-before-first-load",
        "loads-before-the-configured-start-do-not-matter",
        "one-day-and-a-month",
        "nothing-loaded",
    ],
)  # fmt: skip
def test_gaps_are_the_uncovered_days_from_the_start_to_the_newest_loaded_day(
    loads: list[tuple[str, str]], covered_from: str | None, gaps: list[tuple[str, str]], newest: str | None
) -> None:
    coverage = assess_coverage(
        [(D(a), D(b)) for a, b in loads],
        today=D("2024-03-31"),
        covered_from=D(covered_from) if covered_from else None,
    )

    assert [(g.start.isoformat(), g.end.isoformat()) for g in coverage.gaps] == gaps
    assert coverage.newest == (D(newest) if newest else None)


@pytest.mark.parametrize(
    ("newest", "allowed", "stale"),
    [("2024-03-31", 2, False), ("2024-03-29", 2, False), ("2024-03-28", 2, True), ("2024-03-31", 0, False)],
    ids=["today", "two-days", "three-days", "today-with-zero"],
)
def test_stale_when_the_newest_day_is_older_than_allowed(newest: str, allowed: int, stale: bool) -> None:
    coverage = assess_coverage(
        [(D("2024-01-01"), D(newest))],
        today=D("2024-03-31"),
        covered_from=D("2024-01-01"),
        max_staleness_days=allowed,
    )

    assert coverage.stale is stale
    assert (coverage.problem is not None) is stale


def test_the_problem_names_gaps_staleness_and_what_to_run() -> None:
    coverage = assess_coverage(
        [(D("2024-01-01"), D("2024-01-31")), (D("2024-03-01"), D("2024-03-20"))],
        today=D("2024-03-31"),
        covered_from=D("2024-01-01"),
    )

    problem = coverage.problem
    assert problem is not None
    since = "since 2024-01-01 (SKYSMART_PUSH_SKYBIZ_COVERED_FROM=2024-01-01)"
    assert f"1 gap(s) {since}: 2024-02-01..2024-02-29 (29 days)" in problem
    assert "newest loaded day is 2024-03-20, 11 days before today (2024-03-31, Malaysia)" in problem
    assert "skysmart run --source skybiz --from 2024-02-01 --to 2024-02-29" in problem
    assert "skysmart run --source skybiz --from 2024-03-21 --to 2024-03-31" in problem
    assert "skysmart push --skybiz-covered-from 2024-01-01" in problem
    assert "skysmart_backfill" in problem and "--allow-partial-coverage" in problem


def test_an_undeclared_start_is_a_problem_however_complete_the_loads_look() -> None:
    # "Covered since whatever was loaded first" is how 224 duplicates once looked safe (issue 11).
    coverage = assess_coverage([(D("2026-01-01"), D("2026-03-31"))], today=D("2026-03-31"))

    problem = coverage.problem
    assert problem is not None and coverage.error() is not None
    assert "The start of the tenant's SkyBiz history is not declared" in problem
    assert "skysmart run --source skybiz --from YYYY-MM-DD --to 2026-03-31" in problem
    assert "skysmart push --skybiz-covered-from YYYY-MM-DD" in problem


# -- the guard in a push, on both engines ----------------------------------------------------------------


def _days_ago(n: int) -> date:
    return today_myt() - timedelta(days=n)


def _declared(days_ago: int = 120, **overrides: Any) -> PushSettings:
    """Settings declaring SkyBiz's history to start ``days_ago`` days ago."""
    return PushSettings(skybiz_covered_from=_days_ago(days_ago), **overrides)


def _with_gap(rig: PushRig, customers: int = 5) -> tuple[date, date]:
    """SmartAcc customers, and SkyBiz loaded for the last 120 days except days 90..61 ago."""
    insert_customers(rig.warehouse, [smartacc_row(i) for i in range(customers)], skybiz_loaded=False)
    record_skybiz_load(rig.warehouse, _days_ago(120), _days_ago(91))
    record_skybiz_load(rig.warehouse, _days_ago(60), _days_ago(0))
    return _days_ago(90), _days_ago(61)


def _assert_nothing_happened(rig: PushRig, received_before: int) -> None:
    assert len(rig.sandbox.skybiz.received) == received_before  # not a read, not a create
    assert rig.warehouse.query("SELECT count(*) FROM skybiz_push_outbox") == [(0,)]  # nothing recorded


def test_a_gap_in_skybiz_refuses_a_real_push_and_names_it(rig: PushRig) -> None:
    start, end = _with_gap(rig)
    received = len(rig.sandbox.skybiz.received)

    with pytest.raises(PushCoverageError) as caught:
        push_customers(rig.warehouse, rig.client, settings=_declared())

    error = caught.value
    assert isinstance(error, PushError) and not error.retryable
    assert f"{start.isoformat()}..{end.isoformat()} (30 days)" in error.message
    assert f"skysmart run --source skybiz --from {start} --to {end}" in error.message
    assert f"skysmart push --skybiz-covered-from {_days_ago(120)}" in error.message
    assert (error.source, error.context["gaps"]) == ("skybiz", 1)
    _assert_nothing_happened(rig, received)


def test_a_failed_or_unfinished_load_of_the_gap_does_not_fill_it(rig: PushRig) -> None:
    start, end = _with_gap(rig)
    record_skybiz_load(rig.warehouse, start, end, status="failed")
    record_skybiz_load(rig.warehouse, start, end, status="running")
    received = len(rig.sandbox.skybiz.received)

    with pytest.raises(PushCoverageError, match=f"{start}..{end}"):
        push_customers(rig.warehouse, rig.client, settings=_declared())

    _assert_nothing_happened(rig, received)


def test_stale_skybiz_refuses_a_real_push(rig: PushRig) -> None:
    insert_customers(rig.warehouse, [smartacc_row(i) for i in range(5)], skybiz_loaded=False)
    record_skybiz_load(rig.warehouse, _days_ago(40), _days_ago(10))
    received = len(rig.sandbox.skybiz.received)

    with pytest.raises(PushCoverageError) as caught:
        push_customers(rig.warehouse, rig.client, settings=_declared(40))

    # Exact day counts are pinned by the pure tests above; here "today" is the real clock's.
    assert f"SkyBiz is stale: the newest loaded day is {_days_ago(10)}" in caught.value.message
    assert f"skysmart run --source skybiz --from {_days_ago(9)} --to " in caught.value.message
    assert caught.value.context["gaps"] == 0
    _assert_nothing_happened(rig, received)


def test_no_skybiz_load_at_all_refuses_a_real_push(rig: PushRig) -> None:
    insert_customers(rig.warehouse, [smartacc_row(i) for i in range(5)], skybiz_loaded=False)
    received = len(rig.sandbox.skybiz.received)

    with pytest.raises(PushCoverageError, match="No successful SkyBiz load in the warehouse"):
        push_customers(rig.warehouse, rig.client, settings=_declared())

    _assert_nothing_happened(rig, received)


def test_an_undeclared_start_refuses_a_real_push_even_with_every_loaded_day_covered(rig: PushRig) -> None:
    insert_customers(rig.warehouse, [smartacc_row(i) for i in range(5)])  # last 30 days, no gaps
    received = len(rig.sandbox.skybiz.received)

    with pytest.raises(PushCoverageError, match="history is not declared"):
        push_customers(rig.warehouse, rig.client)

    _assert_nothing_happened(rig, received)


def test_a_configured_start_before_the_first_load_is_a_gap(rig: PushRig) -> None:
    insert_customers(rig.warehouse, [smartacc_row(i) for i in range(5)], skybiz_loaded=False)
    record_skybiz_load(rig.warehouse, _days_ago(30), _days_ago(0))
    settings = PushSettings.from_env({"SKYSMART_PUSH_SKYBIZ_COVERED_FROM": _days_ago(100).isoformat()})
    received = len(rig.sandbox.skybiz.received)

    with pytest.raises(PushCoverageError) as caught:
        push_customers(rig.warehouse, rig.client, settings=settings)

    assert f"{_days_ago(100)}..{_days_ago(31)} (70 days)" in caught.value.message
    assert f"SKYSMART_PUSH_SKYBIZ_COVERED_FROM={_days_ago(100)}" in caught.value.message
    _assert_nothing_happened(rig, received)


def test_full_coverage_from_the_configured_start_pushes_as_before(rig: PushRig) -> None:
    insert_customers(rig.warehouse, [smartacc_row(i) for i in range(5)], skybiz_loaded=False)
    record_skybiz_load(rig.warehouse, _days_ago(100), _days_ago(40))
    record_skybiz_load(rig.warehouse, _days_ago(39), _days_ago(1))  # adjacent: no gap; yesterday is recent
    settings = PushSettings.from_env({"SKYSMART_PUSH_SKYBIZ_COVERED_FROM": _days_ago(100).isoformat()})

    result = push_customers(rig.warehouse, rig.client, settings=settings)

    assert (result.created, result.requests, result.coverage_problem) == (5, 1, None)
    rig.assert_each_created_once({f"SA-300-T{i:05d}" for i in range(5)})


def test_the_override_pushes_despite_a_gap_and_still_reports_it(rig: PushRig) -> None:
    start, end = _with_gap(rig)

    result = push_customers(rig.warehouse, rig.client, settings=_declared(), allow_partial_coverage=True)

    assert (result.created, result.requests) == (5, 1)
    assert result.coverage_problem is not None and f"{start}..{end}" in result.coverage_problem
    rig.assert_each_created_once({f"SA-300-T{i:05d}" for i in range(5)})


def test_a_dry_run_reports_the_problem_without_refusing(rig: PushRig) -> None:
    start, end = _with_gap(rig)
    received = len(rig.sandbox.skybiz.received)

    result = push_customers(rig.warehouse, None, dry_run=True, settings=_declared())
    plan = plan_push(rig.warehouse, settings=_declared())

    assert result.dry_run and result.to_create == 5
    assert result.coverage_problem is not None and f"{start}..{end}" in result.coverage_problem
    assert plan.coverage_problem is not None and f"{start}..{end}" in plan.coverage_problem
    _assert_nothing_happened(rig, received)


def test_a_window_is_not_taken_to_cover_days_after_its_load_started(rig: PushRig) -> None:
    # This month's window loaded ten days ago, ending at the month's end: fresh on paper, ten days old.
    insert_customers(rig.warehouse, [smartacc_row(0)], skybiz_loaded=False)
    loaded_at = datetime.combine(_days_ago(10), datetime.min.time(), MYT).astimezone(UTC)
    record_skybiz_load(rig.warehouse, _days_ago(40), _days_ago(-20), started_at=loaded_at)

    coverage = check_coverage(rig.warehouse, _declared(40))

    assert coverage.newest == _days_ago(10)
    assert coverage.stale


# -- the guard with loads the real pipeline made -----------------------------------------------------------


def test_windows_loaded_by_the_pipeline_with_a_month_missing_refuse_the_push(
    duck_rig: PushRig, tmp_path: Path
) -> None:
    from pipelines.extract import extract_window
    from pipelines.lake import Lake
    from pipelines.normalize import normalize_window
    from pipelines.warehouse import load_window

    lake = Lake(str(tmp_path / "lake"))
    insert_customers(duck_rig.warehouse, [smartacc_row(i) for i in range(3)], skybiz_loaded=False)
    for window in [*plan_windows("skybiz", D("2026-07-01"), D("2026-07-31")),
                   *plan_windows("skybiz", D("2026-09-01"), D("2026-09-30"))]:  # fmt: skip
        extract_window(duck_rig.client.real, window, lake)
        normalize_window(lake, "skybiz", window)
        load_window(duck_rig.warehouse, lake, "skybiz", window)
    recent_enough = PushSettings(
        skybiz_covered_from=D("2026-07-01"), max_staleness_days=(today_myt() - D("2026-09-30")).days
    )
    received = len(duck_rig.sandbox.skybiz.received)

    with pytest.raises(PushCoverageError, match=r"2026-08-01\.\.2026-08-31 \(31 days\)"):
        push_customers(duck_rig.warehouse, duck_rig.client, settings=recent_enough)

    assert len(duck_rig.sandbox.skybiz.received) == received
    assert duck_rig.warehouse.query("SELECT count(*) FROM skybiz_push_outbox") == [(0,)]  # nothing recorded


# -- the step the DAG runs -------------------------------------------------------------------------------


def test_push_step_refuses_a_gap_and_passes_the_override_through(make_rig: Any, duckdb_url: str) -> None:
    from pipelines.config import Settings
    from pipelines.steps import push_step

    rig = make_rig(duckdb_url)
    start, end = _with_gap(rig)
    rig.warehouse.close()  # the step opens the DuckDB file itself
    settings = Settings.from_env({**rig.sandbox.endpoints.as_env(), "SKYSMART_WAREHOUSE": duckdb_url})

    declared = _days_ago(120).isoformat()

    with pytest.raises(PushCoverageError, match="history is not declared"):
        push_step(settings, dry_run=False)
    with pytest.raises(PushCoverageError, match=f"{start}..{end}"):
        push_step(settings, dry_run=False, skybiz_covered_from=declared)
    dry = push_step(settings, dry_run=True, skybiz_covered_from=declared)
    forced = push_step(settings, dry_run=False, allow_partial_coverage=True, skybiz_covered_from=declared)

    assert f"{start}..{end}" in dry["coverage_problem"] and dry["requests"] == 0
    assert forced["created"] == 5 and f"{start}..{end}" in forced["coverage_problem"]
    assert len(rig.creates) == 1


# -- the CLI -------------------------------------------------------------------------------------------------


def _cli_rig(make_rig: Any, duckdb_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[PushRig, date, date]:
    rig = make_rig(duckdb_url)
    start, end = _with_gap(rig)
    rig.warehouse.close()  # the CLI opens the DuckDB file itself
    for name, value in rig.sandbox.endpoints.as_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COLUMNS", "240")
    monkeypatch.setenv("SKYSMART_PUSH_SKYBIZ_COVERED_FROM", _days_ago(120).isoformat())
    return rig, start, end


def test_cli_refuses_with_exit_2_and_pushes_with_the_override(
    make_rig: Any, duckdb_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rig, start, end = _cli_rig(make_rig, duckdb_url, monkeypatch)
    received = len(rig.sandbox.skybiz.received)

    refused = main(["push", "--warehouse", duckdb_url])
    refused_io = capsys.readouterr()
    nothing_sent = len(rig.sandbox.skybiz.received) == received
    forced = main(["push", "--warehouse", duckdb_url, "--allow-partial-coverage"])
    forced_out = capsys.readouterr().out

    assert refused == 2 and nothing_sent
    assert refused_io.err.startswith("skysmart push: ")
    assert f"{start}..{end} (30 days)" in refused_io.err
    assert f"skysmart run --source skybiz --from {start} --to {end}" in refused_io.err
    assert forced == 0
    assert "SkyBiz coverage incomplete — pushed anyway (--allow-partial-coverage)" in forced_out
    assert len(rig.creates) == 1


def test_cli_flag_declares_the_start_over_the_environment(
    make_rig: Any, duckdb_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rig, _, _ = _cli_rig(make_rig, duckdb_url, monkeypatch)
    monkeypatch.delenv("SKYSMART_PUSH_SKYBIZ_COVERED_FROM")

    undeclared = main(["push", "--warehouse", duckdb_url])
    undeclared_err = capsys.readouterr().err
    after_gap = main(["push", "--warehouse", duckdb_url, "--skybiz-covered-from", str(_days_ago(60))])

    assert undeclared == 2 and "history is not declared" in undeclared_err
    assert after_gap == 0  # loaded without gaps from the declared day through today
    assert len(rig.creates) == 1


def test_cli_dry_run_shows_the_coverage_problem(
    make_rig: Any, duckdb_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, start, end = _cli_rig(make_rig, duckdb_url, monkeypatch)

    code = main(["push", "--dry-run", "--warehouse", duckdb_url])

    out = capsys.readouterr().out
    assert code == 0
    warning = "SkyBiz coverage incomplete — a real push would be refused (--allow-partial-coverage overrides)"
    assert out.count(warning) == 2  # before the lists and after the summary
    assert f"{start}..{end} (30 days)" in out
    assert "would create (5 in 1 batch(es))" in out


# -- one computation: status, v_window_coverage and the push agree ------------------------------------------


def test_status_the_view_and_the_push_agree_on_a_history_loaded_from_whenever_one_started(
    make_rig: Any, duckdb_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 11: SkyBiz loaded for a range, then "from where that ended to today" as the old advice said,
    # with a hole in between; the tenant's history really starts long before.
    rig = make_rig(duckdb_url)
    insert_customers(rig.warehouse, [smartacc_row(i) for i in range(3)], skybiz_loaded=False)
    record_skybiz_load(rig.warehouse, _days_ago(300), _days_ago(250))
    record_skybiz_load(rig.warehouse, _days_ago(200), _days_ago(-20))  # this month's window, loaded now
    declared = _days_ago(1000)
    view_gaps = rig.warehouse.query(
        "SELECT window_start, window_end FROM v_window_coverage WHERE source = 'skybiz' AND coverage = 'gap'"
    )
    covered_to = rig.warehouse.query(
        "SELECT max(covered_through) FROM v_window_coverage WHERE source = 'skybiz' AND coverage = 'loaded'"
    )[0][0]
    coverage = check_coverage(rig.warehouse, PushSettings(skybiz_covered_from=declared))
    rig.warehouse.close()  # the CLI opens the DuckDB file itself
    for name, value in rig.sandbox.endpoints.as_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setenv("SKYSMART_PUSH_SKYBIZ_COVERED_FROM", declared.isoformat())

    status = main(["status", "--warehouse", duckdb_url])
    status_out = " ".join(capsys.readouterr().out.split())
    pushed = main(["push", "--warehouse", duckdb_url])
    push_err = " ".join(capsys.readouterr().err.split())

    # The view's gaps are the push's gaps after the first loaded day; both stop at the day the load started.
    assert view_gaps == [(_days_ago(249), _days_ago(201))]
    assert [(g.start, g.end) for g in coverage.gaps] == [
        (declared, _days_ago(301)),
        (_days_ago(249), _days_ago(201)),
    ]
    assert covered_to == coverage.newest == today_myt()
    problem = coverage.problem
    assert problem is not None
    fix = f"skysmart run --source skybiz --from {declared} --to {_days_ago(301)}"
    assert fix in problem and f"skysmart push --skybiz-covered-from {declared}" in problem
    # skysmart status prints the push's own verdict; the push refuses with the same words.
    assert status == 0 and "a real push would be refused" in status_out
    assert " ".join(problem.split()) in status_out
    assert pushed == 2 and " ".join(problem.split()) in push_err
    assert rig.creates == []
