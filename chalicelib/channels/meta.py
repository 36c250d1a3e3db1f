"""Meta webhooks (one endpoint, /webhooks/meta): Messenger, Instagram, Facebook Page comments
and WhatsApp.

Handshake: hub.mode/hub.verify_token/hub.challenge. Verification: X-Hub-Signature-256 is
`sha256=<hex HMAC-SHA256(app secret, raw body)>`. Routing is by the platform's own ids:
`entry[].id` (page / Instagram account) and `metadata.phone_number_id` (WhatsApp).

What arrives where (one `object` per POST, many `entry[]`, possibly for several accounts):
- `object=page`: `messaging[]` (and `standby[]`) are Messenger DMs (channel "messenger");
  `changes[]` with `field: "feed"` and `value.item: "comment"` are Page comments (channel
  "facebook", one conversation per post and author; verbs add / edited / remove).
- `object=instagram`: `messaging[]` are Instagram DMs; `changes[]` with `field: "comments"` (or
  `live_comments`) are comments on our media (one conversation per media and author).
- `object=whatsapp_business_account`: `changes[].value` holds `messages[]`, `statuses[]` and
  (coexistence) `message_echoes[]`.

Timestamps: `messaging[].timestamp` is in milliseconds; `changes[]` values, `entry.time` for
changes and WhatsApp's are seconds (WhatsApp's as strings). We are liberal: every timestamp is
read by magnitude (seconds below 1e11, milliseconds above), and ISO-8601 strings are accepted.

`parse` never raises: each entry, messaging item, change, message and status is read on its
own, and whatever cannot be understood becomes a ParseProblem beside its valid neighbours.
"""
from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from chalicelib.channels import signing
from chalicelib.channels.base import (
    ChannelAdapter,
    ContactRef,
    EditEvent,
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
    split_list,
    require_secret,
)
from chalicelib.config import SecretLookup

OBJECT_CHANNEL = {"page": "messenger", "instagram": "instagram", "whatsapp_business_account": "whatsapp"}
WHATSAPP_MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
INSTAGRAM_COMMENT_FIELDS = ("comments", "live_comments")
FEED_ADD_VERBS = ("add",)
FEED_EDIT_VERBS = ("edited", "edit", "update")
FEED_REMOVE_VERBS = ("remove", "delete")

# Timestamps below this are seconds, above it milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
_SECONDS_BELOW = 100_000_000_000
# Nothing real happens after the year 3000: larger values are garbage, not times.
_LATEST_MS = 32_503_680_000_000


class MetaAdapter(ChannelAdapter):
    name = "meta"
    channels = ("messenger", "instagram", "whatsapp", "facebook")

    def handshake(self, request: WebhookRequest, secrets: SecretLookup) -> WebhookReply:
        expected = secrets("META_VERIFY_TOKEN")
        mode = request.query.get("hub.mode")
        challenge = request.query.get("hub.challenge")
        token = request.query.get("hub.verify_token")
        if mode == "subscribe" and challenge is not None and expected and signing.same(expected, token):
            return WebhookReply(200, challenge, "text/plain")
        return WebhookReply(403, "verification failed", "text/plain")

    def verify(self, request: WebhookRequest, secrets: SecretLookup) -> None:
        secret = require_secret(secrets, "META_APP_SECRET")
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
        ("facebook", "100000000000001", "Acme Coffee (Page comments)"),
        ("instagram", "17841400000000001", "@acmecoffee (Instagram)"),
        ("whatsapp", "200000000000001", "Acme Coffee +1 555 0100 (WhatsApp)"),
    )

    def demo_deliveries(self, now_ms: int) -> List[Any]:
        return _demo_deliveries(now_ms)

    def split(self, payload: Any) -> List[Any]:
        return split_list(payload, "entry")

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


# --- shared helpers ------------------------------------------------------------------------------


