"""ITSM_AUTH: nothing changes a run unless its credential verifies.

Every path into a run is checked by the same rule, whoever sends it: a top-level start, a
child, update-with-start, a router's incident, a continue-as-new, an update and a signal.
Credentials (worker/credentials.py) come from a user (the CLI signs with ITSM_AUTH_KEY) or
from the worker itself (its own key signs what runs send each other); the worker checks
user keys against *its own* organisation definition, never against the run's input, which
any Temporal client could forge.

- **Starts** are checked by the `verify_start` local activity before the workflow's first
  step (behind `workflow.patched`), so the verdict is recorded and replays the same after
  keys change. A user may start the processes a person opens (declared `user_starts`) in their own
  name only, with the worker's own definitions; everything else (items, tasks, the dedup
  router's incidents, suggested problems, continue-as-new) must be signed by the worker.
  Carried state is accepted only on the run's own continue-as-new.
- **Updates** are checked in the update validator: a refused call never reaches history.
  Validators do not run on replay, so rotating user keys cannot break running histories.
  A credential is valid for a few minutes; its nonce is remembered by the run chain for that
  long (carried across continue-as-new), so no captured call is accepted twice.
- **Signals** carry the worker's credential (parent↔child bookkeeping); an unverified
  signal is dropped before its handler. This check does run on replay: keep a rotated worker
  key in ITSM_WORKER_PREVIOUS_KEYS while runs that received its signals are open.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel
from temporalio import activity

from itsmflow.errors import REFUSED, UNVERIFIED
from itsmflow.processes import claim_fields  # the fields that name who acts
from worker.credentials import (  # noqa: F401 (the public names of ITSM_AUTH)
    HEADER,
    MAX_TTL,
    SCHEME,
    WORKER,
    AuthConfigError,
    Credential,
    Keyring,
    Signer,
    auth_enabled,
    digest,
    epoch,
    generate_key_pem,
    keyring_from_env,
    public_key_text,
)
from worker.start_checks import Order, OrderedItem, Snapshot, order_of, order_refusal, snapshot_refusal, snapshots  # noqa: F401

PATCH = "itsm-verified-start"
EVERY_START_PATCH = "itsm-verified-every-start"
SIGNALS_PATCH = "itsm-verified-signals"


def user_started() -> tuple[str, ...]:
    """The workflow types a verified person may start, in their own name (the claim field of
    the input), or, for a helper whose input names nobody (the dedup router), as any verified
    user: it opens nothing until a verified update. Every other type is the worker's."""
    from itsmflow.processes import processes

    return tuple(t for p in processes() for t in p.started_by_users)


def parent_of(workflow_type: str) -> str | None:
    """The process whose runs start this workflow type, when only they may."""
    from itsmflow.processes import of_workflow_type

    process = of_workflow_type(workflow_type)
    return process.child_of if process else None


# Nonces a run chain remembers: updates for their credential's lifetime (at most this many at
# once, then further calls wait), signals the most recent ones.
MAX_UPDATE_NONCES = 1000
MAX_SIGNAL_NONCES = 256
SIGNAL_MEMORY = timedelta(days=1)


class StartCheck(BaseModel):
    workflow_id: str
    workflow_type: str
    digest: str
    user: str | None
    credential: Credential | None = None
    snapshots: list[Snapshot] = []
    order: Order | None = None
    names_user: bool = True  # the input has a field that names the user who starts it
    continued: bool = False  # workflow.info().continued_run_id is set
    carried: bool = False  # the input carries a previous run's state
    started_at: int = 0  # unix seconds: the run's start time, by the server's clock


def claimed_user(arg: Any) -> str | None:
    """The user an argument claims to act for: `actor`, else the requester of a start,
    else the requester of a nested incident (the dedup router's `attach_or_open`)."""
    for field in claim_fields():
        value = getattr(arg, field, None)
        if isinstance(value, str):
            return value
    nested = getattr(arg, "incident", None)
    return claimed_user(nested) if nested is not None else None


def names_user(arg: Any) -> bool:
    return any(f in getattr(type(arg), "model_fields", {}) for f in claim_fields())


def carries_state(arg: Any) -> bool:
    """A previous run's state in an input (a continue-as-new's `carried`), or in the incident
    an update asks a router to open."""
    if getattr(arg, "carried", None) is not None:
        return True
    nested = getattr(arg, "incident", None)
    return isinstance(nested, BaseModel) and carries_state(nested)


