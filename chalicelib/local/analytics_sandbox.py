"""The platform sandbox's analytics endpoints (served by chalicelib.local.sandbox), offline, with
the platforms' payload shapes and deterministic, realistic numbers (the same day always answers
the same; Facebook's follower total grows day by day):

- Facebook Page insights `GET /graph/<v>/<page-id>/insights?metric=&period=day&since&until`: daily
  `values` with Meta's `end_time` (the next day 08:00 UTC, midnight Pacific), at most 90 days;
- Instagram account insights `GET /graph|instagram/<v>/<ig-user-id>/insights`: `metric_type=
  total_value` answers one `total_value` for since..until, time series (follower_count) daily
  `values`, at most 30 days;
- both refuse a metric Meta removed (page_impressions, page_fans, impressions, profile_views...)
  with Graph's answer for the WHOLE request: 400 `(#100) The value must be a valid insights
  metric` (Instagram: `... metric is no longer supported`), as Meta does;
- WhatsApp `GET /graph/<v>/<waba-id>?fields=analytics.start().end().granularity(DAY)` and
  `pricing_analytics.start().end().granularity(DAILY)` (per-message pricing data points);
- LinkedIn `GET /linkedin/rest/organizationalEntityShareStatistics` and
  `.../organizationalEntityFollowerStatistics` with DAY `timeIntervals`: one element per day;
- X `GET /x/2/users/<id>/tweets?start_time&end_time&tweet.fields=public_metrics`: our posts of
  the range (0-3 a day) with public_metrics, 100 a page with `next_token`;
- totals as of now: the Instagram profile's `followers_count` (`GET /<ig-user-id>?fields=`),
  LinkedIn `GET /rest/networkSizes/<organization>?edgeType=COMPANY_FOLLOWED_BY_MEMBER`
  (`firstDegreeSize`), X `GET /2/users/<id>?user.fields=public_metrics` (`followers_count`).
Tokens as the send endpoints check them (META_PAGE_TOKEN or INSTAGRAM_ACCESS_TOKEN, WHATSAPP_TOKEN,
LINKEDIN_ACCESS_TOKEN, X_BEARER_TOKEN); a node id containing "fail-token" answers an expired
token, "fail-5xx" a 502.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import re
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote

Answer = Tuple[int, Any, Dict[str, str]]
DAY = _dt.timedelta(days=1)

#: Metric -> (low, high) of a day's value, per surface.
PAGE_METRICS = {"page_media_view": (800, 3200), "page_total_media_view_unique": (400, 1600),
                "page_post_engagements": (20, 240), "page_daily_follows_unique": (4, 40),
                "page_daily_unfollows_unique": (0, 8), "page_views_total": (30, 160), "page_video_views": (50, 600)}
PAGE_REMOVED = ("page_impressions", "page_impressions_unique", "page_fans", "page_fan_adds", "page_fan_adds_unique",
                "page_engaged_users", "page_consumptions", "page_impressions_paid", "page_impressions_organic_v2")
IG_TOTALS = {"reach": (500, 2600), "views": (1500, 6400), "accounts_engaged": (40, 320),
             "total_interactions": (60, 520), "likes": (40, 400), "comments": (4, 60), "shares": (2, 40),
             "saves": (2, 50), "profile_links_taps": (3, 30), "follows_and_unfollows": (2, 30)}
IG_SERIES = {"follower_count": (3, 32), "reach": (500, 2600)}
IG_REMOVED = ("impressions", "profile_views", "website_clicks", "email_contacts", "phone_call_clicks",
              "text_message_clicks", "get_direction_links")
LINKEDIN_SHARES = {"impressionCount": (300, 1600), "uniqueImpressionsCount": (200, 950), "clickCount": (10, 90),
                   "likeCount": (10, 70), "commentCount": (0, 14), "shareCount": (0, 9)}
WA_PRICING = ("MARKETING", "UTILITY", "SERVICE")


def number(*parts: Any, low: int = 0, high: int = 100) -> int:
    """A stable pseudo-random whole number in [low, high] for `parts`."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).digest()
    return low + int.from_bytes(digest[:4], "big") % (high - low + 1)


def _graph_error(status: int, code: int, message: str) -> Answer:
    return status, {"error": {"message": message, "type": "OAuthException", "code": code,
                              "fbtrace_id": "A" + hashlib.sha256(message.encode()).hexdigest()[:10]}}, {}


def _days(since: Any, until: Any) -> Optional[List[_dt.date]]:
    try:
        start = _dt.datetime.fromtimestamp(int(since), tz=_dt.timezone.utc).date()
        end = _dt.datetime.fromtimestamp(int(until), tz=_dt.timezone.utc).date()
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return [start + DAY * n for n in range(max(0, (end - start).days))]


