"""The local SQS event source: Chalice's local server runs routes only, so this delivers queued
messages to the real SQS handler the way Lambda's event source mapping does:

- batches of up to the mapping's batch size, gathered for up to its batching window (Lambda
  waits until the batch is full or the window has passed), with ApproximateReceiveCount;
- without ReportBatchItemFailures: the whole batch is deleted when the handler returns (whatever
  it answers, as Lambda ignores a `batchItemFailures` answer then) and nothing when it raises;
- with it (`reports_failures`, what infra/deploy.py enables on PARTIAL_BATCH_FUNCTIONS): the
  records the answer names stay queued and the rest are deleted; an answer naming an unknown or
  empty identifier, or not shaped like Lambda's, fails the whole batch, as Lambda does;
- the function runs with its own deployed variables (`environment`, config.function_environment).

One difference, on purpose: a failed batch comes back after a few seconds (the local visibility
timeout), not after the queue's deployed one (minutes), so local retries are seen at once.
"""
from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional

from chalicelib import aws, config
from chalicelib.logs import describe_error, logger

Handler = Callable[[Dict[str, Any], Any], Any]

#: Seconds a received batch stays invisible beyond its batching window: a failed batch comes
#: back this long after it was handled.
LOCAL_RETRY_SECONDS = 2
#: SQS returns at most this many messages per ReceiveMessage.
SQS_RECEIVE_MAX = 10


class LambdaContext:
    """What a handler may read from Lambda's context object."""

    def __init__(self, function_name: str, timeout_seconds: float = 60.0) -> None:
        self.function_name = function_name
        self.aws_request_id = str(uuid.uuid4())
        self.memory_limit_in_mb = 512
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _queue_url(queue: str, queue_name: Optional[str]) -> str:
    if queue_name is None:
        return aws.queue_url(queue)
    return aws.client("sqs").get_queue_url(QueueName=queue_name)["QueueUrl"]


def _receive(url: str, count: int, wait_seconds: int, visibility_timeout: int) -> List[Dict[str, Any]]:
    response = aws.client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=max(1, min(SQS_RECEIVE_MAX, count)), WaitTimeSeconds=wait_seconds,
        VisibilityTimeout=visibility_timeout, AttributeNames=["All"], MessageAttributeNames=["All"])
    return response.get("Messages", [])


def receive_batch(url: str, batch_size: int, window_seconds: float = 0.0, wait_seconds: int = 0,
                  visibility_timeout: int = 0, stopping: Optional[threading.Event] = None) -> List[Dict[str, Any]]:
    """Up to `batch_size` messages: the first receive waits up to `wait_seconds` (long poll),
    then more are gathered until the batch is full or `window_seconds` have passed since the
    first arrived. Empty when `stopping` is set meanwhile (what was received comes back later)."""
    messages = _receive(url, batch_size, wait_seconds, visibility_timeout)
    if not messages:
        return []
    deadline = time.monotonic() + max(0.0, window_seconds)
    while len(messages) < batch_size and time.monotonic() < deadline:
        if stopping is not None and stopping.is_set():
            return []
        more = _receive(url, batch_size - len(messages), 0, visibility_timeout)
        messages += more
        if not more:
            pause = min(0.1, max(0.0, deadline - time.monotonic()))
            if stopping is not None:
                stopping.wait(pause)
            else:
                time.sleep(pause)
    if stopping is not None and stopping.is_set():
        return []
    return messages


def _records(messages: List[Dict[str, Any]], queue_name: str) -> List[Dict[str, Any]]:
    region = config.aws_region()
    return [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": m.get("MessageAttributes", {}),
        "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{region}:123456789012:{queue_name}", "awsRegion": region,
    } for m in messages]


def failed_message_ids(answer: Any, message_ids: List[str]) -> Optional[List[str]]:
    """The records a partial batch response asks to retry, or None when Lambda would fail the
    whole batch (an identifier that is empty or not in the batch, or an answer of the wrong
    shape). No answer, no `batchItemFailures` or an empty list: none failed."""
    if answer is None:
        return []
    if not isinstance(answer, dict):
        return None
    failures = answer.get("batchItemFailures")
    if failures is None:
        return []
    if not isinstance(failures, list):
        return None
    ids = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in message_ids:
            return None
        ids.append(identifier)
    return ids


