"""The store's own systems (not Zendesk): customers, products and orders, consistent with POLICIES.md."""

from __future__ import annotations

import random
import unicodedata
from datetime import datetime, timedelta
from typing import Any

from store.demo_data.build.common import EPOCH, add_business_days, iso
from store.demo_data.sources.catalog import COUNTRIES, NAMES, PRODUCTS

COUNTRY_NAMES = {
    "NL": "the Netherlands", "DE": "Germany", "BE": "Belgium", "FR": "France", "UK": "the United Kingdom",
    "US": "the United States", "AT": "Austria", "IE": "Ireland", "DK": "Denmark", "CH": "Switzerland",
    "NO": "Norway", "ES": "Spain", "IT": "Italy", "LU": "Luxembourg",
}  # fmt: skip
EU = {"NL", "DE", "BE", "FR", "AT", "IE", "DK", "ES", "IT", "LU"}
FREE_RETURNS = EU | {"UK"}
BULKY_COUNTRIES = {"NL", "BE", "DE", "FR", "LU", "AT"}
KLARNA_COUNTRIES = {"NL", "BE", "DE", "AT"}
DUTY_RATE = {"UK": 0.20, "CH": 0.081, "NO": 0.25, "US": 0.06}

# zone -> (standard carrier, standard days, cost, free from, express carrier, express days, express cost)
ZONES: dict[str, tuple[str, str, float, float, str | None, str | None, float | None]] = {
    "benelux": ("PostNL", "1–3 business days", 4.95, 75.0, "DPD", "next business day", 9.95),
    "eu": ("DHL Parcel", "3–5 business days", 6.95, 75.0, "DPD", "1–2 business days", 14.95),
    "uk": ("DPD UK", "4–6 business days", 9.95, 120.0, "DPD", "2–3 business days", 19.95),
    "chno": ("DHL", "5–8 business days", 14.95, 150.0, None, None, None),
    "us": ("UPS", "6–10 business days", 19.95, 200.0, "UPS", "3–4 business days", 39.95),
}
TRANSIT_DAYS = {"benelux": (1, 3), "eu": (3, 5), "uk": (4, 6), "chno": (5, 8), "us": (6, 10)}

STREETS = {
    "nl": ["Oudegracht", "Lange Nieuwstraat", "Kerkstraat", "Molenweg", "Prinsengracht", "Zonnebloemlaan"],
    "be": ["Veldstraat", "Kortrijksesteenweg", "Meir", "Bondgenotenlaan", "Rue de la Loi"],
    "de": ["Hauptstraße", "Lindenallee", "Bahnhofstraße", "Gartenweg", "Schillerstraße", "Am Mühlbach"],
    "fr": ["Rue de la République", "Avenue Jean Jaurès", "Rue des Lilas", "Boulevard Voltaire"],
    "uk": ["High Street", "Station Road", "Church Lane", "Park Avenue", "Victoria Road", "Mill Lane"],
    "us": ["Maple Street", "Oak Avenue", "Pine Road", "Cedar Lane", "Elm Street"],
    "nordic": ["Storgata", "Kongens Gate", "Nørregade", "Strandvejen"],
    "es": ["Calle Mayor", "Carrer de Balmes", "Avenida del Puerto"],
    "it": ["Via Roma", "Corso Garibaldi", "Via Dante"],
}
MAIL_DOMAINS = ["example.com", "example.net", "example.org", "mail.example", "post.example"]
PAYMENT_WEIGHTS = {
    "NL": {"iDEAL": 35, "Visa": 10, "Mastercard": 10, "PayPal": 18, "Klarna Pay in 30 days": 12, "Klarna Pay in 3": 5, "Apple Pay": 10},
    "BE": {"Bancontact": 35, "Visa": 15, "Mastercard": 12, "PayPal": 15, "Klarna Pay in 30 days": 10, "Apple Pay": 8},
    "DE": {"PayPal": 35, "Klarna Pay in 30 days": 18, "Klarna Pay in 3": 7, "Visa": 12, "Mastercard": 12, "Apple Pay": 8, "Google Pay": 5},
    "AT": {"PayPal": 35, "Klarna Pay in 30 days": 20, "Visa": 20, "Mastercard": 15, "Apple Pay": 10},
    "*": {"Visa": 30, "Mastercard": 25, "American Express": 8, "PayPal": 20, "Apple Pay": 12, "Google Pay": 5},
}  # fmt: skip
PAYMENT_PHRASE = {
    "Visa": "Visa card", "Mastercard": "Mastercard", "American Express": "American Express card", "PayPal": "PayPal account",
    "Apple Pay": "card via Apple Pay", "Google Pay": "card via Google Pay", "Klarna Pay in 30 days": "Klarna account",
    "Klarna Pay in 3": "Klarna account", "iDEAL": "bank account (iDEAL)", "Bancontact": "bank account (Bancontact)",
    "Gift card": "gift card",
}  # fmt: skip
CARD_LIKE = {"Visa", "Mastercard", "American Express", "Apple Pay", "Google Pay"}
IMMEDIATE = {"PayPal", "iDEAL", "Bancontact"}

