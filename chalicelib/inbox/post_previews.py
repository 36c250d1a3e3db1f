"""The post behind a comment or mention thread, as the thread header shows it: looked up with the
account's token when an agent views the thread (never on the webhook's path), kept in the
`post-previews` table and looked up again once older than a day (a post's text can be edited);
a failed look-up is kept too, so a broken token is not asked again on every view, but retried
after RETRY_MS. Platforms not looked up (chalicelib.channels.posts) answer the link alone."""
from __future__ import annotations

from typing import Any, Dict, Optional

from chalicelib.logs import logger

REFRESH_MS = 24 * 3600 * 1000
RETRY_MS = 15 * 60 * 1000
THREAD_KINDS = ("comment", "mention")


def post_key(state: Dict[str, Any]) -> Optional[str]:
    """The cache key of the thread's post, or None when the thread is not under a post."""
    subject = state.get("subject")
    if state.get("thread_kind") not in THREAD_KINDS or not isinstance(subject, str) or not 0 < len(subject) <= 200:
        return None
    return f"{state.get('channel') or ''}#{subject}"


def cached(state: Dict[str, Any]) -> Any:
    """The stored look-up of the thread's post (models.PostPreview), or None."""
    from chalicelib.models import PostPreview

    key = post_key(state)
    if key is None:
        return None
    try:
        return PostPreview.get(key)
    except PostPreview.DoesNotExist:
        return None


def _look_up(state: Dict[str, Any], key: str) -> Any:
    from chalicelib.accounts import find_account
    from chalicelib.channels.base import account_secrets
    from chalicelib.channels.posts import LOOKED_UP, PostUnavailable, fetch_post
    from chalicelib.models import PostPreview
    from chalicelib.runtime import runtime

    channel = state.get("channel") or ""
    if channel not in LOOKED_UP:
        return None
    account = find_account(channel, state.get("account_id") or "")
    refs = getattr(account, "credential_refs", None)
    refs = refs.as_dict() if hasattr(refs, "as_dict") else dict(refs or {})
    secrets = account_secrets({str(k): str(v) for k, v in refs.items() if isinstance(v, str)})
    item = PostPreview(key, fetched_at=runtime.now_ms())
    try:
        found = fetch_post(channel, state["subject"], secrets, runtime.http())
        item.text, item.url, item.picture = found.text, found.url, found.picture
    except PostUnavailable as why:
        item.found = False
        logger.info("post not looked up", extra={"conversation_id": state.get("conversation_id"),
                                                  "reason": str(why)[:200]})
    item.save()
    return item


def preview(state: Dict[str, Any], picture_path: str) -> Optional[Dict[str, Any]]:
    """{"text", "url", "picture_url"} of the thread's post (None when the thread is not under a
    post); `picture_path` is our own endpoint that serves the picture."""
    from chalicelib.channels.posts import post_url
    from chalicelib.runtime import runtime

    key = post_key(state)
    if key is None:
        return None
    item = cached(state)
    age = runtime.now_ms() - int(item.fetched_at) if item is not None else None
    if age is None or age > (REFRESH_MS if item.found else RETRY_MS):
        item = _look_up(state, key) or item
    link = post_url(state.get("channel") or "", state.get("subject"))
    if item is None:
        return {"text": None, "url": link, "picture_url": None}
    return {"text": item.text, "url": item.url or link, "picture_url": picture_path if item.picture else None}
