"""The quality section read from a lake where validation found failures: counts and links per expectation."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from urllib.parse import unquote

from pipelines.contracts import load_contract
from pipelines.lake import CUSTOMERS, QUALITY, Lake
from pipelines.quality import validate_frame
from pipelines.quality.report import REPORT_HTML, REPORT_JSON
from pipelines.quality.running import frame_from_table
from pipelines.report.gather import quality
from pipelines.windows import Window
from tests.quality.frames import customer_table


def test_failed_expectations_count_their_windows_and_rows_and_link_each_window(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    contract = load_contract("customer")
    windows = [Window("skybiz", date(2024, m, 1), date(2024, m, 28)) for m in (1, 2, 3)]
    for n, window in enumerate(windows):
        df = frame_from_table(customer_table(20, "skybiz", window), contract)
        df.loc[: n - 1, "email"] = "not an e-mail"  # window 0 clean, 1 one bad row, 2 two bad rows
        validate_frame(df, contract, lake=lake, source="skybiz", window=window, raise_on_error=False)

    out = tmp_path / "site"
    out.mkdir()
    found = quality(lake, out)

    assert found.note is None and len(found.windows) == len(windows)
    stored = [json.loads(lake.read_file(QUALITY, "skybiz", CUSTOMERS, w, REPORT_JSON)) for w in windows]
    failed_checks = {
        r["expectation_config"]["meta"]["check"] for doc in stored for r in doc["results"] if not r["success"]
    }
    assert failed_checks
    by_check = {e.check: e for e in found.expectations}
    for check in failed_checks:
        summary = by_check[check]
        expected = [
            (w.key, r["result"].get("unexpected_count") or 0)
            for w, doc in zip(windows, stored, strict=True)
            for r in doc["results"]
            if r["expectation_config"]["meta"]["check"] == check and not r["success"]
        ]
        assert summary.failed_windows == len(expected)
        assert summary.failing_rows == sum(n for _, n in expected)
        assert [k for k, _ in summary.failed_links] == [k for k, _ in expected]
        for key, link in summary.failed_links:
            assert (out / unquote(link)).resolve() == Path(
                lake.window_dir(QUALITY, "skybiz", CUSTOMERS, key)
            ).resolve() / REPORT_HTML
    assert found.expectations[0].failed_windows > 0  # failures listed first
    assert [w.success for w in found.windows] == [
        not any(not r["success"] for r in d["results"]) for d in stored
    ]
