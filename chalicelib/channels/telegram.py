"""Telegram Bot API webhooks (/webhooks/telegram): private chats, groups and channels.

No handshake (GET answers 405). Verification: the bot's webhook is registered with
`setWebhook(url, secret_token=S)`; Telegram then sends `X-Telegram-Bot-Api-Secret-Token: S` with
every POST, compared in constant time with TELEGRAM_SECRET_TOKEN. The token is a shared secret,
not a body signature, so a body altered in transit cannot be told apart here (TLS covers that).

Which bot? An Update does not say which bot received it. Ops register each bot's webhook URL
with the bot's id in the query: `https://<api>/webhooks/telegram?bot=<bot id>` (the bot id is the
number before the colon in its token, never the token itself). `delivery_context` copies that
`bot` value into the queued envelope and `parse` uses it as the account id. Without `?bot=` the
delivery belongs to TELEGRAM_BOT_ID (env / SSM) or, when that is unset, to the account id
"default" -- so a single-bot install needs no query at all.

One Update per POST. `date`/`edit_date` are seconds. Message ids are unique per chat only, so
the platform message id is `<chat id>:<message id>`. Group chats (negative ids) are one
conversation per chat (thread kind "group"); private chats one per user.
"""
from __future__ import annotations

import re
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from chalicelib.channels import signing
from chalicelib.channels.base import (
    ChannelAdapter,
    ContactRef,
    EditEvent,
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
    send_token,
)
from chalicelib.config import SecretLookup, api_base

CHANNEL = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_BOT = "default"
BOT_ID_SETTING = "TELEGRAM_BOT_ID"
BOT_PARAMETER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MESSAGE_KINDS = ("message", "edited_message", "channel_post", "edited_channel_post")
GROUP_TYPES = ("group", "supergroup", "channel")
FILE_KEYS = ("file_id", "file_unique_id", "file_name", "mime_type", "file_size", "duration", "width",
             "height", "emoji", "set_name", "title", "performer", "is_animated", "is_video")
# Checked in order: an animation also carries `document`, a venue also carries `location`.
FILE_TYPES = ("animation", "video", "video_note", "voice", "audio", "document", "sticker")
SERVICE_KEYS = (
    "new_chat_members", "left_chat_member", "new_chat_title", "new_chat_photo", "delete_chat_photo",
    "group_chat_created", "supergroup_chat_created", "channel_chat_created", "migrate_to_chat_id",
    "migrate_from_chat_id", "pinned_message", "message_auto_delete_timer_changed", "forum_topic_created",
    "forum_topic_edited", "forum_topic_closed", "forum_topic_reopened", "general_forum_topic_hidden",
    "general_forum_topic_unhidden", "video_chat_scheduled", "video_chat_started", "video_chat_ended",
    "video_chat_participants_invited", "write_access_allowed", "users_shared", "chat_shared",
    "proximity_alert_triggered", "boost_added", "chat_background_set", "connected_website",
)


