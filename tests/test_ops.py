"""Operating the product: security headers on every answer, one JSON log line per log call,
`make run` refusing a taken port at once, and the DLQ tools against the local stack."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from typing import Dict, Iterator

import pytest

from tests.helpers import compact, meta_signature
from tests.test_inbox_api import PAGE, messenger, page_delivery

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- security headers ---------------------------------------------------------------------------


def _lower(headers: Dict[str, str]) -> Dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _assert_security_headers(response, what: str) -> Dict[str, str]:
    headers = _lower(response.headers)
    assert headers.get("x-content-type-options") == "nosniff", what
    assert headers.get("referrer-policy") == "no-referrer", what
    assert headers.get("x-frame-options") == "DENY", what
    assert headers.get("strict-transport-security", "").startswith("max-age="), what
    return headers


def test_every_route_family_answers_with_security_headers(inbox):
    http = inbox.client.http
    token = inbox.login_admin()
    signed = compact(page_delivery(messenger("m1", "p1", 1700000000000)))
    api_answers = {
        "GET /api/me": http.get("/api/me", headers={"Authorization": "Bearer " + token}),
        "GET /api/conversations (no token)": http.get("/api/conversations"),
        "POST /api/auth/login (refused)": http.post("/api/auth/login", body=json.dumps(
            {"email": "nobody@example.com", "password": "wrong password"}), headers={"Content-Type": "application/json"}),
        "GET /api/admin/quarantine": http.get("/api/admin/quarantine", headers={"Authorization": "Bearer " + token}),
    }
    for what, response in api_answers.items():
        headers = _assert_security_headers(response, what)
        assert headers.get("cache-control") == "no-store", what
    assert api_answers["GET /api/me"].status_code == 200
    assert api_answers["GET /api/conversations (no token)"].status_code == 401

    webhook_answers = {
        "GET handshake": http.get("/webhooks/meta?hub.mode=subscribe&hub.verify_token=test_verify_token"
                                  "&hub.challenge=42"),
        "POST signed": inbox.post_meta(signed),
        "POST forged": inbox.post_meta(signed, secret="wrong"),
        "POST unknown platform": inbox.post_webhook("nope", signed),
        "POST wrong content type": http.post("/webhooks/meta", body=signed, headers={"Content-Type": "text/plain"}),
    }
    assert [r.status_code for r in webhook_answers.values()] == [200, 200, 401, 404, 415]
    for what, response in webhook_answers.items():
        headers = _assert_security_headers(response, what)
        assert headers.get("cache-control") == "no-store", what

    page = http.get("/")
    headers = _assert_security_headers(page, "GET /")
    assert "frame-ancestors 'none'" in headers["content-security-policy"], "the page keeps its own CSP"
    assert headers["cache-control"] == "no-cache", "the page keeps its revalidation policy"
    asset = http.get("/static/app.js")
    _assert_security_headers(asset, "GET /static/app.js")
    missing = http.get("/static/nope.js")
    assert missing.status_code == 404
    _assert_security_headers(missing, "GET /static/nope.js")


# --- logging ------------------------------------------------------------------------------------

_ONE_REQUEST = textwrap.dedent("""
    import os, sys
    os.environ.update({
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "SOCIALINBOX_STAGE": "logtest", "RESOURCE_PREFIX": "socialinbox-logtest", "AWS_XRAY_SDK_ENABLED": "false",
        "META_APP_SECRET": "test_app_secret", "AWS_LAMBDA_FUNCTION_NAME": "socialinbox-dev",
    })
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "LOG_LEVEL"):
        os.environ.pop(name, None)
    import moto
    from moto import mock_aws
    with mock_aws(config={"lambda": {"use_docker": False}}):  # Invoke answered 202, as Lambda does
        import app  # as Lambda does: the app module first
        from chalice.test import Client
        from chalicelib.local import stack
        stack.create_all()
        body, signature = sys.argv[1].encode(), sys.argv[2]
        with Client(app.app) as client:
            print("--- request ---", flush=True)
            for sig in (signature, "sha256=" + "0" * 64):
                client.http.post("/webhooks/meta", body=body,
                                 headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig})
            print("--- done ---", flush=True)
