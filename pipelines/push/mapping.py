"""The declarative SmartAcc → SkyBiz mapping: load ``data_contracts/smartacc_to_skybiz.yaml`` and apply it.

Everything a business may want to change — which column feeds which SkyBiz field, the defaults, the code
translation tables, the CusCode rule — lives in the YAML. This module only knows how to
read it and the handful of named transforms it may call.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any, Final

import yaml

from pipelines.contracts import CONTRACTS_DIR, load_contract, parse_yaml
from pipelines.errors import ContractError, PushValidationError

DEFAULT_MAPPING: Final = "smartacc_to_skybiz"
_CODE_VERBATIM = re.compile(r"^[A-Z0-9][A-Z0-9-]*$")
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
Value = str | int | float


@dataclass(frozen=True, slots=True)
class CusCodeRule:
    """How a SkyBiz ``CusCode`` is derived from a SmartAcc id (the rule is written out in the YAML)."""

    source_column: str
    prefix: str
    hashed_prefix: str
    hash_chars: int
    max_length: int

    def derive(self, source_id: str) -> str:
        """The CusCode of one SmartAcc id: the same id always gives the same code, within ``max_length``."""
        ident = source_id.strip()
        if not ident:
            return ""
        verbatim = self.prefix + ident
        if _CODE_VERBATIM.match(ident) and len(verbatim) <= self.max_length:
            return verbatim
        digest = base64.b32encode(hashlib.sha256(ident.encode("utf-8")).digest()).decode("ascii")
        room = self.max_length - len(self.hashed_prefix) - self.hash_chars
        hint = _NOT_ALNUM.sub("", ident.upper())[: max(room, 0)]
        return f"{self.hashed_prefix}{hint}{digest[: self.hash_chars]}"


@dataclass(frozen=True, slots=True)
class Translation:
    """A code table (e.g. ISO currency → SkyBiz currency)."""

    values: Mapping[str, str]
    passthrough: bool

    def apply(self, value: str) -> str | None:
        """The translated code; unknown codes pass through or become empty, as the table says."""
        if value in self.values:
            return self.values[value]
        return value if self.passthrough else None


@dataclass(frozen=True, slots=True)
class FieldRule:
    """How one SkyBiz field is filled."""

    target: str
    sources: tuple[str, ...] = ()
    transforms: tuple[str, ...] = ()
    translate: str | None = None
    derive: str | None = None


@dataclass(frozen=True, slots=True)
class PushMapping:
    """A parsed mapping file."""

    name: str
    version: str
    source_system: str
    source_contract: str
    target_contract: str
    cus_code: CusCodeRule
    defaults: Mapping[str, Value]
    currencies: tuple[str, ...]
    translations: Mapping[str, Translation]
    fields: tuple[FieldRule, ...]

    @property
    def source_columns(self) -> list[str]:
        """Common-model columns the mapping reads (``source_extras`` once)."""
        cols: list[str] = ["customer_key", "source_customer_id", self.cus_code.source_column]
        for rule in self.fields:
            cols += [s.split(".", 1)[0] for s in rule.sources]
        return list(dict.fromkeys(cols))


@dataclass(frozen=True, slots=True)
class MappedDocument:
    """A create document and any value the mapping itself could not produce."""

    document: dict[str, Value]
    problems: tuple[PushValidationError, ...] = field(default=())


@cache
def load_mapping(name: str = DEFAULT_MAPPING, directory: Path = CONTRACTS_DIR) -> PushMapping:
    """Load and check ``data_contracts/<name>.yaml`` against the contracts it names."""
    path = directory / f"{name}.yaml"
    try:
        doc = parse_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContractError(f"no mapping {name!r} in {directory}") from None
    except yaml.YAMLError as exc:
        raise ContractError(f"mapping {name!r} is not valid YAML: {exc}") from exc
    return parse_mapping(doc, origin=str(path), directory=directory)


def parse_mapping(
    doc: dict[str, Any], origin: str = "<mapping>", directory: Path = CONTRACTS_DIR
) -> PushMapping:
    """Validate a mapping document: every target is a create field, every source a model column."""
    if doc.get("kind") != "Mapping":
        raise ContractError(f"{origin}: not a skysmart Mapping")
    source, target = doc.get("source") or {}, doc.get("target") or {}
    source_contract = load_contract(str(source.get("contract")), directory)
    target_contract = load_contract(str(target.get("contract")), directory)
    model_columns = set(source_contract.column_names)
    target_columns = set(target_contract.column_names)

    translations = {
        tname: Translation(
            values={str(k): str(v) for k, v in (t.get("values") or {}).items()},
            passthrough=bool(t.get("passthrough", False)),
        )
        for tname, t in (doc.get("translations") or {}).items()
    }
    raw_code = doc.get("cus_code") or {}
    code_rule = CusCodeRule(
        source_column=str(raw_code.get("from", "source_customer_id")),
        prefix=str(raw_code.get("prefix", "")),
        hashed_prefix=str(raw_code.get("hashed_prefix", "")),
        hash_chars=int(raw_code.get("hash_chars", 10)),
        max_length=int(raw_code.get("max_length", 20)),
    )
    if not code_rule.prefix or not code_rule.hashed_prefix or code_rule.prefix == code_rule.hashed_prefix:
        raise ContractError(f"{origin}: cus_code needs two different non-empty prefixes", field="cus_code")
    if len(code_rule.hashed_prefix) + code_rule.hash_chars > code_rule.max_length or code_rule.hash_chars < 8:
        raise ContractError(f"{origin}: cus_code hash does not fit max_length", field="cus_code")
    if code_rule.source_column not in model_columns:
        raise ContractError(f"{origin}: cus_code reads unknown column", field=code_rule.source_column)

    rules: list[FieldRule] = []
    for target_name, spec in (doc.get("fields") or {}).items():
        spec = spec or {}
        if target_name not in target_columns:
            raise ContractError(f"{origin}: {target_name} is not a SkyBiz create field", field=target_name)
        raw_from = spec.get("from") or []
        sources = (raw_from,) if isinstance(raw_from, str) else tuple(raw_from)
        for src in sources:
            if src.split(".", 1)[0] not in model_columns:
                raise ContractError(f"{origin}: {target_name} reads unknown {src!r}", field=target_name)
        raw_tf = spec.get("transform") or []
        transforms = (raw_tf,) if isinstance(raw_tf, str) else tuple(raw_tf)
        for tf in transforms:
            if tf not in TRANSFORMS:
                raise ContractError(f"{origin}: unknown transform {tf!r}", field=target_name)
        translate = spec.get("translate")
        if translate is not None and translate not in translations:
            raise ContractError(f"{origin}: unknown translation {translate!r}", field=target_name)
        derive = spec.get("derive")
        if derive not in (None, "cus_code"):
            raise ContractError(f"{origin}: unknown derivation {derive!r}", field=target_name)
        rules.append(FieldRule(target_name, sources, transforms, translate, derive))

    defaults = dict(doc.get("defaults") or {})
    for name in defaults:
        if name not in target_columns:
            raise ContractError(f"{origin}: default for unknown field {name}", field=name)
    return PushMapping(
        name=str(doc.get("name")),
        version=str(doc.get("version")),
        source_system=str(source.get("source_system", "smartacc")),
        source_contract=source_contract.name,
        target_contract=target_contract.name,
        cus_code=code_rule,
        defaults=defaults,
        currencies=tuple(str(c) for c in doc.get("skybiz_currencies") or ()),
        translations=translations,
        fields=tuple(rules),
    )


# -- applying the mapping ----------------------------------------------------------------------------


def build_document(
    row: Mapping[str, Any], mapping: PushMapping, defaults: Mapping[str, Value] | None = None
) -> MappedDocument:
    """One create document from one common-model row (a dict); empty optional fields are left out.

    Args:
        row: the customer's common-model columns (``source_extras`` as JSON text or a dict).
        mapping: the parsed mapping.
        defaults: per-run overrides of the mapping's ``defaults``.
    """
    extras = _extras(row.get("source_extras"))
    use_defaults = {**mapping.defaults, **(defaults or {})}
    document: dict[str, Value] = {}
    problems: list[PushValidationError] = []
    key = str(row.get("customer_key") or "")
    for rule in mapping.fields:
        value: Value | None
        if rule.derive == "cus_code":
            value = mapping.cus_code.derive(str(row.get(mapping.cus_code.source_column) or "")) or None
        else:
            value = None
            for source in rule.sources:
                raw = _lookup(row, extras, source)
                if raw is not None and str(raw).strip() != "":
                    value = raw
                    break
            try:
                for tf in rule.transforms:
                    if value is None:
                        break
                    value = TRANSFORMS[tf](value)
            except (ValueError, ArithmeticError):
                problems.append(
                    PushValidationError(
                        f"{rule.target}: cannot make {value!r} a SkyBiz value ({', '.join(rule.transforms)})",
                        record_key=key,
                        field=rule.target,
                    )
                )
                value = None
            if value is not None and rule.translate:
                value = mapping.translations[rule.translate].apply(str(value))
        if (value is None or value == "") and rule.target in use_defaults:
            value = use_defaults[rule.target]
        if value is not None and value != "":
            document[rule.target] = value
    return MappedDocument(document, tuple(problems))


def payload_hash(document: Mapping[str, Value]) -> str:
    """SHA-256 of the canonical JSON of a document: equal hash, equal document."""
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


def canonical_json(document: Mapping[str, Value]) -> str:
    """The document as compact JSON with sorted keys (what is hashed and stored)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _extras(raw: object) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, Mapping):
        return raw
    try:
        parsed = json.loads(str(raw))
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _lookup(row: Mapping[str, Any], extras: Mapping[str, Any], source: str) -> Any:
    if source.startswith("source_extras."):
        return extras.get(source.split(".", 1)[1])
    value = row.get(source)
    # pandas hands missing values over as NaN/NA; the warehouse as None. Both mean "no value".
    return None if value is None or value != value else value


