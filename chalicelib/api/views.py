"""Inbox queries and their JSON shapes. Every list is a DynamoDB Query on an index."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any, Dict, List, Optional, Tuple

from chalicelib.models import (STATUSES, Conversation, ConversationsByOwnerDue, ConversationsByTeamDue,
                              ConversationsByTeamRecent, Message)

MAX_PAGE = 100
CHANNELS = ("messenger", "instagram", "whatsapp", "facebook", "x", "telegram", "linkedin")


class BadQuery(ValueError):
    """A filter, sort or cursor the API cannot honour (answered as 400)."""


def iso(ms: Optional[int]) -> Optional[str]:
    """A stored time for an answer; null when what is stored cannot be a time (never a 500)."""
    from chalicelib.inputs import render_time

    return render_time(ms)


def _cursor_key() -> bytes:
    """Cursors are signed so a client cannot hand DynamoDB a key of its own making."""
    from chalicelib.runtime import runtime

    secret = runtime.secret("AUTH_TOKEN_SECRET") or ""
    return hashlib.sha256(("cursor|" + secret).encode("utf-8")).digest()


def encode_cursor(key: Optional[Dict[str, Any]], view: str = "") -> Optional[str]:
    """An opaque, tamper-evident cursor bound to the view it was issued for."""
    if not key:
        return None
    body = base64.urlsafe_b64encode(json.dumps({"v": view, "k": key}, separators=(",", ":")).encode()).decode()
    body = body.rstrip("=")
    mac = hmac.new(_cursor_key(), body.encode(), hashlib.sha256).digest()[:16]
    return body + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def decode_cursor(cursor: Optional[str], view: str = "") -> Optional[Dict[str, Any]]:
    if not cursor:
        return None
    body, _, mac = cursor.partition(".")
    try:
        given = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
    except (binascii.Error, ValueError) as error:
        raise BadQuery("cursor is not valid") from error
    expected = hmac.new(_cursor_key(), body.encode(), hashlib.sha256).digest()[:16]
    if not body or not hmac.compare_digest(given, expected):
        raise BadQuery("cursor is not valid")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    if data.get("v") != view:
        raise BadQuery("cursor belongs to another view; start again without it")
    return data["k"]


def parse_limit(raw: Optional[str], default: int = 25) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise BadQuery(f"limit must be an integer from 1 to {MAX_PAGE}")
    return int(raw)


def conversation_json(conversation: Any) -> Dict[str, Any]:
    """A conversation (model or plain state dict) as the API shows it."""
    from chalicelib.api import names
    from chalicelib.channels.brands import unnamed_contact
    from chalicelib.channels.posts import post_url

    c = conversation if isinstance(conversation, dict) else {
        k: v for k, v in conversation.attribute_values.items() if v is not None}
    if "queue" in c and ("team" not in c or "status" not in c):  # a projected index row
        c = _unfold_index_row(c)
    platform_id = c.get("contact_platform_id") or ""
    channel = c.get("channel") or ""
    fallback = unnamed_contact(channel, platform_id)
    due = c.get("reply_due_at") if c.get("status") == "open" else None
    return {
        "id": c.get("conversation_id"),
        "channel": channel,
        "account_id": c.get("account_id"),
        "kind": c.get("thread_kind", "dm"),
        "subject": c.get("subject"),
        "post_url": post_url(channel, c.get("subject")) if c.get("thread_kind") in ("comment", "mention") else None,
        "status": c.get("status", "open"),
        "assignee": c.get("assignee"),
        "assignee_name": names.label(c.get("assignee")),
        "team": c.get("team"),
        "contact": {
            "id": c.get("contact_id"),
            "display_name": c.get("contact_name") or c.get("contact_handle") or fallback,
            "handle": c.get("contact_handle"),
            "platform_id": c.get("contact_platform_id"),
            "followers": int(c["contact_followers"]) if c.get("contact_followers") is not None else None,
        },
        "created_at": iso(c.get("created_at")),
        "last_message_at": iso(c.get("last_message_at")),
        "last_message_preview": c.get("last_message_preview"),
        "last_message_direction": c.get("last_message_direction"),
        "awaiting_reply_since": iso(c.get("awaiting_reply_since")),
        "reply_due_at": iso(due),
        "first_response_at": iso(c.get("first_response_at")),
        "snoozed_until": iso(c.get("snoozed_until")),
        "sla": sla_json(c),
        "message_count": int(c.get("message_count") or 0),
        "unread_count": int(c.get("unread_count") or 0),
        "priority": c.get("priority") or "none",
        "tags": list(c.get("tags") or []),
        "version": int(c.get("version") or 0),
    }


def _unfold_index_row(row: Dict[str, Any]) -> Dict[str, Any]:
    """A `team-latest` entry shows what the full row shows: team and status from its `queue`
    key, the reply deadline and the snooze wake-up from `due_sort` (projected instead of both,
    models.LIST_FIELDS), the contact id from the ids it is made of (inbox.ids.contact_id_for)."""
    from chalicelib.inbox.ids import contact_id_for
    from chalicelib.inbox.rules import deadlines_of

    c = dict(row)
    c["team"], _, c["status"] = c["queue"].rpartition("#")
    if "due_sort" in c:
        c.update({k: v for k, v in deadlines_of(c["status"], c["due_sort"]).items() if v is not None})
    if "contact_id" not in c and c.get("channel") and c.get("account_id") and c.get("contact_platform_id"):
        c["contact_id"] = contact_id_for(c["channel"], c["account_id"], c["contact_platform_id"])
    return c


def sla_json(c: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Where the reply deadline stands: ok, at_risk (past the warning point), breached, or paused
    (a pausing policy stopped the clock while pending/snoozed: `remaining_ms` is kept); null
    when nothing is due. The flow's records win over the clock (a breach stays a breach)."""
    due, warn = c.get("reply_due_at"), c.get("warn_at")
    if c.get("sla_paused_ms") is not None and c.get("status") in ("pending", "snoozed"):
        return {"policy_id": c.get("sla_policy_id"),
                "target": "first_response" if c.get("first_response_at") is None else "next_response",
                "state": "paused", "due_at": None, "warn_at": None, "breached_at": iso(c.get("breached_at")),
                "awaiting_since": iso(c.get("awaiting_reply_since")), "remaining_ms": int(c["sla_paused_ms"])}
    if c.get("status") != "open" or due is None:
        return None
    from chalicelib.runtime import runtime

    now = runtime.now_ms()
    recorded = c.get("sla_state")
    if recorded == "breached" or now >= due:
        state = "breached"
    elif recorded == "warning" or (warn is not None and now >= warn):
        state = "at_risk"
    else:
        state = "ok"
    return {"policy_id": c.get("sla_policy_id"),
            "target": "first_response" if c.get("first_response_at") is None else "next_response",
            "state": state, "due_at": iso(due), "warn_at": iso(warn), "breached_at": iso(c.get("breached_at")),
            "awaiting_since": iso(c.get("awaiting_reply_since"))}


