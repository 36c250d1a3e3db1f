"""The listening report (`GET /api/reports/topics`): topics and sentiment over time, share of
voice between topics (ours against a competitor's: the caller names the topics to compare), and
top authors, over the found posts and mentions of a period.

Reads are bounded and never a Scan: listening items are keyed by the post's time
(`pk` "items", `sk` "<13-digit ms>-<hash>", chalicelib.listening.items), so a period is one key
range of one Query, read in pages of PAGE_SIZE and at most MAX_ITEMS items (MAX_ITEMS /
PAGE_SIZE requests). Past that the report says `truncated` and up to when it counted, rather
than reading on. Aggregation happens here, in one pass, in the period's time zone (days are
local days). A dismissed item still counts: dismissing means "nothing to do", not "not said".
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, Iterable, List, Optional, Sequence

from chalicelib.listening.sentiment import LABELS

PAGE_SIZE = 500
MAX_ITEMS = 20_000
MAX_COMPARED = 10
TOP_AUTHORS = 10
ALL = "(all)"


def _blank() -> Dict[str, int]:
    return dict({label: 0 for label in LABELS}, total=0)


def _count(counts: Dict[str, int], label: Optional[str]) -> None:
    counts["total"] += 1
    counts[label if label in LABELS else "unscored"] += 1


def parse_compare(value: Optional[str]) -> Optional[List[str]]:
    """`compare=Ours,Competitor`: the topic names whose share of voice is compared (absent: all
    topics). ValueError for a list that is empty, too long, or holds an unusable name."""
    if value is None:
        return None
    names = [" ".join(n.split()) for n in value.split(",")]
    names = [n for n in names if n]
    if not 2 <= len(names) <= MAX_COMPARED or len(set(n.casefold() for n in names)) != len(names):
        raise ValueError(f"compare names 2 to {MAX_COMPARED} different topics, comma-separated")
    for name in names:
        if len(name) > 80 or any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in name):
            raise ValueError("compare: a topic name is 1 to 80 printable characters")
    return names


def report(from_ms: int, to_ms: int, tz: Any, compare: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """The report over posts made in [from_ms, to_ms), days in `tz` (a tzinfo)."""
    found = _read(from_ms, to_ms)
    days: Dict[str, Dict[str, Any]] = {}
    topics: Dict[str, Dict[str, int]] = {}
    authors: Dict[tuple, Dict[str, Any]] = {}
    read = 0
    last_at: Optional[int] = None
    for item in found:
        read += 1
        data = dict(item.data or {})
        at = int(data.get("created_at") or item.sk[:13])
        last_at = at
        label = item.label
        day = datetime.fromtimestamp(at / 1000, tz=tz).date().isoformat()
        bucket = days.setdefault(day, {"date": day, "all": _blank(), "topics": {}})
        _count(bucket["all"], label)
        for name in item.topics or []:
            _count(bucket["topics"].setdefault(name, _blank()), label)
            _count(topics.setdefault(name, _blank()), label)
        _author(authors, item.source, data, label)
    compared = _share(topics, compare)
    return {
        "days": [days[d] for d in sorted(days)],
        "topics": [dict(counts, name=name) for name, counts in sorted(topics.items(), key=lambda kv: -kv[1]["total"])],
        "share_of_voice": compared,
        "top_authors": sorted(authors.values(), key=lambda a: (-a["posts"], -(a["followers"] or 0), a["handle"]))[
            :TOP_AUTHORS],
        "items_read": read,
        "truncated": read >= MAX_ITEMS,
        "counted_until_ms": last_at if read >= MAX_ITEMS else None,
    }


def _author(authors: Dict[tuple, Dict[str, Any]], source: Optional[str], data: Dict[str, Any],
            label: Optional[str]) -> None:
    who = data.get("author") or {}
    handle = who.get("handle")
    if not isinstance(handle, str) or not handle:
        return
    platform = str(data.get("platform") or "")
    entry = authors.setdefault((platform, handle.casefold()), {
        "platform": platform, "handle": handle, "name": who.get("name"), "followers": None, "posts": 0,
        "negative": 0})
    entry["posts"] += 1
    entry["negative"] += int(label == "negative")
    followers = who.get("followers")
    if isinstance(followers, int) and not isinstance(followers, bool):
        entry["followers"] = max(entry["followers"] or 0, followers)


def _share(topics: Dict[str, Dict[str, int]], compare: Optional[Sequence[str]]) -> List[Dict[str, Any]]:
    """Each compared topic's posts as a share of all the compared topics' posts (percent), and
    its own negative share: "they talk about us twice as much, and more angrily"."""
    folded = {name.casefold(): name for name in topics}
    names = [folded.get(n.casefold(), n) for n in compare] if compare else list(topics)
    whole = sum(topics.get(n, {"total": 0})["total"] for n in names)
    rows = []
    for name in names:
        counts = topics.get(name, _blank())
        rows.append({"name": name, "posts": counts["total"],
                     "share": round(100.0 * counts["total"] / whole, 1) if whole else None,
                     "negative_share": round(100.0 * counts["negative"] / counts["total"], 1)
                     if counts["total"] else None})
    return rows


def _read(from_ms: int, to_ms: int) -> Iterable[Any]:
    """The items of the period, oldest first: one key range, at most MAX_ITEMS."""
    from chalicelib.listening.items import PK
    from chalicelib.models import ListeningRecord

    low, high = f"{max(0, from_ms):013d}", f"{max(0, to_ms - 1):013d}~"
    return ListeningRecord.query(PK, ListeningRecord.sk.between(low, high), limit=MAX_ITEMS, page_size=PAGE_SIZE)


def csv_rows(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """One row per day and topic (and `(all)` per day): the spreadsheet's download."""
    rows = []
    for day in result["days"]:
        for name, counts in [(ALL, day["all"])] + sorted(day["topics"].items()):
            rows.append(dict({"date": day["date"], "topic": name}, **counts))
    return rows


def to_csv(rows: List[Dict[str, Any]]) -> str:
    """CSV whose text cells cannot start a spreadsheet formula (topic names are admins' text, but
    a cell starting with = + - @ is neutralised with a leading apostrophe all the same)."""
    import csv
    import io

    fields = ["date", "topic", "total", *LABELS]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\r\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("'" + v if isinstance(v, str) and v[:1] in "=+-@\t\r" else v) for k, v in row.items()})
    return out.getvalue()
