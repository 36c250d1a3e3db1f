"""POST /api/conversations/{id}/messages: an agent's reply (sent by the outbox worker) or private
note (never sent). Stored first, answered 202 with the message (delivery_status "queued"), then
queued for sending.

Body: {"text", "kind": "reply" | "note", "client_id", optional "template" (WhatsApp, outside the
24 h window: {"name", "language", "components"} sent as is, or {"name", "language", "variables":
{"header": [...], "body": [...]}} filled into the approved template, whose text is then the
message's text), "private_reply" (a DM answering a Facebook/Instagram comment), "after_message_id" /
"seen_version" (what the agent saw; 409 when the thread moved on, unless "confirm": true)}.

Answers: 202 stored and queued; 200 a repeat of the same client_id (the first call's message);
400 malformed; 404 no such conversation; 409 outdated thread, or a client_id reused for another
text; 422 a channel rule refuses it (window closed, template required, too long) with a reason;
503 stored but not queued yet (retry with the same client_id).
"""
from __future__ import annotations

from typing import Any, Dict

from chalicelib.api.common import clean_text, error, json_body, plausible_id
from chalice import BadRequestError, Blueprint, NotFoundError, Response

from chalicelib.api.routes import authenticated

replies = Blueprint(__name__)

FIELDS = {"text", "kind", "client_id", "template", "attachment", "private_reply", "after_message_id", "seen_version",
          "confirm"}
MAX_BODY_TEXT = 50_000  # characters: far above every channel's limit; refused before any work




def _body() -> Dict[str, Any]:
    return json_body(replies.current_request)


@replies.route("/api/conversations/{conversation_id}/messages", methods=["POST"])
@authenticated
def post_message(conversation_id: str, identity: Any) -> Any:
    from chalicelib.api import access
    from chalicelib.inbox import outbound, store
    from chalicelib.outbound import policy
    from chalicelib.runtime import runtime

    state = access.require_conversation(identity, conversation_id)  # 404 first, as for an unknown id
    body = _body()
    unknown = set(body) - FIELDS
    if unknown:
        raise BadRequestError(f"unknown field(s): {', '.join(sorted(unknown)[:5])}; send text, kind, client_id")
    kind = body.get("kind", "reply")
    if kind not in ("reply", "note"):
        raise BadRequestError("kind must be 'reply' or 'note'")
    client_id = body.get("client_id")
    if not plausible_id(client_id, policy.CLIENT_ID_MAX) or not client_id.strip():
        raise BadRequestError(f"client_id is required: a string of 1 to {policy.CLIENT_ID_MAX} characters")
    text = body.get("text")
    text = None if text is None else clean_text(text, "text", 0, MAX_BODY_TEXT, multiline=True)
    if text is not None and not text.strip():
        text = None
    for flag in ("private_reply", "confirm"):
        if body.get(flag) not in (None, True, False):
            raise BadRequestError(f"{flag} must be true or false")
    after = body.get("after_message_id")
    if after is not None and not plausible_id(after):
        raise BadRequestError("after_message_id must be a message id")
    seen = body.get("seen_version")
    if seen is not None and (isinstance(seen, bool) or not isinstance(seen, int) or seen < 0):
        raise BadRequestError("seen_version must be a non-negative integer")
    template_raw = body.get("template")
    attachment_raw = body.get("attachment")
    if kind == "note" and (template_raw is not None or body.get("private_reply") or attachment_raw is not None):
        raise BadRequestError("a note is text only (no template, attachment or private_reply)")
    if attachment_raw is not None and (template_raw is not None or body.get("private_reply")):
        raise BadRequestError("an attachment goes with a plain reply (no template, no private_reply)")
    if text is None and template_raw is None and attachment_raw is None:
        raise BadRequestError("text is required")
    filled = None
    if kind == "reply" and isinstance(template_raw, dict) and "variables" in template_raw:
        if text is not None:
            raise BadRequestError("a template with variables carries its own text: leave text out")
        from chalicelib.outbound import templates

        try:
            filled, text = templates.resolve(state, policy.check_template(template_raw))
        except policy.Refused as refused:
            return error(422, "UnprocessableEntity", refused.reason, reason=refused.code)
        except templates.Unavailable as why:
            return error(503, "TemplatesUnavailable", f"the WhatsApp templates could not be read: {why.reason}")

    # A repeat of the same client_id is the same message, whatever happened since.
    existing = outbound.find_by_client(conversation_id, client_id)
    if existing is not None:
        if not outbound.same_message(existing, kind, text):
            return _client_id_reused()
        if existing.delivery_status == "queued" and not existing.send_claim:
            if not _enqueue(existing):
                return error(503, "NotQueued", "the reply is stored but not queued yet; "
                                                 "send it again with the same client_id", message=_json(existing))
        return Response(_json(existing), status_code=200, headers={"Content-Type": "application/json"})

    if not body.get("confirm"):
        outdated = None
        if after is not None and state.get("last_message_id") not in (None, after):
            outdated = "a newer message arrived after the one you answered"
        elif seen is not None and int(state.get("version") or 0) > seen and state.get("last_message_direction") == "in":
            outdated = "the customer wrote again since you opened the thread"
        if outdated:
            return error(409, "OutdatedThread", outdated + '; read it, or send again with "confirm": true',
                           current={"last_message_id": state.get("last_message_id"),
                                    "version": int(state.get("version") or 0)})

    plan = policy.Plan()
    attachments = None
    try:
        if attachment_raw is not None:
            from chalicelib.outbound import attachments as files

            attachments = [files.verify(attachment_raw, conversation_id)]
            files.check_caption(state.get("channel") or "", text, state.get("thread_kind") or "dm")
        if kind == "reply":
            template = filled or (policy.check_template(template_raw) if template_raw is not None else None)
            from chalicelib.outbound import summons

            plan = policy.plan(summons.with_summons(state), runtime.now_ms(), text is not None or attachments is not None,
                               template, bool(body.get("private_reply")))
            if text is not None and template is None and attachments is None:
                policy.check_length(text, state.get("channel") or "", state.get("thread_kind") or "dm",
                                    plan.private_reply)
        elif len(text or "") > policy.NOTE_LIMIT:
            raise policy.Refused(f"a note holds at most {policy.NOTE_LIMIT} characters", "text_too_long")
    except policy.Refused as refused:
        return error(422, "UnprocessableEntity", refused.reason, reason=refused.code)

    reply_to = None
    if kind == "reply" and (state.get("thread_kind") in ("comment", "mention") or plan.private_reply):
        reply_to = outbound.last_customer_message_id(conversation_id)
    draft = outbound.Draft(conversation_id, kind, text if plan.template is None else text, client_id,
                           identity.agent_id, send_tag=plan.tag, template=plan.template,
                           private_reply=plan.private_reply, reply_to=reply_to, attachments=attachments)
    try:
        message, created = outbound.create(draft, state)
    except outbound.ClientIdReused:
        return _client_id_reused()  # a concurrent call with another text stored its message first
    except store.NotFound:
        raise NotFoundError("no such conversation")
    except store.Busy:
        return error(503, "Busy", "the conversation is changing right now; send again with the same client_id")
    if message.direction == "out" and message.delivery_status == "queued" and not message.send_claim:
        if not _enqueue(message):
            return error(503, "NotQueued", "the reply is stored but not queued yet; "
                                             "send it again with the same client_id", message=_json(message))
    return Response(_json(message), status_code=202 if created else 200, headers={"Content-Type": "application/json"})


