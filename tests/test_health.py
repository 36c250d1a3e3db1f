"""GET /health: no authentication, no secrets or names in the answer; 200 only when the tables and
the queues the API needs are reachable, 503 (and a logged reason) otherwise."""
from __future__ import annotations

import json

from chalicelib import config
from chalicelib.runtime import runtime


def _health(inbox):
    response = inbox.client.http.get("/health")
    return response.status_code, json.loads(response.body), response.body.decode()


def test_healthy_without_any_credentials(inbox):
    status, body, _ = _health(inbox)
    assert status == 200
    assert body == {"status": "ok", "checks": {"tables": "ok", "ingest_queue": "ok", "outbox_queue": "ok"}}


def test_a_missing_queue_is_503_and_the_answer_names_nothing(inbox, monkeypatch, caplog):
    from chalicelib.runtime import runtime

    missing = "https://sqs.us-east-1.amazonaws.com/123456789012/socialinbox-test-outbox-gone"
    monkeypatch.setenv("OUTBOX_QUEUE_URL", missing)
    runtime.reset()
    status, body, text = _health(inbox)
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"] == {"tables": "ok", "ingest_queue": "ok", "outbox_queue": "failed"}
    assert "socialinbox" not in text and "amazonaws" not in text
    assert any(getattr(r, "check", None) == "outbox_queue" for r in caplog.records)


def test_a_missing_table_is_503(inbox):
    from chalicelib import aws

    aws.client("dynamodb").delete_table(TableName=config.table_name("conversations"))
    status, body, _ = _health(inbox)
    assert status == 503 and body["checks"]["tables"] == "failed"
    assert body["checks"]["ingest_queue"] == "ok"


def test_health_reads_no_secret(inbox, monkeypatch):
    """An AWS stage with no secrets in SSM still answers: the check must not need them."""
    monkeypatch.setenv("SOCIALINBOX_STAGE", "dev")
    for name in list(config.LOCAL_SECRET_DEFAULTS):
        monkeypatch.delenv(name, raising=False)
    runtime.forget_secrets()
    status, body, _ = _health(inbox)
    assert status == 200, body