def _end_time(day: _dt.date) -> str:
    return f"{(day + DAY).isoformat()}T08:00:00+0000"


def _failure(node: str) -> Optional[Answer]:
    if "fail-token" in node:
        return _graph_error(401, 190, "Error validating access token: Session has expired.")
    if "fail-5xx" in node:
        return 502, None, {}
    return None


def _insights_request(node: str, query: Dict[str, str]) -> Tuple[Optional[Answer], List[str], Optional[List[_dt.date]]]:
    """What both Graph insights endpoints check first: the node's failure modes, then `metric`
    (required) and the since/until days (None when unreadable)."""
    failure = _failure(node)
    if failure:
        return failure, [], None
    names = [n for n in (query.get("metric") or "").split(",") if n]
    if not names:
        return _graph_error(400, 100, "(#100) The parameter metric is required"), [], None
    return None, names, _days(query.get("since"), query.get("until"))


def page_insights(node: str, query: Dict[str, str]) -> Answer:
    """Facebook Page insights (period=day)."""
    refused, names, days = _insights_request(node, query)
    if refused:
        return refused
    if days is None or len(days) > 90:
        return _graph_error(400, 100, "(#100) There cannot be more than 90 days (7776000 s) between since and until")
    if any(n in PAGE_REMOVED or (n not in PAGE_METRICS and n != "page_follows") for n in names):
        return _graph_error(400, 100, "(#100) The value must be a valid insights metric")
    data = []
    for name in names:
        values = []
        for day in days:
            if name == "page_follows":  # a lifetime total that grows
                value = 12_000 + (day.toordinal() - 739_000) * 9 + number(node, name, day, high=6)
            else:
                low, high = PAGE_METRICS[name]
                value = number(node, name, day, low=low, high=high)
            values.append({"value": value, "end_time": _end_time(day)})
        data.append({"name": name, "period": "day", "values": values, "title": name.replace("_", " ").title(),
                     "description": f"Daily: {name}", "id": f"{node}/insights/{name}/day"})
    return 200, {"data": data, "paging": {"previous": "", "next": ""}}, {}


def instagram_insights(node: str, query: Dict[str, str]) -> Answer:
    """Instagram account insights: total_value or daily time series."""
    refused, names, days = _insights_request(node, query)
    if refused:
        return refused
    if days is None or len(days) > 30:
        return _graph_error(400, 100, "(#100) The since and until dates must be at most 30 days apart")
    removed = next((n for n in names if n in IG_REMOVED), None)
    if removed:
        return _graph_error(400, 100, f"(#100) Starting from version v22.0 and above, the {removed} metric is no "
                                      "longer supported for the queried user.")
    total = query.get("metric_type") == "total_value"
    known = IG_TOTALS if total else IG_SERIES
    unknown = next((n for n in names if n not in known), None)
    if unknown:
        return _graph_error(400, 100, f"(#100) metric[{names.index(unknown)}] must be one of the following values: "
                                      + ", ".join(sorted(known)))
    data = []
    for name in names:
        low, high = known[name]
        entry: Dict[str, Any] = {"name": name, "period": "day", "title": name.replace("_", " ").capitalize(),
                                 "description": f"{name} of the account", "id": f"{node}/insights/{name}/day"}
        if total:
            entry["total_value"] = {"value": sum(number(node, name, d, low=low, high=high) for d in days)}
        else:
            entry["values"] = [{"value": number(node, name, d, low=low, high=high), "end_time": _end_time(d)}
                               for d in days]
        data.append(entry)
    return 200, {"data": data}, {}


_FIELD = re.compile(r"^(analytics|pricing_analytics|conversation_analytics)\.start\((\d{1,12})\)\.end\((\d{1,12})\)"
                    r"\.granularity\(([A-Z_]+)\)")


