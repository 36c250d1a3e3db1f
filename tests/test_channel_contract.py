"""Checks every registered adapter gets for free (one harness, parametrised over the registry):
forged deliveries are refused before anything is stored, demo deliveries land once, and any
validly signed JSON gets a 2xx/4xx, never a 5xx, while the processor never loses an event."""
from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings

from chalicelib import aws, config
from chalicelib.runtime import runtime
from chalicelib.channels import adapter_names, get_adapter
from tests.helpers import compact
from tests.helpers import json_values as helpers_json_values

ADAPTERS = adapter_names()


def _queued() -> int:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=aws.queue_url(config.INGEST_QUEUE), AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def _seed_demo_accounts(inbox, adapter) -> None:
    for channel, account_id, name in adapter.demo_accounts:
        inbox.add_account(channel, account_id, name)


@pytest.mark.parametrize("name", ADAPTERS)
def test_adapter_declares_demo_material(name):
    adapter = get_adapter(name)
    assert adapter.demo_accounts, f"{name} has no demo accounts"
    assert adapter.demo_deliveries(int(time.time() * 1000)), f"{name} has no demo deliveries"
    assert set(c for c, _, _ in adapter.demo_accounts) <= set(adapter.channels)


@pytest.mark.parametrize("name", ADAPTERS)
def test_unsigned_and_forged_deliveries_are_refused_and_nothing_is_stored(inbox, name):
    adapter = get_adapter(name)
    body = compact(adapter.demo_deliveries(int(time.time() * 1000))[0])
    unsigned = inbox.post_webhook(name, body)
    assert unsigned.status_code == 401, unsigned.body
    forged_headers = adapter.signed_headers(body, lambda secret: "not-the-real-secret-0123456789")
    forged = inbox.post_webhook(name, body, forged_headers)
    assert forged.status_code == 401, forged.body
    if adapter.body_signed:  # a shared-token platform cannot tell a tampered body
        tampered_headers = adapter.signed_headers(body, runtime.secret)
        tampered = inbox.post_webhook(name, body + b" ", tampered_headers)
        assert tampered.status_code == 401, tampered.body
    assert _queued() == 0
    assert inbox.process() == 0
    assert inbox.all_messages() == []


@pytest.mark.parametrize("name", ADAPTERS)
def test_demo_deliveries_land_exactly_once(inbox, name):
    adapter = get_adapter(name)
    _seed_demo_accounts(inbox, adapter)
    deliveries = adapter.demo_deliveries(int(time.time() * 1000))
    for _ in range(2):  # every delivery twice: platforms retry
        for payload in deliveries:
            body = compact(payload)
            response = inbox.post_webhook(name, body, adapter.signed_headers(body, runtime.secret))
            assert 200 <= response.status_code < 300, response.body
    inbox.process()
    messages = inbox.all_messages()
    assert messages, f"{name}: demo traffic produced no messages"
    ids = [m["id"] for m in messages]
    assert len(ids) == len(set(ids))
    platform_ids = [m["platform_message_id"] for m in messages]
    assert len(platform_ids) == len(set(platform_ids)), "a duplicate delivery produced a second message"
    assert inbox.quarantine() == [], "demo traffic must be routable and readable"


json_values = helpers_json_values()


@pytest.mark.parametrize("name", ADAPTERS)
def test_any_signed_json_gets_a_client_answer_and_is_never_lost(aws_backend, name):
    """Property: whatever JSON arrives validly signed, the webhook answers < 500 and the
    processor handles it without error (unreadable parts are quarantined, not dropped)."""
    from chalice.test import Client

    import app as application
    from chalicelib.local.pump import drain

    adapter = get_adapter(name)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(payload=json_values)
    def check(payload):
        body = json.dumps(payload).encode()
        with Client(application.app, stage_name="local") as client:
            headers = {"Content-Type": "application/json"}
            headers.update(adapter.signed_headers(body, runtime.secret))
            response = client.http.post(f"/webhooks/{name}", body=body, headers=headers)
        assert response.status_code < 500, response.body
        drain(application.ingest_processor)
        dlq = aws.client("sqs").get_queue_attributes(QueueUrl=aws.queue_url(config.DEAD_LETTER_QUEUE),
                                                     AttributeNames=["ApproximateNumberOfMessages"])
        assert dlq["Attributes"]["ApproximateNumberOfMessages"] == "0", "processor crashed on a delivery"
        assert _queued() == 0

    check()


@pytest.mark.parametrize("name", ADAPTERS)
def test_logs_are_json_lines_with_a_correlation_id_and_never_hold_secrets(inbox, name):
    import io
    import logging

    from chalicelib.logs import logger

    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    capture.setFormatter(logger.registered_formatter)
    logger.addHandler(capture)
    try:
        headers = _exercise_logs(inbox, name)
    finally:
        logger.removeHandler(capture)
    out = stream.getvalue()
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines, "expected structured log lines"
    assert any(line.get("correlation_id") for line in lines if line.get("message") == "message recorded")
    secrets = [runtime.secret(n) for n in ("META_APP_SECRET", "META_VERIFY_TOKEN", "X_CONSUMER_SECRET",
                                              "TELEGRAM_SECRET_TOKEN", "LINKEDIN_CLIENT_SECRET", "AUTH_TOKEN_SECRET")]
    for value in [s for s in secrets if s] + list(headers.values()):
        assert value not in out, "a secret or signature reached the logs"


def _exercise_logs(inbox, name):
    adapter = get_adapter(name)
    _seed_demo_accounts(inbox, adapter)
    payload = adapter.demo_deliveries(int(time.time() * 1000))[0]
    body = compact(payload)
    headers = adapter.signed_headers(body, runtime.secret)
    inbox.post_webhook(name, body, headers)
    inbox.post_webhook(name, body, adapter.signed_headers(body, lambda s: "forged-secret-0123456789abcdef"))
    inbox.process()
    return headers
