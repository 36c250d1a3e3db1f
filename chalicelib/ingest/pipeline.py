"""Turns normalised events into contacts, conversations and messages, exactly once.

Exactly once: one DynamoDB transaction creates the MessageRef (condition: it does not exist
yet), the message, the contact and the conversation counters. A duplicate delivery fails the
condition and changes nothing. What depends on order (latest message, reply deadline, reopening
a resolved thread) is applied afterwards by conditional updates that only move forward in time,
so they are safe to repeat and safe under out-of-order delivery.
"""
from __future__ import annotations

import hashlib
import json
import random
import time
from typing import Any, Callable, Dict, Optional, Tuple

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib import config
from chalicelib.channels.base import (
    EditEvent,
    Event,
    IgnoredEvent,
    MessageEvent,
    ParseProblem,
    RemoveEvent,
    StatusEvent,
)
from chalicelib.accounts import find_account
from chalicelib.logs import logger
from chalicelib.runtime import runtime
from chalicelib.models import ChannelAccount, Contact, Conversation, Message, MessageRef, Quarantine

PREVIEW_CHARS = 140
DELIVERY_RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}
QUARANTINE_DAYS = 30


def now_ms() -> int:
    return int(time.time() * 1000)


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:24]


def conversation_id_for(channel: str, account_id: str, thread_key: str) -> str:
    return "c_" + _digest("conversation", channel, account_id, thread_key)


def contact_id_for(channel: str, account_id: str, platform_user_id: str) -> str:
    return "k_" + _digest("contact", channel, account_id, platform_user_id)


def message_ref(channel: str, account_id: str, platform_message_id: str) -> str:
    return f"{channel}#{account_id}#{platform_message_id}"


def message_id_for(ref: str) -> str:
    return "m_" + _digest(ref)


def sort_key_for(sent_at_ms: int, message_id: str) -> str:
    return f"{max(sent_at_ms, 0):013d}#{message_id}"


def preview_of(text: Optional[str], msg_type: str) -> str:
    if text:
        flat = " ".join(text.split())
        return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"
    return f"[{msg_type}]"


# --- entry point -------------------------------------------------------------------------------


def handle(event: Event, correlation_id: str = "") -> str:
    """Apply one event; returns what happened (for logs, tests and the benchmark)."""
    if isinstance(event, IgnoredEvent):
        logger.info("event ignored", extra={"channel": event.channel, "reason": event.reason})
        return "ignored"
    if isinstance(event, ParseProblem):
        quarantine("unreadable: " + event.reason, event.channel, event.account_id, event.raw, correlation_id)
        return "quarantined"
    channel, account_id = _routing_of(event)
    account = find_account(channel, account_id)
    if account is None or not account.enabled:
        quarantine("unknown account", channel, account_id, _raw_of(event), correlation_id)
        return "quarantined"
    if isinstance(event, MessageEvent):
        return "created" if record_message(event) else "duplicate"
    if isinstance(event, StatusEvent):
        return apply_status(event, correlation_id)
    if isinstance(event, EditEvent):
        return apply_edit(event)
    if isinstance(event, RemoveEvent):
        return apply_removal(event)
    raise TypeError(f"unknown event type {type(event).__name__}")


def _routing_of(event: Event) -> Tuple[str, str]:
    if isinstance(event, EditEvent):
        return event.message.channel, event.message.account_id
    return event.channel, event.account_id  # type: ignore[union-attr]


def _raw_of(event: Event) -> Any:
    if isinstance(event, MessageEvent):
        return event.raw
    if isinstance(event, EditEvent):
        return event.message.raw
    if isinstance(event, RemoveEvent) and event.message is not None:
        return event.message.raw
    return {k: v for k, v in event.__dict__.items() if k != "message"}


# --- messages ----------------------------------------------------------------------------------


def record_message(event: MessageEvent, *, edited_at_ms: Optional[int] = None,
                   removed_at_ms: Optional[int] = None, author_id: Optional[str] = None,
                   advance_if_duplicate: bool = True) -> bool:
    """Store a message once. True if this call created it, False for a duplicate.

    `advance_if_duplicate=False` is for the copy an edit or removal carries: when the message
    already exists, that copy (new text, or none, at the time of the change) is not a new message
    and must not move the conversation's latest message, reply deadline or status."""
    created, _ = _record(event, edited_at_ms=edited_at_ms, removed_at_ms=removed_at_ms, author_id=author_id,
                         advance_if_duplicate=advance_if_duplicate)
    return created


