"""`make run`: the whole product on one machine, no AWS account needed.

Starts moto in server mode (127.0.0.1:MOTO_PORT), creates the tables and queues from
infra/resources.json, seeds demo agents and accounts, serves the Chalice app (API, webhooks,
inbox) on 127.0.0.1:PORT, the live updates' WebSocket API on 127.0.0.1:PUSH_PORT (default
PORT+1; chalicelib/local/websocket.py) and runs every event source the app registers (queues,
schedules, streams: chalicelib/local/runners.py) as AWS would. Ctrl-C stops it.
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Any, Dict, List, Optional

#: Pending connections the HTTP server queues (http.server's default is 5).
HTTP_LISTEN_BACKLOG = 1024
#: How long Ctrl-C waits, in all, for the runners' batches and schedules in flight: what is
#: acknowledged is on disk already, and an unfinished batch is delivered again after the restart.
PUMP_STOP_SECONDS = 1.5
#: glibc malloc arenas for the whole process (its default is 8 per core): every server, pump and
#: Step Functions thread otherwise grows an arena of its own and keeps what it freed.
MALLOC_ARENAS = 2
#: How often freed heap memory is handed back to the system (malloc_trim).
MALLOC_TRIM_SECONDS = 30.0


def _configure_environment(moto_port: int) -> None:
    os.environ.setdefault("SOCIALINBOX_STAGE", "local")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{moto_port}"
    os.environ["MOTO_PORT"] = str(moto_port)  # moto's Step Functions call the services back here
    os.environ.setdefault("AWS_XRAY_SDK_ENABLED", "false")
    os.environ.pop("AWS_PROFILE", None)
    # moto's Step Functions Wait states compare against naive local time: run the stack in UTC.
    os.environ["TZ"] = "UTC"
    if hasattr(time, "tzset"):
        time.tzset()


def port_problem(host: str, port: int, what: str, variable: str) -> Optional[str]:
    """Why `port` cannot be served on `host`, or None. Probed the way the servers bind
    (SO_REUSEADDR), so only a port someone actually holds is reported."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        reason = error.strerror or str(error)
        return (f"make run: cannot use {host}:{port} for the {what} ({reason}). Stop what holds it, "
                f"or pick another port: make run {variable}=<port>")
    return None


@functools.lru_cache(maxsize=1)
def _glibc() -> Any:
    """The C library when it is glibc (Linux), else None: the allocator settings below are
    glibc's, and elsewhere the stack simply runs without them."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


def bound_allocator() -> bool:
    """Limit malloc's arenas before the threads start: a running stack holds about twice what
    its data takes once restored into a fresh process (3,000-delivery soak: 678 MB vs 341 MB),
    and dozens of server, pump and interpreter threads each growing an arena of their own keep
    freed memory apart. With this and the periodic trim the 20,000-delivery soak ended at
    2.14 GB (the run before them: 2.0 GB at 16,000); the growth per envelope stayed flat
    (~70-110 KB) either way. True when applied."""
    libc = _glibc()
    if libc is None:
        return False
    m_arena_max = -8  # glibc's mallopt parameter number
    return bool(libc.mallopt(m_arena_max, MALLOC_ARENAS))


def trim_allocator() -> None:
    """Hand freed heap pages back to the system (ctypes releases the GIL during the call)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def _fail(message: str) -> int:
    print(message, file=sys.stderr, flush=True)
    return 2


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", "5000")))
    parser.add_argument("--push-port", type=int, default=int(os.environ.get("PUSH_PORT", "0")),
                        help="the live updates' WebSocket API (default: PORT+1)")
    parser.add_argument("--data-dir", default=None,
                        help="where the local data lives (default: SOCIALINBOX_DATA_DIR or .localdata/)")
    parser.add_argument("--demo", action="store_true", default=os.environ.get("DEMO") == "1",
                        help="send demo traffic for every channel once the server is up")
    parser.add_argument("--history", action="store_true", default=os.environ.get("SOCIALINBOX_DEMO_HISTORY") == "1",
                        help="on a fresh stack, play a month of demo history through the pipeline (make history)")
    args = parser.parse_args(argv)
    # Both ports before anything starts: a taken port used to print "Address already in use"
    # and then hang (moto's start() waits forever for a server that could not bind).
    args.push_port = args.push_port or args.port + 1
    if len({args.port, args.moto_port, args.push_port}) < 3:
        return _fail(f"make run: PORT ({args.port}), MOTO_PORT ({args.moto_port}) and PUSH_PORT ({args.push_port}) "
                     "must all differ")
    for port, what, variable in ((args.port, "HTTP server", "PORT"), (args.moto_port, "AWS emulator (moto)",
                                                                       "MOTO_PORT"),
                                 (args.push_port, "live updates' WebSocket API", "PUSH_PORT")):
        problem = port_problem(args.host, port, what, variable)
        if problem:
            return _fail(problem)
    _configure_environment(args.moto_port)
    bound_allocator()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines

    try:
        emulator = _start_emulator(args)
    except OSError as error:  # lost a race for the port since the probe, or the data dir is unusable
        return _fail(f"make run: the AWS emulator did not start on {args.host}:{args.moto_port} "
                     f"({error.strerror or error}); try make run MOTO_PORT=<port>")
    try:
        return _serve(args, emulator)
    finally:
        _stop_emulator(emulator)


