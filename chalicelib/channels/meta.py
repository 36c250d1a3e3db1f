"""Meta webhooks (one endpoint, /webhooks/meta): Messenger, Instagram, Facebook Page comments
and WhatsApp.

Handshake: hub.mode/hub.verify_token/hub.challenge. Verification: X-Hub-Signature-256 is
`sha256=<hex HMAC-SHA256(app secret, raw body)>`. Routing is by the platform's own ids:
`entry[].id` (page / Instagram account) and `metadata.phone_number_id` (WhatsApp).

What arrives where (one `object` per POST, many `entry[]`, possibly for several accounts):
- `object=page`: `messaging[]` (and `standby[]`) are Messenger DMs (channel "messenger");
  `changes[]` with `field: "feed"` and `value.item: "comment"` are Page comments (channel
  "facebook", one conversation per post and author; verbs add / edited / remove).
  `changes[]` with `field: "mention"` are posts and comments that mention our Page (channel
  "facebook", thread kind "mention": one conversation per post and author, answered in comments).
- `object=instagram`: `messaging[]` are Instagram DMs; `changes[]` with `field: "comments"` (or
  `live_comments`) are comments on our media (one conversation per media and author);
  `field: "mentions"` carries only `{media_id, comment_id}`: it becomes a LookupEvent that the
  ingest processor resolves with a Graph API read (`resolve`), never the webhook path.
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
import re
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
    LookupEvent,
    MessageEvent,
    OutboundMessage,
    ParseProblem,
    PostEditEvent,
    ProfileUnavailable,
    RemoveEvent,
    SendError,
    SendResult,
    StatusEvent,
    TemplateStatusEvent,
    WebhookRejected,
    WebhookReply,
    WebhookRequest,
    as_int,
    as_list,
    optional_str,
    profile_text,
    require_str,
    split_list,
    require_secret,
    call_platform,
    check_text,
    json_body,
    send_token,
)
from chalicelib.config import SecretLookup, api_base

OBJECT_CHANNEL = {"page": "messenger", "instagram": "instagram", "whatsapp_business_account": "whatsapp"}
WHATSAPP_MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
INSTAGRAM_COMMENT_FIELDS = ("comments", "live_comments")
FEED_ADD_VERBS = ("add",)
FEED_EDIT_VERBS = ("edited", "edit", "update")
FEED_REMOVE_VERBS = ("remove", "delete")
POST_ITEMS = ("status", "post", "photo", "video", "share")  # feed items that are the Page's posts

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

    def send(self, message: OutboundMessage, secrets: SecretLookup, http: Any) -> SendResult:
        """Messenger / Instagram DMs (Send API), Facebook and Instagram comment replies (public,
        or private with `private_reply`), WhatsApp Cloud API text (with reply context) or
        template. See the "send side" section below for endpoints and error classes."""
        return _send(message, secrets, http)

    def resolve(self, event: LookupEvent, secrets: SecretLookup, http: Any) -> Optional[MessageEvent]:
        """Instagram mentions: the mentioned comment or media, read with the account's Page token."""
        if event.kind != "instagram_mention":
            raise SendError("permanent", f"the Meta adapter cannot look up {event.kind}")
        return _resolve_instagram_mention(event, secrets, http)

    demo_accounts = (
        ("messenger", "100000000000001", "Acme Coffee (Facebook Page)"),
        ("facebook", "100000000000001", "Acme Coffee (Page comments)"),
        ("instagram", "17841400000000001", "@acmecoffee (Instagram)"),
        ("whatsapp", "200000000000001", "Acme Coffee +1 555 0100 (WhatsApp)"),
    )

    def fetch_profile(self, channel: str, account_id: str, user_id: str, secrets: SecretLookup,
                      http: Any) -> Optional[ContactRef]:
        """Messenger User Profile API (`first_name,last_name,profile_pic`) and Instagram's user
        profile (`name,username,profile_pic,follower_count`), with the account's token; WhatsApp and
        Facebook comments carry names already (None)."""
        return _fetch_profile(channel, account_id, user_id, secrets, http)

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
    elif channel == "messenger" and field == "mention":
        yield from _facebook_mention(account_id, value, entry_time)
    elif channel == "instagram" and field == "mentions":
        yield _instagram_mention_lookup(account_id, value, entry_time)
    elif isinstance(value, dict) and "sender" in value and "recipient" in value:
        # Messaging events delivered in the changes format (App Dashboard tests, some API versions).
        yield from _messaging_item(channel, account_id, value)
    else:
        yield IgnoredEvent(_change_channel(channel, change), f"change field {field!r} is not handled")


