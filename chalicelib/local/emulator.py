"""The AWS emulator of `make run`: moto's server app behind the durable journal (persist.py),
plus two targeted adjustments of moto 5.2.5 that keep it flat as data grows. Local mode only:
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


def _lazy_count(name: str) -> property:
    def getter(self: Any) -> int:
        from moto.sqs.models import Queue

        if getattr(_state, "want_counts", True):
            return _ORIGINALS[(Queue, name)].fget(self)
        return 0

    return property(getter)


def _get_queue_attributes(original: Any) -> Any:
    @functools.wraps(original)
    def get_queue_attributes(self: Any, queue_name: str, attribute_names: List[str]) -> Dict[str, Any]:
        names = attribute_names or []
        previous = getattr(_state, "want_counts", True)
        _state.want_counts = "All" in names or any(n in _COUNT_ATTRIBUTES for n in names)
        try:
            return original(self, queue_name, attribute_names)
        finally:
            _state.want_counts = previous

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
    from moto.sqs.models import Queue, SQSBackend

    backend_cls = dynamodb_models.DynamoDBBackend
    _replace(dynamodb_models, "copy", _TableCopySkipper())
    _replace(backend_cls, "transact_write_items", _transact_write_items(backend_cls.transact_write_items))
    for name in _COUNT_PROPERTIES:
        _replace(Queue, name, _lazy_count(name))
    _replace(SQSBackend, "get_queue_attributes", _get_queue_attributes(SQSBackend.get_queue_attributes))
    for name in ("send_message", "send_message_batch", "receive_message"):
        _replace(SQSBackend, name, _send_without_counts(getattr(SQSBackend, name)))


def remove_local_adjustments() -> None:
    """Put moto back as released (tests)."""
    for (owner, name), value in reversed(list(_ORIGINALS.items())):
        setattr(owner, name, value)
    _ORIGINALS.clear()


class EmulatorServer:
    """moto's server app on host:port (threaded, listen backlog 128), behind the journal when
    one is given. Replaces ThreadedMotoServer, whose app cannot be wrapped."""

    def __init__(self, host: str, port: int, journal: Any = None) -> None:
        self.host, self.port, self.journal = host, port, journal
        self._server: Any = None
        self._thread: Optional[threading.Thread] = None
        self.app: Any = None

    def start(self) -> None:
        from werkzeug.serving import make_server
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

        from chalicelib.local.persist import JournalingApp

        app: Any = DomainDispatcherApplication(create_backend_app)
        if self.journal is not None:
            app = JournalingApp(app, self.journal)
        self.app = app
        self._server = make_server(self.host, self.port, app, True, request_handler=MotoRequestHandler)
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
