"""Shadow mode: a candidate router decides beside the live one, on real turns, without acting.

`ShadowRouter(live, candidate)` is a Router that returns the live decision unchanged. Once the
live router has decided, the same RoutingContext goes to the candidate on a small background
executor: the turn never waits for it, and its failures are logged and counted, never raised.
At the end of the turn the orchestrator asks `collect(turn_id)` — without waiting — for the
candidate's decision and whether it agrees, which the reply records as `meta.shadow`.
`sidebar-assistant shadow-report` then compares the two on archived turns, including turns whose
feedback named the sources that should have been used (docs/learning_loop.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from orchestrator.routing.base import Router, RoutingContext, RoutingDecision, timed

log = logging.getLogger(__name__)


def decision_key(decision: RoutingDecision) -> tuple[str, frozenset[str]]:
    """What agreement compares: the action, and for `route` the set of agents (agents of one
    stage run in parallel, so their order carries no meaning)."""
    agents = frozenset(decision.agents) if decision.action == "route" else frozenset()
    return decision.action, agents


@dataclass(frozen=True)
class ShadowConfig:
    workers: int = 1  # the candidate shares the CPU with live turns: keep it small
    max_pending: int = 32  # candidates queued or running; beyond this a turn's candidate is skipped
    max_unclaimed: int = 2048  # results kept for turns that never collected (failed turns)
    # How long `collect` may wait for a candidate still running at the end of a turn. 0: never
    # (the default: shadow mode must not delay answers); tests use it to be deterministic.
    grace_s: float = 0.0

    def __post_init__(self) -> None:
        if self.workers < 1 or self.max_pending < 1 or self.max_unclaimed < 1:
            raise ValueError("workers, max_pending and max_unclaimed must be at least 1")
        if not 0.0 <= self.grace_s <= 10.0:
            raise ValueError("grace_s must be between 0 and 10 seconds")


class _Slot:
    """One turn's candidate: filled in by the executor, read by `collect`."""

    __slots__ = ("claimed_pending", "done", "shadow")

    def __init__(self, shadow: dict[str, Any] | None = None) -> None:
        self.done = threading.Event()
        self.shadow = shadow
        self.claimed_pending = False  # the turn ended without it: deliver it through `on_late`
        if shadow is not None:
            self.done.set()


