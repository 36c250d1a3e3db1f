"""The deploy template, the models and the local stack agree (one source of truth), and the
template is valid CloudFormation."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from chalicelib.local import stack

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tables():
    return {r["Properties"]["TableName"]["Fn::Sub"].replace("socialinbox-${Stage}-", ""): r["Properties"]
            for r in stack.template()["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"}


def _normalise_indexes(indexes):
    """(name, keys, projection type, projected attributes) of each index, order-free."""
    return sorted((i["IndexName"] if "IndexName" in i else i["index_name"],
                   tuple(sorted((k["AttributeName"], k["KeyType"]) for k in (i.get("KeySchema") or i["key_schema"]))),
                   (i.get("Projection") or i["projection"])["ProjectionType"],
                   tuple(sorted((i.get("Projection") or i["projection"]).get("NonKeyAttributes", []))))
                  for i in indexes)


def test_no_index_projects_a_raw_payload_or_everything():
    """Indexes carry what their views need (INCLUDE): never ALL, never a raw payload."""
    for short, props in _tables().items():
        for index in props.get("GlobalSecondaryIndexes", []):
            projection = index["Projection"]
            assert projection["ProjectionType"] != "ALL", (short, index["IndexName"])
            assert "raw" not in projection.get("NonKeyAttributes", []), (short, index["IndexName"])
            assert len(projection.get("NonKeyAttributes", [])) <= 20, "DynamoDB projects at most 20 attributes"


def test_every_model_has_a_table_with_the_same_keys_and_indexes():
    from chalicelib.models import ALL_MODELS

    tables = _tables()
    assert len(tables) == len(ALL_MODELS)
    for model in ALL_MODELS:
        short = model.Meta.table_name.replace("socialinbox-test-", "")
        props = tables[short]
        schema = model._get_schema()
        assert sorted((k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]) == \
            sorted((k["AttributeName"], k["KeyType"]) for k in schema["key_schema"]), short
        assert _normalise_indexes(props.get("GlobalSecondaryIndexes", [])) == \
            _normalise_indexes(schema.get("global_secondary_indexes", [])), short
        declared = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
        assert declared == {a["AttributeName"]: a["AttributeType"] for a in schema["attribute_definitions"]}, short
        assert props["BillingMode"] == "PAY_PER_REQUEST"


def test_queue_redrive_outlasts_the_processors_own_parking():
    from chalicelib import config

    resources = stack.template()["Resources"]
    redrive = resources["IngestQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] > config.MAX_PROCESSING_ATTEMPTS


def test_app_listens_to_the_queue_the_template_creates():
    import app

    [handler] = [h for h in app.app.event_sources if h.name == "ingest_processor"]
    queue = stack.template()["Resources"]["IngestQueue"]["Properties"]["QueueName"]["Fn::Sub"]
    assert handler.queue == queue.replace("${Stage}", "test")


def test_local_stack_creates_exactly_the_template(aws_backend):
    from chalicelib import aws

    names = set(aws.client("dynamodb").list_tables()["TableNames"])
    assert names == {"socialinbox-test-" + short for short in _tables()}
    queues = aws.client("sqs").list_queues()["QueueUrls"]
    declared = [r["Properties"]["QueueName"]["Fn::Sub"].replace("${Stage}", "test")
                for r in stack.template()["Resources"].values() if r["Type"] == "AWS::SQS::Queue"]
    assert {"socialinbox-test-ingest", "socialinbox-test-ingest-dlq"} <= set(declared)
    # ... and, local only, where `make run` keeps accepted asynchronous invocations (Lambda's queue in AWS)
    from chalicelib.local.async_invoke import holding_queue
    from infra.deploy import ASYNC_INVOCATIONS

    holding = [f"socialinbox-test-{holding_queue(function)}" for function in ASYNC_INVOCATIONS]
    assert holding == ["socialinbox-test-async-ingest_processor"]
    assert sorted(q.rsplit("/", 1)[1] for q in queues) == sorted(declared + holding)


def test_template_passes_cfn_lint(tmp_path):
    """The deployable template (`make deploy` renders the SLA flow's ASL file into it)."""
    lint = shutil.which("cfn-lint", path=os.path.dirname(sys.executable))
    if lint is None:
        pytest.fail("cfn-lint is part of requirements-dev.txt and must be installed")
    rendered = tmp_path / "resources.json"
    rendered.write_text(json.dumps(stack.render()))
    result = subprocess.run([lint, str(rendered)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_state_machine_definition_comes_from_the_asl_file_and_its_queue_exists():
    rendered = stack.render()["Resources"]["SlaStateMachine"]["Properties"]
    assert rendered["Definition"] == stack.asl()
    assert "Definition" not in stack.template()["Resources"]["SlaStateMachine"]["Properties"]  # one source
    queue = rendered["DefinitionSubstitutions"]["SlaTimerQueueUrl"]["Ref"]
    assert stack.template()["Resources"][queue]["Type"] == "AWS::SQS::Queue"
    text = json.dumps(stack.asl())
    assert "${SlaTimerQueueUrl}" in text


def test_chalice_config_has_the_three_stages_and_no_secrets():
    with open(os.path.join(ROOT, ".chalice", "config.json"), encoding="utf-8") as handle:
        text = handle.read()
    config = json.loads(text)
    assert set(config["stages"]) == {"local", "dev", "prod"}
    for word in ("SECRET", "TOKEN", "PASSWORD"):
        assert word not in text.upper(), f"{word} must come from SSM, not .chalice/config.json"


# --- operations: recovery, expiry, dead letters, alarms, secrets (issue 11) ----------------------

def _chalicelib_source() -> str:
    source = []
    for directory, _dirs, files in os.walk(os.path.join(ROOT, "chalicelib")):
        for name in sorted(files):
            if name.endswith(".py"):
                with open(os.path.join(directory, name), encoding="utf-8") as handle:
                    source.append(handle.read())
    return "\n".join(source)


def test_the_template_lists_every_secret_the_code_reads_in_aws():
    """CloudFormation cannot create SecureStrings: the template names them (Metadata) and
    `make secrets` stores the values."""
    from chalicelib import config
    from infra import deploy

    names = deploy.secret_names(stack.template())
    assert len(names) == len(set(names))
    assert set(config.LOCAL_SECRET_DEFAULTS) - {"LOCAL_ADMIN_PASSWORD"} <= set(names)
    source = _chalicelib_source()
    assert all(f'"{name}"' in source for name in names), "a listed secret nothing reads"


def _resources(kind):
    return {k: r for k, r in stack.template()["Resources"].items() if r["Type"] == kind}


def test_every_table_has_point_in_time_recovery_encryption_and_survives_a_stack_delete():
    for logical, table in _resources("AWS::DynamoDB::Table").items():
        props = table["Properties"]
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, logical
        assert props["SSESpecification"] == {"SSEEnabled": True}, logical
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain", logical


def test_every_model_with_an_expiry_has_ttl_on_that_attribute():
    from pynamodb.attributes import NumberAttribute

    from chalicelib.models import ALL_MODELS

    tables = _tables()
    for model in ALL_MODELS:
        short = model.Meta.table_name.replace("socialinbox-test-", "")
        expiring = "expires_at" in model.get_attributes() and \
            isinstance(model.get_attributes()["expires_at"], NumberAttribute)
        ttl = tables[short].get("TimeToLiveSpecification")
        assert bool(ttl) == expiring, short
        if ttl:
            assert ttl == {"AttributeName": "expires_at", "Enabled": True}, short


def test_every_queue_has_a_dead_letter_queue_and_every_dead_letter_queue_an_alarm():
    queues = _resources("AWS::SQS::Queue")
    targets = {q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
               for q in queues.values() if "RedrivePolicy" in q["Properties"]}
    assert set(queues) == targets | {k for k in queues if "RedrivePolicy" in queues[k]["Properties"]}
    alarms = _resources("AWS::CloudWatch::Alarm").values()
    for dlq in targets:
        assert queues[dlq]["Properties"]["MessageRetentionPeriod"] == 14 * 86400, dlq
        name = queues[dlq]["Properties"]["QueueName"]
        [alarm] = [a for a in alarms if a["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
                   and a["Properties"]["Dimensions"] == [{"Name": "QueueName", "Value": name}]]
        assert alarm["Properties"]["Threshold"] == 0
        assert alarm["Properties"]["ComparisonOperator"] == "GreaterThanThreshold"


def test_every_function_has_its_log_group_and_error_and_throttle_alarms_to_the_escalation_topic():
    from infra import deploy

    names = {f: deploy.lambda_function_name("${Stage}", f) for f in deploy.functions()}
    groups = {g["Properties"]["LogGroupName"]["Fn::Sub"] for g in _resources("AWS::Logs::LogGroup").values()}
    assert groups == {f"/aws/lambda/{name}" for name in names.values()}
    alarms = list(_resources("AWS::CloudWatch::Alarm").values())
    for function, name in names.items():
        for metric in ("Errors", "Throttles"):
            assert any(a["Properties"]["Namespace"] == "AWS/Lambda" and a["Properties"]["MetricName"] == metric
                       and a["Properties"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Fn::Sub": name}}]
                       for a in alarms), (function, metric)
    assert all(a["Properties"]["AlarmActions"] == [{"Ref": "EscalationTopic"}] for a in alarms)
    assert stack.template()["Resources"]["EscalationTopic"]["Type"] == "AWS::SNS::Topic"


def test_log_metric_filters_match_lines_the_code_really_writes():
    """SLA breaches, send failures and re-authorisation alarms count log lines: a renamed message
    would silently blind them, so each filtered message must be a logger call in chalicelib."""
    import re

    source = _chalicelib_source()
    filters = _resources("AWS::Logs::MetricFilter")
    metrics = {f["Properties"]["MetricTransformations"][0]["MetricName"] for f in filters.values()}
    assert metrics == {"SlaBreaches", "SendFailures", "NeedsReauth"}
    for logical, metric_filter in filters.items():
        [message] = re.findall(r'\$\.message = "([^"]+)"', metric_filter["Properties"]["FilterPattern"])
        pattern = re.escape(message.rstrip("*")) + ("[^\"]*" if message.endswith("*") else "")
        assert re.search(r'logger\.\w+\(\s*"' + pattern + '"', source), (logical, message)
        group = metric_filter["Properties"]["LogGroupName"]["Ref"]
        assert stack.template()["Resources"][group]["Type"] == "AWS::Logs::LogGroup"
    alarmed = {a["Properties"]["MetricName"] for a in _resources("AWS::CloudWatch::Alarm").values()}
    assert metrics <= alarmed


def test_the_dashboard_body_is_json_with_the_stage_substituted():
    [dashboard] = _resources("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"].replace("${Stage}", "dev") \
        .replace("${AWS::Region}", "eu-west-1")
    widgets = json.loads(body)["widgets"]
    titles = " ".join(w["properties"]["title"] for w in widgets)
    for word in ("errors", "throttles", "Queues", "SLA breaches"):
        assert word in titles
