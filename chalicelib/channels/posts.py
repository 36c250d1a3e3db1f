"""Where the post behind a comment thread lives on its platform, from the post id the thread
keeps (its subject), so the page can link to the post instead of showing a raw id or URN. No
request is made: only ids whose public address is known from the id alone get a link (a
Facebook Page post, a LinkedIn post or share); an Instagram media id needs the media's
permalink (a Graph look-up), so it gets none here."""
from __future__ import annotations

import re
from typing import Optional
from urllib.parse import quote

_FACEBOOK_POST = re.compile(r"^[0-9]{1,32}_[0-9]{1,32}$")  # <page id>_<post id>
_LINKEDIN_POST = re.compile(r"^urn:li:(activity|share|ugcPost):[0-9]{1,32}$")


def post_url(channel: str, subject: Optional[str]) -> Optional[str]:
    """The post's address on the platform, or None when it cannot be known without a look-up."""
    if not isinstance(subject, str):
        return None
    if channel == "facebook" and _FACEBOOK_POST.match(subject):
        return f"https://www.facebook.com/{subject}"
    if channel == "linkedin" and _LINKEDIN_POST.match(subject):
        return f"https://www.linkedin.com/feed/update/{quote(subject, safe=':')}/"
    return None
