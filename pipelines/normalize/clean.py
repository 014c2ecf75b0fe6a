"""Vectorized cleaners shared by both sources: text, phones, e-mails, places, money, dates, flags, JSON.

Every function takes Arrow arrays of vendor text and returns new arrays (Arrow arrays are immutable, so
nothing is changed in place). They work column-at-a-time with ``pyarrow.compute``; where a maintained
library decides (phonenumbers, email-validator, pycountry) it is called once per *distinct* value, or only
for the values a vectorized fast path could not settle, so a million rows cost seconds, not minutes.

Each cleaner that can fail on a value returns the cleaned array together with a boolean ``bad`` mask: the
value was present but could not be read. The source modules turn those masks into ``data_issues`` codes and
keep the original text in ``source_extras``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import cache
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contracts import check_param

TEXT: Final = pa.large_string()
"""Working text type: large offsets, so one column of a million long values never overflows 2 GiB."""

# Removed outright: zero-width characters, and the bidirectional embeddings, overrides and isolates
# (U+202A-U+202E, U+2066-U+2069), which make a name display as something it is not.
_ZERO_WIDTH: Final = r"[\x{200B}\x{200C}\x{200D}\x{2060}\x{FEFF}\x{202A}-\x{202E}\x{2066}-\x{2069}]"
# What the ``text_control_removed`` issue reports: control characters other than tab and line breaks (which
# are ordinary whitespace in addresses), and the bidi controls.
_CONTROL: Final = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x{9f}\x{202A}-\x{202E}\x{2066}-\x{2069}]"
# Whitespace, and the other C0/C1 control characters, which no name or address means to hold.
_WHITESPACE: Final = r"[\s\p{Z}\x00-\x1f\x7f-\x{9f}]+"
# Values clean_text would change: edge or doubled whitespace, any whitespace but a plain space, control or
# zero-width characters. A regex *match* costs a fraction of a regex *replace*, so only these are rewritten.
_UNCLEAN: Final = (
    r"^[\s\p{Z}]|[\s\p{Z}]$|[\s\p{Z}]{2}"
    r"|[\x00-\x1f\x7f-\x{A0}\x{1680}\x{2000}-\x{200D}\x{2028}\x{2029}\x{202A}-\x{202F}\x{205F}-\x{2060}"
    r"\x{2066}-\x{2069}\x{3000}\x{FEFF}]"
)


# -- small Arrow helpers -------------------------------------------------------------------------------


def lit(text: str) -> pa.Scalar:
    """A text literal of the working type (compute kernels refuse to mix ``string`` and ``large_string``)."""
    return pa.scalar(text, TEXT)


def null_text(length: int) -> pa.Array:
    """An all-null text column."""
    return pa.nulls(length, TEXT)


def as_text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array of the working text type."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if values.type != TEXT:
        values = pc.cast(values, TEXT)
    return values


def flag(mask: pa.Array) -> pa.Array:
    """A boolean mask with nulls read as false."""
    return pc.fill_null(mask, False)


def where(mask: pa.Array, values: pa.Array, otherwise: pa.Array | pa.Scalar | None = None) -> pa.Array:
    """``values`` where ``mask`` holds (nulls in the mask count as false), else ``otherwise`` (null)."""
    if otherwise is None:
        otherwise = pa.scalar(None, values.type)
    return pc.if_else(flag(mask), values, otherwise)


def concat(*parts: pa.Array | pa.Scalar | str) -> pa.Array:
    """Element-wise concatenation; null when any part is null."""
    args = [lit(p) if isinstance(p, str) else p if isinstance(p, pa.Scalar) else as_text(p) for p in parts]
    return pc.binary_join_element_wise(*args, lit(""))


def join_present(parts: Sequence[pa.Array], separator: str, length: int) -> pa.Array:
    """Join the non-null parts of each row with ``separator``; null when no part is present.

    Each part carries its separator and nulls are joined as empty text (``null_handling="replace"``).
    Not ``null_handling="skip"``: in pyarrow 26 that drops rows whose inputs are all null, so the result
    comes back *shorter* than its inputs.
    """
    if not parts:
        return null_text(length)
    fragments = [concat(p, separator) for p in parts]
    joined = pc.binary_join_element_wise(*fragments, lit(""), null_handling="replace", null_replacement="")
    joined = pc.utf8_slice_codeunits(joined, 0, -len(separator)) if separator else joined
    return where(pc.not_equal(joined, lit("")), joined)


def _has_special_bytes(values: pa.Array) -> bool:
    """Whether any value may need JSON escaping (a quote, a backslash, a control character).

    Scans the Arrow data buffer with memchr-speed primitives (``bytes.find``, numpy ``min``): far cheaper
    than a regex over every value. Bytes outside a sliced array only make the answer conservative.
    """
    data = values.buffers()[2]
    if data is None or data.size == 0:
        return False
    if int(np.frombuffer(data, dtype=np.uint8).min()) < 0x20:
        return True
    blob: bytes = data.to_pybytes()
    return blob.find(b'"') >= 0 or blob.find(b"\\") >= 0


def with_validity(values: pa.Array, valid: pa.Array) -> pa.Array:
    """``values`` with nulls where ``valid`` is false, without copying the strings (a new validity bitmap)."""
    keep = pc.and_(flag(valid), pc.is_valid(values))
    if values.offset or keep.offset:
        return where(keep, values)
    if pc.all(keep).as_py():
        return values
    bitmap = keep.buffers()[1]
    return pa.Array.from_buffers(values.type, len(values), [bitmap, *values.buffers()[1:]])


def map_distinct(values: pa.Array, fn: Callable[[str], Any], out_type: pa.DataType) -> pa.Array:
    """Apply a Python function once per distinct non-null value and spread the answers back.

    Used where a library must decide (country names, currency codes, odd phone numbers): the number of
    calls is the number of distinct values, which for such columns is tiny next to the row count.
    """
    present = values.drop_null()
    if len(present) == 0:
        return pa.nulls(len(values), out_type)
    distinct = pc.unique(present)
    answers = pa.array([fn(v) for v in distinct.to_pylist()], out_type)
    return answers.take(pc.index_in(values, value_set=distinct))


def matches(values: pa.Array, pattern: str) -> pa.Array:
    """RE2 search, with nulls read as no match."""
    return flag(pc.match_substring_regex(values, pattern))


# -- text ------------------------------------------------------------------------------------------------


def clean_text(values: pa.Array) -> pa.Array:
    """Trim and collapse every whitespace run (any Unicode space, tab, line break) to one space; "" → null.

    Zero-width characters (BOM, ZWSP) are removed: they are invisible in every UI and break equality; so
    are the bidirectional controls (U+202A-U+202E, U+2066-U+2069), which can make a name display as
    another. Other control characters become spaces. Emoji and every script's letters stay. Letter case is
    kept.
    """
    values = as_text(values)
    unclean = matches(values, _UNCLEAN)
    if pc.any(unclean).as_py():
        fixed = pc.replace_substring_regex(values.filter(unclean), _ZERO_WIDTH, "")
        fixed = pc.utf8_trim(pc.replace_substring_regex(fixed, _WHITESPACE, " "), " ")
        values = pc.replace_with_mask(values, unclean, fixed)
    return where(pc.not_equal(values, lit("")), values)


def control_characters(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Which values hold a control character :func:`clean_text` takes out (bidi controls included).

    Tabs and line breaks do not count: they are ordinary whitespace in free text. One RE2 pass (measured
    as fast as a numpy byte scan and four times faster than Python's ``re`` over the data buffer).
    """
    return matches(as_text(values), _CONTROL)


