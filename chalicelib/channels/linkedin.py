"""LinkedIn webhooks (/webhooks/linkedin): comments and mentions on an organization's Page.

Sources (Microsoft Learn, LinkedIn API guide): "Webhooks" -- validation and signatures
(https://learn.microsoft.com/en-us/linkedin/shared/api-guide/webhook-validation), and
"Organization Social Action Notifications"
(https://learn.microsoft.com/en-us/linkedin/marketing/community-management/organizations/organization-social-action-notifications).

Handshake: `GET ?challengeCode=<uuid>` is answered 200 `application/json`
`{"challengeCode": code, "challengeResponse": hex(HMAC-SHA256(client secret, code))}` (LinkedIn
re-validates every 2 hours; 3 failures block the endpoint). The answer equals the accepted
signature of a body "hmacsha256=" + B (code = that) or of the bare body (code = B), so only codes
shaped like LinkedIn's (a UUID, which is neither JSON nor "hmacsha256=...") are answered.

Verification: `X-LI-Signature`. The docs say the value is the HMAC-SHA256 (client secret) of the
POST body *prefixed by* `hmacsha256=`, hex-encoded. We accept exactly that: hex of
HMAC(secret, "hmacsha256=" + raw body). Because the sentence is read two ways in the wild, the
header may also carry the `hmacsha256=` prefix itself, and a digest of the bare raw body is
accepted too; every form needs the client secret.

Payload: `{"type": "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS", "notifications": [...]}`, batched
(up to 10). Each notification: notificationId, organizationalEntity (our account: the
organization URN), action (LIKE, COMMENT, SHARE, SHARE_MENTION, ADMIN_COMMENT, COMMENT_EDIT,
COMMENT_DELETE), sourcePost, decoratedSourcePost, generatedActivity (the comment or share URN),
decoratedGeneratedActivity (`comment` or `share`: entity, owner, text, ...), lastModifiedAt (ms).
Comments become "comment" threads, one per post per author, the post URN as subject; LinkedIn
dedupes by notificationId, we by the comment URN, which edits and deletions also name.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Iterator, List, Mapping, Optional

from chalicelib.channels import signing
from chalicelib.channels.base import (
    ChannelAdapter,
    ContactRef,
    EditEvent,
    Event,
    IgnoredEvent,
    MessageEvent,
    ParseProblem,
    RemoveEvent,
    WebhookRejected,
    WebhookReply,
    WebhookRequest,
    as_int,
    as_list,
    optional_str,
    require_str,
    split_list,
    require_secret,
)
from chalicelib.config import SecretLookup

CHANNEL = "linkedin"
SIGNATURE_HEADER = "X-LI-Signature"
SIGNATURE_PREFIX = "hmacsha256="
EVENT_TYPE = "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS"
COMMENT_ACTIONS = ("COMMENT", "ADMIN_COMMENT")
# LinkedIn's challengeCode is a UUID: never a JSON document, never "hmacsha256=" + anything.
CHALLENGE_CODE_SHAPE = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
# Comment URNs appear both as urn:li:comment:(urn:li:activity:1,2) and urn:li:comment:(activity:1,2).
SHORT_COMMENT_URN = re.compile(r"^urn:li:comment:\((?!urn:)([A-Za-z]+):([^,()]+),([^()]+)\)$")


class LinkedInAdapter(ChannelAdapter):
    name = "linkedin"
    channels = ("linkedin",)

    def handshake(self, request: WebhookRequest, secrets: SecretLookup) -> WebhookReply:
        code = request.query.get("challengeCode")
        if not code:
            return WebhookReply(400, {"error": "challengeCode is required"}, "application/json")
        if not is_challenge_code(code):
            return WebhookReply(400, {"error": "challengeCode must be a UUID"}, "application/json")
        secret = require_secret(secrets, "LINKEDIN_CLIENT_SECRET")
        return WebhookReply(200, {"challengeCode": code, "challengeResponse": challenge_response(secret, code)},
                            "application/json")

    def verify(self, request: WebhookRequest, secrets: SecretLookup) -> None:
        secret = require_secret(secrets, "LINKEDIN_CLIENT_SECRET")
        header = (request.header(SIGNATURE_HEADER) or "").strip().lower()
        if header.startswith(SIGNATURE_PREFIX):
            header = header[len(SIGNATURE_PREFIX):]
        if not header:
            raise WebhookRejected(401, "missing X-LI-Signature")
        documented = signature(secret, request.raw_body)
        bare = signing.hmac_sha256_hex(secret, request.raw_body)
        if not (signing.same(documented, header) | signing.same(bare, header)):  # both compared, always
            raise WebhookRejected(401, "invalid X-LI-Signature")

    def signed_headers(self, raw_body: bytes, secrets: SecretLookup) -> Dict[str, str]:
        return {SIGNATURE_HEADER: signature(secrets("LINKEDIN_CLIENT_SECRET") or "", raw_body)}

    def ack(self) -> WebhookReply:
        return WebhookReply(200, "", "text/plain")

    demo_accounts = (
        ("linkedin", "urn:li:organization:10000001", "Acme Coffee (LinkedIn Page)"),
    )

    def demo_deliveries(self, now_ms: int) -> List[Any]:
        return _demo_deliveries(now_ms)

    def split(self, payload: Any) -> List[Any]:
        return split_list(payload, "notifications")

    def parse(self, payload: Any, context: Mapping[str, str]) -> Iterator[Event]:
        if not isinstance(payload, dict):
            yield ParseProblem(CHANNEL, "delivery is not a JSON object", payload)
            return
        kind = payload.get("type")
        if kind is not None and kind != EVENT_TYPE:
            yield IgnoredEvent(CHANNEL, f"notification type {kind!r} is not inbox material")
            return
        notifications = payload.get("notifications")
        if not isinstance(notifications, list):
            yield ParseProblem(CHANNEL, "delivery has no notifications[] list", payload)
            return
        for notification in notifications:
            try:
                yield _notification(notification)
            except Exception as exc:  # noqa: BLE001 - one bad notification must not sink the batch
                account = optional_str(notification, "organizationalEntity")
                yield ParseProblem(CHANNEL, f"unreadable notification: {exc}", notification, account)


def is_challenge_code(code: str) -> bool:
    """Whether a challengeCode may be answered: its HMAC doubles as a POST signature, so only the
    UUID shape LinkedIn sends is signed (it can be neither a JSON body nor "hmacsha256=" + body)."""
    return CHALLENGE_CODE_SHAPE.fullmatch(code) is not None


def challenge_response(secret: str, code: str) -> str:
    """Hex HMAC-SHA256 of the challenge code keyed with the client secret."""
    return signing.hmac_sha256_hex(secret, code.encode("utf-8"))


def signature(secret: str, raw_body: bytes) -> str:
    """The documented X-LI-Signature: hex HMAC-SHA256 of "hmacsha256=" + the raw body."""
    return signing.hmac_sha256_hex(secret, SIGNATURE_PREFIX.encode("ascii") + raw_body)


def normalize_comment_urn(urn: str) -> str:
    """One spelling per comment, so a COMMENT and its later EDIT/DELETE name the same message."""
    match = SHORT_COMMENT_URN.match(urn)
    if match:
        kind, post_id, comment_id = match.groups()
        return f"urn:li:comment:(urn:li:{kind}:{post_id},{comment_id})"
    return urn


# --- notifications ---------------------------------------------------------------------------


def _notification(item: Any) -> Event:
    if not isinstance(item, dict):
        raise ValueError("notification is not an object")
    account_id = require_str(item, "organizationalEntity")
    action = optional_str(item, "action") or ""
    if action in COMMENT_ACTIONS:
        return _comment(account_id, action, item)
    if action == "COMMENT_EDIT":
        return EditEvent(_comment(account_id, action, item), _ms(item.get("lastModifiedAt")))
    if action == "COMMENT_DELETE":
        return _deletion(account_id, item)
    if action == "SHARE_MENTION":
        return _mention(account_id, item)
    return IgnoredEvent(CHANNEL, f"social action {action or 'unknown'} is not inbox material")


def _decorated(item: Dict[str, Any], key: str) -> Dict[str, Any]:
    activity = item.get("decoratedGeneratedActivity")
    found = activity.get(key) if isinstance(activity, dict) else None
    return found if isinstance(found, dict) else {}


def _comment(account_id: str, action: str, item: Dict[str, Any]) -> MessageEvent:
    comment = _decorated(item, "comment")
    urn = optional_str(comment, "entity") or optional_str(item, "generatedActivity")
    if not urn:
        raise ValueError("comment has no URN (generatedActivity)")
    post = (optional_str(item, "sourcePost") or optional_str(comment, "object")
            or optional_str(item.get("decoratedSourcePost"), "entity"))
    if not post:
        raise ValueError("comment has no sourcePost")
    author = optional_str(comment, "owner") or optional_str(comment, "actor") or optional_str(item, "actor")
    outbound = action == "ADMIN_COMMENT" or author == account_id
    if author is None and outbound:
        author = account_id
    if author is None:
        raise ValueError("comment has no author (decoratedGeneratedActivity.comment.owner)")
    created = comment.get("created") if isinstance(comment.get("created"), dict) else {}
    parent = optional_str(comment, "parentComment")
    message = comment.get("message") if isinstance(comment.get("message"), dict) else {}
    return MessageEvent(
        channel=CHANNEL,
        account_id=account_id,
        platform_message_id=normalize_comment_urn(urn),
        thread_key=f"{post}|{author}",
        contact=ContactRef(author),
        direction="out" if outbound else "in",
        sent_at_ms=_ms(created.get("time", item.get("lastModifiedAt"))),
        text=optional_str(comment, "text") or optional_str(message, "text"),
        msg_type="text",
        attachments=tuple(_comment_content(comment)),
        thread_kind="comment",
        subject=post,
        reply_to=normalize_comment_urn(parent) if parent else None,
        raw=item,
    )


def _comment_content(comment: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    for content in as_list(comment.get("content")):
        if isinstance(content, dict):
            found = {"type": str(content.get("type") or "file").lower()}
            for key in ("url", "entity"):
                if content.get(key) is not None:
                    found[key] = content[key]
            yield found


def _deletion(account_id: str, item: Dict[str, Any]) -> RemoveEvent:
    comment = _decorated(item, "comment")
    urn = optional_str(comment, "entity") or optional_str(item, "generatedActivity")
    if not urn:
        raise ValueError("deleted comment has no URN (generatedActivity)")
    removed_at = _ms(item.get("lastModifiedAt"))
    try:
        message: Optional[MessageEvent] = _comment(account_id, "COMMENT_DELETE", item)
    except ValueError:
        message = None  # not enough to record it: the removal applies only to a comment we hold
    return RemoveEvent(CHANNEL, account_id, normalize_comment_urn(urn), removed_at, message)


def _mention(account_id: str, item: Dict[str, Any]) -> MessageEvent:
    """Our Page tagged in someone's post: a public thread of its own, keyed by that post."""
    share = _decorated(item, "share") or (item.get("decoratedSourcePost") if isinstance(item.get("decoratedSourcePost"), dict) else {})
    post = optional_str(item, "generatedActivity") or optional_str(share, "entity") or require_str(item, "sourcePost")
    author = optional_str(share, "owner") or optional_str(item, "actor")
    if not author:
        raise ValueError("mention has no author (share owner)")
    return MessageEvent(
        channel=CHANNEL,
        account_id=account_id,
        platform_message_id=post,
        thread_key=post,
        contact=ContactRef(author),
        direction="out" if author == account_id else "in",
        sent_at_ms=_ms(item.get("lastModifiedAt")),
        text=optional_str(share, "text") or optional_str(share, "commentary"),
        thread_kind="mention",
        subject=post,
        raw=item,
    )


