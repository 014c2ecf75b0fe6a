"""What a validation found, for machines and people: results, failures, ``validation.json``, the HTML page.

Failing rows are named by their ``customer_key`` only. The stored result, the report and the error text carry
counts, contract metadata and keys, never the offending values: the report is meant to be shared, and the
values (e-mails, phones) are personal data.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from pipelines.errors import redact
from pipelines.quality.suite import STRUCTURAL_RULES

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult

REPORT_JSON: Final = "validation.json"
REPORT_HTML: Final = "report.html"
KEY_COLUMN: Final = "customer_key"
#: Failures kept in a :class:`QualityResult` (it travels through XCom) and keys kept per failure there.
MAX_FAILURES: Final = 10
MAX_KEYS: Final = 5
#: Keys listed per expectation in the HTML report; ``validation.json`` lists every one.
HTML_KEYS: Final = 50
#: Failures spelled out in a :class:`DataQualityError` message.
MESSAGE_FAILURES: Final = 3
# Result fields that hold counts or contract metadata, never row values: the only ones stored.
_RESULT_FIELDS: Final = (
    "element_count",
    "missing_count",
    "missing_percent",
    "unexpected_count",
    "unexpected_percent",
    "unexpected_percent_total",
    "unexpected_percent_nonmissing",
    "unexpected_index_column_names",
    "observed_value",
    "details",
)
# Expectations whose observed value is structural (a dtype, the column list), safe to store and show.


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed expectation, small enough for XCom and free of row values.

    Attributes:
        check: the contract check it came from, e.g. ``email:pattern`` (``table:columns``, ``name:dtype`` for
            the structural ones).
        expectation: the GX expectation type, e.g. ``expect_column_values_to_match_regex``.
        column: the column, or ``None`` for table-level expectations.
        severity: ``error`` or ``warning``.
        unexpected_count: failing rows, or ``None`` where the expectation is not row-level or raised.
        keys: the first failing ``customer_key`` values (row numbers where the frame has no key column).
        detail: a short structural explanation (expected versus found dtype, column differences, an
            exception).
    """

    check: str
    expectation: str
    column: str | None
    severity: str
    unexpected_count: int | None
    keys: tuple[str, ...] = ()
    detail: str | None = None

    def describe(self) -> str:
        """One line for logs and error messages: check, expectation, count, keys."""
        text = f"{self.check} ({self.expectation})"
        if self.unexpected_count is not None:
            text += f" {self.unexpected_count:,} row{'s' if self.unexpected_count != 1 else ''}"
        if self.detail:
            text += f": {self.detail}"
        if self.keys:
            text += f", keys {', '.join(self.keys)}"
        return text


@dataclass(frozen=True, slots=True)
class QualityResult:
    """What a validation found; small and secret-free, so it can travel through XCom.

    Attributes:
        source: ``skybiz`` or ``smartacc`` (``None`` for a frame validated outside the lake).
        window: the window key, where known.
        contract: the contract validated against, ``name@version``.
        rows: rows validated.
        success: no ``error`` expectation failed (warnings may have).
        evaluated: expectations evaluated.
        passed: expectations that passed.
        failed_errors: ``error`` expectations that failed.
        failed_warnings: ``warning`` expectations that failed.
        failures: the first failures, errors first.
        report_json_url: where the GX result was stored, if it was.
        report_html_url: where the HTML report was stored, if it was.
        seconds: wall time of the validation run.
    """

    source: str | None
    window: str | None
    contract: str
    rows: int
    success: bool
    evaluated: int
    passed: int
    failed_errors: int
    failed_warnings: int
    failures: tuple[Failure, ...]
    report_json_url: str | None
    report_html_url: str | None
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        """All failed expectations, errors and warnings."""
        return self.failed_errors + self.failed_warnings

    def summary(self) -> str:
        """A readable, value-free summary; the text of :class:`DataQualityError`."""
        where = f"{self.source}:{self.window}" if self.source and self.window else self.contract
        verdict = "passed" if self.success else "failed"
        head = (
            f"data quality check of {where} {verdict}: {self.failed_errors} error and {self.failed_warnings} "
            f"warning expectation(s) failed of {self.evaluated} on {self.rows:,} rows"
        )
        errors = [f for f in self.failures if f.severity == "error"]
        lines = [head]
        if errors:
            shown = "; ".join(f.describe() for f in errors[:MESSAGE_FAILURES])
            more = self.failed_errors - min(len(errors), MESSAGE_FAILURES)
            lines.append(f"errors: {shown}" + (f"; and {more} more" if more > 0 else ""))
        if self.report_html_url:
            lines.append(f"full report: {self.report_html_url} (GX result: {self.report_json_url})")
        else:
            lines.append("no report was stored (frame validated outside the lake)")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Run:
    """The outcome of the suite on one window: results in suite order, GX's run metadata, wall seconds."""

    results: list[ExpectationValidationResult]
    meta: dict[str, Any]
    seconds: float