def title_case(values: pa.Array) -> pa.Array:
    """Clean and title-case (``KUALA LUMPUR`` → ``Kuala Lumpur``) — for towns."""
    return pc.utf8_title(clean_text(values))


# -- phones ----------------------------------------------------------------------------------------------

# Separators people type inside a number; phonenumbers ignores them too.
_PHONE_SEPARATORS: Final = r"[\s\p{Z}\-.()/\x{2010}-\x{2015}\x{2212}]"


@dataclass(frozen=True, slots=True)
class PhoneResult:
    """E.164 numbers, the extensions split off them, and which present values could not be read."""

    e164: pa.Array
    extension: pa.Array
    bad: pa.Array


@dataclass(frozen=True, slots=True)
class _PhoneRules:
    """What phonenumbers' metadata says about parsing numbers for one region (see :func:`_fast_phones`)."""

    code: str
    national_prefix: str | None
    idd: str | None
    general: str
    lengths: tuple[int, ...]
    simple: bool


@cache
def _phone_rules(region: str) -> _PhoneRules:
    """The parsing facts of ``region`` from phonenumbers' metadata.

    ``simple`` regions (no national-prefix *pattern*, no transform rule) can be parsed column-wide;
    the others always go to ``phonenumbers.parse``. The general pattern and lengths are those of the
    calling code's main region, which is what :func:`_usable` checks a parsed number against.
    """
    import phonenumbers

    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.country_code is None:
        return _PhoneRules("", None, None, "", (), simple=False)
    main = phonenumbers.PhoneMetadata.metadata_for_region(
        phonenumbers.region_code_for_country_code(meta.country_code)
    )
    general = (main or meta).general_desc
    if general is None:
        return _PhoneRules("", None, None, "", (), simple=False)
    prefix = meta.national_prefix_for_parsing
    simple = (prefix is None or prefix.isdigit()) and meta.national_prefix_transform_rule is None
    return _PhoneRules(
        code=str(meta.country_code),
        national_prefix=prefix,
        idd=meta.international_prefix if (meta.international_prefix or "").isdigit() else None,
        general=general.national_number_pattern or "",
        lengths=tuple(n for n in general.possible_length or () if n > 0),
        simple=simple and bool(general.national_number_pattern),
    )


def _usable(number: Any) -> bool:
    """Whether a parsed number has its country's shape: the general pattern and a possible length.

    This is deliberately not ``is_valid_number``: that also checks which number *ranges* are allocated,
    which changes with every phonenumbers release (a re-run would null numbers that were fine and churn
    record hashes) and refuses subscribers on newly opened ranges. Shape is what tells a phone number
    from "N/A", "12345" or "03-".
    """
    import phonenumbers

    region = phonenumbers.region_code_for_country_code(number.country_code)
    meta = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(number.country_code, region)
    if meta is None or meta.general_desc is None or not meta.general_desc.national_number_pattern:
        return False
    nsn = phonenumbers.national_significant_number(number)
    lengths = [n for n in meta.general_desc.possible_length or () if n > 0]
    return bool(re.fullmatch(meta.general_desc.national_number_pattern, nsn)) and (
        not lengths or len(nsn) in lengths
    )


