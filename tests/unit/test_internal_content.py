"""Internal content: what ingest marks internal, who may see it, and how agents cite it.

Written from Zendesk's documentation:
- Articles API, https://developer.zendesk.com/api-reference/help_center/help-center-api/articles/:
  `user_segment_id` — "The id of the user segment which defines who can see this article. Set to
  null to make it accessible to everyone"; `user_segment_ids` (Enterprise) — "accessed by users with
  any of the user segment ids in the array".
- User Segments API, https://developer.zendesk.com/api-reference/help_center/help-center-api/user_segments/:
  `user_type` "signed_in_users" (only authenticated users) or "staff" (only agents and Help Center
  managers); "For group_ids, organization_ids, tags, and or_tags, an empty array means that access is
  not restricted by the attribute"; tags: "All the tags a user must have"; `added_user_ids`: users
  added "regardless of matching tags or other criteria". "Creating user segments"
  (https://support.zendesk.com/hc/en-us/articles/4408837707290): for agents "the organization is
  ignored".
- Macros API, https://developer.zendesk.com/api-reference/ticketing/business-rules/macros/:
  `restriction` — "Access to this macro. A null value allows unrestricted access for all users in
  the account" (`{"type": "Group", "id", "ids"}` / `{"type": "User", "id"}`); the actions reference
  (https://developer.zendesk.com/documentation/ticketing/reference-guides/actions-reference/):
  `comment_mode_is_public` false makes the macro's comment private.
- Ticket Comments API, https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/:
  `public` — "true if a public comment; false if an internal note".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.base import AgentContext, Evidence, current_viewer, viewing_as
from agents.registry import AgentRegistry
from backend.auth import DevTokenAuthenticator
from backend.zendesk_auth import SessionTokens
from orchestrator.orchestrator import Orchestrator
from orchestrator.turn import Principal
from store.ingest import ingest_path, ingest_records
from store.ingest.readers import RawRecord, read_user_segments
from store.ingest.records import IngestLimits, parse_article, parse_macro, parse_ticket_documents
from store.knowledge import Document, SearchFilters, SqliteKnowledgeIndex, Viewer

LIM = IngestLimits()
STAFF = {"id": 11, "user_type": "staff", "group_ids": [], "organization_ids": [], "tags": [], "or_tags": []}
TIER2 = {**STAFF, "id": 12, "group_ids": [900, 901]}
SIGNED_IN_ORG = {**STAFF, "id": 13, "user_type": "signed_in_users", "organization_ids": [55]}
VIP_TAGS = {**STAFF, "id": 14, "tags": ["vip"], "added_user_ids": [7]}
SEGMENTS = {str(s["id"]): s for s in (STAFF, TIER2, SIGNED_IN_ORG, VIP_TAGS)}


def article(**kw) -> dict:
    return {
        "id": 1,
        "title": "Refund exceptions",
        "body": "<p>Refunds after 30 days need approval.</p>",
        **kw,
    }


# --- ingest: articles -----------------------------------------------------------------------------
def test_an_article_without_a_segment_is_public() -> None:
    doc = parse_article(article(user_segment_id=None), "acme", LIM, segments=SEGMENTS)
    assert (doc.internal, doc.audience) == (False, ("everyone",))


@pytest.mark.parametrize(
    ("segment", "audience"),
    [
        (11, ("agents", "segment:11")),  # staff: every agent
        (12, ("group:900", "group:901", "segment:12")),  # staff in groups 900/901 only
        (13, ("agents", "segment:13")),  # signed-in users of an org: the org is ignored for agents
        (14, ("segment:14", "user:7")),  # tag-restricted: agents' tags unknown, only the added user
        (99, ("segment:99",)),  # a segment we could not read: nobody
    ],
)
def test_an_article_restricted_to_a_user_segment_is_internal_with_that_segments_audience(
    segment, audience
) -> None:
    doc = parse_article(article(user_segment_id=segment), "acme", LIM, segments=SEGMENTS)
    assert doc.internal is True
    assert doc.audience == audience


def test_user_segment_ids_give_the_union_of_their_audiences() -> None:
    doc = parse_article(article(user_segment_ids=[12, 11]), "acme", LIM, segments=SEGMENTS)
    assert doc.internal and doc.audience == ("agents", "group:900", "group:901", "segment:11", "segment:12")


def test_public_documents_keep_the_content_hash_they_were_indexed_with() -> None:
    """No re-embedding of every public document because visibility joined the index; a change of
    segment rewrites the document."""
    import hashlib
    import json
    from dataclasses import asdict

    from store.knowledge.types import CHUNKER_VERSION

    doc = parse_article(article(), "acme", LIM)
    old = asdict(doc)
    for key in ("updated_at", "internal", "audience"):
        old.pop(key)
    old["chunker"] = CHUNKER_VERSION
    raw = json.dumps(old, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert doc.content_hash == hashlib.sha256(raw.encode()).hexdigest()
    restricted = parse_article(article(user_segment_id=11), "acme", LIM, segments=SEGMENTS)
    assert restricted.content_hash != doc.content_hash


def test_user_segments_file_beside_the_article_export(tmp_path: Path) -> None:
    (tmp_path / "articles.json").write_text('{"articles": []}')
    (tmp_path / "user_segments.json").write_text('{"user_segments": [{"id": 12, "user_type": "staff"}]}')
    assert read_user_segments(tmp_path / "articles.json") == {"12": {"id": 12, "user_type": "staff"}}
    assert read_user_segments(tmp_path / "nothing-here" / "articles.json") == {}


# --- ingest: macros and tickets ------------------------------------------------------------------
def macro(**kw) -> dict:
    return {
        "id": 5,
        "title": "Refund approved",
        "actions": [{"field": "comment_value", "value": "Done."}],
        **kw,
    }


def test_macros_restricted_or_posting_a_private_comment_are_internal() -> None:
    assert parse_macro(macro(restriction=None), "acme", LIM).internal is False
    group = parse_macro(macro(restriction={"type": "Group", "id": 900, "ids": [900, 901]}), "acme", LIM)
    assert group.internal and group.audience == ("group:900", "group:901")
    user = parse_macro(macro(restriction={"type": "User", "id": 7}), "acme", LIM)
    assert user.internal and user.audience == ("user:7",)
    private = macro(actions=[*macro()["actions"], {"field": "comment_mode_is_public", "value": "false"}])
    doc = parse_macro(private, "acme", LIM)
    assert doc.internal is True and doc.audience == ("everyone",)
    public = macro(actions=[*macro()["actions"], {"field": "comment_mode_is_public", "value": "true"}])
    assert parse_macro(public, "acme", LIM).internal is False


def ticket() -> dict:
    return {
        "id": 41007,
        "subject": "Parcel lost",
        "description": "My parcel never arrived.",
        "status": "solved",
        "requester_id": 1,
        "comments": [
            {"author_id": 1, "public": True, "body": "My parcel never arrived."},
            {
                "author_id": 2,
                "public": False,
                "body": "Warehouse confirmed loss; approve refund without return.",
            },
            {"author_id": 2, "public": True, "body": "We have refunded your order in full."},
        ],
    }


def test_a_solved_tickets_internal_notes_are_their_own_internal_document() -> None:
    public, notes = parse_ticket_documents(ticket(), "acme", LIM)
    assert public.id == "ticket:41007" and not public.internal and public.audience == ("everyone",)
    assert "Warehouse" not in public.body  # never mixed into the public conversation
    assert "refunded your order" in public.body
    assert notes.id == "ticket:41007:internal" and notes.internal and notes.audience == ("agents",)
    assert "Warehouse confirmed loss" in notes.body and "refunded your order" not in notes.body
    no_notes = {**ticket(), "comments": [c for c in ticket()["comments"] if c["public"]]}
    assert [d.id for d in parse_ticket_documents(no_notes, "acme", LIM)] == ["ticket:41007"]


# --- the index: flags stored, search filtered per viewer -----------------------------------------
@pytest.fixture
def index(tmp_path: Path, embedder) -> SqliteKnowledgeIndex:
    idx = SqliteKnowledgeIndex(tmp_path / "k.sqlite3", embedder)
    yield idx
    idx.close()


def test_ingest_stores_the_flags_and_sweeps_neither_document_of_a_ticket(index) -> None:
    report = ingest_records(index, "acme", "tickets", [RawRecord("t", raw=ticket())])
    assert report.added == 2 and report.deleted == 0
    hits = index.search("warehouse refund parcel", 10, SearchFilters("acme"))
    assert {h.document.id: h.document.internal for h in hits} == {
        "ticket:41007": False,
        "ticket:41007:internal": True,
    }
    again = ingest_records(index, "acme", "tickets", [RawRecord("t", raw=ticket())])
    assert (again.skipped, again.deleted) == (2, 0)


def test_ingest_path_reads_segments_and_the_viewer_filter_hides_restricted_articles(index, tmp_path) -> None:
    import json

    folder = tmp_path / "hc"
    folder.mkdir()
    (folder / "user_segments.json").write_text(json.dumps({"user_segments": [STAFF, TIER2]}))
    articles = [
        article(id=1, title="Refund timing", body="<p>Refunds take 5 to 7 business days.</p>"),
        article(id=2, title="Staff refund exceptions", body="<p>Refunds after 30 days: staff approval.</p>", user_segment_id=11),
        article(id=3, title="Tier 2 refund overrides", body="<p>Refund overrides for tier 2 agents only.</p>", user_segment_id=12),
    ]  # fmt: skip
    (folder / "articles.json").write_text(json.dumps({"articles": articles}))
    assert ingest_path(index, "acme", "help-center", folder / "articles.json").added == 3

    def visible(viewer: Viewer) -> set[str]:
        hits = index.search("refund", 10, SearchFilters("acme", audience=viewer.audience()))
        return {h.document.id for h in hits}

    assert visible(Viewer("42", None)) == {"article:1", "article:2"}  # groups unknown
    assert visible(Viewer("42", ("17",))) == {"article:1", "article:2"}
    assert visible(Viewer("42", ("901",))) == {"article:1", "article:2", "article:3"}
    internal = {h.document.id: h.document.internal for h in index.search("refund", 10, SearchFilters("acme"))}
    assert internal == {"article:1": False, "article:2": True, "article:3": True}


def test_an_index_file_from_before_visibility_opens_with_public_defaults(tmp_path, embedder) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    SqliteKnowledgeIndex(path, embedder).close()
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE documents DROP COLUMN internal")
    conn.execute("ALTER TABLE documents DROP COLUMN audience")
    conn.commit()
    conn.close()
    idx = SqliteKnowledgeIndex(path, embedder)
    try:
        idx.upsert("acme", [Document("acme", "article", "1", "Refunds", "Refunds take a week.", "t")])
        filters = SearchFilters("acme", audience=Viewer().audience())
        assert [h.document.id for h in idx.search("refunds", 5, filters)] == ["article:1"]
    finally:
        idx.close()


# --- agents ---------------------------------------------------------------------------------------
@pytest.fixture
def agent_index(index) -> SqliteKnowledgeIndex:
    docs = [
        Document("acme", "article", "1", "Refund timing", "Refunds reach the card in 5 to 7 business days.", "help-center"),
        Document("acme", "article", "2", "Refund exceptions for staff", "Refunds after 30 days need a team lead's approval.",
                 "help-center", internal=True, audience=("agents", "segment:11")),
        Document("acme", "article", "3", "Refund overrides for tier 2", "Tier 2 may refund after 60 days without a return.",
                 "help-center", internal=True, audience=("group:900", "segment:12")),
        Document("acme", "macro", "5", "Refund approved (internal)", "## Reply\n\nRefund approved by the warehouse team.",
                 "macros", body_format="markdown", internal=True, audience=("everyone",)),
    ]  # fmt: skip
    index.upsert("acme", docs)
    ingest_records(index, "acme", "tickets", [RawRecord("t", raw=ticket())], sweep=False)
    return index


def ctx_for(index, viewer: Viewer | None = None, ticket_id: str = "1") -> AgentContext:
    kwargs = {"viewer": viewer} if viewer is not None else {}
    return AgentContext(tenant="acme", ticket={"id": ticket_id}, knowledge=index, llm=None, **kwargs)


@pytest.fixture(scope="module")
def registry() -> AgentRegistry:
    return AgentRegistry()


def test_knowledge_base_marks_restricted_articles_internal_and_hides_what_the_agent_cannot_see(
    registry, agent_index
) -> None:
    agent = registry.get("knowledge_base")
    query = "refund after 30 days approval"
    unknown = {e.id: e.internal for e in agent.search_articles(ctx_for(agent_index), query)}
    assert unknown.get("article:2") is True and unknown.get("article:1") is False
    assert "article:3" not in unknown  # restricted to group 900; this agent's groups are unknown
    tier2 = {
        e.id: e.internal for e in agent.search_articles(ctx_for(agent_index, Viewer("7", ("900",))), query)
    }
    assert tier2.get("article:3") is True


def test_the_turns_viewer_reaches_agent_contexts_built_inside_it(agent_index) -> None:
    """backend/turns.py wraps each turn in viewing_as(its Principal): contexts built in the turn
    (the orchestrator's) search as that agent without being told."""
    assert current_viewer() == Viewer()
    with viewing_as(Viewer("7", ("900",))):
        assert ctx_for(agent_index).viewer == Viewer("7", ("900",))
    assert ctx_for(agent_index).viewer == Viewer()


def test_similar_tickets_keep_internal_notes_a_separate_internal_evidence(registry, agent_index) -> None:
    agent = registry.get("similar_tickets")
    evidence = agent.search_tickets(ctx_for(agent_index), "parcel never arrived lost refund warehouse")
    by_id = {e.id: e for e in evidence}
    public, notes = by_id["ticket:41007"], by_id["ticket:41007:internal"]
    assert public.internal is False and "Warehouse" not in public.text
    assert notes.internal is True and "Warehouse confirmed loss" in notes.text
    # The open ticket itself (and its notes) is never its own similar ticket.
    assert not any(
        e.id.startswith("ticket:41007")
        for e in agent.search_tickets(ctx_for(agent_index, ticket_id="41007"), "parcel lost")
    )


def test_macros_agent_marks_agent_only_macros_internal(registry, agent_index) -> None:
    result = registry.get("macros").search_macros(ctx_for(agent_index), "refund approved warehouse")
    assert [(e.id, e.internal) for e in result["evidence"]][:1] == [("macro:5", True)]
    assert result["data"]["macro"]["internal"] is True


def test_citations_say_whether_they_are_internal() -> None:
    """docs/protocol.md: every citation carries `internal`."""
    note = Evidence("ticket:1:internal", "Notes", "Approved.", "ticket", internal=True)
    assert Orchestrator._citation(1, note, True)["internal"] is True
    assert Orchestrator._citation(2, Evidence("article:1", "A", "x", "article"), False)["internal"] is False


# --- the agent's groups come only from verified tokens ---------------------------------------------
def test_session_and_dev_tokens_carry_the_agents_groups_or_none() -> None:
    tokens = SessionTokens("s" * 32)
    with_groups = Principal("acme", "7", "Ann", ("900", "901"))
    assert tokens.verify(tokens.mint(with_groups))[0].group_ids == ("900", "901")
    assert tokens.verify(tokens.mint(Principal("acme", "7", "Ann")))[0].group_ids is None
    dev = DevTokenAuthenticator("s" * 32, 3600)
    assert dev.authenticate({"token": dev.mint("acme", "7", "Ann", ("900",))}).group_ids == ("900",)
    assert dev.authenticate({"token": dev.mint("acme", "7", "Ann")}).group_ids is None


class _Count:
    def record(self, key: str, ttl_seconds: int) -> int:
        return 1


def test_zaf_groups_come_from_the_signed_token_only() -> None:
    """Zendesk documents no group claim in the signed-URL token ("Building a server-side app - Part 5",
    https://developer.zendesk.com/documentation/apps/build-an-app/building-a-server-side-app/part-5-secure-the-app/):
    groups are read from `context.user.groups` when a signed token carries them (ZAF's
    `currentUser.groups` shape: objects with an `id`), else unknown — never from the browser."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from backend.dev_auth import public_pem, sign_zaf_token
    from backend.zendesk_auth import Installation, ZafTokenVerifier

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    verifier = ZafTokenVerifier(
        [Installation(subdomain="acme", installation_id="1", public_key=public_pem(key))], _Count()
    )
    context = {
        "product": "support",
        "user": {"id": 7, "name": "Ann", "groups": [{"id": 900, "name": "Tier 2"}, {"id": 901}]},
    }
    signed = sign_zaf_token(
        key, subdomain="acme", installation_id="1", user_id="7", user_name="Ann", extra={"context": context}
    )
    assert verifier.verify(signed).principal().group_ids == ("900", "901")
    plain = sign_zaf_token(key, subdomain="acme", installation_id="1", user_id="7", user_name="Ann")
    assert verifier.verify(plain).principal().group_ids is None


def test_a_turn_runs_as_its_principal_so_searches_see_what_that_agent_may_see() -> None:
    """backend/turns.py: the turn thread (and the agent threads it copies its context into) search
    as the signed-in agent — their groups from the verified token."""
    from backend.turns import TurnRunner

    class Store:
        instance_id = "i"

        def untrack_turn(self, *a) -> None: ...

    seen: list[Viewer] = []
    runner = TurnRunner(Store(), handler=None, emit=lambda *a: None, turn_timeout=5)  # type: ignore[arg-type]
    # The turn's first step inside its context; None (no session) ends the turn there.
    runner._load = lambda *a: seen.append(current_viewer())  # type: ignore[method-assign]
    runner._run("s", Principal("acme", "7", "Ann", ("900",)), "m1", 1)
    runner._run("s", Principal("acme", "8", "Bo"), "m2", 1)
    assert seen == [Viewer("7", ("900",)), Viewer("8", None)]
    assert current_viewer() == Viewer()


def test_live_import_reads_each_segment_once_and_hides_articles_of_an_unreadable_one() -> None:
    """ "Show User Segment" (GET /api/v2/help_center/user_segments/{user_segment_id},
    https://developer.zendesk.com/api-reference/help_center/help-center-api/user_segments/) answers
    `{"user_segment": {...}}`."""
    from store.ingest.zendesk_api import UserSegments, ZendeskApiError

    calls: list[str] = []

    class Client:
        def get_json(self, path: str, params=None) -> dict:
            calls.append(path)
            if path.endswith("/12.json"):
                return {"user_segment": TIER2}
            raise ZendeskApiError("403 Forbidden")

    segments = UserSegments(Client())  # type: ignore[arg-type]
    tier2 = parse_article(article(user_segment_id=12), "acme", LIM, segments=segments)
    again = parse_article(article(id=2, user_segment_id=12), "acme", LIM, segments=segments)
    hidden = parse_article(article(id=3, user_segment_id=77), "acme", LIM, segments=segments)
    assert tier2.audience == again.audience == ("group:900", "group:901", "segment:12")
    assert hidden.internal and hidden.audience == ("segment:77",)
    assert calls == ["/api/v2/help_center/user_segments/12.json", "/api/v2/help_center/user_segments/77.json"]
