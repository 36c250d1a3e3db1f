"""Reports' DynamoDB side: add contributions exactly once, read a period back in bounded reads.

Items (models.ReportAggregate, table `reports`):
- `pk` = scope ("all", "ch#<channel>", "team#<team>", "agent#<id>"), `sk` = "q#<13-digit ms>"
  (15-minute UTC bucket) or "d#<13-digit ms>" (UTC day): top-level number attributes, created and
  grown by `ADD`, so any set of them merges by adding;
- `pk` = "conv#<id>", `sk` = "tracker": the conversation's folded state and the last log `seq`
  folded into the counters.

Exactly once: the counters' `ADD`s and the tracker's new `seq` are one transaction, conditioned
on the tracker still holding the `seq` read. A redelivered entry (seq <= the tracker's) adds
nothing; a gap (an entry whose predecessors were not seen, e.g. after a shard split) is filled by
reading the log itself, so every entry counts once and in order.
"""
from __future__ import annotations

import datetime as _dt
import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from chalicelib import config
from chalicelib.reports import cycles, distinct, ledger

QUARTER_MS = 15 * 60_000
DAY_MS = 86_400_000
#: DynamoDB's limit is 100 items per transaction; the tracker takes one.
MAX_TRANSACTION_ITEMS = 99
TRACKER_SK = "tracker"


class Busy(RuntimeError):
    """The tracker kept moving under us: the batch is retried by the stream."""


def table() -> str:
    return config.table_name("reports")


def quarter_key(at_ms: int) -> str:
    return f"q#{at_ms - at_ms % QUARTER_MS:013d}"


def day_key(at_ms: int) -> str:
    return f"d#{at_ms - at_ms % DAY_MS:013d}"


def client() -> Any:
    from chalicelib.runtime import runtime

    return runtime.client("dynamodb")


# --- writing ---------------------------------------------------------------------------------------


def writes_of(contributions: Iterable[cycles.Contribution]) -> Dict[Tuple[str, str], Dict[str, Any]]:
    """{(scope, bucket key): counters} with contributions to the same item added together: each
    counts in its 15-minute bucket and in its UTC day. Distinct-count registers are a set under
    `distinct.ATTRIBUTE` (added by union)."""
    merged: Dict[Tuple[str, str], Dict[str, Any]] = {}
    for contribution in contributions:
        for scope in contribution.scopes:
            for key in (quarter_key(contribution.at), day_key(contribution.at)):
                counters = merged.setdefault((scope, key), {})
                for name, amount in contribution.counters.items():
                    counters[name] = counters.get(name, 0) + int(amount)
                if contribution.registers:
                    counters.setdefault(distinct.ATTRIBUTE, set()).update(contribution.registers)
    return merged


def update_of(scope: str, key: str, counters: Mapping[str, Any]) -> Dict[str, Any]:
    """The `Update` of one counter item: ADD every counter (and the register set)."""
    names = {f"#a{i}": name for i, name in enumerate(sorted(counters))}
    values: Dict[str, Any] = {}
    for i, name in enumerate(names.values()):
        value = counters[name]
        values[f":v{i}"] = ({"NS": sorted(str(v) for v in value)} if isinstance(value, (set, frozenset))
                            else {"N": str(value)})
    return {"TableName": table(), "Key": {"pk": {"S": scope}, "sk": {"S": key}},
            "UpdateExpression": "ADD " + ", ".join(f"#a{i} :v{i}" for i in range(len(names))),
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}


def _tracker(conversation_id: str) -> Tuple[int, Dict[str, Any]]:
    found = client().get_item(TableName=table(), Key={"pk": {"S": f"conv#{conversation_id}"}, "sk": {"S": TRACKER_SK}},
                               ConsistentRead=True).get("Item")
    if not found:
        return 0, {}
    return int(found["seq"]["N"]), json.loads(found.get("state", {}).get("S") or "{}")


def apply_entries(conversation_id: str, entries: Iterable[Mapping[str, Any]]) -> int:
    """Fold one conversation's log entries (any order, repeats allowed) into the counters exactly
    once. Returns how many entries were new."""
    return ledger.apply_once(conversation_id, entries, _tracker, _commit,
                             lambda cid: Busy(f"reports tracker of {cid} kept changing"))


def _commit(conversation_id: str, done: int, state: Dict[str, Any], ordered: List[Dict[str, Any]]) -> bool:
    """Fold and write in transactions of at most MAX_TRANSACTION_ITEMS items; False when another
    consumer moved the tracker first (the caller reads it again)."""
    pending: List[cycles.Contribution] = []
    for index, entry in enumerate(ordered):
        after, found = cycles.fold(state, entry)
        if pending and len(writes_of(pending + found)) > MAX_TRANSACTION_ITEMS:
            if not _transact(conversation_id, done, state, int(ordered[index - 1]["seq"]), pending):
                return False
            done, pending = int(ordered[index - 1]["seq"]), []
        state = after
        pending.extend(found)
    return _transact(conversation_id, done, state, int(ordered[-1]["seq"]), pending)


