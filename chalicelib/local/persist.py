"""Durable local data for `make run`: moto keeps DynamoDB and SQS in memory; this keeps a copy
on disk that survives restarts, crashes and Ctrl-C.

Design: moto stays the query engine (the app makes exactly the boto3/pynamodb calls it makes in
AWS). A WSGI layer in front of moto's server writes through, in the same request, to one SQLite
file (`<data dir>/local.sqlite3`, WAL mode):

- DynamoDB: after every successful mutating call (PutItem, UpdateItem, DeleteItem, BatchWriteItem,
  TransactWriteItems, DeleteTable) the *resulting image* of every item the call named is read
  back from moto and upserted (or deleted) in one SQLite transaction, before the HTTP answer
  leaves. Replaying images needs no condition evaluation and is order-independent per item.
- SQS: SendMessage(Batch) rows (queue, moto's MessageId, body, attributes) are inserted before the
  answer; DeleteMessage(Batch) removes them (receipt handles are mapped to message ids from the
  ReceiveMessage answers), PurgeQueue/DeleteQueue remove a queue's rows.

DynamoDB requests are serialized by one lock (moto's tables are plain dicts; concurrent requests
could see a dict change size during a scan), which also keeps the journal in the order moto
applied the writes. A webhook is acknowledged only after its SendMessage returned, so whatever a
platform got a 200 for is in SQLite; at start `restore()` puts every item and every unprocessed
message back into moto before the pumps run.

Not kept: Step Functions executions (the SLA waits in flight). After a restart the SLA sweeper
(run once at start, then every minute) records the warnings and breaches that no timer recorded.
Messages moto moved to a dead-letter queue on its own come back in their source queue.
"""
from __future__ import annotations

import base64
import errno
import fcntl
import io
import json
import os
import sqlite3
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

DB_NAME = "local.sqlite3"
_DDB_PREFIX = "DynamoDB_20120810."
_SQS_PREFIX = "AmazonSQS."
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems",
                             "DeleteTable"})
