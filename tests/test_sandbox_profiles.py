"""The sandbox (`make run`) serves the customers' profile endpoints offline, per platform, in the
shapes the adapters read: Messenger's User Profile, Instagram's user profile (Instagram Login host
and Page token on the Graph host), LinkedIn's People API (and its refusal); X, WhatsApp and Telegram
name customers in their deliveries. The picture comes back through our own endpoint."""
from __future__ import annotations

import json
import time

import pytest

from chalicelib.local import sandbox
from tests.helpers import PAGE, fixture_json, messenger, page_delivery
from tests.test_attachments_channels import IG, instagram_dm

SECRETS = {"META_PAGE_TOKEN": "sb-page-token", "INSTAGRAM_ACCESS_TOKEN": "sb-ig-token",
           "LINKEDIN_ACCESS_TOKEN": "sb-li-token"}


@pytest.fixture
def offline(inbox, monkeypatch):
    platform, env = sandbox.start(None, secrets=SECRETS.get)
    try:
        for name, value in dict(env, PROFILE_LOOKUPS="on", **SECRETS).items():
            monkeypatch.setenv(name, value)
        yield inbox, platform
    finally:
        platform.close()


def _contact(inbox, channel):
    [row] = inbox.conversations(channel=channel)
    return row["id"], inbox.get("/api/conversations/" + row["id"])["contact"]


def _identity(inbox, contact):
    [identity] = inbox.get(f"/api/contacts/{contact['id']}")["identities"]
    return identity


def test_messenger_profiles_come_from_the_sandbox_with_a_picture_our_endpoint_serves(offline):
    inbox, platform = offline
    inbox.add_account("messenger", PAGE)
    inbox.post_meta(page_delivery(messenger("m_sb1", "6100000000000077", int(time.time() * 1000), "hi")))
    inbox.process()
    conversation_id, contact = _contact(inbox, "messenger")
    first, last = sandbox.PEOPLE[sum(b"6100000000000077") % len(sandbox.PEOPLE)]
    assert contact["display_name"] == f"{first} {last}"
    [call] = [r for r in platform.requests if r["path"].endswith("/6100000000000077")]
    assert call["query"]["fields"] == "first_name,last_name,profile_pic" and call["auth"] == "Bearer"
    picture = inbox.client.http.get(f"/api/conversations/{conversation_id}/contact/picture", headers={
        "Authorization": "Bearer " + inbox.login_admin(), "Accept": "image/png"})
    assert picture.status_code == 200 and picture.body == sandbox.POST_PICTURE


@pytest.mark.parametrize("login_token", [True, False])
def test_instagram_profiles_come_with_handle_and_followers_on_either_host(offline, monkeypatch, login_token):
    inbox, platform = offline
    if not login_token:  # an account connected through its Facebook Page asks the Graph host
        monkeypatch.setenv("INSTAGRAM_ACCESS_TOKEN", "")
    conversation_id = instagram_dm(inbox)
    _, contact = _contact(inbox, "instagram")
    identity = _identity(inbox, contact)
    assert identity["display_name"] and identity["handle"].startswith("@")
    assert isinstance(identity["followers"], int) and identity["followers"] >= 100
    [call] = [r for r in platform.requests if "fields" in r["query"] and "follower_count" in r["query"]["fields"]]
    assert call["platform"] == ("instagram" if login_token else "graph")
    assert conversation_id and IG not in call["path"]


@pytest.mark.parametrize("person, named", [("M4rt1naR0ss", True), ("privateP3rson", False)])
def test_linkedin_members_are_named_where_allowed_and_linkedin_member_elsewhere(offline, person, named):
    inbox, platform = offline
    inbox.add_account("linkedin", "urn:li:organization:96072893")
    delivery = json.dumps(fixture_json("linkedin", "share_mention.json")).replace("M4rt1naR0ss", person)
    assert inbox.post_linkedin(delivery.encode()).status_code == 200
    inbox.process()
    _, contact = _contact(inbox, "linkedin")
    if named:
        first, last = sandbox.PEOPLE[sum(person.encode()) % len(sandbox.PEOPLE)]
        assert contact["display_name"] == f"{first} {last}"
    else:
        assert contact["display_name"] == "LinkedIn member"
    assert [r["path"] for r in platform.requests if r["platform"] == "linkedin"] == [f"/linkedin/rest/people/(id:{person})"]


def test_the_sandbox_refuses_profile_lookups_without_the_token(offline):
    import requests

    _, platform = offline
    for path in ("/graph/v21.0/6100000000000077?fields=first_name,last_name,profile_pic",
                 "/instagram/v21.0/1790000000000009?fields=name,username,profile_pic,follower_count",
                 "/linkedin/rest/people/(id:M4rt1naR0ss)"):
        assert requests.get(platform.base_url + path, headers={"Authorization": "Bearer wrong"},
                            timeout=5).status_code == 401
