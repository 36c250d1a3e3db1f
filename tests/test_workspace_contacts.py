"""The contact panel's API: a person's identities across channels, their whole history, and the
agents' private notes (GET /api/contacts/{id}, notes, links), with team access and bounded reads."""
from __future__ import annotations

import json
import time
from typing import Any, Dict, List

import pytest

from tests.helpers import PAGE, PHONE, messenger, page_delivery, whatsapp_delivery

BILLING_PAGE = "5550001111"
JSON = {"Content-Type": "application/json"}
HOSTILE = "<img src=x onerror=alert(1)> \u202eevil"


def _now() -> int:
    return int(time.time() * 1000)


def _agent(email: str, name: str, role: str, teams: List[str]) -> Dict[str, str]:
    from chalicelib.api import auth, people

    agent, _ = people.create(email, name, role, teams, None, "a long enough password")
    return {"token": auth.issue_token(agent), "id": agent.agent_id}


def _call(inbox: Any, method: str, path: str, token: str, body: Any = None) -> Any:
    headers = {"Authorization": "Bearer " + token}
    if body is not None:
        headers.update(JSON)
    response = inbox.client.http.request(method, path, headers=headers,
                                         body=json.dumps(body).encode() if body is not None else b"")
    response.json = json.loads(response.body) if response.body else None
    return response


