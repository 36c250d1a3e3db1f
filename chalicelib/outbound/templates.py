"""WhatsApp message templates: the business account's approved templates, and a template filled
with an agent's variables as the Cloud API takes it.

Outside WhatsApp's 24-hour window only an approved template can be sent, so the composer offers
them. The list comes from `GET {graph}/{waba-id}/message_templates?status=APPROVED` with the
account's WHATSAPP_TOKEN; the WhatsApp Business Account id is the account's
WHATSAPP_BUSINESS_ACCOUNT_ID (a credential like the token: per account through its
`credential_refs`). Pages are followed by their `after` cursor on our own base URL (never the
`next` URL an answer names), at most MAX_PAGES. The list is cached per container for
CACHE_SECONDS: the composer asks on every closed thread, Meta's Graph budget is shared with sends.
A status change Meta announces (`message_template_status_update`: PAUSED, DISABLED, ...) is
stamped per business account (`note_status`, from the ingest processor) and every container's
cache older than the stamp is stale at once, so a paused template is refused on the next reply
(one small BatchGetItem per list read; the containers share no memory). The template the stamp
names is refused with Meta's reason even while Meta's own list still shows it.

Only what the page can fill is offered: text headers, a body, a footer; a template whose header is
an image, video or document (it needs a media parameter) is listed with `sendable: false`.
Placeholders are positional (`{{1}}`) or named (`{{first_name}}`, `parameter_format` NAMED).
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

from chalicelib.outbound.policy import Refused

GRAPH_DEFAULT = "https://graph.facebook.com/v21.0"
CACHE_SECONDS = 300.0
PAGE_SIZE = 100
MAX_PAGES = 5
TIMEOUT = (3.0, 10.0)
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]{1,64})\s*\}\}")
VARIABLE_MAX = 1024  # characters per filled-in value (Meta's own limit for a body parameter)
TEXT_MAX = 4096
CACHE_KEY = "whatsapp_templates"
STAMP_PREFIX = "wt#"  # a ChangeFeed item per business account: its templates' latest status change


class Unavailable(Exception):
    """The templates could not be read (no business account id or token, Meta refused or did
    not answer); `reason` names which, without a token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def approved(account_id: str, secrets: Any, http: Any) -> List[Dict[str, Any]]:
    """The approved templates of the WhatsApp account `account_id` (phone number id), as
    `shape` gives them, sorted by name and language; cached CACHE_SECONDS per container."""
    from chalicelib.runtime import runtime

    waba = secrets("WHATSAPP_BUSINESS_ACCOUNT_ID")
    token = secrets("WHATSAPP_TOKEN")
    if not waba or not re.fullmatch(r"[0-9]{1,32}", waba):
        raise Unavailable("WHATSAPP_BUSINESS_ACCOUNT_ID is not configured for this account")
    if not token:
        raise Unavailable("WHATSAPP_TOKEN is not configured for this account")
    cache: Dict[str, Tuple[float, List[Dict[str, Any]]]] = runtime.cached(CACHE_KEY) or {}
    now = runtime.now_ms() / 1000.0
    stamp = _stamp(waba)
    hit = cache.get(f"{account_id}|{waba}")
    if hit is not None and 0 <= now - hit[0] < CACHE_SECONDS and (stamp is None or stamp.at <= hit[0] * 1000):
        return _withdraw(hit[1], stamp)
    found = _fetch(waba, token, http)
    cache[f"{account_id}|{waba}"] = (now, found)
    runtime.remember(CACHE_KEY, cache)
    return _withdraw(found, stamp)


def note_status(event: Any) -> None:
    """Record a template's status change (a TemplateStatusEvent) as its business account's stamp."""
    from chalicelib.models import ChangeFeed
    from chalicelib.runtime import runtime

    detail = {"name": event.name, "language": event.language, "status": event.status, "reason": event.reason,
              "at": event.at_ms}
    with ChangeFeed.batch_write() as batch:  # the feeds' one write path (a single put)
        batch.save(ChangeFeed(STAMP_PREFIX + event.business_account_id, at=runtime.now_ms(), detail=detail))


