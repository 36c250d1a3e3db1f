"""The suite's own harness: the test client's per-request variables never replace the process's
environment (tests/conftest.py `_environment_in_place`). Before, two requests in flight at once
left one request's copy of the environment installed for the rest of the worker."""
from __future__ import annotations

import os
import threading

from chalice.test import Client


def test_two_requests_in_flight_at_once_leave_the_environment_as_it_was(inbox):
    """Enter A, enter B, leave A, leave B: the interleaving that used to leave A's copy installed."""
    original = os.environ
    a_inside, b_inside, a_left = threading.Event(), threading.Event(), threading.Event()
    client = Client(inbox.app.app, stage_name="dev")  # a stage whose variables differ: SOCIALINBOX_STAGE=dev
    patch = client.http._patched_env_vars
    variables = {"SOCIALINBOX_STAGE": "dev"}

    def request_a() -> None:
        with patch(variables):
            a_inside.set()
            assert b_inside.wait(5)
        a_left.set()

    thread = threading.Thread(target=request_a)
    thread.start()
    assert a_inside.wait(5)
    with patch(variables):
        b_inside.set()
        assert a_left.wait(5)
    thread.join(5)
    assert os.environ is original
    assert os.environ.get("SOCIALINBOX_STAGE") == "local"


def test_requests_see_the_local_stage_the_suite_runs_in(inbox):
    """Every test client is made for stage "local" (the conftest's environment): a request never
    runs as another stage by accident (secrets would then be asked of SSM)."""
    assert inbox.client.http._config.chalice_stage == "local"
    assert inbox.call("get", "/health")[0] == 200
    assert os.environ.get("SOCIALINBOX_STAGE") == "local"
