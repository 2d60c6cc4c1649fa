"""Which fields of a structured record a question asks for, and the record's lines that say them.

Structured agents (orders, products, customers) render a record as short, self-contained
sentences, one per line, each tagged with the fields it states (`Line`). The question picks the
fields (`asked`, from a small table of keywords and regexes per record kind, English and German)
and `select` returns the lines that answer it: those become `Evidence.facts`, which synthesis
states first. Nothing here knows a benchmark question: the tables name ways of asking for a
field, and an unknown ask falls back to the record's default fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# --- rendered lines ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One rendered sentence and the fields it states."""

    text: str
    fields: frozenset[str]

    @classmethod
    def of(cls, text: str, *fields: str) -> Line:
        return cls(text, frozenset(fields))


def join(lines: Iterable[Line]) -> str:
    return "\n".join(line.text for line in lines)


def select(
    lines: Sequence[Line],
    asked_fields: Iterable[str],
    default: Iterable[str] = (),
    always: Iterable[str] = (),
) -> tuple[str, ...]:
    """The lines stating an asked field, in text order; the `default` fields' lines when no
    line states one (an unknown ask, or a field this record does not have). Lines tagged with
    an `always` field (e.g. "this order belongs to someone else") are kept whatever was asked."""
    wanted = set(asked_fields)
    keep = set(always)
    chosen = [ln for ln in lines if ln.fields & wanted]
    if not chosen:
        fallback = set(default)
        chosen = [ln for ln in lines if ln.fields & fallback]
    chosen_set = {id(ln) for ln in chosen}
    out = [ln.text for ln in lines if id(ln) in chosen_set or ln.fields & keep]
    return tuple(dict.fromkeys(out))


# --- the question ------------------------------------------------------------------------------------
# What routers append to an agent's query: "(order BO-100693)" (orchestrator/routing/queries.py
# `enhance`), "(about: Lumo Outdoor Smart Plug (LU-603))" (a follow-up's reference, orchestrator/
# context.py), "(order delivered: Stormline Rain Shell)" (`_with_prior`), "— ticket: <subject>".
# Fields are chosen from the question, never from this context; the context can still say
# which record "it" is.
_CONTEXT_HEADS = ("order ", "orders ", "about:")
_TICKET_SUFFIX_RE = re.compile(r"\s+[—–]\s+ticket:\s.*$", re.DOTALL)


def _trailing_group(text: str) -> int | None:
    """Where the balanced "(...)" that ends `text` starts (names may hold parentheses)."""
    if not text.endswith(")"):
        return None
    depth = 0
    for i in range(len(text) - 1, -1, -1):
        if text[i] == ")":
            depth += 1
        elif text[i] == "(":
            depth -= 1
            if depth == 0:
                return i
    return None


def split_query(query: str) -> tuple[str, list[str]]:
    """(the question, the context groups appended to it, in order): "is it in stock? (about:
    Lumo Hub (LU-601))" → ("is it in stock?", ["about: Lumo Hub (LU-601)"])."""
    text, context = query.strip(), []
    while True:
        m = _TICKET_SUFFIX_RE.search(text)
        if m and m.start() > 0:
            context.insert(0, text[m.start() :].strip(" —–"))
            text = text[: m.start()].rstrip()
            continue
        start = _trailing_group(text)
        if start is None or not text[:start].strip():
            return text, context
        inner = text[start + 1 : -1].strip()
        if not inner.lower().startswith(_CONTEXT_HEADS):
            return text, context
        context.insert(0, inner)
        text = text[:start].rstrip()


def question_text(query: str, ctx: Any = None) -> str:
    """The agent's own question: `ctx.question` when the orchestrator passes the original, else
    the query without the context routers append."""
    original = getattr(ctx, "question", None) if ctx is not None else None
    if isinstance(original, str) and original.strip():
        return original.strip()
    return split_query(query)[0]


def about_context(query: str) -> str:
    """What a follow-up points at, as the orchestrator spelled it out ("" when nothing)."""
    for part in split_query(query)[1]:
        if part.lower().startswith("about:"):
            return part[len("about:") :].strip()
    return ""


# --- ask tables ------------------------------------------------------------------------------------
AskTable = Mapping[str, Sequence[str]]


