"""The message that carries one accepted delivery from the ack path to the processor: the body of
a record of the processor's event, whether Lambda's SQS poller built that event (the ingest
queue: replays, what an older webhook queued) or the webhook invoked the processor with it
asynchronously (`invocation_event`, records from WEBHOOK_EVENT_SOURCE)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence

VERSION = 1
#: The `eventSource` of the records the webhook hands the processor by asynchronous invocation
#: (SQS's records say "aws:sqs"): the processor settles those by raising, never by a partial
#: batch response, which Lambda ignores for an asynchronous invocation.
WEBHOOK_EVENT_SOURCE = "socialinbox:webhook"


@dataclass(frozen=True)
class Envelope:
    """One delivery (or one self-contained part of it) on its way to the processor.

    `refused` is set when a correctly signed delivery can never be processed (a lone surrogate,
    absurd nesting): the platform gets its 200 so it stops retrying, `payload` is then the raw
    body as text, and the processor quarantines it with the reason instead of parsing it."""

    adapter: str
    payload: Any
    received_at_ms: int
    correlation_id: str
    context: Dict[str, str] = field(default_factory=dict)
    refused: Optional[str] = None

    def to_json(self) -> str:
        data: Dict[str, Any] = {"v": VERSION, "adapter": self.adapter, "received_at": self.received_at_ms,
                                "correlation_id": self.correlation_id, "context": self.context,
                                "payload": self.payload}
        if self.refused:
            data["refused"] = self.refused
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, body: str) -> "Envelope":
        data: Dict[str, Any] = json.loads(body)
        if not isinstance(data, dict) or data.get("v") != VERSION or not isinstance(data.get("adapter"), str):
            raise ValueError("not a socialinbox ingest envelope")
        context = data.get("context") if isinstance(data.get("context"), dict) else {}
        refused = data.get("refused")
        return cls(data["adapter"], data.get("payload"), int(data.get("received_at") or 0),
                   str(data.get("correlation_id") or ""), {str(k): str(v) for k, v in context.items()},
                   str(refused) if refused else None)


def invocation_record(body: str, record_id: str, received_at_ms: int) -> bytes:
    """One record of the processor's event, shaped like an SQS record (`messageId`, `body`) so
    one handler serves both doors; JSON bytes, joined into an event by `invocation_event`."""
    record = {"messageId": record_id, "body": body, "eventSource": WEBHOOK_EVENT_SOURCE,
              "attributes": {"SentTimestamp": str(received_at_ms)}}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def invocation_event(records: Sequence[bytes]) -> bytes:
    """The event (`{"Records": [...]}`, JSON bytes) the processor is invoked with."""
    return b'{"Records":[' + b",".join(records) + b"]}"
