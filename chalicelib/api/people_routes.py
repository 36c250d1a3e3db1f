"""HTTP routes for people and sessions (a Chalice blueprint); the work is in chalicelib.api.people
and chalicelib.api.auth.

- `POST /api/agents` (admin): {"email", "name", "role", "teams", "capacity", "password"?} -> 201
  with the agent and, when no password was given, a one-time `temporary_password`.
- `GET /api/agents` (admin, supervisor: agents sharing a team), `GET /api/agents/{id}`.
- `PATCH /api/agents/{id}` (admin): any of role, name, teams, capacity, active.
- `POST /api/me/password` {"current_password", "new_password"}: revokes every earlier token and
  answers a fresh sign-in.
- `POST /api/auth/refresh` {"refresh_token"}: a new access token and the next refresh token.
- `POST /api/auth/logout` {"refresh_token"}: ends that sign-in (204).
Errors are `{"Code", "Message"}`; answers carrying tokens are `Cache-Control: no-store`.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Optional

from chalicelib.api.common import json_body
from chalice import BadRequestError, Blueprint, ConflictError, ForbiddenError, NotFoundError, Response

from chalicelib.api.routes import allows_temporary_password, authenticated

people_api = Blueprint(__name__)

MAX_BODY_BYTES = 16 * 1024
NO_STORE = {"Content-Type": "application/json", "Cache-Control": "no-store"}
CREATE_FIELDS = {"email", "name", "role", "teams", "capacity", "password"}
PATCH_FIELDS = {"role", "name", "teams", "capacity", "active"}


def _body() -> Dict[str, Any]:
    return json_body(people_api.current_request, MAX_BODY_BYTES)


def _answer(status: int, code: str, message: str, headers: Optional[Dict[str, str]] = None) -> Response:
    return Response({"Code": code, "Message": message}, status_code=status, headers=headers or NO_STORE)


def _roles(*allowed: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def wrapper(*args: Any, identity: Any, **kwargs: Any) -> Any:
            if identity.role not in allowed:
                raise ForbiddenError(f"only {' and '.join(r + 's' for r in allowed)} may do this")
            return handler(*args, identity=identity, **kwargs)

        return authenticated(wrapper)

    return decorate


def _source() -> Optional[str]:
    identity = (people_api.current_request.context or {}).get("identity") or {}
    source = identity.get("sourceIp") if isinstance(identity, dict) else None
    return source if isinstance(source, str) else None


def _query(name: str) -> Optional[str]:
    return (people_api.current_request.query_params or {}).get(name)


@people_api.route("/api/agents", methods=["POST"])
@_roles("admin")
def create_agent(identity: Any) -> Any:
    from chalicelib.api import people

    body = _body()
    unknown = set(body) - CREATE_FIELDS
    if unknown:
        raise BadRequestError(f"unknown field(s): {', '.join(sorted(unknown)[:5])}; send "
                              f"{', '.join(sorted(CREATE_FIELDS))}")
    try:
        email, name = people.clean_email(body.get("email")), people.clean_name(body.get("name"))
        role = people.clean_role(body.get("role", "agent"))
        teams = people.clean_teams(body["teams"]) if body.get("teams") is not None else None
        capacity = people.clean_capacity(body["capacity"]) if body.get("capacity") is not None else None
        password = people.clean_password(body["password"]) if body.get("password") is not None else None
        agent, temporary = people.create(email, name, role, teams, capacity, password)
    except people.Invalid as error:
        raise BadRequestError(str(error))
    except people.Exists:
        raise ConflictError("an agent with this email already exists")
    shown = people.agent_json(agent)
    if temporary is not None:
        shown["temporary_password"] = temporary  # shown once; only its hash is stored
    return Response(shown, status_code=201, headers=NO_STORE)


@people_api.route("/api/agents", methods=["GET"])
@_roles("admin", "supervisor")
def list_agents(identity: Any) -> Any:
    from chalicelib.api import people, views

    try:
        limit = views.parse_limit(_query("limit"), 100)
        start = views.decode_cursor(_query("cursor"), "agents")
    except (views.BadQuery, ValueError, TypeError, KeyError) as error:
        raise BadRequestError(str(error) if isinstance(error, views.BadQuery) else "cursor is not valid")
    try:
        page = people.list_agents(identity, limit, start)
    except Exception as error:  # a signed cursor DynamoDB refuses (an older layout)
        if start is not None and "ValidationException" in str(error):
            raise BadRequestError("cursor is not valid")
        raise
    return {"items": page.items, "next": views.encode_cursor(page.last, "agents")}


@people_api.route("/api/agents/{agent_id}", methods=["GET"])
@_roles("admin", "supervisor")
def get_agent(agent_id: str, identity: Any) -> Any:
    from chalicelib.api import people

    agent = people.find(agent_id)
    if agent is None or not people.visible_to(identity, agent):
        raise NotFoundError("no such agent")
    return people.agent_json(agent)


@people_api.route("/api/agents/{agent_id}", methods=["PATCH"])
@_roles("admin")
def change_agent(agent_id: str, identity: Any) -> Any:
    from chalicelib.api import people

    body = _body()
    unknown = set(body) - PATCH_FIELDS
    if unknown or not body:
        raise BadRequestError(f"send any of {', '.join(sorted(PATCH_FIELDS))}")
    changes: Dict[str, Any] = {}
    try:
        if "role" in body:
            changes["role"] = people.clean_role(body["role"])
        if "name" in body:
            changes["name"] = people.clean_name(body["name"])
        if "teams" in body:
            changes["teams"] = people.clean_teams(body["teams"])
        if "capacity" in body:
            changes["capacity"] = people.clean_capacity(body["capacity"])
        if "active" in body:
            if not isinstance(body["active"], bool):
                raise people.Invalid("active must be true or false")
            changes["active"] = body["active"]
    except people.Invalid as error:
        raise BadRequestError(str(error))
    agent = people.find(agent_id)
    if agent is None:
        raise NotFoundError("no such agent")
    try:
        people.update(agent, changes, identity)
    except people.Refused as refused:
        raise ConflictError(str(refused))
    return people.agent_json(people.find(agent_id) or agent)


@people_api.route("/api/me/password", methods=["POST"])
@authenticated
@allows_temporary_password
def change_my_password(identity: Any) -> Any:
    from chalicelib.api import auth, people

    body = _body()
    if set(body) - {"current_password", "new_password"}:
        raise BadRequestError("send current_password and new_password")
    current = body.get("current_password")
    if not isinstance(current, str) or not 1 <= len(current) <= people.MAX_PASSWORD:
        raise BadRequestError("current_password is required")
    try:
        new = people.clean_password(body.get("new_password"), "new_password")
        session = people.change_password(identity, current, new, _source())
    except people.Invalid as error:
        return _answer(400, "BadRequestError", str(error))
    except auth.LoginRefused as refused:
        headers = dict(NO_STORE)
        if refused.retry_after:
            headers["Retry-After"] = str(refused.retry_after)
        # 403, not 401: the caller's token is fine, the current password is not
        status = 403 if refused.status == 401 else refused.status
        message = "the current password is wrong" if refused.status == 401 else refused.message
        return _answer(status, "PasswordRefused", message, headers)
    return Response(session, status_code=200, headers=NO_STORE)


def _refresh_token_body() -> Any:
    """The refresh token of a `{"refresh_token"}` body, or the 400 answer (with no-store)."""
    try:
        body = _body()
    except BadRequestError as error:
        return _answer(400, "BadRequestError", str(error))
    from chalicelib.api.auth import REFRESH_TOKEN_MAX
    from chalicelib.inputs import is_clean

    token = body.get("refresh_token")
    if set(body) != {"refresh_token"} or not isinstance(token, str) or len(token) > REFRESH_TOKEN_MAX \
            or not is_clean(token):
        return _answer(400, "BadRequestError", "send refresh_token")
    return body["refresh_token"]


@people_api.route("/api/auth/refresh", methods=["POST"])
def refresh() -> Any:
    """Trade a refresh token (once) for a new pair; a reused one is refused and ends its sign-in."""
    from chalicelib.api import auth

    token = _refresh_token_body()
    if isinstance(token, Response):
        return token
    try:
        session = auth.refresh(token)
    except auth.LoginRefused as refused:
        return _answer(refused.status, "RefreshRefused", refused.message)
    return Response(session, status_code=200, headers=NO_STORE)


@people_api.route("/api/auth/logout", methods=["POST"])
def logout() -> Any:
    """End the sign-in of this refresh token (its access token expires by itself within 15 min)."""
    from chalicelib.api import auth

    token = _refresh_token_body()
    if isinstance(token, Response):
        return token
    auth.sign_out(token)
    return Response("", status_code=204, headers={"Cache-Control": "no-store"})
