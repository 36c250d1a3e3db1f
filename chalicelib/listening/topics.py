"""Topics: what an admin wants to hear about, as data (`GET/POST /api/listening/topics`,
`PUT/DELETE /api/listening/topics/{id}`), and matching of every inbound message against them.

A topic is `{"name", "include", "exclude", "languages", "sources"}` (modelled on Sprout's topics
and themes): it matches a text when any include term occurs and no exclude term does, for a
message in one of its languages (absent: any) from one of its sources (absent: all). Terms are
words, "exact phrases" (several words in a row), #hashtags or @handles. Words and phrases match
case- and accent-folded and stemmed in the message's language (chalicelib.listening.text), so
"refund" matches "Refunds" and "#refunds", "remboursement" matches "remboursés"; a hashtag or
handle term matches only that hashtag or handle.

Storage: one document (`ListeningRecord` "topics"/"all") written with a conditional put on its
version: names stay unique (folded) without claim items. Matching reads it at most once per
TOPIC_CACHE_SECONDS per container (runtime.cached), compiled; a write forgets this container's
copy at once, other containers within the minute.
"""
from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple

from chalicelib.listening.text import Tokens, base_language, contains, fold, raw_tokens, stem, tokens

TOPIC_CACHE_SECONDS = 60.0
MAX_TOPICS = 100
MAX_TERMS = 50
MAX_TERM_CHARS = 100
MAX_NAME_CHARS = 80
MAX_LANGUAGES = 20
#: Where found posts come from besides the inbox channels (chalicelib.api.views.CHANNELS).
SEARCH_SOURCES = ("x_search", "instagram_hashtag")
FIELDS = ("name", "include", "exclude", "languages", "sources")
_READ_ONLY = ("id", "created_at", "updated_at")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_CACHE_NAME = "listening_topics"
_WRITE_ATTEMPTS = 4


class NotFound(LookupError):
    """No topic with that id (404)."""


class DuplicateName(Exception):
    """Another topic has that name (409)."""


class Busy(RuntimeError):
    """The topics kept changing under us (409: try again)."""


# --- validation -----------------------------------------------------------------------------------


def sources() -> Tuple[str, ...]:
    from chalicelib.api.views import CHANNELS

    return tuple(CHANNELS) + SEARCH_SOURCES


