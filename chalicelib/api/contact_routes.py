"""The contact panel's API: who the customer is across channels, everything they wrote to us,
and what agents noted about them (chalicelib.inbox.contacts does the reading and writing).

- GET /api/contacts/{id}: the person's identities (every channel handle / platform id linked to
  this contact), their conversations latest first (list rows), and the agents' notes.
- GET/POST /api/contacts/{id}/notes, PATCH /api/contacts/{id}/notes/{note_id}: private notes
  about the person (never sent to the customer); the author, a supervisor or an admin edits.
- POST /api/contacts/{id}/links {"contact_id"}: the other identity is the same person;
  DELETE /api/contacts/{id}/links: this identity stands alone again.
An identity is visible to an agent who may see at least one of its conversations; any other
answers 404 exactly like an unknown id. The panel shows only the person's visible identities,
their conversations the agent may see, and the notes kept under them, so a linked identity never
tells an agent about another team's conversations."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from chalice import BadRequestError, Blueprint, ForbiddenError, NotFoundError, Response

from chalicelib.api import common
from chalicelib.api.routes import authenticated

contact_api = Blueprint(__name__)


def _person(identity: Any, contact_id: str) -> Tuple[List[Any], List[Dict[str, Any]]]:
    """The person's identities and conversations the caller may see (404 unless `contact_id`
    itself has one)."""
    from chalicelib.api import access
    from chalicelib.inbox import contacts

    if not common.plausible_id(contact_id, 100):
        raise NotFoundError("no such contact")
    try:
        _, identities = contacts.person(contact_id)
    except contacts.Missing:
        raise NotFoundError("no such contact")
    rows = access.visible(identity, contacts.history([c.contact_id for c in identities]))
    seen = {row.get("contact_id") for row in rows}
    if contact_id not in seen:
        raise NotFoundError("no such contact")
    return [c for c in identities if c.contact_id in seen], rows


def _conflict(error: Exception) -> Response:
    return common.error(409, "Conflict", str(error))


@contact_api.route("/api/contacts/{contact_id}", methods=["GET"])
@authenticated
def contact(contact_id: str, identity: Any) -> Any:
    from chalicelib.api import views
    from chalicelib.channels.brands import unnamed_contact
    from chalicelib.inbox import contacts

    identities, rows = _person(identity, contact_id)
    shown = next((c for c in identities if c.contact_id == contact_id), identities[0])
    return {"id": contact_id, "display_name": shown.display_name or shown.handle
            or unnamed_contact(shown.channel, shown.platform_user_id),
            "identities": [contacts.identity_json(c) for c in identities],
            "conversations": [views.conversation_json(r) for r in rows],
            "notes": contacts.notes([c.contact_id for c in identities])}


@contact_api.route("/api/contacts/{contact_id}/notes", methods=["GET"])
@authenticated
def contact_notes(contact_id: str, identity: Any) -> Any:
    from chalicelib.inbox import contacts

    identities, _ = _person(identity, contact_id)
    return {"items": contacts.notes([c.contact_id for c in identities])}


@contact_api.route("/api/contacts/{contact_id}/notes", methods=["POST"])
@authenticated
def add_contact_note(contact_id: str, identity: Any) -> Any:
    from chalicelib.inbox import contacts

    body = common.json_body(contact_api.current_request)
    if set(body) - {"text"}:
        raise BadRequestError('send {"text": "..."}')
    text = common.clean_text(body.get("text"), "text", 1, contacts.NOTE_MAX, multiline=True)
    _person(identity, contact_id)
    note = contacts.add_note(contact_id, text, identity.agent_id, identity.name)
    return Response(contacts.note_json(note), status_code=201)


@contact_api.route("/api/contacts/{contact_id}/notes/{note_id}", methods=["PATCH"])
@authenticated
def edit_contact_note(contact_id: str, note_id: str, identity: Any) -> Any:
    from chalicelib.inbox import contacts

    body = common.json_body(contact_api.current_request)
    if set(body) - {"text", "version"} or "text" not in body:
        raise BadRequestError('send {"text": "...", "version": <the version you edited>}')
    text = common.clean_text(body.get("text"), "text", 1, contacts.NOTE_MAX, multiline=True)
    version = body.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        raise BadRequestError("version must be a positive integer")
    if not common.plausible_id(note_id, 40):
        raise NotFoundError("no such note")
    _person(identity, contact_id)
    try:
        note = contacts.edit_note(contact_id, note_id, text, identity.agent_id,
                                  identity.role in ("supervisor", "admin"), version)
    except contacts.Missing:
        raise NotFoundError("no such note")
    except PermissionError as error:
        raise ForbiddenError(str(error))
    except contacts.Refused as error:
        return _conflict(error)
    return contacts.note_json(note)


@contact_api.route("/api/contacts/{contact_id}/links", methods=["POST"])
@authenticated
def link_contact(contact_id: str, identity: Any) -> Any:
    """The other identity is the same person (both must be visible to the caller)."""
    from chalicelib.inbox import contacts

    body = common.json_body(contact_api.current_request)
    other = body.get("contact_id")
    if set(body) - {"contact_id"} or not common.plausible_id(other, 100):
        raise BadRequestError('send {"contact_id": "<the other identity>"}')
    _person(identity, contact_id)
    _person(identity, other)
    try:
        identities = contacts.link(contact_id, other)
    except contacts.Refused as error:
        return _conflict(error)
    return {"id": contact_id, "identities": [contacts.identity_json(c) for c in identities]}


@contact_api.route("/api/contacts/{contact_id}/links", methods=["DELETE"])
@authenticated
def unlink_contact(contact_id: str, identity: Any) -> Any:
    from chalicelib.inbox import contacts

    _person(identity, contact_id)
    try:
        identities = contacts.unlink(contact_id)
    except contacts.Refused as error:
        return _conflict(error)
    return {"id": contact_id, "identities": [contacts.identity_json(c) for c in identities]}