def pump_once(handler: Handler, wait_seconds: int = 0, visibility_timeout: int = 0, max_messages: int = 10,
              queue: str = config.INGEST_QUEUE, queue_name: Optional[str] = None, window_seconds: float = 0.0,
              reports_failures: bool = False, function_name: str = "ingest_processor",
              environment: Optional[Mapping[str, str]] = None, stopping: Optional[threading.Event] = None,
              queue_url: Optional[str] = None) -> int:
    """Deliver one batch of `queue` (short name; or `queue_name`, the full one, at `queue_url`
    when known) of up to `max_messages`; returns how many messages it held. Failed records stay
    queued."""
    url = queue_url or _queue_url(queue, queue_name)
    messages = receive_batch(url, max_messages, window_seconds, wait_seconds, visibility_timeout, stopping)
    if not messages:
        return 0
    records = _records(messages, queue_name or config.queue_name(queue))
    try:
        with config.function_environment(environment or {}):
            answer = handler({"Records": records}, LambdaContext(function_name))
    except Exception as error:  # noqa: BLE001 - SQS would redeliver; so do we
        logger.warning("local pump: batch failed, what is still queued comes back",
                       extra={"function": function_name, "error": describe_error(error)[:300]})
        return len(messages)
    settled = messages
    if reports_failures:
        failed = failed_message_ids(answer, [m["MessageId"] for m in messages])
        if failed is None:
            logger.warning("local pump: unreadable partial batch response, the whole batch comes back",
                           extra={"function": function_name})
            return len(messages)
        settled = [m for m in messages if m["MessageId"] not in failed]
    if settled:
        aws.client("sqs").delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(settled)])
    return len(messages)


def drain(handler: Handler, max_rounds: int = 100, queue: str = config.INGEST_QUEUE) -> int:
    """Pump until the queue is empty (tests, benchmarks); bounded so it always stops."""
    total = 0
    for _ in range(max_rounds):
        count = pump_once(handler, queue=queue)
        if count == 0:
            return total
        total += count
    return total


class Pump(threading.Thread):
    """One SQS event source mapping of `make run`, in a thread; stops when `stop()` is called.
    `queue_name` is the full queue name (as the app's decorator names it)."""

    def __init__(self, handler: Handler, queue_name: str, function_name: str, batch_size: int = 10,
                 window_seconds: float = 0.0, reports_failures: bool = False,
                 environment: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(name=f"{function_name}-pump", daemon=True)
        self.handler, self.queue_name, self.function_name = handler, queue_name, function_name
        self.batch_size, self.window_seconds = batch_size, window_seconds
        self.reports_failures = reports_failures
        self.environment = dict(environment or {})
        self.visibility_timeout = int(window_seconds) + 1 + LOCAL_RETRY_SECONDS
        self._url: Optional[str] = None
        self._stopping = threading.Event()

    def run_once(self, wait_seconds: int = 0) -> int:
        """Deliver one batch (what `run` repeats); returns how many messages it held."""
        self._url = self._url or _queue_url(config.INGEST_QUEUE, self.queue_name)
        return pump_once(self.handler, wait_seconds=wait_seconds, visibility_timeout=self.visibility_timeout,
                         max_messages=self.batch_size, queue_name=self.queue_name,
                         window_seconds=self.window_seconds, reports_failures=self.reports_failures,
                         function_name=self.function_name, environment=self.environment, stopping=self._stopping,
                         queue_url=self._url)

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once(wait_seconds=1)
            except Exception as error:  # noqa: BLE001 - keep pumping; the emulator may be restarting
                logger.warning("local pump error", extra={"function": self.function_name,
                                                          "error": describe_error(error)[:300]})
                self._stopping.wait(0.5)

    def stop(self) -> None:
        self._stopping.set()
