"""Whether X will take a reply in a mention thread, decided from what we stored, so the composer
says it before the agent writes and the reply route answers 422 (the X adapter's send path
still looks the post up: this is the early, offline half of the same rule).

The reply answers the customer's latest post in the thread (chalicelib.api.replies): a post X
delivered because it mentions or quotes us, or answers our post, can be answered; a post found
by search (a converted listening item, thread `found:<post id>`) only when the search saw it
mention us. Other channels and DM threads are untouched."""
from __future__ import annotations

import json
from typing import Any, Dict, Optional

FOUND_PREFIX = "found:"


def with_summons(state: Dict[str, Any]) -> Dict[str, Any]:
    """`state` plus `not_summoned` (the reason) when X would refuse the next reply; as it was
    otherwise. Reads one bounded Query and one item, for X mention threads only."""
    reason = refusal(state)
    return dict(state, not_summoned=reason) if reason else state


def refusal(state: Dict[str, Any]) -> Optional[str]:
    """Why X will not take a reply in this conversation now, or None (also when we cannot tell)."""
    from chalicelib.channels import x

    if state.get("channel") != "x" or state.get("thread_kind") != "mention" or not x.summons_check_on():
        return None
    conversation_id, account_id = state.get("conversation_id"), state.get("account_id")
    if not conversation_id or not account_id:
        return None
    from chalicelib.inbox import outbound, store
    from chalicelib.inbox.ids import message_ref

    target = outbound.last_customer_message_id(str(conversation_id))
    if not target:
        return None  # nothing to answer: the policy says so on its own terms
    if str(state.get("thread_key") or "").startswith(FOUND_PREFIX):
        from chalicelib.listening import items

        return items.found_post_refusal("x", target)
    kept = store.raw_payload(message_ref("x", str(account_id), target))
    try:
        raw = json.loads(kept) if kept else None
    except ValueError:  # a truncated payload: undecided here
        return None
    return x.stored_post_refusal(raw, str(account_id))
