"""ITSM_AUTH: the acting user is verified, not only claimed.

Every update whose argument names an actor (and every start that names a requester)
carries an Ed25519 credential in the `itsm-credential` header, signed by the CLI with
the user's private key (ITSM_AUTH_KEY). The message binds the workflow id, the update
(or workflow type), a digest of the arguments and a one-time nonce, so a credential
cannot be moved to another run, another decision or another payload.

The worker is the trust anchor: with ITSM_AUTH=on it loads the public keys from *its
own* copy of the organisation definition (`people[].public_key`), never from the run's
input, which any Temporal client could forge.

- Updates are checked in the update validator (an interceptor): a refused call never
  reaches history. Validators do not run on replay, so rotating keys cannot break
  running histories. Nonces of accepted updates are remembered per run.
- Starts are checked by the `verify_start` local activity before the workflow's first
  step (behind `workflow.patched`), so the verdict is recorded and replays
  deterministically. An unverified start fails the run at once: nothing else happens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from pydantic import BaseModel
from temporalio import activity

HEADER = "itsm-credential"
SCHEME = "ed25519:"
PATCH = "itsm-verified-start"
CLAIM_FIELDS = ("actor", "requested_by", "opened_by")
# Run only as children of a request (which the worker verified): never started on their own.
CHILD_ONLY = ("ItemWorkflow", "ManualTaskWorkflow")


class Credential(BaseModel):
    user: str
    nonce: str
    signature: str


class Snapshot(BaseModel):
    """A definition a start carries (its policy, its organisation), by digest."""

    field: str
    name: str
    version: int
    digest: str
    item: str | None = None  # a catalog item of the catalog `name` (a request's plans)
    organisation: str | None = None  # the organisation a policy names (its run must carry that one)


class OrderedItem(BaseModel):
    id: str
    item: str
    digest: str  # of the catalog item as ordered
    catalog: str  # name@version it was ordered from
    variables: dict
    after: list[str] = []


class Order(BaseModel):
    """A request as the client resolved it: the worker resolves it again from its own catalog."""

    catalog: str  # name@version
    item: str
    title: str
    variables: dict
    requested_for: str
    organisation: str
    calendar: str  # digest of the business calendar its SLA runs on
    cancel_group: str
    plans: list[OrderedItem]


class StartCheck(BaseModel):
    workflow_id: str
    workflow_type: str
    digest: str
    user: str | None
    credential: Credential | None = None
    snapshots: list[Snapshot] = []
    order: Order | None = None


def snapshots(arg: Any) -> list[Snapshot]:
    """The definitions a start's input carries (a nested incident's too): the run follows
    these copies, so the worker checks them against its own registered definitions."""
    from definitions.base import Definition

    found = []
    for field in getattr(type(arg), "model_fields", {}):
        value = getattr(arg, field, None)
        if isinstance(value, Definition):
            found.append(Snapshot(field=field, name=value.name, version=value.version, digest=digest([value]),
                                  organisation=getattr(value, "organisation", None)))
    for plan in getattr(arg, "plans", None) or []:  # a request: each item as ordered from its catalog
        name, _, version = (getattr(plan, "catalog", "") or "").partition("@")
        found.append(Snapshot(field=f"catalog item {plan.item.name}", name=name or "-",
                              version=int(version) if version.isdigit() else 0, digest=digest([plan.item]),
                              item=plan.item.name))
    nested = getattr(arg, "incident", None)
    return found + (snapshots(nested) if isinstance(nested, BaseModel) else [])


def snapshot_refusal(checks: list[Snapshot]) -> str | None:
    """Why a start's definitions are not the ones this worker has registered, if they aren't:
    a client could otherwise sign a start carrying its own organisation (itself in the CAB)."""
    from definitions import registry
    from definitions.catalog import Catalog

    for snap in checks:
        try:
            registered = registry.get(snap.name)
        except registry.DefinitionError:
            return f"{snap.field} {snap.name}@{snap.version} is not a definition this worker has"
        if snap.item is not None:
            item = registered.item(snap.item) if isinstance(registered, Catalog) and \
                registered.version == snap.version else None
            if item is None or digest([item]) != snap.digest:
                return (f"{snap.field} ({snap.name}@{snap.version}) does not match this worker's catalog "
                        f"(update the client's definitions)")
        elif registered.version != snap.version or digest([registered]) != snap.digest:
            return (f"{snap.field} {snap.name}@{snap.version} does not match this worker's definition "
                    f"{registered.name}@{registered.version} (update the client's definitions)")
    carried = {snap.name for snap in checks if snap.field == "organisation"}
    for snap in checks:
        if snap.organisation and snap.organisation not in carried:
            return (f"{snap.field} {snap.name} belongs to organisation {snap.organisation}, "
                    f"but the start carries {', '.join(sorted(carried)) or 'none'}")
    return None


def order_of(arg: Any) -> Order | None:
    """A request start's order (None for other starts)."""
    plans, organisation = getattr(arg, "plans", None), getattr(arg, "organisation", None)
    if plans is None or organisation is None:
        return None
    return Order(catalog=arg.catalog, item=arg.item, title=arg.title, variables=arg.variables,
                 requested_for=arg.requested_for, organisation=organisation.name, calendar=digest([arg.calendar]),
                 cancel_group=arg.cancel_group,
                 plans=[OrderedItem(id=p.id, item=p.item.name, digest=digest([p.item]), catalog=p.catalog,
                                    variables=p.variables, after=p.after) for p in plans])