class TelegramAdapter(ChannelAdapter):
    name = "telegram"
    channels = ("telegram",)
    body_signed = False  # a shared secret token, not a signature over the body

    def verify(self, request: WebhookRequest, secrets: SecretLookup) -> None:
        expected = require_secret(secrets, "TELEGRAM_SECRET_TOKEN")
        if not signing.same(expected, request.header(SECRET_HEADER)):
            raise WebhookRejected(401, "missing or invalid X-Telegram-Bot-Api-Secret-Token")
        bot = request.query.get("bot")
        if bot is not None and not BOT_PARAMETER.match(bot):
            raise WebhookRejected(400, "bot must be a Telegram bot id")

    def delivery_context(self, request: WebhookRequest) -> Dict[str, str]:
        """The receiving bot (from the webhook URL) and when the update arrived: callback
        queries carry no time of their own."""
        return {"bot": request.query.get("bot") or _configured_bot(), "received_at": str(int(time.time() * 1000))}

    def signed_headers(self, raw_body: bytes, secrets: SecretLookup) -> Dict[str, str]:
        return {SECRET_HEADER: secrets("TELEGRAM_SECRET_TOKEN") or ""}

    def ack(self) -> WebhookReply:
        return WebhookReply(200, "", "text/plain")

    def send(self, message: OutboundMessage, secrets: SecretLookup, http: Any) -> SendResult:
        """`sendMessage` to the thread's chat, answering `reply_to` through reply_parameters."""
        return _send(message, secrets, http)

    demo_accounts = (
        ("telegram", DEFAULT_BOT, "@AcmeCoffeeBot (Telegram, default bot)"),
    )

    def demo_deliveries(self, now_ms: int) -> List[Any]:
        return _demo_deliveries(now_ms)

    def parse(self, payload: Any, context: Mapping[str, str]) -> Iterator[Event]:
        if not isinstance(payload, dict):
            yield ParseProblem(CHANNEL, "update is not a JSON object", payload)
            return
        account_id = str(context.get("bot") or DEFAULT_BOT)
        kinds = [k for k in MESSAGE_KINDS + ("callback_query",) if k in payload]
        if not kinds:
            others = sorted(k for k in payload if k != "update_id")
            yield IgnoredEvent(CHANNEL, f"update {','.join(others) or 'empty'} is not inbox material")
            return
        for kind in kinds:
            try:
                if kind == "callback_query":
                    yield _callback(account_id, payload[kind], context)
                else:
                    yield _message_update(account_id, kind, payload[kind])
            except Exception as exc:  # noqa: BLE001 - keep the update for inspection
                yield ParseProblem(CHANNEL, f"unreadable {kind}: {exc}", payload, account_id)


def _configured_bot() -> str:
    """TELEGRAM_BOT_ID when ops set one (env or SSM), else "default"."""
    from chalicelib.runtime import runtime

    try:
        value = runtime.secret(BOT_ID_SETTING)
    except Exception:  # noqa: BLE001 - routing falls back; never fail the ack path on it
        value = None
    return value if value and BOT_PARAMETER.match(value) else DEFAULT_BOT


# --- messages --------------------------------------------------------------------------------


def _message_update(account_id: str, kind: str, message: Any) -> Event:
    if not isinstance(message, dict):
        raise ValueError(f"{kind} is not an object")
    content = _content(message)
    if content is None:
        service = sorted(k for k in SERVICE_KEYS if k in message)
        return IgnoredEvent(CHANNEL, f"service message {','.join(service)} is not inbox material")
    event = _message(account_id, message, content)
    if kind.startswith("edited_"):
        edited_at = message.get("edit_date", message.get("date"))
        return EditEvent(event, seconds_to_ms(edited_at))
    return event


def _message(account_id: str, message: Dict[str, Any],
             content: Tuple[Optional[str], str, List[Dict[str, Any]]]) -> MessageEvent:
    chat = message.get("chat")
    chat_id = require_str(chat, "id")
    message_id = require_str(message, "message_id")
    chat_type = optional_str(chat, "type") or "private"
    sender = message.get("from") if isinstance(message.get("from"), dict) else message.get("sender_chat")
    contact = _contact(sender) if isinstance(sender, dict) and optional_str(sender, "id") else _contact(chat)
    text, msg_type, attachments = content
    reply = message.get("reply_to_message")
    reply_id = optional_str(reply, "message_id") if isinstance(reply, dict) else None
    group = chat_type in GROUP_TYPES
    return MessageEvent(
        channel=CHANNEL,
        account_id=account_id,
        platform_message_id=f"{chat_id}:{message_id}",
        thread_key=chat_id,
        contact=contact,
        direction="out" if contact.platform_user_id == account_id else "in",
        sent_at_ms=seconds_to_ms(message.get("date")),
        text=text,
        msg_type=msg_type,
        attachments=tuple(attachments),
        thread_kind="group" if group else "dm",
        subject=optional_str(chat, "title") if group else None,
        reply_to=f"{chat_id}:{reply_id}" if reply_id else None,
        raw=message,
    )


def _contact(user: Any) -> ContactRef:
    """A user (`from`) or a chat (`sender_chat`, channels): name, @username."""
    user_id = require_str(user, "id")
    name = " ".join(p for p in (optional_str(user, "first_name"), optional_str(user, "last_name")) if p)
    name = name or optional_str(user, "title") or ""
    username = optional_str(user, "username")
    return ContactRef(user_id, display_name=name or None, handle=f"@{username}" if username else None)


