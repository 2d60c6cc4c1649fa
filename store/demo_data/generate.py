"""Generate the demo tenant's JSON files from the hand-written sources in ``sources/``.

Run ``python -m store.demo_data.generate`` (writes next to this file) or add ``--out DIR``.
Reproducible: one fixed seed, no clock, no network — the same sources give byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources"
SEED = 20261122
ZENDESK = "https://brambleandoak.zendesk.com"
EPOCH = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # "now" of the demo tenant


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slugify(text: str) -> str:
    text = text.lower().replace("&", "and")
    text = re.sub(r"[^a-z0-9äöüßéèà]+", "-", text)
    return text.strip("-")


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- help center


def load_help_center_sources() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    structure = yaml.safe_load((SOURCES / "help_center.yaml").read_text(encoding="utf-8"))
    articles: list[dict[str, Any]] = []
    for path in sorted((SOURCES / "articles").glob("*.yaml")):
        articles.extend(yaml.safe_load(path.read_text(encoding="utf-8")))
    return structure, articles


def build_help_center(authors: list[int]) -> dict[str, Any]:
    """Categories, sections and articles in Help Center API list shape."""
    structure, sources = load_help_center_sources()
    cats = {c["key"]: c for c in structure["categories"]}
    secs = {s["key"]: s for s in structure["sections"]}
    categories = []
    for c in structure["categories"]:
        locale = c.get("locale", "en-us")
        created = EPOCH - timedelta(days=900 + c["position"])
        categories.append(
            {
                "id": c["id"],
                "url": f"{ZENDESK}/api/v2/help_center/{locale}/categories/{c['id']}.json",
                "html_url": f"{ZENDESK}/hc/{locale}/categories/{c['id']}-{slugify(c['name'])}",
                "position": c["position"],
                "created_at": iso(created),
                "updated_at": iso(created + timedelta(days=400)),
                "name": c["name"],
                "description": c["description"],
                "locale": locale,
                "source_locale": locale,
                "outdated": False,
            }
        )
    sections = []
    for s in structure["sections"]:
        locale = s.get("locale", "en-us")
        created = EPOCH - timedelta(days=880 + s["position"])
        sections.append(
            {
                "id": s["id"],
                "url": f"{ZENDESK}/api/v2/help_center/{locale}/sections/{s['id']}.json",
                "html_url": f"{ZENDESK}/hc/{locale}/sections/{s['id']}-{slugify(s['name'])}",
                "category_id": cats[s["category"]]["id"],
                "position": s["position"],
                "sorting": "manual",
                "created_at": iso(created),
                "updated_at": iso(created + timedelta(days=300)),
                "name": s["name"],
                "description": "",
                "locale": locale,
                "source_locale": locale,
                "outdated": False,
                "parent_section_id": None,
                "theme_template": "section_page",
            }
        )
    seen: set[int] = set()
    positions: dict[str, int] = {}
    articles = []
    for a in sources:
        if a["id"] in seen:
            raise ValueError(f"duplicate article id {a['id']}")
        seen.add(a["id"])
        sec = secs[a["section"]]
        locale = a.get("locale", sec.get("locale", "en-us"))
        positions[a["section"]] = positions.get(a["section"], 0) + 1
        rng = random.Random(a["id"])  # per-article: adding an article never shifts the others
        created = EPOCH - timedelta(days=rng.randint(300, 800), minutes=rng.randint(0, 1440))
        updated = created + timedelta(days=rng.randint(20, 280), minutes=rng.randint(0, 1440))
        up, down = rng.randint(3, 140), rng.randint(0, 25)
        articles.append(
            {
                "id": a["id"],
                "url": f"{ZENDESK}/api/v2/help_center/{locale}/articles/{a['id']}.json",
                "html_url": f"{ZENDESK}/hc/{locale}/articles/{a['id']}-{slugify(a['title'])}",
                "author_id": rng.choice(authors),
                "comments_disabled": True,
                "draft": False,
                "promoted": bool(a.get("promoted", False)),
                "position": positions[a["section"]],
                "vote_sum": up - down,
                "vote_count": up + down,
                "section_id": sec["id"],
                "created_at": iso(created),
                "updated_at": iso(updated),
                "edited_at": iso(updated),
                "name": a["title"],
                "title": a["title"],
                "source_locale": a.get("source_locale", locale),
                "locale": locale,
                "outdated": False,
                "outdated_locales": [],
                "permission_group_id": 360000009001,
                "user_segment_id": None,
                "label_names": list(a.get("labels", [])),
                "content_tag_ids": [],
                "body": a["body"].strip(),
            }
        )
    articles.sort(key=lambda art: art["id"])
    return {
        "categories": {"categories": categories, "count": len(categories), "next_page": None},
        "sections": {"sections": sections, "count": len(sections), "next_page": None},
        "articles": {"articles": articles, "count": len(articles), "next_page": None},
        "keys": {a["key"]: a["id"] for a in sources},
    }


# --------------------------------------------------------------------------- main


def generate(out: Path) -> dict[str, int]:
    """Write every demo file under ``out``; return counts per kind."""
    from store.demo_data.sources.catalog import AGENTS

    authors = [a["id"] for a in AGENTS if a["focus"] in ("content", "all", "tech")]
    hc = build_help_center(authors)
    write_json(out / "help_center" / "categories.json", hc["categories"])
    write_json(out / "help_center" / "sections.json", hc["sections"])
    write_json(out / "help_center" / "articles.json", hc["articles"])
    return {"articles": hc["articles"]["count"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: the package folder)")
    args = parser.parse_args(argv)
    counts = generate(args.out)
    print(", ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
