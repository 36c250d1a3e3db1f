"""The webhook ack path: verify, decode, enqueue, answer. Nothing else happens here.

A 200 goes out only after SQS has accepted the delivery (durable), so a platform that gets an
error simply retries. Forged requests are rejected before anything is stored.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, List, Optional

from chalicelib import aws, config
from chalicelib.channels import get_adapter
from chalicelib.channels.base import WebhookRejected, WebhookReply, WebhookRequest
from chalicelib.ingest.envelope import Envelope
from chalicelib.logs import logger
from chalicelib.tracing import subsegment

# SQS accepts 256 KiB per message; keep room for attributes.
MAX_QUEUE_MESSAGE_BYTES = 250_000


def handshake(adapter_name: str, request: WebhookRequest) -> WebhookReply:
    try:
        adapter = get_adapter(adapter_name)
    except KeyError:
        return WebhookReply(404, f"no webhook named {adapter_name!r}")
    try:
        return adapter.handshake(request, config.get_secret)
    except WebhookRejected as rejected:
        return WebhookReply(rejected.status, {"error": rejected.reason}, "application/json")


def receive(adapter_name: str, request: WebhookRequest, correlation_id: str) -> WebhookReply:
    try:
        adapter = get_adapter(adapter_name)
    except KeyError:
        return WebhookReply(404, f"no webhook named {adapter_name!r}")
    try:
        adapter.verify(request, config.get_secret)
    except WebhookRejected as rejected:
        logger.warning("webhook rejected", extra={"adapter": adapter_name, "status": rejected.status,
                                                  "reason": rejected.reason})
        return WebhookReply(rejected.status, {"error": rejected.reason}, "application/json")
    try:
        payload = json.loads(request.raw_body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return WebhookReply(400, {"error": "body is not valid JSON"}, "application/json")

    received_at = int(time.time() * 1000)
    context = adapter.delivery_context(request)
    bodies = _queue_bodies(adapter_name, adapter.split, payload, received_at, correlation_id, context)
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
