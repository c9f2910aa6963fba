"""ITSM_AUTH: signed actors are verified by the worker against its own organisation
keys; unsigned, forged, altered or replayed calls are refused before history."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from pydantic import ValidationError
from temporalio import workflow as wf
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from definitions import registry
from definitions.org import Organisation, Person
from itsmflow.app import change_ops
from itsmflow.app.change_submit import build_change
from itsmflow.app.ids import new_id
from itsmflow.app.ops import StartRefused
from tests.worker.auth_helpers import Replaying, keyring, signed_client
from tests.workflows.helpers import (
    accepted_updates,
    activity_types,
    history_events,
    refusal,
    rows,
    terminate_between_attempts,
)
from worker.auth import AuthConfigError, Credential, Keyring, Signer, claim_fields, digest
from worker.main import build_worker, workflow_classes
from workflows.change_models import ApproveInput, ChangeState


async def submit(env, client, task_queue, requested_by="alice"):
    now = await env.get_current_time()
    change = build_change(
        change_id=new_id("CHG", now), title="Patch the web tier", cis=["web-01"], change_type="normal",
        start=now + timedelta(hours=1), end=now + timedelta(hours=2), requested_by=requested_by, now=now,
        policy=registry.get("acme-demo"),
    )
    return change, change_ops.submit(client, change, task_queue)


async def test_only_verified_actors_decide_and_refusals_never_enter_history(env, task_queue, db, channel, keys,
                                                                            tracked):
    alice, bob = signed_client(env, keys["alice"][0]), signed_client(env, keys["bob"][0])
    unsigned = signed_client(env, None)
    async with build_worker(env.client, task_queue, db=db, channel=channel, keyring=keyring(keys)):
        change, submitting = await submit(env, alice, task_queue)
        status = await submitting
        tracked.append(status.id)
        assert status.state == ChangeState.AUTHORIZE

        no_credential = await refusal(change_ops.update(unsigned, status.id, "approve", ApproveInput(actor="carol")))
        assert no_credential == "unverified actor carol: no credential (ITSM_AUTH is on; set ITSM_AUTH_KEY)"
        forged = await refusal(change_ops.update(alice, status.id, "approve", ApproveInput(actor="bob")))
        assert forged == "unverified actor bob: the credential does not verify (wrong key or altered call)"

        replayer = Replaying()
        replaying_bob = signed_client(env, keys["bob"][0], replayer)
        status = await change_ops.update(replaying_bob, status.id, "approve", ApproveInput(actor="bob"))
        assert status.state == ChangeState.SCHEDULED
        replayed = await refusal(change_ops.update(replaying_bob, status.id, "approve", ApproveInput(actor="bob")))
        assert replayed == "credential of bob already used: sign each call afresh"
        # A fresh credential gets past ITSM_AUTH and meets the process rules instead.
        fresh = await refusal(change_ops.update(bob, status.id, "approve", ApproveInput(actor="bob")))
        assert fresh == f"{status.id} is scheduled, not awaiting approval"

        assert await accepted_updates(env, status.id) == [("settle", None), ("approve", "bob")]
        verdicts = [e.marker_recorded_event_attributes for e in await history_events(env, status.id)
                    if e.HasField("marker_recorded_event_attributes")]
        assert any(v.marker_name == "core_local_activity" for v in verdicts), "start verdict not recorded"


@pytest.mark.parametrize("who, expected", [
    (None, "unverified actor alice: no credential (ITSM_AUTH is on; set ITSM_AUTH_KEY)"),
    ("bob", "unverified actor alice: the credential does not verify (wrong key or altered call)"),
])
async def test_unverified_start_fails_before_any_step(env, task_queue, db, channel, keys, tracked, who, expected):
    client = signed_client(env, keys[who][0] if who else None)
    async with build_worker(env.client, task_queue, db=db, channel=channel, keyring=keyring(keys)):
        change, submitting = await submit(env, client, task_queue, requested_by="alice")
        tracked.append(change.id)
        with pytest.raises(StartRefused, match=expected.replace("(", r"\(").replace(")", r"\)")):
            await submitting
        handle = env.client.get_workflow_handle(change.id)
        assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
        events = await history_events(env, change.id)
        failure = events[-1].workflow_execution_failed_event_attributes.failure
        assert failure.message == expected
        scheduled = [e for e in events if e.HasField("activity_task_scheduled_event_attributes")]
        assert scheduled == [] and channel.sent == []
        assert rows(db, "SELECT change_id FROM change_calendar") == []


async def test_auth_off_by_default_records_a_passing_verdict(env, task_queue, db, channel, tracked):
    async with build_worker(env.client, task_queue, db=db, channel=channel):
        change, submitting = await submit(env, env.client, task_queue)
        status = await submitting
        tracked.append(status.id)
        status = await change_ops.update(env.client, status.id, "approve", ApproveInput(actor="bob"))
        assert status.state == ChangeState.SCHEDULED


def test_credentials_bind_the_run_the_call_and_the_payload(keys):
    ring, (signer, _) = keyring(keys), keys["bob"]
    args = [ApproveInput(actor="bob", comment="ok")]
    good = signer.credential("update", "CHG-1", "approve", args, "bob")
    check = lambda *a, credential=good: ring.refusal(*a, "bob", credential)  # noqa: E731
    assert check("update", "CHG-1", "approve", digest(args)) is None
    altered = digest([ApproveInput(actor="bob", comment="ok!")])
    for call in [("update", "CHG-2", "approve", digest(args)), ("update", "CHG-1", "reject", digest(args)),
                 ("start", "CHG-1", "approve", digest(args)), ("update", "CHG-1", "approve", altered)]:
        assert "does not verify" in check(*call)
    other = Credential(user="bob", nonce="n", signature=good.signature)
    assert "does not verify" in check("update", "CHG-1", "approve", digest(args), credential=other)
    assert ring.refusal("update", "CHG-1", "approve", digest(args), "erin",
                        good.model_copy(update={"user": "erin"})) == (
        "unverified actor erin: no public key in organisation")
    assert ring.refusal("update", "CHG-1", "approve", digest(args), "carol", good) == (
        "unverified actor carol: the credential is for bob")


def test_keys_come_from_the_organisation_definition(keys):
    acme = registry.get("acme", Organisation)
    with pytest.raises(AuthConfigError, match="has no public keys"):
        Keyring.from_organisation(acme)
    with_keys = acme.model_copy(update={"people": [
        p.model_copy(update={"public_key": keys[p.username][1]}) if p.username in keys else p for p in acme.people]})
    ring = Keyring.from_organisation(with_keys)
    assert ring.source == f"organisation acme v{acme.version}"
    with pytest.raises(ValidationError):
        Person(username="x", name="X", email="x@example.com", public_key="ed25519:not-a-key")
    with pytest.raises(AuthConfigError, match="not an unencrypted PEM"):
        Signer.from_pem(b"nonsense", "ITSM_AUTH_KEY k.pem")


def test_every_update_that_names_an_actor_has_a_validator():
    """The interceptor verifies in validators; an update without one would skip ITSM_AUTH."""
    unchecked, checked = [], []
    for cls in workflow_classes():
        for name, update in wf._Definition.from_class(cls).updates.items():
            fields = [f for t in update.arg_types or [] for f in getattr(t, "model_fields", {})]
            if set(fields) & {*claim_fields(), "incident"}:
                (checked if update.validator else unchecked).append(f"{cls.__name__}.{name}")
    assert unchecked == [] and len(checked) >= 15, (unchecked, checked)


async def test_deduplicated_open_is_verified_and_a_refused_router_ends(env, task_queue, db, channel, keys, tracked):
    from itsmflow.app import incident_ops
    from itsmflow.app.incident_ops import router_id
    from itsmflow.app.incident_submit import build_incident

    key = f"mon:lb-01:{uuid.uuid4()}"
    incident = build_incident(title="lb-01 down", ci="lb-01", impact=1, urgency=1, opened_by="alice", dedup_key=key)
    async with build_worker(env.client, task_queue, db=db, channel=channel, keyring=keyring(keys)):
        forged = await refusal(incident_ops.open_incident(signed_client(env, keys["bob"][0]), incident, task_queue))
        assert forged == "unverified actor alice: the credential does not verify (wrong key or altered call)"
        router = env.client.get_workflow_handle(router_id(key))
        with pytest.raises(WorkflowFailureError) as failed:  # its start was forged too: nothing routed, nothing runs
            await router.result()
        assert failed.value.cause.message == forged
        status, attached = await incident_ops.open_incident(signed_client(env, keys["alice"][0]), incident, task_queue)
        tracked.extend([status.id, router_id(key)])
        assert (status.state.value, attached) == ("new", False)


@pytest.mark.parametrize("forge, expected", [
    (lambda change: change.model_copy(update={"organisation": change.organisation.model_copy(update={
        "groups": [g.model_copy(update={"members": [*g.members, "alice"]}) if g.name == "cab" else g
                   for g in change.organisation.groups]})}),
     "organisation acme@1 does not match this worker's definition acme@1 (update the client's definitions)"),
    (lambda change: change.model_copy(update={"policy": change.policy.model_copy(update={"version": 7})}),
     "policy acme-demo@7 does not match this worker's definition acme-demo@1 (update the client's definitions)"),
    (lambda change: change.model_copy(update={"policy": change.policy.model_copy(update={"name": "homemade"})}),
     "policy homemade@1 is not a definition this worker has"),
])
async def test_a_signed_start_cannot_bring_its_own_rules(env, task_queue, db, channel, keys, tracked, forge,
                                                         expected):
    """The run follows the definitions its input carries: with ITSM_AUTH on they must be the
    worker's own, or alice could sign a change whose organisation puts her in the CAB."""
    alice = signed_client(env, keys["alice"][0])
    now = await env.get_current_time()
    change = forge(build_change(
        change_id=new_id("CHG", now), title="Patch the web tier", cis=["web-01"], change_type="normal",
        start=now + timedelta(hours=1), end=now + timedelta(hours=2), requested_by="alice", now=now,
        policy=registry.get("acme-demo")))
    async with build_worker(env.client, task_queue, db=db, channel=channel, keyring=keyring(keys)):
        tracked.append(change.id)
        with pytest.raises(StartRefused) as refused:
            await change_ops.submit(alice, change, task_queue)
        assert str(refused.value) == expected
        assert await activity_types(env, change.id) == [] and channel.sent == []


