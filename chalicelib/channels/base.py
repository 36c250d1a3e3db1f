"""The one small interface every platform adapter implements, and the events it produces.

An adapter never imports Chalice or touches storage: `verify` and `handshake` look at a
`WebhookRequest`; `parse` turns a decoded JSON delivery into normalised events (pure, so adapter
tests need no database). The ingest pipeline turns events into contacts, conversations and
messages the same way for every platform.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from chalicelib.config import SecretLookup


class WebhookRejected(Exception):
    """The request is not from the platform (or is malformed): answer `status`, store nothing."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    headers: Mapping[str, str]  # keys lower-cased
    query: Mapping[str, str]
    raw_body: bytes

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class WebhookReply:
    status: int
    body: Union[str, Dict[str, Any]]
    content_type: str = "text/plain"


@dataclass(frozen=True)
class ContactRef:
    """Who wrote, as the platform names them (ids are per platform, sometimes per account)."""

    platform_user_id: str
    display_name: Optional[str] = None
    handle: Optional[str] = None
    avatar_url: Optional[str] = None  # the platform's picture URL (served to the page via our media proxy)
    followers: Optional[int] = None


@dataclass(frozen=True)
class MessageEvent:
    """A message, comment or mention, inbound from a customer or an echo of our own side."""

    channel: str  # messenger | instagram | whatsapp | facebook | x | telegram | linkedin
    account_id: str  # our account's id on the platform (page id, phone_number_id, ...)
    platform_message_id: str
    thread_key: str  # conversation key within the account (a contact, or post+author, ...)
    contact: ContactRef
    direction: str  # "in" (customer) or "out" (our side: echoes, page comments)
    sent_at_ms: int
    text: Optional[str] = None
    msg_type: str = "text"
    attachments: Tuple[Dict[str, Any], ...] = ()
    thread_kind: str = "dm"  # dm | comment | mention | group
    subject: Optional[str] = None  # e.g. the post a comment thread hangs under
    reply_to: Optional[str] = None  # platform id of the message this one answers
    raw: Dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    #: the post behind the thread (`subject`) as the delivery itself carries it (X `includes`,
    #: LinkedIn `decoratedSourcePost`): chalicelib.channels.posts.carried() builds it, the pipeline
    #: caches it, so the thread header needs no look-up
    post: Optional[Dict[str, Any]] = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class PostEditEvent:
    """The post comment threads hang under was edited on the platform (a Facebook Page post's
    `feed` change with verb `edited`): its cached preview takes the new text and is looked up
    again when next viewed (chalicelib.inbox.post_previews.note_edit)."""

    channel: str
    account_id: str
    post_id: str
    text: Optional[str]
    edited_at_ms: int


@dataclass(frozen=True)
class StatusEvent:
    """A delivery receipt for one of our outbound messages (sent < delivered < read; failed)."""

    channel: str
    account_id: str
    platform_message_id: str
    status: str
    at_ms: int
    error: Optional[str] = None
    #: our outbound id when the platform echoes it back (WhatsApp `biz_opaque_callback_data`),
    #: so a receipt that overtakes our send's answer still finds the reply.
    outbound_id: Optional[str] = None


@dataclass(frozen=True)
class EditEvent:
    """A message or comment changed on the platform. `message` carries the new version whole so
    an edit that overtakes its original still records the message."""

    message: MessageEvent
    edited_at_ms: int


@dataclass(frozen=True)
class RemoveEvent:
    """A message or comment removed on the platform: we mark it removed, never delete ours."""

    channel: str
    account_id: str
    platform_message_id: str
    removed_at_ms: int
    message: Optional[MessageEvent] = None  # enough to record it if the original never came


@dataclass(frozen=True)
class IgnoredEvent:
    """Something the platform sent that is not inbox material (read receipts of the customer,
    opt-ins, ...): logged with its reason, not stored."""

    channel: str
    reason: str


@dataclass(frozen=True)
class ParseProblem:
    """An item of a delivery that could not be understood: kept for inspection with its raw
    content, while the rest of the delivery is processed normally."""

    channel: str
    reason: str
    raw: Any
    account_id: Optional[str] = None


