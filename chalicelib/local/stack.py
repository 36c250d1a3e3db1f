"""Create the data plane on an emulated AWS from the deploy template (infra/resources.json).

The template is the one source of truth for table and queue names, keys and indexes: the
deploy uses it as a CloudFormation stack, this module reads it and makes the same calls.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, List, Optional

from chalicelib import aws, config

INFRA = os.path.join(os.path.dirname(__file__), "..", "..", "infra")
TEMPLATE_PATH = os.path.join(INFRA, "resources.json")
# The SLA flow's ASL lives in its own file (the single source of truth); the template names the
# state machine and its substitutions, and `render()` puts the definition in for the deploy.
ASL_PATH = os.path.join(INFRA, "sla-flow.asl.json")
LOCAL_ROLE_ARN = "arn:aws:iam::123456789012:role/socialinbox-local-sla-flow"


def template() -> Dict[str, Any]:
    with open(TEMPLATE_PATH, encoding="utf-8") as handle:
        return json.load(handle)


def _resolve(value: Any, stage: str, arns: Dict[str, str]) -> Any:
    """The few intrinsic functions the template uses: Fn::Sub ${Stage}, Fn::GetAtt [X, Arn], Ref."""
    if isinstance(value, dict):
        if "Fn::Sub" in value:
            return value["Fn::Sub"].replace("${Stage}", stage).replace("${AWS::AccountId}", config.LOCAL_ACCOUNT_ID)
        if "Fn::GetAtt" in value:
            return arns[value["Fn::GetAtt"][0]]
        return {k: _resolve(v, stage, arns) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, stage, arns) for v in value]
    return value


def create_all(stage: Optional[str] = None) -> List[str]:
    """Create every table and queue for `stage` (default: the configured prefix); idempotent."""
    stage = stage or config.resource_prefix().removeprefix("socialinbox-")
    resources = template()["Resources"]
    dynamodb, sqs = aws.client("dynamodb"), aws.client("sqs")
    existing_tables = set(dynamodb.list_tables().get("TableNames", []))
    created: List[str] = []
    arns: Dict[str, str] = {}
    queues = [(name, r) for name, r in resources.items() if r["Type"] == "AWS::SQS::Queue"]
    # Queues without a redrive target first, so GetAtt can resolve.
    queues.sort(key=lambda item: "RedrivePolicy" in item[1]["Properties"])
    for logical, resource in queues:
        props = _resolve(resource["Properties"], stage, arns)
        attributes = {k: _attribute(v) for k, v in props.items() if k != "QueueName"}
        url = sqs.create_queue(QueueName=props["QueueName"], Attributes=attributes)["QueueUrl"]
        arns[logical] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        created.append(props["QueueName"])
    created += create_holding_queues(stage)
    for logical, resource in resources.items():
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        props = _resolve(resource["Properties"], stage, arns)
        name = props["TableName"]
        if name not in existing_tables:
            kwargs = {k: props[k] for k in ("TableName", "AttributeDefinitions", "KeySchema", "BillingMode",
                                            "GlobalSecondaryIndexes") if k in props}
            if props.get("StreamSpecification"):  # CloudFormation names the view type only
                kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
            dynamodb.create_table(**kwargs)
            _wait_active(dynamodb, name)
            ttl = props.get("TimeToLiveSpecification")
            if ttl:
                dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        created.append(name)
    created += create_buckets(stage)
    created += create_state_machines(stage)
    return created


def create_holding_queues(stage: str) -> List[str]:
    """Where `make run` keeps the events it accepted for the functions the app invokes
    asynchronously (Lambda's own queue in AWS; chalicelib.local.async_invoke): local only, never
    in the template."""
    from chalicelib.local.async_invoke import holding_queue
    from infra.deploy import ASYNC_INVOCATIONS

    sqs = aws.client("sqs")
    names = [f"socialinbox-{stage}-{holding_queue(function)}" for function in ASYNC_INVOCATIONS]
    for name in names:
        sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": "21600"})
    return names


def create_buckets(stage: Optional[str] = None) -> List[str]:
    """The template's S3 buckets (agents' files before they go out), created if missing."""
    stage = stage or config.resource_prefix().removeprefix("socialinbox-")
    s3 = aws.client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    created: List[str] = []
    for resource in template()["Resources"].values():
        if resource["Type"] != "AWS::S3::Bucket":
            continue
        name = _resolve(resource["Properties"]["BucketName"], stage, {})
        if name not in existing:
            s3.create_bucket(Bucket=name)
        created.append(name)
    return created


def asl() -> Dict[str, Any]:
    with open(ASL_PATH, encoding="utf-8") as handle:
        return json.load(handle)


def render() -> Dict[str, Any]:
    """The deployable template: infra/resources.json with the SLA flow's ASL put in."""
    rendered = template()
    for resource in rendered["Resources"].values():
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            resource["Properties"]["Definition"] = asl()
    return rendered


def create_state_machines(stage: Optional[str] = None) -> List[str]:
    """Create (or update) the template's state machines on the emulator, with the definition
    from the ASL file and its substitutions resolved to the local queues."""
    stage = stage or config.resource_prefix().removeprefix("socialinbox-")
    sfn, sqs = aws.client("stepfunctions"), aws.client("sqs")
    created: List[str] = []
    for resource in template()["Resources"].values():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        props = resource["Properties"]
        name = _resolve(props["StateMachineName"], stage, {})
        text = json.dumps(asl())
        for key, value in props.get("DefinitionSubstitutions", {}).items():
            queue_logical = value["Ref"]
            queue_name = _resolve(template()["Resources"][queue_logical]["Properties"]["QueueName"], stage, {})
            url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
            text = text.replace("${" + key + "}", url)
        existing = [m["stateMachineArn"] for m in sfn.list_state_machines().get("stateMachines", [])
                    if m["name"] == name]
        if existing:
            sfn.update_state_machine(stateMachineArn=existing[0], definition=text)
        else:
            sfn.create_state_machine(name=name, definition=text, roleArn=LOCAL_ROLE_ARN, type="STANDARD")
        created.append(name)
    return created


def _attribute(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _wait_active(dynamodb: Any, name: str) -> None:
    for _ in range(100):
        if dynamodb.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE":
            return
        time.sleep(0.05)


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["render"]:
        json.dump(render(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.exit("usage: python -m chalicelib.local.stack render > out/resources.json")