def message_json(message: Message) -> Dict[str, Any]:
    from chalicelib.listening.annotate import message_fields

    return {
        "id": message.message_id,
        "direction": message.direction,
        "type": message.msg_type,
        "text": message.text,
        "sent_at": iso(message.sent_at),
        "attachments": message.attachments or [],
        "delivery_status": message.delivery_status,
        "delivery_error": message.delivery_error,
        "platform_message_id": message.platform_message_id,
        "reply_to": message.reply_to,
        "author_id": message.author_id,
        "edited_at": iso(message.edited_at),
        "edit_history": [{"text": h.get("text"), "replaced_at": iso(h.get("replaced_at"))}
                         for h in (message.edit_history or []) if isinstance(h, dict)],
        "removed": bool(message.removed),
        **message_fields(message.direction, message.annotations),
    }


SORTS = ("recent", "due")
SENTIMENTS = ("positive", "neutral", "negative", "unscored")
SLA_FILTERS = ("at_risk", "breached")


def parse_tag(tag: Optional[str]) -> Optional[str]:
    """A tag filter as tags are stored (trimmed, lower-cased, 1 to 32 characters, no '#')."""
    from chalicelib.inbox.rules import tag_name

    if tag is None or tag == "":
        return None
    name = tag_name(tag)
    if name is None:
        raise BadQuery("tag must be a name of 1 to 32 characters without '#'")
    return name


