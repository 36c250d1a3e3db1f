"""People and sessions: the admin API for agents (roles, teams, capacity, deactivation), own
password changes, access + refresh tokens (rotation, reuse, revocation), the create-admin
command, and hostile input."""
from __future__ import annotations

import io
import json
import time
from typing import Any, Dict, Optional

import pytest

JSON = {"Content-Type": "application/json"}
PASSWORD = "a long enough password"


def _call(inbox, method: str, path: str, token: Optional[str] = None, body: Any = None, raw: Optional[bytes] = None):
    headers: Dict[str, str] = dict(JSON)
    if token:
        headers["Authorization"] = "Bearer " + token
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    return inbox.client.http.request(method, path, headers=headers, body=data)


def _login(inbox, email: str, password: str):
    return _call(inbox, "POST", "/api/auth/login", body={"email": email, "password": password})


def _create(inbox, admin: str, **fields: Any) -> Dict[str, Any]:
    body = {"email": "ana@example.com", "name": "Ana", "role": "agent", "teams": ["default"], "password": PASSWORD}
    body.update(fields)
    response = _call(inbox, "POST", "/api/agents", admin, body)
    assert response.status_code == 201, response.body
    return json.loads(response.body)


def _session(inbox, email: str = "ana@example.com", password: str = PASSWORD) -> Dict[str, Any]:
    response = _login(inbox, email, password)
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def _refresh(inbox, token: Any):
    return _call(inbox, "POST", "/api/auth/refresh", body={"refresh_token": token})


@pytest.fixture
def admin(inbox):
    return inbox.login_admin()


# --- the admin API --------------------------------------------------------------------------------


def test_admin_creates_an_agent_with_a_one_time_temporary_password(inbox, admin):
    created = _create(inbox, admin, email="Ana@Example.com", password=None, capacity=4, teams=["billing", "default"])
    assert created["email"] == "ana@example.com" and created["role"] == "agent" and created["active"] is True
    assert created["teams"] == ["billing", "default"] and created["capacity"] == 4
    assert created["must_change_password"] is True
    temporary = created["temporary_password"]
    assert len(temporary) >= 16
    from chalicelib.models import Agent

    assert temporary not in json.dumps(Agent.get("ana@example.com").attribute_values, default=str)
    session = _session(inbox, "ana@example.com", temporary)
    me = _call(inbox, "GET", "/api/me", session["token"])
    assert json.loads(me.body)["id"] == created["id"]
    shown = json.loads(_call(inbox, "GET", f"/api/agents/{created['id']}", admin).body)
    assert "temporary_password" not in shown and shown["must_change_password"] is True


def test_create_with_a_given_password_and_defaults(inbox, admin):
    response = _call(inbox, "POST", "/api/agents", admin, {"email": "kim@example.com", "name": "Kim",
                                                             "password": PASSWORD})
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    created = json.loads(response.body)
    assert "temporary_password" not in created and created["must_change_password"] is False
    assert created["role"] == "agent" and created["teams"] == ["default"]
    _session(inbox, "kim@example.com")


def test_duplicate_email_is_409_whatever_the_case(inbox, admin):
    _create(inbox, admin)
    again = _call(inbox, "POST", "/api/agents", admin, {"email": " ANA@example.com", "name": "Other",
                                                          "password": PASSWORD})
    assert again.status_code == 409


def test_list_and_get_agents(inbox, admin):
    ana = _create(inbox, admin)
    bob = _create(inbox, admin, email="bob@example.com", name="Bob", teams=["billing"])
    sue = _create(inbox, admin, email="sue@example.com", name="Sue", role="supervisor", teams=["billing"])
    everyone = json.loads(_call(inbox, "GET", "/api/agents", admin).body)["items"]
    assert {a["id"] for a in everyone} >= {ana["id"], bob["id"], sue["id"]}
    assert all("password_hash" not in a for a in everyone)
    supervisor = _session(inbox, "sue@example.com")["token"]
    seen = json.loads(_call(inbox, "GET", "/api/agents", supervisor).body)["items"]
    assert {a["id"] for a in seen} == {bob["id"], sue["id"]}  # agents of her teams, and herself
    assert _call(inbox, "GET", f"/api/agents/{bob['id']}", supervisor).status_code == 200
    assert _call(inbox, "GET", f"/api/agents/{ana['id']}", supervisor).status_code == 404


