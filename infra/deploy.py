"""Deploy glue: the data stack's outputs and the per-function IAM policies become the Chalice stage
configuration of the build directory, so nothing is copied by hand.

    python -m infra.deploy configure --stage dev --build build/lambda --outputs out/stack-outputs-dev.json
    python -m infra.deploy configure --stage dev --build build/lambda          # one-artifact path
    python -m infra.deploy fix-package --stage dev out/package/sam.json
    python -m infra.deploy partial-batches --stage dev [--mappings-only]
    python -m infra.deploy async-invocations --stage dev [--existing-only]
    python -m infra.deploy function-url --stage dev
    python -m infra.deploy push-endpoint --stage dev
    python -m infra.deploy platform-logs --stage dev
    python -m infra.deploy put-secrets --stage dev [NAME ...]
    python -m infra.deploy artifacts-bucket --stage dev [--bucket NAME]
    python -m infra.deploy index-plan --stage dev [--template out/resources.json] [--out out/index-steps]
    python -m infra.deploy backfill --stage dev [--page-size 100]

`configure` writes the build directory's `.chalice/config.json` (the stage's name, queue URLs and
the SLA state machine ARN as environment variables, one IAM policy file per function) and those
policy files, for any stage name but `local` (STAGE_NAME; a stage `.chalice/config.json` does not
know starts from NEW_STAGE_BASE's settings).
With `--outputs` (a `describe-stacks` document) the values are the deployed stack's; without it
they are `@ref:<LogicalId>` placeholders that `fix-package` turns into `Ref`s once `chalice
package --merge-template` has put the data stack and the functions into one template.

IAM: `infra/iam-policies.json` is the one source. Each function gets what its code calls (checked
by tests/test_iam.py against the calls the code really makes), plus what the platform needs on its
behalf: its own log group, X-Ray, and, for SQS consumers, the event source's receive/delete on the
queue it consumes. All Chalice REST routes (the agent API, and the webhook route kept for
deployments moving over) are one Lambda function, `api_handler`, so they share one role.

Function URLs (URL_FUNCTIONS): the webhooks have a Lambda function of their own (`webhooks`, issue
21), reached through its function URL, which Chalice cannot declare: `function-url` creates or
updates it on a deployed stage (boto3, after `chalice deploy`; AuthType NONE, the platforms'
signatures are the gate) with the two resource-policy statements a public URL needs, and
`fix_package` adds the same as `AWS::Lambda::Url` and `AWS::Lambda::Permission` resources to the
one-artifact template. Its throttle is its reserved concurrency (.chalice/config.json). The API's
function (`api_handler`) gets one the same way: agents open the inbox there, with no API Gateway
charge per request (the REST API keeps working beside it); its gate is the API's bearer tokens and
per-agent rate limits, its throttle its reserved concurrency.

Partial batch responses (PARTIAL_BATCH_FUNCTIONS): the consumers answer Lambda's
`{"batchItemFailures": [...]}` only when PARTIAL_BATCH_ENV is "true", and that variable must never
exist without FunctionResponseTypes=[ReportBatchItemFailures] on the function's event source
mapping: Lambda would take the answer for a success and delete the failed messages. Chalice cannot
set the response type, so the Chalice config never holds the variable (`stage_config` refuses it);
`fix_package` sets both in the one-artifact template (`partial_batch_problems` checks they come
together), and `partial-batches` sets them on a deployed stage with boto3, mapping first.

Asynchronous invocations (ASYNC_INVOCATIONS, issue 21): the webhooks hand each delivery to the
ingest processor by invoking it asynchronously (no SQS request per delivery). Lambda then runs it,
retries a failed event MaximumRetryAttempts times and sends it, as an invocation record, to the
OnFailure queue (the ingest DLQ, where `make replay-dlq` finds it); an event older than
MaximumEventAgeInSeconds goes there too. Chalice cannot declare that configuration:
`async-invocations` puts it on a deployed stage (boto3; before `chalice deploy` on the functions
that exist already, so an upgraded webhook never invokes a processor without its destination,
and again after it), `fix_package` adds it as an `AWS::Lambda::EventInvokeConfig`. The
processor's role may send to the destination (the AsyncDestination statement); the webhooks'
functions (the webhooks' own and the API's, whose REST route /webhooks stays) may invoke it.

The live updates' endpoint (PUSH_ENDPOINT_ENV): every function needs the management endpoint of
the stage's WebSocket API (the fan-out posts there; /api/me answers the page's socket URL from it,
and without it the page polls). Chalice creates that API, so its id exists only after the first
`chalice deploy`: `push-endpoint` then sets the variable on every function of the stage (boto3),
and `configure` puts it into the stage config from `.chalice/deployed/<stage>.json` on every later
deploy, so an upgrade never leaves a function without it. `fix_package` sets it in the
one-artifact template (`Fn::Sub` on the API's logical id).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLICY_SOURCE = os.path.join(ROOT, "infra", "iam-policies.json")
APP_NAME = "socialinbox"
API_HANDLER = "api_handler"
PLACEHOLDER = "@ref:"
#: Stack outputs that are not queue URLs, and the environment variable the code reads them from.
OUTPUT_ENVIRONMENT: Dict[str, str] = {"SlaStateMachineArn": "SLA_STATE_MACHINE_ARN",
                                      # = chalicelib.config.STREAM_ARN_ENVIRONMENT (reports' stream)
                                      "ConversationEventsStreamArn": "CONVERSATION_EVENTS_STREAM_ARN",
                                      "ConversationsStreamArn": "CONVERSATIONS_STREAM_ARN",
                                      "MessagesStreamArn": "MESSAGES_STREAM_ARN",
                                      # chalicelib.listening.spikes publishes its alerts there
                                      "EscalationTopicArn": "ESCALATION_TOPIC_ARN",
                                      # chalicelib.outbound.storage keeps agents' files there
                                      "AttachmentsBucketName": "ATTACHMENTS_BUCKET"}
#: What the platform does for a function, not its code (excluded from the call check, listed here).
PLATFORM_SIDS = ("Logs", "Tracing", "EventSource", "AsyncDestination")
#: The actions Lambda's SQS poller needs on the queue a consumer reads.
EVENT_SOURCE_ACTIONS = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                        "sqs:ChangeMessageVisibility"]
#: What Lambda's poller needs on the DynamoDB stream a consumer reads (`ConsumesStream`).
STREAM_SOURCE_ACTIONS = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                         "dynamodb:ListStreams"]
#: The SQS consumers whose handler can answer partial batch responses (app.ingest_processor,
#: app.sla_timers); the outbox worker takes one message at a time, where a raise is the same.
PARTIAL_BATCH_FUNCTIONS = ("ingest_processor", "sla_timers")
#: = chalicelib.ingest.processor.PARTIAL_BATCH_ENV (not imported: this tool must not load the app).
PARTIAL_BATCH_ENV = "SQS_REPORT_BATCH_ITEM_FAILURES"
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
#: The functions the app invokes asynchronously, with Lambda's settings for those invocations
#: (put_function_event_invoke_config; `OnFailure` is a queue's short name): the webhooks hand each
#: delivery to the ingest processor so (chalicelib.ingest.webhook); `make run` and the tests run
#: them with the same settings (chalicelib.local.async_invoke).
ASYNC_INVOCATIONS: Dict[str, Dict[str, Any]] = {
    "ingest_processor": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 21600, "OnFailure": "ingest-dlq"},
}
#: A stage name: it goes into every resource name (`socialinbox-<stage>-...`), Lambda function and
#: S3 bucket names included, so lower case, digits and inner hyphens, short enough for
#: artifacts_bucket_name to stay within S3's 63 characters.
STAGE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,14}[a-z0-9]$|^[a-z]$")
#: = chalicelib.config's stage of `make run` and the tests: never deployed (its functions would
#: take the dev secrets and the cheap password hash).
LOCAL_STAGE = "local"
#: The stage whose function settings (timeouts, memory, concurrency, tracing) a new stage starts from.
NEW_STAGE_BASE = "dev"
#: = chalicelib.config's variable for the stage (not imported: this tool must not load the app).
STAGE_ENV = "SOCIALINBOX_STAGE"
#: = chalicelib.config.WEBHOOKS_FUNCTION: the functions reached through a Lambda function URL: the
#: webhooks' own, and the API's (the agent API and the page, chalicelib.api.function_url).
WEBHOOKS_FUNCTION = "webhooks"
URL_FUNCTIONS = (WEBHOOKS_FUNCTION, API_HANDLER)
#: What each URL is for: the name `function-url` prints it under, and its stack output's description.
URL_PURPOSES: Dict[str, Tuple[str, str]] = {
    WEBHOOKS_FUNCTION: ("webhooks", "Give each platform <this>webhooks/<platform> (docs/DEPLOY.md)"),
    API_HANDLER: ("inbox", "The inbox: agents open this URL; the agent API is under <this>api/ (docs/DEPLOY.md)"),
}
#: No IAM auth on the URLs: the platforms cannot sign AWS requests (their own signatures are
#: checked), nor can agents' browsers (the API's bearer tokens and per-agent rate limits are the gate).
URL_AUTH_TYPE = "NONE"
#: The function's resource-policy statements a public function URL needs (since October 2025 AWS
#: asks for both actions; the second is limited to calls made through the URL).
URL_PERMISSIONS: Dict[str, Dict[str, Any]] = {
    "FunctionUrlPublicAccess": {"Action": "lambda:InvokeFunctionUrl", "FunctionUrlAuthType": URL_AUTH_TYPE},
    "FunctionUrlInvokeFunction": {"Action": "lambda:InvokeFunction", "InvokedViaFunctionUrl": True},
}


def check_stage(stage: str) -> str:
    """The stage name, or a ValueError saying why it cannot be deployed."""
    if stage == LOCAL_STAGE:
        raise ValueError("stage 'local' is `make run`'s and is never deployed: its functions would take the dev "
                         "secrets and defaults (choose another name, e.g. staging)")
    if not STAGE_NAME.match(stage):
        raise ValueError(f"stage {stage!r}: 1-16 of a-z, 0-9 and inner hyphens, starting with a letter")
    return stage


def prefix(stage: str) -> str:
    return f"{APP_NAME}-{stage}"


def lambda_function_name(stage: str, function: str) -> str:
    """Chalice names the REST API's function after the app and stage only."""
    return prefix(stage) if function == API_HANDLER else f"{prefix(stage)}-{function}"


