"""SmartAcc emulator, read side, over real HTTP: routes, paging, EditDate semantics, lookups, JSON shape."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import datetime

import pytest
import requests

from skysmart_sandbox.smartacc import SmartAccState, create_app
from tests.sandbox.smartacc_helpers import (
    FIELDS,
    ODD_NAME,
    SHARED_MOBILE,
    customer_id,
    edit_date,
    serve,
    tiny_data,
)

N = 45
ALL_IDS = [customer_id(i) for i in range(1, N + 1)]
AUDIT = {"CreateBy", "CreateDate", "EditBy", "EditDate", "Stamp"}


@pytest.fixture(scope="module")
def state() -> SmartAccState:
    return SmartAccState(tiny_data(N))


@pytest.fixture(scope="module")
def url(state: SmartAccState) -> Iterator[str]:
    with serve(create_app(state)) as base:
        yield base


@pytest.fixture(scope="module")
def http(state: SmartAccState) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {state.credentials.api_key}"
        session.headers["Accept"] = "application/json"
        yield session


def ids(response: requests.Response, key: str = "Customers") -> list[str]:
    assert response.status_code == 200, response.text
    return [c["AcCustomerID"] for c in response.json()[key]]


def since(wall: datetime) -> list[str]:
    """Expected EditDate-route order: EditDate >= wall, then by (EditDate, AcCustomerID)."""
    rows = [(edit_date(i), customer_id(i)) for i in range(1, N + 1) if edit_date(i) >= wall]
    return [cid for _, cid in sorted(rows)]


# -- routes and paging ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "expected"),
    [(1, ALL_IDS[:20]), (2, ALL_IDS[20:40]), (3, ALL_IDS[40:]), (4, []), (99, [])],
    ids=["first", "second", "short-last", "just-past-end", "far-past-end"],
)
def test_pages_hold_twenty_in_id_order(
    http: requests.Session, url: str, page: int, expected: list[str]
) -> None:
    response = http.get(f"{url}/Customers/page/{page}?format=json")
    assert ids(response) == expected
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert set(response.json()) == {"Customers"}  # no totals, no ResponseStatus on success


def test_past_the_end_is_an_empty_list_not_an_error(http: requests.Session, url: str) -> None:
    response = http.get(f"{url}/Customers/page/4")
    assert (response.status_code, response.text) == (200, '{"Customers":[]}')


@pytest.mark.parametrize(
    "path",
    [
        "/customers/PAGE/2",
        "/Customers/page/2.json",
        "/Customers/page/2?format=json",
        "/Customers/page/2?format=json&RecordsPerPage=5&Nonsense=1",
        "/Customers/page/2/",
        "/Customers?Page=2",
        "/Customers?page=2",
    ],
    ids=[
        "case",
        "json-suffix",
        "format-query",
        "unknown-params-ignored",
        "trailing-slash",
        "query-bound",
        "q-case",
    ],
)
def test_route_variants_answer_the_same_page(http: requests.Session, url: str, path: str) -> None:
    assert ids(http.get(url + path)) == ALL_IDS[20:40]


def test_accept_header_alone_gives_json(state: SmartAccState, url: str) -> None:
    headers = {"Authorization": f"Bearer {state.credentials.api_key}", "Accept": "application/xml"}
    response = requests.get(f"{url}/Customers/page/1", headers=headers, timeout=10)
    assert response.headers["content-type"].startswith("application/json")
    assert len(response.json()["Customers"]) == 20


@pytest.mark.parametrize(
    "path", ["/Customers/page/1?format=xml", "/Customers/page/1.csv"], ids=["query", "suffix"]
)
def test_other_formats_are_not_served(http: requests.Session, url: str, path: str) -> None:
    response = http.get(url + path)
    assert response.status_code == 406
    assert response.json()["ResponseStatus"]["ErrorCode"] == "NotAcceptable"


def test_jsonp_callback_wraps_the_body(http: requests.Session, url: str) -> None:
    response = http.get(f"{url}/Customers/CustomerID/C00001?callback=handle")
    assert response.headers["content-type"] == "application/javascript"
    assert response.text.startswith('handle({"Customers":[{"AcCustomerID":"C00001"')
    assert response.text.endswith("})")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/Customerz"),
        ("GET", "/Customers/page"),
        ("POST", "/Customers/page/1"),
        ("GET", "/Customers/simple/create"),
    ],
    ids=["unknown", "missing-param", "wrong-verb", "post-only-route"],
)
def test_unmatched_routes_answer_servicestack_404(
    http: requests.Session, url: str, method: str, path: str
) -> None:
    response = http.request(method, url + path)
    assert (response.status_code, response.text) == (404, "404")
    assert response.headers["content-type"].startswith("text/plain")


def test_bare_customers_returns_everything(http: requests.Session, url: str) -> None:
    assert ids(http.get(f"{url}/Customers")) == ALL_IDS


# -- EditDate ---------------------------------------------------------------------------------------------


def test_edit_date_is_inclusive_local_midnight_and_ordered(http: requests.Session, url: str) -> None:
    expected = since(datetime(2024, 5, 3))
    assert expected[0] == "C00009"  # 2024-05-03 00:00 exactly: >= includes it
    first = ids(http.get(f"{url}/Customers/EditDate/2024-05-03"))
    second = ids(http.get(f"{url}/Customers/EditDate/2024-05-03?Page=2"))
    third = ids(http.get(f"{url}/Customers/EditDate/2024-05-03?Page=3"))
    assert first == expected[:20]
    assert second == expected[20:]
    assert third == []


def test_edit_date_with_time_and_ties_by_id(http: requests.Session, url: str) -> None:
    # Customers 10 and 11 share 2024-05-03 06:00; ties are ordered by AcCustomerID.
    got = ids(http.get(f"{url}/Customers/EditDate/2024-05-03T06:00:00"))
    assert got[:3] == ["C00010", "C00011", "C00012"]
    assert got == since(datetime(2024, 5, 3, 6))[:20]
    later = ids(http.get(f"{url}/Customers/EditDate/2024-05-03T06:00:01"))
    assert later[0] == "C00012"


def test_edit_date_before_everything_and_after_everything(http: requests.Session, url: str) -> None:
    assert ids(http.get(f"{url}/Customers/EditDate/2000-01-01")) == since(datetime(2000, 1, 1))[:20]
    assert ids(http.get(f"{url}/Customers/EditDate/2030-01-01")) == []


def test_edit_date_simple_variant(http: requests.Session, url: str) -> None:
    response = http.get(f"{url}/Customers/simple/EditDate/2024-05-03?Page=2")
    assert ids(response) == since(datetime(2024, 5, 3))[20:]
    assert not {"EditDate", "Stamp"} & set(response.json()["Customers"][0])


# -- lookups by id and mobile -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/Customers/CustomerID/C00002", ["C00002"]),
        ("/Customers/CustomerID/NOPE", []),
        ("/Customers?AcCustomerID=C00003", ["C00003"]),
        (f"/Customers/MobileNo/{SHARED_MOBILE}", ["C00004", "C00009"]),
        ("/Customers/MobileNo/019-0000007", ["C00007"]),
        ("/Customers/MobileNo/000", []),
        ("/Customers/simple/CustomerID/C00005", ["C00005"]),
        (f"/Customers/simple/MobileNo/{SHARED_MOBILE}", ["C00004", "C00009"]),
    ],
    ids=[
        "id",
        "id-missing",
        "id-query",
        "mobile-shared",
        "mobile-one",
        "mobile-missing",
        "simple-id",
        "simple-mobile",
    ],
)
def test_lookups_return_lists_never_404(
    http: requests.Session, url: str, path: str, expected: list[str]
) -> None:
    assert ids(http.get(url + path)) == expected


# -- JSON shape -------------------------------------------------------------------------------------------


def test_dates_are_servicestack_dates_from_malaysia_wall_time(http: requests.Session, url: str) -> None:
    text = http.get(f"{url}/Customers/CustomerID/C00001").text
    # 2024-05-01 00:00 and 10:30 Malaysia time (SMARTACC.md §6), slashes escaped as ServiceStack writes them.
    assert '"EditDate":"\\/Date(1714492800000-0000)\\/"' in text
    assert '"EInvoiceTINValidateDateTime":"\\/Date(1714530600000-0000)\\/"' in text
    assert json.loads(text)["Customers"][0]["EditDate"] == "/Date(1714492800000-0000)/"


def test_unset_dates_are_the_min_value_sentinel_and_nullable_one_is_omitted(
    http: requests.Session, url: str
) -> None:
    text = http.get(f"{url}/Customers/CustomerID/C00002").text
    record = json.loads(text)["Customers"][0]
    for name in ("DateOfBirth", "MemberJoinDate", "MemberExpireDate", "MemberMarriageDate"):
        assert f'"{name}":"\\/Date(-62135596800000-0000)\\/"' in text
        assert record[name] == "/Date(-62135596800000-0000)/"
    assert "EInvoiceTINValidateDateTime" not in record


def test_null_strings_are_omitted_empty_strings_kept(http: requests.Session, url: str) -> None:
    odd, even = (
        http.get(f"{url}/Customers/CustomerID/{c}").json()["Customers"][0] for c in ("C00001", "C00002")
    )
    assert odd["BillingAddress2"] == ""
    assert "BillingAddress2" not in even
    assert "Notes" not in odd and "EInvoiceRegName" not in odd


def test_fields_in_documented_order_with_typed_values(http: requests.Session, url: str) -> None:
    record = http.get(f"{url}/Customers/CustomerID/C00001").json()["Customers"][0]
    assert list(record) == [f for f in FIELDS if f in record]
    assert record["Stamp"] == 1
    assert record["LocalBalanceAmount"] == 1234.56
    assert record["MemberPointBalance"] == 1.5
    assert record["IsActive"] in ("Y", "N") and record["IsMember"] == "Y"
    raw = http.get(f"{url}/Customers/CustomerID/C00001").text
    assert '"MemberPointAccumulated":100,' in raw and '"LocalCreditLimit":5000,' in raw


def test_text_is_escaped_as_json_and_unicode_kept(http: requests.Session, url: str) -> None:
    response = http.get(f"{url}/Customers/CustomerID/C00003")
    assert response.json()["Customers"][0]["AcCustomerName"] == ODD_NAME
    assert '\\"Ah Seng\\" \\\\ Sdn. Bhd.\\nCafé 咖啡' in response.content.decode("utf-8")


def test_simple_records_drop_audit_and_einvoice_fields(http: requests.Session, url: str) -> None:
    response = http.get(f"{url}/Customers/simple/page/1")
    rows = response.json()["Customers"]
    assert [r["AcCustomerID"] for r in rows] == ALL_IDS[:20]
    keys = set().union(*rows)
    assert not keys & AUDIT
    assert not [k for k in keys if "EInvoice" in k]
    assert {"AcCustomerName", "AcTermID", "MobileNo", "PriceCode", "LocalCreditLimit"} <= keys
    assert ids(http.get(f"{url}/Customers/simple")) == ALL_IDS


# -- lookup services --------------------------------------------------------------------------------------


def test_terms_areas_and_ud_groups(http: requests.Session, url: str) -> None:
    terms = http.get(f"{url}/Terms").json()["Terms"]
    assert [(t["AcTermID"], t["TermDays"]) for t in terms] == [("C30", 30), ("C60", 60), ("CASH", 0)]
    assert terms[0]["CreateDate"] == "/Date(-62135596800000-0000)/" and terms[0]["Stamp"] == 0
    areas = http.get(f"{url}/CustomerAreas").json()["CustomerAreas"]
    assert [a["AcAreaID"] for a in areas] == ["KL", "NA"]
    ud = http.get(f"{url}/CustomerUDGroups").json()["CustomerUDGroups"]
    assert ud[0] | {"Stamp": 0} == {
        "AcCusUDGroupID": "NA",
        "AcCusUDGroupDesc": "Not applicable",
        "CreateDate": "/Date(-62135596800000-0000)/",
        "EditDate": "/Date(-62135596800000-0000)/",
        "Stamp": 0,
    }


@pytest.mark.parametrize(
    ("path", "count", "total", "first"),
    [
        ("/CustomerGroups", 20, 25, "G01"),
        ("/CustomerGroups?Page=2", 5, 25, "G21"),
        ("/CustomerGroups/page/2", 5, 25, "G21"),
        ("/CustomerGroups/page/3", 0, 25, None),
        ("/CustomerGroups?RecordsPerPage=10&Page=3", 5, 25, "G21"),
        ("/CustomerGroups/AcCusGroupID/RETAIL", 1, 1, "RETAIL"),
        ("/CustomerGroups/AcCusGroupID/NOPE", 0, 0, None),
    ],
    ids=["default", "page-query", "page-route", "past-end", "records-per-page", "by-id", "by-id-missing"],
)
def test_customer_groups_paging_with_totals(
    http: requests.Session, url: str, path: str, count: int, total: int, first: str | None
) -> None:
    body = http.get(url + path).json()
    assert (body["TotalRecords"], body["TotalRecordsInPage"], len(body["CustomerGroups"])) == (
        total,
        count,
        count,
    )
    assert (body["CustomerGroups"][0]["AcCusGroupID"] if count else None) == first


# -- binding errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "code", "message", "field"),
    [
        (
            "/Customers/page/abc",
            400,
            "SerializationException",
            "Unable to bind to request 'Customers'",
            "Page",
        ),
        (
            "/Customers/EditDate/yesterday",
            400,
            "SerializationException",
            "Unable to bind to request 'Customers'",
            "EditDate",
        ),
        (
            "/Customers/simple/page/x",
            400,
            "SerializationException",
            "Unable to bind to request 'CustomersSimple'",
            "Page",
        ),
        ("/Customers/page/0", 400, "ArgumentException", "Page must be 1 or greater", None),
        (
            "/CustomerGroups?RecordsPerPage=0",
            400,
            "ArgumentException",
            "RecordsPerPage must be 1 or greater",
            None,
        ),
    ],
    ids=["page-not-int", "edit-date-not-date", "simple-page-not-int", "page-zero", "records-per-page-zero"],
)
def test_bad_parameters(
    http: requests.Session, url: str, path: str, status: int, code: str, message: str, field: str | None
) -> None:
    response = http.get(url + path)
    body = response.json()
    assert response.status_code == status
    assert set(body) == {"ResponseStatus"}
    assert (body["ResponseStatus"]["ErrorCode"], body["ResponseStatus"]["Message"]) == (code, message)
    assert [e["FieldName"] for e in body["ResponseStatus"]["Errors"]] == ([field] if field else [])


# -- the real generator's data ----------------------------------------------------------------------------


def test_serves_the_generated_dataset() -> None:
    from skysmart_sandbox.data import generate

    data = generate(50, seed=7)
    state = SmartAccState(data)
    expected = sorted(data.smartacc.column("AcCustomerID").to_pylist())
    with serve(create_app(state)) as base, requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {state.credentials.api_key}"
        pages = [ids(session.get(f"{base}/Customers/page/{p}")) for p in (1, 2, 3, 4)]
        record = session.get(f"{base}/Customers/page/1").json()["Customers"][0]
        terms = session.get(f"{base}/Terms").json()["Terms"]
    assert [len(p) for p in pages] == [20, 20, 10, 0]
    assert [i for page in pages for i in page] == expected
    assert list(record) == [f for f in FIELDS if f in record]
    assert record["EditDate"].startswith("/Date(") and record["EditDate"].endswith("-0000)/")
    assert {t["AcTermID"] for t in terms} >= set(data.smartacc.column("AcTermID").unique().to_pylist()) - {
        None
    }


def test_unsorted_input_is_served_in_id_order_and_an_empty_dataset_serves_empty_pages() -> None:
    data = tiny_data(30)
    shuffled = data.smartacc.take(list(reversed(range(30))))
    states = [
        SmartAccState(dataclasses.replace(data, smartacc=shuffled)),
        SmartAccState(dataclasses.replace(data, smartacc=data.smartacc.slice(0, 0))),
    ]
    for state, expected in zip(states, (ALL_IDS[:20], []), strict=True):
        with serve(create_app(state)) as base:
            headers = {"Authorization": f"Bearer {state.credentials.api_key}"}
            page = requests.get(f"{base}/Customers/page/1", headers=headers, timeout=10)
            edits = requests.get(f"{base}/Customers/EditDate/2000-01-01", headers=headers, timeout=10)
        assert ids(page) == expected
        assert len(ids(edits)) == len(expected)
