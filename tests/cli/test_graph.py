"""`itsm definitions graph`: every approval level, escalation step and task of the acme
policies is drawn, in order, with the right edges; the text is valid Mermaid flowchart
syntax (checked by a small statement parser here, and by Mermaid itself in
test_mermaid_render.py)."""

from __future__ import annotations

import html
import re

import pytest

from definitions import registry
from itsmflow.app.graph import graph
from tests.cli.test_cli_offline import itsm

ID = r"[A-Za-z][A-Za-z0-9_]*"
SHAPES = {'["': '"]', '("': '")', '(["': '"])', '{"': '"}', '{{"': '"}}', '[["': '"]]', '>"': '"]'}
RESERVED = {"end", "graph", "flowchart", "subgraph", "style", "class", "classdef", "click", "default", "direction"}
STATEMENTS = {
    "comment": re.compile(r"%% .*"),
    "subgraph": re.compile(rf'subgraph ({ID})\["([^"]*)"\]'),
    "direction": re.compile(r"direction (TB|TD|LR|RL|BT)"),
    "end": re.compile(r"end"),
    "edge": re.compile(rf'({ID}) (-->|-\.->|-\.-|==>)(?:\|"([^"]*)"\|)? ({ID})'),
    "classDef": re.compile(r"classDef (\w+) ([\w#:,. -]+)"),
    "class": re.compile(rf"class ({ID}(?:,{ID})*) (\w+)"),
    "node": re.compile(rf'({ID})(\[\["|\(\["|\{{\{{"|\["|\("|\{{"|>")([^"]*)("\]\]|"\]\)|"\}}\}}|"\]|"\)|"\}})'),
}


def decode(text: str) -> str:
    """A label as Mermaid shows it: entity codes (#quot; #35;) decoded, <br/> as newline."""
    return html.unescape(re.sub(r"#(\w+);", lambda m: f"&#{m[1]};" if m[1].isdigit() else f"&{m[1]};", text)
                         ).replace("<br/>", "\n")


def parse(text: str) -> dict:
    """Check every line is one flowchart statement and return what it declares: nodes
    (id → (opening, label)), subgraphs (id → (label, member ids)), edges (source, arrow,
    label, target) in order. Fails on any other line, an unclosed subgraph, an edge to
    something undeclared, a keyword id, or a label with raw markup."""
    lines = text.splitlines()
    assert re.fullmatch(r"flowchart (TD|LR)", lines[0]), lines[0]
    nodes, subgraphs, edges, open_graphs, classes = {}, {}, [], [], {}
    for line in lines[1:]:
        statement = line.strip()
        kind, match = next(((k, p.fullmatch(statement)) for k, p in STATEMENTS.items() if p.fullmatch(statement)),
                           (None, None))
        assert kind, f"not a flowchart statement: {line!r}"
        if kind == "node":
            node_id, opening, label, closing = match.groups()
            assert SHAPES[opening] == closing, line
            assert node_id not in nodes and node_id.lower() not in RESERVED, line
            nodes[node_id] = (opening, decode(label))
            for graph_id in open_graphs:
                subgraphs[graph_id][1].append(node_id)
        elif kind == "subgraph":
            subgraphs[match[1]] = (decode(match[2]), [])
            open_graphs.append(match[1])
        elif kind == "end":
            open_graphs.pop()
        elif kind == "edge":
            edges.append((match[1], match[2], decode(match[3] or ""), match[4]))
        elif kind == "class":
            classes[match[2]] = match[1].split(",")
        for label in re.findall(r'"([^"]*)"', statement):
            assert not re.search(r"[<>]", label.replace("<br/>", "")), line
            assert not re.search(r"#(?!\w+;)", label), line
    assert not open_graphs, "unclosed subgraph"
    declared = set(nodes) | set(subgraphs)
    assert all(e[0] in declared and e[3] in declared for e in edges), [e for e in edges if not {e[0], e[3]} <= declared]
    assert all(set(members) <= declared for members in classes.values())
    return {"nodes": nodes, "subgraphs": subgraphs, "edges": edges, "classes": classes}


@pytest.mark.parametrize("broken", [
    'flowchart TD\n    a["say "hi""]',
    'flowchart TD\n    a["x"}',
    'flowchart TD\n    a["<script>"]',
    'flowchart TD\n    subgraph g["g"]\n    a["x"]',
    'flowchart TD\n    a["x"]\n    a --> b',
    'flowchart TD\n    end["x"]',
    'flowchart TD\n    a["x"]\n    a -->|x| a',
    'graph TD\n    a["x"]',
])
def test_the_syntax_check_rejects_broken_flowcharts(broken):
    with pytest.raises(AssertionError):
        parse(broken)


