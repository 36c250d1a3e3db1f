"""A DynamoDB request-unit meter for the benchmark: what on-demand billing would charge, per write.

It knows nothing of the code under test (no models, no pipeline): it hooks botocore's public
`before-call.dynamodb` / `after-call.dynamodb` events on every client (patching
`botocore.session.Session.create_client`, so pynamodb's private sessions are covered too), reads
the request that goes on the wire (the JSON body), and prices every item the request touches:

- base table: ceil(max(size before, size after) / 1 KB) write units per item (PutItem, UpdateItem,
  BatchWriteItem puts), ceil(size before / 1 KB) for deletes, at least 1; x2 for every item of a
  TransactWriteItems;
- every secondary index (GSI and LSI, read from DescribeTable with their projection ALL /
  KEYS_ONLY / INCLUDE): no entry before or after -> 0; an entry appears -> 1 put; disappears -> 1
  delete; index key changed -> delete + put; same key but a projected attribute changed -> 1 update;
  each ceil(index entry size / 1 KB); not doubled inside a transaction;
- a write whose condition fails still costs ceil(existing item / 1 KB), at least 1 (x2 per item of
  a cancelled transaction), and writes no index;
- reads: GetItem / BatchGetItem per item ceil(size / 4 KB) (0.5 unit each if eventually
  consistent, at least that for a missing item), TransactGetItems x2, Query / Scan the sum of the
  returned items' sizes rounded up to 4 KB once.

Item sizes follow the DynamoDB developer guide ("DynamoDB item sizes and formats"): UTF-8 names +
values; numbers (1 byte per two significant digits) + 1; binary raw bytes; null/boolean 1;
List/Map 3 bytes + 1 per element + the elements; sets the sum of their members.

Images before and after a write are read without any counted request: straight from moto's
in-process backend when the emulator runs in this process (mock_aws or ThreadedMotoServer), else
with ConsistentRead GetItems on a private client the meter never counts (pass `quiet` to keep other
counters from seeing them). Method and sources: bench/README.md.
"""
from __future__ import annotations

import base64
import contextlib
import json
import math
import threading
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, ContextManager, Dict, Iterator, List, Optional, Tuple

KB = 1024
READ_BLOCK = 4 * KB

WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
READ_OPERATIONS = ("GetItem", "BatchGetItem", "TransactGetItems", "Query", "Scan")

Item = Dict[str, Dict[str, Any]]  # DynamoDB JSON: {"name": {"S": "..."}}


# ================================================================================================
# Item sizes (DynamoDB developer guide, "DynamoDB item sizes and formats")
# ================================================================================================


def _utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def number_size(text: str) -> int:
    """(1 byte per two significant digits, rounded up) + 1; leading and trailing zeros trimmed."""
    try:
        digits = Decimal(str(text)).normalize().as_tuple().digits
    except InvalidOperation:
        digits = tuple(c for c in str(text) if c.isdigit())
    significant = "".join(str(d) for d in digits).strip("0")
    return max(1, math.ceil(len(significant) / 2)) + 1


def _binary_size(value: Any) -> int:
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    return len(base64.b64decode(value))  # on the wire binary is base64; the raw length counts


def value_size(value: Dict[str, Any]) -> int:
    """Size of one attribute value (without its name)."""
    (kind, payload), = value.items()
    if kind == "S":
        return _utf8(payload)
    if kind == "N":
        return number_size(payload)
    if kind == "B":
        return _binary_size(payload)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(_utf8(v) for v in payload)
    if kind == "NS":
        return sum(number_size(v) for v in payload)
    if kind == "BS":
        return sum(_binary_size(v) for v in payload)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in payload)
    if kind == "M":
        return 3 + sum(1 + _utf8(k) + value_size(v) for k, v in payload.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Optional[Item]) -> int:
    """Size in bytes of an item (or index entry) in DynamoDB JSON; 0 for no item."""
    if not item:
        return 0
    return sum(_utf8(name) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / KB))


def _blocks(size: int, block: int) -> int:
    return math.ceil(size / block)


# ================================================================================================
# Table schemas and index entries
# ================================================================================================


