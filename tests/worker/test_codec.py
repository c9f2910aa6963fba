"""Payload encryption: a run's raw history holds no plaintext; the keyed client reads it."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from definitions import registry
from itsmflow.app import change_ops
from itsmflow.app.audit import audit_rows
from itsmflow.app.change_submit import build_change
from itsmflow.app.ids import new_id
from worker.codec import CodecKeyError, EncryptionCodec, codec_from_env
from worker.connect import encrypting_converter
from worker.main import build_worker
from workflows.change_models import ApproveInput, CompleteInput, Outcome

KEY = base64.b64encode(os.urandom(32)).decode()
SECRET_TITLE = "Rotate the HSM root key for payments"
SECRET_NOTES = "ceremony passphrase in envelope 7"


async def test_round_trip_tamper_and_rotation():
    first_key = os.urandom(32)
    old = EncryptionCodec("k1", first_key)
    new = EncryptionCodec("k2", os.urandom(32), old_keys={"k1": first_key})
    clear = Payload(metadata={"encoding": b"json/plain"}, data=b'{"notes": "secret"}')
    sealed = await old.encode([clear])
    assert b"secret" not in sealed[0].data and sealed[0].metadata["encryption-key-id"] == b"k1"
    assert (await new.decode(sealed))[0] == clear  # rotation: old payloads stay readable
    assert (await new.decode([clear]))[0] == clear  # written before encryption was on
    tampered = Payload(metadata=sealed[0].metadata, data=sealed[0].data[:-1] + bytes([sealed[0].data[-1] ^ 1]))
    with pytest.raises(Exception):  # noqa: B017 (whatever the codec raises, it must not decode)
        await old.decode([tampered])
    with pytest.raises(ValueError, match="unknown key id 'k2'"):
        await old.decode(await new.encode([clear]))


@pytest.mark.parametrize("env, message", [
    ({"ITSM_ENCRYPTION_KEY": "not base64!"}, "is not base64"),
    ({"ITSM_ENCRYPTION_KEY": base64.b64encode(b"short").decode()}, "must decode to 32 bytes"),
    ({"ITSM_ENCRYPTION_KEY": KEY, "ITSM_DECRYPTION_KEYS": "nokey"}, "id=base64key"),
])
def test_bad_keys_are_one_line_errors(env, message):
    with pytest.raises(CodecKeyError, match=message):
        codec_from_env(env)
    assert codec_from_env({}) is None


def test_cli_reports_a_bad_key_in_one_line():
    result = subprocess.run([sys.executable, "-m", "cli.main", "change", "show", "CHG-20261124-AAAA"],
                            env={**os.environ, "ITSM_ENCRYPTION_KEY": "short"}, capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr.strip() == "itsm: ITSM_ENCRYPTION_KEY is not base64"


def keyed_client(env, key: str, key_id: str) -> Client:
    """The test server's client with encryption under `key`, as `itsm` and the worker build it."""
    codec = codec_from_env({"ITSM_ENCRYPTION_KEY": key, "ITSM_ENCRYPTION_KEY_ID": key_id})
    return Client(env.client.service_client, namespace=env.client.namespace, data_converter=encrypting_converter(codec))


async def change_titled(env, title: str):
    """A normal change on web-01 by alice, planned 5 minutes from the fake now."""
    now = await env.get_current_time()
    return build_change(change_id=new_id("CHG", now), title=title, cis=["web-01"], change_type="normal",
                        start=now + timedelta(minutes=5), end=now + timedelta(hours=1), requested_by="alice",
                        now=now, policy=registry.get("acme-demo"))


