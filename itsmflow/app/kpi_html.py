"""The KPI report as one self-contained HTML file: inline CSS, inline SVG charts from
itsmflow/app/kpi_charts.py, the figures as tables. Rendered in a sandboxed jinja2 environment with
autoescape on, so names from definitions (priorities, states) can never inject markup."""

from __future__ import annotations

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from itsmflow.app.kpi_charts import BASE, LEFT, RIGHT, WIDTH, charts
from itsmflow.app.kpi_render import duration, excluded_summary, share
from itsmflow.app.kpis import AGE_BUCKETS

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>itsmflow KPIs {{ window.since }} to {{ window.until }}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1f2937;background:#fff}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;border-bottom:1px solid #e5e7eb;text-align:right}
td:first-child,th:first-child{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0;border:1px solid #e5e7eb;padding:8px}
figcaption{font-weight:600;margin-bottom:4px}svg text{font-size:11px;fill:#4b5563}
.grid{stroke:#e5e7eb}.axis{stroke:#9ca3af}svg .line{fill:none;stroke-width:2}
.legend span{display:inline-block;margin-right:12px}.legend svg{margin-right:4px}
.opened{fill:#2563eb;stroke:#2563eb}.resolved{fill:#16a34a;stroke:#16a34a}
.response{fill:#2563eb}.resolution{fill:#9333ea}
.outcome-successful{fill:#16a34a}.outcome-failed{fill:#dc2626}.outcome-backed-out{fill:#f59e0b}
.outcome-rejected{fill:#6b7280}.outcome-canceled{fill:#9ca3af}
</style></head>
<body>
<h1>itsmflow KPIs</h1>
<p>Runs opened from {{ window.since }} to {{ window.until }}; backlog at {{ backlog.as_of }}.</p>
<div class="charts">
{% for chart in charts %}
<figure id="{{ chart.id }}" class="chart">
<figcaption>{{ chart.title }}</figcaption>
<svg xmlns="http://www.w3.org/2000/svg" width="{{ chart.width }}" height="{{ chart.height }}"
     viewBox="0 0 {{ chart.width }} {{ chart.height }}" role="img" aria-label="{{ chart.title }}">
{%- for y, label in chart.grid %}
<line class="grid" x1="{{ left }}" x2="{{ right }}" y1="{{ y }}" y2="{{ y }}"/>
<text x="{{ left - 6 }}" y="{{ y + 4 }}" text-anchor="end">{{ label }}</text>
{%- endfor %}
<line class="axis" x1="{{ left }}" x2="{{ right }}" y1="{{ base }}" y2="{{ base }}"/>
{%- for css, points in chart.lines %}
<polyline class="line {{ css }}" points="{{ points }}"/>
{%- endfor %}
{%- for m in chart.marks %}
{%- if m.kind == "rect" %}
<rect class="mark {{ m.css }}" x="{{ m.x }}" y="{{ m.y }}" width="{{ m.w }}" height="{{ m.h }}">
<title>{{ m.tip }}</title></rect>
{%- else %}
<circle class="mark {{ m.css }}" cx="{{ m.x }}" cy="{{ m.y }}" r="{{ m.w }}"><title>{{ m.tip }}</title></circle>
{%- endif %}
{%- endfor %}
{%- for x, y, anchor, text in chart.labels %}
<text x="{{ x }}" y="{{ y }}" text-anchor="{{ anchor }}">{{ text }}</text>
{%- endfor %}
</svg>
{%- if chart.legend %}
<div class="legend">
{%- for css, text in chart.legend %}
<span><svg width="10" height="10"><rect class="{{ css }}" width="10" height="10"/></svg>{{ text }}</span>
{%- endfor %}
</div>
{%- endif %}
</figure>
{% endfor %}
</div>
<h2>Incidents</h2>
<table><tr><th>priority</th><th>opened</th><th>acknowledged</th><th>resolved</th><th>MTTA</th><th>MTTR</th>
<th>response SLA</th><th>resolution SLA</th></tr>
{% for name, f in incident_rows %}<tr><td>{{ name }}</td><td>{{ f.opened }}</td><td>{{ f.acknowledged }}</td>
<td>{{ f.resolved }}</td><td>{{ duration(f.mtta_seconds) }}</td><td>{{ duration(f.mttr_seconds) }}</td>
<td>{{ share(f.response_sla.compliance_percent) }}</td><td>{{ share(f.resolution_sla.compliance_percent) }}</td></tr>
{% endfor %}</table>
<h2>Changes</h2>
<p>{{ changes.total }} changes, {{ changes.open }} open; success rate {{ share(changes.success_rate_percent) }};
emergency share {{ share(changes.emergency_share_percent) }}.</p>
<table><tr>{% for name in changes.outcomes %}<th>{{ name }}</th>{% endfor %}</tr>
<tr>{% for count in changes.outcomes.values() %}<td>{{ count }}</td>{% endfor %}</tr></table>
<h2>Requests</h2>
<p>{{ requests.total }} requests, {{ requests.open }} open; fulfillment time p50
{{ duration(requests.fulfillment_seconds.p50) }}, p90 {{ duration(requests.fulfillment_seconds.p90) }}
({{ requests.fulfillment_seconds.count }} fulfilled); item fulfillment SLA
{{ share(requests.item_fulfillment_sla.compliance_percent) }}.</p>
<h2>Backlog</h2>
<table id="backlog"><tr><th>process</th><th>state</th>
{%- for b in buckets %}<th>{{ b }}</th>{% endfor %}<th>total</th></tr>
{%- for process, figures in backlog.by_process.items() %}{% for state, ages in figures.by_state.items() %}
<tr><td>{{ process }}</td><td>{{ state }}</td>
{%- for b in buckets %}<td>{{ ages[b] }}</td>{% endfor %}<td>{{ ages.total }}</td></tr>
{%- endfor %}{% endfor %}
</table>
<p id="excluded">Excluded: {{ excluded_text or "none" }}</p>
</body></html>
"""

_ENVIRONMENT = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)
_TEMPLATE = _ENVIRONMENT.from_string(PAGE)


def render_html(report: dict) -> str:
    incidents = report["incidents"]
    return _TEMPLATE.render(
        **report, charts=charts(report), left=LEFT, right=WIDTH - RIGHT, base=BASE,
        incident_rows=[*incidents["by_priority"].items(), ("all", incidents["all"])],
        buckets=[name for name, _ in AGE_BUCKETS], duration=duration, share=share,
        excluded_text=excluded_summary(report),
    )