PRODUCT_BY_SKU = {p["sku"]: p for p in PRODUCTS}
PHYSICAL = [p for p in PRODUCTS if not p.get("digital")]


def zone(country: str) -> str:
    if country in ("NL", "BE"):
        return "benelux"
    if country in EU:
        return "eu"
    return {"UK": "uk", "CH": "chno", "NO": "chno", "US": "us"}[country]


def refund_timing(payment: str) -> str:
    if payment == "PayPal":
        return "It should be back in your PayPal account within 1 business day."
    if payment in CARD_LIKE:
        return "It usually takes 3–5 business days to appear on your statement."
    if payment.startswith("Klarna"):
        return "Klarna updates your balance right away; if you had already paid, the money is back within 3–5 business days."
    if payment in ("iDEAL", "Bancontact"):
        return "It takes 5–7 business days to reach your bank account."
    return "The amount is back on your gift card straight away."


def products_json() -> list[dict[str, Any]]:
    """Catalogue with a deterministic stock level per SKU."""
    out = []
    for p in PRODUCTS:
        rng = random.Random(p["sku"])
        out.append(
            {
                "sku": p["sku"],
                "name": p["name"],
                "category": p["category"],
                "price": p["price"],
                "currency": "EUR",
                "stock": 0 if p.get("digital") else rng.choice([0, 3, 8, 14, 25, 40, 62, 120, 240]),
                "warranty_months": p["warranty_months"],
                "lifetime_warranty": p["warranty_months"] is None,
                "bulky": p["bulky"],
                "returnable": not p.get("non_returnable", False),
                "subscribable": bool(p.get("subscribable", False)),
                "digital": bool(p.get("digital", False)),
                "care_notes": p["care"],
                "specs": p["specs"],
                "url": f"https://brambleandoak.example/p/{p['sku'].lower()}",
            }
        )
    return out


