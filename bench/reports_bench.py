"""Reports: what the stream consumer costs per log entry, and what a report costs to read.

    .venv/bin/python bench/reports_bench.py                 # ~5 min, moto in this process
    .venv/bin/python bench/reports_bench.py --quick         # smaller counts
    .venv/bin/python bench/reports_bench.py --skip-reads    # (1), (1b) and (3) only

(1) Consumer: scripted conversations go through the real inbox (store: customer messages, a note,
    replies, resolve, reopen; SLA listeners off), spaced for a traffic rate (default 1M inbound
    messages a month: one conversation every 7.8 s, 3 inbound messages each). Their log entries,
    then their messages, are handed to the consumers as Lambda's stream mapping would cut them:
    in write order, batches of up to 100 records closed by the batching window (0: each record
    alone, what a quiet stream without a window delivers; 60 s: what app.py configures), each
    window on a fresh stack; then the last batches again (a redelivery). Priced by bench/wru.py
    (item sizes, x2 per item of a transaction): WRU and RRU per log entry and per message. The
    inbound write path pays nothing for reports (a stream is read, not written).
(1b) Busy days: the messages again, on days whose distinct-count registers already hold 8,000
    authors (a ~12 KB set, seeded where the code under test keeps it): what a real day's register
    set costs when it sits in an item every message updates.
(2) Reads per report: the aggregates of N conversations (one cycle each, arrivals spread over 30
    days, 3 channels, 2 teams) are folded with the consumer's own fold (chalicelib.reports.cycles)
    and written as merged counter items (one put per item, so 100,000 conversations take seconds;
    the consumers' transactions are what (1) measures). Then a 30-day and a 13-month summary
    in Europe/Berlin: Query calls and RRU, at N = 1,000 and N = 100,000. They are the same because
    a report reads one item per UTC day and 15-minute edges, whatever the traffic. Also a
    13-month timeseries by month (GET /api/reports/timeseries).
(3) Rebuild: `chalicelib.reports.rebuild` of the month holding (1)'s conversations, timed.

A measurement, not a test: nothing asserts a time.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inprocess  # noqa: E402  (first: AWS settings before boto3, pynamodb or the app)
import moto  # noqa: E402

import wru  # noqa: E402

METER = inprocess.METER

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
MIN = 60_000


def _setup() -> None:
    from chalicelib import runtime as wiring
    from chalicelib.local import stack

    wiring.runtime.reset()
    stack.create_all()
    wiring.runtime.use_change_listeners([])


def _conversation(index: int, start: int) -> str:
    """One conversation through the real store: 2 customer messages, a note, a reply, resolve,
    a reopen a day later and its reply. Returns the conversation id."""
    from chalicelib.channels.base import ContactRef, MessageEvent
    from chalicelib.inbox import rules, store
    from chalicelib.runtime import runtime

    clock = {"now": start}
    runtime.use_clock(lambda: clock["now"] / 1000)

    def dm(mid: str, at: int) -> MessageEvent:
        clock["now"] = at
        return MessageEvent(channel="messenger", account_id="page-1", platform_message_id=mid, thread_key=f"u{index}",
                            contact=ContactRef(f"u{index}"), direction="in", sent_at_ms=at, text="hello", raw={})

    _, (cid, _) = store.record_message(dm(f"m{index}a", start))
    store.record_message(dm(f"m{index}b", start + 20_000))
    clock["now"] = start + MIN
    store.apply_message(cid, rules.MessageFacts(f"n{index}", "note", start + MIN, "note", author="a1"))
    clock["now"] = start + 4 * MIN
    store.apply_message(cid, rules.MessageFacts(f"r{index}a", "out", start + 4 * MIN, "hi", author="a1"))
    clock["now"] = start + 10 * MIN
    store.set_status(cid, "resolved", "agent:a1")
    store.record_message(dm(f"m{index}c", start + 86_400_000))
    clock["now"] = start + 86_400_000 + 20 * MIN
    store.apply_message(cid, rules.MessageFacts(f"r{index}b", "out", start + 86_400_000 + 20 * MIN, "ok", author="a2"))
    runtime.use_clock(None)
    return cid


def _batches(records: list, window_ms: int, size: int = 100) -> list:
    """Stream records (with the write time `_at`) cut as Lambda's mapping cuts them: in write
    order, a batch closes when it holds `size` records or its first record is `window_ms` old
    (window 0: every record alone, what a quiet stream without a batching window delivers)."""
    ordered = sorted(records, key=lambda r: r["_at"])
    batches, current = [], []
    for record in ordered:
        if current and (len(current) >= size or record["_at"] - current[0]["_at"] >= max(window_ms, 1)):
            batches.append(current)
            current = []
        current.append(record)
    if current:
        batches.append(current)
    return [[{k: v for k, v in r.items() if k != "_at"} for r in batch] for batch in batches]


def _deliver(label: str, unit: str, handle, batches: list, key: str) -> None:
    """Hand the batches to a consumer and price what it wrote and read."""
    count = sum(len(batch) for batch in batches)
    plural = "entries" if unit == "entry" else unit + "s"
    with METER.scope() as scope:
        started = time.perf_counter()
        applied = sum(handle(batch)[key] for batch in batches)
        took = time.perf_counter() - started
    print(f"  {label:34} {count} {plural} in {len(batches)} batches ({applied} new): WRU {scope.wru} "
          f"({scope.wru / count:.2f}/{unit}), RRU {scope.rru:.1f} ({scope.rru / count:.2f}/{unit}), "
          f"{took * 1000 / count:.1f} ms/{unit} (moto)")
    print("      " + ", ".join(f"{k} {v}" for k, v in sorted(scope.by_table(lambda t: t.split("-bench-")[-1]).items())))


def consumer_cost(conversations: int, spacing_ms: int, windows: tuple) -> None:
    """Each delivery on a fresh stack (the same conversations, rebuilt), so every one is a first."""
    from chalicelib.models import ConversationEvent, Message
    from chalicelib.reports import consumer, messages

    for window in windows:
        with moto.mock_aws():
            _setup()
            with METER.paused():
                ids = [_conversation(i, T0 + i * spacing_ms) for i in range(conversations)]
            records, message_records, sizes = [], [], []
            for cid in ids:
                for entry in ConversationEvent.query(cid):
                    image = entry.serialize()
                    sizes.append(wru.item_size(image))
                    records.append({"_at": int(entry.at), "eventName": "INSERT", "dynamodb": {"NewImage": image}})
                message_records += [{"_at": int(m.received_at), "eventName": "INSERT",
                                     "dynamodb": {"NewImage": m.serialize()}} for m in Message.query(cid)]
            name = f"window {window} s" if window else "each record alone"
            log_batches = _batches(records, window * 1000)
            _deliver(f"event log, {name}", "entry", consumer.handle_records, log_batches, "applied")
            msg_batches = _batches(message_records, window * 1000)
            _deliver(f"messages, {name}", "message", messages.handle_records, msg_batches, "applied")
            if window == windows[-1]:
                _deliver("event log, redelivery", "entry", consumer.handle_records, log_batches, "applied")
                _deliver("messages, redelivery", "message", messages.handle_records, msg_batches, "applied")
                print(f"  log entry size: median {sorted(sizes)[len(sizes) // 2]} B, max {max(sizes)} B "
                      f"(1 WRU up to 1024 B)")
                print("(3) rebuild from the event log")
                rebuild_time()


def _seed_layout(key_of, day: int, values: list) -> dict:
    """{sort key: register values} of a day's registers where the code under test keeps them
    (the day item itself before registers_key existed; its shards since)."""
    found: dict = {}
    for value in values:
        found.setdefault(key_of(day, value // 64) if key_of.__name__ == "registers_key" else key_of(day), []).append(value)
    return found


def busy_day_cost(conversations: int, spacing_ms: int, windows: tuple, authors: int) -> None:
    """The messages stream on days that already saw `authors` distinct customers (seeded into the
    days' distinct-count registers of every scope the bench's messages count under, where the
    code under test keeps them): what a register set of a real day costs each write."""
    from chalicelib import aws
    from chalicelib.models import Message
    from chalicelib.reports import aggregates, cycles, distinct, messages

    values = sorted({distinct.register_value(f"seed-{i}") for i in range(authors)})
    key_of = getattr(aggregates, "registers_key", aggregates.day_key)
    scopes = cycles.scopes_of({"channel": "messenger", "team": "default", "account": "page-1"})
    for window in windows:
        with moto.mock_aws():
            _setup()
            with METER.paused():
                ids = [_conversation(i, T0 + i * spacing_ms) for i in range(conversations)]
                for scope in scopes:
                    for day in (T0, T0 + 86_400_000):
                        for key, part in _seed_layout(key_of, day, values).items():
                            aws.client("dynamodb").put_item(TableName=aggregates.table(), Item={
                                "pk": {"S": scope}, "sk": {"S": key}, distinct.ATTRIBUTE: {"NS": [str(v) for v in part]}})
            size = wru.item_size({distinct.ATTRIBUTE: {"NS": [str(v) for v in values]}})
            records = [{"_at": int(m.received_at), "eventName": "INSERT", "dynamodb": {"NewImage": m.serialize()}}
                       for cid in ids for m in Message.query(cid)]
            name = f"window {window} s" if window else "each record alone"
            _deliver(f"messages, {name}, {authors:,} authors/day", "message", messages.handle_records,
                     _batches(records, window * 1000), "applied")
    print(f"  (a day's register set of {authors:,} authors: {size:,} B, {len(values):,} values)")


def rebuild_time() -> None:
    from chalicelib.reports import rebuild

    started = time.perf_counter()
    with METER.scope() as scope:
        result = rebuild.rebuild(T0, T0 + 31 * 86_400_000)
    print(f"  rebuild of January 2026: {result['written']} items, {time.perf_counter() - started:.1f} s "
          f"(moto), requests {sum(scope.requests.values())}")


def seed_aggregates(conversations: int) -> None:
    """Fold N one-cycle conversations and write the merged counter items (bulk, not per event)."""
    from chalicelib import aws
    from chalicelib.reports import aggregates, cycles

    rng = random.Random(conversations)
    contributions = []
    for i in range(conversations):
        start = T0 + rng.randrange(30 * 86_400_000)
        channel = ("messenger", "instagram", "whatsapp")[i % 3]
        log = [{"seq": 1, "at": start, "type": "created", "actor": "customer",
                "data": {"channel": channel, "team": ("sales", "care")[i % 2], "awaiting_since": start,
                         "due_at": start + 15 * MIN}},
               {"seq": 2, "at": start + rng.randrange(40) * MIN, "type": "replied", "actor": "agent",
                "data": {"response_ms": rng.randrange(1, 40 * MIN), "within_target": rng.random() < 0.8,
                         "agent": f"a{i % 7}"}}]
        contributions.extend(cycles.fold_all(log)[1])
    items = aggregates.writes_of(contributions)
    client = aws.client("dynamodb")
    with METER.paused():
        for (scope, key), counters in items.items():
            item = {"pk": {"S": scope}, "sk": {"S": key}}
            item.update({name: {"N": str(value)} for name, value in counters.items()})
            client.put_item(TableName=aggregates.table(), Item=item)
    print(f"  {conversations} conversations -> {len(items)} counter items")


def report_reads() -> None:
    from chalicelib.reports import summary

    for label, start, end in (("30 days", "2026-01-01", "2026-01-31"), ("13 months", "2025-12-01", "2027-01-01")):
        period = summary.parse_period(start, end, "Europe/Berlin")
        with METER.scope() as scope:
            found = summary.summary(period, "all")
        print(f"    summary {label:9} Europe/Berlin: Query calls {sum(scope.requests.values())}, RRU {scope.rru:.1f}, "
              f"cycles {found['volume']['cycles']}, FRT median {found['first_response']['median_s']} s")
    period = summary.parse_period("2025-12-01", "2027-01-01", "Europe/Berlin")
    with METER.scope() as scope:
        series = summary.timeseries(period, "all", "first_response_median", "month")
    print(f"    timeseries 13 months by month: Query calls {sum(scope.requests.values())}, RRU {scope.rru:.1f}, "
          f"{len(series['points'])} points")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--inbound-per-month", type=float, default=1_000_000,
                        help="traffic the conversations are spaced for (3 inbound messages each)")
    parser.add_argument("--windows", default="0,60", help="batching windows to price, seconds (0: each record alone)")
    parser.add_argument("--busy-authors", type=int, default=8000,
                        help="(1b): distinct authors a day has seen before the bench's messages (0: skip)")
    parser.add_argument("--skip-reads", action="store_true", help="only (1) and (3)")
    args = parser.parse_args()
    spacing = int(30 * 86_400_000 / (args.inbound_per_month / 3))
    windows = tuple(int(w) for w in args.windows.split(","))
    conversations = 10 if args.quick else 40  # moto copies tables per transaction: keep it small
    print(f"(1) consumer cost (bench/wru.py pricing): {conversations} conversations, one every {spacing / 1000:.1f} s "
          f"({args.inbound_per_month:,.0f} inbound messages a month), stream batches of up to 100 records")
    consumer_cost(conversations, spacing, windows)
    if args.busy_authors:
        print(f"(1b) the messages stream on busy days ({args.busy_authors:,} distinct authors a day so far)")
        busy_day_cost(conversations, spacing, windows, args.busy_authors)
    if args.skip_reads:
        return
    for n in ((1_000, 10_000) if args.quick else (1_000, 100_000)):
        with moto.mock_aws():
            _setup()
            print(f"(2) reads per report at {n} conversations")
            seed_aggregates(n)
            report_reads()


if __name__ == "__main__":
    main()
