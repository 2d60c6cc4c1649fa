"""Turn handler for the browser tests: the echo handler, plus hostile answers on request."""

from __future__ import annotations

from collections.abc import Iterator

from orchestrator.turn import Delta, Done, Thinking, TurnEvent, TurnRequest
from testkit.handlers import EchoHandler

HOSTILE_MARKDOWN = (
    "Try this <img src=x onerror=\"window.__xss='img'\"> and <script>window.__xss='script'</script> "
    "or [click me](javascript:window.__xss='link') [1] [2]\n\n"
    '<a href="javascript:window.__xss=\'a\'">raw link</a> <iframe src="javascript:window.__xss=1"></iframe>'
)
HOSTILE_CITATIONS = [
    {
        "n": 1,
        "title": "<img src=x onerror=\"window.__xss='title'\">",
        "url": "javascript:window.__xss='cite'",
        "kind": "article",
    },
    {"n": 2, "title": "Safe article", "url": "https://example.invalid/kb/2", "kind": "article"},
]


DRAFT_ANSWER = (
    "Draft reply (offline: assembled from the quoted sources; check before sending):\n\n"
    "Hi Felix,\n\nYour order was sent in two parcels.\n\nKind regards,\nDana"
)


INTERNAL_ANSWER = (
    "Refunds reach the card within 5 to 7 business days [1]. "
    "The warehouse approved an exception for a similar case [2], see the staff guide [3]."
)
INTERNAL_CITATIONS = [
    {"n": 1, "id": "article:1", "title": "Refund timing", "url": "https://example.invalid/hc/1",
     "kind": "article", "cited": True, "internal": False},
    {"n": 2, "id": "ticket:41007:internal", "title": "Parcel lost (internal notes)",
     "url": "https://example.invalid/agent/tickets/41007", "kind": "ticket", "cited": True, "internal": True},
    {"n": 3, "id": "article:9", "title": "Staff guide: refund exceptions", "url": "https://example.invalid/hc/9",
     "kind": "article", "cited": True, "internal": True},
]  # fmt: skip


class BrowserHandler(EchoHandler):
    """`hostile …` answers with script-laden Markdown and citations; `draft …` with a labelled
    draft reply; anything else is echoed."""

    def handle(self, request: TurnRequest) -> Iterator[TurnEvent]:
        if request.text.startswith("internal"):
            yield Delta(INTERNAL_ANSWER)
            yield Done(
                text=INTERNAL_ANSWER,
                citations=INTERNAL_CITATIONS,
                routing={"action": "route", "router": "test", "routes": ["knowledge_base"]},
                timings={},
                cost={},
            )
            return
        if request.text.startswith("draft"):
            yield Delta(DRAFT_ANSWER)
            yield Done(
                text=DRAFT_ANSWER,
                citations=[{"n": 1, "title": "Order BO-1", "url": None, "kind": "order", "cited": True}],
                routing={"action": "route", "router": "test", "routes": ["ticket"]},
                timings={},
                cost={},
            )
            return
        if not request.text.startswith("hostile"):
            yield from super().handle(request)
            return
        yield Thinking("<b onmouseover=alert(1)>searching</b>", agent="<i>kb</i>")
        yield Delta(HOSTILE_MARKDOWN)
        yield Done(
            text=HOSTILE_MARKDOWN,
            citations=HOSTILE_CITATIONS,
            routing={"action": "respond", "router": "test", "routes": []},
            timings={},
            cost={},
        )
