#!/usr/bin/env python
"""(f) SLA warning timers armed by the sweeper (issue 21): timer messages and SQS send requests per
turn under the BUILT-IN policy (15-minute reply target, warning at 80 %), measured by running the
real processor (store.record_message), the app's `sla_sweeper` handler (every scheduled minute,
with EventBridge's event) and the app's `sla_timers` consumer on a fast-forwarded runtime clock
(runtime.use_clock). Turns of three kinds, seeded: "early" answered at a uniformly random time
before their warning, "late" answered between warning and deadline, "breached" never answered.

SQS itself is the one thing simulated: a timer message the app sends to the SLA timer queue
(SendMessage or SendMessageBatch, seen on the way out through botocore's public events and
answered there, so no real delay is waited out) is handed to `sla_timers` at send time +
DelaySeconds on the virtual clock, one record per invocation (ApproximateReceiveCount 1).
Sweeps run at their scheduled minute + a seeded lateness (0-LATENESS_MAX_MS).

Per kind: timer messages delivered (warning / breach) and SQS send requests (a SendMessage counts
1 for its turn; a SendMessageBatch 1/entries for each turn it carries), the share of early turns
that got any message, and how late the warnings were recorded (virtual clock: DelaySeconds rounds
up to the whole second). Per sweep run: DynamoDB requests and RRU (bench/wru.py) at this load.

Run as part of `bench/ingest_bench.py` (`--only arming`, results under "arming" in --json).
Not a test: nothing here asserts timings.
"""
from __future__ import annotations

import datetime as dt
import heapq
import itertools
import json
import os
import random
import statistics
import types
import uuid
from collections import Counter
from typing import Any, Dict, List, Optional, Tuple

PAGE = "100000000000001"  # meta's demo page
MINUTE = 60_000
START = 1_900_000_000_000 // MINUTE * MINUTE  # virtual time, a whole minute
SPAN_MINUTES = 30  # turns start uniformly over this stretch
PER_KIND_QUICK, PER_KIND_FULL = 40, 200
WRITE_DELAY_MS = 1_000  # platform time -> the processor writes the turn
LATENESS_MAX_MS = 10_000  # a sweep runs 0-10 s after its scheduled minute
KINDS = ("early", "late", "breached")


class FakeTimerQueue:
    """The SLA timer queue on the virtual clock: sends are answered on the client's event hooks
    (nothing reaches moto) and become deliveries at send time + DelaySeconds."""

    def __init__(self, queue_url: str, now_ms: Any) -> None:
        self.queue_url, self.now_ms = queue_url, now_ms
        self.pending: List[Tuple[int, int, Dict[str, Any]]] = []  # (visible at, seq, message)
        self.seq = itertools.count()
        self.requests: Counter = Counter()  # operation -> calls
        self.share: Dict[str, float] = Counter()  # conversation -> attributed send requests
        self._params: Optional[Dict[str, Any]] = None

    def install(self, client: Any) -> None:
        for operation in ("SendMessage", "SendMessageBatch"):
            client.meta.events.register(f"provide-client-params.sqs.{operation}", self._seen)
            client.meta.events.register_first(f"before-call.sqs.{operation}", self._answer)

    def uninstall(self, client: Any) -> None:
        for operation in ("SendMessage", "SendMessageBatch"):
            client.meta.events.unregister(f"provide-client-params.sqs.{operation}", self._seen)
            client.meta.events.unregister(f"before-call.sqs.{operation}", self._answer)

    def _seen(self, params: Dict[str, Any], **_: Any) -> None:
        self._params = dict(params)

    def _answer(self, model: Any, **_: Any) -> Any:
        params, self._params = self._params, None
        if params is None or params.get("QueueUrl") != self.queue_url:
            return None  # another queue: the real call
        entries = params.get("Entries") or [params]
        self.requests[model.name] += 1
        now = self.now_ms()
        for entry in entries:
            message = json.loads(entry["MessageBody"])
            self.share[message.get("conversation_id", "")] += 1 / len(entries)
            heapq.heappush(self.pending, (now + int(entry.get("DelaySeconds", 0)) * 1000, next(self.seq), message))
        answer: Dict[str, Any] = {"MessageId": str(uuid.uuid4()), "MD5OfMessageBody": ""}
        if model.name == "SendMessageBatch":
            answer = {"Successful": [{"Id": e["Id"], "MessageId": str(uuid.uuid4()), "MD5OfMessageBody": ""}
                                     for e in entries], "Failed": []}
        return types.SimpleNamespace(status_code=200, headers={}), answer


