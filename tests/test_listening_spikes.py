"""Listening: spike alerts from X counts/recent (no post read) and sentiment dips from the stored
items: the baseline and cooldown rules, the hourly run against `responses` and the loopback
sandbox, the alerts in supervisors' notifications and on the escalation SNS topic."""
from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from chalicelib.listening import spikes

COUNTS = "https://api.x.com/2/tweets/counts/recent"
HOUR = spikes.HOUR_MS
NOW = 1_796_000_000_000 - 1_796_000_000_000 % HOUR + 5 * 60_000  # 5 minutes into an hour
LAST = NOW - NOW % HOUR - HOUR  # the last complete hour


@pytest.fixture(autouse=True)
def _real_x(monkeypatch):
    monkeypatch.delenv("X_API_BASE_URL", raising=False)


# --- the rules ------------------------------------------------------------------------------------


def test_a_spike_is_three_times_the_larger_baseline_and_never_a_handful_of_posts():
    assert spikes.spike(30, [5] * 24, None)["baseline"] == 5.0
    assert spikes.spike(14, [5] * 24, None) is None  # under 3x the day's mean
    assert spikes.spike(30, [5] * 24, 12) is None  # last week's same hour had a rush too: 30 < 36
    assert spikes.spike(40, [5] * 24, 12)["same_hour_last_week"] == 12
    assert spikes.spike(9, [0] * 24, None) is None  # 9 against nothing is still noise
    assert spikes.spike(10, [0] * 24, 0)["last_hour"] == 10


def test_the_hourly_history_gives_the_day_and_the_week_ago_hour():
    history = {LAST - h * HOUR: 4 for h in range(1, 25)}
    history[LAST] = 20
    assert spikes.volume_figures(history, LAST)["day_mean"] == 4.0
    history[LAST - spikes.WEEK_HOURS * HOUR] = 8
    assert spikes.volume_figures(history, LAST) is None  # 20 < 3 x 8
    assert spikes.volume_figures({LAST: 12}, LAST)["baseline"] == 0.0  # no history: missing hours count 0


def test_a_dip_is_a_jump_in_the_negative_share_of_enough_scored_items():
    calm = ["positive"] * 8 + ["negative"] * 2
    assert spikes.dip(["negative"] * 4 + ["neutral"], calm)["negative_share"] == 0.8
    assert spikes.dip(["negative"] * 4, calm) is None  # four items say little
    assert spikes.dip(["negative"] * 4 + ["unscored"] * 5, calm) is None  # unscored is no sentiment
    assert spikes.dip(["negative"] * 2 + ["positive"] * 3, calm) is None  # 40% vs 20%: +20 points only


def test_one_episode_alerts_once_and_the_cooldown_holds_back_a_rebound():
    fire, state = spikes.gate(True, {}, NOW)
    assert fire and state == {"active": True, "alerted_at": NOW}
    fire, state = spikes.gate(True, state, NOW + 10 * HOUR)  # still spiking ten hours later
    assert not fire
    fire, state = spikes.gate(False, state, NOW + 11 * HOUR)
    assert not fire and state["active"] is False
    assert spikes.gate(True, {"active": False, "alerted_at": NOW}, NOW + HOUR)[0] is False  # within 6 h
    assert spikes.gate(True, state, NOW + 12 * HOUR)[0] is True  # a new episode after the cooldown


# --- the hourly run -------------------------------------------------------------------------------


def _topic(inbox, budget=100, **fields):
    inbox.login_admin()
    body = dict({"name": "Refunds", "include": ["refund"], "sources": ["x_search"]}, **fields)
    assert inbox.call("post", "/api/listening/topics", body)[0] == 201
    assert inbox.call("put", "/api/listening/x-budget", {"monthly_posts": budget})[0] == 200


def _buckets(last_hour_count, steady=3):
    start = NOW - NOW % HOUR - spikes.COUNTS_WINDOW_HOURS * HOUR
    data = [{"start": _iso(at), "end": _iso(at + HOUR), "tweet_count": steady}
            for at in range(start, LAST, HOUR)]
    data.append({"start": _iso(LAST), "end": _iso(LAST + HOUR), "tweet_count": last_hour_count})
    return {"data": data, "meta": {"total_tweet_count": sum(d["tweet_count"] for d in data)}}


def _iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ms / 1000))


def _alerts(inbox, kind):
    return [n for n in inbox.call("get", "/api/me/notifications")[1]["items"] if n["kind"] == kind]


