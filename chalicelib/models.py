"""PynamoDB models: the only module that knows how data is laid out in DynamoDB.

Keys and indexes are chosen so every inbox view is a Query, never a Scan, and so that a
customer's follow-up message moves at most one index entry (write cost, README "Data model"):
- `team-latest`: a team's conversations in one status, latest activity first (rich rows),
- `team-deadline`: the same queue's conversations with something due, by deadline (at risk and
  breached are key ranges; sparse: nothing due, no entry),
- `owner-due`: one agent's conversations, or a team's unassigned ones, by deadline.
Messages live under their conversation (hash) sorted by platform time (range), so a thread
reads oldest-first in one Query. `MessageRef` maps a platform message id to our message: the
exactly-once gate and the way receipts, edits and replies find their message. Every logged
change of a conversation is an entry of `ConversationEvent` (the audit trail and the SLA
flow's input). Raw platform JSON lives apart, with a TTL (`RawPayload`).

The same keys and indexes are declared in infra/resources.json (used by the deploy and by the
local stack); tests/test_infra.py fails if the two disagree.
"""
from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib import config

STATUSES = ("open", "pending", "snoozed", "resolved")
DIRECTIONS = ("in", "out", "note")


class _Meta:
    region = config.aws_region()
    host = config.dynamodb_host()
    billing_mode = "PAY_PER_REQUEST"


def _meta(short_name: str) -> Any:
    return type("Meta", (_Meta,), {"table_name": config.table_name(short_name)})


def _index_meta(index_name: str, projection: Any) -> Any:
    return type("Meta", (), {"index_name": index_name, "projection": projection, "billing_mode": "PAY_PER_REQUEST"})


class ChannelAccount(Model):
    """One of the brand's accounts on a platform (a page, a WhatsApp number, ...)."""

    Meta = _meta("channel-accounts")
    account_key = UnicodeAttribute(hash_key=True)  # "<channel>#<platform account id>"
    channel = UnicodeAttribute()
    platform_account_id = UnicodeAttribute()
    name = UnicodeAttribute()
    # Names of the secrets (SSM parameters / env vars) that hold this account's tokens.
    credential_refs = MapAttribute(default=dict)
    enabled = BooleanAttribute(default=True)
    created_at = NumberAttribute()
    # The team whose queue this account's conversations land in (config.DEFAULT_TEAM if unset).
    team = UnicodeAttribute(null=True)
    # Set by the outbox worker when the platform refused the account's token (expired, revoked):
    # replies fail at once with a readable reason until an admin reconnects the account.
    needs_reauth = BooleanAttribute(null=True)
    needs_reauth_reason = UnicodeAttribute(null=True)
    needs_reauth_at = NumberAttribute(null=True)

    @staticmethod
    def key_for(channel: str, platform_account_id: str) -> str:
        return f"{channel}#{platform_account_id}"


class ContactsByProfileDue(GlobalSecondaryIndex):
    """Sparse: the contacts whose looked-up profile is kept fresh (chalicelib.inbox.contacts),
    by when the next lookup is due (the weekly refresh, or a failed lookup's retry). Only
    contacts of customers who wrote lately have the key, so the sweep's Query reads only what
    is due. Keys only: the sweep reads the few contacts it acts on."""

    Meta = _index_meta("profile-due", KeysOnlyProjection())
    profile_due = UnicodeAttribute(hash_key=True)  # "due": the one key value
    profile_due_at = NumberAttribute(range_key=True)


class Contact(Model):
    """A person as one platform identity (Messenger PSIDs are per page, so per account).

    Agents link identities of the same person (chalicelib.inbox.contacts): the person's first
    identity is its root and lists every member (`linked`); the others point at it (`person_id`).
    Ingest only ever sets the identity's own fields, so links survive new messages."""

    Meta = _meta("contacts")
    contact_id = UnicodeAttribute(hash_key=True)
    channel = UnicodeAttribute()
    account_id = UnicodeAttribute()
    platform_user_id = UnicodeAttribute()
    display_name = UnicodeAttribute(null=True)
    handle = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    updated_at = NumberAttribute()
    person_id = UnicodeAttribute(null=True)  # the root identity's contact id (absent: its own root)
    linked = ListAttribute(null=True, of=UnicodeAttribute)  # on a root: every identity of the person
    links_version = NumberAttribute(null=True)  # optimistic lock of link changes
    # The platform profile (chalicelib.inbox.contacts.enrich): picture URL, follower count, and
    # when it was last looked up (weekly) or last failed (retried after an hour).
    avatar_url = UnicodeAttribute(null=True)
    followers = NumberAttribute(null=True)
    profile_checked_at = NumberAttribute(null=True)
    profile_failed_at = NumberAttribute(null=True)
    profile_failures = NumberAttribute(null=True)  # failed lookups in a row (the retry backs off)
    # The sparse `profile-due` index's key: set while the sweep keeps this profile fresh.
    profile_due = UnicodeAttribute(null=True)
    profile_due_at = NumberAttribute(null=True)

    by_profile_due = ContactsByProfileDue()