def epoch_ms(value: Any) -> int:
    """A platform time as epoch milliseconds: seconds or milliseconds (int, float or numeric
    string, told apart by magnitude) or an ISO-8601 string. ValueError for anything else."""
    if isinstance(value, str) and value.strip() and not value.strip().lstrip("-").isdigit():
        try:
            number: float = float(value.strip())
        except ValueError:
            parsed = datetime.fromisoformat(value.strip())
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            number = parsed.timestamp() * 1000
            if not 0 <= number <= _LATEST_MS:
                raise ValueError(f"implausible time: {value!r}")
            return int(number)
    elif isinstance(value, float) and not isinstance(value, bool):
        number = value
    else:
        number = as_int(value)
    if not math.isfinite(number):
        raise ValueError(f"not a time: {value!r}")
    ms = number * 1000 if abs(number) < _SECONDS_BELOW else number
    if not 0 <= ms <= _LATEST_MS:
        raise ValueError(f"implausible time: {value!r}")
    return int(ms)


def _optional_ms(value: Any) -> Optional[int]:
    if value is None:
        return None
    try:
        return epoch_ms(value)
    except (ValueError, TypeError, OverflowError):
        return None


def _first_time(*candidates: Any) -> int:
    """The first readable time among the candidates; the current time as a last resort (a
    comment without any time is still a comment)."""
    for candidate in candidates:
        found = _optional_ms(candidate)
        if found is not None:
            return found
    return int(time.time() * 1000)


def _object(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _participant(value: Any) -> str:
    """A messaging participant: `id` (PSID / IGSID / page id), or `user_ref` (chat plugin)."""
    found = optional_str(value, "id") or optional_str(value, "user_ref")
    if not found:
        raise ValueError("participant has no id")
    return found


# --- Messenger / Instagram / Facebook Page -------------------------------------------------------


def _page_entry(channel: str, entry: Any) -> Iterator[Event]:
    if not isinstance(entry, dict):
        raise ValueError("entry is not an object")
    account_id = require_str(entry, "id")
    entry_time = _optional_ms(entry.get("time"))
    items = as_list(entry.get("messaging")) + as_list(entry.get("standby"))
    changes = as_list(entry.get("changes"))
    if not changes and "field" in entry and "value" in entry:
        changes = [{"field": entry.get("field"), "value": entry.get("value")}]  # un-nested variant
    for item in items:
        try:
            yield from _messaging_item(channel, account_id, item)
        except Exception as exc:  # noqa: BLE001
            yield ParseProblem(channel, f"unreadable messaging item: {exc}", item, account_id)
    for change in changes:
        try:
            yield from _page_change(channel, account_id, change, entry_time)
        except Exception as exc:  # noqa: BLE001
            yield ParseProblem(_change_channel(channel, change), f"unreadable change: {exc}", change, account_id)
    if not items and not changes:
        yield IgnoredEvent(channel, "entry has no messaging or changes")


def _change_channel(channel: str, change: Any) -> str:
    if channel == "messenger" and isinstance(change, dict) and change.get("field") == "feed":
        return "facebook"
    return channel


def _messaging_item(channel: str, account_id: str, item: Any) -> Iterator[Event]:
    if not isinstance(item, dict):
        raise ValueError("messaging item is not an object")
    sender = _participant(item.get("sender"))
    recipient = _participant(item.get("recipient"))
    echo = sender == account_id
    customer = recipient if echo else sender
    if "message" in item:
        message = item["message"]
        mid = require_str(message, "mid")
        sent_at = epoch_ms(item.get("timestamp"))
        echo = message.get("is_echo") is True or echo
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
            reply_to=optional_str(_object(message.get("reply_to")), "mid"),
            raw=item,
        )
        if message.get("is_deleted") is True:
            yield RemoveEvent(channel, account_id, mid, sent_at, event)
        else:
            yield event
    elif "message_edit" in item:
        edit = item["message_edit"]
        mid = require_str(edit, "mid")
        at = epoch_ms(item.get("timestamp"))
        event = MessageEvent(
            channel=channel, account_id=account_id, platform_message_id=mid, thread_key=customer,
            contact=ContactRef(customer), direction="out" if echo else "in", sent_at_ms=at,
            text=optional_str(edit, "text"), raw=item,
        )
        yield EditEvent(event, at)
    elif "postback" in item:
        postback = _object(item["postback"])
        sent_at = epoch_ms(item.get("timestamp"))
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
        delivery = _object(item["delivery"])
        at = epoch_ms(delivery.get("watermark", item.get("timestamp")))
        for mid in as_list(delivery.get("mids")):
            if isinstance(mid, str):
                yield StatusEvent(channel, account_id, mid, "delivered", at)
    else:
        kinds = sorted(str(k) for k in item if k not in ("sender", "recipient", "timestamp"))
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
        payload = _object(attachment.get("payload"))
        found: Dict[str, Any] = {"type": str(attachment.get("type") or "file")}
        if isinstance(payload.get("url"), str):
            found["url"] = payload["url"]
        for key in ("title", "sticker_id"):
            if payload.get(key) is not None:
                found[key] = payload[key]
        if isinstance(payload.get("coordinates"), dict):
            found["coordinates"] = payload["coordinates"]
        yield found


