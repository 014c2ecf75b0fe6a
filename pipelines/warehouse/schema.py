"""The warehouse's tables and views, all generated from the data contracts.

Each table is a contract (``customer``, ``customer_quarantine``, ``load_audit``) or a contract narrowed or
widened with warehouse-only columns (``loaded_at``, ``load_id``, SCD2 validity). Deriving them here, as
:class:`~pipelines.contracts.Contract` values, means one DDL generator and one comment generator serve every
table, and every column comment is the contract's description.

Tables:
    ``customers``            one current row per ``customer_key`` (the newest version loaded).
    ``customer_history``     SCD type 2: a row per content change, ``valid_from``/``valid_to``/``is_current``.
    ``customer_versions``    every distinct version seen, narrow; ``customer_history`` is derived from
                             it, which makes history independent of the order windows are loaded in.
    ``customer_quarantine``  refused raw rows, replaced per (source, window) on every load.
    ``load_audit``           one row per load attempt.
    ``customer_matches``     identity resolution: SkyBiz ↔ SmartAcc candidate pairs, evidence, class
                             (rebuilt whole by :mod:`pipelines.identity`).
Views:
    ``v_customers``          current customers with analyst-friendly column names.
    ``v_window_coverage``    loaded windows per source, and the gaps between them (the one place coverage
                             is computed: the push reads its rows).
    ``v_businesses``         one row per business across both systems: its code in each, fields that disagree.
    ``v_einvoice_readiness`` one row per business: can it receive an e-invoice today, and if not, why.
    ``v_schema``             the fingerprint of the statements that made this schema: an open whose
                             statements have the same one skips them (:func:`v_schema_statements`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Final

from pipelines.contracts import (
    Column,
    Contract,
    comment_sql,
    create_table_sql,
    load_contract,
    quote_ident,
    sql_type,
)
from pipelines.errors import ContractError

CUSTOMERS: Final = "customers"
HISTORY: Final = "customer_history"
VERSIONS: Final = "customer_versions"
QUARANTINE_TABLE: Final = "customer_quarantine"
AUDIT: Final = "load_audit"
V_CUSTOMERS: Final = "v_customers"
V_COVERAGE: Final = "v_window_coverage"
MATCHES: Final = "customer_matches"
V_BUSINESSES: Final = "v_businesses"
V_EINVOICE: Final = "v_einvoice_readiness"
V_SCHEMA: Final = "v_schema"
# Malaysia's zone: a load that started on a Malaysia date says nothing of customers modified after it.
LOCAL_ZONE: Final = "Asia/Kuala_Lumpur"

# What identifies one version of a customer, and what describes when and where it was seen. Everything else
# in the contract is content, which record_hash summarises.
VERSION_COLUMNS: Final = (
    "customer_key",
    "modified_at",
    "source_version",
    "record_hash",
    "source_window",
    "extracted_at",
)
# A NULL source_version sorts below every stamp; the sentinel keeps comparisons total in both dialects.
MIN_VERSION: Final = "-9223372036854775807"

LOADED_AT = Column("loaded_at", "timestamp", True, "When the warehouse wrote this row (UTC).")
LOAD_ID = Column("load_id", "string", True, "The load that wrote this row (load_audit.load_id).")
VALID_FROM = Column(
    "valid_from", "timestamp", True, "Start of this version's validity: its modified_at (UTC), inclusive."
)
VALID_TO = Column(
    "valid_to",
    "timestamp",
    False,
    "End of validity (UTC), exclusive: the next different version's modified_at; empty while current.",
)
IS_CURRENT = Column("is_current", "bool", True, "Whether this is the customer's current version.")


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A warehouse table: its (derived) contract and its primary key."""

    contract: Contract
    primary_key: tuple[str, ...]

    @property
    def name(self) -> str:
        """The table name."""
        return self.contract.table

    @property
    def column_names(self) -> list[str]:
        """Columns in table order."""
        return self.contract.column_names


def derive(
    base: Contract,
    *,
    table: str,
    description: str,
    columns: Sequence[str] | None = None,
    extra: Sequence[Column] = (),
) -> Contract:
    """A contract for a warehouse table: ``base``'s columns (or a subset) followed by ``extra`` ones."""
    kept = base.columns if columns is None else tuple(base.column(name) for name in columns)
    return dataclasses.replace(base, table=table, description=description, columns=(*kept, *extra))


