"""``write_report`` on real warehouses the whole pipeline loaded: one file, its charts, its numbers.

Every expected number comes from SQL on the same warehouse (or the lake's own files), never from the report
code; the page must hold no personal data beyond customer keys and nothing that reaches the network.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest

from pipelines.lake import CUSTOMERS, QUALITY, Lake
from pipelines.report import write_report
from pipelines.warehouse import open_warehouse
from tests.report.conftest import Loaded
from tests.report.helpers import (
    SECTION_TITLES,
    cells,
    expected_charts,
    leaked,
    personal_values,
    remote_references,
    svg_count,
)


def _check_page(loaded: Loaded, page: str) -> None:
    """What holds for any report of a loaded warehouse, on either engine."""
    with open_warehouse(loaded.warehouse_url, read_only=True) as wh:
        assert svg_count(page) == expected_charts(wh) >= 2
        for title in SECTION_TITLES:
            assert title in page
        rules = {
            f"{s}:{r}": n
            for s, r, n in wh.query(
                "SELECT source_system, rule, count(*) FROM customer_quarantine GROUP BY 1, 2"
            )
        }
        assert cells(page, "rows") == rules
        by_source: dict[str, int] = {}
        for label, rows in cells(page, "rows-in").items():
            by_source[label.split(":")[0]] = by_source.get(label.split(":")[0], 0) + rows
        in_view = dict(
            wh.query(
                "SELECT source, sum(rows_in) FROM v_window_coverage WHERE coverage = 'loaded' GROUP BY 1"
            )
        )
        assert by_source == {s: int(n) for s, n in in_view.items()}
        values = personal_values(wh)
        assert len(values) >= 10
        assert leaked(page, values) == []
    assert remote_references(page) == []


def test_duckdb_report_shows_every_section_with_the_warehouse_numbers(loaded_duckdb: Loaded) -> None:
    out = write_report(loaded_duckdb.warehouse_url, loaded_duckdb.lake_url, loaded_duckdb.out_dir / "r.html")
    assert out == (loaded_duckdb.out_dir / "r.html").resolve()
    page = out.read_text(encoding="utf-8")
    _check_page(loaded_duckdb, page)
    with open_warehouse(loaded_duckdb.warehouse_url, read_only=True) as wh:
        classes = dict(wh.query("SELECT match_class, count(*) FROM customer_matches GROUP BY 1"))
        outbox = (
            wh.table_exists("skybiz_push_outbox")
            and wh.query("SELECT count(*) FROM skybiz_push_outbox")[0][0]
        )
    shown = cells(page, "class")
    assert {c: n for c, n in shown.items() if n} == classes
    assert set(shown) >= {"same", "possible", "different"}
    assert not outbox
    assert "No push yet" in page


def test_quality_links_point_at_every_validated_window_in_the_lake(loaded_duckdb: Loaded) -> None:
    out = write_report(loaded_duckdb.warehouse_url, loaded_duckdb.lake_url, loaded_duckdb.out_dir / "q.html")
    page = out.read_text(encoding="utf-8")
    lake = Lake(loaded_duckdb.lake_url)
    pages = sorted(Path(lake.root).glob(f"{QUALITY}/source=*/entity={CUSTOMERS}/window=*/report.html"))
    assert pages
    import re

    linked = {
        (out.parent / unquote(href)).resolve() for href in re.findall(r'href="([^"]+/report\.html)"', page)
    }
    assert linked == {p.resolve() for p in pages}
    assert all(p.exists() for p in linked)
    assert "validation.json" in page


def test_without_quality_results_the_section_says_so(loaded_duckdb: Loaded, tmp_path: Path) -> None:
    empty_lake = tmp_path / "empty-lake"
    page = write_report(loaded_duckdb.warehouse_url, str(empty_lake), tmp_path / "r.html").read_text()
    assert "No quality results in the lake" in page
    page = write_report(loaded_duckdb.warehouse_url, None, tmp_path / "r2.html").read_text()
    assert "No lake was given" in page
    assert svg_count(page) >= 2


def test_outbox_states_are_counted_when_a_push_has_run(loaded_duckdb: Loaded, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "pushed.duckdb"
    shutil.copy(loaded_duckdb.warehouse_url, copy)
    with open_warehouse(str(copy)) as wh:
        wh.ensure_table("skybiz_push_outbox")
        keys = [r[0] for r in wh.query("SELECT customer_key FROM customers ORDER BY customer_key LIMIT 5")]
        columns, _ = wh.query_table("SELECT * FROM skybiz_push_outbox LIMIT 0")
        for i, key in enumerate(keys):
            state = "created" if i < 3 else "rejected"
            wh.execute(
                "INSERT INTO skybiz_push_outbox (customer_key, cus_code, payload_hash, payload, state, "
                "attempts, unanswered_attempts, request_ids, run_id, first_seen_at, updated_at) "
                "VALUES ($1, $2, $3, '{}', $4, 1, 0, '[]', 'test', now(), now())",
                (key, f"SA-{i}", f"h{i}", state),
            )
        expected = dict(wh.query("SELECT state, count(*) FROM skybiz_push_outbox GROUP BY 1"))
    assert columns
    page = write_report(str(copy), None, tmp_path / "r.html").read_text()
    assert cells(page, "state") == expected
    assert "No push yet" not in page


def test_postgres_report_matches_its_own_sql(loaded_postgres: Loaded) -> None:
    out = write_report(
        loaded_postgres.warehouse_url, loaded_postgres.lake_url, loaded_postgres.out_dir / "r.html"
    )
    page = out.read_text(encoding="utf-8")
    _check_page(loaded_postgres, page)
    with open_warehouse(loaded_postgres.warehouse_url, read_only=True) as wh:
        has_matches = wh.table_exists("customer_matches")
        has_outbox = wh.table_exists("skybiz_push_outbox")
    if not has_outbox:
        assert "No push yet" in page
    if not has_matches:
        assert "No identity matching yet" in page


@pytest.mark.slow
def test_the_report_renders_its_charts_in_a_real_browser(loaded_duckdb: Loaded, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    out = write_report(loaded_duckdb.warehouse_url, loaded_duckdb.lake_url, tmp_path / "report.html")
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(out.as_uri())
            charts = page.locator("svg.chart")
            assert charts.count() == svg_count(out.read_text()) >= 2
            for i in range(charts.count()):
                chart = charts.nth(i)
                chart.scroll_into_view_if_needed()
                assert chart.is_visible()
                box = chart.bounding_box()
                assert box is not None and box["width"] > 100 and box["height"] > 50
                assert chart.locator("path").count() > 10  # bars, axes and the glyphs of its labels
            for title in ("Coverage per source and month", "Quarantine by rule", "Push outcomes"):
                assert page.get_by_role("heading", name=title).is_visible()
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert [u for u in requests if not u.startswith("file://")] == []


def test_every_value_is_escaped_and_only_the_charts_are_trusted(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from pipelines.report.gather import Quality, ReportData, RuleCount
    from pipelines.report.render import Charts, render

    hostile = '<script>alert("x")</script><img src=http://evil.example/t.png>'
    data = ReportData(
        warehouse=hostile,
        generated_at=datetime(2024, 1, 1, tzinfo=UTC),
        has_audit=False,
        coverage=(),
        months=(),
        days=(),
        quarantine=(RuleCount("skybiz", hostile, 1, 1),),
        quality=Quality(None, (), (), hostile),
        push_states=((hostile, 2),),
        identity=None,
    )
    from markupsafe import Markup

    page = render(data, Charts(Markup(""), Markup(""), Markup('<svg class="chart"></svg>')))
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;" in page
    assert svg_count(page) == 1


def test_a_published_report_lands_at_the_lake_root_with_links_that_resolve(loaded_duckdb: Loaded) -> None:
    import re

    from pipelines.report import LAKE_REPORT, publish_report

    url = publish_report(loaded_duckdb.warehouse_url, loaded_duckdb.lake_url)

    lake_root = Path(Lake(loaded_duckdb.lake_url).root).resolve()
    published = lake_root / LAKE_REPORT
    assert url == published.as_uri()
    page = published.read_text(encoding="utf-8")
    _check_page(loaded_duckdb, page)
    # Links into the lake are relative to the lake's root, so the lake can be moved or served whole.
    hrefs = re.findall(r'href="([^"]+/report\.html)"', page)
    assert hrefs and not any(href.startswith(("/", "file:")) for href in hrefs)
    assert all((lake_root / unquote(href)).is_file() for href in hrefs)
