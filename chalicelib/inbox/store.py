"""The only code that writes conversations, messages, message refs, raw payloads and the
conversation event log. Ingest, the agent API and (soon) the SLA flow and outbound all change
conversations through here; what a change does is decided by `chalicelib.inbox.rules`.

Write plan (README "Data model"):
- A delivery is a duplicate if its MessageRef exists: one strongly consistent read, no write.
- Otherwise the message is created (conditional put: a repeat cannot overwrite an edit), its raw
  JSON compressed on its MessageRef when the ref stays within one write unit (kept apart with a
  TTL when it does not), and the conversation changed:
  * the conversation is read once (strongly consistent: 1 RRU, a fifth of a WRU's price), so a
    message that starts a turn or a conversation never pays for a failed conditional write;
  * a follow-up that changes no state (a customer writing again while a reply is due, or our
    second message while nothing is due) is ONE conditional UpdateItem under `rules.follow_up`'s
    guards; it moves only the recency index entry;
  * anything else is rule -> write with the rule's conditions plus the version read. A logged
    change is no transaction (which bills every item twice): the conditional update carries its
    log entry (`log_pending`), then the entry is put in the event log, conditionally (idempotent).
    Whoever next reads the conversation to change it (the next change, or the retry of this one
    after a crash between the two writes) first makes sure that entry is in the log (one
    eventually consistent GetItem, a put only when it is missing), so the log keeps every
    version, in order, exactly once: entry v+1 is never written before entry v.
- The MessageRef is written last: it marks the message as fully applied. A retry after a crash
  finds the message but no ref and recounts the conversation's counters from its messages
  instead of adding again, so counts stay exact.
"""
from __future__ import annotations

import json
import random
import time
import zlib
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError

from chalicelib import config
from chalicelib.channels.base import EditEvent, MessageEvent, RemoveEvent, StatusEvent
from chalicelib.inbox import rules
from chalicelib.inbox.ids import (contact_id_for, conversation_id_for, message_id_for, message_ref,
                                  sort_key_for)
from chalicelib.logs import logger
from chalicelib.models import (Contact, Conversation, ConversationEvent, Message, MessageRef, RawPayload)
from chalicelib.runtime import runtime

DELIVERY_RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}
CHANGE_ATTEMPTS = 6
RAW_MAX_BYTES = 64_000  # compressed bytes kept per raw payload (DynamoDB items stop at 400 KB)
REF_OVERHEAD_BYTES = 64  # a ref item's attribute names and created_at, beside its key and values
State = Dict[str, Any]


class NotFound(LookupError):
    """No such conversation."""


class Annotations(NamedTuple):
    """What an annotator (injected into ingest through the runtime; chalicelib.listening) says
    about a customer message, kept as given: `data` on the message, `labels` (short strings) on
    the conversation while it is the latest customer message. The store never reads inside.
    `priority`: the least priority the conversation should have once the message is recorded
    (an admin's rule: a negative message from an author with reach jumps the queue)."""

    data: Dict[str, Any]
    labels: Dict[str, str]
    priority: Optional[str] = None


class Busy(RuntimeError):
    """The conversation kept changing under us: try again later."""


def policy(state: Optional[State] = None, facts: Optional[rules.MessageFacts] = None) -> Any:
    """The SLA policy that governs a conversation (channel, priority, tags, and the labels of its
    latest customer message: `facts`' when one is arriving): the most specific one an admin
    defined, else the default (DEFAULT_REPLY_SLA_SECONDS / _MINUTES, 24/7).
    Duck-typed like rules.SlaPolicy; cached per container by chalicelib.sla.policies."""
    from chalicelib.sla.policies import policy_for

    if facts is not None and facts.direction == "in" and facts.labels:
        state = dict(state or {}, inbound_labels=dict(facts.labels))
    return policy_for(state or {})


# --- reading -------------------------------------------------------------------------------------


