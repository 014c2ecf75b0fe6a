"""Match keys: the same fact however it was typed gives the same key; no fact gives none."""

from __future__ import annotations

import re
from typing import Final

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.identity import keys


def one(fn: object, value: str | None) -> str | None:
    out = fn(pd.Series([value], dtype="string"))  # type: ignore[operator]
    return None if pd.isna(out.iloc[0]) else str(out.iloc[0])


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("+603-2142 1234", "0321421234"),
        ("03-21421234", "0321421234"),
        ("(03) 2142 1234", "0321421234"),
        ("603 2142 1234", "0321421234"),
        ("+60321421234", "0321421234"),
        ("03-2142 1234 ext 12", "0321421234"),
        ("012-345 6789", "0123456789"),
        ("+65 6123 4567", "6561234567"),
        ("6123 4567", "6561234567"),
        ("12345", None),
        ("N/A", None),
        ("", None),
        (None, None),
    ],
    ids=lambda v: str(v),
)
def test_phone_key(typed: str | None, key: str | None) -> None:
    assert one(keys.phone_key, typed) == key


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("Maju Jaya Sdn Bhd", "maju jaya"),
        ("MAJU JAYA SDN. BHD.", "maju jaya"),
        ("Maju Jaya Industries (M) Sdn. Bhd.", "maju jaya industries"),
        ("  Lim & Sons  Trading ", "lim and sons trading"),
        ("Sdn Bhd", None),
        ("", None),
    ],
)
def test_name_key_drops_case_punctuation_and_legal_form(typed: str, key: str | None) -> None:
    assert one(keys.name_key, typed) == key


@pytest.mark.parametrize(
    ("typed", "key"),
    [("  Akaun@Maju.COM.my ", "akaun@maju.com.my"), ("maju@gmail", None), ("a@b@c.com", None), ("n/a", None)],
)
def test_email_key(typed: str, key: str | None) -> None:
    assert one(keys.email_key, typed) == key


def test_postcode_registration_and_town_keys() -> None:
    assert one(keys.postcode_key, "47 300") == "47300"
    assert one(keys.registration_key, "201901-000123 (K)") == "201901000123K"
    assert one(keys.town_key, "  Petaling   JAYA") == "petaling jaya"


# Text as both systems' users type it: ASCII, the whitespace Python's ``re`` knows and RE2 does not, accented
# and case-folding letters, CJK names, digits of other scripts, and the words and marks the keys act on.
_TYPED: Final = st.lists(
    st.one_of(
        st.none(),
        st.lists(
            st.sampled_from(
                [
                    *"aZ09 _-.&@()+/\t\n\x0b\x0c\r\x85\xa0\u2000\u3000éÉßİıſ陈氏贸易٣０ｅ",
                    *("sdn", "bhd", " ext ", "x", " co ", "the", "+60", "65", "Maju@Jaya.com"),
                ]
            ),
            max_size=10,
        ).map("".join),
    ),
    min_size=1,
    max_size=30,
)
_KEYS: Final = (keys.name_key, keys.phone_key, keys.email_key, keys.postcode_key, keys.town_key)


@settings(max_examples=150, deadline=None)
@given(typed=_TYPED)
def test_a_columns_keys_are_those_pythons_re_gives_row_by_row(typed: list[str | None]) -> None:
    """The ASCII rows go through Arrow's RE2: they must get the keys Python's ``re`` and ``casefold`` give.

    The reference runs each key's own steps over the column with one non-ASCII row added, which makes pandas
    take Python's ``re`` (and ``casefold``) for every row; that row is then dropped.
    """
    column = pd.Series(typed, dtype="string")
    with_non_ascii = pd.Series([*typed, "é"], dtype="string").astype("string").str.strip()
    for key in _KEYS:
        expected = key.__wrapped__(with_non_ascii, False).iloc[:-1]  # type: ignore[attr-defined]
        got = key(column)
        assert got.dtype == expected.dtype, key.__name__
        assert got.fillna("<NA>").tolist() == expected.fillna("<NA>").tolist(), key.__name__


def test_the_space_class_is_pythons_whitespace_in_both_engines() -> None:
    """``SPACE`` replaces ``\\s``: RE2 and ``re`` must both find exactly what ``str.isspace`` accepts."""
    every = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    python = [bool(re.fullmatch(keys.SPACE, c)) for c in every]
    arrow = pc.match_substring_regex(pa.array(every), f"^{keys.SPACE}$").to_pylist()
    assert python == [c.isspace() for c in every]
    assert arrow == python


def test_mixed_scripts_keep_their_keys_in_one_column() -> None:
    column = pd.Series(
        ["陈氏贸易 Sdn Bhd", "MAJU  JAYA SDN. BHD.", "Straße Holdings", "STRASSE HOLDINGS", None],
        dtype="string",
    )
    assert keys.name_key(column).fillna("<NA>").tolist() == [
        "陈氏贸易",
        "maju jaya",
        "strasse holdings",
        "strasse holdings",
        "<NA>",
    ]
    towns = pd.Series(["Petaling\u3000Jaya", "petaling\x0bjaya", "Kota Bharu"], dtype="string")
    assert keys.town_key(towns).tolist() == ["petaling jaya", "petaling jaya", "kota bharu"]