def _fast_phones(compact: pa.Array, region: str, *, trunk: bool) -> tuple[pa.Array, pa.Array]:
    """Column-wide phonenumbers parsing of digit strings for ``region``: ``(decided, e164)``.

    ``decided`` marks the values whose outcome is certain without phonenumbers (``e164`` null there means
    phonenumbers would refuse them too); the rest go to ``phonenumbers.parse``. The forms, as
    phonenumbers reads them with ``region`` as the default:

    * ``+<cc><n>`` and ``<idd><cc><n>``: ``n`` is the national number (``n`` must not start with the
      national prefix, which phonenumbers would try to strip).
    * ``<cc><n>`` without ``+``: ``n`` if the whole is not a plausible national number but ``n`` is, or the
      whole is longer than any national number (its ``_maybe_extract_country_code``); else the whole.
    * ``<prefix><n>`` (``trunk``, only where this has been checked against phonenumbers: Malaysia's ``0``):
      ``n``.
    * other digits not starting with the national prefix: the whole is the national number.

    The national number is then usable if it fits the general pattern and a possible length.
    """
    rules = _phone_rules(region)
    n = len(compact)
    if not rules.simple or n == 0:
        return pa.array(np.zeros(n, dtype=bool)), null_text(n)
    code, prefix = rules.code, rules.national_prefix
    first = "[1-9]"
    intl_head = rf"(?:\+|{rules.idd})" if rules.idd else r"\+"
    intl = matches(compact, rf"^{intl_head}{code}{first}[0-9]{{0,16}}$")
    bare = matches(compact, rf"^{code}{first}[0-9]{{0,16}}$")
    plain = pc.and_(matches(compact, rf"^{first}[0-9]{{0,16}}$"), pc.invert(matches(compact, rf"^{code}")))
    national = pc.utf8_slice_codeunits(compact, len(code))
    intl_rest = pc.replace_substring_regex(compact, rf"^{intl_head}{code}", "")
    if prefix:
        # A national number after the country code that starts with the prefix would be stripped again.
        intl = pc.and_(intl, pc.invert(matches(intl_rest, rf"^{prefix}")))
        bare = pc.and_(bare, pc.invert(matches(national, rf"^{prefix}")))
        plain = pc.and_(plain, pc.invert(matches(compact, rf"^{prefix}")))
        if code.startswith(prefix):
            bare = pa.array(np.zeros(n, dtype=bool))
    general = f"^(?:{rules.general})$"
    strip = pc.or_(
        pc.and_(pc.invert(matches(compact, general)), matches(national, general)),
        flag(pc.greater(pc.utf8_length(compact), max(rules.lengths or (17,)))),
    )
    nsn = where(intl, intl_rest, None)
    nsn = where(bare, where(strip, national, compact), nsn)
    nsn = where(plain, compact, nsn)
    decided = pc.or_(pc.or_(intl, bare), plain)
    if trunk and prefix:
        natl = matches(compact, rf"^{prefix}{first}[0-9]{{0,16}}$")
        nsn = where(natl, pc.utf8_slice_codeunits(compact, len(prefix)), nsn)
        decided = pc.or_(decided, natl)
    usable = pc.and_(decided, matches(nsn, general))
    if rules.lengths:
        lengths = pa.array(rules.lengths, pa.int64())
        usable = pc.and_(usable, flag(pc.is_in(pc.cast(pc.utf8_length(nsn), pa.int64()), value_set=lengths)))
    return decided, where(usable, concat(f"+{code}", nsn))


def _parse_phone_slow(key: str) -> tuple[str | None, str | None]:
    """Phonenumbers on one ``region<US>text`` key: ``(e164, extension)``; ``(None, None)`` if unusable."""
    import phonenumbers

    region, _, text = key.partition("\x1f")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None, None
    if not _usable(number) or _implausible_abroad(number, region, text):
        return None, None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164, (number.extension or None)


def _implausible_abroad(number: Any, region: str, text: str) -> bool:
    r"""A foreign country read out of a number typed without ``+`` or ``00``: not what the user meant.

    phonenumbers honours every region's dialling prefix; Singapore's is ``0[0-3]\d``, so a Malaysian
    ``03-3980 9881`` on a Singapore customer reads as ``033`` + Iran (+98). Address books write
    international numbers with ``+`` or ``00``; anything else is the row's own country or not usable here.
    """
    import phonenumbers

    if number.country_code == phonenumbers.country_code_for_region(region):
        return False
    digits = text.lstrip(" \t(")
    return not digits.startswith(("+", "00"))


_E164: Final = str(check_param("customer", "phone", "pattern", "pattern"))  # the contract's E.164 rule
# A trailing extension the way people type it: "03-2142 1234 ext. 12", "... x 12", "... Ext 12".
_PHONE_EXTENSION: Final = r"(?i)^(?P<number>.*[0-9])\s*(?:ext\.?|extn\.?|x)\s*(?P<ext>[0-9]{1,7})$"


