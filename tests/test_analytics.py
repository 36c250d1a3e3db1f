"""Platform analytics (chalicelib.analytics): each platform's fetcher against the loopback sandbox
that `make run` starts (contract: the request it makes, the payload it reads, Graph's "invalid
metric" answer), the daily snapshot (one item per account and day, idempotent, resuming after a
failure), and GET /api/reports/attention through chalice.test.Client (the join with the inbox's
counters, "no longer available", CSV equal to the JSON, who may read it)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
import requests

from chalicelib.analytics import catalogue, platforms, snapshot
from chalicelib.local import sandbox
from tests.helpers import PAGE

TOKENS = {"META_PAGE_TOKEN": "page-token", "INSTAGRAM_ACCESS_TOKEN": "ig-token", "WHATSAPP_TOKEN": "wa-token",
          "WHATSAPP_BUSINESS_ACCOUNT_ID": "300000000000001", "LINKEDIN_ACCESS_TOKEN": "li-token",
          "X_BEARER_TOKEN": "x-bearer"}
IG_USER, ORG, X_USER = "17841400000000077", "urn:li:organization:10000001", "1520000000000000001"
DEC1, DEC7 = dt.date(2026, 12, 1), dt.date(2026, 12, 7)
NOW_DEC8 = int(dt.datetime(2026, 12, 8, 3, tzinfo=dt.timezone.utc).timestamp() * 1000)


@pytest.fixture
def platform(monkeypatch):
    """The loopback sandbox, our base URLs pointed at it, its tokens TOKENS."""
    server, env = sandbox.start(None, secrets=TOKENS.get)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield server
    server.close()


def spec(channel, **metrics):
    """The shipped catalogue's entry for `channel`, or one with exactly `metrics` (name: label)."""
    shipped = catalogue.load()[channel]
    if not metrics:
        return shipped
    document = {"channels": {channel: {"source": shipped.source, "fetcher": shipped.fetcher, "note": "",
                                       "window_days": shipped.window_days, "metrics": metrics}}}
    return catalogue.parse(document)[channel]


def analytics_requests(server):
    return [r for r in server.requests if r.get("analytics")]


# --- the catalogue ---------------------------------------------------------------------------------


def test_the_catalogue_names_current_meta_metrics_and_says_telegram_has_none():
    channels = catalogue.load()
    assert {"facebook", "messenger", "instagram", "linkedin", "whatsapp", "x", "telegram"} <= set(channels)
    facebook = [m.name for m in channels["facebook"].metrics]
    assert "page_media_view" in facebook and "page_follows" in facebook
    assert not {"page_impressions", "page_fans", "page_impressions_unique"} & set(facebook)  # removed by Meta
    assert "impressions" not in [m.name for m in channels["instagram"].metrics]
    assert channels["facebook"].window_days == 90 and channels["instagram"].window_days == 30
    telegram = channels["telegram"].to_json()
    assert telegram["available"] is False and "no analytics" in telegram["note"]
    with pytest.raises(catalogue.CatalogueError):
        catalogue.parse({"channels": {"x": {"metrics": {"a": "A"}, "roles": {"reach": ["b"]}}}})
    with pytest.raises(catalogue.CatalogueError):
        catalogue.parse({"channels": {"x": {"metrics": {"a": 5}}}})


# --- each platform against the sandbox -------------------------------------------------------------


def test_facebook_page_insights_daily_values_by_metas_end_time(platform):
    found = platforms.facebook_page(spec("facebook"), PAGE, TOKENS.get, DEC1, DEC7)
    assert sorted(found.days) == [f"2026-12-0{d}" for d in range(1, 8)]
    assert set(found.days["2026-12-01"]) == set(spec("facebook").names())
    assert found.unavailable == set() and found.requests == 1
    [asked] = analytics_requests(platform)
    assert asked["path"] == f"/graph/v21.0/{PAGE}/insights" and asked["query"]["period"] == "day"
    assert int(asked["query"]["until"]) - int(asked["query"]["since"]) == 7 * 86400
    again = platforms.facebook_page(spec("facebook"), PAGE, TOKENS.get, DEC1, DEC7)
    assert again.days == found.days  # the sandbox's numbers are stable


