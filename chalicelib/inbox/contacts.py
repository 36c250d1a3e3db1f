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
PROFILE_RETRY_MS = 3600_000  # a failed lookup is tried again after an hour, then 2, 4, ... hours
PROFILE_RETRY_MAX_MS = 24 * 3600_000  # at most a day apart however often it failed
PROFILE_ACTIVE_MS = 30 * 24 * 3600_000  # the sweep keeps refreshing customers who wrote within this
PROFILE_MEMORY_MS = 3600_000  # per container: a contact just handled is not read again for an hour
PROFILE_SHOWN_ON = 3  # a refreshed profile is shown on the contact's newest conversations
PROFILE_DUE = "due"  # the one key value of the sparse `profile-due` index
SWEEP_MAX = 50  # profiles a sweep run looks up at most
SWEEP_BUDGET_MS = 20_000  # and for at most this long (the function's timeout is 30 s)


def enrich(event: Any, conversation_id: str) -> str:
    """After a customer's message is stored (never on the webhook's path): look the contact's
    profile up with the account's token when the platform's messages carry no name (Messenger,
    Instagram DMs, LinkedIn), at most weekly, and show the name on the conversation. Never raises:
    a failed lookup is logged, remembered on the contact and retried later (by the next message
    or the sweep, `refresh_due_profiles`); the message is already stored. Returns what happened
    (for logs and tests)."""
    from chalicelib.logs import logger

    try:
        return _enrich(event, conversation_id)
    except Exception as error:  # noqa: BLE001 - a profile must never fail ingest
        logger.warning("profile lookup failed", extra={"channel": getattr(event, "channel", "?"),
                                                       "error": f"{type(error).__name__}: {error}"[:300]})
        return "failed"


def _enrich(event: Any, conversation_id: str) -> str:
    from chalicelib.inbox.ids import contact_id_for

    if event.direction != "in" or event.contact.display_name:
        return "named by the platform"
    if not lookups_enabled():
        return "lookups off"
    contact_id = contact_id_for(event.channel, event.account_id, event.contact.platform_user_id)
    now = runtime.now_ms()
    memory = _memory().get(f"profile:{contact_id}")
    if memory is not None and now - memory[0] < PROFILE_MEMORY_MS:
        _show_on_new(conversation_id, memory[1])
        return "remembered"
    contact = get(contact_id)
    if contact is not None and now < _next_lookup_at(contact):
        _remember(f"profile:{contact_id}", (now, _shown(contact)))
        _show_on_new(conversation_id, _shown(contact))
        return "fresh"
    outcome, shown = _look_up(contact, contact_id, event.channel, event.account_id, event.contact.platform_user_id,
                              now, active=True)
    before = _shown(contact)
    if outcome == "looked up" and not _show(conversation_id, shown, only_if_unnamed=True, renamed=True, now=now) \
            and shown != before:  # named already, by an older profile
        _show(conversation_id, shown, only_if_unnamed=False, renamed=shown[:2] != before[:2], now=now)
    return outcome


Shown = Tuple[Optional[str], Optional[str], Optional[int]]  # name, handle, followers


def _shown(contact: Optional[Contact]) -> Shown:
    if contact is None:
        return (None, None, None)
    return (contact.display_name, contact.handle, int(contact.followers) if contact.followers is not None else None)


def _next_lookup_at(contact: Contact) -> int:
    """A week after the last lookup; after a failure, an hour later, doubling with each failure
    in a row up to a day."""
    checked, failed = contact.profile_checked_at, contact.profile_failed_at
    if failed is not None and (checked is None or int(failed) >= int(checked)):
        return int(failed) + retry_delay(int(contact.profile_failures or 1))
    return int(checked) + PROFILE_REFRESH_MS if checked is not None else 0


def retry_delay(failures: int) -> int:
    """How long after its `failures`-th failure in a row a lookup is tried again."""
    return min(PROFILE_RETRY_MS * 2 ** max(0, min(failures, 32) - 1), PROFILE_RETRY_MAX_MS)


