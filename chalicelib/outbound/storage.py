"""Our own copy of every file an agent sends: the attachments bucket (infra: AttachmentsBucket,
private, encrypted, objects expire after 30 days; moto locally).

Why our own storage first: Telegram and Instagram take a file by a URL they fetch themselves
(a pre-signed GET URL of the object, made only when the reply is sent and never stored), and the
thread shows a sent file from our copy through GET /api/media like a received one, whatever the
platform keeps. Keys are `outbound/<conversation id>/<random hex>`: the media endpoint serves
only keys under the conversation asked for.
"""
from __future__ import annotations

import secrets
from typing import Tuple

from chalicelib import config
from chalicelib.runtime import runtime

PREFIX = "outbound/"
URL_SECONDS = 3600  # a platform fetches the file within seconds of the send; an hour is ample


class Missing(Exception):
    """The object is not (or no longer) in the bucket."""


def put(conversation_id: str, data: bytes, mime: str, filename: str) -> str:
    """Store the file; its key."""
    key = f"{PREFIX}{conversation_id}/{secrets.token_hex(16)}"
    runtime.client("s3").put_object(Bucket=config.attachments_bucket(), Key=key, Body=data, ContentType=mime,
                                    Metadata={"filename": filename.encode("ascii", "replace").decode()})
    return key


def belongs_to(key: object, conversation_id: str) -> bool:
    return isinstance(key, str) and key.startswith(f"{PREFIX}{conversation_id}/") and ".." not in key


def exists(key: str) -> bool:
    """Whether the object is still there (HeadObject; authorised by s3:GetObject)."""
    from botocore.exceptions import ClientError

    try:
        runtime.client("s3").head_object(Bucket=config.attachments_bucket(), Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def download_url(key: str, seconds: int = URL_SECONDS) -> str:
    """A pre-signed GET URL of the object, for a platform that takes files by URL (no API call)."""
    return runtime.client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": config.attachments_bucket(), "Key": key}, ExpiresIn=seconds)


def read(key: str) -> Tuple[bytes, str]:
    """The object's bytes and content type; Missing when it is gone."""
    from botocore.exceptions import ClientError

    try:
        found = runtime.client("s3").get_object(Bucket=config.attachments_bucket(), Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise Missing(key) from None
        raise
    return found["Body"].read(), str(found.get("ContentType") or "")
