#!/usr/bin/env python
"""(e) Reply-deadline timers (issues 9 and 11): a turn's warning is a delayed message on the SLA
timer queue (moto's SQS honours DelaySeconds); a recorded warning starts the real ASL
(infra/sla-flow.asl.json: wait for the deadline, send the breach) in moto's Step Functions
interpreter; every timer message is handed to the app's `sla_timers` handler.

Per turn kind (answered before the warning, answered after the warning but before the deadline,
breached): billed state transitions (`*StateEntered` events of the execution's history; a turn
that never started an execution has none), timer messages delivered, and the AWS requests the app
makes (by operation, with the Step Functions and SQS requests singled out; the interpreter's own
SendMessage calls run on its threads and are billed as transitions, not counted as our requests).
Then the warning and breach detection delays over concurrent breaching conversations.

Run as part of `bench/ingest_bench.py` (`--only flow`; it needs moto in-process, so with another
backend the section runs in a child `--backend inprocess` process), or on its own:

    .venv/bin/python bench/flow_bench.py            # = ingest_bench.py --backend inprocess --only flow

Method and figures: bench/README.md, section (e). Not a test: nothing here asserts timings.
"""
from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import time
from collections import Counter
from typing import Any, Dict, Iterator, List, Optional, Tuple

PAGE = "100000000000001"  # meta's demo page
KIND_SLA_SECONDS = 12  # per-turn-kind run: a catch-all policy, deadline 12 s ...
KIND_WARN_PERCENT = 25  # ... warning at 3 s: 9 s for a late reply (in-process moto opens a turn in ~1 s, and its warning may land up to ~5 s late)
DELAY_SLA_SECONDS = 4  # breach-delay run: deadline 4 s ...
DELAY_WARN_PERCENT = 25  # ... warning at 1 s, so each flow waits in its Wait as it would in AWS
PER_KIND = 3  # conversations of each kind (counts are identical; 3 shows it)
BREACHING = 20  # concurrent breaching conversations for the delay
POLL_SECONDS = 0.05  # how often the bench asks the timer queue (Lambda long-polls: ~0 wait)


def _message(mid: str, user: str, direction: str = "in", at: Optional[int] = None) -> Any:
    from chalicelib.channels.base import ContactRef, MessageEvent

    return MessageEvent(channel="messenger", account_id=PAGE, platform_message_id=mid, thread_key=user,
                        contact=ContactRef(user), direction=direction,
                        sent_at_ms=at if at is not None else int(time.time() * 1000), text="hi", raw={"mid": mid})


class Turns:
    """Conversations whose turns the bench drives; per conversation, the requests of each step."""

    def __init__(self, bench: Any, application: Any) -> None:
        self.bench = bench
        self.application = application
        self.steps: Dict[str, Dict[str, Counter]] = {}  # conversation -> step -> operation counts
        self.kind_of: Dict[str, str] = {}
        self.warned: Dict[str, float] = {}
        self.due: Dict[str, int] = {}  # conversation -> reply_due_at of its first turn (ms)
        self.recorded: Dict[str, List[str]] = {}
        self.timing: Dict[str, Dict[str, int]] = {}  # conversation -> breach: sent, handler start/end (ms)

    def counted(self, conversation_id: Optional[str], step: str, call: Any) -> Any:
        with self.bench.COUNTER.scope(this_thread_only=True) as scope:
            result = call()
        if conversation_id is not None:
            self.steps.setdefault(conversation_id, {})[step] = Counter(scope.calls)
        return result, scope

    def open(self, kind: str, n: int, tag: str) -> str:
        from chalicelib.inbox import store

        user = f"u_{tag}_{kind}_{n}"
        (_, (cid, _)), scope = self.counted(None, "customer message", lambda: store.record_message(
            _message(f"m_{tag}_{kind}_{n}", user)))
        self.steps.setdefault(cid, {})["customer message"] = Counter(scope.calls)
        self.kind_of[cid] = kind
        with self.bench.COUNTER.paused():
            self.due[cid] = int((store.get(cid) or {}).get("reply_due_at") or 0)
        self.user = getattr(self, "user", {})
        self.user[cid] = user
        return cid

    def answer(self, cid: str, tag: str) -> None:
        from chalicelib.inbox import store

        self.counted(cid, "our reply (echo)", lambda: store.record_message(
            _message(f"r_{tag}_{cid}", self.user[cid], direction="out")))

    def pump(self, seconds: float, on_warning: Any = None, until: Any = None) -> None:
        """Deliver the flow's SQS messages one record per invocation (so each is attributed to its
        conversation); the pump's own ReceiveMessage/DeleteMessageBatch are Lambda's, not counted."""
        from chalicelib import config
        from chalicelib.local.pump import pump_once

        deadline = time.time() + seconds
        while time.time() < deadline:
            if until is not None and until():
                return

            def handler(event: Dict[str, Any], context: Any) -> Any:
                from chalicelib.inbox import store

                body = json.loads(event["Records"][0]["body"])
                cid, kind = body["conversation_id"], body["kind"]
                with self.bench.COUNTER.paused():
                    before = (store.get(cid) or {}).get("version")
                started = int(time.time() * 1000)
                result, _ = self.counted(cid, f"{kind} consumer", lambda: self.application.sla_timers(event, context))
                with self.bench.COUNTER.paused():
                    after = store.get(cid) or {}
                outcome = "recorded" if after.get("version") != before else "dropped"
                if kind == "breach":
                    sent = (event["Records"][0].get("attributes") or {}).get("SentTimestamp")
                    self.timing[cid] = {"sent": int(sent) if sent else 0, "start": started,
                                        "end": int(time.time() * 1000)}
                self.recorded.setdefault(cid, []).append(f"{kind} {outcome}")
                if kind == "warning" and on_warning is not None and outcome == "recorded":
                    on_warning(cid)
                return result

            if not pump_once(handler, max_messages=1, queue=config.SLA_TIMER_QUEUE):
                time.sleep(POLL_SECONDS)


