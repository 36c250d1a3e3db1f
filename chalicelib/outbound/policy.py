"""What a reply may be, decided before it is queued (pure: no I/O).

- Length limits per channel and thread kind (Instagram DMs count UTF-8 bytes, X posts weigh
  characters the way X does; everything else counts characters).
- Messaging windows, measured from the customer's last message (`last_inbound_at`):
  * Messenger and Instagram DMs: 24 h freely, then the HUMAN_AGENT tag up to 7 days, then closed;
  * WhatsApp: 24 h, then only an approved template (`{"template": {"name", "language", ...}}`);
  * a private reply to a Facebook or Instagram comment: within 7 days of the comment;
  * X, Telegram, LinkedIn and public comment replies: no window; but an X mention thread whose
    post does not summon our account (`not_summoned`, found by chalicelib.outbound.summons) is closed.
A refusal carries a reason an agent can act on (answered 422).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from chalicelib.channels.brands import brand

HOUR_MS = 3600_000
DAY_MS = 24 * HOUR_MS
STANDARD_WINDOW_MS = DAY_MS
HUMAN_AGENT_WINDOW_MS = 7 * DAY_MS
PRIVATE_REPLY_WINDOW_MS = 7 * DAY_MS
HUMAN_AGENT_TAG = "HUMAN_AGENT"
NOTE_LIMIT = 10_000
CLIENT_ID_MAX = 64
TEMPLATE_NAME_MAX = 512
#: WhatsApp components nest components > parameters > (currency | date_time | ...) > fields.
TEMPLATE_DEPTH_MAX = 8
TEMPLATE_NODES_MAX = 500
TEMPLATE_CHARS_MAX = 16_384

#: (channel, thread kind or "*") -> (limit, unit)
LIMITS = {
    ("messenger", "*"): (2000, "characters"),
    ("instagram", "dm"): (1000, "bytes"),
    ("instagram", "comment"): (2200, "characters"),
    ("facebook", "*"): (8000, "characters"),
    ("whatsapp", "*"): (4096, "characters"),
    ("telegram", "*"): (4096, "characters"),
    ("x", "dm"): (10_000, "characters"),
    ("x", "*"): (280, "weighted characters"),
    ("linkedin", "*"): (1250, "characters"),
}
DEFAULT_LIMIT = (2000, "characters")
PRIVATE_REPLY_CHANNELS = ("facebook", "instagram")


class Refused(ValueError):
    """The reply cannot be sent as written (answered 422 with `reason`)."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class Plan:
    """How the reply will be sent."""

    tag: Optional[str] = None
    template: Optional[Dict[str, Any]] = None
    private_reply: bool = False


def limit_for(channel: str, thread_kind: str, private_reply: bool = False) -> tuple:
    if private_reply:
        thread_kind = "dm"  # a private reply is a DM
    return LIMITS.get((channel, thread_kind)) or LIMITS.get((channel, "*")) or DEFAULT_LIMIT


def measure(text: str, unit: str) -> int:
    if unit == "bytes":
        return len(text.encode("utf-8"))
    if unit == "weighted characters":
        return _x_weight(text)
    return len(text)


def check_length(text: str, channel: str, thread_kind: str, private_reply: bool = False) -> None:
    limit, unit = limit_for(channel, thread_kind, private_reply)
    size = measure(text, unit)
    if size > limit:
        raise Refused(f"the reply is {size} {unit} long; {brand(channel)} accepts at most {limit} {unit} here",
                      "text_too_long")


