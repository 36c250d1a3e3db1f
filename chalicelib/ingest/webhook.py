"""The webhook ack path: verify, decode, hand off, answer. Nothing else happens here.

The hand-off is an asynchronous invocation of the ingest processor (issue 21: no SQS request per
delivery): Lambda answers 202 only once it has stored the event in its own queue, and then runs
the processor with it, twice more if that fails, and finally sends it to the ingest DLQ (the
function's on-failure destination, infra/deploy.py). So a 200 still goes out only after the
delivery is kept; a refused invocation is a 503 and the platform simply retries. Forged requests
are rejected before anything is stored.

A correctly signed body that parses but can never be processed (a lone UTF-16 surrogate such as
`\ud83d`, which has no UTF-8 form, or JSON nested deeper than MAX_JSON_DEPTH) is acknowledged
and travels as raw text to the processor, which quarantines it: a 5xx would only make the
platform retry for days and then drop it, and a 4xx would drop it at once.
"""
from __future__ import annotations

import json
import re
import time
from typing import Any, Callable, Dict, List, Optional

from chalicelib import config
from chalicelib.channels import get_adapter
from chalicelib.channels.base import WebhookRejected, WebhookReply, WebhookRequest
from chalicelib.ingest.envelope import Envelope, invocation_event, invocation_record
from chalicelib.logs import logger
from chalicelib.runtime import runtime
from chalicelib.tracing import subsegment

# Lambda takes an asynchronous invocation's event up to 256 KiB (262,144 bytes), counted on the
# JSON as sent (the envelope escaped once more inside the record). What fails three times reaches
# the ingest DLQ as an invocation record (the event with a few KB of context and the error), which
# SQS must still take (256 KiB), and a replay sends each record's body back as one queue message:
# both fit when the event stays below this.
MAX_EVENT_BYTES = 250_000
# Real deliveries nest < 15 levels; the processor, the pipeline and json.dumps recurse per level.
MAX_JSON_DEPTH = 100
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF][0-9a-fA-F]{2}")


def handshake(adapter_name: str, request: WebhookRequest) -> WebhookReply:
    try:
        adapter = get_adapter(adapter_name)
    except KeyError:
        return WebhookReply(404, f"no webhook named {adapter_name!r}")
    try:
        return adapter.handshake(request, runtime.secret)
    except WebhookRejected as rejected:
        return WebhookReply(rejected.status, {"error": rejected.reason}, "application/json")


def receive(adapter_name: str, request: WebhookRequest, correlation_id: str) -> WebhookReply:
    try:
        adapter = get_adapter(adapter_name)
    except KeyError:
        return WebhookReply(404, f"no webhook named {adapter_name!r}")
    try:
        adapter.verify(request, runtime.secret)
    except WebhookRejected as rejected:
        logger.warning("webhook rejected", extra={"adapter": adapter_name, "status": rejected.status,
                                                  "reason": rejected.reason})
        return WebhookReply(rejected.status, {"error": rejected.reason}, "application/json")
    payload: Any = None
    try:
        text = request.raw_body.decode("utf-8")
        payload = json.loads(text)
        refused = unprocessable(request.raw_body, payload)
    except (UnicodeDecodeError, ValueError):
        return WebhookReply(400, {"error": "body is not valid JSON"}, "application/json")
    except RecursionError:
        refused = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"

    received_at = int(time.time() * 1000)
    context = adapter.delivery_context(request)
    events: Optional[List[bytes]] = None
    if refused is None:
        try:
            events = _events(adapter_name, adapter.split, payload, received_at, correlation_id, context)
        except (UnicodeEncodeError, RecursionError, ValueError) as error:  # a shape `unprocessable` missed
            refused = f"cannot be handed off: {type(error).__name__}"
    if refused is not None:
        logger.warning("delivery refused, acknowledged for quarantine",
                       extra={"adapter": adapter_name, "reason": refused, "bytes": len(request.raw_body)})
        events = [_refused_event(adapter_name, text, refused, received_at, correlation_id, context)]
    if events is None:
        logger.error("delivery too large to hand off", extra={"adapter": adapter_name, "bytes": len(request.raw_body)})
        return WebhookReply(413, {"error": "delivery too large"}, "application/json")
    try:
        with subsegment("hand_off", adapter=adapter_name):
            for event in events:
                runtime.invoke_async(config.INGEST_PROCESSOR_FUNCTION, event)
    except Exception:  # noqa: BLE001 - the platform must retry; nothing was acknowledged
        logger.exception("could not hand off delivery", extra={"adapter": adapter_name})
        return WebhookReply(503, {"error": "temporarily unavailable, retry"}, "application/json")
    logger.info("delivery accepted", extra={"adapter": adapter_name, "invocations": len(events),
                                            "bytes": len(request.raw_body)})
    return adapter.ack()


