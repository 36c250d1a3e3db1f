"""Listening items: posts that mention our accounts (and, from the search pollers, found posts),
as the Listening view lists them (`GET /api/listening/items`), with convert and dismiss.

One item per post whatever brought it (a mention webhook, a search, a redelivery): the first
source claims the post (`pk` "post#<platform>#<post id>", conditional put) with a key made of the
post's time and a hash of (platform, post id); a later source finds that key and only adds what
it knows (the conversation). Items live in `ListeningRecord` under `pk` "items", newest
first in one Query; source, sentiment label, topics and status are top-level attributes so the
list's filters are DynamoDB filter expressions (a page may hold fewer than `limit`; `next` goes on).

Mentions of our accounts are conversations already (the adapters make them inbound messages of
thread kind "mention"): the ingest annotator records their item with the conversation's id.
"""
from __future__ import annotations

import hashlib
from typing import Any, Dict, List, Optional, Tuple

SOURCES = ("x_search", "instagram_hashtag", "facebook_mention", "instagram_mention", "linkedin_mention", "x_mention")
MENTION_SOURCES = {"facebook": "facebook_mention", "instagram": "instagram_mention", "linkedin": "linkedin_mention",
                   "x": "x_mention"}
STATUSES = ("new", "converted", "dismissed")
MAX_TEXT = 5000
PK = "items"


class NotFound(LookupError):
    """No such item (404)."""


def item_id(platform: str, post_id: str, posted_ms: int) -> str:
    digest = hashlib.sha256(f"{platform}#{post_id}".encode("utf-8", "replace")).hexdigest()[:16]
    return f"{max(0, int(posted_ms)):013d}-{digest}"


def iso_ms(value: Any) -> Optional[int]:
    """A platform's ISO 8601 time (X `...Z`, Instagram `...+0000`) as epoch ms, None if unreadable."""
    from datetime import datetime

    if not isinstance(value, str):
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def post_url(platform: str, post_id: str, raw: Any = None) -> Optional[str]:
    """Where the post can be opened on its platform (for "open on the platform")."""
    if isinstance(raw, dict) and isinstance(raw.get("permalink"), str) and raw["permalink"].startswith("https://"):
        return raw["permalink"]
    if platform == "facebook":
        return f"https://www.facebook.com/{post_id}"
    if platform == "linkedin":
        return f"https://www.linkedin.com/feed/update/{post_id}"
    if platform == "x":
        return f"https://x.com/i/web/status/{post_id}"
    return None


