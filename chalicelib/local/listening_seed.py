"""Seeded X recent search for the loopback sandbox (`make run`), so the Listening view fills on the
first run without internet: realistic posts in several languages, some angry, and a spike (a burst
of refund complaints in the last hour). Answers like X: newest first, `since_id`, `max_results`,
`next_token` pages, `includes.users`, `meta`, and `x-rate-limit-*` headers."""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

from chalicelib.listening.text import fold, raw_tokens

Answer = Tuple[int, Any, Dict[str, str]]
OUR_X_ACCOUNT = "1520000000000000001"  # the dev X access token's user (chalicelib.config)

USERS = {
    "u1": ("Lea Müller", "lea_mueller", 1840), "u2": ("Carlos Ruiz", "cruiz", 312), "u3": ("Amélie D.", "amelie_d", 95),
    "u4": ("Tom B", "tombee", 48211), "u5": ("Priya", "priya_codes", 2710), "u6": ("João", "joao_sp", 640),
}
_TEXTS = [
    ("u4", "en", "Three weeks and still no refund from @acmecoffee. Worst customer service ever."),
    ("u1", "en", "@acmecoffee the new autumn roast is amazing, thank you!"),
    ("u2", "es", "Llevo un mes esperando el reembolso de Acme Coffee, pésimo servicio"),
    ("u3", "fr", "Toujours pas de remboursement de Acme Coffee, c'est inadmissible"),
    ("u5", "en", "Is Acme Coffee open on Sundays? Asking for a friend"),
    ("u6", "pt", "Adorei o café da Acme, chegou rápido"),
] + [("u4" if i % 2 else "u5", "en", f"Acme Coffee charged me twice and refuses a refund #{i} #acmefail")
     for i in range(1, 9)]  # the spike: a burst of refund complaints


#: The seeded posts' times count back from when the sandbox first served them: stable ids, so
#: `since_id` works as on X (a second poll finds nothing new).
_ANCHOR_MS = int(time.time() * 1000)


def seeded_posts(now_ms: Optional[int] = None) -> List[Dict[str, Any]]:
    """Newest first; ids grow with time like X's."""
    now = now_ms or _ANCHOR_MS
    posts = []
    for index, (author, lang, text) in enumerate(_TEXTS):
        age_min = 60 * 24 - index * 90 if index < 6 else 50 - index * 4  # the spike: the last hour
        at = now - age_min * 60_000
        mentions = [{"username": "acmecoffee", "id": OUR_X_ACCOUNT}] if "@acmecoffee" in text else []
        posts.append({"id": str(1_880_000_000_000_000_000 + at), "text": text, "author_id": author, "lang": lang,
                      "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(at / 1000)),
                      "entities": {"mentions": mentions},
                      "public_metrics": {"like_count": index * 3, "reply_count": index, "retweet_count": 0,
                                         "quote_count": 0}})
    return sorted(posts, key=lambda p: int(p["id"]), reverse=True)


def _matches(post: Dict[str, Any], query: str) -> bool:
    """The query's quoted terms and #/@ terms, any of them (enough for the seeded posts)."""
    terms = [t.strip('"') for t in query.replace("(", " ").replace(")", " ").split('"')[1::2]]
    terms += [w for w in query.replace("(", " ").replace(")", " ").split() if w[:1] in "#@"]
    words = " ".join(raw_tokens(fold(post["text"])))
    return any(fold(t) in words or fold(t) in fold(post["text"]) for t in terms if t)


def x_recent_search(query: Dict[str, str], now_ms: Optional[int] = None) -> Answer:
    found = [p for p in seeded_posts(now_ms) if _matches(p, query.get("query", ""))]
    since = query.get("since_id")
    if since and since.isdigit():
        found = [p for p in found if int(p["id"]) > int(since)]
    start = int(query["next_token"]) if (query.get("next_token") or "").isdigit() else 0
    size = max(10, min(100, int(query.get("max_results") or 10)))
    page = found[start:start + size]
    meta: Dict[str, Any] = {"result_count": len(page)}
    if page:
        meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
    if start + size < len(found):
        meta["next_token"] = str(start + size)
    users = [{"id": u, "name": USERS[u][0], "username": USERS[u][1], "public_metrics": {"followers_count": USERS[u][2]}}
             for u in sorted({p["author_id"] for p in page})]
    headers = {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "449",
               "x-rate-limit-reset": str(int(time.time()) + 900)}
    body: Dict[str, Any] = {"meta": meta}
    if page:
        body.update(data=page, includes={"users": users})
    return 200, body, headers


HOUR_MS = 3_600_000
SPIKE_POSTS = 42  # in the hour before the sandbox started, for queries that match the refund burst


