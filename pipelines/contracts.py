"""Data contracts: the one place a column is defined, and the generators that derive everything else.

Contracts are YAML in ``data_contracts/`` in a subset of the Open Data Contract Standard v3 (one schema
object per file; ``name``, ``physicalType``, ``required``, ``primaryKey``, ``unique``, ``description`` and
``quality`` per property). From a contract this module generates the pyarrow schema, the pandas dtypes and
the warehouse DDL; :mod:`pipelines.quality` generates the great-expectations suite from the same checks.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import yaml

from pipelines.errors import ContractError
from pipelines.sources import registry

INSTALLED_CONTRACTS: Final = Path("share") / "skysmart" / "data_contracts"
"""Where a wheel installs ``data_contracts/`` (pyproject's ``data-files``), below the environment's prefix."""


def _contracts_dir() -> Path:
    """``data_contracts/`` of the checkout (an editable install), else the copy the wheel installed.

    An installed package has no checkout beside it: ``pip install skysmart`` puts the contracts under the
    environment's prefix, which is ``sys.prefix`` in a virtual environment and four levels above the package
    in ``site-packages`` for a ``--prefix`` install.
    """
    here = Path(__file__).resolve().parent
    candidates = [here.parent / "data_contracts", Path(sys.prefix) / INSTALLED_CONTRACTS]
    candidates += [parent / INSTALLED_CONTRACTS for parent in here.parents[:5]]
    found = next((c for c in candidates if (c / "customer.yaml").is_file()), None)
    if found is None:
        looked = ", ".join(map(str, candidates[:2]))
        raise ContractError(f"the data contracts are missing; looked in {looked}")
    return found


CONTRACTS_DIR: Final = _contracts_dir()
SEVERITIES: Final = ("error", "warning")
RULES: Final = ("unique", "validValues", "pattern", "range", "length", "notNull")
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_SIMPLE_TYPES: Final = ("string", "int32", "int64", "float64", "bool", "date", "timestamp", "json")
DIALECTS: Final = ("duckdb", "postgres")
SOURCES_PLACEHOLDER: Final = "{sources}"


@dataclass(frozen=True, slots=True)
class Check:
    """One quality rule on a column, with its severity: ``error`` fails a run, ``warning`` is reported."""

    rule: str
    severity: str
    column: str
    params: dict[str, Any] = field(default_factory=dict)
    description: str | None = None

    @property
    def name(self) -> str:
        """A stable, readable id, e.g. ``email:pattern``."""
        return f"{self.column}:{self.rule}"


@dataclass(frozen=True, slots=True)
class Column:
    """A contract column."""

    name: str
    physical_type: str
    required: bool
    description: str
    primary_key: bool = False
    unique: bool = False
    checks: tuple[Check, ...] = ()

    @property
    def decimal(self) -> tuple[int, int] | None:
        """``(precision, scale)`` for decimal columns."""
        m = _DECIMAL.match(self.physical_type)
        return (int(m.group(1)), int(m.group(2))) if m else None


@dataclass(frozen=True, slots=True)
class Contract:
    """A parsed contract: one table's columns, in order."""

    id: str
    name: str
    version: str
    table: str
    description: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> list[str]:
        """Column names in contract order."""
        return [c.name for c in self.columns]

    @property
    def primary_key(self) -> list[str]:
        """Primary-key columns in contract order."""
        return [c.name for c in self.columns if c.primary_key]

    def column(self, name: str) -> Column:
        """A column by name, or a :class:`ContractError` naming the contract."""
        for col in self.columns:
            if col.name == name:
                return col
        raise ContractError(f"contract {self.name} has no column {name!r}", field=name)

    @property
    def checks(self) -> list[Check]:
        """Every check of every column, including the implied not-null and unique ones."""
        return [check for col in self.columns for check in col.checks]


# libyaml's parser where PyYAML was built with it: a tenth of the pure-Python parser's time, the same values.
_SAFE_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str) -> Any:
    """YAML text as plain Python values (safe: no tag builds an object), as every YAML file here is read.

    Raises:
        yaml.YAMLError: the text is not valid YAML.
    """
    return yaml.load(text, Loader=_SAFE_LOADER)


def load_contract(name: str, directory: Path = CONTRACTS_DIR) -> Contract:
    """Load ``<directory>/<name>.yaml`` (default ``data_contracts/``), with ``{sources}`` resolved.

    ``{sources}`` in a ``validValues`` list or a ``pattern`` stands for the registered sources
    (:mod:`pipelines.sources.registry`), so a new source is allowed everywhere without editing the
    contracts; a source registered later gets a fresh parse (the cache is keyed by the registry).
    """
    return _load_contract(name, Path(directory), registry.names())