def clean_phones(values: pa.Array, regions: pa.Array | None = None, default: str = "MY") -> PhoneResult:
    """Telephone text in any local writing → E.164; ``regions`` (ISO alpha-2 per row) default to Malaysia.

    After splitting off a typed extension and dropping separators, the usual forms are parsed
    column-wide (:func:`_fast_phones`) — for the default region and for each other region present —
    with the rules phonenumbers itself applies; anything else (letters, odd prefixes) goes to
    ``phonenumbers.parse`` once per distinct ``(region, text)``. A number that does not read in its row's
    own country is tried as the default region's (a Singapore company's KL office line). Extensions are
    returned separately: E.164 has no place for them.
    """
    text = clean_text(values)
    n = len(text)
    region = (
        pc.fill_null(as_text(regions), lit(default)) if regions is not None else pa.repeat(lit(default), n)
    )
    local = flag(pc.equal(region, lit(default)))

    split = pc.extract_regex(where(matches(text, _PHONE_EXTENSION), text), _PHONE_EXTENSION)
    typed_ext = pc.struct_field(split, "ext")
    compact = pc.replace_substring_regex(
        pc.coalesce(pc.struct_field(split, "number"), text), _PHONE_SEPARATORS, ""
    )
    home_decided, home_e164 = _fast_phones(compact, default, trunk=True)
    # A "+<cc>" number means the same in every region.
    international = matches(compact, rf"^\+{_phone_rules(default).code}")
    decided = pc.and_(home_decided, pc.or_(local, international))
    e164 = where(decided, home_e164)

    pending = pc.and_(pc.is_valid(text), pc.invert(decided))
    others = pc.unique(region.filter(pc.and_(pending, pc.invert(local)))).to_pylist()
    for other in others:
        rows = pc.and_(pending, flag(pc.equal(region, lit(other))))
        got_decided, got = _fast_phones(compact.filter(rows), other, trunk=False)
        decided = pc.replace_with_mask(decided, rows, got_decided)
        e164 = pc.replace_with_mask(e164, rows, got)
    extension = where(pc.is_valid(e164), typed_ext)

    slow = pc.and_(pc.is_valid(text), pc.invert(decided))
    if pc.any(slow).as_py():
        keys = where(slow, concat(region, "\x1f", text))
        parsed = map_distinct(keys, _parse_phone_slow, pa.struct([("e164", TEXT), ("ext", TEXT)]))
        e164 = pc.coalesce(e164, pc.struct_field(parsed, "e164"))
        extension = pc.coalesce(extension, pc.struct_field(parsed, "ext"))
    fallback = pc.and_(pc.and_(pc.is_valid(text), pc.invert(local)), pc.is_null(e164))
    if pc.any(fallback).as_py():
        home = where(pc.and_(fallback, home_decided), home_e164)
        home_ext = where(pc.is_valid(home), typed_ext)
        undecided = pc.and_(fallback, pc.invert(home_decided))
        if pc.any(undecided).as_py():
            keys = where(undecided, concat(f"{default}\x1f", text))
            parsed = map_distinct(keys, _parse_phone_slow, pa.struct([("e164", TEXT), ("ext", TEXT)]))
            home = pc.coalesce(home, pc.struct_field(parsed, "e164"))
            home_ext = pc.coalesce(home_ext, pc.struct_field(parsed, "ext"))
        e164 = pc.coalesce(e164, home)
        extension = pc.coalesce(extension, home_ext)
    # Whatever phonenumbers accepts, the contract's E.164 pattern has the last word (no 6-digit numbers).
    e164 = where(matches(e164, _E164), e164)
    extension = where(pc.is_valid(e164), extension)
    bad = pc.and_(pc.is_valid(text), pc.is_null(e164))
    return PhoneResult(e164=e164, extension=extension, bad=bad)


# -- e-mail ----------------------------------------------------------------------------------------------

