"""Where named definitions come from, and how definition files are validated.

Built-in definitions live in code (definitions/acme.py). Process owners add their own as
JSON or TOML files in `ITSM_DEFINITIONS_DIR`; a file's `kind` says which model it is."""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from definitions import acme
from definitions.base import Definition
from definitions.catalog import Catalog
from definitions.change import ChangePolicy
from definitions.incident import IncidentPolicy
from definitions.org import Organisation
from definitions.problem import ProblemPolicy

# A definition of any kind: the built-ins' and each loaded process's own (kinds()).
AnyDefinition = Definition
DEFINITIONS_GROUP = "itsmflow.definitions"


def kinds() -> dict[str, type[Definition]]:
    """Definition kinds: the organisation every process shares, and each loaded process's
    own (its declaration's `definitions`)."""
    from itsmflow.process import resolve
    from itsmflow.processes import processes

    found: dict[str, type[Definition]] = {"organisation": Organisation}
    for process in processes():
        for kind, path in process.definitions.items():
            found.setdefault(kind, resolve(path))
    return found

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


MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 32


def _depth(value, limit: int) -> bool:
    """True when `value` nests deeper than `limit` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _read(path: Path) -> dict:
    """A definition file's data: a regular file of at most MAX_FILE_BYTES, nested at most
    MAX_DEPTH deep (a symlink to /dev/zero or a pathological file is refused, not read)."""
    try:
        if not path.is_file():
            raise DefinitionError([f"{path}: not a regular file"])
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise DefinitionError([f"{path}: cannot read: {err.strerror}"]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise DefinitionError([f"{path}: larger than {MAX_FILE_BYTES:,} bytes"])
    kind = "TOML" if path.suffix == ".toml" else "JSON"
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text) if kind == "TOML" else json.loads(text)
    except RecursionError:
        raise DefinitionError([f"{path}: nested deeper than {MAX_DEPTH} levels"]) from None
    except (ValueError, tomllib.TOMLDecodeError) as err:
        raise DefinitionError([f"{path}: not valid {kind}: {err}"]) from None
    if not isinstance(data, dict):
        raise DefinitionError([f"{path}: top level must be a table/object"])
    if _depth(data, MAX_DEPTH):
        raise DefinitionError([f"{path}: nested deeper than {MAX_DEPTH} levels"])
    return data


def _location(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _validate(data: dict, source: str) -> AnyDefinition:
    """One definition's own shape; every problem is reported, one line each."""
    kind = data.get("kind")
    known = kinds()
    model = known.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise DefinitionError([f"{source}: kind: must be one of {', '.join(sorted(known))} (got {kind!r})"])
    try:
        return TypeAdapter(model).validate_python(data)
    except RecursionError:
        raise DefinitionError([f"{source}: nested deeper than {MAX_DEPTH} levels"]) from None
    except ValidationError as err:
        problems = []
        for error in err.errors():
            message = error["msg"].removeprefix("Value error, ")
            for part in message.split("; "):
                problems.append(f"{source}: {_location(error['loc'])}: {part}")
        raise DefinitionError(problems) from None


def _references(definition: AnyDefinition, source: str, known: dict[str, AnyDefinition]) -> None:
    """A policy or catalog must name an organisation that exists and use only its groups and CIs."""
    if isinstance(definition, (ChangePolicy, IncidentPolicy, ProblemPolicy, Catalog)):
        org = known.get(definition.organisation)
        if not isinstance(org, Organisation):
            raise DefinitionError([f"{source}: organisation: unknown organisation {definition.organisation!r}"])
        problems = definition.reference_problems(org)
        if problems:
            raise DefinitionError([f"{source}: {p}" for p in problems])


def parse(data: dict, source: str = "definition") -> AnyDefinition:
    """Validate one definition, its references resolved against the built-ins and the files."""
    definition = _validate(data, source)
    _references(definition, source, {**load().definitions, definition.name: definition})
    return definition


def load_file(path: str | Path) -> AnyDefinition:
    path = Path(path)
    return parse(_read(path), str(path))