def _message(mid: str, user: str, at: int, direction: str = "in") -> Any:
    from chalicelib.channels.base import ContactRef, MessageEvent

    return MessageEvent(channel="messenger", account_id=PAGE, platform_message_id=mid, thread_key=user,
                        contact=ContactRef(user), direction=direction, sent_at_ms=at, text="hi", raw={"mid": mid})


def run(bench: Any, application: Any, results: Dict[str, Any]) -> int:
    from chalicelib import config
    from chalicelib.runtime import runtime

    per_kind = PER_KIND_QUICK if bench.QUICK else PER_KIND_FULL
    print(f"\n(f) SLA warning timers armed by the sweeper: the built-in policy, {per_kind} turns per kind over "
          f"{SPAN_MINUTES} virtual minutes; processor, sla_sweeper and sla_timers on a fast-forwarded clock")
    for name in ("DEFAULT_REPLY_SLA_SECONDS", "DEFAULT_REPLY_SLA_MINUTES", "SLA_SQS_BREACH_MAX_SECONDS"):
        os.environ.pop(name, None)
    with bench.COUNTER.paused(), bench.METER.paused():
        bench.fresh_tables()
        runtime.reset()
        for channel, account_id, name in bench.get_demo_accounts("meta"):
            bench.accounts_api().register_account(channel, account_id, name)
    clock = [START]
    runtime.use_clock(lambda: clock[0] / 1000)
    client = runtime.client("sqs")
    queue = FakeTimerQueue(runtime.queue_url(config.SLA_TIMER_QUEUE), runtime.now_ms)
    queue.install(client)
    try:
        section = _simulate(bench, application, clock, queue, per_kind, random.Random(bench.ARGS.seed))
    finally:
        queue.uninstall(client)
        runtime.use_clock(None)
    results["arming"] = section
    _report(bench, section)
    try:
        section["real_time"] = _real_time(bench, application, random.Random(bench.ARGS.seed))
    finally:
        runtime.use_clock(None)
    return 1 if section["problems"] or section["real_time"]["missing"] else 0


REAL_TIME_TURNS = 20


def _real_time(bench: Any, application: Any, rng: random.Random) -> Dict[str, Any]:
    """The sweeper's SendMessageBatch through the emulator's real SQS (per-entry DelaySeconds),
    delivered by polling, in real time: turns whose warnings lie in the first 3 s of the window of
    minute M, a run of M that starts 119 s late (so the delays are 1-4 s, not minutes), then the
    queue pumped into `sla_timers` until every warning is recorded. The clock runs in real time
    from an offset, so lateness is measured, not computed."""
    import time

    from chalicelib import config
    from chalicelib.inbox import store
    from chalicelib.local.pump import pump_once
    from chalicelib.local.runners import scheduled_event
    from chalicelib.runtime import runtime
    from chalicelib.sla import flow

    with bench.COUNTER.paused(), bench.METER.paused():
        bench.fresh_tables()
        runtime.reset()
        for channel, account_id, name in bench.get_demo_accounts("meta"):
            bench.accounts_api().register_account(channel, account_id, name)
    minute = START + 200 * MINUTE
    offset = [0.0]
    runtime.use_clock(lambda: time.time() + offset[0])
    offset[0] = (minute - 60_000) / 1000 - time.time()  # turns written a minute before the run's scheduled time
    cids = []
    for n in range(REAL_TIME_TURNS):
        warn_at = minute + flow.ARM_LEAD_MS + 1 + rng.randrange(3_000)
        _, (cid, _) = store.record_message(_message(f"rt_{n}", f"rt_{n}", warn_at - 720_000))
        cids.append(cid)
    offset[0] = (minute + flow.ARM_LEAD_MS - 1_000) / 1000 - time.time()  # the run, 119 s late
    when = dt.datetime.fromtimestamp(minute / 1000, tz=dt.timezone.utc)
    armed = application.sla_sweeper(scheduled_event("sla_sweeper", when), None).get("armed", 0)
    deadline = time.time() + 20
    recorded: Dict[str, int] = {}
    while len(recorded) < len(cids) and time.time() < deadline:
        if not pump_once(application.sla_timers, queue=config.SLA_TIMER_QUEUE, function_name="sla_timers"):
            time.sleep(0.05)
        for cid in cids:
            if cid not in recorded:
                found = [e for e in store.events(cid) if e["type"] == "sla_warning"]
                if found:
                    recorded[cid] = int(found[0]["at"]) - int(found[0]["data"]["warn_at"])
    late = sorted(recorded.values())
    entry = {"turns": len(cids), "armed": armed, "recorded": len(late), "missing": len(cids) - len(late),
             "warning_late_ms": late, "p50_ms": _pct(late, 0.5), "max_ms": max(late, default=None)}
    print(f"  real time, emulator's SQS: {armed} of {len(cids)} warnings armed in one run (SendMessageBatch, "
          f"delays 1-4 s), recorded p50 {entry['p50_ms']} ms, max {entry['max_ms']} ms after their point "
          f"(whole-second rounding + the bench's 50 ms poll){'; MISSING ' + str(entry['missing']) if entry['missing'] else ''}")
    return entry


