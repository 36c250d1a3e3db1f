"""One row per conversation cycle: what the export (`/api/reports/conversations`) and the
drill-down read, kept by the event log's stream consumer beside the counters.

Why a record per cycle: counters answer "how many" in bounded reads, but a BI tool wants the
cycles themselves and a team lead wants to open the 7 conversations behind "7 missed". The rows
come from the very fold the counters come from (`cycles.fold`): each contribution a log entry
makes to a cycle's counters is added to that cycle's row, so a drill-down lists exactly the
cycles a summary number counted (cohort: by the cycle's start).

Items (models.ReportCycle, table `report-cycles`): `conversation_id` + `start` (the cycle's start
ms) with `day` ("YYYY-MM-DD", UTC) and `start_key` ("<13-digit start>#<conversation id>") for the
`by-day` index; start 0 is the conversation's fold state and the `seq` of the last entry folded.
Exactly once, without a transaction: the touched rows are put first, then the state's new `seq`
conditioned on the state still holding the `seq` read; a redelivered entry changes nothing, a gap
is filled from the log. Rows are deterministic for a log prefix, so a retried put (after a crash
between the rows and the state) writes the same row again, and a row is never replaced by one of
an earlier prefix (`_write`).

Reading: a period is its UTC days; each day partition is one Query (Limit = what is left of the
page), so a page costs at most `limit` items and MAX_DAY_QUERIES Queries, whatever the range.
"""
from __future__ import annotations

import base64
import copy
import datetime as _dt
import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from chalicelib import config
from chalicelib.reports import cycles, ledger

STATE_START = 0
DAY_MS = 86_400_000
MAX_DAY_QUERIES = 31
DEFAULT_LIMIT = 200
MAX_LIMIT = 1000
#: A conversation's entries are committed in chunks of this many: the state moves on after each,
#: so a very long gap filled from the log is written in bounded steps.
CHUNK = 90
SLA_OUTCOMES = ("met", "missed", "pending", "closed")
#: What a drill-down may ask for (`filter=`): each is a test on a row, named after the number on
#: the screen it explains.
FILTERS = ("first_response", "first_response_in", "next_response", "resolution", "new", "breached",
           "private_reply", "answered", "unanswered") + tuple(
    f"sla_{target}_{outcome}" for target in ("first", "next") for outcome in SLA_OUTCOMES)


class Busy(RuntimeError):
    """The fold state kept moving under us: the batch is retried by the stream."""


def table() -> str:
    return config.table_name("report-cycles")


def _client() -> Any:
    from chalicelib.runtime import runtime

    return runtime.client("dynamodb")


# --- the fold ----------------------------------------------------------------------------------------


def new_row(conversation_id: str, start: int, tracker: Mapping[str, Any], meta: Mapping[str, Any]) -> Dict[str, Any]:
    return {"conversation_id": conversation_id, "start": start, "channel": tracker.get("channel") or "unknown",
            "account_id": meta.get("account_id"), "team": tracker.get("team") or "default",
            "kind": tracker.get("kind") or "dm", "new": False, "agents": [], "assignee": None, "tags": [],
            "priority": None, "first_reply_at": None, "resolved_at": None, "first_response_ms": None,
            "first_response_business_ms": None, "first_response_in": None, "next_responses": 0,
            "next_response_ms": 0, "next_response_max_ms": None, "resolution_ms": None, "sla_first": None,
            "sla_next": {o: 0 for o in SLA_OUTCOMES}, "breaches": 0, "replies": 0, "private_replies": 0,
            "wait_starts": [], "credits": {}}


def _meta(meta: Dict[str, Any], entry: Mapping[str, Any]) -> None:
    """What the counters do not track but a row shows: the account, tags, priority, assignee."""
    data, kind = dict(entry.get("data") or {}), entry.get("type")
    if kind == "created" and data.get("account_id"):
        meta["account_id"] = data["account_id"]
    elif kind == "tags_changed":
        tags = [t for t in meta.get("tags", []) if t not in (data.get("removed") or [])]
        meta["tags"] = tags + [t for t in (data.get("added") or []) if isinstance(t, str) and t not in tags]
    elif kind == "priority_changed":
        meta["priority"] = None if data.get("to") in (None, "none") else data.get("to")
    elif kind == "assigned":
        meta["assignee"] = data.get("to")


