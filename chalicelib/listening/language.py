"""A small offline language detector for short social texts: common-word profiles of the
languages our customers write in most, plus letters only one of them uses.

Why not a model: py3langid needs numpy (tens of MB unzipped, ~100 ms to import) and lingua is
over Lambda's 250 MB limit; fastText models are downloaded or CC BY-SA. What sentiment needs is
"is this English?", answered with a margin, and "know" otherwise (then nothing is scored).
The platform's own language (X `lang`) always wins over this guess. Measured on
tests/fixtures/listening/sentiment_multilingual.jsonl (README "Listening").
"""
from __future__ import annotations

from typing import Dict, FrozenSet, Optional

from chalicelib.listening.text import fold, raw_tokens

_WORDS = {
    "en": """the a an and or but is are was were be been am i you he she it we they me my your our their this that
        these those to of in on at for with from by not no dont cant do does
        did have has had will would should could just so very really what when where why how who there here
        please thanks thank love hate good bad great awful help order still never ever again
        again today yesterday got get any all app account service support customer refund money time new
        about like im your been because""",
    "es": """el la los las un una unos unas y o pero es son era fue ser estoy está esta estan están que de del en
        con por para sin mi mis tu su sus nuestro nos me te se lo le les al como cuando donde porque muy más mas
        no sí si ya todavía nunca hola gracias por favor pedido cuenta dinero servicio atención ayuda hoy ayer
        nada todo bien mal malo buena bueno pésimo excelente quiero hace dos tres semana semanas días hay tengo
        tiene llevo dónde qué cuál""",
    "fr": """le la les l aujourd hui un une des et ou mais est sont était être je tu il elle nous vous ils elles mon ma mes ton
        ta votre vos notre nos leur ce cette ces qui que quoi de du dans sur avec pour par sans pas ne plus très
        bien mal toujours jamais encore merci bonjour commande compte argent service aide hier
        rien tout suis avez avons être depuis semaines jours où deux trois""",
    "de": """der die das ein eine einen dem den und oder aber ist sind war waren sein ich du er sie es wir ihr mein
        meine dein ihre unser nicht kein keine mit von zu bei für auf aus nach noch immer nie schon sehr gut
        schlecht danke bitte hallo bestellung konto geld kundenservice hilfe heute gestern nichts alles auch
        wo warum wie habe hat haben wird""",
    "pt": """o a os as um uma uns umas e ou mas é são era foi ser estou está que de do da dos das em no na nos nas
        com por para sem meu minha seu sua nosso não sim já ainda nunca olá obrigado obrigada pedido conta
        dinheiro serviço atendimento ajuda hoje ontem nada tudo bem mal muito mais você vocês há tem tenho
        semanas dias cadê duas obrigada""",
    "it": """il lo la i gli le un uno una e o ma è sono era essere io tu lui lei noi voi loro mio mia tuo tua suo
        sua nostro che di del della dei in nel nella con per senza non sì già ancora mai ciao grazie ordine
        conto soldi servizio assistenza aiuto oggi ieri niente tutto bene male molto più perché ho hai ha""",
    "nl": """de het een en of maar is zijn was waren ik jij je hij zij wij jullie mijn jouw ons onze niet geen met
        van voor op aan bij uit naar nog altijd nooit al heel erg goed slecht bedankt dank alsjeblieft hallo
        bestelling rekening geld klantenservice hulp vandaag gisteren niets alles ook waar waarom hoe heb""",
}
#: Accent-folded, so "donde" and "dónde" count alike.
_PROFILES: Dict[str, FrozenSet[str]] = {lang: frozenset(fold(w) for w in words.split()) for lang, words in _WORDS.items()}
#: How many profiles share each word: a shared word counts 1/k for each of them.
_SHARE: Dict[str, int] = {}
for _words in _PROFILES.values():
    for _word in _words:
        _SHARE[_word] = _SHARE.get(_word, 0) + 1
#: Letters that point at one language (a weaker hint than a word).
_LETTERS = {"ñ": "es", "¿": "es", "¡": "es", "ç": "fr", "œ": "fr", "ß": "de", "ä": "de", "ö": "de", "ü": "de",
            "ã": "pt", "õ": "pt", "ê": "pt", "ì": "it", "ò": "it", "ĳ": "nl"}

#: Evidence needed: the best language's score, and how far ahead of the second it must be.
MIN_SCORE = 1.0
MIN_MARGIN = 1.0
LANGUAGES = tuple(_PROFILES)


def detect(text: Optional[str]) -> Optional[str]:
    """ISO 639-1 code of the text's language, or None when the evidence is too thin or split
    (never a guess between two languages)."""
    if not text:
        return None
    scores = {lang: 0.0 for lang in _PROFILES}
    for token in raw_tokens(text[:2000]):
        if token[0] in "#@":
            continue
        token = fold(token)
        share = _SHARE.get(token)
        if share:
            for lang, words in _PROFILES.items():
                if token in words:
                    scores[lang] += 1.0 / share
    for ch in text[:2000].lower():
        lang = _LETTERS.get(ch)
        if lang is not None:
            scores[lang] += 0.5
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    (best, top), (_, second) = ranked[0], ranked[1]
    if top < MIN_SCORE or top - second < MIN_MARGIN:
        return None
    return best
