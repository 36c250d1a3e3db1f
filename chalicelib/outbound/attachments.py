"""Attachments an agent sends: checked by content and by what the platform takes, kept in our
own storage first (chalicelib.outbound.storage: the attachments bucket), then handed to each
platform the way it takes files, and referenced by the reply.

- WhatsApp: `POST /{phone-number-id}/media` at upload time, then sent by the media id;
- Messenger: the Attachment Upload API (`POST /me/message_attachments`) at upload time, then
  sent by the reusable `attachment_id` (a file message carries no text);
- X: `POST /2/media/upload` at upload time (`dm_image` for a DM, `tweet_image` for a reply),
  then the DM's `attachments` / the post's `media.media_ids` (X takes images only);
- Instagram DMs and Telegram: by URL at send time: the outbox worker hands the adapter a
  pre-signed GET URL of our copy (Instagram `attachment.payload.url`, a file message without
  text; Telegram `sendPhoto` / `sendDocument` with the text as caption).
Uploading to the platform at upload time means a refusal (token, format) reaches the agent at
once, with the platform's reason. The upload answers an *attachment token*: type, size, file
name, our storage key and the platform's media id, bound to the conversation and signed with the
deployment's AUTH_TOKEN_SECRET (purpose-prefixed), valid a day. A reply carrying it
(`"attachment": "<token>"`) is then stored, queued and sent by the outbox like any reply; nothing
is sent before the reply is stored.

Checked here, before anything is stored or uploaded: the conversation can carry a file at all
(`refusal`: no comment thread can, nor a channel without a file send), the type by its magic
bytes (JPEG, PNG, PDF; never the file name or the Content-Type the browser guessed) and whether
this platform takes it, and the size: at most MAX_BYTES (what a Lambda request can carry) and the
platform's own limit for that type (PLATFORM_LIMITS).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import unicodedata
from typing import Any, Dict, List, Mapping, Optional

from chalicelib.outbound.policy import Refused

MAX_BYTES = 4 * 1024 * 1024
MB = 1024 * 1024
#: mime type -> the platform's message type
TYPES = {"image/jpeg": "image", "image/png": "image", "application/pdf": "document"}
#: channel -> mime type -> the largest file the platform takes (its documentation's limits; every
#: file is also at most MAX_BYTES). A type missing here is one the platform does not take.
PLATFORM_LIMITS: Dict[str, Dict[str, int]] = {
    "whatsapp": {"image/jpeg": 5 * MB, "image/png": 5 * MB, "application/pdf": 100 * MB},
    "messenger": {"image/jpeg": 25 * MB, "image/png": 25 * MB, "application/pdf": 25 * MB},
    "instagram": {"image/jpeg": 8 * MB, "image/png": 8 * MB, "application/pdf": 25 * MB},
    # by URL: Telegram fetches photos up to 5 MB, documents (PDF, ZIP) up to 20 MB
    "telegram": {"image/jpeg": 5 * MB, "image/png": 5 * MB, "application/pdf": 20 * MB},
    "x": {"image/jpeg": 5 * MB, "image/png": 5 * MB},  # images only (no documents on X)
}
SUPPORTED = tuple(PLATFORM_LIMITS)
#: channel -> the thread kinds whose replies can carry a file (a comment reply never can)
THREAD_KINDS = {"whatsapp": ("dm",), "messenger": ("dm",), "instagram": ("dm",), "telegram": ("dm", "group"),
                "x": ("dm", "mention")}
#: the platforms the outbox hands a pre-signed URL of our copy (chalicelib.outbound.worker)
BY_URL = ("instagram", "telegram")
#: the text sent with a file: None = the channel's own reply limits (X), 0 = none (the file goes alone)
CAPTION_LIMITS: Dict[str, Optional[int]] = {"whatsapp": 1024, "messenger": 0, "instagram": 0, "telegram": 1024,
                                            "x": None}
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


def refusal(channel: str, thread_kind: str) -> Optional[str]:
    """Why a reply in this conversation cannot carry a file, or None when it can (the composer
    shows the same rules before any upload: composer_rules)."""
    from chalicelib.channels.brands import brand

    if channel not in SUPPORTED:
        return (f"{brand(channel) if channel else 'this channel'} replies cannot carry files "
                f"(files go out on: {', '.join(brand(c) for c in SUPPORTED)})")
    if thread_kind not in THREAD_KINDS[channel]:
        return (f"{brand(channel)} {thread_kind or 'thread'} replies cannot carry a file "
                f"(only {' and '.join(THREAD_KINDS[channel])} replies can)")
    return None


def composer_rules() -> Dict[str, Any]:
    """What the composer (static/attach.js RULES) must know before an upload, by channel."""
    return {channel: {"kinds": list(THREAD_KINDS[channel]), "types": sorted(PLATFORM_LIMITS[channel]),
                      "max_bytes": min([MAX_BYTES] + list(PLATFORM_LIMITS[channel].values())),
                      "caption": CAPTION_LIMITS[channel] != 0} for channel in SUPPORTED}


def check_upload(channel: str, data: bytes, thread_kind: str = "dm") -> str:
    """The mime type of an upload this conversation can send; Refused (422) otherwise."""
    why = refusal(channel, thread_kind)
    if why:
        raise Refused(why, "attachments_not_supported")
    if not data:
        raise Refused("the upload is empty", "bad_attachment")
    mime = sniff(data)
    if mime is None:
        raise Refused("only JPEG and PNG images and PDF documents can be sent (checked by content)",
                      "attachment_type")
    limits = PLATFORM_LIMITS[channel]
    if mime not in limits:
        kinds = " and ".join(sorted({TYPES[m] + "s" for m in limits}))
        raise Refused(f"{channel} takes only {kinds}; this file is {mime}", "attachment_type")
    limit = min(MAX_BYTES, limits[mime])
    if len(data) > limit:
        raise Refused(f"the file is {len(data)} bytes; at most {limit} can be sent on {channel}",
                      "attachment_too_large")
    return mime


def upload(state: Mapping[str, Any], data: bytes, filename: Any) -> Dict[str, Any]:
    """Check `data`, hand it to the platform of the conversation `state`, and answer the
    attachment ({"type", "mime_type", "filename", "size", "media_id"}) with its signed "token"."""
    from chalicelib.accounts import credential_refs, find_account
    from chalicelib.channels.base import SendError, account_secrets
    from chalicelib.outbound import storage

    channel, thread_kind = str(state.get("channel") or ""), str(state.get("thread_kind") or "dm")
    mime = check_upload(channel, data, thread_kind)
    account = find_account(channel, str(state.get("account_id") or ""))
    if account is None or not account.enabled:
        raise UploadFailed(f"the {channel} account {state.get('account_id')} is not connected")
    name = clean_filename(filename, mime)
    secrets = account_secrets(credential_refs(account))
    conversation_id = str(state["conversation_id"])
    try:
        key = storage.put(conversation_id, data, mime, name)
    except Exception as error:  # noqa: BLE001 - S3 unavailable: the agent tries again
        raise UploadFailed(f"our file storage did not take it ({type(error).__name__}); try again")
    attachment: Dict[str, Any] = {"type": TYPES[mime], "mime_type": mime, "filename": name, "size": len(data),
                                  "storage_key": key}
    try:
        media_id = _platform_upload(channel, thread_kind, str(state["account_id"]), data, mime, name, secrets)
    except SendError as error:
        raise UploadFailed(error.reason)
    if media_id:
        attachment["media_id"] = media_id
    return dict(attachment, token=sign(conversation_id, attachment))


def _platform_upload(channel: str, thread_kind: str, account_id: str, data: bytes, mime: str, name: str,
                     secrets: Any) -> Optional[str]:
    """The platform's media id for platforms that take the file before the message (None for
    the ones that fetch it by URL when the reply is sent)."""
    from chalicelib.channels import meta, x
    from chalicelib.runtime import runtime

    if channel == "messenger":
        return meta.upload_messenger_attachment(data, mime, name, secrets, runtime.http())
    if channel == "whatsapp":
        return meta.upload_whatsapp_media(account_id, data, mime, name, secrets, runtime.http())
    if channel == "x":
        category = "dm_image" if thread_kind == "dm" else "tweet_image"
        return x.upload_media(data, mime, name, category, secrets, runtime.http())
    return None


class Gone(Exception):
    """Our copy of a file is no longer stored (objects expire): the reply cannot carry it."""


def for_sending(channel: str, attachments: Optional[List[Dict[str, Any]]]) -> Optional[List[Dict[str, Any]]]:
    """The attachments as the adapter sends them: for platforms that fetch files by URL, each
    with a fresh pre-signed `url` of our copy (never stored); Gone when the copy expired."""
    if not attachments or channel not in BY_URL:
        return attachments
    from chalicelib.outbound import storage

    ready = []
    for attachment in attachments:
        key = attachment.get("storage_key") if isinstance(attachment, dict) else None
        if not isinstance(key, str) or not storage.exists(key):
            raise Gone("the file is no longer in our storage (files are kept 30 days); attach it again")
        ready.append(dict(attachment, url=storage.download_url(key)))
    return ready


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


def check_caption(channel: str, text: Optional[str], thread_kind: str = "dm") -> None:
    limit = CAPTION_LIMITS.get(channel)
    if text and limit == 0:
        raise Refused(f"a {channel} file goes without text: send the text as its own reply", "caption_not_supported")
    if text and limit and len(text) > limit:
        raise Refused(f"a caption holds at most {limit} characters on {channel}; this one has {len(text)}",
                      "text_too_long")
    if text and limit is None:
        from chalicelib.outbound import policy

        policy.check_length(text, channel, thread_kind, False)


def _mac(body: str) -> str:
    from chalicelib.runtime import runtime

    secret = runtime.secret("AUTH_TOKEN_SECRET")
    if not secret:  # never a token anyone could sign
        raise Refused("attachments are unavailable: AUTH_TOKEN_SECRET is not configured", "attachments_unavailable")
    key = hashlib.sha256(_PURPOSE + secret.encode()).digest()
    return base64.urlsafe_b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest()).decode().rstrip("=")