def order_refusal(order: Order) -> str | None:
    """Why a request is not what this worker's catalog makes of its item and variables, if it
    isn't. The client validates the variables and expands bundles at submit; a client could
    otherwise sign a request with out-of-range variables, a bundle missing an item or with its
    steps reordered, an item or calendar from elsewhere, or someone else's cancel group."""
    from definitions import registry
    from definitions.catalog import Catalog
    from definitions.org import Organisation

    name, _, version = order.catalog.partition("@")
    try:
        catalog = registry.get(name, Catalog)
    except registry.DefinitionError:
        return f"catalog {order.catalog} is not a definition this worker has"
    if str(catalog.version) != version:
        return f"catalog {order.catalog} does not match this worker's {catalog.name}@{catalog.version}"
    item = catalog.item(order.item)
    if item is None:
        return f"{order.item!r} is not an item of catalog {order.catalog}"
    if order.organisation != catalog.organisation:
        return f"catalog {order.catalog} belongs to organisation {catalog.organisation}, not {order.organisation}"
    org = registry.get(catalog.organisation, Organisation)
    if org.person(order.requested_for) is None:
        return f"requested for unknown user {order.requested_for!r}"
    if order.title != item.title or order.calendar != digest([catalog.calendar(item.calendar)]):
        return f"the title or calendar of this {order.item} request is not catalog {order.catalog}'s"
    try:
        values = item.values({key: str(value) for key, value in order.variables.items()}, org)
        expanded = catalog.expand(item, values, org)
    except ValueError as err:
        return f"variables refused by catalog {order.catalog}: {err}"
    if digest([values]) != digest([order.variables]):  # types kept apart: 5 is not 5.0, true is not 1
        return f"variables of {order.item} are not as catalog {order.catalog} types them"
    names = {ordered.id: ordered.item for ordered in order.plans}
    if len(names) != len(order.plans) or any(a not in names for o in order.plans for a in o.after) \
            or any(o.catalog != order.catalog for o in order.plans):
        return f"the items of this {order.item} request are not what catalog {order.catalog} orders for it"
    carried = [(o.item, o.digest, digest([o.variables]), sorted(names[a] for a in o.after)) for o in order.plans]
    if carried != [(child.name, digest([child]), digest([child_values]), sorted(after))
                   for child, child_values, after in expanded]:
        return f"the items of this {order.item} request are not what catalog {order.catalog} orders for it"
    if order.cancel_group != catalog.cancel_group:
        return f"cancel group {order.cancel_group!r} is not catalog {order.catalog}'s {catalog.cancel_group!r}"
    return None


def claimed_user(arg: Any) -> str | None:
    """The user an argument claims to act for: `actor`, else the requester of a start,
    else the requester of a nested incident (the dedup router's `attach_or_open`)."""
    for field in CLAIM_FIELDS:
        value = getattr(arg, field, None)
        if isinstance(value, str):
            return value
    nested = getattr(arg, "incident", None)
    return claimed_user(nested) if nested is not None else None


