"""Contacts as people: linked identities, their whole history, and agents' private notes.

A contact is one platform identity (chalicelib.models.Contact). Agents link identities that are
the same person (the WhatsApp number and the Instagram account of one customer): the person's
root identity lists every member (`linked`) and the others point at it (`person_id`). Link
changes are one transaction under the root's `links_version`, so two agents linking at once
cannot lose a member. A person is capped at MAX_IDENTITIES, which bounds every read here:
- identities: one GetItem (plus the root's, when linked) and one BatchGetItem;
- history: one Query per identity on the `contact-history` index + one BatchGetItem of rows;
- notes: one Query per identity (notes stay under the identity they were written on, so
  linking and unlinking never move them).
Never a Scan.
"""
from __future__ import annotations

import secrets
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.models import Contact, ContactNote, Conversation
from chalicelib.runtime import runtime

MAX_IDENTITIES = 10
HISTORY_PER_IDENTITY = 50
NOTES_PER_IDENTITY = 100
NOTE_MAX = 2000


class Refused(ValueError):
    """A link or note change that cannot be made (answered 409/422 with the message)."""


class Missing(LookupError):
    """No such contact or note."""


def get(contact_id: str) -> Optional[Contact]:
    try:
        return Contact.get(contact_id)
    except (DoesNotExist, ValueError):
        return None


def person(contact_id: str) -> Tuple[Contact, List[Contact]]:
    """The root identity of the person `contact_id` belongs to, and every identity (root first)."""
    contact = get(contact_id)
    if contact is None:
        raise Missing(contact_id)
    root = contact
    if contact.person_id and contact.person_id != contact.contact_id:
        root = get(contact.person_id) or contact  # a root deleted by hand: the identity stands alone
    members = [m for m in (root.linked or []) if m != root.contact_id][:MAX_IDENTITIES - 1]
    others = {c.contact_id: c for c in Contact.batch_get(members)} if members else {}
    identities = [root] + [others[m] for m in members if m in others]
    if contact.contact_id not in {c.contact_id for c in identities}:
        identities = [contact]  # a stale pointer: the root no longer lists it
    return identities[0], identities


def history(contact_ids: Sequence[str]) -> List[Dict[str, Any]]:
    """Every conversation of these identities as plain state, latest activity first."""
    ids: List[str] = []
    for contact_id in contact_ids:
        for row in Conversation.by_contact.query(contact_id, scan_index_forward=False, limit=HISTORY_PER_IDENTITY,
                                                 page_size=HISTORY_PER_IDENTITY):
            ids.append(row.conversation_id)
    rows = [{k: v for k, v in c.attribute_values.items() if v is not None}
            for c in Conversation.batch_get(ids)] if ids else []
    return sorted(rows, key=lambda r: r.get("last_message_at") or r.get("created_at") or 0, reverse=True)


def identity_json(contact: Contact) -> Dict[str, Any]:
    return {"id": contact.contact_id, "channel": contact.channel, "account_id": contact.account_id,
            "platform_id": contact.platform_user_id, "display_name": contact.display_name,
            "handle": contact.handle, "avatar_url": contact.avatar_url,
            "followers": int(contact.followers) if contact.followers is not None else None}


# --- notes -----------------------------------------------------------------------------------------


def notes(contact_ids: Sequence[str]) -> List[Dict[str, Any]]:
    """The newest NOTES_PER_IDENTITY notes of each identity, oldest first."""
    found: List[ContactNote] = []
    for contact_id in contact_ids:
        found.extend(ContactNote.query(contact_id, scan_index_forward=False, limit=NOTES_PER_IDENTITY,
                                       page_size=NOTES_PER_IDENTITY))
    return [note_json(n) for n in sorted(found, key=lambda n: n.note_id)]


def note_json(note: ContactNote) -> Dict[str, Any]:
    from chalicelib.api.views import iso

    return {"id": note.note_id, "contact_id": note.contact_id, "text": note.text, "author_id": note.author_id,
            "author_name": note.author_name, "created_at": iso(note.created_at),
            "updated_at": iso(note.updated_at), "updated_by": note.updated_by, "version": int(note.version or 1)}


def add_note(contact_id: str, text: str, author_id: str, author_name: Optional[str]) -> ContactNote:
    now = runtime.now_ms()
    note = ContactNote(contact_id, f"{now:013d}-{secrets.token_hex(4)}", text=text, author_id=author_id,
                       author_name=author_name, created_at=now, version=1)
    note.save(condition=ContactNote.note_id.does_not_exist())
    return note