_COMPILED: dict[int, tuple[AskTable, list[tuple[str, re.Pattern[str]]]]] = {}


def _compile(table: AskTable) -> list[tuple[str, re.Pattern[str]]]:
    cached = _COMPILED.get(id(table))
    if cached is not None and cached[0] is table:
        return cached[1]
    compiled = [
        (f, re.compile("|".join(f"(?:{p})" for p in pats), re.IGNORECASE)) for f, pats in table.items()
    ]
    _COMPILED[id(table)] = (table, compiled)
    return compiled


def asked(question: str, table: AskTable) -> set[str]:
    """The fields of `table` the question asks for."""
    q = " ".join(question.lower().split())
    return {f for f, rx in _compile(table) if rx.search(q)}


# Orders. Each value: regexes over the lower-cased question (\b-bounded; German included).
ORDER_ASKS: AskTable = {
    "status": [
        r"\bstatus\b",
        r"\bwhere('s| is| are)\b(?!.*\b(based|located|from|live[sd]?|living)\b)",
        r"\bwhat happened\b",
        r"\bupdate on\b",
        r"\b(stuck|late|delayed|delay|lost)\b",
        r"\bwhen will\b",
        r"\bon (its|the) way\b",
        r"\bin transit\b",
        r"\bwo (ist|bleibt)\b",
        r"\bstand\b",
        r"\bverspät\w*",
    ],
    "shipment": [
        r"\b(has|have|did|was|is) (it|they|the \w+( \w+){0,3}|this|that|her|his|their|the order) (been )?(ship|shipped|dispatched|sent)\b",
        r"\bship(ped)?\b(?! to)",
        r"\b(go|goes|went|gone) out\b",
        r"\bdispatch\w*",
        r"\bsent out\b",
        r"\bleft the warehouse\b",
        r"\b(in transit|on (its|the) way)\b",
        r"\bparcels?\b",
        r"\bpackages?\b",
        r"\bversand\w*",
        r"\bversandt\b",
        r"\bverschickt\b",
        r"\bversendet\b",
        r"\bunterwegs\b",
        r"\bpakete?\b",
    ],
    "tracking": [
        r"\btrack\w*",
        r"\bparcel number\b",
        r"\bsendungs\w*",
        r"\bverfolg\w*",
    ],
    "carrier": [
        r"\bcarrier\b",
        r"\bcourier\b",
        r"\b(dhl|dpd|ups|postnl|gls|van der berg)\b",
        r"\bwho (is|was) (delivering|shipping|bringing)\b",
        r"\bwhich (company|service|delivery)\b",
        r"\b(versanddienstleister|paketdienst|zusteller|spedition)\b",
    ],
    "delivered": [
        r"\bdeliver(ed|y|ies)?\b",
        r"\barriv\w*",
        r"\breceived?\b",
        r"\bget (it|there)\b",
        r"\b(zugestellt|geliefert|lieferung|angekommen|erhalten)\b",
    ],
    "placed": [
        r"\bplaced\b",
        r"\border(ed)? (on|date)\b",
        r"\bwhen (did|was|were|has) (she|he|they|the customer|the requester|it|this|that|the order|the \w+) "
        r"(\w+ )?(order|ordered|buy|bought|purchase|purchased|placed)\b",
        r"\bpurchase date\b",
        r"\b(bestellt|bestelldatum|gekauft)\b",
    ],
    "items": [
        r"\bitems?\b",
        r"\bproducts?\b",
        r"\bwhat('s| has| have| did) (she|he|they|the customer|the requester) (order|ordered|buy|bought|get|got)\b",
        r"\bwhat (was|is|were) (ordered|bought|in (it|the order|the parcel))\b",
        r"\bwhat('s| is| was| were) (in|on|inside) (\w+ )?(order|parcel|package|box|it)\b",
        r"\b(contents?|sizes?|variant|colou?r|quantity)\b",
        r"\bhow many (items|units|pieces|of)\b",
        r"\b(artikel|produkte?|größe|menge|was wurde bestellt)\b",
    ],
    "payment": [
        r"\bpa(y|id|ying|yment)\b",
        r"\b(card|credit card|paypal|klarna|ideal|bancontact|apple pay|google pay|visa|mastercard|amex|american express|invoice)\b",
        r"\bcharged?\b",
        r"\b(bezahlt|zahlung\w*|zahlungsart|karte|rechnung)\b",
    ],
    "total": [
        r"\bhow much\b(?!.*\b(weigh\w*|hold|holds|load|power|water|space|room)\b)",
        r"\btotal\b",
        r"\bamount\b",
        r"\bcost\b",
        r"\bspen[dt]\b",
        r"\bprice\b",
        r"\bwie ?viel\b",
        r"\b(betrag|summe|kosten|gesamt\w*|preis)\b",
    ],
    "charges": [
        r"\bshipping (cost|fee|charge|price)s?\b",
        r"\b(pay|paid|paying|charged?) (for |him |her |them )?(the )?shipping\b",
        r"\bshipping\b.*\b(free|charged|paid)\b",
        r"\bfree (shipping|delivery)\b",
        r"\b(at the door|on delivery)\b",
        r"\b(delivery|postage) (cost|fee|charge)s?\b",
        r"\bsubtotal\b",
        r"\b(duties|duty|taxes|tax|vat|customs|import)\b",
        r"\bbreakdown\b",
        r"\b(versandkosten|zoll|steuer\w*|mwst)\b",
    ],
    "refund": [
        r"\brefund\w*",
        r"\bmoney back\b",
        r"\b(went|go|goes|gone|paid|sent) back to (him|her|them|the customer)\b",
        r"\breimburs\w*",
        r"\b(erstatt\w*|rückerstattung|gutschrift|geld zurück)\b",
    ],
    "return": [
        r"\breturn(ed|s|ing)?\b",
        r"\b(sent|send|sending|come|coming|bring|take) (it |them |this |that )?back\b",
        r"\b(retour\w*|zurückgeschickt|zurückgesendet|rücksendung)\b",
    ],
    "cancel": [r"\bcancel\w*", r"\bstorn\w*"],
    "address": [
        r"\baddress\b",
        r"\bgoing to\b",
        r"\b(ship|shipped|shipping|sent|send|deliver|delivered|delivering|going) to\b",
        r"\bwhere (is|was|did) (it|the order|the parcel) (go|going|sent|shipped|delivered)\b",
        r"\b(adresse|lieferadresse|anschrift)\b",
    ],
    "method": [
        r"\bshipping (method|option|speed|type|service)\b",
        r"\bdelivery (method|option|speed|type|service)\b",
        r"\bexpress\b",
        r"\bstandard (shipping|delivery)\b",
        r"\bbulky\b",
        r"\bhow (was|is|will) it (be )?(shipped|sent|delivered)\b",
        r"\bversandart\b",
    ],
    "promo": [
        r"\bpromo\w*",
        r"\bdiscount\w*",
        r"\bcoupon\w*",
        r"\bvoucher\w*",
        r"(?<!tracking )\bcode\b",
        r"\b(rabatt\w*|gutschein\w*|aktionscode)\b",
    ],
    "preorder": [r"\bpre-?orders?\b", r"\bbackorder\w*", r"\bvorbestell\w*"],
}
# Fields whose lines come along when asked (a status answer says where the parcel is).
ORDER_EXPAND: Mapping[str, Sequence[str]] = {
    "status": ("shipment", "delivered", "cancel", "return", "preorder"),
    "delivered": ("status",),
    "shipment": ("status",),
    "return": ("refund", "status"),
    "refund": ("return", "status"),
    "cancel": ("refund", "status"),
}
ORDER_DEFAULT = ("status", "shipment", "delivered")

