"""The outbox worker: one queued reply per queue message -> the channel adapter's `send`.

Queue message body: {"conversation_id", "sort_key"[, "not_before" (epoch ms)]}. The message in
DynamoDB is the truth (chalicelib.inbox.outbound); the queue only says "look at this one":
- a reply is sent only under a claim (queued, nobody holds it), so a duplicate queue message,
  a second click or a redelivery never sends twice;
- retryable refusals (throttling) release the claim and re-enqueue with a delay: the platform's
  `retry_after` when it gave one (longer than SQS's 15 minutes: carried as `not_before`), else
  exponential backoff; after MAX_SEND_ATTEMPTS the reply fails with the last reason;
- window closed / permanent -> failed with a readable `delivery_error`;
- reauthorize -> failed, and the account is marked `needs_reauth` (shown in GET /api/accounts;
  its next replies fail at once until it is reconnected);
- no answer (timeout) -> unknown: never resent; the echo or a receipt settles it;
- a claim left by an attempt that died -> unknown, for the same reason.
Each SQS record is settled once: records that finished are deleted explicitly before the handler
raises for the ones that must come back; after MAX_PROCESSING_ATTEMPTS receives a record that
keeps failing (not a send refusal: those settle the message) is parked in the outbox DLQ.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Optional

from chalicelib import config
from chalicelib.channels import adapter_for_channel
from chalicelib.channels.brands import brand
from chalicelib.channels.base import OutboundMessage, SendError, account_secrets
from chalicelib.inbox import outbound
from chalicelib.logs import bind_correlation_id, current_correlation_id, describe_error, logger
from chalicelib.models import ChannelAccount, Message
from chalicelib.runtime import runtime

OUTBOX_QUEUE = "outbox"
OUTBOX_DLQ = "outbox-dlq"
MAX_SEND_ATTEMPTS = 8
MAX_PROCESSING_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 2
MAX_DELAY_SECONDS = 900  # SQS's DelaySeconds ceiling


class RetryLater(Exception):
    """Raised so SQS redelivers the records of the batch that are still on the queue."""


class InFlight(Exception):
    """Another attempt holds the reply's claim right now: look again later."""


# --- queueing ------------------------------------------------------------------------------------


def enqueue(conversation_id: str, sort_key: str, delay_seconds: int = 0, not_before: Optional[int] = None) -> None:
    body: Dict[str, Any] = {"conversation_id": conversation_id, "sort_key": sort_key}
    correlation_id = current_correlation_id()
    if correlation_id:  # the request that queued the reply: its send logs under the same id
        body["correlation_id"] = correlation_id
    if not_before:
        body["not_before"] = int(not_before)
    runtime.client("sqs").send_message(QueueUrl=runtime.queue_url(OUTBOX_QUEUE), MessageBody=json.dumps(body),
                                       DelaySeconds=max(0, min(MAX_DELAY_SECONDS, int(delay_seconds))))


def backoff_seconds(attempt: int) -> int:
    return min(MAX_DELAY_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempt - 1))


# --- the SQS handler -----------------------------------------------------------------------------


def handle_records(records: Iterable[Dict[str, Any]]) -> Dict[str, int]:
    outcome: Dict[str, int] = {}
    settled: List[Dict[str, Any]] = []
    failed: List[str] = []
    for record in records:
        try:
            result = process_body(record.get("body") or "")
            outcome[result] = outcome.get(result, 0) + 1
            settled.append(record)
        except Exception as error:  # noqa: BLE001 - decide between retry and parking
            attempts = int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
            if isinstance(error, InFlight) or attempts < MAX_PROCESSING_ATTEMPTS:
                logger.warning("outbox record will be retried", extra={"attempt": attempts,
                                                                        "error": describe_error(error)})
                failed.append(record.get("messageId", "?"))
            else:
                _park(record, error, attempts)
                outcome["parked"] = outcome.get("parked", 0) + 1
                settled.append(record)
    if failed:
        _delete(settled)
        raise RetryLater(f"{len(failed)} outbox record(s) will be retried: {', '.join(failed)}")
    return outcome