@dataclass
class Index:
    name: str
    keys: Tuple[str, ...]
    projection: str  # ALL | KEYS_ONLY | INCLUDE
    include: Tuple[str, ...] = ()
    local: bool = False

    def entry(self, item: Optional[Item], table_keys: Tuple[str, ...]) -> Optional[Item]:
        """The item's entry in this index, or None when it has no entry (a key attribute missing)."""
        if not item or any(k not in item for k in self.keys):
            return None
        if self.projection == "ALL":
            return dict(item)
        names = set(table_keys) | set(self.keys)
        if self.projection == "INCLUDE":
            names |= set(self.include)
        return {k: v for k, v in item.items() if k in names}


@dataclass
class Schema:
    table: str
    keys: Tuple[str, ...]
    indexes: List[Index]

    @classmethod
    def from_description(cls, table: Dict[str, Any]) -> "Schema":
        indexes = []
        for local, group in ((False, "GlobalSecondaryIndexes"), (True, "LocalSecondaryIndexes")):
            for index in table.get(group) or []:
                projection = index.get("Projection") or {}
                indexes.append(Index(index["IndexName"], tuple(k["AttributeName"] for k in index["KeySchema"]),
                                     projection.get("ProjectionType", "ALL"),
                                     tuple(projection.get("NonKeyAttributes") or ()), local))
        return cls(table["TableName"], tuple(k["AttributeName"] for k in table["KeySchema"]), indexes)

    def key_of(self, item: Item) -> Item:
        return {k: item[k] for k in self.keys if k in item}


def index_writes(index: Index, table_keys: Tuple[str, ...], before: Optional[Item],
                 after: Optional[Item]) -> Tuple[int, str]:
    """Write units one index spends for a change of its base item from `before` to `after`."""
    old, new = index.entry(before, table_keys), index.entry(after, table_keys)
    if old is None and new is None:
        return 0, "none"
    if old is None:
        return write_units(item_size(new)), "put"
    if new is None:
        return write_units(item_size(old)), "delete"
    if any(old[k] != new[k] for k in index.keys):
        return write_units(item_size(old)) + write_units(item_size(new)), "move"
    if old != new:
        return write_units(max(item_size(old), item_size(new))), "update"
    return 0, "unchanged"


# ================================================================================================
# Where images come from (never through a counted request)
# ================================================================================================


class Images:
    """Reads items and table descriptions for the meter: moto's in-process backend when it has
    the table, else a private boto3 client (ConsistentRead GetItem / DescribeTable) that the
    meter ignores; `quiet` wraps those calls so that other request counters ignore them too."""

    def __init__(self, region: str, account_id: str = "123456789012",
                 quiet: Optional[Callable[[], ContextManager[Any]]] = None) -> None:
        self.region = region
        self.account_id = account_id
        self.quiet = quiet or contextlib.nullcontext
        self._client: Any = None
        self._schemas: Dict[str, Schema] = {}
        self.reads_from_backend = 0
        self.reads_by_request = 0

    def forget(self) -> None:
        """Tables were dropped or re-created: read their descriptions again."""
        self._schemas.clear()

    def private_client(self) -> Any:
        if self._client is None:
            import boto3

            client = boto3.session.Session().client("dynamodb", region_name=self.region)
            client._wru_private = True  # the meter's own hooks skip it
            self._client = client
        return self._client

    def _moto_table(self, name: str) -> Any:
        try:
            from moto.dynamodb.models import dynamodb_backends

            backend = dynamodb_backends[self.account_id][self.region]
            return backend.tables.get(name)
        except Exception:  # noqa: BLE001 - moto absent, or out of process
            return None

    def schema(self, table: str) -> Schema:
        found = self._schemas.get(table)
        if found is None:
            moto_table = self._moto_table(table)
            if moto_table is not None:
                description = moto_table.describe(base_key="Table")["Table"]
            else:
                with self.quiet():
                    description = self.private_client().describe_table(TableName=table)["Table"]
            found = self._schemas[table] = Schema.from_description(description)
        return found

    def get(self, table: str, key: Item) -> Optional[Item]:
        moto_table = self._moto_table(table)
        if moto_table is not None:
            self.reads_from_backend += 1
            from moto.dynamodb.models import dynamodb_backends

            found = dynamodb_backends[self.account_id][self.region].get_item(table, key)
            return _plain(found.to_json()["Attributes"]) if found is not None else None
        self.reads_by_request += 1
        with self.quiet():
            return self.private_client().get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")


