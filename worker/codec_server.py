"""A Temporal codec server: lets the Temporal UI (and `temporal` CLI) show payloads that
itsmflow encrypted (`ITSM_ENCRYPTION_KEY`), without giving the key to the Temporal server.

    itsm codec-server [--host 127.0.0.1] [--port 8888] [--ui-origin http://localhost:8233]

The UI posts `{"payloads": [...]}` (protobuf JSON) to `<endpoint>/decode` (and `/encode`)
with the namespace in `X-Namespace`; we answer the same shape, decoded. Browsers call it
cross-origin, so it answers CORS preflights for the UI's origin only. Whoever reaches it can
read every payload: it listens on localhost by default, and with `ITSM_CODEC_TOKEN` set it
requires `Authorization: Bearer <token>` (the UI's "pass access token" setting)."""

from __future__ import annotations

import asyncio
import hmac
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from worker.codec import EncryptionCodec

MAX_BODY = 16 * 1024 * 1024


class CodecServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], codec: EncryptionCodec, origins: list[str],
                 token: str | None = None, log: Callable[[str], None] | None = None) -> None:
        self.codec, self.origins, self.token, self.log = codec, origins, token, log or (lambda _: None)
        super().__init__(address, _Handler)

    @property
    def host(self) -> str:
        """The address listened on (an internet socket names it as text)."""
        host = self.server_address[0]
        return host if isinstance(host, str) else bytes(host).decode()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server_address[1]}"


LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_NAMES or host.startswith("127.")


def host_name(header: str) -> str:
    """The name in a Host header without its port ("[::1]:8888" → "[::1]")."""
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0]


class _Handler(BaseHTTPRequestHandler):
    server: CodecServer
    protocol_version = "HTTP/1.1"
    timeout = 30  # a client that stalls mid-request frees its thread

    def log_message(self, *args) -> None:  # the request line only, through our logger
        pass

    def _cors(self) -> None:
        origin = self.headers.get("Origin")
        if origin and origin in self.server.origins:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Credentials", "true")
            self.send_header("Vary", "Origin")

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        if status >= 400:  # the request's body may be unread: never read it as the next request
            self.send_header("Connection", "close")
        self._cors()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.server.log(f"{self.command} {self.path} {status}")

    def _refusal(self) -> tuple[int, dict] | None:
        """Who may have payloads decrypted: the UI's origins only (a browser always sends
        Origin cross-site), by a loopback name when we listen on loopback (a DNS-rebound page
        reaches 127.0.0.1 under its own host name), with the bearer token when one is set."""
        origin = self.headers.get("Origin")
        if origin is not None and origin not in self.server.origins:
            return 403, {"message": f"origin {origin} is not allowed (--ui-origin)"}
        host = host_name(self.headers.get("Host") or "")
        if is_loopback(self.server.host) and not is_loopback(host):
            return 403, {"message": f"host {host or '(none)'} is not a loopback name"}
        if self.server.token is not None:
            given = self.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.server.token}".encode()):
                return 401, {"message": "missing or wrong bearer token"}
        return None

    def do_OPTIONS(self) -> None:  # noqa: N802 (http.server hook name)
        self.send_response(204)
        self._cors()
        self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization")
        self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/") in ("", "/health"):
            self._reply(200, {"status": "ok"})
        else:
            self._reply(404, {"message": "POST /decode or /encode"})

    def do_POST(self) -> None:  # noqa: N802
        from google.protobuf import json_format
        from temporalio.api.common.v1 import Payloads

        action = self.path.rstrip("/").rsplit("/", 1)[-1]
        if action not in ("decode", "encode"):
            return self._reply(404, {"message": "POST /decode or /encode"})
        refusal = self._refusal()
        if refusal:
            return self._reply(*refusal)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            return self._reply(400, {"message": f"body must be 1 byte to {MAX_BODY} bytes of JSON"})
        try:
            payloads = json_format.Parse(self.rfile.read(length), Payloads())
            codec = self.server.codec
            converted = asyncio.run((codec.decode if action == "decode" else codec.encode)(payloads.payloads))
        except Exception as err:  # noqa: BLE001 (a bad request or a payload we cannot decrypt)
            return self._reply(400, {"message": f"{action} failed: {type(err).__name__}: {err}".strip()})
        self._reply(200, {"payloads": [], **json.loads(json_format.MessageToJson(Payloads(payloads=converted)))})