def _followers(raw: Any) -> Optional[int]:
    """A follower count when the platform gave one (X: `user.followers_count`)."""
    user = raw.get("user") if isinstance(raw, dict) else None
    value = user.get("followers_count") if isinstance(user, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def record(*, source: str, platform: str, post_id: str, posted_ms: int, account_id: str, author: Dict[str, Any],
           text: Optional[str], url: Optional[str], analysis: Dict[str, Any], replyable: bool,
           not_replyable_reason: Optional[str] = None, conversation_id: Optional[str] = None,
           now_ms: int = 0, likes: Optional[int] = None) -> str:
    """Store an item once per post (idempotent: a retry or a second source finds it and only
    fills in a conversation it did not know). Returns the item id. Its `priority` is the
    annotator's (a mention) or the admin's priority rules' on the author's reach and `likes`."""
    from pynamodb.exceptions import PutError

    from chalicelib.listening import priority as priority_rules
    from chalicelib.models import ListeningRecord

    label = (analysis.get("sentiment") or {}).get("label")
    priority = analysis["priority"] if "priority" in analysis else priority_rules.priority_for(
        priority_rules.rules(), label, author.get("followers"), likes)
    key = _claim(platform, post_id, item_id(platform, post_id, posted_ms))
    data = {"source": source, "platform": platform, "platform_post_id": post_id, "account_id": account_id,
            "author": {"name": author.get("name"), "handle": author.get("handle"),
                       "followers": author.get("followers")},
            "text": (text or "")[:MAX_TEXT], "url": url, "created_at": int(posted_ms),
            "sentiment": analysis.get("sentiment"), "replyable": bool(replyable),
            "not_replyable_reason": None if replyable else not_replyable_reason, "priority": priority}
    item = ListeningRecord(PK, key, data=data, at=now_ms, source=source, label=label,
                           topics=list(analysis.get("topics") or []) or None, status="new",
                           conversation_id=conversation_id)
    try:
        item.save(condition=ListeningRecord.sk.does_not_exist())
    except PutError as error:
        if getattr(error, "cause_response_code", None) != "ConditionalCheckFailedException":
            raise
        if conversation_id:
            _set(key, [ListeningRecord.conversation_id.set(conversation_id)],
                 ListeningRecord.conversation_id.does_not_exist())
    return key


def _claim(platform: str, post_id: str, key: str) -> str:
    """The item key of a post: `key` for the first source that claims the post, the first
    claimer's for every later one (whatever time that source gives the post)."""
    from pynamodb.exceptions import PutError

    from chalicelib.models import ListeningRecord

    ref = f"post#{platform}#{post_id}"[:1000]
    try:
        ListeningRecord(ref, "ref", data={"item": key}).save(condition=ListeningRecord.pk.does_not_exist())
        return key
    except PutError as error:
        if getattr(error, "cause_response_code", None) != "ConditionalCheckFailedException":
            raise
    return str((ListeningRecord.get(ref, "ref", consistent_read=True).data or {}).get("item") or key)


def found_post_refusal(platform: str, post_id: str) -> Optional[str]:
    """Why a post found by listening cannot be answered (its item's `not_replyable_reason`), or
    None when its item says it can or no item holds it."""
    from pynamodb.exceptions import DoesNotExist

    from chalicelib.models import ListeningRecord

    try:
        ref = ListeningRecord.get(f"post#{platform}#{post_id}"[:1000], "ref")
        item = ListeningRecord.get(PK, str((ref.data or {}).get("item") or ""))
    except DoesNotExist:
        return None
    data = dict(item.data or {})
    if data.get("replyable"):
        return None
    return str(data.get("not_replyable_reason") or "this post was found by search and cannot be answered here")


def _mention_post(event: Any) -> str:
    """The post that mentions us: an X mention is itself a post (its subject is the post it
    answers); elsewhere the subject is the post the mentioning comment is under."""
    return event.platform_message_id if event.channel == "x" else event.subject or event.platform_message_id


def record_mention(event: Any, analysis: Dict[str, Any]) -> Optional[str]:
    """The item of an inbound mention of our account (its conversation: the one the store files
    it under). None for what is not a mention."""
    from chalicelib.inbox.ids import conversation_id_for
    from chalicelib.runtime import runtime

    source = MENTION_SOURCES.get(event.channel)
    if source is None or event.thread_kind != "mention" or event.direction != "in":
        return None
    contact = event.contact
    return record(source=source, platform=event.channel, post_id=event.platform_message_id,
                  posted_ms=event.sent_at_ms, account_id=event.account_id,
                  author={"name": contact.display_name, "handle": contact.handle or contact.platform_user_id,
                          "followers": _followers(event.raw)},
                  text=event.text, url=post_url(event.channel, _mention_post(event), event.raw),
                  analysis=analysis, replyable=True,
                  conversation_id=conversation_id_for(event.channel, event.account_id, event.thread_key),
                  now_ms=runtime.now_ms())


def follow_correction(platform: str, post_id: Optional[str], conversation_id: str,
                      mood: Dict[str, Any]) -> bool:
    """An agent corrected the sentiment of a message that is an item's post (a mention, or a
    converted found post): the item takes the corrected label, so the items list's filter and
    the topics report (chalicelib.listening.trends) count it under it. Bounded: the post's
    pointer and its item, two key reads, then one conditional write; nothing for a message that
    is no item's (or another conversation's: a post id alone does not make it the same post).
    True when an item followed."""
    from pynamodb.exceptions import DoesNotExist

    from chalicelib.models import ListeningRecord

    if not post_id:
        return False
    try:
        ref = ListeningRecord.get(f"post#{platform}#{post_id}"[:1000], "ref", consistent_read=True)
        item = ListeningRecord.get(PK, str((ref.data or {}).get("item") or ""), consistent_read=True)
    except DoesNotExist:
        return False
    if item.conversation_id != conversation_id:
        return False
    data = dict(item.data or {}, sentiment=dict(mood))
    return _set(item.sk, [ListeningRecord.label.set(mood["label"]), ListeningRecord.data.set(data)],
                ListeningRecord.conversation_id == conversation_id)


def _set(key: str, actions: List[Any], condition: Any) -> bool:
    from pynamodb.exceptions import UpdateError

    from chalicelib.models import ListeningRecord

    try:
        ListeningRecord(PK, key).update(actions=actions, condition=ListeningRecord.sk.exists() & condition)
        return True
    except UpdateError as error:
        if getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException":
            return False
        raise


def item_json(item: Any) -> Dict[str, Any]:
    from chalicelib.api.views import iso
    from chalicelib.listening.annotate import message_fields

    data = dict(item.data or {})
    return {"id": item.sk, "source": item.source, "platform_post_id": data.get("platform_post_id"),
            "author": data.get("author") or {"name": None, "handle": None, "followers": None},
            "text": data.get("text"), "url": data.get("url"), "created_at": iso(data.get("created_at")),
            "sentiment": message_fields("in", data)["sentiment"], "topics": list(item.topics or []),
            "replyable": bool(data.get("replyable")), "not_replyable_reason": data.get("not_replyable_reason"),
            "conversation_id": item.conversation_id, "status": item.status or "new",
            "priority": data.get("priority")}


def list_items(source: Optional[str], topic: Optional[str], sentiment: Optional[str], status: Optional[str],
               limit: int, start: Optional[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], Optional[Dict[str, Any]]]:
    """Newest first; filters are exact (`topic` is a topic name). ValueError for a bad filter."""
    from chalicelib.listening.sentiment import LABELS
    from chalicelib.models import ListeningRecord

    if source is not None and source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}")
    if sentiment is not None and sentiment not in LABELS:
        raise ValueError(f"sentiment must be one of {', '.join(LABELS)}")
    if status is not None and status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    if topic is not None and not 1 <= len(topic) <= 80:
        raise ValueError("topic must be a topic name of 1 to 80 characters")
    condition = (ListeningRecord.status == status) if status else (ListeningRecord.status != "dismissed")
    if source:
        condition &= ListeningRecord.source == source
    if sentiment:
        condition &= ListeningRecord.label == sentiment
    if topic:
        condition &= ListeningRecord.topics.contains(topic)
    results = ListeningRecord.query(PK, scan_index_forward=False, filter_condition=condition, limit=limit,
                                    page_size=limit, last_evaluated_key=start)
    return [item_json(item) for item in results], results.last_evaluated_key