def _plain(item: Dict[str, Any]) -> Item:
    """moto's to_json() may hold bytes and nested typed values: make it DynamoDB JSON."""
    def fix(value: Dict[str, Any]) -> Dict[str, Any]:
        (kind, payload), = value.items()
        if kind == "M":
            return {"M": {k: fix(v) for k, v in payload.items()}}
        if kind == "L":
            return {"L": [fix(v) for v in payload]}
        if kind == "N":
            return {"N": str(payload)}
        if kind == "NS":
            return {"NS": [str(v) for v in payload]}
        return {kind: payload}
    return {k: fix(v) for k, v in item.items()}


# ================================================================================================
# The meter
# ================================================================================================


@dataclass
class Write:
    """One priced item write (one item of one request)."""
    operation: str  # PutItem, UpdateItem, ..., or "TransactWriteItems:Update"
    table: str
    outcome: str  # ok | condition failed | cancelled | error
    base: int
    indexes: int
    index_actions: Dict[str, str] = field(default_factory=dict)
    size_before: int = 0
    size_after: int = 0

    @property
    def total(self) -> int:
        return self.base + self.indexes


class Scope:
    def __init__(self) -> None:
        self.writes: List[Write] = []
        self.rru = 0.0
        self.reads: Counter = Counter()  # "Operation[table]" -> read units
        self.requests: Counter = Counter()  # "Operation[table]" -> calls

    @property
    def wru(self) -> int:
        return sum(w.total for w in self.writes)

    @property
    def base_wru(self) -> int:
        return sum(w.base for w in self.writes)

    @property
    def index_wru(self) -> int:
        return sum(w.indexes for w in self.writes)

    def by_table(self, short: Callable[[str], str] = str) -> Counter:
        """WRU per "Operation[table]" (base) and "index[table/index]" (index writes)."""
        result: Counter = Counter()
        for w in self.writes:
            result[f"{w.operation}[{short(w.table)}]"] += w.base
            if w.indexes:
                result[f"indexes[{short(w.table)}]"] += w.indexes
        return result

    def index_moves(self) -> Counter:
        result: Counter = Counter()
        for w in self.writes:
            for name, action in w.index_actions.items():
                if action not in ("none", "unchanged"):
                    result[f"{name}:{action}"] += 1
        return result


