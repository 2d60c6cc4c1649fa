"""Errors the session archive raises, in a module of their own so that store.sessions and the
insights queries written beside it (store.insights) can both raise them without importing each other."""


class ArchiveError(RuntimeError):
    """The archive could not be read or written (backend down, corrupt row)."""