def list_conversations(status: Optional[str], channel: Optional[str], assignee: Optional[str], sort: Optional[str],
                       limit: int, cursor: Optional[str], team: Optional[str] = None,
                       sla: Optional[str] = None, tag: Optional[str] = None,
                       sentiment: Optional[str] = None) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    """One inbox view, one Query on the index made for it:
    - a team's queue in one status by latest activity (`sort=recent`, the default), or by reply
      deadline (`sort=due`: what is due, then what is not, `_due_page`), optionally only
      `sla=at_risk` or `sla=breached` (key ranges);
    - one agent's conversations (`assignee=<id>`) or the team's unassigned ones
      (`assignee=none`), by deadline.
    Deadline views read the page's rows with one BatchGetItem (their index stays lean so that a
    customer's follow-up never touches it). `channel` and `tag` narrow any view (a tag is a
    filter of the Query on `team-latest`, which projects tags, and of the rows read for a
    deadline view; a page may then hold fewer than `limit` rows, and `next` still goes on).
    `sentiment` keeps the conversations whose latest customer message has that label (the
    listening annotator's `inbound_labels`, not projected: the page's rows are read whole)."""
    from chalicelib.inbox.rules import DEFAULT_TEAM

    status = status or "open"
    team = team or DEFAULT_TEAM
    if status not in STATUSES:
        raise BadQuery(f"status must be one of {', '.join(STATUSES)}")
    if channel is not None and channel not in CHANNELS:
        raise BadQuery(f"channel must be one of {', '.join(CHANNELS)}")
    if not 1 <= len(team) <= 64 or "#" in team:
        raise BadQuery("team must be a name of 1 to 64 characters without '#'")
    if sort is not None and sort not in SORTS:
        raise BadQuery("sort must be 'recent' or 'due'")
    if sla is not None and sla not in SLA_FILTERS:
        raise BadQuery("sla must be 'at_risk' or 'breached'")
    if assignee is not None and (not assignee or len(assignee) > 64 or "#" in assignee):
        raise BadQuery("assignee must be 'me', 'none' or an agent id")
    if assignee is not None and sort == "recent":
        raise BadQuery("assignee views are ordered by reply deadline (sort=due)")
    if sla is not None and (assignee is not None or sort == "recent" or status != "open"):
        raise BadQuery("sla filters a team's open queue by deadline (no assignee, sort=due)")
    tag = parse_tag(tag)
    if sentiment is not None and sentiment not in SENTIMENTS:
        raise BadQuery(f"sentiment must be one of {', '.join(SENTIMENTS)}")
    sort = sort or ("due" if assignee is not None or sla is not None else "recent")
    view = f"{sort}|{team}|{status}|{assignee or ''}|{sla or ''}|{channel or ''}" + (f"|{tag}" if tag else "") \
        + (f"|s:{sentiment}" if sentiment else "")
    start = decode_cursor(cursor, view)
    condition = (Conversation.channel == channel) if channel else None
    common: Dict[str, Any] = {"limit": limit, "page_size": limit, "last_evaluated_key": start,
                              "filter_condition": condition}
    queue = f"{team}#{status}"
    if assignee is not None:
        owner = f"u#{team}#{status}" if assignee == "none" else f"a#{assignee}#{status}"
        results = Conversation.by_owner_due.query(owner, scan_index_forward=True, **common)
    elif sort == "due":
        return _due_page(queue, status, sla, view, start, limit, condition, tag, sentiment)
    else:
        if tag:
            tagged = Conversation.tags.contains(tag)
            common["filter_condition"] = tagged if condition is None else condition & tagged
        results = Conversation.by_team_recent.query(queue, scan_index_forward=False, **common)
    rows = _listed(results, start)
    if assignee is not None or sentiment:
        rows = _whole_rows(rows, tag, sentiment)
    return [conversation_json(c) for c in rows], encode_cursor(results.last_evaluated_key, view)


def _whole_rows(rows: List[Any], tag: Optional[str], sentiment: Optional[str]) -> List[Any]:
    """The whole items of an index page's rows (one BatchGetItem), narrowed by tag and sentiment."""
    found = _full_rows([r.conversation_id for r in rows])
    if tag:
        found = [r for r in found if tag in (r.tags or [])]
    if sentiment:
        found = [r for r in found if r.inbound_labels is not None
                 and r.inbound_labels.as_dict().get("sentiment") == sentiment]
    return found


