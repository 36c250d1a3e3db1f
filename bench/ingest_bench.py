#!/usr/bin/env python
"""socialinbox ingest benchmark (`make bench`): ack-path cost, AWS requests per message, cold imports.

One run, one emulated AWS (moto, by default as a ThreadedMotoServer on 127.0.0.1 reached over
real HTTP through AWS_ENDPOINT_URL), no network beyond loopback, bounded in count and time.

  (a) webhook ack path per delivery as a RATIO to a floor measured in the same run: one bare
      boto3 SQS SendMessage of a body of the same size (and, for context, one bare DynamoDB
      PutItem). Subjects: chalicelib.ingest.webhook.receive() directly, the Chalice app called
      the way Lambda calls it (API Gateway proxy event), and chalice.test.Client http.post.
      1-event delivery and 100-event Meta batch; rounds interleave floor and subjects in a
      shuffled order. Also the processor per message against a bare PutItem floor.
  (b) AWS requests per inbound event (per operation and table/queue), on the ack path and in
      the processor, for every registered adapter (chalicelib.channels.adapter_names()), from
      its demo_accounts/demo_deliveries: first message in a conversation, follow-up, duplicate,
      cold container, and a deployed stage reading its webhook secret from SSM.
  (c) cold import of the Lambda handler module and of the webhook/processor paths in fresh
      interpreters (wall time minus a bare `python -c pass` floor; and -X importtime).

Method and figures: bench/README.md. Not a test: nothing here asserts timings.
"""
from __future__ import annotations

import argparse
import faulthandler
import os
import socket
import sys
import time

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX = "socialinbox-bench"
ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-east-1"

# Settings must exist before boto3, pynamodb or the app are imported (as in tests/conftest.py).
BENCH_ENV = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_CONFIG_FILE": os.devnull,  # a developer's ~/.aws/config must not change retries/endpoints
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "SOCIALINBOX_STAGE": "local",
    "RESOURCE_PREFIX": PREFIX,
    "AWS_XRAY_SDK_ENABLED": "false",
    "LOG_LEVEL": "INFO",  # the deployed default (.chalice/config.json); lines go to /dev/null
    "POWERTOOLS_LOG_DEDUPLICATION_DISABLED": "true",
}
UNSET_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_SSM",
             "AWS_PROFILE", "AWS_REGION", "INGEST_QUEUE_URL", "INGEST_DLQ_QUEUE_URL", "LAMBDA_TASK_ROOT",
             "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS")
# Secrets the adapters read (config.LOCAL_SECRET_DEFAULTS applies in the local stage); they must not
# come from the caller's environment, so that the bench signs and verifies with the same values.
SECRET_NAMES_PREFIXES = ("META_", "X_", "TELEGRAM_", "LINKEDIN_", "AUTH_TOKEN_SECRET", "LOCAL_ADMIN_PASSWORD")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _parse_args(argv):
    parser = argparse.ArgumentParser(description="socialinbox ingest benchmark (see bench/README.md)")
    parser.add_argument("--backend", choices=("server", "process", "inprocess"), default="server",
                        help="server: moto ThreadedMotoServer on 127.0.0.1, HTTP (default); process: moto server "
                             "as a separate process, HTTP; inprocess: moto mock_aws (no sockets)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run, ~30 s)")
    parser.add_argument("--json", default=os.path.join(PROJECT, "bench", "results.json"),
                        help="where to write machine-readable results ('-' for stdout, '' for none)")
    parser.add_argument("--seed", type=int, default=20261123, help="shuffle seed for the interleaving")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip: "
                                                   "ack,processor,requests,wru,imports,flow,api,arming")
    parser.add_argument("--only", default="", help="comma-separated sections to run, the others skipped "
                                                   "(e.g. --only wru: DynamoDB request units per message kind, <1 min)")
    parser.add_argument("--log-file", default="",
                        help="where the app's log lines go (default: /dev/null); they are formatted and written "
                             "as deployed either way")
    parser.add_argument("--words", default="25-40",
                        help="wru: length of the customer and agent texts in words, 'LOW-HIGH' drawn uniformly per "
                             "message (seeded), or 'short' for the old fixed 4-10-word texts (issue 21: message length "
                             "is an assumption of the cost model, stated here)")
    parser.add_argument("--time-limit", type=float, default=900.0,
                        help="hard stop (seconds): dump stacks and exit if the bench hangs")
    return parser.parse_args(argv)


ARGS = _parse_args(sys.argv[1:])
for _name in list(os.environ):
    if _name.startswith(SECRET_NAMES_PREFIXES) or _name in UNSET_ENV:
        os.environ.pop(_name, None)
os.environ.update(BENCH_ENV)
MOTO_PORT = _free_port() if ARGS.backend in ("server", "process") else 0
if MOTO_PORT:
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{MOTO_PORT}"
if PROJECT not in sys.path:
    sys.path.insert(0, PROJECT)

import contextlib  # noqa: E402
import gc  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple  # noqa: E402

import moto  # noqa: E402,F401  (before any boto3 client exists)
import botocore.client  # noqa: E402
import botocore.session  # noqa: E402

ACTIVE_BACKEND: Any = None


def _watchdog() -> None:
    """Bounded in time whatever happens: dump every thread's stack, stop moto, exit."""
    print(f"\nbench: time limit of {ARGS.time_limit:.0f} s reached; stacks follow", file=sys.stderr, flush=True)
    faulthandler.dump_traceback(all_threads=True)
    try:
        if ACTIVE_BACKEND is not None:
            ACTIVE_BACKEND.stop()
    finally:
        os._exit(2)


SECTIONS = ("ack", "processor", "requests", "wru", "imports", "flow", "api", "arming")
# Sections that need moto in this process (Step Functions' interpreter, items written straight into
# moto's backend): with --backend server/process they run in a child `--backend inprocess` process.
INPROCESS_SECTIONS = ("flow", "api")
SKIP = {s.strip() for s in ARGS.skip.split(",") if s.strip()}
if ARGS.only:
    _only = {s.strip() for s in ARGS.only.split(",") if s.strip()}
    if _only - set(SECTIONS):
        sys.exit(f"--only: unknown section(s) {', '.join(sorted(_only - set(SECTIONS)))}; known: {', '.join(SECTIONS)}")
    SKIP |= set(SECTIONS) - _only
QUICK = ARGS.quick
ROUNDS_1 = 60 if QUICK else 300  # interleaved rounds, 1-event delivery
ROUNDS_100 = 30 if QUICK else 120  # interleaved rounds, 100-event batch
WARMUP_ROUNDS = 10
PROC_ROUNDS_1 = 30 if QUICK else 120
PROC_ROUNDS_100 = 3 if QUICK else 8
IMPORT_RUNS = 3 if QUICK else 7
BATCH = 100
PAGE_ID = "100000000000001"  # meta's demo page (registered from MetaAdapter.demo_accounts)


# ================================================================================================
# Counting AWS requests: every botocore client, whoever creates it (boto3, pynamodb, powertools)
# ================================================================================================


class Scope:
    def __init__(self, thread: Optional[int] = None) -> None:
        self.thread = thread  # only calls made on this thread (None: every thread)
        self.calls: Counter = Counter()  # logical API calls: "Operation[resource]"
        self.sends: Counter = Counter()  # HTTP attempts (before-send), incl. retries: "Operation"
        self.clients = 0  # botocore clients created
        self.aws_ns = 0  # wall time spent inside API calls (serialise, send, wait, parse)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def by_operation(self) -> Counter:
        result: Counter = Counter()
        for key, count in self.calls.items():
            result[key.split("[")[0]] += count
        return result


class RequestCounter:
    """Two independent hooks, so neither can silently miss a client:

    - `botocore.client.BaseClient._make_api_call` (class level: sees every logical call of every
      client, including pynamodb's, which calls `client._make_api_call` directly), keyed by
      operation and table/queue;
    - the public `before-send` event on every client that `botocore.session.Session.create_client`
      makes (one per HTTP attempt, so retries would show as a difference).
    """

    def __init__(self) -> None:
        self._scopes: List[Scope] = []
        self.installed = False

    def install(self) -> None:
        if self.installed:
            return
        counter = self
        original_call = botocore.client.BaseClient._make_api_call
        original_create = botocore.session.Session.create_client

        def _make_api_call(client: Any, operation_name: str, api_params: Dict[str, Any]) -> Any:
            scopes = counter._current()
            if not scopes:
                return original_call(client, operation_name, api_params)
            key = operation_name + _resource_of(api_params)
            for scope in scopes:
                scope.calls[key] += 1
            start = time.perf_counter_ns()
            try:
                return original_call(client, operation_name, api_params)
            finally:
                elapsed = time.perf_counter_ns() - start
                for scope in scopes:
                    scope.aws_ns += elapsed

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original_create(session, *args, **kwargs)
            client.meta.events.register("before-send", counter._on_send)
            for scope in counter._current():
                scope.clients += 1
            return client

        botocore.client.BaseClient._make_api_call = _make_api_call
        botocore.session.Session.create_client = create_client
        self.installed = True

    def _current(self) -> List[Scope]:
        """The scopes that see a call made on this thread (a scope opened with `thread=` ignores
        calls of other threads, e.g. moto's Step Functions interpreter calling SQS)."""
        if not self._scopes:
            return []
        me = threading.get_ident()
        return [s for s in list(self._scopes) if s.thread is None or s.thread == me]

    def _on_send(self, event_name: str = "", **_: Any) -> None:
        scopes = self._current()
        if scopes:
            operation = event_name.rsplit(".", 1)[-1]
            for scope in scopes:
                scope.sends[operation] += 1
        return None  # a non-None answer would short-circuit the request

    @contextlib.contextmanager
    def scope(self, this_thread_only: bool = False) -> Iterator[Scope]:
        scope = Scope(threading.get_ident() if this_thread_only else None)
        self._scopes.append(scope)
        try:
            yield scope
        finally:
            self._scopes.remove(scope)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        saved, self._scopes = self._scopes, []
        try:
            yield
        finally:
            self._scopes = saved


def _short(name: str) -> str:
    return name[len(PREFIX) + 1:] if name.startswith(PREFIX + "-") else name