def _add(row: Dict[str, Any], contribution: cycles.Contribution, at: int) -> None:
    """A contribution's counters, as facts of the row it belongs to."""
    counters = contribution.counters
    for scope in contribution.scopes:
        if scope.startswith("agent#"):
            agent = scope[6:]
            if agent not in row["agents"]:
                row["agents"].append(agent)
            credited = row.setdefault("credits", {}).setdefault(agent, [])
            credited.extend(sorted(name for name in counters if name in _CREDITED and name not in credited))
    if counters.get("new_conversations"):
        row["new"] = True
    if counters.get("waits"):
        row["wait_starts"] = (row["wait_starts"] + [contribution.at])[-20:]
    if counters.get("frt_n"):
        row["first_response_ms"] = int(counters.get("frt_sum", 0))
        row["first_response_in"] = bool(counters.get("frt_in"))
        row["first_reply_at"] = at
    if counters.get("frtb_n"):
        row["first_response_business_ms"] = int(counters.get("frtb_sum", 0))
    if counters.get("nrt_n"):
        row["next_responses"] += int(counters["nrt_n"])
        row["next_response_ms"] += int(counters.get("nrt_sum", 0))
        row["next_response_max_ms"] = max(row["next_response_max_ms"] or 0, int(counters.get("nrt_sum", 0)))
    if counters.get("res_n"):
        row["resolution_ms"] = int(counters.get("res_sum", 0))
        row["resolved_at"] = at
    if counters.get("sla_first_started"):
        row["sla_first"] = "pending"
    if counters.get("sla_next_started"):
        row["sla_next"]["pending"] += 1
    for outcome in ("met", "missed", "closed"):
        if counters.get(f"sla_first_{outcome}"):
            row["sla_first"] = outcome
        if counters.get(f"sla_next_{outcome}"):
            row["sla_next"][outcome] += 1
            row["sla_next"]["pending"] = max(0, row["sla_next"]["pending"] - 1)
    row["breaches"] += int(counters.get("breaches", 0))
    row["replies"] += int(counters.get("replies", 0))
    row["private_replies"] += int(counters.get("private_replies", 0))


def fold(conversation_id: str, state: Optional[Mapping[str, Any]], entry: Mapping[str, Any]
         ) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]]]:
    """The conversation's state after one log entry and the cycle row it changed (or None)."""
    after: Dict[str, Any] = copy.deepcopy(dict(state or {}))
    before = after.get("tracker") or {}
    tracker, found = cycles.fold(before, entry)
    after["tracker"] = tracker
    meta = after.setdefault("meta", {})
    _meta(meta, entry)
    cycle = tracker.get("cycle") or before.get("cycle")
    if not cycle:
        return after, None
    start = int(cycle["start"])
    row = after.get("open")
    if not row or int(row["start"]) != start:
        row = new_row(conversation_id, start, tracker, meta)
    for contribution in found:
        _add(row, contribution, int(entry["at"]))
    row.update(account_id=meta.get("account_id"), tags=list(meta.get("tags", [])), priority=meta.get("priority"),
               assignee=meta.get("assignee"))
    after["open"] = row if tracker.get("cycle") else None
    return after, row


