"""The shared cleaners, rule by rule, on inputs written the way Malaysian ERP users write them."""

from __future__ import annotations

import hashlib
import json
import random
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipelines.normalize import clean
from pipelines.sources.smartacc.normalize import malaysia_dates, servicestack_dates


def arr(*values: str | None) -> pa.Array:
    return pa.array(list(values), pa.string())


# -- text ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Acme Sdn Bhd", "Acme Sdn Bhd"),
        ("  Acme   Sdn\tBhd  ", "Acme Sdn Bhd"),
        ("Acme\nSdn\r\nBhd", "Acme Sdn Bhd"),
        ("Acme\u00a0Sdn\u3000Bhd", "Acme Sdn Bhd"),
        ("\ufeffAcme\u200b", "Acme"),
        ("ACME sdn BHD", "ACME sdn BHD"),
        ("   ", None),
        ("\t", None),
        ("", None),
        (None, None),
    ],
    ids=[
        "clean",
        "spaces-tab",
        "line-breaks",
        "nbsp-ideographic",
        "zero-width",
        "case-kept",
        "blank",
        "tab",
        "empty",
        "null",
    ],
)
def test_clean_text(raw: str | None, expected: str | None) -> None:
    assert clean.clean_text(arr(raw)).to_pylist() == [expected]


def test_clean_text_mixes_clean_and_unclean_rows_in_place() -> None:
    out = clean.clean_text(arr("a", " b ", None, "c  d", "e"))
    assert out.to_pylist() == ["a", "b", None, "c d", "e"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("KUALA LUMPUR", "Kuala Lumpur"), ("petaling  jaya", "Petaling Jaya"), ("  shah alam ", "Shah Alam")],
    ids=["upper", "lower-doubled-space", "padded"],
)
def test_title_case(raw: str, expected: str) -> None:
    assert clean.title_case(arr(raw)).to_pylist() == [expected]


def test_join_present_keeps_all_null_rows() -> None:
    # pyarrow 26's null_handling="skip" drops such rows; the helper must return one value per row.
    a = pa.array([None, "a", None, "c"], clean.TEXT)
    b = pa.array([None, None, "b", "d"], clean.TEXT)
    assert clean.join_present([a, b], ";", 4).to_pylist() == [None, "a", "b", "c;d"]


# -- phones -------------------------------------------------------------------------------------------------

PHONES = [
    ("03-2142 1234", "+60321421234", None),
    ("03 2142 1234", "+60321421234", None),
    ("(03) 2142-1234", "+60321421234", None),
    ("03.2142.1234", "+60321421234", None),
    ("+60 3-2142 1234", "+60321421234", None),
    ("+603-21421234", "+60321421234", None),
    ("0060 3 2142 1234", "+60321421234", None),
    ("60321421234", "+60321421234", None),
    ("012-345 6789", "+60123456789", None),
    ("012 - 3456789", "+60123456789", None),
    ("0123456789", "+60123456789", None),
    ("6012-3456789", "+60123456789", None),
    ("+6012 345 6789", "+60123456789", None),
    ("011-1234 5678", "+601112345678", None),
    ("082-123456", "+6082123456", None),
    ("1-300-88-1234", "+601300881234", None),
    ("03-2142 1234 ext. 12", "+60321421234", "12"),
    ("03-2142 1234 x 305", "+60321421234", "305"),
    ("03-21421234 Ext 7", "+60321421234", "7"),
    ("+65 6123 4567", "+6561234567", None),
]
PHONE_IDS = [
    "kl-landline",
    "kl-spaces",
    "parenthesised-area",
    "dotted",
    "intl-spaced",
    "intl-dash",
    "idd-00",
    "bare-country-code",
    "mobile-dash-space",
    "mobile-spaced-dash",
    "mobile-digits",
    "mobile-bare-cc",
    "mobile-intl",
    "mobile-011",
    "sabah-landline",
    "1300-number",
    "ext-dot",
    "ext-x",
    "ext-word",
    "singapore-intl",
]


@pytest.mark.parametrize(("raw", "e164", "extension"), PHONES, ids=PHONE_IDS)
def test_phones_to_e164(raw: str, e164: str, extension: str | None) -> None:
    result = clean.clean_phones(arr(raw))
    assert result.e164.to_pylist() == [e164]
    assert result.extension.to_pylist() == [extension]
    assert result.bad.to_pylist() == [False]