# What a list row shows: projected into the recency index so the team view is one Query.
# DynamoDB projects at most 20 attributes per index: team and status are in the `queue` key, and
# `due_sort` stands for both the reply deadline (open) and the snooze wake-up (snoozed), which is
# what it is made of (rules.derived_keys; views unfold it with rules.deadlines_of).
LIST_FIELDS = (
    "channel", "account_id", "thread_kind", "subject", "contact_name", "contact_handle", "contact_platform_id",
    "contact_followers", "assignee", "last_message_preview", "last_message_direction", "awaiting_reply_since",
    "due_sort", "warn_at", "message_count", "unread_count", "priority", "tags", "first_response_at", "sla_state",
)
# What the deadline views need to pick and order work: none of it changes while a customer sends
# follow-ups, so those messages never touch the deadline indexes (write cost, see README).
DEADLINE_FIELDS = ("channel", "status", "assignee", "team", "awaiting_reply_since", "reply_due_at", "warn_at",
                   "snoozed_until", "turn", "sla_state")


class ConversationsByTeamRecent(GlobalSecondaryIndex):
    """A team's conversations in one status, latest activity first (`queue` = "<team>#<status>")."""

    Meta = _index_meta("team-latest", IncludeProjection(list(LIST_FIELDS)))
    queue = UnicodeAttribute(hash_key=True)
    last_message_at = NumberAttribute(range_key=True)


class ConversationsByTeamDue(GlobalSecondaryIndex):
    """A team's conversations in one status that have something due, most urgent first: at risk
    and breached are key ranges of `deadline` (the reply deadline, or the snooze's wake-up).
    Sparse: a conversation with nothing due has no `deadline` and no entry here (a turn's start
    puts one entry, its end deletes it: no moves); the views read those from `team-latest`."""

    Meta = _index_meta("team-deadline", IncludeProjection(list(DEADLINE_FIELDS)))
    queue = UnicodeAttribute(hash_key=True)
    deadline = NumberAttribute(range_key=True)


class ConversationsByOwnerDue(GlobalSecondaryIndex):
    """One agent's conversations in one status (`owner` = "a#<agent>#<status>"), or a team's
    unassigned ones ("u#<team>#<status>"): "nobody" is a key of its own, not a missing attribute."""

    Meta = _index_meta("owner-due", IncludeProjection(list(DEADLINE_FIELDS)))
    owner = UnicodeAttribute(hash_key=True)
    due_sort = NumberAttribute(range_key=True)


class ConversationsByContact(GlobalSecondaryIndex):
    """A contact's conversations, newest first (the contact panel's history). Keys and projected
    attributes never change after creation, so the entry is written once per conversation."""

    Meta = _index_meta("contact-history", IncludeProjection(["channel", "team"]))
    contact_id = UnicodeAttribute(hash_key=True)
    created_at = NumberAttribute(range_key=True)


