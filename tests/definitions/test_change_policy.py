"""Change policy definitions: risk assessment, chain selection, validation, references
against the organisation, frozen snapshots and duration spelling."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from definitions import registry
from definitions.acme import CHANGE_POLICY, DEMO_CHANGE_POLICY, ORGANISATION
from definitions.approvals import ApprovalChain, ApprovalLevel, ApprovalRule, TimeoutAction
from definitions.base import format_duration
from definitions.change import ChangePolicy, ChangeType, Risk, RiskRule, StandardTemplate

CHAIN = ApprovalChain(levels=[ApprovalLevel(name="manager", group="change-managers")])


def cis(*names):
    return [ORGANISATION.ci(name) for name in names]


@pytest.mark.parametrize(("names", "outage", "risk", "rule"), [
    (["web-01"], False, Risk.LOW, "default"),
    (["web-01"], True, Risk.HIGH, "outage"),
    (["lb-01"], False, Risk.MODERATE, "medium-ci"),
    (["web-01", "lb-01"], False, Risk.MODERATE, "medium-ci"),
    (["lb-01", "db-prod-1"], False, Risk.HIGH, "critical-ci"),
    (["db-prod-1"], True, Risk.HIGH, "critical-ci"),
])
def test_first_matching_risk_rule_wins(names, outage, risk, rule):
    assert CHANGE_POLICY.assess_risk(cis(*names), outage) == (risk, rule)


def test_chain_for_each_change_type():
    assert CHANGE_POLICY.chain_for(ChangeType.STANDARD, Risk.HIGH) is None
    assert CHANGE_POLICY.chain_for(ChangeType.EMERGENCY, Risk.LOW) is CHANGE_POLICY.emergency_approvals
    assert [lvl.name for lvl in CHANGE_POLICY.chain_for(ChangeType.NORMAL, Risk.LOW).levels] == ["change-manager"]
    high = CHANGE_POLICY.chain_for(ChangeType.NORMAL, Risk.HIGH)
    assert [lvl.name for lvl in high.levels] == ["change-manager", "cab"]


def test_demo_policy_timeouts_are_short():
    manager, cab = DEMO_CHANGE_POLICY.approvals[Risk.MODERATE].levels
    [ecab] = DEMO_CHANGE_POLICY.emergency_approvals.levels
    assert (manager.timeout, manager.on_timeout, manager.escalate_to, manager.max_escalations) == (
        timedelta(minutes=30), TimeoutAction.ESCALATE, "cab", 2)
    assert (cab.timeout, cab.on_timeout, cab.rule, cab.quorum) == (
        timedelta(hours=1), TimeoutAction.REJECT, "quorum", 2)
    assert (ecab.timeout, ecab.max_escalations) == (timedelta(minutes=2, seconds=30), 3)
    assert DEMO_CHANGE_POLICY.windows[0].always_open and DEMO_CHANGE_POLICY.blackouts == []


def test_lookups_by_name():
    assert CHANGE_POLICY.template("rotate-tls-certificate").window == "weeknight"
    assert CHANGE_POLICY.template("nope") is None
    assert CHANGE_POLICY.window("weekend").days == ["sat", "sun"]
    assert CHANGE_POLICY.window("nope") is None


def test_policy_needs_a_chain_per_risk_and_known_template_windows():
    data = CHANGE_POLICY.model_dump(mode="json")
    del data["approvals"]["high"]
    data["templates"].append({"name": "reboot", "title": "Reboot", "window": "lunchtime"})
    with pytest.raises(ValidationError) as failure:
        ChangePolicy.model_validate(data)
    assert "approvals: no chain for risk 'high'; template 'reboot': unknown window 'lunchtime'" in str(failure.value)


@pytest.mark.parametrize(("level", "problem"), [
    (dict(rule="quorum"), "rule quorum needs a quorum number"),
    (dict(rule="any", quorum=2), "quorum is only for rule quorum"),
    (dict(on_timeout="escalate"), "on_timeout escalate needs escalate_to"),
    (dict(timeout="0s"), "timeout must be positive"),
    (dict(max_escalations=11), "less than or equal to 10"),
])
def test_approval_level_validation(level, problem):
    with pytest.raises(ValidationError, match=problem):
        ApprovalLevel(name="l", group="cab", **level)


def test_rules_templates_and_chains_validate():
    with pytest.raises(ValidationError, match="risk rule 'r': set ci_criticality or outage"):
        RiskRule(name="r", risk=Risk.LOW)
    with pytest.raises(ValidationError, match="at least 1 item"):
        ApprovalChain(levels=[])
    with pytest.raises(ValidationError, match="should match pattern"):
        StandardTemplate(name="Bad Name", title="t")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ApprovalLevel(name="l", group="cab", timout="1h")


def test_reference_problems_against_the_organisation():
    assert CHANGE_POLICY.reference_problems(ORGANISATION) == []
    assert DEMO_CHANGE_POLICY.reference_problems(ORGANISATION) == []
    big_cab = ApprovalLevel(name="cab", group="cab", rule=ApprovalRule.QUORUM, quorum=4,
                            on_timeout=TimeoutAction.ESCALATE, escalate_to="board")
    broken = CHANGE_POLICY.model_copy(update={
        "implementer_groups": ["ops"],
        "approvals": {**CHANGE_POLICY.approvals, Risk.HIGH: ApprovalChain(levels=[big_cab])},
        "templates": [StandardTemplate(name="t", title="t", cis=["web-01", "mainframe"])],
    })
    assert broken.reference_problems(ORGANISATION) == [
        "implementer_groups: unknown group 'ops'",
        "approvals.high: unknown group 'board'",
        "template 't': unknown ci 'mainframe'",
        "approvals.high: level 'cab' quorum 4 exceeds group 'cab' size 3",
    ]


def test_registry_reports_reference_problems_with_the_source():
    data = registry.dump(DEMO_CHANGE_POLICY) | {"notify_group": "nobody"}
    with pytest.raises(registry.DefinitionError) as failure:
        registry.parse(data, "mine.toml")
    assert failure.value.problems == ["mine.toml: notify_group: unknown group 'nobody'"]


def test_definitions_are_frozen_and_copied_with_changes():
    with pytest.raises(ValidationError, match="frozen"):
        DEMO_CHANGE_POLICY.conflicts = "block"
    strict = DEMO_CHANGE_POLICY.model_copy(update={"conflicts": "block"})
    assert (strict.conflicts, DEMO_CHANGE_POLICY.conflicts) == ("block", "warn")


@pytest.mark.parametrize("policy", [CHANGE_POLICY, DEMO_CHANGE_POLICY], ids=lambda p: p.name)
def test_policy_snapshot_round_trips(policy):
    snapshot = policy.model_dump(mode="json")
    assert snapshot["approvals"]["low"]["levels"][0]["timeout"] in ("1d", "30m")
    assert ChangePolicy.model_validate(snapshot) == policy


@pytest.mark.parametrize(("spelled", "duration"), [
    ("30m", timedelta(minutes=30)), (" 4 h ", timedelta(hours=4)), ("2d", timedelta(days=2)),
    ("45s", timedelta(seconds=45)),
    (90, timedelta(seconds=90)), ("PT2H", timedelta(hours=2)), (timedelta(minutes=5), timedelta(minutes=5)),
])
def test_durations_accept_short_spellings(spelled, duration):
    assert ApprovalLevel(name="l", group="cab", timeout=spelled).timeout == duration


@pytest.mark.parametrize(("duration", "spelled"), [
    (timedelta(days=1), "1d"), (timedelta(hours=36), "36h"), (timedelta(minutes=90), "90m"),
    (timedelta(seconds=150), "150s"), (timedelta(0), "0s"),
])
def test_durations_are_spelled_in_the_largest_exact_unit(duration, spelled):
    assert format_duration(duration) == spelled


def test_sub_second_durations_survive_the_snapshot():
    level = ApprovalLevel(name="l", group="cab", timeout="PT1.5S")
    assert ApprovalLevel.model_validate(level.model_dump(mode="json")).timeout == timedelta(seconds=1.5)
