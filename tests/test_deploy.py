"""The deploy glue (infra/deploy.py), offline: the data stack's outputs become the Chalice stage
config, each function gets its own policy file, the one-artifact package (`chalice package
--merge-template`) builds and passes cfn-lint with no AWS account, and secrets go to SSM as
SecureStrings without ever being printed."""
from __future__ import annotations

import copy
import io
import json
import os
import shutil
import subprocess
import sys

import pytest

from chalicelib.local import stack
from infra import deploy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGION, ACCOUNT = "eu-west-1", "111122223333"


def describe_stacks(stage: str = "prod"):
    """What `aws cloudformation describe-stacks --output json` prints for the data stack."""
    base = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/socialinbox-{stage}"
    outputs = {key: f"{base}-{key.lower()}" for key, out in stack.template()["Outputs"].items()
               if isinstance(out["Value"], dict) and "Ref" in out["Value"]}
    outputs["SlaStateMachineArn"] = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:socialinbox-{stage}-sla"
    outputs["EscalationTopicArn"] = f"arn:aws:sns:{REGION}:{ACCOUNT}:socialinbox-{stage}-escalations"
    outputs["ConversationEventsStreamArn"] = (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/socialinbox-{stage}"
                                              "-conversation-events/stream/2026-12-01T00:00:00.000")
    outputs["ConversationsStreamArn"] = (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/socialinbox-{stage}"
                                         "-conversations/stream/2026-12-01T00:00:00.000")
    outputs["MessagesStreamArn"] = (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/socialinbox-{stage}"
                                    "-messages/stream/2026-12-01T00:00:00.000")
    return {"Stacks": [{"StackName": f"socialinbox-{stage}-data", "StackStatus": "UPDATE_COMPLETE",
                        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]}]}


def _base_config():
    with open(os.path.join(ROOT, ".chalice", "config.json"), encoding="utf-8") as handle:
        return json.load(handle)


def test_stack_outputs_become_the_stage_environment_and_per_function_policies():
    outputs = deploy.outputs_by_key(describe_stacks())
    config = deploy.stage_config(_base_config(), "prod", stack.render(), outputs)
    prod = config["stages"]["prod"]
    env = prod["environment_variables"]
    assert env["INGEST_QUEUE_URL"] == outputs["IngestQueueUrl"]
    assert env["INGEST_DLQ_QUEUE_URL"] == outputs["IngestDeadLetterQueueUrl"]
    assert env["OUTBOX_QUEUE_URL"] == outputs["OutboxQueueUrl"]
    assert env["OUTBOX_DLQ_QUEUE_URL"] == outputs["OutboxDeadLetterQueueUrl"]
    assert env["SLA_STATE_MACHINE_ARN"] == outputs["SlaStateMachineArn"]
    assert env["SOCIALINBOX_STAGE"] == "prod" and env["LOG_LEVEL"] == "WARNING"  # the stage's own kept
    assert prod["autogen_policy"] is False and "iam_policy_file" not in prod
    functions = prod["lambda_functions"]
    assert set(functions) == set(deploy.functions())
    assert all(f["iam_policy_file"] == f"policy-prod-{name}.json" for name, f in functions.items())
    assert functions["outbox_worker"]["reserved_concurrency"] == 10  # the stage's settings kept
    assert config["stages"]["dev"] == _base_config()["stages"]["dev"]  # other stages untouched


def test_the_code_reads_exactly_those_variables_without_asking_aws(monkeypatch):
    """runtime.queue_url and the SLA flow take the stage's values: no GetQueueUrl or
    ListStateMachines, which the policies do not grant."""
    from chalicelib.runtime import Runtime
    from chalicelib.sla import flow

    outputs = deploy.outputs_by_key(describe_stacks("test"))
    for name, value in deploy.environment(stack.render(), outputs).items():
        monkeypatch.setenv(name, value)

    class NoAws(Runtime):
        def client(self, service):
            raise AssertionError(f"asked AWS ({service})")

    runtime = NoAws()
    assert runtime.queue_url("ingest") == outputs["IngestQueueUrl"]
    assert runtime.queue_url("ingest-dlq") == outputs["IngestDeadLetterQueueUrl"]
    assert runtime.queue_url("outbox") == outputs["OutboxQueueUrl"]
    assert runtime.queue_url("outbox-dlq") == outputs["OutboxDeadLetterQueueUrl"]
    assert flow.state_machine_arn() == outputs["SlaStateMachineArn"]


def test_a_missing_output_stops_the_deploy():
    outputs = deploy.outputs_by_key(describe_stacks())
    del outputs["OutboxQueueUrl"]
    with pytest.raises(KeyError, match="OutboxQueueUrl"):
        deploy.stage_config(_base_config(), "prod", stack.render(), outputs)


def test_configure_writes_the_stage_config_and_one_policy_per_function(tmp_path):
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps(describe_stacks()))
    assert deploy.main(["configure", "--stage", "prod", "--build", str(tmp_path),
                        "--outputs", str(outputs_file)]) == 0
    chalice_dir = tmp_path / ".chalice"
    config = json.loads((chalice_dir / "config.json").read_text())
    for function, settings in config["stages"]["prod"]["lambda_functions"].items():
        policy = json.loads((chalice_dir / settings["iam_policy_file"]).read_text())
        assert policy == deploy.policy_document(function, "prod", REGION, ACCOUNT)
        text = json.dumps(policy)
        assert f":{REGION}:{ACCOUNT}:" in text and "socialinbox-dev" not in text
        logs = [s for s in policy["Statement"] if s["Sid"] == "Logs"][0]["Resource"]
        assert logs == [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/"
                        f"{deploy.lambda_function_name('prod', function)}:*"]