class WruMeter:
    """Install once, before the first client exists; then `with meter.scope() as s:` ... `s.wru`."""

    def __init__(self, images: Images) -> None:
        self.images = images
        self._scopes: List[Scope] = []
        self._local = threading.local()
        self.installed = False
        self.unpriced: Counter = Counter()  # requests the meter could not price (should stay empty)

    # --- installation -----------------------------------------------------------------------
    def install(self) -> None:
        if self.installed:
            return
        import botocore.session

        meter = self
        original_create = botocore.session.Session.create_client

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original_create(session, *args, **kwargs)
            meter.attach(client)
            return client

        botocore.session.Session.create_client = create_client
        self.installed = True

    def attach(self, client: Any) -> None:
        """Hook one client (clients created after install() are hooked automatically)."""
        if client.meta.service_model.service_name != "dynamodb" or getattr(client, "_wru_hooked", False):
            return
        client._wru_hooked = True
        client.meta.events.register("before-call.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    @contextlib.contextmanager
    def scope(self) -> Iterator[Scope]:
        scope = Scope()
        self._scopes.append(scope)
        try:
            yield scope
        finally:
            self._scopes.remove(scope)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        saved, self._scopes = self._scopes, []
        try:
            yield
        finally:
            self._scopes = saved

    # --- hooks ------------------------------------------------------------------------------
    def _before(self, model: Any = None, params: Any = None, context: Any = None, **_: Any) -> None:
        if not self._scopes or context is None or model is None:
            return None
        name = model.name
        if name not in WRITE_OPERATIONS and name not in READ_OPERATIONS:
            return None
        try:
            body = params.get("body") or b"{}"
            request = json.loads(body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body)
            targets = self._targets(name, request) if name in WRITE_OPERATIONS else []
            befores = [self.images.get(table, key) for _, table, key, _ in targets]
            context["wru_pending"] = (list(self._scopes), name, request, targets, befores)
        except Exception as error:  # noqa: BLE001 - a meter must never break a request
            self.unpriced[f"{name}: {type(error).__name__}: {error}"] += 1
        return None  # a non-None answer would short-circuit the request

    def _after(self, http_response: Any = None, parsed: Any = None, model: Any = None, context: Any = None,
               **_: Any) -> None:
        pending = context.pop("wru_pending", None) if context is not None else None
        if pending is None:
            return
        scopes, name, request, targets, befores = pending
        try:
            status = getattr(http_response, "status_code", 200)
            error = (parsed or {}).get("Error", {}).get("Code", "") if status >= 300 else ""
            table_label = _tables_of(name, request)
            if name in WRITE_OPERATIONS:
                writes = self._price_writes(name, targets, befores, error)
                for scope in scopes:
                    scope.writes.extend(writes)
                    scope.requests[f"{name}[{table_label}]"] += 1
            else:
                units = 0.0 if error else self._price_read(name, request, parsed or {})
                for scope in scopes:
                    scope.rru += units
                    scope.reads[f"{name}[{table_label}]"] += units
                    scope.requests[f"{name}[{table_label}]"] += 1
        except Exception as exc:  # noqa: BLE001
            self.unpriced[f"{name}: {type(exc).__name__}: {exc}"] += 1

    # --- pricing ----------------------------------------------------------------------------
    def _targets(self, name: str, request: Dict[str, Any]) -> List[Tuple[str, str, Item, Dict[str, Any]]]:
        """(operation, table, key, action) for every item the write touches."""
        result = []
        if name in ("PutItem", "UpdateItem", "DeleteItem"):
            table = request["TableName"]
            key = request.get("Key") or self.images.schema(table).key_of(request["Item"])
            result.append((name, table, key, request))
        elif name == "BatchWriteItem":
            for table, entries in request.get("RequestItems", {}).items():
                for entry in entries:
                    if "PutRequest" in entry:
                        item = entry["PutRequest"]["Item"]
                        result.append(("BatchWriteItem:Put", table, self.images.schema(table).key_of(item),
                                       {"Item": item}))
                    else:
                        result.append(("BatchWriteItem:Delete", table, entry["DeleteRequest"]["Key"], {}))
        elif name == "TransactWriteItems":
            for entry in request.get("TransactItems", []):
                (kind, action), = entry.items()
                table = action["TableName"]
                key = action.get("Key") or self.images.schema(table).key_of(action["Item"])
                result.append((f"TransactWriteItems:{kind}", table, key, action))
        return result

    def _price_writes(self, name: str, targets: list, befores: list, error: str) -> List[Write]:
        transactional = name == "TransactWriteItems"
        factor = 2 if transactional else 1
        writes = []
        if error:
            outcome = {"ConditionalCheckFailedException": "condition failed",
                       "TransactionCanceledException": "cancelled"}.get(error)
            for (operation, table, _, action), before in zip(targets, befores):
                if outcome is None:  # validation or throttling errors: nothing written, nothing billed
                    writes.append(Write(operation, table, f"error {error}", 0, 0))
                    continue
                # The larger of the existing item and the item a Put would have written (an
                # update's would-be image is not computed: the existing item stands for it).
                size = item_size(before)
                attempted = max(size, item_size(action.get("Item"))) if "Item" in action else size
                writes.append(Write(operation, table, outcome, factor * write_units(attempted), 0, size_before=size,
                                    size_after=size))
            return writes
        for (operation, table, key, action), before in zip(targets, befores):
            schema = self.images.schema(table)
            after = None if operation.endswith("Delete") or operation == "DeleteItem" else self.images.get(table, key)
            if operation.endswith("ConditionCheck"):
                after = before
            size_before, size_after = item_size(before), item_size(after)
            if operation.endswith("Delete") or operation == "DeleteItem" or operation.endswith("ConditionCheck"):
                base = write_units(size_before)
            else:
                base = write_units(max(size_before, size_after))
            index_total, actions = 0, {}
            if not operation.endswith("ConditionCheck"):
                for index in schema.indexes:
                    units, action_name = index_writes(index, schema.keys, before, after)
                    index_total += units
                    actions[index.name] = action_name
            writes.append(Write(operation, table, "ok", factor * base, index_total, actions, size_before, size_after))
        return writes

    def _full_size(self, table: str, item: Item) -> int:
        schema = self.images.schema(table)
        key = schema.key_of(item)
        if len(key) == len(schema.keys):
            full = self.images.get(table, key)
            if full is not None:
                return item_size(full)
        return item_size(item)

    def _price_read(self, name: str, request: Dict[str, Any], parsed: Dict[str, Any]) -> float:
        if name == "GetItem":
            table = request["TableName"]
            full = self.images.get(table, request["Key"])
            return _read_units(item_size(full), request.get("ConsistentRead", False))
        if name == "BatchGetItem":
            total = 0.0
            for table, spec in request.get("RequestItems", {}).items():
                for key in spec.get("Keys", []):
                    total += _read_units(item_size(self.images.get(table, key)), spec.get("ConsistentRead", False))
            return total
        if name == "TransactGetItems":
            total = 0.0
            for entry in request.get("TransactItems", []):
                get = entry["Get"]
                total += 2 * max(1, _blocks(item_size(self.images.get(get["TableName"], get["Key"])), READ_BLOCK))
            return total
        # Query / Scan: the items read, summed, rounded up to 4 KB once (index reads: the entries).
        table = request["TableName"]
        items = parsed.get("Items", [])
        if request.get("IndexName"):
            size = sum(item_size(i) for i in items)
        else:
            size = sum(self._full_size(table, i) for i in items)
        units = max(1, _blocks(size, READ_BLOCK))
        return float(units) if request.get("ConsistentRead") else units / 2


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, _blocks(size, READ_BLOCK))
    return float(units) if consistent else units / 2