def _resource_of(params: Dict[str, Any]) -> str:
    try:
        if "TableName" in params:
            return f"[{_short(params['TableName'])}]"
        if "TransactItems" in params:
            tables = [_short(op["TableName"]) for item in params["TransactItems"] for op in item.values()]
            return "[" + "+".join(tables) + "]"
        if "QueueUrl" in params:
            return f"[{_short(params['QueueUrl'].rsplit('/', 1)[-1])}]"
        if "QueueName" in params:
            return f"[{_short(params['QueueName'])}]"
        if "Name" in params:  # SSM GetParameter
            return f"[{params['Name'].rsplit('/', 1)[-1]}]"
    except Exception:  # noqa: BLE001 - labelling must never break a request
        pass
    return ""


COUNTER = RequestCounter()
COUNTER.install()  # before the first client exists

sys.path.insert(0, os.path.join(PROJECT, "bench"))
import wru  # noqa: E402  (bench/wru.py: DynamoDB request units, independent of the code under test)

# Images before/after each write come from moto's backend (in-process) or from GetItems on a
# private client that neither the meter nor COUNTER counts.
METER = wru.WruMeter(wru.Images(REGION, ACCOUNT_ID, quiet=COUNTER.paused))
METER.install()  # before the first client exists, like COUNTER


# ================================================================================================
# Emulated AWS
# ================================================================================================


class Backend:
    """moto, as a thread of this process serving HTTP (default), a separate process, or in-process."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._server: Any = None
        self._mock: Any = None
        self._process: Any = None

    def start(self) -> None:
        from moto.core.config import default_user_config

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines
        # A deployed stage's webhook invokes the processor (issue 21): moto answers the Invoke 202
        # without running anything (its Docker-less Lambda), as Lambda answers; the bench then runs
        # the processor itself (process_handed_off). Not for --backend process (its own config).
        default_user_config["lambda"]["use_docker"] = False
        if self.kind == "server":
            from moto.server import ThreadedMotoServer

            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=MOTO_PORT, verbose=False)
            self._server.start()
        elif self.kind == "process":
            self._process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                              str(MOTO_PORT)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", MOTO_PORT), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or self._process.poll() is not None:
                        raise RuntimeError("moto server process did not start")
                    time.sleep(0.1)
        else:
            from moto import mock_aws

            self._mock = mock_aws()
            self._mock.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self._mock is not None:
            self._mock.stop()
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)

    def describe(self) -> str:
        if self.kind == "server":
            return (f"moto {moto.__version__} ThreadedMotoServer on 127.0.0.1:{MOTO_PORT}, a thread of this process "
                    "(real HTTP via AWS_ENDPOINT_URL)")
        if self.kind == "process":
            return f"moto {moto.__version__} server in a separate process on 127.0.0.1:{MOTO_PORT} (HTTP)"
        return f"moto {moto.__version__} mock_aws in-process (requests answered inside botocore, no sockets)"


def empty_queue(short_name: str) -> None:
    """Empty one of our queues between samples, uncounted and untimed.

    moto 5.2.5 recomputes queue attributes over every stored message on each SQS request, so a
    SendMessage gets ~20 us slower per queued message; left alone, the queue would grow during
    the run and bias later samples. When moto runs in this process (server thread, mock_aws) the
    queue's list is cleared directly (a private moto attribute; moto is pinned); otherwise with
    ReceiveMessage + DeleteMessageBatch.
    """
    name = f"{PREFIX}-{short_name}"
    if ARGS.backend != "process":
        try:
            from moto.sqs.models import sqs_backends

            queue = sqs_backends[ACCOUNT_ID][REGION].queues[name]
            with queue._messages_lock:
                queue._messages.clear()
            return
        except Exception:  # noqa: BLE001 - fall back to the public API
            pass
    from chalicelib import aws

    with COUNTER.paused():
        sqs = aws.client("sqs")
        url = aws.queue_url(short_name)
        for _ in range(1000):
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
            if not messages:
                return
            sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                             for i, m in enumerate(messages)])


def fresh_tables() -> None:
    """Drop and re-create every table (uncounted). moto's TransactWriteItems deep-copies each table
    it touches, so its cost grows with the data already stored; each measurement starts small."""
    from chalicelib import aws
    from chalicelib.local import stack

    with COUNTER.paused(), METER.paused():
        dynamodb = aws.client("dynamodb")
        for name in dynamodb.list_tables().get("TableNames", []):
            if name.startswith(PREFIX + "-"):
                dynamodb.delete_table(TableName=name)
        stack.create_all()
    METER.images.forget()  # index definitions are read again (they may have changed on main)
    reset_container()


def empty_tables(*short_names: str) -> None:
    """Delete every item of some tables (uncounted), e.g. the messages a timed run just stored."""
    from chalicelib import aws, config

    with COUNTER.paused():
        dynamodb = aws.client("dynamodb")
        for short in short_names:
            table = config.table_name(short)
            keys = [k["AttributeName"] for k in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]]
            for _ in range(100):
                page = dynamodb.scan(TableName=table, ProjectionExpression=", ".join(f"#k{i}" for i in range(len(keys))),
                                     ExpressionAttributeNames={f"#k{i}": k for i, k in enumerate(keys)})
                items = page.get("Items", [])
                if not items:
                    break
                for i in range(0, len(items), 25):
                    dynamodb.batch_write_item(RequestItems={table: [{"DeleteRequest": {"Key": item}}
                                                                    for item in items[i:i + 25]]})


# ================================================================================================
# Logging as deployed
# ================================================================================================


class LogSink(io.TextIOBase):
    """Stands in for the Lambda's stdout: every line the app logs is formatted by its own handlers
    and written here (to /dev/null or --log-file), and counted, so that its cost is in every figure.

    The app is imported while `sys.stdout` is this sink, exactly as Lambda imports it with stdout
    being the log stream: whatever handlers the app's modules (and Chalice, which checks whether
    its logger already writes to sys.stdout) attach at import time bind to it, with their own
    levels. Nothing is silenced or re-leveled by the bench."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path or os.devnull
        self._file = open(self.path, "w", encoding="utf-8")
        self.lines = 0
        self.json_lines = 0
        self.bytes = 0

    def write(self, text: str) -> int:
        self._file.write(text)
        self.bytes += len(text)
        for line in text.splitlines():
            if line.strip():
                self.lines += 1
                if line.lstrip().startswith("{"):
                    self.json_lines += 1
        return len(text)

    def flush(self) -> None:
        self._file.flush()

    def writable(self) -> bool:
        return True

    def snapshot(self) -> Tuple[int, int]:
        return self.lines, self.json_lines

    def describe_handlers(self) -> List[str]:
        described = []
        loggers = [logging.getLogger()] + [v for v in logging.Logger.manager.loggerDict.values()
                                           if isinstance(v, logging.Logger)]
        for logger in loggers:
            mine = [h for h in logger.handlers if getattr(h, "stream", None) is self]
            if mine:
                described.append(f"logger '{logger.name}' level {logging.getLevelName(logger.getEffectiveLevel())}, "
                                 f"{len(mine)} handler(s) writing to the log stream "
                                 f"({', '.join(type(h).__name__ for h in mine)}), propagate={logger.propagate}")
        return described or ["no handler writes to the log stream"]


LOG_SINK = LogSink(ARGS.log_file)


def import_app_logging_to(sink: LogSink) -> Any:
    """`import app` with sys.stdout being the log stream, as in Lambda (see LogSink)."""
    real_stdout = sys.stdout
    sys.stdout = sink
    try:
        import app as application
        # What the first webhook request and the SQS handler import lazily (as on their first call).
        for module in ("chalicelib.ingest.webhook", "chalicelib.ingest.processor", "chalicelib.logs"):
            try:
                __import__(module)
            except ImportError:
                pass
    finally:
        sys.stdout = real_stdout
    return application


# ================================================================================================
# Small helpers
# ================================================================================================


def pct(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values_ns: List[int]) -> Dict[str, float]:
    us = [v / 1000.0 for v in values_ns]
    return {"n": len(us), "median_us": statistics.median(us), "p10_us": pct(us, 0.10), "p90_us": pct(us, 0.90),
            "min_us": min(us), "max_us": max(us)}


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


# Short table names for the printed tables (the JSON keeps the full ones).
TABLE_ALIAS = {"message-refs": "refs", "messages": "msgs", "contacts": "contacts", "conversations": "convs",
               "channel-accounts": "accounts"}


def _display(key: str) -> str:
    operation, _, rest = key.partition("[")
    if not rest:
        return key
    return f"{operation}[{'+'.join(TABLE_ALIAS.get(p, p) for p in rest.rstrip(']').split('+'))}]"


def fmt_ops(counter: Counter, per: float = 1.0) -> str:
    if not counter:
        return "-"
    ordered = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{_display(key)} {_num(count / per)}" for key, count in ordered)


def print_table(headers: List[str], rows: List[List[Any]], indent: str = "  ") -> None:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print(indent + "  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print(indent + "  ".join("-" * w for w in widths))
    for row in cells:
        print(indent + "  ".join(c.ljust(w) if i == 0 or not _numeric(c) else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(row, widths))))


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d.,]+[x%]?", text))


class LambdaContext:
    function_name = "socialinbox-bench"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:socialinbox-bench"
    memory_limit_in_mb = 512
    aws_request_id = "bench"
    log_group_name = ""
    log_stream_name = ""

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def apigw_event(platform_name: str, raw: bytes, headers: Dict[str, str]) -> Dict[str, Any]:
    """The API Gateway (REST, proxy) event Lambda hands to the Chalice app for a POST."""
    path = f"/webhooks/{platform_name}"
    return {
        "resource": "/webhooks/{platform}", "path": path, "httpMethod": "POST",
        "headers": dict(headers), "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": {"platform": platform_name}, "stageVariables": None,
        "requestContext": {"resourcePath": "/webhooks/{platform}", "httpMethod": "POST", "path": "/api" + path,
                           "stage": "api", "requestId": str(uuid.uuid4()), "accountId": ACCOUNT_ID,
                           "identity": {"sourceIp": "203.0.113.10", "userAgent": "facebookexternalua"}},
        "body": raw.decode("utf-8"), "isBase64Encoded": False,
    }


