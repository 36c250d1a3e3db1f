"""Deploy rehearsal: the operator's whole sequence against an emulated AWS account, no account needed.

    make deploy-rehearsal STAGE=staging          # = python -m infra.rehearsal --stage staging

In a copy of the checkout (so a real stage's `.chalice/deployed/` and `out/` are never touched) it
starts moto on a free loopback port, points the AWS CLI, Chalice and boto3 at it
(`AWS_ENDPOINT_URL`, dummy credentials, no config files) and runs, as an operator would:
`make deploy` (artefacts bucket, data stack, outputs, configure, `chalice deploy`, partial
batches, health), `make create-admin`, `make deploy` again (the upgrade) and `make teardown`. After
each step it checks what exists against what the app declares (`expectations`: its functions,
event sources, routes, the webhooks' function URL, the processor's asynchronous invocation settings (its
retries and the ingest DLQ as on-failure destination), the WebSocket API every function's PUSH_ENDPOINT names, the data stack's state machine and the policies of infra/deploy.py),
so a new route or event source is checked without editing this file; after the upgrade, that
nothing changed but code (`changes`); after teardown, that the functions are gone and the
tables kept.

The first deploy is of an older data stack (`older_template`: one index fewer on one table, one more
on another), so the upgrade runs an index migration (infra/index_migration.py): an expand step
before `chalice deploy`, a contract step after, checked by `migration_problems`.

The emulator's gaps are worked around in this harness only (infra/moto_gaps.py, GAPS): each is
named, says why, and has a `still_present` probe that tests/test_rehearsal.py runs, so the
workaround is removed when moto fixes it.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional

from infra import deploy
from infra.moto_gaps import GAPS, REGION, apply_workarounds

ROOT = deploy.ROOT
ACCOUNT = "123456789012"  # moto's default account
ADMIN_EMAIL = "rehearsal-admin@example.com"
#: What an upgrade may change: the code and what comes with it.
VOLATILE = ("CodeSha256", "LastModified", "RevisionId", "Version")


# --- the emulator and the operator's shell -----------------------------------------------------------


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def emulator() -> Iterator[str]:
    """moto on a free loopback port in this process (so the workarounds apply); yields its endpoint."""
    from moto.server import ThreadedMotoServer

    import logging
    import warnings

    apply_workarounds()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    # Resource types moto's CloudFormation skips are listed once by `not_emulated` instead.
    warnings.filterwarnings("ignore", message="Tried to parse .* not supported by moto")
    logging.getLogger("moto").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://localhost:{port}"  # GAPS: template-url-host
    finally:
        server.stop()


def operator_environment(endpoint: str, base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The shell of an operator whose AWS is the emulator: nothing of the caller's AWS settings,
    profiles, stage or test settings; dummy credentials; the endpoint for every client."""
    base = os.environ if base is None else base
    env = {k: v for k, v in base.items()
           if not k.startswith(("AWS_", "SOCIALINBOX_", "TEST_")) and k not in ("RESOURCE_PREFIX", "MAKEFLAGS",
                                                                                 "MAKELEVEL", "MFLAGS")}
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "rehearsal", "AWS_SECRET_ACCESS_KEY": "rehearsal",
                "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_PAGER": "", "AWS_XRAY_SDK_ENABLED": "false"})
    return env


def workspace() -> str:
    """A copy of the checkout's files (tracked and new, not ignored) with the shared .venv linked."""
    target = tempfile.mkdtemp(prefix="socialinbox-rehearsal-")
    try:
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                                capture_output=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        listed = []
    if listed:
        for name in filter(None, listed):
            source = os.path.join(ROOT, name)
            if os.path.isfile(source) and not name.startswith((".venv", "build/", "out/", ".chalice/deployed")):
                os.makedirs(os.path.dirname(os.path.join(target, name)), exist_ok=True)
                shutil.copy2(source, os.path.join(target, name))
    else:
        shutil.copytree(ROOT, target, dirs_exist_ok=True, symlinks=True, ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "out", "deployed", "__pycache__", ".pytest_cache", ".localdata"))
    os.symlink(os.path.realpath(os.path.join(ROOT, ".venv")), os.path.join(target, ".venv"))
    return target