def _get(key: str) -> Any:
    from pynamodb.exceptions import DoesNotExist

    from chalicelib.models import ListeningRecord

    if not isinstance(key, str) or not 14 <= len(key) <= 40:
        raise NotFound(key)
    try:
        return ListeningRecord.get(PK, key, consistent_read=True)
    except DoesNotExist:
        raise NotFound(key) from None


def dismiss(key: str, actor: str, now_ms: int) -> Dict[str, Any]:
    from chalicelib.models import ListeningRecord

    _get(key)
    _set(key, [ListeningRecord.status.set("dismissed"), ListeningRecord.at.set(now_ms)], ListeningRecord.sk.exists())
    return item_json(_get(key))


def convert(key: str, actor: str, now_ms: int) -> Dict[str, Any]:
    """The item's conversation: the mention's own, or a new one in the account's team (the reply
    deadline starts like any customer message's). Idempotent."""
    from chalicelib.accounts import find_account
    from chalicelib.channels.base import ContactRef, MessageEvent
    from chalicelib.inbox import store
    from chalicelib.models import ListeningRecord

    item = _get(key)
    conversation_id = item.conversation_id
    if not conversation_id:
        data = dict(item.data or {})
        author = data.get("author") or {}
        platform, account_id = data.get("platform") or "", data.get("account_id") or ""
        account = find_account(platform, account_id)
        if account is None:
            raise ValueError(f"no {platform} account {account_id} to hold this conversation")
        handle = str(author.get("handle") or "unknown")
        event = MessageEvent(channel=platform, account_id=account_id, platform_message_id=str(data["platform_post_id"]),
                             thread_key=f"found:{data['platform_post_id']}", contact=ContactRef(handle, author.get("name"),
                                                                                               handle),
                             direction="in", sent_at_ms=int(data.get("created_at") or now_ms), text=data.get("text"),
                             thread_kind="mention", subject=str(data["platform_post_id"]))
        from chalicelib.listening.annotate import annotations_from

        _, (conversation_id, _) = store.record_message(event, account.team, annotations=annotations_from(
            dict(data, topics=list(item.topics or []))))
        if data.get("priority"):  # the admin's rule: a negative post with reach jumps the queue
            store.raise_priority(conversation_id, data["priority"], "flow")
    _set(key, [ListeningRecord.status.set("converted"), ListeningRecord.conversation_id.set(conversation_id),
               ListeningRecord.at.set(now_ms)], ListeningRecord.sk.exists())
    return item_json(_get(key))
