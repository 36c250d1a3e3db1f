"""HTTP routes of the agent API (a Chalice blueprint). Views stay thin: parse, call, shape."""
from __future__ import annotations

import functools
import json
from typing import Any, Callable, Dict, Optional

from chalice import Blueprint, BadRequestError, ConflictError, ForbiddenError, NotFoundError, Response, UnauthorizedError

api = Blueprint(__name__)


def _json_body() -> Dict[str, Any]:
    raw = api.current_request.raw_body or b""
    try:
        body = json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError):
        raise BadRequestError("body is not valid JSON")
    if not isinstance(body, dict):
        raise BadRequestError("body must be a JSON object")
    return body


def _query(name: str) -> Optional[str]:
    params = api.current_request.query_params or {}
    return params.get(name)


def authenticated(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Require a valid agent token; the identity is passed as `identity=`."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from chalicelib.api.auth import identity_from_header

        identity = identity_from_header(api.current_request.headers.get("authorization"))
        if identity is None:
            raise UnauthorizedError("a valid Bearer token is required")
        return handler(*args, identity=identity, **kwargs)

    return wrapper


def admin_only(handler: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(handler)
    def wrapper(*args: Any, identity: Any, **kwargs: Any) -> Any:
        if identity.role != "admin":
            raise ForbiddenError("admins only")
        return handler(*args, identity=identity, **kwargs)

    return authenticated(wrapper)


@api.route("/api/auth/login", methods=["POST"])
def login() -> Any:
    from chalicelib.api.auth import LoginRefused, login as do_login

    body = _json_body()
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not isinstance(password, str) or not email or not password:
        raise BadRequestError("email and password are required strings")
    if len(email) > 320 or len(password) > 1024:
        raise BadRequestError("email or password too long")
    try:
        token = do_login(email, password)
    except LoginRefused as refused:
        headers = {"Content-Type": "application/json"}
        if refused.retry_after:
            headers["Retry-After"] = str(refused.retry_after)
        return Response({"Code": "LoginRefused", "Message": refused.message}, headers=headers,
                        status_code=refused.status)
    return {"token": token, "token_type": "Bearer"}


@api.route("/api/me", methods=["GET"])
@authenticated
def me(identity: Any) -> Any:
    return {"id": identity.agent_id, "email": identity.email, "name": identity.name, "role": identity.role}


@api.route("/api/conversations", methods=["GET"])
@authenticated
def conversations(identity: Any) -> Any:
    from chalicelib.api import views

    assignee = _query("assignee")
    if assignee == "me":
        assignee = identity.agent_id
    try:
        items, cursor = views.list_conversations(
            status=_query("status"), channel=_query("channel"), assignee=assignee, sort=_query("sort") or "recent",
            limit=views.parse_limit(_query("limit")), cursor=_query("cursor"))
    except views.BadQuery as error:
        raise BadRequestError(str(error))
    return {"items": items, "next": cursor}


@api.route("/api/conversations/{conversation_id}", methods=["GET"])
@authenticated
def conversation(conversation_id: str, identity: Any) -> Any:
    from chalicelib.api import views

    found = views.get_conversation(conversation_id)
    if found is None:
        raise NotFoundError("no such conversation")
    return views.conversation_json(found)


@api.route("/api/conversations/{conversation_id}/messages", methods=["GET"])
@authenticated
def conversation_messages(conversation_id: str, identity: Any) -> Any:
    from chalicelib.api import views

    if views.get_conversation(conversation_id) is None:
        raise NotFoundError("no such conversation")
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
                       "enabled": a.enabled} for a in ChannelAccount.scan(limit=500)]}


@api.route("/api/accounts", methods=["POST"])
@admin_only
def add_account(identity: Any) -> Any:
    from chalicelib.accounts import AccountExists, register_account
    from chalicelib.api.views import CHANNELS

    body = _json_body()
    channel, account_id, name = body.get("channel"), body.get("platform_account_id"), body.get("name")
    if channel not in CHANNELS:
        raise BadRequestError(f"channel must be one of {', '.join(CHANNELS)}")
    if not isinstance(account_id, str) or not account_id or not isinstance(name, str) or not name:
        raise BadRequestError("platform_account_id and name are required strings")
    refs = body.get("credential_refs") or {}
    if not isinstance(refs, dict) or not all(isinstance(v, str) for v in refs.values()):
        raise BadRequestError("credential_refs must map names to secret names")
    team = body.get("team")
    if team is not None and (not isinstance(team, str) or not 1 <= len(team) <= 64 or "#" in team):
        raise BadRequestError("team must be a name of 1 to 64 characters without '#'")
    try:
        account = register_account(channel, account_id, name, refs, team=team)
    except AccountExists:
        raise ConflictError(f"{channel} account {account_id} is already registered; change it with PATCH")
    return Response({"channel": account.channel, "platform_account_id": account.platform_account_id,
                     "name": account.name, "enabled": account.enabled}, status_code=201)


@api.route("/api/admin/quarantine", methods=["GET"])
@admin_only
def quarantined(identity: Any) -> Any:
    from chalicelib.api.views import iso
    from chalicelib.models import Quarantine

    items = sorted(Quarantine.scan(limit=200), key=lambda q: q.created_at, reverse=True)
    return {"items": [{"id": q.item_id, "reason": q.reason, "channel": q.channel, "account_id": q.account_id,
                       "created_at": iso(q.created_at), "raw": q.raw} for q in items]}
