"""Reply-deadline timers of a conversation turn, priced by what they do.

A turn's warning is one delayed SQS message (`{"kind": "warning", ...}` to the SLA timer queue,
due at the turn's warning point), queued shortly before it is due: most turns are answered long
before their warning (the built-in policy warns 12 minutes in), and a message queued at the turn's
start would then arrive stale and be dropped, three SQS requests and a Lambda invocation for
nothing. So the per-minute sweeper (chalicelib.sla.timers.sweep) ARMS the warnings that fall in
its window, (T + ARM_LEAD_MS, T + ARM_LEAD_MS + SWEEP_PERIOD_MS] for its scheduled minute T (one
bounded Query per team), and a turn's start sends the message itself only when that sweep may
not see the turn (`sweeper_arms`): its warning is due too soon (the sweep of its window is
about to run or ran), its wait is one the sweep's key range does not reach (the deadline more
than SWEEP_REACH_MS after the warning: long and business-hours policies; SQS delays at most 15
minutes, so the consumer re-sends such a warning with the rest of the wait: a hop), or its
conversation's team is one the sweep does not query (`swept_team`).

Why no turn falls between the two (the horizon): let T_w be the scheduled minute whose window
holds the warning. A turn whose start sends nothing was written at t0 <= T_w - GSI_MARGIN_MS;
the sweep of T_w never runs before T_w (EventBridge fires at or after its time; the window is
derived from the scheduled time, not from when the run starts), so by then the turn has been in
the index for at least GSI_MARGIN_MS (30 s; a GSI's propagation lag is far below a second) and
its warning lies in that sweep's window, its deadline within the Query's key range; still open and
unwarned, it is armed with DelaySeconds from the run's own clock (exact to the second, as at a
turn's start), and a run up to ARM_LEAD_MS - 1 s late still queues it before its point. A turn
answered before that run is not armed at all. A turn that does send at its start has
t0 > T_w - GSI_MARGIN_MS, i.e. its warning is at most ARM_LEAD_MS + SWEEP_PERIOD_MS +
GSI_MARGIN_MS (3.5 minutes) away: the DIRECT horizon. (A run that starts after such a turn was
written arms it too: the duplicate is recorded once; see chalicelib.sla.timers.handle_body.)
tests/test_sla_arming.py checks this as a property over start times, leads and lateness.

Only a turn whose warning is recorded (at risk) needs its breach timer: when the deadline falls
within SQS's 15 minutes of the warning point (the built-in policy: 3 minutes), that is a second
delayed message (`{"kind": "breach", ...}`), no execution at all; a longer wait (hours,
business-hours policies) starts the Step Functions flow (infra/sla-flow.asl.json: wait for the
deadline, send the breach message), one Standard execution named after conversation and turn, so
a second start is a no-op. A turn that ends is stopped only if its warning was recorded and its
wait needed the flow (the conversation's `sla_state`, `warn_at` and `reply_due_at` say so); a
breach message of an answered turn arrives stale and is dropped. Every step is best effort: the
consumer drops stale timers by turn number, and the per-minute sweeper records what a lost timer
(or a lost sweep) missed, up to about a minute late."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Sequence, Tuple

from chalicelib import config
from chalicelib.logs import current_correlation_id, logger
from chalicelib.runtime import runtime
from chalicelib.tracing import subsegment

STATE_MACHINE = "sla"
#: SQS's longest DelaySeconds (15 minutes); a longer wait hops (chalicelib.sla.timers).
MAX_DELAY_SECONDS = 900
#: The sweeper runs every minute; its run for the scheduled minute T arms the warnings due in
#: (T + ARM_LEAD_MS, T + ARM_LEAD_MS + SWEEP_PERIOD_MS]: a run up to a minute late still queues them
#: at least a minute before their point.
SWEEP_PERIOD_MS = 60_000
ARM_LEAD_MS = 120_000
#: How far past the window the sweeper's Query reads deadlines: a turn whose deadline is further
#: from its warning is not found by it (its start queues the warning, which hops).
SWEEP_REACH_MS = MAX_DELAY_SECONDS * 1000
#: A turn written at least this long before the scheduled time of the sweep that arms it is left
#: to that sweep (far above the deadline index's propagation lag).
GSI_MARGIN_MS = 30_000


def state_machine_name() -> str:
    return f"{config.resource_prefix()}-{STATE_MACHINE}"


def execution_name(conversation_id: str, turn: int) -> str:
    """Unique per turn; Step Functions names allow no '#', ':' or '/'."""
    return f"{conversation_id}-t{int(turn)}"


def iso(ms: int) -> str:
    """A Wait state's timestamp: UTC, rounded UP to the whole second (Wait compares seconds),
    so a timer never fires before its deadline."""
    seconds = -(-int(ms) // 1000)
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def delay_seconds(at_ms: int, now_ms: int) -> int:
    """SQS DelaySeconds for a message due at `at_ms`: rounded UP to the whole second (never
    early), at most MAX_DELAY_SECONDS (the consumer hops the rest), never negative."""
    return max(0, min(MAX_DELAY_SECONDS, -(-(int(at_ms) - int(now_ms)) // 1000)))


def state_machine_arn() -> Optional[str]:
    """From SLA_STATE_MACHINE_ARN when ops set it, else looked up by name once per container."""
    import os

    found = os.environ.get("SLA_STATE_MACHINE_ARN") or runtime.cached("sla_state_machine_arn")
    if found:
        return found
    client = runtime.client("stepfunctions")
    for page in client.get_paginator("list_state_machines").paginate():
        for machine in page.get("stateMachines", []):
            if machine["name"] == state_machine_name():
                runtime.remember("sla_state_machine_arn", machine["stateMachineArn"])
                return machine["stateMachineArn"]
    return None


def needs_flow(warn_at: Optional[int], due_at: int) -> bool:
    """Whether a warned turn's breach needs the Step Functions flow: only when the deadline is
    further from the warning point than SQS can delay a message (SLA_SQS_BREACH_MAX_SECONDS, at
    most and by default 900). A warning is recorded at or after its point, so a wait that does not
    need the flow is always within one delayed message of the moment it is recorded."""
    limit = min(MAX_DELAY_SECONDS, max(0, config.int_setting("SLA_SQS_BREACH_MAX_SECONDS", MAX_DELAY_SECONDS)))
    return int(due_at) - int(warn_at if warn_at is not None else due_at) > limit * 1000


def send_warning(conversation_id: str, turn: int, warn_at: int, correlation_id: Optional[str] = None,
                 kind: str = "warning") -> int:
    """Queue a turn's warning timer (or, `kind` "breach", its breach timer), delayed until
    `warn_at` (or MAX_DELAY_SECONDS, whichever is sooner); returns the delay. Raises when SQS
    refuses (callers decide whether that is fatal)."""
    delay = delay_seconds(warn_at, runtime.now_ms())
    with subsegment(f"sla_{kind}_timer", conversation_id=conversation_id):
        runtime.client("sqs").send_message(QueueUrl=runtime.queue_url(config.SLA_TIMER_QUEUE),
                                           MessageBody=_timer_body(kind, conversation_id, turn, correlation_id),
                                           DelaySeconds=delay)
    return delay


def _timer_body(kind: str, conversation_id: str, turn: int, correlation_id: Optional[str]) -> str:
    return json.dumps({"kind": kind, "conversation_id": conversation_id, "turn": int(turn),
                       "correlation_id": (correlation_id if correlation_id is not None
                                          else current_correlation_id()) or ""})


#: SendMessageBatch takes at most 10 entries.
BATCH_ENTRIES = 10


def send_warnings(due: Sequence[Tuple[str, int, int]]) -> Tuple[int, int]:
    """Queue the warning timers of (conversation, turn, warn_at) in batches of BATCH_ENTRIES, each
    delayed until its warning point from the moment its batch is sent; (queued, failed). A refused
    entry or batch is logged and left to the sweeper's safety net (it records the warning)."""
    queued = failed = 0
    for start in range(0, len(due), BATCH_ENTRIES):
        chunk = due[start:start + BATCH_ENTRIES]
        now = runtime.now_ms()
        entries = [{"Id": str(n), "MessageBody": _timer_body("warning", cid, turn, None),
                    "DelaySeconds": delay_seconds(warn_at, now)} for n, (cid, turn, warn_at) in enumerate(chunk)]
        try:
            with subsegment("sla_arm_timers", entries=len(entries)):
                answer = runtime.client("sqs").send_message_batch(QueueUrl=runtime.queue_url(config.SLA_TIMER_QUEUE),
                                                                  Entries=entries)
        except Exception as error:  # noqa: BLE001 - the sweeper's safety net records them
            logger.warning("sla timer: warnings not queued", extra={"entries": len(entries),
                                                                     "error": f"{type(error).__name__}: {error}"[:300]})
            failed += len(entries)
            continue
        refused = answer.get("Failed") or []
        for entry in refused:
            cid, turn, _ = chunk[int(entry.get("Id", 0))]
            logger.warning("sla timer: warning not queued", extra={"conversation_id": cid, "turn": turn,
                                                                    "error": str(entry.get("Code", ""))[:100]})
        failed += len(refused)
        queued += len(entries) - len(refused)
    return queued, failed