def plan(state: Mapping[str, Any], now: int, has_text: bool, template: Optional[Dict[str, Any]] = None,
         private_reply: bool = False) -> Plan:
    """The send plan for a reply in conversation `state` at `now`, or Refused."""
    channel = state.get("channel") or ""
    kind = state.get("thread_kind") or "dm"
    last_in = state.get("last_inbound_at")
    age = None if last_in is None else now - int(last_in)
    if template is not None and channel != "whatsapp":
        raise Refused("templates are for WhatsApp conversations only", "template_not_supported")
    if private_reply:
        if channel not in PRIVATE_REPLY_CHANNELS or kind != "comment":
            raise Refused("a private reply answers a Facebook or Instagram comment", "private_reply_not_supported")
        if age is None or age > PRIVATE_REPLY_WINDOW_MS:
            raise Refused(_closed("a private reply to a comment", last_in, PRIVATE_REPLY_WINDOW_MS,
                                  "answer the comment publicly instead"), "window_closed")
        return Plan(private_reply=True)
    if channel in ("messenger", "instagram") and kind == "dm":
        if age is None:
            raise Refused(f"{brand(channel)} lets a page answer only people who wrote to it; "
                          "the customer has not written in this conversation", "window_closed")
        if age <= STANDARD_WINDOW_MS:
            return Plan()
        if age <= HUMAN_AGENT_WINDOW_MS:
            return Plan(tag=HUMAN_AGENT_TAG)
        raise Refused(_closed(f"{brand(channel)}'s Human Agent window", last_in, HUMAN_AGENT_WINDOW_MS,
                              "the customer must write again before you can answer"), "window_closed")
    if channel == "whatsapp":
        if template is not None:
            return Plan(template=template)
        if age is not None and age <= STANDARD_WINDOW_MS:
            return Plan()
        if age is None:
            reason = "the customer has not written in this conversation"
        else:
            reason = _closed("WhatsApp's 24-hour customer service window", last_in, STANDARD_WINDOW_MS, "")
        raise Refused(reason.rstrip(": ") + ": only an approved template can be sent "
                      '({"template": {"name": ..., "language": ...}})', "template_required")
    if channel == "x" and kind == "mention" and state.get("not_summoned"):
        raise Refused(str(state["not_summoned"]), "not_summoned")
    if not has_text:
        raise Refused("text is required", "text_required")
    return Plan()


def check_template(value: Any) -> Dict[str, Any]:
    """A WhatsApp template as the API accepts it: {"name", "language" (code or {"code"}),
    optional "components"} sent as they are, or "variables" ({"header": [...], "body": [...]})
    that chalicelib.outbound.templates fills into an approved template; Refused otherwise."""
    if not isinstance(value, dict):
        raise Refused("template must be an object with 'name' and 'language'", "bad_template")
    unknown = set(value) - {"name", "language", "components", "variables"}
    if unknown:
        raise Refused("template accepts only name, language, components and variables "
                      f"(not {', '.join(sorted(unknown))})", "bad_template")
    if "components" in value and "variables" in value:
        raise Refused("send a template's components or its variables, not both", "bad_template")
    from chalicelib import inputs

    name, language = value.get("name"), value.get("language")
    if not isinstance(name, str) or not 1 <= len(name) <= TEMPLATE_NAME_MAX or not name.strip() \
            or not inputs.is_clean(name):
        raise Refused("template name must be the approved template's name", "bad_template")
    if isinstance(language, dict):
        language = language.get("code")
    if not isinstance(language, str) or not 2 <= len(language) <= 16 or not inputs.is_clean(language):
        raise Refused("template language must be a language code such as 'en_US'", "bad_template")
    components = value.get("components")
    if components is not None and not isinstance(components, list):
        raise Refused("template components must be a list", "bad_template")
    variables = value.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise Refused('template variables must be {"header": [...], "body": [...]}', "bad_template")
    try:
        for label, nested in (("components", components), ("variables", variables)):
            inputs.bounded_json(nested, f"template {label}", max_depth=TEMPLATE_DEPTH_MAX,
                                max_nodes=TEMPLATE_NODES_MAX, max_chars=TEMPLATE_CHARS_MAX)
    except inputs.BadInput as problem:
        raise Refused(str(problem), "bad_template")
    clean: Dict[str, Any] = {"name": name, "language": {"code": language}}
    if components is not None:
        clean["components"] = components
    if variables is not None:
        clean["variables"] = variables
    return clean


def _closed(what: str, last_in: Optional[int], window_ms: int, advice: str) -> str:
    if last_in is None:
        return f"{what} is closed: {advice}".rstrip(": ")
    from chalicelib.inputs import render_time

    closed_at = render_time(int(last_in) + window_ms)  # None for a stored time no datetime holds
    if closed_at is None:
        return f"{what} is closed: {advice}".rstrip(": ")
    text = f"{what} closed at {closed_at[:16]}Z"
    return f"{text}: {advice}" if advice else text


def _x_weight(text: str) -> int:
    try:
        from chalicelib.channels.x import post_weight

        return int(post_weight(text))
    except (ImportError, AttributeError):
        return len(text)
