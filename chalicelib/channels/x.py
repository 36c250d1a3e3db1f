"""X (Twitter) webhooks (/webhooks/x): direct messages and mentions, from the X Activity API (what a
self-serve app gets) and the Account Activity API (Enterprise, kept).

Handshake (CRC): `GET ?crc_token=T` is answered with
`{"response_token": "sha256=" + base64(HMAC-SHA256(consumer secret, T))}`. That answer is exactly
the POST signature of a body equal to T, so only tokens that can never be a delivery are answered:
base64/base64url/hex characters (plus `_`), bounded length, and not parseable as JSON (a bare
number or `true` is a JSON document the ack path would queue).
Verification: `x-twitter-webhooks-signature` is `sha256=<base64 HMAC-SHA256(consumer secret, raw
body)>`; when X also sends `X-Twitter-Webhooks-Signature-OAuth2` and an OAuth2 client secret is
configured, that one must match too.

Routing is by `for_user_id`, the subscribed account. DMs (`direct_message_events`) thread by the
other participant; our own sends (sender == for_user_id) are echoes ("out"). Mentions and replies
(`tweet_create_events`, v1.1 tweets) are public threads keyed by the tweet they answer; the pipeline
moves a reply into its parent's conversation when the parent is known. Timestamps: DM
`created_timestamp` and tweet `timestamp_ms` are milliseconds as strings; `created_at` is text.
Text arrives HTML-escaped (`&amp;`), so it is unescaped once here.

X Activity deliveries are `{"data": {"event_uuid", "filter": {"user_id"}, "event_type", "payload",
"includes"}}`, routed by `filter.user_id` and threaded exactly like their Account Activity twins:
`post.mention.create` / `post.reply.create` / `post.quote.create` (and `post.create`, our own
replies) carry an API v2 Post (thread `tweet:<post answered, else the post>`); `dm.received` /
`dm.sent` carry the legacy DM events (thread: the other participant; `dm.sent` is our echo);
encrypted `chat.received` / `chat.sent` cannot be read without X's chat libraries, so they land as
a message saying so (in the participant's DM thread, with a link to X), never dropped. A post is
stored once by its id, whichever subscription (or `/2/webhooks/replay`) delivers it again; the
`event_uuid` stays in the raw payload. Names, handles, pictures and follower counts come from
`includes.users` (posts) or the `users` map (DMs, whose entries nest one `data` level deeper).

Since 2026-02-23 X accepts a self-serve app's reply to a post only when that post mentions or
quotes our account (or is ours): `send` looks the post up first and refuses others with the reason
(`X_REPLY_SUMMONS_CHECK=off` for Enterprise apps, which X does not restrict).
`python -m chalicelib.channels.x subscribe` (`make x-subscribe`) registers the webhook and the
account's subscriptions (see `subscribe`).
"""
from __future__ import annotations

import html
import json
import os
import re
import sys
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

from chalicelib.channels import posts, signing
from chalicelib.channels.base import (
    ChannelAdapter,
    ContactRef,
    Event,
    IgnoredEvent,
    MessageEvent,
    OutboundMessage,
    ParseProblem,
    SendError,
    SendResult,
    WebhookRejected,
    WebhookReply,
    WebhookRequest,
    as_int,
    as_list,
    optional_str,
    require_str,
    require_secret,
    call_platform,
    check_text,
    json_body,
)
from chalicelib.config import SecretLookup, api_base, int_setting

CHANNEL = "x"
SIGNATURE_HEADER = "x-twitter-webhooks-signature"
OAUTH2_SIGNATURE_HEADER = "X-Twitter-Webhooks-Signature-OAuth2"
EVENT_LISTS = ("direct_message_events", "tweet_create_events")
# Keys of an Account Activity delivery that describe it rather than carry events.
ENVELOPE_KEYS = ("for_user_id", "users", "apps", "user_has_blocked", "source")
# X's crc_token is an opaque random string; be liberal within an alphabet that cannot form a JSON
# object, array or string (no braces, brackets, quotes, whitespace, colons or commas).
CRC_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_+/=-]{1,256}")
MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}