def _due_page(queue: str, status: str, sla: Optional[str], view: str, start: Optional[Dict[str, Any]], limit: int,
              condition: Any, tag: Optional[str], sentiment: Optional[str]) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    """A team's queue by deadline: the conversations with something due from the sparse
    `team-deadline` index, most urgent first (`sla` narrows them to key ranges), then, when those are
    all listed, the ones with nothing due from `team-latest` (oldest activity first), which has
    every conversation of the queue and projects `due_sort` (nothing due: NO_DEADLINE and above)
    to tell them apart. The cursor says which of the two it continues."""
    from chalicelib.inbox.rules import DEADLINE_OF, NO_DEADLINE
    from chalicelib.runtime import runtime

    def page(rows: List[Any], next_key: Optional[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], Optional[str]]:
        return [conversation_json(c) for c in _whole_rows(rows, tag, sentiment)], encode_cursor(next_key, view)

    rows: List[Any] = []
    tail_start = (start or {}).get("tail")
    if start is None or "tail" not in start:
        now = runtime.now_ms()
        key_range, only = None, condition
        if sla == "breached":
            key_range = Conversation.deadline < now
        elif sla == "at_risk":
            key_range = Conversation.deadline >= now
            at_risk = Conversation.warn_at <= now
            only = at_risk if condition is None else condition & at_risk
        due = Conversation.by_team_due.query(queue, key_range, scan_index_forward=True, limit=limit, page_size=limit,
                                             last_evaluated_key=start, filter_condition=only)
        rows = _listed(due, start)
        if due.last_evaluated_key is not None or sla is not None:
            return page(rows, due.last_evaluated_key)
        if len(rows) >= limit:
            return page(rows, {"tail": None})
    # `team-latest` projects `due_sort` (not the deadline fields): below NO_DEADLINE is "due".
    only = None if status not in DEADLINE_OF else Conversation.due_sort >= NO_DEADLINE
    if condition is not None:
        only = condition if only is None else only & condition
    rest = Conversation.by_team_recent.query(queue, scan_index_forward=True, limit=limit - len(rows),
                                             page_size=limit - len(rows), last_evaluated_key=tail_start,
                                             filter_condition=only)
    rows += _listed(rest, start)
    return page(rows, None if rest.last_evaluated_key is None else {"tail": rest.last_evaluated_key})


def _listed(results: Any, start: Optional[Dict[str, Any]]) -> List[Any]:
    """The rows of an index page (a cursor of an older layout that DynamoDB refuses is a 400)."""
    try:
        return list(results)
    except Exception as error:  # a signed cursor of an older layout that DynamoDB refuses
        if start is not None and "ValidationException" in str(error):
            raise BadQuery("cursor does not belong to this view") from error
        raise


COUNTED = ("mine", "unassigned", "team", "at_risk", "breached")
COUNT_PAGE = 500  # index entries a view's count reads at most (one Query page): "500+" beyond


def view_counts(team: str, agent_id: str, channel: Optional[str] = None) -> Dict[str, Any]:
    """How many open conversations each view holds (the page's tab counts): one COUNT Query
    of one page per view on the lean deadline indexes (the whole team's queue on `team-latest`:
    `team-deadline` holds only what is due), so five Queries whatever the table size; a view with more
    entries than COUNT_PAGE (or whose filter left some unread) is `capped`."""
    from chalicelib.runtime import runtime

    if channel is not None and channel not in CHANNELS:
        raise BadQuery(f"channel must be one of {', '.join(CHANNELS)}")
    now = runtime.now_ms()
    only = (Conversation.channel == channel) if channel else None
    at_risk = Conversation.warn_at <= now
    queue, owner, team_due = f"{team}#open", ConversationsByOwnerDue.Meta.index_name, \
        ConversationsByTeamDue.Meta.index_name
    plan = {
        "mine": (owner, f"a#{agent_id}#open", None, only),
        "unassigned": (owner, f"u#{team}#open", None, only),
        "team": (ConversationsByTeamRecent.Meta.index_name, queue, None, only),
        "at_risk": (team_due, queue, Conversation.deadline >= now, at_risk if only is None else only & at_risk),
        "breached": (team_due, queue, Conversation.deadline < now, only),
    }
    connection = Conversation._get_connection()
    counts, capped = {}, []
    for name in COUNTED:
        index, key, key_range, condition = plan[name]
        page = connection.query(key, range_key_condition=key_range, filter_condition=condition, index_name=index,
                                limit=COUNT_PAGE, select="COUNT")
        counts[name] = int(page.get("Count", 0))
        if page.get("LastEvaluatedKey"):
            capped.append(name)
    return {"counts": counts, "capped": capped}


