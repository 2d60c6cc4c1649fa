"""Small agents for orchestrator tests: real BaseAgent subclasses with controllable behaviour."""

from __future__ import annotations

import time

from agents.base import AgentContext, AgentManifest, BaseAgent, Evidence, ToolCall, ToolSpec


def manifest(
    name: str,
    description: str,
    examples: list[str],
    *,
    timeout_s: float = 5.0,
    kind: str = "retrieval",
    retrieval: bool = True,
) -> AgentManifest:
    examples = examples + [f"{examples[0]} (variant {i})" for i in range(10 - len(examples))]
    return AgentManifest(
        name=name,
        description=description,
        kind=kind,
        when_to_use=examples,
        tools=[ToolSpec(name="lookup", description="look something up", retrieval=retrieval)],
        timeout_s=timeout_s,
    )


class ScriptedAgent(BaseAgent):
    """Sleeps `delay`, then returns `evidence` (or raises `error`)."""

    def __init__(
        self,
        m: AgentManifest,
        *,
        delay: float = 0.0,
        evidence: list[Evidence] | None = None,
        error: Exception | None = None,
        ignore_cancel: bool = False,
    ) -> None:
        self.delay, self.evidence, self.error, self.ignore_cancel = (
            delay,
            evidence or [],
            error,
            ignore_cancel,
        )
        self.queries: list[str] = []
        self.priors: list[list] = []
        self.spans: list[tuple[float, float]] = []  # (start, end) of each tool run
        super().__init__(m)

    def tools(self):
        return {"lookup": self._lookup}

    def offline_tool_call(self, query: str, ctx: AgentContext, attempt: int) -> ToolCall | None:
        return ToolCall("lookup", {"query": query}) if attempt == 1 else None

    def _lookup(self, ctx: AgentContext, query: str):
        self.queries.append(query)
        self.priors.append(list(ctx.prior))
        ctx.think(f"looking up {query[:30]}")
        start = time.monotonic()
        try:
            while time.monotonic() < start + self.delay:
                if ctx.cancel.is_set() and not self.ignore_cancel:
                    return []
                time.sleep(0.01)
            if self.error:
                raise self.error
            return self.evidence
        finally:
            self.spans.append((start, time.monotonic()))


def ev(id_: str, title: str, text: str, kind: str = "article", score: float = 0.9) -> Evidence:
    return Evidence(
        id=id_, title=title, text=text, kind=kind, url=f"https://help.example.com/{id_}", score=score
    )