@pytest.mark.parametrize(
    "raw",
    [
        "12345",
        "N/A",
        "-",
        "0",
        "03-",
        "TBA",
        "012-345",
        "tel",
        "++60",
        "1-800-HELP",
        "03-1234567",
        "6012345678",
    ],
    ids=[
        "short",
        "n/a",
        "dash",
        "zero",
        "area-only",
        "tba",
        "truncated-mobile",
        "word",
        "double-plus",
        "vanity",
        "kl-one-digit-short",
        "cc-but-national-too-short",
    ],
)
def test_unusable_phones_are_bad(raw: str) -> None:
    result = clean.clean_phones(arr(raw))
    assert result.e164.to_pylist() == [None]
    assert result.bad.to_pylist() == [True]


def test_blank_phone_is_null_not_bad() -> None:
    result = clean.clean_phones(arr("", "  ", None))
    assert result.e164.to_pylist() == [None, None, None]
    assert result.bad.to_pylist() == [False, False, False]


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("6123 4567", "SG", "+6561234567"),
        ("65-91234567", "SG", "+6591234567"),
        ("03-9422 1292", "SG", "+60394221292"),
        ("03-39809881", "SG", "+60339809881"),
        ("0065 6123 4567", "MY", "+6561234567"),
        ("+60 12 345 6789", "SG", "+60123456789"),
        ("6123 4567", "MY", "+6061234567"),
        ("6123 4567", None, "+6061234567"),
    ],
    ids=[
        "sg-local",
        "sg-bare-cc",
        "sg-customer-kl-line",
        "sg-dialling-prefix-is-not-iran",
        "idd-00-abroad",
        "intl-ignores-region",
        "malaysian-row",
        "unknown-country-is-malaysia",
    ],
)
def test_phone_region_comes_from_the_row(raw: str, region: str | None, e164: str | None) -> None:
    result = clean.clean_phones(arr(raw), arr(region))
    assert result.e164.to_pylist() == [e164]


def _reference(text: str, region: str) -> tuple[str | None, str | None]:
    """phonenumbers itself (parse, shape check), with the same fall-back to Malaysia."""
    found = clean._parse_phone_slow(f"{region}\x1f{text}")
    if found[0] is None and region != "MY":
        found = clean._parse_phone_slow(f"MY\x1f{text}")
    if found[0] is not None and not re.fullmatch(r"\+[1-9][0-9]{6,14}", found[0]):
        return None, None  # the contract's E.164 pattern has the last word
    return found


def test_column_wide_phone_parsing_agrees_with_phonenumbers() -> None:
    rng = random.Random(20261121)
    shapes = [
        lambda d: "0" + d,
        lambda d: "+60" + d,
        lambda d: "60" + d,
        lambda d: d,
        lambda d: "0060" + d,
        lambda d: "+60 " + d[:2] + "-" + d[2:],
        lambda d: "0" + d + " ext " + d[:2],
        lambda d: "(0" + d[:1] + ") " + d[1:],
        lambda d: "+65" + d,
        lambda d: "65" + d,
        lambda d: "+1" + d,
    ]
    values = []
    for _ in range(4000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(5, 12)))
        values.append(rng.choice(shapes)(digits))
    regions = [rng.choice(["MY", "MY", "SG", "ID", "GB", None]) for _ in values]
    result = clean.clean_phones(pa.array(values), pa.array(regions, pa.string()))
    got = list(zip(result.e164.to_pylist(), result.extension.to_pylist(), strict=True))
    expected = [_reference(v, r or "MY") for v, r in zip(values, regions, strict=True)]
    assert got == expected
    assert sum(1 for e, _ in got if e) > 500  # the sample exercises usable numbers, not only refusals