def whatsapp_analytics(waba: str, query: Dict[str, str]) -> Optional[Answer]:
    """GET /<waba-id>?fields=analytics... | pricing_analytics...; None for other fields."""
    match = _FIELD.match(query.get("fields") or "")
    if not match:
        return None
    failure = _failure(waba)
    if failure:
        return failure
    field, start, end, granularity = match.group(1), int(match.group(2)), int(match.group(3)), match.group(4)
    if field == "conversation_analytics":
        return _graph_error(400, 100, "(#100) Tried accessing nonexisting field (conversation_analytics) on node type "
                                      "(WhatsAppBusinessAccount)")
    days = _days(start, end) or []
    if field == "analytics":
        points = []
        for day in days:
            sent = number(waba, "sent", day, low=50, high=420)
            points.append({"start": int(_dt.datetime.combine(day, _dt.time(), tzinfo=_dt.timezone.utc).timestamp()),
                           "end": int(_dt.datetime.combine(day + DAY, _dt.time(), tzinfo=_dt.timezone.utc).timestamp()),
                           "sent": sent, "delivered": sent - number(waba, "undelivered", day, high=max(1, sent // 20))})
        return 200, {"analytics": {"phone_numbers": ["+15550001234"], "granularity": granularity,
                                   "data_points": points}, "id": waba}, {}
    points = []
    for day in days:
        at = int(_dt.datetime.combine(day, _dt.time(), tzinfo=_dt.timezone.utc).timestamp())
        for category in WA_PRICING:
            volume = number(waba, category, day, low=0, high=60)
            free = category == "SERVICE"
            points.append({"start": at, "end": at + 86_400, "volume": volume, "pricing_category": category,
                           "pricing_type": "FREE_CUSTOMER_SERVICE" if free else "REGULAR",
                           "cost": 0 if free else round(volume * (0.0250 if category == "MARKETING" else 0.0040), 4)})
    return 200, {"pricing_analytics": {"data": [{"data_points": points}]}, "id": waba}, {}


_INTERVAL = re.compile(r"timeRange:\(start:(\d{1,15}),end:(\d{1,15})\),timeGranularityType:DAY")


def linkedin_statistics(kind: str, query: Dict[str, str]) -> Answer:
    """organizationalEntityShareStatistics | organizationalEntityFollowerStatistics (DAY intervals)."""
    organization = query.get("organizationalEntity") or ""
    if query.get("q") != "organizationalEntity" or not organization.startswith("urn:li:organization:"):
        return 400, {"status": 400, "message": "Invalid query parameters passed to request"}, {}
    if "fail-token" in organization:
        return 401, {"status": 401, "serviceErrorCode": 65601, "code": "REVOKED_ACCESS_TOKEN",
                     "message": "The token used in the request has been revoked by the user"}, {}
    match = _INTERVAL.search(query.get("timeIntervals") or "")
    if not match:
        return 400, {"status": 400, "message": "timeIntervals with a DAY granularity is required here"}, {}
    days = _days(int(match.group(1)) // 1000, int(match.group(2)) // 1000) or []
    elements = []
    for day in days:
        start = int(_dt.datetime.combine(day, _dt.time(), tzinfo=_dt.timezone.utc).timestamp()) * 1000
        element: Dict[str, Any] = {"organizationalEntity": organization,
                                   "timeRange": {"start": start, "end": start + 86_400_000}}
        if kind == "share":
            stats = {name: number(organization, name, day, low=low, high=high)
                     for name, (low, high) in LINKEDIN_SHARES.items()}
            stats["engagement"] = round((stats["clickCount"] + stats["likeCount"] + stats["commentCount"]
                                         + stats["shareCount"]) / max(1, stats["impressionCount"]), 4)
            element["totalShareStatistics"] = stats
        else:
            element["followerGains"] = {"organicFollowerGain": number(organization, "organic", day, low=2, high=16),
                                        "paidFollowerGain": number(organization, "paid", day, high=3)}
        elements.append(element)
    return 200, {"paging": {"count": len(elements), "start": 0, "links": []}, "elements": elements}, {}


def x_user_posts(user_id: str, query: Dict[str, str]) -> Answer:
    """Our posts between start_time and end_time with public_metrics (newest first, 100 a page)."""
    try:
        start = _dt.datetime.fromisoformat((query.get("start_time") or "").replace("Z", "+00:00")).date()
        end = _dt.datetime.fromisoformat((query.get("end_time") or "").replace("Z", "+00:00")).date()
    except ValueError:
        return 400, {"title": "Invalid Request", "detail": "start_time and end_time must be RFC 3339"}, {}
    posts = []
    day = end - DAY
    while day >= start and len(posts) < 2000:
        for index in range(number(user_id, "posts", day, high=3)):
            impressions = number(user_id, day, index, "impressions", low=200, high=9000)
            posts.append({"id": str(1_870_000_000_000_000_000 + day.toordinal() * 10 + index),
                          "text": f"Fresh from the roastery #{index + 1}", "edit_history_tweet_ids": [],
                          "created_at": f"{day.isoformat()}T{9 + 3 * index:02d}:15:00.000Z",
                          "public_metrics": {"retweet_count": impressions // 900, "reply_count": impressions // 1200,
                                             "like_count": impressions // 60, "quote_count": impressions // 4000,
                                             "bookmark_count": impressions // 700, "impression_count": impressions}})
        day -= DAY
    offset = int(query["pagination_token"]) if (query.get("pagination_token") or "").isdigit() else 0
    page = posts[offset:offset + 100]
    meta: Dict[str, Any] = {"result_count": len(page)}
    if page:
        meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
    if offset + 100 < len(posts):
        meta["next_token"] = str(offset + 100)
    return 200, ({"data": page, "meta": meta} if page else {"meta": meta}), {}


def follower_total(node: str, now: Optional[_dt.date] = None) -> int:
    """A follower count that grows a little every day (the profile's value as of `now`)."""
    today = now or _dt.datetime.now(_dt.timezone.utc).date()
    return 4_000 + number(node, "base", high=3_000) + (today.toordinal() - 739_000) * 7


def instagram_profile(node: str, query: Dict[str, str]) -> Answer:
    """GET /<ig-user-id>?fields=followers_count,media_count,username (as of now)."""
    failure = _failure(node)
    if failure:
        return failure
    known = {"followers_count": follower_total(node), "follows_count": 180 + number(node, "follows", high=60),
             "media_count": 240 + number(node, "media", high=100), "username": "acmecoffee", "id": node}
    fields = [f for f in (query.get("fields") or "").split(",") if f]
    unknown = next((f for f in fields if f not in known), None)
    if unknown:
        return _graph_error(400, 100, f"(#100) Tried accessing nonexisting field ({unknown}) on node type (IGUser)")
    return 200, {name: known[name] for name in fields + ["id"]}, {}


def serve(handler: Any, parts: Any) -> bool:
    """Answer an analytics request on `handler` (the sandbox's); False when `parts` is none of them."""
    segments = [unquote(s) for s in parts.path.split("/") if s]
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    server = handler.server
    answer: Optional[Answer] = None
    if segments[:1] in (["graph"], ["instagram"]) and len(segments) == 4 and segments[3] == "insights":
        instagram = segments[0] == "instagram" or segments[2].startswith("1784")
        names = ("INSTAGRAM_ACCESS_TOKEN",) if segments[0] == "instagram" else ("META_PAGE_TOKEN",)
        if not server.token_ok(handler.bearer() or query.get("access_token"), *names):
            answer = _graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        else:
            answer = (instagram_insights if instagram else page_insights)(segments[2], query)
    elif (segments[:1] in (["graph"], ["instagram"]) and len(segments) == 3 and segments[2].startswith("1784")
          and "followers_count" in (query.get("fields") or "")):
        names = ("INSTAGRAM_ACCESS_TOKEN",) if segments[0] == "instagram" else ("META_PAGE_TOKEN",)
        if not server.token_ok(handler.bearer() or query.get("access_token"), *names):
            answer = _graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        else:
            answer = instagram_profile(segments[2], query)
    elif segments[:3] == ["linkedin", "rest", "networkSizes"] and len(segments) == 4:
        if not server.token_ok(handler.bearer(), "LINKEDIN_ACCESS_TOKEN"):
            answer = 401, {"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN",
                           "message": "Invalid access token"}, {}
        elif query.get("edgeType") != "COMPANY_FOLLOWED_BY_MEMBER":
            answer = 400, {"status": 400, "message": "edgeType COMPANY_FOLLOWED_BY_MEMBER is required"}, {}
        else:
            answer = 200, {"firstDegreeSize": follower_total(segments[3])}, {}
    elif segments[:3] == ["x", "2", "users"] and len(segments) == 4 and segments[3].isdigit():
        if not server.token_ok(handler.bearer(), "X_BEARER_TOKEN"):
            answer = 401, {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}, {}
        else:
            answer = 200, {"data": {"id": segments[3], "name": "Acme Coffee", "username": "acmecoffee",
                                    "public_metrics": {"followers_count": follower_total(segments[3]),
                                                      "following_count": 311, "tweet_count": 4_210,
                                                      "listed_count": 37, "like_count": 1_930}}}, {}
    elif segments[:1] == ["graph"] and len(segments) == 3 and _FIELD.match(query.get("fields") or ""):
        if not server.token_ok(handler.bearer() or query.get("access_token"), "WHATSAPP_TOKEN"):
            answer = _graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        else:
            answer = whatsapp_analytics(segments[2], query)
    elif segments[:2] == ["linkedin", "rest"] and len(segments) == 3 and segments[2] in (
            "organizationalEntityShareStatistics", "organizationalEntityFollowerStatistics"):
        if not server.token_ok(handler.bearer(), "LINKEDIN_ACCESS_TOKEN"):
            answer = 401, {"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN",
                           "message": "Invalid access token"}, {}
        else:
            answer = linkedin_statistics("share" if "Share" in segments[2] else "follower", query)
    elif segments[:3] == ["x", "2", "users"] and len(segments) == 5 and segments[4] == "tweets":
        if not server.token_ok(handler.bearer(), "X_BEARER_TOKEN"):
            answer = 401, {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}, {}
        else:
            answer = x_user_posts(segments[3], query)
    if answer is None:
        return False
    server.requests.append({"platform": segments[0], "path": parts.path, "query": query, "body": {},
                            "method": "GET", "analytics": True})
    handler._answer(answer)
    return True
