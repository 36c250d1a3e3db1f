"""Inbox queries and their JSON shapes. Every list is a DynamoDB Query on an index."""
from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple

from chalicelib.models import STATUSES, Conversation, Message

MAX_PAGE = 100
CHANNELS = ("messenger", "instagram", "whatsapp", "facebook", "x", "telegram", "linkedin")


class BadQuery(ValueError):
    """A filter, sort or cursor the API cannot honour (answered as 400)."""


def iso(ms: Optional[int]) -> Optional[str]:
    if ms is None:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_cursor(key: Optional[Dict[str, Any]]) -> Optional[str]:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: Optional[str]) -> Optional[Dict[str, Any]]:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise BadQuery("cursor is not valid") from error
    if not isinstance(key, dict) or not all(isinstance(v, dict) and len(v) == 1 for v in key.values()):
        raise BadQuery("cursor is not valid")
    return key


def parse_limit(raw: Optional[str], default: int = 25) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise BadQuery(f"limit must be an integer from 1 to {MAX_PAGE}")
    return int(raw)


def conversation_json(conversation: Conversation) -> Dict[str, Any]:
    platform_id = conversation.contact_platform_id or ""
    fallback = f"{conversation.channel.capitalize()} user …{platform_id[-4:]}" if platform_id else "Unknown contact"
    return {
        "id": conversation.conversation_id,
        "channel": conversation.channel,
        "account_id": conversation.account_id,
        "kind": conversation.thread_kind,
        "subject": conversation.subject,
        "status": conversation.status,
        "assignee": conversation.assignee,
        "team": conversation.team,
        "contact": {
            "id": conversation.contact_id,
            "display_name": conversation.contact_name or conversation.contact_handle or fallback,
            "handle": conversation.contact_handle,
            "platform_id": conversation.contact_platform_id,
        },
        "created_at": iso(conversation.created_at),
        "last_message_at": iso(conversation.last_message_at),
        "last_message_preview": conversation.last_message_preview,
        "last_message_direction": conversation.last_message_direction,
        "awaiting_reply_since": iso(conversation.awaiting_reply_since),
        "reply_due_at": iso(conversation.reply_due_at),
        "first_response_at": iso(conversation.first_response_at),
        "message_count": int(conversation.message_count or 0),
        "unread_count": int(conversation.unread_count or 0),
    }


def message_json(message: Message) -> Dict[str, Any]:
    return {
        "id": message.message_id,
        "direction": message.direction,
        "type": message.msg_type,
        "text": message.text,
        "sent_at": iso(message.sent_at),
        "attachments": message.attachments or [],
        "delivery_status": message.delivery_status,
        "delivery_error": message.delivery_error,
        "platform_message_id": message.platform_message_id,
        "reply_to": message.reply_to,
        "author_id": message.author_id,
        "edited_at": iso(message.edited_at),
        "edit_history": [{"text": h.get("text"), "replaced_at": iso(h.get("replaced_at"))}
                         for h in (message.edit_history or []) if isinstance(h, dict)],
        "removed": bool(message.removed),
    }


def list_conversations(status: Optional[str], channel: Optional[str], assignee: Optional[str], sort: str,
                       limit: int, cursor: Optional[str]) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    """The inbox view asked for, newest first (or most urgent deadline first with sort=due)."""
    if status is not None and status not in STATUSES:
        raise BadQuery(f"status must be one of {', '.join(STATUSES)}")
    if channel is not None and channel not in CHANNELS:
        raise BadQuery(f"channel must be one of {', '.join(CHANNELS)}")
    if sort not in ("recent", "due"):
        raise BadQuery("sort must be 'recent' or 'due'")
    start = decode_cursor(cursor)
    common: Dict[str, Any] = {"limit": limit, "page_size": limit, "last_evaluated_key": start}
    if sort == "due":
        if assignee is not None or channel is not None:
            raise BadQuery("sort=due supports the status filter only")
        results = Conversation.by_deadline.query(status or "open", scan_index_forward=True, **common)
    elif assignee is not None:
        condition = None
        if status:
            condition = Conversation.status == status
        if channel:
            condition = (Conversation.channel == channel) if condition is None else condition & (Conversation.channel == channel)
        results = Conversation.by_assignee.query(assignee, scan_index_forward=False, filter_condition=condition, **common)
    elif channel is not None and status is not None:
        results = Conversation.by_channel_status.query(f"{channel}#{status}", scan_index_forward=False, **common)
    elif channel is not None:
        results = Conversation.by_channel.query(channel, scan_index_forward=False, **common)
    else:
        results = Conversation.by_status.query(status or "open", scan_index_forward=False, **common)
    try:
        items = [conversation_json(c) for c in results]
    except Exception as error:  # a tampered cursor that DynamoDB refuses
        if start is not None and "ValidationException" in str(error):
            raise BadQuery("cursor does not belong to this view") from error
        raise
    return items, encode_cursor(results.last_evaluated_key)


def get_conversation(conversation_id: str) -> Optional[Conversation]:
    from pynamodb.exceptions import DoesNotExist

    try:
        return Conversation.get(conversation_id)
    except DoesNotExist:
        return None


def list_messages(conversation_id: str, limit: int, cursor: Optional[str]) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    """A thread oldest first, in platform time order (not arrival order)."""
    start = decode_cursor(cursor)
    results = Message.query(conversation_id, scan_index_forward=True, limit=limit, page_size=limit,
                            last_evaluated_key=start)
    items = [message_json(m) for m in results]
    return items, encode_cursor(results.last_evaluated_key)
