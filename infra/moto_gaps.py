"""What moto (the rehearsal's emulator) does differently from AWS, and the rehearsal's workaround
for each. A workaround changes moto in the process it runs in (infra/rehearsal.py's emulator), never
the project's code; each gap's `still_present` probe runs in tests/test_rehearsal.py, which fails
once moto fixes the gap, so the workaround goes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

#: Not us-east-1: the artefacts bucket then needs its LocationConstraint, as in most regions.
REGION = "eu-west-1"



@dataclass(frozen=True)
class Gap:
    """Something moto does differently from AWS that the rehearsal works around."""
    name: str
    why: str
    #: Applied in the emulator's process before it starts (None: the workaround is elsewhere, said in `why`).
    workaround: Optional[Callable[[], None]]
    #: True while moto still behaves this way (run inside `moto.mock_aws`).
    still_present: Callable[[], bool]


def _outputs_after_change_set() -> None:
    """Refresh the stack's outputs when a change set is applied (moto computes them only when a
    stack is created directly, so `deploy`'s stacks have none)."""
    from moto.cloudformation import models

    original = models.ChangeSet.apply
    if getattr(original, "rehearsal_workaround", False):
        return

    def apply(self: Any) -> None:
        original(self)
        self.stack.template_dict = self.template_dict
        self.stack.output_map = self.stack._create_output_map()

    apply.rehearsal_workaround = True  # type: ignore[attr-defined]
    models.ChangeSet.apply = apply


def _probe_outputs_after_change_set() -> bool:
    import boto3

    cfn = boto3.client("cloudformation", region_name=REGION)
    body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                       "Outputs": {"TopicArn": {"Value": {"Ref": "Topic"}}}})
    cfn.create_change_set(StackName="probe-outputs", ChangeSetName="probe", ChangeSetType="CREATE", TemplateBody=body)
    cfn.execute_change_set(ChangeSetName="probe", StackName="probe-outputs")
    return not cfn.describe_stacks(StackName="probe-outputs")["Stacks"][0].get("Outputs")


def _import_rest_api_without_description() -> None:
    """Give Chalice's swagger the `info.description` moto's import_rest_api reads unconditionally."""
    from moto.apigateway import models

    original = models.APIGatewayBackend.import_rest_api
    if getattr(original, "rehearsal_workaround", False):
        return

    def import_rest_api(self: Any, api_doc: Dict[str, Any], fail_on_warnings: bool) -> Any:
        api_doc.setdefault("info", {}).setdefault("description", "")
        return original(self, api_doc, fail_on_warnings)

    import_rest_api.rehearsal_workaround = True  # type: ignore[attr-defined]
    models.APIGatewayBackend.import_rest_api = import_rest_api


def _probe_import_rest_api_without_description() -> bool:
    return _import_fails({"openapi": "3.0.1", "info": {"title": "probe", "version": "1.0"}, "paths": {}})


def _swagger_2_as_openapi_3() -> None:
    """Let moto read Chalice's Swagger 2.0 document: what moto takes from it (paths, methods,
    responses, x-amazon-apigateway-integration) is spelled the same in OpenAPI 3."""
    from moto.apigateway import models

    original = models.APIGatewayBackend.put_rest_api
    if getattr(original, "rehearsal_workaround", False):
        return

    def put_rest_api(self: Any, function_id: str, api_doc: Dict[str, Any], fail_on_warnings: bool,
                     mode: str = "merge") -> Any:
        if str(api_doc.get("swagger", "")).startswith("2"):
            api_doc = {k: v for k, v in api_doc.items() if k != "swagger"}
            api_doc["openapi"] = "3.0.1"
        return original(self, function_id, api_doc, fail_on_warnings, mode)

    put_rest_api.rehearsal_workaround = True  # type: ignore[attr-defined]
    models.APIGatewayBackend.put_rest_api = put_rest_api


def _probe_swagger_2() -> bool:
    return _import_fails({"swagger": "2.0", "info": {"title": "probe", "version": "1.0", "description": "probe"},
                          "paths": {}})


def _import_fails(document: Dict[str, Any]) -> bool:
    import boto3

    try:
        boto3.client("apigateway", region_name=REGION).import_rest_api(body=json.dumps(document).encode())
    except Exception:  # noqa: BLE001 - any failure: the gap is still there
        return True
    return False


