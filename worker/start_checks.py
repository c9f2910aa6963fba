"""What a start carries, checked against the worker's own definitions under ITSM_AUTH.

A run follows the definitions its input carries (its policy and organisation snapshots, a
request's catalog items) for its whole life, so a start, or an update that carries an
incident to open (the dedup router's `attach_or_open`), may bring only the worker's own
registered definitions; a request is resolved again from the worker's own catalog."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from worker.credentials import digest


class Snapshot(BaseModel):
    """A definition a start carries (its policy, its organisation), by digest."""

    field: str
    name: str
    version: int
    digest: str
    item: str | None = None  # a catalog item of the catalog `name` (a request's plans)
    organisation: str | None = None  # the organisation a policy names (its run must carry that one)


class OrderedItem(BaseModel):
    id: str
    item: str
    digest: str  # of the catalog item as ordered
    catalog: str  # name@version it was ordered from
    variables: dict
    after: list[str] = []


class Order(BaseModel):
    """A request as the client resolved it: the worker resolves it again from its own catalog."""

    catalog: str  # name@version
    item: str
    title: str
    variables: dict
    requested_for: str
    organisation: str
    calendar: str  # digest of the business calendar its SLA runs on
    cancel_group: str
    plans: list[OrderedItem]


def snapshots(arg: Any) -> list[Snapshot]:
    """The definitions a start's input carries (a nested incident's too): the run follows
    these copies, so the worker checks them against its own registered definitions."""
    from definitions.base import Definition

    found = []
    for field in getattr(type(arg), "model_fields", {}):
        value = getattr(arg, field, None)
        if isinstance(value, Definition):
            found.append(Snapshot(field=field, name=value.name, version=value.version, digest=digest([value]),
                                  organisation=getattr(value, "organisation", None)))
    for plan in getattr(arg, "plans", None) or []:  # a request: each item as ordered from its catalog
        name, _, version = (getattr(plan, "catalog", "") or "").partition("@")
        found.append(Snapshot(field=f"catalog item {plan.item.name}", name=name or "-",
                              version=int(version) if version.isdigit() else 0, digest=digest([plan.item]),
                              item=plan.item.name))
    nested = getattr(arg, "incident", None)
    return found + (snapshots(nested) if isinstance(nested, BaseModel) else [])


def snapshot_refusal(checks: list[Snapshot]) -> str | None:
    """Why a start's definitions are not the ones this worker has registered, if they aren't:
    a client could otherwise sign a start carrying its own organisation (itself in the CAB)."""
    from definitions import registry
    from definitions.catalog import Catalog

    for snap in checks:
        try:
            registered = registry.get(snap.name)
        except registry.DefinitionError:
            return f"{snap.field} {snap.name}@{snap.version} is not a definition this worker has"
        if snap.item is not None:
            item = registered.item(snap.item) if isinstance(registered, Catalog) and \
                registered.version == snap.version else None
            if item is None or digest([item]) != snap.digest:
                return (f"{snap.field} ({snap.name}@{snap.version}) does not match this worker's catalog "
                        f"(update the client's definitions)")
        elif registered.version != snap.version or digest([registered]) != snap.digest:
            return (f"{snap.field} {snap.name}@{snap.version} does not match this worker's definition "
                    f"{registered.name}@{registered.version} (update the client's definitions)")
    carried = {snap.name for snap in checks if snap.field == "organisation"}
    for snap in checks:
        if snap.organisation and snap.organisation not in carried:
            return (f"{snap.field} {snap.name} belongs to organisation {snap.organisation}, "
                    f"but the start carries {', '.join(sorted(carried)) or 'none'}")
    return None


def order_of(arg: Any) -> Order | None:
    """A request start's order (None for other starts)."""
    plans, organisation = getattr(arg, "plans", None), getattr(arg, "organisation", None)
    if plans is None or organisation is None:
        return None
    return Order(catalog=arg.catalog, item=arg.item, title=arg.title, variables=arg.variables,
                 requested_for=arg.requested_for, organisation=organisation.name, calendar=digest([arg.calendar]),
                 cancel_group=arg.cancel_group,
                 plans=[OrderedItem(id=p.id, item=p.item.name, digest=digest([p.item]), catalog=p.catalog,
                                    variables=p.variables, after=p.after) for p in plans])


def order_refusal(order: Order) -> str | None:
    """Why a request is not what this worker's catalog makes of its item and variables, if it
    isn't. The client validates the variables and expands bundles at submit; a client could
    otherwise sign a request with out-of-range variables, a bundle missing an item or with its
    steps reordered, an item or calendar from elsewhere, or someone else's cancel group."""
    from definitions import registry
    from definitions.catalog import Catalog
    from definitions.org import Organisation

    name, _, version = order.catalog.partition("@")
    try:
        catalog = registry.get(name, Catalog)
    except registry.DefinitionError:
        return f"catalog {order.catalog} is not a definition this worker has"
    if str(catalog.version) != version:
        return f"catalog {order.catalog} does not match this worker's {catalog.name}@{catalog.version}"
    item = catalog.item(order.item)
    if item is None:
        return f"{order.item!r} is not an item of catalog {order.catalog}"
    if order.organisation != catalog.organisation:
        return f"catalog {order.catalog} belongs to organisation {catalog.organisation}, not {order.organisation}"
    org = registry.get(catalog.organisation, Organisation)
    if org.person(order.requested_for) is None:
        return f"requested for unknown user {order.requested_for!r}"
    if order.title != item.title or order.calendar != digest([catalog.calendar(item.calendar)]):
        return f"the title or calendar of this {order.item} request is not catalog {order.catalog}'s"
    try:
        values = item.values({key: str(value) for key, value in order.variables.items()}, org)
        expanded = catalog.expand(item, values, org)
    except ValueError as err:
        return f"variables refused by catalog {order.catalog}: {err}"
    if digest([values]) != digest([order.variables]):  # types kept apart: 5 is not 5.0, true is not 1
        return f"variables of {order.item} are not as catalog {order.catalog} types them"
    names = {ordered.id: ordered.item for ordered in order.plans}
    if len(names) != len(order.plans) or any(a not in names for o in order.plans for a in o.after) \
            or any(o.catalog != order.catalog for o in order.plans):
        return f"the items of this {order.item} request are not what catalog {order.catalog} orders for it"
    carried = [(o.item, o.digest, digest([o.variables]), sorted(names[a] for a in o.after)) for o in order.plans]
    if carried != [(child.name, digest([child]), digest([child_values]), sorted(after))
                   for child, child_values, after in expanded]:
        return f"the items of this {order.item} request are not what catalog {order.catalog} orders for it"
    if order.cancel_group != catalog.cancel_group:
        return f"cancel group {order.cancel_group!r} is not catalog {order.catalog}'s {catalog.cancel_group!r}"
    return None
