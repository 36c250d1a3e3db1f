"""One fetcher per platform analytics API. Each reads the days [first, last] (UTC dates, inclusive,
never more than the channel's `window_days`, which the caller respects) of one channel account and
answers `Fetched`: {day: {metric: number}} plus the metrics the platform no longer serves.

"No longer available" is a soft failure of that metric only: Graph answers `(#100) ... valid
insights metric` / `... metric is no longer supported` for a whole request when one of its metrics
was removed, so the fetcher asks again metric by metric and keeps the ones that still answer. On
LinkedIn, WhatsApp and X a configured field that no answer carries any more reads the same way.
Anything else (no token, 401, 429, 5xx, no answer) is a FetchError: the run stops this account
and resumes from the last stored window next time. Tokens are never logged or kept in errors.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Set, Tuple
from urllib.parse import quote

from chalicelib.analytics.catalogue import ChannelAnalytics

Number = float
Secrets = Callable[[str], Optional[str]]
DAY = _dt.timedelta(days=1)
MAX_X_PAGES = 10
FOLLOWER_METRICS = ("organicFollowerGain", "paidFollowerGain")
TIMEOUT = (5, 30)


class FetchError(Exception):
    """The platform did not give this window (the reason is safe to log and show)."""


class InvalidMetric(Exception):
    """Graph refused a metric it no longer serves."""


@dataclass
class Fetched:
    days: Dict[str, Dict[str, Number]] = field(default_factory=dict)
    unavailable: Set[str] = field(default_factory=set)
    requests: int = 0

    def add(self, day: str, metric: str, value: Any) -> None:
        number = _number(value)
        if number is not None:
            values = self.days.setdefault(day, {})
            values[metric] = values.get(metric, 0) + number


def _number(value: Any) -> Optional[Number]:
    """A metric's value: a number, or the sum of a breakdown's numbers ({"a": 1, "b": 2})."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            return None
    if isinstance(value, Mapping):
        parts = [_number(v) for v in value.values()]
        return sum(p for p in parts if p is not None) if parts else None
    return None


def _unix(day: _dt.date) -> int:
    return int(_dt.datetime.combine(day, _dt.time(), tzinfo=_dt.timezone.utc).timestamp())


def days_between(first: _dt.date, last: _dt.date) -> List[_dt.date]:
    return [first + DAY * n for n in range((last - first).days + 1)]


def _get(url: str, params: Optional[Dict[str, str]], headers: Dict[str, str], what: str) -> Tuple[int, Any]:
    import requests

    from chalicelib.runtime import runtime

    try:
        response = runtime.http().get(url, params=params, headers=headers, timeout=TIMEOUT)
    except requests.exceptions.RequestException as error:
        raise FetchError(f"no answer from {what} ({type(error).__name__})") from None
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    return response.status_code, body


def _token(secrets: Secrets, name: str) -> str:
    value = secrets(name)
    if not value:
        raise FetchError(f"{name} is not configured for this account")
    return value


# --- Meta Graph: Facebook Page insights, Instagram account insights ---------------------------------


def _graph_problem(status: int, body: Any, what: str) -> Exception:
    error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
    message = str(error.get("message") or "")
    if status == 400 and error.get("code") == 100 and "metric" in message.lower():
        return InvalidMetric(message[:200])
    return FetchError(f"{what} answered HTTP {status}" + (f" (code {error.get('code')})" if error.get("code") else ""))


def _graph_insights(base: str, node: str, token: str, metrics: List[str], params: Dict[str, str],
                    fetched: Fetched, what: str) -> List[Dict[str, Any]]:
    """The insights `data` for `metrics`; a removed metric is asked alone and set aside."""
    def ask(names: List[str]) -> List[Dict[str, Any]]:
        fetched.requests += 1
        status, body = _get(f"{base}/{quote(node, safe='')}/insights", dict(params, metric=",".join(names)),
                            {"Authorization": f"Bearer {token}"}, what)
        if status != 200:
            raise _graph_problem(status, body, what)
        data = body.get("data") if isinstance(body, dict) else None
        return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []

    if not metrics:
        return []
    try:
        return ask(metrics)
    except InvalidMetric:
        if len(metrics) == 1:
            fetched.unavailable.add(metrics[0])
            return []
    found: List[Dict[str, Any]] = []
    for name in metrics:
        try:
            found.extend(ask([name]))
        except InvalidMetric:
            fetched.unavailable.add(name)
    return found


