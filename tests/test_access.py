"""Team access: an agent sees the conversations of their teams (and those assigned to them);
another team's conversation answers 404 exactly like an unknown id on every conversation route;
list views of another team are 403; supervisors see their teams; admins everything."""
from __future__ import annotations

import json
import time
from typing import Any, Dict

import pytest

from tests.helpers import PAGE, messenger, page_delivery

BILLING_PAGE = "5550001111"
JSON = {"Content-Type": "application/json"}


def _now() -> int:
    return int(time.time() * 1000)


def _token(email: str, name: str, role: str, teams) -> Dict[str, str]:
    from chalicelib.api import auth, people

    agent, _ = people.create(email, name, role, teams, None, "a long enough password")
    return {"token": auth.issue_token(agent), "id": agent.agent_id}


def _call(inbox, method: str, path: str, token: str, body: Any = None):
    headers = {"Authorization": "Bearer " + token}
    if body is not None:
        headers.update(JSON)
    return inbox.client.http.request(method, path, headers=headers,
                                     body=json.dumps(body).encode() if body is not None else b"")


@pytest.fixture
def world(inbox):
    """A default-team conversation (PAGE) and a billing-team one (BILLING_PAGE); Ana (default),
    Bob (billing), Sue (billing supervisor), the admin."""
    from chalicelib.accounts import register_account

    inbox.add_account("messenger", PAGE, "Support page")
    register_account("messenger", BILLING_PAGE, "Billing page", team="billing")
    inbox.post_meta(page_delivery(messenger("m-default", "psid-a", _now() - 60_000, "help"), page=PAGE))
    inbox.post_meta(page_delivery(messenger("m-billing", "psid-b", _now() - 60_000, "invoice?"), page=BILLING_PAGE))
    inbox.process()
    admin = inbox.login_admin()
    default = inbox.conversations(team="default")
    billing = inbox.conversations(team="billing")
    assert len(default) == 1 and len(billing) == 1
    return {"inbox": inbox, "admin": admin, "default": default[0]["id"], "billing": billing[0]["id"],
            "ana": _token("ana@example.com", "Ana", "agent", ["default"]),
            "bob": _token("bob@example.com", "Bob", "agent", ["billing"]),
            "sue": _token("sue@example.com", "Sue", "supervisor", ["billing"])}


def _routes(conversation_id: str):
    return [
        ("GET", f"/api/conversations/{conversation_id}", None),
        ("GET", f"/api/conversations/{conversation_id}/messages", None),
        ("GET", f"/api/conversations/{conversation_id}/events", None),
        ("PATCH", f"/api/conversations/{conversation_id}", {"status": "pending"}),
        ("POST", f"/api/conversations/{conversation_id}/read", {}),
        ("POST", f"/api/conversations/{conversation_id}/messages", {"text": "hi", "kind": "note", "client_id": "n1"}),
    ]


@pytest.mark.parametrize("index", range(6))
def test_another_teams_conversation_is_404_like_an_unknown_id_on_every_route(world, index):
    inbox, bob = world["inbox"], world["bob"]["token"]
    method, path, body = _routes(world["default"])[index]
    refused = _call(inbox, method, path, bob, body)
    unknown_method, unknown_path, unknown_body = _routes("c_does_not_exist")[index]
    unknown = _call(inbox, unknown_method, unknown_path, bob, unknown_body)
    assert refused.status_code == unknown.status_code == 404, refused.body
    assert json.loads(refused.body) == json.loads(unknown.body)
    assert b"help" not in refused.body and b"psid-a" not in refused.body
    # nothing changed: still open, unread, no note
    state = inbox.get(f"/api/conversations/{world['default']}")
    assert state["status"] == "open" and state["unread_count"] == 1
    assert [m["direction"] for m in inbox.messages(world["default"])] == ["in"]


def test_hostile_bodies_on_another_teams_conversation_still_answer_404(world):
    inbox, bob = world["inbox"], world["bob"]["token"]
    for body in (["not", "an", "object"], {"status": 5}, {"x" * 10_000: 1}):
        for method, path in (("PATCH", f"/api/conversations/{world['default']}"),
                             ("POST", f"/api/conversations/{world['default']}/messages")):
            assert _call(inbox, method, path, bob, body).status_code == 404
    assert _call(inbox, "GET", "/api/conversations/" + "c" * 5000, bob).status_code == 404


def test_own_teams_conversation_works_on_every_route(world):
    inbox, bob = world["inbox"], world["bob"]["token"]
    expected = [200, 200, 200, 200, 200, 202]
    for (method, path, body), status in zip(_routes(world["billing"]), expected):
        response = _call(inbox, method, path, bob, body)
        assert response.status_code == status, (method, path, response.body)


def test_admin_sees_every_team(world):
    inbox, admin = world["inbox"], world["admin"]
    for conversation_id in (world["default"], world["billing"]):
        assert _call(inbox, "GET", f"/api/conversations/{conversation_id}", admin).status_code == 200
    for team in ("default", "billing", "nobody-has-this-team"):
        assert _call(inbox, "GET", f"/api/conversations?team={team}", admin).status_code == 200


