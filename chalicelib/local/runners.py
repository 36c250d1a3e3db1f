"""`make run` runs what AWS runs: every event source registered on the Chalice app, discovered
from the app object, each with its deployed semantics. Adding a schedule or a consumer to app.py
needs no change here.

- `@app.on_sqs_message`: a queue pump (chalicelib.local.pump) with the decorator's batch size
  and batching window, and partial batch responses exactly for the functions infra/deploy.py
  enables them on (PARTIAL_BATCH_FUNCTIONS: ReportBatchItemFailures on the mapping and the
  function's variable, both together, as deployed).
- `@app.schedule`: `Rate` at its rate, `Cron` at its times in UTC (chalicelib.local.cron), with
  EventBridge's scheduled-event payload. A rate schedule also runs soon after the start
  (`FIRST_RUN_SECONDS`): in AWS it never paused while the local stack was stopped.
  LOCAL_SCHEDULE_SPEEDUP=N runs every rate N times as often (a demo, a test; cron is unchanged).
- `@app.on_dynamodb_record`: the table's stream, in order per shard (chalicelib.local.streams).
- the functions the app invokes asynchronously (infra/deploy.py ASYNC_INVOCATIONS: the webhooks
  hand each delivery to the ingest processor so): one runner of Lambda's asynchronous
  invocations (chalicelib.local.async_invoke: retries, then the on-failure destination; the
  accepted events kept in the emulator's holding queues, so a kill -9 loses none), which
  `start_all` makes the runtime's invoker.

WebSocket handlers are served by `make run`'s WebSocket API (chalicelib.local.websocket), not
a runner. Anything else (S3, SNS, Kinesis, CloudWatch event patterns) has no local runner:
`discover` raises `NoLocalRunner` naming it, so it can never silently not run locally.
"""
from __future__ import annotations

import datetime as dt
import os
import threading
import uuid
from typing import Any, Callable, Dict, List, Optional, Union

from chalicelib import config
from chalicelib.local import cron
from chalicelib.local.async_invoke import LocalInvocations
from chalicelib.local.pump import LambdaContext, Pump
from chalicelib.local.streams import StreamReader
from chalicelib.logs import describe_error, logger

#: A rate schedule's first run after the start comes after at most this many seconds.
FIRST_RUN_SECONDS = 5.0
#: Environment variable: run rate schedules this many times as often (default 1).
SPEEDUP_ENV = "LOCAL_SCHEDULE_SPEEDUP"


class NoLocalRunner(ValueError):
    """An event source of the app that the local stack cannot run."""


def partial_batch_functions() -> Dict[str, str]:
    """The functions the deploy enables partial batch responses on, and the variable it sets."""
    from infra.deploy import PARTIAL_BATCH_ENV, PARTIAL_BATCH_FUNCTIONS

    return {name: PARTIAL_BATCH_ENV for name in PARTIAL_BATCH_FUNCTIONS}


def function_environment(name: str) -> Dict[str, str]:
    """What the deploy sets on function `name` beyond the stage's variables (the same for every
    function of a stage, already in this process's environment)."""
    from infra.deploy import PARTIAL_BATCH_ENV

    enabled = name in partial_batch_functions()
    return {PARTIAL_BATCH_ENV: "true" if enabled else ""}


def _speedup() -> float:
    raw = os.environ.get(SPEEDUP_ENV, "").strip()
    try:
        value = float(raw) if raw else 1.0
    except ValueError as error:
        raise ValueError(f"{SPEEDUP_ENV} must be a number >= 1, not {raw!r}") from error
    if not value >= 1.0:
        raise ValueError(f"{SPEEDUP_ENV} must be a number >= 1, not {raw!r}")
    return value


def scheduled_event(rule: str, at: dt.datetime) -> Dict[str, Any]:
    """EventBridge's payload for a scheduled rule firing at `at` (UTC)."""
    region = config.aws_region()
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region, "resources": [f"arn:aws:events:{region}:123456789012:rule/{rule}"], "detail": {}}


class Schedule(threading.Thread):
    """One `@app.schedule` of `make run`: a rate every `seconds`, or a Cron at its UTC times."""

    def __init__(self, handler: Callable[[Dict[str, Any], Any], Any], function_name: str,
                 timing: Union[float, cron.Cron], expression: str) -> None:
        super().__init__(name=f"{function_name}-schedule", daemon=True)
        self.handler, self.function_name, self.timing, self.expression = handler, function_name, timing, expression
        self.runs = 0
        self._stopping = threading.Event()

    def _wait_for_next(self, first: bool) -> Optional[dt.datetime]:
        """Sleep until the next run (None: stopped, or a cron that never fires again)."""
        if isinstance(self.timing, cron.Cron):
            while not self._stopping.is_set():
                now = dt.datetime.now(dt.timezone.utc)
                due = self.timing.next_after(now)
                if due is None:
                    return None
                if not self._stopping.wait(min(60.0, (due - now).total_seconds())):
                    if dt.datetime.now(dt.timezone.utc) >= due:
                        return due
            return None
        seconds = min(self.timing, FIRST_RUN_SECONDS) if first else self.timing
        return None if self._stopping.wait(seconds) else dt.datetime.now(dt.timezone.utc)

    def run(self) -> None:
        first = True
        while True:
            due = self._wait_for_next(first)
            first = False
            if due is None:
                return
            self.run_once(due)

    def run_once(self, at: Optional[dt.datetime] = None) -> None:
        event = scheduled_event(self.function_name, at or dt.datetime.now(dt.timezone.utc))
        try:
            with config.function_environment(function_environment(self.function_name)):
                self.handler(event, LambdaContext(self.function_name))
        except Exception as error:  # noqa: BLE001 - keep the schedule going, as EventBridge does
            logger.warning("local schedule failed", extra={"function": self.function_name,
                                                            "error": describe_error(error)[:300]})
        self.runs += 1

    def stop(self) -> None:
        self._stopping.set()