def _content(message: Dict[str, Any]) -> Optional[Tuple[Optional[str], str, List[Dict[str, Any]]]]:
    """(text, msg_type, attachments); None for service messages (joins, pins, title changes...)."""
    text = optional_str(message, "text")
    caption = optional_str(message, "caption")
    if isinstance(message.get("photo"), list):
        sizes = [s for s in message["photo"] if isinstance(s, dict) and optional_str(s, "file_id")]
        if not sizes:
            raise ValueError("photo without sizes")
        largest = max(sizes, key=lambda s: (_number(s.get("file_size")), _number(s.get("width")) * _number(s.get("height"))))
        return caption, "photo", [{"type": "photo", **{k: largest[k] for k in FILE_KEYS if k in largest}}]
    for kind in FILE_TYPES:
        body = message.get(kind)
        if isinstance(body, dict):
            return caption, kind, [{"type": kind, **{k: body[k] for k in FILE_KEYS if k in body}}]
    if isinstance(message.get("venue"), dict):
        venue = message["venue"]
        location = venue.get("location") if isinstance(venue.get("location"), dict) else {}
        found = {"type": "venue", "latitude": location.get("latitude"), "longitude": location.get("longitude"),
                 "title": venue.get("title"), "address": venue.get("address")}
        label = " ".join(str(venue[k]) for k in ("title", "address") if venue.get(k))
        return label or None, "venue", [found]
    if isinstance(message.get("location"), dict):
        location = message["location"]
        return None, "location", [{"type": "location", "latitude": location.get("latitude"),
                                   "longitude": location.get("longitude")}]
    if isinstance(message.get("contact"), dict):
        card = message["contact"]
        found = {"type": "contact", **{k: card[k] for k in ("phone_number", "first_name", "last_name", "user_id", "vcard")
                                       if k in card}}
        name = " ".join(str(card[k]) for k in ("first_name", "last_name") if card.get(k))
        return name or None, "contact", [found]
    if isinstance(message.get("poll"), dict):
        poll = message["poll"]
        options = [o.get("text") for o in as_list(poll.get("options")) if isinstance(o, dict)]
        return optional_str(poll, "question"), "poll", [{"type": "poll", "options": options}]
    if isinstance(message.get("dice"), dict):
        dice = message["dice"]
        return optional_str(dice, "emoji"), "dice", [{"type": "dice", "value": dice.get("value")}]
    if text is not None:
        return text, "text", []
    if any(k in message for k in SERVICE_KEYS):
        return None
    # Something newer than this adapter (stories, giveaways...): keep it, typed, with its raw update.
    return caption, "unsupported", []


def seconds_to_ms(value: Any) -> int:
    """Telegram's unix seconds as epoch ms; ValueError for what cannot be a date."""
    seconds = as_int(value)
    if not 0 <= seconds < 100_000_000_000:
        raise ValueError(f"date out of range: {seconds}")
    return seconds * 1000


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# --- inline keyboard answers -------------------------------------------------------------------


def _callback(account_id: str, query: Any, context: Mapping[str, str]) -> MessageEvent:
    """A tap on one of our inline buttons: an inbound message of type "callback" whose text is
    the button's data, threaded into the chat holding the button. Telegram gives it no time, so
    it is dated by its arrival."""
    if not isinstance(query, dict):
        raise ValueError("callback_query is not an object")
    query_id = require_str(query, "id")
    contact = _contact(query.get("from"))
    message = query.get("message") if isinstance(query.get("message"), dict) else {}
    chat_id = optional_str(message.get("chat"), "id") or contact.platform_user_id
    chat_type = optional_str(message.get("chat"), "type") or "private"
    button_message = optional_str(message, "message_id")
    received = context.get("received_at")
    sent_at = as_int(received) if received else seconds_to_ms(message.get("date"))
    group = chat_type in GROUP_TYPES
    return MessageEvent(
        channel=CHANNEL,
        account_id=account_id,
        platform_message_id=f"callback:{query_id}",
        thread_key=chat_id,
        contact=contact,
        direction="in",
        sent_at_ms=sent_at,
        text=optional_str(query, "data") or optional_str(query, "game_short_name"),
        msg_type="callback",
        thread_kind="group" if group else "dm",
        subject=optional_str(message.get("chat"), "title") if group else None,
        reply_to=f"{chat_id}:{button_message}" if button_message else None,
        raw=query,
    )


