"""Exactly once, in order: how the reports' stream consumers fold a conversation's log entries.

Both the counters (`aggregates`) and the cycle rows (`export`) keep, per conversation, the `seq`
of the last log entry they folded, and write their new state conditioned on it still being that
`seq`. This is the loop around that: drop what was folded already, fill a gap the stream left
from the log itself, commit, and read again when another consumer moved first.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Mapping, Tuple

ATTEMPTS = 6


def apply_once(conversation_id: str, entries: Iterable[Mapping[str, Any]],
               read: Callable[[str], Tuple[int, Dict[str, Any]]],
               commit: Callable[[str, int, Dict[str, Any], List[Dict[str, Any]]], bool],
               busy: Callable[[str], Exception]) -> int:
    """Fold one conversation's entries (any order, repeats allowed) exactly once: `read` gives the
    folded `seq` and state, `commit` writes the entries after it (False: someone moved first).
    Returns how many entries were new; raises `busy(...)` when the state kept moving."""
    from chalicelib.inbox import store

    given = {int(e["seq"]): dict(e) for e in entries}
    if not given:
        return 0
    for _ in range(ATTEMPTS):
        done, state = read(conversation_id)
        upto = max(given)
        if upto <= done:
            return 0
        fresh = {seq: e for seq, e in given.items() if seq > done}
        if set(fresh) != set(range(done + 1, upto + 1)):
            fresh = {int(e["seq"]): e for e in store.events(conversation_id, limit=max(1, upto - done), after_seq=done)}
            fresh.update({seq: e for seq, e in given.items() if seq > done})
        ordered = [fresh[seq] for seq in sorted(fresh)]
        if commit(conversation_id, done, state, ordered):
            return len(ordered)
    raise busy(conversation_id)


def transact(items: List[Dict[str, Any]]) -> bool:
    """One DynamoDB transaction (the state's conditioned put and what it folded); False when the
    condition failed, i.e. another consumer moved the state first."""
    from botocore.exceptions import ClientError

    from chalicelib.runtime import runtime

    try:
        runtime.client("dynamodb").transact_write_items(TransactItems=items)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("TransactionCanceledException", "ConditionalCheckFailedException"):
            return False
        raise
    return True
