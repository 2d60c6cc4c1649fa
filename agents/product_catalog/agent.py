"""Products in the store's catalogue: price, stock, warranty, care notes, specs.

A product is rendered as short, self-contained sentences, one per line, each naming the product
("Lumo Hub (LU-601) costs €89.00.", one line per spec), and `Evidence.facts` holds the lines the
question asks for (agents/facts.py): "in stock?" gets the stock line, not the specs.

Which product: a SKU in the question; else the product the question names; for "it" / "this
product" (or a question naming none) the ticket's Product SKU field, then a product the ticket's
subject or description names, then the single item of the ticket's order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from agents.base import AgentContext, AgentResult, BaseAgent, Evidence, ToolCall, ToolError, ToolUnavailable
from agents.commerce import ORDER_NUMBER_RE, CommerceAPI, product_search_text, tokens
from agents.common import custom_field_values, money
from agents.facts import (
    FILLER,
    PRODUCT_ASKS,
    PRODUCT_DEFAULT,
    SPEC_CONCEPTS,
    Line,
    about_context,
    asked,
    asked_spec_concepts,
    asks_only_about_the_record,
    concept_label,
    content_words,
    join,
    question_text,
    select,
    words,
)
from store.knowledge.types import STOPWORDS

_QUESTION: ContextVar[str] = ContextVar("product_catalog_question", default="")

_DEICTIC_RE = re.compile(r"\b(it|its|this|that|these|those|the (product|item|one))\b", re.IGNORECASE)
SKU_RE = re.compile(r"\b[A-Z]{2}-\d{3}\b", re.IGNORECASE)
# Words that say what is asked, not which product: they must not count as matches.
_ASK_WORDS = frozenset(
    [
        "price",
        "cost",
        "stock",
        "available",
        "availability",
        "warranty",
        "guarantee",
        "care",
        "clean",
        "product",
        "item",
        "buy",
        "order",
        "much",
        "many",
        "long",
        "does",
        "still",
        "back",
        "sell",
        "left",
        "customer",
        "work",
        "support",
        "supports",
        "again",
    ]
)
_ASK_PATTERNS = [re.compile("|".join(p), re.IGNORECASE) for p in PRODUCT_ASKS.values()] + [
    re.compile("|".join(pats), re.IGNORECASE) for pats, _ in SPEC_CONCEPTS.values()
]

# --- rendering --------------------------------------------------------------------------------------
_UNITS = {
    "cm": "cm",
    "mm": "mm",
    "m": "m",
    "m2": "m²",
    "kg": "kg",
    "l": "L",
    "w": "W",
    "wh": "Wh",
    "kw": "kW",
    "mah": "mAh",
    "h": "h",
    "min": "min",
    "c": "°C",
    "pct": "%",
    "eur": "EUR",
    "years": "years",
    "months": "months",
}
_ACRONYMS = {"ac": "AC", "ip": "IP", "bpa": "BPA", "id": "ID", "dwr": "DWR", "usb": "USB"}


def spec_label(key: str) -> tuple[str, str]:
    """("weight", "kg") for "weight_kg"; ("AC charge 0-80%", "min") for "ac_charge_0_80_min"."""
    parts = [p for p in str(key).lower().split("_") if p]
    unit, rest = "", []
    for p in parts:
        if not unit and rest and p in _UNITS:
            unit = _UNITS[p]
            continue
        rest.append(_ACRONYMS.get(p, p))
    # "0_80" is a range of percent ("charge 0-80%").
    label = " ".join(rest)
    label = re.sub(r"\b(\d+) (\d+)\b", r"\1-\2%", label)
    return label or str(key), unit


def spec_value(value: object, unit: str = "") -> str:
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, list | tuple):
        text = ", ".join(str(v) for v in value)
    else:
        text = str(value).rstrip(".")
    if unit and not isinstance(value, bool):
        text += unit if unit == "%" else f" {unit}"
    return text


def product_ref(p: Mapping[str, Any]) -> str:
    return f"{p.get('name', '?')} ({p.get('sku', '?')})"


def product_lines(
    p: Mapping[str, Any], *, asked_fields: Iterable[str] = (), missing_specs: Iterable[str] = ()
) -> list[Line]:
    """The product as self-contained sentences tagged with the fields they state: "stock",
    "price", "warranty", "care", "return", "bulky", "subscription", and "spec:<key>" per spec.
    A negative line is added only for what the question asks ("not a bulky item")."""
    wanted = set(asked_fields)
    ref = product_ref(p)
    cur = str(p.get("currency") or "EUR")
    L = Line.of
    lines: list[Line] = []
    if isinstance(p.get("price"), int | float):
        lines.append(L(f"{ref} costs {money(p.get('price'), cur)}.", "price"))
    stock = p.get("stock")
    if p.get("digital"):
        lines.append(L(f"{ref} is digital and always available.", "stock"))
    elif isinstance(stock, int) and not isinstance(stock, bool):
        text = f"{ref} is in stock ({stock} units)." if stock > 0 else f"{ref} is out of stock."
        lines.append(L(text, "stock"))
    else:
        lines.append(L(f"No stock level is recorded for {ref}.", "stock"))
    months = p.get("warranty_months")
    if p.get("lifetime_warranty"):
        lines.append(L(f"{ref} has a lifetime warranty.", "warranty"))
    elif isinstance(months, int) and months > 0:
        if months % 12 == 0:
            years = months // 12
            lines.append(L(f"{ref} has a {years}-year warranty ({months} months).", "warranty"))
        else:
            lines.append(L(f"{ref} has a {months}-month warranty.", "warranty"))
    else:
        lines.append(L(f"The catalogue lists no warranty for {ref}.", "warranty"))
    if p.get("returnable") is False:
        lines.append(L(f"{ref} is not returnable.", "return"))
    elif p.get("returnable") is True:
        lines.append(L(f"{ref} is returnable.", "return"))
    if p.get("bulky"):
        lines.append(L(f"{ref} is a bulky item (2-person delivery).", "bulky"))
    elif "bulky" in wanted and p.get("bulky") is False:
        lines.append(L(f"{ref} is not a bulky item.", "bulky"))
    if p.get("subscribable"):
        lines.append(L(f"{ref} is available as a subscription.", "subscription"))
    elif "subscription" in wanted and p.get("subscribable") is False:
        lines.append(L(f"{ref} is not available as a subscription.", "subscription"))
    if p.get("care_notes"):
        notes = str(p["care_notes"]).strip()
        lines.append(L(f"Care for {ref}: {notes}" + ("" if notes.endswith(".") else "."), "care"))
    specs = p.get("specs")
    if isinstance(specs, Mapping):
        for key, value in specs.items():
            label, unit = spec_label(str(key))
            lines.append(L(f"{ref} {label}: {spec_value(value, unit)}.", "spec", f"spec:{key}"))
    for concept in missing_specs:
        lines.append(L(f"The catalogue lists no {concept_label(concept)} for {ref}.", f"missing:{concept}"))
    return lines


def _without_name(question: str, p: Mapping[str, Any]) -> str:
    """The question with the product's own name words removed: "weatherproof seat cushions in
    stock?" asks about stock, not about seats or weather."""
    name = words(f"{p.get('name', '')}")
    return " ".join(w for w in re.findall(r"\S+", question) if words(w).isdisjoint(name) or not words(w))


