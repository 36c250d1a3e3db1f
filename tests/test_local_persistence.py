"""`make run` keeps its data (chalicelib/local/persist.py): a restart, a kill -9 right after the
acknowledgements, and a Ctrl-C lose nothing a platform got a 200 for. The server runs as
`make run` runs it (a subprocess, free ports on 127.0.0.1, a temporary data directory)."""
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
from typing import Any, Dict, List, Optional, Tuple

import pytest

from chalicelib.local import persist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalServer:
    def __init__(self, data_dir: str, log_path: str) -> None:
        self.data_dir, self.log_path = data_dir, log_path
        self.proc: Optional[subprocess.Popen] = None
        self.base = ""

    def start(self) -> None:
        port, moto_port, push_port = _free_port(), _free_port(), _free_port()
        self.base = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "META_", "X_", "TELEGRAM_",
                                                                       "LINKEDIN_", "AUTH_", "RESOURCE_"))}
        env.update(PORT=str(port), MOTO_PORT=str(moto_port), SOCIALINBOX_DATA_DIR=self.data_dir, PYTHONUNBUFFERED="1")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "chalicelib.local.server", "--port", str(port),
                                          "--moto-port", str(moto_port), "--push-port", str(push_port)], cwd=ROOT, env=env, stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            try:
                urllib.request.urlopen(self.base + "/api/me", timeout=2)
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("server not ready:\n" + self.log())

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return "\n".join(line for line in handle.read().splitlines() if not line.startswith("{"))[-4000:]

    def data_lines(self) -> List[str]:
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return [line for line in handle.read().splitlines() if line.startswith("  data:")]

    def call(self, method: str, path: str, body: Any = None, token: str = "") -> Tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, None

    def stop(self) -> float:
        assert self.proc is not None
        began = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError("did not stop on Ctrl-C:\n" + self.log())
        return time.monotonic() - began

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)


def _login(server: LocalServer) -> str:
    from chalicelib.config import LOCAL_SECRET_DEFAULTS

    status, body = server.call("POST", "/api/auth/login", {"email": "admin@example.com",
                                                           "password": LOCAL_SECRET_DEFAULTS["LOCAL_ADMIN_PASSWORD"]})
    assert status == 200, server.log()
    return body["token"]


def _inbox(server: LocalServer, token: str) -> Dict[str, List[str]]:
    """Every conversation of the default inbox view and its messages' ids, read over the API."""
    status, page = server.call("GET", "/api/conversations?limit=100", token=token)
    assert status == 200
    seen: Dict[str, List[str]] = {}
    for conversation in page["items"]:
        status, messages = server.call("GET", f"/api/conversations/{conversation['id']}/messages?limit=100",
                                       token=token)
        assert status == 200
        seen[conversation["id"]] = sorted(m["id"] for m in messages["items"])
    return seen


def _total(inbox: Dict[str, List[str]]) -> int:
    return sum(len(ids) for ids in inbox.values())


#: How long the inbox must stay the same to count as settled: the local stack's start also runs
#: the daily schedules (analytics snapshot, staffing sampler) and four stream consumers, so on a
#: loaded 2-core machine the pump can pause for seconds between two messages of one batch.
QUIET_SECONDS = 8


def _settled(server: LocalServer, token: str, at_least: int, seconds: float = 120) -> Dict[str, List[str]]:
    """The inbox once it holds `at_least` messages and has not changed for QUIET_SECONDS (bounded)."""
    deadline = time.monotonic() + seconds
    inbox, since = _inbox(server, token), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        again = _inbox(server, token)
        if again != inbox:
            inbox, since = again, time.monotonic()
        elif _total(inbox) >= at_least and time.monotonic() - since >= QUIET_SECONDS:
            break
    return inbox


def _deliver(server: LocalServer, now_ms: int) -> None:
    from chalicelib.local.demo import send_all

    statuses = [status for _, status in send_all(server.base, now_ms=now_ms)]
    assert statuses and all(status == 200 for status in statuses), statuses


@pytest.fixture
def server(tmp_path: Any) -> Any:
    env = {"SOCIALINBOX_STAGE": "local"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # demo deliveries are signed with the dev defaults make run uses
    for name in ("META_APP_SECRET", "X_CONSUMER_SECRET", "TELEGRAM_SECRET_TOKEN", "LINKEDIN_CLIENT_SECRET"):
        saved[name] = os.environ.pop(name, None)
    local = LocalServer(str(tmp_path / "data"), str(tmp_path / "server.log"))
    try:
        yield local
    finally:
        if local.proc is not None and local.proc.poll() is None:
            local.kill()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def test_acknowledged_deliveries_survive_kill_9_restart_and_ctrl_c(server: LocalServer) -> None:
    server.start()
    token = _login(server)
    now_ms = int(time.time() * 1000)
    _deliver(server, now_ms - 120_000)
    first = _settled(server, token, 1)
    per_batch = _total(first)
    assert per_batch >= 10

    # A second batch, then kill -9 right after the last 200: accepted, not processed yet.
    _deliver(server, now_ms - 60_000)
    server.kill()
    server.start()
    status, me = server.call("GET", "/api/me", token=token)
    assert status == 200 and me["email"] == "admin@example.com"  # the old token, the same agent
    after_crash = _settled(server, token, 2 * per_batch)
    assert _total(after_crash) == 2 * per_batch, server.log()
    for conversation, ids in first.items():
        assert set(ids) <= set(after_crash[conversation])
    restored = server.data_lines()[-1]  # e.g. "data: /tmp/... (40 items, 14 queued messages restored in 0.01 s)"
    assert server.data_dir in restored and " 0 queued messages" not in restored, restored

    # Ctrl-C within 5 s; everything is there on the next start, nothing more, nothing less.
    assert server.stop() < 5.0
    server.start()
    assert _inbox(server, token) == after_crash
    assert server.stop() < 5.0


def test_a_second_server_on_the_same_data_directory_is_refused(tmp_path: Any) -> None:
    journal = persist.Journal(str(tmp_path))
    try:
        with pytest.raises(OSError):
            persist.Journal(str(tmp_path))
    finally:
        journal.close()
    persist.Journal(str(tmp_path)).close()  # free again once closed


def test_journal_round_trip_keeps_types_and_deletes(tmp_path: Any) -> None:
    journal = persist.Journal(str(tmp_path), synchronous="NORMAL")
    image = {"pk": {"S": "c1"}, "sk": {"N": "3"}, "data": {"B": b"\x00\xffzlib"}, "tags": {"SS": ["a", "b"]},
             "meta": {"M": {"n": {"N": "1"}, "l": {"L": [{"S": "x"}, {"BOOL": True}, {"NULL": True}]}}}}
    journal.put_images([("t", '{"S":"c1"}', '{"N":"3"}', image), ("t", '{"S":"c2"}', "", {"pk": {"S": "c2"}})])
    journal.put_images([("t", '{"S":"c2"}', "", None)])
    journal.sent([("q", "m1", "body-1", {}), ("q", "m2", "body-2", {"DelaySeconds": 0}), ("other", "m3", "b", {})])
    journal.deleted(["m1"])
    journal.purged("other")
    journal.close()
    again = persist.Journal(str(tmp_path))
    try:
        assert list(again.items()) == [("t", image)]
        assert [(m, q, b) for m, q, b, _ in again.queued()] == [("m2", "q", "body-2")]
    finally:
        again.close()
