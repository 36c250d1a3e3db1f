#!/usr/bin/env python
"""(g) Deployed shape and cost (issue 11): zip size, cold first request, cost per month.

    .venv/bin/python bench/cost_bench.py                  # all sections (~4 min; builds if needed)
    .venv/bin/python bench/cost_bench.py --only cold,zip  # the Lambda package only
    .venv/bin/python bench/cost_bench.py --only cost --counts bench/results.json

- zip: what `make lambda-build` ships (build/lambda, pruned by infra/lean.py), zipped as chalice
  zips it, by top-level package.
- cold: the cold first request of the webhook function, i.e. a fresh interpreter with only the
  Lambda package and the runtime's own packages on sys.path: `import app` from build/lambda, then
  one signed Meta delivery through the Lambda handler (API Gateway proxy event) as deployed
  (SOCIALINBOX_STAGE=bench: the app secret read from SSM, the queue URL from the stage config),
  against a minimal Chalice function doing one boto3 SendMessage with the same event, in the same
  run, interleaved; both talk HTTP to one moto server on loopback. X-Ray off, and as deployed
  (LAMBDA_TASK_ROOT set) for a request API Gateway did not sample (99 %) and one it did (1 %).
  Twice: through the REST route (API Gateway event, `app.app`) and through the webhooks' own
  function (function URL event, `app.webhook_url`, AWS_LAMBDA_FUNCTION_NAME as Lambda sets it),
  each against the minimal function with the same front door. Ratio of medians; the goal is
  <= 1.10x (issue 21).
- cost: a month of 10k / 1M / 10M inbound messages, priced from the counts the other benches
  measure (bench/ingest_bench.py --only requests,wru; flow and api sections): DynamoDB units per
  message kind, SLA flow transitions per turn, the reply path's requests and units. Only the
  traffic mix and the Lambda durations are assumptions (listed with the table). The agent API's
  front door is a choice (--api-door: the API function's URL, $0 per request, or the REST API,
  $3.50 per million); both are printed after the table.

Nothing here asserts anything; timings are noisy on a shared machine, ratios within one run and
counts are what to compare.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from typing import Any, Dict, List, Optional

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PROJECT)
BUILD = os.path.join(PROJECT, "build", "lambda")
SECTIONS = ("zip", "cold", "cost")
STAGE = "bench"
SECRET = "bench-meta-app-secret"

MINIMAL_APP = '''
import os
import boto3
from chalice import Chalice

app = Chalice(app_name="minimal")
_sqs = []


@app.route("/webhooks/{platform}", methods=["POST"])
def receive(platform):
    if not _sqs:
        _sqs.append(boto3.client("sqs"))
    _sqs[0].send_message(QueueUrl=os.environ["INGEST_QUEUE_URL"], MessageBody=app.current_request.raw_body.decode())
    return {"ok": True}


@app.lambda_function(name="webhooks")
def webhook_url(event, context):
    if not _sqs:
        _sqs.append(boto3.client("sqs"))
    _sqs[0].send_message(QueueUrl=os.environ["INGEST_QUEUE_URL"], MessageBody=event["body"])
    return {"statusCode": 200, "body": "{}"}
'''

CHILD = '''
import time
_t0, _c0 = time.perf_counter(), time.process_time()
{path}
import json
import app
class _Context:
    function_name = "bench"
    aws_request_id = "cold-1"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    @staticmethod
    def get_remaining_time_in_millis():
        return 30000
_imported = time.perf_counter()
answer = {handler}(json.loads({event!r}), _Context())
assert answer["statusCode"] == 200, answer
print(json.dumps({{"wall_ms": (time.perf_counter() - _t0) * 1000, "cpu_ms": (time.process_time() - _c0) * 1000,
                  "import_ms": (_imported - _t0) * 1000, "modules": len(__import__("sys").modules)}}))
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- zip ------------------------------------------------------------------------------------------

def ensure_build() -> None:
    if not os.path.isdir(os.path.join(BUILD, "vendor")):
        print("  build/lambda missing: running `make lambda-build` (needs the package registry)")
        subprocess.run(["make", "lambda-build"], cwd=PROJECT, check=True, stdout=subprocess.DEVNULL)


def bench_zip(results: Dict[str, Any]) -> None:
    """Zip build/lambda the way chalice does (vendor/ at the root) and size it per package."""
    ensure_build()
    buffer = io.BytesIO()
    per_package: Dict[str, int] = {}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, _dirs, files in os.walk(BUILD):
            relative_root = os.path.relpath(root, BUILD)
            if relative_root.split(os.sep)[0] == ".chalice":  # config, not shipped
                continue
            for name in files:
                path = os.path.join(root, name)
                arcname = os.path.relpath(path, BUILD)
                if arcname.startswith("vendor" + os.sep):
                    arcname = arcname[len("vendor" + os.sep):]
                if arcname in ("requirements.txt",):
                    continue
                before = buffer.tell()
                archive.write(path, arcname)
                top = arcname.split(os.sep)[0].split("-")[0].removesuffix(".py").removesuffix(".pyc")
                per_package[top] = per_package.get(top, 0) + buffer.tell() - before
    total = buffer.tell()
    shipped = os.path.join(PROJECT, "out", "package", "deployment.zip")
    print(f"\n(g1) Lambda package: build/lambda zipped as chalice does: {total / 1e6:.2f} MB "
          f"(one zip for all {len(_functions())} functions)")
    if os.path.exists(shipped):
        print(f"  out/package/deployment.zip from `make package`: {os.path.getsize(shipped) / 1e6:.2f} MB")
    rows = sorted(per_package.items(), key=lambda item: -item[1])[:10]
    print("  largest parts (compressed): " + ", ".join(f"{name} {size / 1e6:.2f} MB" for name, size in rows))
    from infra import lean

    print("  dropped by infra/lean.py: " + "; ".join(f"{path} ({why})" for path, why in lean.DROP[:1] + lean.DROP[-2:])
          + f"; {len(lean.DROP) - 3} unused powertools utilities; vendored .py next to bytecode")
    results["zip"] = {"bytes": total, "by_package": dict(rows),
                      "deployment_zip_bytes": os.path.getsize(shipped) if os.path.exists(shipped) else None}


def _functions() -> List[str]:
    from infra import deploy

    return deploy.functions()


# --- cold first request ---------------------------------------------------------------------------

def _apigw_event(raw: bytes) -> Dict[str, Any]:
    signature = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return {"resource": "/webhooks/{platform}", "path": "/webhooks/meta", "httpMethod": "POST",
            "headers": {"Content-Type": "application/json", "X-Hub-Signature-256": signature,
                        "Host": "abc.execute-api.us-east-1.amazonaws.com"},
            "multiValueHeaders": {}, "queryStringParameters": None, "multiValueQueryStringParameters": None,
            "pathParameters": {"platform": "meta"}, "stageVariables": None, "isBase64Encoded": False,
            "requestContext": {"resourcePath": "/webhooks/{platform}", "httpMethod": "POST", "stage": "api",
                               "requestId": "r-1", "identity": {"sourceIp": "203.0.113.9"},
                               "path": "/api/webhooks/meta"},
            "body": raw.decode()}


def _function_url_event(raw: bytes) -> Dict[str, Any]:
    """What the webhooks' function URL hands the function (payload format 2.0)."""
    signature = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return {"version": "2.0", "routeKey": "$default", "rawPath": "/webhooks/meta", "rawQueryString": "",
            "headers": {"content-type": "application/json", "x-hub-signature-256": signature,
                        "host": "abc.lambda-url.us-east-1.on.aws"},
            "requestContext": {"requestId": "r-1", "http": {"method": "POST", "path": "/webhooks/meta",
                                                            "sourceIp": "203.0.113.9"}},
            "body": raw.decode(), "isBase64Encoded": False}


