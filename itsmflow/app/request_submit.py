"""Validation of a catalog request before anything starts. Pure: no Temporal, no I/O.
Every variable problem is one line naming the field (exit 2)."""

from __future__ import annotations

from definitions import registry
from definitions.catalog import Catalog, CatalogItem
from definitions.org import Organisation
from itsmflow.app.ids import new_id
from workflows.request_models import ItemPlan, RequestInput


class SubmitError(ValueError):
    """A one-line reason the request is refused (exit 2, nothing started)."""


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise SubmitError(f"--var {pair!r}: expected NAME=VALUE")
        if name.strip() in values:
            raise SubmitError(f"--var {name.strip()}: given twice")
        values[name.strip()] = value
    return values


def validate_variables(item: CatalogItem, raw: dict[str, str], org: Organisation, where: str = "") -> dict:
    try:
        return item.values(raw, org, where)
    except ValueError as err:
        raise SubmitError(str(err)) from None


def build_request(*, item_name: str, raw: dict[str, str], requested_by: str, requested_for: str | None = None,
                  catalog_name: str = registry.DEFAULT_CATALOG, request_id: str | None = None) -> RequestInput:
    catalog = registry.get(catalog_name, Catalog)
    org = registry.get(catalog.organisation, Organisation)
    for role, user in (("--as", requested_by), ("--for", requested_for or requested_by)):
        if org.person(user) is None:
            raise SubmitError(f"{role}: unknown user {user!r}")
    item = catalog.item(item_name)
    if item is None:
        raise SubmitError(f"unknown catalog item {item_name!r} (known: {', '.join(i.name for i in catalog.items)})")
    values = validate_variables(item, raw, org)
    version = f"{catalog.name}@{catalog.version}"
    plans = [plan.model_copy(update={"catalog": version}) for plan in _plans(catalog, item, values, org)]
    return RequestInput(
        id=request_id or new_id("REQ"), item=item.name, title=item.title, variables=values,
        requested_by=requested_by, requested_for=requested_for or requested_by, plans=plans, organisation=org,
        calendar=catalog.calendar(item.calendar), cancel_group=catalog.cancel_group, catalog=version,
    )


def _plans(catalog: Catalog, item: CatalogItem, values: dict, org: Organisation) -> list[ItemPlan]:
    try:
        expanded = catalog.expand(item, values, org)
    except ValueError as err:
        raise SubmitError(str(err)) from None
    ids = {child.name: new_id("RITM") for child, _, _ in expanded}
    return [ItemPlan(id=ids[child.name], item=child, variables=child_values, after=[ids[name] for name in after])
            for child, child_values, after in expanded]