def queue_environment_name(short_name: str) -> str:
    """The variable chalicelib.runtime.queue_url reads before asking SQS (`ingest-dlq` ->
    `INGEST_DLQ_QUEUE_URL`)."""
    return short_name.upper().replace("-", "_") + "_QUEUE_URL"


# --- IAM ------------------------------------------------------------------------------------------


def policy_source() -> Dict[str, Any]:
    with open(POLICY_SOURCE, encoding="utf-8") as handle:
        return json.load(handle)


def functions() -> List[str]:
    return sorted(policy_source()["Functions"])


def expand_resource(resource: str, stage: str, region: str = "*", account: str = "*") -> str:
    """An ARN from the source's shorthand: `table/<short>[/index/*]`, `queue/<short>`,
    `stateMachine/<short>`, `execution/<short>`, `parameter/<name or *>`, `topic/<short>`,
    `function/<name>` (a Chalice function of the stage),
    `objects/<short>` (every object of the bucket `<prefix>-<short>-<account>`), `*`."""
    if resource == "*":
        return "*"
    kind, _, rest = resource.partition("/")
    form = _ARN_FORMS.get(kind)
    if form is None:
        raise ValueError(f"unknown resource shorthand {resource!r}")
    return form.format(region=region, account=account, prefix=prefix(stage), rest=rest)


_ARN_FORMS: Dict[str, str] = {
    "table": "arn:aws:dynamodb:{region}:{account}:table/{prefix}-{rest}",
    "queue": "arn:aws:sqs:{region}:{account}:{prefix}-{rest}",
    "stateMachine": "arn:aws:states:{region}:{account}:stateMachine:{prefix}-{rest}",
    "execution": "arn:aws:states:{region}:{account}:execution:{prefix}-{rest}:*",
    "parameter": "arn:aws:ssm:{region}:{account}:parameter/{prefix}/{rest}",
    "topic": "arn:aws:sns:{region}:{account}:{prefix}-{rest}",
    "objects": "arn:aws:s3:::{prefix}-{rest}-{account}/*",
    "function": "arn:aws:lambda:{region}:{account}:function:{prefix}-{rest}",
    # The live updates' WebSocket API (chalicelib.push): Chalice creates it, so its id is unknown
    # here; its stage is Chalice's `api_gateway_stage` ("api"), its connections' ids ours.
    "connections": "arn:aws:execute-api:{region}:{account}:*/api/*/@connections/{rest}",
}


def policy_document(function: str, stage: str, region: str = "*", account: str = "*") -> Dict[str, Any]:
    """The IAM policy of one function for one stage."""
    spec = policy_source()["Functions"][function]
    log_group = f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{lambda_function_name(stage, function)}"
    statements: List[Dict[str, Any]] = [
        {"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": [log_group + ":*"]},
        {"Sid": "Tracing", "Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
         "Resource": "*"},
    ]
    if spec.get("Consumes"):
        statements.append({"Sid": "EventSource", "Effect": "Allow", "Action": list(EVENT_SOURCE_ACTIONS),
                           "Resource": [expand_resource("queue/" + spec["Consumes"], stage, region, account)]})
    if spec.get("ConsumesStream"):
        table = expand_resource("table/" + spec["ConsumesStream"], stage, region, account)
        statements.append({"Sid": "EventSource", "Effect": "Allow", "Action": list(STREAM_SOURCE_ACTIONS),
                           "Resource": [table + "/stream/*"]})
    destination = (ASYNC_INVOCATIONS.get(function) or {}).get("OnFailure")
    if destination:  # Lambda sends the invocation records with the function's own role
        statements.append({"Sid": "AsyncDestination", "Effect": "Allow", "Action": ["sqs:SendMessage"],
                           "Resource": [expand_resource("queue/" + destination, stage, region, account)]})
    for statement in spec["Statement"]:
        statements.append({"Sid": statement["Sid"], "Effect": "Allow", "Action": list(statement["Action"]),
                           "Resource": [expand_resource(r, stage, region, account) for r in statement["Resource"]]})
    return {"Version": "2012-10-17", "Statement": statements}


