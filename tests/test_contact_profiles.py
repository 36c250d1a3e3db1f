"""Real customer names: Messenger and Instagram DMs carry only ids, so the contact's profile is
looked up with the account's token after the message is stored, once per contact, refreshed
weekly, retried an hour after a failure, and never in the way of the message itself. Meta's
profile endpoints are faked with `responses`."""
from __future__ import annotations

import json

import pytest
import requests
import responses

from chalicelib.runtime import runtime
from tests.helpers import PAGE, messenger, page_delivery, whatsapp_delivery

GRAPH = "https://graph.facebook.com/v21.0"
INSTAGRAM_GRAPH = "https://graph.instagram.com/v21.0"  # Instagram Login accounts
PSID, IG_ACCOUNT, IGSID = "6100000000000001", "17841400000000001", "1790000000000009"
T0 = 1_800_000_000.0  # seconds


@pytest.fixture
def world(inbox, monkeypatch):
    monkeypatch.setenv("PROFILE_LOOKUPS", "on")
    monkeypatch.setenv("META_PAGE_TOKEN", "page-token-secret")
    monkeypatch.delenv("META_GRAPH_BASE_URL", raising=False)
    monkeypatch.setenv("INSTAGRAM_ACCESS_TOKEN", "ig-login-token")
    clock = {"now": T0}
    runtime.use_clock(lambda: clock["now"])
    inbox.add_account("messenger", PAGE)
    inbox.add_account("instagram", IG_ACCOUNT)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as platform:
        yield inbox, platform, clock
    runtime.use_clock(None)


def deliver(inbox, clock, mid, psid=PSID):
    at = int(clock["now"] * 1000)
    assert inbox.post_meta(page_delivery(messenger(mid, psid, at, "hello"), time_ms=at)).status_code == 200
    inbox.process()


def deliver_instagram(inbox, clock, mid="ig_m_1"):
    at = int(clock["now"] * 1000)
    delivery = {"object": "instagram", "entry": [{"id": IG_ACCOUNT, "time": at, "messaging": [
        {"sender": {"id": IGSID}, "recipient": {"id": IG_ACCOUNT}, "timestamp": at,
         "message": {"mid": mid, "text": "oi"}}]}]}
    assert inbox.post_meta(delivery).status_code == 200
    inbox.process()


def profile_calls(platform):
    return [c for c in platform.calls if c.request.method == "GET"]


def only_conversation(inbox):
    """The one conversation, in full."""
    [row] = inbox.conversations()
    return inbox.get("/api/conversations/" + row["id"])


def test_a_messenger_contact_gets_its_name_and_picture_once(world):
    inbox, platform, clock = world
    platform.get(f"{GRAPH}/{PSID}", json={"first_name": "Ana", "last_name": "Sousa", "id": PSID,
                                          "profile_pic": "https://platform-lookaside.fbsbx.com/p/ana.jpg"})
    deliver(inbox, clock, "m_1")
    conversation = only_conversation(inbox)
    assert conversation["contact"]["display_name"] == "Ana Sousa"
    [call] = profile_calls(platform)
    assert "fields=first_name%2Clast_name%2Cprofile_pic" in call.request.url
    assert call.request.headers["Authorization"] == "Bearer page-token-secret"
    assert "page-token-secret" not in call.request.url
    [identity] = inbox.get(f"/api/contacts/{conversation['contact']['id']}")["identities"]
    assert identity["display_name"] == "Ana Sousa"
    assert identity["avatar_url"] == "https://platform-lookaside.fbsbx.com/p/ana.jpg"
    clock["now"] += 3 * 24 * 3600  # days later: still fresh, even in another container
    runtime.remember("profile-memory", None)
    deliver(inbox, clock, "m_2")
    assert len(profile_calls(platform)) == 1
    assert only_conversation(inbox)["contact"]["display_name"] == "Ana Sousa"