class XAdapter(ChannelAdapter):
    name = "x"
    channels = ("x",)

    def handshake(self, request: WebhookRequest, secrets: SecretLookup) -> WebhookReply:
        """CRC: prove we hold the consumer secret (X re-checks roughly daily)."""
        token = request.query.get("crc_token")
        if not token:
            return WebhookReply(400, {"error": "crc_token is required"}, "application/json")
        if not is_crc_token(token):
            return WebhookReply(400, {"error": "crc_token must be 1-256 characters of A-Za-z0-9_+/=- "
                                               "and not a JSON value"}, "application/json")
        secret = require_secret(secrets, "X_CONSUMER_SECRET")
        return WebhookReply(200, {"response_token": crc_response_token(secret, token)}, "application/json")

    def verify(self, request: WebhookRequest, secrets: SecretLookup) -> None:
        secret = require_secret(secrets, "X_CONSUMER_SECRET")
        if not _signature_matches(secret, request.raw_body, request.header(SIGNATURE_HEADER)):
            raise WebhookRejected(401, "missing or invalid x-twitter-webhooks-signature")
        oauth2 = request.header(OAUTH2_SIGNATURE_HEADER)
        if oauth2 is None:
            return
        oauth2_secret = secrets("X_OAUTH2_CLIENT_SECRET")  # looked up only when X sent that header
        # Without a configured OAuth2 client secret the consumer-secret signature alone decides.
        if oauth2_secret and not _signature_matches(oauth2_secret, request.raw_body, oauth2):
            raise WebhookRejected(401, "invalid X-Twitter-Webhooks-Signature-OAuth2")

    def signed_headers(self, raw_body: bytes, secrets: SecretLookup) -> Dict[str, str]:
        headers = {"X-Twitter-Webhooks-Signature": _signature(secrets("X_CONSUMER_SECRET") or "", raw_body)}
        oauth2_secret = secrets("X_OAUTH2_CLIENT_SECRET")
        if oauth2_secret:
            headers[OAUTH2_SIGNATURE_HEADER] = _signature(oauth2_secret, raw_body)
        return headers

    def ack(self) -> WebhookReply:
        return WebhookReply(200, "", "text/plain")

    def send(self, message: OutboundMessage, secrets: SecretLookup, http: Any) -> SendResult:
        """A DM (thread kind "dm") or a reply to a post (mention threads); see "send side" below."""
        return _send(message, secrets, http)

    demo_accounts = (
        ("x", "1520000000000000001", "@acmecoffee (X)"),
    )

    def demo_deliveries(self, now_ms: int) -> List[Any]:
        return _demo_deliveries(now_ms)

    def split(self, payload: Any) -> List[Any]:
        """One event per part, each keeping for_user_id and the users table it needs (an X
        Activity delivery is one event already, or a list of them under `data`)."""
        if not isinstance(payload, dict):
            return [payload]
        if isinstance(payload.get("data"), list) and "for_user_id" not in payload:
            return [{"data": item} for item in payload["data"]] or [payload]
        parts = []
        for key in EVENT_LISTS:
            for item in as_list(payload.get(key)):
                parts.append({**{k: payload[k] for k in ENVELOPE_KEYS if k in payload}, key: [item]})
        return parts or [payload]

    def parse(self, payload: Any, context: Mapping[str, str]) -> Iterator[Event]:
        if not isinstance(payload, dict):
            yield ParseProblem(CHANNEL, "delivery is not a JSON object", payload)
            return
        if "data" in payload and "for_user_id" not in payload:
            yield from _activity(payload["data"])
            return
        try:
            account_id = require_str(payload, "for_user_id")
        except ValueError as exc:
            yield ParseProblem(CHANNEL, f"delivery has no for_user_id: {exc}", payload)
            return
        users = payload.get("users") if isinstance(payload.get("users"), dict) else {}
        for item in as_list(payload.get("direct_message_events")):
            try:
                yield _direct_message(account_id, item, users)
            except Exception as exc:  # noqa: BLE001 - one bad event must not sink the batch
                yield ParseProblem(CHANNEL, f"unreadable direct message event: {exc}", item, account_id)
        for item in as_list(payload.get("tweet_create_events")):
            try:
                yield _tweet(account_id, item)
            except Exception as exc:  # noqa: BLE001
                yield ParseProblem(CHANNEL, f"unreadable tweet event: {exc}", item, account_id)
        for key in EVENT_LISTS:
            if key in payload and not isinstance(payload[key], list):
                yield ParseProblem(CHANNEL, f"{key} is not a list", payload.get(key), account_id)
        others = sorted(k for k in payload if k not in EVENT_LISTS and k not in ENVELOPE_KEYS)
        if others:
            yield IgnoredEvent(CHANNEL, f"account activity {','.join(others)} is not inbox material")
        elif not any(k in payload for k in EVENT_LISTS):
            yield IgnoredEvent(CHANNEL, "delivery carries no events")


def is_crc_token(token: str) -> bool:
    """Whether a crc_token may be answered: its HMAC is also the signature of a POST body equal to
    the token, so a token that could be a JSON delivery would turn the CRC into a signing oracle."""
    if not CRC_TOKEN_SHAPE.fullmatch(token):
        return False
    try:
        json.loads(token)  # the same parser the ack path uses: numbers, true, NaN, Infinity ...
    except ValueError:
        return True
    return False


def crc_response_token(secret: str, crc_token: str) -> str:
    """The CRC answer: sha256= + base64 HMAC of the token (X's documented scheme)."""
    return "sha256=" + signing.hmac_sha256_b64(secret, crc_token.encode("utf-8"))


def _signature(secret: str, raw_body: bytes) -> str:
    return "sha256=" + signing.hmac_sha256_b64(secret, raw_body)


def _signature_matches(secret: str, raw_body: bytes, header: Optional[str]) -> bool:
    if not header or not header.strip().startswith("sha256="):
        return False
    return signing.same(_signature(secret, raw_body), header.strip())


# --- direct messages -------------------------------------------------------------------------


def _direct_message(account_id: str, item: Any, users: Dict[str, Any]) -> Event:
    if not isinstance(item, dict):
        raise ValueError("event is not an object")
    if item.get("type") != "message_create":
        return IgnoredEvent(CHANNEL, f"direct message event type {item.get('type')!r} is not inbox material")
    event_id = require_str(item, "id")
    sent_at = epoch_ms(item.get("created_timestamp"))
    create = item.get("message_create")
    if not isinstance(create, dict):
        raise ValueError("message_create is missing")
    sender = require_str(create, "sender_id")
    recipient = require_str(create.get("target"), "recipient_id")
    outbound = sender == account_id
    customer = recipient if outbound else sender
    data = create.get("message_data") if isinstance(create.get("message_data"), dict) else {}
    text = optional_str(data, "text")
    attachments = _dm_attachments(data)
    return MessageEvent(
        channel=CHANNEL,
        account_id=account_id,
        platform_message_id=event_id,
        thread_key=customer,
        contact=_user_ref(customer, users.get(customer)),
        direction="out" if outbound else "in",
        sent_at_ms=sent_at,
        text=html.unescape(text) if text is not None else None,
        msg_type=str(attachments[0]["type"]) if attachments else "text",
        attachments=tuple(attachments),
        raw=item,
    )


def _dm_attachments(data: Dict[str, Any]) -> List[Dict[str, Any]]:
    attachment = data.get("attachment")
    if not isinstance(attachment, dict) or not isinstance(attachment.get("media"), dict):
        return []
    return [_media(attachment["media"])]


def _user_ref(user_id: str, user: Any) -> ContactRef:
    """A contact from a v1.1 user (`screen_name`) or a v2 user (`username`, `profile_image_url`,
    `public_metrics.followers_count`), the latter possibly nested under `data`."""
    if isinstance(user, dict) and isinstance(user.get("data"), dict):
        user = user["data"]
    name = _clean(optional_str(user, "name"), 100)
    screen_name = _clean(optional_str(user, "username") or optional_str(user, "screen_name"), 50)
    picture = optional_str(user, "profile_image_url") or optional_str(user, "profile_image_url_https")
    metrics = user.get("public_metrics") if isinstance(user, dict) else None
    followers = _count(metrics.get("followers_count") if isinstance(metrics, dict) else None)
    if followers is None and isinstance(user, dict):
        followers = _count(user.get("followers_count"))
    return ContactRef(user_id, display_name=name, handle=f"@{screen_name}" if screen_name else None,
                      avatar_url=picture if picture and _https(picture) else None, followers=followers)


