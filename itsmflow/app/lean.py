"""A lean read path: the Temporal server's HTTP API read with the standard library only, so
`itsm runs show` (here) and `show` / `list` (itsmflow/app/lean_read.py) skip importing
temporalio (~0.2 s) and click.

It answers only when it can answer exactly what the full path would: a plain local server
(the embedded one pins its HTTP port at gRPC port + 10, or set ITSM_HTTP_ADDRESS), no API
key, TLS or profile file, and no encrypted payload. Otherwise it declines (None, or
`Declined`) and the caller uses the regular client."""

from __future__ import annotations

import base64
import json
import os
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

from itsmflow.app.ids import process_of
from workflows.search_attributes import SEARCH_ATTRIBUTES

NOT_FOUND = object()
_DEFAULT_PROFILE_FILE = Path(os.environ.get("XDG_CONFIG_HOME",
                                            Path.home() / ".config")) / "temporalio" / "temporal.toml"


class Declined(ValueError):
    """The lean path cannot answer exactly what the full client would: the caller uses it."""


class NoAnswer(Declined):
    """The server did not answer within the call's timeout (a query no worker answered)."""


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


def _payload(value: Any) -> Any:
    """A search attribute / memo payload as the HTTP API renders it, decoded; raises
    ValueError for anything but plain JSON (e.g. encrypted)."""
    if not isinstance(value, dict) or "metadata" not in value:
        return value  # shorthand: json/plain payloads come as their JSON value
    encoding = base64.b64decode(value["metadata"].get("encoding", "")).decode()
    if encoding != "json/plain":
        raise ValueError(encoding)
    return json.loads(base64.b64decode(value.get("data", "")) or b"null")


def server_time(text: str | None) -> str | None:
    """A time as the HTTP API renders it (nanoseconds), as the SDK gives it: microseconds, UTC `Z`."""
    if not text or text.startswith("0001-"):
        return None
    whole, _, fraction = text.rstrip("Z").partition(".")
    moment = datetime.fromisoformat(whole + ("." + fraction[:6] if fraction else "") + "+00:00")
    return moment.isoformat().replace("+00:00", "Z")


def payload(value: dict[str, Any]) -> Any:
    """A payload as the HTTP API sends it with `noPayloadShorthand` (the bytes the worker
    wrote, so key order, empty lists and floats are kept), decoded; Declined for anything but
    plain JSON or null (an encrypted payload: the full path decodes it)."""
    encoding = base64.b64decode(value.get("metadata", {}).get("encoding", "")).decode()
    if encoding == "binary/null":
        return None
    if encoding != "json/plain":
        raise Declined(f"a {encoding or 'bare'} payload")
    return json.loads(base64.b64decode(value.get("data", "")) or b"null")


def api(path: str, query: dict[str, str] | None = None, *, body: Any = None, timeout: float = 2.0,
        ) -> tuple[int, Any]:
    """One call to the server's HTTP API under the namespace (`path` after it): the HTTP status
    and the JSON answer. Declined without a lean address or when the server cannot be read;
    NoAnswer (a Declined) when it did not answer within `timeout`."""
    base = http_address()
    if base is None:
        raise Declined("no plain local HTTP address")
    namespace = quote(os.environ.get("TEMPORAL_NAMESPACE", "default"))
    parameters = "&".join(f"{key}={quote(value)}" if value else key
                          for key, value in {**(query or {}), "noPayloadShorthand": ""}.items())
    try:
        status, answer = _get(base, f"/api/v1/namespaces/{namespace}/{path}?{parameters}", timeout,
                              None if body is None else json.dumps(body).encode())
        return status, json.loads(answer or b"null")
    except TimeoutError:
        raise NoAnswer(f"no answer in {timeout:.0f}s") from None
    except (OSError, ValueError, IndexError) as err:
        raise Declined(f"the HTTP API: {err}") from None


def _get(base: str, path: str, timeout: float, body: bytes | None = None) -> tuple[int, bytes]:
    """One HTTP/1.1 GET (or, with `body`, POST) to a plain-http local server (http.client alone
    costs 16 ms to import)."""
    if not base.startswith("http://"):
        raise ValueError("only plain http is served by the lean path")
    host, _, port = base.removeprefix("http://").partition(":")
    lines = [f"{'GET' if body is None else 'POST'} {path} HTTP/1.1", f"Host: {host}:{port}",
             "Accept: application/json", "Connection: close"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    chunks = []
    with socket.create_connection((host, int(port or 80)), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, answer = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        answer = _dechunk(answer)
    return status, answer


def _dechunk(body: bytes) -> bytes:
    out: list[bytes] = []
    rest = body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2:]
    return b"".join(out)


def quote(text: str) -> str:
    """`text` percent-encoded for a URL path segment or query value."""
    return "".join(c if (c.isascii() and c.isalnum()) or c in "-_.~" else "".join(f"%{b:02X}" for b in c.encode())
                   for c in text)


def describe(run_id: str, timeout: float = 2.0) -> Any:
    """The `runs show` record of `run_id`, NOT_FOUND, or None (use the full path)."""
    base = http_address()
    if base is None:
        return None
    namespace = quote(os.environ.get("TEMPORAL_NAMESPACE", "default"))
    try:
        status, body = _get(base, f"/api/v1/namespaces/{namespace}/workflows/{quote(run_id)}", timeout)
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


def format_run(info: dict[str, Any], as_json: bool) -> str:
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


def _record(run_id: str, body: dict[str, Any]) -> dict[str, Any]:
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
        "started": server_time(info.get("startTime")), "closed": server_time(info.get("closeTime")),
        "history_length": int(info.get("historyLength", 0)), "pending_activities": pending, "workflow_task": None,
        "search_attributes": {k: (server_time(v) if SEARCH_ATTRIBUTES.get(k) == "Datetime" else v)
                              for k, v in attrs.items()},
    }


def _enum(value: str | None, prefix: str) -> int:
    names = {"SCHEDULED": 1, "STARTED": 2, "CANCEL_REQUESTED": 3, "PAUSED": 4, "PAUSE_REQUESTED": 5}
    return names.get((value or "").removeprefix(prefix), 0)