def policy_file_name(stage: str, function: str) -> str:
    return f"policy-{stage}-{function}.json"


# --- stack outputs -> stage configuration ---------------------------------------------------------


def outputs_by_key(document: Any) -> Dict[str, str]:
    """`aws cloudformation describe-stacks` output (whole document, one stack, or its Outputs list)
    as {OutputKey: OutputValue}."""
    if isinstance(document, dict) and "Stacks" in document:
        [document] = document["Stacks"]
    if isinstance(document, dict) and "Outputs" in document:
        document = document["Outputs"]
    if isinstance(document, dict):
        return {str(k): str(v) for k, v in document.items()}
    return {item["OutputKey"]: item["OutputValue"] for item in document}


def output_environment(template: Mapping[str, Any]) -> Dict[str, str]:
    """{output key: environment variable} for every template output the code reads: each queue URL
    output (by the runtime's naming rule) and OUTPUT_ENVIRONMENT."""
    resources = template["Resources"]
    found: Dict[str, str] = {}
    for key, output in template.get("Outputs", {}).items():
        ref = output.get("Value", {}).get("Ref") if isinstance(output.get("Value"), dict) else None
        if ref in resources and resources[ref]["Type"] == "AWS::SQS::Queue":
            name = resources[ref]["Properties"]["QueueName"]["Fn::Sub"]
            found[key] = queue_environment_name(name.replace("socialinbox-${Stage}-", ""))
        elif key in OUTPUT_ENVIRONMENT:
            found[key] = OUTPUT_ENVIRONMENT[key]
    return found


def environment(template: Mapping[str, Any], outputs: Optional[Mapping[str, str]]) -> Dict[str, str]:
    """The stage's environment variables: the deployed values, or `@ref:` placeholders for the
    one-artifact template (resolved by `fix_package`). A missing output is an error: a function
    would otherwise fall back to lookups its policy does not allow."""
    env: Dict[str, str] = {}
    for key, variable in output_environment(template).items():
        if outputs is None:
            value = template["Outputs"][key]["Value"]
            env[variable] = PLACEHOLDER + (value["Ref"] if "Ref" in value else ".".join(value["Fn::GetAtt"]))
        elif key in outputs:
            env[variable] = outputs[key]
        else:
            raise KeyError(f"stack output {key} is missing: deploy the data stack first")
    return env


def region_and_account(outputs: Optional[Mapping[str, str]]) -> Tuple[str, str]:
    """From the state machine's ARN (arn:aws:states:<region>:<account>:...), else wildcards."""
    arn = (outputs or {}).get("SlaStateMachineArn", "")
    parts = arn.split(":")
    return (parts[3], parts[4]) if len(parts) > 4 else ("*", "*")


def stage_config(base: Mapping[str, Any], stage: str, template: Mapping[str, Any],
                 outputs: Optional[Mapping[str, str]], push_endpoint: Optional[str] = None) -> Dict[str, Any]:
    """`.chalice/config.json` with the stage fed from the stack: environment (and the deployed
    WebSocket API's endpoint once there is one), one policy per function. Everything else the
    stage says (memory, timeouts, concurrency) is kept."""
    check_stage(stage)
    config = copy.deepcopy(dict(base))
    _refuse_partial_batch_variable(config)
    stages = config.setdefault("stages", {})
    if stage not in stages:
        stages[stage] = copy.deepcopy(stages.get(NEW_STAGE_BASE, {}))
    stage_section = stages[stage]
    stage_section["autogen_policy"] = False
    stage_section.pop("iam_policy_file", None)
    variables = stage_section.setdefault("environment_variables", {})
    variables.update(environment(template, outputs))
    # The app derives its table and queue names, and whether it may use local defaults, from this
    # (chalicelib.config.stage); `chalice deploy` also sets it while importing the app, so the SQS
    # event sources name the stage's queues.
    variables[STAGE_ENV] = stage
    if push_endpoint:
        variables[PUSH_ENDPOINT_ENV] = push_endpoint
    per_function = stage_section.setdefault("lambda_functions", {})
    for function in functions():
        per_function.setdefault(function, {})["iam_policy_file"] = policy_file_name(stage, function)
    return config


def _refuse_partial_batch_variable(config: Mapping[str, Any]) -> None:
    """`chalice deploy` would give the variable to a function whose event source mapping it
    creates without ReportBatchItemFailures: failed messages would be deleted, so it is refused."""
    sections: List[Tuple[str, Any]] = [("", config)]
    for name, stage_section in (config.get("stages") or {}).items():
        sections.append((f"stages.{name}", stage_section))
        for function, settings in (stage_section.get("lambda_functions") or {}).items():
            sections.append((f"stages.{name}.lambda_functions.{function}", settings))
    for where, section in sections:
        if PARTIAL_BATCH_ENV in ((section or {}).get("environment_variables") or {}):
            raise ValueError(f"{PARTIAL_BATCH_ENV} in .chalice/config.json ({where or 'top level'}): it is set only "
                             "with the event source's ReportBatchItemFailures (fix-package, partial-batches)")


def configure(build_dir: str, stage: str, template: Mapping[str, Any],
              outputs: Optional[Mapping[str, str]], deployed_dir: Optional[str] = None) -> List[str]:
    """Write the build directory's stage config and policy files; returns the files written.
    `deployed_dir`: where `chalice deploy` records the stage (default: the checkout's)."""
    check_stage(stage)
    chalice_dir = os.path.join(build_dir, ".chalice")
    os.makedirs(chalice_dir, exist_ok=True)
    config_path = os.path.join(chalice_dir, "config.json")
    with open(os.path.join(ROOT, ".chalice", "config.json"), encoding="utf-8") as handle:
        base = json.load(handle)
    written = [config_path]
    # `make deploy` (outputs given) of a stage deployed before: its WebSocket API is known
    endpoint = deployed_push_endpoint(stage, deployed_dir) if outputs is not None else None
    _write_json(config_path, stage_config(base, stage, template, outputs, endpoint))
    region, account = region_and_account(outputs)
    for function in functions():
        path = os.path.join(chalice_dir, policy_file_name(stage, function))
        _write_json(path, policy_document(function, stage, region, account))
        written.append(path)
    return written