def _clean(text: Optional[str], limit: int) -> Optional[str]:
    """A name as shown: control characters out, bounded, None when nothing is left."""
    if text is None:
        return None
    kept = "".join(c for c in text if c.isprintable()).strip()[:limit]
    return kept or None


def _count(value: Any) -> Optional[int]:
    try:
        number = as_int(value)
    except ValueError:
        return None
    return number if 0 <= number < 10**12 else None


def _https(url: str) -> bool:
    return len(url) <= 2000 and url.startswith("https://") and not any(c.isspace() for c in url)


def _media(media: Dict[str, Any]) -> Dict[str, Any]:
    found: Dict[str, Any] = {"type": str(media.get("type") or "media")}
    url = optional_str(media, "media_url_https") or optional_str(media, "media_url")
    if url:
        found["url"] = url
    media_id = optional_str(media, "id_str") or optional_str(media, "id")
    if media_id:
        found["media_id"] = media_id
    if optional_str(media, "expanded_url"):
        found["link"] = media["expanded_url"]
    return found


# --- tweets (mentions and replies) -----------------------------------------------------------


def _tweet(account_id: str, tweet: Any) -> Event:
    if not isinstance(tweet, dict):
        raise ValueError("tweet is not an object")
    tweet_id = require_str(tweet, "id_str")
    user = tweet.get("user")
    author = require_str(user, "id_str")
    parent = optional_str(tweet, "in_reply_to_status_id_str") or None
    if isinstance(tweet.get("retweeted_status"), dict):
        return IgnoredEvent(CHANNEL, "retweet is not inbox material")
    outbound = author == account_id
    if outbound and parent is None:
        return IgnoredEvent(CHANNEL, "our own tweet that answers nobody is not inbox material")
    if outbound:
        # Our reply: the thread's contact is the person answered, not us.
        other = optional_str(tweet, "in_reply_to_user_id_str") or account_id
        screen_name = optional_str(tweet, "in_reply_to_screen_name")
        contact = ContactRef(other, handle=f"@{screen_name}" if screen_name else None)
    else:
        contact = _user_ref(author, user)
    extended = tweet.get("extended_tweet") if isinstance(tweet.get("extended_tweet"), dict) else {}
    text = optional_str(extended, "full_text") or optional_str(tweet, "full_text") or optional_str(tweet, "text")
    attachments = _tweet_media(tweet, extended)
    subject = parent or optional_str(tweet, "quoted_status_id_str") or tweet_id
    post = posts.carried_x_v1(subject, tweet.get("quoted_status")) or posts.carried_x_v1(subject, tweet)
    return _post_message(account_id, tweet_id, parent, contact, outbound, _tweet_time(tweet), text, attachments, tweet,
                         subject, post)


def _post_message(account_id: str, post_id: str, parent: Optional[str], contact: ContactRef, outbound: bool,
                  sent_at_ms: int, text: Optional[str], attachments: List[Dict[str, Any]],
                  raw: Dict[str, Any], subject: str, post: Optional[Dict[str, Any]]) -> MessageEvent:
    """A post (v1.1 tweet or v2 Post) in its thread: `tweet:<post answered, else the post>`; its
    subject is the post behind it (answered, else quoted, else itself), as the delivery carries it."""
    return MessageEvent(
        channel=CHANNEL,
        account_id=account_id,
        platform_message_id=post_id,
        thread_key=f"tweet:{parent or post_id}",
        contact=contact,
        direction="out" if outbound else "in",
        sent_at_ms=sent_at_ms,
        text=html.unescape(text) if text is not None else None,
        msg_type="text" if text else (str(attachments[0]["type"]) if attachments else "text"),
        attachments=tuple(attachments),
        thread_kind="mention",
        subject=subject,
        reply_to=parent,
        raw=raw,
        post=post,
    )


def _tweet_media(tweet: Dict[str, Any], extended: Dict[str, Any]) -> List[Dict[str, Any]]:
    for holder in (extended.get("extended_entities"), tweet.get("extended_entities"),
                   extended.get("entities"), tweet.get("entities")):
        media = as_list(holder.get("media")) if isinstance(holder, dict) else []
        found = [_media(m) for m in media if isinstance(m, dict)]
        if found:
            return found
    return []


def _tweet_time(tweet: Dict[str, Any]) -> int:
    """Milliseconds: `timestamp_ms` (a string) when X sends it, else the v1.1 `created_at` text."""
    if tweet.get("timestamp_ms") is not None:
        return epoch_ms(tweet["timestamp_ms"])
    return parse_created_at(require_str(tweet, "created_at"))


def epoch_ms(value: Any) -> int:
    """X's millisecond timestamps (strings on the wire); ValueError for what cannot be a date."""
    ms = as_int(value)
    if not 0 <= ms < 100_000_000_000_000:
        raise ValueError(f"timestamp out of range: {ms}")
    return ms


def parse_created_at(value: str) -> int:
    """'Wed Oct 10 20:19:24 +0000 2018' -> epoch ms (parsed by hand: strptime's %a/%b follow the locale)."""
    parts = value.split()
    if len(parts) != 6 or parts[1] not in MONTHS:
        raise ValueError(f"unreadable created_at {value!r}")
    _, month, day, clock, offset, year = parts
    hour, minute, second = (int(p) for p in clock.split(":"))
    if len(offset) != 5 or offset[0] not in "+-" or not offset[1:].isdigit():
        raise ValueError(f"unreadable created_at offset {offset!r}")
    shift = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])) * (1 if offset[0] == "+" else -1)
    moment = datetime(int(year), MONTHS[month], int(day), hour, minute, second, tzinfo=timezone(shift))
    return int(moment.timestamp() * 1000)


