"""Products in the store's catalogue: price, stock, warranty, care notes, specs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agents.base import AgentContext, BaseAgent, Evidence, ToolCall, ToolError, ToolUnavailable
from agents.commerce import CommerceAPI, product_search_text, tokens
from agents.common import custom_field_values, money
from store.knowledge.types import STOPWORDS

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
    ]
)


def render_product(p: Mapping[str, Any]) -> str:
    cur = str(p.get("currency") or "EUR")
    stock = p.get("stock")
    if p.get("digital"):
        availability = "digital (always available)"
    elif isinstance(stock, int):
        availability = f"in stock ({stock})" if stock > 0 else "out of stock"
    else:
        availability = "stock unknown"
    if p.get("lifetime_warranty"):
        warranty = "lifetime warranty"
    elif p.get("warranty_months"):
        warranty = f"{p['warranty_months']}-month warranty"
    else:
        warranty = "no warranty listed"
    lines = [f"{money(p.get('price'), cur)}, {availability}, {warranty}."]
    flags = []
    if p.get("bulky"):
        flags.append("bulky (2-person delivery)")
    if p.get("returnable") is False:
        flags.append("not returnable")
    if p.get("subscribable"):
        flags.append("available as a subscription")
    if flags:
        lines.append("Notes: " + ", ".join(flags) + ".")
    if p.get("care_notes"):
        lines.append(f"Care: {p['care_notes']}")
    specs = p.get("specs")
    if isinstance(specs, Mapping) and specs:
        lines.append("Specs: " + "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in specs.items()))
    return "\n".join(lines)


def match_score(p: Mapping[str, Any], query: str) -> float:
    """Share of the query's product words found in the product (name words count double)."""
    if p.get("sku") and str(p["sku"]).upper() in {s.upper() for s in SKU_RE.findall(query)}:
        return 1.0
    words = {w for w in tokens(query) if w not in STOPWORDS and w not in _ASK_WORDS and len(w) > 1}
    if not words:
        return 0.0
    name, other = product_search_text(p)
    got = 2 * len(words & name) + len(words & other)
    return round(min(1.0, got / (2 * len(words))), 3)


def product_evidence(p: Mapping[str, Any], agent: str, score: float) -> Evidence:
    return Evidence(
        id=f"product:{p.get('sku', '?')}",
        title=f"{p.get('name', '?')} ({p.get('sku', '?')})",
        text=render_product(p),
        kind="product",
        url=p.get("url") or None,
        score=score,
        agent=agent,
    )


def _commerce(ctx: AgentContext) -> CommerceAPI:
    api = ctx.services.get("commerce")
    if api is None:
        raise ToolUnavailable("the product catalogue is not configured")
    return api


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
        return {"evidence": [product_evidence(product, self.name, 1.0)], "data": {"product": product}}

    def search_products(self, ctx: AgentContext, query: str, limit: int = 3) -> dict[str, Any]:
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise ToolError("limit must be an integer")
        limit = max(1, min(limit, 10))
        found = _commerce(ctx).search_products(query, limit=limit * 3)
        min_score = float(self.manifest.config.get("min_match", 0.34))
        scored = sorted(
            ((match_score(p, query), i, p) for i, p in enumerate(found)), key=lambda r: (-r[0], r[1])
        )
        keep = [(s, p) for s, _, p in scored if s >= min_score][:limit]
        evidence = [product_evidence(p, self.name, s) for s, p in keep]
        return {"evidence": evidence, "data": {"products": [p for _, p in keep]}}

    def offline_tool_call(self, query: str, ctx: AgentContext, attempt: int) -> ToolCall | None:
        skus = SKU_RE.findall(query)
        if attempt == 1:
            if skus:
                return ToolCall("get_product", {"sku": skus[0].upper()}, "SKU in the request")
            return ToolCall("search_products", {"query": query, "limit": 3}, "search the catalogue by name")
        # "Is it back in stock?": a request that points at "it" means the ticket's product.
        if not _DEICTIC_RE.search(query):
            return None
        for text in (*custom_field_values(ctx.ticket), str(ctx.ticket.get("subject") or "")):
            m = SKU_RE.search(text)
            if m and m.group(0).upper() not in {s.upper() for s in skus}:
                return ToolCall("get_product", {"sku": m.group(0).upper()}, "the ticket's product")
        return None

    def summarise(self, query: str, evidence: list[Evidence], ctx: AgentContext) -> str:
        return "\n".join(f"- {e.title}: {e.text.splitlines()[0]}" for e in evidence[: self.max_evidence])