class Conversation(Model):
    """A thread with one contact on one account (a DM, or a comment thread under a post).

    Written only by chalicelib.inbox.store; what each change does is decided by the pure rules
    in chalicelib.inbox.rules, including the derived index keys `queue`, `owner`, `due_sort`."""

    Meta = _meta("conversations")
    conversation_id = UnicodeAttribute(hash_key=True)
    channel = UnicodeAttribute()
    account_id = UnicodeAttribute()
    thread_key = UnicodeAttribute()
    thread_kind = UnicodeAttribute(default="dm")
    subject = UnicodeAttribute(null=True)
    contact_id = UnicodeAttribute()
    contact_name = UnicodeAttribute(null=True)
    contact_handle = UnicodeAttribute(null=True)
    contact_platform_id = UnicodeAttribute(null=True)
    contact_followers = NumberAttribute(null=True)  # the looked-up profile's count (list rows show it)
    status = UnicodeAttribute(default="open")  # open | pending | snoozed | resolved
    status_changed_at = NumberAttribute(null=True)
    cycle_started_at = NumberAttribute(null=True)  # creation, or the reopen after a resolve
    assignee = UnicodeAttribute(null=True)  # agent id; absent = unassigned
    team = UnicodeAttribute()
    # Derived index keys (rules.derived_keys): never set by hand.
    queue = UnicodeAttribute()
    owner = UnicodeAttribute()
    due_sort = NumberAttribute()
    deadline = NumberAttribute(null=True)  # absent while nothing is due (sparse `team-deadline`)
    created_at = NumberAttribute()
    last_message_at = NumberAttribute(null=True)
    last_message_id = UnicodeAttribute(null=True)
    last_message_preview = UnicodeAttribute(null=True)
    last_message_direction = UnicodeAttribute(null=True)
    last_inbound_at = NumberAttribute(null=True)
    last_outbound_at = NumberAttribute(null=True)
    # The message most recently applied: makes a retried follow-up a no-op.
    last_applied = UnicodeAttribute(null=True)
    # SLA bookkeeping: when the oldest unanswered customer message arrived, when the warning
    # fires and the reply is due (absent when nothing awaits a reply).
    awaiting_reply_since = NumberAttribute(null=True)
    reply_due_at = NumberAttribute(null=True)
    warn_at = NumberAttribute(null=True)
    first_response_at = NumberAttribute(null=True)
    # The SLA flow's view of the current turn: its number (stale timers carry an older one),
    # and whether its warning or breach was recorded.
    turn = NumberAttribute(null=True)
    sla_state = UnicodeAttribute(null=True)  # warning | breached
    breached_at = NumberAttribute(null=True)
    sla_policy_id = UnicodeAttribute(null=True)  # the policy the running wait follows
    sla_paused_ms = NumberAttribute(null=True)  # time left when a pausing policy stopped the clock
    snoozed_until = NumberAttribute(null=True)
    message_count = NumberAttribute(default=0)
    unread_count = NumberAttribute(default=0)
    read_at = NumberAttribute(null=True)
    # Bumped by every change that is logged (optimistic concurrency; the event's sequence).
    version = NumberAttribute(default=0)
    priority = UnicodeAttribute(null=True)  # low | medium | high | urgent (absent: none)
    tags = ListAttribute(null=True, of=UnicodeAttribute)
    # The latest customer message's annotation labels ({"of": <message id>, "sentiment": ...}),
    # opaque to the store: given by the ingest annotator (chalicelib.listening), filtered by the list.
    inbound_labels = MapAttribute(null=True)
    # The log entry of the latest logged change, written with that change (compact: 60-100 bytes,
    # so the item stays within one write unit): the event-log put that follows it is idempotent, and
    # the next change (or the retry of this one) puts it again if a crash came between the two
    # (chalicelib.inbox.store, chalicelib.inbox.pending).
    log_pending = BinaryAttribute(null=True, legacy_encoding=False)

    by_team_recent = ConversationsByTeamRecent()
    by_team_due = ConversationsByTeamDue()
    by_owner_due = ConversationsByOwnerDue()
    by_contact = ConversationsByContact()


class ConversationEvent(Model):
    """The append-only conversation event log: one entry per logged change, keyed by the
    conversation's version after it (so two writers can never log the same step twice)."""

    Meta = _meta("conversation-events")
    conversation_id = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute(range_key=True)
    at = NumberAttribute()
    type = UnicodeAttribute()
    actor = UnicodeAttribute()  # "customer", "agent:<id>", "flow" (SLA), "routing", "system"
    data = JSONAttribute(null=True)


