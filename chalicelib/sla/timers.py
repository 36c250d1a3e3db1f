"""The SLA timers' consumer, the per-minute sweeper that arms them, and its safety net.

`handle_records`: the timer queue's messages (`{"kind": "warning"|"breach", "conversation_id",
"turn"}`) are recorded on the conversation through the store, which drops stale ones (an
answered or older turn). A warning is queued shortly before it is due, by the sweeper or by the
turn's start (chalicelib.sla.flow: which one, and why no turn falls between them), delayed by SQS
(at most 15 minutes): one that is still early (a long wait's) is sent on with the rest of the
wait (a hop); one that is recorded queues the turn's breach message (deadline within 15 minutes
of the warning) or starts its Step Functions flow (longer waits), which sends the breach at the
deadline. A warning can come twice (SQS is at-least-once; a turn's start and a sweep, or a rerun
of a sweep, may both queue it): it is recorded once, and a first delivery of a warning already
recorded queues no second breach timer (only a redelivery does: the consumer that recorded it
may have died before queueing it).
`sweep`, every minute: first it ARMS the warnings due in its window, (T + 2 min, T + 3 min] for
its scheduled minute T (one Query per team on the deadline index, key range bounded by the window
plus SQS's 15 minutes; SendMessageBatch), then one Query per team finds waits past their warning
point or deadline that were never recorded (a lost or throttled timer, a lost sweep) and records
them the same way (a warning it records starts the flow too)."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Optional

from chalicelib.inbox import store
from chalicelib.inbox.rules import DEFAULT_TEAM
from chalicelib.logs import bind_correlation_id, describe_error, logger
from chalicelib.models import ChannelAccount, Conversation
from chalicelib.runtime import runtime

TEAMS_CACHE_SECONDS = 60.0
#: Bounds of a timer message's keys (ids are "c_" + 24 hex; the API refuses ids over 100 too).
MAX_CONVERSATION_ID = 100
MAX_TURN = 10**9
#: At most this many warnings armed per team and run (100 SendMessageBatch requests); more are
#: logged, and recorded by the safety net up to a minute late.
ARM_LIMIT_PER_TEAM = 1000


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
            result = handle_body(record.get("body", ""), redelivered=_receive_count(record) != 1)
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


def handle_body(body: str, redelivered: bool = True) -> str:
    """One timer message: "<kind> recorded", "<kind> stale", "warning hopped" or "unreadable".
    `redelivered`: SQS may have handed this message out before (unknown counts as yes)."""
    try:
        message = json.loads(body)
        kind, conversation_id, turn = message["kind"], message["conversation_id"], int(message["turn"])
        if kind not in ("warning", "breach") or not isinstance(conversation_id, str) \
                or not 0 < len(conversation_id) <= MAX_CONVERSATION_ID or not 0 < turn <= MAX_TURN:
            raise ValueError("bad kind, conversation or turn")  # a key DynamoDB would refuse, forever
        correlation_id = str(message.get("correlation_id") or "")
        bind_correlation_id(correlation_id or None)  # the turn's delivery
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        logger.error("sla timer message unreadable", extra={"error": str(error)[:200]})
        return "unreadable"
    before = store.get(conversation_id)
    if not _waiting(before, turn):
        return f"{kind} stale"  # answered, closed, an older turn or gone: no write, no hop
    if kind == "warning" and before.get("sla_state") is None and _hop(before, turn, correlation_id):
        return "warning hopped"
    _wait_if_slightly_early(before, turn, kind)
    after = store.record_sla_timer(conversation_id, turn, kind)
    recorded = after is not None and after.get("version") != before.get("version")
    if kind == "warning" and _warned(after, turn) and (recorded or redelivered):
        # also for a redelivered warning of a warned turn: a start is idempotent, and a consumer
        # that died between recording and starting gets its breach timer on the redelivery. A first
        # delivery of a warning recorded by another message (a turn's start and a sweep both armed
        # it, or a sweep ran twice) or by the sweeper's safety net queues none: one breach message.
        _start_flow(after, correlation_id)
    if recorded:
        _escalate(kind, after)
    return f"{kind} recorded" if recorded else f"{kind} stale"


def _receive_count(record: Dict[str, Any]) -> Optional[int]:
    """SQS's ApproximateReceiveCount of a Lambda record (None when absent or unreadable)."""
    try:
        return int((record.get("attributes") or {})["ApproximateReceiveCount"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _waiting(state: Optional[Dict[str, Any]], turn: int) -> bool:
    """The conversation still waits for a reply in this turn (else any timer of it is stale)."""
    return state is not None and state.get("status") == "open" and state.get("reply_due_at") is not None \
        and int(state.get("turn") or 0) == turn


def _warned(state: Optional[Dict[str, Any]], turn: int) -> bool:
    return _waiting(state, turn) and (state or {}).get("sla_state") == "warning"


def _hop(state: Dict[str, Any], turn: int, correlation_id: str) -> bool:
    """A warning further from its time than a Wait's rounding (the turn's wait is longer than
    SQS can delay) is sent on with the rest of the wait instead of being recorded. Raises when
    SQS refuses, so this message comes back and hops again."""
    from chalicelib.sla import flow

    warn_at = int(state.get("warn_at") or state["reply_due_at"])
    if warn_at - runtime.now_ms() <= EARLY_WAIT_MS:
        return False
    flow.send_warning(state["conversation_id"], turn, warn_at, correlation_id)
    return True


def _start_flow(state: Dict[str, Any], correlation_id: Optional[str] = None) -> None:
    from chalicelib.sla import flow

    flow.start_deadline(state["conversation_id"], int(state["turn"]), int(state["reply_due_at"]), correlation_id,
                        warn_at=state.get("warn_at"))


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


def scheduled_ms(event: Any) -> Optional[int]:
    """The scheduled time of an EventBridge scheduled event (`time`, whole seconds, UTC) in ms;
    None when it has none (a manual invocation)."""
    found = getattr(event, "time", None) if not isinstance(event, dict) else event.get("time")
    if not isinstance(found, str):
        return None
    try:
        return int(datetime.strptime(found, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp() * 1000)
    except ValueError:
        return None


def sweep(now: Optional[int] = None, limit_per_team: int = 200, scheduled: Optional[int] = None,
          arm_limit_per_team: int = ARM_LIMIT_PER_TEAM) -> Dict[str, int]:
    """Arm the warnings of this run's window (`scheduled`: the schedule's time, else now; see
    `arm`), then record warnings and breaches that no timer recorded. Bounded per run; what is left
    is picked up by the next run."""
    now = now if now is not None else runtime.now_ms()
    outcome = {"armed": 0, "warnings": 0, "breaches": 0}
    names = teams()
    for team in names:
        outcome["armed"] += arm(team, scheduled if scheduled is not None else now, arm_limit_per_team)
    for team in names:
        queue = f"{team}#open"
        overdue = Conversation.by_team_due.query(queue, Conversation.deadline < now, limit=limit_per_team,
                                                 filter_condition=Conversation.sla_state.does_not_exist()
                                                 | (Conversation.sla_state != "breached"))
        for row in overdue:
            if _record(row, "breach"):
                outcome["breaches"] += 1
        warned = Conversation.by_team_due.query(
            queue, Conversation.deadline >= now, limit=limit_per_team,
            filter_condition=(Conversation.warn_at <= now) & Conversation.sla_state.does_not_exist())
        for row in warned:
            if _record(row, "warning"):
                outcome["warnings"] += 1
    if outcome["warnings"] or outcome["breaches"]:
        logger.warning("sla sweeper recorded missed timers", extra=outcome)
    return outcome


def arm(team: str, scheduled: int, limit: int = ARM_LIMIT_PER_TEAM) -> int:
    """Queue the warning timers of `team`'s open turns whose warning falls in the window of the
    scheduled minute (chalicelib.sla.flow.arming_window) and is not recorded; the number queued.
    One Query on the deadline index: deadlines in (window start, window end + SWEEP_REACH_MS]
    (a warning precedes its deadline; a wait longer than that is armed at its start), the window
    on `warn_at` as a filter. A rerun arms the same window again (the duplicate is recorded once).
    Errors are logged, never raised: the safety net below records what was not armed."""
    from chalicelib.sla import flow

    after, until = flow.arming_window(scheduled)
    try:
        rows = Conversation.by_team_due.query(
            f"{team}#open", Conversation.deadline.between(after + 1, until + flow.SWEEP_REACH_MS), limit=limit,
            filter_condition=Conversation.warn_at.between(after + 1, until) & Conversation.sla_state.does_not_exist())
        due = [(row.conversation_id, int(row.turn), int(row.warn_at)) for row in rows
               if row.turn is not None and flow.within_reach(row.warn_at, int(row.deadline))]
    except Exception as error:  # noqa: BLE001 - the safety net records what is not armed
        logger.warning("sla sweeper: arming failed", extra={"team": team, "error": describe_error(error)[:300]})
        return 0
    if len(due) >= limit:
        logger.warning("sla sweeper: arming limit reached", extra={"team": team, "limit": limit})
    queued, _ = flow.send_warnings(due)
    return queued


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
        if kind == "warning":
            _start_flow(after)  # the turn is at risk now: its breach timer (message or flow)
        _escalate(kind, after)
    return recorded
