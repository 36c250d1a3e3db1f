"""Deploy glue: the data stack's outputs and the per-function IAM policies become the Chalice stage
configuration of the build directory, so nothing is copied by hand.

    python -m infra.deploy configure --stage dev --build build/lambda --outputs out/stack-outputs-dev.json
    python -m infra.deploy configure --stage dev --build build/lambda          # one-artifact path
    python -m infra.deploy fix-package --stage dev out/package/sam.json
    python -m infra.deploy put-secrets --stage dev [NAME ...]

`configure` writes the build directory's `.chalice/config.json` (queue URLs and the SLA state
machine ARN as environment variables, one IAM policy file per function) and those policy files.
With `--outputs` (a `describe-stacks` document) the values are the deployed stack's; without it
they are `@ref:<LogicalId>` placeholders that `fix-package` turns into `Ref`s once `chalice
package --merge-template` has put the data stack and the functions into one template.

IAM: `infra/iam-policies.json` is the one source. Each function gets what its code calls (checked
by tests/test_iam.py against the calls the code really makes), plus what the platform needs on its
behalf: its own log group, X-Ray, and, for SQS consumers, the event source's receive/delete on the
queue it consumes. All Chalice REST routes (webhooks and the agent API) are one Lambda function,
`api_handler`, so they share one role.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLICY_SOURCE = os.path.join(ROOT, "infra", "iam-policies.json")
APP_NAME = "socialinbox"
API_HANDLER = "api_handler"
PLACEHOLDER = "@ref:"
#: Stack outputs that are not queue URLs, and the environment variable the code reads them from.
OUTPUT_ENVIRONMENT: Dict[str, str] = {"SlaStateMachineArn": "SLA_STATE_MACHINE_ARN"}
#: What the platform does for a function, not its code (excluded from the call check, listed here).
PLATFORM_SIDS = ("Logs", "Tracing", "EventSource")
#: The actions Lambda's SQS poller needs on the queue a consumer reads.
EVENT_SOURCE_ACTIONS = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                        "sqs:ChangeMessageVisibility"]


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
    `stateMachine/<short>`, `execution/<short>`, `parameter/<name or *>`, `topic/<short>`, `*`."""
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
            env[variable] = PLACEHOLDER + template["Outputs"][key]["Value"]["Ref"]
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
                 outputs: Optional[Mapping[str, str]]) -> Dict[str, Any]:
    """`.chalice/config.json` with the stage fed from the stack: environment, one policy per
    function. Everything else the stage says (memory, timeouts, concurrency) is kept."""
    config = copy.deepcopy(dict(base))
    stage_section = config.setdefault("stages", {}).setdefault(stage, {})
    stage_section["autogen_policy"] = False
    stage_section.pop("iam_policy_file", None)
    stage_section.setdefault("environment_variables", {}).update(environment(template, outputs))
    per_function = stage_section.setdefault("lambda_functions", {})
    for function in functions():
        per_function.setdefault(function, {})["iam_policy_file"] = policy_file_name(stage, function)
    return config


def configure(build_dir: str, stage: str, template: Mapping[str, Any],
              outputs: Optional[Mapping[str, str]]) -> List[str]:
    """Write the build directory's stage config and policy files; returns the files written."""
    chalice_dir = os.path.join(build_dir, ".chalice")
    os.makedirs(chalice_dir, exist_ok=True)
    config_path = os.path.join(chalice_dir, "config.json")
    with open(os.path.join(ROOT, ".chalice", "config.json"), encoding="utf-8") as handle:
        base = json.load(handle)
    written = [config_path]
    _write_json(config_path, stage_config(base, stage, template, outputs))
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
    - the Stage parameter defaults to the packaged stage (the function names carry it).
    The consumers settle each record themselves (delete what finished, raise for the rest), so
    they need no ReportBatchItemFailures, which Chalice cannot set."""
    fixed = copy.deepcopy(package)
    resources = fixed["Resources"]
    arns = {}
    for logical, resource in resources.items():
        if resource.get("Type") == "AWS::SQS::Queue":
            name = resource["Properties"]["QueueName"]
            if isinstance(name, dict) and "Fn::Sub" in name:
                name = name["Fn::Sub"].replace("${Stage}", stage)
            arns[name] = logical
    for node in _walk(resources):
        variables = node.get("Variables") if isinstance(node.get("Variables"), dict) else None
        for key, value in list((variables or {}).items()):
            if isinstance(value, str) and value.startswith(PLACEHOLDER):
                variables[key] = {"Ref": value[len(PLACEHOLDER):]}
        if node.get("Type") == "SQS" and isinstance(node.get("Properties"), dict):
            props = node["Properties"]
            queue = _queue_name_of(props.get("Queue"))
            if queue in arns:
                props["Queue"] = {"Fn::GetAtt": [arns[queue], "Arn"]}
    for function in functions():
        logical = "APIHandler" if function == API_HANDLER else "".join(p.title() for p in function.split("_"))
        if resources.get(logical, {}).get("Type") == "AWS::Serverless::Function":
            resources[logical]["Properties"]["FunctionName"] = lambda_function_name(stage, function)
    if "Stage" in fixed.get("Parameters", {}):
        fixed["Parameters"]["Stage"]["Default"] = stage
    return fixed


def _queue_name_of(value: Any) -> Optional[str]:
    """The queue name in Chalice's event source ARN (a plain ARN or an Fn::Sub of one)."""
    if isinstance(value, dict):
        value = value.get("Fn::Sub")
        if isinstance(value, list):
            value = value[0]
    if not isinstance(value, str):
        return None
    return value.rsplit(":", 1)[-1]


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
    secrets = sub.add_parser("put-secrets", help="SecureString parameters into SSM (asked, never echoed)")
    secrets.add_argument("--stage", required=True)
    secrets.add_argument("names", nargs="*", help="default: every name the template lists")
    args = parser.parse_args(argv)
    if args.command == "put-secrets":
        import boto3

        names = args.names or secret_names(_load_json(os.path.join(ROOT, "infra", "resources.json")))
        written = put_secrets(boto3.client("ssm"), args.stage, names, _asker(sys.stdin))
        print(f"stored {len(written)} secret(s): {', '.join(written) or 'none'}")
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
