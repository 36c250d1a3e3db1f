"""X-Ray subsegments around AWS and platform calls, a no-op when X-Ray is not available.

X-Ray is on only inside Lambda (LAMBDA_TASK_ROOT set) unless AWS_XRAY_SDK_ENABLED=false, and only
for an invocation that is being traced (Lambda's `_X_AMZN_TRACE_ID` says `Sampled=1`): API Gateway
samples 1 % of requests (infra: TraceSampleRate), so the other 99 % never import the SDK, and a
cold start pays for it only when its first request is sampled. Local runs and tests never do.

What gets traced: every botocore call (boto3, pynamodb and powertools' SSM reads all go through
botocore: DynamoDB, SQS, Step Functions, SSM) from the first `activate()`/`subsegment()` of a
container on, and platform HTTP (requests) once requests is loaded. Patching only what is already
imported keeps the webhook's cold start from importing requests and pynamodb just to patch them
(`patch(["requests"])` imports requests); the outbox worker, which sends over HTTP, asks for it
with `activate(http=True)`.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterator, Optional, Set

_recorder: Any = None
_checked = False
_patched: Set[str] = set()
#: Libraries X-Ray patches once they are loaded (botocore first: every AWS call goes through it).
TRACED_MODULES = ("botocore", "requests")


def _enabled() -> bool:
    if os.environ.get("AWS_XRAY_SDK_ENABLED", "").lower() == "false":
        return False
    return bool(os.environ.get("LAMBDA_TASK_ROOT"))


def _sampled() -> bool:
    """This invocation is traced (Lambda sets the header per invocation)."""
    return "Sampled=1" in os.environ.get("_X_AMZN_TRACE_ID", "")


def recorder() -> Optional[Any]:
    """The configured xray_recorder, or None when this invocation is not traced. Patches any
    traced library loaded since the last call (a set lookup when there is nothing new)."""
    global _recorder, _checked
    if not _sampled():
        return None
    if not _checked:
        _checked = True
        if _enabled():
            from aws_xray_sdk.core import xray_recorder

            xray_recorder.configure(context_missing="IGNORE_ERROR")
            _recorder = xray_recorder
    if _recorder is not None:
        _patch_loaded()
    return _recorder


def _patch_loaded() -> None:
    new = [m for m in TRACED_MODULES if m not in _patched and m in sys.modules]
    if new:
        from aws_xray_sdk.core import patch

        patch(new)
        _patched.update(new)


def activate(http: bool = False) -> None:
    """At the start of a handler: trace its AWS calls (and platform HTTP with `http=True`, which
    loads requests first so that it is patched before the first send)."""
    if not _enabled():
        return
    if http:
        import requests  # noqa: F401  (the outbox worker sends with it anyway)
    recorder()


def patched() -> Set[str]:
    """What X-Ray has patched in this process (tests, benches)."""
    return set(_patched)


@contextlib.contextmanager
def subsegment(name: str, **annotations: str) -> Iterator[None]:
    rec = recorder()
    if rec is None:
        yield
        return
    with rec.in_subsegment(name) as seg:
        for key, value in annotations.items():
            if seg is not None:
                seg.put_annotation(key, value)
        yield
