"""The local stack's adjustments of moto (chalicelib/local/emulator.py): applied for these tests
and removed after, so the rest of the suite runs on moto as released.

They fail loudly when moto's internals they rely on change (upgrade moto: re-check the cause in
`DynamoDBBackend.transact_write_items` / `Queue.attributes`, then adjust or drop the patch)."""
from __future__ import annotations

import inspect
from typing import Any, Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.local import emulator

TABLE = "socialinbox-test-local-scale"


@pytest.fixture
def adjusted(aws_backend: Any) -> Iterator[Any]:
    emulator.apply_local_adjustments()
    try:
        yield aws_backend
    finally:
        emulator.remove_local_adjustments()


@pytest.fixture
def table(adjusted: Any) -> Iterator[Any]:
    client = boto3.client("dynamodb")
    client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                              {"AttributeName": "sk", "AttributeType": "N"}],
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                   {"AttributeName": "sk", "KeyType": "RANGE"}])
    for i in range(300):
        client.put_item(TableName=TABLE, Item={"pk": {"S": f"c{i % 30}"}, "sk": {"N": str(i)}, "v": {"N": "0"}})
    yield client
    client.delete_table(TableName=TABLE)


def _everything(client: Any) -> Any:
    return sorted((item["pk"]["S"], int(item["sk"]["N"]), repr(sorted(item.items())))
                  for item in client.scan(TableName=TABLE)["Items"])


def test_moto_still_copies_whole_tables_in_transactions() -> None:
    """The cause the adjustment works around; if this changes, re-check emulator.py."""
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items
    while hasattr(original, "__wrapped__"):
        original = original.__wrapped__
    source = inspect.getsource(original)
    assert "copy.deepcopy(\n                    self.tables[table_name]" in source
    assert "self.tables[table_name] = original_table_state[table_name]" in source


def test_a_transaction_copies_no_table_and_applies(table: Any) -> None:
    emulator._state.tables_not_copied = 0
    table.transact_write_items(TransactItems=[
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "new"}, "sk": {"N": "1"}}}},
        {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "c1"}, "sk": {"N": "1"}},
                    "UpdateExpression": "SET v = v + :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Delete": {"TableName": TABLE, "Key": {"pk": {"S": "c2"}, "sk": {"N": "2"}}}},
    ])
    # moto asked for a copy of the table and got the table itself (the hook is still in the path).
    assert emulator._state.tables_not_copied >= 1
    got = table.get_item(TableName=TABLE, Key={"pk": {"S": "c1"}, "sk": {"N": "1"}})["Item"]
    assert got["v"] == {"N": "1"}
    assert "Item" in table.get_item(TableName=TABLE, Key={"pk": {"S": "new"}, "sk": {"N": "1"}})
    assert "Item" not in table.get_item(TableName=TABLE, Key={"pk": {"S": "c2"}, "sk": {"N": "2"}})


@pytest.mark.parametrize("failing", [
    {"ConditionCheck": {"TableName": TABLE, "Key": {"pk": {"S": "c3"}, "sk": {"N": "3"}},
                        "ConditionExpression": "attribute_not_exists(pk)"}},
    {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "c4"}, "sk": {"N": "4"}},
                "UpdateExpression": "SET v = :x", "ConditionExpression": "v = :nope",
                "ExpressionAttributeValues": {":x": {"N": "9"}, ":nope": {"N": "7"}}}},
    # The same item twice: moto raises before the other writes, a different path.
    {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "c1"}, "sk": {"N": "1"}, "v": {"N": "5"}}}},
])
def test_a_failed_transaction_rolls_back_exactly_what_it_touched(table: Any, failing: Any) -> None:
    before = _everything(table)
    with pytest.raises(ClientError) as raised:
        table.transact_write_items(TransactItems=[
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "brand-new"}, "sk": {"N": "1"}}}},
            {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "c1"}, "sk": {"N": "1"}},
                        "UpdateExpression": "SET v = v + :one, extra = :s",
                        "ExpressionAttributeValues": {":one": {"N": "1"}, ":s": {"S": "x"}}}},
            {"Delete": {"TableName": TABLE, "Key": {"pk": {"S": "c2"}, "sk": {"N": "2"}}}},
            failing,
        ])
    assert raised.value.response["Error"]["Code"] in ("TransactionCanceledException", "ValidationException")
    assert _everything(table) == before