def _page_change(channel: str, account_id: str, change: Any, entry_time: Optional[int]) -> Iterator[Event]:
    if not isinstance(change, dict):
        raise ValueError("change is not an object")
    field = change.get("field")
    value = change.get("value")
    if channel == "messenger" and field == "feed":
        yield from _facebook_feed(account_id, value, entry_time)
    elif channel == "instagram" and field in INSTAGRAM_COMMENT_FIELDS:
        yield _instagram_comment(account_id, str(field), value, entry_time)
    elif channel == "instagram" and field == "mentions":
        # Only {media_id, comment_id}: text and author need a Graph API read we do not make yet.
        yield IgnoredEvent(channel, "instagram mention notifications carry ids only (no text or author)")
    elif isinstance(value, dict) and "sender" in value and "recipient" in value:
        # Messaging events delivered in the changes format (App Dashboard tests, some API versions).
        yield from _messaging_item(channel, account_id, value)
    else:
        yield IgnoredEvent(_change_channel(channel, change), f"change field {field!r} is not handled")


def _instagram_comment(account_id: str, field: str, value: Any, entry_time: Optional[int]) -> MessageEvent:
    """A comment on one of our media: one conversation per media and author; our own replies
    join the conversation of the comment they answer (reply_to) when it is known."""
    if not isinstance(value, dict):
        raise ValueError("comment change has no value object")
    comment_id = optional_str(value, "id") or optional_str(value, "comment_id")
    if not comment_id:
        raise ValueError("comment has no id")
    author = _object(value.get("from"))
    author_id = optional_str(author, "id") or "unknown"  # kept even when Meta leaves the author out
    username = optional_str(author, "username")
    media = _object(value.get("media"))
    media_id = optional_str(media, "id") or optional_str(value, "media_id")
    own = author_id == account_id
    return MessageEvent(
        channel="instagram",
        account_id=account_id,
        platform_message_id=comment_id,
        thread_key=f"comment:{media_id or 'unknown-media'}:{author_id}",
        contact=ContactRef(author_id, handle=username),
        direction="out" if own else "in",
        sent_at_ms=_first_time(value.get("timestamp"), value.get("created_time"), entry_time),
        text=optional_str(value, "text"),
        msg_type="live_comment" if field == "live_comments" else "text",
        thread_kind="comment",
        subject=media_id,
        reply_to=optional_str(value, "parent_id"),
        raw=value,
    )