def test_a_metric_meta_removed_is_no_longer_available_and_the_others_still_answer(platform):
    """Graph refuses the whole request when one metric was removed (400, code 100): the fetcher
    asks metric by metric and keeps what still answers."""
    found = platforms.facebook_page(spec("facebook", page_fans="Fans", page_media_view="Views",
                                         page_impressions="Impressions"), PAGE, TOKENS.get, DEC1, DEC1)
    assert found.unavailable == {"page_fans", "page_impressions"}
    assert set(found.days["2026-12-01"]) == {"page_media_view"}
    assert found.requests == 4  # all three at once (refused), then one by one
    ig = platforms.instagram_account(spec("instagram", impressions="Impressions", reach={"label": "Reach",
                                                                                          "type": "total_value"}),
                                     IG_USER, TOKENS.get, DEC1, dt.date(2026, 12, 2))
    assert ig.unavailable == {"impressions"} and set(ig.days) == {"2026-12-01", "2026-12-02"}


def test_instagram_total_values_one_day_a_request_and_follower_count_as_a_series(platform):
    found = platforms.instagram_account(spec("instagram"), IG_USER, TOKENS.get, DEC1, dt.date(2026, 12, 3))
    assert sorted(found.days) == ["2026-12-01", "2026-12-02", "2026-12-03"]
    assert set(found.days["2026-12-02"]) == {"reach", "views", "accounts_engaged", "total_interactions",
                                             "follower_count"}
    asked = analytics_requests(platform)
    assert asked[0]["path"] == f"/instagram/v21.0/{IG_USER}/insights" and "metric_type" not in asked[0]["query"]
    totals = [r for r in asked if r["query"].get("metric_type") == "total_value"]
    assert len(totals) == 3 and all(int(r["query"]["until"]) - int(r["query"]["since"]) == 86400 for r in totals)


def test_linkedin_share_and_follower_statistics_per_day(platform):
    found = platforms.linkedin_organization(spec("linkedin"), ORG, TOKENS.get, DEC1, dt.date(2026, 12, 2))
    assert set(found.days["2026-12-02"]) == set(spec("linkedin").names())
    paths = [r["path"] for r in analytics_requests(platform)]
    assert paths == ["/linkedin/rest/organizationalEntityShareStatistics",
                     "/linkedin/rest/organizationalEntityFollowerStatistics"]
    query = analytics_requests(platform)[0]["query"]
    assert query["organizationalEntity"] == ORG and "timeGranularityType:DAY" in query["timeIntervals"]
    renamed = platforms.linkedin_organization(spec("linkedin", viewCount="Views", clickCount="Clicks"), ORG,
                                              TOKENS.get, DEC1, DEC1)
    assert renamed.unavailable == {"viewCount"} and "clickCount" in renamed.days["2026-12-01"]


def test_whatsapp_message_and_pricing_analytics(platform):
    found = platforms.whatsapp_business(spec("whatsapp"), "200000000000001", TOKENS.get, DEC1, dt.date(2026, 12, 2))
    day = found.days["2026-12-01"]
    assert day["delivered"] <= day["sent"] and day["billable_volume"] >= 0 and day["cost"] >= 0
    fields = [r["query"]["fields"] for r in analytics_requests(platform)]
    assert fields[0].startswith("analytics.start(") and fields[1].startswith("pricing_analytics.start(")
    assert all(r["path"] == "/graph/v21.0/300000000000001" for r in analytics_requests(platform))


def test_x_public_metrics_of_our_posts_summed_per_day(platform):
    found = platforms.x_posts(spec("x"), X_USER, TOKENS.get, DEC1, DEC7)
    assert sorted(found.days) == [f"2026-12-0{d}" for d in range(1, 8)]
    posted = [d for d, values in found.days.items() if values["posts"]]
    assert posted and all(found.days[d]["impression_count"] > 0 for d in posted)
    assert all(found.days[d]["impression_count"] == 0 for d in found.days if d not in posted)  # real zeros
    query = analytics_requests(platform)[0]["query"]
    assert "public_metrics" in query["tweet.fields"] and query["start_time"] == "2026-12-01T00:00:00Z"


def test_followers_as_of_now_and_a_renamed_profile_field(platform):
    ig = platforms.instagram_current(spec("instagram"), IG_USER, TOKENS.get, "2026-12-07")
    assert ig.days["2026-12-07"]["followers_count"] > 0 and ig.unavailable == set()
    li = platforms.linkedin_current(spec("linkedin"), ORG, TOKENS.get, "2026-12-07")
    x = platforms.x_current(spec("x"), X_USER, TOKENS.get, "2026-12-07")
    assert li.days["2026-12-07"]["firstDegreeSize"] > 0 and x.days["2026-12-07"]["followers_count"] > 0
    paths = [r["path"] for r in analytics_requests(platform)]
    assert paths == [f"/instagram/v21.0/{IG_USER}", "/linkedin/rest/networkSizes/urn%3Ali%3Aorganization%3A10000001", f"/x/2/users/{X_USER}"]
    renamed = platforms.instagram_current(spec("instagram", fans_count={"label": "Fans", "type": "current"}),
                                          IG_USER, TOKENS.get, "2026-12-07")
    assert renamed.unavailable == {"fans_count"} and renamed.days == {}