def test_one_artifact_package_builds_offline_and_passes_cfn_lint(tmp_path):
    """`make package` minus the vendored wheels: chalice package --merge-template of the data stack,
    fixed up, with no AWS credentials at all."""
    build = tmp_path / "build"
    build.mkdir()
    shutil.copy(os.path.join(ROOT, "app.py"), build)
    shutil.copytree(os.path.join(ROOT, "chalicelib"), build / "chalicelib",
                    ignore=shutil.ignore_patterns("local", "__pycache__"))
    (build / "requirements.txt").write_text("")
    deploy.configure(str(build), "dev", stack.render(), None)
    rendered = tmp_path / "resources.json"
    rendered.write_text(json.dumps(stack.render()))
    env = {k: v for k, v in os.environ.items()  # nothing of the suite's fake AWS or stage settings
           if not k.startswith(("AWS_", "SOCIALINBOX_")) and k != "RESOURCE_PREFIX"}
    env.update({"AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    chalice = os.path.join(os.path.dirname(sys.executable), "chalice")
    out = tmp_path / "package"
    result = subprocess.run([chalice, "package", "--stage", "dev", "--merge-template", str(rendered), str(out)],
                            cwd=build, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert deploy.main(["fix-package", "--stage", "dev", str(out / "sam.json")]) == 0
    template = json.loads((out / "sam.json").read_text())
    resources = template["Resources"]
    functions = {r["Properties"]["FunctionName"]: r for r in resources.values()
                 if r["Type"] == "AWS::Serverless::Function"}
    assert set(functions) == {deploy.lambda_function_name("dev", f) for f in deploy.functions()}
    log_groups = {r["Properties"]["LogGroupName"]["Fn::Sub"].replace("${Stage}", "dev")
                  for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"}
    assert log_groups == {f"/aws/lambda/{name}" for name in functions}
    for function in functions.values():
        props = function["Properties"]
        for value in props["Environment"]["Variables"].values():
            assert not str(value).startswith(deploy.PLACEHOLDER)
            if isinstance(value, dict) and "Fn::Sub" in value:  # PUSH_ENDPOINT: the WebSocket API's
                assert value == deploy.PUSH_ENDPOINT and resources["WebsocketAPI"]["Type"] == "AWS::ApiGatewayV2::Api"
            elif isinstance(value, dict):
                assert (value.get("Ref") or value["Fn::GetAtt"][0]) in resources
        for event in (props.get("Events") or {}).values():
            if event["Type"] == "SQS":
                assert resources[event["Properties"]["Queue"]["Fn::GetAtt"][0]]["Type"] == "AWS::SQS::Queue"
            if event["Type"] == "DynamoDB":  # the stream of the stack's own table, not the local form
                assert event["Properties"]["Stream"] in ({"Fn::GetAtt": ["ConversationEventsTable", "StreamArn"]},
                                                         {"Fn::GetAtt": ["ConversationsTable", "StreamArn"]},
                                                         {"Fn::GetAtt": ["MessagesTable", "StreamArn"]})
    # Partial batch responses: the response type on the event source and the variable, together.
    reporting = {name: [e["Properties"].get("FunctionResponseTypes") for e in f["Properties"]["Events"].values()
                        if e["Type"] == "SQS"]
                 for name, f in functions.items() if f["Properties"].get("Events")}
    assert reporting == {"socialinbox-dev-ingest_processor": [["ReportBatchItemFailures"]],
                         "socialinbox-dev-sla_timers": [["ReportBatchItemFailures"]],
                         "socialinbox-dev-outbox_worker": [None],  # one message a time: a raise is the same
                         "socialinbox-dev-sla_sweeper": [], "socialinbox-dev-routing_sweeper": [],
                         "socialinbox-dev-staffing_sampler": [], "socialinbox-dev-listening_poller": [],
                         "socialinbox-dev-reports_consumer": [], "socialinbox-dev-analytics_snapshot": [],
                         "socialinbox-dev-profile_refresher": [],
                         "socialinbox-dev-push_fanout": [], "socialinbox-dev-reports_messages": []}
    enabled = {name for name, f in functions.items()
               if f["Properties"]["Environment"]["Variables"].get(deploy.PARTIAL_BATCH_ENV) == "true"}
    assert enabled == {"socialinbox-dev-ingest_processor", "socialinbox-dev-sla_timers"}
    assert deploy.partial_batch_problems(template) == []
    # The function URLs (Chalice cannot declare them): public, on the webhooks' function and on the
    # API's (the inbox); no other function is reachable but through the REST API.
    urls = sorted(r["Properties"]["TargetFunctionArn"]["Fn::GetAtt"][0] for r in resources.values()
                  if r["Type"] == "AWS::Lambda::Url" and r["Properties"]["AuthType"] == "NONE")
    assert urls == ["APIHandler", "Webhooks"]
    assert resources["Webhooks"]["Properties"]["FunctionName"] == "socialinbox-dev-webhooks"
    assert resources["APIHandler"]["Properties"]["FunctionName"] == "socialinbox-dev"
    for logical in urls:
        permissions = sorted((r["Properties"]["Action"], r["Properties"]["Principal"])
                             for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"
                             and r["Properties"]["FunctionName"] == {"Ref": logical} and r["Properties"]["Principal"] == "*")
        assert permissions == [("lambda:InvokeFunction", "*"), ("lambda:InvokeFunctionUrl", "*")], logical
        assert template["Outputs"][f"{logical}Url"]["Value"] == {"Fn::GetAtt": [f"{logical}Url", "FunctionUrl"]}
    assert "agents open" in template["Outputs"]["APIHandlerUrl"]["Description"]
    # through the URL nothing samples upstream: the API function traces only what API Gateway sampled
    assert resources["APIHandler"]["Properties"]["Tracing"] == "PassThrough"
    # every function: JSON logs without Lambda's START/END/REPORT lines
    assert all(f["Properties"]["LoggingConfig"] == {"LogFormat": "JSON", "SystemLogLevel": "WARN",
                                                    "ApplicationLogLevel": "INFO"} for f in functions.values())
    assert "webhooks/<platform>" in template["Outputs"]["WebhooksUrl"]["Description"]
    # The webhooks invoke the processor asynchronously: its retries, event age and the ingest DLQ
    # as its on-failure destination, in place before either webhook function is updated.
    [invoke_config] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    assert invoke_config == {"FunctionName": {"Ref": "IngestProcessor"}, "Qualifier": "$LATEST",
                             "MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 21600,
                             "DestinationConfig": {"OnFailure": {"Destination": {
                                 "Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}}}}
    assert resources["IngestDeadLetterQueue"]["Properties"]["QueueName"] == {"Fn::Sub": "socialinbox-${Stage}-ingest-dlq"}
    for caller in ("Webhooks", "APIHandler"):
        assert "IngestProcessorEventInvokeConfig" in resources[caller]["DependsOn"]
    lint = os.path.join(os.path.dirname(sys.executable), "cfn-lint")
    result = subprocess.run([lint, str(out / "sam.json")], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr


# --- partial batch responses: the variable and the event source's response type come together ----


def test_the_partial_batch_variable_is_the_one_the_handlers_read_and_names_sqs_consumers():
    import app
    from chalicelib.ingest import processor

    assert deploy.PARTIAL_BATCH_ENV == processor.PARTIAL_BATCH_ENV
    sqs_consumers = {h.name for h in app.app.event_sources if hasattr(h, "queue")}
    assert set(deploy.PARTIAL_BATCH_FUNCTIONS) <= sqs_consumers
    assert set(deploy.PARTIAL_BATCH_FUNCTIONS) <= set(deploy.functions())


@pytest.mark.parametrize("where", ["top", "stage", "function"])
def test_the_chalice_config_can_never_carry_the_partial_batch_variable(where):
    """`chalice deploy` would set it on a function whose mapping lacks ReportBatchItemFailures."""
    base = _base_config()
    section = {"top": base, "stage": base["stages"]["prod"],
               "function": base["stages"]["prod"]["lambda_functions"]["sla_timers"]}[where]
    section.setdefault("environment_variables", {})[deploy.PARTIAL_BATCH_ENV] = "true"
    with pytest.raises(ValueError, match=deploy.PARTIAL_BATCH_ENV):
        deploy.stage_config(base, "prod", stack.render(), deploy.outputs_by_key(describe_stacks()))


def _function(variables=None, events=None, name="socialinbox-dev-ingest_processor"):
    props = {"FunctionName": name, "Environment": {"Variables": dict(variables or {})}}
    if events is not None:
        props["Events"] = events
    return {"Type": "AWS::Serverless::Function", "Properties": props}


def _sqs_event(response_types=None):
    props = {"Queue": {"Fn::GetAtt": ["IngestQueue", "Arn"]}, "BatchSize": 10}
    if response_types is not None:
        props["FunctionResponseTypes"] = response_types
    return {"Type": "SQS", "Properties": props}


ON = {deploy.PARTIAL_BATCH_ENV: "true"}
REPORT = ["ReportBatchItemFailures"]


@pytest.mark.parametrize("resources, problem", [
    ({"F": _function(ON, {"E": _sqs_event(REPORT)})}, None),
    ({"F": _function({}, {"E": _sqs_event()})}, None),
    ({"F": _function(ON, {"E": _sqs_event()})}, "failed messages would be deleted"),
    ({"F": _function(ON, {"E": _sqs_event(REPORT), "E2": _sqs_event([])})}, "E2 lacks"),
    ({"F": _function(ON, {})}, "no SQS event source"),
    ({"F": _function({}, {"E": _sqs_event(REPORT)})}, "lacks " + deploy.PARTIAL_BATCH_ENV),
    # plain CloudFormation: the mapping as its own resource, by Ref or by name
    ({"F": dict(_function(ON), Type="AWS::Lambda::Function"),
      "M": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {"FunctionName": {"Ref": "F"}}}},
     "failed messages would be deleted"),
    ({"F": dict(_function(ON), Type="AWS::Lambda::Function"),
      "M": {"Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {"FunctionName": "socialinbox-dev-ingest_processor", "FunctionResponseTypes": REPORT}}}, None),
], ids=["both", "neither", "variable alone", "one source lacks it", "no source", "response type alone",
        "mapping resource lacks it", "mapping resource by name"])
def test_partial_batch_problems_find_a_variable_or_response_type_set_alone(resources, problem):
    problems = deploy.partial_batch_problems({"Resources": resources})
    if problem is None:
        assert problems == []
    else:
        [found] = problems
        assert problem in found


def test_fix_package_refuses_a_template_where_they_would_not_come_together():
    """A function fix-package does not manage, given the variable (by hand, or by a config
    edit) without the response type: the package is refused, not written."""
    template = {"Resources": {"OutboxWorker": _function(ON, {"E": _sqs_event()}, name="x")}}
    with pytest.raises(ValueError, match="failed messages would be deleted"):
        deploy.fix_package(template, "dev")


def _deployed_consumers(stage="qa", variables=None):
    """The stage's SQS consumers as `chalice deploy` leaves them in moto: functions with the
    Chalice config's variables, mappings without a response type."""
    import io
    import zipfile

    from chalicelib import aws

    role = aws.client("iam").create_role(RoleName="consumer", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return None\n")
    client, sqs = aws.client("lambda"), aws.client("sqs")
    mappings = {}
    for function, queue in (("ingest_processor", "ingest"), ("sla_timers", "sla-timers"), ("outbox_worker", "outbox")):
        name = deploy.lambda_function_name(stage, function)
        client.create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler="app.handler",
                               Code={"ZipFile": code.getvalue()},
                               Environment={"Variables": dict(variables or {"SOCIALINBOX_STAGE": stage})})
        url = sqs.create_queue(QueueName=f"socialinbox-{stage}-{queue}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        mappings[function] = client.create_event_source_mapping(EventSourceArn=arn, FunctionName=name,
                                                                BatchSize=10)["UUID"]
    return client, mappings


class _Recording:
    """A Lambda client that records the changing calls (and can hold a mapping in `Updating`)."""

    def __init__(self, client, settling=False, ignoring=False):
        self._client, self.calls, self.settling, self.ignoring = client, [], settling, ignoring

    def __getattr__(self, name):
        target = getattr(self._client, name)
        if name.startswith("update_"):
            def call(**kwargs):
                self.calls.append((name, kwargs.get("FunctionName") or kwargs.get("UUID")))
                if self.ignoring and name == "update_event_source_mapping":
                    return {}  # accepted, never applied
                return target(**kwargs)
            return call
        if name == "get_event_source_mapping" and self.settling:
            return lambda **kwargs: dict(target(**kwargs), State="Updating")
        return target


def test_partial_batches_on_a_deployed_stage_sets_the_mapping_first_then_the_variable(aws_backend):
    client, mappings = _deployed_consumers()
    recording = _Recording(client)

    done = deploy.enable_partial_batches(recording, "qa", sleep=lambda s: None)

    names = [deploy.lambda_function_name("qa", f) for f in deploy.PARTIAL_BATCH_FUNCTIONS]
    assert done == names
    assert recording.calls == [c for f, name in zip(deploy.PARTIAL_BATCH_FUNCTIONS, names) for c in (
        ("update_event_source_mapping", mappings[f]), ("update_function_configuration", name))]
    for function in ("ingest_processor", "sla_timers", "outbox_worker"):
        mapping = client.get_event_source_mapping(UUID=mappings[function])
        variables = client.get_function_configuration(
            FunctionName=deploy.lambda_function_name("qa", function))["Environment"]["Variables"]
        together = function in deploy.PARTIAL_BATCH_FUNCTIONS
        assert (mapping.get("FunctionResponseTypes") or []) == (["ReportBatchItemFailures"] if together else [])
        assert variables == dict({"SOCIALINBOX_STAGE": "qa"}, **(ON if together else {}))  # the rest kept
    # Again (every `make deploy`): nothing left to change.
    recording.calls.clear()
    assert deploy.enable_partial_batches(recording, "qa", sleep=lambda s: None) == names
    assert recording.calls == []


@pytest.mark.parametrize("mapping, error", [("settling", "does not settle"),
                                            ("ignoring", "does not report ReportBatchItemFailures")])
def test_a_mapping_that_does_not_report_never_gets_the_variable(aws_backend, mapping, error):
    client, mappings = _deployed_consumers()
    waits = []
    recording = _Recording(client, **{mapping: True})
    with pytest.raises(RuntimeError, match=f"event source mapping .* {error}"):
        deploy.enable_partial_batches(recording, "qa", timeout=10, sleep=waits.append)
    assert sum(waits) >= 10
    assert "update_function_configuration" not in [call for call, _ in recording.calls]
    for function in deploy.PARTIAL_BATCH_FUNCTIONS:
        variables = client.get_function_configuration(
            FunctionName=deploy.lambda_function_name("qa", function))["Environment"]["Variables"]
        assert deploy.PARTIAL_BATCH_ENV not in variables


def test_before_a_package_deploy_only_existing_mappings_change(aws_backend):
    """`make deploy-package`: the mappings of a stack being updated report first (its update then
    adds the variable); a stage not deployed yet has none and nothing happens."""
    from chalicelib import aws

    assert deploy.enable_partial_batches(aws.client("lambda"), "fresh", environment=False) == []
    client, mappings = _deployed_consumers()
    recording = _Recording(client)
    deploy.enable_partial_batches(recording, "qa", environment=False, sleep=lambda s: None)
    assert [c[0] for c in recording.calls] == ["update_event_source_mapping"] * 2
    for function in deploy.PARTIAL_BATCH_FUNCTIONS:
        assert client.get_event_source_mapping(UUID=mappings[function])["FunctionResponseTypes"] == REPORT
        variables = client.get_function_configuration(
            FunctionName=deploy.lambda_function_name("qa", function))["Environment"]["Variables"]
        assert deploy.PARTIAL_BATCH_ENV not in variables


# --- the webhooks' function URL on a deployed stage ---------------------------------------------------


def _deployed_webhooks(stage="qa"):
    """The webhooks function as `chalice deploy` leaves it in moto: no URL, no resource policy;
    beside it the API's function with the permission Chalice gives API Gateway."""
    import io
    import zipfile

    from chalicelib import aws

    role = aws.client("iam").create_role(RoleName="webhooks", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def webhook_url(event, context):\n    return None\n")
    client = aws.client("lambda")
    for function, handler in ((deploy.API_HANDLER, "app.app"), (deploy.WEBHOOKS_FUNCTION, "app.webhook_url")):
        client.create_function(FunctionName=deploy.lambda_function_name(stage, function), Runtime="python3.11",
                               Role=role, Handler=handler, Code={"ZipFile": code.getvalue()},
                               TracingConfig={"Mode": "Active"})  # Chalice's "xray": true
    client.add_permission(FunctionName=deploy.lambda_function_name(stage, deploy.API_HANDLER), StatementId="rest-api",
                          Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com")
    return client, deploy.lambda_function_name(stage, deploy.WEBHOOKS_FUNCTION)


def _url_statements(client, name):
    policy = json.loads(client.get_policy(FunctionName=name)["Policy"])
    return sorted((s["Sid"], s["Action"], json.dumps(s["Principal"])) for s in policy["Statement"])


def test_make_deploy_gives_the_webhooks_function_a_public_url_once(aws_backend, capsys):
    client, name = _deployed_webhooks()
    assert deploy.main(["function-url", "--stage", "qa"]) == 0
    config = client.get_function_url_config(FunctionName=name)
    assert config["AuthType"] == "NONE" and config["FunctionArn"].endswith(":function:" + name)
    api = deploy.lambda_function_name("qa", deploy.API_HANDLER)
    inbox = client.get_function_url_config(FunctionName=api)
    assert inbox["AuthType"] == "NONE" and inbox["FunctionArn"].endswith(":function:" + api)
    assert capsys.readouterr().out.strip().splitlines() == [f"webhooks: {config['FunctionUrl']}",
                                                           f"inbox: {inbox['FunctionUrl']}"]
    statements = _url_statements(client, name)
    assert [(sid, action) for sid, action, _ in statements] == [
        ("FunctionUrlInvokeFunction", "lambda:InvokeFunction"), ("FunctionUrlPublicAccess", "lambda:InvokeFunctionUrl")]
    api_statements = _url_statements(client, api)  # the REST API's own permission kept beside them
    assert [(sid, action) for sid, action, _ in api_statements] == [
        ("FunctionUrlInvokeFunction", "lambda:InvokeFunction"), ("FunctionUrlPublicAccess", "lambda:InvokeFunctionUrl"),
        ("rest-api", "lambda:InvokeFunction")]
    # Every later deploy: the same URLs, nothing added twice.
    assert deploy.ensure_function_url(client, "qa") == config["FunctionUrl"]
    assert deploy.ensure_function_url(client, "qa", deploy.API_HANDLER) == inbox["FunctionUrl"]
    assert _url_statements(client, name) == statements and _url_statements(client, api) == api_statements


class _JustDeployedApi:
    """A Lambda client for the API function whose update `chalice deploy` has just started, with
    Chalice's active tracing (moto keeps no tracing mode an update sets)."""

    def __init__(self):
        self.config = {"TracingConfig": {"Mode": "Active"}, "LastUpdateStatus": "InProgress", "RevisionId": "r1"}
        self.reads, self.updates = 0, []

    def get_function_configuration(self, FunctionName):
        self.reads += 1
        if self.reads > 2:
            self.config["LastUpdateStatus"] = "Successful"
        return copy.deepcopy(self.config)

    def update_function_configuration(self, FunctionName, **changes):
        self.updates.append((FunctionName, changes))
        self.config.update(TracingConfig=changes["TracingConfig"], RevisionId="r2")


class _Stage:
    """A Lambda client for a stage `chalice deploy` has just deployed (moto keeps no logging
    configuration): `names` deployed, the first still updating."""

    class exceptions:  # noqa: N801 - boto3's attribute
        class ResourceNotFoundException(Exception):
            pass

    def __init__(self, names):
        self.configs = {name: {"LastUpdateStatus": "InProgress" if i == 0 else "Successful", "RevisionId": f"r-{name}",
                               "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"}}
                        for i, name in enumerate(names)}
        self.updates = []

    def get_function_configuration(self, FunctionName):
        if FunctionName not in self.configs:
            raise self.exceptions.ResourceNotFoundException(FunctionName)
        config = self.configs[FunctionName]
        answer = copy.deepcopy(config)
        config["LastUpdateStatus"] = "Successful"  # the update in progress finishes
        return answer

    def update_function_configuration(self, FunctionName, **changes):
        self.updates.append((FunctionName, changes))
        self.configs[FunctionName]["LoggingConfig"].update(changes["LoggingConfig"])


def test_every_deployed_function_logs_json_without_the_platforms_start_end_report_lines():
    names = [deploy.lambda_function_name("qa", f) for f in (deploy.API_HANDLER, deploy.WEBHOOKS_FUNCTION)]
    client, waits = _Stage(names), []
    assert deploy.quiet_platform_logs(client, "qa", sleep=waits.append) == names  # the rest are not deployed
    assert waits  # after chalice deploy's update
    wanted = {"LogFormat": "JSON", "SystemLogLevel": "WARN", "ApplicationLogLevel": "INFO"}
    assert client.updates == [(name, {"LoggingConfig": wanted, "RevisionId": f"r-{name}"}) for name in names]
    assert all(client.configs[name]["LoggingConfig"] == dict(wanted, LogGroup=f"/aws/lambda/{name}") for name in names)
    assert deploy.quiet_platform_logs(client, "qa", sleep=waits.append) == []  # every later deploy: nothing


def test_the_api_function_traces_only_what_api_gateway_sampled():
    """Through the function URL nothing samples upstream: with active tracing Lambda would record
    the first request of each second and 5 % of the rest (nearly all of a small team's, at $5 per
    million traces). After chalice deploy's update, and once."""
    client, waits = _JustDeployedApi(), []
    assert deploy.trace_only_sampled_requests(client, "qa", sleep=waits.append) is True
    assert waits  # waited for chalice deploy's update to finish
    assert client.updates == [("socialinbox-qa", {"TracingConfig": {"Mode": "PassThrough"}, "RevisionId": "r1"})]
    assert deploy.trace_only_sampled_requests(client, "qa", sleep=waits.append) is False
    assert len(client.updates) == 1


def test_a_function_url_changed_to_iam_auth_is_made_public_again(aws_backend):
    """The platforms cannot sign AWS requests: a URL someone switched to AWS_IAM would refuse every
    delivery (the platforms' own signatures are the gate)."""
    client, name = _deployed_webhooks()
    url = client.create_function_url_config(FunctionName=name, AuthType="AWS_IAM")["FunctionUrl"]
    assert deploy.ensure_function_url(client, "qa") == url
    assert client.get_function_url_config(FunctionName=name)["AuthType"] == "NONE"


# --- the live updates' endpoint on a deployed stage ----------------------------------------------------

WSS = "wss://ws123abc.execute-api.eu-west-1.amazonaws.com/api/"
ENDPOINT = "https://ws123abc.execute-api.eu-west-1.amazonaws.com/api"


def _deployed_record(directory, stage="qa", url=WSS):
    """`.chalice/deployed/<stage>.json` as `chalice deploy` writes it (its WebSocket API among the rest)."""
    directory.mkdir(parents=True, exist_ok=True)
    resources = [{"name": "api_handler", "resource_type": "lambda_function",
                  "lambda_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:socialinbox-{stage}"}]
    if url:
        resources.append({"name": "websocket_api", "resource_type": "websocket_api", "websocket_api_url": url,
                          "websocket_api_id": "ws123abc"})
    (directory / f"{stage}.json").write_text(json.dumps({"resources": resources, "schema_version": "2.0"}))
    return str(directory)


def test_the_push_endpoint_is_read_from_what_chalice_deploy_recorded(tmp_path):
    assert deploy.deployed_push_endpoint("qa", str(tmp_path / "none")) is None  # never deployed
    assert deploy.deployed_push_endpoint("qa", _deployed_record(tmp_path / "d")) == ENDPOINT
    assert deploy.deployed_push_endpoint("qa", _deployed_record(tmp_path / "e", url=None)) is None


def test_make_deploy_sets_the_push_endpoint_on_every_function_once(aws_backend, tmp_path, monkeypatch, capsys):
    """The first `make deploy`: Chalice has just created the WebSocket API, `push-endpoint` gives
    every function its endpoint (the rest of their variables kept); again: nothing to change."""
    import zipfile

    from chalicelib import aws

    role = aws.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return None\n")
    client = aws.client("lambda")
    names = [deploy.lambda_function_name("qa", f) for f in deploy.functions()]
    for name in names:
        client.create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler="app.handler",
                               Code={"ZipFile": code.getvalue()}, Environment={"Variables": {"SOCIALINBOX_STAGE": "qa"}})
    monkeypatch.setattr(deploy, "ROOT", str(tmp_path))
    assert deploy.main(["push-endpoint", "--stage", "qa"]) == 2  # not deployed: says so
    assert "run chalice deploy first" in capsys.readouterr().err
    _deployed_record(tmp_path / ".chalice" / "deployed")
    assert deploy.main(["push-endpoint", "--stage", "qa"]) == 0
    assert capsys.readouterr().out.strip() == f"PUSH_ENDPOINT={ENDPOINT} ({len(names)} function(s) updated)"
    for name in names:
        variables = client.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
        assert variables == {"SOCIALINBOX_STAGE": "qa", "PUSH_ENDPOINT": ENDPOINT}
    assert deploy.set_push_endpoint(client, "qa", ENDPOINT, sleep=lambda s: None) == []


def test_an_upgrade_deploys_the_push_endpoint_with_the_stage_config(tmp_path):
    """Later deploys: `configure` puts the endpoint into the stage config, so `chalice deploy`
    never leaves a function without it; the one-artifact path (no outputs) gets its `Fn::Sub`."""
    outputs = deploy.outputs_by_key(describe_stacks())
    deployed = _deployed_record(tmp_path / "deployed", stage="prod")
    deploy.configure(str(tmp_path / "build"), "prod", stack.render(), outputs, deployed_dir=deployed)
    config = json.loads((tmp_path / "build" / ".chalice" / "config.json").read_text())
    assert config["stages"]["prod"]["environment_variables"]["PUSH_ENDPOINT"] == ENDPOINT
    deploy.configure(str(tmp_path / "first"), "prod", stack.render(), outputs, deployed_dir=str(tmp_path / "none"))
    deploy.configure(str(tmp_path / "package"), "prod", stack.render(), None, deployed_dir=deployed)
    for build in ("first", "package"):
        config = json.loads((tmp_path / build / ".chalice" / "config.json").read_text())
        assert "PUSH_ENDPOINT" not in config["stages"]["prod"]["environment_variables"], build


@pytest.mark.parametrize("function", deploy.URL_FUNCTIONS)
def test_each_function_with_a_public_url_is_throttled_by_reserved_concurrency_in_every_deployed_stage(function):
    """No API Gateway stage throttle or WAF in front of a function URL: its reserved concurrency is
    the ceiling (for the inbox, beside the per-agent rate limits)."""
    with open(os.path.join(ROOT, ".chalice", "config.json"), encoding="utf-8") as handle:
        stages = json.load(handle)["stages"]
    for stage in ("dev", "prod"):
        settings = stages[stage]["lambda_functions"][function]
        assert 0 < settings["reserved_concurrency"] <= 100, stage


def test_secrets_go_to_ssm_as_secure_strings_and_are_never_printed(aws_backend, capsys):
    from chalicelib import aws

    ssm = aws.client("ssm")
    answers = io.StringIO("first-secret-value\n\nthird-secret-value\n")
    names = ["META_APP_SECRET", "META_VERIFY_TOKEN", "AUTH_TOKEN_SECRET"]
    written = deploy.put_secrets(ssm, "prod", names, deploy._asker(answers))
    assert written == ["META_APP_SECRET", "AUTH_TOKEN_SECRET"]  # an empty answer keeps what is there
    stored = ssm.get_parameter(Name="/socialinbox-prod/META_APP_SECRET", WithDecryption=True)["Parameter"]
    assert stored["Type"] == "SecureString" and stored["Value"] == "first-secret-value"
    deploy.put_secrets(ssm, "prod", ["META_APP_SECRET"], lambda name: "rotated-value")  # rotation
    assert ssm.get_parameter(Name="/socialinbox-prod/META_APP_SECRET",
                             WithDecryption=True)["Parameter"]["Value"] == "rotated-value"
    printed = capsys.readouterr()
    assert "secret-value" not in printed.out + printed.err and "rotated" not in printed.out + printed.err


def test_make_deploy_is_one_sequence_from_the_stack_to_chalice_deploy():
    """The order matters: the data stack, its outputs, the stage config built from them, then
    chalice deploy (and a health check); nothing in between is copied by hand."""
    result = subprocess.run(["make", "-n", "deploy", "STAGE=qa"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    steps = ["infra.lean smoke", "aws cloudformation deploy --stack-name socialinbox-qa-data",
             "describe-stacks --stack-name socialinbox-qa-data",
             "infra.deploy configure --stage qa --build build/lambda --outputs out/stack-outputs-qa.json",
             "chalice deploy --stage qa", "infra.deploy partial-batches --stage qa",
             "infra.deploy function-url --stage qa", "infra.deploy push-endpoint --stage qa",
             "infra.deploy platform-logs --stage qa", "curl -fsS"]
    positions = [result.stdout.find(step) for step in steps]
    assert -1 not in positions, dict(zip(steps, positions))
    assert positions == sorted(positions)


def test_make_deploy_configures_the_processors_async_invocations_before_and_after_chalice_deploy():
    """Before: an upgraded webhook starts invoking the processor the moment chalice deploy updates
    it, so the destination must already be there; after: a first deploy's new processor."""
    commands = _dry_run("deploy", "STAGE=qa")
    before = next(n for n, c in enumerate(commands) if "infra.deploy async-invocations --stage qa --existing-only" in c)
    chalice = next(n for n, c in enumerate(commands) if "chalice deploy --stage qa" in c)
    after = next(n for n, c in enumerate(commands)
                 if "infra.deploy async-invocations --stage qa" in c and "--existing-only" not in c)
    assert before < chalice < after


def test_async_invocations_on_a_deployed_stage_retry_twice_then_go_to_the_ingest_dlq(aws_backend, capsys):
    client, _ = _deployed_consumers()
    assert deploy.configure_async_invocations(client, "qa") == ["socialinbox-qa-ingest_processor"]
    assert deploy.configure_async_invocations(client, "qa") == ["socialinbox-qa-ingest_processor"]  # idempotent
    found = client.get_function_event_invoke_config(FunctionName="socialinbox-qa-ingest_processor")
    assert found["MaximumRetryAttempts"] == 2 and found["MaximumEventAgeInSeconds"] == 21600
    assert found["DestinationConfig"]["OnFailure"]["Destination"] == \
        "arn:aws:sqs:us-east-1:123456789012:socialinbox-qa-ingest-dlq"
    # before the first chalice deploy of a stage nothing exists yet: skipped, not an error
    assert deploy.configure_async_invocations(client, "qb", existing_only=True) == []
    with pytest.raises(RuntimeError, match="socialinbox-qb-ingest_processor: not deployed"):
        deploy.configure_async_invocations(client, "qb")


def test_the_processor_may_send_to_its_on_failure_destination_and_the_webhooks_may_invoke_it_alone():
    for function, settings in deploy.ASYNC_INVOCATIONS.items():
        [statement] = [s for s in deploy.policy_document(function, "qa", "us-east-1", "1")["Statement"]
                       if s["Sid"] == "AsyncDestination"]
        assert statement["Action"] == ["sqs:SendMessage"]
        assert statement["Resource"] == [f"arn:aws:sqs:us-east-1:1:socialinbox-qa-{settings['OnFailure']}"]
    processor = "arn:aws:lambda:us-east-1:1:function:socialinbox-qa-ingest_processor"
    for caller in ("webhooks", "api_handler"):
        statements = deploy.policy_document(caller, "qa", "us-east-1", "1")["Statement"]
        assert [s["Resource"] for s in statements if "lambda:InvokeFunction" in s["Action"]] == [[processor]]
    others = [f for f in deploy.functions() if f not in ("webhooks", "api_handler")]
    assert not any("lambda:InvokeFunction" in s["Action"] for f in others
                   for s in deploy.policy_document(f, "qa")["Statement"])


def test_the_asynchronous_door_is_alarmed_beside_the_queue():
    alarms = [r["Properties"] for r in stack.template()["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    on_processor = {a["MetricName"]: a for a in alarms if a["Namespace"] == "AWS/Lambda" and a["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Fn::Sub": "socialinbox-${Stage}-ingest_processor"}}]}
    dropped, age = on_processor["AsyncEventsDropped"], on_processor["AsyncEventAge"]
    assert (dropped["Statistic"], dropped["Threshold"], dropped["ComparisonOperator"]) == ("Sum", 0, "GreaterThanThreshold")
    assert age["Statistic"] == "Maximum" and age["Threshold"] == 300_000  # milliseconds: 5 minutes
    assert any(a["MetricName"] == "ApproximateAgeOfOldestMessage" for a in alarms)  # the queue's, kept


def test_make_deploy_package_readies_existing_mappings_before_the_stack_update():
    result = subprocess.run(["make", "-n", "deploy-package", "STAGE=qa", "BUCKET=b"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    steps = ["infra.deploy fix-package --stage qa", "infra.deploy partial-batches --stage qa --mappings-only",
             "aws cloudformation deploy --stack-name socialinbox-qa "]
    positions = [result.stdout.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), dict(zip(steps, positions))


# --- templates and the limits of the command that deploys them -------------------------------------


def _dry_run(target: str, *variables: str) -> list:
    """The shell commands `make -n` prints for a target, continuation lines joined."""
    result = subprocess.run(["make", "-n", target, *variables], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.replace("\\\n", " ").splitlines()


def _deploying_targets() -> list:
    """Every Makefile target whose recipe runs `cloudformation deploy`."""
    targets, current = [], None
    with open(os.path.join(ROOT, "Makefile"), encoding="utf-8") as handle:
        for line in handle:
            if line[:1] not in ("\t", " ", "#", "\n") and ":" in line and "=" not in line.split(":")[0]:
                current = line.split(":")[0].strip()
            elif "cloudformation deploy" in line and current not in targets:
                targets.append(current)
    return targets


def _option(command: str, name: str) -> str:
    words = command.split()
    return words[words.index(name) + 1].strip("\"'") if name in words else ""


#: CloudFormation's template limits: sent inline (TemplateBody) and read from S3 (TemplateURL).
INLINE_TEMPLATE_LIMIT, TEMPLATE_URL_LIMIT = 51_200, 1_000_000


def test_every_template_the_makefile_deploys_fits_what_its_command_accepts(tmp_path):
    """`aws cloudformation deploy` sends a template inline only up to 51,200 bytes; with
    --s3-bucket it uploads it first, up to CloudFormation's 1 MB. The data stack was 60 KB and sent
    inline: the first step of every deploy failed. A template this test can render is measured; one
    it cannot (the packaged one-artifact template) must go through a bucket."""
    targets = _deploying_targets()
    assert {"deploy", "deploy-package"} <= set(targets)
    checked = []
    for target in targets:
        commands = _dry_run(target, "STAGE=qa", "BUCKET=b")
        for command in (c for c in commands if "cloudformation deploy" in c):
            template = _option(command, "--template-file")
            through_bucket = bool(_option(command, "--s3-bucket"))
            producers = [c.split("#")[0].split(">")[0].split("&&")[-1] for c in commands
                         if c.split("#")[0].rstrip().endswith("> " + template)]
            size = None
            if producers:
                rendered = subprocess.run(producers[-1], shell=True, cwd=ROOT, capture_output=True, timeout=120)
                assert rendered.returncode == 0, rendered.stderr
                size = len(rendered.stdout)
            limit = TEMPLATE_URL_LIMIT if through_bucket else INLINE_TEMPLATE_LIMIT
            assert through_bucket or size is not None, f"make {target}: {template} (size unknown) is sent inline"
            assert size is None or size <= limit, f"make {target}: {template} is {size} bytes, over {limit}"
            checked.append((target, template, size, through_bucket))
    measured = {(t, p): size for t, p, size, _ in checked}
    assert measured[("deploy", "out/resources.json")] > 20_000  # rendered and measured, not skipped
    assert all(through for _, _, _, through in checked)


def test_make_deploy_gets_the_bucket_of_its_stage_or_the_operators():
    own = " ".join(_dry_run("deploy", "STAGE=qa"))
    assert 'infra.deploy artifacts-bucket --stage qa --bucket ""' in own
    theirs = " ".join(_dry_run("deploy", "STAGE=qa", "ARTIFACTS_BUCKET=ops-templates"))
    assert 'artifacts-bucket --stage qa --bucket "ops-templates"' in theirs


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1"])
def test_the_artifacts_bucket_is_created_once_private_expiring_and_reused(aws_backend, region):
    import boto3

    s3 = boto3.client("s3", region_name=region)
    name = deploy.ensure_artifacts_bucket(s3, ACCOUNT, region, "qa")
    assert name == f"socialinbox-qa-deploy-{ACCOUNT}-{region}" and len(name) <= 63
    assert deploy.ensure_artifacts_bucket(s3, ACCOUNT, region, "qa") == name  # the next deploy reuses it
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]].count(name) == 1
    located = s3.get_bucket_location(Bucket=name)["LocationConstraint"]
    assert (located or "us-east-1") == region
    blocked = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    assert all(blocked.values()) and len(blocked) == 4
    [rule] = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
    assert rule["Status"] == "Enabled" and rule["Expiration"]["Days"] == deploy.ARTIFACT_EXPIRY_DAYS
    assert deploy.ensure_artifacts_bucket(s3, ACCOUNT, region, "qa", "ops-templates") == "ops-templates"
    assert "ops-templates" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]  # theirs: used as it is


# --- any stage name --------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["staging", "qa-2", "x"])
def test_any_stage_is_configured_with_its_name_and_the_app_then_names_its_queues(tmp_path, stage):
    """A stage .chalice/config.json does not list got no SOCIALINBOX_STAGE: `chalice deploy`
    (which imports the app with the stage's variables) subscribed the functions to the local
    stage's queues and failed; deployed anyway, they would have run as the local stage."""
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps(describe_stacks(stage)))
    assert deploy.main(["configure", "--stage", stage, "--build", str(tmp_path),
                        "--outputs", str(outputs_file)]) == 0
    config = json.loads((tmp_path / ".chalice" / "config.json").read_text())
    section = config["stages"][stage]
    variables = dict(config["environment_variables"], **section["environment_variables"])
    assert variables["SOCIALINBOX_STAGE"] == stage
    dev = _base_config()["stages"]["dev"]["lambda_functions"]
    for function, settings in dev.items():  # a new stage starts from dev's function settings
        assert {k: v for k, v in section["lambda_functions"][function].items() if k != "iam_policy_file"} == settings
    script = ("import json, os, sys; os.environ.update(json.loads(sys.argv[1])); import app; "
              "print(json.dumps(sorted(s.queue for s in app.app.event_sources if hasattr(s, 'queue'))))")
    env = {k: v for k, v in os.environ.items() if k not in ("SOCIALINBOX_STAGE", "RESOURCE_PREFIX")}
    result = subprocess.run([sys.executable, "-c", script, json.dumps(variables)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    queues = json.loads(result.stdout.strip().splitlines()[-1])
    assert queues and all(q.startswith(f"socialinbox-{stage}-") for q in queues), queues


@pytest.mark.parametrize("stage, reason", [("local", "never deployed"), ("Staging", "a-z"), ("qa_2", "a-z"),
                                           ("-qa", "a-z"), ("qa-", "a-z"), ("a" * 17, "a-z"), ("", "a-z")])
def test_configure_refuses_the_local_stage_and_names_a_resource_cannot_take(tmp_path, capsys, stage, reason):
    assert deploy.main(["configure", f"--stage={stage}", "--build", str(tmp_path)]) == 2
    assert reason in capsys.readouterr().err
    assert not (tmp_path / ".chalice").exists()


# --- the SQS consumers as Lambda runs them ---------------------------------------------------------

def test_consumers_batch_where_latency_allows_and_replies_go_one_by_one():
    import app

    sources = {h.name: h for h in app.app.event_sources if hasattr(h, "queue")}
    ingest = sources["ingest_processor"]
    assert ingest.batch_size == 10 and ingest.maximum_batching_window_in_seconds == 1
    assert sources["sla_timers"].maximum_batching_window_in_seconds == 5
    assert sources["outbox_worker"].batch_size == 1 and sources["outbox_worker"].maximum_batching_window_in_seconds == 0


@pytest.mark.parametrize("partial", [False, True], ids=["raises", "partial batch response"])
def test_a_failing_sla_timer_never_stops_its_neighbours(inbox, monkeypatch, partial):
    """The batch is handled whole; then, with partial batch responses, only the failed record is
    named for redelivery, else the handler raises (the good records come back as stale no-ops)."""
    import time

    from chalicelib.inbox import store
    from chalicelib.ingest import processor
    from chalicelib.runtime import runtime
    from tests.helpers import PAGE, messenger, page_delivery

    if partial:
        monkeypatch.setenv(processor.PARTIAL_BATCH_ENV, "true")
    else:
        monkeypatch.delenv(processor.PARTIAL_BATCH_ENV, raising=False)
    inbox.add_account("messenger", PAGE)
    inbox.post_meta(page_delivery(messenger("m-t-1", "psid-t", int(time.time() * 1000), "hello?")))
    inbox.process()
    [row] = inbox.conversations()
    state = store.get(row["id"])
    from botocore.exceptions import ClientError

    from chalicelib.models import Conversation

    # DynamoDB throttles every read of one conversation (the first record's): that record fails.
    connection = Conversation._get_connection().connection
    real_call = connection._make_api_call

    def throttled(operation_name, operation_kwargs):
        if operation_name == "GetItem" and operation_kwargs.get("Key", {}).get("conversation_id", {}).get("S") == "c_hot":
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                              operation_name)
        return real_call(operation_name, operation_kwargs)

    monkeypatch.setattr(connection, "_make_api_call", throttled)
    records = [{"messageId": str(i), "receiptHandle": str(i), "attributes": {"ApproximateReceiveCount": "1"},
                "body": json.dumps({"kind": "breach", "conversation_id": cid, "turn": state["turn"]})}
               for i, cid in enumerate(["c_hot", row["id"]])]  # the first one cannot be read
    runtime.use_clock(lambda: time.time() + 86_400)
    if partial:
        assert inbox.app.sla_timers({"Records": records}, None) == {"batchItemFailures": [{"itemIdentifier": "0"}]}
        again = inbox.app.sla_timers({"Records": records[1:]}, None)  # a repeat of the good one: stale
        assert again == {"batchItemFailures": []}
    else:
        with pytest.raises(Exception):
            inbox.app.sla_timers({"Records": records}, None)
    events = inbox.get(f"/api/conversations/{row['id']}/events")["items"]
    assert [e["type"] for e in events].count("sla_breached") == 1, events
