"""The lean `show` and `list` reads (cli/fast.py): what itsmflow/app/ops.py `read` and
itsmflow/app/runs.py `list_rows` answer, read through the server's HTTP API with the standard
library alone (itsmflow/app/lean.py), for the built-in processes (itsmflow/app/shapes.py).

A show answers as ops.read does, in its order:

1. a completed run: its result (the history's last event);
2. a run that is not running, or whose workflow task keeps failing (attempt 2 or more), or
   whose task queue no worker polls: the status in its memo, as of its time and why it may be
   stale, in ops.read's words;
3. a running run a worker polls:
   a. from the memo, when no workflow task is pending and the memo is lossless (its whole
      timeline, no text cut at MEMO_TEXT, no fraction rounded to one decimal). With nothing
      pending, every event in the history has been applied by a workflow task; each workflow
      task re-evaluates `status()` and republishes it when it changed; and a query evaluates
      `status()` as of the last workflow task's time (`workflow.now()` in a query is that time,
      not the wall clock, so an SLA clock in a query answer stands still between tasks). The
      query would answer this same status, so it is not asked;
   b. otherwise, the query, asked as ops.read asks it (5 s). An incident's or an item's SLA
      clocks carry fractions (percent used), which the memo rounds, so they are always asked.
      No answer in time: the memo, "no worker answered in 5s".

Whatever it answers from, the status is what the full path prints after validating it into
its model (itsmflow/app/shapes.py): fields in order, the defaults of fields a run of an older
version lacks filled in.

Declined (`lean.Declined`: the full path answers, unchanged): a run of another process or
workflow type than the command's; no memo published yet; a payload that is not plain JSON
(encrypted); a status that validating would change otherwise (a field this CLI's model lacks,
a required one missing, a title not on one line); an HTTP failure other than a query left
unanswered."""

from __future__ import annotations

from typing import Any, NamedTuple

from definitions.characters import UNSAFE
from itsmflow.app import lean
from itsmflow.app.lean import Declined, payload, server_time
from itsmflow.app.queries import list_query
from itsmflow.app.shapes import MAX_TEXT, MAX_TITLE, MEMO_STATUS, MEMO_TEXT, PROCESSES, QUERY_SECONDS, SHAPES

Json = dict[str, Any]
# gRPC codes (in the HTTP API's error body) that ops.read takes for "no worker answered":
# DEADLINE_EXCEEDED, and FAILED_PRECONDITION ("no poller seen for task queue recently").
# Any other error is left to the full path (the SDK retries some; INVALID_ARGUMENT is a failed query).
_UNANSWERED = {4, 9}
_STATUS_PREFIX = "WORKFLOW_EXECUTION_STATUS_"


# A string the model validates as definitions.text's Title (one_line) or Text (shorten) passes
# unchanged exactly when these hold; otherwise the full path's validation would rewrite it.
_VALIDATED = {
    "title": lambda text: len(text) <= MAX_TITLE and text == text.strip() and not UNSAFE.search(text),
    "text": lambda text: len(text) <= MAX_TEXT,
}


class LeanRead(NamedTuple):
    """A status (its JSON as the run holds it), and when it was not read live: its time and why."""

    status: Json
    as_of: str | None = None
    stale: str | None = None


class NotFound(Exception):
    """No run has this id."""


def declared(run_id: str, process: str | None = None) -> Json:
    """The built-in process a run id belongs to (and must be `process`'s), or Declined."""
    found = PROCESSES.get(run_id.split("-", 1)[0])
    if found is None or (process is not None and found["name"] != process):
        raise Declined(f"{run_id} is not a run of a built-in {process or 'process'}")
    return found


