"""The lean read path (issue 16, fast reads) prints what the full path prints, for any status:
each `show` and `list` is run on the full click application with its read replaced by a
generated status, and drawn by cli/fast.py from the same status's JSON; the two must be the
same text. Also: the generated shapes match the models, the lean JSON is the full path's, and
the memo counts as lossless only when it is."""

from __future__ import annotations

import json
import re
import types
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any, Union, get_args, get_origin

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel

from cli.common import to_json_model
from cli.fast import _list_arguments, _show_arguments, lean, list_text, show_text
from itsmflow.app import cards, lean_read, shapes
from itsmflow.app.lean import Declined
from itsmflow.app.lean_read import LeanRead
from itsmflow.app.ops import Read
from itsmflow.process import resolve
from itsmflow.processes import named
from workflows.base import compact_model, compact_status

PROCESSES = {declared["name"]: (prefix, resolve(named(declared["name"]).status))
             for prefix, declared in shapes.PROCESSES.items()}
text = st.text(max_size=12)
CSI = re.compile(r"\033\[[0-?]*[ -/]*[@-~]")  # what click.echo strips when it writes to a pipe
quick = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])


def values(annotation: Any) -> st.SearchStrategy[Any]:
    """Any value of a status field's type (nested models built field by field)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return st.one_of([values(arg) for arg in args])
    if annotation is type(None):
        return st.none()
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return models(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return st.sampled_from(list(annotation))
    if origin is list:
        return st.lists(values(args[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(text, values(args[1]), max_size=2)
    moments = st.datetimes(datetime(2020, 1, 1), datetime(2040, 1, 1), timezones=st.just(timezone.utc))
    plain = {str: st.text(max_size=30), int: st.integers(-3, 10**6), bool: st.booleans(),
             float: st.floats(0, 500, allow_nan=False), timedelta: st.timedeltas(timedelta(0), timedelta(days=9)),
             datetime: moments, AwareDatetime: moments}
    if annotation in plain:
        return plain[annotation]
    if annotation in (dict, Any):
        return st.dictionaries(text, st.one_of(text, st.integers(), st.booleans(), st.none()), max_size=3)
    raise TypeError(f"no strategy for {annotation!r}")


def models(model: type[BaseModel]) -> st.SearchStrategy[Any]:
    return st.builds(model, **{name: values(field.annotation) for name, field in model.model_fields.items()})


def full(args: list[str], answer: Any, module: str) -> tuple[str, str]:
    """`itsm ARGS` on the full click application, its read (`module.run`) answering `answer`."""
    import importlib

    from cli.main import itsm

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(importlib.import_module(module), "run", lambda *args, **kwargs: answer)
        result = CliRunner().invoke(itsm, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout_bytes.decode(), result.stderr_bytes.decode()  # as written (.stdout drops \r)


def printed(text: str) -> str:
    return CSI.sub("", text + "\n")  # cli/fast.py _echo, to a pipe


def stale_reads() -> st.SearchStrategy[tuple[str | None, str | None]]:
    return st.one_of(st.just((None, None)), st.tuples(
        st.datetimes(timezones=st.just(timezone.utc)).map(lambda moment: moment.isoformat()), st.text(min_size=1)))


@pytest.mark.parametrize("noun", ["change", "incident", "problem"])
@pytest.mark.parametrize("as_json", [False, True])
@quick
@given(data=st.data())
def test_show_prints_what_the_full_path_prints(noun, as_json, data):
    prefix, model = PROCESSES[noun]
    status = data.draw(models(model)).model_copy(update={"id": f"{prefix}-20300101-AAAA"})
    as_of, stale = data.draw(stale_reads())
    flag = ["--json"] if as_json else []
    printed_by_full = full([noun, "show", status.id, *flag], Read(status, as_of, stale), "cli.common")
    dump = json.loads(status.model_dump_json())
    card = shapes.PROCESSES[prefix]["card"]
    assert printed_by_full == (printed(show_text(LeanRead(dump, as_of, stale), None, as_json, card)), "")


@pytest.mark.parametrize("noun", sorted(PROCESSES))
@pytest.mark.parametrize("as_json", [False, True])
@quick
@given(data=st.data())
def test_process_show_prints_what_the_full_path_prints(noun, as_json, data):
    prefix, model = PROCESSES[noun]
    status = data.draw(models(model)).model_copy(update={"id": f"{prefix}-20300101-AAAA"})
    as_of, stale = data.draw(stale_reads())
    flag = ["--json"] if as_json else []
    printed_by_full = full(["process", "show", status.id, *flag], Read(status, as_of, stale), "cli.process_cmd")
    dump = json.loads(status.model_dump_json())
    card = shapes.PROCESSES[prefix]["card"]
    assert printed_by_full == (printed(show_text(LeanRead(dump, as_of, stale), None, as_json, card)), "")


@pytest.mark.parametrize("as_json", [False, True])
@quick
@given(data=st.data())
def test_request_show_prints_what_the_full_path_prints(as_json, data):
    request = data.draw(models(PROCESSES["request"][1])).model_copy(update={"id": "REQ-20300101-AAAA"})
    items = [data.draw(st.none() | models(PROCESSES["item"][1])) for _ in request.items]
    as_of, stale = data.draw(stale_reads())
    flag = ["--json"] if as_json else []
    printed_by_full = full(["request", "show", request.id, *flag], (Read(request, as_of, stale), items),
                           "cli.request")
    dumps = [None if item is None else json.loads(item.model_dump_json()) for item in items]
    lean_read_ = LeanRead(json.loads(request.model_dump_json()), as_of, stale)
    assert printed_by_full == (printed(show_text(lean_read_, dumps, as_json, "generic")), "")


row = st.fixed_dictionaries({
    "id": text, "process": st.none() | text, "state": st.none() | text, "priority": st.none() | text,
    "group": st.none() | text, "parent": st.none() | text, "title": st.text(max_size=40),
    "requested_by": st.none() | text, "cis": st.lists(text, max_size=2),
    "started": st.none() | st.datetimes(timezones=st.just(timezone.utc)).map(lambda t: t.isoformat()),
    "closed": st.none() | st.datetimes(timezones=st.just(timezone.utc)).map(lambda t: t.isoformat()),
    "status": st.none() | st.sampled_from(["running", "completed", "terminated"]),
})


@pytest.mark.parametrize("args, process", [(["change", "list"], "change"), (["incident", "list"], "incident"),
                                           (["problem", "list"], "problem"), (["request", "list"], "request"),
                                           (["runs", "list"], None), (["runs", "list", "--process", "task"], "task"),
                                           (["runs", "list", "--process", "item"], "item")])
@pytest.mark.parametrize("as_json", [False, True])
@quick
@given(rows=st.lists(row, max_size=4))
def test_list_prints_what_the_full_path_prints(args, process, as_json, rows):
    flag = ["--json"] if as_json else []
    out, err = list_text(rows, lean_read.column(process), as_json)
    expected = ("", printed(out)) if err else (printed(out), "")
    assert full([*args, *flag], rows, "cli.runs") == expected


@quick
@given(data=st.data())
def test_the_lean_json_of_a_run_s_payload_is_the_full_path_s(data):
    """The full path validates the payload into the model and dumps it; the lean path gives the
    same from the payload (its fields in order, defaults for those an older run lacks), or
    declines when validating would do more."""
    prefix, model = PROCESSES[data.draw(st.sampled_from(sorted(PROCESSES)))]
    payload = json.loads(data.draw(models(model)).model_dump_json())

    def validated(value: dict) -> Any:
        return to_json_model(model.model_validate_json(json.dumps(value)))

    assert cards.utc(lean_read._as_read(payload, model.__name__)) == validated(payload)
    optional = [name for name, field in model.model_fields.items() if not field.is_required()]
    older = {k: v for k, v in payload.items() if k not in data.draw(st.sets(st.sampled_from(optional)))}
    reordered = dict(reversed(list(older.items())))
    assert cards.utc(lean_read._as_read(reordered, model.__name__)) == validated(older)  # defaults filled in
    required = [name for name, field in model.model_fields.items() if field.is_required()]
    for changed in ({k: v for k, v in payload.items() if k != required[0]},  # the full path refuses it
                    {**payload, "added_later": 1}):  # a newer run's: the full path drops it
        with pytest.raises(Declined):
            lean_read._as_read(changed, model.__name__)


@quick
@given(data=st.data(), long_text=st.text(min_size=495, max_size=505), events=st.integers(0, 14))
def test_the_memo_is_lossless_only_when_it_holds_the_whole_status(data, long_text, events):
    """What the lean path answers from the memo in place of the query must be the status
    itself: compact_status (workflows/base.py) keeps it whole, or the memo says it did not."""
    prefix, model = PROCESSES[data.draw(st.sampled_from(sorted(PROCESSES)))]
    status = data.draw(models(model)).model_dump(mode="json")
    if "title" in status:
        status["title"] = data.draw(st.sampled_from([status["title"], long_text]))
    if "events" in status:
        status["events"] = [{"time": "2030-01-01T00:00:00Z", "actor": "a", "action": "b", "details": ""}] * events
    published = compact_status(status)
    if lean_read._lossless(published):
        assert published["value"] == status


@quick
@given(data=st.data(), long_text=st.text(min_size=495, max_size=505), events=st.integers(0, 14))
def test_the_publisher_compacts_the_model_as_the_full_dump_would(data, long_text, events):
    """compact_model (the memo publisher's, which dumps only the timeline's tail) gives the
    same dict, in the same key order, as compact_status over the whole status."""
    prefix, model = PROCESSES[data.draw(st.sampled_from(sorted(PROCESSES)))]
    status = data.draw(models(model))
    if "title" in model.model_fields:
        status = status.model_copy(update={"title": data.draw(st.sampled_from([status.title, long_text]))})
    if "events" in model.model_fields:
        event_type = get_args(model.model_fields["events"].annotation)[0]
        timeline = [event_type(time=datetime(2030, 1, 1, tzinfo=timezone.utc), actor=f"a{n}", action="b",
                               details=long_text if n % 3 else "") for n in range(events)]
        status = status.model_copy(update={"events": timeline, "events_omitted": data.draw(st.integers(0, 3))})
    expected = compact_status(status.model_dump(mode="json"))
    published = compact_model(status)
    assert published == expected and json.dumps(published) == json.dumps(expected)


def test_the_generated_shapes_are_the_models_and_declarations():
    assert shapes.generate() == {name: getattr(shapes, name) for name in shapes.generate()}, (
        "itsmflow/app/shapes.py is out of date: run `python -m itsmflow.app.shapes`")


def test_the_shapes_of_the_models_are_read_field_by_field():
    """A model inside a list, a dict or an optional field has its own fields and defaults."""
    fields, defaults = shapes.SHAPES["IncidentStatus"]
    assert (fields["sla"], fields["events"], fields["escalation"]) == (["dict", "@SlaClock"], ["list", "@Event"],
                                                                       "@EscalationStatus")
    assert (fields["title"], fields["description"], fields["ci"]) == ("title", "text", None)
    assert defaults["escalation"]["step"] == 1 and "id" not in defaults
    assert shapes.SHAPES["AttachedEvent"] == [{"seen_at": None, "title": "title"}, {"title": ""}]


@given(value=st.text(alphabet=st.characters(codec="utf-8"), max_size=210) | st.text(min_size=190, max_size=210))
def test_a_title_passes_unchanged_exactly_when_the_model_would_keep_it(value):
    """The lean path answers with a Title / Text string only when validating it changes nothing."""
    from definitions.text import MAX_TEXT, one_line, shorten

    assert lean_read._VALIDATED["title"](value) == (one_line(value) == value)
    assert lean_read._VALIDATED["text"](value) == (shorten(value, MAX_TEXT) == value)
    assert not lean_read._VALIDATED["text"]("x" * (MAX_TEXT + 1))


@pytest.mark.parametrize("args", [
    ["change", "show"], ["change", "show", "A", "B"], ["change", "show", "--json", "--json", "A"],
    ["change", "show", "-h"], ["change", "show", "A", "--help"], ["change", "approve", "A"],
    ["change", "list", "--state", "a b"], ["change", "list", "--state", ""], ["change", "list", "--limit", "+5"],
    ["change", "list", "--limit", "x"], ["change", "list", "--limit"],
    ["change", "list", "--state", "a", "--state", "b"],
    ["change", "list", "--priority", "P1"], ["incident", "list", "--priority", "p1"], ["runs", "list", "--process"],
    ["change", "list", "--json", "--json"], ["change", "list", "extra"], ["task", "list"], ["runs", "history", "A"],
])
def test_anything_the_lean_path_does_not_know_goes_to_the_full_path(args, monkeypatch):
    """No server is asked: the full path parses (and refuses) what the lean path cannot be sure of."""
    monkeypatch.setattr("itsmflow.app.lean.api", lambda *a, **k: pytest.fail(f"asked the server for {args}"))
    assert lean(args) is None


def test_the_lean_path_reads_options_as_click_does():
    assert _show_arguments(["--json", "CHG-1"]) == ("CHG-1", True) and _show_arguments(["CHG-1"]) == ("CHG-1", False)
    assert _list_arguments(["--state=new", "--limit", "7", "--json"], ("--state", "--limit")) == {
        "process": None, "state": "new", "limit": 7, "priority": None, "json": True}
    assert _list_arguments(["--priority", "P2"], ("--priority",))["limit"] == 50  # the full path's default