@dataclass(frozen=True)
class LookupEvent:
    """A notification that names content without carrying it (Instagram `mentions`: ids only).
    The ingest processor, never the webhook's ack path, asks the adapter to fetch it with the
    account's token (`ChannelAdapter.resolve`) and records what comes back as a message."""

    channel: str
    account_id: str
    kind: str  # e.g. "instagram_mention"
    ids: Dict[str, str]
    sent_at_ms: int
    raw: Dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class TemplateStatusEvent:
    """A WhatsApp message template changed status (`message_template_status_update` on the
    WhatsApp Business Account: APPROVED, PAUSED, DISABLED, REJECTED, ...). No message: the
    composer's template list forgets what it cached (chalicelib.outbound.templates.note_status)."""

    business_account_id: str
    name: str
    language: str
    status: str
    reason: Optional[str]
    at_ms: int
    channel: str = "whatsapp"


Event = Union[MessageEvent, StatusEvent, EditEvent, RemoveEvent, IgnoredEvent, ParseProblem, LookupEvent,
              TemplateStatusEvent, PostEditEvent]


# --- the send side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboundMessage:
    """What an adapter needs to send one reply (built by chalicelib.outbound from the stored
    message and its conversation; never a Chalice request)."""

    channel: str
    account_id: str  # our account's platform id (page id, phone_number_id, bot id, ...)
    thread_key: str  # the conversation's thread key (as the adapter's parse produced it)
    thread_kind: str  # dm | comment | mention | group
    recipient_id: str  # the contact's platform id
    text: str
    outbound_id: str  # our message id: put it where the platform echoes it back (e.g. metadata)
    reply_to: Optional[str] = None  # platform id of the message being answered
    tag: Optional[str] = None  # e.g. Meta's HUMAN_AGENT after the 24 h window
    template: Optional[Dict[str, Any]] = None  # WhatsApp template outside the 24 h window
    private_reply: bool = False  # a DM answering a public comment
    #: files to send with the text as caption: [{"type": "image"|"document", "media_id", "mime_type",
    #: "filename"}] as chalicelib.outbound.attachments uploaded them (WhatsApp: one per message)
    attachments: Optional[List[Dict[str, Any]]] = None


@dataclass(frozen=True)
class SendResult:
    """The platform accepted the message: its id (the same id its echo/receipts carry)."""

    platform_message_id: str


class SendError(Exception):
    """A send that did not go through, classified so the outbox knows what to do:
    - "retryable": throttled or transient; `retry_after` seconds when the platform said so;
    - "window_closed": the messaging window is closed (offer a tag or a template);
    - "permanent": will never work as is (blocked, bad parameter); shown to the agent;
    - "reauthorize": the account's token is invalid or expired: the account needs reconnecting;
    - "unknown": no answer (timeout): reconcile against the echo/receipt, never blindly resend."""

    KINDS = ("retryable", "window_closed", "permanent", "reauthorize", "unknown")

    def __init__(self, kind: str, reason: str, retry_after: Optional[float] = None,
                 code: Optional[str] = None) -> None:
        if kind not in self.KINDS:
            raise ValueError(kind)
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason
        self.retry_after = retry_after
        self.code = code


class ProfileUnavailable(Exception):
    """A profile lookup that did not work (no token, refused, no answer): try again later."""


