"""Search across contact names, handles and message text without a Scan.

Index (models.SearchToken, table `search-tokens`): partition "t#<token>", sort key
"<13-digit ms>#<conversation id>", so each token lists its conversations newest first.
- Contact names and handles: every word, plus its prefixes of 2..6 characters (type-ahead on
  names: "ana", "sou" find "Ana Souza"), written when the conversation is created and when the
  platform tells us a new name.
- Message text: whole words, very common words skipped, at most MAX_WORDS per batch, the most
  telling first (words with digits: order numbers; then the longest): every word is one write
  unit, and realistic 25-40-word messages hold 15-25 distinct words (issue 21).
  A customer's text is never written as it arrives (a new conversation's first message
  included: that was 8 of its 19 write units): every turn's messages (the customer's, and the
  message of ours that answers it) are indexed together, de-duplicated, in one batch of at most
  MAX_WORDS when the turn ends (our reply, or the wait ended otherwise: resolved, pending,
  snoozed), so a word is written once per turn. Until then the turn is found another way: a
  search also reads the newest open conversations of the caller's teams from the recency index
  (at most UNINDEXED_ROWS per team, one Query each) and matches the waiting ones' latest message
  preview and contact name (`unindexed`), so a brand-new unanswered conversation is found by a
  word of its message at once. Our messages that end no turn (a second reply, or a message
  sent from the platform's own app while nothing is due: we only see its echo) are indexed as
  they are stored (`on_ours`), since no turn end would ever cover them.
- Each text is indexed once. The echo of a reply socialinbox stored never reaches these hooks: it
  lands on that reply (chalicelib.inbox.outbound.claim_echo), or is a duplicate of the message ref
  the send's answer wrote, so it writes no token (tests/test_search.py counts them).
A search is at most MAX_TERMS Queries (each at most PER_TOKEN items, newest first), one BatchGetItem
of the page, and one Query per team (at most MAX_TEAMS) for the waiting conversations: bounded
whatever the table size. Indexing never fails the write it
follows (errors are logged).

All writes come from chalicelib.inbox.store through the hooks `on_message`, `on_ours` and `on_logged`.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set

from chalicelib.logs import describe_error, logger

MAX_TERMS = 3
PER_TOKEN = 200  # index entries read per query term (newest first)
MAX_WORDS = 8  # distinct words written per message (or per ended turn): one WRU each
MAX_NAME_TOKENS = 24
PREFIX_MIN, PREFIX_MAX = 2, 6
WORD_MIN, WORD_MAX = 2, 32
TURN_MESSAGES = 50  # messages of an ended turn read to index them
UNINDEXED_ROWS = 100  # newest open conversations read per team to match the unindexed waiting ones
MAX_TEAMS = 20  # teams whose waiting conversations a search reads
STOP_WORDS = frozenset("""a an and are as at be but by do for from has have hi hello i in is it me my no not of on or
please so thanks thank that the this to was we what with you your yes ok""".split())
_WORD = re.compile(r"\w+")


def normalise(text: str) -> str:
    """NFKD, accents dropped, case folded: "Zoë" and "zoe" are the same token."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: Optional[str]) -> List[str]:
    if not text:
        return []
    found: List[str] = []
    for word in _WORD.findall(normalise(text[:20_000])):
        if WORD_MIN <= len(word) <= WORD_MAX and word not in found:
            found.append(word)
    return found


def text_tokens(texts: Iterable[Optional[str]], already: Iterable[str] = ()) -> List[str]:
    """The words of `texts` worth a write, at most MAX_WORDS, not in `already` (written for this
    turn): words with a digit first, then the longest (rarer, so what people search for), ties in
    the order they appear."""
    skip = set(already) | STOP_WORDS
    found: List[str] = []
    for text in texts:
        for word in words(text):
            if word not in skip and word not in found:
                found.append(word)
    ranked = sorted(range(len(found)), key=lambda i: (not any(c.isdigit() for c in found[i]), -len(found[i]), i))
    return [found[i] for i in ranked[:MAX_WORDS]]


def name_tokens(*names: Optional[str]) -> List[str]:
    found: List[str] = []
    for name in names:
        for word in words(name) + words((name or "").replace("_", " ")):
            if not WORD_MIN <= len(word) <= WORD_MAX:
                continue
            for size in list(range(PREFIX_MIN, min(PREFIX_MAX, len(word) - 1) + 1)) + [len(word)]:
                token = word[:size]
                if token not in found:
                    found.append(token)
    return found[:MAX_NAME_TOKENS]


def write(conversation_id: str, tokens: Sequence[str], at: int) -> int:
    """One index entry per token (BatchWriteItem, 25 a request); returns the entries written."""
    from chalicelib.models import SearchToken

    if not tokens:
        return 0
    rank = f"{int(at):013d}#{conversation_id}"
    with SearchToken.batch_write() as batch:
        for token in tokens:
            batch.save(SearchToken("t#" + token, rank, conversation_id=conversation_id, at=int(at)))
    return len(tokens)