@dataclass
class Loaded:
    """Every definition, in one resolution order: the built-ins, then each readable file
    (which may not shadow a built-in or another file); `problems` has a line per broken file."""

    definitions: dict[str, AnyDefinition]
    problems: list[str]


def _user_files() -> tuple[list[Path], list[str]]:
    folder = os.environ.get("ITSM_DEFINITIONS_DIR")
    if not folder:
        return [], []
    if not Path(folder).is_dir():
        return [], [f"ITSM_DEFINITIONS_DIR {folder} is not a folder"]
    return sorted(p for p in Path(folder).iterdir() if p.suffix in (".json", ".toml")), []


def _packaged(found: dict, where: dict, problems: list[str]) -> None:
    """Definitions packages register as Python objects (entry point group `itsmflow.definitions`,
    each a definition or a sequence of them): the same no-shadowing rule as files."""
    from importlib.metadata import entry_points

    from itsmflow.process import resolve

    models = tuple(kinds().values())
    for entry in entry_points(group=DEFINITIONS_GROUP):
        source = f"entry point {entry.name!r} ({entry.value})"
        try:
            value = resolve(entry.value)
        except Exception as err:  # noqa: BLE001 (a foreign module: one line naming it)
            problems.append(f"{source}: cannot load: {type(err).__name__}: {err}")
            continue
        for definition in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(definition, models):
                problems.append(f"{source}: {type(definition).__name__} is not a definition of a known kind")
            elif definition.name in where:
                problems.append(f"{source}: defines {definition.name!r}, which is already {where[definition.name]}")
            else:
                found[definition.name], where[definition.name] = definition, source


def load() -> Loaded:
    files, problems = _user_files()
    found: dict[str, AnyDefinition] = dict(BUILTIN)
    where: dict[str, str] = {name: "built in" for name in BUILTIN}
    _packaged(found, where, problems)
    pending: list[tuple[AnyDefinition, str]] = []
    for path in files:
        try:
            definition = _validate(_read(path), str(path))
        except DefinitionError as err:
            problems += err.problems
            continue
        if definition.name in where:
            problems.append(f"{path}: defines {definition.name!r}, which is already {where[definition.name]}"
                            if where[definition.name] == "built in" else
                            f"{path}: defines {definition.name!r}, as {where[definition.name]} does")
            continue
        found[definition.name], where[definition.name] = definition, str(path)
        pending.append((definition, str(path)))
    for definition, source in pending:
        try:
            _references(definition, source, found)
        except DefinitionError as err:
            problems += err.problems
            del found[definition.name]
    return Loaded(found, problems)


def check_all() -> None:
    """Every definition loads (the worker's start): any broken file is an error."""
    problems = load().problems
    if problems:
        raise DefinitionError(problems)


def all_definitions(strict: bool = False) -> dict[str, AnyDefinition]:
    """Every readable definition; read commands stay usable beside one broken file (`strict`:
    refuse it, as the worker does)."""
    loaded = load()
    if strict and loaded.problems:
        raise DefinitionError(loaded.problems)
    return loaded.definitions


def get(name: str, model: type | None = None):
    """The definition `name` (of `model`'s kind): a built-in, else a file's."""
    definition = BUILTIN.get(name)
    if definition is not None and (model is None or isinstance(definition, model)):
        return definition
    loaded = load()
    definition = loaded.definitions.get(name)
    if definition is None or (model is not None and not isinstance(definition, model)):
        wanted = "definition" if model is None else _kind_of(model)
        names = sorted(n for n, d in loaded.definitions.items() if model is None or isinstance(d, model))
        broken = (f"; {len(loaded.problems)} problem(s) in definition files, first: {loaded.problems[0]}"
                  if loaded.problems else "")
        raise DefinitionError([f"unknown {wanted} {name!r} (known: {', '.join(names) or 'none'}){broken}"])
    return definition


def _kind_of(model: type) -> str:
    return next((k for k, m in kinds().items() if m is model), model.__name__)


def dump(definition: AnyDefinition) -> dict:
    return definition.model_dump(mode="json")
