"""The Gemini controller: one controlled-generation call decides respond | route | clarify.

The response schema is built from the registry's manifests, so the model can only name agents
that exist; anything it cannot decide cleanly raises RoutingError for the caller's fallback.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from agents.base import AgentManifest
from orchestrator.guardrails import render_ticket
from orchestrator.routing.base import (
    MAX_ROUTES,
    MAX_STAGES,
    Route,
    RoutingContext,
    RoutingDecision,
    RoutingError,
)
from vertex_interface import LLM, CallTags, LLMError

PROMPT = (Path(__file__).resolve().parents[1] / "prompts" / "controller.md").read_text(encoding="utf-8")

# Few and varied on purpose: one per action shape, different domains, so the controller learns
# the format without overfitting to one kind of ticket.
FEW_SHOT: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "thanks, that's all I needed",
        {"action": "respond", "response": "You're welcome!", "routes": [], "confidence": 0.95},
    ),
    (
        "customer says the parcel never arrived, what can we offer? (ticket mentions order BO-104512)",
        {
            "action": "route",
            "routes": [
                {
                    "agent": "<order agent>",
                    "enhanced_query": "Status and tracking of order BO-104512",
                    "stage": 1,
                },
                {
                    "agent": "<policy agent>",
                    "enhanced_query": "Policy for parcels marked delivered but not received",
                    "stage": 2,
                },
            ],
            "confidence": 0.8,
        },
    ),
    (
        "can you check that?",
        {
            "action": "clarify",
            "response": "Check what exactly — the order, the refund, or the account?",
            "routes": [],
            "confidence": 0.4,
        },
    ),
)


def decision_schema(agent_names: Sequence[str]) -> type[BaseModel]:
    names = tuple(agent_names)
    route = create_model(
        "ControllerRoute",
        agent=(Literal[names], ...),  # type: ignore[valid-type]
        enhanced_query=(str, Field(min_length=1, max_length=2000)),
        stage=(int, Field(1, ge=1, le=MAX_STAGES)),
    )
    return create_model(
        "ControllerDecision",
        action=(Literal["respond", "route", "clarify"], ...),
        response=(str | None, None),
        routes=(list[route], Field(default_factory=list, max_length=MAX_ROUTES)),  # type: ignore[valid-type]
        confidence=(float, Field(0.5, ge=0, le=1)),
        reason=(str, ""),
    )


class GeminiController:
    name = "gemini"

    def __init__(self, llm: LLM, manifests: Sequence[AgentManifest]) -> None:
        self.llm = llm
        self.manifests = {m.name: m for m in manifests if m.enabled}
        self.schema = decision_schema(list(self.manifests))
        self.system = (
            PROMPT
            + "\n\nAgents:\n"
            + "\n".join(
                f"- {m.name}: {m.description} Examples: {'; '.join(m.when_to_use[:3])}"
                for m in self.manifests.values()
            )
        )

    def prompt(self, ctx: RoutingContext) -> str:
        shots = "\n\n".join(f"Question: {q}\nDecision: {json.dumps(d)}" for q, d in FEW_SHOT)
        history = "\n".join(
            f"{h.get('role')}: {str(h.get('text', ''))[:500]}" for h in list(ctx.history)[-6:]
        )
        return (
            f"Examples of the format (agent names there are placeholders):\n{shots}\n\n"
            f"{render_ticket(ctx.ticket)}\n\n"
            f"<conversation>\n{history}\n</conversation>\n\n"
            f"Support agent's question: {ctx.query}"
        )

    def route(self, ctx: RoutingContext) -> RoutingDecision:
        tags = CallTags(session_id=ctx.session_id, turn_id=ctx.turn_id, agent="controller")
        try:
            raw = self.llm.generate_json(self.prompt(ctx), schema=self.schema, system=self.system, tags=tags)
        except LLMError as exc:
            raise RoutingError(f"controller unavailable: {type(exc).__name__}: {exc}") from exc
        return self.to_decision(raw)

    def to_decision(self, raw: Mapping[str, Any]) -> RoutingDecision:
        action = raw["action"]
        confidence = float(raw.get("confidence", 0.5))
        if action in ("respond", "clarify"):
            text = (raw.get("response") or "").strip()
            if not text:
                raise RoutingError(f"controller chose {action} without a response")
            return RoutingDecision(
                action=action,
                response=text,
                confidence=confidence,
                router=self.name,
                reason=raw.get("reason", ""),
            )
        stages: dict[int, list[Route]] = {}
        seen: set[str] = set()
        for r in raw.get("routes", []):
            if r["agent"] not in self.manifests or r["agent"] in seen:
                continue  # schema makes this rare; duplicates are dropped
            seen.add(r["agent"])
            stages.setdefault(int(r.get("stage", 1)), []).append(
                Route(agent=r["agent"], enhanced_query=r["enhanced_query"], score=confidence)
            )
        if not stages:
            raise RoutingError("controller chose to route but named no usable agent")
        return RoutingDecision(
            action="route",
            stages=[stages[k] for k in sorted(stages)],
            confidence=confidence,
            router=self.name,
            reason=raw.get("reason", ""),
        )