async def test_a_signed_request_cannot_bring_its_own_catalog_items(live, task_queue, db, channel, keys, tracked):
    """A request runs its plans (each item as ordered from the catalog): with ITSM_AUTH on
    they must be the worker's catalog items, or alice could drop the VPN approval. (On a dev
    server: its items report to it by signals, whose worker credential the test server drops.)"""
    env = live
    from itsmflow.app import request_ops
    from itsmflow.app.request_submit import build_request
    from worker.auth import snapshot_refusal, snapshots

    alice = signed_client(env, keys["alice"][0])
    honest = build_request(item_name="laptop", raw={"model": "pro-16", "justification": "x"}, requested_by="alice")
    assert [s.field for s in snapshots(honest)] == ["organisation", "catalog item laptop"]
    assert snapshot_refusal(snapshots(honest)) is None
    vpn = _vpn()
    forged = vpn.model_copy(update={"plans": [vpn.plans[0].model_copy(update={
        "item": vpn.plans[0].item.model_copy(update={"approval": None})})]})
    async with build_worker(env.client, task_queue, db=db, channel=channel, keyring=keyring(keys)):
        tracked.append(forged.id)
        with pytest.raises(StartRefused) as refused:
            await request_ops.submit(alice, forged, task_queue)
        assert str(refused.value) == ("catalog item vpn-access (acme-catalog@1) does not match this worker's catalog "
                                      "(update the client's definitions)")
        status = await request_ops.submit(alice, honest, task_queue)  # the honest one starts
        # Children first, with the worker still up, so the worker stops on runs that are done.
        item = await request_ops.status(env.client, honest.plans[0].id)
        for run_id in [*(t.task_id for t in item.tasks if t.task_id), item.id, honest.id]:
            await terminate_between_attempts(env, run_id)
        assert (status.id, status.state.value) == (honest.id, "fulfilling")