def rows_of(conversation_id: str, entries: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Every cycle row of a whole log (a rebuild, or a test's scripted history)."""
    state: Dict[str, Any] = {}
    rows: Dict[int, Dict[str, Any]] = {}
    for entry in entries:
        state, row = fold(conversation_id, state, entry)
        if row is not None:
            rows[int(row["start"])] = row
    return [rows[start] for start in sorted(rows)]


# --- writing -----------------------------------------------------------------------------------------


def _state(conversation_id: str) -> Tuple[int, Dict[str, Any]]:
    found = _client().get_item(TableName=table(), ConsistentRead=True, Key={
        "conversation_id": {"S": conversation_id}, "start": {"N": str(STATE_START)}}).get("Item")
    if not found:
        return 0, {}
    return int(found["seq"]["N"]), json.loads(found.get("state", {}).get("S") or "{}")


def apply_entries(conversation_id: str, entries: Iterable[Mapping[str, Any]]) -> int:
    """Fold one conversation's log entries (any order, repeats allowed) into its cycle rows
    exactly once. Returns how many entries were new."""
    return ledger.apply_once(conversation_id, entries, _state, _commit,
                             lambda cid: Busy(f"report cycles of {cid} kept changing"))


def _commit(conversation_id: str, done: int, state: Dict[str, Any], ordered: List[Dict[str, Any]]) -> bool:
    for first in range(0, len(ordered), CHUNK):
        chunk = ordered[first:first + CHUNK]
        touched: Dict[int, Dict[str, Any]] = {}
        after = state
        for entry in chunk:
            after, row = fold(conversation_id, after, entry)
            if row is not None:
                touched[int(row["start"])] = row
        seq = int(chunk[-1]["seq"])
        if not _write(conversation_id, done, after, seq, list(touched.values())):
            return False
        done, state = seq, after
    return True


def _write(conversation_id: str, done: int, state: Dict[str, Any], seq: int, rows: List[Dict[str, Any]]) -> bool:
    """The touched rows, then the state at its new `seq` (conditioned on `done`): no transaction.
    Why that is exactly once: a row is a pure function of the log up to `seq`, so writing it again
    (a retry after a crash between the rows and the state) writes the same row; each row put is
    conditioned on the stored row being from the same or an earlier prefix, so a slower consumer
    never puts an older row over a newer one. The state is the marker: until it moves, a retry
    folds the same entries into the same rows."""
    client = _client()
    for row in rows:
        start = int(row["start"])
        try:
            client.put_item(TableName=table(), Item={
                "conversation_id": {"S": conversation_id}, "start": {"N": str(start)}, "seq": {"N": str(seq)},
                "day": {"S": day_of(start)}, "start_key": {"S": f"{start:013d}#{conversation_id}"},
                "row": {"S": json.dumps(row, separators=(",", ":"), sort_keys=True)}},
                ConditionExpression="attribute_not_exists(conversation_id) OR #seq <= :seq",
                ExpressionAttributeNames={"#seq": "seq"}, ExpressionAttributeValues={":seq": {"N": str(seq)}})
        except client.exceptions.ConditionalCheckFailedException:
            pass  # a consumer that folded further wrote this row already: keep its newer version
    try:
        client.put_item(TableName=table(), Item={
            "conversation_id": {"S": conversation_id}, "start": {"N": str(STATE_START)}, "seq": {"N": str(seq)},
            "state": {"S": json.dumps(state, separators=(",", ":"), sort_keys=True)}},
            ConditionExpression="attribute_not_exists(conversation_id) OR #seq = :done",
            ExpressionAttributeNames={"#seq": "seq"}, ExpressionAttributeValues={":done": {"N": str(done)}})
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def day_of(ms: int) -> str:
    return _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.timezone.utc).strftime("%Y-%m-%d")


# --- reading -----------------------------------------------------------------------------------------


class BadCursor(ValueError):
    """A cursor this period did not hand out."""


def encode_cursor(day_ms: int, start_key: Optional[str]) -> str:
    raw = json.dumps({"d": day_ms, "k": start_key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, from_ms: int, to_ms: int) -> Tuple[int, Optional[str]]:
    try:
        if not isinstance(text, str) or len(text) > 400:
            raise ValueError
        found = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        day, key = found["d"], found.get("k")
        if not isinstance(day, int) or day % DAY_MS or (key is not None and (not isinstance(key, str) or len(key) > 300)):
            raise ValueError
    except (ValueError, TypeError, KeyError, UnicodeDecodeError, AttributeError):
        raise BadCursor("cursor is not one this report handed out") from None
    if not from_ms - from_ms % DAY_MS <= day < to_ms:
        raise BadCursor("cursor is not one this report handed out")
    return day, key


def page(from_ms: int, to_ms: int, keep: Any, limit: int = DEFAULT_LIMIT,
         cursor: Optional[str] = None) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    """The rows of cycles that started in [from, to) for which `keep(row)` holds, in start order,
    and the cursor of the next page (None at the end). At most `limit` rows are read (kept or
    not) and MAX_DAY_QUERIES Queries made, so a page never costs more whatever the period."""
    day, after = decode_cursor(cursor, from_ms, to_ms) if cursor else (from_ms - from_ms % DAY_MS, None)
    low, high = f"{from_ms:013d}#", f"{to_ms - 1:013d}#\uffff"
    rows: List[Dict[str, Any]] = []
    read = queries = 0
    while day < to_ms:
        if queries >= MAX_DAY_QUERIES or read >= limit:
            return rows, encode_cursor(day, after)
        kwargs: Dict[str, Any] = {
            "TableName": table(), "IndexName": "by-day", "Limit": limit - read,
            "KeyConditionExpression": "#day = :day AND start_key BETWEEN :low AND :high",
            "ExpressionAttributeNames": {"#day": "day"},
            "ExpressionAttributeValues": {":day": {"S": day_of(day)}, ":low": {"S": low}, ":high": {"S": high}}}
        if after:
            start, _, conversation_id = after.partition("#")
            kwargs["ExclusiveStartKey"] = {"day": {"S": day_of(day)}, "start_key": {"S": after},
                                           "conversation_id": {"S": conversation_id}, "start": {"N": str(int(start))}}
        answer = _client().query(**kwargs)
        queries += 1
        for item in answer.get("Items", []):
            read += 1
            row = json.loads(item["row"]["S"])
            if keep(row):
                rows.append(row)
        last = answer.get("LastEvaluatedKey")
        if last:
            after = last["start_key"]["S"]
        else:
            day, after = day + DAY_MS, None
    return rows, None


def test_of(scope: str, filter_name: Optional[str] = None, kind: Optional[str] = None, tag: Optional[str] = None,
            priority: Optional[str] = None, weekday_hour: Optional[Tuple[int, int, Any]] = None) -> Any:
    """The test a row must pass: inside the caller's scope (as the counters credit it: a channel,
    a team, a team's channel, an agent who answered or resolved), and the drill-down's filters."""
    parts = scope.split("#")

    def in_dimension(row: Mapping[str, Any], dim: List[str]) -> bool:
        if dim[0] == "ch":
            return row.get("channel") == dim[1]
        if dim[0] == "acct":
            return row.get("channel") == dim[1] and str(row.get("account_id")) == dim[2]
        if dim[0] == "prio":
            return (row.get("priority") or "none") == dim[1]
        if dim[0] == "tag":
            return dim[1] in (row.get("tags") or [])
        if dim[0] == "agent":
            return dim[1] in (row.get("agents") or [])
        return dim == ["all"]  # a scope this reader does not know shows nothing, never everything

    def in_scope(row: Mapping[str, Any]) -> bool:
        if parts[0] == "team":
            return row.get("team") == parts[1]
        if parts[0] == "tc":
            return row.get("team") == parts[1] and row.get("channel") == parts[2]
        if parts[0] == "t":
            return row.get("team") == parts[1] and in_dimension(row, parts[2:])
        return in_dimension(row, parts)

    def counted(row: Mapping[str, Any]) -> bool:
        """An agent's number counts only what the counters credited to that agent."""
        if parts[0] != "agent" or filter_name is None:
            return matches(row, filter_name) if filter_name else True
        counter = _FILTER_COUNTERS.get(filter_name)
        return counter is not None and counter in ((row.get("credits") or {}).get(parts[1]) or [])

    def keep(row: Mapping[str, Any]) -> bool:
        if not in_scope(row) or (kind and row.get("kind") != kind) or (tag and tag not in (row.get("tags") or [])):
            return False
        if priority and (row.get("priority") or "none") != priority:
            return False
        if weekday_hour is not None and not _starts_in(row, *weekday_hour):
            return False
        return counted(row)

    return keep


def _starts_in(row: Mapping[str, Any], weekday: int, hour: int, tz: Any) -> bool:
    """A customer wait of the row started in this local weekday and hour (the heatmap's cells)."""
    for at in row.get("wait_starts") or []:
        local = _dt.datetime.fromtimestamp(int(at) / 1000, tz=tz)
        if local.weekday() == weekday and local.hour == hour:
            return True
    return False


#: The counter behind each filter, as credited to an agent (an agent's own numbers have no
#: pending or unanswered: those belong to nobody yet).
_FILTER_COUNTERS = {"first_response": "frt_n", "first_response_in": "frt_in", "next_response": "nrt_n",
                    "resolution": "res_n", "new": "new_conversations", "breached": "breaches",
                    "private_reply": "private_replies", "answered": "answered",
                    **{f"sla_{t}_{o}": f"sla_{t}_{o}" for t in ("first", "next") for o in ("met", "missed", "closed")}}
_CREDITED = frozenset(_FILTER_COUNTERS.values())


def matches(row: Mapping[str, Any], name: str) -> bool:
    """Whether a row is among the cycles the summary's number `name` counts."""
    if name.startswith("sla_first_"):
        return row.get("sla_first") == name[len("sla_first_"):]
    if name.startswith("sla_next_"):
        return int((row.get("sla_next") or {}).get(name[len("sla_next_"):], 0)) > 0
    return {
        "first_response": row.get("first_response_ms") is not None,
        "first_response_in": bool(row.get("first_response_in")),
        "next_response": int(row.get("next_responses") or 0) > 0,
        "resolution": row.get("resolution_ms") is not None,
        "new": bool(row.get("new")),
        "breached": int(row.get("breaches") or 0) > 0,
        "private_reply": int(row.get("private_replies") or 0) > 0,
        "answered": row.get("first_reply_at") is not None,
        "unanswered": row.get("first_reply_at") is None,
    }[name]


# --- what a row shows ---------------------------------------------------------------------------------

COLUMNS = ("conversation_id", "cycle_started", "new_conversation", "channel", "account_id", "kind", "team",
           "assignee", "agents", "tags", "priority", "first_reply_at", "resolved_at", "first_response_s",
           "first_response_business_s", "first_response_within_target", "next_responses", "next_response_avg_s",
           "next_response_max_s", "resolution_s", "sla_first", "sla_next_met", "sla_next_missed",
           "sla_next_pending", "breaches", "replies", "private_replies")


def _s(ms: Optional[int]) -> Optional[int]:
    return None if ms is None else int(round(int(ms) / 1000))


def shown(row: Mapping[str, Any], tz: Any, names: Mapping[str, str]) -> Dict[str, Any]:
    """A row as the API answers it: local ISO times, seconds, agents by name."""
    def local(ms: Optional[int]) -> Optional[str]:
        return None if ms is None else _dt.datetime.fromtimestamp(int(ms) / 1000, tz=tz).isoformat()

    nexts = int(row.get("next_responses") or 0)
    sla_next = row.get("sla_next") or {}
    return {
        "conversation_id": row["conversation_id"], "cycle_started": local(row["start"]),
        "new_conversation": bool(row.get("new")), "channel": row.get("channel"), "account_id": row.get("account_id"),
        "kind": row.get("kind"), "team": row.get("team"),
        "assignee": names.get(row["assignee"]) if row.get("assignee") else None,
        "agents": [names.get(a, a) for a in row.get("agents") or []], "tags": list(row.get("tags") or []),
        "priority": row.get("priority"), "first_reply_at": local(row.get("first_reply_at")),
        "resolved_at": local(row.get("resolved_at")), "first_response_s": _s(row.get("first_response_ms")),
        "first_response_business_s": _s(row.get("first_response_business_ms")),
        "first_response_within_target": row.get("first_response_in"), "next_responses": nexts,
        "next_response_avg_s": _s(int(row.get("next_response_ms") or 0) // nexts) if nexts else None,
        "next_response_max_s": _s(row.get("next_response_max_ms")), "resolution_s": _s(row.get("resolution_ms")),
        "sla_first": row.get("sla_first"), "sla_next_met": int(sla_next.get("met", 0)),
        "sla_next_missed": int(sla_next.get("missed", 0)), "sla_next_pending": int(sla_next.get("pending", 0)),
        "breaches": int(row.get("breaches") or 0), "replies": int(row.get("replies") or 0),
        "private_replies": int(row.get("private_replies") or 0),
    }


def csv_text(rows: List[Dict[str, Any]], header: bool = True) -> str:
    """Rows as CSV for a spreadsheet: lists joined with "; ", and no cell may start with a formula
    character (a tag or a name is text people chose: "=HYPERLINK(...)" is quoted as text)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in COLUMNS])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        value = "; ".join(str(v) for v in value)
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
