"""`itsm codec-server`, the real command: the Temporal UI's protocol (POST /decode and
/encode, protobuf JSON, X-Namespace), CORS for the UI's origin only, the bearer token, and a
real encrypted run's history decoded through it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from itsmflow.app import change_ops
from tests.worker.test_codec import change_titled, keyed_client
from worker.main import build_worker
from worker.server import free_port

KEY = base64.b64encode(os.urandom(32)).decode()
TOKEN = "s3cret-token"
UI = "http://localhost:8233"
SECRET_TITLE = "Replace the payments HSM"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    env = {**os.environ, "ITSM_ENCRYPTION_KEY": KEY, "ITSM_ENCRYPTION_KEY_ID": "team", "ITSM_CODEC_TOKEN": TOKEN}
    log = tmp_path_factory.mktemp("codec") / "codec-server.log"
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, "-m", "cli.main", "codec-server", "--port", str(port)], env=env,
                                   stdout=output, stderr=output)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the codec server never answered: {log.read_text()[-2000:]}")
            time.sleep(0.1)
    yield url
    process.terminate()  # SIGTERM, as `docker stop` sends it: a clean exit
    assert process.wait(10) == 0, log.read_text()[-2000:]


def call(url: str, method: str = "POST", body: dict | None = None, **headers) -> tuple[int, dict, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", "X-Namespace": "default", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw else {}
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read() or b"{}")


def bearer() -> dict:
    return {"Authorization": f"Bearer {TOKEN}"}


def test_encode_then_decode_round_trips_through_the_ui_protocol(server):
    clear = {"payloads": [{"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                           "data": base64.b64encode(b'{"notes": "top secret"}').decode()}]}
    status, _, sealed = call(f"{server}/encode", body=clear, **bearer())
    assert status == 200 and b"top secret" not in base64.b64decode(sealed["payloads"][0]["data"])
    assert base64.b64decode(sealed["payloads"][0]["metadata"]["encryption-key-id"]) == b"team"
    status, _, opened = call(f"{server}/default/decode", body=sealed, **bearer())  # the UI may prefix the namespace
    assert (status, opened) == (200, clear)
    status, _, empty = call(f"{server}/decode", body={"payloads": []}, **bearer())
    assert (status, empty) == (200, {"payloads": []})


def test_token_cors_and_bad_requests(server):
    status, headers, body = call(f"{server}/decode", body={"payloads": []}, Origin=UI)
    assert (status, body["message"]) == (401, "missing or wrong bearer token")
    assert headers["Access-Control-Allow-Origin"] == UI  # so the UI can show the refusal
    assert call(f"{server}/decode", body={"payloads": []}, Authorization="Bearer wrong")[0] == 401

    status, headers, _ = call(f"{server}/decode", method="OPTIONS", Origin=UI,
                              **{"Access-Control-Request-Method": "POST"})
    assert status == 204 and headers["Access-Control-Allow-Origin"] == UI
    assert "X-Namespace" in headers["Access-Control-Allow-Headers"]
    assert "Authorization" in headers["Access-Control-Allow-Headers"]
    _, headers, _ = call(f"{server}/decode", method="OPTIONS", Origin="http://evil.example")
    assert "Access-Control-Allow-Origin" not in headers

    status, _, body = call(f"{server}/decode", body={"payloads": []}, Origin="http://evil.example", **bearer())
    assert (status, body["message"]) == (403, "origin http://evil.example is not allowed (--ui-origin)")
    status, _, body = call(f"{server}/decode", body={"payloads": []}, Host="attacker.example:8888", **bearer())
    assert (status, body["message"]) == (403, "host attacker.example is not a loopback name")

    status, _, body = call(f"{server}/decode", body={"payloads": [{"metadata": {
        "encoding": base64.b64encode(b"binary/encrypted").decode(),
        "encryption-key-id": base64.b64encode(b"other").decode()}, "data": "AAAA"}]}, **bearer())
    assert (status, body["message"]) == (400,
                                         "decode failed: ValueError: payload encrypted with unknown key id 'other'")
    assert call(f"{server}/decode", body={"nope": 1}, **bearer())[0] == 400
    assert call(f"{server}/nothing", body={}, **bearer())[0] == 404


async def test_a_real_encrypted_run_reads_in_clear_through_it(server, env, task_queue, db, channel):
    keyed = keyed_client(env, KEY, "team")
    change = await change_titled(env, SECRET_TITLE)
    handle = env.client.get_workflow_handle(change.id)
    async with build_worker(keyed, task_queue, db=db, channel=channel):
        try:
            await change_ops.submit(keyed, change, task_queue)
            history = await handle.fetch_history()
        finally:  # ended with the worker still up, so the worker stops on a finished run
            await handle.terminate("test finished")
    started = history.events[0].workflow_execution_started_event_attributes.input
    as_ui_sends = json.loads(json_format.MessageToJson(Payloads(payloads=started.payloads)))
    assert SECRET_TITLE not in json.dumps(as_ui_sends)
    code, _, decoded = call(f"{server}/decode", body=as_ui_sends, **bearer())
    assert code == 200
    [payload] = decoded["payloads"]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain"
    assert json.loads(base64.b64decode(payload["data"]))["title"] == SECRET_TITLE


def test_the_embedded_servers_ui_is_pointed_at_it(tmp_path, monkeypatch):
    """`ITSM_CODEC_ENDPOINT` reaches the real UI's settings (what the browser app reads)."""
    import asyncio

    from worker.server import DevServer, wait_until_ready

    monkeypatch.setenv("ITSM_CODEC_ENDPOINT", "http://127.0.0.1:8888")
    dev = DevServer(port=free_port(), ui_port=free_port(), http_port=free_port(), db=tmp_path / "t.db")
    process = dev.spawn(detach=False)
    try:
        asyncio.run(wait_until_ready(dev.address, 60, process))
        deadline = time.monotonic() + 30
        while True:
            try:
                settings = json.loads(urllib.request.urlopen(f"{dev.ui_url}/api/v1/settings", timeout=2).read())
                break
            except OSError:
                assert time.monotonic() < deadline, "the UI never answered"
                time.sleep(0.2)
    finally:
        dev.stop()
    assert settings["Codec"]["Endpoint"] == "http://127.0.0.1:8888"


def test_a_refused_request_does_not_poison_the_next_one_on_its_connection(server):
    """Browsers reuse connections: after a refusal (body unread) the next call must work."""
    import http.client

    host, port = server.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    body = json.dumps({"payloads": []})
    for headers, expected in [({}, 401), (bearer(), 200), ({"Content-Length": "nope", **bearer()}, 400), (bearer(),
                                                                                                          200)]:
        connection.request("POST", "/decode", body=body, headers={"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        answer = json.loads(response.read())
        assert response.status == expected, answer
    connection.close()