# --- demo traffic ------------------------------------------------------------------------------


def _demo_deliveries(now_ms: int) -> List[Any]:
    seconds = now_ms // 1000
    anya = {"id": 520000001, "is_bot": False, "first_name": "\u0410\u043d\u044f", "last_name": "Petrova",
            "username": "anya_p", "language_code": "ru"}
    kenji = {"id": 520000002, "is_bot": False, "first_name": "Kenji", "username": "kenji_t", "language_code": "ja"}
    group = {"id": -1001500000001, "title": "Acme Coffee Regulars \u2615", "type": "supergroup"}
    serial = (seconds % 1_000_000) * 10  # fresh message ids per run, so every demo adds messages
    return [
        {"update_id": 880000000 + seconds % 100000, "message": {
            "message_id": serial + 1, "from": anya, "date": seconds - 90,
            "chat": {"id": anya["id"], "first_name": anya["first_name"], "last_name": "Petrova",
                     "username": "anya_p", "type": "private"},
            "text": "\u041f\u0440\u0438\u0432\u0435\u0442! Can I pre-order two cappuccinos for 9:00?"}},
        {"update_id": 880000001 + seconds % 100000, "message": {
            "message_id": serial + 2, "from": anya, "date": seconds - 60,
            "chat": {"id": anya["id"], "first_name": anya["first_name"], "type": "private"},
            "photo": [{"file_id": "AgACAgIAAxkBAAIBdemo_small", "file_unique_id": "AQADsmall", "file_size": 1200,
                       "width": 90, "height": 67},
                      {"file_id": "AgACAgIAAxkBAAIBdemo_large", "file_unique_id": "AQADlarge", "file_size": 98000,
                       "width": 1280, "height": 960}],
            "caption": "This one, with oat milk \U0001f33e"}},
        {"update_id": 880000002 + seconds % 100000, "message": {
            "message_id": serial + 3, "from": kenji, "date": seconds - 30, "chat": group,
            "text": "\u3053\u3093\u306b\u3061\u306f! Is the Shibuya store open late tonight?"}},
    ]


# --- send side -------------------------------------------------------------------------------
#
# POST {TELEGRAM_API_BASE_URL}/bot<TELEGRAM_BOT_TOKEN>/sendMessage
#   {"chat_id", "text", "reply_parameters": {"message_id", "allow_sending_without_reply": true}}
#   -> {"ok": true, "result": {"message_id", "chat": {"id"}}}; the id kept is "<chat id>:<message id>",
#   the same form `parse` gives messages. A file goes by sendPhoto {"chat_id", "photo": url, "caption"}
#   or sendDocument {"chat_id", "document": url, "caption"} (the URL of our stored copy), same answer.
#   Telegram sends no echo of a bot's own messages and has no window. The token is part of the URL, so no URL and no exception text is ever put in an error.

API_DEFAULT = "https://api.telegram.org"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024


def _send(message: OutboundMessage, secrets: SecretLookup, http: Any) -> SendResult:
    chat = message.thread_key or message.recipient_id
    if not chat:
        raise SendError("permanent", "a Telegram reply needs the chat id", code="no_chat")
    body: Dict[str, Any] = {"chat_id": _chat_id(chat)}
    method = "sendMessage"
    if message.attachments:
        method, field = _file_method(message.attachments[0])
        body[field] = message.attachments[0]["url"]
        if message.text and message.text.strip():
            body["caption"] = check_text(message.text, CAPTION_LIMIT, "a Telegram caption")
    else:
        body["text"] = check_text(message.text, TEXT_LIMIT, "Telegram")
    token = send_token(secrets, "TELEGRAM_BOT_TOKEN")
    reply_id = _reply_message_id(message.reply_to)
    if reply_id is not None:
        body["reply_parameters"] = {"message_id": reply_id, "allow_sending_without_reply": True}
    url = f"{api_base('TELEGRAM_API_BASE_URL', API_DEFAULT)}/bot{token}/{method}"
    try:
        result = _call(http, url, body)
    except _Migrated as moved:  # a group became a supergroup: send once more to its new id
        body["chat_id"] = moved.chat_id
        result = _call(http, url, body)
    message_id = optional_str(result, "message_id")
    chat_id = optional_str(result.get("chat"), "id") or str(body["chat_id"])
    if not message_id:
        raise SendError("unknown", "Telegram accepted the message without a message_id", code="no_id")
    return SendResult(f"{chat_id}:{message_id}")