def _delivery() -> bytes:
    now = int(time.time() * 1000)
    payload = {"object": "page", "entry": [{"id": "100000000000001", "time": now, "messaging": [{
        "sender": {"id": "6100000000000001"}, "recipient": {"id": "100000000000001"}, "timestamp": now,
        "message": {"mid": f"m_cold_{now}", "text": "Hi! My order arrived cold, can you help?"}}]}]}
    return json.dumps(payload).encode()


def bench_cold(results: Dict[str, Any], runs: int, seed: int) -> None:
    from moto.server import ThreadedMotoServer

    from infra import lean

    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    ensure_build()
    from moto.core.config import default_user_config

    # The webhook hands each delivery to the processor by an asynchronous Invoke (issue 21): moto
    # answers it 202 without running anything (its Docker-less Lambda), as Lambda answers the call.
    default_user_config["lambda"]["use_docker"] = False
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        import boto3

        kwargs = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                      aws_secret_access_key="bench")
        queue = boto3.client("sqs", **kwargs).create_queue(QueueName=f"socialinbox-{STAGE}-ingest")["QueueUrl"]
        boto3.client("ssm", **kwargs).put_parameter(Name=f"/socialinbox-{STAGE}/META_APP_SECRET", Value=SECRET,
                                                    Type="SecureString")
        raw = _delivery()
        minimal_dir = tempfile.mkdtemp(prefix="minimal-chalice-")
        with open(os.path.join(minimal_dir, "app.py"), "w", encoding="utf-8") as handle:
            handle.write(MINIMAL_APP)
        import py_compile

        py_compile.compile(os.path.join(minimal_dir, "app.py"),
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        with lean.lambda_runtime() as runtime:
            minimal = lean.lambda_path_code([minimal_dir], runtime)
            ours = lean.lambda_path_code([BUILD, os.path.join(BUILD, "vendor")], runtime)
            # (path, handler, event, function name) per variant; compared in pairs, same front door.
            url_function = {"AWS_LAMBDA_FUNCTION_NAME": f"socialinbox-{STAGE}-webhooks"}
            variants = {
                "minimal Chalice route + 1 boto3 call": (minimal, "app.app", _apigw_event(raw), {}),
                "socialinbox REST route (import app + 1 verified delivery)":
                    (ours, "app.app", _apigw_event(raw), {"AWS_LAMBDA_FUNCTION_NAME": f"socialinbox-{STAGE}"}),
                "minimal Chalice lambda_function + 1 boto3 call": (minimal, "app.webhook_url",
                                                                   _function_url_event(raw), url_function),
                "socialinbox webhooks function, function URL (issue 21)":
                    (ours, "app.webhook_url", _function_url_event(raw), url_function),
            }
            pairs = {"REST route (API Gateway)": list(variants)[:2], "function URL": list(variants)[2:]}
            base_env = lean.child_env(
                AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1", SOCIALINBOX_STAGE=STAGE,
                INGEST_QUEUE_URL=queue, LOG_LEVEL="INFO", POWERTOOLS_SERVICE_NAME="socialinbox")
            trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled="
            deployed = dict(base_env, LAMBDA_TASK_ROOT=BUILD, AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:2000")
            modes = {"X-Ray off": dict(base_env, AWS_XRAY_SDK_ENABLED="false"),
                     "as deployed, request not sampled (99 %)": dict(deployed, _X_AMZN_TRACE_ID=trace + "0"),
                     "as deployed, request sampled (1 %)": dict(deployed, _X_AMZN_TRACE_ID=trace + "1")}
            section: Dict[str, Any] = {"runs": runs, "modes": {}, "pairs": {}}
            print(f"\n(g2) Cold first request, fresh interpreter per run (python -S, Lambda-like sys.path), "
                  f"{runs} interleaved runs each, median; moto server on loopback")
            rng = random.Random(seed)
            for mode, env in modes.items():
                samples: Dict[str, List[Dict[str, float]]] = {name: [] for name in variants}
                for name, (path, handler, event, extra) in variants.items():  # warm-up: OS page cache
                    _child(path, handler, event, dict(env, **extra), runtime)
                for _ in range(runs):
                    order = list(variants.items())
                    rng.shuffle(order)
                    for name, (path, handler, event, extra) in order:
                        samples[name].append(_child(path, handler, event, dict(env, **extra), runtime))
                section["modes"][mode] = {}
                for pair, (base_name, ours_name) in pairs.items():
                    base, ours_samples = samples[base_name], samples[ours_name]
                    row: Dict[str, Any] = {}
                    for key in ("wall_ms", "cpu_ms", "import_ms"):
                        row[key] = {"minimal": statistics.median(s[key] for s in base),
                                    "socialinbox": statistics.median(s[key] for s in ours_samples)}
                    row["ratio_wall"] = row["wall_ms"]["socialinbox"] / row["wall_ms"]["minimal"]
                    row["ratio_cpu"] = row["cpu_ms"]["socialinbox"] / row["cpu_ms"]["minimal"]
                    row["modules"] = {"minimal": base[0]["modules"], "socialinbox": ours_samples[0]["modules"]}
                    section["modes"][mode][pair] = row
                    print(f"  {mode}, {pair}: minimal {row['wall_ms']['minimal']:.0f} ms wall / "
                          f"{row['cpu_ms']['minimal']:.0f} ms CPU ({row['modules']['minimal']} modules); socialinbox "
                          f"{row['wall_ms']['socialinbox']:.0f} ms wall / {row['cpu_ms']['socialinbox']:.0f} ms CPU "
                          f"({row['modules']['socialinbox']} modules), of which import "
                          f"{row['import_ms']['socialinbox']:.0f} ms -> ratio {row['ratio_wall']:.2f}x wall, "
                          f"{row['ratio_cpu']:.2f}x CPU (goal <= 1.10x, issue 21)")
            results["cold"] = section
    finally:
        server.stop()


def _child(path_code: str, handler: str, event: Dict[str, Any], env: Dict[str, str], cwd: str) -> Dict[str, float]:
    code = CHILD.format(path=path_code, handler=handler, event=json.dumps(event))
    result = subprocess.run([sys.executable, "-S", "-c", code], env=env, cwd=cwd, capture_output=True, text=True,
                            timeout=120)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- cost -----------------------------------------------------------------------------------------

PRICES_DATE = "2026-12-02"
#: AWS list prices, us-east-1 (USD), from the services' pricing pages; free tiers ignored.
PRICES = {
    "rest_api_per_m": 3.50,          # API Gateway REST API, first 333 M requests/month
    "http_api_per_m": 1.00,          # API Gateway HTTP API, first 300 M (the alternative)
    "function_url_per_m": 0.0,       # Lambda function URL: nothing beyond the function's own requests
    "lambda_request_per_m": 0.20,
    "lambda_gb_s": 0.0000166667,     # x86
    "sqs_per_m": 0.40,               # standard queue, per 64 KB request
    "wru_per_m": 0.625,              # DynamoDB on demand (since the Nov 2024 reduction)
    "rru_per_m": 0.125,
    "sfn_transition_per_m": 25.0,    # Step Functions Standard, $0.025 per 1,000
    "logs_ingest_per_gb": 0.50,      # CloudWatch Logs, standard
    "xray_trace_per_m": 5.00,        # X-Ray traces recorded
    "alarm_month": 0.10,             # standard-resolution metric alarm
    "custom_metric_month": 0.30,
    "dashboard_month": 3.00,         # first 3 dashboards of an account are free
}

#: The traffic mix, per conversation (the only assumptions besides durations; change and rerun).
MIX = {
    "inbound": {"new conversation (first inbound message)": 1, "follow-up in the same conversation": 1,
                "follow-up after our reply (reply clock restarts)": 2},
    "replies": 2,            # agent replies through the API (each: outbox send, echo, 2 receipts)
    "receipts_per_reply": 2,  # delivered + read, each a webhook delivery
    "thread_views": 2,       # agent opens the conversation (GET conversation + messages)
    "resolves": 1,           # PATCH status
    "turn_kinds": {"early": 0.85, "late": 0.10, "breached": 0.05},  # how turns end
    "platform_retries": 0.02,  # share of deliveries a platform sends twice (duplicate: 1 RRU, 0 WRU)
    # How long a turn waits for its warning: the built-in policy (15 min target, warning at 80 %).
    # SQS delays a message 15 min at most, so a turn that reaches a later warning point costs one
    # more timer message (a hop) per further 15 min; early turns are assumed answered before their
    # first timer message arrives (no hop).
    "sla_warning_seconds": 720,
}
SQS_MAX_DELAY_SECONDS = 900
#: The agent API's front door (issue 21; --api-door): the API function's own Lambda function URL,
#: or API Gateway's REST API (both are deployed; docs/DEPLOY.md says which URL agents open).
API_DOORS = {"function URL": "function_url_per_m", "REST API": "rest_api_per_m"}
#: How an accepted delivery reaches the processor (issue 21; --handoff): Lambda's asynchronous
#: invocation of the processor (its own durable queue: no charge beyond the processor's request,
#: one invocation per delivery), or the ingest SQS queue (a send, and Lambda's poller receiving
#: and deleting per batch), which stays deployed for replays and upgrades.
HANDOFFS = ("async invoke", "SQS queue")
#: Billed Lambda duration per unit of work at 512 MB (assumed: moto's timings are not AWS's).
DURATION_MS = {"webhook": 15, "processor_per_message": 40, "api_reply": 80, "api_read": 30, "api_patch": 40,
               "outbox_send": 250, "sla_timer": 30}
MEMORY_GB = 0.5
#: Log bytes: Lambda's START, END and REPORT lines per invocation (written only when platform lines
#: below WARN are kept: infra/deploy.py LOGGING_CONFIG drops them on every deployed function, so
#: `platform_lines` is False unless priced for comparison), and one app line.
LOG_BYTES = {"per_invocation": 350, "per_app_line": 350}
VOLUMES = (10_000, 1_000_000, 10_000_000)
SECONDS_PER_MONTH = 30 * 86400


def _median(values: Any) -> float:
    return float(statistics.median(values)) if isinstance(values, list) else float(values)


def load_counts(paths: List[str]) -> Dict[str, Any]:
    """DynamoDB units per message kind, transitions per turn kind and the reply path's units,
    from ingest_bench JSON files (sections wru, flow, api)."""
    merged: Dict[str, Any] = {}
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            merged.update({k: v for k, v in json.load(handle).items() if k in ("wru", "flow", "api", "arming")})
    missing = {"wru", "flow", "api"} - set(merged)
    if missing:
        raise SystemExit(f"--counts: no {', '.join(sorted(missing))} section in {', '.join(paths)}")
    kinds = merged["wru"]["messenger_dm"]
    api = merged["api"]["sizes"][sorted(merged["api"]["sizes"], key=lambda s: int(s) if s.isdigit() else 0)[0]]
    return {
        "units": {kind: (_median(v["wru_median"]), _median(v["rru_median"])) for kind, v in kinds.items()},
        "transitions": {kind: _median(v["billed_transitions"]) for kind, v in merged["flow"]["kinds"].items()},
        # timer messages delivered per turn (warnings, stale ones included, and breaches)
        "timer_messages": {kind: _median([len(m) for m in v["timer_messages"]])
                           for kind, v in merged["flow"]["kinds"].items()},
        "reply": (_median(api["reply (POST + outbox worker until sent)"]["wru"]),
                  _median(api["reply (POST + outbox worker until sent)"]["rru"])),
        "patch": (_median(api["PATCH status pending"]["wru"]), _median(api["PATCH status pending"]["rru"])),
        "page_rru": _median(api["page sort=recent"]["rru"]),
        # the workspace's idle poll (304) and the same with viewers (every 4th poll)
        "poll_rru": _median(api["poll /api/changes (nothing changed: 304)"]["rru"])
        if "poll /api/changes (nothing changed: 304)" in api else 2.5,
        "poll_viewers_rru": _median(api["poll with viewers (every 4th poll)"]["rru"])
        if "poll with viewers (every 4th poll)" in api else 2.5,
        "counts_rru": _median(api["GET /api/counts (5 view counts)"]["rru"]) if "GET /api/counts (5 view counts)" in api
        else 2.5,
        # timer messages per turn under the built-in policy with the sweeper arming warnings (ingest_bench
        # --only arming; absent: every turn's warning queued at its start, as before)
        "arming": {kind: {"warning": v["warning_messages_per_turn"], "breach": v["breach_messages_per_turn"]}
                   for kind, v in merged["arming"]["kinds"].items()} if "arming" in merged else None,
        "inbound_mix_wru": merged["wru"].get("inbound_mix_wru"),
        "message_words": merged["wru"].get("message_words"),
    }


def month(counts: Dict[str, Any], messages: int, mix: Optional[Dict[str, Any]] = None,
          trace_rate: float = 0.01, webhooks_on_rest: bool = False, api_door: str = "function URL",
          platform_lines: bool = False, handoff: str = "async invoke") -> Dict[str, Any]:
    """One month of `messages` inbound customer messages: quantities per billed dimension.
    Webhook deliveries reach their own function through its function URL (no API Gateway
    charge, issue 21) unless `webhooks_on_rest` (the REST route, as before); agents reach the API
    through `api_door` (API_DOORS); deliveries reach the processor by `handoff` (HANDOFFS)."""
    MIX = mix or globals()["MIX"]  # noqa: N806 - the module's mix unless a variant is priced
    per_conversation = sum(MIX["inbound"].values())
    conversations = messages / per_conversation
    units = counts["units"]
    echo, receipt = units["echo of our reply (after the send's answer)"], units["delivery receipt for that outbound message"]
    duplicate = units["exact duplicate (platform retry of the follow-up)"]
    replies = conversations * MIX["replies"]
    # Webhook deliveries: customer messages, echoes of our replies, receipts, platform retries.
    deliveries = (messages + replies * (1 + MIX["receipts_per_reply"])) * (1 + MIX["platform_retries"])
    api_requests = replies + conversations * (MIX["thread_views"] * 2 + MIX["resolves"])
    wru = sum(units[k][0] * n for k, n in MIX["inbound"].items()) * conversations \
        + replies * (echo[0] + MIX["receipts_per_reply"] * receipt[0] + counts["reply"][0]) \
        + conversations * MIX["resolves"] * counts["patch"][0]
    rru = sum(units[k][1] * n for k, n in MIX["inbound"].items()) * conversations \
        + replies * (echo[1] + MIX["receipts_per_reply"] * receipt[1] + counts["reply"][1]) \
        + conversations * (MIX["resolves"] * counts["patch"][1] + MIX["thread_views"] * 2 * counts["page_rru"]) \
        + deliveries * MIX["platform_retries"] * duplicate[1]
    turns = conversations * (1 + MIX["inbound"]["follow-up after our reply (reply clock restarts)"])
    transitions = turns * sum(share * counts["transitions"][k] for k, share in MIX["turn_kinds"].items())
    # Timer messages: each turn's delayed warning (dropped as stale when the turn was answered
    # first), hops for warning points beyond SQS's 15 min, and the flow's breach.
    arming = counts.get("arming")
    if arming:  # measured under the built-in policy: warnings armed by the sweeper shortly before due
        warnings = turns * sum(share * arming[k]["warning"] for k, share in MIX["turn_kinds"].items())
        breaches = turns * sum(share * arming[k]["breach"] for k, share in MIX["turn_kinds"].items())
        timer_messages = warnings + breaches
        # the sweeper sends a minute's warnings 10 to a SendMessageBatch (one team assumed: a team
        # of its own per sweep would batch less); each breach message is sent alone
        per_sweep = warnings / (SECONDS_PER_MONTH / 60)
        timer_sends = warnings / max(1.0, min(10.0, per_sweep)) + breaches
    else:
        hops = max(0, -(-MIX["sla_warning_seconds"] // SQS_MAX_DELAY_SECONDS) - 1)
        timer_messages = turns * sum(share * (counts["timer_messages"][k] + (hops if k != "early" else 0))
                                     for k, share in MIX["turn_kinds"].items())
        timer_sends = timer_messages
    timer_sqs = timer_sends + 2 * timer_messages  # sent (alone or 10 to a batch), received, deleted
    sla_events = turns * (MIX["turn_kinds"]["late"] + 2 * MIX["turn_kinds"]["breached"])
    wru += sla_events * counts["patch"][0]  # an SLA event is recorded like a status change
    rru += timer_messages * 1  # each timer message reads its conversation (strongly consistent, < 4 KB)
    # SQS: each delivery and reply is sent once; Lambda's poller receives and deletes per batch
    # (batching window 1 s, up to 10: about one delivery per second fills a batch).
    rate = deliveries / SECONDS_PER_MONTH
    if handoff == "SQS queue":
        batch = max(1.0, min(10.0, rate * 1.0))
        delivery_sqs = deliveries * (1 + 2 / batch)
    else:  # one asynchronous invocation per delivery, queued by Lambda at no charge
        batch, delivery_sqs = 1.0, 0.0
    processor_invocations = deliveries / batch
    sqs = delivery_sqs + replies * 3 + timer_sqs
    invocations = {"webhook": deliveries, "processor": processor_invocations, "api": api_requests,
                   "outbox": replies, "sla_timers": timer_messages}
    gb_s = MEMORY_GB / 1000 * (deliveries * DURATION_MS["webhook"]
                               + deliveries * DURATION_MS["processor_per_message"]
                               + replies * (DURATION_MS["api_reply"] + DURATION_MS["outbox_send"])
                               + conversations * (MIX["thread_views"] * 2 * DURATION_MS["api_read"]
                                                  + MIX["resolves"] * DURATION_MS["api_patch"])
                               + timer_messages * DURATION_MS["sla_timer"])
    log_bytes = sum(invocations.values()) * (LOG_BYTES["per_invocation"] if platform_lines else 0) \
        + (deliveries * 2 + api_requests) * LOG_BYTES["per_app_line"]
    # X-Ray: API Gateway samples the requests behind the REST API at the template's TraceSampleRate
    # (a sampling rule, no reservoir); the consumers trace in PassThrough mode, so a delivery's
    # processor segment joins its webhook's trace (one trace, billed once) or is not recorded.
    # Nothing is sampled in front of a function URL: the webhooks' function has no tracing, the
    # API's traces in PassThrough (infra/deploy.py API_TRACING_MODE), so those record none.
    traces = ((deliveries if webhooks_on_rest else 0) + (api_requests if api_door == "REST API" else 0)) * trace_rate
    return {"messages": messages, "conversations": conversations, "deliveries": deliveries,
            "api_requests": api_requests + (deliveries if webhooks_on_rest else 0),
            # what API Gateway's REST API bills: the agent API's requests only behind it
            "rest_requests": (api_requests if api_door == "REST API" else 0) + (deliveries if webhooks_on_rest else 0),
            "lambda_requests": sum(invocations.values()),
            "gb_s": gb_s, "sqs": sqs, "wru": wru, "rru": rru, "transitions": transitions, "turns": turns,
            "log_gb": log_bytes / 1e9, "traces": traces, "batch": batch, "timer_messages": timer_messages,
            "timer_sqs": timer_sqs, "delivery_sqs": delivery_sqs}


#: Agents: 20 working 8 hours on 22 days a month (the issue's team), each with the inbox open.
AGENTS = {"agents": 20, "hours_per_month": 8 * 22}
APP_JS = os.path.join(PROJECT, "chalicelib", "web", "static", "app.js")


def page_timers() -> Dict[str, int]:
    """The workspace's own timers (ms), read from app.js: what an idle open inbox requests."""
    import re

    text = open(APP_JS, encoding="utf-8").read()
    return {name: int(value) for name, value in re.findall(r"var (\w+_MS) = (\d+);", text)}


def agent_requests_per_minute(timers: Dict[str, int]) -> Dict[str, float]:
    """An idle agent with the inbox and a thread open, by request (app.js's setInterval calls)."""
    polls = 60_000 / timers["POLL_MS"]
    with_viewers = 60_000 / timers["VIEWERS_MS"]
    return {"poll /api/changes (304)": polls - with_viewers, "poll with viewers": with_viewers,
            "viewing heartbeat": 60_000 / timers["VIEW_MS"], "online heartbeat": 60_000 / timers["PRESENCE_MS"],
            "alerts": 60_000 / timers["ALERTS_MS"], "full refresh (list + counts)": 2 * 60_000 / timers["FULL_MS"]}


def agent_cost(counts: Dict[str, Any], per_minute: Dict[str, float], api_door: str = "function URL",
               platform_lines: bool = False) -> Dict[str, float]:
    """$ per agent-hour of an idle open inbox polling through `api_door` (API_DOORS): each request
    pays the front door (REST: API Gateway; function URL: nothing), a Lambda request and 30 ms at
    512 MB, its log line and its DynamoDB units (measured for the polls, the counts and the list;
    heartbeats assumed one small write, alerts one read)."""
    rru = {"poll /api/changes (304)": counts["poll_rru"], "poll with viewers": counts["poll_viewers_rru"],
           "alerts": 1.0, "full refresh (list + counts)": (counts["page_rru"] + counts["counts_rru"]) / 2}
    wru = {"viewing heartbeat": 1.0, "online heartbeat": 1.0}
    per_request = (PRICES[API_DOORS[api_door]] + PRICES["lambda_request_per_m"]) / 1e6 \
        + MEMORY_GB * DURATION_MS["api_read"] / 1000 * PRICES["lambda_gb_s"] \
        + (LOG_BYTES["per_app_line"] + (LOG_BYTES["per_invocation"] if platform_lines else 0)) / 1e9 \
        * PRICES["logs_ingest_per_gb"]
    hour = {name: n * 60 * (per_request + rru.get(name, 0) * PRICES["rru_per_m"] / 1e6
                            + wru.get(name, 0) * PRICES["wru_per_m"] / 1e6) for name, n in per_minute.items()}
    return hour


def fixed_month() -> Dict[str, float]:
    """What the deployment costs with no traffic: alarms, metrics, dashboard, idle queue polling,
    the two sweepers every minute."""
    from chalicelib.local import stack

    resources = stack.template()["Resources"].values()
    alarms = sum(1 for r in resources if r["Type"] == "AWS::CloudWatch::Alarm")
    queues = 3  # consumed by Lambda: ingest, outbox, sla-timers
    idle_polls = queues * 5 * 3 * 60 * 24 * 30  # ~5 pollers, 20 s long polls, each queue
    sweeps = 2 * 60 * 24 * 30
    return {"alarms": alarms * PRICES["alarm_month"], "custom metrics (3)": 3 * PRICES["custom_metric_month"],
            "dashboard": PRICES["dashboard_month"], "idle SQS polling": idle_polls * PRICES["sqs_per_m"] / 1e6,
            "sweepers": sweeps * (PRICES["lambda_request_per_m"] / 1e6 + 0.1 * 0.25 * PRICES["lambda_gb_s"]
                                  + 4 * PRICES["rru_per_m"] / 1e6)}


def priced(q: Dict[str, Any]) -> Dict[str, float]:
    return {
        "API Gateway (REST API)": q["rest_requests"] * PRICES["rest_api_per_m"] / 1e6,
        "Lambda requests": q["lambda_requests"] * PRICES["lambda_request_per_m"] / 1e6,
        "Lambda GB-seconds": q["gb_s"] * PRICES["lambda_gb_s"],
        "SQS": q["sqs"] * PRICES["sqs_per_m"] / 1e6,
        "DynamoDB writes": q["wru"] * PRICES["wru_per_m"] / 1e6,
        "DynamoDB reads": q["rru"] * PRICES["rru_per_m"] / 1e6,
        "Step Functions": q["transitions"] * PRICES["sfn_transition_per_m"] / 1e6,
        "CloudWatch Logs": q["log_gb"] * PRICES["logs_ingest_per_gb"],
        "X-Ray": q["traces"] * PRICES["xray_trace_per_m"] / 1e6,
    }


def bench_cost(results: Dict[str, Any], counts_arg: str, api_door: str = "function URL",
               handoff: str = "async invoke") -> None:
    paths = [p for p in counts_arg.split(",") if p]
    if not paths:
        paths = _run_counting_benches()
    counts = load_counts(paths)
    fixed = fixed_month()
    print(f"\n(g3) Cost per month at AWS list prices (us-east-1, {PRICES_DATE}; free tiers ignored), from the "
          f"counts in {', '.join(os.path.relpath(p, PROJECT) for p in paths)}")
    print(f"  mix per conversation: {sum(MIX['inbound'].values())} inbound messages (1 new, 1 follow-up, 2 after our "
          f"reply), {MIX['replies']} replies (echo + {MIX['receipts_per_reply']} receipts each), "
          f"{MIX['thread_views']} thread views, {MIX['resolves']} resolve; turns end early/late/breached "
          f"{MIX['turn_kinds']['early']:.0%}/{MIX['turn_kinds']['late']:.0%}/{MIX['turn_kinds']['breached']:.0%};"
          f" Lambda 512 MB, billed ms assumed {DURATION_MS}; agent API through its {api_door} "
          f"(--api-door), webhooks through their function URL, deliveries to the processor by {handoff} (--handoff)")
    table: Dict[str, Dict[str, float]] = {}
    quantities: Dict[str, Dict[str, Any]] = {}
    trace_rate = float(_template_default("TraceSampleRate"))
    for volume in VOLUMES:
        q = month(counts, volume, trace_rate=trace_rate, api_door=api_door, handoff=handoff)
        quantities[str(volume)] = q
        table[str(volume)] = priced(q)
    lines = list(next(iter(table.values())))
    header = ["line"] + [f"{v:,} msgs" for v in VOLUMES] + ["$/M inbound"]
    rows = []
    for line in lines:
        rows.append([line] + [f"${table[str(v)][line]:,.2f}" for v in VOLUMES]
                    + [f"${table['1000000'][line]:.2f}"])
    variable = {str(v): sum(table[str(v)].values()) for v in VOLUMES}
    rows.append(["= traffic"] + [f"${variable[str(v)]:,.2f}" for v in VOLUMES] + [f"${variable['1000000']:.2f}"])
    fixed_total = sum(fixed.values())
    rows.append(["+ fixed (" + ", ".join(f"{k} ${v:.2f}" for k, v in fixed.items()) + ")"]
                + [f"${fixed_total:,.2f}"] * len(VOLUMES) + [""])
    rows.append(["= month"] + [f"${variable[str(v)] + fixed_total:,.2f}" for v in VOLUMES] + [""])
    _print_table(header, rows)
    million = table["1000000"]
    top = sorted(million.items(), key=lambda item: -item[1])[:3]
    q = quantities["1000000"]
    timers_sqs = q["timer_sqs"] * PRICES["sqs_per_m"] / 1e6  # sent (alone or batched), received, deleted
    timers_lambda = q["timer_messages"] * (PRICES["lambda_request_per_m"] / 1e6 + MEMORY_GB
                                           * DURATION_MS["sla_timer"] / 1000 * PRICES["lambda_gb_s"])
    inbound_only = priced(month(counts, 1_000_000, dict(MIX, replies=0, thread_views=0, resolves=0),
                                trace_rate=trace_rate, api_door=api_door, handoff=handoff))
    print(f"  inbound path alone (webhook, queue, processor, its writes and SLA turns; no replies, views or "
          f"resolves): ${sum(inbound_only.values()):.2f} per million, of which "
          + ", ".join(f"{k} ${v:.2f}" for k, v in sorted(inbound_only.items(), key=lambda i: -i[1])[:4]))
    print(f"  per million inbound messages, whole conversation: ${variable['1000000']:.2f} (goal <= $30); "
          "dominated by "
          + ", ".join(f"{name} ${value:.2f}" for name, value in top))
    print(f"  SLA timers (1 M/month): {q['turns'] / 1e6:.2f} M turns, {q['timer_messages'] / 1e6:.2f} M timer "
          f"messages ({q['timer_messages'] / q['turns']:.2f} per turn), {q['transitions'] / 1e6:.2f} M transitions: "
          f"Step Functions ${million['Step Functions']:.2f}, their SQS ${timers_sqs:.2f}, their Lambda "
          f"${timers_lambda:.2f}")
    print(f"  tracing at {trace_rate:.0%} costs ${million['X-Ray']:.2f}"
          + (f" (at 100 %: ${million['X-Ray'] / trace_rate:.2f})" if trace_rate else ""))
    print(f"  quantities at 1 M: {q['deliveries'] / 1e6:.2f} M webhook deliveries, {q['api_requests'] / 1e6:.2f} M API "
          f"requests, {q['lambda_requests'] / 1e6:.2f} M Lambda invocations (processor batch {q['batch']:.1f}), "
          f"{q['wru'] / 1e6:.1f} M WRU, {q['rru'] / 1e6:.1f} M RRU, {q['transitions'] / 1e6:.2f} M transitions, "
          f"{q['traces'] / 1e6:.2f} M traces, {q['log_gb']:.2f} GB logs")
    rest_before = priced(month(counts, 1_000_000, trace_rate=trace_rate, webhooks_on_rest=True, api_door="REST API",
                               handoff="SQS queue"))
    rest_inbound = priced(month(counts, 1_000_000, dict(MIX, replies=0, thread_views=0, resolves=0),
                                trace_rate=trace_rate, webhooks_on_rest=True, api_door="REST API", handoff="SQS queue"))
    print(f"  webhooks and agent API both through the REST API, deliveries through the ingest queue (the doors "
          f"before issue 21, today's writes and timers): whole conversation "
          f"${sum(rest_before.values()):.2f}, inbound path ${sum(rest_inbound.values()):.2f} per million")
    if counts.get("inbound_mix_wru") is not None:
        print(f"  DynamoDB: {counts['inbound_mix_wru']:.2f} WRU per inbound message in the mix (texts: "
              f"{counts.get('message_words')} words; issue 21 goal <= 8)")
    timers = page_timers()
    per_minute = agent_requests_per_minute(timers)
    hour = agent_cost(counts, per_minute, api_door)
    agent_month = sum(hour.values()) * AGENTS["hours_per_month"]
    print(f"\n  Per agent (apart from messages): an idle open inbox polling (app.js: " + ", ".join(
        f"{k} {v:.2f}/min" for k, v in per_minute.items()) + f") = {sum(per_minute.values()):.1f} requests a minute,"
          f" ${sum(hour.values()):.4f} per agent-hour, ${agent_month:.2f} per agent-month "
          f"({AGENTS['hours_per_month']} h), ${agent_month * AGENTS['agents']:.2f} a month for {AGENTS['agents']} "
          f"agents (issue 21 goal: <= $0.10 per idle agent-month with pushed updates)")
    doors = front_doors(counts, trace_rate, per_minute, handoff)
    handoffs = {}
    for way in HANDOFFS:
        whole = priced(month(counts, 1_000_000, trace_rate=trace_rate, api_door=api_door, handoff=way))
        inbound = priced(month(counts, 1_000_000, dict(MIX, replies=0, thread_views=0, resolves=0),
                               trace_rate=trace_rate, api_door=api_door, handoff=way))
        handoffs[way] = {"whole_conversation_per_million": sum(whole.values()),
                         "inbound_path_per_million": sum(inbound.values()), "sqs_per_million": inbound["SQS"]}
    print("\n  Deliveries to the processor (issue 21; per million inbound messages):")
    for way, row in handoffs.items():
        print(f"    {way:<13} whole conversation ${row['whole_conversation_per_million']:.2f}, inbound path "
              f"${row['inbound_path_per_million']:.2f} (its SQS ${row['sqs_per_million']:.2f})")
    print("\n  The agent API's front door (issue 21; per million inbound messages, and per idle polling agent):")
    for door, row in doors.items():
        print(f"    {door:<13} API Gateway ${row['api_gateway_per_million']:.2f}: whole conversation "
              f"${row['whole_conversation_per_million']:.2f}, inbound path ${row['inbound_path_per_million']:.2f}; "
              f"${row['agent_hour_usd']:.4f} per agent-hour, ${row['agent_month_usd']:.2f} per agent-month, "
              f"${row['agent_month_usd'] * AGENTS['agents']:.2f} for {AGENTS['agents']} agents")
    with_lines = priced(month(counts, 1_000_000, trace_rate=trace_rate, api_door=api_door, platform_lines=True,
                              handoff=handoff))
    lines_hour = sum(agent_cost(counts, per_minute, api_door, platform_lines=True).values())
    print(f"\n  Lambda's START/END/REPORT lines (dropped: infra/deploy.py LOGGING_CONFIG, SystemLogLevel WARN): "
          f"CloudWatch Logs ${with_lines['CloudWatch Logs']:.2f} per million inbound with them, "
          f"${million['CloudWatch Logs']:.2f} without; whole conversation ${sum(with_lines.values()):.2f} -> "
          f"${variable['1000000']:.2f}; an idle polling agent ${lines_hour * AGENTS['hours_per_month']:.2f} -> "
          f"${agent_month:.2f} a month")
    results["cost"] = {"api_door": api_door, "front_doors": doors, "handoff": handoff, "handoffs": handoffs,
                       "platform_lines_per_million": sum(with_lines.values()),"inbound_path_per_million": sum(inbound_only.values()), "trace_rate": trace_rate,
                       "webhooks_on_rest_per_million": sum(rest_before.values()),
                       "webhooks_on_rest_inbound_per_million": sum(rest_inbound.values()),
                       "agent_requests_per_minute": per_minute, "agent_hour_usd": hour,
                       "agent_month_usd": agent_month,
                       "prices": PRICES, "prices_date": PRICES_DATE, "mix": MIX, "durations_ms": DURATION_MS,
                       "counts": counts, "per_volume": table, "quantities": quantities, "fixed": fixed,
                       "per_million_inbound": variable["1000000"]}


def front_doors(counts: Dict[str, Any], trace_rate: float, per_minute: Dict[str, float],
                handoff: str = "async invoke") -> Dict[str, Dict[str, float]]:
    """The same month and the same idle agent through each of API_DOORS: what the agent API's
    front door alone changes."""
    doors = {}
    inbound_mix = dict(MIX, replies=0, thread_views=0, resolves=0)
    for door in API_DOORS:
        whole = priced(month(counts, 1_000_000, trace_rate=trace_rate, api_door=door, handoff=handoff))
        inbound = priced(month(counts, 1_000_000, inbound_mix, trace_rate=trace_rate, api_door=door, handoff=handoff))
        hour = sum(agent_cost(counts, per_minute, door).values())
        doors[door] = {"api_gateway_per_million": whole["API Gateway (REST API)"],
                       "whole_conversation_per_million": sum(whole.values()),
                       "inbound_path_per_million": sum(inbound.values()),
                       "agent_hour_usd": hour, "agent_month_usd": hour * AGENTS["hours_per_month"]}
    return doors


def _template_default(parameter: str) -> Any:
    from chalicelib.local import stack

    return stack.template()["Parameters"][parameter]["Default"]


def _run_counting_benches() -> List[str]:
    """The sections that count (ingest: wru; flow and api in-process), into temporary JSON files."""
    out = tempfile.mkdtemp(prefix="cost-counts-")
    commands = [("wru", ["--only", "wru"]), ("flow-api", ["--backend", "inprocess", "--only", "flow,api", "--quick"]),
                ("arming", ["--backend", "inprocess", "--only", "arming"])]
    paths = []
    for name, args in commands:
        path = os.path.join(out, f"{name}.json")
        print(f"  counting: bench/ingest_bench.py {' '.join(args)} (a few minutes)")
        run = subprocess.run([sys.executable, os.path.join(PROJECT, "bench", "ingest_bench.py"), *args, "--json",
                              path], cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if run.returncode != 0:
            raise SystemExit(f"bench/ingest_bench.py {' '.join(args)} failed (rerun it with --json and pass the "
                             f"files with --counts):\n{run.stdout[-2000:]}")
        paths.append(path)
    return paths


def _print_table(headers: List[str], rows: List[List[Any]]) -> None:
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]
    for row in [headers, ["-" * w for w in widths]] + rows:
        print("  " + "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in
                               enumerate(zip(row, widths))))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--runs", type=int, default=9, help="cold: runs per variant and mode")
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--counts", default="", help="cost: ingest_bench JSON file(s), comma-separated, holding "
                                                      "the wru, flow and api sections (default: run them now)")
    parser.add_argument("--api-door", choices=list(API_DOORS), default="function URL",
                        help="cost: the agent API's front door the main table prices (both are printed after it)")
    parser.add_argument("--handoff", choices=list(HANDOFFS), default="async invoke",
                        help="cost: how deliveries reach the processor in the main table (both are printed after it)")
    parser.add_argument("--json", default="", help="write machine-readable results here")
    args = parser.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    results: Dict[str, Any] = {"date": time.strftime("%Y-%m-%d")}
    if "zip" in only:
        bench_zip(results)
    if "cold" in only:
        bench_cold(results, args.runs, args.seed)
    if "cost" in only:
        bench_cost(results, args.counts, args.api_door, args.handoff)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
