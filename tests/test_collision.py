"""Collision: PUT /api/conversations/{id}/viewing heartbeats and GET .../viewers (last ~20 s)."""
from __future__ import annotations

import json

import pytest

from tests.helpers import PAGE, messenger, page_delivery


@pytest.fixture
def thread(inbox):
    inbox.add_account("messenger", PAGE)
    assert inbox.post_meta(page_delivery(messenger("mc1", "psid_c1", 1700000000000))).status_code == 200
    inbox.process()
    [conversation] = inbox.conversations()
    return inbox, conversation["id"]


def _agent(inbox, email, teams=("default",)):
    from chalicelib.api.auth import create_agent
    from chalicelib.models import AgentRouting

    agent = create_agent(email, "agent-password-123", email.split("@")[0].title())
    AgentRouting(agent.agent_id, teams=list(teams)).save()
    response = inbox.client.http.post("/api/auth/login", body=json.dumps(
        {"email": email, "password": "agent-password-123"}), headers={"Content-Type": "application/json"})
    return agent.agent_id, json.loads(response.body)["token"]


def _call(inbox, method, path, token, body=None, raw=None):
    kwargs = {"headers": {"Authorization": "Bearer " + token, "Content-Type": "application/json"}}
    if body is not None or raw is not None:
        kwargs["body"] = raw if raw is not None else json.dumps(body)
    response = getattr(inbox.client.http, method)(path, **kwargs)
    return response.status_code, json.loads(response.body) if response.body else None


def test_viewers_and_typing_expire_after_the_window(thread):
    from chalicelib.runtime import runtime

    inbox, conversation_id = thread
    ana_id, ana = _agent(inbox, "ana@example.com")
    bob_id, bob = _agent(inbox, "bob@example.com")
    clock = [1_900_000_000.0]
    runtime.use_clock(lambda: clock[0])
    assert _call(inbox, "put", f"/api/conversations/{conversation_id}/viewing", ana, {"typing": False})[0] == 200
    assert _call(inbox, "put", f"/api/conversations/{conversation_id}/viewing", bob, {"typing": True})[0] == 200
    status, seen = _call(inbox, "get", f"/api/conversations/{conversation_id}/viewers", ana)
    assert status == 200
    assert {(v["agent_id"], v["typing"], v["me"]) for v in seen["items"]} == {(ana_id, False, True),
                                                                              (bob_id, True, False)}
    assert seen["typing"] == [bob_id]
    clock[0] += 15
    _call(inbox, "put", f"/api/conversations/{conversation_id}/viewing", ana, {})  # heartbeat, not typing
    clock[0] += 10  # bob's heartbeat is 25 s old now
    status, seen = _call(inbox, "get", f"/api/conversations/{conversation_id}/viewers", bob)
    assert [v["agent_id"] for v in seen["items"]] == [ana_id] and seen["typing"] == []
    from chalicelib.models import ConversationViewer

    item = ConversationViewer.get(conversation_id, ana_id)
    assert item.expires_at > clock[0]  # TTL'd items


def test_unknown_or_foreign_conversations_are_404(thread):
    inbox, conversation_id = thread
    _, outsider = _agent(inbox, "out@example.com", teams=("sales",))
    for path in ("/api/conversations/c_nope/viewers", f"/api/conversations/{conversation_id}/viewers",
                 "/api/conversations/" + "x" * 300 + "/viewers"):
        status, answer = _call(inbox, "get", path, outsider)
        assert status == 404 and set(answer) == {"Code", "Message"}
    status, _ = _call(inbox, "put", f"/api/conversations/{conversation_id}/viewing", outsider, {"typing": True})
    assert status == 404
    status, seen = _call(inbox, "get", f"/api/conversations/{conversation_id}/viewers", inbox.login_admin())
    assert seen["items"] == []  # the refused heartbeat was not stored


@pytest.mark.parametrize("raw", ["[]", "{", "{\"typing\": \"yes\"}", "{\"typing\": 1}", "{\"typing\": null}",
                                 "{\"typing\": true, \"x\": 1}", "{\"typing\": false, \"pad\": \"" + "a" * 2000 + "\"}"])
def test_hostile_heartbeats_are_400(thread, raw):
    inbox, conversation_id = thread
    status, answer = _call(inbox, "put", f"/api/conversations/{conversation_id}/viewing", inbox.login_admin(), raw=raw)
    assert status == 400 and answer["Code"] == "BadRequestError"


def test_heartbeat_needs_a_token(thread):
    inbox, conversation_id = thread
    response = inbox.client.http.put(f"/api/conversations/{conversation_id}/viewing", body="{}")
    assert response.status_code == 401
