"""The demo history (chalicelib.local.history): a month of inbox life played through the real
store calls on a simulated clock. It writes no report itself: the counters and cycle rows appear
only when the event log's stream reaches the consumer, and then they tell a plausible story."""
from __future__ import annotations

from chalicelib.reports import aggregates, consumer, export, summary
from tests.test_reports import stream_records

NOW = 1_765_000_000_000  # 2025-12-06 05:46:40 UTC (a Saturday)


def test_a_played_history_reaches_the_reports_only_through_the_stream(inbox):
    from chalicelib.local import history
    from chalicelib.models import Conversation

    for channel, account in history._accounts().items():
        inbox.add_account(channel, account)
    played = history.fill(NOW, days=1, scale=0.08)
    assert played["conversations"] > 5
    assert history.fill(NOW, days=1, scale=0.08) == {"conversations": 0, "steps": 0}  # once per stack
    period = summary.parse_period("2025-12-04", "2025-12-07", "UTC")
    assert aggregates.merged("all", period.from_ms, period.to_ms) == {}  # nothing written to the reports directly

    conversations = [c.conversation_id for c in Conversation.scan()]
    assert len(conversations) == played["conversations"]
    for conversation_id in conversations:
        consumer.handle_records(stream_records(conversation_id))
    numbers = summary.summary(period, "all")
    volume = numbers["volume"]
    assert volume["new_conversations"] == played["conversations"]
    assert volume["cycles"] >= volume["new_conversations"]
    assert volume["breaches"] > 0 and numbers["sla"]["first"]["missed"] > 0 and numbers["sla"]["first"]["met"] > 0
    assert numbers["next_response"]["count"] > 0 and numbers["resolution"]["count"] > 0
    assert numbers["first_response"]["median_s"] < numbers["first_response"]["p90_s"]
    assert set(numbers["response_rate"]["by_type"]) >= {"dm", "comment"}
    assert numbers["response_rate"]["by_type"]["comment"]["total"] > 0
    rows, _ = export.page(period.from_ms, period.to_ms, export.test_of("all"), limit=1000)
    assert len(rows) == volume["cycles"] and any(row["tags"] for row in rows)
    assert sum(1 for row in rows if row["first_reply_at"] is None) == numbers["unanswered"]["count"]
