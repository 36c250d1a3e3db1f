"""The processing side: durable ack, retries, the dead-letter queue with its error, and replay,
through both doors: the webhooks' asynchronous invocation (the default here, run as Lambda runs
it by the local runner) and the ingest queue (`sqs_door`: the webhook queues as an older one did;
replays always come this way)."""
from __future__ import annotations

import json

import pytest

from chalicelib import aws, config
from tests.helpers import HandOffs, queue_like_an_older_webhook
from tests.test_inbox_api import PAGE, messenger, page_delivery


@pytest.fixture
def sqs_door(inbox):
    """Deliveries reach the processor through the ingest queue (Lambda's SQS trigger)."""
    from chalicelib.runtime import runtime

    runtime.use_invoker(queue_like_an_older_webhook)
    return inbox


def _count(queue: str) -> int:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=aws.queue_url(queue), AttributeNames=["ApproximateNumberOfMessages",
                                                       "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_ack_means_handed_off_and_nothing_else(inbox):
    """The 200 comes after Lambda took the processor's invocation; no table and no queue is
    touched on the ack path."""
    from chalicelib.models import Message, MessageRef
    from chalicelib.runtime import runtime

    handed = HandOffs()
    runtime.use_invoker(handed)
    inbox.add_account("messenger", PAGE)
    response = inbox.post_meta(page_delivery(messenger("m1", "p1", 1700000000000)))
    assert response.status_code == 200 and response.body == b"EVENT_RECEIVED"
    [(function, event)] = handed.events
    assert function == config.INGEST_PROCESSOR_FUNCTION
    [record] = event["Records"]
    assert record["eventSource"] == "socialinbox:webhook" and _message_id_of(record["body"]) == "m1"
    assert _count(config.INGEST_QUEUE) == 0
    assert list(MessageRef.scan()) == [] and list(Message.scan()) == []


def test_when_lambda_refuses_the_invocation_the_platform_gets_a_5xx_to_retry(inbox):
    from chalicelib.runtime import InvocationRefused, runtime

    runtime.use_invoker(HandOffs(refuse=InvocationRefused("throttled")))
    response = inbox.post_meta(page_delivery(messenger("m1", "p1", 1700000000000)))
    assert response.status_code == 503
    assert _count(config.INGEST_QUEUE) == 0


def test_a_failing_event_is_retried_then_parked_with_its_error_and_replay_brings_it_back(inbox, sqs_door, monkeypatch):
    from chalicelib.ingest import dlq, pipeline

    inbox.add_account("messenger", PAGE)
    real_handle = pipeline.handle

    def flaky(event, correlation_id=""):
        if getattr(event, "platform_message_id", None) == "m_bad":
            raise RuntimeError("storage hiccup for m_bad")
        return real_handle(event, correlation_id)

    monkeypatch.setattr(pipeline, "handle", flaky)
    inbox.post_meta(page_delivery(messenger("m_good", "p1", 1700000000000, "good"),
                                  messenger("m_bad", "p2", 1700000001000, "bad")))
    inbox.process()
    # The good neighbour landed despite the failure; the envelope ended in the DLQ with the error.
    assert [m["text"] for m in inbox.all_messages()] == ["good"]
    assert _count(config.INGEST_QUEUE) == 0
    parked = dlq.list_parked()
    assert len(parked) == 1
    assert "storage hiccup for m_bad" in parked[0]["error"]
    assert int(parked[0]["attempts"]) == config.MAX_PROCESSING_ATTEMPTS

    monkeypatch.setattr(pipeline, "handle", real_handle)
    assert dlq.replay() == 1
    assert _count(config.DEAD_LETTER_QUEUE) == 0
    inbox.process()
    texts = sorted(m["text"] for m in inbox.all_messages())
    assert texts == ["bad", "good"], "replay must land the lost event and not duplicate the good one"


def test_an_unreadable_envelope_is_parked_at_once(inbox):
    sqs = aws.client("sqs")
    sqs.send_message(QueueUrl=aws.queue_url(config.INGEST_QUEUE), MessageBody="{not an envelope")
    inbox.process()
    assert _count(config.INGEST_QUEUE) == 0
    assert _count(config.DEAD_LETTER_QUEUE) == 1


def test_dlq_command_line_lists_and_replays(inbox, capsys):
    from chalicelib.ingest import dlq

    sqs = aws.client("sqs")
    sqs.send_message(QueueUrl=aws.queue_url(config.DEAD_LETTER_QUEUE), MessageBody="{}",
                     MessageAttributes={"error": {"DataType": "String", "StringValue": "boom"}})
    assert dlq.main(["list"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["error"] == "boom"
    assert dlq.main(["replay"]) == 0
    assert "replayed 1" in capsys.readouterr().out
    assert _count(config.INGEST_QUEUE) == 1


def test_an_oversized_delivery_is_split_into_self_contained_parts_in_as_few_invocations_as_fit(inbox):
    from chalicelib.ingest.webhook import MAX_EVENT_BYTES
    from chalicelib.local.async_invoke import MAX_PAYLOAD_BYTES
    from chalicelib.runtime import runtime

    inbox.add_account("messenger", PAGE)
    handed = HandOffs(forward=runtime.invoker())
    runtime.use_invoker(handed)
    big_text = "x" * 1900
    entries = [{"id": PAGE, "time": 1700000000000,
                "messaging": [messenger(f"m{i}_{j}", f"p{i}", 1700000000000 + j, big_text) for j in range(10)]}
               for i in range(20)]
    response = inbox.post_meta({"object": "page", "entry": entries})
    assert response.status_code == 200
    assert len(handed.records()) == 20 and 2 <= len(handed.events) < 20
    assert all(size <= MAX_EVENT_BYTES < MAX_PAYLOAD_BYTES for size in handed.sizes)
    assert len({record["messageId"] for record in handed.records()}) == 20
    assert _count(config.INGEST_QUEUE) == 0
    runtime.use_invoker(handed.forward)
    assert inbox.process() == 20
    assert len(inbox.conversations(limit="100")) == 20
    assert sum(c["message_count"] for c in inbox.conversations(limit="100")) == 200


@pytest.mark.parametrize("status", [401, 503])
def test_processor_never_sees_what_the_ack_path_refused(inbox, monkeypatch, status):
    from chalicelib.runtime import runtime

    handed = HandOffs()
    runtime.use_invoker(handed)
    if status == 503:
        monkeypatch.setenv("SOCIALINBOX_STAGE", "dev")
        monkeypatch.delenv("META_APP_SECRET")
        runtime.forget_secrets()  # nothing is in SSM: the secret is missing and the ack path fails closed
        response = inbox.post_meta(page_delivery(messenger("m1", "p1", 1)))
    else:
        response = inbox.post_meta(page_delivery(messenger("m1", "p1", 1)), secret="wrong")
    assert response.status_code == status
    assert handed.events == [] and _count(config.INGEST_QUEUE) == 0


def _conflicting_writes(monkeypatch, failures: int):
    """Make the next `failures` conditional writes of a conversation fail as DynamoDB does when
    another writer changed it between our read and our write (ConditionalCheckFailed)."""
    from pynamodb.connection.base import Connection
    from pynamodb.exceptions import VerboseClientError

    real_call = Connection._make_api_call  # every model's connection
    calls = {"conflicts": 0}

    def flaky_call(connection, operation_name, operation_kwargs):
        if operation_name in ("PutItem", "UpdateItem") and operation_kwargs.get("TableName", "").endswith(
                "-conversations") and "ConditionExpression" in operation_kwargs:
            calls["conflicts"] += 1
            if calls["conflicts"] <= failures:
                raise VerboseClientError({"Error": {"Code": "ConditionalCheckFailedException", "Message": "changed"}},
                                         operation_name)
        return real_call(connection, operation_name, operation_kwargs)

    monkeypatch.setattr(Connection, "_make_api_call", flaky_call)
    return calls


def test_a_write_conflict_on_a_busy_conversation_is_retried_in_place(inbox, monkeypatch):
    from chalicelib.inbox import store

    inbox.add_account("messenger", PAGE)
    calls = _conflicting_writes(monkeypatch, failures=store.CHANGE_ATTEMPTS - 1)
    inbox.post_meta(page_delivery(messenger("m1", "p1", 1700000000000, "hello")))
    inbox.process()
    assert calls["conflicts"] == store.CHANGE_ATTEMPTS
    [conversation] = inbox.conversations()
    assert conversation["message_count"] == 1
    assert [m["text"] for m in inbox.messages(conversation["id"])] == ["hello"]
    assert _count(config.DEAD_LETTER_QUEUE) == 0


def test_endless_conflicts_go_back_to_the_queue_and_end_parked_not_lost(inbox, monkeypatch):
    inbox.add_account("messenger", PAGE)
    _conflicting_writes(monkeypatch, failures=10_000)
    inbox.post_meta(page_delivery(messenger("m1", "p1", 1700000000000, "hello")))
    inbox.process()
    assert inbox.conversations() == []
    assert _count(config.DEAD_LETTER_QUEUE) == 1


# --- each envelope of a batch is settled once ---------------------------------------------------


def _counting_handle(monkeypatch, fail):
    """Wrap pipeline.handle: count calls per platform message id; `fail(mid, calls)` says whether
    this call raises."""
    from chalicelib.ingest import pipeline

    real_handle = pipeline.handle
    calls = {}

    def handle(event, correlation_id=""):
        mid = getattr(event, "platform_message_id", None)
        calls[mid] = calls.get(mid, 0) + 1
        if fail(mid, calls[mid]):
            raise RuntimeError(f"storage hiccup for {mid}")
        return real_handle(event, correlation_id)

    monkeypatch.setattr(pipeline, "handle", handle)
    return calls


def _message_id_of(body: str) -> str:
    """The one Messenger message id a test envelope carries, or "unreadable"."""
    try:
        return json.loads(body)["payload"]["entry"][0]["messaging"][0]["message"]["mid"]
    except (ValueError, KeyError, IndexError, TypeError):
        return "unreadable"


def _drain_recording_batches(inbox):
    """Drain through the real handler, recording which envelopes each batch held."""
    from chalicelib.local.pump import drain

    batches = []

    def handler(event, context):
        batches.append(sorted(_message_id_of(r["body"]) for r in event["Records"]))
        return inbox.app.ingest_processor(event, context)

    drain(handler)
    return batches


def test_one_failing_envelope_does_not_bring_back_its_settled_neighbours(inbox, sqs_door, monkeypatch):
    """Good, permanently bad and flaky in one batch: good processed once, bad parked once, only
    the flaky one comes back (and then lands)."""
    inbox.add_account("messenger", PAGE)
    calls = _counting_handle(monkeypatch, lambda mid, n: mid == "m_flaky" and n == 1)
    inbox.post_meta(page_delivery(messenger("m_good", "p1", 1700000000000, "good")))
    aws.client("sqs").send_message(QueueUrl=aws.queue_url(config.INGEST_QUEUE), MessageBody="{not an envelope")
    inbox.post_meta(page_delivery(messenger("m_flaky", "p2", 1700000001000, "flaky")))

    batches = _drain_recording_batches(inbox)

    assert batches == [["m_flaky", "m_good", "unreadable"], ["m_flaky"]]
    assert calls == {"m_good": 1, "m_flaky": 2}
    assert _count(config.DEAD_LETTER_QUEUE) == 1 and _count(config.INGEST_QUEUE) == 0
    assert sorted(m["text"] for m in inbox.all_messages()) == ["flaky", "good"]


def test_an_envelope_retried_until_parked_is_parked_once_and_its_neighbour_runs_once(inbox, sqs_door, monkeypatch):
    from chalicelib.ingest import dlq

    inbox.add_account("messenger", PAGE)
    calls = _counting_handle(monkeypatch, lambda mid, n: mid == "m_bad")
    inbox.post_meta(page_delivery(messenger("m_good", "p1", 1700000000000, "good")))
    inbox.post_meta(page_delivery(messenger("m_bad", "p2", 1700000001000, "bad")))

    batches = _drain_recording_batches(inbox)

    assert batches[0] == ["m_bad", "m_good"]
    assert batches[1:] == [["m_bad"]] * (config.MAX_PROCESSING_ATTEMPTS - 1)
    assert calls == {"m_good": 1, "m_bad": config.MAX_PROCESSING_ATTEMPTS}
    [parked] = dlq.list_parked()
    assert int(parked["attempts"]) == config.MAX_PROCESSING_ATTEMPTS
    assert "storage hiccup for m_bad" in parked["error"]


def test_settled_envelopes_are_deleted_before_the_handler_raises(inbox, sqs_door, monkeypatch):
    """Lambda view: the handler raises for the failed envelope; what it settled is already gone."""
    from chalicelib.ingest import processor

    inbox.add_account("messenger", PAGE)
    _counting_handle(monkeypatch, lambda mid, n: mid == "m_flaky")
    inbox.post_meta(page_delivery(messenger("m_good", "p1", 1700000000000, "good")))
    inbox.post_meta(page_delivery(messenger("m_flaky", "p2", 1700000001000, "flaky")))
    sqs = aws.client("sqs")
    messages = sqs.receive_message(QueueUrl=aws.queue_url(config.INGEST_QUEUE), MaxNumberOfMessages=10,
                                   VisibilityTimeout=30, AttributeNames=["All"])["Messages"]
    records = [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                "attributes": m["Attributes"]} for m in messages]
    with pytest.raises(processor.RetryLater):
        processor.process_records(records)
    assert _count(config.INGEST_QUEUE) == 1  # only the flaky one is left (in flight)


# --- parked errors say which item failed and why ------------------------------------------------


def _transaction_error(reasons, code="TransactionCanceledException", message="Transaction cancelled"):
    from pynamodb.exceptions import TransactWriteError, VerboseClientError

    cause = VerboseClientError({"Error": {"Code": code, "Message": message}}, "TransactWriteItems",
                               {"request_id": "r1", "table_name": "p-refs,p-messages,p-contacts,p-conversations"},
                               cancellation_reasons=reasons)
    return TransactWriteError("Failed to write transaction items", cause=cause)


def test_describe_error_names_the_cancelled_item_and_its_reason():
    from pynamodb.exceptions import CancellationReason

    from chalicelib.logs import describe_error

    error = _transaction_error([None, CancellationReason("ValidationError", "Item size has exceeded the maximum "
                                                                             "allowed size"), None, None])
    text = describe_error(error)
    assert text.startswith("TransactWriteError: Failed to write transaction items")
    assert "item 2 of 4 (table p-messages): ValidationError: Item size has exceeded the maximum allowed size" in text


def test_describe_error_names_a_request_wide_validation_exception():
    from chalicelib.logs import describe_error

    text = describe_error(_transaction_error([], code="ValidationException",
                                             message="Item size has exceeded the maximum allowed size"))
    assert "ValidationException: Item size has exceeded the maximum allowed size" in text
    assert "p-messages" in text
    assert describe_error(RuntimeError("plain")) == "RuntimeError: plain"


def test_a_parked_transaction_error_says_which_item_and_why(inbox, monkeypatch):
    """A ValidationException can never succeed: parked at once, with the item and the reason."""
    from pynamodb.exceptions import CancellationReason

    from chalicelib.ingest import dlq, pipeline

    inbox.add_account("messenger", PAGE)

    def too_big(event, correlation_id=""):
        raise _transaction_error([None, CancellationReason("ValidationError", "Item size has exceeded the maximum "
                                                                              "allowed size"), None, None])

    monkeypatch.setattr(pipeline, "handle", too_big)
    inbox.post_meta(page_delivery(messenger("m1", "p1", 1700000000000, "hello")))
    inbox.process()
    [parked] = dlq.list_parked()
    assert int(parked["attempts"]) == 1
    assert "item 2 of 4 (table p-messages): ValidationError: Item size has exceeded" in parked["error"]


# --- partial batch responses (the event source reports batch item failures) ---------------------


def _receive_all():
    """The ingest queue's messages as the Lambda records of one batch (left in flight)."""
    messages = aws.client("sqs").receive_message(QueueUrl=aws.queue_url(config.INGEST_QUEUE), MaxNumberOfMessages=10,
                                                 VisibilityTimeout=30, AttributeNames=["All"])["Messages"]
    return [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
             "attributes": m["Attributes"], "eventSource": "aws:sqs"} for m in messages]


def _good_bad_and_flaky(inbox, monkeypatch):
    from chalicelib.runtime import runtime

    runtime.use_invoker(queue_like_an_older_webhook)
    inbox.add_account("messenger", PAGE)
    calls = _counting_handle(monkeypatch, lambda mid, n: mid == "m_flaky" and n == 1)
    inbox.post_meta(page_delivery(messenger("m_good", "p1", 1700000000000, "good")))
    aws.client("sqs").send_message(QueueUrl=aws.queue_url(config.INGEST_QUEUE), MessageBody="{not an envelope")
    inbox.post_meta(page_delivery(messenger("m_flaky", "p2", 1700000001000, "flaky")))
    records = _receive_all()
    assert sorted(_message_id_of(r["body"]) for r in records) == ["m_flaky", "m_good", "unreadable"]
    return calls, records


def test_with_partial_batch_responses_the_handler_names_only_the_failed_envelope(inbox, monkeypatch):
    """Good, permanently bad and flaky in one batch: the answer names the flaky one alone, and the
    handler deletes nothing itself (Lambda deletes what the answer does not name)."""
    from chalicelib.ingest import processor

    monkeypatch.setenv(processor.PARTIAL_BATCH_ENV, "true")
    calls, records = _good_bad_and_flaky(inbox, monkeypatch)
    [flaky] = [r["messageId"] for r in records if _message_id_of(r["body"]) == "m_flaky"]

    answer = inbox.app.ingest_processor({"Records": records}, None)

    assert answer == {"batchItemFailures": [{"itemIdentifier": flaky}]}
    assert calls == {"m_good": 1, "m_flaky": 1}
    assert [m["text"] for m in inbox.all_messages()] == ["good"]
    assert _count(config.DEAD_LETTER_QUEUE) == 1  # the unreadable one parked, not reported
    assert _count(config.INGEST_QUEUE) == 3  # all still in flight: deleting is Lambda's job now


def test_with_partial_batch_responses_a_clean_batch_reports_no_failure(inbox, sqs_door, monkeypatch):
    from chalicelib.ingest import processor

    monkeypatch.setenv(processor.PARTIAL_BATCH_ENV, "true")
    inbox.add_account("messenger", PAGE)
    inbox.post_meta(page_delivery(messenger("m1", "p1", 1700000000000, "one")))
    inbox.post_meta(page_delivery(messenger("m2", "p2", 1700000001000, "two")))
    assert inbox.app.ingest_processor({"Records": _receive_all()}, None) == {"batchItemFailures": []}
    assert sorted(m["text"] for m in inbox.all_messages()) == ["one", "two"]


@pytest.mark.parametrize("value", [None, "", "false", "1", "yes"])
def test_without_the_variable_the_handler_raises_as_before(inbox, monkeypatch, value):
    """Anything but "true" (the mapping may lack ReportBatchItemFailures): the settled envelopes
    are deleted and the handler raises, never a batchItemFailures answer Lambda would take for a
    success."""
    from chalicelib.ingest import processor

    if value is None:
        monkeypatch.delenv(processor.PARTIAL_BATCH_ENV, raising=False)
    else:
        monkeypatch.setenv(processor.PARTIAL_BATCH_ENV, value)
    calls, records = _good_bad_and_flaky(inbox, monkeypatch)

    with pytest.raises(processor.RetryLater):
        inbox.app.ingest_processor({"Records": records}, None)

    assert calls == {"m_good": 1, "m_flaky": 1}
    assert _count(config.INGEST_QUEUE) == 1  # only the flaky one is left
    assert _count(config.DEAD_LETTER_QUEUE) == 1


def _lambda_with_report_batch_item_failures(inbox):
    """Lambda's SQS poller with FunctionResponseTypes=[ReportBatchItemFailures]: a raise deletes
    nothing; an answer deletes every record it does not name. Records each batch."""
    sqs, url = aws.client("sqs"), aws.queue_url(config.INGEST_QUEUE)
    batches = []
    for _ in range(20):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                       AttributeNames=["All"]).get("Messages", [])
        if not messages:
            return batches
        records = [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                    "attributes": m["Attributes"]} for m in messages]
        batches.append(sorted(_message_id_of(r["body"]) for r in records))
        try:
            answer = inbox.app.ingest_processor({"Records": records}, None)
        except Exception:  # noqa: BLE001 - the whole batch comes back
            continue
        failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
        done = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(records)
                if r["messageId"] not in failed]
        if done:
            sqs.delete_message_batch(QueueUrl=url, Entries=done)
    return batches


def test_with_partial_batch_responses_the_neighbours_never_run_again(inbox, sqs_door, monkeypatch):
    from chalicelib.ingest import processor

    monkeypatch.setenv(processor.PARTIAL_BATCH_ENV, "true")
    inbox.add_account("messenger", PAGE)
    calls = _counting_handle(monkeypatch, lambda mid, n: mid == "m_bad")
    inbox.post_meta(page_delivery(messenger("m_good", "p1", 1700000000000, "good")))
    inbox.post_meta(page_delivery(messenger("m_bad", "p2", 1700000001000, "bad")))

    batches = _lambda_with_report_batch_item_failures(inbox)

    assert batches == [["m_bad", "m_good"]] + [["m_bad"]] * (config.MAX_PROCESSING_ATTEMPTS - 1)
    assert calls == {"m_good": 1, "m_bad": config.MAX_PROCESSING_ATTEMPTS}
    assert _count(config.INGEST_QUEUE) == 0 and _count(config.DEAD_LETTER_QUEUE) == 1
    assert [m["text"] for m in inbox.all_messages()] == ["good"]
