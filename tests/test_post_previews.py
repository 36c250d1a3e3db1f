"""The post behind a comment thread: its first lines, address and picture, looked up with the
account's token when the thread is viewed (never while the webhook is answered), once per post,
again after a day; the picture comes through our own endpoint. Graph is faked with `responses`."""
from __future__ import annotations

import json

import pytest
import responses
from hypothesis import given, settings

from chalicelib.runtime import runtime
from tests.helpers import PAGE, fixture_json, json_values, messenger, page_delivery

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


def picture(inbox, path):
    """The picture as the page fetches it: our endpoint, with the agent's token."""
    return inbox.client.http.get(path, headers={"Authorization": "Bearer " + inbox.login_admin(),
                                                "Accept": "image/avif,image/webp,image/*,*/*;q=0.8"})


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
    picture_url = inbox.get(f"/api/conversations/{conversation}/post")["picture_url"]
    response = picture(inbox, picture_url)
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
    assert picture(inbox, post["picture_url"]).body == b"\x89PNG thumb"


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
    # no post looked up (the new contact's own profile may be, after storing: that is not a post)
    assert [c.request.url for c in graph_gets(platform, "graph") if "/psid_dm?" not in c.request.url] == []


# --- X and LinkedIn: the post from the delivery itself, else looked up ---------------------------

X_ACCOUNT, X_OURS = "1111111111111111111", "2080766000000000002"
ORG, SHARE = "urn:li:organization:96072893", "urn:li:share:7094637247487995904"
ACTIVITY = "urn:li:activity:7094637247890620418"
X_PICTURE = "https://pbs.twimg.com/media/OurPost.jpg"


