"""Discovery, validation errors that name the folder and field, loading by file path."""

from __future__ import annotations

import re
from pathlib import Path
from textwrap import dedent

import pytest
import yaml

from agents.base import AgentContext
from agents.registry import AgentLoadError, AgentRegistry, UnknownAgent
from agents.stubs import DeterministicAgent, DumbAgent

EXAMPLES = [f"example request number {i}" for i in range(10)]


def write_agent(root: Path, name: str, agent_py: str | None = None, **fields) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    manifest = {
        "name": name,
        "description": f"A test agent called {name} for the registry tests.",
        "kind": "dumb",
        "when_to_use": EXAMPLES,
        **fields,
    }
    (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    if agent_py is not None:
        (folder / "agent.py").write_text(dedent(agent_py), encoding="utf-8")
    return folder


def ctx() -> AgentContext:
    return AgentContext(tenant="demo", ticket={"id": "1"}, knowledge=None, llm=None)


def test_a_folder_on_an_extra_path_appears_without_other_changes(tmp_path):
    write_agent(tmp_path, "billing")
    registry = AgentRegistry([tmp_path])
    assert "billing" in registry.names
    assert "knowledge_base" in registry.names  # built-ins still there
    agent = registry.get("billing")
    assert isinstance(agent, DumbAgent)
    result = agent.run("refund status?", ctx())
    assert result.status == "ok" and "not connected yet" in result.summary
    assert registry.entry("billing").builtin is False


def test_an_extra_path_may_be_an_agent_folder_itself(tmp_path):
    folder = write_agent(tmp_path, "loyalty")
    assert AgentRegistry([folder], include_builtin=False).names == ("loyalty",)


def test_underscore_folders_files_and_folders_without_manifest_are_skipped(tmp_path):
    write_agent(tmp_path, "_draft")
    (tmp_path / "notes.txt").write_text("not an agent")
    (tmp_path / "empty_dir").mkdir()
    write_agent(tmp_path, "real")
    assert AgentRegistry([tmp_path], include_builtin=False).names == ("real",)


def test_disabled_agents_are_listed_but_not_enabled(tmp_path):
    write_agent(tmp_path, "off", enabled=False)
    write_agent(tmp_path, "on")
    registry = AgentRegistry([tmp_path], include_builtin=False)
    assert registry.names == ("off", "on")
    assert [a.name for a in registry] == ["off", "on"]
    assert [a.name for a in registry.enabled()] == ["on"]
    assert [m.name for m in registry.manifests()] == ["on"]
    assert [m.name for m in registry.manifests(include_disabled=True)] == ["off", "on"]
    assert "| `off` | dumb | no |" in registry.agent_list_markdown()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"when_to_use": EXAMPLES[:3]}, "when_to_use", "at least 10"),
        ({"description": "short"}, "description", "at least 10"),
        ({"timeout_s": 0}, "timeout_s", "greater than 0"),
        ({"kind": "magic"}, "kind", "Input should be"),
        ({"surprise": 1}, "surprise", "Extra inputs"),
        ({"tools": [{"name": "Bad Name", "description": "a tool"}]}, "tools.0.name", "pattern"),
        ({"kind": "deterministic"}, "rules", "at least one rule"),
        ({"kind": "intelligent"}, "intents", "at least one intent"),
        (
            {"rules": [{"pattern": "([", "response": "x"}], "kind": "deterministic"},
            "rules.0.pattern",
            "invalid regular expression",
        ),
    ],
)
def test_manifest_errors_name_the_folder_and_the_field(tmp_path, fields, field, message):
    write_agent(tmp_path, "broken", **fields)
    with pytest.raises(AgentLoadError) as err:
        AgentRegistry([tmp_path], include_builtin=False)
    assert err.value.field == field
    assert err.value.folder == tmp_path / "broken"
    assert str(tmp_path / "broken") in str(err.value) and f"'{field}'" in str(err.value)
    assert message in str(err.value)


def test_name_must_match_the_folder(tmp_path):
    folder = write_agent(tmp_path, "alpha")
    data = yaml.safe_load((folder / "manifest.yaml").read_text())
    (folder / "manifest.yaml").write_text(yaml.safe_dump({**data, "name": "beta"}))
    with pytest.raises(AgentLoadError, match="must equal the folder name") as err:
        AgentRegistry([tmp_path], include_builtin=False)
    assert err.value.field == "name"


@pytest.mark.parametrize("text", ["name: [unclosed", "- just\n- a list\n", ""])
def test_bad_yaml_is_reported_with_the_folder(tmp_path, text):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "manifest.yaml").write_text(text)
    with pytest.raises(AgentLoadError, match=str(folder)):
        AgentRegistry([tmp_path], include_builtin=False)


