"""The demo ticket exactly as the sidebar sends it in ``session:join``.

Two steps, as in the browser: backend/sidebar.py shapes a demo ticket like ZAF's ``ticket`` object
(what the dev harness serves to the sidebar), then ``read_ticket`` is a Python twin of
zendesk_app/src/ticket.js ``readTicket`` (what the sidebar builds from the ZAF client's answers).
The clipping limits below mirror the JS; tests/unit/test_sidebar_payload.py parses them out of
ticket.js so they cannot drift apart.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any

from backend.sidebar import demo_tickets

# ticket.js: MAX_JSON, MAX_COMMENT and the clip() limits of each field.
MAX_JSON = 48000
MAX_COMMENT = 2000
CLIP = {
    "subject": 1000,
    "description": 20000,
    "status": 32,
    "comment_author": 128,
    "requester": 200,  # name and email
    "field_label": 200,
    "field_value": 500,
}
MAX_TAGS = 100


def _js_len(s: str) -> int:
    """String length as JavaScript counts it (UTF-16 code units)."""
    return len(s.encode("utf-16-le")) // 2


def clip(s: Any, n: int) -> str:
    """ticket.js ``clip``: a non-string is ''; longer than n (UTF-16 units) → n-1 units and '…'."""
    s = s if isinstance(s, str) else ""
    if _js_len(s) <= n:
        return s
    out, units = [], 0
    for ch in s:  # never split a surrogate pair (JS would leave half of one)
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > n - 1:
            break
        out.append(ch)
    return "".join(out) + "…"


class _TextContent(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(value: Any) -> str:
    """ticket.js ``htmlToText``: DOMParser(text/html).body.textContent, trimmed. Tags go, entities
    are decoded, comments are dropped; the HTML parser turns CR LF / CR into LF first."""
    if not isinstance(value, str):
        return ""
    parser = _TextContent()
    parser.feed(value.replace("\r\n", "\n").replace("\r", "\n"))
    parser.close()
    return "".join(parser.parts).strip()


def _js_string(v: Any) -> str:
    """JavaScript ``String(v)`` for the JSON values a custom field can hold."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, list):
        return ",".join("" if x is None else _js_string(x) for x in v)
    if isinstance(v, dict):
        return "[object Object]"
    return str(v)


def _json_len(obj: Any) -> int:
    """``JSON.stringify(obj).length``: compact separators, non-ASCII kept, UTF-16 units."""
    return _js_len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))


def custom_field_defs(zaf: dict[str, Any]) -> list[dict[str, str]]:
    """The dev harness's ``ticketFields`` for a ticket (harness.js ``customFieldDefs``)."""
    return [
        {"name": f"custom_field_{i + 1}", "label": label, "type": "text"}
        for i, label in enumerate((zaf.get("custom_fields") or {}).keys())
    ]


def read_ticket(zaf: dict[str, Any]) -> dict[str, Any]:
    """ticket.js ``readTicket`` over a ZAF-shaped ticket as the dev harness serves it."""
    if zaf.get("id") is None:
        raise ValueError("no ticket in this location")
    requester = zaf.get("requester") or {}
    comments = []
    for c in zaf.get("comments") or []:
        author = c.get("author") or {}
        value = c.get("value") if c.get("value") is not None else c.get("body")
        comments.append(
            {
                "author": clip(author.get("name"), CLIP["comment_author"]),
                "role": author.get("role") or "",
                "public": c.get("public") is not False,
                "text": clip(html_to_text(value), MAX_COMMENT),
            }
        )
    custom: dict[str, str] = {}
    values = zaf.get("custom_fields") or {}
    for f in custom_field_defs(zaf):
        v = values.get(f["label"])
        if v is not None and v != "":
            custom[clip(f["label"] or f["name"], CLIP["field_label"])] = clip(
                _js_string(v), CLIP["field_value"]
            )
    ticket: dict[str, Any] = {
        "id": _js_string(zaf["id"]),
        "subject": clip(zaf.get("subject"), CLIP["subject"]),
        "description": clip(zaf.get("description"), CLIP["description"]),
        "status": clip(zaf.get("status") or "", CLIP["status"]) or None,
        "priority": zaf.get("priority") or None,
        "type": zaf.get("type") or None,
        "tags": [_js_string(t) for t in (zaf.get("tags") or [])[:MAX_TAGS]],
        "requester": {
            "name": clip(requester.get("name"), CLIP["requester"]),
            "email": clip(requester.get("email"), CLIP["requester"]),
        },
        # ticket.js: `requester.id ?? null` and the requester's ZAF locale (clipped to 16)
        "requester_id": requester.get("id"),
        "locale": clip(requester.get("locale"), 16) or None,
        "comments": comments,
        "custom_fields": custom,
    }
    # Oldest comments go first when the ticket is too large to send.
    while ticket["comments"] and _json_len(ticket) > MAX_JSON:
        ticket["comments"].pop(0)
    return ticket


@lru_cache(maxsize=1)
def _demo_by_id() -> dict[str, dict[str, Any]]:
    return {str(t["id"]): t for t in demo_tickets(limit=1_000_000)}


def zaf_ticket(ticket_id: int | str) -> dict[str, Any]:
    """The demo ticket shaped like ZAF's ticket object (backend/sidebar.py), a fresh copy."""
    try:
        return copy.deepcopy(_demo_by_id()[str(ticket_id)])
    except KeyError:
        raise KeyError(f"no demo ticket {ticket_id}") from None


def sidebar_ticket(ticket_id: int | str) -> dict[str, Any]:
    """The ``ticket`` of the sidebar's ``session:join`` for a demo ticket."""
    return read_ticket(zaf_ticket(ticket_id))


def in_customer_words(ticket: dict[str, Any], subject: str, description: str) -> dict[str, Any]:
    """The ticket as its customer wrote it in their own language: the subject, the description and
    their first public comment (the opener, which is the description) replaced; their later
    comments are dropped (they would still be English); our replies and the records stay."""
    out = copy.deepcopy(ticket)
    out["subject"], out["description"] = subject, description
    comments, opened = [], False
    for c in out.get("comments") or []:
        if c.get("role") == "end-user" and c.get("public") is not False:
            if opened:
                continue
            c, opened = {**c, "text": clip(description, MAX_COMMENT)}, True
        comments.append(c)
    out["comments"] = comments
    return out


def ticketless(key: str) -> dict[str, Any]:
    """A join with no real ticket behind it (a case with ``ticket: null``): the protocol needs an
    id, so one that no demo ticket has, and everything else empty."""
    return read_ticket({"id": f"none-{key}"[:64], "subject": "", "description": "", "custom_fields": {}})
