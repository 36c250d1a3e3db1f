"""POST /api/conversations/bulk: the same status / assignment / priority / tag change on up to 100
conversations in one call, applied through the store one conversation at a time (each change is
the same logged, conditional write a PATCH makes), answered per id.

Body: {"ids": [1..100 conversation ids], "status"?, "snoozed_until"?, "assignee"? ("me", an agent
id or null), "priority"?, "tags_add"?, "tags_remove"?}. A malformed request is 400 as a whole
(nothing applied). Otherwise 200 with one result per distinct id, in the order given:
{"id", "status": 200 | 403 | 404 | 409 | 422, "conversation"? , "error"? {"Code", "Message"}, "applied": [...]}
One bad id never fails the others, and never makes the call 5xx. An assignee who cannot be given
work (unknown, deactivated) is 422 for the whole call; a hand-over to another team the caller may
not make (access.assign_refusal) is 403 for that id, and nothing is applied to it.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from chalice import BadRequestError, Blueprint

from chalicelib.api import common
from chalicelib.api.routes import authenticated
from chalicelib.logs import describe_error, logger

bulk_api = Blueprint(__name__)

MAX_IDS = 100
FIELDS = {"ids", "status", "snoozed_until", "assignee", "priority", "tags_add", "tags_remove"}
CHANGES = ("status", "assignee", "priority", "tags_add", "tags_remove")


def _tags(body: Dict[str, Any], name: str) -> Optional[List[str]]:
    from chalicelib.inbox.rules import MAX_TAGS, tag_name

    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_TAGS:
        raise BadRequestError(f"{name} must be a list of 1 to {MAX_TAGS} tags")
    if not all(tag_name(tag) for tag in value):
        raise BadRequestError(f"each tag in {name} is a name of 1 to 32 characters without '#' or control characters")
    return value


def parse(body: Dict[str, Any], agent_id: str) -> Dict[str, Any]:
    """The validated change (400 for anything malformed: nothing is applied then)."""
    from chalicelib.api import access
    from chalicelib.inbox import rules

    unknown = set(body) - FIELDS
    if unknown:
        raise BadRequestError(f"unknown field(s): {', '.join(sorted(str(u)[:40] for u in unknown)[:5])}")
    ids = body.get("ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_IDS:
        raise BadRequestError(f"ids must be a list of 1 to {MAX_IDS} conversation ids")
    if not all(common.plausible_id(i) for i in ids):
        raise BadRequestError("each id must be a conversation id (a string of 1 to 200 characters)")
    if not any(name in body for name in CHANGES):
        raise BadRequestError("send any of 'status' (with 'snoozed_until' for snoozed), 'assignee', 'priority', "
                              "'tags_add', 'tags_remove'")
    change: Dict[str, Any] = {"ids": list(dict.fromkeys(ids))}
    if "status" in body:
        if body["status"] not in rules.STATUSES:
            raise BadRequestError(f"status must be one of {', '.join(rules.STATUSES)}")
        change["status"] = body["status"]
        until = body.get("snoozed_until")
        if (body["status"] == "snoozed") != (until is not None):
            raise BadRequestError("snoozed needs snoozed_until, and only snoozed takes it")
        change["until"] = common.parse_time(until, "snoozed_until") if until is not None else None
    elif "snoozed_until" in body:
        raise BadRequestError("snoozed_until goes with status 'snoozed'")
    if "assignee" in body:
        change["assignee"] = access.parse_assignee(body["assignee"], agent_id)
    if "priority" in body:
        if body["priority"] not in rules.PRIORITIES:
            raise BadRequestError(f"priority must be one of {', '.join(rules.PRIORITIES)}")
        change["priority"] = body["priority"]
    add, remove = _tags(body, "tags_add"), _tags(body, "tags_remove")
    if add is not None or remove is not None:
        change["tags"] = (add or [], remove or [])
    return change


def apply_one(conversation_id: str, change: Dict[str, Any], identity: Any) -> Dict[str, Any]:
    """One conversation's result; never raises."""
    from chalicelib.api import access, names, views
    from chalicelib.inbox import rules, store

    actor = f"agent:{identity.agent_id}"
    applied: List[str] = []
    result: Dict[str, Any] = {"id": conversation_id, "applied": applied}

    def failed(status: int, code: str, message: str, **extra: Any) -> Dict[str, Any]:
        result.update(status=status, error=dict({"Code": code, "Message": message}, **extra))
        return result

    try:
        state = store.get(conversation_id) if len(conversation_id) <= 100 else None
        if not common.can_see(identity, state):
            return failed(404, "NotFoundError", "no such conversation")
        refused = access.check_assignment(identity, state or {}, change.get("candidate"))
        if refused:  # before anything is applied to this conversation
            return failed(refused.status, "ForbiddenError" if refused.status == 403 else "UnprocessableEntity",
                          refused.message)
        state = None
        if "assignee" in change:
            state = store.assign(conversation_id, change["assignee"], actor)
            applied.append("assignee")
        if "status" in change:
            state = store.set_status(conversation_id, change["status"], actor, change["until"])
            applied.append("status")
        if "priority" in change:
            state = store.set_priority(conversation_id, change["priority"], actor)
            applied.append("priority")
        if "tags" in change:
            state = store.change_tags(conversation_id, change["tags"][0], change["tags"][1], actor)
            applied.append("tags")
    except store.NotFound:
        return failed(404, "NotFoundError", "no such conversation")
    except store.Busy:
        return failed(409, "Busy", "the conversation kept changing; try this id again")
    except rules.Conflict as conflict:
        return failed(409, "Conflict", str(conflict), current=names.with_name(conflict.current))
    except rules.RuleError as refused:
        return failed(422, "UnprocessableEntity", str(refused))
    except Exception as unexpected:  # noqa: BLE001 - one id's failure is reported, the others go on
        logger.error("bulk change failed for one conversation",
                     extra={"conversation_id": conversation_id, "error": describe_error(unexpected)})
        return failed(409, "NotApplied", "this conversation could not be changed right now; try this id again")
    result.update(status=200, conversation=views.conversation_json(state or store.get(conversation_id) or {}))
    return result


@bulk_api.route("/api/conversations/bulk", methods=["POST"])
@authenticated
def bulk_change(identity: Any) -> Any:
    from chalicelib.api import access, ratelimit

    change = parse(common.json_body(bulk_api.current_request), identity.agent_id)
    limited = ratelimit.refusal(identity.agent_id, "bulk", len(change["ids"]))
    if limited is not None:  # bulk work is bounded by conversation ids, not by calls
        return limited
    if "assignee" in change:  # an unknown or deactivated assignee is 422 for the whole call
        change["candidate"] = access.assignee_of(identity, change["assignee"])
    results = [apply_one(conversation_id, change, identity) for conversation_id in change["ids"]]
    ok = sum(1 for r in results if r["status"] == 200)
    return {"results": results, "ok": ok, "failed": len(results) - ok}
