"""Our side's messages: replies and notes written by agents, and what sending a reply teaches us.

Part of the store layer. This module writes messages and message refs; a new message reaches its
conversation only through `store.apply_message` (our reply ends the customer's wait and is logged
as "replied"; a note is logged as "note_added"), and the rare merge of a duplicate echo through
`store.absorb_echo`.

Life of a reply (`Message.delivery_status`):

    queued --claim--> queued + send_claim --answer--> sent --receipts--> delivered --> read
                                   |--refused--> failed (delivery_error the agent can read)
                                   |--throttled--> queued (retried later, claim released)
                                   '--no answer--> unknown --echo / receipt--> sent ...

Exactly once:
- A double click is one message: the message and its client ref ("client#<conversation>#<client
  id>") are put in one transaction, both conditional on not existing; the loser reads the winner's.
  `applied_at` marks a message applied to its conversation, so a repeat after a crash finishes the
  application (recounting) instead of applying twice; a repeat while the first call may still be
  applying it (FINISH_AFTER_MS) leaves that to the first call.
- A send happens only under a claim (a conditional update: still queued, nobody holds it). A claim
  found by a redelivered queue message means an earlier attempt's outcome is unknown: the message
  becomes "unknown" and is never resent blindly.
- The platform's echo of our send, and its receipts, land on our message whichever arrives first:
  the send's answer writes the message ref for the platform id; an echo that arrives before it is
  recognised by the outbound id we put in the platform's metadata (`outbound_id`), else by the
  platform id the send returned, else as the in-flight reply with the same text. If an echo still
  became a message of its own, the send's answer merges it into ours (`store.absorb_echo`).
"""
from __future__ import annotations

import secrets as _secrets
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.channels.base import MessageEvent
from chalicelib.inbox import rules
from chalicelib.inbox.ids import message_id_for, message_ref, sort_key_for
from chalicelib.logs import logger
from chalicelib.models import Message, MessageRef
from chalicelib.runtime import runtime

Location = Tuple[str, str]  # (conversation id, sort key)
#: How far around an echo's time an in-flight reply of ours is looked for (sort keys are queue
#: times; retries can delay a send by minutes, a lost answer's echo may come much later).
ECHO_LOOKBACK_MS = 6 * 3600_000
ECHO_LOOKAHEAD_MS = 10 * 60_000
ECHO_CANDIDATES = 25
#: A claim older than this belongs to an attempt that is over (the worker's Lambda timed out or
#: died): its outcome is unknown. Longer than any send (timeouts are seconds).
CLAIM_STALE_MS = 120_000
#: A repeat of a client id finishes an earlier call's application only when that call had this
#: long to do it itself (a concurrent double click must not apply the same message twice).
FINISH_AFTER_MS = 30_000


class Gone(LookupError):
    """The message is not there (anymore)."""


class ClientIdReused(ValueError):
    """The client id already names a different message (409): a repeat must carry the same kind
    and text, or it would be answered with somebody else's message."""


@dataclass(frozen=True)
class Draft:
    """A reply or note an agent wrote, as validated by the API."""

    conversation_id: str
    kind: str  # reply | note
    text: Optional[str]
    client_id: str
    author_id: str
    send_tag: Optional[str] = None
    template: Optional[Dict[str, Any]] = None
    private_reply: bool = False
    reply_to: Optional[str] = None
    attachments: Optional[List[Dict[str, Any]]] = None  # uploaded files (chalicelib.outbound.attachments)


# --- ids -----------------------------------------------------------------------------------------


def client_ref(conversation_id: str, client_id: str) -> str:
    return f"client#{conversation_id}#{client_id}"


def outbound_id(message: Message) -> str:
    """What we put in the platform's metadata: where our message lives (the echo finds it)."""
    return f"{message.conversation_id}|{message.sort_key}"


def parse_outbound_id(value: Any) -> Optional[Location]:
    if not isinstance(value, str) or len(value) > 200 or "|" not in value:
        return None
    conversation_id, _, sort_key = value.partition("|")
    if not conversation_id.startswith("c_") or "#" not in sort_key:
        return None
    return conversation_id, sort_key


