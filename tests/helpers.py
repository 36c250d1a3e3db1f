"""Test harness: signed deliveries, draining the queue through the real handler, API calls."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any, Dict, List, Optional, Union

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery staple"


def fixture_bytes(platform: str, name: str) -> bytes:
    with open(os.path.join(FIXTURES, platform, name), "rb") as handle:
        return handle.read()


def meta_signature(body: bytes, secret: str = "test_app_secret") -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def compact(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class Inbox:
    """The product as a test sees it: HTTP in through Chalice's test client, queue drained by
    the real SQS handler, answers read back through the agent API."""

    def __init__(self, client: Any, application: Any) -> None:
        self.client = client
        self.app = application
        self._token: Optional[str] = None

    # --- webhooks ---
    def post_webhook(self, platform: str, body: Union[bytes, Dict[str, Any]], headers: Optional[Dict[str, str]] = None):
        raw = body if isinstance(body, bytes) else compact(body)
        all_headers = {"Content-Type": "application/json"}
        all_headers.update(headers or {})
        return self.client.http.post(f"/webhooks/{platform}", body=raw, headers=all_headers)

    def post_meta(self, body: Union[bytes, Dict[str, Any]], secret: str = "test_app_secret"):
        raw = body if isinstance(body, bytes) else compact(body)
        return self.post_webhook("meta", raw, {"X-Hub-Signature-256": meta_signature(raw, secret)})

    def process(self) -> int:
        """Run every queued delivery through the real processor (as Lambda's SQS trigger would)."""
        from chalicelib.local.pump import drain

        return drain(self.app.ingest_processor)

    # --- setup ---
    def add_account(self, channel: str, platform_account_id: str, name: str = "Test account") -> None:
        from chalicelib.accounts import register_account

        register_account(channel, platform_account_id, name)

    def login_admin(self) -> str:
        from chalicelib.api.auth import create_agent
        from chalicelib.models import Agent

        if self._token is None:
            try:
                Agent.get(ADMIN_EMAIL)
            except Agent.DoesNotExist:
                create_agent(ADMIN_EMAIL, ADMIN_PASSWORD, "Admin", role="admin")
            response = self.client.http.post("/api/auth/login", body=json.dumps(
                {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}), headers={"Content-Type": "application/json"})
            assert response.status_code == 200, response.body
            self._token = json.loads(response.body)["token"]
        return self._token

    # --- reading back ---
    def get(self, path: str) -> Any:
        response = self.client.http.get(path, headers={"Authorization": "Bearer " + self.login_admin()})
        assert response.status_code == 200, (path, response.status_code, response.body)
        return json.loads(response.body)

    def conversations(self, **params: str) -> List[Dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return self.get("/api/conversations" + ("?" + query if query else ""))["items"]

    def messages(self, conversation_id: str) -> List[Dict[str, Any]]:
        return self.get(f"/api/conversations/{conversation_id}/messages")["items"]

    def all_messages(self) -> List[Dict[str, Any]]:
        found = []
        for status in ("open", "pending", "snoozed", "resolved"):
            for conversation in self.conversations(status=status, limit="100"):
                found.extend(self.messages(conversation["id"]))
        return found

    def quarantine(self) -> List[Dict[str, Any]]:
        return self.get("/api/admin/quarantine")["items"]


def json_values(allow_nan: bool = False, max_leaves: int = 25):
    """Hypothesis strategy for arbitrary JSON-like values (shared by every parser property test)."""
    from hypothesis import strategies as st

    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=allow_nan) | st.text(max_size=20)
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
        max_leaves=max_leaves,
    )
