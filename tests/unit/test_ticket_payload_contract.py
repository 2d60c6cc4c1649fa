"""The sidebar's ticket payload reaches the model: what zendesk_app/src/ticket.js sends for a ticket
is what orchestrator.guardrails.render_ticket reads.

The payload is built here the way ticket.js builds it, from ZAF's ticket object for a demo
ticket (backend.sidebar._zaf_ticket, which the dev harness serves). The field names and the
properties they are read from are parsed out of ticket.js itself, so renaming a field there
(comments once went out as `text` while the server read `body`) fails this test.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest

from backend import protocol
from backend.sidebar import _demo_field_titles, _demo_users, _zaf_ticket
from orchestrator.guardrails import render_ticket
from store.demo import DEMO_DATA_DIR

TICKET_JS = Path(__file__).resolve().parents[2] / "zendesk_app" / "src" / "ticket.js"


def _js() -> str:
    return TICKET_JS.read_text(encoding="utf-8")


def _constants(js: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"const (\w+) = (\d+);", js)}


def _object_entries(block: str) -> dict[str, str]:
    """`key: expression,` pairs of a JS object literal (one per line, as ticket.js writes them)."""
    entries = {
        k: v.strip().rstrip(",") for k, v in re.findall(r"^\s*(\w+):\s*(.+?)\s*$", block, re.MULTILINE)
    }
    entries.update(
        {k: k for k in re.findall(r"^\s*(\w+),?\s*$", block, re.MULTILINE)}
    )  # shorthand `comments,`
    return entries


def _comment_mapping(js: str) -> dict[str, str]:
    m = re.search(r"\['ticket\.comments'\][^\n]*\.map\(\(c\) => \(\{(.*?)\}\)\);", js, re.DOTALL)
    assert m, "ticket.js: the comments mapping moved; update this test's parser"
    return _object_entries(m.group(1))


def _ticket_mapping(js: str) -> dict[str, str]:
    m = re.search(r"const ticket = \{(.*?)\n  \};", js, re.DOTALL)
    assert m, "ticket.js: the ticket literal moved; update this test's parser"
    return _object_entries(m.group(1))


def _path(obj: Any, dotted: str) -> Any:
    for part in dotted.strip(".").split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _html_to_text(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return html.unescape(re.sub(r"<[^>]+>", "", value)).strip()


def _eval(expr: str, scope: dict[str, Any], constants: dict[str, int]) -> Any:
    """The few JS forms ticket.js uses: a.b && a.b.c, x ?? y, x !== false, x || '', clip(), htmlToText()."""
    if expr.endswith("!== false"):
        return _eval(expr[: -len("!== false")].strip(), scope, constants) is not False
    refs = re.findall(r"\b(c|data|requester)((?:\.\w+)+|\['[\w.]+'\])", expr)
    values = []
    for root, path in refs:
        key = path[2:-2] if path.startswith("['") else path
        values.append(scope[root].get(key) if path.startswith("['") else _path(scope[root], key))
    if "??" in expr:
        value = next((v for v in values if v is not None), None)
    elif "&&" in expr:
        value = values[-1] if values and all(values) else None
    else:
        value = values[0] if values else None
    if "htmlToText(" in expr:
        value = _html_to_text(value)
    if "String(" in expr and value is not None:
        value = str(value)
    if "|| ''" in expr and not value:
        value = ""
    clip = re.search(r"(\w+)\)\s*$", expr) if expr.startswith("clip(") else None
    if clip and isinstance(value, str):
        limit = constants.get(clip.group(1)) or int(clip.group(1))
        value = value if len(value) <= limit else value[: limit - 1] + "…"
    return value


def sidebar_payload(zaf: dict[str, Any]) -> dict[str, Any]:
    """readTicket(client) for a client that returns `zaf` (as the dev harness does)."""
    js = _js()
    constants = _constants(js)
    data = {f"ticket.{k}": v for k, v in zaf.items() if k != "custom_fields"}
    comments = [
        {key: _eval(expr, {"c": c}, constants) for key, expr in _comment_mapping(js).items()}
        for c in zaf.get("comments") or []
    ]
    # Custom fields: ticket.js keys each value by the field's label (the harness serves the
    # ticket's {label: value} as ticketFields + ticket.customField:<name>).
    assert re.search(r"custom\[clip\(f\.label \|\| f\.name, \d+\)\] = clip\(String\(v\)", js)
    custom = {
        label: str(value)
        for label, value in (zaf.get("custom_fields") or {}).items()
        if value not in (None, "")
    }
    requester = zaf.get("requester") or {}
    payload: dict[str, Any] = {}
    for key, expr in _ticket_mapping(js).items():
        if key == "comments":
            payload[key] = comments
        elif key == "custom_fields":
            payload[key] = custom
        elif key == "requester":
            sub = dict(re.findall(r"(\w+): clip\(requester\.(\w+)", expr))
            payload[key] = {k: requester.get(v) for k, v in sub.items()}
        elif key == "id":
            payload[key] = str(zaf["id"])
        elif key == "tags":
            payload[key] = [str(t) for t in zaf.get("tags") or []]
        else:
            payload[key] = _eval(expr, {"data": data, "requester": requester}, constants)
    # What the server keeps after validating session:join (extra fields allowed).
    return protocol.parse(protocol.JoinPayload, {"ticket": payload}).ticket.model_dump(mode="json")


@pytest.fixture(scope="module")
def zaf_tickets() -> dict[str, dict[str, Any]]:
    import json

    path = DEMO_DATA_DIR / "tickets" / "tickets.json"
    raw = json.loads(path.read_text(encoding="utf-8"))["tickets"]
    users = _demo_users(path.parent.parent / "users.json")
    fields = _demo_field_titles()
    return {str(t["id"]): _zaf_ticket(t, users, fields) for t in raw}


def test_ticket_js_sends_comment_text_under_a_key_the_server_reads():
    mapping = _comment_mapping(_js())
    text_key = next(k for k, v in mapping.items() if "htmlToText" in v)
    assert text_key in ("text", "body", "value", "plain_body"), f"render_ticket does not read {text_key!r}"
    assert "public" in mapping and "author" in mapping


@pytest.mark.parametrize("ticket_id", ["41308", "41316", "41319", "41325"])
def test_render_ticket_shows_what_the_sidebar_sends(zaf_tickets, ticket_id):
    zaf = zaf_tickets[ticket_id]
    payload = sidebar_payload(zaf)
    rendered = render_ticket(payload)
    comments = payload["comments"]
    assert comments, "the demo ticket has comments"
    for sent, original in zip(comments, zaf["comments"], strict=True):
        words = " ".join(sent["text"].split())
        assert words[:150] in " ".join(rendered.split()), f"comment text missing: {words[:80]!r}"
        assert sent["author"] in rendered
        assert original["author"]["name"] == sent["author"]
    internal = [c for c in comments if not c["public"]]
    assert rendered.count("(internal note)") == len(internal)
    for c in internal:
        line = next(ln for ln in rendered.splitlines() if "(internal note)" in ln and c["author"] in ln)
        assert " ".join(c["text"].split())[:60] in " ".join(line.split())
    for label, value in payload["custom_fields"].items():
        assert f"{label}: {value}" in rendered
    assert zaf["requester"]["name"] in rendered and zaf["requester"]["email"] in rendered


def test_a_public_comment_is_not_marked_internal(zaf_tickets):
    rendered = render_ticket(sidebar_payload(zaf_tickets["41308"]))
    assert "(internal note)" not in rendered


def test_rest_shaped_comments_render_too():
    ticket = {
        "id": "7",
        "subject": "Where is my parcel",
        "comments": [
            {"author_id": 1, "body": "Parcel never came.", "public": True},
            {"author_id": 2, "plain_body": "Carrier says delivered.", "public": False},
            {"author": {"name": "Ann", "role": "agent"}, "value": "We opened a claim.", "public": True},
        ],
    }
    rendered = render_ticket(ticket)
    assert "Parcel never came." in rendered
    assert "(internal note): Carrier says delivered." in rendered
    assert "comment (Ann, agent): We opened a claim." in rendered