def test_paging_agents_with_a_signed_cursor(inbox, admin):
    for i in range(3):
        _create(inbox, admin, email=f"p{i}@example.com", name=f"P{i}")
    first = json.loads(_call(inbox, "GET", "/api/agents?limit=2", admin).body)
    assert len(first["items"]) == 2 and first["next"]
    second = json.loads(_call(inbox, "GET", f"/api/agents?limit=2&cursor={first['next']}", admin).body)
    ids = {a["id"] for a in first["items"]} | {a["id"] for a in second["items"]}
    assert len(ids) == 4  # three agents and the admin
    assert _call(inbox, "GET", "/api/agents?cursor=forged.cursor", admin).status_code == 400


@pytest.mark.parametrize("role", ["agent", "supervisor"])
def test_only_admins_create_and_change_agents(inbox, admin, role):
    target = _create(inbox, admin, email="t@example.com", name="T")
    _create(inbox, admin, email="me@example.com", name="Me", role=role)
    token = _session(inbox, "me@example.com")["token"]
    assert _call(inbox, "POST", "/api/agents", token, {"email": "x@example.com", "name": "X"}).status_code == 403
    assert _call(inbox, "PATCH", f"/api/agents/{target['id']}", token, {"role": "admin"}).status_code == 403
    listed = _call(inbox, "GET", "/api/agents", token)
    assert listed.status_code == (403 if role == "agent" else 200)
    assert _call(inbox, "PUT", f"/api/agents/{target['id']}/routing", token, {"capacity": 1}).status_code == 403


def test_role_changes_apply_to_existing_tokens_at_once(inbox, admin):
    ana = _create(inbox, admin)
    token = _session(inbox)["token"]
    assert _call(inbox, "GET", "/api/agents", token).status_code == 403
    assert _call(inbox, "PATCH", f"/api/agents/{ana['id']}", admin, {"role": "supervisor"}).status_code == 200
    assert _call(inbox, "GET", "/api/agents", token).status_code == 200
    assert json.loads(_call(inbox, "GET", "/api/me", token).body)["role"] == "supervisor"


def test_patch_name_capacity_teams(inbox, admin):
    ana = _create(inbox, admin)
    changed = _call(inbox, "PATCH", f"/api/agents/{ana['id']}", admin,
                    {"name": "Ana Lima", "capacity": 7, "teams": ["vip", "default", "vip"]})
    assert changed.status_code == 200, changed.body
    body = json.loads(changed.body)
    assert body["name"] == "Ana Lima" and body["capacity"] == 7 and body["teams"] == ["default", "vip"]
    from chalicelib.routing import directory

    assert sorted(directory.team("vip").members) == [ana["id"]]


def test_admins_cannot_deactivate_or_demote_themselves(inbox, admin):
    me = json.loads(_call(inbox, "GET", "/api/me", admin).body)
    assert _call(inbox, "PATCH", f"/api/agents/{me['id']}", admin, {"active": False}).status_code == 409
    assert _call(inbox, "PATCH", f"/api/agents/{me['id']}", admin, {"role": "agent"}).status_code == 409
    assert _call(inbox, "PATCH", f"/api/agents/{me['id']}", admin, {"name": "Still Admin"}).status_code == 200
    assert _call(inbox, "GET", "/api/agents", admin).status_code == 200


# --- deactivation ---------------------------------------------------------------------------------


