"""Bulk changes (POST /api/conversations/bulk) and canned replies (/api/canned-replies): per-id
answers, hostile input, sharing and placeholders."""
from __future__ import annotations

import json

import pytest

from tests.helpers import PAGE, days_ahead, messenger, page_delivery


@pytest.fixture
def threads(inbox):
    """Three Messenger conversations; returns (inbox, [conversation ids])."""
    inbox.add_account("messenger", PAGE)
    payload = page_delivery(*[messenger(f"mb{i}", f"psid_b{i}", 1700000000000 + i * 1000, text=f"hello {i}")
                              for i in range(3)])
    assert inbox.post_meta(payload).status_code == 200
    inbox.process()
    ids = [c["id"] for c in inbox.conversations(limit="10")]
    assert len(ids) == 3
    return inbox, ids


def _call(inbox, method, path, body=None, token=None, raw=None):
    headers = {"Authorization": "Bearer " + (token or inbox.login_admin()), "Content-Type": "application/json"}
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    response = getattr(inbox.client.http, method)(path, headers=headers, **({"body": data} if data is not None else {}))
    try:
        parsed = json.loads(response.body) if response.body else None
    except ValueError:
        parsed = response.body
    return response.status_code, parsed


def test_bulk_changes_status_assignee_priority_and_tags_per_id(threads):
    inbox, ids = threads
    status, body = _call(inbox, "post", "/api/conversations/bulk", {
        "ids": ids + ["c_missing"], "status": "pending", "assignee": "me", "priority": "high",
        "tags_add": ["VIP", "billing"]})
    assert status == 200, body
    by_id = {r["id"]: r for r in body["results"]}
    assert [r["id"] for r in body["results"]] == ids + ["c_missing"]
    assert body["ok"] == 3 and body["failed"] == 1
    assert by_id["c_missing"]["status"] == 404 and by_id["c_missing"]["error"]["Code"] == "NotFoundError"
    for conversation_id in ids:
        shown = by_id[conversation_id]["conversation"]
        assert shown["status"] == "pending" and shown["priority"] == "high"
        assert shown["tags"] == ["vip", "billing"] and shown["assignee"]
    # tags_remove keeps the others; each change is logged
    status, body = _call(inbox, "post", "/api/conversations/bulk", {"ids": ids[:1], "tags_remove": ["vip"],
                                                                   "tags_add": ["later"]})
    assert body["results"][0]["conversation"]["tags"] == ["billing", "later"]
    types = [e["type"] for e in inbox.get(f"/api/conversations/{ids[0]}/events")["items"]]
    assert {"assigned", "status_changed", "priority_changed", "tags_changed"} <= set(types)


def test_bulk_snooze_needs_a_time_and_per_id_rule_errors_are_422(threads):
    inbox, ids = threads
    status, body = _call(inbox, "post", "/api/conversations/bulk", {"ids": ids, "status": "snoozed"})
    assert status == 400 and body["Code"] == "BadRequestError"
    status, body = _call(inbox, "post", "/api/conversations/bulk",
                         {"ids": ids[:2], "status": "snoozed", "snoozed_until": days_ahead(30)[0]})
    assert status == 200 and all(r["status"] == 200 for r in body["results"])
    # more than 20 tags on one conversation is the rule's 422, for that id only
    status, body = _call(inbox, "post", "/api/conversations/bulk",
                         {"ids": ids[:1], "tags_add": [f"t{i}" for i in range(20)]})
    assert body["results"][0]["status"] == 200
    status, body = _call(inbox, "post", "/api/conversations/bulk", {"ids": ids[:2], "tags_add": ["one-more"]})
    assert status == 200
    assert body["results"][0]["status"] == 422 and body["results"][0]["error"]["Code"] == "UnprocessableEntity"
    assert body["results"][1]["status"] == 200