def arming_minute(warn_at: int) -> int:
    """The scheduled minute (ms) of the sweep whose window holds a warning due at `warn_at`."""
    return (int(warn_at) - ARM_LEAD_MS - 1) // SWEEP_PERIOD_MS * SWEEP_PERIOD_MS


def arming_window(scheduled_ms: int) -> Tuple[int, int]:
    """(after, until]: the warnings the sweep of this scheduled time arms (floored to the minute,
    so windows tile time however late a run starts, and a rerun arms the same window)."""
    minute = int(scheduled_ms) // SWEEP_PERIOD_MS * SWEEP_PERIOD_MS
    return minute + ARM_LEAD_MS, minute + ARM_LEAD_MS + SWEEP_PERIOD_MS


def within_reach(warn_at: Optional[int], due_at: int) -> bool:
    """Whether the sweeper's arming Query can find this wait at all (its key range reaches
    SWEEP_REACH_MS past the window's warnings)."""
    return warn_at is not None and int(due_at) - int(warn_at) <= SWEEP_REACH_MS


def sweeper_arms(warn_at: Optional[int], due_at: int, now_ms: int) -> bool:
    """Whether the sweep of the warning's window will find this turn (its start then queues
    nothing): the wait is within the sweep's reach and the turn is written at least
    GSI_MARGIN_MS before that sweep's scheduled time (the argument: this module's docstring)."""
    if warn_at is None or not within_reach(warn_at, due_at):
        return False
    return int(now_ms) <= arming_minute(int(warn_at)) - GSI_MARGIN_MS