def x_recent_counts(query: Dict[str, str], now_ms: Optional[int] = None) -> Answer:
    """X `counts/recent` at hour granularity: a steady 2-4 posts an hour, and one spike (the hour
    before the sandbox started) for a query that matches the seeded refund burst. Like X: buckets
    from `start_time` to `end_time` (default: the last 7 days), `meta.total_tweet_count`."""
    from datetime import datetime, timezone

    def ms(name: str, default: int) -> int:
        try:
            return int(datetime.fromisoformat(query[name].replace("Z", "+00:00")).timestamp() * 1000)
        except (KeyError, ValueError):
            return default

    if query.get("granularity", "hour") != "hour" or not query.get("query"):
        return 400, {"title": "Invalid Request", "detail": "the sandbox serves query= with granularity=hour"}, {}
    now = now_ms or int(time.time() * 1000)
    end = ms("end_time", now)
    start = max(ms("start_time", end - 7 * 24 * HOUR_MS), now - 7 * 24 * HOUR_MS)
    spike_hour = _ANCHOR_MS - _ANCHOR_MS % HOUR_MS - HOUR_MS
    spiking = any(_matches(p, query["query"]) for p in seeded_posts() if "#acmefail" in p["text"])
    buckets, at = [], start - start % HOUR_MS
    while at < end:
        count = 2 + (at // HOUR_MS) % 3 + (SPIKE_POSTS if spiking and at == spike_hour else 0)
        buckets.append({"start": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(max(at, start) / 1000)),
                        "end": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(min(at + HOUR_MS, end) / 1000)),
                        "tweet_count": count})
        at += HOUR_MS
    return 200, {"data": buckets, "meta": {"total_tweet_count": sum(b["tweet_count"] for b in buckets)}}, \
        {"x-rate-limit-limit": "300", "x-rate-limit-remaining": "299", "x-rate-limit-reset": str(int(time.time()) + 900)}


#: The listening endpoints the loopback sandbox serves (app-only Bearer auth, like X).
X_LISTENING = {"/x/2/tweets/search/recent": x_recent_search, "/x/2/tweets/counts/recent": x_recent_counts}


#: Instagram media found by hashtag (the last 24 h, as `recent_media` serves them).
HASHTAG_MEDIA = {
    "acmecoffee": [("Best flat white in town ☕ #acmecoffee", 120), ("Mi café favorito #acmecoffee", 35),
                   ("Ordered beans two weeks ago, never arrived, no answer from support #acmecoffee", 2400)],
    "acmefail": [("Charged twice and no refund. Avoid. #acmefail", 5100), ("Encore une commande perdue #acmefail", 8)],
}


def hashtag_id(tag: str) -> str:
    import hashlib

    return "178410" + str(int(hashlib.sha256(tag.encode("utf-8")).hexdigest()[:10], 16))[:11]


def instagram_hashtags(path: List[str], query: Dict[str, str], now_ms: Optional[int] = None) -> Optional[Answer]:
    """`GET /ig_hashtag_search?user_id=&q=` and `GET /{hashtag-id}/recent_media?user_id=&fields=`
    (`path` after the Graph version); None for any other path. Like Meta: a hashtag id for any
    tag, media of the last 24 h with `like_count` and `permalink` but no `username`, 50 a page."""
    if path == ["ig_hashtag_search"]:
        tag = (query.get("q") or "").lstrip("#").lower()
        if not tag or not query.get("user_id"):
            return 400, {"error": {"message": "(#100) user_id and q are required", "type": "OAuthException",
                                   "code": 100}}, {}
        return 200, {"data": [{"id": hashtag_id(tag)}]}, {}
    if len(path) != 2 or path[1] != "recent_media":
        return None
    if not query.get("user_id"):
        return 400, {"error": {"message": "(#100) user_id is required", "type": "OAuthException", "code": 100}}, {}
    tag = next((t for t in HASHTAG_MEDIA if hashtag_id(t) == path[0]), None)
    now = now_ms or int(time.time() * 1000)
    media = []
    for index, (caption, likes) in enumerate(HASHTAG_MEDIA.get(tag or "", [])):
        at = now - (index + 1) * 3 * HOUR_MS
        media_id = str(18_000_000_000_000_000 + int(hashtag_id(tag or "")[-6:]) * 100 + index)
        media.append({"id": media_id, "caption": caption, "media_type": "IMAGE", "comments_count": index,
                      "like_count": likes, "permalink": f"https://www.instagram.com/p/SANDBOX{media_id[-6:]}/",
                      "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(at / 1000))})
    return 200, {"data": media, "paging": {"cursors": {"after": "QVFIUmx1"}}}, {}