Runner = Union[Pump, Schedule, StreamReader, LocalInvocations]


def _handler(app: Any, name: str) -> Callable[[Dict[str, Any], Any], Any]:
    handler = app.handler_map.get(name)
    if handler is None:
        raise NoLocalRunner(f"{name}: registered as an event source but not in the app's handler map")
    return handler


def _sqs_runner(app: Any, source: Any) -> Pump:
    queue = source.queue or (source.queue_arn or "").rsplit(":", 1)[-1]
    return Pump(_handler(app, source.name), queue_name=queue, function_name=source.name,
                batch_size=source.batch_size or 10,
                window_seconds=float(source.maximum_batching_window_in_seconds or 0),
                reports_failures=source.name in partial_batch_functions(),
                environment=function_environment(source.name))


def _schedule_runner(app: Any, source: Any) -> Schedule:
    expression = source.schedule_expression
    text = expression if isinstance(expression, str) else expression.to_string()
    timing = cron.parse(text)
    if not isinstance(timing, cron.Cron):
        timing = timing / _speedup()
    return Schedule(_handler(app, source.name), source.name, timing, text)


def _stream_runner(app: Any, source: Any) -> StreamReader:
    return StreamReader(_handler(app, source.name), source.stream_arn, source.name,
                        batch_size=source.batch_size or 100, starting_position=source.starting_position,
                        window_seconds=float(source.maximum_batching_window_in_seconds or 0),
                        context_factory=LambdaContext)


def discover(app: Any) -> List[Runner]:
    """A runner (not started) for every event source registered on the Chalice `app`; raises
    NoLocalRunner naming every source that has none."""
    from chalice.app import DynamoDBEventConfig, ScheduledEventConfig, SQSEventConfig

    builders: Dict[type, Callable[[Any, Any], Runner]] = {
        SQSEventConfig: _sqs_runner, ScheduledEventConfig: _schedule_runner, DynamoDBEventConfig: _stream_runner}
    runners: List[Runner] = []
    missing = []
    for source in app.event_sources:
        build = builders.get(type(source))
        if build is None:
            missing.append(f"{source.name} ({type(source).__name__})")
            continue
        runners.append(build(app, source))
    if missing:
        raise NoLocalRunner("no local runner for: " + ", ".join(missing))
    invoked = async_functions(app)
    if invoked:
        runners.append(LocalInvocations({name: _handler(app, name) for name in invoked}, durable=True))
    return runners


def async_functions(app: Any) -> List[str]:
    """The app's functions the deploy configures for asynchronous invocation (ASYNC_INVOCATIONS)."""
    from infra.deploy import ASYNC_INVOCATIONS

    return [name for name in ASYNC_INVOCATIONS if name in app.handler_map]


def describe(runner: Runner) -> str:
    """One short phrase per runner for the start-up banner."""
    if isinstance(runner, Pump):
        parts = [f"sqs {runner.queue_name}", f"batch {runner.batch_size}"]
        if runner.window_seconds:
            parts.append(f"window {runner.window_seconds:g} s")
        if runner.reports_failures:
            parts.append("partial batches")
        return f"{runner.function_name} ({', '.join(parts)})"
    if isinstance(runner, LocalInvocations):
        return f"asynchronous invocations of {', '.join(runner.functions)} (retries, then the on-failure queue)"
    if isinstance(runner, Schedule):
        if isinstance(runner.timing, cron.Cron):
            return f"{runner.function_name} ({runner.expression} UTC)"
        return f"{runner.function_name} ({runner.expression}, every {runner.timing:g} s)"
    return f"{runner.function_name} (stream of {runner.table}, batch {runner.batch_size})"


def start_all(runners: List[Runner]) -> None:
    """Start every runner; a stream whose table has none fails here (StreamNotFound), before
    anything started, and so does any other failure to start. The runner of asynchronous
    invocations becomes the runtime's invoker (the webhooks hand deliveries to it)."""
    from chalicelib.runtime import runtime

    for runner in runners:
        if isinstance(runner, StreamReader):
            runner.prepare()
    for runner in runners:
        if isinstance(runner, LocalInvocations):
            runtime.use_invoker(runner)
        runner.start()


def stop_all(runners: List[Runner], seconds: float) -> List[str]:
    """Ask every runner to stop, then wait for them together at most `seconds`; returns the
    names of those still busy (their work comes back after a restart: idempotent handlers)."""
    import time

    for runner in runners:
        runner.stop()
    deadline = time.monotonic() + max(0.0, seconds)
    for runner in runners:
        if runner.is_alive():
            runner.join(timeout=max(0.0, deadline - time.monotonic()))
    return [runner.name for runner in runners if runner.is_alive()]