def reply_window(state: Dict[str, Any]) -> Dict[str, Any]:
    """Whether a reply can be sent now, how, and until when: the outbound policy's own verdict
    (chalicelib.outbound.policy.plan) now and just past each window boundary it measures, so the
    composer says it before the agent writes (never a second copy of the rules)."""
    from chalicelib.outbound import policy, summons
    from chalicelib.runtime import runtime

    state = summons.with_summons(state)

    def verdict(at: int) -> Tuple[str, Optional[str], Optional[str]]:
        try:
            plan = policy.plan(state, at, has_text=True)
        except policy.Refused as refused:
            return "closed", refused.code, refused.reason
        return ("tagged" if plan.tag else "open"), plan.tag, None

    now = runtime.now_ms()
    mode, detail, reason = verdict(now)
    last_in = state.get("last_inbound_at")
    until, then = None, None
    if last_in is not None:
        for window in sorted({policy.STANDARD_WINDOW_MS, policy.HUMAN_AGENT_WINDOW_MS}):
            boundary = int(last_in) + window
            if boundary >= now and verdict(boundary + 1)[:2] != (mode, detail):
                until, then = boundary, verdict(boundary + 1)
                break
    return {"can_reply": mode != "closed", "mode": mode, "tag": detail if mode == "tagged" else None,
            "code": detail if mode == "closed" else None, "reason": reason, "until": iso(until),
            "then": None if then is None else {"mode": then[0], "tag": then[1] if then[0] == "tagged" else None,
                                               "code": then[1] if then[0] == "closed" else None}}


def _full_rows(ids: List[str]) -> List[Any]:
    """The rows of a lean index page, in the index's order (one BatchGetItem)."""
    if not ids:
        return []
    found = {c.conversation_id: c for c in Conversation.batch_get(ids)}
    return [found[i] for i in ids if i in found]


def get_conversation(conversation_id: str) -> Optional[Conversation]:
    from pynamodb.exceptions import DoesNotExist

    try:
        return Conversation.get(conversation_id)
    except (DoesNotExist, ValueError):
        return None


def list_messages(conversation_id: str, limit: int, cursor: Optional[str]) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    """A thread oldest first, in platform time order (not arrival order)."""
    start = decode_cursor(cursor, "messages|" + conversation_id)
    results = Message.query(conversation_id, scan_index_forward=True, limit=limit, page_size=limit,
                            last_evaluated_key=start)
    items = [message_json(m) for m in results]
    return items, encode_cursor(results.last_evaluated_key, "messages|" + conversation_id)


#: A viewer heartbeat counts this long (the page beats every ~10 s while a thread is open).
VIEWER_WINDOW_SECONDS = 20
MAX_VIEWERS = 50


def current_viewers(conversation_id: str, me: str) -> List[Dict[str, Any]]:
    """Who viewed or typed in the last VIEWER_WINDOW_SECONDS (one Query); also answered by the
    page's change poll (GET /api/changes?viewers=1), so an open thread needs no second timer."""
    from chalicelib.models import ConversationViewer
    from chalicelib.runtime import runtime

    since = runtime.now_ms() - VIEWER_WINDOW_SECONDS * 1000
    found = ConversationViewer.query(conversation_id, filter_condition=ConversationViewer.seen_at >= since,
                                     limit=MAX_VIEWERS, page_size=MAX_VIEWERS)
    from chalicelib.api import names

    return [{"agent_id": v.agent_id, "name": names.label(v.agent_id) if v.name is None else v.name, "typing": bool(v.typing), "seen_at": iso(v.seen_at),
             "me": v.agent_id == me} for v in found]
