"""Generate the demo tenant's JSON files from the hand-written sources in ``sources/``.

Run ``python -m store.demo_data.generate`` (writes next to this file) or add ``--out DIR``.
Reproducible: one fixed seed, no wall clock, no network — the same sources give byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

from store.demo_data.build.commerce import Commerce, products_json
from store.demo_data.build.common import EPOCH, ZENDESK, iso, write_json
from store.demo_data.build.evalset import build_eval
from store.demo_data.build.helpcenter import build_help_center
from store.demo_data.build.macros import build_macros
from store.demo_data.build.tickets import START, TICKET_FIELDS, TicketBuilder, load_scenarios
from store.demo_data.sources.catalog import AGENTS

HERE = Path(__file__).resolve().parent
SEED = 20261122


def build_users(commerce: Commerce) -> dict[str, Any]:
    """Zendesk users: agents plus every store customer as an end-user (external_id = customer id)."""
    users = []
    for a in AGENTS:
        first = a["name"].split()[0].lower()
        users.append({
            "id": a["id"], "url": f"{ZENDESK}/api/v2/users/{a['id']}.json", "name": a["name"],
            "email": f"{first}@brambleandoak.example", "role": a["role"], "active": True, "verified": True,
            "locale": "en-US", "time_zone": a["tz"], "organization_id": None, "external_id": None, "phone": None,
            "tags": [f"focus_{a['focus']}"], "user_fields": {}, "shared": False, "suspended": False,
            "created_at": iso(EPOCH - timedelta(days=1000 - a["id"] % 100 * 37)),
            "updated_at": iso(EPOCH - timedelta(days=30 + a["id"] % 100)),
        })  # fmt: skip
    for c in commerce.customers:
        users.append({
            "id": c["zendesk_user_id"], "url": f"{ZENDESK}/api/v2/users/{c['zendesk_user_id']}.json",
            "name": f"{c['first_name']} {c['last_name']}", "email": c["email"], "role": "end-user", "active": True,
            "verified": True, "locale": {"de": "de", "nl": "nl", "fr": "fr"}.get(c["language"], "en-US"),
            "time_zone": "London" if c["country"] in ("UK", "IE") else "Eastern Time (US & Canada)" if c["country"] == "US" else "Amsterdam",
            "organization_id": None, "external_id": c["id"], "phone": None,
            "tags": ["oak_club"] if c["oak_club_member"] else [], "user_fields": {"country": c["country"]},
            "shared": False, "suspended": False, "created_at": c["created_at"], "updated_at": c["created_at"],
        })  # fmt: skip
    return {"users": users, "count": len(users), "next_page": None}


def generate(out: Path) -> dict[str, int]:
    """Write every demo file under ``out``; return counts per kind."""
    rng = random.Random(SEED)
    authors = [a["id"] for a in AGENTS if a["focus"] in ("content", "all", "tech")]
    hc = build_help_center(authors)

    commerce = Commerce(random.Random(rng.random()))
    builder = TicketBuilder(random.Random(rng.random()), commerce, AGENTS, hc["urls"])
    builder.plan_all(load_scenarios())
    commerce.background_orders(START - timedelta(days=180), EPOCH, n=320)
    commerce.finalise()
    tickets, by_scenario = builder.render()
    macros, macro_keys = build_macros()
    evalset = build_eval(hc["keys"], by_scenario, macro_keys, {a["id"] for a in hc["articles"]["articles"]})

    write_json(out / "help_center" / "categories.json", hc["categories"])
    write_json(out / "help_center" / "sections.json", hc["sections"])
    write_json(out / "help_center" / "articles.json", hc["articles"])
    write_json(out / "help_center" / "user_segments.json", hc["user_segments"])
    write_json(
        out / "tickets" / "tickets.json",
        {"tickets": tickets, "count": len(tickets), "ticket_fields": TICKET_FIELDS},
    )
    write_json(out / "macros" / "macros.json", {"macros": macros, "count": len(macros), "next_page": None})
    write_json(out / "users.json", build_users(commerce))
    write_json(out / "commerce" / "customers.json", {"customers": commerce.customers_json()})
    write_json(out / "commerce" / "products.json", {"products": products_json()})
    write_json(out / "commerce" / "orders.json", {"orders": commerce.orders_json()})
    (out / "eval").mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(q, ensure_ascii=False) for q in evalset]
    (out / "eval" / "retrieval_queries.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {
        "articles": hc["articles"]["count"],
        "tickets": len(tickets),
        "macros": len(macros),
        "orders": len(commerce.orders),
        "customers": len(commerce.customers),
        "queries": len(evalset),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Generate the Bramble & Oak demo tenant.")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: the package folder)")
    args = parser.parse_args(argv)
    counts = generate(args.out)
    print(", ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
