"""The X recent search poller (`listening_poller`, every 5 minutes): each topic whose sources
name "x_search" is compiled to an X query and polled with `since_id`, every `next_token` drained
before `since_id` moves (docs.x.com: paginate), found posts recorded as listening items.

Money and limits, never exceeded:
- X bills every post returned ($0.005 each, pay-per-use). An admin sets a monthly budget in posts
  (`PUT /api/listening/x-budget`; 0, the default, polls nothing). Before each request the poller
  reserves `max_results` posts with a conditional update (`used <= budget - max_results`), and
  gives back what the answer did not use: concurrent runs cannot overshoot. When less than one
  request's minimum (10) is left, polling stops and the budget reads `exhausted`.
- `x-rate-limit-remaining: 0` or a 429 stops every topic until `x-rate-limit-reset`.
- A failed or throttled request leaves the topic's state as it was: the next run resumes from the
  same `since_id` / `next_token` (items are idempotent per post, so nothing is duplicated either).

State lives in `ListeningRecord`: "x_budget"/"settings" (the budget), "x_budget"/"<YYYY-MM>"
(posts used, counter `used`), "x_poll"/<topic id> (since_id, next_token, newest_id), "x_poll"/
"#rate" (resume_at). Auth: the app's Bearer token (secret X_BEARER_TOKEN).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple

from chalicelib.listening.text import raw_tokens

API_DEFAULT = "https://api.x.com"
MAX_QUERY_CHARS = 512  # self-serve recent search
MIN_RESULTS, MAX_RESULTS = 10, 100
MAX_PAGES_PER_TOPIC = 5  # per run; the rest of a drain continues next run from next_token
MAX_BUDGET = 3_000_000  # pay-per-use cap of post reads per month
NOT_REPLYABLE = ("X lets our account reply only to posts that mention or quote it (since 2026-02-23): "
                 "open it on X")
FIELDS = {"tweet.fields": "author_id,created_at,lang,public_metrics,conversation_id,entities,referenced_tweets",
          "expansions": "author_id", "user.fields": "username,name,public_metrics"}


class XError(Exception):
    """A request that did not give posts (stops this topic for this run; state unchanged)."""


def x_query(include: List[str], exclude: List[str], languages: List[str]) -> str:
    """A topic as an X search query: any include term, no exclude term, one of the languages,
    no retweets. ValueError when it is longer than X accepts (512 characters)."""
    def term(text: str) -> str:
        if text[0] in "#@":
            return text
        return '"' + " ".join(raw_tokens(text.replace('"', " "))) + '"'

    wanted = " OR ".join(term(t) for t in include)
    parts = [f"({wanted})" if len(include) > 1 else wanted]
    parts += ["-" + term(t) for t in exclude]
    if languages:
        langs = " OR ".join(f"lang:{code}" for code in languages)
        parts.append(f"({langs})" if len(languages) > 1 else langs)
    parts.append("-is:retweet")
    query = " ".join(parts)
    if len(query) > MAX_QUERY_CHARS:
        raise ValueError(f"as an X search query this topic is {len(query)} characters; X accepts {MAX_QUERY_CHARS}")
    return query


# --- the budget ------------------------------------------------------------------------------------


def _month(now_ms: int) -> str:
    return datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).strftime("%Y-%m")


def budget(now_ms: int) -> Dict[str, Any]:
    """The admin's monthly budget in posts and what this month used (`exhausted` when less than
    one request's minimum is left)."""
    from pynamodb.exceptions import DoesNotExist

    from chalicelib.models import ListeningRecord

    try:
        limit = int((ListeningRecord.get("x_budget", "settings", consistent_read=True).data or {}).get("monthly_posts") or 0)
    except DoesNotExist:
        limit = 0
    month = _month(now_ms)
    try:
        used = int(ListeningRecord.get("x_budget", month, consistent_read=True).used or 0)
    except DoesNotExist:
        used = 0
    return {"monthly_posts": limit, "month": month, "used": used, "remaining": max(0, limit - used),
            "exhausted": limit - used < MIN_RESULTS, "price_per_post_usd": 0.005}


