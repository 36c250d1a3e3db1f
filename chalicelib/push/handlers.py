"""The WebSocket API's routes, as Chalice calls them (`app.py`): in AWS through API Gateway, in
`make run` through chalicelib.local.websocket, the same functions either way.

- $connect: `?token=<access token>`; refused (403) unless it opens a connection. The token is
  never logged (neither is the query string).
- $default: the page's messages, JSON: {"action": "beat", "token"?: <a renewed access token>,
  "presence"?: "online"|"away"}. A beat keeps the socket from API Gateway's 10-minute idle close
  and carries the presence heartbeat the page otherwise PUTs; a token moves the connection's
  expiry. A beat on an expired or unknown connection, or with a bad token, closes it.
- $disconnect: the connection is forgotten.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Optional

#: A page's message is tiny; anything longer is not ours.
MAX_MESSAGE_BYTES = 8192


def _context(event: Any) -> Dict[str, Any]:
    return (event.to_dict() or {}).get("requestContext") or {}


def remember_endpoint(event: Any) -> None:
    """The management API of the API that delivered this event (used when PUSH_ENDPOINT is not set)."""
    from chalicelib.runtime import runtime

    context = _context(event)
    if context.get("domainName") and context.get("stage") and runtime.cached("push_endpoint") is None:
        scheme = "http" if context["domainName"].startswith(("127.0.0.1", "localhost")) else "https"
        runtime.remember("push_endpoint", f"{scheme}://{context['domainName']}/{context['stage']}")


def connect(event: Any) -> Any:
    from chalice import Response

    from chalicelib.logs import logger
    from chalicelib.push import connections

    remember_endpoint(event)
    query = (event.to_dict() or {}).get("queryStringParameters") or {}
    try:
        opened = connections.connect(event.connection_id, query.get("token"))
    except connections.Refused as refused:
        logger.info("push connection refused", extra={"reason": str(refused)})
        return Response(body="", status_code=403)
    logger.info("push connection opened", extra={"agent_id": opened["agent_id"], "feeds": len(opened["feeds"])})
    return {"statusCode": 200}


def _message(body: Any) -> Optional[Dict[str, Any]]:
    if not isinstance(body, str) or len(body.encode("utf-8", "replace")) > MAX_MESSAGE_BYTES:
        return None
    try:
        message = json.loads(body)
    except ValueError:
        return None
    return message if isinstance(message, dict) and message.get("action") == "beat" else None


def message(event: Any) -> Any:
    from chalicelib.logs import logger
    from chalicelib.push import connections

    remember_endpoint(event)
    found = _message(event.body)
    if found is None:
        return {"statusCode": 400}
    connection_id = event.connection_id
    try:
        if "token" in found:
            connections.renew(connection_id, found["token"])
        agent = connections.agent_of(connection_id)
        if agent is None:
            raise connections.Refused("expired or unknown connection")
    except connections.Refused as refused:
        logger.info("push connection closed", extra={"reason": str(refused)})
        connections.close(connection_id)
        return {"statusCode": 403}
    status = found.get("presence")
    if isinstance(status, str):
        from chalicelib import routing
        from chalicelib.routing import directory

        if status in directory.PRESENCE:
            routing.presence_changed(agent, status)
    return {"statusCode": 200}


def disconnect(event: Any) -> Any:
    from chalicelib.push import connections

    connections.forget(event.connection_id)
    return {"statusCode": 200}