def test_sends_and_receives_do_not_count_the_backlog_but_attributes_do(adjusted: Any) -> None:
    from moto.sqs.models import Queue

    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="socialinbox-test-local-scale-q")["QueueUrl"]
    try:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(10)])
        counted = []
        original = emulator._FAST_COUNTS["approximate_number_of_messages"]

        def spy(queue: Any) -> int:
            counted.append(1)
            return original(queue)

        emulator._FAST_COUNTS["approximate_number_of_messages"] = spy
        try:
            sqs.send_message(QueueUrl=url, MessageBody="one more")
            received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=30)["Messages"]
            assert len(received) == 3 and counted == []
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            assert len(counted) == 1, "GetQueueAttributes All counts, once"
            del counted[:]
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                    "ApproximateNumberOfMessagesNotVisible"])
            assert len(counted) == 1, "moto evaluates Queue.attributes per name; once here"
        finally:
            emulator._FAST_COUNTS["approximate_number_of_messages"] = original
        assert attrs["ApproximateNumberOfMessages"] == "8"
        assert attrs["ApproximateNumberOfMessagesNotVisible"] == "3"
        one = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        assert one == {"ApproximateNumberOfMessages": "8"}
    finally:
        sqs.delete_queue(QueueUrl=url)


def test_adjustments_are_removed_cleanly(aws_backend: Any) -> None:
    from moto.dynamodb.models import DynamoDBBackend
    import moto.dynamodb.models as models

    emulator.apply_local_adjustments()
    emulator.remove_local_adjustments()
    assert not hasattr(DynamoDBBackend.transact_write_items, "__socialinbox_local__")
    assert models.copy is emulator._copy


def test_counts_and_visible_messages_match_moto_as_released(adjusted: Any) -> None:
    """The one-clock-read scans give what moto's per-message properties give."""
    from moto.sqs.models import Queue

    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="socialinbox-test-local-scale-counts")["QueueUrl"]
    try:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(8)])
        sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=60)
        queue = emulator._sqs_queue("socialinbox-test-local-scale-counts")
        for name in emulator._FAST_COUNTS:
            assert getattr(queue, name) == emulator._ORIGINALS[(Queue, name)].fget(queue), name
        assert queue.messages == emulator._ORIGINALS[(Queue, "messages")].fget(queue)
        assert (queue.approximate_number_of_messages, queue.approximate_number_of_messages_not_visible,
                queue.approximate_number_of_messages_delayed) == (5, 3, 1)
    finally:
        sqs.delete_queue(QueueUrl=url)


