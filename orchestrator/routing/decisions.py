"""What every router decides the same way: the pseudo labels, the conversational examples and the
decision builders (respond, clarify, decline, route).

Labels. A router's classes are agent names plus three pseudo labels, one name each everywhere in
routing (the heads' classes, the nearest-example router, FunctionGemma's pseudo-functions, the
generated training data, the labelled evaluation sets, `eval-router --out-of-scope`):

    RESPOND       "respond_directly"          answer without looking anything up
    CLARIFY       "ask_clarifying_question"   ask back: too vague to pick a source
    OUT_OF_SCOPE  "__out_of_scope__"          nothing the assistant does: a declining clarify

RESPOND and CLARIFY are persisted: the FunctionGemma LoRA adapter was trained to call functions of
these names and the routing eval sets (store/demo_data/eval) are labelled with them, so the
strings never change. They are reserved: no agent may take one of these names.

The wire spelling is the action: `RoutingDecision.action`, the sidebar's feedback
(`backend.protocol.PSEUDO_LABELS`) and `export-routing-feedback` files (docs/learning_loop.md)
say "respond" / "clarify". `ACTION_OF`, `label_from_wire` and `label_to_wire` are the one place
the two spellings meet; nothing else maps them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from orchestrator.routing.base import Route, RoutingContext, RoutingDecision
from orchestrator.routing.queries import enhance

if TYPE_CHECKING:
    from agents.base import AgentManifest

RESPOND = "respond_directly"
CLARIFY = "ask_clarifying_question"
OUT_OF_SCOPE = "__out_of_scope__"
PSEUDO_LABELS = (RESPOND, CLARIFY, OUT_OF_SCOPE)

# Label → the action it stands for; the actions are also the wire labels.
ACTION_OF: dict[str, str] = {RESPOND: "respond", CLARIFY: "clarify"}
WIRE_LABELS: tuple[str, ...] = tuple(ACTION_OF.values())  # backend.protocol.PSEUDO_LABELS
_FROM_WIRE = {wire: label for label, wire in ACTION_OF.items()}


def label_from_wire(name: str) -> str:
    """A feedback / export label as a routing label ("respond" → RESPOND); other names as given."""
    return _FROM_WIRE.get(name, name)


def label_to_wire(name: str) -> str:
    """A routing label as the sidebar and the exports spell it (RESPOND → "respond")."""
    return ACTION_OF.get(name, name)


def expected_action(label: str) -> str | None:
    """The action a gold pseudo label (either spelling) expects; None for agent labels."""
    return ACTION_OF.get(label_from_wire(label))


# --- conversational examples ---------------------------------------------------------------------
# What "respond directly" looks like: the nearest-example router's examples and the product head's
# RESPOND items; the training-data generator uses all of RESPOND_SEEDS.
RESPOND_EXAMPLES = (
    "hi",
    "hello, are you there?",
    "thanks!",
    "ok thank you",
    "thank you, that was helpful",
    "perfect, cheers",
    "great, that's all",
    "ok got it",
    "what can you do?",
    "who are you and how do you work?",
    "good morning",
    "never mind",
)
RESPOND_SEEDS = (
    *RESPOND_EXAMPLES,
    "cool, thanks a lot",
    "nice one",
    "bye for now",
    "that answers it",
)
# Messages with no subject to route on: the generator's CLARIFY seeds.
CLARIFY_SEEDS = (
    "help",
    "can you check this",
    "what about the other thing",
    "is it ok?",
    "the customer has a problem",
    "look into it please",
    "what should I do",
    "not sure, see above",
    "any ideas?",
    "this one",
    "check again",
    "can you handle it",
    "what now",
    "is that right",
    "the usual",
    "same as before",
)
# Requests no support route serves. They teach the product head a "none of these" class, so an
# off-domain message is declined (a clarify turn that says what the assistant does) instead of
# being forced onto the nearest agent.
OUT_OF_SCOPE_EXAMPLES = (
    "what's the capital of australia",
    "tell me a joke",
    "translate this sentence into spanish",
    "who won the football match last night",
    "how do I bake sourdough bread",
    "write a python function that sorts a list",
    "what is 17 times 23",
    "recommend a good movie for tonight",
    "what time is it in tokyo",
    "how tall is mount everest",
    "book me a flight to rome",
    "what's apple's share price today",
    "sing me a song",
    "who is the president of france",
    "explain quantum computing simply",
    "how do I fix the brakes on my car",
    "what should I cook for dinner",
    "play some music",
    "give me a fun fact about octopuses",
    "how many calories are in a banana",
)


def enabled_manifests(manifests: Iterable[AgentManifest], router: str) -> dict[str, AgentManifest]:
    """The enabled agents by name, as every router keeps them. Raises ValueError when none is
    enabled, or when an agent is named like a pseudo label (its turns would read as respond/clarify)."""
    out = {m.name: m for m in manifests if m.enabled}
    if not out:
        raise ValueError(f"the {router} router needs at least one enabled agent")
    reserved = sorted(set(out) & set(PSEUDO_LABELS))
    if reserved:
        raise ValueError(f"agent name {reserved[0]!r} is reserved for a pseudo label")
    return out


# --- decision builders ---------------------------------------------------------------------------
RESPOND_TEXT = {
    "thanks": "You're welcome — ask me anything else about this ticket.",
    "default": (
        "I can look things up for this ticket: {agents}. Ask a question about the customer's issue and "
        "I'll answer with sources."
    ),
}


def respond_text(query: str, manifests: Mapping[str, AgentManifest]) -> str:
    """The direct answer to a conversational turn (thanks, greetings, "what can you do?")."""
    if any(w in query.lower() for w in ("thank", "great", "got it", "that's all")):
        return RESPOND_TEXT["thanks"]
    return RESPOND_TEXT["default"].format(agents=", ".join(m.title.lower() for m in manifests.values()))


def respond_decision(
    ctx: RoutingContext,
    manifests: Mapping[str, AgentManifest],
    *,
    confidence: float,
    router: str,
    reason: str = "conversational message",
    meta: dict[str, Any] | None = None,
) -> RoutingDecision:
    """A `respond` decision: the direct answer to a conversational turn."""
    return RoutingDecision(
        action="respond",
        response=respond_text(ctx.query, manifests),
        confidence=confidence,
        router=router,
        reason=reason,
        meta=meta or {},
    )


def clarify_question(manifests: Mapping[str, AgentManifest], ranked: Sequence[str] = ()) -> str:
    """The clarifying question, offering the two likeliest agents of `ranked` (none: a plain ask)."""
    names = [n for n in ranked if n in manifests][:2]
    if not names:
        return "Could you say a bit more about what you need?"
    options = " or ".join(manifests[n].title.lower() for n in names)
    return f"Could you say a bit more about what you need — for example, is this about {options}?"


def decline_text(manifests: Mapping[str, AgentManifest]) -> str:
    """The answer to an out-of-scope request: what the assistant does instead."""
    everything = ", ".join(m.title.lower() for m in manifests.values())
    return (
        f"That's outside what I can help with here: I look things up for this ticket ({everything}). "
        "What do you need to know about the customer's issue?"
    )


def clarify_decision(
    response: str,
    *,
    confidence: float,
    router: str,
    reason: str,
    meta: dict[str, Any] | None = None,
) -> RoutingDecision:
    """A `clarify` decision asking `response` (a clarifying question, or a decline)."""
    return RoutingDecision(
        action="clarify",
        response=response,
        confidence=confidence,
        router=router,
        reason=reason,
        meta=meta or {},
    )


def plan_stages(routes: list[Route], manifests: Mapping[str, AgentManifest]) -> list[list[Route]]:
    """Facts first, then policy: API agents (orders, products) run before retrieval agents when
    both are chosen, so the retrieval agents can use what was looked up."""
    facts = [r for r in routes if manifests[r.agent].kind == "api"]
    rest = [r for r in routes if manifests[r.agent].kind != "api"]
    if facts and rest:
        return [facts, rest]
    return [routes]


def route_decision(
    ctx: RoutingContext,
    manifests: Mapping[str, AgentManifest],
    scored: list[tuple[str, float]],
    *,
    confidence: float,
    router: str,
    reason: str = "",
    meta: dict[str, Any] | None = None,
) -> RoutingDecision:
    """A `route` decision from (agent, score) pairs: each agent's enhanced query, staged."""
    routes = [
        Route(
            agent=name,
            enhanced_query=enhance(ctx.query, manifests[name], ctx.ticket, ctx.hints),
            score=round(score, 4),
        )
        for name, score in scored
    ]
    return RoutingDecision(
        action="route",
        stages=plan_stages(routes, manifests),
        confidence=confidence,
        router=router,
        reason=reason,
        meta=meta or {},
    )