def failure_of(result: ExpectationValidationResult, keyed: bool) -> Failure:
    """The small, value-free :class:`Failure` of one failed expectation result."""
    config = result.expectation_config
    meta = dict(config.meta or {}) if config else {}
    kwargs = dict(config.kwargs) if config else {}
    res = dict(result.result or {})
    raised = _exception_message(result)
    detail = None
    if raised:
        detail = f"raised {raised}"
    elif meta.get("rule") == "dtype":
        found = res.get("observed_value")
        detail = f"expected {kwargs.get('dtype')}, found {found if found is not None else 'no such column'}"
    elif meta.get("rule") == "columns":
        detail = _columns_detail(kwargs.get("column_list") or [], res.get("observed_value") or [])
    count = res.get("unexpected_count")
    return Failure(
        check=str(meta.get("check", config.type if config else "?")),
        expectation=config.type if config else "?",
        column=kwargs.get("column"),
        severity=str(meta.get("severity", "error")),
        unexpected_count=int(count) if count is not None and not raised else None,
        keys=tuple(_failing_keys(res, keyed)),
        detail=detail,
    )


def _failing_keys(res: Mapping[str, Any], keyed: bool) -> list[str]:
    """Failing row identities from GX's ``unexpected_index_list``, in row order, without repeats."""
    found = res.get("unexpected_index_list") or []
    raw: list[Any] = []
    for item in found:
        if isinstance(item, Mapping):
            for value in item.values():
                raw.extend(value if isinstance(value, list) else [value])
        else:
            raw.append(item)
    out: list[str] = []
    seen: set[str] = set()
    for value in raw:
        text = _key_text(value) if keyed else f"row {value}"
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def _key_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "(no key)"
    return str(value)


def _columns_detail(expected: Sequence[str], found: Sequence[str]) -> str:
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    if extra:
        parts.append(f"unexpected {', '.join(extra[:5])}" + (" ..." if len(extra) > 5 else ""))
    if not parts:
        parts.append("columns out of contract order")
    return "; ".join(parts)


def _exception_message(result: ExpectationValidationResult) -> str | None:
    info = result.exception_info or {}
    infos = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, Mapping)]
    for item in infos:
        if item.get("raised_exception"):
            return redact(str(item.get("exception_message") or "an exception")).splitlines()[0][:300]
    return None


def stored_result(
    suite_name: str,
    run: Run,
    keyed: bool,
    key_column: str,
    facts: Mapping[str, Any],
    configs: dict[int, Any] | None = None,
) -> dict[str, Any]:
    """The GX result in GX's own JSON shape, with every row value left out and keys made plain strings.

    ``exclude_unexpected_values`` already keeps values out of the index lists; the whitelist of result
    fields keeps them out of anything else an expectation might report. Exception tracebacks are dropped,
    their first line kept. The GX runs of a window's batch (see :mod:`pipelines.quality.running`) are
    stored as one result of the whole suite, as seen on that window. ``configs`` caches each expectation
    configuration's JSON between the windows of a batch (they share the configurations; serialising them
    was most of the cost of a small window's report); the windows' results share that JSON, so a stored
    result is read-only.
    """
    from great_expectations.util import convert_to_json_serializable

    stored_results = []
    for r in run.results:
        config = r.expectation_config
        res = dict(r.result or {})
        meta = dict(config.meta or {}) if config else {}
        kept = {k: res[k] for k in _RESULT_FIELDS if k in res}
        if "observed_value" in kept and meta.get("rule") not in STRUCTURAL_RULES:
            del kept["observed_value"]  # an aggregate of data values
        if not r.success:
            keys = _failing_keys(res, keyed)
            kept["unexpected_index_list"] = [{key_column: keys}] if keyed else keys
        raised = _exception_message(r)
        stored_results.append(
            {
                "success": bool(r.success),
                "expectation_config": _config_json(config, configs),
                "result": _json_ready(kept),
                "meta": _json_ready(dict(r.meta or {})),
                "exception_info": {
                    "raised_exception": raised is not None,
                    "exception_message": raised,
                    "exception_traceback": None,
                },
            }
        )
    passed = sum(1 for r in run.results if r.success)
    return {
        "success": passed == len(stored_results),
        "suite_name": suite_name,
        "statistics": {
            "evaluated_expectations": len(stored_results),
            "successful_expectations": passed,
            "unsuccessful_expectations": len(stored_results) - passed,
            "success_percent": 100.0 * passed / len(stored_results) if stored_results else None,
        },
        "meta": {**convert_to_json_serializable(run.meta), "skysmart": dict(facts)},
        "results": stored_results,
    }