@pytest.fixture
def social(world, monkeypatch):
    inbox, platform, clock = world
    for name in ("X_API_BASE_URL", "LINKEDIN_API_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("X_CONSUMER_KEY", "X_ACCESS_TOKEN", "X_ACCESS_TOKEN_SECRET"):
        monkeypatch.setenv(name, "")  # no OAuth 1.0a user context (not even the local stage's defaults)
    monkeypatch.setenv("X_OAUTH2_USER_TOKEN", "x-user-token")
    monkeypatch.setenv("LINKEDIN_ACCESS_TOKEN", "li-token")
    inbox.add_account("x", X_ACCOUNT)
    inbox.add_account("linkedin", ORG)
    return inbox, platform, clock


def x_reply(with_our_post: bool):
    delivery = fixture_json("x", "activity_reply.json")
    if with_our_post:
        delivery["data"]["includes"]["tweets"] = [{
            "id": X_OURS, "author_id": X_ACCOUNT, "text": "Our spring menu &amp; a new roast \U0001f331",
            "attachments": {"media_keys": ["3_ours"]}}]
        delivery["data"]["includes"]["media"].append({"media_key": "3_ours", "type": "photo", "url": X_PICTURE})
        delivery["data"]["includes"]["users"].append({"id": X_ACCOUNT, "username": "ExampleUser", "name": "Us"})
    return delivery


def delivered(inbox, channel, delivery):
    """The newest conversation of `channel` after its webhook delivered `delivery`."""
    assert getattr(inbox, "post_" + channel)(delivery).status_code == 200
    inbox.process()
    return [c for c in inbox.conversations() if c["channel"] == channel][0]


def test_an_x_reply_shows_the_post_it_answers_from_the_delivery_without_asking_x(social):
    inbox, platform, _ = social
    platform.get(X_PICTURE, body=b"\xff\xd8\xff our post", content_type="image/jpeg")
    conversation = delivered(inbox, "x", x_reply(with_our_post=True))
    assert conversation["subject"] == X_OURS and conversation["kind"] == "mention"
    post = inbox.get(f"/api/conversations/{conversation['id']}/post")
    assert post == {"text": "Our spring menu & a new roast \U0001f331",
                    "url": f"https://x.com/ExampleUser/status/{X_OURS}",
                    "picture_url": f"/api/conversations/{conversation['id']}/post/picture"}
    assert [c for c in platform.calls if "api.x.com" in c.request.url] == []
    assert picture(inbox, post["picture_url"]).body == b"\xff\xd8\xff our post"


def test_an_x_reply_without_the_post_in_its_delivery_looks_it_up_once_with_the_account_token(social):
    inbox, platform, clock = social
    platform.get(f"https://api.x.com/2/tweets/{X_OURS}", json={
        "data": {"id": X_OURS, "author_id": X_ACCOUNT, "text": "Looked up", "attachments": {"media_keys": ["7_v"]}},
        "includes": {"media": [{"media_key": "7_v", "type": "video", "preview_image_url": X_PICTURE}],
                     "users": [{"id": X_ACCOUNT, "username": "javascript:alert(1)"}]}})
    conversation = delivered(inbox, "x", x_reply(with_our_post=False))
    lookups = lambda: [c for c in platform.calls if "api.x.com" in c.request.url]  # noqa: E731
    assert lookups() == []  # nothing while the delivery was processed
    post = inbox.get(f"/api/conversations/{conversation['id']}/post")
    assert post["text"] == "Looked up" and post["url"] == f"https://x.com/i/web/status/{X_OURS}"
    assert post["picture_url"] is not None  # a video's preview picture
    [call] = lookups()
    assert call.request.headers["Authorization"] == "Bearer x-user-token"
    assert "expansions=attachments.media_keys%2Cauthor_id" in call.request.url
    clock["now"] += 3600
    inbox.get(f"/api/conversations/{conversation['id']}/post")
    assert len(lookups()) == 1


def test_an_account_activity_quote_carries_the_quoted_post_and_a_bare_mention_is_its_own_post(social):
    inbox, platform, _ = social
    inbox.add_account("x", "4337869213")
    delivery = fixture_json("x", "mention_thread.json")
    tweet = delivery["tweet_create_events"][0]
    tweet["quoted_status_id_str"] = "1040000000000000001"
    tweet["quoted_status"] = {"id_str": "1040000000000000001", "text": "Our <b>new</b> cups",
                              "user": {"id_str": "4337869213", "screen_name": "acmecoffee"}}
    conversation = delivered(inbox, "x", {"for_user_id": "4337869213", "tweet_create_events": [tweet]})
    post = inbox.get(f"/api/conversations/{conversation['id']}/post")
    assert post == {"text": "Our <b>new</b> cups", "url": "https://x.com/acmecoffee/status/1040000000000000001",
                    "picture_url": None}
    del tweet["quoted_status"], tweet["quoted_status_id_str"]
    tweet["id_str"] = "1050118621198921999"
    bare = delivered(inbox, "x", {"for_user_id": "4337869213", "tweet_create_events": [tweet]})
    assert inbox.get(f"/api/conversations/{bare['id']}/post")["url"] == \
        "https://x.com/lea_mueller/status/1050118621198921999"
    assert [c for c in platform.calls if "api.x.com" in c.request.url] == []


def test_an_x_reply_mention_is_listed_in_listening_by_its_own_address_not_the_post_it_answers(social):
    inbox, _, _ = social
    delivered(inbox, "x", x_reply(with_our_post=True))
    status, body = inbox.call("get", "/api/listening/items")
    assert status == 200
    [item] = body["items"]
    assert item["url"] == "https://x.com/i/web/status/2080766500000000004"


def linkedin_comment(media_category: str):
    delivery = fixture_json("linkedin", "comments_batch.json")
    first = delivery["notifications"][0]
    first["decoratedSourcePost"]["mediaCategory"] = media_category
    delivery["notifications"] = [first]
    return delivery


def test_a_linkedin_comment_shows_the_post_its_notification_carries(social):
    inbox, platform, _ = social
    conversation = delivered(inbox, "linkedin", linkedin_comment("NONE"))
    post = inbox.get(f"/api/conversations/{conversation['id']}/post")
    assert post == {"text": "We're hiring baristas in Lyon \u2615 Apply via the link!",
                    "url": f"https://www.linkedin.com/feed/update/{ACTIVITY}/", "picture_url": None}
    assert [c for c in platform.calls if "linkedin.com" in c.request.url] == []


def test_a_linkedin_post_with_media_is_looked_up_by_its_share_urn_for_the_picture(social):
    inbox, platform, _ = social
    image = "urn:li:image:C4D22AQH"
    platform.get(f"https://api.linkedin.com/rest/posts/{SHARE.replace(':', '%3A')}", json={
        "id": SHARE, "commentary": "Edited on LinkedIn", "content": {"media": {"id": image}}})
    platform.get(f"https://api.linkedin.com/rest/images/{image.replace(':', '%3A')}",
                 json={"id": image, "downloadUrl": "https://media.licdn.com/dms/image/C4D22AQH/photo.jpg"})
    conversation = delivered(inbox, "linkedin", linkedin_comment("IMAGE"))
    post = inbox.get(f"/api/conversations/{conversation['id']}/post")
    assert post["text"] == "Edited on LinkedIn"
    assert post["picture_url"] == f"/api/conversations/{conversation['id']}/post/picture"
    calls = [c for c in platform.calls if "api.linkedin.com" in c.request.url]
    assert len(calls) == 2 and all(c.request.headers["Authorization"] == "Bearer li-token" for c in calls)
    assert calls[0].request.headers["X-Restli-Protocol-Version"] == "2.0.0" and calls[0].request.headers["LinkedIn-Version"]


# --- refreshed when the post is edited -----------------------------------------------------------


def post_edited(post_id, text, author=FB_PAGE):
    return {"object": "page", "entry": [{"id": FB_PAGE, "time": int(T0) + 7200, "changes": [{"field": "feed", "value": {
        "item": "status", "verb": "edited", "post_id": post_id, "message": text, "published": 1,
        "created_time": int(T0) - 3600, "from": {"id": author, "name": "Acme"}}}]}]}


def test_a_facebook_page_post_edit_refreshes_the_post_behind_its_threads(world):
    inbox, platform, clock = world
    platform.get(f"{GRAPH}/{FB_POST}", json={"message": "First text", "full_picture": PICTURE})
    conversation = thread(inbox, "facebook_comment_add", "facebook")
    assert inbox.get(f"/api/conversations/{conversation}/post")["text"] == "First text"
    platform.replace(responses.GET, f"{GRAPH}/{FB_POST}", status=500, json={"error": {"message": "down"}})
    assert inbox.post_meta(post_edited(FB_POST, "Edited: now with oat milk")).status_code == 200
    inbox.process()
    clock["now"] += 60  # long before the day's expiry
    edited = inbox.get(f"/api/conversations/{conversation}/post")
    assert edited["text"] == "Edited: now with oat milk"  # the webhook's text, though the look-up failed
    assert edited["picture_url"] is not None  # what was known stays
    assert len(graph_gets(platform, FB_POST)) == 2  # looked up again at once after the edit
    platform.replace(responses.GET, f"{GRAPH}/{FB_POST}", json={"message": "Edited: now with oat milk"})
    assert inbox.post_meta(post_edited(FB_POST, "A visitor cannot edit our post", author="999")).status_code == 200
    inbox.process()
    assert inbox.get(f"/api/conversations/{conversation}/post")["text"] == "Edited: now with oat milk"


def test_instagram_media_is_refreshed_by_the_days_expiry(world):
    inbox, platform, clock = world
    platform.get(f"{INSTAGRAM_GRAPH}/{IG_MEDIA}", json={"caption": "Before", "media_type": "IMAGE"})
    conversation = thread(inbox, "instagram_comment", "instagram")
    assert inbox.get(f"/api/conversations/{conversation}/post")["text"] == "Before"
    platform.replace(responses.GET, f"{INSTAGRAM_GRAPH}/{IG_MEDIA}", json={"caption": "After", "media_type": "IMAGE"})
    clock["now"] += 23 * 3600
    assert inbox.get(f"/api/conversations/{conversation}/post")["text"] == "Before"
    clock["now"] += 2 * 3600
    assert inbox.get(f"/api/conversations/{conversation}/post")["text"] == "After"


@settings(max_examples=200, deadline=None)
@given(includes=json_values(), post=json_values())
def test_a_post_carried_in_any_shape_of_delivery_never_sinks_the_message(includes, post):
    """Property: whatever `includes`, quoted status or decorated post a delivery holds, reading the
    post behind the thread answers a preview or None, never an exception (which would turn the
    customer's message into a parse problem)."""
    from chalicelib.channels.posts import carried_linkedin, carried_x_v1, carried_x_v2

    tweets = [dict(post, id="19") if isinstance(post, dict) else post]
    for found in (carried_x_v2("19", tweets, includes), carried_x_v1("19", post), carried_linkedin(ACTIVITY, post),
                  carried_x_v2("19", includes.get("tweets") if isinstance(includes, dict) else None, includes)):
        assert found is None or set(found) >= {"id", "text", "url", "picture"}
