"""The workspace speaks in names (issue 22), in a real headless Chromium: conversations held by
other agents, comment threads of every platform, their event logs and the alerts show people by
name and never an agent id, a post URN or a numeric post id; the assign picker works by keyboard
and by mouse, offers an agent only their own teams' agents and says why the API refused."""
from __future__ import annotations

import json
import re
import time
from typing import Any, Dict, List

from tests.helpers import signed_in_agent
from tests.test_web_inbox import browser, needs_chromium, served  # noqa: F401

pytestmark = needs_chromium
ROWS = "document.querySelectorAll('#conversations .row')"
AGENT_ID = re.compile(r"\ba_[0-9a-f]{8,}")
# comment threads of every platform, the post each hangs under as the platform identifies it
POSTS = {"facebook": "101234567890123_998877665544332", "instagram": "17895695668004550",
         "linkedin": "urn:li:activity:7100000000000000002", "x": "1790000000000000000"}
KINDS = {"facebook": "comment", "instagram": "comment", "linkedin": "comment", "x": "mention"}


def _record(channel: str, user: str, text: str, kind: str = "dm", subject: Any = None, name: Any = None) -> str:
    from chalicelib.channels.base import ContactRef, MessageEvent
    from chalicelib.inbox import store

    event = MessageEvent(channel=channel, account_id=f"acct-{channel}", platform_message_id=f"m-{channel}-{user}",
                         thread_key=f"{subject or ''}:{user}", contact=ContactRef(user, name), direction="in",
                         sent_at_ms=int(time.time() * 1000) - 60_000, text=text, thread_kind=kind, subject=subject,
                         raw={"id": user})
    return store.record_message(event)[1][0]


def _sign_in(served: Any, page: Any, token: str) -> None:
    page.goto(served)
    page.js(f"sessionStorage.setItem('socialinbox.token', {json.dumps(token)})")
    page.page.reload()
    page.wait_for("!document.getElementById('app').hidden")


def _forbidden(text: str) -> List[str]:
    """What the page shows that it never may: agent ids, post URNs, the posts' platform ids."""
    found = AGENT_ID.findall(text) + re.findall(r"urn:li:\S+", text)
    return found + [post for post in POSTS.values() if post in text or post.split("_")[-1] in text]


def _shown(page: Any) -> str:
    return page.js("document.body.innerText")


def test_people_and_posts_are_named_in_the_list_thread_event_log_and_alerts(inbox, served, browser):
    from chalicelib.api import people
    from chalicelib.inbox import store
    from chalicelib.routing import engine
    from chalicelib.sla import escalation

    admin = inbox.login_admin()
    kim = signed_in_agent("kim@example.com", "Kim Care", "agent", ["default"])
    lee = signed_in_agent("lee@example.com", "Lee <b>Sharp</b>", "agent", ["default"])
    dee = signed_in_agent("dee@example.com", "Dee Gone", "agent", ["default"])
    dm = _record("messenger", "5551", "Where is my parcel?", name="Ana Souza")
    store.assign(dm, kim["id"], engine.ACTOR)  # routing gave it to Kim
    threads = {channel: _record(channel, f"77{n}", f"Comment on {channel}", KINDS[channel], post, f"Fan {n}")
               for n, (channel, post) in enumerate(POSTS.items())}
    store.assign(threads["linkedin"], lee["id"], f"agent:{kim['id']}")  # Kim handed it to Lee
    store.assign(threads["x"], dee["id"], "flow")
    store.set_status(threads["x"], "resolved", f"agent:{dee['id']}")
    people.update(people.find(dee["id"]), {"active": False}, people.find(kim["id"]))
    escalation.escalate("breach", store.get(dm))  # the admin (a supervisor role) is alerted

    page = browser
    _sign_in(served, page, admin)
    page.js("document.querySelector('[data-view=all]').click()")
    page.wait_for(f"{ROWS}.length === 5")
    rows = page.js(f"[...{ROWS}].map(r => r.querySelector('.owner').textContent)")
    assert sorted(rows) == ["Dee Gone (deactivated)", "Kim Care", "Lee <b>Sharp</b>", "Unassigned", "Unassigned"]
    assert page.js("document.querySelectorAll('#conversations b').length") == 0  # a name is text
    badges = page.js(f"[...{ROWS}].map(r => r.querySelector('.badge.ch').textContent)")
    assert sorted(badges) == ["Facebook", "Instagram", "LinkedIn", "Messenger", "X"]
    seen = [_shown(page)]

    def open_thread(text: str) -> str:
        page.js(f"[...{ROWS}].find(r => r.textContent.includes({json.dumps(text)})).click()")
        page.wait_for(f"!document.getElementById('composer').hidden && "
                      f"document.querySelector('#thread-head').textContent.includes({json.dumps(text)})")
        page.wait_for("document.querySelectorAll('#messages .msg').length > 0")
        shown = _shown(page)
        seen.append(shown)
        return shown

    open_thread("Ana Souza")
    page.wait_for("[...document.querySelectorAll('#messages .event')].some(e => e.textContent === "
                  "'Assigned to Kim Care by routing')")
    assert page.js("document.querySelector('#thread-head .owner').textContent") == "Assigned to Kim Care"
    linkedin = open_thread("Fan 2")
    page.wait_for("[...document.querySelectorAll('#messages .event')].some(e => e.textContent === "
                  "'Assigned to Lee <b>Sharp</b> by Kim Care')")
    assert "Comment on a post · Open the post on LinkedIn ↗" in linkedin
    link = page.js("const a = document.querySelector('#thread-head .subject a'); [a.href, a.rel, a.target]")
    assert link == ["https://www.linkedin.com/feed/update/urn:li:activity:7100000000000000002/",
                    "noopener noreferrer", "_blank"]
    assert "Open the post on Facebook ↗" in open_thread("Fan 0")
    assert page.js("document.querySelector('#thread-head .subject a').href") == \
        "https://www.facebook.com/101234567890123_998877665544332"
    assert open_thread("Fan 1").count("Comment on a post") == 1  # Instagram: no address without a look-up
    open_thread("Fan 3")
    page.wait_for("[...document.querySelectorAll('#messages .event')].some(e => e.textContent === "
                  "'Assigned to Dee Gone (deactivated) by the deadline flow')")
    assert "Mention in a post" in _shown(page)
    seen.append(_shown(page))

    page.js("document.getElementById('notif').click()")
    page.wait_for("document.querySelectorAll('#notif-list button').length === 1")
    alert = page.js("document.querySelector('#notif-list button').textContent")
    assert alert.startswith("Deadline breached: Ana Souza (Messenger) · assigned to Kim Care · ")
    seen.append(_shown(page))
    assert [found for text in seen for found in _forbidden(text)] == []
    assert page.js("window.__violations") == []


