"""Agent authentication: scrypt password hashes, short-lived signed tokens, login throttling.

Login throttling throttles guesses, not people. Only failed password checks count (an attempt
refused before its check, and a success, cost nothing), under three budgets kept apart:
- email + source address: back-off 1, 2, 4 ... s after FREE_ATTEMPTS failures, a lock of that
  pair only after LOCK_AFTER;
- source address, any email (password spraying): SOURCE_FAILURES_PER_WINDOW per window;
- email, any address (distributed guessing): past EMAIL_FREE_PER_WINDOW, one check per
  EMAIL_SPACING_SECONDS (a delay, never a lock).
A known pair (this email signed in successfully from this address within KNOWN_PAIR_SECONDS) is
held only by its own pair budget: strangers exhausting the address's budget (an office behind one
NAT) or the email's (guessing at an agent's email from many addresses) do not stop the right
password from the agent's usual address. Units are reserved atomically before a password is
checked (and given back unless the check failed), so concurrent bursts get no more checks than
sequential attempts. Everything runs the same whether or not an agent has the email; unknown
emails still pay for a scrypt run, so neither the answer, its timing nor the throttle tells an
attacker which emails exist.

Tokens are only honoured while their subject is still an active agent with that id.

Sessions: an access token lives TOKEN_TTL_SECONDS (15 min); the refresh token issued with it
keeps the agent signed in through a shift (REFRESH_TTL_SECONDS from the login, whatever the
rotations). Refresh tokens are random, stored only as SHA-256 hashes (RefreshToken), used once:
each refresh answers a new pair, and a used token presented again is refused and revokes its
whole sign-in (the "family"), since one of the two holders is a thief. Deactivation and password
changes bump the agent's `token_epoch`: every access and refresh token carries the epoch it was
issued under and stops working with it (access tokens at once in the container that made the
change, within AGENT_CACHE_SECONDS elsewhere; refresh tokens at once everywhere).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib import config
from chalicelib.models import Agent, LoginThrottle, RefreshToken
from chalicelib.runtime import runtime

SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**14, 8, 1, 32
TOKEN_TTL_SECONDS = 15 * 60
REFRESH_TTL_SECONDS = 12 * 3600  # one sign-in lasts a shift, however often it is refreshed
REFRESH_TOKEN_MAX = 200  # characters a presented refresh token may have (ours are 43)
ROLES = ("agent", "supervisor", "admin")
# Per email + source address: free failures, then a wait of 1 s, 2 s, 4 s ... (capped), then a lock
# that only that address suffers.
FREE_ATTEMPTS = 3
LOCK_AFTER = 8
LOCK_SECONDS = 15 * 60
MAX_BACKOFF_SECONDS = 5 * 60
IN_FLIGHT_SECONDS = 10  # provisional lock while one check runs (released at once; a crash costs 10 s)
# Per source address: failed attempts per window, whatever the email.
SOURCE_WINDOW_SECONDS = 15 * 60
SOURCE_FAILURES_PER_WINDOW = 30
# Per email, from anywhere: checks per window before they are spaced out. Never a lock.
EMAIL_WINDOW_SECONDS = 15 * 60
EMAIL_FREE_PER_WINDOW = 20
EMAIL_SPACING_SECONDS = 2
# How long a successful sign-in makes its email + address pair "known" (exempt from the address
# and email budgets; its own back-off still applies).
KNOWN_PAIR_SECONDS = 30 * 86400
MAX_RETRY_AFTER = 15 * 60
# How long the token guard trusts its memory of an agent (deactivation reaches every container
# within this), and how often a token naming another id may force a fresh read.
AGENT_CACHE_SECONDS = 30.0
AGENT_RECHECK_SECONDS = 1.0
THROTTLE_TTL_SECONDS = 86400
UNKNOWN_SOURCE = "unknown-source"
_DUMMY_HASH: Optional[str] = None


class LoginRefused(Exception):
    def __init__(self, status: int, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Identity:
    agent_id: str
    email: str
    name: str
    role: str
    epoch: int = 0
    #: Signed in with a temporary password (created by an admin): until it is changed, the API
    #: answers only who they are and the password change (routes.authenticated).
    must_change_password: bool = False


def _scrypt_n() -> int:
    """The scrypt cost for new hashes. The test suite lowers it (TEST_SCRYPT_N, honoured only in
    the local stage) to keep hundreds of logins cheap; every hash records its own cost, so
    checking never depends on this setting."""
    if config.is_local():
        lowered = config.int_setting("TEST_SCRYPT_N", 0)
        if lowered >= 2 ** 10:
            return lowered
    return SCRYPT_N


def hash_password(password: str, salt: Optional[bytes] = None) -> str:
    salt = salt or os.urandom(16)
    n = _scrypt_n()
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P,
                            dklen=SCRYPT_LEN, maxmem=64 * 1024 * 1024)
    return "scrypt${}${}${}${}${}".format(n, SCRYPT_R, SCRYPT_P, base64.b64encode(salt).decode(),
                                          base64.b64encode(digest).decode())


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest_b64)
        digest = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt_b64), n=int(n), r=int(r),
                                p=int(p), dklen=len(expected), maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


def create_agent(email: str, password: str, name: str, role: str = "agent", agent_id: Optional[str] = None) -> Agent:
    """Store a new agent. `agent_id` lets the local seed keep ids stable across restarts."""
    agent = Agent(email.strip().lower(), agent_id=agent_id or "a_" + uuid.uuid4().hex[:16], name=name, role=role,
                  password_hash=hash_password(password), active=True, created_at=int(time.time() * 1000))
    agent.save()
    forget_agent(agent.email)
    return agent


def forget_agent(email: str) -> None:
    """Drop this process's cached view of an agent (call after deactivating, deleting or
    re-creating one, so its old tokens stop working here at once; other containers follow
    within AGENT_CACHE_SECONDS). The names the API shows beside ids are read again too."""
    from chalicelib.api import names

    runtime.agents.pop(email.strip().lower(), None)
    names.forget()


def _token_secret() -> str:
    secret = runtime.secret("AUTH_TOKEN_SECRET")
    if not secret or len(secret) < 32:
        raise RuntimeError("AUTH_TOKEN_SECRET is missing or shorter than 32 characters")
    return secret


def issue_token(agent: Agent, now: Optional[float] = None) -> str:
    import jwt

    issued = int(now if now is not None else time.time())
    claims = {"sub": agent.agent_id, "email": agent.email, "name": agent.name, "role": agent.role,
              "iat": issued, "exp": issued + TOKEN_TTL_SECONDS, "iss": "socialinbox", "ep": _epoch(agent)}
    return jwt.encode(claims, _token_secret(), algorithm="HS256")


def identity_from_header(authorization: Optional[str]) -> Optional[Identity]:
    """The agent behind `Authorization: Bearer <token>`, or None if absent/invalid/expired, or if
    the token's subject is no longer an active agent with that id (deleted, deactivated or
    re-created). Name and role come from the agent record, so a demotion applies to old tokens."""
    import jwt

    if not authorization or not authorization.startswith("Bearer "):
        return None
    try:
        claims: Dict[str, Any] = jwt.decode(authorization[7:].strip(), _token_secret(), algorithms=["HS256"],
                                            issuer="socialinbox", options={"require": ["exp", "sub", "iat"]})
    except jwt.PyJWTError:
        return None
    subject, email = str(claims["sub"]), str(claims.get("email") or "").strip().lower()
    if not email:
        return None
    current = _active_agent(email, subject)
    if current is None or current.agent_id != subject:
        return None
    epoch = claims.get("ep", 0)
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch != current.epoch:
        return None  # issued before a password change or a deactivation
    return current


def active_identity(email: str, agent_id: str) -> Optional[Identity]:
    """The active agent `agent_id` holding `email`, as the token guard sees it (its cache): for
    a live-updates socket opened with a verified token; None once deactivated or re-created."""
    current = _active_agent(email.strip().lower(), agent_id)
    return current if current is not None and current.agent_id == agent_id else None


def _active_agent(email: str, subject: str) -> Optional[Identity]:
    """The active agent holding `email`, from a short in-process cache (runtime.agents) so the
    token guard is not a DynamoDB read per request. A subject that does not match a cached entry
    forces one fresh read (at most one per AGENT_RECHECK_SECONDS), so a re-created agent's new
    token works at once."""
    moment = time.monotonic()
    cached = runtime.agents.get(email)
    if cached is not None:
        fetched_at, found = cached
        age = moment - fetched_at
        if age < AGENT_CACHE_SECONDS and (found is not None and found.agent_id == subject
                                          or age < AGENT_RECHECK_SECONDS):
            return found
    try:
        agent: Optional[Agent] = Agent.get(email)
    except DoesNotExist:
        agent = None
    found = _identity(agent) if agent is not None and agent.active else None
    runtime.agents[email] = (moment, found)
    return found


def _identity(agent: Agent) -> Identity:
    return Identity(agent.agent_id, agent.email, agent.name, agent.role, _epoch(agent),
                    bool(agent.must_change_password))


def _epoch(agent: Agent) -> int:
    return int(agent.token_epoch or 0)


def _remember_agent(agent: Agent) -> None:
    """Login just read the record: seed the token guard's cache with it."""
    runtime.agents[agent.email] = (time.monotonic(), _identity(agent))


