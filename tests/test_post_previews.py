"""The post behind a comment thread: its first lines, address and picture, looked up with the
account's token when the thread is viewed (never while the webhook is answered), once per post,
again after a day; the picture comes through our own endpoint. Graph is faked with `responses`."""
from __future__ import annotations

import json

import pytest
import responses

from chalicelib.runtime import runtime
from tests.helpers import PAGE, fixture_json, messenger, page_delivery

GRAPH = "https://graph.facebook.com/v21.0"
INSTAGRAM_GRAPH = "https://graph.instagram.com/v21.0"
FB_PAGE, FB_POST = "104000000000099", "104000000000099_555000111"
IG_ACCOUNT, IG_MEDIA = "17841400000000099", "17900000000000123"
PICTURE = "https://scontent.xx.fbcdn.net/v/t39/post.jpg?sig=abc"
HOSTILE = "<img src=x onerror=alert(1)>\u202eevil\u202c <script>alert('x')</script>"
T0 = 1_800_000_000.0


@pytest.fixture
def world(inbox, monkeypatch):
    monkeypatch.setenv("META_PAGE_TOKEN", "page-token-secret")
    monkeypatch.setenv("INSTAGRAM_ACCESS_TOKEN", "ig-login-token")
    monkeypatch.delenv("META_GRAPH_BASE_URL", raising=False)
    monkeypatch.delenv("INSTAGRAM_GRAPH_BASE_URL", raising=False)
    clock = {"now": T0}
    runtime.use_clock(lambda: clock["now"])
    inbox.add_account("facebook", FB_PAGE)
    inbox.add_account("instagram", IG_ACCOUNT)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as platform:
        yield inbox, platform, clock
    runtime.use_clock(None)


def thread(inbox, fixture, channel):
    assert inbox.post_meta(fixture_json("meta", fixture + ".json")).status_code == 200
    inbox.process()
    return next(c["id"] for c in inbox.conversations() if c["channel"] == channel)


def graph_gets(platform, path):
    return [c for c in platform.calls if c.request.method == "GET" and path in c.request.url]


def test_a_facebook_post_is_looked_up_once_with_the_page_token_and_again_after_a_day(world):
    inbox, platform, clock = world
    platform.get(f"{GRAPH}/{FB_POST}", json={
        "message": "New pastries!\nGluten-free on Fridays.\n\n\nline 3\nline 4\nline 5 is not shown",
        "permalink_url": "https://www.facebook.com/acme/posts/555000111", "full_picture": PICTURE, "id": FB_POST})
    conversation = thread(inbox, "facebook_comment_add", "facebook")
    assert graph_gets(platform, FB_POST) == []  # nothing on the webhook's or the processor's path
    post = inbox.get(f"/api/conversations/{conversation}/post")
    assert post == {"text": "New pastries!\nGluten-free on Fridays.\nline 3\nline 4",
                    "url": "https://www.facebook.com/acme/posts/555000111",
                    "picture_url": f"/api/conversations/{conversation}/post/picture"}
    [call] = graph_gets(platform, FB_POST)
    assert call.request.headers["Authorization"] == "Bearer page-token-secret"
    assert "fields=message%2Cpermalink_url%2Cfull_picture" in call.request.url
    clock["now"] += 3600
    assert inbox.get(f"/api/conversations/{conversation}/post") == post  # cached
    assert len(graph_gets(platform, FB_POST)) == 1
    platform.replace(responses.GET, f"{GRAPH}/{FB_POST}", json={"message": "Edited text", "id": FB_POST})
    clock["now"] += 24 * 3600
    edited = inbox.get(f"/api/conversations/{conversation}/post")
    assert edited == {"text": "Edited text", "url": f"https://www.facebook.com/{FB_POST}", "picture_url": None}
    assert len(graph_gets(platform, FB_POST)) == 2


