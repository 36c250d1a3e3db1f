"""The deploy rehearsal's harness (infra/rehearsal.py): its workarounds for the emulator's gaps
each still needed (and each closing its gap), and its checks finding what a broken deploy leaves.
The rehearsal itself (`make deploy-rehearsal STAGE=staging`, minutes) runs in CI (.ci/run)."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
from chalice import Chalice, Rate

from chalicelib.local import stack
from infra import deploy, moto_gaps, rehearsal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGE, REGION, ACCOUNT = "staging", rehearsal.REGION, rehearsal.ACCOUNT


# --- the emulator's gaps -------------------------------------------------------------------------------


@pytest.mark.parametrize("gap", moto_gaps.GAPS, ids=[g.name for g in moto_gaps.GAPS])
def test_each_gap_the_rehearsal_works_around_is_still_in_moto(aws_backend, gap):
    """When this fails, moto fixed the gap: remove its workaround from infra/rehearsal.py."""
    assert gap.still_present(), f"moto fixed {gap.name!r}: remove its workaround ({gap.why})"


def test_the_workarounds_close_the_gaps_they_name():
    """In a process of its own (they change moto for the process they run in, as in the rehearsal's)."""
    script = """
import json, os
os.environ.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="eu-west-1")
from moto import mock_aws
from infra import moto_gaps
moto_gaps.apply_workarounds()
left = {}
for gap in moto_gaps.GAPS:
    if gap.workaround is not None:
        with mock_aws():
            left[gap.name] = gap.still_present()
print(json.dumps(left))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    left = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(left) == {g.name for g in moto_gaps.GAPS if g.workaround is not None}
    assert not any(left.values()), left


def test_the_operator_environment_has_only_the_emulator():
    caller = {"PATH": "/usr/bin", "AWS_PROFILE": "prod-admin", "AWS_ENDPOINT_URL_DYNAMODB": "http://elsewhere",
              "AWS_SESSION_TOKEN": "real", "SOCIALINBOX_STAGE": "local", "RESOURCE_PREFIX": "socialinbox-test",
              "TEST_SCRYPT_N": "1024", "MAKEFLAGS": "-j4"}
    env = rehearsal.operator_environment("http://localhost:4566", caller)
    assert env["PATH"] == "/usr/bin" and env["AWS_ENDPOINT_URL"] == "http://localhost:4566"
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
    for gone in ("AWS_PROFILE", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_SESSION_TOKEN", "SOCIALINBOX_STAGE",
                 "RESOURCE_PREFIX", "TEST_SCRYPT_N", "MAKEFLAGS"):
        assert gone not in env


# --- the checks -----------------------------------------------------------------------------------------


def small_app() -> Chalice:
    """An app with one of each kind the checks know: a route, an SQS consumer, a schedule, the
    webhooks' function (behind its function URL)."""
    app = Chalice(app_name="socialinbox")

    @app.route("/health", methods=["GET"])
    def health():  # pragma: no cover - never called
        return {}

    @app.route("/api/replies", methods=["POST", "GET"])
    def replies():  # pragma: no cover
        return {}

    @app.on_sqs_message(queue=f"socialinbox-{STAGE}-ingest", batch_size=10, name="ingest_processor",
                        maximum_batching_window_in_seconds=1)
    def ingest_processor(event):  # pragma: no cover
        return {}

    @app.schedule(Rate(1, unit=Rate.MINUTES), name="sla_sweeper")
    def sla_sweeper(event):  # pragma: no cover
        return {}

    @app.lambda_function(name=deploy.WEBHOOKS_FUNCTION)
    def webhook_url(event, context):  # pragma: no cover
        return {}

    return app


def deployed_as_declared(expected):
    """The snapshot of a stage deployed exactly as `expected` says."""
    functions = {}
    queues = [f"/{ACCOUNT}/socialinbox-{STAGE}-ingest"]
    machines = {name: f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}" for name in expected["state_machines"]}
    for short, spec in expected["functions"].items():
        env = {"SOCIALINBOX_STAGE": STAGE, "INGEST_QUEUE_URL": f"https://sqs.{REGION}.amazonaws.com{queues[0]}",
               "SLA_STATE_MACHINE_ARN": next(iter(machines.values()))}
        if short in deploy.PARTIAL_BATCH_FUNCTIONS:
            env[deploy.PARTIAL_BATCH_ENV] = "true"
        functions[spec["name"]] = {"arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{spec['name']}",
                                   "role": f"arn:aws:iam::{ACCOUNT}:role/{spec['name']}", "policies": [spec["policy"]],
                                   "environment": env, "timeout": 30, "memory": 512, "concurrency": None,
                                   "handler": f"app.{short}", "url": None, "public": [],
                                   "async": copy.deepcopy(expected["async_invocations"].get(short))}
        if short in expected["function_urls"]:
            functions[spec["name"]].update(
                url={"url": "https://abc.lambda-url.eu-west-1.on.aws/", "auth": "NONE",
                     "target": functions[spec["name"]]["arn"]},
                public=sorted(p["Action"] for p in deploy.URL_PERMISSIONS.values()))
    mappings = [{"uuid": f"u-{s['function']}", "function": deploy.lambda_function_name(STAGE, s["function"]),
                 "source": s["source"], "batch_size": s["batch_size"], "window": s["window"],
                 "response_types": [deploy.REPORT_BATCH_ITEM_FAILURES]
                 if s["function"] in deploy.PARTIAL_BATCH_FUNCTIONS else []} for s in expected["sqs"]]
    schedules = [{"rule": f"{s['function']}-event", "expression": s["expression"], "state": "ENABLED",
                  "function": deploy.lambda_function_name(STAGE, s["function"])} for s in expected["schedules"]]
    return {"functions": functions, "roles": sorted(f["role"].rsplit("/", 1)[1] for f in functions.values()),
            "mappings": mappings, "schedules": schedules, "state_machines": machines,
            "queues": queues, "tables": [f"socialinbox-{STAGE}-agents"],
            "api": {"id": "abc123", "routes": copy.deepcopy(expected["routes"]), "stages": {"api": {}},
                    "targets": [deploy.lambda_function_name(STAGE, deploy.API_HANDLER)]}}


@pytest.fixture
def expected():
    return rehearsal.expectations(small_app(), STAGE, stack.render())


def test_what_the_app_declares_is_what_is_expected(expected):
    assert set(expected["functions"]) == {"api_handler", "ingest_processor", "sla_sweeper", "webhooks"}
    assert expected["function_urls"] == ["api_handler", "webhooks"]  # the inbox's and the platforms' URLs
    assert expected["functions"]["api_handler"]["name"] == "socialinbox-staging"
    assert expected["sqs"] == [{"function": "ingest_processor", "batch_size": 10, "window": 1,
                                "source": f"arn:aws:sqs:{REGION}:{ACCOUNT}:socialinbox-staging-ingest"}]
    assert expected["schedules"] == [{"function": "sla_sweeper", "expression": "rate(1 minute)"}]
    assert expected["routes"] == {"/health": ["GET"], "/api/replies": ["GET", "POST"]}
    assert expected["state_machines"] == ["socialinbox-staging-sla"]
    assert expected["async_invocations"] == {"ingest_processor": {
        "retries": 2, "max_age": 21600, "on_failure": f"arn:aws:sqs:{REGION}:{ACCOUNT}:socialinbox-staging-ingest-dlq"}}
    assert rehearsal.problems(expected, deployed_as_declared(expected)) == []


def test_the_real_app_declares_every_function_the_policies_know():
    """The rehearsal checks the app's own event sources: every one is a function with a policy."""
    script = ("import json, os; os.environ['SOCIALINBOX_STAGE'] = 'staging'; import app; "
              "from chalicelib.local import stack; from infra import rehearsal; "
              "e = rehearsal.expectations(app.app, 'staging', stack.render()); "
              "print(json.dumps({k: v['policy'] is not None for k, v in e['functions'].items()}))")
    env = {k: v for k, v in os.environ.items() if k not in ("SOCIALINBOX_STAGE", "RESOURCE_PREFIX")}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    declared = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(declared) == set(deploy.functions()) and all(declared.values())


def _break(found, how):
    broken = copy.deepcopy(found)
    how(broken)
    return broken


def _env(found, name="socialinbox-staging-ingest_processor"):
    return found["functions"][name]["environment"]


def _processor(found):
    return found["functions"]["socialinbox-staging-ingest_processor"]


def _webhooks(found):
    return found["functions"]["socialinbox-staging-webhooks"]


def test_the_snapshot_reads_the_function_url_make_deploy_creates(aws_backend):
    """What `infra.deploy function-url` leaves in the emulator is what the checks accept."""
    import boto3

    session = boto3.session.Session(region_name=REGION)
    arn = moto_gaps.lambda_function("socialinbox-staging-webhooks")
    api_arn = moto_gaps.lambda_function("socialinbox-staging")
    moto_gaps.lambda_function("socialinbox-staging-sla_sweeper")
    url = deploy.ensure_function_url(session.client("lambda"), STAGE)
    inbox = deploy.ensure_function_url(session.client("lambda"), STAGE, deploy.API_HANDLER)
    functions = rehearsal.snapshot(session, STAGE, None)["functions"]
    assert functions["socialinbox-staging-webhooks"]["url"] == {"url": url, "auth": "NONE", "target": arn}
    assert functions["socialinbox-staging"]["url"] == {"url": inbox, "auth": "NONE", "target": api_arn}
    assert inbox != url
    assert functions["socialinbox-staging-webhooks"]["public"] == sorted(p["Action"] for p in deploy.URL_PERMISSIONS.values())
    assert functions["socialinbox-staging-sla_sweeper"]["url"] is None
    assert functions["socialinbox-staging-sla_sweeper"]["public"] == []
    assert functions["socialinbox-staging-webhooks"]["async"] is None


def test_the_snapshot_reads_the_async_invocation_settings_make_deploy_puts(aws_backend):
    import boto3

    session = boto3.session.Session(region_name=REGION)
    moto_gaps.lambda_function("socialinbox-staging-ingest_processor")
    assert deploy.configure_async_invocations(session.client("lambda"), STAGE) == ["socialinbox-staging-ingest_processor"]
    found = rehearsal.snapshot(session, STAGE, None)["functions"]["socialinbox-staging-ingest_processor"]["async"]
    assert found == {"retries": 2, "max_age": 21600,
                     "on_failure": f"arn:aws:sqs:{REGION}:{ACCOUNT}:socialinbox-staging-ingest-dlq"}


@pytest.mark.parametrize("how, problem", [
    (lambda f: f["mappings"][0].update(source=f"arn:aws:sqs:{REGION}:{ACCOUNT}:socialinbox-local-ingest"),
     "0 mappings on arn:aws:sqs:eu-west-1:123456789012:socialinbox-staging-ingest"),
    (lambda f: f["mappings"][0].update(batch_size=1), "batch size 1, the app says 10"),
    (lambda f: f["mappings"][0].update(response_types=[]), "partial batch responses"),
    (lambda f: _env(f).pop(deploy.PARTIAL_BATCH_ENV), "partial batch responses"),
    (lambda f: f["mappings"].append(dict(f["mappings"][0], uuid="u2")), "2 mappings on"),
    (lambda f: _env(f).update(SOCIALINBOX_STAGE="local"), "SOCIALINBOX_STAGE='local', not 'staging'"),
    (lambda f: _env(f).pop("SOCIALINBOX_STAGE"), "SOCIALINBOX_STAGE=None"),
    (lambda f: _env(f).update(INGEST_QUEUE_URL="https://sqs/1/socialinbox-dev-ingest"), "is not a queue of the stage"),
    (lambda f: _env(f).update(SLA_STATE_MACHINE_ARN="arn:nope"), "is not a state machine of the stage"),
    (lambda f: f["functions"]["socialinbox-staging-sla_sweeper"]["policies"][0]["Statement"].append(
        {"Effect": "Allow", "Action": "*", "Resource": "*"}), "is not infra/deploy.py's policy for sla_sweeper"),
    (lambda f: f["functions"]["socialinbox-staging-sla_sweeper"].update(
        role=f["functions"]["socialinbox-staging"]["role"]), "shares its role"),
    (lambda f: f["functions"].pop("socialinbox-staging-sla_sweeper"), "function socialinbox-staging-sla_sweeper is missing"),
    (lambda f: f["functions"].update({"socialinbox-staging-old": f["functions"]["socialinbox-staging"]}),
     "socialinbox-staging-old exists but the app declares"),
    (lambda f: f["schedules"].clear(), "socialinbox-staging-sla_sweeper: schedules []"),
    (lambda f: f["schedules"][0].update(expression="rate(1 hour)"), "the app says rate(1 minute)"),
    (lambda f: f["schedules"][0].update(state="DISABLED"), "schedules"),
    (lambda f: f["state_machines"].clear(), "state machine socialinbox-staging-sla is missing"),
    (lambda f: f["api"]["routes"].pop("/health"), "route /health: None, the app says ['GET']"),
    (lambda f: f["api"]["routes"].update({"/api/replies": ["GET"]}), "route /api/replies: ['GET']"),
    (lambda f: f["api"]["routes"].update({"/debug": ["GET"]}), "route /debug exists but the app declares none"),
    (lambda f: f["api"].update(targets=["socialinbox-staging-sla_sweeper"]), "not the API function alone"),
    (lambda f: f["api"].update(stages={}), "the REST API has no stage"),
    (lambda f: f.update(api=None), "the REST API is missing"),
    (lambda f: _webhooks(f).update(url=None), "socialinbox-staging-webhooks: its function URL is missing"),
    (lambda f: _webhooks(f)["url"].update(auth="AWS_IAM"), "function URL auth AWS_IAM, not NONE"),
    (lambda f: _webhooks(f)["url"].update(target=f["functions"]["socialinbox-staging"]["arn"]),
     "its function URL calls arn:aws:lambda:eu-west-1:123456789012:function:socialinbox-staging,"),
    (lambda f: _webhooks(f).update(public=["lambda:InvokeFunctionUrl"]), "the URL needs"),
    (lambda f: f["functions"]["socialinbox-staging-sla_sweeper"].update(url=_webhooks(f)["url"]),
     "socialinbox-staging-sla_sweeper: has a function URL the app does not declare"),
    (lambda f: f["functions"]["socialinbox-staging-sla_sweeper"].update(public=["lambda:InvokeFunction"]),
     "socialinbox-staging-sla_sweeper: anyone may ['lambda:InvokeFunction']"),
    (lambda f: f["functions"]["socialinbox-staging"].update(url=None), "socialinbox-staging: its function URL is missing"),
    (lambda f: f["functions"]["socialinbox-staging"]["url"].update(auth="AWS_IAM"),
     "socialinbox-staging: function URL auth AWS_IAM"),
    (lambda f: _processor(f).update({"async": None}), "socialinbox-staging-ingest_processor: asynchronous invocations "
                                                       "None, expected {'retries': 2"),
    (lambda f: _processor(f)["async"].update(on_failure=None), "a failed hand-off would be lost"),
    (lambda f: _processor(f)["async"].update(retries=0), "asynchronous invocations {'retries': 0"),
    (lambda f: _webhooks(f).update({"async": {"retries": 2, "max_age": 60, "on_failure": None}}),
     "socialinbox-staging-webhooks: asynchronous invocations {'retries': 2, 'max_age': 60"),
])
def test_the_checks_find_what_a_broken_deploy_leaves(expected, how, problem):
    found = _break(deployed_as_declared(expected), how)
    wrong = rehearsal.problems(expected, found)
    assert any(problem in line for line in wrong), wrong


def test_every_function_must_name_the_stages_websocket_api(expected):
    """An app with live updates: every function's PUSH_ENDPOINT is the stage's WebSocket API
    (`make deploy` once left it unset, and the pages polled)."""
    endpoint = f"https://ws1.execute-api.{REGION}.amazonaws.com/api"
    live = dict(expected, websocket=True)
    found = deployed_as_declared(expected)
    assert rehearsal.problems(live, found) == ["the WebSocket API is missing"]
    found["websocket"] = endpoint
    for function in found["functions"].values():
        function["environment"][deploy.PUSH_ENDPOINT_ENV] = endpoint
    assert rehearsal.problems(live, found) == []
    _env(found).pop(deploy.PUSH_ENDPOINT_ENV)
    assert rehearsal.problems(live, found) == [
        f"socialinbox-staging-ingest_processor: PUSH_ENDPOINT=None, not the stage's WebSocket API {endpoint} "
        "(its pages would poll)"]


def test_a_new_event_source_of_the_app_is_checked_without_editing_the_harness():
    """A DynamoDB stream consumer added to the app is expected, and missing until deployed."""
    app = small_app()
    stream = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/socialinbox-staging-conversation-events/stream/x"

    @app.on_dynamodb_record(stream_arn=stream, name="sla_timers")
    def reports(event):  # pragma: no cover
        return {}

    declared = rehearsal.expectations(app, STAGE, stack.render())
    assert declared["streams"] == [{"function": "sla_timers", "source": stream, "batch_size": 100}]
    found = deployed_as_declared(rehearsal.expectations(small_app(), STAGE, stack.render()))
    wrong = rehearsal.problems(declared, found)
    assert "function socialinbox-staging-sla_timers is missing" in wrong
    assert any(f"0 mappings on {stream}" in line for line in wrong)


def test_an_upgrade_may_change_code_and_nothing_else(expected):
    before = deployed_as_declared(expected)
    after = copy.deepcopy(before)
    for function in after["functions"].values():
        function.update(CodeSha256="new", LastModified="now", RevisionId="r2")
    assert rehearsal.changes(before, after) == []
    after["mappings"][0]["uuid"] = "recreated"
    after["functions"]["socialinbox-staging"]["role"] += "-2"
    after["api"]["id"] = "other"
    after["tables"] = []
    found = rehearsal.changes(before, after)
    assert any(line.startswith("/mappings[0]/uuid") for line in found)
    assert any(line.startswith("/functions/socialinbox-staging/role") for line in found)
    assert any(line.startswith("/api/id") for line in found)
    assert any(line.startswith("/tables") for line in found)


def test_teardown_finds_what_outlived_it(aws_backend):
    """Functions, their roles, mappings and schedules of the stage left behind are each named,
    whether or not the function they belong to is still there."""
    import boto3

    session = boto3.session.Session(region_name=REGION)
    arn = moto_gaps.lambda_function("socialinbox-staging-sla_sweeper")
    sqs = session.client("sqs")
    queue = sqs.create_queue(QueueName="socialinbox-staging-ingest")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    session.client("lambda").create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=arn)
    events = session.client("events")
    events.put_rule(Name="sweeper-event", ScheduleExpression="rate(1 minute)")
    events.put_targets(Rule="sweeper-event", Targets=[{"Id": "1", "Arn": arn}])
    session.client("lambda").delete_function(FunctionName=arn)
    wrong = rehearsal.teardown_problems(session, STAGE, {"tables": [], "api": None}, [rehearsal.ADMIN_EMAIL])
    assert "role socialinbox-staging-sla_sweeper is left" in wrong
    assert f"event source mapping of socialinbox-staging-sla_sweeper on {queue_arn} is left" in wrong
    assert "schedule sweeper-event is left" in wrong
    kept = {"tables": ["socialinbox-staging-agents"], "api": None}
    assert rehearsal.teardown_problems(session, STAGE, kept, [])[-2:] == [
        "tables [] after teardown, ['socialinbox-staging-agents'] before: they are kept",
        "the agents table lost its data"]
