"""Durable storage: the session archive and the knowledge index (SQLite twin or Spanner)."""

from store.sessions import ArchiveError, SessionArchive, SessionRecord, SqliteSessionArchive

__all__ = ["ArchiveError", "SessionArchive", "SessionRecord", "SqliteSessionArchive"]
