"""One-off upgrades of stored conversations, run by an operator (docs/DEPLOY.md, "Upgrade"), never
on a request path: they Scan the conversations table, a page at a time.

    SOCIALINBOX_STAGE=prod .venv/bin/python -m chalicelib.inbox.upgrade deadlines

- `deadlines`: the `deadline` attribute, the sparse `team-deadline` index's sort key (issue 21), on
  conversations stored before it existed. Without it a conversation that has something due is
  missing from the deadline views, the at-risk and breached counts and the SLA sweeper until its
  next logged change writes it. Idempotent; one conditional UpdateItem per conversation that
  needs it, under the version read, so a change made meanwhile (which writes the attribute
  itself) is never overwritten.
"""
from __future__ import annotations

import argparse
import json
from typing import List, Optional


def set_deadlines(page_size: int = 100) -> int:
    """Write the missing `deadline` of every conversation that has something due; how many."""
    from pynamodb.exceptions import UpdateError

    from chalicelib.inbox import rules
    from chalicelib.models import Conversation

    written = 0
    for item in Conversation.scan(page_size=page_size):
        state = {k: v for k, v in item.attribute_values.items() if v is not None}
        wanted = rules.derived_keys(state)["deadline"]
        if wanted is None or state.get("deadline") == wanted:
            continue
        version = state.get("version")
        unchanged = Conversation.version.does_not_exist() if version is None else Conversation.version == version
        try:
            item.update(actions=[Conversation.deadline.set(wanted)], condition=unchanged)
            written += 1
        except UpdateError as error:
            if getattr(error, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise
    return written


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.inbox.upgrade", description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=["deadlines"])
    parser.parse_args(argv)
    print(json.dumps({"deadlines_written": set_deadlines()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