@cache
def _load_contract(name: str, directory: Path, sources: tuple[str, ...]) -> Contract:
    path = directory / f"{name}.yaml"
    try:
        doc = parse_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContractError(f"no contract {name!r} in {directory}") from None
    except yaml.YAMLError as exc:
        raise ContractError(f"contract {name!r} is not valid YAML: {exc}") from exc
    return parse_contract(doc, origin=str(path), sources=sources)


def contracts_dir(source: str) -> Path:
    """Where a source's own contracts (raw, lookups) live: its ``SourceSpec.contracts_dir``, else ours."""
    spec = registry.find(source)
    return spec.contracts_dir if spec is not None and spec.contracts_dir is not None else CONTRACTS_DIR


def check_param(contract: str, column: str, rule: str, param: str) -> Any:
    """One parameter of one check, e.g. ``customer``/``name``/``length``/``max`` → ``200``.

    How code that must agree with a contract (the normalizer's limits and patterns) reads the rule
    instead of repeating it.

    Raises:
        ContractError: no such column, check or parameter.
    """
    for check in load_contract(contract).column(column).checks:
        if check.rule == rule and param in check.params:
            return check.params[param]
    raise ContractError(f"contract {contract} has no {rule} check with {param!r} on {column}", field=column)


def _with_sources(value: Any, sources: tuple[str, ...]) -> Any:
    """``{sources}`` resolved: a list item becomes every source, a pattern the alternation of them."""
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            out.extend(sources if item == SOURCES_PLACEHOLDER else [item])
        return out
    if isinstance(value, str) and SOURCES_PLACEHOLDER in value:
        return value.replace(SOURCES_PLACEHOLDER, "|".join(re.escape(s) for s in sources))
    return value


def parse_contract(
    doc: dict[str, Any], origin: str = "<contract>", *, sources: tuple[str, ...] | None = None
) -> Contract:
    """Validate and parse a contract document (the YAML already loaded).

    ``sources`` (default: the registry's) replaces ``{sources}`` in ``validValues`` and ``pattern``.
    """
    known = registry.names() if sources is None else sources
    if doc.get("kind") != "DataContract" or not str(doc.get("apiVersion", "")).startswith("v3"):
        raise ContractError(f"{origin}: not an ODCS v3 DataContract")
    schemas = doc.get("schema") or []
    if len(schemas) != 1:
        raise ContractError(f"{origin}: skysmart contracts hold exactly one schema object")
    obj = schemas[0]
    columns = []
    seen: set[str] = set()
    for prop in obj.get("properties") or []:
        name = prop.get("name")
        if not name or name in seen:
            raise ContractError(f"{origin}: property without a name or defined twice", field=str(name))
        seen.add(name)
        ptype = str(prop.get("physicalType", "")).replace(" ", "")
        if ptype not in _SIMPLE_TYPES and not _DECIMAL.match(ptype):
            raise ContractError(f"{origin}: unknown physicalType {ptype!r}", field=name)
        required = bool(prop.get("required", False))
        unique = bool(prop.get("unique", False))
        if prop.get("primaryKey") and not required:
            # Both databases make key columns NOT NULL: a nullable key would make the DDL disagree with
            # the Arrow schema and the suite.
            raise ContractError(f"{origin}: primary key column must be required: true", field=name)
        checks: list[Check] = []
        if required:
            checks.append(Check("notNull", "error", name))
        if unique:
            checks.append(Check("unique", "error", name))
        for raw in prop.get("quality") or []:
            if not isinstance(raw, dict):
                raise ContractError(f"{origin}: quality entry {raw!r} is not a mapping", field=name)
            rule = raw.get("rule")
            severity = raw.get("severity", "error")
            if rule not in RULES:
                raise ContractError(f"{origin}: unknown quality rule {rule!r}", field=name)
            if severity not in SEVERITIES:
                raise ContractError(f"{origin}: unknown severity {severity!r}", field=name)
            params = {
                k: _with_sources(v, known) if k in ("validValues", "pattern") else v
                for k, v in raw.items()
                if k not in ("rule", "severity", "description", "type")
            }
            checks.append(Check(rule, severity, name, params, raw.get("description")))
        columns.append(
            Column(
                name=name,
                physical_type=ptype,
                required=required,
                description=" ".join(str(prop.get("description", "")).split()),
                primary_key=bool(prop.get("primaryKey", False)),
                unique=unique,
                checks=tuple(checks),
            )
        )
    description = doc.get("description") or {}
    return Contract(
        id=str(doc.get("id")),
        name=str(doc.get("name")),
        version=str(doc.get("version")),
        table=str(obj.get("physicalName") or obj.get("name")),
        description=" ".join(str(description.get("purpose", "")).split()),
        columns=tuple(columns),
    )


