"""`new-agent` scaffolds a folder that loads and runs as written."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from agents.registry import AgentRegistry
from agents.scaffold import KINDS, ScaffoldError, placeholder_examples, scaffold_agent
from backend.cli import cli


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_scaffolds_loads_and_runs(tmp_path, kind, make_ctx):
    name = f"team_{kind}"
    folder = scaffold_agent(name, kind, tmp_path)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "README.md", "agent.py", "manifest.yaml", "prompts/summary.md", "prompts/tool_choice.md",
    ]  # fmt: skip
    text = (folder / "manifest.yaml").read_text()
    assert "TODO(team)" in text and "when_to_use" in text
    registry = AgentRegistry([tmp_path])  # built-ins plus the new one, nothing else edited
    entry = registry.entry(name)
    assert entry.manifest.kind == kind and len(entry.manifest.when_to_use) == 10
    assert entry.manifest.when_to_use == placeholder_examples(name)
    query = {
        "dumb": "anything",
        "deterministic": "a question about team deterministic",
        "intelligent": "can you check the team intelligent for this customer",
        "retrieval": "how many days does a customer have to return an item?",
    }[kind]
    result = entry.agent.run(query, make_ctx())
    assert result.status == "ok", (result.status, result.error)
    assert result.evidence and all(e.agent == name for e in result.evidence)
    if kind == "retrieval":
        assert result.evidence[0].kind == "article"


@pytest.mark.parametrize("name", ["Billing", "1abc", "a", "bad-name", "x" * 41, "class", "_private"])
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(ScaffoldError, match="invalid agent name"):
        scaffold_agent(name, "dumb", tmp_path)
    assert not any(tmp_path.iterdir())


def test_existing_folder_and_bad_kind_are_refused(tmp_path):
    scaffold_agent("billing", "dumb", tmp_path)
    with pytest.raises(ScaffoldError, match="already exists"):
        scaffold_agent("billing", "retrieval", tmp_path)
    with pytest.raises(ScaffoldError, match="invalid kind"):
        scaffold_agent("other", "clever", tmp_path)


def test_cli_creates_and_refuses(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(cli, ["new-agent", "loyalty", "--kind", "deterministic", "--path", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "loyalty" / "manifest.yaml").is_file() and "Created" in ok.output
    again = runner.invoke(cli, ["new-agent", "loyalty", "--path", str(tmp_path)])
    assert again.exit_code != 0 and "already exists" in again.output
    bad = runner.invoke(cli, ["new-agent", "Loyalty!", "--path", str(tmp_path)])
    assert bad.exit_code != 0 and "invalid agent name" in bad.output
    kind = runner.invoke(cli, ["new-agent", "x_y", "--kind", "magic", "--path", str(tmp_path)])
    assert kind.exit_code != 0 and "magic" in kind.output