def outbound_id_of(event: Any) -> Optional[str]:
    """The outbound id an echo or receipt carries back: the adapter's `outbound_id` if it sets
    one, else Meta's echoed `message.metadata` or WhatsApp's `biz_opaque_callback_data` in the
    raw item."""
    found = getattr(event, "outbound_id", None)
    if isinstance(found, str):
        return found
    raw = getattr(event, "raw", None)
    if isinstance(raw, dict):
        message = raw.get("message")
        if isinstance(message, dict) and isinstance(message.get("metadata"), str):
            return message["metadata"]
        if isinstance(raw.get("biz_opaque_callback_data"), str):
            return raw["biz_opaque_callback_data"]
    return None


def preview_text(message: Any) -> str:
    template = getattr(message, "template", None)
    if not getattr(message, "text", None) and isinstance(template, dict):
        return f"[template: {template.get('name')}]"
    return rules.preview_of(getattr(message, "text", None), getattr(message, "msg_type", "text") or "text")


# --- creating ------------------------------------------------------------------------------------


def same_message(message: Any, kind: str, text: Optional[str]) -> bool:
    """Whether a stored message is what a call with this kind and text asks for (a repeat of the
    same client id), as opposed to a client id reused for another message."""
    return (message.text or None) == (text or None) and message.direction == ("out" if kind == "reply" else "note")


def create(draft: Draft, state: Dict[str, Any]) -> Tuple[Message, bool]:
    """Store a reply (queued) or a note once per client id and apply it to its conversation.
    Returns (message, created): created is False for a repeat of the same client id, which gets
    the first call's message (finishing its application if that call was interrupted).
    ClientIdReused when the client id already names a different message, including one a
    concurrent call stored a moment ago."""
    ref = client_ref(draft.conversation_id, draft.client_id)
    for _ in range(3):
        location = _ref_location(ref)
        if location is not None:
            message = load(*location)
            if not same_message(message, draft.kind, draft.text):
                raise ClientIdReused(draft.client_id)
            if message.applied_at is None and runtime.now_ms() - int(message.received_at) > FINISH_AFTER_MS:
                _apply(message, recount=True)  # the call that stored it died before applying it
            return message, False
        now = runtime.now_ms()
        message_id = message_id_for(ref)
        sort_key = sort_key_for(now, message_id)
        reply = draft.kind == "reply"
        message = Message(
            draft.conversation_id, sort_key, message_id=message_id, direction="out" if reply else "note",
            msg_type="template" if draft.template else (draft.attachments[0]["type"] if draft.attachments else "text"),
            text=draft.text, attachments=draft.attachments,
            channel=state["channel"], account_id=state["account_id"], author_id=draft.author_id,
            reply_to=draft.reply_to, sent_at=now, received_at=now, client_id=draft.client_id,
            delivery_status="queued" if reply else None, send_tag=draft.send_tag, template=draft.template,
            private_reply=True if draft.private_reply else None,
        )
        try:
            with TransactWrite(connection=runtime.connection()) as transaction:
                transaction.save(message, condition=Message.sort_key.does_not_exist())
                transaction.save(MessageRef(ref, conversation_id=draft.conversation_id, sort_key=sort_key,
                                            created_at=now), condition=MessageRef.ref.does_not_exist())
        except TransactWriteError as error:
            if _lost(error):
                continue  # the other click won: read its message
            raise
        _apply(message, recount=False)
        logger.info("outbound message stored", extra={"conversation_id": draft.conversation_id,
                                                       "message_id": message_id, "kind": draft.kind})
        return message, True
    raise RuntimeError(f"client ref {ref} kept changing")


def _apply(message: Message, recount: bool) -> None:
    from chalicelib.inbox import store

    facts = rules.MessageFacts(message.message_id, message.direction, int(message.sent_at), preview_text(message),
                               author=message.author_id, private_reply=bool(message.private_reply))
    store.apply_message(message.conversation_id, facts, recount=recount, text=message.text)
    now = runtime.now_ms()
    _update(message, [Message.applied_at.set(now)], Message.message_id.exists())
    message.applied_at = now


# --- reading -------------------------------------------------------------------------------------


def load(conversation_id: str, sort_key: str) -> Message:
    try:
        return Message.get(conversation_id, sort_key, consistent_read=True)
    except DoesNotExist:
        raise Gone(f"{conversation_id}/{sort_key}") from None