# -- generators ---------------------------------------------------------------------------------------


def arrow_type(column: Column) -> pa.DataType:
    """The Arrow type of a column."""
    if dec := column.decimal:
        return pa.decimal128(*dec)
    return {
        "string": pa.string(),
        "json": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }[column.physical_type]


def arrow_schema(contract: Contract) -> pa.Schema:
    """The pyarrow schema: types, nullability and descriptions (as field metadata)."""
    return pa.schema(
        [
            pa.field(
                c.name,
                arrow_type(c),
                nullable=not c.required,
                metadata={"description": c.description} if c.description else None,
            )
            for c in contract.columns
        ],
        metadata={"contract": contract.id, "version": contract.version},
    )


def pandas_dtype(column: Column) -> Any:
    """The pandas dtype: Arrow-backed, nullable; text is pandas 3's ``str``."""
    import pandas as pd  # here, not at the top: the CLI and DAG-side imports of contracts stay light

    if column.decimal:
        return pd.ArrowDtype(arrow_type(column))
    return {
        "string": "str",
        "json": "str",
        "int32": "Int32",
        "int64": "Int64",
        "float64": "Float64",
        "bool": "boolean",
        "date": pd.ArrowDtype(pa.date32()),
        "timestamp": "datetime64[us, UTC]",
    }[column.physical_type]


def pandas_dtypes(contract: Contract) -> dict[str, Any]:
    """``{column: dtype}`` for ``DataFrame.astype``."""
    return {c.name: pandas_dtype(c) for c in contract.columns}


def sql_type(column: Column, dialect: str) -> str:
    """The SQL type of a column in ``duckdb`` or ``postgres``."""
    if dialect not in DIALECTS:
        raise ContractError(f"unknown SQL dialect {dialect!r}")
    if dec := column.decimal:
        return f"DECIMAL({dec[0]},{dec[1]})" if dialect == "duckdb" else f"NUMERIC({dec[0]},{dec[1]})"
    duck = {
        "string": "VARCHAR",
        "json": "JSON",
        "int32": "INTEGER",
        "int64": "BIGINT",
        "float64": "DOUBLE",
        "bool": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMPTZ",
    }
    pg = {**duck, "string": "TEXT", "json": "JSONB", "float64": "DOUBLE PRECISION"}
    return (duck if dialect == "duckdb" else pg)[column.physical_type]


def quote_ident(name: str) -> str:
    """Quote an identifier that comes from a contract (never from data)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ContractError(f"identifier {name!r} is not allowed")
    return f'"{name}"'


def column_definitions(contract: Contract, dialect: str, *, with_constraints: bool = True) -> list[str]:
    """``"name" TYPE [NOT NULL]`` lines for a CREATE TABLE."""
    return [
        f"{quote_ident(c.name)} {sql_type(c, dialect)}"
        + (" NOT NULL" if with_constraints and c.required else "")
        for c in contract.columns
    ]


def create_table_sql(
    contract: Contract,
    dialect: str,
    *,
    table: str | None = None,
    extra_columns: list[str] | None = None,
    primary_key: list[str] | None = None,
    with_constraints: bool = True,
) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for a contract, optionally with extra (warehouse-only) columns."""
    name = quote_ident(table or contract.table)
    lines = column_definitions(contract, dialect, with_constraints=with_constraints) + list(
        extra_columns or []
    )
    key = contract.primary_key if primary_key is None else primary_key
    if with_constraints and key:
        lines.append(f"PRIMARY KEY ({', '.join(quote_ident(k) for k in key)})")
    body = ",\n  ".join(lines)
    return f"CREATE TABLE IF NOT EXISTS {name} (\n  {body}\n)"


def comment_sql(contract: Contract, *, table: str | None = None) -> list[str]:
    """``COMMENT ON`` statements carrying the contract's descriptions (same syntax in DuckDB and Postgres)."""
    name = quote_ident(table or contract.table)
    out = [f"COMMENT ON TABLE {name} IS {_sql_literal(contract.description)}"]
    out += [
        f"COMMENT ON COLUMN {name}.{quote_ident(c.name)} IS {_sql_literal(c.description)}"
        for c in contract.columns
        if c.description
    ]
    return out


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