""")


def test_each_log_call_is_one_json_line_and_never_a_text_duplicate():
    body = compact(page_delivery(messenger("m1", "p1", 1700000000000)))
    result = subprocess.run([sys.executable, "-c", _ONE_REQUEST, body.decode(), meta_signature(body)],
                            cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout.split("--- request ---\n", 1)[1].split("--- done ---", 1)[0]
    lines = [line for line in out.splitlines() if line.strip()]
    assert all(line.startswith("{") for line in lines), lines  # no "socialinbox - INFO - ..." text copies
    records = [json.loads(line) for line in lines]
    assert [r["message"] for r in records] == ["delivery accepted", "webhook rejected"]
    assert [r["level"] for r in records] == ["INFO", "WARNING"]
    assert "test_app_secret" not in out and body.decode() not in out


# --- make run: taken ports ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def taken_port() -> Iterator[int]:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        yield holder.getsockname()[1]
    finally:
        holder.close()


def _run_server(*args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-m", "chalicelib.local.server", *args], cwd=PROJECT_DIR,
                              capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired as expired:  # the old behaviour: message, then a hang
        pytest.fail(f"server did not exit with a taken port; output: {expired.stdout!r} {expired.stderr!r}")


@pytest.mark.parametrize("which", ["--port", "--moto-port"])
def test_make_run_exits_at_once_when_a_port_is_taken(taken_port, which):
    other = "--moto-port" if which == "--port" else "--port"
    result = _run_server(which, str(taken_port), other, str(_free_port()))
    assert result.returncode != 0
    assert f"127.0.0.1:{taken_port}" in result.stderr and "in use" in result.stderr
    variable = "PORT=" if which == "--port" else "MOTO_PORT="
    assert f"make run {variable}" in result.stderr
    assert "socialinbox is running" not in result.stdout


# --- DLQ tools against the local stack ----------------------------------------------------------


@pytest.fixture
def moto_server() -> Iterator[int]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield port
    finally:
        server.stop()


def _local_sqs(port: int):
    import boto3

    return boto3.session.Session().client("sqs", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
                                          aws_access_key_id="local", aws_secret_access_key="local")


def _dlq_cli(port: int, command: str) -> subprocess.CompletedProcess:
    """`python -m chalicelib.ingest.dlq <command>` as `make list-dlq STAGE=local` runs it, with no
    AWS credentials anywhere in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"SOCIALINBOX_STAGE": "local", "MOTO_PORT": str(port), "RESOURCE_PREFIX": "socialinbox-opstest",
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true"})
    return subprocess.run([sys.executable, "-m", "chalicelib.ingest.dlq", command], cwd=PROJECT_DIR, env=env,
                          capture_output=True, text=True, timeout=60)


def test_dlq_tools_work_against_the_local_stack(moto_server):
    sqs = _local_sqs(moto_server)
    ingest = sqs.create_queue(QueueName="socialinbox-opstest-ingest")["QueueUrl"]
    dlq = sqs.create_queue(QueueName="socialinbox-opstest-ingest-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody="{}", MessageAttributes={
        "error": {"DataType": "String", "StringValue": "RuntimeError: boom"},
        "attempts": {"DataType": "Number", "StringValue": "4"}})

    listed = _dlq_cli(moto_server, "list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    [parked] = json.loads(listed.stdout)
    assert parked["error"] == "RuntimeError: boom" and parked["attempts"] == "4"

    replayed = _dlq_cli(moto_server, "replay")
    assert replayed.returncode == 0, replayed.stderr[-2000:]
    assert "replayed 1 envelope(s)" in replayed.stdout
    assert sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0).get("Messages") is None
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=ingest, WaitTimeSeconds=0)["Messages"]] == ["{}"]


def test_the_local_stack_settings_apply_to_the_local_stage_only():
    from chalicelib.ingest.dlq import use_local_stack

    env = {"SOCIALINBOX_STAGE": "dev", "AWS_PROFILE": "ops"}
    assert use_local_stack(env) is False and env == {"SOCIALINBOX_STAGE": "dev", "AWS_PROFILE": "ops"}
    env = {"SOCIALINBOX_STAGE": "local", "MOTO_PORT": "5123", "AWS_PROFILE": "ops", "AWS_SESSION_TOKEN": "t"}
    assert use_local_stack(env) is True
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5123"
    assert env["AWS_ACCESS_KEY_ID"] == "local" and "AWS_PROFILE" not in env and "AWS_SESSION_TOKEN" not in env


def test_makefile_passes_the_moto_port_to_the_dlq_tools():
    for target in ("list-dlq", "replay-dlq"):
        result = subprocess.run(["make", "-n", target, "STAGE=local", "MOTO_PORT=5123"], cwd=PROJECT_DIR,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "SOCIALINBOX_STAGE=local MOTO_PORT=5123" in result.stdout and "chalicelib.ingest.dlq" in result.stdout
