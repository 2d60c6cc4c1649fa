"""Which language a support agent's question is in (English or German: the demo tenant's two).

MiniLM (the offline embedder) is an English model: a German question scores low against even the
right German article, so the knowledge agents search German sources first and relax their
similarity floor for German questions. A word list is enough for two languages this far apart
and costs nothing per turn; a tenant with more languages would plug a real detector in here.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-zäöüß]+")
# Frequent German function words and support vocabulary that are not English words.
_GERMAN_WORDS = """
    der die das den dem des ein eine einen einem einer und oder aber ist sind war wird werden wie was
    wer wo wann warum welche welcher welches nicht kein keine keinen mit auf für von bei nach aus zum
    zur im ins vom über unter noch schon auch nur sehr kann können könnte darf dürfen muss müssen soll
    sollen ich du er sie wir ihr mein meine unser unsere ihre ihren kunde kunden kundin lange lang
    zeit tage werktage wochen monate kosten kostet versand lieferung rückgabe rücksendung retoure
    erstattung geld zurück zurückgeben zurückschicken bestellung bezahlt gibt gilt hat haben habe
    bitte danke frist porto gratis kostenlos hallo
"""
_GERMAN = frozenset(_GERMAN_WORDS.split())
_GERMAN_CHARS = re.compile(r"[äöüß]")
_MIN_GERMAN_WORDS = 2


def detect_language(text: str) -> str:
    """'de' when the text reads as German, else 'en'."""
    words = _WORD.findall((text or "").lower())
    german = sum(w in _GERMAN for w in words)
    if german >= _MIN_GERMAN_WORDS and german >= len(words) * 0.25:
        return "de"
    if german >= 1 and _GERMAN_CHARS.search(text.lower()) and len(words) <= 6:
        return "de"
    return "en"
