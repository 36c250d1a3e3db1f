"""Settings from the environment, and the names and local defaults of secrets (their values are
read by chalicelib.runtime: env locally, SSM Parameter Store in AWS).

One place decides names of tables and queues, so the deploy template, the local stack and
the code can never disagree about them.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, Optional

# Dev defaults exist for local mode only; documented in the README.
LOCAL_SECRET_DEFAULTS: Dict[str, str] = {
    "META_APP_SECRET": "dev_meta_app_secret",
    "META_VERIFY_TOKEN": "dev_meta_verify_token",
    "X_CONSUMER_SECRET": "dev_x_consumer_secret",
    "X_OAUTH2_CLIENT_SECRET": "",
    "TELEGRAM_SECRET_TOKEN": "dev_telegram_secret_token",
    "LINKEDIN_CLIENT_SECRET": "dev_linkedin_client_secret",
    "AUTH_TOKEN_SECRET": "dev_auth_token_secret_change_me_0123456789",
    "LOCAL_ADMIN_PASSWORD": "admin-password-123",
    # Send side (make run points every base URL at the loopback sandbox, which accepts these).
    "META_PAGE_TOKEN": "dev_meta_page_token",
    "INSTAGRAM_ACCESS_TOKEN": "dev_instagram_access_token",
    "WHATSAPP_TOKEN": "dev_whatsapp_token",
    "X_CONSUMER_KEY": "dev_x_consumer_key",
    # X access tokens start with the account's user id (the sandbox echoes DMs from it).
    "X_ACCESS_TOKEN": "1520000000000000001-dev_x_access_token",
    "X_ACCESS_TOKEN_SECRET": "dev_x_access_token_secret",
    "X_OAUTH2_USER_TOKEN": "",
    "TELEGRAM_BOT_TOKEN": "1000000001:dev_telegram_bot_token",
    "LINKEDIN_ACCESS_TOKEN": "dev_linkedin_access_token",
}


def stage() -> str:
    return os.environ.get("SOCIALINBOX_STAGE", "local")


def is_local() -> bool:
    return stage() == "local"


def resource_prefix() -> str:
    """`socialinbox-<stage>`: every table and queue name starts with it."""
    return os.environ.get("RESOURCE_PREFIX", f"socialinbox-{stage()}")


def table_name(short: str) -> str:
    return f"{resource_prefix()}-{short}"


def queue_name(short: str) -> str:
    return f"{resource_prefix()}-{short}"


#: The conversation event log's stream: what reports (chalicelib.reports) read.
EVENT_LOG_TABLE = "conversation-events"
#: Stream ARN environment variables the deploy writes from the data stack's outputs, per table.
STREAM_ARN_ENVIRONMENT = {EVENT_LOG_TABLE: "CONVERSATION_EVENTS_STREAM_ARN"}
LOCAL_ACCOUNT_ID = "123456789012"


def stream_arn(short: str) -> str:
    """The DynamoDB stream ARN of one of our tables, for `@app.on_dynamodb_record`.

    Deployed: the variable the deploy's configure step writes from the data stack's output
    (a stream ARN ends in a creation timestamp nobody can guess). Local and tests: a synthetic
    `arn:aws:dynamodb:<region>:123456789012:table/<table name>/stream/local`; the local server
    parses the table name out of it and reads the emulator's real stream."""
    variable = STREAM_ARN_ENVIRONMENT.get(short)
    found = os.environ.get(variable) if variable else None
    if found:
        return found
    return f"arn:aws:dynamodb:{aws_region()}:{LOCAL_ACCOUNT_ID}:table/{table_name(short)}/stream/local"


INGEST_QUEUE = "ingest"
DEAD_LETTER_QUEUE = "ingest-dlq"
SLA_TIMER_QUEUE = "sla-timers"


def aws_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def dynamodb_host() -> Optional[str]:
    """Endpoint override for pynamodb (moto server locally); None means real AWS or mock_aws."""
    return os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL") or None


def api_base(name: str, default: str) -> str:
    """A platform API base URL (no trailing slash): env `name`, else the real default. `make run`
    points these at the loopback sandbox (chalicelib.local.sandbox)."""
    return (os.environ.get(name) or default).rstrip("/")


def int_setting(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return int(raw)


# Processor: attempts before an envelope is parked in the DLQ with its error. Must stay below
# the queue's redrive maxReceiveCount (infra/resources.json) so that our copy, which carries the
# error, wins over the bare redrive.
MAX_PROCESSING_ATTEMPTS = 4
# Default first-response target (minutes) until the SLA flow sets per-policy deadlines.
DEFAULT_REPLY_SLA_MINUTES = 15

#: How a secret is looked up by its env-style name (chalicelib.runtime.runtime.secret).
SecretLookup = Callable[[str], Optional[str]]