def test_the_profile_is_refreshed_weekly(world):
    inbox, platform, clock = world
    platform.get(f"{GRAPH}/{PSID}", json={"first_name": "Ana", "last_name": "Sousa"})
    deliver(inbox, clock, "m_1")
    platform.replace(responses.GET, f"{GRAPH}/{PSID}", json={"first_name": "Ana", "last_name": "Sousa-Lima"})
    clock["now"] += 8 * 24 * 3600
    deliver(inbox, clock, "m_2")
    assert len(profile_calls(platform)) == 2
    assert only_conversation(inbox)["contact"]["display_name"] == "Ana Sousa-Lima"


@pytest.mark.parametrize("failure", [
    {"status": 500, "body": ""},
    {"status": 400, "json": {"error": {"message": "Unsupported get request", "code": 100}}},
    {"body": requests.exceptions.ConnectTimeout("no route")},
])
def test_a_failed_lookup_never_blocks_the_message_and_is_retried_an_hour_later(world, failure):
    inbox, platform, clock = world
    platform.get(f"{GRAPH}/{PSID}", **failure)
    deliver(inbox, clock, "m_1")
    conversation = only_conversation(inbox)
    assert [m["text"] for m in inbox.messages(conversation["id"])] == ["hello"]
    assert conversation["contact"]["display_name"].startswith("Messenger user")
    clock["now"] += 600
    deliver(inbox, clock, "m_2")
    assert len(profile_calls(platform)) == 1  # not hammered while it fails
    platform.replace(responses.GET, f"{GRAPH}/{PSID}", json={"first_name": "Ana", "last_name": "Sousa"})
    clock["now"] += 3600
    deliver(inbox, clock, "m_3")
    assert len(profile_calls(platform)) == 2
    assert only_conversation(inbox)["contact"]["display_name"] == "Ana Sousa"


def test_an_instagram_contact_gets_name_handle_and_followers(world):
    inbox, platform, clock = world
    platform.get(f"{INSTAGRAM_GRAPH}/{IGSID}", json={"name": "Marta Reis", "username": "marta.reis", "follower_count": 1204,
                                           "profile_pic": "https://scontent.cdninstagram.com/v/marta.jpg"})
    deliver_instagram(inbox, clock)
    conversation = only_conversation(inbox)
    assert (conversation["contact"]["display_name"], conversation["contact"]["handle"]) == ("Marta Reis", "@marta.reis")
    [identity] = inbox.get(f"/api/contacts/{conversation['contact']['id']}")["identities"]
    assert identity["followers"] == 1204
    [call] = profile_calls(platform)
    assert "fields=name%2Cusername%2Cprofile_pic%2Cfollower_count" in call.request.url
    assert call.request.headers["Authorization"] == "Bearer ig-login-token"


def test_the_conversation_list_shows_the_looked_up_follower_count(world):
    inbox, platform, clock = world
    platform.get(f"{INSTAGRAM_GRAPH}/{IGSID}", json={"name": "Marta Reis", "username": "marta.reis",
                                                     "follower_count": 1204})
    deliver_instagram(inbox, clock)
    for sort in ("recent", "due"):
        [row] = inbox.conversations(status="open", sort=sort)
        assert (row["contact"]["display_name"], row["contact"]["followers"]) == ("Marta Reis", 1204), sort
    assert only_conversation(inbox)["contact"]["followers"] == 1204
    platform.get(f"{GRAPH}/{PSID}", json={"first_name": "Ana", "last_name": "Sousa"})  # Messenger gives no count
    deliver(inbox, clock, "m_1")
    rows = {r["contact"]["display_name"]: r for r in inbox.conversations(status="open")}
    assert rows["Ana Sousa"]["contact"]["followers"] is None and rows["Marta Reis"]["contact"]["followers"] == 1204


def _search(inbox, q):
    response = inbox.client.http.get("/api/search?q=" + q, headers={"Authorization": "Bearer " + inbox.login_admin()})
    assert response.status_code == 200, response.body
    return json.loads(response.body)["items"]