def unprocessable(raw_body: bytes, payload: Any) -> Optional[str]:
    """Why a parsed body can never be processed, or None (the usual case, decided by cheap
    scans of the raw bytes: few brackets and no surrogate escape means nothing to walk)."""
    deep = raw_body.count(b"[") + raw_body.count(b"{") > MAX_JSON_DEPTH
    surrogates = b"\\u" in raw_body and _SURROGATE_ESCAPE.search(raw_body) is not None
    if not (deep or surrogates):
        return None
    from chalicelib.inputs import encodable as _encodable  # only on this rare path: not on the cold one

    surrogate = "lone UTF-16 surrogate escape in the JSON (not valid Unicode)"
    if not isinstance(payload, (dict, list)):
        return surrogate if surrogates and isinstance(payload, str) and not _encodable(payload) else None
    stack: List[Any] = [(payload, 1)]
    while stack:  # iterative: the nesting itself is what could overflow a recursive walk
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(value, dict):
            if surrogates and not all(_encodable(k) for k in value):
                return surrogate
            children: Any = value.values()
        else:
            children = value
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
            elif surrogates and isinstance(child, str) and not _encodable(child):
                return surrogate
    return None



def _refused_event(adapter_name: str, text: str, reason: str, received_at: int, correlation_id: str,
                   context: Dict[str, str]) -> bytes:
    """The event for a refused delivery: the raw text (cut to fit if need be: it is kept for
    diagnosis only) and the reason. Escaping can double the text in the envelope and the
    envelope again in the record, so a quarter of the budget always fits."""
    def event(raw: str, why: str) -> bytes:
        body = Envelope(adapter_name, raw, received_at, correlation_id, context, refused=why).to_json()
        return invocation_event([invocation_record(body, f"{correlation_id}:0", received_at)])

    whole = event(text, reason)
    if len(whole) <= MAX_EVENT_BYTES:
        return whole
    cut = text.encode("utf-8")[:MAX_EVENT_BYTES // 4 - 4096].decode("utf-8", "ignore")
    return event(cut, reason + " (raw body truncated)")


def _events(adapter_name: str, split: Callable[[Any], List[Any]], payload: Any, received_at: int,
            correlation_id: str, context: Dict[str, str]) -> Optional[List[bytes]]:
    """The processor's event for the delivery: one record, or if that is too big the delivery's
    self-contained parts, as few events as hold them; None if a single part is still too big."""
    def record(part: Any, number: int) -> bytes:
        body = Envelope(adapter_name, part, received_at, correlation_id, context).to_json()
        return invocation_record(body, f"{correlation_id}:{number}", received_at)

    whole = invocation_event([record(payload, 0)])
    if len(whole) <= MAX_EVENT_BYTES:
        return [whole]
    parts = [record(part, number) for number, part in enumerate(split(payload))]
    if len(parts) < 2:
        return None
    return pack(parts, MAX_EVENT_BYTES)


def pack(records: List[bytes], limit: int) -> Optional[List[bytes]]:
    """`records` in order in as few events as hold them, each at most `limit` bytes; None when
    one record alone does not fit."""
    empty = len(invocation_event([]))
    events: List[bytes] = []
    batch: List[bytes] = []
    size = empty
    for item in records:
        if empty + len(item) > limit:
            return None
        grown = size + len(item) + (1 if batch else 0)  # the comma between records
        if batch and grown > limit:
            events.append(invocation_event(batch))
            batch, grown = [], empty + len(item)
        batch.append(item)
        size = grown
    if batch:
        events.append(invocation_event(batch))
    return events
