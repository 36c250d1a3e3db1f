#!/usr/bin/env python
"""(f) Agent API costs (issue 8): AWS requests, DynamoDB WRU/RRU (bench/wru.py meter) per reply,
per action and per inbox page, with 1,000 and 100,000 conversations stored.

Through the Chalice test client (`chalice.test.Client`, stage local) in-process with moto
(`mock_aws`), authenticated as one agent (token from POST /api/auth/login, uncounted):
- reply: POST /api/conversations/{id}/messages, then the outbox worker (`app.outbox_worker`, fed by
  chalicelib.local.pump; the pump's own ReceiveMessage/DeleteMessageBatch are Lambda's) until the
  reply is `sent`; the Graph API is faked with `responses`;
- actions: PATCH status (pending), PATCH claim (`{"assignee": "me", "claim": true}`), POST read;
- pages (25 rows): GET /api/conversations sort=recent, sort=due, assignee=me, sort=due&sla=breached
  (each row's assignee named by `assignee_name`, from the container's cached agent directory);
- the workspace's idle poll: GET /api/changes with the token of its last answer (304), with and
  without viewers, and GET /api/counts (every view's count in one answer).

The conversations are written straight into moto's in-process backend (not through the HTTP path,
which would take hours for 100,000): items built by chalicelib.inbox.rules.new_conversation (the
same function the store uses), then given an assignee / a status / a past deadline and their index
keys again from rules.derived_keys, serialised by the Conversation model and put with moto's
`dynamodb_backends[account][region].put_item` (no request, nothing counted). The conversations the
measured calls act on are created through the real store (store.record_message) on top.

    .venv/bin/python bench/api_bench.py             # = ingest_bench.py --backend inprocess --only api

Method and figures: bench/README.md, section (f). Not a test: nothing here asserts timings.
"""
from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from typing import Any, Dict, List, Tuple

PAGE = "100000000000001"  # meta's demo page
DEFAULT_TEAM = "default"
SIZES = (1_000, 100_000)
QUICK_SIZES = (1_000, 10_000)  # --quick
LIVE = 3  # conversations per size created through the store, acted on by the measured calls
AGENT_ID = "a_bench_agent"
# Teammates holding some of the seeded conversations: every page names its rows' assignees
# (assignee_name) from the container's cached agent directory, never with a request per row.
TEAMMATES = tuple((f"a_bench_mate{i}", f"Teammate {i}") for i in range(5))
AGENT_EMAIL = "agent@bench.example"
AGENT_PASSWORD = "correct horse battery staple"
GRAPH = "https://graph.facebook.com/v21.0"
PAGES = (
    ("sort=recent", "/api/conversations?sort=recent"),
    ("sort=due", "/api/conversations?sort=due"),
    ("assignee=me", "/api/conversations?assignee=me"),
    ("sla=breached", "/api/conversations?sort=due&sla=breached"),
)
MIX = (  # share of the seeded conversations: what they look like
    ("open, unassigned, due later", 0.50),
    ("open, assigned to the bench agent, due later", 0.10),
    ("open, assigned to a teammate, due later", 0.10),
    ("open, breached (deadline passed, recorded)", 0.10),
    ("pending", 0.05),
    ("resolved", 0.15),
)


class Api:
    def __init__(self, bench: Any, application: Any) -> None:
        from chalice.test import Client

        self.bench = bench
        self.application = application
        self.client = Client(application.app, stage_name="local", project_dir=bench.PROJECT)
        self.client.__enter__()
        response = self.client.http.post("/api/auth/login", body=json.dumps(
            {"email": AGENT_EMAIL, "password": AGENT_PASSWORD}), headers={"Content-Type": "application/json"})
        if response.status_code != 200:
            raise RuntimeError(f"login answered {response.status_code}: {response.body[:200]!r}")
        self.token = json.loads(response.body)["token"]

    def call(self, method: str, path: str, body: Any = None) -> Tuple[Any, Any, Any]:
        headers = {"Authorization": "Bearer " + self.token}
        kwargs: Dict[str, Any] = {"headers": headers}
        if body is not None:
            headers["Content-Type"] = "application/json"
            kwargs["body"] = json.dumps(body)
        with self.bench.METER.scope() as units, self.bench.COUNTER.scope(this_thread_only=True) as requests:
            response = getattr(self.client.http, method)(path, **kwargs)
        return response, requests, units

    def drain_outbox(self) -> Tuple[Counter, Any, List[str]]:
        """The outbox worker until the queue is empty: its requests and units (not the pump's)."""
        from chalicelib.local.pump import pump_once

        calls: Counter = Counter()
        outcomes: List[str] = []
        total = {"wru": 0, "rru": 0.0}

        def handler(event: Dict[str, Any], context: Any) -> Any:
            with self.bench.METER.scope() as units, self.bench.COUNTER.scope(this_thread_only=True) as requests:
                result = self.application.outbox_worker(event, context)
            calls.update(requests.calls)
            total["wru"] += units.wru
            total["rru"] += units.rru
            outcomes.extend(result)
            return result

        for _ in range(20):
            if not pump_once(handler, queue="outbox"):
                break
        return calls, total, outcomes


