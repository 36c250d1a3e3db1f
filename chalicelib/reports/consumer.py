"""The conversation event log's stream consumer (app.reports_consumer): stream records in,
counters out, exactly once per log entry and added up per item across the batch
(chalicelib.reports.aggregates), and the rows of the conversation cycles beside them
(chalicelib.reports.export), exactly once too.

A record is the log entry's new image (DynamoDB JSON). Entries are grouped per conversation and
applied in seq order; a record that is not a readable log entry (a removal, a malformed image)
is dropped with a log line, since it can never become readable and retrying it would hold up the
shard. A failure while writing raises: Lambda redelivers the batch, and entries already counted
add nothing the second time.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Mapping, Optional

from chalicelib.logs import logger
from chalicelib.reports import aggregates, export


def entry_of(record: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """A log entry out of a stream record (`dynamodb.NewImage`), or None when it is not one."""
    if record.get("eventName") not in ("INSERT", "MODIFY"):
        return None
    image = (record.get("dynamodb") or {}).get("NewImage") or {}
    try:
        conversation_id = image["conversation_id"]["S"]
        entry = {"conversation_id": conversation_id, "seq": int(image["seq"]["N"]), "at": int(image["at"]["N"]),
                 "type": image["type"]["S"], "actor": (image.get("actor") or {}).get("S", "")}
        raw = (image.get("data") or {}).get("S")
        entry["data"] = json.loads(raw) if raw else {}
    except (KeyError, TypeError, ValueError):
        return None
    if not conversation_id or entry["seq"] < 1 or not isinstance(entry["data"], dict):
        return None
    return entry


def handle_records(records: Iterable[Mapping[str, Any]]) -> Dict[str, int]:
    """Apply a batch of stream records; returns counts for the log line and tests."""
    by_conversation: Dict[str, List[Dict[str, Any]]] = {}
    dropped = total = 0
    for record in records:
        total += 1
        entry = entry_of(record)
        if entry is None:
            dropped += 1
            continue
        by_conversation.setdefault(entry["conversation_id"], []).append(entry)
    applied = aggregates.apply_batch(by_conversation)  # the counters, written once per item per batch
    for conversation_id, entries in by_conversation.items():
        export.apply_entries(conversation_id, entries)  # the cycle rows (export, drill-down)
    result = {"records": total, "applied": applied, "dropped": dropped}
    if dropped:
        logger.warning("unreadable event log records dropped", extra={"dropped": dropped})
    return result


def record_dicts(event: Any) -> List[Mapping[str, Any]]:
    """The raw records of Chalice's DynamoDBEvent (or a plain list of record dicts), read from the
    event's own dict: a record Chalice could not wrap is still ours to judge (and drop)."""
    if isinstance(event, list):
        return event
    return list((event.to_dict() or {}).get("Records") or [])