class Message(Model):
    Meta = _meta("messages")
    conversation_id = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)  # "<sent_at ms, 13 digits>#<message id>"
    message_id = UnicodeAttribute()
    direction = UnicodeAttribute()  # in | out | note
    msg_type = UnicodeAttribute(default="text")
    text = UnicodeAttribute(null=True)
    attachments = JSONAttribute(null=True)
    channel = UnicodeAttribute()
    account_id = UnicodeAttribute()
    platform_message_id = UnicodeAttribute(null=True)
    reply_to = UnicodeAttribute(null=True)
    author_id = UnicodeAttribute(null=True)
    sent_at = NumberAttribute()
    received_at = NumberAttribute()
    delivery_status = UnicodeAttribute(null=True)  # queued | unknown | sent | delivered | read | failed
    delivery_rank = NumberAttribute(null=True)
    delivery_error = UnicodeAttribute(null=True)
    edited_at = NumberAttribute(null=True)
    edit_history = ListAttribute(null=True)  # earlier texts: [{"text", "replaced_at"}]
    removed = BooleanAttribute(default=False)
    removed_at = NumberAttribute(null=True)
    # Our replies and notes (chalicelib.inbox.outbound): the agent's idempotency key, how the
    # reply is to be sent, and the outbox worker's claim on it while a send is in flight.
    client_id = UnicodeAttribute(null=True)
    send_tag = UnicodeAttribute(null=True)  # e.g. HUMAN_AGENT after Messenger's 24 h window
    template = JSONAttribute(null=True)  # a WhatsApp template outside the 24 h window
    private_reply = BooleanAttribute(null=True)  # a DM answering a public comment
    send_attempts = NumberAttribute(null=True)
    send_claim = UnicodeAttribute(null=True)  # "<claimed at ms>:<token>" while a send is in flight
    applied_at = NumberAttribute(null=True)  # when it was applied to its conversation
    # What the ingest annotator said about a customer message (chalicelib.listening: sentiment,
    # topics), stored as given: the store never reads inside it.
    annotations = JSONAttribute(null=True)


class RawPayload(Model):
    """The platform's own JSON for a message that does not fit on its MessageRef, kept for
    inspection for RAW_PAYLOAD_DAYS (TTL), compressed and capped in bytes; never on the message or
    in an index."""

    Meta = _meta("raw-payloads")
    ref = UnicodeAttribute(hash_key=True)  # the message's ref, as in MessageRef
    data = BinaryAttribute(legacy_encoding=False)  # zlib-compressed UTF-8 JSON
    truncated = BooleanAttribute(default=False)
    expires_at = NumberAttribute()  # TTL (epoch seconds)


class MessageRef(Model):
    """Platform message id -> our message. Created once, conditionally: the dedupe gate."""

    Meta = _meta("message-refs")
    ref = UnicodeAttribute(hash_key=True)  # "<channel>#<account>#<platform message id>"
    conversation_id = UnicodeAttribute()
    sort_key = UnicodeAttribute()
    created_at = NumberAttribute()
    # The platform's JSON, zlib-compressed, when the ref still fits one write unit with it (most
    # messages: no RawPayload put, issue 21); shown for RAW_PAYLOAD_DAYS (chalicelib.inbox.store).
    raw = BinaryAttribute(null=True, legacy_encoding=False)


class AgentsById(GlobalSecondaryIndex):
    """An agent by id (agents are keyed by email): admin routes name agents by id."""

    Meta = _index_meta("agent-id", IncludeProjection(["name", "role", "active"]))
    agent_id = UnicodeAttribute(hash_key=True)


class Agent(Model):
    Meta = _meta("agents")
    email = UnicodeAttribute(hash_key=True)  # lower-cased
    agent_id = UnicodeAttribute()
    name = UnicodeAttribute()
    role = UnicodeAttribute(default="agent")  # agent | supervisor | admin
    password_hash = UnicodeAttribute()
    active = BooleanAttribute(default=True)
    created_at = NumberAttribute()
    # Bumped by deactivation and password changes: access and refresh tokens carry the epoch they
    # were issued under and die with it (chalicelib.api.auth).
    token_epoch = NumberAttribute(null=True)
    must_change_password = BooleanAttribute(null=True)  # created with a temporary password
    updated_at = NumberAttribute(null=True)

    by_id = AgentsById()


