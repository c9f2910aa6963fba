"""Catalog variables are validated before anything starts: one line naming the field."""

import pytest

from itsmflow.app.request_submit import SubmitError, build_request, parse_pairs


@pytest.mark.parametrize("item, raw, message", [
    ("laptop", {"model": "tablet", "justification": "x"}, "model: 'tablet' is not one of standard-14, pro-16, mac-14"),
    ("laptop", {"model": "pro-16"}, "justification: required"),
    ("laptop", {"model": "pro-16", "justification": "x", "colour": "red"}, "colour: unknown variable for laptop"),
    ("vpn-access", {"duration": "91", "reason": "x"}, "duration: 91 is out of range 1-90"),
    ("vpn-access", {"duration": "two", "reason": "x"}, "duration: 'two' is not a whole number"),
    ("db-access", {"database": "web-01", "role": "read"}, "database: 'web-01' is not a known database"),
    ("db-access", {"database": "db-prod-1", "role": "admin"}, "role: 'admin' is not one of read, write"),
    ("onboarding", {"name": "Zoe", "start_date": "next monday", "team": "web"},
     "start_date: 'next monday' is not a date"),
    ("laptop", {"model": "pro-16", "justification": "   "}, "justification: must not be empty"),
    ("printer", {}, "unknown catalog item 'printer'"),
])
def test_invalid_variables_name_the_field(item, raw, message):
    with pytest.raises(SubmitError) as refused:
        build_request(item_name=item, raw=raw, requested_by="alice")
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_bundle_variables_are_formatted_and_validated_per_item():
    request = build_request(item_name="onboarding", raw={"name": "Zoe", "start_date": "2026-12-01", "team": "web"},
                            requested_by="erin", requested_for="alice")
    by_item = {plan.item.name: plan for plan in request.plans}
    assert by_item["laptop"].variables == {"model": "standard-14", "justification": "new hire Zoe (web)"}
    assert by_item["vpn-access"].variables["duration"] == 90
    assert by_item["welcome"].after == [by_item["laptop"].id, by_item["vpn-access"].id]
    assert request.requested_for == "alice" and request.variables["start_date"] == "2026-12-01"


@pytest.mark.parametrize("pairs, message", [(["model"], "expected NAME=VALUE"), (["=x"], "expected NAME=VALUE"),
                                            (["a=1", "a=2"], "a: given twice")])
def test_var_syntax(pairs, message):
    with pytest.raises(SubmitError, match=message):
        parse_pairs(pairs)


def test_unknown_users():
    with pytest.raises(SubmitError, match="--for: unknown user 'zed'"):
        build_request(item_name="laptop", raw={"model": "pro-16", "justification": "x"}, requested_by="alice",
                      requested_for="zed")


def test_a_bundle_template_naming_a_variable_not_given_is_one_line():
    """An optional bundle variable left out, that an item's template uses: refused, named."""
    from definitions import registry
    from definitions.catalog import Catalog
    from definitions.org import Organisation

    catalog = registry.get("acme-catalog", Catalog)
    onboarding = catalog.item("onboarding")
    optional_team = onboarding.model_copy(update={"variables": [
        v.model_copy(update={"required": v.name != "team"}) for v in onboarding.variables]})
    with pytest.raises(ValueError) as refused:
        catalog.expand(optional_team, optional_team.values({"name": "Zoe", "start_date": "2026-12-01"},
                                                           registry.get("acme", Organisation)),
                       registry.get("acme", Organisation))
    assert str(refused.value) == "onboarding → account: a variable template needs 'team' (not given)"