def _shown(row):
    """A list row less what the recency index does not project (bookkeeping the page never
    shows in a list: the row's version and creation, the SLA policy's id, when a breach was
    recorded): the views must agree on everything else."""
    shown = {k: v for k, v in row.items() if k not in ("created_at", "version")}
    if shown.get("sla"):
        shown["sla"] = {k: v for k, v in shown["sla"].items() if k not in ("policy_id", "breached_at")}
    return shown


def test_every_list_view_shows_the_same_row_as_the_conversation_itself(world):
    """The recent view reads its rows from the `team-latest` index (no row read), the deadline,
    assignee and search views read the rows: contact (name, handle, follower count, id),
    deadline, SLA and snooze wake-up are the same in each, and as in the conversation's own view."""
    inbox, platform, clock = world
    platform.get(f"{INSTAGRAM_GRAPH}/{IGSID}", json={"name": "Marta Reis", "username": "marta.reis",
                                                     "follower_count": 1204})
    platform.get(f"{GRAPH}/{PSID}", json={"first_name": "Ana", "last_name": "Sousa"})
    platform.get(f"{GRAPH}/6100000000000002", json={"first_name": "Rui", "last_name": "Costa"})
    deliver_instagram(inbox, clock)
    deliver(inbox, clock, "m_1")
    deliver(inbox, clock, "m_2", psid="6100000000000002")
    rows = {r["contact"]["display_name"]: r for r in inbox.conversations()}
    until = "2027-01-20T09:00:00.000Z"
    assert inbox.call("PATCH", f"/api/conversations/{rows['Ana Sousa']['id']}",
                      {"status": "snoozed", "snoozed_until": until})[0] == 200
    inbox.set_status(rows["Rui Costa"]["id"], "pending")
    assert inbox.call("PATCH", f"/api/conversations/{rows['Marta Reis']['id']}", {"assignee": "me"})[0] == 200
    views = {"open": ("sort=due", "assignee=me"), "snoozed": ("sort=due",), "pending": ("sort=due",)}
    seen = 0
    for status, others in views.items():
        recent = [_shown(r) for r in inbox.conversations(status=status, sort="recent")]
        assert recent and all(r["status"] == status for r in recent)
        for query in others:
            other = inbox.get(f"/api/conversations?status={status}&{query}")["items"]
            assert [_shown(r) for r in other] == recent, (status, query)
        for row in recent:
            whole = _shown(inbox.get("/api/conversations/" + row["id"]))
            assert {k: whole[k] for k in row} == row, status
            [found] = [r for r in _search(inbox, row["contact"]["display_name"].split()[0]) if r["id"] == row["id"]]
            assert _shown(found) == row, status
            seen += 1
    assert seen == 3
    [marta] = inbox.conversations(status="open", sort="recent")
    assert (marta["contact"]["handle"], marta["contact"]["followers"]) == ("@marta.reis", 1204)
    assert marta["contact"]["id"].startswith("k_")
    assert marta["reply_due_at"] is not None and marta["sla"]["due_at"] == marta["reply_due_at"]
    [ana] = inbox.conversations(status="snoozed", sort="recent")
    assert ana["snoozed_until"] == until and ana["reply_due_at"] is None and ana["sla"] is None


# --- the sweep: weekly refresh and retries, bounded per run (app.profile_refresher) ----------------

DAY = 24 * 3600
PSIDS = [f"61000000000001{i:02d}" for i in range(5)]


def sweep(inbox, clock):
    """One run of the schedule, as EventBridge invokes it."""
    import datetime as dt

    from chalicelib.local.runners import scheduled_event

    at = dt.datetime.fromtimestamp(clock["now"], tz=dt.timezone.utc)
    return inbox.app.profile_refresher(scheduled_event("profile_refresher", at), None)


def customers_write(inbox, clock, platform, psids, tag="a"):
    """Each customer writes once (one delivery), their profiles answered as 'Name <psid's last digits>'."""
    for psid in psids:
        if not any(getattr(m, "url", "").startswith(f"{GRAPH}/{psid}") for m in platform.registered()):
            platform.get(f"{GRAPH}/{psid}", json={"first_name": "Name", "last_name": psid[-2:]})
    at = int(clock["now"] * 1000)
    items = [messenger(f"m_{tag}_{psid}", psid, at, "hello") for psid in psids]
    assert inbox.post_meta(page_delivery(*items, time_ms=at)).status_code == 200
    inbox.process()