def make(workdir: str, env: Mapping[str, str], *arguments: str, stdin: str = "") -> str:
    """One `make` as the operator types it; its output is shown as it comes, each line with the
    seconds since the step started, and returned. A failure raises."""
    print(f"\n$ make {' '.join(arguments)}", flush=True)
    started = time.monotonic()
    process = subprocess.Popen(["make", *arguments], cwd=workdir, env=dict(env), text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(stdin)
    process.stdin.close()
    lines = []
    for line in process.stdout:
        lines.append(line)
        print(f"{time.monotonic() - started:6.1f} | {line}", end="", flush=True)
    code = process.wait()
    if code != 0:
        raise RehearsalFailed(f"make {' '.join(arguments)} failed ({code})")
    return "".join(lines)


class RehearsalFailed(Exception):
    """A step failed or what exists is not what the app declares."""


# --- what the app declares ----------------------------------------------------------------------------


def expectations(app: Any, stage: str, template: Mapping[str, Any], region: str = REGION,
                 account: str = ACCOUNT) -> Dict[str, Any]:
    """What a deployed stage must have, from the app (a Chalice object imported with the stage's
    configuration, as `chalice deploy` imports it) and the rendered data stack."""
    functions: Dict[str, Any] = {}
    if app.routes:
        functions[deploy.API_HANDLER] = {}
    sqs: List[Dict[str, Any]] = []
    streams: List[Dict[str, Any]] = []
    schedules: List[Dict[str, Any]] = []
    for source in app.event_sources:
        functions[source.name] = {}
        kind = type(source).__name__
        if kind == "SQSEventConfig":
            queue_arn = source.queue_arn or f"arn:aws:sqs:{region}:{account}:{source.queue}"
            sqs.append({"function": source.name, "source": queue_arn, "batch_size": source.batch_size,
                        "window": source.maximum_batching_window_in_seconds})
        elif kind in ("DynamoDBEventConfig", "KinesisEventConfig"):
            streams.append({"function": source.name, "source": getattr(source, "stream_arn", None)
                            or getattr(source, "stream", None), "batch_size": source.batch_size})
        elif kind == "ScheduledEventConfig":
            expression = source.schedule_expression
            schedules.append({"function": source.name, "expression": expression if isinstance(expression, str)
                              else expression.to_string()})
    for name in getattr(app, "pure_lambda_functions", []) or []:
        functions[getattr(name, "name", name)] = {}
    # The live updates' WebSocket handlers (Chalice deploys them and their API under these names).
    for handler in (getattr(app, "websocket_handlers", None) or {}).values():
        functions[handler.name] = {}
    for function in functions:
        functions[function] = {
            "name": deploy.lambda_function_name(stage, function),
            "policy": deploy.policy_document(function, stage, region, account)
            if function in deploy.functions() else None}
    routes: Dict[str, List[str]] = {path: sorted(methods) for path, methods in app.routes.items()}
    state_machines = sorted(
        resource["Properties"]["StateMachineName"]["Fn::Sub"].replace("${Stage}", stage)
        for resource in template["Resources"].values() if resource["Type"] == "AWS::StepFunctions::StateMachine")
    invoked = {function: {"retries": settings["MaximumRetryAttempts"], "max_age": settings["MaximumEventAgeInSeconds"],
                          "on_failure": deploy.expand_resource("queue/" + settings["OnFailure"], stage, region, account)}
               for function, settings in deploy.ASYNC_INVOCATIONS.items() if function in functions}
    return {"stage": stage, "functions": functions, "sqs": sqs, "streams": streams, "schedules": schedules,
            "routes": routes, "state_machines": state_machines, "async_invocations": invoked,
            "websocket": bool(getattr(app, "websocket_handlers", None)),
            "function_urls": sorted(f for f in functions if f in deploy.URL_FUNCTIONS)}


# --- what exists ----------------------------------------------------------------------------------------


def snapshot(session: Any, stage: str, rest_api_id: Optional[str]) -> Dict[str, Any]:
    """Everything of the stage the emulator holds, keyed by what identifies it (no timestamps)."""
    lam, iam = session.client("lambda"), session.client("iam")
    stage_prefix = deploy.prefix(stage)
    functions: Dict[str, Any] = {}
    for page in lam.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            name = function["FunctionName"]
            if name != stage_prefix and not name.startswith(stage_prefix + "-"):
                continue
            role_name = function["Role"].rsplit("/", 1)[-1]
            policies = [iam.get_role_policy(RoleName=role_name, PolicyName=p)["PolicyDocument"]
                        for p in iam.list_role_policies(RoleName=role_name)["PolicyNames"]]
            concurrency = lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
            functions[name] = {
                "arn": function["FunctionArn"], "role": function["Role"], "policies": policies,
                "environment": (function.get("Environment") or {}).get("Variables") or {},
                "timeout": function["Timeout"], "memory": function["MemorySize"], "concurrency": concurrency,
                "handler": function["Handler"], "async": _async_invocations(lam, name), **_url(lam, name)}

    def ours(function_arn: str) -> Optional[str]:
        """The stage's function named by an ARN, else None (so what outlives a function is seen)."""
        name = function_arn.split(":function:", 1)[-1].split(":", 1)[0]
        return name if name == stage_prefix or name.startswith(stage_prefix + "-") else None

    mappings = []
    for page in lam.get_paginator("list_event_source_mappings").paginate():
        for mapping in page["EventSourceMappings"]:
            if ours(mapping["FunctionArn"]):
                mappings.append({"uuid": mapping["UUID"], "function": ours(mapping["FunctionArn"]),
                                 "source": mapping["EventSourceArn"], "batch_size": mapping.get("BatchSize"),
                                 "window": mapping.get("MaximumBatchingWindowInSeconds"),
                                 "response_types": sorted(mapping.get("FunctionResponseTypes") or [])})
    events = session.client("events")
    schedules = []
    for rule in events.list_rules()["Rules"]:
        for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
            if ours(target["Arn"]):
                schedules.append({"rule": rule["Name"], "expression": rule.get("ScheduleExpression"),
                                  "function": ours(target["Arn"]), "state": rule.get("State")})
    roles = sorted(r["RoleName"] for page in iam.get_paginator("list_roles").paginate() for r in page["Roles"]
                   if r["RoleName"].startswith(stage_prefix + "-"))
    sfn = session.client("stepfunctions")
    machines = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]
                if m["name"].startswith(stage_prefix + "-")}
    sqs = session.client("sqs")
    queues = sorted(_queue_path(url) for url in sqs.list_queues(QueueNamePrefix=stage_prefix + "-").get("QueueUrls", []))
    tables = sorted(t for t in session.client("dynamodb").list_tables()["TableNames"]
                    if t.startswith(stage_prefix + "-"))
    return {"functions": functions, "roles": roles,
            "mappings": sorted(mappings, key=lambda m: (m["function"], m["source"])),
            "schedules": sorted(schedules, key=lambda s: s["function"]), "state_machines": machines,
            "queues": queues, "tables": tables, "api": _api(session, rest_api_id, functions),
            "websocket": _websocket_endpoint(session, stage)}


