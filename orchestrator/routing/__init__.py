"""Routing: for each turn, answer directly, run agents (in stages), or ask back.

The runtime is this package's modules (base: the Router protocol and decision model; decisions:
pseudo labels and decision builders; keyword, semantic, head, gemini, cascade, shadow,
functiongemma: the routers; factory: routers by name). `training/` holds what is not on the
serving path: head fitting and calibration, router evaluation, threshold sweeps.

Names are loaded on first use, so importing one light module (e.g. `decisions` from the
protocol) does not import every router and its models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.routing.base import Route, Router, RoutingContext, RoutingDecision, RoutingError, timed
    from orchestrator.routing.gemini import GeminiController
    from orchestrator.routing.semantic import SemanticRouter, SemanticRouterConfig

_EXPORTS = {
    "Route": "base",
    "Router": "base",
    "RoutingContext": "base",
    "RoutingDecision": "base",
    "RoutingError": "base",
    "timed": "base",
    "GeminiController": "gemini",
    "SemanticRouter": "semantic",
    "SemanticRouterConfig": "semantic",
}
__all__ = [
    "GeminiController",
    "Route",
    "Router",
    "RoutingContext",
    "RoutingDecision",
    "RoutingError",
    "SemanticRouter",
    "SemanticRouterConfig",
    "timed",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
