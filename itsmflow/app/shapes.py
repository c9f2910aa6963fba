"""What the lean read path (itsmflow/app/lean_read.py) knows of the built-in processes without
importing pydantic or the declarations (~0.2 s): each one's id prefix, workflow type, status
model, `show` card and list column, the field layout of every status model, and the constants
of the memo it reads.

The block below is generated from the declarations and the models: after changing a status
model, a built-in declaration or a memo constant, run `python -m itsmflow.app.shapes` (it
rewrites the block); tests/cli/test_lean_shapes.py fails until then.

SHAPES holds every status model and each model inside one, by name: `[{field: shape},
{field: default}]`, its fields in declaration order and the JSON of each default (so a run of
an older version, without a field added since, reads as the full path reads it: defaults
filled in). A field's shape is `None` (a value passed on as it is: text, a number, a list of
them), `"title"` or `"text"` (a string the model validates with definitions.text's Title or
Text: passed on only when validating would leave it as it is), `"@Model"` (that model),
`["list", shape]` or `["dict", shape]` (by key). A status model that rewrites values any other
way (another validator or serializer, a model validator, a config) has no shape: the generator
refuses it, and the lean path must learn it first."""

from __future__ import annotations

from typing import Any

# BEGIN GENERATED (python -m itsmflow.app.shapes)
MEMO_STATUS = 'status'
MEMO_TEXT = 500
TIMELINE_HEAD = 20
QUERY_SECONDS = 5
MAX_TITLE = 200
MAX_TEXT = 32768
PROCESSES: dict[str, dict[str, Any]] = {
    'CHG': {
        'name': 'change', 'workflow': 'ChangeWorkflow', 'status': 'ChangeStatus', 'card': 'change', 'column': None,
    },
    'INC': {
        'name': 'incident', 'workflow': 'IncidentWorkflow', 'status': 'IncidentStatus', 'card': 'incident',
        'column': 'priority',
    },
    'PRB': {
        'name': 'problem', 'workflow': 'ProblemWorkflow', 'status': 'ProblemStatus', 'card': 'problem',
        'column': 'group',
    },
    'REQ': {
        'name': 'request', 'workflow': 'RequestWorkflow', 'status': 'RequestStatus', 'card': 'generic',
        'column': None,
    },
    'RITM': {'name': 'item', 'workflow': 'ItemWorkflow', 'status': 'ItemStatus', 'card': 'generic', 'column': None},
    'TASK': {
        'name': 'task', 'workflow': 'ManualTaskWorkflow', 'status': 'ManualTaskResult', 'card': 'generic',
        'column': 'group',
    },
}
SHAPES: dict[str, list[Any]] = {
    'DecisionRecord': [{'user': None, 'decision': None, 'time': None, 'comment': None}, {'comment': ''}],
    'LevelState': [
        {
            'level': None, 'name': None, 'group': None, 'rule': None, 'quorum': None, 'required': None,
            'status': None, 'decisions': ['list', '@DecisionRecord'], 'escalations': None, 'started_at': None,
            'decided_at': None,
        },
        {
            'quorum': None, 'required': 1, 'status': 'pending', 'decisions': [], 'escalations': 0,
            'started_at': None, 'decided_at': None,
        },
    ],
    'ChangeStatus': [
        {
            'id': None, 'title': 'title', 'type': None, 'template': None, 'state': None, 'risk': None,
            'risk_rule': None, 'requested_by': None, 'cis': None, 'planned_start': None, 'planned_end': None,
            'original_start': None, 'outage': None, 'policy': None, 'close_code': None, 'implemented_by': None,
            'implementation_notes': None, 'reason': None, 'conflicts': None, 'notices': None,
            'approvals': ['list', '@LevelState'], 'problem': None, 'release': None,
        },
        {
            'template': None, 'risk': None, 'risk_rule': None, 'original_start': None, 'outage': False,
            'close_code': None, 'implemented_by': None, 'implementation_notes': '', 'reason': '', 'conflicts': [],
            'notices': [], 'approvals': [], 'problem': None, 'release': None,
        },
    ],
    'AttachedEvent': [{'seen_at': None, 'title': 'title'}, {'title': ''}],
    'EscalationStatus': [
        {
            'policy': None, 'step': None, 'next_at': None, 'active': None, 'loops': None, 'turns': None,
            'sequence': None, 'notified': None,
        },
        {
            'policy': None, 'step': 1, 'next_at': None, 'active': False, 'loops': {}, 'turns': {}, 'sequence': 0,
            'notified': [],
        },
    ],
    'SlaClock': [
        {
            'name': None, 'target': None, 'calendar': None, 'due': None, 'elapsed_percent': None, 'paused': None,
            'breached': None, 'met_at': None, 'notices_sent': None,
        },
        {
            'due': None, 'elapsed_percent': 0.0, 'paused': False, 'breached': False, 'met_at': None,
            'notices_sent': [],
        },
    ],
    'Pause': [{'start': None, 'end': None}, {'end': None}],
    'Event': [{'time': None, 'actor': None, 'action': None, 'details': None}, {'details': ''}],
    'KnownError': [
        {'problem_id': None, 'ci': None, 'title': None, 'root_cause': None, 'workaround': None}, {'root_cause': ''},
    ],
    'IncidentStatus': [
        {
            'id': None, 'title': 'title', 'description': 'text', 'ci': None, 'state': None, 'priority': None,
            'impact': None, 'urgency': None, 'assigned_group': None, 'acknowledged_by': None,
            'acknowledged_at': None, 'opened_by': None, 'opened_at': None, 'resolved_at': None, 'closed_at': None,
            'resolution_code': None, 'resolution_notes': None, 'resolutions': None, 'major': None,
            'impacted_services': None, 'dedup_key': None, 'dedup_count': None, 'last_seen': None,
            'recent_events': ['list', '@AttachedEvent'], 'escalation': '@EscalationStatus',
            'sla': ['dict', '@SlaClock'], 'pauses': ['list', '@Pause'], 'events': ['list', '@Event'],
            'events_omitted': None, 'notices': None, 'policy': None, 'runs': None, 'problem': None,
            'known_errors': ['list', '@KnownError'],
        },
        {
            'description': '', 'ci': None, 'state': 'new', 'acknowledged_by': None, 'acknowledged_at': None,
            'resolved_at': None, 'closed_at': None, 'resolution_code': None, 'resolution_notes': '',
            'resolutions': 0, 'major': False, 'impacted_services': [], 'dedup_key': None, 'dedup_count': 1,
            'last_seen': None, 'recent_events': [],
            'escalation': {
                'policy': None, 'step': 1, 'next_at': None, 'active': False, 'loops': {}, 'turns': {},
                'sequence': 0, 'notified': [],
            },
            'sla': {}, 'pauses': [], 'events': [], 'events_omitted': 0, 'notices': [], 'policy': '', 'runs': 1,
            'problem': None, 'known_errors': [],
        },
    ],
    'ChangeLink': [{'id': None, 'linked_by': None, 'outcome': None}, {'outcome': None}],
    'ProblemStatus': [
        {
            'id': None, 'title': 'title', 'description': 'text', 'ci': None, 'state': None, 'opened_by': None,
            'opened_at': None, 'suggested': None, 'incidents': None, 'root_cause': None, 'workaround': None,
            'known_error_revision': None, 'changes': ['list', '@ChangeLink'], 'resolved_at': None,
            'resolution_notes': None, 'closed_at': None, 'reason': None, 'events': ['list', '@Event'],
            'events_omitted': None, 'notices': None, 'policy': None,
        },
        {
            'description': '', 'state': 'new', 'suggested': False, 'incidents': [], 'root_cause': '',
            'workaround': '', 'known_error_revision': 0, 'changes': [], 'resolved_at': None, 'resolution_notes': '',
            'closed_at': None, 'reason': '', 'events': [], 'events_omitted': 0, 'notices': [], 'policy': '',
        },
    ],
    'ItemRef': [
        {'id': None, 'item': None, 'state': None, 'after': None, 'reason': None},
        {'state': 'requested', 'after': [], 'reason': ''},
    ],
    'RequestStatus': [
        {
            'id': None, 'item': None, 'title': 'title', 'state': None, 'requested_by': None, 'requested_for': None,
            'variables': None, 'items': ['list', '@ItemRef'], 'events': ['list', '@Event'], 'events_omitted': None,
            'reason': None,
        },
        {'state': 'requested', 'variables': {}, 'items': [], 'events': [], 'events_omitted': 0, 'reason': ''},
    ],
    'TaskStatus': [
        {
            'name': None, 'kind': None, 'title': 'title', 'state': None, 'group': None, 'task_id': None, 'by': None,
            'notes': None, 'fallback': None, 'finished_at': None,
        },
        {
            'state': 'pending', 'group': None, 'task_id': None, 'by': None, 'notes': '', 'fallback': False,
            'finished_at': None,
        },
    ],
    'ItemStatus': [
        {
            'id': None, 'request_id': None, 'item': None, 'title': 'title', 'state': None, 'variables': None,
            'requested_for': None, 'approvals': ['list', '@LevelState'], 'tasks': ['list', '@TaskStatus'],
            'events': ['list', '@Event'], 'events_omitted': None, 'sla': '@SlaClock', 'expires_at': None,
            'reason': None,
        },
        {
            'state': 'requested', 'variables': {}, 'requested_for': '', 'approvals': [], 'tasks': [], 'events': [],
            'events_omitted': 0, 'sla': None, 'expires_at': None, 'reason': '',
        },
    ],
    'ManualTaskResult': [
        {'id': None, 'state': None, 'title': 'title', 'group': None, 'item_id': None, 'by': None, 'notes': None},
        {'title': '', 'group': '', 'item_id': '', 'by': None, 'notes': ''},
    ],
}
# END GENERATED