# A conservative subset of RFC 5322 dot-atoms that email-validator always accepts unchanged (after
# lower-casing); anything outside it is judged by email-validator itself. "--" in a label is excluded
# because email-validator refuses it in positions 3-4 (reserved for punycode).
_EMAIL_FAST: Final = (
    r"^[a-z0-9_+\-]+(?:\.[a-z0-9_+\-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
_EMAIL_CONTRACT: Final = str(check_param("customer", "email", "pattern", "pattern"))


@dataclass(frozen=True, slots=True)
class EmailResult:
    """Lower-cased, syntax-checked addresses and which present values were refused."""

    email: pa.Array
    bad: pa.Array


@cache
def _special_use_pattern() -> str:
    import email_validator

    names = "|".join(re.escape(d) for d in email_validator.SPECIAL_USE_DOMAIN_NAMES)
    return rf"@(?:.*\.)?(?:{names})$"


def _check_email_slow(text: str) -> str | None:
    import email_validator

    try:
        result = email_validator.validate_email(text, check_deliverability=False)
    except email_validator.EmailNotValidError:
        return None
    address = (result.ascii_email or result.normalized).lower()
    return address if re.match(_EMAIL_CONTRACT, address) else None


def clean_emails(values: pa.Array) -> EmailResult:
    """Trim, lower-case and syntax-check (no DNS) e-mail addresses; refused ones become null.

    Addresses that also match the contract's pattern are the only ones let through, so the quality suite
    never sees an e-mail normalization accepted but the contract refuses.
    """
    text = pc.utf8_lower(clean_text(values))
    local_len = pc.find_substring(text, "@")
    fast = pc.and_(
        pc.and_(matches(text, _EMAIL_FAST), pc.invert(matches(text, "--"))),
        pc.and_(
            pc.invert(matches(text, _special_use_pattern())),
            pc.and_(flag(pc.less_equal(local_len, 64)), flag(pc.less_equal(pc.utf8_length(text), 254))),
        ),
    )
    email = where(fast, text)
    slow = pc.and_(pc.is_valid(text), pc.invert(fast))
    if pc.any(slow).as_py():
        email = pc.coalesce(email, map_distinct(where(slow, text), _check_email_slow, TEXT))
    return EmailResult(email=email, bad=pc.and_(pc.is_valid(text), pc.is_null(email)))


# -- countries, states, postcodes, currencies ------------------------------------------------------------

# What people write that pycountry does not know; pycountry handles names, alpha-2/3 and numeric codes.
_COUNTRY_ALIASES: Final = {"M'SIA": "MY", "MSIA": "MY", "SEMENANJUNG MALAYSIA": "MY", "UK": "GB"}


@cache
def _country_index() -> dict[str, str]:
    """Upper-cased alpha-2, alpha-3, numeric code, name, official and common name → alpha-2.

    The same keys ``pycountry.countries.lookup`` matches, built once: ``lookup`` scans every country on
    each call, which is too slow for address lines that are checked for being a country.
    """
    import pycountry

    index: dict[str, str] = {}
    for country in pycountry.countries:
        for attr in ("alpha_2", "alpha_3", "numeric", "name", "official_name", "common_name"):
            value = getattr(country, attr, None)
            if value:
                index.setdefault(" ".join(str(value).replace(".", " ").split()).upper(), str(country.alpha_2))
    index.update(_COUNTRY_ALIASES)
    return index


def _country_code(text: str) -> str | None:
    return _country_index().get(" ".join(text.replace(".", " ").split()).upper())


@dataclass(frozen=True, slots=True)
class CodeResult:
    """A code column (ISO country, state name, currency) and which present values were not recognised."""

    code: pa.Array
    bad: pa.Array


def clean_countries(values: pa.Array) -> CodeResult:
    """Country text (``Malaysia``, ``MY``, ``MYS``, ``malaysia``) → ISO 3166-1 alpha-2 through pycountry."""
    text = clean_text(values)
    code = map_distinct(text, _country_code, TEXT)
    return CodeResult(code=code, bad=pc.and_(pc.is_valid(text), pc.is_null(code)))


# Writings of Malaysian states pycountry does not list (its names and codes are the base, see _state_table).
_STATE_ALIASES: Final = {
    "KL": "Kuala Lumpur",
    "K LUMPUR": "Kuala Lumpur",
    "WPKL": "Kuala Lumpur",
    "KUL": "Kuala Lumpur",
    "PENANG": "Pulau Pinang",
    "P PINANG": "Pulau Pinang",
    "PINANG": "Pulau Pinang",
    "PG": "Pulau Pinang",
    "N SEMBILAN": "Negeri Sembilan",
    "NEGRI SEMBILAN": "Negeri Sembilan",
    "NS": "Negeri Sembilan",
    "N9": "Negeri Sembilan",
    "MALACCA": "Melaka",
    "JOHORE": "Johor",
    "TRENGGANU": "Terengganu",
    # The usual three-letter state abbreviations, and the shorter ones seen in address books.
    "JHR": "Johor",
    "KDH": "Kedah",
    "KTN": "Kelantan",
    "MLK": "Melaka",
    "NSN": "Negeri Sembilan",
    "PHG": "Pahang",
    "PNG": "Pulau Pinang",
    "PRK": "Perak",
    "PLS": "Perlis",
    "SEL": "Selangor",
    "SGR": "Selangor",
    "TRG": "Terengganu",
    "SBH": "Sabah",
    "SWK": "Sarawak",
    "LBN": "Labuan",
    "PJY": "Putrajaya",
}
# Honorifics and region words written after a state's name ("Johor Darul Ta'zim", "Sabah, East Malaysia").
_STATE_SUFFIX: Final = re.compile(
    r"\s+(?:DARUL\s+\w+|INDERA\s+KAYANGAN|BANDARAYA\s+BERSEJARAH|NEGERI\s+DI\s+BAWAH\s+BAYU|BUMI\s+KENYALANG"
    r"|(?:EAST\s+|WEST\s+|SEMENANJUNG\s+)?MALAYSIA)$"
)
# Federal territories are written with any of these in front ("W.P. Kuala Lumpur", "WP KL").
_TERRITORY_PREFIXES: Final = (
    "WP",
    "W P",
    "WILAYAH",
    "WILAYAH PERSEKUTUAN",
    "FT",
    "FEDERAL TERRITORY",
    "FEDERAL TERRITORY OF",
)


def _state_key(text: str) -> str:
    """Comparison key: upper case, no apostrophes, punctuation as spaces, no "Darul …" honorific."""
    key = re.sub(r"['’`]", "", text.upper())
    key = re.sub(r"[^\w]+", " ", key).strip()
    return _STATE_SUFFIX.sub("", key)


@cache
def _state_table() -> dict[str, str]:
    """Key → canonical name: pycountry's MY subdivisions (names, ``MY-14``, ``14``) plus the aliases above.

    The canonical names are pycountry's with "Wilayah Persekutuan" dropped, as the contract lists them.
    LHDN e-invoice state ids ("01".."16") equal the ISO subdivision numbers, so they resolve too.
    """
    import pycountry

    table: dict[str, str] = {}
    territories: set[str] = set()
    for sub in (s for s in pycountry.subdivisions if s.country_code == "MY"):
        canonical = sub.name.removeprefix("Wilayah Persekutuan").strip()
        number = sub.code.split("-")[1]
        for alias in (sub.name, canonical, sub.code, number, str(int(number))):
            table[_state_key(alias)] = canonical
        if sub.name != canonical:
            territories.add(canonical)
    for alias, canonical in _STATE_ALIASES.items():
        table[_state_key(alias)] = canonical
    for key, canonical in list(table.items()):
        if canonical in territories and not key.isdigit() and not key.startswith("MY "):
            for prefix in _TERRITORY_PREFIXES:
                table[_state_key(f"{prefix} {key}")] = canonical
    return table


def canonical_state(text: str) -> str | None:
    """The contract's name for a Malaysian state written any common way, or None."""
    return _state_table().get(_state_key(text))


def clean_states(values: pa.Array) -> CodeResult:
    """Malaysian state text → the contract's canonical name; unknown text is kept cleaned and marked bad."""
    text = clean_text(values)
    state = map_distinct(text, canonical_state, TEXT)
    return CodeResult(code=pc.coalesce(state, text), bad=pc.and_(pc.is_valid(text), pc.is_null(state)))


def clean_postcodes(values: pa.Array, country: pa.Array) -> CodeResult:
    """Upper-case postcodes; Malaysian ones (country MY or unknown) reduced to their five digits.

    ``bad`` marks a postcode of a Malaysian address that is not five digits; the value is kept as written.
    """
    text = pc.utf8_upper(clean_text(values))
    digits = pc.replace_substring_regex(text, r"[\s\-]", "")
    five = matches(digits, r"^[0-9]{5}$")
    malaysian = pc.or_(pc.is_null(country), flag(pc.equal(country, lit("MY"))))
    code = where(pc.and_(five, malaysian), digits, text)
    bad = pc.and_(pc.and_(pc.is_valid(text), flag(pc.equal(country, lit("MY")))), pc.invert(five))
    return CodeResult(code=code, bad=bad)


# Vendor writings of currencies that are not ISO codes (shared/api/SKYBIZ.md §4: ringgit is "RM").
CURRENCY_ALIASES: Final = {
    "RM": "MYR",
    "RM.": "MYR",
    "RINGGIT": "MYR",
    "US$": "USD",
    "S$": "SGD",
    "SG$": "SGD",
}
# ISO 4217 codes that are not money: "no currency" and "testing".
_NOT_MONEY: Final = frozenset({"XXX", "XTS"})


def currency_code(text: str) -> str | None:
    """ISO 4217 code for a vendor currency text (``RM``, ``myr``, `` sgd``), or None if not a currency."""
    import pycountry

    key = "".join(text.split()).upper()
    key = CURRENCY_ALIASES.get(key, CURRENCY_ALIASES.get(key.replace(".", ""), key))
    if not re.fullmatch(r"[A-Z]{3}", key) or key in _NOT_MONEY:
        return None
    found = pycountry.currencies.get(alpha_3=key)
    return str(found.alpha_3) if found is not None else None


def clean_currencies(values: pa.Array) -> CodeResult:
    """Currency text → ISO 4217 through pycountry and the vendor aliases; unknown codes marked bad."""
    text = clean_text(values)
    code = map_distinct(text, currency_code, TEXT)
    return CodeResult(code=code, bad=pc.and_(pc.is_valid(text), pc.is_null(code)))


# -- numbers ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValueResult:
    """A typed column and which present values could not be read into it."""

    values: pa.Array
    bad: pa.Array


def _decimal_slow(text: str, scale: int, int_digits: int) -> str | None:
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    rounded = number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_EVEN)
    if rounded.adjusted() >= int_digits:
        return None
    return str(rounded)


