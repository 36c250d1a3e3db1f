"""Handle time measured from the workspace's viewing heartbeat: the focus an agent's page reports,
bounded by what the server saw, summed per conversation cycle into per-group daily figures."""
from __future__ import annotations

import json

import pytest

from tests.helpers import PAGE, messenger, page_delivery

T0 = 1_900_000_000.0


@pytest.fixture
def thread(inbox):
    from chalicelib.runtime import runtime

    clock = [T0]
    runtime.use_clock(lambda: clock[0])
    inbox.add_account("messenger", PAGE)
    assert inbox.post_meta(page_delivery(messenger("mf1", "psid_f1", int(T0 * 1000) - 5000))).status_code == 200
    inbox.process()
    [conversation] = inbox.conversations()
    yield inbox, conversation["id"], clock, inbox.login_admin()
    runtime.use_clock(None)


def _put(inbox, token, conversation_id, body=None, raw=None):
    response = inbox.client.http.put(f"/api/conversations/{conversation_id}/viewing", headers={
        "Authorization": "Bearer " + token, "Content-Type": "application/json"},
        body=raw if raw is not None else json.dumps(body))
    return response.status_code


def _handle_time(inbox, token, **query):
    path = "/api/staffing/handle-time?" + "&".join(f"{k}={v}" for k, v in query.items())
    response = inbox.client.http.get(path, headers={"Authorization": "Bearer " + token})
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def test_focus_is_bounded_by_what_the_server_saw(thread):
    inbox, conversation_id, clock, admin = thread
    assert _put(inbox, admin, conversation_id, {"typing": False, "focus_ms": 15000}) == 200  # first: nothing
    assert _handle_time(inbox, admin, group="live")["cycles"] == 0
    clock[0] += 12
    assert _put(inbox, admin, conversation_id, {"typing": False, "focus_ms": 12000}) == 200
    clock[0] += 5
    assert _put(inbox, admin, conversation_id, {"typing": True, "focus_ms": 60000}) == 200  # 5 s seen
    clock[0] += 50
    assert _put(inbox, admin, conversation_id, {"typing": False, "focus_ms": 50000}) == 200  # capped at 20 s
    measured = _handle_time(inbox, admin, group="live")
    # the working span: 12 + 5 + 50 s against 37 s of focus (the page was open, the agent elsewhere)
    assert measured == {"group": "live", "team": None, "days": 28, "cycles": 1, "mean_seconds": 37.0,
                        "stdev_seconds": 0.0, "concurrency": 1.81}
    assert _handle_time(inbox, admin, group="live", team="default")["cycles"] == 1
    assert _handle_time(inbox, admin, group="public")["cycles"] == 0


def test_each_reopen_cycle_is_one_sample(thread):
    inbox, conversation_id, clock, admin = thread
    _put(inbox, admin, conversation_id, {"typing": False})
    clock[0] += 10
    _put(inbox, admin, conversation_id, {"typing": False, "focus_ms": 10000})
    inbox.set_status(conversation_id, "resolved")
    clock[0] += 3600
    assert inbox.post_meta(page_delivery(messenger("mf2", "psid_f1", int(clock[0] * 1000)))).status_code == 200
    inbox.process()
    clock[0] += 1
    _put(inbox, admin, conversation_id, {"typing": False})
    for _ in range(3):
        clock[0] += 10
        _put(inbox, admin, conversation_id, {"typing": False, "focus_ms": 10000})
    measured = _handle_time(inbox, admin, group="live")
    assert measured["cycles"] == 2 and measured["mean_seconds"] == 20.0 and measured["stdev_seconds"] == 10.0


@pytest.mark.parametrize("raw", [b'{"focus_ms": -1}', b'{"focus_ms": true}', b'{"focus_ms": "10"}',
                                 b'{"focus_ms": 1.5}', b'{"focus_ms": 3600001}', b'{"focus_ms": 1e400}',
                                 b'{"focus": 10}', b'{"typing": "\\ud800"}'])
def test_malformed_focus_is_refused(thread, raw):
    inbox, conversation_id, _, admin = thread
    assert _put(inbox, admin, conversation_id, raw=raw) == 400
    assert _handle_time(inbox, admin, group="live")["cycles"] == 0


@pytest.mark.parametrize("query, status", [("group=nope", 400), ("days=0", 400), ("days=91", 400),
                                           ("days=x", 400), ("team=%00", 400), ("group=live", 200)])
def test_handle_time_query_is_validated(thread, query, status):
    inbox, _, _, admin = thread
    response = inbox.client.http.get("/api/staffing/handle-time?" + query, headers={"Authorization": "Bearer " + admin})
    assert response.status_code == status, response.body


def test_concurrency_is_the_working_span_over_the_focus(thread):
    """An agent switching between two chats every 10 s, 5 s on each: two conversations at once."""
    inbox, first, clock, admin = thread
    assert inbox.post_meta(page_delivery(messenger("mf9", "psid_f9", int(T0 * 1000) - 4000))).status_code == 200
    inbox.process()
    [second] = [c["id"] for c in inbox.conversations() if c["id"] != first]
    for conversation_id in (first, second):
        _put(inbox, admin, conversation_id, {"typing": False})
    for _ in range(6):
        clock[0] += 10
        for conversation_id in (first, second):
            _put(inbox, admin, conversation_id, {"typing": False, "focus_ms": 5000})
    measured = _handle_time(inbox, admin, group="live")
    assert measured["cycles"] == 2 and measured["mean_seconds"] == 30.0
    assert measured["concurrency"] == 2.0
