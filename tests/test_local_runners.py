"""`make run` runs every event source the app registers (chalicelib.local.runners), each with its
deployed semantics: SQS batch size, window and partial batch responses as the deploy enables
them, Rate and UTC Cron schedules, DynamoDB streams in order with retries; and the local
gateway's own answers carry the app's security headers."""
from __future__ import annotations

import datetime as dt
import threading
import urllib.error
import urllib.request

import pytest
from chalice import Chalice, Cron, Rate

from chalicelib.local import cron, runners
from chalicelib.local.streams import StreamNotFound

UTC = dt.timezone.utc


def _names(found):
    return sorted(runner.function_name for runner in found)


# --- discovery -----------------------------------------------------------------------------------


def test_every_event_source_registered_on_the_app_has_a_local_runner():
    import app

    from chalicelib.local.async_invoke import LocalInvocations

    registered = sorted(source.name for source in app.app.event_sources)
    assert "routing_sweeper" in registered and "sla_sweeper" in registered
    found = runners.discover(app.app)
    assert _names(r for r in found if not isinstance(r, LocalInvocations)) == registered
    # ... and the webhooks' asynchronous invocations of the processor have theirs
    [invocations] = [r for r in found if isinstance(r, LocalInvocations)]
    assert invocations.functions == ["ingest_processor"]


def test_the_runner_of_asynchronous_invocations_becomes_the_runtimes_invoker_when_started(aws_backend):
    import app

    from chalicelib.local.async_invoke import LocalInvocations
    from chalicelib.runtime import runtime

    [invocations] = [r for r in runners.discover(app.app) if isinstance(r, LocalInvocations)]
    assert "asynchronous invocations of ingest_processor" in runners.describe(invocations)
    runners.start_all([invocations])
    try:
        assert runtime.invoker() is invocations and invocations.is_alive()
    finally:
        assert runners.stop_all([invocations], 5.0) == []


def test_an_event_source_without_a_local_runner_is_named_not_skipped():
    synthetic = Chalice(app_name="synthetic")

    @synthetic.schedule(Rate(5, unit=Rate.MINUTES), name="fine")
    def fine(event):
        return None

    @synthetic.on_s3_event(bucket="uploads", name="thumbnails")
    def thumbnails(event):
        return None

    with pytest.raises(runners.NoLocalRunner) as refused:
        runners.discover(synthetic)
    assert "thumbnails (S3EventConfig)" in str(refused.value)


def test_a_new_schedule_or_consumer_needs_no_change_to_the_local_server():
    synthetic = Chalice(app_name="synthetic")

    @synthetic.schedule(Cron(0, 3, "*", "*", "?", "*"), name="nightly_forecast")
    def nightly(event):
        return None

    @synthetic.on_sqs_message(queue="socialinbox-test-reports", batch_size=7, name="report_builder",
                              maximum_batching_window_in_seconds=2)
    def reports(event):
        return None

    found = {runner.function_name: runner for runner in runners.discover(synthetic)}
    assert set(found) == {"nightly_forecast", "report_builder"}
    assert runners.describe(found["nightly_forecast"]) == "nightly_forecast (cron(0 3 * * ? *) UTC)"
    assert runners.describe(found["report_builder"]) == ("report_builder (sqs socialinbox-test-reports, batch 7, "
                                                         "window 2 s)")


# --- SQS -----------------------------------------------------------------------------------------


def _queue(name):
    from chalicelib.runtime import runtime

    sqs = runtime.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return sqs, url


def _queued(sqs, url):
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                        "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attributes["Attributes"].values())


def _consumer_app(queue, function_name, seen, fail_body=None):
    """A synthetic app with one SQS consumer that names `fail_body` as a batch item failure."""
    from chalicelib.ingest.processor import partial_batch_responses

    synthetic = Chalice(app_name="synthetic")

    @synthetic.on_sqs_message(queue=queue, batch_size=3, name=function_name)
    def consume(event):
        records = list(event)
        seen.append({"bodies": [r.body for r in records], "partial": partial_batch_responses()})
        return {"batchItemFailures": [{"itemIdentifier": r.to_dict()["messageId"]}
                                      for r in records if r.body == fail_body]}

    return synthetic


