"""The webhook's cold first request loads only what a delivery needs (issue 11: lean functions;
issue 21: the webhooks' own function, last test).

In Chalice every REST route (webhooks, agent API, web page) is one Lambda function, so `import
app` must register every route while importing none of the API's implementation: route modules
keep thin handlers that import their work inside. This runs a fresh interpreter that imports
`app` and answers one signed Meta delivery through the Lambda handler, as deployed (secret from
SSM, moto in-process), and checks what it imported. A behaviour test: how long it takes is
measured by `bench/cost_bench.py --only cold`, not here.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: What a delivery needs: verify (adapter, secret), wrap, hand off (invoke the processor), log.
WEBHOOK_MODULES = {
    "chalicelib", "chalicelib.config", "chalicelib.runtime", "chalicelib.aws", "chalicelib.logs",
    "chalicelib.tracing", "chalicelib.channels", "chalicelib.channels.base", "chalicelib.channels.signing",
    "chalicelib.channels.meta", "chalicelib.ingest", "chalicelib.ingest.routes", "chalicelib.ingest.webhook",
    "chalicelib.ingest.envelope", "chalicelib.http_headers", "chalicelib.ingest.function_url",
}
#: Small helpers route modules use at import (validation only, no storage, no third party).
ROUTE_HELPERS = {"chalicelib.api", "chalicelib.api.common", "chalicelib.web"}
#: Third-party packages only the API, the processor or the outbox need.
NOT_ON_THE_WEBHOOK_PATH = ("pynamodb", "jwt", "holidays", "oauthlib", "requests_oauthlib", "aws_xray_sdk")

#: A fresh interpreter: moto (its Lambda answers Invoke without running anything), the stage's
#: secret, `import app`, one signed Meta delivery's body; every AWS call is counted.
COLD_START = r'''
import hashlib, hmac, json, os, sys
from moto import mock_aws
import boto3
import botocore.client

mock_aws(config={"lambda": {"use_docker": False}}).start()
prefix = os.environ["RESOURCE_PREFIX"]
queue = boto3.client("sqs").create_queue(QueueName=prefix + "-ingest")["QueueUrl"]
boto3.client("ssm").put_parameter(Name=f"/{prefix}/META_APP_SECRET", Value="cold-secret", Type="SecureString")
calls = []
_real_call = botocore.client.BaseClient._make_api_call


def _counted(client, operation, params):
    calls.append([client.meta.service_model.service_name, operation, params.get("FunctionName"),
                  params.get("InvocationType")])
    return _real_call(client, operation, params)


botocore.client.BaseClient._make_api_call = _counted
before = set(sys.modules)

import app

raw = json.dumps({"object": "page", "entry": [{"id": "1234567890", "time": 1700000000000, "messaging": [
    {"sender": {"id": "p1"}, "recipient": {"id": "1234567890"}, "timestamp": 1700000000000,
     "message": {"mid": "m-cold", "text": "hi"}}]}]})
signature = "sha256=" + hmac.new(b"cold-secret", raw.encode(), hashlib.sha256).hexdigest()
'''

SCRIPT = COLD_START + r'''
event = {"resource": "/webhooks/{platform}", "path": "/webhooks/meta", "httpMethod": "POST",
         "headers": {"Content-Type": "application/json", "X-Hub-Signature-256": signature},
         "multiValueHeaders": {}, "queryStringParameters": None, "multiValueQueryStringParameters": None,
         "pathParameters": {"platform": "meta"}, "stageVariables": None, "isBase64Encoded": False,
         "requestContext": {"resourcePath": "/webhooks/{platform}", "httpMethod": "POST", "stage": "api",
                            "requestId": "cold-1", "identity": {"sourceIp": "203.0.113.9"}},
         "body": raw}


class Context:
    function_name = "api_handler"
    aws_request_id = "cold-1"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api_handler"

    @staticmethod
    def get_remaining_time_in_millis():
        return 30000


answer = app.app(event, Context())
loaded = sorted(set(sys.modules) - before)
queued = boto3.client("sqs").receive_message(QueueUrl=queue).get("Messages", [])
route_modules = sorted({view.view_function.__module__ for methods in app.app.routes.values()
                        for view in methods.values()})
print("RESULT " + json.dumps({"status": answer["statusCode"], "queued": len(queued), "loaded": loaded,
                              "everywhere": sorted(sys.modules), "route_modules": route_modules,
                              "paths": sorted(app.app.routes), "calls": calls}))
'''


def _cold_delivery() -> Dict[str, Any]:
    """One cold webhook request in a fresh interpreter, deployed stage (secret from SSM)."""
    env = {k: v for k, v in os.environ.items() if k not in ("META_APP_SECRET", "LAMBDA_TASK_ROOT")}
    env.update(SOCIALINBOX_STAGE="dev", AWS_XRAY_SDK_ENABLED="false")
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    line = [row for row in result.stdout.splitlines() if row.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def _ours(modules: List[str]) -> List[str]:
    return [m for m in modules if m == "app" or m.startswith("chalicelib")]


def test_the_webhook_cold_request_imports_only_the_webhook_path_and_thin_route_modules():
    cold = _cold_delivery()
    assert cold["status"] == 200 and cold["queued"] == 0
    assert [c for c in cold["calls"] if c[1] != "ReceiveMessage"][-1] == [
        "socialinbox-lambda", "Invoke", "socialinbox-test-ingest_processor", "Event"]
    # Every route is registered at import (Chalice needs them all), from its thin route module.
    assert "/webhooks/{platform}" in cold["paths"] and "/api/conversations" in cold["paths"]
    assert "/" in cold["paths"] and "/api/openapi.json" in cold["paths"]
    assert {"chalicelib.ingest.routes", "chalicelib.api.routes", "chalicelib.web.routes"} <= set(cold["route_modules"])
    allowed = WEBHOOK_MODULES | ROUTE_HELPERS | set(cold["route_modules"]) | {"app"}
    extra = [m for m in _ours(cold["loaded"]) if m not in allowed]
    assert not extra, (f"the webhook's cold request imported {extra}: import API work inside the route "
                       "handler that needs it (route modules stay thin), not at module level")
    heavy = [m for m in cold["everywhere"] if m.split(".")[0] in NOT_ON_THE_WEBHOOK_PATH]
    assert not heavy, f"the webhook's cold request imported {sorted({m.split('.')[0] for m in heavy})}"


FUNCTION_URL_SCRIPT = COLD_START + r"""
event = {"version": "2.0", "routeKey": "$default", "rawPath": "/webhooks/meta", "rawQueryString": "",
         "headers": {"content-type": "application/json", "x-hub-signature-256": signature},
         "requestContext": {"requestId": "cold-url-1", "http": {"method": "POST", "path": "/webhooks/meta"}},
         "body": raw, "isBase64Encoded": False}
