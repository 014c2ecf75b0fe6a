"""Reading a written report back: its charts, its numbers and whatever it would fetch from elsewhere."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from pipelines.warehouse import Warehouse

SECTION_TITLES = (
    "Coverage per source and month",
    "Rows loaded and quarantined over time",
    "Quarantine by rule",
    "Quality results per expectation",
    "Push outcomes",
    "Identity classes",
)
# The only URLs an inline SVG carries are its namespace names, which no browser fetches.
NAMESPACES = frozenset({"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"})


def svg_count(page: str) -> int:
    return len(re.findall(r"<svg\b", page))


def cells(page: str, attribute: str) -> dict[str, int]:
    """``data-<attribute>="label"`` cells of the page as ``{label: number}``."""
    found = re.findall(rf'data-{attribute}="([^"]*)">([\d,]*)<', page)
    return {html.unescape(label): int(value.replace(",", "")) for label, value in found}


def remote_references(page: str) -> list[str]:
    """Everything in the page that would make a browser reach the network (or run code)."""
    refs = re.findall(
        r"""(?:src|href|action|srcset|poster|data)\s*=\s*["']?\s*((?:https?:)?//[^"'\s>]+)""", page
    )
    refs += re.findall(r"url\(\s*['\"]?((?:https?:)?//[^)'\"]+)", page)
    refs += re.findall(r"@import[^;]*", page)
    refs += re.findall(r"<script\b[^>]*>", page, flags=re.I)
    refs += re.findall(r"<(?:link|iframe|object|embed|img|image)\b[^>]*>", page, flags=re.I)
    refs += [u for u in re.findall(r"https?://[^\s\"'<>)]+", page) if u not in NAMESPACES]
    return refs


def expected_charts(warehouse: Warehouse) -> int:
    """Charts the page should carry for what the warehouse holds: coverage, loads, quarantine (if any)."""
    loaded = warehouse.query("SELECT count(*) FROM v_window_coverage")[0][0]
    ok = warehouse.query("SELECT count(*) FROM load_audit WHERE status = 'succeeded'")[0][0]
    quarantined = warehouse.query("SELECT count(*) FROM customer_quarantine")[0][0]
    return sum(1 for n in (loaded, ok, quarantined) if n)


def personal_values(warehouse: Warehouse, limit: int = 8) -> list[str]:
    """Real names, e-mails and phones from the warehouse (long enough not to match by chance)."""
    values: list[str] = []
    for column in ("name", "email", "phone"):
        rows = warehouse.query(
            f"SELECT {column} FROM customers WHERE {column} IS NOT NULL AND length({column}) >= 8 "
            f"ORDER BY customer_key LIMIT $1",
            (limit,),
        )
        values += [str(r[0]) for r in rows]
    return values


def leaked(page: str, values: Iterable[str]) -> list[str]:
    """The values that do appear in the page, raw or HTML-escaped (empty when none does)."""
    return [v for v in values if v in page or html.escape(v) in page]
