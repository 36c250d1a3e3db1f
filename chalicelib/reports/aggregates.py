"""Reports' DynamoDB side: add contributions exactly once, read a period back in bounded reads.

Items (models.ReportAggregate, table `reports`):
- `pk` = scope ("all", "ch#<channel>", "team#<team>", "agent#<id>"), `sk` = "q#<13-digit ms>"
  (15-minute UTC bucket) or "d#<13-digit ms>" (UTC day): top-level number attributes, created and
  grown by `ADD`, so any set of them merges by adding; "d#<13-digit ms>#u<shard>": that day's
  distinct-count registers alone, in 16 shards (`registers_key`);
- `pk` = "conv#<id>", `sk` = "tracker": the conversation's folded state and the last log `seq`
  folded into the counters.

Exactly once: the counters' `ADD`s and the tracker's new `seq` are one transaction, conditioned
on the tracker still holding the `seq` read. A redelivered entry (seq <= the tracker's) adds
nothing; a gap (an entry whose predecessors were not seen, e.g. after a shard split) is filled by
reading the log itself, so every entry counts once and in order. A stream batch's conversations
(and the messages consumer's messages) share transactions, their writes added up per item
(`commit_units`): one update per counter item per transaction, however many records touch it.
Why the transaction stays: the counters are shared by every conversation, so a counter item
cannot remember which sources it has seen; only an all-or-nothing write of the guard with the
counters makes a crash between them harmless. What needs no transaction is written without one:
the day registers (a set union, idempotent) and the cycle rows (chalicelib.reports.export).
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from chalicelib import config
from chalicelib.reports import cycles, distinct, ledger

QUARTER_MS = 15 * 60_000
DAY_MS = 86_400_000
#: DynamoDB's limit of items per transaction.
TRANSACTION_ITEMS = 100
#: Counter items one guarded source may touch (its guard takes the 100th place).
MAX_TRANSACTION_ITEMS = TRANSACTION_ITEMS - 1
TRACKER_SK = "tracker"
REGISTERS_SUFFIX = "#u"
#: A day's registers are split over this many items (64 registers each: under 1 KB).
REGISTER_SHARDS = 16


class Busy(RuntimeError):
    """The tracker kept moving under us: the batch is retried by the stream."""


def table() -> str:
    return config.table_name("reports")


def quarter_key(at_ms: int) -> str:
    return f"q#{at_ms - at_ms % QUARTER_MS:013d}"


def day_key(at_ms: int) -> str:
    return f"d#{at_ms - at_ms % DAY_MS:013d}"


def registers_key(at_ms: int, register: int = 0) -> str:
    """The item holding `register` of a UTC day's distinct-count registers: the day's registers
    are split over REGISTER_SHARDS items sorted right after the day's counters (so the Query of a
    range of days reads them too). Why apart: at a few thousand authors a day the register set
    grows to ~12 KB, and every counter ADD to an item that size would cost 13 write units; apart,
    the counters stay small and a register is written only when a new author raises it (rarely,
    once a day has many), into a shard of under 1 KB, outside any transaction (a set union is
    idempotent: writing it twice adds nothing)."""
    return f"{day_key(at_ms)}{REGISTERS_SUFFIX}{register * REGISTER_SHARDS // distinct.REGISTERS:02d}"


def is_registers(key: str) -> bool:
    return REGISTERS_SUFFIX in key


def _registers_by_key(at_ms: int, values: Iterable[int]) -> Dict[str, Set[int]]:
    found: Dict[str, Set[int]] = {}
    for value in values:
        found.setdefault(registers_key(at_ms, int(value) // 64), set()).add(int(value))
    return found


def at_of(sort_key: str) -> int:
    """The bucket start (ms) of a counter item's sort key."""
    return int(sort_key[2:15])


def client() -> Any:
    from chalicelib.runtime import runtime

    return runtime.client("dynamodb")


# --- writing ---------------------------------------------------------------------------------------


