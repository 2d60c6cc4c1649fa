"""The walk of one chat turn stays short: from the Socket.IO handler to an agent's `run`, across
the three threads it crosses (the Socket.IO handler's, the turn's, the agent pool's), the project
code on the stack is counted frame by frame (issue 16: 11 frames before the seams were typed and
the agent-call wrappers collapsed, 8 after). A new layer of indirection has to be worth raising
the bound here, and docs/architecture.md follows the walk it allows."""

from __future__ import annotations

import concurrent.futures
import traceback
from pathlib import Path

import pytest

from agents.base import BaseAgent, ToolSpec
from agents.registry import AgentRegistry
from orchestrator.orchestrator import Assistant
from orchestrator.routing.keyword import KeywordRouter
from testkit.agents import ScriptedAgent, ev
from testkit.client import SidebarClient

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("backend", "orchestrator", "agents", "vertex_interface", "store")
MAX_FRAMES = 8


def _product_frames() -> list[str]:
    """The product code on the calling thread's stack (not the test's spies, not libraries)."""
    out = []
    for frame in traceback.extract_stack():
        path = Path(frame.filename)
        if path.is_relative_to(ROOT) and path.relative_to(ROOT).parts[0] in PRODUCT:
            out.append(f"{path.relative_to(ROOT)}:{frame.lineno} {frame.name}")
    return out


def test_one_turn_reaches_its_agent_in_a_few_frames(live_app, tokens, local_llm, monkeypatch):
    lookup = [ToolSpec(name="lookup", description="look something up", retrieval=True)]
    manifests = {m.name: m.model_copy(update={"tools": lookup}) for m in AgentRegistry().manifests()}
    agent = ScriptedAgent(
        manifests["order_lookup"], evidence=[ev("order:BO-100234", "Order", "Shipped.", "order")]
    )
    assistant = Assistant([agent], KeywordRouter(list(manifests.values())), local_llm, None)
    server = live_app(handler=assistant)
    walk: dict[str, list[str]] = {}
    runner = server.services.runner
    spawn = runner.spawn

    def spy_spawn(fn, *args):  # the Socket.IO handler's thread hands the turn to its own thread
        walk.setdefault("socket", _product_frames())
        return spawn(fn, *args)

    submit = concurrent.futures.ThreadPoolExecutor.submit

    def spy_submit(self, fn, *args, **kwargs):  # the turn's thread hands the agent to the pool
        frames = _product_frames()
        if frames and frames[-1].endswith(" _run_stage"):
            walk.setdefault("turn", frames)
        return submit(self, fn, *args, **kwargs)

    run = BaseAgent.run

    def spy_run(self, query, ctx):
        walk.setdefault("agent", [*_product_frames(), "agents/base.py BaseAgent.run"])
        return run(self, query, ctx)

    monkeypatch.setattr(runner, "spawn", spy_spawn)
    monkeypatch.setattr(concurrent.futures.ThreadPoolExecutor, "submit", spy_submit)
    monkeypatch.setattr(BaseAgent, "run", spy_run)

    c = SidebarClient()
    c.connect(server.url, tokens.mint("acme", "alice", "Alice"))
    c.join({"id": 4242, "subject": "Where is my parcel?"})
    done = c.ask("q1", "where is order BO-100234", timeout=60)
    c.disconnect()
    assert done["routing"]["agents"]["order_lookup"]["status"] == "ok"  # the agent really ran

    assert walk.keys() == {"socket", "turn", "agent"}, walk
    assert walk["socket"][-1].endswith(" submit") and "socket_events.py" in walk["socket"][0]
    assert walk["turn"][0].endswith(" _run") and walk["turn"][-1].endswith(" _run_stage")
    frames = [f for part in ("socket", "turn", "agent") for f in walk[part]]
    assert len(frames) <= MAX_FRAMES, "\n".join(frames)