# How each declared `show` formatter is drawn by itsmflow/app/cards.py (None: the generic card).
CARDS = {"cli.change:format_change": "change", "cli.incident:format_incident": "incident",
         "cli.problem:format_problem": "problem", None: "generic"}


def generate() -> dict[str, Any]:
    """The generated block's values, from the loaded declarations and models (imports pydantic,
    temporalio and click: for the generator and its test only)."""
    from cli.runs import _extra_column
    from definitions.text import MAX_TEXT, MAX_TITLE
    from itsmflow.app.ops import QUERY_TIMEOUT
    from itsmflow.process import resolve
    from itsmflow.processes import processes
    from workflows.base import MEMO_STATUS, MEMO_TEXT
    from workflows.models import TIMELINE_HEAD

    declared: dict[str, dict[str, Any]] = {}
    shapes: dict[str, list[Any]] = {}
    for process in processes():
        if not process.workflows[0].startswith("workflows.") or process.show not in CARDS:
            continue  # a package's process: the full path reads it
        model = resolve(process.status)
        declared[process.prefix] = {"name": process.name, "workflow": process.workflow_type,
                                    "status": model.__name__, "card": CARDS[process.show],
                                    "column": _extra_column(process.name)}
        _shape(model, shapes)
    return {"MEMO_STATUS": MEMO_STATUS, "MEMO_TEXT": MEMO_TEXT, "TIMELINE_HEAD": TIMELINE_HEAD,
            "QUERY_SECONDS": int(QUERY_TIMEOUT.total_seconds()), "MAX_TITLE": MAX_TITLE, "MAX_TEXT": MAX_TEXT,
            "PROCESSES": declared, "SHAPES": shapes}


