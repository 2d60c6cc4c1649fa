"""`CascadeRouter`: a fast local router first, the remote controller only when it is unsure.

    local.route(ctx) ── confidence ≥ local_threshold and not a clarify ──▶ local decision  (path "local")
        │ otherwise
        ▼
    remote.route(ctx) ── confidence ≥ remote_threshold ──────────────────▶ remote decision (path "remote")
        │ unsure                          │ RoutingError / timeout / any exception
        ▼                                 ▼
    clarifying question naming the       the local decision after all       (path "local_fallback")
    top candidates of both (path "clarify")

A local *clarify* is always treated as unsure: the remote may well know what the local router
could not tell apart. Without a remote (`remote=None`) an unsure local decision becomes the
clarifying question — no second opinion, so asking is the honest answer. Local errors are not
caught: they reach the orchestrator's `fallback_router` like any router's.

`meta["cascade"]` records the path, both confidences, each router's latency and any remote
error. Thread-safe: no per-turn state is kept on the instance; remote calls run on a bounded
pool so a hung remote costs at most `remote_timeout_s` per turn.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.base import AgentManifest
from orchestrator.routing.base import Router, RoutingContext, RoutingDecision

CascadePath = Literal["local", "remote", "clarify", "local_fallback"]
PATHS: tuple[CascadePath, ...] = ("local", "remote", "clarify", "local_fallback")


class CascadeConfig(BaseModel):
    """Cascade thresholds (typed, validated, serialisable). `source` documents where the
    thresholds came from (an `eval-router` report), so a reviewer can re-derive them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    local_threshold: float = Field(0.5, ge=0.0, le=1.0)
    remote_threshold: float = Field(0.5, ge=0.0, le=1.0)
    remote_timeout_s: float | None = Field(10.0, gt=0, le=120)  # None: the remote's own timeouts only
    max_remote_in_flight: int = Field(16, ge=1, le=512)
    clarify_candidates: int = Field(3, ge=1, le=6)  # agents named in the clarifying question
    source: str = ""  # e.g. "bench/results/router_semantic_routing_queries.json, target 95%"


def _candidates(decision: RoutingDecision | None) -> list[str]:
    """A decision's agents, best first: its routes, then any per-agent scores it reported."""
    if decision is None:
        return []
    names = list(decision.agents)
    for key in ("scores", "probabilities"):  # semantic/keyword, semantic-head
        scores = decision.meta.get(key)
        if isinstance(scores, Mapping):
            names += [k for k, _ in sorted(scores.items(), key=lambda kv: -float(kv[1]))]
    calls = decision.meta.get("calls")
    if isinstance(calls, list):
        names += [c.get("name", "") for c in calls if isinstance(c, Mapping)]
    return names


def clarify_text(manifests: Mapping[str, AgentManifest], names: list[str], limit: int) -> str:
    titles = [manifests[n].title.lower() for n in dict.fromkeys(names) if n in manifests][:limit]
    if not titles:
        titles = [m.title.lower() for m in manifests.values()][:limit]
    options = titles[0] if len(titles) == 1 else f"{', '.join(titles[:-1])} or {titles[-1]}"
    return (
        f"I'm not sure what to look up yet — is this about {options}? "
        "A little more detail (an order number, the product, or the policy in question) will help."
    )


class CascadeRouter:
    name = "cascade"

    def __init__(self, local: Router, remote: Router | None, config: CascadeConfig | None = None) -> None:
        self.local = local
        self.remote = remote
        self.config = config or CascadeConfig()
        self._pool = (
            ThreadPoolExecutor(self.config.max_remote_in_flight, thread_name_prefix="cascade-remote")
            if remote is not None and self.config.remote_timeout_s is not None
            else None
        )
        self._lock = threading.Lock()
        self._paths = dict.fromkeys(PATHS, 0)

    def warm_up(self) -> None:
        """Load what the routers load lazily (the FunctionGemma model) before the first turn."""
        for r in (self.local, self.remote):
            warm = getattr(r, "warm_up", None)
            if callable(warm):
                warm()

    def stats(self) -> dict[str, int]:
        """Turns per path since start (for logs and benchmarks)."""
        with self._lock:
            return dict(self._paths)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _ask_remote(self, ctx: RoutingContext) -> RoutingDecision:
        assert self.remote is not None
        if self._pool is None:
            return self.remote.route(ctx)
        future = self._pool.submit(self.remote.route, ctx)
        try:
            return future.result(timeout=self.config.remote_timeout_s)
        except FutureTimeout:
            future.cancel()  # only helps when still queued; a running call finishes unseen
            raise TimeoutError(f"no answer within {self.config.remote_timeout_s} s") from None

    def route(self, ctx: RoutingContext) -> RoutingDecision:
        cfg = self.config
        t0 = time.perf_counter()
        local = self.local.route(ctx)
        local_s = time.perf_counter() - t0
        info: dict[str, Any] = {
            "local": {
                "router": local.router or self.local.name,
                "action": local.action,
                "confidence": round(local.confidence, 4),
                "latency_ms": round(local_s * 1000, 2),
                "agents": local.agents,
            },
            "thresholds": {"local": cfg.local_threshold, "remote": cfg.remote_threshold},
        }
        if local.action != "clarify" and local.confidence >= cfg.local_threshold:
            return self._finish(local, "local", info)

        remote: RoutingDecision | None = None
        if self.remote is not None:
            t1 = time.perf_counter()
            try:
                remote = self._ask_remote(ctx)
            except Exception as exc:  # any remote failure means: decide locally
                info["remote"] = {
                    "router": self.remote.name,
                    "error": f"{type(exc).__name__}: {str(exc)[:300]}",
                    "latency_ms": round((time.perf_counter() - t1) * 1000, 2),
                }
                return self._finish(local, "local_fallback", info)
            info["remote"] = {
                "router": remote.router or self.remote.name,
                "action": remote.action,
                "confidence": round(remote.confidence, 4),
                "latency_ms": round((time.perf_counter() - t1) * 1000, 2),
                "agents": remote.agents,
            }
            if remote.confidence >= cfg.remote_threshold:
                return self._finish(remote, "remote", info)

        manifests = {m.name: m for m in ctx.manifests if m.enabled}
        names = _candidates(local)[:2] + _candidates(remote)[:2] + _candidates(local)
        question = RoutingDecision(
            action="clarify",
            response=clarify_text(manifests, names, cfg.clarify_candidates),
            confidence=min(local.confidence, remote.confidence if remote else 1.0),
            reason="local and remote routers both unsure" if remote else "local router unsure, no remote",
        )
        return self._finish(question, "clarify", info)

    def _finish(self, decision: RoutingDecision, path: CascadePath, info: dict[str, Any]) -> RoutingDecision:
        with self._lock:
            self._paths[path] += 1
        out = decision.model_copy(deep=True)
        out.meta["cascade"] = {"path": path, "decided_by": decision.router or self.name, **info}
        out.router = self.name
        out.reason = f"{path}: {decision.reason}" if decision.reason else path
        return out
