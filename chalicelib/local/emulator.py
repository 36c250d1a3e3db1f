"""The AWS emulator of `make run`: moto's server app behind the durable journal (persist.py),
plus targeted adjustments of moto 5.2.5 that keep it flat as data grows. Local mode only:
nothing here is imported by the deployed code path, and the app's boto3/pynamodb calls are the
ones it makes in AWS.

Adjustments (tests/test_local_persistence.py and tests/test_local_scale.py fail loudly when
moto's internals they rely on change):

1. TransactWriteItems. moto deep-copies *every table a transaction touches* before applying it,
   to roll back on failure (`original_table_state[...] = copy.deepcopy(self.tables[name])` in
   `DynamoDBBackend.transact_write_items`). One transaction per stored message made message N
   cost O(N) time and garbage: ~1-2 envelopes/s and ~5 GB at ~3,000 messages. Here the table
   copy is skipped (moto's own rollback then puts the same table object back: a no-op) and the
   wrapper snapshots only the items the transaction names, restoring exactly those on failure.
2. SQS attributes. Every SendMessage reads `queue.attributes` for ContentBasedDeduplication,
   and every ReceiveMessage reads MessageRetentionPeriod per message through
   `get_queue_attributes`; both compute ApproximateNumberOfMessages* over all stored messages
   (O(backlog) three times). Here the three counts are computed only when a caller asked for
   them (GetQueueAttributes with All or one of those names).
3. SQS scans (profiled under a 2,000-envelope backlog, 2026-12-02). moto evaluates
   `Message.visible` and `Message.delayed` per stored message, each reading the clock through
   datetime arithmetic (~3 us), and `SQSBackend.get_queue_attributes` evaluates
   `Queue.attributes` (all three counts) once per requested name, plus once to validate: one
   GetQueueAttributes of two counts took 1.0-1.6 s at 2,157 queued and held the GIL the pump and
   the API needed. DeleteMessage scanned the whole queue twice per receipt handle and rebuilt the
   list (racing concurrent SendMessage appends). Here: the clock is read once per scan,
   `Queue.attributes` is computed once per GetQueueAttributes call, and DeleteMessage finds the
   message through an index of receipt handles and removes it in place.
4. DynamoDB Query. `Table.query` starts from `Table.all_items()`: every item of the table,
   *sorted* (O(N log N) with Python key functions), then keeps the queried partition; one
   Query of a conversation's messages cost O(all messages), and every message stored runs
   several (messages, events, search tokens, notifications). Here, inside a Query, a base-table
   query starts from its partition (`Table.items[hash]`) and an index query from the unsorted
   items (it sorts its matches by index and table keys itself, a total order). Results and
   their order are moto's (tests/test_local_scale.py compares them). Index matches are sorted
   on key values cast once per item (moto casts per comparison), and two strings compare their
   values without `cast_value`'s type checks (DynamoType ==, !=).
5. Per request, moto's server listed its own package directory (~200 isdir calls) to route the
   request; the listing is taken once.
6. HTTP keep-alive (profiled 2026-12-02). Werkzeug's server answers "Connection: close", so
   every boto3 call opened a TCP connection and the server started a thread for it; the
   emulator's handler keeps the connection open (`keep_alive_handler`), ~25 % less CPU per
   round trip.
7. Step Functions executions. moto keeps every execution it ran (and every interpreter thread
   in `TMP_THREADS`), ~40 KB each, and scans that list on each StartExecution/StopExecution;
   a state machine now keeps its running executions and its newest finished ones
   (`FINISHED_EXECUTIONS_KEPT`).
"""
from __future__ import annotations

import copy as _copy
import functools
import threading
from typing import Any, Dict, List, Optional, Tuple

_state = threading.local()

#: Counts moto computes over every stored message of a queue.
_COUNT_ATTRIBUTES = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                     "ApproximateNumberOfMessagesDelayed")
_COUNT_PROPERTIES = ("approximate_number_of_messages", "approximate_number_of_messages_not_visible",
                     "approximate_number_of_messages_delayed")


