"""SmartAcc AcCustomer records → the common model (shared/api/SMARTACC.md §3, §5, §6).

SmartAcc's quirks, all handled here:

* Dates are ServiceStack ``/Date(ms±zone)/`` texts whose ``ms`` is always the UTC instant;
  ``DateTime.MinValue`` means "not set" (parsing is the codec module
  :func:`~pipelines.sources.smartacc.dates.parse_servicestack_dates`, reused, not rewritten).
* The billing address is four free lines without town, state or country fields. Malaysian practice puts
  ``<postcode> <town>`` on one line and the state on the last, so ``town`` and ``state`` are read from
  those lines when they say so; the e-invoice address (``EInvoiceAddressCityName``,
  ``AcEInvoiceAddressStateID`` — LHDN state codes, which equal the ISO subdivision numbers —
  ``AcEInvoiceAddressCountryID``) is the fallback. The lines themselves land whole in
  ``address_line1``-``4``; the e-invoice fields stay in ``source_extras`` as sent.
* ``AcTermID`` is a code (``C30``); its days come from the Terms lookup snapshot taken with the window.
* Registration numbers have several homes. ``registration_no`` is ``BusinessRegisterNumber``, else the
  e-invoice ``EInvoiceRegNumber_BRN``. ``sst_no`` is ``TaxSLTRegistrationNo`` (the sales-tax registration,
  the number SST returns are filed under), else ``EInvoiceRegSSTNumber`` (what LHDN has on file; ``NA``
  when not registered), else ``TaxSVTRegistrationNo`` (service tax). ``AcTaxIDSST`` is a tax *code* such as
  ``SST10``, not a registration number, so it stays in extras. Fallback fields always stay in
  ``source_extras`` too, so no variant is lost when two disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.einvoice.rules import EinvoiceFields, assess
from pipelines.einvoice.spec import load_spec
from pipelines.errors import NormalizeError
from pipelines.normalize.clean import (
    TEXT,
    UTC_TS,
    ValueResult,
    as_text,
    canonical_state,
    clean_countries,
    clean_postcodes,
    clean_text,
    flag,
    lit,
    map_distinct,
    matches,
    parse_integers,
    title_case,
    where,
)
from pipelines.normalize.common import (
    MALAYSIA_OFFSET,
    map_currency,
    map_decimal,
    map_email,
    map_flag,
    map_gender,
    map_identity,
    map_integer,
    map_modified,
    map_phone,
    map_text,
)
from pipelines.normalize.model import Draft
from pipelines.sources.smartacc import SPEC
from pipelines.sources.smartacc.dates import MIN_VALUE_MS, parse_servicestack_dates

SOURCE: Final = SPEC.name
ID_FIELD: Final = SPEC.id_field
# The raw fields the quarantine rules and the duplicate order read (see ``rules_only``).
RULE_FIELDS: Final = SPEC.rule_fields
TERMS_ENTITY: Final = SPEC.lookup("terms").entity
# Dates with no model column: kept in extras as sent, unless "not set".
_EXTRA_DATES: Final = (
    "MemberJoinDate",
    "MemberExpireDate",
    "MemberMarriageDate",
    "EInvoiceTINValidateDateTime",
)
# .NET DateTime.MaxValue in ms: anything later is not a date SmartAcc can hold.
_MAX_MS: Final = 253_402_300_799_999
# Values meaning "none" in SmartAcc id-like fields that are otherwise free text.
_NOT_APPLICABLE: Final = ("NA", "N/A", "-")


def servicestack_dates(values: pa.Array) -> tuple[ValueResult, pa.Array]:
    """ServiceStack date texts → (UTC timestamps with their ``bad`` mask, the "not set" mask)."""
    text = clean_text(values)
    instant = parse_servicestack_dates(text)
    ms = pc.cast(instant, pa.int64())
    in_range = pc.and_(flag(pc.greater(ms, MIN_VALUE_MS)), flag(pc.less_equal(ms, _MAX_MS)))
    # "Not set" is DateTime.MinValue itself; any other date the parser gave no instant for is bad.
    unset = matches(text, rf"^\\?/Date\({MIN_VALUE_MS}(?:[+-][0-9]{{4}})?\)\\?/$")
    result = pc.cast(where(in_range, instant), UTC_TS)
    bad = pc.and_(pc.and_(pc.is_valid(text), pc.invert(unset)), pc.is_null(result))
    return ValueResult(values=result, bad=bad), unset


def malaysia_dates(instants: pa.Array) -> pa.Array:
    """The Malaysia calendar date of each UTC instant (SmartAcc stores Malaysia wall times)."""
    shifted = pc.add(pc.cast(instants, pa.timestamp("us")), pa.scalar(MALAYSIA_OFFSET, pa.duration("us")))
    return pc.cast(shifted, pa.date32(), safe=False)


def draft(raw: pa.Table, lookups: Mapping[str, pa.Table], *, rules_only: bool = False) -> Draft:
    """Map a raw SmartAcc window onto the model, resolving term days through the Terms snapshot.

    ``lookups`` holds the window's lookup snapshots by entity (:data:`TERMS_ENTITY`). ``rules_only`` maps
    just :data:`RULE_FIELDS` (no Terms needed): enough to decide quarantine and duplicates for a whole
    window from a narrow read.

    Raises:
        NormalizeError: no Terms snapshot was given, or it lacks ``AcTermID``/``TermDays``.
    """
    d = Draft(SOURCE, raw, ID_FIELD)
    map_identity(d, ID_FIELD, "AcCustomerName")
    map_currency(d, "AcCurrencyID")
    map_modified(d, "EditDate", servicestack_dates(d.text("EditDate"))[0])
    map_integer(d, "source_version", "Stamp", pa.int64())
    if rules_only:
        return d
    terms = lookups.get(TERMS_ENTITY)
    if terms is None:
        raise NormalizeError(
            "SmartAcc needs the Terms lookup snapshot (raw/source=smartacc/entity=terms) to turn AcTermID "
            "into days; re-run the extract step for this window",
            source=SOURCE,
        )
    map_text(d, "nickname", "AcCustomerNickName")
    for i in range(1, 5):
        map_text(d, f"address_line{i}", f"BillingAddress{i}")
    _map_place(d)
    map_phone(d, "phone", "BillingTel1")
    map_phone(d, "phone_2", "BillingTel2")
    map_phone(d, "fax", "BillingFax1")
    map_phone(d, "mobile", "MobileNo")
    map_email(d, "email", "BillingEmail")
    map_text(d, "website", "BillingHomePage")
    map_text(d, "contact_name", "BillingContact1")
    map_decimal(d, "credit_limit", "LocalCreditLimit")
    map_decimal(d, "balance", "LocalBalanceAmount")
    _map_terms(d, terms)
    map_text(d, "salesperson_code", "AcSalesmanID")
    map_text(d, "area_code", "AcAreaID")
    map_text(d, "category_code", "AcCusGroupID")
    map_text(d, "price_code", "PriceCode")
    map_flag(d, "is_active", "IsActive")
    map_flag(d, "is_member", "IsMember")
    map_gender(d, "Gender")
    _map_dates(d)
    _map_registrations(d)
    _map_einvoice(d)
    return d


def _map_place(d: Draft) -> None:
    line4, line3, line2 = (clean_text(d.text(f"BillingAddress{i}")) for i in (4, 3, 2))
    # A state or country name has no digits; checking only such lines keeps the lookups to few values.
    words4, words3 = (where(pc.invert(matches(line, r"[0-9]")), line) for line in (line4, line3))
    line_state = pc.coalesce(
        map_distinct(words4, canonical_state, TEXT), map_distinct(words3, canonical_state, TEXT)
    )
    line_country = clean_countries(words4).code
    town_pattern = r"^[0-9]{5}\s+(?P<town>\D.*)$"
    line_town = pc.coalesce(
        *(
            pc.struct_field(pc.extract_regex(where(matches(line, town_pattern), line), town_pattern), "town")
            for line in (line3, line4, line2)
        )
    )

    einv_state = map_distinct(clean_text(d.text("AcEInvoiceAddressStateID")), canonical_state, TEXT)
    einv_country = clean_countries(d.text("AcEInvoiceAddressCountryID")).code
    state = pc.coalesce(line_state, einv_state)
    country = pc.coalesce(line_country, einv_country, where(pc.is_valid(state), lit("MY")))
    d.set("state", state)
    d.set("country", country)
    d.set("town", pc.coalesce(title_case(line_town), title_case(d.text("EInvoiceAddressCityName"))))
    postcodes = clean_postcodes(d.text("BillingPostalCode"), country)
    d.set("postcode", postcodes.code, "BillingPostalCode")
    d.issue("postcode_invalid", postcodes.bad)


def _map_terms(d: Draft, terms: pa.Table) -> None:
    """``payment_terms_code`` = AcTermID; ``payment_terms_days`` = its TermDays in the Terms snapshot."""
    for name in ("AcTermID", "TermDays"):
        if name not in terms.column_names:
            raise NormalizeError(f"Terms snapshot has no {name} column", source=SOURCE, field=name)
    code = clean_text(d.text("AcTermID"))
    d.set("payment_terms_code", code, "AcTermID")
    ids = pc.utf8_upper(clean_text(as_text(terms.column("AcTermID"))))
    days = parse_integers(as_text(terms.column("TermDays")), pa.int32()).values
    position = pc.index_in(pc.utf8_upper(code), value_set=ids)
    d.set("payment_terms_days", days.take(position))
    d.issue("payment_terms_unknown", pc.and_(pc.is_valid(code), pc.is_null(position)))
    d.issue("payment_terms_unparseable", pc.and_(pc.is_valid(position), pc.is_null(days.take(position))))


def _map_dates(d: Draft) -> None:
    created, _ = servicestack_dates(d.text("CreateDate"))
    d.set("created_at", created.values, "CreateDate")
    d.set("customer_since", malaysia_dates(created.values))
    d.issue("created_at_unparseable", created.bad, ("CreateDate", d.text("CreateDate")))
    born, _ = servicestack_dates(d.text("DateOfBirth"))
    d.set("date_of_birth", malaysia_dates(born.values), "DateOfBirth")
    d.issue("date_of_birth_unparseable", born.bad, ("DateOfBirth", d.text("DateOfBirth")))
    for name in _EXTRA_DATES:
        _, unset = servicestack_dates(d.text(name))
        blank = pc.is_null(clean_text(d.text(name)))
        d.extra(name, where(pc.invert(pc.or_(unset, blank)), d.text(name)))


def _map_registrations(d: Draft) -> None:
    def present(field: str) -> pa.Array:
        text = clean_text(d.text(field))
        return where(
            pc.invert(flag(pc.is_in(pc.utf8_upper(text), value_set=pa.array(_NOT_APPLICABLE, TEXT)))), text
        )

    d.set("registration_no", pc.coalesce(present("BusinessRegisterNumber"), present("EInvoiceRegNumber_BRN")))
    d.used.add("BusinessRegisterNumber")
    d.set(
        "sst_no",
        pc.coalesce(
            present("TaxSLTRegistrationNo"), present("EInvoiceRegSSTNumber"), present("TaxSVTRegistrationNo")
        ),
        "TaxSLTRegistrationNo",
    )


def _map_einvoice(d: Draft) -> None:
    """``tax_id`` and the e-invoice columns (:mod:`pipelines.einvoice`, rules from the contract).

    The e-invoice fields stay in ``source_extras`` as sent (``EInvoiceRegTIN`` too, when malformed); a
    present but malformed value is flagged in ``data_issues`` and its column left null, never repaired.
    """
    tin = d.text("EInvoiceRegTIN")
    blank = flag(pc.is_in(pc.utf8_upper(clean_text(tin)), value_set=pa.array(_NOT_APPLICABLE, TEXT)))
    fields = EinvoiceFields(
        tin=where(pc.invert(blank), tin),
        id_type=d.text("EInvoiceRegType"),
        id_numbers={t: d.text(f"EInvoiceRegNumber_{t}") for t in ("BRN", "NRIC", "PASSPORT", "ARMY")},
        id_number=d.text("EInvoiceRegNumber"),
        sst=d.text("EInvoiceRegSSTNumber"),
        address_line=d.text("EInvoiceAddressLine0"),
        city=d.text("EInvoiceAddressCityName"),
        state_code=d.text("AcEInvoiceAddressStateID"),
        country_code=d.text("AcEInvoiceAddressCountryID"),
        validated=d.text("EInvoiceIsTINValidateSuccess"),
        state=d.columns["state"],
        country=d.columns["country"],
    )
    found = assess(fields, load_spec())
    for column, values in found.columns.items():
        d.set(column, values)
    d.used.add("EInvoiceRegTIN")
    for code, mask in found.issues:
        d.issue(code, mask, ("EInvoiceRegTIN", tin) if code == "tax_id_invalid" else None)