def swept_team(state: Mapping[str, Any]) -> bool:
    """Whether the sweeper queries this conversation's team: it sweeps the default team and the
    teams of the current accounts (chalicelib.sla.timers.teams). A conversation keeps the team its
    account had when it was created; after the account moved to another team (or went away) its
    turns are armed at their start. The account is the one the processor just routed (cached per
    container); any doubt answers False."""
    from chalicelib.inbox.rules import DEFAULT_TEAM

    team = state.get("team") or DEFAULT_TEAM
    if team == DEFAULT_TEAM:
        return True
    try:
        from chalicelib.accounts import find_account

        account = find_account(str(state.get("channel") or ""), str(state.get("account_id") or ""))
    except Exception:  # noqa: BLE001 - in doubt, the turn's start queues its warning
        return False
    return account is not None and (account.team or DEFAULT_TEAM) == team


def arm_turn(conversation_id: str, turn: int, warn_at: int, due_at: Optional[int] = None,
             state: Optional[Mapping[str, Any]] = None) -> bool:
    """A turn started: its warning timer is queued now unless the sweeper will arm it
    (`sweeper_arms` and `swept_team`; needs `due_at` and the conversation's `state`); False
    (logged) when it could not be queued (the sweeper records the warning instead)."""
    if due_at is not None and state is not None and sweeper_arms(warn_at, due_at, runtime.now_ms()) \
            and swept_team(state):
        return True
    try:
        send_warning(conversation_id, turn, warn_at)
        return True
    except Exception as error:  # noqa: BLE001 - the sweeper is the safety net
        logger.warning("sla timer: warning not queued", extra={"conversation_id": conversation_id, "turn": turn,
                                                                "error": f"{type(error).__name__}: {error}"[:300]})
        return False


