"""Quarantine: accepted deliveries we could not route or read, kept for inspection, never
dropped. Items held for an unknown account keep the parsed event, so once an admin registers
the account they are replayed exactly once (the message store dedupes, and each item is
removed by a conditional delete after its replay)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Dict, List, Optional, Tuple

from chalicelib.channels import base
from chalicelib.logs import logger
from chalicelib.models import Quarantine
from chalicelib.runtime import runtime

QUARANTINE_DAYS = 30
RAW_MAX_BYTES = 300_000  # DynamoDB items stop at 400 KB: the cap is in bytes, not characters
PREVIEW_CHARS = 300
_EVENT_TYPES = {cls.__name__: cls for cls in (base.MessageEvent, base.StatusEvent, base.EditEvent, base.RemoveEvent,
                                               base.LookupEvent, base.PostEditEvent)}


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode("utf-8", "replace")).hexdigest()[:24]


def cap_bytes(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, never inside a character."""
    data = text.encode("utf-8", "replace")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def quarantine(reason: str, channel: Optional[str], account_id: Optional[str], raw: Any,
               correlation_id: str = "", event: Any = None) -> str:
    """Keep what we could not route or read, keyed by content so duplicates land once."""
    raw_text = json.dumps(raw, sort_keys=True, ensure_ascii=False, default=str)
    item_id = "q_" + _digest(reason, channel or "", account_id or "", raw_text)
    now = runtime.now_ms()
    serialised = event_to_json(event) if event is not None else None
    Quarantine(item_id, reason=reason, channel=channel, account_id=account_id,
               raw=cap_bytes(raw_text, RAW_MAX_BYTES), preview=cap_bytes(raw_text, PREVIEW_CHARS),
               event=serialised, replayable=serialised is not None, correlation_id=correlation_id or None,
               created_at=now, expires_at=now // 1000 + QUARANTINE_DAYS * 86400).save()
    logger.warning("event quarantined", extra={"reason": reason, "channel": channel, "account_id": account_id,
                                               "quarantine_id": item_id})
    return item_id


def raw_of(event: Any) -> Any:
    if isinstance(event, base.MessageEvent):
        return event.raw
    if isinstance(event, base.EditEvent):
        return event.message.raw
    if isinstance(event, base.RemoveEvent) and event.message is not None:
        return event.message.raw
    return {k: v for k, v in event.__dict__.items() if k != "message"}


def event_to_json(event: Any) -> Optional[Dict[str, Any]]:
    """A parsed event as JSON (None for kinds that cannot be replayed)."""
    name = type(event).__name__
    if name not in _EVENT_TYPES:
        return None
    return {"type": name, "fields": json.loads(json.dumps(dataclasses.asdict(event), default=str))}


def event_from_json(data: Dict[str, Any]) -> Any:
    cls = _EVENT_TYPES[data["type"]]
    return _build(cls, data["fields"])


def _build(cls: Any, fields: Dict[str, Any]) -> Any:
    values = dict(fields)
    if cls is base.MessageEvent:
        values["contact"] = base.ContactRef(**values["contact"])
        values["attachments"] = tuple(values.get("attachments") or ())
    elif cls is base.EditEvent:
        values["message"] = _build(base.MessageEvent, values["message"])
    elif cls is base.RemoveEvent and values.get("message") is not None:
        values["message"] = _build(base.MessageEvent, values["message"])
    return cls(**values)


def page(limit: int, start: Optional[Dict[str, Any]]) -> Tuple[List[Quarantine], Optional[Dict[str, Any]]]:
    """Newest first, one Query per page."""
    results = Quarantine.newest.query("quarantine", scan_index_forward=False, limit=limit, page_size=limit,
                                      last_evaluated_key=start)
    items = list(results)
    return items, results.last_evaluated_key