# -- e-mail -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("accounts@acme.com.my", "accounts@acme.com.my"),
        ("  Ali.Bakar@Gmail.COM ", "ali.bakar@gmail.com"),
        ("first+tag@sub.example.co", "first+tag@sub.example.co"),
        ("o'neil@acme.com", "o'neil@acme.com"),
        ("user@xn--bcher-kva.com", "user@xn--bcher-kva.com"),
    ],
    ids=["plain", "padded-mixed-case", "plus-tag", "apostrophe-slow-path", "punycode-domain"],
)
def test_valid_emails(raw: str, expected: str) -> None:
    result = clean.clean_emails(arr(raw))
    assert result.email.to_pylist() == [expected]
    assert result.bad.to_pylist() == [False]


@pytest.mark.parametrize(
    "raw",
    [
        "ali@gmail",
        "ali.gmail.com",
        "ali@@gmail.com",
        "n/a",
        "-",
        "ali@gmail,com",
        "ali @ yahoo.com",
        "a@yahoo.com; b@gmail.com",
        "ali.@gmail.com",
        "ali@host.local",
        "ali@ab--cd.com",
        "ali@x.c0m",
    ],
    ids=[
        "no-tld",
        "no-at",
        "double-at",
        "n/a",
        "dash",
        "comma",
        "spaces",
        "two-addresses",
        "dot-before-at",
        "special-use-domain",
        "reserved-dashes",
        "digit-tld",
    ],
)
def test_invalid_emails_are_bad(raw: str) -> None:
    result = clean.clean_emails(arr(raw))
    assert result.email.to_pylist() == [None]
    assert result.bad.to_pylist() == [True]


def test_fast_email_path_agrees_with_email_validator() -> None:
    import email_validator

    samples = ["a@b.co", "a.b-c_d+e@x-y.example.com.my", "9@9.io", "a@b.museum", "x@" + "a" * 63 + ".com"]
    result = clean.clean_emails(pa.array(samples)).email.to_pylist()
    for text, got in zip(samples, result, strict=True):
        checked = email_validator.validate_email(text, check_deliverability=False)
        assert got == checked.normalized.lower()


# -- places and money ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("KL", "Kuala Lumpur"),
        ("W.P. Kuala Lumpur", "Kuala Lumpur"),
        ("WP KL", "Kuala Lumpur"),
        ("Wilayah Persekutuan Kuala Lumpur", "Kuala Lumpur"),
        ("K. Lumpur", "Kuala Lumpur"),
        ("Penang", "Pulau Pinang"),
        ("P. Pinang", "Pulau Pinang"),
        ("PENANG", "Pulau Pinang"),
        ("N. Sembilan", "Negeri Sembilan"),
        ("N.Sembilan", "Negeri Sembilan"),
        ("NS", "Negeri Sembilan"),
        ("Negri Sembilan", "Negeri Sembilan"),
        ("Melaka", "Melaka"),
        ("Malacca", "Melaka"),
        ("Melaka Bandaraya Bersejarah", "Melaka"),
        ("Johor Darul Ta'zim", "Johor"),
        ("Johore", "Johor"),
        ("johor", "Johor"),
        ("SELANGOR", "Selangor"),
        ("Selangor Darul Ehsan", "Selangor"),
        ("Sel.", "Selangor"),
        ("Sabah, East Malaysia", "Sabah"),
        ("Perlis Indera Kayangan", "Perlis"),
        ("Trengganu", "Terengganu"),
        ("W.P. Labuan", "Labuan"),
        ("Putrajaya", "Putrajaya"),
        ("MY-10", "Selangor"),
        ("14", "Kuala Lumpur"),
        ("07", "Pulau Pinang"),
    ],
    ids=[
        "kl",
        "wp-dotted",
        "wp-kl",
        "wilayah",
        "k-lumpur",
        "penang",
        "p-pinang",
        "penang-upper",
        "n-sembilan",
        "n-sembilan-nospace",
        "ns",
        "negri",
        "melaka",
        "malacca",
        "melaka-honorific",
        "johor-darul-tazim",
        "johore",
        "lower",
        "upper",
        "darul-ehsan",
        "sel-abbrev",
        "east-malaysia",
        "perlis-honorific",
        "trengganu",
        "wp-labuan",
        "putrajaya",
        "iso-code",
        "lhdn-code",
        "lhdn-zero",
    ],
)
def test_states_to_canonical_names(raw: str, expected: str) -> None:
    result = clean.clean_states(arr(raw))
    assert result.code.to_pylist() == [expected]
    assert result.bad.to_pylist() == [False]


