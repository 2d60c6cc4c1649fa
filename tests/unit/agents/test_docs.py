"""docs/agents.md embeds the registry's agent list; it must not drift from the folders."""

from __future__ import annotations

from pathlib import Path

from agents.registry import AgentRegistry

DOC = Path(__file__).resolve().parents[3] / "docs" / "agents.md"


def test_agents_doc_embeds_the_current_agent_list():
    text = DOC.read_text(encoding="utf-8")
    start = text.index("<!-- agent-list:start -->") + len("<!-- agent-list:start -->")
    end = text.index("<!-- agent-list:end -->")
    assert text[start:end].strip() == AgentRegistry().agent_list_markdown().strip(), (
        "regenerate with: python -m agents.registry"
    )


def test_agents_doc_mentions_every_manifest_field():
    from agents.base import AgentManifest

    text = DOC.read_text(encoding="utf-8")
    for field in AgentManifest.model_fields:
        assert f"`{field}`" in text, field
