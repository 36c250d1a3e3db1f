"""HTTP routes of listening (a Chalice blueprint): topics (admins edit, every agent reads), an
agent's sentiment correction of a customer message, and the corrections export. Views stay
thin: parse, call chalicelib.listening, shape; bad input is 400 naming the field."""
from __future__ import annotations

from typing import Any, Dict

from chalice import BadRequestError, Blueprint, ConflictError, ForbiddenError, NotFoundError, Response

from chalicelib.api.common import json_body, plausible_id
from chalicelib.api.routes import admin_only, authenticated

listening_api = Blueprint(__name__)

MAX_BODY_BYTES = 32 * 1024


def _body() -> Dict[str, Any]:
    return json_body(listening_api.current_request, MAX_BODY_BYTES)


def _now_ms() -> int:
    from chalicelib.runtime import runtime

    return runtime.now_ms()


def _query(name: str) -> Any:
    return (listening_api.current_request.query_params or {}).get(name)


@listening_api.route("/api/listening/topics", methods=["GET"])
@authenticated
def list_topics(identity: Any) -> Any:
    from chalicelib.listening import topics

    return {"items": topics.list_topics(), "sources": list(topics.sources())}


def _topic_call(call: Any, *args: Any) -> Any:
    from chalicelib.listening import topics

    try:
        return call(*args)
    except topics.NotFound:
        raise NotFoundError("no such topic")
    except topics.DuplicateName as error:
        raise ConflictError(f"a topic named {str(error)!r} already exists")
    except topics.Busy as error:
        raise ConflictError(str(error))
    except ValueError as error:
        raise BadRequestError(str(error))


@listening_api.route("/api/listening/topics", methods=["POST"])
@admin_only
def create_topic(identity: Any) -> Any:
    from chalicelib.listening import topics

    created = _topic_call(topics.create_topic, _body(), _now_ms())
    return Response(created, status_code=201, headers={"Location": f"/api/listening/topics/{created['id']}"})


@listening_api.route("/api/listening/topics/{topic_id}", methods=["PUT"])
@admin_only
def replace_topic(topic_id: str, identity: Any) -> Any:
    from chalicelib.listening import topics

    return _topic_call(topics.replace_topic, topic_id, _body(), _now_ms())


@listening_api.route("/api/listening/topics/{topic_id}", methods=["DELETE"])
@admin_only
def delete_topic(topic_id: str, identity: Any) -> Any:
    from chalicelib.listening import topics

    _topic_call(topics.delete_topic, topic_id, _now_ms())
    return Response(body="", status_code=204)


@listening_api.route("/api/conversations/{conversation_id}/messages/{message_id}", methods=["PATCH"])
@authenticated
def correct_message(conversation_id: str, message_id: str, identity: Any) -> Any:
    """`{"sentiment": "positive"|"neutral"|"negative"}`: an agent's correction of a customer
    message's sentiment (kept on the message, and in the exportable corrections set)."""
    from chalicelib.api import common
    from chalicelib.inbox import store
    from chalicelib.listening.annotate import correct

    body = _body()
    if set(body) != {"sentiment"}:
        raise BadRequestError('the body is {"sentiment": "positive" | "neutral" | "negative"}')
    if not plausible_id(conversation_id, 200) or not plausible_id(message_id, 100) \
            or not common.can_see(identity, store.get(conversation_id)):
        raise NotFoundError("no such message")
    try:
        fields = correct(conversation_id, message_id, body["sentiment"], f"agent:{identity.agent_id}", _now_ms())
    except ValueError as error:
        raise BadRequestError(str(error))
    if fields is None:
        raise NotFoundError("no such message")
    return dict(fields, id=message_id)


@listening_api.route("/api/listening/corrections", methods=["GET"])
@authenticated
def corrections(identity: Any) -> Any:
    """Agents' sentiment corrections, oldest first: the labelled set, for supervisors and admins."""
    from chalicelib.api import views
    from chalicelib.listening.annotate import corrections as page

    if identity.role not in ("supervisor", "admin"):
        raise ForbiddenError("supervisors and admins only")
    try:
        limit = views.parse_limit(_query("limit"), 100)
        start = views.decode_cursor(_query("cursor"), "listening-corrections")
    except views.BadQuery as error:
        raise BadRequestError(str(error))
    items, last = page(limit, start)
    for item in items:
        item["at"] = views.iso(item["at"])
    return {"items": items, "next": views.encode_cursor(last, "listening-corrections")}


@listening_api.route("/api/listening/items", methods=["GET"])
@authenticated
def listening_items(identity: Any) -> Any:
    """Mentions of our accounts and found posts, newest first: `source`, `topic`, `sentiment`,
    `status` (default: all but dismissed), `limit`, `cursor`."""
    from chalicelib.api import views
    from chalicelib.listening import items

    try:
        limit = views.parse_limit(_query("limit"), 50)
        start = views.decode_cursor(_query("cursor"), "listening-items")
        found, last = items.list_items(_query("source"), _query("topic"), _query("sentiment"), _query("status"),
                                       limit, start)
    except (views.BadQuery, ValueError) as error:
        raise BadRequestError(str(error))
    return {"items": found, "next": views.encode_cursor(last, "listening-items")}