def lookups_of(platform, psid):
    return [c for c in profile_calls(platform) if c.request.url.split("?")[0] == f"{GRAPH}/{psid}"]


def shown_names(inbox):
    return {r["contact"]["platform_id"]: r["contact"]["display_name"] for r in inbox.conversations(limit="100")}


def test_the_sweep_refreshes_week_old_profiles_of_active_customers_and_leaves_fresh_ones(world):
    inbox, platform, clock = world
    customers_write(inbox, clock, platform, PSIDS[:1])
    clock["now"] += 3 * DAY
    customers_write(inbox, clock, platform, PSIDS[1:2])
    platform.replace(responses.GET, f"{GRAPH}/{PSIDS[0]}", json={"first_name": "Name", "last_name": "Renamed",
                                                                 "profile_pic": "https://platform-lookaside.fbsbx.com/p/new.jpg"})
    assert sweep(inbox, clock)["due"] == 0  # nobody's week is over
    clock["now"] += 4 * DAY + 60
    stats = sweep(inbox, clock)
    assert (stats["due"], stats["looked up"]) == (1, 1), stats
    assert (len(lookups_of(platform, PSIDS[0])), len(lookups_of(platform, PSIDS[1]))) == (2, 1)
    assert shown_names(inbox) == {PSIDS[0]: "Name Renamed", PSIDS[1]: "Name 01"}  # the list row too
    [row] = [r for r in inbox.conversations() if r["contact"]["platform_id"] == PSIDS[0]]
    contact_id = row["contact"]["id"]
    [identity] = inbox.get(f"/api/contacts/{contact_id}")["identities"]
    assert identity["avatar_url"] == "https://platform-lookaside.fbsbx.com/p/new.jpg"
    assert [r["contact"]["platform_id"] for r in _search(inbox, "renamed")] == [PSIDS[0]]
    assert sweep(inbox, clock)["due"] == 0  # done until next week
    clock["now"] += 3 * DAY
    assert sweep(inbox, clock)["looked up"] == 1 and len(lookups_of(platform, PSIDS[1])) == 2


def test_customers_who_went_quiet_leave_the_sweep_until_they_write_again(world):
    inbox, platform, clock = world
    customers_write(inbox, clock, platform, PSIDS[:1])
    clock["now"] += 31 * DAY
    stats = sweep(inbox, clock)
    assert (stats["due"], stats["inactive"], stats["looked up"]) == (1, 1, 0), stats
    assert sweep(inbox, clock)["due"] == 0 and len(lookups_of(platform, PSIDS[0])) == 1
    customers_write(inbox, clock, platform, PSIDS[:1], tag="b")  # back: looked up on the message
    assert len(lookups_of(platform, PSIDS[0])) == 2
    clock["now"] += 7 * DAY + 60
    assert sweep(inbox, clock)["looked up"] == 1 and len(lookups_of(platform, PSIDS[0])) == 3


def test_a_failed_refresh_is_retried_with_backoff_and_never_blocks_the_conversation(world):
    inbox, platform, clock = world
    customers_write(inbox, clock, platform, PSIDS[:1])
    platform.replace(responses.GET, f"{GRAPH}/{PSIDS[0]}", status=500, body="")
    clock["now"] += 7 * DAY + 60
    assert sweep(inbox, clock)["failed"] == 1
    tries = [len(lookups_of(platform, PSIDS[0]))]
    customers_write(inbox, clock, platform, PSIDS[:1], tag="b")  # stored; the lookup waits for its retry
    [row] = inbox.conversations()
    assert (row["contact"]["display_name"], row["message_count"]) == ("Name 00", 2)
    for minutes in (30, 31, 90, 31):  # retries 1 h after the first failure, then 2 h after the second
        clock["now"] += minutes * 60
        sweep(inbox, clock)
        tries.append(len(lookups_of(platform, PSIDS[0])))
    assert tries == [2, 2, 3, 3, 4]
    platform.replace(responses.GET, f"{GRAPH}/{PSIDS[0]}", json={"first_name": "Name", "last_name": "Back"})
    clock["now"] += 4 * 3600
    assert sweep(inbox, clock)["looked up"] == 1
    assert shown_names(inbox) == {PSIDS[0]: "Name Back"}
    clock["now"] += 6 * DAY  # and weekly again once it worked
    assert sweep(inbox, clock)["due"] == 0