def test_bulk_claim_conflict_is_409_for_that_id(threads):
    from chalicelib.inbox import rules, store

    inbox, ids = threads
    store.assign(ids[0], "a_other", "agent:a_other")
    original = store.assign

    def racing_assign(conversation_id, agent_id, actor, expected=rules.ANY):
        if conversation_id == ids[0]:
            raise rules.Conflict("someone else holds it", {"assignee": "a_other"})
        return original(conversation_id, agent_id, actor, expected)

    store.assign = racing_assign
    try:
        status, body = _call(inbox, "post", "/api/conversations/bulk", {"ids": ids, "assignee": None})
    finally:
        store.assign = original
    assert status == 200
    assert body["results"][0]["status"] == 409
    assert body["results"][0]["error"]["current"] == {"assignee": "a_other", "assignee_name": "an unknown agent"}
    assert [r["status"] for r in body["results"][1:]] == [200, 200]


def test_bulk_one_failing_id_is_never_a_5xx(threads, monkeypatch):
    from chalicelib.inbox import store

    inbox, ids = threads
    original = store.set_priority

    def broken(conversation_id, *args, **kwargs):
        if conversation_id == ids[1]:
            raise RuntimeError("DynamoDB said no")
        return original(conversation_id, *args, **kwargs)

    monkeypatch.setattr(store, "set_priority", broken)
    status, body = _call(inbox, "post", "/api/conversations/bulk", {"ids": ids, "priority": "low"})
    assert status == 200
    assert [r["status"] for r in body["results"]] == [200, 409, 200]


@pytest.mark.parametrize("body", [
    {}, {"ids": []}, {"ids": "c_1", "status": "open"}, {"ids": [1, 2], "status": "open"},
    {"ids": [None], "status": "open"}, {"ids": ["x" * 201], "status": "open"},
    {"ids": [f"c_{i}" for i in range(101)], "status": "open"},
    {"ids": ["c_1"]}, {"ids": ["c_1"], "status": "closed"}, {"ids": ["c_1"], "status": ["open"]},
    {"ids": ["c_1"], "priority": "critical"}, {"ids": ["c_1"], "priority": 3},
    {"ids": ["c_1"], "assignee": 42}, {"ids": ["c_1"], "assignee": "a#b"}, {"ids": ["c_1"], "assignee": ""},
    {"ids": ["c_1"], "tags_add": "vip"}, {"ids": ["c_1"], "tags_add": [1]}, {"ids": ["c_1"], "tags_add": []},
    {"ids": ["c_1"], "tags_add": ["a#b"]}, {"ids": ["c_1"], "tags_add": ["x" * 33]},
    {"ids": ["c_1"], "tags_remove": [f"t{i}" for i in range(21)]},
    {"ids": ["c_1"], "status": "open", "snoozed_until": "2099-01-01T00:00:00Z"},
    {"ids": ["c_1"], "status": "snoozed", "snoozed_until": "tomorrow"},
    {"ids": ["c_1"], "status": "snoozed", "snoozed_until": "2099-01-01T00:00:00"},
    {"ids": ["c_1"], "status": "open", "delete": True},
    {"ids": ["c\x00"], "status": "open"}, {"ids": ["\ud800"], "status": "open"},
])
def test_bulk_hostile_bodies_are_400_and_change_nothing(threads, body):
    inbox, ids = threads
    status, answer = _call(inbox, "post", "/api/conversations/bulk", body)
    assert status == 400, answer
    assert set(answer) == {"Code", "Message"}


@pytest.mark.parametrize("raw", ["", "[]", "null", "{", "\"ids\"", "{\"ids\": [" + "[" * 5000 + "]" * 5000 + "]}",
                                 "{\"ids\": [\"c\"], \"status\": \"open\", \"x\": \"" + "a" * 70000 + "\"}"])
def test_bulk_malformed_json_is_400(threads, raw):
    inbox, _ = threads
    status, answer = _call(inbox, "post", "/api/conversations/bulk", raw=raw)
    assert status == 400 and answer["Code"] == "BadRequestError"