async def test_raw_history_holds_no_plaintext(env, task_queue, db, channel):
    keyed = keyed_client(env, KEY, "test")
    change = await change_titled(env, SECRET_TITLE)
    async with build_worker(keyed, task_queue, db=db, channel=channel):
        status = await change_ops.submit(keyed, change, task_queue)
        await change_ops.update(keyed, status.id, "approve", ApproveInput(actor="bob", comment=SECRET_NOTES))
        await env.sleep(timedelta(minutes=6))
        await change_ops.update(keyed, status.id, "complete",
                                CompleteInput(actor="erin", outcome=Outcome.SUCCESSFUL, notes=SECRET_NOTES))
    raw = (await env.client.get_workflow_handle(status.id).fetch_history()).to_json()
    for secret in (SECRET_TITLE, SECRET_NOTES, "alice@acme.example", "change-managers@acme.example"):
        assert secret not in raw
    assert "binary/encrypted" in base64.b64decode(
        __import__("json").loads(raw)["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
        ["metadata"]["encoding"]).decode()
    rows = await audit_rows(keyed, await keyed.get_workflow_handle(status.id).fetch_history())
    assert any(r["actor"] == "bob" and SECRET_NOTES in r["details"] for r in rows)
    assert (await change_ops.status(keyed, status.id)).title == SECRET_TITLE
    assert [m.key.split(":", 1)[1] for m in channel.sent][-1] == "closed"


async def test_failure_messages_are_encrypted_too(env, task_queue, db):
    """An error can quote what it failed on: with encryption on, a failure's message and stack
    trace travel in its encrypted attributes (the history says "Encoded failure"), and the
    keyed CLI reads them back."""
    import asyncio

    from tests.conftest import RecordingChannel
    from tests.workflows.helpers import advance_while_idle, settled

    class DownQuotingSecrets(RecordingChannel):
        def send(self, message):
            raise ConnectionError(f"relay refused: {SECRET_NOTES}")

    keyed = keyed_client(env, KEY, "test")
    change = await change_titled(env, SECRET_TITLE)
    async with build_worker(keyed, task_queue, db=db, channel=DownQuotingSecrets()):
        started = asyncio.create_task(change_ops.submit(keyed, change, task_queue))
        await advance_while_idle(env, change.id, settled(started), step=timedelta(seconds=5))
        status = await started
    history = await env.client.get_workflow_handle(status.id).fetch_history()
    raw = history.to_json()
    assert SECRET_NOTES not in raw and "relay refused" not in raw and "Encoded failure" in raw
    assert status.notices[0] == f"notification submitted to alice failed: relay refused: {SECRET_NOTES}"
    failed = [r["details"] for r in await audit_rows(keyed, history) if r["action"] == "activity failed"]
    assert failed and all(d == f"relay refused: {SECRET_NOTES}" for d in failed)
    from temporalio.api.enums.v1 import EventType

    from worker.connect import failure_message

    failure = next(e.activity_task_failed_event_attributes.failure for e in history.events
                   if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED)
    assert await failure_message(env.client,
                                 failure) == "Encoded failure (encrypted; set ITSM_ENCRYPTION_KEY to read it)"


# --- encryption edges (issue 13) ---------------------------------------------------------------

async def test_a_client_without_the_key_cannot_write_into_an_encrypted_run(env, task_queue, db, channel):
    """It once wrote its note in clear, then failed on the encrypted answer ("KeyError")."""
    from itsmflow.app.ops import InputRefused
    from tests.workflows.helpers import accepted_updates

    keyed = keyed_client(env, KEY, "test")
    change = await change_titled(env, SECRET_TITLE)
    async with build_worker(keyed, task_queue, db=db, channel=channel):
        status = await change_ops.submit(keyed, change, task_queue)
        with pytest.raises(InputRefused) as refused:
            await change_ops.update(env.client, status.id, "approve", ApproveInput(actor="bob", comment="in clear"))
        await keyed.get_workflow_handle(status.id).terminate("test finished")
    assert str(refused.value) == f"{status.id} is encrypted: set ITSM_ENCRYPTION_KEY to write to it (nothing was sent)"
    assert ("approve", "bob") not in await accepted_updates(env, status.id)


async def test_a_keyless_client_writes_without_a_describe_while_the_run_just_answered_in_clear(
        env, task_queue, db, channel, monkeypatch):
    """The guard above reads the run (a describe) before each write. A run that answered this
    client in clear a moment ago was written in clear by its worker: the next write skips that
    read, for ops.CLEAR_FOR; after it, the read is made again, and a fresh client makes it."""
    from itsmflow.app import incident_ops, ops
    from itsmflow.app.incident_submit import build_incident
    from workflows.incident_models import IncidentResolveInput, NoteInput
    from workflows.models import ActorInput

    service = env.client.workflow_service
    describes: list[str] = []
    describe = service.describe_workflow_execution

    async def counted(request, *args, **kwargs):
        describes.append(request.execution.workflow_id)
        return await describe(request, *args, **kwargs)

    monkeypatch.setattr(service, "describe_workflow_execution", counted)
    client = Client(env.client.service_client, namespace=env.client.namespace,
                    data_converter=env.client.data_converter)
    incident = build_incident(title="disk full", ci="web-01", impact=3, urgency=3, opened_by="erin")
    async with build_worker(env.client, task_queue, db=db, channel=channel):
        status, _ = await incident_ops.open_incident(client, incident, task_queue)
        await incident_ops.update(client, status.id, "acknowledge", ActorInput(actor="frank"))
        assert describes == []
        other = Client(env.client.service_client, namespace=env.client.namespace,
                       data_converter=env.client.data_converter)
        await incident_ops.update(other, status.id, "note", NoteInput(actor="frank", text="on it"))
        assert describes == [status.id]
        monkeypatch.setattr(ops, "CLEAR_FOR", 0.0)
        await incident_ops.update(client, status.id, "resolve", IncidentResolveInput(actor="frank", code="fixed"))
        assert describes == [status.id, status.id]


async def test_lists_and_exports_skip_a_run_they_cannot_decode_and_mark_it(live, task_queue):
    """One run under an unknown key id once broke every list and export, for key holders too."""
    import asyncio
    import json
    from datetime import datetime, timezone

    from tests.workflows.helpers import itsm_cli
    from workflows.search_attributes import typed

    mine, theirs = KEY, base64.b64encode(os.urandom(32)).decode()
    started = datetime.now(timezone.utc)
    runs = []
    for key, key_id, title in ((mine, "mine", "readable change"), (theirs, "theirs", SECRET_TITLE)):
        client = keyed_client(live, key, key_id)
        change = await change_titled(live, title)
        await client.start_workflow("ChangeWorkflow", change, id=change.id, task_queue=task_queue,
                                    memo={"title": title}, search_attributes=typed({"ItsmProcess": "change"}))
        runs.append(change.id)
    os.environ["ITSM_ENCRYPTION_KEY"], os.environ["ITSM_ENCRYPTION_KEY_ID"] = mine, "mine"
    try:
        for _ in range(20):  # visibility is eventually consistent
            listed = await itsm_cli(live, "runs", "list", "--process", "change", "--limit", "500", "--json")
            if listed.returncode == 0 and all(run_id in listed.stdout for run_id in runs):
                break
            await asyncio.sleep(0.5)
        exported = await itsm_cli(live, "audit", "export", "--since", started.isoformat(), "--format", "jsonl")
    finally:
        del os.environ["ITSM_ENCRYPTION_KEY"], os.environ["ITSM_ENCRYPTION_KEY_ID"]
        for run_id in runs:
            await live.client.get_workflow_handle(run_id).terminate("test finished")
    assert listed.returncode == 0, listed.stderr
    rows = {row["id"]: row for row in json.loads(listed.stdout) if row["id"] in runs}
    assert rows[runs[0]]["title"] == "readable change" and "undecodable" not in rows[runs[0]]
    assert rows[runs[1]]["undecodable"] and rows[runs[1]]["title"].startswith("(cannot decode: ")
    assert SECRET_TITLE not in listed.stdout
    assert exported.returncode == 0, exported.stderr
    actions = {(row["id"], row["action"]) for row in map(json.loads, exported.stdout.splitlines())
               if row["id"] in runs}
    assert (runs[0], "submitted") in actions and (runs[1], "undecodable") in actions
    assert (runs[1], "submitted") not in actions