def _options(page: Any) -> List[str]:
    return page.js("[...document.querySelectorAll('.assign-option .assign-name')].map(o => o.textContent)")


def test_the_assign_picker_by_keyboard_and_mouse_offers_only_the_agents_team_and_shows_refusals(
        inbox, served, browser):
    from chalicelib.inbox import store

    kim = signed_in_agent("kim@example.com", "Kim Care", "agent", ["default"])
    lee = signed_in_agent("lee@example.com", "Lee Sharp", "agent", ["default"])
    signed_in_agent("bob@example.com", "Bob Billing", "agent", ["billing"])
    cid = _record("messenger", "5552", "Can someone help?", name="Ana Souza")
    store.assign(_record("messenger", "5553", "Another one", name="Jo"), lee["id"], "flow")
    page = browser
    _sign_in(served, page, kim["token"])
    page.wait_for(f"[...{ROWS}].some(r => r.textContent.includes('Ana Souza'))")
    page.js(f"[...{ROWS}].find(r => r.textContent.includes('Ana Souza')).click()")
    page.wait_for("!document.getElementById('composer').hidden")

    # keyboard: a opens it, typing filters, arrows move, Enter assigns
    page.js("document.activeElement.blur()")
    page.page.keyboard.press("a")
    page.wait_for("document.activeElement.id === 'assign-q' && document.querySelectorAll('.assign-option').length === 2")
    assert _options(page) == ["You (Kim Care)", "Lee Sharp"]  # never Bob: another team
    lee_option = page.js("[...document.querySelectorAll('.assign-option')][1].textContent")
    assert "1/10" in lee_option and "offline" in lee_option and "default" in lee_option  # load / capacity, team
    page.page.keyboard.type("bob")
    page.wait_for("document.getElementById('assign-note').textContent === 'Nobody in your teams matches “bob”.'")
    assert _options(page) == []
    page.page.keyboard.press("Control+a")
    page.page.keyboard.type("e")  # both match
    page.wait_for("document.querySelectorAll('.assign-option').length === 2")
    page.page.keyboard.press("ArrowDown")
    assert page.js("document.querySelector('.assign-option[aria-selected=true] .assign-name').textContent") == "Lee Sharp"
    page.page.keyboard.press("ArrowDown")
    page.page.keyboard.press("ArrowUp")
    page.page.keyboard.press("Enter")
    page.wait_for("document.querySelector('#thread-head .owner').textContent === 'Assigned to Lee Sharp'")
    assert page.js("document.getElementById('assign-picker').hidden") is True
    assert store.get(cid)["assignee"] == lee["id"]
    page.wait_for("[...document.querySelectorAll('#messages .event')].some(e => e.textContent === "
                  "'Assigned to Lee Sharp by you')")

    # the API refuses: the picker stays open and says why, in the API's words
    def refuse(route: Any) -> None:
        if route.request.method == "PATCH":
            route.fulfill(status=403, content_type="application/json",
                          body=json.dumps({"Code": "ForbiddenError", "Message": "Lee Sharp is at capacity; ask a lead"}))
        else:
            route.continue_()

    page.page.route(re.compile(r".*/api/conversations/[^/?]+$"), refuse)
    page.js("document.getElementById('act-assign').click()")
    page.wait_for("document.querySelectorAll('.assign-option').length === 2")
    page.js("[...document.querySelectorAll('.assign-option')].find(o => o.textContent.includes('Lee')).click()")
    page.wait_for("document.getElementById('assign-note').textContent === "
                  "'Could not assign to Lee Sharp: Lee Sharp is at capacity; ask a lead'")
    assert page.js("document.getElementById('assign-picker').hidden") is False
    page.page.unroute(re.compile(r".*/api/conversations/[^/?]+$"))

    # the mouse: a click on yourself takes it over
    page.js("document.querySelector('.assign-option').click()")
    page.wait_for("document.querySelector('#thread-head .owner').textContent === 'Assigned to You'")
    assert page.js("document.getElementById('assign-picker').hidden") is True
    assert store.get(cid)["assignee"] == kim["id"]
    assert not AGENT_ID.findall(_shown(page))
    assert page.js("window.__violations") == []
