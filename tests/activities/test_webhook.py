"""The webhook activity against a real local HTTP server."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.models import WebhookInput
from activities.webhook import WebhookActivities


class Receiver(BaseHTTPRequestHandler):
    requests: list = []
    status = 200
    delay = 0.0

    def do_POST(self):  # noqa: N802 (http.server hook name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).requests.append((dict(self.headers), json.loads(body)))
        time.sleep(type(self).delay)
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    handler = type("Handler", (Receiver,), {"requests": [], "status": 200, "delay": 0.0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def post(db, url, key="INC-1:escalation.1.step2", timeout=5.0):
    activities = WebhookActivities(db, timeout=timeout)
    return ActivityEnvironment().run(activities.post_webhook, WebhookInput(key=key, url=url, payload={"summary": "P1"}))


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
    is_final = isinstance(raised.value, ApplicationError) and raised.value.non_retryable
    assert is_final is not retryable and str(status) in str(raised.value)
    with db.transaction() as cur:
        assert cur.all("SELECT * FROM notification_ledger") == []


def test_timeout_raises_retryable(db, receiver):
    handler, url = receiver
    handler.delay = 2
    with pytest.raises(OSError):
        post(db, url, timeout=0.5)


def test_non_http_url_is_final(db):
    with pytest.raises(ApplicationError) as raised:
        post(db, "file:///etc/passwd")
    assert raised.value.non_retryable
