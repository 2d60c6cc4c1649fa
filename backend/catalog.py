"""The agents a sidebar user may name in feedback ("which sources should it have used?").

Taken from the turn handler when it has agents (the orchestrator's Assistant), otherwise from
the agent registry (custom or test handlers), so the picker and the server-side check always
agree on the same names.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from backend import protocol

log = logging.getLogger(__name__)


class AgentCatalog:
    def __init__(self, handler: Any, agent_paths: str = "") -> None:
        self._handler = handler
        self._agent_paths = agent_paths

    @functools.cached_property
    def agents(self) -> list[dict[str, str]]:
        """[{name, title}] of the enabled agents, in routing order (computed once, on first use)."""
        manifests = getattr(self._handler, "manifests", None)
        if manifests is None:
            try:
                from agents.registry import AgentRegistry

                paths = [p for p in self._agent_paths.split(":") if p.strip()]
                manifests = AgentRegistry(paths, strict=False).manifests()
            except Exception:  # the picker is optional: never let it break a join
                log.exception("agent catalog unavailable; the feedback picker will be empty")
                manifests = []
        return [{"name": m.name, "title": m.title} for m in manifests if getattr(m, "enabled", True)]

    @property
    def names(self) -> set[str]:
        return {a["name"] for a in self.agents}

    def check(self, expected: list[str]) -> None:
        """Refuse names that are neither enabled agents nor the pseudo-labels."""
        unknown = [a for a in expected if a not in self.names and a not in protocol.PSEUDO_LABELS]
        if unknown:
            raise protocol.ProtocolError(
                "invalid_payload",
                f"expected_agents: unknown agent {unknown[0]!r}; expected one of "
                f"{sorted(self.names) + list(protocol.PSEUDO_LABELS)}",
            )