@pytest.fixture
def world(inbox: Any) -> Dict[str, Any]:
    """Ana writes on Messenger and on WhatsApp (two identities); Bea on the billing team's page."""
    from chalicelib.accounts import register_account

    inbox.add_account("messenger", PAGE, "Support page")
    inbox.add_account("whatsapp", PHONE, "Support number")
    register_account("messenger", BILLING_PAGE, "Billing page", team="billing")
    now = _now()
    inbox.post_meta(page_delivery(messenger("m-ana", "psid-ana", now - 120_000, "my order?")))
    inbox.post_meta(whatsapp_delivery("wamid.ana", "5511999990000", now // 1000 - 60, "it is late"))
    inbox.post_meta(page_delivery(messenger("m-bea", "psid-bea", now - 60_000, "invoice?"), page=BILLING_PAGE))
    inbox.process()
    admin = inbox.login_admin()
    # list rows project no contact id (the recency index holds 20 attributes): read the details
    rows = {c["channel"]: inbox.get("/api/conversations/" + c["id"]) for c in inbox.conversations(team="default")}
    [billing] = [inbox.get("/api/conversations/" + c["id"]) for c in inbox.conversations(team="billing")]
    return {"inbox": inbox, "admin": admin, "messenger": rows["messenger"], "whatsapp": rows["whatsapp"],
            "billing": billing, "ana": _agent("ana@example.com", "Ana Agent", "agent", ["default"]),
            "kim": _agent("kim@example.com", "Kim", "agent", ["default"]),
            "bob": _agent("bob@example.com", "Bob", "agent", ["billing"])}


def _contact_id(row: Dict[str, Any]) -> str:
    return row["contact"]["id"]


def test_a_contact_shows_its_identity_its_conversations_and_no_notes_yet(world):
    inbox, row = world["inbox"], world["messenger"]
    answer = _call(inbox, "GET", f"/api/contacts/{_contact_id(row)}", world["ana"]["token"])
    assert answer.status_code == 200
    body = answer.json
    assert body["id"] == _contact_id(row)
    assert body["identities"] == [{"id": _contact_id(row), "channel": "messenger", "account_id": PAGE,
                                   "platform_id": "psid-ana", "display_name": None, "handle": None,
                                   "avatar_url": None, "followers": None}]
    assert [c["id"] for c in body["conversations"]] == [row["id"]]
    assert body["conversations"][0]["last_message_preview"] == "my order?"
    assert body["notes"] == []


def test_linked_identities_share_history_and_notes_from_either_side_and_unlink_cleanly(world):
    inbox, token = world["inbox"], world["ana"]["token"]
    messenger_contact, whatsapp_contact = _contact_id(world["messenger"]), _contact_id(world["whatsapp"])
    note = _call(inbox, "POST", f"/api/contacts/{whatsapp_contact}/notes", token, {"text": "Prefers WhatsApp"})
    assert note.status_code == 201
    linked = _call(inbox, "POST", f"/api/contacts/{messenger_contact}/links", token, {"contact_id": whatsapp_contact})
    assert linked.status_code == 200
    assert sorted(i["channel"] for i in linked.json["identities"]) == ["messenger", "whatsapp"]
    for side in (messenger_contact, whatsapp_contact):
        body = _call(inbox, "GET", f"/api/contacts/{side}", token).json
        assert {i["id"] for i in body["identities"]} == {messenger_contact, whatsapp_contact}
        assert [c["channel"] for c in body["conversations"]] == ["whatsapp", "messenger"]  # latest activity first
        assert [n["text"] for n in body["notes"]] == ["Prefers WhatsApp"]
        assert {i["platform_id"] for i in body["identities"]} == {"psid-ana", "5511999990000"}
    # a later message does not undo the link (ingest only sets the identity's own fields)
    inbox.post_meta(page_delivery(messenger("m-ana-2", "psid-ana", _now(), "still there?")))
    inbox.process()
    assert len(_call(inbox, "GET", f"/api/contacts/{whatsapp_contact}", token).json["identities"]) == 2
    # linking again is a no-op; unlinking the root leaves the other identity standing alone
    assert len(_call(inbox, "POST", f"/api/contacts/{whatsapp_contact}/links", token,
                     {"contact_id": messenger_contact}).json["identities"]) == 2
    alone = _call(inbox, "DELETE", f"/api/contacts/{messenger_contact}/links", token)
    assert alone.status_code == 200 and [i["id"] for i in alone.json["identities"]] == [messenger_contact]
    for side, channel in ((messenger_contact, "messenger"), (whatsapp_contact, "whatsapp")):
        body = _call(inbox, "GET", f"/api/contacts/{side}", token).json
        assert [i["channel"] for i in body["identities"]] == [channel]
        assert [c["channel"] for c in body["conversations"]] == [channel]
    # the note stayed with the identity it was written on
    assert [n["text"] for n in _call(inbox, "GET", f"/api/contacts/{whatsapp_contact}/notes", token).json["items"]] \
        == ["Prefers WhatsApp"]
    assert _call(inbox, "GET", f"/api/contacts/{messenger_contact}/notes", token).json["items"] == []


def test_linking_merges_whole_people_and_unlinking_a_member_keeps_the_rest(world):
    from chalicelib.inbox import contacts
    from chalicelib.models import Contact

    inbox, token = world["inbox"], world["admin"]
    a, b, c = _contact_id(world["messenger"]), _contact_id(world["whatsapp"]), _contact_id(world["billing"])
    assert _call(inbox, "POST", f"/api/contacts/{b}/links", token, {"contact_id": c}).status_code == 200
    merged = _call(inbox, "POST", f"/api/contacts/{a}/links", token, {"contact_id": c})  # c's person comes along
    assert {i["id"] for i in merged.json["identities"]} == {a, b, c}
    assert {Contact.get(x).person_id for x in (b, c)} == {a} and Contact.get(a).person_id is None
    assert sorted(Contact.get(a).linked) == sorted([a, b, c])
    out = _call(inbox, "DELETE", f"/api/contacts/{c}/links", token)
    assert [i["id"] for i in out.json["identities"]] == [c]
    assert {i["id"] for i in _call(inbox, "GET", f"/api/contacts/{b}", token).json["identities"]} == {a, b}
    assert Contact.get(c).person_id is None
    # a person has at most MAX_IDENTITIES identities
    contacts.MAX_IDENTITIES, saved = 2, contacts.MAX_IDENTITIES
    try:
        full = _call(inbox, "POST", f"/api/contacts/{a}/links", token, {"contact_id": c})
        assert full.status_code == 409 and "at most 2" in full.json["Message"]
    finally:
        contacts.MAX_IDENTITIES = saved


def test_notes_keep_hostile_text_verbatim_and_only_the_author_or_a_supervisor_edits(world):
    inbox, contact = world["inbox"], _contact_id(world["messenger"])
    ana, kim = world["ana"]["token"], world["kim"]["token"]
    created = _call(inbox, "POST", f"/api/contacts/{contact}/notes", ana, {"text": HOSTILE + "\nsecond line"})
    assert created.status_code == 201
    note = created.json
    assert note["text"] == HOSTILE + "\nsecond line" and note["author_id"] == world["ana"]["id"]
    assert note["author_name"] == "Ana Agent" and note["version"] == 1
    path = f"/api/contacts/{contact}/notes/{note['id']}"
    assert _call(inbox, "PATCH", path, kim, {"text": "mine now"}).status_code == 403
    edited = _call(inbox, "PATCH", path, ana, {"text": "VIP customer", "version": 1})
    assert edited.status_code == 200 and edited.json["version"] == 2
    assert edited.json["updated_by"] == world["ana"]["id"] and edited.json["updated_at"]
    stale = _call(inbox, "PATCH", path, ana, {"text": "from an old tab", "version": 1})
    assert stale.status_code == 409 and stale.json["Code"] == "Conflict"
    assert _call(inbox, "PATCH", path, world["admin"], {"text": "VIP customer (checked)"}).status_code == 200
    items = _call(inbox, "GET", f"/api/contacts/{contact}/notes", kim).json["items"]
    assert [(n["text"], n["version"]) for n in items] == [("VIP customer (checked)", 3)]
    later = _call(inbox, "POST", f"/api/contacts/{contact}/notes", kim, {"text": "Called back"}).json
    assert [n["id"] for n in _call(inbox, "GET", f"/api/contacts/{contact}", kim).json["notes"]] == \
        [note["id"], later["id"]]  # oldest first


def test_the_panel_shows_the_newest_notes_when_there_are_more_than_it_reads(world, monkeypatch):
    from chalicelib.inbox import contacts
    from chalicelib.runtime import runtime

    inbox, contact, token = world["inbox"], _contact_id(world["messenger"]), world["ana"]["token"]
    start = _now()
    for n in range(4):
        runtime.use_clock(lambda n=n: (start + n * 1000) / 1000)
        assert _call(inbox, "POST", f"/api/contacts/{contact}/notes", token, {"text": f"note {n}"}).status_code == 201
    runtime.use_clock(None)
    monkeypatch.setattr(contacts, "NOTES_PER_IDENTITY", 2)
    assert [n["text"] for n in _call(inbox, "GET", f"/api/contacts/{contact}/notes", token).json["items"]] == \
        ["note 2", "note 3"]


@pytest.mark.parametrize("body", [{"text": ""}, {"text": "   "}, {"text": "x" * 2001}, {"text": 5}, {"text": "a\x00b"},
                                  {"text": "ok", "pinned": True}, [], {"text": "\ud800"}])
def test_bad_note_bodies_are_400(world, body):
    response = _call(world["inbox"], "POST", f"/api/contacts/{_contact_id(world['messenger'])}/notes",
                     world["ana"]["token"], body)
    assert response.status_code == 400, response.body


@pytest.mark.parametrize("body", [{}, [], {"contact_id": 5}, {"contact_id": ""}, {"contact_id": "x" * 101},
                                  {"contact_id": "a\x00b"}, {"contact_id": ["c"]}, {"contact_id": "c", "merge": True}])
def test_bad_link_bodies_are_400_and_link_nothing(world, body):
    contact = _contact_id(world["messenger"])
    response = _call(world["inbox"], "POST", f"/api/contacts/{contact}/links", world["ana"]["token"], body)
    assert response.status_code == 400, response.body
    assert len(_call(world["inbox"], "GET", f"/api/contacts/{contact}", world["ana"]["token"]).json["identities"]) == 1


def test_links_to_oneself_to_an_unknown_or_hidden_identity_are_refused_and_a_repeat_is_harmless(world):
    inbox, token = world["inbox"], world["ana"]["token"]
    messenger, whatsapp = _contact_id(world["messenger"]), _contact_id(world["whatsapp"])
    for other, status in ((_contact_id(world["billing"]), 404), ("c_unknown", 404)):
        assert _call(inbox, "POST", f"/api/contacts/{messenger}/links", token, {"contact_id": other}).status_code == status
    itself = _call(inbox, "POST", f"/api/contacts/{messenger}/links", token, {"contact_id": messenger})
    assert itself.status_code in (200, 400, 409), itself.body  # already the same person: a no-op at most
    assert len(_call(inbox, "GET", f"/api/contacts/{messenger}", token).json["identities"]) == 1
    for _ in range(2):  # a retried link answers the same person, never a duplicate identity
        linked = _call(inbox, "POST", f"/api/contacts/{messenger}/links", token, {"contact_id": whatsapp})
        assert linked.status_code in (200, 409), linked.body
    identities = _call(inbox, "GET", f"/api/contacts/{messenger}", token).json["identities"]
    assert sorted(i["id"] for i in identities) == sorted([messenger, whatsapp])


def test_another_teams_contact_is_404_like_an_unknown_one_and_history_hides_what_the_agent_cannot_see(world):
    inbox = world["inbox"]
    bob, ana = world["bob"]["token"], world["ana"]["token"]
    billing_contact, ana_contact = _contact_id(world["billing"]), _contact_id(world["messenger"])
    for path in (f"/api/contacts/{ana_contact}", f"/api/contacts/{ana_contact}/notes", "/api/contacts/k_unknown",
                 "/api/contacts/" + "k" * 150):
        response = _call(inbox, "GET", path, bob)
        assert response.status_code == 404 and response.json["Message"] == "no such contact", path
    assert _call(inbox, "POST", f"/api/contacts/{ana_contact}/notes", bob, {"text": "hi"}).status_code == 404
    assert _call(inbox, "PATCH", f"/api/contacts/{ana_contact}/notes/x", bob, {"text": "hi"}).status_code == 404
    assert _call(inbox, "POST", f"/api/contacts/{ana_contact}/links", bob,
                 {"contact_id": billing_contact}).status_code == 404
    # an admin links Ana's Messenger identity with the billing contact: each agent sees only their
    # team's part of the person (identities, conversations, notes), and the other part stays 404
    assert _call(inbox, "POST", f"/api/contacts/{billing_contact}/notes", bob, {"text": "billing note"}).status_code \
        == 201
    assert _call(inbox, "POST", f"/api/contacts/{ana_contact}/links", world["admin"],
                 {"contact_id": billing_contact}).status_code == 200
    seen_by_bob = _call(inbox, "GET", f"/api/contacts/{billing_contact}", bob).json
    assert [c["id"] for c in seen_by_bob["conversations"]] == [world["billing"]["id"]]
    assert [i["id"] for i in seen_by_bob["identities"]] == [billing_contact]
    assert [n["text"] for n in seen_by_bob["notes"]] == ["billing note"]
    seen_by_ana = _call(inbox, "GET", f"/api/contacts/{ana_contact}", ana).json
    assert [c["id"] for c in seen_by_ana["conversations"]] == [world["messenger"]["id"]]
    assert [i["id"] for i in seen_by_ana["identities"]] == [ana_contact] and seen_by_ana["notes"] == []
    for path in (f"/api/contacts/{billing_contact}", f"/api/contacts/{billing_contact}/notes"):
        assert _call(inbox, "GET", path, ana).status_code == 404
    assert _call(inbox, "DELETE", f"/api/contacts/{billing_contact}/links", ana).status_code == 404
    admin_view = _call(inbox, "GET", f"/api/contacts/{billing_contact}", world["admin"]).json
    assert len(admin_view["identities"]) == 2 and len(admin_view["conversations"]) == 2
    assert _call(inbox, "GET", "/api/contacts/" + ana_contact, "not-a-token").status_code == 401


def test_the_panel_costs_the_same_bounded_reads_at_any_history_size_and_never_scans(world, monkeypatch):
    from pynamodb.connection.base import Connection

    inbox, contact = world["inbox"], _contact_id(world["messenger"])
    calls: List[str] = []
    original = Connection.dispatch

    def counting(self: Any, operation: str, kwargs: Any) -> Any:
        calls.append(operation)
        return original(self, operation, kwargs)

    monkeypatch.setattr(Connection, "dispatch", counting)
    token = world["ana"]["token"]
    assert _call(inbox, "GET", f"/api/contacts/{contact}", token).status_code == 200
    small = [c for c in calls if c not in ("GetItem",)]
    for n in range(30):  # more conversations in the table, none of them this contact's
        inbox.post_meta(page_delivery(messenger(f"m-other-{n}", f"psid-{n}", _now() - n, "hello")))
    inbox.process()
    calls.clear()
    assert _call(inbox, "GET", f"/api/contacts/{contact}", token).status_code == 200
    assert "Scan" not in calls
    assert [c for c in calls if c not in ("GetItem",)] == small == ["Query", "BatchGetItem", "Query"]
