"""The agent API and the web page through the API function's own Lambda function URL (issue 21):
the handler that answers the REST API also answers payload format 2.0 events, with the same
routes, answers, headers and limits. Requests go through the function's handler (app.app) with
the event a function URL sends (tests/helpers.Inbox.api_url), and are compared with the same
request through the REST API (Chalice's test client)."""
from __future__ import annotations

import base64
import json
import re
import time
from urllib.parse import urljoin, urlsplit

import pytest
import responses

from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, PAGE, function_url_event, messenger, page_delivery

ORIGIN = "https://abc123.lambda-url.us-east-1.on.aws/"


def _json(answer):
    return json.loads(answer["body"])


def _conversation(inbox):
    inbox.add_account("messenger", PAGE)
    inbox.post_meta(page_delivery(messenger("m-url-api", "psid-url-api", int(time.time() * 1000) - 60_000, "Where is my order?")))
    assert inbox.process() == 1
    [conversation] = inbox.conversations()
    return conversation


def test_an_agent_signs_in_and_reads_the_list_as_through_the_rest_api(inbox):
    inbox.login_admin()  # the admin exists
    answer = inbox.api_url("POST", "/api/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert answer["statusCode"] == 200 and answer["headers"]["Cache-Control"] == "no-store"
    token = _json(answer)["token"]
    conversation = _conversation(inbox)
    listed = inbox.api_url("GET", "/api/conversations?status=open&limit=10", token=token)
    assert listed["statusCode"] == 200
    assert [c["id"] for c in _json(listed)["items"]] == [conversation["id"]]
    assert _json(listed)["items"] == inbox.conversations(status="open", limit="10")
    one = inbox.api_url("GET", f"/api/conversations/{conversation['id']}", token=token)
    assert _json(one)["id"] == conversation["id"]


def test_a_reply_posted_through_the_url_is_stored_and_queued(inbox):
    conversation = _conversation(inbox)
    answer = inbox.api_url("POST", f"/api/conversations/{conversation['id']}/messages",
                           {"text": "Let me check", "kind": "reply", "client_id": "url-1"}, token=inbox.login_admin())
    assert answer["statusCode"] == 202, answer["body"]
    assert _json(answer)["text"] == "Let me check"
    assert [m["direction"] for m in inbox.messages(conversation["id"])] == ["in", "out"]


def test_a_base64_body_is_read_as_the_same_json(inbox):
    conversation = _conversation(inbox)
    answer = inbox.api_url("POST", f"/api/conversations/{conversation['id']}/messages",
                           {"text": "Grüße ✓", "kind": "note", "client_id": "url-b64"}, encode=True,
                           token=inbox.login_admin())
    assert answer["statusCode"] == 202, answer["body"]
    assert inbox.messages(conversation["id"])[-1]["text"] == "Grüße ✓"


def test_a_body_flagged_base64_that_is_not_is_a_400(inbox):
    event = function_url_event("POST", "/api/auth/login", b"", {"Content-Type": "application/json"})
    event.update(body="%%% not base64 %%%", isBase64Encoded=True)
    answer = inbox.app.app(event, None)
    assert answer["statusCode"] == 400 and _json(answer)["Code"] == "BadRequestError"


def test_the_page_loads_from_the_url_origin_and_its_relative_urls_reach_the_api(inbox):
    """The page and its scripts name every URL relative to where they were loaded from, so from
    the function URL's root they reach `/static/...` and `/api/...` (behind the REST API, the
    stage's `/api/` prefix is in front of the same paths)."""
    page = inbox.api_url("GET", "/")
    assert page["statusCode"] == 200 and page["headers"]["Content-Type"].startswith("text/html")
    rest = inbox.client.http.get("/")
    assert page["body"].encode() == rest.body
    assert {k: v for k, v in page["headers"].items()} == dict(rest.headers)  # CSP, security, caching
    script = re.search(r'<script src="(static/app\.js\?v=[0-9a-f]+)"', page["body"]).group(1)
    asset = urlsplit(urljoin(ORIGIN, script))
    served = inbox.api_url("GET", asset.path + "?" + asset.query)
    assert served["statusCode"] == 200 and "immutable" in served["headers"]["Cache-Control"]
    base = urljoin(urljoin(ORIGIN, script), "..")  # app.js: BASE = new URL('..', currentScript.src)
    me = inbox.api_url("GET", urlsplit(urljoin(base, "api/me")).path, token=inbox.login_admin())
    assert me["statusCode"] == 200 and _json(me)["email"] == ADMIN_EMAIL
    assert me["headers"]["Cache-Control"] == "no-store" and me["headers"]["X-Frame-Options"] == "DENY"


def test_repeated_request_headers_joined_by_the_url_are_still_understood(inbox):
    """A function URL joins a repeated header's values with commas: a revalidation naming several
    ETags still matches the page's."""
    etag = inbox.api_url("GET", "/")["headers"]["ETag"]
    again = inbox.api_url("GET", "/", headers={"If-None-Match": f'"0000", {etag}'})
    assert again["statusCode"] == 304 and again["body"] == ""


def test_cookies_arrive_as_a_cookie_header_and_set_cookie_leaves_as_cookies():
    from chalicelib.api.function_url import function_url_answer, rest_event_of

    event = function_url_event("GET", "/api/me", headers={"X-Thing": "a,b"})
    event["cookies"] = ["a=1", "b=2"]
    rest = rest_event_of(event, {"/api/me": {}})
    assert rest["headers"]["cookie"] == "a=1; b=2" and rest["headers"]["x-thing"] == "a,b"
    shaped = function_url_answer({"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "x",
                                  "multiValueHeaders": {"Set-Cookie": ["s=1; Secure", "t=2"], "Vary": ["a", "b"]}})
    assert shaped["cookies"] == ["s=1; Secure", "t=2"] and "Set-Cookie" not in shaped["headers"]
    assert shaped["headers"] == {"Content-Type": "text/plain", "Vary": "a, b"}


def test_login_throttling_sees_the_callers_address(inbox):
    """The throttle keys on the function URL's sourceIp: an address that guessed too often is held
    back, the agent elsewhere is not (without the address both would share one key)."""
    from chalicelib.api.auth import create_agent

    create_agent("sam@example.com", "s3cret-passw0rd", "Sam")
    statuses = []
    for _ in range(10):
        answer = inbox.api_url("POST", "/api/auth/login", {"email": "sam@example.com", "password": "wrong"},
                               source_ip="203.0.113.66")
        statuses.append(answer["statusCode"])
        if answer["statusCode"] == 429:
            break
    assert statuses[-1] == 429 and set(statuses) <= {401, 429}
    elsewhere = inbox.api_url("POST", "/api/auth/login", {"email": "sam@example.com", "password": "s3cret-passw0rd"},
                              source_ip="198.51.100.20")
    assert elsewhere["statusCode"] == 200


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/no-such-route"), ("GET", "/nope"), ("GET", "/api/conversations/x/y/z/w"),
    ("GET", "/api//messages"), ("GET", "relative/path"), ("GET", ""),
])
def test_an_unknown_path_is_a_404_with_the_security_headers(inbox, method, path):
    answer = inbox.api_url(method, path)
    assert answer["statusCode"] == 404 and _json(answer)["Code"] == "NotFoundError"
    assert answer["headers"]["X-Content-Type-Options"] == "nosniff"
    assert answer["headers"]["Cache-Control"] == "no-store"


