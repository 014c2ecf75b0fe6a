"""SkyBiz customer read rows → the common model (shared/api/SKYBIZ.md §4, §8).

SkyBiz's quirks, all handled here: one free-text ``Address`` (create's Address1-4 joined by spaces) that
lands whole in ``address_line1``; ringgit written ``RM``; ``TermCode`` is a number of *days* despite its
name (so ``payment_terms_code`` stays null: SkyBiz has no term code of its own); ``StatusBadYN`` is
``"0"``/``"1"`` despite its name; ``DateTimeModified`` is Malaysia wall time without an offset; the read
returns no active flag, category, record stamp or creation time, so those columns stay null.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import pyarrow as pa

from pipelines.normalize.common import (
    malaysia_wall_times,
    map_currency,
    map_date,
    map_decimal,
    map_email,
    map_flag,
    map_gender,
    map_identity,
    map_integer,
    map_modified,
    map_phone,
    map_place,
    map_text,
)
from pipelines.normalize.model import Draft
from pipelines.sources.skybiz import SPEC

SOURCE: Final = SPEC.name
ID_FIELD: Final = SPEC.id_field
# The raw fields the quarantine rules and the duplicate order read (see ``rules_only``).
RULE_FIELDS: Final = SPEC.rule_fields


def draft(raw: pa.Table, lookups: Mapping[str, pa.Table] | None = None, *, rules_only: bool = False) -> Draft:
    """Map a raw SkyBiz window onto the model; fields without a column (``Fax2``) go to extras.

    SkyBiz has no lookups (``lookups`` is ignored): its rows carry their term in days.

    ``rules_only`` maps just :data:`RULE_FIELDS`: enough to decide quarantine and duplicates for a whole
    window from a narrow read.
    """
    d = Draft(SOURCE, raw, ID_FIELD)
    map_identity(d, ID_FIELD, "CusName")
    map_currency(d, "CurCode")
    map_modified(d, "DateTimeModified", malaysia_wall_times(d, "DateTimeModified"))
    if rules_only:
        return d

    map_text(d, "address_line1", "Address")
    map_place(d, town="Town", state="State", country="Country", postcode="PostCode")
    map_phone(d, "phone", "Tel")
    map_phone(d, "phone_2", "Tel2")
    map_phone(d, "fax", "Fax")
    map_phone(d, "contact_phone", "ContactTel")
    map_email(d, "email", "Email")
    map_text(d, "contact_name", "Contact")
    map_text(d, "area_code", "AreaCode")
    map_text(d, "salesperson_code", "SalesPersonCode")
    map_text(d, "member_type", "MemberType")
    map_decimal(d, "credit_limit", "CreditLimit")
    map_integer(d, "payment_terms_days", "TermCode", pa.int32(), code="payment_terms_unparseable")
    map_flag(d, "is_bad_debtor", "StatusBadYN")
    map_date(d, "customer_since", "DateStart")
    map_date(d, "date_of_birth", "DOB")
    map_gender(d, "Sex")
    return d
