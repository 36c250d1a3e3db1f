"""IAM least privilege, checked mechanically: every AWS call each Lambda function's code makes
while it does representative work (in moto, in the deployed configuration: secrets from SSM, queue
URLs and the state machine ARN from the stack's outputs) must be granted by that function's policy
(infra/iam-policies.json through infra.deploy), and every grant must be used by some call.

The recorder wraps botocore's one request path (`BaseClient._make_api_call`, which boto3 clients
and pynamodb's connection both use) only while a handler runs; the queue polling that Lambda does
for a consumer is not the function's code and is not recorded (its grant is the EventSource
statement, checked against the app's event sources). The scenario must call every registered
route (a new route fails the test until it is exercised here, so its calls reach the policy).
"""
from __future__ import annotations

import contextlib
import fnmatch
import json
import os
from datetime import datetime, timezone
import time
from typing import Any, Dict, Iterator, List, Set, Tuple
from urllib.parse import urlparse

import pytest
import responses

from infra import deploy
from tests.helpers import ADMIN_EMAIL, PAGE, PHONE, DeployedLambda, messenger, page_delivery, whatsapp_delivery

STAGE = "test"  # tests/conftest.py: RESOURCE_PREFIX=socialinbox-test
REGION, ACCOUNT = "us-east-1", "123456789012"
SECRETS = {"META_APP_SECRET": "ssm-meta-secret", "META_VERIFY_TOKEN": "ssm-verify", "X_CONSUMER_SECRET": "ssm-x",
           "TELEGRAM_SECRET_TOKEN": "ssm-telegram", "LINKEDIN_CLIENT_SECRET": "ssm-linkedin",
           "AUTH_TOKEN_SECRET": "ssm-auth-token-secret-0123456789abcdef", "META_PAGE_TOKEN": "ssm-page-token",
           "X_BEARER_TOKEN": "ssm-x-bearer",
           "WHATSAPP_TOKEN": "ssm-wa-token", "WHATSAPP_BUSINESS_ACCOUNT_ID": "300000000000001"}

Call = Tuple[str, str]  # (IAM action, resource ARN)
WEBHOOKS = "webhooks"  # = chalicelib.config.WEBHOOKS_FUNCTION: the webhooks' function URL function


# --- what an API call needs from IAM ---------------------------------------------------------------

def _table(name: str, index: Any = None) -> str:
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
    return f"{arn}/index/{index}" if index else arn


def _queue(url_or_name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{urlparse(url_or_name).path.rsplit('/', 1)[-1] or url_or_name}"


# Batch and transaction operations are authorised per item action (AWS: TransactWriteItems needs
# PutItem/UpdateItem/DeleteItem/ConditionCheckItem on each table it touches).
_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem",
             "Get": "GetItem"}
_SQS_BATCH = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
              "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}


