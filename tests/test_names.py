"""Names beside ids: the API keeps answering agent ids and adds the names the page shows
(`assignee_name`, an `agents` map in event logs and notifications, names in the team's agents),
at no extra DynamoDB request per page; channels are spelled as their brands spell them."""
from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.helpers import PAGE, call_as, messenger, page_delivery, signed_in_agent




class DynamoRequests:
    """Every DynamoDB request the app makes (botocore's one entry point for a client call, which
    pynamodb uses too), as (operation, table)."""

    def __init__(self, monkeypatch) -> None:
        import botocore.client

        self.calls: Counter = Counter()
        original = botocore.client.BaseClient._make_api_call
        seen = self.calls

        def counted(client, operation, params):
            if client.meta.service_model.service_name == "dynamodb":
                seen[(operation, str(params.get("TableName", "")).rsplit("-", 1)[-1])] += 1
            return original(client, operation, params)

        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counted)

    def during(self, action) -> Counter:
        self.calls.clear()
        action()
        return Counter(self.calls)


@pytest.fixture
def team(inbox):
    """Three customers on the default team's page; Kim and Lee (default team), Bob (billing)."""
    inbox.add_account("messenger", PAGE, "Support page")
    inbox.post_meta(page_delivery(*[messenger(f"m-{i}", f"psid-{i}", int(time.time() * 1000) - 60_000 + i, f"hello {i}")
                                    for i in range(3)]))
    inbox.process()
    admin = inbox.login_admin()
    return {"inbox": inbox, "admin": admin, "ids": [c["id"] for c in inbox.conversations()],
            "kim": signed_in_agent("kim@example.com", "Kim Care", "agent", ["default"]),
            "lee": signed_in_agent("lee@example.com", "Lee <b>Sharp</b>", "supervisor", ["default"]),
            "bob": signed_in_agent("bob@example.com", "Bob", "agent", ["billing"])}


def test_conversations_carry_the_assignees_name_and_a_deactivated_one_says_so(team):
    inbox, admin, kim, lee = team["inbox"], team["admin"], team["kim"], team["lee"]
    first, second, third = team["ids"]
    assert call_as(inbox, "PATCH", f"/api/conversations/{first}", admin, {"assignee": kim["id"]})[1][
        "assignee_name"] == "Kim Care"
    call_as(inbox, "PATCH", f"/api/conversations/{second}", admin, {"assignee": lee["id"]})
    rows = {c["id"]: c for c in inbox.conversations()}
    assert (rows[first]["assignee"], rows[first]["assignee_name"]) == (kim["id"], "Kim Care")
    assert rows[second]["assignee_name"] == "Lee <b>Sharp</b>"  # data: the page escapes it
    assert (rows[third]["assignee"], rows[third]["assignee_name"]) == (None, None)

    call_as(inbox, "PATCH", f"/api/conversations/{first}", admin, {"status": "resolved"})  # not handed on
    status, _ = call_as(inbox, "PATCH", f"/api/agents/{kim['id']}", admin, {"active": False})
    assert status == 200
    assert inbox.get(f"/api/conversations/{first}")["assignee_name"] == "Kim Care (deactivated)"
    status, renamed = call_as(inbox, "PATCH", f"/api/agents/{lee['id']}", admin, {"name": "Lee Sharp"})
    assert status == 200
    assert {c["id"]: c for c in inbox.conversations()}[second]["assignee_name"] == "Lee Sharp"


def test_the_event_log_names_every_agent_it_mentions_and_routing_is_its_own_actor(team):
    from chalicelib.inbox import store
    from chalicelib.routing import engine

    inbox, admin, kim, lee = team["inbox"], team["admin"], team["kim"], team["lee"]
    cid = team["ids"][0]
    store.assign(cid, kim["id"], engine.ACTOR)
    call_as(inbox, "PATCH", f"/api/conversations/{cid}", lee["token"], {"assignee": lee["id"]})
    call_as(inbox, "PATCH", f"/api/conversations/{cid}", kim["token"], {"status": "pending"})
    store.assign(cid, "a_0123456789abcdef", "flow")  # nobody has this id
    log = inbox.get(f"/api/conversations/{cid}/events")
    assigned = [(e["actor"], e["data"]) for e in log["items"] if e["type"] == "assigned"]
    assert assigned == [("routing", {"from": None, "to": kim["id"]}),
                        (f"agent:{lee['id']}", {"from": kim["id"], "to": lee["id"]}),
                        ("flow", {"from": lee["id"], "to": "a_0123456789abcdef"})]
    assert log["agents"] == {kim["id"]: "Kim Care", lee["id"]: "Lee <b>Sharp</b>",
                             "a_0123456789abcdef": "an unknown agent"}


