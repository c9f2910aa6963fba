"""Property tests: bad input anywhere gets a one-line error and a non-zero exit (2 for
usage/validation), never a traceback, and starts or changes nothing (no server is even
reachable here: anything that got that far would exit 1 for the environment instead)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cli.main import run_cli
from definitions import acme, registry
from itsmflow.app.change_submit import SubmitError as ChangeSubmitError
from itsmflow.app.change_submit import build_change
from itsmflow.app.request_submit import SubmitError as RequestSubmitError
from itsmflow.app.request_submit import build_request
from worker.server import free_port
from workflows.change_models import ApproveInput, CompleteInput, RejectInput
from workflows.incident_models import EscalateInput, IncidentResolveInput, PriorityInput

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
settings.register_profile("itsm", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.load_profile("itsm")


@pytest.fixture(autouse=True)
def nowhere(monkeypatch):
    port = free_port()
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{port}")
    monkeypatch.setenv("ITSM_TIMEOUT", "2")
    monkeypatch.delenv("ITSM_USER", raising=False)


def one_line_failure(capsys, args) -> int:
    code = run_cli(args)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "internal error" not in captured.err, (args, captured.err)
    if code:
        assert len(captured.err.strip().splitlines()) == 1, (args, captured.err)
    return code


@given(start=text, end=text, ci=text, kind=text, title=text)
def test_change_submit_arguments(capsys, start, end, ci, kind, title):
    args = ["change", "submit", "--title", title, "--ci", ci, "--type", kind, "--start", start, "--end", end,
            "--as", "alice"]
    assert one_line_failure(capsys, args) == 2  # nothing here is a valid submission reaching the server


@given(command=st.sampled_from([["change", "approve"], ["change", "show"], ["incident", "ack"], ["task", "complete"],
                                ["request", "cancel"], ["runs", "history"]]),
       extra=st.lists(text, max_size=4))
def test_any_arguments_to_any_command(capsys, command, extra):
    assert one_line_failure(capsys, [*command, *extra]) in (0, 1, 2)


@given(variables=st.dictionaries(st.sampled_from(["model", "justification", "duration", "reason", "database", "role",
                                                  "name", "team", "start_date", "bogus"]), text, max_size=5),
       item=st.sampled_from([i.name for i in acme.CATALOG.items] + ["nope"]))
def test_catalog_variables(variables, item):
    try:
        request = build_request(item_name=item, raw=variables, requested_by="alice")
    except RequestSubmitError as err:
        assert "\n" not in str(err) and str(err)
    else:
        assert request.plans and all(p.item.name for p in request.plans)


@given(cis=st.lists(text, max_size=3), title=text, template=st.none() | text,
       kind=st.sampled_from(["normal", "standard", "emergency"]))
def test_change_fields(cis, title, template, kind):
    from datetime import datetime, timedelta, timezone

    now = datetime(2030, 1, 1, 22, tzinfo=timezone.utc)
    try:
        build_change(change_id="CHG-20300101-AAAA", title=title, cis=cis, change_type=kind, template=template,
                     start=now + timedelta(hours=1), end=now + timedelta(hours=2), requested_by="alice", now=now)
    except ChangeSubmitError as err:
        assert "\n" not in str(err) and str(err)


def _mutations():
    base = registry.dump(acme.CHANGE_POLICY)
    leaf_paths = [("version",), ("risk_rules", 0, "risk"), ("approvals", "low", "levels", 0, "quorum"),
                  ("windows", 0, "timezone"), ("windows", 0, "start"), ("templates", 0, "max_duration"),
                  ("approvals", "high", "levels", 1, "group"), ("organisation",), ("blackouts",)]
    return base, leaf_paths


def _mutated(path_index: int, value, drop: bool) -> dict:
    """The acme change policy with one leaf replaced by `value` (or dropped)."""
    base, paths = _mutations()
    data = json.loads(json.dumps(base))
    *parents, leaf = paths[path_index]
    node = data
    for key in parents:
        node = node[key]
    if drop and isinstance(node, dict):
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return data


@given(path_index=st.integers(0, 8), value=st.none() | st.integers() | text | st.lists(st.integers(), max_size=2),
       drop=st.booleans())
def test_definition_files(tmp_path_factory, path_index, value, drop):
    data = _mutated(path_index, value, drop)
    try:
        registry.parse(data, "mutated.json")
    except registry.DefinitionError as err:
        assert err.problems and all("\n" not in p for p in err.problems)


@given(payload=st.dictionaries(st.sampled_from(["actor", "comment", "reason", "outcome", "notes", "to_step", "impact",
                                                "urgency", "code", "group"]),
                               st.none() | st.integers() | text, max_size=5),
       model=st.sampled_from([ApproveInput, RejectInput, CompleteInput, EscalateInput, PriorityInput,
                              IncidentResolveInput]))
def test_update_payloads_validate_or_refuse(payload, model):
    try:
        parsed = model.model_validate(payload)
    except ValidationError:
        return
    from workflows.approvals import ApprovalState

    refusal = ApprovalState.from_chain(acme.CHANGE_POLICY.approvals["low"]).refusal(
        parsed.actor, acme.ORGANISATION, "alice")
    assert refusal  # nobody may decide on a chain that has not started


# The same inputs through the `itsm` command itself: a refusal is exit 2 on one line before any
# server is asked; what passes reaches for the (unreachable) server and exits 1.

@given(variables=st.dictionaries(st.sampled_from(["model", "justification", "duration", "reason", "database", "role",
                                                  "bogus"]), text.filter(lambda v: "\x00" not in v), max_size=4),
       item=st.sampled_from(["laptop", "vpn-access", "db-access", "nope"]))
def test_catalog_variables_through_the_cli(capsys, variables, item):
    try:
        build_request(item_name=item, raw=variables, requested_by="alice")
        valid = True
    except RequestSubmitError:
        valid = False
    args = ["request", "submit", item, "--as", "alice"]
    for name, value in variables.items():
        args += ["--var", f"{name}={value}"]
    assert one_line_failure(capsys, args) == (1 if valid else 2), args


@given(impact=st.integers(-1, 5), urgency=st.integers(-1, 5), step=st.none() | st.integers(-2, 4),
       outcome=st.sampled_from(["successful", "failed", "backed-out"]) | text)
def test_update_arguments_through_the_cli(capsys, impact, urgency, step, outcome):
    priority = ["incident", "priority", "INC-20300101-AAAA", "--impact", str(impact), "--urgency", str(urgency),
                "--as", "dave"]
    in_range = 1 <= impact <= 3 and 1 <= urgency <= 3
    assert one_line_failure(capsys, priority) == (1 if in_range else 2)
    escalate = ["incident", "escalate", "INC-20300101-AAAA", "--as", "dave"] + ([] if step is None else
                                                                                 ["--to-step", str(step)])
    assert one_line_failure(capsys, escalate) == (1 if step is None or step >= 1 else 2)
    complete = ["change", "complete", "CHG-20300101-AAAA", "--outcome", outcome, "--as", "erin"]
    assert one_line_failure(capsys, complete) == (1 if outcome in ("successful", "failed", "backed-out") else 2)


@given(path_index=st.integers(0, 8), value=st.none() | st.integers() | text, drop=st.booleans())
def test_definition_files_through_the_cli(capsys, tmp_path_factory, path_index, value, drop):
    data = _mutated(path_index, value, drop)
    path = tmp_path_factory.mktemp("definition") / "mutated.json"
    path.write_text(json.dumps(data))
    try:
        registry.parse(data, str(path))
        problems = []
    except registry.DefinitionError as err:
        problems = err.problems
    code = run_cli(["definitions", "validate", str(path)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert code == (2 if problems else 0)
    assert len(captured.err.strip().splitlines()) == len(problems)  # one line per problem, nothing else


@pytest.mark.parametrize("args, message", [
    (["incident", "open", "--title", "x" * 201, "--impact", "1", "--urgency", "1", "--as", "alice"],
     "--title has 201 characters; at most 200"),
    (["incident", "open", "--title", "db down\nreally", "--impact", "1", "--urgency", "1", "--as", "alice"],
     "--title must be one line, without control characters"),
    (["problem", "open", "--title", "\x1b]8;;http://evil\x07", "--ci", "web-01", "--as", "carol"],
     "--title must be one line, without control characters"),
    (["change", "submit", "--title", "y" * 300, "--ci", "web-01", "--start", "2030-01-01T22:00+00:00",
      "--end", "2030-01-01T23:00+00:00", "--as", "alice"], "--title has 300 characters; at most 200"),
    (["incident", "note", "INC-20300101-AAAA", "n" * (32 * 1024 + 1), "--as", "dave"],
     "text is 32,769 bytes; at most 32,768 (32 KB)"),
    (["change", "reject", "CHG-20300101-AAAA", "--reason", "r" * 40_000, "--as", "bob"],
     "reason is 40,000 bytes; at most 32,768 (32 KB)"),
])
def test_titles_and_texts_are_bounded_before_anything_is_sent(capsys, args, message):
    """Refused on one line with exit 2 before a server is asked (none answers here: exit 1)."""
    code = run_cli(args)
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == f"itsm: {message}", err
