"""Starting and stopping the reply-deadline flow (infra/sla-flow.asl.json) for a conversation
turn. One Standard execution per turn, named after conversation and turn, so a second start is a
no-op; stopping is best effort because the SLA consumer drops stale timers anyway, and the
scheduled sweeper catches any timer that was never started or got lost."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping, Optional

from chalicelib import config
from chalicelib.logs import logger
from chalicelib.runtime import runtime
from chalicelib.tracing import subsegment

STATE_MACHINE = "sla"


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


def start_turn(conversation_id: str, turn: int, warn_at: int, due_at: int) -> bool:
    """Arm the timers of a turn; False (logged) when it could not be started."""
    import json

    try:
        arn = state_machine_arn()
        if arn is None:
            logger.warning("sla flow: no state machine", extra={"name": state_machine_name()})
            return False
        from chalicelib.logs import current_correlation_id

        payload = {"conversation_id": conversation_id, "turn": int(turn), "warn_at": iso(warn_at),
                   "due_at": iso(due_at), "correlation_id": current_correlation_id() or ""}
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


def stop_turn(conversation_id: str, turn: int) -> None:
    """Cancel a turn's timers (best effort: a timer that fires anyway is dropped as stale)."""
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
    """A conversation changed (runtime listener): stop the timers of a turn that ended, arm those
    of a turn that started (both safe to repeat)."""
    was, now_waiting = _waiting_turn(before), _waiting_turn(after)
    if was is not None and was != now_waiting:
        stop_turn(conversation_id, was)
    if now_waiting is not None and now_waiting != was:
        start_turn(conversation_id, now_waiting, int(after.get("warn_at") or after["reply_due_at"]),
                   int(after["reply_due_at"]))
