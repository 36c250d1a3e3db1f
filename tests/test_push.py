"""Live updates pushed (chalicelib.push): the WebSocket handlers as API Gateway calls them (through
the Chalice test client's Lambda invoke), the fan-out fed with the conversations table's real
stream records (moto), and a fake management API wired through the runtime."""
from __future__ import annotations

import json
import time
from typing import Any, Dict, List, Optional

import pytest

from tests.helpers import PAGE, messenger, page_delivery
from tests.test_inbox_changes import BILLING_PAGE, world  # noqa: F401 (fixture)
from tests.test_workspace_contacts import _agent, _call, _now


class FakeGateway:
    """The management API: what was posted to which connection, which were closed, which are gone."""

    def __init__(self) -> None:
        self.posted: List[tuple] = []
        self.closed: List[str] = []
        self.gone: set = set()

    def post_to_connection(self, ConnectionId: str, Data: bytes) -> Dict[str, Any]:  # noqa: N803 (botocore's)
        if ConnectionId in self.gone:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "GoneException"}, "ResponseMetadata": {"HTTPStatusCode": 410}},
                              "PostToConnection")
        self.posted.append((ConnectionId, json.loads(Data)))
        return {}

    def delete_connection(self, ConnectionId: str) -> Dict[str, Any]:  # noqa: N803
        self.closed.append(ConnectionId)
        return {}

    def hints(self, connection_id: str) -> List[str]:
        return sorted({c for cid, body in self.posted if cid == connection_id for c in body["conversations"]})


@pytest.fixture
def gateway():
    from chalicelib.runtime import runtime

    fake = FakeGateway()
    runtime.use_push_client(fake)
    yield fake
    runtime.use_push_client(None)


def _event(route: str, connection_id: str, **extra: Any) -> Dict[str, Any]:
    kinds = {"$connect": "CONNECT", "$default": "MESSAGE", "$disconnect": "DISCONNECT"}
    return {"requestContext": {"routeKey": route, "eventType": kinds[route], "connectionId": connection_id,
                               "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "stage": "api",
                               "apiId": "abc123", "requestId": "r-1"}, "isBase64Encoded": False, **extra}


def _invoke(inbox: Any, function: str, event: Dict[str, Any]) -> Any:
    return inbox.client.lambda_.invoke(function, event).payload


def connect(inbox: Any, connection_id: str, token: Optional[str]) -> int:
    query = {"token": token} if token is not None else None
    return int(_invoke(inbox, "websocket_connect", _event("$connect", connection_id, queryStringParameters=query))
               ["statusCode"])


def beat(inbox: Any, connection_id: str, **body: Any) -> int:
    message = json.dumps({"action": "beat", **body})
    return int(_invoke(inbox, "websocket_message", _event("$default", connection_id, body=message))["statusCode"])


def stored(connection_id: str) -> List[Any]:
    from chalicelib.models import PushConnection

    return [item for item in PushConnection.scan() if connection_id in (item.sk, item.pk[2:])]


def stream_records(after: Optional[Dict[str, str]] = None) -> tuple:
    """Every record of the conversations table's stream after the positions `after` (shard ->
    sequence number), and the new positions: what the fan-out's mapping would deliver."""
    from chalicelib import config
    from chalicelib.local.streams import latest_stream_arn, lambda_record, streams_client

    arn = latest_stream_arn(config.stream_arn(config.CONVERSATIONS_TABLE))
    client = streams_client()
    records, positions = [], dict(after or {})
    for shard in client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        start = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": positions[shard["ShardId"]]} \
            if shard["ShardId"] in positions else {"ShardIteratorType": "TRIM_HORIZON"}
        iterator = client.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], **start)["ShardIterator"]
        while iterator:
            answer = client.get_records(ShardIterator=iterator)
            if not answer["Records"]:
                break
            records += [lambda_record(r, arn) for r in answer["Records"]]
            positions[shard["ShardId"]] = answer["Records"][-1]["dynamodb"]["SequenceNumber"]
            iterator = answer.get("NextShardIterator")
    return records, positions


def fan_out(inbox: Any, records: List[Dict[str, Any]]) -> Dict[str, int]:
    return _invoke(inbox, "push_fanout", {"Records": records})