# --- the one-artifact template --------------------------------------------------------------------


def _walk(value: Any) -> Iterator[Dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _walk(child)
    elif isinstance(value, list):
        for child in value:
            yield from _walk(child)


def fix_package(package: Dict[str, Any], stage: str) -> Dict[str, Any]:
    """Make `chalice package --merge-template` output deployable as one stack:
    - `@ref:X` environment values become `{"Ref": "X"}`;
    - each SQS event source points at its queue with `Fn::GetAtt` (CloudFormation then creates
      the queue before the mapping);
    - each function gets the name `chalice deploy` would give it, which the log groups, alarms,
      dashboard and policies of the data stack expect;
    - the Stage parameter defaults to the packaged stage (the function names carry it);
    - each of URL_FUNCTIONS gets its function URL (`AWS::Lambda::Url`, AuthType NONE), the
      URL_PERMISSIONS statements and an output `<Function>Url` with the address; the API function
      traces in API_TRACING_MODE (only what API Gateway sampled);
    - every function logs with LOGGING_CONFIG (no START/END/REPORT lines);
    - the SQS event sources of PARTIAL_BATCH_FUNCTIONS get FunctionResponseTypes
      [ReportBatchItemFailures] (Chalice cannot set it) and those functions PARTIAL_BATCH_ENV, both
      together (checked by `partial_batch_problems`, a ValueError otherwise);
    - every function gets PUSH_ENDPOINT, the live updates' WebSocket API (Chalice declares the API
      and its three handlers itself; the endpoint only exists once it does);
    - each function of ASYNC_INVOCATIONS gets its `AWS::Lambda::EventInvokeConfig` (retries, event
      age, the on-failure destination queue), and the webhooks' functions depend on it, so an
      upgraded webhook never invokes a processor without its destination."""
    fixed = copy.deepcopy(package)
    resources = fixed["Resources"]
    arns, tables = {}, {}
    for logical, resource in resources.items():
        if resource.get("Type") == "AWS::DynamoDB::Table":
            name = resource["Properties"]["TableName"]
            tables[name["Fn::Sub"].replace("${Stage}", stage) if isinstance(name, dict) else name] = logical
        if resource.get("Type") == "AWS::SQS::Queue":
            name = resource["Properties"]["QueueName"]
            if isinstance(name, dict) and "Fn::Sub" in name:
                name = name["Fn::Sub"].replace("${Stage}", stage)
            arns[name] = logical
    for node in _walk(resources):
        variables = node.get("Variables") if isinstance(node.get("Variables"), dict) else None
        for key, value in list((variables or {}).items()):
            if isinstance(value, str) and value.startswith(PLACEHOLDER):
                target = value[len(PLACEHOLDER):]
                variables[key] = {"Fn::GetAtt": target.split(".", 1)} if "." in target else {"Ref": target}
        if node.get("Type") == "DynamoDB" and isinstance(node.get("Properties"), dict):
            # the app was packaged without the stack's outputs: its stream ARN is the `@ref:`
            # placeholder of the stage's variable, or the local form naming the table
            stream = str(node["Properties"].get("Stream", ""))
            table = stream.split(":table/", 1)[-1].split("/stream/", 1)[0]
            if stream.startswith(PLACEHOLDER) and "." in stream:
                node["Properties"]["Stream"] = {"Fn::GetAtt": stream[len(PLACEHOLDER):].split(".", 1)}
            elif stream.endswith("/stream/local") and table in tables:
                node["Properties"]["Stream"] = {"Fn::GetAtt": [tables[table], "StreamArn"]}
        if node.get("Type") == "SQS" and isinstance(node.get("Properties"), dict):
            props = node["Properties"]
            queue = _queue_name_of(props.get("Queue"))
            if queue in arns:
                props["Queue"] = {"Fn::GetAtt": [arns[queue], "Arn"]}
    for function in functions():
        logical = _logical_name(function)
        if resources.get(logical, {}).get("Type") == "AWS::Serverless::Function":
            resources[logical]["Properties"]["FunctionName"] = lambda_function_name(stage, function)
    for function in PARTIAL_BATCH_FUNCTIONS:
        resource = resources.get(_logical_name(function))
        if resource is None or resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        sources = [e for e in (props.get("Events") or {}).values() if e.get("Type") == "SQS"]
        for event in sources:
            event["Properties"]["FunctionResponseTypes"] = [REPORT_BATCH_ITEM_FAILURES]
        if sources:
            props.setdefault("Environment", {}).setdefault("Variables", {})[PARTIAL_BATCH_ENV] = "true"
    for function in URL_FUNCTIONS:
        _add_function_url(fixed, _logical_name(function))
    for function in ASYNC_INVOCATIONS:
        _add_event_invoke_config(fixed, function, stage, arns)
    _trace_api_pass_through(fixed)
    _quiet_packaged_platform_logs(fixed)
    _add_push_endpoint(fixed)
    if "Stage" in fixed.get("Parameters", {}):
        fixed["Parameters"]["Stage"]["Default"] = stage
    problems = partial_batch_problems(fixed)
    if problems:
        raise ValueError("partial batch responses: " + "; ".join(problems))
    return fixed


#: The live updates' WebSocket API in `chalice package` output, and the management endpoint the
#: functions reach it at (chalicelib.config.PUSH_ENDPOINT_ENV; the page's socket URL follows).
WEBSOCKET_API = "WebsocketAPI"
PUSH_ENDPOINT_ENV = "PUSH_ENDPOINT"
PUSH_ENDPOINT = {"Fn::Sub": "https://${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api"}


def _add_push_endpoint(template: Dict[str, Any]) -> None:
    """Every function learns where the WebSocket API's management endpoint is (the fan-out posts
    there, the API answers the page's socket URL); nothing when the app has no WebSocket API."""
    resources = template["Resources"]
    if resources.get(WEBSOCKET_API, {}).get("Type") != "AWS::ApiGatewayV2::Api":
        return
    for resource in resources.values():
        if resource.get("Type") == "AWS::Serverless::Function":
            variables = resource["Properties"].setdefault("Environment", {}).setdefault("Variables", {})
            variables[PUSH_ENDPOINT_ENV] = copy.deepcopy(PUSH_ENDPOINT)


def _add_function_url(template: Dict[str, Any], logical: str) -> None:
    """The function URL of a packaged function, its public permissions and its address as an output
    (nothing when the template has no such function)."""
    resources = template["Resources"]
    if resources.get(logical, {}).get("Type") not in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
        return
    resources[f"{logical}Url"] = {"Type": "AWS::Lambda::Url", "Properties": {
        "AuthType": URL_AUTH_TYPE, "TargetFunctionArn": {"Fn::GetAtt": [logical, "Arn"]}}}
    for sid, statement in URL_PERMISSIONS.items():
        resources[f"{logical}{sid}"] = {"Type": "AWS::Lambda::Permission", "Properties": dict(
            statement, FunctionName={"Ref": logical}, Principal="*")}
    template.setdefault("Outputs", {})[f"{logical}Url"] = {
        "Description": url_purpose(logical)[1], "Value": {"Fn::GetAtt": [f"{logical}Url", "FunctionUrl"]}}


def _add_event_invoke_config(template: Dict[str, Any], function: str, stage: str, queues: Mapping[str, str]) -> None:
    """A packaged function's asynchronous invocation settings (nothing when the template has no
    such function); the destination is the template's own queue."""
    logical = _logical_name(function)
    if template["Resources"].get(logical, {}).get("Type") not in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
        return
    settings = ASYNC_INVOCATIONS[function]
    queue = f"{prefix(stage)}-{settings['OnFailure']}"
    if queue not in queues:
        raise ValueError(f"{function}: its on-failure destination {queue} is not a queue of the template")
    config_logical = f"{logical}EventInvokeConfig"
    # The webhooks' functions invoke it: CloudFormation updates them only once this is in place.
    for caller in URL_FUNCTIONS:
        resource = template["Resources"].get(_logical_name(caller))
        if resource is not None:
            depends = resource.get("DependsOn") or []
            resource["DependsOn"] = sorted(set([depends] if isinstance(depends, str) else depends) | {config_logical})
    template["Resources"][config_logical] = {"Type": "AWS::Lambda::EventInvokeConfig", "Properties": {
        "FunctionName": {"Ref": logical}, "Qualifier": "$LATEST",
        "MaximumRetryAttempts": settings["MaximumRetryAttempts"],
        "MaximumEventAgeInSeconds": settings["MaximumEventAgeInSeconds"],
        "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queues[queue], "Arn"]}}}}}


def url_purpose(function: str) -> Tuple[str, str]:
    """(label, description) of a function's URL, by its short or logical name."""
    for name, purpose in URL_PURPOSES.items():
        if function in (name, _logical_name(name)):
            return purpose
    return function, f"The function URL of {function}"


def _logical_name(function: str) -> str:
    return "APIHandler" if function == API_HANDLER else "".join(p.title() for p in function.split("_"))


def partial_batch_problems(template: Mapping[str, Any]) -> List[str]:
    """Every function of a template (SAM or plain Lambda) whose PARTIAL_BATCH_ENV and event source
    response types disagree: the variable without ReportBatchItemFailures on each of its SQS event
    sources loses failed messages; the response type without the variable is harmless (the
    handler raises) but means the two were not set together. Empty when all agree."""
    resources = template.get("Resources") or {}
    functions = {k: r for k, r in resources.items()
                 if r.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function")}
    sources: Dict[str, List[Tuple[str, List[str]]]] = {k: [] for k in functions}
    for logical, resource in functions.items():
        for name, event in ((resource.get("Properties") or {}).get("Events") or {}).items():
            if event.get("Type") == "SQS":
                sources[logical].append((name, list((event.get("Properties") or {}).get("FunctionResponseTypes") or [])))
    names = {(r.get("Properties") or {}).get("FunctionName"): k for k, r in functions.items()}
    for logical, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        props = resource.get("Properties") or {}
        target = props.get("FunctionName")
        if isinstance(target, dict):
            target = target.get("Ref") or (target.get("Fn::GetAtt") or [None])[0]
        owner = target if target in functions else names.get(target)
        if owner is not None:
            sources[owner].append((logical, list(props.get("FunctionResponseTypes") or [])))
    problems = []
    for logical, resource in sorted(functions.items()):
        variables = ((resource.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        enabled = str(variables.get(PARTIAL_BATCH_ENV, "")).strip().lower() == "true"
        reporting = [name for name, types in sources[logical] if REPORT_BATCH_ITEM_FAILURES in types]
        silent = [name for name, types in sources[logical] if REPORT_BATCH_ITEM_FAILURES not in types]
        if enabled and not sources[logical]:
            problems.append(f"{logical} has {PARTIAL_BATCH_ENV} but no SQS event source")
        elif enabled and silent:
            problems.append(f"{logical} has {PARTIAL_BATCH_ENV} but {', '.join(silent)} lacks "
                            f"{REPORT_BATCH_ITEM_FAILURES}: failed messages would be deleted")
        elif reporting and not enabled:
            problems.append(f"{logical}: {', '.join(reporting)} has {REPORT_BATCH_ITEM_FAILURES} "
                            f"but the function lacks {PARTIAL_BATCH_ENV}")
    return problems


def _queue_name_of(value: Any) -> Optional[str]:
    """The queue name in Chalice's event source ARN (a plain ARN or an Fn::Sub of one)."""
    if isinstance(value, dict):
        value = value.get("Fn::Sub")
        if isinstance(value, list):
            value = value[0]
    if not isinstance(value, str):
        return None
    return value.rsplit(":", 1)[-1]


# --- partial batch responses on a deployed stage (`make deploy`) -----------------------------------

#: Mapping states in which a change may not be in force yet.
_SETTLING = ("Creating", "Enabling", "Disabling", "Updating")


def enable_partial_batches(client: Any, stage: str, environment: bool = True, timeout: float = 300.0,
                           sleep: Callable[[float], None] = time.sleep) -> List[str]:
    """ReportBatchItemFailures on the SQS event source mappings of PARTIAL_BATCH_FUNCTIONS, then
    (with `environment`) PARTIAL_BATCH_ENV on those functions, never the other way round: the
    variable is set only once every mapping of the function reports the response type and has
    settled. `client` is a boto3 Lambda client. Returns the functions now reporting.

    Without `environment` (before `aws cloudformation deploy` of the one-artifact template) only
    the existing mappings are changed, so the stack update that adds the variable finds them
    ready; a function that does not exist yet is skipped. `chalice deploy` rewrites each
    function's variables from the Chalice config, which never holds PARTIAL_BATCH_ENV: after it
    the consumers raise again (safe) until this runs."""
    done = []
    for function in PARTIAL_BATCH_FUNCTIONS:
        name = lambda_function_name(stage, function)
        mappings = _sqs_mappings(client, name)
        if not mappings:
            if environment:
                raise RuntimeError(f"{name}: no SQS event source mapping (deploy the functions first)")
            continue
        for uuid in [m["UUID"] for m in mappings]:
            # A mapping chalice deploy has just created or changed refuses updates until it settles.
            _wait(lambda uuid=uuid: client.get_event_source_mapping(UUID=uuid).get("State") not in _SETTLING,
                  timeout, sleep, f"{name}: event source mapping {uuid} does not settle")
            if REPORT_BATCH_ITEM_FAILURES not in (client.get_event_source_mapping(UUID=uuid)
                                                  .get("FunctionResponseTypes") or []):
                client.update_event_source_mapping(UUID=uuid, FunctionResponseTypes=[REPORT_BATCH_ITEM_FAILURES])
            _wait(lambda uuid=uuid: _reports(client.get_event_source_mapping(UUID=uuid)), timeout, sleep,
                  f"{name}: event source mapping {uuid} does not report {REPORT_BATCH_ITEM_FAILURES}")
        if environment:
            set_variable(client, name, PARTIAL_BATCH_ENV, "true", timeout, sleep)
        done.append(name)
    return done


def _sqs_mappings(client: Any, function_name: str) -> List[Dict[str, Any]]:
    found: List[Dict[str, Any]] = []
    try:
        for page in client.get_paginator("list_event_source_mappings").paginate(FunctionName=function_name):
            found += [m for m in page.get("EventSourceMappings", []) if ":sqs:" in m.get("EventSourceArn", "")]
    except client.exceptions.ResourceNotFoundException:
        return []
    return found


def _reports(mapping: Mapping[str, Any]) -> bool:
    return (mapping.get("State") not in _SETTLING
            and REPORT_BATCH_ITEM_FAILURES in (mapping.get("FunctionResponseTypes") or []))


def set_variable(client: Any, name: str, variable: str, value: str, timeout: float = 300.0,
                 sleep: Callable[[float], None] = time.sleep) -> bool:
    """Add one variable to what a deployed function has (after any update in progress, e.g. the
    one `chalice deploy` just started; RevisionId: a concurrent change fails this rather than being
    overwritten). Returns whether it changed anything."""
    _wait(lambda: client.get_function_configuration(FunctionName=name).get("LastUpdateStatus") != "InProgress",
          timeout, sleep, f"{name}: an update of the function is still in progress")
    current = client.get_function_configuration(FunctionName=name)
    variables = dict((current.get("Environment") or {}).get("Variables") or {})
    if variables.get(variable) == value:
        return False
    variables[variable] = value
    revision = {"RevisionId": current["RevisionId"]} if current.get("RevisionId") else {}
    client.update_function_configuration(FunctionName=name, Environment={"Variables": variables}, **revision)
    return True


def _wait(ready: Callable[[], bool], timeout: float, sleep: Callable[[float], None], failure: str) -> None:
    waited = 0.0
    while not ready():
        if waited >= timeout:
            raise RuntimeError(failure)
        sleep(2.0)
        waited += 2.0


# --- asynchronous invocations on a deployed stage (`make deploy`) ----------------------------------


def event_invoke_config(function: str, function_arn: str, stage: str) -> Dict[str, Any]:
    """put_function_event_invoke_config's arguments for one function of ASYNC_INVOCATIONS; the
    destination queue is in the function's region and account (read off its ARN)."""
    settings = ASYNC_INVOCATIONS[function]
    region, account = function_arn.split(":")[3:5]
    destination = expand_resource("queue/" + settings["OnFailure"], stage, region, account)
    return {"FunctionName": lambda_function_name(stage, function),
            "MaximumRetryAttempts": settings["MaximumRetryAttempts"],
            "MaximumEventAgeInSeconds": settings["MaximumEventAgeInSeconds"],
            "DestinationConfig": {"OnFailure": {"Destination": destination}}}


def configure_async_invocations(client: Any, stage: str, existing_only: bool = False) -> List[str]:
    """Put ASYNC_INVOCATIONS on the deployed functions of the stage (`client`: boto3 Lambda),
    replacing whatever was there; returns the functions configured. `existing_only` (before
    `chalice deploy`): a function not deployed yet is skipped, else it is an error."""
    done = []
    for function in ASYNC_INVOCATIONS:
        name = lambda_function_name(check_stage(stage), function)
        try:
            arn = client.get_function_configuration(FunctionName=name)["FunctionArn"]
        except client.exceptions.ResourceNotFoundException:
            if existing_only:
                continue
            raise RuntimeError(f"{name}: not deployed (run chalice deploy first)")
        client.put_function_event_invoke_config(**event_invoke_config(function, arn, stage))
        done.append(name)
    return done


# --- the live updates' endpoint on a deployed stage (`make deploy`) -------------------------------


def deployed_push_endpoint(stage: str, deployed_dir: Optional[str] = None) -> Optional[str]:
    """The management endpoint of the stage's WebSocket API as `chalice deploy` recorded it in
    `.chalice/deployed/<stage>.json` (wss://<id>.execute-api.<region>.<suffix>/api/ becomes
    https://.../api); None before the stage's first deploy."""
    path = os.path.join(deployed_dir or os.path.join(ROOT, ".chalice", "deployed"), f"{check_stage(stage)}.json")
    if not os.path.exists(path):
        return None
    resources = _load_json(path).get("resources") or []
    url = next((r.get("websocket_api_url") for r in resources if r.get("resource_type") == "websocket_api"), None)
    if not isinstance(url, str) or "://" not in url:
        return None
    return "https://" + url.split("://", 1)[1].rstrip("/")


def set_push_endpoint(client: Any, stage: str, endpoint: str, timeout: float = 300.0,
                      sleep: Callable[[float], None] = time.sleep) -> List[str]:
    """PUSH_ENDPOINT_ENV on every function of a deployed stage (`client`: boto3 Lambda); returns
    the functions it changed (none once `configure` has put it into the stage config)."""
    return [name for name in (lambda_function_name(stage, f) for f in functions())
            if set_variable(client, name, PUSH_ENDPOINT_ENV, endpoint, timeout, sleep)]


# --- function URLs on a deployed stage (`make deploy`) ----------------------------------------------


def ensure_function_url(client: Any, stage: str, function: str = WEBHOOKS_FUNCTION) -> str:
    """Create or bring back to URL_AUTH_TYPE the function URL of a deployed function, and the
    URL_PERMISSIONS statements of its resource policy (each added once; `chalice deploy` keeps
    both across upgrades). `client` is a boto3 Lambda client. Returns the URL (stable: it is
    derived once, on creation, and survives every later deploy)."""
    name = lambda_function_name(stage, function)
    try:
        current = client.get_function_url_config(FunctionName=name)
    except client.exceptions.ResourceNotFoundException:
        current = client.create_function_url_config(FunctionName=name, AuthType=URL_AUTH_TYPE)
    else:
        if current.get("AuthType") != URL_AUTH_TYPE:
            current = client.update_function_url_config(FunctionName=name, AuthType=URL_AUTH_TYPE)
    present = {statement.get("Sid") for statement in _resource_policy(client, name).get("Statement", [])}
    for sid, statement in URL_PERMISSIONS.items():
        if sid not in present:
            client.add_permission(FunctionName=name, StatementId=sid, Principal="*", **statement)
    return str(current["FunctionUrl"])


#: The API function traces only the requests API Gateway sampled (the REST API's TraceSampleRate):
#: through its function URL nothing samples upstream, and Lambda's own active tracing would record
#: the first request of every second and 5 % of the rest, i.e. nearly every request of a small team
#: ($5 per million traces, more than the REST API's $3.50 per million requests the URL saves).
#: Chalice can only switch tracing on (Active) or off for the REST API and its function together.
API_TRACING_MODE = "PassThrough"


def trace_only_sampled_requests(client: Any, stage: str, timeout: float = 300.0,
                                sleep: Callable[[float], None] = time.sleep) -> bool:
    """Put the deployed API function's tracing in API_TRACING_MODE (after the update `chalice
    deploy` may still be running; every deploy sets Active again, so `function-url` runs this
    each time). True when it changed anything."""
    name = lambda_function_name(stage, API_HANDLER)
    _wait(lambda: client.get_function_configuration(FunctionName=name).get("LastUpdateStatus") != "InProgress",
          timeout, sleep, f"{name}: an update of the function is still in progress")
    current = client.get_function_configuration(FunctionName=name)
    if (current.get("TracingConfig") or {}).get("Mode") == API_TRACING_MODE:
        return False
    revision = {"RevisionId": current["RevisionId"]} if current.get("RevisionId") else {}
    client.update_function_configuration(FunctionName=name, TracingConfig={"Mode": API_TRACING_MODE}, **revision)
    return True


def _trace_api_pass_through(template: Dict[str, Any]) -> None:
    """The packaged API function's tracing: API_TRACING_MODE where Chalice declared Active."""
    props = template["Resources"].get(_logical_name(API_HANDLER), {}).get("Properties") or {}
    if props.get("Tracing") == "Active":
        props["Tracing"] = API_TRACING_MODE


def _resource_policy(client: Any, name: str) -> Dict[str, Any]:
    try:
        return json.loads(client.get_policy(FunctionName=name)["Policy"])
    except client.exceptions.ResourceNotFoundException:
        return {}


# --- Lambda's own log lines (`make deploy`, `make package`) ------------------------------------------

#: Every function's logging, which Chalice cannot set: JSON, so Lambda's own platform lines carry a
#: level, and of those only WARN and above kept: no START, END and REPORT lines (about 350 bytes per
#: invocation, more than a webhook's own log line; CloudWatch's Duration, Errors and Throttles
#: metrics do not come from them). The app's lines are its own JSON on stdout (chalicelib.logs),
#: written as they are; ApplicationLogLevel filters nothing they hold (LOG_LEVEL does).
LOGGING_CONFIG: Dict[str, str] = {"LogFormat": "JSON", "SystemLogLevel": "WARN", "ApplicationLogLevel": "INFO"}


def quiet_platform_logs(client: Any, stage: str, timeout: float = 300.0,
                        sleep: Callable[[float], None] = time.sleep) -> List[str]:
    """Give each deployed function of the stage LOGGING_CONFIG (after any update in progress;
    `chalice deploy` leaves the setting alone, so later deploys keep it). `client` is a boto3
    Lambda client. Returns the functions changed; a function not deployed is skipped."""
    changed = []
    for function in functions():
        name = lambda_function_name(stage, function)
        try:
            _wait(lambda: client.get_function_configuration(FunctionName=name).get("LastUpdateStatus") != "InProgress",
                  timeout, sleep, f"{name}: an update of the function is still in progress")
            current = client.get_function_configuration(FunctionName=name)
        except client.exceptions.ResourceNotFoundException:
            continue
        if all((current.get("LoggingConfig") or {}).get(k) == v for k, v in LOGGING_CONFIG.items()):
            continue
        revision = {"RevisionId": current["RevisionId"]} if current.get("RevisionId") else {}
        client.update_function_configuration(FunctionName=name, LoggingConfig=dict(LOGGING_CONFIG), **revision)
        changed.append(name)
    return changed


def _quiet_packaged_platform_logs(template: Dict[str, Any]) -> None:
    """LOGGING_CONFIG on every function of a packaged template."""
    for resource in template["Resources"].values():
        if resource.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            resource["Properties"]["LoggingConfig"] = dict(LOGGING_CONFIG)


# --- the artefacts bucket (templates over CloudFormation's inline limit go through S3) ------------

# `aws cloudformation deploy` sends a template inline only up to 51,200 bytes; from S3
# (`--s3-bucket`) CloudFormation takes up to 1 MB (tests/test_deploy.py checks every deploy).
#: Uploaded templates are only read during the deploy that uploads them.
ARTIFACT_EXPIRY_DAYS = 30


def artifacts_bucket_name(stage: str, account: str, region: str) -> str:
    """One per stage, account and region (bucket names are global; the stack's region reads it)."""
    return f"{prefix(check_stage(stage))}-deploy-{account}-{region}"


def ensure_artifacts_bucket(s3: Any, account: str, region: str, stage: str, name: Optional[str] = None) -> str:
    """The stage's artefacts bucket, created on the first deploy and reused after: private (public
    access blocked), objects expiring after ARTIFACT_EXPIRY_DAYS. `name` is the operator's own
    bucket, used as it is. A bucket of that name owned by another account is an error (403), never
    written to. `s3` is a boto3 S3 client. Returns the bucket's name."""
    from botocore.exceptions import ClientError

    if name:
        return name
    bucket = artifacts_bucket_name(stage, account, region)
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=account)
        return bucket
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **where)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "expire-deploy-artifacts", "Status": "Enabled", "Filter": {"Prefix": ""},
         "Expiration": {"Days": ARTIFACT_EXPIRY_DAYS}}]})
    return bucket


