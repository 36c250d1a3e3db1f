"""Secrets come from SSM in AWS stages (cached), env/dev defaults locally; X-Ray is optional."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from chalicelib import aws, config
from chalicelib.runtime import runtime
from tests.helpers import PAGE, messenger, page_delivery

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(script: str, drop=()) -> str:
    """Run `script` in a fresh interpreter (what it imports is the point) without `drop` in its
    environment; its stdout."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def aws_stage(monkeypatch):
    from tests.helpers import DeployedLambda

    monkeypatch.setenv("SOCIALINBOX_STAGE", "dev")
    monkeypatch.delenv("META_APP_SECRET")
    runtime.forget_secrets()
    runtime.use_invoker(DeployedLambda())
    yield
    runtime.forget_secrets()


def test_in_aws_the_webhook_secret_comes_from_ssm(inbox, aws_stage):
    aws.client("ssm").put_parameter(Name="/socialinbox-test/META_APP_SECRET", Value="from-ssm-secret",
                                    Type="SecureString")
    inbox.add_account("messenger", PAGE)
    assert inbox.post_meta(page_delivery(messenger("m1", "p1", 1700000000000)), secret="from-ssm-secret").status_code == 200
    assert inbox.post_meta(page_delivery(messenger("m2", "p1", 1700000000000))).status_code == 401


def test_in_aws_a_missing_secret_fails_closed(inbox, aws_stage):
    response = inbox.post_meta(page_delivery(messenger("m1", "p1", 1700000000000)), secret="dev_meta_app_secret")
    assert response.status_code == 503


def test_locally_dev_defaults_apply_only_when_the_env_var_is_absent(monkeypatch):
    monkeypatch.delenv("META_VERIFY_TOKEN")
    assert runtime.secret("META_VERIFY_TOKEN") == "dev_meta_verify_token"
    monkeypatch.setenv("META_VERIFY_TOKEN", "mine")
    assert runtime.secret("META_VERIFY_TOKEN") == "mine"


def test_tracing_is_a_clean_no_op_without_lambda_and_works_without_a_daemon_in_lambda():
    script = (
        "import os\n"
        "from chalicelib import tracing\n"
        "with tracing.subsegment('x', adapter='meta'):\n"
        "    pass\n"
        "assert tracing.recorder() is None\n"
        "import sys; assert 'aws_xray_sdk' not in sys.modules, 'X-Ray must not load outside Lambda'\n"
        "os.environ['LAMBDA_TASK_ROOT'] = '/var/task'\n"
        "tracing._checked = False\n"
        "os.environ['_X_AMZN_TRACE_ID'] = 'Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0'\n"
        "assert tracing.recorder() is None and 'aws_xray_sdk' not in sys.modules, 'an unsampled request'\n"
        "os.environ['_X_AMZN_TRACE_ID'] = 'Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1'\n"
        "assert tracing.recorder() is not None\n"
        "with tracing.subsegment('enqueue', adapter='meta'):\n"
        "    pass\n"
        "print('traced-ok')\n"
    )
    assert "traced-ok" in _python(script, drop=("AWS_XRAY_SDK_ENABLED", "LAMBDA_TASK_ROOT", "_X_AMZN_TRACE_ID"))


