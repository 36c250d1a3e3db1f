"""The post behind a comment or mention thread, as the thread header shows it: looked up with the
account's token when an agent views the thread (never on the webhook's path), kept in the
`post-previews` table and looked up again once older than a day (a post's text can be edited);
a failed look-up is kept too (with what was known before), so a broken token is not asked again
on every view, but retried after RETRY_MS. Platforms not looked up (chalicelib.channels.posts)
answer the link alone.

Two ways in besides the look-up, both on the ingest processor's path, never the webhook's:
`note_carried` keeps the post a delivery carries (X `includes`, LinkedIn `decoratedSourcePost`),
so most X and LinkedIn threads need no look-up at all; `note_edit` takes a Facebook Page post's
edit (`feed`, verb `edited`): the new text at once, and a fresh look-up on the next view (the
picture may have changed). Instagram sends no edits: its posts are refreshed by the day's expiry."""
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


def note_carried(channel: str, post: Dict[str, Any]) -> None:
    """Keep the post a delivery carried ({"id", "text", "url", "picture", "ref"?, "complete"?}).
    Complete: nothing to look up for a day. Otherwise (a LinkedIn post with media) the text shows
    at once and the next view looks the picture up; a picture already found is kept."""
    from chalicelib.models import PostPreview
    from chalicelib.runtime import runtime

    key = post_key({"channel": channel, "subject": post.get("id"), "thread_kind": "comment"})
    if key is None:
        return
    if post.get("complete", True):  # one write, no read
        PostPreview(key, text=post.get("text"), url=post.get("url"), picture=post.get("picture"), ref=post.get("ref"),
                    found=True, fetched_at=runtime.now_ms()).save()
        return
    try:
        item = PostPreview.get(key)
    except PostPreview.DoesNotExist:
        item = PostPreview(key, fetched_at=0)
    item.text, item.url = post.get("text"), post.get("url") or item.url
    item.ref = post.get("ref") or item.ref
    item.save()


def note_edit(channel: str, post_id: str, text: Optional[str]) -> None:
    """The post was edited on the platform: its new first lines now, the rest looked up again on
    the next view (a post nobody has viewed yet is simply looked up then)."""
    from chalicelib.channels.posts import first_lines
    from chalicelib.models import PostPreview

    key = post_key({"channel": channel, "subject": post_id, "thread_kind": "comment"})
    if key is None:
        return
    try:
        item = PostPreview.get(key)
    except PostPreview.DoesNotExist:
        return
    item.text, item.fetched_at = first_lines(text) or item.text, 0
    item.save()


def _look_up(state: Dict[str, Any], key: str, before: Any) -> Any:
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
    ref = getattr(before, "ref", None)
    item = PostPreview(key, fetched_at=runtime.now_ms(), ref=ref)
    try:
        found = fetch_post(channel, state["subject"], secrets, runtime.http(), ref)
        item.text, item.url, item.picture = found.text, found.url, found.picture
    except PostUnavailable as why:
        if before is not None:  # what was known stays shown until a look-up succeeds
            item.text, item.url, item.picture = before.text, before.url, before.picture
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
        item = _look_up(state, key, item) or item
    link = post_url(state.get("channel") or "", state.get("subject"))
    if item is None:
        return {"text": None, "url": link, "picture_url": None}
    return {"text": item.text, "url": item.url or link, "picture_url": picture_path if item.picture else None}
