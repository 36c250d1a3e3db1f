"""Meta webhooks (one endpoint, /webhooks/meta): Messenger, Instagram and WhatsApp.

Handshake: hub.mode/hub.verify_token/hub.challenge. Verification: X-Hub-Signature-256 is
`sha256=<hex HMAC-SHA256(app secret, raw body)>`. Routing is by the platform's own ids:
`entry[].id` (page / Instagram account) and `metadata.phone_number_id` (WhatsApp).
Timestamps: `messaging[].timestamp` is in milliseconds, WhatsApp's are seconds as strings.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from chalicelib.channels import signing
from chalicelib.channels.base import (
    ChannelAdapter,
    ContactRef,
    Event,
    IgnoredEvent,
    MessageEvent,
    ParseProblem,
    RemoveEvent,
    StatusEvent,
    WebhookRejected,
    WebhookReply,
    WebhookRequest,
    as_int,
    as_list,
    optional_str,
    require_str,
)
from chalicelib.config import SecretLookup

OBJECT_CHANNEL = {"page": "messenger", "instagram": "instagram", "whatsapp_business_account": "whatsapp"}
WHATSAPP_MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")


class MetaAdapter(ChannelAdapter):
    name = "meta"
    channels = ("messenger", "instagram", "whatsapp")

    def handshake(self, request: WebhookRequest, secrets: SecretLookup) -> WebhookReply:
        expected = secrets("META_VERIFY_TOKEN")
        mode = request.query.get("hub.mode")
        challenge = request.query.get("hub.challenge")
        token = request.query.get("hub.verify_token")
        if mode == "subscribe" and challenge is not None and expected and signing.same(expected, token):
            return WebhookReply(200, challenge, "text/plain")
        return WebhookReply(403, "verification failed", "text/plain")

    def verify(self, request: WebhookRequest, secrets: SecretLookup) -> None:
        secret = secrets("META_APP_SECRET")
        if not secret:
            raise WebhookRejected(503, "webhook secret is not configured")
        header = request.header("X-Hub-Signature-256")
        if not header or not header.startswith("sha256="):
            raise WebhookRejected(401, "missing X-Hub-Signature-256")
        expected = "sha256=" + signing.hmac_sha256_hex(secret, request.raw_body)
        if not signing.same(expected, header.strip().lower()):
            raise WebhookRejected(401, "invalid X-Hub-Signature-256")

    def signed_headers(self, raw_body: bytes, secrets: SecretLookup) -> Dict[str, str]:
        return {"X-Hub-Signature-256": "sha256=" + signing.hmac_sha256_hex(secrets("META_APP_SECRET") or "", raw_body)}

    demo_accounts = (
        ("messenger", "100000000000001", "Acme Coffee (Facebook Page)"),
        ("instagram", "17841400000000001", "@acmecoffee (Instagram)"),
        ("whatsapp", "200000000000001", "Acme Coffee +1 555 0100 (WhatsApp)"),
    )

    def demo_deliveries(self, now_ms: int) -> List[Any]:
        return _demo_deliveries(now_ms)

    def split(self, payload: Any) -> List[Any]:
        if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
            return [payload]
        return [dict(payload, entry=[entry]) for entry in payload["entry"]]

    def parse(self, payload: Any, context: Mapping[str, str]) -> Iterator[Event]:
        if not isinstance(payload, dict):
            yield ParseProblem("meta", "delivery is not a JSON object", payload)
            return
        obj = payload.get("object")
        channel = OBJECT_CHANNEL.get(obj) if isinstance(obj, str) else None
        if channel is None:
            yield ParseProblem("meta", f"unknown object {obj!r}", payload)
            return
        entries = payload.get("entry")
        if not isinstance(entries, list):
            yield ParseProblem(channel, "delivery has no entry[] list", payload)
            return
        for entry in entries:
            try:
                if channel == "whatsapp":
                    yield from _whatsapp_entry(entry)
                else:
                    yield from _page_entry(channel, entry)
            except Exception as exc:  # noqa: BLE001 - one bad entry must not sink the batch
                yield ParseProblem(channel, f"unreadable entry: {exc}", entry)


# --- Messenger / Instagram ---------------------------------------------------------------


def _page_entry(channel: str, entry: Any) -> Iterator[Event]:
    account_id = require_str(entry, "id")
    for item in as_list(entry.get("messaging")):
        try:
            yield from _messaging_item(channel, account_id, item)
        except Exception as exc:  # noqa: BLE001
            yield ParseProblem(channel, f"unreadable messaging item: {exc}", item, account_id)
    for change in as_list(entry.get("changes")):
        try:
            yield from _page_change(channel, account_id, change)
        except Exception as exc:  # noqa: BLE001
            yield ParseProblem(channel, f"unreadable change: {exc}", change, account_id)


def _messaging_item(channel: str, account_id: str, item: Any) -> Iterator[Event]:
    sender = require_str(item.get("sender"), "id")
    recipient = require_str(item.get("recipient"), "id")
    if "message" in item:
        message = item["message"]
        mid = require_str(message, "mid")
        sent_at = as_int(item.get("timestamp"))
        echo = message.get("is_echo") is True or sender == account_id
        customer = recipient if echo else sender
        event = MessageEvent(
            channel=channel,
            account_id=account_id,
            platform_message_id=mid,
            thread_key=customer,
            contact=ContactRef(customer),
            direction="out" if echo else "in",
            sent_at_ms=sent_at,
            text=optional_str(message, "text"),
            msg_type=_messaging_type(message),
            attachments=tuple(_messaging_attachments(message)),
            reply_to=optional_str(message.get("reply_to"), "mid"),
            raw=item,
        )
        if message.get("is_deleted") is True:
            yield RemoveEvent(channel, account_id, mid, sent_at, event)
        else:
            yield event
    elif "postback" in item:
        postback = item["postback"] if isinstance(item["postback"], dict) else {}
        sent_at = as_int(item.get("timestamp"))
        mid = optional_str(postback, "mid") or f"postback:{sender}:{sent_at}"
        yield MessageEvent(
            channel=channel,
            account_id=account_id,
            platform_message_id=mid,
            thread_key=sender,
            contact=ContactRef(sender),
            direction="in",
            sent_at_ms=sent_at,
            text=optional_str(postback, "title") or optional_str(postback, "payload"),
            msg_type="postback",
            raw=item,
        )
    elif "delivery" in item:
        delivery = item["delivery"] if isinstance(item["delivery"], dict) else {}
        at = as_int(delivery.get("watermark", item.get("timestamp")))
        for mid in as_list(delivery.get("mids")):
            if isinstance(mid, str):
                yield StatusEvent(channel, account_id, mid, "delivered", at)
    else:
        kinds = sorted(k for k in item if k not in ("sender", "recipient", "timestamp"))
        yield IgnoredEvent(channel, f"messaging event {','.join(kinds) or 'empty'} is not inbox material")


def _messaging_type(message: Dict[str, Any]) -> str:
    attachments = as_list(message.get("attachments"))
    if message.get("text") is None and attachments and isinstance(attachments[0], dict):
        return str(attachments[0].get("type") or "attachment")
    return "text"


def _messaging_attachments(message: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    for attachment in as_list(message.get("attachments")):
        if not isinstance(attachment, dict):
            continue
        payload = attachment.get("payload") if isinstance(attachment.get("payload"), dict) else {}
        found: Dict[str, Any] = {"type": str(attachment.get("type") or "file")}
        if isinstance(payload.get("url"), str):
            found["url"] = payload["url"]
        for key in ("title", "sticker_id"):
            if payload.get(key) is not None:
                found[key] = payload[key]
        if isinstance(payload.get("coordinates"), dict):
            found["coordinates"] = payload["coordinates"]
        yield found


def _page_change(channel: str, account_id: str, change: Any) -> Iterator[Event]:
    field = change.get("field") if isinstance(change, dict) else None
    yield IgnoredEvent(channel, f"change field {field!r} is not handled")


# --- WhatsApp --------------------------------------------------------------------------------


def _whatsapp_entry(entry: Any) -> Iterator[Event]:
    for change in as_list(entry.get("changes") if isinstance(entry, dict) else None):
        try:
            yield from _whatsapp_change(change)
        except Exception as exc:  # noqa: BLE001
            yield ParseProblem("whatsapp", f"unreadable change: {exc}", change)


def _whatsapp_change(change: Any) -> Iterator[Event]:
    value = change.get("value") if isinstance(change, dict) else None
    if not isinstance(value, dict):
        raise ValueError("change has no value object")
    account_id = require_str(value.get("metadata"), "phone_number_id")
    names: Dict[str, Tuple[Optional[str], Optional[str]]] = {}
    for contact in as_list(value.get("contacts")):
        if isinstance(contact, dict) and optional_str(contact, "wa_id"):
            profile = contact.get("profile") if isinstance(contact.get("profile"), dict) else {}
            names[str(contact["wa_id"])] = (optional_str(profile, "name"), None)
    for message in as_list(value.get("messages")):
        try:
            yield _whatsapp_message(account_id, message, names)
        except Exception as exc:  # noqa: BLE001
            yield ParseProblem("whatsapp", f"unreadable message: {exc}", message, account_id)
    for status in as_list(value.get("statuses")):
        try:
            yield _whatsapp_status(account_id, status)
        except Exception as exc:  # noqa: BLE001
            yield ParseProblem("whatsapp", f"unreadable status: {exc}", status, account_id)
    if not value.get("messages") and not value.get("statuses"):
        field = change.get("field")
        yield IgnoredEvent("whatsapp", f"change field {field!r} has no messages or statuses")


def _whatsapp_message(account_id: str, message: Any, names: Dict[str, Tuple[Optional[str], Optional[str]]]) -> MessageEvent:
    wamid = require_str(message, "id")
    sender = require_str(message, "from")
    sent_at = as_int(message.get("timestamp")) * 1000
    msg_type = optional_str(message, "type") or "unknown"
    text, attachments = _whatsapp_content(msg_type, message)
    context = message.get("context") if isinstance(message.get("context"), dict) else {}
    reply_to = optional_str(context, "id")
    if msg_type == "reaction" and isinstance(message.get("reaction"), dict):
        reply_to = optional_str(message["reaction"], "message_id") or reply_to
    name = names.get(sender, (None, None))[0]
    return MessageEvent(
        channel="whatsapp",
        account_id=account_id,
        platform_message_id=wamid,
        thread_key=sender,
        contact=ContactRef(sender, display_name=name, handle="+" + sender if sender.isdigit() else sender),
        direction="in",
        sent_at_ms=sent_at,
        text=text,
        msg_type=msg_type,
        attachments=tuple(attachments),
        reply_to=reply_to,
        raw=message,
    )


def _whatsapp_content(msg_type: str, message: Dict[str, Any]) -> Tuple[Optional[str], List[Dict[str, Any]]]:
    """Text plus attachments for every WhatsApp message type; unknown types keep their body."""
    body = message.get(msg_type) if isinstance(message.get(msg_type), dict) else {}
    if msg_type == "text":
        return optional_str(body, "body"), []
    if msg_type in WHATSAPP_MEDIA_TYPES:
        media = {"type": msg_type}
        for key in ("id", "mime_type", "sha256", "filename", "animated", "voice", "url"):
            if body.get(key) is not None:
                media["media_id" if key == "id" else key] = body[key]
        return optional_str(body, "caption"), [media]
    if msg_type == "location":
        location = {"type": "location"}
        for key in ("latitude", "longitude", "name", "address", "url"):
            if body.get(key) is not None:
                location[key] = body[key]
        label = " ".join(str(body[k]) for k in ("name", "address") if body.get(k))
        return label or None, [location]
    if msg_type == "contacts":
        cards = [c for c in as_list(message.get("contacts")) if isinstance(c, dict)]
        names = [str((c.get("name") or {}).get("formatted_name") or "") for c in cards if isinstance(c.get("name"), dict)]
        return (", ".join(n for n in names if n) or None), [{"type": "contacts", "contacts": cards}]
    if msg_type == "interactive":
        kind = optional_str(body, "type") or ""
        reply = body.get(kind) if isinstance(body.get(kind), dict) else {}
        text = optional_str(reply, "title") or optional_str(reply, "body") or optional_str(reply, "response_json")
        return text, [{"type": "interactive", "interactive_type": kind, "reply": reply}]
    if msg_type == "button":
        return optional_str(body, "text"), [{"type": "button", "payload": body.get("payload")}]
    if msg_type == "reaction":
        return optional_str(body, "emoji"), []
    # order, system, unsupported, unknown...: keep the type and the raw content faithfully.
    return None, [{"type": msg_type, "content": message.get(msg_type), "errors": message.get("errors")}]


def _whatsapp_status(account_id: str, status: Any) -> StatusEvent:
    wamid = require_str(status, "id")
    state = require_str(status, "status")
    at = as_int(status.get("timestamp")) * 1000
    error = None
    errors = as_list(status.get("errors"))
    if errors and isinstance(errors[0], dict):
        error = json.dumps({k: errors[0].get(k) for k in ("code", "title", "message") if k in errors[0]})
    return StatusEvent("whatsapp", account_id, wamid, state, at, error)


# --- demo traffic (make demo) --------------------------------------------------------------------


def _demo_deliveries(now_ms: int) -> List[Any]:
    page, instagram, phone = "100000000000001", "17841400000000001", "200000000000001"
    seconds = str(now_ms // 1000)
    return [
        {"object": "page", "entry": [{"id": page, "time": now_ms, "messaging": [
            {"sender": {"id": "6100000000000001"}, "recipient": {"id": page}, "timestamp": now_ms - 60_000,
             "message": {"mid": f"m_demo_{now_ms}_1", "text": "Hi! My order #4411 arrived cold \u2615 can you help?"}},
            {"sender": {"id": "6100000000000002"}, "recipient": {"id": page}, "timestamp": now_ms - 30_000,
             "message": {"mid": f"m_demo_{now_ms}_2", "attachments": [
                 {"type": "image", "payload": {"url": "https://example.invalid/receipt.jpg"}}]}},
        ]}]},
        {"object": "instagram", "entry": [{"id": instagram, "time": now_ms, "messaging": [
            {"sender": {"id": "1780000000000001"}, "recipient": {"id": instagram}, "timestamp": now_ms - 20_000,
             "message": {"mid": f"ig_demo_{now_ms}_1", "text": "Do you ship oat milk to Lisbon?"}},
        ]}]},
        {"object": "whatsapp_business_account", "entry": [{"id": "300000000000001", "changes": [{"field": "messages",
            "value": {"messaging_product": "whatsapp",
                      "metadata": {"display_phone_number": "15550100", "phone_number_id": phone},
                      "contacts": [{"profile": {"name": "Zo\u00eb Caf\u00e9"}, "wa_id": "351910000001"}],
                      "messages": [
                          {"from": "351910000001", "id": f"wamid.demo{now_ms}1", "timestamp": seconds,
                           "type": "text", "text": {"body": "Ol\u00e1! Is the Lisbon store open on Sunday?"}},
                          {"from": "351910000001", "id": f"wamid.demo{now_ms}2", "timestamp": seconds,
                           "type": "location", "location": {"latitude": 38.7223, "longitude": -9.1393,
                                                            "name": "Rossio", "address": "Lisbon"}},
                      ]}}]}]},
    ]
