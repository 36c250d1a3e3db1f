"""Local demo data: the admin and demo agents, each adapter's demo accounts, demo listening topics."""
from __future__ import annotations

import hashlib
from typing import Dict, List, Tuple

from chalicelib.runtime import runtime

DEMO_AGENTS: Tuple[Tuple[str, str, str], ...] = (
    ("admin@example.com", "Ada Admin", "admin"),
    ("agent1@example.com", "Sam Support", "agent"),
    ("agent2@example.com", "Kim Care", "agent"),
)


def stable_agent_id(email: str) -> str:
    """A demo agent's id derived from its email: the in-memory emulator forgets everything on
    restart, and random ids would orphan every assignment and token made before it."""
    return "a_" + hashlib.sha256(("demo-agent|" + email.strip().lower()).encode("utf-8")).hexdigest()[:16]


def seed() -> Dict[str, List[str]]:
    """Create demo agents (password: LOCAL_ADMIN_PASSWORD) and every adapter's demo accounts;
    existing records are left alone."""
    from chalicelib.api.auth import create_agent
    from chalicelib.channels import adapter_names, get_adapter
    from chalicelib.accounts import find_account, register_account
    from chalicelib.inbox.rules import DEFAULT_TEAM
    from chalicelib.models import Agent
    from chalicelib.routing import directory

    password = runtime.secret("LOCAL_ADMIN_PASSWORD") or ""
    agents, accounts = [], []
    for email, name, role in DEMO_AGENTS:
        try:
            Agent.get(email)
        except Agent.DoesNotExist:
            agent = create_agent(email, password, name, role, agent_id=stable_agent_id(email))
            if role != "admin" and not directory.profile(agent.agent_id).teams:  # team access: the default team
                directory.set_routing(agent.agent_id, [DEFAULT_TEAM], None)
        agents.append(email)
    for adapter_name in adapter_names():
        for channel, account_id, name in get_adapter(adapter_name).demo_accounts:
            if find_account(channel, account_id) is None:
                register_account(channel, account_id, name)
            accounts.append(f"{channel}:{account_id} ({name})")
    _seed_listening()
    _seed_staffing_history()
    return {"agents": agents, "accounts": accounts}


def _seed_staffing_history() -> None:
    """A month of presence and handle time (chalicelib.staffing.demo), once per stack. The demand
    (the reports' arrival counters) is not written here: it comes from the demo history played
    through the real pipeline (chalicelib.local.history, `make history`; `make run` starts it on a
    fresh stack), so Reports and Staffing count the same conversations."""
    from chalicelib.staffing import demo

    demo.seed_history(runtime.now_ms(), demand=False)


#: The demo's listening: topics (one polled on the sandbox's X recent search) and a small budget.
DEMO_TOPICS = (
    {"name": "Refunds", "include": ["refund", "reembolso", "remboursement", "#acmefail"],
     "sources": ["x_search", "instagram_hashtag"]},
    {"name": "Praise", "include": ["love", "amazing", "adorei", "great"]},
)
DEMO_X_BUDGET = 500
#: A negative public post from someone with 1,000+ followers or 1,000+ likes jumps the queue.
DEMO_PRIORITY_RULES = {"rules": [{"sentiment": "negative", "min_followers": 1000, "priority": "high"},
                                 {"sentiment": "negative", "min_likes": 1000, "priority": "high"}]}


def _seed_listening() -> None:
    """Only on a stack that has no topics yet (an admin's own topics and budget are kept)."""
    from chalicelib.listening import priority, topics, x_search

    if topics.list_topics():
        return
    now = runtime.now_ms()
    for topic in DEMO_TOPICS:
        topics.create_topic(topic, now)
    if not priority.rules():
        priority.save(DEMO_PRIORITY_RULES, now)
    if x_search.budget(now)["monthly_posts"] == 0:
        x_search.set_budget({"monthly_posts": DEMO_X_BUDGET}, now)
