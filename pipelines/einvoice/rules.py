"""E-invoice readiness of customer records, column-wide over Arrow arrays: pure, no I/O.

:func:`assess` takes a source's e-invoice fields as text (as sent) and the already normalized ``state``
and ``country``, and returns the model columns (``tax_id``, ``tin_kind``, ``id_type``, ``id_number``,
``einvoice_sst_no``, ``lhdn_state_code``, ``country_alpha3``, ``tin_validated``, ``einvoice_ready``,
``einvoice_reasons``), the ``data_issues`` masks of values present but malformed, and one mask per
readiness reason. Every pattern, allowed value and code table comes from the :class:`EinvoiceSpec` read
from the customer contract; the reason codes are the contract's, in its order.

A malformed value is never repaired here: ``960412-10-5523`` is not an NRIC SmartAcc can send, so the column
is null, the row carries ``id_number_invalid`` and the reason ``nric_format``, and the value as sent stays in
``source_extras``. Only the TIN is normalized (trimmed, upper-cased, spaces removed), as LHDN reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.einvoice.spec import GENERAL_KIND, EinvoiceSpec
from pipelines.errors import ContractError
from pipelines.normalize.clean import (
    TEXT,
    as_text,
    clean_text,
    concat,
    flag,
    join_present,
    lit,
    matches,
    parse_flags,
    where,
)

REASON_SEPARATOR: Final = ";"
_SPACES: Final = r"[\s\p{Z}]+"


@dataclass(frozen=True, slots=True)
class EinvoiceFields:
    """A source's e-invoice fields for ``n`` rows, as sent (text; null = absent).

    Attributes:
        tin: the buyer's TIN (SmartAcc ``EInvoiceRegTIN``).
        id_type: ``BRN``/``NRIC``/``PASSPORT``/``ARMY`` (``EInvoiceRegType``).
        id_numbers: the number field of each type (``EInvoiceRegNumber_BRN`` …), by type.
        id_number: the generic number field (``EInvoiceRegNumber``), used where the type's own is empty.
        sst: the SST field (``EInvoiceRegSSTNumber``).
        address_line: the first e-invoice address line.
        city: the e-invoice city.
        state_code: the e-invoice state field, which must hold an LHDN code.
        country_code: the e-invoice country field, which must hold an ISO alpha-3 code.
        validated: whether the source's TIN validation succeeded (Y/N).
        state: the normalized canonical state name (the model's ``state``).
        country: the normalized ISO alpha-2 country (the model's ``country``).
    """

    tin: pa.Array
    id_type: pa.Array
    id_numbers: Mapping[str, pa.Array]
    id_number: pa.Array
    sst: pa.Array
    address_line: pa.Array
    city: pa.Array
    state_code: pa.Array
    country_code: pa.Array
    validated: pa.Array
    state: pa.Array
    country: pa.Array


@dataclass(frozen=True, slots=True)
class Assessment:
    """What :func:`assess` found.

    Attributes:
        columns: model column → values (text as ``large_string``).
        issues: ``(data_issues code, mask)``: values present but malformed.
        reasons: reason code → mask, for every readiness rule of the contract.
    """

    columns: dict[str, pa.Array]
    issues: list[tuple[str, pa.Array]] = field(default_factory=list)
    reasons: dict[str, pa.Array] = field(default_factory=dict)


def _false(n: int) -> pa.Array:
    return pa.repeat(pa.scalar(False), n)


def normalize_tin(values: pa.Array) -> pa.Array:
    """Trimmed, upper-cased, every space removed; blank → null."""
    text = pc.utf8_upper(pc.replace_substring_regex(clean_text(values), _SPACES, ""))
    return where(pc.not_equal(text, lit("")), text)


def _upper(values: pa.Array) -> pa.Array:
    return pc.utf8_upper(clean_text(values))


def classify_tins(tin: pa.Array, spec: EinvoiceSpec) -> tuple[pa.Array, pa.Array, pa.Array]:
    """``(kind, well_formed, legacy)`` of normalized TINs: kind is the prefix, ``EI`` for a general TIN."""
    ok = matches(tin, spec.tin_pattern)
    general = flag(pc.is_in(tin, value_set=pa.array(list(spec.general_tins), TEXT)))
    prefix = pc.struct_field(pc.extract_regex(where(ok, tin), r"^(?P<p>[A-Z]+)"), "p")
    kind = where(ok, pc.if_else(general, lit(GENERAL_KIND), as_text(prefix)))
    low, high = spec.tin_digits[sorted(spec.individual_kinds)[0]]
    legacy_pattern = f"^({'|'.join(spec.legacy_prefixes)})[0-9]{{{low},{high}}}$"
    return kind, ok, matches(tin, legacy_pattern)


def nric_date_ok(number: pa.Array) -> pa.Array:
    """Whether an NRIC's first six digits (YYMMDD) are a real date in the 1900s or the 2000s."""
    yymmdd = pc.utf8_slice_codeunits(number, 0, 6)
    ok = _false(len(number))
    for century in ("19", "20"):
        text = concat(century, yymmdd)
        parsed = pc.strptime(text, format="%Y%m%d", unit="s", error_is_null=True)
        back = pc.strftime(parsed, format="%Y%m%d")
        ok = pc.or_(ok, flag(pc.equal(back, pc.cast(text, back.type))))
    return ok


@cache
def _alpha3() -> tuple[dict[str, str], frozenset[str]]:
    """ISO 3166-1 alpha-2 → alpha-3, and every alpha-3 (pycountry's tables, in the package)."""
    import pycountry

    pairs = {str(c.alpha_2): str(c.alpha_3) for c in pycountry.countries}
    return pairs, frozenset(pairs.values())


def alpha3_of(alpha2: pa.Array) -> pa.Array:
    """ISO alpha-3 of alpha-2 codes (null where unknown)."""
    pairs, _ = _alpha3()
    keys = pa.array(list(pairs), TEXT)
    return pa.array(list(pairs.values()), TEXT).take(pc.index_in(as_text(alpha2), value_set=keys))


def state_codes_of(state: pa.Array, country: pa.Array, spec: EinvoiceSpec) -> pa.Array:
    """LHDN code of canonical state names; the not-applicable code for an address outside Malaysia."""
    names = pa.array(list(spec.state_codes), TEXT)
    code = pa.array(list(spec.state_codes.values()), TEXT).take(pc.index_in(as_text(state), value_set=names))
    abroad = flag(pc.not_equal(as_text(country), lit("MY")))
    return pc.if_else(abroad, lit(spec.state_not_applicable), code)


def assess(f: EinvoiceFields, spec: EinvoiceSpec) -> Assessment:
    """The e-invoice columns, issues and readiness reasons of every row.

    Raises:
        ContractError: the contract lists a readiness reason this module does not compute.
    """
    n = len(f.tin)
    tin = normalize_tin(f.tin)
    kind, tin_ok, legacy = classify_tins(tin, spec)
    tin_present = pc.is_valid(tin)

    typ = _upper(f.id_type)
    known = flag(pc.is_in(typ, value_set=pa.array(list(spec.id_types), TEXT)))
    number_raw = pa.nulls(n, TEXT)
    for t in spec.id_types:
        own = f.id_numbers.get(t)
        if own is not None:
            number_raw = pc.coalesce(number_raw, where(pc.equal(typ, lit(t)), clean_text(own)))
    number = pc.utf8_upper(pc.coalesce(number_raw, clean_text(f.id_number)))
    number_present = pc.is_valid(number)

    def is_type(t: str) -> pa.Array:
        return flag(pc.equal(typ, lit(t)))

    foreign_na = pc.and_(
        flag(pc.is_in(tin, value_set=pa.array(sorted(spec.not_applicable_tins), TEXT))),
        flag(pc.equal(number, lit("NA"))),
    )
    shaped = {t: pc.and_(is_type(t), matches(number, p)) for t, p in spec.id_patterns.items()}
    structure_ok = pc.and_(known, foreign_na)
    for mask in shaped.values():
        structure_ok = pc.or_(structure_ok, mask)
    nric = shaped.get("NRIC", _false(n))
    date_ok = pc.or_(pc.invert(nric), nric_date_ok(number))
    number_ok = pc.and_(structure_ok, date_ok)
    brn = pc.and_(is_type("BRN"), pc.invert(foreign_na))
    brn_old = pc.and_(brn, matches(number, spec.brn_old_pattern))

    # Kind against type: a business TIN with an individual's ID; a BRN whose entity type fixes the kind.
    specific = pc.and_(tin_ok, flag(pc.not_equal(kind, lit(GENERAL_KIND))))
    business_kind = pc.invert(flag(pc.is_in(kind, value_set=pa.array(sorted(spec.individual_kinds), TEXT))))
    individual_type = flag(pc.is_in(typ, value_set=pa.array(sorted(spec.individual_types), TEXT)))
    mismatch = pc.and_(business_kind, individual_type)
    entity = pc.utf8_slice_codeunits(number, 4, 6)
    for code, kinds in spec.brn_entity_kinds.items():
        wrong = pc.and_(
            flag(pc.equal(entity, lit(code))),
            pc.invert(flag(pc.is_in(kind, value_set=pa.array(kinds, TEXT)))),
        )
        mismatch = pc.or_(mismatch, pc.and_(shaped.get("BRN", brn), wrong))
    mismatch = pc.and_(specific, mismatch)

    sst = _upper(f.sst)
    sst_ok = matches(sst, spec.sst_pattern)
    sst_present = pc.is_valid(sst)

    state_raw = clean_text(f.state_code)
    state_bad = pc.and_(pc.is_valid(state_raw), pc.invert(matches(state_raw, spec.state_pattern)))
    country_raw = _upper(f.country_code)
    _, alpha3 = _alpha3()
    country_ok = pc.and_(
        matches(country_raw, spec.country_pattern),
        flag(pc.is_in(country_raw, value_set=pa.array(sorted(alpha3), TEXT))),
    )
    country_bad = pc.and_(pc.is_valid(country_raw), pc.invert(country_ok))
    address_missing = pc.or_(
        pc.or_(pc.is_null(clean_text(f.address_line)), pc.is_null(clean_text(f.city))),
        pc.is_null(country_raw),
    )
    validated = parse_flags(f.validated)

    individual_other = pc.or_(is_type("PASSPORT"), is_type("ARMY"))
    reasons: dict[str, pa.Array] = {
        "tin_missing": pc.invert(tin_present),
        "tin_legacy_prefix": legacy,
        "tin_format": pc.and_(pc.and_(tin_present, pc.invert(tin_ok)), pc.invert(legacy)),
        "id_missing": pc.or_(pc.is_null(typ), pc.invert(number_present)),
        "id_type_unknown": pc.and_(pc.is_valid(typ), pc.invert(known)),
        "tin_kind_mismatch": mismatch,
        "brn_old_format": brn_old,
        "brn_format": pc.and_(
            pc.and_(brn, number_present), pc.invert(pc.or_(shaped.get("BRN", brn), brn_old))
        ),
        "nric_format": pc.and_(pc.and_(is_type("NRIC"), number_present), pc.invert(pc.or_(nric, foreign_na))),
        "nric_date_invalid": pc.and_(nric, pc.invert(date_ok)),
        "id_format": pc.and_(pc.and_(individual_other, number_present), pc.invert(structure_ok)),
        "sst_missing": pc.invert(sst_present),
        "sst_format": pc.and_(sst_present, pc.invert(sst_ok)),
        "address_incomplete": address_missing,
        "state_code_missing": pc.is_null(state_raw),
        "state_code_invalid": state_bad,
        "country_invalid": country_bad,
        "tin_not_validated": pc.invert(flag(pc.equal(validated.values, True))),
    }
    unknown = [r for r in spec.reasons if r not in reasons]
    if unknown:
        raise ContractError(f"readiness reasons without a rule in pipelines.einvoice: {unknown}")
    reasons = {r: flag(reasons[r]) for r in spec.reasons}
    listed = join_present([where(m, lit(r)) for r, m in reasons.items()], REASON_SEPARATOR, n)
    columns = {
        "tax_id": where(tin_ok, tin),
        "tin_kind": kind,
        "id_type": where(known, typ),
        "id_number": where(number_ok, number),
        "einvoice_sst_no": where(sst_ok, sst),
        "lhdn_state_code": state_codes_of(f.state, f.country, spec),
        "country_alpha3": alpha3_of(f.country),
        "tin_validated": validated.values,
        "einvoice_ready": pc.is_null(listed),
        "einvoice_reasons": listed,
    }
    issues = [
        ("tax_id_invalid", pc.and_(tin_present, pc.invert(tin_ok))),
        ("id_type_unrecognized", reasons["id_type_unknown"]),
        ("id_number_invalid", pc.and_(pc.and_(known, number_present), pc.invert(number_ok))),
        ("einvoice_sst_no_invalid", reasons["sst_format"]),
        ("lhdn_state_code_invalid", state_bad),
        ("country_alpha3_invalid", country_bad),
        ("tin_validated_unrecognized", validated.bad),
    ]
    return Assessment(columns=columns, issues=issues, reasons=reasons)


def split_reasons(values: pa.Array) -> list[list[str]]:
    """``einvoice_reasons`` texts as lists (null → empty)."""
    return [[] if v is None else v.split(REASON_SEPARATOR) for v in as_text(values).to_pylist()]
