"""Per-agent rate limits on the agent API (issue 16 item 13): a token bucket per agent and route
class, 429 with Retry-After when empty, nothing done for a refused request; bulk bounded by ids."""
from __future__ import annotations

import json
from typing import Dict

import pytest

from tests.helpers import call_api as _call

T0 = 1_800_000_000.0


def _agent(email: str, teams=("default",)) -> Dict[str, str]:
    from chalicelib.api import auth, people

    agent, _ = people.create(email, email.split("@")[0], "agent", list(teams), None, "a long enough password")
    return {"token": auth.issue_token(agent), "id": agent.agent_id}


@pytest.fixture
def frozen(inbox):
    """The clock stands still (no bucket refills unless a test moves it): [now] is the clock."""
    from chalicelib.runtime import runtime

    now = [T0]
    runtime.use_clock(lambda: now[0])
    return now


def test_one_agent_polling_too_fast_gets_429_with_retry_after_and_nobody_else_does(inbox, frozen):
    from chalicelib.api import ratelimit

    sam, kim = _agent("sam@example.com"), _agent("kim@example.com")
    burst = int(ratelimit.BUDGETS["poll"].burst)
    statuses = [_call(inbox, "GET", "/api/changes", sam["token"]).status_code for _ in range(burst + 3)]
    assert statuses[:burst] == [200] * burst and statuses[burst:] == [429] * 3
    refused = _call(inbox, "GET", "/api/changes", sam["token"])
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert json.loads(refused.body)["Code"] == "TooManyRequests"
    # Other agents and the same agent's other route classes are not affected.
    assert _call(inbox, "GET", "/api/changes", kim["token"]).status_code == 200
    assert _call(inbox, "GET", "/api/conversations", sam["token"]).status_code == 200
    # Refused requests took nothing: a second later the bucket holds exactly one second's refill.
    frozen[0] += 1
    per_second = int(ratelimit.BUDGETS["poll"].per_second)
    statuses = [_call(inbox, "GET", "/api/changes", sam["token"]).status_code for _ in range(per_second + 1)]
    assert statuses == [200] * per_second + [429]


def test_bulk_is_bounded_by_conversation_ids_and_a_refused_bulk_changes_nothing(inbox, frozen):
    from chalicelib.api import ratelimit
    from chalicelib.runtime import runtime

    runtime.rate_budgets = dict(ratelimit.BUDGETS, bulk=ratelimit.Budget(150, 10))
    sam = _agent("sam@example.com")
    ids = [f"c_missing_{i}" for i in range(71)]
    first = _call(inbox, "POST", "/api/conversations/bulk", sam["token"], {"ids": ids, "status": "resolved"})
    second = _call(inbox, "POST", "/api/conversations/bulk", sam["token"], {"ids": ids, "status": "resolved"})
    assert first.status_code == second.status_code == 200
    third = _call(inbox, "POST", "/api/conversations/bulk", sam["token"], {"ids": ids, "status": "resolved"})
    assert third.status_code == 429
    assert int(third.headers["Retry-After"]) == 7  # 71 ids, 8 left, 10 a second: 6.3 s
    assert "results" not in json.loads(third.body)
    small = _call(inbox, "POST", "/api/conversations/bulk", sam["token"], {"ids": ids[:8], "status": "resolved"})
    assert small.status_code == 200  # what is left is still usable


def test_the_page_polling_in_several_tabs_stays_within_the_poll_budget():
    """Ten tabs, each polling every 2.5 s (app.js POLL_MS), for an hour: never refused."""
    from chalicelib.api import ratelimit
    from chalicelib.runtime import runtime

    now = [T0]
    runtime.use_clock(lambda: now[0])
    try:
        refused = 0
        for tick in range(int(3600 / 2.5)):
            now[0] = T0 + tick * 2.5
            refused += sum(1 for _ in range(10) if ratelimit.wait_seconds("a_tabs", "poll"))
        assert refused == 0
    finally:
        runtime.reset()