def digest(args: Any) -> str:
    """sha256 over canonical JSON of the arguments (pydantic models as their JSON)."""
    from pydantic_core import to_jsonable_python

    canonical = json.dumps(to_jsonable_python(list(args)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def message(kind: str, workflow_id: str, name: str, args_digest: str, nonce: str) -> bytes:
    return "\0".join(("itsm-auth-v1", kind, workflow_id, name, args_digest, nonce)).encode()


def public_key_text(private_key) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return SCHEME + base64.b64encode(raw).decode()


def generate_key_pem() -> tuple[bytes, str]:
    """A new private key (PEM, PKCS8) and its public key text for the organisation."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return pem, public_key_text(key)


class AuthConfigError(ValueError):
    """A key file or keyring that cannot be used (exit 2 at the CLI)."""


@dataclass
class Signer:
    """Signs for whichever user the call claims; only that user's key will verify."""

    private_key: Any

    @classmethod
    def from_pem(cls, pem: bytes, source: str = "key") -> "Signer":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            key = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as err:
            raise AuthConfigError(f"{source} is not an unencrypted PEM private key: {err}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise AuthConfigError(f"{source} is not an Ed25519 key")
        return cls(key)

    @classmethod
    def from_env(cls) -> "Signer | None":
        path = os.environ.get("ITSM_AUTH_KEY")
        if not path:
            return None
        try:
            pem = open(os.path.expanduser(path), "rb").read()
        except OSError as err:
            raise AuthConfigError(f"ITSM_AUTH_KEY: cannot read {path}: {err.strerror}") from None
        return cls.from_pem(pem, f"ITSM_AUTH_KEY {path}")

    def credential(self, kind: str, workflow_id: str, name: str, args: Any, user: str) -> Credential:
        nonce = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        signature = self.private_key.sign(message(kind, workflow_id, name, digest(args), nonce))
        return Credential(user=user, nonce=nonce, signature=base64.b64encode(signature).decode())


class Keyring:
    """Public keys by username, from the worker's own organisation definition."""

    def __init__(self, keys: Mapping[str, str], source: str = "organisation") -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        self.source = source
        self._keys = {user: Ed25519PublicKey.from_public_bytes(base64.b64decode(text[len(SCHEME):]))
                      for user, text in keys.items()}

    @classmethod
    def from_organisation(cls, organisation) -> "Keyring":
        keys = {p.username: p.public_key for p in organisation.people if p.public_key}
        if not keys:
            raise AuthConfigError(f"ITSM_AUTH is on but organisation {organisation.name} has no public keys")
        return cls(keys, f"organisation {organisation.name} v{organisation.version}")

    def refusal(self, kind: str, workflow_id: str, name: str, args_digest: str, user: str,
                credential: Credential | None) -> str | None:
        """Why this call is not verifiably made by `user`, or None."""
        if credential is None:
            return f"unverified actor {user}: no credential (ITSM_AUTH is on; set ITSM_AUTH_KEY)"
        if credential.user != user:
            return f"unverified actor {user}: the credential is for {credential.user}"
        key = self._keys.get(user)
        if key is None:
            return f"unverified actor {user}: no public key in {self.source}"
        try:
            key.verify(base64.b64decode(credential.signature),
                       message(kind, workflow_id, name, args_digest, credential.nonce))
        except (InvalidSignature, ValueError):
            return f"unverified actor {user}: the credential does not verify (wrong key or altered call)"
        return None


def auth_enabled() -> bool:
    return os.environ.get("ITSM_AUTH", "").strip().lower() in ("1", "on", "true", "yes")


def keyring_from_env(organisation) -> Keyring | None:
    return Keyring.from_organisation(organisation) if auth_enabled() else None


# --- client side ---------------------------------------------------------------------------------

def _encode(converter, credential: Credential):
    return converter.payload_converter.to_payloads([credential.model_dump()])[0]


def client_interceptor(signer: Signer, converter):
    """A client interceptor that signs starts and updates that claim a user."""
    from temporalio.client import Interceptor, OutboundInterceptor

    def signed(headers, kind, workflow_id, name, args):
        user = claimed_user(args[0]) if args else None
        if user is None:
            return headers
        credential = signer.credential(kind, workflow_id, name, args, user)
        return {**(headers or {}), HEADER: _encode(converter, credential)}

    class Outbound(OutboundInterceptor):
        async def start_workflow(self, input):
            input.headers = signed(input.headers, "start", input.id, input.workflow, input.args)
            return await super().start_workflow(input)

        async def start_workflow_update(self, input):
            input.headers = signed(input.headers, "update", input.id, input.update, input.args)
            return await super().start_workflow_update(input)

        async def start_update_with_start_workflow(self, input):
            start, update = input.start_workflow_input, input.update_workflow_input
            start.headers = signed(start.headers, "start", start.id, start.workflow, start.args)
            update.headers = signed(update.headers, "update", start.id, update.update, update.args)
            return await super().start_update_with_start_workflow(input)

    class SigningInterceptor(Interceptor):
        def intercept_client(self, next):
            return Outbound(next)

    return SigningInterceptor()


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


class StartVerifier:
    """The `verify_start` local activity: the verdict on a start is recorded in history,
    so replays never depend on the worker's current keys."""

    def __init__(self, keyring: Keyring | None) -> None:
        self.keyring = keyring

    @activity.defn(name="verify_start")
    def verify_start(self, check: StartCheck) -> str | None:
        if self.keyring is None:
            return None
        if check.workflow_type in CHILD_ONLY:  # asked only for a run with no parent
            return f"{check.workflow_type} runs only as part of a request: submit the request"
        if check.user is None:
            return None
        return self.keyring.refusal("start", check.workflow_id, check.workflow_type, check.digest, check.user,
                                    check.credential) or snapshot_refusal(check.snapshots) \
            or (order_refusal(check.order) if check.order is not None else None)


def worker_interceptor(keyring: Keyring | None):
    """Checks credentials on starts (local activity) and updates (validator)."""
    from temporalio import workflow
    from temporalio.exceptions import ApplicationError
    from temporalio.worker import Interceptor, WorkflowInboundInterceptor

    class Inbound(WorkflowInboundInterceptor):
        def __init__(self, next) -> None:
            super().__init__(next)
            self._used: set[str] = set()

        async def execute_workflow(self, input):
            info = workflow.info()
            user = claimed_user(input.args[0]) if input.args else None
            if (user is not None or info.workflow_type in CHILD_ONLY) and info.parent is None \
                    and info.continued_run_id is None and workflow.patched(PATCH):
                # Without a keyring the verdict is "pass" whatever the check says: skip the
                # digest (canonical JSON of the whole input, ~2 ms in the sandbox).
                check = StartCheck(workflow_id=info.workflow_id, workflow_type=info.workflow_type,
                                   digest=digest(input.args) if keyring is not None else "", user=user,
                                   credential=_credential(input.headers),
                                   snapshots=snapshots(input.args[0]) if keyring is not None else [],
                                   order=order_of(input.args[0]) if keyring is not None else None)
                refusal = await workflow.execute_local_activity(
                    "verify_start", check, result_type=str, start_to_close_timeout=timedelta(seconds=10),
                    summary=f"verify requester {user}" if user is not None else "verify the start",
                )
                if refusal:
                    raise ApplicationError(refusal, type="Unverified", non_retryable=True)
            return await super().execute_workflow(input)

        def handle_update_validator(self, input) -> None:
            user = claimed_user(input.args[0]) if input.args else None
            if keyring is not None and user is not None:
                credential = _credential(input.headers)
                refusal = keyring.refusal("update", workflow.info().workflow_id, input.update, digest(input.args),
                                          user, credential)
                if refusal is None and credential.nonce in self._used:
                    refusal = f"credential of {user} already used: sign each call afresh"
                if refusal:
                    raise ApplicationError(refusal, type="Refused", non_retryable=True)
            super().handle_update_validator(input)

        async def handle_update_handler(self, input):
            credential = _credential(input.headers)
            if credential is not None:
                self._used.add(credential.nonce)
            return await super().handle_update_handler(input)

    class AuthInterceptor(Interceptor):
        def workflow_interceptor_class(self, input):
            return Inbound

    return AuthInterceptor()