def meta_delivery(count: int, tag: str, now_ms: int, senders: Optional[int] = None) -> Dict[str, Any]:
    """A Messenger delivery with `count` text messages in one entry's messaging[]."""
    senders = senders or count
    items = []
    for i in range(count):
        sender = f"61{(i % senders):014d}"
        items.append({"sender": {"id": sender}, "recipient": {"id": PAGE_ID}, "timestamp": now_ms + i,
                      "message": {"mid": f"m_bench_{tag}_{i}",
                                  "text": f"Hi! My order #{4400 + i} arrived cold \u2615 can you help? ({tag})"}})
    return {"object": "page", "entry": [{"id": PAGE_ID, "time": now_ms, "messaging": items}]}


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode("utf-8")  # ASCII-escaped, as Meta sends it (and local/demo.py)


def sign(adapter_name: str, raw: bytes) -> Dict[str, str]:
    from chalicelib.channels import get_adapter
    from chalicelib.runtime import runtime

    headers = {"Content-Type": "application/json"}
    headers.update(get_adapter(adapter_name).signed_headers(raw, runtime.secret))
    return headers


def accounts_api() -> Any:
    """The module that registers and looks up channel accounts (chalicelib.accounts since bc48fc9;
    the pipeline before)."""
    try:
        from chalicelib import accounts

        if hasattr(accounts, "register_account"):
            return accounts
    except ImportError:
        pass
    from chalicelib.ingest import pipeline

    return pipeline


def reset_container() -> None:
    """Forget everything a warm Lambda container keeps: clients, queue URLs, cached accounts and
    secrets, pynamodb connections (the next invocation behaves like a cold start)."""
    from chalicelib import aws
    from chalicelib.ingest import pipeline
    from chalicelib.models import ALL_MODELS

    aws.reset()  # since bc48fc9 the Runtime object: clients, queue URLs, accounts, secrets
    forget_accounts = getattr(pipeline, "forget_accounts", None)
    if forget_accounts is not None:
        forget_accounts()
    try:
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()
    except Exception:  # noqa: BLE001 - powertools not imported yet: nothing cached
        pass
    if hasattr(pipeline, "_transaction_connection"):
        pipeline._transaction_connection = None
    for model in ALL_MODELS:
        if "_connection" in vars(model):
            model._connection = None


# ================================================================================================
# (a) ack path timing
# ================================================================================================


def bench_ack(application: Any, results: Dict[str, Any]) -> None:
    import boto3
    from chalice.test import Client

    from chalicelib import aws, config
    from chalicelib.channels.base import WebhookRequest
    from chalicelib.ingest import webhook
    from chalicelib.ingest.envelope import Envelope, invocation_event, invocation_record
    from chalicelib.runtime import runtime

    print("\n(a) Webhook ack path: time per delivery as a ratio to one bare asynchronous Invoke of the same event")
    # The webhook as deployed: its hand-off is the real Invoke (moto answers 202 and runs nothing).
    runtime.use_invoker(runtime.invoke_lambda)
    lambda_bare = boto3.session.Session().client("lambda", region_name=REGION)
    processor = config.function_name(config.INGEST_PROCESSOR_FUNCTION)
    sqs_bare = boto3.session.Session().client("sqs", region_name=REGION)
    ddb_bare = boto3.session.Session().client("dynamodb", region_name=REGION)
    url = aws.queue_url(config.INGEST_QUEUE)
    floor_table = config.table_name("quarantine")  # any table: one fixed key, overwritten
    client = Client(application.app, stage_name="local", project_dir=PROJECT)
    rng = random.Random(ARGS.seed)
    now = int(time.time() * 1000)
    section: Dict[str, Any] = {"floor": "boto3 lambda.invoke (own client, InvocationType Event) of the event the "
                                        "webhook hands off", "cases": {}}
    rows = []
    for label, events, rounds in (("1 event", 1, ROUNDS_1), (f"{BATCH}-event batch", BATCH, ROUNDS_100)):
        payload = meta_delivery(events, f"ack{events}", now)
        raw = encode(payload)
        headers = sign("meta", raw)
        lowered = {k.lower(): v for k, v in headers.items()}
        # Exactly what receive() queues (same size), built once: the floor sends this body.
        body = Envelope("meta", payload, now, uuid.uuid4().hex, {}).to_json()
        handed = invocation_event([invocation_record(body, uuid.uuid4().hex + ":0", now)])
        event = apigw_event("meta", raw, headers)
        item = {"item_id": {"S": "bench-floor"}, "reason": {"S": "bench"}, "raw": {"S": body}}

        def floor_invoke() -> int:
            lambda_bare.invoke(FunctionName=processor, InvocationType="Event", Payload=handed)
            return 200

        def floor_sqs() -> int:
            sqs_bare.send_message(QueueUrl=url, MessageBody=body)
            return 200

        def floor_ddb() -> int:
            ddb_bare.put_item(TableName=floor_table, Item=item)
            return 200

        def direct() -> int:
            return webhook.receive("meta", WebhookRequest("POST", lowered, {}, raw), uuid.uuid4().hex).status

        def lambda_style() -> int:
            return application.app(event, LambdaContext())["statusCode"]

        def test_client() -> int:
            return client.http.post("/webhooks/meta", body=raw, headers=headers).status_code

        subjects: List[Tuple[str, Callable[[], int]]] = [
            ("floor: bare Invoke", floor_invoke), ("bare SendMessage (the old hand-off)", floor_sqs),
            ("bare PutItem", floor_ddb),
            ("webhook.receive() direct", direct), ("app(APIGW event) as Lambda", lambda_style),
            ("chalice.test Client http.post", test_client),
        ]
        samples: Dict[str, List[int]] = {name: [] for name, _ in subjects}
        outside: Dict[str, List[int]] = {name: [] for name, _ in subjects}
        counts: Dict[str, Counter] = {name: Counter() for name, _ in subjects}
        gc.collect()
        for round_no in range(WARMUP_ROUNDS + rounds):
            order = list(subjects)
            rng.shuffle(order)
            for name, fn in order:
                with COUNTER.scope() as scope:
                    start = time.perf_counter_ns()
                    status = fn()
                    elapsed = time.perf_counter_ns() - start
                empty_queue(config.INGEST_QUEUE)
                if status != 200:
                    raise RuntimeError(f"{name} answered {status} for the {label} delivery")
                if round_no >= WARMUP_ROUNDS:
                    samples[name].append(elapsed)
                    outside[name].append(elapsed - scope.aws_ns)
                    counts[name].update(scope.calls)
        floor = samples["floor: bare Invoke"]
        floor_median = statistics.median(floor)
        case: Dict[str, Any] = {"events": events, "delivery_bytes": len(raw), "event_bytes": len(handed),
                                "rounds": rounds, "warmup_rounds": WARMUP_ROUNDS, "subjects": {}}
        for name, _ in subjects:
            stats = summary(samples[name])
            paired = [s / f for s, f in zip(samples[name], floor)]
            ratio = statistics.median(samples[name]) / floor_median
            requests = {k: v / rounds for k, v in counts[name].items()}
            stats.update({"ratio_of_medians": ratio, "ratio_per_event": ratio / events,
                          "paired_ratio_median": statistics.median(paired), "paired_ratio_p10": pct(paired, 0.1),
                          "paired_ratio_p90": pct(paired, 0.9),
                          "excess_over_floor_us": (statistics.median(samples[name]) - floor_median) / 1000.0,
                          "outside_aws_calls_median_us": statistics.median(outside[name]) / 1000.0,
                          "aws_requests_per_call": requests})
            case["subjects"][name] = stats
            rows.append([label if name.startswith("floor:") else "", name, f"{stats['median_us']:.0f}",
                         f"{stats['p10_us']:.0f}", f"{stats['p90_us']:.0f}", f"{stats['min_us']:.0f}",
                         f"{stats['max_us']:.0f}", f"{ratio:.2f}x",
                         f"{stats['paired_ratio_median']:.2f} [{stats['paired_ratio_p10']:.2f}-"
                         f"{stats['paired_ratio_p90']:.2f}]",
                         f"{ratio / events:.3f}x", f"{stats['outside_aws_calls_median_us']:.0f}",
                         fmt_ops(Counter({k: round(v, 2) for k, v in requests.items()}))])
        section["cases"][label] = case
        print(f"  {label}: delivery {len(raw):,} bytes, handed-off event {len(handed):,} bytes, "
              f"{rounds} interleaved rounds (+{WARMUP_ROUNDS} warm-up)")
    print()
    print_table(["delivery", "subject", "median us", "p10", "p90", "min", "max", "ratio", "paired [p10-p90]",
                 "per event", "own us", "AWS requests per call"], rows)
    runtime.use_invoker(None)
    print("  ratio = median(subject) / median(bare Invoke); paired = per-round subject/floor (median, p10-p90);\n"
          "  per event = ratio / events; own us = median time outside AWS API calls (our code + Chalice; for the\n"
          "  floors, the call's own time outside botocore's _make_api_call, ~0).")
    results["ack"] = section


# ================================================================================================
# (a') processor timing per message (extra): vs one bare PutItem
# ================================================================================================


