"""Hostile input, route by route (issue 16): every route that takes a time, an id, a list of
strings or free text answers a clear 4xx to lone surrogates, NUL, ESC, oversized values, extreme
dates and wrong types (never a 500), and stores nothing; a good value through the same request
shape then succeeds (so each 4xx is the check's, not a malformed request's). Stored times no
datetime can hold never turn a view into a 500. Attachment URLs: tests/test_media.py."""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

from tests.helpers import PAGE, PHONE, days_ahead, messenger, page_delivery, whatsapp_delivery

JSON = {"Content-Type": "application/json"}

TEXT = [("lone surrogate", "ab\ud800cd"), ("lone low surrogate", "\udfff"), ("NUL", "a\x00b"),
        ("ESC", "a\x1b[31mb"), ("oversized", "x" * 3000), ("number", 123), ("huge number", 10 ** 30),
        ("list", ["a"]), ("object", {"a": "b"}), ("boolean", True)]
TIMES = [("year 9999 at -14:00", "9999-12-31T23:59:59-14:00"), ("year 0001", "0001-01-01T00:00:00Z"),
         ("before the epoch", "1969-12-31T23:59:59Z"), ("negative epoch", -1), ("huge int", 10 ** 30),
         ("huge int text", "9" * 40), ("no zone", "2026-12-24T10:00:00"), ("not a time", "tomorrow"),
         ("lone surrogate", "2026-12-24T10:00:00\ud800"), ("NUL", "2026-12-24T10:00:00\x00Z"),
         ("ESC", "\x1b2026-12-24T10:00:00Z"), ("oversized", "2" * 5000), ("boolean", True), ("list", [])]
LISTS = [("lone surrogate item", ["ok", "b\ud800"]), ("NUL item", ["a\x00b"]), ("ESC item", ["a\x1b[2Jb"]),
         ("tab item", ["a\tb"]), ("oversized item", ["x" * 3000]), ("non-string item", [1]),
         ("nested list", [["a"]]), ("too many", [f"t{i}" for i in range(1000)]), ("string", "vip"),
         ("object", {"a": "b"})]


def _relative_times() -> List[Tuple[str, Any]]:
    """Snoozes: in the future, at most a year ahead."""
    return [("past", days_ahead(-1)[0]), ("13 months ahead", days_ahead(400)[0]),
            ("year 2099", "2099-01-01T00:00:00Z")]


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


COMPONENTS = [("depth 900", [_nested(900)]), ("NUL", [{"type": "body", "parameters": [{"type": "text",
                                                                                      "text": "a\x00b"}]}]),
              ("lone surrogate", [{"type": "body", "parameters": [{"type": "text", "text": "\ud83d"}]}]),
              ("ESC in a key", [{"type\x1b": "body"}]), ("oversized", [{"type": "body", "text": "x" * 40_000}]),
              ("too many", [{"type": "body"}] * 2000), ("object", {"type": "body"}), ("string", "body")]
REFS = [("AWS secret", {"META_PAGE_TOKEN": "AWS_SECRET_ACCESS_KEY"}),
        ("the token signing key", {"META_PAGE_TOKEN": "AUTH_TOKEN_SECRET"}),
        ("another platform's secret", {"META_PAGE_TOKEN": "WHATSAPP_TOKEN"}),
        ("an unknown credential", {"AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY"}),
        ("lowercase suffix", {"META_PAGE_TOKEN": "META_PAGE_TOKEN_x"}),
        ("lone surrogate value", {"META_PAGE_TOKEN": "META_PAGE_TOKEN_\ud800"}),
        ("lone surrogate key", {"\ud800": "META_PAGE_TOKEN"}), ("NUL", {"META_PAGE_TOKEN": "META_PAGE_TOKEN\x00"}),
        ("ESC", {"META_PAGE_TOKEN\x1b": "META_PAGE_TOKEN"}), ("oversized", {"META_PAGE_TOKEN": "A" * 3000}),
        ("number", {"META_PAGE_TOKEN": 1}), ("list", ["META_PAGE_TOKEN"]), ("string", "META_PAGE_TOKEN")]


