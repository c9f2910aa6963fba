"""The service catalog: items with typed variables, an approval chain (possibly
conditional), a fulfillment plan (a DAG of manual, automated and notify tasks) and a
fulfillment SLA. Bundles (onboarding) are items made of other items, with their own DAG."""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from definitions.approvals import ApprovalChain
from definitions.base import Definition, Duration, Model
from definitions.calendar import BusinessCalendar
from definitions.org import Organisation


class VariableType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    DATE = "date"
    CI = "ci"
    USER = "user"


class Variable(Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: VariableType
    help: str = ""
    required: bool = True
    choices: list[str] = []
    minimum: int | None = None
    maximum: int | None = None
    ci_class: str | None = None

    @model_validator(mode="after")
    def _coherent(self) -> "Variable":
        if self.type == VariableType.CHOICE and not self.choices:
            raise ValueError(f"variable {self.name!r}: a choice needs choices")
        return self

    def parse(self, raw: str, org: Organisation) -> object:
        """The typed value of `raw`, or ValueError naming the field and the problem."""
        text = raw.strip()
        problem = None
        if self.type == VariableType.INTEGER:
            try:
                number = int(text)
            except ValueError:
                raise ValueError(f"{self.name}: {raw!r} is not a whole number") from None
            value: object = number
            if self.minimum is not None and number < self.minimum or self.maximum is not None and number > self.maximum:
                problem = f"{number} is out of range {self.minimum}-{self.maximum}"
        elif self.type == VariableType.BOOLEAN:
            if text.lower() not in ("true", "false", "yes", "no"):
                raise ValueError(f"{self.name}: {raw!r} is not true or false")
            value = text.lower() in ("true", "yes")
        elif self.type == VariableType.CHOICE:
            value = text
            if text not in self.choices:
                problem = f"{raw!r} is not one of {', '.join(self.choices)}"
        elif self.type == VariableType.DATE:
            try:
                value = date.fromisoformat(text).isoformat()
            except ValueError:
                raise ValueError(f"{self.name}: {raw!r} is not a date (YYYY-MM-DD)") from None
        elif self.type == VariableType.CI:
            value, ci = text, org.ci(text)
            if ci is None or (self.ci_class and ci.ci_class != self.ci_class):
                problem = f"{raw!r} is not a known {self.ci_class or 'CI'}"
        elif self.type == VariableType.USER:
            value = text
            if org.person(text) is None:
                problem = f"{raw!r} is not a known user"
        else:
            value = text
            if not text:
                problem = "must not be empty"
        if problem:
            raise ValueError(f"{self.name}: {problem}")
        return value


class TaskKind(StrEnum):
    MANUAL = "manual"
    AUTOMATED = "automated"
    NOTIFY = "notify"


class FulfillmentTask(Model):
    """A step of the plan. Automated tasks run `action` (an activity action; retried,
    then handed to `group` as a manual task); completed automated tasks are undone in
    reverse order on cancel. `after` names the tasks that must finish first."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    kind: TaskKind
    title: str
    group: str | None = None
    action: str | None = None
    after: list[str] = []

    @model_validator(mode="after")
    def _needs(self) -> "FulfillmentTask":
        if self.kind == TaskKind.AUTOMATED and not (self.action and self.group):
            raise ValueError(f"task {self.name!r}: automated tasks need an action and a fallback group")
        if self.kind == TaskKind.MANUAL and not self.group:
            raise ValueError(f"task {self.name!r}: manual tasks need a group")
        return self


class Condition(Model):
    variable: str
    values: list[str]


class BundleEntry(Model):
    """One item of a bundle; `variables` are formatted with the bundle's variables."""

    item: str
    after: list[str] = []
    variables: dict[str, str] = {}


class CatalogItem(Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    title: str
    description: str = ""
    variables: list[Variable] = []
    approval: ApprovalChain | None = None
    approval_when: Condition | None = None
    tasks: list[FulfillmentTask] = []
    bundle: list[BundleEntry] = []
    expiry_variable: str | None = None
    sla: Duration = timedelta(hours=16)
    calendar: str = "business"

    @model_validator(mode="after")
    def _plan(self) -> "CatalogItem":
        if bool(self.tasks) == bool(self.bundle):
            raise ValueError(f"item {self.name!r}: needs either tasks or a bundle")
        names = [t.name for t in self.tasks] or [b.item for b in self.bundle]
        deps = [(t.name, t.after) for t in self.tasks] or [(b.item, b.after) for b in self.bundle]
        problems = [f"item {self.name!r}: {n!r} runs after unknown {d!r}" for n, after in deps for d in after
                    if d not in names]
        problems += _cycles(self.name, dict(deps))
        variables = {v.name for v in self.variables}
        if self.approval_when and self.approval_when.variable not in variables:
            problems.append(f"item {self.name!r}: approval_when names unknown variable")
        if self.expiry_variable and self.expiry_variable not in variables:
            problems.append(f"item {self.name!r}: expiry_variable names unknown variable")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def variable(self, name: str) -> Variable | None:
        return next((v for v in self.variables if v.name == name), None)

    def values(self, raw: dict[str, str], org: Organisation, where: str = "") -> dict:
        """The typed values of an order's `raw` variables, or ValueError with one line naming
        the field (prefixed with `where`, for a bundle's item)."""
        prefix = f"{where}: " if where else ""
        unknown = sorted(set(raw) - {v.name for v in self.variables})
        if unknown:
            known = ", ".join(v.name for v in self.variables) or "none"
            raise ValueError(f"{prefix}{unknown[0]}: unknown variable for {self.name} (known: {known})")
        values: dict = {}
        for variable in self.variables:
            if variable.name not in raw:
                if variable.required:
                    raise ValueError(f"{prefix}{variable.name}: required ({variable.type.value}: {variable.help})")
                continue
            try:
                values[variable.name] = variable.parse(raw[variable.name], org)
            except ValueError as err:
                raise ValueError(f"{prefix}{err}") from None
        return values

    def needs_approval(self, values: dict) -> bool:
        if self.approval is None:
            return False
        return self.approval_when is None or str(values.get(self.approval_when.variable)) in self.approval_when.values


def _cycles(owner: str, deps: dict[str, list[str]]) -> list[str]:
    seen: dict[str, int] = {}

    def visit(node: str) -> bool:
        if seen.get(node) == 1:
            return True
        if seen.get(node) == 2:
            return False
        seen[node] = 1
        cyclic = any(visit(d) for d in deps.get(node, []) if d in deps)
        seen[node] = 2
        return cyclic

    return [f"item {owner!r}: the plan has a cycle"] if any(visit(n) for n in deps) else []


class Catalog(Definition):
    kind: Literal["catalog"] = "catalog"
    organisation: str
    calendars: list[BusinessCalendar]
    items: list[CatalogItem]
    cancel_group: str = "service-desk"

    def expand(self, item: CatalogItem, values: dict, org: Organisation) -> list[tuple[CatalogItem, dict, list[str]]]:
        """What an order of `item` with (typed) `values` fulfils: the item itself, or each item
        of its bundle with its variables (formatted from the order's) and the items it waits
        for. ValueError (one line) when a bundle's item refuses its variables."""
        if not item.bundle:
            return [(item, values, [])]
        texts = {k: str(v) for k, v in values.items()}
        expanded = []
        for entry in item.bundle:
            child, where = self.item(entry.item), f"{item.name} → {entry.item}"
            if child is None:  # not in a validated catalog (_references)
                raise ValueError(f"{where}: unknown item")
            try:
                raw = {name: template.format(**texts) for name, template in entry.variables.items()}
            except (KeyError, IndexError, ValueError) as err:
                raise ValueError(f"{where}: a variable template needs {err} (not given)") from None
            expanded.append((child, child.values(raw, org, where=where), list(entry.after)))
        return expanded

    @model_validator(mode="after")
    def _references(self) -> "Catalog":
        names = {i.name for i in self.items}
        calendars = {c.name for c in self.calendars}
        problems = [f"item {i.name!r}: bundle names unknown item {b.item!r}" for i in self.items for b in i.bundle
                    if b.item not in names]
        problems += [f"item {i.name!r}: unknown calendar {i.calendar!r}" for i in self.items
                     if i.calendar not in calendars]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def item(self, name: str) -> CatalogItem | None:
        return next((i for i in self.items if i.name == name), None)

    def calendar(self, name: str) -> BusinessCalendar:
        return next(c for c in self.calendars if c.name == name)

    def reference_problems(self, org: Organisation) -> list[str]:
        groups = {g.name for g in org.groups}
        problems = [f"item {i.name!r} task {t.name!r}: unknown group {t.group!r}" for i in self.items
                    for t in i.tasks if t.group and t.group not in groups]
        problems += [f"item {i.name!r}: approval group {g!r} unknown" for i in self.items if i.approval
                     for g in sorted(i.approval.groups()) if g not in groups]
        if self.cancel_group not in groups:
            problems.append(f"cancel_group: unknown group {self.cancel_group!r}")
        return problems
