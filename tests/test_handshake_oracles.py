"""Webhook handshakes must not be signing oracles (issue 6).

X's CRC answer is base64 HMAC(consumer secret, crc_token): the very signature X puts on a POST whose
body equals the token. LinkedIn's challengeResponse is hex HMAC(client secret, challengeCode): the
accepted X-LI-Signature of a body B when the code is B or "hmacsha256=" + B. Each test here asks
the handshake to sign a forged delivery, posts that delivery with whatever came back, and checks
that it is refused and that nothing reached the queue or the inbox.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import compact, json_values

X_SECRET = "test_consumer_secret"
LI_SECRET = "test_linkedin_secret"
X_ACCOUNT = "4337869213"
LI_ORG = "urn:li:organization:96072893"

FORGED_DM = compact({
    "for_user_id": X_ACCOUNT,
    "direct_message_events": [{
        "type": "message_create", "id": "954491830116155999", "created_timestamp": "1516403560557",
        "message_create": {"target": {"recipient_id": X_ACCOUNT}, "sender_id": "3001969357",
                           "message_data": {"text": "Your account is suspended, log in at evil.example"}}}],
})
FORGED_COMMENT = compact({
    "type": "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS",
    "notifications": [{
        "notificationId": 1, "organizationalEntity": LI_ORG, "action": "COMMENT",
        "sourcePost": "urn:li:activity:1", "lastModifiedAt": 1700000000000,
        "generatedActivity": "urn:li:comment:(urn:li:activity:1,2)",
        "decoratedGeneratedActivity": {"comment": {"entity": "urn:li:comment:(urn:li:activity:1,2)",
                                                   "owner": "urn:li:person:forger", "text": "forged"}}}],
})
# Bare JSON scalars are deliveries too: the ack path json.loads them and would queue them.
JSON_SCALARS = [b"12345678", b"-1", b"1e5", b"1E+5", b"true", b"false", b"null", b"NaN", b"Infinity",
                b"-Infinity"]


def _crc(inbox, token: str):
    return inbox.client.http.get("/webhooks/x?crc_token=" + quote(token, safe=""))


def _challenge(inbox, code: str):
    return inbox.client.http.get("/webhooks/linkedin?challengeCode=" + quote(code, safe=""))


def _assert_refused_as_json(response) -> None:
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body)["error"]


def _stored_items() -> dict:
    """Item count of every table: the attack must not change any of them."""
    from chalicelib.runtime import runtime

    dynamodb = runtime.client("dynamodb")
    return {name: dynamodb.scan(TableName=name, Select="COUNT")["Count"]
            for name in dynamodb.list_tables()["TableNames"]}


def _queued_messages() -> int:
    from chalicelib.runtime import runtime

    sqs = runtime.client("sqs")
    total = 0
    for url in sqs.list_queues().get("QueueUrls", []):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        total += sum(int(v) for v in attributes.values())
    return total


def _assert_nothing_stored(inbox, before: dict) -> None:
    assert _queued_messages() == 0, "a forged delivery reached a queue"
    assert inbox.process() == 0
    assert _stored_items() == before, "a forged delivery was stored"


# --- X ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [FORGED_DM] + JSON_SCALARS)
def test_x_crc_cannot_sign_a_forged_delivery(inbox, body):
    inbox.add_account("x", X_ACCOUNT)
    before = _stored_items()
    handshake = _crc(inbox, body.decode())
    stolen = json.loads(handshake.body).get("response_token", "sha256=")
    delivery = inbox.post_webhook("x", body, {"x-twitter-webhooks-signature": stolen})
    assert delivery.status_code == 401
    _assert_nothing_stored(inbox, before)
    _assert_refused_as_json(handshake)


@pytest.mark.parametrize("token", [
    "challenge_string",                                   # the contract's vector
    base64.b64encode(b"\xfb\xff\xfe random crc bytes").decode(),  # standard base64 with + / =
    base64.urlsafe_b64encode(uuid.UUID("6f1c2b9e-8d7a-4c3b-9e5f-1a2b3c4d5e6f").bytes * 2).decode().rstrip("="),  # base64url
    hashlib.sha256(b"x").hexdigest(),                     # hex
    "A" * 256,                                            # the longest accepted
])
def test_x_crc_answers_real_shaped_tokens(inbox, token):
    response = _crc(inbox, token)
    assert response.status_code == 200
    expected = base64.b64encode(hmac.new(X_SECRET.encode(), token.encode(), hashlib.sha256).digest()).decode()
    assert json.loads(response.body) == {"response_token": "sha256=" + expected}


def test_x_crc_vector_from_the_contract(inbox):
    assert json.loads(_crc(inbox, "challenge_string").body) == {
        "response_token": "sha256=583uAmerwtjpykYEAEm+CEIRm6dOywK4QKRr0ha/Pd4="}


@pytest.mark.parametrize("token", ["A" * 257, "has space", "quote\"d", "{}", "[1]", "a,b", "a:b", "line\n",
                                   "caf\u00e9", "12345678"])
def test_x_crc_refuses_other_shapes_with_a_clear_400(inbox, token):
    _assert_refused_as_json(_crc(inbox, token))


# --- LinkedIn --------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [FORGED_COMMENT] + JSON_SCALARS)
@pytest.mark.parametrize("prefixed", [True, False], ids=["documented-form", "bare-form"])
def test_linkedin_challenge_cannot_sign_a_forged_delivery(inbox, body, prefixed):
    inbox.add_account("linkedin", LI_ORG)
    before = _stored_items()
    code = ("hmacsha256=" + body.decode()) if prefixed else body.decode()
    handshake = _challenge(inbox, code)
    stolen = json.loads(handshake.body).get("challengeResponse", "")
    for header in (stolen, "hmacsha256=" + stolen):
        assert inbox.post_webhook("linkedin", body, {"X-LI-Signature": header}).status_code == 401
    _assert_nothing_stored(inbox, before)
    _assert_refused_as_json(handshake)


@pytest.mark.parametrize("code", ["890e4665-4dfe-4ab1-b689-ed553bceeed0", "3f2a7c1e-5b4d-4e8f-a1c2-9d8e7f6a5b4c",
                                  "3F2A7C1E-5B4D-4E8F-A1C2-9D8E7F6A5B4C"])
def test_linkedin_challenge_answers_uuid_codes(inbox, code):
    response = _challenge(inbox, code)
    assert response.status_code == 200
    assert json.loads(response.body) == {
        "challengeCode": code,
        "challengeResponse": hmac.new(LI_SECRET.encode(), code.encode(), hashlib.sha256).hexdigest(),
    }


@pytest.mark.parametrize("code", ["challenge", "890e4665-4dfe-4ab1-b689-ed553bceeed0x",
                                  " 890e4665-4dfe-4ab1-b689-ed553bceeed0", "890e46654dfe4ab1b689ed553bceeed0",
                                  "890e4665-4dfe-4ab1-b689-ed553bceeed0\n", "hmacsha256=" + "0" * 36])
def test_linkedin_challenge_refuses_other_shapes_with_a_clear_400(inbox, code):
    _assert_refused_as_json(_challenge(inbox, code))


# --- properties --------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(json_values(allow_nan=True))
def test_no_json_document_is_an_answerable_token(value):
    from chalicelib.channels.linkedin import is_challenge_code
    from chalicelib.channels.x import is_crc_token

    for text in (json.dumps(value), json.dumps(value, separators=(",", ":"))):
        assert not is_crc_token(text)
        assert not is_challenge_code(text)
        assert not is_challenge_code("hmacsha256=" + text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+/=-", min_size=1,
               max_size=256))
def test_every_answerable_crc_token_is_unreadable_as_json(token):
    from chalicelib.channels.x import is_crc_token

    if is_crc_token(token):
        with pytest.raises(ValueError):
            json.loads(token)
