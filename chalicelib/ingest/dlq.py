"""Inspect and replay the dead-letter queue: `python -m chalicelib.ingest.dlq [list|replay]`.

Two kinds of message are parked there:
- an envelope the processor parked itself (unreadable, DynamoDB refused it for good, or retried
  from the ingest queue until MAX_PROCESSING_ATTEMPTS), with the error as message attributes;
- Lambda's invocation record of a webhook hand-off that failed three times or grew too old (the
  processor's on-failure destination, infra/deploy.py ASYNC_INVOCATIONS): JSON with
  `requestContext` (condition, approximateInvokeCount), `requestPayload` (the event, our
  `{"Records": [...]}`), `responseContext` and `responsePayload` (the error).

Replay moves each parked envelope back to the ingest queue unchanged, or each record's envelope of
an invocation record (the pipeline dedupes, so a replay can never duplicate a message), and
deletes the parked message from the DLQ only after every resend worked.

Stage `local` (`make list-dlq STAGE=local`) talks to the moto server of `make run` on
127.0.0.1:MOTO_PORT with dummy credentials; every other stage uses the normal AWS credential
chain and endpoints.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Collection, Dict, Iterator, List, MutableMapping, Optional, Set, Tuple

from chalicelib import aws, config
from chalicelib.inputs import encodable


def _receive(max_messages: int, visibility_timeout: int) -> Iterator[Dict[str, Any]]:
    """Each parked message at most once (a peek with visibility 0 sees the same ones again)."""
    sqs = aws.client("sqs")
    url = aws.queue_url(config.DEAD_LETTER_QUEUE)
    seen: set = set()
    while len(seen) < max_messages:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                    VisibilityTimeout=visibility_timeout,
                                    MessageAttributeNames=["All"]).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            return
        for message in fresh[: max_messages - len(seen)]:
            seen.add(message["MessageId"])
            yield message


def list_parked(max_messages: int = 100) -> List[Dict[str, Any]]:
    """What is parked and why, without taking it off the queue. `adapter` and `received_at` (ms)
    come from the envelope when it is one (never its payload: that is customers' text).

    Each message seen stays hidden until the scan ends, so the scan reaches past the first
    batch (a peek with visibility 0 would see the same ten again), then all are visible again."""
    found = []
    seen: List[str] = []
    try:
        for message in _receive(max_messages, visibility_timeout=30):
            seen.append(message["ReceiptHandle"])
            found.append(describe(message))
    finally:
        _release(seen)
    return found


def _release(receipt_handles: List[str]) -> None:
    """Make messages received during a scan visible again at once."""
    sqs = aws.client("sqs")
    url = aws.queue_url(config.DEAD_LETTER_QUEUE)
    for start in range(0, len(receipt_handles), 10):
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for n, handle in enumerate(receipt_handles[start:start + 10])])


#: The longest error text listed for a parked invocation (a record's errorMessage is unbounded).
MAX_ERROR_CHARS = 500


def describe(message: Dict[str, Any]) -> Dict[str, Any]:
    """What list_parked says of one DLQ message (SQS's ReceiveMessage shape): `error`,
    `attempts`, `bytes`, `adapter` and `received_at` of its (first) envelope, and `kind`:
    "envelope" (parked by the processor) or "invocation" (Lambda's record, with `records`)."""
    body = message["Body"]
    attrs = message.get("MessageAttributes", {})
    record = None if "error" in attrs else invocation_record(body)  # the processor's own, with its error
    if record is None:
        return {"message_id": message["MessageId"], "kind": "envelope",
                "error": attrs.get("error", {}).get("StringValue"),
                "attempts": attrs.get("attempts", {}).get("StringValue"),
                "bytes": len(body.encode("utf-8")), **_envelope_facts(body)}
    context = record.get("requestContext") if isinstance(record.get("requestContext"), dict) else {}
    response = record.get("responsePayload") if isinstance(record.get("responsePayload"), dict) else {}
    bodies = _record_bodies(record)
    error = str(response.get("errorMessage") or response.get("errorType") or "")
    condition = str(context.get("condition") or "")
    attempts = context.get("approximateInvokeCount")
    said = f"{condition}: {error}" if error and condition else (error or condition)
    return {"message_id": message["MessageId"], "kind": "invocation",
            "error": said[:MAX_ERROR_CHARS] or None,  # Lambda's words, bounded like our own
            "attempts": str(attempts) if isinstance(attempts, int) and not isinstance(attempts, bool) else None,
            "bytes": len(body.encode("utf-8")), "records": len(bodies or []),
            **(_envelope_facts(bodies[0]) if bodies else {"adapter": None, "received_at": None})}


def invocation_record(body: str) -> Optional[Dict[str, Any]]:
    """Lambda's invocation record parked in `body`, or None when it is something else (an
    envelope the processor parked, or unreadable)."""
    try:
        found = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if isinstance(found, dict) and isinstance(found.get("requestContext"), dict) and "requestPayload" in found:
        return found
    return None


def _record_bodies(record: Dict[str, Any]) -> Optional[List[str]]:
    """The envelopes of an invocation record's event (our `{"Records": [{"body": ...}]}`), or
    None when the record does not hold them (Lambda leaves a payload out it cannot fit)."""
    payload = record.get("requestPayload")
    records = payload.get("Records") if isinstance(payload, dict) else None
    if not isinstance(records, list) or not records:
        return None
    bodies = [item.get("body") for item in records if isinstance(item, dict)]
    # SQS takes UTF-8 only: a body with a lone surrogate (a decoded "\\ud800" escape) cannot be
    # resent, so the record goes back whole (its own text came from SQS: it can).
    if len(bodies) != len(records) or not all(isinstance(b, str) and encodable(b) for b in bodies):
        return None
    return bodies


def redrive_bodies(body: str) -> List[str]:
    """What the ingest queue gets back for one parked message: the envelope itself, or each
    record's envelope of an invocation record (one that holds none is sent as it is: the
    processor parks it again as unreadable, so it is never lost)."""
    record = invocation_record(body)
    return (_record_bodies(record) if record is not None else None) or [body]


def _envelope_facts(body: str) -> Dict[str, Any]:
    from chalicelib.ingest.envelope import Envelope

    try:
        envelope = Envelope.from_json(body)
    except (ValueError, TypeError, RecursionError):  # unreadable: parked for exactly that reason
        return {"adapter": None, "received_at": None}
    return {"adapter": envelope.adapter, "received_at": envelope.received_at_ms or None}


def replay(max_messages: int = 1000) -> int:
    """Move parked envelopes back to the ingest queue; returns how many were moved."""
    return _move(max_messages, None)[0]


def replay_selected(message_ids: Collection[str], max_messages: int = 1000) -> Tuple[int, List[str]]:
    """Move only these parked envelopes back; returns (how many moved, the ids not found parked).
    The others seen on the way stay hidden until the scan ends (so it reaches past them) and are
    then made visible again at once."""
    moved, missing = _move(max_messages, set(message_ids))
    return moved, sorted(missing)


def _move(max_messages: int, wanted: Optional[Set[str]]) -> Tuple[int, Set[str]]:
    sqs = aws.client("sqs")
    dlq = aws.queue_url(config.DEAD_LETTER_QUEUE)
    ingest = aws.queue_url(config.INGEST_QUEUE)
    skipped: List[str] = []
    moved = 0
    try:
        for message in _receive(max_messages, visibility_timeout=60):
            if wanted is not None and message["MessageId"] not in wanted:
                skipped.append(message["ReceiptHandle"])
                continue
            for body in redrive_bodies(message["Body"]):
                sqs.send_message(QueueUrl=ingest, MessageBody=body)
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
            if wanted is not None:
                wanted.discard(message["MessageId"])
                if not wanted:
                    break
    finally:
        _release(skipped)
    return moved, wanted or set()


def use_local_stack(environ: Optional[MutableMapping[str, str]] = None) -> bool:
    """For stage `local` only: point boto3 at `make run`'s moto (same MOTO_PORT) with dummy
    credentials, so no real AWS credentials are needed or sent there. Returns whether it did."""
    env = os.environ if environ is None else environ
    if env.get("SOCIALINBOX_STAGE", "local") != "local":
        return False
    env.setdefault("AWS_ENDPOINT_URL", f"http://127.0.0.1:{env.get('MOTO_PORT') or '5000'}")
    env["AWS_ACCESS_KEY_ID"] = "local"
    env["AWS_SECRET_ACCESS_KEY"] = "local"
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
        env.pop(name, None)
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return True


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("--max", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.command == "list":
        print(json.dumps(list_parked(args.max), indent=2))
    else:
        print(f"replayed {replay(args.max)} envelope(s)")
    return 0


if __name__ == "__main__":
    use_local_stack()  # here, not in main(): tests call main() inside an in-process mock
    sys.exit(main())
