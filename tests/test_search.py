"""GET /api/search: contact names (by prefix), handles and message text, through the store's
index hook; a search costs a bounded number of DynamoDB requests whatever the table size."""
from __future__ import annotations

import json
import urllib.parse

import pytest

from tests.helpers import PHONE, whatsapp_delivery


@pytest.fixture
def people(inbox):
    inbox.add_account("whatsapp", PHONE)
    deliveries = [
        whatsapp_delivery("wamid.s1", "5511999990001", 1700000000, "My order 4711 never arrived", name="Zoë Souza"),
        whatsapp_delivery("wamid.s2", "5511999990002", 1700000100, "Refund for the blue jacket", name="Ana Lima"),
        whatsapp_delivery("wamid.s3", "5511999990003", 1700000200, "order status please", name="Ana Souza"),
    ]
    for delivery in deliveries:
        assert inbox.post_meta(delivery).status_code == 200
    inbox.process()
    return inbox


def _search(inbox, q, status=200, **params):
    query = urllib.parse.urlencode(dict(q=q, **params))
    response = inbox.client.http.get("/api/search?" + query, headers={"Authorization": "Bearer " + inbox.login_admin()})
    assert response.status_code == status, (q, response.status_code, response.body)
    return json.loads(response.body)


def _names(answer):
    return sorted(item["contact"]["display_name"] for item in answer["items"])


def test_names_by_prefix_text_by_word_accents_folded_terms_intersected(people):
    assert _names(_search(people, "ana")) == ["Ana Lima", "Ana Souza"]
    assert _names(_search(people, "sou")) == ["Ana Souza", "Zoë Souza"]
    assert _names(_search(people, "ZOE")) == ["Zoë Souza"]  # accents and case folded
    assert _names(_search(people, "ana souza")) == ["Ana Souza"]
    assert _names(_search(people, "order")) == ["Ana Souza", "Zoë Souza"]
    assert _names(_search(people, "4711")) == ["Zoë Souza"]
    assert _names(_search(people, "jacket refund")) == ["Ana Lima"]
    assert _search(people, "jacket souza")["items"] == []
    assert _search(people, "nothing-like-this")["items"] == []
    answer = _search(people, "order", limit="1")
    assert len(answer["items"]) == 1 and answer["items"][0]["contact"]["display_name"] == "Ana Souza"  # newest first
    row = _search(people, "4711")["items"][0]
    assert row["channel"] == "whatsapp" and row["id"].startswith("c_")


def test_a_follow_up_is_indexed_when_the_turn_ends_not_on_its_one_write(people):
    """A waiting customer's words are not written as they arrive (the follow-up keeps its single
    UpdateItem); the conversation is found by its latest message meanwhile, and by the index once
    the turn ends, when it no longer waits."""
    from chalicelib.inbox import store
    from chalicelib.models import SearchToken

    people.post_meta(whatsapp_delivery("wamid.s4", "5511999990002", 1700000300, "also the zipper broke", name="Ana Lima"))
    people.process()
    assert SearchToken.count("t#zipper") == 0
    [conversation] = _search(people, "zipper")["items"]  # waiting: its latest message's preview
    assert _names(_search(people, "lima zipper")) == ["Ana Lima"]  # a name from the index, a word from the preview
    store.set_status(conversation["id"], "resolved", "agent:test")  # the wait ends: the turn is indexed
    assert SearchToken.count("t#zipper") == 1 and SearchToken.count("t#jacket") == 1
    assert _names(_search(people, "zipper")) == ["Ana Lima"]
    assert _names(_search(people, "jacket refund")) == ["Ana Lima"]


