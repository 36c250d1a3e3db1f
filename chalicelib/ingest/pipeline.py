"""Turns normalised events into stored messages, exactly once: routes each event to its
account, then hands it to the conversation store (chalicelib.inbox.store), the only code that
writes conversations and messages. What could not be routed or read goes to quarantine."""
from __future__ import annotations

from typing import Any, Optional, Tuple

from chalicelib.accounts import find_account
from chalicelib.channels.base import (
    EditEvent,
    Event,
    IgnoredEvent,
    LookupEvent,
    MessageEvent,
    ParseProblem,
    PostEditEvent,
    RemoveEvent,
    StatusEvent,
    TemplateStatusEvent,
)
from chalicelib.inbox import store
from chalicelib.ingest.quarantine import quarantine, raw_of
from chalicelib.logs import logger

__all__ = ["handle", "quarantine"]


def handle(event: Event, correlation_id: str = "") -> str:
    """Apply one event; returns what happened (for logs, tests and the benchmark)."""
    if isinstance(event, IgnoredEvent):
        logger.info("event ignored", extra={"channel": event.channel, "reason": event.reason})
        return "ignored"
    if isinstance(event, ParseProblem):
        quarantine("unreadable: " + event.reason, event.channel, event.account_id, event.raw, correlation_id)
        return "quarantined"
    if isinstance(event, TemplateStatusEvent):  # keyed by the business account, not a channel account
        from chalicelib.outbound import templates

        templates.note_status(event)
        return "template status"
    channel, account_id = _routing_of(event)
    account = find_account(channel, account_id)
    if account is None or not account.enabled:
        quarantine("unknown account", channel, account_id, raw_of(event), correlation_id, event=event)
        return "quarantined"
    team = account.team
    if isinstance(event, LookupEvent):
        resolved = _resolve(event, account, correlation_id)
        if not isinstance(resolved, MessageEvent):
            return resolved
        event = resolved
    if isinstance(event, MessageEvent):
        annotations = annotations_of(event)
        created, (conversation_id, _) = store.record_message(event, team, annotations=annotations)
        if not created:
            logger.info("duplicate message", extra={"channel": event.channel})
            return "duplicate"
        if annotations is not None and annotations.priority:
            _raise_priority(conversation_id, annotations.priority)
        if event.post:
            _keep_post(event)
        if event.direction == "in" and not event.contact.display_name:
            from chalicelib.inbox.contacts import enrich  # after the message is stored; never raises

            enrich(event, conversation_id)
        return "created"
    if isinstance(event, StatusEvent):
        return _receipt(event, correlation_id)
    if isinstance(event, PostEditEvent):
        from chalicelib.inbox import post_previews

        post_previews.note_edit(event.channel, event.post_id, event.text)
        return "post edited"
    if isinstance(event, EditEvent):
        return store.apply_edit(event, team, annotations=annotations_of(event.message))
    if isinstance(event, RemoveEvent):
        outcome = store.apply_removal(event, team)
        if outcome == "unknown":
            quarantine("removal of an unknown message", event.channel, event.account_id, raw_of(event), correlation_id)
            return "quarantined"
        return outcome
    raise TypeError(f"unknown event type {type(event).__name__}")


def _resolve(event: LookupEvent, account: Any, correlation_id: str) -> Any:
    """Fetch what a LookupEvent names with the account's token (here, after the delivery was
    queued: the webhook never waits on a platform). "ignored" when it is gone; "quarantined"
    (replayable once the account is reconnected) when the platform refuses the token or the
    request; any other failure raises, so the envelope is retried and, at worst, parked."""
    from chalicelib.accounts import credential_refs
    from chalicelib.channels import adapter_for_channel
    from chalicelib.channels.base import SendError, account_secrets
    from chalicelib.runtime import runtime

    adapter = runtime.injected_adapter(event.channel) or adapter_for_channel(event.channel)
    try:
        found = adapter.resolve(event, account_secrets(credential_refs(account)), runtime.http())
    except SendError as error:
        if error.kind in ("reauthorize", "permanent"):
            quarantine(f"lookup refused: {error.reason}"[:300], event.channel, event.account_id, event.raw,
                       correlation_id, event=event)
            return "quarantined"
        raise RuntimeError(f"lookup of {event.kind} failed, will retry: {error.reason}"[:300]) from None
    if found is None:
        logger.info("looked-up content is gone", extra={"channel": event.channel, "kind": event.kind})
        return "ignored"
    return found


def annotations_of(event: MessageEvent) -> Optional[store.Annotations]:
    """What the runtime's annotator (listening: sentiment, topics) says about a message. A
    failing annotator costs the message its annotations, never the message."""
    from chalicelib.runtime import runtime

    try:
        annotator = runtime.annotator()
        return annotator(event) if annotator is not None else None
    except Exception as error:  # noqa: BLE001 - see docstring
        logger.warning("annotator failed", extra={"channel": event.channel, "error": f"{type(error).__name__}"})
        return None


def _keep_post(event: MessageEvent) -> None:
    """The post behind the thread as the delivery carried it. A failure costs the thread header
    its preview until a view looks the post up, never the stored message (nor a retry of it)."""
    from chalicelib.inbox import post_previews

    try:
        post_previews.note_carried(event.channel, event.post or {})
    except Exception as error:  # noqa: BLE001 - see docstring
        logger.warning("post behind the thread not kept", extra={"channel": event.channel,
                                                                 "error": type(error).__name__})


def _raise_priority(conversation_id: str, priority: str) -> None:
    """The annotator's priority rule (one more write, only when a rule matched); a conversation
    too busy to change keeps its priority (logged), never loses the message."""
    try:
        store.raise_priority(conversation_id, priority, "flow")
    except (store.NotFound, store.Busy, ValueError) as error:
        logger.warning("priority rule not applied", extra={"conversation_id": conversation_id,
                                                          "error": type(error).__name__})


def _receipt(event: StatusEvent, correlation_id: str) -> str:
    outcome = store.apply_receipt(event)
    if outcome == "ignored":
        logger.info("unknown delivery status ignored", extra={"channel": event.channel, "status": event.status})
    elif outcome == "unknown":
        quarantine("receipt for an unknown message", event.channel, event.account_id, raw_of(event), correlation_id)
        return "quarantined"
    return outcome


def _routing_of(event: Event) -> Tuple[str, str]:
    if isinstance(event, EditEvent):
        return event.message.channel, event.message.account_id
    return event.channel, event.account_id  # type: ignore[union-attr]


def replay_event(event: Event, correlation_id: Optional[str] = None) -> str:
    """Handle an event again (quarantine replay); same exactly-once guarantees."""
    return handle(event, correlation_id or "")


def describe(event: Any) -> str:
    return type(event).__name__
