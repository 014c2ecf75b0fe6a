"""SkyBiz customer read over real HTTP (SKYBIZ.md §3, §4, §8, §9): envelope, window, fields, filters."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import requests

from skysmart_sandbox.data import SKYBIZ_READ_FIELDS
from skysmart_sandbox.server import SandboxServer
from tests.fixtures.sandbox import sandbox_data
from tests.sandbox.skybiz_helpers import creds, ok_data, post, read_body, url


def expected_codes(table: pa.Table, first: date, last: date) -> list[str]:
    lo = datetime.combine(first, datetime.min.time())
    hi = datetime.combine(last + timedelta(days=1), datetime.min.time())
    dtm = table.column("DateTimeModified")
    mask = pc.and_(pc.greater_equal(dtm, pa.scalar(lo, dtm.type)), pc.less(dtm, pa.scalar(hi, dtm.type)))
    return sorted(table.filter(mask).column("CusCode").to_pylist())


def test_read_a_month_like_the_vendor_example(sandbox):
    data = ok_data(post(sandbox, read_body(sandbox, "2026-04-01", "2026-04-30", fields=[], filters={})))
    assert list(data) == ["requested_by", "mode", "date_range", "total_returned", "data"]
    assert data["requested_by"] == sandbox.endpoints.skybiz_api_key
    assert data["mode"] == "2"
    assert data["date_range"] == {"from": "2026-04-01", "to": "2026-04-30", "days": 30}
    rows = data["data"]
    assert data["total_returned"] == len(rows) > 0
    codes = [r["CusCode"] for r in rows]
    assert codes == expected_codes(sandbox.data.skybiz, date(2026, 4, 1), date(2026, 4, 30))
    for row in rows:
        assert list(row) == list(SKYBIZ_READ_FIELDS)
        assert "2026-04-01 00:00:00" <= row["DateTimeModified"] <= "2026-04-30 23:59:59"
        assert isinstance(row["CreditLimit"], float) and isinstance(row["TermCode"], int)


def test_rows_carry_the_stored_values(sandbox):
    rows = ok_data(post(sandbox, read_body(sandbox, "2025-01-01", "2025-01-31")))["data"]
    stored = {r["CusCode"]: r for r in sandbox.data.skybiz.to_pylist()}
    for row in rows[:50]:
        want = stored[row["CusCode"]]
        for name in SKYBIZ_READ_FIELDS:
            if name == "DateTimeModified":
                assert row[name] == want[name].strftime("%Y-%m-%d %H:%M:%S")
            else:
                assert row[name] == want[name], name


def test_json_is_written_like_php(sandbox):
    resp = post(sandbox, read_body(sandbox, "2024-01-01", "2024-01-31"))
    assert b"/" not in resp.content.replace(b"\\/", b"")
    assert all(byte < 128 for byte in resp.content)
    assert b", " not in resp.content.split(b'"data":[')[0]


def test_form_encoded_read_with_php_arrays(sandbox):
    form = {
        **creds(sandbox),
        "action": "read",
        "date_from": "2026-04-01",
        "date_to": "2026-04-30",
        "fields[0]": "CusCode",
        "fields[1]": "Town",
        "filters[Town]": "kuala lumpur",
    }
    resp = requests.post(url(sandbox), data=form, timeout=30)
    rows = ok_data(resp)["data"]
    assert rows and all(list(r) == ["CusCode", "Town"] for r in rows)
    assert all(r["Town"] == "Kuala Lumpur" for r in rows)


def test_window_of_one_day_counts_one(sandbox):
    data = ok_data(post(sandbox, read_body(sandbox, "2026-02-28", "2026-02-28")))
    assert data["date_range"]["days"] == 1
    assert all(r["DateTimeModified"].startswith("2026-02-28 ") for r in data["data"])


def test_31_days_is_the_widest_window(sandbox):
    data = ok_data(post(sandbox, read_body(sandbox, "2026-01-01", "2026-01-31")))
    assert data["date_range"] == {"from": "2026-01-01", "to": "2026-01-31", "days": 31}


def test_window_is_inclusive_at_both_ends_in_malaysia_time(sandbox_factory):
    base = sandbox_data(200, 21)
    table = base.skybiz
    edge_times = {
        0: datetime(2024, 3, 1, 0, 0, 0),  # first second of the window
        1: datetime(2024, 3, 31, 23, 59, 59),  # last second of the window
        2: datetime(2024, 2, 29, 23, 59, 59),  # one second before
        3: datetime(2024, 4, 1, 0, 0, 0),  # one second after
    }
    dtm = table.column("DateTimeModified").to_pylist()
    for row, moment in edge_times.items():
        dtm[row] = moment
    i = table.schema.get_field_index("DateTimeModified")
    table = table.set_column(i, table.schema.field(i), pa.array(dtm, pa.timestamp("s")))
    server = sandbox_factory(data=dataclasses.replace(base, skybiz=table))
    codes = table.column("CusCode").to_pylist()
    rows = ok_data(post(server, read_body(server, "2024-03-01", "2024-03-31")))["data"]
    got = {r["CusCode"] for r in rows}
    assert codes[0] in got and codes[1] in got
    assert codes[2] not in got and codes[3] not in got
    assert sorted(got) == expected_codes(table, date(2024, 3, 1), date(2024, 3, 31))
    before = ok_data(post(server, read_body(server, "2024-02-29", "2024-02-29")))["data"]
    after = ok_data(post(server, read_body(server, "2024-04-01", "2024-04-01")))["data"]
    assert codes[2] in {r["CusCode"] for r in before}
    assert codes[3] in {r["CusCode"] for r in after}


def test_fields_projection_in_requested_order_unknown_ignored(sandbox):
    body = read_body(sandbox, "2026-04-01", "2026-04-30", fields=["Email", "CusCode", "NotAField", "Email"])
    rows = ok_data(post(sandbox, body))["data"]
    assert rows and all(list(r) == ["Email", "CusCode"] for r in rows)


@pytest.mark.parametrize(
    "fields", [["NotAField"], [], "CusCode", None], ids=["unknown", "empty", "string", "null"]
)
def test_fields_that_select_nothing_return_everything(sandbox, fields):
    rows = ok_data(post(sandbox, read_body(sandbox, "2026-04-01", "2026-04-30", fields=fields)))["data"]
    assert rows and all(list(r) == list(SKYBIZ_READ_FIELDS) for r in rows)


def _window(sandbox: SandboxServer, **extra: Any) -> list[dict[str, Any]]:
    data = ok_data(post(sandbox, read_body(sandbox, "2025-06-01", "2025-07-01", **extra)))
    rows: list[dict[str, Any]] = data["data"]
    return rows


def test_filters_are_case_insensitive_exact_and_anded(sandbox):
    everything = _window(sandbox)
    kl = _window(sandbox, filters={"Town": "KUALA LUMPUR"})
    assert kl and [r for r in everything if r["Town"].lower() == "kuala lumpur"] == kl
    both = _window(sandbox, filters={"Town": "kuala lumpur", "CurCode": "rm"})
    assert both == [r for r in kl if r["CurCode"] == "RM"]
    assert _window(sandbox, filters={"Town": "Kuala"}) == []  # exact, not a substring match


def test_unknown_filters_and_php_empty_array_are_ignored(sandbox):
    everything = _window(sandbox)
    assert _window(sandbox, filters={"NotAField": "x"}) == everything
    assert _window(sandbox, filters=[]) == everything


def test_numeric_filters_compare_numbers(sandbox):
    everything = _window(sandbox)
    want = [r for r in everything if r["TermCode"] == 30]
    assert want and _window(sandbox, filters={"TermCode": 30}) == want
    assert _window(sandbox, filters={"TermCode": "30"}) == want
    limits = [r for r in everything if r["CreditLimit"] == 5000.0]
    assert _window(sandbox, filters={"CreditLimit": "5000.00"}) == limits


def test_unknown_path_is_the_web_servers_404(sandbox):
    resp = requests.post(f"{sandbox.endpoints.skybiz_url}/supplier.php", json={}, timeout=30)
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.text)


def test_keep_alive_session_many_requests(sandbox):
    seen = []
    with requests.Session() as session:
        for day in range(1, 29):
            body = read_body(sandbox, f"2023-02-{day:02d}", f"2023-02-{day:02d}")
            seen.append(ok_data(session.post(url(sandbox), json=body, timeout=30))["date_range"]["from"])
    assert seen == [f"2023-02-{day:02d}" for day in range(1, 29)]
