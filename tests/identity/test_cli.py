"""``skysmart identity``: rebuilds the matches and shows what a person must decide."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.warehouse import open_warehouse
from tests.push.helpers import insert_customers, skybiz_row, smartacc_row


def test_identity_rebuilds_and_lists_the_possible_pairs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = str(tmp_path / "w.duckdb")
    with open_warehouse(url) as warehouse:
        insert_customers(
            warehouse,
            [
                smartacc_row(1, name="Maju Jaya Sdn Bhd", phone="+60321421234"),
                smartacc_row(2, name="Kedai Runcit Aminah", phone="+60123456789"),
                skybiz_row("C000001", name="MAJU JAYA SDN. BHD.", phone="+60321421234"),
                skybiz_row("C000009", name="Lim Brothers Trading", phone="+60123456789"),
            ],
        )
    monkeypatch.setenv("COLUMNS", "200")

    code = main(["identity", "--warehouse", url])

    out = capsys.readouterr().out
    assert code == 0
    assert "customer_matches rebuilt" in out and "possible — a person decides (first 1)" in out
    assert "C000009" in out and "300-T00002" in out and "phone 0123456789" in out
    with open_warehouse(url) as warehouse:
        classes = dict(warehouse.query("SELECT skybiz_code, match_class FROM customer_matches"))
    assert classes == {"C000001": "same", "C000009": "possible"}