def iam_calls(service: str, operation: str, params: Dict[str, Any]) -> List[Call]:
    """The (action, resource) pairs IAM evaluates for one API call."""
    if service == "dynamodb":
        if operation in ("TransactWriteItems", "TransactGetItems"):
            return [(f"dynamodb:{_TRANSACT[kind]}", _table(body["TableName"]))
                    for item in params["TransactItems"] for kind, body in item.items()]
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{operation}", _table(name)) for name in params["RequestItems"]]
        return [(f"dynamodb:{operation}", _table(params["TableName"], params.get("IndexName")))]
    if service == "sqs":
        action = "sqs:" + _SQS_BATCH.get(operation, operation)
        return [(action, _queue(params.get("QueueUrl") or params.get("QueueName")))]
    if service == "sfn":
        if "stateMachineArn" in params:
            return [(f"states:{operation}", params["stateMachineArn"])]
        if "executionArn" in params:
            return [(f"states:{operation}", params["executionArn"])]
        return [(f"states:{operation}", "*")]
    if service == "s3":  # object calls: HeadObject is authorised as s3:GetObject
        action = "GetObject" if operation == "HeadObject" else operation
        return [(f"s3:{action}", f"arn:aws:s3:::{params['Bucket']}/{params['Key']}")]
    if service == "sns":
        return [(f"sns:{operation}", params["TopicArn"])]
    if service == "lambda" and operation == "Invoke":
        return [("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{params['FunctionName']}")]
    if service == "ssm":
        names = params.get("Names") or [params["Name"]]
        return [(f"ssm:{operation}", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{n.lstrip('/')}") for n in names]
    return [(f"{service}:{operation}", "*")]


_CONNECTION_METHODS = {"PostToConnection": "POST", "DeleteConnection": "DELETE", "GetConnection": "GET"}


def connection_calls(endpoint: str, operation: str, params: Dict[str, Any]) -> List[Call]:
    """The WebSocket API's management calls: execute-api:ManageConnections on the connection's ARN
    (api id and stage from the client's endpoint, https://<api id>.execute-api.<region>.../<stage>)."""
    parts = urlparse(endpoint)
    api_id, stage = parts.hostname.split(".", 1)[0], parts.path.strip("/")
    return [("execute-api:ManageConnections", f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/{stage}/"
                                              f"{_CONNECTION_METHODS[operation]}/@connections/{params['ConnectionId']}")]


class Recorder:
    """Collects the IAM-relevant calls per function while `during(function)` is active. Switching
    to another function starts a fresh runtime (clients, caches, secrets), as a separate Lambda
    container would: one function's cache never hides another's calls."""

    def __init__(self) -> None:
        self.calls: Dict[str, Set[Call]] = {}
        self.current: List[str] = []
        self.last: str = ""
        self.clock: Any = None
        #: (method, route) of every HTTP request the api_handler served.
        self.routes: Set[Tuple[str, str]] = set()
        #: The invoker a fresh runtime gets (asynchronous invocations outlive a function's container).
        self.invoker: Any = None

    def served(self, app: Any, method: str, path: str) -> None:
        import re

        bare = path.split("?", 1)[0]
        for route in getattr(app, "app", app).routes:
            if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", route), bare):
                self.routes.add((method.upper(), route))

    @contextlib.contextmanager
    def during(self, function: str) -> Iterator[None]:
        from chalicelib.runtime import runtime

        if function != self.last:
            runtime.reset()
            runtime.use_clock(self.clock)
            runtime.use_invoker(self.invoker)
            self.last = function
        self.current.append(function)
        self.calls.setdefault(function, set())
        try:
            yield
        finally:
            self.current.pop()

    def wrap(self, original: Any) -> Any:
        recorder = self

        def _make_api_call(client: Any, operation: str, params: Dict[str, Any]) -> Any:
            if recorder.current:
                service = client.meta.service_model.endpoint_prefix
                recorder.calls[recorder.current[-1]].update(
                    connection_calls(client.meta.endpoint_url, operation, params) if service == "execute-api"
                    else iam_calls("sfn" if service == "states" else service, operation, params))
            return original(client, operation, params)

        return _make_api_call


# --- policy matching -------------------------------------------------------------------------------

def _granted(statement: Dict[str, Any], call: Call) -> bool:
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    return any(fnmatch.fnmatchcase(call[0], a) for a in actions) and \
        any(fnmatch.fnmatchcase(call[1], r) for r in resources)


def _grants(statement: Dict[str, Any]) -> List[Call]:
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    return [(a, r) for a in actions for r in resources]


def policy(function: str) -> Dict[str, Any]:
    return deploy.policy_document(function, STAGE, REGION, ACCOUNT)


def uncovered(function: str, calls: Set[Call]) -> List[Call]:
    statements = policy(function)["Statement"]
    return sorted(c for c in calls if not any(_granted(s, c) for s in statements))


def unused(function: str, calls: Set[Call]) -> List[Tuple[str, str, str]]:
    """Every (action, resource pattern) of the code's statements that no recorded call needed."""
    found = []
    for statement in policy(function)["Statement"]:
        if statement["Sid"] in deploy.PLATFORM_SIDS:
            continue
        for action, resource in _grants(statement):
            if not any(_granted({"Action": action, "Resource": resource}, c) for c in calls):
                found.append((statement["Sid"], action, resource))
    return found


# --- the deployed configuration, in moto -----------------------------------------------------------

@pytest.fixture
def deployed(inbox, monkeypatch):
    """The app as `make deploy` configures it: an AWS stage (secrets from SSM), and the stack's
    outputs (fake, pointing at the moto resources) as the stage's environment variables."""
    import botocore.client

    from chalicelib import aws, config
    from chalicelib.local import stack

    sqs, sfn = aws.client("sqs"), aws.client("stepfunctions")
    template = stack.render()
    outputs = {}
    for key, output in template["Outputs"].items():
        ref = output["Value"].get("Ref") if isinstance(output["Value"], dict) else None
        resource = template["Resources"].get(ref, {})
        if resource.get("Type") == "AWS::SQS::Queue":
            name = resource["Properties"]["QueueName"]["Fn::Sub"].replace("${Stage}", STAGE)
            outputs[key] = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        elif resource.get("Type") == "AWS::StepFunctions::StateMachine":
            [arn] = [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]
                     if m["name"] == f"socialinbox-{STAGE}-sla"]
            outputs[key] = arn
        elif resource.get("Type") == "AWS::S3::Bucket":
            outputs[key] = config.attachments_bucket()  # the local stack made it as the template names it
        elif resource.get("Type") == "AWS::SNS::Topic":
            name = resource["Properties"]["TopicName"]["Fn::Sub"].replace("${Stage}", STAGE)
            outputs[key] = aws.client("sns").create_topic(Name=name)["TopicArn"]
        elif output["Value"].get("Fn::GetAtt", [None, None])[1] == "StreamArn":
            table = template["Resources"][output["Value"]["Fn::GetAtt"][0]]["Properties"]["TableName"]["Fn::Sub"]
            outputs[key] = f"{_table(table.replace('${Stage}', STAGE))}/stream/2026-12-01T00:00:00.000"
    for name, value in deploy.environment(template, outputs).items():
        monkeypatch.setenv(name, value)
    # The live updates' WebSocket API as deployed (moto answers its management API).
    monkeypatch.setenv("PUSH_ENDPOINT", f"https://abc123.execute-api.{REGION}.amazonaws.com/api")
    monkeypatch.setenv("SOCIALINBOX_STAGE", STAGE)
    for name in list(config.LOCAL_SECRET_DEFAULTS):
        monkeypatch.delenv(name, raising=False)
    ssm = aws.client("ssm")
    for name, value in SECRETS.items():
        ssm.put_parameter(Name=f"/socialinbox-{STAGE}/{name}", Value=value, Type="SecureString")
    for name in ("META_GRAPH_BASE_URL", "INSTAGRAM_GRAPH_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    aws.reset()
    recorder = Recorder()
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call",
                        recorder.wrap(botocore.client.BaseClient._make_api_call))
    # The webhooks' real Invoke (recorded), the event then held as Lambda holds it, for `_consume`.
    recorder.invoker = DeployedLambda({"ingest_processor": _processor_recorded_by(recorder)})
    from chalicelib.runtime import runtime

    runtime.use_invoker(recorder.invoker)
    inbox.recorder = recorder
    return inbox


def _processor_recorded_by(recorder: Recorder) -> Any:
    def recorded(event: Any, context: Any) -> Any:
        import app

        with recorder.during("ingest_processor"):
            return app.ingest_processor(event, context)

    return recorded


def _sign(body: bytes) -> Dict[str, str]:
    import hashlib
    import hmac

    return {"X-Hub-Signature-256": "sha256=" + hmac.new(SECRETS["META_APP_SECRET"].encode(), body,
                                                        hashlib.sha256).hexdigest(),
            "Content-Type": "application/json"}


def _webhook(inbox, payload: Dict[str, Any], rest: bool = False) -> None:
    """A signed delivery through the webhooks' own function (its function URL), or through the
    REST route that stays for deployments moving over (`rest`)."""
    body = json.dumps(payload).encode()
    if rest:
        with inbox.recorder.during(deploy.API_HANDLER):
            assert inbox.client.http.post("/webhooks/meta", body=body, headers=_sign(body)).status_code == 200
        inbox.recorder.served(inbox.app, "POST", "/webhooks/meta")
        return
    with inbox.recorder.during(WEBHOOKS):
        assert inbox.function_url("POST", "/webhooks/meta", body, _sign(body))["statusCode"] == 200


def _consume(inbox, function: str, queue: str) -> int:
    """Lambda runs the asynchronous invocations it holds for the function, and its poller (not
    recorded) hands each batch of `queue` to the function (recorded)."""
    from chalicelib.local.pump import pump_once

    handler = getattr(inbox.app, function)

    def recorded(event: Any, context: Any) -> Any:
        with inbox.recorder.during(function):
            return handler(event, context)

    total = inbox.recorder.invoker.run_pending() if function == "ingest_processor" else 0
    while True:
        count = pump_once(recorded, queue=queue)
        if not count:
            return total
        total += count


def _invoke(inbox, function: str, records: List[Dict[str, Any]]) -> Any:
    with inbox.recorder.during(function):
        try:
            return getattr(inbox.app, function)({"Records": records}, None)
        except Exception as error:  # noqa: BLE001 - a retried batch is representative work too
            return error


def _scheduled_event(function: str) -> Dict[str, Any]:
    """What EventBridge hands a scheduled function."""
    return {"version": "0", "id": "e-1", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": ACCOUNT, "time": "2026-12-02T03:00:00Z", "region": REGION, "detail": {},
            "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/socialinbox-{STAGE}-{function}-event"]}


