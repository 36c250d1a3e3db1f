"""Instagram hashtag search (run by `listening_poller`): each `#hashtag` include term of a topic
whose sources name "instagram_hashtag" is searched with an Instagram account's Page token
(`GET /ig_hashtag_search?user_id=&q=` once, the id kept), and its `GET /{hashtag-id}/recent_media`
read every POLL_EVERY_MS (6 h: `recent_media` covers only the last 24 h, so four tries a day
leave room for failures; a tag not read for 24 h is `overdue` in the status).

Meta allows 30 unique hashtags per Instagram account per rolling 7 days; a tag counts from its
first query for 7 days and querying it again meanwhile is free. The slots are tracked per account
(`ListeningRecord` "ig_slots"/<account id>: {tag: first query ms}, written with a version
condition so concurrent runs cannot overshoot) and enforced: a tag is read only by an account
that holds it or has a free slot (several accounts share the tags); otherwise it waits, and the
status says `no_slot`. We count every read of a tag as a query (conservative: an expired tag
takes a fresh slot before its next read).

Requests per run: one GetItem per tag; when some are due, one accounts Scan, the tokens (SSM,
cached 5 min), one Query of the slots, and for at most MAX_TAGS_PER_RUN due tags 1 search (first
time only) + at most MAX_PAGES recent_media pages of 50 and one PutItem each (two with a new slot).
Found media become listening items (source "instagram_hashtag", not replyable: the API cannot
comment on hashtag media; `username` cannot be requested, so the author is unknown).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from chalicelib.listening.x_search import load_state, save_state

SLOTS = 30
WINDOW_MS = 7 * 24 * 3_600_000
POLL_EVERY_MS = 6 * 3_600_000
OVERDUE_MS = 24 * 3_600_000
MAX_TAGS_PER_RUN = 10
MAX_PAGES = 2
PAGE_SIZE = 50
FIELDS = "id,caption,media_type,comments_count,like_count,permalink,timestamp"
NOT_REPLYABLE = "Instagram does not let apps comment on media found by hashtag: open it on Instagram"


class GraphError(Exception):
    """A Graph request that failed: this tag waits for the next run, its state unchanged."""


# --- the slot rule (pure) --------------------------------------------------------------------------


def live_slots(searched: Mapping[str, int], now_ms: int) -> Dict[str, int]:
    """The tags still counting against the account ({tag: first query ms}, within 7 days)."""
    return {tag: int(at) for tag, at in searched.items() if now_ms - int(at) < WINDOW_MS}


def pick_account(tag: str, slots: Mapping[str, Mapping[str, int]], now_ms: int) -> Optional[str]:
    """The account to read `tag` with: one that holds it already, else the one with the most free
    slots (ties: the lowest id), else None (every account used its 30)."""
    live = {account: live_slots(tags, now_ms) for account, tags in slots.items()}
    holders = sorted(a for a, tags in live.items() if tag in tags)
    if holders:
        return holders[0]
    free = sorted((len(tags) - SLOTS, a) for a, tags in live.items() if len(tags) < SLOTS)
    return free[0][1] if free else None


def topic_tags(topics: List[Dict[str, Any]]) -> List[str]:
    """The hashtags to read: `#tag` include terms of the topics with the instagram_hashtag
    source, lower-cased, without `#`, each once."""
    found: List[str] = []
    for topic in topics:
        if "instagram_hashtag" not in (topic.get("sources") or []):
            continue
        for term in topic.get("include") or []:
            tag = term[1:].lower() if isinstance(term, str) and term.startswith("#") else ""
            if tag and tag not in found:
                found.append(tag)
    return found


# --- one run ---------------------------------------------------------------------------------------


def poll(now_ms: Optional[int] = None) -> Dict[str, Any]:
    """Every due hashtag, within the slots. Returns what it did."""
    from chalicelib.listening import topics as topic_store
    from chalicelib.runtime import runtime

    now_ms = runtime.now_ms() if now_ms is None else now_ms
    stats: Dict[str, Any] = {"tags": 0, "requests": 0, "media": 0, "no_slot": 0}
    states = {tag: load_state("ig_poll", tag) for tag in topic_tags(topic_store.list_topics())}
    due = [tag for tag, state in states.items() if now_ms - int(state.get("last_polled") or 0) >= POLL_EVERY_MS]
    if not due:  # most runs: one GetItem per tag, nothing else
        return stats
    accounts = _accounts()
    if not accounts:
        stats["stopped"] = "no_instagram_account"
        return stats
    slots = _slots(list(accounts))
    for tag in due:
        if stats["tags"] >= MAX_TAGS_PER_RUN:
            break
        state = states[tag]
        account = pick_account(tag, {a: held["tags"] for a, held in slots.items()}, now_ms)
        if account is None or not _claim(account, tag, slots, now_ms):
            stats["no_slot"] += 1
            continue
        stats["tags"] += 1
        try:
            _read_tag(tag, account, accounts[account], state, now_ms, stats)
        except GraphError as error:
            from chalicelib.logs import logger

            logger.warning("instagram hashtag read failed; it is tried next run",
                           extra={"tag": tag, "reason": str(error)[:200]})
    return stats


def _read_tag(tag: str, account: str, token: str, state: Dict[str, Any], now_ms: int, stats: Dict[str, Any]) -> None:
    from chalicelib.listening import items
    from chalicelib.listening.annotate import analyse

    hashtag_id = state.get("hashtag_id")
    if not hashtag_id:
        stats["requests"] += 1
        found = _graph(token, "ig_hashtag_search", {"user_id": account, "q": tag}).get("data") or []
        hashtag_id = found[0].get("id") if found and isinstance(found[0], dict) else None
        if not isinstance(hashtag_id, str) or not hashtag_id.isdigit():
            raise GraphError(f"no hashtag id for #{tag}")
    params = {"user_id": account, "fields": FIELDS, "limit": str(PAGE_SIZE)}
    seen: set = set()
    for _ in range(MAX_PAGES):
        stats["requests"] += 1
        answer = _graph(token, f"{hashtag_id}/recent_media", params)
        media = [m for m in answer.get("data") or [] if isinstance(m, dict) and str(m.get("id", "")).isdigit()]
        fresh = [m for m in media if m["id"] not in seen]
        for item in fresh:
            seen.add(item["id"])
            caption = item.get("caption") if isinstance(item.get("caption"), str) else ""
            likes = item.get("like_count")
            items.record(source="instagram_hashtag", platform="instagram", post_id=str(item["id"]),
                         posted_ms=items.iso_ms(item.get("timestamp")) or now_ms, account_id=account, text=caption,
                         url=items.post_url("instagram", str(item["id"]), item),
                         author={"name": None, "handle": None, "followers": None},
                         analysis=analyse(caption, "instagram_hashtag"), replyable=False,
                         not_replyable_reason=NOT_REPLYABLE, now_ms=now_ms,
                         likes=likes if isinstance(likes, int) and not isinstance(likes, bool) else None)
        stats["media"] += len(fresh)
        after = ((answer.get("paging") or {}).get("cursors") or {}).get("after") if isinstance(answer.get("paging"), dict) else None
        if not fresh or not isinstance(after, str) or not (answer.get("paging") or {}).get("next"):
            break  # the `after` cursor can repeat: stop when a page brings nothing new
        params = dict(params, after=after)
    save_state("ig_poll", tag, {"hashtag_id": hashtag_id, "account": account, "last_polled": now_ms}, now_ms)


def _graph(token: str, path: str, params: Dict[str, str]) -> Dict[str, Any]:
    from chalicelib.channels.meta import GRAPH_DEFAULT
    from chalicelib.config import api_base
    from chalicelib.listening.http import get_json

    return get_json(f"{api_base('META_GRAPH_BASE_URL', GRAPH_DEFAULT)}/{path}", params, token, GraphError,
                    path.split("/")[-1])[0]


def _accounts() -> Dict[str, str]:
    """{Instagram user id: its Page token} of the enabled Instagram accounts that have one."""
    from chalicelib.accounts import credential_refs
    from chalicelib.channels.base import account_secrets
    from chalicelib.models import ChannelAccount

    found = {}
    for account in ChannelAccount.scan(ChannelAccount.channel == "instagram"):
        if account.enabled:
            token = account_secrets(credential_refs(account))("META_PAGE_TOKEN")
            if token:
                found[account.platform_account_id] = token
    return dict(sorted(found.items()))


# --- state -----------------------------------------------------------------------------------------


def _slots(accounts: List[str]) -> Dict[str, Dict[str, Any]]:
    """{account: {"tags": {tag: first query ms}, "version": n}} for `accounts` (one Query)."""
    from chalicelib.models import ListeningRecord

    found: Dict[str, Dict[str, Any]] = {a: {"tags": {}, "version": 0} for a in accounts}
    for item in ListeningRecord.query("ig_slots", consistent_read=True):
        if item.sk in found:
            found[item.sk] = {"tags": {str(k): int(v) for k, v in ((item.data or {}).get("tags") or {}).items()},
                              "version": int(item.version or 0)}
    return found


def _claim(account: str, tag: str, slots: Dict[str, Dict[str, Any]], now_ms: int) -> bool:
    """Hold a slot for `tag` on `account` (no write when it holds one already). False when the
    slots changed under us (another run): the tag waits for the next run."""
    from pynamodb.exceptions import PutError

    from chalicelib.models import ListeningRecord

    live = live_slots(slots[account]["tags"], now_ms)
    if tag in live:
        return True
    if len(live) >= SLOTS:
        return False
    live[tag] = now_ms
    version = slots[account]["version"]
    condition = ListeningRecord.sk.does_not_exist() if version == 0 else ListeningRecord.version == version
    try:
        ListeningRecord("ig_slots", account, data={"tags": live}, version=version + 1, at=now_ms).save(condition=condition)
    except PutError as error:
        if getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException":
            return False
        raise
    slots[account] = {"tags": live, "version": version + 1}
    return True


def status(now_ms: int) -> Dict[str, Any]:
    """Slots per account (used of 30, each tag's release time) and each tag's last read
    (`overdue` past 24 h: media older than that are gone from `recent_media`)."""
    from chalicelib.listening import topics as topic_store
    from chalicelib.models import ListeningRecord

    accounts: List[Dict[str, Any]] = []
    for item in ListeningRecord.query("ig_slots", consistent_read=True):
        live = live_slots(((item.data or {}).get("tags") or {}), now_ms)
        accounts.append({"account_id": item.sk, "used": len(live), "limit": SLOTS,
                         "tags": [{"tag": t, "frees_at": at + WINDOW_MS} for t, at in sorted(live.items())]})
    tags = []
    for tag in topic_tags(topic_store.list_topics()):
        last = int(load_state("ig_poll", tag).get("last_polled") or 0) or None
        tags.append({"tag": tag, "last_polled": last, "overdue": last is None or now_ms - last > OVERDUE_MS})
    return {"accounts": accounts, "tags": tags}
