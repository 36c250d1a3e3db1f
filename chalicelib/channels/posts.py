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
Other platforms are not looked up (X posts would come from a delivery's own `includes`, LinkedIn
needs a partner API): PostUnavailable. Picture URLs are kept as the platform gave them; the page
shows them only through our own endpoint (chalicelib.api.post_routes)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import quote

from chalicelib.config import SecretLookup, api_base

_FACEBOOK_POST = re.compile(r"^[0-9]{1,32}_[0-9]{1,32}$")  # <page id>_<post id>
_LINKEDIN_POST = re.compile(r"^urn:li:(activity|share|ugcPost):[0-9]{1,32}$")
_INSTAGRAM_MEDIA = re.compile(r"^[0-9]{1,32}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
GRAPH_DEFAULT = "https://graph.facebook.com/v21.0"
INSTAGRAM_GRAPH_DEFAULT = "https://graph.instagram.com/v21.0"
TIMEOUT = (3.0, 5.0)
MAX_TEXT = 500  # the page shows the first lines; the rest is on the platform
MAX_URL = 2000
LOOKED_UP = ("facebook", "instagram")


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


def fetch_post(channel: str, post_id: str, secrets: SecretLookup, http: Any) -> PostPreview:
    """The post's text, address and picture from its platform; PostUnavailable otherwise."""
    from chalicelib import safe_url
    from chalicelib.api.media_routes import MEDIA_HOSTS
    from chalicelib.channels.base import json_body

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