def test_canonical_state_names_are_the_contracts() -> None:
    from pipelines.contracts import load_contract

    check = next(c for c in load_contract("customer").column("state").checks if c.rule == "validValues")
    assert {clean.canonical_state(name) for name in check.params["validValues"]} == set(
        check.params["validValues"]
    )


def test_unknown_state_is_kept_and_marked() -> None:
    result = clean.clean_states(arr("  Atlantis  "))
    assert result.code.to_pylist() == ["Atlantis"]
    assert result.bad.to_pylist() == [True]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Malaysia", "MY"),
        ("MALAYSIA", "MY"),
        ("MY", "MY"),
        ("MYS", "MY"),
        ("malaysia ", "MY"),
        ("Singapore", "SG"),
        ("SGP", "SG"),
        ("M'sia", "MY"),
        ("Narnia", None),
    ],
    ids=["name", "upper", "alpha2", "alpha3", "lower-padded", "singapore", "sg-alpha3", "msia", "unknown"],
)
def test_countries_to_alpha2(raw: str, expected: str | None) -> None:
    result = clean.clean_countries(arr(raw))
    assert result.code.to_pylist() == [expected]
    assert result.bad.to_pylist() == [expected is None]


@pytest.mark.parametrize(
    ("raw", "country", "expected", "bad"),
    [
        ("50450", "MY", "50450", False),
        ("50 450", "MY", "50450", False),
        ("5045", "MY", "5045", True),
        ("PJ", "MY", "PJ", True),
        ("018956", "SG", "018956", False),
        ("8088o", None, "8088O", False),
    ],
    ids=["five-digits", "spaced", "four-digits", "letters", "singapore-six", "unknown-country"],
)
def test_postcodes(raw: str, country: str | None, expected: str, bad: bool) -> None:
    result = clean.clean_postcodes(arr(raw), pa.array([country], clean.TEXT))
    assert result.code.to_pylist() == [expected]
    assert result.bad.to_pylist() == [bad]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("RM", "MYR"),
        ("rm", "MYR"),
        (" RM", "MYR"),
        ("MYR ", "MYR"),
        ("RM.", "MYR"),
        ("R.M.", "MYR"),
        ("Ringgit", "MYR"),
        ("SGD", "SGD"),
        ("usd", "USD"),
        ("US$", "USD"),
        ("RMX", None),
        ("XXX", None),
        ("ABC", None),
    ],
    ids=[
        "rm",
        "rm-lower",
        "rm-padded",
        "myr-padded",
        "rm-dot",
        "r-m-dotted",
        "ringgit",
        "sgd",
        "usd-lower",
        "us-dollar-sign",
        "typo",
        "no-currency",
        "not-iso",
    ],
)
def test_currencies_to_iso4217(raw: str, expected: str | None) -> None:
    result = clean.clean_currencies(arr(raw))
    assert result.code.to_pylist() == [expected]
    assert result.bad.to_pylist() == [expected is None]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5000", Decimal("5000.00")),
        ("5000.5", Decimal("5000.50")),
        ("1234.565", Decimal("1234.56")),
        ("1234.575", Decimal("1234.58")),
        ("5,000.00", Decimal("5000.00")),
        ("1e3", Decimal("1000.00")),
        ("-12.3", Decimal("-12.30")),
        ("0", Decimal("0.00")),
        ("9999999999999999.99", Decimal("9999999999999999.99")),
    ],
    ids=[
        "int",
        "one-decimal",
        "half-even-down",
        "half-even-up",
        "thousands",
        "exponent",
        "negative",
        "zero",
        "max",
    ],
)
def test_decimals(raw: str, expected: Decimal) -> None:
    result = clean.parse_decimals(arr(raw))
    assert result.values.type == pa.decimal128(18, 2)
    assert result.values.to_pylist() == [expected]
    assert result.bad.to_pylist() == [False]


@pytest.mark.parametrize(
    "raw",
    ["abc", "12,34", "99999999999999999", "NaN", "1.2.3"],
    ids=["word", "comma-decimal", "too-large", "nan", "two-dots"],
)
def test_unreadable_decimals_are_bad(raw: str) -> None:
    result = clean.parse_decimals(arr(raw))
    assert result.values.to_pylist() == [None]
    assert result.bad.to_pylist() == [True]


