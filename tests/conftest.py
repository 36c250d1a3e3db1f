"""Shared test setup: fake AWS (moto, in-process), the Chalice test client, signed deliveries.

One moto backend serves the whole run: the tables and queues of infra/resources.json are created
once (`stack.create_all()`), and before every test that asks for `aws_backend` (or `inbox`) every
table is emptied, every queue purged, anything else a test left in moto (SSM parameters, extra
tables or queues) removed, and the runtime wiring reset. Creating the tables per test was most of
the suite's time.
"""
from __future__ import annotations

import os
import time

# Settings must exist before boto3, pynamodb or the app are imported.
os.environ.update({
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "SOCIALINBOX_STAGE": "local",
    "RESOURCE_PREFIX": "socialinbox-test",
    "AWS_XRAY_SDK_ENABLED": "false",
    "META_APP_SECRET": "test_app_secret",
    "META_VERIFY_TOKEN": "test_verify_token",
    "X_CONSUMER_SECRET": "test_consumer_secret",
    "TELEGRAM_SECRET_TOKEN": "test_telegram_secret",
    "LINKEDIN_CLIENT_SECRET": "test_linkedin_secret",
    "AUTH_TOKEN_SECRET": "test_auth_token_secret_0123456789abcdef",
    "POWERTOOLS_LOG_DEDUPLICATION_DISABLED": "true",
    "TEST_SCRYPT_N": "1024",  # cheap password hashes for the suite (local stage only; see auth._scrypt_n)
})
for _name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
    os.environ.pop(_name, None)

from typing import Any, Dict, Iterator, Set, Tuple  # noqa: E402

import moto  # noqa: E402,F401  (before any boto3 client exists)
import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

from tests.helpers import Inbox  # noqa: E402

def _environment_in_place() -> None:
    """Chalice's test client swaps `os.environ` for a copy with the stage's variables during each
    request and puts the saved object back afterwards. Two requests in flight at once (the
    suite's concurrency tests use threads) interleave as enter A, enter B, leave A, leave B: the
    process was left with A's copy for good, and with it whatever stage and variables were in
    force then (seen as secrets that stopped resolving for the rest of one worker). The suite's
    environment is set here and by each test's monkeypatch, so the client applies nothing: a
    test that sets another stage gets that stage in its requests too."""
    import contextlib

    from chalice import test as chalice_test

    @contextlib.contextmanager
    def as_set(self: Any, variables: Dict[str, str]) -> Iterator[None]:
        yield

    chalice_test.BaseClient._patched_env_vars = as_set  # type: ignore[method-assign]


_environment_in_place()


# Property tests: no per-example deadline (the machine is shared; timing is not what they test).
# Tests keep their own @settings; this is the default for those that set none.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("socialinbox", deadline=None, max_examples=100,
                          suppress_health_check=[HealthCheck.too_slow])
# CI (.ci/run) runs the same examples every time: a property that breaks shows up locally, where
# hypothesis explores afresh on every run, instead of failing a landing at random.
settings.register_profile("ci", parent=settings.get_profile("socialinbox"), derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "socialinbox"))

# The services whose state is the data plane: kept (emptied) between tests. Every other moto
# backend a test touched (ssm, sts, ...) is reset whole, as a fresh mock_aws would be.
_KEPT_SERVICES = ("dynamodb", "sqs")
# What decides where a boto3 client points: cached clients are reused only while these match.
_CLIENT_ENV = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB",
               "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_SSM")
_CONNECTION = " pynamodb connection"  # not a service name