def _simulate(bench: Any, application: Any, clock: List[int], queue: FakeTimerQueue, per_kind: int,
              rng: random.Random) -> Dict[str, Any]:
    from chalicelib.inbox import store
    from chalicelib.local.runners import scheduled_event

    warn_lead, target = 720_000, 900_000  # the built-in policy
    turns: Dict[str, Dict[str, Any]] = {}  # user -> facts
    events: List[Tuple[int, int, str, Any]] = []
    seq = itertools.count()
    for kind in KINDS:
        for n in range(per_kind):
            user = f"arm_{kind}_{n}"
            since = START + rng.randrange(SPAN_MINUTES * MINUTE)
            answer = {"early": since + rng.randrange(warn_lead),
                      "late": since + warn_lead + rng.randrange(1, target - warn_lead),
                      "breached": None}[kind]
            turns[user] = {"kind": kind, "since": since, "answer": answer}
            heapq.heappush(events, (since + WRITE_DELAY_MS, next(seq), "turn", user))
            if answer is not None:
                heapq.heappush(events, (answer, next(seq), "answer", user))
    end = START + (SPAN_MINUTES + 20) * MINUTE
    for minute in range(START, end, MINUTE):
        heapq.heappush(events, (minute + rng.randrange(LATENESS_MAX_MS), next(seq), "sweep", minute))
    delivered: Dict[str, Counter] = {}
    sweeps: List[Dict[str, Any]] = []
    while events or queue.pending:
        if queue.pending and (not events or queue.pending[0][0] <= events[0][0]):
            at, _, message = heapq.heappop(queue.pending)
            clock[0] = max(clock[0], at)
            record = {"messageId": str(uuid.uuid4()), "receiptHandle": "", "body": json.dumps(message),
                      "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(at)}}
            delivered.setdefault(message["conversation_id"], Counter())[message["kind"]] += 1
            application.sla_timers({"Records": [record]}, None)
            continue
        at, _, what, payload = heapq.heappop(events)
        clock[0] = max(clock[0], at)
        if what == "turn":
            facts = turns[payload]
            _, (cid, _) = store.record_message(_message(f"m_{payload}", payload, facts["since"]))
            facts["cid"] = cid
        elif what == "answer":
            store.record_message(_message(f"r_{payload}", payload, at, direction="out"))
        else:
            when = dt.datetime.fromtimestamp(payload / 1000, tz=dt.timezone.utc)
            with bench.METER.scope() as units, bench.COUNTER.scope(this_thread_only=True) as calls:
                outcome = application.sla_sweeper(scheduled_event("sla_sweeper", when), None)
            open_turns = sum(1 for f in turns.values() if "cid" in f and f["since"] + WRITE_DELAY_MS <= at
                             and (f["answer"] is None or f["answer"] > at))
            sweeps.append({"minute": payload, "late_ms": at - payload, "outcome": outcome, "rru": units.rru,
                           "dynamodb": {k: v for k, v in calls.calls.items() if k.startswith(("Query", "Scan", "Get"))},
                           "open_turns": open_turns})
    return _summarise(store, turns, delivered, queue, sweeps)


def _summarise(store: Any, turns: Dict[str, Dict[str, Any]], delivered: Dict[str, Counter], queue: FakeTimerQueue,
               sweeps: List[Dict[str, Any]]) -> Dict[str, Any]:
    kinds: Dict[str, Any] = {}
    problems: List[str] = []
    warning_late: List[int] = []
    breach_late: List[int] = []
    expected = {"early": [], "late": ["sla_warning"], "breached": ["sla_warning", "sla_breached"]}
    for kind in KINDS:
        mine = [f for f in turns.values() if f["kind"] == kind]
        warnings = [delivered.get(f["cid"], Counter())["warning"] for f in mine]
        breaches = [delivered.get(f["cid"], Counter())["breach"] for f in mine]
        sends = [queue.share.get(f["cid"], 0.0) for f in mine]
        wrong = 0
        for f in mine:
            log = store.events(f["cid"])
            if [e["type"] for e in log if e["type"].startswith("sla_")] != expected[kind]:
                wrong += 1
            for entry in log:
                if entry["type"] == "sla_warning":
                    warning_late.append(int(entry["at"]) - int(entry["data"]["warn_at"]))
                elif entry["type"] == "sla_breached":
                    breach_late.append(int(entry["data"]["late_ms"]))
        if wrong:
            problems.append(f"{kind}: {wrong} of {len(mine)} turns with other SLA events than {expected[kind]}")
        kinds[kind] = {"n": len(mine), "warning_messages_per_turn": statistics.mean(warnings),
                       "breach_messages_per_turn": statistics.mean(breaches),
                       "timer_messages_per_turn": statistics.mean(w + b for w, b in zip(warnings, breaches)),
                       "sqs_send_requests_per_turn": statistics.mean(sends),
                       "share_with_a_message": sum(1 for w, b in zip(warnings, breaches) if w + b) / len(mine),
                       "max_warning_messages": max(warnings)}
    rru = [s["rru"] for s in sweeps]
    reads: Counter = Counter()
    for sweep in sweeps:
        reads.update(sweep["dynamodb"])
    loaded = [s for s in sweeps if s["open_turns"]]
    return {"policy": "built-in: 15 min reply target, warning at 80 % (720 s), deadline 180 s later",
            "per_kind": len(turns) // len(KINDS), "span_minutes": SPAN_MINUTES, "write_delay_ms": WRITE_DELAY_MS,
            "sweep_lateness_max_ms": LATENESS_MAX_MS, "kinds": kinds,
            "sqs_send_requests": dict(queue.requests),
            "warning_late_ms": {"p50": _pct(warning_late, 0.5), "max": max(warning_late, default=None)},
            "breach_late_ms": {"p50": _pct(breach_late, 0.5), "max": max(breach_late, default=None)},
            "sweeps": {"runs": len(sweeps), "armed": sum(s["outcome"].get("armed", 0) for s in sweeps),
                       "safety_net_warnings": sum(s["outcome"].get("warnings", 0) for s in sweeps),
                       "safety_net_breaches": sum(s["outcome"].get("breaches", 0) for s in sweeps),
                       "rru_per_run_mean": statistics.mean(rru) if rru else 0.0, "rru_per_run_max": max(rru, default=0.0),
                       "open_turns_per_run_mean": statistics.mean(s["open_turns"] for s in loaded) if loaded else 0,
                       "dynamodb_reads_per_run": {k: v / len(sweeps) for k, v in reads.items()}},
            "problems": problems}


def _pct(values: List[int], q: float) -> Optional[int]:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _report(bench: Any, section: Dict[str, Any]) -> None:
    rows = []
    for kind, entry in section["kinds"].items():
        rows.append([kind, entry["n"], f"{entry['timer_messages_per_turn']:.3f}",
                     f"{entry['warning_messages_per_turn']:.3f}", f"{entry['breach_messages_per_turn']:.3f}",
                     f"{entry['sqs_send_requests_per_turn']:.3f}", f"{entry['share_with_a_message'] * 100:.1f} %"])
    print(f"  per turn ({section['policy']}; sweeps up to {section['sweep_lateness_max_ms'] / 1000:g} s late):")
    bench.print_table(["turn", "n", "timer messages", "warnings", "breaches", "SQS send requests",
                       "turns with a message"], rows, indent="    ")
    print(f"    SQS send requests in all: {section['sqs_send_requests']}")
    print(f"    warnings recorded after their point: p50 {section['warning_late_ms']['p50']} ms, max "
          f"{section['warning_late_ms']['max']} ms; breaches: p50 {section['breach_late_ms']['p50']} ms, max "
          f"{section['breach_late_ms']['max']} ms (virtual clock: DelaySeconds rounded up to the whole second; "
          "real SQS adds its delivery latency)")
    sweeps = section["sweeps"]
    print(f"    sweeper: {sweeps['runs']} runs, {sweeps['armed']} warnings armed, safety net recorded "
          f"{sweeps['safety_net_warnings']} warnings and {sweeps['safety_net_breaches']} breaches; per run "
          f"{sweeps['rru_per_run_mean']:.2f} RRU on average (max {sweeps['rru_per_run_max']:.1f}) with "
          f"{sweeps['open_turns_per_run_mean']:.0f} turns open on average; reads per run: "
          + ", ".join(f"{k} {v:.2f}" for k, v in sorted(sweeps["dynamodb_reads_per_run"].items())))
    if section["problems"]:
        print("    PROBLEM: " + "; ".join(section["problems"]))
