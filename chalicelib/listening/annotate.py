"""The ingest hook and the message-level contract.

`annotate(event)` is what the runtime's annotator runs for every inbound message before the store
records it (chalicelib.ingest.pipeline): language (the platform's when it says, else
chalicelib.listening.language), sentiment, topics. The store keeps the result opaque:
`{"sentiment": {...}, "topics": [...]}` on the message, `{"sentiment": <label>}` as the
conversation's latest customer message labels (`?sentiment=` filters the list on them).

`message_fields` gives every message of the API its `sentiment` and `topics` (our own replies and
notes are "unscored": nothing is scored on our side). `correct` records an agent's correction:
on the message (`corrected: true`, the machine's score kept), on the conversation when it is the
latest customer message, as a labelled example in the corrections set, and on the listening item
when the message is one (a mention, a converted found post), which the topics report counts.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from chalicelib.listening import language as language_detector
from chalicelib.listening import sentiment, topics
from chalicelib.listening.text import base_language

#: Channels whose raw message carries the platform's own language (X posts: `lang`).
PLATFORM_LANGUAGE = {"x": "lang", "x_search": "lang"}
CORRECTABLE = ("positive", "neutral", "negative")
MAX_EXPORT_TEXT = 2000


def language_of(channel: str, text: Optional[str], raw: Any) -> Optional[str]:
    """The platform's language when it gives one, else the offline detector's (None: unknown)."""
    key = PLATFORM_LANGUAGE.get(channel)
    if key and isinstance(raw, dict):
        given = base_language(raw.get(key))
        if given is not None:
            return given
    return language_detector.detect(text)


def analyse(text: Optional[str], channel: str, raw: Any = None) -> Dict[str, Any]:
    """`{"sentiment": {...}, "topics": [...]}` for one text from `channel` (or a search source)."""
    language = language_of(channel, text, raw)
    return {"sentiment": sentiment.score(text, language), "topics": topics.match(text, language, channel)}


def annotate(event: Any) -> Optional[Any]:
    """The runtime's annotator: the store's Annotations for an inbound message, None for ours.
    A mention of our account also becomes a listening item (chalicelib.listening.items); an
    admin's priority rule (chalicelib.listening.priority) rides along as `priority`."""
    if getattr(event, "direction", None) != "in":
        return None
    from chalicelib.listening import priority

    data = analyse(event.text, event.channel, event.raw)
    data["priority"] = priority.for_message(event, (data.get("sentiment") or {}).get("label"))
    if event.thread_kind == "mention":
        _record_item(event, data)
    return annotations_from(data)


def _record_item(event: Any, data: Dict[str, Any]) -> None:
    """The mention's listening item; a failure costs the item (logged), never the annotations."""
    from chalicelib.listening import items

    try:
        items.record_mention(event, data)
    except Exception as error:  # noqa: BLE001 - see docstring
        from chalicelib.logs import logger

        logger.warning("listening item not recorded", extra={"channel": event.channel,
                                                              "error": type(error).__name__})


def annotations_from(data: Dict[str, Any]) -> Any:
    """The store's Annotations for an analysis (`{"sentiment", "topics"}`)."""
    from chalicelib.inbox.store import Annotations

    mood = data.get("sentiment") or sentiment.unscored(None)
    names = list(data.get("topics") or [])
    return Annotations({"sentiment": mood, "topics": names}, labels_of(mood["label"], names), data.get("priority"))


def labels_of(label: str, names: List[str]) -> Dict[str, str]:
    """The conversation's short labels of its latest customer message: `sentiment`, and `topics`
    (names joined by a newline, which no topic name holds) for SLA policies that target them."""
    labels = {"sentiment": label}
    if names:
        labels["topics"] = "\n".join(names)
    return labels


def message_fields(direction: Optional[str], annotations: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """`sentiment` and `topics` as every message in the API carries them."""
    found = annotations if isinstance(annotations, dict) else {}
    mood = found.get("sentiment")
    if not isinstance(mood, dict) or mood.get("label") not in sentiment.LABELS:
        mood = sentiment.unscored(None)
    return {"sentiment": {"label": mood["label"], "score": mood.get("score"), "language": mood.get("language"),
                          "corrected": bool(mood.get("corrected"))},
            "topics": [t for t in (found.get("topics") or []) if isinstance(t, str)] if direction == "in" else []}


def correct(conversation_id: str, message_id: str, label: Any, actor: str, now_ms: int) -> Optional[Dict[str, Any]]:
    """An agent's sentiment correction of a customer message. ValueError for a bad label or a
    message that is not the customer's; None when there is no such message. Returns the
    message's new `sentiment` and `topics`."""
    from chalicelib.inbox import store

    if label not in CORRECTABLE:
        raise ValueError(f"sentiment must be one of {', '.join(CORRECTABLE)}")
    message = store.message_by_id(conversation_id, message_id)
    if message is None:
        return None
    if message.direction != "in":
        raise ValueError("only a customer's message has a sentiment to correct")
    data = dict(message.annotations) if isinstance(message.annotations, dict) else {}
    before = message_fields("in", data)["sentiment"]
    data["sentiment"] = dict(before, label=label, corrected=True)
    data.setdefault("topics", [])
    names = [t for t in (data.get("topics") or []) if isinstance(t, str)]
    store.annotate_message(conversation_id, message, store.Annotations(data, labels_of(label, names)))
    _keep_correction(message, before, label, actor, now_ms)
    from chalicelib.listening import items

    items.follow_correction(message.channel, message.platform_message_id, conversation_id, data["sentiment"])
    return message_fields("in", data)


def _keep_correction(message: Any, before: Dict[str, Any], label: str, actor: str, now_ms: int) -> None:
    """The labelled example (text, language, channel, machine label and score, agent's label)."""
    from chalicelib.models import ListeningRecord

    ListeningRecord("corrections", f"{now_ms:013d}#{message.message_id}", at=now_ms, data={
        "conversation_id": message.conversation_id, "message_id": message.message_id, "channel": message.channel,
        "language": before.get("language"), "text": (message.text or "")[:MAX_EXPORT_TEXT],
        "machine_label": before["label"] if not before.get("corrected") else None,
        "previous_label": before["label"], "score": before.get("score"), "label": label, "by": actor,
    }).save()


def corrections(limit: int, start: Optional[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], Optional[Dict[str, Any]]]:
    """The corrections set, oldest first, one page (the export of the labelled set)."""
    from chalicelib.models import ListeningRecord

    results = ListeningRecord.query("corrections", limit=limit, page_size=limit, last_evaluated_key=start)
    items = [dict(item.data or {}, at=int(item.at or 0)) for item in results]
    return items, results.last_evaluated_key
