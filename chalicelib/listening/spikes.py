"""Spike alerts without reading posts, and sentiment dips (run by `listening_poller`, at most once
per topic per hour).

- Volume spike: one X `GET /2/tweets/counts/recent?granularity=hour` per x_search topic per hour
  (X bills $0.005 per counts *request*, whatever the range; one request covers the 7-day window).
  The hourly counts are kept per topic for 8 days, so "the same hour last week" (just outside X's
  7 days) comes from our own history. Each counts request takes one post's price from the admin's
  monthly X budget (chalicelib.listening.x_search): budget 0 polls nothing, counts included.
- Sentiment dip: the share of negative items (found posts and mentions, scored ones only) of a
  topic in the last hour against the previous 24 hours, from the listening items already stored
  (one Query of the last 25 hours, at most DIP_MAX_ITEMS items: no platform request at all).

Both follow one rule (`gate`): a condition alerts when it starts, once per episode, and not again
within COOLDOWN_MS of the last alert. An alert is a notification to every active supervisor and
admin (GET /api/me/notifications, kinds "listening_spike" / "sentiment_dip") and a message on the
escalation SNS topic (ESCALATION_TOPIC_ARN, from the data stack's outputs; unset locally).

Requests per hourly run: T counts requests (T = x_search topics, at most MAX_COUNT_TOPICS), one
items Query (paged, bounded), and per alert: one agents Scan (cached a minute), one put per
supervisor, one SNS Publish. State: ListeningRecord "spikes"/<topic id> (hourly history, last
checked hour, the gate of each kind).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

HOUR_MS = 3_600_000
WEEK_HOURS = 168
HISTORY_HOURS = WEEK_HOURS + 26  # the same hour last week, and a day of slack
COUNTS_WINDOW_HOURS = 167  # X counts/recent: start_time must be within the last 7 days
MIN_SPIKE_POSTS = 10  # below this an hour is never a spike (3 posts against 0.5 is noise)
SPIKE_RATIO = 3.0  # last hour >= 3x the baseline
DIP_MIN_ITEMS = 5  # scored items in the last hour before a share means anything
DIP_POINTS = 0.30  # negative share up by 30 points or more
DIP_MAX_ITEMS = 2000
COOLDOWN_MS = 6 * HOUR_MS
MAX_COUNT_TOPICS = 50
ALERT_KINDS = ("listening_spike", "sentiment_dip")


# --- the rules (pure) ------------------------------------------------------------------------------


def spike(last_hour: int, previous_day: Sequence[int], same_hour_last_week: Optional[int]) -> Optional[Dict[str, Any]]:
    """The figures of a volume spike, or None: the last hour is at least MIN_SPIKE_POSTS and at
    least SPIKE_RATIO times the baseline, the larger of the previous 24 hours' mean and the same
    hour last week (a Monday-morning rush is not a spike if last Monday had it too)."""
    day_mean = sum(previous_day) / len(previous_day) if previous_day else 0.0
    baseline = max(day_mean, float(same_hour_last_week or 0))
    if last_hour >= MIN_SPIKE_POSTS and last_hour >= SPIKE_RATIO * max(baseline, 1.0):
        return {"last_hour": last_hour, "baseline": round(baseline, 2), "day_mean": round(day_mean, 2),
                "same_hour_last_week": same_hour_last_week}
    return None


def dip(last_hour: Sequence[str], previous_day: Sequence[str]) -> Optional[Dict[str, Any]]:
    """The figures of a sentiment dip, or None: given the sentiment labels of a topic's items,
    at least DIP_MIN_ITEMS scored ones in the last hour and a negative share DIP_POINTS above the
    previous 24 hours' ("unscored" counts on neither side: it is not a sentiment)."""
    def share(labels: Sequence[str]) -> Tuple[float, int]:
        scored = [label for label in labels if label in ("positive", "neutral", "negative")]
        return (sum(1 for label in scored if label == "negative") / len(scored) if scored else 0.0), len(scored)

    now_share, now_count = share(last_hour)
    before_share, before_count = share(previous_day)
    if now_count >= DIP_MIN_ITEMS and now_share - before_share >= DIP_POINTS:
        return {"negative_share": round(now_share, 3), "baseline_share": round(before_share, 3),
                "items": now_count, "baseline_items": before_count}
    return None


