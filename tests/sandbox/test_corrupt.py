"""The sandbox's record corruption switch: which records, which damage, the truth, and the CLI option."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
import requests

from pipelines.cli import build_parser
from pipelines.errors import ConfigError
from skysmart_sandbox.cli import resolve_options
from skysmart_sandbox.faults import (
    HOSTILE_PREFIX,
    HOSTILE_SUFFIX,
    LONG_TEXT_CHARS,
    SKYBIZ_SHAPE,
    SMARTACC_SHAPE,
    RecordShape,
    corrupt_record,
    corruption_for,
)
from skysmart_sandbox.switches import CORRUPTIONS, Switches

SKYBIZ_RECORD = {
    "CusCode": "C000001",
    "CusName": "Kedai Runcit Ali",
    "DateTimeModified": "2024-03-05 10:00:00",
    "CurCode": "RM",
    "Tel": "03-1234 5678",
    "Email": "ali@example.my",
    "Address": "No. 1, Jalan Merdeka",
    "DateStart": "2020-01-01",
    "CreditLimit": 5000.0,
}
SMARTACC_RECORD = {
    "AcCustomerID": "300-A0001",
    "AcCustomerName": "Syarikat Tan",
    "EditDate": "/Date(1709632800000-0000)/",
    "AcCurrencyID": "MYR",
    "BillingTel1": "012-345 6789",
    "BillingEmail": "tan@example.my",
    "BillingAddress1": "Lot 5",
    "CreateDate": "/Date(1577836800000-0000)/",
    "LocalCreditLimit": 100.5,
}


def _serve_args(*argv: str) -> Any:
    return build_parser().parse_args(["sandbox", "serve", *argv])


def test_which_records_are_hit_depends_on_seed_and_id_only() -> None:
    ids = [f"C{i:06d}" for i in range(4_000)]
    first = Switches(corrupt_rate=0.1, seed=3)
    again = Switches(corrupt_rate=0.1, seed=3)
    other = Switches(corrupt_rate=0.1, seed=4)
    hits = [i for i in ids if corruption_for(first, i)]
    assert hits == [i for i in ids if corruption_for(again, i)]
    assert hits != [i for i in ids if corruption_for(other, i)]
    assert 300 <= len(hits) <= 500  # the share asked for (4,000 x 0.1), give or take
    assert not any(corruption_for(Switches(), i) for i in ids)
    assert all(corruption_for(Switches(corrupt_rate=1.0), i) for i in ids[:50])


@pytest.mark.parametrize(
    ("shape", "record"), [(SKYBIZ_SHAPE, SKYBIZ_RECORD), (SMARTACC_SHAPE, SMARTACC_RECORD)]
)
@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_each_kind_damages_one_field_as_named_and_records_the_truth(
    shape: RecordShape, record: dict[str, Any], kind: str
) -> None:
    record_id = str(record[shape.id])
    for seed in range(12):  # several seeds: different variants of the kind
        switches = Switches(corrupt_rate=1.0, corrupt_kinds=(kind,), seed=seed)
        damaged = corrupt_record(record, shape, switches)
        assert damaged is not None
        hit_kind, field = switches.corrupted[record_id]
        assert hit_kind == kind
        assert {k for k in record if damaged.get(k, object()) != record[k]} == {field}
        value = damaged.get(field)
        if kind == "missing_key":
            assert field not in damaged
        elif kind == "null":
            assert value is None
        elif kind == "wrong_type":
            assert not isinstance(value, str) and value is not None
            assert type(value) is not type(record[field])
        elif kind == "long_string":
            assert isinstance(value, str) and len(value) == LONG_TEXT_CHARS
        elif kind == "control_chars":
            assert value == f"{HOSTILE_PREFIX}{record[field]}{HOSTILE_SUFFIX}"
        else:
            assert field in (shape.modified, shape.date) and value != record[field]
        assert record == (SKYBIZ_RECORD if shape is SKYBIZ_SHAPE else SMARTACC_RECORD)  # input untouched


def test_switch_values_are_checked() -> None:
    with pytest.raises(ValueError):
        Switches(corrupt_rate=1.5)
    with pytest.raises(ValueError):
        Switches(corrupt_kinds=("teapot",))
    switches = Switches(corrupt_rate=0.5)
    switches.reset()
    assert switches.corrupt_rate == 0.0


def test_both_apis_send_hit_records_damaged_and_the_rest_as_before(sandbox_factory: Any) -> None:
    server = sandbox_factory(size=300, corrupt_rate=0.5, seed=7)
    ep = server.endpoints
    clean = server.smartacc  # the same state serves both: compare against its own undamaged record
    page = requests.get(
        f"{ep.smartacc_url}/Customers/page/1",
        params={"format": "json"},
        headers={"Authorization": f"Bearer {ep.smartacc_api_key}"},
        timeout=10,
    ).json()["Customers"]
    truth = clean.switches.corrupted
    for served in page:
        ident = served.get("AcCustomerID")
        original = clean.customer_json(ident) if ident else None
        if ident in truth:
            assert served != original
        elif ident is not None:
            assert served == original, ident
    assert truth, "half the records are hit, so a page of 20 holds some"

    body = {
        "api_key": ep.skybiz_api_key,
        "api_secret": ep.skybiz_api_secret,
        "action": "read",
        "date_from": "2024-01-01",
        "date_to": "2024-01-31",
    }
    rows = requests.post(f"{ep.skybiz_url}/customer.php", json=body, timeout=10).json()["data"]["data"]
    hit = server.skybiz.switches.corrupted
    honest = server.skybiz.read_window(date(2024, 1, 1), date(2024, 1, 31))
    assert len(rows) == len(honest) and hit
    for served, original in zip(rows, honest, strict=True):
        code = original["CusCode"]
        if code in hit:
            assert served != json.loads(json.dumps(original)), code
        else:
            assert served == json.loads(json.dumps(original)), code


def test_cli_option_and_environment() -> None:
    options = resolve_options(_serve_args("--corrupt", "0.05", "--corrupt-kinds", "null,bad_date"), {})
    assert options["corrupt"] == 0.05 and options["corrupt_kinds"] == ("null", "bad_date")
    env = {"SKYSMART_SANDBOX_CORRUPT": "0.2", "SKYSMART_SANDBOX_CORRUPT_KINDS": "long_string"}
    options = resolve_options(_serve_args(), env)
    assert options["corrupt"] == 0.2 and options["corrupt_kinds"] == ("long_string",)
    assert resolve_options(_serve_args(), {})["corrupt_kinds"] == CORRUPTIONS
    for argv in (("--corrupt", "2"), ("--corrupt-kinds", "teapot")):
        with pytest.raises(ConfigError):
            resolve_options(_serve_args(*argv), {})