def find_by_client(conversation_id: str, client_id: str) -> Optional[Message]:
    """The message an earlier call with this client id stored, or None."""
    location = _ref_location(client_ref(conversation_id, client_id))
    if location is None:
        return None
    try:
        return load(*location)
    except Gone:
        return None


def last_customer_message_id(conversation_id: str, window: int = 25) -> Optional[str]:
    """The platform id of the customer's latest message (the comment a reply answers), among the
    thread's last `window` messages (one bounded Query)."""
    found = Message.query(conversation_id, scan_index_forward=False, limit=window, page_size=window)
    for message in found:
        if message.direction == "in" and message.platform_message_id:
            return message.platform_message_id
    return None


def _ref_location(ref: str) -> Optional[Location]:
    try:
        found = MessageRef.get(ref, consistent_read=True)
    except DoesNotExist:
        return None
    return found.conversation_id, found.sort_key


# --- the outbox worker's transitions -------------------------------------------------------------


def claim(message: Message) -> Optional[str]:
    """Take the right to send a queued reply; the claim token, or None when it is not queued or
    someone holds it (`claim_state` says which)."""
    now = runtime.now_ms()
    token = f"{now}:{_secrets.token_hex(6)}"
    if _update(message, [Message.send_claim.set(token), Message.send_attempts.add(1)],
               (Message.delivery_status == "queued") & Message.send_claim.does_not_exist()):
        message.send_claim = token
        return token
    return None


def claim_is_stale(message: Message) -> bool:
    if not message.send_claim:
        return False
    try:
        at = int(message.send_claim.split(":", 1)[0])
    except ValueError:
        return True
    return runtime.now_ms() - at > CLAIM_STALE_MS


def release(message: Message, token: str, reason: str) -> bool:
    """A retryable refusal: back to queued (the worker re-enqueues it with a delay)."""
    return _update(message, [Message.send_claim.remove(), Message.delivery_error.set(_readable(reason))],
                   Message.send_claim == token)


def mark_failed(message: Message, token: Optional[str], reason: str) -> bool:
    """The platform refused for good (or we cannot send): the agent reads why. A claim token of
    None is for a message failed before any claim (account not connected)."""
    condition = Message.delivery_rank.does_not_exist()
    condition = condition & ((Message.send_claim == token) if token else Message.send_claim.does_not_exist())
    return _update(message, [Message.delivery_status.set("failed"), Message.delivery_rank.set(4),
                             Message.delivery_error.set(_readable(reason)), Message.send_claim.remove()], condition)


def mark_unknown(message: Message, token: Optional[str], reason: str) -> bool:
    """No answer from the platform (or an earlier attempt's outcome was lost): never resent; the
    echo or a receipt settles it."""
    held = (Message.send_claim == token) if token else Message.send_claim.exists()
    return _update(message, [Message.delivery_status.set("unknown"), Message.delivery_error.set(_readable(reason)),
                             Message.send_claim.remove()],
                   held & Message.delivery_rank.does_not_exist())


def mark_sent(message: Message, platform_message_id: str) -> str:
    """The platform accepted the reply under `platform_message_id`: record it, and write the
    message ref so the echo and the receipts find this message. Returns "sent", "already" (an
    echo or receipt got there first), or "merged" (an echo had become a message of its own)."""
    location = (message.conversation_id, message.sort_key)
    outcome = _land(message, platform_message_id)
    ref = message_ref(message.channel, message.account_id, platform_message_id)
    if not _put_ref(ref, location):
        other = _ref_location(ref)
        if other is not None and other != location:
            from chalicelib.inbox import store

            store.absorb_echo(other, ref, message)
            return "merged"
    return outcome


def _land(message: Message, platform_message_id: str) -> str:
    """Set the platform id on our message, and status sent unless a receipt moved it further."""
    same_id = Message.platform_message_id.does_not_exist() | (Message.platform_message_id == platform_message_id)
    base = [Message.platform_message_id.set(platform_message_id), Message.send_claim.remove(),
            Message.delivery_error.remove()]
    if _update(message, base + [Message.delivery_status.set("sent"), Message.delivery_rank.set(1)],
               Message.message_id.exists() & Message.delivery_rank.does_not_exist() & same_id):
        return "sent"
    if _update(message, base, Message.message_id.exists() & same_id):
        return "already"
    logger.warning("a second platform id for one outbound message", extra={
        "conversation_id": message.conversation_id, "message_id": message.message_id})
    return "already"