def test_the_picture_is_served_from_our_origin(world):
    inbox, platform, _ = world
    platform.get(f"{GRAPH}/{FB_POST}", json={"message": "hi", "full_picture": PICTURE})
    platform.get(PICTURE, body=b"\xff\xd8\xff jpeg", content_type="image/jpeg")
    conversation = thread(inbox, "facebook_comment_add", "facebook")
    picture = inbox.get(f"/api/conversations/{conversation}/post")["picture_url"]
    response = inbox.client.http.get(picture, headers={"Authorization": "Bearer " + inbox.login_admin(),
                                                       "Accept": "image/avif,image/webp,image/*,*/*;q=0.8"})
    assert response.status_code == 200 and response.body == b"\xff\xd8\xff jpeg"
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_instagram_media_hostile_caption_and_addresses_are_kept_harmless(world):
    inbox, platform, _ = world
    platform.get(f"{INSTAGRAM_GRAPH}/{IG_MEDIA}", json={
        "caption": HOSTILE, "permalink": "javascript:alert(1)//https://www.instagram.com/p/x/",
        "media_url": "https://169.254.169.254/latest/meta-data/", "media_type": "IMAGE", "id": IG_MEDIA})
    conversation = thread(inbox, "instagram_comment", "instagram")
    post = inbox.get(f"/api/conversations/{conversation}/post")
    assert post["text"] == "<img src=x onerror=alert(1)>evil <script>alert('x')</script>"  # plain text, no overrides
    assert post["url"] is None and post["picture_url"] is None  # neither a javascript: link nor a non-CDN picture
    [call] = graph_gets(platform, IG_MEDIA)
    assert call.request.headers["Authorization"] == "Bearer ig-login-token"
    code, _ = inbox.call("GET", f"/api/conversations/{conversation}/post/picture")
    assert code == 404


def test_an_instagram_video_shows_its_thumbnail_and_permalink(world):
    inbox, platform, _ = world
    platform.get(f"{INSTAGRAM_GRAPH}/{IG_MEDIA}", json={
        "caption": "Reel", "permalink": "https://www.instagram.com/reel/Cx1/", "media_type": "VIDEO",
        "media_url": "https://scontent.cdninstagram.com/v/video.mp4", "thumbnail_url": "https://scontent.cdninstagram.com/v/t.jpg"})
    platform.get("https://scontent.cdninstagram.com/v/t.jpg", body=b"\x89PNG thumb", content_type="image/png")
    conversation = thread(inbox, "instagram_comment", "instagram")
    post = inbox.get(f"/api/conversations/{conversation}/post")
    assert post["url"] == "https://www.instagram.com/reel/Cx1/" and post["text"] == "Reel"
    response = inbox.client.http.get(post["picture_url"], headers={
        "Authorization": "Bearer " + inbox.login_admin(), "Accept": "image/avif,image/webp,image/*,*/*;q=0.8"})
    assert response.body == b"\x89PNG thumb"


def test_a_failed_look_up_answers_the_link_and_is_retried_later_not_on_every_view(world):
    inbox, platform, clock = world
    platform.get(f"{GRAPH}/{FB_POST}", status=400, json={"error": {"code": 190, "message": "expired"}})
    conversation = thread(inbox, "facebook_comment_add", "facebook")
    expected = {"text": None, "url": f"https://www.facebook.com/{FB_POST}", "picture_url": None}
    assert inbox.get(f"/api/conversations/{conversation}/post") == expected
    assert inbox.get(f"/api/conversations/{conversation}/post") == expected
    assert len(graph_gets(platform, FB_POST)) == 1
    platform.replace(responses.GET, f"{GRAPH}/{FB_POST}", json={"message": "Back"})
    clock["now"] += 16 * 60
    assert inbox.get(f"/api/conversations/{conversation}/post")["text"] == "Back"


def test_a_dm_has_no_post_and_no_token_reaches_the_answer(world):
    inbox, platform, _ = world
    inbox.add_account("messenger", PAGE)
    assert inbox.post_meta(page_delivery(messenger("m_dm", "psid_dm", int(T0 * 1000), "hi"))).status_code == 200
    inbox.process()
    dm = next(c["id"] for c in inbox.conversations() if c["channel"] == "messenger")
    code, body = inbox.call("GET", f"/api/conversations/{dm}/post")
    assert code == 404 and "page-token-secret" not in json.dumps(body)
    code, _ = inbox.call("GET", "/api/conversations/c_nope/post")
    assert code == 404
    assert graph_gets(platform, "graph") == []