def _mappings_by_function_name_or_arn() -> None:
    """List a function's event source mappings whichever way it is named (Chalice creates them
    with the function's ARN; `partial-batches` lists them by name, as AWS allows)."""
    from moto.awslambda import models

    original = models.LambdaBackend.list_event_source_mappings
    if getattr(original, "rehearsal_workaround", False):
        return

    def list_event_source_mappings(self: Any, event_source_arn: str, function_name: str) -> Any:
        found = original(self, event_source_arn, None)
        if not function_name:
            return found
        return [m for m in found if function_name in (m.function_name, m.function_arn)
                or m.function_arn.endswith(":function:" + function_name)]

    list_event_source_mappings.rehearsal_workaround = True  # type: ignore[attr-defined]
    models.LambdaBackend.list_event_source_mappings = list_event_source_mappings


def _probe_mappings_by_function_name() -> bool:
    import boto3

    arn = lambda_function("probe-mapped")
    queue = boto3.client("sqs", region_name=REGION).create_queue(QueueName="probe-mapped")["QueueUrl"]
    queue_arn = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client = boto3.client("lambda", region_name=REGION)
    client.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=arn)
    return not client.list_event_source_mappings(FunctionName="probe-mapped")["EventSourceMappings"]


def lambda_function(name: str, source: str = "def handle(event, context):\n    return {'ran': True}\n") -> str:
    """A Python function in moto that answers {"ran": true} (its ARN); the role is named after it."""
    import io
    import zipfile

    import boto3

    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", source)
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    return boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=name, Runtime="python3.11", Role=role, Handler="handler.handle",
        Code={"ZipFile": code.getvalue()})["FunctionArn"]


def _probe_template_url_on_loopback_address() -> bool:
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="probe-templates")
    s3.put_object(Bucket="probe-templates", Key="t.json",
                  Body=json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}).encode())
    try:
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="probe-url", TemplateURL="http://127.0.0.1:5000/probe-templates/t.json")
    except Exception:  # noqa: BLE001
        return True
    return False


def _probe_lambda_runs_no_python_without_docker() -> bool:
    import boto3

    lambda_function("probe")
    client = boto3.client("lambda", region_name=REGION)
    try:
        answer = json.loads(client.invoke(FunctionName="probe", Payload=b"{}")["Payload"].read() or b"null")
    except Exception:  # noqa: BLE001
        return True
    return answer != {"ran": True}


def _websocket_deployments() -> None:
    """Answer apigatewayv2 CreateDeployment (Chalice deploys the live updates' WebSocket API with
    it, then names the deployment in CreateStage): moto has no such route. A deployment id is all
    the rehearsal needs; moto's stages keep whatever id they are given."""
    import uuid

    from moto.apigatewayv2 import responses, urls

    if getattr(responses.ApiGatewayV2Response, "create_deployment", None) is not None:
        return
    pattern = "{0}/v2/apis/(?P<api_id>[^/]+)/deployments$"
    urls.url_paths.setdefault(pattern, responses.ApiGatewayV2Response.dispatch)

    def create_deployment(self: Any) -> Any:
        return 201, {}, json.dumps({"deploymentId": uuid.uuid4().hex[:10], "deploymentStatus": "DEPLOYED"})

    create_deployment.rehearsal_workaround = True  # type: ignore[attr-defined]
    responses.ApiGatewayV2Response.create_deployment = create_deployment


def _probe_websocket_deployments() -> bool:
    import boto3

    client = boto3.client("apigatewayv2", region_name=REGION)
    api = client.create_api(Name="probe", ProtocolType="WEBSOCKET", RouteSelectionExpression="$request.body.action")
    try:
        client.create_deployment(ApiId=api["ApiId"])
    except Exception:  # noqa: BLE001 - any failure: the gap is still there
        return True
    return False


