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
    port, moto_port, push_port = _free_port(), _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "META_", "RESOURCE_PREFIX"))}
    env.update({"PORT": str(port), "MOTO_PORT": str(moto_port), "PUSH_PORT": str(push_port),
                "LOCAL_ADMIN_PASSWORD": PASSWORD,
                "SOCIALINBOX_STAGE": "local", "PYTHONUNBUFFERED": "1",
                # the hand-off story in seconds: presence lasts 2 s, the minute sweepers run every second
                "PRESENCE_GRACE_SECONDS": "2", "LOCAL_SCHEDULE_SPEEDUP": "60",
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


def _token(base, email="admin@example.com"):
    status, body = _call("POST", base + "/api/auth/login", json.dumps({"email": email,
                                                                       "password": PASSWORD}).encode(),
                         {"Content-Type": "application/json"})
    assert status == 200, body
    return json.loads(body)["token"]


def _deliver_meta(base, user, mid, text):
    now = int(time.time() * 1000)
    payload = {"object": "page", "entry": [{"id": "100000000000001", "time": now, "messaging": [
        {"sender": {"id": user}, "recipient": {"id": "100000000000001"}, "timestamp": now,
         "message": {"mid": mid, "text": text}}]}]}
    raw = json.dumps(payload).encode()  # ASCII-escaped, as Meta signs it
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(raw, "dev_meta_app_secret")}
    assert _call("POST", base + "/webhooks/meta", raw, headers)[0] == 200


def test_banner_prints_urls_and_logins(local_stack):
    base, banner, _ = local_stack
    assert base + "/" in banner and base + "/admin" in banner
    assert "admin@example.com" in banner
    assert PASSWORD not in banner, "the password itself must not be printed"
    (runners,) = [line for line in banner.splitlines() if line.strip().startswith("runners:")]
    for name in ("ingest_processor", "sla_timers", "outbox_worker", "sla_sweeper", "routing_sweeper"):
        assert name in runners


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


def _assignees(base, auth, users):
    status, body = _call("GET", base + "/api/conversations?channel=messenger&limit=100", headers=auth)
    assert status == 200, body
    return {c["contact"]["platform_id"]: c.get("assignee") for c in json.loads(body)["items"]
            if c["contact"]["platform_id"] in users}


def test_an_agent_who_goes_silent_hands_their_conversations_to_the_teammate_online(local_stack):
    """The README's promise under `make run`: agent1 gets three conversations and goes silent
    (away, then nothing), agent2 stays online; after the grace period the routing sweeper, a
    schedule of the app that the local server discovered, hands all three to agent2."""
    from chalicelib.local.seed import stable_agent_id

    base, _, _ = local_stack
    admin = {"Authorization": "Bearer " + _token(base)}
    agent1 = {"Authorization": "Bearer " + _token(base, "agent1@example.com"), "Content-Type": "application/json"}
    agent2 = {"Authorization": "Bearer " + _token(base, "agent2@example.com"), "Content-Type": "application/json"}
    first, second = stable_agent_id("agent1@example.com"), stable_agent_id("agent2@example.com")
    online, away = json.dumps({"status": "online"}).encode(), json.dumps({"status": "away"}).encode()
    assert _call("PUT", base + "/api/me/presence", online, agent1)[0] == 200
    users = {f"handoff-user-{i}" for i in range(3)}
    for i, user in enumerate(sorted(users)):
        _deliver_meta(base, user, f"m_handoff_{i}", f"question {i}")

    deadline = time.time() + 30
    seen = {}
    while time.time() < deadline and not (len(seen) == 3 and set(seen.values()) == {first}):
        assert _call("PUT", base + "/api/me/presence", online, agent1)[0] == 200  # agent1's page refreshes
        seen = _assignees(base, admin, users)
        time.sleep(0.2)
    assert seen == {user: first for user in users}, "agent1 did not get the three conversations"

    assert _call("PUT", base + "/api/me/presence", away, agent1)[0] == 200  # the laptop closes: away, then silence
    deadline = time.time() + 30
    while time.time() < deadline and set(seen.values()) != {second}:
        assert _call("PUT", base + "/api/me/presence", online, agent2)[0] == 200  # agent2's page refreshes
        seen = _assignees(base, admin, users)
        time.sleep(0.3)
    assert seen == {user: second for user in users}, "the silent agent's conversations were not handed on"


def test_ctrl_c_stops_everything_cleanly(local_stack):
    base, _, process = local_stack
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "socialinbox stopped." in output
    with pytest.raises(OSError):
        urllib.request.urlopen(base + "/api/me", timeout=2)