def product_fields(question: str, p: Mapping[str, Any]) -> tuple[set[str], list[str]]:
    """(fields asked, spec concepts asked that the product has no spec for)."""
    q = _without_name(question, p)
    fields = asked(q, PRODUCT_ASKS)
    specs = p.get("specs") if isinstance(p.get("specs"), Mapping) else {}
    key_words = {k: set(re.split(r"[_\W]+", str(k).lower())) for k in specs}
    missing: list[str] = []
    for concept in asked_spec_concepts(q):
        hits = [
            k
            for k, kw in key_words.items()
            if any(w.startswith(c) for c in SPEC_CONCEPTS[concept][1] for w in kw)
        ]
        fields.update(f"spec:{k}" for k in hits)
        if not hits:
            missing.append(concept)
    # Any other word the question shares with a spec's name or value ("zigbee", "roast").
    ask = content_words(q) - _ASK_WORDS
    for k, v in specs.items():
        if ask & (words(str(k).replace("_", " ")) | content_words(spec_value(v))):
            fields.add(f"spec:{k}")
    if any(f.startswith("spec:") for f in fields):
        missing = []  # the spec lines found answer it; "no weight listed" would be noise
    return fields, missing


def product_evidence(
    p: Mapping[str, Any], agent: str, score: float, question: str = "", *, facts: bool = True
) -> Evidence:
    fields, missing = product_fields(question, p)
    if missing and fields - {f"missing:{c}" for c in missing}:
        missing = []  # something else was asked too: answer that instead of "no weight listed"
    fields |= {f"missing:{c}" for c in missing}
    lines = product_lines(p, asked_fields=fields, missing_specs=missing)
    return Evidence(
        id=f"product:{p.get('sku', '?')}",
        title=product_ref(p),
        text=join(lines),
        kind="product",
        url=p.get("url") or None,
        score=score,
        agent=agent,
        facts=select(lines, fields, _default_fields(question, p, fields)) if facts else (),
    )