class _TableCopySkipper:
    """Stands in for the `copy` module inside moto.dynamodb.models: while a transaction runs in
    this thread, a deep copy of a whole Table is the Table itself; everything else is copied."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Optional[Dict[int, Any]] = None) -> Any:
        from moto.dynamodb.models.table import Table

        if getattr(_state, "in_transaction", False) and isinstance(value, Table):
            _state.tables_not_copied = getattr(_state, "tables_not_copied", 0) + 1
            return value
        return _copy.deepcopy(value, memo)


def _item_key(table: Any, kind: str, body: Dict[str, Any]) -> Optional[Tuple[Any, Any]]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    attrs = body.get("Item") if kind == "Put" else body.get("Key")
    if not isinstance(attrs, dict) or table.hash_key_attr not in attrs:
        return None
    h = DynamoType(attrs[table.hash_key_attr])
    r = None
    if table.range_key_attr is not None:
        if table.range_key_attr not in attrs:
            return None
        r = DynamoType(attrs[table.range_key_attr])
    return h, r


def _snapshot(backend: Any, transact_items: List[Dict[str, Any]]) -> List[Tuple[Any, Any, Any, Any]]:
    saved = []
    for entry in transact_items if isinstance(transact_items, list) else []:
        for kind, body in (entry.items() if isinstance(entry, dict) else []):
            table = backend.tables.get(body.get("TableName")) if isinstance(body, dict) else None
            if table is None or kind not in ("Put", "Update", "Delete"):
                continue
            key = _item_key(table, kind, body)
            if key is None:
                continue
            current = table.get_item(key[0], key[1])
            saved.append((table, key[0], key[1], _copy.deepcopy(current)))
    return saved


def _roll_back(saved: List[Tuple[Any, Any, Any, Any]]) -> None:
    for table, h, r, item in reversed(saved):
        if item is None:
            if r is not None:
                table.items.get(h, {}).pop(r, None)
            else:
                table.items.pop(h, None)
        elif r is not None:
            table.items[h][r] = item
        else:
            table.items[h] = item


def _transact_write_items(original: Any) -> Any:
    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: List[Dict[str, Any]]) -> None:
        saved = _snapshot(self, transact_items)
        _state.in_transaction = True
        try:
            return original(self, transact_items)
        except BaseException:
            _roll_back(saved)
            raise
        finally:
            _state.in_transaction = False

    transact_write_items.__socialinbox_local__ = True  # type: ignore[attr-defined]
    return transact_write_items


def _now_ms() -> float:
    from moto.core.utils import unix_time_millis

    return unix_time_millis()


def _count_visible(queue: Any) -> int:
    now = _now_ms()
    return sum(1 for m in list(queue._messages) if now > m.visible_at and not now < m.delayed_until)


def _count_not_visible(queue: Any) -> int:
    now = _now_ms()
    return sum(1 for m in list(queue._messages) if not now > m.visible_at)


def _count_delayed(queue: Any) -> int:
    now = _now_ms()
    return sum(1 for m in list(queue._messages) if now < m.delayed_until)


#: Same results as moto's properties (Message.visible / Message.delayed), one clock read per scan.
_FAST_COUNTS = {"approximate_number_of_messages": _count_visible,
                "approximate_number_of_messages_not_visible": _count_not_visible,
                "approximate_number_of_messages_delayed": _count_delayed}


def _lazy_count(name: str) -> property:
    def getter(self: Any) -> int:
        if getattr(_state, "want_counts", True):
            return _FAST_COUNTS[name](self)
        return 0

    return property(getter)


def _visible_messages(self: Any) -> List[Any]:
    """moto's `Queue.messages` (visible and not delayed), reading the clock once."""
    now = _now_ms()
    return [m for m in list(self._messages) if now > m.visible_at and not now < m.delayed_until]


def _attributes_once(original: property) -> property:
    """`Queue.attributes`, computed once per GetQueueAttributes call (moto asks for it per name)."""
    def getter(self: Any) -> Dict[str, Any]:
        cache = getattr(_state, "attributes", None)
        if cache is None:
            return original.fget(self)
        key = id(self)
        if key not in cache:
            cache[key] = original.fget(self)
        return dict(cache[key])

    return property(getter)


#: receipt handle -> moto Message, for every handle ReceiveMessage gave out and nobody deleted.
_RECEIPTS: Dict[str, Any] = {}


