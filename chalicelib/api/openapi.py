"""The OpenAPI 3.1 document of the agent API, served at GET /api/openapi.json.

Built in code from one table (ROUTES: path, method -> summary, success status and schema, the
4xx it may answer), so it cannot drift silently: tests/test_openapi.py walks every /api route the
Chalice app registers and fails when one is missing here, and validates real answers of a few
flows against these schemas. Every 4xx has ONE shape: {"Code", "Message"} (Chalice's own errors
use it; extra members such as `current` or `reason` may follow)."""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from chalice import Blueprint

openapi_api = Blueprint(__name__)

S = Dict[str, Any]


def _ref(name: str) -> S:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: S) -> S:
    return {"anyOf": [schema, {"type": "null"}]}


STR, INT, BOOL, TIME = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}, {"type": "string",
                                                                                       "format": "date-time"}
NSTR, NTIME = _nullable(STR), _nullable(TIME)
OBJ: S = {"type": "object"}


def _page(item: S) -> S:
    return {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": item},
                                                                       "next": NSTR}}


SCHEMAS: Dict[str, S] = {
    "Error": {"type": "object", "required": ["Code", "Message"],
              "properties": {"Code": STR, "Message": STR}},
    "Contact": {"type": "object", "required": ["id", "display_name"],
                "properties": {"id": NSTR, "display_name": STR, "handle": NSTR, "platform_id": NSTR,
                               "followers": _nullable(INT)}},
    "Sla": _nullable({"type": "object", "required": ["state", "due_at"],
                      "properties": {"policy_id": NSTR, "target": {"enum": ["first_response", "next_response"]},
                                     "state": {"enum": ["ok", "at_risk", "breached", "paused"]}, "due_at": NTIME,
                                     "warn_at": NTIME, "breached_at": NTIME, "awaiting_since": NTIME,
                                     "remaining_ms": {"type": "integer"}}}),
    "Conversation": {
        "type": "object",
        "required": ["id", "channel", "status", "contact", "message_count", "unread_count", "priority", "tags",
                     "version"],
        "properties": {
            "id": STR, "channel": STR, "account_id": NSTR, "kind": STR, "subject": NSTR, "post_url": NSTR,
            "status": {"enum": ["open", "pending", "snoozed", "resolved"]}, "assignee": NSTR, "assignee_name": NSTR, "team": NSTR,
            "contact": _ref("Contact"), "created_at": NTIME, "last_message_at": NTIME,
            "last_message_preview": NSTR, "last_message_direction": NSTR, "awaiting_reply_since": NTIME,
            "reply_due_at": NTIME, "first_response_at": NTIME, "snoozed_until": NTIME, "sla": _ref("Sla"),
            "message_count": INT, "unread_count": INT,
            "priority": {"enum": ["none", "low", "medium", "high", "urgent"]},
            "tags": {"type": "array", "items": STR}, "version": INT}},
    "Message": {
        "type": "object", "required": ["id", "direction", "type", "sent_at", "attachments", "removed"],
        "properties": {"id": STR, "direction": {"enum": ["in", "out", "note"]}, "type": STR, "text": NSTR,
                       "sent_at": NTIME, "attachments": {"type": "array", "items": OBJ},
                       "delivery_status": NSTR, "delivery_error": NSTR, "platform_message_id": NSTR,
                       "reply_to": NSTR, "author_id": NSTR, "edited_at": NTIME,
                       "edit_history": {"type": "array", "items": OBJ}, "removed": BOOL,
                       "sentiment": _ref("Sentiment"), "topics": {"type": "array", "items": STR}}},
    "PostPreview": {"type": "object", "required": ["text", "url", "picture_url"],
                    "properties": {"text": NSTR, "url": NSTR, "picture_url": NSTR}},
    "Sentiment": {"type": "object", "required": ["label", "score", "language", "corrected"],
                  "properties": {"label": {"enum": ["positive", "neutral", "negative", "unscored"]},
                                 "score": _nullable({"type": "number", "minimum": -1, "maximum": 1}),
                                 "language": NSTR, "corrected": BOOL}},
    "ListeningItem": {
        "type": "object",
        "required": ["id", "source", "platform_post_id", "author", "text", "url", "created_at", "sentiment", "topics",
                     "replyable", "not_replyable_reason", "conversation_id"],
        "properties": {"id": STR, "source": {"enum": ["x_search", "instagram_hashtag", "facebook_mention",
                                                      "instagram_mention", "linkedin_mention", "x_mention"]},
                       "platform_post_id": STR, "text": NSTR, "url": NSTR, "created_at": NTIME,
                       "author": {"type": "object", "properties": {"name": NSTR, "handle": NSTR,
                                                                   "followers": _nullable(INT)}},
                       "sentiment": _ref("Sentiment"), "topics": {"type": "array", "items": STR},
                       "replyable": BOOL, "not_replyable_reason": NSTR, "conversation_id": NSTR,
                       "status": {"enum": ["new", "converted", "dismissed"]},
                       "priority": _nullable({"enum": ["medium", "high", "urgent"]})}},
    "Topic": {"type": "object", "required": ["id", "name", "include", "exclude", "languages", "sources"],
              "properties": {"id": STR, "name": STR, "include": {"type": "array", "items": STR},
                             "exclude": {"type": "array", "items": STR}, "languages": {"type": "array", "items": STR},
                             "sources": {"type": "array", "items": STR}, "created_at": INT, "updated_at": INT}},
    "Event": {"type": "object", "required": ["seq", "at", "type", "actor"],
              "properties": {"seq": INT, "at": TIME, "type": STR, "actor": STR, "data": OBJ}},
    "BulkResult": {
        "type": "object", "required": ["results", "ok", "failed"],
        "properties": {"ok": INT, "failed": INT, "results": {"type": "array", "items": {
            "type": "object", "required": ["id", "status", "applied"],
            "properties": {"id": STR, "status": {"enum": [200, 403, 404, 409, 422]},
                           "applied": {"type": "array", "items": STR}, "conversation": _ref("Conversation"),
                           "error": _ref("Error")}}}}},
    "CannedReply": {"type": "object", "required": ["id", "scope", "shortcut", "title", "text"],
                    "properties": {"id": STR, "scope": {"enum": ["shared", "personal"]}, "shortcut": STR,
                                   "title": STR, "text": STR, "created_by": NSTR, "created_at": NTIME,
                                   "updated_at": NTIME}},
    "CannedReplyInput": {"type": "object", "required": ["shortcut", "title", "text"],
                         "properties": {"shortcut": STR, "title": STR, "text": STR, "shared": BOOL}},
    "Rendered": {"type": "object", "required": ["id", "conversation_id", "text"],
                 "properties": {"id": STR, "conversation_id": STR, "text": STR}},
    "SearchResult": {"type": "object", "required": ["items", "terms"],
                     "properties": {"items": {"type": "array", "items": _ref("Conversation")},
                                    "terms": {"type": "array", "items": STR}}},
    "Viewers": {"type": "object", "required": ["items", "typing"],
                "properties": {"typing": {"type": "array", "items": STR}, "items": {"type": "array", "items": {
                    "type": "object", "required": ["agent_id", "typing", "seen_at", "me"],
                    "properties": {"agent_id": STR, "name": NSTR, "typing": BOOL, "seen_at": TIME, "me": BOOL}}}}},
    "Viewing": {"type": "object", "required": ["conversation_id", "typing"],
                "properties": {"conversation_id": STR, "typing": BOOL, "expires_in": INT}},
    "Token": {"type": "object", "required": ["token", "token_type"],
              "properties": {"token": STR, "token_type": STR}},
    "Me": {"type": "object", "required": ["id", "role"],
           "properties": {"id": STR, "email": STR, "name": STR, "role": STR, "teams": {"type": "array", "items": STR}}},
    "Page": _page(OBJ),
    "StaffingResult": {
        "type": "object",
        "description": "traffic = arrivals / interval x handle / concurrency (Erlangs); agents: whole agents on "
                       "the floor meeting the service level and the occupancy cap; agents_raw: the fractional "
                       "requirement (add over intervals, round over a shift); rostered = ceil(agents / (1 - "
                       "shrinkage)); workload: no wait figures (null), service level = share of the window's "
                       "work finished in time",
        "required": ["model", "agents", "agents_raw", "service_level_pct", "occupancy_pct", "wait_probability_pct",
                     "average_wait_seconds", "rostered", "traffic_erlangs"],
        "properties": {"model": {"enum": ["erlang_c", "erlang_a", "workload"]}, "agents": INT,
                       "agents_raw": {"type": "number"}, "service_level_pct": {"type": "number"},
                       "occupancy_pct": {"type": "number"},
                       "wait_probability_pct": _nullable({"type": "number"}),
                       "average_wait_seconds": _nullable({"type": "number"}),
                       "abandon_pct": _nullable({"type": "number"}), "rostered": INT,
                       "traffic_erlangs": {"type": "number"}}},
    "Templates": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {
        "type": "object", "required": ["name", "language", "body", "body_params", "header_params", "sendable"],
        "description": "header/body/footer text with {{n}} or {{name}} placeholders; send one with "
                       '{"template": {"name", "language", "variables": {"header": [...], "body": [...]}}}',
        "properties": {"name": STR, "language": STR, "category": NSTR, "header": NSTR, "body": STR,
                       "footer": NSTR, "header_params": {"type": "array", "items": STR},
                       "body_params": {"type": "array", "items": STR}, "sendable": BOOL, "why_not": NSTR}}}}},
    "Object": OBJ,
}

