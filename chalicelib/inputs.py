"""The classes of hostile input, checked in one place so every route refuses them the same way
(the API turns a `BadInput` into a 400; chalicelib.api.common wraps these for routes):

- text: lone surrogates (Python holds them, but DynamoDB, JSON encoders and UTF-8 do not: a 500
  on write or on render) and control characters (NUL, ESC, ... stored and echoed to screens);
- times: ISO 8601 with a zone, inside a sane range (a year-9999 time at -14:00 is year 10000 in
  UTC, which Python cannot render); rendering a stored time never raises, whatever is stored;
- nested JSON sent on to a platform (WhatsApp template components): bounded depth and size,
  every string clean.
No Chalice import: domain rules (tags, SLA policies) use it too."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Optional

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab, LF and CR pass (multi-line text)
LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # single-line text: every C0 control character
SURROGATE = re.compile(r"[\ud800-\udfff]")

#: Times an API accepts lie in [EARLIEST_MS, LATEST_MS): 2000-01-01 .. 2100-01-01 UTC.
EARLIEST_MS = 946_684_800_000
LATEST_MS = 4_102_444_800_000
MAX_TIME_CHARS = 40
#: The one shape a time may have: date, time to the minute or better, and a zone (fromisoformat
#: alone lets odd strings through, a NUL among them).
ISO_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
                      r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?")


class BadInput(ValueError):
    """Input of a hostile class; the message names the field and never echoes the value."""


def encodable(value: str) -> bool:
    """Whether `value` has a UTF-8 form (no lone surrogate), what SQS, DynamoDB and JSON need."""
    if value.isascii():  # O(1) in CPython; a surrogate is never ASCII
        return True
    try:
        value.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def is_clean(value: Any, multiline: bool = False) -> bool:
    """A str that is valid Unicode without control characters (tab, CR and LF only when
    `multiline`)."""
    if not isinstance(value, str) or SURROGATE.search(value):
        return False
    return not (CONTROL if multiline else LINE_CONTROL).search(value)


def text(value: Any, name: str, low: int, high: int, multiline: bool = False) -> str:
    """A string of `low`..`high` characters (not blank when `low`), clean as `is_clean`."""
    if not isinstance(value, str):
        raise BadInput(f"{name} must be a string")
    if not low <= len(value) <= high or (low and not value.strip()):
        raise BadInput(f"{name} must be {low} to {high} characters")
    if SURROGATE.search(value):
        raise BadInput(f"{name} is not valid Unicode (lone surrogate)")
    if not is_clean(value, multiline):
        raise BadInput(f"{name} contains control characters")
    return value


def parse_time(value: Any, name: str = "time") -> int:
    """An ISO 8601 time with a zone, as epoch ms inside [EARLIEST_MS, LATEST_MS)."""
    if not isinstance(value, str) or len(value) > MAX_TIME_CHARS or not ISO_TIME.fullmatch(value):
        raise BadInput(f"{name} must be an ISO 8601 string with a time zone (e.g. 2026-12-01T10:00:00Z)")
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1] in "Zz" else value)
        ms = int(parsed.timestamp() * 1000) if parsed.tzinfo is not None else None
    except (ValueError, OverflowError, OSError):
        raise BadInput(f"{name} must be an ISO 8601 string with a time zone")
    if ms is None:
        raise BadInput(f"{name} needs a time zone (e.g. 2026-12-01T10:00:00Z)")
    if not EARLIEST_MS <= ms < LATEST_MS:
        raise BadInput(f"{name} must lie between 2000 and 2100")
    return ms


def render_time(ms: Any) -> Optional[str]:
    """A stored epoch-ms time as ISO 8601 UTC, or None when it cannot be one (missing, not a
    number, or outside what a datetime holds): a bad stored value never turns a view into a 500."""
    if ms is None or isinstance(ms, bool):
        return None
    try:
        moment = datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def bounded_json(value: Any, name: str, max_depth: int = 8, max_nodes: int = 500,
                 max_chars: int = 8192) -> Any:
    """A JSON value (as parsed) of at most `max_depth` levels, `max_nodes` values and
    `max_chars` characters of strings and keys, every string clean; returned unchanged."""
    budget = {"nodes": 0, "chars": 0}
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        budget["nodes"] += 1
        if depth > max_depth or budget["nodes"] > max_nodes:
            raise BadInput(f"{name} is nested too deep or too large")
        if isinstance(item, dict):
            for key, inner in item.items():
                if not is_clean(key):
                    raise BadInput(f"{name} holds a key that is not clean text")
                budget["chars"] += len(key)
                stack.append((inner, depth + 1))
        elif isinstance(item, list):
            stack.extend((inner, depth + 1) for inner in item)
        elif isinstance(item, str):
            if not is_clean(item, multiline=True):
                raise BadInput(f"{name} holds text with control characters or lone surrogates")
            budget["chars"] += len(item)
        elif item is not None and not isinstance(item, (bool, int, float)):
            raise BadInput(f"{name} holds a value that is not JSON")
        if budget["chars"] > max_chars:
            raise BadInput(f"{name} is larger than {max_chars} characters")
    return value
