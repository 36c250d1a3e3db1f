"""SLA policies through the API (admins only): CRUD, strict validation, unique names, the matching
order the flow relies on (`policies.policy_for`) and the per-container cache."""
from __future__ import annotations

import json

import pytest

from chalicelib.sla import policies

WEEK = {d: [["09:00", "12:30"], ["13:30", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
HOURS = {"timezone": "Africa/Johannesburg", "week": WEEK, "holidays": {"country": "ZA", "subdivision": None},
         "dates": ["2026-12-24"]}


def body(**overrides):
    base = {"name": "Support", "first_response_seconds": 900, "next_response_seconds": 600}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def call(inbox, method, path, payload=None, token=None):
    headers = {"Authorization": "Bearer " + (token or inbox.login_admin()), "Content-Type": "application/json"}
    raw = payload if isinstance(payload, (bytes, str)) else (json.dumps(payload) if payload is not None else None)
    response = getattr(inbox.client.http, method)(path, headers=headers, **({"body": raw} if raw is not None else {}))
    return response.status_code, (json.loads(response.body) if response.body else None)


def create(inbox, **overrides):
    status, created = call(inbox, "post", "/api/sla-policies", body(**overrides))
    assert status == 201, created
    return created


# --- CRUD -----------------------------------------------------------------------------------------


def test_create_read_replace_delete(inbox):
    created = create(inbox, channels=["whatsapp"], business_hours=HOURS, pause_on=["snoozed", "pending"],
                     resolution_seconds=86400)
    assert created["id"].startswith("sla_")
    assert created["warn_at_percent"] == 80 and created["pause_on"] == ["pending", "snoozed"]
    assert created["business_hours"]["week"]["mon"] == [["09:00", "12:30"], ["13:30", "17:00"]]
    assert call(inbox, "get", f"/api/sla-policies/{created['id']}") == (200, created)

    status, listing = call(inbox, "get", "/api/sla-policies")
    assert status == 200 and listing["items"] == [created]
    assert listing["default"]["id"] == "default" and listing["default"]["first_response_seconds"] == 900

    # GET output can be PUT back as it is (read-only fields are ignored).
    changed = dict(created, name="Support (WhatsApp)", warn_at_percent=50, business_hours=None)
    status, replaced = call(inbox, "put", f"/api/sla-policies/{created['id']}", changed)
    assert status == 200, replaced
    assert replaced["name"] == "Support (WhatsApp)" and replaced["business_hours"] is None
    assert replaced["created_at"] == created["created_at"]
    # The old name is free again, the new one is taken.
    create(inbox, name="Support")
    assert call(inbox, "post", "/api/sla-policies", body(name="support  (whatsapp)"))[0] == 409

    assert call(inbox, "delete", f"/api/sla-policies/{created['id']}")[0] == 204
    assert call(inbox, "get", f"/api/sla-policies/{created['id']}")[0] == 404
    assert call(inbox, "delete", f"/api/sla-policies/{created['id']}")[0] == 404
    # Deleting released the name.
    create(inbox, name="Support (WhatsApp)")


def test_unknown_ids_are_404(inbox):
    for method in ("get", "delete"):
        assert call(inbox, method, "/api/sla-policies/sla_nope")[0] == 404
    assert call(inbox, "put", "/api/sla-policies/sla_nope", body())[0] == 404
    # A name claim is not a policy.
    create(inbox)
    assert call(inbox, "get", "/api/sla-policies/name%23support")[0] == 404


def test_duplicate_names_are_409_case_and_spacing_folded(inbox):
    first = create(inbox, name="Night shift")
    status, answer = call(inbox, "post", "/api/sla-policies", body(name="  night   SHIFT "))
    assert status == 409 and "already exists" in answer["Message"]
    other = create(inbox, name="Day shift")
    assert call(inbox, "put", f"/api/sla-policies/{other['id']}", body(name="Night Shift"))[0] == 409
    # Renaming a policy to its own name (another spelling) is fine.
    assert call(inbox, "put", f"/api/sla-policies/{first['id']}", body(name="NIGHT shift"))[0] == 200


def test_agents_cannot_touch_policies(inbox):
    from chalicelib.api.auth import create_agent, issue_token

    token = issue_token(create_agent("sam@example.com", "s3cret-passw0rd", "Sam", "agent"))
    assert call(inbox, "get", "/api/sla-policies", token=token)[0] == 403
    assert call(inbox, "post", "/api/sla-policies", body(), token=token)[0] == 403
    assert inbox.client.http.get("/api/sla-policies").status_code == 401


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("payload, words", [
    ([1, 2], "JSON object"),
    ("not json", "not valid JSON"),
    (body(name=...), "name is required"),
    (body(name="   "), "name is required"),
    (body(name=7), "name is required"),
    (body(name="x" * 101), "at most 100"),
    (body(name="bad\u0000name"), "printable"),
    (body(first_response_seconds=...), "first_response_seconds is required"),
    (body(first_response_seconds="900"), "whole number"),
    (body(first_response_seconds=9.5), "whole number"),
    (body(first_response_seconds=True), "whole number"),
    (body(next_response_seconds=0), "between 1 and"),
    (body(resolution_seconds=10**12), "between 1 and"),
    (body(warn_at_percent=0), "warn_at_percent"),
    (body(warn_at_percent=101), "warn_at_percent"),
    (body(warn_at_percent="80"), "warn_at_percent"),
    (body(channels="whatsapp"), "channels must be a list"),
    (body(channels=[]), "must not be empty"),
    (body(channels=["myspace"]), "channels\\[0\\] must be one of"),
    (body(channels=["whatsapp"] * 1000), "more than"),
    (body(priorities=["critical"]), "priorities\\[0\\]"),
    (body(tags=["a#b"]), "tags\\[0\\]"),
    (body(tags=[{"x": 1}]), "tags\\[0\\] must be a string"),
    (body(tags=["t%d" % i for i in range(21)]), "more than 20"),
    (body(pause_on=["resolved"]), "pause_on\\[0\\]"),
    (body(pause_on="pending"), "pause_on must be a list"),
    (body(pause_on=["pending"] * 1000), "pause_on must be a list"),
    (body(business_hours={"timezone": "Mars/Olympus", "week": WEEK}), "unknown time zone"),
    (body(business_hours={"timezone": "UTC", "week": {"mon": [["17:00", "09:00"]]}}), "must end after it starts"),
    (body(business_hours={"timezone": "UTC", "week": {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}}),
     "overlap"),
    (body(business_hours={"timezone": "UTC", "week": {"mon": [["09:00", "10:00"]]}},
          resolution_seconds=365 * 86400), "weeks of these business hours"),
    (body(business_hours=[["09:00", "17:00"]]), "business_hours must be null or an object"),
    (body(escalate=True), "unknown field"),
])
def test_bad_bodies_are_400_with_a_clear_message(inbox, payload, words):
    status, answer = call(inbox, "post", "/api/sla-policies", payload)
    assert status == 400, answer
    import re

    assert re.search(words, answer["Message"]), answer["Message"]
    assert call(inbox, "get", "/api/sla-policies")[1]["items"] == []


def test_a_huge_body_is_refused(inbox):
    status, answer = call(inbox, "post", "/api/sla-policies", json.dumps(body(tags=["x" * 30] * 5000)))
    assert status == 400 and "larger than" in answer["Message"]


# --- matching and the cache -----------------------------------------------------------------------


def test_most_specific_policy_wins_else_the_builtin_default(inbox, monkeypatch):
    monkeypatch.setenv("DEFAULT_REPLY_SLA_MINUTES", "20")
    assert policies.policy_for({"channel": "whatsapp"}).first_response_ms == 20 * 60_000
    assert policies.policy_for({"channel": "whatsapp"}).policy_id == "default"
    catch_all = create(inbox, name="Everything")
    channel = create(inbox, name="WhatsApp", channels=["whatsapp", "messenger"])
    priority = create(inbox, name="Urgent", priorities=["urgent"])
    full = create(inbox, name="VIP WhatsApp urgent", channels=["whatsapp"], priorities=["urgent", "high"],
                  tags=["VIP", "enterprise"])

    def chosen(**state):
        return policies.policy_for(state).policy_id

    assert chosen(channel="whatsapp", priority="urgent", tags=["vip"]) == full["id"]
    assert chosen(channel="whatsapp", priority="high", tags=["enterprise", "x"]) == full["id"]
    assert chosen(channel="whatsapp", priority="urgent") == priority["id"]  # no tag: not the full one
    assert chosen(channel="whatsapp", tags=["vip"]) == channel["id"]
    assert chosen(channel="messenger") == channel["id"]
    assert chosen(channel="telegram") == catch_all["id"]
    assert [p["id"] for p in call(inbox, "get", "/api/sla-policies")[1]["items"]] == \
        [full["id"], priority["id"], channel["id"], catch_all["id"]]
    call(inbox, "delete", f"/api/sla-policies/{catch_all['id']}")
    assert chosen(channel="telegram") == "default"


def test_policy_for_scans_once_per_minute_and_api_writes_forget(inbox, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(policies, "_monotonic", lambda: clock[0])
    scans = []
    real = policies._policy_items
    monkeypatch.setattr(policies, "_policy_items", lambda: scans.append(1) or real())

    state = {"channel": "telegram"}
    assert policies.policy_for(state).policy_id == "default"
    for _ in range(50):
        policies.policy_for(state)
    assert len(scans) == 1
    created = create(inbox, channels=["telegram"], first_response_seconds=60)  # forgets this container's copy
    scans.clear()
    assert policies.policy_for(state).policy_id == created["id"]
    assert policies.policy_for(state).first_response_ms == 60_000
    assert len(scans) == 1

    # Another container's write (straight to the table) is seen once the minute is over.
    from chalicelib.models import SlaPolicy

    item = SlaPolicy.get(created["id"])
    item.first_response_seconds = 120
    item.save()
    clock[0] += 59
    assert policies.policy_for(state).first_response_ms == 60_000
    clock[0] += 2
    assert policies.policy_for(state).first_response_ms == 120_000
    assert len(scans) == 2


def test_a_broken_stored_item_is_skipped_not_fatal(inbox):
    from chalicelib.models import SlaPolicy

    good = create(inbox, channels=["x"])
    SlaPolicy("sla_broken", kind="policy", name="Broken", first_response_seconds=60, next_response_seconds=60,
              business_hours={"timezone": "Nowhere/Land", "week": {}}, created_at=0).save()
    policies.forget()
    assert policies.policy_for({"channel": "x"}).policy_id == good["id"]
    assert policies.policy_for({"channel": "telegram"}).policy_id == "default"


def test_the_chosen_policy_computes_business_hours_deadlines(inbox):
    created = create(inbox, channels=["whatsapp"], business_hours=HOURS, first_response_seconds=3600)
    policy = policies.policy_for({"channel": "whatsapp", "status": "open"})
    assert policy.policy_id == created["id"] and not policy.pauses_on("pending")
    # Wednesday 23 Dec 2026 16:30 SAST (14:30 UTC): 30 min that day, then closed until Monday 28.
    since = 1_798_036_200_000
    warn, due = policy.deadline(since, first=True)
    assert due == since + (4 * 24 + 17) * 3_600_000  # Monday 28 Dec 09:30 SAST
    assert warn == due - 12 * 60_000