def edit_note(contact_id: str, note_id: str, text: str, editor_id: str, may_edit_others: bool,
              expected_version: Optional[int]) -> ContactNote:
    """Change a note's text: its author, or a supervisor/admin. `expected_version` (optional)
    refuses to overwrite an edit the caller has not seen."""
    try:
        note = ContactNote.get(contact_id, note_id)
    except (DoesNotExist, ValueError):
        raise Missing(note_id)
    if note.author_id != editor_id and not may_edit_others:
        raise PermissionError("only the note's author (or a supervisor) can change it")
    version = int(note.version or 1)
    if expected_version is not None and expected_version != version:
        raise Refused(f"the note was changed meanwhile (version {version}); reload it")
    try:
        note.update(actions=[ContactNote.text.set(text), ContactNote.updated_at.set(runtime.now_ms()),
                             ContactNote.updated_by.set(editor_id), ContactNote.version.set(version + 1)],
                    condition=ContactNote.version == version)
    except UpdateError as error:
        if getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException":
            raise Refused("the note was changed meanwhile; reload it")
        raise
    return note


# --- links -----------------------------------------------------------------------------------------


def link(contact_id: str, other_id: str) -> List[Contact]:
    """Make `other_id`'s person part of `contact_id`'s person (its identities move over)."""
    root, mine = person(contact_id)
    other_root, theirs = person(other_id)
    if root.contact_id == other_root.contact_id:
        return mine
    members = [c.contact_id for c in mine] + [c.contact_id for c in theirs]
    if len(members) > MAX_IDENTITIES:
        raise Refused(f"a person has at most {MAX_IDENTITIES} identities")
    with _links_transaction() as transaction:
        _set_root(transaction, root, members)
        transaction.update(other_root, actions=[Contact.linked.remove(), Contact.person_id.set(root.contact_id),
                                                Contact.links_version.add(1)],
                           condition=_unchanged(other_root))
        for member in theirs[1:]:
            transaction.update(member, actions=[Contact.person_id.set(root.contact_id)],
                               condition=Contact.person_id == other_root.contact_id)
    return person(contact_id)[1]


def unlink(contact_id: str) -> List[Contact]:
    """Take one identity out of its person; it stands alone again. When it was the root, the
    next identity becomes the root of the others."""
    root, identities = person(contact_id)
    if len(identities) < 2:
        return identities
    rest = [c for c in identities if c.contact_id != contact_id]
    with _links_transaction() as transaction:
        if root.contact_id == contact_id:
            heir = rest[0]
            transaction.update(root, actions=[Contact.linked.remove(), Contact.links_version.add(1)],
                               condition=_unchanged(root))
            _set_root(transaction, heir, [c.contact_id for c in rest], Contact.person_id == root.contact_id)
            for member in rest[1:]:
                transaction.update(member, actions=[Contact.person_id.set(heir.contact_id)],
                                   condition=Contact.person_id == root.contact_id)
        else:
            _set_root(transaction, root, [c.contact_id for c in rest])
            transaction.update(next(c for c in identities if c.contact_id == contact_id),
                               actions=[Contact.person_id.remove()], condition=Contact.person_id == root.contact_id)
    return [c for c in identities if c.contact_id == contact_id]


def _set_root(transaction: TransactWrite, root: Contact, members: List[str], condition: Any = None) -> None:
    """`root` lists `members` (a person of one identity lists nobody), under `condition` (by
    default: its links are as read)."""
    actions = [Contact.links_version.add(1),
               Contact.linked.set(members) if len(members) > 1 else Contact.linked.remove()]
    if condition is not None:
        actions.append(Contact.person_id.remove())  # an heir: it was pointing at the old root
    transaction.update(root, actions=actions, condition=_unchanged(root) if condition is None else condition)


def _unchanged(contact: Contact) -> Any:
    version = contact.links_version
    return Contact.links_version.does_not_exist() if version is None else Contact.links_version == version


class _links_transaction:
    """A TransactWrite whose lost races answer Refused (409): someone changed the links first."""

    def __enter__(self) -> TransactWrite:
        self._transaction = TransactWrite(connection=runtime.connection())
        return self._transaction.__enter__()

    def __exit__(self, kind: Any, value: Any, trace: Any) -> bool:
        try:
            self._transaction.__exit__(kind, value, trace)
        except TransactWriteError as error:
            reasons = getattr(error, "cancellation_reasons", None) or []
            if {r.code for r in reasons if r is not None} <= {"ConditionalCheckFailed", "TransactionConflict",
                                                                   "None"}:
                raise Refused("the contact's links changed meanwhile; reload and try again") from error
            raise
        return False


# --- profiles: real names and pictures for platforms whose messages carry none ---------------------

PROFILE_REFRESH_MS = 7 * 24 * 3600_000  # a profile is looked up again weekly
PROFILE_RETRY_MS = 3600_000  # a failed lookup is tried again after an hour
PROFILE_MEMORY_MS = 3600_000  # per container: a contact just handled is not read again for an hour


def enrich(event: Any, conversation_id: str) -> str:
    """After a customer's message is stored (never on the webhook's path): look the contact's
    profile up with the account's token when the platform's messages carry no name (Messenger,
    Instagram DMs), at most weekly, and show the name on the conversation. Never raises: a failed
    lookup is logged, remembered on the contact and retried later; the message is already stored.
    Returns what happened (for logs and tests)."""
    from chalicelib.logs import logger

    try:
        return _enrich(event, conversation_id)
    except Exception as error:  # noqa: BLE001 - a profile must never fail ingest
        logger.warning("profile lookup failed", extra={"channel": getattr(event, "channel", "?"),
                                                       "error": f"{type(error).__name__}: {error}"[:300]})
        return "failed"