def _record(event: MessageEvent, *, edited_at_ms: Optional[int] = None, removed_at_ms: Optional[int] = None,
            author_id: Optional[str] = None, advance_if_duplicate: bool = True) -> Tuple[bool, Tuple[str, str]]:
    """record_message, also returning where the message lives: (conversation id, sort key)."""
    now = now_ms()
    ref = message_ref(event.channel, event.account_id, event.platform_message_id)
    message_id = message_id_for(ref)
    sort_key = sort_key_for(event.sent_at_ms, message_id)
    conversation_id = _conversation_for(event)
    contact_id = contact_id_for(event.channel, event.account_id, event.contact.platform_user_id)

    message = Message(
        conversation_id, sort_key, message_id=message_id, direction=event.direction,
        msg_type=event.msg_type, text=event.text, attachments=list(event.attachments) or None,
        channel=event.channel, account_id=event.account_id,
        platform_message_id=event.platform_message_id, reply_to=event.reply_to,
        author_id=author_id or (contact_id if event.direction == "in" else None),
        sent_at=event.sent_at_ms, received_at=now, raw=event.raw or None,
        edited_at=edited_at_ms, removed=removed_at_ms is not None, removed_at=removed_at_ms,
    )
    contact_actions = [
        Contact.channel.set(event.channel),
        Contact.account_id.set(event.account_id),
        Contact.platform_user_id.set(event.contact.platform_user_id),
        Contact.created_at.set(Contact.created_at | now),
        Contact.updated_at.set(now),
    ]
    if event.contact.display_name:
        contact_actions.append(Contact.display_name.set(event.contact.display_name))
    if event.contact.handle:
        contact_actions.append(Contact.handle.set(event.contact.handle))

    conversation_actions = [
        Conversation.channel.set(event.channel),
        Conversation.account_id.set(event.account_id),
        Conversation.thread_key.set(Conversation.thread_key | event.thread_key),
        Conversation.thread_kind.set(Conversation.thread_kind | event.thread_kind),
        Conversation.contact_id.set(Conversation.contact_id | contact_id),
        Conversation.contact_platform_id.set(Conversation.contact_platform_id | event.contact.platform_user_id),
        Conversation.status.set(Conversation.status | "open"),
        Conversation.channel_status.set(Conversation.channel_status | f"{event.channel}#open"),
        Conversation.created_at.set(Conversation.created_at | now),
        Conversation.message_count.add(1),
    ]
    if event.subject:
        conversation_actions.append(Conversation.subject.set(Conversation.subject | event.subject))
    if event.direction == "in":
        conversation_actions.append(Conversation.unread_count.add(1))
        if event.contact.display_name:
            conversation_actions.append(Conversation.contact_name.set(event.contact.display_name))
        if event.contact.handle:
            conversation_actions.append(Conversation.contact_handle.set(event.contact.handle))

    def write() -> None:
        with TransactWrite(connection=_connection()) as transaction:
            transaction.save(MessageRef(ref, conversation_id=conversation_id, sort_key=sort_key, created_at=now),
                             condition=MessageRef.ref.does_not_exist(), return_values="ALL_OLD")
            transaction.save(message)
            transaction.update(Contact(contact_id), actions=contact_actions)
            transaction.update(Conversation(conversation_id), actions=conversation_actions)

    try:
        _with_conflict_retries(write)
        created = True
    except TransactWriteError as error:
        existing = _existing_ref(error, ref)
        if existing is None:
            raise
        created = False
        conversation_id, sort_key = existing.conversation_id, existing.sort_key
    if created or advance_if_duplicate:
        _advance_conversation(conversation_id, event)
    logger.info("message recorded" if created else "duplicate message",
                extra={"channel": event.channel, "conversation_id": conversation_id, "message_id": message_id,
                       "direction": event.direction})
    return created, (conversation_id, sort_key)


def _connection() -> Connection:
    return runtime.connection()


TRANSACTION_ATTEMPTS = 4