def test_deactivation_kills_access_and_refresh_tokens_and_login_at_once(inbox, admin):
    ana = _create(inbox, admin)
    session = _session(inbox)
    assert _call(inbox, "GET", "/api/me", session["token"]).status_code == 200
    off = _call(inbox, "PATCH", f"/api/agents/{ana['id']}", admin, {"active": False})
    assert off.status_code == 200 and json.loads(off.body)["active"] is False
    assert _call(inbox, "GET", "/api/me", session["token"]).status_code == 401
    assert _refresh(inbox, session["refresh_token"]).status_code == 401
    assert _login(inbox, "ana@example.com", PASSWORD).status_code == 401
    # reactivated: a new login works, the old sign-in stays dead
    assert _call(inbox, "PATCH", f"/api/agents/{ana['id']}", admin, {"active": True}).status_code == 200
    assert _call(inbox, "GET", "/api/me", session["token"]).status_code == 401
    assert _refresh(inbox, session["refresh_token"]).status_code == 401
    assert _call(inbox, "GET", "/api/me", _session(inbox)["token"]).status_code == 200


def test_deactivation_sets_the_agent_offline(inbox, admin):
    from chalicelib.routing import directory

    ana = _create(inbox, admin)
    token = _session(inbox)["token"]
    assert _call(inbox, "PUT", "/api/me/presence", token, {"status": "online"}).status_code == 200
    _call(inbox, "PATCH", f"/api/agents/{ana['id']}", admin, {"active": False})
    assert directory.profile(ana["id"]).presence == "offline"


def test_another_container_stops_honouring_the_token_within_the_cache_ttl(inbox, admin, monkeypatch):
    """Deactivated elsewhere (the record changes, this container's cache does not hear of it)."""
    from chalicelib.api import auth
    from chalicelib.models import Agent

    _create(inbox, admin)
    token = _session(inbox)["token"]
    assert _call(inbox, "GET", "/api/me", token).status_code == 200  # cached here
    record = Agent.get("ana@example.com")
    record.update(actions=[Agent.active.set(False), Agent.token_epoch.add(1)])  # another container's change
    assert _call(inbox, "GET", "/api/me", token).status_code == 200  # still trusted from memory...
    later = time.monotonic() + auth.AGENT_CACHE_SECONDS + 1
    monkeypatch.setattr(auth.time, "monotonic", lambda: later)
    assert _call(inbox, "GET", "/api/me", token).status_code == 401  # ...not past the TTL


# --- sessions -------------------------------------------------------------------------------------