def _enrich(event: Any, conversation_id: str) -> str:
    from chalicelib.accounts import find_account
    from chalicelib.channels import adapter_for_channel
    from chalicelib.channels.base import account_secrets
    from chalicelib.inbox import store
    from chalicelib.inbox.ids import contact_id_for
    from chalicelib.logs import logger

    if event.direction != "in" or event.contact.display_name:
        return "named by the platform"
    if not lookups_enabled():
        return "lookups off"
    contact_id = contact_id_for(event.channel, event.account_id, event.contact.platform_user_id)
    now = runtime.now_ms()
    memory = _memory().get(f"profile:{contact_id}")
    if memory is not None and now - memory[0] < PROFILE_MEMORY_MS:
        _name_conversation(conversation_id, *memory[1:])
        return "remembered"
    contact = get(contact_id)
    if contact is not None and _fresh(contact, now):
        known = (contact.display_name, contact.handle, _count(contact.followers))
        _remember(f"profile:{contact_id}", (now, *known))
        _name_conversation(conversation_id, *known)
        return "fresh"
    account = find_account(event.channel, event.account_id)
    refs = getattr(account, "credential_refs", None) if account is not None else None
    refs = refs.as_dict() if hasattr(refs, "as_dict") else (refs or {})
    try:
        profile = adapter_for_channel(event.channel).fetch_profile(
            event.channel, event.account_id, event.contact.platform_user_id, account_secrets(refs), runtime.http())
    except Exception as error:  # noqa: BLE001 - remembered, retried after PROFILE_RETRY_MS
        Contact(contact_id).update(actions=[Contact.profile_failed_at.set(now)], condition=Contact.contact_id.exists())
        _remember(f"profile:{contact_id}", (now, contact.display_name if contact else None,
                                            contact.handle if contact else None,
                                            _count(contact.followers) if contact else None))
        logger.warning("profile lookup failed", extra={"channel": event.channel,
                                                       "error": f"{type(error).__name__}: {error}"[:300]})
        return "failed"
    if profile is None:
        return "no profile on this platform"
    actions = [Contact.channel.set(event.channel), Contact.account_id.set(event.account_id),
               Contact.platform_user_id.set(event.contact.platform_user_id),
               Contact.created_at.set(Contact.created_at | now), Contact.updated_at.set(now),
               Contact.profile_checked_at.set(now), Contact.profile_failed_at.remove()]
    for attribute, value in ((Contact.display_name, profile.display_name), (Contact.handle, profile.handle),
                             (Contact.avatar_url, profile.avatar_url), (Contact.followers, profile.followers)):
        if value is not None:
            actions.append(attribute.set(value))
    Contact(contact_id).update(actions=actions)
    _remember(f"profile:{contact_id}", (now, profile.display_name, profile.handle, profile.followers))
    store.name_contact(conversation_id, profile.display_name, profile.handle, only_if_unnamed=False,
                       followers=profile.followers)
    return "looked up"


def _fresh(contact: Contact, now: int) -> bool:
    checked, failed = contact.profile_checked_at, contact.profile_failed_at
    if checked is not None and now - int(checked) < PROFILE_REFRESH_MS:
        return True
    return failed is not None and now - int(failed) < PROFILE_RETRY_MS


def _count(value: Any) -> Optional[int]:
    return int(value) if value is not None else None


def _name_conversation(conversation_id: str, name: Optional[str], handle: Optional[str],
                       followers: Optional[int] = None) -> None:
    """A known name on a conversation that shows none yet (a new thread of a known contact),
    once per conversation per container."""
    if not name or _memory().get(f"named:{conversation_id}"):
        return
    from chalicelib.inbox import store

    store.name_contact(conversation_id, name, handle, only_if_unnamed=True, followers=followers)
    _remember(f"named:{conversation_id}", True)


def lookups_enabled() -> bool:
    """PROFILE_LOOKUPS=on|off; by default on in AWS and off locally (tests), so offline runs never
    go out; `make run` switches it on, its sandbox serving the profile endpoints."""
    import os

    from chalicelib import config

    setting = (os.environ.get("PROFILE_LOOKUPS") or "").strip().lower()
    if setting in ("on", "off"):
        return setting == "on"
    return not config.is_local()


PROFILE_MEMORY_SIZE = 10_000


def _memory() -> "OrderedDict[str, Any]":
    found = runtime.cached("profile-memory")
    if found is None:
        found = OrderedDict()
        runtime.remember("profile-memory", found)
    return found


def _remember(key: str, value: Any) -> None:
    memory = _memory()
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > PROFILE_MEMORY_SIZE:
        memory.popitem(last=False)