def _ms(value: Any) -> int:
    """lastModifiedAt and created.time are epoch milliseconds; ValueError for what is not a date."""
    ms = as_int(value)
    if not 0 <= ms < 100_000_000_000_000:
        raise ValueError(f"timestamp out of range: {ms}")
    return ms


# --- demo traffic ------------------------------------------------------------------------------


def _demo_deliveries(now_ms: int) -> List[Any]:
    org = "urn:li:organization:10000001"
    post, activity = "urn:li:share:7100000000000000001", "urn:li:activity:7100000000000000002"
    source = {"entity": post, "owner": org, "mediaCategory": "NONE",
              "text": "Our autumn roast is here \U0001f342 Tell us what you taste!"}

    def comment(number: int, person: str, text: str, at: int) -> Dict[str, Any]:
        urn = f"urn:li:comment:({activity},{now_ms}{number})"
        return {"notificationId": now_ms * 10 + number, "organizationalEntity": org, "action": "COMMENT",
                "sourcePost": activity, "decoratedSourcePost": source, "lastModifiedAt": at,
                "generatedActivity": urn, "subscriber": "urn:li:person:demoAdmin01",
                "decoratedGeneratedActivity": {"comment": {"entity": urn, "owner": person, "object": activity,
                                                           "text": text}}}

    return [
        {"type": EVENT_TYPE, "notifications": [
            comment(1, "urn:li:person:dMx7Qa01", "Notes of caramel and fig \u2014 wunderbar! Is it available in Wien?",
                    now_ms - 45_000),
            comment(2, "urn:li:person:kP9zTb02", "Pedi um saco ontem, chega quando? \U0001f4e6", now_ms - 25_000),
            {"notificationId": now_ms * 10 + 3, "organizationalEntity": org, "action": "LIKE",
             "sourcePost": activity, "lastModifiedAt": now_ms - 20_000, "subscriber": "urn:li:person:demoAdmin01"},
        ]},
    ]
