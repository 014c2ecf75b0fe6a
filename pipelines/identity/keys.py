"""Match keys: the evidence two records of one business share, however each system typed it.

Both systems hold the same businesses typed by different people: ``MAJU JAYA SDN. BHD.`` and ``Maju Jaya
Sdn Bhd``, ``+603-2142 1234`` and ``03-21421234``. Identity resolution compares keys, never raw text, so
these functions turn each field into the form in which equal means "the same fact". They work on whole
pandas columns (Python row by row only where Arrow would answer otherwise) and return new Series; empty or
unusable input becomes ``<NA>``, which never matches anything.

The same functions read normalized customers (E.164 phones, lower-case e-mails) and quarantined SkyBiz
rows' raw fields, so a quarantined record is matched exactly like a clean one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final

import pandas as pd

# Legal-form and filler words that say nothing about which business it is ("(M)" is Malaysia's marker).
LEGAL_WORDS: Final = frozenset(
    {"sdn", "bhd", "berhad", "sendirian", "plt", "ltd", "limited", "pte", "co", "m", "the"}
)
# Python's ``\s`` spelled out (every character ``str.isspace`` accepts; none lies above U+3000). pandas hands
# a pattern with ``\s`` to Python's ``re`` row by row, because RE2's ``\s`` misses some of them (``\x0b``,
# U+00A0...); with the class spelled out, RE2 runs it over the whole column and answers as ``re`` would.
SPACE: Final = (
    "["
    + "".join(f"\\x{ord(c):02x}" if c.isascii() else c for c in map(chr, range(0x3001)) if c.isspace())
    + "]"
)
_LEGAL_RE: Final = r"\b(?:" + "|".join(sorted(LEGAL_WORDS)) + r")\b"
# A phone extension typed after the number ("03-2142 1234 ext 12", "x 3").
_EXTENSION_RE: Final = rf"(?i){SPACE}*(?:ext\.?|x){SPACE}*\d*{SPACE}*$"
_MIN_PHONE_DIGITS: Final = 8


def _text(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip()


def _blank_to_na(values: pd.Series) -> pd.Series:
    return values.mask(values.str.len().fillna(0) == 0)


def _ascii_apart(key: Callable[[pd.Series, bool], pd.Series]) -> Callable[[pd.Series], pd.Series]:
    r"""``key(text, ascii)`` over the all-ASCII rows and the others apart, back in the rows' order.

    ``\w``, ``\d`` and ``\b`` mean more than ASCII in Python's ``re``, so pandas runs such a pattern through
    ``re`` row by row as soon as one row of the column is not ASCII, and ``casefold`` always goes row by
    row. Over the ASCII rows alone pandas keeps Arrow's RE2 (the same answers there), and ``lower`` is
    ``casefold``; the few others keep Python's semantics. At 200,000 customers a rebuild's matching took
    2.2 s with every key row by row, 1.7 s so.
    """

    @functools.wraps(key)
    def keyed(values: pd.Series) -> pd.Series:
        text = _text(values)
        ascii_rows = text.str.isascii().fillna(True).astype(bool)
        every = bool(ascii_rows.all())
        if every or not ascii_rows.any():
            return key(text, every)
        parts = [key(text[ascii_rows], True), key(text[~ascii_rows], False)]
        keyed_rows: pd.Series = pd.concat(parts).reindex(text.index)
        return keyed_rows

    return keyed


def _casefold(text: pd.Series, ascii_only: bool) -> pd.Series:
    return text.str.lower() if ascii_only else text.str.casefold()


@_ascii_apart
def name_key(text: pd.Series, ascii_only: bool) -> pd.Series:
    """Case-folded name without punctuation or legal form: ``MAJU JAYA SDN. BHD.`` → ``maju jaya``."""
    out = _casefold(text, ascii_only).str.replace("&", " and ", regex=False)
    out = out.str.replace(r"[^\w]+", " ", regex=True).str.replace(r"_", " ", regex=False)
    out = out.str.replace(_LEGAL_RE, " ", regex=True).str.replace(f"{SPACE}+", " ", regex=True).str.strip()
    return _blank_to_na(out)


@_ascii_apart
def phone_key(text: pd.Series, ascii_only: bool) -> pd.Series:
    """Malaysian numbers in trunk form however typed: ``+603-2142 1234``, ``603 21421234`` → ``0321421234``.

    Singapore's eight-digit local numbers get their country code (``6123 4567`` → ``6561234567``), so a
    number typed with and without ``+65`` agrees. Fewer than eight digits is no phone at all.
    """
    digits = text.str.replace(_EXTENSION_RE, "", regex=True).str.replace(r"\D", "", regex=True)
    malaysian = digits.str.startswith("60") & (digits.str.len() >= 10)
    digits = digits.mask(malaysian, "0" + digits.str.slice(2))
    singapore_local = (digits.str.len() == _MIN_PHONE_DIGITS) & ~digits.str.startswith("0")
    digits = digits.mask(singapore_local, "65" + digits)
    return digits.mask(digits.str.len().fillna(0) < _MIN_PHONE_DIGITS)


@_ascii_apart
def email_key(text: pd.Series, ascii_only: bool) -> pd.Series:
    """Lower-cased address without spaces; anything without exactly one ``@`` and a dot after it is none."""
    out = _casefold(text, ascii_only).str.replace(f"{SPACE}+", "", regex=True)
    return out.where(out.str.fullmatch(r"[^@]+@[^@]+\.[^@]+").fillna(False).astype(bool))


@_ascii_apart
def postcode_key(text: pd.Series, ascii_only: bool) -> pd.Series:
    """Digits of the postcode (``47300``, ``47 300`` and ``47300-`` agree)."""
    return _blank_to_na(text.str.replace(r"\D", "", regex=True))


@_ascii_apart
def town_key(text: pd.Series, ascii_only: bool) -> pd.Series:
    """Case-folded town, spaces collapsed."""
    return _blank_to_na(_casefold(text, ascii_only).str.replace(f"{SPACE}+", " ", regex=True))


def registration_key(values: pd.Series) -> pd.Series:
    """Registration number, letters and digits, upper case (``201901-000123`` → ``201901000123``)."""
    return _blank_to_na(_text(values).str.upper().str.replace(r"[^0-9A-Z]", "", regex=True))