# --- connect -----------------------------------------------------------------------------------

def test_connect_needs_a_valid_token_of_an_active_agent(world, gateway):
    from chalicelib.api import auth
    from chalicelib.models import Agent

    inbox = world["inbox"]
    assert connect(inbox, "no-token", None) == 403
    assert connect(inbox, "garbage", "x" * 40) == 403
    forged = world["ana"]["token"][:-4] + ("AAAA" if not world["ana"]["token"].endswith("AAAA") else "BBBB")
    assert connect(inbox, "forged", forged) == 403
    expired = auth.issue_token(Agent.get("ana@example.com"), now=time.time() - auth.TOKEN_TTL_SECONDS - 5)
    assert connect(inbox, "expired", expired) == 403
    assert all(stored(c) == [] for c in ("no-token", "garbage", "forged", "expired"))
    assert connect(inbox, "ana-1", world["ana"]["token"]) == 200
    feeds = sorted(item.pk for item in stored("ana-1") if item.sk == "ana-1")
    assert feeds == sorted(["t#default", "a#" + world["ana"]["id"]])


def test_the_token_is_never_logged(world, gateway, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    token = world["ana"]["token"]
    connect(world["inbox"], "ana-1", token)
    connect(world["inbox"], "bad-1", token[:-3] + "abc")
    beat(world["inbox"], "ana-1", token=token, presence="online")
    viewing_beat(world["inbox"], "ana-1", world["first"], typing=False, viewers=True)
    beat(world["inbox"], "bad-1", token=token, viewing={"conversation_id": world["first"]})
    assert token not in caplog.text and token[-20:] not in caplog.text


def test_disconnect_forgets_every_item_of_the_connection(world, gateway):
    inbox = world["inbox"]
    assert connect(inbox, "ana-1", world["ana"]["token"]) == 200
    assert connect(inbox, "kim-1", world["kim"]["token"]) == 200
    assert len(stored("ana-1")) == 3  # the connection and its two feeds
    _invoke(inbox, "websocket_disconnect", _event("$disconnect", "ana-1"))
    assert stored("ana-1") == [] and len(stored("kim-1")) == 3
    _invoke(inbox, "websocket_disconnect", _event("$disconnect", "ana-1"))  # again: nothing to do


# --- fan-out -----------------------------------------------------------------------------------

def test_a_stored_message_reaches_the_sockets_of_its_team_only(world, gateway):
    inbox = world["inbox"]
    rena = _agent("rena@example.com", "Rena", "agent", ["billing"])
    for connection, who in (("ana-1", world["ana"]), ("kim-1", world["kim"]), ("rena-1", rena)):
        assert connect(inbox, connection, who["token"]) == 200
    _, seen = stream_records()
    # A customer writes again while a reply is due: the store's one-write follow-up, never logged.
    inbox.post_meta(page_delivery(messenger("m-1b", "psid-1", _now(), "still there?")))
    inbox.process()
    records, seen = stream_records(seen)
    assert fan_out(inbox, records)["sent"] == 2
    assert gateway.hints("ana-1") == gateway.hints("kim-1") == [world["first"]]
    assert gateway.hints("rena-1") == []
    # Billing's conversation: Rena hears of it, the default team does not.
    gateway.posted.clear()
    inbox.post_meta(page_delivery(messenger("m-b2", "psid-b", _now(), "hello?"), page=BILLING_PAGE))
    inbox.process()
    records, seen = stream_records(seen)
    fan_out(inbox, records)
    assert gateway.hints("rena-1") == [world["billing"]]
    assert gateway.hints("ana-1") == gateway.hints("kim-1") == []
    assert all(set(body) <= {"type", "conversations", "more"} for _, body in gateway.posted)  # never text


def test_assigning_across_teams_tells_the_assignee_and_both_teams_and_admins_hear_everything(world, gateway):
    inbox = world["inbox"]
    rena = _agent("rena@example.com", "Rena", "agent", ["billing"])
    boss = _agent("boss@example.com", "Boss", "admin", [])
    for connection, who in (("ana-1", world["ana"]), ("rena-1", rena), ("boss-1", boss)):
        assert connect(inbox, connection, who["token"]) == 200
    _, seen = stream_records()
    assert _call(inbox, "PATCH", f"/api/conversations/{world['billing']}", boss["token"],
                 {"assignee": world["ana"]["id"]}).status_code == 200
    records, seen = stream_records(seen)
    fan_out(inbox, records)
    assert gateway.hints("ana-1") == [world["billing"]]  # assigned to her: her "mine" view
    assert gateway.hints("rena-1") == [world["billing"]]
    assert gateway.hints("boss-1") == [world["billing"]]


def test_expired_tokens_get_nothing_and_are_closed_gone_sockets_forgotten(world, gateway):
    from chalicelib.api import auth
    from chalicelib.models import Agent

    inbox = world["inbox"]
    ana = Agent.get("ana@example.com")
    assert connect(inbox, "ana-old", auth.issue_token(ana, now=time.time() - auth.TOKEN_TTL_SECONDS + 30)) == 200
    assert connect(inbox, "kim-1", world["kim"]["token"]) == 200
    assert connect(inbox, "kim-gone", world["kim"]["token"]) == 200
    gateway.gone.add("kim-gone")
    _, seen = stream_records()
    inbox.post_meta(page_delivery(messenger("m-1b", "psid-1", _now(), "still there?")))
    inbox.process()
    records, _ = stream_records(seen)
    result = _invoke(inbox, "push_fanout", {"Records": records})
    assert result["sent"] == 2 and result["gone"] == 1  # ana-old still valid for 30 s
    from chalicelib.push import fanout

    later = fanout.handle_records(records, now=time.time() + 60)
    assert later["expired"] == 1 and gateway.closed == ["ana-old"]
    assert stored("ana-old") == [] and stored("kim-gone") == []
    assert gateway.hints("ana-old") == [world["first"]]  # only the hint sent while it was valid


# --- the page's beats --------------------------------------------------------------------------

def test_a_beat_renews_the_token_and_carries_presence(world, gateway):
    from chalicelib.api import auth
    from chalicelib.models import Agent
    from chalicelib.routing import directory

    inbox = world["inbox"]
    ana = Agent.get("ana@example.com")
    assert connect(inbox, "ana-1", auth.issue_token(ana, now=time.time() - 600)) == 200
    before = [i.token_exp for i in stored("ana-1")]
    assert beat(inbox, "ana-1", token=world["ana"]["token"], presence="online") == 200
    after = [i.token_exp for i in stored("ana-1")]
    assert all(a > b for a, b in zip(after, before))
    assert directory.profile(world["ana"]["id"]).presence == "online"
    # Another agent's token on Ana's socket, or garbage: the socket is closed.
    assert beat(inbox, "ana-1", token=world["kim"]["token"]) == 403
    assert gateway.closed == ["ana-1"] and stored("ana-1") == []
    assert beat(inbox, "ana-1") == 403  # unknown now
    assert int(_invoke(inbox, "websocket_message", _event("$default", "x", body="not json"))["statusCode"]) == 400


def test_deactivation_and_revoked_tokens_close_the_sockets(world, gateway):
    inbox = world["inbox"]
    boss = _agent("boss@example.com", "Boss", "admin", [])
    assert connect(inbox, "ana-1", world["ana"]["token"]) == 200
    assert connect(inbox, "ana-2", world["ana"]["token"]) == 200
    assert connect(inbox, "kim-1", world["kim"]["token"]) == 200
    assert _call(inbox, "PATCH", f"/api/agents/{world['ana']['id']}", boss["token"],
                 {"active": False}).status_code == 200
    assert sorted(gateway.closed) == ["ana-1", "ana-2"]
    assert stored("ana-1") == stored("ana-2") == [] and len(stored("kim-1")) == 3
    assert connect(inbox, "ana-3", world["ana"]["token"]) == 403


def test_through_the_local_socket_server_a_token_s_expiry_closes_the_socket_and_it_is_never_logged(
        world, monkeypatch, caplog, capfd):
    """`make run`'s WebSocket API (chalicelib.local.websocket), a real socket: the page's token in
    the query string reaches no log or output, and once it expires the fan-out closes the socket."""
    import logging

    import app as application
    from chalicelib import config
    from chalicelib.api import auth
    from chalicelib.local import websocket
    from chalicelib.models import Agent
    from chalicelib.push import fanout
    from chalicelib.runtime import runtime

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(config.PUSH_ENDPOINT_ENV, "")  # undone after the test: start() sets it
    server = websocket.start(application.app)
    runtime.use_push_client(None)
    token = auth.issue_token(Agent.get("ana@example.com"), now=time.time() - auth.TOKEN_TTL_SECONDS + 30)
    url = server.endpoint.replace("http://", "ws://")
    try:
        page = websocket.Client(f"{url}?token={token}")
        page.send(json.dumps({"action": "beat", "presence": "online",
                              "viewing": {"conversation_id": world["first"], "viewers": True}}))
        assert json.loads(page.receive())["type"] == "viewers"
        _, seen = stream_records()
        world["inbox"].post_meta(page_delivery(messenger("m-1c", "psid-1", _now(), "hello again")))
        world["inbox"].process()
        records, _ = stream_records(seen)
        assert fanout.handle_records(records)["sent"] == 1
        assert json.loads(page.receive())["conversations"] == [world["first"]]
        assert fanout.handle_records(records, now=time.time() + 60)["expired"] == 1  # 30 s left: now past
        assert page.receive() is None  # closed by the server
        with pytest.raises(ConnectionRefusedError):
            websocket.Client(f"{url}?token={token[:-2]}xx")
    finally:
        server.shutdown()
        server.server_close()
        runtime.use_push_client(None)
    printed = capfd.readouterr()
    for text in (caplog.text, printed.out, printed.err):
        assert token not in text and token.split(".")[-1] not in text


# --- the viewing heartbeat on the socket -----------------------------------------------------------

def viewing_beat(inbox: Any, connection_id: str, conversation_id: str, **fields: Any) -> int:
    return beat(inbox, connection_id, viewing={"conversation_id": conversation_id, **fields})


def _others(viewers: List[Dict[str, Any]]) -> List[tuple]:
    return sorted((v["name"], v["typing"], v["me"]) for v in viewers)


def test_the_viewing_heartbeat_rides_the_socket_and_answers_only_when_the_viewers_changed(world, gateway):
    inbox, first = world["inbox"], world["first"]
    path = f"/api/conversations/{first}/viewing"
    assert connect(inbox, "ana-1", world["ana"]["token"]) == 200
    assert _call(inbox, "PUT", path, world["kim"]["token"], {"typing": True}).status_code == 200
    assert viewing_beat(inbox, "ana-1", first, typing=False, focus_ms=0, viewers=True) == 200
    [(connection, answer)] = gateway.posted
    assert connection == "ana-1" and answer["type"] == "viewers" and answer["conversation_id"] == first
    assert _others(answer["viewers"]) == [("Ana", False, True), ("Kim", True, False)]
    # Kim's page (on REST) sees Ana as the socket's heartbeat recorded her.
    seen = _call(inbox, "PUT", path, world["kim"]["token"], {"typing": True, "viewers": True}).json_body["viewers"]
    assert _others(seen) == [("Ana", False, False), ("Kim", True, True)]
    # Nothing changed since what the page shows: no answer (an agent alone in a thread gets none).
    gateway.posted.clear()
    assert viewing_beat(inbox, "ana-1", first, typing=False, viewers=True, shown=answer["digest"]) == 200
    assert gateway.posted == []
    # Kim stops typing: Ana's next heartbeat brings it.
    assert _call(inbox, "PUT", path, world["kim"]["token"], {"typing": False}).status_code == 200
    assert viewing_beat(inbox, "ana-1", first, typing=False, viewers=True, shown=answer["digest"]) == 200
    [(_, again)] = gateway.posted
    assert again["digest"] != answer["digest"] and _others(again["viewers"]) == [("Ana", False, True), ("Kim", False, False)]
    # Not asked for viewers (the last heartbeat when leaving a thread): recorded, nothing sent.
    gateway.posted.clear()
    assert viewing_beat(inbox, "ana-1", first, typing=True) == 200 and gateway.posted == []
    seen = _call(inbox, "PUT", path, world["kim"]["token"], {"typing": False, "viewers": True}).json_body["viewers"]
    assert ("Ana", True, False) in _others(seen)


def test_focus_on_the_socket_is_bounded_like_the_rest_heartbeat(world, gateway):
    """The same heartbeats as tests/test_staffing_focus.py's, over the socket: the same handle time."""
    from chalicelib.runtime import runtime

    inbox, first = world["inbox"], world["first"]
    admin = inbox.login_admin()
    clock = [time.time()]
    runtime.use_clock(lambda: clock[0])
    try:
        assert connect(inbox, "boss-1", admin) == 200
        assert viewing_beat(inbox, "boss-1", first, typing=False, focus_ms=15000) == 200  # first: nothing
        clock[0] += 12
        assert viewing_beat(inbox, "boss-1", first, typing=False, focus_ms=12000) == 200
        clock[0] += 5
        assert viewing_beat(inbox, "boss-1", first, typing=True, focus_ms=60000) == 200  # 5 s seen
        clock[0] += 50
        assert viewing_beat(inbox, "boss-1", first, typing=False, focus_ms=50000) == 200  # capped at 20 s
        measured = _call(inbox, "GET", "/api/staffing/handle-time?group=live", admin).json_body
    finally:
        runtime.use_clock(None)
    assert (measured["cycles"], measured["mean_seconds"], measured["concurrency"]) == (1, 37.0, 1.81)


def test_a_viewing_beat_on_an_expired_connection_closes_it_and_records_nothing(world, gateway):
    from chalicelib.api import auth
    from chalicelib.models import Agent, ConversationViewer
    from chalicelib.runtime import runtime

    inbox, first = world["inbox"], world["first"]
    assert connect(inbox, "ana-old", auth.issue_token(Agent.get("ana@example.com"),
                                                      now=time.time() - auth.TOKEN_TTL_SECONDS + 30)) == 200
    runtime.use_clock(lambda: time.time() + 60)
    try:
        assert viewing_beat(inbox, "ana-old", first, typing=False, viewers=True) == 403
    finally:
        runtime.use_clock(None)
    assert gateway.closed == ["ana-old"] and stored("ana-old") == [] and gateway.posted == []
    assert list(ConversationViewer.query(first)) == []


def test_viewing_beats_share_the_rest_heartbeats_rate_limit(world, gateway):
    from chalicelib.api import ratelimit
    from chalicelib.runtime import runtime

    inbox, first = world["inbox"], world["first"]
    assert connect(inbox, "ana-1", world["ana"]["token"]) == 200
    runtime.rate_budgets = dict(ratelimit.BUDGETS, write=ratelimit.Budget(2, 0.001))
    try:
        assert viewing_beat(inbox, "ana-1", first, typing=False) == 200
        path = f"/api/conversations/{first}/viewing"
        assert _call(inbox, "PUT", path, world["ana"]["token"], {"typing": False}).status_code == 200
        assert viewing_beat(inbox, "ana-1", first, typing=False) == 429
        assert _call(inbox, "PUT", path, world["ana"]["token"], {"typing": False}).status_code == 429
    finally:
        runtime.rate_budgets = None
    assert stored("ana-1") != []  # refused, not closed


@pytest.mark.parametrize("viewing", [
    "x", [], {}, {"conversation_id": 5}, {"conversation_id": ""}, {"conversation_id": "\ud800"},
    {"conversation_id": "c" * 101}, {"conversation_id": "FIRST", "typing": "yes"},
    {"conversation_id": "FIRST", "focus_ms": -1}, {"conversation_id": "FIRST", "focus_ms": True},
    {"conversation_id": "FIRST", "viewers": "yes"}, {"conversation_id": "FIRST", "shown": 5},
    {"conversation_id": "FIRST", "shown": "s" * 65}, {"conversation_id": "FIRST", "other": 1},
    {"conversation_id": "no-such-conversation"}, {"conversation_id": "BILLING"},
])
def test_hostile_viewing_beats_answer_4xx_and_record_nothing(world, gateway, viewing):
    from chalicelib.models import ConversationViewer

    inbox = world["inbox"]
    if isinstance(viewing, dict) and viewing.get("conversation_id") in ("FIRST", "BILLING"):
        viewing = dict(viewing, conversation_id=world[viewing["conversation_id"].lower()])
    assert connect(inbox, "ana-1", world["ana"]["token"]) == 200
    assert beat(inbox, "ana-1", viewing=viewing) in (400, 404)  # Billing's is not Ana's to see: 404
    assert [v for c in (world["first"], world["billing"]) for v in ConversationViewer.query(c)] == []
    assert gateway.posted == [] and gateway.closed == [] and len(stored("ana-1")) == 3


# --- what the page learns --------------------------------------------------------------------------

def test_the_page_learns_the_socket_url_and_may_connect_to_it(world, monkeypatch):
    inbox = world["inbox"]
    assert _call(inbox, "GET", "/api/me", world["ana"]["token"]).json_body["push_url"] == ""
    assert "connect-src 'self';" in inbox.client.http.get("/").headers["Content-Security-Policy"]
    monkeypatch.setenv("PUSH_ENDPOINT", "https://abc123.execute-api.eu-west-1.amazonaws.com/api")
    me = _call(inbox, "GET", "/api/me", world["ana"]["token"]).json_body
    assert me["push_url"] == "wss://abc123.execute-api.eu-west-1.amazonaws.com/api"
    policy = inbox.client.http.get("/").headers["Content-Security-Policy"]
    assert "connect-src 'self' wss://abc123.execute-api.eu-west-1.amazonaws.com;" in policy


def test_on_live_updates_the_viewing_heartbeat_brings_who_else_is_there(world):
    inbox, first = world["inbox"], world["first"]
    path = f"/api/conversations/{first}/viewing"
    assert _call(inbox, "PUT", path, world["kim"]["token"], {"typing": True}).status_code == 200
    plain = _call(inbox, "PUT", path, world["ana"]["token"], {"typing": False}).json_body
    assert "viewers" not in plain
    seen = _call(inbox, "PUT", path, world["ana"]["token"], {"typing": False, "viewers": True}).json_body["viewers"]
    assert sorted((v["name"], v["typing"], v["me"]) for v in seen) == [("Ana", False, True), ("Kim", True, False)]
    assert _call(inbox, "PUT", path, world["ana"]["token"], {"viewers": "yes"}).status_code == 400


# --- hostile input on the socket's handshake and messages ------------------------------------------

@pytest.mark.parametrize("token", ["", "\x00", "\ud800", "x" * 20_000, "a.b.c", "Bearer x", " " * 5])
def test_a_hostile_connect_token_is_refused_and_nothing_is_stored(world, gateway, token):
    assert connect(world["inbox"], "hostile-c", token) == 403
    assert stored("hostile-c") == []


@pytest.mark.parametrize("body", [
    "", "null", "[]", "\"beat\"", "{", json.dumps({"action": "beat"} | {"x": "y" * 70_000}),
    json.dumps({"action": "other"}), json.dumps({"action": "beat", "token": 12}),
    json.dumps({"action": "beat", "token": ["a"]}), json.dumps({"action": "beat", "token": "\ud800"}),
    json.dumps({"action": "beat", "token": "\x00"}), json.dumps({"action": "beat", "presence": ["online"]}),
    json.dumps({"action": "beat", "presence": "\ud800"}), json.dumps({"action": "beat", "presence": "on" * 5000}),
    "{\"action\": \"beat\", \"presence\": \"\\ud800\"}",
])
def test_hostile_beats_answer_4xx_or_change_nothing(world, gateway, body):
    """Malformed, oversized, wrong-typed or unicode-broken beats never raise: 400 for what is not
    a beat, 403 (and the socket closed) for a token that is not this agent's, 200 and no presence
    change for a presence the directory does not know."""
    from chalicelib.routing import directory

    inbox = world["inbox"]
    assert connect(inbox, "hostile-b", world["ana"]["token"]) == 200
    before = directory.profile(world["ana"]["id"]).presence
    status = int(_invoke(inbox, "websocket_message", _event("$default", "hostile-b", body=body))["statusCode"])
    assert status in (200, 400, 403)
    assert directory.profile(world["ana"]["id"]).presence == before
    if status == 403:
        assert stored("hostile-b") == [] and "hostile-b" in gateway.closed
    # a beat for a connection nobody opened
    nobody = _invoke(inbox, "websocket_message", _event("$default", "nobody", body=json.dumps({"action": "beat"})))
    assert int(nobody["statusCode"]) == 403 and stored("nobody") == []