def _look_up(contact: Optional[Contact], contact_id: str, channel: str, account_id: str, user_id: str, now: int,
             active: bool) -> Tuple[str, Shown]:
    """One profile lookup with the account's token, recorded on the contact with when the next
    one is due (the sparse `profile-due` index the sweep reads). `active`: a message just
    arrived (the customer's activity is noted; the sweep's own lookups note none)."""
    from chalicelib.accounts import find_account
    from chalicelib.channels import adapter_for_channel
    from chalicelib.channels.base import account_secrets
    from chalicelib.logs import logger

    account = find_account(channel, account_id)
    refs = getattr(account, "credential_refs", None) if account is not None else None
    refs = refs.as_dict() if hasattr(refs, "as_dict") else (refs or {})
    try:
        profile = adapter_for_channel(channel).fetch_profile(channel, account_id, user_id, account_secrets(refs),
                                                             runtime.http())
    except Exception as error:  # noqa: BLE001 - remembered, retried with backoff
        failures = int(contact.profile_failures or 0) + 1 if contact is not None else 1
        Contact(contact_id).update(actions=[
            Contact.profile_failed_at.set(now), Contact.profile_failures.set(failures),
            Contact.profile_due.set(PROFILE_DUE), Contact.profile_due_at.set(now + retry_delay(failures))],
            condition=Contact.contact_id.exists())
        _remember(f"profile:{contact_id}", (now, _shown(contact)))
        logger.warning("profile lookup failed", extra={"channel": channel, "failures": failures,
                                                       "error": f"{type(error).__name__}: {error}"[:300]})
        return "failed", _shown(contact)
    if profile is None:
        if contact is not None and contact.profile_due is not None:
            Contact(contact_id).update(actions=[Contact.profile_due.remove(), Contact.profile_due_at.remove()],
                                       condition=Contact.contact_id.exists())
        return "no profile on this platform", _shown(contact)
    actions = [Contact.channel.set(channel), Contact.account_id.set(account_id),
               Contact.platform_user_id.set(user_id), Contact.created_at.set(Contact.created_at | now),
               Contact.updated_at.set(now if active else Contact.updated_at | now),
               Contact.profile_checked_at.set(now), Contact.profile_failed_at.remove(),
               Contact.profile_failures.remove(), Contact.profile_due.set(PROFILE_DUE),
               Contact.profile_due_at.set(now + PROFILE_REFRESH_MS)]
    for attribute, value in ((Contact.display_name, profile.display_name), (Contact.handle, profile.handle),
                             (Contact.avatar_url, profile.avatar_url), (Contact.followers, profile.followers)):
        if value is not None:
            actions.append(attribute.set(value))
    Contact(contact_id).update(actions=actions)
    before = _shown(contact)
    shown = (profile.display_name or before[0], profile.handle or before[1],
             profile.followers if profile.followers is not None else before[2])
    _remember(f"profile:{contact_id}", (now, shown))
    return "looked up", shown


def _show(conversation_id: str, shown: Shown, only_if_unnamed: bool, renamed: bool, now: int) -> bool:
    """The profile's name, handle and follower count on a conversation (list rows read them
    there), and its name's words in search when they are new to it."""
    from chalicelib.inbox import search, store

    name, handle, followers = shown
    written = store.name_contact(conversation_id, name, handle, only_if_unnamed=only_if_unnamed, followers=followers)
    if written and renamed and (name or handle):
        search.write(conversation_id, search.name_tokens(name, handle), now)
    return written


def _show_on_new(conversation_id: str, shown: Shown) -> None:
    """A known name on a conversation that shows none yet (a new thread of a known contact),
    once per conversation per container."""
    if not shown[0] or _memory().get(f"named:{conversation_id}"):
        return
    _show(conversation_id, shown, only_if_unnamed=True, renamed=True, now=runtime.now_ms())
    _remember(f"named:{conversation_id}", True)


def refresh_due_profiles() -> Dict[str, int]:
    """The sweep (a schedule): profiles whose weekly refresh or retry is due, of customers who
    wrote within PROFILE_ACTIVE_MS, looked up again; at most SWEEP_MAX per run and for at most
    SWEEP_BUDGET_MS, the longest due first (the rest are next run's). One Query of the sparse
    `profile-due` index (only contacts whose profiles are looked up are in it; never a Scan) and
    one BatchGetItem; a customer who went quiet leaves the index (their next message brings them
    back). A refreshed profile that changed is shown on the contact's newest conversations.
    Never raises for one contact: a failure is retried later with backoff."""
    from chalicelib.logs import logger

    stats: Dict[str, int] = {"due": 0, "looked up": 0, "failed": 0, "inactive": 0, "left for later": 0}
    if not lookups_enabled():
        return dict(stats, lookups_off=1)
    started = runtime.now_ms()
    due = [(int(c.profile_due_at), c.contact_id) for c in Contact.by_profile_due.query(
        PROFILE_DUE, Contact.profile_due_at <= started, limit=SWEEP_MAX, page_size=SWEEP_MAX)]
    stats["due"] = len(due)
    found = {c.contact_id: c for c in Contact.batch_get([i for _, i in due])} if due else {}
    for position, (_, contact_id) in enumerate(sorted(due)):
        now = runtime.now_ms()
        if now - started >= SWEEP_BUDGET_MS:
            stats["left for later"] = len(due) - position
            break
        contact = found.get(contact_id)
        if contact is None or contact.profile_due_at is None or int(contact.profile_due_at) > now:
            continue  # deleted, or a message's lookup came first
        try:
            outcome = _refresh(contact, now)
        except Exception as error:  # noqa: BLE001 - one contact never stops the sweep
            logger.warning("profile refresh failed", extra={"error": f"{type(error).__name__}: {error}"[:300]})
            outcome = "failed"
        stats[outcome] = stats.get(outcome, 0) + 1
    return stats


def _refresh(contact: Contact, now: int) -> str:
    if now - int(contact.updated_at or 0) > PROFILE_ACTIVE_MS:
        try:
            contact.update(actions=[Contact.profile_due.remove(), Contact.profile_due_at.remove()],
                           condition=Contact.profile_due_at == contact.profile_due_at)
        except UpdateError as error:
            if getattr(error, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise  # else a message's lookup moved it meanwhile: the contact is active again
        return "inactive"
    before = _shown(contact)
    outcome, shown = _look_up(contact, contact.contact_id, contact.channel, contact.account_id,
                              contact.platform_user_id, now, active=False)
    if outcome == "looked up" and shown != before:
        for row in Conversation.by_contact.query(contact.contact_id, scan_index_forward=False,
                                                 limit=PROFILE_SHOWN_ON, page_size=PROFILE_SHOWN_ON):
            _show(row.conversation_id, shown, only_if_unnamed=False, renamed=shown[:2] != before[:2], now=now)
    return outcome


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
