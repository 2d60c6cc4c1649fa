"""Orders in the store's order system: status, items, payment, shipping, tracking, refunds.

An order (and the requester's customer record) is rendered as short, self-contained sentences,
one per line, each naming the order ("Order BO-100693 was delivered on 2026-11-15."), so any
line quoted alone is a complete, cited statement. `Evidence.facts` holds the lines the question
asks for (agents/facts.py maps the question to fields); the rest stays in `text` for context.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

from agents.base import AgentContext, AgentResult, BaseAgent, Evidence, ToolCall, ToolError, ToolUnavailable
from agents.commerce import ORDER_NUMBER_RE, CommerceAPI
from agents.common import EMAIL_RE, custom_field_values, day, money, requester_email
from agents.facts import (
    CUSTOMER_ASKS,
    CUSTOMER_DEFAULT,
    ORDER_ASKS,
    ORDER_DEFAULT,
    ORDER_EXPAND,
    Line,
    asked,
    asks_only_about_the_record,
    content_words,
    join,
    question_text,
    select,
)

# The question this run answers (set by `run`): tools choose facts by it without it being a
# tool argument, which the model-chosen tool calls could not be trusted to pass on.
_QUESTION: ContextVar[str] = ContextVar("order_lookup_question", default="")
# The order the query or the ticket points at ("the one before that" counts from it).
_ANCHOR: ContextVar[str | None] = ContextVar("order_lookup_anchor", default=None)

OWNER_NOTE = "Note: order {number} belongs to a different customer than the requester."
_METHODS = {
    "standard": "standard shipping",
    "express": "express shipping",
    "bulky": "bulky delivery (2-person)",
    "email": "delivery by email",
}
_REASONS = {
    "price_diff": "price difference",
    "express_diff": "express shipping difference",
    "total": "full refund",
    "total_duplicate": "duplicate charge",
    "vat": "VAT",
}
# Customer fields that decide for the customer record even when order words are also present
# ("how many orders has she placed?"); a bare "name" does not ("name of the item she ordered").
_CUSTOMER_FIRST = frozenset({"member", "location", "count", "orders", "since", "language", "marketing"})
# A question choosing among the customer's orders ("which one had the mower in it?", "was any
# of them cancelled?", "and the one before that?"): it needs their list, not one order.
_CHOOSE_RE = re.compile(
    r"\b(which|either|both|none) (one|ones|of them|of (her|his|their|the|these|those) orders|orders?)\b"
    r"|\bany (one|of them|of (her|his|their|the|these|those) orders)\b"
    r"|\b(one|order) (before|after) (that|this|it)\b"
    r"|\b(previous|earlier|older|other|second|third) (one|order)\b",
    re.IGNORECASE,
)
_BEFORE_RE = re.compile(r"\b(before (that|this|it)|previous|earlier|older)\b", re.IGNORECASE)
# How an order shows the event a question asks about ("which of them got cancelled?").
_EVENTS: dict[str, Any] = {
    "cancel": lambda o: o.get("status") == "cancelled" or bool(o.get("cancelled_at")),
    "return": lambda o: o.get("status") == "returned" or bool(o.get("returned_at")),
    "refund": lambda o: o.get("status") == "refunded" or bool(o.get("refunds")),
    "preorder": lambda o: bool(o.get("preorder")),
}


def _and(values: Sequence[str]) -> str:
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


# --- rendering --------------------------------------------------------------------------------------
def order_lines(
    order: Mapping[str, Any], *, asked_fields: Iterable[str] = (), foreign: bool = False
) -> list[Line]:
    """The order as self-contained sentences tagged with the fields they state. Only what the
    record says; a field the question asks about that the record leaves empty gets a line saying
    so ("No refund is recorded…") instead of silence."""
    wanted = set(asked_fields)
    number = str(order.get("order_number", "?"))
    ref, low = f"Order {number}", f"order {number}"
    cur = str(order.get("currency") or "EUR")
    status = str(order.get("status") or "unknown")
    method = str(order.get("shipping_method") or "")
    placed, shipped, delivered, cancelled, returned = (
        day(order.get(k)) for k in ("created_at", "shipped_at", "delivered_at", "cancelled_at", "returned_at")
    )
    preorder = bool(order.get("preorder"))
    L = Line.of
    lines: list[Line] = []

    # Status, with its date where the record has one.
    if status == "delivered":
        lines.append(
            L(
                f"{ref} was delivered on {delivered}." if delivered else f"{ref} is delivered.",
                "status",
                "delivered",
            )
        )
    elif status == "shipped":
        when = f" on {shipped}" if shipped else ""
        lines.append(
            L(f"{ref} shipped{when} and is not marked as delivered yet.", "status", "shipment", "delivered")
        )
    elif status == "processing":
        kind = "a pre-order that is" if preorder else ""
        lines.append(
            L(
                f"{ref} is {kind} being processed and has not shipped yet.".replace("  ", " "),
                "status",
                "shipment",
                "delivered",
                "preorder",
            )
        )
    elif status == "cancelled":
        lines.append(
            L(
                f"{ref} was cancelled on {cancelled}." if cancelled else f"{ref} was cancelled.",
                "status",
                "cancel",
            )
        )
    elif status == "returned":
        lines.append(
            L(
                f"{ref} was returned on {returned}." if returned else f"{ref} was returned.",
                "status",
                "return",
            )
        )
    elif status == "refunded":
        lines.append(L(f"{ref} was refunded.", "status", "refund"))
    else:
        lines.append(L(f"{ref} has the status {status}.", "status"))
    if preorder and status != "processing":
        lines.append(L(f"{ref} was a pre-order.", "preorder"))
    if placed:
        lines.append(L(f"{ref} was placed on {placed}.", "placed"))

    # Shipment: carrier and every tracking number (split shipments: one per parcel).
    carrier = order.get("carrier")
    numbers = [
        str(t) for t in [order.get("tracking_number"), *(order.get("additional_tracking_numbers") or [])] if t
    ]
    if method == "email":
        if shipped:
            lines.append(L(f"{ref} was sent by email on {shipped}.", "shipment", "delivered", "method"))
    elif shipped or numbers:
        text = f"{ref} shipped"
        if len(numbers) > 1:
            text += f" in {len(numbers)} parcels"
        if shipped:
            text += f" on {shipped}"
        if carrier:
            text += f" with {carrier}"
        if len(numbers) > 1:
            text += f", tracking numbers {_and(numbers)}."
        elif numbers:
            text += f", tracking number {numbers[0]}."
        else:
            text += "; no tracking number is recorded."
        lines.append(L(text, "shipment", "tracking", "carrier"))
    elif carrier and status not in ("cancelled", "refunded"):
        lines.append(
            L(
                f"{ref} is assigned to {carrier} and has no tracking number yet.",
                "carrier",
                "tracking",
                "shipment",
            )
        )
    elif "tracking" in wanted or "carrier" in wanted:
        lines.append(L(f"{ref} has no tracking number.", "tracking", "carrier"))

    # Dates the status line did not already state.
    if delivered and status != "delivered" and method != "email":
        lines.append(L(f"{ref} was delivered on {delivered}.", "delivered"))
    if cancelled and status != "cancelled":
        lines.append(L(f"{ref} was cancelled on {cancelled}.", "cancel"))
    if returned and status != "returned":
        lines.append(L(f"{ref} was returned on {returned}.", "return"))

    items = [
        f"{i.get('qty', 1)} × {i.get('name', '?')} ({i.get('sku', '?')}"
        + (f", {i['variant']}" if i.get("variant") else "")
        + f") at {money(i.get('unit_price'), cur)}"
        for i in order.get("items") or []
        if isinstance(i, Mapping)
    ]
    if items:
        lines.append(L(f"Items in {low}: " + "; ".join(items) + ".", "items"))

    # Money: what was paid, then how the total is made up.
    total = money(order.get("total"), cur)
    paid_by = order.get("payment_method")
    lines.append(
        L(f"{ref} cost {total} in total" + (f", paid by {paid_by}." if paid_by else "."), "payment", "total")
    )
    parts = [f"items {money(order.get('subtotal'), cur)}"]
    if order.get("discount"):
        parts.append(f"discount -{money(order.get('discount'), cur)}")
    if isinstance(order.get("shipping_cost"), int | float):
        parts.append(f"shipping {money(order.get('shipping_cost'), cur)}")
    if order.get("duties_and_taxes"):
        parts.append(f"duties and taxes {money(order.get('duties_and_taxes'), cur)}")
    lines.append(L(f"Charges on {low}: " + ", ".join(parts) + f"; total {total}.", "charges"))
    if order.get("promo_code"):
        lines.append(
            L(
                f"{ref} used promo code {order['promo_code']} for a discount of {money(order.get('discount'), cur)}.",
                "promo",
            )
        )
    elif order.get("discount"):
        lines.append(L(f"{ref} had a discount of {money(order.get('discount'), cur)}.", "promo"))
    elif "promo" in wanted:
        lines.append(L(f"{ref} used no promo code or discount.", "promo"))

    addr = order.get("shipping_address")
    where = ""
    if isinstance(addr, Mapping):
        town = " ".join(str(addr[k]) for k in ("postcode", "city") if addr.get(k))
        where = ", ".join(
            str(p) for p in (addr.get("name"), addr.get("line1"), town, addr.get("country")) if p
        )
    how = _METHODS.get(method, f"{method} shipping" if method else "")
    if how or where:
        # A digital order has no parcel to send anywhere: its address says nothing.
        to = f" to {where}." if where and method != "email" else "."
        text = f"Shipping for {low}: {how or 'shipping'}{to}"
        lines.append(L(text, "address", "method"))

    refunds = [r for r in order.get("refunds") or [] if isinstance(r, Mapping)]
    for r in refunds:
        text = f"{money(r.get('amount'), cur)} was refunded for {low}"
        if day(r.get("created_at")):
            text += f" on {day(r.get('created_at'))}"
        if r.get("method"):
            text += f" to {r['method']}"
        if r.get("reason"):
            reason = str(r["reason"])
            text += f" (reason: {_REASONS.get(reason, reason.replace('_', ' '))})"
        lines.append(L(text + ".", "refund"))
    if len(refunds) > 1 and isinstance(order.get("refunded_total"), int | float):
        lines.append(L(f"{ref} has {money(order['refunded_total'], cur)} refunded in total.", "refund"))
    if not refunds and "refund" in wanted:
        lines.append(L(f"No refund is recorded for {low}.", "refund"))

    if foreign:
        # A number quoted in ticket text may be someone else's: say so instead of hiding it.
        lines.append(L(OWNER_NOTE.format(number=number), "owner"))
    return lines


def order_fields(question: str, order: Mapping[str, Any] | None = None) -> set[str]:
    """The order fields a question asks for, with the lines that come along (a status answer
    says where the parcel is); a question naming one of the order's items adds the items."""
    fields = asked(question, ORDER_ASKS)
    if order is not None and names_an_item(question, order):
        # "has the garden light kit shipped?": the items line says what it is, plus the answer
        # (where the order stands when nothing else is asked).
        fields |= {"items"} if fields else {"items", *ORDER_DEFAULT}
    for f in list(fields):
        fields.update(ORDER_EXPAND.get(f, ()))
    return fields