class AgentRouting(Model):
    """An agent's routing profile and presence (chalicelib.routing): teams, capacity (max open
    assigned conversations), presence with the time it was last refreshed (online counts while
    `last_seen` is within the grace period; `presence_expires_at` = last_seen + grace), when the
    flow last gave them a conversation, and a short assignment lease with the claims made under
    it (so concurrent assigners never push an agent past capacity, whatever the index lag)."""

    Meta = _meta("agent-routing")
    agent_id = UnicodeAttribute(hash_key=True)
    teams = ListAttribute(null=True, of=UnicodeAttribute)
    capacity = NumberAttribute(null=True)
    presence = UnicodeAttribute(null=True)  # online | away | offline
    last_seen = NumberAttribute(null=True)  # ms
    presence_expires_at = NumberAttribute(null=True)  # ms
    went_offline_handled = BooleanAttribute(null=True)
    last_assigned_at = NumberAttribute(null=True)
    lease_owner = UnicodeAttribute(null=True)
    lease_until = NumberAttribute(null=True)
    recent_claims = JSONAttribute(null=True)  # {conversation id: ms} claimed in the last seconds
    updated_at = NumberAttribute(null=True)


class TeamRouting(Model):
    """Team membership, one item per (team, agent), so a team's agents are one Query; the item
    `member="#settings"` holds the team's routing mode and round-robin cursor; the partition
    `team="#teams"` lists every team that has members or settings (one Query, no Scan)."""

    Meta = _meta("team-routing")
    team = UnicodeAttribute(hash_key=True)
    member = UnicodeAttribute(range_key=True)  # agent id, or "#settings"
    mode = UnicodeAttribute(null=True)  # round_robin | least_loaded (settings item)
    cursor = UnicodeAttribute(null=True)  # the agent round robin gave the last conversation to
    updated_at = NumberAttribute(null=True)


class LoginThrottle(Model):
    """Login attempt counters under hashed keys (email+source, source per window, email per
    window; see chalicelib.api.auth), kept whether or not the account exists, so the throttle
    itself does not reveal which emails are real."""

    Meta = _meta("login-throttle")
    key = UnicodeAttribute(hash_key=True)
    failures = NumberAttribute(default=0)
    last_failure_at = NumberAttribute(default=0)
    locked_until = NumberAttribute(default=0)
    expires_at = NumberAttribute(null=True)  # TTL


class RefreshToken(Model):
    """Refresh tokens, stored only as hashes (chalicelib.api.auth): "t#<sha256>" is one token of a
    sign-in (its family, the agent and token epoch, used once: rotation), "f#<family>" is the
    sign-in itself (revoked when a used token comes back; ends REFRESH_TTL after the login)."""

    Meta = _meta("refresh-tokens")
    key = UnicodeAttribute(hash_key=True)
    family = UnicodeAttribute(null=True)
    agent_id = UnicodeAttribute(null=True)
    email = UnicodeAttribute(null=True)
    epoch = NumberAttribute(null=True)
    used_at = NumberAttribute(null=True)
    revoked = BooleanAttribute(null=True)
    created_at = NumberAttribute(null=True)
    expires_at = NumberAttribute()  # TTL (epoch seconds)


class QuarantineNewest(GlobalSecondaryIndex):
    """Every quarantined item, newest first (one partition: quarantine is rare by design)."""

    Meta = _index_meta("newest", IncludeProjection(["reason", "channel", "account_id", "correlation_id", "preview",
                                                    "replayable"]))
    feed = UnicodeAttribute(hash_key=True)
    created_at = NumberAttribute(range_key=True)


class Quarantine(Model):
    """Accepted deliveries we could not route or read: kept for inspection, never dropped.
    Items quarantined for an unknown account keep the parsed event, so they can be replayed
    once the account is registered."""

    Meta = _meta("quarantine")
    item_id = UnicodeAttribute(hash_key=True)
    feed = UnicodeAttribute(default="quarantine")
    reason = UnicodeAttribute()
    channel = UnicodeAttribute(null=True)
    account_id = UnicodeAttribute(null=True)
    raw = UnicodeAttribute()
    preview = UnicodeAttribute(null=True)
    event = JSONAttribute(null=True)  # the parsed event, for replay
    replayable = BooleanAttribute(default=False)
    correlation_id = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    expires_at = NumberAttribute(null=True)  # TTL

    newest = QuarantineNewest()


class Notification(Model):
    """What the SLA flow's escalations told an agent (GET /api/me/notifications), newest last;
    expires after NOTIFICATION_DAYS."""

    Meta = _meta("notifications")
    agent_id = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True)  # "<ms, 13 digits>#<conversation id>#<kind>": unique, time-ordered
    conversation_id = UnicodeAttribute()
    kind = UnicodeAttribute()  # sla_warning | sla_breached
    at = NumberAttribute()
    data = JSONAttribute(null=True)
    expires_at = NumberAttribute()  # TTL