# A person, as order_lookup's customer record answers about them.
CUSTOMER_ASKS: AskTable = {
    "member": [r"\boak club\b", r"\bmember(s|ship)?\b", r"\bloyalty\b", r"\bmitglied\w*"],
    "location": [
        r"\b(she|he|they|her|him|his|their|customer|requester|kunde|kundin)\b.*\b(based|located|from(?! us)|live[sd]?|living|country|city)\b",
        r"\b(country|city|address) (do )?we have\b",
        r"\bon file\b",
        r"\bwhere (is|are|does|do) (she|he|they|the customer|the requester)\b.*\b(based|located|from|live)\b",
        r"\b(based|located)\b",
        r"\b(wo wohnt|wohnt|aus welchem land|woher)\b",
    ],
    "count": [
        r"\bhow many (orders|times|purchases)\b",
        r"\bnumber of orders\b",
        r"\border count\b",
        r"\bfirst (order|purchase)\b",
        r"\bordered (from|with) us\b",
        r"\b(ordered|bought|shopped) (\w+ )?before\b",
        r"\bany (other |previous |more )?orders\b",
        r"\b(repeat|returning|regular) customer\b",
        r"\bwie ?viele bestellungen\b",
        r"\banzahl (der )?bestellungen\b",
    ],
    "orders": [
        r"\b(recent|previous|past|other|earlier|older|last|latest|newest|all) orders\b",
        r"\border history\b",
        r"\b(their|her|his|customer's|customers'?|requester's) orders\b",
        r"\bbestellungen\b",
        r"\bbestellhistorie\b",
    ],
    "since": [
        r"\bcustomer since\b",
        r"\bhow long (has|have) (she|he|they|the customer) been\b",
        r"\bsince when\b",
        r"\b(joined|signed up|account created)\b",
        r"\b(seit wann|kunde seit|kundin seit)\b",
    ],
    "name": [
        r"\b(full )?name\b",
        r"\bwho is (the customer|the requester|she|he|this customer)\b",
        r"\bwie heißt\b",
        r"\be-?mail( address)?\b",
    ],
    "language": [r"\blanguage\b", r"\bspeak\w*", r"\bsprache\b"],
    "marketing": [r"\bmarketing\b", r"\bnewsletter\w*", r"\bopt(ed)?[- ]?(in|out)\b"],
}
CUSTOMER_DEFAULT = ("name", "location", "member", "count")