@replies.route("/api/conversations/{conversation_id}/templates", methods=["GET"])
@authenticated
def list_templates(conversation_id: str, identity: Any) -> Any:
    """The approved templates the composer offers: 200 {"items"}; 422 not a WhatsApp
    conversation; 503 when Meta cannot be asked (the reason says why)."""
    from chalicelib.api import access
    from chalicelib.outbound import policy, templates

    state = access.require_conversation(identity, conversation_id)
    try:
        items = templates.for_conversation(state)
    except policy.Refused as refused:
        return error(422, "UnprocessableEntity", refused.reason, reason=refused.code)
    except templates.Unavailable as why:
        return error(503, "TemplatesUnavailable", f"the WhatsApp templates could not be read: {why.reason}")
    return {"items": items}


UPLOAD_TYPES = ["application/octet-stream", "image/jpeg", "image/png", "application/pdf"]


@replies.route("/api/conversations/{conversation_id}/attachments", methods=["POST"], content_types=UPLOAD_TYPES)
@authenticated
def upload_attachment(conversation_id: str, identity: Any) -> Any:
    """The file in the body (`?filename=` optional), checked by content and handed to the
    platform (chalicelib.outbound.attachments): 201 the attachment with the token a reply sends it
    by; 413 too large; 422 a type or channel that cannot be sent; 502 the platform refused it."""
    from chalicelib.api import access
    from chalicelib.outbound import attachments, policy

    state = access.require_conversation(identity, conversation_id)
    request = replies.current_request
    data = request.raw_body or b""
    filename = (request.query_params or {}).get("filename")
    if filename is not None:
        filename = clean_text(filename, "filename", 0, 255)
    if len(data) > attachments.MAX_BYTES:
        return error(413, "TooLarge", f"the file is {len(data)} bytes; at most {attachments.MAX_BYTES} can be sent")
    try:
        found = attachments.upload(dict(state, conversation_id=conversation_id), data, filename)
    except policy.Refused as refused:
        return error(422, "UnprocessableEntity", refused.reason, reason=refused.code)
    except attachments.UploadFailed as failed:
        return error(502, "UploadFailed", f"the platform did not take the file: {failed.reason}")
    return Response(found, status_code=201, headers={"Content-Type": "application/json"})


def _client_id_reused() -> Any:
    return error(409, "ClientIdReused", "this client_id was already used for a different message")


def _json(message: Any) -> Dict[str, Any]:
    from chalicelib.api.views import message_json

    shown = message_json(message)
    shown.update({"kind": "note" if message.direction == "note" else "reply", "client_id": message.client_id,
                  "tag": message.send_tag, "template": message.template,
                  "private_reply": bool(message.private_reply)})
    return shown


def _enqueue(message: Any) -> bool:
    from chalicelib.logs import describe_error, logger
    from chalicelib.outbound.worker import enqueue

    try:
        enqueue(message.conversation_id, message.sort_key)
        return True
    except Exception as error:  # noqa: BLE001 - stored; the client retries with its client_id
        logger.error("reply stored but not queued", extra={"conversation_id": message.conversation_id,
                                                           "error": describe_error(error)})
        return False