class SlaPolicy(Model):
    """An admin-edited SLA policy (chalicelib.sla.policies validates, matches and caches them),
    or the claim that keeps policy names unique (`kind` "name", key "name#<folded name>").
    The table is tiny: the runtime reads it whole with one Scan per minute per container."""

    Meta = _meta("sla-policies")
    policy_id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(default="policy")  # policy | name
    name = UnicodeAttribute(null=True)
    claimed_by = UnicodeAttribute(null=True)  # name claims: the policy holding the name
    channels = ListAttribute(null=True, of=UnicodeAttribute)  # absent: every channel
    priorities = ListAttribute(null=True, of=UnicodeAttribute)
    tags = ListAttribute(null=True, of=UnicodeAttribute)
    topics = ListAttribute(null=True, of=UnicodeAttribute)  # listening topic names (absent: any)
    sentiments = ListAttribute(null=True, of=UnicodeAttribute)  # message sentiment labels (absent: any)
    first_response_seconds = NumberAttribute(null=True)
    next_response_seconds = NumberAttribute(null=True)
    resolution_seconds = NumberAttribute(null=True)
    warn_at_percent = NumberAttribute(null=True)
    business_hours = JSONAttribute(null=True)  # null: 24/7 (chalicelib.sla.calendar)
    pause_on = ListAttribute(null=True, of=UnicodeAttribute)
    created_at = NumberAttribute(null=True)
    updated_at = NumberAttribute(null=True)


ALL_MODELS = (Notification, ChannelAccount, Contact, Conversation, ConversationEvent, Message, MessageRef, RawPayload, Agent,
              LoginThrottle, Quarantine, AgentRouting, TeamRouting, SlaPolicy, RefreshToken)


class CannedReply(Model):
    """A canned reply (chalicelib.inbox.canned): shared (`owner` "shared", written by admins and
    supervisors) or one agent's own (`owner` "agent#<id>"). Items `reply_id` "r_<hex>" are the
    replies; items "~shortcut#<folded shortcut>" claim a shortcut within its owner (unique)."""

    Meta = _meta("canned-replies")
    owner = UnicodeAttribute(hash_key=True)
    reply_id = UnicodeAttribute(range_key=True)
    shortcut = UnicodeAttribute(null=True)
    title = UnicodeAttribute(null=True)
    text = UnicodeAttribute(null=True)
    claimed_by = UnicodeAttribute(null=True)  # shortcut claims: the reply holding the shortcut
    created_by = UnicodeAttribute(null=True)
    created_at = NumberAttribute(null=True)
    updated_at = NumberAttribute(null=True)


class SearchToken(Model):
    """The search index (chalicelib.inbox.search): token -> conversation, newest first within a
    token (`rank` = "<13-digit ms>#<conversation id>"; a conversation indexed again later gets a
    newer entry, readers de-duplicate), written through the store's hook; a search is one
    bounded Query per token, never a Scan."""

    Meta = _meta("search-tokens")
    token = UnicodeAttribute(hash_key=True)  # "t#<normalised word or name prefix>"
    rank = UnicodeAttribute(range_key=True)
    conversation_id = UnicodeAttribute()
    at = NumberAttribute()


class ConversationViewer(Model):
    """Who is viewing or typing in a conversation (collision detection): a heartbeat per agent,
    expiring (TTL) shortly after it stops."""

    Meta = _meta("conversation-viewers")
    conversation_id = UnicodeAttribute(hash_key=True)
    agent_id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute(null=True)
    typing = BooleanAttribute(default=False)
    seen_at = NumberAttribute()  # ms
    expires_at = NumberAttribute()  # TTL (epoch seconds)


ALL_MODELS = ALL_MODELS + (CannedReply, SearchToken, ConversationViewer)


class ContactNote(Model):
    """An agent's private note about a contact (never shown to the customer), kept under the
    identity it was written on; the contact panel shows the notes of every linked identity."""

    Meta = _meta("contact-notes")
    contact_id = UnicodeAttribute(hash_key=True)
    note_id = UnicodeAttribute(range_key=True)  # "<13-digit ms>-<hex>": oldest first, URL-safe
    text = UnicodeAttribute()
    author_id = UnicodeAttribute()
    author_name = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    updated_at = NumberAttribute(null=True)
    updated_by = UnicodeAttribute(null=True)
    version = NumberAttribute(default=1)


