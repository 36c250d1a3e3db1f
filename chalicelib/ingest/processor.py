"""The processor: one envelope -> adapter.parse -> pipeline, with nothing ever lost.

Two doors lead here, one handler (app.ingest_processor) serves both:
- the webhook's asynchronous invocation (issue 21), records from WEBHOOK_EVENT_SOURCE. Lambda
  ignores whatever an asynchronous invocation answers, a `batchItemFailures` list included, and
  takes any return for success: so if a record failed and may be retried, the invocation raises
  (Lambda runs the whole event again twice, the pipeline dedupes what already landed, then sends
  it to the ingest DLQ as an invocation record, chalicelib.ingest.dlq);
- the ingest queue (replays from the DLQ, what an older webhook queued during an upgrade),
  Lambda's SQS poller, settled as follows.

- Every event of an envelope is attempted even if one fails, so valid neighbours land.
- Each envelope of an SQS batch is settled once, in one of two ways:
  * partial batch responses (PARTIAL_BATCH_ENV is "true"): the handler answers
    `{"batchItemFailures": [{"itemIdentifier": <messageId>}, ...]}` and Lambda deletes the rest.
    Only where the event source mapping has FunctionResponseTypes=[ReportBatchItemFailures]:
    without it Lambda takes that answer for a success and deletes the failed envelopes too.
    `chalice deploy` cannot set it, so the variable is never in the Chalice config; infra/deploy.py
    sets the mapping's response type first and the variable with it (docs/DEPLOY.md);
  * otherwise (the default, `make run`, the tests): the envelopes that finished or were parked are
    deleted from the queue explicitly and the handler raises, so only the failed ones come back.
- After MAX_PROCESSING_ATTEMPTS, or at once when retrying cannot help (unreadable envelope,
  DynamoDB ValidationException), an envelope is parked in the dead-letter queue with its raw
  payload and a description of the error; `make replay-dlq` (chalicelib.ingest.dlq) sends it back.
- A delivery the ack path refused (see webhook.unprocessable) is quarantined, never parsed.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Optional, Sequence

from chalicelib import aws, config
from chalicelib.channels import get_adapter
from chalicelib.ingest import pipeline
from chalicelib.ingest.envelope import WEBHOOK_EVENT_SOURCE, Envelope
from chalicelib.logs import bind_correlation_id, describe_error, logger
from chalicelib.tracing import subsegment


class RetryLater(Exception):
    """Raised to make SQS redeliver the envelopes of the batch that are still on the queue."""


class InvocationFailed(RetryLater):
    """Raised to make Lambda run an asynchronous invocation again (or, after its retries, send it
    to the on-failure destination): nothing it answers is read."""


class PermanentFailure(Exception):
    """Retrying cannot help (the envelope itself is unreadable)."""


#: DynamoDB answers that the same request can never get past.
PERMANENT_CODES = frozenset({"ValidationException", "ValidationError"})

#: "true" only on a function whose SQS event source mapping reports batch item failures
#: (infra/deploy.py sets the two together; see the module docstring for why never alone).
PARTIAL_BATCH_ENV = "SQS_REPORT_BATCH_ITEM_FAILURES"


def partial_batch_responses() -> bool:
    """Whether this function's event source mapping takes partial batch responses (read per
    invocation: a configuration change reaches running containers at once)."""
    return (config.function_setting(PARTIAL_BATCH_ENV) or "").strip().lower() == "true"


def batch_response(failed_message_ids: Sequence[str]) -> Dict[str, List[Dict[str, str]]]:
    """Lambda's partial batch response: the records to retry; an empty list settles them all."""
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed_message_ids]}


def reportable(failed: Sequence[Dict[str, Any]]) -> Optional[List[str]]:
    """The message ids of the failed records, or None when one has no id (Lambda always gives
    one; without it the record could not be named, so the whole batch must be retried)."""
    ids = [str(record.get("messageId") or "") for record in failed]
    return ids if all(ids) else None