def process_body(body: str) -> str:
    try:
        data = json.loads(body)
        conversation_id, sort_key = data["conversation_id"], data["sort_key"]
        not_before = int(data.get("not_before") or 0)
        if not isinstance(conversation_id, str) or not isinstance(sort_key, str):
            raise TypeError("ids must be strings")
        bind_correlation_id(str(data.get("correlation_id") or "") or None)
    except (ValueError, KeyError, TypeError, AttributeError):
        logger.error("unreadable outbox record dropped", extra={"body": body[:200]})
        return "unreadable"
    now = runtime.now_ms()
    if not_before > now:  # a platform reset further away than SQS can delay
        enqueue(conversation_id, sort_key, (not_before - now + 999) // 1000, not_before)
        return "deferred"
    return send_one(conversation_id, sort_key)


def send_one(conversation_id: str, sort_key: str) -> str:
    """Send one queued reply if it still needs sending; what happened."""
    from chalicelib.accounts import find_account
    from chalicelib.inbox import store

    try:
        message = outbound.load(conversation_id, sort_key)
    except outbound.Gone:
        return "gone"
    if message.direction != "out" or message.client_id is None:
        return "not a reply"
    if message.delivery_status != "queued":
        if message.platform_message_id and message.delivery_status in ("sent", "delivered", "read"):
            outbound.mark_sent(message, message.platform_message_id)  # finishes a ref a crash left out
        return f"already {message.delivery_status}"
    if message.send_claim:
        if outbound.claim_is_stale(message):
            outbound.mark_unknown(message, None, "the send attempt ended without an answer; the message may "
                                                 "have been sent and waits for the platform's confirmation")
            return "unknown"
        raise InFlight(f"{conversation_id}/{sort_key} is being sent")
    state = store.get(conversation_id)
    account = find_account(message.channel, message.account_id)
    problem = None
    if state is None:
        problem = "the conversation no longer exists"
    elif account is None or not account.enabled:
        problem = f"the {brand(message.channel)} account {message.account_id} is not connected"
    elif account.needs_reauth:
        problem = f"the {brand(message.channel)} account {account.name} must be reconnected ({account.needs_reauth_reason})"
    if problem:
        outbound.mark_failed(message, None, problem)
        return "failed"
    token = outbound.claim(message)
    if token is None:
        return "claimed elsewhere"
    assert state is not None and account is not None
    from chalicelib.outbound import attachments as files

    try:
        attachments = files.for_sending(message.channel, list(message.attachments) if message.attachments else None)
    except files.Gone as gone:
        outbound.mark_failed(message, token, str(gone))
        return "failed"
    except Exception:  # S3 did not answer: nothing was sent, the record comes back
        outbound.release(message, token, "retrying: our file storage did not answer")
        raise
    outgoing = OutboundMessage(
        channel=message.channel, account_id=message.account_id, thread_key=state.get("thread_key") or "",
        thread_kind=state.get("thread_kind") or "dm", recipient_id=state.get("contact_platform_id") or "",
        text=message.text or "", outbound_id=outbound.outbound_id(message), reply_to=message.reply_to,
        tag=message.send_tag, template=message.template, private_reply=bool(message.private_reply),
        attachments=attachments)
    try:
        adapter = runtime.injected_adapter(message.channel) or adapter_for_channel(message.channel)
        result = adapter.send(outgoing, account_secrets(_refs(account)), runtime.http())
    except SendError as error:
        return _refused(message, token, account, error)
    except Exception as error:  # noqa: BLE001 - an adapter bug: the request may have gone out
        logger.exception("send failed unexpectedly", extra={"channel": message.channel,
                                                            "error": describe_error(error)})
        outbound.mark_unknown(message, token, f"sending failed unexpectedly ({type(error).__name__}); "
                                              "the message may have been sent")
        return "unknown"
    outcome = outbound.mark_sent(message, result.platform_message_id)
    logger.info("reply sent", extra={"channel": message.channel, "conversation_id": conversation_id,
                                     "message_id": message.message_id, "outcome": outcome})
    return "sent"


def _refs(account: ChannelAccount) -> Dict[str, str]:
    from chalicelib.accounts import credential_refs

    return credential_refs(account)


def _refused(message: Message, token: str, account: ChannelAccount, error: SendError) -> str:
    reason = error.reason
    extra = {"channel": message.channel, "kind": error.kind, "code": error.code,
             "conversation_id": message.conversation_id, "message_id": message.message_id}
    if error.kind == "retryable":
        attempts = int(message.send_attempts or 1)
        if attempts >= MAX_SEND_ATTEMPTS:
            outbound.mark_failed(message, token, f"{reason} (gave up after {attempts} attempts)")
            logger.warning("reply failed: still refused after retries", extra=extra)
            return "failed"
        wait = max(float(error.retry_after or 0), float(backoff_seconds(attempts)))
        outbound.release(message, token, f"retrying: {reason}")
        not_before = runtime.now_ms() + int(wait * 1000) if wait > MAX_DELAY_SECONDS else None
        enqueue(message.conversation_id, message.sort_key, int(wait + 0.999), not_before)
        logger.info("reply throttled; retry scheduled", extra=dict(extra, delay_seconds=wait))
        return "retry"
    if error.kind == "unknown":
        outbound.mark_unknown(message, token, f"{reason}; waiting for the platform's confirmation")
        logger.warning("reply outcome unknown", extra=extra)
        return "unknown"
    if error.kind == "reauthorize":
        mark_needs_reauth(account, reason)
        outbound.mark_failed(message, token, f"the {brand(message.channel)} account {account.name} must be "
                                             f"reconnected: {reason}")
    elif error.kind == "window_closed":
        outbound.mark_failed(message, token, f"the messaging window is closed: {reason}")
    else:
        outbound.mark_failed(message, token, reason)
    logger.warning("reply failed", extra=extra)
    return "failed"


def mark_needs_reauth(account: ChannelAccount, reason: str) -> None:
    """The platform refused the account's token: shown in GET /api/accounts until reconnected."""
    from chalicelib.accounts import forget_account

    try:
        ChannelAccount(account.account_key).update(
            actions=[ChannelAccount.needs_reauth.set(True), ChannelAccount.needs_reauth_reason.set(reason[:500]),
                     ChannelAccount.needs_reauth_at.set(runtime.now_ms())],
            condition=ChannelAccount.account_key.exists())
    finally:
        forget_account(account.account_key)
    logger.warning("channel account needs re-authorisation", extra={"account": account.account_key})


# --- settling records ----------------------------------------------------------------------------


def _delete(records: List[Dict[str, Any]]) -> None:
    entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(records)
               if r.get("receiptHandle")]
    if not entries:
        return
    try:
        runtime.client("sqs").delete_message_batch(QueueUrl=runtime.queue_url(OUTBOX_QUEUE), Entries=entries)
    except Exception as error:  # noqa: BLE001 - a repeat is harmless (the claim gates sends)
        logger.warning("could not delete settled outbox records", extra={"error": describe_error(error)})


def _park(record: Dict[str, Any], error: Exception, attempts: int) -> None:
    description = describe_error(error)
    runtime.client("sqs").send_message(
        QueueUrl=runtime.queue_url(OUTBOX_DLQ), MessageBody=record.get("body") or "",
        MessageAttributes={"error": {"DataType": "String", "StringValue": description[:1000]},
                           "attempts": {"DataType": "Number", "StringValue": str(attempts)}})
    logger.error("outbox record parked", extra={"error": description, "attempts": attempts})


def queue_name() -> str:
    return config.queue_name(OUTBOX_QUEUE)