def test_delete_finds_the_message_by_receipt_handle_without_scanning(adjusted: Any) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="socialinbox-test-local-scale-delete")["QueueUrl"]
    try:
        for start in range(0, 300, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"}
                                                          for i in range(start, start + 10)])
        queue = emulator._sqs_queue("socialinbox-test-local-scale-delete")
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)["Messages"]
        # A scan would ask every stored message whether it had the handle: nobody is asked.
        asked = []
        from moto.sqs.models import Message
        original = Message.had_receipt_handle
        Message.had_receipt_handle = lambda self, handle: asked.append(1) or original(self, handle)  # type: ignore
        try:
            answer = sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                                     for i, m in enumerate(got)])
        finally:
            Message.had_receipt_handle = original  # type: ignore[method-assign]
        assert len(answer["Successful"]) == 10 and not answer.get("Failed") and asked == []
        assert len(queue._messages) == 290 and not emulator._RECEIPTS
        # Deleting again is accepted (as moto does); an unknown handle is still refused.
        sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
        with pytest.raises(ClientError) as raised:
            sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
        assert raised.value.response["Error"]["Code"] == "ReceiptHandleIsInvalid"
        # An older handle of a message received twice still deletes it (moto keeps old handles).
        first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=0)["Messages"][0]
        again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=60)["Messages"][0]
        assert again["MessageId"] == first["MessageId"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
        assert len(queue._messages) == 289 and first["MessageId"] not in {m.id for m in queue._messages}
    finally:
        sqs.delete_queue(QueueUrl=url)


def _query_pages(client: Any, **kwargs: Any) -> Any:
    pages, start = [], None
    for _ in range(50):
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = client.query(**kwargs)
        pages.append((page["Items"], page.get("LastEvaluatedKey"), page["Count"], page["ScannedCount"]))
        start = page.get("LastEvaluatedKey")
        if not start:
            return pages
    return pages


def test_queries_read_one_partition_and_answer_as_moto_does(aws_backend: Any) -> None:
    """Same pages (items, order, LastEvaluatedKey, counts) with and without the adjustment, for
    base-table and index queries, forward and backward, with limits, ranges and filters."""
    client = boto3.client("dynamodb")
    name = "socialinbox-test-local-scale-query"
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t in
                              (("pk", "S"), ("sk", "N"), ("g", "S"), ("gs", "N"))],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": "by-g", "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"},
                                               {"AttributeName": "gs", "KeyType": "RANGE"}]}])
    try:
        for i in range(120):
            item = {"pk": {"S": f"p{i % 7}"}, "sk": {"N": str(i)}, "v": {"N": str(i % 5)}}
            if i % 3:
                item.update({"g": {"S": f"g{i % 4}"}, "gs": {"N": str(i % 11)}})  # ties on gs
            client.put_item(TableName=name, Item=item)
        asks = [dict(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p3"}}),
                dict(KeyConditionExpression="pk = :p AND sk > :s", Limit=4, ScanIndexForward=False,
                     ExpressionAttributeValues={":p": {"S": "p1"}, ":s": {"N": "20"}}),
                dict(KeyConditionExpression="pk = :p", FilterExpression="v = :v", Limit=3,
                     ExpressionAttributeValues={":p": {"S": "p2"}, ":v": {"N": "1"}}),
                dict(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "nobody"}}),
                dict(IndexName="by-g", KeyConditionExpression="g = :g", Limit=5,
                     ExpressionAttributeValues={":g": {"S": "g1"}}),
                dict(IndexName="by-g", KeyConditionExpression="g = :g AND gs < :s", ScanIndexForward=False,
                     Limit=4, ExpressionAttributeValues={":g": {"S": "g2"}, ":s": {"N": "8"}})]
        released = [_query_pages(client, TableName=name, **ask) for ask in asks]
        emulator.apply_local_adjustments()
        try:
            from moto.dynamodb.models.table import Table

            table = emulator._dynamodb_table(name)
            scanned = []
            original = emulator._ORIGINALS[(Table, "all_items")]
            emulator._ORIGINALS[(Table, "all_items")] = lambda self: scanned.append(1) or original(self)
            try:
                adjusted = [_query_pages(client, TableName=name, **ask) for ask in asks]
                assert scanned == []
                client.scan(TableName=name, Limit=5)  # the spy sees what is not a query
                assert scanned
            finally:
                emulator._ORIGINALS[(Table, "all_items")] = original
            # Base-table and index queries never took moto's sorted copy of the whole table.
            # Outside a query (Scan) all_items is moto's own.
            assert [i.range_key for i in table.all_items()] == [i.range_key for i in original(table)]
        finally:
            emulator.remove_local_adjustments()
        assert adjusted == released
        assert sum(p[2] for p in released[0]) == len([i for i in range(120) if i % 7 == 3])
    finally:
        client.delete_table(TableName=name)


# --- the emulator's HTTP server: keep-alive ------------------------------------------------------

def _dynamodb_request(connection: Any, target: str, body: str, close: bool = False) -> Any:
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"DynamoDB_20120810.{target}",
               "Authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, "
                                "SignedHeaders=host, Signature=0"}
    if close:
        headers["Connection"] = "close"
    connection.request("POST", "/", body=body.encode(), headers=headers)
    response = connection.getresponse()
    return response, response.read()


