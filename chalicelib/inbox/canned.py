"""Canned replies: shared ones (written by admins and supervisors) and each agent's own, with
placeholders filled from the conversation and the agent.

Layout (models.CannedReply): partition `owner` = "shared" or "agent#<agent id>"; a reply is the
item "r_<hex>", and its shortcut is claimed by the item "~shortcut#<folded shortcut>" of the same
owner, written in the same transaction, so a shortcut is unique per owner (two racing creates:
one 201, one 409). Listing is one Query per owner; finding a reply by id is at most two GetItems
(shared, then the agent's own), so another agent's personal reply is simply not found (404).
"""
from __future__ import annotations

import re
import unicodedata
import uuid
from typing import Any, Dict, List, Optional, Tuple

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.models import CannedReply
from chalicelib.runtime import runtime

SHARED = "shared"
WRITERS_OF_SHARED = ("admin", "supervisor")
MAX_PER_OWNER = 500
SHORTCUT = re.compile(r"^[\w-]{1,32}$")
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+(?:\.[A-Za-z_]+)?)\s*\}\}")
KNOWN_PLACEHOLDERS = ("contact.name", "contact.handle", "agent.name")


class NotFound(LookupError):
    pass


class Forbidden(PermissionError):
    pass


class Duplicate(ValueError):
    """The shortcut is already used by another reply of the same owner."""


def owner_of(agent_id: str, shared: bool) -> str:
    return SHARED if shared else f"agent#{agent_id}"


def fold(shortcut: str) -> str:
    return unicodedata.normalize("NFKC", shortcut).casefold()


def normalise_shortcut(value: str) -> str:
    """The shortcut as stored (NFKC, a leading '/' dropped); ValueError when not a word."""
    value = unicodedata.normalize("NFKC", value).strip()
    if value.startswith("/"):
        value = value[1:]
    if not SHORTCUT.match(value):
        raise ValueError("shortcut must be 1 to 32 letters, digits, '_' or '-' (an optional leading '/')")
    return value


def to_json(item: CannedReply) -> Dict[str, Any]:
    from chalicelib.api.views import iso

    return {"id": item.reply_id, "scope": "shared" if item.owner == SHARED else "personal",
            "shortcut": item.shortcut, "title": item.title, "text": item.text, "created_by": item.created_by,
            "created_at": iso(item.created_at), "updated_at": iso(item.updated_at)}


def list_for(agent_id: str) -> List[CannedReply]:
    """Shared replies, then the agent's own, each by shortcut."""
    found: List[CannedReply] = []
    for owner in (SHARED, owner_of(agent_id, False)):
        items = CannedReply.query(owner, CannedReply.reply_id.startswith("r_"), limit=MAX_PER_OWNER,
                                  page_size=MAX_PER_OWNER)
        found.extend(sorted(items, key=lambda i: fold(i.shortcut or "")))
    return found


def find(reply_id: str, agent_id: str) -> CannedReply:
    if not isinstance(reply_id, str) or not re.fullmatch(r"r_[0-9a-f]{20}", reply_id):
        raise NotFound(reply_id)
    for owner in (SHARED, owner_of(agent_id, False)):
        try:
            return CannedReply.get(owner, reply_id)
        except DoesNotExist:
            continue
    raise NotFound(reply_id)


def _may_write(item_owner: str, role: str) -> None:
    if item_owner == SHARED and role not in WRITERS_OF_SHARED:
        raise Forbidden("only admins and supervisors write shared canned replies")


def _claim_key(shortcut: str) -> str:
    return "~shortcut#" + fold(shortcut)


def create(agent_id: str, role: str, shared: bool, shortcut: str, title: str, text: str) -> CannedReply:
    owner = owner_of(agent_id, shared)
    _may_write(owner, role)
    count = CannedReply.count(owner, CannedReply.reply_id.startswith("r_"), limit=MAX_PER_OWNER)
    if count >= MAX_PER_OWNER:
        raise ValueError(f"at most {MAX_PER_OWNER} canned replies per owner")
    now = runtime.now_ms()
    reply = CannedReply(owner, "r_" + uuid.uuid4().hex[:20], shortcut=shortcut, title=title, text=text,
                        created_by=agent_id, created_at=now, updated_at=now)
    claim = CannedReply(owner, _claim_key(shortcut), claimed_by=reply.reply_id, created_at=now)
    _transact([("save", claim, CannedReply.reply_id.does_not_exist()),
               ("save", reply, CannedReply.reply_id.does_not_exist())])
    return reply


def replace(reply_id: str, agent_id: str, role: str, shortcut: str, title: str, text: str) -> CannedReply:
    item = find(reply_id, agent_id)
    _may_write(item.owner, role)
    now = runtime.now_ms()
    steps: List[Tuple[str, Any, Any]] = []
    if fold(shortcut) != fold(item.shortcut or ""):
        steps.append(("delete", CannedReply(item.owner, _claim_key(item.shortcut or "")),
                      CannedReply.claimed_by == item.reply_id))
        steps.append(("save", CannedReply(item.owner, _claim_key(shortcut), claimed_by=item.reply_id, created_at=now),
                      CannedReply.reply_id.does_not_exist()))
    steps.append(("update", CannedReply(item.owner, item.reply_id),
                  ([CannedReply.shortcut.set(shortcut), CannedReply.title.set(title), CannedReply.text.set(text),
                    CannedReply.updated_at.set(now)], CannedReply.reply_id.exists())))
    _transact(steps)
    item.shortcut, item.title, item.text, item.updated_at = shortcut, title, text, now
    return item


def delete(reply_id: str, agent_id: str, role: str) -> None:
    item = find(reply_id, agent_id)
    _may_write(item.owner, role)
    _transact([("delete", CannedReply(item.owner, item.reply_id), CannedReply.reply_id.exists()),
               ("delete", CannedReply(item.owner, _claim_key(item.shortcut or "")), None)])


def _transact(steps: List[Tuple[str, Any, Any]]) -> None:
    try:
        with TransactWrite(connection=runtime.connection()) as transaction:
            for kind, item, condition in steps:
                if kind == "save":
                    transaction.save(item, condition=condition)
                elif kind == "delete":
                    transaction.delete(item, condition=condition)
                else:
                    actions, update_condition = condition
                    transaction.update(item, actions=actions, condition=update_condition)
    except TransactWriteError as error:
        reasons = [r for r in (getattr(error, "cancellation_reasons", None) or []) if r is not None]
        codes = [r.code for r in reasons]
        if "ConditionalCheckFailed" in codes:
            index = codes.index("ConditionalCheckFailed")
            kind, item, _ = steps[index]
            if kind == "save" and item.reply_id.startswith("~shortcut#"):
                raise Duplicate(item.reply_id.split("#", 1)[1])
            raise NotFound("the canned reply changed or went away")
        raise


def render(text: str, values: Dict[str, Optional[str]]) -> str:
    """Fill the known placeholders with plain text, in one pass (a value that looks like a
    placeholder is never expanded again); unknown placeholders stay exactly as typed."""

    def fill(match: "re.Match[str]") -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        return values[name] or ""

    return PLACEHOLDER.sub(fill, text)


def values_for(conversation: Dict[str, Any], agent_name: str) -> Dict[str, Optional[str]]:
    """Placeholder values from a conversation as the API shows it and the agent's name."""
    contact = conversation.get("contact") or {}
    return {"contact.name": contact.get("display_name"), "contact.handle": contact.get("handle"),
            "agent.name": agent_name}
