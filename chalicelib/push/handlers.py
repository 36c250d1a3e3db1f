"""The WebSocket API's routes, as Chalice calls them (`app.py`): in AWS through API Gateway, in
`make run` through chalicelib.local.websocket, the same functions either way.

- $connect: `?token=<access token>`; refused (403) unless it opens a connection. The token is
  never logged (neither is the query string).
- $default: the page's messages, JSON: {"action": "beat", "token"?: <a renewed access token>,
  "presence"?: "online"|"away", "viewing"?: {"conversation_id": <id>, "typing": bool,
  "focus_ms": <ms>, "viewers"?: bool, "shown"?: <digest>}}. A beat keeps the socket from API
  Gateway's 10-minute idle close and carries the heartbeats the page otherwise PUTs (presence;
  viewing, recorded by the REST route's own code); a token moves the connection's expiry. A beat
  on an expired or unknown connection, or with a bad token, closes it. Asked for viewers, the
  page gets {"type": "viewers", "conversation_id", "viewers", "digest"} only when they changed.
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
        identity = connections.identity_of(connection_id)
        if identity is None:
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
            routing.presence_changed(identity.agent_id, status)
    if "viewing" in found:
        return {"statusCode": viewing(connection_id, identity, found["viewing"])}
    return {"statusCode": 200}


def viewers_digest(viewers: Any) -> str:
    """What the page shows of a thread's viewers (who, named how, typing or not; never when they
    were last seen, which moves every beat): equal digests, nothing new to show."""
    import hashlib

    shown = sorted((str(v.get("agent_id")), str(v.get("name")), bool(v.get("typing")), bool(v.get("me")))
                   for v in viewers)
    return hashlib.sha256(json.dumps(shown).encode("utf-8", "replace")).hexdigest()[:16]


def viewing(connection_id: str, identity: Any, body: Any) -> int:
    """The viewing heartbeat carried by a beat: recorded exactly as PUT .../viewing records it
    (chalicelib.api.collision_routes.heartbeat: the same checks, bounds and rate limit). Asked for
    viewers, the answer goes back over the socket only when it differs from what the page says
    it shows (`shown`, the digest it was last sent), so an agent alone in a thread gets nothing."""
    from chalice import ChaliceViewError

    from chalicelib.api import ratelimit
    from chalicelib.api.collision_routes import heartbeat

    if not isinstance(body, dict):
        return 400
    fields = dict(body)
    conversation_id, shown = fields.pop("conversation_id", None), fields.pop("shown", None)
    if not _text(conversation_id, 100) or (shown is not None and not _text(shown, 64)):
        return 400
    if ratelimit.wait_seconds(identity.agent_id, ratelimit.route_class("PUT", "/viewing")):
        return 429
    try:
        answer = heartbeat(identity, conversation_id, fields)
    except ChaliceViewError as error:
        return error.STATUS_CODE
    if "viewers" in answer:
        digest = viewers_digest(answer["viewers"])
        if digest != shown:
            _send(connection_id, {"type": "viewers", "conversation_id": conversation_id,
                                  "viewers": answer["viewers"], "digest": digest})
    return 200


def _text(value: Any, limit: int) -> bool:
    """A non-empty string of at most `limit` characters that is valid Unicode (no lone surrogates)."""
    from chalicelib.inputs import encodable

    return isinstance(value, str) and 0 < len(value) <= limit and encodable(value)


def _send(connection_id: str, body: Dict[str, Any]) -> None:
    """One message to the page (a socket gone meanwhile is forgotten, like the fan-out does)."""
    from chalicelib.push import connections
    from chalicelib.runtime import runtime

    try:
        runtime.push_client().post_to_connection(ConnectionId=connection_id,
                                                 Data=json.dumps(body, separators=(",", ":")).encode())
    except Exception as error:  # noqa: BLE001 - the page asks again with its next heartbeat
        if connections.is_gone(error):
            connections.forget(connection_id)
        else:
            from chalicelib.logs import describe_error, logger

            logger.warning("push: an answer was not delivered", extra={"error": describe_error(error)[:300]})


def disconnect(event: Any) -> Any:
    from chalicelib.push import connections

    connections.forget(event.connection_id)
    return {"statusCode": 200}