def _with_conflict_retries(write: Callable[[], None]) -> None:
    """Run a transaction, retrying when DynamoDB cancels it for a conflict with a concurrent
    one (two messages of one busy conversation): short jittered waits instead of sending the
    whole envelope back through the queue."""
    for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
        try:
            write()
            return
        except TransactWriteError as error:
            reasons = getattr(error, "cancellation_reasons", None) or []
            conflict = any(r is not None and r.code == "TransactionConflict" for r in reasons)
            if not conflict or attempt == TRANSACTION_ATTEMPTS:
                raise
            logger.info("transaction conflict, retrying", extra={"attempt": attempt})
            time.sleep(random.uniform(0.02, 0.08) * attempt)


def _existing_ref(error: TransactWriteError, ref: str) -> Optional[MessageRef]:
    """The MessageRef that made the transaction fail (a duplicate), taken from the cancellation
    reason itself (ALL_OLD: no extra read); None if the transaction failed for another reason."""
    reasons = getattr(error, "cancellation_reasons", None) or []
    if not reasons or reasons[0] is None or reasons[0].code != "ConditionalCheckFailed":
        return None
    if reasons[0].raw_item:
        return MessageRef.from_raw_data(reasons[0].raw_item)
    return MessageRef.get(ref)


def _conversation_for(event: MessageEvent) -> str:
    """The thread a message belongs to: its own key, or, for a reply in a public thread
    (mentions, comments), the conversation its parent already lives in."""
    if event.reply_to and event.thread_kind in ("mention", "comment"):
        try:
            parent = MessageRef.get(message_ref(event.channel, event.account_id, event.reply_to))
            return parent.conversation_id
        except DoesNotExist:
            pass
    return conversation_id_for(event.channel, event.account_id, event.thread_key)


def _advance_conversation(conversation_id: str, event: MessageEvent) -> None:
    """Order-dependent fields, each moved only forward in time (idempotent, race-safe)."""
    at = event.sent_at_ms
    conversation = Conversation(conversation_id)
    latest = [
        Conversation.last_message_at.set(at),
        Conversation.last_message_preview.set(preview_of(event.text, event.msg_type)),
        Conversation.last_message_direction.set(event.direction),
    ]
    if event.direction == "in":
        latest.append(Conversation.last_inbound_at.set(at))
    else:
        latest.append(Conversation.last_outbound_at.set(at))
    try:
        conversation.update(actions=latest, condition=(Conversation.last_message_at.does_not_exist()
                                                       | (Conversation.last_message_at <= at)))
    except UpdateError as error:
        if not _condition_failed(error):
            raise
        # An older message arriving late: only the per-direction watermark may still move.
        field = Conversation.last_inbound_at if event.direction == "in" else Conversation.last_outbound_at
        _conditional(conversation, [field.set(at)], field.does_not_exist() | (field < at))
        conversation.refresh()

    if event.direction == "in":
        _await_reply(conversation, at)
        if conversation.status in ("resolved", "snoozed") and (conversation.status_changed_at or 0) < at:
            _conditional(
                conversation,
                [Conversation.status.set("open"), Conversation.channel_status.set(f"{event.channel}#open"),
                 Conversation.status_changed_at.set(now_ms()), Conversation.snoozed_until.remove()],
                Conversation.status.is_in("resolved", "snoozed")
                & (Conversation.status_changed_at.does_not_exist() | (Conversation.status_changed_at < at)),
            )
    else:
        since = conversation.awaiting_reply_since
        if since is not None and since <= at:
            actions = [Conversation.awaiting_reply_since.remove(), Conversation.reply_due_at.remove()]
            if conversation.first_response_at is None:
                actions.append(Conversation.first_response_at.set(at))
            _conditional(conversation, actions, Conversation.awaiting_reply_since <= at)


def _await_reply(conversation: Conversation, at: int) -> None:
    """Start (or move earlier) the wait for a reply, unless we already answered after `at`."""
    since = conversation.awaiting_reply_since
    answered_after = conversation.last_outbound_at is not None and conversation.last_outbound_at >= at
    if answered_after or (since is not None and since <= at):
        return
    due = at + config.int_setting("DEFAULT_REPLY_SLA_MINUTES", config.DEFAULT_REPLY_SLA_MINUTES) * 60_000
    _conditional(
        conversation,
        [Conversation.awaiting_reply_since.set(at), Conversation.reply_due_at.set(due)],
        (Conversation.awaiting_reply_since.does_not_exist() | (Conversation.awaiting_reply_since > at))
        & (Conversation.last_outbound_at.does_not_exist() | (Conversation.last_outbound_at < at)),
    )


