"""Every channel of every registered adapter has a working send (one harness over the registry,
run against the loopback sandbox): a platform id on success, "reauthorize" for a revoked token
and without credentials, "permanent" for over-long text before any HTTP call, and "unknown" when
nothing answers. A new channel without a sample here fails the first test."""
from __future__ import annotations

import pytest
import requests

from chalicelib.channels import adapter_for_channel, adapter_names, channel_names, get_adapter
from chalicelib.channels.base import OutboundMessage, SendError
from chalicelib.local import sandbox

TOKENS = {"META_PAGE_TOKEN": "page-token", "INSTAGRAM_ACCESS_TOKEN": "ig-token", "WHATSAPP_TOKEN": "wa-token",
          "X_CONSUMER_KEY": "ck", "X_CONSUMER_SECRET": "cs", "X_ACCESS_TOKEN": "1520000000000000001-at",
          "X_ACCESS_TOKEN_SECRET": "ats", "TELEGRAM_BOT_TOKEN": "1000000001:tg", "LINKEDIN_ACCESS_TOKEN": "li"}


def _message(channel, account, kind, target, reply_to=None, thread_key=None, **extra):
    return OutboundMessage(channel=channel, account_id=account, thread_key=thread_key or target, thread_kind=kind,
                           recipient_id=target, text="Thanks for writing!", outbound_id="msg-contract",
                           reply_to=reply_to, **extra)


# channel -> {case: build(target id) -> OutboundMessage}; the target is what failures key on.
SAMPLES = {
    "messenger": {
        "dm": lambda t: _message("messenger", "100000000000001", "dm", t),
        "tagged": lambda t: _message("messenger", "100000000000001", "dm", t, tag="HUMAN_AGENT"),
    },
    "instagram": {
        "dm": lambda t: _message("instagram", "17841400000000001", "dm", t),
        "comment": lambda t: _message("instagram", "17841400000000001", "comment", "1780000000000002",
                                      reply_to=t, thread_key="comment:1790:1780000000000002"),
        "private": lambda t: _message("instagram", "17841400000000001", "comment", "1780000000000002",
                                      reply_to=t, thread_key="comment:1790:1780000000000002", private_reply=True),
    },
    "facebook": {
        "comment": lambda t: _message("facebook", "100000000000001", "comment", "6100000000000003",
                                      reply_to=f"{t}_1", thread_key="comment:1_2:6100000000000003"),
        "private": lambda t: _message("facebook", "100000000000001", "comment", "6100000000000003",
                                      reply_to=f"{t}_1", thread_key="comment:1_2:6100000000000003",
                                      private_reply=True),
    },
    "whatsapp": {
        "text": lambda t: _message("whatsapp", "200000000000001", "dm", t, reply_to="wamid.IN"),
        "template": lambda t: _message("whatsapp", "200000000000001", "dm", t,
                                       template={"name": "hello_world", "language": {"code": "en_US"}}),
    },
    "x": {
        "dm": lambda t: _message("x", "1520000000000000001", "dm", t),
        "reply": lambda t: _message("x", "1520000000000000001", "mention", "1530000000000000009",
                                    reply_to=t, thread_key=f"tweet:{t}"),
    },
    "telegram": {
        "dm": lambda t: _message("telegram", "1000000001", "dm", t, reply_to=f"{t}:41"),
    },
    "linkedin": {
        "comment": lambda t: _message("linkedin", "urn:li:organization:10000001", "comment", "urn:li:person:abc",
                                      reply_to=f"urn:li:comment:(urn:li:activity:{t},42)",
                                      thread_key=f"urn:li:activity:{t}|urn:li:person:abc"),
    },
}
CASES = [(channel, case) for channel in sorted(SAMPLES) for case in sorted(SAMPLES[channel])]
LIMITS = {"messenger": 2000, "instagram": 2200, "facebook": 8000, "whatsapp": 4096, "x": 10_000,
          "telegram": 4096, "linkedin": 1250}


@pytest.fixture(scope="module")
def platforms():
    server, env = sandbox.start(None, slow_seconds=2.0, secrets=TOKENS.get)
    yield server, env
    server.close()


@pytest.fixture
def platform_env(platforms, monkeypatch):
    for name, value in platforms[1].items():
        monkeypatch.setenv(name, value)
    return platforms[0]


def send(message, secrets=TOKENS.get):
    return adapter_for_channel(message.channel).send(message, secrets, requests.Session())


def test_every_channel_of_every_adapter_has_send_samples():
    assert set(SAMPLES) == set(channel_names())
    for name in adapter_names():
        for channel in get_adapter(name).channels:
            assert adapter_for_channel(channel) is get_adapter(name)
    with pytest.raises(KeyError):
        adapter_for_channel("myspace")


@pytest.mark.parametrize("channel,case", CASES)
def test_send_returns_the_platform_id(platform_env, channel, case):
    message = SAMPLES[channel][case]("1234567890" if channel != "whatsapp" else "351910000001")
    result = send(message)
    assert isinstance(result.platform_message_id, str) and result.platform_message_id


@pytest.mark.parametrize("channel,case", CASES)
def test_revoked_token_asks_for_reauthorization(platform_env, channel, case):
    with pytest.raises(SendError) as caught:
        send(SAMPLES[channel][case]("fail-token-7"))
    assert caught.value.kind == "reauthorize", caught.value.reason


@pytest.mark.parametrize("channel,case", CASES)
def test_no_credentials_asks_for_reauthorization_without_a_call(platform_env, channel, case):
    before = len(platform_env.requests)
    with pytest.raises(SendError) as caught:
        send(SAMPLES[channel][case]("1234567890"), lambda name: None)
    assert caught.value.kind == "reauthorize"
    assert len(platform_env.requests) == before


@pytest.mark.parametrize("channel,case", [c for c in CASES if c != ("whatsapp", "template")])
def test_over_long_text_is_permanent_without_a_call(platform_env, channel, case):
    message = SAMPLES[channel][case]("1234567890")
    before = len(platform_env.requests)
    too_long = OutboundMessage(**{**message.__dict__, "text": "a" * (LIMITS[channel] + 1)})
    with pytest.raises(SendError) as caught:
        send(too_long)
    assert caught.value.kind == "permanent"
    assert len(platform_env.requests) == before


@pytest.mark.parametrize("channel", sorted(SAMPLES))
def test_nothing_listening_is_unknown(monkeypatch, channel):
    for name in ("META_GRAPH_BASE_URL", "INSTAGRAM_GRAPH_BASE_URL", "X_API_BASE_URL", "TELEGRAM_API_BASE_URL",
                 "LINKEDIN_API_BASE_URL"):
        monkeypatch.setenv(name, "http://127.0.0.1:9/nothing")  # discard port: connection refused
    case = sorted(SAMPLES[channel])[0]
    with pytest.raises(SendError) as caught:
        send(SAMPLES[channel][case]("1234567890"))
    assert caught.value.kind == "unknown"