def _start_emulator(args: argparse.Namespace) -> Any:
    """moto behind the durable journal in the data directory (chalicelib/local/persist.py), with
    the local adjustments that keep it flat as data grows (chalicelib/local/emulator.py)."""
    from chalicelib.local.emulator import EmulatorServer, apply_local_adjustments
    from chalicelib.local.persist import Journal, default_data_dir

    apply_local_adjustments()
    args.data_dir = os.path.abspath(args.data_dir or default_data_dir(_project_dir()))
    journal = Journal(args.data_dir)
    emulator = EmulatorServer(args.host, args.moto_port, journal)
    try:
        emulator.start()
    except BaseException:
        journal.close()
        raise
    return emulator


def _stop_emulator(emulator: Any) -> None:
    emulator.stop()
    if hasattr(emulator.app, "stats_summary"):  # where the emulator's time went (bench/local_soak.py reads it)
        print("emulator requests: " + json.dumps(emulator.app.stats_summary()), flush=True)
    if emulator.journal is not None:
        emulator.journal.close()


def _restore_data(args: argparse.Namespace, emulator: Any) -> Dict[str, int]:
    """What the data directory held, back in the emulator (before seeding and the pumps)."""
    from chalicelib.local.persist import restore

    began = time.monotonic()
    with emulator.app.dynamodb_lock:
        restored = restore(emulator.journal)
    restored["seconds"] = round(time.monotonic() - began, 2)
    return restored


def _backfill_restored(restored: Dict[str, int]) -> None:
    """Items kept from an older release get the attributes new indexes are keyed on, as `make
    deploy` does for a stage (infra/backfills.py): the tables themselves are always created from
    the current template, only the items are restored."""
    if not restored.get("items"):
        return
    from chalicelib import aws, config
    from infra import backfills

    lines: List[str] = []
    done = backfills.run_all(aws.client("dynamodb"), config.resource_prefix().removeprefix("socialinbox-"),
                             backfills.BACKFILLS, report=lines.append)
    for name, counts in done.items():
        if counts.updated:
            print("  " + counts.line(name), flush=True)


def _project_dir() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _print_data_dir(args: argparse.Namespace, restored: Dict[str, int]) -> None:
    print(f"  data:      {args.data_dir} ({restored['items']} items, {restored['messages']} queued messages "
          f"restored in {restored['seconds']} s)", flush=True)
    print("             kept across restarts; `make reset` wipes it (or delete the directory while stopped)",
          flush=True)


def _widen_backlog(server: Any) -> None:
    """http.server listens with a backlog of 5: ~20 concurrent deliveries got connection resets."""
    server.server.socket.listen(HTTP_LISTEN_BACKLOG)