def test_notifications_name_the_assignee(team):
    from chalicelib.inbox import store
    from chalicelib.sla import escalation

    inbox, kim, lee = team["inbox"], team["kim"], team["lee"]
    cid = team["ids"][0]
    store.assign(cid, kim["id"], "flow")
    escalation.escalate("breach", store.get(cid))
    status, answer = call_as(inbox, "GET", "/api/me/notifications", lee["token"])  # a supervisor is told
    assert status == 200
    [note] = answer["items"]
    assert (note["kind"], note["data"]["assignee"]) == ("sla_breached", kim["id"])
    assert answer["agents"] == {kim["id"]: "Kim Care"}


def test_the_teams_agents_come_with_names_and_the_callers_teams_are_listed(team):
    inbox, admin, kim, bob = team["inbox"], team["admin"], team["kim"], team["bob"]
    status, answer = call_as(inbox, "GET", "/api/teams/default/agents", kim["token"])
    assert status == 200
    names = {a["agent_id"]: (a["name"], a["active"]) for a in answer["agents"]}
    assert names[kim["id"]] == ("Kim Care", True) and names[team["lee"]["id"]] == ("Lee <b>Sharp</b>", True)
    assert bob["id"] not in names
    assert call_as(inbox, "GET", "/api/teams", kim["token"]) == (200, {"items": ["default"]})
    assert call_as(inbox, "GET", "/api/teams", bob["token"]) == (200, {"items": ["billing"]})
    assert call_as(inbox, "GET", "/api/teams", admin)[1]["items"] == ["billing", "default"]
    assert call_as(inbox, "GET", "/api/me", bob["token"])[1]["teams"] == ["billing"]


def test_an_inbox_page_costs_no_dynamodb_request_for_its_names(team, monkeypatch):
    """A page whose rows belong to three agents makes exactly the requests of a page with none
    assigned: the names come from the container's cached directory (one Scan of the agents
    table when it is cold; an unknown id re-reads it at most once per few seconds)."""
    inbox, admin = team["inbox"], team["admin"]
    page = "/api/conversations?sort=recent&limit=25"
    requests = DynamoRequests(monkeypatch)
    call_as(inbox, "GET", page, admin)  # warm container: the token guard's agent, team access, names
    unassigned = requests.during(lambda: call_as(inbox, "GET", page, admin))
    assert unassigned == Counter({("Query", "conversations"): 1})

    for cid, who in zip(team["ids"], ("kim", "lee", "bob")):
        call_as(inbox, "PATCH", f"/api/conversations/{cid}", admin, {"assignee": team[who]["id"]})
    call_as(inbox, "GET", page, admin)  # the people changes above forgot the cached names
    assigned = requests.during(lambda: call_as(inbox, "GET", page, admin))
    assert assigned == unassigned
    assert {c["assignee_name"] for c in inbox.conversations()} == {"Kim Care", "Lee <b>Sharp</b>", "Bob"}

    from chalicelib.inbox import store

    store.assign(team["ids"][0], "a_0123456789abcdef", "flow")  # an id no agent has
    twice = requests.during(lambda: [call_as(inbox, "GET", page, admin) for _ in range(2)])
    assert twice[("Scan", "agents")] <= 1
    assert {c["assignee_name"] for c in inbox.conversations()} >= {"an unknown agent"}


def test_channels_are_spelled_as_their_brands_spell_them():
    from chalicelib.api.views import conversation_json
    from chalicelib.outbound import policy

    shown = conversation_json({"conversation_id": "c1", "channel": "linkedin", "contact_platform_id": "urn:li:person:ab12"})
    assert shown["contact"]["display_name"] == "LinkedIn member"  # an opaque URN tells nobody apart
    assert conversation_json({"conversation_id": "c2", "channel": "whatsapp",
                              "contact_platform_id": "4915112345678"})["contact"]["display_name"] == "WhatsApp user …5678"
    with pytest.raises(policy.Refused) as refused:
        policy.check_length("x" * 5000, "linkedin", "comment")
    assert "LinkedIn accepts at most" in str(refused.value)


def test_a_comment_thread_links_to_its_post_when_the_id_alone_tells_where_it_is():
    from chalicelib.api.views import conversation_json

    def link(channel, subject, kind="comment"):
        return conversation_json({"conversation_id": "c", "channel": channel, "thread_kind": kind,
                                  "subject": subject})["post_url"]

    assert link("linkedin", "urn:li:activity:7100000000000000002") == \
        "https://www.linkedin.com/feed/update/urn:li:activity:7100000000000000002/"
    assert link("linkedin", "urn:li:ugcPost:71", "mention") == "https://www.linkedin.com/feed/update/urn:li:ugcPost:71/"
    assert link("facebook", "101234567890123_998877665544332") == "https://www.facebook.com/101234567890123_998877665544332"
    assert link("instagram", "17895695668004550") is None  # a media id: its permalink needs a look-up
    assert link("facebook", "1_2/../../evil") is None and link("linkedin", "urn:li:activity:1?x=javascript:") is None
    assert link("telegram", "Support group", "group") is None
