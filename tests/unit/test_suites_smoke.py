"""Keeps the load and chaos suites' machinery working (bench/load_suite.py, bench/chaos_suite.py,
bench/suite_common.py): a tiny real run of each piece with small numbers. No timing assertions:
the numbers themselves are the suites' business. The suites' whole toy runs, through their report
writers, are in test_bench_smoke.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis

from backend.app import create_app
from backend.redis_embedded import EmbeddedRedis
from backend.sessions import KEY_PREFIX
from backend.settings import Settings
from bench import chaos_suite
from bench.suite_common import SECRET, Cluster, audit, sidebars
from store.sessions import SqliteSessionArchive
from testkit.handlers import EchoHandler
from testkit.servers import LiveServer, stop_redis

# Starts Redis and real servers (the suites' clusters).
pytestmark = pytest.mark.integration


@pytest.fixture
def app_settings(tmp_path: Path):
    embedded = EmbeddedRedis(tmp_path, persist=False)
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        redis_url=embedded.url,
        secret_key=SECRET,
        log_level="WARNING",
        rate_limit_per_minute=0,
    )
    yield settings
    stop_redis(embedded)


def test_audit_counts_an_acknowledged_message_that_vanished(app_settings):
    app = create_app(app_settings, handler=EchoHandler(delay=0))

    async def scenario() -> tuple[dict, dict]:
        with LiveServer(app) as srv:
            c = sidebars(1, "smoke")[0]
            await c.connect(srv.url)
            await c.join()
            turn = await c.ask("m1", "hello", timeout=20)
            assert turn.done is not None and turn.reply_text == "echo: hello"
            await c.close()
            await asyncio.sleep(0.3)
            clean = audit(
                [c], redis_url=app_settings.redis_url, archive_path=app_settings.sqlite_path, wait_s=5
            )
            # The message disappears from both stores: the audit must say so.
            client = redis.Redis.from_url(app_settings.redis_url)
            client.delete(f"{KEY_PREFIX}:session:{c.session_id}")
            SqliteSessionArchive(app_settings.sqlite_path).delete(c.session_id)
            gone = audit(
                [c], redis_url=app_settings.redis_url, archive_path=app_settings.sqlite_path, wait_s=0
            )
            return clean, gone

    clean, gone = asyncio.run(scenario())
    assert clean["acknowledged"] == 1 and clean["lost"] == 0
    assert gone["lost"] == 2 and gone["missing"] == {"archive": 1, "redis": 1}


def test_redis_restart_comes_back_empty_on_the_same_url(tmp_path: Path):
    embedded = EmbeddedRedis(tmp_path, persist=False)
    cl = Cluster(tmp_path, [], embedded, Settings(_env_file=None, data_dir=tmp_path))
    url = cl.redis_url
    redis.Redis.from_url(url).set("k", "v")
    cl.restart_redis()
    try:
        assert cl.redis_url == url
        assert redis.Redis.from_url(url).dbsize() == 0
    finally:
        stop_redis(cl.redis)


def test_chaos_report_renders_every_scenario():
    lost = {"acknowledged": 3, "unsettled": 0, "non_retryable_errors": 0, "missing": {}, "lost": 0}
    ok = {
        "what": "x",
        "user_saw": {"a": 1},
        "lost": lost,
        "recovery": {"r": 1.0},
        "findings": ["f"],
        "passed": True,
    }
    data = {
        "parameters": {"sessions": 2, "turn_delay_s": 0.1},
        "scenarios": {name: dict(ok) for name in chaos_suite.SCENARIOS}
        | {"agent": {"passed": False, "error": "E"}},
    }
    md = chaos_suite.markdown(data)
    for title in chaos_suite.TITLES.values():
        assert title in md
    assert "**Finding:** f" in md and "could not run: `E`" in md