def test_duplicate_names_name_both_folders(tmp_path):
    write_agent(tmp_path / "a", "twin")
    write_agent(tmp_path / "b", "twin")
    with pytest.raises(AgentLoadError) as err:
        AgentRegistry([tmp_path / "a", tmp_path / "b"], include_builtin=False)
    assert str(tmp_path / "a" / "twin") in str(err.value) and str(tmp_path / "b" / "twin") in str(err.value)


def test_a_folder_may_not_shadow_a_builtin(tmp_path):
    write_agent(tmp_path, "macros")
    with pytest.raises(AgentLoadError, match="duplicate agent name 'macros'"):
        AgentRegistry([tmp_path])


AGENT_OK = """
    from agents.stubs import DeterministicAgent

    class Shouty(DeterministicAgent):
        max_evidence = 2
"""


def test_agent_py_is_loaded_by_path_and_may_subclass_a_stub(tmp_path):
    write_agent(
        tmp_path, "shout", AGENT_OK, kind="deterministic", rules=[{"pattern": "hi", "response": "HELLO"}]
    )
    agent = AgentRegistry([tmp_path], include_builtin=False).get("shout")
    assert type(agent).__name__ == "Shouty" and isinstance(agent, DeterministicAgent)
    assert agent.run("hi there", ctx()).summary == "HELLO"


def test_same_class_name_in_two_folders_loads_as_two_modules(tmp_path):
    for name in ("one", "two"):
        write_agent(
            tmp_path, name, AGENT_OK, kind="deterministic", rules=[{"pattern": name, "response": name}]
        )
    registry = AgentRegistry([tmp_path], include_builtin=False)
    a, b = registry.get("one"), registry.get("two")
    assert type(a) is not type(b)
    assert type(a).__module__ != type(b).__module__
    assert a.run("one", ctx()).summary == "one" and b.run("two", ctx()).summary == "two"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1\n", "exactly one BaseAgent subclass (found: none)"),
        (
            "from agents.stubs import DumbAgent\nclass A(DumbAgent): pass\nclass B(DumbAgent): pass\n",
            "found: A, B",
        ),
        ("import does_not_exist_anywhere\n", "failed to import: ModuleNotFoundError"),
        ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
    ],
)
def test_agent_py_problems_are_clear(tmp_path, source, message):
    write_agent(tmp_path, "weird", source)
    with pytest.raises(AgentLoadError, match=re.escape(message)):
        AgentRegistry([tmp_path], include_builtin=False)


def test_retrieval_kind_needs_an_agent_py(tmp_path):
    write_agent(tmp_path, "searcher", kind="retrieval")
    with pytest.raises(AgentLoadError, match=r"needs an agent\.py"):
        AgentRegistry([tmp_path], include_builtin=False)


def test_tools_declared_without_implementation_are_an_error(tmp_path):
    write_agent(
        tmp_path,
        "toolless",
        "from agents.base import BaseAgent\nclass T(BaseAgent): pass\n",
        kind="retrieval",
        tools=[{"name": "search_things", "description": "searches things"}],
    )
    with pytest.raises(AgentLoadError, match="without an implementation"):
        AgentRegistry([tmp_path], include_builtin=False)


def test_non_strict_mode_keeps_the_good_agents_and_reports_the_bad(tmp_path):
    write_agent(tmp_path, "good")
    write_agent(tmp_path, "bad", when_to_use=["only one"])
    registry = AgentRegistry([tmp_path, tmp_path / "missing"], include_builtin=False, strict=False)
    assert registry.names == ("good",)
    assert {e.folder.name for e in registry.errors} == {"bad", "missing"}


def test_missing_search_path_is_an_error_when_strict(tmp_path):
    with pytest.raises(AgentLoadError, match="does not exist"):
        AgentRegistry([tmp_path / "nope"])


def test_unknown_agent(registry):
    with pytest.raises(UnknownAgent, match="unknown agent 'nope'; known: knowledge_base"):
        registry.get("nope")
    assert "nope" not in registry
    assert len(registry) == len(registry.names)


def test_search_paths_may_be_one_agent_paths_string(tmp_path):
    write_agent(tmp_path / "a", "first")
    write_agent(tmp_path / "b", "second")
    registry = AgentRegistry(f"{tmp_path / 'a'}:{tmp_path / 'b'}", include_builtin=False)
    assert registry.names == ("first", "second")
    assert AgentRegistry("", include_builtin=False).names == ()
