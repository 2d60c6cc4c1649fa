"""Metrics, structured logs and correlation ids.

- Prometheus metrics live in a registry per app (no process globals), served at /metrics.
- Logs are JSON lines (python-json-logger) carrying the correlation ids of the work in hand —
  tenant, session, turn, message — from contextvars, so one turn can be followed across the
  backend, the orchestrator and agent threads. Ticket text and secrets are never logged at INFO.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pythonjsonlogger.json import JsonFormatter

_ctx: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("sidebar_correlation", default={})  # noqa: B039 - never mutated

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)


@contextmanager
def correlation(**ids: Any) -> Iterator[None]:
    """Add correlation ids for the duration of a block (they nest and are thread/context-local)."""
    token = _ctx.set({**_ctx.get(), **{k: str(v) for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _ctx.reset(token)


class CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for k, v in _ctx.get().items():
            if not hasattr(record, k):
                setattr(record, k, v)
        return True


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (test capture, gunicorn's redirect), not at set-up time."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(level: str, *, json_logs: bool = True) -> None:
    """Idempotent: one stderr handler on the root logger."""
    root = logging.getLogger()
    root.setLevel(level)
    if any(getattr(h, "_sidebar", False) for h in root.handlers):
        return
    handler = _StderrHandler()
    handler._sidebar = True  # type: ignore[attr-defined]
    if json_logs:
        handler.setFormatter(
            JsonFormatter(
                "{asctime}{levelname}{name}{message}",
                style="{",
                rename_fields={"levelname": "level", "asctime": "time"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(CorrelationFilter())
    root.addHandler(handler)


def configure_tracing(
    exporter: str, endpoint: str | None = None, *, service: str = "zendesk-sidebar-assistant"
) -> bool:
    """Optional OpenTelemetry tracing (off by default). Spans come from the OpenTelemetry API calls
    in the turn runner and the orchestrator, which cost nothing while no provider is installed."""
    if exporter == "none":
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_exporter = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
    else:
        span_exporter = ConsoleSpanExporter(out=sys.stderr)
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(provider)
    return True


class Metrics:
    """Every metric the service exports. One instance per app, with its own registry."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.turns = Counter("sidebar_turns_total", "Turns by outcome.", ["outcome"], registry=r)
        self.routing = Counter(
            "sidebar_routing_decisions_total", "Routing decisions.", ["router", "action"], registry=r
        )
        self.routed_agents = Counter(
            "sidebar_routed_agents_total", "Agents chosen by routing.", ["router", "agent"], registry=r
        )
        self.confidence = Histogram(
            "sidebar_router_confidence",
            "Router confidence.",
            ["router"],
            buckets=[i / 10 for i in range(1, 11)],
            registry=r,
        )
        self.phase = Histogram(
            "sidebar_turn_phase_seconds",
            "Turn latency by phase.",
            ["phase"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.agent_latency = Histogram(
            "sidebar_agent_seconds", "Agent latency.", ["agent"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.agent_results = Counter(
            "sidebar_agent_results_total", "Agent outcomes.", ["agent", "status"], registry=r
        )
        self.tokens = Counter("sidebar_llm_tokens_total", "LLM tokens.", ["direction"], registry=r)
        self.cost = Counter("sidebar_llm_cost_usd_total", "LLM cost in USD.", registry=r)
        # A model missing from LLMConfig.prices adds $0 to the cost above: this says how much is missing.
        self.unpriced = Counter(
            "sidebar_llm_unpriced_calls_total",
            "LLM calls to a model with no price (recorded at $0; see the log for the model).",
            registry=r,
        )
        self.connections = Gauge(
            "sidebar_connections", "Open Socket.IO connections on this instance.", registry=r
        )
        self.active_sessions = Gauge(
            "sidebar_active_sessions", "Sessions with a connection on this instance.", registry=r
        )
        self.joins = Counter(
            "sidebar_session_joins_total", "Joins by kind (new, resumed, hydrated).", ["kind"], registry=r
        )
        self.errors = Counter(
            "sidebar_client_errors_total", "chat:error sent, by code.", ["code"], registry=r
        )
        # Shadow mode (SHADOW_ROUTER): the candidate's outcome per turn — agree, disagree, error,
        # skipped (queue full) or pending (still running when the turn ended).
        self.shadow = Counter(
            "sidebar_shadow_decisions_total",
            "Shadow router decisions compared with the live router.",
            ["live", "candidate", "outcome"],
            registry=r,
        )
        self.shadow_latency = Histogram(
            "sidebar_shadow_router_seconds",
            "Shadow router latency.",
            ["candidate"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def observe_turn(
        self,
        outcome: str,
        routing: Mapping[str, Any] | None = None,
        timings: Mapping[str, float] | None = None,
        cost: Mapping[str, Any] | None = None,
        shadow: Mapping[str, Any] | None = None,
    ) -> None:
        """Count one settled turn; `shadow` is a shadow router's decision (`Done.shadow`)."""
        self.turns.labels(outcome).inc()
        if routing:
            router = str(routing.get("router") or "unknown")
            self.routing.labels(router, str(routing.get("action", "unknown"))).inc()
            self.confidence.labels(router).observe(float(routing.get("confidence") or 0))
            for stage in routing.get("stages") or []:
                for route in stage:
                    self.routed_agents.labels(router, str(route.get("agent"))).inc()
            for agent, info in (routing.get("agents") or {}).items():
                self.agent_results.labels(agent, str(info.get("status"))).inc()
                if info.get("latency_ms") is not None:
                    self.agent_latency.labels(agent).observe(float(info["latency_ms"]) / 1000)
            if isinstance(shadow, Mapping):
                self.observe_shadow(router, shadow)
        for key, value in (timings or {}).items():
            if key.endswith("_s") and isinstance(value, int | float):
                self.phase.labels(key[:-2]).observe(float(value))
        if cost:
            self.tokens.labels("input").inc(float(cost.get("input_tokens", 0) or 0))
            self.tokens.labels("output").inc(float(cost.get("output_tokens", 0) or 0))
            self.cost.inc(float(cost.get("cost_usd", 0) or 0))
            self.unpriced.inc(float(cost.get("unpriced_calls", 0) or 0))

    def observe_shadow(self, live: str, shadow: Mapping[str, Any]) -> None:
        candidate = str(shadow.get("router") or "unknown")
        status = str(shadow.get("status") or "unknown")
        outcome = ("agree" if shadow.get("agrees") else "disagree") if status == "ok" else status
        self.shadow.labels(live, candidate, outcome).inc()
        if status == "ok" and isinstance(shadow.get("latency_ms"), int | float):
            self.shadow_latency.labels(candidate).observe(float(shadow["latency_ms"]) / 1000)
