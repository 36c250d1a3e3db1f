"""Checks shared by the small documents admins edit through the API (SLA policies, listening
topics): one wording for the same mistakes, ValueError for a 400."""
from __future__ import annotations

import re
from typing import Any, Iterable

_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def named_document(body: Any, allowed: Iterable[str], max_name_chars: int) -> str:
    """Check that `body` is a JSON object with only `allowed` fields and a printable `name` of at
    most `max_name_chars`; returns the name with its spaces collapsed."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    unknown = set(body) - set(allowed)
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(map(str, unknown)))[:200]}")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name is required (a non-empty string)")
    name = " ".join(name.split())
    if len(name) > max_name_chars or _CONTROL.search(name):
        raise ValueError(f"name must be at most {max_name_chars} printable characters")
    return name
