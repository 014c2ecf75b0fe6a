"""Match keys: the evidence two records of one business share, however each system typed it.

Both systems hold the same businesses typed by different people: ``MAJU JAYA SDN. BHD.`` and ``Maju Jaya
Sdn Bhd``, ``+603-2142 1234`` and ``03-21421234``. Identity resolution compares keys, never raw text, so
these functions turn each field into the form in which equal means "the same fact". They work on whole
pandas columns (no per-row Python) and return new Series; empty or unusable input becomes ``<NA>``, which
never matches anything.

The same functions read normalized customers (E.164 phones, lower-case e-mails) and quarantined SkyBiz
rows' raw fields, so a quarantined record is matched exactly like a clean one.
"""

from __future__ import annotations

from typing import Final

import pandas as pd

# Legal-form and filler words that say nothing about which business it is ("(M)" is Malaysia's marker).
LEGAL_WORDS: Final = frozenset(
    {"sdn", "bhd", "berhad", "sendirian", "plt", "ltd", "limited", "pte", "co", "m", "the"}
)
_LEGAL_RE: Final = r"\b(?:" + "|".join(sorted(LEGAL_WORDS)) + r")\b"
# A phone extension typed after the number ("03-2142 1234 ext 12", "x 3").
_EXTENSION_RE: Final = r"(?i)\s*(?:ext\.?|x)\s*\d*\s*$"
_MIN_PHONE_DIGITS: Final = 8


def _text(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip()


def _blank_to_na(values: pd.Series) -> pd.Series:
    return values.mask(values.str.len().fillna(0) == 0)


def name_key(values: pd.Series) -> pd.Series:
    """Case-folded name without punctuation or legal form: ``MAJU JAYA SDN. BHD.`` → ``maju jaya``."""
    out = _text(values).str.casefold().str.replace("&", " and ", regex=False)
    out = out.str.replace(r"[^\w]+", " ", regex=True).str.replace(r"_", " ", regex=False)
    out = out.str.replace(_LEGAL_RE, " ", regex=True).str.replace(r"\s+", " ", regex=True).str.strip()
    return _blank_to_na(out)


def phone_key(values: pd.Series) -> pd.Series:
    """Malaysian numbers in trunk form however typed: ``+603-2142 1234``, ``603 21421234`` → ``0321421234``.

    Singapore's eight-digit local numbers get their country code (``6123 4567`` → ``6561234567``), so a
    number typed with and without ``+65`` agrees. Fewer than eight digits is no phone at all.
    """
    digits = _text(values).str.replace(_EXTENSION_RE, "", regex=True).str.replace(r"\D", "", regex=True)
    malaysian = digits.str.startswith("60") & (digits.str.len() >= 10)
    digits = digits.mask(malaysian, "0" + digits.str.slice(2))
    singapore_local = (digits.str.len() == _MIN_PHONE_DIGITS) & ~digits.str.startswith("0")
    digits = digits.mask(singapore_local, "65" + digits)
    return digits.mask(digits.str.len().fillna(0) < _MIN_PHONE_DIGITS)


def email_key(values: pd.Series) -> pd.Series:
    """Lower-cased address without spaces; anything without exactly one ``@`` and a dot after it is none."""
    out = _text(values).str.casefold().str.replace(r"\s+", "", regex=True)
    return out.where(out.str.fullmatch(r"[^@]+@[^@]+\.[^@]+").fillna(False).astype(bool))


def postcode_key(values: pd.Series) -> pd.Series:
    """Digits of the postcode (``47300``, ``47 300`` and ``47300-`` agree)."""
    return _blank_to_na(_text(values).str.replace(r"\D", "", regex=True))


def town_key(values: pd.Series) -> pd.Series:
    """Case-folded town, spaces collapsed."""
    return _blank_to_na(_text(values).str.casefold().str.replace(r"\s+", " ", regex=True))


def registration_key(values: pd.Series) -> pd.Series:
    """Registration number, letters and digits, upper case (``201901-000123`` → ``201901000123``)."""
    return _blank_to_na(_text(values).str.upper().str.replace(r"[^0-9A-Z]", "", regex=True))
