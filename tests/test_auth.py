"""Agent login through POST /api/auth/login and the Bearer guard on every /api route."""
from __future__ import annotations

import json
import time

import jwt
import pytest


JSON = {"Content-Type": "application/json"}


def _login(inbox, email, password):
    return inbox.client.http.post("/api/auth/login", body=json.dumps({"email": email, "password": password}),
                                  headers=JSON)


@pytest.fixture
def agent(inbox):
    from chalicelib.api.auth import create_agent

    return create_agent("sam@example.com", "s3cret-passw0rd", "Sam", "agent")


def test_password_is_stored_with_scrypt_never_in_clear(inbox, agent):
    from chalicelib.models import Agent

    stored = Agent.get("sam@example.com").password_hash
    assert stored.startswith("scrypt$16384$8$1$")
    assert "s3cret-passw0rd" not in stored


def test_login_returns_a_short_lived_signed_token(inbox, agent):
    response = _login(inbox, "Sam@Example.com ", "s3cret-passw0rd")
    assert response.status_code == 200
    token = json.loads(response.body)["token"]
    claims = jwt.decode(token, "test_auth_token_secret_0123456789abcdef", algorithms=["HS256"], issuer="socialinbox")
    assert claims["sub"] == agent.agent_id
    assert 0 < claims["exp"] - time.time() <= 3600
    me = inbox.client.http.get("/api/me", headers={"Authorization": "Bearer " + token})
    assert json.loads(me.body)["email"] == "sam@example.com"


@pytest.mark.parametrize("path", ["/api/me", "/api/conversations", "/api/conversations/c_x",
                                  "/api/conversations/c_x/messages", "/api/accounts", "/api/admin/quarantine"])
@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer garbage", "Basic YWRtaW46YWRtaW4="])
def test_api_routes_need_a_valid_token(inbox, path, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    assert inbox.client.http.get(path, headers=headers).status_code == 401


def test_expired_and_wrongly_signed_tokens_are_refused(inbox, agent):
    now = int(time.time())
    base = {"sub": agent.agent_id, "email": agent.email, "role": "agent", "iss": "socialinbox"}
    expired = jwt.encode(dict(base, iat=now - 7200, exp=now - 3600), "test_auth_token_secret_0123456789abcdef")
    forged = jwt.encode(dict(base, iat=now, exp=now + 600), "another_secret_that_is_long_enough_000")
    unsigned = jwt.encode(dict(base, iat=now, exp=now + 600), None, algorithm="none")
    for token in (expired, forged, unsigned):
        assert inbox.client.http.get("/api/me", headers={"Authorization": "Bearer " + token}).status_code == 401


def test_wrong_password_and_unknown_email_get_the_same_answer(inbox, agent):
    wrong = _login(inbox, "sam@example.com", "nope")
    unknown = _login(inbox, "nobody@example.com", "nope")
    assert wrong.status_code == unknown.status_code == 401
    assert json.loads(wrong.body)["Message"] == json.loads(unknown.body)["Message"] == "invalid email or password"


@pytest.mark.parametrize("body", ["not json", "[]", '{"email": "a@b.c"}', '{"email": 1, "password": 2}',
                                  '{"email": "", "password": ""}'])
def test_malformed_login_is_a_400(inbox, body):
    assert inbox.client.http.post("/api/auth/login", body=body, headers=JSON).status_code == 400


def test_repeated_failures_slow_down_then_lock_for_known_and_unknown_emails_alike(inbox, agent):
    from chalicelib.api import auth

    def attempts(email, password, start):
        statuses = []
        for i in range(auth.LOCK_AFTER + 2):
            try:
                auth.login(email, password, now=start + i * 100)  # far enough apart never to be slowed
                statuses.append(200)
            except auth.LoginRefused as refused:
                statuses.append(refused.status)
        return statuses

    start = time.time()
    known = attempts("sam@example.com", "wrong", start)
    unknown = attempts("ghost@example.com", "wrong", start)
    assert known == unknown
    assert known[: auth.LOCK_AFTER] == [401] * auth.LOCK_AFTER
    assert known[auth.LOCK_AFTER:] == [429, 429]
    # Locked even with the right password, until the lock expires.
    moment = start + (auth.LOCK_AFTER + 2) * 100
    with pytest.raises(auth.LoginRefused) as refused:
        auth.login("sam@example.com", "s3cret-passw0rd", now=moment)
    assert refused.value.status == 429 and refused.value.retry_after > 0
    assert auth.login("sam@example.com", "s3cret-passw0rd", now=moment + auth.LOCK_SECONDS + 1)


def test_quick_retries_after_a_few_failures_are_slowed_down(inbox, agent):
    from chalicelib.api import auth

    start = time.time()
    for i in range(auth.FREE_ATTEMPTS):
        with pytest.raises(auth.LoginRefused):
            auth.login("sam@example.com", "wrong", now=start + i * 0.1)
    with pytest.raises(auth.LoginRefused) as refused:
        auth.login("sam@example.com", "s3cret-passw0rd", now=start + auth.FREE_ATTEMPTS * 0.1)
    assert refused.value.status == 429
    # After waiting, the right password works and clears the counter.
    assert auth.login("sam@example.com", "s3cret-passw0rd", now=start + 5)
    response = _login(inbox, "sam@example.com", "s3cret-passw0rd")
    assert response.status_code == 200


def test_http_lockout_answers_429_with_retry_after(inbox, agent):
    for _ in range(3):
        assert _login(inbox, "sam@example.com", "wrong").status_code == 401
    slowed = _login(inbox, "sam@example.com", "wrong")
    assert slowed.status_code == 429
    assert int(slowed.headers["Retry-After"]) >= 1


def test_admin_routes_need_the_admin_role(inbox, agent):
    token = json.loads(_login(inbox, "sam@example.com", "s3cret-passw0rd").body)["token"]
    headers = {"Authorization": "Bearer " + token}
    assert inbox.client.http.get("/api/accounts", headers=headers).status_code == 403
    assert inbox.client.http.get("/api/admin/quarantine", headers=headers).status_code == 403
    admin = inbox.login_admin()
    assert inbox.client.http.get("/api/accounts", headers={"Authorization": "Bearer " + admin}).status_code == 200