def format_created_at(ms: int) -> str:
    """epoch ms -> X's v1.1 `created_at` text (English names regardless of locale)."""
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    day = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[moment.weekday()]
    month = next(name for name, number in MONTHS.items() if number == moment.month)
    return f"{day} {month} {moment.day:02d} {moment:%H:%M:%S} +0000 {moment.year}"


# --- X Activity API --------------------------------------------------------------------------

POST_EVENTS = ("post.mention.create", "post.reply.create", "post.quote.create", "post.create")
DM_EVENTS = ("dm.received", "dm.sent")
CHAT_EVENTS = ("chat.received", "chat.sent")
#: What `subscribe` asks X for: every way a customer reaches the account, plus `post.create` so that
#: replies written on X itself land in their threads (our other posts are ignored on arrival).
SUBSCRIBED_EVENTS = ("post.mention.create", "post.reply.create", "post.quote.create", "post.create",
                     "dm.received", "dm.sent", "chat.received", "chat.sent")
ENCRYPTED_CHAT_TEXT = "Encrypted chat: open it on X to read it."
CHAT_LINK = "https://x.com/i/chat"


def _activity(data: Any) -> Iterator[Event]:
    """One X Activity delivery (or a list of them) -> events; never raises."""
    items = data if isinstance(data, list) else [data]
    if not items:
        yield IgnoredEvent(CHANNEL, "X Activity delivery carries no events")
    for item in items:
        try:
            yield from _activity_event(item)
        except Exception as exc:  # noqa: BLE001 - one bad event must not sink the rest
            account = optional_str(item.get("filter"), "user_id") if isinstance(item, dict) else None
            yield ParseProblem(CHANNEL, f"unreadable X Activity event: {exc}", item, account or None)


def _activity_event(item: Any) -> Iterator[Event]:
    if not isinstance(item, dict):
        yield ParseProblem(CHANNEL, "X Activity event is not an object", item)
        return
    try:
        account_id = require_str(item.get("filter"), "user_id")
    except ValueError as exc:
        yield ParseProblem(CHANNEL, f"X Activity event has no filter.user_id: {exc}", item)
        return
    event_type = item.get("event_type")
    payload = item.get("payload")
    includes = item.get("includes") if isinstance(item.get("includes"), dict) else {}
    raw = {k: item[k] for k in ("event_uuid", "event_type", "filter", "tag", "payload") if k in item}
    if event_type in POST_EVENTS:
        yield _activity_post(account_id, str(event_type), payload, includes, raw)
    elif event_type in DM_EVENTS:
        if not isinstance(payload, dict) or not isinstance(payload.get("direct_message_events"), list) \
                or not payload["direct_message_events"]:  # an empty list is kept (quarantined), not dropped
            yield ParseProblem(CHANNEL, f"{event_type} without direct_message_events", item, account_id)
            return
        users = payload.get("users") if isinstance(payload.get("users"), dict) else {}
        for dm in payload["direct_message_events"]:
            try:
                event = _direct_message(account_id, dm, users)
            except Exception as exc:  # noqa: BLE001
                yield ParseProblem(CHANNEL, f"unreadable direct message event: {exc}", dm, account_id)
                continue
            yield _with_raw(event, dict(raw, payload={"direct_message_events": [dm]}))
    elif event_type in CHAT_EVENTS:
        yield _encrypted_chat(account_id, str(event_type), payload, item, raw)
    else:
        yield IgnoredEvent(CHANNEL, f"X Activity {str(event_type)[:60]!r} is not inbox material")


def _with_raw(event: Event, raw: Dict[str, Any]) -> Event:
    if isinstance(event, MessageEvent):
        from dataclasses import replace

        return replace(event, raw=raw)
    return event


def _users_by_id(includes: Dict[str, Any]) -> Dict[str, Any]:
    found: Dict[str, Any] = {}
    for user in as_list(includes.get("users")):
        if isinstance(user, dict) and isinstance(user.get("data"), dict):
            user = user["data"]
        user_id = optional_str(user, "id")
        if user_id:
            found[user_id] = user
    return found


def _referenced(post: Dict[str, Any], kind: str) -> Optional[str]:
    for ref in as_list(post.get("referenced_tweets")):
        if isinstance(ref, dict) and ref.get("type") == kind:
            return optional_str(ref, "id") or None
    return None


def _activity_post(account_id: str, event_type: str, post: Any, includes: Dict[str, Any],
                   raw: Dict[str, Any]) -> Event:
    if not isinstance(post, dict):
        raise ValueError("payload is not a post")
    post_id = require_str(post, "id")
    author = require_str(post, "author_id")
    users = _users_by_id(includes)
    parent = _referenced(post, "replied_to")
    if _referenced(post, "retweeted"):
        return IgnoredEvent(CHANNEL, "repost is not inbox material")
    outbound = author == account_id
    if outbound and parent is None:
        return IgnoredEvent(CHANNEL, "our own post that answers nobody is not inbox material")
    if outbound:
        other = optional_str(post, "in_reply_to_user_id") or account_id
        contact = _user_ref(other, users.get(other))
    else:
        contact = _user_ref(author, users.get(author))
    note = post.get("note_tweet") if isinstance(post.get("note_tweet"), dict) else {}
    text = optional_str(note, "text") or optional_str(post, "text")
    attachments = _v2_media(post, includes)
    subject = parent or _referenced(post, "quoted") or post_id
    tweets = includes.get("tweets") if isinstance(includes.get("tweets"), list) else []
    return _post_message(account_id, post_id, parent, contact, outbound, parse_iso(require_str(post, "created_at")),
                         text, attachments, raw, subject, posts.carried_x_v2(subject, tweets + [post], includes))


