"""Field mappings both sources use: one raw field (or a few) into one model column, with its issue code.

Issue codes are ``<model column>_<what went wrong>`` (``phone_unparseable``, ``email_invalid``,
``gender_unrecognized``...), so a code says which column lost a value; the value itself is kept in
``source_extras`` under the raw field's name.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contracts import check_param
from pipelines.normalize.clean import (
    TEXT,
    ValueResult,
    clean_countries,
    clean_currencies,
    clean_emails,
    clean_phones,
    clean_postcodes,
    clean_states,
    clean_text,
    concat,
    flag,
    lit,
    parse_dates,
    parse_decimals,
    parse_flags,
    parse_genders,
    parse_integers,
    parse_wall_times,
    title_case,
    where,
)
from pipelines.normalize.model import CUSTOMER_CONTRACT, Draft

NAME_MAX: Final = int(check_param(CUSTOMER_CONTRACT, "name", "length", "max"))
"""The contract's length check on ``name``; longer names are quarantined, not cut."""
MALAYSIA_OFFSET: Final = timedelta(hours=8)


def map_identity(draft: Draft, id_field: str, name_field: str) -> None:
    """``customer_key``, ``source_system``, ``source_customer_id``, ``name``, and their quarantine rules."""
    ident = clean_text(draft.text(id_field))
    name = clean_text(draft.text(name_field))
    draft.set("source_customer_id", ident, id_field)
    draft.set("customer_key", concat(f"{draft.source}:", ident))
    draft.set("source_system", pa.repeat(lit(draft.source), draft.rows))
    draft.set("name", name, name_field)
    draft.rule("id_missing", id_field, pc.is_null(ident), draft.text(id_field))
    draft.rule("name_missing", name_field, pc.is_null(name), draft.text(name_field))
    draft.rule(
        "name_too_long", name_field, pc.greater(pc.utf8_length(name), NAME_MAX), draft.text(name_field)
    )


def map_currency(draft: Draft, field: str) -> None:
    """``currency`` (required): missing or not a real ISO 4217 currency quarantines the row."""
    result = clean_currencies(draft.text(field))
    draft.set("currency", result.code, field)
    draft.rule("currency_missing", field, pc.is_null(clean_text(draft.text(field))), draft.text(field))
    draft.rule("currency_unknown", field, result.bad, draft.text(field))


def map_modified(draft: Draft, field: str, parsed: ValueResult) -> None:
    """``modified_at`` (required, decides which version is newest): missing or unreadable quarantines."""
    draft.set("modified_at", parsed.values, field)
    draft.rule(
        "modified_at_missing",
        field,
        pc.and_(pc.is_null(parsed.values), pc.invert(parsed.bad)),
        draft.text(field),
    )
    draft.rule("modified_at_unparseable", field, parsed.bad, draft.text(field))


def map_text(draft: Draft, column: str, field: str) -> None:
    """Whitespace-cleaned text, case kept."""
    draft.set(column, clean_text(draft.text(field)), field)


def map_phone(draft: Draft, column: str, field: str) -> None:
    """E.164 phone; unreadable → null, ``<column>_unparseable``; extension → extras ``<field>_extension``.

    The row's ``country`` (mapped before phones) is the region for numbers written without a country
    code, so a Singapore customer's ``6123 4567`` reads as +65; Malaysia where the country is unknown.
    """
    raw = draft.text(field)
    result = clean_phones(raw, draft.columns.get("country"))
    draft.set(column, result.e164, field)
    draft.issue(f"{column}_unparseable", result.bad, (field, raw))
    if result.extension.null_count < len(result.extension):
        draft.extra(f"{field}_extension", result.extension, field_name=field)


def map_email(draft: Draft, column: str, field: str) -> None:
    """Lower-cased, checked e-mail; invalid → null, ``<column>_invalid``."""
    raw = draft.text(field)
    result = clean_emails(raw)
    draft.set(column, result.email, field)
    draft.issue(f"{column}_invalid", result.bad, (field, raw))


def map_place(
    draft: Draft,
    *,
    town: str | None,
    state: str | None,
    country: str | None,
    postcode: str | None,
) -> None:
    """Town (title case), state (canonical Malaysian name), country (ISO alpha-2), postcode.

    A missing country next to a recognised Malaysian state becomes ``MY``; a state is only called
    unrecognised when the address is (or may be) Malaysian.
    """
    n = draft.rows
    empty = pa.nulls(n, TEXT)
    country_raw = draft.text(country) if country else empty
    countries = clean_countries(country_raw)
    states = clean_states(draft.text(state) if state else empty)
    recognised_state = pc.and_(pc.is_valid(states.code), pc.invert(states.bad))
    code = pc.coalesce(countries.code, where(recognised_state, lit("MY")))
    if country:
        draft.set("country", code, country)
        draft.issue("country_unrecognized", countries.bad, (country, country_raw))
    else:
        draft.set("country", code)
    if state:
        malaysian = pc.or_(pc.is_null(code), flag(pc.equal(code, lit("MY"))))
        draft.set("state", states.code, state)
        draft.issue("state_unrecognized", pc.and_(states.bad, malaysian))
    if town:
        draft.set("town", title_case(draft.text(town)), town)
    if postcode:
        codes = clean_postcodes(draft.text(postcode), code)
        draft.set("postcode", codes.code, postcode)
        draft.issue("postcode_invalid", codes.bad)


def map_decimal(draft: Draft, column: str, field: str) -> None:
    """``decimal(18,2)`` amount; unreadable → null, ``<column>_unparseable``."""
    raw = draft.text(field)
    result = parse_decimals(raw)
    draft.set(column, result.values, field)
    draft.issue(f"{column}_unparseable", result.bad, (field, raw))


def map_integer(
    draft: Draft, column: str, field: str, out_type: pa.DataType, code: str | None = None
) -> None:
    """Integer column; unreadable → null, ``code`` (default ``<column>_unparseable``)."""
    raw = draft.text(field)
    result = parse_integers(raw, out_type)
    draft.set(column, result.values, field)
    draft.issue(code or f"{column}_unparseable", result.bad, (field, raw))


def map_flag(draft: Draft, column: str, field: str) -> None:
    """Y/N flag → bool; anything else → null, ``<column>_unrecognized``."""
    raw = draft.text(field)
    result = parse_flags(raw)
    draft.set(column, result.values, field)
    draft.issue(f"{column}_unrecognized", result.bad, (field, raw))


def map_gender(draft: Draft, field: str) -> None:
    """Gender → M/F (English and Malay writings); anything else → null, ``gender_unrecognized``."""
    raw = draft.text(field)
    result = parse_genders(raw)
    draft.set("gender", result.values, field)
    draft.issue("gender_unrecognized", result.bad, (field, raw))


def map_date(draft: Draft, column: str, field: str) -> None:
    """``YYYY-MM-DD`` or ``DD/MM/YYYY`` → date; zero dates → null; else null, ``<column>_unparseable``."""
    raw = draft.text(field)
    result = parse_dates(raw)
    draft.set(column, result.values, field)
    draft.issue(f"{column}_unparseable", result.bad, (field, raw))


def malaysia_wall_times(draft: Draft, field: str) -> ValueResult:
    """Malaysia wall-time text (``2026-04-15 10:30:00``) → UTC (shared/api/SKYBIZ.md §8)."""
    return parse_wall_times(draft.text(field), MALAYSIA_OFFSET)
