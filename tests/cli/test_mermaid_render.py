"""The Mermaid we print, rendered by Mermaid itself (its browser bundle, in headless
Chromium, no network): every policy graph and run gantt parses, and what is drawn is what
the text declares (each node with its label, each edge, each gantt bar).

The bundle is `mermaid.min.js` from the npm package `mermaid` (the version `.ci/run` pins),
found at $ITSM_MERMAID_JS or .ci/cache/mermaid@VERSION.min.js, where `.ci/run` fetches it. Skips without it or without
chromium unless ITSM_REQUIRE_BROWSER=1 (CI)."""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from definitions import registry
from itsmflow.app.graph import graph
from itsmflow.app.timeline import render_gantt, timeline_entries
from tests.cli.test_graph import parse
from tests.cli.test_kpi_html import browse, chromium  # noqa: F401  (fixture)
from tests.cli.test_timeline import CHANGE_ROWS, REQUEST_ROWS

RENDER = r"""<script>
mermaid.initialize({startOnLoad: false, securityLevel: 'strict'});
(async () => {
  const results = [];
  for (const [i, source] of SOURCES.entries()) {
    try {
      const {svg} = await mermaid.render('diagram' + i, source);
      const holder = document.createElement('div');
      holder.innerHTML = svg;
      document.body.append(holder);
      const text = node => {  // SVG <text> or HTML labels: every line, space-separated
        const copy = node.cloneNode(true);
        copy.querySelectorAll('br').forEach(br => br.replaceWith(' '));
        copy.querySelectorAll('text, tspan, p, div, span').forEach(e => e.append(' '));
        return copy.textContent.replace(/\s+/g, ' ').trim();
      };
      results.push({
        ok: true,
        nodes: [...holder.querySelectorAll('g.node')].map(n => ({id: n.id, text: text(n)})),
        clusters: [...holder.querySelectorAll('g.cluster')].map(c => text(c)),
        edges: holder.querySelectorAll('path.flowchart-link').length,
        bars: [...holder.querySelectorAll('rect.task:not(.milestone)')]
          .map(r => ({id: r.id, width: r.getBBox().width})),
        milestones: holder.querySelectorAll('rect.milestone').length,
      });
    } catch (error) {
      results.push({ok: false, error: String(error && error.message || error)});
    }
  }
  document.body.dataset.results = JSON.stringify(results);
})();
</script>"""


@pytest.fixture(scope="module")
def mermaid_js() -> Path:
    cached = sorted((Path(__file__).parents[2] / ".ci/cache").glob("mermaid@*.min.js"))
    found = Path(os.environ.get("ITSM_MERMAID_JS") or (cached[-1] if cached else "-"))
    if found.is_file():
        return found
    if os.environ.get("ITSM_REQUIRE_BROWSER") == "1":
        pytest.fail("ITSM_REQUIRE_BROWSER=1 but ITSM_MERMAID_JS does not name mermaid.min.js (.ci/run fetches it)")
    pytest.skip("ITSM_MERMAID_JS is not set (mermaid.min.js from `npm pack mermaid@11`); ITSM_REQUIRE_BROWSER=1 "
                "makes this fail")


class Body(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.results: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.results = dict(attrs).get("data-results", self.results)


def render(chromium: str, mermaid_js: Path, tmp_path: Path, sources: list[str]) -> list[dict]:
    """Mermaid's own rendering of each source, in one page."""
    page = tmp_path / "mermaid.html"
    page.write_text("<!doctype html><html><head><meta charset='utf-8'></head><body>"
                    f"<script>{mermaid_js.read_text(encoding='utf-8')}</script>"
                    f"<script>const SOURCES = {json.dumps(sources)};</script>{RENDER}</body></html>",
                    encoding="utf-8")
    body = Body()
    body.feed(browse(chromium, tmp_path / "profile", page, "--dump-dom", "--virtual-time-budget=30000"))
    assert body.results, "the page never finished rendering"
    return json.loads(body.results)


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


POLICIES = ["acme-change", "acme-demo", "acme-incident", "acme-problem", "acme-catalog"]


def test_policy_graphs_render_as_declared(chromium, mermaid_js, tmp_path):  # noqa: F811
    sources = [graph(registry.get(name)) for name in POLICIES] + [graph(registry.get("acme-catalog"), "onboarding")]
    results = render(chromium, mermaid_js, tmp_path, sources)
    for source, result in zip(sources, results):
        title = source.splitlines()[1]
        assert result["ok"], (title, result.get("error"))
        declared = parse(source)
        drawn = {re.sub(r"^diagram\d+-flowchart-|-\d+$", "", node["id"]): node["text"] for node in result["nodes"]}
        assert set(drawn) == set(declared["nodes"]), (title, set(drawn) ^ set(declared["nodes"]))
        for node_id, (_, label) in declared["nodes"].items():
            assert words(drawn[node_id]) == words(label), (title, node_id, drawn[node_id], label)
        assert result["edges"] == len(declared["edges"]), title
        assert sorted(map(words, result["clusters"])) == sorted(words(label) for label, _ in
                                                                 declared["subgraphs"].values()), title


def test_a_broken_graph_is_reported_not_drawn(chromium, mermaid_js, tmp_path):  # noqa: F811
    """The check above can fail: Mermaid refuses what its grammar does not accept."""
    [result] = render(chromium, mermaid_js, tmp_path, ['flowchart TD\n    a["x"] --> end'])
    assert not result["ok"] and result["error"]


def test_run_gantts_render_one_bar_per_state(chromium, mermaid_js, tmp_path):  # noqa: F811
    gantts = [render_gantt(timeline_entries(CHANGE_ROWS)), render_gantt(timeline_entries(REQUEST_ROWS))]
    for gantt, result in zip(gantts, render(chromium, mermaid_js, tmp_path, gantts)):
        assert result["ok"], result.get("error")
        tasks = [line for line in gantt.splitlines() if line.startswith("        ")]
        milestones = [line for line in tasks if ":milestone," in line]
        assert len(result["bars"]) == len(tasks) - len(milestones)
        assert result["milestones"] == len(milestones) > 0
        assert any(bar["width"] > 0 for bar in result["bars"])