def _onboarding():
    from itsmflow.app.request_submit import build_request

    return build_request(item_name="onboarding", raw={"name": "Dana Doe", "start_date": "2026-12-01", "team": "ops"},
                         requested_by="alice")


def _vpn():
    from itsmflow.app.request_submit import build_request

    return build_request(item_name="vpn-access", raw={"duration": "5", "reason": "travel"}, requested_by="alice")


def _with_plans(request, plans):
    return request.model_copy(update={"plans": plans})


@pytest.mark.parametrize("forge, expected", [
    (lambda: _vpn().model_copy(update={"variables": {"duration": 365, "reason": "travel"}}),
     "variables refused by catalog acme-catalog@1: duration: 365 is out of range 1-90"),
    (lambda: _vpn().model_copy(update={"variables": {"duration": 5, "reason": "travel", "level": "root"}}),
     "variables refused by catalog acme-catalog@1: level: unknown variable for vpn-access (known: duration, reason)"),
    (lambda: _vpn().model_copy(update={"variables": {"duration": "5", "reason": "travel"}}),
     "variables of vpn-access are not as catalog acme-catalog@1 types them"),
    (lambda: _with_plans(_vpn(), [_vpn().plans[0].model_copy(update={"variables": {"duration": 90, "reason": "x"}})]),
     "the items of this vpn-access request are not what catalog acme-catalog@1 orders for it"),
    (lambda: _with_plans(o := _onboarding(), [p for p in o.plans if p.item.name != "vpn-access"]),
     "the items of this onboarding request are not what catalog acme-catalog@1 orders for it"),
    (lambda: _with_plans(o := _onboarding(), [p.model_copy(update={"after": []}) for p in o.plans]),
     "the items of this onboarding request are not what catalog acme-catalog@1 orders for it"),
    (lambda: _onboarding().model_copy(update={"cancel_group": "interns"}),
     "cancel group 'interns' is not catalog acme-catalog@1's 'service-desk'"),
    (lambda: _vpn().model_copy(update={"catalog": "acme-catalog@2"}),
     "catalog acme-catalog@2 does not match this worker's acme-catalog@1"),
    (lambda: _vpn().model_copy(update={"item": "laptop"}),
     "the title or calendar of this laptop request is not catalog acme-catalog@1's"),
    (lambda: _vpn().model_copy(update={"item": "laptop", "title": "Laptop"}),
     "variables refused by catalog acme-catalog@1: duration: unknown variable for laptop "
     "(known: model, justification)"),
    (lambda: _vpn().model_copy(update={"title": "Coffee"}),
     "the title or calendar of this vpn-access request is not catalog acme-catalog@1's"),
    (lambda: _vpn().model_copy(update={"calendar": _vpn().calendar.model_copy(update={"name": "always"})}),
     "the title or calendar of this vpn-access request is not catalog acme-catalog@1's"),
    (lambda: _vpn().model_copy(update={"requested_for": "mallory"}), "requested for unknown user 'mallory'"),
    # `after` names items, not plan ids: the run could not resolve it (a stuck run, not a refusal)
    (lambda: _with_plans(o := _onboarding(), [p.model_copy(update={"after": [
        next(q.item.name for q in o.plans if q.id == a) for a in p.after]}) for p in o.plans]),
     "the items of this onboarding request are not what catalog acme-catalog@1 orders for it"),
    (lambda: _with_plans(o := _vpn(), [o.plans[0].model_copy(update={"catalog": "other-catalog@1"})]),
     "the items of this vpn-access request are not what catalog acme-catalog@1 orders for it"),
    (lambda: _with_plans(o := _vpn(), [o.plans[0].model_copy(update={"variables": {"duration": 5.0,
                                                                                      "reason": "travel"}})]),
     "the items of this vpn-access request are not what catalog acme-catalog@1 orders for it"),
    (lambda: _with_plans(o := _onboarding(), [*o.plans, o.plans[-1]]),
     "the items of this onboarding request are not what catalog acme-catalog@1 orders for it"),
])
def test_a_signed_request_is_resolved_again_from_the_workers_catalog(forge, expected):
    """The client validates variables and expands bundles at submit; with ITSM_AUTH on the
    worker does both again from its own catalog, so a signed request cannot skip either."""
    from worker.auth import order_of, order_refusal

    for honest in (_vpn(), _onboarding()):
        assert order_refusal(order_of(honest)) is None
    assert order_refusal(order_of(forge())) == expected


