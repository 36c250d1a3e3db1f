"""The post behind a comment thread: where it lives on its platform and what it says.

`post_url` answers the address from the post id the thread keeps (its subject) without a request,
where the id alone tells it (a Facebook Page post, a LinkedIn post or share); an Instagram media id
needs the media's permalink. `fetch_post` asks the platform once, with the account's token, for the
post's text, address and picture (chalicelib.inbox.post_previews caches the answer; it is never
called on the webhook's path):
- Facebook Page post: GET {META_GRAPH_BASE_URL}/{post id}?fields=message,permalink_url,full_picture
  with the Page token;
- Instagram media: GET {base}/{media id}?fields=caption,permalink,media_url,media_type,thumbnail_url
  with the token the account sends with (INSTAGRAM_ACCESS_TOKEN on graph.instagram.com, else the
  Page token on graph.facebook.com).
- X post: GET {X_API_BASE_URL}/2/tweets/{id}?tweet.fields=text,note_tweet,attachments,author_id
  &expansions=attachments.media_keys,author_id&media.fields=... with the account's OAuth 1.0a
  credentials (or its OAuth 2.0 user token); mostly not needed: an X Activity delivery carries the
  post answered or quoted in `includes.tweets` and an Account Activity quote its `quoted_status`
  (`carried_x_v2`, `carried_x_v1`);
- LinkedIn post: GET {LINKEDIN_API_BASE_URL}/rest/posts/{urlencoded share or ugcPost URN}, and for
  its picture GET /rest/images/{image URN} (`downloadUrl`), with LINKEDIN_ACCESS_TOKEN. A comment
  notification names the post by its activity URN and carries `decoratedSourcePost` (the share
  URN, text, media category): `carried_linkedin` keeps the text and the share URN, which the
  look-up needs (the Posts API does not take activity URNs).
Picture URLs are kept as the platform gave them; the page shows them only through our own
endpoint (chalicelib.api.post_routes)."""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional
from urllib.parse import quote

from chalicelib.config import SecretLookup, api_base