def test_a_sweep_run_is_bounded_in_time_and_count_the_rest_left_for_the_next(world, monkeypatch):
    from chalicelib.inbox import contacts

    inbox, platform, clock = world
    customers_write(inbox, clock, platform, PSIDS)
    clock["now"] += 7 * DAY + 60

    def slow(request):  # each lookup takes 8 s of the run's 20
        clock["now"] += 8
        return 200, {}, json.dumps({"first_name": "Slow", "last_name": request.url.split("?")[0][-2:]})

    for psid in PSIDS:
        platform.remove(responses.GET, f"{GRAPH}/{psid}")
        platform.add_callback(responses.GET, f"{GRAPH}/{psid}", callback=slow)
    stats = sweep(inbox, clock)
    assert (stats["due"], stats["looked up"], stats["left for later"]) == (5, 3, 2), stats
    monkeypatch.setattr(contacts, "SWEEP_MAX", 1)
    assert (sweep(inbox, clock)["looked up"], sweep(inbox, clock)["looked up"], sweep(inbox, clock)["due"]) == (1, 1, 0)
    assert len(profile_calls(platform)) == 10  # each customer once on the message, once by the sweep
    assert set(shown_names(inbox).values()) == {f"Slow {p[-2:]}" for p in PSIDS}


def test_hostile_profiles_are_cleaned(world):
    inbox, platform, clock = world
    platform.get(f"{GRAPH}/{PSID}", json={"first_name": "<script>alert(1)</script>\u202e\x07", "last_name": "x" * 500,
                                          "profile_pic": "javascript:alert(1)", "follower_count": "lots"})
    deliver(inbox, clock, "m_1")
    conversation = only_conversation(inbox)
    name = conversation["contact"]["display_name"]
    assert name.startswith("<script>alert(1)</script> x") and len(name) <= 100  # text; the page escapes it
    [identity] = inbox.get(f"/api/contacts/{conversation['contact']['id']}")["identities"]
    assert identity["avatar_url"] is None


def test_platforms_that_name_their_customers_are_not_looked_up(world):
    inbox, platform, clock = world
    inbox.add_account("whatsapp", "200000000000001")
    assert inbox.post_meta(whatsapp_delivery("wamid.1", "351910000001", int(clock["now"]), "ol\u00e1",
                                             phone="200000000000001", name="Rui")).status_code == 200
    inbox.process()
    assert only_conversation(inbox)["contact"]["display_name"] == "Rui"
    assert profile_calls(platform) == []


def test_no_lookup_leaves_the_machine_by_default_in_local_runs(inbox, monkeypatch):
    monkeypatch.delenv("PROFILE_LOOKUPS", raising=False)
    monkeypatch.setenv("META_GRAPH_BASE_URL", "https://graph.facebook.com/v21.0")
    inbox.add_account("messenger", PAGE)
    with responses.RequestsMock() as platform:  # any request would fail the test
        assert inbox.post_meta(page_delivery(messenger("m_1", PSID, 1_700_000_000_000))).status_code == 200
        inbox.process()
        assert len(platform.calls) == 0
    assert only_conversation(inbox)["contact"]["display_name"].startswith("Messenger user")


# --- the picture through our own endpoint (the page's CSP allows no third-party image) ------------

X_PICTURE = "https://pbs.twimg.com/profile_images/0000000000000000001/example_normal.jpg"