def bench_processor(application: Any, results: Dict[str, Any]) -> None:
    import boto3

    from chalicelib import config
    from chalicelib.ingest import pipeline
    from chalicelib.ingest.envelope import Envelope

    print("\n(a') Processor (extra): time per message, follow-ups in existing conversations, vs one bare PutItem")
    ddb_bare = boto3.session.Session().client("dynamodb", region_name=REGION)
    floor_table = config.table_name("quarantine")
    rng = random.Random(ARGS.seed + 1)
    base = int(time.time() * 1000) + 10_000_000  # later than anything else in this run
    section: Dict[str, Any] = {"floor": "boto3 dynamodb.put_item (own client) of an item holding one message's JSON",
                               "cases": {}}
    rows = []

    def record(body: str) -> Dict[str, Any]:
        return {"messageId": str(uuid.uuid4()), "receiptHandle": "bench", "body": body,
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "",
                "eventSource": "aws:sqs", "awsRegion": REGION,
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{config.queue_name(config.INGEST_QUEUE)}"}

    def delivery(events: int, tag: str, at: int) -> Dict[str, Any]:
        payload = meta_delivery(events, tag, at)
        payload["entry"][0]["messaging"] = [dict(m, sender={"id": f"62{events:04d}{i:010d}"})
                                            for i, m in enumerate(payload["entry"][0]["messaging"])]
        return payload

    for label, events, rounds, warmup in (("1 event", 1, PROC_ROUNDS_1, 5),
                                          (f"{BATCH}-event batch", BATCH, PROC_ROUNDS_100, 0)):
        fresh_tables()  # small tables: see fresh_tables()
        with COUNTER.paused():
            for channel, account_id, name in _meta_accounts():
                accounts_api().register_account(channel, account_id, name)
                accounts_api().find_account(channel, account_id)  # warm container: account cached
            # Open the conversations first (untimed): every timed message is a follow-up.
            opened = application.ingest_processor(
                {"Records": [record(Envelope("meta", delivery(events, f"open{events}", base - 5_000_000), base,
                                             "open").to_json())]}, LambdaContext())
        if (opened or {}).get("created") != events:
            raise RuntimeError(f"could not open {events} conversations: {opened}")
        empty_tables("messages", "message-refs")
        bodies = [Envelope("meta", delivery(events, f"p{events}_{rep}", base + rep * 1000), base,
                           uuid.uuid4().hex).to_json() for rep in range(warmup + rounds)]
        item_raw = json.dumps(delivery(1, "floor", base)["entry"][0]["messaging"][0])
        item = {"item_id": {"S": "bench-floor"}, "reason": {"S": "bench"}, "raw": {"S": item_raw}}
        floor_samples: List[int] = []
        totals: List[float] = []
        owns: List[float] = []
        outcomes: Counter = Counter()
        calls: Counter = Counter()
        gc.collect()
        for rep, body in enumerate(bodies):
            jobs = ["subject"] + ["floor"] * 5
            rng.shuffle(jobs)
            for job in jobs:
                if job == "floor":
                    start = time.perf_counter_ns()
                    ddb_bare.put_item(TableName=floor_table, Item=item)
                    elapsed = time.perf_counter_ns() - start
                    if rep >= warmup:
                        floor_samples.append(elapsed)
                    continue
                with COUNTER.scope() as scope:
                    start = time.perf_counter_ns()
                    outcome = application.ingest_processor({"Records": [record(body)]}, LambdaContext())
                    elapsed = time.perf_counter_ns() - start
                if rep >= warmup:
                    totals.append(elapsed / events)
                    owns.append((elapsed - scope.aws_ns) / events)
                    outcomes.update(outcome or {})
                    calls.update(scope.calls)
            empty_tables("messages", "message-refs")  # keep moto's tables small (untimed)
        if outcomes.get("created", 0) != rounds * events:
            raise RuntimeError(f"processor outcomes {dict(outcomes)} (expected {rounds * events} created)")
        floor_median = statistics.median(floor_samples)
        total_median = statistics.median(totals)
        own_median = statistics.median(owns)
        per_message = rounds * events
        section["cases"][label] = {
            "events_per_envelope": events, "envelopes": rounds, "floor": summary(floor_samples),
            "per_message": summary([int(v) for v in totals]), "own_per_message": summary([int(v) for v in owns]),
            "ratio_per_message": total_median / floor_median, "own_ratio_per_message": own_median / floor_median,
            "aws_requests_per_message": sum(calls.values()) / per_message,
            "aws_requests_by_operation_per_message": {k: v / per_message for k, v in calls.items()}}
        rows.append([label, rounds, f"{floor_median / 1000:.0f}", f"{total_median / 1000:.0f}",
                     f"{pct(totals, 0.1) / 1000:.0f}-{pct(totals, 0.9) / 1000:.0f}", f"{total_median / floor_median:.2f}x",
                     f"{own_median / 1000:.0f}", f"{own_median / floor_median:.2f}x",
                     _num(sum(calls.values()) / per_message), fmt_ops(calls, per_message)])
    print_table(["envelope", "envelopes", "PutItem us", "us/message", "p10-p90", "ratio", "own us/msg", "own ratio",
                 "requests/msg", "AWS requests per message"], rows)
    print("  ratio = median(envelope time / messages) / median(bare PutItem); own = time outside AWS API calls.\n"
          "  Handler called as the SQS trigger calls it. moto answers a TransactWriteItems/UpdateItem with a long\n"
          "  update expression far slower than a PutItem, so the total ratio mostly measures moto; the request\n"
          "  count and the own time are the figures that carry over to AWS.")
    fresh_tables()
    results["processor_timing"] = section


def _meta_accounts() -> List[Tuple[str, str, str]]:
    from chalicelib.channels import get_adapter

    return list(get_adapter("meta").demo_accounts)


# ================================================================================================
# (b) AWS requests per inbound event, per adapter
# ================================================================================================


class EventLog:
    """Wraps pipeline.handle (the processor calls it per event) to count each event's requests."""

    def __init__(self) -> None:
        self.records: List[Dict[str, Any]] = []
        self.current_delivery: Optional[int] = None
        self._dynamodb: Any = None

    def wrap(self) -> Callable[[], None]:
        import boto3

        from chalicelib.ingest import pipeline

        # A client of our own for the before/after look, so that no pynamodb connection or
        # client of the code under test is warmed up by the bench.
        self._dynamodb = boto3.session.Session().client("dynamodb", region_name=REGION)
        original = pipeline.handle

        def handle(event: Any, correlation_id: str = "") -> str:
            kind = _kind_of(event)
            before = self._conversations() if kind else 0
            with COUNTER.scope() as scope:
                result = original(event, correlation_id)
            new_conversation = (self._conversations() > before) if kind else None
            self.records.append({"delivery": self.current_delivery, "type": type(event).__name__, "kind": kind,
                                 "new_conversation": new_conversation, "result": result, "scope": scope})
            return result

        pipeline.handle = handle

        def restore() -> None:
            pipeline.handle = original

        return restore

    def _conversations(self) -> int:
        from chalicelib import config

        with COUNTER.paused():
            return int(self._dynamodb.scan(TableName=config.table_name("conversations"), Select="COUNT")["Count"])


def _kind_of(event: Any) -> Optional[str]:
    """'message in', 'edit out', ... for events that carry a message; None for the others."""
    from chalicelib.channels.base import EditEvent, MessageEvent, RemoveEvent

    message = event if isinstance(event, MessageEvent) else getattr(event, "message", None)
    if not isinstance(message, MessageEvent):
        return None
    prefix = "edit" if isinstance(event, EditEvent) else "removal" if isinstance(event, RemoveEvent) else "message"
    return f"{prefix} {message.direction}"


def _label(record: Dict[str, Any]) -> str:
    result = record["result"]
    if record["kind"] is None:
        return f"{record['type']}: {result}"
    if result == "duplicate":
        return f"{record['kind']}: duplicate"
    if result in ("created", "created from edit", "created removed"):
        where = "first in conversation" if record["new_conversation"] else "follow-up"
        return f"{record['kind']}: {where}" + ("" if result == "created" else f" ({result})")
    return f"{record['kind']}: {result}"


def bench_requests(application: Any, results: Dict[str, Any]) -> int:
    from chalice.test import Client

    from chalicelib import aws, config
    from chalicelib.channels import adapter_names, get_adapter
    from chalicelib.ingest import pipeline
    from chalicelib.local.pump import pump_once

    print("\n(b) AWS requests per inbound event, ack path and processor, every registered adapter")
    print("    Counted on every botocore client (boto3, pynamodb, powertools). Not counted: the SQS trigger's own\n"
          "    ReceiveMessage/DeleteMessageBatch (done by Lambda's event source mapping). Tables: "
          + ", ".join(f"{v} = {k}" for k, v in TABLE_ALIAS.items()) + ".")
    failures = 0
    local_client = Client(application.app, stage_name="local", project_dir=PROJECT)
    deployed_client = Client(application.app, stage_name="dev", project_dir=PROJECT)
    # A deployed stage reads webhook secrets from SSM: seed the same values the local stage uses.
    with COUNTER.paused():
        ssm = aws.client("ssm")
        for name, value in config.LOCAL_SECRET_DEFAULTS.items():
            if value:
                ssm.put_parameter(Name=f"/{config.resource_prefix()}/{name}", Value=value, Type="SecureString",
                                  Overwrite=True)
    log = EventLog()
    restore = log.wrap()
    section: Dict[str, Any] = {}
    try:
        for adapter_name in adapter_names():
            try:
                section[adapter_name] = _requests_for(adapter_name, get_adapter(adapter_name), application,
                                                      local_client, deployed_client, log, pump_once, pipeline)
            except Exception as error:  # noqa: BLE001 - report and go on with the other adapters
                failures += 1
                section[adapter_name] = {"error": f"{type(error).__name__}: {error}"}
                print(f"\n  {adapter_name}: FAILED: {type(error).__name__}: {error}")
            finally:
                empty_queue(config.INGEST_QUEUE)
    finally:
        restore()
    results["requests"] = section
    try:
        results["pipeline_paths"] = _pipeline_paths()
    except Exception as error:  # noqa: BLE001 - the event types may be changing; report it
        failures += 1
        results["pipeline_paths"] = {"error": f"{type(error).__name__}: {error}"}
        print(f"\n  pipeline paths: FAILED: {type(error).__name__}: {error}")
    return failures


def _pipeline_paths() -> Dict[str, Any]:
    """Paths the demo deliveries do not reach (edits, removals, receipts, late and duplicate
    messages, unknown accounts), driven with normalised events straight into pipeline.handle, as
    the processor would after adapter.parse. Channel-independent."""
    from chalicelib.channels.base import ContactRef, EditEvent, MessageEvent, RemoveEvent, StatusEvent
    from chalicelib.ingest import pipeline

    print("\n  pipeline paths not reached by the demo data (normalised events into pipeline.handle, warm container):")
    fresh_tables()
    channel, account = "messenger", "100000000000009"
    with COUNTER.paused():
        accounts_api().register_account(channel, account, "bench page")
        accounts_api().find_account(channel, account)
    t = int(time.time() * 1000)

    def message(mid: str, at: int, direction: str = "in", text: str = "hello", account_id: str = account) -> Any:
        return MessageEvent(channel=channel, account_id=account_id, platform_message_id=mid, thread_key="6199",
                            contact=ContactRef("6199", display_name="Bench Customer"), direction=direction,
                            sent_at_ms=at, text=text)

    steps = [
        ("message in, first in conversation", message("m1", t)),
        ("message in, follow-up", message("m2", t + 1000)),
        ("message in, older than the latest (late delivery)", message("m0", t - 5000)),
        ("message in, duplicate of the latest", message("m2", t + 1000)),
        ("message in, duplicate of an older one", message("m0", t - 5000)),
        ("message out (our reply, echo)", message("o1", t + 2000, "out", "on it")),
        ("receipt: delivered", StatusEvent(channel, account, "o1", "delivered", t + 2500)),
        ("receipt: delivered again (stale)", StatusEvent(channel, account, "o1", "delivered", t + 2600)),
        ("receipt for an unknown message", StatusEvent(channel, account, "o-unknown", "read", t + 2700)),
        ("edit of a stored message", EditEvent(message("m2", t + 1000, text="hello, edited"), t + 3000)),
        ("edit whose original never came", EditEvent(message("m9", t + 3100, text="late original"), t + 3200)),
        ("removal of a stored message", RemoveEvent(channel, account, "m1", t + 4000, message("m1", t))),
        ("message for an unknown account", message("m1", t, account_id="999")),
    ]
    rows = []
    section: Dict[str, Any] = {}
    for label, event in steps:
        with COUNTER.scope() as scope:
            result = pipeline.handle(event, "bench")
        section[label] = {"result": result, "requests": dict(scope.calls), "total": scope.total}
        rows.append([label, result, scope.total, fmt_ops(scope.calls)])
    print_table(["event", "outcome", "requests", "by operation"], rows, indent="    ")
    return section


def _requests_for(adapter_name: str, adapter: Any, application: Any, local_client: Any, deployed_client: Any,
                  log: EventLog, pump_once: Callable[..., int], pipeline: Any) -> Dict[str, Any]:
    from chalicelib import aws, config

    empty_queue(config.INGEST_QUEUE)
    fresh_tables()  # each adapter starts from empty tables (also keeps moto fast)
    log.records = []
    with COUNTER.paused():
        for channel, account_id, name in adapter.demo_accounts:
            accounts_api().register_account(channel, account_id, name)
        for channel, account_id, _ in adapter.demo_accounts:  # a warm container has them cached
            accounts_api().find_account(channel, account_id)
        aws.queue_url(config.INGEST_QUEUE)

    def counted_handler(event: Dict[str, Any], context: Any) -> Any:
        with COUNTER.scope() as scope:
            try:
                return application.ingest_processor(event, context)
            finally:
                processor_scopes.append(scope)

    now = int(time.time() * 1000)
    first = adapter.demo_deliveries(now)
    follow = adapter.demo_deliveries(now + 60_000)
    passes = [
        ("1 first deliveries", first, local_client, False),
        ("2 next deliveries (+60 s)", follow, local_client, False),
        ("3 pass 2 again (platform retry)", follow, local_client, False),
        ("4 next (+120 s), cold container", adapter.demo_deliveries(now + 120_000), local_client, True),
        ("5 next (+180 s), cold, deployed stage (secrets from SSM)", adapter.demo_deliveries(now + 180_000),
         deployed_client, True),
    ]
    print(f"\n  {adapter_name}: channels {', '.join(adapter.channels)}; {len(adapter.demo_accounts)} demo accounts;"
          f" {len(first)} demo deliveries per pass")
    pass_results = []
    delivery_no = 0
    per_delivery: Dict[int, Dict[str, Any]] = {}
    for pass_name, deliveries, client, cold in passes:
        if not deliveries:
            raise RuntimeError("demo_deliveries() returned nothing")
        if cold:
            reset_container()
        if client is deployed_client:
            use_deployed_lambda()
        ack_total, proc_total = Scope(), Scope()
        records_before = len(log.records)
        for payload in deliveries:
            delivery_no += 1
            raw = encode(payload)
            headers = sign(adapter_name, raw)
            with COUNTER.scope() as ack:
                response = client.http.post(f"/webhooks/{adapter_name}", body=raw, headers=headers)
            if not 200 <= response.status_code < 300:
                raise RuntimeError(f"pass {pass_name}: webhook answered {response.status_code}: {response.body[:200]!r}")
            log.current_delivery = delivery_no
            processor_scopes: List[Scope] = []
            process_handed_off(counted_handler, pump_once)
            log.current_delivery = None
            proc = Scope()
            for scope in processor_scopes:
                proc.calls.update(scope.calls)
                proc.sends.update(scope.sends)
                proc.clients += scope.clients
            per_delivery[delivery_no] = {"pass": pass_name, "ack": ack, "processor": proc}
            for total, scope in ((ack_total, ack), (proc_total, proc)):
                total.calls.update(scope.calls)
                total.sends.update(scope.sends)
                total.clients += scope.clients
        events = log.records[records_before:]
        handled = Scope()
        for record in events:
            handled.calls.update(record["scope"].calls)
        outside = proc_total.calls - handled.calls  # requests made per envelope, not per event
        retries = (sum(ack_total.sends.values()) - ack_total.total) + (sum(proc_total.sends.values()) - proc_total.total)
        pass_results.append({"pass": pass_name, "deliveries": len(deliveries), "events": len(events),
                             "results": dict(Counter(r["result"] for r in events)),
                             "ack_requests": dict(ack_total.calls), "processor_requests": dict(proc_total.calls),
                             "processor_requests_outside_events": dict(outside),
                             "http_attempts_minus_calls": retries,
                             "clients_created": {"ack": ack_total.clients, "processor": proc_total.clients}})
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(Counter(r["result"] for r in events).items()))
        per_event = max(len(events), 1)
        print(f"    pass {pass_name}: {len(deliveries)} deliveries, {len(events)} events ({outcomes})")
        print(f"      ack path   {ack_total.total / per_event:5.2f}/event  {fmt_ops(ack_total.calls)}"
              f"  [new clients: {ack_total.clients}]")
        print(f"      processor  {proc_total.total / per_event:5.2f}/event  {fmt_ops(proc_total.calls)}"
              f"  [new clients: {proc_total.clients}]")
        if outside:
            print(f"      processor requests outside any event (per envelope): {fmt_ops(outside)}")
        if retries:
            print(f"      note: {retries} HTTP attempt(s) more than API calls (retries)")
    if not pass_results[1]["results"].get("created") and pass_results[1]["results"].get("duplicate"):
        print(f"    note: {adapter_name}.demo_deliveries(now_ms) keeps its message ids when now_ms changes, so passes"
              " 2, 4 and 5 are duplicates and no follow-up is measured for it.")

    # Per event kind, steady state (passes 1-3: warm container, local stage).
    warm = [r for r in log.records if r["delivery"] in per_delivery and per_delivery[r["delivery"]]["pass"][0] in "123"]
    events_per_delivery = Counter(r["delivery"] for r in warm)
    by_label: Dict[str, Dict[str, Any]] = {}
    for record in warm:
        label = _label(record)
        entry = by_label.setdefault(label, {"n": 0, "ack": Counter(), "proc": Counter(), "totals": []})
        entry["n"] += 1
        ack = per_delivery[record["delivery"]]["ack"].calls
        for key, count in ack.items():  # a delivery's ack requests, shared by its events
            entry["ack"][key] += count / events_per_delivery[record["delivery"]]
        entry["proc"].update(record["scope"].calls)
        entry["totals"].append(record["scope"].total)
    label_rows = []
    kinds: Dict[str, Any] = {}
    for label, entry in sorted(by_label.items()):
        n = entry["n"]
        ack_per = sum(entry["ack"].values()) / n
        proc_per = sum(entry["proc"].values()) / n
        spread = f" ({min(entry['totals'])}-{max(entry['totals'])})" if min(entry["totals"]) != max(entry["totals"]) else ""
        label_rows.append([label, n, f"{ack_per:.2f}", f"{proc_per:.2f}{spread}", fmt_ops(entry["proc"], n)])
        kinds[label] = {"events": n, "ack_requests_per_event": ack_per, "processor_requests_per_event": proc_per,
                        "processor_requests_min": min(entry["totals"]), "processor_requests_max": max(entry["totals"]),
                        "processor_by_operation_per_event": {k: v / n for k, v in entry["proc"].items()},
                        "ack_by_operation_per_event": {k: v / n for k, v in entry["ack"].items()}}
    print("    per event, warm container (passes 1-3):")
    print_table(["event", "n", "ack req/event", "processor req/event", "processor requests per event, by operation"],
                label_rows, indent="      ")
    return {"channels": list(adapter.channels), "demo_accounts": len(adapter.demo_accounts),
            "passes": pass_results, "per_event_kind_warm": kinds}


