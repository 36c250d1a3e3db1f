"""Backfills: give existing items an attribute a new index is keyed on.

A new global secondary index holds only the items that carry its key attributes. Items written by
the new code carry them; older items get them here, between the expand steps and `chalice deploy`
on one side and the contract steps on the other (`make deploy` runs
`python -m infra.deploy backfill --stage <stage>` after `chalice deploy`, so no old code writes
the item without the attribute afterwards).

Each registered Backfill is a paginated Scan of its table (`page_size` items a request) and, for
each item without the attribute whose `compute` gives a value, one conditional UpdateItem:
`attribute_not_exists(<attribute>)`, and each attribute in `reads` still as the scan saw it. An
item the application changed in between fails the condition and is read again (consistently) and
retried, so a value is never computed from a stale item; one that got the attribute meanwhile is
left alone. Idempotent (a second run writes nothing) and resumable: after every page the scan's
position is saved to a checkpoint file, and a run that finds one continues from it.

BACKFILLS is empty between migrations: register one in the change that adds its index, and remove
it once every stage has been deployed with it (each deploy runs every registered backfill again:
a full scan of its table, reads only once nothing is left to write).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

#: Items per Scan request: bounds each request's read (and the writes that follow it).
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
#: Tries per item when the application keeps changing it under the backfill.
ATTEMPTS = 5


@dataclass(frozen=True)
class Backfill:
    """One attribute to give the existing items of one table."""
    #: The table's short name (`socialinbox-<stage>-<table>`).
    table: str
    #: The attribute set on items that lack it.
    attribute: str
    #: The value for an item (plain Python values, numbers as Decimal), or None: the item stays without
    #: it (it then stays out of a sparse index, as the application would leave it).
    compute: Callable[[Mapping[str, Any]], Any]
    #: The attributes `compute` reads: the update applies only while they are still as read.
    reads: Tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.table}.{self.attribute}"


def _conversation_deadline(item: Mapping[str, Any]) -> Any:
    """The sparse `team-deadline` index's key (issue 21), as the store writes it: the reply
    deadline of an open conversation, the wake-up of a snoozed one, None when nothing is due."""
    from chalicelib.inbox.rules import derived_keys

    return derived_keys(item)["deadline"]


#: The registered backfills, run in order by `python -m infra.deploy backfill`. Remove one once
#: every stage has been deployed with it.
BACKFILLS: List[Backfill] = [
    # Release of 2026-12 (team-recent/team-due replaced by team-latest/team-deadline).
    Backfill("conversations", "deadline", _conversation_deadline, reads=("status", "reply_due_at", "snoozed_until")),
]


@dataclass
class Counts:
    """What one run did."""
    scanned: int = 0
    updated: int = 0
    #: Already had the attribute (or got it from the application during the run).
    present: int = 0
    #: `compute` gave None.
    skipped: int = 0
    #: Changed by the application between the read and the update, then done from a fresh read.
    retried: int = 0
    pages: int = 0
    resumed: bool = False

    def line(self, name: str) -> str:
        return (f"backfill {name}: scanned {self.scanned}, updated {self.updated}, already set {self.present}, "
                f"left without {self.skipped}, re-read {self.retried} ({self.pages} pages"
                f"{', resumed' if self.resumed else ''})")


def table_name(stage: str, table: str) -> str:
    return f"socialinbox-{stage}-{table}"


def run(client: Any, stage: str, backfill: Backfill, page_size: int = DEFAULT_PAGE_SIZE,
        checkpoint: Optional[str] = None, report: Callable[[str], None] = print,
        report_every: float = 10.0) -> Counts:
    """Run one backfill over the stage's table (`client`: a boto3 DynamoDB client). With
    `checkpoint` (a file path) the scan continues where an interrupted run stopped, and the file is
    removed once the whole table has been seen. Reports a progress line at most every
    `report_every` seconds, and the totals."""
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page size {page_size}: 1 to {MAX_PAGE_SIZE}")
    name = table_name(stage, backfill.table)
    keys = [k["AttributeName"] for k in client.describe_table(TableName=name)["Table"]["KeySchema"]]
    counts = Counts()
    start = _load_checkpoint(checkpoint)
    if start is not None:
        counts.resumed = True
        report(f"backfill {backfill.name}: resuming from {checkpoint}")
    serializer, deserializer = TypeSerializer(), TypeDeserializer()
    last_report = time.monotonic()
    while True:
        request: Dict[str, Any] = {"TableName": name, "Limit": page_size}
        if start:
            request["ExclusiveStartKey"] = start
        page = client.scan(**request)
        counts.pages += 1
        for item in page.get("Items", []):
            counts.scanned += 1
            _one(client, name, keys, backfill, item, counts, serializer, deserializer)
        start = page.get("LastEvaluatedKey")
        if not start:
            break
        _save_checkpoint(checkpoint, start)
        if time.monotonic() - last_report >= report_every:
            report(counts.line(backfill.name) + " ...")
            last_report = time.monotonic()
    if checkpoint and os.path.exists(checkpoint):
        os.remove(checkpoint)
    report(counts.line(backfill.name))
    return counts


def _one(client: Any, name: str, keys: List[str], backfill: Backfill, item: Dict[str, Any], counts: Counts,
         serializer: Any, deserializer: Any) -> None:
    """The conditional update of one item, re-read and retried while the application changes it."""
    from botocore.exceptions import ClientError

    key = {k: item[k] for k in keys}
    for attempt in range(ATTEMPTS):
        if backfill.attribute in item:
            counts.present += 1
            return
        value = backfill.compute({k: deserializer.deserialize(v) for k, v in item.items()})
        if value is None:
            counts.skipped += 1
            return
        names = {"#target": backfill.attribute}
        values = {":value": serializer.serialize(value)}
        conditions = ["attribute_not_exists(#target)"]
        for number, read in enumerate(backfill.reads):
            names[f"#r{number}"] = read
            if read in item:
                values[f":r{number}"] = item[read]
                conditions.append(f"#r{number} = :r{number}")
            else:
                conditions.append(f"attribute_not_exists(#r{number})")
        try:
            client.update_item(TableName=name, Key=key, UpdateExpression="SET #target = :value",
                               ConditionExpression=" AND ".join(conditions), ExpressionAttributeNames=names,
                               ExpressionAttributeValues=values)
            counts.updated += 1
            return
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
        counts.retried += 1
        fresh = client.get_item(TableName=name, Key=key, ConsistentRead=True).get("Item")
        if fresh is None:  # deleted meanwhile: nothing to give it
            counts.skipped += 1
            return
        item = fresh
    raise RuntimeError(f"backfill {backfill.name}: item {key} changed under {ATTEMPTS} tries; run it again")


def _load_checkpoint(path: Optional[str]) -> Optional[Dict[str, Any]]:
    if not path or not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)["ExclusiveStartKey"]


def _save_checkpoint(path: Optional[str], start: Mapping[str, Any]) -> None:
    if not path:
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    partial = path + ".tmp"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump({"ExclusiveStartKey": start}, handle)
    os.replace(partial, path)


def checkpoint_path(directory: str, stage: str, backfill: Backfill) -> str:
    return os.path.join(directory, f"{stage}-{backfill.table}-{backfill.attribute}.json")


def run_all(client: Any, stage: str, registered: List[Backfill], page_size: int = DEFAULT_PAGE_SIZE,
            checkpoints: Optional[str] = None, report: Callable[[str], None] = print) -> Dict[str, Counts]:
    """Every registered backfill, in order; {name: counts}."""
    if not registered:
        report("backfill: none registered")
    done: Dict[str, Counts] = {}
    for backfill in registered:
        path = checkpoint_path(checkpoints, stage, backfill) if checkpoints else None
        done[backfill.name] = run(client, stage, backfill, page_size, path, report)
    return done

