"""Reports' stream consumers write a batch at once: each counter item once per transaction however
many records of the batch touch it, the guards (a conversation's tracker, a message's marker) in
the same transaction, and the cycle rows without one. What must still hold, tested here on a real
inbox history spread over a dozen 15-minute buckets (so a batch needs several transactions):
every record counts exactly once whatever the batches look like, after a crash between two
transactions of a batch, after a crash between the cycle rows and their state, and when another
consumer counts a record of the batch in the middle of it; the stored items equal the rebuild."""
from __future__ import annotations

import contextlib
import random

import pytest

from chalicelib.reports import aggregates, export, rebuild

T0 = 1_774_692_000_000  # 2026-03-28T10:00Z
MIN = 60_000
PAGE = "1234567890"
CONVERSATIONS = 12


class Crash(RuntimeError):
    """The function dies here (a timeout, an out-of-memory kill)."""


@pytest.fixture
def spread(inbox):
    """12 Messenger conversations, one every 20 minutes (each in its own 15-minute bucket), each
    answered 2 minutes later by one of three agents; every fourth is tagged and resolved."""
    from chalicelib.channels.base import ContactRef, MessageEvent
    from chalicelib.inbox import outbound, store
    from chalicelib.runtime import runtime

    inbox.add_account("messenger", PAGE)
    runtime.use_change_listeners([])
    clock = {"now": T0}
    runtime.use_clock(lambda: clock["now"] / 1000)
    ids = []
    for i in range(CONVERSATIONS):
        start = T0 + i * 20 * MIN
        clock["now"] = start
        ids.append(store.record_message(MessageEvent(
            channel="messenger", account_id=PAGE, platform_message_id=f"m{i}", thread_key=f"u{i}",
            contact=ContactRef(f"u{i}"), direction="in", sent_at_ms=start, text="hello"))[1][0])
        clock["now"] = start + 2 * MIN
        outbound.create(outbound.Draft(ids[-1], "reply", "thanks", f"c{i}", f"a{i % 3}"), store.get(ids[-1]))
        if i % 4 == 0:
            clock["now"] = start + 3 * MIN
            store.set_tags(ids[-1], ["billing"], f"agent:a{i % 3}")
            store.set_status(ids[-1], "resolved", f"agent:a{i % 3}")
    clock["now"] = T0 + 6 * 60 * MIN
    yield ids
    runtime.use_clock(None)


def log_records():
    from chalicelib.models import ConversationEvent

    return sorted(({"eventName": "INSERT", "dynamodb": {"NewImage": e.serialize()}} for e in ConversationEvent.scan()),
                  key=lambda r: int(r["dynamodb"]["NewImage"]["at"]["N"]))


def message_records():
    from chalicelib.models import Message

    return sorted(({"eventName": "INSERT", "dynamodb": {"NewImage": m.serialize()}} for m in Message.scan()),
                  key=lambda r: int(r["dynamodb"]["NewImage"]["received_at"]["N"]))


def month():
    return T0 - T0 % aggregates.DAY_MS, T0 - T0 % aggregates.DAY_MS + aggregates.DAY_MS


def assert_counted_once():
    """The counters hold exactly what a rebuild from the log and the messages computes."""
    stored = rebuild.stored_items(*month())
    assert stored and stored == rebuild.expected_items(*month())


@contextlib.contextmanager
def calls_to(operation, crash_when=lambda params, count: False):
    """Every `operation` request of the consumers' DynamoDB client (its parameters), raising
    Crash before sending the one `crash_when` picks."""
    from chalicelib.runtime import runtime

    events = runtime.client("dynamodb").meta.events
    seen = []

    def hook(params, **_kwargs):
        seen.append(params)
        if crash_when(params, len(seen)):
            raise Crash(operation)

    events.register(f"provide-client-params.dynamodb.{operation}", hook)
    try:
        yield seen
    finally:
        events.unregister(f"provide-client-params.dynamodb.{operation}", hook)


def counter_updates(transactions):
    return [tuple(item["Update"]["Key"][k]["S"] for k in ("pk", "sk"))
            for params in transactions for item in params["TransactItems"] if "Update" in item]


def test_a_batch_writes_each_counter_item_once_per_transaction(spread):
    from chalicelib.reports import consumer, messages

    with calls_to("TransactWriteItems") as log_transactions:
        assert consumer.handle_records(log_records())["applied"] == len(log_records())
    with calls_to("TransactWriteItems") as message_transactions:
        assert messages.handle_records(message_records())["applied"] == 2 * CONVERSATIONS
    for transactions in (log_transactions, message_transactions):
        assert 2 <= len(transactions) < CONVERSATIONS  # shared transactions, more than one for 12 buckets
        for params in transactions:
            updated = counter_updates([params])
            assert len(updated) == len(set(updated)) and len(params["TransactItems"]) <= 100
        # the day items every record touches are written once per transaction, not once per record
        assert counter_updates(transactions).count(("all", aggregates.day_key(T0))) == len(transactions)
    assert_counted_once()


@pytest.mark.parametrize("stream", ["log", "messages"])
def test_a_crash_between_two_transactions_of_a_batch_counts_each_record_once(spread, stream):
    from chalicelib.reports import consumer, messages

    handle, records = ((consumer.handle_records, log_records()) if stream == "log"
                       else (messages.handle_records, message_records()))
    other = messages.handle_records(message_records()) if stream == "log" else consumer.handle_records(log_records())
    assert other["applied"]
    with calls_to("TransactWriteItems", lambda params, count: count == 2) as tried, pytest.raises(Crash):
        handle(records)  # the first transaction is written, the function dies before the second
    assert len(tried) == 2
    written = rebuild.stored_items(*month())
    assert written and written != rebuild.expected_items(*month())  # half-way: some records are in
    assert handle(records)["applied"] < len(records)  # Lambda retries the batch: only the rest counts
    assert handle(records)["applied"] == 0
    assert_counted_once()


