"""Structured JSON logs (one line per record) with a correlation id per event.

Uses aws-lambda-powertools' Logger. Rule: never pass a secret, token, signature or a full
webhook body to the logger; log ids, counts and reasons.

The powertools logger is the standard-library logger named "socialinbox", the same name as the
Chalice app: app.py creates Chalice with `configure_logs=False`, and `_keep_only_json_output`
removes any other handler found on that logger, so every record is written once, as JSON.
"""
from __future__ import annotations

import logging
import os
import re
import uuid
from typing import List, Optional

from aws_lambda_powertools import Logger

SERVICE = "socialinbox"
logger = Logger(service=SERVICE, level=os.environ.get("LOG_LEVEL", "INFO"))


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


