"""The WebSocket connections of agents' pages (models.PushConnection) and what may open one.

A connection is opened with a valid access token of an active agent (the query string's `token`;
the handlers never log it). It listens to feeds: its agent's teams ("t#<team>"), its agent
("a#<agent id>"), or every team ("*") for those who see everything (chalicelib.api.access).
It lives while its token does: `renew` moves the expiry with a newer token of the same agent;
past `token_exp` the fan-out sends nothing and closes it."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

#: API Gateway ends every WebSocket connection after 2 hours; items of a socket that vanished
#: without a disconnect are forgotten by DynamoDB's TTL a while after.
CONNECTION_MAX_SECONDS = 2 * 3600
EVERYONE = "*"


def now_seconds() -> float:
    """Epoch seconds on the runtime's clock (tests and the IAM scenario move it)."""
    from chalicelib.runtime import runtime

    return runtime.now_ms() / 1000


class Refused(Exception):
    """The token does not open (or keep) a connection: missing, invalid, expired, or its agent
    inactive or still on a temporary password. The message is safe to log (no token in it)."""


def _verified(token: Any) -> Tuple[Any, int]:
    """(identity, token expiry in epoch seconds) of a valid access token; Refused otherwise."""
    import jwt

    from chalicelib.api import auth

    if not isinstance(token, str) or not 20 <= len(token) <= 4096:
        raise Refused("no access token")
    identity = auth.identity_from_header("Bearer " + token)
    if identity is None:
        raise Refused("invalid or expired access token")
    if identity.must_change_password:
        raise Refused("password change required")
    claims = jwt.decode(token, options={"verify_signature": False})  # verified just above
    return identity, int(claims["exp"])


def feeds_for(identity: Any) -> List[str]:
    """The feeds a connection of `identity` listens to: what its views may show."""
    from chalicelib.api import access

    if access.sees_everything(identity):
        return [EVERYONE, "a#" + identity.agent_id]
    return sorted({"t#" + team for team in access.teams_of(identity.agent_id)} | {"a#" + identity.agent_id})


def connect(connection_id: str, token: Any, now: Optional[float] = None) -> Dict[str, Any]:
    """Record a new connection of the token's agent; Refused if the token opens none."""
    from chalicelib.models import PushConnection

    identity, token_exp = _verified(token)
    moment = int(now if now is not None else now_seconds())
    feeds = feeds_for(identity)
    forget_at = moment + CONNECTION_MAX_SECONDS + 3600
    with PushConnection.batch_write() as batch:
        batch.save(PushConnection("c#" + connection_id, "c", agent_id=identity.agent_id, email=identity.email,
                                  feeds=feeds, token_exp=token_exp, expires_at=forget_at))
        for feed in feeds:
            batch.save(PushConnection(feed, connection_id, agent_id=identity.agent_id, token_exp=token_exp,
                                      expires_at=forget_at))
    return {"agent_id": identity.agent_id, "feeds": feeds, "token_exp": token_exp}


def _connection(connection_id: str) -> Any:
    from chalicelib.models import PushConnection

    try:
        return PushConnection.get("c#" + connection_id, "c", consistent_read=True)
    except PushConnection.DoesNotExist:
        return None


def renew(connection_id: str, token: Any) -> int:
    """A newer access token of the connection's own agent moves its expiry (answered); Refused
    (the caller closes the socket) for an unknown connection, a bad token or another agent's."""
    from chalicelib.models import PushConnection

    found = _connection(connection_id)
    if found is None:
        raise Refused("unknown connection")
    identity, token_exp = _verified(token)
    if identity.agent_id != found.agent_id:
        raise Refused("a token of another agent")
    if token_exp > int(found.token_exp):
        for key in [("c#" + connection_id, "c")] + [(feed, connection_id) for feed in found.feeds or []]:
            PushConnection(*key).update(actions=[PushConnection.token_exp.set(token_exp)],
                                        condition=PushConnection.pk.exists())
    return token_exp


def identity_of(connection_id: str, now: Optional[float] = None) -> Any:
    """The agent (chalicelib.api.auth.Identity) of a live connection: known, unexpired, its
    agent still active; else None."""
    from chalicelib.api import auth

    found = _connection(connection_id)
    moment = now if now is not None else now_seconds()
    if found is None or int(found.token_exp) <= moment:
        return None
    return auth.active_identity(found.email or "", found.agent_id)


def forget(connection_id: str) -> None:
    """Remove a connection's items (its disconnect, or a close by us); idempotent."""
    from chalicelib.models import PushConnection

    found = _connection(connection_id)
    if found is None:
        return
    with PushConnection.batch_write() as batch:
        for feed in found.feeds or []:
            batch.delete(PushConnection(feed, connection_id))
        batch.delete(PushConnection("c#" + connection_id, "c"))


def listening(feed: str) -> List[Any]:
    """The connections listening to one feed (one Query, paged)."""
    from chalicelib.models import PushConnection

    return list(PushConnection.query(feed))


def close(connection_id: str) -> None:
    """Close a socket from our side and forget it (a socket already gone is simply forgotten)."""
    from chalicelib.runtime import runtime

    try:
        runtime.push_client().delete_connection(ConnectionId=connection_id)
    except Exception as error:  # noqa: BLE001 - gone already (410) or unreachable: forget it anyway
        if not is_gone(error):
            from chalicelib.logs import describe_error, logger

            logger.warning("push: closing a socket failed", extra={"error": describe_error(error)[:300]})
    forget(connection_id)


def close_agent(agent_id: str) -> int:
    """Close every socket of an agent (tokens revoked: deactivation, password change). Returns
    how many were closed."""
    sockets = [item.sk for item in listening("a#" + agent_id)]
    for connection_id in sockets:
        close(connection_id)
    return len(sockets)


def is_gone(error: Exception) -> bool:
    """Whether a management API error says the socket is gone already (410)."""
    response = getattr(error, "response", None) or {}
    return (response.get("Error") or {}).get("Code") in ("GoneException", "410") or \
        (response.get("ResponseMetadata") or {}).get("HTTPStatusCode") == 410
