"""Test harness shared by every test module (test modules never import each other): signed
deliveries, payload builders, draining the queue through the real handler, API calls."""
from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery staple"

# Webhook secrets the test environment configures (tests/conftest.py).
META_SECRET = "test_app_secret"
X_SECRET = "test_consumer_secret"
TELEGRAM_TOKEN = "test_telegram_secret"
LINKEDIN_SECRET = "test_linkedin_secret"

# The Messenger page and WhatsApp number most API tests deliver to.
PAGE = "1234567890"
PHONE = "106540352242922"


def days_ahead(days: float) -> Tuple[str, int]:
    """A time `days` from the runtime's clock, as the API takes it (ISO 8601 UTC) and as stored
    (epoch ms, whole seconds): snoozes must be in the future and at most a year ahead."""
    from datetime import datetime, timezone

    from chalicelib.runtime import runtime

    ms = (runtime.now_ms() // 1000 + int(days * 86400)) * 1000
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), ms


def fixture_bytes(platform: str, name: str) -> bytes:
    with open(os.path.join(FIXTURES, platform, name), "rb") as handle:
        return handle.read()


def fixture_json(platform: str, name: str) -> Any:
    return json.loads(fixture_bytes(platform, name))


def compact(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _raw(body: Union[bytes, Any]) -> bytes:
    return body if isinstance(body, bytes) else compact(body)


# --- signatures, as each platform computes them ----------------------------------------------------


def meta_signature(body: bytes, secret: str = META_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def x_signature(body: bytes, secret: str = X_SECRET) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def li_signature(body: bytes, secret: str = LINKEDIN_SECRET) -> str:
    """As documented: hex HMAC-SHA256 over "hmacsha256=" followed by the raw POST body."""
    return hmac.new(secret.encode(), b"hmacsha256=" + body, hashlib.sha256).hexdigest()


# --- payload builders --------------------------------------------------------------------------------


def messenger(mid: str, psid: str, ts: int, text: str = "hi", echo: bool = False, page: str = PAGE) -> Dict[str, Any]:
    """One Messenger `messaging[]` item: from customer `psid` to `page`, or our echo to them."""
    message = {"mid": mid, "text": text}
    if echo:
        message["is_echo"] = True
        return {"sender": {"id": page}, "recipient": {"id": psid}, "timestamp": ts, "message": message}
    return {"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": ts, "message": message}


def page_delivery(*items: Dict[str, Any], page: str = PAGE, time_ms: int = 1700000000000) -> Dict[str, Any]:
    """A Page webhook delivery carrying `items` as one entry's `messaging[]`."""
    return {"object": "page", "entry": [{"id": page, "time": time_ms, "messaging": list(items)}]}


def whatsapp_delivery(wamid: str, wa_id: str, seconds: int, text: str, phone: str = PHONE,
                      name: str = "Ana") -> Dict[str, Any]:
    """A WhatsApp Cloud API delivery of one text message from `wa_id` to `phone`."""
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550100", "phone_number_id": phone},
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": wamid, "timestamp": str(seconds), "type": "text", "text": {"body": text}}]}}]}]}


class HandOffs:
    """A fake of Lambda's asynchronous Invoke, wired through the runtime (`runtime.use_invoker`):
    keeps each event the webhooks hand off, runs nothing; `refuse` makes it fail like a refused
    invocation."""

    def __init__(self, refuse: Optional[BaseException] = None, forward: Any = None) -> None:
        self.events: List[Tuple[str, Dict[str, Any]]] = []
        self.sizes: List[int] = []
        self.refuse = refuse
        #: Another invoker each event is handed on to (e.g. the local runner, to run it too).
        self.forward = forward

    def __call__(self, function: str, payload: bytes) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.events.append((function, json.loads(payload)))
        self.sizes.append(len(payload))
        if self.forward is not None:
            self.forward(function, payload)

    def records(self) -> List[Dict[str, Any]]:
        return [record for _, event in self.events for record in event["Records"]]

    def bodies(self) -> List[str]:
        return [record["body"] for record in self.records()]


class DeployedLambda:
    """Lambda as a deployed stage's webhook reaches it, in moto (which cannot run functions): the
    runtime's real Invoke call (Lambda's 202 answered by a botocore Stubber, so it is checked and
    any recorder sees it), then the event is held as Lambda holds it, in the local runner, and run
    by `run_pending` (Inbox.process does). `handlers` replace the functions' own (recorded ones)."""

    def __init__(self, handlers: Optional[Dict[str, Any]] = None) -> None:
        from chalicelib.local.async_invoke import LocalInvocations

        self.held = LocalInvocations(handlers)

    def __call__(self, function: str, payload: bytes) -> None:
        from botocore.stub import ANY, Stubber

        from chalicelib import config
        from chalicelib.runtime import LAMBDA_SERVICE, runtime

        with Stubber(runtime.client(LAMBDA_SERVICE)) as stub:
            stub.add_response("invoke", {"StatusCode": 202}, {
                "FunctionName": config.function_name(function), "InvocationType": "Event", "Payload": ANY})
            runtime.invoke_lambda(function, payload)
        self.held(function, payload)

    def run_pending(self, **options: Any) -> int:
        return self.held.run_pending(**options)


def queue_like_an_older_webhook(function: str, payload: bytes) -> None:
    """An invoker (`runtime.use_invoker`) that does what the webhook did before it invoked the
    processor, and what an older webhook still does during an upgrade: each record's body onto
    the ingest queue. The queue's door is then tested with real deliveries."""
    from chalicelib import aws, config

    for record in json.loads(payload)["Records"]:
        aws.client("sqs").send_message(QueueUrl=aws.queue_url(config.INGEST_QUEUE), MessageBody=record["body"])


# --- the admin agent, logged in once per run --------------------------------------------------------

# AUTH_TOKEN_SECRET -> (token, issued at, the admin's stored item). Hashing and checking the scrypt
# password costs ~0.2 s; tokens are stateless (15 min), so one login serves many tests of a run, and
# the agent's item (with its real scrypt hash) is put back into each test's empty table.
_ADMIN_SESSIONS: Dict[Optional[str], Tuple[str, float, Dict[str, Any]]] = {}
_ADMIN_TOKEN_REUSE_SECONDS = 10 * 60  # access tokens live 15 min


class Inbox:
    """The product as a test sees it: HTTP in through Chalice's test client, queue drained by
    the real SQS handler, answers read back through the agent API."""

    def __init__(self, client: Any, application: Any) -> None:
        self.client = client
        self.app = application
        self._token: Optional[str] = None

    # --- webhooks ---
    def post_webhook(self, platform: str, body: Union[bytes, Dict[str, Any]], headers: Optional[Dict[str, str]] = None):
        raw = body if isinstance(body, bytes) else compact(body)
        all_headers = {"Content-Type": "application/json"}
        all_headers.update(headers or {})
        return self.client.http.post(f"/webhooks/{platform}", body=raw, headers=all_headers)

    def post_meta(self, body: Union[bytes, Dict[str, Any]], secret: str = META_SECRET):
        raw = _raw(body)
        return self.post_webhook("meta", raw, {"X-Hub-Signature-256": meta_signature(raw, secret)})

    def post_x(self, body: Union[bytes, Dict[str, Any]], secret: str = X_SECRET,
               extra: Optional[Dict[str, str]] = None):
        raw = _raw(body)
        headers = {"x-twitter-webhooks-signature": x_signature(raw, secret)}
        headers.update(extra or {})
        return self.post_webhook("x", raw, headers)

    def post_telegram(self, body: Union[bytes, Dict[str, Any]], token: Optional[str] = TELEGRAM_TOKEN,
                      bot: Optional[str] = None):
        raw = _raw(body)
        headers = {"X-Telegram-Bot-Api-Secret-Token": token} if token is not None else {}
        return self.post_webhook("telegram" + (f"?bot={bot}" if bot else ""), raw, headers)

    def post_linkedin(self, body: Union[bytes, Dict[str, Any]], signature: Optional[str] = None):
        raw = _raw(body)
        return self.post_webhook("linkedin", raw, {"X-LI-Signature": signature or li_signature(raw)})

    def function_url(self, method: str, path: str, body: bytes = b"", headers: Optional[Dict[str, str]] = None,
                     encode: bool = False) -> Dict[str, Any]:
        """One request through the webhooks' own Lambda function (its function URL's event)."""
        return self.app.webhook_url(function_url_event(method, path, body, headers, encode), None)

    def api_url(self, method: str, path: str, body: Union[bytes, Dict[str, Any], None] = None,
                headers: Optional[Dict[str, str]] = None, encode: bool = False, token: Optional[str] = None,
                source_ip: str = "203.0.113.9") -> Dict[str, Any]:
        """One request through the API function's handler as its function URL sends it (payload
        format 2.0); `token` adds the bearer header, a dict `body` is sent as JSON."""
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = "Bearer " + token
        raw = b"" if body is None else _raw(body)
        if body is not None:
            all_headers.setdefault("Content-Type", "application/json")
        event = function_url_event(method, path, raw, all_headers, encode)
        event["requestContext"]["http"]["sourceIp"] = source_ip
        return self.app.app(event, None)

    def process(self) -> int:
        """Run every delivery handed off through the real processor: the webhooks' asynchronous
        invocations as Lambda runs them (chalicelib.local.async_invoke: retries, then the DLQ),
        and what is on the ingest queue (replays) as Lambda's SQS trigger would. Returns how many
        records the processor was handed (one per delivery, unless it was split)."""
        from chalicelib.local.pump import drain
        from chalicelib.runtime import runtime

        total = 0
        for _ in range(20):  # a replay may queue again what an invocation parked
            run_pending = getattr(runtime.invoker(), "run_pending", None)
            handled = (run_pending() if run_pending else 0) + drain(self.app.ingest_processor)
            if not handled:
                return total
            total += handled
        return total

    # --- setup ---
    def add_account(self, channel: str, platform_account_id: str, name: str = "Test account") -> None:
        from chalicelib.accounts import register_account

        register_account(channel, platform_account_id, name)

    def login_admin(self) -> str:
        """A token for the admin agent (ADMIN_EMAIL / ADMIN_PASSWORD), who exists afterwards.

        The first call of a run creates the agent and logs in over HTTP; later tests get the
        same agent item put back and the same token (see _ADMIN_SESSIONS)."""
        from chalicelib.api.auth import create_agent
        from chalicelib.runtime import runtime
        from chalicelib.models import Agent

        if self._token is not None:
            return self._token
        key = runtime.secret("AUTH_TOKEN_SECRET")
        session = _ADMIN_SESSIONS.get(key)
        if session and time.time() - session[1] < _ADMIN_TOKEN_REUSE_SECONDS:
            token, _, item = session
            try:
                Agent.get(ADMIN_EMAIL)
            except Agent.DoesNotExist:
                agent = Agent()
                agent.deserialize(item)
                agent.save()
            self._token = token
            return token
        try:
            agent = Agent.get(ADMIN_EMAIL)
        except Agent.DoesNotExist:
            agent = create_agent(ADMIN_EMAIL, ADMIN_PASSWORD, "Admin", role="admin")
        response = self.client.http.post("/api/auth/login", body=json.dumps(
            {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}), headers={"Content-Type": "application/json"})
        assert response.status_code == 200, response.body
        self._token = json.loads(response.body)["token"]
        if agent.role == "admin" and agent.active:
            _ADMIN_SESSIONS[key] = (self._token, time.time(), agent.serialize())
        return self._token

    # --- reading back ---
    def get(self, path: str) -> Any:
        response = self.client.http.get(path, headers={"Authorization": "Bearer " + self.login_admin()})
        assert response.status_code == 200, (path, response.status_code, response.body)
        return json.loads(response.body)

    def conversations(self, **params: str) -> List[Dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return self.get("/api/conversations" + ("?" + query if query else ""))["items"]

    def call(self, method: str, path: str, payload: Any = None, token: Optional[str] = None) -> Tuple[int, Any]:
        """Any API request as an agent (the admin unless `token`): (status, decoded body or None).
        `payload` bytes/str are sent as they are (malformed bodies), anything else as JSON."""
        headers = {"Authorization": "Bearer " + (token or self.login_admin()), "Content-Type": "application/json"}
        raw = payload if isinstance(payload, (bytes, str)) else (json.dumps(payload) if payload is not None else b"")
        response = self.client.http.request(method.upper(), path, headers=headers, body=raw)
        return response.status_code, (json.loads(response.body) if response.body else None)

    def messages(self, conversation_id: str) -> List[Dict[str, Any]]:
        return self.get(f"/api/conversations/{conversation_id}/messages")["items"]

    def all_messages(self) -> List[Dict[str, Any]]:
        found = []
        for status in ("open", "pending", "snoozed", "resolved"):
            for conversation in self.conversations(status=status, limit="100"):
                found.extend(self.messages(conversation["id"]))
        return found

    def quarantine(self) -> List[Dict[str, Any]]:
        """Every quarantined item, newest first, each with its full `raw` (from the item view)."""
        items = self.get("/api/admin/quarantine?limit=100")["items"]
        return [dict(item, raw=self.get(f"/api/admin/quarantine/{item['id']}")["raw"]) for item in items]

    def set_status(self, conversation_id: str, status: str) -> Dict[str, Any]:
        """Change a conversation's status as an agent does: PATCH /api/conversations/<id>."""
        token = self.login_admin()
        response = self.client.http.request("PATCH", f"/api/conversations/{conversation_id}", body=json.dumps(
            {"status": status}), headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        assert response.status_code == 200, (response.status_code, response.body)
        return json.loads(response.body)


def parse_all(adapter_name: str, payload: Any, context: Optional[Dict[str, str]] = None) -> List[Any]:
    """Every event the named adapter's `parse` yields for `payload` (no AWS involved)."""
    from chalicelib.channels import get_adapter

    return list(get_adapter(adapter_name).parse(payload, context or {}))


def json_values(allow_nan: bool = False, max_leaves: int = 25):
    """Hypothesis strategy for arbitrary JSON-like values (shared by every parser property test)."""
    from hypothesis import strategies as st

    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=allow_nan) | st.text(max_size=20)
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
        max_leaves=max_leaves,
    )


class MotoAppliesEachRequestAtomically:
    """DynamoDB applies each request atomically; moto does not (a conditional write's check and
    its write can interleave with another thread's, and a failed transaction restores a snapshot
    of the table). Serialising moto's request handling gives threads DynamoDB's per-request
    atomicity while our code still interleaves freely between requests. Use as a context manager."""

    def __enter__(self) -> "MotoAppliesEachRequestAtomically":
        import threading

        from moto.core.botocore_stubber import BotocoreStubber

        lock = threading.RLock()
        self._original = original = BotocoreStubber.process_request

        def atomic(stubber: Any, request: Any) -> Any:
            with lock:
                return original(stubber, request)

        BotocoreStubber.process_request = atomic  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: Any) -> None:
        from moto.core.botocore_stubber import BotocoreStubber

        BotocoreStubber.process_request = self._original  # type: ignore[method-assign]


def serialise_moto_requests(monkeypatch: Any) -> None:
    """MotoAppliesEachRequestAtomically for the rest of a test (undone by `monkeypatch`)."""
    import threading

    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.RLock()
    original = BotocoreStubber.process_request

    def atomic(stubber: Any, request: Any) -> Any:
        with lock:
            return original(stubber, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", atomic)


def call_api(inbox: Any, method: str, path: str, token: str, body: Any = None) -> Any:
    """One agent API request with `token` (and `body` as JSON, when given)."""
    headers = {"Authorization": "Bearer " + token}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return inbox.client.http.request(method, path, headers=headers,
                                     body=json.dumps(body).encode() if body is not None else b"")


def signed_in_agent(email: str, name: str, role: str, teams: Optional[List[str]]) -> Dict[str, str]:
    """A new agent (people.create) and a token for them: {"token", "id"}."""
    from chalicelib.api import auth, people

    agent, _ = people.create(email, name, role, teams, None, "a long enough password")
    return {"token": auth.issue_token(agent), "id": agent.agent_id}


def call_as(inbox: Any, method: str, path: str, token: str, body: Any = None) -> Tuple[int, Any]:
    """One API call with `token`: (status, parsed JSON body or None)."""
    headers = {"Authorization": "Bearer " + token}
    if body is not None:
        headers["Content-Type"] = "application/json"
    response = inbox.client.http.request(method, path, headers=headers,
                                         body=json.dumps(body).encode() if body is not None else b"")
    return response.status_code, (json.loads(response.body) if response.body else None)


def function_url_event(method: str, path: str, body: bytes = b"", headers: Optional[Dict[str, str]] = None,
                       encode: bool = False) -> Dict[str, Any]:
    """What a Lambda function URL hands its function (payload format 2.0): header names lower-cased,
    the query string raw, the body as text or (`encode`) base64."""
    raw_path, _, query = path.partition("?")
    return {"version": "2.0", "routeKey": "$default", "rawPath": raw_path, "rawQueryString": query,
            "headers": {k.lower(): v for k, v in (headers or {}).items()},
            "requestContext": {"accountId": "anonymous", "apiId": "abc123", "domainName": "abc123.lambda-url."
                               "us-east-1.on.aws", "requestId": "url-req-1", "stage": "$default",
                               "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1",
                                        "sourceIp": "203.0.113.9", "userAgent": "platform"}},
            "body": base64.b64encode(body).decode() if encode else body.decode("utf-8"),
            "isBase64Encoded": encode}


def send_queued_whatsapp_reply(phone: str = PHONE) -> Dict[str, Any]:
    """Run the outbox worker on the one reply queued (inside `responses.activate`, the Graph send
    faked at graph.facebook.com): the body it sent to WhatsApp."""
    import responses

    from chalicelib.outbound import worker
    from chalicelib.runtime import runtime

    sqs = runtime.client("sqs")
    [record] = sqs.receive_message(QueueUrl=runtime.queue_url("outbox"), MaxNumberOfMessages=1)["Messages"]
    responses.post(f"https://graph.facebook.com/v21.0/{phone}/messages", json={"messages": [{"id": "wamid.SENT1"}]})
    assert worker.process_body(record["Body"]) == "sent"
    return json.loads(responses.calls[-1].request.body)


@contextlib.contextmanager
def sla_timer_sends() -> Iterator[List[Dict[str, Any]]]:
    """Every SLA timer message the app sends, one by one or in batches, as seen on the way out
    (botocore's public event hook on the shared SQS client): kind, conversation_id, turn, delay
    (DelaySeconds), at (the runtime clock when sent, ms) and the operation. Unregistered
    afterwards: the process's SQS client outlives the test."""
    from chalicelib.runtime import runtime

    sent: List[Dict[str, Any]] = []

    def seen(params: Dict[str, Any], model: Any, **_kwargs: Any) -> None:
        for entry in params.get("Entries") or [params]:
            body = json.loads(entry["MessageBody"])
            if "kind" in body:
                sent.append({"kind": body["kind"], "conversation_id": body.get("conversation_id"),
                             "turn": body.get("turn"), "delay": entry.get("DelaySeconds", 0),
                             "at": runtime.now_ms(), "operation": model.name})

    events = runtime.client("sqs").meta.events
    for operation in ("SendMessage", "SendMessageBatch"):
        events.register(f"provide-client-params.sqs.{operation}", seen)
    try:
        yield sent
    finally:
        for operation in ("SendMessage", "SendMessageBatch"):
            events.unregister(f"provide-client-params.sqs.{operation}", seen)