def gate(firing: bool, state: Mapping[str, Any], now_ms: int, cooldown_ms: int = COOLDOWN_MS) -> Tuple[bool, Dict[str, Any]]:
    """(alert now?, the new state): one alert per episode (while the condition holds hour after
    hour, nothing more), and none within `cooldown_ms` of the last alert (a spike that dips for
    an hour and comes back is the same story)."""
    alerted_at = int(state.get("alerted_at") or 0)
    if not firing:
        return False, {"active": False, "alerted_at": alerted_at}
    if state.get("active") or now_ms - alerted_at < cooldown_ms:
        return False, {"active": True, "alerted_at": alerted_at}
    return True, {"active": True, "alerted_at": now_ms}


def hour_start(ms: int) -> int:
    return ms - ms % HOUR_MS


def volume_figures(history: Mapping[int, int], last_hour_ms: int) -> Optional[Dict[str, Any]]:
    """`spike` over a topic's hourly history ({hour start ms: posts}); a missing hour counts 0,
    a missing week-ago hour is unknown (the first week)."""
    previous = [int(history.get(last_hour_ms - h * HOUR_MS, 0)) for h in range(1, 25)]
    week_ago = history.get(last_hour_ms - WEEK_HOURS * HOUR_MS)
    return spike(int(history.get(last_hour_ms, 0)), previous, None if week_ago is None else int(week_ago))


# --- one hourly run --------------------------------------------------------------------------------


def run(now_ms: Optional[int] = None) -> Dict[str, Any]:
    """Every topic's spike and dip for the last complete hour, once per hour (later runs in the
    same hour read the topics' states, one Query, and stop). Returns what it did."""
    from chalicelib.listening import topics as topic_store
    from chalicelib.listening.x_search import save_state
    from chalicelib.runtime import runtime

    now_ms = runtime.now_ms() if now_ms is None else now_ms
    last_hour = hour_start(now_ms) - HOUR_MS
    stats: Dict[str, Any] = {"count_requests": 0, "alerts": 0}
    states = _states()
    due = [t for t in topic_store.list_topics()
           if int(states.get(t["id"], {}).get("checked_hour") or 0) < last_hour]
    if not due:
        return stats
    token = runtime.secret("X_BEARER_TOKEN") if any("x_search" in (t.get("sources") or []) for t in due) else None
    labels = _labels_by_topic(last_hour)
    counted = 0
    for topic in due:
        state = dict(states.get(topic["id"]) or {})
        done = True
        if "x_search" in (topic.get("sources") or []) and token and counted < MAX_COUNT_TOPICS:
            counted += 1
            done = _check_volume(topic, state, token, last_hour, now_ms, stats)
        figures = dip(*labels.get(topic["name"], ([], [])))
        fire, state["dip"] = gate(figures is not None, state.get("dip") or {}, now_ms)
        if fire and figures:
            _alert("sentiment_dip", topic, figures, last_hour)
            stats["alerts"] += 1
        if done:
            state["checked_hour"] = last_hour
        save_state("spikes", topic["id"], state, now_ms)
    return stats