def _facebook_feed(page_id: str, value: Any, entry_time: Optional[int]) -> Iterator[Event]:
    """Page feed changes: comments become messages (add), edits (edited) and removals (remove);
    posts, reactions, shares and the rest are not inbox material."""
    if not isinstance(value, dict):
        raise ValueError("feed change has no value object")
    item = value.get("item")
    verb = value.get("verb")
    if item != "comment":
        yield IgnoredEvent("facebook", f"feed item {item!r} ({verb!r}) is not inbox material")
        return
    comment_id = require_str(value, "comment_id")
    created = _optional_ms(value.get("created_time"))
    changed_at = max(t for t in (created, entry_time, 0) if t is not None) or _first_time()
    if verb in FEED_REMOVE_VERBS:
        author_known = bool(_feed_author(value)[0])
        post_known = bool(_post_id(value))
        message = _facebook_comment(page_id, comment_id, value, created, entry_time) if author_known and post_known else None
        yield RemoveEvent("facebook", page_id, comment_id, changed_at, message)
    elif verb in FEED_ADD_VERBS:
        yield _facebook_comment(page_id, comment_id, value, created, entry_time)
    elif verb in FEED_EDIT_VERBS:
        yield EditEvent(_facebook_comment(page_id, comment_id, value, created, entry_time), changed_at)
    else:  # hide, unhide, block, ...
        yield IgnoredEvent("facebook", f"comment verb {verb!r} is not handled")


def _post_id(value: Dict[str, Any]) -> Optional[str]:
    return optional_str(value, "post_id") or optional_str(_object(value.get("post")), "id")


def _feed_author(value: Dict[str, Any]) -> Tuple[Optional[str], Optional[str]]:
    """(id, name) of who wrote: `from {id, name}`, or the older `sender_id` / `sender_name`."""
    author = _object(value.get("from"))
    return (optional_str(author, "id") or optional_str(value, "sender_id"),
            optional_str(author, "name") or optional_str(value, "sender_name"))


def _facebook_comment(page_id: str, comment_id: str, value: Dict[str, Any], created: Optional[int],
                      entry_time: Optional[int]) -> MessageEvent:
    post_id = _post_id(value)
    if not post_id:
        raise ValueError("comment has no post_id")
    author_id, author_name = _feed_author(value)
    # Without an author (missing permission) the comment is still kept, under an "unknown" one.
    author_id = author_id or "unknown"
    parent_id = optional_str(value, "parent_id")
    text = optional_str(value, "message")
    attachments = []
    for kind in ("photo", "video"):
        url = value.get(kind)
        if isinstance(url, str) and url:
            attachments.append({"type": kind, "url": url})
    return MessageEvent(
        channel="facebook",
        account_id=page_id,
        platform_message_id=comment_id,
        thread_key=f"comment:{post_id}:{author_id}",
        contact=ContactRef(author_id, display_name=author_name),
        direction="out" if author_id == page_id else "in",
        sent_at_ms=created if created is not None else _first_time(entry_time),
        text=text,
        msg_type="text" if text or not attachments else attachments[0]["type"],
        attachments=tuple(attachments),
        thread_kind="comment",
        subject=post_id,
        reply_to=parent_id if parent_id and parent_id != post_id else None,
        raw=value,
    )


# --- WhatsApp --------------------------------------------------------------------------------


def _whatsapp_entry(entry: Any) -> Iterator[Event]:
    if not isinstance(entry, dict):
        raise ValueError("entry is not an object")
    changes = as_list(entry.get("changes"))
    if not changes:
        yield IgnoredEvent("whatsapp", "entry has no changes")
    for change in changes:
        try:
            yield from _whatsapp_change(change)
        except Exception as exc:  # noqa: BLE001
            yield ParseProblem("whatsapp", f"unreadable change: {exc}", change)


def _whatsapp_change(change: Any) -> Iterator[Event]:
    value = change.get("value") if isinstance(change, dict) else None
    if not isinstance(value, dict):
        raise ValueError("change has no value object")
    messages, statuses, echoes = (as_list(value.get(k)) for k in ("messages", "statuses", "message_echoes"))
    if not messages and not statuses and not echoes:
        yield IgnoredEvent("whatsapp", f"change field {change.get('field')!r} has no messages or statuses")
        return
    account_id = require_str(value.get("metadata"), "phone_number_id")
    names: Dict[str, Optional[str]] = {}
    for contact in as_list(value.get("contacts")):
        wa_id = optional_str(contact, "wa_id")
        if wa_id:
            names[wa_id] = optional_str(_object(contact.get("profile")), "name")
    for message in messages:
        try:
            yield _whatsapp_message(account_id, message, names)
        except Exception as exc:  # noqa: BLE001
            yield ParseProblem("whatsapp", f"unreadable message: {exc}", message, account_id)
    for echo in echoes:
        try:
            yield _whatsapp_message(account_id, echo, names, echo=True)
        except Exception as exc:  # noqa: BLE001
            yield ParseProblem("whatsapp", f"unreadable message echo: {exc}", echo, account_id)
    for status in statuses:
        try:
            yield _whatsapp_status(account_id, status)
        except Exception as exc:  # noqa: BLE001
            yield ParseProblem("whatsapp", f"unreadable status: {exc}", status, account_id)


