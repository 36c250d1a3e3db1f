"""Reply-deadline timers of a conversation turn, priced by what they do.

A turn that starts costs one delayed SQS message (`{"kind": "warning", ...}` to the SLA timer
queue, due at the turn's warning point; SQS delays at most 15 minutes, so the consumer re-sends
it with the rest of the wait: a hop). Most turns are answered before their warning: the message
then arrives stale and is dropped, and the turn never touched Step Functions. Only a turn whose
warning is recorded (at risk) needs its breach timer: when the deadline falls within SQS's
15 minutes of the warning point (the built-in policy: 3 minutes), that is a second delayed
message (`{"kind": "breach", ...}`), no execution at all; a longer wait (hours, business-hours
policies) starts the Step Functions flow (infra/sla-flow.asl.json: wait for the deadline, send the
breach message), one Standard execution named after conversation and turn, so a second start is
a no-op. A turn that ends is stopped only if its warning was recorded and its wait needed the
flow (the conversation's `sla_state`, `warn_at` and `reply_due_at` say so); a breach message of an
answered turn arrives stale and is dropped. Every step is best effort: the consumer drops stale
timers by turn number, and the per-minute sweeper records what a lost timer missed."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Mapping, Optional

from chalicelib import config
from chalicelib.logs import current_correlation_id, logger
from chalicelib.runtime import runtime
from chalicelib.tracing import subsegment

STATE_MACHINE = "sla"
#: SQS's longest DelaySeconds (15 minutes); a longer wait hops (chalicelib.sla.timers).
MAX_DELAY_SECONDS = 900


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
    body = {"kind": kind, "conversation_id": conversation_id, "turn": int(turn),
            "correlation_id": (correlation_id if correlation_id is not None else current_correlation_id()) or ""}
    with subsegment(f"sla_{kind}_timer", conversation_id=conversation_id):
        runtime.client("sqs").send_message(QueueUrl=runtime.queue_url(config.SLA_TIMER_QUEUE),
                                           MessageBody=json.dumps(body), DelaySeconds=delay)
    return delay


def arm_turn(conversation_id: str, turn: int, warn_at: int) -> bool:
    """A turn started: its warning timer is queued; False (logged) when it could not be (the
    sweeper records the warning instead)."""
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
    recorded has a running flow to stop when its wait needed one (one that ended before has none:
    its warning timer arrives stale; a short wait's breach message arrives stale too); a turn that started gets its warning timer (both safe to repeat)."""
    was, now_waiting = _waiting_turn(before), _waiting_turn(after)
    if was is not None and was != now_waiting and before.get("sla_state") == "warning" \
            and needs_flow(before.get("warn_at"), int(before["reply_due_at"])):
        stop_deadline(conversation_id, was)
    if now_waiting is not None and now_waiting != was:
        arm_turn(conversation_id, now_waiting, int(after.get("warn_at") or after["reply_due_at"]))