def test_a_brand_new_unanswered_conversation_is_found_by_a_word_of_its_message(people):
    """Issue 21: a new conversation's words wait for its first turn's end (8 of its 19 write units)
    but search finds it at once, from the waiting conversations of the caller's teams; an agent of
    another team does not."""
    from chalicelib.models import SearchToken

    assert SearchToken.count("t#4711") == 0 and SearchToken.count("t#order") == 0  # names only
    assert _names(_search(people, "4711")) == ["Zoë Souza"]
    assert _names(_search(people, "never arrived")) == ["Zoë Souza"]
    assert _names(_search(people, "order")) == ["Ana Souza", "Zoë Souza"]
    assert _search(people, "order jacket")["items"] == []
    response = people.client.http.get("/api/search?q=4711", headers={"Authorization": "Bearer " + _sales_agent(people)})
    assert response.status_code == 200 and json.loads(response.body)["items"] == []


def test_search_costs_the_same_number_of_requests_at_any_size(people, monkeypatch):
    from pynamodb.connection.base import Connection

    from chalicelib.inbox import search

    calls = []
    original = Connection.dispatch

    def counting(self, operation, kwargs):
        calls.append(operation)
        return original(self, operation, kwargs)

    monkeypatch.setattr(Connection, "dispatch", counting)
    _search(people, "order souza")
    assert "Scan" not in calls
    searched_small = calls.count("Query") + calls.count("BatchGetItem")
    for i in range(400):  # a big index: many conversations share the tokens
        search.write(f"c_filler_{i:04d}", ["order", "souza"], 1600000000000 + i)
    calls.clear()
    answer = _search(people, "order souza")
    assert "Scan" not in calls
    # two terms, the admin's teams, the default team's waiting conversations, the page
    assert calls.count("Query") + calls.count("BatchGetItem") == searched_small <= 5
    assert _names(answer) == ["Ana Souza", "Zoë Souza"]  # the fillers have no conversation rows


@pytest.mark.parametrize("q", ["", " ", "x" * 201, "!!! ???", "a", "\x00abc", "a\x7fb"])
def test_hostile_queries_are_400(people, q):
    answer = _search(people, q, status=400)
    assert set(answer) == {"Code", "Message"}


@pytest.mark.parametrize("limit", ["0", "51", "abc", "-1", "1.5"])
def test_bad_limits_are_400(people, limit):
    _search(people, "ana", status=400, limit=limit)


def test_unicode_and_many_terms(people):
    assert _search(people, "😀 ana")["items"]  # the emoji is no word; the rest is searched
    answer = _search(people, "ana souza order status please extra words")
    assert len(answer["terms"]) == 3
    response = people.client.http.get("/api/search?q=ana")
    assert response.status_code == 401


def test_other_teams_conversations_are_left_out(people):
    response = people.client.http.get("/api/search?q=ana", headers={"Authorization": "Bearer " + _sales_agent(people)})
    assert response.status_code == 200 and json.loads(response.body)["items"] == []


def _sales_agent(inbox) -> str:
    """The access token of an agent of another team ("sales")."""
    from chalicelib.api.auth import create_agent
    from chalicelib.models import AgentRouting

    agent = create_agent("searcher@example.com", "agent-password-123", "S")
    AgentRouting(agent.agent_id, teams=["sales"]).save()
    return json.loads(inbox.client.http.post("/api/auth/login", body=json.dumps(
        {"email": "searcher@example.com", "password": "agent-password-123"}),
        headers={"Content-Type": "application/json"}).body)["token"]


def test_tokens_are_normalised_and_capped():
    from chalicelib.inbox import search

    assert search.words("Zoë ZOE zoe") == ["zoe"]
    assert search.name_tokens("Ana")[:2] == ["an", "ana"]
    assert "souza" in search.name_tokens(None, "@ana_souza") and "ana_souza" in search.name_tokens(None, "@ana_souza")
    assert len(search.text_tokens(["word%d" % i for i in range(100)])) == search.MAX_WORDS
    assert len(search.name_tokens(" ".join("name%d" % i for i in range(50)))) == search.MAX_NAME_TOKENS
    assert search.text_tokens(["the and you hi"]) == []
    assert search.words("x" * 40) == []  # longer than a word we index


# --- echoes: our replies are indexed once, messages sent from the platform's app from their echo --