@pytest.mark.parametrize(
    ("raw", "expected", "bad"),
    [
        ("30", 30, False),
        (" 7 ", 7, False),
        ("30.0", 30, False),
        ("-5", -5, False),
        ("30.5", None, True),
        ("thirty", None, True),
        ("", None, False),
    ],
    ids=["int", "padded", "float-form", "negative", "fraction", "word", "empty"],
)
def test_integers(raw: str, expected: int | None, bad: bool) -> None:
    result = clean.parse_integers(arr(raw), pa.int32())
    assert result.values.to_pylist() == [expected]
    assert result.bad.to_pylist() == [bad]


# -- flags and genders --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected", "bad"),
    [
        ("Y", True, False),
        ("y", True, False),
        ("YES", True, False),
        ("1", True, False),
        ("N", False, False),
        ("no", False, False),
        ("0", False, False),
        (" N ", False, False),
        ("", None, False),
        ("?", None, True),
    ],
    ids=["Y", "y", "YES", "one", "N", "no", "zero", "padded", "empty", "unknown"],
)
def test_flags(raw: str, expected: bool | None, bad: bool) -> None:
    result = clean.parse_flags(arr(raw))
    assert result.values.to_pylist() == [expected]
    assert result.bad.to_pylist() == [bad]


@pytest.mark.parametrize(
    ("raw", "expected", "bad"),
    [
        ("M", "M", False),
        ("m", "M", False),
        ("Male", "M", False),
        ("L", "M", False),
        ("Lelaki", "M", False),
        ("F", "F", False),
        ("f", "F", False),
        ("FEMALE", "F", False),
        ("P", "F", False),
        ("Perempuan", "F", False),
        ("", None, False),
        ("-", None, True),
        ("X", None, True),
    ],
    ids=[
        "M",
        "m",
        "Male",
        "L-lelaki",
        "Lelaki",
        "F",
        "f",
        "FEMALE",
        "P-perempuan",
        "Perempuan",
        "empty",
        "dash",
        "other",
    ],
)
def test_genders(raw: str, expected: str | None, bad: bool) -> None:
    result = clean.parse_genders(arr(raw))
    assert result.values.to_pylist() == [expected]
    assert result.bad.to_pylist() == [bad]


# -- dates --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected", "bad"),
    [
        ("2024-05-01", date(2024, 5, 1), False),
        ("2024-5-1", date(2024, 5, 1), False),
        ("31/12/2020", date(2020, 12, 31), False),
        ("01.02.2020", date(2020, 2, 1), False),
        ("5-1-2021", date(2021, 1, 5), False),
        ("2024-02-29", date(2024, 2, 29), False),
        ("0000-00-00", None, False),
        ("00/00/0000", None, False),
        ("0001-01-01", None, False),
        ("", None, False),
        ("2020-13-45", None, True),
        ("2023-02-29", None, True),
        ("12-31-2019", None, True),
        ("Jan 5 2018", None, True),
    ],
    ids=[
        "iso",
        "iso-unpadded",
        "day-first-slash",
        "day-first-dots",
        "day-first-dash",
        "leap-day",
        "mysql-zero",
        "zero-slashes",
        "dotnet-min",
        "empty",
        "month-13",
        "not-leap",
        "month-first",
        "words",
    ],
)
def test_dates(raw: str, expected: date | None, bad: bool) -> None:
    result = clean.parse_dates(arr(raw))
    assert result.values.to_pylist() == [expected]
    assert result.bad.to_pylist() == [bad]


