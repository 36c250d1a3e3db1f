"""Listening, part 3: the X recent search poller (since_id, next_token drained before since_id
moves, x-rate-limit-* honoured, the admin's monthly budget of post reads never exceeded), against
`responses` and the loopback sandbox's seeded search."""
from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from chalicelib.listening import x_search

SEARCH = "https://api.x.com/2/tweets/search/recent"
OURS = "4337869213"


@pytest.fixture(autouse=True)
def _real_x(monkeypatch):
    monkeypatch.delenv("X_API_BASE_URL", raising=False)




def setup(inbox, budget=1000, **topic):
    inbox.add_account("x", OURS)
    body = dict({"name": "Refunds", "include": ["refund", "#acmefail"], "languages": ["en"],
                 "sources": ["x_search"]}, **topic)
    assert inbox.call("post", "/api/listening/topics", body)[0] == 201
    assert inbox.call("put", "/api/listening/x-budget", {"monthly_posts": budget})[0] == 200


def post(pid, text, author="u1", mention=False):
    return {"id": pid, "text": text, "author_id": author, "lang": "en", "created_at": "2026-12-01T10:00:00.000Z",
            "entities": {"mentions": [{"username": "acme", "id": OURS}] if mention else []}}


def page(posts, next_token=None, remaining="440"):
    meta = {"result_count": len(posts)}
    if posts:
        meta.update(newest_id=posts[0]["id"], oldest_id=posts[-1]["id"])
    if next_token:
        meta["next_token"] = next_token
    body = {"meta": meta}
    if posts:
        body.update(data=posts, includes={"users": [{"id": "u1", "name": "Lea", "username": "lea",
                                                     "public_metrics": {"followers_count": 1200}}]})
    return {"json": body, "headers": {"x-rate-limit-remaining": remaining, "x-rate-limit-reset": "1900000000"}}


def params(call_):
    return {k: v[0] for k, v in parse_qs(urlparse(call_.request.url).query).items()}


def test_a_topic_compiles_to_an_x_query_and_a_too_long_one_is_refused(inbox):
    assert x_search.x_query(["refund", "money back", "#AcmeFail", "@acme"], ["no refund needed"], ["en", "es"]) == \
        '("refund" OR "money back" OR #AcmeFail OR @acme) -"no refund needed" (lang:en OR lang:es) -is:retweet'
    assert x_search.x_query(["OR"], [], []) == '"or" -is:retweet'  # a term is never an operator
    long = {"name": "Long", "include": [f"word{i} " * 4 for i in range(40)], "sources": ["x_search"]}
    status, body = inbox.call("post", "/api/listening/topics", long)
    assert status == 400 and "X accepts 512" in body["Message"]
    assert inbox.call("post", "/api/listening/topics", dict(long, sources=["messenger"]))[0] == 201


def test_found_posts_become_items_and_since_id_moves_only_after_the_drain(inbox):
    setup(inbox)
    answers = iter([page([post("300", "I want a refund now, awful"), post("299", "@acme refund please", mention=True)],
                         next_token="p2"),
                    page([post("298", "refund refused again #acmefail")]),
                    page([post("301", "one more refund story")]),
                    page([])])
    with responses.RequestsMock() as x:
        x.add_callback("GET", SEARCH, callback=lambda request: _answer(next(answers)))
        assert x_search.poll()["posts"] == 3
        first, second = params(x.calls[0]), params(x.calls[1])
        assert "since_id" not in first and second["next_token"] == "p2" and "since_id" not in second
        assert first["query"] == '("refund" OR #acmefail) lang:en -is:retweet'
        assert x.calls[0].request.headers["Authorization"] == "Bearer dev_x_bearer_token"
        assert x_search.poll()["posts"] == 1
        assert params(x.calls[2])["since_id"] == "300" and "next_token" not in params(x.calls[2])
        x_search.poll()
        assert params(x.calls[3])["since_id"] == "301"
    found = inbox.call("get", "/api/listening/items?source=x_search")[1]["items"]
    assert [i["platform_post_id"] for i in found] and len(found) == 4
    by_id = {i["platform_post_id"]: i for i in found}
    assert by_id["299"]["replyable"] is True and by_id["299"]["not_replyable_reason"] is None
    assert by_id["300"]["replyable"] is False and "mention" in by_id["300"]["not_replyable_reason"]
    assert by_id["300"]["sentiment"]["label"] == "negative" and by_id["300"]["topics"] == ["Refunds"]
    assert by_id["300"]["author"] == {"name": "Lea", "handle": "lea", "followers": 1200}
    assert by_id["300"]["url"] == "https://x.com/i/web/status/300"


