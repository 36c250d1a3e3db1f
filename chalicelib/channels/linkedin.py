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

from chalicelib.channels import posts, signing
from chalicelib.channels.base import (
    ChannelAdapter,
    ContactRef,
    EditEvent,
    Event,
    IgnoredEvent,
    MessageEvent,
    OutboundMessage,
    ParseProblem,
    RemoveEvent,
    SendError,
    SendResult,
    WebhookRejected,
    WebhookReply,
    WebhookRequest,
    as_int,
    as_list,
    optional_str,
    require_str,
    split_list,
    require_secret,
    call_platform,
    check_text,
    json_body,
    send_token,
)
from chalicelib.config import SecretLookup, api_base

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

    def send(self, message: OutboundMessage, secrets: SecretLookup, http: Any) -> SendResult:
        """A comment as the organization: on the thread's post, or nested under `reply_to`."""
        return _send(message, secrets, http)

    demo_accounts = (
        ("linkedin", "urn:li:organization:10000001", "Acme Coffee (LinkedIn Page)"),
    )

    def fetch_profile(self, channel: str, account_id: str, user_id: str, secrets: SecretLookup,
                      http: Any) -> Optional[ContactRef]:
        """A member's name where the organization's permissions allow (People API); an empty
        profile (shown as "LinkedIn member", looked up again in a week) where LinkedIn refuses."""
        return _fetch_member(user_id, secrets, http)

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
        post=posts.carried_linkedin(post, item.get("decoratedSourcePost")),
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
        post=posts.carried_linkedin(post, share),
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


# --- send side -------------------------------------------------------------------------------
#
# POST {LINKEDIN_API_BASE_URL}/rest/socialActions/{urlencoded target URN}/comments
#   headers: Authorization: Bearer LINKEDIN_ACCESS_TOKEN, LinkedIn-Version (LINKEDIN_API_VERSION),
#            X-Restli-Protocol-Version: 2.0.0
#   body: {"actor": <organization URN = account id>, "object": <activity/post URN>,
#          "message": {"text"}, ["parentComment": <comment URN>]}
# The target is the comment being answered (nested reply; its URN names the activity) or else the
# thread's post. 201: the comment URN from `x-restli-id` or the body's `commentUrn` (whichever is
# present; a bare id is completed into urn:li:comment:(<object>,<id>)). A 429 carries no reset
# header: the daily limits reset at midnight UTC, which is what retry_after says.

API_DEFAULT = "https://api.linkedin.com"
API_VERSION_DEFAULT = "202611"
COMMENT_LIMIT = 1250
COMMENT_URN = re.compile(r"^urn:li:comment:\((urn:li:[A-Za-z]+:[^,()]+),([^()]+)\)$")


def _send(message: OutboundMessage, secrets: SecretLookup, http: Any) -> SendResult:
    import os
    from urllib.parse import quote

    text = check_text(message.text, COMMENT_LIMIT, "a LinkedIn comment")
    post = message.thread_key.split("|", 1)[0] if message.thread_key else ""
    parent = normalize_comment_urn(message.reply_to) if message.reply_to else None
    parent_match = COMMENT_URN.match(parent) if parent else None
    if parent and not parent_match:
        parent = None  # not a comment (a mention's post): comment on the post itself
    target = parent or post
    obj = parent_match.group(1) if parent_match else post
    if not target or not obj.startswith("urn:li:"):
        raise SendError("permanent", "a LinkedIn reply needs the post or comment it answers", code="no_post")
    body: Dict[str, Any] = {"actor": message.account_id, "object": obj, "message": {"text": text}}
    if parent:
        body["parentComment"] = parent
    token = send_token(secrets, "LINKEDIN_ACCESS_TOKEN")
    headers = {"Authorization": f"Bearer {token}",
               "LinkedIn-Version": os.environ.get("LINKEDIN_API_VERSION") or API_VERSION_DEFAULT,
               "X-Restli-Protocol-Version": "2.0.0"}
    url = f"{api_base('LINKEDIN_API_BASE_URL', API_DEFAULT)}/rest/socialActions/{quote(target, safe='')}/comments"
    response = call_platform(http, "POST", url, "LinkedIn", json=body, headers=headers)
    answer = json_body(response)
    if 200 <= response.status_code < 300:
        found = (response.headers.get("x-restli-id") or optional_str(answer, "commentUrn")
                 or optional_str(answer, "$URN") or optional_str(answer, "id"))
        if not found:
            raise SendError("unknown", "LinkedIn created the comment without naming it", code="no_id")
        if not found.startswith("urn:"):
            found = f"urn:li:comment:({obj},{found})"
        return SendResult(normalize_comment_urn(found))
    raise classify_error(response.status_code, answer)