def _v2_media(post: Dict[str, Any], includes: Dict[str, Any]) -> List[Dict[str, Any]]:
    """`attachments.media_keys` resolved against `includes.media` (type, url or preview)."""
    keys = as_list(post.get("attachments", {}).get("media_keys")) if isinstance(post.get("attachments"), dict) else []
    media = {optional_str(m, "media_key"): m for m in as_list(includes.get("media")) if isinstance(m, dict)}
    found = []
    for key in keys:
        item = media.get(key) if isinstance(key, str) else None
        if item is None:
            continue
        entry: Dict[str, Any] = {"type": {"animated_gif": "animated_gif"}.get(str(item.get("type")),
                                                                             str(item.get("type") or "media"))}
        url = optional_str(item, "url") or optional_str(item, "preview_image_url")
        if url and _https(url):
            entry["url"] = url
        entry["media_id"] = key
        found.append(entry)
    return found


def _encrypted_chat(account_id: str, event_type: str, payload: Any, item: Dict[str, Any],
                    raw: Dict[str, Any]) -> Event:
    """An encrypted X Chat message: kept (in the participant's DM thread) as a notice that it
    exists, since reading it needs X's chat libraries; the encoded material stays in the raw."""
    if not isinstance(payload, dict):
        raise ValueError("chat payload is not an object")
    message_id = optional_str(payload, "id") or optional_str(item, "event_uuid")
    if not message_id:
        raise ValueError("chat event has neither an id nor an event_uuid")
    sender = require_str(payload, "sender_id")
    outbound = sender == account_id or event_type == "chat.sent"
    others = [p for p in str(payload.get("conversation_id") or "").split(":") if p and p != account_id]
    customer = (others[0] if others else "") if outbound else sender
    if not customer:
        raise ValueError("chat event names no other participant")
    return MessageEvent(
        channel=CHANNEL,
        account_id=account_id,
        platform_message_id=f"chat:{message_id}",
        thread_key=customer,
        contact=ContactRef(customer),
        direction="out" if outbound else "in",
        sent_at_ms=epoch_ms(payload.get("created_at_msec")),
        text=ENCRYPTED_CHAT_TEXT,
        msg_type="encrypted_chat",
        attachments=({"type": "encrypted_chat", "title": "open on X", "url": CHAT_LINK},),  # the page links `url`
        raw=raw,
    )


def parse_iso(value: str) -> int:
    """'2026-07-24T21:23:23.000Z' (API v2) -> epoch ms; ValueError for anything else."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"created_at without a time zone: {value!r}")
    return epoch_ms(int(moment.timestamp() * 1000))


# --- demo traffic ----------------------------------------------------------------------------


def _demo_deliveries(now_ms: int) -> List[Any]:
    """X Activity deliveries (what a self-serve app receives today): a DM and our answer, a
    mention, and an encrypted chat from another customer."""
    account, customer, fan, chatter = ("1520000000000000001", "1520000000000000777", "1520000000000000888",
                                       "1520000000000000999")
    me = {"id": account, "name": "Acme Coffee", "username": "acmecoffee"}
    renee = {"id": customer, "name": "Ren\u00e9e K\u00f6hler", "username": "renee_k",
             "profile_image_url": "https://pbs.twimg.com/profile_images/1520000000000000777/renee_normal.jpg",
             "public_metrics": {"followers_count": 312, "followers_count_str": "312"}}
    joao = {"id": fan, "name": "Jo\u00e3o Silva", "username": "joaosilva",
            "public_metrics": {"followers_count": 1820, "followers_count_str": "1820"}}

    def activity(event_type: str, uuid: str, payload: Dict[str, Any], includes: Optional[Dict[str, Any]] = None):
        data = {"event_uuid": uuid, "filter": {"user_id": account}, "event_type": event_type, "tag": "socialinbox",
                "payload": payload}
        if includes:
            data["includes"] = includes
        return {"data": data}

    def dm(event_id: str, at: int, sender: str, recipient: str, text: str) -> Dict[str, Any]:
        return {"direct_message_events": [{
            "type": "message_create", "id": event_id, "created_timestamp": str(at),
            "message_create": {"target": {"recipient_id": recipient}, "sender_id": sender,
                               "message_data": {"text": text}}}],
            "users": {customer: {"data": renee}, account: {"data": me}}}

    mention_id = f"18{now_ms}3"
    created_at = datetime.fromtimestamp((now_ms - 15_000) / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return [
        activity("dm.received", f"{now_ms}1", dm(f"19{now_ms}1", now_ms - 50_000, customer, account,
                                                 "Hallo! Do you have decaf &amp; oat milk in M\u00fcnchen? \u2615")),
        activity("dm.sent", f"-{now_ms}2", dm(f"19{now_ms}2", now_ms - 40_000, account, customer,
                                              "Yes, both! See you soon \U0001f60a")),
        activity("post.mention.create", f"{now_ms}3", {
            "id": mention_id, "author_id": fan, "conversation_id": mention_id, "created_at": created_at,
            "text": "@acmecoffee my flat white was perfect today \U0001f44c thanks!", "lang": "en",
            "entities": {"mentions": [{"start": 0, "end": 11, "username": "acmecoffee", "id": account}]},
            "edit_history_tweet_ids": [mention_id]}, {"users": [joao, me]}),
        activity("chat.received", f"{now_ms}4", {
            "id": f"c0ffee00-0000-4000-8000-{now_ms % 10**12:012d}", "created_at_msec": str(now_ms - 5_000),
            "sender_id": chatter, "conversation_id": f"{chatter}:{account}", "encoded_event": "CwABAAAAEzIw"}),
    ]


# --- send side -------------------------------------------------------------------------------
#
# DM:    POST {X_API_BASE_URL}/2/dm_conversations/with/{participant id}/messages {"text"}
#        -> 201 {"data": {"dm_conversation_id", "dm_event_id"}}; the id kept is dm_event_id (the
#        Account Activity echo of our own DM carries it).
# Reply: POST {X_API_BASE_URL}/2/tweets {"text", "reply": {"in_reply_to_tweet_id"}} -> 201 {"data": {"id"}}.
# Auth:  OAuth 1.0a user context (X_CONSUMER_KEY / X_CONSUMER_SECRET / X_ACCESS_TOKEN /
#        X_ACCESS_TOKEN_SECRET, requests-oauthlib imported lazily), else an OAuth 2.0 user token
#        (X_OAUTH2_USER_TOKEN, Bearer). App-only bearer tokens cannot send DMs. No window on X.

API_DEFAULT = "https://api.x.com"
DM_TEXT_LIMIT = 10_000
POST_WEIGHT_LIMIT = 280  # standard accounts; X_POST_MAX_LENGTH for accounts allowed longer posts
URL_WEIGHT = 23
URL_SHAPE = re.compile(r"https?://\S+", re.IGNORECASE)
# twitter-text v3: code points in these ranges weigh 1, every other one 2 (emoji, CJK, ...).
LIGHT_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))


def post_weight(text: str) -> int:
    """X's weighted length of a post: URLs count 23, CJK and emoji 2, most other characters 1."""
    weight = 0
    rest = URL_SHAPE.sub(lambda _: "", text)
    weight += URL_WEIGHT * len(URL_SHAPE.findall(text))
    for char in rest:
        point = ord(char)
        weight += 1 if any(low <= point <= high for low, high in LIGHT_RANGES) else 2
    return weight