def start_deadline(conversation_id: str, turn: int, due_at: int, correlation_id: Optional[str] = None,
                   warn_at: Optional[int] = None) -> bool:
    """A turn's warning was recorded: queue its breach message when the deadline is within SQS's
    delay of the warning point, else start its flow (wait for the deadline, send the breach).
    Safe to repeat (a repeated breach message is dropped as stale once recorded; same execution
    name); False (logged) when neither could be done (the sweeper records the breach instead)."""
    if not needs_flow(warn_at, due_at):
        try:
            send_warning(conversation_id, turn, due_at, correlation_id, kind="breach")
            return True
        except Exception as error:  # noqa: BLE001 - the sweeper is the safety net
            logger.warning("sla timer: breach not queued", extra={"conversation_id": conversation_id, "turn": turn,
                                                                   "error": f"{type(error).__name__}: {error}"[:300]})
            return False
    try:
        arn = state_machine_arn()
        if arn is None:
            logger.warning("sla flow: no state machine", extra={"name": state_machine_name()})
            return False
        payload = {"conversation_id": conversation_id, "turn": int(turn), "due_at": iso(due_at),
                   "correlation_id": (correlation_id if correlation_id is not None else current_correlation_id()) or ""}
        with subsegment("sla_start", conversation_id=conversation_id):
            runtime.client("stepfunctions").start_execution(
                stateMachineArn=arn, name=execution_name(conversation_id, turn), input=json.dumps(payload))
        return True
    except Exception as error:  # noqa: BLE001 - the sweeper is the safety net
        if type(error).__name__ == "ExecutionAlreadyExists" or "ExecutionAlreadyExists" in str(error):
            return True
        logger.warning("sla flow: start failed", extra={"conversation_id": conversation_id, "turn": turn,
                                                         "error": f"{type(error).__name__}: {error}"[:300]})
        return False


def stop_deadline(conversation_id: str, turn: int) -> None:
    """Cancel a warned turn's flow (best effort: a breach that fires anyway is dropped as stale)."""
    try:
        arn = state_machine_arn()
        if arn is None:
            return
        execution = arn.replace(":stateMachine:", ":execution:") + ":" + execution_name(conversation_id, turn)
        with subsegment("sla_stop", conversation_id=conversation_id):
            runtime.client("stepfunctions").stop_execution(executionArn=execution, cause="answered")
    except Exception as error:  # noqa: BLE001 - stale timers are dropped by the consumer
        logger.info("sla flow: stop skipped", extra={"conversation_id": conversation_id, "turn": turn,
                                                      "error": type(error).__name__})


def _waiting_turn(state: Mapping[str, Any]) -> Optional[int]:
    if state.get("status") == "open" and state.get("reply_due_at") is not None:
        return int(state.get("turn") or 0)
    return None


def on_logged_change(conversation_id: str, before: Mapping[str, Any], after: Mapping[str, Any], entry: Any) -> None:
    """A conversation changed (runtime listener): a turn that ended after its warning was
    recorded has a running flow to stop when its wait needed one (one that ended before has none;
    a short wait's breach message arrives stale); a turn that started gets its warning timer, now
    or from the sweeper (`arm_turn`; both safe to repeat)."""
    was, now_waiting = _waiting_turn(before), _waiting_turn(after)
    if was is not None and was != now_waiting and before.get("sla_state") == "warning" \
            and needs_flow(before.get("warn_at"), int(before["reply_due_at"])):
        stop_deadline(conversation_id, was)
    if now_waiting is not None and now_waiting != was:
        warn_at = after.get("warn_at")
        arm_turn(conversation_id, now_waiting, int(warn_at if warn_at is not None else after["reply_due_at"]),
                 int(after["reply_due_at"]) if warn_at is not None else None, after)