# (path, method) -> (summary, success status, success schema or None for no body, 4xx answered)
Route = Tuple[str, int, Optional[S], Tuple[int, ...]]
AUTH = (401,)
ROUTES: Dict[Tuple[str, str], Route] = {
    ("/api/auth/login", "POST"): ("Sign in: a token", 200, _ref("Token"), (400, 401, 429)),
    ("/api/auth/refresh", "POST"): ("A new access token from a refresh token", 200, _ref("Object"), (400, 401)),
    ("/api/auth/logout", "POST"): ("End this sign-in", 200, _ref("Object"), (400, 401)),
    ("/api/me", "GET"): ("The signed-in agent", 200, _ref("Me"), AUTH),
    ("/api/me/notifications", "GET"): ("SLA notifications, newest first", 200, _ref("Page"), (400, 401)),
    ("/api/me/password", "POST"): ("Change my password", 200, _ref("Object"), (400, 401, 403)),
    ("/api/me/presence", "PUT"): ("My presence (routing)", 200, _ref("Object"), (400, 401)),
    ("/api/conversations", "GET"): ("An inbox view (one index Query)", 200, _page(_ref("Conversation")), (400, 401, 403)),
    ("/api/conversations/bulk", "POST"): ("One change on up to 100 conversations, answered per id", 200,
                                          _ref("BulkResult"), (400, 401, 422)),
    ("/api/conversations/{conversation_id}", "GET"): ("A conversation", 200, _ref("Conversation"), (401, 404)),
    ("/api/conversations/{conversation_id}", "PATCH"): ("Status, assignment, priority, tags", 200,
                                                        _ref("Conversation"), (400, 401, 403, 404, 409, 422)),
    ("/api/conversations/{conversation_id}/read", "POST"): ("Mark read", 200, _ref("Conversation"), (401, 404)),
    ("/api/conversations/{conversation_id}/events", "GET"): ("The event log, oldest first", 200,
                                                             _page(_ref("Event")), (400, 401, 404)),
    ("/api/conversations/{conversation_id}/messages", "GET"): ("The thread, oldest first", 200,
                                                               _page(_ref("Message")), (400, 401, 404)),
    ("/api/conversations/{conversation_id}/messages", "POST"): ("A reply (queued) or a note", 202, _ref("Message"),
                                                                (400, 401, 404, 409, 422)),
    ("/api/conversations/{conversation_id}/attachments", "POST"): (
        "A file for a reply (raw bytes, ?filename=): checked by content (JPEG, PNG, PDF) against what the "
        "platform takes (X: images only) and its size limit (<= 4 MB), 422 attachments_not_supported on a thread "
        "that cannot carry a file (comments; Facebook, LinkedIn), kept in our attachments bucket, handed to the "
        "platform where it takes files before the message (WhatsApp, Messenger, X media upload; Telegram and "
        "Instagram fetch our copy by a pre-signed URL when the reply is sent), answered with the token a reply "
        "sends it by ('attachment'); 502 when the platform or our storage refuses it", 201,
        _ref("Object"), (400, 401, 404, 413, 422, 502)),
    ("/api/conversations/{conversation_id}/templates", "GET"): (
        "The approved WhatsApp templates of the conversation's account (cached a few minutes; 503 when Meta "
        "cannot be asked)", 200, _ref("Templates"), (401, 404, 422)),
    ("/api/conversations/{conversation_id}/viewing", "PUT"): ("Viewing/typing heartbeat", 200, _ref("Viewing"),
                                                              (400, 401, 404)),
    ("/api/conversations/{conversation_id}/viewers", "GET"): ("Who viewed or typed in the last 20 s", 200,
                                                              _ref("Viewers"), (401, 404)),
    ("/api/staffing/calculate", "POST"): ("Agents one interval needs: Erlang C, Erlang A (patience) or the "
                                          "asynchronous workload model (supervisors, admins)", 200,
                                          _ref("StaffingResult"), (400, 401, 403)),
    ("/api/staffing/handle-time", "GET"): ("Measured handle time (focus per conversation cycle) of a channel group: "
                                           "mean, spread, sample size (supervisors, admins)", 200, _ref("Object"),
                                           (400, 401, 403)),
    ("/api/staffing/plan", "GET"): ("A channel group's staffing plan: last week's arrivals, required and online "
                                    "agents per 30 minutes, the forecast, its backtest accuracy (supervisors, admins)",
                                    200, _ref("Object"), (400, 401, 403)),
    ("/api/staffing/settings", "GET"): ("A group's staffing settings (supervisors, admins)", 200, _ref("Object"),
                                        (400, 401, 403)),
    ("/api/staffing/settings", "PUT"): ("Set a group's staffing settings (admins)", 200, _ref("Object"),
                                        (400, 401, 403)),
    ("/api/search", "GET"): ("Search names, handles and message text", 200, _ref("SearchResult"), (400, 401)),
    ("/api/counts", "GET"): ("Open conversations per view (mine, unassigned, team, at risk, breached)", 200,
                             _ref("Object"), (400, 401, 403)),
    ("/api/changes", "GET"): ("Which parts of the page changed since a token (304: none)", 200, _ref("Object"),
                              (400, 401, 403)),
    ("/api/contacts/{contact_id}", "GET"): ("A contact: identities, conversations, notes", 200, _ref("Object"),
                                            (401, 404)),
    ("/api/contacts/{contact_id}/notes", "GET"): ("Agents' notes about the contact", 200, _ref("Page"), (401, 404)),
    ("/api/contacts/{contact_id}/notes", "POST"): ("Add a note about the contact", 201, _ref("Object"),
                                                   (400, 401, 404)),
    ("/api/contacts/{contact_id}/notes/{note_id}", "PATCH"): ("Edit a note (author, supervisor, admin)", 200,
                                                              _ref("Object"), (400, 401, 403, 404, 409)),
    ("/api/contacts/{contact_id}/links", "POST"): ("Link another identity of the same person", 200, _ref("Object"),
                                                   (400, 401, 404, 409)),
    ("/api/contacts/{contact_id}/links", "DELETE"): ("This identity stands alone again", 200, _ref("Object"),
                                                     (401, 404, 409)),
    ("/api/canned-replies", "GET"): ("Shared and my canned replies", 200, _page(_ref("CannedReply")), AUTH),
    ("/api/canned-replies", "POST"): ("Create a canned reply", 201, _ref("CannedReply"), (400, 401, 403, 409)),
    ("/api/canned-replies/{reply_id}", "GET"): ("A canned reply", 200, _ref("CannedReply"), (401, 404)),
    ("/api/canned-replies/{reply_id}", "PUT"): ("Replace a canned reply", 200, _ref("CannedReply"),
                                                (400, 401, 403, 404, 409)),
    ("/api/canned-replies/{reply_id}", "DELETE"): ("Delete a canned reply", 204, None, (401, 403, 404)),
    ("/api/canned-replies/{reply_id}/render", "GET"): ("The text with placeholders filled", 200, _ref("Rendered"),
                                                       (400, 401, 404)),
    ("/api/media/{conversation_id}/{message_id}/{index}", "GET"): (
        "An attachment: a file an agent sent from our own stored copy, a received one fetched with the "
        "account's token; streamed back", 200, {"type": "string",
                                                                                  "format": "binary"},
        (400, 401, 404, 413)),
    ("/api/conversations/{conversation_id}/contact/picture", "GET"): (
        "The customer's profile picture, fetched from the platform's CDN and streamed back (404: none)", 200,
        {"type": "string", "format": "binary"}, (401, 404, 413)),
    ("/api/conversations/{conversation_id}/post", "GET"): (
        "The post behind a comment or mention thread: its first lines, its address, our URL for its picture "
        "(looked up once with the account's token, refreshed daily)", 200, _ref("PostPreview"), (401, 404)),
    ("/api/conversations/{conversation_id}/post/picture", "GET"): (
        "The post's picture, fetched from the platform's CDN and streamed back", 200,
        {"type": "string", "format": "binary"}, (401, 404, 413)),
    ("/api/openapi.json", "GET"): ("This document", 200, _ref("Object"), ()),
    ("/api/accounts", "GET"): ("Channel accounts (admins)", 200, _page(_ref("Object")), (401, 403)),
    ("/api/accounts", "POST"): ("Register a channel account (admins)", 201, _ref("Object"), (400, 401, 403, 409)),
    ("/api/admin/quarantine", "GET"): ("Quarantined deliveries (admins)", 200, _ref("Page"), (400, 401, 403)),
    ("/api/admin/quarantine/replay", "POST"): ("Replay quarantined items (admins)", 200, _ref("Object"),
                                               (400, 401, 403)),
    ("/api/admin/quarantine/{item_id}", "GET"): ("A quarantined item (admins)", 200, _ref("Object"), (401, 403, 404)),
    ("/api/admin/dlq", "GET"): ("Envelopes parked in the dead-letter queue (admins)", 200, _ref("Page"), (400, 401, 403)),
    ("/api/admin/dlq/replay", "POST"): ("Replay parked envelopes: listed ids or all (admins)", 200, _ref("Object"),
                                        (400, 401, 403)),
    ("/api/admin/teams", "GET"): ("Teams, modes and member counts (admins, supervisors)", 200, _ref("Page"), (401, 403)),
    ("/api/accounts/{channel}/{platform_account_id}", "PATCH"): (
        "Rename, enable/disable, move, or reconnect a channel account (admins)", 200, _ref("Object"),
        (400, 401, 403, 404)),
    ("/api/agents", "GET"): ("Agents (admins)", 200, _ref("Object"), (400, 401, 403)),
    ("/api/agents", "POST"): ("Invite/create an agent (admins)", 201, _ref("Object"), (400, 401, 403, 409)),
    ("/api/agents/{agent_id}", "GET"): ("An agent", 200, _ref("Object"), (401, 403, 404)),
    ("/api/agents/{agent_id}", "PATCH"): ("Role, teams, capacity, deactivation", 200, _ref("Object"),
                                          (400, 401, 403, 404, 409)),
    ("/api/agents/{agent_id}/routing", "PUT"): ("An agent's routing profile", 200, _ref("Object"), (400, 401, 403, 404)),
    ("/api/teams/{team}", "PUT"): ("A team's routing mode", 200, _ref("Object"), (400, 401, 403)),
    ("/api/teams", "GET"): ("The teams whose agents the caller may assign to", 200, _ref("Object"), AUTH),
    ("/api/teams/{team}/agents", "GET"): ("A team's agents, their names and load", 200, _ref("Object"), (400, 401, 403)),
    ("/api/sla-policies", "GET"): ("SLA policies (admins)", 200, _ref("Object"), (401, 403)),
    ("/api/sla-policies", "POST"): ("Create an SLA policy", 201, _ref("Object"), (400, 401, 403, 409)),
    ("/api/sla-policies/{policy_id}", "GET"): ("An SLA policy", 200, _ref("Object"), (401, 403, 404)),
    ("/api/sla-policies/{policy_id}", "PUT"): ("Replace an SLA policy", 200, _ref("Object"), (400, 401, 403, 404, 409)),
    ("/api/sla-policies/{policy_id}", "DELETE"): ("Delete an SLA policy", 204, None, (401, 403, 404)),
    ("/api/listening/topics", "GET"): ("Listening topics", 200, _page(_ref("Topic")), AUTH),
    ("/api/listening/topics", "POST"): ("Create a topic (admins)", 201, _ref("Topic"), (400, 401, 403, 409)),
    ("/api/listening/topics/{topic_id}", "PUT"): ("Replace a topic (admins)", 200, _ref("Topic"),
                                                  (400, 401, 403, 404, 409)),
    ("/api/listening/topics/{topic_id}", "DELETE"): ("Delete a topic (admins)", 204, None, (401, 403, 404, 409)),
    ("/api/conversations/{conversation_id}/messages/{message_id}", "PATCH"): (
        "Correct a customer message's sentiment", 200, _ref("Object"), (400, 401, 404)),
    ("/api/listening/items", "GET"): ("Mentions and found posts, newest first", 200, _page(_ref("ListeningItem")),
                                      (400, 401)),
    ("/api/listening/items/{item_id}/convert", "POST"): ("The item as a conversation", 200, _ref("ListeningItem"),
                                                         (400, 401, 404)),
    ("/api/listening/items/{item_id}/dismiss", "POST"): ("Dismiss an item", 200, _ref("ListeningItem"), (401, 404)),
    ("/api/listening/x-budget", "GET"): ("X search budget: posts per month, used, exhausted", 200, _ref("Object"),
                                         AUTH),
    ("/api/listening/x-budget", "PUT"): ("Set the monthly X search budget (admins)", 200, _ref("Object"),
                                         (400, 401, 403)),
    ("/api/listening/corrections", "GET"): ("Sentiment corrections, oldest first (the labelled set)", 200,
                                            _ref("Page"), (400, 401, 403)),
    ("/api/listening/priority-rules", "GET"): ("Priority rules: sentiment and reach that raise priority", 200,
                                               _ref("Object"), AUTH),
    ("/api/listening/priority-rules", "PUT"): ("Replace the priority rules (admins)", 200, _ref("Object"),
                                               (400, 401, 403)),
    ("/api/listening/ig-hashtags", "GET"): ("Instagram hashtag slots (30 per account per 7 days) and reads", 200,
                                            _ref("Object"), AUTH),
}

