"""Browser tests: real gunicorn servers (AUTH_MODE=dev) and Debian's Chromium driven by Playwright.

Never downloads a browser: Playwright launches /usr/bin/chromium (.ci/run installs it)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from backend.launcher import Instance, wait_ready
from testkit.servers import free_port
from tests.conftest import DEMO_CACHE, TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# Test artefacts go to a scratch folder; UPDATE_SCREENSHOTS=1 refreshes the ones the README shows.
SCREENSHOTS = ROOT / (
    "docs/screenshots" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else "tests/browser/artifacts"
)
SCREENSHOTS.mkdir(parents=True, exist_ok=True)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does)"
    else:
        try:
            import playwright  # noqa: F401
        except ImportError:
            reason = "the playwright package is missing (pip install -e '.[test]')"
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


def server_env(data_dir: Path, redis_url: str, port: int, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AUTH_MODE": "dev",
            "SECRET_KEY": TEST_SECRET,
            "TURN_HANDLER": "tests.browser.handlers:BrowserHandler",
            "REDIS_URL": redis_url,
            "DATA_DIR": str(data_dir),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "THREADS": "32",
            "LOG_LEVEL": "WARNING",
            "INSTANCE_HEARTBEAT_SECONDS": "0.5",
            # Slow enough that a browser sees the answer stream in, word by word.
            "TEST_TURN_DELAY": "0.08",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def real_assistant(data: Path, redis_url: str, *, ready_timeout: float = 180) -> Iterator[Instance]:
    """A server with the REAL offline assistant (demo tenant, built-in agents) on a copy of the
    cached demo index, copied consistently (WAL included) through SQLite's backup API."""
    # The run's Redis starts empty for it: sessions an earlier module left there would otherwise be
    # archived (and counted by insights) by this server's write-behind.
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    client.close()
    src = sqlite3.connect(DEMO_CACHE / "knowledge.sqlite3")
    dst = sqlite3.connect(data / "knowledge.sqlite3")
    src.backup(dst)
    src.close()
    dst.close()
    port = free_port()
    inst = Instance(port, server_env(data, redis_url, port, TURN_HANDLER="orchestrator", DEMO_TENANT="demo"))
    inst.start()
    try:
        wait_ready(inst.url, alive=inst.alive, timeout=ready_timeout)
        yield inst
    finally:
        inst.stop()


@pytest.fixture(scope="module")
def server(redis_server, tmp_path_factory) -> Iterator[Instance]:
    """One dev-mode server for a module's tests (each test uses its own ticket)."""
    port = free_port()
    inst = Instance(port, server_env(tmp_path_factory.mktemp("data"), redis_server.url, port))
    inst.start()
    try:
        wait_ready(inst.url, alive=inst.alive)
        yield inst
    finally:
        inst.stop()


@pytest.fixture(scope="module")
def browser():
    # Module scope: Playwright's sync API keeps an asyncio loop running in the main thread while
    # open; closing it after the browser modules lets later tests use asyncio.run().
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    # Light scheme, a laptop-sized parent page; the sidebar iframe itself is 340 px wide.
    context = browser.new_context(viewport={"width": 1100, "height": 820}, color_scheme="light")
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    problems: list[str] = []
    # Uncaught exceptions and CSP violations fail the test; refused connections during a
    # restart and 401s of refused sign-ins are expected noise.
    pg.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
    pg.on(
        "console",
        lambda msg: (
            problems.append(f"console: {msg.text}")
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    yield pg
    context.close()
    assert problems == [], problems