def _stamp(waba: str) -> Any:
    from chalicelib.models import ChangeFeed

    found = list(ChangeFeed.batch_get([STAMP_PREFIX + waba]))
    return found[0] if found else None


def _withdraw(templates: List[Dict[str, Any]], stamp: Any) -> List[Dict[str, Any]]:
    """`templates` with the one the stamp says Meta withdrew (any status but APPROVED) unsendable."""
    from chalicelib.inputs import render_time

    detail = stamp.detail if stamp is not None and isinstance(stamp.detail, dict) else {}
    if str(detail.get("status") or "APPROVED") == "APPROVED":
        return templates
    when = render_time(int(detail.get("at") or 0)) if detail.get("at") else None
    why = (f"Meta {str(detail['status']).lower().replace('_', ' ')} it" + (f" at {when[:16]}Z" if when else "")
           + (f": {detail['reason']}" if detail.get("reason") else ""))
    return [dict(t, sendable=False, why_not=why)
            if (t["name"], t["language"]) == (detail.get("name"), detail.get("language")) else t for t in templates]


def _fetch(waba: str, token: str, http: Any) -> List[Dict[str, Any]]:
    from chalicelib.channels.base import json_body
    from chalicelib.config import api_base

    url = f"{api_base('META_GRAPH_BASE_URL', GRAPH_DEFAULT)}/{waba}/message_templates"
    params: Dict[str, Any] = {"status": "APPROVED", "limit": PAGE_SIZE,
                              "fields": "name,language,status,category,components,parameter_format"}
    found: Dict[Tuple[str, str], Dict[str, Any]] = {}
    for _ in range(MAX_PAGES):
        try:
            response = http.request("GET", url, params=params, headers={"Authorization": f"Bearer {token}"},
                                    timeout=TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - the text may carry the URL: keep the type only
            raise Unavailable(f"no answer from Meta ({type(exc).__name__})") from None
        answer = json_body(response)
        if response.status_code != 200 or not isinstance(answer, dict):
            error = answer.get("error") if isinstance(answer, dict) else None
            code = error.get("code") if isinstance(error, dict) else None
            raise Unavailable(f"Meta answered HTTP {response.status_code}"
                              + (f" (code {code})" if isinstance(code, int) else ""))
        for raw in answer.get("data") if isinstance(answer.get("data"), list) else []:
            template = shape(raw)
            if template is not None:
                found.setdefault((template["name"], template["language"]), template)
        paging = answer.get("paging") if isinstance(answer.get("paging"), dict) else {}
        cursors = paging.get("cursors") if isinstance(paging.get("cursors"), dict) else {}
        after = cursors.get("after")
        if not paging.get("next") or not isinstance(after, str) or not after:
            break
        params = dict(params, after=after)
    return [found[key] for key in sorted(found)]


def shape(raw: Any) -> Optional[Dict[str, Any]]:
    """One Graph template as the page shows it: name, language, category, header / body /
    footer text, the placeholders of each, whether it can be sent from the page; None when it
    is not an approved template with a usable name (anything odd from the platform is dropped,
    never shown)."""
    from chalicelib import inputs

    if not isinstance(raw, dict) or str(raw.get("status") or "APPROVED").upper() != "APPROVED":
        return None
    name, language = raw.get("name"), raw.get("language")
    if not (isinstance(name, str) and re.fullmatch(r"[a-z0-9_]{1,512}", name)
            and isinstance(language, str) and re.fullmatch(r"[A-Za-z_]{2,16}", language)):
        return None
    category = raw.get("category") if isinstance(raw.get("category"), str) else None
    template: Dict[str, Any] = {"name": name, "language": language,
                                "category": (category or "").upper()[:32] or None,
                                "header": None, "body": "", "footer": None,
                                "header_params": [], "body_params": [], "sendable": True, "why_not": None}
    for component in raw.get("components") if isinstance(raw.get("components"), list) else []:
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type") or "").upper()
        text = component.get("text")
        text = text[:TEXT_MAX] if isinstance(text, str) and inputs.is_clean(text, multiline=True) else None
        if kind == "HEADER":
            if str(component.get("format") or "TEXT").upper() != "TEXT":
                template.update(sendable=False, why_not="its header is a " + str(component.get("format")).lower()[:20]
                                + ", which the composer cannot attach yet")
            elif text:
                template["header"], template["header_params"] = text, placeholders(text)
        elif kind == "BODY" and text:
            template["body"], template["body_params"] = text, placeholders(text)
        elif kind == "FOOTER" and text:
            template["footer"] = text
    if not template["body"]:
        return None
    return template


def placeholders(text: str) -> List[str]:
    """The placeholder names in order of first use ("1", "2" or "first_name", ...)."""
    seen: List[str] = []
    for match in PLACEHOLDER.finditer(text):
        if match.group(1) not in seen:
            seen.append(match.group(1))
    return seen


def fill(template: Mapping[str, Any], variables: Any) -> Tuple[Dict[str, Any], str]:
    """The template `{"name", "language", "components"}` the Cloud API takes, and the text the
    customer will read, from an approved `template` (as `shape` gives it) and the agent's
    `variables` ({"header": [...], "body": [...]}, in placeholder order); Refused otherwise."""
    from chalicelib import inputs

    if not template.get("sendable"):
        raise Refused(f"the template {template['name']} cannot be sent from the inbox: {template.get('why_not')}",
                      "template_not_sendable")
    if not isinstance(variables, dict) or set(variables) - {"header", "body"}:
        raise Refused('variables must be {"header": [...], "body": [...]}', "bad_template")
    components: List[Dict[str, Any]] = []
    shown: Dict[str, Optional[str]] = {}
    for part in ("header", "body"):
        names = template.get(f"{part}_params") or []
        values = variables.get(part, [])
        if not isinstance(values, list) or len(values) != len(names):
            raise Refused(f"the template {template['name']} needs {len(names)} {part} value(s), "
                          f"not {len(values) if isinstance(values, list) else 'that'}", "bad_template")
        for value in values:
            if not isinstance(value, str) or not value.strip() or len(value) > VARIABLE_MAX \
                    or not inputs.is_clean(value):
                raise Refused(f"each {part} value must be 1 to {VARIABLE_MAX} characters of text on one line",
                              "bad_template")
        if names:
            positional = all(n.isdigit() for n in names)
            components.append({"type": part, "parameters": [
                {"type": "text", "text": value} if positional else
                {"type": "text", "parameter_name": name, "text": value} for name, value in zip(names, values)]})
        text = template.get(part)
        shown[part] = PLACEHOLDER.sub(lambda m: values[names.index(m.group(1))], text) if text else None
    lines = [shown["header"], shown["body"], template.get("footer")]
    clean = {"name": template["name"], "language": {"code": template["language"]}}
    if components:
        clean["components"] = components
    return clean, "\n\n".join(line for line in lines if line)


def find(templates: List[Dict[str, Any]], name: str, language: str) -> Dict[str, Any]:
    """The approved template `name` in `language`; Refused when there is none (never approved,
    paused, disabled or deleted since the page listed it)."""
    for template in templates:
        if template["name"] == name and template["language"] == language:
            return template
    raise Refused(f"no approved template {name} ({language}) on this WhatsApp account: it may have been "
                  "paused, disabled or deleted; pick another", "template_not_approved")


def for_conversation(state: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The approved templates of the WhatsApp account a conversation belongs to; Refused for
    another channel, Unavailable when they cannot be read."""
    from chalicelib.accounts import credential_refs, find_account
    from chalicelib.channels.base import account_secrets
    from chalicelib.runtime import runtime

    if state.get("channel") != "whatsapp":
        raise Refused("templates are for WhatsApp conversations only", "template_not_supported")
    account = find_account("whatsapp", str(state.get("account_id") or ""))
    if account is None or not account.enabled:
        raise Unavailable(f"the WhatsApp account {state.get('account_id')} is not connected")
    return approved(str(state["account_id"]), account_secrets(credential_refs(account)), runtime.http())


def resolve(state: Mapping[str, Any], requested: Mapping[str, Any]) -> Tuple[Dict[str, Any], str]:
    """A checked template request with "variables" (policy.check_template) filled into the
    approved template it names: (template to send, text the customer will read)."""
    template = find(for_conversation(state), requested["name"], requested["language"]["code"])
    return fill(template, requested["variables"])
