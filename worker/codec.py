"""Optional payload encryption (AES-256-GCM), so inputs, results, update arguments, memos
and notes are not readable in the Temporal server's database. The CLI and the worker
share the key; search attributes stay in clear (ids, states and names only, by design).

    ITSM_ENCRYPTION_KEY      base64 of 32 random bytes (`python -c "import os,base64;
                             print(base64.b64encode(os.urandom(32)).decode())"`)
    ITSM_ENCRYPTION_KEY_ID   name of that key, stored with each payload [default: default]
    ITSM_DECRYPTION_KEYS     older keys still readable during rotation: id=base64,id=base64"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Mapping, Sequence

from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
NONCE_BYTES = 12


class CodecKeyError(ValueError):
    """The configured key material is unusable (one line, for the CLI)."""


def _key(text: str, name: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CodecKeyError(f"{name} is not base64") from None
    if len(key) != 32:
        raise CodecKeyError(f"{name} must decode to 32 bytes (AES-256), not {len(key)}")
    return key


class EncryptionCodec(PayloadCodec):
    def __init__(self, key_id: str, key: bytes, old_keys: Mapping[str, bytes] | None = None) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.key_id = key_id
        self._ciphers = {key_id: AESGCM(key), **{kid: AESGCM(k) for kid, k in (old_keys or {}).items()}}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self._ciphers[self.key_id]
        encoded = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            data = nonce + cipher.encrypt(nonce, payload.SerializeToString(), self.key_id.encode())
            encoded.append(Payload(metadata={"encoding": ENCODING, "encryption-key-id": self.key_id.encode()},
                                   data=data))
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                decoded.append(payload)  # written before encryption was turned on
                continue
            key_id = payload.metadata.get("encryption-key-id", b"").decode()
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise ValueError(f"payload encrypted with unknown key id {key_id!r}")
            clear = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], key_id.encode())
            decoded.append(Payload.FromString(clear))
        return decoded


def codec_from_env(env: Mapping[str, str] | None = None) -> EncryptionCodec | None:
    env = os.environ if env is None else env
    if not env.get("ITSM_ENCRYPTION_KEY"):
        return None
    old = {}
    for item in filter(None, env.get("ITSM_DECRYPTION_KEYS", "").split(",")):
        key_id, sep, text = item.partition("=")
        if not sep:
            raise CodecKeyError("ITSM_DECRYPTION_KEYS entries are id=base64key")
        old[key_id.strip()] = _key(text.strip(), f"ITSM_DECRYPTION_KEYS[{key_id.strip()}]")
    return EncryptionCodec(env.get("ITSM_ENCRYPTION_KEY_ID", "default"),
                           _key(env["ITSM_ENCRYPTION_KEY"], "ITSM_ENCRYPTION_KEY"), old)
