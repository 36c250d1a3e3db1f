"""What changed since the page last looked: the open inbox's one cheap poll.

An agent's page used to re-read its list, five view counts and the open thread on timers
(~56 requests a minute while idle). Now it asks one question every few seconds,
`GET /api/changes?since=<token>`, answered from at most two DynamoDB requests (and a write of
the page's polling marks about once a minute, below):

1. one BatchGetItem over two tables: the change-feed stamps of the caller's teams ("t#<team>")
   and of the caller ("a#<agent>") with their polling marks, and the open conversation's item;
2. one Query with Limit 1 on `team-latest` for the list's team: the newest activity in its open
   queue. Customers' follow-ups take the store's one-write fast path, which logs nothing, so
   this is how they are seen.

The stamps are written by `on_logged`, a change listener (chalicelib.runtime): after every
logged change (created, assigned, status, priority, tags, read, SLA warning/breach, reopened,
edits...), one BatchWriteItem stamps the conversation's team(s) and, when the assignee
changed, the agents it moved between. Follow-ups never pay for it.

Only feeds that some page polls are stamped (issue 21: a page on the WebSocket hears of every
change from the push fan-out, chalicelib.push, and never polls). A polling page marks each feed it
reads ("p#<feed>", `polled_until`, renewed about once a minute by whichever poll finds it near its
end, so one write per feed a minute whoever polls); the writer reads the marks of its feeds
strongly consistent AFTER its change is committed (a missing mark costs 1 RRU, a fifth of the
stamp's price) and stamps only the marked ones. Nothing is missed: a mark written before that read
gets the stamp; one written after it was written after the change too, and a poll that finds its
mark missing or lapsed (the page just fell back from the socket, or stopped polling a while) calls
the list and the counts changed, so the page re-reads them after its mark is in place.

The token is four short fingerprints (list, counts, thread, viewers); the answer names the
parts whose fingerprint moved, so the page re-reads only those, and 304 when none did.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Iterable, List, Optional, Set

PARTS = ("list", "counts", "thread", "viewers")
UNCHANGED = "-"
REREAD = "reread"  # snapshot: the poller's marks had lapsed, the list and counts are re-read
POLLED = "p#"  # a polling page's mark on a feed: "p#t#<team>", "p#a#<agent>"
MARK_MS = 180_000  # a poll's mark lasts this long
RENEW_MS = 60_000  # a poll renews its marks when less than this is left
SKEW_MS = 60_000  # a writer still stamps a feed whose mark ended this recently (two containers' clocks)


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
    """Change listener, after the change is committed: stamp the feeds it concerns that some page
    polls (their marks read strongly consistent; one BatchWriteItem when any)."""
    from chalicelib.models import ChangeFeed
    from chalicelib.runtime import runtime

    feeds = sorted(feeds_of(before or {}, after or {}))
    now = runtime.now_ms()
    marks = {item.feed[len(POLLED):]: int(item.polled_until or 0) for item in ChangeFeed.batch_get(
        [POLLED + feed for feed in feeds], consistent_read=True, attributes_to_get=["feed", "polled_until"])}
    polled = [feed for feed in feeds if marks.get(feed, 0) >= now - SKEW_MS]
    if not polled:
        return
    with ChangeFeed.batch_write() as batch:
        for feed in polled:
            batch.save(ChangeFeed(feed, at=now, conversation_id=conversation_id,
                                  version=int((after or {}).get("version") or 0)))


def _mark(feeds: Iterable[str], now: int) -> None:
    """Mark the feeds a page polls (chalicelib.inbox.changes' docstring)."""
    from chalicelib.models import ChangeFeed

    with ChangeFeed.batch_write() as batch:
        for feed in feeds:
            batch.save(ChangeFeed(POLLED + feed, at=now, polled_until=now + MARK_MS))


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
    request: Dict[str, Any] = {feed_table: {"Keys": [{"feed": {"S": f}} for f in feeds + [POLLED + f for f in feeds]],
                                            "ProjectionExpression": "feed, #at, conversation_id, version, polled_until",
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
    moment = runtime.now_ms()
    marks = {item["feed"]["S"][len(POLLED):]: int(item.get("polled_until", {}).get("N") or 0)
             for item in found[feed_table] if item["feed"]["S"].startswith(POLLED)}
    lapsed = [feed for feed in feeds if marks.get(feed, 0) <= moment]
    renew = [feed for feed in feeds if marks.get(feed, 0) < moment + RENEW_MS]
    if renew:
        _mark(renew, moment)
    stamps = sorted((json.dumps(item, sort_keys=True) for item in found[feed_table]
                     if not item["feed"]["S"].startswith(POLLED)))

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
    # Unmarked until now, changes may have gone unstamped: the list and the counts are re-read.
    return {"list": _digest([stamps, newest, list_team]), "counts": _digest([stamps, list_team]), "thread": thread,
            "viewers": UNCHANGED if viewers is None else _digest(seen), REREAD: "yes" if lapsed else ""}


def compare(now: Dict[str, str], since: Dict[str, str]) -> List[str]:
    """The parts that moved (or must be re-read: `REREAD`); a part the caller did not ask about
    keeps the caller's value."""
    reread = ("list", "counts") if now.get(REREAD) else ()
    return [part for part in PARTS if now[part] != UNCHANGED and (now[part] != since.get(part) or part in reread)]


def token(now: Dict[str, str], since: Dict[str, str]) -> str:
    return ".".join(now[p] if now[p] != UNCHANGED else since.get(p, UNCHANGED) for p in PARTS)
