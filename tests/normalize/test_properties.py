"""Property-based tests of the cleaners vendors' text goes through: text, dates, phones, currencies.

Each property holds for *any* input hypothesis can think of (the vendors are as inventive): no cleaner
raises on text, ``bad`` means exactly "present but unreadable", and the fast column-wide paths agree with
the plain per-value reading they stand in for. Runs are kept small (``max_examples``) for the suite's speed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.normalize.clean import (
    _E164,
    _parse_phone_slow,
    clean_currencies,
    clean_phones,
    clean_text,
    control_characters,
    parse_dates,
    parse_wall_times,
)
from pipelines.sources.smartacc.dates import (
    MIN_VALUE_MS,
    parse_servicestack_date,
    parse_servicestack_dates,
)

FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BIDI = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
CONTROLS = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))]
SPACES = [" ", "\u00a0", "\u2003", "\u3000", "\u2028", "\u2029", "\u202f", "\t", "\n", "\r"]
WORDS = ["Ali", "Tan Ah Kow", "陈大文", "محمد", "Ñoño", "😀", "👩‍👩‍👧", "Sdn. Bhd.", "[x]", "RM"]
# Vendor-ish text: ordinary words and every character class the cleaner treats specially, mixed freely.
vendor_text = st.lists(
    st.sampled_from(WORDS + BIDI + ZERO_WIDTH + CONTROLS + SPACES) | st.text(max_size=4), max_size=12
).map("".join)


def _arr(values: Sequence[str | None]) -> pa.Array:
    return pa.array(values, pa.string())


# -- text ----------------------------------------------------------------------------------------------


def _separator(ch: str) -> bool:
    code = ord(ch)
    return (
        ch in "\t\n\f\r "
        or code <= 0x1F
        or 0x7F <= code <= 0x9F
        or unicodedata.category(ch) in ("Zs", "Zl", "Zp")
    )


def _oracle_clean(text: str) -> str | None:
    kept = "".join(" " if _separator(ch) else ch for ch in text if ch not in BIDI and ch not in ZERO_WIDTH)
    collapsed = re.sub(" +", " ", kept).strip(" ")
    return collapsed or None


@FEW
@given(st.lists(vendor_text, min_size=1, max_size=8))
def test_clean_text_is_the_plain_reading_and_idempotent(values: list[str]) -> None:
    cleaned = clean_text(_arr(values)).to_pylist()
    assert cleaned == [_oracle_clean(v) for v in values]
    assert clean_text(pa.array(cleaned, pa.string())).to_pylist() == cleaned


@FEW
@given(st.lists(vendor_text, min_size=1, max_size=8))
def test_cleaned_text_holds_no_control_and_no_bidi_but_keeps_emoji(values: list[str]) -> None:
    cleaned = clean_text(_arr(values)).to_pylist()
    for before, after in zip(values, cleaned, strict=True):
        if after is None:
            continue
        assert not any(ch in after for ch in BIDI + ZERO_WIDTH + CONTROLS)
        assert after == after.strip() and "  " not in after
        letters_and_symbols = [ch for ch in before if unicodedata.category(ch)[0] in "LSN"]
        assert all(ch in after for ch in letters_and_symbols), (before, after)


@FEW
@given(st.lists(st.none() | vendor_text, min_size=1, max_size=8))
def test_control_characters_flags_exactly_the_controls_cleaning_removes(values: list[str | None]) -> None:
    flagged = control_characters(_arr(values)).to_pylist()
    expected = [
        v is not None and any((ch in CONTROLS and ch not in "\t\n\r") or ch in BIDI for ch in v)
        for v in values
    ]
    assert flagged == expected


# -- dates ---------------------------------------------------------------------------------------------

days = st.dates(min_value=date(1900, 1, 1), max_value=date(2199, 12, 31))


@FEW
@given(days)
def test_dates_read_in_both_writings(day: date) -> None:
    texts = [day.isoformat(), f"{day:%d/%m/%Y}", f"{day.day}-{day.month}-{day.year}", f" {day:%d.%m.%Y} "]
    result = parse_dates(_arr(texts))
    assert result.values.to_pylist() == [day] * len(texts)
    assert not any(result.bad.to_pylist())


@FEW
@given(st.lists(st.none() | vendor_text | st.from_regex(r"\A\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}\Z"), max_size=8))
def test_dates_never_raise_and_bad_means_present_but_unread(values: list[str | None]) -> None:
    result = parse_dates(_arr(values))
    present = [v is not None for v in clean_text(_arr(values)).to_pylist()]
    for got, bad, here, raw in zip(
        result.values.to_pylist(), result.bad.to_pylist(), present, values, strict=True
    ):
        if bad:
            assert here and got is None, raw
        if got is not None:
            assert not bad and 1 <= got.year <= 9999


@FEW
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2199, 12, 31)))
def test_wall_times_read_as_malaysia_time(moment: datetime) -> None:
    moment = moment.replace(microsecond=0)
    texts = [f"{moment:%Y-%m-%d %H:%M:%S}", f"{moment:%Y-%m-%dT%H:%M:%S}"]
    result = parse_wall_times(_arr(texts), timedelta(hours=8))
    expected = (moment - timedelta(hours=8)).replace(tzinfo=UTC)
    assert [v.replace(tzinfo=UTC) if v.tzinfo is None else v for v in result.values.to_pylist()] == [
        expected
    ] * 2


@FEW
@given(st.integers(min_value=0, max_value=23), st.integers(min_value=60, max_value=99))
def test_wall_times_refuse_to_roll_over(hour: int, minute: int) -> None:
    result = parse_wall_times(
        _arr([f"2024-02-30 {hour:02d}:00:00", f"2024-01-01 {hour:02d}:{minute}:00"]), timedelta(hours=8)
    )
    assert result.bad.to_pylist() == [True, True]


ms_values = st.integers(min_value=MIN_VALUE_MS + 1, max_value=253_402_300_799_999)


@FEW
@given(ms_values, st.sampled_from(["", "+0800", "-0000", "+0000"]), st.booleans())
def test_servicestack_dates_read_the_utc_instant(ms: int, offset: str, escaped: bool) -> None:
    text = f"\\/Date({ms}{offset})\\/" if escaped else f"/Date({ms}{offset})/"
    expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    assert parse_servicestack_date(text) == expected
    assert parse_servicestack_dates([text]).to_pylist() == [expected]


@FEW
@given(
    st.lists(
        st.none()
        | vendor_text
        | st.from_regex(r"\A/Date\(-?\d{1,25}([+-]\d{4})?\)/\Z")
        | st.sampled_from(["/Date(abc)/", f"/Date({MIN_VALUE_MS})/", "/Date()/", "Date(1)"]),
        max_size=8,
    )
)
def test_servicestack_vector_agrees_with_the_scalar_reading(values: list[str | None]) -> None:
    vector = parse_servicestack_dates(values).to_pylist()
    for value, got in zip(values, vector, strict=True):
        try:
            expected = parse_servicestack_date(value)
        except ValueError:
            expected = None
        assert got == expected, value


# -- phones --------------------------------------------------------------------------------------------

phone_text = (
    st.from_regex(r"\A\+?[0-9 ()\-.]{0,18}\Z") | st.from_regex(r"\A01[0-9]-?[0-9]{7,8}\Z") | vendor_text
)


@FEW
@given(st.lists(phone_text, min_size=1, max_size=10))
def test_phones_fast_path_agrees_with_phonenumbers(values: list[str]) -> None:
    result = clean_phones(_arr(values))
    cleaned = clean_text(_arr(values)).to_pylist()
    for raw, text, e164, bad in zip(
        values, cleaned, result.e164.to_pylist(), result.bad.to_pylist(), strict=True
    ):
        if text is None:
            assert e164 is None and not bad
            continue
        slow, _ = _parse_phone_slow(f"MY\x1f{text}")
        expected = slow if slow is not None and re.match(_E164, slow) else None
        assert e164 == expected, raw
        assert bad == (e164 is None)


@FEW
@given(st.sampled_from(["2", "3", "4", "6", "7", "8", "9"]), st.from_regex(r"\A[1-9][0-9]{6}\Z"))
def test_a_malaysian_mobile_reads_the_same_in_every_writing(prefix: str, rest: str) -> None:
    local = f"01{prefix}{rest}"
    writings = [
        local,
        f"01{prefix}-{rest}",
        f"+60 1{prefix} {rest[:3]} {rest[3:]}",
        f"(01{prefix}) {rest}",
        f"601{prefix}{rest}",
    ]
    e164 = clean_phones(_arr(writings)).e164.to_pylist()
    assert e164 == [f"+601{prefix}{rest}"] * len(writings)


# -- currencies ----------------------------------------------------------------------------------------


@FEW
@given(
    st.sampled_from(["MYR", "SGD", "USD", "EUR", "CNY", "THB", "IDR", "JPY"]),
    st.booleans(),
    st.sampled_from(["", " ", "\t", "\u00a0"]),
)
def test_currency_codes_read_in_any_case_and_spacing(code: str, lower: bool, pad: str) -> None:
    text = f"{pad}{code.lower() if lower else code}{pad}"
    result = clean_currencies(_arr([text, "RM", "rm"]))
    assert result.code.to_pylist() == [code, "MYR", "MYR"]
    assert result.bad.to_pylist() == [False, False, False]


@FEW
@given(st.lists(st.none() | vendor_text | st.from_regex(r"\A[A-Za-z]{2,4}\Z"), min_size=1, max_size=10))
def test_currencies_never_raise_and_answer_iso_codes_or_bad(values: list[str | None]) -> None:
    import pycountry

    result = clean_currencies(_arr(values))
    cleaned = clean_text(_arr(values)).to_pylist()
    for text, code, bad in zip(cleaned, result.code.to_pylist(), result.bad.to_pylist(), strict=True):
        assert bad == (text is not None and code is None)
        if code is not None:
            assert pycountry.currencies.get(alpha_3=code) is not None
