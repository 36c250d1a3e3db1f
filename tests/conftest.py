"""Shared test setup: fake AWS (moto, in-process), the Chalice test client, signed deliveries."""
from __future__ import annotations

import os

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
})
for _name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
    os.environ.pop(_name, None)

from typing import Iterator  # noqa: E402

import moto  # noqa: E402,F401  (before any boto3 client exists)
import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

from tests.helpers import Inbox  # noqa: E402


@pytest.fixture
def aws_backend() -> Iterator[None]:
    from chalicelib.local import stack
    from chalicelib.runtime import runtime

    with mock_aws():
        runtime.reset()
        stack.create_all()
        yield
        runtime.reset()


@pytest.fixture
def inbox(aws_backend: None) -> Iterator[Inbox]:
    from chalice.test import Client

    import app as application

    with Client(application.app) as client:
        yield Inbox(client, application)
