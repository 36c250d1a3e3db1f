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

TEMPLATE_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "infra", "resources.json")


def template() -> Dict[str, Any]:
    with open(TEMPLATE_PATH, encoding="utf-8") as handle:
        return json.load(handle)


def _resolve(value: Any, stage: str, arns: Dict[str, str]) -> Any:
    """The few intrinsic functions the template uses: Fn::Sub ${Stage}, Fn::GetAtt [X, Arn], Ref."""
    if isinstance(value, dict):
        if "Fn::Sub" in value:
            return value["Fn::Sub"].replace("${Stage}", stage)
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
    for logical, resource in resources.items():
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        props = _resolve(resource["Properties"], stage, arns)
        name = props["TableName"]
        if name not in existing_tables:
            kwargs = {k: props[k] for k in ("TableName", "AttributeDefinitions", "KeySchema", "BillingMode",
                                            "GlobalSecondaryIndexes") if k in props}
            dynamodb.create_table(**kwargs)
            _wait_active(dynamodb, name)
            ttl = props.get("TimeToLiveSpecification")
            if ttl:
                dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
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
