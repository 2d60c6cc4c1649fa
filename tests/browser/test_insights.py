"""The insights page in Chromium: charts for the demo tenant after a scripted day of usage, the
date filter and CSV export, Insert clicks in the real sidebar counted, a non-admin refused,
another tenant's data never shown, agent-typed markup inert.

The day is played through the real Socket.IO protocol against a gunicorn server (dev mode) whose
turn handler routes, declines and drafts by keyword (tests/integration/test_insights_api.py)."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from backend.auth import DevTokenAuthenticator
from backend.insights import InsightsTokens, Viewer
from backend.launcher import Instance, wait_ready
from store.insights import day_of
from testkit.client import SidebarClient
from testkit.servers import free_port
from tests.browser.conftest import SCREENSHOTS, server_env
from tests.conftest import TEST_SECRET
from tests.integration.test_insights_api import OTHER_TENANT_MARK, scripted_day

expect = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is missing (pip install -e '.[test]')"
).expect

DEV = DevTokenAuthenticator(TEST_SECRET, 3600)
HOSTILE = "<img src=x onerror=\"window.__xss='gap'\"> can we gift wrap this"


@pytest.fixture(scope="module")
def insights_server(redis_server, tmp_path_factory) -> Iterator[Instance]:
    port = free_port()
    env = server_env(
        tmp_path_factory.mktemp("insights"),
        redis_server.url,
        port,
        TURN_HANDLER="tests.integration.test_insights_api:InsightsHandler",
        TEST_TURN_DELAY="0",
    )
    inst = Instance(port, env)
    inst.start()
    try:
        wait_ready(inst.url, alive=inst.alive)
        scripted_day(inst.url, lambda tenant, user: DEV.mint(tenant, user, user.title()))
        # An agent may type markup; the page must show it as text.
        c = SidebarClient()
        c.connect(inst.url, DEV.mint("demo", "dan", "Dan"))
        c.join({"id": 41009, "subject": "Gift"})
        c.ask("x1", HOSTILE)
        c.disconnect()
        yield inst
    finally:
        inst.stop()


def report(server, tenant: str = "demo") -> dict:
    token = InsightsTokens(TEST_SECRET).mint(Viewer(tenant, "lead", "Lead", "admin"))
    resp = requests.get(
        f"{server.url}/insights/api/report", headers={"Authorization": f"Bearer {token}"}, timeout=20
    )
    resp.raise_for_status()
    return resp.json()


def open_insights(page, server, tenant: str = "demo"):
    page.goto(f"{server.url}/dev/insights?token={DEV.mint(tenant, 'lead-1', 'Team Lead', role='admin')}")
    # The default range: the last 14 days, ending today.
    expect(page.locator("body")).to_have_attribute(
        "data-loaded", re.compile(f"{day_of(time.time())}$"), timeout=20_000
    )


def test_charts_render_for_the_demo_tenant_after_a_scripted_day(insights_server, page):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(
        f"{insights_server.url}/dev/insights?token={DEV.mint('demo', 'lead-1', 'Team Lead', role='admin')}"
    )
    expect(page.locator("#report")).to_be_visible(timeout=20_000)
    for chart in ("adoption", "helpfulness", "gaps", "routing", "cost"):
        expect(page.locator(f"[data-chart={chart}] svg rect").first).to_be_visible()
    # Adoption: one stacked bar segment per agent who asked today.
    today = day_of(time.time())
    for agent in ("Ann", "Bob", "Cara", "Dan"):
        expect(
            page.locator(f'[data-chart=adoption] rect[data-series="{agent}"][data-day="{today}"]')
        ).to_have_count(1)
    expect(page.locator("#agents-table tbody tr")).to_have_count(4)
    expect(page.locator("#kpis")).to_contain_text("11")  # questions: the day's 10 + the hostile one
    # Knowledge gaps: the gift-wrap questions are one topic with its tickets and an article to write.
    gift = page.locator('.in-topic[data-topic="gift wrap"]')
    expect(gift).to_contain_text("Write an article about “gift wrap”")
    expect(gift.locator(".in-tickets")).to_contain_text("#41001")
    expect(page.locator("[data-chart=routing] rect[data-label='knowledge_base']")).to_have_count(1)
    # Markup an agent typed is shown as text, never run.
    expect(gift.locator(".in-examples")).to_contain_text("<img src=x")
    assert page.evaluate("() => window.__xss") is None
    assert page.locator(".in-examples img").count() == 0
    body = page.locator("body").inner_text()
    assert OTHER_TENANT_MARK not in body and "ANSWER-BODY" not in body and "CUSTOMER-WROTE" not in body
    page.screenshot(path=str(SCREENSHOTS / "insights.png"), full_page=True)


def test_date_filter_and_csv_export(insights_server, page):
    open_insights(page, insights_server)
    page.locator("#start").fill("2020-01-01")
    page.locator("#end").fill("2020-01-07")
    page.locator("#range button[type=submit]").click()
    expect(page.locator("#chart-adoption")).to_contain_text("No questions in this range.")
    expect(page.locator("body")).to_have_attribute("data-loaded", "2020-01-01..2020-01-07")
    today = day_of(time.time())
    page.locator("#start").fill(today)
    page.locator("#end").fill(today)
    page.locator("#range button[type=submit]").click()
    expect(page.locator("[data-chart=adoption] svg")).to_be_visible()
    with page.expect_download() as info:
        page.locator("[data-export=gaps]").click()
    download = info.value
    assert download.suggested_filename == f"insights-gaps-{today}-{today}.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert {"topic", "ticket_id", "question", "reason"} <= set(rows[0]) and len(rows) == 7
    assert not any(OTHER_TENANT_MARK in r["question"] for r in rows)


def test_insert_in_the_real_sidebar_is_counted(insights_server, page):
    before = report(insights_server)["totals"]["inserted"]
    page.goto(f"{insights_server.url}/dev/sidebar?user=erin")
    frame = page.frame_locator("#app-frame")
    expect(frame.locator("#status")).to_be_hidden(timeout=20_000)
    frame.locator("#question").fill("where is order BO-100693")
    frame.locator("#question").press("Enter")
    reply = frame.locator("li.sa-msg--assistant").last
    expect(reply).to_have_attribute("data-status", "complete")
    reply.locator('[data-action="insert"]').click()
    expect(page.locator("#invocations [data-action='ticket.comment.appendMarkdown']")).to_have_count(1)
    deadline = time.time() + 10
    while report(insights_server)["totals"]["inserted"] != before + 1 and time.time() < deadline:
        time.sleep(0.2)
    assert report(insights_server)["totals"]["inserted"] == before + 1
    # Copy is not an insert.
    reply.locator('[data-action="copy"]').click()
    time.sleep(0.5)
    assert report(insights_server)["totals"]["inserted"] == before + 1


def test_a_non_admin_is_refused(insights_server, page):
    page.goto(f"{insights_server.url}/dev/insights?token={DEV.mint('demo', 'ann', 'Ann', role='agent')}")
    expect(page.locator("#auth-error")).to_contain_text("Insights are for Zendesk admins")
    assert page.locator("#report").count() == 0 and page.locator("#insights-config").count() == 0
    page.goto(f"{insights_server.url}/dev/insights?token={DEV.mint('demo', 'ann', 'Ann')}")
    expect(page.locator("#auth-error")).to_be_visible()


def test_another_tenant_sees_only_its_own_data(insights_server, page):
    open_insights(page, insights_server, tenant="acme")
    expect(page.locator("#agents-table tbody tr")).to_have_count(1)
    expect(page.locator("#agents-table tbody")).to_contain_text("Eve")
    expect(page.locator("#topics")).to_contain_text(OTHER_TENANT_MARK)
    body = page.locator("body").inner_text()
    for demo_only in ("Ann", "Bob", "gift wrap a sofa", "41001", "warranty"):
        assert demo_only not in body, demo_only
