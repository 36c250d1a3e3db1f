"""Settings from the environment, and the names and local defaults of secrets (their values are
read by chalicelib.runtime: env locally, SSM Parameter Store in AWS).

One place decides names of tables and queues, so the deploy template, the local stack and
the code can never disagree about them.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import re
from typing import Callable, Dict, Iterator, Mapping, Optional

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
    # Not secret, but per account like the token: whose approved templates the composer offers.
    "WHATSAPP_BUSINESS_ACCOUNT_ID": "300000000000001",
    "X_CONSUMER_KEY": "dev_x_consumer_key",
    # X access tokens start with the account's user id (the sandbox echoes DMs from it).
    "X_ACCESS_TOKEN": "1520000000000000001-dev_x_access_token",
    "X_ACCESS_TOKEN_SECRET": "dev_x_access_token_secret",
    "X_OAUTH2_USER_TOKEN": "",
    "X_BEARER_TOKEN": "dev_x_bearer_token",  # app-only: the listening poller's recent search
    "TELEGRAM_BOT_TOKEN": "1000000001:dev_telegram_bot_token",
    "LINKEDIN_ACCESS_TOKEN": "dev_linkedin_access_token",
}

#: Every secret name the project reads.
SECRET_NAMES = frozenset(LOCAL_SECRET_DEFAULTS)
#: The platform credentials an account's `credential_refs` may redirect (never the deployment's own
#: AUTH_TOKEN_SECRET or the local admin password).
PLATFORM_CREDENTIALS = frozenset(SECRET_NAMES - {"AUTH_TOKEN_SECRET", "LOCAL_ADMIN_PASSWORD"})
_CREDENTIAL_SUFFIX = re.compile(r"(?:_[A-Z0-9]+){1,8}")


def credential_ref_allowed(logical: object, secret_name: object) -> bool:
    """Whether an account may map the platform credential `logical` to `secret_name`: the name
    itself or the name with a suffix of its own (META_PAGE_TOKEN -> META_PAGE_TOKEN_100000000000001),
    so a reference can never point a platform token at another secret of the deployment
    (AUTH_TOKEN_SECRET) or of the host (AWS_SECRET_ACCESS_KEY)."""
    if logical not in PLATFORM_CREDENTIALS or not isinstance(secret_name, str) or len(secret_name) > 256:
        return False
    if secret_name == logical:
        return True
    return secret_name.startswith(str(logical)) and secret_name not in SECRET_NAMES \
        and bool(_CREDENTIAL_SUFFIX.fullmatch(secret_name[len(str(logical)):]))


LOCAL_STAGE = "local"


class LocalStageInAws(RuntimeError):
    """A function running in AWS whose stage is `local` (or unset): it would take the local
    defaults (dev secrets, the cheap test password hash, emulator endpoints), so it stops instead."""


def in_aws() -> bool:
    """Inside a Lambda function (its runtime always sets AWS_LAMBDA_FUNCTION_NAME)."""
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


#: The webhooks' own function (app.webhook_url, reached through its function URL; issue 21).
WEBHOOKS_FUNCTION = "webhooks"


def serves_routes() -> bool:
    """False only inside the webhooks' own Lambda function: it answers function URL events, never
    a REST route, so its cold start registers (and imports) none of the API's route modules.
    Everywhere else (the REST API's function, `chalice deploy`, `make run`, the tests) every route
    is registered."""
    return not os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "").endswith("-" + WEBHOOKS_FUNCTION)


def stage() -> str:
    """SOCIALINBOX_STAGE, `local` when unset; in AWS a local stage raises LocalStageInAws, so no
    code path can reach a local default there."""
    name = os.environ.get("SOCIALINBOX_STAGE") or LOCAL_STAGE
    if name == LOCAL_STAGE and in_aws():
        raise LocalStageInAws(
            f"SOCIALINBOX_STAGE is {os.environ.get('SOCIALINBOX_STAGE', 'unset')!r} in the Lambda function "
            f"{os.environ.get('AWS_LAMBDA_FUNCTION_NAME')}: refusing to start with the local stage's defaults "
            "(deploy with `make deploy STAGE=<name>`, which sets it)")
    return name


def is_local() -> bool:
    return stage() == LOCAL_STAGE


def refuse_local_stage_in_aws() -> None:
    """Called once when the app is imported (the cold start): a deployed function without its
    stage logs why and fails every invocation, rather than serving with local defaults."""
    try:
        stage()
    except LocalStageInAws as error:
        from chalicelib.logs import logger

        logger.error("refusing to start: local stage in AWS", extra={"reason": str(error)})
        raise


#: The invoked function's own variables when one process runs several functions (`make run`'s
#: runners): Lambda gives each function its own environment, os.environ is the whole process's.
_FUNCTION_ENVIRONMENT: "contextvars.ContextVar[Optional[Mapping[str, str]]]" = contextvars.ContextVar(
    "function_environment", default=None)


def function_setting(name: str) -> Optional[str]:
    """A variable Lambda sets per function (e.g. the partial batch switch): the invoked
    function's own value when a local runner set one, else the process environment's."""
    own = _FUNCTION_ENVIRONMENT.get()
    if own is not None and name in own:
        return own[name]
    return os.environ.get(name)


@contextlib.contextmanager
def function_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Run the block as the function whose own variables are `variables` (this thread only)."""
    token = _FUNCTION_ENVIRONMENT.set(dict(variables))
    try:
        yield
    finally:
        _FUNCTION_ENVIRONMENT.reset(token)


def resource_prefix() -> str:
    """`socialinbox-<stage>`: every table and queue name starts with it."""
    return os.environ.get("RESOURCE_PREFIX", f"socialinbox-{stage()}")


def table_name(short: str) -> str:
    return f"{resource_prefix()}-{short}"


def queue_name(short: str) -> str:
    return f"{resource_prefix()}-{short}"


#: The ingest processor (app.ingest_processor): the webhooks invoke it asynchronously with each
#: delivery, and it consumes the ingest queue (replays, what an older webhook queued).
INGEST_PROCESSOR_FUNCTION = "ingest_processor"


def function_name(short: str) -> str:
    """A Chalice function's deployed name: `socialinbox-<stage>-<name>` (as `chalice deploy`
    names every function but the REST API's; infra.deploy.lambda_function_name)."""
    return f"{resource_prefix()}-{short}"


#: The account moto (tests, `make run`) answers for: the template's ${AWS::AccountId} locally.
LOCAL_ACCOUNT_ID = "123456789012"


def attachments_bucket() -> str:
    """The bucket agents' files wait in before they go out (infra: AttachmentsBucket); deployed
    stages get its name from the stack output, the local stack names it like the template."""
    return os.environ.get("ATTACHMENTS_BUCKET") or f"{resource_prefix()}-attachments-{LOCAL_ACCOUNT_ID}"


#: The conversation event log's stream: what reports (chalicelib.reports) read.
EVENT_LOG_TABLE = "conversation-events"
#: The messages table's stream: reports count every message in and out from it.
MESSAGES_TABLE = "messages"
#: Stream ARN environment variables the deploy writes from the data stack's outputs, per table.
#: The conversations table's stream: every change of a conversation item, follow-ups included (the
#: store's one-write path logs nothing), which the live updates' fan-out reads (chalicelib.push).
CONVERSATIONS_TABLE = "conversations"
STREAM_ARN_ENVIRONMENT = {EVENT_LOG_TABLE: "CONVERSATION_EVENTS_STREAM_ARN",
                          CONVERSATIONS_TABLE: "CONVERSATIONS_STREAM_ARN",
                          MESSAGES_TABLE: "MESSAGES_STREAM_ARN"}
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


#: The live updates' WebSocket API (chalicelib.push): its management endpoint, where the fan-out
#: posts hints (`https://<api id>.execute-api.<region>.amazonaws.com/<stage>`; `make run`:
#: `http://127.0.0.1:<PUSH_PORT>/local`). The page's socket URL is the same with ws(s)://.
PUSH_ENDPOINT_ENV = "PUSH_ENDPOINT"


def push_endpoint() -> str:
    return os.environ.get(PUSH_ENDPOINT_ENV, "").strip().rstrip("/")


def push_url() -> str:
    """The URL the page opens its socket on ("" when live updates are not configured)."""
    endpoint = push_endpoint()
    if endpoint.startswith("https://"):
        return "wss://" + endpoint[len("https://"):]
    if endpoint.startswith("http://"):
        return "ws://" + endpoint[len("http://"):]
    return ""


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
