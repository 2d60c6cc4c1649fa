"""Routers: semantic (offline), gemini (controlled generation); more arrive with the router work."""

from orchestrator.routing.base import Route, Router, RoutingContext, RoutingDecision, RoutingError, timed
from orchestrator.routing.gemini import GeminiController
from orchestrator.routing.semantic import SemanticRouter, SemanticRouterConfig

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