class MotoBackend:
    """The run's one in-process moto backend and how to make it look fresh again."""

    def __init__(self) -> None:
        self._mock = mock_aws()
        self.tables: Set[str] = set()
        self.queues: Set[str] = set()
        self.stack_services: Set[str] = set()
        self._clients: Dict[str, Any] = {}
        self._client_env: Tuple[Any, ...] = ()

    def start(self) -> None:
        from chalicelib import aws
        from chalicelib.local import stack
        from chalicelib.runtime import runtime

        self._mock.start()
        runtime.reset()
        stack.create_all()
        # Services the stack lives in besides the data plane (state machines, their IAM role...):
        # reset between tests like any other, then the stack is created again in them.
        self.stack_services = {service for service in self._instantiated() if service not in _KEPT_SERVICES}
        self.tables = set(aws.client("dynamodb").list_tables()["TableNames"])
        self.queues = {url.rsplit("/", 1)[1] for url in aws.client("sqs").list_queues().get("QueueUrls", [])}

    def stop(self) -> None:
        from chalicelib.runtime import runtime

        runtime.reset()
        self._mock.stop()

    # --- between tests ------------------------------------------------------------------------
    def fresh(self) -> None:
        """Empty every table and queue, drop what tests added, forget the runtime's wiring."""
        from chalicelib.runtime import runtime

        self.release()
        self._reuse_clients(runtime)
        self._settle_background_work()
        touched = self._reset_other_services()
        try:
            complete = self._clear_in_backend()
        except (AttributeError, KeyError, TypeError):  # moto's internals moved: do it the public way
            complete = self._clear_through_api()
        if not complete or touched & self.stack_services:
            # a test deleted a table or queue, or the stack has parts outside the data plane
            from chalicelib.local import stack

            stack.create_all()

    def release(self) -> None:
        """After a test: keep its clients for the next one, then forget all wiring."""
        from chalicelib.runtime import runtime

        self._keep_clients(runtime)
        runtime.reset()

    def _keep_clients(self, runtime: Any) -> None:
        """Remember the clients the last test created (creating a boto3 client costs ~100 ms)."""
        env = self._env()
        if env != self._client_env:
            self._clients, self._client_env = {}, env
        for service, client in list(getattr(runtime, "_clients", {}).items()):
            self._clients.setdefault(service, client)
        if getattr(runtime, "_connection", None) is not None:
            self._clients.setdefault(_CONNECTION, runtime._connection)

    def _reuse_clients(self, runtime: Any) -> None:
        # Same process, same mock, same region and endpoints: the clients reach the same backend.
        if not self._clients or self._env() != self._client_env:
            return
        if isinstance(getattr(runtime, "_clients", None), dict):
            runtime._clients.update({k: v for k, v in self._clients.items() if k != _CONNECTION})
        if _CONNECTION in self._clients and hasattr(runtime, "_connection"):
            runtime._connection = self._clients[_CONNECTION]

    @staticmethod
    def _env() -> Tuple[Any, ...]:
        return tuple(os.environ.get(name) for name in _CLIENT_ENV)

    @staticmethod
    def _settle_background_work(timeout: float = 5.0) -> None:
        """moto runs Step Functions executions in threads: stop the ones still running and wait
        for their threads, so that nothing a test started writes into the next test's queues."""
        try:
            from moto.stepfunctions.parser.utils import TMP_THREADS
        except ImportError:
            return
        alive = [thread for thread in list(TMP_THREADS) if thread.is_alive()]
        if alive:
            from chalicelib.runtime import runtime

            sfn = runtime.client("stepfunctions")
            for machine in sfn.list_state_machines().get("stateMachines", []):
                for page in sfn.get_paginator("list_executions").paginate(
                        stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"):
                    for execution in page.get("executions", []):
                        sfn.stop_execution(executionArn=execution["executionArn"])
            deadline = time.monotonic() + timeout
            for thread in alive:
                thread.join(max(0.0, deadline - time.monotonic()))
        TMP_THREADS[:] = [thread for thread in list(TMP_THREADS) if thread.is_alive()]

    @staticmethod
    def _instantiated() -> Set[str]:
        from moto.core.base_backend import BackendDict

        return {getattr(b, "service_name", "") for b in list(BackendDict._instances) if len(b)}

    @staticmethod
    def _reset_other_services() -> Set[str]:
        """Reset every moto service but the data plane's; returns the services that were reset."""
        from moto.core.base_backend import BackendDict

        touched = set()
        for backend_dict in list(BackendDict._instances):
            service = getattr(backend_dict, "service_name", None)
            if service in _KEPT_SERVICES or not len(backend_dict):
                continue
            for account_backends in list(backend_dict.values()):
                account_backends.reset()
            backend_dict.clear()
            touched.add(service)
        return touched

    def _clear_in_backend(self) -> bool:
        """Clear items and messages inside moto (microseconds, where the API needs a scan and a
        batch delete per table). Tables and queues are found by listing, never by name."""
        from moto.dynamodb.models import dynamodb_backends
        from moto.sqs.models import sqs_backends

        tables, queues = set(), set()
        for _account, _region, backend in dynamodb_backends.iter_backends():
            for name in list(backend.tables):
                if name in self.tables:
                    backend.tables[name].items.clear()
                    tables.add(name)
                else:
                    backend.delete_table(name)
        for _account, _region, backend in sqs_backends.iter_backends():
            for name in list(backend.queues):
                if name in self.queues:
                    queue = backend.queues[name]
                    with queue._messages_lock:
                        queue._messages = []
                        queue._pending_messages = set()
                        queue.deleted_messages = set()
                    queues.add(name)
                else:
                    backend.delete_queue(name)
        return tables == self.tables and queues == self.queues

    def _clear_through_api(self) -> bool:
        from chalicelib import aws

        dynamodb, sqs = aws.client("dynamodb"), aws.client("sqs")
        tables = set()
        for name in dynamodb.list_tables()["TableNames"]:
            if name not in self.tables:
                dynamodb.delete_table(TableName=name)
                continue
            tables.add(name)
            keys = [k["AttributeName"] for k in dynamodb.describe_table(TableName=name)["Table"]["KeySchema"]]
            for page in dynamodb.get_paginator("scan").paginate(TableName=name, ProjectionExpression=", ".join(
                    f"#k{i}" for i in range(len(keys))), ExpressionAttributeNames={f"#k{i}": k for i, k in enumerate(keys)}):
                items = page.get("Items", [])
                for start in range(0, len(items), 25):
                    dynamodb.batch_write_item(RequestItems={name: [
                        {"DeleteRequest": {"Key": item}} for item in items[start:start + 25]]})
        queues = set()
        for url in sqs.list_queues().get("QueueUrls", []):
            name = url.rsplit("/", 1)[1]
            if name in self.queues:
                sqs.purge_queue(QueueUrl=url)
                queues.add(name)
            else:
                sqs.delete_queue(QueueUrl=url)
        return tables == self.tables and queues == self.queues


@pytest.fixture(scope="session")
def moto_backend() -> Iterator[MotoBackend]:
    backend = MotoBackend()
    backend.start()
    yield backend
    backend.stop()


@pytest.fixture
def aws_backend(moto_backend: MotoBackend) -> Iterator[MotoBackend]:
    """The run's moto backend, empty: no items, no queued messages, fresh runtime wiring."""
    moto_backend.fresh()
    yield moto_backend
    moto_backend.release()


@pytest.fixture
def inbox(aws_backend: MotoBackend) -> Iterator[Inbox]:
    from chalice.test import Client

    import app as application

    with Client(application.app, stage_name="local") as client:
        yield Inbox(client, application)