def _json_ready(value: Any) -> Any:
    """GX's ``convert_to_json_serializable`` of ``value``, with plain JSON values passed through here.

    A window's report holds ~110 results of counts and key lists; GX's converter asks each value first
    whether it is a pydantic model, which was most of the cost of writing a report. Anything not plain
    (numpy numbers, timestamps, GX's own types) still goes to GX's converter.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return None if value != value else value  # NaN, as GX turns it
    if kind is list or kind is tuple:
        return [_json_ready(v) for v in value]
    if kind is dict:
        return {str(k): _json_ready(v) for k, v in value.items()}
    from great_expectations.util import convert_to_json_serializable

    return convert_to_json_serializable(value)


def _config_json(config: Any, cache: dict[int, Any] | None) -> Any:
    if config is None:
        return None
    from great_expectations.util import convert_to_json_serializable

    if cache is None:
        return convert_to_json_serializable(config.to_json_dict())
    if id(config) not in cache:
        cache[id(config)] = (config, convert_to_json_serializable(config.to_json_dict()))
    return cache[id(config)][1]  # shared, not copied: a stored result is only ever read (JSON, HTML)


def json_bytes(doc: Mapping[str, Any]) -> bytes:
    """The stored result as compact JSON (strict: a NaN would be a bug, not a number).

    Compact because ``indent`` takes the json module off its C encoder: 1.8 ms against 0.4 ms for a
    window's report, written for every window of a run; ``jq .`` indents it for reading.
    """
    return json.dumps(doc, separators=(",", ":"), default=str, allow_nan=False).encode("utf-8")


def render_html(stored: Mapping[str, Any]) -> str:
    """A self-contained report page from a stored (value-free) result.

    Why not GX Data Docs: they need a file-backed context and a site builder, pull Bootstrap, jQuery and
    fonts from CDNs and embed a remote tracking image (unstyled and leaky offline), and their tables print
    the failing *values*, which are personal data here. This page is one file with inline CSS and no
    scripts or remote references, lists every expectation with its severity and outcome, and names failing
    rows by ``customer_key`` only.
    """
    facts: Mapping[str, Any] = stored.get("meta", {}).get("skysmart", {})
    rows = [_html_row(r) for r in stored.get("results", [])]
    rows.sort(key=lambda r: r[0])  # stable: suite order within errors, warnings, passes
    errors = sum(1 for r in rows if r[0] == 0)
    warnings = sum(1 for r in rows if r[0] == 1)
    passed = sum(1 for r in rows if r[0] == 2)
    status = "FAILED" if errors else "PASSED with warnings" if warnings else "PASSED"
    status_class = "fail" if errors else "warn" if warnings else "pass"
    title = f"Data quality — {facts.get('source') or ''} {facts.get('window') or ''}".strip()
    fact_rows = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{html.escape(str(value))}</td></tr>"
        for label, value in (
            ("Source", facts.get("source")),
            ("Window", facts.get("window")),
            ("Contract", facts.get("contract") or stored.get("suite_name")),
            ("Rows", f"{facts.get('rows', 0):,}"),
            ("Rows named by", facts.get("key_column") or "row number"),
            ("Validated at", facts.get("validated_at")),
            ("Seconds", facts.get("seconds")),
            ("great-expectations", stored.get("meta", {}).get("great_expectations_version")),
        )
        if value is not None
    )
    head = (
        "<thead><tr><th>Outcome</th><th>Severity</th><th>Check</th><th>Expectation</th><th>Column</th>"
        '<th>Rule</th><th class="num">Failing rows</th><th>Failing keys</th></tr></thead>'
    )
    failed_rows = "".join(r[1] for r in rows if r[0] < 2)
    passed_rows = "".join(r[1] for r in rows if r[0] == 2)
    failed_table = (
        f"<h2>Failed expectations</h2><table>{head}<tbody>{failed_rows}</tbody></table>"
        if failed_rows
        else "<h2>No expectation failed</h2>"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
body{{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#1d2433}}
h1{{font-size:1.4rem;margin:0 0 .3rem}} h2{{font-size:1.1rem;margin:1.5rem 0 0}}
summary{{cursor:pointer;margin-top:1.5rem;font-weight:600}}
.status{{font-weight:700;padding:.15rem .6rem;border-radius:4px}}
.pass{{background:#dff3e4;color:#17612d}} .fail{{background:#fbe0e0;color:#8f1d1d}}
.warn{{background:#fff1cc;color:#7a5300}}
table{{border-collapse:collapse;margin:1rem 0;width:100%}} th,td{{text-align:left;padding:.35rem .6rem;
vertical-align:top;border-bottom:1px solid #e3e6ec}} .facts{{width:auto}} .facts th{{color:#5b6478}}
.num{{text-align:right;font-variant-numeric:tabular-nums}} code{{font-size:12px;word-break:break-all}}
.keys{{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}} .muted{{color:#6b7385}}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p><span class="status {status_class}">{status}</span>
 {len(rows)} expectations: {passed} passed, {errors} error failures, {warnings} warning failures.</p>
<table class="facts">{fact_rows}</table>
<p class="muted">Failing rows are named by key only; values are never shown. Every failing key is listed in
validation.json beside this file.</p>
{failed_table}
<details><summary>{passed} passed expectations</summary>
<table>{head}<tbody>{passed_rows}</tbody></table></details>
</body></html>
"""


