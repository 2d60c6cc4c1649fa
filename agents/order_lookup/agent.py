"""Orders in the store's order system: status, items, payment, shipping, tracking, refunds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from agents.base import AgentContext, AgentResult, BaseAgent, Evidence, ToolCall, ToolError, ToolUnavailable
from agents.commerce import ORDER_NUMBER_RE, CommerceAPI
from agents.common import EMAIL_RE, custom_field_values, day, money, requester_email


def render_order(order: Mapping[str, Any]) -> str:
    """Concise, factual text for one order record (only what the record says)."""
    cur = str(order.get("currency") or "EUR")
    lines = [f"Status: {order.get('status', 'unknown')}" + (" (pre-order)" if order.get("preorder") else "")]
    dates = [
        f"{label} {day(order.get(key))}"
        for label, key in (
            ("placed", "created_at"),
            ("shipped", "shipped_at"),
            ("delivered", "delivered_at"),
            ("cancelled", "cancelled_at"),
            ("returned", "returned_at"),
        )
        if day(order.get(key))
    ]
    if dates:
        lines.append("Dates: " + ", ".join(dates))
    items = [
        f"{i.get('qty', 1)} x {i.get('name', '?')} ({i.get('sku', '?')}"
        + (f", {i['variant']}" if i.get("variant") else "")
        + f") {money(i.get('unit_price'), cur)}"
        for i in order.get("items") or []
        if isinstance(i, Mapping)
    ]
    if items:
        lines.append("Items: " + "; ".join(items))
    pay = f"Total {money(order.get('total'), cur)} paid by {order.get('payment_method', 'unknown')}"
    if order.get("discount"):
        pay += f" (discount {money(order.get('discount'), cur)}" + (
            f", code {order['promo_code']})" if order.get("promo_code") else ")"
        )
    lines.append(pay)
    ship = f"Shipping: {order.get('shipping_method', '?')}"
    if order.get("carrier"):
        ship += f" with {order['carrier']}"
    if order.get("tracking_number"):
        ship += f", tracking {order['tracking_number']}"
    extra = [t for t in order.get("additional_tracking_numbers") or [] if t]
    if extra:
        ship += " (+ " + ", ".join(map(str, extra)) + ")"
    addr = order.get("shipping_address")
    if isinstance(addr, Mapping) and addr.get("city"):
        ship += f"; to {addr.get('city')}, {addr.get('country', '')}".rstrip(", ")
    lines.append(ship)
    refunds = [r for r in order.get("refunds") or [] if isinstance(r, Mapping)]
    if refunds:
        lines.append(
            "Refunds: "
            + "; ".join(
                f"{money(r.get('amount'), cur)} on {day(r.get('created_at')) or '?'} ({r.get('reason', '?')}, to {r.get('method', '?')})"
                for r in refunds
            )
        )
    return "\n".join(lines)


def order_evidence(order: Mapping[str, Any], agent: str, score: float) -> Evidence:
    number = str(order.get("order_number", "?"))
    return Evidence(
        id=f"order:{number}",
        title=f"Order {number}",
        text=render_order(order),
        kind="order",
        score=score,
        agent=agent,
    )


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
        evidence = order_evidence(order, self.name, 1.0)
        owner = requester_owns(api, order, ctx.ticket)
        if owner is False:
            # A number quoted in ticket text may be someone else's: say so instead of hiding it.
            evidence = replace(
                evidence,
                text=evidence.text + "\nNote: this order belongs to a different customer than the requester.",
            )
        return {
            "evidence": [evidence],
            "data": {"order": order, "requester_owns_order": owner, "query_context": order_context(order)},
        }

    def customer_orders(self, ctx: AgentContext, customer: str) -> dict[str, Any]:
        api = _commerce(ctx)
        record = api.get_customer(customer)
        if record is None:
            return {"evidence": [], "data": {}}
        limit = int(self.manifest.config.get("max_orders", 5))
        orders = api.orders_for_customer(str(record.get("email") or customer))[:limit]
        # Newest first; the newest is most likely the one the ticket is about.
        evidence = [order_evidence(o, self.name, round(0.8 - 0.1 * i, 2)) for i, o in enumerate(orders)]
        public = {
            k: record.get(k) for k in ("id", "first_name", "last_name", "email", "country", "oak_club_member")
        }
        data: dict[str, Any] = {"customer": public, "orders": orders}
        if len(orders) == 1:
            data["order"] = orders[0]
            data["query_context"] = order_context(orders[0])
        return {"evidence": evidence, "data": data}

    def offline_tool_call(self, query: str, ctx: AgentContext, attempt: int) -> ToolCall | None:
        number = find_order_number(query, ctx.ticket)
        customer = find_customer_key(query, ctx.ticket)
        if attempt == 1 and number:
            return ToolCall("get_order", {"order_number": number}, "order number in the request or ticket")
        if customer and (attempt == 1 or number):
            # attempt 2 after an unknown number: the requester's orders may show the right one
            return ToolCall("customer_orders", {"customer": customer}, "the requester's orders")
        return None

    def run(self, query: str, ctx: AgentContext) -> AgentResult:
        result = super().run(query, ctx)
        missing = result.data.get("not_found")
        if missing and result.status == "ok":
            # The retry listed the requester's orders: say the number asked about does not exist.
            result.summary = (
                f"No order {missing} in the order system. The requester's orders: {result.summary}"
            )
        return result

    def summarise(self, query: str, evidence: list[Evidence], ctx: AgentContext) -> str:
        first = evidence[0]
        status = first.text.splitlines()[0]
        if len(evidence) == 1:
            return f"{first.title}: {status[0].lower()}{status[1:]}."
        rest = ", ".join(f"{e.title} ({e.text.splitlines()[0].split(': ', 1)[-1]})" for e in evidence[1:4])
        return (
            f"{len(evidence)} orders; newest {first.title}: {status[0].lower()}{status[1:]}. Others: {rest}."
        )


def order_context(order: dict[str, Any]) -> str:
    """What later stages should know of an order to find the right policy: what was bought, and
    where it stands (the orchestrator appends this to their queries)."""
    items = ", ".join(str(i.get("name")) for i in order.get("items") or [] if i.get("name"))
    return f"order {order.get('status', '')}: {items}".strip()[:300]