def test_the_emulator_answers_several_requests_on_one_connection(aws_backend: Any) -> None:
    """boto3 keeps its connections: werkzeug's server closed each one after one answer."""
    import http.client
    import json

    server = emulator.EmulatorServer("127.0.0.1", 0)
    server.start()
    try:
        port = server._server.server_port
        handler = server._server.RequestHandlerClass
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        answers = [_dynamodb_request(connection, "ListTables", "{}") for _ in range(3)]
        sockets = {id(connection.sock)}
        answers.append(_dynamodb_request(connection, "DescribeTable", json.dumps({"TableName": "nope"})))
        sockets.add(id(connection.sock))
        last, _ = _dynamodb_request(connection, "ListTables", "{}", close=True)
        connection.close()
    finally:
        server.stop()
    assert [r.status for r, _ in answers] == [200, 200, 200, 400]
    assert all("TableNames" in json.loads(body) for _, body in answers[:3])
    assert b"ResourceNotFoundException" in answers[3][1]  # an error answer keeps the connection too
    assert len(sockets) == 1 and connection.sock is None
    assert all(r.getheader("Connection") != "close" and r.getheader("Content-Length") for r, _ in answers)
    assert last.status == 200 and last.getheader("Connection") == "close"  # the client asked to close
    assert handler.answered_on_open_connection == 4


def test_werkzeug_still_closes_every_connection() -> None:
    """The cause the keep-alive handler works around; if this changes, re-check emulator.py."""
    from werkzeug.serving import WSGIRequestHandler

    source = inspect.getsource(WSGIRequestHandler.run_wsgi)
    assert 'self.send_header("Connection", "close")' in source


# --- Step Functions: finished executions are bounded ---------------------------------------------

PASS_MACHINE = '{"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": true}}}'


