"""Lazily created boto3 clients, shared per container (never at import time: cold start)."""
from __future__ import annotations

import functools
import os
from typing import Any

from chalicelib import config


@functools.lru_cache(maxsize=None)
def client(service: str) -> Any:
    import boto3

    return boto3.session.Session().client(service, region_name=config.aws_region())


@functools.lru_cache(maxsize=None)
def queue_url(short_name: str) -> str:
    """URL of one of our queues: from `<NAME>_QUEUE_URL` if ops set it, else one GetQueueUrl
    per container."""
    override = os.environ.get(short_name.upper().replace("-", "_") + "_QUEUE_URL")
    if override:
        return override
    return client("sqs").get_queue_url(QueueName=config.queue_name(short_name))["QueueUrl"]


def reset() -> None:
    """Forget clients (tests switch between mocked backends)."""
    client.cache_clear()
    queue_url.cache_clear()