def _default_fields(question: str, p: Mapping[str, Any], asked_fields: set[str]) -> tuple[str, ...]:
    """Price and stock when a known ask has no line here or nothing but the product was asked;
    none when the question is about something else (how to reset it: the Help Center's)."""
    name = f"{p.get('name', '')} {p.get('sku', '')} {p.get('category', '')}"
    known = asked_fields or asks_only_about_the_record(question_text(question), name)
    return PRODUCT_DEFAULT if known else ()


# --- resolution ------------------------------------------------------------------------------------
_QUERY_WORD_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _is_ask_word(word: str) -> bool:
    """ "stock", "kostet", "heavy": a word that says what is asked about a product."""
    return word in _ASK_WORDS or any(rx.fullmatch(word) for rx in _ASK_PATTERNS)


def _query_words(query: str) -> list[str]:
    """The query's words that may name a product, as written (numbers kept: "Ridgeline 2")."""
    return list(
        dict.fromkeys(
            w
            for w in _QUERY_WORD_RE.findall(query.lower())
            if w not in STOPWORDS and w not in FILLER and not _is_ask_word(w) and (len(w) > 1 or w.isdigit())
        )
    )


def match_score(p: Mapping[str, Any], query: str) -> float:
    """Share of the query's product words found in the product (name words count double)."""
    if p.get("sku") and str(p["sku"]).upper() in {s.upper() for s in SKU_RE.findall(query)}:
        return 1.0
    found = _query_words(query)
    if not any(not w.isdigit() for w in found):
        return 0.0  # a number alone ("is it 2 m wide?") names no product
    name, other = product_search_text(p)
    got = 0
    for w in found:
        forms = tokens(w)  # the word, its plural fold and hyphen parts
        got += 2 if forms & name else 1 if forms & other else 0
    return round(min(1.0, got / (2 * len(found))), 3)


def product_words(question: str) -> set[str]:
    """Words of the question that could name a product (not what is asked about it)."""
    return content_words(question, skip=_is_ask_word)


def _commerce(ctx: AgentContext) -> CommerceAPI:
    api = ctx.services.get("commerce")
    if api is None:
        raise ToolUnavailable("the product catalogue is not configured")
    return api


def ticket_skus(ctx: AgentContext) -> list[str]:
    """The ticket's products, most explicit first: SKUs in its fields (the sidebar's
    {"Product SKU": …} or the REST list of {id, value}), SKUs in its subject/description,
    products its subject/description name, then the single item of its order."""
    ticket = ctx.ticket
    found: list[str] = []

    def add(sku: str) -> None:
        if sku.upper() not in found:
            found.append(sku.upper())

    for text in custom_field_values(ticket):
        for m in SKU_RE.finditer(text):
            add(m.group(0))
    text = "\n".join(str(ticket.get(k) or "") for k in ("subject", "description"))
    for m in SKU_RE.finditer(text):
        add(m.group(0))
    api = ctx.services.get("commerce")
    if api is None:
        return found
    if text.strip():
        try:
            candidates = api.search_products(text[:500], limit=10)
        except ToolError:
            candidates = []
        present = content_words(text)
        for p in candidates:
            name = content_words(str(p.get("name", "")))
            if p.get("sku") and name and len(name & present) / len(name) >= 0.75:
                add(str(p["sku"]))
    if not found:
        number = next(
            (
                m.group(0)
                for t in (*custom_field_values(ticket), text)
                for m in [ORDER_NUMBER_RE.search(t)]
                if m
            ),
            None,
        )
        if number:
            try:
                order = api.get_order(number.upper())
            except ToolError:
                order = None
            items = [i for i in (order or {}).get("items") or [] if isinstance(i, Mapping) and i.get("sku")]
            if len(items) == 1:
                add(str(items[0]["sku"]))
    return found


