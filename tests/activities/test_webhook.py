"""The webhook activity against a real local HTTP server, and the destination allow-list
(activities/destinations.py) on the activity's path: a refused destination is never connected to."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.destinations import AllowList, WebhookAllowListError
from activities.models import WebhookInput
from activities.webhook import WebhookActivities
from tests.activities import not_retried

LOOPBACK = AllowList.parse("127.0.0.1")


class Receiver(BaseHTTPRequestHandler):
    requests: list = []
    connections: list = []
    status = 200
    delay = 0.0
    location = ""

    def do_POST(self):  # noqa: N802 (http.server hook name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).requests.append((dict(self.headers), json.loads(body)))
        time.sleep(type(self).delay)
        self.send_response(type(self).status)
        if type(self).location:
            self.send_header("Location", type(self).location)
        self.end_headers()

    do_GET = do_POST  # noqa: N815 (a followed 302 would arrive as a GET)

    def log_message(self, *args):
        pass


class CountingServer(ThreadingHTTPServer):
    """Records every accepted TCP connection, so "nothing received" includes a bare connect."""

    def verify_request(self, request, client_address):
        self.RequestHandlerClass.connections.append(client_address)
        return True


def start_receiver():
    handler = type("Handler", (Receiver,), {"requests": [], "connections": [], "status": 200, "delay": 0.0,
                                             "location": ""})
    server = CountingServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler, f"http://127.0.0.1:{server.server_address[1]}/hook"


@pytest.fixture
def receiver():
    server, handler, url = start_receiver()
    yield handler, url
    server.shutdown()


@pytest.fixture
def no_connections(monkeypatch):
    """Any outgoing connect() fails the test: a refusal must come before the socket."""
    attempts = []

    def refuse(sock, address, *args):
        attempts.append(address)
        raise AssertionError(f"connected to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def post(db, url, key="INC-1:escalation.1.step2", timeout=5.0, allow=LOOPBACK):
    activities = WebhookActivities(db, timeout=timeout, allow=allow)
    return ActivityEnvironment().run(activities.post_webhook, WebhookInput(key=key, url=url, payload={"summary": "P1"}))


def ledger(db):
    with db.transaction() as cur:
        return cur.all("SELECT * FROM notification_ledger")


def test_posts_once_with_idempotency_key(db, receiver):
    handler, url = receiver
    first, again = post(db, url), post(db, url)
    assert (first.status, first.duplicate, again.duplicate) == (200, False, True)
    assert len(handler.requests) == 1
    headers, body = handler.requests[0]
    assert headers["Idempotency-Key"] == "INC-1:escalation.1.step2" and body == {"summary": "P1"}
    with db.transaction() as cur:
        assert cur.all("SELECT channel, subject FROM notification_ledger") == [("webhook", "P1")]


@pytest.mark.parametrize("status, retryable", [(500, True), (429, True), (408, True), (400, False), (404, False)])
def test_failures_raise_retryable_or_not(db, receiver, status, retryable):
    handler, url = receiver
    handler.status = status
    with pytest.raises(Exception) as raised:
        post(db, url)
    is_final = isinstance(raised.value, ApplicationError) and not_retried(raised.value)
    assert is_final is not retryable and str(status) in str(raised.value)
    assert ledger(db) == []


def test_timeout_raises_retryable(db, receiver):
    handler, url = receiver
    handler.delay = 2
    with pytest.raises(OSError):
        post(db, url, timeout=0.5)


def test_non_http_url_is_final(db):
    with pytest.raises(ApplicationError) as raised:
        post(db, "file:///etc/passwd")
    assert not_retried(raised.value)


def test_unlisted_loopback_is_refused_and_the_listener_receives_nothing(db, receiver):
    handler, url = receiver
    with pytest.raises(ApplicationError) as raised:
        post(db, url, allow=AllowList())
    assert raised.value.type == "WebhookRejected" and not_retried(raised.value)
    assert raised.value.message == ("webhook destination 127.0.0.1 is a loopback address; "
                                 "list it in ITSM_WEBHOOK_ALLOW to allow it")
    assert (handler.connections, handler.requests, ledger(db)) == ([], [], [])


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.0/8", "127.0.0.1:{port}", "hooks.example.com, 127.0.0.1"])
def test_listed_loopback_is_delivered(db, receiver, entry):
    handler, url = receiver
    port = url.split(":")[2].split("/")[0]
    assert post(db, url, allow=AllowList.parse(entry.format(port=port))).status == 200
    assert len(handler.requests) == 1


def test_listed_on_another_port_is_refused(db, receiver):
    handler, url = receiver
    with pytest.raises(ApplicationError, match="is a loopback address"):
        post(db, url, allow=AllowList.parse("127.0.0.1:1"))
    assert handler.connections == []


def test_allow_list_defaults_to_the_environment(db, receiver, monkeypatch):
    """worker/main.py builds `WebhookActivities(db)`: the environment is its allow-list."""
    handler, url = receiver
    activities = WebhookActivities(db)
    monkeypatch.setenv("ITSM_WEBHOOK_ALLOW", f"127.0.0.1:{url.split(':')[2].split('/')[0]}")
    listed = WebhookActivities(db)
    request = WebhookInput(key="INC-1:escalation.1.step1", url=url, payload={})
    with pytest.raises(ApplicationError, match="loopback"):
        ActivityEnvironment().run(activities.post_webhook, request)
    assert ActivityEnvironment().run(listed.post_webhook, request).status == 200
    assert len(handler.requests) == 1


@pytest.mark.parametrize("url, kind", [
    ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
    ("http://10.0.0.5/hook", "a private address"),
    ("http://[::1]:8080/hook", "a loopback address"),
    ("http://0.0.0.0:8080/hook", "an unspecified address"),
    ("http://[::ffff:127.0.0.1]/hook", "a loopback address"),
    ("http://[::ffff:169.254.169.254]/hook", "a link-local address"),
    ("http://100.64.0.1/hook", "a shared (CGNAT) address"),
    ("https://[fd00::1]/hook", "a private address"),
    ("http://[fe80::1]/hook", "a link-local address"),
    ("http://224.0.0.1/hook", "a multicast address"),
    ("http://localhost:8080/hook", "a loopback address"),
    ("http://LocalHost./hook", "a loopback address"),
])
def test_internal_destinations_are_refused_without_connecting(db, no_connections, url, kind):
    with pytest.raises(ApplicationError) as raised:
        post(db, url, allow=AllowList.parse("hooks.example.com, 192.168.0.0/16"))
    assert not_retried(raised.value) and raised.value.type == "WebhookRejected"
    assert f"is {kind}; list it in ITSM_WEBHOOK_ALLOW" in str(raised.value)
    assert (no_connections, ledger(db)) == ([], [])


def test_connects_to_the_vetted_address_with_the_original_host_header(db, receiver, monkeypatch):
    """DNS rebinding: the name is looked up once; a second answer (10.x) is never used."""
    handler, url = receiver
    port = int(url.split(":")[2].split("/")[0])
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def rebinding(host, *args, **kwargs):
        if host == "hooks.rebind.test":
            lookups.append(host)
            host = "127.0.0.1" if len(lookups) == 1 else "10.255.255.1"
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    result = post(db, f"http://hooks.rebind.test:{port}/hook", allow=AllowList.parse(f"127.0.0.1:{port}"))
    assert (result.status, lookups) == (200, ["hooks.rebind.test"])
    assert handler.requests[0][0]["Host"] == f"hooks.rebind.test:{port}"


def test_redirect_to_loopback_is_not_followed(db, receiver):
    handler, url = receiver
    target_server, target, target_url = start_receiver()
    handler.status, handler.location = 302, target_url
    try:
        with pytest.raises(ApplicationError) as raised:
            post(db, url, allow=AllowList.parse(url.split("/")[2]))
    finally:
        target_server.shutdown()
    assert not_retried(raised.value) and "answered 302 (redirects are not followed)" in str(raised.value)
    assert (len(handler.requests), target.connections, ledger(db)) == (1, [], [])


@pytest.mark.parametrize("entry", ["http://hooks.example.com", "10.1.0.0/33", "10.1.2.3/16", "hooks.example.com:99999",
                                   "*", "hooks example.com", "[::1", "[hooks.example.com]:80", "-bad.example.com"])
def test_bad_allow_entry_is_a_clear_error(db, monkeypatch, entry):
    monkeypatch.setenv("ITSM_WEBHOOK_ALLOW", f"hooks.example.com,{entry}")
    with pytest.raises(WebhookAllowListError) as raised:
        WebhookActivities(db)
    message = str(raised.value)
    assert isinstance(raised.value, ValueError) and "\n" not in message
    assert message.startswith(f"ITSM_WEBHOOK_ALLOW entry {entry!r} ")
