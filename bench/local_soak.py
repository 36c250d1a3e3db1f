"""Local soak of `make run` (issue 7): N correctly signed deliveries across every channel to the
local server started in a subprocess (free ports on 127.0.0.1, a temporary data directory), a
kill -9 and restart midway, then a Ctrl-C. Reports envelopes per second per 1,000-envelope window
(first vs last), resident memory, messages stored vs acknowledged, API page latency while a
backlog is processed, restart and stop times, and a start at full size after the Ctrl-C.

    .venv/bin/python bench/local_soak.py                    # 20,000 deliveries (make soak)
    .venv/bin/python bench/local_soak.py --messages 3000    # smaller

127.0.0.1 only; every loop is bounded by count and by --time-limit; it stops by itself and
removes its data directory (--keep-data keeps it).
"""
from __future__ import annotations

import argparse
import http.client as http_client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.update({"SOCIALINBOX_STAGE": "local", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local",
                   "AWS_SECRET_ACCESS_KEY": "local", "AWS_XRAY_SDK_ENABLED": "false", "AWS_CONFIG_FILE": "/dev/null"})
for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "RESOURCE_PREFIX"):
    os.environ.pop(_name, None)

#: Distinct customers the demo senders are spread over (a team's month: many conversations).
CUSTOMERS = 400


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- traffic ----------------------------------------------------------------------------------

def _templates() -> List[Tuple[str, Any]]:
    from chalicelib.channels import adapter_names, get_adapter

    return [(name, get_adapter(name)) for name in adapter_names()]


def _sender_ids(adapters: List[Tuple[str, Any]], now_ms: int) -> Dict[Any, int]:
    """Customer ids in the demo deliveries (not the accounts): spread over CUSTOMERS per round."""
    accounts = {account for _, adapter in adapters for _, account, _ in adapter.demo_accounts}
    found: Dict[Any, int] = {}

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif key in ("id", "from", "sender_id", "wa_id", "id_str") and str(value) not in accounts:
            text = str(value)
            if text.lstrip("-").isdigit() and 9 <= len(text.lstrip("-")) <= 19 and not text.startswith(("17", "18")):
                found[value] = 1

    for _, adapter in adapters:
        for payload in adapter.demo_deliveries(now_ms):
            for part in (payload.get("users", {}).values() if isinstance(payload, dict) else []):
                walk(part)
            walk(payload)
    return found


def _respread(value: Any, ids: Dict[Any, int], customer: int) -> Any:
    if isinstance(value, dict):
        return {(_respread(k, ids, customer) if k in ids else k): _respread(v, ids, customer) for k, v in value.items()}
    if isinstance(value, list):
        return [_respread(v, ids, customer) for v in value]
    if not isinstance(value, bool) and value in ids:
        shifted = int(value) + 1000 * customer if int(value) > 0 else int(value) - 1000 * customer
        return shifted if isinstance(value, int) else str(shifted)
    return value


class Traffic:
    """Delivery i = template (i % T) of round (i // T): fresh platform ids every round (each
    round's clock is one second later), customers spread over CUSTOMERS."""

    def __init__(self, start_ms: int) -> None:
        from chalicelib.runtime import runtime

        self.adapters = _templates()
        self.start_ms = start_ms
        self.secrets = runtime.secret
        self.ids = _sender_ids(self.adapters, start_ms)
        self.shape = [(name, index) for name, adapter in self.adapters
                      for index in range(len(adapter.demo_deliveries(start_ms)))]
        # Envelopes per delivery, as the webhook hands them off (one unless the delivery is too
        # big for one invocation). Until 2026-12-02 this counted adapter.split() parts, while the
        # queue held one message per delivery: "processed" (acknowledged - queue depth) was
        # overstated by the parts never queued separately. Since the webhooks invoke the
        # processor asynchronously (issue 21) what waits is in `make run`'s holding queue of
        # those invocations (one message per invocation), which queue_depth adds.
        import json as _json

        from chalicelib.ingest.webhook import _events

        self.envelopes = [sum(len(_json.loads(event)["Records"]) for event in (_events(
            name, dict(self.adapters)[name].split, dict(self.adapters)[name].demo_deliveries(start_ms)[i], start_ms,
            "soak", {}) or [b'{"Records":[null]}'])) for name, i in self.shape]

    def __len__(self) -> int:
        return len(self.shape)

    def delivery(self, i: int) -> Tuple[str, bytes, Dict[str, str]]:
        rnd, slot = divmod(i, len(self.shape))
        name, index = self.shape[slot]
        adapter = dict(self.adapters)[name]
        payload = adapter.demo_deliveries(self.start_ms + rnd * 1000)[index]
        payload = _respread(payload, self.ids, rnd % CUSTOMERS)
        raw = json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        headers.update(adapter.signed_headers(raw, self.secrets))
        return name, raw, headers