def _instagram_mention_lookup(account_id: str, value: Any, entry_time: Optional[int]) -> LookupEvent:
    """`{media_id, comment_id?}`: our account was @mentioned in a caption or a comment."""
    if not isinstance(value, dict):
        raise ValueError("mentions change has no value object")
    media_id = require_str(value, "media_id")
    ids = {"media_id": media_id}
    comment_id = optional_str(value, "comment_id")
    if comment_id:
        ids["comment_id"] = comment_id
    if not all(v.isdigit() and len(v) <= 40 for v in ids.values()):  # they go into a Graph API request
        raise ValueError("instagram mention ids are not numeric")
    return LookupEvent("instagram", account_id, "instagram_mention", ids, _first_time(entry_time), raw=value)


def _resolve_instagram_mention(event: LookupEvent, secrets: SecretLookup, http: Any) -> Optional[MessageEvent]:
    """GET /{ig-user-id}?fields=mentioned_comment.comment_id(..){...} or mentioned_media.media_id(..){...}
    with the account's Page token (Facebook Login: mentions need it); None when it is gone."""
    media_id, comment_id = event.ids["media_id"], event.ids.get("comment_id")
    if comment_id:
        fields = (f"mentioned_comment.comment_id({comment_id})"
                  "{id,text,timestamp,username,like_count,media{id,permalink}}")
    else:
        fields = f"mentioned_media.media_id({media_id}){{id,caption,timestamp,username,permalink,like_count}}"
    token = send_token(secrets, "META_PAGE_TOKEN")
    try:
        answer = _graph(http, "GET", f"{api_base('META_GRAPH_BASE_URL', GRAPH_DEFAULT)}/{event.account_id}", token,
                        params={"fields": fields})
    except SendError as error:
        if error.kind == "permanent" and (error.code or "").startswith("100"):
            return None  # "does not exist": deleted before we looked (Meta keeps no webhook data)
        raise
    found = _object(answer.get("mentioned_comment" if comment_id else "mentioned_media"))
    if not found:
        return None
    username = optional_str(found, "username")
    author = username or "unknown"
    permalink = optional_str(found, "permalink") or optional_str(_object(found.get("media")), "permalink")
    return MessageEvent(
        channel="instagram", account_id=event.account_id, platform_message_id=comment_id or media_id,
        thread_key=f"mention:{media_id}:{author}", contact=ContactRef(author, handle=username), direction="in",
        sent_at_ms=_first_time(found.get("timestamp"), event.sent_at_ms),
        text=optional_str(found, "text" if comment_id else "caption"), thread_kind="mention", subject=media_id,
        raw=dict(found, permalink=permalink, media_id=media_id) if permalink else dict(found, media_id=media_id),
    )


