"""Staffing through its routes: settings (admins set, team leads read), the presence sampler's
history, and the plan built from the report counters, measured handle time and presence."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from tests.helpers import PAGE, messenger, page_delivery

JSON = {"Content-Type": "application/json"}
T0 = 1_900_000_000.0  # epoch seconds
SCHEDULED = {"version": "0", "id": "e-1", "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "123456789012", "time": "2030-03-17T17:46:40Z", "region": "us-east-1", "detail": {},
             "resources": ["arn:aws:events:us-east-1:123456789012:rule/socialinbox-test-staffing_sampler-event"]}


def _call(inbox, method, path, token, body=None):
    response = inbox.client.http.request(method, path, headers={**JSON, "Authorization": "Bearer " + token},
                                         body=json.dumps(body).encode() if body is not None else b"")
    return response.status_code, json.loads(response.body) if response.body else None


def _person(inbox, admin, email, role, teams=("default",)):
    status, created = _call(inbox, "POST", "/api/agents", admin, {"email": email, "name": email.split("@")[0],
                                                                    "role": role, "teams": list(teams),
                                                                    "password": "a long enough password"})
    assert status == 201, created
    status, session = _call(inbox, "POST", "/api/auth/login", "", {"email": email,
                                                                    "password": "a long enough password"})
    assert status == 200, session
    return created["id"], session["token"]


@pytest.fixture
def clock(inbox):
    from chalicelib.runtime import runtime

    now = [T0]
    runtime.use_clock(lambda: now[0])
    yield now
    runtime.use_clock(None)


def test_settings_admins_set_team_leads_read_agents_never(inbox, clock):
    admin = inbox.login_admin()
    status, answer = _call(inbox, "PUT", "/api/staffing/settings?group=live", admin,
                           {"shrinkage_pct": 25, "target_pct": 90, "target_seconds": 120})
    assert status == 200 and answer["settings"]["shrinkage_pct"] == 25 and answer["settings"]["target_seconds"] == 120
    _, lead = _person(inbox, admin, "lead@example.com", "supervisor")
    status, answer = _call(inbox, "GET", "/api/staffing/settings?group=live", lead)
    assert status == 200 and answer["team"] == "default" and answer["settings"]["target_pct"] == 90
    assert _call(inbox, "PUT", "/api/staffing/settings?group=live", lead, {"shrinkage_pct": 10})[0] == 403
    assert _call(inbox, "GET", "/api/staffing/settings?group=live&team=other", lead)[0] == 403
    _, agent = _person(inbox, admin, "kim@example.com", "agent")
    assert _call(inbox, "GET", "/api/staffing/settings?group=live", agent)[0] == 403
    for bad in ({"shrinkage_pct": 95}, {"shrinkage_pct": True}, {"nope": 1}, {}, {"target_pct": "80"},
                {"handle_seconds": float("inf")}):
        assert _call(inbox, "PUT", "/api/staffing/settings?group=live", admin, bad)[0] == 400, bad


def test_sampler_records_agents_online_and_away(inbox, clock):
    from chalicelib.routing import directory
    from chalicelib.staffing import presence

    admin = inbox.login_admin()
    ana, _ = _person(inbox, admin, "ana@example.com", "agent")
    bob, _ = _person(inbox, admin, "bob@example.com", "agent")
    for agent_id in (ana, bob):
        directory.set_routing(agent_id, ["default"], 5)
    directory.set_presence(ana, "online")
    directory.set_presence(bob, "away")
    assert inbox.app.staffing_sampler(SCHEDULED, None)["teams"] >= 1
    clock[0] += 300
    directory.set_presence(ana, "online")  # her page's heartbeat
    directory.set_presence(bob, "online")
    inbox.app.staffing_sampler(SCHEDULED, None)
    found = presence.history(["default"], int(T0 * 1000) - 3_600_000, int(T0 * 1000) + 3_600_000)
    interval = int(T0) - int(T0) % 1800
    assert found["online"] == {interval: 1.5}
    assert found["away_share"] == pytest.approx(1 / 4)


def test_plan_reads_arrivals_from_the_report_counters(inbox, clock):
    """The demo history (what the report counters, presence samples and focus would hold after a
    month) through the plan: a forecast shaped like the history, measured handle time, the gap."""
    from chalicelib.staffing import demo

    admin = inbox.login_admin()
    assert demo.seed_history(int(clock[0] * 1000))["quarters"] > 1000
    assert demo.seed_history(int(clock[0] * 1000))["quarters"] == 0  # once per stack
    assert _call(inbox, "PUT", "/api/staffing/settings?group=live", admin, {"target_seconds": 120})[0] == 200
    status, plan = _call(inbox, "GET", "/api/staffing/plan?group=live&days=7", admin)
    assert status == 200, plan
    assert plan["model"] == "erlang_c" and plan["handle_time"]["source"] == "measured"
    assert 150 < plan["handle_time"]["seconds"] < 250
    forecast = [i for i in plan["intervals"] if i["kind"] == "forecast"]
    history = [i for i in plan["intervals"] if i["kind"] == "history"]
    assert len(forecast) == 7 * 48 and len(history) == 7 * 48
    # Weekday middays are busier than nights, in the history and in the forecast alike.
    def mean(rows, hours, weekday=True):
        picked = [i["arrivals"] for i in rows if datetime.fromtimestamp(i["start"], timezone.utc).hour in hours
                  and (datetime.fromtimestamp(i["start"], timezone.utc).weekday() < 5) == weekday]
        return sum(picked) / len(picked)
    assert mean(forecast, {11, 12}) > 3 * mean(forecast, {2, 3})
    assert mean(forecast, {11, 12}) == pytest.approx(mean(history, {11, 12}), rel=0.35)
    assert 0 <= plan["accuracy"]["interval_wape"] < 0.6 and plan["accuracy"]["days"] == 7
    assert max(i["required"] for i in forecast) >= 2 and plan["shrinkage"]["measured_away_pct"] is not None
    assert any(i["online"] is not None for i in history)
    for bad in ("group=x", "days=0", "days=29", "team=%00"):
        assert _call(inbox, "GET", "/api/staffing/plan?" + bad, admin)[0] == 400, bad


def _notifications(inbox, admin):
    status, body = _call(inbox, "GET", "/api/me/notifications", admin)
    assert status == 200, body
    return [n for n in body["items"] if n["kind"].startswith("staffing_")]


def test_nightly_forecast_and_the_burst_and_understaffed_alerts(inbox, clock):
    """The sampler stores the forecast once a day and warns supervisors of a burst (once per
    interval) and of a floor short of agents for two samples running (then not again for hours)."""
    from chalicelib.staffing import alerts, demo

    wednesday_noon = datetime(2030, 3, 20, 12, 0, tzinfo=timezone.utc).timestamp()
    clock[0] = wednesday_noon
    admin = inbox.login_admin()
    demo.seed_history(int(clock[0] * 1000))
    assert _call(inbox, "PUT", "/api/staffing/settings?group=live", admin, {"target_seconds": 120})[0] == 200
    assert inbox.app.staffing_sampler(SCHEDULED, None)["online"] == 0
    stored = alerts.stored_forecast("live")
    assert stored and stored["computed_at"] == int(clock[0] * 1000) and stored["accuracy"]["days"] == 7
    assert len(stored["intervals"]) == 14 * 48
    now_row = next(i for i in stored["intervals"] if i["start"] == int(clock[0]))
    assert now_row["required_raw"] > 1  # a weekday noon needs people
    assert _notifications(inbox, admin) == []  # one short sample is no alarm yet

    clock[0] += 300
    inbox.app.staffing_sampler(SCHEDULED, None)
    [short] = _notifications(inbox, admin)
    assert short["kind"] == "staffing_understaffed" and short["data"]["online"] == 0
    clock[0] += 300
    inbox.app.staffing_sampler(SCHEDULED, None)
    assert len(_notifications(inbox, admin)) == 1  # not again within the cooldown
    assert alerts.stored_forecast("live")["computed_at"] == int(wednesday_noon * 1000)  # once a day

    # A viral post: far more new conversations in this interval than the slot has ever seen.
    from chalicelib.runtime import runtime
    at = int(clock[0] * 1000)
    runtime.client("dynamodb").update_item(
        TableName="socialinbox-test-reports", Key={"pk": {"S": "all"}, "sk": {"S": f"q#{at - at % 900_000:013d}"}},
        UpdateExpression="ADD cycles_dm :n", ExpressionAttributeValues={":n": {"N": "80"}})
    clock[0] += 60
    inbox.app.staffing_sampler(SCHEDULED, None)
    inbox.app.staffing_sampler(SCHEDULED, None)
    bursts = [n for n in _notifications(inbox, admin) if n["kind"] == "staffing_burst"]
    assert len(bursts) == 1 and bursts[0]["data"]["arrivals"] >= 80
