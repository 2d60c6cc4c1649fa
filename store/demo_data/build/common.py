"""Shared constants and helpers for the demo-data builders."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ZENDESK = "https://brambleandoak.zendesk.com"
EPOCH = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # "now" of the demo tenant; no wall clock is read
SOURCES = Path(__file__).resolve().parent.parent / "sources"


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day(dt: datetime) -> str:
    """Human date used inside ticket text, e.g. '3 March'."""
    return f"{dt.day} {dt.strftime('%B')}"


def money(x: float) -> str:
    return f"€{x:,.2f}"


def slugify(text: str) -> str:
    text = text.lower().replace("&", "and")
    text = re.sub(r"[^a-z0-9äöüßéèà]+", "-", text)
    return text.strip("-")


def add_business_days(dt: datetime, n: int) -> datetime:
    while n > 0:
        dt += timedelta(days=1)
        if dt.weekday() < 5:
            n -= 1
    return dt


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


_URL = re.compile(r"https?://[^\s<>()]+[^\s<>().,;:!?]")


def text_to_html(text: str) -> str:
    """Render a plain-text comment the way Zendesk's html_body looks: <p> per paragraph, linked URLs."""
    paragraphs = []
    for para in text.strip().split("\n\n"):
        escaped = html.escape(para, quote=False)
        linked = _URL.sub(lambda m: f'<a href="{m.group(0)}" rel="noreferrer">{m.group(0)}</a>', escaped)
        paragraphs.append("<p>" + linked.replace("\n", "<br>") + "</p>")
    return '<div class="zd-comment" dir="auto">' + "".join(paragraphs) + "</div>"