def _facebook_mention(page_id: str, value: Any, entry_time: Optional[int]) -> Iterator[Event]:
    """The Page was mentioned in a post or a comment (`item`), added, edited or removed (`verb`)."""
    if not isinstance(value, dict):
        raise ValueError("mention change has no value object")
    post_id = require_str(value, "post_id")
    mention_id = optional_str(value, "comment_id") or post_id
    author_id, author_name = _feed_author(value)
    created = _optional_ms(value.get("created_time"))
    message = MessageEvent(
        channel="facebook", account_id=page_id, platform_message_id=mention_id,
        thread_key=f"mention:{post_id}:{author_id or 'unknown'}",
        contact=ContactRef(author_id or "unknown", display_name=author_name),
        direction="out" if author_id == page_id else "in",
        sent_at_ms=created if created is not None else _first_time(entry_time),
        text=optional_str(value, "message"), thread_kind="mention", subject=post_id, raw=value)
    verb = value.get("verb")
    changed_at = max(t for t in (created, entry_time, 0) if t is not None) or _first_time()
    if verb in FEED_REMOVE_VERBS:
        yield RemoveEvent("facebook", page_id, mention_id, changed_at, message if author_id else None)
    elif verb in FEED_EDIT_VERBS:
        yield EditEvent(message, changed_at)
    else:
        yield message


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
    an edit of the Page's own post refreshes the post behind its comment threads (PostEditEvent);
    new posts, reactions, shares and the rest are not inbox material."""
    if not isinstance(value, dict):
        raise ValueError("feed change has no value object")
    item = value.get("item")
    verb = value.get("verb")
    if item in POST_ITEMS and verb in FEED_EDIT_VERBS and _feed_author(value)[0] in (page_id, None) \
            and (_post_id(value) or "").startswith(f"{page_id}_"):
        yield PostEditEvent("facebook", page_id, _post_id(value) or "", optional_str(value, "message"),
                            _first_time(entry_time, value.get("created_time")))
        return
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
            yield from _whatsapp_change(change, entry)
        except Exception as exc:  # noqa: BLE001
            yield ParseProblem("whatsapp", f"unreadable change: {exc}", change)


def _whatsapp_change(change: Any, entry: Optional[Dict[str, Any]] = None) -> Iterator[Event]:
    value = change.get("value") if isinstance(change, dict) else None
    if not isinstance(value, dict):
        raise ValueError("change has no value object")
    if change.get("field") == TEMPLATE_STATUS_FIELD:
        yield _template_status(optional_str(entry, "id"), value, _optional_ms((entry or {}).get("time")))
        return
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


TEMPLATE_STATUS_FIELD = "message_template_status_update"


def _template_status(business_account_id: Optional[str], value: Dict[str, Any],
                     entry_time: Optional[int]) -> TemplateStatusEvent:
    """`{"event": "PAUSED", "message_template_name", "message_template_language", "reason",
    "other_info": {"title", "description"}}` under entry `id` = the WhatsApp Business Account."""
    from chalicelib import inputs

    if not business_account_id or not re.fullmatch(r"[0-9]{1,32}", business_account_id):
        raise ValueError("template status without the business account id")
    status = require_str(value, "event").upper()
    name, language = require_str(value, "message_template_name"), require_str(value, "message_template_language")
    if not re.fullmatch(r"[A-Z_]{1,32}", status) or not re.fullmatch(r"[a-z0-9_]{1,512}", name) \
            or not re.fullmatch(r"[A-Za-z_]{2,16}", language):
        raise ValueError("template status with an unexpected event, name or language")
    info = _object(value.get("other_info"))
    parts = [optional_str(value, "reason"), optional_str(info, "title"), optional_str(info, "description")]
    said = "; ".join(p for p in parts if p and p.upper() != "NONE" and inputs.is_clean(p))[:500] or None
    return TemplateStatusEvent(business_account_id=business_account_id, name=name, language=language,
                               status=status, reason=said, at_ms=entry_time or 0)


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
    return StatusEvent("whatsapp", account_id, wamid, state, at, error,
                       outbound_id=optional_str(status, "biz_opaque_callback_data"))


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


# --- send side -----------------------------------------------------------------------------------
#
# Endpoints (base URLs are configuration; `make run` points them at the loopback sandbox):
# - Messenger DM:      POST {META_GRAPH_BASE_URL}/{page id}/messages, Page token (META_PAGE_TOKEN),
#   {"recipient": {"id": psid}, "messaging_type": "RESPONSE" | "MESSAGE_TAG", ["tag": "HUMAN_AGENT"],
#    "message": {"text", "metadata": outbound_id}} -> {"recipient_id", "message_id"} (= echo mid).
# - Instagram DM: Instagram Login accounts (INSTAGRAM_ACCESS_TOKEN) POST
#   {INSTAGRAM_GRAPH_BASE_URL}/{ig user id}/messages; accounts connected through a Facebook Page
#   (only META_PAGE_TOKEN) POST {META_GRAPH_BASE_URL}/me/messages. Same body and answer.
# - Messenger files: POST {META_GRAPH_BASE_URL}/me/message_attachments (multipart message + filedata)
#   -> {"attachment_id"}, then {"message": {"attachment": {"type": "image"|"file", "payload":
#   {"attachment_id"}}}} (a file message has no text). Instagram files: the same message with
#   {"payload": {"url"}}, the pre-signed URL of our stored copy (images up to 8 MB, PDF up to 25 MB).
# - Private reply to a comment: the same /messages call with {"recipient": {"comment_id"}}.
# - Facebook comment reply: POST {META_GRAPH_BASE_URL}/{comment id}/comments, message=... -> {"id"}.
# - Instagram comment reply: POST {base}/{ig comment id}/replies?message=... -> {"id"}.
# - WhatsApp: POST {META_GRAPH_BASE_URL}/{phone number id}/messages, Bearer WHATSAPP_TOKEN,
#   text (with context.message_id), template, or image/document by the id `POST /{phone number id}/media`
#   answered (the text as caption); biz_opaque_callback_data = outbound_id
#   -> {"messages": [{"id": "wamid..."}]}.
# Tokens travel in the Authorization header, never in a URL.

GRAPH_DEFAULT = "https://graph.facebook.com/v21.0"
INSTAGRAM_GRAPH_DEFAULT = "https://graph.instagram.com/v21.0"
MESSENGER_TEXT_LIMIT = 2000  # characters
INSTAGRAM_DM_LIMIT_BYTES = 1000  # UTF-8 bytes
FACEBOOK_COMMENT_LIMIT = 8000
INSTAGRAM_COMMENT_LIMIT = 2200
WHATSAPP_TEXT_LIMIT = 4096
WHATSAPP_CAPTION_LIMIT = 1024
METADATA_LIMIT = 1000
WHATSAPP_CALLBACK_DATA_LIMIT = 512

# Error classes (../shared/outbound-contracts.md, Meta's error code pages).
WINDOW_SUBCODES = {2018278, 2534022}
WHATSAPP_WINDOW_CODES = {131047}
RETRY_CODES = {1, 2, 4, 17, 32, 613, 130429, 131056, 131000} | set(range(80001, 80015))
REAUTHORIZE_CODES = {190, 102}
PERMANENT_CODES = {10, 100, 200, 368, 551, 131026, 131048, 131049}
WINDOW_TEXT = "outside of allowed window"


def _send(message: OutboundMessage, secrets: SecretLookup, http: Any) -> SendResult:
    channel = message.channel
    if channel == "whatsapp":
        return _send_whatsapp(message, secrets, http)
    if channel not in ("messenger", "instagram", "facebook"):
        raise SendError("permanent", f"the Meta adapter cannot send on {channel}", code="channel")
    if message.private_reply:
        return _send_private_reply(message, secrets, http)
    if message.thread_kind == "mention" and channel == "instagram":
        return _send_instagram_mention_reply(message, secrets, http)
    if message.thread_kind == "comment" or (message.thread_kind == "mention" and channel == "facebook"):
        return _send_comment_reply(message, secrets, http)
    if channel == "facebook":
        raise SendError("permanent", "a Facebook Page thread is answered in its comments", code="thread_kind")
    return _send_dm(message, secrets, http)


def _dm_text(message: OutboundMessage) -> str:
    if message.channel == "instagram":
        text = message.text or ""
        return check_text(message.text, INSTAGRAM_DM_LIMIT_BYTES, "an Instagram message", "bytes",
                          size=len(text.encode("utf-8")))
    return check_text(message.text, MESSENGER_TEXT_LIMIT, "a Messenger message")


def _messages_endpoint(message: OutboundMessage, secrets: SecretLookup) -> Tuple[str, str]:
    """(url, token) of the Send API for the account: Instagram Login accounts have their own host."""
    if message.channel == "instagram":
        token = secrets("INSTAGRAM_ACCESS_TOKEN")
        if token:
            return f"{api_base('INSTAGRAM_GRAPH_BASE_URL', INSTAGRAM_GRAPH_DEFAULT)}/{message.account_id}/messages", token
        return f"{api_base('META_GRAPH_BASE_URL', GRAPH_DEFAULT)}/me/messages", send_token(secrets, "META_PAGE_TOKEN")
    token = send_token(secrets, "META_PAGE_TOKEN")
    return f"{api_base('META_GRAPH_BASE_URL', GRAPH_DEFAULT)}/{message.account_id}/messages", token


def _send_dm(message: OutboundMessage, secrets: SecretLookup, http: Any) -> SendResult:
    body: Dict[str, Any] = {"recipient": {"id": message.recipient_id}}
    if message.tag:
        body.update(messaging_type="MESSAGE_TAG", tag=message.tag)
    else:
        body["messaging_type"] = "RESPONSE"
    if message.attachments:  # a file message carries no text
        media = message.attachments[0]
        kind = media.get("type") if isinstance(media, dict) else None
        # Messenger: by its upload id; Instagram: by the URL of our stored copy (Meta fetches it)
        payload = ({"url": media.get("url")} if message.channel == "instagram" else
                   {"attachment_id": str(media.get("media_id") or "")}) if isinstance(media, dict) else {}
        if kind not in ("image", "document") or not all(payload.values()):
            raise SendError("permanent", f"a {message.channel} attachment needs its "
                                         f"{'URL' if message.channel == 'instagram' else 'uploaded attachment id'}",
                            code="attachment")
        body["message"] = {"attachment": {"type": "image" if kind == "image" else "file", "payload": payload},
                           "metadata": message.outbound_id[:METADATA_LIMIT]}
    else:
        body["message"] = {"text": _dm_text(message), "metadata": message.outbound_id[:METADATA_LIMIT]}
    url, token = _messages_endpoint(message, secrets)
    answer = _graph_post(http, url, token, json=body)
    return SendResult(_answer_id(answer, "message_id"))


def _send_private_reply(message: OutboundMessage, secrets: SecretLookup, http: Any) -> SendResult:
    comment_id = message.reply_to
    if not comment_id:
        raise SendError("permanent", "a private reply needs the comment it answers", code="no_comment")
    text = _dm_text(message)
    body = {"recipient": {"comment_id": comment_id},
            "message": {"text": text, "metadata": message.outbound_id[:METADATA_LIMIT]}}
    url, token = _messages_endpoint(message, secrets)
    answer = _graph_post(http, url, token, json=body)
    return SendResult(_answer_id(answer, "message_id"))


def _send_comment_reply(message: OutboundMessage, secrets: SecretLookup, http: Any) -> SendResult:
    comment_id = message.reply_to
    if not comment_id:
        raise SendError("permanent", "a comment reply needs the comment it answers", code="no_comment")
    if message.channel == "instagram":
        text = check_text(message.text, INSTAGRAM_COMMENT_LIMIT, "an Instagram comment")
        token = secrets("INSTAGRAM_ACCESS_TOKEN")
        base = api_base("INSTAGRAM_GRAPH_BASE_URL", INSTAGRAM_GRAPH_DEFAULT)
        if not token:
            token, base = send_token(secrets, "META_PAGE_TOKEN"), api_base("META_GRAPH_BASE_URL", GRAPH_DEFAULT)
        answer = _graph_post(http, f"{base}/{comment_id}/replies", token, params={"message": text})
    else:
        text = check_text(message.text, FACEBOOK_COMMENT_LIMIT, "a Facebook comment")
        token = send_token(secrets, "META_PAGE_TOKEN")
        answer = _graph_post(http, f"{api_base('META_GRAPH_BASE_URL', GRAPH_DEFAULT)}/{comment_id}/comments",
                             token, data={"message": text})
    return SendResult(_answer_id(answer, "id"))


def _send_instagram_mention_reply(message: OutboundMessage, secrets: SecretLookup, http: Any) -> SendResult:
    """POST /{ig-user-id}/mentions: a comment under the media (or the comment) that mentioned us."""
    text = check_text(message.text, INSTAGRAM_COMMENT_LIMIT, "an Instagram comment")
    media_id = message.thread_key.split(":")[1] if message.thread_key.count(":") >= 2 else ""
    if not media_id:
        raise SendError("permanent", "an Instagram mention reply needs the media it answers", code="no_media")
    data = {"media_id": media_id, "message": text}
    if message.reply_to and message.reply_to != media_id:
        data["comment_id"] = message.reply_to
    token = send_token(secrets, "META_PAGE_TOKEN")
    answer = _graph_post(http, f"{api_base('META_GRAPH_BASE_URL', GRAPH_DEFAULT)}/{message.account_id}/mentions",
                         token, data=data)
    return SendResult(_answer_id(answer, "id"))


def _send_whatsapp(message: OutboundMessage, secrets: SecretLookup, http: Any) -> SendResult:
    body: Dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual",
                            "to": message.recipient_id}
    if message.reply_to:
        body["context"] = {"message_id": message.reply_to}
    if message.attachments and not message.template:
        media = message.attachments[0]
        kind = media.get("type") if isinstance(media, dict) else None
        if kind not in ("image", "document") or not media.get("media_id"):
            raise SendError("permanent", "a WhatsApp attachment needs its uploaded media id", code="attachment")
        part: Dict[str, Any] = {"id": str(media["media_id"])}
        if message.text and message.text.strip():
            part["caption"] = check_text(message.text, WHATSAPP_CAPTION_LIMIT, "a WhatsApp caption")
        if kind == "document" and media.get("filename"):
            part["filename"] = str(media["filename"])
        body["type"] = kind
        body[kind] = part
    elif message.template:
        template = message.template
        name = template.get("name") if isinstance(template, dict) else None
        language = template.get("language") if isinstance(template, dict) else None
        if not isinstance(name, str) or not name:
            raise SendError("permanent", "a WhatsApp template needs its approved name", code="template")
        if isinstance(language, str):
            language = {"code": language}
        if not isinstance(language, dict) or not language.get("code"):
            raise SendError("permanent", "a WhatsApp template needs its language code", code="template")
        body["type"] = "template"
        body["template"] = {**template, "language": language}
    else:
        body["type"] = "text"
        body["text"] = {"body": check_text(message.text, WHATSAPP_TEXT_LIMIT, "WhatsApp")}
    body["biz_opaque_callback_data"] = message.outbound_id[:WHATSAPP_CALLBACK_DATA_LIMIT]
    token = send_token(secrets, "WHATSAPP_TOKEN")
    url = f"{api_base('META_GRAPH_BASE_URL', GRAPH_DEFAULT)}/{message.account_id}/messages"
    answer = _graph_post(http, url, token, json=body)
    found = answer.get("messages")
    if isinstance(found, list) and found and isinstance(found[0], dict) and optional_str(found[0], "id"):
        return SendResult(str(found[0]["id"]))
    raise SendError("unknown", "WhatsApp accepted the message without a message id", code="no_id")


def upload_whatsapp_media(phone_number_id: str, data: bytes, mime: str, filename: str, secrets: SecretLookup,
                          http: Any) -> str:
    """POST {graph}/{phone number id}/media (multipart: file, type, messaging_product): the media
    id a message then sends the file by (valid 30 days); SendError otherwise."""
    token = send_token(secrets, "WHATSAPP_TOKEN")
    url = f"{api_base('META_GRAPH_BASE_URL', GRAPH_DEFAULT)}/{phone_number_id}/media"
    answer = _graph_post(http, url, token, data={"messaging_product": "whatsapp", "type": mime},
                         files={"file": (filename, data, mime)})
    return _answer_id(answer, "id")


def upload_messenger_attachment(data: bytes, mime: str, filename: str, secrets: SecretLookup, http: Any) -> str:
    """POST {graph}/me/message_attachments (Attachment Upload API, Page token; multipart `message`
    and `filedata`): the reusable attachment id a message then sends the file by."""
    token = send_token(secrets, "META_PAGE_TOKEN")
    kind = "image" if mime.startswith("image/") else "file"
    message = json.dumps({"attachment": {"type": kind, "payload": {"is_reusable": True}}})
    answer = _graph_post(http, f"{api_base('META_GRAPH_BASE_URL', GRAPH_DEFAULT)}/me/message_attachments", token,
                         data={"message": message}, files={"filedata": (filename, data, mime)})
    return _answer_id(answer, "attachment_id")


def _graph_post(http: Any, url: str, token: str, **kwargs: Any) -> Dict[str, Any]:
    return _graph(http, "POST", url, token, **kwargs)


def _graph(http: Any, method: str, url: str, token: str, **kwargs: Any) -> Dict[str, Any]:
    response = call_platform(http, method, url, "Meta", headers={"Authorization": f"Bearer {token}"}, **kwargs)
    body = json_body(response)
    if 200 <= response.status_code < 300:
        if isinstance(body, dict):
            return body
        raise SendError("unknown", f"Meta answered HTTP {response.status_code} without a JSON result",
                        code=f"http_{response.status_code}")
    raise classify_graph_error(response.status_code, body, response.headers)


def _answer_id(answer: Dict[str, Any], key: str) -> str:
    found = optional_str(answer, key)
    if not found:
        raise SendError("unknown", f"Meta accepted the message without {key}", code="no_id")
    return found


def classify_graph_error(status: int, body: Any, headers: Mapping[str, str]) -> SendError:
    """A Graph API error answer as a SendError (codes from the contract; the raw code/subcode is
    kept in `code` as "code/subcode")."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        if status >= 500 or status == 0:
            return SendError("unknown", f"Meta answered HTTP {status} without an error body; the message "
                                        "may have been sent", code=f"http_{status}")
        if status == 429:
            return SendError("retryable", "Meta throttled the send (HTTP 429)", _usage_retry_after(headers), "http_429")
        return SendError("permanent", f"Meta refused the send (HTTP {status})", code=f"http_{status}")
    code = _int_or_none(error.get("code"))
    subcode = _int_or_none(error.get("error_subcode"))
    text = str(error.get("message") or error.get("error_user_msg") or "no message")[:300]
    details = optional_str(_object(error.get("error_data")), "details")
    if details:
        text = f"{text} ({details[:200]})"
    raw = f"{code}/{subcode}" if subcode is not None else str(code)
    reason = f"Meta error {raw}: {text}"
    lowered = text.lower()
    if code in WHATSAPP_WINDOW_CODES or subcode in WINDOW_SUBCODES or (code == 10 and WINDOW_TEXT in lowered):
        return SendError("window_closed", reason, code=raw)
    if code in REAUTHORIZE_CODES:
        return SendError("reauthorize", reason, code=raw)
    if "bothersome" in lowered:
        return SendError("permanent", reason + " (stop tagging this user)", code=raw)
    if code in RETRY_CODES or error.get("is_transient") is True:
        return SendError("retryable", reason, _usage_retry_after(headers), raw)
    if code in PERMANENT_CODES or (code is not None and 132000 <= code < 133000):
        return SendError("permanent", reason, code=raw)
    if status >= 500:
        return SendError("unknown", reason + "; the message may have been sent", code=raw)
    if status == 429:
        return SendError("retryable", reason, _usage_retry_after(headers), raw)
    return SendError("permanent", reason, code=raw)