@cache
def tables() -> dict[str, TableSpec]:
    """Every table the warehouse holds, by name, in creation order."""
    customer = load_contract("customer")
    quarantine = load_contract("customer_quarantine")
    audit = load_contract("load_audit")
    specs = [
        TableSpec(
            derive(
                customer,
                table=CUSTOMERS,
                description=(
                    "Current customers: one row per customer_key, the newest version loaded "
                    "(modified_at, then source_version, then record_hash decide). " + customer.description
                ),
                extra=(LOADED_AT, LOAD_ID),
            ),
            ("customer_key",),
        ),
        TableSpec(
            derive(
                customer,
                table=HISTORY,
                description=(
                    "Customer history, SCD type 2: one row per change of content (record_hash) per "
                    "customer_key, valid from valid_from (inclusive) to valid_to (exclusive)."
                ),
                extra=(VALID_FROM, VALID_TO, IS_CURRENT),
            ),
            ("customer_key", "modified_at", "record_hash"),
        ),
        TableSpec(
            derive(
                customer,
                table=VERSIONS,
                description=(
                    "Every distinct customer version (customer_key, modified_at, record_hash) ever loaded, "
                    "first sighting kept. customer_history is recomputed from it for the keys a load "
                    "touches, so history does not depend on the order windows are loaded in."
                ),
                columns=VERSION_COLUMNS,
                extra=(LOADED_AT, LOAD_ID),
            ),
            ("customer_key", "modified_at", "record_hash"),
        ),
        TableSpec(
            derive(
                quarantine,
                table=QUARANTINE_TABLE,
                description=(
                    quarantine.description
                    + " The (source_system, source_window) slice is replaced whole by every load of that "
                    "window."
                ),
                extra=(LOADED_AT, LOAD_ID),
            ),
            (),
        ),
        TableSpec(audit, tuple(audit.primary_key)),
    ]
    matches = load_contract(MATCHES)
    specs.append(TableSpec(matches, tuple(matches.primary_key)))
    return {spec.name: spec for spec in specs}


def customer_columns() -> list[str]:
    """The customer contract's columns, in order."""
    return load_contract("customer").column_names


def content_columns() -> list[str]:
    """Contract columns that are a version's content (everything but the version columns)."""
    return [c for c in load_contract("customer").column_names if c not in VERSION_COLUMNS]


def table_statements(spec: TableSpec, dialect: str) -> list[str]:
    """``CREATE TABLE IF NOT EXISTS``, the columns later contract versions added, and the comments."""
    return [
        create_table_sql(spec.contract, dialect, primary_key=list(spec.primary_key)),
        *added_column_statements(spec, dialect),
        *comment_sql(spec.contract),
    ]


def added_column_statements(spec: TableSpec, dialect: str) -> list[str]:
    """``ADD COLUMN IF NOT EXISTS`` for the e-invoice columns (customer contract 1.1.0), nullable.

    A warehouse created by 1.0.0 gains them empty; re-normalizing and loading its windows fills them.
    """
    from pipelines.einvoice.spec import COLUMNS as EINVOICE_COLUMNS

    table = quote_ident(spec.name)
    return [
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {quote_ident(c.name)} {sql_type(c, dialect)}"
        for c in spec.contract.columns
        if c.name in EINVOICE_COLUMNS
    ]


def index_statements(dialect: str) -> list[str]:
    """Secondary indexes; Postgres only (DuckDB's zone maps serve these scans; ART indexes slow loads)."""
    if dialect != "postgres":
        return []
    return [
        f"CREATE INDEX IF NOT EXISTS ix_customer_quarantine_slice ON {quote_ident(QUARANTINE_TABLE)} "
        '("source_system", "source_window")',
        f"CREATE INDEX IF NOT EXISTS ix_load_audit_window ON {quote_ident(AUDIT)} "
        '("source", "source_window")',
    ]


# -- views ---------------------------------------------------------------------------------------------