def parse_decimals(values: pa.Array, precision: int = 18, scale: int = 2) -> ValueResult:
    """Number text (JSON literal, optionally with thousands commas) → ``decimal(precision, scale)``.

    Rounded half-to-even to ``scale`` places. Plain literals are cast column-wide; exponents and other
    unusual forms go through :class:`decimal.Decimal` once per distinct value.
    """
    text = clean_text(values)
    text = where(
        matches(text, r"^[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?$"),
        pc.replace_substring(text, ",", ""),
        text,
    )
    int_digits = precision - scale
    plain = matches(text, rf"^[+-]?[0-9]{{1,{int_digits}}}(?:\.[0-9]{{1,12}})?$")
    wide = pa.decimal128(38, 12)
    exact = pc.cast(where(plain, text), wide)
    out_type = pa.decimal128(precision, scale)
    rounded = pc.round(exact, ndigits=scale, round_mode="half_to_even")
    # Rounding can carry into one more integer digit (9999….995); those few go the slow way.
    limit = pa.scalar(Decimal(10) ** int_digits, wide)
    fits = flag(pc.less(pc.abs(rounded), limit))
    result = pc.cast(where(fits, rounded), out_type)
    slow = pc.and_(pc.is_valid(text), pc.invert(fits))
    if pc.any(slow).as_py():
        parsed = map_distinct(where(slow, text), lambda t: _decimal_slow(t, scale, int_digits), TEXT)
        result = pc.coalesce(result, pc.cast(parsed, out_type))
    return ValueResult(values=result, bad=pc.and_(pc.is_valid(text), pc.is_null(result)))


