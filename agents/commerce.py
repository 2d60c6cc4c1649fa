"""The store's own systems behind a small tool API: orders, customers, products.

`CommerceAPI` is what agents call (through `ctx.services["commerce"]`). Two implementations:
`LocalCommerceAPI` reads the demo store's exports (`store/demo_data/commerce/*.json`), and
`HttpCommerceAPI` talks to a tenant's HTTP endpoint through the shared `agents.http.ApiClient`:

    GET /orders/{number}                 → order                  (404: unknown)
    GET /customers/{id}                  → customer               (404: unknown)
    GET /customers?email=… | ?zendesk_user_id=…  → {"customers": [...]}
    GET /customers/{id}/orders           → {"orders": [...]}       (newest first)
    GET /products?q=…&limit=…            → {"products": [...]}     (best first)
    GET /products/{sku}                  → product                (404: unknown)

Records are plain dicts in the shapes of the demo exports (see store/demo_data/README).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from agents.base import ToolError
from agents.http import ApiClient, BreakerRegistry, HttpClientConfig, path_segment

DEMO_COMMERCE_DIR = Path(__file__).resolve().parents[1] / "store" / "demo_data" / "commerce"
ORDER_NUMBER_RE = re.compile(r"\bBO-\d{6}\b", re.IGNORECASE)
MAX_QUERY_CHARS = 500
MAX_LIMIT = 50

Record = dict[str, Any]


@runtime_checkable
class CommerceAPI(Protocol):
    def get_order(self, number: str) -> Record | None: ...

    def orders_for_customer(self, email: str) -> list[Record]:
        """The customer's orders, newest first ([] for an unknown email)."""
        ...

    def get_customer(self, key: str | int) -> Record | None:
        """By customer id ("C-20001"), email, or Zendesk user id."""
        ...

    def search_products(self, query: str, limit: int = 5) -> list[Record]: ...

    def get_product(self, sku: str) -> Record | None: ...


def _check_text(value: object, what: str, max_chars: int = MAX_QUERY_CHARS) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ToolError(f"{what} must be a string")
    text = str(value).strip()
    if not text:
        raise ToolError(f"{what} is empty")
    if len(text) > max_chars:
        raise ToolError(f"{what} is longer than {max_chars} characters")
    return text


def _check_limit(limit: object) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise ToolError(f"limit must be an integer within 1..{MAX_LIMIT}")
    return limit


_WORD_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def tokens(text: str) -> set[str]:
    out: set[str] = set()
    for tok in _WORD_RE.findall(text.lower()):
        out.add(tok)
        out.update(p for p in tok.split("-") if len(p) > 1)
    # crude plural folding: "chairs" finds "chair", "benches" finds "bench"
    return out | {t[:-2] if t.endswith("es") else t[:-1] for t in out if len(t) > 3 and t.endswith("s")}


def product_search_text(product: Record) -> tuple[set[str], set[str]]:
    """(name tokens, other tokens) for token-overlap search."""
    name = tokens(f"{product.get('name', '')} {product.get('sku', '')}")
    specs = product.get("specs") or {}
    other = tokens(" ".join([str(product.get("category", "")), *map(str, specs.values())]))
    return name, other - name


def rank_products(products: list[Record], query: str, limit: int) -> list[Record]:
    """Token overlap, name hits weigh more; an exact SKU wins outright. Deterministic order."""
    q = tokens(query)
    skus = {s.upper() for s in re.findall(r"\b[A-Za-z]{2}-\d{3}\b", query)}
    scored = []
    for i, p in enumerate(products):
        name, other = product_search_text(p)
        score = 3.0 * len(q & name) + 1.0 * len(q & other) + (100.0 if p.get("sku") in skus else 0.0)
        if score > 0:
            scored.append((-score, i, p))
    scored.sort(key=lambda r: (r[0], r[1]))
    return [p for _, _, p in scored[:limit]]


