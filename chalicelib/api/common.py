"""Small helpers shared by the agent-tool blueprints (bulk, canned replies, search, collision,
media, OpenAPI): one error shape for every 4xx (`{"Code", "Message"}`, as Chalice's own errors),
bounded JSON bodies, the hostile-input checks of chalicelib.inputs as 400s (text, times, ids),
and the conversation access check."""
from __future__ import annotations

import json
from typing import Any, Dict, Optional

from chalice import BadRequestError, Response


MAX_BODY_BYTES = 64 * 1024


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
    from chalicelib import inputs

    try:
        return inputs.text(value, name, low, high, multiline)
    except inputs.BadInput as problem:
        raise BadRequestError(str(problem))


def optional_text(value: Any, name: str, low: int, high: int) -> Optional[str]:
    """None, or single-line text as `clean_text`."""
    return None if value is None else clean_text(value, name, low, high)


def parse_time(value: Any, name: str = "time") -> int:
    """An ISO 8601 time with a zone between 2000 and 2100, as epoch ms; 400 otherwise."""
    from chalicelib import inputs

    try:
        return inputs.parse_time(value, name)
    except inputs.BadInput as problem:
        raise BadRequestError(str(problem))


def plausible_id(value: Any, high: int = 200) -> bool:
    from chalicelib.inputs import is_clean

    return isinstance(value, str) and 1 <= len(value) <= high and is_clean(value)


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