class ShadowRouter:
    """Router: the live decision, with a candidate router run beside it in the background.

    `on_result(shadow)` (optional) is called on the executor thread with every finished
    candidate's `meta.shadow` dict, collected or not (metrics, logs); its errors are swallowed.
    `on_late(session_id, turn_id, shadow)` (optional, passed by whoever builds the router: the
    backend's `record_late_shadow`) receives the decision of a candidate that finished after its
    turn recorded it as `pending`, so the owner of the session can store it late instead of losing it.
    `settle(ctx)` (optional) runs after each candidate call with the context it was given (its
    `turn_id` ends in `:shadow`, so a model-backed candidate's usage is never billed to the live
    turn) and may return fields to add to `meta.shadow` (e.g. the candidate's cost).
    """

    def __init__(
        self,
        live: Router,
        candidate: Router,
        *,
        config: ShadowConfig | None = None,
        on_result: Callable[[dict[str, Any]], None] | None = None,
        settle: Callable[[RoutingContext], Mapping[str, Any] | None] | None = None,
        on_late: Callable[[str, str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.live = live
        self.settle = settle
        self.on_late = on_late
        self.candidate = candidate
        self.config = config or ShadowConfig()
        self.on_result = on_result
        self._executor = ThreadPoolExecutor(
            max_workers=self.config.workers, thread_name_prefix="shadow-router"
        )
        self._lock = threading.Lock()
        self._pending = 0
        self._slots: OrderedDict[str, _Slot] = OrderedDict()
        self.counts = {"ok": 0, "error": 0, "skipped": 0, "agree": 0, "disagree": 0}

    @property
    def name(self) -> str:
        # The live router answers: decisions, metrics and logs carry its name.
        return self.live.name

    def route(self, ctx: RoutingContext) -> RoutingDecision:
        decision = self.live.route(ctx)  # a live failure propagates: the orchestrator falls back
        if ctx.turn_id is not None:
            self._submit(ctx, decision_key(decision))
        return decision

    def warm_up(self) -> None:
        """Readiness waits for the live router only. The candidate warms on its own executor, and
        a candidate that cannot load is logged, never a reason to keep the instance unready."""
        warm = getattr(self.live, "warm_up", None)
        if callable(warm):
            warm()
        cand = getattr(self.candidate, "warm_up", None)
        if callable(cand):
            self._executor.submit(self._warm_candidate, cand)

    def _warm_candidate(self, warm: Callable[[], None]) -> None:
        try:
            warm()
        except Exception:
            log.exception("shadow router %s failed to warm up", self.candidate.name)

    def collect(self, turn_id: str | None) -> dict[str, Any] | None:
        """The candidate's `meta.shadow` for this turn: `status` is `ok` (with its decision and
        `agrees`), `error`, `skipped` (too many queued) or `pending` (still running when the turn
        ended; waits at most `grace_s`). None for a turn the candidate never saw."""
        if turn_id is None:
            return None
        with self._lock:
            slot = self._slots.pop(turn_id, None)
        if slot is None:
            return None
        if self.config.grace_s and not slot.done.is_set():
            slot.done.wait(self.config.grace_s)
        with self._lock:  # against _run: either the result is here, or _run sees the claim
            if slot.shadow is not None:
                return slot.shadow
            slot.claimed_pending = True
        return {"router": self.candidate.name, "status": "pending", "turn": turn_id}

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- internals ----------------------------------------------------------------------------
    def _remember(self, turn_id: str, slot: _Slot) -> None:
        with self._lock:
            self._slots[turn_id] = slot
            while len(self._slots) > self.config.max_unclaimed:
                self._slots.popitem(last=False)

    def _submit(self, ctx: RoutingContext, live: tuple[str, frozenset[str]]) -> None:
        turn_id = str(ctx.turn_id)
        with self._lock:
            full = self._pending >= self.config.max_pending
            if full:
                self.counts["skipped"] += 1
            else:
                self._pending += 1
        if full:
            self._remember(turn_id, _Slot({"router": self.candidate.name, "status": "skipped"}))
            return
        slot = _Slot()
        self._remember(turn_id, slot)  # before submitting: the result always finds its slot
        try:
            self._executor.submit(self._run, ctx, live, slot)
        except RuntimeError:  # executor shut down (process exiting)
            with self._lock:
                self._pending -= 1

    def _run(self, ctx: RoutingContext, live: tuple[str, frozenset[str]], slot: _Slot) -> None:
        started = time.perf_counter()
        turn_id = str(ctx.turn_id)
        ctx = replace(ctx, turn_id=f"{turn_id}:shadow")
        try:
            decision = timed(self.candidate, ctx)
            key = decision_key(decision)
            shadow: dict[str, Any] = {
                "router": decision.router or self.candidate.name,
                "status": "ok",
                "action": decision.action,
                "routes": decision.agents,
                "confidence": round(decision.confidence, 4),
                "agrees": key == live,
                "latency_ms": round(decision.latency_s * 1000, 2),
            }
            outcome = "agree" if shadow["agrees"] else "disagree"
        except Exception as exc:  # the candidate is on trial: its failures never reach the turn
            log.warning("shadow router %s failed: %s", self.candidate.name, exc, exc_info=True)
            shadow = {
                "router": self.candidate.name,
                "status": "error",
                "error": type(exc).__name__,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            }
            outcome = None
        if self.settle is not None:
            try:
                shadow.update(self.settle(ctx) or {})
            except Exception:
                log.exception("shadow settle hook failed")
        with self._lock:
            slot.shadow = shadow
            late = slot.claimed_pending
            self._pending -= 1
            self.counts[shadow["status"]] += 1
            if outcome:
                self.counts[outcome] += 1
        slot.done.set()
        if self.on_result is not None:
            try:
                self.on_result(shadow)
            except Exception:
                log.exception("shadow on_result hook failed")
        if late and self.on_late is not None and ctx.session_id:
            try:
                self.on_late(ctx.session_id, turn_id, {**shadow, "late": True, "turn": turn_id})
            except Exception:
                log.exception("shadow on_late hook failed")