# --- the server under test ----------------------------------------------------------------------

class Server:
    def __init__(self, data_dir: str, log_path: str) -> None:
        self.port, self.moto_port = free_port(), free_port()
        while self.moto_port == self.port:
            self.moto_port = free_port()
        self.data_dir, self.log_path = data_dir, log_path
        self.proc: Optional[subprocess.Popen] = None
        self.base = f"http://127.0.0.1:{self.port}"
        self.up = threading.Event()
        self._clients: Dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._queue_urls: Optional[List[str]] = None
        self._cpu_seen: Dict[int, float] = {}  # server pid -> CPU seconds last sampled

    def start(self, timeout: float = 120.0) -> float:
        env = dict(os.environ, PORT=str(self.port), MOTO_PORT=str(self.moto_port),
                   SOCIALINBOX_DATA_DIR=self.data_dir, PYTHONUNBUFFERED="1")
        began = time.monotonic()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "chalicelib.local.server", "--host", "127.0.0.1",
                                      "--port", str(self.port), "--moto-port", str(self.moto_port)],
                                     cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        while time.monotonic() - began < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited with {self.proc.returncode}; see {self.log_path}")
            try:
                urllib.request.urlopen(self.base + "/api/me", timeout=2)
            except urllib.error.HTTPError:
                self.up.set()
                return time.monotonic() - began
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"server not ready after {timeout} s; see {self.log_path}")

    def kill(self) -> None:
        self.up.clear()
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)

    def stop(self, timeout: float = 30.0) -> Optional[float]:
        """Ctrl-C (SIGINT); seconds until the process is gone, None if it had to be killed."""
        self.up.clear()
        if self.proc is None or self.proc.poll() is not None:
            return None
        began = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
            return time.monotonic() - began
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
            return None

    def cpu_s(self) -> Optional[float]:
        """CPU seconds (user + system) of every server process of this run so far: the restart's
        new process adds to what the killed one had used (as last sampled). Unlike envelopes per
        second, CPU per envelope does not depend on what else the machine is running."""
        try:
            with open(f"/proc/{self.proc.pid}/stat", encoding="ascii") as handle:  # type: ignore[union-attr]
                fields = handle.read().rsplit(")", 1)[1].split()
            used = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, AttributeError, IndexError, ValueError):
            return None
        self._cpu_seen[self.proc.pid] = used  # type: ignore[union-attr]
        return sum(self._cpu_seen.values())

    def rss_mb(self) -> Optional[float]:
        try:
            with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as handle:  # type: ignore[union-attr]
                for line in handle:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except (OSError, AttributeError):
            return None
        return None

    def aws(self, service: str) -> Any:
        """One client per service for the whole run (the ports survive the restart): creating a
        client per 1 s sample cost the bench ~0.1 s of CPU each time on a 2-core machine."""
        import boto3
        from botocore.config import Config

        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(
                    service, endpoint_url=f"http://127.0.0.1:{self.moto_port}",
                    config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=60))
            return self._clients[service]

    def queue_depth(self) -> Optional[int]:
        """What is accepted and not yet processed: the webhooks' asynchronous invocations waiting
        in `make run`'s holding queue, plus the ingest queue (replays)."""
        from chalicelib import config
        from chalicelib.local.async_invoke import holding_queue

        try:
            sqs = self.aws("sqs")
            if self._queue_urls is None:
                names = (holding_queue(config.INGEST_PROCESSOR_FUNCTION), config.INGEST_QUEUE)
                self._queue_urls = [sqs.get_queue_url(QueueName=f"socialinbox-local-{name}")["QueueUrl"]
                                    for name in names]
            total = 0
            for url in self._queue_urls:
                attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
                total += int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
            return total
        except Exception:  # noqa: BLE001 - down (restarting)
            return None

    def stored_messages(self) -> int:
        dynamodb = self.aws("dynamodb")
        total, kwargs = 0, {"TableName": "socialinbox-local-messages", "Select": "COUNT"}
        for _ in range(100_000):
            page = dynamodb.scan(**kwargs)
            total += page["Count"]
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return total