@pytest.fixture
def thread(inbox):
    """A Messenger conversation whose customer waits for a reply (tests/test_outbox's helpers)."""
    import time

    from tests.helpers import PAGE, messenger, page_delivery
    from tests.test_outbox import PSID

    inbox.add_account("messenger", PAGE, "Demo page")
    inbox.post_meta(page_delivery(messenger("m-in-1", PSID, int(time.time() * 1000) - 60_000, "Where is my order?")))
    inbox.process()
    [conversation] = inbox.conversations()
    inbox.conversation_id = conversation["id"]
    return inbox


def _token_items() -> int:
    """Index entries in moto's search-tokens table."""
    from chalicelib.models import SearchToken

    return sum(1 for _ in SearchToken.scan())


def _found(inbox, q):
    return [item["id"] for item in _search(inbox, q)["items"]]


@pytest.mark.parametrize("landing", ["after the send's answer", "before it, by text", "before it, by metadata"])
def test_the_echo_of_our_reply_writes_no_search_token_and_the_reply_is_found(thread, landing):
    """The reply's words were indexed when it was stored (it ended the customer's turn); its echo,
    whichever way it lands on the reply, writes no index entry again."""
    from chalicelib.channels.base import SendResult
    from tests.test_outbox import FakeAdapter, _drain_outbox, _echo, _reply, _use

    text = "Your parcel leaves Lisbon today"
    counted = {}

    def send(message):
        if landing != "after the send's answer":
            counted["before"] = _token_items()
            _echo(thread, "mid.echo-1", message.text,
                  metadata=message.outbound_id if landing.endswith("metadata") else None)
            counted["after"] = _token_items()
        return SendResult("mid.echo-1")

    _use(FakeAdapter(send))
    _reply(thread, text)
    assert _found(thread, "lisbon") == [thread.conversation_id]  # indexed with the turn it ended
    _drain_outbox(thread)
    if landing == "after the send's answer":
        counted["before"] = _token_items()
        _echo(thread, "mid.echo-1", text)
        counted["after"] = _token_items()
    assert counted["before"] > 0 and counted["after"] == counted["before"]
    assert [m["direction"] for m in thread.messages(thread.conversation_id)] == ["in", "out"]  # one reply
    assert _found(thread, "parcel lisbon") == [thread.conversation_id]
    assert _found(thread, "order") == [thread.conversation_id]


@pytest.mark.parametrize("waiting", [True, False], ids=["ends the turn", "nothing due"])
def test_a_message_sent_from_the_platforms_app_is_found_from_its_echo(thread, waiting):
    """Sent from the Page inbox, not from socialinbox: its echo is all we see of it, so the echo
    is indexed, whether it answers the customer or comes when nothing is due."""
    from tests.test_outbox import _echo

    if not waiting:
        _echo(thread, "mid.app-0", "Answered from the phone app")
        assert _found(thread, "phone") == [thread.conversation_id]
    before = _token_items()
    _echo(thread, "mid.app-1", "The warranty covers the zipper")
    assert _token_items() > before
    assert _found(thread, "warranty zipper") == [thread.conversation_id]
    assert [m["direction"] for m in thread.messages(thread.conversation_id)] == ["in"] + ["out"] * (1 if waiting else 2)


def test_a_conversation_the_page_starts_from_its_app_is_found_by_its_text(inbox):
    import time

    from tests.helpers import PAGE, messenger, page_delivery

    inbox.add_account("messenger", PAGE, "Demo page")
    inbox.post_meta(page_delivery(messenger("mid.first", "psid-new", int(time.time() * 1000),
                                            "Your voucher is ready", echo=True)))
    inbox.process()
    [conversation] = inbox.conversations()
    assert _found(inbox, "voucher") == [conversation["id"]]