def read(run_id: str, process: str | None = None) -> LeanRead:
    """The run's status as ops.read gives it (see the module's docstring); NotFound, Declined."""
    declaration = declared(run_id, process)
    model = declaration["status"]
    code, description = lean.api(f"workflows/{lean.quote(run_id)}")
    if code == 404:
        raise NotFound(run_id)
    if code != 200:
        raise Declined(f"describe answered {code}")
    info = description["workflowExecutionInfo"]
    if info["type"]["name"] != declaration["workflow"]:
        raise Declined(f"{run_id} runs {info['type']['name']}")
    status = info.get("status", "").removeprefix(_STATUS_PREFIX)
    if status in ("", "UNSPECIFIED"):
        raise Declined(f"{run_id} has no status")
    if status == "COMPLETED":
        return LeanRead(_as_read(_result(run_id, info["execution"]["runId"]), model))
    pending = description.get("pendingWorkflowTask")
    attempt = int(pending.get("attempt", 1)) if pending else 0
    published = _memo_status(info)
    if status != "RUNNING":
        reason = f"the run is {status.lower().replace('_', ' ')}"
    elif attempt > 1:
        reason = f"its workflow task is failing (attempt {attempt}: itsm runs show {run_id})"
    elif not _polled(description["executionConfig"]["taskQueue"]["name"]):
        reason = "no worker is polling its task queue (is `itsm worker` running?)"
    elif pending is None and published and _lossless(published):
        return LeanRead(_as_read(published["value"], model))
    else:
        answer = _query(run_id)
        if answer is not None:
            return LeanRead(_as_read(answer, model))
        reason = f"no worker answered in {QUERY_SECONDS}s"
    if not published:
        raise Declined(f"{run_id} has published no status: the full path replays it or says so")
    return LeanRead(_as_read(published["value"], model), as_of=published["at"], stale=reason)


def _memo_status(info: Json) -> Json | None:
    field = info.get("memo", {}).get("fields", {}).get(MEMO_STATUS)
    return payload(field) if field else None


def _result(run_id: str, run: str) -> Any:
    code, page = lean.api(f"workflows/{lean.quote(run_id)}/history-reverse",
                          {"execution.runId": run, "maximumPageSize": "1"})
    if code != 200:
        raise Declined(f"history answered {code}")
    completed = page["history"]["events"][0].get("workflowExecutionCompletedEventAttributes")
    if completed is None or completed.get("newExecutionRunId"):
        raise Declined("the last event is not this run's result")
    return payload(completed["result"]["payloads"][0])


def _polled(queue: str) -> bool:
    code, described = lean.api(f"task-queues/{lean.quote(queue)}", {"taskQueueType": "TASK_QUEUE_TYPE_WORKFLOW"})
    if code != 200:
        raise Declined(f"describe task queue answered {code}")
    return bool(described.get("pollers"))


def _query(run_id: str) -> Any | None:
    """The `status` query's answer, or None when no worker answered (ops.read's QUERY_TIMEOUT)."""
    try:
        code, answer = lean.api(f"workflows/{lean.quote(run_id)}/query/status",
                                body={"query": {"queryType": "status"}}, timeout=QUERY_SECONDS)
    except lean.NoAnswer:
        return None
    if code == 200 and not answer.get("queryRejected") and answer["queryResult"].get("payloads"):
        return payload(answer["queryResult"]["payloads"][0])
    if code != 200 and isinstance(answer, dict) and answer.get("code") in _UNANSWERED:
        return None
    raise Declined(f"the query answered {code}")


def _lossless(published: Json) -> bool:
    """Whether the memo holds the status whole: no timeline cut to its tail, no text cut to
    MEMO_TEXT, no fraction rounded (workflows/base.py compact_status)."""
    return published.get("events") == "all" and _whole(published["value"])


def _whole(value: Any) -> bool:
    if isinstance(value, float):
        return False
    if isinstance(value, str):
        return not (len(value) == MEMO_TEXT and value.endswith("…"))
    if isinstance(value, dict):
        return all(_whole(item) for item in value.values())
    if isinstance(value, list):
        return all(_whole(item) for item in value)
    return True


