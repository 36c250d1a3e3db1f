"""Recompute a period's report aggregates from the event log and the messages (`make
reports-rebuild FROM= TO=`; `python -m chalicelib.reports.rebuild --from 2026-11-01 --to 2026-12-01`).

Why: the counters are maintained incrementally by the stream consumers; a rebuild is the
independent check (and the repair after a bug or a lost stream): it folds every conversation's
log from its first entry with the consumers' own code (chalicelib.reports.cycles and .messages),
keeps what falls in the period's UTC days, and replaces the period's counter items with the
result. It must give the numbers the incremental path gave (tests/test_reports_rebuild.py).

It reads whole tables (Scans of the event log, the messages and the reports table): an operator's
command, never a report's path. Run it for periods the stream has finished with (older than the
stream's 24 hours), or with the consumers' event source mappings disabled: an event counted by the
consumer while the rebuild rewrites its bucket could otherwise count twice or not at all. Trackers
and exactly-once markers are left as they are (they describe the log, which did not change).
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Dict, Iterable, List, Optional, Tuple

from chalicelib.reports import aggregates, cycles, distinct, messages


def whole_days(from_ms: int, to_ms: int) -> Tuple[int, int]:
    """The UTC days covering [from, to): day items can only be rebuilt whole."""
    return from_ms - from_ms % aggregates.DAY_MS, -(-to_ms // aggregates.DAY_MS) * aggregates.DAY_MS


def _logs() -> Dict[str, List[Dict[str, Any]]]:
    from chalicelib.models import ConversationEvent

    found: Dict[str, List[Dict[str, Any]]] = {}
    for e in ConversationEvent.scan():
        found.setdefault(e.conversation_id, []).append(
            {"seq": int(e.seq), "at": int(e.at), "type": e.type, "actor": e.actor, "data": e.data or {}})
    for entries in found.values():
        entries.sort(key=lambda entry: entry["seq"])
    return found


def _messages(from_ms: int, to_ms: int) -> List[Dict[str, Any]]:
    from chalicelib.models import Message

    found = []
    for m in Message.scan(filter_condition=Message.sent_at.between(from_ms, to_ms - 1)):
        if m.direction in ("in", "out"):
            found.append({"conversation_id": m.conversation_id, "message_id": m.message_id, "direction": m.direction,
                          "sent_at": int(m.sent_at), "received_at": int(m.received_at), "author_id": m.author_id,
                          "channel": m.channel, "account_id": m.account_id,
                          "private_reply": bool(m.private_reply)})
    return found


def expected_items(from_ms: int, to_ms: int) -> Dict[Tuple[str, str], Dict[str, Any]]:
    """{(scope, bucket key): counters} of [from, to) (whole UTC days) recomputed from the log."""
    start, end = whole_days(from_ms, to_ms)
    logs = _logs()
    found: List[cycles.Contribution] = []
    for entries in logs.values():
        found += [c for c in cycles.fold_all(entries)[1] if start <= c.at < end]
    found += messages.contributions_of(_messages(start, end), logs)
    return _canonical(aggregates.writes_of(found))


def _canonical(items: Dict[Tuple[str, str], Dict[str, Any]]) -> Dict[Tuple[str, str], Dict[str, Any]]:
    """Register sets as their highest rank per register (distinct.canonical): what they answer.
    The consumer writes a day's register only when it rises, so its set may lack values a
    from-scratch union holds, with the same estimate."""
    for counters in items.values():
        if distinct.ATTRIBUTE in counters:
            counters[distinct.ATTRIBUTE] = distinct.canonical(counters[distinct.ATTRIBUTE])
    return items


def stored_items(from_ms: int, to_ms: int) -> Dict[Tuple[str, str], Dict[str, Any]]:
    """The counter items of [from, to) (whole UTC days) as stored, all scopes (a Scan)."""
    start, end = whole_days(from_ms, to_ms)
    client = aggregates.client()
    kwargs: Dict[str, Any] = {"TableName": aggregates.table()}
    found: Dict[Tuple[str, str], Dict[str, Any]] = {}
    while True:
        page = client.scan(**kwargs)
        for item in page.get("Items", []):
            sk = item["sk"]["S"]
            if sk[:2] not in ("q#", "d#") or not start <= aggregates.at_of(sk) < end:
                continue
            counters = aggregates.add_up({}, [{name: int(v["N"]) for name, v in item.items() if "N" in v}])
            if distinct.ATTRIBUTE in item:
                counters[distinct.ATTRIBUTE] = distinct.parse(item[distinct.ATTRIBUTE])
            found[(item["pk"]["S"], sk)] = counters
        if not page.get("LastEvaluatedKey"):
            return _canonical(found)
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def rebuild(from_ms: int, to_ms: int) -> Dict[str, int]:
    """Replace the counter items of [from, to) (whole UTC days) with the log's numbers."""
    fresh = expected_items(from_ms, to_ms)
    stale = [key for key in stored_items(from_ms, to_ms) if key not in fresh]
    client = aggregates.client()
    for scope, key in stale:
        client.delete_item(TableName=aggregates.table(), Key={"pk": {"S": scope}, "sk": {"S": key}})
    for (scope, key), counters in fresh.items():
        item: Dict[str, Any] = {"pk": {"S": scope}, "sk": {"S": key}}
        for name, value in counters.items():
            if isinstance(value, (set, frozenset)):
                if value:
                    item[name] = {"NS": sorted(str(v) for v in value)}
            else:
                item[name] = {"N": str(value)}
        client.put_item(TableName=aggregates.table(), Item=item)
    return {"written": len(fresh), "deleted": len(stale)}


def main(argv: Optional[Iterable[str]] = None) -> int:
    from chalicelib.reports import summary

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="start", required=True, help="ISO date or date-time (in --tz)")
    parser.add_argument("--to", dest="end", required=True, help="ISO date or date-time, exclusive")
    parser.add_argument("--tz", default="UTC", help="IANA zone the dates are read in")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        period = summary.parse_period(args.start, args.end, args.tz)
    except summary.BadQuery as error:
        parser.error(str(error))
    started = time.perf_counter()
    result = rebuild(period.from_ms, period.to_ms)
    start, end = whole_days(period.from_ms, period.to_ms)
    print(f"rebuilt {aggregates.utc_iso(start)} .. {aggregates.utc_iso(end)}: {result['written']} items written, "
          f"{result['deleted']} stale items deleted, {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    from chalicelib.ingest.dlq import use_local_stack

    use_local_stack()
    sys.exit(main())