# (friendly name, customers column). Lineage and hashes stay out: analysts who need them use customers.
V_CUSTOMERS_COLUMNS: Final = (
    ("customer_key", "customer_key"),
    ("source", "source_system"),
    ("source_id", "source_customer_id"),
    ("customer_name", "name"),
    ("trading_name", "nickname"),
    ("address_line_1", "address_line1"),
    ("address_line_2", "address_line2"),
    ("address_line_3", "address_line3"),
    ("address_line_4", "address_line4"),
    ("postcode", "postcode"),
    ("town", "town"),
    ("state", "state"),
    ("country_code", "country"),
    ("phone", "phone"),
    ("phone_2", "phone_2"),
    ("mobile", "mobile"),
    ("fax", "fax"),
    ("email", "email"),
    ("website", "website"),
    ("contact_name", "contact_name"),
    ("contact_phone", "contact_phone"),
    ("currency_code", "currency"),
    ("credit_limit", "credit_limit"),
    ("outstanding_balance", "balance"),
    ("payment_term_days", "payment_terms_days"),
    ("payment_term_code", "payment_terms_code"),
    ("salesperson_code", "salesperson_code"),
    ("area_code", "area_code"),
    ("customer_group_code", "category_code"),
    ("price_level", "price_code"),
    ("is_active", "is_active"),
    ("is_bad_debtor", "is_bad_debtor"),
    ("is_member", "is_member"),
    ("member_type", "member_type"),
    ("date_of_birth", "date_of_birth"),
    ("customer_since", "customer_since"),
    ("gender", "gender"),
    ("business_registration_no", "registration_no"),
    ("tax_id", "tax_id"),
    ("sst_no", "sst_no"),
    ("created_in_source_at", "created_at"),
    ("last_modified_at", "modified_at"),
    ("data_issues", "data_issues"),
    ("loaded_at", "loaded_at"),
)

V_COVERAGE_COMMENTS: Final = {
    "source": "Source system.",
    "coverage": (
        "loaded (at least one successful load), failed (only failed loads), running (a load started "
        "and never finished: it died, nothing of it was committed) or gap (days between the first and "
        "last loaded window that no successful load covers)."
    ),
    "source_window": "The lake window (YYYY-MM-DD_YYYY-MM-DD); empty for gaps.",
    "window_start": "First Malaysia date of the window or gap.",
    "window_end": "Last Malaysia date of the window or gap (inclusive).",
    "covered_through": (
        "Last Malaysia date a successful load of this window vouches for: the window's end, or the day the "
        "load started if earlier (a month loaded on the 10th says nothing of the 20th). Gaps count from it."
    ),
    "days": "Days in the window or gap.",
    "loads": "Load attempts of this window (all statuses).",
    "first_loaded_at": "First successful load (UTC).",
    "last_loaded_at": "Latest successful load (UTC).",
    "rows_in": "Normalized rows of the latest successful load.",
    "quarantined": "Quarantined rows of the latest successful load.",
    "last_status": "Status of the latest load attempt.",
}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def v_customers_statements() -> list[str]:
    """The ``v_customers`` view and its comments (each column's contract description)."""
    spec = tables()[CUSTOMERS]
    view = quote_ident(V_CUSTOMERS)
    select = ",\n  ".join(f"{quote_ident(src)} AS {quote_ident(name)}" for name, src in V_CUSTOMERS_COLUMNS)
    out = [
        f"CREATE OR REPLACE VIEW {view} AS\nSELECT\n  {select}\nFROM {quote_ident(CUSTOMERS)}",
        f"COMMENT ON VIEW {view} IS "
        + _literal("Current customers of both sources, one row per customer_key, with friendly names."),
    ]
    for name, src in V_CUSTOMERS_COLUMNS:
        description = spec.contract.column(src).description
        out.append(f"COMMENT ON COLUMN {view}.{quote_ident(name)} IS {_literal(description)}")
    return out


def covered_end_sql(alias: str = "") -> str:
    """The last day one load vouches for: its window's end, or the Malaysia date it started if earlier."""
    a = f"{alias}." if alias else ""
    return f"LEAST({a}window_end, CAST({a}started_at AT TIME ZONE '{LOCAL_ZONE}' AS DATE))"