def _whatsapp_message(account_id: str, message: Any, names: Dict[str, Optional[str]], echo: bool = False) -> MessageEvent:
    """An inbound message, or (echo) one the business sent from the WhatsApp Business app."""
    wamid = require_str(message, "id")
    customer = require_str(message, "to" if echo else "from").lstrip("+")
    sent_at = epoch_ms(message.get("timestamp"))
    msg_type = optional_str(message, "type") or "unknown"
    text, attachments = _whatsapp_content(msg_type, message)
    reply_to = optional_str(_object(message.get("context")), "id")
    if msg_type == "reaction":
        reply_to = optional_str(_object(message.get("reaction")), "message_id") or reply_to
    name = names.get(customer)
    if name is None and len(names) == 1 and not echo:
        name = next(iter(names.values()))  # the profile of the only contact (ids and numbers can differ)
    return MessageEvent(
        channel="whatsapp",
        account_id=account_id,
        platform_message_id=wamid,
        thread_key=customer,
        contact=ContactRef(customer, display_name=name, handle="+" + customer if customer.isdigit() else customer),
        direction="out" if echo else "in",
        sent_at_ms=sent_at,
        text=text,
        msg_type=msg_type,
        attachments=tuple(attachments),
        reply_to=reply_to,
        raw=message,
    )


def _whatsapp_content(msg_type: str, message: Dict[str, Any]) -> Tuple[Optional[str], List[Dict[str, Any]]]:
    """Text plus attachments for every WhatsApp message type; unknown types keep their body."""
    body = _object(message.get(msg_type))
    if msg_type == "text":
        return optional_str(body, "body"), []
    if msg_type in WHATSAPP_MEDIA_TYPES:
        media: Dict[str, Any] = {"type": msg_type}
        for key in ("id", "mime_type", "sha256", "filename", "animated", "voice", "url"):
            if body.get(key) is not None:
                media["media_id" if key == "id" else key] = body[key]
        return optional_str(body, "caption"), [media]
    if msg_type == "location":
        location: Dict[str, Any] = {"type": "location"}
        for key in ("latitude", "longitude", "name", "address", "url"):
            if body.get(key) is not None:
                location[key] = body[key]
        label = " ".join(str(body[k]) for k in ("name", "address") if body.get(k))
        return label or None, [location]
    if msg_type == "contacts":
        cards = [c for c in as_list(message.get("contacts")) if isinstance(c, dict)]
        names = [optional_str(_object(c.get("name")), "formatted_name") for c in cards]
        return (", ".join(n for n in names if n) or None), [{"type": "contacts", "contacts": cards}]
    if msg_type == "interactive":
        kind = optional_str(body, "type") or ""
        reply = _object(body.get(kind))
        text = optional_str(reply, "title") or optional_str(reply, "body") or optional_str(reply, "response_json")
        return text, [{"type": "interactive", "interactive_type": kind, "reply": reply}]
    if msg_type == "button":
        return optional_str(body, "text"), [{"type": "button", "payload": body.get("payload"), "text": body.get("text")}]
    if msg_type == "reaction":
        emoji = optional_str(body, "emoji") or None
        reaction: Dict[str, Any] = {"type": "reaction", "emoji": emoji, "message_id": body.get("message_id")}
        if emoji is None:
            reaction["removed"] = True  # WhatsApp omits the emoji when the user takes a reaction back
        return emoji, [reaction]
    # order, system, unsupported, unknown...: keep the type and the raw content faithfully.
    text = optional_str(body, "text") or optional_str(body, "body")
    return text, [{"type": msg_type, "content": message.get(msg_type), "errors": message.get("errors")}]