def _check_volume(topic: Dict[str, Any], state: Dict[str, Any], token: str, last_hour: int, now_ms: int,
                  stats: Dict[str, Any]) -> bool:
    """Fetch the counts (one request) and alert on a spike. False when the request could not be
    made or failed: the hour is checked again next run."""
    from chalicelib.listening import x_search

    try:
        query = x_search.x_query(topic["include"], topic.get("exclude") or [], topic.get("languages") or [])
    except ValueError:
        return True  # no query X accepts: nothing to count (the topic screen says so)
    current = x_search.budget(now_ms)
    if current["remaining"] < 1 or not x_search.reserve(1, current["monthly_posts"], current["month"]):
        return False
    stats["count_requests"] += 1
    end = hour_start(now_ms)
    try:
        buckets = _counts(token, query, end - COUNTS_WINDOW_HOURS * HOUR_MS, end)
    except x_search.XError as error:
        from chalicelib.logs import logger

        logger.warning("x counts failed; the hour is checked next run", extra={"reason": str(error)[:200]})
        return False
    history = {int(k): int(v) for k, v in (state.get("history") or {}).items()}
    history.update(buckets)
    state["history"] = {str(k): v for k, v in history.items() if k >= last_hour - HISTORY_HOURS * HOUR_MS}
    figures = volume_figures(history, last_hour)
    fire, state["spike"] = gate(figures is not None, state.get("spike") or {}, now_ms)
    if fire and figures:
        _alert("listening_spike", topic, figures, last_hour)
        stats["alerts"] += 1
    return True


def _counts(token: str, query: str, start_ms: int, end_ms: int) -> Dict[int, int]:
    """{hour start ms: posts} from X counts/recent (hour granularity; one page covers 7 days)."""
    from chalicelib.config import api_base
    from chalicelib.listening.http import get_json
    from chalicelib.listening.items import iso_ms
    from chalicelib.listening.x_search import API_DEFAULT, XError

    params = {"query": query, "granularity": "hour", "start_time": _iso(start_ms), "end_time": _iso(end_ms)}
    body, _ = get_json(f"{api_base('X_API_BASE_URL', API_DEFAULT)}/2/tweets/counts/recent", params, token, XError,
                       "X counts")
    found: Dict[int, int] = {}
    for bucket in (body.get("data") if isinstance(body, dict) else None) or []:
        start = iso_ms(bucket.get("start")) if isinstance(bucket, dict) else None
        count = bucket.get("tweet_count") if isinstance(bucket, dict) else None
        if start is not None and isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            found[hour_start(start)] = found.get(hour_start(start), 0) + count
    return found


def _labels_by_topic(last_hour: int) -> Dict[str, Tuple[List[str], List[str]]]:
    """{topic name: (labels of the last hour's items, labels of the 24 hours before)}: one Query
    of the items created since (by key, newest first), at most DIP_MAX_ITEMS."""
    from chalicelib.models import ListeningRecord

    since = last_hour - 24 * HOUR_MS
    found: Dict[str, Tuple[List[str], List[str]]] = {}
    results = ListeningRecord.query("items", ListeningRecord.sk >= f"{since:013d}", scan_index_forward=False,
                                    limit=DIP_MAX_ITEMS, page_size=500)
    for item in results:
        created = int(item.sk[:13])
        if created >= last_hour + HOUR_MS:
            continue
        for name in item.topics or []:
            now, before = found.setdefault(name, ([], []))
            (now if created >= last_hour else before).append(item.label or "unscored")
    return found


# --- alerts ----------------------------------------------------------------------------------------


def _alert(kind: str, topic: Dict[str, Any], figures: Dict[str, Any], hour_ms: int) -> None:
    """Supervisors and admins in the app, and the escalation topic in AWS."""
    from chalicelib.sla.escalation import notify, supervisors

    data = dict(figures, topic=topic["name"], topic_id=topic["id"], hour=_iso(hour_ms))
    notify(supervisors(), f"topic:{topic['id']}", kind, data)
    publish(kind, data)


def publish(kind: str, data: Dict[str, Any]) -> bool:
    """One message on the escalation SNS topic (False when no topic is configured: local runs)."""
    from chalicelib import escalation_topic

    title = "Spike" if kind == "listening_spike" else "Sentiment dip"
    return escalation_topic.publish(kind, f"{title} in {data.get('topic')}", data)


# --- state -----------------------------------------------------------------------------------------


def _states() -> Dict[str, Dict[str, Any]]:
    """Every topic's spike state (one Query: a few dozen topics)."""
    from chalicelib.models import ListeningRecord

    return {item.sk: dict(item.data or {}) for item in ListeningRecord.query("spikes", consistent_read=True)}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