def _x_dm(inbox, picture=X_PICTURE):
    import json as _json

    from tests.helpers import fixture_json

    inbox.add_account("x", "1111111111111111111")
    delivery = fixture_json("x", "activity_dm_received.json")
    for user in delivery["data"]["payload"]["users"].values():
        user["data"]["profile_image_url"] = picture
    assert inbox.post_x(_json.dumps(delivery).encode()).status_code == 200
    inbox.process()
    [row] = inbox.conversations()
    return row["id"]


def _picture(inbox, conversation_id):
    return inbox.client.http.get(f"/api/conversations/{conversation_id}/contact/picture", headers={
        "Authorization": "Bearer " + inbox.login_admin(), "Accept": "image/avif,image/webp,image/*,*/*;q=0.8"})


@responses.activate
def test_the_customers_picture_is_served_from_our_origin_with_the_followers_beside_it(inbox):
    conversation_id = _x_dm(inbox)
    responses.get(X_PICTURE, body=b"\xff\xd8\xff jpeg", content_type="image/jpeg")
    response = _picture(inbox, conversation_id)
    assert response.status_code == 200 and response.body == b"\xff\xd8\xff jpeg"
    assert response.headers["Content-Type"] == "image/jpeg" and response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    contact = inbox.get("/api/conversations/" + conversation_id)["contact"]
    [identity] = inbox.get(f"/api/contacts/{contact['id']}")["identities"]
    assert (identity["display_name"], identity["handle"], identity["followers"]) == ("OtherUser", "@OtherUser", 97)
    [row] = inbox.conversations(status="open")  # the delivery's count rides on the conversation too
    assert (row["contact"]["display_name"], row["contact"]["followers"]) == ("OtherUser", 97)


@responses.activate
@pytest.mark.parametrize("picture", ["https://169.254.169.254/latest/meta-data/", "http://pbs.twimg.com/a.jpg",
                                     "javascript:alert(1)", "https://pbs.twimg.com.evil.example/a.jpg",
                                     "https://user:pw@pbs.twimg.com/a.jpg", "https://pbs.twimg.com:8443/a.jpg"])
def test_a_hostile_picture_address_is_never_fetched(inbox, picture):
    conversation_id = _x_dm(inbox, picture)
    assert _picture(inbox, conversation_id).status_code == 404
    assert len(responses.calls) == 0


@responses.activate
def test_a_picture_the_cdn_no_longer_has_or_types_as_html_is_404_or_inert(inbox):
    conversation_id = _x_dm(inbox)
    responses.get(X_PICTURE, status=404)
    assert _picture(inbox, conversation_id).status_code == 404
    responses.replace(responses.GET, X_PICTURE, body=b"<script>alert(1)</script>", content_type="text/html")
    served = _picture(inbox, conversation_id)
    assert served.status_code == 200 and served.headers["Content-Type"] == "application/octet-stream"
    assert served.headers["Content-Disposition"].startswith("attachment;")


def test_a_contact_without_a_picture_is_404(inbox):
    inbox.add_account("telegram", "1000000001", "Bot")
    inbox.post_telegram({"update_id": 1, "message": {"message_id": 5, "date": 1_800_000_000, "text": "hi",
                                                     "chat": {"id": 42, "type": "private"},
                                                     "from": {"id": 42, "is_bot": False, "first_name": "Tom"}}},
                        bot="1000000001")
    inbox.process()
    [row] = inbox.conversations()
    assert _picture(inbox, row["id"]).status_code == 404
    assert _picture(inbox, "c_nobody").status_code == 404


# --- LinkedIn member names, where the organization's permissions allow ---------------------------

LI_ORG = "urn:li:organization:96072893"
LI_PEOPLE = "https://api.linkedin.com/rest/people/(id:M4rt1naR0ss)"


@pytest.fixture
def linkedin(inbox, monkeypatch):
    monkeypatch.setenv("PROFILE_LOOKUPS", "on")
    monkeypatch.setenv("LINKEDIN_ACCESS_TOKEN", "li-token-secret")
    monkeypatch.delenv("LINKEDIN_API_BASE_URL", raising=False)
    clock = {"now": T0}
    runtime.use_clock(lambda: clock["now"])
    inbox.add_account("linkedin", LI_ORG)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as platform:
        yield inbox, platform, clock
    runtime.use_clock(None)


