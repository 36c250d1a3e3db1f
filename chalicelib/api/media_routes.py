"""GET /api/media/{conversation_id}/{message_id}/{index}: an attachment of a stored message,
fetched server-side with the account's token where the platform needs one and streamed back, so
the web page shows it from its own origin (its CSP allows img-src 'self' only).

- Telegram: getFile(file_id) with the bot token, then the file URL (the token is in both URLs:
  never logged, never in an error).
- WhatsApp: GET {graph}/{media_id} with WHATSAPP_TOKEN gives a short-lived URL, fetched with the
  same Bearer token.
- A file an agent sent: our own copy (chalicelib.outbound.storage), whatever the platform keeps.
- Meta (Messenger/Instagram) and other platforms: the attachment's CDN URL (expires; a 404/410
  from the CDN answers 404).
Only https URLs on the platforms' media hosts (or the configured base URLs of the local sandbox)
are fetched, exactly as checked, and only from public addresses (chalicelib.safe_url: no user
info, ports, backslashes; loopback, private and link-local addresses refused at connect time;
redirects never followed; at most MAX_BYTES (413) and TOTAL_SECONDS). The answer carries a safe
Content-Type (a short allow list; anything else is application/octet-stream),
`Content-Disposition` (inline for images/audio/video, attachment otherwise, with a cleaned file
name), nosniff and a sandboxing CSP."""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, Optional, Tuple

from chalice import BadRequestError, Blueprint, NotFoundError, Response

from chalicelib.api import common
from chalicelib.api.routes import authenticated
from chalicelib.logs import logger

media_api = Blueprint(__name__)

MAX_BYTES = 4 * 1024 * 1024  # Lambda answers stop at 6 MB, base64 included
TIMEOUT = (5.0, 20.0)  # connect, and each read
TOTAL_SECONDS = 30.0  # the whole body (a slow drip of bytes cannot hold the Lambda)
INLINE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "video/mp4", "video/webm", "audio/mpeg",
                "audio/ogg", "audio/mp4", "audio/aac", "audio/webm")
ATTACHMENT_TYPES = ("application/pdf",)
BINARY_TYPES = INLINE_TYPES + ATTACHMENT_TYPES + ("application/octet-stream",)
MEDIA_HOSTS = ("fbcdn.net", "fbsbx.com", "facebook.com", "cdninstagram.com", "whatsapp.net", "telegram.org",
               "twimg.com", "licdn.com", "linkedin.com")
TELEGRAM_DEFAULT = "https://api.telegram.org"
GRAPH_DEFAULT = "https://graph.facebook.com/v21.0"


class TooLarge(Exception):
    pass


class Unavailable(Exception):
    pass


def fetchable_url(url: Any) -> str:
    """The URL exactly as it will be fetched (chalicelib.safe_url.checked_url: parsed once, https
    on a platform media host, or under a configured sandbox base); Unavailable otherwise."""
    from chalicelib import safe_url

    try:
        return safe_url.checked_url(url, MEDIA_HOSTS, safe_url.configured_bases())
    except safe_url.Refused as why:
        raise Unavailable(str(why))


def _base(name: str, default: str) -> str:
    import os

    return (os.environ.get(name) or default).rstrip("/")


def fetch_public(url: str) -> Tuple[bytes, str]:
    """A platform CDN URL (a post's picture, an attachment link), fetched without a token."""
    from chalicelib.runtime import runtime

    return _fetch(runtime.fetch_http(), url)


def _fetch(http: Any, url: str, headers: Optional[Dict[str, str]] = None) -> Tuple[bytes, str]:
    import time

    deadline = time.monotonic() + TOTAL_SECONDS
    response = http.get(fetchable_url(url), headers=headers or {}, timeout=TIMEOUT, stream=True,
                         allow_redirects=False)  # a redirect is "unavailable": never followed
    try:
        if response.status_code != 200:
            raise Unavailable(f"platform answered {response.status_code}")
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > MAX_BYTES:
            raise TooLarge()
        chunks, size = [], 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > MAX_BYTES:
                raise TooLarge()
            if time.monotonic() > deadline:
                raise Unavailable(f"the platform took longer than {TOTAL_SECONDS} s")
            chunks.append(chunk)
        return b"".join(chunks), response.headers.get("Content-Type") or ""
    finally:
        response.close()


