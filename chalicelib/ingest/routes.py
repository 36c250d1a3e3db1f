"""Webhook routes: GET for the platform's handshake, POST for deliveries (the ack path)."""
from __future__ import annotations

import json
from typing import Any

from chalice import Blueprint, Response

from chalicelib.channels.base import WebhookReply, WebhookRequest

webhooks = Blueprint(__name__)


def _request() -> WebhookRequest:
    current = webhooks.current_request
    headers = {k.lower(): v for k, v in (current.headers or {}).items()}
    return WebhookRequest(current.method, headers, dict(current.query_params or {}), current.raw_body or b"")


def _response(reply: WebhookReply) -> Response:
    body: Any = reply.body
    if isinstance(body, dict):
        body = json.dumps(body)
    return Response(body=body, status_code=reply.status, headers={"Content-Type": reply.content_type})


@webhooks.route("/webhooks/{platform}", methods=["GET"])
def webhook_handshake(platform: str) -> Response:
    from chalicelib.ingest import webhook

    return _response(webhook.handshake(platform, _request()))


@webhooks.route("/webhooks/{platform}", methods=["POST"], content_types=["application/json"])
def webhook_delivery(platform: str) -> Response:
    from chalicelib.ingest import webhook
    from chalicelib.logs import bind_correlation_id

    context = webhooks.current_request.context or {}
    correlation_id = bind_correlation_id(context.get("requestId"))
    return _response(webhook.receive(platform, _request(), correlation_id))