class ProductCatalogAgent(BaseAgent):
    max_evidence = 3

    def tools(self) -> dict[str, Any]:
        return {"search_products": self.search_products, "get_product": self.get_product}

    def get_product(self, ctx: AgentContext, sku: str) -> dict[str, Any]:
        if not isinstance(sku, str) or not SKU_RE.fullmatch(sku.strip()):
            raise ToolError("sku must look like OF-101")
        product = _commerce(ctx).get_product(sku.strip().upper())
        if product is None:
            return {"evidence": [], "data": {"not_found": sku}}
        evidence = product_evidence(product, self.name, 1.0, _QUESTION.get())
        return {"evidence": [evidence], "data": {"product": product}}

    def search_products(self, ctx: AgentContext, query: str, limit: int = 3) -> dict[str, Any]:
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise ToolError("limit must be an integer")
        limit = max(1, min(limit, 10))
        found = _commerce(ctx).search_products(query, limit=limit * 3)
        min_score = float(self.manifest.config.get("min_match", 0.34))
        scored = sorted(
            ((match_score(p, query), i, p) for i, p in enumerate(found)), key=lambda r: (-r[0], r[1])
        )
        scored = [r for r in scored if r[0] >= min_score]
        winners = 1
        if len(scored) > 1 and scored[0][0] == scored[1][0]:
            # A tie ("the lumo kit"): the product this ticket is about wins; with none of them
            # the ticket's, all tied ones answer ("the tent" is either tent).
            rank = {sku: n for n, sku in enumerate(ticket_skus(ctx))}
            scored.sort(key=lambda r: (-r[0], rank.get(str(r[2].get("sku", "")).upper(), len(rank)), r[1]))
            if str(scored[0][2].get("sku", "")).upper() not in rank:
                winners = sum(1 for r in scored if r[0] == scored[0][0])
        # Only the product(s) asked about: a weaker match's lines would be quotable statements
        # about something else ("the Ridgeline 4 is in stock" for a question on the Ridgeline 2).
        keep = [(s, p) for s, _, p in scored][: min(limit, winners)]
        question = _QUESTION.get() or query
        evidence = [product_evidence(p, self.name, s, question) for s, p in keep]
        return {"evidence": evidence, "data": {"products": [p for _, p in keep]}}

    def offline_tool_call(self, query: str, ctx: AgentContext, attempt: int) -> ToolCall | None:
        calls = self._candidate_calls(query, ctx)
        for _ in range(attempt - 1):
            if next(calls, None) is None:
                return None
        return next(calls, None)

    def _candidate_calls(self, query: str, ctx: AgentContext) -> Iterator[ToolCall]:
        """The lookups that may find the product asked about, most explicit first: a SKU in the
        question, the product it names, then (for "it", or a question naming none) what the
        conversation pointed at, then the ticket's product. A question naming a product that is
        not found never falls back to another product."""
        question = _QUESTION.get() or question_text(query, ctx)
        skus = [s.upper() for s in SKU_RE.findall(question)]
        if skus:
            yield ToolCall("get_product", {"sku": skus[0]}, "SKU in the request")
        named = bool(product_words(question))
        if named:
            yield ToolCall("search_products", {"query": question, "limit": 3}, "search the catalogue by name")
            if not _DEICTIC_RE.search(question):
                return
        about = about_context(query)
        about_skus = [s.upper() for s in SKU_RE.findall(about) if s.upper() not in skus]
        if about_skus:
            yield ToolCall("get_product", {"sku": about_skus[0]}, "the product the conversation is about")
        elif about and product_words(about):
            yield ToolCall(
                "search_products", {"query": about[:500], "limit": 3}, "what the conversation is about"
            )
        for sku in ticket_skus(ctx):
            if sku not in skus:
                yield ToolCall("get_product", {"sku": sku}, "the ticket's product")
                return

    def run(self, query: str, ctx: AgentContext) -> AgentResult:
        token = _QUESTION.set(question_text(query, ctx))
        try:
            return super().run(query, ctx)
        finally:
            _QUESTION.reset(token)

    def summarise(self, query: str, evidence: list[Evidence], ctx: AgentContext) -> str:
        said = [f for e in evidence for f in e.facts]
        if said:
            return " ".join(said)
        return "\n".join(f"- {e.title}: {e.text.splitlines()[0]}" for e in evidence[: self.max_evidence])
