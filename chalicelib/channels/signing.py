"""HMAC helpers shared by adapters. Always over the raw body bytes, compared in constant time."""
from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Optional


def hmac_sha256(secret: str, data: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), data, hashlib.sha256).digest()


def hmac_sha256_hex(secret: str, data: bytes) -> str:
    return hmac_sha256(secret, data).hex()


def hmac_sha256_b64(secret: str, data: bytes) -> str:
    return base64.b64encode(hmac_sha256(secret, data)).decode("ascii")


def same(expected: str, given: Optional[str]) -> bool:
    """Constant-time equality that treats a missing value as a mismatch."""
    if given is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))