def _series_into(fetched: Fetched, data: Iterable[Dict[str, Any]], wanted: Set[str], first: _dt.date,
                 last: _dt.date) -> None:
    """Graph's daily `values` ({value, end_time}): a day's value ends at the next day's start."""
    for entry in data:
        name = entry.get("name")
        if name not in wanted or not isinstance(entry.get("values"), list):
            continue
        for point in entry["values"]:
            if not isinstance(point, dict) or not isinstance(point.get("end_time"), str):
                continue
            try:
                ended = _dt.datetime.fromisoformat(point["end_time"].replace("+0000", "+00:00").replace("Z", "+00:00"))
            except ValueError:
                continue
            day = (ended - DAY).date()
            if first <= day <= last:
                fetched.add(day.isoformat(), name, point.get("value"))


def _graph_base_and_token(channel: str, secrets: Secrets) -> Tuple[str, str]:
    from chalicelib.channels.meta import GRAPH_DEFAULT, INSTAGRAM_GRAPH_DEFAULT
    from chalicelib.config import api_base

    if channel == "instagram" and secrets("INSTAGRAM_ACCESS_TOKEN"):
        return api_base("INSTAGRAM_GRAPH_BASE_URL", INSTAGRAM_GRAPH_DEFAULT), _token(secrets, "INSTAGRAM_ACCESS_TOKEN")
    return api_base("META_GRAPH_BASE_URL", GRAPH_DEFAULT), _token(secrets, "META_PAGE_TOKEN")


def facebook_page(spec: ChannelAnalytics, account_id: str, secrets: Secrets, first: _dt.date,
                  last: _dt.date) -> Fetched:
    """GET /{page-id}/insights?metric=...&period=day&since&until (at most 90 days a request)."""
    base, token = _graph_base_and_token("facebook", secrets)
    fetched = Fetched()
    names = spec.names()
    params = {"period": "day", "since": str(_unix(first)), "until": str(_unix(last + DAY))}
    _series_into(fetched, _graph_insights(base, account_id, token, names, params, fetched, "Page insights"),
                 set(names), first, last)
    return fetched


def instagram_account(spec: ChannelAnalytics, account_id: str, secrets: Secrets, first: _dt.date,
                      last: _dt.date) -> Fetched:
    """GET /{ig-user-id}/insights: `total_value` metrics (views, reach, total_interactions...)
    answer one total for since..until, so they are asked one day at a time; `time_series` ones
    (follower_count) answer daily values for up to 30 days."""
    base, token = _graph_base_and_token("instagram", secrets)
    fetched = Fetched()
    totals = [m.name for m in spec.metrics if m.kind == "total_value"]
    series = [m.name for m in spec.metrics if m.kind not in ("total_value", "current")]
    if series:
        params = {"period": "day", "since": str(_unix(first)), "until": str(_unix(last + DAY))}
        _series_into(fetched, _graph_insights(base, account_id, token, series, params, fetched, "Instagram insights"),
                     set(series), first, last)
    for day in days_between(first, last):
        asked = [name for name in totals if name not in fetched.unavailable]
        params = {"period": "day", "metric_type": "total_value", "since": str(_unix(day)), "until": str(_unix(day + DAY))}
        for entry in _graph_insights(base, account_id, token, asked, params, fetched, "Instagram insights"):
            total = entry.get("total_value")
            if entry.get("name") in asked and isinstance(total, dict):
                fetched.add(day.isoformat(), entry["name"], total.get("value"))
    return fetched


# --- LinkedIn: organization share and follower statistics ------------------------------------------


