"""Structured JSON logs (one line per record) with a correlation id per event.

Uses aws-lambda-powertools' Logger. Rule: never pass a secret, token, signature or a full
webhook body to the logger; log ids, counts and reasons.
"""
from __future__ import annotations

import os
import uuid
from typing import Optional

from aws_lambda_powertools import Logger

logger = Logger(service="socialinbox", level=os.environ.get("LOG_LEVEL", "INFO"))


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def bind_correlation_id(correlation_id: Optional[str]) -> str:
    """Attach an id to every following log line of this thread's work and return it.

    Thread-local (a context variable), so the local server and the event pump, which share one
    process, never stamp each other's lines with the wrong id."""
    cid = correlation_id or new_correlation_id()
    logger.thread_safe_append_keys(correlation_id=cid)
    return cid
