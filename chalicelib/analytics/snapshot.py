"""The daily snapshot (`analytics_snapshot`): every enabled channel account whose platform offers
analytics gets its days stored, from where it stopped up to yesterday (UTC).

Per account (cursor "cursor"/"<channel>#<account>", `done` = the last day stored):
- first run: the last `backfill_days` (never before the platform's `lookback_days`);
- later runs: the days after `done`, plus the last `refresh_days` again (Meta revises insights
  for 48 h; X counts keep growing), so a day is overwritten with fresher numbers, never added twice;
- `done` already yesterday: nothing (a second run on the same day costs no platform request);
- totals the platform answers only as of now (`current` metrics: followers) once the account
  reaches yesterday, dated yesterday in an item of their own;
- windows of at most `window_days` per request (Facebook 90, Instagram 30, ...), oldest first,
  the cursor moved after each stored window: a failure (token, 429, 5xx) stops that account only,
  its reason kept on the cursor, and the next run resumes from the last stored window.
Bounded per run: at most MAX_REQUESTS platform requests and MAX_SECONDS; the rest waits for the
next run.

DynamoDB per run: one Scan of the accounts, one Query of the cursors, a BatchWrite per window, a
PutItem per cursor move.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any, Dict, Mapping, Optional

from chalicelib.analytics import catalogue as catalogue_module
from chalicelib.analytics.catalogue import ChannelAnalytics
from chalicelib.analytics.platforms import CURRENT, DAY, FETCHERS, FetchError

MAX_REQUESTS = 400
#: Wall-clock budget of one run (the function's timeout is 900 s): later windows wait for the next run.
MAX_SECONDS = 600.0
CURSOR = "cursor"


def day_key(channel: str) -> str:
    return f"ch#{channel}"


def day_sort_key(day: str, account_id: str) -> str:
    return f"d#{day}#{account_id}"


def first_day(spec: ChannelAnalytics, done: Optional[str], today: _dt.date) -> _dt.date:
    """The first day this run reads for an account whose last stored day is `done`."""
    yesterday = today - DAY
    floor = today - DAY * max(1, spec.lookback_days or spec.backfill_days or 1)
    if done is None:
        start = today - DAY * max(1, spec.backfill_days or 1)
    else:
        start = min(_dt.date.fromisoformat(done) + DAY, yesterday - DAY * (spec.refresh_days - 1))
    return max(start, floor)


def run(now_ms: Optional[int] = None, channels: Optional[Mapping[str, ChannelAnalytics]] = None,
        max_requests: int = MAX_REQUESTS) -> Dict[str, Any]:
    """Snapshot every due account. Returns counts: accounts read, days stored, requests, failures."""
    from chalicelib.accounts import credential_refs
    from chalicelib.channels.base import account_secrets
    from chalicelib.logs import logger
    from chalicelib.models import ChannelAccount, PlatformAnalytics
    from chalicelib.runtime import runtime

    import time

    started = time.monotonic()
    now_ms = runtime.now_ms() if now_ms is None else now_ms
    channels = channels if channels is not None else catalogue_module.load()
    today = _dt.datetime.fromtimestamp(now_ms / 1000, tz=_dt.timezone.utc).date()
    yesterday = today - DAY
    stats: Dict[str, Any] = {"accounts": 0, "days": 0, "requests": 0, "failed": 0, "unavailable": 0,
                             "no_analytics": 0, "up_to_date": 0}
    cursors = {item.sk: dict(item.data or {}) for item in PlatformAnalytics.query(CURSOR, consistent_read=True)}
    accounts = sorted((a for a in ChannelAccount.scan() if a.enabled), key=lambda a: a.account_key)
    for account in accounts:
        spec = channels.get(account.channel)
        if spec is None or not spec.available or spec.fetcher not in FETCHERS:
            stats["no_analytics"] += 1
            continue
        key = f"{account.channel}#{account.platform_account_id}"
        cursor = cursors.get(key, {})
        done = cursor.get("done") if isinstance(cursor.get("done"), str) else None
        if done is not None and done >= yesterday.isoformat():
            stats["up_to_date"] += 1
            continue
        if stats["requests"] >= max_requests:
            stats["deferred"] = stats.get("deferred", 0) + 1
            continue
        stats["accounts"] += 1
        secrets = account_secrets(credential_refs(account))
        start = first_day(spec, done, today)
        while start <= yesterday and stats["requests"] < max_requests and time.monotonic() - started < MAX_SECONDS:
            end = min(yesterday, start + DAY * (spec.window_days - 1))
            try:
                fetched = FETCHERS[spec.fetcher](spec, account.platform_account_id, secrets, start, end)
            except FetchError as error:
                stats["failed"] += 1
                logger.warning("platform analytics not read; the next run resumes here",
                               extra={"channel": account.channel, "account_id": account.platform_account_id,
                                      "from": start.isoformat(), "reason": str(error)[:300]})
                _save_cursor(key, done, str(error)[:300], now_ms)
                break
            stats["requests"] += fetched.requests
            stats["unavailable"] += len(fetched.unavailable)
            stats["days"] += _store(account.channel, account.platform_account_id, fetched, start, end, now_ms)
            done = end.isoformat()
            if end == yesterday and spec.names(current=True) and spec.fetcher in CURRENT:
                if not _store_current(spec, account, secrets, done, now_ms, stats):
                    break
            _save_cursor(key, done, None, now_ms)
            start = end + DAY
    return stats


def _store_current(spec: ChannelAnalytics, account: Any, secrets: Any, day: str, now_ms: int,
                   stats: Dict[str, Any]) -> bool:
    """The totals a platform answers only as of now (followers), dated `day` (yesterday) in an
    item of their own ("...#now": a later re-read of that day's series never overwrites them).
    False when the platform did not answer (the day is read again next run)."""
    from chalicelib.logs import logger
    from chalicelib.models import PlatformAnalytics

    try:
        fetched = CURRENT[spec.fetcher](spec, account.platform_account_id, secrets, day)
    except FetchError as error:
        stats["failed"] += 1
        logger.warning("platform totals not read; the next run reads them again",
                       extra={"channel": account.channel, "account_id": account.platform_account_id,
                              "reason": str(error)[:300]})
        return False
    stats["requests"] += fetched.requests
    stats["unavailable"] += len(fetched.unavailable)
    values = {k: v for k, v in fetched.days.get(day, {}).items() if k not in fetched.unavailable}
    PlatformAnalytics(day_key(account.channel), day_sort_key(day, account.platform_account_id) + "#now",
                      data={"values": values, "unavailable": sorted(fetched.unavailable)}, at=now_ms).save()
    return True


def _store(channel: str, account_id: str, fetched: Any, start: _dt.date, end: _dt.date, now_ms: int) -> int:
    """One item per day of the window (put again when read again: the latest answer wins)."""
    from chalicelib.models import PlatformAnalytics

    unavailable = sorted(fetched.unavailable)
    stored = 0
    with PlatformAnalytics.batch_write() as batch:
        day = start
        while day <= end:
            values = {k: v for k, v in fetched.days.get(day.isoformat(), {}).items() if k not in fetched.unavailable}
            if values or unavailable:
                batch.save(PlatformAnalytics(day_key(channel), day_sort_key(day.isoformat(), account_id),
                                             data={"values": values, "unavailable": unavailable}, at=now_ms))
                stored += 1
            day += DAY
    return stored


def _save_cursor(key: str, done: Optional[str], error: Optional[str], now_ms: int) -> None:
    from chalicelib.models import PlatformAnalytics

    data: Dict[str, Any] = {"done": done}
    if error:
        data["error"] = error
    PlatformAnalytics(CURSOR, key, data=data, at=now_ms).save()