class World:
    """Two conversations (Messenger, WhatsApp), a contact and the admin's token."""

    def __init__(self, inbox: Any) -> None:
        self.inbox = inbox
        inbox.add_account("messenger", PAGE)
        inbox.add_account("whatsapp", PHONE)
        delivery = page_delivery(messenger("m_h1", "psid_h1", 1_700_000_000_000, "refund please"))
        assert inbox.post_meta(delivery).status_code == 200
        from chalicelib.runtime import runtime

        assert inbox.post_meta(whatsapp_delivery("wamid.h1", "15550001", runtime.now_ms() // 1000, "hello")
                               ).status_code == 200
        inbox.process()
        rows = {c["channel"]: c for c in inbox.conversations()}
        self.cid, self.wa = rows["messenger"]["id"], rows["whatsapp"]["id"]
        self.contact = inbox.get(f"/api/conversations/{self.cid}")["contact"]["id"]
        self.token = inbox.login_admin()

    def call(self, method: str, path: str, body: Any = None, token: Optional[str] = "admin") -> Any:
        headers = dict(JSON)
        if token:
            headers["Authorization"] = "Bearer " + (self.token if token == "admin" else token)
        raw = b"" if body is None else json.dumps(body).encode()  # lone surrogates travel as \ud800 escapes
        return self.inbox.client.http.request(method, path, headers=headers, body=raw)


def _stored_state() -> Dict[str, Any]:
    """Everything an API call could have stored (not the login throttle or sign-ins)."""
    from chalicelib import models

    kept = ("Conversation", "ConversationEvent", "Message", "ChannelAccount", "SlaPolicy", "ContactNote",
            "Contact", "CannedReply", "Agent", "AgentRouting", "TeamRouting", "Quarantine")
    state = {}
    for name in kept:
        model = getattr(models, name)
        rows = [json.dumps(item.serialize(), sort_keys=True, default=str) for item in model.scan()]
        state[name] = sorted(rows)
    return state


def _refused(response: Any) -> bool:
    """A clear 4xx (or, for bulk, every id refused with a 4xx)."""
    if not response.body:
        return 400 <= response.status_code < 500
    body = json.loads(response.body)
    if response.status_code == 200 and isinstance(body, dict) and "results" in body:
        return all(400 <= r["status"] < 500 and r["applied"] == [] for r in body["results"])
    return 400 <= response.status_code < 500 and {"Code", "Message"} <= set(body)


def _case(name: str, method: str, path: Callable[[World], str], body: Callable[[World, Any], Any],
          values: Callable[[], List[Tuple[str, Any]]], good: Any) -> Any:
    return pytest.param(method, path, body, values, good, id=name)


def _conversation(w: World) -> str:
    return f"/api/conversations/{w.cid}"


def _reply_path(w: World) -> str:
    return f"/api/conversations/{w.wa}/messages"


def _snooze_cases() -> List[Tuple[str, Any]]:
    return TIMES + _relative_times()


ROUTES = [
    _case("PATCH conversation snoozed_until", "PATCH", _conversation,
          lambda w, v: {"status": "snoozed", "snoozed_until": v}, _snooze_cases, lambda: days_ahead(7)[0]),
    _case("PATCH conversation tags", "PATCH", _conversation, lambda w, v: {"tags": v}, lambda: LISTS, ["vip"]),
    _case("PATCH conversation priority", "PATCH", _conversation, lambda w, v: {"priority": v}, lambda: TEXT, "high"),
    _case("PATCH conversation status", "PATCH", _conversation, lambda w, v: {"status": v}, lambda: TEXT, "pending"),
    _case("bulk snoozed_until", "POST", lambda w: "/api/conversations/bulk",
          lambda w, v: {"ids": [w.cid], "status": "snoozed", "snoozed_until": v}, _snooze_cases,
          lambda: days_ahead(7)[0]),
    _case("bulk ids", "POST", lambda w: "/api/conversations/bulk", lambda w, v: {"ids": v, "priority": "high"},
          lambda: LISTS[:-3] + [("not a list", "c_1")], None),
    _case("bulk tags_add", "POST", lambda w: "/api/conversations/bulk",
          lambda w, v: {"ids": [w.cid], "tags_add": v}, lambda: LISTS, ["vip"]),
    _case("reply client_id", "POST", _reply_path, lambda w, v: {"text": "hi", "client_id": v}, lambda: TEXT, "c-1"),
    _case("reply after_message_id", "POST", _reply_path,
          lambda w, v: {"text": "hi", "client_id": "c-2", "after_message_id": v}, lambda: TEXT, None),
    _case("reply template.name", "POST", _reply_path,
          lambda w, v: {"client_id": "c-3", "template": {"name": v, "language": "en_US"}}, lambda: TEXT,
          "order_update"),
    _case("reply template.components", "POST", _reply_path,
          lambda w, v: {"client_id": "c-4", "template": {"name": "order_update", "language": "en_US",
                                                          "components": v}}, lambda: COMPONENTS,
          [{"type": "body", "parameters": [{"type": "text", "text": "A-1"}]}]),
    _case("POST accounts platform_account_id", "POST", lambda w: "/api/accounts",
          lambda w, v: {"channel": "telegram", "platform_account_id": v, "name": "Bot"}, lambda: TEXT, "4242"),
    _case("POST accounts name", "POST", lambda w: "/api/accounts",
          lambda w, v: {"channel": "telegram", "platform_account_id": "4243", "name": v}, lambda: TEXT, "Bot"),
    _case("POST accounts team", "POST", lambda w: "/api/accounts",
          lambda w, v: {"channel": "telegram", "platform_account_id": "4244", "name": "Bot", "team": v},
          lambda: TEXT + [("hash", "a#b"), ("newline", "care\n")], "care"),
    _case("POST accounts credential_refs", "POST", lambda w: "/api/accounts",
          lambda w, v: {"channel": "telegram", "platform_account_id": "4245", "name": "Bot", "credential_refs": v},
          lambda: REFS + [("unknown credential", {"TELEGRAM_BOT_TOKEN": "TELEGRAM_BOT_TOKEN_A\n"})],
          {"TELEGRAM_BOT_TOKEN": "TELEGRAM_BOT_TOKEN_4245"}),
    _case("PATCH account name", "PATCH", lambda w: f"/api/accounts/messenger/{PAGE}", lambda w, v: {"name": v},
          lambda: TEXT, "Acme Care"),
    _case("PATCH account team", "PATCH", lambda w: f"/api/accounts/messenger/{PAGE}", lambda w, v: {"team": v},
          lambda: TEXT + [("newline", "care\n")], "care"),
    _case("PATCH account credential_refs", "PATCH", lambda w: f"/api/accounts/messenger/{PAGE}",
          lambda w, v: {"credential_refs": v}, lambda: REFS, {"META_PAGE_TOKEN": "META_PAGE_TOKEN_ACME"}),
    _case("SLA policy name", "POST", lambda w: "/api/sla-policies",
          lambda w, v: {"name": v, "first_response_seconds": 600, "next_response_seconds": 600}, lambda: TEXT,
          "VIP"),
    _case("SLA policy tags", "POST", lambda w: "/api/sla-policies",
          lambda w, v: {"name": "Tagged", "tags": v, "first_response_seconds": 600, "next_response_seconds": 600},
          lambda: LISTS, ["vip"]),
    _case("SLA policy holiday dates", "POST", lambda w: "/api/sla-policies",
          lambda w, v: {"name": "Hours", "first_response_seconds": 600, "next_response_seconds": 600,
                        "business_hours": {"timezone": "UTC", "week": {"mon": [["09:00", "17:00"]]},
                                           "dates": [v]}},
          lambda: TIMES + [("year 9999", "9999-12-31"), ("year 0001", "0001-01-01")], "2026-12-25"),
    _case("DLQ replay message_ids", "POST", lambda w: "/api/admin/dlq/replay", lambda w, v: {"message_ids": v},
          lambda: LISTS[:-3], None),
    _case("quarantine replay account_id", "POST", lambda w: "/api/admin/quarantine/replay",
          lambda w, v: {"account_id": v}, lambda: TEXT, None),
    _case("contact link contact_id", "POST", lambda w: f"/api/contacts/{w.contact}/links",
          lambda w, v: {"contact_id": v}, lambda: TEXT, None),
    _case("contact note text", "POST", lambda w: f"/api/contacts/{w.contact}/notes", lambda w, v: {"text": v},
          lambda: [t for t in TEXT if t[0] != "oversized"] + [("oversized", "x" * 100_000)], "Prefers email"),
    _case("canned reply title", "POST", lambda w: "/api/canned-replies",
          lambda w, v: {"shortcut": "hello", "title": v, "text": "Hello!"}, lambda: TEXT, "Greeting"),
    _case("agent teams", "POST", lambda w: "/api/agents",
          lambda w, v: {"email": "new.agent@example.com", "name": "New", "role": "agent", "teams": v,
                        "capacity": 3}, lambda: LISTS, ["care"]),
    _case("agent email", "POST", lambda w: "/api/agents",
          lambda w, v: {"email": v, "name": "New", "role": "agent", "teams": ["care"], "capacity": 3},
          lambda: TEXT, "other.agent@example.com"),
]


@pytest.mark.parametrize("method, path, body, values, good", ROUTES)
def test_hostile_values_are_a_clear_4xx_and_store_nothing(inbox, method, path, body, values, good):
    world = World(inbox)
    before = _stored_state()
    for label, value in values():
        response = world.call(method, path(world), body(world, value))
        assert response.status_code < 500, (label, response.status_code, response.body[:300])
        assert _refused(response), (label, response.status_code, response.body[:300])
    assert _stored_state() == before
    if good is not None:
        response = world.call(method, path(world), body(world, good() if callable(good) else good))
        assert 200 <= response.status_code < 300 and not _refused(response), (response.status_code, response.body)


AUTH_ROUTES = [
    ("/api/auth/login", lambda v: {"email": v, "password": "correct horse battery staple"}),
    ("/api/auth/login", lambda v: {"email": "admin@example.com", "password": v}),
    ("/api/auth/refresh", lambda v: {"refresh_token": v}),
    ("/api/auth/logout", lambda v: {"refresh_token": v}),
]


@pytest.mark.parametrize("path, body", AUTH_ROUTES, ids=["login email", "login password", "refresh", "logout"])
def test_sign_in_routes_answer_4xx_to_hostile_values_without_a_token(inbox, path, body):
    world = World(inbox)
    token_sized = [("token-sized lone surrogate", "r" * 42 + "\ud800"), ("token-sized NUL", "r" * 42 + "\x00")]
    for label, value in TEXT + token_sized:
        if "password" in json.dumps(body("x")) and label == "oversized":
            continue  # a 3,000-character password is a wrong password
        response = world.call("POST", path, body(value), token=None)
        assert 400 <= response.status_code < 500, (label, response.status_code, response.body[:300])


PATH_IDS = [("NUL", "a%00b"), ("ESC", "a%1Bb"), ("oversized", "x" * 3000), ("lone surrogate", "a%ED%A0%80b"),
            ("newline", "a%0Ab")]


def test_hostile_ids_in_paths_are_4xx(inbox):
    world = World(inbox)
    paths = ["/api/conversations/{}", "/api/conversations/{}/messages", "/api/conversations/{}/events",
             "/api/contacts/{}", "/api/sla-policies/{}", "/api/canned-replies/{}", "/api/agents/{}",
             "/api/media/{}/m_1/0", "/api/admin/quarantine/{}"]
    for template in paths:
        for label, value in PATH_IDS:
            response = world.call("GET", template.format(value))
            assert 400 <= response.status_code < 500, (template, label, response.status_code, response.body[:200])
    for label, value in PATH_IDS:
        response = world.call("PATCH", f"/api/accounts/messenger/{value}", {"name": "x"})
        assert 400 <= response.status_code < 500, (label, response.status_code)


def test_stored_times_no_datetime_holds_never_break_a_view(inbox):
    """Bad data already stored (a snooze in year 10000 UTC, times before year 1 or beyond 9999)
    renders as null: the conversation, the snoozed list, search, the contact panel, its events and
    thread, the change poll and a bulk change that includes it all answer 200."""
    from chalicelib.inbox import rules, store
    from chalicelib.models import Conversation, Message
    from chalicelib.runtime import runtime

    world = World(inbox)
    year_10000 = 253_402_351_199_000  # 9999-12-31T23:59:59-14:00 in UTC
    store.set_status(world.cid, "snoozed", "agent:test", until=runtime.now_ms() + 3_600_000)  # then forged
    row = Conversation.get(world.cid)
    state = {k: v for k, v in row.attribute_values.items() if v is not None}
    state.update(status="snoozed", snoozed_until=year_10000, created_at=-(10 ** 20),
                 last_message_at=10 ** 25, first_response_at=-62_135_596_800_001)
    state.update(rules.derived_keys(state))
    Conversation(**state).save()
    [message] = list(Message.query(world.cid))
    message.update(actions=[Message.edited_at.set(10 ** 30)])

    shown = json.loads(world.call("GET", f"/api/conversations/{world.cid}").body)
    assert shown["snoozed_until"] is None and shown["created_at"] is None and shown["status"] == "snoozed"
    for path in ("/api/conversations?status=snoozed", "/api/conversations?status=snoozed&sort=due",
                 f"/api/conversations/{world.cid}/messages", f"/api/conversations/{world.cid}/events",
                 f"/api/contacts/{world.contact}", "/api/search?q=refund", f"/api/changes?conversation={world.cid}",
                 "/api/counts"):
        response = world.call("GET", path)
        assert response.status_code == 200, (path, response.status_code, response.body[:300])
    listed = json.loads(world.call("GET", "/api/conversations?status=snoozed").body)["items"]
    assert [c["id"] for c in listed] == [world.cid] and listed[0]["snoozed_until"] is None
    assert [c["id"] for c in json.loads(world.call("GET", "/api/search?q=refund").body)["items"]] == [world.cid]
    bulk = json.loads(world.call("POST", "/api/conversations/bulk", {"ids": [world.cid, world.wa],
                                                                     "priority": "high"}).body)
    assert [r["status"] for r in bulk["results"]] == [200, 200]
    reopened = world.call("PATCH", f"/api/conversations/{world.cid}", {"status": "open"})
    assert reopened.status_code == 200 and json.loads(reopened.body)["status"] == "open"