# ================================================================================================
# (d) DynamoDB request units per message kind (bench/wru.py), and what they cost
# ================================================================================================

# On-demand list prices, US East (N. Virginia), Standard table class, USD per million request
# units (in force since the 1 Nov 2024 price cut; source and date in bench/README.md).
PRICE_PER_MILLION_WRU = 0.625
PRICE_PER_MILLION_RRU = 0.125
WRU_CONVERSATIONS = 5  # conversations per message kind (each kind measured once per conversation)
SELF_TEST_TABLE = f"{PREFIX}-wru-self-test"


def _usd(units: float, price: float) -> str:
    return f"${units * price:,.2f}"


def use_deployed_lambda() -> None:
    """A deployed stage's webhook: the real Invoke (counted; moto answers 202 and runs nothing),
    the event then held as Lambda holds it, for process_handed_off to run."""
    from chalicelib.local.async_invoke import LocalInvocations
    from chalicelib.runtime import runtime

    held = LocalInvocations()

    def invoke(function: str, payload: bytes) -> None:
        runtime.invoke_lambda(function, payload)
        held(function, payload)

    invoke.run_pending = held.run_pending  # type: ignore[attr-defined]
    runtime.use_invoker(invoke)


def process_handed_off(handler: Callable[[Dict[str, Any], Any], Any], pump_once: Callable[..., int]) -> None:
    """The processor (`handler`) runs what the webhook handed it: its asynchronous invocations,
    as Lambda runs them (the local runner the runtime holds), then anything on the ingest queue,
    bounded (the SQS trigger's own ReceiveMessage/DeleteMessageBatch are Lambda's, not ours)."""
    from chalicelib import config
    from chalicelib.runtime import runtime

    run_pending = getattr(runtime.invoker(), "run_pending", None)
    if run_pending is not None:
        run_pending(handlers={config.INGEST_PROCESSOR_FUNCTION: handler})
    for _ in range(100):
        if pump_once(handler, max_messages=10) == 0:
            break