def _transact(conversation_id: str, done: int, state: Dict[str, Any], seq: int,
              contributions: List[cycles.Contribution]) -> bool:
    items: List[Dict[str, Any]] = [{"Put": {
        "TableName": table(),
        "Item": {"pk": {"S": f"conv#{conversation_id}"}, "sk": {"S": TRACKER_SK}, "seq": {"N": str(seq)},
                 "state": {"S": json.dumps(state, separators=(",", ":"), sort_keys=True)}},
        "ConditionExpression": "attribute_not_exists(pk) OR #seq = :done",
        "ExpressionAttributeNames": {"#seq": "seq"},
        "ExpressionAttributeValues": {":done": {"N": str(done)}},
    }}]
    for (scope, key), counters in sorted(writes_of(contributions).items()):
        items.append({"Update": update_of(scope, key, counters)})
    return ledger.transact(items)


# --- reading ---------------------------------------------------------------------------------------


def spans(from_ms: int, to_ms: int) -> List[Tuple[str, str]]:
    """Sort-key ranges (inclusive) covering [from, to) (both on 15-minute boundaries): whole UTC
    days as day items, the edges as 15-minute items. At most 2 x 95 quarter items plus one item
    per day, whatever the traffic."""
    first_day = -(-from_ms // DAY_MS) * DAY_MS
    last_day = to_ms // DAY_MS * DAY_MS
    if first_day >= last_day:
        return [(quarter_key(from_ms), quarter_key(to_ms - 1))] if to_ms > from_ms else []
    found = [(day_key(first_day), day_key(last_day - 1))]
    if from_ms < first_day:
        found.append((quarter_key(from_ms), quarter_key(first_day - 1)))
    if last_day < to_ms:
        found.append((quarter_key(last_day), quarter_key(to_ms - 1)))
    return found


def items(scope: str, low: str, high: str) -> List[Dict[str, Any]]:
    """The counter items of one scope with sort keys in [low, high], as {name: number}
    (plus "_at": the bucket's start ms, and the register set under distinct.ATTRIBUTE). Queries,
    paged, never a Scan."""
    found: List[Dict[str, Any]] = []
    kwargs: Dict[str, Any] = {
        "TableName": table(), "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
        "ExpressionAttributeValues": {":pk": {"S": scope}, ":low": {"S": low}, ":high": {"S": high}}}
    while True:
        page = client().query(**kwargs)
        for item in page.get("Items", []):
            counters: Dict[str, Any] = {name: int(value["N"]) for name, value in item.items() if "N" in value}
            if distinct.ATTRIBUTE in item:
                counters[distinct.ATTRIBUTE] = distinct.parse(item[distinct.ATTRIBUTE])
            counters["_at"] = int(item["sk"]["S"][2:])
            found.append(counters)
        if not page.get("LastEvaluatedKey"):
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def merged(scope: str, from_ms: int, to_ms: int) -> Dict[str, Any]:
    """Every counter of `scope` over [from, to), added up (register sets united)."""
    total: Dict[str, Any] = {}
    for low, high in spans(from_ms, to_ms):
        add_up(total, items(scope, low, high))
    return total


def add_up(total: Dict[str, Any], found: Iterable[Mapping[str, Any]]) -> Dict[str, Any]:
    """Merge counter items into `total`: numbers added, register sets united."""
    for item in found:
        for name, value in item.items():
            if name == "_at":
                continue
            if isinstance(value, (set, frozenset)):
                total.setdefault(name, set()).update(value)
            else:
                total[name] = total.get(name, 0) + value
    return total


def earliest_positive(scope: str, from_ms: int, to_ms: int, name: str) -> Optional[int]:
    """The start of the earliest 15-minute bucket of [from, to) whose `name` is positive (a gauge
    like `waiting`), or None. Reads the period's day and edge items, then one day's quarters."""
    found = []
    for low, high in spans(from_ms, to_ms):
        found += [(int(item["_at"]), low[:2]) for item in items(scope, low, high) if int(item.get(name, 0)) > 0]
    for at, kind in sorted(found):
        if kind == "q#":
            return at
        for item in quarters(scope, max(at, from_ms), min(at + DAY_MS, to_ms)):
            if int(item.get(name, 0)) > 0:
                return int(item["_at"])
    return None


def quarters(scope: str, from_ms: int, to_ms: int) -> List[Dict[str, int]]:
    """The 15-minute items of `scope` in [from, to), oldest first (intervals, heatmaps)."""
    if to_ms <= from_ms:
        return []
    return items(scope, quarter_key(from_ms), quarter_key(to_ms - 1))


def utc_iso(ms: int) -> str:
    return _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.timezone.utc).isoformat().replace("+00:00", "Z")
