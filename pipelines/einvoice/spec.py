"""The e-invoice rules as the customer contract states them, read once into one value.

Patterns and allowed values are the contract's own quality checks (``tin_kind``, ``id_type``,
``einvoice_sst_no`` …); what a plain check cannot hold — digits per TIN kind, the general TINs, the ID
structures, the LHDN state codes, the readiness rules — is in the columns' ODCS ``customProperties``.
:mod:`pipelines.einvoice.rules` computes with an :class:`EinvoiceSpec` and never reads a file; this module
is the only one that does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

from pipelines.contracts import CONTRACTS_DIR, Contract, load_contract, parse_yaml
from pipelines.errors import ContractError

CONTRACT: Final = "customer"
#: The customer columns e-invoice readiness adds (SmartAcc fills them; SkyBiz rows hold nulls).
COLUMNS: Final = (
    "tin_kind",
    "id_type",
    "id_number",
    "einvoice_sst_no",
    "lhdn_state_code",
    "country_alpha3",
    "tin_validated",
    "einvoice_ready",
    "einvoice_reasons",
)
#: Kind code of a general TIN (``EI00000000010`` …).
GENERAL_KIND: Final = "EI"
#: Reasons ``v_einvoice_readiness`` adds to the contract's: the business is in SkyBiz only (no e-invoice
#: fields anywhere), or its SmartAcc row was loaded before the e-invoice columns existed.
NO_SMARTACC_RECORD: Final = "no_smartacc_record"
NOT_ASSESSED: Final = "not_assessed"


@dataclass(frozen=True, slots=True)
class ReadinessRule:
    """One readiness rule: the reason code a failing row carries, the SmartAcc field to fix, the rule."""

    reason: str
    field: str
    rule: str


@dataclass(frozen=True, slots=True)
class EinvoiceSpec:
    """Every e-invoice rule, from the customer contract (see ``data_contracts/customer.yaml``).

    Attributes:
        tin_digits: digits allowed after each non-general prefix, ``{kind: (min, max)}``.
        individual_kinds: TIN kinds of individuals (``IG``).
        legacy_prefixes: old individual prefixes LHDN converted to ``IG`` (``SG``, ``OG``).
        general_tins: ``{general TIN: who it stands for}``.
        tin_kinds: allowed ``tin_kind`` values (the contract's validValues).
        id_types: allowed ``id_type`` values.
        individual_types: ID types only an individual holds.
        id_patterns: the structure of an ID number per type.
        not_applicable_tins: general TINs whose holder may give ``NA`` as ID number (a foreign buyer).
        brn_old_pattern: SSM's old short registration number.
        brn_entity_kinds: TIN kinds a BRN's entity type allows, where certain.
        sst_pattern: an e-invoice SST field (numbers or ``NA``).
        state_codes: ``{canonical state name: LHDN code}``.
        state_not_applicable: the code for an address outside Malaysia.
        state_pattern: a valid state code.
        country_pattern: an ISO alpha-3 code's shape.
        tin_pattern: the contract's pattern of a well-formed TIN (any kind).
        rules: the readiness rules, in the order reasons are listed.
    """

    tin_digits: dict[str, tuple[int, int]]
    individual_kinds: frozenset[str]
    legacy_prefixes: tuple[str, ...]
    general_tins: dict[str, str]
    tin_kinds: tuple[str, ...]
    id_types: tuple[str, ...]
    individual_types: frozenset[str]
    id_patterns: dict[str, str]
    not_applicable_tins: frozenset[str]
    brn_old_pattern: str
    brn_entity_kinds: dict[str, tuple[str, ...]]
    sst_pattern: str
    state_codes: dict[str, str]
    state_not_applicable: str
    state_pattern: str
    country_pattern: str
    tin_pattern: str
    rules: tuple[ReadinessRule, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        """Every reason code, in rule order."""
        return tuple(r.reason for r in self.rules)

    def generated_tin_pattern(self) -> str:
        """The TIN pattern the kinds, digits and general TINs imply (the contract's must equal it)."""
        by_digits: dict[tuple[int, int], list[str]] = {}
        for kind, digits in self.tin_digits.items():
            by_digits.setdefault(digits, []).append(kind)
        parts = []
        for (low, high), kinds in by_digits.items():
            prefix = kinds[0] if len(kinds) == 1 else "(" + "|".join(kinds) + ")"
            parts.append(f"{prefix}[0-9]{{{low},{high}}}")
        parts.append(_general_alternation(self.general_tins))
        return "^(" + "|".join(parts) + ")$"


def _general_alternation(tins: dict[str, str]) -> str:
    """``EI000000000[1-4]0`` for the four general TINs; a plain alternation if they stop sharing a form."""
    codes = sorted(tins)
    if all(len(c) == 13 and c[:11] == codes[0][:11] and c[12] == codes[0][12] for c in codes):
        return f"{codes[0][:11]}[{codes[0][11]}-{codes[-1][11]}]{codes[0][12]}"
    return "|".join(re.escape(c) for c in codes)


def _custom(prop: dict[str, Any]) -> dict[str, Any]:
    return {str(c["property"]): c.get("value") for c in prop.get("customProperties") or []}


def _check(contract: Contract, column: str, rule: str) -> dict[str, Any]:
    for check in contract.column(column).checks:
        if check.rule == rule:
            return dict(check.params)
    raise ContractError(f"contract customer: column {column} has no {rule} check", field=column)


@cache
def load_spec(directory: Path = CONTRACTS_DIR) -> EinvoiceSpec:
    """Read the e-invoice rules from ``customer.yaml`` (cached: contracts do not change while running).

    Raises:
        ContractError: a column or property the rules need is missing or malformed.
    """
    contract = load_contract(CONTRACT, directory)
    doc = parse_yaml((directory / f"{CONTRACT}.yaml").read_text(encoding="utf-8"))
    props = {p["name"]: p for p in doc["schema"][0]["properties"]}
    try:
        kind = _custom(props["tin_kind"])
        ident = _custom(props["id_type"])
        number = _custom(props["id_number"])
        state = _custom(props["lhdn_state_code"])
        reasons = _custom(props["einvoice_reasons"])["readinessRules"]
        spec = EinvoiceSpec(
            tin_digits={str(k): (int(v[0]), int(v[1])) for k, v in kind["tinDigits"].items()},
            individual_kinds=frozenset(kind["individualKinds"]),
            legacy_prefixes=tuple(kind["legacyPrefixes"]),
            general_tins={str(k): str(v) for k, v in kind["generalTins"].items()},
            tin_kinds=tuple(_check(contract, "tin_kind", "validValues")["validValues"]),
            id_types=tuple(_check(contract, "id_type", "validValues")["validValues"]),
            individual_types=frozenset(ident["individualTypes"]),
            id_patterns={str(k): str(v) for k, v in number["idPatterns"].items()},
            not_applicable_tins=frozenset(number["notApplicableTins"]),
            brn_old_pattern=str(number["brnOldPattern"]),
            brn_entity_kinds={str(k): tuple(v) for k, v in number["brnEntityTinKinds"].items()},
            sst_pattern=str(_check(contract, "einvoice_sst_no", "pattern")["pattern"]),
            state_codes={str(k): str(v) for k, v in state["stateCodes"].items()},
            state_not_applicable=str(state["notApplicable"]),
            state_pattern=str(_check(contract, "lhdn_state_code", "pattern")["pattern"]),
            country_pattern=str(_check(contract, "country_alpha3", "pattern")["pattern"]),
            tin_pattern=str(_check(contract, "tax_id", "pattern")["pattern"]),
            rules=tuple(ReadinessRule(str(r["reason"]), str(r["field"]), str(r["rule"])) for r in reasons),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ContractError(f"contract customer: e-invoice rules incomplete ({exc!r})") from exc
    if spec.generated_tin_pattern() != spec.tin_pattern:
        raise ContractError(
            "contract customer: tax_id's pattern disagrees with tin_kind's tinDigits/generalTins "
            f"(expected {spec.generated_tin_pattern()})",
            field="tax_id",
        )
    return spec
