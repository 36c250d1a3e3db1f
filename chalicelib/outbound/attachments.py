"""Attachments an agent sends: checked by content, handed to the platform's own media store at
upload time, then referenced by the reply.

Why the platform's store and not ours: WhatsApp takes a file once (`POST /{phone-number-id}/media`)
and sends it by the id it answers for 30 days, Messenger likewise (Attachment Upload API,
`POST /me/message_attachments`, a reusable `attachment_id`), so the bytes never need to live in our tables (a
DynamoDB item holds 400 KB) or in a bucket the stack would have to add, secure and expire. The
upload answers an *attachment token*: the platform's media id, type, size and file name, bound to
the conversation and signed with the deployment's AUTH_TOKEN_SECRET (purpose-prefixed), valid a
day. A reply carrying it (`"attachment": "<token>"`) is then stored, queued and sent by the outbox
like any reply, with the text as its caption; nothing is sent before the reply is stored.

Checked here: at most MAX_BYTES (what a Lambda request can carry, under WhatsApp's 5 MB image
limit), and the type by its magic bytes (JPEG, PNG, PDF), never by the file name or the
Content-Type the browser guessed. Channels whose send paths cannot take a file yet answer 422
before any upload (SUPPORTED names the ones that can).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import unicodedata
from typing import Any, Dict, Mapping, Optional

from chalicelib.outbound.policy import Refused

MAX_BYTES = 4 * 1024 * 1024
#: mime type -> the platform's message type
TYPES = {"image/jpeg": "image", "image/png": "image", "application/pdf": "document"}
SUPPORTED = ("whatsapp", "messenger")
CAPTION_LIMITS = {"whatsapp": 1024, "messenger": 0}  # a Messenger file message carries no text
TOKEN_TTL_MS = 24 * 3600_000
TOKEN_MAX = 2048
FILENAME_MAX = 120
_PURPOSE = b"socialinbox attachment v1|"


class UploadFailed(Exception):
    """The platform refused or did not take the file; `reason` says why (no token in it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sniff(data: bytes) -> Optional[str]:
    """The mime type the bytes are (by their signature), if one we send; None otherwise."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:5] == b"%PDF-":
        return "application/pdf"
    return None


def clean_filename(name: Any, mime: str) -> str:
    """A file name safe to hand on: printable, no path, bounded, with the extension of its type."""
    text = unicodedata.normalize("NFC", name) if isinstance(name, str) else ""
    text = re.sub(r"[^\w .()-]", "_", text.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")[:FILENAME_MAX]
    extension = {"image/jpeg": ".jpg", "image/png": ".png", "application/pdf": ".pdf"}[mime]
    stem = text.rsplit(".", 1)[0] if "." in text else text
    return (stem or "attachment")[:FILENAME_MAX - len(extension)] + extension


def check_upload(channel: str, data: bytes) -> str:
    """The mime type of an upload the channel can send; Refused (422) otherwise."""
    if channel not in SUPPORTED:
        raise Refused(f"{channel or 'this channel'} replies cannot carry files from the inbox yet "
                      f"(files go out on: {', '.join(SUPPORTED)})", "attachments_not_supported")
    if not data:
        raise Refused("the upload is empty", "bad_attachment")
    if len(data) > MAX_BYTES:
        raise Refused(f"the file is {len(data)} bytes; at most {MAX_BYTES} can be sent", "attachment_too_large")
    mime = sniff(data)
    if mime is None:
        raise Refused("only JPEG and PNG images and PDF documents can be sent (checked by content)",
                      "attachment_type")
    return mime


def upload(state: Mapping[str, Any], data: bytes, filename: Any) -> Dict[str, Any]:
    """Check `data`, hand it to the platform of the conversation `state`, and answer the
    attachment ({"type", "mime_type", "filename", "size", "media_id"}) with its signed "token"."""
    from chalicelib.accounts import credential_refs, find_account
    from chalicelib.channels.base import SendError, account_secrets
    from chalicelib.channels import meta
    from chalicelib.runtime import runtime

    channel = str(state.get("channel") or "")
    mime = check_upload(channel, data)
    account = find_account(channel, str(state.get("account_id") or ""))
    if account is None or not account.enabled:
        raise UploadFailed(f"the {channel} account {state.get('account_id')} is not connected")
    name = clean_filename(filename, mime)
    secrets = account_secrets(credential_refs(account))
    try:
        if channel == "messenger":
            media_id = meta.upload_messenger_attachment(data, mime, name, secrets, runtime.http())
        else:
            media_id = meta.upload_whatsapp_media(str(state["account_id"]), data, mime, name, secrets, runtime.http())
    except SendError as error:
        raise UploadFailed(error.reason)
    attachment = {"type": TYPES[mime], "mime_type": mime, "filename": name, "size": len(data), "media_id": media_id}
    return dict(attachment, token=sign(str(state["conversation_id"]), attachment))


def sign(conversation_id: str, attachment: Mapping[str, Any]) -> str:
    from chalicelib.runtime import runtime

    payload = {"c": conversation_id, "t": runtime.now_ms(), "a": dict(attachment)}
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{body}.{_mac(body)}"


def verify(token: Any, conversation_id: str) -> Dict[str, Any]:
    """The attachment a token of this conversation names; Refused when it is not one we signed,
    belongs to another conversation, or is older than TOKEN_TTL_MS."""
    from chalicelib.runtime import runtime

    bad = Refused("attachment must be the token the upload answered (upload the file again)", "bad_attachment")
    if not isinstance(token, str) or len(token) > TOKEN_MAX or token.count(".") != 1:
        raise bad
    body, mac = token.split(".")
    if not hmac.compare_digest(_mac(body), mac):
        raise bad
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        raise bad
    if payload.get("c") != conversation_id:
        raise bad
    if not 0 <= runtime.now_ms() - int(payload.get("t") or 0) <= TOKEN_TTL_MS:
        raise Refused("the uploaded file expired; upload it again", "attachment_expired")
    return dict(payload["a"])


def check_caption(channel: str, text: Optional[str]) -> None:
    limit = CAPTION_LIMITS.get(channel)
    if text and limit == 0:
        raise Refused(f"a {channel} file goes without text: send the text as its own reply", "caption_not_supported")
    if text and limit and len(text) > limit:
        raise Refused(f"a caption holds at most {limit} characters on {channel}; this one has {len(text)}",
                      "text_too_long")


def _mac(body: str) -> str:
    from chalicelib.runtime import runtime

    secret = runtime.secret("AUTH_TOKEN_SECRET")
    if not secret:  # never a token anyone could sign
        raise Refused("attachments are unavailable: AUTH_TOKEN_SECRET is not configured", "attachments_unavailable")
    key = hashlib.sha256(_PURPOSE + secret.encode()).digest()
    return base64.urlsafe_b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest()).decode().rstrip("=")
