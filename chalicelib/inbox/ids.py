"""Deterministic ids: the same platform message or thread always maps to the same keys, so a
repeated delivery finds what the first one wrote."""
from __future__ import annotations

import hashlib


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
    """Thread order: platform time (13 digits, ms), then the id."""
    return f"{max(sent_at_ms, 0):013d}#{message_id}"
