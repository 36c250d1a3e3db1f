"""The conversations behind the reports (chalicelib.reports.export, GET /api/reports/conversations):
one row per conversation cycle written by the stream consumer exactly once, read a page at a
time for an export, narrowed to what one summary number counts for a drill-down, and scoped
like the summary."""
from __future__ import annotations

import json

import pytest

from chalicelib.reports import consumer, export, summary
from tests.test_reports import MIN, T0, _get, _token, dm, history, stream_records  # noqa: F401  (fixture)

DAY = "from=2023-11-14&to=2023-11-15&tz=UTC"


@pytest.fixture
def people_history(history):
    """The history, plus a second conversation answered and resolved by real agents (names in
    the export), tagged and prioritised after its first reply; all of it through the consumer."""
    from chalicelib.api import people
    from chalicelib.inbox import rules, store
    from chalicelib.runtime import runtime

    inbox, cid = history
    ana, _ = people.create("ana@example.com", "Ana Alves", "agent", ["default"], None, "a long enough password")
    clock = {"now": T0 + 100 * MIN}
    runtime.use_clock(lambda: clock["now"] / 1000)
    _, (other, _) = store.record_message(dm("m9", T0 + 100 * MIN, user="u2"))
    store.assign(other, ana.agent_id, "agent:" + ana.agent_id)
    clock["now"] = T0 + 103 * MIN
    store.apply_message(other, rules.MessageFacts("r9", "out", T0 + 103 * MIN, "hello", author=ana.agent_id))
    store.set_tags(other, ["=hyperlink(1)", "refund"], "agent:" + ana.agent_id)
    store.set_priority(other, "high", "agent:" + ana.agent_id)
    clock["now"] = T0 + 110 * MIN
    store.set_status(other, "resolved", "agent:" + ana.agent_id)
    runtime.use_clock(None)
    for conversation in (cid, other):
        consumer.handle_records(stream_records(conversation))
    return inbox, cid, other, ana


def _rows(inbox, token, query=DAY):
    status, body = _get(inbox, f"/api/reports/conversations?{query}", token)
    assert status == 200, body
    return body["items"]


def test_one_row_per_cycle_once_whatever_the_stream_does(history):
    from chalicelib.inbox import store
    from chalicelib.models import ReportCycle

    inbox, cid = history
    records = stream_records(cid)
    consumer.handle_records(records[4:5])  # a gap first: filled from the log
    consumer.handle_records(list(reversed(records)))
    consumer.handle_records(records)
    rows = [i.row for i in ReportCycle.query(cid) if i.start != export.STATE_START]
    assert rows == export.rows_of(cid, store.events(cid))  # the incremental rows equal a fold of the log
    first, second = rows
    assert (first["start"], second["start"]) == (T0, T0 + 60 * MIN)
    assert first["first_response_ms"] == 2 * MIN and first["first_response_business_ms"] == 2 * MIN
    assert first["sla_first"] == "met" and first["resolution_ms"] == 5 * MIN and first["new"] is True
    assert second["first_response_ms"] == 30 * MIN and second["sla_first"] == "missed" and second["new"] is False
    assert second["resolution_ms"] is None and first["agents"] == ["ana"] and second["agents"] == ["bob"]


def test_the_export_shows_each_cycle_with_names_tags_and_times(people_history):
    inbox, cid, other, ana = people_history
    rows = _rows(inbox, inbox.login_admin(), "from=2023-11-14&to=2023-11-16&tz=Europe/Berlin")
    assert [r["conversation_id"] for r in rows] == [cid, cid, other]
    last = rows[2]
    assert last["cycle_started"] == "2023-11-15T00:53:20+01:00"  # in the query's time zone
    assert (last["agents"], last["assignee"], last["tags"], last["priority"]) == (
        ["Ana Alves"], "Ana Alves", ["=hyperlink(1)", "refund"], "high")
    assert (last["first_response_s"], last["resolution_s"], last["sla_first"]) == (180, 600, "met")
    assert rows[1]["first_response_within_target"] is False and rows[0]["account_id"] == "1234567890"
    answer = inbox.client.http.get(f"/api/reports/conversations?{DAY}&format=csv",
                                   headers={"Authorization": "Bearer " + inbox.login_admin()})
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    lines = answer.body.decode().split("\r\n")
    assert lines[0].split(",") == list(export.COLUMNS) and len([line for line in lines if line]) == 4
    assert ",'=hyperlink(1); refund," in lines[3]  # a tag never becomes a spreadsheet formula
    assert "X-Next-Cursor" not in answer.headers