class Api:
    def __init__(self, inbox) -> None:
        self.inbox = inbox
        self.token = ""

    def __call__(self, method: str, path: str, body: Any = None, token: Any = None) -> Tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if (token if token is not None else self.token):
            headers["Authorization"] = "Bearer " + (token if token is not None else self.token)
        with self.inbox.recorder.during(deploy.API_HANDLER):
            response = self.inbox.client.http.request(method, path, headers=headers,
                                                      body=json.dumps(body) if body is not None else b"")
        self.inbox.recorder.served(self.inbox.app, method, path)
        assert response.status_code < 500, (method, path, response.status_code, response.body)
        try:
            return response.status_code, json.loads(response.body or b"null")
        except ValueError:
            return response.status_code, response.body


GRAPH = "https://graph.facebook.com/v21.0"
IG = "17841400000000077"
PASSWORD = "a long enough password"


def _exercise(inbox) -> None:
    """Representative work of every function, in the order it happens in production."""
    from chalicelib.api.auth import create_agent

    create_agent(ADMIN_EMAIL, PASSWORD, "Admin", role="admin")
    api = Api(inbox)
    status, login = api("POST", "/api/auth/login", {"email": ADMIN_EMAIL, "password": PASSWORD})
    assert status == 200, login
    api.token = login["token"]
    # Setup by an admin: accounts, agents, routing, presence, SLA policies, canned replies.
    api("POST", "/api/accounts", {"channel": "messenger", "platform_account_id": PAGE, "name": "Page"})
    api("POST", "/api/accounts", {"channel": "whatsapp", "platform_account_id": PHONE, "name": "WA"})
    api("GET", "/api/accounts")
    status, kim = api("POST", "/api/agents", {"email": "kim@example.com", "name": "Kim", "password": PASSWORD})
    assert status == 201, kim
    api("GET", "/api/agents")
    api("GET", f"/api/agents/{kim['id']}")
    api("PATCH", f"/api/agents/{kim['id']}", {"name": "Kim K."})
    for agent in (kim["id"], api("GET", "/api/me")[1]["id"]):
        api("PUT", f"/api/agents/{agent}/routing", {"teams": ["default"], "capacity": 5})
    api("PUT", "/api/teams/default", {"mode": "least_loaded"})
    api("GET", "/api/teams/default/agents")
    api("GET", "/api/teams")
    api("PUT", "/api/me/presence", {"status": "online"})
    status, policy = api("POST", "/api/sla-policies", {"name": "VIP", "first_response_seconds": 300,
                                                       "next_response_seconds": 300, "tags": ["vip"]})
    api("GET", "/api/sla-policies")
    if status == 201:
        api("GET", f"/api/sla-policies/{policy['id']}")
        api("PUT", f"/api/sla-policies/{policy['id']}", {"name": "VIP", "first_response_seconds": 600,
                                                          "next_response_seconds": 600, "tags": ["vip"]})
        api("DELETE", f"/api/sla-policies/{policy['id']}")
    status, topic = api("POST", "/api/listening/topics", {"name": "Orders", "include": ["order", "late"]})
    api("GET", "/api/listening/topics")
    if status == 201:
        api("PUT", f"/api/listening/topics/{topic['id']}", {"name": "Orders", "include": ["order"]})
        api("DELETE", f"/api/listening/topics/{topic['id']}")
    api("POST", "/api/listening/topics", {"name": "Orders", "include": ["order"]})
    api("POST", "/api/listening/topics", {"name": "Refunds", "include": ["refund"], "sources": ["x_search"]})
    api("PUT", "/api/listening/x-budget", {"monthly_posts": 1000})
    api("POST", "/api/accounts", {"channel": "instagram", "platform_account_id": IG, "name": "IG"})
    api("POST", "/api/listening/topics", {"name": "Fails", "include": ["#acmefail"], "sources": ["instagram_hashtag"]})
    api("GET", "/api/listening/ig-hashtags")
    api("GET", "/api/listening/x-budget")
    # Any negative public message jumps the queue (the Page mention below: the processor raises it).
    assert api("PUT", "/api/listening/priority-rules", {"rules": [{"sentiment": "negative", "priority": "high"}]})[0] == 200
    api("GET", "/api/listening/priority-rules")
    status, canned = api("POST", "/api/canned-replies",
                         {"shortcut": "hi", "title": "Hi", "text": "Hi {{contact.name}}"})
    api("GET", "/api/canned-replies")
    assert api("GET", "/health", token="")[0] == 200
    # Platforms: the handshake and deliveries (one for an account nobody registered yet).
    with inbox.recorder.during(deploy.API_HANDLER):
        assert inbox.client.http.get("/webhooks/meta?hub.mode=subscribe&hub.verify_token=ssm-verify"
                                     "&hub.challenge=12345").status_code == 200
    inbox.recorder.served(inbox.app, "GET", "/webhooks/meta")
    with inbox.recorder.during(WEBHOOKS):
        assert inbox.function_url("GET", "/webhooks/meta?hub.mode=subscribe&hub.verify_token=ssm-verify"
                                         "&hub.challenge=12345")["statusCode"] == 200
    now = int(time.time() * 1000)
    _webhook(inbox, page_delivery(_bulky(messenger("m-1", "psid-1", now - 60_000, "Where is my order?"))), rest=True)
    _webhook(inbox, whatsapp_delivery("wamid.1", "4915550001", int(time.time()) - 30, "Hallo"))
    # Held for an account nobody registered yet, replayed through the API ten minutes after it was
    # written: its turn is warned in 2 minutes, so the replay queues the warning itself.
    _webhook(inbox, page_delivery(_bulky(messenger("m-2", "psid-2", now - 600_000, "hello", page="999000999")),
                                  page="999000999"))
    _webhook(inbox, {"object": "instagram", "entry": [{"id": IG, "time": now, "messaging": [{
        "sender": {"id": "7700000000000003"}, "recipient": {"id": IG}, "timestamp": now - 20_000,
        "message": {"mid": "aWdfZAGiam1", "text": "the price list?"}}]}]})
    api("POST", "/api/accounts", {"channel": "facebook", "platform_account_id": PAGE, "name": "Page mentions"})
    # A Page mention, delivered twice (a platform retry): one message, one listening item. Ten
    # minutes old, so the turn its conversion starts is warned in 2 minutes: the turn's start
    # queues its warning itself (a turn warned later is armed by the sla_sweeper).
    for _ in range(2):
        _webhook(inbox, {"object": "page", "entry": [{"id": PAGE, "time": now // 1000, "changes": [{
            "field": "mention", "value": {"post_id": f"{PAGE}_1", "item": "post", "verb": "add",
                                          "message": "awful service, late order again @Acme", "sender_id": "551",
                                          "sender_name": "Dana", "created_time": now // 1000 - 600}}]}]})
    _consume(inbox, "ingest_processor", "ingest")
    # An envelope no adapter can read is parked in the ingest DLQ (the processor's own send).
    _invoke(inbox, "ingest_processor", [_record("{not json")])
    _something_parked_in_ingest_dlq(inbox)
    api("GET", "/api/admin/dlq")
    api("POST", "/api/staffing/calculate", {"arrivals": 100, "interval_seconds": 1800, "handle_seconds": 180,
                                            "target_seconds": 20, "target_pct": 80})
    api("POST", "/api/admin/dlq/replay", {})
    _consume(inbox, "ingest_processor", "ingest")  # parked again: it can never be read
    api("GET", "/api/admin/teams")
    api("PATCH", f"/api/accounts/messenger/{PAGE}", {"name": "Page (renamed)"})
    # Agents at work.
    _, listing = api("GET", "/api/conversations?limit=10")
    conversation = next(c["id"] for c in listing["items"] if c["channel"] == "messenger")
    for query in ("sort=due", "assignee=me", "assignee=none", "sla=breached", "sla=at_risk", "status=pending"):
        api("GET", f"/api/conversations?{query}")
    for path in ("", "/messages", "/events", "/viewers"):
        api("GET", f"/api/conversations/{conversation}{path}")
    whatsapp = next(c["id"] for c in listing["items"] if c["channel"] == "whatsapp")
    with responses.RequestsMock() as platform:  # the composer's templates: Graph, token from SSM
        platform.get(f"{GRAPH}/300000000000001/message_templates", json={"data": [{
            "name": "hello", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Hello {{1}}"}]}], "paging": {}})
        assert api("GET", f"/api/conversations/{whatsapp}/templates")[1]["items"][0]["name"] == "hello"
        # an attachment out: WhatsApp's media store takes the file, the reply sends it by id
        platform.post(f"{GRAPH}/{PHONE}/media", json={"id": "4490000000000009"})
        with inbox.recorder.during(deploy.API_HANDLER):
            uploaded = inbox.client.http.post(f"/api/conversations/{whatsapp}/attachments", body=b"%PDF-1.7\n", headers={
                "Authorization": "Bearer " + api.token, "Content-Type": "application/octet-stream"})
        inbox.recorder.served(inbox.app, "POST", f"/api/conversations/{whatsapp}/attachments")
        assert uploaded.status_code == 201, uploaded.body
    # a file out on Instagram: kept in our bucket, sent later by a pre-signed URL of our copy
    instagram = next(c["id"] for c in api("GET", "/api/conversations?limit=50")[1]["items"] if c["channel"] == "instagram")
    with inbox.recorder.during(deploy.API_HANDLER):
        uploaded = inbox.client.http.post(f"/api/conversations/{instagram}/attachments", body=b"%PDF-1.7\n", headers={
            "Authorization": "Bearer " + api.token, "Content-Type": "application/octet-stream"})
    assert uploaded.status_code == 201, uploaded.body
    assert api("POST", f"/api/conversations/{instagram}/messages",
               {"client_id": "file-1", "attachment": json.loads(uploaded.body)["token"]})[0] == 202
    api("PUT", f"/api/conversations/{conversation}/viewing", {"typing": True})
    time.sleep(0.01)  # the second heartbeat adds focus time (staffing's measured handle time)
    api("PUT", f"/api/conversations/{conversation}/viewing", {"typing": False, "focus_ms": 5000})
    api("GET", "/api/staffing/handle-time?group=live")
    api("PUT", "/api/staffing/settings?group=live", {"shrinkage_pct": 25})
    api("GET", "/api/staffing/settings?group=live")
    api("GET", "/api/staffing/plan?group=live&days=1")
    api("POST", f"/api/conversations/{conversation}/read")
    api("PATCH", f"/api/conversations/{conversation}", {"assignee": "me", "claim": True})
    api("PATCH", f"/api/conversations/{conversation}", {"priority": "high", "tags": ["vip"]})
    if status == 201:
        api("GET", f"/api/canned-replies/{canned['id']}")
        api("GET", f"/api/canned-replies/{canned['id']}/render?conversation_id={conversation}")
        api("PUT", f"/api/canned-replies/{canned['id']}", {"shortcut": "hi", "title": "Hi", "text": "Hello"})
        api("DELETE", f"/api/canned-replies/{canned['id']}")
    api("POST", f"/api/conversations/{conversation}/messages", {"text": "a note", "kind": "note", "client_id": "n1"})
    for client_id in ("r1", "r2", "r3"):
        assert api("POST", f"/api/conversations/{conversation}/messages",
                   {"text": f"reply {client_id}", "kind": "reply", "client_id": client_id})[0] == 202
    _, thread = api("GET", f"/api/conversations/{conversation}/messages")
    customer = next(m["id"] for m in thread["items"] if m["direction"] == "in")
    api("PATCH", f"/api/conversations/{conversation}/messages/{customer}", {"sentiment": "negative"})
    api("GET", "/api/listening/corrections")
    assert api("GET", "/api/reports/topics?from=2026-01-01&to=2026-02-01&compare=Orders,Refunds")[0] == 200
    _, found = api("GET", "/api/listening/items?source=facebook_mention")
    for item in found["items"][:1]:
        api("POST", f"/api/listening/items/{item['id']}/convert", {})
        api("POST", f"/api/listening/items/{item['id']}/dismiss")
    api("GET", "/api/conversations?sentiment=negative")
    api("POST", "/api/conversations/bulk", {"ids": [conversation], "tags_add": ["bulk"]})
    api("GET", "/api/search?q=order")
    api("GET", "/api/counts")
    api("GET", "/api/changes")
    contact = api("GET", f"/api/conversations/{conversation}")[1]["contact"]["id"]
    whatsapp = next(c["id"] for c in listing["items"] if c["channel"] == "whatsapp")
    other = api("GET", f"/api/conversations/{whatsapp}")[1]["contact"]["id"]
    api("GET", f"/api/contacts/{contact}")
    status, note = api("POST", f"/api/contacts/{contact}/notes", {"text": "prefers e-mail"})
    api("GET", f"/api/contacts/{contact}/notes")
    if status == 201:
        api("PATCH", f"/api/contacts/{contact}/notes/{note['id']}", {"text": "prefers phone",
                                                                     "version": note.get("version", 1)})
    api("POST", f"/api/contacts/{contact}/links", {"contact_id": other})
    api("DELETE", f"/api/contacts/{contact}/links")
    api("GET", f"/api/media/{conversation}/m_unknown/0")
    api("GET", f"/api/conversations/{conversation}/contact/picture")  # the contact's picture (none here: 404)
    # The post behind a comment thread: looked up once (Graph, Page token from SSM), cached.
    _webhook(inbox, {"object": "page", "entry": [{"id": PAGE, "time": now // 1000, "changes": [{
        "field": "feed", "value": {"item": "comment", "verb": "add", "post_id": f"{PAGE}_7", "comment_id": "7_1",
                                   "parent_id": f"{PAGE}_7", "message": "nice", "created_time": now // 1000,
                                   "from": {"id": "552", "name": "Ana"}}}]}]})
    _consume(inbox, "ingest_processor", "ingest")
    comment = next(c["id"] for c in api("GET", "/api/conversations?limit=50")[1]["items"] if c["kind"] == "comment")
    with responses.RequestsMock() as platform:
        platform.get(f"{GRAPH}/{PAGE}_7", json={"message": "Our post", "full_picture": "https://x.fbcdn.net/p.jpg"})
        platform.get("https://x.fbcdn.net/p.jpg", body=b"\xff\xd8\xff", content_type="image/jpeg")
        assert api("GET", f"/api/conversations/{comment}/post")[1]["text"] == "Our post"
        api("GET", f"/api/conversations/{comment}/post/picture")
    for path in ("/api/openapi.json", "/", "/admin", "/static/app.js"):
        api("GET", path)
    api("GET", "/api/me")
    api("GET", "/api/me/notifications")
    # The unknown account gets registered: its held delivery is replayed.
    quarantined = api("GET", "/api/admin/quarantine")[1]["items"]
    assert quarantined
    api("GET", f"/api/admin/quarantine/{quarantined[0]['id']}")
    api("POST", "/api/accounts", {"channel": "messenger", "platform_account_id": "999000999", "name": "Later"})
    api("POST", "/api/admin/quarantine/replay", {})
    # The outbox: sent (to a fake Graph API, token from SSM), refused for an expired token
    # (the account needs re-authorisation), a reset further away than SQS can delay (deferred),
    # and a record DynamoDB can never read (parked in the outbox DLQ).
    answers = iter([{"json": {"recipient_id": "psid-1", "message_id": "m_out_1"}},
                    {"json": {"error": {"message": "expired", "type": "OAuthException", "code": 190}}, "status": 400}])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as platform:
        platform.add_callback("POST", f"{GRAPH}/{PAGE}/messages", callback=lambda request: _answer(next(answers)))
        platform.post(f"{GRAPH}/me/messages", json={"recipient_id": "7700000000000003", "message_id": "aWdfZAGout"})
        assert _consume(inbox, "outbox_worker", "outbox") >= 4
    # the sent file shows in the thread from our copy
    sent_file = next(m["id"] for m in api("GET", f"/api/conversations/{instagram}/messages")[1]["items"]
                     if m["direction"] == "out")
    with inbox.recorder.during(deploy.API_HANDLER):
        shown = inbox.client.http.get(f"/api/media/{instagram}/{sent_file}/0", headers={
            "Authorization": "Bearer " + api.token, "Accept": "application/pdf"})
    assert shown.status_code == 200 and shown.body == b"%PDF-1.7\n"
    far = int(time.time() * 1000) + 3_600_000
    _invoke(inbox, "outbox_worker", [_record(json.dumps({"conversation_id": conversation, "sort_key": "0",
                                                          "not_before": far})),
                                     _record(json.dumps({"conversation_id": "", "sort_key": "0"}), 99)])
    # The admin screens: the refused account is reconnected, teams listed, the parked envelope
    # listed and replayed (it is unreadable, so the processor parks it again below).
    api("PATCH", f"/api/accounts/messenger/{PAGE}", {"credential_refs": {"META_PAGE_TOKEN": "META_PAGE_TOKEN"}})
    api("GET", "/api/admin/teams")
    assert api("GET", "/api/admin/dlq")[1]["items"]
    api("POST", "/api/admin/dlq/replay", {})
    # The platform's echo of our reply and its delivery receipt.
    _webhook(inbox, page_delivery(messenger("m_out_1", "psid-1", int(time.time() * 1000), "reply r1", echo=True)))
    _webhook(inbox, page_delivery({"sender": {"id": "psid-1"}, "recipient": {"id": PAGE},
                                   "timestamp": int(time.time() * 1000),
                                   "delivery": {"mids": ["m_out_1"], "watermark": int(time.time() * 1000)}}))
    _webhook(inbox, page_delivery(messenger("m-3", "psid-3", int(time.time() * 1000), "anyone?")))
    _consume(inbox, "ingest_processor", "ingest")
    # psid-3's turn: its warning timer arrives while the warning point is still further away than
    # SQS can delay (sent on: a hop), then again at the warning point (recorded: the flow starts,
    # as for a wait longer than SQS can delay after the warning; shorter ones get a breach message).
    os.environ["SLA_SQS_BREACH_MAX_SECONDS"] = "0"
    waiting_3 = _waiting_conversation("psid-3")
    _timer(inbox, "warning", waiting_3)
    _timer(inbox, "warning", waiting_3, at=int(waiting_3.warn_at) + 1000)
    # Answered from the page's own inbox: the echo ends the warned turn (the processor stops the flow).
    _webhook(inbox, page_delivery(messenger("m-page-1", "psid-3", int(time.time() * 1000), "on it", echo=True)))
    _consume(inbox, "ingest_processor", "ingest")
    # A warned turn ended by an agent through the API (resolving it stops the flow too); reopened,
    # the customer waits again: a new turn (its warning timer queued by the API).
    waiting_wa = _waiting_conversation("4915550001")
    _timer(inbox, "warning", waiting_wa, at=int(waiting_wa.warn_at) + 1000)
    api("PATCH", f"/api/conversations/{waiting_wa.conversation_id}", {"status": "resolved"})
    api("PATCH", f"/api/conversations/{waiting_wa.conversation_id}", {"status": "open"})
    assert _waiting_conversation("4915550001").turn == waiting_wa.turn + 1
    del os.environ["SLA_SQS_BREACH_MAX_SECONDS"]
    api("PATCH", f"/api/conversations/{conversation}", {"status": "resolved"})
    # Reports: the event log's stream reaches the consumer late and out of order (a gap it fills
    # from the log), then a supervisor's screen reads the numbers.
    from chalicelib.models import ConversationEvent

    entries = list(ConversationEvent.query(conversation))
    records = [{"eventName": "INSERT", "dynamodb": {"NewImage": e.serialize()}} for e in entries]
    assert _invoke(inbox, "reports_consumer", records[2:])["applied"] == len(records)  # the first two from the log
    assert _invoke(inbox, "reports_consumer", records)["applied"] == 0
    # ... and the messages table's stream: each message counted once (volume, unique authors)
    from chalicelib.models import Message

    messages = [{"eventName": "INSERT", "dynamodb": {"NewImage": m.serialize()}} for m in Message.query(conversation)]
    counted = _invoke(inbox, "reports_messages", messages)["applied"]
    assert counted >= 1 and _invoke(inbox, "reports_messages", messages)["applied"] == 0
    period = "from=2020-01-01&to=2021-01-01&tz=Europe/Berlin"
    assert api("GET", f"/api/reports/summary?from=2020-01-01&to=2030-01-01")[0] == 400
    api("GET", "/reports")  # the Reports screen itself (static: no AWS call)
    api("GET", "/staffing")  # the Staffing screen itself (static: no AWS call)
    api("GET", f"/api/reports/timeseries?{period}&metric=inbound&group_by=month&format=csv")
    for path in ("summary", "intervals", "heatmap", "conversations"):
        api("GET", f"/api/reports/{path}?{period if path == 'summary' else 'from=2026-01-01&to=2026-02-01'}")
    assert api("GET", "/api/reports/attention?from=2026-01-01&to=2026-02-01&tz=Europe/Berlin")[0] == 200
    _live_updates(inbox, api.token)
    api("POST", "/api/auth/refresh", {"refresh_token": login.get("refresh_token", "")})
    api("POST", "/api/auth/logout", {"refresh_token": login.get("refresh_token", "")})
    # A password change revokes every token: the admin's open socket is closed too.
    api("POST", "/api/me/password", {"current_password": PASSWORD, "new_password": PASSWORD + "!"})
    status, login = api("POST", "/api/auth/login", {"email": ADMIN_EMAIL, "password": PASSWORD + "!"})
    api.token = login["token"]
    # A day later: the flow's timers fire for one waiting conversation, the sweeper finds the
    # rest, and the routing sweeper hands on the conversations of agents who went away.
    from chalicelib.models import Conversation

    # The sweeper finds a warning no timer recorded (a lost message) and starts that turn's flow.
    late = sorted((c for c in Conversation.scan() if getattr(c, "warn_at", None) and getattr(c, "turn", None)
                   and getattr(c, "status", "open") == "open"), key=lambda c: int(c.warn_at))
    assert len({int(c.warn_at) for c in late}) >= 2, "conversations waiting for a reply, warned at different times"
    _at(inbox, int(late[0].warn_at) + 1000)
    api("GET", "/api/changes")  # a page polls (its socket is down): changes are stamped for it
    os.environ["SLA_SQS_BREACH_MAX_SECONDS"] = "0"  # a long wait: the flow
    with inbox.recorder.during("sla_sweeper"):
        assert inbox.app.sla_sweeper(_scheduled_event("sla_sweeper"), None)["warnings"] >= 1
    del os.environ["SLA_SQS_BREACH_MAX_SECONDS"]
    _at(inbox, int(late[-1].warn_at) + 1000)  # a short wait: a delayed breach message
    api("GET", "/api/changes")
    with inbox.recorder.during("sla_sweeper"):
        assert inbox.app.sla_sweeper(_scheduled_event("sla_sweeper"), None)["warnings"] >= 1
    _at(inbox, None)
    inbox.recorder.clock = lambda: time.time() + 86_400
    api("GET", "/api/changes")
    waiting = sorted((c for c in Conversation.scan() if getattr(c, "turn", None) and getattr(c, "reply_due_at", None)
                      and getattr(c, "sla_state", None) != "breached"), key=lambda c: c.conversation_id)
    assert len(waiting) >= 2, "conversations waiting for a reply"
    _invoke(inbox, "sla_timers", [_record(json.dumps({"kind": kind, "conversation_id": waiting[0].conversation_id,
                                                      "turn": waiting[0].turn})) for kind in ("warning", "breach")])
    for function in ("sla_sweeper", "routing_sweeper", "staffing_sampler"):
        with inbox.recorder.during(function):
            getattr(inbox.app, function)(_scheduled_event(function), None)
    # Staffing: a month of demand history, then two samples at a weekday noon with nobody online:
    # the nightly forecast is stored, the floor is short twice running, supervisors are told.
    from chalicelib.staffing import demo

    noon = int(datetime(2030, 3, 20, 12, tzinfo=timezone.utc).timestamp() * 1000)
    demo.seed_history(noon)
    api("PUT", "/api/staffing/settings?group=live", {"target_seconds": 120})
    for at in (noon, noon + 300_000):
        _at(inbox, at)
        with inbox.recorder.during("staffing_sampler"):
            assert inbox.app.staffing_sampler(_scheduled_event("staffing_sampler"), None)["teams"] >= 1
    _at(inbox, None)
    # X recent search for the topic with the x_search source (the X API faked; token from SSM).
    found = {"data": [{"id": "1900", "text": "refund please", "author_id": "u1", "lang": "en",
                       "created_at": "2026-12-01T10:00:00.000Z"}],
             "includes": {"users": [{"id": "u1", "name": "Lea", "username": "lea"}]},
             "meta": {"result_count": 1, "newest_id": "1900", "oldest_id": "1900"}}
    with responses.RequestsMock() as x_api:
        x_api.add("GET", "https://api.x.com/2/tweets/search/recent", json=found)
        x_api.add_callback("GET", "https://api.x.com/2/tweets/counts/recent", callback=_spiking_counts)
        # Instagram hashtag search for the topic with the instagram_hashtag source (Page token from SSM).
        x_api.add("GET", f"{GRAPH}/ig_hashtag_search", json={"data": [{"id": "17841593"}]})
        x_api.add("GET", f"{GRAPH}/17841593/recent_media", json={"data": [{"id": "18000000000000001",
                                                                          "caption": "#acmefail"}]})
        with inbox.recorder.during("listening_poller"):
            stats = inbox.app.listening_poller(_scheduled_event("listening_poller"), None)
            assert stats["posts"] == 1 and stats["alerts"]["alerts"] == 1  # a spike: supervisors, SNS
            assert stats["instagram"]["media"] == 1
    # Platform analytics: the daily snapshot of every account (Graph faked; tokens from SSM), then
    # the attention report joining them with the inbox's counters.
    import re

    with responses.RequestsMock(assert_all_requests_are_fired=False) as graph:
        graph.add("GET", re.compile(re.escape(GRAPH) + r"/[0-9]+/insights"), json={"data": [{
            "name": "page_media_view", "period": "day", "values": [{"value": 7, "end_time": "2026-12-02T08:00:00+0000"}]}]})
        graph.add("GET", f"{GRAPH}/300000000000001", json={"analytics": {"data_points": []}, "id": "300000000000001"})
        graph.add("GET", f"{GRAPH}/17841400000000077", json={"followers_count": 1200, "id": "17841400000000077"})
        with inbox.recorder.during("analytics_snapshot"):
            stats = inbox.app.analytics_snapshot(_scheduled_event("analytics_snapshot"), None)
            assert stats["accounts"] >= 3 and stats["days"] > 0 and stats["failed"] == 0, stats
    # Customers' profiles: a Messenger customer's weekly refresh is due (the contact as its last
    # lookup left it); the sweep looks it up again (Graph faked; the Page token from SSM).
    from chalicelib.models import Contact

    customer = next(c for c in Contact.scan() if c.channel == "messenger")
    Contact(customer.contact_id).update(actions=[Contact.profile_checked_at.set(1), Contact.profile_due.set("due"),
                                                 Contact.profile_due_at.set(1)])
    os.environ["PROFILE_LOOKUPS"] = "on"
    try:
        with responses.RequestsMock() as graph:
            graph.add("GET", f"{GRAPH}/{customer.platform_user_id}", json={"first_name": "Ana", "last_name": "Refreshed"})
            with inbox.recorder.during("profile_refresher"):
                stats = inbox.app.profile_refresher(_scheduled_event("profile_refresher"), None)
                assert stats["looked up"] == 1, stats
    finally:
        del os.environ["PROFILE_LOOKUPS"]



def _socket_event(route: str, connection_id: str, **extra: Any) -> Dict[str, Any]:
    return {"requestContext": {"routeKey": route, "connectionId": connection_id, "stage": "api", "apiId": "abc123",
                               "domainName": f"abc123.execute-api.{REGION}.amazonaws.com"}, **extra}


def _live_updates(inbox, token: str) -> None:
    """The admin's page opens sockets and beats on them; the fan-out tells them of every
    conversation change (the conversations table's stream) and closes one whose token expired."""
    from chalicelib.api import auth
    from chalicelib.models import Agent, Conversation

    def call(function: str, event: Dict[str, Any]) -> Dict[str, Any]:
        with inbox.recorder.during(function):
            return getattr(inbox.app, function)(event, None)

    admin = Agent.get(ADMIN_EMAIL)
    short = auth.issue_token(admin, now=time.time() - auth.TOKEN_TTL_SECONDS + 600)  # 10 min left
    kim = auth.issue_token(Agent.get("kim@example.com"))
    for connection, with_token in (("page-1", token), ("page-2", token), ("page-kim", kim), ("page-old", short)):
        assert call("websocket_connect", _socket_event("$connect", connection,
                                                  queryStringParameters={"token": with_token}))["statusCode"] == 200
    # A beat with a renewed token and presence; one with another agent's token closes its socket.
    renewed = json.dumps({"action": "beat", "token": auth.issue_token(admin),
                          "presence": "online"})
    assert call("websocket_message", _socket_event("$default", "page-1", body=renewed))["statusCode"] == 200
    # The viewing heartbeat on the socket: recorded, its focus counted, the viewers sent back.
    viewed = Conversation.scan(limit=1).next().conversation_id
    for step, at in enumerate((None, int((time.time() + 5) * 1000))):
        _at(inbox, at)
        viewing = json.dumps({"action": "beat", "viewing": {"conversation_id": viewed, "typing": False,
                                                            "focus_ms": 4000, "viewers": step == 0}})
        assert call("websocket_message", _socket_event("$default", "page-1", body=viewing))["statusCode"] == 200
    _at(inbox, None)
    stolen = json.dumps({"action": "beat", "token": kim})
    assert call("websocket_message", _socket_event("$default", "page-2", body=stolen))["statusCode"] == 403
    assert call("websocket_disconnect", _socket_event("$disconnect", "page-kim"))["statusCode"] == 200
    records = [{"eventName": "MODIFY", "dynamodb": {"NewImage": c.serialize(), "OldImage": c.serialize()}}
               for c in Conversation.scan()]
    _at(inbox, int((time.time() + 720) * 1000))  # page-old's token has expired, page-1's not yet
    assert _invoke(inbox, "push_fanout", records) == {"records": len(records), "sent": 1, "gone": 0, "expired": 1}
    _at(inbox, None)


def _spiking_counts(request: Any) -> Tuple[int, Dict[str, str], str]:
    """X counts/recent: a quiet week and 50 posts in the last hour before `end_time`."""
    from datetime import datetime, timedelta
    from urllib.parse import parse_qs

    end = datetime.fromisoformat(parse_qs(urlparse(request.url).query)["end_time"][0].replace("Z", "+00:00"))
    last = (end - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return 200, {}, json.dumps({"data": [{"start": last, "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                          "tweet_count": 50}], "meta": {"total_tweet_count": 50}})


def _waiting_conversation(handle: str) -> Any:
    """The conversation of contact `handle`, asserted to be waiting for our reply."""
    from chalicelib.models import Conversation

    [found] = [c for c in Conversation.scan() if handle in str(getattr(c, "contact_handle", "") or "")
               or handle in str(getattr(c, "thread_key", "") or "")]
    assert found.reply_due_at is not None and found.turn, "waiting for a reply"
    return found


def _bulky(item: Dict[str, Any]) -> Dict[str, Any]:
    """A delivery whose raw payload does not fit on its message ref (kept apart, with its TTL)."""
    import random

    noise = random.Random(item["message"]["mid"])
    item["message"]["nlp"] = {"entities": "".join(noise.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                                                  for _ in range(2000))}
    return item


def _at(inbox, at_ms: Any) -> None:
    """The next function runs in a fresh container whose clock reads `at_ms` (None: now)."""
    started = time.time()
    inbox.recorder.clock = (lambda: at_ms / 1000 + (time.time() - started)) if at_ms is not None else None
    inbox.recorder.last = ""


def _timer(inbox, kind: str, conversation: Any, at: Any = None) -> Any:
    """One SLA timer message for `conversation`'s turn, handled by sla_timers at `at` (ms)."""
    _at(inbox, at)
    try:
        return _invoke(inbox, "sla_timers", [_record(json.dumps({"kind": kind, "conversation_id": conversation.conversation_id,
                                                                 "turn": int(conversation.turn)}))])
    finally:
        _at(inbox, None)


def _something_parked_in_ingest_dlq(inbox) -> None:
    """Something for the admin DLQ routes to list and replay: an envelope the processor parks."""
    from chalicelib import aws

    assert aws.client("sqs").get_queue_attributes(
        QueueUrl=aws.queue_url("ingest-dlq"), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"] != "0"


def _answer(spec: Dict[str, Any]) -> Tuple[int, Dict[str, str], str]:
    return spec.get("status", 200), {"Content-Type": "application/json"}, json.dumps(spec["json"])


def _record(body: str, attempts: int = 1) -> Dict[str, Any]:
    return {"messageId": f"m-{abs(hash(body))}", "receiptHandle": "", "body": body,
            "attributes": {"ApproximateReceiveCount": str(attempts)}}


def test_each_function_is_granted_exactly_what_its_code_calls(deployed):
    _exercise(deployed)
    every_route = {(method, route) for route, methods in deployed.app.app.routes.items() for method in methods
                   if method != "HEAD"}
    assert every_route - deployed.recorder.routes == set(), "routes the scenario never calls (add them)"
    calls = deployed.recorder.calls
    assert set(calls) == set(deploy.functions())
    problems = {f: {"not granted": uncovered(f, c), "granted, never called": unused(f, c)} for f, c in calls.items()}
    assert all(not p["not granted"] and not p["granted, never called"] for p in problems.values()), \
        json.dumps(problems, indent=1)


def test_consumers_may_poll_only_the_queue_they_consume():
    """The EventSource grant (Lambda's poller) names exactly the queue of the app's event source."""
    import app

    consumers = {h.name: h.queue for h in app.app.event_sources if hasattr(h, "queue")}
    source = deploy.policy_source()["Functions"]
    assert {f for f, spec in source.items() if spec.get("Consumes")} == set(consumers)
    for function, queue in consumers.items():
        [statement] = [s for s in policy(function)["Statement"] if s["Sid"] == "EventSource"]
        assert statement["Resource"] == [f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}"]
    streams = {h.name: h.stream_arn for h in app.app.event_sources if hasattr(h, "stream_arn")}
    for function, stream in streams.items():
        [statement] = [s for s in policy(function)["Statement"] if s["Sid"] == "EventSource"]
        table = stream.split(":table/", 1)[1].split("/stream/", 1)[0]
        assert source[function]["ConsumesStream"] == table.replace(f"socialinbox-{STAGE}-", "")
        assert statement["Resource"] == [f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}/stream/*"]
    schedules = {h.name for h in app.app.event_sources if not hasattr(h, "queue")}
    functions = {f.name for f in app.app.pure_lambda_functions}
    sockets = {h.name for h in app.app.websocket_handlers.values()}
    assert set(source) == set(consumers) | schedules | functions | sockets | {deploy.API_HANDLER}


def test_no_function_may_touch_another_stage_or_everything():
    for function in deploy.functions():
        for statement in deploy.policy_document(function, "prod")["Statement"]:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for resource in resources:
                if statement["Sid"] == "Tracing":
                    continue  # X-Ray has no resource-level permissions
                if statement["Action"] == ["execute-api:ManageConnections"]:
                    # the WebSocket API's id is Chalice's (unknown to the policy); its stage is `api`
                    assert resource == "arn:aws:execute-api:*:*:*/api/*/@connections/*", resource
                    continue
                assert resource != "*" or all(a == "states:ListStateMachines" for a in statement["Action"]), statement
                assert resource == "*" or "socialinbox-prod" in resource, (function, resource)
            assert all("*" not in action for action in statement["Action"]), statement