PRODUCT_ASKS: AskTable = {
    "stock": [
        r"\bstock\b",
        r"\bavailab\w*",
        r"\bsold out\b",
        r"\b(sell|selling|carry)\b",
        r"\bdo we (have|still have)\b",
        r"\bcan (i|we|they|she|he|the customer) (buy|order|get)\b",
        r"\bback in\b",
        r"\binventory\b",
        r"\b(units?|how many) (left|are left|in stock|do we have)\b",
        r"\b(lager\w*|verfügbar\w*|lieferbar\w*|vorrätig|ausverkauft|erhältlich)\b",
    ],
    "price": [
        r"\bpric\w*",
        r"\bcost\w*",
        r"\bhow much\b(?!.*\b(weigh\w*|hold|holds|load|power|water|space|room)\b)",
        r"\bexpensive\b",
        r"\bcheap\w*",
        r"\b(preis\w*|koste\w*|wie ?viel)\b",
    ],
    "warranty": [r"\bwarrant\w*", r"\bguarantee\w*", r"\b(garantie\w*|gewährleistung\w*)\b"],
    "care": [
        r"\bcare\b",
        r"\bclean\w*",
        r"\bwash\w*",
        r"\bmaint(ain|enance)\w*",
        r"\breproof\w*",
        r"\bseason(ed|ing)?\b",
        r"\b(pflege\w*|reinig\w*|wasch\w*|waschen)\b",
    ],
    "return": [
        r"\breturn\w*",
        r"\bsend (it |them )?back\b",
        r"\brefund\w*",
        r"\b(zurückgeben|zurücksenden|rückgabe|umtausch\w*|retour\w*)\b",
    ],
    "bulky": [
        r"\bbulky\b",
        r"\b(2|two)-? ?person\b",
        r"\bdeliver\w*",
        r"\b(sperrig\w*|spedition\w*|lieferung)\b",
    ],
    "subscription": [r"\bsubscri\w*", r"\brecurring\b", r"\babo(nnement)?\b"],
}
PRODUCT_DEFAULT = ("price", "stock")

