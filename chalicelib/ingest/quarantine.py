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
_EVENT_TYPES = {cls.__name__: cls for cls in (base.MessageEvent, base.StatusEvent, base.EditEvent, base.RemoveEvent)}


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


def replay(channel: Optional[str] = None, account_id: Optional[str] = None, max_items: int = 1000) -> Dict[str, int]:
    """Run replayable items (unknown account) through the pipeline again; each one that is now
    handled is deleted. Items whose account is still unknown stay (and are not duplicated)."""
    from chalicelib.ingest import pipeline

    outcome: Dict[str, int] = {"replayed": 0, "still_unknown": 0, "failed": 0}
    condition = Quarantine.replayable == True  # noqa: E712 - a DynamoDB condition, not a Python test
    if channel:
        condition = condition & (Quarantine.channel == channel)
    if account_id:
        condition = condition & (Quarantine.account_id == account_id)
    seen = 0
    for summary in Quarantine.newest.query("quarantine", filter_condition=condition, page_size=100):
        if seen >= max_items:
            break
        seen += 1
        try:
            item = Quarantine.get(summary.item_id, consistent_read=True)
        except Quarantine.DoesNotExist:
            continue  # replayed by someone else meanwhile
        from chalicelib.accounts import find_account, forget_account
        from chalicelib.models import ChannelAccount

        forget_account(ChannelAccount.key_for(item.channel or "", item.account_id or ""))
        if find_account(item.channel or "", item.account_id or "") is None:
            outcome["still_unknown"] += 1
            continue
        try:
            pipeline.handle(event_from_json(item.event), item.correlation_id or "")
        except Exception:  # noqa: BLE001 - keep the item; report and go on with the rest
            logger.exception("quarantine replay failed", extra={"quarantine_id": item.item_id})
            outcome["failed"] += 1
            continue
        try:
            item.delete(condition=Quarantine.item_id.exists())
        except Exception:  # noqa: BLE001 - already removed by a concurrent replay: fine
            pass
        outcome["replayed"] += 1
    return outcome


def _point_at_local_stack() -> None:
    """`make ... STAGE=local`: talk to the emulator `make run` started (MOTO_PORT), never to AWS."""
    import os

    if os.environ.get("SOCIALINBOX_STAGE", "local") != "local" or os.environ.get("AWS_ENDPOINT_URL"):
        return
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '5000')}"
    for name, value in (("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(name, value)


def main(argv: Optional[List[str]] = None) -> int:
    """`python -m chalicelib.ingest.quarantine replay [--channel C] [--account-id A]`."""
    import argparse

    parser = argparse.ArgumentParser(description="Replay events held for an unknown account.")
    parser.add_argument("command", choices=["replay"])
    parser.add_argument("--channel")
    parser.add_argument("--account-id")
    args = parser.parse_args(argv)
    _point_at_local_stack()
    print(json.dumps(replay(args.channel or None, args.account_id or None)))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