def classify_error(status: int, answer: Any, now: Optional[float] = None) -> SendError:
    """401 -> reauthorize; 429 -> retryable until the next midnight UTC; 5xx -> unknown; other
    4xx (no permission on the page, deleted post, bad URN) -> permanent."""
    import time

    detail = optional_str(answer, "message") or ""
    reason = f"LinkedIn answered HTTP {status}" + (f": {detail[:300]}" if detail else "")
    if status == 401:
        return SendError("reauthorize", reason, code="http_401")
    if status == 429:
        current = time.time() if now is None else now
        return SendError("retryable", reason, 86400.0 - (current % 86400.0), "http_429")
    if status >= 500:
        return SendError("unknown", reason + "; the comment may have been created", code=f"http_{status}")
    return SendError("permanent", reason, code=f"http_{status}")


# --- member names ----------------------------------------------------------------------------------
#
# GET {LINKEDIN_API_BASE_URL}/rest/people/(id:{person id}) (LinkedIn-Version, Bearer
# LINKEDIN_ACCESS_TOKEN) -> {"localizedFirstName", "localizedLastName", "vanityName"}: what the
# Community Management / Pages Data Portability permissions allow for members who engaged with the
# organization's content, subject to the member's privacy settings. 403 / 404 mean "not allowed for
# this member": an empty profile (the page says "LinkedIn member"), checked again in a week; a 429,
# a 5xx or no answer is retried later (ProfileUnavailable). Commenting organizations keep their URN.

PERSON_URN = re.compile(r"^urn:li:person:([A-Za-z0-9_-]{1,100})$")
PROFILE_TIMEOUT = (3.0, 5.0)


def _fetch_member(user_id: str, secrets: SecretLookup, http: Any) -> Optional[ContactRef]:
    import os

    from chalicelib.channels.base import ProfileUnavailable, profile_text

    found = PERSON_URN.match(user_id or "")
    if not found:
        return None  # an organization, or not a member URN: nothing to look up
    token = secrets("LINKEDIN_ACCESS_TOKEN")
    if not token:
        raise ProfileUnavailable("no LinkedIn token to look members up")
    headers = {"Authorization": f"Bearer {token}", "X-Restli-Protocol-Version": "2.0.0",
               "LinkedIn-Version": os.environ.get("LINKEDIN_API_VERSION") or API_VERSION_DEFAULT}
    url = f"{api_base('LINKEDIN_API_BASE_URL', API_DEFAULT)}/rest/people/(id:{found.group(1)})"
    try:
        response = http.request("GET", url, headers=headers, timeout=PROFILE_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - the exception text may carry the URL: keep the type only
        raise ProfileUnavailable(f"no answer from LinkedIn ({type(exc).__name__})") from None
    if response.status_code in (403, 404):
        return ContactRef(user_id)  # the organization may not see this member's name
    answer = json_body(response)
    if response.status_code != 200 or not isinstance(answer, dict):
        raise ProfileUnavailable(f"LinkedIn answered HTTP {response.status_code}")
    name = " ".join(part for part in (profile_text(answer, "localizedFirstName"), profile_text(answer, "localizedLastName")) if part)
    vanity = answer.get("vanityName") if isinstance(answer.get("vanityName"), str) else None
    return ContactRef(user_id, display_name=name[:100] or None,
                      handle=vanity if vanity and re.fullmatch(r"[A-Za-z0-9_-]{1,100}", vanity) else None)