# --- index migrations and backfills (`make deploy`; infra/index_migration.py, infra/backfills.py) ---

MIGRATION_COMMANDS = ("index-plan", "backfill")
INDEX_STEPS_DIR = os.path.join("out", "index-steps")
BACKFILL_CHECKPOINTS_DIR = os.path.join("out", "backfills")


def data_stack_name(stage: str) -> str:
    return f"{prefix(stage)}-data"


def _add_migration_commands(sub: Any) -> None:
    plan = sub.add_parser("index-plan", help="the expand/contract templates from the deployed data stack to the "
                                             "rendered one (writes expand-N.json, contract-N.json)")
    plan.add_argument("--stage", required=True)
    plan.add_argument("--template", default=os.path.join("out", "resources.json"), help="the target template")
    plan.add_argument("--out", default=INDEX_STEPS_DIR, help="where the step files go (old ones removed)")
    fill = sub.add_parser("backfill", help="run the registered backfills (infra/backfills.py) on the stage's tables")
    fill.add_argument("--stage", required=True)
    fill.add_argument("--page-size", type=int, default=None, help="items per Scan request (1-1000, default 100)")
    fill.add_argument("--checkpoints", default=BACKFILL_CHECKPOINTS_DIR, help="where an interrupted run resumes from")


def index_plan(cloudformation: Any, stage: str, target_path: str, out: str) -> List[str]:
    """Plan the index migration of the stage's data stack and write its step files; prints what
    each step does. Returns the files written (none: the ordinary single deploy)."""
    from infra import index_migration

    target = _load_json(target_path)
    deployed = index_migration.deployed_template(cloudformation, data_stack_name(check_stage(stage)))
    result = index_migration.plan(deployed, target)
    for line in index_migration.summary(result):
        print(line)
    return index_migration.write_steps(result, out)