def _table_updates() -> None:
    """Give moto's AWS::DynamoDB::Table a CloudFormation update as AWS has it for indexes: the
    global secondary indexes the template adds or removes are created or deleted on the table, and
    what AWS refuses (more than one creation or deletion per table, an index changed in place,
    unused AttributeDefinitions: infra/index_migration.py's rules) fails the update."""
    from moto.dynamodb.models.table import Table

    if getattr(Table.update_from_cloudformation_json, "rehearsal_workaround", False):
        return

    def update_from_cloudformation_json(cls: Any, original_resource: Any, new_resource_name: str,
                                        cloudformation_json: Dict[str, Any], account_id: str, region_name: str) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        from infra import index_migration

        table = original_resource
        properties = cloudformation_json["Properties"]
        before = {"KeySchema": table.schema, "AttributeDefinitions": table.attr,
                  "GlobalSecondaryIndexes": [{"IndexName": i.name, "KeySchema": i.schema, "Projection": i.projection}
                                             for i in table.global_indexes]}

        def wrapped(props: Dict[str, Any]) -> Dict[str, Any]:
            return {"Resources": {"Table": {"Type": index_migration.TABLE_TYPE, "Properties": props}}}

        problems = index_migration.transition_problems(wrapped(before), wrapped(properties))
        if problems:
            raise ValueError(f"{table.name}: {'; '.join(problems)}")
        old, new = index_migration.indexes(before), index_migration.indexes(properties)
        updates = [{"Delete": {"IndexName": name}} for name in old if name not in new]
        updates += [{"Create": new[name]} for name in new if name not in old]
        dynamodb_backends[account_id][region_name].update_table(
            name=table.name, attr_definitions=properties["AttributeDefinitions"], global_index=updates,
            throughput=None, billing_mode=None, stream_spec=None, deletion_protection_enabled=None,
            warm_throughput=None)
        return table

    update_from_cloudformation_json.rehearsal_workaround = True  # type: ignore[attr-defined]
    Table.update_from_cloudformation_json = classmethod(update_from_cloudformation_json)  # type: ignore[method-assign]


def _probe_table_updates() -> bool:
    import boto3

    def body(*indexes: str) -> str:
        names = ["id", *indexes]
        return json.dumps({"Resources": {"Table": {"Type": "AWS::DynamoDB::Table", "Properties": {
            "TableName": "probe-table-updates", "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"} for n in names],
            "GlobalSecondaryIndexes": [{"IndexName": f"by-{n}", "KeySchema": [{"AttributeName": n, "KeyType": "HASH"}],
                                        "Projection": {"ProjectionType": "KEYS_ONLY"}} for n in indexes]}}}})

    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(StackName="probe-table-updates", TemplateBody=body("a"))
    try:
        cfn.update_stack(StackName="probe-table-updates", TemplateBody=body("a", "b"))
    except Exception:  # noqa: BLE001 - any failure: the gap is still there
        return True
    described = boto3.client("dynamodb", region_name=REGION).describe_table(TableName="probe-table-updates")
    return sorted(i["IndexName"] for i in described["Table"].get("GlobalSecondaryIndexes", [])) != ["by-a", "by-b"]


GAPS = (
    Gap("template-url-host",
        "moto finds the bucket of a path-style TemplateURL only when the endpoint's host is `localhost` "
        "(or s3*.amazonaws.com): the rehearsal's endpoint is http://localhost:<port>, not 127.0.0.1",
        None, _probe_template_url_on_loopback_address),
    Gap("change-set-outputs",
        "moto applies a change set (what `aws cloudformation deploy` uses) without computing the stack's "
        "Outputs, so describe-stacks has none for `configure`",
        _outputs_after_change_set, _probe_outputs_after_change_set),
    Gap("import-rest-api-description",
        "moto's import_rest_api requires info.description, which Chalice's swagger does not carry",
        _import_rest_api_without_description, _probe_import_rest_api_without_description),
    Gap("import-rest-api-swagger-2",
        "moto imports only OpenAPI 3 documents; Chalice's is Swagger 2.0 (what moto reads of it is the same)",
        _swagger_2_as_openapi_3, _probe_swagger_2),
    Gap("mappings-by-function-name",
        "moto lists a function's event source mappings only under the exact FunctionName they were created "
        "with (Chalice: the ARN); AWS also finds them by the function's name, as `partial-batches` asks",
        _mappings_by_function_name_or_arn, _probe_mappings_by_function_name),
    Gap("no-lambda-runtime",
        "moto runs no Lambda code without Docker, so the new API's URL answers nothing: `make deploy`'s "
        "health check (HEALTH_CHECK) calls the app in-process with the deployed API function's configuration",
        None, _probe_lambda_runs_no_python_without_docker),
    Gap("websocket-deployments",
        "moto's apigatewayv2 has no CreateDeployment, which `chalice deploy` calls for the live updates' "
        "WebSocket API (issue 21)",
        _websocket_deployments, _probe_websocket_deployments),
    Gap("table-updates",
        "moto's CloudFormation has no update for AWS::DynamoDB::Table: a changed table is dropped from the "
        "stack's resources (its outputs break) and no index is created or deleted, so an update AWS refuses "
        "(two index creations on one table) passes; the workaround applies index changes by AWS's rules",
        _table_updates, _probe_table_updates),
)


def apply_workarounds() -> None:
    for gap in GAPS:
        if gap.workaround is not None:
            gap.workaround()
