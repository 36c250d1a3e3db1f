"""People: agents, supervisors and admins; their teams and capacity; passwords; the first admin.

Agents are keyed by email (chalicelib.models.Agent); their teams and capacity are their routing
profile (chalicelib.routing.directory): the one source of team membership, used by routing and
by team access (chalicelib.api.access) alike.

Command line (a deployed stage has no agent until someone creates one):

    make create-admin STAGE=dev EMAIL=ops@example.com NAME="Ops Admin"
    python -m chalicelib.api.people create-admin --email ops@example.com --name "Ops Admin"

The password is asked twice on a terminal (never echoed), or read from the first line of stdin
(`printf '%s\\n' "$PASSWORD" | make create-admin ...`). It is never printed or logged. Stage
`local` talks to `make run`'s moto on MOTO_PORT; other stages use the normal AWS credentials.
"""
from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.models import Agent

ROLES = ("agent", "supervisor", "admin")
EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$")
MAX_EMAIL = 254
MAX_NAME = 100
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
MAX_AGENT_ID = 128
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class Invalid(ValueError):
    """Input the API answers with 400."""


class Exists(Exception):
    """An agent with this email already exists (409)."""


class Refused(Exception):
    """A change that would lock its author out (409)."""


# --- validation -----------------------------------------------------------------------------------