def names_an_item(question: str, order: Mapping[str, Any]) -> bool:
    """Does the question name one of the order's items ("has the garden light kit shipped?")?"""
    q = content_words(question)
    return any(
        q & content_words(f"{i.get('name', '')} {i.get('sku', '')}")
        for i in order.get("items") or []
        if isinstance(i, Mapping)
    )


def order_evidence(
    order: Mapping[str, Any],
    agent: str,
    score: float,
    question: str = "",
    *,
    foreign: bool = False,
    facts: bool = True,
) -> Evidence:
    """The order's evidence; `facts` are the lines `question` asks for (status and shipment when
    it asks nothing recognisable)."""
    number = str(order.get("order_number", "?"))
    fields = order_fields(question, order)
    lines = order_lines(order, asked_fields=fields, foreign=foreign)
    items = " ".join(
        f"{i.get('name', '')} {i.get('sku', '')}" for i in order.get("items") or [] if isinstance(i, Mapping)
    )
    # An asked field the record lacks falls back to where the order stands; a question about
    # something else entirely (a policy) gets no facts from the order.
    known = fields or asks_only_about_the_record(question_text(question), items)
    default = ORDER_DEFAULT if known else ()
    chosen = select(lines, fields, default, always=("owner",)) if facts else ()
    return Evidence(
        id=f"order:{number}",
        title=f"Order {number}",
        text=join(lines),
        kind="order",
        score=score,
        agent=agent,
        facts=chosen,
    )