def set_budget(body: Any, now_ms: int) -> Dict[str, Any]:
    from chalicelib.models import ListeningRecord

    if not isinstance(body, dict) or set(body) != {"monthly_posts"}:
        raise ValueError('the body is {"monthly_posts": <whole number of posts per month>}')
    value = body["monthly_posts"]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_BUDGET:
        raise ValueError(f"monthly_posts must be a whole number from 0 to {MAX_BUDGET}")
    ListeningRecord("x_budget", "settings", data={"monthly_posts": value}, at=now_ms).save()
    return budget(now_ms)


def reserve(count: int, limit: int, month: str) -> bool:
    """Take `count` posts from this month's budget, or nothing if that would pass `limit`."""
    from pynamodb.exceptions import UpdateError

    from chalicelib.models import ListeningRecord

    try:
        ListeningRecord("x_budget", month).update(
            actions=[ListeningRecord.used.add(count)],
            condition=ListeningRecord.used.does_not_exist() | (ListeningRecord.used <= limit - count))
        return True
    except UpdateError as error:
        if getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException":
            return False
        raise


def _give_back(count: int, month: str) -> None:
    from chalicelib.models import ListeningRecord

    if count > 0:
        ListeningRecord("x_budget", month).update(actions=[ListeningRecord.used.add(-count)])


# --- state -------------------------------------------------------------------------------------------


def load_state(pk: str, key: str) -> Dict[str, Any]:
    """A poller's saved state (`pk` "x_poll": a topic's position or "#rate"; "ig_poll": a
    hashtag's; "spikes"), {} before the first run."""
    from pynamodb.exceptions import DoesNotExist

    from chalicelib.models import ListeningRecord

    try:
        return dict(ListeningRecord.get(pk, key, consistent_read=True).data or {})
    except DoesNotExist:
        return {}


def save_state(pk: str, key: str, data: Dict[str, Any], now_ms: int) -> None:
    from chalicelib.models import ListeningRecord

    ListeningRecord(pk, key, data=data, at=now_ms).save()


# --- one run --------------------------------------------------------------------------------------------


def poll(now_ms: Optional[int] = None) -> Dict[str, Any]:
    """One scheduled run over every X-search topic. Returns what it did (logged by the caller)."""
    from chalicelib.listening import topics as topic_store
    from chalicelib.runtime import runtime

    now_ms = runtime.now_ms() if now_ms is None else now_ms
    stats: Dict[str, Any] = {"topics": 0, "requests": 0, "posts": 0, "stopped": None}
    wanted = [t for t in topic_store.list_topics() if "x_search" in (t.get("sources") or [])]
    if not wanted:
        return stats
    rate = load_state("x_poll", "#rate")
    if int(rate.get("resume_at") or 0) > now_ms:
        stats["stopped"] = "rate_limited"
        return stats
    token = runtime.secret("X_BEARER_TOKEN")
    if not token:
        stats["stopped"] = "no_bearer_token"
        return stats
    accounts = _our_x_accounts()
    for topic in wanted:
        stats["topics"] += 1
        stopped = _poll_topic(topic, token, accounts, now_ms, stats)
        if stopped in ("rate_limited", "budget_exhausted"):
            stats["stopped"] = stopped
            break
    return stats


def _our_x_accounts() -> List[str]:
    from chalicelib.models import ChannelAccount

    return sorted(a.platform_account_id for a in ChannelAccount.scan(ChannelAccount.channel == "x") if a.enabled)