def _li_mention(inbox, clock, number=1):
    from tests.helpers import fixture_json

    before = {row["id"] for row in inbox.conversations()}
    delivery = fixture_json("linkedin", "share_mention.json")  # a new post each time: a new thread
    text = json.dumps(delivery).replace("7095000000000000001", f"70950000000000000{number:02d}")
    assert inbox.post_linkedin(text.encode()).status_code == 200
    inbox.process()
    [new] = [row["id"] for row in inbox.conversations() if row["id"] not in before]
    return inbox.get("/api/conversations/" + new)["contact"]


def test_a_linkedin_member_is_named_where_the_organization_may_see_it_after_the_message_is_stored(linkedin):
    inbox, platform, clock = linkedin
    platform.get(LI_PEOPLE, json={"localizedFirstName": "Martina", "localizedLastName": "Rossi\u202e\x00",
                                  "vanityName": "martina-rossi", "id": "M4rt1naR0ss"})
    contact = _li_mention(inbox, clock)
    assert contact["display_name"] == "Martina Rossi" and contact["handle"] == "martina-rossi"
    [call] = platform.calls
    assert call.request.headers["Authorization"] == "Bearer li-token-secret"
    assert call.request.headers["LinkedIn-Version"] and "li-token-secret" not in call.request.url


def test_where_linkedin_refuses_the_member_stays_linkedin_member_and_is_asked_again_a_week_later(linkedin):
    inbox, platform, clock = linkedin
    platform.get(LI_PEOPLE, status=403, json={"status": 403, "message": "Not enough permissions"})
    assert _li_mention(inbox, clock)["display_name"] == "LinkedIn member"
    clock["now"] += 2 * 24 * 3600
    runtime.remember("profile-memory", None)
    _li_mention(inbox, clock, 2)
    assert len(platform.calls) == 1  # a refusal is an answer: not asked again within the week
    clock["now"] += 6 * 24 * 3600
    runtime.remember("profile-memory", None)
    platform.replace(responses.GET, LI_PEOPLE, json={"localizedFirstName": "Martina", "localizedLastName": "Rossi"})
    assert _li_mention(inbox, clock, 3)["display_name"] == "Martina Rossi"


@pytest.mark.parametrize("failure", [{"status": 429, "json": {"status": 429}}, {"status": 503, "body": "<html>"},
                                     {"body": requests.ConnectionError("li-token-secret in the url")}])
def test_a_failed_linkedin_lookup_is_retried_later_and_never_blocks_the_message(linkedin, failure):
    inbox, platform, clock = linkedin
    platform.get(LI_PEOPLE, **failure)
    assert _li_mention(inbox, clock)["display_name"] == "LinkedIn member"  # the message is stored all the same
    clock["now"] += 3600 + 1
    runtime.remember("profile-memory", None)
    platform.replace(responses.GET, LI_PEOPLE, json={"localizedFirstName": "Martina"})
    assert _li_mention(inbox, clock, 2)["display_name"] == "Martina"
    assert len(platform.calls) == 2


@pytest.mark.parametrize("answer", [
    {"localizedFirstName": {"en_US": "Martina"}, "localizedLastName": ["Rossi"], "vanityName": 7},
    {"localizedFirstName": "\u202e\x00\x1b[31m", "localizedLastName": "", "vanityName": "javascript:alert(1)"},
    {"localizedFirstName": "M" * 10_000, "vanityName": "a" * 500},
    [1, 2, 3],
])
def test_hostile_linkedin_profile_answers_never_name_anyone_wrongly(linkedin, answer):
    inbox, platform, clock = linkedin
    platform.get(LI_PEOPLE, json=answer)
    contact = _li_mention(inbox, clock)
    name = contact["display_name"]
    assert name in ("LinkedIn member", "M" * 100, "[31m")  # what is left of a name once made printable
    assert all(c.isprintable() for c in name) and "\u202e" not in name
    assert not contact.get("handle")  # a vanity name must be one: a number or a script is none, nor 500 letters