def test_a_refused_token_or_a_server_error_is_a_fetch_error_never_a_partial_day(platform):
    with pytest.raises(platforms.FetchError, match="HTTP 401"):
        platforms.facebook_page(spec("facebook"), PAGE, {"META_PAGE_TOKEN": "wrong"}.get, DEC1, DEC1)
    with pytest.raises(platforms.FetchError, match="HTTP 502"):
        platforms.facebook_page(spec("facebook"), "fail-5xx", TOKENS.get, DEC1, DEC1)
    with pytest.raises(platforms.FetchError, match="not configured"):
        platforms.x_posts(spec("x"), X_USER, {}.get, DEC1, DEC1)
    with pytest.raises(platforms.FetchError, match="HTTP 401"):
        platforms.linkedin_organization(spec("linkedin"), "urn:li:organization:fail-token", TOKENS.get, DEC1, DEC1)


# --- the snapshot ----------------------------------------------------------------------------------


@pytest.fixture
def local_platform(monkeypatch, aws_backend):
    """The sandbox with the local stage's tokens (what accounts' secrets resolve to in tests)."""
    from chalicelib import config

    server, env = sandbox.start(None)
    # the local stage's tokens, stated: what the sandbox checks, whatever ran before in this process
    for name, value in dict(config.LOCAL_SECRET_DEFAULTS, **env).items():
        monkeypatch.setenv(name, value)
    yield server
    server.close()


def stored(channel, totals=False):
    """The channel's day items (`totals`: the "#now" items of totals read as of the run)."""
    from chalicelib.models import PlatformAnalytics

    return {item.sk: item.data for item in PlatformAnalytics.query(f"ch#{channel}")
            if item.sk.endswith("#now") == totals}


def test_the_snapshot_stores_each_account_day_once_and_skips_what_has_no_analytics(local_platform):
    from chalicelib.accounts import register_account

    register_account("facebook", PAGE, "Page")
    register_account("instagram", IG_USER, "IG")
    register_account("telegram", "1000000001", "Bot")
    register_account("x", X_USER, "X")
    register_account("whatsapp", "200000000000001", "WA")
    stats = snapshot.run(now_ms=NOW_DEC8)
    assert stats["accounts"] == 4 and stats["no_analytics"] == 1 and stats["failed"] == 0
    assert stored("whatsapp")["d#2026-12-07#200000000000001"]["values"]["sent"] > 0
    # followers as of now (Instagram profile, X user): once, dated yesterday, in items of their own
    ig_total = stored("instagram", totals=True)[f"d#2026-12-07#{IG_USER}#now"]["values"]["followers_count"]
    assert ig_total > 0 and list(stored("x", totals=True)) == [f"d#2026-12-07#{X_USER}#now"]
    facebook = stored("facebook")
    assert len(facebook) == 90 and f"d#2026-12-07#{PAGE}" in facebook and f"d#2026-12-08#{PAGE}" not in facebook
    assert len(stored("instagram")) == 30 and len(stored("x")) == 30
    assert stored("telegram") == {}
    # a second run the same day asks the platforms nothing and writes nothing new
    before = len(analytics_requests(local_platform))
    assert snapshot.run(now_ms=NOW_DEC8 + 3_600_000)["requests"] == 0
    assert len(analytics_requests(local_platform)) == before
    # the next day: the new day plus the last refresh_days again (overwritten, never added twice)
    snapshot.run(now_ms=NOW_DEC8 + 86_400_000)
    facebook = stored("facebook")
    assert len(facebook) == 91 and f"d#2026-12-08#{PAGE}" in facebook
    assert sorted(stored("instagram", totals=True)) == [f"d#2026-12-07#{IG_USER}#now", f"d#2026-12-08#{IG_USER}#now"]
    asked = analytics_requests(local_platform)[before]
    assert asked["query"]["since"] == str(int(dt.datetime(2026, 12, 6, tzinfo=dt.timezone.utc).timestamp()))