class Delivery:
    """One signed POST to /webhooks/<adapter>, then the processor runs what it was handed (the
    asynchronous invocation, Lambda's; see process_handed_off); measured as a whole:
    requests, WRU/RRU (METER) and log lines (LOG_SINK) on the ack path and in the processor."""

    def __init__(self, application: Any, client: Any) -> None:
        from chalicelib.local.pump import pump_once

        self.application = application
        self.client = client
        self.pump_once = pump_once

    def send(self, adapter_name: str, payload: Any) -> Dict[str, Any]:
        raw = encode(payload)
        headers = sign(adapter_name, raw)
        lines0, json0 = LOG_SINK.snapshot()
        with METER.scope() as units, COUNTER.scope() as requests:
            response = self.client.http.post(f"/webhooks/{adapter_name}", body=raw, headers=headers)
            ack_lines = LOG_SINK.lines - lines0
            if not 200 <= response.status_code < 300:
                raise RuntimeError(f"webhook answered {response.status_code}: {response.body[:200]!r}")
            process_handed_off(self.application.ingest_processor, self.pump_once)
        lines1, json1 = LOG_SINK.snapshot()
        dynamodb_requests = Counter({k: v for k, v in requests.calls.items()
                                     if k.split("[")[0] in wru.WRITE_OPERATIONS + wru.READ_OPERATIONS})
        return {"wru": units.wru, "base_wru": units.base_wru, "index_wru": units.index_wru, "rru": units.rru,
                "writes": [vars(w) for w in units.writes], "by_table": dict(units.by_table(_short)),
                "index_moves": dict(units.index_moves()), "dynamodb_requests": dict(dynamodb_requests),
                "log_lines": lines1 - lines0, "log_lines_ack": ack_lines, "log_lines_not_json": (lines1 - lines0)
                - (json1 - json0)}


def _stored(short: str) -> int:
    """Items in one of our tables, read without a counted request."""
    from chalicelib import config

    with COUNTER.paused(), METER.paused():
        client = METER.images.private_client()
        return int(client.scan(TableName=config.table_name(short), Select="COUNT")["Count"])


def _messenger(now: int, customer: str, kind: str, mid: str, text: str = "") -> Dict[str, Any]:
    """A Messenger delivery holding one messaging event of `kind` in the customer's DM."""
    if kind == "in":
        item = {"sender": {"id": customer}, "recipient": {"id": PAGE_ID}, "timestamp": now,
                "message": {"mid": mid, "text": text}}
    elif kind == "echo":
        item = {"sender": {"id": PAGE_ID}, "recipient": {"id": customer}, "timestamp": now,
                "message": {"mid": mid, "is_echo": True, "app_id": 1517776481860111, "text": text}}
    else:  # delivery receipt for our message `mid`
        item = {"sender": {"id": customer}, "recipient": {"id": PAGE_ID}, "timestamp": now,
                "delivery": {"mids": [mid], "watermark": now}}
    return {"object": "page", "entry": [{"id": PAGE_ID, "time": now, "messaging": [item]}]}


MESSAGE_KINDS = (
    # (label, what is expected to change: messages, conversations)
    ("new conversation (first inbound message)", 1, 1),
    ("follow-up in the same conversation", 1, 0),
    ("exact duplicate (platform retry of the follow-up)", 0, 0),
    ("echo of a message sent from the Page's own app", 1, 0),
    ("delivery receipt for that outbound message", 0, 0),
    ("follow-up after our reply (reply clock restarts)", 1, 0),
)
#: Measured in its own loop (a reply stored and sent through the outbox first): the platform's echo
#: of a reply we sent lands on the stored reply (no new message).
REPLY_ECHO_KIND = ("echo of our reply (after the send's answer)", 0, 0)


SHORT_TEXTS = ("Hi! My order #4471 arrived cold \u2615 can you help?", "It was the oat latte, order placed at 9:05.",
               "Sorry about that! A fresh one is on its way, no charge.", "Thank you, that's great \U0001F64F")
#: Sentences the realistic texts are drawn from (a contact centre's DMs: orders, deliveries, refunds).
SENTENCES = (
    "Hi, my order #{n} arrived this morning but the box was damaged and two of the glasses are broken.",
    "I paid with my credit card on Tuesday and the refund still has not shown up on my statement.",
    "Could you check where the parcel is? The tracking page has said out for delivery since yesterday.",
    "The courier left it at the neighbour's door without ringing, which is not what I asked for.",
    "It was the large oat latte with vanilla syrup, ordered at the station kiosk at 9:05.",
    "I would like to change the delivery address to my office on Baker Street if that is still possible.",
    "My loyalty points disappeared after the last update of the app, I had almost four hundred.",
    "Can I return the jacket in a shop instead of sending it back by post? The sleeves are too long.",
    "Sorry to bother you again, but nobody answered my email from last week about the invoice.",
    "Thank you, that is great, I really appreciate how quickly you sorted this out for me.",
    "Sorry about that! A replacement is on its way today, no charge, and you keep the first one.",
    "We have refunded the full amount; your bank usually shows it within three to five working days.",
)


def message_words(args_words: str) -> Optional[Tuple[int, int]]:
    """The stated length distribution of the bench's texts: (low, high) words, or None (short texts)."""
    if args_words == "short":
        return None
    low, high = (int(x) for x in args_words.split("-"))
    return low, high


def realistic_text(rng: "random.Random", words: Tuple[int, int], n: int) -> str:
    """A DM of uniform(low, high) words made of whole sentences from SENTENCES, cut at the length."""
    target = rng.randint(*words)
    out: List[str] = []
    while len(out) < target:
        out += rng.choice(SENTENCES).format(n=4400 + n).split()
    return " ".join(out[:target])


def _texts(now: int, n: int) -> Tuple[str, ...]:
    words = message_words(ARGS.words)
    if words is None:
        return SHORT_TEXTS
    rng = random.Random(f"{ARGS.seed}:{n}")
    return tuple(realistic_text(rng, words, n) for _ in SHORT_TEXTS)


def _messenger_steps(now: int, n: int) -> List[Tuple[str, Dict[str, Any]]]:
    customer = f"6199{n:011d}"
    tag = f"{now}_{n}"
    texts = _texts(now, n)
    follow = _messenger(now + 60_000, customer, "in", f"m_{tag}_2", texts[1])
    return [
        (MESSAGE_KINDS[0][0], _messenger(now, customer, "in", f"m_{tag}_1", texts[0])),
        (MESSAGE_KINDS[1][0], follow),
        (MESSAGE_KINDS[2][0], follow),
        (MESSAGE_KINDS[3][0], _messenger(now + 120_000, customer, "echo", f"o_{tag}_1", texts[2])),
        (MESSAGE_KINDS[4][0], _messenger(now + 125_000, customer, "delivery", f"o_{tag}_1")),
        (MESSAGE_KINDS[5][0], _messenger(now + 180_000, customer, "in", f"m_{tag}_3", texts[3])),
    ]


def _reply_echo(delivery: Delivery, now: int, n: int) -> Dict[str, Any]:
    """A customer writes, an agent's reply is stored and sent (outbox answer recorded), then the
    platform's echo of that reply arrives: only the echo is measured."""
    from chalicelib.inbox import outbound, store

    customer = f"6299{n:011d}"
    tag = f"{now}_{n}_r"
    delivery.send("meta", _messenger(now, customer, "in", f"m_{tag}_1", "Is the shop open on Sunday?"))
    with COUNTER.paused(), METER.paused():
        conversation_id = store.find_message("messenger", PAGE_ID, f"m_{tag}_1")[0]
        draft = outbound.Draft(conversation_id, "reply", "Yes, 10:00 to 16:00.", f"client-{tag}", "a_bench")
        message, _ = outbound.create(draft, store.get(conversation_id))
        outbound.mark_sent(message, f"o_{tag}_1")
    before = (_stored("messages"), _stored("conversations"))
    record = delivery.send("meta", _messenger(now + 2_000, customer, "echo", f"o_{tag}_1", "Yes, 10:00 to 16:00."))
    after = (_stored("messages"), _stored("conversations"))
    record["stored"] = {"messages": after[0] - before[0], "conversations": after[1] - before[1]}
    return record


