"""Which language a text is in: a support agent's question, a customer's ticket, a source.

MiniLM (the offline embedder) is an English model: a German question scores low against even the
right German article, so the knowledge agents search German sources first and relax their
similarity floor for German questions. Drafts follow the customer's language when the tenant has
sources in it (orchestrator/drafting.py).

Function-word lists are enough for the languages a European store's customers write in (English,
German, French, Dutch, Spanish, Italian): they are frequent, short and nearly disjoint, and
counting them costs nothing per turn. The lists hold only words that are not also common
English words ("die", "in", "is", "come" are left out). A tenant with more languages would plug
a real detector in here.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-zäöüßàâçéèêëîïôûùÿœæñáíóúì]+")
# Frequent German function words and support vocabulary that are not English words.
_GERMAN_WORDS = """
    der die das den dem des ein eine einen einem einer und oder aber ist sind war wird werden wie was
    wer wo wann warum welche welcher welches nicht kein keine keinen mit auf für von bei nach aus zum
    zur im ins vom über unter noch schon auch nur sehr kann können könnte darf dürfen muss müssen soll
    sollen ich du er sie wir ihr mein meine unser unsere ihre ihren kunde kunden kundin lange lang
    zeit tage werktage wochen monate kosten kostet versand lieferung rückgabe rücksendung retoure
    erstattung geld zurück zurückgeben zurückschicken bestellung bezahlt gibt gilt hat haben habe
    bitte danke frist porto gratis kostenlos hallo mir mich dass leider paket
"""
_FRENCH_WORDS = """
    le la les des du une et est sont pas je vous nous il elle ils mon ma mes votre vos notre ce cette
    ces avec pour dans sur que qui mais ou où très bien merci bonjour commande colis livraison
    remboursement retour suivi toujours depuis jours semaine reçu été avoir être fait peut pouvez
    ai avez suis êtes aussi encore quand comment pourquoi cordialement madame monsieur
"""
_DUTCH_WORDS = """
    het een ik niet wel mijn geen voor naar ook maar nog dat deze dit zijn hebben heb heeft
    bestelling pakket bedankt hallo groet groeten jullie wij hij zij je kunnen kan graag wanneer
    waarom hoe wat waar retour terugbetaling levering dagen alstublieft bent
"""
_SPANISH_WORDS = """
    el los las una y es mi mis con para por que pero está estoy pedido gracias hola usted ustedes
    su sus del al muy también cuando cómo dónde paquete envío devolución reembolso días saludos
"""
_ITALIAN_WORDS = """
    il lo gli una e è non mio mia miei con per che ma sono ho ordine pacco grazie ciao buongiorno
    della delle degli nel nella anche quando come dove perché spedizione reso rimborso giorni saluti
"""
_ENGLISH_WORDS = """
    i and not please the is my have has was a an with for still on we you it at me can how why when
    order package thanks hello dear regards this that what where there are be been will would could
    should your our they she he them her his of to in from did do does just but about got
"""
LEXICONS: dict[str, frozenset[str]] = {
    "de": frozenset(_GERMAN_WORDS.split()),
    "fr": frozenset(_FRENCH_WORDS.split()),
    "nl": frozenset(_DUTCH_WORDS.split()),
    "es": frozenset(_SPANISH_WORDS.split()),
    "it": frozenset(_ITALIAN_WORDS.split()),
}
_ENGLISH = frozenset(_ENGLISH_WORDS.split())
LANGUAGE_NAMES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "nl": "Dutch",
    "es": "Spanish",
    "it": "Italian",
}
_GERMAN_CHARS = re.compile(r"[äöüß]")
_MIN_QUESTION_WORDS = 2


def language_scores(text: str) -> tuple[dict[str, int], int, int]:
    """(function words per non-English language, English function words, all words) of `text`."""
    words = _WORD.findall((text or "").lower())
    scores = {lang: sum(w in lex for w in words) for lang, lex in LEXICONS.items()}
    return scores, sum(w in _ENGLISH for w in words), len(words)


def _best(scores: dict[str, int]) -> tuple[str, int]:
    lang = max(scores, key=lambda k: scores[k])
    return lang, scores[lang]


def detect_language(text: str) -> str:
    """The language of a short question ('de', 'fr', …), 'en' when nothing else reads stronger.

    A question is short: two function words that make up a quarter of it are enough."""
    scores, _, total = language_scores(text)
    lang, count = _best(scores)
    runner_up = max((v for k, v in scores.items() if k != lang), default=0)
    if count >= _MIN_QUESTION_WORDS and count >= total * 0.25 and count > runner_up:
        return lang
    # "die rückgabe": one German word and an umlaut in a very short question.
    if scores["de"] >= 1 and _GERMAN_CHARS.search((text or "").lower()) and total <= 6:
        return "de"
    return "en"


def text_language(text: str, *, min_words: int = 3) -> str:
    """The language of a longer text (a customer's messages, a source): the language with the
    most function words when it has at least `min_words` of them and more than English has
    ("Hallo, I think there is a mistake" stays English); else 'en'."""
    scores, english, _ = language_scores(text)
    lang, count = _best(scores)
    return lang if count >= min_words and count > english else "en"
