"""The webhooks' own Lambda function, reached through its Lambda function URL (issue 21): no API
Gateway in front (no per-request charge; the platforms' signatures are the gate, checked in
chalicelib.ingest.webhook exactly as on the REST route), and a cold start that loads only the ack
path (app.py registers no REST route in this function, see chalicelib.config.serves_routes).

A function URL hands the function its payload format 2.0 event (rawPath, rawQueryString, headers
with lower-cased names, body, isBase64Encoded, requestContext.http.method) and takes back
{statusCode, headers, body}. The path is the REST API's: `/webhooks/<platform>`, so a platform's
callback URL changes only in its host.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Dict, Mapping, Optional
from urllib.parse import parse_qsl

from chalicelib.channels.base import WebhookReply, WebhookRequest
from chalicelib.http_headers import SECURITY_HEADERS

#: `/webhooks/<platform>` (a trailing slash tolerated, as API Gateway does).
PATH = re.compile(r"^/webhooks/([A-Za-z0-9_-]{1,40})/?$")
#: What the REST route accepts for deliveries (Chalice answers 415 to anything else).
DELIVERY_CONTENT_TYPE = "application/json"


def handle(event: Mapping[str, Any]) -> Dict[str, Any]:
    """Answer one function URL request: a platform's GET handshake or a POST delivery."""
    from chalicelib.logs import bind_correlation_id

    context = event.get("requestContext") or {}
    correlation_id = bind_correlation_id(context.get("requestId"))
    method = str((context.get("http") or {}).get("method") or "").upper()
    match = PATH.match(str(event.get("rawPath") or ""))
    if match is None:
        return _answer(WebhookReply(404, {"error": "no such webhook (use /webhooks/<platform>)"}, "application/json"))
    platform = match.group(1)
    if method not in ("GET", "POST"):
        reply = WebhookReply(405, {"error": f"method {method or 'missing'} not allowed"}, "application/json")
        return _answer(reply, {"Allow": "GET, POST"})
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    body = _body(event)
    if body is None:
        return _answer(WebhookReply(400, {"error": "body is not valid base64"}, "application/json"))
    query = dict(parse_qsl(str(event.get("rawQueryString") or ""), keep_blank_values=True))
    request = WebhookRequest(method, headers, query, body)
    from chalicelib.ingest import webhook

    if method == "GET":
        return _answer(webhook.handshake(platform, request))
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != DELIVERY_CONTENT_TYPE:
        return _answer(WebhookReply(415, {"error": f"Content-Type must be {DELIVERY_CONTENT_TYPE}"},
                                    "application/json"))
    return _answer(webhook.receive(platform, request, correlation_id))


def _body(event: Mapping[str, Any]) -> Optional[bytes]:
    raw = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return str(raw).encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(str(raw), validate=True)
    except (binascii.Error, ValueError):
        return None


def _answer(reply: WebhookReply, extra: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
    headers = dict(SECURITY_HEADERS, **{"Content-Type": reply.content_type, "Cache-Control": "no-store"})
    headers.update(extra or {})
    return {"statusCode": reply.status, "headers": headers, "body": body, "isBase64Encoded": False}
