"""The contract every agent folder must meet, parametrised over whatever the registry finds:
a new folder under agents/ is tested here without editing this file."""

from __future__ import annotations

import os
import threading

import pytest

from agents.base import AgentResult, BaseAgent, Evidence
from agents.registry import AgentRegistry
from tests.unit.agents.conftest import sidebar_ticket

# Extra folders (a team's own search path) are checked too: AGENT_PATHS=dir1:dir2 pytest ...
ENTRIES = AgentRegistry(os.environ.get("AGENT_PATHS", "")).entries()
STATUSES = {"ok", "empty", "error", "timeout", "unavailable", "cancelled"}


@pytest.fixture(params=ENTRIES, ids=[e.name for e in ENTRIES])
def entry(request):
    return request.param


def test_registry_finds_the_builtin_agents():
    names = {e.name for e in ENTRIES}
    assert {"knowledge_base", "similar_tickets", "macros", "order_lookup", "product_catalog"} <= names


def test_manifest_is_complete(entry):
    m = entry.manifest
    assert entry.folder.name == m.name
    assert len(m.when_to_use) >= 10
    assert len(m.description) >= 40, "write the description for a router to read"
    assert not set(m.when_to_use) & set(m.counter_examples)
    assert 0 < m.timeout_s <= 30
    for tool in m.tools:
        assert tool.name in entry.agent._tools
        assert all(p.description for p in tool.parameters.values()), f"{tool.name}: describe every parameter"


def test_prompts_are_present(entry):
    if entry.manifest.kind in ("dumb", "deterministic", "intelligent") and not entry.manifest.tools:
        pytest.skip("stubs make no model decisions")
    for name in ("tool_choice", "summary"):
        assert entry.agent.prompts.get(name), f"{entry.folder}/prompts/{name}.md is missing or empty"


def test_class_loads_and_schema_builds(entry):
    agent = entry.agent
    assert isinstance(agent, BaseAgent)
    assert agent.name == entry.manifest.name
    if entry.manifest.tools:
        schema = agent.tool_call_schema().model_json_schema()
        assert set(schema["properties"]) >= {"tool", "arguments"}
        assert agent.tool_catalogue().count("\n") == len(entry.manifest.tools) - 1


def _check_result(result: AgentResult, name: str) -> None:
    assert isinstance(result, AgentResult)
    assert result.agent == name
    assert result.status in STATUSES
    assert 0.0 <= result.confidence <= 1.0
    assert result.latency_s >= 0
    if result.status == "ok":
        assert result.evidence and result.summary
    for e in result.evidence:
        assert isinstance(e, Evidence)
        assert e.id and ":" in e.id and e.title and e.kind and e.text
        assert e.agent == name
    assert len({e.id for e in result.evidence}) == len(result.evidence), "one evidence item per source"


def test_runs_on_the_demo_tenant_within_its_timeout(entry, make_ctx, demo_tickets):
    ticket = sidebar_ticket(demo_tickets["41001"])
    query = entry.manifest.when_to_use[0]
    entry.agent.run(query, make_ctx(ticket))  # warm-up: first calls load models and caches
    result = entry.agent.run(query, make_ctx(ticket))
    _check_result(result, entry.name)
    assert result.status in ("ok", "empty"), result.error
    assert result.latency_s < entry.manifest.timeout_s


def test_every_example_gives_a_well_formed_result(entry, make_ctx, demo_tickets):
    ticket = sidebar_ticket(demo_tickets["41001"])
    for query in entry.manifest.when_to_use[:4]:
        _check_result(entry.agent.run(query, make_ctx(ticket)), entry.name)


def test_honours_cancellation(entry, make_ctx):
    cancel = threading.Event()
    cancel.set()
    result = entry.agent.run(entry.manifest.when_to_use[0], make_ctx(cancel=cancel))
    assert result.status == "cancelled"
    assert result.evidence == []
    assert result.tool_calls == []


def test_survives_a_context_without_services(entry, make_ctx):
    """No commerce service and no index: a clean 'unavailable' or 'empty', never an exception."""
    ctx = make_ctx(services={}, knowledge=None)
    result = entry.agent.run(entry.manifest.when_to_use[0], ctx)
    _check_result(result, entry.name)
    if entry.manifest.kind in ("retrieval", "api"):
        assert result.status in ("unavailable", "empty")
