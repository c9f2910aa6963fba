"""The loaded processes: the built-ins and every package's, found through the entry point
group `itsmflow.processes` (each entry a Process or a sequence of them), plus the local
modules ITSM_PROCESSES names (`module:attr,...`). Loading reads declarations only (light:
no temporalio); a process that fails to load, or two that claim one name, prefix or
workflow type, is one line naming it. The worker refuses to start with any such problem; read
commands carry on with the processes that did load."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from itsmflow.process import Process, resolve

GROUP = "itsmflow.processes"


class ProcessLoadError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Loaded:
    processes: tuple[Process, ...]
    problems: tuple[str, ...]
    # The fields that name who acts (`claim_fields`), derived once: every update validator asks.
    claims: tuple[str, ...] = ()


_cache: dict[str, Loaded] = {}


def _sources() -> list[tuple[str, str]]:
    """(where it is declared, module:attr) for every entry point and ITSM_PROCESSES entry."""
    from importlib.metadata import entry_points

    found = [(f"entry point {e.name!r} ({e.value})", e.value) for e in entry_points(group=GROUP)]
    for item in filter(None, (part.strip() for part in os.environ.get("ITSM_PROCESSES", "").split(","))):
        found.append((f"ITSM_PROCESSES {item!r}", item))
    return found


def load() -> Loaded:
    """Every process that loads, and one line per problem (cached per ITSM_PROCESSES)."""
    key = os.environ.get("ITSM_PROCESSES", "")
    if key not in _cache:
        _cache[key] = _load()
    return _cache[key]


def _load() -> Loaded:
    processes: list[Process] = []
    problems: list[str] = []
    seen: dict[str, str] = {}  # name / prefix / workflow type -> the process that claimed it
    for where, path in _sources():
        if ":" not in path:
            problems.append(f"{where}: expected module:attribute")
            continue
        try:
            value = resolve(path)
        except Exception as err:  # noqa: BLE001 (whatever a foreign module raises: one line naming it)
            problems.append(f"{where}: cannot load: {type(err).__name__}: {err}")
            continue
        declared = list(value) if isinstance(value, (list, tuple)) else [value]
        for process in declared:
            if not isinstance(process, Process):
                problems.append(f"{where}: {type(process).__name__} is not an itsmflow Process")
                continue
            own = process.problems()
            for claim in (f"name {process.name!r}", f"prefix {process.prefix!r}",
                          *(f"workflow {t!r}" for t in process.workflow_types)):
                if claim in seen and seen[claim] != process.name:
                    own.append(f"process {process.name!r} ({where}): {claim} is already process {seen[claim]!r}'s")
                elif claim in seen:
                    own.append(f"process {process.name!r} ({where}) is declared twice")
                    break
            if own:
                problems += own
                continue
            for claim in (f"name {process.name!r}", f"prefix {process.prefix!r}",
                          *(f"workflow {t!r}" for t in process.workflow_types)):
                seen[claim] = process.name
            processes.append(process)
    actors = [a.actor_field for p in processes for a in p.actions]
    claims = tuple(dict.fromkeys(["actor", *actors, *(p.starter for p in processes if p.starter)]))
    return Loaded(tuple(processes), tuple(problems), claims)


def processes(strict: bool = False) -> tuple[Process, ...]:
    """The loaded processes; `strict` (the worker) raises on any problem."""
    loaded = load()
    if strict and loaded.problems:
        raise ProcessLoadError(list(loaded.problems))
    return loaded.processes


def named(name: str) -> Process:
    for process in processes():
        if process.name == name:
            return process
    known = ", ".join(p.name for p in processes())
    raise LookupError(f"unknown process {name!r} (known: {known})")


def of_prefix(prefix: str) -> Process | None:
    return next((p for p in processes() if p.prefix == prefix), None)


def of_id(run_id: str) -> Process | None:
    """The process a business id (`PREFIX-YYYYMMDD-XXXX`) belongs to."""
    return of_prefix(run_id.split("-", 1)[0])


def of_workflow_type(workflow_type: str) -> Process | None:
    return next((p for p in processes() if workflow_type in p.workflow_types), None)


def claim_fields() -> tuple[str, ...]:
    """The fields that name who acts: an action's actor, then each process's starter (its
    declaration's first person field)."""
    return load().claims


def digest(loaded: tuple[Process, ...] | None = None) -> str:
    """A short digest of the set of processes (names, prefixes, workflow types): every worker
    on a queue must serve the same set."""
    text = "|".join(sorted(f"{p.name}:{p.prefix}:{','.join(p.workflow_types)}" for p in loaded or processes()))
    return hashlib.sha256(text.encode()).hexdigest()[:12]
