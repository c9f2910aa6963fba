"""The whole set of custom search attributes, named once (SQL visibility has 10 Keyword
slots). Values are ids, states and names only: never titles or notes.

Plain strings here so the CLI can build list queries without importing temporalio."""

from __future__ import annotations

SEARCH_ATTRIBUTES: dict[str, str] = {
    "ItsmProcess": "Keyword",  # change | incident | request | item | task | problem
    "ItsmState": "Keyword",
    "ItsmPriority": "Keyword",  # P1..P4 for incidents
    "ItsmRisk": "Keyword",  # low | moderate | high for changes
    "ItsmType": "Keyword",  # change type, catalog item
    "ItsmRequester": "Keyword",
    "ItsmGroup": "Keyword",  # assignment group
    "ItsmDedupKey": "Keyword",
    "ItsmParent": "Keyword",
    "ItsmCI": "KeywordList",
    "ItsmDueAt": "Datetime",
    "ItsmBreached": "Bool",
    # KPI milestones (behind workflow.patched("kpi-attributes")): reports read visibility only.
    "ItsmAckedAt": "Datetime",  # incident: when the response clock was met (acknowledged)
    "ItsmResolvedAt": "Datetime",  # when the run last reached its outcome (an open incident: reopened)
    "ItsmOutcome": "Keyword",  # change close code | rejected | canceled; request state; incident code
    "ItsmBreaches": "KeywordList",  # breached SLA clocks: response, resolution, fulfillment
}
SQL_VISIBILITY_SLOTS = {"Keyword": 10, "KeywordList": 3, "Datetime": 3, "Bool": 3}


def keys():
    """Typed temporalio keys, by name (imports temporalio: not for the CLI's hot path)."""
    from temporalio.common import SearchAttributeKey

    factory = {
        "Keyword": SearchAttributeKey.for_keyword,
        "KeywordList": SearchAttributeKey.for_keyword_list,
        "Datetime": SearchAttributeKey.for_datetime,
        "Bool": SearchAttributeKey.for_bool,
    }
    return {name: factory[kind](name) for name, kind in SEARCH_ATTRIBUTES.items()}


def typed(values: dict[str, object]):
    """TypedSearchAttributes from {name: value}; None values are left out."""
    from temporalio.common import SearchAttributePair, TypedSearchAttributes

    attribute_keys = keys()
    return TypedSearchAttributes(
        [SearchAttributePair(attribute_keys[name], value) for name, value in values.items() if value is not None]
    )
