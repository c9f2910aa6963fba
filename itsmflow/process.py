"""A process, declared once, in code: what the worker, the ids, the CLI, the audit trail,
ITSM_AUTH and the KPIs need to know about it, and nothing they would each guess.

This is the *light* part: plain data and import paths ("module:attribute"), so reading the
declarations imports neither temporalio nor pydantic and the fast CLI paths stay fast. The
paths are resolved (`Process.load(...)`) only where the worker or a command needs the real
classes."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any

PREFIX = re.compile(r"^[A-Z]{2,5}$")
NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}$")
TEMPLATES = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
# The shared search attributes (SQL visibility's slots are full): a process says which it
# sets; new facts go in the memo.
ATTRIBUTES = ("ItsmProcess", "ItsmState", "ItsmPriority", "ItsmRisk", "ItsmType", "ItsmRequester", "ItsmGroup",
              "ItsmDedupKey", "ItsmParent", "ItsmOutcome", "ItsmCI", "ItsmBreaches", "ItsmDueAt", "ItsmAckedAt",
              "ItsmResolvedAt", "ItsmBreached")


def resolve(path: str) -> Any:
    """`module:attribute` (dots after the colon walk attributes)."""
    module, _, attribute = path.partition(":")
    value: Any = importlib.import_module(module)
    for part in filter(None, attribute.split(".")):
        value = getattr(value, part)
    return value


@dataclass(frozen=True)
class WorkerContext:
    """What a process's activities get from the worker that runs them: the CMDB database,
    the notification channel, the organisation and a Temporal client that signs as the worker."""

    db: Any
    channel: Any
    organisation: Any
    client: Any


@dataclass(frozen=True)
class Action:
    """A human action: a validated Temporal update of the process's workflow.

    `input` is the argument model (a pydantic model with the acting user in `actor_field`);
    `who` says who may do it (the workflow's validator applies it; this is what people and
    the inbox read); `one_click` actions need no text and can be answered from a link or a
    chat button, the others need a form."""

    name: str
    update: str
    input: str
    who: str = ""
    help: str = ""
    one_click: bool = False
    actor_field: str = "actor"


@dataclass(frozen=True)
class Process:
    """One process. `workflows` are import paths, the main workflow first (the others are
    helpers it starts, such as a dedup router); `input` and `status` are model paths.

    `people` are the start input's fields that name people, the one who starts it first.
    `user_starts` are the workflow types a verified user may start (default: the main one);
    `child_of` names the process whose runs start this one (then nobody else may).
    `states` in order, `final` maps each final state to the outcome it means."""

    name: str
    prefix: str
    workflows: tuple[str, ...]
    input: str
    status: str
    people: tuple[str, ...] = ()
    actions: tuple[Action, ...] = ()
    signals: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    final: dict[str, str] = field(default_factory=dict)
    attributes: tuple[str, ...] = ("ItsmProcess", "ItsmState")
    activities: str | None = None  # "module:function", given a WorkerContext, returns activity callables
    # "package:folder" of its notification templates (a package's own), found as "<name>/<template>":
    # the workflow's `_template_folder()` returns the process's name
    templates: str | None = None
    definitions: dict[str, str] = field(default_factory=dict)  # kind -> model path
    title: str = "title"  # the input field holding the run's title (kept in the memo)
    start_attributes: str | None = None  # "module:function" from the input to its start-time attributes
    show: str | None = None  # "module:function" from the status to the text `show` prints
    graph: str | None = None  # "module:function" giving a Mermaid graph of the process
    user_starts: tuple[str, ...] | None = None
    child_of: str | None = None
    continues_as_new: bool = False  # its runs continue as new (reports follow the chain to the first)
    description: str = ""

    @property
    def workflow_types(self) -> tuple[str, ...]:
        """The Temporal workflow type names (the class names, as `@workflow.defn` registers them)."""
        return tuple(path.rpartition(":")[2].rpartition(".")[2] for path in self.workflows)

    @property
    def workflow_type(self) -> str:
        return self.workflow_types[0]

    @property
    def started_by_users(self) -> tuple[str, ...]:
        if self.child_of:
            return ()
        return self.user_starts if self.user_starts is not None else (self.workflow_type,)

    @property
    def starter(self) -> str | None:
        """The input field naming who starts the run."""
        return self.people[0] if self.people else None

    def action(self, name: str) -> Action | None:
        return next((a for a in self.actions if a.name == name), None)

    def problems(self) -> list[str]:
        """What is wrong with the declaration itself, each one line naming it."""
        where = f"process {self.name!r}"
        found = []
        if not NAME.match(self.name):
            found.append(f"{where}: name must be 2-31 lower-case letters, digits or '-'")
        if not PREFIX.match(self.prefix):
            found.append(f"{where}: prefix {self.prefix!r} must be 2-5 capital letters")
        if not self.workflows:
            found.append(f"{where}: declares no workflow")
        unknown = [a for a in self.attributes if a not in ATTRIBUTES]
        if unknown:
            found.append(f"{where}: unknown search attribute(s) {', '.join(unknown)} (the set is shared: "
                         "put new facts in the memo)")
        names = [a.name for a in self.actions]
        if len(set(names)) != len(names):
            found.append(f"{where}: an action is declared twice")
        if self.templates is not None and not TEMPLATES.match(self.templates):
            found.append(f"{where}: templates {self.templates!r} must be package:folder (say 'reviews:templates')")
        strange = [s for s in self.final if self.states and s not in self.states]
        if strange:
            found.append(f"{where}: final state(s) {', '.join(strange)} are not among its states")
        return found