class ChannelAdapter(abc.ABC):
    """One platform's webhook: handshake, verification, parsing (and, later, sending)."""

    #: URL segment: POST /webhooks/<name>
    name: ClassVar[str]
    #: Channels this adapter emits events for.
    channels: ClassVar[Tuple[str, ...]]
    #: False when the platform authenticates with a shared token instead of a signature over the
    #: body (Telegram): then a body altered in transit cannot be detected by `verify`.
    body_signed: ClassVar[bool] = True

    def handshake(self, request: WebhookRequest, secrets: SecretLookup) -> WebhookReply:
        """Answer the platform's GET verification; platforms without one get 405."""
        return WebhookReply(405, "this webhook has no GET handshake")

    @abc.abstractmethod
    def verify(self, request: WebhookRequest, secrets: SecretLookup) -> None:
        """Raise WebhookRejected unless the request provably comes from the platform."""

    @abc.abstractmethod
    def parse(self, payload: Any, context: Mapping[str, str]) -> Iterator[Event]:
        """Split one decoded delivery into events. Must not raise: bad items become
        ParseProblem events so that their valid neighbours still land. `context` is what
        `delivery_context` took from the request (empty for most platforms)."""

    def delivery_context(self, request: WebhookRequest) -> Dict[str, str]:
        """Routing facts that only the request carries (e.g. which bot a URL belongs to),
        kept beside the payload in the queue. Never secrets."""
        return {}

    def split(self, payload: Any) -> List[Any]:
        """Smaller self-contained deliveries, used only when one is too big for a queue
        message. The default keeps the delivery whole."""
        return [payload]

    def ack(self) -> WebhookReply:
        """What the platform expects once the delivery is durably accepted."""
        return WebhookReply(200, "EVENT_RECEIVED")

    @abc.abstractmethod
    def signed_headers(self, raw_body: bytes, secrets: SecretLookup) -> Dict[str, str]:
        """The headers the platform would send with `raw_body` (tests and the local demo use
        this to produce correctly signed deliveries)."""

    def send(self, message: OutboundMessage, secrets: SecretLookup, http: Any) -> SendResult:
        """Send one reply through the platform's API with `http` (a requests.Session: tests
        fake it with `responses`, `make run` points base URLs at a loopback sandbox). Tokens
        come from `secrets` (named by the account's credential refs). Raise SendError."""
        raise SendError("permanent", f"sending is not supported on {message.channel}")

    def fetch_profile(self, channel: str, account_id: str, user_id: str, secrets: SecretLookup,
                      http: Any) -> Optional[ContactRef]:
        """The customer's profile (name, handle, picture, followers) from the platform's profile
        endpoint, for platforms whose deliveries carry no name; None when the platform has none.
        Raises ProfileUnavailable (or any error) when the lookup failed: it is retried later."""
        return None

    def resolve(self, event: "LookupEvent", secrets: SecretLookup, http: Any) -> Optional[MessageEvent]:
        """Fetch what a LookupEvent names (ingest processor only); None when it no longer exists.
        Raise SendError: "reauthorize"/"permanent" quarantine it, anything else retries."""
        raise SendError("permanent", f"{self.name} cannot look up {event.kind}")

    #: (channel, platform account id, display name) seeded by `make run` for the demo.
    demo_accounts: ClassVar[Tuple[Tuple[str, str, str], ...]] = ()

    def demo_deliveries(self, now_ms: int) -> List[Any]:
        """Realistic deliveries for the demo traffic generator, addressed to `demo_accounts`."""
        return []


def require_secret(secrets: SecretLookup, name: str) -> str:
    """A configured secret, else WebhookRejected(503): fail closed, never verify against ''."""
    value = secrets(name)
    if not value:
        raise WebhookRejected(503, "webhook secret is not configured")
    return value


def split_list(payload: Any, key: str) -> List[Any]:
    """One self-contained delivery per item of `payload[key]`, every other key kept."""
    if not isinstance(payload, dict) or not isinstance(payload.get(key), list) or not payload[key]:
        return [payload]
    return [dict(payload, **{key: [item]}) for item in payload[key]]