def http(method: str, url: str, body: Optional[bytes] = None, headers: Optional[Dict[str, str]] = None,
         timeout: float = 30.0) -> Tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def login(server: Server) -> str:
    from chalicelib.config import LOCAL_SECRET_DEFAULTS

    body = json.dumps({"email": "admin@example.com", "password": LOCAL_SECRET_DEFAULTS["LOCAL_ADMIN_PASSWORD"]})
    status, answer = http("POST", server.base + "/api/auth/login", body.encode(), {"Content-Type": "application/json"})
    if status != 200:
        raise SystemExit(f"login failed: {status} {answer[:200]!r}")
    return json.loads(answer)["token"]


# --- the run ---------------------------------------------------------------------------------------

#: One sample per second: (seconds since start, envelopes processed, queue depth, server RSS MB,
#: server CPU seconds so far, the machine's 1-minute load average).
Sample = Tuple[float, int, int, Optional[float], Optional[float], float]


class Soak:
    def __init__(self, args: argparse.Namespace, server: Server, traffic: Traffic) -> None:
        self.args, self.server, self.traffic = args, server, traffic
        self.deadline = time.monotonic() + args.time_limit
        self.lock = threading.Lock()
        self.acked: List[int] = []
        self.acked_envelopes = 0
        self.failures: Dict[str, int] = {}
        self.resets = 0
        self.samples: List[Sample] = []
        self.latencies: List[Tuple[float, float, int]] = []  # t, seconds, depth
        self.processed_before_restart = 0
        self.stopping = threading.Event()
        self.token = ""
        self.t0 = time.monotonic()

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline

    def deliver(self, i: int) -> bool:
        name, raw, headers = self.traffic.delivery(i)
        for attempt in range(60):
            if self.out_of_time():
                return False
            self.server.up.wait(60)
            try:
                status, _ = http("POST", f"{self.server.base}/webhooks/{name}", raw, headers)
            except (ConnectionResetError, ConnectionRefusedError, urllib.error.URLError, OSError,
                    http_client.HTTPException) as error:  # IncompleteRead: killed mid-answer (kill -9)
                kind = type(getattr(error, "reason", error)).__name__
                with self.lock:
                    self.failures[kind] = self.failures.get(kind, 0) + 1
                    if "Reset" in kind and self.server.up.is_set():
                        self.resets += 1
                time.sleep(0.2)
                continue
            if 200 <= status < 300:
                with self.lock:
                    self.acked.append(i)
                    self.acked_envelopes += self.traffic.envelopes[i % len(self.traffic)]
                return True
            with self.lock:
                self.failures[str(status)] = self.failures.get(str(status), 0) + 1
            time.sleep(0.2)
        return False

    def sampler(self) -> None:
        while not self.stopping.is_set() and not self.out_of_time():
            depth = self.server.queue_depth() if self.server.up.is_set() else None
            if depth is not None:
                with self.lock:
                    processed = self.acked_envelopes - depth
                self.samples.append((time.monotonic() - self.t0, processed, depth, self.server.rss_mb(),
                                     self.server.cpu_s(), os.getloadavg()[0]))
            self.stopping.wait(1.0)

    def prober(self) -> None:
        """An agent's inbox page every --probe-interval s (1 s) while there is a backlog. (Until
        2026-12-02 every 0.25 s: the probe's own Query then held the emulator's DynamoDB lock for
        a third of the time the processor needed it.)"""
        while not self.stopping.is_set() and not self.out_of_time():
            depth = self.samples[-1][2] if self.samples else 0
            if self.server.up.is_set() and depth > 0 and self.token:
                began = time.monotonic()
                try:
                    status, _ = http("GET", self.server.base + "/api/conversations?limit=25",
                                     headers={"Authorization": f"Bearer {self.token}"})
                    if status == 200:
                        self.latencies.append((began - self.t0, time.monotonic() - began, depth))
                except (OSError, http_client.HTTPException):
                    pass
            self.stopping.wait(self.args.probe_interval)


