"""The queue consumer: one envelope -> adapter.parse -> pipeline, with nothing ever lost.

- Every event of an envelope is attempted even if one fails, so valid neighbours land.
- A failure makes the whole SQS batch come back (the pipeline is idempotent, so re-running the
  events that already landed is harmless).
- After MAX_PROCESSING_ATTEMPTS an envelope is parked in the dead-letter queue with its raw
  payload and the error; `make replay-dlq` (chalicelib.ingest.dlq) sends it back.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List

from chalicelib import aws, config
from chalicelib.channels import get_adapter
from chalicelib.ingest import pipeline
from chalicelib.ingest.envelope import Envelope
from chalicelib.logs import bind_correlation_id, logger
from chalicelib.tracing import subsegment


class RetryLater(Exception):
    """Raised to make SQS redeliver the batch."""


def process_records(records: Iterable[Dict[str, Any]]) -> Dict[str, int]:
    """Process raw SQS records (dicts with `body`, `messageId`, `attributes`)."""
    outcome: Dict[str, int] = {}
    failed: List[str] = []
    for record in records:
        try:
            for result in process_body(record["body"]):
                outcome[result] = outcome.get(result, 0) + 1
        except Exception as error:  # noqa: BLE001 - decide between retry and parking
            attempts = int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
            permanent = isinstance(error, PermanentFailure)
            if permanent or attempts >= config.MAX_PROCESSING_ATTEMPTS:
                park(record, error, attempts)
                outcome["parked"] = outcome.get("parked", 0) + 1
            else:
                logger.warning("envelope failed, will retry", extra={"attempt": attempts,
                                                                      "error": _describe(error)})
                failed.append(record.get("messageId", "?"))
    if failed:
        raise RetryLater(f"{len(failed)} envelope(s) will be retried: {', '.join(failed)}")
    return outcome


class PermanentFailure(Exception):
    """Retrying cannot help (the envelope itself is unreadable)."""


def process_body(body: str) -> List[str]:
    try:
        envelope = Envelope.from_json(body)
        adapter = get_adapter(envelope.adapter)
    except (ValueError, KeyError) as error:
        raise PermanentFailure(f"unreadable envelope: {error}") from error
    bind_correlation_id(envelope.correlation_id or None)
    results: List[str] = []
    errors: List[Exception] = []
    events = _safe_parse(adapter, envelope)
    for event in events:
        try:
            with subsegment("record_event"):
                results.append(pipeline.handle(event, envelope.correlation_id))
        except Exception as error:  # noqa: BLE001 - finish the rest of the delivery first
            logger.exception("event failed", extra={"event_type": type(event).__name__})
            errors.append(error)
    if errors:
        raise errors[0]
    return results


def _safe_parse(adapter: Any, envelope: Envelope) -> List[Any]:
    from chalicelib.channels.base import ParseProblem

    try:
        return list(adapter.parse(envelope.payload, envelope.context))
    except Exception as error:  # noqa: BLE001 - an adapter bug must not lose the delivery
        return [ParseProblem(adapter.name, f"adapter failed: {_describe(error)}", envelope.payload)]


def park(record: Dict[str, Any], error: Exception, attempts: int) -> None:
    """Send the envelope, untouched, to the DLQ with the error beside it."""
    description = _describe(error)
    aws.client("sqs").send_message(
        QueueUrl=aws.queue_url(config.DEAD_LETTER_QUEUE),
        MessageBody=record["body"],
        MessageAttributes={
            "error": {"DataType": "String", "StringValue": description[:1000]},
            "attempts": {"DataType": "Number", "StringValue": str(attempts)},
            "source_message_id": {"DataType": "String", "StringValue": str(record.get("messageId", "?"))},
        },
    )
    logger.error("envelope parked in dead-letter queue", extra={"error": description, "attempts": attempts})


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:1000]


def record_dicts(event: Any) -> List[Dict[str, Any]]:
    """Raw record dicts from a Chalice SQSEvent or a plain Lambda event dict."""
    if hasattr(event, "to_dict"):
        event = event.to_dict()
    return list(json.loads(json.dumps(event)).get("Records", []))