def _send(message: OutboundMessage, secrets: SecretLookup, http: Any) -> SendResult:
    base = api_base("X_API_BASE_URL", API_DEFAULT)
    if message.thread_kind == "dm":
        media_ids = _media_ids(message)
        participant = message.recipient_id
        if not participant:
            raise SendError("permanent", "an X direct message needs the participant id", code="no_recipient")
        body: Dict[str, Any] = {}
        if not media_ids or (message.text or "").strip():
            body["text"] = check_text(message.text, DM_TEXT_LIMIT, "an X direct message")
        if media_ids:
            body["attachments"] = [{"media_id": media_id} for media_id in media_ids]
        auth = _auth(secrets)
        answer = _post(http, f"{base}/2/dm_conversations/with/{participant}/messages", auth, body)
        found = optional_str(answer, "dm_event_id")
    else:
        media_ids = _media_ids(message)
        limit = int_setting("X_POST_MAX_LENGTH", POST_WEIGHT_LIMIT)
        post: Dict[str, Any] = {}
        if not media_ids or (message.text or "").strip():
            post["text"] = check_text(message.text, limit, "an X post", "weighted characters",
                                      size=post_weight(message.text or ""))
        if media_ids:
            post["media"] = {"media_ids": media_ids}
        target = message.reply_to
        if not target and message.thread_key.startswith("tweet:"):
            target = message.thread_key[len("tweet:"):]
        if not target:
            raise SendError("permanent", "a reply on X needs the post it answers", code="no_post")
        auth = _auth(secrets)
        if summons_check_on():
            _check_summoned(http, base, auth, target, message.account_id)
        answer = _post(http, f"{base}/2/tweets", auth, dict(post, reply={"in_reply_to_tweet_id": target}))
        found = optional_str(answer, "id")
    if not found:
        raise SendError("unknown", "X accepted the message without an id", code="no_id")
    return SendResult(found)


def _media_ids(message: OutboundMessage) -> List[str]:
    """The X media ids of the reply's files (uploaded with upload_media when the agent attached them)."""
    found = []
    for media in message.attachments or []:
        if not isinstance(media, dict) or media.get("type") != "image" or not media.get("media_id"):
            raise SendError("permanent", "an X attachment needs its uploaded media id (X takes images only)",
                            code="attachment")
        found.append(str(media["media_id"]))
    return found


def upload_media(data: bytes, mime: str, filename: str, category: str, secrets: SecretLookup, http: Any) -> str:
    """POST {X_API_BASE_URL}/2/media/upload (multipart `media`, `media_category` dm_image or
    tweet_image, `media_type`; the account's user context): the media id a DM's `attachments` or a
    post's `media.media_ids` then names (valid 24 hours, as long as our attachment token)."""
    auth = _auth(secrets)
    response = call_platform(http, "POST", f"{api_base('X_API_BASE_URL', API_DEFAULT)}/2/media/upload", "X",
                             data={"media_category": category, "media_type": mime},
                             files={"media": (filename, data, mime)}, auth=auth)
    answer = json_body(response)
    if 200 <= response.status_code < 300:
        data_part = answer.get("data") if isinstance(answer, dict) else None
        media_id = optional_str(data_part, "id")
        if media_id:
            return media_id
        raise SendError("unknown", f"X answered HTTP {response.status_code} without a media id", code="no_id")
    raise classify_error(response.status_code, answer, response.headers)


NOT_SUMMONED = ("X accepts a reply only to a post that mentions or quotes this account, and this post "
                "does neither; answer by direct message instead, or wait until the customer mentions the account")


def summons_refusal(post: Any, includes: Any, account_id: str) -> Optional[str]:
    """Why X will not take our reply to `post` (an API v2 Post with `author_id`, `entities` and
    `referenced_tweets`; `includes.tweets` resolves quoted posts), or None when it will: the post
    is ours, mentions our account, or quotes one of our posts."""
    if not isinstance(post, dict):
        return "X did not return the post being answered"
    if optional_str(post, "author_id") == account_id:
        return None
    entities = post.get("entities") if isinstance(post.get("entities"), dict) else {}
    if any(isinstance(m, dict) and optional_str(m, "id") == account_id for m in as_list(entities.get("mentions"))):
        return None
    quoted = _referenced(post, "quoted")
    if quoted:
        tweets = includes.get("tweets") if isinstance(includes, dict) else None
        for tweet in as_list(tweets):
            if isinstance(tweet, dict) and optional_str(tweet, "id") == quoted \
                    and optional_str(tweet, "author_id") == account_id:
                return None
    return NOT_SUMMONED


def summons_check_on() -> bool:
    """Whether X restricts this app's replies (self-serve); X_REPLY_SUMMONS_CHECK=off for Enterprise."""
    return (os.environ.get("X_REPLY_SUMMONS_CHECK") or "on").strip().lower() != "off"


#: X Activity events that X delivers only because the post summons our account.
SUMMONING_EVENTS = ("post.mention.create", "post.quote.create")


