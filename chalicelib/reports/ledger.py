"""Exactly once, in order: how the reports' stream consumers fold a conversation's log entries.

Both the counters (`aggregates`) and the cycle rows (`export`) keep, per conversation, the `seq`
of the last log entry they folded, and write their new state conditioned on it still being that
`seq`. This is the loop around that: drop what was folded already, fill a gap the stream left
from the log itself, commit, and read again when another consumer moved first.
"""
from __future__ import annotations

import random
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

ATTEMPTS = 6


def fresh(conversation_id: str, given: Mapping[int, Mapping[str, Any]], done: int) -> List[Dict[str, Any]]:
    """The entries after `done`, in seq order and without a gap: those given (by seq), and what
    the stream did not give between them read from the log itself. Empty when all were folded."""
    from chalicelib.inbox import store

    upto = max(given, default=0)
    if upto <= done:
        return []
    found = {seq: dict(e) for seq, e in given.items() if seq > done}
    if set(found) != set(range(done + 1, upto + 1)):
        found = {int(e["seq"]): e for e in store.events(conversation_id, limit=max(1, upto - done), after_seq=done)}
        found.update({seq: dict(e) for seq, e in given.items() if seq > done})
    return [found[seq] for seq in sorted(found)]


def apply_once(conversation_id: str, entries: Iterable[Mapping[str, Any]],
               read: Callable[[str], Tuple[int, Dict[str, Any]]],
               commit: Callable[[str, int, Dict[str, Any], List[Dict[str, Any]]], bool],
               busy: Callable[[str], Exception]) -> int:
    """Fold one conversation's entries (any order, repeats allowed) exactly once: `read` gives the
    folded `seq` and state, `commit` writes the entries after it (False: someone moved first).
    Returns how many entries were new; raises `busy(...)` when the state kept moving."""
    given = {int(e["seq"]): dict(e) for e in entries}
    if not given:
        return 0
    for attempt in range(ATTEMPTS):
        done, state = read(conversation_id)
        ordered = fresh(conversation_id, given, done)
        if not ordered:
            return 0
        if commit(conversation_id, done, state, ordered):
            return len(ordered)
        back_off(attempt)
    raise busy(conversation_id)


def back_off(attempt: int, again: bool = True) -> None:
    """A short, jittered pause before reading again after losing a race (two transactions on the
    same hot counter item conflict; the loser is cancelled and retries)."""
    if again and attempt:
        time.sleep(random.uniform(0, 0.02 * 2 ** attempt))


def transact_failures(items: List[Dict[str, Any]]) -> Optional[List[str]]:
    """One DynamoDB transaction: None when written, else each item's cancellation reason
    ("ConditionalCheckFailed", "TransactionConflict", "None"...): another consumer moved first."""
    from botocore.exceptions import ClientError

    from chalicelib.runtime import runtime

    try:
        runtime.client("dynamodb").transact_write_items(TransactItems=items)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in ("TransactionCanceledException", "ConditionalCheckFailedException"):
            reasons = error.response.get("CancellationReasons") or [{"Code": code}] * len(items)
            return [str((reason or {}).get("Code") or "None") for reason in reasons]
        raise
    return None


def transact(items: List[Dict[str, Any]]) -> bool:
    """One DynamoDB transaction (the state's conditioned put and what it folded); False when the
    condition failed, i.e. another consumer moved the state first."""
    return transact_failures(items) is None


def get_many(table: str, keys: List[Dict[str, Any]], consistent: bool = True) -> Dict[Tuple[str, ...], Dict[str, Any]]:
    """Reads of many items by key, 100 a request (BatchGetItem, unprocessed keys read again):
    {(key values in the key's attribute order): item}."""
    from chalicelib.runtime import runtime

    client = runtime.client("dynamodb")
    found: Dict[Tuple[str, ...], Dict[str, Any]] = {}
    names = list(keys[0]) if keys else []
    unique = list({tuple(next(iter(k[n].values())) for n in names): k for k in keys}.values())
    for first in range(0, len(unique), 100):
        request: Dict[str, Any] = {table: {"Keys": unique[first:first + 100], "ConsistentRead": consistent}}
        for attempt in range(ATTEMPTS * 2):
            page = client.batch_get_item(RequestItems=request)
            for item in page.get("Responses", {}).get(table, []):
                found[tuple(next(iter(item[n].values())) for n in names)] = item
            request = page.get("UnprocessedKeys") or {}
            if not request:
                break
            back_off(attempt + 1)
        else:
            raise RuntimeError(f"{table}: keys left unprocessed")
    return found