def test_a_policy_must_come_with_its_own_organisation():
    from worker.auth import Snapshot, snapshot_refusal

    org = registry.get("acme")
    policy = registry.get("acme-demo")
    checks = [Snapshot(field="policy", name=policy.name, version=policy.version, digest=digest([policy]),
                       organisation="globex"),
              Snapshot(field="organisation", name=org.name, version=org.version, digest=digest([org]))]
    assert snapshot_refusal(checks[1:]) is None
    assert snapshot_refusal(checks) == "policy acme-demo belongs to organisation globex, but the start carries acme"
    assert snapshot_refusal(checks[:1]) == "policy acme-demo belongs to organisation globex, but the start carries none"


@pytest.mark.parametrize("workflow_type", ["ItemWorkflow", "ManualTaskWorkflow"])
def test_children_of_a_request_never_start_on_their_own_under_auth(keys, workflow_type):
    from worker.auth import StartCheck, StartVerifier

    check = StartCheck(workflow_id="RITM-x", workflow_type=workflow_type, digest="-", user="alice")
    assert StartVerifier(None).verify_start(check) is None  # ITSM_AUTH off: as before
    assert StartVerifier(keyring(keys)).verify_start(check) == (
        f"{workflow_type} runs only as part of a request: start the request")


async def test_a_request_child_started_on_its_own_is_refused(env, task_queue, db, channel, keys, tracked):
    """An item run follows the catalog item in its input: started directly (not by its
    request, which the worker resolved again) it could carry a VPN item with no approval.
    A manual task names no requester, so it is checked too, not skipped as unsigned."""
    from temporalio.client import WorkflowFailureError

    from workflows.request_models import ItemInput, ManualTaskInput

    vpn = _vpn()
    no_approval = vpn.plans[0].model_copy(update={"item": vpn.plans[0].item.model_copy(update={"approval": None})})
    item = ItemInput(id=vpn.plans[0].id, request_id=vpn.id, plan=no_approval, requested_by="alice",
                     requested_for="alice", organisation=vpn.organisation, calendar=vpn.calendar)
    task = ManualTaskInput(id=f"{item.id}-grant", item_id=item.id, request_id=vpn.id, title="Grant VPN",
                           group="network", requested_for="alice", organisation=vpn.organisation)
    async with build_worker(env.client, task_queue, db=db, channel=channel, keyring=keyring(keys)):
        # Plain clients (the task's unsigned): unlike env.client, their result() leaves the test server's clock alone.
        for workflow_type, arg, client in (("ItemWorkflow", item, signed_client(env, keys["alice"][0])),
                                           ("ManualTaskWorkflow", task, signed_client(env, None))):
            tracked.append(arg.id)
            handle = await client.start_workflow(workflow_type, arg, id=arg.id, task_queue=task_queue)
            with pytest.raises(WorkflowFailureError) as failed:
                await handle.result()
            assert failed.value.cause.message == f"{workflow_type} runs only as part of a request: start the request"
            assert await activity_types(env, arg.id) == [] and channel.sent == []


async def test_a_signed_request_with_out_of_range_variables_never_starts(env, task_queue, db, channel, keys, tracked):
    from itsmflow.app import request_ops

    forged = _vpn().model_copy(update={"variables": {"duration": 365, "reason": "travel"}})
    forged = _with_plans(forged, [forged.plans[0].model_copy(update={"variables": forged.variables})])
    async with build_worker(env.client, task_queue, db=db, channel=channel, keyring=keyring(keys)):
        tracked.append(forged.id)
        with pytest.raises(StartRefused) as refused:
            await request_ops.submit(signed_client(env, keys["alice"][0]), forged, task_queue)
        assert str(refused.value) == "variables refused by catalog acme-catalog@1: duration: 365 is out of range 1-90"
        assert await activity_types(env, forged.id) == [] and channel.sent == []