def test_login_keeps_its_shape_and_adds_refresh_token_and_expires_in(inbox, admin):
    import jwt

    _create(inbox, admin)
    response = _login(inbox, "ana@example.com", PASSWORD)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = json.loads(response.body)
    assert set(body) == {"token", "token_type", "refresh_token", "expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 900


def test_refresh_rotates_and_keeps_the_agent_signed_in(inbox, admin):
    _create(inbox, admin)
    session = _session(inbox)
    response = _refresh(inbox, session["refresh_token"])
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    renewed = json.loads(response.body)
    assert set(renewed) == {"token", "token_type", "refresh_token", "expires_in"}
    assert renewed["refresh_token"] != session["refresh_token"]
    assert _call(inbox, "GET", "/api/me", renewed["token"]).status_code == 200
    again = json.loads(_refresh(inbox, renewed["refresh_token"]).body)
    assert _call(inbox, "GET", "/api/me", again["token"]).status_code == 200


def test_a_reused_refresh_token_is_refused_and_revokes_its_sign_in(inbox, admin):
    _create(inbox, admin)
    stolen = _session(inbox)
    other_device = _session(inbox)
    legit = json.loads(_refresh(inbox, stolen["refresh_token"]).body)
    replay = _refresh(inbox, stolen["refresh_token"])
    assert replay.status_code == 401 and replay.headers["Cache-Control"] == "no-store"
    assert json.loads(replay.body)["Code"] == "RefreshRefused"
    assert _refresh(inbox, legit["refresh_token"]).status_code == 401  # the whole family is gone
    assert _refresh(inbox, other_device["refresh_token"]).status_code == 200  # another sign-in is not


def test_refresh_tokens_are_stored_hashed_and_end_with_the_shift(inbox, admin):
    from chalicelib.api import auth
    from chalicelib.models import RefreshToken

    _create(inbox, admin)
    session = _session(inbox)
    stored = json.dumps([item.attribute_values for item in RefreshToken.scan()], default=str)
    assert session["refresh_token"] not in stored
    with pytest.raises(auth.LoginRefused):
        auth.refresh(session["refresh_token"], now=time.time() + auth.REFRESH_TTL_SECONDS + 1)
    # rotation does not extend the sign-in: a token made at hour 11 still ends at hour 12
    late = auth.refresh(session["refresh_token"], now=time.time() + auth.REFRESH_TTL_SECONDS - 3600)
    with pytest.raises(auth.LoginRefused):
        auth.refresh(late["refresh_token"], now=time.time() + auth.REFRESH_TTL_SECONDS + 1)


def test_concurrent_refreshes_of_one_token_let_at_most_one_through(inbox, admin, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from chalicelib.api import auth
    from tests.helpers import serialise_moto_requests

    serialise_moto_requests(monkeypatch)
    _create(inbox, admin)
    token = _session(inbox)["refresh_token"]

    def attempt(_):
        try:
            return auth.refresh(token)
        except auth.LoginRefused:
            return None

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(attempt, range(4)))
    assert sum(r is not None for r in results) <= 1


def test_logout_ends_the_sign_in(inbox, admin):
    _create(inbox, admin)
    session = _session(inbox)
    assert _call(inbox, "POST", "/api/auth/logout", body={"refresh_token": session["refresh_token"]}).status_code == 204
    assert _refresh(inbox, session["refresh_token"]).status_code == 401


@pytest.mark.parametrize("body", [None, "[]", '{"refresh_token": 5}', '{"refresh_token": null}',
                                  '{"refresh_token": "short"}', '{"refresh_token": "' + "x" * 5000 + '"}',
                                  '{"refresh_token": "' + "y" * 43 + '"}', '{"refresh_token": "a", "x": 1}'])
def test_bad_refresh_requests(inbox, body):
    response = _call(inbox, "POST", "/api/auth/refresh", raw=(body or "").encode())
    assert response.status_code in (400, 401)
    assert response.headers["Cache-Control"] == "no-store"
    assert set(json.loads(response.body)) == {"Code", "Message"}


# --- own password ---------------------------------------------------------------------------------


def test_password_change_revokes_every_earlier_token_and_answers_a_new_sign_in(inbox, admin):
    from chalicelib.models import Agent

    temporary = _create(inbox, admin, password=None)["temporary_password"]
    first, second = _session(inbox, password=temporary), _session(inbox, password=temporary)
    new = "another long passphrase"
    changed = _call(inbox, "POST", "/api/me/password", first["token"],
                    {"current_password": temporary, "new_password": new})
    assert changed.status_code == 200, changed.body
    assert changed.headers["Cache-Control"] == "no-store"
    fresh = json.loads(changed.body)
    assert set(fresh) == {"token", "token_type", "refresh_token", "expires_in"}
    for old in (first, second):
        assert _call(inbox, "GET", "/api/me", old["token"]).status_code == 401
        assert _refresh(inbox, old["refresh_token"]).status_code == 401
    assert _call(inbox, "GET", "/api/me", fresh["token"]).status_code == 200
    assert _refresh(inbox, fresh["refresh_token"]).status_code == 200
    assert _login(inbox, "ana@example.com", temporary).status_code == 401
    assert _login(inbox, "ana@example.com", new).status_code == 200
    assert Agent.get("ana@example.com").must_change_password is None


def test_a_temporary_password_opens_only_who_am_i_and_the_password_change(inbox, admin):
    """Until an agent replaces the temporary password an admin handed over, their sign-in reads
    nothing else: the temporary password travelled through a second channel (chat, e-mail)."""
    temporary = _create(inbox, admin, password=None)["temporary_password"]
    session = _session(inbox, password=temporary)
    me = _call(inbox, "GET", "/api/me", session["token"])
    assert me.status_code == 200 and json.loads(me.body)["must_change_password"] is True
    for method, path, body in (("GET", "/api/conversations", None), ("GET", "/api/canned-replies", None),
                               ("PUT", "/api/me/presence", {"status": "online"}), ("GET", "/api/search?q=x", None)):
        refused = _call(inbox, method, path, session["token"], body)
        assert refused.status_code == 403, (path, refused.body)
        assert "password_change_required" in json.loads(refused.body)["Message"]
    changed = _call(inbox, "POST", "/api/me/password", session["token"],
                    {"current_password": temporary, "new_password": "a passphrase of my own"})
    assert changed.status_code == 200, changed.body
    token = json.loads(changed.body)["token"]
    assert json.loads(_call(inbox, "GET", "/api/me", token).body)["must_change_password"] is False
    assert _call(inbox, "GET", "/api/conversations", token).status_code == 200
    assert _call(inbox, "PUT", "/api/me/presence", token, {"status": "online"}).status_code == 200


def test_password_change_checks_the_current_password_and_the_new_one(inbox, admin):
    _create(inbox, admin)
    token = _session(inbox)["token"]
    wrong = _call(inbox, "POST", "/api/me/password", token, {"current_password": "nope", "new_password": "x" * 20})
    assert wrong.status_code == 403 and json.loads(wrong.body)["Code"] == "PasswordRefused"
    for new in ("short", 12345, None, "x" * 2000, " " * 20):
        bad = _call(inbox, "POST", "/api/me/password", token, {"current_password": PASSWORD, "new_password": new})
        assert bad.status_code == 400, new
    same = _call(inbox, "POST", "/api/me/password", token, {"current_password": PASSWORD, "new_password": PASSWORD})
    assert same.status_code == 400
    assert _call(inbox, "POST", "/api/me/password", token, {"current_password": PASSWORD, "new_password": "x" * 20,
                                                             "extra": 1}).status_code == 400
    assert _call(inbox, "GET", "/api/me", token).status_code == 200  # nothing revoked by refusals
    assert _call(inbox, "POST", "/api/me/password", None, {"current_password": PASSWORD,
                                                            "new_password": "x" * 20}).status_code == 401


# --- hostile input --------------------------------------------------------------------------------


@pytest.mark.parametrize("fields", [
    {"email": 5}, {"email": "not-an-email"}, {"email": "a" * 300 + "@example.com"}, {"email": ["a@b.co"]},
    {"name": ""}, {"name": "x" * 101}, {"name": "bad\x00name"}, {"name": {"first": "A"}},
    {"role": "root"}, {"role": None}, {"role": ["admin"]},
    {"teams": "default"}, {"teams": ["has space"]}, {"teams": ["t"] * 21 + [f"t{i}" for i in range(21)]},
    {"teams": [1]}, {"capacity": -1}, {"capacity": True}, {"capacity": 10 ** 9}, {"capacity": "3"},
    {"password": "short"}, {"password": 123456789012345}, {"password": "p" * 2000},
    {"unknown": 1},
])
def test_hostile_create_bodies_are_400(inbox, admin, fields):
    body = {"email": "h@example.com", "name": "H", "role": "agent", "teams": ["default"], "capacity": 3}
    body.update(fields)
    response = _call(inbox, "POST", "/api/agents", admin, body)
    assert response.status_code == 400, (fields, response.body)
    assert set(json.loads(response.body)) == {"Code", "Message"}
    from chalicelib.models import Agent

    assert [a.email for a in Agent.scan()] == ["admin@example.com"]


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'"string"', b"{" * 5000, b'{"x": "' + b"y" * 20000 + b'"}'])
def test_malformed_bodies_are_400(inbox, admin, raw):
    assert _call(inbox, "POST", "/api/agents", admin, raw=raw).status_code == 400
    ana_id = "a_does_not_matter"
    assert _call(inbox, "PATCH", f"/api/agents/{ana_id}", admin, raw=raw).status_code == 400