def _item_action(item_id: str, identity: Any, action: str) -> Any:
    from chalicelib.listening import items

    try:
        return getattr(items, action)(item_id, f"agent:{identity.agent_id}", _now_ms())
    except items.NotFound:
        raise NotFoundError("no such listening item")
    except ValueError as error:
        raise BadRequestError(str(error))


@listening_api.route("/api/listening/items/{item_id}/convert", methods=["POST"])
@authenticated
def convert_item(item_id: str, identity: Any) -> Any:
    """The item as a conversation (a mention's own, or a new one with a reply deadline);
    `{"assignee": "me"}` also takes it."""
    from chalicelib.inbox import store

    raw = listening_api.current_request.raw_body or b""
    body = _body() if raw.strip() else {}
    if set(body) - {"assignee"} or body.get("assignee") not in (None, "me"):
        raise BadRequestError('the body is empty or {"assignee": "me"}')
    converted = _item_action(item_id, identity, "convert")
    if body.get("assignee") == "me":
        try:
            store.assign(converted["conversation_id"], identity.agent_id, f"agent:{identity.agent_id}")
        except store.NotFound:
            raise NotFoundError("the item's conversation is gone")
    return converted


@listening_api.route("/api/listening/items/{item_id}/dismiss", methods=["POST"])
@authenticated
def dismiss_item(item_id: str, identity: Any) -> Any:
    return _item_action(item_id, identity, "dismiss")


@listening_api.route("/api/listening/x-budget", methods=["GET"])
@authenticated
def x_budget(identity: Any) -> Any:
    """The monthly budget of X post reads, this month's use, and whether polling stopped."""
    from chalicelib.listening import x_search

    return x_search.budget(_now_ms())


@listening_api.route("/api/listening/x-budget", methods=["PUT"])
@admin_only
def set_x_budget(identity: Any) -> Any:
    """`{"monthly_posts": N}` (0 stops X search; X bills $0.005 per post read)."""
    from chalicelib.listening import x_search

    try:
        return x_search.set_budget(_body(), _now_ms())
    except ValueError as error:
        raise BadRequestError(str(error))


@listening_api.route("/api/listening/priority-rules", methods=["GET"])
@authenticated
def priority_rules(identity: Any) -> Any:
    """The admin's rules: a negative public message or found post with reach jumps the queue."""
    from chalicelib.listening import priority

    return {"rules": priority.rules()}


@listening_api.route("/api/listening/priority-rules", methods=["PUT"])
@admin_only
def set_priority_rules(identity: Any) -> Any:
    """`{"rules": [{"sentiment", "min_followers", "min_likes", "priority"}, ...]}` (replaces all)."""
    from chalicelib.listening import priority

    try:
        return priority.save(_body(), _now_ms())
    except ValueError as error:
        raise BadRequestError(str(error))


@listening_api.route("/api/listening/ig-hashtags", methods=["GET"])
@authenticated
def ig_hashtags(identity: Any) -> Any:
    """Instagram hashtag slots per account (used of 30 per rolling 7 days, when each frees) and
    each tag's last read (`overdue` after 24 h: recent_media forgets older media)."""
    from chalicelib.api import views
    from chalicelib.listening import ig_hashtags as hashtags

    found = hashtags.status(_now_ms())
    for account in found["accounts"]:
        for tag in account["tags"]:
            tag["frees_at"] = views.iso(tag["frees_at"])
    for tag in found["tags"]:
        tag["last_polled"] = views.iso(tag["last_polled"]) if tag["last_polled"] else None
    return found


@listening_api.route("/api/reports/topics", methods=["GET"])
@authenticated
def topics_report(identity: Any) -> Any:
    """Topics and sentiment per local day, share of voice (`compare=Ours,Competitor`, else every
    topic) and top authors over the found posts and mentions of `from`..`to` (`tz`), each
    under its agent-corrected sentiment when an agent corrected its message;
    `format=csv` gives the days as a spreadsheet. Supervisors and admins."""
    from chalicelib.listening import trends
    from chalicelib.reports import summary

    if identity.role not in ("supervisor", "admin"):
        raise ForbiddenError("supervisors and admins only")
    query = dict(listening_api.current_request.query_params or {})
    try:
        form = query.get("format", "json")
        if form not in ("json", "csv"):
            raise ValueError("format must be json or csv")
        period = summary.parse_period(query.get("from"), query.get("to"), query.get("tz"), summary.MAX_DAYS)
        result = trends.report(period.from_ms, period.to_ms, summary.zone(period.tz),
                               trends.parse_compare(query.get("compare")))
    except (summary.BadQuery, ValueError) as error:
        raise BadRequestError(str(error))
    if form == "csv":
        return Response(trends.to_csv(trends.csv_rows(result)), status_code=200, headers={
            "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": 'attachment; filename="topics.csv"'})
    result["period"] = period.to_json("posts")
    counted = result.pop("counted_until_ms")
    result["counted_until"] = summary.local_iso(counted, period.tz) if counted is not None else None
    return result
