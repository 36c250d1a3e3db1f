"""X-Ray subsegments around AWS and platform calls, a no-op when X-Ray is not available.

X-Ray is on only inside Lambda (LAMBDA_TASK_ROOT set) unless AWS_XRAY_SDK_ENABLED=false; the
SDK is imported lazily, so local runs and tests never pay its ~0.5 s import or poll a daemon.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator, Optional

_recorder: Any = None
_checked = False


def _enabled() -> bool:
    if os.environ.get("AWS_XRAY_SDK_ENABLED", "").lower() == "false":
        return False
    return bool(os.environ.get("LAMBDA_TASK_ROOT"))


def recorder() -> Optional[Any]:
    """The configured xray_recorder, or None when tracing is off."""
    global _recorder, _checked
    if _checked:
        return _recorder
    _checked = True
    if not _enabled():
        return None
    from aws_xray_sdk.core import patch, xray_recorder

    xray_recorder.configure(context_missing="IGNORE_ERROR")
    patch(["boto3", "botocore", "requests", "pynamodb"])
    _recorder = xray_recorder
    return _recorder


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