def model_shape(model: Any, shapes: dict[str, list[Any]]) -> list[Any]:
    """[fields, defaults] of `model`; the models inside it go into `shapes` by name."""
    from pydantic import TypeAdapter

    decorators = model.__pydantic_decorators__
    rewrites = [kind for kind in ("validators", "field_validators", "root_validators", "field_serializers",
                                  "model_serializers", "model_validators", "computed_fields")
                if getattr(decorators, kind)]
    config = set(model.model_config) - {"extra", "frozen"}  # the lean path refuses any field it does not know
    if rewrites or config:
        raise TypeError(f"{model.__name__}: {', '.join([*rewrites, *sorted(config)])} may rewrite values")
    fields = {name: _shape(field.annotation, shapes, tuple(field.metadata))
              for name, field in model.model_fields.items()}
    defaults = {name: TypeAdapter(field.annotation).dump_python(field.get_default(call_default_factory=True),
                                                                mode="json")
                for name, field in model.model_fields.items() if not field.is_required()}
    return [fields, defaults]


def _shape(annotation: Any, shapes: dict[str, list[Any]], metadata: tuple[Any, ...] = ()) -> Any:
    import types
    from typing import Annotated, Union, get_args, get_origin

    from pydantic import BaseModel

    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _shape(args[0], shapes, metadata + tuple(annotation.__metadata__))
    marked = _marked(metadata)
    if marked:
        if annotation is not str:
            raise TypeError(f"{annotation}: a {marked} that is not a str")
        return marked
    if origin in (Union, types.UnionType):
        inner = [_shape(arg, shapes) for arg in args if arg is not type(None)]
        if len(inner) == 1:
            return inner[0]
        if any(shape is not None for shape in inner):
            raise TypeError(f"{annotation}: a union with a model in it has no single shape")
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        shape = model_shape(annotation, shapes)
        if shapes.setdefault(annotation.__name__, shape) != shape:
            raise TypeError(f"two models named {annotation.__name__}")
        return f"@{annotation.__name__}"
    if origin in (list, dict) and args:
        element = _shape(args[-1], shapes)
        return None if element is None else [origin.__name__, element]
    if origin in (tuple, set, frozenset) and any(_shape(arg, shapes) is not None for arg in args
                                                 if arg is not Ellipsis):
        raise TypeError(f"{annotation}: models inside a {origin.__name__} have no shape here")
    return None