def _exit_now(code: int) -> None:
    """Everything acknowledged is already on disk: skip the interpreter's teardown, which waits
    for moto's Step Functions threads (asleep in Wait states) and garbage-collects every object
    the emulator holds (seconds with a month of data)."""
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def _serve(args: argparse.Namespace, emulator: Any) -> int:
    """Everything after the emulator is up; the caller stops the emulator however this ends."""
    from chalice.config import Config

    from chalicelib.config import LOCAL_SECRET_DEFAULTS
    from chalicelib.local import gateway, runners, seed, stack

    from moto.core.config import default_user_config

    # The real ASL of the SLA flow runs in moto's interpreter, calling our real handlers via SQS.
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    stack.create_all()
    restored = _restore_data(args, emulator)
    _backfill_restored(restored)
    seeded = seed.seed()

    import app as application

    project_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(project_dir, ".chalice", "config.json"), encoding="utf-8") as handle:
        chalice_config = Config(chalice_stage="local", config_from_disk=json.load(handle))
    try:
        found = runners.discover(application.app)
    except (ValueError, RuntimeError) as error:  # a source without a local runner, a bad schedule
        return _fail(f"make run: {error}")
    try:
        server = gateway.create_server(application.app, chalice_config, args.host, args.port,
                                       application.SECURITY_HEADERS)
    except OSError as error:  # lost a race for the port since the probe
        return _fail(f"make run: cannot serve on {args.host}:{args.port} ({error.strerror or error}); "
                     f"try make run PORT=<port>")
    _widen_backlog(server)
    from chalicelib.local import websocket

    try:
        sockets = websocket.start(application.app, args.host, args.push_port)  # sets PUSH_ENDPOINT
    except OSError as error:
        return _fail(f"make run: cannot serve the WebSocket API on {args.host}:{args.push_port} "
                     f"({error.strerror or error}); try make run PUSH_PORT=<port>")
    sandbox = _start_sandbox(f"http://{args.host}:{args.port}")
    try:
        runners.start_all(found)
    except Exception as error:  # noqa: BLE001 - e.g. a stream consumer whose table has no stream
        runners.stop_all(found, 0.0)
        return _fail(f"make run: {type(error).__name__}: {error}")
    trimmer = _Every(MALLOC_TRIM_SECONDS, trim_allocator, "malloc-trim")
    trimmer.start()

    base = f"http://{args.host}:{args.port}"
    print(f"socialinbox is running (stage local, AWS emulated by moto on {args.host}:{args.moto_port})", flush=True)
    print(f"  inbox:     {base}/", flush=True)
    print(f"  admin:     {base}/admin  (accounts, agents, teams, SLA policies, quarantine, dead letters)", flush=True)
    print(f"  API:       {base}/api/conversations", flush=True)
    print(f"  webhooks:  {base}/webhooks/<platform>  ({', '.join(_adapters())})", flush=True)
    print(f"  live:      ws://{args.host}:{args.push_port}/{websocket.STAGE}  (the pages' live updates)", flush=True)
    if "LOCAL_ADMIN_PASSWORD" in os.environ:
        password_hint = "the LOCAL_ADMIN_PASSWORD you set"  # a chosen password is never echoed
    else:
        password_hint = f"{LOCAL_SECRET_DEFAULTS['LOCAL_ADMIN_PASSWORD']} (dev default; set LOCAL_ADMIN_PASSWORD)"
    print(f"  logins:    {', '.join(seeded['agents'])}", flush=True)
    print(f"  password:  {password_hint}", flush=True)
    print(f"  accounts:  {len(seeded['accounts'])} demo channel accounts", flush=True)
    print(f"  runners:   {'; '.join(runners.describe(r) for r in found)}", flush=True)
    if sandbox is not None:
        print("  sends:     to the loopback platform sandbox (echoes and receipts come back signed)", flush=True)
    else:
        print("  sends:     no sandbox (chalicelib.local.sandbox); replies go to the real base URLs", flush=True)
    _print_data_dir(args, restored)
    print("  Ctrl-C stops everything.", flush=True)

    stop_by = float("inf")

    def stop(*_: object) -> None:
        nonlocal stop_by
        stop_by = time.monotonic() + PUMP_STOP_SECONDS
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.demo:
        threading.Thread(target=_demo, args=(base,), daemon=True).start()
    if args.history:
        _history()
    try:
        server.serve_forever()
    finally:
        trimmer.stop()
        sockets.shutdown()
        if sandbox is not None and hasattr(sandbox, "shutdown"):
            sandbox.shutdown()
        # A batch cut short comes back after the restart (idempotent handlers).
        busy = runners.stop_all(found, min(stop_by, time.monotonic() + PUMP_STOP_SECONDS) - time.monotonic())
        if busy:
            print(f"still busy when stopped (their work comes back after a restart): {', '.join(busy)}", flush=True)
        print("socialinbox stopped.", flush=True)
    return 0


def _start_sandbox(webhook_base_url: str) -> Any:
    """The loopback sandbox of the platforms' send APIs, when it exists: the outbox worker's
    base URLs point at it, and it calls our webhooks back with echoes and receipts."""
    try:
        from chalicelib.local import sandbox
    except ImportError:
        return None
    server, base_urls_env = sandbox.start(webhook_base_url)
    os.environ.update(base_urls_env)  # `make run` sets PROFILE_LOOKUPS=on: the sandbox serves the profiles too
    return server


class _Every(threading.Thread):
    """A periodic chore of the local process itself (the app's schedules are runners.Schedule)."""

    def __init__(self, seconds: float, work: Any, name: str, first_after: Optional[float] = None) -> None:
        super().__init__(name=name, daemon=True)
        self.seconds, self.work = seconds, work
        self.first_after = seconds if first_after is None else first_after
        self._stopping = threading.Event()

    def run(self) -> None:
        from chalicelib.logs import logger

        wait = self.first_after
        while not self._stopping.wait(wait):
            wait = self.seconds
            try:
                self.work()
            except Exception as error:  # noqa: BLE001 - keep the schedule going
                logger.warning("local schedule failed", extra={"schedule": self.name, "error": str(error)[:300]})

    def stop(self) -> None:
        self._stopping.set()


def _adapters() -> List[str]:
    from chalicelib.channels import adapter_names

    return adapter_names()


def _history() -> Optional[Any]:
    """`make history` in a process of its own (its simulated clock must not be this server's),
    once per stack: the Reports and Staffing screens fill in while the newcomer looks around."""
    import subprocess

    from chalicelib.local.history import filled

    if filled():
        return None
    print("  history:   playing a month of demo conversations through the pipeline (a few minutes; "
          "charts fill in as it goes)", flush=True)
    return subprocess.Popen([sys.executable, "-m", "chalicelib.local.history"], env=dict(os.environ),
                            stdout=subprocess.DEVNULL)


def _demo(base: str) -> None:
    from chalicelib.local.demo import send_all

    results = send_all(base)
    print(f"demo traffic sent: {len(results)} deliveries, statuses {sorted(set(s for _, s in results))}", flush=True)


if __name__ == "__main__":
    _exit_now(main())
