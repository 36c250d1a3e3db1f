"""The webhook ack path: verify, decode, enqueue, answer. Nothing else happens here.

A 200 goes out only after SQS has accepted the delivery (durable), so a platform that gets an
error simply retries. Forged requests are rejected before anything is stored.

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

from chalicelib import aws, config
from chalicelib.channels import get_adapter
from chalicelib.channels.base import WebhookRejected, WebhookReply, WebhookRequest
from chalicelib.ingest.envelope import Envelope
from chalicelib.logs import logger
from chalicelib.runtime import runtime
from chalicelib.tracing import subsegment

# SQS accepts 256 KiB per message; keep room for attributes.
MAX_QUEUE_MESSAGE_BYTES = 250_000
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
    bodies: Optional[List[str]] = None
    if refused is None:
        try:
            bodies = _queue_bodies(adapter_name, adapter.split, payload, received_at, correlation_id, context)
        except (UnicodeEncodeError, RecursionError, ValueError) as error:  # a shape `unprocessable` missed
            refused = f"cannot be queued: {type(error).__name__}"
    if refused is not None:
        logger.warning("delivery refused, acknowledged for quarantine",
                       extra={"adapter": adapter_name, "reason": refused, "bytes": len(request.raw_body)})
        bodies = [_refused_body(adapter_name, text, refused, received_at, correlation_id, context)]
    if bodies is None:
        logger.error("delivery too large to queue", extra={"adapter": adapter_name, "bytes": len(request.raw_body)})
        return WebhookReply(413, {"error": "delivery too large"}, "application/json")
    try:
        sqs = aws.client("sqs")
        url = aws.queue_url(config.INGEST_QUEUE)
        with subsegment("enqueue", adapter=adapter_name):
            for body in bodies:
                sqs.send_message(QueueUrl=url, MessageBody=body)
    except Exception:  # noqa: BLE001 - the platform must retry; nothing was acknowledged
        logger.exception("could not enqueue delivery", extra={"adapter": adapter_name})
        return WebhookReply(503, {"error": "temporarily unavailable, retry"}, "application/json")
    logger.info("delivery accepted", extra={"adapter": adapter_name, "queue_messages": len(bodies),
                                            "bytes": len(request.raw_body)})
    return adapter.ack()


def unprocessable(raw_body: bytes, payload: Any) -> Optional[str]:
    """Why a parsed body can never be processed, or None (the usual case, decided by cheap
    scans of the raw bytes: few brackets and no surrogate escape means nothing to walk)."""
    deep = raw_body.count(b"[") + raw_body.count(b"{") > MAX_JSON_DEPTH
    surrogates = b"\\u" in raw_body and _SURROGATE_ESCAPE.search(raw_body) is not None
    if not (deep or surrogates):
        return None
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


def _encodable(text: str) -> bool:
    if text.isascii():  # O(1) in CPython; a surrogate is never ASCII
        return True
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _refused_body(adapter_name: str, text: str, reason: str, received_at: int, correlation_id: str,
                  context: Dict[str, str]) -> str:
    """The queue body for a refused delivery: the raw text (cut to fit the queue, it is kept for
    diagnosis only) and the reason."""
    limit = MAX_QUEUE_MESSAGE_BYTES // 2  # escaping in the envelope can double the size
    if len(text.encode("utf-8")) > limit:
        text = text.encode("utf-8")[:limit].decode("utf-8", "ignore")
        reason += " (raw body truncated)"
    return Envelope(adapter_name, text, received_at, correlation_id, context, refused=reason).to_json()


def _queue_bodies(adapter_name: str, split: Callable[[Any], List[Any]], payload: Any, received_at: int,
                  correlation_id: str, context: Dict[str, str]) -> Optional[List[str]]:
    """One queue body, or several self-contained ones if the delivery is too big; None if a
    single part is still too big."""
    whole = Envelope(adapter_name, payload, received_at, correlation_id, context).to_json()
    if len(whole.encode("utf-8")) <= MAX_QUEUE_MESSAGE_BYTES:
        return [whole]
    parts = [Envelope(adapter_name, part, received_at, correlation_id, context).to_json() for part in split(payload)]
    if len(parts) < 2 or any(len(p.encode("utf-8")) > MAX_QUEUE_MESSAGE_BYTES for p in parts):
        return None
    return parts