def _marked(metadata: tuple[Any, ...]) -> str | None:
    """"title" or "text" for definitions.text's Title or Text; None for no rewriting at all."""
    from typing import get_args

    from pydantic import functional_serializers, functional_validators

    from definitions.text import Text, Title

    known = {id(get_args(Title)[1]): "title", id(get_args(Text)[1]): "text"}
    kinds = (functional_validators.BeforeValidator, functional_validators.AfterValidator,
             functional_validators.PlainValidator, functional_validators.WrapValidator,
             functional_serializers.PlainSerializer, functional_serializers.WrapSerializer)
    rewriting = [item for item in metadata if isinstance(item, kinds)]
    marks = {known.get(id(item)) for item in rewriting}
    if None in marks or len(marks) > 1:
        raise TypeError(f"{rewriting}: a validator or serializer the lean path does not know")
    return marks.pop() if marks else None


def render(values: dict[str, Any]) -> str:
    """The generated block's Python text, items packed to lines of at most 116 characters."""
    lines = []
    for name, value in values.items():
        typed = {"PROCESSES": ": dict[str, dict[str, Any]]", "SHAPES": ": dict[str, list[Any]]"}.get(name, "")
        lines.append(f"{name}{typed} = {_packed(value, 0)}")
    return "\n".join(lines) + "\n"


def _packed(value: Any, indent: int, lead: int = 0, width: int = 116) -> str:
    """`value`'s repr, broken over lines indented by `indent` when it does not fit after `lead`
    characters (its key) and a comma."""
    flat = repr(value)
    if indent + lead + len(flat) + 1 <= width or not isinstance(value, (dict, list)) or not value:
        return flat
    items = ([f"{key!r}: {_packed(item, indent + 4, len(repr(key)) + 2)}" for key, item in value.items()]
             if isinstance(value, dict) else [_packed(item, indent + 4) for item in value])
    pad, rows, row = " " * (indent + 4), [], ""
    for item in items:
        if row and ("\n" in item or len(pad) + len(row) + len(item) + 2 > width):
            rows.append(row)
            row = ""
        row = f"{row} {item}," if row else f"{item},"
        if "\n" in item:
            rows.append(row)
            row = ""
    rows += [row] if row else []
    opening, closing = "{}" if isinstance(value, dict) else "[]"
    return opening + "\n" + "\n".join(pad + r for r in rows) + "\n" + " " * indent + closing


def main() -> None:
    from pathlib import Path

    path = Path(__file__)
    text = path.read_text(encoding="utf-8")
    begin, end = "# BEGIN GENERATED (python -m itsmflow.app.shapes)\n", "# END GENERATED\n"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    path.write_text(head + begin + render(generate()) + end + tail, encoding="utf-8")


if __name__ == "__main__":
    main()