def test_bulk_needs_a_token_and_deduplicates_ids(threads):
    inbox, ids = threads
    response = inbox.client.http.post("/api/conversations/bulk", body=json.dumps({"ids": ids, "status": "open"}),
                                      headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    status, body = _call(inbox, "post", "/api/conversations/bulk",
                         {"ids": [ids[0], ids[0], "c_é😀", ids[0]], "priority": "urgent"})
    assert status == 200 and [r["id"] for r in body["results"]] == [ids[0], "c_é😀"]
    assert [r["status"] for r in body["results"]] == [200, 404]
    # a hundred ids, all unknown: a hundred 404s, one 200 answer
    status, body = _call(inbox, "post", "/api/conversations/bulk",
                         {"ids": [f"c_unknown_{i}" for i in range(100)], "status": "resolved"})
    assert status == 200 and body["failed"] == 100


# --- canned replies ---------------------------------------------------------------------------


def _agent_token(inbox, email, name, role="agent", teams=("default",)):
    from chalicelib.api.auth import create_agent
    from chalicelib.models import AgentRouting

    agent = create_agent(email, "agent-password-123", name, role=role)
    AgentRouting(agent.agent_id, teams=list(teams)).save()
    response = inbox.client.http.post("/api/auth/login", body=json.dumps(
        {"email": email, "password": "agent-password-123"}), headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.body
    return json.loads(response.body)["token"]


def _new(inbox, token=None, **fields):
    body = {"shortcut": "greet", "title": "Greeting", "text": "Hi {{contact.name}}, {{agent.name}} here."}
    body.update(fields)
    return _call(inbox, "post", "/api/canned-replies", body, token=token)


def test_canned_replies_shared_and_personal(threads):
    inbox, ids = threads
    agent = _agent_token(inbox, "agent.canned@example.com", "Zoë Agent")
    other = _agent_token(inbox, "other.canned@example.com", "Other")
    status, shared = _new(inbox, shared=True)
    assert status == 201 and shared["scope"] == "shared" and shared["shortcut"] == "greet"
    # an agent may not write shared replies, but may have their own, even with a shared shortcut
    assert _new(inbox, token=agent, shared=True, shortcut="x")[0] == 403
    status, mine = _new(inbox, token=agent, shortcut="/Greet", text="Bye {{contact.handle}}")
    assert status == 201 and mine["scope"] == "personal" and mine["shortcut"] == "Greet"
    assert _new(inbox, token=agent, shortcut="GREET")[0] == 409  # same owner, same folded shortcut
    status, listed = _call(inbox, "get", "/api/canned-replies", token=agent)
    assert [(i["scope"], i["shortcut"]) for i in listed["items"]] == [("shared", "greet"), ("personal", "Greet")]
    status, listed = _call(inbox, "get", "/api/canned-replies", token=other)
    assert [i["id"] for i in listed["items"]] == [shared["id"]]
    # another agent's personal reply does not exist for them
    for method in ("get", "delete"):
        assert _call(inbox, method, f"/api/canned-replies/{mine['id']}", token=other)[0] == 404
    assert _call(inbox, "put", f"/api/canned-replies/{mine['id']}",
                 {"shortcut": "a", "title": "b", "text": "c"}, token=other)[0] == 404
    # an agent cannot change or delete the shared one; an admin can
    assert _call(inbox, "delete", f"/api/canned-replies/{shared['id']}", token=agent)[0] == 403
    status, changed = _call(inbox, "put", f"/api/canned-replies/{shared['id']}",
                            {"shortcut": "hello", "title": "Hello", "text": "Hello!"})
    assert status == 200 and changed["shortcut"] == "hello" and changed["text"] == "Hello!"
    assert _new(inbox, shortcut="greet", shared=True)[0] == 201  # the old shortcut is free again
    assert _new(inbox, shortcut="hello", shared=True)[0] == 409
    assert _call(inbox, "delete", f"/api/canned-replies/{mine['id']}", token=agent)[0] == 204
    assert _call(inbox, "get", f"/api/canned-replies/{mine['id']}", token=agent)[0] == 404
    assert _new(inbox, token=agent, shortcut="greet")[0] == 201  # deleting freed the shortcut


def test_render_fills_placeholders_as_plain_text(threads):
    from chalicelib.inbox import store
    from chalicelib.models import Conversation

    inbox, ids = threads
    agent = _agent_token(inbox, "render@example.com", "Zoë <b>Agent</b>")
    Conversation(ids[0]).update(actions=[Conversation.contact_name.set("{{agent.name}} & <script>"),
                                         Conversation.contact_handle.set("@ana_😀")])
    assert store.get(ids[0])["contact_name"].startswith("{{agent")
    status, reply = _new(inbox, token=agent, text="Hi {{ contact.name }} ({{contact.handle}}), I'm {{agent.name}}. "
                                                   "{{contact.email}} {{unknown}} {{ contact.name")
    status, rendered = _call(inbox, "get", f"/api/canned-replies/{reply['id']}/render?conversation_id={ids[0]}",
                             token=agent)
    assert status == 200, rendered
    assert rendered["text"] == ("Hi {{agent.name}} & <script> (@ana_😀), I'm Zoë <b>Agent</b>. "
                                "{{contact.email}} {{unknown}} {{ contact.name")
    # no name: the fallback the inbox shows; no handle: empty
    status, rendered = _call(inbox, "get", f"/api/canned-replies/{reply['id']}/render?conversation_id={ids[1]}",
                             token=agent)
    assert rendered["text"].startswith("Hi Messenger user …") and "()" in rendered["text"]
    for query in ("", "?conversation_id=", "?conversation_id=c_nope", "?conversation_id=" + "x" * 300):
        status, answer = _call(inbox, "get", f"/api/canned-replies/{reply['id']}/render{query}", token=agent)
        assert status in (400, 404) and set(answer) == {"Code", "Message"}
    assert _call(inbox, "get", f"/api/canned-replies/r_00000000000000000000/render?conversation_id={ids[0]}",
                 token=agent)[0] == 404
    # another team's conversation is not there for this agent (404, never its contact's name)
    outsider = _agent_token(inbox, "outsider@example.com", "Out", teams=("sales",))
    status, shared = _new(inbox, shortcut="everyone", shared=True)
    status, answer = _call(inbox, "get", f"/api/canned-replies/{shared['id']}/render?conversation_id={ids[0]}",
                           token=outsider)
    assert status == 404 and answer["Message"] == "no such conversation"


@pytest.mark.parametrize("body", [
    {}, {"shortcut": "a", "title": "b"}, {"shortcut": 1, "title": "b", "text": "c"},
    {"shortcut": "has space", "title": "b", "text": "c"}, {"shortcut": "x" * 33, "title": "b", "text": "c"},
    {"shortcut": "", "title": "b", "text": "c"}, {"shortcut": "a", "title": " ", "text": "c"},
    {"shortcut": "a", "title": "b", "text": "x" * 5001}, {"shortcut": "a", "title": "b\x00", "text": "c"},
    {"shortcut": "a", "title": "b", "text": "\ud83d"}, {"shortcut": "a", "title": "b", "text": ["c"]},
    {"shortcut": "a", "title": "b", "text": "c", "shared": "yes"}, {"shortcut": "a", "title": "b", "text": "c", "x": 1},
    {"shortcut": "a#b", "title": "b", "text": "c"}, {"shortcut": "../a", "title": "b", "text": "c"},
])
def test_canned_hostile_bodies_are_400(threads, body):
    inbox, _ = threads
    status, answer = _call(inbox, "post", "/api/canned-replies", body)
    assert status == 400, answer
    assert set(answer) == {"Code", "Message"}


def test_canned_multiline_unicode_and_odd_ids(threads):
    inbox, _ = threads
    status, item = _new(inbox, shortcut="café_ñ", title="Ünïcode ✓", text="line 1\nline 2\t😀 {{agent.name}}")
    assert status == 201 and item["shortcut"] == "café_ñ"
    assert _new(inbox, shortcut="CAFÉ_Ñ")[0] == 409
    for reply_id in ("r_nope", "x" * 500, "..%2F..", "r_" + "0" * 20):
        assert _call(inbox, "get", f"/api/canned-replies/{reply_id}")[0] == 404
    assert _call(inbox, "put", "/api/canned-replies/r_nope", raw="{")[0] == 400