def test_a_method_the_route_lacks_is_a_405_naming_the_allowed_ones(inbox):
    answer = inbox.api_url("DELETE", "/api/conversations")
    rest = inbox.client.http.request("DELETE", "/api/conversations")
    assert answer["statusCode"] == rest.status_code == 405
    assert answer["headers"]["Allow"] == rest.headers["Allow"]


def test_a_trailing_slash_and_a_literal_segment_route_as_on_the_rest_api(inbox):
    token = inbox.login_admin()
    assert inbox.api_url("GET", "/api/me/", token=token)["statusCode"] == 200
    # `/api/conversations/{conversation_id}` must not swallow a literal route beside it
    search = inbox.api_url("GET", "/api/search?q=order", token=token)
    assert search["statusCode"] == 200 and "items" in _json(search)


def test_path_parameters_are_percent_decoded(inbox):
    """The admin screen encodes ids (encodeURIComponent); API Gateway hands them over decoded."""
    conversation = _conversation(inbox)
    quoted = "".join(f"%{b:02X}" for b in conversation["id"].encode())
    answer = inbox.api_url("GET", f"/api/conversations/{quoted}", token=inbox.login_admin())
    assert answer["statusCode"] == 200 and _json(answer)["id"] == conversation["id"]


@pytest.mark.parametrize("path", [
    "/static/../app.py", "/static/..%2F..%2Fapp.py", "/static/%2e%2e", "/static/%00", "/static/%C0%AF",
    "/api/conversations/..%2F..%2Fadmin", "/api/conversations/%ff%fe", "/api/conversations/%0d%0aX-Injected:%201",
    "/" + "a/" * 1500, "/api/conversations?" + "a=1&" * 5000, "/api/conversations?q=" + "x" * 9000,
    "/api/conversations?status=%ED%A0%80", "/api/conversations?limit=%zz&&&==&", "/api/conversations?status=%00&%00=%00",
])
def test_hostile_paths_and_query_strings_answer_4xx(inbox, path):
    answer = inbox.api_url("GET", path, token=inbox.login_admin())
    assert 400 <= answer["statusCode"] < 500, (path, answer["statusCode"], answer["body"][:200])
    assert "Traceback" not in answer["body"]


@responses.activate
def test_an_attachment_leaves_base64_encoded_with_its_type(inbox):
    """Binary answers (the media proxy) reach the function URL base64-encoded, byte for byte."""
    cdn = "https://scontent.xx.fbcdn.net/v/t1/photo.jpg?sig=abc"
    inbox.add_account("messenger", PAGE)
    item = {"sender": {"id": "psid_m1"}, "recipient": {"id": PAGE}, "timestamp": int(time.time() * 1000),
            "message": {"mid": "m_media_url", "attachments": [{"type": "image", "payload": {"url": cdn}}]}}
    assert inbox.post_meta(page_delivery(item)).status_code == 200
    inbox.process()
    [conversation] = inbox.conversations()
    [message] = inbox.messages(conversation["id"])
    responses.add(responses.GET, cdn, body=b"\xff\xd8\xff jpeg \x00 bytes", content_type="image/jpeg")
    answer = inbox.api_url("GET", f"/api/media/{conversation['id']}/{message['id']}/0", token=inbox.login_admin(),
                           headers={"Accept": "image/avif,image/webp,image/*,*/*;q=0.8"})
    assert answer["statusCode"] == 200 and answer["isBase64Encoded"] is True
    assert base64.b64decode(answer["body"]) == b"\xff\xd8\xff jpeg \x00 bytes"
    assert answer["headers"]["Content-Type"] == "image/jpeg"