def v_coverage_statements(dialect: str) -> list[str]:
    """The ``v_window_coverage`` view: one row per loaded (or attempted) window, plus one per gap.

    Gaps are computed by day, so a daily window inside a monthly one counts as covered and a missing month
    between two loaded ones shows up as one gap row with its first and last day. A load covers its window
    only up to the day it started (:func:`covered_end_sql`); the push's coverage check reads this view, so
    ``skysmart status``, the view and the push cannot disagree.
    """
    if dialect == "duckdb":
        days = (
            "SELECT source, CAST(unnest(generate_series(CAST(lo AS TIMESTAMP), CAST(hi AS TIMESTAMP), "
            "INTERVAL 1 DAY)) AS DATE) AS day FROM bounds"
        )
    else:
        days = (
            "SELECT source, CAST(generate_series(CAST(lo AS TIMESTAMP), CAST(hi AS TIMESTAMP), "
            "INTERVAL '1 day') AS DATE) AS day FROM bounds"
        )
    sql = f"""CREATE OR REPLACE VIEW {quote_ident(V_COVERAGE)} AS
WITH windows AS (
  SELECT source, source_window, min(window_start) AS window_start, min(window_end) AS window_end,
         count(*) AS loads,
         count(*) FILTER (WHERE status = 'succeeded') AS successful_loads,
         min(finished_at) FILTER (WHERE status = 'succeeded') AS first_loaded_at,
         max(finished_at) FILTER (WHERE status = 'succeeded') AS last_loaded_at,
         max({covered_end_sql()}) FILTER (WHERE status = 'succeeded') AS covered_through
  FROM load_audit GROUP BY source, source_window
),
last_ok AS (
  SELECT DISTINCT ON (source, source_window) source, source_window, rows_in, quarantined
  FROM load_audit WHERE status = 'succeeded'
  ORDER BY source, source_window, finished_at DESC, load_id DESC
),
last_any AS (
  SELECT DISTINCT ON (source, source_window) source, source_window, status
  FROM load_audit ORDER BY source, source_window, started_at DESC, load_id DESC
),
bounds AS (
  SELECT source, min(window_start) AS lo, max({covered_end_sql()}) AS hi
  FROM load_audit WHERE status = 'succeeded' GROUP BY source
),
days AS ({days}),
uncovered AS (
  SELECT d.source, d.day FROM days d
  WHERE NOT EXISTS (
    SELECT 1 FROM load_audit a
    WHERE a.status = 'succeeded' AND a.source = d.source
      AND d.day BETWEEN a.window_start AND {covered_end_sql("a")}
  )
),
islands AS (
  SELECT source, day,
         day - CAST(row_number() OVER (PARTITION BY source ORDER BY day) AS INTEGER) AS island
  FROM uncovered
)
SELECT w.source,
       CASE WHEN w.successful_loads > 0 THEN 'loaded'
            WHEN la.status = 'running' THEN 'running' ELSE 'failed' END AS coverage,
       w.source_window, w.window_start, w.window_end, w.covered_through,
       CAST(w.window_end - w.window_start + 1 AS INTEGER) AS days,
       CAST(w.loads AS BIGINT) AS loads, w.first_loaded_at, w.last_loaded_at,
       lo.rows_in, lo.quarantined, la.status AS last_status
FROM windows w
LEFT JOIN last_ok lo ON lo.source = w.source AND lo.source_window = w.source_window
LEFT JOIN last_any la ON la.source = w.source AND la.source_window = w.source_window
UNION ALL
SELECT source, 'gap', NULL, min(day), max(day), NULL, CAST(count(*) AS INTEGER), CAST(0 AS BIGINT),
       NULL, NULL, NULL, NULL, NULL
FROM islands GROUP BY source, island"""
    out = [
        sql,
        f"COMMENT ON VIEW {quote_ident(V_COVERAGE)} IS "
        + _literal(
            "Which lake windows of which source are loaded, when and with how many rows, and the gaps "
            "between the first and last loaded window. Order by source, window_start to read it."
        ),
    ]
    out += [
        f"COMMENT ON COLUMN {quote_ident(V_COVERAGE)}.{quote_ident(name)} IS {_literal(text)}"
        for name, text in V_COVERAGE_COMMENTS.items()
    ]
    return out


