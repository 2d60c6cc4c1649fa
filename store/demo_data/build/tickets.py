"""Ticket generator: turns hand-written scenarios into Zendesk tickets with comment threads.

Two phases, because order numbers and ticket ids are assigned chronologically at the end:
``plan`` picks scenario variants, customers, orders and timestamps (and updates the orders),
``render`` formats the text once every id is known.

Template placeholders (``{name}``) available to scenario text are produced by ``_context``.
Pairing rules that keep a conversation coherent:
- the resolution is ``resolutions[i % len]`` where ``i`` is the index of the chosen follow-up;
- with ``pair_replies`` the agent reply is ``replies[j % len]`` where ``j`` is the opener index;
- ``variants`` (optional) are dicts merged over the scenario, for stories that differ end to end.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from store.demo_data.build.commerce import (
    BULKY_COUNTRIES,
    COUNTRY_NAMES,
    EU,
    FREE_RETURNS,
    IMMEDIATE,
    KLARNA_COUNTRIES,
    PAYMENT_PHRASE,
    PHYSICAL,
    PRODUCT_BY_SKU,
    STREETS,
    ZONES,
    Commerce,
    refund_timing,
)
from store.demo_data.build.common import EPOCH, ZENDESK, add_business_days, day, iso, money, text_to_html
from store.demo_data.sources.catalog import COUNTRIES

START = datetime(2025, 7, 1, 8, 0, tzinfo=EPOCH.tzinfo)
FIELD_ORDER, FIELD_REASON, FIELD_SKU, FIELD_COUNTRY = 360011112221, 360011112222, 360011112223, 360011112224
TICKET_FIELDS = [
    {"id": FIELD_ORDER, "title": "Order number", "type": "text"},
    {"id": FIELD_REASON, "title": "Contact reason", "type": "tagger"},
    {"id": FIELD_SKU, "title": "Product SKU", "type": "text"},
    {"id": FIELD_COUNTRY, "title": "Customer country", "type": "text"},
]
GROUPS = {
    "orders": 360000100001,
    "returns": 360000100002,
    "care": 360000100002,
    "billing": 360000100003,
    "account": 360000100003,
    "tech": 360000100004,
}
AGENT_FOCUS = {
    "orders": ("orders", "all"),
    "returns": ("returns", "orders"),
    "care": ("returns", "content", "tech"),
    "billing": ("billing",),
    "account": ("billing", "tech", "all"),
    "tech": ("tech",),
}
# Days between follow-up and resolution where the real process takes time (carrier claims, returns in transit).
SLOW = {
    "lost_parcel": (3, 6), "delivered_not_received": (1, 3), "cancel_after_ship": (4, 8),
    "address_change_international": (6, 10), "pickup_point_returned": (5, 8), "return_how_to": (5, 9),
    "klarna_return_pause": (4, 8), "return_from_non_eu": (8, 14), "gift_return": (5, 9),
    "return_label_expired": (4, 8), "exchange_size": (2, 5), "wrong_item_sent": (2, 4), "damaged_on_arrival": (1, 3),
    "chargeback_open": (2, 5), "duties_charged": (1, 3), "lost_2fa": (0, 1), "preorder_delay": (1, 3),
}  # fmt: skip
OTHER_COUNTRIES = [
    "Poland",
    "Sweden",
    "Portugal",
    "Czechia",
    "Finland",
    "Australia",
    "Canada",
    "Greece",
    "Hungary",
]
COMPANIES = ["Café De Linde", "Atelier Noord", "Camping Zonneweide", "Studio Fjell", "Kaffeehaus Weber", "Hôtel Rivière",
             "Bistro Oost", "Gasthof Alpenblick", "Yoga Loft", "Boulangerie Martin", "Fietscafé Velo"]  # fmt: skip
PHONES = [("Pixel 8, Android 15", "Android"), ("iPhone 13, iOS 18.1", "iOS"), ("Samsung Galaxy A54, Android 14", "Android"),
          ("iPhone 15 Pro, iOS 18.0", "iOS"), ("OnePlus 11, Android 14", "Android"), ("iPhone SE, iOS 17.6", "iOS")]  # fmt: skip
VAT = {
    "DE": 0.19,
    "BE": 0.21,
    "FR": 0.20,
    "AT": 0.20,
    "ES": 0.21,
    "IT": 0.22,
    "DK": 0.25,
    "IE": 0.23,
    "LU": 0.17,
}
SIZE_ORDER = {"AP-411": ["S", "M", "L", "XL", "XXL"], "AP-412": ["S", "M", "L", "XL", "XXL"],
              "AP-413": ["S (36-38)", "M (39-42)", "L (43-46)"], "AP-414": [str(s) for s in range(36, 48)]}  # fmt: skip
NEAR_THRESHOLD = [["KI-301", "CA-208"], ["KI-306", "KI-305"], ["OF-107", "KI-306"]]

GREETINGS = {
    "polite": ["Hi,", "Hello,", "Good morning,", "Hi there,", "Hello Bramble & Oak,"],
    "formal": ["Dear Sir or Madam,", "Dear Bramble & Oak team,", "Dear customer service,"],
    "chatty": ["Hi!", "Hello there!", "Hi team!", "Hey!"],
    "terse": [""],
    "sloppy": ["", "hi", "hey"],
    "non_native": ["Hello,", "Good day,", "Dear team,", "Hello together,"],
}
SIGNOFFS = {
    "polite": ["Thanks,\n{first}", "Best,\n{first}", "Thank you!\n{first} {last}", "Many thanks,\n{first}"],
    "formal": [
        "Kind regards,\n{first} {last}",
        "Yours faithfully,\n{first} {last}",
        "With kind regards,\n{first} {last}",
    ],
    "chatty": ["Thanks so much!!\n{first}", "Cheers, {first}", "Have a lovely day,\n{first} x"],
    "terse": ["", "{first}", "- {first}"],
    "sloppy": ["", "thx", "Sent from my iPhone"],
    "non_native": [
        "Thank you and best regards\n{first} {last}",
        "Greetings,\n{first}",
        "Thanks in advance!\n{first} {last}",
    ],
}
CHATTY_EXTRAS = ["First time ordering from you, so not sure how this works.", "Sorry for the long message!",
                 "We love your stuff by the way.", "My partner says I worry too much, but still :)"]  # fmt: skip
CONTEXT_LINES = ["I'm at work until six, so email is best.", "My order number is {order}.", "The order is in my name, {full}.",
                 "I'm in {city}, if that matters.", "I've been a customer for a while and never had issues before."]  # fmt: skip
AGENT_GREETINGS = ["Hi {first},", "Hello {first},", "Dear {first},", "Hi {first}, thanks for reaching out.",
                   "Hi {first}, thanks for your message.", "Hello {first}, thank you for contacting us."]  # fmt: skip
AGENT_SIGNOFFS = ["Best regards,\n{agent}\nBramble & Oak Customer Care", "Kind regards,\n{agent}", "Warm regards,\n{agent} – Bramble & Oak Support",
                  "Have a great day!\n{agent}", "All the best,\n{agent} | Bramble & Oak"]  # fmt: skip
AGENT_OPENERS = ["Sorry for the wait.", "Thanks for your patience.", "I've had a look at this for you.",
                 "Thanks for getting in touch with us."]  # fmt: skip
AGENT_CLOSERS = ["Let me know if anything is unclear.", "If you have any other questions, just reply to this email.",
                 "I'll keep this ticket open in case you need anything else.", "Hope this helps!"]  # fmt: skip
CLARIFY_ASK = [
    "Could you send me your order number? It starts with BO- and is in your confirmation email.",
    "Happy to look into this – which order is it about? The number starts with BO-.",
    "To find your order, could you let me know the order number (BO-…) or the email address you ordered with?",
]
CLARIFY_ANSWER = [
    "{order}",
    "It's {order}, sorry!",
    "Order number is {order}.",
    "Here you go: {order}",
    "{order} – thanks",
]
GENERIC_NOTES_ORDER = [
    "OMS check: {order} paid with {payment_name}, items match what the customer describes.",
    "Repeat customer, no earlier complaints on the account.",
    "Checked {order} in the order system – nothing unusual. Replying with the policy.",
    "Customer is in {country}; double-checked the country rules before replying.",
]
GENERIC_NOTES = [
    "No order involved – policy question, standard answer.",
    "Account checked: email verified, no open orders or returns.",
    "Third ticket about this this week – flagging to Bram for a Help Center tweak.",
]
THANKS = [
    "Thanks again!",
    "Perfect, thank you.",
    "Great service, thanks!",
    "👍",
    "Thank you so much for your help.",
    "thx",
]


@dataclass
class Plan:
    scenario: dict[str, Any]
    customer: dict[str, Any]
    order: dict[str, Any] | None
    agent: dict[str, Any]
    channel: str
    status: str
    created: datetime
    opener: int
    reply: int
    followup: int
    resolution: Any
    internal: str | None
    thanks: str | None
    times: dict[str, datetime]
    rand: dict[str, Any] = field(default_factory=dict)


def load_scenarios() -> list[dict[str, Any]]:
    from store.demo_data.sources import (
        scenarios_account_tech,
        scenarios_billing,
        scenarios_more,
        scenarios_orders,
        scenarios_returns,
    )

    scenarios = [*scenarios_orders.SCENARIOS, *scenarios_returns.SCENARIOS, *scenarios_billing.SCENARIOS]
    scenarios += [*scenarios_account_tech.SCENARIOS, *scenarios_more.SCENARIOS]
    keys = [s["key"] for s in scenarios]
    dupes = {k for k in keys if keys.count(k) > 1}
    if dupes:
        raise ValueError(f"duplicate scenario keys: {sorted(dupes)}")
    return scenarios


class TicketBuilder:
    def __init__(
        self,
        rng: random.Random,
        commerce: Commerce,
        agents: list[dict[str, Any]],
        article_urls: dict[str, str],
    ) -> None:
        self.rng = rng
        self.commerce = commerce
        self.agents = agents
        self.urls = article_urls
        self.plans: list[Plan] = []

    # ------------------------------------------------------------------ planning
    def plan_all(self, scenarios: list[dict[str, Any]]) -> None:
        for s in scenarios:
            for a in s["articles"]:
                if a not in self.urls:
                    raise ValueError(f"scenario {s['key']} cites unknown article {a!r}")
            for _ in range(s["n"]):
                self.plans.append(self._plan(s))

    def _plan(self, base: dict[str, Any]) -> Plan:
        rng = self.rng
        s = dict(base)
        if "variants" in base:
            s.update(rng.choice(base["variants"]))
        roll = rng.random()
        status = "open" if roll < 0.04 else "pending" if roll < 0.09 else "solved"
        if status == "solved":
            created = START + timedelta(
                seconds=rng.random() * ((EPOCH - timedelta(days=19)) - START).total_seconds()
            )
        else:
            created = EPOCH - timedelta(hours=rng.uniform(3, 96))
        created = created.replace(
            hour=rng.choice([6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22])
        )
        chan_weights = s.get("channels", {"email": 5, "web": 3, "chat": 2})
        channel = rng.choices(sorted(chan_weights), [chan_weights[c] for c in sorted(chan_weights)])[0]
        times = self._times(s["key"], created, channel, rng)
        # Open/pending tickets are recent: what has happened so far must lie before the tenant's "now".
        last_needed = times["reply"] if status == "pending" else times["internal"]
        if status != "solved" and last_needed > EPOCH:
            shift = last_needed - EPOCH + timedelta(minutes=rng.randint(20, 240))
            times = {k: v - shift for k, v in times.items()}
        created = times["opener"]
        spec = s.get("order")
        order = None
        if spec is None:
            customer = self.commerce.pick_customer(s.get("customer_countries"))
        else:
            customer, order = self._order_for(spec, created)
        focus = AGENT_FOCUS[s["group"]]
        agent = rng.choice([a for a in self.agents if a["focus"] in focus])
        opener = rng.randrange(len(s["openers"]))
        reply = opener % len(s["replies"]) if s.get("pair_replies") else rng.randrange(len(s["replies"]))
        followup = rng.randrange(len(s.get("followups") or [""]))
        resolution = s["resolutions"][followup % len(s["resolutions"])]
        if s.get("internal"):
            internal = rng.choice(s["internal"]) if rng.random() < 0.6 else None
        else:  # everyday notes agents leave for colleagues
            pool = GENERIC_NOTES_ORDER if s.get("order") else GENERIC_NOTES
            internal = rng.choice(pool) if rng.random() < 0.15 else None
        thanks = rng.choice(THANKS) if rng.random() < 0.2 else None
        plan = Plan(s, customer, order, agent, channel, status, created, opener, reply, followup, resolution,
                    internal, thanks, times)  # fmt: skip
        plan.rand = {
            "rand1": rng.randint(2, 9), "rand4": f"{rng.randint(1000, 9999)}", "rand6": f"{rng.randint(100000, 999999)}",
            "other_country": rng.choice(OTHER_COUNTRIES), "any_item": rng.choice(PHYSICAL)["name"],
            "company": rng.choice(COMPANIES), "phone": rng.choice(PHONES), "part_no": rng.choice("BCDF") + str(rng.randint(1, 9)),
            "fee": round(rng.uniform(8, 35), 2), "context": rng.random(), "extra": rng.random(),
            "greet": rng.random(), "sign": rng.random(), "ctx_line": rng.choice(CONTEXT_LINES), "chatty": rng.choice(CHATTY_EXTRAS),
            "street": f"{rng.choice(STREETS[COUNTRIES[customer['country']]['pool']])} {rng.randint(2, 140)}",
            "agent_greet": rng.choice(AGENT_GREETINGS), "agent_sign": rng.choice(AGENT_SIGNOFFS),
            "greeting": rng.choice(GREETINGS[customer["style"]]), "signoff": rng.choice(SIGNOFFS[customer["style"]]),
            "typo_seed": rng.random(), "wrong_item": None, "clarify": rng.random(),
        }  # fmt: skip
        if order is not None:
            self._apply_outcome(plan)
        return plan

    def _times(self, key: str, created: datetime, channel: str, rng: random.Random) -> dict[str, datetime]:
        """Comment times: agents answer in support hours; chats are live, emails take hours."""
        chat = channel == "chat"
        if chat:
            created = _working(created, rng)
        mins = lambda lo, hi: timedelta(minutes=rng.randint(lo, hi))  # noqa: E731
        t = {"opener": created}
        t["internal"] = created + mins(2, 6) if chat else _working(created + mins(10, 90), rng)
        t["reply"] = t["internal"] + mins(1, 6) if chat else _working(t["internal"] + mins(40, 900), rng)
        t["followup"] = t["reply"] + (mins(1, 5) if chat else mins(30, 1800))
        slow = SLOW.get(key)
        if slow:
            gap = timedelta(days=rng.randint(*slow), hours=rng.randint(1, 8))
            t["resolution"] = _working(t["followup"] + gap, rng)
        elif chat:
            t["resolution"] = t["followup"] + mins(1, 4)
        else:
            t["resolution"] = _working(t["followup"] + mins(45, 1300), rng)
        t["thanks"] = t["resolution"] + mins(2, 600)
        t["solved"] = t["resolution"] + mins(1, 20)
        return t

    def _pick_main_sku(self, spec: dict[str, Any]) -> str:
        rng = self.rng
        if spec.get("near_threshold"):
            return "NEAR"
        if "skus" in spec:
            return rng.choice(spec["skus"])
        pool = [p for p in PHYSICAL if p["price"] >= 20]
        # Bulky furniture only where the story is about it: its delivery works differently.
        pool = [p for p in pool if p["bulky"] == bool(spec.get("bulky"))]
        if spec.get("returnable"):
            pool = [p for p in pool if not p.get("non_returnable")]
        pool = [p for p in pool if p["sku"] not in spec.get("exclude_skus", [])]
        return rng.choice(pool)["sku"]

    def _order_for(self, spec: dict[str, Any], created: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
        rng, com = self.rng, self.commerce
        payments = spec.get("payment")
        for _ in range(100):  # re-pick until product, country and payment constraints can all be met
            main = self._pick_main_sku(spec)
            countries = set(spec.get("countries", COUNTRY_NAMES))
            if main != "NEAR" and PRODUCT_BY_SKU[main]["bulky"]:
                countries &= BULKY_COUNTRIES
            if main == "CA-207":
                countries &= EU
            if payments and all(p.startswith("Klarna") for p in payments):
                countries &= KLARNA_COUNTRIES
            if spec.get("free_returns_only"):
                countries &= FREE_RETURNS
            if countries:
                break
        else:
            raise ValueError(f"unsatisfiable order spec {spec}")
        member = spec.get("member")
        if spec.get("near_threshold"):
            member = False
        customer = com.pick_customer(sorted(countries), member)
        if main == "NEAR":
            skus = rng.choice(NEAR_THRESHOLD)
        else:
            skus = [main]
            if (
                not spec.get("single_item")
                and not PRODUCT_BY_SKU[main]["bulky"]
                and not PRODUCT_BY_SKU[main].get("digital")
            ):
                n_extra = 1 if spec.get("min_items", 1) >= 2 else (1 if rng.random() < 0.3 else 0)
                extras = [
                    p["sku"]
                    for p in PHYSICAL
                    if not p["bulky"] and p["sku"] != main and p["sku"] not in ("LU-606",)
                ]
                if customer["country"] not in EU:
                    extras = [x for x in extras if x != "CA-207"]
                skus += rng.sample(extras, n_extra)
        age_lo, age_hi = spec.get("age", (2, 10))
        if age_hi == 0:
            ordered = created - timedelta(minutes=rng.randint(75, 200))
        else:
            ordered = created - timedelta(days=rng.randint(age_lo, age_hi), hours=rng.randint(0, 10))
        method = spec.get("method") or ("express" if rng.random() < 0.12 else "standard")
        payment = com.payment_for(customer["country"], payments) if payments else None
        order = com.new_order(customer, ordered, skus, method=method, payment=payment, promo=spec.get("promo"),
                              preorder=bool(spec.get("preorder")))  # fmt: skip
        if spec.get("near_threshold"):
            for item in order["items"]:
                item["qty"] = 1
            _reprice(order, customer)
        while spec.get("min_total") and order["total"] < spec["min_total"]:
            order["items"][0]["qty"] += 1
            _reprice(order, customer)
        order["_spec"] = spec
        order["_main"] = order["items"][0]
        # Where the order stood when the customer wrote in.
        stage = spec["stage"]
        # Keep ordered < shipped < delivered < ticket: squeeze dispatch/delivery into the window if needed.
        if stage in ("shipped", "delivered"):
            com.ship(order, ordered)
            if order["shipped_at"] >= created:
                order["shipped_at"] = ordered + (created - ordered) * rng.uniform(0.15, 0.4)
        if stage == "delivered":
            com.deliver(order)
            if order["delivered_at"] >= created:
                shipped = order["shipped_at"]
                order["delivered_at"] = shipped + (created - shipped) * rng.uniform(0.5, 0.9)
            order["status"] = "delivered"
        elif stage == "shipped":
            order["status"] = "shipped"
        return customer, order

    def _apply_outcome(self, plan: Plan) -> None:
        """Move the order to the state the conversation ends in, and record refunds."""
        com, rng, order, s = self.commerce, self.rng, plan.order, plan.scenario
        assert order is not None
        spec = s["order"]
        res = plan.resolution if isinstance(plan.resolution, dict) else {}
        t_res = plan.times["resolution"]
        if spec.get("refunded_before"):
            com.deliver(order)
            returned = order["delivered_at"] + timedelta(days=rng.randint(5, 12))
            if returned >= plan.created - timedelta(days=2):
                returned = plan.created - timedelta(days=rng.randint(3, 6))
            order["returned_at"] = returned
            refund_at = add_business_days(returned, rng.randint(1, 3))
            refund_at = min(refund_at, plan.created - timedelta(hours=20))
            amount = _item_paid(order)
            if s["key"] == "bulky_return_fee":
                amount -= 49
            if s["key"] == "value_deduction":
                amount *= 0.6
            com.refund(order, amount, "return", refund_at)
            order["status"] = "returned"
            plan.rand["return_arrived"], plan.rand["refund_date"] = returned, refund_at
        if plan.status != "solved":
            if order["status"] == "processing" and spec["stage"] == "processing":
                return
            return
        final = res.get("status", spec.get("final", spec["stage"]))
        if final in ("delivered", "returned") and order["delivered_at"] is None:
            if order["shipped_at"] is None:  # it was still processing when the customer wrote
                com.ship(order, plan.times["reply"])
            com.deliver(order)
            # The customer hadn't received it when writing in: delivery falls between ticket and resolution.
            lo = max(plan.created, order["shipped_at"]) + timedelta(hours=1)
            if lo < t_res and not lo < order["delivered_at"] < t_res:
                order["delivered_at"] = lo + (t_res - lo) * rng.uniform(0.2, 0.8)
        if final == "returned" and not spec.get("refunded_before"):
            order["returned_at"] = t_res - timedelta(hours=rng.randint(2, 20))
        if final == "cancelled":
            order["cancelled_at"] = plan.times["reply"]
            order["shipped_at"] = None
            order["tracking_number"] = None
            if order["payment_method"] in IMMEDIATE:
                com.refund(order, order["total"], "cancellation", plan.times["reply"])
        if (
            final == "refunded"
            and order["shipped_at"]
            and s["key"] in ("cancel_after_ship", "address_change_international", "pickup_point_returned")
        ):
            order["returned_at"] = t_res - timedelta(hours=rng.randint(2, 20))
        order["status"] = final
        kind = res.get("refund")
        if kind:
            amount = self._refund_amount(kind, plan)
            method = "Gift card" if kind == "item_giftcard" else None
            com.refund(order, amount, kind.replace("item_giftcard", "gift_return"), t_res, method)

    def _refund_amount(self, kind: str, plan: Plan) -> float:
        order = plan.order
        assert order is not None
        main = order["_main"]
        return {
            "total": lambda: order["total"],
            "total_duplicate": lambda: order["total"],
            "item": lambda: _item_paid(order),
            "item_giftcard": lambda: _item_paid(order),
            "fee": lambda: plan.rand["fee"],
            "express_diff": lambda: _express_diff(order),
            "shipping": lambda: order["shipping_cost"],
            "goodwill": lambda: _goodwill(main["unit_price"]),
            "promo": lambda: round(order["subtotal"] * 0.10, 2),
            "price_diff": lambda: _price_diff(main),
            "vat": lambda: _vat_amount(order),
        }[kind]()

    # ------------------------------------------------------------------ rendering
    def render(self, first_ticket_id: int = 41001) -> tuple[list[dict[str, Any]], dict[str, list[int]]]:
        self.plans.sort(key=lambda p: p.created)
        tickets, by_scenario = [], {}
        comment_id = 39000000001
        for n, plan in enumerate(self.plans):
            ticket_id = first_ticket_id + n
            ticket, comment_id = self._render_one(plan, ticket_id, comment_id)
            tickets.append(ticket)
            if ticket["status"] in ("solved", "closed"):  # open tickets aren't knowledge (not indexed)
                by_scenario.setdefault(plan.scenario["key"], []).append(ticket_id)
        return tickets, by_scenario

    def _render_one(self, plan: Plan, ticket_id: int, comment_id: int) -> tuple[dict[str, Any], int]:
        s, c, a = plan.scenario, plan.customer, plan.agent
        ctx = self._context(plan)
        no_express = plan.order is not None and plan.order["_zone"] == "chno"

        def fmt(text: str) -> str:
            out = _format(text, ctx, s["key"])
            return _no_express(out) if no_express else out

        comments: list[tuple[str, int, str, bool, datetime]] = []
        comments.append(
            (
                "customer",
                c["zendesk_user_id"],
                self._customer_text(fmt(s["openers"][plan.opener]), plan, ctx, True),
                True,
                plan.times["opener"],
            )
        )
        assigned = plan.status != "open" or plan.rand["extra"] < 0.5
        if plan.internal and assigned:
            comments.append(("agent", a["id"], fmt(plan.internal), False, plan.times["internal"]))
        opener_text = comments[0][2]
        if (
            plan.status == "solved"
            and plan.order is not None
            and ctx["order"] not in opener_text
            and plan.rand["clarify"] < 0.3
        ):
            # No order number in the first message: the agent asks for it before answering.
            t0, t1 = plan.times["opener"], plan.times["reply"]
            ask = self._agent_text(CLARIFY_ASK[int(ctx["rand4"]) % len(CLARIFY_ASK)], plan, ctx, True)
            answer = CLARIFY_ANSWER[int(ctx["rand6"]) % len(CLARIFY_ANSWER)].format(order=ctx["order"])
            comments.append(("agent", a["id"], ask, True, t0 + (t1 - t0) * 0.35))
            comments.append(("customer", c["zendesk_user_id"], answer, True, t0 + (t1 - t0) * 0.7))
        if plan.status in ("pending", "solved"):
            comments.append(
                (
                    "agent",
                    a["id"],
                    self._agent_text(fmt(s["replies"][plan.reply]), plan, ctx, True),
                    True,
                    plan.times["reply"],
                )
            )
        if plan.status == "solved":
            if s.get("followups"):
                comments.append(
                    (
                        "customer",
                        c["zendesk_user_id"],
                        self._customer_text(fmt(s["followups"][plan.followup]), plan, ctx, False),
                        True,
                        plan.times["followup"],
                    )
                )
            res = plan.resolution["text"] if isinstance(plan.resolution, dict) else plan.resolution
            comments.append(
                (
                    "agent",
                    a["id"],
                    self._agent_text(fmt(res), plan, ctx, False),
                    True,
                    plan.times["resolution"],
                )
            )
            if plan.thanks:
                comments.append(("customer", c["zendesk_user_id"], plan.thanks, True, plan.times["thanks"]))
        comments.sort(key=lambda x: x[4])
        rendered = []
        for _who, author, body, public, when in comments:
            rendered.append({
                "id": comment_id, "type": "Comment", "author_id": author, "body": body, "html_body": text_to_html(body),
                "plain_body": body, "public": public, "attachments": [], "audit_id": comment_id + 500000000,
                "via": {"channel": plan.channel if author == c["zendesk_user_id"] else "web", "source": {"rel": None}},
                "created_at": iso(when),
            })  # fmt: skip
            comment_id += 1
        last = max(x[4] for x in comments)
        status = plan.status
        if status == "solved":
            last = max(last, plan.times["solved"])
            status = "closed" if EPOCH - last > timedelta(days=60) else "solved"
        order = plan.order
        assigned = status != "open" or plan.rand["extra"] < 0.5
        tags = [*s["tags"], f"country_{c['country'].lower()}", plan.channel]
        if c["oak_club_member"]:
            tags.append("oak_club")
        ticket = {
            "id": ticket_id,
            "url": f"{ZENDESK}/api/v2/tickets/{ticket_id}.json",
            "external_id": None,
            "created_at": iso(plan.created),
            "updated_at": iso(last),
            "type": s["type"],
            "subject": fmt(self.rng_for(plan).choice(s["subjects"])),
            "raw_subject": None,
            "description": rendered[0]["body"],
            "priority": self.rng_for(plan).choice(s["priority"]),
            "status": status if assigned else "new",
            "recipient": "support@brambleandoak.example",
            "requester_id": c["zendesk_user_id"],
            "submitter_id": c["zendesk_user_id"],
            "assignee_id": a["id"] if assigned else None,
            "organization_id": None,
            "group_id": GROUPS[s["group"]],
            "collaborator_ids": [],
            "follower_ids": [],
            "email_cc_ids": [],
            "tags": sorted(set(tags)),
            "via": {"channel": plan.channel, "source": {"from": {}, "to": {}, "rel": None}},
            "custom_fields": [
                {"id": FIELD_ORDER, "value": order["order_number"] if order else None},
                {"id": FIELD_REASON, "value": f"{s['group']}__{s['key']}"},
                {"id": FIELD_SKU, "value": order["_main"]["sku"] if order else None},
                {"id": FIELD_COUNTRY, "value": c["country"]},
            ],
            "satisfaction_rating": self._csat(plan, status),
            "has_incidents": False,
            "is_public": True,
            "brand_id": 360000000901,
            "comments": rendered,
        }
        ticket["raw_subject"] = ticket["subject"]
        return ticket, comment_id

    def rng_for(self, plan: Plan) -> random.Random:
        return random.Random(plan.rand["rand6"] + plan.scenario["key"])

    def _csat(self, plan: Plan, status: str) -> dict[str, Any]:
        if status not in ("solved", "closed") or plan.rand["extra"] > 0.45:
            return {"score": "unoffered"}
        return {"score": "bad" if plan.rand["extra"] < 0.05 else "good"}

    def _customer_text(self, text: str, plan: Plan, ctx: dict[str, Any], first: bool) -> str:
        c, r = plan.customer, plan.rand
        style = c["style"]
        if style == "sloppy":
            text = _sloppy(text, random.Random(r["typo_seed"] + (0 if first else 1)))
        elif style == "non_native":
            text = _non_native(text, random.Random(r["typo_seed"] + (0 if first else 1)), first)
        if plan.channel == "chat":
            return text
        parts = []
        if first:
            # A two-word "parcel stuck. help" doesn't come wrapped in "Dear Sir or Madam" and "Yours faithfully".
            terse = len(text) < 80 or text[0].islower()
            if r["greeting"] and not _GREETING.match(text) and not terse:
                parts.append(r["greeting"])
            body = text
            if style == "chatty" and r["extra"] < 0.6 and len(text) > 150:
                body += " " + r["chatty"]
            if r["context"] < 0.25 and plan.order is not None and ctx["order"] not in body:
                body += " " + _format(r["ctx_line"], ctx, "context")
            parts.append(body)
            sign = r["signoff"].format(first=c["first_name"], last=c["last_name"])
            if terse:
                sign = c["first_name"] if r["sign"] < 0.3 else ""
            if sign:
                parts.append(sign)
        else:
            parts.append(text)
            if style in ("formal", "non_native"):
                parts.append(f"{c['first_name']} {c['last_name']}")
        return "\n\n".join(parts)

    def _agent_text(self, text: str, plan: Plan, ctx: dict[str, Any], first: bool) -> str:
        agent_first = plan.agent["name"].split()[0]
        if plan.channel == "chat":
            return (f"Hi {ctx['first']}! " if first else "") + text
        greet = plan.rand["agent_greet"].format(first=ctx["first"]) if first else f"Hi {ctx['first']},"
        sign = plan.rand["agent_sign"].format(agent=agent_first)
        # Each agent words things a little differently around the policy answer.
        pick = random.Random(f"{plan.rand['rand6']}-{first}-{agent_first}")
        if first and pick.random() < 0.3:
            text = pick.choice(AGENT_OPENERS) + " " + text
        if pick.random() < 0.3:
            text += "\n\n" + pick.choice(AGENT_CLOSERS)
        return f"{greet}\n\n{text}\n\n{sign}"

    def _context(self, plan: Plan) -> dict[str, Any]:
        c, o, r, s = plan.customer, plan.order, plan.rand, plan.scenario
        links = [self.urls[k] for k in s["articles"]]
        ctx: dict[str, Any] = {
            "first": c["first_name"], "last": c["last_name"], "full": f"{c['first_name']} {c['last_name']}",
            "city": c["city"], "country": COUNTRY_NAMES[c["country"]], "postcode": c["postcode"],
            "agent": plan.agent["name"].split()[0], "link": links[0], "link2": links[-1],
            "rand1": r["rand1"], "rand4": r["rand4"], "rand6": r["rand6"], "other_country": r["other_country"],
            "any_item": r["any_item"], "company": r["company"], "phone": r["phone"][0], "phone_os": r["phone"][1],
            "part_no": r["part_no"], "fee": money(r["fee"]), "new_street": r["street"],
            "return_window": 60 if c["oak_club_member"] else 30,
            "alt_email": f"{c['first_name'].lower()}.{r['rand4']}@example.net", "serial": f"LH1-{r['rand6']}",
            "card": ["Visa", "Mastercard", "American Express"][r["rand1"] % 3],
        }  # fmt: skip
        if o is None:
            return ctx
        main = o["_main"]
        others = [i for i in o["items"] if i is not main]
        z = ZONES[o["_zone"]]
        pay = o["payment_method"]
        sizes = SIZE_ORDER.get(main["sku"])
        size = main["variant"] or ""
        new_size = wrong_size = size
        if sizes and size in sizes:
            k = sizes.index(size)
            new_size = sizes[min(k + 1, len(sizes) - 1)]
            wrong_size = sizes[k - 1] if k > 0 else sizes[k + 1]
        same_cat = [
            p["name"]
            for p in PHYSICAL
            if p["category"] == PRODUCT_BY_SKU[main["sku"]]["category"] and p["sku"] != main["sku"]
        ]
        wrong_item = same_cat[int(r["rand6"]) % len(same_cat)] if same_cat else "Oak Cutting Board"
        delivered = o["delivered_at"] or plan.created
        transit = {"standard": z[1], "express": z[5], "bulky": "7–14 business days"}.get(
            o["shipping_method"], z[1]
        )
        item_paid = _item_paid(o)
        price = main["unit_price"]
        vat_rate = VAT.get(c["country"], 0.21)
        cancel_note = (
            "Your card was never charged – the pending reservation disappears within 3–7 business days, depending on your bank."
            if pay in PAYMENT_PHRASE and pay not in IMMEDIATE and not pay.startswith("Klarna")
            else "The Klarna purchase is cancelled too, so you won't receive an invoice."
            if pay.startswith("Klarna")
            else f"Because {pay} is charged straight away, I've refunded {money(o['total'])}. "
            + refund_timing(pay)
        )
        ctx |= {
            "order": o["order_number"], "item": main["name"], "item2": others[0]["name"] if others else main["name"],
            "sku": main["sku"], "size": size, "new_size": new_size, "wrong_size": wrong_size, "wrong_item": wrong_item,
            "price": money(price), "total": money(o["total"]), "subtotal": money(o["subtotal"]),
            "after_discount": money(o["subtotal"] - o["discount"]), "shipping_cost": money(o["shipping_cost"]),
            "shipping_cost_std": money(z[2]), "express_diff": money(_express_diff(o)),
            "payment": PAYMENT_PHRASE[pay], "payment_name": pay, "refund_timing": refund_timing(pay),
            "refund_timing_lc": refund_timing(pay)[0].lower() + refund_timing(pay)[1:],
            "carrier": o["carrier"] or "the carrier", "tracking": o["tracking_number"] or "(not yet assigned)",
            "tracking2": self.commerce.tracking_number(o["carrier"] or "DPD") if o["carrier"] else f"0{r['rand6']}{r['rand6']}00",
            "transit": transit, "stuck_days": "5 business days" if c["country"] in EU else "10 business days",
            "ordered": day(o["created_at"]), "shipped": day(o["shipped_at"] or o["created_at"]),
            "delivered": day(delivered), "window_end": day(delivered + timedelta(days=30)),
            "months_ago": max(1, (plan.created - o["created_at"]).days // 30),
            "item_paid": money(item_paid), "item_paid_less49": money(item_paid - 49),
            "cancel_payment_note": cancel_note,
            "signed_statement": "Because the order is over €250, the carrier needs a short signed statement that you didn't receive it – I've attached the form. " if o["total"] > 250 else "",
            "preorder_month": o["created_at"].replace(day=1).__add__(timedelta(days=45)).strftime("%B"),
            "preorder_new": o["created_at"].replace(day=1).__add__(timedelta(days=110)).strftime("%B"),
            "return_shipping_sentence": f"The return label is free from {COUNTRY_NAMES[c['country']]}." if c["country"] in FREE_RETURNS
                else f"From {COUNTRY_NAMES[c['country']]} you arrange and pay the return postage yourself, unless the item is faulty.",
            "damage_return_note": f"As the {main['name']} costs under €30, there's no need to send it back – please recycle it responsibly."
                if price < 30 else "You'll also get a free return label for the damaged one; the replacement doesn't wait for it.",
            "goodwill": money(_goodwill(price)),
            "non_returnable_reason": "opened bedding such as duvet cover sets" if main["sku"] == "TX-402" else "opened socks",
            "promo_value": money(round(o["subtotal"] * 0.10, 2)), "new_price": money(price - _price_diff(main) / main["qty"]),
            "price_diff": money(_price_diff(main)), "vat_id": _vat_id(c["country"], r["rand6"]),
            "vat_amount": money(_vat_amount(o)), "vat_rate": f"{vat_rate:.0%}",
            "local_paid": f"{item_paid * 0.86:.2f}", "local_refund": f"{item_paid * 0.84:.2f}",
            "return_arrived": day(r.get("return_arrived") or delivered), "refund_date": day(r.get("refund_date") or delivered),
        }  # fmt: skip
        return ctx


def _working(dt: datetime, rng: random.Random) -> datetime:
    """Move a time into support hours (Mon-Fri 08-20, Sat 10-16 CET; CET taken as UTC+1)."""
    for _ in range(8):
        weekday = dt.weekday()
        start, end = (7, 19) if weekday < 5 else (9, 15) if weekday == 5 else (0, 0)
        if start and dt.hour < start:
            return dt.replace(hour=start, minute=rng.randint(0, 59))
        if start and dt.hour < end:
            return dt
        dt = (dt + timedelta(days=1)).replace(hour=6, minute=rng.randint(0, 59))
    return dt


_GREETING = re.compile(r"^(hi|hello|hey|dear|good (morning|day)|hallo)\b", re.IGNORECASE)


def _no_express(text: str) -> str:
    """Switzerland and Norway have no Express service (POLICIES.md): say what actually happens there."""
    text = text.replace("by Express at no cost", "with priority handling at no cost")
    text = text.replace("sent by Express", "sent with priority handling").replace(
        "by Express", "with priority handling"
    )
    return text.replace(
        "You'll have it in 1–2 business days.", "Deliveries to your country take 5–8 business days."
    )


def _format(text: str, ctx: dict[str, Any], where: str) -> str:
    try:
        return text.format_map(ctx)
    except KeyError as exc:
        raise KeyError(f"scenario {where!r}: unknown placeholder {exc} in {text[:60]!r}") from exc


def _reprice(order: dict[str, Any], customer: dict[str, Any]) -> None:
    from store.demo_data.build.commerce import DUTY_RATE

    order["subtotal"] = round(sum(i["unit_price"] * i["qty"] for i in order["items"]), 2)
    if order["promo_code"]:
        rate = {"WELCOME10": 0.10, "SPRING15": 0.15, "SUMMER20": 0.20}[order["promo_code"]]
        order["discount"] = round(order["subtotal"] * rate, 2)
    after = order["subtotal"] - order["discount"]
    z = ZONES[order["_zone"]]
    if order["shipping_method"] == "standard":
        order["shipping_cost"] = 0.0 if customer["oak_club_member"] or after >= z[3] else z[2]
    order["duties_and_taxes"] = round(after * DUTY_RATE.get(customer["country"], 0.0), 2)
    order["total"] = round(after + order["shipping_cost"] + order["duties_and_taxes"], 2)


def _item_paid(order: dict[str, Any]) -> float:
    main = order["_main"] if "_main" in order else order["items"][0]
    share = 1 - (order["discount"] / order["subtotal"]) if order["subtotal"] else 1
    return round(main["unit_price"] * main["qty"] * share, 2)


def _express_diff(order: dict[str, Any]) -> float:
    z = ZONES[order["_zone"]]
    return round((z[6] or 0) - z[2], 2)


def _goodwill(price: float) -> float:
    return float(max(10, round(price * 0.15 / 5) * 5))


def _price_diff(item: dict[str, Any]) -> float:
    return round(round(item["unit_price"] * 0.15) * item["qty"], 2)


def _vat_amount(order: dict[str, Any]) -> float:
    rate = VAT.get(order["shipping_address"]["country"], 0.21)
    goods = order["subtotal"] - order["discount"] + order["shipping_cost"]
    return round(goods - goods / (1 + rate), 2)


def _vat_id(country: str, seed: str) -> str:
    digits = (seed * 3)[:11]
    return {"DE": f"DE{digits[:9]}", "BE": f"BE0{digits[:9]}", "FR": f"FR{digits[:11]}", "AT": f"ATU{digits[:8]}",
            "ES": f"ESB{digits[:8]}", "IT": f"IT{digits[:11]}", "DK": f"DK{digits[:8]}", "IE": f"IE{digits[:7]}W",
            "LU": f"LU{digits[:8]}"}.get(country, f"NL{digits[:9]}B01")  # fmt: skip


_NON_NATIVE = [
    ("I haven't", "I have not"), ("I'm", "I am"), ("don't", "do not"), ("didn't", "did not"), ("It's", "It is"),
    ("Can you", "Is it possible that you"), ("Could you", "Can you please"), ("I ordered", "I have ordered"),
    ("yesterday", "yesterday evening already"), ("arrived", "is arrived"), ("I received", "I have received"),
    ("What should I do?", "What I should do now?"), ("please", "please kindly"),
]  # fmt: skip


def _non_native(text: str, rng: random.Random, first: bool) -> str:
    """Careful, slightly literal English of someone writing in a second language."""
    for old, new in _NON_NATIVE:
        if old in text and rng.random() < 0.6:
            text = text.replace(old, new, 1)
    if first and rng.random() < 0.3:
        text += rng.choice(
            [
                " Sorry for my English.",
                " I hope you understand my English.",
                " Thank you for your understanding.",
            ]
        )
    return text


_WORD = re.compile(r"\b[a-z]{5,}\b")


def _sloppy(text: str, rng: random.Random) -> str:
    """Casual typing: no apostrophes, lowercase 'i', the odd swapped letter."""
    text = text.replace("'", "").replace("I ", "i ").replace(". ", rng.choice([". ", " ", ".. "]))
    words = _WORD.findall(text)
    if words and rng.random() < 0.7:
        w = rng.choice(words)
        k = rng.randrange(1, len(w) - 2)
        text = text.replace(w, w[:k] + w[k + 1] + w[k] + w[k + 2 :], 1)
    return text[0].lower() + text[1:] if rng.random() < 0.6 else text
