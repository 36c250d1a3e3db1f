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
        original = emulator._ORIGINALS[(Queue, "approximate_number_of_messages")]

        def spy(self: Any) -> int:
            counted.append(1)
            return original.fget(self)

        emulator._ORIGINALS[(Queue, "approximate_number_of_messages")] = property(spy)
        try:
            sqs.send_message(QueueUrl=url, MessageBody="one more")
            received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=30)["Messages"]
            assert len(received) == 3 and counted == []
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        finally:
            emulator._ORIGINALS[(Queue, "approximate_number_of_messages")] = original
        assert counted, "GetQueueAttributes All must count"
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