def test_a_failed_window_is_resumed_by_the_next_run_from_the_last_stored_window(local_platform):
    from chalicelib.accounts import register_account
    from chalicelib.models import PlatformAnalytics
    from chalicelib.runtime import runtime

    register_account("x", X_USER, "X")
    real = requests.Session()

    class FailingAfter:
        """X answers the first window, then fails (a 503 from its edge)."""

        def __init__(self):
            self.calls = 0

        def get(self, url, **kwargs):
            self.calls += 1
            if self.calls > 1:
                response = requests.Response()
                response.status_code, response._content = 503, b""
                return response
            return real.get(url, **kwargs)

    runtime.use_http(FailingAfter())
    stats = snapshot.run(now_ms=NOW_DEC8)
    assert stats["failed"] == 1 and len(stored("x")) == 7  # the first 7-day window only
    cursor = PlatformAnalytics.get("cursor", f"x#{X_USER}").data
    assert cursor["done"] == "2026-11-14" and "503" in cursor["error"]
    runtime.use_http(real)
    stats = snapshot.run(now_ms=NOW_DEC8)
    assert stats["failed"] == 0 and len(stored("x")) == 30
    assert PlatformAnalytics.get("cursor", f"x#{X_USER}").data == {"done": "2026-12-07"}
    starts = [r["query"]["start_time"] for r in analytics_requests(local_platform) if "start_time" in r["query"]]
    assert starts[-4] == "2026-11-15T00:00:00Z"  # resumed where it stopped


def test_the_scheduled_function_runs_the_snapshot(local_platform):
    import app

    from chalicelib.accounts import register_account

    from chalicelib.runtime import runtime

    register_account("linkedin", ORG, "LinkedIn Page")
    runtime.use_clock(lambda: NOW_DEC8 / 1000)
    event = {"version": "0", "id": "e-1", "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "123456789012", "time": "2026-12-08T03:00:00Z", "region": "us-east-1", "detail": {},
             "resources": ["arn:aws:events:us-east-1:123456789012:rule/analytics_snapshot"]}
    result = app.analytics_snapshot(event, None)
    assert result["accounts"] == 1 and result["days"] == 90 and result["failed"] == 0


# --- the attention report --------------------------------------------------------------------------


def _conversation_on_dec2():
    """One Messenger conversation on 2026-12-02 (UTC): a customer message at 10:00 answered at
    10:04, through the real inbox, its log fed to the reports' consumer."""
    from chalicelib.channels.base import ContactRef, MessageEvent
    from chalicelib.inbox import rules, store
    from chalicelib.models import ConversationEvent
    from chalicelib.reports import consumer
    from chalicelib.runtime import runtime

    t0 = int(dt.datetime(2026, 12, 2, 10, tzinfo=dt.timezone.utc).timestamp() * 1000)
    runtime.use_change_listeners([])
    runtime.use_clock(lambda: t0 / 1000)
    _, (cid, _) = store.record_message(MessageEvent(
        channel="messenger", account_id=PAGE, platform_message_id="m-att-1", thread_key="u1", contact=ContactRef("u1"),
        direction="in", sent_at_ms=t0, text="is the shop open?", raw={}))
    runtime.use_clock(lambda: (t0 + 240_000) / 1000)
    store.apply_message(cid, rules.MessageFacts("r-att-1", "out", t0 + 240_000, "yes", author="ana"))
    runtime.use_clock(None)
    consumer.handle_records([{"eventName": "INSERT", "dynamodb": {"NewImage": e.serialize()}}
                             for e in ConversationEvent.query(cid)])
    # and the messages' consumer, which keeps the day's unique authors (register sets) beside the counts
    from chalicelib.models import Message
    from chalicelib.reports import messages as report_messages

    report_messages.handle_records([{"eventName": "INSERT", "dynamodb": {"NewImage": m.serialize()}}
                                    for m in Message.query(cid)])


def _get(inbox, path, token):
    answer = inbox.client.http.get(path, headers={"Authorization": "Bearer " + token})
    return answer.status_code, answer