def _whatsapp_status(account_id: str, status: Any) -> StatusEvent:
    wamid = require_str(status, "id")
    state = require_str(status, "status")
    at = epoch_ms(status.get("timestamp"))
    error = None
    errors = as_list(status.get("errors"))
    if errors and isinstance(errors[0], dict):
        first = errors[0]
        described = {k: first.get(k) for k in ("code", "title", "message") if k in first}
        details = optional_str(_object(first.get("error_data")), "details")
        if details:
            described["details"] = details
        error = json.dumps(described, ensure_ascii=False, default=str)
    return StatusEvent("whatsapp", account_id, wamid, state, at, error)


# --- demo traffic (make demo) --------------------------------------------------------------------


def _demo_deliveries(now_ms: int) -> List[Any]:
    page, instagram, phone = "100000000000001", "17841400000000001", "200000000000001"
    seconds = str(now_ms // 1000)
    post = f"{page}_{now_ms}"
    media = f"1790{now_ms}"
    return [
        {"object": "page", "entry": [{"id": page, "time": now_ms, "messaging": [
            {"sender": {"id": "6100000000000001"}, "recipient": {"id": page}, "timestamp": now_ms - 60_000,
             "message": {"mid": f"m_demo_{now_ms}_1", "text": "Hi! My order #4411 arrived cold \u2615 can you help?"}},
            {"sender": {"id": "6100000000000002"}, "recipient": {"id": page}, "timestamp": now_ms - 30_000,
             "message": {"mid": f"m_demo_{now_ms}_2", "attachments": [
                 {"type": "image", "payload": {"url": "https://example.invalid/receipt.jpg"}}]}},
        ]}]},
        {"object": "page", "entry": [{"id": page, "time": now_ms // 1000, "changes": [
            {"field": "feed", "value": {
                "item": "comment", "verb": "add", "post_id": post, "comment_id": f"{now_ms}_1", "parent_id": post,
                "from": {"id": "6100000000000003", "name": "Rui Almeida"}, "created_time": now_ms // 1000 - 50,
                "message": "Are the new seasonal beans decaf-friendly?"}},
            {"field": "feed", "value": {
                "item": "comment", "verb": "add", "post_id": post, "comment_id": f"{now_ms}_2",
                "parent_id": f"{now_ms}_1", "from": {"id": page, "name": "Acme Coffee"},
                "created_time": now_ms // 1000 - 20, "message": "Yes! We have a Swiss-water decaf blend."}},
            {"field": "feed", "value": {
                "item": "reaction", "verb": "add", "post_id": post, "reaction_type": "like",
                "from": {"id": "6100000000000004", "name": "Ana"}, "created_time": now_ms // 1000 - 10}},
        ]}]},
        {"object": "instagram", "entry": [{"id": instagram, "time": now_ms, "messaging": [
            {"sender": {"id": "1780000000000001"}, "recipient": {"id": instagram}, "timestamp": now_ms - 20_000,
             "message": {"mid": f"ig_demo_{now_ms}_1", "text": "Do you ship oat milk to Lisbon?"}},
        ]}]},
        {"object": "instagram", "entry": [{"id": instagram, "time": now_ms // 1000, "changes": [
            {"field": "comments", "value": {
                "id": f"1801{now_ms}", "text": "Love this latte art \U0001F60D where is this?",
                "from": {"id": "1780000000000002", "username": "lisbon.eats"},
                "media": {"id": media, "media_product_type": "FEED"}}},
            {"field": "comments", "value": {
                "id": f"1802{now_ms}", "text": "@lisbon.eats our Chiado store!", "parent_id": f"1801{now_ms}",
                "from": {"id": instagram, "username": "acmecoffee"},
                "media": {"id": media, "media_product_type": "FEED"}}},
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