def _as_read(value: Any, model: str) -> Json:
    """`value` as the full path prints it once it has validated it into `model`: fields in the
    model's order, defaults filled in for those a run of an older version lacks. Declined when
    validating would do more (a field this CLI's model does not have, a required one missing,
    a title not on one line): the full path answers that its own way."""
    answer = _validated(value, f"@{model}")
    if not isinstance(answer, dict):
        raise Declined(f"the status is not a {model}")
    return answer


def _validated(value: Any, shape: Any) -> Any:
    if shape is None or value is None:
        return value
    if isinstance(shape, list):
        kind, inner = shape
        if kind == "list" and isinstance(value, list):
            return [_validated(item, inner) for item in value]
        if kind == "dict" and isinstance(value, dict):
            return {key: _validated(item, inner) for key, item in value.items()}
        raise Declined(f"not a {kind}: {value!r}")
    if shape.startswith("@"):
        fields, defaults = SHAPES[shape[1:]]
        if not isinstance(value, dict) or not set(value) <= set(fields) or not set(fields) <= {*value, *defaults}:
            raise Declined(f"not this CLI's {shape[1:]}")
        return {name: _validated(value[name], field) if name in value else defaults[name]
                for name, field in fields.items()}
    if isinstance(value, str) and _VALIDATED[shape](value):
        return value
    raise Declined(f"a {shape} its model would change: {value!r}")


def items(request: Json) -> list[Json | None]:
    """Each item's own status, as request_ops.items gives them (None: not started yet)."""
    found: list[Json | None] = []
    for ref in request["items"]:
        try:
            found.append(read(ref["id"], "item").status)
        except NotFound:
            found.append(None)
    return found


def column(process: str | None) -> str | None:
    """The column `list` adds for `process`'s runs (cli/runs.py _extra_column); Declined for a
    process that is not built in."""
    if process is None:
        return None
    for declaration in PROCESSES.values():
        if declaration["name"] == process:
            return declaration["column"]
    raise Declined(f"{process!r} is not a built-in process")


def list_rows(process: str | None, state: str | None, limit: int, priority: str | None = None) -> list[Json]:
    """What runs.list_rows gives: visibility rows, newest first (the SDK's paging: at most 1,000
    a page, `limit` in all). Declined for a memo that is not plain JSON (the full path marks
    the row undecodable)."""
    column(process)
    rows: list[Json] = []
    token = None
    while len(rows) < limit:
        query = {"query": list_query(process, state, priority), "pageSize": str(min(1000, limit - len(rows)))}
        code, page = lean.api("workflows", {**query, **({"nextPageToken": token} if token else {})})
        if code != 200:
            raise Declined(f"list answered {code}")
        rows += [_row(execution) for execution in page.get("executions") or []][:limit - len(rows)]
        token = page.get("nextPageToken")
        if not token:
            break
    return sorted(rows, key=lambda row: row["started"] or "", reverse=True)


def _row(execution: Json) -> Json:
    fields = execution.get("searchAttributes", {}).get("indexedFields", {})

    def listed(name: str) -> list[Any]:  # as the SDK decodes a search attribute: always a list
        value = payload(fields[name]) if name in fields else []
        return value if isinstance(value, list) else [value]

    memo = {name: payload(field) for name, field in execution.get("memo", {}).get("fields", {}).items()}
    status = execution.get("status", "").removeprefix(_STATUS_PREFIX)
    return {
        "id": execution["execution"]["workflowId"],
        "process": (listed("ItsmProcess") or [None])[0],
        "state": (listed("ItsmState") or [None])[0],
        "priority": (listed("ItsmPriority") or [None])[0],
        "group": (listed("ItsmGroup") or [None])[0],
        "parent": (listed("ItsmParent") or [None])[0],
        "title": memo.get("title", ""),
        "requested_by": (listed("ItsmRequester") or [None])[0],
        "cis": list(listed("ItsmCI") or []),
        "started": server_time(execution.get("startTime")),
        "closed": server_time(execution.get("closeTime")),
        "status": status.lower() if status and status != "UNSPECIFIED" else None,
    }
