"""Collision detection: who else is viewing or typing in a conversation.

PUT /api/conversations/{id}/viewing {"typing": bool, "focus_ms"?: int, "viewers"?: bool}: the
page's heartbeat (every ~15 s while a conversation is open in a visible page, and when typing
starts or stops); one PutItem, expiring by TTL. With "viewers": true it also answers who else is
there (one Query): a page on live updates polls nothing, so its heartbeat brings them. The page
on live updates sends the same heartbeat over its socket instead (chalicelib.push.handlers calls
`heartbeat`, the one implementation of both). `focus_ms` (how long the thread was open in a
visible page since the previous heartbeat) is the staffing package's measured handle time: bounded by what the
server saw (chalicelib.staffing.focus), and written only when there is some.
GET /api/conversations/{id}/viewers: the agents seen in the last VIEWER_WINDOW_SECONDS (one
Query; DynamoDB's TTL deletes late, so older heartbeats are filtered out), `me` marked.
404 for unknown conversations or ones the caller may not see; 400 for a malformed body."""
from __future__ import annotations

from typing import Any, Dict

from chalice import BadRequestError, Blueprint, NotFoundError

from chalicelib.api import common
from chalicelib.api.routes import authenticated

collision_api = Blueprint(__name__)

#: A heartbeat's focus claim above this is malformed, not merely capped.
MAX_FOCUS_CLAIM_MS = 3_600_000


def _visible(identity: Any, conversation_id: str) -> Dict[str, Any]:
    from chalicelib.inbox import store

    state = store.get(conversation_id) if len(conversation_id) <= 100 else None
    if not common.can_see(identity, state):
        raise NotFoundError("no such conversation")
    return state  # type: ignore[return-value]


@collision_api.route("/api/conversations/{conversation_id}/viewing", methods=["PUT"])
@authenticated
def viewing(conversation_id: str, identity: Any) -> Any:
    return heartbeat(identity, conversation_id, common.json_body(collision_api.current_request, limit=1024))


def heartbeat(identity: Any, conversation_id: str, body: Any) -> Dict[str, Any]:
    """One viewing heartbeat of `identity` (the REST route's body, or the same fields carried on
    the live-updates socket: chalicelib.push.handlers), so both paths record and bound alike.
    BadRequestError for a malformed body, NotFoundError for a conversation the agent may not see."""
    from chalicelib.api.views import VIEWER_WINDOW_SECONDS
    from chalicelib.models import ConversationViewer
    from chalicelib.runtime import runtime

    from chalicelib.staffing import focus

    if not isinstance(body, dict) or set(body) - {"typing", "focus_ms", "viewers"}:
        raise BadRequestError("send {\"typing\": true|false, \"focus_ms\": <ms>, \"viewers\": true|false}")
    if not isinstance(body.get("viewers", False), bool):
        raise BadRequestError("viewers must be true or false")
    typing = body.get("typing", False)
    if not isinstance(typing, bool):
        raise BadRequestError("typing must be true or false")
    claimed = body.get("focus_ms", 0)
    if isinstance(claimed, bool) or not isinstance(claimed, int) or not 0 <= claimed <= MAX_FOCUS_CLAIM_MS:
        raise BadRequestError(f"focus_ms must be a whole number of milliseconds, 0 to {MAX_FOCUS_CLAIM_MS}")
    if not isinstance(conversation_id, str):
        raise NotFoundError("no such conversation")
    state = _visible(identity, conversation_id)
    now = runtime.now_ms()
    viewer = ConversationViewer(conversation_id, identity.agent_id, name=identity.name, typing=typing, seen_at=now,
                                expires_at=now // 1000 + VIEWER_WINDOW_SECONDS * 3)
    # The old item (if this agent's previous heartbeat is still there) bounds the focus claimed.
    old = runtime.client("dynamodb").put_item(TableName=ConversationViewer.Meta.table_name, Item=viewer.serialize(),
                                              ReturnValues="ALL_OLD").get("Attributes", {})
    previous = int(old["seen_at"]["N"]) if "seen_at" in old else None
    focus.record(state, focus.bounded(claimed, previous, now), now, previous)
    answer: Dict[str, Any] = {"conversation_id": conversation_id, "typing": typing,
                              "expires_in": VIEWER_WINDOW_SECONDS}
    if body.get("viewers"):
        from chalicelib.api.views import current_viewers

        answer["viewers"] = current_viewers(conversation_id, identity.agent_id)
    return answer


@collision_api.route("/api/conversations/{conversation_id}/viewers", methods=["GET"])
@authenticated
def viewers(conversation_id: str, identity: Any) -> Any:
    from chalicelib.api.views import current_viewers

    _visible(identity, conversation_id)
    items = current_viewers(conversation_id, identity.agent_id)
    return {"items": items, "typing": [i["agent_id"] for i in items if i["typing"] and not i["me"]]}
