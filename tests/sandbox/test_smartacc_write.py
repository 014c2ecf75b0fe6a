"""SmartAcc emulator, writes and a live dataset over real HTTP: create, update, mutation, shifting pages."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from skysmart_sandbox.smartacc import SmartAccState, create_app
from tests.sandbox.smartacc_helpers import SwappableApp, customer_id, serve, tiny_data

N = 45
ALL_IDS = [customer_id(i) for i in range(1, N + 1)]
EPOCH = datetime(1970, 1, 1)
NOW = datetime(2026, 1, 1, 9, 0)  # Malaysia wall time of the first "now"


def utc_ms(wall: datetime) -> int:
    """Malaysia wall time → UTC epoch ms, the number inside ``\\/Date(..)\\/``."""
    return (wall - timedelta(hours=8) - EPOCH) // timedelta(milliseconds=1)


def servicestack_date(wall: datetime) -> str:
    return f"/Date({utc_ms(wall)}-0000)/"


class Live:
    """A fresh emulator per test (writes change it) with a clock that ticks one second per call."""

    def __init__(self, url: str, state: SmartAccState) -> None:
        self.url = url
        self.state = state
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {state.credentials.api_key}"

    def get(self, path: str) -> Any:
        response = self.http.get(self.url + path)
        assert response.status_code == 200, response.text
        return response.json()

    def ids(self, path: str) -> list[str]:
        return [c["AcCustomerID"] for c in self.get(path)["Customers"]]

    def post(self, op: str, record: dict[str, Any]) -> requests.Response:
        return self.http.post(
            f"{self.url}/Customers/simple/{op}", json={"Customer": {"CustomerRecord": record}}
        )

    def edit_order(self) -> list[str]:
        return [
            cid for page in (1, 2, 3, 4) for cid in self.ids(f"/Customers/EditDate/2024-01-01?Page={page}")
        ]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, SwappableApp]]:
    swappable = SwappableApp()
    with serve(swappable) as url:
        yield url, swappable


@pytest.fixture
def live(server: tuple[str, SwappableApp]) -> Iterator[Live]:
    url, swappable = server
    seconds = itertools.count()
    clock: Callable[[], int] = lambda: utc_ms(NOW) + 1000 * next(seconds)  # noqa: E731
    state = SmartAccState(tiny_data(N), clock=clock)
    swappable.app = create_app(state)
    client = Live(url, state)
    yield client
    client.http.close()


def new_customer(cid: str = "C00010A", **overrides: Any) -> dict[str, Any]:
    record = {
        "AcCustomerID": cid,
        "AcCustomerName": "Kedai Runcit Baru",
        "AcTermID": "CASH",
        "AcAreaID": "KL",
        "AcCusGroupID": "RETAIL",
        "AcCusUDGroupID": "NA",
        "BillingAddress1": "1 Jalan Baru",
        "MobileNo": "011-1111111",
        "DateOfBirth": "1990-02-03",
        "MemberExpireDate": "2099-12-31",
        "LocalCreditLimit": 2500,
        "Foo": "ignored",  # unknown properties are ignored
        "Stamp": 99,  # not an AcCustomerSimple field: the server keeps its own
        "EditDate": "2020-01-01",  # the public client sends it; the server sets its own
    }
    record.update(overrides)
    return record


# -- create -----------------------------------------------------------------------------------------------


def test_create_echoes_the_stored_record(live: Live) -> None:
    response = live.post("create", new_customer())
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"Customer"}
    record = body["Customer"]["CustomerRecord"]
    assert record["AcCustomerID"] == "C00010A"
    assert record["CreateDate"] == record["EditDate"] == servicestack_date(NOW)
    assert (record["Stamp"], record["CreateBy"], record["EditBy"]) == (0, "sandbox", "sandbox")
    assert record["DateOfBirth"] == servicestack_date(datetime(1990, 2, 3))
    assert record["MemberExpireDate"] == servicestack_date(datetime(2099, 12, 31))
    assert record["MemberJoinDate"] == "/Date(-62135596800000-0000)/"  # not sent: DateTime.MinValue
    assert (record["IsActive"], record["IsMember"], record["AcCustomerIDParentID"]) == ("Y", "N", "C00010A")
    assert record["LocalCreditLimit"] == 2500 and "Foo" not in record
    assert live.get("/Customers/CustomerID/C00010A")["Customers"] == [record]


def test_create_is_placed_in_both_orders_and_found_by_mobile(live: Live) -> None:
    assert live.post("create", new_customer()).status_code == 200
    first = live.ids("/Customers/page/1")
    assert first[10] == "C00010A" and first[9] == "C00010" and first[11] == "C00011"
    assert [len(live.ids(f"/Customers/page/{p}")) for p in (1, 2, 3, 4)] == [20, 20, 6, 0]
    assert live.ids("/Customers/EditDate/2026-01-01") == ["C00010A"]
    assert live.edit_order()[-1] == "C00010A"
    assert live.ids("/Customers/MobileNo/011-1111111") == ["C00010A"]
    assert live.ids("/Customers/simple/CustomerID/C00010A") == ["C00010A"]


def field_errors(*pairs: tuple[str, str]) -> list[tuple[str, str, str]]:
    messages = {"NotEmpty": "'{}' must not be empty.", "Predicate": "'{}' does not exist."}
    return [(name, code, messages[code].format(name)) for name, code in pairs]


REQUIRED = ["AcCustomerID", "AcCustomerName", "AcTermID", "AcAreaID", "AcCusGroupID", "AcCusUDGroupID"]
TOO_LONG = "X" * 21


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({}, field_errors(*((n, "NotEmpty") for n in REQUIRED))),
        (new_customer(AcCustomerName=""), field_errors(("AcCustomerName", "NotEmpty"))),
        (new_customer(AcCustomerName="   "), field_errors(("AcCustomerName", "NotEmpty"))),
        (new_customer(AcTermID="C999"), field_errors(("AcTermID", "Predicate"))),
        (
            new_customer(AcAreaID="MARS", AcCusGroupID="VIP", AcCusUDGroupID="X", AcTermID=None),
            field_errors(("AcTermID", "NotEmpty"), ("AcAreaID", "Predicate"), ("AcCusGroupID", "Predicate"))
            + field_errors(("AcCusUDGroupID", "Predicate")),
        ),
        (
            new_customer(TOO_LONG),
            [
                (
                    "AcCustomerID",
                    "MaximumLength",
                    "The length of 'AcCustomerID' must be 20 characters or fewer. You entered 21 characters.",
                )
            ],
        ),
    ],
    ids=["empty", "blank-name", "whitespace-name", "unknown-term", "several-fields", "id-too-long"],
)
def test_create_validation(live: Live, record: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    response = live.post("create", record)
    status = response.json()["ResponseStatus"]
    assert response.status_code == 400
    assert (status["ErrorCode"], status["Message"]) == ("ValidationException", expected[0][2])
    assert [(e["FieldName"], e["ErrorCode"], e["Message"]) for e in status["Errors"]] == expected
    assert "Customer" not in response.json()
    assert live.state.customer_count == N


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", None),
        (
            b'{"Customer": {"CustomerRecord": {"AcCustomerID": "Z1", "DateOfBirth": "someday"}}}',
            "DateOfBirth",
        ),
        (
            b'{"Customer": {"CustomerRecord": {"AcCustomerID": "Z1", "LocalCreditLimit": "lots"}}}',
            "LocalCreditLimit",
        ),
    ],
    ids=["not-json", "bad-date", "bad-number"],
)
def test_create_binding_errors(live: Live, body: bytes, field: str | None) -> None:
    response = live.http.post(
        f"{live.url}/Customers/simple/create", data=body, headers={"Content-Type": "application/json"}
    )
    status = response.json()["ResponseStatus"]
    assert response.status_code == 400
    assert (status["ErrorCode"], status["Message"]) == (
        "SerializationException",
        "Unable to bind to request 'CreateCustomerSimple'",
    )
    assert [e["FieldName"] for e in status["Errors"]] == ([field] if field else [])


@pytest.mark.parametrize("cid", ["C00001", "C00010A"], ids=["from-data", "created"])
def test_duplicate_id_is_a_conflict(live: Live, cid: str) -> None:
    assert live.post("create", new_customer("C00010A")).status_code == 200
    response = live.post("create", new_customer(cid))
    assert response.status_code == 409
    assert response.json() == {
        "ResponseStatus": {"ErrorCode": "DuplicateKey", "Message": "Customer ID already exists", "Errors": []}
    }


# -- update -----------------------------------------------------------------------------------------------


def test_update_bumps_edit_date_and_stamp_keeps_create_date(live: Live) -> None:
    before = live.get("/Customers/CustomerID/C00002")["Customers"][0]
    first = live.post("update", {"AcCustomerID": "C00002", "BillingTel1": "03-1234 5678"})
    second = live.post("update", {"AcCustomerID": "C00002", "Notes": "called"})
    assert first.status_code == second.status_code == 200
    one, two = (r.json()["Customer"]["CustomerRecord"] for r in (first, second))
    assert (before["Stamp"], one["Stamp"], two["Stamp"]) == (2, 3, 4)
    assert one["EditDate"] == servicestack_date(NOW)
    assert two["EditDate"] == servicestack_date(NOW + timedelta(seconds=1))
    assert before["CreateDate"] == one["CreateDate"] == two["CreateDate"]
    assert (two["BillingTel1"], two["Notes"], two["EditBy"]) == ("03-1234 5678", "called", "sandbox")
    changed = ("Stamp", "EditDate", "EditBy", "BillingTel1", "Notes")
    assert {k: v for k, v in two.items() if k not in changed} == {
        k: v for k, v in before.items() if k not in changed
    }
    assert live.get("/Customers/CustomerID/C00002")["Customers"] == [two]


def test_update_moves_the_row_so_offset_paging_shifts(live: Live) -> None:
    page_one = live.ids("/Customers/EditDate/2024-05-01")
    assert page_one == ALL_IDS[:20]
    assert live.post("update", {"AcCustomerID": "C00001", "Notes": "edited while paging"}).status_code == 200
    page_two = live.ids("/Customers/EditDate/2024-05-01?Page=2")
    assert page_two[0] == "C00022"  # C00021 moved up into page 1, which the client already has
    assert "C00021" not in page_one + page_two
    assert live.edit_order()[-1] == "C00001"
    assert live.ids("/Customers/page/1") == ALL_IDS[:20]  # the id order does not move


def test_update_of_a_mobile_number_updates_the_lookup(live: Live) -> None:
    assert live.ids("/Customers/MobileNo/012-3456789") == ["C00004", "C00009"]
    assert live.post("update", {"AcCustomerID": "C00004", "MobileNo": "017-7777777"}).status_code == 200
    assert live.ids("/Customers/MobileNo/012-3456789") == ["C00009"]
    assert live.ids("/Customers/MobileNo/017-7777777") == ["C00004"]


@pytest.mark.parametrize(
    ("record", "status", "code", "message"),
    [
        ({"AcCustomerID": "NOPE", "AcCustomerName": "x"}, 404, "NotFound", "Customer not found"),
        ({"AcCustomerName": "no id"}, 400, "ValidationException", "'AcCustomerID' must not be empty."),
        (
            {"AcCustomerID": "C00003", "AcCustomerName": ""},
            400,
            "ValidationException",
            "'AcCustomerName' must not be empty.",
        ),
        (
            {"AcCustomerID": "C00003", "AcTermID": "C999"},
            400,
            "ValidationException",
            "'AcTermID' does not exist.",
        ),
    ],
    ids=["missing-customer", "no-id", "blank-name", "unknown-term"],
)
def test_update_errors(live: Live, record: dict[str, Any], status: int, code: str, message: str) -> None:
    response = live.post("update", record)
    body = response.json()
    assert response.status_code == status
    assert (body["ResponseStatus"]["ErrorCode"], body["ResponseStatus"]["Message"]) == (code, message)
    assert live.get("/Customers/CustomerID/C00003")["Customers"][0]["Stamp"] == 3


# -- live mutation ----------------------------------------------------------------------------------------


def snapshot(state: SmartAccState) -> dict[str, dict[str, Any]]:
    return {cid: record for cid in ALL_IDS if (record := state.customer_json(cid)) is not None}


def test_mutation_after_every_nth_request(live: Live) -> None:
    before = snapshot(live.state)
    live.state.switches.mutate_every_n_requests = 3
    live.state.switches.mutate_count = 2
    live.get("/Terms")
    live.get("/Terms")
    assert snapshot(live.state) == before
    live.get("/Terms")
    live.state.switches.mutate_every_n_requests = 0
    after = snapshot(live.state)
    changed = [cid for cid in ALL_IDS if after[cid] != before[cid]]
    assert 1 <= len(changed) <= 2
    for cid in changed:
        old, new = before[cid], after[cid]
        assert new["Stamp"] > old["Stamp"]
        assert new["EditDate"] in (servicestack_date(NOW), servicestack_date(NOW + timedelta(seconds=1)))
        assert {k for k in set(old) | set(new) if old.get(k) != new.get(k)} - {"Stamp", "EditDate"} <= {
            "BillingTel1",
            "Notes",
        }
        assert live.get(f"/Customers/CustomerID/{cid}")["Customers"] == [new]
    order = live.edit_order()
    assert sorted(order[-len(changed) :]) == sorted(changed)
    assert sorted(order) == ALL_IDS


def test_mutating_while_paging_makes_offset_paging_see_rows_twice_or_miss_them(live: Live) -> None:
    live.state.switches.mutate_every_n_requests = 1
    live.state.switches.mutate_count = 10
    seen = [cid for page in (1, 2, 3) for cid in live.ids(f"/Customers/EditDate/2024-01-01?Page={page}")]
    live.state.switches.mutate_every_n_requests = 0
    assert len(seen) == N  # the total does not change, only the order
    assert len(set(seen)) < N  # some rows were seen twice, so others were missed
    assert live.ids("/Customers/EditDate/2024-01-01?Page=4") == []


def test_concurrent_clients_during_mutation_see_consistent_pages(live: Live) -> None:
    live.state.switches.mutate_every_n_requests = 1
    live.state.switches.mutate_count = 3
    failures: list[str] = []

    def client() -> None:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {live.state.credentials.api_key}"
            for page in itertools.islice(itertools.cycle((1, 2, 3)), 15):
                response = session.get(f"{live.url}/Customers/EditDate/2024-01-01?Page={page}")
                rows = response.json().get("Customers", [])
                dates = [int(r["EditDate"][6:-7]) for r in rows]
                if (
                    response.status_code != 200
                    or dates != sorted(dates)
                    or len(rows) != (5 if page == 3 else 20)
                ):
                    failures.append(f"{response.status_code} page {page}: {len(rows)} rows")

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    live.state.switches.mutate_every_n_requests = 0
    assert failures == []
    assert sorted(live.edit_order()) == ALL_IDS