def schema_statements(dialect: str) -> tuple[str, ...]:
    """Every statement :meth:`Warehouse.ensure_schema` runs, in order; all idempotent.

    The last ones record the others' fingerprint in ``v_schema``.
    """
    return (*_made_statements(dialect), *v_schema_statements(current_fingerprint(dialect)))


@cache
def current_fingerprint(dialect: str) -> str:
    """The fingerprint this version of skysmart writes (what ``v_schema`` holds once its schema is made)."""
    return schema_fingerprint(_made_statements(dialect))


@cache
def _made_statements(dialect: str) -> tuple[str, ...]:
    """The tables, indexes and views, with their comments."""
    out: list[str] = []
    for spec in tables().values():
        out += table_statements(spec, dialect)
    out += index_statements(dialect)
    # The push outbox exists from the start, so analysts' queries of it work (empty) before the first push.
    out += contract_table_statements("skybiz_push_outbox", dialect)
    out += v_customers_statements()
    out += v_coverage_statements(dialect)
    out += v_businesses_statements()
    out += v_einvoice_statements()
    return tuple(out)


def schema_fingerprint(statements: Sequence[str]) -> str:
    """A short hash of the schema's statements: any change to a contract, a view or an index changes it."""
    return hashlib.sha256("\n;\n".join(statements).encode("utf-8")).hexdigest()[:16]


def v_schema_statements(fingerprint: str) -> list[str]:
    """The ``v_schema`` view: one row holding the fingerprint of the statements that made the schema.

    Created last, in the same transaction as the rest, so it only ever names a schema that is complete.
    Opening a warehouse reads it and skips the ~300 statements when it matches (0.07-0.12 s on DuckDB, and
    table locks on Postgres, for every process that opens the warehouse). Drop it to make the next open
    run them all again (after changing a table by hand, say).
    """
    view = quote_ident(V_SCHEMA)
    return [
        f"CREATE OR REPLACE VIEW {view} AS SELECT {_literal(fingerprint)} AS fingerprint",
        f"COMMENT ON VIEW {view} IS "
        + _literal("The fingerprint of the schema's statements, as the skysmart that made it wrote them."),
        f"COMMENT ON COLUMN {view}.fingerprint IS "
        + _literal("A hash of every CREATE, ALTER and COMMENT statement of the schema."),
    ]


# Fields compared between the two records of one business in v_businesses (customers columns).
V_BUSINESSES_COMPARED: Final = ("name", "phone", "email", "postcode", "town", "currency", "credit_limit")


