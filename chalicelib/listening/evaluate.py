"""How good the sentiment and language calls are on a labelled set: the hand-labelled
multilingual fixture, VADER's own rated tweets (bench/listening_bench.py) or the agents'
corrections (`GET /api/listening/corrections`). Pure: rows in, figures out."""
from __future__ import annotations

from typing import Any, Dict, Iterable, Optional

from chalicelib.listening import language as language_detector
from chalicelib.listening import sentiment


def evaluate(rows: Iterable[Dict[str, Any]], detect: bool = True) -> Dict[str, Any]:
    """Rows `{"text", "label", "language"}` (language: the truth, None for a text without one).
    With `detect` the language is detected as in production, else the truth is used (as when
    the platform says it). Figures:
    - `scored_accuracy`: right label among rows in a language we score (or without letters);
    - `negative_precision` / `negative_recall` on those rows;
    - `unscored_share_other`: share of rows in other languages left unscored (1.0 = never a guess);
    - `language_accuracy`, `language_unknown`, `language_wrong` over rows with a language."""
    scored = right = neg_called = neg_right = neg_true = 0
    other = other_unscored = 0
    with_language = lang_right = lang_unknown = lang_wrong = 0
    per_language: Dict[str, Dict[str, int]] = {}
    for row in rows:
        truth_language: Optional[str] = row.get("language")
        detected = language_detector.detect(row["text"]) if detect else truth_language
        if truth_language is not None:
            with_language += 1
            if detected == truth_language:
                lang_right += 1
            elif detected is None:
                lang_unknown += 1
            else:
                lang_wrong += 1
        call = sentiment.score(row["text"], detected)["label"]
        bucket = per_language.setdefault(truth_language or "none", {"rows": 0, "unscored": 0, "right": 0})
        bucket["rows"] += 1
        bucket["unscored"] += call == "unscored"
        bucket["right"] += call == row["label"]
        if truth_language is None or truth_language in sentiment.SCORED_LANGUAGES:
            scored += 1
            right += call == row["label"]
            neg_called += call == "negative"
            neg_true += row["label"] == "negative"
            neg_right += call == "negative" and row["label"] == "negative"
        else:
            other += 1
            other_unscored += call == "unscored"
    return {
        "rows": scored + other,
        "scored_rows": scored,
        "scored_accuracy": _ratio(right, scored),
        "negative_precision": _ratio(neg_right, neg_called),
        "negative_recall": _ratio(neg_right, neg_true),
        "unscored_share_other": _ratio(other_unscored, other),
        "language_accuracy": _ratio(lang_right, with_language),
        "language_unknown": lang_unknown,
        "language_wrong": lang_wrong,
        "per_language": per_language,
    }


def _ratio(part: int, whole: int) -> Optional[float]:
    return round(part / whole, 3) if whole else None