def test_supervisor_sees_their_teams_only(world):
    inbox, sue = world["inbox"], world["sue"]["token"]
    assert _call(inbox, "GET", f"/api/conversations/{world['billing']}", sue).status_code == 200
    assert _call(inbox, "GET", f"/api/conversations/{world['default']}", sue).status_code == 404
    listed = _call(inbox, "GET", "/api/conversations", sue)
    assert listed.status_code == 200 and [c["id"] for c in json.loads(listed.body)["items"]] == [world["billing"]]
    assert _call(inbox, "GET", "/api/conversations?team=default", sue).status_code == 403


def test_list_views_of_another_team_are_403_whether_or_not_the_team_exists(world):
    inbox, bob, ana = world["inbox"], world["bob"]["token"], world["ana"]["token"]
    for team in ("default", "no-such-team"):
        refused = _call(inbox, "GET", f"/api/conversations?team={team}", bob)
        assert refused.status_code == 403
        assert json.loads(refused.body)["Message"] == "you can only list the conversations of your teams"
    mine = json.loads(_call(inbox, "GET", "/api/conversations?team=billing", bob).body)["items"]
    assert [c["id"] for c in mine] == [world["billing"]]
    # without team=: the default team for its members, else the agent's own team
    assert [c["id"] for c in json.loads(_call(inbox, "GET", "/api/conversations", ana).body)["items"]] == \
        [world["default"]]
    assert [c["id"] for c in json.loads(_call(inbox, "GET", "/api/conversations", bob).body)["items"]] == \
        [world["billing"]]
    unassigned = _call(inbox, "GET", "/api/conversations?team=default&assignee=none", bob)
    assert unassigned.status_code == 403


def test_agents_list_only_their_own_assignments_supervisors_others_within_their_teams(world):
    inbox, admin = world["inbox"], world["admin"]
    bob, sue, ana = world["bob"], world["sue"], world["ana"]
    assert _call(inbox, "PATCH", f"/api/conversations/{world['billing']}", admin,
                 {"assignee": bob["id"]}).status_code == 200
    assert _call(inbox, "GET", f"/api/conversations?assignee={bob['id']}", ana["token"]).status_code == 403
    mine = _call(inbox, "GET", "/api/conversations?assignee=me&team=billing", bob["token"])
    assert [c["id"] for c in json.loads(mine.body)["items"]] == [world["billing"]]
    supervised = _call(inbox, "GET", f"/api/conversations?assignee={bob['id']}&team=billing", sue["token"])
    assert supervised.status_code == 200
    assert [c["id"] for c in json.loads(supervised.body)["items"]] == [world["billing"]]


def test_a_conversation_assigned_across_teams_is_visible_to_its_assignee(world):
    inbox, admin, bob = world["inbox"], world["admin"], world["bob"]
    path = f"/api/conversations/{world['default']}"
    assert _call(inbox, "GET", path, bob["token"]).status_code == 404
    assert _call(inbox, "PATCH", path, admin, {"assignee": bob["id"]}).status_code == 200
    assert _call(inbox, "GET", path, bob["token"]).status_code == 200
    assert _call(inbox, "GET", path + "/messages", bob["token"]).status_code == 200
    # and listed where the assignee looks for their work
    mine = json.loads(_call(inbox, "GET", "/api/conversations?assignee=me&team=billing", bob["token"]).body)
    assert [c["id"] for c in mine["items"]] == [world["default"]]


def test_changing_teams_applies_at_once_in_this_container(world):
    inbox, admin, bob = world["inbox"], world["admin"], world["bob"]
    path = f"/api/conversations/{world['default']}"
    assert _call(inbox, "GET", path, bob["token"]).status_code == 404  # cached: billing only
    changed = _call(inbox, "PATCH", f"/api/agents/{bob['id']}", admin, {"teams": ["billing", "default"]})
    assert changed.status_code == 200 and json.loads(changed.body)["teams"] == ["billing", "default"]
    assert _call(inbox, "GET", path, bob["token"]).status_code == 200
    _call(inbox, "PATCH", f"/api/agents/{bob['id']}", admin, {"teams": ["billing"]})
    assert _call(inbox, "GET", path, bob["token"]).status_code == 404


def test_team_list_is_cached_briefly_and_read_again_after_the_ttl(world, monkeypatch):
    from chalicelib.api import access
    from chalicelib.routing import directory

    calls = []
    original = directory.profile

    def counting(agent_id):
        calls.append(agent_id)
        return original(agent_id)

    monkeypatch.setattr(directory, "profile", counting)
    inbox, bob = world["inbox"], world["bob"]
    for _ in range(3):
        _call(inbox, "GET", f"/api/conversations/{world['billing']}", bob["token"])
    assert calls.count(bob["id"]) == 1
    clock = [time.monotonic() + access.TEAMS_CACHE_SECONDS + 1]
    monkeypatch.setattr(access.time, "monotonic", lambda: clock[0])
    _call(inbox, "GET", f"/api/conversations/{world['billing']}", bob["token"])
    assert calls.count(bob["id"]) == 2


def test_an_agent_without_a_team_is_told_so_and_sees_no_conversation(world):
    inbox = world["inbox"]
    loner = _token("lone@example.com", "Lone", "agent", [])
    listed = _call(inbox, "GET", "/api/conversations", loner["token"])
    assert listed.status_code == 403 and "not in any team" in json.loads(listed.body)["Message"]
    for conversation_id in (world["default"], world["billing"]):
        assert _call(inbox, "GET", f"/api/conversations/{conversation_id}", loner["token"]).status_code == 404