def start_refusal(keyring: Keyring, check: StartCheck) -> str | None:
    """Why a start is not verified, or None: one rule for every path into a run."""
    started = datetime.fromtimestamp(check.started_at, timezone.utc)
    credential = check.credential
    if credential is not None and credential.signer == WORKER:
        refusal = keyring.refusal("start", check.workflow_id, check.workflow_type, check.digest, WORKER,
                                  credential, now=started)
        if refusal is None and check.carried and not check.continued:
            refusal = "carried state is accepted only on the run's own continue-as-new"
        return refusal  # the worker made this input from a run it verified
    if check.continued:
        return "unverified continue-as-new: only the worker continues a run"
    if check.carried:
        return "carried state is accepted only on the run's own continue-as-new"
    parent = parent_of(check.workflow_type)
    if parent:
        return f"{check.workflow_type} runs only as part of a {parent}: start the {parent}"
    if check.workflow_type not in user_started():
        return f"unverified start: {check.workflow_type} is started by the worker only"
    if check.names_user and check.user is None:
        return f"unverified start: this {check.workflow_type} names no user (only the worker starts one so)"
    user = check.user or (credential.user if credential is not None else "unknown")
    return keyring.refusal("start", check.workflow_id, check.workflow_type, check.digest, user, credential,
                           now=started) \
        or snapshot_refusal(check.snapshots) or (order_refusal(check.order) if check.order is not None else None)


class StartVerifier:
    """The `verify_start` local activity: the verdict on a start is recorded in history,
    so replays never depend on the worker's current keys."""

    def __init__(self, keyring: Keyring | None) -> None:
        self.keyring = keyring

    @activity.defn(name="verify_start")
    def verify_start(self, check: StartCheck) -> str | None:
        if self.keyring is None:
            return None
        return start_refusal(self.keyring, check)


# --- client side ---------------------------------------------------------------------------------

def _encode(payload_converter, credential: Credential):
    """The `itsm-credential` header's payload (a client's converter, or a workflow's)."""
    return payload_converter.to_payloads([credential.model_dump()])[0]


def client_interceptor(signer: Signer, converter, clock=None, as_worker: bool = False):
    """A client interceptor that signs starts and updates that claim a user (`as_worker`:
    every start and signal, with the worker's key). `clock`, an async callable, gives the
    time to sign at (a time-skipping test server's); by default the machine's."""
    from temporalio.client import Interceptor, OutboundInterceptor

    async def signed(headers, kind, workflow_id, name, args, fallback=None):
        user = WORKER if as_worker else (claimed_user(args[0]) if args else None) or fallback
        if user is None:
            return headers
        now = await clock() if clock is not None else None
        credential = signer.credential(kind, workflow_id, name, args, user, now,
                                       signer="worker" if as_worker else "user")
        return {**(headers or {}), HEADER: _encode(converter.payload_converter, credential)}

    class Outbound(OutboundInterceptor):
        async def start_workflow(self, input):
            input.headers = await signed(input.headers, "start", input.id, input.workflow, input.args)
            return await super().start_workflow(input)

        async def start_workflow_update(self, input):
            if not as_worker:
                input.headers = await signed(input.headers, "update", input.id, input.update, input.args)
            return await super().start_workflow_update(input)

        async def signal_workflow(self, input):
            if as_worker:
                input.headers = await signed(input.headers, "signal", input.id, input.signal, input.args)
            return await super().signal_workflow(input)

        async def start_update_with_start_workflow(self, input):
            start, update = input.start_workflow_input, input.update_workflow_input
            user = claimed_user(update.args[0]) if update.args else None
            start.headers = await signed(start.headers, "start", start.id, start.workflow, start.args, user)
            update.headers = await signed(update.headers, "update", start.id, update.update, update.args)
            return await super().start_update_with_start_workflow(input)

    class SigningInterceptor(Interceptor):
        def intercept_client(self, next):
            return Outbound(next)

    return SigningInterceptor()


def worker_client(client, keyring: Keyring | None):
    """The client a worker's activities start and signal runs with: under ITSM_AUTH it signs
    with the worker's key (a suggested problem, an incident's occurrence)."""
    if keyring is None:
        return client
    from temporalio.client import Client

    return Client(client.service_client, namespace=client.namespace, data_converter=client.data_converter,
                  interceptors=[*client.config().get("interceptors", []),
                                client_interceptor(keyring.worker, client.data_converter, as_worker=True)])