def test_attention_joins_reach_and_followers_with_the_inbox_per_day_and_channel(inbox, local_platform, tmp_path,
                                                                                 monkeypatch):
    # an operator's catalogue still listing a metric Meta removed
    document = json.load(open(catalogue.DEFAULT_FILE, encoding="utf-8"))
    document["channels"]["messenger"]["metrics"]["page_fans"] = "Fans (old)"
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(document))
    monkeypatch.setenv("ANALYTICS_METRICS_FILE", str(path))
    inbox.add_account("messenger", PAGE)
    _conversation_on_dec2()
    assert snapshot.run(now_ms=NOW_DEC8)["failed"] == 0
    admin = inbox.login_admin()
    query = "from=2026-12-01&to=2026-12-04&tz=UTC"
    status, answer = _get(inbox, f"/api/reports/attention?{query}&channel=messenger", admin)
    assert status == 200, answer.body
    from tests.test_openapi import Checker, _document

    body = Checker(_document(inbox)).check("/api/reports/attention", "get", answer)  # the documented schema
    assert [r["day"] for r in body["rows"]] == ["2026-12-01", "2026-12-02", "2026-12-03"]
    dec2 = body["rows"][1]
    expected = platforms.facebook_page(catalogue.load(str(path))["messenger"], PAGE,
                                       {"META_PAGE_TOKEN": "dev_meta_page_token"}.get,
                                       dt.date(2026, 12, 2), dt.date(2026, 12, 2)).days["2026-12-02"]
    assert dec2["reach"] == expected["page_total_media_view_unique"]
    assert dec2["new_followers"] == expected["page_daily_follows_unique"]
    assert dec2["followers"] == expected["page_follows"]
    assert dec2["new_conversations"] == 1 and dec2["response_rate_pct"] == 100.0
    assert abs(dec2["first_response_median_s"] - 240) <= 5 and dec2["unanswered"] == 0
    assert dec2["platform"]["page_fans"] == {"label": "Fans (old)", "value": None, "status": "no_longer_available"}
    assert dec2["platform"]["page_media_view"]["status"] == "ok"
    assert body["rows"][0]["new_conversations"] == 0 and body["rows"][0]["reach"] is not None
    assert body["period"]["counts"] == "cohort" and body["channels"]["messenger"]["available"] is True

    # every channel: telegram says it has none; days of channels without data or activity are left out
    status, answer = _get(inbox, f"/api/reports/attention?{query}", admin)
    every = json.loads(answer.body)
    assert every["channels"]["telegram"]["available"] is False and "no analytics" in every["channels"]["telegram"]["note"]
    assert {r["channel"] for r in every["rows"]} == {"messenger"}

    # the CSV is the screen's table: same rows, same numbers, "no longer available" spelled out
    status, answer = _get(inbox, f"/api/reports/attention?{query}&channel=messenger&format=csv", admin)
    assert status == 200 and answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(answer.body.decode())))
    assert [r["day"] for r in rows] == [r["day"] for r in body["rows"]]
    assert rows[1]["reach"] == str(dec2["reach"]) and rows[1]["messenger: Fans (old)"] == "no longer available"
    assert rows[1]["messenger: Views"] == str(dec2["platform"]["page_media_view"]["value"])


def test_attention_in_a_time_zone_and_who_may_read_it(inbox, local_platform):
    from tests.helpers import signed_in_agent

    inbox.add_account("messenger", PAGE)
    _conversation_on_dec2()
    admin = inbox.login_admin()
    # 10:00 UTC on the 2nd is midnight of the 3rd in Kiritimati (+14): the row is the 3rd's there
    status, answer = _get(inbox, "/api/reports/attention?from=2026-12-02&to=2026-12-04&tz=Pacific/Kiritimati"
                                 "&channel=messenger", admin)
    body = json.loads(answer.body)
    assert status == 200 and body["period"]["from"] == "2026-12-02T00:00:00+14:00"
    assert [(r["day"], r["new_conversations"]) for r in body["rows"]] == [("2026-12-03", 1)]
    supervisor = signed_in_agent("sue@example.com", "Sue", "supervisor", ["default"])["token"]
    outsider = signed_in_agent("otto@example.com", "Otto", "supervisor", ["billing"])["token"]
    agent = signed_in_agent("ann@example.com", "Ann", "agent", ["default"])["token"]
    day = "from=2026-12-02&to=2026-12-03&tz=UTC&channel=messenger"
    assert json.loads(_get(inbox, f"/api/reports/attention?{day}", supervisor)[1].body)["rows"][0]["new_conversations"] == 1
    assert json.loads(_get(inbox, f"/api/reports/attention?{day}", outsider)[1].body)["rows"] == []
    assert _get(inbox, f"/api/reports/attention?{day}&team=default", outsider)[0] == 403
    assert _get(inbox, f"/api/reports/attention?{day}", agent)[0] == 403
    assert inbox.client.http.get(f"/api/reports/attention?{day}").status_code == 401
    for bad in ("from=2026-12-03&to=2026-12-02", "from=2026-01-01&to=2026-12-01", f"{day}&format=xml",
                "from=2026-12-01&to=2026-12-02&channel=myspace", "from=2026-12-01&to=2026-12-02&tz=%2B05:00",
                f"{day}&agent=ann", "to=2026-12-02"):
        status, answer = _get(inbox, f"/api/reports/attention?{bad}", admin)
        assert status == 400, (bad, answer.body)