def _seed(bench: Any, start: int, count: int, now: int, rng: random.Random) -> float:
    """Put `count` conversations straight into moto's backend (no request); returns seconds."""
    from moto.dynamodb.models import dynamodb_backends

    from chalicelib import config
    from chalicelib.inbox import rules, store
    from chalicelib.inbox.ids import contact_id_for, conversation_id_for
    from chalicelib.models import Conversation

    began = time.perf_counter()
    backend = dynamodb_backends[bench.ACCOUNT_ID][bench.REGION]
    table = config.table_name("conversations")
    cumulative = []
    acc = 0.0
    for label, share in MIX:
        acc += share
        cumulative.append((acc, label))
    with bench.COUNTER.paused(), bench.METER.paused():
        policy = store.policy({"channel": "messenger"})
        for i in range(start, start + count):
            user = f"61{i:013d}"
            at = now - rng.randint(60_000, 7 * 86_400_000)
            ids = {"conversation_id": conversation_id_for("messenger", PAGE, user), "channel": "messenger",
                   "account_id": PAGE, "thread_key": user, "thread_kind": "dm", "subject": None,
                   "contact_id": contact_id_for("messenger", PAGE, user), "contact_platform_id": user}
            facts = rules.MessageFacts(message_id=f"m_seed_{i}", direction="in", at=at,
                                       preview=f"Hi! My order #{4400 + i % 1000} arrived cold, can you help?")
            item = rules.new_conversation(ids, facts, rules.DEFAULT_TEAM, policy, at)
            # what the profile lookup leaves on a conversation (chalicelib.inbox.contacts): a page
            # of rows is sized as in production, names, handles and follower counts included
            item.update({"contact_name": f"Customer {i} Lastname", "contact_handle": f"customer.{i}",
                         "contact_followers": rng.randint(0, 50_000)})
            draw = rng.random()
            label = next(lbl for edge, lbl in cumulative if draw < edge or edge == cumulative[-1][0])
            due = now + rng.randint(60_000, 3_600_000)
            item.update({"reply_due_at": due, "warn_at": due - 600_000})
            if "teammate" in label:
                item["assignee"] = TEAMMATES[i % len(TEAMMATES)][0]
            elif "assigned" in label:
                item["assignee"] = AGENT_ID
            elif "breached" in label:
                due = now - rng.randint(1_000, 3_600_000)
                item.update({"reply_due_at": due, "warn_at": due - 600_000, "sla_state": "breached",
                             "breached_at": due + 1_000, "priority": "high"})
            elif label in ("pending", "resolved"):
                item.update({"status": label, "status_changed_at": at + 60_000})
                for name in ("reply_due_at", "warn_at", "awaiting_reply_since"):
                    item.pop(name, None)
            item.update(rules.derived_keys(item))
            _put(backend, table, Conversation(**item).serialize())
    return time.perf_counter() - began