# Spec concepts: ways to ask → words found in spec keys. A spec line is asked when its key
# holds one of the concept's key words (or shares a word with the question, see `spec_words`).
SPEC_CONCEPTS: Mapping[str, tuple[Sequence[str], Sequence[str]]] = {
    "size": ([r"\bsizes?\b", r"\bfit\b", r"\bgrö(ß|ss)e\w*"], ["sizes", "size", "lengths"]),
    "dimensions": (
        [
            r"\bdimension\w*",
            r"\bhow (big|large|wide|tall|high|deep)\b",
            r"\bmeasure\w*",
            r"\b(width|height|length|diameter|depth)\b",
            r"\b(maße|abmessung\w*|durchmesser|höhe|breite)\b",
        ],
        ["dimensions", "height", "diameter", "length"],
    ),
    "weight": ([r"\bweigh\w*", r"\bheavy\b", r"\b(gewicht|schwer|wiegt)\b"], ["weight"]),
    "battery": (
        [
            r"\bbatter\w*",
            r"\bcharg\w*",
            r"\bcapacity\b",
            r"\bruntime\b",
            r"\bhow long .* last\b",
            r"\bakku\w*",
        ],
        ["battery", "batteries", "capacity", "runtime", "cycles", "charge", "chemistry"],
    ),
    "connectivity": (
        [
            r"\bwi-?fi\b",
            r"\bwlan\b",
            r"\brouter\b",
            r"\bconnect\w*",
            r"\bbluetooth\b",
            r"\bzigbee\b",
            r"\bethernet\b",
            r"\bghz\b",
            r"\bnetwork\b",
            r"\bwpa\d?\b",
            r"\bprotocol\b",
            r"\b(verbind\w*|netzwerk)\b",
        ],
        ["connectivity", "protocol"],
    ),
    "material": (
        [
            r"\bmaterial\w*",
            r"\bmade (of|from)\b",
            r"\bfabric\b",
            r"\bupholster\w*",
            r"\b(stoff|holz|aus was)\b",
        ],
        ["material", "fabric", "upholstery", "membrane", "fill", "upper", "canopy", "cushion"],
    ),
    "colour": ([r"\bcolou?rs?\b", r"\bfarbe\w*"], ["colours", "colors", "colour", "color"]),
    "waterproof": (
        [
            r"\bwaterproof\w*",
            r"\bwater\w*",
            r"\brain\b",
            r"\bip ?\d*\b",
            r"\bweatherproof\b",
            r"\b(wasserdicht|regen\w*)\b",
        ],
        ["waterproof", "ip", "hydrostatic", "membrane", "rain"],
    ),
    "people": (
        [
            r"\bseats?\b",
            r"\bpeople\b",
            r"\bpersons?\b",
            r"\bsleeps?\b",
            r"\bguests?\b",
            r"\b(personen|sitzplätze)\b",
        ],
        ["seats", "persons", "service"],
    ),
    "contents": (
        [
            r"\bcontents?\b",
            r"\binclud\w*",
            r"\bcomes? with\b",
            r"\bin the box\b",
            r"\bpieces\b",
            r"\b(inhalt|enthalten|lieferumfang)\b",
        ],
        ["contents", "pieces", "service"],
    ),
    "power": ([r"\bpower\b", r"\bwatts?\b", r"\boutput\b", r"\bleistung\b"], ["power", "output"]),
    "brightness": ([r"\bbright\w*", r"\blumens?\b", r"\blm\b", r"\bhell\w*"], ["lumens"]),
    "volume": ([r"\bvolume\b", r"\blit(er|re)s?\b", r"\bhold\b", r"\bvolumen\b"], ["volume"]),
    "temperature": (
        [r"\btemperature\w*", r"\bwarm\b", r"\bcold\b", r"°c", r"\brated\b", r"\btemperatur\b"],
        ["comfort", "limit", "oven"],
    ),
    "load": ([r"\bload\b", r"\bhold\b", r"\b(tragkraft|belast\w*)\b"], ["load"]),
    "area": ([r"\barea\b", r"\blawns?\b", r"m2|m²", r"\bfläche\b"], ["area"]),
    "slope": (
        [r"\bslope\w*", r"\bsteep\w*", r"\bincline\b", r"\bgradient\b", r"\b(hang|steigung)\b"],
        ["slope"],
    ),
    "induction": ([r"\binduction\b", r"\bhob\b", r"\binduktion\b"], ["induction"]),
    "oven": ([r"\boven\b", r"\bofen\w*"], ["oven"]),
}

