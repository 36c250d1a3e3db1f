"""Structured JSON logs (one line per record) with a correlation id per event.

One JSON object per record on stdout, with aws-lambda-powertools' Logger's fields (level,
location, message, timestamp, service, the bound keys, the record's `extra`, exception,
exception_name, stack_trace, xray_trace_id), written by the standard library alone: importing
powertools' Logger cost the webhooks' cold start ~16 ms (issue 21), for four features we use. Rule:
never pass a secret, token, signature or a full webhook body to the logger; log ids, counts and
reasons.

The logger is the standard-library logger named "socialinbox", the same name as the Chalice app:
app.py creates Chalice with `configure_logs=False`, `_keep_only_json_output` removes any other
handler found on that logger, and in Lambda records do not propagate to the runtime's root handler,
so every record is written once, as JSON.
"""
from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import time
import traceback
import uuid
from typing import Any, Dict, List, Optional

SERVICE = "socialinbox"
#: LogRecord's own attributes: everything else on a record came in through `extra`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_BOUND: contextvars.ContextVar[Dict[str, Any]] = contextvars.ContextVar("socialinbox_log_keys", default={})


class JsonFormatter(logging.Formatter):
    """A record as one compact JSON line, in powertools' Logger's field order and formats."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:  # noqa: A003 - logging's name
        message: Any = record.msg if isinstance(record.msg, dict) else record.getMessage()
        line: Dict[str, Any] = {"level": record.levelname, "location": f"{record.funcName}:{record.lineno}",
                                "message": message, "timestamp": self.formatTime(record), "service": self.service}
        line.update(_BOUND.get())
        line.update({k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS and not k.startswith("_")})
        if isinstance(record.exc_info, tuple) and record.exc_info[0] is not None:
            line.setdefault("exception", self.formatException(record.exc_info))
            line.setdefault("exception_name", record.exc_info[0].__name__)
            line.setdefault("stack_trace", _stack_trace(record.exc_info))
        trace = os.environ.get("_X_AMZN_TRACE_ID")
        if trace:
            line["xray_trace_id"] = trace.split(";")[0].replace("Root=", "")
        return json.dumps({k: v for k, v in line.items() if v is not None}, separators=(",", ":"), default=str)

    def formatTime(self, record: logging.LogRecord, datefmt: Optional[str] = None) -> str:  # noqa: N802
        local = time.localtime(record.created)
        return time.strftime("%Y-%m-%d %H:%M:%S", local) + f",{int(record.msecs):03d}" + time.strftime("%z", local)


def _stack_trace(exc_info: Any) -> Dict[str, Any]:
    kind, value, tb = exc_info
    return {"type": kind.__name__, "value": str(value), "module": kind.__module__,
            "frames": [{"file": f.filename, "line": f.lineno, "function": f.name, "statement": f.line}
                       for f in traceback.extract_tb(tb)]}


class StructuredLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The app's logger: the standard logger "socialinbox" with one JSON handler on stdout, and
    keys bound per thread of work (a context variable) stamped on every line."""

    def __init__(self, service: str, level: str) -> None:
        base = logging.getLogger(service)
        base.setLevel(level.upper())
        self.registered_formatter = JsonFormatter(service)
        self.registered_handler = logging.StreamHandler(sys.stdout)
        self.registered_handler.setFormatter(self.registered_formatter)
        base.addHandler(self.registered_handler)
        # In Lambda the runtime puts its own handler on the root logger: a record passed on to it
        # would be written a second time, as text (powertools' Logger stopped it the same way).
        # Elsewhere records still reach the root (pytest's log capture, `make run`).
        base.propagate = not os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        super().__init__(base, {})

    def process(self, msg: Any, kwargs: Any) -> Any:
        return msg, kwargs  # bound keys are added by the formatter (they are per thread of work)

    def addHandler(self, handler: logging.Handler) -> None:  # noqa: N802 - logging's name
        self.logger.addHandler(handler)

    def removeHandler(self, handler: logging.Handler) -> None:  # noqa: N802
        self.logger.removeHandler(handler)

    def thread_safe_append_keys(self, **keys: Any) -> None:
        _BOUND.set(dict(_BOUND.get(), **keys))

    def thread_safe_get_current_keys(self) -> Dict[str, Any]:
        return dict(_BOUND.get())


logger = StructuredLogger(SERVICE, os.environ.get("LOG_LEVEL", "INFO"))


def _keep_only_json_output() -> None:
    """Drop handlers someone else put on our logger (Chalice's text handler when the app is
    created with configure_logs=True): each would print every record a second time."""
    stdlib_logger = logging.getLogger(SERVICE)
    ours = logger.registered_handler
    for handler in list(stdlib_logger.handlers):
        if handler is not ours:
            stdlib_logger.removeHandler(handler)


_keep_only_json_output()


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def bind_correlation_id(correlation_id: Optional[str]) -> str:
    """Attach an id to every following log line of this thread's work and return it.

    Thread-local (a context variable), so the local server and the event pump, which share one
    process, never stamp each other's lines with the wrong id."""
    cid = correlation_id or new_correlation_id()
    logger.thread_safe_append_keys(correlation_id=cid)
    return cid


def current_correlation_id() -> Optional[str]:
    """The id this thread's log lines carry now (to hand on to the next step: the SLA flow's
    timer messages, the outbox), or None."""
    value = logger.thread_safe_get_current_keys().get("correlation_id")
    return str(value) if value else None


_TABLES = re.compile(r"on table \(([^)]*)\)")
MAX_DESCRIPTION_CHARS = 1000


def describe_error(error: BaseException) -> str:
    """One line saying what failed and why, for the DLQ's `error` attribute and for logs.

    pynamodb's errors say only "Failed to write transaction items"; the reason is in the cause
    (DynamoDB's code and message) and, for a cancelled transaction, in one cancellation reason per
    item. Name the failing item (position and table) and DynamoDB's reason, e.g. a
    ValidationException for an item over 400 KB. Never includes item contents."""
    text = f"{type(error).__name__}: {error}"
    cause = getattr(error, "cause", None) or error.__cause__
    response = getattr(cause, "response", None)
    if isinstance(response, dict):
        code = (response.get("Error") or {}).get("Code")
        message = (response.get("Error") or {}).get("Message")
        tables = _tables_of(str(cause))
        reasons = list(getattr(error, "cancellation_reasons", None) or getattr(cause, "cancellation_reasons", None) or [])
        failing = [(i, r) for i, r in enumerate(reasons) if r is not None and getattr(r, "code", None) not in (None, "None")]
        if failing:
            parts = []
            for index, reason in failing:
                where = f"item {index + 1} of {len(reasons)}"
                if index < len(tables):
                    where += f" (table {tables[index]})"
                parts.append(f"{where}: {reason.code}" + (f": {reason.message}" if reason.message else ""))
            text += f" [{code or 'cancelled'}: " + "; ".join(parts) + "]"
        elif code:
            text += f" [{code}: {message or 'no message'}"
            if tables:
                text += f"; items in {', '.join(tables)}" if len(tables) > 1 else f"; table {tables[0]}"
            text += "]"
    return text[:MAX_DESCRIPTION_CHARS]


def _tables_of(cause_text: str) -> List[str]:
    """Table names pynamodb's VerboseClientError lists, in the order of the request's items."""
    found = _TABLES.search(cause_text)
    return [t for t in found.group(1).split(",") if t] if found else []