def status_evidence(order: Mapping[str, Any], agent: str, score: float) -> Evidence:
    """The order's evidence with its status line as the fact (an entry in an order history)."""
    lines = order_lines(order)
    return Evidence(
        id=f"order:{order.get('order_number', '?')}",
        title=f"Order {order.get('order_number', '?')}",
        text=join(lines),
        kind="order",
        score=score,
        agent=agent,
        facts=select(lines, {"status"}),
    )


def customer_lines(customer: Mapping[str, Any], orders: Sequence[Mapping[str, Any]]) -> list[Line]:
    """The customer record as self-contained sentences (no street address: the orders hold it)."""
    L = Line.of
    name = (
        " ".join(str(customer[k]) for k in ("first_name", "last_name") if customer.get(k)) or "The customer"
    )
    lines: list[Line] = []
    ident = ", ".join(
        str(v)
        for v in (customer.get("email"), f"customer {customer['id']}" if customer.get("id") else None)
        if v
    )
    lines.append(L(f"The customer is {name}" + (f" ({ident})." if ident else "."), "name"))
    place = ", ".join(str(customer[k]) for k in ("city", "country") if customer.get(k))
    if place:
        lines.append(L(f"{name} is based in {place}.", "location"))
    if customer.get("oak_club_member") is True:
        since = day(customer.get("oak_club_since"))
        lines.append(L(f"{name} is an Oak Club member" + (f" since {since}." if since else "."), "member"))
    elif customer.get("oak_club_member") is False:
        lines.append(L(f"{name} is not an Oak Club member.", "member"))
    if day(customer.get("created_at")):
        lines.append(L(f"{name} has been a customer since {day(customer.get('created_at'))}.", "since"))
    count = customer.get("order_count")
    if not isinstance(count, int) or isinstance(count, bool):
        count = None
    if count is not None:
        lines.append(L(f"{name} has placed {count} order{'s' if count != 1 else ''}.", "count", "orders"))
    if orders:
        listed = [
            f"{o.get('order_number', '?')} (placed {day(o.get('created_at')) or '?'}, {o.get('status', 'unknown')})"
            for o in orders
        ]
        label = "newest order" if len(listed) == 1 else f"newest {len(listed)} orders"
        lines.append(L(f"{name}'s {label}: " + "; ".join(listed) + ".", "orders"))
    if customer.get("language"):
        lines.append(L(f"{name}'s language: {customer['language']}.", "language"))
    if isinstance(customer.get("marketing_opt_in"), bool):
        opted = "has opted in to" if customer["marketing_opt_in"] else "has not opted in to"
        lines.append(L(f"{name} {opted} marketing emails.", "marketing"))
    return lines