def test_pages_follow_the_cursor_and_a_year_costs_bounded_queries_per_page(people_history):
    inbox, cid, other, _ = people_history
    admin = inbox.login_admin()
    seen, cursor, pages = [], None, 0
    while True:
        query = f"{DAY}&limit=1" + (f"&cursor={cursor}" if cursor else "")
        status, body = _get(inbox, f"/api/reports/conversations?{query}", admin)
        assert status == 200 and len(body["items"]) <= 1
        seen += [(r["conversation_id"], r["cycle_started"]) for r in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert [c for c, _ in seen] == [cid, cid, other] and len(set(seen)) == 3
    # 400 days ending after the data: each page reads at most MAX_DAY_QUERIES day partitions
    cursor, pages, found = None, 0, []
    while True:
        query = "from=2022-10-12&to=2023-11-16&tz=UTC" + (f"&cursor={cursor}" if cursor else "")
        body = _get(inbox, f"/api/reports/conversations?{query}", admin)[1]
        found += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(found) == 3 and pages == -(-400 // export.MAX_DAY_QUERIES)
    csv_page = inbox.client.http.get(f"/api/reports/conversations?{DAY}&limit=1&format=csv",
                                     headers={"Authorization": "Bearer " + admin})
    follow = inbox.client.http.get(f"/api/reports/conversations?{DAY}&limit=1&format=csv&cursor="
                                   + csv_page.headers["X-Next-Cursor"], headers={"Authorization": "Bearer " + admin})
    assert follow.body.decode().startswith(cid) and csv_page.body.decode().startswith("conversation_id,")


def test_a_drill_down_lists_exactly_what_the_summary_counted(people_history):
    inbox, cid, other, ana = people_history
    admin = inbox.login_admin()
    numbers = _get(inbox, f"/api/reports/summary?{DAY}", admin)[1]
    expected = {
        "first_response": numbers["first_response"]["count"], "resolution": numbers["resolution"]["count"],
        "new": numbers["volume"]["new_conversations"], "sla_first_met": numbers["sla"]["first"]["met"],
        "sla_first_missed": numbers["sla"]["first"]["missed"], "sla_first_pending": numbers["sla"]["first"]["pending"],
        "unanswered": numbers["unanswered"]["count"], "answered": numbers["response_rate"]["by_type"]["dm"]["answered"],
        "breached": 0, "next_response": numbers["next_response"]["count"],
    }
    assert expected["first_response"] == 3 and expected["sla_first_missed"] == 1
    for name, count in expected.items():
        assert len(_rows(inbox, admin, f"{DAY}&filter={name}")) == count, name
    assert [r["conversation_id"] for r in _rows(inbox, admin, f"{DAY}&tag=refund")] == [other]
    assert len(_rows(inbox, admin, f"{DAY}&priority=high&kind=dm")) == 1
    assert len(_rows(inbox, admin, f"{DAY}&kind=comment")) == 0
    # a heatmap cell: Tuesday 22:00 UTC holds the first cycle's wait, 23:00 the other two
    assert [r["cycle_started"][:16] for r in _rows(inbox, admin, f"{DAY}&weekday=1&hour=22")] == ["2023-11-14T22:13"]
    assert len(_rows(inbox, admin, f"{DAY}&weekday=1&hour=23")) == 2
    agent_count = _get(inbox, f"/api/reports/summary?{DAY}&agent={ana.agent_id}", admin)[1]["first_response"]["count"]
    assert len(_rows(inbox, admin, f"{DAY}&agent={ana.agent_id}&filter=first_response")) == agent_count == 1


def test_an_agents_drill_down_lists_only_what_was_credited_to_them():
    from tests.test_reports import CREATED, entry

    log = [entry(1, T0, "created", **CREATED),
           entry(2, T0 + MIN, "replied", "agent", response_ms=MIN, within_target=True, agent="a1"),
           entry(3, T0 + 9 * MIN, "status_changed", "agent:a2", **{"from": "open", "to": "resolved"})]
    [row] = export.rows_of("c1", log)
    assert row["agents"] == ["a1", "a2"]
    assert export.test_of("agent#a1", "first_response")(row) and not export.test_of("agent#a2", "first_response")(row)
    assert export.test_of("agent#a2", "resolution")(row) and not export.test_of("agent#a1", "resolution")(row)
    assert export.test_of("agent#a2")(row) and not export.test_of("agent#a3")(row)
    assert not export.test_of("agent#a1", "sla_first_pending")(row)  # nobody's own number
    assert export.test_of("team#sales", "sla_first_met")(row) and export.test_of("tc#sales#instagram")(row)
    assert export.test_of("t#sales#prio#none")(row) and not export.test_of("t#billing#prio#none")(row)
    assert not export.test_of("prio#high")(row) and not export.test_of("tag#refund")(row)
    assert not export.test_of("no-such-scope")(row) and export.test_of("all")(row)


def test_who_sees_which_conversations(people_history):
    inbox, cid, other, ana = people_history
    from chalicelib.api import auth

    supervisor, _ = _token("sue@example.com", "supervisor", ["default"])
    stranger, _ = _token("otto@example.com", "supervisor", ["billing"])
    assert len(_rows(inbox, supervisor)) == 3
    assert _rows(inbox, stranger) == []
    # the summary's narrower scopes (a team's priority or account, a tag) never widen to everything
    assert _rows(inbox, stranger, f"{DAY}&priority=high") == []
    assert _rows(inbox, stranger, f"{DAY}&channel=messenger&account=PAGE_1") == []
    assert [r["conversation_id"] for r in _rows(inbox, supervisor, f"{DAY}&priority=high")] == [other]
    assert _get(inbox, f"/api/reports/conversations?{DAY}&team=default", stranger)[0] == 403
    own = _rows(inbox, auth.issue_token(ana))
    assert [r["conversation_id"] for r in own] == [other]  # an agent: the cycles they answered
    assert _get(inbox, f"/api/reports/conversations?{DAY}&agent=someone", auth.issue_token(ana))[0] == 403
    assert inbox.client.http.get(f"/api/reports/conversations?{DAY}").status_code == 401


@pytest.mark.parametrize("bad", [
    "format=xml", "limit=0", "limit=1001", "limit=ten", "filter=everything", "kind=email", "priority=meh",
    "weekday=7&hour=1", "weekday=1", "hour=24&weekday=1", "tag=a%23b", "cursor=%00", "cursor=e30",
    "cursor=" + "A" * 500, "cursor=eyJkIjowLCJrIjpudWxsfQ",  # {"d":0,"k":null}: a day outside the period
    "tz=%2B01:00", "channel=a%0Ab",
])
def test_bad_query_values_are_refused(history, bad):
    inbox, _ = history
    status, body = _get(inbox, f"/api/reports/conversations?{DAY}&{bad}", inbox.login_admin())
    assert status == 400, (bad, body)


def test_cursors_round_trip_and_stay_in_their_period():
    period = summary.parse_period("2026-01-01", "2026-02-01", "UTC")
    text = export.encode_cursor(period.from_ms + 3 * export.DAY_MS, "1767225600000#c_1")
    assert export.decode_cursor(text, period.from_ms, period.to_ms) == (period.from_ms + 3 * export.DAY_MS,
                                                                        "1767225600000#c_1")
    with pytest.raises(export.BadCursor):
        export.decode_cursor(text, period.to_ms, period.to_ms + export.DAY_MS)
