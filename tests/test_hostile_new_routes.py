"""This wave's routes (listening, reports and the attention report, staffing, templates, attachments, post previews, teams)
under hostile input, as an admin (who passes every role check, so the input itself is what is
tested): malformed and wrong-typed bodies, lone surrogates, NUL, oversized, deep nesting,
extreme dates, junk path ids and query values. Each answers 4xx or a success, never 5xx."""
from __future__ import annotations

import pytest

from tests.helpers import PAGE, messenger, page_delivery

ROUTES = [
    ("POST", "/api/conversations/{cid}/attachments?filename=a.png"),
    ("GET", "/api/conversations/{cid}/contact/picture"),
    ("PATCH", "/api/conversations/{cid}/messages/{mid}"),
    ("GET", "/api/conversations/{cid}/post"),
    ("GET", "/api/conversations/{cid}/post/picture"),
    ("GET", "/api/conversations/{cid}/templates"),
    ("GET", "/api/listening/corrections"),
    ("GET", "/api/listening/ig-hashtags"),
    ("GET", "/api/listening/items"),
    ("POST", "/api/listening/items/{junk}/convert"),
    ("POST", "/api/listening/items/{junk}/dismiss"),
    ("GET", "/api/listening/priority-rules"),
    ("PUT", "/api/listening/priority-rules"),
    ("GET", "/api/listening/topics"),
    ("POST", "/api/listening/topics"),
    ("DELETE", "/api/listening/topics/{junk}"),
    ("PUT", "/api/listening/topics/{junk}"),
    ("GET", "/api/listening/x-budget"),
    ("PUT", "/api/listening/x-budget"),
    ("GET", "/api/reports/conversations"),
    ("GET", "/api/reports/attention"),
    ("GET", "/api/reports/attention?format=csv&channel=telegram"),
    ("GET", "/api/reports/heatmap"),
    ("GET", "/api/reports/intervals"),
    ("GET", "/api/reports/summary"),
    ("GET", "/api/reports/topics"),
    ("POST", "/api/sla-policies"),
    ("GET", "/api/reports/timeseries?metric=inbound&group_by=week&tag=%00&priority=%ED%A0%80&account=" + "9" * 300),
    ("GET", "/api/reports/timeseries?metric=%00&group_by=%00&channel=x&account=%0A"),
    ("POST", "/api/staffing/calculate"),
    ("GET", "/api/staffing/handle-time"),
    ("GET", "/api/staffing/plan"),
    ("GET", "/api/staffing/settings"),
    ("PUT", "/api/staffing/settings"),
    ("GET", "/api/teams"),
]
BODIES = [b"", b"[]", b'"text"', b"null", b"{", b'{"name": "\\ud800"}', b'{"name": "a\\u0000b"}',
          b'{"sentiment": 5}', b'{"rules": [{"min_followers": -1e308}]}', b'{"monthly_posts": true}',
          b'{"include": ["\\u001b[31m"]}',
          b'{"name": "p", "first_response_seconds": 60, "next_response_seconds": 60, "topics": ["\\ud800"]}',
          b'{"name": "p", "first_response_seconds": 60, "next_response_seconds": 60, "sentiments": [{}], "topics": [[]]}',
          b"[" * 3000, b'{"x": "' + b"y" * 200_000 + b'"}']
QUERIES = ["", "?from=9999-12-31T23:59:59-14:00&to=0001-01-01T00:00:00%2B14:00&tz=UTC",
           "?from=2026-01-01&to=2026-01-02&tz=%ED%A0%80", "?cursor=%00&limit=-1&source=%C0%AF",
           "?group=%00&days=99999999999999999999&team=a%0Ab", "?sentiment=%F0%9F%98%80&topic=" + "x" * 3000,
           "?from=2026-01-01&to=2026-01-02&cursor=eyJkIjpbXX0&filter=%00&weekday=-1&hour=99&tag=%ED%A0%80&limit=1e9",
           "?from=2026-01-01&to=2026-01-02&compare=%00,%ED%A0%80&format=csv", "?compare=" + ",".join(["a"] * 5000),
           "?from=2026-01-01&to=2026-01-02&tz=UTC&format=%00&metric=%ED%A0%80",
           "?from=1999-12-31T10:00:00%2B14:00&to=2026-01-02&tz=Pacific/Kiritimati&format=csv&compare=previous"]
JUNK = ["x" * 500, "%00", "%ED%A0%80", "c_nobody", ".."]


@pytest.fixture
def admin_and_conversation(inbox):
    inbox.add_account("messenger", PAGE)
    assert inbox.post_meta(page_delivery(messenger("m_h1", "psid_h1", 1_900_000_000_000, "hi"))).status_code == 200
    inbox.process()
    [conversation] = inbox.conversations()
    [message] = inbox.messages(conversation["id"])
    return inbox.login_admin(), conversation["id"], message["id"]


@pytest.mark.parametrize("method, template", ROUTES)
def test_hostile_input_never_answers_5xx(inbox, admin_and_conversation, method, template):
    admin, cid, mid = admin_and_conversation
    headers = {"Authorization": "Bearer " + admin, "Content-Type": "application/json"}
    paths = {template.format(cid=cid, mid=mid, junk="t_nobody")}
    paths |= {template.format(cid=junk, mid=junk, junk=junk) for junk in JUNK if "{" in template}
    for path in paths:
        for query in QUERIES:
            url = path + (("&" + query[1:]) if "?" in path and query else query)
            for body in (BODIES if method != "GET" else [b""]):
                answer = inbox.client.http.request(method, url, headers=headers, body=body)
                assert answer.status_code < 500, (method, url[:120], body[:60], answer.status_code, answer.body[:300])