def _put_ref(ref: str, location: Location) -> bool:
    try:
        MessageRef(ref, conversation_id=location[0], sort_key=location[1],
                   created_at=runtime.now_ms()).save(condition=MessageRef.ref.does_not_exist())
        return True
    except PutError as error:
        if getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException":
            return False
        raise


# --- echoes and receipts of our sends ------------------------------------------------------------


def claim_echo(event: MessageEvent, conversation_id: str) -> Optional[Location]:
    """Called by the store for an echo ("out") whose platform id has no message ref yet: if it
    is the echo of one of our replies, land it on that reply (platform id, status sent, ref) and
    return its location; None for a message sent some other way (stored as usual)."""
    message = _own_message(event, conversation_id)
    if message is None:
        return None
    location = (message.conversation_id, message.sort_key)
    _land(message, event.platform_message_id)
    ref = message_ref(event.channel, event.account_id, event.platform_message_id)
    if not _put_ref(ref, location):
        found = _ref_location(ref)
        return found or location
    logger.info("echo landed on our reply", extra={"conversation_id": location[0], "message_id": message.message_id})
    return location


def locate_receipt(event: Any) -> Optional[Location]:
    """A receipt whose platform id has no ref yet (it overtook the send's answer): our message
    when the receipt carries our outbound id; the ref is written so later receipts find it."""
    location = parse_outbound_id(outbound_id_of(event))
    if location is None:
        return None
    try:
        message = load(*location)
    except Gone:
        return None
    if not _is_ours(message, event.channel, event.account_id):
        return None
    _land(message, event.platform_message_id)
    _put_ref(message_ref(event.channel, event.account_id, event.platform_message_id), location)
    return location


def _own_message(event: MessageEvent, conversation_id: str) -> Optional[Message]:
    location = parse_outbound_id(outbound_id_of(event))
    if location is not None:
        try:
            message = load(*location)
        except Gone:
            message = None
        if message is not None and _is_ours(message, event.channel, event.account_id):
            return message
    # No metadata: the platform id the send returned, else the in-flight reply with this text.
    low = sort_key_for(max(event.sent_at_ms - ECHO_LOOKBACK_MS, 0), "")
    high = sort_key_for(event.sent_at_ms + ECHO_LOOKAHEAD_MS, "~")
    candidates = Message.query(conversation_id, Message.sort_key.between(low, high), scan_index_forward=False,
                               filter_condition=Message.client_id.exists() & (Message.direction == "out"),
                               page_size=ECHO_CANDIDATES, limit=ECHO_CANDIDATES, consistent_read=True)
    text = _folded(event.text)
    in_flight = None
    for message in candidates:
        if message.channel != event.channel or message.account_id != event.account_id:
            continue
        if message.platform_message_id == event.platform_message_id:
            return message
        if (message.platform_message_id is None and message.delivery_status in ("queued", "unknown")
                and text and _folded(message.text) == text):
            in_flight = message  # newest first: the last match is the oldest in-flight reply
    return in_flight


def _is_ours(message: Message, channel: str, account_id: str) -> bool:
    return (message.direction == "out" and message.client_id is not None and message.channel == channel
            and message.account_id == account_id)


def _folded(text: Optional[str]) -> str:
    return " ".join((text or "").split())


# --- helpers -------------------------------------------------------------------------------------


def _readable(reason: str) -> str:
    text = " ".join(str(reason).split())
    return text[:1000] or "unknown error"


def _update(message: Message, actions: Any, condition: Any) -> bool:
    try:
        message.update(actions=actions, condition=condition)
        return True
    except UpdateError as error:
        if getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException":
            return False
        raise
    except DoesNotExist:
        return False


def _lost(error: TransactWriteError) -> bool:
    reasons = getattr(error, "cancellation_reasons", None) or []
    codes = {r.code for r in reasons if r is not None}
    return bool(codes) and codes <= {"ConditionalCheckFailed", "TransactionConflict", "None"}