def labelled(edges: list, source: str) -> list[tuple[str, str]]:
    return [(label, target) for s, _, label, target in edges if s == source]


@pytest.fixture(scope="module")
def change():
    return parse(graph(registry.get("acme-change")))


def test_change_states_in_order_with_exits(change):
    edges = [(s, label, t) for s, _, label, t in change["edges"]]
    for before, after in [("new", "assess"), ("assess", "authorize"), ("scheduled", "implement"),
                          ("implement", "review"), ("review", "closed")]:
        assert any(s == f"state_{before}" and t == f"state_{after}" for s, _, t in edges), (before, after)
    assert ("state_new", "standard", "state_scheduled") in edges
    assert [s for s, label, t in edges if t == "state_canceled"] == [
        "state_new", "state_assess", "state_authorize", "state_scheduled"]
    assert {t for s, label,
            t in edges if s.startswith("approval_") and label.startswith("rejected")} == {"state_rejected"}
    assert change["nodes"]["state_assess"][1] == (
        "assess\nrisk: critical-ci → high; outage → high; medium-ci → moderate; otherwise low")
    assert set(change["classes"]["exit"]) == {"refused", "state_rejected", "state_canceled"}


def test_change_window_gate_is_a_decision(change):
    opening, text = change["nodes"]["window_gate"]
    assert opening == '{"' and text == "normal change: inside a window\nand outside every blackout?"
    assert labelled(change["edges"], "window_gate") == [("yes", "state_new"), ("no", "refused")]
    assert change["nodes"]["calendar"][1].splitlines() == [
        "windows", "weeknight: mon-fri 22:00-04:00 UTC", "weekend: sat, sun 06:00-18:00 UTC",
        "blackouts", "fiscal-year-close: 2027-06-28 00:00 to 2027-07-03 00:00 UTC"]
    assert ("submit", "-->", "emergency: no window check", "state_new") in change["edges"]
    assert labelled(change["edges"], "standard") == [("inside the template's window", "state_new"),
                                                     ("outside it", "refused")]
    assert change["subgraphs"]["standard"][1] == ["template_restart_web_server", "template_rotate_tls_certificate"]


@pytest.mark.parametrize("risk, levels", [
    ("low", ["change-manager"]), ("moderate", ["change-manager", "cab"]), ("high", ["change-manager", "cab"]),
    ("emergency", ["ecab"]),
])
def test_change_approval_levels_per_risk_in_order(change, risk, levels):
    policy = registry.get("acme-change")
    chain = policy.emergency_approvals if risk == "emergency" else policy.approvals[risk]
    ids = [f"approval_{risk}_{n}" for n in range(1, len(levels) + 1)]
    title = "emergency" if risk == "emergency" else f"{risk} risk"
    assert ("state_authorize", "-->", title, ids[0]) in change["edges"]
    path = [(s, t) for s, _, label, t in change["edges"] if label == "approved" and s in ids]
    assert path == list(zip(ids, ids[1:] + ["state_scheduled"]))
    for node_id, level in zip(ids, chain.levels):
        assert change["nodes"][node_id][1].splitlines()[0] == f"{ids.index(node_id) + 1}. {level.name}"
    members = change["subgraphs"][f"approvals_{risk}"][1]
    assert [m for m in members if not m.endswith("_escalate")] == ids


def test_change_level_rules_timeouts_and_escalation_back_edge(change):
    assert change["nodes"]["approval_moderate_2"][1] == "2. cab\ngroup cab · quorum 2\ntimeout 2d"
    assert labelled(change["edges"], "approval_moderate_2") == [("rejected, or no answer in 2d", "state_rejected"),
                                                                ("approved", "state_scheduled")]
    assert change["nodes"]["approval_low_1"][1] == "1. change-manager\ngroup change-managers · any\ntimeout 1d"
    assert change["nodes"]["approval_low_1_escalate"] == ('{{"', "escalate to cab\nup to 2×")
    assert ("approval_low_1", "-.->", "no answer in 1d", "approval_low_1_escalate") in change["edges"]
    assert labelled(change["edges"], "approval_low_1_escalate") == [
        ("notify cab, wait 1d again", "approval_low_1"), ("after 2 escalations", "state_rejected")]
    assert change["nodes"]["approval_emergency_1_escalate"][1] == "escalate to cab\nup to 3×"