# How a "no such spec" line names a concept ("The catalogue lists no weight for …").
CONCEPT_LABELS: Mapping[str, str] = {
    "size": "sizes",
    "waterproof": "waterproof rating",
    "people": "capacity in persons",
    "power": "power rating",
    "temperature": "temperature rating",
    "load": "maximum load",
    "area": "maximum area",
    "slope": "maximum slope",
    "induction": "induction suitability",
    "oven": "oven-safe temperature",
    "battery": "battery details",
    "colour": "colours",
}


def concept_label(concept: str) -> str:
    return CONCEPT_LABELS.get(concept, concept)


_SPEC_ASKS = [(name, re.compile("|".join(pats), re.IGNORECASE)) for name, (pats, _) in SPEC_CONCEPTS.items()]


def asked_spec_concepts(question: str) -> list[str]:
    """The spec concepts the question asks about (e.g. "weight" for "how heavy is it?")."""
    q = " ".join(question.lower().split())
    return [name for name, rx in _SPEC_ASKS if rx.search(q)]


_WORD_RE = re.compile(r"[a-z0-9äöüß]+", re.IGNORECASE)


def words(text: str) -> set[str]:
    """Lower-cased words with crude plural folding (for overlap tests)."""
    out = {w for w in _WORD_RE.findall(text.lower()) if len(w) > 1}
    return out | {w[:-1] for w in out if len(w) > 3 and w.endswith("s")}


# Words that never name a product or an item: function words (English, German) and the words
# questions use to ask about one ("is the X in stock?", "hat die Bestellung…").
_FILLER_TEXT = """a about after again all also am an and any are as at be because been before being both but by
    can could did do does doing down during each few for from further get got had has have he her here
    hers him his how i if in into is it its just me more most much my myself no nor not now of off on
    once only or other our ours out over own same she should so some such than that the their theirs
    them then there these they this those through to too under until up very was we were what when
    where which while who whom why will with would you your yours yet still again please pls
    customer customers requester order orders ordered item items product products thing things one
    parcel parcels package packages shipment delivery status stock price cost warranty much many
    long does tell know check show let us we our her his their she he they it this that
    der die das den dem des ein eine einen einem einer ist sind war hat haben wurde wird noch schon
    und oder nicht kein keine mit von für auf bei wie was wo wann ich sie er es wir ihr mein meine
    ihre ihren seine bestellung artikel produkt paket lieferung kunde kundin"""
FILLER = frozenset(_FILLER_TEXT.split())


def fold(word: str) -> str:
    """Crude plural folding, the catalogue search's own ("benches" → "bench", "kits" → "kit")."""
    if len(word) > 3 and word.endswith("es"):
        return word[:-2]
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def content_words(text: str, skip: Callable[[str], bool] | None = None) -> set[str]:
    """Words that can name a product or an item, with their plural folds: not filler, not
    numbers, not what `skip` says (tested on the word as written, so "does" never becomes
    "doe")."""
    out: set[str] = set()
    for w in _WORD_RE.findall(text.lower()):
        if len(w) < 2 or w in FILLER or w.isdigit() or (skip is not None and skip(w)):
            continue
        out.add(w)
        if len(w) > 3 and w.endswith("s"):
            out.add(w[:-1])
            out.add(fold(w))
    return out


# --- defaults only for questions about the record itself -------------------------------------------
_IDENTIFIER = re.compile(r"\b[A-Z]{2}-\d{3,6}\b|\S+@\S+", re.IGNORECASE)
_GENERIC_ASKS = frozenset(
    {
        *("new", "news", "update", "updates", "info", "details", "detail", "summary", "overview"),
        *("anything", "going", "happening", "happened", "up", "situation", "latest"),
    }
)


def asks_only_about_the_record(question: str, record_text: str = "") -> bool:
    """'any news on BO-100693?', 'tell me about the lumo hub': nothing asked beyond the record
    itself, so its default lines (status, price and stock…) answer. A question with its own topic
    ('is the lumo hub matter certified?', 'how do I reset it?') gets no default facts: the lines
    stay in the evidence for synthesis to rank, and other sources (the Help Center) can answer."""
    own = content_words(_IDENTIFIER.sub(" ", question))
    named = content_words(record_text)
    rest = {w for w in own if w not in named and fold(w) not in named and w not in _GENERIC_ASKS}
    # plural folds come in pairs: count distinct stems
    return len({fold(w) for w in rest}) == 0