def clean_email(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_EMAIL or not EMAIL.match(value.strip()):
        raise Invalid("email must be an email address of at most 254 characters")
    return value.strip().lower()


def clean_name(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= MAX_NAME or _CONTROL.search(value) \
            or _SURROGATE.search(value):
        raise Invalid(f"name must be 1 to {MAX_NAME} characters without control characters")
    return value.strip()


def clean_role(value: Any) -> str:
    if not isinstance(value, str) or value not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    return value


def clean_teams(value: Any) -> List[str]:
    from chalicelib.routing import directory

    if not isinstance(value, list) or len(value) > directory.MAX_TEAMS or not all(directory.valid_team(t) for t in value):
        raise Invalid(f"teams must be a list of at most {directory.MAX_TEAMS} team names "
                      "(1-64 letters, digits, '.', '_' or '-')")
    return sorted(set(value))


def clean_capacity(value: Any) -> int:
    from chalicelib.routing import directory

    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= directory.MAX_CAPACITY:
        raise Invalid(f"capacity must be an integer from 0 to {directory.MAX_CAPACITY}")
    return value


def clean_password(value: Any, name: str = "password") -> str:
    if not isinstance(value, str) or not MIN_PASSWORD <= len(value) <= MAX_PASSWORD or not value.strip() \
            or _SURROGATE.search(value) or "\x00" in value:
        raise Invalid(f"{name} must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return value


def temporary_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, 120 bits


# --- reading --------------------------------------------------------------------------------------


def find(agent_id: Any) -> Optional[Agent]:
    """The agent with this id (agent-id index, then the item itself, strongly consistent)."""
    if not isinstance(agent_id, str) or not 1 <= len(agent_id) <= MAX_AGENT_ID:
        return None
    for row in Agent.by_id.query(agent_id, limit=1, attributes_to_get=["email", "agent_id"]):
        try:
            found = Agent.get(row.email, consistent_read=True)
        except DoesNotExist:
            return None
        return found if found.agent_id == agent_id else None
    return None


def agent_json(agent: Agent, profile: Any = None) -> Dict[str, Any]:
    from chalicelib.api.views import iso
    from chalicelib.routing import directory

    profile = profile or directory.profile(agent.agent_id)
    return {"id": agent.agent_id, "email": agent.email, "name": agent.name, "role": agent.role,
            "active": bool(agent.active), "teams": list(profile.teams), "capacity": profile.capacity,
            "must_change_password": bool(agent.must_change_password),
            "created_at": iso(agent.created_at), "updated_at": iso(agent.updated_at)}


@dataclass
class Page:
    items: List[Dict[str, Any]]
    last: Optional[Dict[str, Any]]


def list_agents(viewer: Any, limit: int, start: Optional[Dict[str, Any]]) -> Page:
    """Agents, one Scan page (the agents table holds people, not traffic). Admins see everyone;
    supervisors the agents who share a team with them (and themselves)."""
    from chalicelib.api import access
    from chalicelib.routing import directory

    results = Agent.scan(limit=limit, page_size=limit, last_evaluated_key=start)
    agents = list(results)
    profiles = directory.profiles(a.agent_id for a in agents) if agents else {}
    mine = None if viewer.role == "admin" else access.teams_of(viewer.agent_id)
    items = [agent_json(a, profiles[a.agent_id]) for a in agents
             if mine is None or a.agent_id == viewer.agent_id or mine & set(profiles[a.agent_id].teams)]
    items.sort(key=lambda item: (item["name"].lower(), item["id"]))
    return Page(items, results.last_evaluated_key)


def visible_to(viewer: Any, agent: Agent) -> bool:
    from chalicelib.api import access
    from chalicelib.routing import directory

    if viewer.role == "admin" or viewer.agent_id == agent.agent_id:
        return True
    return viewer.role == "supervisor" and bool(access.teams_of(viewer.agent_id)
                                                & set(directory.profile(agent.agent_id).teams))


# --- writing --------------------------------------------------------------------------------------


def create(email: str, name: str, role: str = "agent", teams: Optional[List[str]] = None,
           capacity: Optional[int] = None, password: Optional[str] = None) -> Tuple[Agent, Optional[str]]:
    """A new agent (validated input). Without `password` a temporary one is generated and
    returned (once: only its hash is stored) and the agent is flagged to change it. Teams
    default to the default team. Exists when the email is taken."""
    import uuid

    from chalicelib.api.auth import forget_agent, hash_password
    from chalicelib.api.access import forget_teams
    from chalicelib.inbox.rules import DEFAULT_TEAM
    from chalicelib.routing import directory

    temporary = None
    if password is None:
        password = temporary = temporary_password()
    now = int(time.time() * 1000)
    agent = Agent(email, agent_id="a_" + uuid.uuid4().hex[:16], name=name, role=role,
                  password_hash=hash_password(password), active=True, created_at=now, updated_at=now,
                  token_epoch=0, must_change_password=True if temporary else None)
    try:
        agent.save(condition=Agent.email.does_not_exist())
    except PutError as error:
        if getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException":
            raise Exists(email)
        raise
    forget_agent(email)
    directory.set_routing(agent.agent_id, [DEFAULT_TEAM] if teams is None else teams, capacity)
    forget_teams(agent.agent_id)
    return agent, temporary


def update(agent: Agent, changes: Dict[str, Any], actor: Any) -> Agent:
    """Apply validated changes (role, name, active, teams, capacity). Deactivation kills every
    token of the agent (auth.revoke_all) and hands their open conversations on (presence offline).
    An admin cannot deactivate or demote themselves (Refused): someone must stay able to fix it."""
    from chalicelib.api import access, auth
    from chalicelib.routing import directory

    if agent.agent_id == actor.agent_id and (changes.get("active") is False
                                             or changes.get("role", agent.role) != agent.role):
        raise Refused("you cannot deactivate yourself or change your own role; ask another admin")
    now = int(time.time() * 1000)
    actions = [Agent.updated_at.set(now)]
    if "name" in changes:
        actions.append(Agent.name.set(changes["name"]))
    if "role" in changes:
        actions.append(Agent.role.set(changes["role"]))
    deactivating = changes.get("active") is False and agent.active
    if "active" in changes:
        actions.append(Agent.active.set(bool(changes["active"])))
    agent.update(actions=actions)
    if deactivating:
        auth.revoke_all(agent)
    auth.forget_agent(agent.email)
    if "teams" in changes or "capacity" in changes:
        directory.set_routing(agent.agent_id, changes.get("teams"), changes.get("capacity"))
        access.forget_teams(agent.agent_id)
    if deactivating:
        _go_offline(agent.agent_id)
    elif "teams" in changes or "capacity" in changes:
        _drain(directory.profile(agent.agent_id).teams)
    return agent


def _go_offline(agent_id: str) -> None:
    """A deactivated agent cannot take or keep work: offline now (their conversations go on)."""
    from chalicelib import routing
    from chalicelib.logs import describe_error, logger

    try:
        routing.presence_changed(agent_id, "offline")
    except Exception as error:  # noqa: BLE001 - the sweeper hands them on after the grace period
        logger.warning("deactivated agent not handed off yet", extra={"agent_id": agent_id,
                                                                       "error": describe_error(error)})


def _drain(teams: List[str]) -> None:
    from chalicelib import routing
    from chalicelib.logs import describe_error, logger

    for team in teams:
        try:
            routing.drain(team)
        except Exception as error:  # noqa: BLE001 - the routing sweeper drains every minute
            logger.warning("team not drained after a people change", extra={"team": team,
                                                                            "error": describe_error(error)})


def change_password(identity: Any, current: str, new: str, source: Optional[str] = None) -> Dict[str, Any]:
    """The agent's own password: the current one is checked under the login throttle
    (auth.LoginRefused otherwise); every earlier token and sign-in is revoked; the answer is a
    fresh sign-in for the caller."""
    from chalicelib.api import auth

    agent = auth.verify(identity.email, current, source=source)
    if agent.agent_id != identity.agent_id:
        raise auth.LoginRefused(401, "invalid email or password")
    if auth.check_password(new, agent.password_hash):
        raise Invalid("the new password must differ from the current one")
    agent.update(actions=[Agent.password_hash.set(auth.hash_password(new)), Agent.must_change_password.remove(),
                          Agent.token_epoch.add(1), Agent.updated_at.set(int(time.time() * 1000))])
    auth.forget_agent(agent.email)
    auth.close_sockets(agent.agent_id)  # opened with the tokens just revoked; the page reconnects
    return auth.start_session(agent)


# --- command line ---------------------------------------------------------------------------------


def _read_password(stdin: Any, interactive: bool) -> str:
    if interactive:
        import getpass

        first = getpass.getpass("Password for the new admin: ")
        if getpass.getpass("Again: ") != first:
            raise Invalid("the two passwords differ")
        return first
    line = stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def main(argv: Optional[List[str]] = None, stdin: Any = None, out: Any = None) -> int:
    """`create-admin --email --name`: creates an admin (password from the terminal or stdin)."""
    parser = argparse.ArgumentParser(prog="python -m chalicelib.api.people", description="Manage people.")
    commands = parser.add_subparsers(dest="command", required=True)
    create_admin = commands.add_parser("create-admin", help="create an admin (the first one of a stage)")
    create_admin.add_argument("--email", required=True)
    create_admin.add_argument("--name", required=True)
    create_admin.add_argument("--team", action="append", default=None,
                              help="a team for routing (repeatable; default: the default team)")
    args = parser.parse_args(argv)
    stdin = sys.stdin if stdin is None else stdin
    out = sys.stdout if out is None else out
    err = sys.stderr
    try:
        email, name = clean_email(args.email), clean_name(args.name)
        teams = clean_teams(args.team) if args.team is not None else None
        interactive = bool(getattr(stdin, "isatty", lambda: False)())
        password = clean_password(_read_password(stdin, interactive))
        agent, _ = create(email, name, "admin", teams, None, password)
    except Invalid as error:
        print(f"error: {error}", file=err)
        return 2
    except Exists:
        print(f"error: an agent with the email {args.email.strip().lower()} already exists", file=err)
        return 1
    print(json.dumps({"created": "admin", "id": agent.agent_id, "email": agent.email, "name": agent.name}), file=out)
    return 0


if __name__ == "__main__":
    from chalicelib.ingest.dlq import use_local_stack

    use_local_stack()  # stage local only; here, not in main(): tests call main() inside a mock
    sys.exit(main())