def _term(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string")
    term = " ".join(value.split())
    if not 1 <= len(term) <= MAX_TERM_CHARS or _CONTROL.search(term):
        raise ValueError(f"{where} must be 1 to {MAX_TERM_CHARS} printable characters")
    found = raw_tokens(term)
    if not found:
        raise ValueError(f"{where} has no letters or digits to match")
    if term[0] in "#@" and (len(found) != 1 or found[0] != term.lower()):
        raise ValueError(f"{where}: a hashtag or handle is one word after its # or @")
    if any(token[0] in "#@" for token in found) and len(found) > 1:
        raise ValueError(f"{where}: hashtags and handles are terms of their own, not part of a phrase")
    return term


def _terms(body: Dict[str, Any], name: str, required: bool) -> List[str]:
    value = body.get(name)
    if value is None:
        value = []
    if not isinstance(value, list):
        raise ValueError(f"{name} must be a list of terms")
    if required and not value:
        raise ValueError(f"{name} needs at least one term")
    if len(value) > MAX_TERMS:
        raise ValueError(f"{name} has more than {MAX_TERMS} terms")
    found: List[str] = []
    seen = set()
    for index, item in enumerate(value):
        term = _term(item, f"{name}[{index}]")
        if fold(term) not in seen:
            seen.add(fold(term))
            found.append(term)
    return found


def _codes(body: Dict[str, Any], name: str, allowed: Optional[Sequence[str]], limit: int) -> List[str]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > limit:
        raise ValueError(f"{name} must be a list of at most {limit} entries (empty or absent: all)")
    found: List[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ValueError(f"{name}[{index}] must be a string")
        if allowed is None:
            code = base_language(item)
            if code is None or code != item.strip().lower():
                raise ValueError(f"{name}[{index}] must be a two- or three-letter language code such as en, es, pt")
        elif item in allowed:
            code = item
        else:
            raise ValueError(f"{name}[{index}] must be one of {', '.join(allowed)}")
        if code not in found:
            found.append(code)
    return sorted(found)


def validate(body: Any) -> Dict[str, Any]:
    """The API body as a clean topic document; ValueError names the first problem (400)."""
    from chalicelib.documents import named_document

    name = named_document(body, FIELDS + _READ_ONLY, MAX_NAME_CHARS)
    doc = {"name": name, "include": _terms(body, "include", True), "exclude": _terms(body, "exclude", False),
           "languages": _codes(body, "languages", None, MAX_LANGUAGES),
           "sources": _codes(body, "sources", sources(), len(sources()))}
    overlap = {fold(t) for t in doc["include"]} & {fold(t) for t in doc["exclude"]}
    if overlap:
        raise ValueError(f"a term cannot be both included and excluded: {sorted(overlap)[0]}")
    if "x_search" in doc["sources"]:
        from chalicelib.listening.x_search import x_query

        x_query(doc["include"], doc["exclude"], doc["languages"])
    return doc


# --- matching --------------------------------------------------------------------------------------


Term = Tuple[str, Any]  # ("tag", "#refund") or ("words", ("refund",)) stemmed for one language


@dataclass
class Topic:
    """A compiled topic. Word terms are stemmed per message language on first use."""

    topic_id: str
    name: str
    include: Tuple[str, ...]
    exclude: Tuple[str, ...]
    languages: FrozenSet[str]
    sources: FrozenSet[str]
    _compiled: Dict[str, Tuple[Tuple[Term, ...], Tuple[Term, ...]]] = field(default_factory=dict, repr=False)

    def applies_to(self, language: Optional[str], source: str) -> bool:
        if self.sources and source not in self.sources:
            return False
        return not self.languages or language in self.languages

    def _terms(self, language: Optional[str]) -> Tuple[Tuple[Term, ...], Tuple[Term, ...]]:
        key = language or ""
        found = self._compiled.get(key)
        if found is None:
            found = (tuple(_compile(t, language) for t in self.include),
                     tuple(_compile(t, language) for t in self.exclude))
            self._compiled[key] = found
        return found

    def matches(self, text: Tokens, language: Optional[str]) -> bool:
        include, exclude = self._terms(language)
        return any(_hit(t, text) for t in include) and not any(_hit(t, text) for t in exclude)


def _compile(term: str, language: Optional[str]) -> Term:
    if term[0] in "#@":
        return ("tag", fold(term))
    return ("words", tuple(stem(word, language) for word in raw_tokens(term)))


def _hit(term: Term, text: Tokens) -> bool:
    kind, value = term
    return value in text.tags if kind == "tag" else contains(text.words, value)


def topic_from(doc: Dict[str, Any]) -> Topic:
    return Topic(doc["id"], doc["name"], tuple(doc["include"]), tuple(doc.get("exclude") or ()),
                 frozenset(doc.get("languages") or ()), frozenset(doc.get("sources") or ()))


def match(text: Optional[str], language: Optional[str], source: str,
          topics: Optional[Sequence[Topic]] = None) -> List[str]:
    """Names of the topics a text matches (in the admin's order), for a message in `language`
    (None: unknown; words are then compared folded but unstemmed) from `source`."""
    if not text:
        return []
    candidates = [t for t in (stored_topics() if topics is None else topics) if t.applies_to(language, source)]
    if not candidates:
        return []
    words = tokens(text[:5000], language)
    return [t.name for t in candidates if t.matches(words, language)]


# --- storage ---------------------------------------------------------------------------------------


def _document() -> Tuple[List[Dict[str, Any]], Optional[int]]:
    """(topics, version) as stored; ([], None) before the first topic."""
    from pynamodb.exceptions import DoesNotExist

    from chalicelib.models import ListeningRecord

    try:
        item = ListeningRecord.get("topics", "all", consistent_read=True)
    except DoesNotExist:
        return [], None
    return list((item.data or {}).get("topics") or []), int(item.version or 0)


def _save(topics: List[Dict[str, Any]], version: Optional[int], now_ms: int) -> bool:
    """Conditional put on the version read; False when someone else wrote first."""
    from pynamodb.exceptions import PutError

    from chalicelib.models import ListeningRecord

    condition = ListeningRecord.pk.does_not_exist() if version is None else ListeningRecord.version == version
    try:
        ListeningRecord("topics", "all", data={"topics": topics}, version=(version or 0) + 1, at=now_ms).save(
            condition=condition)
    except PutError as error:
        if getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException":
            return False
        raise
    forget()
    return True


def _edit(change: Any, now_ms: int) -> Any:
    """Read, change (may raise), write under the version read; again if another admin won."""
    for _ in range(_WRITE_ATTEMPTS):
        current, version = _document()
        updated, answer = change([dict(t) for t in current])
        if _save(updated, version, now_ms):
            return answer
    raise Busy("topics kept changing; try again")


def _unique(topics: List[Dict[str, Any]], name: str, own_id: Optional[str] = None) -> None:
    if any(fold(t["name"]) == fold(name) and t["id"] != own_id for t in topics):
        raise DuplicateName(name)


def list_topics() -> List[Dict[str, Any]]:
    return _document()[0]


def create_topic(body: Any, now_ms: int) -> Dict[str, Any]:
    """Validate and store a new topic. ValueError (400), DuplicateName (409)."""
    doc = validate(body)

    def change(topics: List[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
        _unique(topics, doc["name"])
        if len(topics) >= MAX_TOPICS:
            raise ValueError(f"at most {MAX_TOPICS} topics: delete one first")
        created = dict(doc, id="tp_" + uuid.uuid4().hex[:16], created_at=now_ms, updated_at=now_ms)
        return topics + [created], created

    return _edit(change, now_ms)


def replace_topic(topic_id: str, body: Any, now_ms: int) -> Dict[str, Any]:
    """Replace a topic whole (PUT). NotFound (404), ValueError (400), DuplicateName (409)."""
    doc = validate(body)

    def change(topics: List[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
        index = _index(topics, topic_id)
        _unique(topics, doc["name"], topic_id)
        topics[index] = dict(doc, id=topic_id, created_at=topics[index].get("created_at"), updated_at=now_ms)
        return topics, topics[index]

    return _edit(change, now_ms)


def delete_topic(topic_id: str, now_ms: int) -> None:
    def change(topics: List[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], None]:
        index = _index(topics, topic_id)
        return topics[:index] + topics[index + 1:], None

    _edit(change, now_ms)


def _index(topics: List[Dict[str, Any]], topic_id: str) -> int:
    for index, topic in enumerate(topics):
        if topic.get("id") == topic_id:
            return index
    raise NotFound(topic_id)


def forget() -> None:
    from chalicelib.runtime import runtime

    runtime.remember(_CACHE_NAME, None)


def stored_topics() -> Tuple[Topic, ...]:
    """The compiled topics: one GetItem per TOPIC_CACHE_SECONDS per container. A stored topic
    that no longer validates (hand-edited) is skipped and logged, never fatal."""
    from chalicelib.runtime import runtime

    cached = runtime.cached(_CACHE_NAME)
    now = time.monotonic()
    if cached is not None and now - cached[0] < TOPIC_CACHE_SECONDS:
        return cached[1]
    compiled: List[Topic] = []
    for doc in _document()[0]:
        try:
            compiled.append(topic_from(dict(validate({k: doc.get(k) for k in FIELDS}), id=doc["id"])))
        except (ValueError, KeyError, TypeError) as error:
            from chalicelib.logs import logger

            logger.warning("listening topic skipped", extra={"topic_id": str(doc.get("id"))[:64],
                                                             "reason": str(error)[:200]})
    found = tuple(compiled)
    runtime.remember(_CACHE_NAME, (now, found))
    return found