def v_businesses_statements() -> list[str]:
    """The ``v_businesses`` view: one row per business across both systems, from ``same`` matches.

    A ``same`` pair is one business in both systems; every current customer in no ``same`` pair is a
    business of its own system. ``differs`` names the compared fields whose values disagree (names
    case-insensitively); a SkyBiz record known only from quarantine shows its code and no fields.
    """
    view = quote_ident(V_BUSINESSES)
    differs = ", ".join(
        f"CASE WHEN lower(CAST(s.{quote_ident(c)} AS VARCHAR)) IS DISTINCT FROM "
        f"lower(CAST(b.{quote_ident(c)} AS VARCHAR)) THEN '{c}' END"
        for c in V_BUSINESSES_COMPARED
    )
    customers = quote_ident(CUSTOMERS)
    matches = quote_ident(MATCHES)
    sql = f"""CREATE OR REPLACE VIEW {view} AS
WITH same AS (SELECT * FROM {matches} WHERE match_class = 'same')
SELECT 'both' AS systems, m.skybiz_code, m.smartacc_id, m.skybiz_record,
       COALESCE(b.name, s.name) AS name, s.name AS skybiz_name, b.name AS smartacc_name,
       CASE WHEN s.customer_key IS NULL THEN NULL ELSE concat_ws(', ', {differs}) END AS differs,
       m.evidence
FROM same m
JOIN {customers} b ON b.customer_key = m.smartacc_key
LEFT JOIN {customers} s ON s.source_system = 'skybiz' AND s.source_customer_id = m.skybiz_code
UNION ALL
SELECT 'skybiz', s.source_customer_id, NULL, '{CUSTOMERS}', s.name, s.name, NULL, NULL, NULL
FROM {customers} s
WHERE s.source_system = 'skybiz'
  AND NOT EXISTS (SELECT 1 FROM same m WHERE m.skybiz_code = s.source_customer_id)
UNION ALL
SELECT 'smartacc', NULL, b.source_customer_id, NULL, b.name, NULL, b.name, NULL, NULL
FROM {customers} b
WHERE b.source_system = 'smartacc'
  AND NOT EXISTS (SELECT 1 FROM same m WHERE m.smartacc_key = b.customer_key)"""
    comments = {
        "systems": "both (a same match), skybiz or smartacc (found in that system only).",
        "skybiz_code": "The SkyBiz CusCode.",
        "smartacc_id": "The SmartAcc AcCustomerID.",
        "skybiz_record": "Where the SkyBiz record was read: customers, or customer_quarantine (raw fields).",
        "name": "The business's name (SmartAcc's where it has one).",
        "skybiz_name": "The name in SkyBiz.",
        "smartacc_name": "The name in SmartAcc.",
        "differs": "Compared fields whose values disagree between the two systems, comma-separated.",
        "evidence": "Why the two records are one business (customer_matches.evidence).",
    }
    return [
        sql,
        f"COMMENT ON VIEW {view} IS "
        + _literal(
            "One row per business across SkyBiz and SmartAcc: its code in each system and the fields that "
            "disagree. Built from customer_matches (class same); rebuilt identity shows here at once."
        ),
        *(f"COMMENT ON COLUMN {view}.{quote_ident(n)} IS {_literal(t)}" for n, t in comments.items()),
    ]


# The e-invoice columns v_einvoice_readiness shows, from the SmartAcc record of the business.
V_EINVOICE_COLUMNS: Final = (
    "tax_id", "tin_kind", "id_type", "id_number", "einvoice_sst_no", "lhdn_state_code", "country_alpha3",
    "tin_validated",
)  # fmt: skip


def v_einvoice_statements() -> list[str]:
    """The ``v_einvoice_readiness`` view: one row per business of ``v_businesses``, ready or not and why.

    A business's e-invoice identity is its SmartAcc record's (a SkyBiz customer inherits the identity its
    SmartAcc twin holds): ``ready`` and ``reasons`` are that record's ``einvoice_ready`` and
    ``einvoice_reasons``, computed at normalization from the contract's rules. A business SkyBiz alone holds
    has no e-invoice fields (``no_smartacc_record``); a SmartAcc row loaded before the e-invoice columns
    existed is ``not_assessed`` until its window is normalized and loaded again.
    """
    from pipelines.einvoice.spec import NO_SMARTACC_RECORD, NOT_ASSESSED

    view = quote_ident(V_EINVOICE)
    shown = ", ".join(f"c.{quote_ident(c)}" for c in V_EINVOICE_COLUMNS)
    sql = f"""CREATE OR REPLACE VIEW {view} AS
SELECT b.systems, b.skybiz_code, b.smartacc_id, b.name, {shown},
       COALESCE(c.einvoice_ready, FALSE) AS ready,
       CASE WHEN c.customer_key IS NULL THEN '{NO_SMARTACC_RECORD}'
            WHEN c.einvoice_ready IS NULL THEN '{NOT_ASSESSED}'
            ELSE c.einvoice_reasons END AS reasons
FROM {quote_ident(V_BUSINESSES)} b
LEFT JOIN {quote_ident(CUSTOMERS)} c
  ON c.source_system = 'smartacc' AND c.source_customer_id = b.smartacc_id"""
    customer = load_contract("customer")
    comments = {
        "systems": "both (the business is in SkyBiz and SmartAcc), skybiz or smartacc.",
        "skybiz_code": "The SkyBiz CusCode.",
        "smartacc_id": "The SmartAcc AcCustomerID whose e-invoice fields the business uses.",
        "name": "The business's name (SmartAcc's where it has one).",
        **{c: customer.column(c).description for c in V_EINVOICE_COLUMNS},
        "ready": "Whether an e-invoice can be issued to the business today (no reasons).",
        "reasons": (
            "Semicolon-separated codes of what is missing or wrong (docs/einvoice.md); "
            f"{NO_SMARTACC_RECORD}: only SkyBiz holds the business; {NOT_ASSESSED}: loaded before "
            "e-invoice checks, reload its window."
        ),
    }
    return [
        sql,
        f"COMMENT ON VIEW {view} IS "
        + _literal(
            "E-invoice readiness (LHDN MyInvois) of every business across SkyBiz and SmartAcc, one row per "
            "v_businesses row: the identity its SmartAcc record holds, ready or not, and the reasons."
        ),
        *(f"COMMENT ON COLUMN {view}.{quote_ident(n)} IS {_literal(t)}" for n, t in comments.items()),
    ]


