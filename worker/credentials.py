"""Credentials under ITSM_AUTH: who signed a call, for which run, call and payload, and until when.

Two kinds of signer produce the same credential (the `itsm-credential` header):
- a **user**, with the Ed25519 key whose public half is in the worker's own organisation
  definition (the CLI signs with ITSM_AUTH_KEY);
- the **worker**, with its own key (ITSM_WORKER_KEY): the starts, continue-as-new and
  signals that runs send each other (children, routers, suggested problems, bookkeeping).
  Only a worker holds it, so nobody else can produce one.

The signed message binds the kind (start, update, signal), the signer, the user, the
workflow id, the workflow type / update / signal name, a digest of the arguments, a
one-time nonce and a validity window (issued at, expires at), plus the nonces a
continue-as-new carries. The window bounds how long a captured call stays usable and so
how many nonces a run chain must remember to refuse it a second time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Mapping

from cryptography.exceptions import InvalidSignature
from pydantic import BaseModel

HEADER = "itsm-credential"
SCHEME = "ed25519:"
WORKER = "worker"
# A client's credential is good for TTL; the worker accepts at most MAX_TTL, and a clock up to
# SKEW ahead of the run's (the server's) time.
TTL = timedelta(minutes=10)
MAX_TTL = timedelta(minutes=15)
SKEW = timedelta(minutes=5)


class Credential(BaseModel):
    user: str
    nonce: str
    signature: str
    signer: Literal["user", "worker"] = "user"
    issued_at: int = 0  # unix seconds
    expires_at: int = 0
    # A worker-signed continue-as-new: the nonces (→ expiry) the run chain still remembers.
    carried: dict[str, int] = {}


class AuthConfigError(ValueError):
    """A key file or keyring that cannot be used (exit 2 at the CLI)."""


def digest(args: Any) -> str:
    """sha256 over canonical JSON of the arguments (pydantic models as their JSON)."""
    from pydantic_core import to_jsonable_python

    canonical = json.dumps(to_jsonable_python(list(args)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def message(kind: str, workflow_id: str, name: str, args_digest: str, credential: Credential) -> bytes:
    carried = digest([sorted(credential.carried.items())]) if credential.carried else ""
    return "\0".join(("itsm-auth-v2", kind, credential.signer, credential.user, workflow_id, name, args_digest,
                      credential.nonce, str(credential.issued_at), str(credential.expires_at), carried)).encode()


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


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


def _public_key(text: str, source: str):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text.strip()[len(SCHEME):], validate=True))
    except ValueError:
        raise AuthConfigError(f"{source}: {text.strip()[:60]!r} is not an {SCHEME}<base64> public key") from None


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
    def from_file(cls, path: str | Path, variable: str) -> "Signer":
        try:
            pem = Path(path).expanduser().read_bytes()
        except OSError as err:
            raise AuthConfigError(f"{variable}: cannot read {path}: {err.strerror}") from None
        return cls.from_pem(pem, f"{variable} {path}")

    @classmethod
    def from_env(cls) -> "Signer | None":
        """The acting user's key (ITSM_AUTH_KEY): a file others can read is no private key."""
        path = os.environ.get("ITSM_AUTH_KEY")
        return _private_file(Path(path).expanduser(), "ITSM_AUTH_KEY") if path else None

    @classmethod
    def generate(cls) -> "Signer":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls(Ed25519PrivateKey.generate())

    def public_key(self) -> str:
        return public_key_text(self.private_key)

    def credential(self, kind: str, workflow_id: str, name: str, args: Any, user: str, now: datetime | None = None,
                   *, signer: Literal["user", "worker"] = "user", nonce: str | None = None,
                   carried: Mapping[str, int] | None = None, ttl: timedelta = TTL) -> Credential:
        issued = epoch(now) if now is not None else epoch(datetime.now().astimezone())
        credential = Credential(
            user=user, signer=signer, signature="", issued_at=issued, expires_at=issued + int(ttl.total_seconds()),
            nonce=nonce or base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("="), carried=dict(carried or {}))
        signature = self.private_key.sign(message(kind, workflow_id, name, digest(args), credential))
        credential.signature = base64.b64encode(signature).decode()
        return credential