def stored_post_refusal(raw: Any, account_id: str) -> Optional[str]:
    """summons_refusal for a post as we stored it (its kept raw payload), without asking X: an X
    Activity mention or quote summons us by definition; a reply (Activity `post.reply.create` or an
    Account Activity tweet) does when it answers our post, mentions us or quotes us. None when the
    payload says nothing either way (the send path still looks the post up)."""
    if not isinstance(raw, dict):
        return None
    if "event_type" in raw:  # X Activity: {"event_type", "payload": <API v2 Post>}
        post = raw.get("payload")
        if raw.get("event_type") in SUMMONING_EVENTS or not isinstance(post, dict):
            return None
        if optional_str(post, "in_reply_to_user_id") == account_id:
            return None
        return summons_refusal(post, None, account_id)
    if "id_str" not in raw:
        return None
    # Account Activity (v1.1 tweet): user_mentions, in_reply_to_user_id_str, quoted_status.user.
    entities = raw.get("entities") if isinstance(raw.get("entities"), dict) else {}
    mentioned = {optional_str(m, "id_str") for m in as_list(entities.get("user_mentions")) if isinstance(m, dict)}
    quoted = raw.get("quoted_status") if isinstance(raw.get("quoted_status"), dict) else {}
    quoted_author = optional_str(quoted.get("user"), "id_str")
    if account_id in mentioned or account_id in (optional_str(raw, "in_reply_to_user_id_str"), quoted_author):
        return None
    return NOT_SUMMONED


def _check_summoned(http: Any, base: str, auth: Any, post_id: str, account_id: str) -> None:
    """Look the post up before replying; SendError("permanent", code="not_summoned") when X would
    refuse the reply. Nothing has been sent yet, so a failed lookup is retryable, never unknown."""
    url = f"{base}/2/tweets/{post_id}"
    params = {"tweet.fields": "author_id,entities,referenced_tweets", "expansions": "referenced_tweets.id"}
    try:
        response = call_platform(http, "GET", url, "X", params=params, auth=auth)
    except SendError as error:
        raise SendError("retryable", f"X did not answer the lookup of the post being answered ({error.code}); "
                                     "nothing was sent", code="lookup_failed") from None
    answer = json_body(response)
    if response.status_code == 404 or (response.status_code == 200 and isinstance(answer, dict)
                                       and "data" not in answer and answer.get("errors")):
        raise SendError("permanent", "the post being answered no longer exists on X", code="post_gone")
    if not 200 <= response.status_code < 300:
        error = classify_error(response.status_code, answer, response.headers)
        if error.kind == "unknown":  # a 5xx on a read: nothing was sent
            error = SendError("retryable", error.reason.split(";")[0] + "; nothing was sent", code=error.code)
        raise error
    data = answer.get("data") if isinstance(answer, dict) else None
    reason = summons_refusal(data, answer.get("includes") if isinstance(answer, dict) else None, account_id)
    if reason:
        raise SendError("permanent", reason, code="not_summoned")


def _auth(secrets: SecretLookup) -> Any:
    """OAuth 1.0a user context when the account has all four credentials, else its OAuth 2.0 user
    token; SendError("reauthorize") when it has neither."""
    names = ("X_CONSUMER_KEY", "X_CONSUMER_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_TOKEN_SECRET")
    values = [secrets(name) for name in names]
    if all(values):
        from requests_oauthlib import OAuth1  # lazy: the webhook path never loads oauthlib

        key, secret, token, token_secret = values
        return OAuth1(key, client_secret=secret, resource_owner_key=token, resource_owner_secret=token_secret)
    bearer = secrets("X_OAUTH2_USER_TOKEN")
    if bearer:
        return _Bearer(bearer)
    missing = [name for name, value in zip(names, values) if not value]
    raise SendError("reauthorize", f"{' / '.join(missing)} (or X_OAUTH2_USER_TOKEN) is not configured "
                                   "for this account", code="missing_token")


class _Bearer:
    """requests auth hook for an OAuth 2.0 user token (the token never enters a URL or a log)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: Any) -> Any:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_Bearer(<redacted>)"


def _post(http: Any, url: str, auth: Any, body: Dict[str, Any]) -> Dict[str, Any]:
    response = call_platform(http, "POST", url, "X", json=body, auth=auth)
    answer = json_body(response)
    if 200 <= response.status_code < 300:
        data = answer.get("data") if isinstance(answer, dict) else None
        if isinstance(data, dict):
            return data
        raise SendError("unknown", f"X answered HTTP {response.status_code} without data", code="no_data")
    raise classify_error(response.status_code, answer, response.headers)


def classify_error(status: int, body: Any, headers: Mapping[str, str], now: Optional[float] = None) -> SendError:
    """X API v2 errors: 429 -> retryable until x-rate-limit-reset (or the exhausted 24 h limit's
    reset); 401 -> reauthorize; other 4xx (reply not allowed, recipient cannot be DMed, duplicate
    content, ...) -> permanent; 5xx -> unknown (X has been seen to post despite a 5xx)."""
    detail = _error_detail(body)
    reason = f"X answered HTTP {status}" + (f": {detail}" if detail else "")
    if status == 429:
        return SendError("retryable", reason, _reset_after(headers, now), "http_429")
    if status == 401:
        return SendError("reauthorize", reason, code="http_401")
    if status >= 500:
        return SendError("unknown", reason + "; the message may have been sent", code=f"http_{status}")
    if status == 403 and "mentioned" in detail.lower():
        return SendError("permanent", reason + " (X accepts replies only to posts that mention or quote this "
                                               "account)", code="not_summoned")
    return SendError("permanent", reason, code=f"http_{status}")


def _error_detail(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    parts = [str(body[k]) for k in ("title", "detail") if isinstance(body.get(k), str)]
    for error in as_list(body.get("errors")):
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            parts.append(error["message"])
    return "; ".join(dict.fromkeys(parts))[:400]


def _reset_after(headers: Mapping[str, str], now: Optional[float] = None) -> Optional[float]:
    """Seconds until the exhausted limit resets: a 24 h limit whose remaining is 0 wins over the
    15-minute window's x-rate-limit-reset (epoch seconds; X sends no Retry-After)."""
    import time as _time

    current = _time.time() if now is None else now
    resets: List[float] = []
    for prefix in ("x-user-limit-24hour", "x-app-limit-24hour"):
        if (headers.get(f"{prefix}-remaining") or "").strip() == "0" and headers.get(f"{prefix}-reset"):
            resets.append(_number(headers.get(f"{prefix}-reset")))
    if not resets and headers.get("x-rate-limit-reset"):
        resets.append(_number(headers.get("x-rate-limit-reset")))
    resets = [r for r in resets if r > 0]
    if not resets:
        return None
    return max(0.0, max(resets) - current)


