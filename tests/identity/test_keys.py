"""Match keys: the same fact however it was typed gives the same key; no fact gives none."""

from __future__ import annotations

import pandas as pd
import pytest

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