SQS_WRITES = frozenset({"SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessage", "DeleteMessageBatch",
                        "PurgeQueue", "DeleteQueue"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    tbl TEXT NOT NULL, hkey TEXT NOT NULL, rkey TEXT NOT NULL, item TEXT NOT NULL,
    PRIMARY KEY (tbl, hkey, rkey)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY, queue TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL,
    attributes TEXT NOT NULL, sent_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, seq);
"""


def default_data_dir(project_dir: str) -> str:
    return os.environ.get("SOCIALINBOX_DATA_DIR") or os.path.join(project_dir, ".localdata")


def _bytes_out(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return {"__bytes__": base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError(f"{type(value).__name__} in an item image")


def _bytes_in(value: Dict[str, Any]) -> Any:
    return base64.b64decode(value["__bytes__"]) if len(value) == 1 and "__bytes__" in value else value


def _dump(item: Dict[str, Any]) -> str:
    """moto's in-memory image as JSON: binary values stay bytes after _load."""
    return json.dumps(item, separators=(",", ":"), default=_bytes_out)


def _load(text: str) -> Dict[str, Any]:
    return json.loads(text, object_hook=_bytes_in)


def _key_text(value: Optional[Dict[str, Any]]) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"), default=_bytes_out)


def _queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


class Journal:
    """The SQLite side. Every method is called with the caller holding whatever ordering it
    needs; the connection itself is guarded by its own lock."""

    def __init__(self, data_dir: str, synchronous: str = "NORMAL") -> None:
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, DB_NAME)
        # One `make run` per data directory: a second emulator would diverge from the first.
        self._lock_file = open(os.path.join(data_dir, "lock"), "a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            raise OSError(errno.EBUSY, f"{data_dir} is in use by another make run")
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self.synchronous = synchronous
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM messages").fetchone()
        self._seq = int(row[0])
        self.writes = 0

    def close(self) -> None:
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._db.close()
        self._lock_file.close()

    def _transaction(self, statements: Iterable[Tuple[str, Tuple[Any, ...]]], fsync: bool = False) -> None:
        """One atomic SQLite transaction. WAL commits are ordered: after a power loss a suffix of
        them may be missing, never one in the middle; a process crash (kill -9) loses none. With
        `fsync` the WAL is flushed to the disk before returning (acknowledged deliveries), and
        with it every earlier commit."""
        statements = list(statements)
        if not statements:
            return
        with self._lock:
            if fsync:
                self._db.execute("PRAGMA synchronous=FULL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for sql, params in statements:
                        self._db.execute(sql, params)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            finally:
                if fsync:
                    self._db.execute(f"PRAGMA synchronous={self.synchronous}")
            self.writes += 1

    # DynamoDB ---------------------------------------------------------------------------------
    def put_images(self, images: List[Tuple[str, str, str, Optional[Dict[str, Any]]]]) -> None:
        """(table, hash key text, range key text, item attributes or None for deleted)."""
        self._transaction(
            ("INSERT OR REPLACE INTO items (tbl, hkey, rkey, item) VALUES (?, ?, ?, ?)",
             (table, h, r, _dump(item)))
            if item is not None else
            ("DELETE FROM items WHERE tbl = ? AND hkey = ? AND rkey = ?", (table, h, r))
            for table, h, r, item in images)

    def drop_table(self, table: str) -> None:
        self._transaction([("DELETE FROM items WHERE tbl = ?", (table,))])

    def items(self) -> Iterable[Tuple[str, Dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute("SELECT tbl, item FROM items").fetchall()
        for table, item in rows:
            yield table, _load(item)

    # SQS ----------------------------------------------------------------------------------------
    def sent(self, messages: List[Tuple[str, str, str, Dict[str, Any]]], fsync: bool = True) -> None:
        """(queue name, message id, body, {MessageAttributes, DelaySeconds, ...}). `fsync` for
        what a platform is acknowledged for (the ingest queue); the app's own queues (SLA
        timers, outbox) are committed like its DynamoDB writes: kept through kill -9, not
        forced to the disk (a forced commit cost ~28 ms per SendMessage under load)."""
        now = time.time()
        statements = []
        for queue, message_id, body, attributes in messages:
            self._seq += 1
            statements.append(("INSERT OR REPLACE INTO messages (message_id, queue, seq, body, attributes, sent_at) "
                               "VALUES (?, ?, ?, ?, ?, ?)",
                               (message_id, queue, self._seq, body, json.dumps(attributes), now)))
        self._transaction(statements, fsync=fsync)

    def deleted(self, message_ids: List[str]) -> None:
        self._transaction(("DELETE FROM messages WHERE message_id = ?", (m,)) for m in message_ids)

    def purged(self, queue: str) -> None:
        self._transaction([("DELETE FROM messages WHERE queue = ?", (queue,))])

    def queued(self) -> List[Tuple[str, str, str, Dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute("SELECT message_id, queue, body, attributes FROM messages ORDER BY seq").fetchall()
        return [(message_id, queue, body, json.loads(attributes)) for message_id, queue, body, attributes in rows]

    def replace_message_id(self, old: str, new: str) -> None:
        self._transaction([("UPDATE messages SET message_id = ? WHERE message_id = ?", (new, old))])

    def counts(self) -> Dict[str, int]:
        with self._lock:
            items = self._db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
            messages = self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        return {"items": int(items), "messages": int(messages)}


# --- moto's side (private API of moto 5.2.5; tests/test_local_persistence.py pins it) --------

def _account_region() -> Tuple[str, str]:
    from moto.core import DEFAULT_ACCOUNT_ID

    return DEFAULT_ACCOUNT_ID, os.environ.get("AWS_DEFAULT_REGION", "us-east-1")


def _dynamodb_backend() -> Any:
    from moto.dynamodb.models import dynamodb_backends

    account, region = _account_region()
    return dynamodb_backends[account][region]


def _sqs_backend() -> Any:
    from moto.sqs.models import sqs_backends

    account, region = _account_region()
    return sqs_backends[account][region]


def _touched(op: str, request: Dict[str, Any]) -> List[Tuple[str, Dict[str, Any]]]:
    """(table, key or whole item) for every item a write names."""
    if op == "PutItem":
        return [(request["TableName"], request["Item"])]
    if op in ("UpdateItem", "DeleteItem"):
        return [(request["TableName"], request["Key"])]
    if op == "BatchWriteItem":
        return [(table, (entry.get("PutRequest") or {}).get("Item") or (entry.get("DeleteRequest") or {}).get("Key"))
                for table, entries in request.get("RequestItems", {}).items() for entry in entries]
    if op == "TransactWriteItems":
        touched = []
        for entry in request.get("TransactItems", []):
            for kind, body in entry.items():
                if kind in ("Put", "Update", "Delete"):
                    touched.append((body["TableName"], body["Item"] if kind == "Put" else body["Key"]))
        return touched
    return []


def item_images(op: str, request: Dict[str, Any]) -> List[Tuple[str, str, str, Optional[Dict[str, Any]]]]:
    """The current moto image of every item the write named."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    backend = _dynamodb_backend()
    images = []
    for table_name, attrs in _touched(op, request):
        table = backend.tables.get(table_name)
        if table is None or not attrs:
            continue
        h = attrs[table.hash_key_attr]
        r = attrs.get(table.range_key_attr) if table.range_key_attr else None
        item = table.get_item(DynamoType(h), DynamoType(r) if r is not None else None)
        images.append((table_name, _key_text(h), _key_text(r), item.to_json()["Attributes"] if item else None))
    return images


def restore(journal: Journal) -> Dict[str, int]:
    """Put the journal's items and queued messages into moto (tables and queues must exist).
    Straight into moto's models: no HTTP round trip per item, nothing journaled again."""
    backend = _dynamodb_backend()
    items = 0
    for table_name, attrs in journal.items():
        table = backend.tables.get(table_name)
        if table is None:
            continue
        table.put_item(attrs, overwrite=True)
        items += 1
    sqs = _sqs_backend()
    messages = 0
    for message_id, queue, body, attributes in journal.queued():
        if queue not in sqs.queues:
            continue
        message = sqs.send_message(queue, body, message_attributes=attributes.get("MessageAttributes") or None,
                                   delay_seconds=0)
        message.id = message_id  # keep the id: the journal's row (and any log line) still match
        messages += 1
    return {"items": items, "messages": messages}


class JournalingApp:
    """WSGI wrapper around moto's server app: writes through to the journal before answering."""

    def __init__(self, app: Callable[..., Any], journal: Journal) -> None:
        self.app, self.journal = app, journal
        self.dynamodb_lock = threading.RLock()
        self._receipts: Dict[str, str] = {}
        self._receipts_lock = threading.Lock()
        #: "Service.Operation" -> [requests, seconds answering, seconds waiting for the lock]
        self.stats: Dict[str, List[float]] = {}

    def __call__(self, environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        began = time.perf_counter()
        waited = [0.0]
        try:
            return self._dispatch(target, environ, start_response, waited)
        finally:
            name = target.replace(_DDB_PREFIX, "DynamoDB.").replace(_SQS_PREFIX, "SQS.") or "other"
            if name in ("DynamoDB.Query", "DynamoDB.Scan"):
                name += environ.get("socialinbox.read_target", "")
            with self._receipts_lock:
                row = self.stats.setdefault(name, [0, 0.0, 0.0])
                row[0] += 1
                row[1] += time.perf_counter() - began
                row[2] += waited[0]

    @staticmethod
    def fsync_queue(queue: str) -> bool:
        """Sends forced to the disk before the answer: the ingest queue (and its dead letters), and
        the queues where `make run` keeps the webhooks' asynchronous invocations of the processor
        (chalicelib.local.async_invoke), whose SendMessage is what a webhook's 200 stands for."""
        return queue.endswith(("-ingest", "-ingest-dlq")) or "-async-" in queue

    def stats_summary(self, top: int = 12) -> Dict[str, Dict[str, float]]:
        rows = sorted(self.stats.items(), key=lambda kv: -kv[1][1])[:top]
        return {name: {"requests": int(n), "seconds": round(t, 1), "lock_wait_s": round(w, 1),
                       "ms_each": round(1000 * t / n, 1) if n else 0.0} for name, (n, t, w) in rows}

    def _dispatch(self, target: str, environ: Dict[str, Any], start_response: Callable[..., Any],
                  waited: List[float]) -> Iterable[bytes]:
        if target.startswith(_DDB_PREFIX):
            op = target[len(_DDB_PREFIX):]
            asked = time.perf_counter()
            if op in ("Query", "Scan"):  # which table and index (stats only)
                try:
                    read = json.loads(self._read_body(environ) or b"{}")
                    table = str(read.get("TableName", "")).split("-", 2)[-1]
                    environ["socialinbox.read_target"] = f"[{table}/{read.get('IndexName', '')}]"
                except ValueError:
                    pass
            with self.dynamodb_lock:
                waited[0] = time.perf_counter() - asked
                if op not in DYNAMODB_WRITES:
                    return self._call(environ, start_response)[2]
                body = self._read_body(environ)
                status, headers, chunks = self._call(environ, None)
                if status.startswith("200"):
                    request = json.loads(body or b"{}")
                    if op == "DeleteTable":
                        self.journal.drop_table(request.get("TableName", ""))
                    else:
                        self.journal.put_images(item_images(op, request))
                start_response(status, headers)
                return chunks
        if target.startswith(_SQS_PREFIX) and target[len(_SQS_PREFIX):] in SQS_WRITES:
            op = target[len(_SQS_PREFIX):]
            body = self._read_body(environ)
            status, headers, chunks = self._call(environ, None)
            if status.startswith("200"):
                self._sqs(op, json.loads(body or b"{}"), json.loads(b"".join(chunks) or b"{}"))
            start_response(status, headers)
            return chunks
        return self.app(environ, start_response)

    @staticmethod
    def _read_body(environ: Dict[str, Any]) -> bytes:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        return body

    def _call(self, environ: Dict[str, Any], start_response: Optional[Callable[..., Any]]
              ) -> Tuple[str, List[Tuple[str, str]], List[bytes]]:
        captured: Dict[str, Any] = {}

        def capture(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, headers
            return lambda data: captured.setdefault("written", []).append(data)

        result = self.app(environ, capture)
        try:
            chunks = captured.pop("written", []) + list(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        if start_response is not None:
            start_response(captured["status"], captured["headers"])
        return captured["status"], captured["headers"], chunks

    def _sqs(self, op: str, request: Dict[str, Any], answer: Dict[str, Any]) -> None:
        queue = _queue_name(request.get("QueueUrl", ""))
        if op == "SendMessage":
            self.journal.sent([(queue, answer["MessageId"], request["MessageBody"], _send_attributes(request))],
                              fsync=self.fsync_queue(queue))
        elif op == "SendMessageBatch":
            entries = {e["Id"]: e for e in request.get("Entries", [])}
            self.journal.sent([(queue, ok["MessageId"], entries[ok["Id"]]["MessageBody"],
                                _send_attributes(entries[ok["Id"]]))
                               for ok in answer.get("Successful", []) if ok.get("Id") in entries],
                              fsync=self.fsync_queue(queue))
        elif op == "ReceiveMessage":
            with self._receipts_lock:
                if len(self._receipts) > 200_000:  # handles nobody deleted (expired visibility)
                    self._receipts.clear()
                for message in answer.get("Messages", []):
                    self._receipts[message["ReceiptHandle"]] = message["MessageId"]
        elif op == "DeleteMessage":
            self._delete([request.get("ReceiptHandle", "")])
        elif op == "DeleteMessageBatch":
            ok = {e["Id"] for e in answer.get("Successful", [])}
            self._delete([e["ReceiptHandle"] for e in request.get("Entries", []) if e.get("Id") in ok])
        elif op in ("PurgeQueue", "DeleteQueue"):
            self.journal.purged(queue)

    def _delete(self, handles: List[str]) -> None:
        with self._receipts_lock:
            ids = [self._receipts.pop(h) for h in handles if h in self._receipts]
        if ids:
            self.journal.deleted(ids)


def _send_attributes(request: Dict[str, Any]) -> Dict[str, Any]:
    return {k: request[k] for k in ("MessageAttributes", "DelaySeconds", "MessageGroupId", "MessageDeduplicationId")
            if k in request}