def as_int(value: Any) -> int:
    """A platform timestamp or id given as int or numeric string; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("boolean is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise ValueError(f"not an integer: {value!r}")


def require_str(mapping: Any, key: str) -> str:
    """mapping[key] as a non-empty string (ids may arrive as numbers); ValueError otherwise."""
    if not isinstance(mapping, dict):
        raise ValueError(f"expected an object holding {key!r}")
    value = mapping.get(key)
    if isinstance(value, bool) or value is None:
        raise ValueError(f"missing {key!r}")
    if isinstance(value, (int, float)):
        value = str(int(value))
    if not isinstance(value, str) or not value:
        raise ValueError(f"missing {key!r}")
    return value


def optional_str(mapping: Any, key: str) -> Optional[str]:
    if not isinstance(mapping, dict):
        return None
    value = mapping.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def profile_text(answer: Any, key: str) -> Optional[str]:
    """A name or handle from a profile answer: printable characters only, trimmed, at most 100."""
    value = optional_str(answer, key)
    kept = "".join(c for c in value if c.isprintable()).strip()[:100] if value else ""
    return kept or None


def as_list(value: Any) -> List[Any]:
    return value if isinstance(value, list) else []


# --- send-side helpers (credentials, one HTTP call, classification shared by adapters) ----------

#: Seconds to connect / to wait for the answer. A send that times out is "unknown" (the platform
#: may have accepted it): the outbox reconciles it against the echo or receipt, never resends.
SEND_TIMEOUT = (5.0, 20.0)


def account_secrets(credential_refs: Optional[Mapping[str, str]]) -> SecretLookup:
    """The secrets of one account: a logical name (META_PAGE_TOKEN, WHATSAPP_TOKEN, X_ACCESS_TOKEN,
    TELEGRAM_BOT_TOKEN, ...) goes through the account's `credential_refs` (logical -> real secret
    name, e.g. {"META_PAGE_TOKEN": "META_PAGE_TOKEN_100000000000001"}; config.credential_ref_allowed
    says which), else is used as is, and is resolved by the runtime's secret lookup (env locally,
    SSM in AWS). Values are never logged."""
    from chalicelib.runtime import runtime

    from chalicelib.config import credential_ref_allowed

    refs = {str(k): str(v) for k, v in (credential_refs or {}).items() if v}

    def lookup(name: str) -> Optional[str]:
        target = refs.get(name, name)
        if target != name and not credential_ref_allowed(name, target):
            return None  # a reference stored before the rule: no secret (reauthorize), never another one
        return runtime.secret(target)

    return lookup


def send_token(secrets: SecretLookup, name: str) -> str:
    """A credential the send needs; SendError("reauthorize") when the account has none."""
    value = secrets(name)
    if not value:
        raise SendError("reauthorize", f"{name} is not configured for this account", code="missing_token")
    return value


def check_text(text: Optional[str], limit: int, platform: str, unit: str = "characters",
               size: Optional[int] = None) -> str:
    """The reply text, or SendError("permanent") before any HTTP call when it is empty or too long.
    `size` is the measured length when the platform does not count characters (bytes, weights)."""
    if text is None or not text.strip():
        raise SendError("permanent", f"the reply is empty; {platform} needs text", code="empty_text")
    measured = len(text) if size is None else size
    if measured > limit:
        raise SendError("permanent", f"the reply is {measured} {unit} long; {platform} accepts at most "
                                     f"{limit} {unit}", code="text_too_long")
    return text


def call_platform(http: Any, method: str, url: str, platform: str, **kwargs: Any) -> Any:
    """One HTTP call through `http` (a requests.Session). No answer (timeout, connection error)
    -> SendError("unknown"). The exception text is not kept: it can carry the URL, and Telegram's
    URLs carry the bot token."""
    import requests  # lazy: never on the webhook path

    kwargs.setdefault("timeout", SEND_TIMEOUT)
    try:
        return http.request(method, url, **kwargs)
    except requests.exceptions.Timeout as exc:
        raise SendError("unknown", f"{platform} did not answer in time ({type(exc).__name__}); "
                                   "the message may have been sent", code="timeout") from None
    except requests.exceptions.RequestException as exc:
        raise SendError("unknown", f"no answer from {platform} ({type(exc).__name__}); "
                                   "the message may have been sent", code="connection") from None


def json_body(response: Any) -> Any:
    """The decoded JSON answer, or None when there is none (empty, HTML from a proxy...)."""
    try:
        return response.json() if response.content else None
    except ValueError:
        return None


def no_answer(response: Any, platform: str) -> SendError:
    """A 5xx without a platform error: the send may or may not have happened."""
    return SendError("unknown", f"{platform} answered HTTP {response.status_code} without a result; "
                                "the message may have been sent", code=f"http_{response.status_code}")