def test_our_reply_that_ends_no_turn_is_found(thread):
    """A second reply (nothing is due any more): no turn end will index it, so it is indexed as it
    is stored; the first was indexed with the turn it ended."""
    from chalicelib.channels.base import SendResult
    from tests.test_outbox import FakeAdapter, _drain_outbox, _echo, _reply, _use

    _use(FakeAdapter(SendResult("mid.r-1"), SendResult("mid.r-2")))
    _reply(thread, "Checking with the warehouse", client_id="c-1")
    _reply(thread, "Found it: the courier has the invoice", client_id="c-2")
    _drain_outbox(thread)
    before = _token_items()
    _echo(thread, "mid.r-2", "Found it: the courier has the invoice")  # a duplicate now
    assert _token_items() == before
    assert _found(thread, "warehouse") == [thread.conversation_id]
    assert _found(thread, "courier invoice") == [thread.conversation_id]


def test_a_word_is_written_once_per_turn_and_the_telling_words_first():
    """Issue 21: realistic messages hold more words than a batch writes (MAX_WORDS, one WRU each):
    numbers and long words are kept; at the turn's end the words its first message already wrote
    are not written again."""
    from chalicelib.inbox import search

    long_text = ("hi there my order 4471 arrived this morning but the box was damaged and two of the "
                 "glasses are broken could you please check the parcel tracking and refund")
    tokens = search.text_tokens([long_text])
    assert len(tokens) == search.MAX_WORDS and tokens[0] == "4471" and "tracking" in tokens and "two" not in tokens
    assert search.text_tokens(["the parcel arrived broken"], already=["parcel", "broken"]) == ["arrived"]


def test_a_returning_customers_words_are_written_once_with_their_turn_when_it_ends(inbox):
    """Issue 21: a customer message that starts a later turn is indexed with the rest of that turn
    (one batch when the turn ends), not once on arrival and again at the end; a new conversation's
    words are found at once."""
    from chalicelib.channels.base import ContactRef, MessageEvent
    from chalicelib.inbox import search, store
    from chalicelib.models import SearchToken

    inbox.add_account("messenger", "1234567890")

    def message(mid, at, text, direction="in"):
        return MessageEvent(channel="messenger", account_id="1234567890", platform_message_id=mid, thread_key="u9",
                            contact=ContactRef("u9"), direction=direction, sent_at_ms=at, text=text)

    t0 = 1_700_000_000_000
    _, (cid, _) = store.record_message(message("m1", t0, "Where is my parcel 4471?"))
    assert SearchToken.count("t#4471") == 0 and search.search("4471", 10) == []  # written when the turn ends
    assert [c.conversation_id for c in search.search("4471", 10, teams=["default"])] == [cid]  # found meanwhile
    store.record_message(message("r1", t0 + 60_000, "It left the depot today.", "out"))
    assert [c.conversation_id for c in search.search("parcel 4471 depot", 10)] == [cid]
    entries = SearchToken.count()
    store.record_message(message("m2", t0 + 120_000, "The zipper of the jacket broke again"))
    assert SearchToken.count() == entries and search.search("zipper", 10) == []
    assert [c.conversation_id for c in search.search("zipper", 10, teams=["default"])] == [cid]
    store.record_message(message("r2", t0 + 180_000, "Sorry! A new jacket is on its way.", "out"))
    assert [c.conversation_id for c in search.search("zipper jacket", 10)] == [cid]
    assert SearchToken.count("t#jacket") == 1  # in both messages of the turn, written once


def test_a_waiting_conversation_set_pending_with_its_clock_paused_is_found_by_its_words(people):
    """Under a policy that pauses the clock while pending, the wait outlives the open queue where
    search looks for unindexed turns: its words are indexed when it leaves the queue."""
    from chalicelib.inbox import store
    from chalicelib.models import SearchToken
    from tests.test_sla_policies import create

    create(people, channels=["whatsapp"], pause_on=["pending"])
    [conversation] = _search(people, "4711")["items"]
    store.set_status(conversation["id"], "pending", "agent:test")
    assert store.get(conversation["id"])["awaiting_reply_since"]  # still waiting, clock paused
    assert SearchToken.count("t#4711") == 1
    assert [c["id"] for c in _search(people, "4711")["items"]] == [conversation["id"]]