def _linkedin_elements(url: str, token: str, what: str, fetched: Fetched) -> List[Dict[str, Any]]:
    import os

    from chalicelib.channels.linkedin import API_VERSION_DEFAULT

    fetched.requests += 1
    status, body = _get(url, None, {"Authorization": f"Bearer {token}", "X-Restli-Protocol-Version": "2.0.0",
                                    "LinkedIn-Version": os.environ.get("LINKEDIN_API_VERSION") or API_VERSION_DEFAULT},
                        what)
    if status != 200:
        raise FetchError(f"{what} answered HTTP {status}")
    elements = body.get("elements") if isinstance(body, dict) else None
    return [e for e in elements if isinstance(e, dict)] if isinstance(elements, list) else []


def _ms_day(value: Any) -> Optional[str]:
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return _dt.datetime.fromtimestamp(value / 1000, tz=_dt.timezone.utc).date().isoformat()


def _fields_into(fetched: Fetched, day: Optional[str], values: Any, wanted: Iterable[str], seen: Set[str]) -> None:
    if day is None or not isinstance(values, dict):
        return
    for name in wanted:
        if name in values:
            seen.add(name)
            fetched.add(day, name, values[name])


def linkedin_organization(spec: ChannelAnalytics, account_id: str, secrets: Secrets, first: _dt.date,
                          last: _dt.date) -> Fetched:
    """GET /rest/organizationalEntityShareStatistics and /rest/organizationalEntityFollowerStatistics
    with timeIntervals=(timeRange:(start,end),timeGranularityType:DAY): one element per day."""
    from chalicelib.channels.linkedin import API_DEFAULT
    from chalicelib.config import api_base

    token = _token(secrets, "LINKEDIN_ACCESS_TOKEN")
    organization = account_id if account_id.startswith("urn:li:organization:") else f"urn:li:organization:{account_id}"
    interval = (f"timeIntervals=(timeRange:(start:{_unix(first) * 1000},end:{_unix(last + DAY) * 1000}),"
                "timeGranularityType:DAY)")
    base = api_base("LINKEDIN_API_BASE_URL", API_DEFAULT)
    fetched = Fetched()
    names = spec.names()
    for path, key, wanted in (
            ("organizationalEntityShareStatistics", "totalShareStatistics", [n for n in names if n not in FOLLOWER_METRICS]),
            ("organizationalEntityFollowerStatistics", "followerGains", [n for n in names if n in FOLLOWER_METRICS])):
        if not wanted:
            continue
        url = f"{base}/rest/{path}?q=organizationalEntity&organizationalEntity={quote(organization, safe='')}&{interval}"
        elements = _linkedin_elements(url, token, path, fetched)
        seen: Set[str] = set()
        for element in elements:
            _fields_into(fetched, _ms_day((element.get("timeRange") or {}).get("start")), element.get(key), wanted, seen)
        if elements:
            fetched.unavailable.update(set(wanted) - seen)
    return fetched


# --- WhatsApp: message and pricing analytics of the business account -------------------------------