def bench_wru(application: Any, results: Dict[str, Any]) -> int:
    """(d) What DynamoDB on-demand would bill per message, by kind: write request units (base
    items, x2 inside transactions, plus every index entry written) and read request units."""
    from chalice.test import Client

    from chalicelib import aws

    print("\n(d) DynamoDB request units per message (bench/wru.py meter: item sizes and index definitions, "
          "no code under test)")
    failures = 0
    section: Dict[str, Any] = {"prices_usd_per_million": {"wru": PRICE_PER_MILLION_WRU, "rru": PRICE_PER_MILLION_RRU}}
    results["wru"] = section

    # Self-test: known items into a table with one GSI, priced by hand.
    with COUNTER.paused():
        rows = wru.self_test(METER, aws.client("dynamodb"), SELF_TEST_TABLE)
    bad = [r for r in rows if r[1] != r[2]]
    section["self_test"] = [{"case": c, "expected": e, "measured": m} for c, e, m in rows]
    print(f"  meter self-test: {len(rows) - len(bad)}/{len(rows)} cases as computed by hand"
          + ("" if not bad else "; MISMATCH: " + "; ".join(f"{c}: expected {e}, measured {m}" for c, e, m in bad)))
    if bad:
        return 1

    fresh_tables()
    with COUNTER.paused(), METER.paused():
        for channel, account_id, name in get_demo_accounts("meta"):
            accounts_api().register_account(channel, account_id, name)
            accounts_api().find_account(channel, account_id)  # warm container: the account is cached
    schema = METER.images.schema(__import__("chalicelib.config", fromlist=["table_name"]).table_name("conversations"))
    section["conversation_indexes"] = [f"{i.name} ({'+'.join(i.keys)}, {i.projection})" for i in schema.indexes]
    print("  conversations table indexes now: " + (", ".join(section["conversation_indexes"]) or "none"))
    delivery = Delivery(application, Client(application.app, stage_name="local", project_dir=PROJECT))
    now = int(time.time() * 1000)
    per_kind: Dict[str, List[Dict[str, Any]]] = {label: [] for label, _, _ in MESSAGE_KINDS}
    expected = {label: (msgs, convs) for label, msgs, convs in MESSAGE_KINDS}
    surprises: List[str] = []
    for n in range(WRU_CONVERSATIONS):
        for label, payload in _messenger_steps(now + n * 1000, n):
            before = (_stored("messages"), _stored("conversations"))
            record = delivery.send("meta", payload)
            after = (_stored("messages"), _stored("conversations"))
            record["stored"] = {"messages": after[0] - before[0], "conversations": after[1] - before[1]}
            if (after[0] - before[0], after[1] - before[1]) != expected[label]:
                surprises.append(f"{label}: messages {after[0] - before[0]:+d}, conversations "
                                 f"{after[1] - before[1]:+d} (expected {expected[label][0]:+d}, {expected[label][1]:+d})")
            per_kind[label].append(record)
        empty_queue(__import__("chalicelib.config", fromlist=["INGEST_QUEUE"]).INGEST_QUEUE)
    per_kind[REPLY_ECHO_KIND[0]] = []
    expected[REPLY_ECHO_KIND[0]] = REPLY_ECHO_KIND[1:]
    for n in range(WRU_CONVERSATIONS):
        record = _reply_echo(delivery, now + 10_000_000 + n * 1000, n)
        if (record["stored"]["messages"], record["stored"]["conversations"]) != REPLY_ECHO_KIND[1:]:
            surprises.append(f"{REPLY_ECHO_KIND[0]}: stored {record['stored']}")
        per_kind[REPLY_ECHO_KIND[0]].append(record)

    rows_out = []
    kinds: Dict[str, Any] = {}
    for label, records in per_kind.items():
        totals = [r["wru"] for r in records]
        median_wru = statistics.median(totals)
        spread = f" ({min(totals)}-{max(totals)})" if min(totals) != max(totals) else ""
        rru = statistics.median(r["rru"] for r in records)
        typical = sorted(records, key=lambda r: r["wru"])[len(records) // 2]
        kinds[label] = {"n": len(records), "wru_median": median_wru, "wru_min": min(totals), "wru_max": max(totals),
                        "base_wru_median": statistics.median(r["base_wru"] for r in records),
                        "index_wru_median": statistics.median(r["index_wru"] for r in records),
                        "rru_median": rru, "usd_per_million_messages_writes": median_wru * PRICE_PER_MILLION_WRU,
                        "usd_per_million_messages_reads": rru * PRICE_PER_MILLION_RRU,
                        "typical": typical, "log_lines_median": statistics.median(r["log_lines"] for r in records)}
        rows_out.append([label, len(records), f"{_num(median_wru)}{spread}",
                         _num(statistics.median(r["base_wru"] for r in records)),
                         _num(statistics.median(r["index_wru"] for r in records)),
                         _usd(median_wru, PRICE_PER_MILLION_WRU), _num(rru), _usd(rru, PRICE_PER_MILLION_RRU),
                         f"{typical['log_lines_ack']}+{typical['log_lines'] - typical['log_lines_ack']}"
                         + (f" ({typical['log_lines_not_json']} not JSON)" if typical["log_lines_not_json"] else "")])
    section["messenger_dm"] = kinds
    words = message_words(ARGS.words)
    section["message_words"] = list(words) if words else "short (4-10 words)"
    mix = {MESSAGE_KINDS[0][0]: 1, MESSAGE_KINDS[1][0]: 1, MESSAGE_KINDS[5][0]: 2}  # bench/cost_bench.py MIX
    section["inbound_mix_wru"] = sum(kinds[k]["wru_median"] * n for k, n in mix.items()) / sum(mix.values())
    print(f"\n  texts: {'uniform %d-%d words per message (seeded)' % words if words else 'short (4-10 words)'}; "
          f"average WRU per inbound message in the cost model's mix (1 new, 1 follow-up, 2 after our reply): "
          f"{section['inbound_mix_wru']:.2f} (issue 21 goal <= 8)")
    print(f"\n  Messenger DM, webhook + processor, warm container; {WRU_CONVERSATIONS} conversations per kind "
          f"(median, range); cost per million messages at ${PRICE_PER_MILLION_WRU}/M WRU, "
          f"${PRICE_PER_MILLION_RRU}/M RRU (on-demand, us-east-1):")
    print_table(["message kind", "n", "WRU", "base", "indexes", "$/M msgs (writes)", "RRU", "$/M (reads)",
                 "log lines ack+proc"], rows_out, indent="    ")
    print("\n    where the WRU go (one typical message of each kind):")
    for label, entry in kinds.items():
        typical = entry["typical"]
        by_table = ", ".join(f"{_display(k)} {v}" for k, v in sorted(typical["by_table"].items(), key=lambda kv: -kv[1]))
        moves = ", ".join(f"{k} {v}" for k, v in sorted(typical["index_moves"].items())) or "no index entry written"
        print(f"    - {label}: {by_table or 'nothing written'}; indexes: {moves}")
    if surprises:
        print("    note: stored items did not change as expected: " + "; ".join(surprises))
    section["surprises"] = surprises
    if METER.unpriced:
        failures += 1
        print("    METER could not price: " + "; ".join(f"{k} x{v}" for k, v in METER.unpriced.items()))
        section["unpriced"] = dict(METER.unpriced)

    try:
        section["adapters"] = _wru_adapters(delivery)
    except Exception as error:  # noqa: BLE001 - report and go on
        failures += 1
        section["adapters"] = {"error": f"{type(error).__name__}: {error}"}
        print(f"\n  adapters' demo deliveries: FAILED: {type(error).__name__}: {error}")
    return failures


def get_demo_accounts(adapter_name: str) -> List[Tuple[str, str, str]]:
    from chalicelib.channels import get_adapter

    return list(get_adapter(adapter_name).demo_accounts)


def _wru_adapters(delivery: Delivery) -> Dict[str, Any]:
    """Every adapter's demo deliveries: first pass, follow-ups (+60 s), the follow-ups again."""
    from chalicelib import config
    from chalicelib.channels import adapter_names, get_adapter

    print("\n  every adapter's demo deliveries (fresh tables, warm container): WRU per stored message "
          "(pass WRU / messages it stored) and per delivery")
    rows = []
    section: Dict[str, Any] = {}
    for adapter_name in adapter_names():
        adapter = get_adapter(adapter_name)
        fresh_tables()
        with COUNTER.paused(), METER.paused():
            for channel, account_id, name in adapter.demo_accounts:
                accounts_api().register_account(channel, account_id, name)
                accounts_api().find_account(channel, account_id)
        now = int(time.time() * 1000)
        follow = adapter.demo_deliveries(now + 60_000)
        passes = [("first", adapter.demo_deliveries(now)), ("follow-up (+60 s)", follow), ("retry of follow-up", follow)]
        section[adapter_name] = {}
        for pass_name, deliveries in passes:
            before = _stored("messages")
            records = [delivery.send(adapter_name, payload) for payload in deliveries]
            stored = _stored("messages") - before
            total = sum(r["wru"] for r in records)
            rru = sum(r["rru"] for r in records)
            per_message = total / stored if stored else None
            section[adapter_name][pass_name] = {"deliveries": len(deliveries), "messages_stored": stored,
                                                "wru": total, "rru": rru, "wru_per_stored_message": per_message}
            rows.append([adapter_name, pass_name, len(deliveries), stored, total,
                         _num(per_message) if per_message is not None else "-", _num(total / len(deliveries)),
                         _num(rru)])
        empty_queue(config.INGEST_QUEUE)
    print_table(["adapter", "pass", "deliveries", "messages stored", "WRU", "WRU/stored msg", "WRU/delivery", "RRU"],
                rows, indent="    ")
    return section


# ================================================================================================
# (c) cold imports
# ================================================================================================


_WEBHOOK = ("import app\nfrom chalicelib.ingest import webhook\nfrom chalicelib.channels import get_adapter\n"
            "get_adapter({first!r})\n")
_PROCESSOR = "import app\nfrom chalicelib.ingest import processor\n"
IMPORT_VARIANTS = [
    ("floor: python -c pass", "pass"),
    ("import app (the Lambda handler module)", "import app"),
    ("webhook path: + ingest.webhook + the adapter", _WEBHOOK),
    ("webhook cold path: + boto3 SQS client", _WEBHOOK + "from chalicelib import aws\naws.client('sqs')"),
    ("processor path: import app + ingest.processor", _PROCESSOR),
    ("processor cold path: + pynamodb's DynamoDB clients", _PROCESSOR +
     "from chalicelib import models\nfrom chalicelib.runtime import runtime\n"
     "for model in (models.ChannelAccount, models.Conversation):\n    model._get_connection().connection.client\n"
     "runtime.connection().client"),
]
COMPILE_RUNS = 3
# Measures what a Lambda package without .pyc costs at each cold start (`make lambda-build` deletes
# __pycache__ and /var/task is read-only): compile() every module the path imported that the package
# ships, i.e. not the standard library and not what the Lambda runtime provides.
_COMPILE_PROBE = """
import json, os, sys, sysconfig, time
std = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")}
runtime = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six"}
total, count, size = 0.0, 0, 0
for name, module in list(sys.modules.items()):
    path = getattr(module, "__file__", None) or ""
    real = os.path.realpath(path)
    if not path.endswith(".py") or name.split(".")[0] in runtime:
        continue
    if "site-packages" not in real and any(real.startswith(s + os.sep) for s in std):
        continue
    with open(path, "rb") as handle:
        source = handle.read()
    start = time.perf_counter()
    compile(source, path, "exec", dont_inherit=True)
    total += time.perf_counter() - start
    count += 1
    size += len(source)
print(json.dumps({"modules": count, "source_bytes": size, "compile_ms": total * 1000}))
"""


def _import_env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}
    env.update(BENCH_ENV)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the warm-up run writes the project's __pycache__
    env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def _run_child(argv: List[str], env: Dict[str, str]) -> Tuple[float, float, int]:
    """(wall ms, CPU ms user+sys, exit status) of one fresh interpreter."""
    import threading

    start = time.perf_counter()
    child = subprocess.Popen(argv, cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killer = threading.Timer(60, child.kill)
    killer.start()
    try:
        _, status, usage = os.wait4(child.pid, 0)
    finally:
        killer.cancel()
    wall = (time.perf_counter() - start) * 1000
    child.returncode = os.waitstatus_to_exitcode(status)
    return wall, (usage.ru_utime + usage.ru_stime) * 1000, child.returncode


def bench_imports(results: Dict[str, Any]) -> None:
    from chalicelib.channels import ADAPTERS, adapter_names

    names = adapter_names()
    first = "meta" if "meta" in names else names[0]
    print(f"\n(c) Cold import in a fresh interpreter ({os.path.relpath(sys.executable, PROJECT)}; "
          f"AWS_XRAY_SDK_ENABLED=false; {IMPORT_RUNS} interleaved runs, median; bytecode cache warm)")
    env = _import_env()
    variants = [(name, code.format(first=first)) for name, code in IMPORT_VARIANTS]
    for _, code in variants:  # warm-up: write __pycache__, fill the OS page cache
        _run_child([sys.executable, "-c", code], env)
    wall: Dict[str, List[float]] = {name: [] for name, _ in variants}
    cpu: Dict[str, List[float]] = {name: [] for name, _ in variants}
    failed: Dict[str, int] = {}
    rng = random.Random(ARGS.seed + 2)
    for run in range(IMPORT_RUNS):
        order = list(variants)
        rng.shuffle(order)
        for name, code in order:
            w, c, status = _run_child([sys.executable, "-c", code], env)
            if status != 0:
                failed[name] = status
                continue
            wall[name].append(w)
            cpu[name].append(c)
    floor_wall = statistics.median(wall[variants[0][0]])
    floor_cpu = statistics.median(cpu[variants[0][0]])
    rows = []
    section: Dict[str, Any] = {"runs": IMPORT_RUNS, "floor_wall_ms": floor_wall, "floor_cpu_ms": floor_cpu,
                               "variants": {}}
    for name, code in variants:
        if not wall[name]:
            rows.append([name, "failed", "", "", "", "", ""])
            section["variants"][name] = {"code": code, "error": f"exit status {failed.get(name)}"}
            continue
        med, cmed = statistics.median(wall[name]), statistics.median(cpu[name])
        section["variants"][name] = {"code": code, "runs": len(wall[name]),
                                     "wall_median_ms": med, "wall_min_ms": min(wall[name]),
                                     "wall_max_ms": max(wall[name]), "wall_minus_floor_ms": med - floor_wall,
                                     "cpu_median_ms": cmed, "cpu_minus_floor_ms": cmed - floor_cpu}
        is_floor = name.startswith("floor")
        rows.append([name, f"{med:.0f}", f"{min(wall[name]):.0f}", f"{max(wall[name]):.0f}",
                     "-" if is_floor else f"{med - floor_wall:.0f}", f"{cmed:.0f}",
                     "-" if is_floor else f"{cmed - floor_cpu:.0f}"])
    print_table(["what", "wall ms", "min", "max", "wall - floor", "CPU ms", "CPU - floor"], rows)
    if failed:
        print(f"  FAILED variants (exit status): {failed}")

    # What shipping the package without .pyc adds to each cold start.
    compiled: Dict[str, Any] = {}
    for name, code in (("webhook path", _WEBHOOK.format(first=first)), ("processor path", _PROCESSOR)):
        runs = []
        for _ in range(COMPILE_RUNS):
            probe = subprocess.run([sys.executable, "-c", code + _COMPILE_PROBE], cwd=PROJECT,
                                   env=env, timeout=60, capture_output=True, text=True)
            if probe.returncode == 0:
                runs.append(json.loads(probe.stdout.strip().splitlines()[-1]))
        if runs:
            compiled[name] = dict(runs[0], compile_ms=statistics.median(r["compile_ms"] for r in runs))
    if compiled:
        print("  compiling what the Lambda package ships (not stdlib, not boto3/botocore...) when it has no .pyc: "
              + "; ".join(f"{n}: {c['modules']} modules, {c['source_bytes'] / 1e6:.1f} MB source, "
                          f"{c['compile_ms']:.0f} ms" for n, c in compiled.items()))
    section["compile_without_pyc"] = compiled

    # -X importtime: what `import app` pulls in, and each adapter module's own increment.
    modules = [ADAPTERS[n].split(":")[0] for n in names]
    code = "import app\nfrom chalicelib.ingest import webhook\n" + "".join(f"import {m}\n" for m in modules) + \
        "from chalicelib.ingest import processor\n"
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=PROJECT,
                         env=env, timeout=60, capture_output=True, text=True)
    entries = _parse_importtime(run.stderr)
    cumulative = {name: cum for name, level, cum in entries if level == 0}
    ordered = [(m, cumulative.get(m, 0)) for m in ["app", "chalicelib.ingest.webhook", *modules,
                                                   "chalicelib.ingest.processor"]]
    app_children = _children(entries, "app")
    print("  -X importtime, one run (cumulative ms; in this order, so each line pays only for what is new):")
    print("    " + ", ".join(f"{m} {us / 1000:.1f}" for m, us in ordered))
    print("  biggest direct imports of app.py: " + ", ".join(
        f"{n} {us / 1000:.0f} ms" for n, us in sorted(app_children, key=lambda x: -x[1])[:6]))
    section["importtime_cumulative_ms"] = {m: us / 1000 for m, us in ordered}
    section["app_direct_imports_ms"] = {n: us / 1000 for n, us in app_children}
    results["imports"] = section


