"""Sentiment of a short social text: VADER (vadersentiment, MIT; its lexicon ships in the wheel,
nothing is downloaded) for English, "unscored" for every language without a real offline
lexicon. Never a guess: a Spanish complaint scored with an English lexicon would read neutral.

VADER is imported and its lexicon parsed on the first English text of a container (~30 ms CPU,
bench/listening_bench.py), never at import time. Labels follow VADER's README thresholds:
compound >= 0.05 positive, <= -0.05 negative, neutral between.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Optional

LABELS = ("positive", "neutral", "negative", "unscored")
#: Languages a lexicon we ship covers.
SCORED_LANGUAGES = frozenset({"en"})
POSITIVE_AT = 0.05
NEGATIVE_AT = -0.05
#: VADER reads this much of a text (a long post's tone shows early; the cost grows with length).
MAX_CHARS = 2000
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)

_analyzer: Any = None


def _vader() -> Any:
    global _analyzer
    if _analyzer is None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        _analyzer = SentimentIntensityAnalyzer()
    return _analyzer


def label_of(compound: float) -> str:
    if compound >= POSITIVE_AT:
        return "positive"
    if compound <= NEGATIVE_AT:
        return "negative"
    return "neutral"


def unscored(language: Optional[str]) -> Dict[str, Any]:
    return {"label": "unscored", "score": None, "language": language, "corrected": False}


def score(text: Optional[str], language: Optional[str]) -> Dict[str, Any]:
    """The contract's sentiment object for a text in `language` (None: unknown). A text without
    letters (emoji, emoticons) is scored whatever its language: VADER's emoji and emoticon
    entries do not depend on one."""
    if not text or not text.strip():
        return unscored(language)
    if language not in SCORED_LANGUAGES and _LETTER.search(text):
        return unscored(language)
    compound = round(float(_vader().polarity_scores(text[:MAX_CHARS])["compound"]), 4)
    return {"label": label_of(compound), "score": compound, "language": language, "corrected": False}
