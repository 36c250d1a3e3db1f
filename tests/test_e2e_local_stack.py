"""End to end: start the local stack exactly as `make run` does, drive it over HTTP, stop it."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.helpers import meta_signature

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "e2e-admin-password"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _call(method, url, body=None, headers=None):
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory):
    port, moto_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "META_", "RESOURCE_PREFIX"))}
    env.update({"PORT": str(port), "MOTO_PORT": str(moto_port), "LOCAL_ADMIN_PASSWORD": PASSWORD,
                "SOCIALINBOX_STAGE": "local", "PYTHONUNBUFFERED": "1",
                # its own data directory: never a developer's .localdata (nor its lock)
                "SOCIALINBOX_DATA_DIR": str(tmp_path_factory.mktemp("localdata"))})
    process = subprocess.Popen([sys.executable, "-m", "chalicelib.local.server"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    banner = []
    deadline = time.time() + 60
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        banner.append(line)
        if "Ctrl-C" in line:
            break
    if not any("Ctrl-C" in line for line in banner):
        process.kill()
        pytest.fail("local stack did not start:\n" + "".join(banner))
    yield f"http://127.0.0.1:{port}", "".join(banner), process
    if process.poll() is None:
        process.kill()


def _token(base):
    status, body = _call("POST", base + "/api/auth/login", json.dumps({"email": "admin@example.com",
                                                                       "password": PASSWORD}).encode(),
                         {"Content-Type": "application/json"})
    assert status == 200, body
    return json.loads(body)["token"]


def test_banner_prints_urls_and_logins(local_stack):
    base, banner, _ = local_stack
    assert base + "/" in banner and base + "/admin" in banner
    assert "admin@example.com" in banner
    assert PASSWORD not in banner, "the password itself must not be printed"


def test_signed_delivery_reaches_the_inbox_over_http(local_stack):
    base, _, _ = local_stack
    status, body = _call("GET", base + "/webhooks/meta?hub.mode=subscribe&hub.challenge=1158201444"
                                       "&hub.verify_token=dev_meta_verify_token")
    assert (status, body) == (200, b"1158201444")

    now = int(time.time() * 1000)
    payload = {"object": "page", "entry": [{"id": "100000000000001", "time": now, "messaging": [
        {"sender": {"id": "e2e-user"}, "recipient": {"id": "100000000000001"}, "timestamp": now,
         "message": {"mid": "m_e2e_1", "text": "caf\u00e9 from e2e"}}]}]}
    raw = json.dumps(payload).encode()  # ASCII-escaped, as Meta signs it
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(raw, "dev_meta_app_secret")}
    assert _call("POST", base + "/webhooks/meta", raw, headers)[0] == 200
    assert _call("POST", base + "/webhooks/meta", raw, headers)[0] == 200  # a platform retry
    forged = dict(headers, **{"X-Hub-Signature-256": "sha256=" + "0" * 64})
    assert _call("POST", base + "/webhooks/meta", raw, forged)[0] == 401

    auth = {"Authorization": "Bearer " + _token(base)}
    deadline = time.time() + 30
    found = []
    while time.time() < deadline and not found:
        status, body = _call("GET", base + "/api/conversations?channel=messenger", headers=auth)
        assert status == 200
        found = [c for c in json.loads(body)["items"] if c["contact"]["platform_id"] == "e2e-user"]
        time.sleep(0.2)
    assert found, "the event pump did not deliver the message"
    status, body = _call("GET", f"{base}/api/conversations/{found[0]['id']}/messages", headers=auth)
    assert [m["text"] for m in json.loads(body)["items"]] == ["café from e2e"]


def test_ctrl_c_stops_everything_cleanly(local_stack):
    base, _, process = local_stack
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "socialinbox stopped." in output
    with pytest.raises(OSError):
        urllib.request.urlopen(base + "/api/me", timeout=2)