answer = app.webhook_url(event, None)
loaded = sorted(set(sys.modules) - before)
queued = boto3.client("sqs").receive_message(QueueUrl=queue).get("Messages", [])
print("RESULT " + json.dumps({"status": answer["statusCode"], "queued": len(queued), "loaded": loaded,
                              "everywhere": sorted(sys.modules), "routes": sorted(app.app.routes), "calls": calls}))
"""


def test_the_webhooks_own_function_imports_no_route_module_at_all():
    """Inside the webhooks' function (Lambda names it socialinbox-<stage>-webhooks) `import app`
    registers no REST route, so its cold first delivery loads the ack path and nothing else."""
    env = {k: v for k, v in os.environ.items() if k not in ("META_APP_SECRET", "LAMBDA_TASK_ROOT")}
    env.update(SOCIALINBOX_STAGE="dev", AWS_XRAY_SDK_ENABLED="false",
               AWS_LAMBDA_FUNCTION_NAME="socialinbox-dev-webhooks")
    result = subprocess.run([sys.executable, "-c", FUNCTION_URL_SCRIPT], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    cold = json.loads([r for r in result.stdout.splitlines() if r.startswith("RESULT ")][-1][len("RESULT "):])
    assert cold["status"] == 200 and cold["queued"] == 0
    # the secret (SSM's trimmed model) and one asynchronous invocation (Lambda's): nothing else
    assert [call[:2] for call in cold["calls"] if call[1] != "ReceiveMessage"] == [
        ["socialinbox-ssm", "GetParameter"], ["socialinbox-lambda", "Invoke"]]
    assert cold["routes"] == []
    extra = [m for m in _ours(cold["loaded"]) if m not in WEBHOOK_MODULES | {"app"}]
    assert not extra, f"the webhooks function's cold delivery imported {extra}"
    assert "chalicelib.ingest.routes" not in cold["loaded"]  # not even the REST route's thin module
    heavy = [m for m in cold["everywhere"] if m.split(".")[0] in NOT_ON_THE_WEBHOOK_PATH]
    assert not heavy, f"the webhooks function's cold delivery imported {sorted({m.split('.')[0] for m in heavy})}"


def test_secrets_and_the_hand_off_use_clients_of_one_operation_each_in_botocores_own_definitions(inbox):
    """SSM's whole botocore model (~800 KB, ~150 operations) cost the webhooks' cold first request
    ~19 ms for one GetParameter (issue 21), and Lambda's (~700 KB) would cost as much for the one
    Invoke: the runtime uses trimmed copies (infra/aws_models.py). They must stay botocore's
    definitions: after a botocore upgrade that changes them, rerun `python -m infra.aws_models`."""
    import json as _json

    from infra import aws_models

    from chalicelib.runtime import LAMBDA_SERVICE, SECRETS_SERVICE, runtime

    assert set(aws_models.MODELS) == {SECRETS_SERVICE, LAMBDA_SERVICE}
    for model in aws_models.MODELS:
        for name, content in aws_models.trimmed(model).items():
            with open(os.path.join(aws_models.folder(model), name), encoding="utf-8") as handle:
                assert _json.load(handle) == _json.loads(_json.dumps(content)), (model, name)
    for service, operation, service_id, signing in ((SECRETS_SERVICE, "GetParameter", "SSM", "ssm"),
                                                    (LAMBDA_SERVICE, "Invoke", "Lambda", "lambda")):
        client = runtime.client(service)
        assert client.meta.service_model.operation_names == [operation]
        assert client.meta.service_model.service_id == service_id
        assert client.meta.service_model.signing_name == signing
    assert runtime.client("ssm").meta.service_model.operation_names != ["GetParameter"]  # nobody else's
    assert runtime.client("lambda").meta.service_model.operation_names != ["Invoke"]
    runtime.reset()  # the clients were made here: the next test makes its own