@pytest.mark.parametrize("body", [{}, {"active": "false"}, {"active": 0}, {"role": "owner"}, {"teams": None},
                                  {"capacity": 1.5}, {"name": None}, {"email": "new@example.com"}])
def test_hostile_patch_bodies_are_400(inbox, admin, body):
    ana = _create(inbox, admin)
    assert _call(inbox, "PATCH", f"/api/agents/{ana['id']}", admin, body).status_code == 400


@pytest.mark.parametrize("agent_id", ["a_unknown", "x" * 129, "a_%00", "..%2F..%2Fetc"])
def test_unknown_agent_ids_are_404(inbox, admin, agent_id):
    assert _call(inbox, "GET", f"/api/agents/{agent_id}", admin).status_code == 404
    assert _call(inbox, "PATCH", f"/api/agents/{agent_id}", admin, {"name": "X"}).status_code == 404


def test_people_routes_need_a_token(inbox):
    for method, path in (("GET", "/api/agents"), ("POST", "/api/agents"), ("GET", "/api/agents/a_x"),
                         ("PATCH", "/api/agents/a_x"), ("POST", "/api/me/password")):
        assert _call(inbox, method, path, None, {}).status_code == 401


# --- the create-admin command ---------------------------------------------------------------------


def test_create_admin_reads_the_password_from_stdin_and_never_prints_it(inbox, capsys):
    from chalicelib.api import people

    secret = "first admin passphrase"
    out = io.StringIO()
    assert people.main(["create-admin", "--email", "Ops@Example.com", "--name", "Ops"],
                       stdin=io.StringIO(secret + "\n"), out=out) == 0
    printed = out.getvalue() + capsys.readouterr().out + capsys.readouterr().err
    assert secret not in printed
    created = json.loads(out.getvalue())
    assert created["email"] == "ops@example.com" and created["created"] == "admin"
    session = _session(inbox, "ops@example.com", secret)
    assert _call(inbox, "GET", "/api/agents", session["token"]).status_code == 200


