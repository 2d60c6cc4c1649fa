"""Process-wide Spanner clients: one per (project, instance), databases handed out by name."""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

_ID_RE = re.compile(r"^[a-z][a-z0-9\-_]{1,63}$")


@dataclass(frozen=True)
class SpannerConfig:
    """Where the Spanner backend lives. Typed and validated; the backend builds it from Settings.

    `vector_search="approx"` uses the VECTOR INDEX with APPROX_COSINE_DISTANCE (production);
    `"exact"` uses COSINE_DISTANCE, for the emulator (which has no vector indexes) and tiny tenants.
    `emulator_host` (host:port) makes the client talk to the emulator without credentials.
    """

    project: str
    instance: str
    database: str = "sidebar"
    emulator_host: str | None = None
    vector_search: Literal["approx", "exact"] = "approx"
    # Used only when the vector index's num_leaves cannot be read; otherwise derived per tenant.
    num_leaves_to_search: int = 10
    dimensions: int = 384
    # How long the vector index state and tenant sizes are reused before being looked up again.
    index_info_ttl_s: float = 300.0

    def __post_init__(self) -> None:
        if not self.project:
            raise ValueError("SpannerConfig.project is required")
        for name in ("instance", "database"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _ID_RE.match(value):
                raise ValueError(f"invalid Spanner {name} id {value!r}")
        if self.vector_search not in ("approx", "exact"):
            raise ValueError("vector_search must be 'approx' or 'exact'")
        if not 1 <= self.num_leaves_to_search <= 10_000:
            raise ValueError("num_leaves_to_search must be within 1..10000")
        if not 1 <= self.dimensions <= 8192:
            raise ValueError("dimensions must be within 1..8192")

    @classmethod
    def from_env(cls, **overrides: Any) -> SpannerConfig:
        """Config for the emulator-backed tests: SPANNER_EMULATOR_HOST and optional ids."""
        values: dict[str, Any] = {
            "project": os.environ.get("SPANNER_PROJECT", "test-project"),
            "instance": os.environ.get("SPANNER_INSTANCE", "test-instance"),
            "database": os.environ.get("SPANNER_DATABASE", "sidebar"),
            "emulator_host": os.environ.get("SPANNER_EMULATOR_HOST"),
            "vector_search": "exact" if os.environ.get("SPANNER_EMULATOR_HOST") else "approx",
        }
        values.update(overrides)
        return cls(**values)


class SpannerConnectionHandler:
    """Hands out `Database` objects; the underlying client lives for the whole process.

    `SpannerConnectionHandler("cache").get_database()` returns the default database of instance
    "cache". Clients are created once per project (and emulator endpoint) at class level and live
    for the process, so every handler — whichever instance it names — reuses one client and its
    gRPC channels; `Database` objects (each with its session pool) are cached by
    (project, instance, database). All of it is guarded by one lock.
    """

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _clients: ClassVar[dict[tuple[str | None, str | None], Any]] = {}
    _databases: ClassVar[dict[tuple[str | None, str, str], Any]] = {}

    def __init__(
        self,
        instance_id: str,
        *,
        project: str | None = None,
        default_database: str = "sidebar",
        emulator_host: str | None = None,
    ) -> None:
        if not instance_id:
            raise ValueError("instance_id is required")
        self.instance_id = instance_id
        self.project = project
        self.default_database = default_database
        self.emulator_host = emulator_host

    @classmethod
    def for_config(cls, config: SpannerConfig) -> SpannerConnectionHandler:
        return cls(
            config.instance,
            project=config.project,
            default_database=config.database,
            emulator_host=config.emulator_host,
        )

    def client(self) -> Any:
        key = (self.project, self.emulator_host)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._make_client()
                self._clients[key] = client
            return client

    def _make_client(self) -> Any:
        from google.cloud import spanner

        if self.emulator_host:
            from google.api_core.client_options import ClientOptions
            from google.auth.credentials import AnonymousCredentials

            return spanner.Client(
                project=self.project,
                credentials=AnonymousCredentials(),
                client_options=ClientOptions(api_endpoint=self.emulator_host),
                disable_builtin_metrics=True,
            )
        return spanner.Client(project=self.project)

    def instance(self) -> Any:
        return self.client().instance(self.instance_id)

    def get_database(self, database_id: str | None = None) -> Any:
        name = database_id or self.default_database
        key = (self.project, self.instance_id, name)
        client = self.client()
        with self._lock:
            db = self._databases.get(key)
            if db is None:
                db = client.instance(self.instance_id).database(name)
                self._databases[key] = db
            return db

    @classmethod
    def reset(cls) -> None:
        """Forget cached clients (tests; a forked worker must not reuse its parent's channels)."""
        with cls._lock:
            cls._databases.clear()
            cls._clients.clear()