def customer_evidence(
    customer: Mapping[str, Any],
    orders: Sequence[Mapping[str, Any]],
    agent: str,
    score: float,
    question: str = "",
) -> Evidence:
    lines = customer_lines(customer, orders)
    fields = asked(question, CUSTOMER_ASKS)
    key = customer.get("email") or customer.get("id") or "?"
    name = " ".join(str(customer[k]) for k in ("first_name", "last_name") if customer.get(k))
    return Evidence(
        id=f"customer:{key}",
        title=f"Customer {name or key}",
        text=join(lines),
        kind="customer",
        score=score,
        agent=agent,
        facts=select(lines, fields, CUSTOMER_DEFAULT) if fields else (),
    )


def asks_about_customer(question: str) -> bool:
    """Is this about the person (membership, order count, where they live) rather than an order?"""
    fields = asked(question, CUSTOMER_ASKS)
    # "placed" and "items" come with order-history questions ("how many orders has she placed?");
    # any other order field means the order is the subject ("he's Oak Club, why did he pay
    # shipping?": the order, with the customer beside it).
    order_fields = asked(question, ORDER_ASKS)
    if fields & _CUSTOMER_FIRST:
        return not (order_fields - {"placed", "items"})
    return bool(fields) and not order_fields


def focus_orders(question: str, orders: Sequence[Mapping[str, Any]], anchor: str | None = None) -> list[int]:
    """Which of the customer's orders (newest first) a question is about: those holding an item
    it names, else those showing the event it asks about (cancelled, returned, refunded), else
    the one before the order the conversation is at ("and the one before that?"), else the
    newest."""
    if not orders:
        return []
    named = [i for i, o in enumerate(orders) if names_an_item(question, o)]
    if named:
        return named
    fields = asked(question, ORDER_ASKS)
    events = [f for f in _EVENTS if f in fields]
    if events:
        showing = [i for i, o in enumerate(orders) if any(_EVENTS[f](o) for f in events)]
        if showing:
            return showing
    if anchor and _BEFORE_RE.search(question):
        numbers = [str(o.get("order_number", "")).upper() for o in orders]
        if anchor.upper() in numbers and numbers.index(anchor.upper()) + 1 < len(orders):
            return [numbers.index(anchor.upper()) + 1]
    return [0]