def _mark_received(original: Any) -> Any:
    @functools.wraps(original)
    def mark_received(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        _RECEIPTS[self.receipt_handle] = self

    return mark_received


def _delete_message(original: Any) -> Any:
    @functools.wraps(original)
    def delete_message(self: Any, receipt_handle: str) -> None:
        if receipt_handle in self.deleted_messages:
            return
        message = _RECEIPTS.get(receipt_handle)
        if message is None or message not in self._messages:  # identity, C speed
            return original(self, receipt_handle)  # moto's answer (ReceiptHandleIsInvalid, ...)
        self.pending_messages.discard(message)
        self.deleted_messages.update(message.all_receipt_handles)
        try:
            self._messages.remove(message)  # in place: a concurrent append is not lost
        except ValueError:
            pass  # deleted concurrently
        for handle in message.all_receipt_handles:
            _RECEIPTS.pop(handle, None)

    return delete_message


def _get_queue_attributes(original: Any) -> Any:
    @functools.wraps(original)
    def get_queue_attributes(self: Any, queue_name: str, attribute_names: List[str]) -> Dict[str, Any]:
        names = attribute_names or []
        previous = getattr(_state, "want_counts", True), getattr(_state, "attributes", None)
        _state.want_counts = "All" in names or any(n in _COUNT_ATTRIBUTES for n in names)
        _state.attributes = {}
        try:
            return original(self, queue_name, attribute_names)
        finally:
            _state.want_counts, _state.attributes = previous

    return get_queue_attributes


def _send_without_counts(original: Any) -> Any:
    @functools.wraps(original)
    def send(self: Any, *args: Any, **kwargs: Any) -> Any:
        previous = getattr(_state, "want_counts", True)
        _state.want_counts = False
        try:
            return original(self, *args, **kwargs)
        finally:
            _state.want_counts = previous

    return send


def _listed_once(original: Any) -> Any:
    """moto's server lists its package directory (os.listdir + ~200 isdir) on every request to
    find the backend for the Host header; the list never changes while the process runs."""
    listed: List[Tuple[str, ...]] = []

    @functools.wraps(original)
    def list_of_moto_modules() -> Tuple[str, ...]:
        if not listed:
            listed.append(tuple(original()))
        return listed[0]

    return list_of_moto_modules


def _dynamodb_table(name: str) -> Any:
    """moto's Table object (tests)."""
    from chalicelib.local.persist import _dynamodb_backend

    return _dynamodb_backend().tables[name]


def _sqs_queue(name: str) -> Any:
    """moto's Queue object (tests)."""
    from chalicelib.local.persist import _sqs_backend

    return _sqs_backend().queues[name]


def _query(original: Any) -> Any:
    @functools.wraps(original)
    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        previous = getattr(_state, "query", None)
        _state.query = (self, None if index_name else hash_key)
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            _state.query = previous

    query.__socialinbox_local__ = True  # type: ignore[attr-defined]
    return query


def _all_items(original: Any) -> Any:
    """Inside Table.query only: the items of the queried partition (base table), or every item
    unsorted (index: the query sorts its matches by the index and table keys itself). Elsewhere
    (Scan, exports) moto's sorted list of every item."""
    @functools.wraps(original)
    def all_items(self: Any) -> List[Any]:
        current = getattr(_state, "query", None)
        if current is None or current[0] is not self:
            from moto.dynamodb.models.table import Table

            return _ORIGINALS.get((Table, "all_items"), original)(self)
        hash_key = current[1]
        if hash_key is None:
            if self.range_key_attr:
                return [item for partition in self.items.values() for item in partition.values()]
            return list(self.items.values())
        partition = self.items.get(hash_key)
        if partition is None:
            return []
        return list(partition.values()) if self.range_key_attr else [partition]

    return all_items


def _sorted_items(original: Any) -> Any:
    """moto's order (DynamoType compares by `cast_value`, which builds a Decimal per number per
    comparison): the same key values, cast once per item instead of once per comparison."""
    @functools.wraps(original)
    def sorted_items(self: Any, hash_key_attrs: List[str], range_key_attrs: List[Optional[str]],
                     items: List[Any]) -> List[Any]:
        attrs = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
        items.sort(key=lambda x: tuple([_comparable(x.attrs[key]) for key in attrs]))
        return items

    return sorted_items


#: DynamoDB types whose `cast_value` is their value as stored (moto: none of the number, set,
#: list, map or null branches applies).
_AS_STORED = frozenset({"S", "B", "BOOL"})


def _comparable(value: Any) -> Any:
    """`DynamoType.cast_value` without its five type checks for strings and binaries."""
    return value.value if value.type in _AS_STORED else value.cast_value


def _fast_equality(original: Any, negate: bool) -> Any:
    """DynamoType ==/!= compares `cast_value`s (five type checks each side, a Decimal per
    number); an index Query compares every item of the table this way. Two strings (binaries,
    booleans) of the same type compare their values directly: the same answer."""
    @functools.wraps(original)
    def compare(self: Any, other: Any) -> bool:
        kind = self.type
        if kind in _AS_STORED and getattr(other, "type", None) == kind:
            return (self.value != other.value) if negate else (self.value == other.value)
        return original(self, other)

    return compare


#: Finished Step Functions executions kept per state machine, newest first (running ones are
#: always kept). AWS keeps them for 90 days; the local stack never reads old ones back.
FINISHED_EXECUTIONS_KEPT = 500
#: How many starts between two trims (a trim scans the list once).
_TRIM_EVERY = 50


def _is_running(execution: Any) -> bool:
    status = getattr(execution, "exec_status", None) or getattr(execution, "status", None)
    return status == "RUNNING"  # ExecutionStatus is a str Enum


def forget_finished_executions(executions: List[Any], keep: Optional[int] = None) -> int:
    """Drop all but the newest `keep` (FINISHED_EXECUTIONS_KEPT) finished executions from a state
    machine's list, in place (running ones stay); returns how many were dropped."""
    keep = FINISHED_EXECUTIONS_KEPT if keep is None else keep
    finished = [e for e in executions if not _is_running(e)]
    if len(finished) <= keep:
        return 0
    dropped = {id(e) for e in finished[:len(finished) - keep]}  # the list is in start order
    executions[:] = [e for e in executions if id(e) not in dropped]
    return len(dropped)


def _forget_finished_threads() -> None:
    """moto's interpreter appends every thread it starts to `TMP_THREADS` (for its own test
    teardown) and never removes one: finished ones are dropped here."""
    from moto.stepfunctions.parser.utils import TMP_THREADS

    TMP_THREADS[:] = [thread for thread in list(TMP_THREADS) if thread.is_alive()]


def _bounded_start_execution(original: Any) -> Any:
    """moto keeps every execution it ever ran (~40 KB each: the state machine's deep copy, the
    interpreter's environment and event history, its locks), and StartExecution / StopExecution /
    DescribeExecution scan that list: one execution per conversation turn grew the emulator by
    the month. Here a state machine keeps its running executions and its newest finished ones.
    A name can then be started again once its execution is forgotten (AWS refuses that for 90
    days): harmless here, the SLA timers consumer records each turn's warning and breach once,
    as it does after a restart (executions are not journaled)."""
    lock = threading.Lock()
    starts = [0]

    @functools.wraps(original)
    def start_execution(self: Any, state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
        with lock:  # an append and a trim of the same list never interleave
            execution = original(self, state_machine_arn, *args, **kwargs)
            starts[0] += 1
            if starts[0] % _TRIM_EVERY == 0:
                forget_finished_executions(self.describe_state_machine(state_machine_arn).executions)
                _forget_finished_threads()
        return execution

    start_execution.__socialinbox_local__ = True  # type: ignore[attr-defined]
    return start_execution


#: States whose components keep per-run state (iterations, branches): a definition holding one is
#: parsed for every execution, as moto does.
_STATEFUL_STATE_TYPES = ('"Map"', '"Parallel"')


def _parsed_once(original: Any) -> Any:
    """moto's interpreter parses the state machine's ASL with ANTLR for every execution (~12 % of
    the emulator's CPU in a soak: one execution per conversation turn). The parsed program of a
    definition made of Wait/Task/Choice/Pass/Succeed/Fail states holds no per-run state (each run
    has its own Environment), so it is kept per definition text."""
    cache: Dict[str, Any] = {}
    lock = threading.Lock()

    @functools.wraps(original)
    def parse(definition: str) -> Any:
        if any(kind in definition for kind in _STATEFUL_STATE_TYPES):
            return original(definition)
        with lock:
            if definition not in cache:
                if len(cache) >= 64:
                    cache.clear()
                cache[definition] = original(definition)
            return cache[definition]

    parse.__socialinbox_local__ = True  # type: ignore[attr-defined]
    return staticmethod(parse)


def _client_once(original: Any) -> Any:
    """moto's Task states build a new boto3 client for every service call (~4 % of the emulator's
    CPU); boto3 clients are safe to share between threads, so one per (region, service,
    endpoint) is kept. A task run with explicit credentials keeps moto's path."""
    cache: Dict[Tuple[Any, ...], Any] = {}
    lock = threading.Lock()

    @functools.wraps(original)
    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        if state_credentials is not None:
            return original(region, service, state_credentials)
        from moto.core.models import botocore_stubber
        from moto.settings import moto_server_port

        key = (region, service, bool(botocore_stubber.enabled), moto_server_port())
        with lock:
            if key not in cache:
                cache[key] = original(region, service)
            return cache[key]

    boto_client_for.__socialinbox_local__ = True  # type: ignore[attr-defined]
    return boto_client_for


def _replace_everywhere(package: str, name: str, original: Any, value: Any) -> None:
    """`from x import f` binds f in every importing module: each binding under `package` that is
    still moto's original is replaced (and restored by remove_local_adjustments)."""
    import sys

    for module_name, module in list(sys.modules.items()):
        if module is not None and module_name.startswith(package) and getattr(module, name, None) is original:
            _replace(module, name, value)


#: (owner, attribute) -> what moto had there before apply_local_adjustments().
_ORIGINALS: Dict[Tuple[Any, str], Any] = {}


def _replace(owner: Any, name: str, value: Any) -> None:
    _ORIGINALS[(owner, name)] = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    setattr(owner, name, value)


def apply_local_adjustments() -> None:
    """Idempotent; only `make run` (and the tests of these adjustments) call it."""
    if _ORIGINALS:
        return
    import moto.dynamodb.models as dynamodb_models
    from moto.sqs.models import Message, Queue, SQSBackend

    backend_cls = dynamodb_models.DynamoDBBackend
    _replace(dynamodb_models, "copy", _TableCopySkipper())
    _replace(backend_cls, "transact_write_items", _transact_write_items(backend_cls.transact_write_items))
    from moto.dynamodb.models.table import Table

    _replace(Table, "query", _query(Table.query))
    _replace(Table, "all_items", _all_items(Table.all_items))
    _replace(Table, "sorted_items", _sorted_items(Table.sorted_items))
    from moto.dynamodb.models.dynamo_type import DynamoType

    _replace(DynamoType, "__eq__", _fast_equality(DynamoType.__eq__, negate=False))
    _replace(DynamoType, "__ne__", _fast_equality(DynamoType.__ne__, negate=True))
    for name in _COUNT_PROPERTIES:
        _replace(Queue, name, _lazy_count(name))
    _replace(SQSBackend, "get_queue_attributes", _get_queue_attributes(SQSBackend.get_queue_attributes))
    for name in ("send_message", "send_message_batch", "receive_message"):
        _replace(SQSBackend, name, _send_without_counts(getattr(SQSBackend, name)))
    _replace(Queue, "messages", property(_visible_messages))
    _replace(Queue, "attributes", _attributes_once(Queue.__dict__["attributes"]))
    _replace(Queue, "delete_message", _delete_message(Queue.delete_message))
    _replace(Message, "mark_received", _mark_received(Message.mark_received))
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    _replace(StepFunctionsParserBackend, "start_execution",
             _bounded_start_execution(StepFunctionsParserBackend.start_execution))
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    _replace(AmazonStateLanguageParser, "parse", _parsed_once(AmazonStateLanguageParser.parse))
    import moto.stepfunctions.parser.asl.utils.boto_client as sfn_boto_client
    import moto.stepfunctions.parser.asl.utils.json_path as sfn_json_path
    # Importing the service tasks binds their `boto_client_for` before it is replaced below.
    import moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs  # noqa: F401

    original_client = sfn_boto_client.boto_client_for
    _replace_everywhere("moto.stepfunctions.parser", "boto_client_for", original_client, _client_once(original_client))
    # Every JSONPath of every state (InputPath, "x.$" parameters) was parsed with PLY per use;
    # parsed paths are immutable.
    _replace(sfn_json_path, "parse", functools.lru_cache(maxsize=512)(sfn_json_path.parse))
    import moto.backends as moto_backends

    _replace(moto_backends, "list_of_moto_modules", _listed_once(moto_backends.list_of_moto_modules))


def remove_local_adjustments() -> None:
    """Put moto back as released (tests)."""
    for (owner, name), value in reversed(list(_ORIGINALS.items())):
        setattr(owner, name, value)
    _ORIGINALS.clear()
    _RECEIPTS.clear()


#: Seconds an idle keep-alive connection to the emulator stays open.
KEEP_ALIVE_SECONDS = 30


def keep_alive_handler() -> Any:
    """moto's request handler, answering on the same connection (HTTP/1.1 keep-alive).

    Werkzeug's development server closes every connection after one answer ("Connection:
    close", and it drains whatever the client sent next), so each boto3 call of the app, the
    pumps and the Step Functions interpreter opened a new TCP connection and the server a new
    thread (profiled 2026-12-02: ~25 % of the CPU of a GetItem round trip). Here the request body
    is read exactly (Content-Length), the answer is written with its length in one send, and the
    connection stays open for the next request. Chunked requests and HTTP/1.0 keep werkzeug's
    path (one request, then close)."""
    import io

    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class KeepAliveHandler(MotoRequestHandler):
        timeout = KEEP_ALIVE_SECONDS  # an idle connection (and its thread) ends after this
        answered_on_open_connection = 0  # requests served after the first on a connection (tests)

        def handle(self) -> None:
            self._served = 0
            super().handle()

        def run_wsgi(self) -> None:
            if (self.request_version != "HTTP/1.1"
                    or "chunked" in self.headers.get("Transfer-Encoding", "").lower()
                    or self.headers.get("Expect", "").lower() == "100-continue"):
                self.close_connection = True
                return super().run_wsgi()
            if self._served:
                type(self).answered_on_open_connection += 1
            self._served += 1
            environ = self.make_environ()
            length = int(environ.get("CONTENT_LENGTH") or 0)
            environ["wsgi.input"] = io.BytesIO(self.rfile.read(length) if length > 0 else b"")
            environ["wsgi.input_terminated"] = True
            answer: Dict[str, Any] = {}

            def start_response(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
                answer["status"], answer["headers"] = status, headers
                return answer.setdefault("written", []).append

            try:
                result = self.server.app(environ, start_response)
                try:
                    body = b"".join(answer.pop("written", []) + list(result))
                finally:
                    if hasattr(result, "close"):
                        result.close()
            except Exception:  # noqa: BLE001 - werkzeug's answer to a failing app: 500, then close
                self.log_error("emulator request failed")
                self.close_connection = True
                answer = {"status": "500 INTERNAL SERVER ERROR", "headers": [("Content-Type", "text/plain")]}
                body = b"Internal Server Error"
            code, _, reason = answer["status"].partition(" ")
            self.send_response(int(code), reason)
            for name, value in answer["headers"]:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            # Status, headers and body in one send (no Nagle wait between two small segments).
            self._headers_buffer.append(b"\r\n" + (b"" if self.command == "HEAD" else body))
            self.flush_headers()

    return KeepAliveHandler


class EmulatorServer:
    """moto's server app on host:port (threaded, keep-alive, listen backlog 128), behind the
    journal when one is given. Replaces ThreadedMotoServer, whose app cannot be wrapped."""

    def __init__(self, host: str, port: int, journal: Any = None) -> None:
        self.host, self.port, self.journal = host, port, journal
        self._server: Any = None
        self._thread: Optional[threading.Thread] = None
        self.app: Any = None

    def start(self) -> None:
        from werkzeug.serving import make_server
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        from chalicelib.local.persist import JournalingApp

        app: Any = DomainDispatcherApplication(create_backend_app)
        if self.journal is not None:
            app = JournalingApp(app, self.journal)
        self.app = app
        self._server = make_server(self.host, self.port, app, True, request_handler=keep_alive_handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="moto-server", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        if self._server is not None:
            stopper = threading.Thread(target=self._server.shutdown, daemon=True)
            stopper.start()
            stopper.join(timeout)
            self._server.server_close()