def _tables_of(name: str, request: Dict[str, Any]) -> str:
    if "TableName" in request:
        return request["TableName"]
    if name in ("TransactWriteItems", "TransactGetItems"):
        return "+".join(next(iter(e.values()))["TableName"] for e in request.get("TransactItems", []))
    return "+".join(request.get("RequestItems", {}))


# ================================================================================================
# Self-test: known items into a table with one GSI, priced by hand
# ================================================================================================


def self_test(meter: WruMeter, client: Any, table: str) -> List[Tuple[str, float, float]]:
    """Create `table` (hash key pk, one ALL-projection GSI on g), run writes whose cost is known,
    and return (case, expected, measured) rows; the caller decides what a mismatch means.
    `client` is an ordinary (hooked) DynamoDB client; the table is deleted at the end."""
    rows: List[Tuple[str, float, float]] = []

    def check(case: str, expected: float, measured: float) -> None:
        rows.append((case, expected, measured))

    # Size rules on their own.
    check("size: S 'abc' named 'id' = 2 + 3 bytes", 5, item_size({"id": {"S": "abc"}}))
    check("size: N 1733100000000 named 'n' = 1 + (5 digits -> 3) + 1", 5, item_size({"n": {"N": "1733100000000"}}))
    check("size: N -12.50 named 'n' = 1 + (3 digits -> 2) + 1", 4, item_size({"n": {"N": "-12.50"}}))
    check("size: BOOL named 'ok' = 2 + 1", 3, item_size({"ok": {"BOOL": True}}))
    check("size: M {a: 'xy'} named 'm' = 1 + 3 + (1 + 1 + 2)", 8, item_size({"m": {"M": {"a": {"S": "xy"}}}}))
    check("size: L ['xy', 1] named 'l' = 1 + 3 + (1 + 2) + (1 + 2)", 10, item_size({"l": {"L": [{"S": "xy"}, {"N": "1"}]}}))
    check("size: S 'é☕' named 'é' = 2 + 5 bytes", 7, item_size({"é": {"S": "é☕"}}))

    with meter.paused():
        client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                  {"AttributeName": "g", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                            GlobalSecondaryIndexes=[{"IndexName": "by-g", "KeySchema": [{"AttributeName": "g",
                                                                                          "KeyType": "HASH"}],
                                                     "Projection": {"ProjectionType": "ALL"}}])
    meter.images.forget()

    def padded(pk: str, g: Optional[str], total: int) -> Item:
        item: Item = {"pk": {"S": pk}}
        if g is not None:
            item["g"] = {"S": g}
        item["pad"] = {"S": ""}
        item["pad"] = {"S": "x" * (total - item_size(item))}
        assert item_size(item) == total
        return item

    def cost(call: Callable[[], Any]) -> float:
        with meter.scope() as scope:
            try:
                call()
            except Exception as error:  # noqa: BLE001 - the conditional failures are the point
                if "ConditionalCheckFailed" not in type(error).__name__ and "TransactionCanceled" not in str(error):
                    raise
        return scope.wru

    try:
        check("PutItem 1024 B, not indexed (no g)", 1,
              cost(lambda: client.put_item(TableName=table, Item=padded("a", None, 1024))))
        check("PutItem 1025 B, not indexed", 2,
              cost(lambda: client.put_item(TableName=table, Item=padded("b", None, 1025))))
        check("PutItem 1500 B with g: 2 base + 2 GSI put", 4,
              cost(lambda: client.put_item(TableName=table, Item=padded("c", "x", 1500))))
        check("UpdateItem g x->y on the 1500 B item: 2 + GSI delete 2 + put 2", 6,
              cost(lambda: client.update_item(TableName=table, Key={"pk": {"S": "c"}}, UpdateExpression="SET g = :g",
                                              ExpressionAttributeValues={":g": {"S": "y"}})))
        check("UpdateItem that changes nothing (1500 B): 2 base, GSI 0", 2,
              cost(lambda: client.update_item(TableName=table, Key={"pk": {"S": "c"}}, UpdateExpression="SET g = :g",
                                              ExpressionAttributeValues={":g": {"S": "y"}})))
        check("UpdateItem of a projected attribute (100 B item): 1 + GSI update 1", 2,
              _projected_update(meter, client, table))
        check("PutItem condition attribute_not_exists on an existing 1500 B item: 2 (existing), no GSI", 2,
              cost(lambda: client.put_item(TableName=table, Item=padded("c", "z", 200),
                                           ConditionExpression="attribute_not_exists(pk)")))
        check("DeleteItem of the 1500 B indexed item: 2 + GSI delete 2", 4,
              cost(lambda: client.delete_item(TableName=table, Key={"pk": {"S": "c"}})))
        check("TransactWriteItems: Put 300 B indexed + Update 1025 B unindexed: 2x1 + 1 GSI + 2x2", 7,
              cost(lambda: client.transact_write_items(TransactItems=[
                  {"Put": {"TableName": table, "Item": padded("e", "x", 300)}},
                  {"Update": {"TableName": table, "Key": {"pk": {"S": "b"}}, "UpdateExpression": "SET #p = #p",
                             "ExpressionAttributeNames": {"#p": "pad"}}}])))
        check("TransactWriteItems cancelled (Put condition fails on 300 B item): 2 + 2 per item, no GSI", 4,
              cost(lambda: client.transact_write_items(TransactItems=[
                  {"Put": {"TableName": table, "Item": padded("e", "x", 300),
                           "ConditionExpression": "attribute_not_exists(pk)"}},
                  {"Put": {"TableName": table, "Item": padded("f", None, 100)}}])))
        check("BatchWriteItem: put 100 B indexed + delete 1025 B: (1 + 1) + 2", 4,
              cost(lambda: client.batch_write_item(RequestItems={table: [
                  {"PutRequest": {"Item": padded("g", "x", 100)}},
                  {"DeleteRequest": {"Key": {"pk": {"S": "b"}}}}]})))
        with meter.scope() as scope:
            client.get_item(TableName=table, Key={"pk": {"S": "a"}})
            client.get_item(TableName=table, Key={"pk": {"S": "a"}}, ConsistentRead=True)
            client.get_item(TableName=table, Key={"pk": {"S": "missing"}})
        check("GetItem 1024 B eventual 0.5 + strong 1 + missing 0.5 (RRU)", 2.0, scope.rru)
    finally:
        with meter.paused():
            client.delete_table(TableName=table)
        meter.images.forget()
    return rows


def _projected_update(meter: WruMeter, client: Any, table: str) -> float:
    """A 100 B indexed item gets a new non-key attribute: 1 base + 1 GSI update."""
    with meter.paused():
        item: Item = {"pk": {"S": "h"}, "g": {"S": "x"}, "pad": {"S": ""}}
        item["pad"] = {"S": "x" * (100 - item_size(item))}
        client.put_item(TableName=table, Item=item)
    with meter.scope() as scope:
        client.update_item(TableName=table, Key={"pk": {"S": "h"}}, UpdateExpression="SET n = :n",
                           ExpressionAttributeValues={":n": {"N": "1"}})
    return scope.wru