def _file_method(media: Any) -> Tuple[str, str]:
    """sendPhoto for an image, sendDocument for a document, each by the URL the outbox made of our
    stored copy (Telegram fetches it: photos up to 5 MB, PDF documents up to 20 MB)."""
    kind = media.get("type") if isinstance(media, dict) else None
    if kind not in ("image", "document") or not isinstance(media.get("url"), str) or not media["url"]:
        raise SendError("permanent", "a Telegram attachment needs the URL of our stored copy", code="attachment")
    return ("sendPhoto", "photo") if kind == "image" else ("sendDocument", "document")


def _chat_id(chat: str) -> Any:
    """Numeric chat ids as numbers (what the Bot API documents), @channelusername as is."""
    try:
        return as_int(chat)
    except ValueError:
        return chat


def _reply_message_id(reply_to: Optional[str]) -> Optional[int]:
    """`parse` names messages "<chat id>:<message id>"; a bare message id is accepted too."""
    if not reply_to:
        return None
    try:
        return as_int(reply_to.rsplit(":", 1)[-1])
    except ValueError:
        return None


class _Migrated(Exception):
    def __init__(self, chat_id: Any) -> None:
        super().__init__("chat migrated")
        self.chat_id = chat_id


def _call(http: Any, url: str, body: Dict[str, Any]) -> Dict[str, Any]:
    response = call_platform(http, "POST", url, "Telegram", json=body)
    answer = json_body(response)
    if 200 <= response.status_code < 300 and isinstance(answer, dict) and answer.get("ok") is True:
        result = answer.get("result")
        if isinstance(result, dict):
            return result
        raise SendError("unknown", "Telegram answered ok without a result", code="no_result")
    if isinstance(answer, dict) and answer.get("ok") is False:
        parameters = answer.get("parameters") if isinstance(answer.get("parameters"), dict) else {}
        migrate = parameters.get("migrate_to_chat_id")
        if migrate is not None and body.get("chat_id") != migrate:
            raise _Migrated(migrate)
    raise classify_error(response.status_code, answer)


def classify_error(status: int, answer: Any) -> SendError:
    """Bot API errors: 429 -> retryable after parameters.retry_after; 401 (and 404, what Telegram
    answers for a token that names no bot) -> reauthorize; 403 (bot blocked, kicked, cannot write
    first) -> permanent; other 4xx -> permanent; 5xx or no JSON -> unknown."""
    if not isinstance(answer, dict) or answer.get("ok") is not False:
        if status >= 500 or 200 <= status < 300:
            return SendError("unknown", f"Telegram answered HTTP {status} without a result; the message "
                                        "may have been sent", code=f"http_{status}")
        answer = {}
    code = answer.get("error_code") if isinstance(answer.get("error_code"), int) else status
    description = str(answer.get("description") or f"HTTP {status}")[:300]
    reason = f"Telegram error {code}: {description}"
    parameters = answer.get("parameters") if isinstance(answer.get("parameters"), dict) else {}
    if code == 429:
        wait = parameters.get("retry_after")
        retry_after = float(wait) if isinstance(wait, (int, float)) and not isinstance(wait, bool) else None
        return SendError("retryable", reason, retry_after, "429")
    if code in (401, 404):
        return SendError("reauthorize", reason, code=str(code))
    if code >= 500:
        return SendError("unknown", reason + "; the message may have been sent", code=str(code))
    return SendError("permanent", reason, code=str(code))
