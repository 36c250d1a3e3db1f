"""Secrets come from SSM in AWS stages (cached), env/dev defaults locally; X-Ray is optional."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chalicelib import aws, config
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
    monkeypatch.setenv("SOCIALINBOX_STAGE", "dev")
    monkeypatch.delenv("META_APP_SECRET")
    config.forget_secrets()
    yield
    config.forget_secrets()


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
    assert config.get_secret("META_VERIFY_TOKEN") == "dev_meta_verify_token"
    monkeypatch.setenv("META_VERIFY_TOKEN", "mine")
    assert config.get_secret("META_VERIFY_TOKEN") == "mine"


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
        "assert tracing.recorder() is not None\n"
        "with tracing.subsegment('enqueue', adapter='meta'):\n"
        "    pass\n"
        "print('traced-ok')\n"
    )
    assert "traced-ok" in _python(script, drop=("AWS_XRAY_SDK_ENABLED", "LAMBDA_TASK_ROOT"))


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
    assert "patched-ok" in _python(script, drop=("AWS_XRAY_SDK_ENABLED", "LAMBDA_TASK_ROOT"))


def test_offline_activate_loads_nothing():
    script = (
        "import sys\n"
        "from chalicelib import tracing\n"
        "tracing.activate(http=True)\n"
        "assert 'aws_xray_sdk' not in sys.modules and 'requests' not in sys.modules\n"
        "print('offline-ok')\n"
    )
    assert "offline-ok" in _python(script, drop=("LAMBDA_TASK_ROOT",))