# --- reports (chalicelib.reports): the definitions are part of the contract ------------------------
_NINT, _NNUM = _nullable(INT), _nullable({"type": "number"})
_DURATIONS: S = {"type": "object", "required": ["count", "median_s", "p90_s", "within_target_pct"], "properties": {
    "count": INT, "median_s": _NINT, "p90_s": _NINT, "within_target_pct": _NNUM,
    "business_hours": {"type": "object", "properties": {"median_s": _NINT, "p90_s": _NINT}}}}
_ATTAINMENT: S = {"type": "object", "required": ["met", "missed", "pending", "attainment_pct"],
                  "properties": {"met": _NINT, "missed": _NINT, "pending": _NINT, "attainment_pct": _NNUM}}
_PERIOD: S = {"type": "object", "required": ["from", "to", "tz", "counts"],
              "properties": {"from": TIME, "to": TIME, "tz": STR, "counts": {"enum": ["cohort", "activity"]},
                             "activity": {"type": "array", "items": STR}}}
_RATE_PROPS: S = {"pct": _NNUM, "answered": INT, "total": INT, "public": INT, "private": INT, "moderated": INT}
SCHEMAS.update({
    "ReportDurations": _DURATIONS, "ReportAttainment": _ATTAINMENT, "ReportPeriod": _PERIOD,
    "ReportSummary": {"type": "object", "required": ["first_response", "next_response", "resolution", "sla", "volume",
                                                     "response_rate", "unanswered", "period"], "properties": {
        "first_response": _ref("ReportDurations"), "next_response": _ref("ReportDurations"),
        "resolution": _ref("ReportDurations"),
        "sla": {"type": "object", "properties": {k: _ref("ReportAttainment") for k in ("first", "next", "resolution")}},
        "volume": {"type": "object", "properties": {k: _NINT for k in (
            "inbound", "outbound", "new_conversations", "unique_authors", "cycles", "customer_waits", "replies",
            "private_replies", "resolved", "breaches")}},
        "response_rate": _nullable({"type": "object", "required": ["pct", "by_type"], "properties": dict(
            _RATE_PROPS, by_type={"type": "object", "properties": {k: {
                "type": "object", "required": ["pct", "answered", "total"], "properties": _RATE_PROPS}
                for k in ("dm", "comment", "mention")}})}),
        "unanswered": _nullable({"type": "object", "properties": {"count": INT, "oldest_wait_s": _NINT}}),
        "period": _ref("ReportPeriod"), "previous": OBJ}},
    "ReportIntervals": {"type": "object", "required": ["items", "period"], "properties": {
        "items": {"type": "array", "items": {"type": "object", "properties": {
            "start": TIME, "waits": INT, "cycles": INT, "breaches": INT, "new_conversations": INT}}},
        "period": _ref("ReportPeriod")}},
    "ReportConversations": {"type": "object", "required": ["items", "next_cursor", "period"], "properties": {
        "items": {"type": "array", "items": {"type": "object", "required": ["conversation_id", "cycle_started"],
                                             "properties": {"conversation_id": STR, "cycle_started": TIME,
                                                            "agents": {"type": "array", "items": STR},
                                                            "tags": {"type": "array", "items": STR},
                                                            "first_response_s": _NINT, "resolution_s": _NINT,
                                                            "sla_first": _nullable(STR)}}},
        "next_cursor": _nullable(STR), "period": _ref("ReportPeriod")}},
    "ReportTimeseries": {"type": "object", "required": ["metric", "group_by", "points", "period"], "properties": {
        "metric": STR, "group_by": {"enum": ["day", "week", "month"]},
        "points": {"type": "array", "items": {"type": "object", "properties": {"start": TIME, "value": _NNUM}}},
        "period": _ref("ReportPeriod")}},
    "ReportHeatmap": {"type": "object", "required": ["metric", "cells", "period"], "properties": {
        "metric": STR, "cells": {"type": "array", "items": {"type": "array", "items": INT}},
        "period": _ref("ReportPeriod")}},
})
REPORT_DEFINITIONS = (
    "Definitions. A cycle runs from the customer message that opens a conversation (or comes after it was "
    "resolved) to its resolution; times never span cycles. First response: the cycle's first customer wait "
    "(first unanswered customer message) to the reply that ends it (public, or a private reply to a comment); "
    "next response: each later wait to its reply; notes, platform events and bot/automatic messages never stop "
    "the clock. Resolution: cycle start to resolve. median_s/p90_s: nearest-rank percentiles from log-bucket "
    "histograms (relative error <= 2 %); business_hours: the same waits in the SLA policy's calendar (holidays, "
    "several ranges a day) frozen in the log at reply time. within_target_pct: share of replies by the SLA "
    "deadline (resolution: resolved by the policy's resolution target). SLA per target: met = by the deadline; "
    "missed = late, deadline passed unanswered or unresolved (open and late counts as missed; a resolution "
    "deadline to the 15 minutes), or closed after it; pending = open and within target (never a hit); "
    "attainment_pct = met / (met + missed). The resolution target is the policy's, frozen in the log when the "
    "cycle starts. period.counts=cohort: numbers are counted for the cycles that started in the period, except "
    "those listed in period.activity, which count events at their own time (messages by platform time, customer "
    "waits, breaches). volume.inbound/outbound: customer messages and our messages (notes excluded); "
    "unique_authors: distinct customers who wrote, a HyperLogLog estimate mergeable over any period (standard "
    "error 3.25 %, near exact below 2,560). response_rate: answered cycles / cycles needing a response, per "
    "thread kind (dm, comment, mention); public/private: how the first reply went; moderated: cycles resolved "
    "without any reply (hidden, archived, closed as needing none), counted apart and excluded from total. "
    "unanswered.count: cycles neither answered nor moderated; oldest_wait_s: age now of the oldest customer wait "
    "still open that started in the period (from its 15-minute bucket's start). Dimensions are the labels at "
    "the event (a later relabel never moves counted numbers). Filters: one of channel, channel+account, "
    "priority, tag (admins), agent; or a team alone or with one of channel, channel+account, priority. Admins "
    "read everything; supervisors their teams (default: their first team) and agents of their teams; agents "
    "only themselves. pct values 0-100, times in seconds, null = no data. Timeseries metrics: "
    + ", ".join(("inbound", "outbound", "unique_authors", "customer_waits", "breaches", "new_conversations",
                 "cycles", "replies", "resolved", "response_rate", "unanswered", "first_response_median",
                 "first_response_p90", "first_response_within_target", "next_response_median", "next_response_p90",
                 "resolution_median", "resolution_p90", "sla_first_attainment", "sla_next_attainment",
                 "sla_resolution_attainment"))
    + "; groups are local days (<= 92), Monday weeks or months in tz, DST-correct.")
