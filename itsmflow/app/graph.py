"""`itsm definitions graph`: a policy as a Mermaid flowchart, so a process owner can see
what a definition will do before a run snapshots it. Pure functions over the definition
models (no Temporal, no I/O); node ids derive from names, so the output is deterministic
and diffs between policy versions stay small."""

from __future__ import annotations

from datetime import timezone

from definitions.approvals import ApprovalChain, ApprovalLevel, ApprovalRule, TimeoutAction
from definitions.base import format_duration as _duration
from definitions.catalog import Catalog, CatalogItem, TaskKind
from definitions.change import ChangePolicy, ConflictAction, Risk, WindowViolation
from definitions.incident import EscalationPolicy, EscalationStep, IncidentPolicy, Priority, StepKind
from definitions.problem import ProblemPolicy
from definitions.windows import MaintenanceWindow, Weekday
from itsmflow.app.mermaid import Flowchart, label

CHANGE_STATES = ["new", "assess", "authorize", "scheduled", "implement", "review", "closed"]
CANCELABLE = ["new", "assess", "authorize", "scheduled"]
PROBLEM_STATES = ["new", "investigating", "known_error", "resolved", "closed"]


class GraphError(ValueError):
    """The definition has no picture, or ITEM names nothing in it (exit 2)."""


def item_hint(name: str, definitions: dict) -> str:
    """For an unknown NAME that is a catalog item: the command that draws it."""
    owners = [d.name for d in definitions.values() if isinstance(d, Catalog) and d.item(name)]
    return f" (an item of {owners[0]}: itsm definitions graph {owners[0]} {name})" if owners else ""


def graph(definition, item: str | None = None) -> str:
    """The Mermaid flowchart of a definition, drawn by the process whose declaration names its
    kind and a `graph` (`item`: only that catalog item, with the items a bundle is made of)."""
    from itsmflow.process import resolve
    from itsmflow.processes import processes

    drawers = {kind: p.graph for p in processes() if p.graph for kind in p.definitions}
    if definition.kind not in drawers:
        names = sorted(drawers)
        kinds = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)
        raise GraphError(f"{definition.name} is {'an' if definition.kind[0] in 'aeiou' else 'a'} {definition.kind}: "
                         f"graph takes a {kinds}")
    return resolve(drawers[definition.kind])(definition, item)


def _whole(definition, item: str | None) -> None:
    if item is not None:
        raise GraphError(f"{definition.name} is a {definition.kind}: ITEM applies to a catalog only")


def _days(days: list[Weekday]) -> str:
    """`mon-fri`, `sat, sun`: runs of three or more weekdays are written as a range."""
    order = list(Weekday)
    numbers = sorted(order.index(d) for d in days)
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ", ".join(f"{order[r[0]].value}-{order[r[-1]].value}" if len(r) >= 3
                     else ", ".join(order[n].value for n in r) for r in runs)


def _window(window: MaintenanceWindow) -> str:
    if window.always_open:
        return f"{window.name}: always open"
    return f"{window.name}: {_days(window.days)} {window.start:%H:%M}-{window.end:%H:%M} {window.timezone}"


def _rule(level: ApprovalLevel) -> str:
    return f"quorum {level.quorum}" if level.rule == ApprovalRule.QUORUM else level.rule.value


def approval_chain(chart: Flowchart, key: str, chain: ApprovalChain, entry: tuple[str, str],
                   approved: list[str], rejected: str) -> None:
    """Levels in order: `entry` (node id, edge text) leads to level 1, each approval to the next
    level, the last to every node in `approved`; a rejection, or a timeout past its
    escalations, to `rejected`."""
    source, text = entry
    for number, level in enumerate(chain.levels, start=1):
        node = chart.node(f"{key}.{number}", label(f"{number}. {level.name}", f"group {level.group} · {_rule(level)}",
                                                   f"timeout {_duration(level.timeout)}"), css="human")
        chart.edge(source, node, text)
        if level.on_timeout == TimeoutAction.REJECT:
            chart.edge(node, rejected, f"rejected, or no answer in {_duration(level.timeout)}")
        else:
            chart.edge(node, rejected, "rejected")
            escalation = chart.node(f"{key}.{number}.escalate",
                                    label(f"escalate to {level.escalate_to}", f"up to {level.max_escalations}×"),
                                    "hexagon")
            chart.edge(node, escalation, f"no answer in {_duration(level.timeout)}", "dotted")
            chart.edge(escalation, node, f"notify {level.escalate_to}, wait {_duration(level.timeout)} again", "dotted")
            chart.edge(escalation, rejected, f"after {level.max_escalations} escalations", "dotted")
        source, text = node, "approved"
    for target in approved:
        chart.edge(source, target, text)