def parse_integers(values: pa.Array, out_type: pa.DataType = pa.int64()) -> ValueResult:
    """Integer text (``30``, ``30.0``, `` 7 ``) → ``out_type``; fractions and overflow are bad."""
    text = clean_text(values)
    digits = 9 if out_type == pa.int32() else 18
    plain = matches(text, rf"^[+-]?[0-9]{{1,{digits}}}(?:\.0+)?$")
    whole = pc.replace_substring_regex(where(plain, text), r"\.0+$", "")
    result = pc.cast(whole, out_type)
    return ValueResult(values=result, bad=pc.and_(pc.is_valid(text), pc.is_null(result)))


# -- flags and codes ---------------------------------------------------------------------------------------

_TRUE: Final = ("Y", "YES", "T", "TRUE", "1")
_FALSE: Final = ("N", "NO", "F", "FALSE", "0")


def lookup(values: pa.Array, table: dict[str, Any], out_type: pa.DataType) -> ValueResult:
    """Map cleaned, upper-cased text through a small table; present values not in it are bad."""
    key = pc.utf8_upper(clean_text(values))
    keys = pa.array(list(table), TEXT)
    result = pa.array(list(table.values()), out_type).take(pc.index_in(key, value_set=keys))
    return ValueResult(values=result, bad=pc.and_(pc.is_valid(key), pc.is_null(result)))


def parse_flags(values: pa.Array) -> ValueResult:
    """Y/N (and YES/NO, TRUE/FALSE, 1/0) → bool."""
    return lookup(values, {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)}, pa.bool_())


# Malay writings too: L = lelaki (male), P = perempuan (female), W = wanita (woman).
_GENDERS: Final = {
    **dict.fromkeys(("M", "MALE", "L", "LELAKI", "MR"), "M"),
    **dict.fromkeys(("F", "FEMALE", "P", "PEREMPUAN", "W", "WANITA", "MS", "MRS"), "F"),
}


def parse_genders(values: pa.Array) -> ValueResult:
    """Gender text → ``M``/``F``; anything else is bad."""
    return lookup(values, _GENDERS, TEXT)


# -- dates -------------------------------------------------------------------------------------------------

# "Not set" writings of a date (MySQL zero date, .NET MinValue as text).
_DATE_SENTINELS: Final = (
    r"^0{4}-0{1,2}-0{1,2}(?:[ T]0{1,2}:0{2}(?::0{2})?)?$",
    r"^0{1,2}[/.\-]0{1,2}[/.\-]0{4}$",
    r"^0{0,3}1-0?1-0?1(?:[ T]0{1,2}:0{2}(?::0{2})?)?$",
)


def _checked_date(year: pa.Array, month: pa.Array, day: pa.Array) -> pa.Array:
    """``date32`` from parts; null where they name no real day (Arrow's strptime rolls 02-30 over)."""
    padded = concat(
        pc.utf8_lpad(year, 4, "0"), "-", pc.utf8_lpad(month, 2, "0"), "-", pc.utf8_lpad(day, 2, "0")
    )
    parsed = pc.strptime(padded, format="%Y-%m-%d", unit="s", error_is_null=True)
    back = pc.strftime(parsed, format="%Y-%m-%d")
    return pc.cast(where(pc.equal(back, pc.cast(padded, back.type)), parsed), pa.date32())


def parse_dates(values: pa.Array) -> ValueResult:
    """``YYYY-MM-DD`` (also ``YYYY-M-D``), else day-first ``DD/MM/YYYY`` (``/``, ``-`` or ``.``) → date.

    Zero dates (``0000-00-00``, ``0001-01-01``) mean "not set" and become null without being bad.
    """
    text = clean_text(values)
    iso = pc.extract_regex(
        where(matches(text, r"^\d{4}-\d{1,2}-\d{1,2}(?:[ T]00:00(?::00)?)?$"), text),
        r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})",
    )
    dmy = pc.extract_regex(
        where(matches(text, r"^\d{1,2}[/.\-]\d{1,2}[/.\-]\d{4}$"), text),
        r"^(?P<d>\d{1,2})[/.\-](?P<m>\d{1,2})[/.\-](?P<y>\d{4})$",
    )
    first = _checked_date(*(pc.struct_field(iso, k) for k in ("y", "m", "d")))
    second = _checked_date(*(pc.struct_field(dmy, k) for k in ("y", "m", "d")))
    result = pc.coalesce(first, second)
    sentinel = pa.array([False] * len(text), pa.bool_())
    for pattern in _DATE_SENTINELS:
        sentinel = pc.or_(sentinel, matches(text, pattern))
    result = where(pc.invert(sentinel), result)
    return ValueResult(
        values=result, bad=pc.and_(pc.and_(pc.is_valid(text), pc.invert(sentinel)), pc.is_null(result))
    )