def _poll_topic(topic: Dict[str, Any], token: str, accounts: List[str], now_ms: int,
                stats: Dict[str, Any]) -> Optional[str]:
    key = topic["id"]
    state = load_state("x_poll", key)
    try:
        query = x_query(topic["include"], topic.get("exclude") or [], topic.get("languages") or [])
    except ValueError:
        return "query_too_long"
    if state.get("query") not in (None, query):  # the topic changed: start afresh
        state = {}
    for _ in range(MAX_PAGES_PER_TOPIC):
        current = budget(now_ms)
        size = min(MAX_RESULTS, current["remaining"])
        if size < MIN_RESULTS or not reserve(size, current["monthly_posts"], current["month"]):
            return "budget_exhausted"
        params = dict(FIELDS, query=query, max_results=str(size))
        if state.get("next_token"):
            params["next_token"] = state["next_token"]
        if state.get("since_id"):
            params["since_id"] = state["since_id"]
        stats["requests"] += 1
        try:
            answer, headers = _search(token, params)
        except XError as error:
            _give_back(size, current["month"])
            return _after_failure(str(error), headers_of(error), now_ms)
        posts = answer.get("data") if isinstance(answer.get("data"), list) else []
        _give_back(size - len(posts), current["month"])
        stats["posts"] += len(posts)
        _record_posts(posts, answer.get("includes") or {}, accounts, now_ms)
        meta = answer.get("meta") if isinstance(answer.get("meta"), dict) else {}
        newest = state.get("newest_id") or meta.get("newest_id")
        if meta.get("next_token"):
            state = {"query": query, "since_id": state.get("since_id"), "next_token": meta["next_token"],
                     "newest_id": newest}
        else:  # drained: only now does since_id move
            state = {"query": query, "since_id": newest or state.get("since_id")}
        save_state("x_poll", key, state, now_ms)
        if _rate_exhausted(headers, now_ms) or not meta.get("next_token"):
            return "rate_limited" if _rate_exhausted(headers, now_ms) else None
    return None


def headers_of(error: BaseException) -> Dict[str, str]:
    return getattr(error, "headers", None) or {}


def _rate_exhausted(headers: Dict[str, str], now_ms: int) -> bool:
    """x-rate-limit-remaining 0: nothing more until x-rate-limit-reset (kept for every topic)."""
    if str(headers.get("x-rate-limit-remaining", "")).strip() != "0":
        return False
    try:
        reset_ms = int(headers.get("x-rate-limit-reset") or 0) * 1000
    except ValueError:
        reset_ms = now_ms + 15 * 60_000
    save_state("x_poll", "#rate", {"resume_at": max(reset_ms, now_ms + 1000)}, now_ms)
    return True


def _after_failure(reason: str, headers: Dict[str, str], now_ms: int) -> str:
    from chalicelib.logs import logger

    logger.warning("x search failed; the topic resumes from its saved position", extra={"reason": reason[:200]})
    if reason.startswith("429"):
        _rate_exhausted(dict(headers, **{"x-rate-limit-remaining": "0"}), now_ms)
        return "rate_limited"
    return "failed"


def _search(token: str, params: Dict[str, str]) -> Tuple[Dict[str, Any], Dict[str, str]]:
    from chalicelib.config import api_base
    from chalicelib.listening.http import get_json

    return get_json(f"{api_base('X_API_BASE_URL', API_DEFAULT)}/2/tweets/search/recent", params, token, XError,
                    "X recent search")


def _record_posts(posts: List[Any], includes: Dict[str, Any], accounts: List[str], now_ms: int) -> None:
    from chalicelib.listening import items
    from chalicelib.listening.annotate import analyse

    users = {u.get("id"): u for u in includes.get("users") or [] if isinstance(u, dict)}
    for post in posts:
        if not isinstance(post, dict) or not isinstance(post.get("id"), str) or not post["id"].isdigit():
            continue
        text = post.get("text") if isinstance(post.get("text"), str) else ""
        user = users.get(post.get("author_id")) or {}
        metrics = user.get("public_metrics") if isinstance(user.get("public_metrics"), dict) else {}
        mentions = ((post.get("entities") or {}).get("mentions") or []) if isinstance(post.get("entities"), dict) else []
        summoned = any(isinstance(m, dict) and m.get("id") in accounts for m in mentions)
        followers = metrics.get("followers_count")
        likes = (post.get("public_metrics") or {}).get("like_count") if isinstance(post.get("public_metrics"), dict) else None
        posted_ms = items.iso_ms(post.get("created_at")) or now_ms
        items.record(source="x_search", platform="x", post_id=post["id"], posted_ms=posted_ms,
                     account_id=accounts[0] if accounts else "", text=text, url=items.post_url("x", post["id"]),
                     author={"name": user.get("name"), "handle": user.get("username"),
                             "followers": followers if isinstance(followers, int) else None},
                     analysis=analyse(text, "x_search", {"lang": post.get("lang")}), replyable=summoned,
                     not_replyable_reason=None if summoned else NOT_REPLYABLE, now_ms=now_ms,
                     likes=likes if isinstance(likes, int) and not isinstance(likes, bool) else None)
