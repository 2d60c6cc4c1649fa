"""`sidebar-assistant serve-agents`: our built-in agents as A2A servers, in a separate process.

Two tenants' Help Centers live in one knowledge index. The served `knowledge_base` agent answers
each caller from the tenant of the caller's verified token (a sidebar dev token here, or a
per-tenant API key), never from the message: the A2A request's own `tenant` field
(SendMessageRequest.tenant, https://a2a-protocol.org/v1.0.0/specification/), message metadata and
the ticket data all claiming the other tenant change nothing, and one tenant's task id is not
found for the other tenant (tasks are stored per caller).

Cards are generated from the manifests (`/agents/<name>/.well-known/agent-card.json`, skills with
the manifest's examples, an HTTP bearer security scheme as the 1.0 card's `securitySchemes`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys

import httpx
import pytest
import yaml
from a2a.client import ClientConfig, ClientFactory
from a2a.client.card_resolver import A2ACardResolver
from a2a.types.a2a_pb2 import GetTaskRequest, Message, Part, Role, SendMessageRequest
from a2a.utils.errors import A2AError
from google.protobuf import json_format, struct_pb2

from agents.base import AgentContext, AgentManifest
from agents.registry import AgentRegistry
from agents.remote_a2a import RemoteA2AAgent
from orchestrator.orchestrator import Assistant
from orchestrator.routing import SemanticRouter
from orchestrator.turn import Done, Principal, Thinking, TurnRequest
from store.factory import open_knowledge_index
from store.ingest import ingest_path
from tests.conftest import TEST_SECRET
from tests.support.a2a_process import A2AProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOCS = {
    "acme": "Every Acme kettle has a 2 year warranty. The warranty claim code is ACME-7731.",
    "globex": "Every Globex kettle has a 5 year warranty. The warranty claim code is GLOBEX-4410.",
}
QUESTION = "how long is the kettle warranty and what is the warranty claim code?"
API_KEY = "globex-api-key-0123456789"
CARD = "/agents/knowledge_base/.well-known/agent-card.json"


@pytest.fixture(scope="module")
def served(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("serve-agents")
    index = open_knowledge_index("sqlite", embedder=embedder, sqlite_path=root / "data" / "knowledge.sqlite3")
    for tenant, text in DOCS.items():
        folder = root / f"md-{tenant}"
        folder.mkdir()
        (folder / "kettle-warranty.md").write_text(f"# Kettle warranty\n\n{text}\n")
        assert ingest_path(index, tenant, "markdown", folder).added == 1
    index.close()
    keys = root / "api-keys.yaml"
    keys.write_text(yaml.safe_dump({"globex": [hashlib.sha256(API_KEY.encode()).hexdigest()]}))
    env = {
        "DATA_DIR": str(root / "data"),
        "DEMO_TENANT": "",
        "AUTH_MODE": "dev",
        "SECRET_KEY": TEST_SECRET,
        "LLM_BACKEND": "local",
        "LOG_FORMAT": "text",
        "A2A_API_KEYS_FILE": str(keys),
    }
    argv = [
        sys.executable,
        "-m",
        "backend.cli",
        "serve-agents",
        "--agents",
        "knowledge_base,ticket",
        "--port",
        "0",
    ]
    proc = A2AProcess(argv, env=env, card_path=CARD)
    yield proc
    proc.stop()


def remote_kb(url: str, token: str, env_name: str) -> RemoteA2AAgent:
    os.environ[env_name] = token
    m = AgentManifest.model_validate(
        {
            "name": "partner_help_center",
            "display_name": "Partner Help Center",
            "description": "Our own Help Center agent served over A2A by serve-agents.",
            "kind": "a2a",
            "a2a": {"url": url + CARD, "auth": {"type": "bearer", "secret_env": env_name}},
            "timeout_s": 10,
        }
    )
    return RemoteA2AAgent(m)


def ctx(ticket=None, think=None) -> AgentContext:
    return AgentContext(
        tenant="ignored-by-the-remote",
        ticket=ticket or {"id": "1", "subject": "Kettle warranty"},
        knowledge=None,
        llm=None,
        think=think or (lambda t: None),
    )


def test_cards_come_from_the_manifests_and_calls_need_a_verified_caller(served):
    card = httpx.get(served.url + CARD).json()
    kb = AgentRegistry().entry("knowledge_base").manifest
    assert card["name"] == kb.title and card["description"] == kb.description
    assert card["skills"][0]["examples"] == kb.when_to_use
    assert card["supportedInterfaces"][0]["url"] == f"{served.url}/agents/knowledge_base/"
    assert card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"] == "Bearer"
    assert set(httpx.get(served.url + "/agents").json()["agents"]) == {"knowledge_base", "ticket"}

    rpc = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {}}
    assert httpx.post(f"{served.url}/agents/knowledge_base/", json=rpc).status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert httpx.post(f"{served.url}/agents/knowledge_base/", json=rpc, headers=bad).status_code == 401


def test_each_caller_gets_its_own_tenants_data(served, tokens):
    """The same remote agent folder, called with each tenant's token: each sees only its own
    Help Center, whatever tenant the ticket data names."""
    lines: list[str] = []
    acme = remote_kb(served.url, tokens.mint("acme", "agent-1", "Ann"), "A2A_TEST_ACME")
    result = acme.run(QUESTION, ctx({"id": "1", "subject": "Kettle", "tenant": "globex"}, lines.append))
    assert result.status == "ok", result.error
    text = " ".join(e.text for e in result.evidence)
    assert "ACME-7731" in text and "GLOBEX" not in text
    assert result.evidence[0].id.startswith("a2a:partner_help_center:article:")
    assert "Help Center: searching" in lines

    globex = remote_kb(served.url, API_KEY, "A2A_TEST_GLOBEX")  # the per-tenant API key
    text = " ".join(e.text for e in globex.run(QUESTION, ctx()).evidence)
    assert "GLOBEX-4410" in text and "ACME" not in text


def _data(value) -> Part:
    return Part(data=json_format.ParseDict(value, struct_pb2.Value()))


async def _exchange(url: str, token: str, request: SendMessageRequest, get_task: str | None = None):
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=20) as http:
        card = await A2ACardResolver(http, url + "/agents/knowledge_base").get_agent_card()
        client = ClientFactory(ClientConfig(streaming=True, httpx_client=http)).create(card)
        if get_task:
            return await client.get_task(GetTaskRequest(id=get_task))
        return [event async for event in client.send_message(request)]


def test_a_caller_cannot_reach_another_tenants_data_through_the_message(served, tokens):
    """An acme caller crafting a request for globex: the request's tenant field, its metadata and
    the ticket all say globex; the answer is still acme's, and acme's task is not found for globex."""
    acme_token = tokens.mint("acme", "agent-1", "Ann")
    message = Message(
        message_id="m-1",
        role=Role.ROLE_USER,
        parts=[
            Part(text=QUESTION),
            _data({"ticket": {"id": "9", "subject": "warranty", "tenant": "globex"}}),
        ],
    )
    message.metadata.update({"tenant": "globex"})
    request = SendMessageRequest(tenant="globex", message=message)
    request.metadata.update({"tenant": "globex"})
    events = asyncio.run(_exchange(served.url, acme_token, request))
    texts = json_format.MessageToJson(events[-1]) + "".join(json_format.MessageToJson(e) for e in events)
    assert "ACME-7731" in texts and "GLOBEX-4410" not in texts
    task_id = next(e.task.id for e in events if e.HasField("task"))

    with pytest.raises(A2AError):  # TaskNotFoundError: tasks are stored per caller
        asyncio.run(_exchange(served.url, API_KEY, request, get_task=task_id))
    own = asyncio.run(_exchange(served.url, acme_token, request, get_task=task_id))
    assert own.id == task_id


def test_served_agent_answers_a_turn_through_the_orchestrator(served, tokens, local_llm):
    """serve-agents as the remote end of a kind a2a agent in a real orchestrator turn: its
    thinking lines arrive prefixed with the agent's title, its evidence is cited."""
    agent = remote_kb(served.url, tokens.mint("acme", "agent-1", "Ann"), "A2A_TEST_TURN")
    embed = lambda texts: local_llm.embed(texts, task_type="SEMANTIC_SIMILARITY")  # noqa: E731
    assistant = Assistant([agent], SemanticRouter(embed, [agent.manifest]), local_llm, None)
    try:
        request = TurnRequest(
            "s1",
            Principal("demo", "agent-1", "Dana"),
            "m1",
            QUESTION,
            {"id": "5", "subject": "Kettle"},
            [],
            [],
            [],
        )
        events = list(assistant.handle(request))
    finally:
        assistant.close()
    done = events[-1]
    assert isinstance(done, Done)
    thinking = [e.text for e in events if isinstance(e, Thinking)]
    assert "Partner Help Center: Help Center: searching" in thinking
    assert any(c["id"].startswith("a2a:partner_help_center:") and c["cited"] for c in done.citations)
    assert "Acme kettle has a 2 year warranty" in done.text and "Globex" not in done.text
