"""Where named definitions come from, and how definition files are validated.

Built-in definitions live in code (definitions/acme.py). Process owners add their own as
JSON or TOML files in `ITSM_DEFINITIONS_DIR`; a file's `kind` says which model it is."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Union

from pydantic import TypeAdapter, ValidationError

from definitions import acme
from definitions.catalog import Catalog
from definitions.change import ChangePolicy
from definitions.incident import IncidentPolicy
from definitions.org import Organisation
from definitions.problem import ProblemPolicy

AnyDefinition = Union[Organisation, ChangePolicy, IncidentPolicy, ProblemPolicy, Catalog]
_KINDS: dict[str, type] = {"organisation": Organisation, "change-policy": ChangePolicy,
                           "incident-policy": IncidentPolicy, "problem-policy": ProblemPolicy, "catalog": Catalog}

BUILTIN: dict[str, AnyDefinition] = {
    d.name: d for d in (acme.ORGANISATION, acme.CHANGE_POLICY, acme.DEMO_CHANGE_POLICY, acme.INCIDENT_POLICY,
                           acme.PROBLEM_POLICY, acme.CATALOG)
}

DEFAULT_CHANGE_POLICY = "acme-change"
DEFAULT_INCIDENT_POLICY = "acme-incident"
DEFAULT_PROBLEM_POLICY = "acme-problem"
DEFAULT_CATALOG = "acme-catalog"


class DefinitionError(ValueError):
    """A definition is missing or invalid; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def _read(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as err:
        raise DefinitionError([f"{path}: cannot read: {err.strerror}"]) from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as err:
        raise DefinitionError([f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {err}"]) from None
    if not isinstance(data, dict):
        raise DefinitionError([f"{path}: top level must be a table/object"])
    return data


def _location(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def parse(data: dict, source: str = "definition") -> AnyDefinition:
    """Validate one definition; every problem is reported, one line each."""
    kind = data.get("kind")
    model = _KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise DefinitionError([f"{source}: kind: must be one of {', '.join(sorted(_KINDS))} (got {kind!r})"])
    try:
        definition = TypeAdapter(model).validate_python(data)
    except ValidationError as err:
        problems = []
        for error in err.errors():
            message = error["msg"].removeprefix("Value error, ")
            for part in message.split("; "):
                problems.append(f"{source}: {_location(error['loc'])}: {part}")
        raise DefinitionError(problems) from None
    if isinstance(definition, (ChangePolicy, IncidentPolicy, ProblemPolicy, Catalog)):
        try:
            org = get(definition.organisation, Organisation)
        except DefinitionError as err:
            raise DefinitionError([f"{source}: organisation: {p}" for p in err.problems]) from None
        problems = definition.reference_problems(org)
        if problems:
            raise DefinitionError([f"{source}: {p}" for p in problems])
    return definition


def load_file(path: str | Path) -> AnyDefinition:
    path = Path(path)
    return parse(_read(path), str(path))


def _user_files() -> list[Path]:
    folder = os.environ.get("ITSM_DEFINITIONS_DIR")
    if not folder or not Path(folder).is_dir():
        return []
    return sorted(p for p in Path(folder).iterdir() if p.suffix in (".json", ".toml"))


def all_definitions() -> dict[str, AnyDefinition]:
    found = dict(BUILTIN)
    for path in _user_files():
        definition = load_file(path)
        found[definition.name] = definition
    return found


def get(name: str, model: type | None = None):
    definition = BUILTIN.get(name)
    if definition is None:
        definition = all_definitions().get(name)
    if definition is None or (model is not None and not isinstance(definition, model)):
        wanted = "definition" if model is None else _kind_of(model)
        raise DefinitionError([f"unknown {wanted} {name!r}"])
    return definition


def _kind_of(model: type) -> str:
    return next(k for k, m in _KINDS.items() if m is model)


def dump(definition: AnyDefinition) -> dict:
    return definition.model_dump(mode="json")
