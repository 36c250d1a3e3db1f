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


def test_password_is_stored_with_scrypt_never_in_clear(inbox, agent, monkeypatch):
    from chalicelib.api.auth import create_agent
    from chalicelib.models import Agent

    monkeypatch.delenv("TEST_SCRYPT_N")  # the suite's cheap cost is for speed; the product's is 2^14
    create_agent("real@example.com", "s3cret-passw0rd", "Real", "agent")
    stored = Agent.get("real@example.com").password_hash
    assert stored.startswith("scrypt$16384$8$1$")
    assert "s3cret-passw0rd" not in stored
    monkeypatch.setenv("SOCIALINBOX_STAGE", "dev")  # a deployed stage never lowers the cost
    monkeypatch.setenv("TEST_SCRYPT_N", "1024")
    from chalicelib.api.auth import hash_password

    assert hash_password("x").startswith("scrypt$16384$")


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


# --- throttle: atomic counting, capped waits, no lockout by strangers (issue 6) ---------------------


def _burst(email, passwords, source="198.51.100.7", now=None):
    """Run one login per password, all released at the same instant from their own threads, all
    stamped with the same arrival time (so the back-off cannot legitimately allow more); returns
    (statuses in order, how many passwords were actually checked)."""
    import threading

    from chalicelib.api import auth

    real_check = auth.check_password
    checked, lock = [], threading.Lock()
    barrier = threading.Barrier(len(passwords))
    statuses = [None] * len(passwords)
    moment = now if now is not None else time.time()

    def counting_check(password, stored):
        with lock:
            checked.append(password)
        return real_check(password, stored)

    def attempt(index, password):
        barrier.wait()
        try:
            auth.login(email, password, now=moment, source=source)
            statuses[index] = 200
        except auth.LoginRefused as refused:
            statuses[index] = refused.status

    from tests.helpers import MotoAppliesEachRequestAtomically

    auth.check_password = counting_check
    try:
        with MotoAppliesEachRequestAtomically():
            threads = [threading.Thread(target=attempt, args=(i, p)) for i, p in enumerate(passwords)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
    finally:
        auth.check_password = real_check
    return statuses, len(checked)


def test_a_concurrent_burst_checks_no_more_passwords_than_sequential_attempts(inbox, agent):
    from chalicelib.api import auth

    moment = time.time()
    passwords = [f"guess-{i}" for i in range(30)]
    passwords[17] = "s3cret-passw0rd"  # the right one hidden inside the burst
    statuses, checked = _burst("sam@example.com", passwords, now=moment)
    assert 1 <= checked <= auth.FREE_ATTEMPTS
    assert set(statuses) <= {200, 401, 429}
    assert statuses.count(401) + statuses.count(200) == checked
    if 200 not in statuses:  # the right password was refused unchecked: refusals cost nothing, so it
        # works once the back-off of the few checked guesses has passed (the address is not held back)
        assert _attempt("sam@example.com", "s3cret-passw0rd", moment + 2, "198.51.100.7") == 200


def test_a_burst_against_an_unknown_email_is_throttled_the_same_way(inbox, agent):
    from chalicelib.api import auth

    statuses, checked = _burst("ghost@example.com", [f"guess-{i}" for i in range(30)])
    assert 1 <= checked <= auth.FREE_ATTEMPTS
    assert set(statuses) <= {401, 429}


def test_retry_after_is_capped_however_long_the_attack(inbox, agent):
    from chalicelib.api import auth

    moment, waits = time.time(), []
    for _ in range(60):
        try:
            auth.login("sam@example.com", "wrong", now=moment, source="198.51.100.7")
        except auth.LoginRefused as refused:
            if refused.status == 429:
                waits.append(refused.retry_after)
                moment += refused.retry_after  # come back exactly when told to
                continue
        moment += 0.5
    assert waits and max(waits) <= auth.MAX_RETRY_AFTER
    assert all(w >= 1 for w in waits)


def test_http_retry_after_header_stays_small(inbox, agent):
    from chalicelib.api import auth

    for _ in range(40):
        response = _login(inbox, "sam@example.com", "wrong")
        if response.status_code == 429:
            assert 1 <= int(response.headers["Retry-After"]) <= auth.MAX_RETRY_AFTER


def test_a_stranger_elsewhere_cannot_lock_the_agent_out(inbox, agent):
    from chalicelib.api import auth

    start = time.time()
    refused_stranger = 0
    for i in range(60):  # far beyond the lock threshold, from another address
        try:
            auth.login("sam@example.com", "wrong", now=start + i, source="203.0.113.66")
        except auth.LoginRefused as refused:
            refused_stranger += refused.status == 429
    assert refused_stranger > 0  # the stranger is held back ...
    response = _login(inbox, "sam@example.com", "s3cret-passw0rd")  # ... the agent (127.0.0.1) is not
    assert response.status_code == 200


def test_a_distributed_attack_only_slows_the_agent_down(inbox, agent):
    from chalicelib.api import auth

    start, moment = time.time(), time.time()
    for address in range(12):  # many addresses, each up to its own lock
        for attempt in range(auth.LOCK_AFTER):
            moment = start + address * 0.01 + attempt * 0.001
            try:
                auth.login("sam@example.com", "wrong", now=moment, source=f"203.0.113.{address}")
            except auth.LoginRefused:
                pass
    # Past the per-email ceiling the agent may have to wait, but only a few seconds, never a lock.
    try:
        token = auth.login("sam@example.com", "s3cret-passw0rd", now=moment, source="192.0.2.10")
    except auth.LoginRefused as refused:
        assert refused.status == 429 and refused.retry_after <= auth.EMAIL_SPACING_SECONDS
        token = auth.login("sam@example.com", "s3cret-passw0rd", now=moment + refused.retry_after,
                           source="192.0.2.10")
    assert token


def test_one_address_cannot_spray_many_emails(inbox, agent):
    from chalicelib.api import auth

    start, statuses = time.time(), []
    for i in range(auth.SOURCE_FAILURES_PER_WINDOW + 5):
        try:
            auth.login(f"user{i}@example.com", "Winter2024!", now=start + i * 0.01, source="198.51.100.9")
            statuses.append(200)
        except auth.LoginRefused as refused:
            statuses.append(refused.status)
    assert statuses[: auth.SOURCE_FAILURES_PER_WINDOW] == [401] * auth.SOURCE_FAILURES_PER_WINDOW
    assert set(statuses[auth.SOURCE_FAILURES_PER_WINDOW:]) == {429}
    # Other addresses are unaffected.
    assert auth.login("sam@example.com", "s3cret-passw0rd", now=start + 1, source="192.0.2.10")


# --- throttle guesses, not people (issue 16 item 3) -------------------------------------------------


def _window_start() -> float:
    """A moment early in a throttle window (tests spanning seconds must not straddle two)."""
    from chalicelib.api import auth

    return (time.time() // auth.SOURCE_WINDOW_SECONDS) * auth.SOURCE_WINDOW_SECONDS + 1


def _attempt(email, password, moment, source):
    from chalicelib.api import auth

    try:
        auth.login(email, password, now=moment, source=source)
        return 200
    except auth.LoginRefused as refused:
        return refused.status


def test_attempts_refused_unchecked_cost_the_address_nothing(inbox, agent):
    """A 40-request burst against one email is mostly refused by its back-off without a check;
    those refusals must not use up the address's budget (the whole office behind it)."""
    from chalicelib.api import auth

    start = time.time()
    statuses = [_attempt("sam@example.com", f"guess-{i}", start + i * 0.01, "198.51.100.20") for i in range(40)]
    assert statuses.count(401) <= auth.FREE_ATTEMPTS + 1 and statuses.count(429) >= 35
    auth.create_agent("kim@example.com", "kim-s3cret-passw0rd", "Kim", "agent")  # never signed in before
    assert _attempt("kim@example.com", "kim-s3cret-passw0rd", start + 1, "198.51.100.20") == 200


def test_an_office_behind_one_address_still_signs_in_while_a_stranger_sprays_from_it(inbox, agent):
    from chalicelib.api import auth

    office, start = "198.51.100.30", _window_start()
    auth.create_agent("kim@example.com", "kim-s3cret-passw0rd", "Kim", "agent")
    assert _attempt("kim@example.com", "kim-s3cret-passw0rd", start, office) == 200  # Kim's usual address
    sprayed = [_attempt(f"user{i}@example.com", "Winter2024!", start + 1 + i * 0.01, office)
               for i in range(auth.SOURCE_FAILURES_PER_WINDOW + 3)]
    assert sprayed.count(401) == auth.SOURCE_FAILURES_PER_WINDOW  # the stranger's guesses are bounded
    assert set(sprayed[auth.SOURCE_FAILURES_PER_WINDOW:]) == {429}
    # Kim, known at this address, signs in with the right password, again and again ...
    for i in range(5):
        assert _attempt("kim@example.com", "kim-s3cret-passw0rd", start + 2 + i * 3, office) == 200
    # ... while a guess at Kim's password from there is still only a guess (and counts for the pair).
    assert _attempt("kim@example.com", "wrong", start + 20, office) == 401
    # Someone never seen at this address waits for the window, like the stranger.
    assert _attempt("sam@example.com", "s3cret-passw0rd", start + 21, office) == 429


def test_strangers_guessing_at_an_email_from_many_addresses_do_not_stop_the_right_password(inbox, agent):
    """One guess a second from rotating addresses (past the email's free checks); the agent signs
    in from their usual address every 3 s with the right password: every time. The guesses stay
    bounded."""
    from chalicelib.api import auth

    home, start = "192.0.2.50", _window_start()
    assert _attempt("sam@example.com", "s3cret-passw0rd", start, home) == 200
    real_check, checked = auth.check_password, []

    def counting(password, stored):
        checked.append(password)
        return real_check(password, stored)

    auth.check_password = counting
    try:
        agent_statuses = []
        for second in range(1, 41):
            _attempt("sam@example.com", f"guess-{second}", start + second, f"203.0.113.{second}")
            if second % 3 == 0:
                agent_statuses.append(_attempt("sam@example.com", "s3cret-passw0rd", start + second, home))
    finally:
        auth.check_password = real_check
    assert agent_statuses == [200] * 13
    guesses = len(checked) - len(agent_statuses)
    assert guesses <= auth.EMAIL_FREE_PER_WINDOW + (40 - auth.EMAIL_FREE_PER_WINDOW) // auth.EMAIL_SPACING_SECONDS + 1
    assert guesses < 40  # some were refused unchecked: the email's delay holds strangers back


def test_every_login_answer_is_no_store(inbox, agent):
    answers = [_login(inbox, "sam@example.com", "s3cret-passw0rd"), _login(inbox, "sam@example.com", "wrong")]
    answers.append(inbox.client.http.post("/api/auth/login", body="not json", headers=JSON))
    answers.append(inbox.client.http.post("/api/auth/login", body='{"email": 1}', headers=JSON))
    while answers[-1].status_code != 429:
        answers.append(_login(inbox, "sam@example.com", "wrong"))
    assert [a.status_code for a in answers[:4]] == [200, 401, 400, 400]
    for answer in answers:
        assert answer.headers.get("Cache-Control") == "no-store", answer.status_code


def test_source_address_comes_from_the_request_context(inbox, agent, monkeypatch):
    from chalice.local import LambdaEventConverter

    for _ in range(3):
        _login(inbox, "sam@example.com", "wrong")
    assert _login(inbox, "sam@example.com", "s3cret-passw0rd").status_code == 429  # 127.0.0.1 slowed
    monkeypatch.setattr(LambdaEventConverter, "LOCAL_SOURCE_IP", "192.0.2.44")
    assert _login(inbox, "sam@example.com", "s3cret-passw0rd").status_code == 200  # another address


# --- tokens follow the agent record; stable demo ids ------------------------------------------------


def _token(inbox, email="sam@example.com", password="s3cret-passw0rd"):
    response = _login(inbox, email, password)
    assert response.status_code == 200, response.body
    return json.loads(response.body)["token"]


def _me(inbox, token):
    return inbox.client.http.get("/api/me", headers={"Authorization": "Bearer " + token})


def test_token_of_a_deleted_agent_is_refused(inbox, agent):
    from chalicelib.api.auth import forget_agent
    from chalicelib.models import Agent

    token = _token(inbox)
    assert _me(inbox, token).status_code == 200
    Agent.get("sam@example.com").delete()
    forget_agent("sam@example.com")
    assert _me(inbox, token).status_code == 401


def test_deactivation_reaches_other_containers_when_the_cache_expires(inbox, agent, monkeypatch):
    from chalicelib.api import auth
    from chalicelib.models import Agent

    token = _token(inbox)
    assert _me(inbox, token).status_code == 200
    record = Agent.get("sam@example.com")
    record.update(actions=[Agent.active.set(False)])  # as another container would, without forgetting
    assert _me(inbox, token).status_code == 200  # still trusted from memory, briefly
    monkeypatch.setattr(auth, "AGENT_CACHE_SECONDS", 0.0)
    assert _me(inbox, token).status_code == 401


def test_token_for_a_recreated_agent_with_another_id_is_refused(inbox, agent):
    from chalicelib.api.auth import create_agent

    old = _token(inbox)
    create_agent("sam@example.com", "s3cret-passw0rd", "Sam", "agent")  # same email, new random id
    assert _me(inbox, old).status_code == 401
    new = _token(inbox)
    assert json.loads(_me(inbox, new).body)["id"] != jwt.decode(old, options={"verify_signature": False})["sub"]


def test_a_stale_subject_is_refused_even_in_another_process(inbox, agent):
    from chalicelib.models import Agent
    from chalicelib.runtime import runtime

    token = _token(inbox)
    Agent.get("sam@example.com").update(actions=[Agent.agent_id.set("a_someoneelse0000")])
    runtime.reset()  # a fresh container: nothing cached
    assert _me(inbox, token).status_code == 401


def test_the_token_guard_reads_the_agent_at_most_once_per_cache_period(inbox, agent, monkeypatch):
    from chalicelib.models import Agent
    from chalicelib.runtime import runtime

    token = _token(inbox)
    runtime.agents.clear()
    reads = []
    real_get = Agent.get.__func__

    def counting_get(cls, *args, **kwargs):
        reads.append(args)
        return real_get(cls, *args, **kwargs)

    monkeypatch.setattr(Agent, "get", classmethod(counting_get))
    for _ in range(5):
        assert _me(inbox, token).status_code == 200
    assert len(reads) == 1


def test_role_comes_from_the_agent_record(inbox, agent):
    from chalicelib.api.auth import forget_agent
    from chalicelib.models import Agent

    token = _token(inbox)
    Agent.get("sam@example.com").update(actions=[Agent.role.set("admin")])
    forget_agent("sam@example.com")
    assert json.loads(_me(inbox, token).body)["role"] == "admin"


def test_seeded_agent_ids_survive_a_restart(aws_backend):
    from chalicelib.local.seed import DEMO_AGENTS, seed, stable_agent_id
    from chalicelib.models import Agent

    seed()
    first = {email: Agent.get(email).agent_id for email, _, _ in DEMO_AGENTS}
    for email in first:  # the in-memory emulator forgets everything on restart
        Agent.get(email).delete()
    seed()
    second = {email: Agent.get(email).agent_id for email, _, _ in DEMO_AGENTS}
    assert first == second == {email: stable_agent_id(email) for email in first}
    assert len(set(first.values())) == len(first)
