"""`itsm runs timeline`: a run's audit trail (itsmflow.app.audit rows) as something to read — one line
per action with the time since the run started, a section per state, the long waits on
people and timers as gaps, human actions marked, children nested under their run — or as a
Mermaid gantt chart with one bar per state interval.

Everything but `parents_of` is a pure function of the rows, so the rendering is tested on
hand-made rows; the rows themselves come from the run's history (itsmflow.app.audit)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from itsmflow.app.formats import iso_utc, short_time
from itsmflow.app.mermaid import gantt_text

GAP = timedelta(minutes=15)
HUMAN_MARK = "*"
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def span(delta: timedelta) -> str:
    """The two largest units, whole seconds: `45s`, `3m20s`, `2h15m`, `1d4h`, `2h`."""
    seconds = max(0, int(delta.total_seconds()))
    parts = []
    for unit, size in _UNITS:
        amount, seconds = divmod(seconds, size)
        parts.append((amount, unit))
    while parts and parts[0][0] == 0:
        parts.pop(0)
    shown = [f"{amount}{unit}" for amount, unit in parts[:2] if amount]
    return "".join(shown) or "0s"


def is_human(row: dict) -> bool:
    return row["actor"] != "system"


def _process(run_id: str) -> str:
    from itsmflow.app.ids import process_of

    return process_of(run_id) or "run"


def _runs(rows: list[dict], root: str, parents: dict[str, str]) -> tuple[dict[str, list[dict]], dict[str, list[str]]]:
    """Rows by run (input order kept) and each run's children in the order they started.
    A run whose parent is unknown hangs under the root."""
    by_run: dict[str, list[dict]] = {root: []}
    for row in rows:
        by_run.setdefault(row["run"], []).append(row)
    children: dict[str, list[str]] = {run: [] for run in by_run}
    for run in by_run:
        if run != root:
            parent = parents.get(run)
            children[parent if parent in by_run and parent != run else root].append(run)
    for kids in children.values():
        kids.sort(key=lambda kid: (by_run[kid][0]["time"], kid))
    return by_run, children


def timeline_entries(rows: list[dict], root: str | None = None, parents: dict[str, str] | None = None,
                     gap: timedelta = GAP) -> list[dict]:
    """The timeline as entries, in reading order. Each has `kind` (run, state, action or gap),
    `run`, `depth`, `time`, `elapsed` (since the root run started); actions add `actor`,
    `action`, `details`, `human`; states add `state`; gaps add `waited`."""
    rows = sorted(rows, key=lambda row: row["time"])
    if not rows:
        return []
    root = root or rows[0]["run"]
    by_run, children = _runs(rows, root, parents or {})
    origin = rows[0]["time"]
    entries: list[dict] = []

    def base(kind: str, run: str, depth: int, moment: datetime) -> dict:
        return {"kind": kind, "run": run, "depth": depth, "time": moment, "elapsed": moment - origin}

    def walk(run: str, depth: int) -> None:
        own = by_run[run]
        entries.append({**base("run", run, depth, own[0]["time"] if own else origin), "process": _process(run)})
        pending = list(children[run])
        previous = None
        for row in own:
            while pending and by_run[pending[0]][0]["time"] < row["time"]:
                walk(pending.pop(0), depth + 1)
            if previous is not None and row["time"] - previous > gap:
                entries.append({**base("gap", run, depth, row["time"]), "waited": row["time"] - previous})
            previous = row["time"]
            if row["action"] == "state":
                entries.append({**base("state", run, depth, row["time"]), "state": row["details"]})
            else:
                entries.append({**base("action", run, depth, row["time"]), "actor": row["actor"],
                                "action": row["action"], "details": row["details"], "human": is_human(row)})
        for kid in pending:
            walk(kid, depth + 1)

    walk(root, 0)
    return entries


def render_text(entries: list[dict]) -> str:
    """Readable lines: run headers, `── state ──` sections, `+elapsed` actions (human ones
    marked `*`), and `… 3h waiting …` where a run sat still for longer than the gap."""
    lines = []
    for entry in entries:
        pad = "    " * entry["depth"]
        elapsed = f"+{span(entry['elapsed'])}"
        kind = entry["kind"]
        if kind == "run":
            when = f"started {short_time(entry['time'])}" if entry["depth"] == 0 else f"started {elapsed}"
            lines.append(f"{pad}{entry['run']}  {entry['process']}  {when}")
        elif kind == "state":
            lines.append(f"{pad}  ── {entry['state']} ──  {elapsed}")
        elif kind == "gap":
            lines.append(f"{pad}  {'':>8}    … {span(entry['waited'])} waiting …")
        else:
            mark = HUMAN_MARK if entry["human"] else " "
            lines.append(f"{pad}  {elapsed:>8}  {mark} {entry['actor']:<8} {entry['action']:<18} "
                         f"{entry['details']}".rstrip())
    return "\n".join(lines) + ("\n" if lines else "")


def entries_json(entries: list[dict]) -> list[dict]:
    """JSON-ready entries: UTC ISO times, elapsed and waits as `+2h15m` text and seconds."""
    out = []
    for entry in entries:
        item = {**entry, "time": iso_utc(entry["time"]), "elapsed": f"+{span(entry['elapsed'])}",
                "elapsed_seconds": int(entry["elapsed"].total_seconds())}
        if "waited" in entry:
            item["waited"] = span(entry["waited"])
        out.append(item)
    return out


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def state_intervals(entries: list[dict], run: str) -> list[tuple[str, datetime, datetime]]:
    """(state, entered, left) of one run: a state lasts until the next one is entered, the
    last until the run's last recorded action."""
    own = [e for e in entries if e["run"] == run and e["kind"] in ("state", "action")]
    states = [e for e in own if e["kind"] == "state"]
    ends = [nxt["time"] for nxt in states[1:]] + [own[-1]["time"]] if states else []
    return [(state["state"], state["time"], end) for state, end in zip(states, ends)]


def render_gantt(entries: list[dict], title: str | None = None) -> str:
    """A Mermaid gantt: one section per run, one bar per state interval, a milestone per
    human action. Names are sanitised (the grammar reserves ':', ';' and '#')."""
    runs = [e for e in entries if e["kind"] == "run"]
    lines = ["gantt", f"    title {gantt_text(title or (runs[0]['run'] if runs else 'timeline'))}",
             "    dateFormat YYYY-MM-DDTHH:mm:ss", "    axisFormat %m-%d %H:%M", "    todayMarker off"]
    for run in runs:
        bars = [f"        {gantt_text(state)} :{_stamp(entered)}, {_stamp(left)}"
                for state, entered, left in state_intervals(entries, run["run"])]
        bars += [f"        {gantt_text(e['action'] + ' by ' + e['actor'])} :milestone, {_stamp(e['time'])}, 0d"
                 for e in entries if e["run"] == run["run"] and e["kind"] == "action" and e["human"]]
        if bars:
            lines += [f"    section {gantt_text(run['run'] + ' ' + run['process'])}", *bars]
    return "\n".join(lines) + "\n"


async def parents_of(client, rows: list[dict], root: str) -> dict[str, str]:
    """Each child run's parent id, from the server (the rows name their run, not its parent):
    a request's tasks then nest under the item that started them."""
    parents = {}
    for run in dict.fromkeys(row["run"] for row in rows):
        if run != root:
            description = await client.get_workflow_handle(run).describe()
            if description.parent_id:
                parents[run] = description.parent_id
    return parents
