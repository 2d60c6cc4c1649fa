"""The answer benchmark joins with the sidebar's own ticket payload: bench/answers/payload.py is a
Python twin of zendesk_app/src/ticket.js readTicket. Its limits are read out of the JS source, and
where node is installed the real readTicket runs on the same tickets and must agree exactly."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from backend import protocol
from bench.answers import payload
from bench.answers.payload import CLIP, MAX_COMMENT, MAX_JSON, MAX_TAGS, read_ticket, sidebar_ticket

TICKET_JS = Path(__file__).resolve().parents[2] / "zendesk_app" / "src" / "ticket.js"
SRC = TICKET_JS.read_text(encoding="utf-8")


def _num(pattern: str) -> int:
    m = re.search(pattern, SRC)
    assert m, f"ticket.js no longer matches {pattern!r}: update bench/answers/payload.py with it"
    return int(m.group(1))


def test_limits_are_the_ones_in_ticket_js():
    assert _num(r"const MAX_JSON = (\d+);") == MAX_JSON
    assert _num(r"const MAX_COMMENT = (\d+);") == MAX_COMMENT
    assert "text: clip(htmlToText(c.value ?? c.body), MAX_COMMENT)" in SRC
    assert CLIP["subject"] == _num(r"clip\(data\['ticket\.subject'\], (\d+)\)")
    assert CLIP["description"] == _num(r"clip\(data\['ticket\.description'\], (\d+)\)")
    assert CLIP["status"] == _num(r"clip\(data\['ticket\.status'\] \|\| '', (\d+)\)")
    assert CLIP["comment_author"] == _num(r"clip\(c\.author && c\.author\.name, (\d+)\)")
    assert (
        CLIP["requester"]
        == _num(r"clip\(requester\.name, (\d+)\)")
        == _num(r"clip\(requester\.email, (\d+)\)")
    )
    assert CLIP["field_label"] == _num(r"clip\(f\.label \|\| f\.name, (\d+)\)")
    assert CLIP["field_value"] == _num(r"clip\(String\(v\), (\d+)\)")
    assert _num(r"ticket\.tags'\] \|\| \[\]\)\.slice\(0, (\d+)\)") == MAX_TAGS


def _keys(block_start: str) -> list[str]:
    """Top-level keys of the JS object literal that starts at ``block_start`` (``key: value`` and
    shorthand ``key`` entries alike)."""
    body = SRC[SRC.index(block_start) + len(block_start) :]
    body = re.sub(r"//[^\n]*", "", body)  # line comments may hold anything (parentheses, commas)
    depth, top = 1, []
    for ch in body:
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            depth -= 1
            if depth == 0:
                break
        elif depth == 1:
            top.append(ch)
    return [m.group(1) for seg in "".join(top).split(",") if (m := re.match(r"\s*(\w+)", seg))]


def test_field_names_are_the_ones_ticket_js_sends():
    t = sidebar_ticket(41308)
    assert list(t) == _keys("const ticket = {")
    assert list(t["comments"][0]) == _keys(".map((c) => ({")
    assert list(t["requester"]) == ["name", "email"]


def test_demo_ticket_as_the_sidebar_sends_it():
    t = sidebar_ticket(41308)
    assert t["id"] == "41308" and isinstance(t["id"], str)
    # Custom fields keyed by their label (not the Zendesk field id), values as strings.
    assert t["custom_fields"]["Order number"] == "BO-100693"
    # Comment text under `text` (never `value`/`body`), author as a name, role and public flag.
    first = t["comments"][0]
    assert set(first) == {"author", "role", "public", "text"}
    assert first["role"] == "end-user" and first["public"] is True
    assert "BO-100693" in first["text"]
    assert any(c["role"] == "agent" for c in t["comments"])


def test_every_demo_ticket_is_a_valid_join_payload():
    for ticket_id in list(payload._demo_by_id())[:400]:
        t = sidebar_ticket(ticket_id)
        joined = protocol.parse(protocol.JoinPayload, {"ticket": t})
        assert joined.ticket.id == str(ticket_id)
        assert len(json.dumps(t, ensure_ascii=False, separators=(",", ":"))) <= MAX_JSON


def _zaf(**over) -> dict:
    base = {
        "id": 9,
        "subject": "s",
        "description": "d",
        "status": "open",
        "priority": None,
        "type": None,
        "tags": ["a"],
        "requester": {"name": "R", "email": None},
        "comments": [],
        "custom_fields": {},
    }
    return {**base, **over}


def _comment(text: str, role: str = "end-user", public: bool = True) -> dict:
    return {"author": {"id": 1, "name": "Who", "role": role}, "value": text, "public": public}


def test_clipping_and_dropping_oldest_comments():
    long = "x" * 5000
    t = read_ticket(_zaf(subject="s" * 1500, comments=[_comment(long)]))
    assert len(t["subject"]) == CLIP["subject"] and t["subject"].endswith("…")
    assert len(t["comments"][0]["text"]) == MAX_COMMENT and t["comments"][0]["text"].endswith("…")

    many = [_comment(f"comment {i} " + "y" * 1900) for i in range(40)]  # ~80 KB of comments
    t = read_ticket(_zaf(comments=many))
    assert len(json.dumps(t, ensure_ascii=False, separators=(",", ":"))) <= MAX_JSON
    kept = [c["text"].split()[1] for c in t["comments"]]
    assert kept == [str(i) for i in range(40 - len(kept), 40)]  # the newest, in order
    assert 0 < len(kept) < 40


def test_values_html_and_empty_fields():
    t = read_ticket(
        _zaf(
            status="",
            custom_fields={"Order number": 12345, "Empty": "", "None": None, "Gift": True},
            comments=[_comment("<p>Hi &amp; thanks</p>\r\n<p>Bye</p>", role="agent", public=False)],
        )
    )
    assert t["status"] is None
    assert t["custom_fields"] == {"Order number": "12345", "Gift": "true"}
    c = t["comments"][0]
    assert c == {"author": "Who", "role": "agent", "public": False, "text": "Hi & thanks\nBye"}
    assert t["requester"] == {"name": "R", "email": ""}


def test_clip_counts_utf16_units_like_javascript():
    s = "😀" * 10  # 2 UTF-16 units each
    assert payload.clip(s, 20) == s
    clipped = payload.clip(s, 9)
    assert clipped.endswith("…") and len(clipped[:-1].encode("utf-16-le")) // 2 <= 8


NODE_RUNNER = r"""
import { readFileSync } from 'node:fs';
// Demo comments are plain text: the shim refuses markup rather than guess DOMParser's parse.
globalThis.DOMParser = class {
  parseFromString(s) {
    if (/<|&[#A-Za-z]/.test(s)) throw new Error('markup in ' + s.slice(0, 40));
    return { body: { textContent: s.replace(/\r\n?/g, '\n') } };
  }
};
const mod = await import('data:text/javascript,' + encodeURIComponent(readFileSync(process.argv[2], 'utf8')));
// The dev harness's answers to client.get (zendesk_app/src/harness.js lookup).
function client(t) {
  const defs = Object.keys(t.custom_fields || {}).map((label, i) => ({ name: `custom_field_${i + 1}`, label, type: 'text' }));
  return { async get(paths) {
    const out = {};
    for (const p of [].concat(paths)) {
      if (p === 'ticketFields') out[p] = defs;
      else if (p.startsWith('ticket.customField:')) {
        const d = defs.find((f) => f.name === p.split(':')[1]);
        out[p] = d ? t.custom_fields[d.label] : undefined;
      } else out[p] = t[p.slice('ticket.'.length)];
    }
    return out;
  } };
}
const out = [];
for (const t of JSON.parse(readFileSync(0, 'utf8'))) out.push(await mod.readTicket(client(t)));
process.stdout.write(JSON.stringify(out));
"""


def test_agrees_with_the_real_read_ticket_under_node(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    zaf = [payload.zaf_ticket(i) for i in list(payload._demo_by_id())[:120]]
    zaf += [
        _zaf(subject="s" * 1500, comments=[_comment("z" * 5000)], custom_fields={"N": 7, "E": ""}),
        _zaf(
            comments=[_comment(f"c{i} " + "é😀" * 700) for i in range(30)], tags=[str(i) for i in range(150)]
        ),
        _zaf(status=None, requester={}, comments=[{"author": None, "body": "  via body \r\n"}]),
    ]
    script = tmp_path / "run.mjs"
    script.write_text(NODE_RUNNER)
    proc = subprocess.run(
        [node, str(script), str(TICKET_JS)],
        input=json.dumps(zaf),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = json.loads(proc.stdout)
    assert [read_ticket(t) for t in zaf] == expected
