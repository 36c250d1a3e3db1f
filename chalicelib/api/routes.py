"""HTTP routes of the agent API (a Chalice blueprint). Views stay thin: parse, call, shape."""
from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Optional

from chalice import Blueprint, BadRequestError, ConflictError, ForbiddenError, NotFoundError, Response, UnauthorizedError

api = Blueprint(__name__)


def _json_body() -> Dict[str, Any]:
    from chalicelib.api.common import json_body

    return json_body(api.current_request)


def _query(name: str) -> Optional[str]:
    params = api.current_request.query_params or {}
    return params.get(name)


#: The 403 message while an agent still holds the temporary password an admin gave them.
PASSWORD_CHANGE_REQUIRED = "password_change_required: choose your own password first (POST /api/me/password)"


def authenticated(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Require a valid agent token; the identity is passed as `identity=`. An agent signed in
    with a temporary password gets 403 until they change it, except on routes marked with
    `allows_temporary_password` (who am I, change my password). Each agent's requests are
    rate-limited per route class (chalicelib.api.ratelimit: 429 with Retry-After)."""
    allow_temporary = getattr(handler, "allows_temporary_password", False)

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from chalicelib.api import ratelimit
        from chalicelib.api.auth import identity_from_header

        request = api.current_request
        identity = identity_from_header(request.headers.get("authorization"))
        if identity is None:
            raise UnauthorizedError("a valid Bearer token is required")
        limited = ratelimit.refusal(identity.agent_id, ratelimit.route_class(request.method, request.path))
        if limited is not None:
            return limited
        if identity.must_change_password and not allow_temporary:
            raise ForbiddenError(PASSWORD_CHANGE_REQUIRED)
        return handler(*args, identity=identity, **kwargs)

    return wrapper


def allows_temporary_password(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a route an agent may call before replacing a temporary password (apply it under
    `authenticated`)."""
    handler.allows_temporary_password = True  # type: ignore[attr-defined]
    return handler


def admin_only(handler: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(handler)
    def wrapper(*args: Any, identity: Any, **kwargs: Any) -> Any:
        if identity.role != "admin":
            raise ForbiddenError("admins only")
        return handler(*args, identity=identity, **kwargs)

    return authenticated(wrapper)


@api.route("/api/auth/login", methods=["POST"])
def login() -> Any:
    """Exchange credentials for a token. Every answer is `no-store`: neither a token nor a
    refusal may sit in a shared cache. The throttle keys on API Gateway's view of the caller's
    address (`sourceIp`), never on a client-supplied header."""
    from chalicelib import inputs
    from chalicelib.api.auth import LoginRefused, sign_in

    headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
    try:
        body = _json_body()
    except BadRequestError as error:
        return Response({"Code": "BadRequestError", "Message": str(error)}, headers=headers,
                        status_code=400)
    email, password = body.get("email"), body.get("password")
    problem = None
    if not isinstance(email, str) or not isinstance(password, str) or not email or not password:
        problem = "email and password are required strings"
    elif len(email) > 320 or len(password) > 1024:
        problem = "email or password too long"
    elif not inputs.is_clean(email) or inputs.SURROGATE.search(password):
        problem = "email or password is not valid text"
    if problem:
        return Response({"Code": "BadRequestError", "Message": problem}, headers=headers, status_code=400)
    identity = (api.current_request.context or {}).get("identity") or {}
    source = identity.get("sourceIp") if isinstance(identity, dict) else None
    try:
        session = sign_in(email, password, source=source if isinstance(source, str) else None)
    except LoginRefused as refused:
        if refused.retry_after:
            headers["Retry-After"] = str(refused.retry_after)
        return Response({"Code": "LoginRefused", "Message": refused.message}, headers=headers,
                        status_code=refused.status)
    return Response(session, headers=headers, status_code=200)  # token, token_type, expires_in, refresh_token


@api.route("/api/me", methods=["GET"])
@authenticated
@allows_temporary_password
def me(identity: Any) -> Any:
    from chalicelib.api import access

    teams = [] if identity.must_change_password else sorted(access.teams_of(identity.agent_id))
    return {"id": identity.agent_id, "email": identity.email, "name": identity.name, "role": identity.role,
            "must_change_password": identity.must_change_password, "teams": teams,
            # the live updates' socket (chalicelib.push); "" where there is none: the page polls
            "push_url": _push_url()}


def _push_url() -> str:
    from chalicelib import config

    return config.push_url()


@api.route("/api/me/notifications", methods=["GET"])
@authenticated
def my_notifications(identity: Any) -> Any:
    """What the SLA escalations told this agent, newest first (`agents`: the assignees' names)."""
    from chalicelib.api import names, views
    from chalicelib.sla.escalation import notifications_for

    try:
        limit = views.parse_limit(_query("limit"), 50)
    except views.BadQuery as error:
        raise BadRequestError(str(error))
    items = notifications_for(identity.agent_id, limit)
    for item in items:
        item["at"] = views.iso(item["at"])
        if "due_at" in item["data"]:
            item["data"]["due_at"] = views.iso(item["data"]["due_at"])
    return {"items": items, "agents": names.labels(i["data"].get("assignee") for i in items)}


@api.route("/api/conversations", methods=["GET"])
@authenticated
def conversations(identity: Any) -> Any:
    from chalicelib.api import access, views

    assignee = _query("assignee")
    if assignee == "me":
        assignee = identity.agent_id
    access.check_assignee_view(identity, assignee)
    try:
        items, cursor = views.list_conversations(
            status=_query("status"), channel=_query("channel"), assignee=assignee, sort=_query("sort"),
            limit=views.parse_limit(_query("limit")), cursor=_query("cursor"),
            team=access.list_team(identity, _query("team")), sla=_query("sla"), tag=_query("tag"),
            sentiment=_query("sentiment"))
    except views.BadQuery as error:
        raise BadRequestError(str(error))
    return {"items": access.visible(identity, items), "next": cursor}


@api.route("/api/counts", methods=["GET"])
@authenticated
def view_counts(identity: Any) -> Any:
    """The open conversations in each view of the page (mine, unassigned, team, at risk,
    breached) in one answer, optionally of one `channel`."""
    from chalicelib.api import access, views

    team = access.list_team(identity, _query("team"))
    try:
        answer = views.view_counts(team, identity.agent_id, _query("channel") or None)
    except views.BadQuery as error:
        raise BadRequestError(str(error))
    return dict(answer, team=team)


@api.route("/api/changes", methods=["GET"])
@authenticated
def changes(identity: Any) -> Any:
    """The page's one poll: which of its parts (list, counts, the open `conversation`, its
    `viewers=1`) changed since the token it holds (`since`); 304 when none did. At most two
    DynamoDB requests (one BatchGetItem, one Query), plus one Query when viewers are asked for."""
    from chalicelib.api import access
    from chalicelib.inbox import changes as feed

    team = access.list_team(identity, _query("team"))
    conversation = _query("conversation") or None
    if conversation is not None and not 1 <= len(conversation) <= access.MAX_ID:
        raise BadRequestError("conversation must be a conversation id")
    since = feed.parse_token(_query("since"))
    if _query("since") and not since:
        raise BadRequestError("since must be a token this route answered")
    teams = [team] if access.sees_everything(identity) else sorted(access.teams_of(identity.agent_id) | {team})
    viewers, seen = None, []
    if conversation and _query("viewers") == "1":
        def viewers() -> Any:  # read once, for the fingerprint and the answer
            from chalicelib.api.views import current_viewers

            if not seen:
                seen.append(current_viewers(conversation, identity.agent_id))
            return seen[0]

    now = feed.snapshot(teams, identity.agent_id, team, conversation,
                        lambda state: access.may_see(identity, state), viewers)
    moved = feed.compare(now, since)
    token = feed.token(now, since)
    if since and not moved:
        return Response(body="", status_code=304, headers={"ETag": '"' + token + '"'})
    answer: Dict[str, Any] = {"token": token, "changed": moved}
    if viewers is not None and "viewers" in moved:
        answer["viewers"] = seen[0] if seen else []  # read only for a conversation the caller may see
    return answer


@api.route("/api/conversations/{conversation_id}", methods=["GET"])
@authenticated
def conversation(conversation_id: str, identity: Any) -> Any:
    """A conversation, with the messaging window its next reply falls in (`reply_window`)."""
    from chalicelib.api import access, views

    state = access.require_conversation(identity, conversation_id)
    return dict(views.conversation_json(state), reply_window=views.reply_window(state))


@api.route("/api/conversations/{conversation_id}", methods=["PATCH"])
@authenticated
def change_conversation(conversation_id: str, identity: Any) -> Any:
    """Status (open, pending, snoozed with `snoozed_until`, resolved) and assignment
    (`assignee`: "me", an agent id or null). With `"claim": true` the assignment only happens
    if nobody holds the conversation: of two racing claims exactly one wins, the other is 409.
    Who may be given it is access.assign_refusal's rule: 422 for an unknown or deactivated
    agent, 403 (saying why) for a hand-over to another team the caller may not make."""
    from chalicelib.api import access, common, names, views
    from chalicelib.inbox import rules, store

    state = access.require_conversation(identity, conversation_id)
    body = _json_body()
    unknown = set(body) - {"status", "snoozed_until", "assignee", "claim", "priority", "tags"}
    if unknown or not ({"status", "assignee", "priority", "tags"} & set(body)):
        raise BadRequestError("send any of 'status' (with 'snoozed_until' for snoozed), 'assignee' (with 'claim'), "
                              "'priority', 'tags'")
    actor = f"agent:{identity.agent_id}"
    try:
        if "assignee" in body:
            agent = access.parse_assignee(body["assignee"], identity.agent_id)
            if body.get("claim") not in (None, True, False):
                raise BadRequestError("claim must be true or false")
            refused = access.check_assignment(identity, state, access.assignee_of(identity, agent))
            if refused:
                return Response({"Code": "ForbiddenError" if refused.status == 403 else "UnprocessableEntity",
                                 "Message": refused.message}, status_code=refused.status,
                                headers={"Content-Type": "application/json"})
            expected = None if body.get("claim") else rules.ANY
            store.assign(conversation_id, agent, actor, expected)
        if "status" in body:
            status, until = body["status"], body.get("snoozed_until")
            if not isinstance(status, str):
                raise BadRequestError("status must be a string")
            until_ms = common.parse_time(until, "snoozed_until") if until is not None else None
            store.set_status(conversation_id, status, actor, until_ms)
        if "priority" in body:
            if not isinstance(body["priority"], str):
                raise BadRequestError("priority must be a string")
            store.set_priority(conversation_id, body["priority"], actor)
        if "tags" in body:
            store.set_tags(conversation_id, body["tags"], actor)  # the rule refuses bad tags (422)
    except store.NotFound:
        raise NotFoundError("no such conversation")
    except store.Busy:
        return Response({"Code": "Busy", "Message": "the conversation is changing right now; try again"},
                        status_code=503, headers={"Content-Type": "application/json", "Retry-After": "1"})
    except rules.Conflict as conflict:
        return Response({"Code": "Conflict", "Message": str(conflict), "current": names.with_name(conflict.current)},
                        status_code=409, headers={"Content-Type": "application/json"})
    except rules.RuleError as error:
        return Response({"Code": "UnprocessableEntity", "Message": str(error)}, status_code=422,
                        headers={"Content-Type": "application/json"})
    return views.conversation_json(store.get(conversation_id) or {})


@api.route("/api/conversations/{conversation_id}/read", methods=["POST"])
@authenticated
def read_conversation(conversation_id: str, identity: Any) -> Any:
    from chalicelib.api import access, views
    from chalicelib.inbox import store

    access.require_conversation(identity, conversation_id)
    try:
        state = store.mark_read(conversation_id, f"agent:{identity.agent_id}")
    except store.NotFound:
        raise NotFoundError("no such conversation")
    return views.conversation_json(state)


@api.route("/api/conversations/{conversation_id}/events", methods=["GET"])
@authenticated
def conversation_events(conversation_id: str, identity: Any) -> Any:
    """The conversation's event log (assignments, status changes, waits and replies), oldest first;
    `agents` names every agent its entries mention (actors, assignees), by id."""
    from chalicelib.api import access, names, views
    from chalicelib.inbox import store

    access.require_conversation(identity, conversation_id)
    after = _query("after") or "0"
    if not after.isdigit():
        raise BadRequestError("after must be a sequence number")
    try:
        limit = views.parse_limit(_query("limit"), 100)
    except views.BadQuery as error:
        raise BadRequestError(str(error))
    items = store.events(conversation_id, limit, int(after))
    for item in items:
        item["at"] = views.iso(item["at"])
    agents = names.labels([names.actor_agent(i["actor"]) for i in items]
                          + [i["data"].get(k) for i in items for k in ("from", "to") if i["type"] == "assigned"])
    return {"items": items, "next": str(items[-1]["seq"]) if len(items) == limit else None, "agents": agents}


@api.route("/api/conversations/{conversation_id}/messages", methods=["GET"])
@authenticated
def conversation_messages(conversation_id: str, identity: Any) -> Any:
    from chalicelib.api import access, views

    access.require_conversation(identity, conversation_id)
    try:
        items, cursor = views.list_messages(conversation_id, views.parse_limit(_query("limit"), 100), _query("cursor"))
    except views.BadQuery as error:
        raise BadRequestError(str(error))
    return {"items": items, "next": cursor}


@api.route("/api/accounts", methods=["GET"])
@admin_only
def accounts(identity: Any) -> Any:
    from chalicelib.models import ChannelAccount

    return {"items": [{"channel": a.channel, "platform_account_id": a.platform_account_id, "name": a.name,
                       "enabled": a.enabled, "needs_reauth": bool(a.needs_reauth),
                       "needs_reauth_reason": a.needs_reauth_reason if a.needs_reauth else None}
                      for a in ChannelAccount.scan(limit=500)]}


@api.route("/api/accounts", methods=["POST"])
@admin_only
def add_account(identity: Any) -> Any:
    from chalicelib import inputs
    from chalicelib.accounts import AccountExists, checked_settings, register_account
    from chalicelib.api.views import CHANNELS

    body = _json_body()
    channel = body.get("channel")
    if channel not in CHANNELS:
        raise BadRequestError(f"channel must be one of {', '.join(CHANNELS)}")
    try:
        found = checked_settings(body, creating=True)
    except inputs.BadInput as problem:
        raise BadRequestError(str(problem))
    account_id = found["platform_account_id"]
    try:
        account = register_account(channel, account_id, found["name"], found["credential_refs"] or {},
                                   team=found["team"])
    except AccountExists:
        raise ConflictError(f"{channel} account {account_id} is already registered; change it with PATCH")
    return Response({"channel": account.channel, "platform_account_id": account.platform_account_id,
                     "name": account.name, "enabled": account.enabled}, status_code=201)


@api.route("/api/admin/quarantine", methods=["GET"])
@admin_only
def quarantined(identity: Any) -> Any:
    """Newest first, paged (one Query per page); `raw` is in the item view."""
    from chalicelib.api import views
    from chalicelib.ingest import quarantine

    try:
        limit = views.parse_limit(_query("limit"), 50)
        start = views.decode_cursor(_query("cursor"), "quarantine")
    except views.BadQuery as error:
        raise BadRequestError(str(error))
    items, last = quarantine.page(limit, start)
    return {"items": [{"id": q.item_id, "reason": q.reason, "channel": q.channel, "account_id": q.account_id,
                       "created_at": views.iso(q.created_at), "preview": q.preview, "replayable": bool(q.replayable)}
                      for q in items],
            "next": views.encode_cursor(last, "quarantine")}


@api.route("/api/admin/quarantine/{item_id}", methods=["GET"])
@admin_only
def quarantined_item(item_id: str, identity: Any) -> Any:
    from chalicelib.api.views import iso
    from chalicelib.models import Quarantine

    try:
        q = Quarantine.get(item_id)
    except (Quarantine.DoesNotExist, ValueError):
        raise NotFoundError("no such quarantined item")
    return {"id": q.item_id, "reason": q.reason, "channel": q.channel, "account_id": q.account_id,
            "created_at": iso(q.created_at), "raw": q.raw, "replayable": bool(q.replayable),
            "correlation_id": q.correlation_id}


@api.route("/api/admin/quarantine/replay", methods=["POST"])
@admin_only
def replay_quarantine(identity: Any) -> Any:
    """Run items held for an unknown account through the pipeline again (after the account was
    registered); optional {"channel", "account_id"} narrows it. Each item lands exactly once."""
    from chalicelib.api.common import plausible_id
    from chalicelib.api.views import CHANNELS
    from chalicelib.ingest import replay

    raw = api.current_request.raw_body or b""
    body = _json_body() if raw.strip() else {}
    channel, account_id = body.get("channel"), body.get("account_id")
    if channel is not None and channel not in CHANNELS:
        raise BadRequestError(f"channel must be one of {', '.join(CHANNELS)}")
    if account_id is not None and not plausible_id(account_id):
        raise BadRequestError("account_id must be a non-empty string")
    if set(body) - {"channel", "account_id"}:
        raise BadRequestError("only 'channel' and 'account_id' are accepted")
    return replay.replay(channel, account_id)