class Commerce:
    """Customers and orders. Orders get their BO- numbers only in ``finalise`` (sorted by time)."""

    def __init__(self, rng: random.Random, n_customers: int = 240) -> None:
        self.rng = rng
        self.customers: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self._make_customers(n_customers)

    # ------------------------------------------------------------------ customers
    def _make_customers(self, n: int) -> None:
        rng = self.rng
        countries = list(COUNTRIES)
        weights = [COUNTRIES[c]["weight"] for c in countries]
        used: set[str] = set()
        while len(self.customers) < n:
            country = rng.choices(countries, weights)[0]
            info = COUNTRIES[country]
            firsts, lasts = NAMES[info["pool"]]
            first, last = rng.choice(firsts), rng.choice(lasts)
            if f"{first} {last}" in used:
                continue
            used.add(f"{first} {last}")
            idx = len(self.customers) + 1
            city, postcode = rng.choice(info["cities"])
            local = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
            local = unicodedata.normalize("NFKD", local.replace("ß", "ss")).encode("ascii", "ignore").decode()
            created = EPOCH - timedelta(days=rng.randint(60, 1400), minutes=rng.randint(0, 1440))
            member = rng.random() < 0.25
            self.customers.append(
                {
                    "id": f"C-{20000 + idx}",
                    "zendesk_user_id": 362000000000 + idx,
                    "first_name": first,
                    "last_name": last,
                    "email": f"{local}{rng.choice(['', '', str(rng.randint(1, 99))])}@{rng.choice(MAIL_DOMAINS)}",
                    "country": country,
                    "city": city,
                    "postcode": postcode,
                    "street": f"{rng.choice(STREETS[info['pool']])} {rng.randint(1, 180)}",
                    "language": info["lang"],
                    "oak_club_member": member,
                    "oak_club_since": iso(created + timedelta(days=rng.randint(0, 50))) if member else None,
                    "marketing_opt_in": rng.random() < 0.55,
                    "created_at": iso(created),
                    "style": rng.choices(
                        ["polite", "terse", "chatty", "sloppy", "formal", "non_native"],
                        [30, 18, 14, 14, 10, 14],
                    )[0],
                    "_tickets": 0,
                }
            )

    def pick_customer(self, countries: list[str] | None = None, member: bool | None = None) -> dict[str, Any]:
        pool = [
            c
            for c in self.customers
            if (countries is None or c["country"] in countries)
            and (member is None or c["oak_club_member"] == member)
        ]
        if not pool:
            raise ValueError(f"no customer for countries={countries} member={member}")
        weights = [1.0 / (1 + 3 * c["_tickets"]) for c in pool]  # spread tickets, allow some repeat customers
        chosen = self.rng.choices(pool, weights)[0]
        chosen["_tickets"] += 1
        return chosen

    # ------------------------------------------------------------------ orders
    def payment_for(self, country: str, allowed: list[str] | None = None) -> str:
        table = PAYMENT_WEIGHTS.get(country, PAYMENT_WEIGHTS["*"])
        options = {k: v for k, v in table.items() if allowed is None or k in allowed}
        if not options:
            options = {k: 1 for k in allowed or []}
        names = sorted(options)
        return self.rng.choices(names, [options[n] for n in names])[0]

    def variant_for(self, sku: str) -> str | None:
        sizes = PRODUCT_BY_SKU[sku]["specs"].get("sizes")
        if not sizes:
            return None
        if sku == "AP-414":
            return self.rng.choice(["39", "40", "41", "42", "43", "44"])
        if sku in ("AP-411", "AP-412"):
            return self.rng.choice(["S", "M", "M", "L", "L", "XL"])
        return self.rng.choice(sizes)

    def new_order(
        self,
        customer: dict[str, Any],
        created: datetime,
        skus: list[str],
        *,
        method: str = "standard",
        payment: str | None = None,
        promo: str | None = None,
        preorder: bool = False,
    ) -> dict[str, Any]:
        rng = self.rng
        country = customer["country"]
        items = []
        for sku in skus:
            p = PRODUCT_BY_SKU[sku]
            qty = 1 if p["price"] > 80 or p.get("digital") else rng.choice([1, 1, 1, 2])
            price = p["price"] if sku != "GC-001" else float(rng.choice([25, 50, 50, 75, 100, 150]))
            items.append(
                {
                    "sku": sku,
                    "name": p["name"],
                    "variant": self.variant_for(sku),
                    "qty": qty,
                    "unit_price": price,
                }
            )
        subtotal = round(sum(i["unit_price"] * i["qty"] for i in items), 2)
        discount = 0.0
        if promo:
            rate = {"WELCOME10": 0.10, "SPRING15": 0.15, "SUMMER20": 0.20}[promo]
            discount = round(subtotal * rate, 2)
        after = subtotal - discount
        digital = all(PRODUCT_BY_SKU[s].get("digital") for s in skus)
        bulky = any(PRODUCT_BY_SKU[s]["bulky"] for s in skus)
        z = zone(country)
        std_carrier, _std_days, std_cost, free_from, exp_carrier, _exp_days, exp_cost = ZONES[z]
        if digital:
            method, carrier, shipping = "email", None, 0.0
        elif bulky:
            method, carrier, shipping = "bulky", "Van der Berg Logistics", 69.0
        elif method == "express" and exp_carrier:
            carrier, shipping = exp_carrier, float(exp_cost or 0)
        else:
            method, carrier = "standard", std_carrier
            shipping = 0.0 if customer["oak_club_member"] or after >= free_from else std_cost
        duties = round(after * DUTY_RATE.get(country, 0.0), 2)
        total = round(after + shipping + duties, 2)
        order = {
            "order_number": None,
            "customer_id": customer["id"],
            "email": customer["email"],
            "created_at": created,
            "status": "processing",
            "preorder": preorder,
            "items": items,
            "currency": "EUR",
            "subtotal": subtotal,
            "discount": discount,
            "promo_code": promo,
            "shipping_method": method,
            "shipping_cost": shipping,
            "duties_and_taxes": duties,
            "total": total,
            "payment_method": payment or self.payment_for(country),
            "carrier": carrier,
            "tracking_number": None,
            "additional_tracking_numbers": [],
            "shipped_at": None,
            "delivered_at": None,
            "cancelled_at": None,
            "returned_at": None,
            "shipping_address": {
                "name": f"{customer['first_name']} {customer['last_name']}",
                "line1": customer["street"],
                "postcode": customer["postcode"],
                "city": customer["city"],
                "country": country,
            },
            "refunds": [],
            "_zone": z,
        }
        self.orders.append(order)
        return order

    def tracking_number(self, carrier: str | None) -> str | None:
        r = self.rng
        digits = lambda n: "".join(r.choice("0123456789") for _ in range(n))  # noqa: E731
        return {
            "PostNL": lambda: f"3SBRO{digits(9)}",
            "DHL Parcel": lambda: f"JJD00{digits(16)}",
            "DHL": lambda: f"JJD01{digits(16)}",
            "DPD": lambda: f"0{digits(13)}",
            "DPD UK": lambda: f"15{digits(12)}",
            "UPS": lambda: f"1ZB0A{digits(3)}{r.choice('ABCDEFGHJK')}{digits(8)}",
            "Van der Berg Logistics": lambda: f"VDB-{digits(7)}",
            None: lambda: None,
        }[carrier]()

    def ship(self, order: dict[str, Any], when: datetime) -> None:
        """Mark dispatched (same day before 14:00 CET on weekdays, else next business day)."""
        if order["shipping_method"] == "email":
            order["shipped_at"] = order["delivered_at"] = order["created_at"] + timedelta(minutes=2)
            return
        cutoff = when.replace(hour=13, minute=0, second=0)
        dispatch = (
            when if when.weekday() < 5 and when <= cutoff else add_business_days(when, 1).replace(hour=15)
        )
        order["shipped_at"] = max(dispatch, when + timedelta(minutes=45))
        order["tracking_number"] = self.tracking_number(order["carrier"])

    def transit(self, order: dict[str, Any]) -> int:
        if order["shipping_method"] == "bulky":
            return self.rng.randint(6, 10)
        lo, hi = TRANSIT_DAYS[order["_zone"]]
        if order["shipping_method"] == "express":
            return max(1, lo - 2)
        return self.rng.randint(lo, hi)

    def deliver(self, order: dict[str, Any], when: datetime | None = None) -> None:
        if order["shipped_at"] is None:
            self.ship(order, order["created_at"])
        if order["delivered_at"] is None:
            order["delivered_at"] = when or add_business_days(
                order["shipped_at"], self.transit(order)
            ).replace(hour=self.rng.randint(9, 18), minute=self.rng.randint(0, 59))

    def refund(
        self, order: dict[str, Any], amount: float, reason: str, when: datetime, method: str | None = None
    ) -> None:
        order["refunds"].append(
            {
                "amount": round(amount, 2),
                "reason": reason,
                "created_at": when,
                "method": method or order["payment_method"],
            }
        )

    # ------------------------------------------------------------------ background orders
    def background_orders(self, start: datetime, end: datetime, n: int) -> None:
        """Orders without tickets, so the order system looks like a real shop's."""
        rng = self.rng
        span = (end - start).total_seconds()
        buyable = [p["sku"] for p in PHYSICAL]
        for _ in range(n):
            customer = rng.choice(self.customers)
            created = start + timedelta(seconds=rng.random() * span)
            skus = rng.sample(buyable, rng.choice([1, 1, 1, 2, 2, 3]))
            if any(PRODUCT_BY_SKU[s]["bulky"] for s in skus) and customer["country"] not in BULKY_COUNTRIES:
                skus = [s for s in skus if not PRODUCT_BY_SKU[s]["bulky"]] or ["KI-301"]
            if any(PRODUCT_BY_SKU[s]["bulky"] for s in skus):
                skus = [s for s in skus if PRODUCT_BY_SKU[s]["bulky"]][:1]
            if customer["country"] not in EU:
                skus = [s for s in skus if s != "CA-207"] or ["CA-206"]
            order = self.new_order(customer, created, skus, method=rng.choice(["standard"] * 6 + ["express"]))
            age = (EPOCH - created).days
            roll = rng.random()
            if age < 1:
                continue  # processing
            if roll < 0.04:
                order["status"] = "cancelled"
                order["cancelled_at"] = created + timedelta(minutes=rng.randint(5, 55))
                continue
            self.ship(order, created)
            if age < 4:
                order["status"] = "shipped"
                continue
            self.deliver(order)
            order["status"] = "delivered"
            if roll > 0.9 and age > 20 and all(PRODUCT_BY_SKU[s].get("non_returnable") is None for s in skus):
                item = order["items"][0]
                order["status"] = "returned"
                order["returned_at"] = order["delivered_at"] + timedelta(days=rng.randint(8, 16))
                self.refund(
                    order,
                    item["unit_price"] * item["qty"] * (1 - (order["discount"] / order["subtotal"])),
                    "return",
                    order["returned_at"],
                )

    # ------------------------------------------------------------------ output
    def finalise(self) -> None:
        """Number orders chronologically (BO-100101, ...) and convert timestamps."""
        self.orders.sort(key=lambda o: o["created_at"])
        for n, order in enumerate(self.orders):
            order["order_number"] = f"BO-{100101 + n}"

    def orders_json(self) -> list[dict[str, Any]]:
        out = []
        for o in self.orders:
            rec = {k: v for k, v in o.items() if not k.startswith("_")}
            for key in ("created_at", "shipped_at", "delivered_at", "cancelled_at", "returned_at"):
                rec[key] = iso(o[key]) if o[key] else None
            times = [
                o[k]
                for k in ("created_at", "shipped_at", "delivered_at", "cancelled_at", "returned_at")
                if o[k]
            ]
            times += [r["created_at"] for r in o["refunds"]]
            rec["updated_at"] = iso(max(times))
            rec["refunds"] = [{**r, "created_at": iso(r["created_at"])} for r in o["refunds"]]
            rec["refunded_total"] = round(sum(r["amount"] for r in o["refunds"]), 2)
            out.append(rec)
        return out

    def customers_json(self) -> list[dict[str, Any]]:
        counts: dict[str, int] = {}
        for o in self.orders:
            counts[o["customer_id"]] = counts.get(o["customer_id"], 0) + 1
        return [
            {k: v for k, v in c.items() if k not in ("_tickets", "style")}
            | {"order_count": counts.get(c["id"], 0)}
            for c in self.customers
        ]