def whatsapp_business(spec: ChannelAnalytics, account_id: str, secrets: Secrets, first: _dt.date,
                      last: _dt.date) -> Fetched:
    """GET /{waba-id}?fields=analytics.start().end().granularity(DAY) (sent, delivered) and
    pricing_analytics.start().end().granularity(DAILY) (billable volume: pricing_type REGULAR;
    cost). A field Graph no longer knows makes its metrics unavailable."""
    import re

    from chalicelib.channels.meta import GRAPH_DEFAULT
    from chalicelib.config import api_base

    token = _token(secrets, "WHATSAPP_TOKEN")
    waba = secrets("WHATSAPP_BUSINESS_ACCOUNT_ID") or ""
    if not re.fullmatch(r"[0-9]{1,32}", waba):
        raise FetchError("WHATSAPP_BUSINESS_ACCOUNT_ID is not configured for this account")
    base = api_base("META_GRAPH_BASE_URL", GRAPH_DEFAULT)
    start, end = _unix(first), _unix(last + DAY)
    names = set(spec.names())
    fetched = Fetched()
    every_day = [d.isoformat() for d in days_between(first, last)]
    for field_name, granularity, mine in (("analytics", "DAY", names & {"sent", "delivered"}),
                                          ("pricing_analytics", "DAILY", names & {"billable_volume", "cost"})):
        if not mine:
            continue
        fetched.requests += 1
        status, body = _get(f"{base}/{waba}", {"fields": f"{field_name}.start({start}).end({end}).granularity({granularity})"},
                            {"Authorization": f"Bearer {token}"}, f"WhatsApp {field_name}")
        if status != 200:
            problem = _graph_problem(status, body, f"WhatsApp {field_name}")
            error = (body or {}).get("error") if isinstance(body, dict) else None
            if isinstance(problem, InvalidMetric) or (isinstance(error, dict) and error.get("code") == 100
                                                      and field_name in str(error.get("message"))):
                fetched.unavailable.update(mine)
                continue
            raise problem
        section = body.get(field_name) if isinstance(body, dict) else None
        points: List[Dict[str, Any]] = []
        if isinstance(section, dict):
            points = [p for p in section.get("data_points") or [] if isinstance(p, dict)]
            for group in section.get("data") or []:
                if isinstance(group, dict):
                    points += [p for p in group.get("data_points") or [] if isinstance(p, dict)]
        for day in every_day:  # a day without data points sent nothing: zeros are real here
            for name in mine:
                fetched.add(day, name, 0)
        for point in points:
            if not isinstance(point.get("start"), int):
                continue
            day = _dt.datetime.fromtimestamp(point["start"], tz=_dt.timezone.utc).date().isoformat()
            if day not in every_day:
                continue
            if field_name == "analytics":
                for name in mine:
                    fetched.add(day, name, point.get(name))
            else:
                if "billable_volume" in mine and point.get("pricing_type", "REGULAR") == "REGULAR":
                    fetched.add(day, "billable_volume", point.get("volume"))
                if "cost" in mine:
                    fetched.add(day, "cost", point.get("cost"))
    return fetched


# --- X: public metrics of our own posts ------------------------------------------------------------


def x_posts(spec: ChannelAnalytics, account_id: str, secrets: Secrets, first: _dt.date, last: _dt.date) -> Fetched:
    """GET /2/users/{id}/tweets?start_time&end_time&tweet.fields=created_at,public_metrics (our own
    posts, no reposts or replies), paged: per UTC day the posts published and the sum of their
    public metrics as read now (lifetime counts so far; each day is read again for refresh_days)."""
    from chalicelib.channels.x import API_DEFAULT
    from chalicelib.config import api_base

    if not account_id.isdigit():
        raise FetchError("the X account id is the user id (digits)")
    token = _token(secrets, "X_BEARER_TOKEN")
    names = spec.names()
    counted = [n for n in names if n != "posts"]
    fetched = Fetched()
    for day in days_between(first, last):
        for name in names:
            fetched.add(day.isoformat(), name, 0)
    params = {"start_time": f"{first.isoformat()}T00:00:00Z", "end_time": f"{(last + DAY).isoformat()}T00:00:00Z",
              "max_results": "100", "exclude": "retweets,replies", "tweet.fields": "created_at,public_metrics"}
    seen: Set[str] = set()
    posts = 0
    for _ in range(MAX_X_PAGES):
        fetched.requests += 1
        status, body = _get(f"{api_base('X_API_BASE_URL', API_DEFAULT)}/2/users/{account_id}/tweets", params,
                            {"Authorization": f"Bearer {token}"}, "X user posts")
        if status != 200:
            raise FetchError(f"X user posts answered HTTP {status}")
        for post in (body or {}).get("data") or []:
            if not isinstance(post, dict) or not isinstance(post.get("created_at"), str):
                continue
            day = post["created_at"][:10]
            if day not in fetched.days:
                continue
            posts += 1
            if "posts" in names:
                fetched.add(day, "posts", 1)
            _fields_into(fetched, day, post.get("public_metrics"), counted, seen)
        token_next = ((body or {}).get("meta") or {}).get("next_token")
        if not isinstance(token_next, str) or not token_next:
            break
        params = dict(params, pagination_token=token_next)
    if posts:
        fetched.unavailable.update(set(counted) - seen)
    return fetched


