"""Agent authentication: scrypt password hashes, short-lived signed tokens, login throttling.

Throttling is keyed by the (hashed) email whether or not an agent has it, and unknown emails
still pay for a scrypt run, so neither the answer, its timing nor the lockout tells an attacker
which emails exist.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Optional

from pynamodb.exceptions import DoesNotExist

from chalicelib import config
from chalicelib.models import Agent, LoginThrottle

SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**14, 8, 1, 32
TOKEN_TTL_SECONDS = 3600
FREE_ATTEMPTS = 3  # failures before each further attempt must wait (1 s, 2 s, 4 s, ...)
LOCK_AFTER = 8  # failures before the email is locked
LOCK_SECONDS = 15 * 60
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


def hash_password(password: str, salt: Optional[bytes] = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            dklen=SCRYPT_LEN, maxmem=64 * 1024 * 1024)
    return "scrypt${}${}${}${}${}".format(SCRYPT_N, SCRYPT_R, SCRYPT_P, base64.b64encode(salt).decode(),
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


def create_agent(email: str, password: str, name: str, role: str = "agent") -> Agent:
    agent = Agent(email.strip().lower(), agent_id="a_" + uuid.uuid4().hex[:16], name=name, role=role,
                  password_hash=hash_password(password), active=True, created_at=int(time.time() * 1000))
    agent.save()
    return agent


def _token_secret() -> str:
    secret = config.get_secret("AUTH_TOKEN_SECRET")
    if not secret or len(secret) < 32:
        raise RuntimeError("AUTH_TOKEN_SECRET is missing or shorter than 32 characters")
    return secret


def issue_token(agent: Agent, now: Optional[float] = None) -> str:
    import jwt

    issued = int(now if now is not None else time.time())
    claims = {"sub": agent.agent_id, "email": agent.email, "name": agent.name, "role": agent.role,
              "iat": issued, "exp": issued + TOKEN_TTL_SECONDS, "iss": "socialinbox"}
    return jwt.encode(claims, _token_secret(), algorithm="HS256")


def identity_from_header(authorization: Optional[str]) -> Optional[Identity]:
    """The agent behind `Authorization: Bearer <token>`, or None if absent/invalid/expired."""
    import jwt

    if not authorization or not authorization.startswith("Bearer "):
        return None
    try:
        claims: Dict[str, Any] = jwt.decode(authorization[7:].strip(), _token_secret(), algorithms=["HS256"],
                                            issuer="socialinbox", options={"require": ["exp", "sub", "iat"]})
    except jwt.PyJWTError:
        return None
    return Identity(str(claims["sub"]), str(claims.get("email", "")), str(claims.get("name", "")),
                    str(claims.get("role", "agent")))


def _throttle_key(email: str) -> str:
    return hashlib.sha256(("login|" + email).encode("utf-8")).hexdigest()


def login(email: str, password: str, now: Optional[float] = None) -> str:
    """A token for valid credentials; LoginRefused(401 or 429) otherwise."""
    moment = now if now is not None else time.time()
    email = email.strip().lower()
    key = _throttle_key(email)
    try:
        throttle = LoginThrottle.get(key)
    except DoesNotExist:
        throttle = LoginThrottle(key, failures=0, last_failure_at=0, locked_until=0)
    if throttle.locked_until > moment:
        raise LoginRefused(429, "too many failed attempts; try again later", int(throttle.locked_until - moment) + 1)
    if throttle.failures >= FREE_ATTEMPTS:
        wait = 2 ** (throttle.failures - FREE_ATTEMPTS)
        remaining = throttle.last_failure_at + wait - moment
        if remaining > 0:
            raise LoginRefused(429, "too many failed attempts; slow down", int(remaining) + 1)

    agent: Optional[Agent]
    try:
        agent = Agent.get(email)
    except DoesNotExist:
        agent = None
    valid = check_password(password, agent.password_hash if agent else _dummy_hash())
    if agent is None or not agent.active or not valid:
        failures = throttle.failures + 1
        actions = [LoginThrottle.failures.add(1), LoginThrottle.last_failure_at.set(moment),
                   LoginThrottle.expires_at.set(int(moment) + 86400)]
        if failures >= LOCK_AFTER:
            actions.append(LoginThrottle.locked_until.set(moment + LOCK_SECONDS))
        LoginThrottle(key).update(actions=actions)
        raise LoginRefused(401, "invalid email or password")
    if throttle.failures:
        LoginThrottle(key).delete()
    return issue_token(agent, moment)


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(uuid.uuid4().hex)
    return _DUMMY_HASH