def test_a_consumer_gets_batches_of_its_batch_size(aws_backend):
    sqs, url = _queue("socialinbox-test-runner-batches")
    for i in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    seen = []
    (pump,) = runners.discover(_consumer_app("socialinbox-test-runner-batches", "outbox_worker", seen))
    assert pump.run_once() == 3
    assert pump.run_once() == 2
    assert sorted(body for batch in seen for body in batch["bodies"]) == [f"m{i}" for i in range(5)]
    assert _queued(sqs, url) == 0


@pytest.mark.parametrize("function_name,reports", [("sla_timers", True), ("ingest_processor", True),
                                                   ("outbox_worker", False), ("report_builder", False)])
def test_partial_batch_responses_exactly_where_the_deploy_enables_them(aws_backend, monkeypatch,
                                                                       function_name, reports):
    from infra import deploy

    assert (function_name in deploy.PARTIAL_BATCH_FUNCTIONS) is reports
    monkeypatch.setenv(deploy.PARTIAL_BATCH_ENV, "true")  # a stray process-wide value changes nothing
    sqs, url = _queue("socialinbox-test-runner-partial")
    for body in ("ok-1", "bad", "ok-2"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    seen = []
    pump = runners.discover(_consumer_app("socialinbox-test-runner-partial", function_name, seen, fail_body="bad"))[0]
    assert pump.reports_failures is reports
    assert pump.run_once() == 3
    assert seen[0]["partial"] is reports  # the function's own deployed variable
    # With ReportBatchItemFailures the named record stays queued; without it Lambda ignores the
    # answer and the whole batch is deleted.
    assert _queued(sqs, url) == (1 if reports else 0)


def test_an_unreadable_partial_batch_response_fails_the_whole_batch(aws_backend):
    sqs, url = _queue("socialinbox-test-runner-unreadable")
    sqs.send_message(QueueUrl=url, MessageBody="one")
    synthetic = Chalice(app_name="synthetic")

    @synthetic.on_sqs_message(queue="socialinbox-test-runner-unreadable", batch_size=10, name="sla_timers")
    def consume(event):
        return {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}

    (pump,) = runners.discover(synthetic)
    assert pump.run_once() == 1
    assert _queued(sqs, url) == 1


# --- schedules -----------------------------------------------------------------------------------


def test_a_rate_schedule_runs_at_its_rate_and_the_speedup_divides_it(monkeypatch):
    synthetic = Chalice(app_name="synthetic")
    events = []

    @synthetic.schedule(Rate(2, unit=Rate.MINUTES), name="sweeper")
    def sweeper(event):
        events.append(event.to_dict())

    (schedule,) = runners.discover(synthetic)
    assert schedule.timing == 120
    monkeypatch.setenv(runners.SPEEDUP_ENV, "60")
    (fast,) = runners.discover(synthetic)
    assert fast.timing == 2
    fast.run_once(dt.datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    assert events[0]["detail-type"] == "Scheduled Event" and events[0]["time"] == "2026-01-02T03:04:00Z"
    assert events[0]["resources"][0].endswith(":rule/sweeper")
    monkeypatch.setenv(runners.SPEEDUP_ENV, "0")
    with pytest.raises(ValueError):
        runners.discover(synthetic)


@pytest.mark.parametrize("expression,after,expected", [
    ("cron(0 12 * * ? *)", "2026-03-01T12:00", "2026-03-02T12:00"),
    ("cron(0/15 * ? * MON-FRI *)", "2026-03-06T23:50", "2026-03-09T00:00"),  # Friday night -> Monday
    ("cron(0 18 ? * 6L *)", "2026-03-01T00:00", "2026-03-27T18:00"),  # the last Friday of March
    ("cron(0 9 ? * 2#1 *)", "2026-03-03T00:00", "2026-04-06T09:00"),  # the first Monday
    ("cron(30 0 L * ? *)", "2026-02-01T00:00", "2026-02-28T00:30"),
    ("cron(0 8 15W * ? *)", "2026-08-01T00:00", "2026-08-14T08:00"),  # the 15th is a Saturday
    ("cron(0 8 LW * ? *)", "2026-05-01T00:00", "2026-05-29T08:00"),  # May 31st is a Sunday
    ("cron(0 0 1 JAN ? 2027-2030/2)", "2026-06-01T00:00", "2027-01-01T00:00"),
    ("cron(5 4 29 2 ? *)", "2026-03-01T00:00", "2028-02-29T04:05"),
])
def test_cron_expressions_fire_at_their_utc_times(expression, after, expected):
    moment = dt.datetime.fromisoformat(after).replace(tzinfo=UTC)
    assert cron.Cron(expression).next_after(moment) == dt.datetime.fromisoformat(expected).replace(tzinfo=UTC)


def test_cron_is_evaluated_in_utc_whatever_the_local_zone():
    lisbon_summer = dt.timezone(dt.timedelta(hours=1))
    moment = dt.datetime(2026, 7, 1, 12, 30, tzinfo=lisbon_summer)  # 11:30 UTC
    assert cron.Cron("cron(0 12 * * ? *)").next_after(moment) == dt.datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert cron.Cron("cron(0 12 * * ? 2020)").next_after(moment) is None


@pytest.mark.parametrize("expression", ["cron(0 12 * * * *)", "cron(0 12 ? * ? *)", "cron(0 12 * *)",
                                        "cron(61 * * * ? *)", "cron(0 12 ? * 8 *)", "rate(0 minutes)",
                                        "rate(5 fortnights)", "cron(0 0 32W * ? *)"])
def test_malformed_schedule_expressions_are_refused(expression):
    with pytest.raises(ValueError):
        cron.parse(expression)


# --- DynamoDB streams ----------------------------------------------------------------------------

TABLE = "socialinbox-test-runner-stream"
STREAM_ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}/stream/any-label"


def _table(stream=True):
    from chalicelib.runtime import runtime

    dynamodb = runtime.client("dynamodb")
    extra = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}} if stream else {}
    dynamodb.create_table(TableName=TABLE, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST", **extra)
    return dynamodb


def _stream_app(delivered, failures=0, starting_position="TRIM_HORIZON"):
    synthetic = Chalice(app_name="synthetic")
    remaining = {"failures": failures}

    @synthetic.on_dynamodb_record(stream_arn=STREAM_ARN, batch_size=2, starting_position=starting_position,
                                  name="report_events")
    def consume(event):
        batch = [(r.event_name, r.table_name, r.keys["pk"]["S"], (r.new_image or {}).get("n", {}).get("N"),
                  r.timestamp.year) for r in event]
        delivered.append(batch)
        if remaining["failures"]:
            remaining["failures"] -= 1
            raise RuntimeError("the consumer failed")

    return synthetic


def _write(dynamodb, *changes):
    for key, n in changes:
        dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": key}, "n": {"N": str(n)}})


def test_a_stream_consumer_gets_its_tables_records_in_order_in_batches(aws_backend):
    dynamodb = _table()
    delivered = []
    (reader,) = runners.discover(_stream_app(delivered))
    reader.prepare()
    _write(dynamodb, ("a", 1), ("b", 1), ("a", 2))
    while reader.poll_once():
        pass
    year = dt.datetime.now(UTC).year
    assert delivered == [[("INSERT", TABLE, "a", "1", year), ("INSERT", TABLE, "b", "1", year)],
                         [("MODIFY", TABLE, "a", "2", year)]]


def test_a_failed_stream_batch_is_retried_before_anything_after_it(aws_backend):
    dynamodb = _table()
    delivered = []
    (reader,) = runners.discover(_stream_app(delivered, failures=2))
    reader.retry_seconds = 0.0
    reader.prepare()
    _write(dynamodb, ("a", 1), ("a", 2), ("a", 3))
    while reader.poll_once():
        pass
    keys = [[(r[2], r[3]) for r in batch] for batch in delivered]
    assert keys == [[("a", "1"), ("a", "2")]] * 3 + [[("a", "3")]]


def test_latest_starts_after_what_the_table_already_holds(aws_backend):
    dynamodb = _table()
    _write(dynamodb, ("before", 1))
    delivered = []
    (reader,) = runners.discover(_stream_app(delivered, starting_position="LATEST"))
    reader.prepare()
    _write(dynamodb, ("after", 1))
    while reader.poll_once():
        pass
    assert [[r[2] for r in batch] for batch in delivered] == [["after"]]


def test_a_stream_consumer_on_a_table_without_a_stream_fails_at_startup(aws_backend):
    _table(stream=False)
    found = runners.discover(_stream_app([]))
    with pytest.raises(StreamNotFound, match=f"{TABLE} has no stream"):
        runners.start_all(found)
    assert not any(runner.is_alive() for runner in found)


def test_a_stream_arn_names_its_table_or_is_refused():
    from chalicelib.local.streams import table_of

    assert table_of("arn:aws:dynamodb:eu-west-1:111122223333:table/socialinbox-dev-conversations/stream/"
                    "2026-01-01T00:00:00.000") == "socialinbox-dev-conversations"
    for wrong in ("arn:aws:sqs:us-east-1:1:queue", "arn:aws:dynamodb:us-east-1:1:table/t1", ""):
        with pytest.raises(ValueError):
            table_of(wrong)


# --- starting and stopping -----------------------------------------------------------------------


def test_every_runner_stops_within_the_ctrl_c_budget(aws_backend, monkeypatch):
    from chalicelib.local.server import PUMP_STOP_SECONDS

    _table()
    _queue("socialinbox-test-runner-stop")
    synthetic = _stream_app([])

    @synthetic.on_sqs_message(queue="socialinbox-test-runner-stop", batch_size=10, name="sla_timers",
                              maximum_batching_window_in_seconds=5)
    def consume(event):
        return None

    @synthetic.schedule(Rate(1, unit=Rate.MINUTES), name="sweeper")
    def sweeper(event):
        return None

    found = runners.discover(synthetic)
    runners.start_all(found)
    assert all(runner.is_alive() for runner in found)
    assert runners.stop_all(found, PUMP_STOP_SECONDS) == []


# --- the local gateway's own answers -------------------------------------------------------------


@pytest.fixture
def gateway_base():
    import app
    from chalice.config import Config

    from chalicelib.local import gateway

    synthetic = Chalice(app_name="synthetic")

    @synthetic.route("/framed")
    def framed():
        from chalice import Response

        return Response(body="{}", headers={"X-Frame-Options": "SAMEORIGIN", "Content-Type": "application/json"})

    server = gateway.create_server(synthetic, Config(chalice_stage="local"), "127.0.0.1", 0, app.SECURITY_HEADERS)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server.server_address[1]}", app.SECURITY_HEADERS
    server.shutdown()
    server.server.server_close()


def _answer(method, url):
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers


@pytest.mark.parametrize("method,path,status", [("GET", "/no-such-route", 403), ("POST", "/", 403),
                                                ("OPTIONS", "/framed", 200), ("BREW", "/framed", 501)])
def test_the_local_servers_own_answers_carry_the_security_headers(gateway_base, method, path, status):
    base, expected = gateway_base
    code, headers = _answer(method, base + path)
    assert code == status
    for name, value in expected.items():
        assert headers.get(name) == value, name
    assert headers.get("Cache-Control") == "no-store"


def test_a_header_the_app_set_is_kept(gateway_base):
    base, _ = gateway_base
    code, headers = _answer("GET", base + "/framed")
    assert code == 200 and headers.get_all("X-Frame-Options") == ["SAMEORIGIN"]