def test_demo_policy_moves_instead_of_refusing():
    demo = parse(graph(registry.get("acme-demo")))
    assert labelled(demo["edges"], "window_gate") == [
        ("yes", "state_new"), ("no: moved to the next free slot", "state_new"), ("no free slot in 90 days", "refused")]
    assert demo["nodes"]["calendar"][1] == "windows\nalways: always open"
    assert demo["nodes"]["approval_low_1"][1].endswith("timeout 30m")


def test_incident_escalation_steps_in_order_with_repeat_back_edge():
    policy = registry.get("acme-incident")
    drawn = parse(graph(policy))
    for escalation in policy.escalation_policies:
        key = "escalation_" + escalation.name.replace("-", "_")
        steps = [f"{key}_{n}" for n in range(1, 6)]
        assert drawn["subgraphs"][key] == (
            f"escalation policy {escalation.name} (group {escalation.group})", [f"{key}_start", *steps, f"{key}_done"])
        assert [drawn["nodes"][s][1] for s in steps] == [
            f"1. page on-call {escalation.steps[0].schedule}", f"2. notify group {escalation.group}",
            "3. outside business hours?", "4. notify group major-incident", "5. repeat from step 1, at most 2×"]
        assert drawn["nodes"][steps[2]][0] == '{"' and drawn["nodes"][steps[4]][0] == '{{"'
        assert [e for e in drawn["edges"] if e[0].startswith(key + "_")] == [
            (f"{key}_start", "-->", "", steps[0]),
            (steps[0], "-->", "after 15m", steps[1]),
            (steps[1], "-->", "after 15m", steps[2]),
            (steps[2], "-->", "yes", steps[3]),
            (steps[2], "-->", "no: skip step 4", steps[4]),
            (steps[3], "-->", "after 15m", steps[4]),
            (steps[4], "-.->", "repeat from step 1, at most 2×", steps[0]),
            (steps[4], "-->", "after 2 loops", f"{key}_done"),
        ]


def test_incident_priority_matrix_and_sla_targets():
    drawn = parse(graph(registry.get("acme-incident")))
    assert drawn["subgraphs"]["priorities"][1] == ["priority_P1", "priority_P2", "priority_P3", "priority_P4",
                                                   "notices"]
    assert drawn["nodes"]["priority_P2"][1] == "P2 · impact/urgency 1/2, 2/1\nrespond 30m · resolve 8h\ncalendar 24x7"
    assert drawn["nodes"]["priority_P4"][1] == ("P4 · impact/urgency any other\nrespond 8h · resolve 1d\n"
                                                "calendar business")
    assert drawn["nodes"]["notices"][1] == ("SLA notices\n50%: assignee\n75%: assignee, group\n"
                                            "100%: assignee, group, escalation")


@pytest.fixture(scope="module")
def catalog():
    return parse(graph(registry.get("acme-catalog")))


def test_catalog_every_item_and_task_with_kind(catalog):
    definition = registry.get("acme-catalog")
    assert [g for g in catalog["subgraphs"]] == [f"item_{i.name.replace('-', '_')}" for i in definition.items]
    shapes = {"manual": '["', "automated": '[["', "notify": '>"'}
    for item in definition.items:
        key = f"item_{item.name.replace('-', '_')}"
        for task in item.tasks:
            node_id = f"{key}_task_{task.name.replace('-', '_')}"
            opening, text = catalog["nodes"][node_id]
            assert opening == shapes[task.kind.value]
            assert text.startswith(f"{task.name}: {task.title}\n{task.kind.value}")
            assert node_id in catalog["classes"][task.kind.value] and node_id in catalog["subgraphs"][key][1]
    record_asset = catalog["nodes"]["item_laptop_task_record_asset"][1]
    assert record_asset.endswith("automated record_asset · fallback service-desk")


def test_catalog_task_dag_and_approval_before_fulfillment(catalog):
    edges = [(s, label, t) for s, _, label, t in catalog["edges"]]
    assert [e for e in edges if e[0].startswith("item_laptop_")] == [
        ("item_laptop_request", "", "item_laptop_task_prepare"),
        ("item_laptop_task_prepare", "", "item_laptop_task_record_asset"),
        ("item_laptop_task_record_asset", "", "item_laptop_fulfilled")]
    assert [e for e in edges if e[0].startswith("item_vpn_access_")] == [
        ("item_vpn_access_request", "", "item_vpn_access_approval_1"),
        ("item_vpn_access_approval_1", "rejected, or no answer in 2d", "item_vpn_access_rejected"),
        ("item_vpn_access_approval_1", "approved", "item_vpn_access_task_grant"),
        ("item_vpn_access_task_grant", "", "item_vpn_access_fulfilled"),
        ("item_vpn_access_fulfilled", "after duration days", "item_vpn_access_expired")]
    assert catalog["nodes"]["item_db_access_approval_when"] == ('{"', "role is write?")
    assert [e for e in edges if e[0] == "item_db_access_approval_when"] == [
        ("item_db_access_approval_when", "approval needed", "item_db_access_approval_1"),
        ("item_db_access_approval_when", "no approval needed", "item_db_access_task_grant")]


