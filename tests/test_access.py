"""Team access: an agent sees the conversations of their teams (and those assigned to them);
another team's conversation answers 404 exactly like an unknown id on every conversation route;
list views of another team are 403; supervisors see their teams; admins everything."""
from __future__ import annotations

import json
import time
from typing import Any, Dict

import pytest

from tests.helpers import PAGE, call_api as _call, messenger, page_delivery

BILLING_PAGE = "5550001111"


def _now() -> int:
    return int(time.time() * 1000)


def _token(email: str, name: str, role: str, teams) -> Dict[str, str]:
    from chalicelib.api import auth, people

    agent, _ = people.create(email, name, role, teams, None, "a long enough password")
    return {"token": auth.issue_token(agent), "id": agent.agent_id}


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


# --- who may be given a conversation (issue 16 items 4 and 5) ----------------------------------------


def _patch(world, conversation_id: str, token: str, assignee: Any):
    return _call(world["inbox"], "PATCH", f"/api/conversations/{conversation_id}", token, {"assignee": assignee})


def _bulk(world, ids, token: str, assignee: Any):
    return _call(world["inbox"], "POST", "/api/conversations/bulk", token, {"ids": ids, "assignee": assignee})


def _assignee(world, conversation_id: str):
    return world["inbox"].get(f"/api/conversations/{conversation_id}")["assignee"]


def test_an_agent_cannot_hand_a_conversation_to_another_teams_agent(world):
    ana, bob = world["ana"], world["bob"]
    refused = _patch(world, world["default"], ana["token"], bob["id"])
    assert refused.status_code == 403, refused.body
    assert "team default" in json.loads(refused.body)["Message"]  # the refusal says why
    bulk = _bulk(world, [world["default"]], ana["token"], bob["id"])
    assert bulk.status_code == 200
    [result] = json.loads(bulk.body)["results"]
    assert result["status"] == 403 and result["applied"] == [] and "admins" in result["error"]["Message"]
    assert _assignee(world, world["default"]) is None
    # Bob's team never got the conversation, its thread or its contact.
    assert _call(world["inbox"], "GET", f"/api/conversations/{world['default']}", bob["token"]).status_code == 404


def _admin_changes_agent(world, agent_id: str, changes: Dict[str, Any]) -> None:
    response = _call(world["inbox"], "PATCH", f"/api/agents/{agent_id}", world["admin"], changes)
    assert response.status_code == 200, response.body


def test_within_the_team_agents_hand_over_and_admins_hand_across_teams(world):
    from chalicelib.api import people

    ana, bob = world["ana"], world["bob"]
    colleague, _ = people.create("cai@example.com", "Cai", "agent", ["default"], None, "a long enough password")
    assert _patch(world, world["default"], ana["token"], "me").status_code == 200
    assert _patch(world, world["default"], ana["token"], colleague.agent_id).status_code == 200
    assert _assignee(world, world["default"]) == colleague.agent_id
    assert _patch(world, world["default"], world["admin"], bob["id"]).status_code == 200
    assert _assignee(world, world["default"]) == bob["id"]
    # Bob, given it across teams, may hand it back to its own team (no new team gains access).
    assert _patch(world, world["default"], bob["token"], ana["id"]).status_code == 200
    assert _patch(world, world["default"], ana["token"], None).status_code == 200  # unassigning


def test_a_supervisor_hands_over_within_their_own_teams_only(world):
    from chalicelib.api import people

    sue, ana = world["sue"], world["ana"]
    _admin_changes_agent(world, sue["id"], {"teams": ["billing", "vip"]})
    vip, _ = people.create("vic@example.com", "Vic", "agent", ["vip"], None, "a long enough password")
    assert _patch(world, world["billing"], sue["token"], vip.agent_id).status_code == 200  # both teams hers
    refused = _patch(world, world["billing"], sue["token"], ana["id"])  # default: not hers
    assert refused.status_code == 403 and "only admins" in json.loads(refused.body)["Message"]
    assert _assignee(world, world["billing"]) == vip.agent_id