def _json(http: Any, url: str, headers: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    body, _ = _fetch(http, url, headers)
    import json

    try:
        found = json.loads(body)
    except ValueError:
        raise Unavailable("platform answered no JSON")
    if not isinstance(found, dict):
        raise Unavailable("platform answered no object")
    return found


def fetch_attachment(channel: str, account: Any, attachment: Dict[str, Any]) -> Tuple[bytes, str]:
    from chalicelib.channels.base import account_secrets
    from chalicelib.runtime import runtime

    http = runtime.fetch_http()
    refs = getattr(account, "credential_refs", None)
    if hasattr(refs, "as_dict"):
        refs = refs.as_dict()
    secrets = account_secrets({str(k): str(v) for k, v in dict(refs or {}).items() if isinstance(v, str)})
    if channel == "telegram" and isinstance(attachment.get("file_id"), str):
        token = secrets("TELEGRAM_BOT_TOKEN")
        if not token:
            raise Unavailable("no bot token for this account")
        base = _base("TELEGRAM_API_BASE_URL", TELEGRAM_DEFAULT)
        answer = _json(http, f"{base}/bot{token}/getFile?file_id={attachment['file_id']}")
        path = (answer.get("result") or {}).get("file_path") if answer.get("ok") else None
        if not isinstance(path, str) or ".." in path:
            raise Unavailable("getFile gave no file path")
        return _fetch(http, f"{base}/file/bot{token}/{path}")
    if channel == "whatsapp" and isinstance(attachment.get("media_id"), str):
        token = secrets("WHATSAPP_TOKEN")
        if not token:
            raise Unavailable("no WhatsApp token for this account")
        headers = {"Authorization": f"Bearer {token}"}
        if not re.fullmatch(r"[0-9A-Za-z_.-]{1,128}", attachment["media_id"]):
            raise Unavailable("not a media id")
        answer = _json(http, f"{_base('META_GRAPH_BASE_URL', GRAPH_DEFAULT)}/{attachment['media_id']}", headers)
        return _fetch(http, str(answer.get("url") or ""), headers)
    url = attachment.get("url")
    if isinstance(url, str):
        return _fetch(http, url)
    raise Unavailable("this attachment has nothing to fetch")


def safe_type(declared: str, attachment: Dict[str, Any]) -> str:
    kind = (declared or str(attachment.get("mime_type") or "")).split(";")[0].strip().lower()
    return kind if kind in INLINE_TYPES + ATTACHMENT_TYPES else "application/octet-stream"


def file_name(attachment: Dict[str, Any], content_type: str, index: int) -> str:
    name = attachment.get("file_name") or attachment.get("filename") or f"attachment-{index}"
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name))[:100].strip("._") or f"attachment-{index}"
    return name


@media_api.route("/api/media/{conversation_id}/{message_id}/{index}", methods=["GET"])
@authenticated
def media(conversation_id: str, message_id: str, index: str, identity: Any) -> Any:
    from chalicelib.accounts import find_account
    from chalicelib.inbox import store
    from chalicelib.outbound import storage

    if not index.isdigit() or int(index) > 50:
        raise BadRequestError("index is the attachment's position (0..50)")
    if len(conversation_id) > 100 or len(message_id) > 100:
        raise NotFoundError("no such attachment")
    state = store.get(conversation_id)
    if not common.can_see(identity, state):
        raise NotFoundError("no such attachment")
    found = store.message_by_id(conversation_id, message_id)
    attachments = (found.attachments or []) if found is not None else []
    if int(index) >= len(attachments) or not isinstance(attachments[int(index)], dict):
        raise NotFoundError("no such attachment")
    attachment = attachments[int(index)]
    key = attachment.get("storage_key")  # our copy of a file an agent sent (only replies carry one)
    if found is not None and found.direction == "out" and storage.belongs_to(key, conversation_id):
        return serve_fetched(lambda: _stored(str(key)), attachment, int(index), conversation_id)
    account = find_account(state.get("channel") or "", state.get("account_id") or "")
    return serve_fetched(lambda: fetch_attachment(state.get("channel") or "", account, attachment), attachment,
                         int(index), conversation_id)


@media_api.route("/api/conversations/{conversation_id}/contact/picture", methods=["GET"])
@authenticated
def contact_picture(conversation_id: str, identity: Any) -> Any:
    """The customer's profile picture (Messenger/Instagram profile, X `profile_image_url`, ...),
    fetched server-side from the platform's CDN and streamed back, so the page shows it from its own
    origin (no third-party image URL in the page); 404 when the contact has none."""
    from chalicelib.inbox import contacts, store

    if len(conversation_id) > 100:
        raise NotFoundError("no such conversation")
    state = store.get(conversation_id)
    if not common.can_see(identity, state):
        raise NotFoundError("no such conversation")
    contact = contacts.get(str(state.get("contact_id") or "")) if state.get("contact_id") else None
    picture = contact.avatar_url if contact is not None else None
    if not picture:
        raise NotFoundError("this contact has no picture")
    return serve_fetched(lambda: fetch_public(picture), {"file_name": "picture"}, 0, conversation_id)


def _stored(key: str) -> Tuple[bytes, str]:
    """A file an agent sent, from our own storage (chalicelib.outbound.storage)."""
    from chalicelib.outbound import storage

    try:
        return storage.read(key)
    except storage.Missing:
        raise Unavailable("our copy expired")


def serve_fetched(fetch: Callable[[], Tuple[bytes, str]], attachment: Dict[str, Any], index: int,
                  conversation_id: str) -> Any:
    """What `fetch` brought back from the platform, as our own answer (a safe type, inline only for
    media, nosniff, sandboxed), or the 404/413 that says why not (never the URL: tokens)."""
    try:
        body, declared = fetch()
    except TooLarge:
        from chalicelib.api.common import error

        return error(413, "TooLarge", f"the attachment is larger than {MAX_BYTES} bytes")
    except Unavailable as why:
        logger.info("attachment not fetched", extra={"conversation_id": conversation_id, "reason": str(why)[:200]})
        raise NotFoundError("the attachment is no longer available from the platform")
    except Exception as failure:  # noqa: BLE001 - timeouts, connection errors: never the URL (tokens)
        logger.warning("attachment fetch failed", extra={"conversation_id": conversation_id,
                                                         "error": type(failure).__name__})
        raise NotFoundError("the attachment could not be fetched from the platform right now")
    content_type = safe_type(declared, attachment)
    disposition = "inline" if content_type in INLINE_TYPES else "attachment"
    return Response(body=body, status_code=200, headers={
        "Content-Type": content_type,
        "Content-Disposition": f'{disposition}; filename="{file_name(attachment, content_type, index)}"',
        "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=300"})