_REPORT_FILTERS = ("from", "to", "tz", "channel", "team", "agent", "account", "priority", "tag")
QUERY_PARAMETERS: Dict[str, Tuple[str, ...]] = {
    "/api/reports/summary": _REPORT_FILTERS + ("compare", "format"),
    "/api/reports/timeseries": _REPORT_FILTERS + ("metric", "group_by", "format"),
    "/api/reports/intervals": _REPORT_FILTERS + ("format",),
    "/api/reports/heatmap": _REPORT_FILTERS + ("metric", "format"),
    "/api/reports/conversations": _REPORT_FILTERS + ("format", "cursor", "limit", "filter", "kind",
                                                     "weekday", "hour"),
}
ROUTES.update({
    ("/api/reports/summary", "GET"): ("Response, resolution, SLA attainment and volumes of a period (<= 400 days) "
                                      "in an IANA time zone; format=csv: one (metric, value) row per number of the answer",
                                      200, _ref("ReportSummary"), (400, 401, 403)),
    ("/api/reports/intervals", "GET"): ("Arrivals per 15-minute interval (<= 92 days): customer waits, cycles, "
                                        "breaches, new conversations; format=csv for a spreadsheet", 200, _ref("ReportIntervals"), (400, 401, 403)),
    ("/api/reports/timeseries", "GET"): ("One metric per local day, week or month of a period (<= 400 days; "
                                         "days <= 92); format=csv for a spreadsheet", 200, _ref("ReportTimeseries"),
                                         (400, 401, 403)),
    ("/api/reports/heatmap", "GET"): ("A metric of the intervals per local weekday (0 = Monday) and hour; format=csv: a "
                                      "row per weekday, a column per hour", 200,
                                      _ref("ReportHeatmap"), (400, 401, 403)),
    ("/api/reports/conversations", "GET"): (
        "One row per conversation cycle that started in the period (<= 400 days), in start order: times, SLA "
        "outcomes, team, tags and priority as they were, agents by name. Paged: pass next_cursor back as cursor "
        "(format=csv: the X-Next-Cursor header; later pages carry no header row); limit 1-1000 rows read per page "
        "(a filtered page may hold fewer and still have a next page). Drill-down: filter= one of the summary's "
        "numbers (first_response, first_response_in, next_response, resolution, new, breached, private_reply, "
        "answered, unanswered, sla_first|sla_next_met|missed|pending|closed), kind=dm|comment|mention, tag, "
        "priority, weekday (0 = Monday) + hour: a customer wait of the cycle started in that local hour (a "
        "heatmap cell)", 200, _ref("ReportConversations"), (400, 401, 403)),
})