def _windows(samples: List[Sample], size: int = 1000, restart_at: Optional[int] = None) -> List[Dict[str, Any]]:
    """Per `size`-envelope window, interpolated from the samples: envelopes per second, server
    CPU ms per envelope, RSS at the window's end and its growth per envelope (not for the window
    holding the restart: the new process starts small), the machine's mean load average."""
    def at(target: int) -> Optional[Tuple[float, Optional[float], Optional[float]]]:
        """(time, rss, cpu) when `target` envelopes had been processed."""
        for (t0, p0, _, _, c0, _), (t1, p1, _, r1, c1, _) in zip(samples, samples[1:]):
            if p0 < target <= p1 and p1 > p0:
                share = (target - p0) / (p1 - p0)
                cpu = c0 + (c1 - c0) * share if c0 is not None and c1 is not None else None
                return t0 + (t1 - t0) * share, r1, cpu
        return None

    windows = []
    top = max((s[1] for s in samples), default=0)
    for k in range(top // size):
        start = at(k * size + 1) if k else (samples[0][0], samples[0][3], samples[0][4])
        end = at((k + 1) * size)
        if start is None or end is None or end[0] <= start[0]:
            continue
        restarted = restart_at is not None and k * size < restart_at <= (k + 1) * size
        loads = [s[5] for s in samples if start[0] <= s[0] <= end[0]]
        windows.append({
            "window": k + 1, "from": k * size, "to": (k + 1) * size,
            "envelopes_per_s": round(size / (end[0] - start[0]), 1),
            "cpu_ms_per_envelope": (round(1000 * (end[2] - start[2]) / size, 1)
                                    if end[2] is not None and start[2] is not None else None),
            "rss_mb": round(end[1], 1) if end[1] else None,
            "rss_growth_kb_per_envelope": (round((end[1] - start[1]) * 1024 / size, 2)
                                           if end[1] and start[1] and not restarted else None),
            "load_avg": round(sum(loads) / len(loads), 1) if loads else None,
            "restart": restarted})
    return windows


def _emulator_stats(log_path: str) -> Dict[str, Any]:
    """What the server printed at its last stop: requests, time answering and time waiting for
    the DynamoDB lock, per operation (chalicelib/local/persist.py JournalingApp.stats)."""
    found: Dict[str, Any] = {}
    try:
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("emulator requests: "):
                    found = json.loads(line[len("emulator requests: "):])
    except (OSError, ValueError):
        pass
    return found


def run(args: argparse.Namespace) -> Dict[str, Any]:
    data_dir = tempfile.mkdtemp(prefix="socialinbox-soak-")
    log_path = os.path.join(data_dir, "server.log")
    server = Server(os.path.join(data_dir, "data"), log_path)
    traffic = Traffic(int(time.time() * 1000) - 3 * 3600 * 1000)
    rounds = -(-args.messages // len(traffic))
    total = rounds * len(traffic)
    report: Dict[str, Any] = {"deliveries": total, "templates": len(traffic), "rounds": rounds,
                              "data_dir": data_dir, "log": log_path}
    print(f"soak: {total} deliveries ({rounds} rounds of {len(traffic)}), data in {data_dir}", flush=True)
    report["first_start_s"] = round(server.start(), 2)
    soak = Soak(args, server, traffic)
    soak.token = login(server)
    threads = [threading.Thread(target=soak.sampler, daemon=True), threading.Thread(target=soak.prober, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        # 1. A burst: `--burst` concurrent deliveries at once (platforms deliver concurrently).
        burst = min(args.burst, total)
        barrier = threading.Barrier(burst)

        def at_once(i: int) -> bool:
            barrier.wait(30)
            return soak.deliver(i)

        with ThreadPoolExecutor(burst) as pool:
            burst_ok = sum(pool.map(at_once, range(burst)))
        report["burst"] = {"concurrent": burst, "acknowledged": burst_ok, "connection_resets": soak.resets,
                           "failures": dict(soak.failures)}
        print(f"soak: burst of {burst}: {burst_ok} acknowledged, {soak.resets} resets", flush=True)

        # 2. The rest, `--concurrency` at a time, with a kill -9 and restart midway.
        half = total // 2
        restart: Dict[str, Any] = {}

        def killer() -> None:
            while len(soak.acked) < half and not soak.out_of_time() and not soak.stopping.is_set():
                time.sleep(0.05)
            if soak.out_of_time() or soak.stopping.is_set() or args.no_restart:
                return
            depth = soak.samples[-1][2] if soak.samples else None
            with soak.lock:
                acked_then = len(soak.acked)
            processed_then = soak.samples[-1][1] if soak.samples else 0
            server.kill()
            restart.update({"acknowledged_at_kill": acked_then, "backlog_at_kill": depth})
            soak.processed_before_restart = processed_then
            restart["restart_s"] = round(server.start(), 2)
            # The agent's token from before the kill, at once (access tokens live 15 min; the
            # drain takes longer, so asking after it measured the token's age, not the restart).
            restart["token_from_before_restart"], _ = http(
                "GET", server.base + "/api/me", headers={"Authorization": f"Bearer {soak.token}"})
            print(f"soak: kill -9 at {acked_then} acknowledged (backlog ~{depth}); back in {restart['restart_s']} s",
                  flush=True)

        kill_thread = threading.Thread(target=killer, daemon=True)
        kill_thread.start()
        with ThreadPoolExecutor(args.concurrency) as pool:
            for done, ok in enumerate(pool.map(soak.deliver, range(burst, total)), start=burst + 1):
                if done % 2000 == 0:
                    depth = soak.samples[-1][2] if soak.samples else "?"
                    print(f"soak: {done}/{total} sent, backlog {depth}, rss {server.rss_mb():.0f} MB, "
                          f"{time.monotonic() - soak.t0:.0f} s", flush=True)
        kill_thread.join(5)
        report["restart"] = restart
        sent_done = time.monotonic() - soak.t0
        # 3. Drain.
        while not soak.out_of_time():
            depth = server.queue_depth()
            if depth == 0:
                break
            time.sleep(1.0)
        drained = time.monotonic() - soak.t0
        time.sleep(1.5)
        soak.stopping.set()
        report["sending_s"] = round(sent_done, 1)
        report["drained_s"] = round(drained, 1)
        report["timed_out"] = soak.out_of_time()
        # 4. Stored vs acknowledged.
        acked_rounds = {}
        for i in soak.acked:
            acked_rounds[i // len(traffic)] = acked_rounds.get(i // len(traffic), 0) + 1
        report["acknowledged_deliveries"] = len(set(soak.acked))
        report["acknowledged_envelopes"] = soak.acked_envelopes
        report["stored_messages"] = server.stored_messages()
        report["expected_messages"] = args.per_round * sum(1 for c in acked_rounds.values() if c == len(traffic))
        report["failures"] = dict(soak.failures)
        report["rss_mb_end"] = server.rss_mb()
    finally:
        soak.stopping.set()
        report["stop_s"] = server.stop()
    report["emulator_requests"] = _emulator_stats(log_path)  # printed at that stop
    if not args.no_final_restart:
        # 5. Start again at full size after the Ctrl-C: how long until it answers, and the same
        # messages stored (nothing acknowledged was lost by the stop).
        try:
            report["restart_full_s"] = round(server.start(), 2)
            report["stored_after_final_restart"] = server.stored_messages()
            # The same data in a fresh process: what the data itself takes, against rss_mb_end.
            report["rss_mb_full_restart"] = server.rss_mb()
        except (SystemExit, Exception) as error:  # noqa: BLE001 - reported, the run still ends cleanly
            report["final_restart_error"] = str(error)[:300]
        finally:
            report["stop_full_s"] = server.stop()
    windows = _windows(soak.samples, restart_at=soak.processed_before_restart or None)
    report["windows"] = windows
    report["samples"] = [[round(x, 2) if isinstance(x, float) else x for x in sample]
                         for sample in soak.samples[::5]]  # every 5th: t, processed, depth, rss, cpu, load
    lat = sorted(s for _, s, _ in soak.latencies)
    if lat:
        report["api_page_latency"] = {"count": len(lat), "p50_ms": round(1000 * statistics.median(lat), 1),
                                      "p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1),
                                      "max_ms": round(1000 * lat[-1], 1),
                                      "max_backlog": max(d for _, _, d in soak.latencies)}
    if not args.keep_data:
        shutil.rmtree(data_dir, ignore_errors=True)
    return report


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000, help="deliveries to send (rounded up to whole rounds)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--burst", type=int, default=100, help="concurrent deliveries sent at once first")
    parser.add_argument("--time-limit", type=float, default=3600.0, help="seconds; the run stops by itself")
    parser.add_argument("--per-round", type=int, default=18,
                        help="messages one round of demo deliveries stores (bench/ingest_bench.py --only wru lists "
                             "them per adapter: LinkedIn 2, Meta 9, Telegram 3, X 4)")
    parser.add_argument("--probe-interval", type=float, default=1.0,
                        help="seconds between inbox-page requests while there is a backlog")
    parser.add_argument("--no-restart", action="store_true")
    parser.add_argument("--no-final-restart", action="store_true",
                        help="skip the start at full size after the Ctrl-C (restart time, stored count again)")
    parser.add_argument("--keep-data", action="store_true")
    parser.add_argument("--json", default="", help="write the report here too")
    args = parser.parse_args(argv)
    report = run(args)
    windows = report.pop("windows")
    samples = report.pop("samples", [])
    print(json.dumps(report, indent=2))
    if windows:
        print("window  envelopes      env/s  CPU ms/env   rss MB  rss KB/env  load")
        for w in windows:
            print(f"{w['window']:6d}  {w['from']:>6}-{w['to']:<6} {w['envelopes_per_s']:7.1f}  {w['cpu_ms_per_envelope']}"
                  f"  {w['rss_mb'] or 0:9.0f}  {w['rss_growth_kb_per_envelope']}  {w['load_avg']}"
                  f"{'  (restart)' if w['restart'] else ''}")
        first, last = windows[0], windows[-1]
        print(f"first window {first['envelopes_per_s']} env/s, {first['cpu_ms_per_envelope']} CPU ms/env; "
              f"last {last['envelopes_per_s']} env/s, {last['cpu_ms_per_envelope']} CPU ms/env")
    report["windows"], report["samples"] = windows, samples
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