def _conditional(model: Any, actions: list, condition: Any) -> bool:
    try:
        model.update(actions=actions, condition=condition)
        return True
    except UpdateError as error:
        if _condition_failed(error):
            return False
        raise


def _condition_failed(error: Exception) -> bool:
    cause = getattr(error, "cause_response_code", None)
    return cause == "ConditionalCheckFailedException"


# --- receipts, edits, removals -----------------------------------------------------------------


def _locate(channel: str, account_id: str, platform_message_id: str) -> Optional[Tuple[str, str]]:
    """(conversation id, sort key) of a stored message, from its MessageRef."""
    try:
        ref = MessageRef.get(message_ref(channel, account_id, platform_message_id))
    except DoesNotExist:
        return None
    return ref.conversation_id, ref.sort_key


def _load(location: Optional[Tuple[str, str]]) -> Optional[Message]:
    if location is None:
        return None
    try:
        return Message.get(*location)
    except DoesNotExist:
        return None


def apply_status(event: StatusEvent, correlation_id: str = "") -> str:
    """Move an outbound message's delivery status forward (never back: receipts come out of order)."""
    rank = DELIVERY_RANK.get(event.status)
    if rank is None:
        logger.info("unknown delivery status ignored", extra={"channel": event.channel, "status": event.status})
        return "ignored"
    location = _locate(event.channel, event.account_id, event.platform_message_id)
    if location is None:
        quarantine("receipt for an unknown message", event.channel, event.account_id, _raw_of(event), correlation_id)
        return "quarantined"
    actions = [Message.delivery_status.set(event.status), Message.delivery_rank.set(rank)]
    if event.error:
        actions.append(Message.delivery_error.set(event.error))
    # The ref and its message are written in one transaction, so the key is enough: no read.
    moved = _conditional(Message(*location), actions,
                         Message.message_id.exists()
                         & (Message.delivery_rank.does_not_exist() | (Message.delivery_rank < rank)))
    return "status applied" if moved else "status stale"


def apply_edit(event: EditEvent) -> str:
    """A changed text: the previous version goes to the edit history, nothing is lost."""
    original = event.message
    created, location = _record(original, edited_at_ms=event.edited_at_ms, advance_if_duplicate=False)
    if created:
        return "created from edit"
    message = _load(location)
    if message is None:
        return "edit lost its message"
    if message.edited_at is not None and message.edited_at >= event.edited_at_ms:
        return "edit stale"
    if message.text == original.text:
        return "edit unchanged"
    history = list(message.edit_history or [])
    history.append({"text": message.text, "replaced_at": event.edited_at_ms})
    updated = _conditional(
        message,
        [Message.text.set(original.text), Message.edit_history.set(history), Message.edited_at.set(event.edited_at_ms)],
        Message.edited_at.does_not_exist() | (Message.edited_at < event.edited_at_ms),
    )
    return "edited" if updated else "edit stale"


def apply_removal(event: RemoveEvent) -> str:
    """Mark removed on the platform; our record (and its text) is kept."""
    if event.message is not None:
        created, location = _record(event.message, removed_at_ms=event.removed_at_ms, advance_if_duplicate=False)
        if created:
            return "created removed"
    else:
        found = _locate(event.channel, event.account_id, event.platform_message_id)
        if found is None:
            quarantine("removal of an unknown message", event.channel, event.account_id, _raw_of(event), "")
            return "quarantined"
        location = found
    _conditional(Message(*location), [Message.removed.set(True), Message.removed_at.set(event.removed_at_ms)],
                 Message.message_id.exists() & Message.removed_at.does_not_exist())
    return "removed"


# --- quarantine --------------------------------------------------------------------------------


def quarantine(reason: str, channel: Optional[str], account_id: Optional[str], raw: Any,
               correlation_id: str = "") -> str:
    """Keep what we could not route or read, keyed by content so duplicates land once."""
    raw_text = json.dumps(raw, sort_keys=True, ensure_ascii=False, default=str)
    item_id = "q_" + _digest(reason, channel or "", account_id or "", raw_text)
    now = now_ms()
    Quarantine(item_id, reason=reason, channel=channel, account_id=account_id, raw=raw_text[:350_000],
               correlation_id=correlation_id or None, created_at=now,
               expires_at=now // 1000 + QUARANTINE_DAYS * 86400).save()
    logger.warning("event quarantined", extra={"reason": reason, "channel": channel, "account_id": account_id,
                                               "quarantine_id": item_id})
    return item_id