def test_moto_still_keeps_every_execution() -> None:
    """The cause of the bound; if this changes, re-check emulator.py."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution
    while hasattr(original, "__wrapped__"):
        original = original.__wrapped__
    assert "state_machine.executions.append(execution)" in inspect.getsource(original)
    from moto.stepfunctions.parser.asl.component.program import program

    assert "TMP_THREADS.append(worker_thread)" in inspect.getsource(program)


def test_a_state_machine_keeps_its_newest_finished_executions(adjusted: Any, monkeypatch: Any) -> None:
    import time

    from moto.core.config import default_user_config

    monkeypatch.setitem(default_user_config["stepfunctions"], "execute_state_machine", True)
    monkeypatch.setattr(emulator, "FINISHED_EXECUTIONS_KEPT", 3)
    monkeypatch.setattr(emulator, "_TRIM_EVERY", 1)
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(name="local-scale-pass", definition=PASS_MACHINE,
                                   roleArn="arn:aws:iam::123456789012:role/local")["stateMachineArn"]
    try:
        for i in range(8):
            sfn.start_execution(stateMachineArn=arn, name=f"run-{i}", input="{}")
            deadline = time.monotonic() + 30  # a Pass state ends at once; bounded all the same
            while (sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
                   and time.monotonic() < deadline):
                time.sleep(0.02)
        names = sorted(e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"])
        # the last trim ran as run-7 started: run-4..6 kept, and run-7 (running then, or finished
        # already and one of the newest three)
        assert names in (["run-4", "run-5", "run-6", "run-7"], ["run-5", "run-6", "run-7"])
        assert sfn.describe_execution(executionArn=arn.replace(":stateMachine:", ":execution:") + ":run-7")[
            "status"] == "SUCCEEDED"
        from moto.stepfunctions.parser.utils import TMP_THREADS

        # finished interpreter threads are forgotten too: what is left is at most the last
        # execution's two (its execution logic and its eval thread, alive when the trim ran as
        # it started; whether the second had started by then is timing). Untrimmed: 16.
        assert len(TMP_THREADS) <= 2
    finally:
        sfn.delete_state_machine(stateMachineArn=arn)


def test_forgetting_keeps_running_executions_and_the_newest_finished() -> None:
    class Run:
        def __init__(self, name: str, status: str) -> None:
            self.name, self.exec_status = name, status

    runs = [Run("a", "SUCCEEDED"), Run("b", "RUNNING"), Run("c", "ABORTED"), Run("d", "SUCCEEDED"),
            Run("e", "RUNNING")]
    assert emulator.forget_finished_executions(runs, keep=2) == 1
    assert [r.name for r in runs] == ["b", "c", "d", "e"]
    assert emulator.forget_finished_executions(runs, keep=2) == 0


def test_string_equality_answers_as_moto_does(adjusted: Any) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    moto_eq = emulator._ORIGINALS[(DynamoType, "__eq__")]
    moto_ne = emulator._ORIGINALS[(DynamoType, "__ne__")]
    values = [{"S": "a"}, {"S": "b"}, {"S": ""}, {"S": "1"}, {"N": "1"}, {"N": "1.0"}, {"B": b"a"},
              {"B": b"b"}, {"BOOL": True}, {"BOOL": False}, {"NULL": True}, {"SS": ["a"]},
              {"L": [{"S": "a"}]}, {"M": {"k": {"S": "a"}}}]
    for left in values:
        for right in values:
            a, b = DynamoType(left), DynamoType(right)
            assert (a == b) is moto_eq(a, b) and (a != b) is moto_ne(a, b), (left, right)
    assert DynamoType.__eq__ is not moto_eq  # the adjusted comparison was the one tested


SQS_MACHINE = ('{"StartAt": "Tell", "States": {"Tell": {"Type": "Task", "Resource": '
               '"arn:aws:states:::sqs:sendMessage", "Parameters": {"QueueUrl.$": "$.queue", '
               '"MessageBody": {"n.$": "$.n", "who.$": "$.who.name"}}, "ResultPath": null, "End": true}}}')
MAP_MACHINE = ('{"StartAt": "Each", "States": {"Each": {"Type": "Map", "ItemsPath": "$.items", "Iterator": '
               '{"StartAt": "One", "States": {"One": {"Type": "Pass", "End": true}}}, "End": true}}}')


def test_moto_still_parses_the_definition_and_builds_a_client_per_use() -> None:
    """The causes of the parse and client caches; if this changes, re-check emulator.py."""
    from moto.stepfunctions.parser.asl.utils import boto_client, json_path
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    assert "AmazonStateLanguageParser.parse(" in inspect.getsource(ExecutionWorker._get_evaluation_entrypoint)
    assert "return boto3.client(" in inspect.getsource(boto_client)
    assert "input_expr = parse(path)" in inspect.getsource(json_path.extract_json)


def test_a_definition_is_parsed_once_unless_it_holds_per_run_state(adjusted: Any) -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    assert AmazonStateLanguageParser.parse(SQS_MACHINE) is AmazonStateLanguageParser.parse(SQS_MACHINE)
    assert AmazonStateLanguageParser.parse(PASS_MACHINE) is not AmazonStateLanguageParser.parse(SQS_MACHINE)
    assert AmazonStateLanguageParser.parse(MAP_MACHINE) is not AmazonStateLanguageParser.parse(MAP_MACHINE)
    emulator.remove_local_adjustments()
    assert AmazonStateLanguageParser.parse(SQS_MACHINE) is not AmazonStateLanguageParser.parse(SQS_MACHINE)
    emulator.apply_local_adjustments()


def test_concurrent_executions_of_one_parsed_definition_each_send_their_own_input(adjusted: Any,
                                                                                   monkeypatch: Any) -> None:
    """Shared program, shared client, cached paths: every run still reads its own input."""
    import json
    import time

    from moto.core.config import default_user_config

    monkeypatch.setitem(default_user_config["stepfunctions"], "execute_state_machine", True)
    sqs, sfn = boto3.client("sqs"), boto3.client("stepfunctions")
    queue = sqs.create_queue(QueueName="local-scale-told")["QueueUrl"]
    arn = sfn.create_state_machine(name="local-scale-tell", definition=SQS_MACHINE,
                                   roleArn="arn:aws:iam::123456789012:role/local")["stateMachineArn"]
    try:
        for n in range(12):
            sfn.start_execution(stateMachineArn=arn, name=f"tell-{n}",
                                input=json.dumps({"queue": queue, "n": n, "who": {"name": f"agent {n}"}}))
        told: list = []
        deadline = time.monotonic() + 30  # bounded: each run is one SQS call
        while len(told) < 12 and time.monotonic() < deadline:
            for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
                told.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        assert sorted((m["n"], m["who"]) for m in told) == [(n, f"agent {n}") for n in range(12)]
        while (sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
               and time.monotonic() < deadline):
            time.sleep(0.02)  # a run sends its message just before it is marked as finished
        statuses = {e["status"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]}
        assert statuses == {"SUCCEEDED"}
    finally:
        sfn.delete_state_machine(stateMachineArn=arn)
