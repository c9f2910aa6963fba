"""A lean read path: describe a run through the Temporal server's HTTP API with the
standard library only, so `itsm runs show` skips importing temporalio (~0.2 s).

It answers only when it can answer exactly what the full path would: a plain local server
(the embedded one pins its HTTP port at gRPC port + 10, or set ITSM_HTTP_ADDRESS), no API
key, TLS or profile file, and no encrypted memo. Otherwise it returns None and the caller
uses the regular client."""

from __future__ import annotations

import base64
import json
import os
import socket
from datetime import datetime
from pathlib import Path

from itsmflow.app.ids import process_of
from workflows.search_attributes import SEARCH_ATTRIBUTES

NOT_FOUND = object()
_DEFAULT_PROFILE_FILE = Path(os.environ.get("XDG_CONFIG_HOME",
                                            Path.home() / ".config")) / "temporalio" / "temporal.toml"


def http_address() -> str | None:
    if os.environ.get("ITSM_HTTP_ADDRESS"):
        return os.environ["ITSM_HTTP_ADDRESS"].rstrip("/")
    configured = [name for name in os.environ if name.startswith("TEMPORAL_") and name not in (
        "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE")]
    if configured or _DEFAULT_PROFILE_FILE.exists():
        return None
    host, _, port = os.environ.get("TEMPORAL_ADDRESS", "localhost:7233").rpartition(":")
    if host not in ("localhost", "127.0.0.1") or not port.isdigit():
        return None
    return f"http://{host}:{int(port) + 10}"


def _payload(value):
    """A search attribute / memo payload as the HTTP API renders it, decoded; raises
    ValueError for anything but plain JSON (e.g. encrypted)."""
    if not isinstance(value, dict) or "metadata" not in value:
        return value  # shorthand: json/plain payloads come as their JSON value
    encoding = base64.b64decode(value["metadata"].get("encoding", "")).decode()
    if encoding != "json/plain":
        raise ValueError(encoding)
    return json.loads(base64.b64decode(value.get("data", "")) or b"null")


def _time(text: str | None) -> str | None:
    if not text or text.startswith("0001-"):
        return None
    whole, _, fraction = text.rstrip("Z").partition(".")
    moment = datetime.fromisoformat(whole + ("." + fraction[:6] if fraction else "") + "+00:00")
    return moment.isoformat().replace("+00:00", "Z")


def _get(base: str, path: str, timeout: float) -> tuple[int, bytes]:
    """One HTTP/1.1 GET to a plain-http local server (http.client alone costs 16 ms to import)."""
    if not base.startswith("http://"):
        raise ValueError("only plain http is served by the lean path")
    host, _, port = base.removeprefix("http://").partition(":")
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n"
               "Connection: close\r\n\r\n").encode()
    chunks = []
    with socket.create_connection((host, int(port or 80)), timeout=timeout) as sock:
        sock.sendall(request)
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    return status, body


def _dechunk(body: bytes) -> bytes:
    out, rest = [], body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2:]
    return b"".join(out)


def _quote(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.~" else "".join(f"%{b:02X}" for b in c.encode()) for c in text)


def describe(run_id: str, timeout: float = 2.0):
    """The `runs show` record of `run_id`, NOT_FOUND, or None (use the full path)."""
    base = http_address()
    if base is None:
        return None
    namespace = _quote(os.environ.get("TEMPORAL_NAMESPACE", "default"))
    try:
        status, body = _get(base, f"/api/v1/namespaces/{namespace}/workflows/{_quote(run_id)}", timeout)
        if status == 404:
            return NOT_FOUND
        if status != 200:
            return None
        return _record(run_id, json.loads(body))
    except (OSError, KeyError, ValueError, TypeError, IndexError):
        return None


def ui_link(workflow_id: str) -> str:
    base = os.environ.get("ITSM_UI_URL", "http://localhost:8233").rstrip("/")
    return f"{base}/namespaces/{os.environ.get('TEMPORAL_NAMESPACE', 'default')}/workflows/{workflow_id}"


def format_run(info: dict, as_json: bool) -> str:
    """The text `itsm runs show` prints, whichever path produced `info`."""
    if as_json:
        return json.dumps(info, indent=2, default=str)
    lines = [f"{info['id']}  {info['title']}"]
    for key in ("process", "state", "status", "started", "closed", "history_length", "task_queue", "ui"):
        lines.append(f"  {key.replace('_', ' '):<15}{info[key] if info[key] is not None else '-'}")
    for p in info["pending_activities"]:
        failure = f" (last failure: {p['last_failure']})" if p["last_failure"] else ""
        lines.append(f"  pending        {p['activity']} attempt {p['attempt']}{failure}")
    task = info.get("workflow_task")
    if task:  # the run cannot move on until its code or its worker is fixed
        failure = f" (last failure: {task['last_failure']})" if task["last_failure"] else ""
        lines.append(f"  FAILING        workflow task attempt {task['attempt']}{failure}")
    return "\n".join(lines)


def _record(run_id: str, body: dict) -> dict:
    info = body["workflowExecutionInfo"]
    attrs = {k: _payload(v) for k, v in info.get("searchAttributes", {}).get("indexedFields", {}).items()
             if k.startswith("Itsm")}
    memo = {k: _payload(v) for k, v in info.get("memo", {}).get("fields", {}).items()}
    if any("encodedAttributes" in p.get("lastFailure", {}) for p in body.get("pendingActivities", [])):
        raise ValueError("an encrypted failure: the full path decodes it")
    if int((body.get("pendingWorkflowTask") or {}).get("attempt", 1)) > 1:
        raise ValueError("a failing workflow task: the full path reads its failure from history")
    pending = [{
        "activity": p["activityType"]["name"], "attempt": int(p.get("attempt", 1)),
        "state": _enum(p.get("state"), "PENDING_ACTIVITY_STATE_"),
        "last_failure": p.get("lastFailure", {}).get("message"),
    } for p in body.get("pendingActivities", [])]
    return {
        "id": info["execution"]["workflowId"], "process": attrs.get("ItsmProcess") or process_of(run_id),
        "state": attrs.get("ItsmState"), "title": memo.get("title", ""),
        "status": info["status"].removeprefix("WORKFLOW_EXECUTION_STATUS_").lower(),
        "workflow_type": info["type"]["name"], "task_queue": body["executionConfig"]["taskQueue"]["name"],
        "started": _time(info.get("startTime")), "closed": _time(info.get("closeTime")),
        "history_length": int(info.get("historyLength", 0)), "pending_activities": pending, "workflow_task": None,
        "search_attributes": {k: (_time(v) if SEARCH_ATTRIBUTES.get(k) == "Datetime" else v) for k, v in attrs.items()},
    }


def _enum(value, prefix: str):
    names = {"SCHEDULED": 1, "STARTED": 2, "CANCEL_REQUESTED": 3, "PAUSED": 4, "PAUSE_REQUESTED": 5}
    return names.get((value or "").removeprefix(prefix), 0)