def get(conversation_id: str) -> Optional[State]:
    """The conversation as plain data (strongly consistent), or None."""
    try:
        item = Conversation.get(conversation_id, consistent_read=True)
    except DoesNotExist:
        return None
    return _state_of(item)


def _state_of(item: Conversation) -> State:
    return {k: v for k, v in item.attribute_values.items() if v is not None}


def message_by_id(conversation_id: str, message_id: str) -> Optional[Message]:
    """A message of a conversation by our id (one Query of the thread, filtered)."""
    for message in Message.query(conversation_id, filter_condition=Message.message_id == message_id, page_size=200):
        return message
    return None


def find_message(channel: str, account_id: str, platform_message_id: str) -> Optional[Tuple[str, str]]:
    """(conversation id, sort key) of a stored message, from its MessageRef."""
    try:
        ref = MessageRef.get(message_ref(channel, account_id, platform_message_id), consistent_read=True)
    except DoesNotExist:
        return None
    return ref.conversation_id, ref.sort_key


def events(conversation_id: str, limit: int = 100, after_seq: int = 0) -> List[Dict[str, Any]]:
    """The conversation's event log, oldest first."""
    found = ConversationEvent.query(conversation_id, ConversationEvent.seq > after_seq, limit=limit,
                                    page_size=limit)
    return [{"seq": int(e.seq), "at": int(e.at), "type": e.type, "actor": e.actor, "data": e.data or {}}
            for e in found]


# --- messages from the platforms ----------------------------------------------------------------


def record_message(event: MessageEvent, team: Optional[str] = None, *, edited_at_ms: Optional[int] = None,
                   removed_at_ms: Optional[int] = None, author_id: Optional[str] = None,
                   annotations: Optional[Annotations] = None) -> Tuple[bool, Tuple[str, str]]:
    """Store a message once and apply it to its conversation. Returns (created, (conversation
    id, sort key)): created is True only for the call that created the message; a duplicate
    writes nothing, and a repeat of an unfinished attempt completes it (created False).
    `annotations` ride on the same writes (no request of their own)."""
    ref = message_ref(event.channel, event.account_id, event.platform_message_id)
    try:
        existing = MessageRef.get(ref, consistent_read=True)
        return False, (existing.conversation_id, existing.sort_key)
    except DoesNotExist:
        pass
    now = runtime.now_ms()
    message_id = message_id_for(ref)
    sort_key = sort_key_for(event.sent_at_ms, message_id)
    conversation_id = _conversation_for(event)
    if event.direction == "out":  # the echo of one of our replies lands on that reply
        from chalicelib.inbox import outbound

        own = outbound.claim_echo(event, conversation_id)
        if own is not None:
            return False, own
    contact_id = contact_id_for(event.channel, event.account_id, event.contact.platform_user_id)
    message = Message(
        conversation_id, sort_key, message_id=message_id, direction=event.direction,
        msg_type=event.msg_type, text=event.text, attachments=list(event.attachments) or None,
        channel=event.channel, account_id=event.account_id,
        platform_message_id=event.platform_message_id, reply_to=event.reply_to,
        author_id=author_id or (contact_id if event.direction == "in" else None),
        sent_at=event.sent_at_ms, received_at=now,
        edited_at=edited_at_ms, removed=removed_at_ms is not None, removed_at=removed_at_ms,
        annotations=annotations.data if annotations is not None else None,
    )
    first_attempt = _create(message, Message.sort_key.does_not_exist())
    raw_inline = _raw_inline(ref, conversation_id, sort_key, event.raw)
    if event.raw and raw_inline is None:
        keep_raw(ref, event.raw)
    facts = rules.MessageFacts(message_id, event.direction, event.sent_at_ms,
                               rules.preview_of(event.text, event.msg_type, removed_at_ms is not None),
                               event.contact.display_name, event.contact.handle,
                               contact_followers=event.contact.followers if event.direction == "in" else None,
                               labels=tuple(sorted(annotations.labels.items())) if annotations is not None else ())
    state = get(conversation_id)
    if first_attempt and _follow_up(conversation_id, facts, state):
        if event.direction == "out":  # ours while nothing is due: no turn end will index it
            _search_hook().on_ours(conversation_id, event.text, event.sent_at_ms)
    else:
        _apply_message(conversation_id, event, facts, contact_id, team, recount=not first_attempt, state=state)
    _create(MessageRef(ref, conversation_id=conversation_id, sort_key=sort_key, created_at=now, raw=raw_inline),
            MessageRef.ref.does_not_exist())
    logger.info("message recorded" if first_attempt else "message completed",
                extra={"channel": event.channel, "conversation_id": conversation_id, "message_id": message_id,
                       "direction": event.direction})
    return first_attempt, (conversation_id, sort_key)