class ChangeFeed(Model):
    """"Something changed" stamps read by the page's one cheap poll (chalicelib.inbox.changes):
    one tiny item per team ("t#<team>") and per agent ("a#<agent id>"), rewritten after every
    logged conversation change that concerns it while a page polls it (its mark "p#<feed>": the
    pages on the WebSocket never poll). Also one per WhatsApp Business Account
    ("wt#<waba id>", chalicelib.outbound.templates): its templates' latest status change, which
    makes every container's cached template list stale at once."""

    Meta = _meta("change-feeds")
    feed = UnicodeAttribute(hash_key=True)
    at = NumberAttribute()
    conversation_id = UnicodeAttribute(null=True)
    version = NumberAttribute(null=True)
    detail = JSONAttribute(null=True)  # "wt#": {"name", "language", "status", "reason", "at"}
    # "p#<feed>": a page polls that feed until then (ms): only polled feeds are stamped (issue 21)
    polled_until = NumberAttribute(null=True)


ALL_MODELS = ALL_MODELS + (ContactNote, ChangeFeed)


class StaffingRecord(Model):
    """Staffing's own items (chalicelib.staffing), all numbers grown by ADD or set by admins:
    - "focus#<conversation id>" / "c#<cycle start ms>": an agent's focus on one reopen cycle;
    - "ht#<group>[#team#<team>]" / "d#<UTC day ms>": cycles, focus sum and sum of squares per day;
    - "presence#<team>" / "i#<30-minute interval ms>": presence samples, online and away counts;
    - "settings" / "<group>#<team or *>": the staffing settings an admin set."""

    Meta = _meta("staffing")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


ALL_MODELS = ALL_MODELS + (StaffingRecord,)


class ListeningRecord(Model):
    """What listening keeps (chalicelib.listening), in one small table:
    - `pk` "topics", `sk` "all": the admin-edited topics, one document (a few dozen topics; every
      edit is a conditional put on `version`, so names stay unique without claim items);
    - `pk` "corrections", `sk` "<13-digit ms>#<message id>": agents' sentiment corrections, the
      labelled set (`GET /api/listening/corrections`, oldest first);
    - `pk` "items", `sk` "<13-digit ms>-<hash>": found posts and mentions, newest first in one
      Query; `pk` "post#<source platform>#<post id>" points at the item (one item per post);
    - `pk` "x_budget" and "x_poll": the X search poller's budget, usage and per-topic position."""

    Meta = _meta("listening")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = JSONAttribute(null=True)
    version = NumberAttribute(null=True)
    at = NumberAttribute(null=True)
    # Found posts and mentions: what the items list filters on (top level, so DynamoDB can).
    source = UnicodeAttribute(null=True)
    label = UnicodeAttribute(null=True)  # sentiment label
    topics = ListAttribute(null=True, of=UnicodeAttribute)
    status = UnicodeAttribute(null=True)  # new | converted | dismissed
    conversation_id = UnicodeAttribute(null=True)
    used = NumberAttribute(null=True)  # "x_budget"/<month>: X posts read (chalicelib.listening.x_search)


ALL_MODELS = ALL_MODELS + (ListeningRecord,)


class ReportAggregate(Model):
    """Reports' own items (chalicelib.reports), written only by its stream consumers (and the
    rebuild command):
    - counters and log-bucket histograms of one scope ("all", "ch#<channel>", "acct#<channel>#<id>",
      "prio#<p>", "tag#<t>", "team#<team>", "tc#<team>#<channel>", "t#<team>#acct#...",
      "t#<team>#prio#...", "agent#<id>") in one 15-minute UTC bucket ("q#<13-digit ms>") or UTC day
      ("d#<13-digit ms>"): numeric attributes created by ADD and merged by adding, plus `ua`, the
      unique authors' HyperLogLog registers as a number set (merged by union);
    - per conversation ("conv#<id>", "tracker"): how far its log was folded (`seq`) and the
      open cycle's facts, the exactly-once gate of the log consumer;
    - per message ("m#<message id>", "counted"): the exactly-once marker of the messages consumer."""

    Meta = _meta("reports")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    seq = NumberAttribute(null=True)
    state = JSONAttribute(null=True)