def change_graph(policy: ChangePolicy, item: str | None = None) -> str:
    """States new → … → closed with the rejected and canceled exits; the submit gates (window
    and blackout for normal changes, the template for standard ones); per risk class and for
    emergencies, the approval levels between authorize and scheduled."""
    _whole(policy, item)
    chart = Flowchart()
    chart.comment(f"change policy {policy.name} v{policy.version}: {policy.description}")
    submit = chart.node("submit", label("submit"), "stadium")
    gate = chart.node("window_gate", label("normal change: inside a window", "and outside every blackout?"),
                      "decision")
    calendar = chart.node("calendar", label(
        "windows", *(_window(w) for w in policy.windows),
        *(["blackouts"] if policy.blackouts else []),
        *(f"{b.name}: {b.start.astimezone(timezone.utc):%Y-%m-%d %H:%M} to "
          f"{b.end.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC" for b in policy.blackouts),
    ), css="note")
    refused = chart.node("refused", label("refused at submit"), "stadium", css="exit")
    risk_lines = [f"{r.name} → {r.risk.value}" for r in policy.risk_rules] + [f"otherwise {policy.default_risk.value}"]
    states = {name: chart.node(f"state.{name}", label(name, *(["risk: " + "; ".join(risk_lines)]
                                                             if name == "assess" else [])), css="state")
              for name in CHANGE_STATES}
    rejected = chart.node("state.rejected", label("rejected"), css="exit")
    canceled = chart.node("state.canceled", label("canceled"), css="exit")
    with chart.subgraph("standard", label("standard: pre-approved templates")) as standard:
        for template in policy.templates:
            chart.node(f"template.{template.name}", label(
                template.name, f"window {template.window} · at most {_duration(template.max_duration)}",
                f"CIs {', '.join(template.cis)}" if template.cis else "any CI"), css="note")
        if not policy.templates:
            chart.node("template.none", label("no templates: standard changes are refused"), css="note")
    chart.edge(submit, gate, "normal")
    chart.edge(calendar, gate, style="link")
    chart.edge(gate, states["new"], "yes")
    if policy.outside_window == WindowViolation.MOVE:
        chart.edge(gate, states["new"], "no: moved to the next free slot")
    chart.edge(gate, refused, "no" if policy.outside_window == WindowViolation.REJECT else "no free slot in 90 days")
    chart.edge(submit, states["new"], "emergency: no window check")
    chart.edge(submit, standard, "standard")
    chart.edge(standard, states["new"], "inside the template's window")
    chart.edge(standard, refused, "outside it")
    chart.edge(states["new"], states["assess"], "normal, emergency")
    chart.edge(states["new"], states["scheduled"], "standard")
    if policy.conflicts == ConflictAction.BLOCK:
        chart.edge(states["assess"], rejected, "conflicting change")
    chart.edge(states["assess"], states["authorize"])
    chains = [(f"{risk.value} risk", risk.value, policy.approvals[risk]) for risk in Risk]
    chains.append(("emergency", "emergency", policy.emergency_approvals))
    for title, key, chain in chains:
        with chart.subgraph(f"approvals.{key}", label(f"approvals: {title}")):
            approval_chain(chart, f"approval.{key}", chain, (states["authorize"], title), [states["scheduled"]],
                           rejected)
    chart.edge(states["scheduled"], states["implement"], "planned start")
    chart.edge(states["implement"], states["review"], "complete")
    chart.edge(states["review"], states["closed"], "close code = outcome")
    for name in CANCELABLE:
        chart.edge(states[name], canceled, "cancel", "dotted")
    return chart.render()


def _step_text(step: EscalationStep) -> str:
    texts = {
        StepKind.NOTIFY_USER: lambda: f"notify user {step.user}",
        StepKind.NOTIFY_GROUP: lambda: f"notify group {step.group}" + (" (round robin)" if step.round_robin else ""),
        StepKind.NOTIFY_ON_CALL: lambda: f"page on-call {step.schedule}",
        StepKind.WEBHOOK: lambda: f"webhook {step.url}",
        StepKind.WAIT: lambda: f"wait {_duration(step.duration) if step.duration else '-'}",  # set: validated
        StepKind.REPEAT: lambda: f"repeat from step {step.from_step}, at most {step.max_loops}×",
        StepKind.IF_TIME_BETWEEN: lambda: f"{step.when} {step.calendar} hours?",
    }
    return texts[step.kind]()