def _websocket_endpoint(session: Any, stage: str) -> Optional[str]:
    """The management endpoint of the stage's WebSocket API (Chalice names it
    `<app>-<stage>-websocket-api`, its stage "api"), None when there is none."""
    gateway = session.client("apigatewayv2")
    name = f"{deploy.prefix(stage)}-websocket-api"
    found = [a["ApiId"] for a in gateway.get_apis().get("Items", [])
             if a.get("Name") == name and a.get("ProtocolType") == "WEBSOCKET"]
    return f"https://{found[0]}.execute-api.{session.region_name}.amazonaws.com/api" if len(found) == 1 else None


def _async_invocations(lam: Any, name: str) -> Optional[Dict[str, Any]]:
    """A function's asynchronous invocation settings (retries, event age, on-failure destination),
    None when it has none of its own."""
    try:
        config = lam.get_function_event_invoke_config(FunctionName=name)
    except lam.exceptions.ResourceNotFoundException:
        return None
    return {"retries": config.get("MaximumRetryAttempts"), "max_age": config.get("MaximumEventAgeInSeconds"),
            "on_failure": ((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")}


def _url(lam: Any, name: str) -> Dict[str, Any]:
    """A function's URL (auth type, the function it calls) and what its resource policy lets anyone
    (principal `*`) do."""
    try:
        config = lam.get_function_url_config(FunctionName=name)
        url: Optional[Dict[str, str]] = {"url": config["FunctionUrl"], "auth": config["AuthType"],
                                         "target": config["FunctionArn"]}
    except lam.exceptions.ResourceNotFoundException:
        url = None
    try:
        statements = json.loads(lam.get_policy(FunctionName=name)["Policy"]).get("Statement", [])
    except lam.exceptions.ResourceNotFoundException:
        statements = []
    public = sorted(s["Action"] for s in statements if s.get("Principal") in ("*", {"AWS": "*"}))
    return {"url": url, "public": public}


def _api(session: Any, rest_api_id: Optional[str], functions: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    if not rest_api_id:
        return None
    gateway = session.client("apigateway")
    try:
        gateway.get_rest_api(restApiId=rest_api_id)
    except gateway.exceptions.NotFoundException:
        return None
    routes: Dict[str, List[str]] = {}
    targets = set()
    for page in gateway.get_paginator("get_resources").paginate(restApiId=rest_api_id, embed=["methods"]):
        for resource in page["items"]:
            methods = sorted(m for m in (resource.get("resourceMethods") or {}) if m != "OPTIONS")
            if methods:
                routes[resource["path"]] = methods
            for method in methods:
                uri = gateway.get_integration(restApiId=rest_api_id, resourceId=resource["id"],
                                              httpMethod=method).get("uri", "")
                targets.update(name for name in functions if f":function:{name}/" in uri)
    stages = {s["stageName"]: s.get("variables") or {} for s in gateway.get_stages(restApiId=rest_api_id)["item"]}
    return {"id": rest_api_id, "routes": routes, "stages": stages, "targets": sorted(targets)}


# --- checks ----------------------------------------------------------------------------------------------


def problems(expected: Mapping[str, Any], found: Mapping[str, Any]) -> List[str]:
    """Every way the deployed stage differs from what the app declares; empty when it matches."""
    stage = expected["stage"]
    wrong: List[str] = []
    functions = found["functions"]
    wanted = {spec["name"]: short for short, spec in expected["functions"].items()}
    for name in sorted(set(wanted) - set(functions)):
        wrong.append(f"function {name} is missing")
    for name in sorted(set(functions) - set(wanted)):
        wrong.append(f"function {name} exists but the app declares no such function")
    roles = [f["role"] for f in functions.values()]
    for name, short in sorted(wanted.items()):
        function = functions.get(name)
        if function is None:
            continue
        policy = expected["functions"][short]["policy"]
        if policy is None:
            wrong.append(f"{name}: no policy in infra/iam-policies.json")
        elif function["policies"] != [policy]:
            wrong.append(f"{name}: its role's policy is not infra/deploy.py's policy for {short}")
        if roles.count(function["role"]) > 1:
            wrong.append(f"{name}: shares its role {function['role']}")
        wrong += _environment_problems(name, short, function["environment"], stage, found)
        endpoint = function["environment"].get(deploy.PUSH_ENDPOINT_ENV)
        if expected.get("websocket") and found.get("websocket") and endpoint != found["websocket"]:
            wrong.append(f"{name}: {deploy.PUSH_ENDPOINT_ENV}={endpoint!r}, not the stage's WebSocket API "
                         f"{found['websocket']} (its pages would poll)")
        wrong += _url_problems(name, short in expected["function_urls"], function)
        invoked = (expected.get("async_invocations") or {}).get(short)
        if function.get("async") != invoked:
            wrong.append(f"{name}: asynchronous invocations {function.get('async')}, expected {invoked}"
                         + (" (a failed hand-off would be lost)" if invoked else ""))
    mappings = found["mappings"]
    for source in expected["sqs"] + expected["streams"]:
        name = deploy.lambda_function_name(stage, source["function"])
        matching = [m for m in mappings if m["function"] == name and m["source"] == source["source"]]
        if len(matching) != 1:
            on = sorted(m["source"] for m in mappings if m["function"] == name)
            wrong.append(f"{name}: {len(matching)} mappings on {source['source']} (it has {on})")
            continue
        mapping = matching[0]
        if mapping["batch_size"] != source["batch_size"]:
            wrong.append(f"{name}: batch size {mapping['batch_size']}, the app says {source['batch_size']}")
        if "window" in source and (mapping["window"] or 0) != (source["window"] or 0):
            wrong.append(f"{name}: batching window {mapping['window']}, the app says {source['window']}")
        reports = deploy.REPORT_BATCH_ITEM_FAILURES in mapping["response_types"]
        variable = functions.get(name, {}).get("environment", {}).get(deploy.PARTIAL_BATCH_ENV) == "true"
        if reports != variable or (source["function"] in deploy.PARTIAL_BATCH_FUNCTIONS) != variable:
            wrong.append(f"{name}: partial batch responses: mapping {mapping['response_types']}, "
                         f"{deploy.PARTIAL_BATCH_ENV}={variable}")
    declared = {(s["function"], s["source"]) for s in expected["sqs"] + expected["streams"]}
    for mapping in mappings:
        short = wanted.get(mapping["function"])
        if (short, mapping["source"]) not in declared:
            wrong.append(f"{mapping['function']}: a mapping on {mapping['source']} the app does not declare")
    for schedule in expected["schedules"]:
        name = deploy.lambda_function_name(stage, schedule["function"])
        rules = [s for s in found["schedules"] if s["function"] == name]
        if [(s["expression"], s["state"]) for s in rules] != [(schedule["expression"], "ENABLED")]:
            wrong.append(f"{name}: schedules {rules}, the app says {schedule['expression']}")
    for machine in expected["state_machines"]:
        if machine not in found["state_machines"]:
            wrong.append(f"state machine {machine} is missing")
    if expected.get("websocket") and not found.get("websocket"):
        wrong.append("the WebSocket API is missing")
    api = found["api"]
    if expected["routes"]:
        if api is None:
            wrong.append("the REST API is missing")
        else:
            for path, methods in sorted(expected["routes"].items()):
                if api["routes"].get(path) != methods:
                    wrong.append(f"route {path}: {api['routes'].get(path)}, the app says {methods}")
            for path in sorted(set(api["routes"]) - set(expected["routes"])):
                wrong.append(f"route {path} exists but the app declares none")
            if api["targets"] != [deploy.lambda_function_name(stage, deploy.API_HANDLER)]:
                wrong.append(f"the routes call {api['targets']}, not the API function alone")
            if not api["stages"]:
                wrong.append("the REST API has no stage")
    return wrong


def _url_problems(name: str, wanted: bool, function: Mapping[str, Any]) -> List[str]:
    """The function URLs of URL_FUNCTIONS (the webhooks', the inbox's): public (AuthType NONE, both
    permissions for anyone) and calling their own function; no other function reachable from the
    internet but through the REST API."""
    url, public = function.get("url"), function.get("public") or []
    if not wanted:
        return ([f"{name}: has a function URL the app does not declare"] if url else []) + \
            ([f"{name}: anyone may {public}"] if public else [])
    if url is None:
        return [f"{name}: its function URL is missing"]
    wrong = []
    if url["auth"] != deploy.URL_AUTH_TYPE:
        wrong.append(f"{name}: function URL auth {url['auth']}, not {deploy.URL_AUTH_TYPE}")
    if url["target"] != function["arn"]:
        wrong.append(f"{name}: its function URL calls {url['target']}, not {function['arn']}")
    actions = sorted(statement["Action"] for statement in deploy.URL_PERMISSIONS.values())
    if public != actions:
        wrong.append(f"{name}: anyone may {public}, the URL needs {actions}")
    return wrong


def _environment_problems(name: str, short: str, variables: Mapping[str, str], stage: str,
                          found: Mapping[str, Any]) -> List[str]:
    """The stage's variables: its own name (never local), queue URLs of this stage's queues, the
    state machine this stage has."""
    wrong = []
    if variables.get(deploy.STAGE_ENV) != stage:
        wrong.append(f"{name}: {deploy.STAGE_ENV}={variables.get(deploy.STAGE_ENV)!r}, not {stage!r}")
    for variable, value in sorted(variables.items()):
        if variable.endswith("_QUEUE_URL") and _queue_path(value) not in found["queues"]:
            wrong.append(f"{name}: {variable}={value} is not a queue of the stage")
        if variable == "SLA_STATE_MACHINE_ARN" and value not in found["state_machines"].values():
            wrong.append(f"{name}: {variable}={value} is not a state machine of the stage")
    return wrong


def _queue_path(url: str) -> str:
    """`/<account>/<name>`: a queue URL's identity, whichever endpoint host it was read through."""
    from urllib.parse import urlparse

    return urlparse(url).path


def changes(before: Any, after: Any, where: str = "") -> List[str]:
    """What differs between two snapshots, ignoring VOLATILE keys (what a code update changes)."""
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after), key=str):
            if key in VOLATILE:
                continue
            if key not in after:
                found.append(f"{where}/{key}: removed")
            elif key not in before:
                found.append(f"{where}/{key}: added")
            else:
                found += changes(before[key], after[key], f"{where}/{key}")
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [c for i, (b, a) in enumerate(zip(before, after)) for c in changes(b, a, f"{where}[{i}]")]
    return [] if before == after else [f"{where}: {json.dumps(before, default=str)[:200]} -> "
                                       f"{json.dumps(after, default=str)[:200]}"]


# --- the health check `make deploy` runs (GAPS: no-lambda-runtime) -----------------------------------------


def health(stage: str) -> int:
    """GET /health through the app, in this process, with the deployed API function's variables
    (read from the emulator) against the emulator: the configuration the function got reaches
    the stage's tables and queues. Asked through both front doors (the REST API's event, the
    function URL's); 0 when both answer 200."""
    import boto3

    name = deploy.lambda_function_name(stage, deploy.API_HANDLER)
    variables = boto3.client("lambda").get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    os.environ.update(variables)
    os.environ["AWS_LAMBDA_FUNCTION_NAME"] = name  # as in Lambda: the app refuses a local stage
    sys.path.insert(0, os.path.join(os.getcwd(), "build", "lambda"))
    from chalice.test import Client

    import app  # noqa: E402  (the build's: what was deployed)

    with tempfile.TemporaryDirectory() as nowhere, Client(app.app, stage, project_dir=nowhere) as client:
        answer = client.http.get("/health")  # (no project dir: only the deployed variables apply)
    print(answer.status_code, answer.body.decode()[:300])
    # The same through the inbox's function URL: its payload format 2.0 event, as Lambda hands it over.
    through_url = app.app({"version": "2.0", "routeKey": "$default", "rawPath": "/health", "rawQueryString": "",
                           "headers": {}, "isBase64Encoded": False, "requestContext": {
                               "requestId": "rehearsal", "http": {"method": "GET", "path": "/health",
                                                                  "sourceIp": "127.0.0.1"}}}, None)
    print("function URL:", through_url["statusCode"], str(through_url.get("body"))[:300])
    return 0 if answer.status_code == 200 and through_url["statusCode"] == 200 else 1


# --- the upgrade's index migration ------------------------------------------------------------------------

#: The older data stack the first deploy installs: a table without one of its indexes (the upgrade
#: creates it before the new code) and a table with an index the target no longer has (deleted after).
OLDER_MISSING = ("ReportCyclesTable", "by-day")
OLDER_EXTRA = ("QuarantineTable", {"IndexName": "rehearsal-retired",
                                   "KeySchema": [{"AttributeName": "item_id", "KeyType": "HASH"}],
                                   "Projection": {"ProjectionType": "KEYS_ONLY"}})


def older_template(template: Mapping[str, Any]) -> Dict[str, Any]:
    """`template` as an older release had it: OLDER_MISSING's index absent, OLDER_EXTRA's present."""
    from infra import index_migration

    older = json.loads(json.dumps(template))
    (missing_table, missing), (extra_table, extra) = OLDER_MISSING, OLDER_EXTRA
    properties = older["Resources"][missing_table]["Properties"]
    gsis = index_migration.indexes(properties)
    if missing not in gsis:  # the template changed under the rehearsal
        raise RehearsalFailed(f"{missing_table} has no index {missing!r} any more: choose another in OLDER_MISSING")
    older["Resources"][missing_table]["Properties"] = index_migration.with_indexes(
        properties, [g for name, g in gsis.items() if name != missing])
    properties = older["Resources"][extra_table]["Properties"]
    older["Resources"][extra_table]["Properties"] = index_migration.with_indexes(
        properties, [*index_migration.indexes(properties).values(), extra])
    return older


def migration_problems(output: str, session: Any, stage: str, target: Mapping[str, Any]) -> List[str]:
    """After the upgrade from `older_template`: the expand step ran before `chalice deploy` and the
    contract step after it, the stack's template is the target, each table has the target's indexes."""
    from infra import index_migration

    wrong = []
    order = ["index migration expand-1", "index migration: expand step 1", f"chalice deploy --stage {stage}",
             "index migration: contract step 1"]
    positions = [output.find(step) for step in order]
    if -1 in positions or positions != sorted(positions):
        wrong.append(f"the upgrade's steps ran out of order or not at all: {dict(zip(order, positions))}")
    body = session.client("cloudformation").get_template(StackName=deploy.data_stack_name(stage),
                                                         TemplateStage="Original")["TemplateBody"]
    if (json.loads(body) if isinstance(body, str) else body) != target:
        wrong.append("the data stack's template is not the target after the upgrade")
    dynamodb = session.client("dynamodb")
    for logical, properties in index_migration.tables(target).items():
        name = properties["TableName"]["Fn::Sub"].replace("${Stage}", stage)
        found = sorted(i["IndexName"] for i in dynamodb.describe_table(TableName=name)["Table"]
                       .get("GlobalSecondaryIndexes", []))
        if found != sorted(index_migration.indexes(properties)):
            wrong.append(f"{name}: indexes {found}, the target has {sorted(index_migration.indexes(properties))}")
    return wrong


# --- the rehearsal -------------------------------------------------------------------------------------------


def _declared(workdir: str, stage: str) -> Dict[str, Any]:
    """`expectations` of the built app, imported with the stage's configuration as `chalice deploy`
    imports it (in this process: the rehearsal imports it once, for one stage)."""
    build = os.path.join(workdir, "build", "lambda")
    with open(os.path.join(build, ".chalice", "config.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    variables = dict(config.get("environment_variables") or {})
    variables.update(config["stages"][stage].get("environment_variables") or {})
    os.environ.update(variables)
    with open(os.path.join(workdir, "out", "resources.json"), encoding="utf-8") as handle:
        template = json.load(handle)  # the data stack as deployed
    sys.path.insert(0, build)
    import app  # noqa: E402

    return expectations(app.app, stage, template)


def not_emulated(session: Any, stack_name: str, template: Mapping[str, Any]) -> List[str]:
    """Resource types of the template the emulator's CloudFormation did not create (alarms, metric
    filters...): deployed for real by AWS, not rehearsed here."""
    listed = session.client("cloudformation").list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
    created = {r.get("ResourceType") for r in listed}
    return sorted({r["Type"] for r in template["Resources"].values()} - created)


def _rest_api_id(workdir: str, stage: str) -> Optional[str]:
    path = os.path.join(workdir, ".chalice", "deployed", f"{stage}.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        resources = json.load(handle).get("resources", [])
    return next((r.get("rest_api_id") for r in resources if r.get("resource_type") == "rest_api"), None)


def _admins(session: Any, stage: str) -> List[str]:
    table = f"{deploy.prefix(stage)}-agents"
    items = session.client("dynamodb").scan(TableName=table).get("Items", [])
    return sorted(i.get("email", {}).get("S", "") for i in items if i.get("role", {}).get("S") == "admin")


def _require(wrong: List[str], after: str) -> None:
    if wrong:
        raise RehearsalFailed(f"after {after}:\n  " + "\n  ".join(wrong))
    print(f"checked after {after}: as expected", flush=True)


def rehearse(stage: str, keep: bool = False) -> Dict[str, float]:
    """The whole sequence; returns each step's seconds. Raises RehearsalFailed."""
    import boto3

    deploy.check_stage(stage)
    timings: Dict[str, float] = {}
    workdir = workspace()
    print(f"workspace: {workdir}", flush=True)
    succeeded = False
    try:
        with emulator() as endpoint:
            env = operator_environment(endpoint)
            os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
            for k in [k for k in os.environ if k.startswith(("SOCIALINBOX_", "TEST_")) or k == "RESOURCE_PREFIX"]:
                del os.environ[k]
            session = boto3.session.Session(region_name=REGION)
            here = os.path.abspath(workdir)
            checker = f"{os.path.join(here, '.venv', 'bin', 'python')} -m infra.rehearsal --health"
            steps: List[Any] = [("deploy", ["deploy", f"STAGE={stage}", f"HEALTH_CHECK={checker} --stage {stage}"], "")]
            resources = os.path.join(workdir, "infra", "resources.json")
            with open(resources, encoding="utf-8") as handle:
                current = handle.read()
            with open(resources, "w", encoding="utf-8") as handle:  # the release deployed first
                json.dump(older_template(json.loads(current)), handle, indent=2)
            started = time.monotonic()
            make(workdir, env, *steps[0][1])
            timings["deploy"] = time.monotonic() - started
            expected = _declared(workdir, stage)
            first = snapshot(session, stage, _rest_api_id(workdir, stage))
            _require(problems(expected, first), "the first deploy")
            with open(os.path.join(workdir, "out", "resources.json"), encoding="utf-8") as handle:
                skipped = not_emulated(session, f"{deploy.prefix(stage)}-data", json.load(handle))
            print("not rehearsed (the emulator's CloudFormation skips them): " + ", ".join(skipped), flush=True)

            password = secrets.token_urlsafe(18)
            started = time.monotonic()
            make(workdir, env, "create-admin", f"STAGE={stage}", f"EMAIL={ADMIN_EMAIL}", "NAME=Rehearsal Admin",
                 stdin=password + "\n")
            timings["create-admin"] = time.monotonic() - started
            _require([] if _admins(session, stage) == [ADMIN_EMAIL] else
                     [f"admins {_admins(session, stage)}, expected [{ADMIN_EMAIL}]"], "make create-admin")

            with open(resources, "w", encoding="utf-8") as handle:  # `git pull`: this checkout's data stack
                handle.write(current)
            started = time.monotonic()
            output = make(workdir, env, *steps[0][1])
            timings["upgrade"] = time.monotonic() - started
            with open(os.path.join(workdir, "out", "resources.json"), encoding="utf-8") as handle:
                _require(migration_problems(output, session, stage, json.load(handle)), "the upgrade's index migration")
            second = snapshot(session, stage, _rest_api_id(workdir, stage))
            _require(problems(expected, second) + changes(first, second)
                     + ([] if _admins(session, stage) == [ADMIN_EMAIL] else ["the admin is gone"]), "the upgrade")

            started = time.monotonic()
            make(workdir, env, "teardown", f"STAGE={stage}", f"CONFIRM={stage}")
            timings["teardown"] = time.monotonic() - started
            _require(teardown_problems(session, stage, first, _admins(session, stage)), "make teardown")
        succeeded = True
        return timings
    finally:
        if succeeded and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"workspace kept: {workdir}", flush=True)


def teardown_problems(session: Any, stage: str, deployed: Mapping[str, Any], admins: List[str]) -> List[str]:
    """After `make teardown`: no function, role, mapping, schedule, API or data stack left; the tables
    (DeletionPolicy Retain) and their data kept."""
    left = snapshot(session, stage, (deployed.get("api") or {}).get("id"))
    wrong = [f"function {name} is left" for name in left["functions"]]
    wrong += [f"role {name} is left" for name in left["roles"]]
    wrong += [f"event source mapping of {m['function']} on {m['source']} is left" for m in left["mappings"]]
    wrong += [f"schedule {s['rule']} is left" for s in left["schedules"]]
    if left["api"] is not None:
        wrong.append("the REST API is left")
    stacks = session.client("cloudformation").list_stacks()["StackSummaries"]
    live = [s["StackName"] for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"
            and s["StackName"] == f"{deploy.prefix(stage)}-data"]
    wrong += [f"stack {name} is left" for name in live]
    if left["tables"] != deployed["tables"]:
        wrong.append(f"tables {left['tables']} after teardown, {deployed['tables']} before: they are kept")
    if admins != [ADMIN_EMAIL]:
        wrong.append("the agents table lost its data")
    return wrong


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.rehearsal", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--keep", action="store_true", help="keep the workspace (it is kept on failure)")
    parser.add_argument("--health", action="store_true", help=argparse.SUPPRESS)  # make deploy's HEALTH_CHECK
    parser.add_argument("url", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.health:
        return health(args.stage)
    started = time.monotonic()
    try:
        timings = rehearse(args.stage, args.keep)
    except (RehearsalFailed, ValueError) as error:
        print(f"\nrehearsal FAILED: {error}", file=sys.stderr)
        return 1
    steps = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items())
    print(f"\nrehearsal of stage {args.stage} passed in {time.monotonic() - started:.0f} s ({steps})")
    print("emulator gaps worked around: " + ", ".join(g.name for g in GAPS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