def worker_signer_from_env() -> tuple[Signer, list[str]]:
    """The worker's own key, and the public keys of earlier worker keys still accepted.

    ITSM_WORKER_KEY names the private key file; every worker of a deployment needs the same
    one (runs on one worker signal runs on another). Without it, a key is made once in
    $ITSM_HOME/keys/worker.pem (mode 600), which serves the workers of one machine.
    ITSM_WORKER_PREVIOUS_KEYS (comma-separated `ed25519:` public keys) keeps earlier keys
    valid for signals after a rotation, while runs that replay them are open."""
    previous = [text.strip() for text in os.environ.get("ITSM_WORKER_PREVIOUS_KEYS", "").split(",") if text.strip()]
    for text in previous:
        _public_key(text, "ITSM_WORKER_PREVIOUS_KEYS")
    path = os.environ.get("ITSM_WORKER_KEY")
    if path:
        return _private_file(Path(path).expanduser(), "ITSM_WORKER_KEY"), previous
    default = Path(os.environ.get("ITSM_HOME", ".itsm")) / "keys" / "worker.pem"
    if not default.exists():
        pem, _ = generate_key_pem()
        default.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(default, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker of this machine made it first
            pass
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
    return _private_file(default, "worker key"), previous


def _private_file(path: Path, variable: str) -> Signer:
    try:
        mode = path.stat().st_mode
    except OSError as err:
        raise AuthConfigError(f"{variable}: cannot read {path}: {err.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuthConfigError(f"{variable}: {path} is readable by others (chmod 600 {path})")
    return Signer.from_file(path, variable)


@dataclass
class Keyring:
    """Public keys by username, from the worker's own organisation definition, plus the
    worker's own key: it signs what runs send each other and verifies it on arrival."""

    keys: Mapping[str, str]
    source: str = "organisation"
    worker: Signer = field(default_factory=Signer.generate)
    previous_worker_keys: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._users = {user: _public_key(text, self.source) for user, text in self.keys.items()}
        self._workers = [self.worker.private_key.public_key(),
                         *(_public_key(text, "ITSM_WORKER_PREVIOUS_KEYS") for text in self.previous_worker_keys)]

    @classmethod
    def from_organisation(cls, organisation, worker: Signer | None = None,
                          previous_worker_keys: list[str] | None = None) -> "Keyring":
        keys = {p.username: p.public_key for p in organisation.people if p.public_key}
        if not keys:
            raise AuthConfigError(f"ITSM_AUTH is on but organisation {organisation.name} has no public keys")
        if worker is None:
            worker, previous_worker_keys = worker_signer_from_env()
        return cls(keys, f"organisation {organisation.name} v{organisation.version}", worker,
                   list(previous_worker_keys or []))

    def refusal(self, kind: str, workflow_id: str, name: str, args_digest: str, user: str,
                credential: Credential | None, now: datetime | None = None) -> str | None:
        """Why this call is not verifiably made by `user` (WORKER: by a worker), or None.
        With `now`, the credential must also be valid at that time."""
        who = "the worker" if user == WORKER else f"actor {user}"
        if credential is None:
            hint = "" if user == WORKER else " (ITSM_AUTH is on; set ITSM_AUTH_KEY)"
            return f"unverified {who}: no credential{hint}"
        if (credential.signer == WORKER) != (user == WORKER) or credential.user != user:
            signed_by = "the worker" if credential.signer == WORKER else credential.user
            return f"unverified {who}: the credential is for {signed_by}"
        keys = self._workers if user == WORKER else [self._users[user]] if user in self._users else []
        if not keys:
            return f"unverified {who}: no public key in {self.source}"
        signed = message(kind, workflow_id, name, args_digest, credential)
        if not any(_verifies(key, credential.signature, signed) for key in keys):
            return f"unverified {who}: the credential does not verify (wrong key or altered call)"
        if now is not None:
            return validity_refusal(credential, now)
        return None


def validity_refusal(credential: Credential, now: datetime) -> str | None:
    who = "the worker" if credential.signer == WORKER else credential.user
    if credential.expires_at - credential.issued_at > MAX_TTL.total_seconds():
        return f"credential of {who} is valid for longer than {int(MAX_TTL.total_seconds() // 60)} minutes"
    if epoch(now) > credential.expires_at:
        return f"credential of {who} has expired: sign each call afresh"
    if credential.issued_at > epoch(now + SKEW):
        return f"credential of {who} is issued in the future (check the clock)"
    return None


def _verifies(key, signature: str, signed: bytes) -> bool:
    try:
        key.verify(base64.b64decode(signature), signed)
    except (InvalidSignature, ValueError):
        return False
    return True


def auth_enabled() -> bool:
    return os.environ.get("ITSM_AUTH", "").strip().lower() in ("1", "on", "true", "yes")


def keyring_from_env(organisation) -> Keyring | None:
    return Keyring.from_organisation(organisation) if auth_enabled() else None