def _number(value: Any) -> float:
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return 0.0


# --- X Activity setup: the webhook and the account's subscriptions ------------------------------
#
# Webhook: GET/POST {X_API_BASE_URL}/2/webhooks {"url"} with the app's bearer token (X_BEARER_TOKEN);
#          X answers the POST only after a CRC check of the URL succeeded.
# Subscriptions: GET/POST /2/activity/subscriptions {"event_type", "filter": {"user_id"}, "tag",
#          "webhook_id"} in the account's user context (private events: DMs, mentions).
# Both are listed first, so running the command again adds only what is missing.


class SetupError(RuntimeError):
    """The X Activity setup could not be completed; the message says what X answered."""


def subscribe(account_id: str, webhook_url: str, secrets: SecretLookup, http: Any,
              events: Sequence[str] = SUBSCRIBED_EVENTS, tag: str = "socialinbox") -> Dict[str, Any]:
    """Register `webhook_url` with X (reused when already registered) and subscribe `account_id`
    to `events` delivered there (existing subscriptions are kept). Returns {"webhook_id",
    "created": [event types], "existing": [event types]}; SetupError with X's reason otherwise."""
    if not account_id.isdigit():
        raise SetupError("the account id is the X user id (digits)")
    base = api_base("X_API_BASE_URL", API_DEFAULT)
    bearer = secrets("X_BEARER_TOKEN")
    if not bearer:
        raise SetupError("X_BEARER_TOKEN (the app's bearer token) is not configured: X registers webhooks with it")
    app = _Bearer(bearer)
    try:
        user = _auth(secrets)
    except SendError as error:
        raise SetupError(error.reason) from None
    webhooks = _setup_call(http, "GET", f"{base}/2/webhooks", app, "list the webhooks")
    found = [w for w in as_list(webhooks.get("data")) if isinstance(w, dict) and w.get("url") == webhook_url]
    if found:
        webhook_id = require_str(found[0], "id")
    else:
        created = _setup_call(http, "POST", f"{base}/2/webhooks", app, "register the webhook", {"url": webhook_url})
        webhook_id = require_str(created.get("data"), "id")
    listed = _setup_call(http, "GET", f"{base}/2/activity/subscriptions", user, "list the subscriptions")
    have = {s.get("event_type") for s in as_list(listed.get("data"))
            if isinstance(s, dict) and optional_str(s.get("filter"), "user_id") == account_id}
    result: Dict[str, Any] = {"webhook_id": webhook_id, "created": [], "existing": []}
    for event_type in events:
        if event_type in have:
            result["existing"].append(event_type)
            continue
        _setup_call(http, "POST", f"{base}/2/activity/subscriptions", user, f"subscribe to {event_type}",
                    {"event_type": event_type, "filter": {"user_id": account_id}, "tag": tag,
                     "webhook_id": webhook_id})
        result["created"].append(event_type)
    return result


def _setup_call(http: Any, method: str, url: str, auth: Any, what: str,
                body: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    try:
        response = call_platform(http, method, url, "X", json=body, auth=auth)
    except SendError as error:
        raise SetupError(f"could not {what}: no answer from X ({error.code})") from None
    answer = json_body(response)
    if not 200 <= response.status_code < 300:
        detail = _error_detail(answer)
        raise SetupError(f"could not {what}: X answered HTTP {response.status_code}" + (f": {detail}" if detail else ""))
    return answer if isinstance(answer, dict) else {}


def main(argv: Optional[List[str]] = None) -> int:
    """`python -m chalicelib.channels.x subscribe --account-id ID --webhook-url URL [--sandbox]`."""
    import argparse

    import requests

    parser = argparse.ArgumentParser(description="X Activity API: register the webhook and subscribe an account")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("subscribe", help="create the webhook and the account's subscriptions")
    command.add_argument("--account-id", required=True, help="the X user id of the account (digits)")
    command.add_argument("--webhook-url", required=True, help="https://<api>/webhooks/x (X wants HTTPS, no port)")
    command.add_argument("--sandbox", action="store_true", help="offline, against chalicelib/local/sandbox.py")
    command.add_argument("--events", nargs="*", default=list(SUBSCRIBED_EVENTS))
    args = parser.parse_args(argv)
    secrets = _cli_secrets(args.account_id)
    server = None
    if args.sandbox:
        from chalicelib.local import sandbox

        server, env = sandbox.start(None)
        os.environ["X_API_BASE_URL"] = env["X_API_BASE_URL"]
        real = secrets
        secrets = lambda name: real(name) or ("sandbox-app-bearer" if name == "X_BEARER_TOKEN" else None)  # noqa: E731
    elif not args.webhook_url.startswith("https://"):
        print("X registers HTTPS webhook URLs only (use --sandbox for a local one)", file=sys.stderr)
        return 2
    try:
        result = subscribe(args.account_id, args.webhook_url, secrets, requests.Session(), args.events)
    except SetupError as error:
        print(f"X Activity setup failed: {error}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.close()
    print(json.dumps(result, indent=2))
    return 0


def _cli_secrets(account_id: str) -> SecretLookup:
    """The account's credentials through its credential refs when it is registered, else the
    logical names as they are (env locally, SSM in AWS); never printed."""
    from chalicelib.channels.base import account_secrets

    refs: Dict[str, str] = {}
    try:
        from chalicelib.accounts import find_account

        account = find_account(CHANNEL, account_id)
        stored = getattr(account, "credential_refs", None)
        refs = dict(stored.as_dict() if hasattr(stored, "as_dict") else stored or {})
    except Exception:  # noqa: BLE001 - no table reachable: the logical names are used
        refs = {}
    return account_secrets(refs)


if __name__ == "__main__":
    sys.exit(main())