def writes_of(contributions: Iterable[cycles.Contribution]) -> Dict[Tuple[str, str], Dict[str, Any]]:
    """{(scope, bucket key): counters} with contributions to the same item added together: each
    counts in its 15-minute bucket and in its UTC day. Distinct-count registers are a set under
    `distinct.ATTRIBUTE` (added by union): in the 15-minute item itself, and for the day in the
    day's registers item (`registers_key`)."""
    merged: Dict[Tuple[str, str], Dict[str, Any]] = {}
    for contribution in contributions:
        for scope in contribution.scopes:
            for key in (quarter_key(contribution.at), day_key(contribution.at)):
                counters = merged.setdefault((scope, key), {})
                for name, amount in contribution.counters.items():
                    counters[name] = counters.get(name, 0) + int(amount)
            if contribution.registers:
                merged.setdefault((scope, quarter_key(contribution.at)), {}).setdefault(
                    distinct.ATTRIBUTE, set()).update(contribution.registers)
                for key, values in _registers_by_key(contribution.at, contribution.registers).items():
                    merged.setdefault((scope, key), {}).setdefault(distinct.ATTRIBUTE, set()).update(values)
    return merged


def keys_of(contributions: Iterable[cycles.Contribution]) -> Set[Tuple[str, str]]:
    """The counter items `contributions` touch (what `writes_of` would write, without adding up)."""
    return {(scope, key) for c in contributions for scope in c.scopes for key in (quarter_key(c.at), day_key(c.at))}


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


@dataclass
class Unit:
    """What one source adds (a conversation's new log entries, or one message), and the guard
    that makes it count once: a conditioned `Put` (the conversation's tracker at its new `seq`,
    the message's marker) that fails when the source was counted already or moved under us."""

    source: str
    guard: Dict[str, Any]
    contributions: List[cycles.Contribution]
    entries: int = 1


def commit_units(units: List[Unit]) -> List[Unit]:
    """Write `units` in as few transactions as fit, each holding the guards of its units and the
    counter items they touch, *added up across units*: a batch of many records whose
    contributions share their 15-minute and day items writes each item once per transaction,
    not once per record. A transaction is all or nothing, so every unit in it counts exactly
    once (a crash between two transactions leaves the later units' guards unwritten: a retry
    counts them, and only them). Returns the units not written: their guard failed (counted or
    moved by someone else) or their transaction lost a conflict; the caller reads again."""
    failed: List[Unit] = []
    chunk: List[Unit] = []
    touched: Set[Tuple[str, str]] = set()
    for unit in units:
        mine = keys_of(unit.contributions)
        if chunk and len(chunk) + 1 + len(touched | mine) > TRANSACTION_ITEMS:
            failed += _transact_units(chunk)
            chunk, touched = [], set()
        chunk.append(unit)
        touched |= mine
    if chunk:
        failed += _transact_units(chunk)
    return failed


def _transact_units(chunk: List[Unit]) -> List[Unit]:
    merged = writes_of(c for unit in chunk for c in unit.contributions)
    add_registers({key: value for key, value in merged.items() if is_registers(key[1])})
    items: List[Dict[str, Any]] = [{"Put": unit.guard} for unit in chunk]
    items += [{"Update": update_of(scope, key, counters)} for (scope, key), counters in sorted(merged.items())
              if not is_registers(key)]
    reasons = ledger.transact_failures(items)
    return [] if reasons is None else list(chunk)


def add_registers(found: Mapping[Tuple[str, str], Mapping[str, Any]]) -> int:
    """Add day registers to their items, before the transaction that counts their sources: read
    the items (eventually consistent: a set only grows, so a stale read can only make us write a
    value that was not needed) and write only the values that raise a register. A crash after
    this and before the transaction leaves values the retry finds already there: a union is
    idempotent and the estimate is all a register set answers. Returns the items written."""
    if not found:
        return 0
    stored = ledger.get_many(table(), [{"pk": {"S": scope}, "sk": {"S": key}} for scope, key in found], consistent=False)
    written = 0
    for (scope, key), counters in sorted(found.items()):
        have = distinct.parse((stored.get((scope, key)) or {}).get(distinct.ATTRIBUTE))
        new = distinct.raising(counters.get(distinct.ATTRIBUTE) or (), have)
        if new:
            client().update_item(**update_of(scope, key, {distinct.ATTRIBUTE: new}))
            written += 1
    return written


def _tracker_key(conversation_id: str) -> Dict[str, Any]:
    return {"pk": {"S": f"conv#{conversation_id}"}, "sk": {"S": TRACKER_SK}}


def _trackers(conversation_ids: Iterable[str]) -> Dict[str, Tuple[int, Dict[str, Any]]]:
    """Each conversation's folded `seq` and state (consistent reads, 100 keys a request)."""
    found = ledger.get_many(table(), [_tracker_key(cid) for cid in conversation_ids])
    result: Dict[str, Tuple[int, Dict[str, Any]]] = {}
    for cid in conversation_ids:
        item = found.get((f"conv#{cid}", TRACKER_SK))
        result[cid] = (int(item["seq"]["N"]), json.loads(item.get("state", {}).get("S") or "{}")) if item else (0, {})
    return result


