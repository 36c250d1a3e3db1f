"""Canned replies: GET/POST /api/canned-replies, GET/PUT/DELETE /api/canned-replies/{reply_id},
GET /api/canned-replies/{reply_id}/render?conversation_id=... (the text with {{contact.name}},
{{contact.handle}} and {{agent.name}} filled as plain text; unknown placeholders left as typed).

Body of POST and PUT: {"shortcut", "title", "text", "shared"?: bool (POST only; shared replies are
written by admins and supervisors, 403 otherwise)}. 400 malformed, 404 unknown (or another
agent's personal reply), 409 shortcut already used by the same owner."""
from __future__ import annotations

from typing import Any, Dict, Tuple

from chalice import BadRequestError, Blueprint, ConflictError, ForbiddenError, NotFoundError, Response

from chalicelib.api import common
from chalicelib.api.routes import authenticated

canned_api = Blueprint(__name__)

MAX_TEXT = 5000
MAX_TITLE = 120


def _fields(body: Dict[str, Any], allow_shared: bool) -> Tuple[str, str, str, bool]:
    from chalicelib.inbox import canned

    allowed = {"shortcut", "title", "text"} | ({"shared"} if allow_shared else set())
    unknown = set(body) - allowed
    if unknown:
        raise BadRequestError(f"unknown field(s): {', '.join(sorted(str(u)[:40] for u in unknown)[:5])}; "
                              f"send {', '.join(sorted(allowed))}")
    shortcut = common.clean_text(body.get("shortcut"), "shortcut", 1, 40)
    try:
        shortcut = canned.normalise_shortcut(shortcut)
    except ValueError as error:
        raise BadRequestError(str(error))
    title = common.clean_text(body.get("title"), "title", 1, MAX_TITLE)
    text = common.clean_text(body.get("text"), "text", 1, MAX_TEXT, multiline=True)
    shared = body.get("shared", False)
    if not isinstance(shared, bool):
        raise BadRequestError("shared must be true or false")
    return shortcut, title.strip(), text, shared


@canned_api.route("/api/canned-replies", methods=["GET"])
@authenticated
def list_canned(identity: Any) -> Any:
    from chalicelib.inbox import canned

    return {"items": [canned.to_json(i) for i in canned.list_for(identity.agent_id)]}


@canned_api.route("/api/canned-replies", methods=["POST"])
@authenticated
def create_canned(identity: Any) -> Any:
    from chalicelib.inbox import canned

    shortcut, title, text, shared = _fields(common.json_body(canned_api.current_request), allow_shared=True)
    try:
        item = canned.create(identity.agent_id, identity.role, shared, shortcut, title, text)
    except canned.Forbidden as refused:
        raise ForbiddenError(str(refused))
    except canned.Duplicate:
        raise ConflictError(f"the shortcut {shortcut!r} is already used")
    except ValueError as error:
        raise BadRequestError(str(error))
    return Response(canned.to_json(item), status_code=201, headers={
        "Content-Type": "application/json", "Location": f"/api/canned-replies/{item.reply_id}"})


@canned_api.route("/api/canned-replies/{reply_id}", methods=["GET"])
@authenticated
def get_canned(reply_id: str, identity: Any) -> Any:
    from chalicelib.inbox import canned

    try:
        return canned.to_json(canned.find(reply_id, identity.agent_id))
    except canned.NotFound:
        raise NotFoundError("no such canned reply")


@canned_api.route("/api/canned-replies/{reply_id}", methods=["PUT"])
@authenticated
def replace_canned(reply_id: str, identity: Any) -> Any:
    from chalicelib.inbox import canned

    shortcut, title, text, _ = _fields(common.json_body(canned_api.current_request), allow_shared=False)
    try:
        return canned.to_json(canned.replace(reply_id, identity.agent_id, identity.role, shortcut, title, text))
    except canned.NotFound:
        raise NotFoundError("no such canned reply")
    except canned.Forbidden as refused:
        raise ForbiddenError(str(refused))
    except canned.Duplicate:
        raise ConflictError(f"the shortcut {shortcut!r} is already used")


@canned_api.route("/api/canned-replies/{reply_id}", methods=["DELETE"])
@authenticated
def delete_canned(reply_id: str, identity: Any) -> Any:
    from chalicelib.inbox import canned

    try:
        canned.delete(reply_id, identity.agent_id, identity.role)
    except canned.NotFound:
        raise NotFoundError("no such canned reply")
    except canned.Forbidden as refused:
        raise ForbiddenError(str(refused))
    return Response(body="", status_code=204)


@canned_api.route("/api/canned-replies/{reply_id}/render", methods=["GET"])
@authenticated
def render_canned(reply_id: str, identity: Any) -> Any:
    from chalicelib.api import views
    from chalicelib.inbox import canned, store

    conversation_id = (canned_api.current_request.query_params or {}).get("conversation_id")
    if not common.plausible_id(conversation_id):
        raise BadRequestError("conversation_id is required")
    try:
        item = canned.find(reply_id, identity.agent_id)
    except canned.NotFound:
        raise NotFoundError("no such canned reply")
    state = store.get(conversation_id) if len(conversation_id) <= 100 else None
    if not common.can_see(identity, state):
        raise NotFoundError("no such conversation")
    values = canned.values_for(views.conversation_json(state), identity.name)
    return {"id": item.reply_id, "conversation_id": conversation_id, "text": canned.render(item.text or "", values)}