def _sns_inbox(monkeypatch):
    """The escalation topic (as the data stack's output names it) with a queue subscribed."""
    from chalicelib import aws

    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = sns.create_topic(Name="socialinbox-test-escalations")["TopicArn"]
    queue = sqs.create_queue(QueueName="escalations-reader")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    monkeypatch.setenv("ESCALATION_TOPIC_ARN", topic)
    return lambda: [json.loads(json.loads(m["Body"])["Message"])
                    for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])]


def test_a_spike_alerts_supervisors_and_the_escalation_topic_once(inbox, monkeypatch):
    _topic(inbox)
    published = _sns_inbox(monkeypatch)
    with responses.RequestsMock() as x:
        x.add("GET", COUNTS, json=_buckets(40))
        stats = spikes.run(NOW)
        assert stats == {"count_requests": 1, "alerts": 1}
        sent = {k: v[0] for k, v in parse_qs(urlparse(x.calls[0].request.url).query).items()}
        assert sent["granularity"] == "hour" and sent["query"] == '"refund" -is:retweet'
        assert x.calls[0].request.headers["Authorization"].startswith("Bearer ")
        assert spikes.run(NOW + 20 * 60_000)["count_requests"] == 0  # the hour is checked: no request
        stats = spikes.run(NOW + HOUR)  # the next hour: still spiking, same episode
        assert stats == {"count_requests": 1, "alerts": 0}
    [alert] = _alerts(inbox, "listening_spike")
    assert alert["data"]["topic"] == "Refunds" and alert["data"]["last_hour"] == 40
    assert alert["data"]["day_mean"] == 3.0
    [message] = published()
    assert message["kind"] == "listening_spike" and message["topic"] == "Refunds"
    from chalicelib.listening import x_search

    assert x_search.budget(NOW)["used"] == 2  # one post's price per request


def test_no_budget_no_counts_and_a_failed_request_is_retried_next_run(inbox):
    _topic(inbox, budget=0)
    with responses.RequestsMock() as x:
        assert spikes.run(NOW)["count_requests"] == 0 and len(x.calls) == 0
    inbox.call("put", "/api/listening/x-budget", {"monthly_posts": 100})
    with responses.RequestsMock() as x:
        x.add("GET", COUNTS, status=503, json={"title": "Service Unavailable"})
        x.add("GET", COUNTS, json=_buckets(40))
        assert spikes.run(NOW) == {"count_requests": 1, "alerts": 0}
        assert spikes.run(NOW + 5 * 60_000) == {"count_requests": 1, "alerts": 1}  # the same hour, again
    assert len(_alerts(inbox, "listening_spike")) == 1


def test_a_sentiment_dip_alerts_from_the_stored_items(inbox):
    from chalicelib.listening import items

    _topic(inbox, sources=["facebook"])

    def found(n, label, at):
        items.record(source="facebook_mention", platform="facebook", post_id=f"p{n}", posted_ms=at, account_id="1",
                     author={}, text="x", url=None, replyable=True, now_ms=at,
                     analysis={"sentiment": {"label": label, "score": 0.0}, "topics": ["Refunds"]})

    for n in range(10):  # yesterday: mostly happy
        found(n, "positive" if n < 8 else "negative", LAST - (n + 2) * HOUR)
    for n in range(10, 16):  # the last hour: angry
        found(n, "negative" if n < 15 else "neutral", LAST + (n - 10) * 60_000)
    found(99, "negative", NOW)  # the current hour is not judged yet
    assert spikes.run(NOW) == {"count_requests": 0, "alerts": 1}  # no X topic source: no request
    [alert] = _alerts(inbox, "sentiment_dip")
    assert alert["data"]["negative_share"] == round(5 / 6, 3) and alert["data"]["baseline_share"] == 0.2
    assert alert["data"]["items"] == 6
    assert spikes.run(NOW + HOUR)["alerts"] == 0


def test_the_sandbox_serves_hourly_counts_with_one_spike(inbox, monkeypatch):
    from chalicelib.local import listening_seed, sandbox

    server, env = sandbox.start(None)
    try:
        monkeypatch.setenv("X_API_BASE_URL", env["X_API_BASE_URL"])
        _topic(inbox, include=["refund", "remboursement"], name="Refunds")
        assert inbox.call("post", "/api/listening/topics", {"name": "Hours", "include": ["sundays"],
                                                            "sources": ["x_search"]})[0] == 201
        anchor = listening_seed._ANCHOR_MS
        stats = spikes.run(anchor - anchor % HOUR + 1)  # in the hour the sandbox started
        assert stats == {"count_requests": 2, "alerts": 1}
    finally:
        server.close()
    [alert] = _alerts(inbox, "listening_spike")
    assert alert["data"]["topic"] == "Refunds" and alert["data"]["last_hour"] >= listening_seed.SPIKE_POSTS
