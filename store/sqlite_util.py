"""Opening the SQLite twin's files the same way everywhere."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def connect_wal(path: str | Path, *, timeout: float = 30.0, attempts: int = 50) -> sqlite3.Connection:
    """A thread-shareable autocommit connection in WAL mode (several processes share the file).

    Switching a new file to WAL needs a moment of exclusive access, and SQLite answers BUSY to it
    without waiting on the busy handler when another process opens the same file at that
    instant (two server instances starting together): retry briefly instead of failing.
    """
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=timeout, isolation_level=None)
    for attempt in range(attempts):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                conn.close()
                raise
            time.sleep(0.1)
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn
