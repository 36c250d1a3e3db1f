"""The messages table's stream consumer (app.reports_messages): volume in and out and unique
authors, exactly once per message.

Why a second stream: a customer's follow-up while a reply is already due, and our message while
nothing is due, change no conversation state and are not logged (one write on the inbound path,
chalicelib.inbox.rules.follow_up). Every message is one new item in the messages table, though, so
its stream sees them all, and the inbound write path pays nothing for this (no extra item, no
extra byte).

Per message (a stream INSERT; edits and removals are MODIFYs and count nothing):
- `inbound` (+ `inbound_<thread kind>`) or `outbound` (+ `outbound_private` for a private reply),
  in the 15-minute bucket of the platform time (`sent_at`): activity, not cohort. Notes count
  nothing.
- the customer's author id in the distinct-count registers (chalicelib.reports.distinct).
- Dimensions as they were when the message arrived: the conversation's log folded up to the
  message's `received_at` (chalicelib.reports.cycles), so a rebuild from the log and the messages
  table finds the same labels, and a later relabel never moves a counted message.
- Exactly once: each message's marker item (`m#<message id>`, put only if absent) goes in one
  transaction with the counters it adds; a batch's messages share transactions, their counters
  added up per item (one update per 15-minute or day item per transaction, not per message). A
  redelivered record finds its marker (consistent batch reads) or, racing, fails the condition:
  its transaction is cancelled whole and the rest are counted again without it.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional

from chalicelib.reports import aggregates, cycles, distinct

MARKER_SK = "counted"


def message_of(record: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """The facts reports need from a stream record of a new message, or None when it is not one."""
    if record.get("eventName") != "INSERT":
        return None
    image = (record.get("dynamodb") or {}).get("NewImage") or {}
    try:
        found = {"conversation_id": image["conversation_id"]["S"], "message_id": image["message_id"]["S"],
                 "direction": image["direction"]["S"], "sent_at": int(image["sent_at"]["N"]),
                 "received_at": int(image["received_at"]["N"]),
                 "author_id": (image.get("author_id") or {}).get("S"),
                 "channel": (image.get("channel") or {}).get("S"), "account_id": (image.get("account_id") or {}).get("S"),
                 "private_reply": bool((image.get("private_reply") or {}).get("BOOL"))}
    except (KeyError, TypeError, ValueError):
        return None
    if found["direction"] not in ("in", "out") or not found["conversation_id"] or not found["message_id"]:
        return None
    return found


def labels_at(log: List[Mapping[str, Any]], message: Mapping[str, Any]) -> cycles.Tracker:
    """The conversation's tracker (channel, account, team, kind, tags, priority) when the message
    arrived: the log entries logged by its `received_at`, plus the conversation's first entry and
    the entry the message itself caused (both are written a moment after the message item). The
    message's own channel and account fill in what the log does not hold yet."""
    at, message_id = int(message["received_at"]), message.get("message_id")
    tracker, _ = cycles.fold_all([entry for entry in log if int(entry["at"]) <= at or int(entry["seq"]) == 1
                                  or (entry.get("data") or {}).get("message_id") == message_id])
    if not tracker.get("channel") and message.get("channel"):
        tracker.update(channel=message["channel"], account=message.get("account_id"))
    return tracker


def contribution_of(message: Mapping[str, Any], tracker: Mapping[str, Any]) -> cycles.Contribution:
    """What one message adds, under the labels its conversation had when it arrived."""
    if message["direction"] == "in":
        kind = tracker.get("kind") or "dm"
        registers = (distinct.register_value(message["author_id"]),) if message.get("author_id") else ()
        return cycles.Contribution(int(message["sent_at"]), cycles.scopes_of(tracker),
                                   {"inbound": 1, f"inbound_{kind}": 1}, registers)
    counters = {"outbound": 1}
    if message.get("private_reply"):
        counters["outbound_private"] = 1
    return cycles.Contribution(int(message["sent_at"]), cycles.scopes_of(tracker, message.get("author_id")), counters)


def _log(conversation_id: str) -> List[Dict[str, Any]]:
    from chalicelib.inbox import store

    found: List[Dict[str, Any]] = []
    while True:
        page = store.events(conversation_id, limit=500, after_seq=int(found[-1]["seq"]) if found else 0)
        found.extend(page)
        if len(page) < 500:
            return found


def handle_records(records: Iterable[Mapping[str, Any]]) -> Dict[str, int]:
    """Count a batch of message stream records; returns counts for the log line and tests."""
    total = dropped = 0
    found: Dict[str, Dict[str, Any]] = {}
    for record in records:
        total += 1
        message = message_of(record)
        if message is None:
            dropped += 1
            continue
        found.setdefault(message["message_id"], message)  # a record twice in one batch counts once
    return {"records": total, "applied": _count_once(list(found.values())), "ignored": dropped}


def _marker(message_id: str) -> Dict[str, Any]:
    return {"pk": {"S": f"m#{message_id}"}, "sk": {"S": MARKER_SK}}


def _count_once(found: List[Dict[str, Any]]) -> int:
    """Count the messages not counted yet: their markers and their counters, added up per item
    across the batch, in shared transactions (aggregates.commit_units). Returns how many counted."""
    from chalicelib.reports import ledger

    pending = {message["message_id"]: message for message in found}
    logs: Dict[str, List[Dict[str, Any]]] = {}
    applied = 0
    for attempt in range(ledger.ATTEMPTS):
        counted = ledger.get_many(aggregates.table(), [_marker(mid) for mid in sorted(pending)])
        pending = {mid: m for mid, m in pending.items() if (f"m#{mid}", MARKER_SK) not in counted}
        if not pending:
            return applied  # (a cancelled transaction would still cost its writes: read first)
        units = []
        for mid, message in pending.items():
            cid = message["conversation_id"]
            if cid not in logs:
                logs[cid] = _log(cid)
            units.append(aggregates.Unit(mid, {"TableName": aggregates.table(), "Item": _marker(mid),
                                               "ConditionExpression": "attribute_not_exists(pk)"},
                                         [contribution_of(message, labels_at(logs[cid], message))]))
        failed = {unit.source for unit in aggregates.commit_units(units)}
        applied += len(pending) - len(failed)
        pending = {mid: m for mid, m in pending.items() if mid in failed}
        ledger.back_off(attempt, bool(pending))
    if pending:
        raise aggregates.Busy(f"message counters kept conflicting ({len(pending)} messages left)")
    return applied


def contributions_of(messages: Iterable[Mapping[str, Any]], logs: Mapping[str, List[Mapping[str, Any]]]
                     ) -> List[cycles.Contribution]:
    """A rebuild's view: every message's contribution from the log (no markers, no I/O)."""
    return [contribution_of(m, labels_at(list(logs.get(m["conversation_id"], [])), m)) for m in messages]
