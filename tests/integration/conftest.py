"""Fixtures the store suites share: each runs on the SQLite twin and, when SPANNER_EMULATOR_HOST is
set, on Spanner (the emulator), so one behavioural test covers both backends."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.factory import open_session_archive
from store.sessions import SessionArchive
from store.spanner import SpannerConfig

EMULATOR = os.environ.get("SPANNER_EMULATOR_HOST")
BACKENDS = [
    "sqlite",
    pytest.param(
        "spanner",
        marks=pytest.mark.skipif(
            not EMULATOR, reason="SPANNER_EMULATOR_HOST is not set: no Spanner emulator to test against"
        ),
    ),
]


@pytest.fixture(scope="module")
def spanner_config() -> Iterator[SpannerConfig | None]:
    """A fresh emulator database per test module (None without the emulator)."""
    if not EMULATOR:
        yield None
        return
    from store.spanner.provision import drop_database, ensure_database

    config = SpannerConfig.from_env(database=f"t{uuid.uuid4().hex[:12]}")
    ensure_database(config)
    yield config
    drop_database(config)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def archive(backend: str, tmp_path: Path, spanner_config) -> Iterator[SessionArchive]:
    arc = open_session_archive(backend, sqlite_path=tmp_path / "a.sqlite3", spanner=spanner_config)
    yield arc
    arc.close()