def escalation_steps(chart: Flowchart, policy: EscalationPolicy) -> None:
    """Steps in order, each leading to the next after its delay. A time condition runs the
    next step only when it holds and otherwise skips it; a repeat jumps back to its step
    until its loops are spent. Acknowledging stops the whole chain."""
    key = f"escalation.{policy.name}"
    shapes = {StepKind.IF_TIME_BETWEEN: "decision", StepKind.REPEAT: "hexagon"}
    start = chart.node(f"{key}.start", label(f"assigned to {policy.group}", "until acknowledged"), "stadium")
    nodes = [chart.node(f"{key}.{number}", label(f"{number}. {_step_text(step)}"), shapes.get(step.kind, "box"))
             for number, step in enumerate(policy.steps, start=1)]
    done = chart.node(f"{key}.done", label("escalation exhausted"), "stadium", css="exit")

    def step(number: int) -> str:
        return nodes[number - 1] if number <= len(nodes) else done

    chart.edge(start, nodes[0])
    for number, current in enumerate(policy.steps, start=1):
        node = nodes[number - 1]
        if current.kind == StepKind.IF_TIME_BETWEEN:
            chart.edge(node, step(number + 1), "yes")
            chart.edge(node, step(number + 2), f"no: skip step {number + 1}" if number < len(nodes) else "no")
        elif current.kind == StepKind.REPEAT and current.from_step is not None:  # set: validated
            chart.edge(node, step(current.from_step),
                       f"repeat from step {current.from_step}, at most {current.max_loops}×", "dotted")
            chart.edge(node, step(number + 1), f"after {current.max_loops} loops")
        else:
            chart.edge(node, step(number + 1), f"after {_duration(current.delay)}" if current.delay else "")


def incident_graph(policy: IncidentPolicy, item: str | None = None) -> str:
    """The priority matrix with each priority's SLA targets, the SLA notices, and per
    assignment group its escalation policy's steps."""
    _whole(policy, item)
    chart = Flowchart()
    chart.comment(f"incident policy {policy.name} v{policy.version}: {policy.description}")
    with chart.subgraph("priorities", label("priority (impact/urgency) and SLA targets"), "LR"):
        for priority in Priority:
            cells = sorted(k for k, v in policy.priority_matrix.items() if v == priority)
            if priority == policy.default_priority:
                cells.append("any other")
            targets = policy.sla[priority]
            chart.node(f"priority.{priority.value}", label(
                f"{priority.value} · impact/urgency {', '.join(cells) or 'none'}",
                f"respond {_duration(targets.response)} · resolve {_duration(targets.resolution)}",
                f"calendar {targets.calendar}"), css="note")
        chart.node("notices", label("SLA notices", *(f"{n.percent}%: {', '.join(t.value for t in n.to)}"
                                                     for n in policy.sla_notices)), css="note")
    for escalation in policy.escalation_policies:
        with chart.subgraph(f"escalation.{escalation.name}",
                            label(f"escalation policy {escalation.name} (group {escalation.group})")):
            escalation_steps(chart, escalation)
    return chart.render()


def problem_graph(policy: ProblemPolicy, item: str | None = None) -> str:
    """How a problem opens (by hand, or suggested by recurring incidents on one CI), its
    states, and the change whose successful close resolves it."""
    _whole(policy, item)
    chart = Flowchart()
    chart.comment(f"problem policy {policy.name} v{policy.version}: {policy.description}")
    incident = chart.node("incident", label("incident opens on a CI", "the CI's known errors shown on it"), "stadium")
    suggest = chart.node("suggest", label(f"{policy.suggest_after} incidents on the CI",
                                          f"within {_duration(policy.suggest_window)}?"), "decision")
    join = chart.node("join", label("linked to the CI's open problem",
                                    f"at most {policy.link_limit}, later ones in the CMDB only"))
    by_hand = chart.node("by_hand", label("opened by hand", f"{policy.manager_group} or the CI's owners"),
                         "stadium", css="human")
    states = {state: chart.node(f"state.{state}", label(state), "round", css="state") for state in PROBLEM_STATES}
    canceled = chart.node("state.canceled", label("canceled"), "round", css="exit")
    change = chart.node("change", label("change raised with --problem"), "subroutine", css="human")
    notify = chart.node("notify", label("known error sent to", ", ".join(policy.known_error_groups) or "nobody"),
                        "flag", css="notify")
    chart.edge(incident, join, "the CI has an open problem")
    chart.edge(incident, suggest, "no open problem")
    chart.edge(suggest, states["new"], "yes: suggested, incidents linked")
    chart.edge(by_hand, states["new"])
    chart.edge(states["new"], states["investigating"], "investigate / root cause")
    chart.edge(states["investigating"], states["known_error"], "known error + workaround")
    chart.edge(states["known_error"], notify, style="dotted")
    chart.edge(states["known_error"], change, "fix")
    chart.edge(states["investigating"], change, "fix")
    chart.edge(change, states["resolved"], "closed successful")
    chart.edge(states["investigating"], states["resolved"], "resolve")
    chart.edge(states["known_error"], states["resolved"], "resolve")
    chart.edge(states["resolved"], states["closed"], f"close ({policy.manager_group})")
    for state in ("new", "investigating", "known_error"):
        chart.edge(states[state], canceled, f"cancel ({policy.manager_group})", style="dotted")
    return chart.render()


def catalog_graph(catalog: Catalog, item: str | None = None) -> str:
    """Each item's plan: request, approvals (conditional ones behind a decision), the task
    DAG by `after`, fulfilled. A bundle shows its items' DAG, each linked to that item's plan."""
    if item is not None and catalog.item(item) is None:
        raise GraphError(f"unknown item {item!r} in catalog {catalog.name} "
                         f"(known: {', '.join(i.name for i in catalog.items)})")
    chart = Flowchart()
    chart.comment(f"catalog {catalog.name} v{catalog.version}: {catalog.description}")
    for entry in _items(catalog, item):
        with chart.subgraph(f"item.{entry.name}", label(
                f"{entry.name}: {entry.title}", f"SLA {_duration(entry.sla)} ({entry.calendar})")):
            _item_plan(chart, entry)
    return chart.render()


def _items(catalog: Catalog, name: str | None) -> list[CatalogItem]:
    """All items, or `name` followed by the items its bundle is made of (depth first)."""
    if name is None:
        return list(catalog.items)
    found: list[CatalogItem] = []

    def add(item_name: str) -> None:
        item = catalog.item(item_name)
        if item is not None and item not in found:
            found.append(item)
            for entry in item.bundle:
                add(entry.item)

    add(name)
    return found


def _item_plan(chart: Flowchart, item: CatalogItem) -> None:
    """request → approvals → the tasks (or bundle items) by `after` → fulfilled: a step with no
    `after` starts once approved, a step nothing waits for leads to fulfilled."""
    key = f"item.{item.name}"
    request = chart.node(f"{key}.request", label("request"), "stadium")
    shapes = {TaskKind.MANUAL: "box", TaskKind.AUTOMATED: "subroutine", TaskKind.NOTIFY: "flag"}
    steps: dict[str, tuple[str, list[str]]] = {}
    for task in item.tasks:
        does = (f"automated {task.action} · fallback {task.group}" if task.kind == TaskKind.AUTOMATED
                else f"{task.kind.value} · {task.group or 'no group'}")
        node = chart.node(f"{key}.task.{task.name}", label(f"{task.name}: {task.title}", does), shapes[task.kind],
                          css=task.kind.value)
        steps[task.name] = (node, task.after)
    for entry in item.bundle:
        node = chart.node(f"{key}.entry.{entry.item}", label(f"item {entry.item}"), "subroutine", css="note")
        steps[entry.item] = (node, entry.after)
        chart.edge(node, chart.id_for(f"item.{entry.item}"), "its plan", "dotted")
    fulfilled = chart.node(f"{key}.fulfilled", label("fulfilled"), "stadium", css="state")
    roots = [node for node, after in steps.values() if not after]
    sources: list[tuple[str, str]] = [(request, "")]
    if item.approval is not None:
        rejected = chart.node(f"{key}.rejected", label("rejected"), "stadium", css="exit")
        if item.approval_when is not None:
            condition = chart.node(f"{key}.approval_when", label(
                f"{item.approval_when.variable} is {' or '.join(item.approval_when.values)}?"), "decision")
            chart.edge(request, condition)
            sources = [(condition, "no approval needed")]
            approval_chain(chart, f"{key}.approval", item.approval, (condition, "approval needed"), roots, rejected)
        else:
            sources = []
            approval_chain(chart, f"{key}.approval", item.approval, (request, ""), roots, rejected)
    for source, text in sources:
        for root in roots:
            chart.edge(source, root, text)
    for node, after in steps.values():
        for dependency in after:
            chart.edge(steps[dependency][0], node)
    needed = {dependency for _, after in steps.values() for dependency in after}
    for name, (node, _) in steps.items():
        if name not in needed:
            chart.edge(node, fulfilled)
    if item.expiry_variable:
        expired = chart.node(f"{key}.expired", label("access revoked"), "stadium", css="exit")
        chart.edge(fulfilled, expired, f"after {item.expiry_variable} days", "dotted")