def apply_message(conversation_id: str, facts: rules.MessageFacts, recount: bool = False,
                  text: Optional[str] = None) -> State:
    """Apply a message already stored in an existing conversation (our replies and notes from
    the agent API, via chalicelib.outbound): the one-write follow-up path when it changes no
    state, else read + rule + logged write. NotFound if the conversation does not exist. A reply
    that ends no turn has its `text` indexed for search here (one that ends a turn is indexed with
    the turn)."""
    read = get(conversation_id)
    if read is None:
        raise NotFound(conversation_id)
    if not recount and _follow_up(conversation_id, facts, read):
        if facts.direction == "out":
            _search_hook().on_ours(conversation_id, text, facts.at)
        return get(conversation_id) or {}
    last: List[rules.Change] = []

    def rule(state: State) -> rules.Change:
        change = rules.message_arrived(state, facts, policy(state), runtime.now_ms())
        if recount and not change.empty:
            _recount(conversation_id, state, change)
        last[:] = [change]
        return change

    state = _change(conversation_id, rule, read)
    if facts.direction == "out" and last and not last[0].empty and not _ends_turn(last[0]):
        _search_hook().on_ours(conversation_id, text, facts.at)
    return state


def _ends_turn(change: rules.Change) -> bool:
    """Whether a change ends a customer's turn (search then indexes the turn, ours included)."""
    return change.log is not None and change.log.type == "replied"


def _conversation_for(event: MessageEvent) -> str:
    """The thread a message belongs to: its own key, or, for a reply in a public thread
    (mentions, comments), the conversation its parent already lives in."""
    if event.reply_to and event.thread_kind in ("mention", "comment"):
        parent = find_message(event.channel, event.account_id, event.reply_to)
        if parent is not None:
            return parent[0]
    return conversation_id_for(event.channel, event.account_id, event.thread_key)


def _create(item: Any, condition: Any) -> bool:
    """A conditional put; False if the item was already there."""
    try:
        item.save(condition=condition)
        return True
    except PutError as error:
        if _condition_failed(error):
            return False
        raise


def _packed_raw(raw: Any) -> Tuple[bytes, bool]:
    """The platform's JSON compressed, capped at RAW_MAX_BYTES: (bytes, truncated)."""
    text = json.dumps(raw, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)
    data = text.encode("utf-8", "replace")
    packed = zlib.compress(data, 6)
    if len(packed) <= RAW_MAX_BYTES:
        return packed, False
    return zlib.compress(data[:RAW_MAX_BYTES], 6)[:RAW_MAX_BYTES], True


def _raw_inline(ref: str, conversation_id: str, sort_key: str, raw: Any) -> Optional[bytes]:
    """The compressed raw payload when it fits on the message's ref within one write unit (most
    messages: a saved put, issue 21), else None (kept apart by `keep_raw`)."""
    if not raw:
        return None
    packed, truncated = _packed_raw(raw)
    size = len(packed) + len(ref) + len(conversation_id) + len(sort_key) + REF_OVERHEAD_BYTES
    return packed if not truncated and size <= 1024 else None


