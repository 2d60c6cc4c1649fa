"""Insights: turn rows from session documents, the report, gap topics, CSV safety, the role
claim, the Zendesk nav_bar location and the Spanner SQL (no Spanner needed)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from backend.auth import AuthError, DevTokenAuthenticator
from backend.dev_auth import public_pem, sign_zaf_token
from backend.insights import (
    BadRequest,
    InsightsTokens,
    Viewer,
    build_report,
    cluster_gaps,
    export_csv,
    parse_range,
)
from backend.zendesk_auth import Installation, ZafTokenVerifier
from store.insights import QUERIES, TURN_COLUMNS, AgentDayRow, DailyRow, GapRow, RawInsights, turn_rows
from store.spanner.ddl import all_ddl, insights_ddl
from store.spanner.insights import spanner_queries

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_790_000_000.0


def doc(**extra) -> dict:
    return {
        "user_name": "Ann",
        "ticket": {"id": "7", "description": "CUSTOMER TEXT"},
        "thread": [
            {"id": "q1", "role": "user", "text": "  gift wrap?  ", "created_at": T0},
            {
                "id": "q1.reply",
                "role": "assistant",
                "text": "ANSWER",
                "status": "complete",
                "reply_to": "q1",
                "meta": {
                    "routing": {
                        "action": "route",
                        "routes": ["knowledge_base", "macros"],
                        "meta": {"declined": True},
                    },
                    "timings": {"total_s": 0.42},
                    "cost": {"cost_usd": 0.002, "input_tokens": 900, "output_tokens": 50},
                    "inserted": {"count": 1},
                },
            },
            {"id": "q2", "role": "user", "text": "x" * 900, "created_at": T0 + 5},
            {"id": "q2.reply", "role": "assistant", "status": "streaming", "reply_to": "q2", "meta": {}},
        ],
        "feedback": [
            {"message_id": "q1.reply", "rating": "down", "reasons": ["wrong_sources", "incomplete"]}
        ],
        **extra,
    }


def test_turn_rows_read_the_session_document() -> None:
    first, second = turn_rows(session_id="s", tenant="demo", user_id="ann", ticket_id="7", data=doc())
    assert first.Question == "  gift wrap?  " and first.Day == "2026-09-21" and first.UserName == "Ann"
    assert (first.Action, first.Agents, first.Status) == ("route", "knowledge_base+macros", "complete")
    assert (first.LatencyS, first.CostUsd, first.InputTokens, first.OutputTokens) == (0.42, 0.002, 900, 50)
    assert (first.Rating, first.WrongSources, first.Declined, first.Draft, first.Inserted) == (
        "down",
        True,
        True,
        False,
        True,
    )
    # An unanswered question is still a question; a pasted wall of text is clipped.
    assert second.Status == "streaming" and second.LatencyS is None and second.Rating is None
    assert len(second.Question) == 500
    # Nothing but the question's own text: no answer, no ticket text, in any column.
    assert "ANSWER" not in repr((first, second)) and "CUSTOMER" not in repr((first, second))


def test_turn_rows_tolerate_old_and_broken_documents() -> None:
    old = {"thread": [{"id": "a", "role": "user", "text": "hi"}, {"role": "user"}, "junk"], "feedback": ["x"]}
    (row,) = turn_rows(session_id="s", tenant="t", user_id="u", ticket_id="1", data=old)
    assert row.Status == "streaming" and row.Agents == "" and row.CostUsd == 0.0
    legacy = doc()
    legacy["thread"][1]["meta"]["routing"] = {"action": "route", "stages": [[{"agent": "order_lookup"}]]}
    assert (
        turn_rows(session_id="s", tenant="t", user_id="u", ticket_id="1", data=legacy)[0].Agents
        == "order_lookup"
    )


def raw(gaps: list[GapRow] | None = None) -> RawInsights:
    return RawInsights(
        daily=[
            DailyRow("2026-03-02", 4, 2, 3, 2, 1, 1, 1, 1, 1, 1, 0, 0.01, 4000, 300),
            DailyRow("2026-03-04", 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0.0, 0, 0),
        ],
        agents=[
            AgentDayRow("ann", "Ann", "2026-03-02", 3, 2, 1),
            AgentDayRow("bob", "", "2026-03-02", 1, 1, 0),
            AgentDayRow("ann", "Ann", "2026-03-04", 1, 1, 0),
        ],
        latency=[("route", "knowledge_base", 1.0), ("route", "knowledge_base", 3.0), ("respond", "", 0.1)],
        routes=[("route", "knowledge_base", 3), ("respond", "", 1), ("route", "", 1)],
        gaps=gaps or [],
        tickets=4,
    )


def test_report_fills_every_day_and_totals() -> None:
    r = build_report(raw(), "2026-03-01", "2026-03-05")
    assert r["range"]["days"] == ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"]
    assert r["adoption"]["questions"] == [0, 4, 0, 1, 0]
    t = r["totals"]
    assert (t["questions"], t["agents"], t["tickets"], t["helpful_rate"]) == (5, 2, 4, 0.6667)
    ann = r["adoption"]["by_agent"][0]
    assert ann["user_id"] == "ann" and ann["per_day"] == [0, 3, 0, 1, 0] and ann["per_active_day"] == 2.0
    assert r["adoption"]["by_agent"][1]["name"] == "bob"  # no display name: the id
    mix = {m["route"]: m for m in r["routing"]["mix"]}
    assert mix["knowledge_base"]["questions"] == 3 and mix["knowledge_base"]["p50_s"] == 2.0
    assert mix["no sources"]["p95_s"] is None and mix["respond"]["share"] == 0.2
    assert r["cost"]["usd"] == [0, 0.01, 0, 0.0, 0]


def test_gap_questions_cluster_into_named_topics() -> None:
    questions = [
        "can we gift wrap a sofa",
        "do you offer gift wrap for orders",
        "Is gift-wrap available at checkout?",
        "warranty on lamps",
        "warranty for a cracked lamp shade",
        "engraving on a kettle",
    ]
    gaps = [
        GapRow(f"m{n}", str(100 + n), "ann", T0 + n, q, n % 2 == 0, n % 2 == 1)
        for n, q in enumerate(questions)
    ]
    topics = cluster_gaps(gaps)
    by_name = {t["topic"]: t for t in topics}
    assert set(by_name) == {"gift wrap", "warranty lamp", "engraving kettle"}
    gift = by_name["gift wrap"]
    assert gift["count"] == 3 and gift["tickets"] == ["102", "101", "100"]  # newest first
    assert gift["examples"][0] == "Is gift-wrap available at checkout?"
    assert gift["suggestion"] == "Write an article about “gift wrap”"
    assert [t["count"] for t in topics] == [3, 2, 1]
    # Questions of nothing but stop words still come back, as their own topic.
    assert cluster_gaps([GapRow("m", "1", "u", T0, "what is it?", True, False)])[0]["count"] == 1
    assert cluster_gaps([]) == []


def test_csv_neutralises_formulas_and_carries_no_answer_text() -> None:
    gaps = [GapRow("m1", "=HYPERLINK(1)", "@bob", T0, "=cmd|' /C calc'!A0 gift wrap", True, False)]
    text = export_csv("gaps", raw(gaps), "2026-03-01", "2026-03-05")
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert (
        row["question"].startswith("'=") and row["ticket_id"].startswith("'=") and row["user_id"] == "'@bob"
    )
    assert row["reason"] == "declined" and row["day"] == "2026-09-21"
    daily = list(csv.DictReader(io.StringIO(export_csv("daily", raw(), "2026-03-01", "2026-03-05"))))
    assert [d["day"] for d in daily] == ["2026-03-02", "2026-03-04"] and daily[0]["cost_usd"] == "0.010000"


def test_range_parsing() -> None:
    today = date(2026, 3, 14)
    assert parse_range({"start": "2026-03-01", "end": "2026-03-01"}, today=today) == (
        "2026-03-01",
        "2026-03-01",
    )
    assert parse_range({"end": "2026-01-10"}, today=today) == ("2025-12-28", "2026-01-10")
    for bad in ({"start": "03/01/2026"}, {"start": "2026-02-30"}, {"start": "2026-03-10", "end": "2026-03-01"},
                {"start": "2024-01-01", "end": "2026-01-01"}, {"start": "2026-01-01' OR 1=1 --"}):  # fmt: skip
        with pytest.raises(BadRequest):
            parse_range(bad, today=today)


def test_insights_tokens_are_their_own_and_carry_the_role() -> None:
    tokens = InsightsTokens("s" * 32)
    viewer = Viewer("demo", "lead", "Lead", "admin")
    assert tokens.verify(tokens.mint(viewer)) == viewer
    with pytest.raises(AuthError, match="expired"):
        tokens.verify(tokens.mint(viewer, now=1000.0))
    with pytest.raises(AuthError):
        tokens.verify(InsightsTokens("t" * 32).mint(viewer))  # another deployment's secret
    with pytest.raises(AuthError):  # a dev token is not an insights token
        tokens.verify(DevTokenAuthenticator("s" * 32, 60).mint("demo", "lead", role="admin"))


def test_dev_tokens_carry_a_checked_role() -> None:
    dev = DevTokenAuthenticator("s" * 32, 60)
    principal, role = dev.role_of({"token": dev.mint("demo", "lead", "Lead", role="admin")})
    assert (principal.tenant, principal.user_id, role) == ("demo", "lead", "admin")
    assert dev.role_of({"token": dev.mint("demo", "ann")})[1] is None
    with pytest.raises(ValueError):
        dev.mint("demo", "ann", role="superuser")
    # The sidebar's own authenticate ignores the claim: an admin dev token still opens the sidebar.
    assert dev.authenticate({"token": dev.mint("demo", "lead", role="admin")}).user_id == "lead"


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class _NoLog:
    def record(self, key: str, ttl_seconds: int) -> int:
        return 1


def test_zaf_role_comes_from_the_verified_token_only(app_key) -> None:
    """The role is read where ZAF's currentUser shape puts it (`context.user.role`, the Users API's
    role names: https://developer.zendesk.com/api-reference/ticketing/users/users/), from a token
    whose signature, audience and expiry verified; anything else is no role."""
    inst = Installation(subdomain="acme", installation_id="42", public_key=public_pem(app_key))
    verifier = ZafTokenVerifier([inst], _NoLog())

    def sign(role, **kw) -> str:
        user = {"id": "7", "name": "Lee", **({"role": role} if role else {})}
        return sign_zaf_token(app_key, subdomain="acme", installation_id="42", user_id="7", user_name="Lee",
                              extra={"context": {"location": "nav_bar", "user": user}, **kw})  # fmt: skip

    assert verifier.verify(sign("admin")).role == "admin"
    assert verifier.verify(sign("agent")).role == "agent"
    assert verifier.verify(sign(None)).role is None
    assert verifier.verify(sign("root")).role is None
    # No user in the token: no role either, whatever else it says.
    assert verifier.verify(sign("admin", sub=None, context={"user": {"role": "admin"}})).role is None
    forged = sign_zaf_token(
        rsa.generate_private_key(public_exponent=65537, key_size=2048), subdomain="acme", installation_id="42",
        user_id="7", user_name="Lee", extra={"context": {"user": {"id": "7", "role": "admin"}}},
    )  # fmt: skip
    with pytest.raises(AuthError):
        verifier.verify(forged)


def test_manifest_has_the_nav_bar_location_and_its_icon() -> None:
    """Nav bar: "The app appears as an icon in the navigation bar on the left side of the agent
    interface" (https://developer.zendesk.com/apps/docs/support-api/nav_bar); its icon is
    assets/icon_nav_bar.svg, an SVG with a viewBox, resized to 18x18
    (https://developer.zendesk.com/apps/docs/developer-guide/styling). Signed URLs apply to it as
    to the sidebar, so Zendesk POSTs the ZAF JWT to /zendesk/insights."""
    manifest = json.loads((ROOT / "zendesk_app/manifest.json").read_text())
    assert manifest["signedUrls"] is True
    assert manifest["location"]["support"]["nav_bar"]["url"] == "{{setting.backend_url}}/zendesk/insights"
    icon = (ROOT / "zendesk_app/assets/icon_nav_bar.svg").read_text()
    assert icon.startswith("<svg") and 'viewBox="0 0 18 18"' in icon and "currentColor" in icon


def test_spanner_ddl_and_queries_have_the_right_shape() -> None:
    table, index = insights_ddl()
    assert "PRIMARY KEY (SessionId, MessageId)" in table
    assert "INTERLEAVE IN PARENT Sessions ON DELETE CASCADE" in table
    for column in TURN_COLUMNS:
        assert f"\n  {column} " in table, column
    assert index.startswith("CREATE INDEX SessionTurnsByTenantDay ON SessionTurns (Tenant, Day)")
    stored = index.split("STORING (", 1)[1]
    read = {c for sql in QUERIES.values() for c in TURN_COLUMNS if c in sql} - {"Tenant", "Day", "MessageId"}
    assert all(c in stored for c in read)  # every column a query reads is in the index
    # Appended after the existing statements: Terraform applies it to an existing database in place.
    assert all_ddl()[-2:] == insights_ddl()
    assert (ROOT / "infra/spanner/schema.sql").read_text().count("CREATE TABLE SessionTurns") == 1
    for name, sql in spanner_queries().items():
        assert "FROM SessionTurns@{FORCE_INDEX=SessionTurnsByTenantDay}" in sql, name
        assert "Tenant = @tenant AND Day BETWEEN @start AND @end" in sql, name
        assert "?" not in sql and "{TURNS}" not in sql