def _tracker(conversation_id: str) -> Tuple[int, Dict[str, Any]]:
    return _trackers([conversation_id])[conversation_id]


def _tracker_put(conversation_id: str, done: int, state: Dict[str, Any], seq: int) -> Dict[str, Any]:
    return {"TableName": table(),
            "Item": dict(_tracker_key(conversation_id), seq={"N": str(seq)},
                         state={"S": json.dumps(state, separators=(",", ":"), sort_keys=True)}),
            "ConditionExpression": "attribute_not_exists(pk) OR #seq = :done",
            "ExpressionAttributeNames": {"#seq": "seq"},
            "ExpressionAttributeValues": {":done": {"N": str(done)}}}


def apply_batch(by_conversation: Mapping[str, Iterable[Mapping[str, Any]]]) -> int:
    """Fold a stream batch's log entries (grouped by conversation; any order, repeats allowed)
    into the counters exactly once, all conversations' counter writes added up per item
    (`commit_units`). Returns how many entries were new."""
    pending = {cid: {int(e["seq"]): dict(e) for e in entries} for cid, entries in by_conversation.items()}
    pending = {cid: given for cid, given in pending.items() if given}
    applied = 0
    for attempt in range(ledger.ATTEMPTS):
        if not pending:
            return applied
        units: List[Unit] = []
        for cid, (done, state) in _trackers(sorted(pending)).items():
            ordered = ledger.fresh(cid, pending[cid], done)
            if not ordered:
                del pending[cid]
                continue
            after, found = cycles.fold_all(ordered, state)
            if len(keys_of(found)) > MAX_TRANSACTION_ITEMS:  # a long run of one conversation: in pieces
                applied += apply_entries(cid, ordered)
                del pending[cid]
                continue
            units.append(Unit(cid, _tracker_put(cid, done, after, int(ordered[-1]["seq"])), found, len(ordered)))
        failed = {unit.source for unit in commit_units(units)}
        applied += sum(unit.entries for unit in units if unit.source not in failed)
        pending = {cid: given for cid, given in pending.items() if cid in failed}
        ledger.back_off(attempt, bool(pending))
    if pending:
        raise Busy(f"reports trackers of {', '.join(sorted(pending)[:3])} kept changing")
    return applied


def apply_entries(conversation_id: str, entries: Iterable[Mapping[str, Any]]) -> int:
    """Fold one conversation's log entries (any order, repeats allowed) into the counters exactly
    once, in as many transactions as its writes need. Returns how many entries were new."""
    return ledger.apply_once(conversation_id, entries, _tracker, _commit,
                             lambda cid: Busy(f"reports tracker of {cid} kept changing"))


def _commit(conversation_id: str, done: int, state: Dict[str, Any], ordered: List[Dict[str, Any]]) -> bool:
    """Fold and write in transactions of at most MAX_TRANSACTION_ITEMS items; False when another
    consumer moved the tracker first (the caller reads it again)."""
    pending: List[cycles.Contribution] = []
    for index, entry in enumerate(ordered):
        after, found = cycles.fold(state, entry)
        if pending and len(keys_of(pending + found)) > MAX_TRANSACTION_ITEMS:
            seq = int(ordered[index - 1]["seq"])
            if commit_units([Unit(conversation_id, _tracker_put(conversation_id, done, state, seq), pending)]):
                return False
            done, pending = seq, []
        state = after
        pending.extend(found)
    seq = int(ordered[-1]["seq"])
    return not commit_units([Unit(conversation_id, _tracker_put(conversation_id, done, state, seq), pending)])


# --- reading ---------------------------------------------------------------------------------------


def spans(from_ms: int, to_ms: int) -> List[Tuple[str, str]]:
    """Sort-key ranges (inclusive) covering [from, to) (both on 15-minute boundaries): whole UTC
    days as day items (with their registers items), the edges as 15-minute items. At most 2 x 95 quarter items plus one item
    per day, whatever the traffic."""
    first_day = -(-from_ms // DAY_MS) * DAY_MS
    last_day = to_ms // DAY_MS * DAY_MS
    if first_day >= last_day:
        return [(quarter_key(from_ms), quarter_key(to_ms - 1))] if to_ms > from_ms else []
    found = [(day_key(first_day), registers_key(last_day - 1, distinct.REGISTERS - 1))]
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
            counters["_at"] = at_of(item["sk"]["S"])
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
