"""Client-side checks that mirror every SkyBiz create rule, so an invalid document never reaches the server.

SkyBiz rejects a whole batch when one document is invalid (shared/api/SKYBIZ.md §5.1), so one bad customer
would cost a request and hold back 499 good ones. The rules come from ``skybiz_customer_create.yaml``
(compulsory fields, types, lengths, the CusCode pattern), the configurable currency table, and the batch
rules (no CusCode twice, none that SkyBiz already has, at most 500 documents, no ``FinCatCode``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pipelines.contracts import Contract, load_contract
from pipelines.errors import PushValidationError

MAX_BATCH: Final = 500
CREATE_CONTRACT: Final = "skybiz_customer_create"


@dataclass(frozen=True, slots=True)
class CreateRules:
    """The rules one create document must meet, read from the contract plus the tenant's currency table."""

    contract: Contract
    currencies: frozenset[str]

    @classmethod
    def load(cls, currencies: Iterable[str], contract: str = CREATE_CONTRACT) -> CreateRules:
        """Rules for a currency table (SkyBiz codes such as ``RM``, ``SGD``, ``USD``)."""
        return cls(load_contract(contract), frozenset(currencies))

    @property
    def compulsory(self) -> list[str]:
        """Compulsory fields in vendor order (the order SkyBiz lists missing ones in)."""
        return [c.name for c in self.contract.columns if c.required]


def validate_document(
    document: Mapping[str, Any], rules: CreateRules, *, record_key: str | None = None
) -> list[PushValidationError]:
    """Every way one document breaks a SkyBiz rule (empty when it is valid); each names its field."""
    problems: list[PushValidationError] = []

    def fail(field: str, text: str) -> None:
        problems.append(PushValidationError(f"{field}: {text}", record_key=record_key, field=field))

    known = set(rules.contract.column_names)
    if "FinCatCode" in document:
        fail("FinCatCode", "set by SkyBiz itself (B55); the document must not carry it")
    for name in sorted(set(document) - known - {"FinCatCode"}):
        fail(name, "not a SkyBiz customer create field")

    missing = [name for name in rules.compulsory if _empty(document.get(name))]
    if missing:
        # The server's wording (SKYBIZ.md §5.4), one problem per field so each names its field.
        for name in missing:
            fail(name, f"compulsory field missing (SkyBiz: Missing fields - {', '.join(missing)})")

    for column in rules.contract.columns:
        value = document.get(column.name)
        if _empty(value):
            continue
        kind = column.physical_type
        if kind == "string" and not isinstance(value, str):
            fail(column.name, f"must be text, got {type(value).__name__}")
            continue
        if kind.startswith("int") and (isinstance(value, bool) or not isinstance(value, int)):
            fail(column.name, f"must be a whole number, got {value!r}")
            continue
        if kind == "float64" and (isinstance(value, bool) or not isinstance(value, int | float)):
            fail(column.name, f"must be a number, got {value!r}")
            continue
        for check in column.checks:
            params = check.params
            if check.rule == "length" and isinstance(value, str):
                if "max" in params and len(value) > int(params["max"]):
                    fail(column.name, f"{len(value)} characters; SkyBiz takes at most {params['max']}")
            elif check.rule == "pattern" and isinstance(value, str):
                if not re.search(str(params["pattern"]), value):
                    fail(column.name, f"{value!r} does not match {params['pattern']}")
            elif check.rule == "range" and isinstance(value, int | float):
                if "min" in params and value < params["min"]:
                    fail(column.name, f"{value} is below {params['min']}")
                if "max" in params and value > params["max"]:
                    fail(column.name, f"{value} is above {params['max']}")
    currency = document.get("CurCode")
    if isinstance(currency, str) and currency and currency not in rules.currencies:
        # The server's wording: "Currency code 'X' does not exist".
        fail("CurCode", f"Currency code '{currency}' does not exist in the SkyBiz currency table")
    return problems


def validate_documents(
    documents: Sequence[tuple[str, Mapping[str, Any]]],
    rules: CreateRules,
    *,
    existing_codes: Collection[str] = frozenset(),
) -> dict[str, list[PushValidationError]]:
    """Problems per record key for a set of documents that may share batches.

    Adds the rules no single document can check: a CusCode used twice (SkyBiz: "Duplicate CusCode found in
    the same batch" — every holder is refused, since no rule says which one is right) and a CusCode SkyBiz
    already has ("Customer code already exists").

    Args:
        documents: ``(record_key, document)`` pairs.
        rules: the create rules.
        existing_codes: CusCodes SkyBiz is known to hold.
    """
    problems = {key: validate_document(doc, rules, record_key=key) for key, doc in documents}
    codes = Counter(str(doc.get("CusCode")) for _, doc in documents if not _empty(doc.get("CusCode")))
    existing = {c.upper() for c in existing_codes}
    for key, doc in documents:
        code = doc.get("CusCode")
        if _empty(code):
            continue
        if codes[str(code)] > 1:
            problems[key].append(
                PushValidationError(
                    f"CusCode: Duplicate CusCode found in the same batch ({code} is derived for "
                    f"{codes[str(code)]} customers)",
                    record_key=key,
                    field="CusCode",
                )
            )
        if str(code).upper() in existing:
            problems[key].append(
                PushValidationError(
                    f"CusCode: Customer code already exists ({code})", record_key=key, field="CusCode"
                )
            )
    return problems


def reason_text(problems: Iterable[PushValidationError]) -> str:
    """One line for the outbox ``reason``: the problems' texts (each starts with its field), ``; ``-joined."""
    return "; ".join(dict.fromkeys(p.message for p in problems))


def _empty(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")