def on_message(conversation_id: str, event: Any, names: bool, ends_turn: bool = False) -> None:
    """Hook (store): a platform's message stored on the logged path (a new conversation, one that
    starts a turn, ...); with `names`, the contact's name and handle are (re)indexed too. A
    customer's text waits for its turn's end (on_logged), like ours that ends one; ours outside
    any turn is indexed at once."""
    try:
        inbound = getattr(event, "direction", "in") == "in"
        tokens = text_tokens([event.text]) if not inbound and not ends_turn else []
        if names:
            named = name_tokens(event.contact.display_name, event.contact.handle)
            tokens = named + [t for t in tokens if t not in named]
        write(conversation_id, tokens, event.sent_at_ms)
    except Exception as error:  # noqa: BLE001 - search is best effort; the message is stored
        logger.warning("search index not written", extra={"conversation_id": conversation_id,
                                                          "error": describe_error(error)})


def on_ours(conversation_id: str, text: Optional[str], at: int) -> None:
    """Hook (store): a message of ours that ends no turn (nothing was due), stored on the
    one-write path or the logged one: its words now, as no turn end will index them."""
    try:
        write(conversation_id, text_tokens([text]), at)
    except Exception as error:  # noqa: BLE001 - search is best effort; the message is stored
        logger.warning("search index not written", extra={"conversation_id": conversation_id,
                                                          "error": describe_error(error)})


def on_logged(conversation_id: str, before: Dict[str, Any], after: Dict[str, Any], entry: Any) -> None:
    """Hook (store): when a customer's wait ends or leaves the open queue (our reply; resolved,
    pending or snoozed, also with the clock paused), the turn's messages (the customer's, our
    reply) are indexed together, de-duplicated: `unindexed` finds only open ones."""
    since = before.get("awaiting_reply_since")
    if since is None or (before.get("status") or "open") != "open" or \
            (after.get("awaiting_reply_since") is not None and (after.get("status") or "open") == "open"):
        return
    try:
        from chalicelib.models import Message

        messages = list(Message.query(conversation_id, Message.sort_key >= f"{int(since):013d}#",
                                      limit=TURN_MESSAGES, page_size=TURN_MESSAGES))
        texts = [m.text for m in messages if not m.removed]
        write(conversation_id, text_tokens(texts), int(after.get("last_message_at") or since))
    except Exception as error:  # noqa: BLE001
        logger.warning("search index of a turn not written", extra={"conversation_id": conversation_id,
                                                                    "error": describe_error(error)})


class BadSearch(ValueError):
    pass


def query_terms(q: Any) -> List[str]:
    if not isinstance(q, str) or not q.strip() or len(q) > 200:
        raise BadSearch("q must be 1 to 200 characters")
    if re.search(r"[\ud800-\udfff\x00-\x1f\x7f]", q):
        raise BadSearch("q contains characters that cannot be searched")
    terms = [w for w in words(q) if w not in STOP_WORDS] or words(q)
    if not terms:
        raise BadSearch(f"q needs a word of at least {WORD_MIN} letters or digits")
    # The longest (most selective) terms when there are more than MAX_TERMS.
    return sorted(terms, key=len, reverse=True)[:MAX_TERMS]


def search(q: Any, limit: int, teams: Iterable[str] = ()) -> List[Any]:
    """Conversations matching every term: the waiting conversations of `teams` whose turn is not
    indexed yet (latest activity first), then the index's, newest entry first. At most MAX_TERMS
    Queries, one Query per team and one BatchGetItem."""
    from chalicelib.models import Conversation, SearchToken

    terms = query_terms(q)
    indexed: Dict[str, List[str]] = {}
    for term in terms:
        ids = indexed.setdefault(term, [])
        for item in SearchToken.query("t#" + term, scan_index_forward=False, limit=PER_TOKEN, page_size=PER_TOKEN):
            if item.conversation_id not in ids:
                ids.append(item.conversation_id)
    waiting = unindexed(terms, teams, {term: set(ids) for term, ids in indexed.items()})
    ordered = [i for i in indexed[terms[0]] if all(i in indexed[t] for t in terms[1:]) and i not in waiting]
    page = (waiting + ordered)[:limit]
    if not page:
        return []
    found = {c.conversation_id: c for c in Conversation.batch_get(page)}
    return [found[i] for i in page if i in found]


def unindexed(terms: Sequence[str], teams: Iterable[str], indexed: Dict[str, Set[str]]) -> List[str]:
    """The open conversations of `teams` waiting for a reply (their turn's words are written when
    it ends) where every term is in the latest message's preview, the contact's name or handle,
    or the index (`indexed`: term -> conversation ids; earlier turns), latest activity first: the
    newest UNINDEXED_ROWS of each team's open queue on the recency index, whose rows carry the
    preview (one Query per team, at most MAX_TEAMS)."""
    from chalicelib.models import Conversation

    rows: List[Any] = []
    for team in sorted(set(teams))[:MAX_TEAMS]:
        rows += [row for row in Conversation.by_team_recent.query(
            f"{team}#open", scan_index_forward=False, limit=UNINDEXED_ROWS, page_size=UNINDEXED_ROWS)
            if row.awaiting_reply_since is not None]
    rows.sort(key=lambda row: -int(row.last_message_at or 0))
    found: List[str] = []
    for row in rows:
        have = set(words(row.last_message_preview)) | set(name_tokens(row.contact_name, row.contact_handle))
        if all(term in have or row.conversation_id in indexed.get(term, ()) for term in terms) \
                and row.conversation_id not in found:
            found.append(row.conversation_id)
    return found