def test_a_crash_between_the_cycle_rows_and_their_state_writes_each_row_once(spread):
    from chalicelib.reports import consumer, messages

    messages.handle_records(message_records())
    records = log_records()

    def state_put(params, count):
        return params["TableName"] == export.table() and params["Item"]["start"]["N"] == "0" and count > 3

    with calls_to("PutItem", state_put), pytest.raises(Crash):
        consumer.handle_records(records)
    consumer.handle_records(records)
    random.Random(5).shuffle(records)
    consumer.handle_records(records[:9])
    consumer.handle_records(records)
    rows, _ = export.page(*month(), keep=lambda row: True, limit=1000)
    expected = [row for cid in spread for row in export.rows_of(cid, _log(cid))]
    assert sorted(rows, key=_row_key) == sorted(expected, key=_row_key)
    assert sum(row["replies"] for row in rows) == CONVERSATIONS
    assert_counted_once()


def _log(conversation_id):
    from chalicelib.inbox import store

    return store.events(conversation_id, limit=500)


def _row_key(row):
    return row["conversation_id"], row["start"]


def test_a_record_counted_by_another_consumer_mid_batch_is_left_out_and_the_rest_counted(spread):
    """The batch read its markers, then another consumer counted one of its messages before the
    batch's transaction: that transaction is cancelled whole, the batch reads again and counts
    every other message once."""
    from chalicelib.reports import consumer, messages

    consumer.handle_records(log_records())
    records = message_records()
    raced = {"done": False}

    def race(params, count):
        if not raced["done"]:
            raced["done"] = True
            assert messages.handle_records(records[5:6])["applied"] == 1  # (its own transaction)
        return False

    with calls_to("TransactWriteItems", race) as tried:
        assert messages.handle_records(records)["applied"] == len(records) - 1
    assert len(tried) >= 3  # the cancelled one, the racer's, and the batch's again
    assert_counted_once()


def test_any_batching_of_the_streams_counts_every_record_once(spread):
    """Random batch cuts, redeliveries and duplicates inside a batch: the same counters."""
    from chalicelib.reports import consumer, messages

    rng = random.Random(11)
    for handle, records in ((consumer.handle_records, log_records()), (messages.handle_records, message_records())):
        order = records + rng.sample(records, 6)
        rng.shuffle(order)
        while order:
            size = rng.randint(1, 12)
            batch, order = order[:size], order[size:]
            handle(batch + batch[:1])
    assert_counted_once()


def test_a_days_authors_are_written_apart_and_only_when_they_raise_a_register(spread):
    """The day's distinct-count registers live beside the day's counters and are written outside
    the transaction only when new: the same authors writing again the same day write no
    registers, and the unique authors read the same."""
    from chalicelib.channels.base import ContactRef, MessageEvent
    from chalicelib.inbox import store
    from chalicelib.reports import consumer, messages, summary

    consumer.handle_records(log_records())
    first = {r["dynamodb"]["NewImage"]["message_id"]["S"] for r in message_records()}
    with calls_to("UpdateItem") as updates, calls_to("TransactWriteItems") as transactions:
        messages.handle_records(message_records())
    registers = [p["Key"]["sk"]["S"] for p in updates]
    assert registers and all(aggregates.is_registers(sk) for sk in registers)
    assert not [key for key in counter_updates(transactions) if aggregates.is_registers(key[1])]
    day = summary.Period(*month(), "UTC")
    assert summary.summary(day, "all")["volume"]["unique_authors"] == CONVERSATIONS
    for i in range(CONVERSATIONS):  # the same customers write again, hours later the same day
        at = T0 + 8 * 60 * MIN + i * MIN
        store.record_message(MessageEvent(channel="messenger", account_id=PAGE, platform_message_id=f"again{i}",
                                          thread_key=f"u{i}", contact=ContactRef(f"u{i}"), direction="in",
                                          sent_at_ms=at, text="me again"))
    again = [r for r in message_records() if r["dynamodb"]["NewImage"]["message_id"]["S"] not in first]
    with calls_to("UpdateItem") as updates:
        assert messages.handle_records(again)["applied"] == CONVERSATIONS
    # only the tag scope is new to them (tagged after their first message counted)
    assert {p["Key"]["pk"]["S"] for p in updates if p["Key"]["sk"]["S"].startswith(aggregates.day_key(T0))} <= {
        "tag#billing"}
    found = summary.summary(day, "all")["volume"]
    assert found["unique_authors"] == CONVERSATIONS and found["inbound"] == 2 * CONVERSATIONS
    consumer.handle_records(log_records())  # what the new messages logged (waits, reopens)
    assert_counted_once()


def test_the_reports_stream_mappings_wait_for_a_batch():
    """What the batching buys (docs/COST.md) holds only if Lambda hands over batches: the two
    reports consumers' mappings wait up to a minute and take up to 100 records."""
    import app

    sources = {h.name: h for h in app.app.event_sources if hasattr(h, "stream_arn")}
    for name in ("reports_consumer", "reports_messages"):
        assert sources[name].batch_size == 100 and sources[name].maximum_batching_window_in_seconds == 60