def _int_or_none(value: Any) -> Optional[int]:
    try:
        return as_int(value)
    except (ValueError, TypeError):
        return None


def _usage_retry_after(headers: Mapping[str, str]) -> Optional[float]:
    """Seconds until access comes back, from X-Business-Use-Case-Usage / X-App-Usage
    (`estimated_time_to_regain_access`, in minutes); None when no header says."""
    minutes: List[float] = []
    for name in ("X-Business-Use-Case-Usage", "X-App-Usage", "X-Page-Usage"):
        raw = headers.get(name) if headers is not None else None
        if not raw:
            continue
        try:
            usage = json.loads(raw)
        except ValueError:
            continue
        for item in _usage_items(usage):
            value = item.get("estimated_time_to_regain_access")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                minutes.append(float(value))
    return max(minutes) * 60.0 if minutes else None


def _usage_items(usage: Any) -> Iterator[Dict[str, Any]]:
    """X-App-Usage is one object; X-Business-Use-Case-Usage maps business ids to lists of them."""
    if isinstance(usage, dict):
        if "estimated_time_to_regain_access" in usage:
            yield usage
        for value in usage.values():
            for item in as_list(value):
                if isinstance(item, dict):
                    yield item


# --- customer profiles (names and pictures the DMs do not carry) -----------------------------------
#
# Messenger: GET {META_GRAPH_BASE_URL}/{psid}?fields=first_name,last_name,profile_pic, Page token.
# Instagram: GET {base}/{igsid}?fields=name,username,profile_pic,follower_count, with the token the
#            account sends with (INSTAGRAM_ACCESS_TOKEN on graph.instagram.com, else the Page token).
# Picture URLs are signed CDN links that expire: they are kept as the platform gave them and the
# page fetches them through our media endpoint, never directly.

