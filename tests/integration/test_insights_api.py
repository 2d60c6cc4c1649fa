"""The insights page's API over a real server: a scripted day of sidebar usage through Socket.IO
(questions, ratings, inserts, declines, drafts) → the report, the CSV exports, who may see them.

`InsightsHandler` and `scripted_day` are shared with the Chromium test (tests/browser/test_insights.py)."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from backend import protocol
from backend.insights import InsightsTokens, Viewer, parse_range
from orchestrator.turn import Delta, Done, TurnEvent, TurnRequest
from store.insights import day_of
from testkit.client import SidebarClient
from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.integration

CUSTOMER_TEXT = "CUSTOMER-WROTE-THIS confidential ticket body"
ANSWER_MARK = "ANSWER-BODY"
OTHER_TENANT_MARK = "ACME-ONLY"


class InsightsHandler:
    """A deterministic assistant for a scripted day: routes, declines, drafts and cost by keyword."""

    def handle(self, request: TurnRequest) -> Iterator[TurnEvent]:
        text = request.text.lower()
        meta: dict[str, Any] = {}
        routes = ["knowledge_base"]
        action = "route"
        if any(k in text for k in ("gift wrap", "gift-wrap", "engraving", "warranty")):
            meta["declined"] = "warranty" not in text
        if "draft" in text:
            meta["draft"] = True
            routes = ["knowledge_base", "macros"]
        elif "order" in text:
            routes = ["order_lookup"]
        elif text.startswith(("thanks", "hi ")):
            action, routes = "respond", []
        answer = f"{ANSWER_MARK} for: {request.text}"
        # Latencies shaped like the real assistant's (a direct reply is quick, a draft slow).
        time.sleep(
            {"respond": 0.02, "order_lookup": 0.08}.get(
                action if not routes else routes[-1], 0.15 * len(routes)
            )
        )
        yield Delta(answer)
        yield Done(
            text=answer,
            routing={"action": action, "router": "test", "routes": routes, "meta": meta},
            timings={"handler_s": 0.0},
            cost={"calls": 1, "input_tokens": 800, "output_tokens": 100, "cost_usd": 0.0015},
        )


# (tenant, user, ticket, [(question, {rating, reasons, insert})])
DAY: list[tuple[str, str, int, list[tuple[str, dict[str, Any]]]]] = [
    ("demo", "ann", 41001, [
        ("where is order BO-100693", {"rating": "up", "insert": True}),
        ("can we gift wrap a sofa", {}),
        ("draft a reply about the delay", {"insert": True}),
    ]),
    ("demo", "ann", 41002, [
        ("do you offer gift wrap for orders", {"rating": "down"}),
        ("thanks", {}),
    ]),
    ("demo", "bob", 41003, [
        ("what is the warranty on lamps", {"rating": "down", "reasons": ["wrong_sources"]}),
        ("is gift wrap available at checkout", {}),
        ("draft a reply with the return steps", {"rating": "up"}),
    ]),
    ("demo", "cara", 41004, [
        ("can we add engraving to a kettle", {}),
        ("warranty for a cracked lamp shade", {"rating": "down", "reasons": ["wrong_sources"]}),
    ]),
    ("acme", "eve", 900, [
        (f"{OTHER_TENANT_MARK} gift wrap question", {"rating": "down", "reasons": ["wrong_sources"]}),
    ]),
]  # fmt: skip


def scripted_day(url: str, mint) -> dict[str, int]:
    """Play the day through the real Socket.IO protocol; `mint(tenant, user)` gives a dev token."""
    for tenant, user, ticket, turns in DAY:
        c = SidebarClient()
        c.connect(url, mint(tenant, user))
        c.join({"id": ticket, "subject": "Parcel question", "description": CUSTOMER_TEXT})
        for n, (question, what) in enumerate(turns):
            mid = f"t{ticket}-{n}"
            c.ask(mid, question)
            if what.get("rating"):
                start = len(c.events)
                c.emit(
                    protocol.FEEDBACK,
                    {
                        "message_id": f"{mid}.reply",
                        "rating": what["rating"],
                        "reasons": what.get("reasons", []),
                    },
                )
                c.wait_for(
                    protocol.FEEDBACK_ACK, lambda d, m=mid: d["message_id"] == f"{m}.reply", start=start
                )
            if what.get("insert"):
                start = len(c.events)
                c.emit(protocol.INSERT, {"message_id": f"{mid}.reply"})
                c.wait_for(protocol.INSERT_ACK, lambda d, m=mid: d["message_id"] == f"{m}.reply", start=start)
        c.disconnect()
    demo = [t for d in DAY if d[0] == "demo" for t in d[3]]
    return {"questions": len(demo), "agents": 3, "tickets": 4}


def admin_token(tenant: str = "demo", user: str = "lead-1", role: str = "admin") -> str:
    return InsightsTokens(TEST_SECRET).mint(Viewer(tenant, user, "Team Lead", role))


@pytest.fixture
def server(live_app):
    srv = live_app(handler=InsightsHandler())
    return srv


@pytest.fixture
def day(server, tokens) -> dict[str, int]:
    return scripted_day(server.url, lambda tenant, user: tokens.mint(tenant, user, user.title()))


def get(server, path: str, token: str | None = None, **params: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{server.url}{path}", params=params, headers=headers, timeout=20)


TODAY = day_of(time.time())


def test_report_after_a_scripted_day(server, day) -> None:
    resp = get(server, "/insights/api/report", admin_token(), start=TODAY, end=TODAY)
    assert resp.status_code == 200, resp.text
    r = resp.json()
    t = r["totals"]
    assert (t["questions"], t["agents"], t["tickets"]) == (day["questions"], 3, 4)
    assert (t["thumbs_up"], t["thumbs_down"], t["inserted"]) == (2, 3, 2)
    assert (t["drafts"], t["drafts_inserted"]) == (2, 1)
    assert (t["declined"], t["wrong_sources"]) == (4, 2)
    assert t["cost_usd"] == pytest.approx(0.0015 * day["questions"])
    assert r["adoption"]["questions"] == [day["questions"]]
    ann = next(a for a in r["adoption"]["by_agent"] if a["user_id"] == "ann")
    assert (ann["questions"], ann["tickets"], ann["inserted"], ann["name"]) == (5, 2, 2, "Ann")
    mix = {m["route"]: m["questions"] for m in r["routing"]["mix"]}
    assert mix == {"knowledge_base": 5, "order_lookup": 2, "knowledge_base+macros": 2, "respond": 1}
    assert r["routing"]["latency"]["p95_s"] is not None
    # Gift-wrap questions, phrased three ways, are one topic, with its tickets and examples.
    topics = r["gaps"]["topics"]
    gift = next(g for g in topics if "gift" in g["topic"])
    assert gift["count"] == 3 and set(gift["tickets"]) == {"41001", "41002", "41003"}
    assert gift["suggestion"].startswith("Write an article about")
    warranty = next(g for g in topics if "warranty" in g["topic"])
    assert warranty["count"] == 2 and warranty["wrong_sources"] == 2
    body = resp.text
    # Another tenant's questions, the answers and the ticket text never appear.
    assert OTHER_TENANT_MARK not in body and ANSWER_MARK not in body and "CUSTOMER-WROTE" not in body


def test_another_tenant_sees_only_its_own(server, day) -> None:
    r = get(server, "/insights/api/report", admin_token("acme", "lead-9"), start=TODAY, end=TODAY).json()
    assert r["totals"]["questions"] == 1 and r["totals"]["agents"] == 1
    assert [g["examples"] for g in r["gaps"]["topics"]] == [[f"{OTHER_TENANT_MARK} gift wrap question"]]
    # The tenant comes from the token alone: asking for another one is refused, not honoured.
    resp = get(server, "/insights/api/report", admin_token("acme", "lead-9"), tenant="demo")
    assert resp.status_code == 400 and "sign-in" in resp.json()["error"]
    for kind in ("daily", "agents", "gaps"):
        text = get(
            server, "/insights/api/export.csv", admin_token("acme"), kind=kind, start=TODAY, end=TODAY
        ).text
        assert "ann" not in text and "gift wrap a sofa" not in text


def test_csv_exports_hold_only_ids_numbers_and_typed_questions(server, day) -> None:
    token = admin_token()
    daily = get(server, "/insights/api/export.csv", token, kind="daily", start=TODAY, end=TODAY)
    assert daily.status_code == 200 and daily.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in daily.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(daily.text)))
    assert len(rows) == 1 and rows[0]["questions"] == str(day["questions"]) and rows[0]["inserted"] == "2"
    agents = list(
        csv.DictReader(io.StringIO(get(server, "/insights/api/export.csv", token, kind="agents").text))
    )
    assert {a["user_id"] for a in agents} == {"ann", "bob", "cara"}
    gaps_text = get(server, "/insights/api/export.csv", token, kind="gaps", start=TODAY, end=TODAY).text
    gaps = list(csv.DictReader(io.StringIO(gaps_text)))
    assert len(gaps) == 6
    assert set(gaps[0]) == {"topic", "day", "ticket_id", "user_id", "reason", "question"}
    assert {g["reason"] for g in gaps} == {"declined", "wrong_sources"}
    everything = daily.text + gaps_text
    assert ANSWER_MARK not in everything and "CUSTOMER-WROTE" not in everything
    assert get(server, "/insights/api/export.csv", token, kind="tickets").status_code == 400


def test_the_api_refuses_without_an_admin_insights_token(server, tokens) -> None:
    assert get(server, "/insights/api/report").status_code == 401
    assert get(server, "/insights/api/report", "not-a-token").status_code == 401
    # A sidebar dev token or a session token is not an insights token.
    assert get(server, "/insights/api/report", tokens.mint("demo", "ann", role="admin")).status_code == 401
    # Minted for a non-admin (never done by the pages): refused all the same.
    assert get(server, "/insights/api/report", admin_token(role="agent")).status_code == 403
    other_key = InsightsTokens("another-deployments-secret").mint(Viewer("demo", "x", "", "admin"))
    assert get(server, "/insights/api/report", other_key).status_code == 401
    bad = get(server, "/insights/api/report", admin_token(), start="2026-02-30")
    assert bad.status_code == 400 and "calendar date" in bad.json()["error"]
    assert (
        get(server, "/insights/api/report", admin_token(), start="2020-01-01", end="2026-01-01").status_code
        == 400
    )


def test_dev_page_is_for_admin_dev_tokens_only(server, tokens) -> None:
    ok = requests.get(
        f"{server.url}/dev/insights", params={"token": tokens.mint("demo", "lead", role="admin")}
    )
    assert ok.status_code == 200 and 'id="insights-config"' in ok.text
    assert "frame-ancestors 'self'" in ok.headers["Content-Security-Policy"]
    agent = requests.get(
        f"{server.url}/dev/insights", params={"token": tokens.mint("demo", "ann", role="agent")}
    )
    assert agent.status_code == 403 and "admins" in agent.text and 'id="insights-config"' not in agent.text
    plain = requests.get(f"{server.url}/dev/insights", params={"token": tokens.mint("demo", "ann")})
    assert plain.status_code == 403
    assert requests.get(f"{server.url}/dev/insights", params={"token": "forged"}).status_code == 401


def test_insert_event_is_validated(server, tokens) -> None:
    c = SidebarClient()
    c.connect(server.url, tokens.mint("demo", "ann"))
    c.join({"id": 5, "subject": "x"})
    c.ask("q1", "where is order BO-1")
    for payload, code in (
        ({"message_id": "nope.reply"}, "unknown_message"),
        ({"message_id": "q1"}, "unknown_message"),  # the question, not an answer
        ({"message_id": "q1.reply", "text": "smuggled"}, "invalid_payload"),
        ({}, "invalid_payload"),
    ):
        start = len(c.events)
        c.emit(protocol.INSERT, payload)
        err = c.wait_for(protocol.ERROR, start=start)
        assert err["code"] == code and err["event"] == protocol.INSERT
    for _ in range(2):  # inserting the same answer twice counts twice
        start = len(c.events)
        c.emit(protocol.INSERT, {"message_id": "q1.reply"})
        assert c.wait_for(protocol.INSERT_ACK, start=start) == {"message_id": "q1.reply"}
    c.disconnect()
    record = server.services.archive.load(_sid("demo", "ann", "5"))
    assert record is not None
    reply = next(m for m in record.data["thread"] if m["id"] == "q1.reply")
    assert reply["meta"]["inserted"]["count"] == 2 and reply["meta"]["inserted"]["user_id"] == "ann"


def _sid(tenant: str, user: str, ticket: str) -> str:
    from backend.sessions import session_id_for
    from orchestrator.turn import Principal

    return session_id_for(Principal(tenant, user, ""), ticket)


def test_default_range_is_the_last_two_weeks() -> None:
    from datetime import date

    assert parse_range({}, today=date(2026, 3, 14)) == ("2026-03-01", "2026-03-14")


def test_zendesk_nav_bar_post_opens_the_page_for_admins_only(server, settings) -> None:
    """The nav_bar location's signed URL: the same ZAF JWT verification as the sidebar, then the
    role. The page's insights token is what the API takes; the tenant is the installation's."""
    import json
    import re

    from backend.dev_auth import DEV_INSTALLATION_ID, DEV_SUBDOMAIN, load_or_create_dev_key, sign_zaf_token

    key = load_or_create_dev_key(settings.data_dir)

    def post(role: str | None) -> requests.Response:
        user = {"id": "lead-1", "name": "Lee", **({"role": role} if role else {})}
        token = sign_zaf_token(key, subdomain=DEV_SUBDOMAIN, installation_id=DEV_INSTALLATION_ID, user_id="lead-1",
                               user_name="Lee", extra={"context": {"location": "nav_bar", "user": user}})  # fmt: skip
        return requests.post(f"{server.url}/zendesk/insights", data={"token": token}, timeout=10)

    page = post("admin")
    assert page.status_code == 200
    assert "frame-ancestors 'self' https://demo.zendesk.com" in page.headers["Content-Security-Policy"]
    config = json.loads(
        re.search(r'id="insights-config" type="application/json">(.*?)</script>', page.text)[1]
    )
    assert config["tenant"] == "demo" and config["ticketBase"] == "https://demo.zendesk.com/agent/tickets/"
    assert get(server, "/insights/api/report", config["token"]).status_code == 200
    for role in ("agent", None):
        refused = post(role)
        assert refused.status_code == 403 and "insights-config" not in refused.text
    bad = requests.post(f"{server.url}/zendesk/insights", data={"token": "x.y.z"}, timeout=10)
    assert bad.status_code == 401 and "insights-config" not in bad.text
