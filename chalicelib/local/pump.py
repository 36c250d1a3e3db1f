"""The local event pump: Chalice's local server runs routes only, so this delivers queued
ingest messages to the real SQS handler, the way the Lambda event source mapping would:
batches of up to 10 with ApproximateReceiveCount, the whole batch deleted when the handler
returns, nothing deleted when it raises (no ReportBatchItemFailures: Chalice cannot enable it, so
a `batchItemFailures` answer is ignored here as Lambda would ignore it). The handler itself
deletes the envelopes it settled before raising, so only the failed ones come back."""
from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List

from chalicelib import aws, config
from chalicelib.logs import describe_error, logger

Handler = Callable[[Dict[str, Any], Any], Any]


class _Context:
    function_name = "ingest_processor"
    aws_request_id = "local"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def pump_once(handler: Handler, wait_seconds: int = 0, visibility_timeout: int = 0, max_messages: int = 10,
              queue: str = config.INGEST_QUEUE) -> int:
    """Deliver one batch of `queue` (short name); returns how many messages it held. Failed
    batches stay queued."""
    sqs = aws.client("sqs")
    url = aws.queue_url(queue)
    response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=wait_seconds,
                                   VisibilityTimeout=visibility_timeout, AttributeNames=["All"],
                                   MessageAttributeNames=["All"])
    messages: List[Dict[str, Any]] = response.get("Messages", [])
    if not messages:
        return 0
    records = [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": m.get("MessageAttributes", {}),
        "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{config.aws_region()}:123456789012:{config.queue_name(queue)}",
        "awsRegion": config.aws_region(),
    } for m in messages]
    try:
        handler({"Records": records}, _Context())
    except Exception as error:  # noqa: BLE001 - SQS would redeliver; so do we
        logger.warning("local pump: batch failed, what is still queued comes back",
                       extra={"error": describe_error(error)[:300]})
        return len(messages)
    sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                     for i, m in enumerate(messages)])
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
    """Background pump for `make run`; stops when `stop()` is called."""

    def __init__(self, handler: Handler, visibility_timeout: int = 2, queue: str = config.INGEST_QUEUE) -> None:
        super().__init__(name=f"{queue}-pump", daemon=True)
        self.handler = handler
        self.queue = queue
        self.visibility_timeout = visibility_timeout
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                pump_once(self.handler, wait_seconds=1, visibility_timeout=self.visibility_timeout, queue=self.queue)
            except Exception as error:  # noqa: BLE001 - keep pumping; the emulator may be restarting
                logger.warning("local pump error", extra={"error": describe_error(error)[:300]})
                self._stopping.wait(0.5)

    def stop(self) -> None:
        self._stopping.set()
