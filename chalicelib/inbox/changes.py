"""What changed since the page last looked: the open inbox's one cheap poll.

An agent's page used to re-read its list, five view counts and the open thread on timers
(~56 requests a minute while idle). Now it asks one question every few seconds,
`GET /api/changes?since=<token>`, answered from at most two DynamoDB requests:

1. one BatchGetItem over two tables: the change-feed stamps of the caller's teams ("t#<team>")
   and of the caller ("a#<agent>"), and the open conversation's item;
2. one Query with Limit 1 on `team-recent` for the list's team: the newest activity in its open
   queue. Customers' follow-ups take the store's one-write fast path, which logs nothing, so
   this is how they are seen.

The stamps are written by `on_logged`, a change listener (chalicelib.runtime): after every
logged change (created, assigned, status, priority, tags, read, SLA warning/breach, reopened,
edits...), one BatchWriteItem stamps the conversation's team(s) and, when the assignee
changed, the agents it moved between. Follow-ups never pay for it.

The token is four short fingerprints (list, counts, thread, viewers); the answer names the
parts whose fingerprint moved, so the page re-reads only those, and 304 when none did.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Iterable, List, Optional, Set

PARTS = ("list", "counts", "thread", "viewers")
UNCHANGED = "-"


def feeds_of(before: Dict[str, Any], after: Dict[str, Any]) -> Set[str]:
    """The stamps one logged change moves: its team before and after, and the agents it was
    assigned to before and after when that changed (their "mine" views)."""
    from chalicelib.inbox.rules import DEFAULT_TEAM

    feeds = {"t#" + (after.get("team") or before.get("team") or DEFAULT_TEAM)}
    if before.get("team") and before.get("team") != after.get("team"):
        feeds.add("t#" + before["team"])
    if before.get("assignee") != after.get("assignee"):
        feeds.update("a#" + agent for agent in (before.get("assignee"), after.get("assignee")) if agent)
    return feeds


def on_logged(conversation_id: str, before: Dict[str, Any], after: Dict[str, Any], entry: Any) -> None:
    """Change listener: stamp the feeds this change concerns (one BatchWriteItem)."""
    from chalicelib.models import ChangeFeed
    from chalicelib.runtime import runtime

    now = runtime.now_ms()
    with ChangeFeed.batch_write() as batch:
        for feed in sorted(feeds_of(before or {}, after or {})):
            batch.save(ChangeFeed(feed, at=now, conversation_id=conversation_id,
                                  version=int((after or {}).get("version") or 0)))


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:10]


def parse_token(token: Optional[str]) -> Dict[str, str]:
    parts = (token or "").split(".")
    if len(parts) != len(PARTS):
        return {}
    return dict(zip(PARTS, parts))


def snapshot(teams: Iterable[str], agent_id: str, list_team: str, conversation: Optional[str],
             may_see: Any, viewers: Optional[Any] = None) -> Dict[str, str]:
    """The fingerprint of each part, from one BatchGetItem and one Query (`viewers`, when the
    caller asks for who else is in the thread, is a callable run for that part only)."""
    from chalicelib.models import ChangeFeed, Conversation
    from chalicelib.runtime import runtime

    feed_table, conversation_table = ChangeFeed.Meta.table_name, Conversation.Meta.table_name
    feeds = sorted({"t#" + t for t in teams} | {"a#" + agent_id})
    request: Dict[str, Any] = {feed_table: {"Keys": [{"feed": {"S": f}} for f in feeds],
                                            "ProjectionExpression": "feed, #at, conversation_id, version",
                                            "ExpressionAttributeNames": {"#at": "at"}}}
    if conversation:
        request[conversation_table] = {"Keys": [{"conversation_id": {"S": conversation}}], "ConsistentRead": True}
    client = runtime.client("dynamodb")
    found: Dict[str, List[Dict[str, Any]]] = {feed_table: [], conversation_table: []}
    for _ in range(5):  # unprocessed keys are rare (tiny items); bounded either way
        answer = client.batch_get_item(RequestItems=request)
        for table, items in answer.get("Responses", {}).items():
            found.setdefault(table, []).extend(items)
        request = answer.get("UnprocessedKeys") or {}
        if not request:
            break
    stamps = sorted((json.dumps(item, sort_keys=True) for item in found[feed_table]))
    head = list(Conversation.by_team_recent.query(f"{list_team}#open", scan_index_forward=False, limit=1,
                                                  page_size=1, attributes_to_get=["conversation_id",
                                                                                  "last_message_at"]))
    newest = [(h.conversation_id, h.last_message_at) for h in head]
    thread, seen = UNCHANGED, None
    if conversation:
        state = None
        if found[conversation_table]:
            item = Conversation.from_raw_data(found[conversation_table][0])
            state = {k: v for k, v in item.attribute_values.items() if v is not None}
        visible = state is not None and may_see(state)
        thread = _digest(state if visible else None)  # unknown and not visible look the same
        seen = viewers() if visible and viewers is not None else None
    return {"list": _digest([stamps, newest, list_team]), "counts": _digest([stamps, list_team]), "thread": thread,
            "viewers": UNCHANGED if viewers is None else _digest(seen)}


def compare(now: Dict[str, str], since: Dict[str, str]) -> List[str]:
    """The parts that moved; a part the caller did not ask about keeps the caller's value."""
    return [part for part in PARTS if now[part] != UNCHANGED and now[part] != since.get(part)]


def token(now: Dict[str, str], since: Dict[str, str]) -> str:
    return ".".join(now[p] if now[p] != UNCHANGED else since.get(p, UNCHANGED) for p in PARTS)
