"""Lambda's asynchronous invocation, locally (`make run`, the tests): moto cannot run functions.

What Lambda does with an event it accepted (Invoke with InvocationType Event), mirrored here:
- the event is kept and the call returns at once; one larger than Lambda's limit for an
  asynchronous payload (MAX_PAYLOAD_BYTES) is refused, the caller sees the error (no 202);
- the function's handler runs with the event, in the function's own environment (as the queue
  pumps run theirs, chalicelib.local.pump), and whatever it answers is ignored: a
  `batchItemFailures` answer does not fail anything, only a raise does;
- a failed attempt is retried MaximumRetryAttempts times (Lambda waits about one, then two
  minutes; here RETRY_SECONDS), then an invocation record in Lambda's documented shape
  (requestContext with the condition and approximateInvokeCount, requestPayload: the event,
  responseContext, responsePayload: the error) goes to the function's on-failure destination
  queue; so does an event older than MaximumEventAgeInSeconds. The settings are the deploy's
  (infra.deploy.ASYNC_INVOCATIONS).

Two ways to run it: `run_pending()` runs in the caller's thread everything waiting, retries at
once, until nothing is left (the tests: deterministic); `start()` runs a worker thread that keeps
the retry delays (`make run`'s runner, chalicelib.local.runners).

Where the accepted events wait: in memory (the tests), or, `durable` (`make run`), in a queue of
the emulator per function (`holding_queue`, created with the stack, journaled to disk like every
queue of `make run`, chalicelib.local.persist): Lambda's own queue keeps an accepted event through
anything, so a kill -9 of `make run` must not lose what a platform got its 200 for. There an
attempt is a receive (ApproximateReceiveCount counts them), a retry a visibility change, and a
settled event (run, or sent to the destination) is deleted.
"""
from __future__ import annotations

import datetime as dt
import heapq
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from chalicelib import aws, config
from chalicelib.logs import describe_error, logger

Handler = Callable[[Dict[str, Any], Any], Any]

#: Lambda's limit for an asynchronous invocation's payload (256 KiB).
MAX_PAYLOAD_BYTES = 262_144
#: Seconds before the first and the second retry (Lambda: about 60 and 120).
RETRY_SECONDS = (1.0, 2.0)
#: Durable mode: how long a received event stays hidden while it runs (a crash brings it back then).
RUNNING_SECONDS = 60


def holding_queue(function: str) -> str:
    """Short name of the emulator's queue where `make run` keeps `function`'s accepted events."""
    return f"async-{function}"


class PayloadTooLarge(ValueError):
    """Lambda's RequestEntityTooLargeException: the event was not taken."""


@dataclass(order=True)
class _Pending:
    due: float
    sequence: int
    function: str = field(compare=False)
    event: Dict[str, Any] = field(compare=False)
    request_id: str = field(compare=False)
    accepted: float = field(compare=False)
    attempts: int = field(default=0, compare=False)


def async_settings(function: str) -> Dict[str, Any]:
    """The deploy's asynchronous invocation settings of `function` (infra.deploy)."""
    from infra.deploy import ASYNC_INVOCATIONS

    return dict(ASYNC_INVOCATIONS.get(function) or {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 21600})


def _app_handler(function: str) -> Handler:
    """The handler Chalice registered for `function` in the app (imported on first use)."""
    import importlib

    return importlib.import_module("app").app.handler_map[function]


def _own_environment(function: str) -> Dict[str, str]:
    from chalicelib.local.runners import function_environment

    return function_environment(function)