# --- lookups ------------------------------------------------------------------------------------------
def _commerce(ctx: AgentContext) -> CommerceAPI:
    api = ctx.services.get("commerce")
    if api is None:
        raise ToolUnavailable("the order system is not configured")
    return api


def find_order_number(query: str, ticket: Mapping[str, Any]) -> str | None:
    """From the request first, then the ticket's custom fields, subject and description."""
    for text in (
        query,
        *custom_field_values(ticket),
        str(ticket.get("subject") or ""),
        str(ticket.get("description") or ""),
    ):
        m = ORDER_NUMBER_RE.search(text)
        if m:
            return m.group(0).upper()
    return None


def find_customer_key(query: str, ticket: Mapping[str, Any]) -> str | None:
    m = EMAIL_RE.search(query)
    if m:
        return m.group(0)
    email = requester_email(ticket)
    if email:
        return email
    rid = ticket.get("requester_id")
    return str(rid) if isinstance(rid, int | str) and not isinstance(rid, bool) and str(rid) else None


def requester_owns(api: CommerceAPI, order: Mapping[str, Any], ticket: Mapping[str, Any]) -> bool | None:
    """Does the order belong to the ticket's requester? None when the requester is unknown."""
    email = requester_email(ticket)
    if email is None and ticket.get("requester_id") not in (None, ""):
        try:
            customer = api.get_customer(str(ticket["requester_id"]))
        except ToolError:
            return None
        email = customer.get("email") if customer else None
    if not email or not order.get("email"):
        return None
    return str(order["email"]).lower() == email.lower()


