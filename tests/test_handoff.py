"""The webhooks hand each delivery to the processor by asynchronous invocation (issue 21): the
real Invoke call, its limits, Lambda's retry and on-failure semantics (run locally by
chalicelib.local.async_invoke), and the invocation records it parks in the ingest DLQ, listed and
replayed through the ingest queue."""
from __future__ import annotations

import copy
import json

import pytest

from chalicelib import aws, config
from tests.helpers import HandOffs
from tests.test_inbox_api import PAGE, messenger, page_delivery


def _count(queue: str) -> int:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=aws.queue_url(queue), AttributeNames=["ApproximateNumberOfMessages",
                                                       "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _counting_handle(monkeypatch, failing: set):
    """pipeline.handle counting calls per message id; those in `failing` raise (while they are)."""
    from chalicelib.ingest import pipeline

    real_handle = pipeline.handle
    calls: dict = {}

    def handle(event, correlation_id=""):
        mid = getattr(event, "platform_message_id", None)
        calls[mid] = calls.get(mid, 0) + 1
        if mid in failing:
            raise RuntimeError(f"storage hiccup for {mid}")
        return real_handle(event, correlation_id)

    monkeypatch.setattr(pipeline, "handle", handle)
    return calls


# --- the real Invoke call ---------------------------------------------------------------------------


@pytest.fixture
def deployed_stage(inbox, monkeypatch):
    """A deployed stage's webhook (Lambda's Invoke, not the local runner); secrets from the
    environment as ops may set them."""
    from chalicelib.runtime import runtime

    monkeypatch.setenv("SOCIALINBOX_STAGE", "dev")
    runtime.reset()
    yield inbox
    runtime.reset()


@pytest.mark.parametrize("door", ["function_url", "rest"])
def test_the_webhook_invokes_the_processor_asynchronously_with_one_invoke_call(deployed_stage, door):
    from botocore.stub import ANY, Stubber

    from chalicelib.runtime import LAMBDA_SERVICE, runtime
    from tests.helpers import meta_signature

    client = runtime.client(LAMBDA_SERVICE)
    sent = []
    client.meta.events.register("before-parameter-build.lambda.Invoke",
                                lambda params, **_: sent.append(params["Payload"]))
    with Stubber(client) as stub:
        stub.add_response("invoke", {"StatusCode": 202},
                          {"FunctionName": "socialinbox-test-ingest_processor", "InvocationType": "Event",
                           "Payload": ANY})
        raw = json.dumps(page_delivery(messenger("m1", "p1", 1700000000000, "hello"))).encode()
        headers = {"X-Hub-Signature-256": meta_signature(raw), "Content-Type": "application/json"}
        if door == "rest":
            status = deployed_stage.post_webhook("meta", raw, headers).status_code
        else:
            status = deployed_stage.function_url("POST", "/webhooks/meta", raw, headers)["statusCode"]
        stub.assert_no_pending_responses()
    assert status == 200
    [body] = sent
    [record] = json.loads(body)["Records"]
    assert record["eventSource"] == "socialinbox:webhook"
    envelope = json.loads(record["body"])
    assert envelope["adapter"] == "meta" and envelope["payload"]["entry"][0]["messaging"][0]["message"]["mid"] == "m1"
    assert _count(config.INGEST_QUEUE) == 0


@pytest.mark.parametrize("answer", [{"error": "TooManyRequestsException"}, {"error": "ServiceException"},
                                    {"status": 200}])
def test_an_invocation_lambda_did_not_take_is_a_503_for_the_platform_to_retry(deployed_stage, answer):
    from botocore.stub import ANY, Stubber

    from chalicelib.runtime import LAMBDA_SERVICE, runtime

    client = runtime.client(LAMBDA_SERVICE)
    expected = {"FunctionName": "socialinbox-test-ingest_processor", "InvocationType": "Event", "Payload": ANY}
    with Stubber(client) as stub:
        if "error" in answer:
            stub.add_client_error("invoke", answer["error"], http_status_code=429, expected_params=expected)
        else:
            stub.add_response("invoke", {"StatusCode": answer["status"]}, expected)
        response = deployed_stage.post_meta(page_delivery(messenger("m1", "p1", 1700000000000)))
    assert response.status_code == 503


# --- the size limit -------------------------------------------------------------------------------


def test_a_delivery_whose_single_part_cannot_fit_an_invocation_is_a_413_and_nothing_is_handed_off(inbox):
    from chalicelib.runtime import runtime

    handed = HandOffs()
    runtime.use_invoker(handed)
    inbox.add_account("messenger", PAGE)
    # one message of ~140 KB of quotes: escaped in the envelope (x2), and again in the record (x2)
    response = inbox.post_meta(page_delivery(messenger("m1", "p1", 1700000000000, '"' * 140_000)))
    assert response.status_code == 413
    assert handed.events == []


def test_escaping_is_counted_a_part_that_fits_as_text_but_not_escaped_is_split_off(inbox):
    """Two messages of 70 KB of quotes: 140 KB of text, ~280 KB once escaped in the envelope and
    ~560 KB in the record. Each alone (~280 KB) is still too big for one invocation: 413. Two
    of 40 KB of quotes and backslashes (each ~160 KB as a record) go out as two invocations."""
    from chalicelib.ingest.webhook import MAX_EVENT_BYTES
    from chalicelib.runtime import runtime

    handed = HandOffs(forward=runtime.invoker())
    runtime.use_invoker(handed)
    inbox.add_account("messenger", PAGE)
    too_big = page_delivery(messenger("m1", "p1", 1700000000000, '"' * 70_000),
                            messenger("m2", "p1", 1700000001000, '"' * 70_000))
    assert inbox.post_meta(too_big).status_code == 413
    fits = {"object": "page", "entry": [
        {"id": PAGE, "time": 1700000000000, "messaging": [messenger("m3", "p1", 1700000002000, '"\\' * 20_000)]},
        {"id": PAGE, "time": 1700000000000, "messaging": [messenger("m4", "p1", 1700000003000, '"\\' * 20_000)]}]}
    assert inbox.post_meta(fits).status_code == 200
    assert len(handed.events) == 2 and max(handed.sizes) <= MAX_EVENT_BYTES
    runtime.use_invoker(handed.forward)
    assert inbox.process() == 2
    [conversation] = inbox.conversations()
    assert conversation["message_count"] == 2


def test_a_refused_delivery_is_cut_to_fit_one_invocation_and_quarantined(inbox):
    from chalicelib.ingest.webhook import MAX_EVENT_BYTES, MAX_JSON_DEPTH
    from chalicelib.runtime import runtime

    handed = HandOffs(forward=runtime.invoker())
    runtime.use_invoker(handed)
    deep = "[" * (MAX_JSON_DEPTH + 5) + "]" * (MAX_JSON_DEPTH + 5)
    raw = json.dumps({"object": "page", "pad": '"' * 200_000, "deep": "DEEP"}).replace('"DEEP"', deep).encode()
    assert inbox.post_meta(raw).status_code == 200
    [size] = handed.sizes
    assert size <= MAX_EVENT_BYTES
    runtime.use_invoker(handed.forward)
    inbox.process()
    [item] = inbox.quarantine()
    assert "raw body truncated" in item["reason"]


# --- Lambda's semantics for an asynchronous invocation ---------------------------------------------


def test_a_failing_hand_off_is_retried_twice_then_parked_as_an_invocation_record_and_replay_lands_it(
        inbox, monkeypatch):
    from chalicelib.ingest import dlq

    inbox.add_account("messenger", PAGE)
    failing = {"m_bad"}
    calls = _counting_handle(monkeypatch, failing)
    assert inbox.post_meta(page_delivery(messenger("m_good", "p1", 1700000000000, "good"),
                                         messenger("m_bad", "p2", 1700000001000, "bad"))).status_code == 200
    inbox.process()
    # the whole event ran three times (Lambda's first attempt and two retries); stored once
    assert calls == {"m_good": 3, "m_bad": 3}
    assert [m["text"] for m in inbox.all_messages()] == ["good"]
    assert _count(config.INGEST_QUEUE) == 0
    [parked] = dlq.list_parked()
    assert parked["kind"] == "invocation" and parked["records"] == 1 and parked["attempts"] == "3"
    assert parked["adapter"] == "meta" and parked["received_at"]
    assert parked["error"].startswith("RetriesExhausted: ") and "storage hiccup for m_bad" in parked["error"]

    failing.clear()
    assert dlq.replay_selected([parked["message_id"]]) == (1, [])
    assert _count(config.DEAD_LETTER_QUEUE) == 0 and _count(config.INGEST_QUEUE) == 1
    inbox.process()
    assert sorted(m["text"] for m in inbox.all_messages()) == ["bad", "good"]


def test_an_asynchronous_invocation_raises_even_where_queue_batches_answer_partial_failures(inbox, monkeypatch):
    """Lambda ignores a `batchItemFailures` answer to an asynchronous invocation (it would take it
    for a success and drop the failed delivery): the processor, which has the partial batch
    switch on as deployed, must raise for the webhook's records and answer for the queue's."""
    from chalicelib.ingest import processor
    from chalicelib.runtime import runtime

    monkeypatch.setenv(processor.PARTIAL_BATCH_ENV, "true")
    inbox.add_account("messenger", PAGE)
    _counting_handle(monkeypatch, {"m_bad"})
    handed = HandOffs()
    runtime.use_invoker(handed)
    inbox.post_meta(page_delivery(messenger("m_bad", "p2", 1700000001000, "bad")))
    [(_, event)] = handed.events
    with pytest.raises(processor.InvocationFailed, match="storage hiccup for m_bad"):
        inbox.app.ingest_processor(copy.deepcopy(event), None)
    as_queued = [dict(record, eventSource="aws:sqs", receiptHandle="r-1") for record in event["Records"]]
    assert inbox.app.ingest_processor({"Records": as_queued}, None) == {
        "batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}


def test_the_local_runner_ignores_answers_retries_raises_and_refuses_what_lambda_refuses(inbox):
    from chalicelib.ingest import dlq
    from chalicelib.local.async_invoke import MAX_PAYLOAD_BYTES, LocalInvocations, PayloadTooLarge

    seen = []

    def handler(event, context):
        seen.append(event["Records"][0]["body"])
        if event["Records"][0]["body"] == "boom":
            raise RuntimeError("always fails")
        return {"batchItemFailures": [{"itemIdentifier": "x"}]}  # ignored, as Lambda ignores it

    runner = LocalInvocations({"ingest_processor": handler})
    runner("ingest_processor", json.dumps({"Records": [{"messageId": "1", "body": "fine"}]}).encode())
    runner("ingest_processor", json.dumps({"Records": [{"messageId": "2", "body": "boom"}]}).encode())
    with pytest.raises(PayloadTooLarge):
        runner("ingest_processor", b'{"Records":[{"body":"' + b"x" * MAX_PAYLOAD_BYTES + b'"}]}')
    runner.run_pending()
    assert seen.count("fine") == 1 and seen.count("boom") == 3
    assert runner.counts == {"accepted": 2, "succeeded": 1, "retried": 2, "sent_to_destination": 1}
    [message] = aws.client("sqs").receive_message(QueueUrl=aws.queue_url(config.DEAD_LETTER_QUEUE),
                                                  MaxNumberOfMessages=10)["Messages"]
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"].endswith(":function:socialinbox-test-ingest_processor:$LATEST")
    assert record["requestPayload"] == {"Records": [{"messageId": "2", "body": "boom"}]}
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorMessage"] == "always fails"
    assert dlq.redrive_bodies(message["Body"]) == ["boom"]


def test_an_event_older_than_its_maximum_age_goes_to_the_destination_without_running(inbox):
    from chalicelib.ingest import dlq
    from chalicelib.local.async_invoke import LocalInvocations

    now = [1000.0]
    runs = []
    runner = LocalInvocations({"ingest_processor": lambda event, context: runs.append(event)}, clock=lambda: now[0])
    runner("ingest_processor", json.dumps({"Records": [{"messageId": "1", "body": "late"}]}).encode())
    now[0] += 21_601
    runner.run_pending()
    assert runs == []
    [parked] = dlq.list_parked()
    assert parked["kind"] == "invocation" and parked["error"] == "EventAgeExceeded"


# --- invocation records Lambda parked in AWS ------------------------------------------------------

#: An on-failure invocation record as AWS documents it (Lambda developer guide, "Capturing records
#: of Lambda asynchronous invocations"), around one event of our webhook.
def _aws_invocation_record(bodies):
    return {
        "version": "1.0",
        "timestamp": "2026-12-05T18:16:05.568Z",
        "requestContext": {
            "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:socialinbox-dev-ingest_processor:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": {"Records": [
            {"messageId": f"Root=1-6751f3c2:{n}", "body": body, "eventSource": "socialinbox:webhook",
             "attributes": {"SentTimestamp": "1733422565000"}} for n, body in enumerate(bodies)]},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {
            "errorMessage": "1 record(s) failed (Root=1-6751f3c2:1): TransactionCanceledException: throttled",
            "errorType": "InvocationFailed", "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
            "stackTrace": ["  File \"/var/task/app.py\", line 152, in ingest_processor\n"]},
    }


def _envelope(mid, text):
    from chalicelib.ingest.envelope import Envelope

    return Envelope("meta", page_delivery(messenger(mid, "p9", 1733422565000, text)), 1733422565000, "c-1").to_json()


def test_an_invocation_record_from_aws_is_listed_for_admins_and_redriven_record_by_record(inbox):
    sqs = aws.client("sqs")
    inbox.add_account("messenger", PAGE)
    record = _aws_invocation_record([_envelope("m_a", "first part"), _envelope("m_b", "second part")])
    sqs.send_message(QueueUrl=aws.queue_url(config.DEAD_LETTER_QUEUE), MessageBody=json.dumps(record))
    sqs.send_message(QueueUrl=aws.queue_url(config.DEAD_LETTER_QUEUE), MessageBody=_envelope("m_c", "parked"),
                     MessageAttributes={"error": {"DataType": "String", "StringValue": "ValidationException"},
                                        "attempts": {"DataType": "Number", "StringValue": "1"}})

    items = sorted(inbox.get("/api/admin/dlq")["items"], key=lambda item: item["kind"])
    assert [item["kind"] for item in items] == ["envelope", "invocation"]
    envelope, invocation = items
    assert envelope["attempts"] == 1 and envelope["error"] == "ValidationException"
    assert invocation["attempts"] == 3 and invocation["records"] == 2 and invocation["adapter"] == "meta"
    assert invocation["error"].startswith("RetriesExhausted: 1 record(s) failed")
    assert invocation["received_at"].startswith("2024-12-05")
    assert "first part" not in json.dumps(items)  # customers' text is never listed

    status, answer = inbox.call("POST", "/api/admin/dlq/replay", {"message_ids": [invocation["message_id"]]})
    assert status == 200 and answer == {"replayed": 1, "not_found": []}
    assert _count(config.INGEST_QUEUE) == 2 and _count(config.DEAD_LETTER_QUEUE) == 1
    assert inbox.process() == 2
    assert sorted(m["text"] for m in inbox.all_messages()) == ["first part", "second part"]


def test_an_invocation_record_without_its_payload_is_redriven_as_it_is_and_parked_again(inbox):
    """Lambda may leave out a payload it cannot fit: the record is sent back whole, the processor
    parks it again as unreadable; it is never dropped."""
    from chalicelib.ingest import dlq

    record = _aws_invocation_record([])
    record["requestPayload"] = None
    sqs = aws.client("sqs")
    sqs.send_message(QueueUrl=aws.queue_url(config.DEAD_LETTER_QUEUE), MessageBody=json.dumps(record))
    [listed] = dlq.list_parked()
    assert listed["kind"] == "invocation" and listed["records"] == 0 and listed["adapter"] is None
    assert dlq.replay() == 1
    inbox.process()
    [again] = dlq.list_parked()
    assert again["kind"] == "envelope" and "unreadable envelope" in again["error"]


@pytest.mark.parametrize("tamper", [
    lambda r: r.update(requestPayload={"Records": "not a list"}),
    lambda r: r.update(requestPayload={"Records": [{"body": 42}, "x", None]}),
    lambda r: r.update(requestPayload=["\ud800", "\x00"]),
    lambda r: r["requestContext"].update(approximateInvokeCount="3; drop table", condition=["a", {"b": 1}]),
    lambda r: r["requestContext"].update(approximateInvokeCount=True, condition=None),
    lambda r: r["requestContext"].update(approximateInvokeCount=10**400),
    lambda r: r.update(responsePayload={"errorMessage": "<script>x</script>" * 20_000, "errorType": {"x": 1}}),
    lambda r: r.update(responsePayload="\ud83d plain text \x00"),
    lambda r: r.update(requestPayload={"Records": [{"body": "\ud800{\"adapter\": 1}\x00"}]}),
])
def test_a_malformed_invocation_record_is_listed_and_redriven_never_a_5xx(inbox, tamper):
    """What sits in the DLQ is anyone's JSON once a queue policy is wrong: every shape is listed
    with bounded text, none breaks the admin list, and a replay keeps it (sent as it is)."""
    record = _aws_invocation_record([_envelope("m_h", "hostile")])
    tamper(record)
    aws.client("sqs").send_message(QueueUrl=aws.queue_url(config.DEAD_LETTER_QUEUE),
                                   MessageBody=json.dumps(record)[:250_000])
    [item] = inbox.get("/api/admin/dlq")["items"]
    assert item["kind"] in ("invocation", "envelope")
    assert item["error"] is None or len(item["error"]) <= 500
    assert item["attempts"] is None or isinstance(item["attempts"], int)
    status, answer = inbox.call("POST", "/api/admin/dlq/replay", {"message_ids": [item["message_id"]]})
    assert status == 200 and answer["replayed"] == 1
    assert _count(config.DEAD_LETTER_QUEUE) == 0 and _count(config.INGEST_QUEUE) >= 1


def test_make_runs_runner_keeps_accepted_events_in_the_emulator_so_a_restart_runs_them(inbox):
    """`make run` (durable): an event accepted by one runner that never ran it (killed) is run by
    the next one; one that keeps failing is retried twice, then parked, and never kept twice."""
    from chalicelib.ingest import dlq
    from chalicelib.local.async_invoke import LocalInvocations, holding_queue

    seen = []

    def handler(event, context):
        body = event["Records"][0]["body"]
        seen.append(body)
        if body == "boom":
            raise RuntimeError("always fails")

    before_the_crash = LocalInvocations({"ingest_processor": handler}, durable=True)
    before_the_crash("ingest_processor", json.dumps({"Records": [{"messageId": "1", "body": "fine"}]}).encode())
    before_the_crash("ingest_processor", json.dumps({"Records": [{"messageId": "2", "body": "boom"}]}).encode())
    assert seen == [] and _count(holding_queue("ingest_processor")) == 2

    after_the_restart = LocalInvocations({"ingest_processor": handler}, durable=True)
    after_the_restart.run_pending()
    assert seen.count("fine") == 1 and seen.count("boom") == 3
    assert _count(holding_queue("ingest_processor")) == 0
    [parked] = dlq.list_parked()
    assert parked["kind"] == "invocation" and parked["attempts"] == "3" and "always fails" in parked["error"]
