"""Macros in the Zendesk macro API shape, from sources/macros.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from store.demo_data.build.common import EPOCH, ZENDESK, iso


def build_macros() -> tuple[list[dict[str, Any]], dict[str, int]]:
    from store.demo_data.sources.macros import MACROS

    out, keys = [], {}
    for n, m in enumerate(MACROS):
        mid = 360020000101 + n
        if m["key"] in keys:
            raise ValueError(f"duplicate macro key {m['key']}")
        keys[m["key"]] = mid
        actions: list[dict[str, Any]] = [{"field": "comment_value", "value": m["comment"].strip()}]
        if "public" in m:
            actions.append({"field": "comment_mode_is_public", "value": str(m["public"]).lower()})
        if m.get("status"):
            actions.append({"field": "status", "value": m["status"]})
        if m.get("tags"):
            actions.append({"field": "current_tags", "value": " ".join(m["tags"])})
        if m.get("set_tags"):
            actions.append({"field": "set_tags", "value": " ".join(m["set_tags"])})
        if m.get("type"):
            actions.append({"field": "type", "value": m["type"]})
        if m.get("priority"):
            actions.append({"field": "priority", "value": m["priority"]})
        created = EPOCH - timedelta(days=700 - 9 * n)
        out.append({
            "id": mid, "url": f"{ZENDESK}/api/v2/macros/{mid}.json", "title": m["title"],
            "active": m.get("active", True), "description": m["description"], "position": n + 1,
            "restriction": None, "default": False, "raw_title": m["title"], "actions": actions,
            "created_at": iso(created), "updated_at": iso(created + timedelta(days=40 + 5 * n)),
        })  # fmt: skip
    return out, keys
