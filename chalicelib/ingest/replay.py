"""Replay of quarantined events (`POST /api/admin/quarantine/replay`, `make replay-quarantine`):
items held for an unknown account go through the pipeline again once the account exists; the
message store dedupes and each replayed item is deleted, so every event lands exactly once.
Concurrent replays may both run an item through the (idempotent) pipeline; only the call whose
conditional delete removes the item counts it, so each call reports what it replayed and the
counts of concurrent calls add up to the number of items."""
from __future__ import annotations

import json
from typing import Dict, List, Optional

from chalicelib.accounts import find_account, forget_account
from chalicelib.ingest import pipeline
from chalicelib.ingest.quarantine import event_from_json
from chalicelib.logs import logger
from chalicelib.models import ChannelAccount, Quarantine


def replay(channel: Optional[str] = None, account_id: Optional[str] = None, max_items: int = 1000) -> Dict[str, int]:
    """Run replayable items (unknown account) through the pipeline again; each one that is now
    handled is deleted. Items whose account is still unknown stay (and are not duplicated)."""
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
        if _remove(item):
            outcome["replayed"] += 1
    return outcome


def _remove(item: Quarantine) -> bool:
    """Delete a replayed item; False when a concurrent replay removed it first (that call
    reports it). Any other failure keeps the item for the next replay, which lands nothing twice."""
    from pynamodb.exceptions import DeleteError

    try:
        item.delete(condition=Quarantine.item_id.exists())
        return True
    except DeleteError as error:
        if getattr(error, "cause_response_code", None) != "ConditionalCheckFailedException":
            logger.warning("replayed quarantine item not removed", extra={"quarantine_id": item.item_id})
        return False


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
