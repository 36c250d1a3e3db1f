"""Collision detection: who else is viewing or typing in a conversation.

PUT /api/conversations/{id}/viewing {"typing": bool}: the page's heartbeat (every ~10 s while a
conversation is open, and when typing starts or stops); one PutItem, expiring by TTL.
GET /api/conversations/{id}/viewers: the agents seen in the last VIEWER_WINDOW_SECONDS (one
Query; DynamoDB's TTL deletes late, so older heartbeats are filtered out), `me` marked.
404 for unknown conversations or ones the caller may not see; 400 for a malformed body."""
from __future__ import annotations

from typing import Any

from chalice import BadRequestError, Blueprint, NotFoundError

from chalicelib.api import common
from chalicelib.api.routes import authenticated

collision_api = Blueprint(__name__)


def _visible(identity: Any, conversation_id: str) -> None:
    from chalicelib.inbox import store

    if len(conversation_id) > 100 or not common.can_see(identity, store.get(conversation_id)):
        raise NotFoundError("no such conversation")


@collision_api.route("/api/conversations/{conversation_id}/viewing", methods=["PUT"])
@authenticated
def viewing(conversation_id: str, identity: Any) -> Any:
    from chalicelib.api.views import VIEWER_WINDOW_SECONDS
    from chalicelib.models import ConversationViewer
    from chalicelib.runtime import runtime

    body = common.json_body(collision_api.current_request, limit=1024)
    if set(body) - {"typing"}:
        raise BadRequestError("send {\"typing\": true|false}")
    typing = body.get("typing", False)
    if not isinstance(typing, bool):
        raise BadRequestError("typing must be true or false")
    _visible(identity, conversation_id)
    now = runtime.now_ms()
    ConversationViewer(conversation_id, identity.agent_id, name=identity.name, typing=typing, seen_at=now,
                       expires_at=now // 1000 + VIEWER_WINDOW_SECONDS * 3).save()
    return {"conversation_id": conversation_id, "typing": typing, "expires_in": VIEWER_WINDOW_SECONDS}


@collision_api.route("/api/conversations/{conversation_id}/viewers", methods=["GET"])
@authenticated
def viewers(conversation_id: str, identity: Any) -> Any:
    from chalicelib.api.views import current_viewers

    _visible(identity, conversation_id)
    items = current_viewers(conversation_id, identity.agent_id)
    return {"items": items, "typing": [i["agent_id"] for i in items if i["typing"] and not i["me"]]}
