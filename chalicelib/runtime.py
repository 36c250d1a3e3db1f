"""The one place that wires dependencies: AWS clients, caches and the clock.

Everything that would otherwise be a private module global (boto3 clients, queue URLs, the
account cache, the DynamoDB connection used for transactions) lives on one `Runtime` object, so
tests, the local stack and the benchmark reset it with `runtime.reset()` instead of patching
modules. Clients are created lazily: nothing here runs at import time (cold start).
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from chalicelib import config


#: botocore models of our own (infra/aws_models.py): searched before botocore's, under names no
#: AWS service has, so every other client is built from botocore's own model.
AWS_MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "aws_models")
SECRETS_SERVICE = "socialinbox-ssm"
#: Lambda's Invoke alone (infra/aws_models.py): the webhooks' hand-off to the processor.
LAMBDA_SERVICE = "socialinbox-lambda"
#: What Lambda answers an asynchronous invocation it has stored (its internal queue) and will run.
ACCEPTED = 202

#: How an asynchronous invocation is made: (our function's short name, the event's JSON bytes).
Invoker = Callable[[str, bytes], None]


class InvocationRefused(RuntimeError):
    """Lambda did not take an asynchronous invocation: nothing was stored, the caller must fail."""


class Runtime:
    """Process-wide wiring. Cheap to create; everything inside is built on first use."""

    #: How long a known account is trusted from memory (one GetItem per minute per container).
    ACCOUNT_CACHE_SECONDS = 60.0
    #: How long "no such account" is trusted: short, so a freshly registered account is used
    #: almost at once by other containers too (this process forgets at registration).
    UNKNOWN_ACCOUNT_CACHE_SECONDS = 5.0

    def __init__(self, clock: Optional[Callable[[], float]] = None) -> None:
        self._lock = threading.Lock()
        self._clock = clock or time.time
        self._clients: Dict[str, Any] = {}
        #: One botocore session for every client: a client on a new session re-reads botocore's
        #: endpoint and partition data (~45 ms CPU each on a cold start), on a shared one ~8 ms.
        self._session: Any = None
        self._queue_urls: Dict[str, str] = {}
        self._connection: Any = None
        self.accounts: Dict[str, Tuple[float, Any]] = {}
        self._facts: Dict[str, Any] = {}
        #: secret name -> (monotonic time read, value or None): what SSM answered.
        self._secrets: Dict[str, Tuple[float, Optional[str]]] = {}
        self._listeners: Optional[List[Callable[..., None]]] = None
        #: email -> (monotonic time read, active agent's Identity or None): the token guard's cache.
        self.agents: Dict[str, Tuple[float, Any]] = {}
        #: "all" -> (monotonic time read, SLA policies most specific first): chalicelib.sla.policies.
        self.sla_policies: Dict[str, Tuple[float, Any]] = {}
        #: The send side: one HTTP session for platform APIs, and adapters chosen per channel
        #: (tests inject fakes with `use_http` / `use_adapter` instead of patching modules).
        self._http: Any = None
        self._adapters: Dict[str, Any] = {}
        #: (agent id, route class) -> (units left, when counted): the API's rate limits
        #: (chalicelib.api.ratelimit), per container; `rate_budgets` replaces its budgets (tests).
        self.rate_buckets: Dict[Tuple[str, str], Tuple[float, float]] = {}
        self.rate_budgets: Optional[Dict[str, Any]] = None
        #: Fetches of customer-chosen URLs (attachments): a session that connects to checked public
        #: addresses only (chalicelib.safe_url), and the name resolver it uses (tests fake DNS).
        self._fetch_http: Any = None
        self._resolver: Optional[Callable[[str, int], List[Tuple[int, str]]]] = None
        self._annotator: Any = None
        #: The WebSocket API's management API (chalicelib.push): a botocore client, or a test's fake.
        self._push_client: Any = None
        #: Asynchronous invocations of our own functions (the webhooks' hand-off to the processor):
        #: Lambda's Invoke in AWS, `make run`'s and the tests' local runner otherwise.
        self._invoker: Optional[Invoker] = None

    # --- time -------------------------------------------------------------------------------
    def now_ms(self) -> int:
        """Wall-clock milliseconds (replaceable in tests with `use_clock`)."""
        return int(self._clock() * 1000)

    def use_clock(self, clock: Optional[Callable[[], float]]) -> None:
        self._clock = clock or time.time

    # --- AWS ------------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        """A botocore client per service, shared by every thread of the process (they are
        thread-safe once created; creation itself is serialised)."""
        found = self._clients.get(service)
        if found is None:
            with self._lock:
                found = self._clients.get(service)
                if found is None:
                    # botocore's own session: boto3 adds nothing our clients use, and importing it
                    # (with s3transfer) cost ~5 % of the webhook's cold first request.
                    import botocore.session

                    if self._session is None:
                        self._session = botocore.session.get_session()
                        # Trimmed models of our own under names of their own (infra/aws_models.py).
                        self._session.get_component("data_loader").search_paths.insert(0, AWS_MODELS)
                    found = self._session.create_client(service, region_name=config.aws_region())
                    self._clients[service] = found
        return found

    def queue_url(self, short_name: str) -> str:
        """URL of one of our queues: `<NAME>_QUEUE_URL` if ops set it, else one GetQueueUrl."""
        found = self._queue_urls.get(short_name)
        if found is None:
            override = os.environ.get(short_name.upper().replace("-", "_") + "_QUEUE_URL")
            found = override or self.client("sqs").get_queue_url(
                QueueName=config.queue_name(short_name))["QueueUrl"]
            self._queue_urls[short_name] = found
        return found

    def connection(self) -> Any:
        """pynamodb's low-level connection (transactions need one)."""
        if self._connection is None:
            from pynamodb.connection import Connection

            self._connection = Connection(region=config.aws_region(), host=config.dynamodb_host())
        return self._connection

    # --- what follows a logged conversation change -------------------------------------------
    #: Listeners of committed, logged conversation changes, as "module:function" (imported on
    #: first use, so the store depends on none of them): the SLA flow's turn timers, routing,
    #: the search index (a turn's messages are indexed when it ends), the page's change feeds.
    CHANGE_LISTENERS = ("chalicelib.sla.flow:on_logged_change", "chalicelib.routing:on_logged_change",
                        "chalicelib.inbox.search:on_logged", "chalicelib.inbox.changes:on_logged")

    def change_listeners(self) -> List[Callable[..., None]]:
        if self._listeners is None:
            import importlib

            resolved = []
            for name in self.CHANGE_LISTENERS:
                module, _, function = name.partition(":")
                resolved.append(getattr(importlib.import_module(module), function))
            self._listeners = resolved
        return self._listeners

    def use_change_listeners(self, listeners: Optional[List[Callable[..., None]]]) -> None:
        """Replace the listeners (tests); None restores the wired ones."""
        self._listeners = listeners

    def publish_change(self, conversation_id: str, before: Any, after: Any, entry: Any) -> None:
        """Tell every listener; one failing never stops the others or the change (each has a
        safety net: the SLA sweeper, the routing sweeper)."""
        for listener in self.change_listeners():
            try:
                listener(conversation_id, before, after, entry)
            except Exception as error:  # noqa: BLE001 - the change is committed; sweepers catch up
                from chalicelib.logs import logger

                logger.warning("change listener failed", extra={"listener": getattr(listener, "__name__", "?"),
                                                                 "conversation_id": conversation_id,
                                                                 "error": f"{type(error).__name__}: {error}"[:300]})

    # --- what annotates an inbound message before the store records it ---------------------------
    #: "module:function" taking a MessageEvent and answering store.Annotations or None (imported on
    #: first use: ingest and the store import no listening code): sentiment, language, topics.
    INBOUND_ANNOTATOR = "chalicelib.listening.annotate:annotate"

    def annotator(self) -> Optional[Callable[[Any], Any]]:
        """The annotator ingest runs on every message (None: annotation is switched off)."""
        if self._annotator is None:
            import importlib

            module, _, function = self.INBOUND_ANNOTATOR.partition(":")
            self._annotator = getattr(importlib.import_module(module), function)
        return self._annotator or None

    def use_annotator(self, annotator: Any) -> None:
        """Replace the annotator (tests, the bench); False switches annotation off; None restores it."""
        self._annotator = annotator

    # --- small per-container facts (looked up once: a state machine ARN, ...) -----------------
    def cached(self, name: str) -> Any:
        return self._facts.get(name)

    def remember(self, name: str, value: Any) -> None:
        self._facts[name] = value

    # --- the send side (outbox worker) -----------------------------------------------------------
    def http(self) -> Any:
        """A requests.Session shared by the outbox worker's sends (connection reuse)."""
        if self._http is None:
            with self._lock:
                if self._http is None:
                    import requests

                    self._http = requests.Session()
        return self._http

    def use_http(self, session: Any) -> None:
        self._http = session

    def fetch_http(self) -> Any:
        """A requests.Session for URLs customers chose: every connection goes to an address
        checked public at connect time (or a configured sandbox base), see chalicelib.safe_url."""
        if self._fetch_http is None:
            with self._lock:
                if self._fetch_http is None:
                    from chalicelib import safe_url

                    self._fetch_http = safe_url.guarded_session(safe_url.trusted_bases, self.resolver)
        return self._fetch_http

    def resolver(self) -> Callable[[str, int], List[Tuple[int, str]]]:
        """How host names become addresses for fetch_http (the system's, unless a test set one)."""
        from chalicelib.safe_url import system_resolve

        return self._resolver or system_resolve

    def use_resolver(self, resolve: Optional[Callable[[str, int], List[Tuple[int, str]]]]) -> None:
        self._resolver = resolve

    def injected_adapter(self, channel: str) -> Any:
        """The adapter a test injected for sending on `channel`, else None (the caller then takes
        the registry's: the runtime knows no channel, so no adapter depends on it in a loop)."""
        return self._adapters.get(channel)

    def use_adapter(self, channel: str, adapter: Any) -> None:
        """Send `channel` through `adapter` (tests); None goes back to the registry's."""
        if adapter is None:
            self._adapters.pop(channel, None)
        else:
            self._adapters[channel] = adapter

    # --- live updates (chalicelib.push) -----------------------------------------------------------
    def push_client(self) -> Any:
        """The API Gateway management API of the live updates' WebSocket API (post_to_connection,
        delete_connection) at `config.push_endpoint()`: AWS's, or `make run`'s local server."""
        if self._push_client is None:
            endpoint = config.push_endpoint() or self.cached("push_endpoint")
            if not endpoint:
                raise RuntimeError("PUSH_ENDPOINT is not set: the WebSocket API's management endpoint")
            with self._lock:
                if self._push_client is None:
                    import botocore.session

                    if self._session is None:
                        self._session = botocore.session.get_session()
                    self._push_client = self._session.create_client(
                        "apigatewaymanagementapi", region_name=config.aws_region(), endpoint_url=endpoint)
        return self._push_client

    def use_push_client(self, client: Any) -> None:
        """Send through `client` (tests); None builds the real one again on next use."""
        self._push_client = client

    # --- asynchronous invocations (the webhooks' hand-off, chalicelib.ingest.webhook) -------------
    def invoke_async(self, function: str, payload: bytes) -> None:
        """Hand `payload` (an event, JSON) to our function `function` (short name) by asynchronous
        invocation. Once this returns Lambda holds the event durably and runs the function with
        it, twice more if it fails, then sends it to the function's on-failure destination.
        Raises (InvocationRefused, or the client's error) when it was not taken."""
        self.invoker()(function, payload)

    def invoker(self) -> Invoker:
        """The one making asynchronous invocations: a test's or `make run`'s when set (use_invoker),
        else Lambda's Invoke in AWS, or on the local stage a local runner that holds the events
        until someone runs them (chalicelib.local.async_invoke: the tests, `make run`'s runner)."""
        found = self._invoker
        if found is None:
            with self._lock:
                found = self._invoker
                if found is None:
                    if config.is_local():
                        from chalicelib.local.async_invoke import LocalInvocations

                        found = LocalInvocations()
                    else:
                        found = self.invoke_lambda
                    self._invoker = found
        return found

    def use_invoker(self, invoker: Optional[Invoker]) -> None:
        """Make asynchronous invocations through `invoker` (tests, `make run`); None: the default."""
        self._invoker = invoker

    def invoke_lambda(self, function: str, payload: bytes) -> None:
        """Lambda's Invoke with InvocationType Event (the invoker in AWS): 202 means Lambda has
        stored the event; anything else raises."""
        answer = self.client(LAMBDA_SERVICE).invoke(FunctionName=config.function_name(function),
                                                    InvocationType="Event", Payload=payload)
        if answer.get("StatusCode") != ACCEPTED:
            raise InvocationRefused(f"{function}: Lambda answered {answer.get('StatusCode')}, not {ACCEPTED}")

    # --- lifecycle ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget clients, queue URLs, cached accounts and agents, secrets and the invoker (tests
        switch backends)."""
        with self._lock:
            self._clients.clear()
            self._session = None
            self._queue_urls.clear()
            self._connection = None
            self.accounts.clear()
            self._facts.clear()
            self._listeners = None
            self.agents.clear()
            self.sla_policies.clear()
            self._adapters.clear()
            self._http = None
            self.rate_buckets.clear()
            self.rate_budgets = None
            self._fetch_http = None
            self._resolver = None
            self._annotator = None
            self._push_client = None
            self._invoker = None
        self._clock = time.time
        self.forget_secrets()

    # --- secrets --------------------------------------------------------------------------------
    #: How long a secret read from SSM is kept per container (rotation reaches it within this).
    SECRET_TTL_SECONDS = 300.0

    def secret(self, name: str) -> Optional[str]:
        """A secret by its env-style name (a `config.SecretLookup`).

        Local stage: the environment variable, else the documented dev default. AWS: the env var if
        ops chose to set it, else SSM parameter `/<prefix>/<NAME>` (SecureString, cached
        SECRET_TTL_SECONDS per container). Never logged."""
        value = os.environ.get(name)
        if value is not None:
            return value
        if config.is_local():
            return config.LOCAL_SECRET_DEFAULTS.get(name)
        now = time.monotonic()
        cached = self._secrets.get(name)
        if cached and now - cached[0] < self.SECRET_TTL_SECONDS:
            return cached[1]
        found = self._ssm_parameter(f"/{config.resource_prefix()}/{name}")
        self._secrets[name] = (now, found)
        return found

    def forget_secrets(self) -> None:
        """Drop cached secrets (rotation drills and tests)."""
        self._secrets.clear()

    def _ssm_parameter(self, parameter: str) -> Optional[str]:
        """One GetParameter, on the shared session's client of SSM's trimmed model
        ("socialinbox-ssm": GetParameter only; SSM's whole model cost the webhooks' cold first
        request ~19 ms, issue 21). Any failure reads as "no secret", so callers fail closed."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            found = self.client(SECRETS_SERVICE).get_parameter(Name=parameter, WithDecryption=True)
        except (ClientError, BotoCoreError):
            return None
        return found["Parameter"]["Value"]


runtime = Runtime()