# --- totals the platforms answer only as of now (followers) ----------------------------------------


def _current_values(answer: Any, wanted: List[str], fetched: Fetched, day: str) -> None:
    seen: Set[str] = set()
    _fields_into(fetched, day, answer, wanted, seen)
    fetched.unavailable.update(set(wanted) - seen)


def instagram_current(spec: ChannelAnalytics, account_id: str, secrets: Secrets, day: str) -> Fetched:
    """GET /{ig-user-id}?fields=followers_count,... (the profile as of now)."""
    base, token = _graph_base_and_token("instagram", secrets)
    wanted, fetched = spec.names(current=True), Fetched(requests=1)
    status, body = _get(f"{base}/{quote(account_id, safe='')}", {"fields": ",".join(wanted)},
                        {"Authorization": f"Bearer {token}"}, "Instagram profile")
    if status != 200:
        problem = _graph_problem(status, body, "Instagram profile")
        if not isinstance(problem, InvalidMetric) and not (isinstance(body, dict) and (body.get("error") or {}).get("code") == 100):
            raise problem
        body = {}
    _current_values(body, wanted, fetched, day)
    return fetched


def linkedin_current(spec: ChannelAnalytics, account_id: str, secrets: Secrets, day: str) -> Fetched:
    """GET /rest/networkSizes/{organization urn}?edgeType=COMPANY_FOLLOWED_BY_MEMBER (firstDegreeSize:
    the organization's followers now)."""
    import os

    from chalicelib.channels.linkedin import API_DEFAULT, API_VERSION_DEFAULT
    from chalicelib.config import api_base

    token = _token(secrets, "LINKEDIN_ACCESS_TOKEN")
    organization = account_id if account_id.startswith("urn:li:organization:") else f"urn:li:organization:{account_id}"
    fetched = Fetched(requests=1)
    url = (f"{api_base('LINKEDIN_API_BASE_URL', API_DEFAULT)}/rest/networkSizes/{quote(organization, safe='')}"
           "?edgeType=COMPANY_FOLLOWED_BY_MEMBER")
    status, body = _get(url, None, {"Authorization": f"Bearer {token}", "X-Restli-Protocol-Version": "2.0.0",
                                    "LinkedIn-Version": os.environ.get("LINKEDIN_API_VERSION") or API_VERSION_DEFAULT},
                        "networkSizes")
    if status != 200:
        raise FetchError(f"networkSizes answered HTTP {status}")
    _current_values(body, spec.names(current=True), fetched, day)
    return fetched


def x_current(spec: ChannelAnalytics, account_id: str, secrets: Secrets, day: str) -> Fetched:
    """GET /2/users/{id}?user.fields=public_metrics (followers_count ... as of now)."""
    from chalicelib.channels.x import API_DEFAULT
    from chalicelib.config import api_base

    if not account_id.isdigit():
        raise FetchError("the X account id is the user id (digits)")
    token = _token(secrets, "X_BEARER_TOKEN")
    fetched = Fetched(requests=1)
    status, body = _get(f"{api_base('X_API_BASE_URL', API_DEFAULT)}/2/users/{account_id}",
                        {"user.fields": "public_metrics"}, {"Authorization": f"Bearer {token}"}, "X user")
    if status != 200:
        raise FetchError(f"X user answered HTTP {status}")
    data = body.get("data") if isinstance(body, dict) else None
    _current_values((data or {}).get("public_metrics") if isinstance(data, dict) else None,
                    spec.names(current=True), fetched, day)
    return fetched


CURRENT: Dict[str, Callable[[ChannelAnalytics, str, Secrets, str], Fetched]] = {
    "instagram_account": instagram_current, "linkedin_organization": linkedin_current, "x_posts": x_current,
}

FETCHERS: Dict[str, Callable[[ChannelAnalytics, str, Secrets, _dt.date, _dt.date], Fetched]] = {
    "facebook_page": facebook_page, "instagram_account": instagram_account,
    "linkedin_organization": linkedin_organization, "whatsapp_business": whatsapp_business, "x_posts": x_posts,
}
