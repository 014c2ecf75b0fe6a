"""``skysmart status`` and the HTML report show businesses ready for an e-invoice and counts by reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.einvoice.readiness import readiness_counts
from pipelines.report.render import write_report
from pipelines.warehouse import open_warehouse
from tests.einvoice.conftest import Loaded


def counts(loaded: Loaded) -> tuple[int, int, dict[str, int]]:
    with open_warehouse(loaded.warehouse_url, read_only=True) as wh:
        found = readiness_counts(wh)
    assert found is not None and found.businesses > 0
    return found.businesses, found.ready, {r.reason: r.businesses for r in found.reasons}


def test_status_shows_the_ready_share_and_every_reason_with_its_count(
    loaded: Loaded, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    businesses, ready, by_reason = counts(loaded)
    assert main(["status", "--warehouse", loaded.warehouse_url]) == 0
    out = capsys.readouterr().out
    assert f"E-invoice readiness: {ready} of {businesses} businesses ready" in " ".join(out.split())
    for reason, n in by_reason.items():
        assert re.search(rf"{reason}\W+{n:,}(?![0-9,])", out), reason


def test_report_shows_the_ready_share_and_every_reason_with_its_count(loaded: Loaded, tmp_path: Path) -> None:
    businesses, ready, by_reason = counts(loaded)
    page = write_report(loaded.warehouse_url, loaded.lake_url, tmp_path / "report.html").read_text()
    section = page[page.index('<section id="einvoice">') :]
    assert f'data-ready="{ready}"' in section and f"{businesses:,} businesses" in section
    shown = dict(re.findall(r'data-reason="([a-z_0-9]+)">([0-9,]+)<', section))
    assert {r: int(n.replace(",", "")) for r, n in shown.items()} == by_reason
    assert "EInvoiceRegTIN" in section  # the field to fix, never a customer's value
