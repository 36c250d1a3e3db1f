"""Text normalisation shared by topic matching and language detection: tokens, case and accent
folding, and Snowball stemming per language (snowballstemmer, pure Python, imported on first use).

Order matters: lower-case, then stem (Snowball's French, Spanish, German... rules expect their
accents), then fold accents and case, so "Remboursés" and "remboursement" meet at "rembours",
and a topic term typed without accents still matches."""
from __future__ import annotations

import re
import unicodedata
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

#: Hashtags and handles keep their sigil; words are runs of letters/digits (apostrophes split).
TOKEN = re.compile(r"[#@][^\W_][\w]*|[^\W_]+", re.UNICODE)

#: ISO 639-1 code -> snowballstemmer module and class (the languages we stem).
STEMMERS: Dict[str, Tuple[str, str]] = {
    "en": ("english_stemmer", "EnglishStemmer"), "es": ("spanish_stemmer", "SpanishStemmer"),
    "fr": ("french_stemmer", "FrenchStemmer"), "de": ("german_stemmer", "GermanStemmer"),
    "pt": ("portuguese_stemmer", "PortugueseStemmer"), "it": ("italian_stemmer", "ItalianStemmer"),
    "nl": ("dutch_stemmer", "DutchStemmer"), "sv": ("swedish_stemmer", "SwedishStemmer"),
    "da": ("danish_stemmer", "DanishStemmer"), "no": ("norwegian_stemmer", "NorwegianStemmer"),
    "fi": ("finnish_stemmer", "FinnishStemmer"), "ru": ("russian_stemmer", "RussianStemmer"),
    "tr": ("turkish_stemmer", "TurkishStemmer"), "ro": ("romanian_stemmer", "RomanianStemmer"),
    "pl": ("polish_stemmer", "PolishStemmer"), "ca": ("catalan_stemmer", "CatalanStemmer"),
}
_STEM_CACHE_LIMIT = 50_000
_stemmers: Dict[str, Callable[[str], str]] = {}
_stem_cache: Dict[Tuple[str, str], str] = {}


def fold(text: str) -> str:
    """Case and accent folding: "Ça MARCHE" -> "ca marche"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def base_language(code: Optional[str]) -> Optional[str]:
    """"pt-BR" -> "pt"; None for nothing usable (X says "und" for undetermined)."""
    if not isinstance(code, str):
        return None
    base = code.strip().lower().replace("_", "-").split("-", 1)[0]
    return base if 2 <= len(base) <= 3 and base.isalpha() and base not in ("und", "zxx", "qme", "qht") else None


def _stemmer(language: Optional[str]) -> Optional[Callable[[str], str]]:
    if language not in STEMMERS:
        return None
    found = _stemmers.get(language)  # type: ignore[arg-type]
    if found is None:
        import importlib

        module, name = STEMMERS[language]  # type: ignore[index]
        found = getattr(importlib.import_module("snowballstemmer." + module), name)().stemWord
        _stemmers[language] = found  # type: ignore[index]
    return found


def stem(word: str, language: Optional[str]) -> str:
    """One lower-cased word, stemmed for `language` (unchanged when we have no stemmer for it),
    then folded. Cached per container: social vocabulary repeats."""
    key = (language or "", word)
    found = _stem_cache.get(key)
    if found is None:
        stemmer = _stemmer(language)
        found = fold(stemmer(word) if stemmer is not None else word)
        if len(_stem_cache) >= _STEM_CACHE_LIMIT:
            _stem_cache.clear()
        _stem_cache[key] = found
    return found


class Tokens(NamedTuple):
    """A text as topic matching sees it: stemmed words in order (hashtag bodies included, so the
    term "refund" matches "#refunds"), and the folded hashtags and handles with their sigil."""

    words: Tuple[str, ...]
    tags: frozenset  # "#refund", "@brand"


def raw_tokens(text: str) -> List[str]:
    """Lower-cased tokens (words, #tags, @handles) before stemming."""
    return TOKEN.findall(text.lower())


def tokens(text: str, language: Optional[str]) -> Tokens:
    words: List[str] = []
    tags = set()
    for token in raw_tokens(text):
        if token[0] in "#@":
            tags.add(fold(token))
            if token[0] == "#":
                words.append(stem(token[1:], language))
        else:
            words.append(stem(token, language))
    return Tokens(tuple(words), frozenset(tags))


def contains(words: Tuple[str, ...], phrase: Tuple[str, ...]) -> bool:
    """Whether `phrase` occurs in `words` as a contiguous run."""
    size = len(phrase)
    if size == 0:
        return False
    if size == 1:
        return phrase[0] in words
    first = phrase[0]
    return any(words[i] == first and words[i:i + size] == phrase for i in range(len(words) - size + 1))
