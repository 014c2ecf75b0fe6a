"""The report page's Jinja2 template: one file, inline CSS, no scripts and no remote references.

Kept apart from the data and the charts so the wording and layout change without touching either. Every
value goes through autoescaping; only the chart SVGs (built by :mod:`pipelines.report.charts`) are marked
safe.
"""

from __future__ import annotations

from typing import Final

TEMPLATE: Final = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>skysmart report — {{ data.warehouse }}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:70rem;
color:#1d2433;padding:0 1rem}
h1{font-size:1.5rem;margin:0 0 .3rem} h3{font-size:1rem;margin:1rem 0 .2rem}
h2{font-size:1.15rem;margin:2rem 0 .4rem;border-bottom:2px solid #e3e6ec}
table{border-collapse:collapse;margin:.6rem 0} th,td{text-align:left;padding:.3rem .6rem;
border-bottom:1px solid #e3e6ec;vertical-align:top} th{color:#5b6478;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums} .muted{color:#6b7385}
.note{background:#f4f6fa;border-left:4px solid #9aa5b8;padding:.5rem .8rem}
.status{font-weight:700;padding:.05rem .5rem;border-radius:4px}
.pass,.loaded{background:#dff3e4;color:#17612d} .fail,.gap{background:#fbe0e0;color:#8f1d1d}
.warn,.failed,.running{background:#fff1cc;color:#7a5300}
svg.chart{width:100%;height:auto;display:block;margin:.6rem 0}
details summary{cursor:pointer;margin:.6rem 0}
</style></head><body>
<h1>skysmart report</h1>
<p class="muted">Warehouse {{ data.warehouse }} · generated {{ data.generated_at.isoformat() }}
{%- if data.quality.lake %} · lake {{ data.quality.lake }}{% endif %}.
Customers appear by key only; names, phones and e-mails are never shown.</p>

<section id="coverage"><h2>Coverage per source and month</h2>
{% if not data.has_audit %}
<p class="note">The warehouse holds no loads yet; run <code>skysmart run</code>.</p>
{% else %}
{{ charts.coverage }}
<details><summary>{{ data.coverage|length }} rows of v_window_coverage</summary>
<table><thead><tr><th>source</th><th>coverage</th><th>from</th><th>to</th><th>covered through</th>
<th class="num">days</th><th class="num">loads</th><th class="num">rows</th>
<th class="num">quarantined</th></tr>
</thead><tbody>
{% for r in data.coverage %}<tr><td>{{ r.source }}</td>
<td><span class="status {{ r.coverage }}">{{ r.coverage }}</span></td>
<td>{{ r.start }}</td><td>{{ r.end }}</td><td>{{ r.covered_through or "" }}</td>
<td class="num">{{ r.days }}</td>
<td class="num">{{ r.loads }}</td><td class="num">{{ num(r.rows_in) }}</td>
<td class="num">{{ num(r.quarantined) }}</td></tr>
{% endfor %}</tbody></table></details>
{% endif %}</section>

<section id="loads"><h2>Rows loaded and quarantined over time</h2>
{% if not data.months %}<p class="note">No successful load yet.</p>
{% else %}
{{ charts.loads }}
<table><thead><tr><th>source</th><th>window month</th><th class="num">windows</th>
<th class="num">rows in</th>
<th class="num">quarantined</th></tr></thead><tbody>
{% for m in data.months %}<tr><td>{{ m.source }}</td><td>{{ m.month }}</td>
<td class="num">{{ m.windows }}</td>
<td class="num" data-rows-in="{{ m.source }}:{{ m.month }}">{{ num(m.rows_in) }}</td>
<td class="num">{{ num(m.quarantined) }}</td></tr>
{% endfor %}</tbody></table>
<details><summary>Loads per day ({{ data.days|length }} rows)</summary>
<table><thead><tr><th>day (UTC)</th><th>source</th><th class="num">succeeded</th>
<th class="num">failed</th>
<th class="num">running</th><th class="num">rows in</th><th class="num">quarantined</th></tr>
</thead><tbody>
{% for d in data.days %}<tr><td>{{ d.day }}</td><td>{{ d.source }}</td>
<td class="num">{{ d.succeeded }}</td>
<td class="num">{{ d.failed }}</td><td class="num">{{ d.running }}</td>
<td class="num">{{ num(d.rows_in) }}</td>
<td class="num">{{ num(d.quarantined) }}</td></tr>
{% endfor %}</tbody></table></details>
{% endif %}</section>

<section id="quarantine"><h2>Quarantine by rule</h2>
{% if not data.quarantine %}<p class="note">No quarantined rows.</p>
{% else %}
{{ charts.quarantine }}
<table><thead><tr><th>source</th><th>rule</th><th class="num">rows</th><th class="num">windows</th>
</tr></thead>
<tbody>{% for q in data.quarantine %}<tr><td>{{ q.source }}</td><td>{{ q.rule }}</td>
<td class="num" data-rows="{{ q.source }}:{{ q.rule }}">{{ num(q.rows) }}</td>
<td class="num">{{ q.windows }}</td></tr>
{% endfor %}</tbody></table>
{% endif %}</section>

<section id="quality"><h2>Quality results per expectation</h2>
{% if data.quality.note %}<p class="note">{{ data.quality.note }}</p>
{% else %}
<p>{{ data.quality.windows|length }} validated windows;
{{ data.quality.windows|rejectattr("success")|list|length }} with a failed expectation.</p>
{% set failing = data.quality.expectations|selectattr("failed_windows")|list %}
{% set passing = data.quality.expectations|rejectattr("failed_windows")|list %}
{% macro expectation_table(rows) %}
<table><thead><tr><th>source</th><th>check</th><th>expectation</th><th>severity</th>
<th class="num">windows</th><th class="num">failed in</th><th class="num">failing rows</th>
<th>failed windows</th></tr>
</thead><tbody>
{% for e in rows %}<tr><td>{{ e.source }}</td><td>{{ e.check }}</td>
<td><code>{{ e.expectation }}</code></td>
<td>{{ e.severity }}</td><td class="num">{{ e.windows }}</td>
{% set outcome = 'pass' if not e.failed_windows else ('fail' if e.severity == 'error' else 'warn') %}
<td class="num"><span class="status {{ outcome }}">{{ e.failed_windows }}</span></td>
<td class="num">{{ num(e.failing_rows) }}</td>
<td>{% for key, link in e.failed_links[:12] %}<a href="{{ link }}">{{ key }}</a>
{{ ", " if not loop.last }}{% endfor %}
{%- if e.failed_links|length > 12 %} <span class="muted">and {{ e.failed_links|length - 12 }}
more</span>{% endif %}</td></tr>
{% endfor %}</tbody></table>
{% endmacro %}
{% if failing %}<h3>Expectations that failed somewhere ({{ failing|length }})</h3>
{{ expectation_table(failing) }}
{% else %}<p class="note">Every expectation passed in every validated window.</p>{% endif %}
<details><summary>Expectations that passed everywhere ({{ passing|length }})</summary>
{{ expectation_table(passing) }}</details>
<details><summary>Every validated window ({{ data.quality.windows|length }})</summary>
<table><thead><tr><th>source</th><th>window</th><th>outcome</th><th class="num">rows</th>
<th class="num">expectations</th><th class="num">failed</th><th>validated at</th><th>detail</th>
</tr></thead><tbody>
{% for w in data.quality.windows %}<tr><td>{{ w.source }}</td><td>{{ w.window }}</td>
<td><span class="status {{ 'pass' if w.success else 'fail' }}">
{{- "passed" if w.success else "failed" }}</span></td>
<td class="num">{{ num(w.rows) }}</td><td class="num">{{ w.evaluated }}</td>
<td class="num">{{ w.failed }}</td>
<td>{{ w.validated_at or "" }}</td><td><a href="{{ w.html_link }}">report</a>
· <a href="{{ w.json_link }}">validation.json</a></td></tr>
{% endfor %}</tbody></table></details>
{% endif %}</section>

<section id="push"><h2>Push outcomes</h2>
{% if data.push_states is none %}<p class="note">No push yet: the outbox table does not exist.</p>
{% elif not data.push_states %}<p class="note">No push yet: the outbox is empty.</p>
{% else %}
<table><thead><tr><th>state</th><th class="num">customers</th></tr></thead><tbody>
{% for state, count in data.push_states %}<tr><td>{{ state }}</td>
<td class="num" data-state="{{ state }}">{{ num(count) }}</td></tr>
{% endfor %}</tbody></table>
{% endif %}</section>

<section id="identity"><h2>Identity classes</h2>
{% if data.identity is none %}<p class="note">No identity matching yet (customer_matches does not exist).</p>
{% else %}
<table><thead><tr><th>class</th><th class="num">pairs</th></tr></thead><tbody>
{% for cls, count in data.identity %}<tr><td>{{ cls }}</td>
<td class="num" data-class="{{ cls }}">{{ num(count) }}</td></tr>
{% endfor %}</tbody></table>
{% endif %}</section>

<section id="einvoice"><h2>E-invoice readiness</h2>
{% if data.einvoice is none or not data.einvoice.businesses %}<p class="note">No businesses to assess yet
(v_einvoice_readiness is missing or empty).</p>
{% else %}
<p><span data-ready="{{ data.einvoice.ready }}">{{ num(data.einvoice.ready) }}</span> of
{{ num(data.einvoice.businesses) }} businesses
({{ "%.1f"|format(100 * data.einvoice.share_ready) }} %) can receive an e-invoice today. Query
<code>v_einvoice_readiness</code> for who; the rest are held back by:</p>
<table><thead><tr><th>reason</th><th class="num">businesses</th><th>field to fix</th><th>rule</th></tr>
</thead><tbody>
{% for r in data.einvoice.reasons %}<tr><td>{{ r.reason }}</td>
<td class="num" data-reason="{{ r.reason }}">{{ num(r.businesses) }}</td><td>{{ r.field }}</td>
<td>{{ r.rule }}</td></tr>
{% endfor %}</tbody></table>
{% endif %}</section>
</body></html>
"""
