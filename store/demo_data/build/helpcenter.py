"""Help Center categories, sections and articles in the Help Center API's list shape."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import yaml

from store.demo_data.build.common import EPOCH, SOURCES, ZENDESK, iso, slugify


def load_sources() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    structure = yaml.safe_load((SOURCES / "help_center.yaml").read_text(encoding="utf-8"))
    articles: list[dict[str, Any]] = []
    for path in sorted((SOURCES / "articles").glob("*.yaml")):
        articles.extend(yaml.safe_load(path.read_text(encoding="utf-8")))
    return structure, articles


def build_help_center(authors: list[int]) -> dict[str, Any]:
    """Return the three API payloads plus ``keys`` (article key -> id) and ``urls`` (key -> html_url)."""
    structure, sources = load_sources()
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
    segments = []
    for seg in structure.get("user_segments", []):
        created = EPOCH - timedelta(days=700)
        segments.append(
            {
                "id": seg["id"],
                "name": seg["name"],
                "user_type": seg["user_type"],
                "group_ids": list(seg.get("group_ids", [])),
                "organization_ids": [],
                "tags": [],
                "or_tags": [],
                "added_user_ids": [],
                "built_in": bool(seg.get("built_in", False)),
                "created_at": iso(created),
                "updated_at": iso(created),
            }
        )
    segment_ids = {seg["key"]: seg["id"] for seg in structure.get("user_segments", [])}
    seen: set[int] = set()
    keys: dict[str, int] = {}
    positions: dict[str, int] = {}
    articles = []
    for a in sources:
        if a["id"] in seen or a["key"] in keys:
            raise ValueError(f"duplicate article id or key: {a['id']} / {a['key']}")
        seen.add(a["id"])
        keys[a["key"]] = a["id"]
        sec = secs[a["section"]]
        locale = a.get("locale", sec.get("locale", "en-us"))
        positions[a["section"]] = positions.get(a["section"], 0) + 1
        rng = random.Random(a["id"])  # per article: adding an article never shifts the others
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
                "user_segment_id": segment_ids[a["user_segment"]] if a.get("user_segment") else None,
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
        "user_segments": {"user_segments": segments, "count": len(segments), "next_page": None},
        "keys": keys,
        "urls": {k: next(a["html_url"] for a in articles if a["id"] == i) for k, i in keys.items()},
        "titles": {a["key"]: a["title"] for a in sources},
    }