# --- the attention report (chalicelib.analytics): platform analytics next to the inbox ---------------
_METRIC_CELL: S = {"type": "object", "required": ["label", "value", "status"], "properties": {
    "label": STR, "value": _nullable({"type": "number"}), "status": {"enum": ["ok", "no_longer_available", "no_data"]}}}
_NNUMBER = _nullable({"type": "number"})
SCHEMAS.update({
    "AttentionReport": {"type": "object", "required": ["rows", "channels", "period"], "properties": {
        "rows": {"type": "array", "items": {"type": "object", "required": ["day", "channel", "reach", "followers",
                                                                           "new_followers", "platform"], "properties": {
            "day": {"type": "string", "format": "date"}, "channel": STR, "reach": _NNUMBER, "followers": _NNUMBER,
            "new_followers": _NNUMBER,
            "new_conversations": _nullable(INT), "customer_waits": _nullable(INT), "replies": _nullable(INT),
            "inbound": _nullable(INT), "response_rate_pct": _NNUMBER, "first_response_median_s": _nullable(INT),
            "first_response_p90_s": _nullable(INT), "unanswered": _nullable(INT),
            "platform": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/AttentionMetric"}}}}},
        "channels": {"type": "object", "additionalProperties": {"type": "object", "required": ["available", "note"],
                                                                  "properties": {"available": BOOL, "source": NSTR,
                                                                                 "note": STR, "metrics": {"type": "array"}}}},
        "period": {"$ref": "#/components/schemas/ReportPeriod"}}},
    "AttentionMetric": _METRIC_CELL,
})
ATTENTION_DEFINITIONS = (
    "Per local day (tz) and channel: the platform's own analytics, snapshotted daily by analytics_snapshot "
    "(Facebook Page insights, Instagram account insights, LinkedIn organization share and follower statistics, "
    "WhatsApp message and pricing analytics, X public metrics of our own posts summed per day of publication; "
    "Telegram offers bots no analytics: channels.telegram.available is false), next to the inbox's numbers with the "
    "summary's definitions for the cycles that started that day (cohort). reach, followers (the total: a daily "
    "series where the platform keeps one, else the count read by the daily snapshot) and new_followers sum the metrics "
    "the catalogue (chalicelib/analytics/metrics.json) names for them, summed over the channel's accounts; platform "
    "days are the platform's calendar dates (Meta: Pacific time, others UTC). platform.<metric>.status: ok, "
    "no_longer_available (the platform stopped serving the metric, e.g. Graph's invalid metric answer), no_data "
    "(no snapshot of that day). Rows: days with platform data or inbox activity. At most 92 days. Admins: every "
    "channel; supervisors: their team's conversations (team, default their first) next to the channel's platform "
    "numbers; agents: 403. format=csv: the same rows, one column per platform metric.")
QUERY_PARAMETERS_ATTENTION = ("from", "to", "tz", "channel", "team", "format")
ROUTES.update({
    ("/api/reports/attention", "GET"): ("Attention: platform reach, followers and metrics next to inbound volume, "
                                        "response rate and response times per day and channel", 200,
                                        _ref("AttentionReport"), (400, 401, 403)),
})

# Listening's report (chalicelib.listening.trends): found posts and mentions of a period.
SCHEMAS["TopicsReport"] = {
    "type": "object", "required": ["days", "topics", "share_of_voice", "top_authors", "items_read", "truncated", "period"],
    "description": "days: per local day, `all` and per topic {total, positive, neutral, negative, unscored}; "
                   "share_of_voice: each compared topic's posts as a percent of the compared topics' posts and "
                   "its negative share; top_authors: most posts first. At most 20,000 items are read (one "
                   "Query of the period's key range, never a Scan): past that `truncated` and `counted_until`.",
    "properties": {"days": {"type": "array", "items": {"type": "object"}},
                   "topics": {"type": "array", "items": {"type": "object"}},
                   "share_of_voice": {"type": "array", "items": {"type": "object"}},
                   "top_authors": {"type": "array", "items": {"type": "object"}},
                   "items_read": INT, "truncated": {"type": "boolean"}, "period": {"type": "object"}}}
QUERY_PARAMETERS["/api/reports/topics"] = ("from", "to", "tz", "compare", "format")
ROUTES[("/api/reports/topics", "GET")] = (
    "Listening topics and sentiment per local day, share of voice (compare=Ours,Competitor), top authors "
    "(supervisors and admins); an item an agent corrected counts under the corrected sentiment; format=csv for a "
    "spreadsheet", 200, _ref("TopicsReport"), (400, 401, 403))

ERROR_TEXT = {400: "Malformed request", 401: "No valid Bearer token", 403: "Not allowed for this role",
              404: "Not found (or not visible to this agent)", 409: "Conflict", 413: "Too large",
              422: "Refused by a rule", 429: "Too many requests (Retry-After says when to try again)",
              502: "A platform (or our file storage) refused or did not answer; the reason says which"}


def document() -> S:
    paths: Dict[str, Dict[str, Any]] = {}
    for (path, method), (summary, status, schema, errors) in sorted(ROUTES.items()):
        responses: Dict[str, Any] = {}
        if schema is None:
            responses[str(status)] = {"description": summary}
        elif schema.get("format") == "binary":
            responses[str(status)] = {"description": summary, "content": {"application/octet-stream": {"schema": schema}}}
        else:
            responses[str(status)] = {"description": summary, "content": {"application/json": {"schema": schema}}}
        bearer = path not in ("/api/auth/login", "/api/auth/refresh", "/api/openapi.json")
        if bearer and path != "/api/auth/logout" and 429 not in errors:
            errors = errors + (429,)  # every agent's requests are rate-limited (chalicelib.api.ratelimit)
        for code in errors:
            responses[str(code)] = {"description": ERROR_TEXT[code],
                                    "content": {"application/json": {"schema": _ref("Error")}}}
        operation: Dict[str, Any] = {"summary": summary, "responses": responses,
                                     "operationId": method.lower() + path.replace("/", "_").replace("{", "").replace(
                                         "}", "").replace("-", "_").replace(".", "_")}
        parameters = [{"name": part[1:-1], "in": "path", "required": True, "schema": STR}
                      for part in path.split("/") if part.startswith("{")]
        parameters += [{"name": name, "in": "query", "required": name in ("from", "to"), "schema": STR}
                       for name in QUERY_PARAMETERS.get(path, QUERY_PARAMETERS_ATTENTION
                                                        if path == "/api/reports/attention" else ())]
        if parameters:
            operation["parameters"] = parameters
        if path.startswith("/api/reports/"):
            operation["description"] = ATTENTION_DEFINITIONS if path == "/api/reports/attention" else REPORT_DEFINITIONS
        if bearer:
            operation["security"] = [{"bearer": []}]
        paths.setdefault(path, {})[method.lower()] = operation
    return {"openapi": "3.1.0",
            "info": {"title": "socialinbox agent API", "version": "1",
                     "description": "Every 4xx answers {\"Code\", \"Message\"} (schema Error)."},
            "paths": paths,
            "components": {"schemas": SCHEMAS,
                           "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}}}


@openapi_api.route("/api/openapi.json", methods=["GET"])
def openapi_json() -> Any:
    return document()
