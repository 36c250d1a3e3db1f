"""The SLA flow's consumer and its safety net.

`handle_records`: the flow's SQS messages (`{"kind": "warning"|"breach", "conversation_id",
"turn"}`) are recorded on the conversation through the store, which drops stale ones (an
answered or older turn). `sweep`: every minute, one Query per team on the deadline index finds
waits past their warning point or deadline that were never recorded (a lost or throttled
timer) and records them the same way."""
from __future__ import annotations

import json
import time
from typing import Any, Dict, Iterable, List, Optional

from chalicelib.inbox import store
from chalicelib.inbox.rules import DEFAULT_TEAM, NO_DEADLINE
from chalicelib.logs import bind_correlation_id, describe_error, logger
from chalicelib.models import ChannelAccount, Conversation
from chalicelib.runtime import runtime

TEAMS_CACHE_SECONDS = 60.0


def handle_records(records: Iterable[Dict[str, Any]], partial: bool = False) -> Dict[str, Any]:
    """Record each timer message once; unreadable ones are logged and dropped (they can never
    become readable). A record that fails never stops its neighbours: the whole batch is handled,
    then, with `partial` (the event source reports batch item failures, see
    chalicelib.ingest.processor), only the failed records are named for redelivery; otherwise the
    handler raises so SQS redelivers the batch (the neighbours come back as stale no-ops)."""
    from chalicelib.ingest.processor import batch_response, reportable

    outcome: Dict[str, int] = {}
    failed: List[Dict[str, Any]] = []
    errors: List[BaseException] = []
    for record in records:
        try:
            result = handle_body(record.get("body", ""))
        except Exception as error:  # noqa: BLE001 - finish the batch first
            logger.warning("sla timer failed, will retry", extra={"error": describe_error(error)})
            failed.append(record)
            errors.append(error)
            continue
        outcome[result] = outcome.get(result, 0) + 1
    if partial:
        ids = reportable(failed)
        if ids is not None:
            return batch_response(ids)
    if errors:
        raise errors[0]
    return outcome


def handle_body(body: str) -> str:
    try:
        message = json.loads(body)
        kind, conversation_id, turn = message["kind"], message["conversation_id"], int(message["turn"])
        if kind not in ("warning", "breach") or not isinstance(conversation_id, str):
            raise ValueError("bad kind or conversation")
        bind_correlation_id(str(message.get("correlation_id") or "") or None)  # the turn's delivery
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        logger.error("sla timer message unreadable", extra={"error": str(error)[:200]})
        return "unreadable"
    before = store.get(conversation_id)
    _wait_if_slightly_early(before, turn, kind)
    after = store.record_sla_timer(conversation_id, turn, kind)
    recorded = after is not None and before is not None and after.get("version") != before.get("version")
    if recorded:
        _escalate(kind, after)
    return f"{kind} recorded" if recorded else f"{kind} stale"


def _escalate(kind: str, state: Dict[str, Any]) -> None:
    from chalicelib.sla.escalation import escalate

    if kind == "breach":
        late = runtime.now_ms() - int(state.get("reply_due_at") or 0)
        logger.warning("sla breached", extra={"conversation_id": state["conversation_id"],
                                              "turn": state.get("turn"), "late_ms": late})
    escalate(kind, state)


EARLY_WAIT_MS = 2000


def _wait_if_slightly_early(state: Optional[Dict[str, Any]], turn: int, kind: str) -> None:
    """A Wait that counts whole seconds can end just before its timestamp (moto's does: it
    truncates the remaining time). Sleep out such a gap (bounded) instead of dropping the timer;
    anything earlier than that is a stale or wrong timer and the rules drop it."""
    if state is None or int(state.get("turn") or 0) != turn:
        return
    target = state.get("warn_at") if kind == "warning" else state.get("reply_due_at")
    if target is None:
        return
    gap = int(target) - runtime.now_ms()
    if 0 < gap <= EARLY_WAIT_MS:
        time.sleep(gap / 1000.0)


def teams() -> List[str]:
    """The teams that can have queues: the default and every account's (cached a minute)."""
    cached = runtime.cached("sla_teams")
    if cached and time.monotonic() - cached[0] < TEAMS_CACHE_SECONDS:
        return cached[1]
    found = {DEFAULT_TEAM} | {a.team for a in ChannelAccount.scan(attributes_to_get=["account_key", "team"]) if a.team}
    names = sorted(found)
    runtime.remember("sla_teams", (time.monotonic(), names))
    return names


def sweep(now: Optional[int] = None, limit_per_team: int = 200) -> Dict[str, int]:
    """Record warnings and breaches that no timer recorded. Bounded per run; what is left is
    picked up by the next run."""
    now = now if now is not None else runtime.now_ms()
    outcome = {"warnings": 0, "breaches": 0}
    for team in teams():
        queue = f"{team}#open"
        overdue = Conversation.by_team_due.query(queue, Conversation.due_sort < now, limit=limit_per_team,
                                                 filter_condition=Conversation.sla_state.does_not_exist()
                                                 | (Conversation.sla_state != "breached"))
        for row in overdue:
            if _record(row, "breach"):
                outcome["breaches"] += 1
        warned = Conversation.by_team_due.query(
            queue, Conversation.due_sort.between(now, NO_DEADLINE - 1), limit=limit_per_team,
            filter_condition=(Conversation.warn_at <= now) & Conversation.sla_state.does_not_exist())
        for row in warned:
            if _record(row, "warning"):
                outcome["warnings"] += 1
    if outcome["warnings"] or outcome["breaches"]:
        logger.warning("sla sweeper recorded missed timers", extra=outcome)
    return outcome


def _record(row: Conversation, kind: str) -> bool:
    if row.turn is None:
        return False
    before_version = None
    state = store.get(row.conversation_id)
    if state is not None:
        before_version = state.get("version")
    after = store.record_sla_timer(row.conversation_id, int(row.turn), kind)
    recorded = after is not None and after.get("version") != before_version
    if recorded:
        _escalate(kind, after)
    return recorded