def process_records(records: Iterable[Dict[str, Any]], partial: bool = False) -> Dict[str, Any]:
    """Process raw records (dicts with `body`, `messageId`, and from SQS `receiptHandle`,
    `attributes`). With `partial` (the event source reports batch item failures) the answer is
    Lambda's partial batch response; otherwise the outcome counts, or RetryLater once the settled
    are deleted. The webhook's asynchronous invocation (records from WEBHOOK_EVENT_SOURCE) never
    answers failures: it raises InvocationFailed, whatever `partial` says."""
    records = list(records)
    outcome: Dict[str, int] = {}
    settled: List[Dict[str, Any]] = []
    failed: List[Dict[str, Any]] = []
    first_error = ""
    for record in records:
        try:
            for result in process_body(record["body"]):
                outcome[result] = outcome.get(result, 0) + 1
            settled.append(record)
        except Exception as error:  # noqa: BLE001 - decide between retry and parking
            attempts = int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
            if is_permanent(error) or attempts >= config.MAX_PROCESSING_ATTEMPTS:
                park(record, error, attempts)
                outcome["parked"] = outcome.get("parked", 0) + 1
                settled.append(record)
            else:
                logger.warning("envelope failed, will retry", extra={"attempt": attempts,
                                                                      "error": describe_error(error)})
                failed.append(record)
                first_error = first_error or describe_error(error)
    if failed and any(record.get("eventSource") == WEBHOOK_EVENT_SOURCE for record in records):
        # Lambda keeps this message in the invocation record it parks: say which and why, briefly.
        names = ", ".join(str(record.get("messageId", "?")) for record in failed)
        raise InvocationFailed(f"{len(failed)} record(s) failed ({names[:300]}): {first_error[:600]}")
    if partial:
        ids = reportable(failed)
        if ids is not None:
            return batch_response(ids)
    if failed:
        _delete_settled(settled)
        names = ", ".join(str(record.get("messageId", "?")) for record in failed)
        raise RetryLater(f"{len(failed)} envelope(s) will be retried: {names}")
    return outcome


def is_permanent(error: BaseException) -> bool:
    """True when the same envelope would fail the same way again."""
    if isinstance(error, PermanentFailure):
        return True
    cause = getattr(error, "cause", None) or error.__cause__
    code = ((getattr(cause, "response", None) or {}).get("Error") or {}).get("Code")
    if code in PERMANENT_CODES:
        return True
    reasons = getattr(error, "cancellation_reasons", None) or []
    return any(r is not None and getattr(r, "code", None) in PERMANENT_CODES for r in reasons)


def _delete_settled(records: List[Dict[str, Any]]) -> None:
    """Take finished and parked envelopes off the ingest queue before raising, so the retry
    brings back only the failed ones. A delete that fails only means a repeat (the pipeline is
    idempotent), so it is logged, never raised."""
    entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
               for i, r in enumerate(records) if r.get("receiptHandle")]
    if not entries:
        return
    try:
        response = aws.client("sqs").delete_message_batch(QueueUrl=aws.queue_url(config.INGEST_QUEUE),
                                                          Entries=entries)
        failures = response.get("Failed") or []
        if failures:
            logger.warning("could not delete settled envelopes; they will be seen again",
                           extra={"count": len(failures), "codes": sorted({f.get("Code", "?") for f in failures})})
    except Exception as error:  # noqa: BLE001 - see docstring
        logger.warning("could not delete settled envelopes; they will be seen again",
                       extra={"count": len(entries), "error": describe_error(error)})


def process_body(body: str) -> List[str]:
    try:
        envelope = Envelope.from_json(body)
        adapter = None if envelope.refused else get_adapter(envelope.adapter)
    except (ValueError, KeyError, RecursionError) as error:
        raise PermanentFailure(f"unreadable envelope: {describe_error(error)}") from error
    bind_correlation_id(envelope.correlation_id or None)
    if envelope.refused:
        pipeline.quarantine(f"refused delivery: {envelope.refused}", envelope.adapter, None, envelope.payload,
                            envelope.correlation_id)
        return ["quarantined"]
    results: List[str] = []
    errors: List[Exception] = []
    events = _safe_parse(adapter, envelope)
    for event in events:
        try:
            with subsegment("record_event"):
                results.append(pipeline.handle(event, envelope.correlation_id))
        except Exception as error:  # noqa: BLE001 - finish the rest of the delivery first
            logger.exception("event failed", extra={"event_type": type(event).__name__,
                                                    "error": describe_error(error)})
            errors.append(error)
    if errors:
        raise errors[0]
    return results


def _safe_parse(adapter: Any, envelope: Envelope) -> List[Any]:
    from chalicelib.channels.base import ParseProblem

    try:
        return list(adapter.parse(envelope.payload, envelope.context))
    except Exception as error:  # noqa: BLE001 - an adapter bug must not lose the delivery
        return [ParseProblem(adapter.name, f"adapter failed: {describe_error(error)}", envelope.payload)]


def park(record: Dict[str, Any], error: Exception, attempts: int) -> None:
    """Send the envelope, untouched, to the DLQ with the error beside it."""
    description = describe_error(error)
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


def record_dicts(event: Any) -> List[Dict[str, Any]]:
    """Raw record dicts from a Chalice SQSEvent or a plain Lambda event dict."""
    if hasattr(event, "to_dict"):
        event = event.to_dict()
    return list(json.loads(json.dumps(event)).get("Records", []))
