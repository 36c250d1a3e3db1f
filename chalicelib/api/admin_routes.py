"""HTTP routes the admin screens need beyond the people, routing, SLA and account APIs (a Chalice
blueprint). Views stay thin: parse and validate, call chalicelib, shape.

- `GET /api/admin/dlq` (admin): what is parked in the ingest dead-letter queue, why, how often
  it was tried, which adapter and when it arrived (never the payload).
- `POST /api/admin/dlq/replay` (admin): `{"message_ids": [...]}` moves those envelopes back to the
  ingest queue, `{}` (or no body) every parked one. A replay never duplicates: the pipeline's
  exactly-once gate (message refs) skips what already landed.
- `GET /api/admin/teams` (admin: every team; supervisor: their own): names, modes, member counts.
- `PATCH /api/accounts/{channel}/{platform_account_id}` (admin): name, enabled, team, and
  `credential_refs` to reconnect an account that needs re-authorisation (clears the flag).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Dict, List, Optional

from chalice import BadRequestError, Blueprint, ForbiddenError, NotFoundError

from chalicelib.api.common import json_body, plausible_id
from chalicelib.api.routes import admin_only, authenticated

admin_api = Blueprint(__name__)

MAX_BODY_BYTES = 16 * 1024
MAX_LISTED = 100
MAX_REPLAY_IDS = 100
ACCOUNT_FIELDS = {"name", "enabled", "team", "credential_refs"}


def _body() -> Dict[str, Any]:
    """The JSON object sent, or {} for an empty body."""
    request = admin_api.current_request
    return json_body(request, MAX_BODY_BYTES) if (request.raw_body or b"").strip() else {}


def _leads(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Admins and supervisors (team leads)."""
    @functools.wraps(handler)
    def wrapper(*args: Any, identity: Any, **kwargs: Any) -> Any:
        if identity.role not in ("admin", "supervisor"):
            raise ForbiddenError("only admins and supervisors may do this")
        return handler(*args, identity=identity, **kwargs)

    return authenticated(wrapper)


@admin_api.route("/api/admin/dlq", methods=["GET"])
@admin_only
def dead_letters(identity: Any) -> Any:
    """Parked envelopes, up to `limit` (default and most 100), without taking them off the queue."""
    from chalicelib.api import views
    from chalicelib.ingest import dlq

    try:
        limit = views.parse_limit((admin_api.current_request.query_params or {}).get("limit"), MAX_LISTED)
    except views.BadQuery as error:
        raise BadRequestError(str(error))
    items = dlq.list_parked(min(limit, MAX_LISTED))
    for item in items:
        item["received_at"] = views.iso(item["received_at"]) if item["received_at"] else None
        item["attempts"] = int(item["attempts"]) if str(item["attempts"] or "").isdigit() else None
    return {"items": items}


@admin_api.route("/api/admin/dlq/replay", methods=["POST"])
@admin_only
def replay_dead_letters(identity: Any) -> Any:
    """Back to the ingest queue: the listed ids, or everything parked. Answers how many moved and
    which ids were not (or no longer) parked."""
    from chalicelib.ingest import dlq
    from chalicelib.logs import logger

    body = _body()
    if set(body) - {"message_ids"}:
        raise BadRequestError("send {\"message_ids\": [...]} or an empty body to replay everything")
    ids: Optional[List[str]] = None
    if "message_ids" in body:
        raw = body["message_ids"]
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_REPLAY_IDS \
                or not all(plausible_id(i) for i in raw):
            raise BadRequestError(f"message_ids must be a list of 1 to {MAX_REPLAY_IDS} message ids")
        ids = sorted(set(raw))
    moved, missing = dlq.replay_selected(ids) if ids is not None else (dlq.replay(), [])
    logger.info("dead letters replayed", extra={"agent_id": identity.agent_id, "replayed": moved,
                                                "selected": None if ids is None else len(ids)})
    return {"replayed": moved, "not_found": missing}


@admin_api.route("/api/admin/teams", methods=["GET"])
@_leads
def teams(identity: Any) -> Any:
    """Every team (admins) or the caller's teams (supervisors): one Query per team."""
    from chalicelib.api import access
    from chalicelib.routing import directory

    names = directory.all_teams()
    if identity.role != "admin":
        mine = access.teams_of(identity.agent_id)
        names = [name for name in names if name in mine]
    items = []
    for name in sorted(set(names)):
        found = directory.team(name)
        items.append({"team": found.name, "mode": found.mode, "members": len(found.members)})
    return {"items": items, "modes": list(directory.MODES)}


@admin_api.route("/api/accounts/{channel}/{platform_account_id}", methods=["PATCH"])
@admin_only
def change_account(channel: str, platform_account_id: str, identity: Any) -> Any:
    """Rename, enable/disable, move to a team, or reconnect (new `credential_refs`: secret names,
    never secrets) a channel account."""
    from chalicelib.accounts import checked_settings, update_account
    from chalicelib.api.views import CHANNELS, iso
    from chalicelib.inputs import BadInput

    if channel not in CHANNELS or not plausible_id(platform_account_id):
        raise NotFoundError("no such channel account")
    body = _body()
    if not body or set(body) - ACCOUNT_FIELDS:
        raise BadRequestError(f"send any of {', '.join(sorted(ACCOUNT_FIELDS))}")
    enabled = body.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise BadRequestError("enabled must be true or false")
    try:
        found = checked_settings(body, creating=False)
    except BadInput as problem:
        raise BadRequestError(str(problem))
    account = update_account(channel, platform_account_id, name=found["name"], enabled=enabled,
                             team=found["team"], credential_refs=found["credential_refs"])
    if account is None:
        raise NotFoundError("no such channel account")
    return {"channel": account.channel, "platform_account_id": account.platform_account_id, "name": account.name,
            "enabled": bool(account.enabled), "team": account.team, "needs_reauth": bool(account.needs_reauth),
            "needs_reauth_reason": account.needs_reauth_reason if account.needs_reauth else None,
            "needs_reauth_at": iso(account.needs_reauth_at) if account.needs_reauth else None,
            "credential_names": sorted(_as_dict(account.credential_refs))}


def _as_dict(value: Any) -> Dict[str, Any]:
    return value.as_dict() if hasattr(value, "as_dict") else dict(value or {})
