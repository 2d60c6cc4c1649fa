"""Remote agents over A2A, end to end, against real A2A servers in separate processes.

The servers are built from the official `a2a-sdk` server classes (tests/support/a2a_server.py:
`DefaultRequestHandler`, `InMemoryTaskStore`, `TaskUpdater`, the Starlette card and JSON-RPC
routes); the sidebar side uses the SDK's client (`ClientFactory`, streaming `SendStreamingMessage`).

Contract checked against the A2A 1.0 specification
(https://a2a-protocol.org/v1.0.0/specification/, summary at https://a2a-protocol.org/llms-reference.txt):
the agent card is served at `/.well-known/agent-card.json` with `supportedInterfaces` and
`skills[].examples`; a streamed send answers with a Task, then `TaskStatusUpdateEvent`s
(`status.message` parts become thinking lines) and `TaskArtifactUpdateEvent`s (text / data / url
parts become cited evidence); `TASK_STATE_FAILED` ends the task with a reason.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
from pathlib import Path

import pytest

from agents.base import AgentContext, AgentManifest
from agents.http import BreakerRegistry
from agents.registry import AgentRegistry
from agents.remote_a2a import RemoteA2AAgent
from backend import protocol
from backend.assistant import build_assistant
from orchestrator.guardrails import retrieval_only
from orchestrator.turn import Done, Principal, Thinking, TurnRequest
from testkit.client import SidebarClient
from tests.support.a2a_process import scripted_server
from tests.support.a2a_server import WAREHOUSE_EXAMPLES
from vertex_interface import CallbackChain

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUESTION = "is the warehouse open for pickups today?"
TICKET = {
    "id": "777",
    "subject": "Pickup question",
    "description": "Hello, can I collect my parcel at the Venlo warehouse this afternoon? " * 3,
    "comments": [
        {"text": "Customer called about pickup.", "public": True},
        {"text": "INTERNAL: customer is on the fraud watchlist", "public": False},
    ],
}


def write_folder(
    root: Path, url: str, *, name: str = "warehouse", timeout_s: float = 4, extra: str = ""
) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "manifest.yaml").write_text(
        textwrap.dedent(
            f"""
            name: {name}
            display_name: Warehouse
            kind: a2a
            description: The ops team's warehouse agent over A2A - opening hours, pickups, strikes and backlogs.
            a2a:
              url: {url}
            timeout_s: {timeout_s}
            """
        )
        + extra
    )
    return folder


def ctx(**kw) -> AgentContext:
    return AgentContext(tenant="demo", ticket=kw.pop("ticket", TICKET), knowledge=None, llm=None, **kw)


@pytest.fixture
def servers():
    started = []

    def start(mode: str, *extra: str, env=None):
        srv = scripted_server(mode, *extra, env=env)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def assistant_server(live_app, settings, demo_index, local_llm):
    def start(**overrides):
        # The plain semantic router: a new agent set needs no head training or calibration, which
        # would make the first turn wait long on a busy machine (routing itself is not under test).
        s = settings.model_copy(update={"turn_handler": "orchestrator", "router": "semantic", **overrides})
        # The first turn may wait for the router's warm-up (calibration): generous on a busy machine.
        return live_app(
            settings={"turn_timeout_seconds": 120},
            handler=build_assistant(s, llm=local_llm, index=demo_index),
        )

    return start


def ask(server, tokens, text: str = QUESTION) -> tuple[dict, list[str], SidebarClient]:
    c = SidebarClient()
    c.connect(server.url, tokens.mint("demo", "agent-1", "Dana"))
    c.join(TICKET)
    done = c.ask("a1", text, timeout=150)
    thinking = [t["text"] for t in c.of(protocol.THINKING)]
    c.disconnect()
    return done, thinking, c


def test_remote_agent_folder_is_routed_to_from_the_sidebar(servers, assistant_server, tokens, tmp_path):
    """A manifest-only folder (no core edit): routed to on its card's skill examples, its status
    updates shown as thinking lines, its data-part source cited with its URL, and the message it
    got carries the question and the bounded ticket without internal notes."""
    record = tmp_path / "received.jsonl"
    srv = servers("ok", "--record", str(record))
    write_folder(tmp_path / "agents", f"{srv.url}/.well-known/agent-card.json")
    server = assistant_server(agent_paths=str(tmp_path / "agents"))

    done, thinking, _ = ask(server, tokens)

    assert done["routing"]["stages"][0][0]["agent"] == "warehouse"
    assert "Warehouse: Checking the warehouse schedule" in thinking
    assert "Warehouse: Reading the Venlo site calendar" in thinking
    cited = {c["id"]: c for c in done["citations"]}
    venlo = cited["a2a:warehouse:site:venlo"]
    assert venlo["url"] == "https://ops.example.com/venlo" and venlo["agent"] == "warehouse"
    assert "07:00-22:00" in done["message"]["text"]
    assert done["routing"]["agents"]["warehouse"]["status"] == "ok"

    sent = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(sent) == 1
    parts = sent[0]["parts"]
    assert "warehouse" in parts[0]["text"].lower()
    ticket = parts[1]["data"]["ticket"]
    assert ticket["subject"] == "Pickup question"
    assert "fraud watchlist" not in json.dumps(ticket)
    assert len(json.dumps(ticket)) <= 4000


@pytest.mark.parametrize(
    ("mode", "note"),
    [
        ("unreachable", "Warehouse is unavailable"),
        ("error500", "Warehouse is unavailable"),
        ("slow", "Warehouse timed out"),
        ("malformed", "Warehouse is unavailable"),
        ("oversized", "Warehouse is unavailable"),
        ("failed", "Warehouse is unavailable"),
    ],
)
def test_faults_give_the_unavailable_note_and_never_sink_the_turn(
    mode, note, servers, settings, demo_index, local_llm, tmp_path
):
    """Card unreachable, HTTP 500, slower than the agent's timeout, malformed parts, an oversized
    artifact, a failed task: the real assistant's turn (build_assistant, the agent folder on
    AGENT_PATHS, routing, synthesis) still completes, with the agent's note. The Socket.IO path
    on top is the one the test above drives."""
    if mode == "unreachable":
        url = "http://127.0.0.1:9/.well-known/agent-card.json"  # nothing listens on the discard port
    else:
        url = f"{servers(mode).url}/.well-known/agent-card.json"
    # Own examples, so the agent stays routable even when its card cannot be read.
    extra = "when_to_use: " + json.dumps(WAREHOUSE_EXAMPLES) + "\n"
    write_folder(tmp_path / "agents", url, timeout_s=2, extra=extra)
    s = settings.model_copy(
        update={"turn_handler": "orchestrator", "router": "semantic", "agent_paths": str(tmp_path / "agents")}
    )
    started = time.monotonic()
    assistant = build_assistant(s, llm=local_llm, index=demo_index)
    # Start-up never waits on the remote beyond its bounded card fetch (generous: a busy machine).
    assert time.monotonic() - started < 60
    try:
        request = TurnRequest(
            "s-fault", Principal("demo", "agent-1", "Dana"), "f1", QUESTION, TICKET, [], [], []
        )
        t0 = time.monotonic()
        events = list(assistant.handle(request))
    finally:
        assistant.close()
    done = events[-1]
    assert isinstance(done, Done)
    thinking = [e.text for e in events if isinstance(e, Thinking)]
    assert done.routing["stages"][0][0]["agent"] == "warehouse"
    assert note in done.text, (mode, done.routing["agents"], done.text[-300:])
    assert not any(c["id"].startswith("a2a:") for c in done.citations)
    assert done.routing["agents"]["warehouse"]["status"] in ("unavailable", "timeout")
    assert time.monotonic() - t0 < 60  # the 2 s agent timeout ended it
    if mode == "slow":
        assert "Warehouse: Checking the warehouse schedule" in thinking  # streamed before it stalled


def test_unreachable_card_without_examples_leaves_start_up_alone(tmp_path):
    """No examples and no card: the agent is out of routing with the reason, within its bounded
    card timeout; the other agents load."""
    write_folder(tmp_path, "http://127.0.0.1:9/.well-known/agent-card.json")
    t0 = time.monotonic()
    registry = AgentRegistry([tmp_path])
    assert time.monotonic() - t0 < 15
    agent = registry.get("warehouse")
    assert isinstance(agent, RemoteA2AAgent)
    assert agent.manifest.enabled is False and "warehouse" not in [a.name for a in registry.enabled()]
    assert agent.unavailable_reason == "agent card cannot be fetched (cannot connect)"
    assert "knowledge_base" in registry.names


def test_card_skills_become_routing_examples(servers, tmp_path):
    srv = servers("ok")
    write_folder(tmp_path, srv.url)  # the base URL: the well-known path is added
    registry = AgentRegistry([tmp_path], include_builtin=False)
    entry = registry.entry("warehouse")
    assert entry.manifest.when_to_use == WAREHOUSE_EXAMPLES
    assert entry.manifest.tools[0].name == "send_message" and entry.manifest.tools[0].retrieval


def test_direct_message_reply_and_bearer_secret_by_reference(servers, tmp_path, monkeypatch):
    """A server requiring a bearer token: the manifest names the env var, the agent sends it; a
    missing secret is an unavailable note naming the variable, never a value."""
    monkeypatch.setenv("WAREHOUSE_TOKEN", "tok-3141592653")
    srv = servers("message", "--token-env", "WAREHOUSE_TOKEN")
    m = AgentManifest.model_validate(
        {
            "name": "warehouse",
            "description": "The ops team's warehouse agent over A2A.",
            "kind": "a2a",
            "a2a": {"url": srv.url, "auth": {"type": "bearer", "secret_env": "WAREHOUSE_TOKEN"}},
        }
    )
    agent = RemoteA2AAgent(m)
    result = agent.run(QUESTION, ctx())
    assert result.status == "ok", result.error
    assert result.evidence[0].id == "a2a:warehouse:reply"
    assert result.evidence[0].url == "https://ops.example.com/venlo"

    monkeypatch.setenv("WAREHOUSE_TOKEN", "wrong")
    result = agent.run(QUESTION, ctx())
    assert result.status == "unavailable" and result.error == "Warehouse refused our credentials (HTTP 401)"
    monkeypatch.delenv("WAREHOUSE_TOKEN")
    result = agent.run(QUESTION, ctx())
    assert result.status == "unavailable"
    assert result.error == "Warehouse cannot authenticate: secret WAREHOUSE_TOKEN is not set"


def test_circuit_breaker_opens_after_repeated_failures(servers):
    srv = servers("error500")
    m = AgentManifest.model_validate(
        {
            "name": "warehouse",
            "description": "Warehouse agent over A2A.",
            "kind": "a2a",
            "a2a": {"url": srv.url},
        }
    )
    agent = RemoteA2AAgent(m, breakers=BreakerRegistry())
    errors = [agent.run(QUESTION, ctx()).error for _ in range(4)]
    assert errors[:3] == ["Warehouse is unavailable (HTTP 500)"] * 3
    assert errors[3].startswith("Warehouse is unavailable (circuit open")


def test_cancel_event_closes_the_stream(servers):
    srv = servers("slow")
    m = AgentManifest.model_validate(
        {
            "name": "warehouse",
            "description": "Warehouse agent over A2A.",
            "kind": "a2a",
            "a2a": {"url": srv.url},
            "timeout_s": 30,
        }
    )
    agent = RemoteA2AAgent(m)
    cancel = threading.Event()
    lines: list[str] = []
    threading.Timer(0.5, cancel.set).start()
    t0 = time.monotonic()
    result = agent.run(QUESTION, ctx(cancel=cancel, think=lines.append))
    assert result.status == "cancelled"
    assert time.monotonic() - t0 < 3
    assert lines == ["Checking the warehouse schedule"]


def test_tool_veto_guardrail_blocks_a_remote_agent_that_acts(servers, tmp_path):
    """`read_only: false` declares a side-effecting agent: the sidebar's retrieval-only guardrail
    vetoes it like any such tool, and the remote agent never receives the message."""
    record = tmp_path / "received.jsonl"
    srv = servers("ok", "--record", str(record))
    m = AgentManifest.model_validate(
        {
            "name": "refunds",
            "description": "Issues refunds in the payment system over A2A.",
            "kind": "a2a",
            "a2a": {"url": srv.url, "read_only": False},
        }
    )
    agent = RemoteA2AAgent(m)
    result = agent.run(QUESTION, ctx(tool_callbacks=CallbackChain(before=[retrieval_only])))
    assert result.status == "error" and "side effects" in (result.error or "")
    assert not record.exists()
