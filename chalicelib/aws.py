"""Shortcuts to the runtime's lazily created AWS clients (never at import time: cold start)."""
from __future__ import annotations

from typing import Any

from chalicelib.runtime import runtime


def client(service: str) -> Any:
    return runtime.client(service)


def queue_url(short_name: str) -> str:
    return runtime.queue_url(short_name)


def reset() -> None:
    """Forget clients and caches (tests switch between mocked backends)."""
    runtime.reset()