class LocalCommerceAPI:
    """The demo store's systems from JSON exports, loaded lazily on first use, indexed by
    order number, customer id, email, Zendesk user id and SKU. Thread-safe (read-only)."""

    def __init__(self, data_dir: str | Path | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else DEMO_COMMERCE_DIR
        self._lock = threading.Lock()
        self._loaded = False

    def _load_list(self, name: str) -> list[Record]:
        path = self.data_dir / f"{name}.json"
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ToolError(f"commerce data file {path.name} is missing") from None
        except (OSError, ValueError) as exc:
            raise ToolError(f"commerce data file {path.name} is unreadable: {exc}") from None
        records = raw.get(name) if isinstance(raw, dict) else raw
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ToolError(f"commerce data file {path.name} must hold a list of {name}")
        return records

    def _ensure(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            orders = self._load_list("orders")
            customers = self._load_list("customers")
            products = self._load_list("products")
            self._orders = {str(o["order_number"]).upper(): o for o in orders}
            self._customers = {str(c["id"]): c for c in customers}
            self._by_email = {str(c["email"]).lower(): c for c in customers if c.get("email")}
            self._by_zendesk = {str(c["zendesk_user_id"]): c for c in customers if c.get("zendesk_user_id")}
            self._orders_by_email: dict[str, list[Record]] = {}
            for o in sorted(orders, key=lambda o: str(o.get("created_at", "")), reverse=True):
                self._orders_by_email.setdefault(str(o.get("email", "")).lower(), []).append(o)
            self._products = products
            self._by_sku = {str(p["sku"]).upper(): p for p in products}
            self._loaded = True

    def get_order(self, number: str) -> Record | None:
        number = _check_text(number, "order number", 64).upper()
        self._ensure()
        return self._orders.get(number)

    def orders_for_customer(self, email: str) -> list[Record]:
        email = _check_text(email, "email", 320).lower()
        self._ensure()
        return list(self._orders_by_email.get(email, []))

    def get_customer(self, key: str | int) -> Record | None:
        text = _check_text(key, "customer id or email", 320)
        self._ensure()
        if "@" in text:
            return self._by_email.get(text.lower())
        return self._customers.get(text.upper()) or self._by_zendesk.get(text)

    def search_products(self, query: str, limit: int = 5) -> list[Record]:
        query = _check_text(query, "query")
        limit = _check_limit(limit)
        self._ensure()
        return rank_products(self._products, query, limit)

    def get_product(self, sku: str) -> Record | None:
        sku = _check_text(sku, "sku", 64).upper()
        self._ensure()
        return self._by_sku.get(sku)

    # For the fake HTTP server in tests and for tooling: all records of one kind.
    def all(self, kind: str) -> list[Record]:
        self._ensure()
        return {
            "orders": list(self._orders.values()),
            "customers": list(self._customers.values()),
            "products": list(self._products),
        }[kind]


class HttpCommerceAPI:
    """A tenant's commerce endpoint (see the module docstring for the routes)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        config: HttpClientConfig | None = None,
        breakers: BreakerRegistry | None = None,
        name: str = "Order system",
        **client_options: Any,
    ) -> None:
        self.client = ApiClient(
            base_url, name=name, api_key=api_key, config=config, breakers=breakers, **client_options
        )

    def close(self) -> None:
        self.client.close()

    def _record(self, value: Any) -> Record | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ToolError(f"{self.client.name} returned an unexpected record")
        return value

    def _list(self, value: Any, key: str) -> list[Record]:
        items = value.get(key) if isinstance(value, dict) else value
        if value is None:
            return []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ToolError(f"{self.client.name} returned an unexpected {key} list")
        return items

    def get_order(self, number: str) -> Record | None:
        number = _check_text(number, "order number", 64).upper()
        return self._record(self.client.get_json(f"/orders/{path_segment(number)}"))

    def orders_for_customer(self, email: str) -> list[Record]:
        customer = self.get_customer(_check_text(email, "email", 320))
        if customer is None:
            return []
        cid = path_segment(str(customer["id"]))
        return self._list(self.client.get_json(f"/customers/{cid}/orders"), "orders")

    def get_customer(self, key: str | int) -> Record | None:
        text = _check_text(key, "customer id or email", 320)
        if "@" in text or text.isdigit():
            param = "email" if "@" in text else "zendesk_user_id"
            found = self._list(self.client.get_json("/customers", {param: text}), "customers")
            return found[0] if found else None
        return self._record(self.client.get_json(f"/customers/{path_segment(text)}"))

    def search_products(self, query: str, limit: int = 5) -> list[Record]:
        query = _check_text(query, "query")
        limit = _check_limit(limit)
        return self._list(self.client.get_json("/products", {"q": query, "limit": limit}), "products")[:limit]

    def get_product(self, sku: str) -> Record | None:
        sku = _check_text(sku, "sku", 64).upper()
        return self._record(self.client.get_json(f"/products/{path_segment(sku)}"))