# --- worker side ---------------------------------------------------------------------------------

def _credential(headers) -> Credential | None:
    from temporalio import workflow

    payload = (headers or {}).get(HEADER)
    if payload is None:
        return None
    try:
        return Credential.model_validate(workflow.payload_converter().from_payload(payload, dict))
    except Exception:
        return None


def worker_interceptor(keyring: Keyring | None):
    """Checks credentials on starts (local activity), updates (validator) and signals, and
    signs with the worker's key what a run sends: children, signals, continue-as-new."""
    from temporalio import workflow
    from temporalio.exceptions import ApplicationError
    from temporalio.worker import Interceptor, WorkflowInboundInterceptor, WorkflowOutboundInterceptor

    from workflows.patches import baseline, patched

    class Outbound(WorkflowOutboundInterceptor):
        """Signs as the worker. The nonce derives from the run id and a counter, so replay
        computes the same headers and the workflow's random stream stays untouched."""

        def __init__(self, next, inbound: "Inbound") -> None:
            super().__init__(next)
            self._inbound = inbound
            self._count = 0

        def _sign(self, headers, kind: str, workflow_id: str, name: str, args, carried=None):
            assert keyring is not None
            self._count += 1
            info = workflow.info()
            nonce = hashlib.sha256(f"{info.run_id}:{self._count}".encode()).hexdigest()[:32]
            credential = keyring.worker.credential(kind, workflow_id, name, args, WORKER, workflow.now(),
                                                   signer="worker", nonce=nonce, carried=carried)
            return {**(headers or {}), HEADER: _encode(workflow.payload_converter(), credential)}

        async def start_child_workflow(self, input):
            if keyring is not None:
                input.headers = self._sign(input.headers, "start", input.id, input.workflow, input.args)
            return await super().start_child_workflow(input)

        async def signal_child_workflow(self, input):
            if keyring is not None:
                input.headers = self._sign(input.headers, "signal", input.child_workflow_id, input.signal,
                                           input.args)
            return await super().signal_child_workflow(input)

        async def signal_external_workflow(self, input):
            if keyring is not None:
                input.headers = self._sign(input.headers, "signal", input.workflow_id, input.signal, input.args)
            return await super().signal_external_workflow(input)

        def continue_as_new(self, input):
            if keyring is not None:
                info = workflow.info()
                input.headers = self._sign(input.headers, "start", info.workflow_id,
                                           input.workflow or info.workflow_type, input.args,
                                           carried=self._inbound.remembered())
            return super().continue_as_new(input)

    class Inbound(WorkflowInboundInterceptor):
        def __init__(self, next) -> None:
            super().__init__(next)
            self._used: dict[str, int] = {}  # nonce of an accepted update → when its credential expires
            self._signals: dict[str, int] = {}  # nonce of an accepted signal → when it is forgotten
            self._verify_signals: bool | None = None
            self._restored = False

        def init(self, outbound) -> None:
            super().init(Outbound(outbound, self))

        def remembered(self) -> dict[str, int]:
            self._memory()
            now = epoch(workflow.now())
            return {nonce: expires for nonce, expires in (*self._used.items(), *self._signals.items())
                    if expires >= now}

        async def execute_workflow(self, input):
            info = workflow.info()
            arg = input.args[0] if input.args else None
            user = claimed_user(arg)
            credential = _credential(input.headers)
            if self._verifies_start(user, info):
                # Without a keyring the verdict is "pass" whatever the check says: skip the
                # digest (canonical JSON of the whole input, ~2 ms in the sandbox).
                check = StartCheck(
                    workflow_id=info.workflow_id, workflow_type=info.workflow_type,
                    digest=digest(input.args) if keyring is not None else "", user=user, credential=credential,
                    snapshots=snapshots(arg) if keyring is not None else [],
                    order=order_of(arg) if keyring is not None else None, names_user=names_user(arg),
                    continued=info.continued_run_id is not None, carried=carries_state(arg),
                    started_at=epoch(info.start_time))
                refusal = await workflow.execute_local_activity_method(
                    StartVerifier.verify_start, check, start_to_close_timeout=timedelta(seconds=10),
                    summary=f"verify requester {user}" if user is not None else "verify the start",
                )
                if refusal:
                    raise ApplicationError(refusal, type=UNVERIFIED, non_retryable=True)
            return await super().execute_workflow(input)

        def _verifies_start(self, user: str | None, info) -> bool:
            """Starts by a user were verified before other starts were (PATCH). The others
            get a verdict under ITSM_AUTH only, so a run's timing without it stays as it was;
            a replay without ITSM_AUTH still follows a history recorded with it, verdict and all."""
            def under_auth() -> bool:
                return (keyring is not None or workflow.unsafe.is_replaying()) and workflow.patched(EVERY_START_PATCH)

            if baseline():
                # A run on the baseline gets a verdict under ITSM_AUTH only (without a keyring it
                # is always "pass"): one local activity less per start. The marker tells a replay.
                return under_auth()
            if (user is not None or parent_of(info.workflow_type)) and info.parent is None \
                    and info.continued_run_id is None:
                return patched(PATCH)
            return under_auth()

        def _memory(self) -> None:
            """Restore the nonces a continue-as-new carried, before the first check needs them
            (an update can reach a new run's validator before its main coroutine starts). Not
            verified yet: more nonces can only refuse more calls."""
            if self._restored:
                return
            self._restored = True
            info = workflow.info()
            credential = _credential(info.headers) if info.continued_run_id is not None else None
            if credential is None or credential.signer != WORKER:
                return
            for nonce, expires in list(credential.carried.items())[:MAX_UPDATE_NONCES + MAX_SIGNAL_NONCES]:
                kept_for = expires - epoch(workflow.now())  # signals are kept longer than any credential lives
                (self._signals if kept_for > MAX_TTL.total_seconds() else self._used)[nonce] = expires

        def handle_update_validator(self, input) -> None:
            arg = input.args[0] if input.args else None
            user = claimed_user(arg)
            if keyring is not None and user is not None:
                refusal = self._update_refusal(input, arg, user)
                if refusal:
                    raise ApplicationError(refusal, type=REFUSED, non_retryable=True)
            super().handle_update_validator(input)

        def _update_refusal(self, input, arg, user: str) -> str | None:
            assert keyring is not None
            credential = _credential(input.headers)
            refusal = keyring.refusal("update", workflow.info().workflow_id, input.update, digest(input.args),
                                      user, credential, now=workflow.now())
            if refusal:
                return refusal
            assert credential is not None
            self._memory()
            self._forget_expired()
            if credential.nonce in self._used:
                return f"credential of {user} already used: sign each call afresh"
            if len(self._used) >= MAX_UPDATE_NONCES:
                return f"too many signed calls on {workflow.info().workflow_id} in the last minutes: try again later"
            if carries_state(arg):
                return "carried state is accepted only on the run's own continue-as-new"
            return snapshot_refusal(snapshots(arg))

        def _forget_expired(self) -> None:
            now = epoch(workflow.now())
            for nonce in [n for n, expires in self._used.items() if expires < now]:
                del self._used[nonce]

        async def handle_update_handler(self, input):
            credential = _credential(input.headers)
            if credential is not None:
                self._memory()
                self._used[credential.nonce] = credential.expires_at
            return await super().handle_update_handler(input)

        async def handle_signal(self, input) -> None:
            if keyring is not None and self._signals_checked():
                credential = _credential(input.headers)
                self._memory()
                refusal = keyring.refusal("signal", workflow.info().workflow_id, input.signal, digest(input.args),
                                          WORKER, credential)
                if refusal is None and credential is not None and credential.nonce in self._signals:
                    refusal = "its credential was already used"
                if refusal:
                    workflow.logger.warning("signal %s dropped: %s", input.signal, refusal)
                    return
                assert credential is not None
                self._signals[credential.nonce] = epoch(workflow.now() + SIGNAL_MEMORY)
                while len(self._signals) > MAX_SIGNAL_NONCES:
                    del self._signals[next(iter(self._signals))]
            await super().handle_signal(input)

        def _signals_checked(self) -> bool:
            """Runs that received signals before this check existed replay without it."""
            if self._verify_signals is None:
                self._verify_signals = patched(SIGNALS_PATCH)
            return self._verify_signals

    class AuthInterceptor(Interceptor):
        def workflow_interceptor_class(self, input):
            return Inbound

    return AuthInterceptor()