def _run_migration(args: argparse.Namespace) -> int:
    import boto3

    if args.command == "index-plan":  # a refused plan is a ValueError: `main` prints it, exit 2
        index_plan(boto3.client("cloudformation"), args.stage, args.template, args.out)
        return 0
    from infra import backfills

    page_size = args.page_size or backfills.DEFAULT_PAGE_SIZE
    backfills.run_all(boto3.client("dynamodb"), check_stage(args.stage), backfills.BACKFILLS, page_size,
                      args.checkpoints)
    return 0


# --- secrets ----------------------------------------------------------------------------------------


def secret_names(template: Mapping[str, Any]) -> List[str]:
    """The SSM parameter names the app reads (the template's Metadata; CloudFormation cannot create
    SecureStrings, so the stack lists the names and `put_secrets` stores the values)."""
    return list(template["Metadata"]["SecretParameters"]["Names"])


def put_secrets(ssm: Any, stage: str, names: List[str], ask: Any) -> List[str]:
    """Store each secret `ask(name)` answers as a SecureString `/socialinbox-<stage>/<NAME>`
    (overwriting: this is also how secrets are rotated); an empty answer leaves it as it is.
    Returns the names written. Values are never printed or logged."""
    written = []
    for name in names:
        value = ask(name)
        if not value:
            continue
        ssm.put_parameter(Name=f"/{prefix(stage)}/{name}", Value=value, Type="SecureString", Overwrite=True)
        written.append(name)
    return written