PROFILE_TIMEOUT = (3.0, 5.0)  # short: a profile never holds up the queue consumer for long
PROFILE_FIELDS = {"messenger": "first_name,last_name,profile_pic",
                  "instagram": "name,username,profile_pic,follower_count"}


def _picture_address(url: str) -> bool:
    """A profile picture address worth keeping: https (our media endpoint checks it again before
    any fetch), or under the local sandbox's configured base (`make run`)."""
    from chalicelib import safe_url

    if len(url) > 2000:
        return False
    return url.startswith("https://") or any(url.startswith(base + "/") for base in safe_url.configured_bases())


def _fetch_profile(channel: str, account_id: str, user_id: str, secrets: SecretLookup, http: Any) -> Optional[ContactRef]:
    if channel not in PROFILE_FIELDS:
        return None
    if channel == "instagram" and secrets("INSTAGRAM_ACCESS_TOKEN"):
        base, token = api_base("INSTAGRAM_GRAPH_BASE_URL", INSTAGRAM_GRAPH_DEFAULT), secrets("INSTAGRAM_ACCESS_TOKEN")
    else:
        base, token = api_base("META_GRAPH_BASE_URL", GRAPH_DEFAULT), secrets("META_PAGE_TOKEN")
    if not token:
        raise ProfileUnavailable(f"no token to look up {channel} profiles of this account")
    if not user_id or "/" in user_id or "?" in user_id:
        raise ProfileUnavailable("not a profile id")
    try:
        response = http.request("GET", f"{base}/{user_id}", params={"fields": PROFILE_FIELDS[channel]},
                                headers={"Authorization": f"Bearer {token}"}, timeout=PROFILE_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - the exception text may carry the URL: keep the type only
        raise ProfileUnavailable(f"no answer from Meta ({type(exc).__name__})") from None
    answer = json_body(response)
    if response.status_code != 200 or not isinstance(answer, dict):
        error = answer.get("error") if isinstance(answer, dict) and isinstance(answer.get("error"), dict) else {}
        raise ProfileUnavailable(f"Meta answered HTTP {response.status_code}"
                                 + (f" (code {error.get('code')})" if error.get("code") is not None else ""))
    if channel == "messenger":
        name = " ".join(p for p in (profile_text(answer, "first_name"), profile_text(answer, "last_name")) if p)
        handle = None
    else:
        name = profile_text(answer, "name") or ""
        username = profile_text(answer, "username")
        handle = f"@{username}" if username else None
    picture = optional_str(answer, "profile_pic")
    followers = answer.get("follower_count")
    return ContactRef(user_id, display_name=name[:100] or None, handle=handle,
                      avatar_url=picture if picture and _picture_address(picture) else None,
                      followers=followers if isinstance(followers, int) and not isinstance(followers, bool)
                      and 0 <= followers < 10**12 else None)