_FACEBOOK_POST = re.compile(r"^[0-9]{1,32}_[0-9]{1,32}$")  # <page id>_<post id>
_LINKEDIN_POST = re.compile(r"^urn:li:(activity|share|ugcPost):[0-9]{1,32}$")
_INSTAGRAM_MEDIA = re.compile(r"^[0-9]{1,32}$")
_X_POST = re.compile(r"^[0-9]{1,25}$")
_LINKEDIN_LOOKED_UP = re.compile(r"^urn:li:(share|ugcPost):[0-9]{1,32}$")
_LINKEDIN_IMAGE = re.compile(r"^urn:li:image:[A-Za-z0-9_-]{1,200}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
GRAPH_DEFAULT = "https://graph.facebook.com/v21.0"
INSTAGRAM_GRAPH_DEFAULT = "https://graph.instagram.com/v21.0"
TIMEOUT = (3.0, 5.0)
MAX_TEXT = 500  # the page shows the first lines; the rest is on the platform
MAX_URL = 2000
LOOKED_UP = ("facebook", "instagram", "x", "linkedin")
X_DEFAULT = "https://api.x.com"
LINKEDIN_DEFAULT = "https://api.linkedin.com"
LINKEDIN_VERSION_DEFAULT = "202611"


class PostUnavailable(Exception):
    """The post could not be looked up (no token, an error answer, a platform we do not ask)."""


@dataclass(frozen=True)
class PostPreview:
    text: Optional[str]
    url: Optional[str]
    picture: Optional[str]  # the platform's (expiring) picture URL: fetched server-side only


def post_url(channel: str, subject: Optional[str]) -> Optional[str]:
    """The post's address on the platform, or None when it cannot be known without a look-up."""
    if not isinstance(subject, str):
        return None
    if channel == "facebook" and _FACEBOOK_POST.match(subject):
        return f"https://www.facebook.com/{subject}"
    if channel == "linkedin" and _LINKEDIN_POST.match(subject):
        return f"https://www.linkedin.com/feed/update/{quote(subject, safe=':')}/"
    if channel == "x" and _X_POST.match(subject):
        return f"https://x.com/i/web/status/{subject}"
    return None


def first_lines(text: Any, lines: int = 4) -> Optional[str]:
    """The post's opening lines as plain text (no control or direction-override characters)."""
    if not isinstance(text, str):
        return None
    kept = [line.strip() for line in _CONTROL.sub("", text.replace("\r", "")).split("\n") if line.strip()][:lines]
    joined = "\n".join(kept)
    return (joined[:MAX_TEXT - 1] + "…" if len(joined) > MAX_TEXT else joined) or None


def _https(value: Any, hosts: tuple, bases: Any = ()) -> Optional[str]:
    """A platform URL worth keeping: https on the platform's own hosts (or under a configured
    sandbox base, for pictures), bounded."""
    from chalicelib import safe_url

    try:
        return safe_url.checked_url(value, hosts, bases) if isinstance(value, str) and len(value) <= MAX_URL else None
    except safe_url.Refused:
        return None


def fetch_post(channel: str, post_id: str, secrets: SecretLookup, http: Any, ref: Optional[str] = None) -> PostPreview:
    """The post's text, address and picture from its platform; PostUnavailable otherwise. `ref`:
    the id the platform's look-up takes when the thread names the post otherwise (a LinkedIn
    activity URN's share URN)."""
    from chalicelib import safe_url
    from chalicelib.api.media_routes import MEDIA_HOSTS
    from chalicelib.channels.base import json_body

    if channel == "x":
        return _fetch_x(post_id, secrets, http)
    if channel == "linkedin":
        return _fetch_linkedin(post_id, ref, secrets, http)
    if channel == "facebook" and _FACEBOOK_POST.match(post_id or ""):
        base, token = api_base("META_GRAPH_BASE_URL", GRAPH_DEFAULT), secrets("META_PAGE_TOKEN")
        fields = "message,permalink_url,full_picture"
    elif channel == "instagram" and _INSTAGRAM_MEDIA.match(post_id or ""):
        if secrets("INSTAGRAM_ACCESS_TOKEN"):
            base, token = api_base("INSTAGRAM_GRAPH_BASE_URL", INSTAGRAM_GRAPH_DEFAULT), secrets("INSTAGRAM_ACCESS_TOKEN")
        else:
            base, token = api_base("META_GRAPH_BASE_URL", GRAPH_DEFAULT), secrets("META_PAGE_TOKEN")
        fields = "caption,permalink,media_url,media_type,thumbnail_url"
    else:
        raise PostUnavailable(f"{channel} posts are not looked up")
    if not token:
        raise PostUnavailable(f"no token to look up {channel} posts of this account")
    try:
        response = http.request("GET", f"{base}/{post_id}", params={"fields": fields},
                                headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - the exception text may carry the URL: keep the type only
        raise PostUnavailable(f"no answer from Meta ({type(exc).__name__})") from None
    answer = json_body(response)
    if response.status_code != 200 or not isinstance(answer, dict):
        raise PostUnavailable(f"Meta answered HTTP {response.status_code}")
    pages = ("facebook.com", "instagram.com")
    if channel == "facebook":
        return PostPreview(first_lines(answer.get("message")),
                           _https(answer.get("permalink_url"), pages) or post_url(channel, post_id),
                           _https(answer.get("full_picture"), MEDIA_HOSTS, safe_url.configured_bases()))
    picture = answer.get("thumbnail_url") if answer.get("media_type") == "VIDEO" else answer.get("media_url")
    return PostPreview(first_lines(answer.get("caption")), _https(answer.get("permalink"), pages),
                       _https(picture, MEDIA_HOSTS, safe_url.configured_bases()))


def _picture(value: Any) -> Optional[str]:
    from chalicelib import safe_url
    from chalicelib.api.media_routes import MEDIA_HOSTS

    return _https(value, MEDIA_HOSTS, safe_url.configured_bases())


def _get(http: Any, url: str, platform: str, **kwargs: Any) -> Any:
    """One look-up; PostUnavailable for no answer or an error answer (the exception text may carry
    the URL: only its type is kept)."""
    from chalicelib.channels.base import json_body

    try:
        response = http.request("GET", url, timeout=TIMEOUT, **kwargs)
    except Exception as exc:  # noqa: BLE001 - see docstring
        raise PostUnavailable(f"no answer from {platform} ({type(exc).__name__})") from None
    answer = json_body(response)
    if response.status_code != 200 or not isinstance(answer, dict):
        raise PostUnavailable(f"{platform} answered HTTP {response.status_code}")
    return answer


# --- X -------------------------------------------------------------------------------------------

X_FIELDS = {"tweet.fields": "text,note_tweet,attachments,author_id", "expansions": "attachments.media_keys,author_id",
            "media.fields": "type,url,preview_image_url", "user.fields": "username"}


def _fetch_x(post_id: str, secrets: SecretLookup, http: Any) -> PostPreview:
    from chalicelib.channels.base import SendError
    from chalicelib.channels.x import _auth  # the account's OAuth 1.0a or OAuth 2.0 user auth

    if not _X_POST.match(post_id or ""):
        raise PostUnavailable("not an X post id")
    try:
        auth = _auth(secrets)
    except SendError:
        raise PostUnavailable("no token to look up X posts of this account") from None
    answer = _get(http, f"{api_base('X_API_BASE_URL', X_DEFAULT)}/2/tweets/{post_id}", "X", params=X_FIELDS, auth=auth)
    found = carried_x_v2(post_id, [answer.get("data")], answer.get("includes"))
    if found is None:
        raise PostUnavailable("X answered without the post")
    return PostPreview(found["text"], found["url"], found["picture"])


def _x_url(post_id: str, username: Any) -> str:
    if isinstance(username, str) and re.fullmatch(r"[A-Za-z0-9_]{1,15}", username):
        return f"https://x.com/{username}/status/{post_id}"
    return f"https://x.com/i/web/status/{post_id}"


def carried_x_v2(post_id: Optional[str], tweets: Any, includes: Any) -> Optional[Dict[str, Any]]:
    """The post `post_id` as an API v2 answer carries it (`tweets`: the posts, e.g.
    `includes.tweets`; `includes`: its `media` and `users`), or None when it is not there."""
    if not post_id or not isinstance(tweets, list):
        return None
    post = next((t for t in tweets if isinstance(t, dict) and t.get("id") == post_id), None)
    if post is None:
        return None
    includes = includes if isinstance(includes, dict) else {}
    note = post.get("note_tweet") if isinstance(post.get("note_tweet"), dict) else {}
    text = note.get("text") if isinstance(note.get("text"), str) else post.get("text")
    users = _by(includes.get("users"), "id")
    media = _by(includes.get("media"), "media_key")
    attachments = post.get("attachments") if isinstance(post.get("attachments"), dict) else {}
    keys = attachments.get("media_keys") if isinstance(attachments.get("media_keys"), list) else []
    picture = None
    for key in keys:
        item = media.get(key) if isinstance(key, str) else None
        if isinstance(item, dict):
            picture = _picture(item.get("url") if item.get("type") == "photo" else item.get("preview_image_url"))
            if picture:
                break
    author = users.get(str(post.get("author_id"))) or {}
    return {"id": post_id, "text": first_lines(html.unescape(text) if isinstance(text, str) else None),
            "url": _x_url(post_id, author.get("username")), "picture": picture}


def _by(items: Any, key: str) -> Dict[str, Dict[str, Any]]:
    """The objects of a list by their string `key` (whatever else a delivery holds is skipped)."""
    found: Dict[str, Dict[str, Any]] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get(key), str):
            found[item[key]] = item
    return found


def carried_x_v1(post_id: Optional[str], status: Any) -> Optional[Dict[str, Any]]:
    """The post `post_id` as a v1.1 tweet embeds it (`quoted_status`), or None."""
    if not post_id or not isinstance(status, dict) or status.get("id_str") != post_id:
        return None
    extended = status.get("extended_tweet") if isinstance(status.get("extended_tweet"), dict) else {}
    text = extended.get("full_text") or status.get("full_text") or status.get("text")
    picture = None
    for holder in (extended.get("extended_entities"), status.get("extended_entities"), status.get("entities")):
        media = holder.get("media") if isinstance(holder, dict) else None
        if isinstance(media, list) and media and isinstance(media[0], dict):
            picture = _picture(media[0].get("media_url_https"))
            break
    user = status.get("user") if isinstance(status.get("user"), dict) else {}
    return {"id": post_id, "text": first_lines(html.unescape(text) if isinstance(text, str) else None),
            "url": _x_url(post_id, user.get("screen_name")), "picture": picture}


# --- LinkedIn ------------------------------------------------------------------------------------


def carried_linkedin(post_urn: Optional[str], decorated: Any) -> Optional[Dict[str, Any]]:
    """The post a notification names (`sourcePost`) as its `decoratedSourcePost` carries it: the
    text, and the share/ugcPost URN the Posts API looks up (kept as `ref`). Complete when the post
    has no media (`mediaCategory` NONE); otherwise its picture is looked up on the next view."""
    if not post_urn or not isinstance(decorated, dict):
        return None
    entity = decorated.get("entity")
    ref = entity if isinstance(entity, str) and _LINKEDIN_LOOKED_UP.match(entity) else None
    text = decorated.get("text") if isinstance(decorated.get("text"), str) else decorated.get("commentary")
    return {"id": post_urn, "text": first_lines(text), "url": post_url("linkedin", post_urn) or post_url("linkedin", ref),
            "picture": None, "ref": ref, "complete": decorated.get("mediaCategory") == "NONE"}


def _fetch_linkedin(post_urn: str, ref: Optional[str], secrets: SecretLookup, http: Any) -> PostPreview:
    import os

    target = post_urn if _LINKEDIN_LOOKED_UP.match(post_urn or "") else ref
    if not target or not _LINKEDIN_LOOKED_UP.match(target):
        raise PostUnavailable("the Posts API takes share and ugcPost URNs only, and this post's is not known")
    token = secrets("LINKEDIN_ACCESS_TOKEN")
    if not token:
        raise PostUnavailable("no token to look up linkedin posts of this account")
    base = api_base("LINKEDIN_API_BASE_URL", LINKEDIN_DEFAULT)
    headers = {"Authorization": f"Bearer {token}", "X-Restli-Protocol-Version": "2.0.0",
               "LinkedIn-Version": os.environ.get("LINKEDIN_API_VERSION") or LINKEDIN_VERSION_DEFAULT}
    answer = _get(http, f"{base}/rest/posts/{quote(target, safe='')}", "LinkedIn", headers=headers)
    link = post_url("linkedin", post_urn) or post_url("linkedin", target)
    image = _linkedin_image(answer.get("content"))
    picture = None
    if image:
        try:
            found = _get(http, f"{base}/rest/images/{quote(image, safe='')}", "LinkedIn", headers=headers)
            picture = _picture(found.get("downloadUrl"))
        except PostUnavailable:
            picture = None  # the text is worth showing without its picture
    return PostPreview(first_lines(answer.get("commentary")), link, picture)


def _linkedin_image(content: Any) -> Optional[str]:
    """The image URN of a post's `content`: a single image, the first of several, or an
    article's thumbnail."""
    if not isinstance(content, dict):
        return None
    media = content.get("media") if isinstance(content.get("media"), dict) else {}
    multi = content.get("multiImage") if isinstance(content.get("multiImage"), dict) else {}
    images = multi.get("images") if isinstance(multi.get("images"), list) else []
    article = content.get("article") if isinstance(content.get("article"), dict) else {}
    for candidate in (media.get("id"), images[0].get("id") if images and isinstance(images[0], dict) else None,
                      article.get("thumbnail")):
        if isinstance(candidate, str) and _LINKEDIN_IMAGE.match(candidate):
            return candidate
    return None