class OrderLookupAgent(BaseAgent):
    max_evidence = 5

    def tools(self) -> dict[str, Any]:
        return {"get_order": self.get_order, "customer_orders": self.customer_orders}

    def get_order(self, ctx: AgentContext, order_number: str) -> dict[str, Any]:
        if not isinstance(order_number, str) or not ORDER_NUMBER_RE.fullmatch(order_number.strip()):
            raise ToolError("order_number must look like BO-123456")
        api = _commerce(ctx)
        order = api.get_order(order_number.strip().upper())
        if order is None:
            return {"evidence": [], "data": {"not_found": order_number}}
        owner = requester_owns(api, order, ctx.ticket)
        question = _QUESTION.get()
        evidence = [order_evidence(order, self.name, 1.0, question, foreign=owner is False)]
        if asked(question, CUSTOMER_ASKS) and order.get("email"):
            # "he's Oak Club, why did he pay shipping?": the order, and who the customer is.
            customer = api.get_customer(str(order["email"]))
            if customer is not None:
                evidence.append(customer_evidence(customer, [order], self.name, 0.5, question))
        return {
            "evidence": evidence,
            "data": {"order": order, "requester_owns_order": owner, "query_context": order_context(order)},
        }

    def customer_orders(self, ctx: AgentContext, customer: str) -> dict[str, Any]:
        api = _commerce(ctx)
        record = api.get_customer(customer)
        if record is None:
            return {"evidence": [], "data": {}}
        limit = int(self.manifest.config.get("max_orders", 5))
        orders = api.orders_for_customer(str(record.get("email") or customer))[:limit]
        question = _QUESTION.get()
        about_person = asks_about_customer(question) and not _CHOOSE_RE.search(question)
        # Newest first; for an order question the orders it is about (by default the newest, most
        # likely the ticket's) lead and alone get facts; a question about the person gets the
        # customer's facts instead.
        focus = [] if about_person else focus_orders(question, orders, _ANCHOR.get())
        ranked = [orders[i] for i in focus] + [o for i, o in enumerate(orders) if i not in focus]
        evidence = [
            order_evidence(o, self.name, round(0.8 - 0.1 * i, 2), question, facts=i < len(focus))
            for i, o in enumerate(ranked)
        ]
        if about_person and asked(question, CUSTOMER_ASKS) & {"count", "orders"}:
            # "does he have any orders with us?": each order says what it is, citing itself.
            evidence = [status_evidence(o, self.name, e.score) for o, e in zip(ranked, evidence, strict=True)]
        person = customer_evidence(record, orders, self.name, 0.9 if about_person else 0.3, question)
        evidence = [person, *evidence] if about_person else [*evidence, person]
        public = {
            k: record.get(k) for k in ("id", "first_name", "last_name", "email", "country", "oak_club_member")
        }
        data: dict[str, Any] = {"customer": public, "orders": orders}
        if len(orders) == 1:
            data["order"] = orders[0]
            data["query_context"] = order_context(orders[0])
        return {"evidence": evidence, "data": data}

    def offline_tool_call(self, query: str, ctx: AgentContext, attempt: int) -> ToolCall | None:
        question = _QUESTION.get() or question_text(query, ctx)
        number = find_order_number(query, ctx.ticket)
        customer = find_customer_key(query, ctx.ticket)
        named = ORDER_NUMBER_RE.search(question) is not None
        if attempt == 1 and customer and not named and asks_about_customer(question):
            return ToolCall("customer_orders", {"customer": customer}, "a question about the customer")
        if attempt == 1 and customer and not named and _CHOOSE_RE.search(question):
            return ToolCall("customer_orders", {"customer": customer}, "a choice among the customer's orders")
        if attempt == 1 and number:
            return ToolCall("get_order", {"order_number": number}, "order number in the request or ticket")
        if customer and (attempt == 1 or number):
            # attempt 2 after an unknown number: the requester's orders may show the right one
            return ToolCall("customer_orders", {"customer": customer}, "the requester's orders")
        return None

    def run(self, query: str, ctx: AgentContext) -> AgentResult:
        token = _QUESTION.set(question_text(query, ctx))
        anchor = _ANCHOR.set(find_order_number(query, ctx.ticket))
        try:
            result = super().run(query, ctx)
        finally:
            _ANCHOR.reset(anchor)
            _QUESTION.reset(token)
        missing = result.data.get("not_found")
        if missing and result.status == "ok":
            # The retry listed the requester's orders: say the number asked about does not exist.
            result.summary = (
                f"No order {missing} in the order system. The requester's orders: {result.summary}"
            )
        return result

    def summarise(self, query: str, evidence: list[Evidence], ctx: AgentContext) -> str:
        """The facts found (extractive): what was asked, from the record that answers it."""
        orders = [e for e in evidence if e.kind == "order"]
        said = [f for e in evidence for f in e.facts]
        if len(orders) > 1 and not any(e.kind == "customer" and e.facts for e in evidence):
            first = orders[0]
            status = first.text.splitlines()[0]
            others = ", ".join(e.title for e in orders[1:4])
            return f"{len(orders)} orders; newest: {' '.join(first.facts) or status} Others: {others}."
        if said:
            return " ".join(said)
        return evidence[0].text.splitlines()[0] if evidence else ""


def order_context(order: dict[str, Any]) -> str:
    """What later stages should know of an order to find the right policy: what was bought, and
    where it stands (the orchestrator appends this to their queries)."""
    items = ", ".join(str(i.get("name")) for i in order.get("items") or [] if i.get("name"))
    return f"order {order.get('status', '')}: {items}".strip()[:300]