def test_the_monthly_budget_is_never_exceeded_and_unused_reads_are_given_back(inbox):
    setup(inbox, budget=25)
    answers = iter([page([post(str(400 - i), "refund") for i in range(3)], next_token="more"),
                    page([post(str(390 - i), "refund") for i in range(12)], next_token="more2"),
                    page([post(str(370 - i), "refund") for i in range(10)], next_token="more3")])
    with responses.RequestsMock() as x:
        x.add_callback("GET", SEARCH, callback=lambda request: _answer(next(answers)))
        stats = x_search.poll()
        # each request asks for at most what is left; X bills what it returns (here 3, 12, 10)
        assert [params(c)["max_results"] for c in x.calls] == ["25", "22", "10"]
        assert stats["stopped"] == "budget_exhausted" and stats["posts"] == 25
    status, budget = inbox.call("get", "/api/listening/x-budget")
    assert status == 200 and budget["used"] == 25 and budget["remaining"] == 0 and budget["exhausted"] is True
    with responses.RequestsMock() as x:  # nothing left: no request at all
        assert x_search.poll()["stopped"] == "budget_exhausted" and len(x.calls) == 0
    # The admin raises the budget: polling resumes where the drain stopped.
    assert inbox.call("put", "/api/listening/x-budget", {"monthly_posts": 40})[1]["remaining"] == 15
    with responses.RequestsMock() as x:
        x.add("GET", SEARCH, **page([post("360", "refund")]))
        x_search.poll()
        assert params(x.calls[0])["next_token"] == "more3" and params(x.calls[0])["max_results"] == "15"
    assert inbox.call("get", "/api/listening/x-budget")[1]["used"] == 26
    for bad in ({"monthly_posts": -1}, {"monthly_posts": "10"}, {"monthly_posts": 3_000_001}, {}, {"x": 1}):
        assert inbox.call("put", "/api/listening/x-budget", bad)[0] == 400


def test_no_budget_no_polling(inbox):
    setup(inbox, budget=0)
    with responses.RequestsMock() as x:
        assert x_search.poll()["stopped"] == "budget_exhausted" and len(x.calls) == 0


def test_rate_limits_and_failures_resume_from_where_they_stopped(inbox):
    from chalicelib.runtime import runtime

    setup(inbox)
    with responses.RequestsMock() as x:
        x.add("GET", SEARCH, **page([post("500", "refund")], next_token="n1", remaining="0"))
        assert x_search.poll()["stopped"] == "rate_limited"
        assert len(x.calls) == 1  # remaining 0: not even the next page
    with responses.RequestsMock() as x:  # before x-rate-limit-reset: no request
        assert x_search.poll()["stopped"] == "rate_limited" and len(x.calls) == 0
    runtime.use_clock(lambda: 1_900_000_001)  # after the reset
    with responses.RequestsMock() as x:
        x.add("GET", SEARCH, json={"title": "Service Unavailable"}, status=503)
        x_search.poll()
        assert params(x.calls[0])["next_token"] == "n1"
    with responses.RequestsMock() as x:  # the failure changed nothing: the same page again
        x.add("GET", SEARCH, json={"title": "Too Many Requests"}, status=429,
              headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": "1900000100"})
        assert x_search.poll()["stopped"] == "rate_limited"
        assert params(x.calls[0])["next_token"] == "n1"
    # The clock is now in another month: its budget saw only the two failed requests, which cost nothing.
    assert inbox.call("get", "/api/listening/x-budget")[1]["used"] == 0
    runtime.use_clock(lambda: 1_900_000_200)
    with responses.RequestsMock() as x:
        x.add("GET", SEARCH, **page([post("499", "refund")]))
        x_search.poll()
        assert params(x.calls[0])["next_token"] == "n1"
    with responses.RequestsMock() as x:
        x.add("GET", SEARCH, **page([]))
        x_search.poll()
        assert params(x.calls[0])["since_id"] == "500"


def test_the_sandbox_serves_seeded_search_results(inbox, monkeypatch):
    from chalicelib.local import sandbox

    server, env = sandbox.start(None)
    try:
        monkeypatch.setenv("X_API_BASE_URL", env["X_API_BASE_URL"])
        inbox.add_account("x", "1520000000000000001")  # make run's demo X account (the seeded posts mention it)
        setup(inbox, include=["refund", "remboursement", "reembolso", "@acmecoffee"], languages=[])
        stats = x_search.poll()
        assert stats["posts"] >= 10 and stats["stopped"] is None
        assert x_search.poll()["posts"] == 0  # since_id: nothing new
    finally:
        server.close()
    found = inbox.call("get", "/api/listening/items?source=x_search&limit=100")[1]["items"]
    languages = {i["sentiment"]["language"] for i in found}
    assert {"en", "es", "fr"} <= languages
    assert any(i["sentiment"]["label"] == "negative" for i in found)
    assert any(i["replyable"] for i in found) and any(not i["replyable"] for i in found)


def _answer(spec):
    return spec.get("status", 200), spec.get("headers", {}), json.dumps(spec["json"])


def test_make_run_seeds_demo_topics_and_a_budget_once(inbox):
    from chalicelib.local.seed import DEMO_X_BUDGET, seed

    inbox.login_admin()  # before the seed creates its own demo admin
    seed()
    names = [t["name"] for t in inbox.call("get", "/api/listening/topics")[1]["items"]]
    assert "Refunds" in names and inbox.call("get", "/api/listening/x-budget")[1]["monthly_posts"] == DEMO_X_BUDGET
    inbox.call("put", "/api/listening/x-budget", {"monthly_posts": 0})
    seed()  # a restart keeps what an admin changed
    assert [t["name"] for t in inbox.call("get", "/api/listening/topics")[1]["items"]] == names
    assert inbox.call("get", "/api/listening/x-budget")[1]["monthly_posts"] == 0