def test_correlation_ids_do_not_leak_between_threads():
    """`make run` serves webhooks and pumps the queue in one process: each thread's log lines
    must carry the id of the delivery that thread is working on."""
    import io
    import json
    import logging
    import threading

    from chalicelib.logs import bind_correlation_id, logger

    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    capture.setFormatter(logger.registered_formatter)
    logger.addHandler(capture)
    bound, go = threading.Barrier(2), threading.Barrier(2)

    def work(cid):
        bind_correlation_id(cid)
        bound.wait(timeout=5)
        go.wait(timeout=5)
        logger.info("working", extra={"who": cid})

    try:
        threads = [threading.Thread(target=work, args=(cid,)) for cid in ("pump-id", "webhook-id")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    finally:
        logger.removeHandler(capture)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    assert all(line["correlation_id"] == line["who"] for line in lines)


def test_in_lambda_tracing_patches_only_what_is_loaded():
    """The webhook's cold start must not import requests or pynamodb just to patch them; the
    outbox worker asks for HTTP tracing and gets requests patched before its first send."""
    script = (
        "import os, sys\n"
        "os.environ['LAMBDA_TASK_ROOT'] = '/var/task'\n"
        "os.environ['_X_AMZN_TRACE_ID'] = 'Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1'\n"
        "from chalicelib import tracing\n"
        "import botocore\n"
        "with tracing.subsegment('enqueue', adapter='meta'):\n"
        "    pass\n"
        "assert tracing.patched() == {'botocore'}, tracing.patched()\n"
        "assert 'requests' not in sys.modules and 'pynamodb' not in sys.modules\n"
        "tracing.activate(http=True)\n"
        "assert tracing.patched() == {'botocore', 'requests'}, tracing.patched()\n"
        "print('patched-ok')\n"
    )
    assert "patched-ok" in _python(script, drop=("AWS_XRAY_SDK_ENABLED", "LAMBDA_TASK_ROOT", "_X_AMZN_TRACE_ID"))


def test_offline_activate_loads_nothing():
    script = (
        "import sys\n"
        "from chalicelib import tracing\n"
        "tracing.activate(http=True)\n"
        "assert 'aws_xray_sdk' not in sys.modules and 'requests' not in sys.modules\n"
        "print('offline-ok')\n"
    )
    assert "offline-ok" in _python(script, drop=("LAMBDA_TASK_ROOT",))


def _capture_logs():
    import io
    import logging

    from chalicelib.logs import logger

    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    capture.setFormatter(logger.registered_formatter)
    logger.addHandler(capture)
    return stream, lambda: logger.removeHandler(capture)


def test_no_secret_token_password_or_message_body_is_logged_at_info(inbox, monkeypatch):
    """A deployed stage (secrets from SSM) handles a handshake, deliveries, a login, a reply and
    its send: the JSON log lines at INFO and above name ids and counts, never the values."""
    import json as _json

    import responses

    from chalicelib.api.auth import create_agent
    from chalicelib.runtime import runtime
    from tests.helpers import PAGE, DeployedLambda, messenger, page_delivery

    runtime.use_invoker(DeployedLambda())
    secrets = {"META_APP_SECRET": "s3cr3t-app-secret-value", "META_VERIFY_TOKEN": "verify-token-value-77",
               "AUTH_TOKEN_SECRET": "auth-token-secret-value-0123456789abcdef",
               "META_PAGE_TOKEN": "page-access-token-value-99"}
    monkeypatch.setenv("SOCIALINBOX_STAGE", "dev")
    for name in list(config.LOCAL_SECRET_DEFAULTS):
        monkeypatch.delenv(name, raising=False)
    for name in ("META_GRAPH_BASE_URL", "INSTAGRAM_GRAPH_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in secrets.items():
        aws.client("ssm").put_parameter(Name=f"/socialinbox-test/{name}", Value=value, Type="SecureString")
    runtime.forget_secrets()
    body_text = "my card number is 4111 1111 1111 1111 and my address is 1 Secret Lane"
    reply_text = "thanks, we fixed the private thing for you"
    password = "correct horse battery staple 42"
    now = int(__import__("time").time() * 1000)
    stream, stop = _capture_logs()
    try:
        inbox.add_account("messenger", PAGE)
        assert inbox.client.http.get("/webhooks/meta?hub.mode=subscribe&hub.verify_token=verify-token-value-77"
                                     "&hub.challenge=42").status_code == 200
        assert inbox.post_meta(page_delivery(messenger("m-secret-1", "psid-9", now, body_text)),
                               secret=secrets["META_APP_SECRET"]).status_code == 200
        assert inbox.post_meta(page_delivery(messenger("m-forged", "psid-9", now, body_text)),
                               secret="wrong").status_code == 401
        inbox.process()
        create_agent("ops@example.com", password, "Ops", role="admin")
        login = inbox.client.http.post("/api/auth/login", body=_json.dumps(
            {"email": "ops@example.com", "password": password}), headers={"Content-Type": "application/json"})
        token = _json.loads(login.body)["token"]
        assert inbox.client.http.post("/api/auth/login", body=_json.dumps(
            {"email": "ops@example.com", "password": password + "-wrong"}),
            headers={"Content-Type": "application/json"}).status_code == 401
        headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
        [conversation] = _json.loads(inbox.client.http.get("/api/conversations", headers=headers).body)["items"]
        assert inbox.client.http.post(f"/api/conversations/{conversation['id']}/messages", headers=headers,
                                      body=_json.dumps({"text": reply_text, "kind": "reply", "client_id": "c1"})
                                      ).status_code == 202
        runtime.reset()
        from chalicelib.local.pump import drain

        with responses.RequestsMock() as platform:
            platform.post(f"https://graph.facebook.com/v21.0/{PAGE}/messages",
                          json={"recipient_id": "psid-9", "message_id": "m_out_9"})
            drain(inbox.app.outbox_worker, queue="outbox")
    finally:
        stop()
    lines = [_json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    assert {"delivery accepted", "message recorded", "reply sent"} <= {line["message"] for line in lines}
    text = stream.getvalue()
    for value in [*secrets.values(), body_text, "4111", reply_text, password, token, token.split(".")[-1]]:
        assert value not in text, f"logged: {value[:12]}..."


def test_a_delivery_keeps_its_correlation_id_into_the_stored_message_and_api_calls_get_their_own(inbox):
    import json as _json

    from tests.helpers import PAGE, messenger, page_delivery

    inbox.add_account("messenger", PAGE)
    stream, stop = _capture_logs()
    try:
        inbox.post_meta(page_delivery(messenger("m-corr-1", "psid-c", 1700000000000, "hello")))
        inbox.process()
        [conversation] = inbox.conversations()
        note = inbox.client.http.post(f"/api/conversations/{conversation['id']}/messages", body=_json.dumps(
            {"text": "internal", "kind": "note", "client_id": "n-1"}),
            headers={"Authorization": "Bearer " + inbox.login_admin(), "Content-Type": "application/json"})
        assert note.status_code in (200, 201, 202), note.body
    finally:
        stop()
    lines = [_json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    [accepted] = [line for line in lines if line["message"] == "delivery accepted"]
    [recorded] = [line for line in lines if line["message"] == "message recorded"]
    assert recorded["correlation_id"] == accepted["correlation_id"]
    later = lines[lines.index(recorded) + 1:]
    assert [line["message"] for line in later] == ["outbound message stored"]  # the note, by the API
    assert later[0]["correlation_id"] != accepted["correlation_id"]


def test_the_correlation_id_follows_a_delivery_into_its_sla_timers_and_a_reply_into_its_send(inbox, monkeypatch):
    """webhook -> stored message -> warning timer (SQS) -> timer consumer -> SLA flow (execution
    input, breach message) -> timer consumer, and API reply -> outbox -> send: each step logs
    under the id of the request that started it."""
    import json as _json
    import time as _time

    from chalicelib.local.pump import drain, pump_once
    from chalicelib.runtime import runtime
    from tests.helpers import PAGE, messenger, page_delivery

    monkeypatch.setenv("DEFAULT_REPLY_SLA_SECONDS", "1")  # the warning timer is due in under a second
    monkeypatch.setenv("SLA_SQS_BREACH_MAX_SECONDS", "0")  # a long wait's path: the flow carries the id
    inbox.add_account("messenger", PAGE)
    stream, stop = _capture_logs()
    try:
        inbox.post_meta(page_delivery(messenger("m-flow-1", "psid-f", int(_time.time() * 1000), "anyone there?")))
        inbox.process()
        from chalicelib.logs import bind_correlation_id

        bind_correlation_id("another-invocation")  # each consumer invocation starts elsewhere
        warnings = []
        deadline = _time.time() + 10  # bounded: the timer is delayed about a second
        while not warnings and _time.time() < deadline:
            pump_once(lambda event, context: warnings.extend(_json.loads(r["body"]) for r in event["Records"])
                      or inbox.app.sla_timers(event, context), queue="sla-timers", wait_seconds=1)
        assert [w["kind"] for w in warnings] == ["warning"]
        sfn = aws.client("stepfunctions")
        [machine] = [m for m in sfn.list_state_machines()["stateMachines"] if m["name"].endswith("-sla")]
        [execution] = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
        flow_input = _json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
        sfn.stop_execution(executionArn=execution["executionArn"])
        # The flow's breach message, as the ASL builds it from that input, a day later.
        body = {"kind": "breach", "conversation_id": flow_input["conversation_id"], "turn": flow_input["turn"],
                "correlation_id": flow_input["correlation_id"]}
        bind_correlation_id("another-invocation")
        runtime.use_clock(lambda: _time.time() + 86_400)
        inbox.app.sla_timers({"Records": [{"messageId": "t1", "receiptHandle": "r1", "body": _json.dumps(body),
                                           "attributes": {"ApproximateReceiveCount": "1"}}]}, None)
        runtime.use_clock(None)
        reply = inbox.client.http.post(f"/api/conversations/{flow_input['conversation_id']}/messages",
                                       body=_json.dumps({"text": "yes!", "kind": "reply", "client_id": "c-9"}),
                                       headers={"Authorization": "Bearer " + inbox.login_admin(),
                                                "Content-Type": "application/json"})
        assert reply.status_code == 202, reply.body
        from chalicelib.channels.base import SendResult

        class Platform:
            def send(self, message, secrets, http):
                return SendResult("m_out_f")

        runtime.use_adapter("messenger", Platform())
        bind_correlation_id("another-invocation")
        drain(inbox.app.outbox_worker, queue="outbox")
    finally:
        stop()
    lines = [_json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    by_message = {}
    for line in lines:
        by_message.setdefault(line["message"], line)
    delivery = by_message["delivery accepted"]["correlation_id"]
    assert warnings[0]["correlation_id"] == delivery
    assert flow_input["correlation_id"] == delivery
    assert by_message["message recorded"]["correlation_id"] == delivery
    assert by_message["sla breached"]["correlation_id"] == delivery
    stored = by_message["outbound message stored"]["correlation_id"]
    assert stored != delivery
    assert by_message["reply sent"]["correlation_id"] == stored


# --- a deployed function never runs as the local stage -------------------------------------------

@pytest.mark.parametrize("stage", [None, "", "local"])
def test_a_function_in_aws_without_its_stage_refuses_to_start_and_says_why(stage):
    """Deployed without SOCIALINBOX_STAGE, a function took the local stage's defaults: the dev
    secrets, the cheap test password hash, local queue names. Now its cold start fails, logged."""
    script = ("import os, sys\n"
              "os.environ['AWS_LAMBDA_FUNCTION_NAME'] = 'socialinbox-qa'\n"
              + ("" if stage is None else f"os.environ['SOCIALINBOX_STAGE'] = {stage!r}\n")
              + "import app\nprint('started')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("SOCIALINBOX_STAGE", "TEST_SCRYPT_N")}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0 and "started" not in result.stdout
    [line] = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert line["level"] == "ERROR" and line["message"] == "refusing to start: local stage in AWS"
    assert "socialinbox-qa" in line["reason"] and "LocalStageInAws" in result.stderr


def test_a_function_in_aws_with_its_stage_starts():
    script = ("import os\nos.environ.update(AWS_LAMBDA_FUNCTION_NAME='socialinbox-qa', SOCIALINBOX_STAGE='qa')\n"
              "import app\nprint('started')\n")
    assert "started" in _python(script)


LAMBDA_ROOT_HANDLER = r"""
import io, logging, os, sys
# What Lambda's Python runtime does before importing the handler: its own handler on the root logger.
captured = io.StringIO()
root = logging.StreamHandler(captured)
root.setFormatter(logging.Formatter("[%(levelname)s]\t%(message)s"))
logging.getLogger().addHandler(root)
os.environ.update(AWS_LAMBDA_FUNCTION_NAME=sys.argv[1], SOCIALINBOX_STAGE="qa")
from chalicelib.logs import logger
logger.info("delivery accepted", extra={"adapter": "meta"})
print("ROOT " + repr(captured.getvalue()))
"""


@pytest.mark.parametrize("function", ["socialinbox-qa", "socialinbox-qa-webhooks"])
def test_in_lambda_every_line_is_written_once_as_json(function):
    """Lambda's runtime handler on the root logger would write each record again, as text (a
    second log line billed per line): the app's records stop at its own JSON handler."""
    env = {k: v for k, v in os.environ.items() if k not in ("SOCIALINBOX_STAGE", "AWS_LAMBDA_FUNCTION_NAME")}
    result = subprocess.run([sys.executable, "-c", LAMBDA_ROOT_HANDLER, function], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [json.loads(x)["message"] for x in lines if x.startswith("{")] == ["delivery accepted"]
    assert lines[-1] == "ROOT ''"


def test_in_aws_no_local_default_is_reachable(monkeypatch):
    """Even past the start check (a variable changed at run time), the local defaults stay closed."""
    from chalicelib.api import auth

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "socialinbox-qa")
    monkeypatch.delenv("AUTH_TOKEN_SECRET")
    runtime.forget_secrets()
    with pytest.raises(config.LocalStageInAws):
        runtime.secret("AUTH_TOKEN_SECRET")
    with pytest.raises(config.LocalStageInAws):
        auth.hash_password("a long enough password")
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    assert runtime.secret("AUTH_TOKEN_SECRET") == config.LOCAL_SECRET_DEFAULTS["AUTH_TOKEN_SECRET"]  # locally
