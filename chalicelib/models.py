"""PynamoDB models: the only module that knows how data is laid out in DynamoDB.

Keys and indexes are chosen so every inbox view is a Query, never a Scan:
- conversations by status (newest first) and by status + reply deadline (most urgent first),
- by assignee, by channel, and by channel + status.
Messages live under their conversation (hash) sorted by platform time (range), so a thread
reads oldest-first in one Query. `MessageRef` maps a platform message id to our message; its
conditional create is the exactly-once gate for every delivery.

The same keys and indexes are declared in infra/resources.json (used by the deploy and by the
local stack); tests/test_infra.py fails if the two disagree.
"""
from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
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

    @staticmethod
    def key_for(channel: str, platform_account_id: str) -> str:
        return f"{channel}#{platform_account_id}"


class Contact(Model):
    """A person as one platform identity (Messenger PSIDs are per page, so per account)."""

    Meta = _meta("contacts")
    contact_id = UnicodeAttribute(hash_key=True)
    channel = UnicodeAttribute()
    account_id = UnicodeAttribute()
    platform_user_id = UnicodeAttribute()
    display_name = UnicodeAttribute(null=True)
    handle = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    updated_at = NumberAttribute()


class ConversationsByStatus(GlobalSecondaryIndex):
    Meta = _index_meta("by-status", AllProjection())
    status = UnicodeAttribute(hash_key=True)
    last_message_at = NumberAttribute(range_key=True)


class ConversationsByDeadline(GlobalSecondaryIndex):
    Meta = _index_meta("by-status-deadline", AllProjection())
    status = UnicodeAttribute(hash_key=True)
    reply_due_at = NumberAttribute(range_key=True)


class ConversationsByAssignee(GlobalSecondaryIndex):
    Meta = _index_meta("by-assignee", AllProjection())
    assignee = UnicodeAttribute(hash_key=True)
    last_message_at = NumberAttribute(range_key=True)


class ConversationsByChannel(GlobalSecondaryIndex):
    Meta = _index_meta("by-channel", AllProjection())
    channel = UnicodeAttribute(hash_key=True)
    last_message_at = NumberAttribute(range_key=True)


class ConversationsByChannelStatus(GlobalSecondaryIndex):
    Meta = _index_meta("by-channel-status", AllProjection())
    channel_status = UnicodeAttribute(hash_key=True)
    last_message_at = NumberAttribute(range_key=True)


class Conversation(Model):
    """A thread with one contact on one account (a DM, or a comment thread under a post)."""

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
    status = UnicodeAttribute(default="open")  # open | pending | snoozed | resolved
    channel_status = UnicodeAttribute()  # "<channel>#<status>", kept in step with status
    status_changed_at = NumberAttribute(null=True)
    assignee = UnicodeAttribute(null=True)  # agent id; absent = unassigned (sparse index)
    team = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    last_message_at = NumberAttribute(null=True)
    last_message_preview = UnicodeAttribute(null=True)
    last_message_direction = UnicodeAttribute(null=True)
    last_inbound_at = NumberAttribute(null=True)
    last_outbound_at = NumberAttribute(null=True)
    # SLA bookkeeping: when the oldest unanswered customer message arrived, and the reply
    # deadline (absent when nothing is awaiting a reply, so the deadline index stays sparse).
    awaiting_reply_since = NumberAttribute(null=True)
    reply_due_at = NumberAttribute(null=True)
    first_response_at = NumberAttribute(null=True)
    snoozed_until = NumberAttribute(null=True)
    message_count = NumberAttribute(default=0)
    unread_count = NumberAttribute(default=0)

    by_status = ConversationsByStatus()
    by_deadline = ConversationsByDeadline()
    by_assignee = ConversationsByAssignee()
    by_channel = ConversationsByChannel()
    by_channel_status = ConversationsByChannelStatus()


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
    delivery_status = UnicodeAttribute(null=True)  # sent | delivered | read | failed
    delivery_rank = NumberAttribute(null=True)
    delivery_error = UnicodeAttribute(null=True)
    edited_at = NumberAttribute(null=True)
    edit_history = ListAttribute(null=True)  # earlier texts: [{"text", "replaced_at"}]
    removed = BooleanAttribute(default=False)
    removed_at = NumberAttribute(null=True)
    raw = JSONAttribute(null=True)


class MessageRef(Model):
    """Platform message id -> our message. Created once, conditionally: the dedupe gate."""

    Meta = _meta("message-refs")
    ref = UnicodeAttribute(hash_key=True)  # "<channel>#<account>#<platform message id>"
    conversation_id = UnicodeAttribute()
    sort_key = UnicodeAttribute()
    created_at = NumberAttribute()


class Agent(Model):
    Meta = _meta("agents")
    email = UnicodeAttribute(hash_key=True)  # lower-cased
    agent_id = UnicodeAttribute()
    name = UnicodeAttribute()
    role = UnicodeAttribute(default="agent")  # agent | admin
    password_hash = UnicodeAttribute()
    active = BooleanAttribute(default=True)
    created_at = NumberAttribute()


class LoginThrottle(Model):
    """Failed logins per email (hashed), kept whether or not the account exists, so the
    lockout itself does not reveal which emails are real."""

    Meta = _meta("login-throttle")
    key = UnicodeAttribute(hash_key=True)
    failures = NumberAttribute(default=0)
    last_failure_at = NumberAttribute(default=0)
    locked_until = NumberAttribute(default=0)
    expires_at = NumberAttribute(null=True)  # TTL


class Quarantine(Model):
    """Accepted deliveries we could not route or read: kept for inspection, never dropped."""

    Meta = _meta("quarantine")
    item_id = UnicodeAttribute(hash_key=True)
    reason = UnicodeAttribute()
    channel = UnicodeAttribute(null=True)
    account_id = UnicodeAttribute(null=True)
    raw = UnicodeAttribute()
    correlation_id = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    expires_at = NumberAttribute(null=True)  # TTL


ALL_MODELS = (ChannelAccount, Contact, Conversation, Message, MessageRef, Agent, LoginThrottle, Quarantine)