@pytest.mark.parametrize(
    ("raw", "expected", "bad"),
    [
        ("2026-04-15 10:30:00", datetime(2026, 4, 15, 2, 30, tzinfo=UTC), False),
        ("2026-04-15T10:30:00", datetime(2026, 4, 15, 2, 30, tzinfo=UTC), False),
        ("2026-04-15 10:30", datetime(2026, 4, 15, 2, 30, tzinfo=UTC), False),
        ("2026-04-15", datetime(2026, 4, 14, 16, 0, tzinfo=UTC), False),
        ("2026-01-01 07:59:59", datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), False),
        ("2026-04-15 25:00:00", None, True),
        ("2026-02-30 10:00:00", None, True),
        ("yesterday", None, True),
        ("", None, False),
    ],
    ids=[
        "wall",
        "t-separator",
        "no-seconds",
        "date-only",
        "year-boundary",
        "hour-25",
        "feb-30",
        "word",
        "empty",
    ],
)
def test_malaysia_wall_times_to_utc(raw: str, expected: datetime | None, bad: bool) -> None:
    result = clean.parse_wall_times(arr(raw), timedelta(hours=8))
    assert result.values.type == pa.timestamp("us", tz="UTC")
    assert result.values.to_pylist() == [expected]
    assert result.bad.to_pylist() == [bad]


@pytest.mark.parametrize(
    ("raw", "instant", "unset", "bad"),
    [
        ("/Date(1714530600000-0000)/", datetime(2024, 5, 1, 2, 30, tzinfo=UTC), False, False),
        ("\\/Date(1714530600000-0000)\\/", datetime(2024, 5, 1, 2, 30, tzinfo=UTC), False, False),
        ("/Date(1714530600000)/", datetime(2024, 5, 1, 2, 30, tzinfo=UTC), False, False),
        ("/Date(1714530600000+0800)/", datetime(2024, 5, 1, 2, 30, tzinfo=UTC), False, False),
        ("/Date(-62135596800000-0000)/", None, True, False),
        ("/Date(-62135596800000)/", None, True, False),
        ("/Date(-86400000-0000)/", datetime(1969, 12, 31, tzinfo=UTC), False, False),
        ("2024-05-01", None, False, True),
        ("/Date(99999999999999999)/", None, False, True),
        ("", None, False, False),
    ],
    ids=[
        "unspecified-kind",
        "escaped-slashes",
        "utc-kind",
        "local-kind",
        "min-value",
        "min-value-utc",
        "before-epoch",
        "iso-text",
        "out-of-range",
        "empty",
    ],
)
def test_servicestack_dates(raw: str, instant: datetime | None, unset: bool, bad: bool) -> None:
    result, not_set = servicestack_dates(arr(raw))
    assert result.values.to_pylist() == [instant]
    assert not_set.to_pylist() == [unset]
    assert result.bad.to_pylist() == [bad]


def test_servicestack_wall_dates_are_malaysian() -> None:
    # 2024-05-01 00:00 in Malaysia is 2024-04-30 16:00 UTC (SMARTACC.md §6).
    result, _ = servicestack_dates(arr("/Date(1714492800000-0000)/"))
    assert malaysia_dates(result.values).to_pylist() == [date(2024, 5, 1)]


# -- JSON and hashing ---------------------------------------------------------------------------------------


def test_json_object_escapes_and_omits_nulls() -> None:
    a = pa.array(['say "hi"\n\\', None, "tab\there\x01"], clean.TEXT)
    b = pa.array(['{"k":1}', None, None], clean.TEXT)
    out = clean.json_object([("a", a, False), ("b", b, True)], 3).to_pylist()
    assert out[1] is None
    assert json.loads(out[0]) == {"a": 'say "hi"\n\\', "b": {"k": 1}}
    assert json.loads(out[2]) == {"a": "tab\there\x01"}


def test_sha256_matches_hashlib_in_order() -> None:
    values = ["", "abc", "Kuala Lumpur — 吉隆坡", None, "x" * 5000]
    got = clean.sha256_hex(pa.array(values, clean.TEXT).slice(0)).to_pylist()
    assert got == [None if v is None else hashlib.sha256(v.encode()).hexdigest() for v in values]
    sliced = clean.sha256_hex(pa.array(values, clean.TEXT).slice(1, 2)).to_pylist()
    assert sliced == got[1:3]


def test_map_distinct_calls_once_per_value() -> None:
    calls: list[str] = []

    def upper(text: str) -> str:
        calls.append(text)
        return text.upper()

    out = clean.map_distinct(pa.array(["a", "b", "a", None, "a"], clean.TEXT), upper, clean.TEXT)
    assert out.to_pylist() == ["A", "B", "A", None, "A"]
    assert sorted(calls) == ["a", "b"]
    assert pc.all(pc.equal(out.slice(0, 1), "A")).as_py()