@pytest.mark.parametrize("assignee, status", [
    ("a_0123456789abcdef", 422),  # nobody has this id
    ("deactivated", 422),
    ("a_\x00nul", 400),
    ("a_\ud800lone", 400),
    ("x" * 65, 400),
    (7, 400),
])
def test_assignees_are_validated_and_nothing_invalid_is_ever_stored(world, assignee, status):
    from chalicelib.api import people

    if assignee == "deactivated":
        gone, _ = people.create("gus@example.com", "Gus", "agent", ["default"], None, "a long enough password")
        _admin_changes_agent(world, gone.agent_id, {"active": False})
        assignee = gone.agent_id
    for token in (world["admin"], world["ana"]["token"]):
        response = _patch(world, world["default"], token, assignee)
        assert response.status_code == status, response.body
        bulk = _bulk(world, [world["default"]], token, assignee)
        assert bulk.status_code == status, bulk.body
        assert json.loads(bulk.body)["Code"] in ("BadRequestError", "UnprocessableEntityError")
    # Still unassigned: it never left the team's Unassigned view.
    assert _assignee(world, world["default"]) is None
    unassigned = world["inbox"].conversations(team="default", assignee="none")
    assert [c["id"] for c in unassigned] == [world["default"]]


def test_the_assign_rule_is_one_pure_function_a_picker_can_reuse():
    from chalicelib.api.access import Person, assign_refusal, assignable

    ana = Person("a_ana", "agent", frozenset({"default"}))
    sue = Person("a_sue", "supervisor", frozenset({"billing", "vip"}))
    root = Person("a_root", "admin", frozenset())
    cai = Person("a_cai", "agent", frozenset({"default"}))
    bob = Person("a_bob", "agent", frozenset({"billing"}))
    vic = Person("a_vic", "agent", frozenset({"vip"}))
    gus = Person("a_gus", "agent", frozenset({"default"}), active=False)
    everyone = [ana, cai, bob, vic, gus]
    assert [p.agent_id for p in assignable(ana, "default", everyone)] == ["a_ana", "a_cai"]
    assert [p.agent_id for p in assignable(sue, "billing", everyone)] == ["a_bob", "a_vic"]
    assert [p.agent_id for p in assignable(sue, "default", everyone)] == ["a_ana", "a_cai"]
    assert [p.agent_id for p in assignable(root, "default", everyone)] == ["a_ana", "a_cai", "a_bob", "a_vic"]
    assert assign_refusal(ana, "default", None).status == 422
    assert assign_refusal(root, "default", gus).status == 422
    assert assign_refusal(ana, "default", bob).status == 403
    assert assign_refusal(ana, "default", bob, current="a_bob") is None  # keeping the assignee changes nothing


# --- GET /api/teams/{team}/agents is scoped like the admin lists (issue 16 item 6) ------------------


def test_team_agents_are_visible_to_the_teams_own_members_supervisors_and_admins_only(world):
    inbox, ana, bob, sue = world["inbox"], world["ana"], world["bob"], world["sue"]

    def agents(team: str, token: str):
        return _call(inbox, "GET", f"/api/teams/{team}/agents", token)

    for token in (bob["token"], sue["token"]):
        answer = agents("billing", token)
        assert answer.status_code == 200
        assert {a["agent_id"] for a in json.loads(answer.body)["agents"]} == {bob["id"], sue["id"]}
    for token, team in ((ana["token"], "billing"), (bob["token"], "default"), (sue["token"], "default"),
                        (bob["token"], "no-such-team")):
        refused = agents(team, token)
        assert refused.status_code == 403, (team, refused.body)
        assert set(json.loads(refused.body)) == {"Code", "Message"}  # no member ids, presence or load
    for team in ("default", "billing", "no-such-team"):
        assert agents(team, world["admin"]).status_code == 200