def keep_raw(ref: str, raw: Any) -> None:
    """The platform's JSON for inspection when it does not fit on the ref: compressed, capped in
    bytes, expiring after RAW_PAYLOAD_DAYS. Never on the message item and never in an index."""
    packed, truncated = _packed_raw(raw)
    RawPayload(ref, data=packed, truncated=truncated,
               expires_at=runtime.now_ms() // 1000 + _raw_days() * 86400).save()


def _raw_days() -> int:
    return config.int_setting("RAW_PAYLOAD_DAYS", 30)


def raw_payload(ref: str) -> Optional[str]:
    """The kept JSON text of a message's raw payload (None when expired or never kept): on its
    ref, shown for RAW_PAYLOAD_DAYS after the message was stored, else apart (TTL)."""
    try:
        found = MessageRef.get(ref)
    except DoesNotExist:
        found = None
    if found is not None and found.raw is not None:
        if int(found.created_at) + _raw_days() * 86_400_000 < runtime.now_ms():
            return None
        return _unpacked(found.raw)
    try:
        item = RawPayload.get(ref)
    except DoesNotExist:
        return None
    return _unpacked(item.data)


def _unpacked(data: bytes) -> str:
    try:
        return zlib.decompress(data).decode("utf-8", "ignore")
    except zlib.error:  # a truncated payload
        return zlib.decompressobj().decompress(data).decode("utf-8", "ignore")


def _follow_up(conversation_id: str, facts: rules.MessageFacts, state: Optional[State]) -> bool:
    """The one-write path for a message that changes no conversation state. `state` is the
    conversation as just read: when the guards do not hold on it, no write is tried (a failed
    conditional write is billed like a successful one); when they do, the condition still guards
    against a change made since the read."""
    change, guards = rules.follow_up(facts)
    if state is None or not rules.guards_hold(state, guards):
        return False
    condition = Conversation.conversation_id.exists()
    for guard in guards:
        condition = condition & _guard_condition(guard)
    try:
        Conversation(conversation_id).update(actions=_actions(change), condition=condition)
        return True
    except UpdateError as error:
        if _condition_failed(error):
            return False
        raise


def _apply_message(conversation_id: str, event: MessageEvent, facts: rules.MessageFacts, contact_id: str,
                   team: Optional[str], recount: bool, state: Optional[State] = None) -> None:
    for attempt in range(1, CHANGE_ATTEMPTS + 1):
        state = state if attempt == 1 and state is not None else get(conversation_id)
        if state is not None:
            _settle_log(conversation_id, state)
        now = runtime.now_ms()
        if state is None:
            ids = {"conversation_id": conversation_id, "channel": event.channel, "account_id": event.account_id,
                   "thread_key": event.thread_key, "thread_kind": event.thread_kind, "subject": event.subject,
                   "contact_id": contact_id, "contact_platform_id": event.contact.platform_user_id}
            created = rules.new_conversation(ids, facts, team or rules.DEFAULT_TEAM, policy(ids, facts), now)
            if _create_conversation(created, rules.created_entry(created, facts, policy(created, facts)), now):
                _upsert_contact(event, contact_id, now)
                _search_hook().on_message(conversation_id, event, names=True)
                return
            continue
        change = rules.message_arrived(state, facts, policy(state, facts), now)
        if recount and not change.empty:
            _recount(conversation_id, state, change)
        if change.empty:
            return
        if _write(conversation_id, state, change, now):
            if "contact_name" in change.updates or "contact_handle" in change.updates:
                _upsert_contact(event, contact_id, now)
            _search_hook().on_message(conversation_id, event, names="contact_name" in change.updates
                                      or "contact_handle" in change.updates, ends_turn=_ends_turn(change))
            return
        _pause(attempt)
    raise Busy(f"conversation {conversation_id} kept changing")


def _recount(conversation_id: str, state: State, change: rules.Change) -> None:
    """After a partial earlier attempt, set the counters from the messages themselves."""
    total = Message.count(conversation_id, filter_condition=Message.direction != "note")
    read_at = state.get("read_at")
    unread_filter = Message.direction == "in"
    if read_at is not None:
        unread_filter = unread_filter & (Message.sent_at > read_at)
    unread = Message.count(conversation_id, filter_condition=unread_filter)
    change.increments.pop("message_count", None)
    change.increments.pop("unread_count", None)
    change.updates.update({"message_count": total, "unread_count": unread})


def _create_conversation(item: State, entry: rules.LogEntry, now: int) -> bool:
    """Create a conversation and its first log entry together; False if it already exists."""
    pending = _pending(1, entry, now)
    if not _create(Conversation(**item, log_pending=pending), Conversation.conversation_id.does_not_exist()):
        return False
    _put_entry(item["conversation_id"], pending)
    _after_logged(item["conversation_id"], {}, item, entry)
    return True


def _search_hook() -> Any:
    """The search index (chalicelib.inbox.search): entries for the messages stored on the logged
    path, and names, written best effort after the store's own writes (never failing them)."""
    from chalicelib.inbox import search

    return search


def _upsert_contact(event: MessageEvent, contact_id: str, now: int) -> None:
    actions = [Contact.channel.set(event.channel), Contact.account_id.set(event.account_id),
               Contact.platform_user_id.set(event.contact.platform_user_id),
               Contact.created_at.set(Contact.created_at | now), Contact.updated_at.set(now)]
    if event.contact.display_name:
        actions.append(Contact.display_name.set(event.contact.display_name))
    if event.contact.handle:
        actions.append(Contact.handle.set(event.contact.handle))
    if event.contact.avatar_url:  # X includes pictures and follower counts with its deliveries
        actions.append(Contact.avatar_url.set(event.contact.avatar_url))
    if event.contact.followers is not None:
        actions.append(Contact.followers.set(event.contact.followers))
    Contact(contact_id).update(actions=actions)


def name_contact(conversation_id: str, name: Optional[str], handle: Optional[str], only_if_unnamed: bool,
                 followers: Optional[int] = None) -> bool:
    """Show a contact's profile name (and handle, follower count) on a conversation: one
    conditional UpdateItem that changes no state (`only_if_unnamed`: only where no name is shown
    yet). The count rides on the conversation so list rows show it without reading the contact.
    False when the conversation does not exist or (only_if_unnamed) already has a name."""
    actions = [Conversation.contact_name.set(name)] if name else []
    if handle:
        actions.append(Conversation.contact_handle.set(handle))
    if followers is not None and actions:
        actions.append(Conversation.contact_followers.set(followers))
    if not actions:
        return False
    condition = Conversation.conversation_id.exists()
    if only_if_unnamed:
        condition = condition & Conversation.contact_name.does_not_exist()
    return _conditional(Conversation(conversation_id), actions, condition)


def annotate_message(conversation_id: str, message: Message, annotations: Annotations) -> None:
    """Replace a stored message's annotations (an agent's correction); its labels reach the
    conversation only while it is the latest customer message there (never an older one's)."""
    _conditional(message, [Message.annotations.set(annotations.data)], Message.message_id.exists())
    if message.direction == "in" and annotations.labels:
        labels = dict(annotations.labels, of=message.message_id)
        _conditional(Conversation(conversation_id), [Conversation.inbound_labels.set(labels)],
                     Conversation.conversation_id.exists() & (Conversation.inbound_labels["of"] == message.message_id))


# --- receipts, edits, removals ------------------------------------------------------------------


def apply_receipt(event: StatusEvent) -> str:
    """Move an outbound message's delivery status forward (never back: receipts come out of
    order). 'unknown' when no such message is stored."""
    rank = DELIVERY_RANK.get(event.status)
    if rank is None:
        return "ignored"
    location = find_message(event.channel, event.account_id, event.platform_message_id)
    if location is None:  # it overtook our send's answer: found by the outbound id it carries
        from chalicelib.inbox import outbound

        location = outbound.locate_receipt(event)
    if location is None:
        return "unknown"
    actions = [Message.delivery_status.set(event.status), Message.delivery_rank.set(rank)]
    if event.error:
        actions.append(Message.delivery_error.set(event.error[:1000]))
    moved = _conditional(Message(*location), actions,
                         Message.message_id.exists()
                         & (Message.delivery_rank.does_not_exist() | (Message.delivery_rank < rank)))
    return "status applied" if moved else "status stale"


def apply_edit(event: EditEvent, team: Optional[str] = None, annotations: Optional[Annotations] = None) -> str:
    """A changed text: the previous version goes to the edit history, nothing is lost.
    `annotations` are used when the edit is the first we hear of the message."""
    original = event.message
    created, location = record_message(original, team, edited_at_ms=event.edited_at_ms, annotations=annotations)
    if created:
        return "created from edit"
    try:
        message = Message.get(*location, consistent_read=True)
    except DoesNotExist:
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
    if not updated:
        return "edit stale"
    preview = rules.preview_of(original.text, original.msg_type, bool(message.removed))
    _change(location[0], lambda state: rules.message_changed(state, message.message_id, preview, "message_edited",
                                                             event.edited_at_ms))
    return "edited"


def apply_removal(event: RemoveEvent, team: Optional[str] = None) -> str:
    """Marked removed on the platform; our record (and its text) is kept. 'unknown' when the
    message was never stored and the event does not carry it."""
    if event.message is not None:
        created, location = record_message(event.message, team, removed_at_ms=event.removed_at_ms)
        if created:
            return "created removed"
    else:
        found = find_message(event.channel, event.account_id, event.platform_message_id)
        if found is None:
            return "unknown"
        location = found
    removed = _conditional(Message(*location), [Message.removed.set(True), Message.removed_at.set(event.removed_at_ms)],
                           Message.message_id.exists() & Message.removed_at.does_not_exist())
    if removed:
        message_id = location[1].split("#", 1)[1]
        _change(location[0], lambda state: rules.message_changed(state, message_id, rules.preview_of(None, "", True),
                                                                 "message_removed", event.removed_at_ms))
    return "removed"


def absorb_echo(duplicate: Tuple[str, str], ref: str, keep: Message) -> None:
    """The echo of our reply `keep` became a message of its own before the send's answer told
    us its platform id (no metadata, no match): the ref moves to our reply, the duplicate is
    deleted and the conversation's counters recounted, so exactly one outbound message remains.
    A message that is not a bare echo (an agent's, or a customer's) is never touched."""
    try:
        echo = Message.get(*duplicate, consistent_read=True)
    except DoesNotExist:
        echo = None
    if echo is not None and (echo.client_id is not None or echo.direction != "out"):
        logger.warning("platform id of our reply belongs to another message",
                       extra={"conversation_id": duplicate[0], "message_id": echo.message_id})
        return
    _conditional(MessageRef(ref), [MessageRef.conversation_id.set(keep.conversation_id),
                                   MessageRef.sort_key.set(keep.sort_key)],
                 MessageRef.sort_key == duplicate[1])
    if echo is None:
        return
    if echo.delivery_rank is not None and echo.delivery_status in ("delivered", "read"):
        _conditional(Message(keep.conversation_id, keep.sort_key),
                     [Message.delivery_status.set(echo.delivery_status), Message.delivery_rank.set(echo.delivery_rank)],
                     Message.message_id.exists() & (Message.delivery_rank < echo.delivery_rank))
    try:
        echo.delete(condition=Message.client_id.does_not_exist())
    except DeleteError as error:
        if not _condition_failed(error):
            raise
        return
    preview = rules.preview_of(keep.text, keep.msg_type or "text")

    def rule(state: State) -> rules.Change:
        total = Message.count(duplicate[0], filter_condition=Message.direction != "note")
        return rules.echo_absorbed(state, echo.message_id, keep.message_id, preview, total)

    _change(duplicate[0], rule)
    logger.info("duplicate echo merged into our reply",
                extra={"conversation_id": duplicate[0], "message_id": keep.message_id})


# --- agent and flow actions -------------------------------------------------------------------


def assign(conversation_id: str, agent_id: Optional[str], actor: str, expected: Any = rules.ANY) -> State:
    """Assign (or unassign with None). With `expected`, a claim: exactly one of two racing
    claims wins, the other gets rules.Conflict."""
    return _change(conversation_id, lambda state: rules.assign(state, agent_id, actor, runtime.now_ms(), expected))


def set_status(conversation_id: str, status: str, actor: str, until: Optional[int] = None) -> State:
    return _change(conversation_id,
                   lambda state: rules.change_status(state, status, actor, runtime.now_ms(), until, policy(state)))


def record_sla_timer(conversation_id: str, turn: int, kind: str) -> Optional[State]:
    """A warning or breach timer of the SLA flow fired; recorded once, stale ones dropped.
    None when the conversation no longer exists."""
    try:
        return _change(conversation_id, lambda state: rules.sla_timer_fired(state, turn, kind, runtime.now_ms()))
    except NotFound:
        return None


def set_priority(conversation_id: str, priority: str, actor: str) -> State:
    return _change(conversation_id, lambda state: rules.set_priority(state, priority, actor))


def raise_priority(conversation_id: str, priority: str, actor: str) -> State:
    """At least `priority`: a higher one (an agent's or an escalation's) is never lowered."""
    rank = rules.PRIORITIES.index

    def rule(state: State) -> rules.Change:
        if rank(state.get("priority") or "none") >= rank(priority):
            return rules.Change()
        return rules.set_priority(state, priority, actor)

    return _change(conversation_id, rule)


def set_tags(conversation_id: str, tags: List[str], actor: str) -> State:
    return _change(conversation_id, lambda state: rules.set_tags(state, tags, actor))


def change_tags(conversation_id: str, add: List[str], remove: List[str], actor: str) -> State:
    """Add and remove tags against the tags read in the same attempt (bulk edits: a tag another
    agent added meanwhile is kept, never overwritten)."""
    def rule(state: State) -> rules.Change:
        gone = {t.strip().lower() for t in remove if isinstance(t, str)}
        current = [t for t in (state.get("tags") or []) if t not in gone and rules.tag_name(t)]  # drops garbage
        return rules.set_tags(state, current + [t for t in add if not isinstance(t, str) or t.strip().lower() not in gone],
                              actor)

    return _change(conversation_id, rule)


def mark_read(conversation_id: str, actor: str) -> State:
    return _change(conversation_id, lambda state: rules.mark_read(state, actor, runtime.now_ms()))


def _change(conversation_id: str, rule: Callable[[State], rules.Change], read: Optional[State] = None) -> State:
    """Read, decide, write under the conditions of what was read; again if someone else wrote
    first (the rule then sees their change and may answer Conflict). `read`: the state the
    caller just read, used for the first attempt."""
    for attempt in range(1, CHANGE_ATTEMPTS + 1):
        state = read if attempt == 1 and read is not None else get(conversation_id)
        if state is None:
            raise NotFound(conversation_id)
        _settle_log(conversation_id, state)
        change = rule(state)
        if change.empty:
            return state
        if _write(conversation_id, state, change, runtime.now_ms()):
            return rules.apply(state, change)
        _pause(attempt)
    raise Busy(f"conversation {conversation_id} kept changing")


def _write(conversation_id: str, state: State, change: rules.Change, now: int) -> bool:
    """One conditional update; a logged change's update carries its entry, which is then put in
    the event log (module docstring). False when the conditions no longer hold (someone else
    changed the conversation)."""
    condition = Conversation.conversation_id.exists()
    expect = dict(change.expect)
    expect.setdefault("version", state.get("version"))
    for name, value in expect.items():
        attribute = getattr(Conversation, name)
        condition = condition & (attribute.does_not_exist() if value is None else attribute == value)
    actions = _actions(change)
    if change.log is None:
        return _conditional(Conversation(conversation_id), actions, condition)
    pending = _pending(int(change.updates["version"]), change.log, now)
    if not _conditional(Conversation(conversation_id), actions + [Conversation.log_pending.set(pending)], condition):
        return False
    _put_entry(conversation_id, pending)
    _after_logged(conversation_id, state, rules.apply(state, change), change.log)
    return True


def _pending(seq: int, entry: rules.LogEntry, now: int) -> bytes:
    """A log entry as the conversation item carries it until it is in the event log (packed)."""
    from chalicelib.inbox import pending

    return pending.pack(seq, now, entry.type, entry.actor, entry.data)


def _put_entry(conversation_id: str, packed: bytes) -> None:
    """Put a log entry, once: a second put of the same entry (a retry, or a reader settling it)
    finds it there and changes nothing."""
    from chalicelib.inbox import pending

    entry = pending.unpack(packed)
    item = ConversationEvent(conversation_id, entry["seq"], at=entry["at"], type=entry["type"], actor=entry["actor"],
                             data=entry["data"] or None)
    _create(item, ConversationEvent.seq.does_not_exist())


def _settle_log(conversation_id: str, state: State) -> None:
    """Before changing a conversation (or giving up on a retry that finds nothing to do): make
    sure the entry of its latest logged change is in the log. A writer that crashed between its
    update and its put left the entry only on the item; the log never gets entry v+1 before v."""
    from chalicelib.inbox import pending

    packed = state.get("log_pending")
    if not packed:
        return
    seq = pending.unpack(packed)["seq"]
    if seq != int(state.get("version") or 0):
        return
    try:  # eventually consistent (half a read unit): a stale "missing" only costs a redundant put
        ConversationEvent.get(conversation_id, seq)
    except DoesNotExist:
        _put_entry(conversation_id, packed)


def _after_logged(conversation_id: str, before: State, after: State, entry: rules.LogEntry) -> None:
    """A committed, logged change goes to the runtime's listeners (the SLA flow arms and stops
    turn timers, routing assigns and refills): wired in chalicelib.runtime, never imported here."""
    runtime.publish_change(conversation_id, before, after, entry)


def _actions(change: rules.Change) -> List[Any]:
    actions = [getattr(Conversation, name).set(value) for name, value in change.updates.items()]
    actions += [getattr(Conversation, name).remove() for name in change.removals if name not in change.updates]
    actions += [getattr(Conversation, name).add(amount) for name, amount in change.increments.items()]
    return actions


def _guard_condition(guard: rules.Guard) -> Any:
    attribute = getattr(Conversation, guard.attribute)
    if guard.op == "missing":
        return attribute.does_not_exist()
    if guard.op == "exists":
        return attribute.exists()
    compare = {"=": attribute.__eq__, "<>": attribute.__ne__, "<=": attribute.__le__, "<": attribute.__lt__}
    condition = compare[guard.op](guard.value)
    if guard.op != "<>":
        condition = attribute.exists() & condition
    return (attribute.does_not_exist() | condition) if guard.or_missing else condition


def _conditional(model: Any, actions: List[Any], condition: Any) -> bool:
    try:
        model.update(actions=actions, condition=condition)
        return True
    except UpdateError as error:
        if _condition_failed(error):
            return False
        raise


def _condition_failed(error: Exception) -> bool:
    return getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException"


def _pause(attempt: int) -> None:
    time.sleep(random.uniform(0.005, 0.03) * attempt)