def _key(*parts: str) -> str:
    """Throttle keys are hashes: the table never holds emails or addresses in clear."""
    return hashlib.sha256("|".join(("login",) + parts).encode("utf-8")).hexdigest()


def _refused(status: int, message: str, seconds: float) -> LoginRefused:
    return LoginRefused(status, message, max(1, min(MAX_RETRY_AFTER, int(math.ceil(seconds)))))


def _conditional_failure(error: Exception) -> bool:
    return getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException"


def _backoff(failures: int) -> float:
    """Seconds before the next attempt after `failures` checked failures of one email+source."""
    if failures >= LOCK_AFTER:
        return LOCK_SECONDS
    if failures < FREE_ATTEMPTS:
        return 0
    return min(MAX_BACKOFF_SECONDS, 2 ** min(failures - FREE_ATTEMPTS, 20))


def _reserve_source(source: str, moment: float) -> str:
    """Reserve one unit of the address's failure budget for this window (conditional ADD: a
    refused attempt writes nothing, so being refused costs the address nothing). The unit is
    given back unless the password check fails."""
    window = int(moment // SOURCE_WINDOW_SECONDS)
    key = _key("source", source, str(window))
    try:
        LoginThrottle(key).update(
            actions=[LoginThrottle.failures.add(1), LoginThrottle.last_failure_at.set(moment),
                     LoginThrottle.expires_at.set((window + 2) * SOURCE_WINDOW_SECONDS)],
            condition=LoginThrottle.failures.does_not_exist() | (LoginThrottle.failures < SOURCE_FAILURES_PER_WINDOW))
    except UpdateError as error:
        if not _conditional_failure(error):
            raise
        raise _refused(429, "too many failed attempts; try again later",
                       (window + 1) * SOURCE_WINDOW_SECONDS - moment)
    return key


def _reserve_pair(email: str, source: str, moment: float) -> Tuple[str, int]:
    """Claim the right to check one password for this email from this address.

    One conditional UpdateItem: it succeeds only when no back-off or lock is running, and it sets
    a short provisional lock, so concurrent requests are refused while one check is in flight.
    `_settle_pair` then replaces the provisional lock with the real back-off. A refused attempt
    writes nothing, so hammering does not extend anyone's wait.
    """
    key = _key("pair", email, source)
    item = LoginThrottle(key)
    try:
        item.update(
            actions=[LoginThrottle.failures.add(1), LoginThrottle.last_failure_at.set(moment),
                     LoginThrottle.locked_until.set(moment + IN_FLIGHT_SECONDS),
                     LoginThrottle.expires_at.set(int(moment) + THROTTLE_TTL_SECONDS)],
            condition=LoginThrottle.locked_until.does_not_exist() | (LoginThrottle.locked_until <= moment))
    except UpdateError as error:
        if not _conditional_failure(error):
            raise
        try:
            current = LoginThrottle.get(key, consistent_read=True)
        except DoesNotExist:
            raise _refused(429, "too many failed attempts; slow down", 1)
        in_flight = abs(current.locked_until - current.last_failure_at - IN_FLIGHT_SECONDS) < 0.001
        raise _refused(429, "too many failed attempts; slow down",
                       1 if in_flight else current.locked_until - moment)
    return key, int(item.failures)  # the count this attempt brings, as UpdateItem returned it


def _release_pair(key: str, moment: float) -> None:
    """Undo a reservation whose password was never checked (a later throttle refused it)."""
    LoginThrottle(key).update(actions=[LoginThrottle.failures.add(-1), LoginThrottle.locked_until.set(moment)])


def _settle_pair(key: str, failures: int, moment: float) -> None:
    """After a wrong password: the back-off (or lock) that the new failure count earns."""
    LoginThrottle(key).update(actions=[LoginThrottle.locked_until.set(moment + _backoff(failures))])


def _pace_email(email: str, moment: float) -> str:
    """The per-email ceiling: past EMAIL_FREE_PER_WINDOW checks in a window (from any address),
    one check per EMAIL_SPACING_SECONDS. It only slows down, never locks: a stranger can cost the
    real agent a few seconds, not a lockout. Conditional, so refused attempts write nothing."""
    window = int(moment // EMAIL_WINDOW_SECONDS)
    key = _key("email", email, str(window))
    try:
        LoginThrottle(key).update(
            actions=[LoginThrottle.failures.add(1), LoginThrottle.last_failure_at.set(moment),
                     LoginThrottle.expires_at.set((window + 2) * EMAIL_WINDOW_SECONDS)],
            condition=(LoginThrottle.failures.does_not_exist() | (LoginThrottle.failures < EMAIL_FREE_PER_WINDOW)
                       | (LoginThrottle.last_failure_at <= moment - EMAIL_SPACING_SECONDS)))
    except UpdateError as error:
        if not _conditional_failure(error):
            raise
        raise _refused(429, "too many failed attempts; slow down", EMAIL_SPACING_SECONDS)
    return key


def _give_back(keys: List[str]) -> None:
    """Return reserved budget units: the attempt was a success, or was never checked."""
    for key in keys:
        LoginThrottle(key).update(actions=[LoginThrottle.failures.add(-1)])


def _known_key(email: str, source: str) -> str:
    return _key("known", email, source)


def _is_known(email: str, source: str, moment: float) -> bool:
    """Whether this email signed in successfully from this address lately (read only when a
    shared budget would refuse: the common path pays nothing for it)."""
    try:
        item = LoginThrottle.get(_known_key(email, source), consistent_read=True)
    except DoesNotExist:
        return False
    return (item.expires_at or 0) > moment


def _reserve_shared(email: str, source: str, moment: float) -> List[str]:
    """Units of the address's and the email's budgets for one check. When either refuses, a
    known pair checks anyway (no units: its own pair back-off bounds it); anyone else is refused
    with what the budget said."""
    held: List[str] = []
    try:
        held.append(_reserve_source(source, moment))
        held.append(_pace_email(email, moment))
    except LoginRefused:
        _give_back(held)
        if _is_known(email, source, moment):
            return []
        raise
    return held


def login(email: str, password: str, now: Optional[float] = None, source: Optional[str] = None) -> str:
    """An access token for valid credentials; LoginRefused(401 or 429) otherwise (see verify)."""
    moment = now if now is not None else time.time()
    return issue_token(verify(email, password, moment, source), moment)


def sign_in(email: str, password: str, now: Optional[float] = None, source: Optional[str] = None) -> Dict[str, Any]:
    """POST /api/auth/login: an access token and a refresh token (a new sign-in)."""
    moment = now if now is not None else time.time()
    return start_session(verify(email, password, moment, source), moment)


def verify(email: str, password: str, now: Optional[float] = None, source: Optional[str] = None) -> Agent:
    """The active agent these credentials belong to; LoginRefused(401 or 429) otherwise.

    Throttled per email+source (back-off, then a lock that only that pair suffers), per source
    address and per email (a spacing, never a lock); a known pair skips the last two (see the
    module docstring). Only failed checks count; units are reserved before the password is
    checked, so a concurrent burst cannot check more passwords than the limits allow. The same
    steps run whether or not the email belongs to an agent.
    """
    moment = now if now is not None else time.time()
    email = email.strip().lower()
    source = (source or "").strip() or UNKNOWN_SOURCE
    pair_key, failures = _reserve_pair(email, source, moment)
    held: List[str] = []
    checked = False
    try:
        held = _reserve_shared(email, source, moment)
        agent: Optional[Agent]
        try:
            agent = Agent.get(email)
        except DoesNotExist:
            agent = None
        valid = check_password(password, agent.password_hash if agent else _dummy_hash())
        checked = True
    finally:
        if not checked:  # refused (or failed) before the check: it costs nobody anything
            _release_pair(pair_key, moment)
            _give_back(held)
    if agent is None or not agent.active or not valid:
        _settle_pair(pair_key, failures, moment)
        raise LoginRefused(401, "invalid email or password")
    LoginThrottle(pair_key).delete()
    _give_back(held)  # a success is not a failure
    LoginThrottle(_known_key(email, source)).update(  # UpdateItem: the one write the API may make here
        actions=[LoginThrottle.expires_at.set(int(moment) + KNOWN_PAIR_SECONDS)])
    _remember_agent(agent)
    return agent


# --- sessions: access + refresh tokens -------------------------------------------------------------


def _refresh_key(token: str) -> str:
    return "t#" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_refresh(agent: Agent, family: str, expires_at: int, moment: float) -> str:
    token = secrets.token_urlsafe(32)
    RefreshToken(_refresh_key(token), family=family, agent_id=agent.agent_id, email=agent.email,
                 epoch=_epoch(agent), created_at=int(moment * 1000), expires_at=expires_at).save()
    return token


def start_session(agent: Agent, now: Optional[float] = None) -> Dict[str, Any]:
    """A new sign-in for `agent`: its family item and the first pair of tokens."""
    moment = now if now is not None else time.time()
    family = uuid.uuid4().hex
    expires_at = int(moment) + REFRESH_TTL_SECONDS
    RefreshToken("f#" + family, family=family, agent_id=agent.agent_id, email=agent.email,
                 created_at=int(moment * 1000), expires_at=expires_at).save()
    return _pair(agent, _new_refresh(agent, family, expires_at, moment), moment)


def _pair(agent: Agent, refresh_token: str, moment: float) -> Dict[str, Any]:
    return {"token": issue_token(agent, moment), "token_type": "Bearer", "expires_in": TOKEN_TTL_SECONDS,
            "refresh_token": refresh_token}


def _conditional(item: Any, actions: list, condition: Any) -> bool:
    try:
        item.update(actions=actions, condition=condition)
        return True
    except UpdateError as error:
        if not _conditional_failure(error):
            raise
        return False


def refresh(refresh_token: Any, now: Optional[float] = None) -> Dict[str, Any]:
    """POST /api/auth/refresh: trade a refresh token (once) for a new pair; LoginRefused(401)
    when it is unknown, expired, already used (which also revokes its sign-in), or its agent is
    gone, deactivated, or changed password since."""
    moment = now if now is not None else time.time()
    refused = LoginRefused(401, "the refresh token is not valid; sign in again")
    if not isinstance(refresh_token, str) or not 20 <= len(refresh_token) <= REFRESH_TOKEN_MAX:
        raise refused
    key = _refresh_key(refresh_token)
    item = RefreshToken(key)
    # Used exactly once: of two concurrent refreshes with the same token one wins, the other is
    # a reuse (a legitimate client never sends the same token twice).
    if not _conditional(item, [RefreshToken.used_at.set(int(moment * 1000))],
                        RefreshToken.key.exists() & RefreshToken.used_at.does_not_exist()
                        & (RefreshToken.expires_at > int(moment))):
        try:
            seen = RefreshToken.get(key, consistent_read=True)
        except DoesNotExist:
            raise refused
        if seen.used_at is not None and seen.family:
            revoke_family(seen.family)
        raise refused
    try:
        family = RefreshToken.get("f#" + str(item.family), consistent_read=True)
        agent = Agent.get(str(item.email), consistent_read=True)
    except DoesNotExist:
        raise refused
    if family.revoked or family.expires_at <= int(moment):
        raise refused
    if not agent.active or agent.agent_id != item.agent_id or _epoch(agent) != int(item.epoch or 0):
        raise refused
    _remember_agent(agent)
    return _pair(agent, _new_refresh(agent, str(item.family), int(family.expires_at), moment), moment)


def revoke_family(family: str) -> None:
    """End one sign-in: none of its refresh tokens works any more."""
    RefreshToken("f#" + family).update(actions=[RefreshToken.revoked.set(True)])


def sign_out(refresh_token: Any) -> None:
    """POST /api/auth/logout: revoke the sign-in this refresh token belongs to (quietly)."""
    if not isinstance(refresh_token, str) or not 20 <= len(refresh_token) <= REFRESH_TOKEN_MAX:
        return
    try:
        item = RefreshToken.get(_refresh_key(refresh_token), consistent_read=True)
    except DoesNotExist:
        return
    if item.family:
        revoke_family(item.family)


def revoke_all(agent: Agent, now: Optional[float] = None) -> int:
    """Every token of the agent stops working: bumps `token_epoch` (access tokens here at once,
    elsewhere within AGENT_CACHE_SECONDS; refresh tokens everywhere at once). Returns the new epoch."""
    moment = now if now is not None else time.time()
    agent.update(actions=[Agent.token_epoch.add(1), Agent.updated_at.set(int(moment * 1000))])
    forget_agent(agent.email)
    close_sockets(agent.agent_id)
    return _epoch(agent)


def close_sockets(agent_id: str) -> None:
    """The agent's live-updates sockets close with their tokens (chalicelib.push); a failure here
    leaves them to their tokens' expiry (the fan-out sends nothing past it)."""
    from chalicelib.logs import describe_error, logger
    from chalicelib.push import connections

    try:
        connections.close_agent(agent_id)
    except Exception as error:  # noqa: BLE001 - the tokens are revoked either way
        logger.warning("push: sockets of a revoked agent not closed", extra={"agent_id": agent_id,
                                                                            "error": describe_error(error)[:300]})


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(uuid.uuid4().hex)
    return _DUMMY_HASH