class LocalInvocations:
    """The local stand-in for Lambda's asynchronous invocations; callable as the runtime's
    invoker (`runtime.use_invoker`): `(function short name, event JSON bytes)`."""

    name = "async-invocations"

    def __init__(self, handlers: Optional[Mapping[str, Handler]] = None,
                 clock: Callable[[], float] = time.monotonic, durable: bool = False) -> None:
        self._handlers = dict(handlers or {})
        #: Accepted events wait in the emulator's holding queues, not in memory (`make run`).
        self.durable = durable
        self.function_name = self.name
        #: The functions it was given handlers for (others are looked up in the app on first use).
        self.functions = sorted(self._handlers)
        self._clock = clock
        self._queue: List[_Pending] = []
        self._sequence = itertools.count()
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._running = 0
        #: What happened, for the start-up banner and tests: accepted, succeeded, retried, failed over.
        self.counts: Dict[str, int] = {"accepted": 0, "succeeded": 0, "retried": 0, "sent_to_destination": 0}

    # --- Invoke (InvocationType Event) -----------------------------------------------------------
    def __call__(self, function: str, payload: bytes) -> None:
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(f"{function}: {len(payload)} bytes is more than Lambda takes "
                                  f"asynchronously ({MAX_PAYLOAD_BYTES})")
        event = json.loads(payload)
        if self.durable:
            aws.client("sqs").send_message(QueueUrl=aws.queue_url(holding_queue(function)),
                                           MessageBody=payload.decode("utf-8"))
            with self._changed:
                self.counts["accepted"] += 1
            return
        now = self._clock()
        with self._changed:
            heapq.heappush(self._queue, _Pending(now, next(self._sequence), function, event, str(uuid.uuid4()), now))
            self.counts["accepted"] += 1
            self._changed.notify_all()

    def pending(self) -> int:
        """Events waiting for a first run or a retry."""
        with self._changed:
            return len(self._queue) + self._running

    # --- running them -----------------------------------------------------------------------------
    def run_pending(self, max_attempts: int = 1000, handlers: Optional[Mapping[str, Handler]] = None) -> int:
        """Run every waiting event now, retries at once, until none is left (bounded); returns
        how many records the attempts held (one per delivery, unless it was split). `handlers`
        run instead of the functions' own (a bench that counts what the processor does)."""
        if handlers:
            saved = dict(self._handlers)
            self._handlers.update(handlers)
            try:
                return self.run_pending(max_attempts)
            finally:
                self._handlers = saved
        records = 0
        if self.durable:
            for _ in range(max_attempts):
                held = sum(self._receive_and_run(function, 0, immediate=True) for function in self._functions())
                if not held:
                    break
                records += held
            return records
        for _ in range(max_attempts):
            with self._changed:
                if not self._queue:
                    break
                item = heapq.heappop(self._queue)
            records += _records_in(item.event)
            self._attempt(item, immediate=True)
        return records

    def _functions(self) -> List[str]:
        from infra.deploy import ASYNC_INVOCATIONS

        return sorted(set(self.functions) | set(ASYNC_INVOCATIONS))

    def _receive_and_run(self, function: str, wait_seconds: int, immediate: bool) -> int:
        """Durable mode: one receive from `function`'s holding queue, each event run once and then
        deleted, or hidden until its retry is due; returns how many records they held."""
        sqs, url = aws.client("sqs"), aws.queue_url(holding_queue(function))
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds,
                                       VisibilityTimeout=RUNNING_SECONDS, AttributeNames=["All"]).get("Messages", [])
        records = 0
        for message in messages:
            attributes = message.get("Attributes") or {}
            event = json.loads(message["Body"])
            records += _records_in(event)
            item = _Pending(0.0, 0, function, event, message["MessageId"],
                            int(attributes.get("SentTimestamp") or time.time() * 1000) / 1000.0,
                            int(attributes.get("ApproximateReceiveCount") or 1) - 1)
            delay = self._settle(item, immediate, time.time())
            if delay is None:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            else:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                              VisibilityTimeout=int(delay + 0.999))
        return records

    def start(self) -> "LocalInvocations":
        """Run events in a worker thread, keeping the retry delays (`make run`)."""
        self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: Optional[float] = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _work(self) -> None:
        while self.durable and not self._stopping.is_set():
            try:
                for function in self._functions():
                    self._receive_and_run(function, 1, immediate=False)
            except Exception as error:  # noqa: BLE001 - keep running; the emulator may be restarting
                logger.warning("local async invocations: runner error", extra={"error": describe_error(error)[:300]})
                self._stopping.wait(0.5)
        while not self._stopping.is_set():
            with self._changed:
                wait = 1.0 if not self._queue else self._queue[0].due - self._clock()
                if wait > 0:
                    self._changed.wait(min(wait, 1.0))
                    continue
                item = heapq.heappop(self._queue)
                self._running += 1
            try:
                self._attempt(item, immediate=False)
            finally:
                with self._changed:
                    self._running -= 1

    def _handler(self, function: str) -> Handler:
        found = self._handlers.get(function)
        if found is None:
            found = self._handlers[function] = _app_handler(function)
        return found

    def _attempt(self, item: _Pending, immediate: bool) -> None:
        """In-memory mode: run it; a retry goes back on the heap when it is due."""
        delay = self._settle(item, immediate, self._clock())
        if delay is not None:
            with self._changed:
                item.due = self._clock() + delay
                heapq.heappush(self._queue, item)
                self._changed.notify_all()

    def _settle(self, item: _Pending, immediate: bool, now: float) -> Optional[float]:
        """One attempt as Lambda makes it: too old -> the destination; run; a raise -> the delay
        before the retry, or the destination after the last. None when the event is settled."""
        from chalicelib.local.pump import LambdaContext

        settings = async_settings(item.function)
        if now - item.accepted > float(settings.get("MaximumEventAgeInSeconds", 21600)):
            self._fail_over(item, "EventAgeExceeded", None)
            return None
        item.attempts += 1
        try:
            with config.function_environment(_own_environment(item.function)):
                self._handler(item.function)(item.event, LambdaContext(item.function))
        except Exception as error:  # noqa: BLE001 - Lambda retries, then the destination
            retries = int(settings.get("MaximumRetryAttempts", 2))
            if item.attempts > retries:
                self._fail_over(item, "RetriesExhausted", error)
                return None
            logger.warning("local async invocation failed, retried", extra={
                "function": item.function, "attempt": item.attempts, "error": describe_error(error)[:300]})
            with self._changed:
                self.counts["retried"] += 1
            return 0.0 if immediate else RETRY_SECONDS[min(item.attempts - 1, len(RETRY_SECONDS) - 1)]
        with self._changed:
            self.counts["succeeded"] += 1
        return None

    def _fail_over(self, item: _Pending, condition: str, error: Optional[BaseException]) -> None:
        """The invocation record to the on-failure destination (none configured: dropped, as
        Lambda drops it and counts AsyncEventsDropped)."""
        destination = async_settings(item.function).get("OnFailure")
        record = invocation_record(item.function, item.request_id, item.event, condition, item.attempts, error)
        with self._changed:
            self.counts["sent_to_destination"] += 1
        if not destination:
            logger.error("local async invocation dropped (no destination)", extra={"function": item.function})
            return
        try:
            aws.client("sqs").send_message(QueueUrl=aws.queue_url(destination), MessageBody=json.dumps(record))
        except Exception as failure:  # noqa: BLE001 - Lambda would count it dropped
            logger.error("local async invocation dropped: destination refused it",
                         extra={"function": item.function, "error": describe_error(failure)[:300]})
            return
        logger.error("local async invocation sent to its on-failure destination",
                     extra={"function": item.function, "condition": condition, "attempts": item.attempts})


def _records_in(event: Any) -> int:
    return len(event.get("Records") or []) if isinstance(event, dict) else 1


def invocation_record(function: str, request_id: str, event: Any, condition: str, attempts: int,
                      error: Optional[BaseException]) -> Dict[str, Any]:
    """What Lambda sends an on-failure destination for an asynchronous invocation (its documented
    invocation record, version 1.0)."""
    arn = f"arn:aws:lambda:{config.aws_region()}:{config.LOCAL_ACCOUNT_ID}:function:{config.function_name(function)}"
    response: Tuple[Dict[str, Any], Dict[str, Any]]
    if error is None:
        response = ({"statusCode": 200, "executedVersion": "$LATEST"}, {})
    else:
        response = ({"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
                    {"errorMessage": str(error)[:1000], "errorType": type(error).__name__, "requestId": request_id,
                     "stackTrace": []})
    return {"version": "1.0",
            "timestamp": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "requestContext": {"requestId": request_id, "functionArn": arn + ":$LATEST", "condition": condition,
                               "approximateInvokeCount": attempts},
            "requestPayload": event, "responseContext": response[0], "responsePayload": response[1]}