def _put(backend: Any, table: str, attrs: Dict[str, Any]) -> None:
    """moto's put_item, minus its per-attribute size check (LimitedSizeDict re-sums the whole item
    for every attribute set: 7 ms per item, 12 minutes for 100,000). The first item of a table goes
    through moto's own put_item (its validation); the rest are stored the way it stores them."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    moto_table = backend.get_table(table)
    if not moto_table.items or moto_table.range_key_attr is not None:
        backend.put_item(table, attrs)
        return
    item = Item.__new__(Item)
    item.hash_key = DynamoType(attrs[moto_table.hash_key_attr])
    item.range_key = None
    item.attrs = LimitedSizeDict()
    dict.update(item.attrs, {name: DynamoType(value) for name, value in attrs.items()})
    moto_table.items[item.hash_key] = item


def cheap_transaction_backup() -> Any:
    """moto's TransactWriteItems deep-copies every table it touches as its rollback backup (~1 min
    per transaction at 100,000 conversations). For the bench: the backup copies the table shallowly
    and deep-copies only the items the transaction names, which is all a rollback restores. Returns
    an undo callable."""
    import copy as real_copy
    import types

    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    touched: Dict[str, set] = {}

    def deepcopy(obj: Any, memo: Any = None) -> Any:
        if isinstance(obj, Table):
            clone = real_copy.copy(obj)
            clone.items = real_copy.copy(obj.items)
            for key in touched.get(obj.name, ()):
                if key in obj.items:
                    clone.items[key] = real_copy.deepcopy(obj.items[key])
            return clone
        return real_copy.deepcopy(obj, memo)

    shim = types.SimpleNamespace(**{k: getattr(real_copy, k) for k in ("copy", "Error")})
    shim.deepcopy = deepcopy
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: List[Dict[str, Any]]) -> None:
        touched.clear()
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            key = op.get("Key") or op.get("Item") or {}
            if table is not None and table.hash_key_attr in key:
                touched.setdefault(table.name, set()).add(DynamoType(key[table.hash_key_attr]))
        return original(self, transact_items)

    saved_copy = models.copy
    models.copy = shim
    models.DynamoDBBackend.transact_write_items = transact_write_items

    def undo() -> None:
        models.copy = saved_copy
        models.DynamoDBBackend.transact_write_items = original

    return undo


def _live(bench: Any, tag: str, n: int) -> List[str]:
    """Conversations created through the real store (uncounted): a customer wrote a minute ago."""
    from chalicelib.channels.base import ContactRef, MessageEvent
    from chalicelib.inbox import store

    ids = []
    with bench.COUNTER.paused(), bench.METER.paused():
        for i in range(n):
            user = f"6199{tag}{i:04d}"
            event = MessageEvent(channel="messenger", account_id=PAGE, platform_message_id=f"m_live_{tag}_{i}",
                                 thread_key=user, contact=ContactRef(user), direction="in",
                                 sent_at_ms=int(time.time() * 1000) - 60_000, text="Where is my order?",
                                 raw={"mid": f"m_live_{tag}_{i}"})
            _, (cid, _) = store.record_message(event)
            ids.append(cid)
    return ids


def _stored(bench: Any) -> int:
    from moto.dynamodb.models import dynamodb_backends

    from chalicelib import config

    return len(dynamodb_backends[bench.ACCOUNT_ID][bench.REGION].get_table(config.table_name("conversations")).items)


def run(bench: Any, application: Any, results: Dict[str, Any]) -> int:
    import responses

    print("\n(f) Agent API: AWS requests and DynamoDB units per reply, action and inbox page "
          "(chalice.test.Client, moto in-process)")
    section: Dict[str, Any] = {"sizes": {}, "mix": dict(MIX)}
    results["api"] = section
    failures = 0
    with bench.COUNTER.paused(), bench.METER.paused():
        bench.fresh_tables()
        for channel, account_id, name in bench.get_demo_accounts("meta"):
            bench.accounts_api().register_account(channel, account_id, name)
            bench.accounts_api().find_account(channel, account_id)
        from chalicelib.api.auth import create_agent

        create_agent(AGENT_EMAIL, AGENT_PASSWORD, "Bench Agent", role="agent", agent_id=AGENT_ID)
        for mate_id, mate_name in TEAMMATES:
            create_agent(f"{mate_id}@bench.example", AGENT_PASSWORD, mate_name, role="agent", agent_id=mate_id)
        from chalicelib.routing import directory

        directory.set_routing(AGENT_ID, [DEFAULT_TEAM], 10)  # agents see their teams' conversations
        api = Api(bench, application)
    sizes = QUICK_SIZES if bench.QUICK else SIZES
    section["sizes_asked"] = list(sizes)
    rng = random.Random(bench.ARGS.seed)
    now = int(time.time() * 1000)
    seeded = 0
    mock = responses.RequestsMock(assert_all_requests_are_fired=False)
    sent_ids = iter(range(10 ** 6))
    mock.add_callback(responses.POST, f"{GRAPH}/{PAGE}/messages", callback=lambda request: (
        200, {"Content-Type": "application/json"},
        json.dumps({"recipient_id": json.loads(request.body)["recipient"]["id"],
                    "message_id": f"m_sent_{next(sent_ids)}"})))
    mock.start()
    undo = cheap_transaction_backup()
    try:
        for size in sizes:
            target = size - LIVE
            seconds = _seed(bench, seeded, target - seeded, now, rng) if target > seeded else 0.0
            seeded = max(seeded, target)
            live = _live(bench, f"{size}", LIVE)
            stored = _stored(bench)
            print(f"\n  {stored:,} conversations stored ({stored - LIVE * (sizes.index(size) + 1):,} seeded straight into "
                  f"moto's backend, {seconds:.1f} s for this step's; {LIVE} per size through the store)")
            entry, problems = _measure(api, bench, live, size)
            entry["stored"] = stored
            entry["seed_seconds"] = round(seconds, 1)
            section["sizes"][str(size)] = entry
            if problems:
                failures += 1
                print("    PROBLEM: " + "; ".join(problems))
    finally:
        undo()
        mock.stop()
        mock.reset()
    _compare(bench, section)
    return failures


def _measure(api: Api, bench: Any, live: List[str], size: int) -> Tuple[Dict[str, Any], List[str]]:
    rows, entry, problems = [], {}, []
    with bench.COUNTER.paused(), bench.METER.paused():  # warm container: agent and team access cached
        for _, path in PAGES[:1]:
            api.call("get", path)
        api.call("get", f"/api/conversations/{live[0]}")

    def record(label: str, samples: List[Tuple[Counter, float, float]], note: str = "") -> None:
        totals = [sum(c.values()) for c, _, _ in samples]
        typical = samples[len(samples) // 2]
        entry[label] = {"n": len(samples), "requests": totals, "wru": [w for _, w, _ in samples],
                        "rru": [r for _, _, r in samples], "by_operation": dict(typical[0]), "note": note}
        rows.append([label, len(samples), _spread(totals), _spread([w for _, w, _ in samples]),
                     _spread([r for _, _, r in samples]), bench.fmt_ops(typical[0]) + (f" [{note}]" if note else "")])

    # reply + outbox worker until sent
    samples = []
    for i, cid in enumerate(live):
        response, requests, units = api.call("post", f"/api/conversations/{cid}/messages",
                                             {"text": "It ships today, sorry for the wait!", "kind": "reply",
                                              "client_id": f"bench-{size}-{i}"})
        if response.status_code != 202:
            problems.append(f"reply answered {response.status_code}: {response.body[:200]!r}")
            continue
        calls, units2, outcomes = api.drain_outbox()
        if outcomes != ["sent"]:
            problems.append(f"outbox worker: {outcomes}")
        both = Counter(requests.calls)
        both.update(calls)
        samples.append((both, units.wru + units2["wru"], units.rru + units2["rru"]))
        entry.setdefault("reply_split", []).append({"api": sum(requests.calls.values()), "worker": sum(calls.values()),
                                                    "api_wru": units.wru, "worker_wru": units2["wru"]})
    if samples:
        split = entry["reply_split"][len(entry["reply_split"]) // 2]
        record("reply (POST + outbox worker until sent)", samples,
               f"API {split['api']} + worker {split['worker']} requests")

    # actions, one per live conversation each
    for label, method, path, body in (
            ("PATCH status pending", "patch", "/api/conversations/{cid}", {"status": "pending"}),
            ("PATCH claim (assignee me, claim)", "patch", "/api/conversations/{cid}", {"assignee": "me", "claim": True}),
            ("POST read", "post", "/api/conversations/{cid}/read", None)):
        samples = []
        for cid in live:
            response, requests, units = api.call(method, path.format(cid=cid), body)
            if response.status_code != 200:
                problems.append(f"{label} answered {response.status_code}: {response.body[:200]!r}")
                continue
            samples.append((Counter(requests.calls), units.wru, units.rru))
        if samples:
            record(label, samples)

    # inbox pages (3 samples each)
    for label, path in PAGES:
        samples, rows_seen = [], []
        for _ in range(3):
            response, requests, units = api.call("get", path)
            if response.status_code != 200:
                problems.append(f"page {label} answered {response.status_code}: {response.body[:200]!r}")
                continue
            items = json.loads(response.body)["items"]
            rows_seen.append(len(items))
            unnamed = [c["assignee"] for c in items if c["assignee"] and c.get("assignee_name") in (None, c["assignee"])]
            if unnamed:
                problems.append(f"page {label}: assignees without a name: {unnamed[:3]}")
            samples.append((Counter(requests.calls), units.wru, units.rru))
        if samples:
            record(f"page {label}", samples, f"{rows_seen[0]} rows")
            entry[f"page {label}"]["rows"] = rows_seen
            if rows_seen[0] < 25 and size >= 1_000:
                problems.append(f"page {label}: {rows_seen[0]} rows (expected a full page of 25)")
    # the workspace's idle poll (GET /api/changes with the token of the last answer: 304) and its counts
    with bench.COUNTER.paused(), bench.METER.paused():
        tokens = {v: json.loads(api.call("get", f"/api/changes?conversation={live[0]}{v}")[0].body)["token"]
                  for v in ("", "&viewers=1")}
    for label, path, expected in (
            ("poll /api/changes (nothing changed: 304)", f"/api/changes?conversation={live[0]}&since={tokens['']}", 304),
            ("poll with viewers (every 4th poll)",
             f"/api/changes?conversation={live[0]}&viewers=1&since={tokens['&viewers=1']}", 304),
            ("GET /api/counts (5 view counts)", "/api/counts", 200)):
        samples = []
        for _ in range(3):
            response, requests, units = api.call("get", path)
            if response.status_code != expected:
                problems.append(f"{label} answered {response.status_code}: {response.body[:200]!r}")
                continue
            samples.append((Counter(requests.calls), units.wru, units.rru))
        if samples:
            record(label, samples)
    print(f"  with {size:,} conversations (median over samples; range in brackets):")
    bench.print_table(["call", "n", "AWS requests", "WRU", "RRU", "by operation"], rows, indent="    ")
    return entry, problems


def _compare(bench: Any, section: Dict[str, Any]) -> None:
    sizes = [int(s) for s in section["sizes"]]
    if len(sizes) < 2:
        return
    small, large = (section["sizes"][str(s)] for s in sizes[:2])
    if not small or not large:
        return
    grew = []
    for label, data in small.items():
        if not isinstance(data, dict) or "requests" not in data or label not in large:
            continue
        a, b = min(data["requests"]), min(large[label]["requests"])
        if a != b:
            grew.append(f"{label}: {a:g} -> {b:g}")
    section["requests_changed_with_size"] = grew
    print(f"\n  requests per call (fewest of the samples), {sizes[0]:,} vs {sizes[1]:,} conversations: "
          + ("identical for every call" if not grew else "CHANGED: " + "; ".join(grew)))
    print(f"  (an extra GetItem[agents] / GetItem[agent-routing] / Scan[agents] now and then is a per-container cache "
          f"expiring: the token guard's agent ({_agent_cache_seconds()} s), team access (30 s) and the agents' names "
          f"({_names_cache_seconds()} s), whatever the size; moto's "
          "index Queries over 100,000 items take seconds, so more calls cross those boundaries)")


def _agent_cache_seconds() -> str:
    try:
        from chalicelib.api import auth

        return f"{auth.AGENT_CACHE_SECONDS:g}"
    except (ImportError, AttributeError):
        return "?"


def _names_cache_seconds() -> str:
    try:
        from chalicelib.api import names

        return f"{names.NAMES_CACHE_SECONDS:g}"
    except (ImportError, AttributeError):
        return "?"


def _spread(values: List[float]) -> str:
    if not values:
        return "-"
    low, high = min(values), max(values)
    med = statistics.median(values)
    text = f"{med:.2f}".rstrip("0").rstrip(".")
    return text if low == high else f"{text} ({low:g}-{high:g})"


if __name__ == "__main__":
    import runpy

    here = os.path.dirname(os.path.abspath(__file__))
    sys.argv = [os.path.join(here, "ingest_bench.py"), "--backend", "inprocess", "--only", "api", *sys.argv[1:]]
    runpy.run_path(sys.argv[0], run_name="__main__")