ALL_MODELS = ALL_MODELS + (ReportAggregate,)


class PostPreview(Model):
    """The post behind comment threads (chalicelib.inbox.post_previews): its first lines, address
    and picture as the platform answered them, one item per post ("<channel>#<post id>"), looked
    up when a thread is viewed and again once `fetched_at` is older than a day, or kept from a
    delivery that carries the post."""

    Meta = _meta("post-previews")
    post_key = UnicodeAttribute(hash_key=True)
    text = UnicodeAttribute(null=True)
    url = UnicodeAttribute(null=True)
    picture = UnicodeAttribute(null=True)
    found = BooleanAttribute(default=True)  # False: the look-up failed (retried sooner)
    fetched_at = NumberAttribute()  # ms; 0: look it up on the next view (edited, or carried without its picture)
    ref = UnicodeAttribute(null=True)  # the id the platform's look-up takes (a LinkedIn activity's share URN)


ALL_MODELS = ALL_MODELS + (PostPreview,)


class ReportCyclesByDay(GlobalSecondaryIndex):
    """Every conversation cycle that started on one UTC day ("YYYY-MM-DD"), in start order
    (`start_key` = "<13-digit start ms>#<conversation id>"): the export and the drill-down page
    through a period one day partition at a time, never a Scan. The conversation's fold state
    (start 0) has no `day`, so it is not in the index."""

    Meta = _index_meta("by-day", IncludeProjection(["row"]))
    day = UnicodeAttribute(hash_key=True)
    start_key = UnicodeAttribute(range_key=True)


class ReportCycle(Model):
    """One reopen cycle of one conversation as reports saw it (chalicelib.reports.export), written
    only by the event log's stream consumer: `row` holds its times, SLA outcomes, team, tags and
    agents as they were when each event happened; `seq` is the last log entry folded into it.
    Start 0 is the conversation's fold state (`state`), the exactly-once gate of these puts."""

    Meta = _meta("report-cycles")
    conversation_id = UnicodeAttribute(hash_key=True)
    start = NumberAttribute(range_key=True)
    seq = NumberAttribute()
    day = UnicodeAttribute(null=True)
    start_key = UnicodeAttribute(null=True)
    row = JSONAttribute(null=True)
    state = JSONAttribute(null=True)

    by_day = ReportCyclesByDay()


ALL_MODELS = ALL_MODELS + (ReportCycle,)


class PlatformAnalytics(Model):
    """Each platform's own analytics, snapshotted daily (chalicelib.analytics) because the
    platforms forget (90 days a request, 1-2 years kept):
    - `pk` "ch#<channel>", `sk` "d#<YYYY-MM-DD>#<account id>": one channel account's numbers of
      one day as the platform answered them (`data`: {"values": {metric: number}, "unavailable":
      [metrics the platform no longer serves]}), overwritten when the day is read again; a report
      reads a channel's days in one Query;
    - `pk` "cursor", `sk` "<channel>#<account id>": the last day stored (`data`: {"done", "error"}),
      where the next run resumes."""

    Meta = _meta("platform-analytics")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = JSONAttribute(null=True)
    at = NumberAttribute(null=True)


ALL_MODELS = ALL_MODELS + (PlatformAnalytics,)


class PushConnection(Model):
    """The live updates' WebSocket connections (chalicelib.push), two kinds of item:
    - ("c#<connection id>", "c"): the connection itself: its agent, the feeds it listens to;
    - ("<feed>", "<connection id>"): one per feed it listens to ("t#<team>", "a#<agent id>",
      "*" for those who see every team), what the fan-out queries per changed feed.
    `token_exp` (epoch seconds) is the access token's expiry: past it the fan-out sends nothing
    and closes the socket. `expires_at` lets DynamoDB forget items of sockets that vanished
    without a disconnect (API Gateway ends every connection after 2 hours)."""

    Meta = _meta("push-connections")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    agent_id = UnicodeAttribute()
    email = UnicodeAttribute(null=True)
    feeds = ListAttribute(null=True, of=UnicodeAttribute)
    token_exp = NumberAttribute()
    expires_at = NumberAttribute()


ALL_MODELS = ALL_MODELS + (PushConnection,)