def contract_table_statements(
    contract_name: str, dialect: str, *, table: str | None = None, extra_columns: list[str] | None = None
) -> list[str]:
    """DDL and comments for a table another part of skysmart keeps (e.g. the push outbox)."""
    contract = load_contract(contract_name)
    if table is not None and table in tables():
        raise ContractError(f"table {table!r} belongs to the warehouse load; choose another name")
    return [
        create_table_sql(contract, dialect, table=table, extra_columns=extra_columns),
        *comment_sql(contract, table=table),
    ]


# -- version order ----------------------------------------------------------------------------------------


# The total order of customer rows, most significant first: (expression, whether larger is newer). A
# version is (customer_key, modified_at, record_hash) ordered by the first three; the last two order the
# sightings of one version (the same record in overlapping windows, or a repeated page): the earliest
# extraction is the canonical one. A total order is what makes every table independent of load order.
VERSION_ORDER: Final = (
    ("{a}modified_at", True),
    (f"COALESCE({{a}}source_version, {MIN_VERSION})", True),
    ("{a}record_hash", True),
    ("{a}extracted_at", False),
    ("{a}source_window", False),
)


def newest_first(alias: str | None = None) -> str:
    """``ORDER BY`` terms putting a key's newest row first (see :data:`VERSION_ORDER`)."""
    a = f"{alias}." if alias else ""
    return ", ".join(f"{expr.format(a=a)} {'DESC' if up else 'ASC'}" for expr, up in VERSION_ORDER)


def oldest_first(alias: str | None = None) -> str:
    """``ORDER BY`` terms listing a key's rows oldest first (the reverse of :func:`newest_first`)."""
    a = f"{alias}." if alias else ""
    return ", ".join(f"{expr.format(a=a)} {'ASC' if up else 'DESC'}" for expr, up in VERSION_ORDER)


def newer(candidate: str, current: str) -> str:
    """A predicate: row ``candidate`` (a table alias) comes strictly after ``current`` in the order."""
    terms = [
        (expr.format(a=f"{candidate}."), ">" if up else "<", expr.format(a=f"{current}."))
        for expr, up in VERSION_ORDER
    ]
    c, op, t = terms[-1]
    out = f"{c} {op} {t}"
    for c, op, t in reversed(terms[:-1]):
        out = f"({c} {op} {t} OR ({c} = {t} AND {out}))"
    return out


def column_list(names: Sequence[str], alias: str | None = None) -> str:
    """Quoted, comma-separated column names, optionally qualified by ``alias``."""
    p = f"{alias}." if alias else ""
    return ", ".join(p + quote_ident(n) for n in names)


def first_per_group(columns: str, source: str, partition: str, order: str) -> str:
    """``SELECT columns`` of the first row per ``partition`` group by ``order``, in SQL both engines run well.

    DuckDB 2.0's ``DISTINCT ON … ORDER BY`` is pathological on wide rows (7 s against 1 s for
    ``row_number()`` on 100k customers), and ``QUALIFY`` is DuckDB-only; a filtered ``row_number()``
    subquery is fast on both.
    """
    return (
        f"SELECT {columns} FROM (SELECT *, row_number() OVER (PARTITION BY {partition} ORDER BY {order}) "
        f"AS _rank FROM {source}) _ranked WHERE _rank = 1"
    )