def _history(cid: str, turn: int = 1) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """The turn's execution and its events; ({"status": "none"}, []) when it never started one."""
    from chalicelib.runtime import runtime
    from chalicelib.sla import flow

    sfn = runtime.client("stepfunctions")
    arn = flow.state_machine_arn().replace(":stateMachine:", ":execution:") + ":" + flow.execution_name(cid, turn)
    try:
        return sfn.describe_execution(executionArn=arn), sfn.get_execution_history(executionArn=arn)["events"]
    except sfn.exceptions.ExecutionDoesNotExist:
        return {"status": "none"}, []


def _in_wait(cid: str, seconds: float = 2.0) -> None:
    """Until the turn's execution entered its Wait (bounded): moto can lose a StopExecution that
    arrives before (AWS does not). Uncounted; the bench's own accommodation."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        _, history = _history(cid)
        if any(e["type"] == "WaitStateEntered" for e in history):
            return
        time.sleep(0.02)


def _stop_all() -> None:
    from chalicelib.runtime import runtime

    sfn = runtime.client("stepfunctions")
    for machine in sfn.list_state_machines()["stateMachines"]:
        for execution in sfn.list_executions(stateMachineArn=machine["stateMachineArn"],
                                             statusFilter="RUNNING")["executions"]:
            sfn.stop_execution(executionArn=execution["executionArn"])


def run(bench: Any, application: Any, results: Dict[str, Any]) -> int:
    from moto.core.config import default_user_config

    from chalicelib.local import stack
    from chalicelib.runtime import runtime

    print("\n(e) Reply-deadline flow: infra/sla-flow.asl.json in moto's Step Functions interpreter, "
          "timer messages -> app.sla_timers")
    section: Dict[str, Any] = {}
    results["flow"] = section
    os.environ["TZ"] = "UTC"
    time.tzset()
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    failures = 0
    with bench.COUNTER.paused(), bench.METER.paused():
        bench.fresh_tables()
        stack.create_state_machines()
        runtime.reset()
        for channel, account_id, name in bench.get_demo_accounts("meta"):
            bench.accounts_api().register_account(channel, account_id, name)
            bench.accounts_api().find_account(channel, account_id)
        from chalicelib.api.auth import create_agent

        create_agent("admin@bench.example", "correct horse battery staple", "Admin", role="admin",
                     agent_id="a_bench_admin")  # a breach notifies admins and supervisors
    try:
        failures += _kinds(bench, application, section)
        failures += _delay(bench, application, section)
    finally:
        with bench.COUNTER.paused():
            _stop_all()
    return failures


@contextlib.contextmanager
def _policy(bench: Any, seconds: int, warn_percent: int) -> Iterator[None]:
    """A catch-all SLA policy for one part of the run (removed afterwards; uncounted)."""
    from chalicelib.runtime import runtime
    from chalicelib.sla import policies

    with bench.COUNTER.paused():
        created = policies.create_policy({"name": f"flow bench {seconds} s", "first_response_seconds": seconds,
                                          "next_response_seconds": seconds, "warn_at_percent": warn_percent},
                                         runtime.now_ms())
        policies.forget()
    try:
        yield
    finally:
        with bench.COUNTER.paused():
            policies.delete_policy(created["id"])
            policies.forget()


SFN_OPERATIONS = ("StartExecution", "StopExecution", "ListStateMachines")


def _kinds(bench: Any, application: Any, section: Dict[str, Any]) -> int:
    from chalicelib.runtime import runtime

    runtime.reset()
    with _policy(bench, KIND_SLA_SECONDS, KIND_WARN_PERCENT):
        return _kinds_under_policy(bench, application, section)


def _kinds_under_policy(bench: Any, application: Any, section: Dict[str, Any]) -> int:
    from chalicelib.inbox import store
    from chalicelib.sla import flow

    turns = Turns(bench, application)
    tag = f"k{int(time.time())}"
    # Warm container: the state machine ARN (looked up by name, cached per container) and the
    # timer queue's URL (GetQueueUrl, cached) are looked up once; uncounted warm-up.
    with bench.COUNTER.scope(this_thread_only=True) as cold:
        flow.state_machine_arn()
        warm = turns.open("warmup", 0, tag)
        turns.answer(warm, tag)
    cold_extra = {k: v for k, v in cold.calls.items() if k.startswith(("ListStateMachines", "GetQueueUrl"))}
    turns.steps.pop(warm)
    turns.kind_of[warm] = "warmup"
    opened: Dict[str, List[str]] = {"early": [], "late": [], "breached": []}

    def on_warning(cid: str) -> None:
        if turns.kind_of.get(cid) == "late":
            with bench.COUNTER.paused():
                _in_wait(cid)
            turns.warned[cid] = time.time()
            turns.answer(cid, tag)

    # One kind at a time, so that no consumer work of another kind delays a late reply.
    for kind in opened:
        opened[kind] = [turns.open(kind, n, tag) for n in range(PER_KIND)]
        ids = opened[kind]
        if kind == "early":
            for cid in ids:
                turns.answer(cid, tag)
            finished = lambda: all(turns.recorded.get(c) for c in ids)  # noqa: E731 - their stale warnings
        elif kind == "late":
            finished = lambda: len([c for c in ids if c in turns.warned]) == len(ids)  # noqa: E731
        else:
            finished = lambda: all(any(r.startswith("breach") for r in turns.recorded.get(c, []))  # noqa: E731
                                   for c in ids)
        turns.pump(KIND_SLA_SECONDS + 4, on_warning=on_warning, until=finished)
        turns.pump(1.0 if kind != "late" else KIND_SLA_SECONDS)  # anything more (a stopped flow sends nothing)
    turns.recorded.pop(warm, None)

    rows = []
    kinds: Dict[str, Any] = {}
    problems: List[str] = []
    for kind, ids in opened.items():
        transitions, statuses, per_conv, sfn_requests, sqs_sends, messages, warn_delays = [], [], [], [], [], [], []
        for cid in ids:
            described, history = _history(cid)
            transitions.append(sum(1 for e in history if e["type"].endswith("StateEntered")))
            statuses.append(described["status"])
            total = Counter()
            for counts in turns.steps.get(cid, {}).values():
                total.update(counts)
            per_conv.append(total)
            sfn_requests.append(sum(n for op, n in total.items() if op.split("[")[0] in SFN_OPERATIONS))
            sqs_sends.append(sum(n for op, n in total.items() if op.startswith("SendMessage")))
            messages.append(len(turns.recorded.get(cid, [])))
            with bench.COUNTER.paused():
                warned = [e for e in store.events(cid) if e["type"] == "sla_warning"]
            if warned:
                warn_delays.append(int(warned[0]["at"]) - int(warned[0]["data"].get("warn_at") or 0))
        state = [store.get(c) or {} for c in ids]
        expected_events = {"early": [], "late": ["sla_warning"], "breached": ["sla_warning", "sla_breached"]}[kind]
        got = [[e["type"] for e in store.events(c) if e["type"].startswith("sla_")] for c in ids]
        if any(g != expected_events for g in got):
            problems.append(f"{kind}: SLA events {got} (expected {expected_events} each)")
        if kind == "late":
            after_due = [c for c in ids if c not in turns.warned
                         or turns.warned[c] * 1000 >= turns.due[c]]
            if len(turns.warned) != len(ids) or after_due:
                problems.append(f"late: {len(turns.warned)} of {len(ids)} answered after their warning, "
                                f"{len(after_due)} not before the deadline")
        steps = {}
        for step in ("customer message", "warning consumer", "our reply (echo)", "breach consumer"):
            found = [turns.steps.get(c, {}).get(step) for c in ids]
            found = [f for f in found if f is not None]
            if found:
                steps[step] = {"n": len(found), "requests": statistics.median(sum(f.values()) for f in found),
                               "by_operation": dict(found[len(found) // 2])}
        totals = [sum(c.values()) for c in per_conv]
        kinds[kind] = {"n": len(ids), "answered_ms_before_deadline": [int(turns.due[c] - turns.warned[c] * 1000)
                                                                      for c in ids if c in turns.warned],
                       "billed_transitions": transitions, "execution_status": statuses,
                       "timer_messages_per_turn": messages, "sfn_requests_per_turn": sfn_requests,
                       "sqs_sends_per_turn": sqs_sends, "warning_delay_ms": warn_delays,
                       "requests_per_turn": totals, "steps": steps, "sla_events": got,
                       "sla_state": [x.get("sla_state") for x in state],
                       "timer_messages": [turns.recorded.get(c, []) for c in ids]}
        rows.append([kind, len(ids), _spread(transitions), ", ".join(sorted(set(statuses))), _spread(messages),
                     _spread(sfn_requests), _spread(sqs_sends), _spread(totals),
                     "; ".join(f"{s}: {_n(v['requests'])}" for s, v in steps.items())])
    section["kinds"] = kinds
    section["kind_sla_seconds"] = KIND_SLA_SECONDS
    section["kind_warn_percent"] = KIND_WARN_PERCENT
    section["cold_container_extra"] = cold_extra
    print(f"  per turn (reply target {KIND_SLA_SECONDS} s, warning at {KIND_WARN_PERCENT} %; {PER_KIND} conversations "
          "per kind, warm container):")
    bench.print_table(["turn", "n", "billed transitions", "execution", "timer messages", "Step Functions requests",
                       "our SendMessage", "our AWS requests", "by step"], rows, indent="    ")
    delays = [d for k in ("late", "breached") for d in kinds[k]["warning_delay_ms"]]
    if delays:
        print(f"    warning recorded after the warning point: {min(delays)}-{max(delays)} ms (SQS DelaySeconds "
              "rounded up to the whole second, then the bench's 50 ms poll)")
    print("    requests by operation (one typical conversation of each kind):")
    for kind, entry in kinds.items():
        for step, data in entry["steps"].items():
            print(f"    - {kind}, {step}: {bench.fmt_ops(Counter(data['by_operation']))}")
    print(f"    cold container, once: {bench.fmt_ops(Counter(cold_extra))} (state machine ARN looked up by name, "
          "timer queue URL; set SLA_STATE_MACHINE_ARN and SLA_TIMERS_QUEUE_URL to skip)")
    if problems:
        print("    PROBLEM: " + "; ".join(problems))
    section["problems"] = problems
    return 1 if problems else 0


def _delay(bench: Any, application: Any, section: Dict[str, Any]) -> int:
    from chalicelib.runtime import runtime

    runtime.reset()
    with _policy(bench, DELAY_SLA_SECONDS, DELAY_WARN_PERCENT):
        return _delay_under_policy(bench, application, section)


def _delay_under_policy(bench: Any, application: Any, section: Dict[str, Any]) -> int:
    from chalicelib.inbox import store

    turns = Turns(bench, application)
    tag = f"d{int(time.time())}"
    ids = [turns.open("breach", n, tag) for n in range(BREACHING)]

    def done() -> bool:
        return all(any(r.startswith("breach") for r in turns.recorded.get(c, [])) for c in ids)

    turns.pump(DELAY_SLA_SECONDS + 6, until=done)
    delays, flow_delays, queued, handling, unqueued, missing = [], [], [], [], [], 0
    warn_delays = []
    for cid in ids:
        warned = [e for e in store.events(cid) if e["type"] == "sla_warning"]
        if warned:
            warn_delays.append(int(warned[0]["at"]) - int(warned[0]["data"].get("warn_at") or 0))
        state = store.get(cid) or {}
        if state.get("breached_at") is None:
            missing += 1
            continue
        due = int(state["reply_due_at"])
        delays.append(int(state["breached_at"]) - due)
        _, history = _history(cid)
        entered = [e for e in history if e["type"] == "TaskStateEntered"
                   and (e.get("stateEnteredEventDetails") or {}).get("name") == "SendBreach"]
        if entered:
            flow_delays.append(int(entered[0]["timestamp"].timestamp() * 1000) - due)
        timing = turns.timing.get(cid)
        if timing and timing["sent"]:
            queued.append(timing["start"] - timing["sent"])
            handling.append(int(state["breached_at"]) - timing["start"])
            if entered:
                unqueued.append(flow_delays[-1] + handling[-1])
    entry = {"n": BREACHING, "sla_seconds": DELAY_SLA_SECONDS, "warn_percent": DELAY_WARN_PERCENT,
             "warning_delay_ms": sorted(warn_delays), "recorded": len(delays), "missing": missing,
             "delay_ms": sorted(delays), "flow_delay_ms": sorted(flow_delays), "poll_seconds": POLL_SECONDS}
    if delays:
        entry.update({"p50_ms": _pct(delays, 0.5), "p95_ms": _pct(delays, 0.95), "max_ms": max(delays),
                      "min_ms": min(delays)})
    for name, values in (("flow", flow_delays), ("queue_wait", queued), ("handling", handling)):
        if values:
            entry.update({f"{name}_p50_ms": _pct(values, 0.5), f"{name}_p95_ms": _pct(values, 0.95),
                          f"{name}_ms": sorted(values)})
    if unqueued:
        # What one Lambda per message (the SQS trigger scales out) would see: the flow's part plus
        # the handler's own time before it records the breach, without the wait behind the other
        # conversations' records in the bench's single serial consumer.
        entry.update({"unqueued_p50_ms": _pct(unqueued, 0.5), "unqueued_p95_ms": _pct(unqueued, 0.95)})
    section["breach_delay"] = entry
    print(f"\n  breach detection delay, {BREACHING} concurrent breaching conversations (reply target "
          f"{DELAY_SLA_SECONDS} s, warning at {DELAY_WARN_PERCENT} %): reply_due_at -> breached_at recorded")
    if warn_delays:
        print(f"    their warnings (delayed SQS messages): warn_at -> sla_warning recorded p50 "
              f"{_pct(warn_delays, 0.5)} ms, p95 {_pct(warn_delays, 0.95)} ms (DelaySeconds rounded up to the "
              "whole second, then the serial consumer)")
    if delays:
        print(f"    p50 {entry['p50_ms']} ms, p95 {entry['p95_ms']} ms (min {entry['min_ms']}, max {entry['max_ms']}); "
              f"the bench polls the queue every {POLL_SECONDS * 1000:.0f} ms and handles one record at a time")
        print(f"    parts (p50 / p95 ms): flow, deadline -> SendBreach entered {entry.get('flow_p50_ms')} / "
              f"{entry.get('flow_p95_ms')}; SQS SentTimestamp -> handler start (queued behind the other records, "
              f"incl. {BREACHING} warnings) {entry.get('queue_wait_p50_ms')} / {entry.get('queue_wait_p95_ms')}; "
              f"handler start -> breached_at {entry.get('handling_p50_ms')} / {entry.get('handling_p95_ms')}")
        print(f"    without the wait in the serial local consumer (flow + handler): p50 {entry.get('unqueued_p50_ms')} ms, "
              f"p95 {entry.get('unqueued_p95_ms')} ms")
    print("    upper bound of AWS: the code rounds each Wait timestamp UP to the whole second (0-999 ms) and "
          "moto's Wait counts whole seconds")
    if missing:
        print(f"    PROBLEM: {missing} of {BREACHING} breaches not recorded")
    return 1 if missing else 0


def _pct(values: List[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _spread(values: List[int]) -> str:
    if not values:
        return "-"
    low, high = min(values), max(values)
    return str(low) if low == high else f"{statistics.median(values):g} ({low}-{high})"


if __name__ == "__main__":
    import runpy

    here = os.path.dirname(os.path.abspath(__file__))
    sys.argv = [os.path.join(here, "ingest_bench.py"), "--backend", "inprocess", "--only", "flow", *sys.argv[1:]]
    runpy.run_path(sys.argv[0], run_name="__main__")
