"""Routing over HTTP: PUT /api/me/presence, PUT /api/agents/{id}/routing, PUT /api/teams/{team},
GET /api/teams/{team}/agents; hostile input is refused (400/401/403/404), never a 5xx."""
from __future__ import annotations

import json
import time

import pytest

from chalicelib.channels.base import ContactRef, MessageEvent

PAGE = "1234567890"


def _agent(agent_id, role="agent"):
    """An agent item (no password check needed) and a token for it."""
    from chalicelib.api.auth import issue_token
    from chalicelib.models import Agent

    agent = Agent(f"{agent_id}@example.com", agent_id=agent_id, name=agent_id.upper(), role=role,
                  password_hash="unused", active=True, created_at=int(time.time() * 1000))
    agent.save()
    return issue_token(agent)


@pytest.fixture
def api(inbox):
    inbox.add_account("messenger", PAGE)

    class Api:
        admin = inbox.login_admin()
        agent = _agent("a1")

        @staticmethod
        def call(method, path, body=None, token=None, raw=None):
            headers = {"Content-Type": "application/json"}
            if token:
                headers["Authorization"] = "Bearer " + token
            data = raw if raw is not None else (json.dumps(body) if body is not None else None)
            response = inbox.client.http.request(method, path, body=data, headers=headers)
            payload = json.loads(response.body) if response.body else None
            return response.status_code, payload

    return Api


def _conversation(user, at_ms):
    from chalicelib.inbox import store

    event = MessageEvent(channel="messenger", account_id=PAGE, platform_message_id=f"m-{user}", thread_key=user,
                         contact=ContactRef(user), direction="in", sent_at_ms=at_ms, text="hi", raw={"mid": user})
    return store.record_message(event, "support")[1][0]


def test_an_agent_reports_presence_and_coming_online_drains_the_team_backlog(api):
    from chalicelib.inbox import store

    status, body = api.call("PUT", "/api/agents/a1/routing", {"teams": ["support"], "capacity": 1}, api.admin)
    assert status == 200 and body["teams"] == ["support"] and body["capacity"] == 1
    now = int(time.time() * 1000)
    older, newer = _conversation("u1", now), _conversation("u2", now + 60_000)
    status, body = api.call("PUT", "/api/me/presence", {"status": "online"}, api.agent)
    assert status == 200, body
    assert body["online"] is True and body["presence"] == "online" and body["assigned"] == 1
    assert body["expires_at"] - body["last_seen"] == 90_000
    assert store.get(older)["assignee"] == "a1" and "assignee" not in store.get(newer)
    status, body = api.call("GET", "/api/teams/support/agents", token=api.agent)
    assert status == 200
    assert body["mode"] == "round_robin"
    assert body["agents"] == [{"agent_id": "a1", "capacity": 1, "presence": "online", "online": True,
                               "last_seen": body["agents"][0]["last_seen"], "expires_at": body["agents"][0]["expires_at"],
                               "last_assigned_at": body["agents"][0]["last_assigned_at"], "name": "A1", "active": True,
                               "load": 1}]
    status, body = api.call("PUT", "/api/me/presence", {"status": "away"}, api.agent)
    assert status == 200 and body["online"] is False and body["presence"] == "away"
    assert store.get(older)["assignee"] == "a1"  # away keeps what they have


def test_admin_sets_a_team_mode(api):
    status, body = api.call("PUT", "/api/teams/support", {"mode": "least_loaded"}, api.admin)
    assert (status, body["mode"]) == (200, "least_loaded")
    assert api.call("GET", "/api/teams/support/agents", token=api.admin)[1]["mode"] == "least_loaded"


@pytest.mark.parametrize("body", [
    {}, {"status": 1}, {"status": "busy"}, {"status": None}, {"status": ["online"]}, {"status": "ONLINE"},
])
def test_presence_refuses_what_is_not_a_status(api, body):
    assert api.call("PUT", "/api/me/presence", body, api.agent)[0] == 400


@pytest.mark.parametrize("raw", ["not json", "[1]", "\"online\"", "null", "{\"status\": \"online\""])
def test_presence_refuses_bodies_that_are_not_json_objects(api, raw):
    assert api.call("PUT", "/api/me/presence", token=api.agent, raw=raw)[0] == 400


def test_everything_needs_a_token_and_writes_need_an_admin(api):
    assert api.call("PUT", "/api/me/presence", {"status": "online"})[0] == 401
    assert api.call("PUT", "/api/me/presence", {"status": "online"}, "Bearer junk")[0] == 401
    assert api.call("GET", "/api/teams/support/agents")[0] == 401
    assert api.call("PUT", "/api/agents/a1/routing", {"capacity": 5}, api.agent)[0] == 403
    assert api.call("PUT", "/api/teams/support", {"mode": "least_loaded"}, api.agent)[0] == 403


@pytest.mark.parametrize("body", [
    {}, {"teams": "support"}, {"teams": [1]}, {"teams": [""]}, {"teams": ["a#b"]}, {"teams": ["x" * 65]},
    {"teams": [f"t{i}" for i in range(21)]}, {"teams": [None]}, {"teams": {"support": True}},
    {"capacity": "5"}, {"capacity": True}, {"capacity": -1}, {"capacity": 1.5}, {"capacity": 10 ** 9},
    {"capacity": None},
])
def test_agent_routing_refuses_wrong_types(api, body):
    assert api.call("PUT", "/api/agents/a1/routing", body, api.admin)[0] == 400


def test_agent_routing_for_an_unknown_agent_is_404(api):
    assert api.call("PUT", "/api/agents/nobody/routing", {"capacity": 3}, api.admin)[0] == 404
    assert api.call("PUT", "/api/agents/" + "x" * 300 + "/routing", {"capacity": 3}, api.admin)[0] == 404


@pytest.mark.parametrize("team,body,expected", [
    ("support", {}, 400), ("support", {"mode": "random"}, 400), ("support", {"mode": 1}, 400),
    ("a%23b", {"mode": "round_robin"}, 400), ("-x", {"mode": "round_robin"}, 400),
])
def test_team_mode_refuses_bad_input(api, team, body, expected):
    assert api.call("PUT", f"/api/teams/{team}", body, api.admin)[0] == expected


def test_a_team_with_a_bad_name_is_refused_on_read(api):
    assert api.call("GET", "/api/teams/a%23b/agents", token=api.agent)[0] == 400
