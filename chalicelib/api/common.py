"""Small helpers shared by the agent-tool blueprints (bulk, canned replies, search, collision,
media, OpenAPI): one error shape for every 4xx (`{"Code", "Message"}`, as Chalice's own errors),
bounded JSON bodies, and the conversation access check."""
from __future__ import annotations

import json
import re
from typing import Any, Dict, Optional

from chalice import BadRequestError, Response

MAX_BODY_BYTES = 64 * 1024
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
SURROGATE = re.compile(r"[\ud800-\udfff]")


def error(status: int, code: str, message: str, **extra: Any) -> Response:
    body: Dict[str, Any] = {"Code": code, "Message": message}
    body.update(extra)
    return Response(body, status_code=status, headers={"Content-Type": "application/json"})


def json_body(request: Any, limit: int = MAX_BODY_BYTES) -> Dict[str, Any]:
    raw = request.raw_body or b""
    if len(raw) > limit:
        raise BadRequestError(f"body is larger than {limit} bytes")
    try:
        body = json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequestError("body is not valid JSON")
    if not isinstance(body, dict):
        raise BadRequestError("body must be a JSON object")
    return body


def clean_text(value: Any, name: str, low: int, high: int, multiline: bool = False) -> str:
    """A string of `low`..`high` characters, valid Unicode, no control characters (newlines and
    tabs only when `multiline`); 400 otherwise."""
    if not isinstance(value, str):
        raise BadRequestError(f"{name} must be a string")
    if not low <= len(value) <= high or (low and not value.strip()):
        raise BadRequestError(f"{name} must be {low} to {high} characters")
    if SURROGATE.search(value):
        raise BadRequestError(f"{name} is not valid Unicode (lone surrogate)")
    checked = value.replace("\n", "").replace("\t", "").replace("\r", "") if multiline else value
    if CONTROL.search(checked):
        raise BadRequestError(f"{name} contains control characters")
    return value


def plausible_id(value: Any, high: int = 200) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= high and not CONTROL.search(value) \
        and not SURROGATE.search(value)


def can_see(identity: Any, state: Optional[Dict[str, Any]]) -> bool:
    """Whether this agent may see the conversation (an unseen one answers 404, never data).
    Team access rules live with the conversation routes; when they provide a check
    (`chalicelib.api.access.can_see`), it is used here too."""
    if state is None:
        return False
    try:
        from chalicelib.api import access  # type: ignore[attr-defined]
    except ImportError:
        return True
    check = getattr(access, "can_see", None)
    return bool(check(identity, state)) if callable(check) else True
