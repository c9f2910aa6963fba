"""`itsm demo`: every process that exists, end to end, acting as acme's sample users,
on a reachable Temporal server or the embedded one, with an in-process worker."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timedelta, timezone

import click

from cli.common import short_time, ui_link

DEMO_POLICY = "acme-demo"
LEAD_TIME = timedelta(seconds=5)


def _say(text: str) -> None:
    click.echo(f"  {datetime.now(timezone.utc):%H:%M:%S}  {text}")


async def _reachable(address: str) -> bool:
    from worker.connect import connect

    try:
        await asyncio.wait_for(connect(target_host=address), 3)
        return True
    except Exception:
        return False


def _ensure_server():
    """A server to use: TEMPORAL_ADDRESS if set, one already on :7233, or the embedded one."""
    from cli.server_cmd import _server, start_server

    if os.environ.get("TEMPORAL_ADDRESS"):
        return None
    server = _server(7233)
    if asyncio.run(_reachable(server.address)):
        click.echo(f"Using the Temporal server already running on {server.address}")
        return None
    click.echo(f"Starting the embedded Temporal dev server on {server.address} (UI {server.ui_url}) ...")
    start_server(server, detach=True)
    os.environ["TEMPORAL_ADDRESS"] = server.address
    return server


class Demo:
    def __init__(self, client, task_queue: str) -> None:
        from definitions import registry

        self.client = client
        self.task_queue = task_queue
        self.policy = registry.get(DEMO_POLICY)
        self.ids: list[tuple[str, str]] = []

    async def submit(self, label: str, actor: str, **fields):
        from itsmflow.app import change_ops
        from itsmflow.app.change_submit import build_change
        from itsmflow.app.ids import new_id

        now = datetime.now(timezone.utc)
        start = now + LEAD_TIME
        change = build_change(
            change_id=new_id("CHG", now), requested_by=actor, now=now, start=start,
            end=start + fields.pop("duration", timedelta(minutes=30)), policy=self.policy, **fields,
        )
        status = await change_ops.submit(self.client, change, self.task_queue)
        self.ids.append((status.id, label))
        _say(f"{actor} submitted {status.id} ({label}) → {status.state.value}")
        return status

    async def act(self, change_id: str, name: str, arg) -> None:
        from itsmflow.app import change_ops

        status = await change_ops.update(self.client, change_id, name, arg)
        _say(f"{arg.actor} {name}s {change_id} → {status.state.value}")

    async def wait_for(self, change_id: str, state: str) -> None:
        from itsmflow.app import change_ops

        while (await change_ops.status(self.client, change_id)).state.value != state:
            await asyncio.sleep(0.5)

    async def implement(self, change_id: str, actor: str, outcome: str = "successful") -> None:
        from workflows.change_models import CompleteInput, Outcome

        await self.wait_for(change_id, "implement")
        await self.act(change_id, "complete", CompleteInput(actor=actor, outcome=Outcome(outcome), notes="demo run"))

    async def standard_change(self) -> None:
        from definitions.change import ChangeType

        status = await self.submit(
            "standard, pre-approved", "alice", title="Restart web-01", cis=["web-01"],
            change_type=ChangeType.STANDARD, template="restart-web-server",
        )
        await self.implement(status.id, "frank")

    async def low_risk_change(self) -> None:
        from definitions.change import ChangeType
        from workflows.change_models import ApproveInput

        status = await self.submit("normal, low risk", "alice", title="Patch web-02 OS packages", cis=["web-02"],
                                   change_type=ChangeType.NORMAL)
        await self.act(status.id, "approve", ApproveInput(actor="bob", comment="routine patching"))
        await self.implement(status.id, "erin")

    async def high_risk_change(self) -> None:
        from definitions.change import ChangeType
        from workflows.change_models import ApproveInput

        status = await self.submit("normal, high risk, CAB quorum 2", "alice", title="Upgrade db-prod-1 to PG 17",
                                   cis=["db-prod-1"], change_type=ChangeType.NORMAL, outage=True)
        await self.act(status.id, "approve", ApproveInput(actor="bob", comment="plan reviewed"))
        await self.act(status.id, "approve", ApproveInput(actor="carol", comment="rollback tested"))
        await self.act(status.id, "approve", ApproveInput(actor="dave"))
        await self.implement(status.id, "grace")

    async def emergency_change(self) -> None:
        from definitions.change import ChangeType
        from workflows.change_models import ApproveInput

        status = await self.submit("emergency, ECAB", "alice", title="Hotfix lb-01 TLS config", cis=["lb-01"],
                                   change_type=ChangeType.EMERGENCY)
        await self.act(status.id, "approve", ApproveInput(actor="carol", comment="customer impact"))
        await self.implement(status.id, "dave", outcome="backed-out")

    async def rejected_change(self) -> None:
        from definitions.change import ChangeType
        from workflows.change_models import ApproveInput, RejectInput

        status = await self.submit("normal, moderate risk, rejected by CAB", "alice", title="Re-cable lb-01",
                                   cis=["lb-01"], change_type=ChangeType.NORMAL)
        await self.act(status.id, "approve", ApproveInput(actor="bob"))
        await self.act(status.id, "reject", RejectInput(actor="dave", reason="collides with the hotfix; resubmit"))

    async def incident(self) -> None:
        """A P1 on lb-01: paged, escalated by hand, acknowledged, declared major, held,
        resumed and resolved; a duplicate alert attaches to it."""
        from itsmflow.app import incident_ops
        from itsmflow.app.incident_submit import build_incident
        from workflows.incident_models import EscalateInput, IncidentResolveInput
        from workflows.models import ActorInput, ReasonInput

        async def act(actor, name, arg):
            status = await incident_ops.update(self.client, incident_id, name, arg)
            _say(f"{actor} {name.replace('_', ' ')} {incident_id} → {status.state.value}")
            return status

        def alert():  # the monitoring event, fired twice
            return build_incident(title="lb-01 health checks failing", ci="lb-01", impact=1, urgency=1,
                                  opened_by="erin", dedup_key="monitoring:lb-01:health")

        status, _ = await incident_ops.open_incident(self.client, alert(), self.task_queue)
        incident_id = status.id
        self.ids.append((incident_id, "incident P1, dedup, escalation, major"))
        _say(f"erin opened {incident_id} ({status.priority.value}) → {status.state.value}; "
             f"paged {', '.join(status.escalation.notified)}")
        again, attached = await incident_ops.open_incident(self.client, alert(), self.task_queue)
        _say(f"monitoring fired again → attached to {again.id} ({again.dedup_count} events)" if attached
             else f"monitoring fired again → opened {again.id}")
        status = await act("frank", "escalate", EscalateInput(actor="frank"))
        await act("dave", "acknowledge", ActorInput(actor="dave"))
        await act("dave", "declare_major", ReasonInput(actor="dave", reason="checkout down"))
        await act("dave", "hold", ReasonInput(actor="dave", reason="waiting for the vendor"))
        await act("dave", "resume", ActorInput(actor="dave"))
        status = await act("dave", "resolve", IncidentResolveInput(actor="dave", code="config-rollback",
                                                           notes="rolled back the TLS change"))
        response = status.sla["response"]
        _say(f"{incident_id}: response SLA {response.elapsed_percent:.1f}% used, met; "
             f"impacted services {', '.join(status.impacted_services)}")

    async def problem(self) -> None:
        """web-02 keeps failing: the third incident on it within the policy's week suggests a
        problem; grace records the root cause and a known error, which the next incident on
        web-02 shows; the change she raises for it closes successfully and resolves it."""
        from itsmflow.app import incident_ops, problem_ops
        from workflows.change_models import ApproveInput
        from workflows.incident_models import IncidentResolveInput
        from workflows.models import ActorInput, ReasonInput
        from workflows.models import ActorInput as ProblemActor
        from workflows.problem_models import KnownErrorInput, RootCauseInput

        async def incident(n: int, wait_for_known_error: bool = False):
            from itsmflow.app.incident_submit import build_incident

            status, _ = await incident_ops.open_incident(self.client, build_incident(
                title=f"web-02 answers 502 ({n})", ci="web-02", impact=3, urgency=2, opened_by="erin"), self.task_queue)
            for _ in range(120 if wait_for_known_error else 0):  # the CI check runs beside the first page
                if status.known_errors:
                    break
                await asyncio.sleep(0.25)
                status = await incident_ops.status(self.client, status.id)
            await incident_ops.update(self.client, status.id, "acknowledge", ActorInput(actor="frank"))
            await incident_ops.update(self.client, status.id, "resolve",
                                      IncidentResolveInput(actor="frank", code="restarted",
                                                           notes="restarted the app pool"))
            return status

        opened = [await incident(n) for n in range(1, 4)]
        _say(f"erin opened {', '.join(s.id for s in opened)} on web-02 (502s); frank restarted the app pool "
             "and resolved each")
        problem_id = None
        for _ in range(120):  # the third within the week suggests a problem (earlier demo runs count too)
            statuses = [await incident_ops.status(self.client, s.id) for s in opened]
            if statuses[-1].problem:  # the last one learns it from its own CI check
                problem_id = statuses[-1].problem
                said = [(s.id, e.details) for s in statuses for e in s.events if e.action == "problem"]
                first = next((pair for pair in said if pair[1].startswith("suggested")), said[-1])
                _say(f"{first[0]}: {first[1]}")
                break
            await asyncio.sleep(0.25)
        if problem_id is None:
            _say("no problem suggested (see the policy acme-problem)")
            return
        problem = await problem_ops.status(self.client, problem_id)
        self.ids.append((problem_id, "problem suggested by recurring incidents"))
        if problem.state.value != "new":
            _say(f"{problem_id} is already {problem.state.value} (an earlier demo run); leaving it be")
            return

        async def act(name: str, arg) -> None:
            status = await problem_ops.update(self.client, problem_id, name, arg)
            _say(f"{arg.actor} {name.replace('_', ' ')} {problem_id} → {status.state.value}")

        await act("investigate", ProblemActor(actor="grace"))
        await act("root_cause", RootCauseInput(actor="grace", text="app pool too small for the nightly batch"))
        await act("known_error", KnownErrorInput(actor="grace", workaround="restart the app pool on web-02"))
        status = await incident(4, wait_for_known_error=True)
        shown = "; ".join(f"{k.problem_id}: {k.workaround}" for k in status.known_errors) or "none"
        _say(f"erin opened {status.id} on web-02: it shows the known error ({shown})")

        from definitions.change import ChangeType

        change = await self.submit(f"normal, low risk, fixes {problem_id}", "grace", title="Double the web-02 app pool",
                                   cis=["web-02"], change_type=ChangeType.NORMAL, problem=problem_id)
        await self.act(change.id, "approve", ApproveInput(actor="bob", comment=f"fixes {problem_id}"))
        await self.implement(change.id, "erin")
        for _ in range(120):
            problem = await problem_ops.status(self.client, problem_id)
            if problem.state.value == "resolved":
                break
            await asyncio.sleep(0.25)
        _say(f"{change.id} closed successful → {problem_id} {problem.state.value}")
        if problem.state.value == "resolved":
            await act("close", ReasonInput(actor="carol", reason="fix verified"))

    async def requests(self) -> None:
        """Onboarding (account → laptop ∥ VPN → welcome) and a database read grant."""
        from itsmflow.app import request_ops
        from itsmflow.app.request_submit import build_request
        from workflows.change_models import ApproveInput
        from workflows.request_models import TaskActionInput

        async def open_task(item_id: str, name: str) -> str:
            while True:
                try:
                    item = await request_ops.status(self.client, item_id)
                    task = next(t for t in item.tasks if t.name == name)
                    if task.task_id and task.state.value == "open":
                        return task.task_id
                except Exception:  # the item has not started yet
                    pass
                await asyncio.sleep(0.3)

        onboarding = build_request(item_name="onboarding", requested_by="erin", requested_for="alice",
                                   raw={"name": "Zoe Zhang", "start_date": "2026-12-01", "team": "web"})
        status = await request_ops.submit(self.client, onboarding, self.task_queue)
        self.ids.append((status.id, "request: onboarding bundle"))
        made = ", ".join(f"{r.item} {r.state.value}" for r in status.items)
        _say(f"erin requested onboarding → {status.id} ({made})")
        items = {r.item: r.id for r in status.items}
        laptop_task = await open_task(items["laptop"], "prepare")
        while (await request_ops.status(self.client, items["vpn-access"])).state.value != "approval":
            await asyncio.sleep(0.3)
        approved = await request_ops.decide(self.client, status.id, "approve", ApproveInput(actor="dave"))
        _say(f"dave approved {approved.id} (vpn-access) → {approved.state.value}")
        done = await request_ops.task_action(self.client, laptop_task, "complete",
                                             TaskActionInput(actor="frank", notes="laptop handed over"))
        _say(f"frank completed {done.id} (prepare laptop) → {done.state.value}")
        while (await request_ops.status(self.client, status.id)).state.value != "fulfilled":
            await asyncio.sleep(0.3)
        _say(f"{status.id} fulfilled; VPN access expires in 90 days and is then revoked automatically")

        read = build_request(item_name="db-access", requested_by="alice", raw={"database": "db-prod-1", "role": "read"})
        status = await request_ops.submit(self.client, read, self.task_queue)
        self.ids.append((status.id, "request: db read access, no approval"))
        verify = await open_task(status.items[0].id, "verify")
        await request_ops.task_action(self.client, verify, "complete", TaskActionInput(actor="grace", notes="works"))
        _say(f"alice's {status.id} (db-access read): granted, verified by grace")

    async def timelines(self) -> None:
        from itsmflow.app import change_ops, incident_ops, request_ops
        from itsmflow.app.audit import audit_trail

        for change_id, label in self.ids:
            if change_id.startswith("REQ"):
                status = await request_ops.status(self.client, change_id)
                outcome = status.state.value
            elif change_id.startswith("PRB"):
                from itsmflow.app import problem_ops

                status = await problem_ops.status(self.client, change_id)
                outcome = status.state.value
            elif change_id.startswith("INC"):
                status = await incident_ops.status(self.client, change_id)
                outcome = f"{status.state.value} ({status.resolution_code})"
            else:
                status = await change_ops.status(self.client, change_id)
                outcome = status.state.value + (f" ({status.close_code.value})" if status.close_code else "")
            click.echo(f"\n{change_id}  {status.title}  [{label}]  → {outcome}")
            for row in await audit_trail(self.client, change_id):
                own = "" if not change_id.startswith("REQ") else " " * 20
                where = f"{row['run']:<19} " if row["run"] != change_id else own
                click.echo(f"  {short_time(row['time'])}  {where}{row['actor']:<7} {row['action']:<17} "
                           f"{row['details']}")
            click.echo(f"  {ui_link(change_id)}")


    async def release(self) -> None:
        """Two new changes bundled in a release, B after A: approved, go at window start, done."""
        from cli.release import release_graph
        from itsmflow.app import release_ops
        from itsmflow.app.release_ops import NewChange
        from workflows.change_models import ApproveInput
        from workflows.release_models import GoInput

        now = datetime.now(timezone.utc)
        release = release_ops.plan(
            title="Web tier release", start=now + LEAD_TIME, end=now + LEAD_TIME + timedelta(hours=1),
            requested_by="alice", manager="carol", now=now, existing=[], policy=self.policy,
            new=[NewChange("a", "Upgrade web-01", ["web-01"]), NewChange("b", "Upgrade web-02", ["web-02"])],
            after={"b": ["a"]})
        status = await release_ops.create(self.client, release, self.task_queue)
        _say(f"alice planned {status.id} ({', '.join(release.changes)}, B after A) → {status.state.value}")
        status = await release_ops.update(self.client, release.id, "approve", ApproveInput(actor="bob"))
        _say(f"bob approves {release.id} → {status.state.value}")
        while (await release_ops.read(self.client, release.id)).state.value != "go-no-go":
            await asyncio.sleep(0.5)
        status = await release_ops.update(self.client, release.id, "go", GoInput(actor="carol", comment="all green"))
        _say(f"carol says go for {release.id} → {status.state.value}")
        for change_id in release.changes:
            await self.implement(change_id, "erin")
        while (status := await release_ops.read(self.client, release.id)).state.value != "closed":
            await asyncio.sleep(0.5)
        _say(f"{release.id} → closed ({status.outcome.value if status.outcome else '-'}); "
             f"its DAG ({_itsm()} release graph {release.id}):")
        click.echo("    " + release_graph(status).replace("\n", "\n    "))

    async def kpis(self) -> None:
        """The KPI report over the last 30 days of runs, the demo's included, as text and as
        the HTML page with charts (`itsm report kpis`)."""
        from pathlib import Path

        from itsmflow.app.kpi_html import render_html
        from itsmflow.app.kpi_render import render_text
        from itsmflow.app.kpi_source import fetch_runs
        from itsmflow.app.kpis import compute, default_window

        await asyncio.sleep(1.5)  # visibility trails the runs' last search attribute updates
        low, high = default_window(None, None, datetime.now(timezone.utc))
        report = compute(await fetch_runs(self.client, low, high), low, high)
        page = Path(os.environ.get("ITSM_HOME", ".itsm")) / "kpis.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(render_html(report), encoding="utf-8")
        click.echo(f"\nKPIs ({_itsm()} report kpis; charts: {_itsm()} report kpis --html FILE, written to {page})")
        click.echo(render_text(report), nl=False)


async def _run(task_queue: str) -> None:
    from cli.common import client
    from worker.main import build_worker

    temporal = await client()
    from worker.connect import register_search_attributes

    await register_search_attributes(temporal)
    demo = Demo(temporal, task_queue)
    async with build_worker(temporal, task_queue):
        click.echo(f"\nChange process (policy {DEMO_POLICY}: always-open window, start in {LEAD_TIME.seconds}s)")
        await asyncio.gather(
            demo.standard_change(), demo.low_risk_change(), demo.high_risk_change(), demo.emergency_change(),
            demo.rejected_change(),
        )
        click.echo("\nIncident process (policy acme-incident)")
        await demo.incident()
        click.echo("\nProblem management (policy acme-problem)")
        await demo.problem()
        click.echo("\nRequest fulfillment (catalog acme-catalog)")
        await demo.requests()
        click.echo("\nRelease management (changes under one approval and window, go / no-go, a DAG)")
        await demo.release()
        await demo.timelines()
        await demo.kpis()


def run_demo(keep_server: bool) -> None:
    from worker.connect import task_queue

    server = _ensure_server()
    try:
        asyncio.run(_run(task_queue()))
    finally:
        if server is not None and not keep_server:
            server.stop()
    outbox = os.environ.get("ITSM_OUTBOX", ".itsm/outbox.jsonl")
    click.echo(f"\nNotifications: {outbox if not os.environ.get('ITSM_SMTP_HOST') else 'sent by SMTP'}; "
               f"CMDB: {os.environ.get('ITSM_DB_URL', 'sqlite:///.itsm/cmdb.sqlite3')}")
    if server is not None and keep_server:
        click.echo(f"The embedded server keeps running for the UI at {server.ui_url}; stop it with "
                   f"`{_itsm()} server stop`.")
    click.echo("Demo complete.")


def _itsm() -> str:
    """How to call `itsm` from here: on PATH, or the venv's own (after `make demo` it is not on PATH)."""
    import os
    import shutil
    import sys

    here = os.path.join(os.path.dirname(sys.executable), "itsm")
    if shutil.which("itsm") == here or not os.path.exists(here):
        return "itsm"
    relative = os.path.relpath(here)
    return here if relative.startswith("..") else relative
