"""The insights page after a scripted day with the REAL offline assistant (demo tenant, built-in
agents, semantic router, extractive synthesis): two agents work demo tickets through the sidebar
protocol — policy and order questions, questions the sources cannot answer, a draft, ratings,
inserts — and the page charts what the archive recorded."""

from __future__ import annotations

import pytest
import requests

from backend.auth import DevTokenAuthenticator
from backend.insights import InsightsTokens, Viewer
from testkit.client import SidebarClient
from tests.browser.conftest import real_assistant
from tests.conftest import TEST_SECRET

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing").expect

DEV = DevTokenAuthenticator(TEST_SECRET, 3600)
# (agent, ticket, question, rating, insert); the unanswerable ones are the answer benchmark's
# (bench/answers/data/unanswerable.yaml): the demo tenant's sources say nothing about them.
DAY = [
    ("dana", 41308, "what is the status of this order?", "up", True),
    ("dana", 41308, "draft a reply to the customer about the missing item", None, True),
    ("dana", 41308, "what time does the venlo showroom open on saturdays?", "down", False),
    ("omar", 41308, "how many days does the customer have to return an item?", "up", False),
    ("omar", 41308, "do we do a student discount?", None, False),
    ("omar", 41308, "is there a student discount for uni students?", "down", False),
    ("omar", 41308, "is the warehouse hiring? her son wants a summer job", None, False),
]


@pytest.fixture(scope="module")
def real_server(demo_index, redis_server, tmp_path_factory):
    with real_assistant(
        tmp_path_factory.mktemp("insights-real"), redis_server.url, ready_timeout=180
    ) as inst:
        yield inst


def test_insights_after_a_day_with_the_real_assistant(real_server, page):
    clients: dict[str, SidebarClient] = {}
    for n, (agent, ticket, question, rating, insert) in enumerate(DAY):
        if agent not in clients:
            clients[agent] = SidebarClient()
            clients[agent].connect(real_server.url, DEV.mint("demo", agent, agent.title()))
            clients[agent].join({"id": ticket, "subject": "Item missing from my order"})
        c = clients[agent]
        done = c.ask(f"q{n}", question, timeout=120)
        assert done["message"]["status"] == "complete"
        if rating:
            c.emit("chat:feedback", {"message_id": f"q{n}.reply", "rating": rating})
            c.wait_for("chat:feedback:ack", lambda d, m=n: d["message_id"] == f"q{m}.reply")
        if insert:
            c.emit("chat:insert", {"message_id": f"q{n}.reply"})
            c.wait_for("chat:insert:ack", lambda d, m=n: d["message_id"] == f"q{m}.reply")
    for c in clients.values():
        c.disconnect()

    token = InsightsTokens(TEST_SECRET).mint(Viewer("demo", "lead", "Lead", "admin"))
    report = requests.get(
        f"{real_server.url}/insights/api/report", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).json()
    t = report["totals"]
    # One ticket, two agents: tickets touched counts it once.
    assert (t["questions"], t["agents"], t["tickets"], t["inserted"]) == (7, 2, 1, 2)
    assert (t["thumbs_up"], t["thumbs_down"], t["drafts"], t["drafts_inserted"]) == (2, 2, 1, 1)
    # The real router sent the policy question to the Help Center and the order one to the store.
    routes = {m["route"] for m in report["routing"]["mix"]}
    assert any("knowledge_base" in r for r in routes), routes
    # Unanswerable questions were declined and became knowledge-gap topics.
    assert t["declined"] >= 2 and report["gaps"]["topics"], report["gaps"]

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{real_server.url}/dev/insights?token={DEV.mint('demo', 'lead', 'Team Lead', role='admin')}")
    expect(page.locator("#report")).to_be_visible(timeout=30_000)
    for chart in ("adoption", "helpfulness", "gaps", "routing"):
        expect(page.locator(f"[data-chart={chart}] svg rect").first).to_be_visible()
    expect(page.locator("#agents-table tbody tr")).to_have_count(2)
    expect(page.locator(".in-topic")).to_have_count(len(report["gaps"]["topics"]))
    first = report["gaps"]["topics"][0]
    expect(page.locator(".in-topic").first).to_contain_text(first["suggestion"])
    expect(page.locator(".in-topic").first.locator(".in-tickets")).to_contain_text("#41308")