def test_create_admin_refuses_a_taken_email_and_a_weak_password(inbox, capsys):
    from chalicelib.api import people

    args = ["create-admin", "--email", "ops@example.com", "--name", "Ops"]
    assert people.main(args, stdin=io.StringIO("short\n"), out=io.StringIO()) == 2
    assert "short" not in capsys.readouterr().err.replace("characters", "")
    assert people.main(args, stdin=io.StringIO(PASSWORD + "\n"), out=io.StringIO()) == 0
    assert people.main(args, stdin=io.StringIO(PASSWORD + "\n"), out=io.StringIO()) == 1
    assert "already exists" in capsys.readouterr().err
    assert people.main(["create-admin", "--email", "bad", "--name", "X"], stdin=io.StringIO(PASSWORD),
                       out=io.StringIO()) == 2


def test_create_admin_is_a_documented_make_target():
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "Makefile")) as handle:
        makefile = handle.read()
    assert "create-admin:" in makefile and "chalicelib.api.people create-admin" in makefile


def test_create_admin_as_a_process_against_a_moto_server(inbox):
    """The command as `make create-admin STAGE=local` runs it: its own process, password on stdin,
    talking to a moto server (here the same in-process backend the test reads)."""
    import os
    import socket
    import subprocess
    import sys

    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
        env.update({"SOCIALINBOX_STAGE": "local", "MOTO_PORT": str(port)})
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        secret = "process admin passphrase"
        done = subprocess.run([sys.executable, "-m", "chalicelib.api.people", "create-admin", "--email",
                               "proc@example.com", "--name", "Proc"], input=secret + "\n", capture_output=True,
                              text=True, env=env, cwd=root, timeout=120)
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    assert secret not in done.stdout + done.stderr
    assert json.loads(done.stdout)["email"] == "proc@example.com"
    assert _login(inbox, "proc@example.com", secret).status_code == 200