def _parse_importtime(stderr: str) -> List[Tuple[str, int, int]]:
    entries = []
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( +)(\S+)", line)
        if match:
            level = (len(match.group(3)) - 1) // 2
            entries.append((match.group(4), level, int(match.group(2))))
    return entries


def _children(entries: List[Tuple[str, int, int]], parent: str) -> List[Tuple[str, int]]:
    """Direct imports of a top-level module (importtime prints children before their parent)."""
    for index, (name, level, _) in enumerate(entries):
        if name == parent and level == 0:
            children = []
            for child_name, child_level, cum in reversed(entries[:index]):
                if child_level == 0:
                    break
                if child_level == 1:
                    children.append((child_name, cum))
            return children
    return []


# ================================================================================================
# main
# ================================================================================================


def _inprocess_child(sections: List[str], results: Dict[str, Any], seconds_left: float) -> int:
    """Run `sections` in a child `--backend inprocess` process (they need moto in-process) and
    merge its results; bounded by what is left of --time-limit (at least 120 s)."""
    import tempfile

    limit = max(120.0, seconds_left)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        path = handle.name
    argv = [sys.executable, os.path.abspath(__file__), "--backend", "inprocess", "--only", ",".join(sections),
            "--json", path, "--time-limit", str(int(limit)), "--seed", str(ARGS.seed)]
    if ARGS.log_file:
        argv += ["--log-file", ARGS.log_file + ".inprocess"]
    print(f"\n{', '.join(sections)}: in a child process with moto in-process ({' '.join(argv[1:])})", flush=True)
    try:
        code = subprocess.run(argv, cwd=PROJECT, timeout=limit + 10).returncode
        with open(path, encoding="utf-8") as found:
            child = json.load(found)
    except (subprocess.TimeoutExpired, OSError, ValueError) as error:
        print(f"  child FAILED: {type(error).__name__}: {error}")
        return 1
    finally:
        if os.path.exists(path):
            os.unlink(path)
    for name in sections:
        if name in child:
            results[name] = child[name]
    return 1 if code else 0


def main() -> int:
    global ACTIVE_BACKEND
    import threading

    watchdog = threading.Timer(ARGS.time_limit, _watchdog)
    watchdog.daemon = True
    watchdog.start()
    started = time.perf_counter()
    import boto3
    import chalice
    import pynamodb

    results: Dict[str, Any] = {
        "command": " ".join([os.path.relpath(sys.executable, PROJECT), "bench/ingest_bench.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "versions": {"moto": moto.__version__, "boto3": boto3.__version__, "chalice": chalice.__version__,
                     "pynamodb": pynamodb.__version__},
        "quick": QUICK,
    }
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True, text=True)
    results["git_head"] = git.stdout.strip() or os.environ.get("BENCH_GIT_LABEL", "") or "(not a git checkout)"
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "app.py", "chalicelib", "infra"], cwd=PROJECT,
                           capture_output=True, text=True).stdout.strip() if git.stdout.strip() else ""
    if dirty:  # other work in the same checkout: the figures are of the working tree, not of HEAD
        results["git_head"] += f" + uncommitted changes to {len(dirty.splitlines())} file(s) of app.py/chalicelib/infra"
    backend = Backend(ARGS.backend)
    results["backend"] = backend.describe()
    print(f"socialinbox ingest bench: {backend.describe()}")
    print(f"  python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs; "
          f"git {results['git_head']}; {'QUICK run' if QUICK else 'full run'}")
    failures = 0
    ACTIVE_BACKEND = backend
    backend.start()
    try:
        application = import_app_logging_to(LOG_SINK)
        results["logging"] = LOG_SINK.describe_handlers()
        print(f"  logging as deployed (lines formatted and written to {LOG_SINK.path}): "
              + "; ".join(results["logging"]))
        from chalicelib.local import stack

        with COUNTER.paused(), METER.paused():
            stack.create_all()

        from chalicelib.channels import adapter_names

        results["adapters"] = adapter_names()
        print(f"  adapters: {', '.join(adapter_names())}")
        if "ack" not in SKIP:
            bench_ack(application, results)
        if "processor" not in SKIP:
            bench_processor(application, results)
        if "requests" not in SKIP:
            failures += bench_requests(application, results)
        if "wru" not in SKIP:
            failures += bench_wru(application, results)
        if "arming" not in SKIP:
            import arming_bench  # bench/arming_bench.py: SLA warnings armed by the sweeper, virtual clock

            failures += arming_bench.run(sys.modules[__name__], application, results)
        if ARGS.backend == "inprocess":
            this = sys.modules[__name__]
            if "flow" not in SKIP:
                import flow_bench  # bench/flow_bench.py

                failures += flow_bench.run(this, application, results)
            if "api" not in SKIP:
                import api_bench  # bench/api_bench.py

                failures += api_bench.run(this, application, results)
    finally:
        backend.stop()
        ACTIVE_BACKEND = None
    wanted = [s for s in INPROCESS_SECTIONS if s not in SKIP]
    if ARGS.backend != "inprocess" and wanted:
        watchdog.cancel()  # the child has its own, and a timeout here
        failures += _inprocess_child(wanted, results, ARGS.time_limit - (time.perf_counter() - started))
    if "imports" not in SKIP:
        bench_imports(results)
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    print(f"\nbench finished in {results['elapsed_s']} s" + (f"; {failures} adapter(s) FAILED" if failures else ""))
    if ARGS.json == "-":
        print(json.dumps(results, indent=2, default=str))
    elif ARGS.json:
        with open(ARGS.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2, default=str)
        print(f"machine-readable results: {os.path.relpath(ARGS.json, PROJECT)}")
    watchdog.cancel()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