UTC_TS: Final = pa.timestamp("us", tz="UTC")


def parse_wall_times(values: pa.Array, utc_offset: timedelta) -> ValueResult:
    """``YYYY-MM-DD HH:MM:SS`` wall time at a fixed UTC offset → UTC timestamps.

    Also reads a ``T`` separator, minutes without seconds and bare dates (midnight). Values Arrow would
    roll over (``25:00``, ``02-30``) are bad, not silently moved.
    """
    text = clean_text(values)
    norm = pc.replace_substring(text, "T", " ")
    norm = where(matches(norm, r"^\d{4}-\d{2}-\d{2}$"), concat(norm, " 00:00:00"), norm)
    norm = where(matches(norm, r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$"), concat(norm, ":00"), norm)
    fmt = "%Y-%m-%d %H:%M:%S"
    parsed = pc.strptime(norm, format=fmt, unit="s", error_is_null=True)
    back = pc.strftime(parsed, format=fmt)
    parsed = where(pc.equal(back, pc.cast(norm, back.type)), parsed)
    shifted = pc.subtract(pc.cast(parsed, pa.timestamp("us")), pa.scalar(utc_offset, pa.duration("us")))
    result = pc.cast(shifted, UTC_TS)
    return ValueResult(values=result, bad=pc.and_(pc.is_valid(text), pc.is_null(result)))


# -- JSON and hashing ----------------------------------------------------------------------------------------


def json_quote(values: pa.Array) -> pa.Array:
    """Each string as a JSON string literal (quotes included); null stays null."""
    return concat('"', json_escape(values), '"')


def json_escape(values: pa.Array) -> pa.Array:
    """The inside of JSON string literals: backslash, quote and control characters escaped.

    Most columns hold nothing to escape; one regex match finds that out, and only the rows that do are
    rewritten.
    """
    out = as_text(values)
    if not _has_special_bytes(out):
        return out
    special = matches(out, r'["\\\x00-\x1f]')
    part = out.filter(special)
    for raw, escaped in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        part = pc.replace_substring(part, raw, escaped)
    if pc.any(matches(part, r"[\x00-\x1f]")).as_py():
        for code in range(0x20):
            part = pc.replace_substring(part, chr(code), f"\\u{code:04x}")
    return pc.replace_with_mask(out, special, part)


def json_object(members: Sequence[tuple[str, pa.Array, bool]], length: int) -> pa.Array:
    """Per row, a JSON object of the present members; null when none is present.

    ``members`` are ``(key, values, is_json)``: text values are quoted, ``is_json`` values are already
    JSON text and are embedded as they are. Built with a single join: a member without nulls joins as
    literal key text plus its values (no copy of its own); each other member is one concatenation, null
    where the value is. Every member starts with a comma and the join ends with ``}``, so a row's first
    byte is then turned into ``{`` in place.
    """
    if not members:
        return null_text(length)
    elements: list[pa.Array | pa.Scalar] = []
    for key, values, is_json in members:
        body = as_text(values) if is_json else json_escape(values)
        head = "," + json.dumps(key, ensure_ascii=False) + (":" if is_json else ':"')
        tail = "" if is_json else '"'
        if body.null_count == 0:
            elements += [lit(head), body, *([lit(tail)] if tail else [])]
        else:
            elements.append(concat(head, body, tail) if tail else concat(head, body))
    elements.append(lit("}"))
    joined = pc.binary_join_element_wise(*elements, lit(""), null_handling="replace", null_replacement="")
    return _open_objects(joined)


def _open_objects(joined: pa.Array) -> pa.Array:
    """``,…}`` → ``{…}`` by rewriting one byte per row; a bare ``}`` (no member present) → null."""
    n = len(joined)
    if joined.offset:
        joined = pa.concat_arrays([joined])
    _, offsets_buf, data_buf = joined.buffers()  # no nulls: joined with null_handling='replace'
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[: n + 1]
    present = np.diff(offsets) > 1
    data = np.frombuffer(data_buf, dtype=np.uint8).copy()
    data[offsets[:-1][present]] = ord("{")
    mask = pa.array(present)
    return pa.Array.from_buffers(TEXT, n, [mask.buffers()[1], offsets_buf, pa.py_buffer(data)])


def sha256_hex(values: pa.Array) -> pa.Array:
    """SHA-256 hex digest of each string's UTF-8 bytes (null stays null).

    hashlib over memoryview slices of the Arrow data buffer: no decoding to Python strings, and measured
    faster here than DuckDB's ``sha256()`` once its Arrow round trip is counted.
    """
    arr = as_text(values)
    n = len(arr)
    if n == 0:
        return null_text(0)
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64)[arr.offset : arr.offset + n + 1].tolist()
    data = memoryview(buffers[2]) if buffers[2] is not None else memoryview(b"")
    sha = hashlib.sha256
    digests = [sha(data[offsets[i] : offsets[i + 1]]).hexdigest() for i in range(n)]
    return where(pc.is_valid(arr), pa.array(digests, TEXT))
