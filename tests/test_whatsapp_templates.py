"""WhatsApp templates: the approved list from Graph (paged, cached, token in the header), the
conversation-scoped route the composer reads, and a template filled with an agent's variables
sent as the Cloud API takes it (components built on the server, the filled text in the thread)."""
from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import responses

from tests.helpers import PAGE, PHONE, messenger, page_delivery, send_queued_whatsapp_reply, whatsapp_delivery

GRAPH = "https://graph.facebook.com/v21.0"
WABA = "300000000000077"
LIST_URL = f"{GRAPH}/{WABA}/message_templates"
DAY = 24 * 3600_000

ORDER_UPDATE = {"name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
                "components": [{"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
                               {"type": "BODY", "text": "Hi {{1}}, order {{2}} arrives {{3}}."},
                               {"type": "FOOTER", "text": "Acme Coffee"},
                               {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Thanks"}]}]}
FOLLOW_UP = {"name": "follow_up", "language": "pt_PT", "status": "APPROVED", "category": "UTILITY",
             "parameter_format": "NAMED",
             "components": [{"type": "BODY", "text": "Ol\u00e1 {{first_name}}, responda para continuar."}]}
RECEIPT = {"name": "receipt_pdf", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
           "components": [{"type": "HEADER", "format": "DOCUMENT"}, {"type": "BODY", "text": "Receipt {{1}}."}]}
PAUSED = {"name": "spring_sale", "language": "en_US", "status": "PAUSED", "category": "MARKETING",
          "components": [{"type": "BODY", "text": "Sale!"}]}
HOSTILE = [None, "x", {"name": "Bad Name!", "language": "en_US", "components": [{"type": "BODY", "text": "a"}]},
           {"name": "no_body", "language": "en_US", "components": [{"type": "FOOTER", "text": "a"}]},
           {"name": "evil", "language": "en_US", "components": [{"type": "BODY", "text": "a\x1b[2J"}]}]


@pytest.fixture(autouse=True)
def _real_graph(monkeypatch):
    """Graph itself (faked by `responses`), and the account's credentials as env settings (the
    Chalice test client runs routes in a deployed stage, where secrets are not defaulted)."""
    monkeypatch.delenv("META_GRAPH_BASE_URL", raising=False)
    monkeypatch.setenv("WHATSAPP_TOKEN", "wa-test-token")
    monkeypatch.setenv("WHATSAPP_BUSINESS_ACCOUNT_ID", WABA)


@pytest.fixture
def closed(inbox):
    """A WhatsApp conversation whose customer last wrote two days ago (the window is closed)."""
    inbox.add_account("whatsapp", PHONE, "Demo number")
    inbox.post_meta(whatsapp_delivery("wamid.T1", "447700900001", (int(time.time() * 1000) - 2 * DAY) // 1000, "hola"))
    inbox.process()
    [conversation] = inbox.conversations(channel="whatsapp")
    return inbox, conversation["id"]


def _graph_lists(*pages):
    """Graph's list, page by page (chosen by the `after` cursor): each but the last names a next
    page, by a URL we must not follow as given, and its cursor."""
    def answer(request):
        after = parse_qs(urlparse(request.url).query).get("after", ["cursor-1"])[0]
        number = int(after[len("cursor"):]) + 1
        paging = {"cursors": {"before": f"b{number}", "after": f"cursor{number}"}}
        if number < len(pages) - 1:
            paging["next"] = "https://evil.example/steal"
        return 200, {}, json.dumps({"data": pages[number], "paging": paging})

    responses.add_callback(responses.GET, LIST_URL, callback=answer)


@responses.activate
def test_the_route_lists_approved_templates_from_every_page_once_per_few_minutes(closed):
    from chalicelib.runtime import runtime

    inbox, conversation_id = closed
    _graph_lists([ORDER_UPDATE, PAUSED, *HOSTILE], [FOLLOW_UP, RECEIPT])
    status, body = inbox.call("GET", f"/api/conversations/{conversation_id}/templates")
    assert status == 200, body
    items = {(t["name"], t["language"]): t for t in body["items"]}
    assert set(items) == {("order_update", "en_US"), ("follow_up", "pt_PT"), ("receipt_pdf", "en_US")}
    order = items[("order_update", "en_US")]
    assert order == {"name": "order_update", "language": "en_US", "category": "UTILITY", "header": "Order {{1}}",
                     "body": "Hi {{1}}, order {{2}} arrives {{3}}.", "footer": "Acme Coffee",
                     "header_params": ["1"], "body_params": ["1", "2", "3"], "sendable": True, "why_not": None}
    assert items[("follow_up", "pt_PT")]["body_params"] == ["first_name"]
    assert items[("receipt_pdf", "en_US")]["sendable"] is False
    assert "document" in items[("receipt_pdf", "en_US")]["why_not"]
    first, second = responses.calls
    assert all(c.request.url.startswith(LIST_URL) for c in responses.calls)
    assert parse_qs(urlparse(first.request.url).query)["status"] == ["APPROVED"]
    assert parse_qs(urlparse(second.request.url).query)["after"] == ["cursor0"]
    assert first.request.headers["Authorization"] == "Bearer wa-test-token"
    assert "wa-test-token" not in first.request.url

    assert inbox.call("GET", f"/api/conversations/{conversation_id}/templates")[0] == 200
    assert len(responses.calls) == 2  # cached
    later = time.time() + 301
    runtime.use_clock(lambda: later)
    try:
        assert inbox.call("GET", f"/api/conversations/{conversation_id}/templates")[0] == 200
    finally:
        runtime.use_clock(None)
    assert len(responses.calls) == 4  # the cache lasts a few minutes, not for ever


@responses.activate
def test_a_graph_refusal_is_a_503_naming_the_reason_without_the_token(closed):
    inbox, conversation_id = closed
    responses.get(LIST_URL, status=401, json={"error": {"code": 190, "message": "expired"}})
    status, body = inbox.call("GET", f"/api/conversations/{conversation_id}/templates")
    assert status == 503 and body["Code"] == "TemplatesUnavailable"
    assert "HTTP 401 (code 190)" in body["Message"] and "wa-test-token" not in json.dumps(body)


def test_templates_of_a_conversation_outside_whatsapp_are_422_and_of_no_conversation_404(inbox):
    inbox.add_account("messenger", PAGE, "Demo page")
    inbox.post_meta(page_delivery(messenger("m-t1", "psid-t", int(time.time() * 1000), "hi")))
    inbox.process()
    [conversation] = inbox.conversations()
    status, body = inbox.call("GET", f"/api/conversations/{conversation['id']}/templates")
    assert status == 422 and body["reason"] == "template_not_supported"
    assert inbox.call("GET", "/api/conversations/c_nope/templates")[0] == 404


@responses.activate
def test_a_template_filled_with_variables_is_sent_with_its_components_and_shown_as_read(closed):
    inbox, conversation_id = closed
    _graph_lists([ORDER_UPDATE, FOLLOW_UP])
    request = {"client_id": "tpl-1", "template": {"name": "order_update", "language": "en_US",
                                                  "variables": {"header": ["A-7"], "body": ["Zo\u00eb", "A-7", "Friday"]}}}
    status, shown = inbox.call("POST", f"/api/conversations/{conversation_id}/messages", request)
    assert status == 202, shown
    assert shown["text"] == "Order A-7\n\nHi Zo\u00eb, order A-7 arrives Friday.\n\nAcme Coffee"
    assert shown["type"] == "template"
    assert inbox.call("POST", f"/api/conversations/{conversation_id}/messages", request)[0] == 200  # same click
    sent = send_queued_whatsapp_reply()
    assert sent["type"] == "template" and sent["to"] == "447700900001"
    assert sent["template"] == {"name": "order_update", "language": {"code": "en_US"}, "components": [
        {"type": "header", "parameters": [{"type": "text", "text": "A-7"}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Zo\u00eb"}, {"type": "text", "text": "A-7"},
                                        {"type": "text", "text": "Friday"}]}]}
    thread = inbox.messages(conversation_id)
    assert thread[-1]["text"].startswith("Order A-7") and thread[-1]["direction"] == "out"


@responses.activate
def test_named_placeholders_are_sent_by_name(closed):
    inbox, conversation_id = closed
    _graph_lists([FOLLOW_UP])
    status, shown = inbox.call("POST", f"/api/conversations/{conversation_id}/messages", {
        "client_id": "tpl-n", "template": {"name": "follow_up", "language": "pt_PT", "variables": {"body": ["Ana"]}}})
    assert status == 202 and shown["text"] == "Ol\u00e1 Ana, responda para continuar."
    assert send_queued_whatsapp_reply()["template"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Ana"}]}]


@responses.activate
@pytest.mark.parametrize("template, text, status, reason", [
    ({"name": "spring_sale", "language": "en_US", "variables": {}}, None, 422, "template_not_approved"),
    ({"name": "order_update", "language": "pt_PT", "variables": {}}, None, 422, "template_not_approved"),
    ({"name": "order_update", "language": "en_US", "variables": {"body": ["a", "b", "c"]}}, None, 422, "bad_template"),
    ({"name": "order_update", "language": "en_US", "variables": {"header": ["x"], "body": ["a", "b"]}}, None, 422,
     "bad_template"),
    ({"name": "order_update", "language": "en_US", "variables": {"header": ["x"], "body": ["a", "b\x00", "c"]}}, None,
     422, "bad_template"),
    ({"name": "order_update", "language": "en_US", "variables": {"header": ["x"], "body": ["a", " ", "c"]}}, None,
     422, "bad_template"),
    ({"name": "order_update", "language": "en_US", "variables": {"header": ["x" * 1025], "body": ["a", "b", "c"]}},
     None, 422, "bad_template"),
    ({"name": "order_update", "language": "en_US", "variables": {"footer": []}}, None, 422, "bad_template"),
    ({"name": "order_update", "language": "en_US", "variables": ["a"]}, None, 422, "bad_template"),
    ({"name": "order_update", "language": "en_US", "variables": {}, "components": []}, None, 422, "bad_template"),
    ({"name": "receipt_pdf", "language": "en_US", "variables": {"body": ["A-1"]}}, None, 422, "template_not_sendable"),
    ({"name": "order_update", "language": "en_US", "variables": {"header": ["x"], "body": ["a", "b", "c"]}}, "hi",
     400, None),
])
def test_a_template_the_account_cannot_send_as_asked_is_refused_with_the_reason(closed, template, text, status,
                                                                                   reason):
    inbox, conversation_id = closed
    _graph_lists([ORDER_UPDATE, RECEIPT, PAUSED])
    body = {"client_id": "tpl-bad", "template": template}
    if text is not None:
        body["text"] = text
    answer_status, answer = inbox.call("POST", f"/api/conversations/{conversation_id}/messages", body)
    assert answer_status == status, answer
    if reason:
        assert answer["reason"] == reason
    assert [m["direction"] for m in inbox.messages(conversation_id)] == ["in"]  # nothing stored


def test_the_sandbox_serves_templates_offline_to_the_right_token_only(monkeypatch):
    from chalicelib.local import sandbox
    from chalicelib.outbound import templates

    server, env = sandbox.start(None, secrets={"WHATSAPP_TOKEN": "sandbox-wa-token"}.get)
    try:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        secrets = {"WHATSAPP_TOKEN": "sandbox-wa-token", "WHATSAPP_BUSINESS_ACCOUNT_ID": sandbox.WABA_ID}
        found = templates.approved("sandbox-phone", secrets.get, requests.Session())
        assert {(t["name"], t["language"]) for t in found} == {
            ("order_update", "en_US"), ("follow_up", "en_US"), ("follow_up", "pt_PT"), ("receipt_pdf", "en_US")}
        assert [t["sendable"] for t in found if t["name"] == "receipt_pdf"] == [False]
        with pytest.raises(templates.Unavailable, match="HTTP 401"):
            templates.approved("other-phone", dict(secrets, WHATSAPP_TOKEN="wrong").get, requests.Session())
        with pytest.raises(templates.Unavailable, match="WHATSAPP_BUSINESS_ACCOUNT_ID"):
            templates.approved("third-phone", dict(secrets, WHATSAPP_BUSINESS_ACCOUNT_ID=None).get, requests.Session())
    finally:
        server.close()


# --- status changes Meta announces (message_template_status_update) ---------------------------------


def _template_status(event, name="order_update", language="en_US", waba=WABA, **extra):
    value = {"event": event, "message_template_id": 594425479261596, "message_template_name": name,
             "message_template_language": language, "reason": None, **extra}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": waba, "time": 1_780_000_000, "changes": [{"field": "message_template_status_update",
                                                                        "value": value}]}]}


def _send_order_update(inbox, conversation_id, client_id):
    return inbox.call("POST", f"/api/conversations/{conversation_id}/messages", {
        "client_id": client_id, "template": {"name": "order_update", "language": "en_US",
                                             "variables": {"header": ["A-7"], "body": ["Zo\u00eb", "A-7", "Friday"]}}})


@responses.activate
def test_a_paused_template_is_refused_at_once_with_metas_reason_not_minutes_later(closed):
    inbox, conversation_id = closed
    _graph_lists([ORDER_UPDATE, FOLLOW_UP])  # Meta's list may lag the webhook: it still lists it
    assert inbox.call("GET", f"/api/conversations/{conversation_id}/templates")[0] == 200  # now cached
    pause = _template_status("PAUSED", other_info={"title": "FIRST_PAUSE",
                                                   "description": "Your template has been paused for 3 hours"})
    assert inbox.post_meta(pause).status_code == 200
    inbox.process()
    status, body = _send_order_update(inbox, conversation_id, "tpl-p1")
    assert status == 422 and body["reason"] == "template_not_sendable", body
    assert "Meta paused it at 2026-05-28T20:26Z: FIRST_PAUSE; Your template has been paused for 3 hours" in body["Message"]
    listed = {t["name"]: t for t in inbox.call("GET", f"/api/conversations/{conversation_id}/templates")[1]["items"]}
    assert listed["order_update"]["sendable"] is False and listed["follow_up"]["sendable"] is True
    assert len(responses.calls) == 2  # the stamp made the cache stale once, not every time after

    assert inbox.post_meta(_template_status("APPROVED")).status_code == 200  # reinstated
    inbox.process()
    assert _send_order_update(inbox, conversation_id, "tpl-p2")[0] == 202


@responses.activate
def test_a_disabled_template_gone_from_metas_list_is_not_approved_and_others_accounts_stamps_change_nothing(closed):
    inbox, conversation_id = closed
    _graph_lists([ORDER_UPDATE])
    assert inbox.call("GET", f"/api/conversations/{conversation_id}/templates")[0] == 200
    assert inbox.post_meta(_template_status("DISABLED", waba="300000000000099")).status_code == 200
    inbox.process()
    assert _send_order_update(inbox, conversation_id, "tpl-d0")[0] == 202
    assert len(responses.calls) == 1  # another business account's change: the cache stands
    responses.replace(responses.GET, LIST_URL, json={"data": [FOLLOW_UP]})
    assert inbox.post_meta(_template_status("DISABLED")).status_code == 200
    inbox.process()
    status, body = _send_order_update(inbox, conversation_id, "tpl-d1")
    assert status == 422 and body["reason"] == "template_not_approved", body


@pytest.mark.parametrize("value, entry_id", [
    ({"event": "PAUSED", "message_template_name": "Bad Name!", "message_template_language": "en_US"}, WABA),
    ({"event": "PAUSED", "message_template_name": "order_update"}, WABA),
    ({"event": "<b>", "message_template_name": "order_update", "message_template_language": "en_US"}, WABA),
    ({"event": "PAUSED", "message_template_name": "order_update", "message_template_language": "en_US"}, "../x"),
])
def test_a_malformed_template_status_is_quarantined_not_applied(value, entry_id):
    from chalicelib.channels.base import ParseProblem
    from chalicelib.channels.meta import MetaAdapter

    delivery = {"object": "whatsapp_business_account",
                "entry": [{"id": entry_id, "changes": [{"field": "message_template_status_update", "value": value}]}]}
    [event] = list(MetaAdapter().parse(delivery, {}))
    assert isinstance(event, ParseProblem)