def test_bundle_item_dag_links_each_item_plan():
    drawn = parse(graph(registry.get("acme-catalog"), "onboarding"))
    assert list(drawn["subgraphs"]) == ["item_onboarding", "item_account", "item_laptop", "item_vpn_access",
                                        "item_welcome"]
    entry = "item_onboarding_entry_"
    assert [(s.removeprefix(entry), t.removeprefix(entry)) for s, arrow, _, t in drawn["edges"]
            if s.startswith("item_onboarding_") and arrow == "-->"] == [
        ("item_onboarding_request", "account"), ("account", "laptop"), ("account", "vpn_access"),
        ("laptop", "welcome"), ("vpn_access", "welcome"), ("welcome", "item_onboarding_fulfilled")]
    assert (f"{entry}vpn_access", "-.->", "its plan", "item_vpn_access") in drawn["edges"]
    assert "item_db_access" not in drawn["subgraphs"]


def test_user_text_is_escaped_and_round_trips():
    definition = registry.get("acme-catalog")
    nasty = 'Laptop "pro" [16"] <b>#1</b>; end\n%% click x'
    laptop = definition.item("laptop").model_copy(update={"title": nasty})
    hostile = definition.model_copy(update={"items": [laptop], "description": "line one\nflowchart LR"})
    text = graph(hostile)
    drawn = parse(text)
    assert drawn["subgraphs"]["item_laptop"][0] == f"laptop: {' '.join(nasty.split())}\nSLA 16h (business)"
    assert sum(line.startswith("flowchart") for line in text.splitlines()) == 1


def test_problem_suggestion_states_and_resolving_change():
    policy = registry.get("acme-problem")
    drawn = parse(graph(policy))
    edges = [(s, label, t) for s, _, label, t in drawn["edges"]]
    assert drawn["nodes"]["suggest"][1] == f"{policy.suggest_after} incidents on the CI\nwithin 7d?"
    assert ("suggest", "yes: suggested, incidents linked", "state_new") in edges
    assert ("incident", "the CI has an open problem", "join") in edges
    for before, after in [("new", "investigating"), ("investigating", "known_error"), ("resolved", "closed")]:
        assert any(s == f"state_{before}" and t == f"state_{after}" for s, _, t in edges), (before, after)
    assert ("change", "closed successful", "state_resolved") in edges
    assert [s for s, _, t in edges if t == "state_resolved"] == ["change", "state_investigating", "state_known_error"]
    assert [s for s, _, t in edges if t == "state_canceled"] == ["state_new", "state_investigating",
                                                                 "state_known_error"]


def test_output_is_deterministic():
    for name in ("acme-change", "acme-demo", "acme-incident", "acme-catalog", "acme-problem"):
        assert graph(registry.get(name)) == graph(registry.get(name))


KNOWN = "acme, acme-catalog, acme-change, acme-demo, acme-incident, acme-problem"


def test_cli_graph_and_its_errors():
    shown = itsm("definitions", "graph", "acme-incident")
    assert shown.returncode == 0 and shown.stdout == graph(registry.get("acme-incident"))
    assert itsm("definitions", "graph", "acme-catalog", "laptop").stdout == graph(registry.get("acme-catalog"),
                                                                                  "laptop")
    for args, message in [
        (["acme"], "itsm: acme is an organisation: graph takes a catalog, change-policy, incident-policy or "
                   "problem-policy"),
        (["nope"], f"itsm: unknown definition 'nope' (known: {KNOWN})"),
        (["laptop"], f"itsm: unknown definition 'laptop' (known: {KNOWN}) (an item of acme-catalog: itsm definitions "
                     "graph acme-catalog laptop)"),
        (["acme-change", "laptop"], "itsm: acme-change is a change-policy: ITEM applies to a catalog only"),
        (["acme-catalog", "nope"], "itsm: unknown item 'nope' in catalog acme-catalog (known: laptop, vpn-access, "
                                   "db-access, account, welcome, onboarding)"),
    ]:
        result = itsm("definitions", "graph", *args)
        assert (result.returncode, result.stdout, result.stderr) == (2, "", message + "\n"), args