def _html_row(result: Mapping[str, Any]) -> tuple[int, str]:
    """``(rank, <tr>)``: error failures first, then warning failures, then passes."""
    config: Mapping[str, Any] = result.get("expectation_config") or {}
    meta: Mapping[str, Any] = config.get("meta") or {}
    kwargs: Mapping[str, Any] = config.get("kwargs") or {}
    res: Mapping[str, Any] = result.get("result") or {}
    severity = str(meta.get("severity", "error"))
    success = bool(result.get("success"))
    rank = 2 if success else 0 if severity == "error" else 1
    outcome = "pass" if success else "fail" if severity == "error" else "warn"
    label = "passed" if success else "FAILED"
    rule = _rule_text(str(meta.get("rule", "")), kwargs, res)
    count = res.get("unexpected_count")
    count_text = f"{count:,}" if isinstance(count, int) else ""
    raised = (result.get("exception_info") or {}).get("exception_message")
    keys_list: list[str] = []
    for item in res.get("unexpected_index_list") or []:
        if isinstance(item, Mapping):
            for value in item.values():
                keys_list.extend(str(v) for v in (value if isinstance(value, list) else [value]))
        else:
            keys_list.append(str(item))
    keys = ", ".join(html.escape(k) for k in keys_list[:HTML_KEYS])
    if len(keys_list) > HTML_KEYS:
        keys += f' <span class="muted">and {len(keys_list) - HTML_KEYS:,} more</span>'
    if raised:
        keys = f'<span class="muted">raised: {html.escape(str(raised))}</span>'
    row = (
        f'<tr><td><span class="status {outcome}">{label}</span></td><td>{html.escape(severity)}</td>'
        f"<td>{html.escape(str(meta.get('check', '')))}</td><td><code>{html.escape(str(config.get('type')))}"
        f"</code></td><td>{html.escape(str(kwargs.get('column') or ''))}</td><td>{rule}</td>"
        f'<td class="num">{count_text}</td><td class="keys">{keys}</td></tr>'
    )
    return rank, row


def _rule_text(rule: str, kwargs: Mapping[str, Any], res: Mapping[str, Any]) -> str:
    """The contract rule in words: parameters come from the contract, observed values only when structural."""

    def esc(value: Any) -> str:
        return html.escape(str(value))

    if rule == "pattern":
        return f"matches <code>{esc(kwargs.get('regex'))}</code>"
    if rule == "validValues":
        return "one of " + ", ".join(esc(v) for v in kwargs.get("value_set") or [])
    if rule in ("range", "length"):
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        what = "length" if rule == "length" else "value"
        bounds = f"{esc(low) if low is not None else '−∞'} … {esc(high) if high is not None else '∞'}"
        return f"{what} in {bounds}"
    if rule == "notNull":
        return "not null"
    if rule == "unique":
        return "unique"
    if rule == "dtype":
        found = res.get("observed_value")
        text = f"dtype {esc(kwargs.get('dtype'))}"
        return text if found == kwargs.get("dtype") else f"{text} (found {esc(found)})"
    if rule == "columns":
        return f"{len(kwargs.get('column_list') or [])} columns in contract order"
    return esc(rule)
