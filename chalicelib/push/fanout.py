"""The fan-out: the conversations table's stream in, one hint per connection out.

Every change of a conversation item (created, assigned, status, SLA, a customer's follow-up on
the store's one-write path, which the event log never sees) reaches `handle_records` in batches
(the stream's mapping, never the webhook's ack path). For each batch: the feeds each change
concerns (its team before and after, the agents it moved between: chalicelib.inbox.changes,
and "*" for those who see every team), one Query per distinct feed for its connections, then
one message per connection naming only the conversations of the feeds it listens to:

    {"type": "changed", "conversations": ["<id>", ...]}

never any text. The page fetches what it shows as before (its own access checks apply). A
connection whose token expired gets nothing and is closed; one that is gone is forgotten."""
from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set

from chalicelib.push.connections import EVERYONE

#: More changed conversations than this in one batch: the hint says "more" instead of naming them
#: (the page then re-reads its list and thread; the message stays far below one 32 KB unit).
MAX_IDS = 50


def _image(record: Mapping[str, Any], name: str) -> Dict[str, Any]:
    """The strings of a stream image that scope a change (team, assignee, conversation id)."""
    image = (record.get("dynamodb") or {}).get(name) or {}
    return {key: value["S"] for key, value in image.items()
            if key in ("conversation_id", "team", "assignee") and isinstance(value, dict) and "S" in value}


def feeds_by_conversation(records: Iterable[Mapping[str, Any]]) -> Dict[str, Set[str]]:
    """conversation id -> the feeds its changes in this batch concern."""
    from chalicelib.inbox.changes import feeds_of

    found: Dict[str, Set[str]] = {}
    for record in records:
        before, after = _image(record, "OldImage"), _image(record, "NewImage")
        conversation = after.get("conversation_id") or before.get("conversation_id") or \
            ((record.get("dynamodb") or {}).get("Keys") or {}).get("conversation_id", {}).get("S")
        if not conversation:
            continue
        found.setdefault(conversation, set()).update(feeds_of(before, after or before) | {EVERYONE})
    return found


def hint(conversations: Iterable[str]) -> bytes:
    ids = sorted(set(conversations))
    body: Dict[str, Any] = {"type": "changed", "conversations": ids[:MAX_IDS]}
    if len(ids) > MAX_IDS:
        body = {"type": "changed", "conversations": [], "more": True}
    return json.dumps(body, separators=(",", ":")).encode()


def plan(records: Iterable[Mapping[str, Any]], now: Optional[float] = None) -> Dict[str, Any]:
    """{"send": {connection id: [conversation ids]}, "expired": [connection ids]} for a batch."""
    from chalicelib.push.connections import now_seconds

    moment = now if now is not None else now_seconds()
    by_feed: Dict[str, Set[str]] = {}
    for conversation, feeds in feeds_by_conversation(records).items():
        for feed in feeds:
            by_feed.setdefault(feed, set()).add(conversation)
    from chalicelib.push.connections import listening

    send: Dict[str, Set[str]] = {}
    expired: Set[str] = set()
    for feed in sorted(by_feed):
        for item in listening(feed):
            if int(item.token_exp) <= moment:
                expired.add(item.sk)
            else:
                send.setdefault(item.sk, set()).update(by_feed[feed])
    return {"send": {c: sorted(ids) for c, ids in send.items() if c not in expired}, "expired": sorted(expired)}


def handle_records(records: List[Mapping[str, Any]], now: Optional[float] = None) -> Dict[str, int]:
    """Send one hint per listening connection; close those whose token expired."""
    from chalicelib.push import connections
    from chalicelib.runtime import runtime

    todo = plan(records, now)
    sent = gone = 0
    for connection_id, ids in todo["send"].items():
        try:
            runtime.push_client().post_to_connection(ConnectionId=connection_id, Data=hint(ids))
            sent += 1
        except Exception as error:  # noqa: BLE001 - one socket never stops the others
            if not connections.is_gone(error):
                from chalicelib.logs import describe_error, logger

                logger.warning("push: a hint was not delivered", extra={"error": describe_error(error)[:300]})
                continue
            connections.forget(connection_id)
            gone += 1
    for connection_id in todo["expired"]:
        connections.close(connection_id)
    return {"records": len(records), "sent": sent, "gone": gone, "expired": len(todo["expired"])}