def _asker(stream: Any) -> Any:
    """getpass on a terminal (nothing echoed), else one line of `stream` per name, in order."""
    if stream.isatty():
        import getpass

        return lambda name: getpass.getpass(f"{name} (empty: keep): ")
    return lambda name: stream.readline().rstrip("\r\n")


def _write_json(path: str, document: Any) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")


def _load_json(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    conf = sub.add_parser("configure", help="stage config + per-function policies into the build dir")
    conf.add_argument("--stage", required=True)
    conf.add_argument("--build", required=True)
    conf.add_argument("--template", help="rendered data stack (default: infra/resources.json)")
    conf.add_argument("--outputs", help="describe-stacks JSON; omit for the one-artifact package")
    fix = sub.add_parser("fix-package", help="make the merged chalice package deployable as one stack")
    fix.add_argument("--stage", required=True)
    fix.add_argument("package")
    partial = sub.add_parser("partial-batches", help="ReportBatchItemFailures on the stage's SQS consumers, "
                                                     "then their variable (boto3, after chalice deploy)")
    partial.add_argument("--stage", required=True)
    partial.add_argument("--mappings-only", action="store_true",
                         help="only the existing mappings (before deploying the one-artifact template)")
    invoke = sub.add_parser("async-invocations", help="retries, event age and the on-failure destination of "
                                                       "the functions invoked asynchronously (boto3)")
    invoke.add_argument("--stage", required=True)
    invoke.add_argument("--existing-only", action="store_true",
                        help="only the functions deployed already (before chalice deploy)")
    url = sub.add_parser("function-url", help="the webhooks' and the inbox's function URLs and their public "
                                              "permissions (boto3, after chalice deploy); prints both")
    url.add_argument("--stage", required=True)
    push = sub.add_parser("push-endpoint", help="PUSH_ENDPOINT (the stage's WebSocket API, from "
                                                ".chalice/deployed) on every function (boto3, after chalice deploy)")
    push.add_argument("--stage", required=True)
    logs = sub.add_parser("platform-logs", help="JSON logs without Lambda's START/END/REPORT lines on every "
                                                "function of the stage (boto3, after chalice deploy)")
    logs.add_argument("--stage", required=True)
    bucket = sub.add_parser("artifacts-bucket", help="create or reuse the stage's artefacts bucket; prints its name")
    bucket.add_argument("--stage", required=True)
    bucket.add_argument("--bucket", default="", help="your own bucket instead (used as it is)")
    secrets = sub.add_parser("put-secrets", help="SecureString parameters into SSM (asked, never echoed)")
    secrets.add_argument("--stage", required=True)
    secrets.add_argument("names", nargs="*", help="default: every name the template lists")
    _add_migration_commands(sub)
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command in MIGRATION_COMMANDS:
        return _run_migration(args)
    if args.command == "artifacts-bucket":
        import boto3

        session = boto3.session.Session()
        region = session.region_name or "us-east-1"
        account = "" if args.bucket else session.client("sts").get_caller_identity()["Account"]
        print(ensure_artifacts_bucket(session.client("s3", region_name=region), account, region,
                                      check_stage(args.stage), args.bucket))
    elif args.command == "put-secrets":
        import boto3

        names = args.names or secret_names(_load_json(os.path.join(ROOT, "infra", "resources.json")))
        written = put_secrets(boto3.client("ssm"), args.stage, names, _asker(sys.stdin))
        print(f"stored {len(written)} secret(s): {', '.join(written) or 'none'}")
    elif args.command == "partial-batches":
        import boto3

        done = enable_partial_batches(boto3.client("lambda"), args.stage, environment=not args.mappings_only)
        print(f"partial batch responses: {', '.join(done) or 'no function deployed yet'}"
              + (" (mappings only)" if args.mappings_only else ""))
    elif args.command == "async-invocations":
        import boto3

        done = configure_async_invocations(boto3.client("lambda"), args.stage, existing_only=args.existing_only)
        print(f"asynchronous invocations: {', '.join(done) or 'no function deployed yet'}")
    elif args.command == "function-url":
        import boto3

        client = boto3.client("lambda")
        for function in URL_FUNCTIONS:
            print(f"{url_purpose(function)[0]}: {ensure_function_url(client, check_stage(args.stage), function)}")
        trace_only_sampled_requests(client, args.stage)
    elif args.command == "push-endpoint":
        import boto3

        endpoint = deployed_push_endpoint(check_stage(args.stage))
        if endpoint is None:
            raise ValueError(f".chalice/deployed/{args.stage}.json names no WebSocket API: run chalice deploy first")
        changed = set_push_endpoint(boto3.client("lambda"), args.stage, endpoint)
        print(f"{PUSH_ENDPOINT_ENV}={endpoint} ({len(changed)} function(s) updated)")
    elif args.command == "platform-logs":
        import boto3

        changed = quiet_platform_logs(boto3.client("lambda"), check_stage(args.stage))
        print(f"platform log lines below WARN dropped: {', '.join(changed) or 'nothing to change'}")
    elif args.command == "configure":
        template = _load_json(args.template or os.path.join(ROOT, "infra", "resources.json"))
        outputs = outputs_by_key(_load_json(args.outputs)) if args.outputs else None
        for path in configure(args.build, args.stage, template, outputs):
            print(path)
    else:
        _write_json(args.package, fix_package(_load_json(args.package), args.stage))
    return 0


if __name__ == "__main__":
    sys.exit(main())