# -- named transforms --------------------------------------------------------------------------------


def _strip(value: Value) -> Value:
    return " ".join(str(value).split())


def _upper(value: Value) -> Value:
    return str(value).upper()


def e164_to_local(value: Value) -> Value:
    """``+60312345678`` → ``03-12345678``; ``+60123456789`` → ``012-3456789``; other countries unchanged.

    SkyBiz users type Malaysian numbers in local form (vendor examples ``03-12345678``); the common model
    holds E.164. Mobile (01x) and East Malaysian (08x) prefixes are three digits, the rest two.
    """
    text = str(value).strip()
    if not text.startswith("+60") or not text[3:].isdigit():
        return text
    local = "0" + text[3:]
    cut = 3 if local[1] in "18" else 2
    return f"{local[:cut]}-{local[cut:]}"


def _country_name(value: Value) -> Value:
    code = str(value).strip().upper()
    return _COUNTRIES.get(code, code)


def _money(value: Value) -> Value:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not a number: {value!r}")
    return float(round(amount, 2))


def _integer(value: Value) -> Value:
    number = Decimal(str(value))
    if number != number.to_integral_value():
        raise ValueError(f"not a whole number: {value!r}")
    return int(number)


# ISO 3166 alpha-2 → the country name SkyBiz users write (vendor example "Malaysia"); unknown codes stay.
_COUNTRIES: Final[dict[str, str]] = {
    "MY": "Malaysia",
    "SG": "Singapore",
    "BN": "Brunei",
    "ID": "Indonesia",
    "TH": "Thailand",
    "PH": "Philippines",
    "VN": "Vietnam",
    "CN": "China",
    "HK": "Hong Kong",
    "TW": "Taiwan",
    "JP": "Japan",
    "KR": "South Korea",
    "IN": "India",
    "AU": "Australia",
    "NZ": "New Zealand",
    "GB": "United Kingdom",
    "US": "United States",
    "AE": "United Arab Emirates",
    "DE": "Germany",
    "FR": "France",
    "NL": "Netherlands",
}

TRANSFORMS: Final[dict[str, Callable[[Value], Value]]] = {
    "strip": _strip,
    "upper": _upper,
    "e164_to_local": e164_to_local,
    "country_name": _country_name,
    "money": _money,
    "integer": _integer,
}
