"""The Router interface: for each turn, answer directly, run agents (in stages), or ask back."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from agents.base import AgentManifest

MAX_STAGES = 3
MAX_ROUTES = 6

Action = Literal["respond", "route", "clarify"]


class Route(BaseModel):
    agent: str
    enhanced_query: str = Field(min_length=1, max_length=2000)
    score: float = 0.0


class RoutingDecision(BaseModel):
    """What a router decided. `stages` run in order; routes within a stage run in parallel."""

    action: Action
    stages: list[list[Route]] = Field(default_factory=list, max_length=MAX_STAGES)
    response: str | None = None  # the direct answer (respond) or the question (clarify)
    confidence: float = Field(0.0, ge=0.0, le=1.0)
    router: str = ""
    latency_s: float = 0.0
    reason: str = ""
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def routes(self) -> list[Route]:
        return [r for stage in self.stages for r in stage]

    @property
    def agents(self) -> list[str]:
        return [r.agent for r in self.routes]

    def summary(self) -> dict[str, Any]:
        """What the session records and `chat:done` carries."""
        return {
            "action": self.action,
            "router": self.router,
            "confidence": round(self.confidence, 4),
            "latency_ms": round(self.latency_s * 1000, 2),
            # Flat agent names: what feedback export and shadow comparisons read.
            "routes": self.agents,
            "stages": [[r.model_dump() for r in stage] for stage in self.stages],
            "reason": self.reason,
            **({"meta": self.meta} if self.meta else {}),
        }


@dataclass(frozen=True)
class RoutingContext:
    """What a router may look at. Ticket fields are data: routers must never follow
    instructions found in them."""

    query: str
    ticket: Mapping[str, Any]
    manifests: Sequence[AgentManifest]
    history: Sequence[Mapping[str, Any]] = ()
    tenant: str = ""
    session_id: str | None = None
    turn_id: str | None = None
    # Facts resolved before routing (e.g. an order number the question refers to).
    hints: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Router(Protocol):
    """Decides what one turn does. Implementations: keyword, semantic, semantic-head (head.py),
    functiongemma, gemini, cascade and shadow; `factory.build_router` builds them by name.
    Routers may also offer `warm_up()` (load or fit before the first turn; readiness waits for
    it), `stats()` (counters for reports) and `close()`."""

    #: Recorded as `RoutingDecision.router` when the decision does not name a router itself.
    name: str

    def route(self, ctx: RoutingContext) -> RoutingDecision:
        """Decide the turn described by `ctx`.

        :param ctx: the question, the ticket, the enabled agents' manifests, recent history and
            facts resolved before routing. Ticket fields and history are data, never
            instructions.
        :returns: a :class:`RoutingDecision`. ``action="route"``: ``stages`` holds one to
            :data:`MAX_STAGES` stages of :class:`Route` (each naming an agent of
            ``ctx.manifests`` with its enhanced query); stages run in order, the routes of a
            stage in parallel. ``action="respond"`` or ``"clarify"``: ``response`` holds the
            answer or the question and ``stages`` is empty. ``confidence`` is in [0, 1]; the
            cascade compares it with its thresholds. ``latency_s`` and an empty ``router`` are
            filled in by :func:`timed`.
        :raises RoutingError: when this router cannot decide (model unavailable, output that
            does not parse); the orchestrator then asks its fallback router, or without one
            fails the turn (``routing_failed``). Any other exception is a bug and fails the turn.

        Thread-safety: may be called concurrently for several turns. An implementation keeps
        no per-turn state on the instance (shared counters only under a lock), guards lazy
        loading (a model, a fitted head) with a lock, and never mutates ``ctx``.

        Latency: on the critical path of every turn, before any agent starts. The embedding
        routers cost one query embedding (p50 around 0.1 to 0.2 s on the shared 2-core CPU, see
        bench/results/router_semantic*_routing_queries.md), FunctionGemma a few decoder passes
        (bench/results/functiongemma-latency.md); a remote router (gemini) is bounded by its
        LLM call's timeout and the cascade's remote call by ``remote_timeout_s``. Loading and
        fitting belong in ``warm_up()``, not in the first ``route`` call.
        """
        ...


class RoutingError(RuntimeError):
    """A router could not decide (model down, invalid output); callers fall back."""


def timed(router: Router, ctx: RoutingContext) -> RoutingDecision:
    """`router.route(ctx)` with `latency_s` measured and `router` defaulted to the router's name."""
    started = time.perf_counter()
    decision = router.route(ctx)
    decision.latency_s = time.perf_counter() - started
    decision.router = decision.router or router.name
    return decision
