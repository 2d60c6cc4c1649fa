"""Discover agent folders, validate their manifests and load their classes.

An agent folder is any directory holding `manifest.yaml`. The built-in ones live next to this
file (`agents/<name>/`); more come from extra search paths the caller passes (a directory *of*
agent folders, or one agent folder itself). Folders starting with `_` are skipped. Loading is
strict by default: a broken folder stops start-up with an `AgentLoadError` naming the folder and
the field, so a team sees its mistake at once instead of a silently missing agent.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import yaml
from pydantic import ValidationError

from agents.base import AgentManifest, BaseAgent

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).resolve().parent
MANIFEST = "manifest.yaml"
MAX_MANIFEST_BYTES = 256_000
# Kinds that work from the manifest alone (agents/stubs.py); the others need an agent.py.
STUB_KINDS = ("dumb", "deterministic", "intelligent")


class AgentLoadError(ValueError):
    """An agent folder could not be loaded. `folder` and `field` say where to look."""

    def __init__(self, folder: Path, message: str, field: str | None = None) -> None:
        where = f"{folder}" + (f": field '{field}'" if field else "")
        super().__init__(f"agent folder {where}: {message}")
        self.folder = folder
        self.field = field
        self.message = message


class UnknownAgent(KeyError):
    """`registry.get(name)` for a name no folder declares."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown agent"


@dataclass(frozen=True)
class AgentEntry:
    """One discovered folder: its manifest, where it lives, and the agent built from it."""

    manifest: AgentManifest
    folder: Path
    agent: BaseAgent
    builtin: bool

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def enabled(self) -> bool:
        return self.manifest.enabled


def load_manifest(folder: Path) -> AgentManifest:
    """Read and validate `folder/manifest.yaml`; errors name the folder and the field."""
    path = folder / MANIFEST
    if not path.is_file():
        raise AgentLoadError(folder, f"no {MANIFEST}")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise AgentLoadError(folder, f"{MANIFEST} is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise AgentLoadError(folder, f"{MANIFEST} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise AgentLoadError(folder, f"{MANIFEST} must be a mapping of fields")
    try:
        manifest = AgentManifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise AgentLoadError(folder, f"{first['msg']}{more}", field) from None
    if manifest.name != folder.name:
        raise AgentLoadError(
            folder, f"name {manifest.name!r} must equal the folder name {folder.name!r}", "name"
        )
    # Rules drive the deterministic stub; a folder with its own agent.py decides without them.
    if manifest.kind == "deterministic" and not manifest.rules and not (folder / "agent.py").is_file():
        raise AgentLoadError(folder, "a deterministic agent needs at least one rule", "rules")
    if manifest.kind == "intelligent" and not manifest.intents:
        raise AgentLoadError(folder, "an intelligent agent needs at least one intent", "intents")
    return manifest


def load_manifest_list(path: str | Path) -> list[AgentManifest]:
    """Several manifests in one YAML file (`agents: [...]`, or a bare list), each validated like
    a folder's. For benchmark suites: routes that have a manifest but no agent code."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.stat().st_size > 8 * MAX_MANIFEST_BYTES:
        raise ValueError(f"{path}: larger than {8 * MAX_MANIFEST_BYTES} bytes")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    items = raw.get("agents") if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not items:
        raise ValueError(f"{path}: expected a non-empty list of manifests (or a mapping with 'agents:')")
    manifests: list[AgentManifest] = []
    for i, item in enumerate(items):
        try:
            manifests.append(AgentManifest.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"{path}: agents[{i}]{'.' + where if where else ''}: {first['msg']}") from None
    names = [m.name for m in manifests]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate agent names: {sorted({n for n in names if names.count(n) > 1})}")
    return manifests


def _module_name(folder: Path) -> str:
    # Unique per path: two search paths may both hold a folder called "billing".
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:10]
    return f"sidebar_agent_{folder.name}_{digest}"


def _import_agent_module(folder: Path) -> ModuleType:
    path = folder / "agent.py"
    name = _module_name(folder)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AgentLoadError(folder, "agent.py cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and typing resolve names through sys.modules
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise AgentLoadError(folder, f"agent.py failed to import: {type(exc).__name__}: {exc}") from exc
    return module


def load_agent_class(folder: Path, manifest: AgentManifest) -> type[BaseAgent]:
    """The one BaseAgent subclass `agent.py` defines, or the stub class for stub kinds."""
    if not (folder / "agent.py").is_file():
        if manifest.kind == "a2a":  # a remote agent: the manifest alone (agents/remote_a2a.py)
            from agents.remote_a2a import RemoteA2AAgent

            return RemoteA2AAgent
        if manifest.kind in STUB_KINDS:
            from agents.stubs import STUB_CLASSES

            return STUB_CLASSES[manifest.kind]
        raise AgentLoadError(
            folder,
            f"kind {manifest.kind!r} needs an agent.py (only {', '.join(STUB_KINDS)} and a2a work without)",
        )
    module = _import_agent_module(folder)
    classes = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, BaseAgent)
        and obj.__module__ == module.__name__  # imported bases (BaseAgent, stubs) do not count
        and not inspect.isabstract(obj)
    ]
    if len(classes) != 1:
        found = ", ".join(sorted(c.__name__ for c in classes)) or "none"
        raise AgentLoadError(folder, f"agent.py must define exactly one BaseAgent subclass (found: {found})")
    return classes[0]


def build_agent(folder: Path, manifest: AgentManifest | None = None) -> BaseAgent:
    manifest = manifest or load_manifest(folder)
    cls = load_agent_class(folder, manifest)
    try:
        return cls(manifest, folder)
    except AgentLoadError:
        raise
    except Exception as exc:
        raise AgentLoadError(folder, f"{cls.__name__}(...) failed: {exc}") from exc


def split_paths(paths: Iterable[str | Path] | str | Path) -> list[str | Path]:
    """Search paths from a list, or from one string in AGENT_PATHS style ("a:b" or "a,b")."""
    if isinstance(paths, Path):
        return [paths]
    if isinstance(paths, str):
        return [p.strip() for p in re.split(f"[,{re.escape(os.pathsep)}]", paths) if p.strip()]
    return [p for p in paths if str(p).strip()]


def _agent_folders(path: Path) -> list[Path]:
    """`path` itself when it is an agent folder, else its non-`_` subfolders with a manifest."""
    if (path / MANIFEST).is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(
        p
        for p in path.iterdir()
        if p.is_dir() and not p.name.startswith(("_", ".")) and (p / MANIFEST).is_file()
    )


class AgentRegistry:
    """Every agent the process knows, discovered once at start-up.

    ``AgentRegistry(extra_paths)`` loads the built-in folders plus each extra path (a directory
    of agent folders, or an agent folder). Iteration and ``names`` cover all agents, disabled ones
    included; ``enabled()`` / ``manifests()`` / ``agents()`` only the enabled ones, which is what
    routing should see. With ``strict=False`` a broken folder is logged and kept in ``errors``
    instead of raising (for a server that must come up with the other agents).
    """

    def __init__(
        self,
        paths: Iterable[str | Path] | str | Path = (),
        *,
        include_builtin: bool = True,
        strict: bool = True,
    ) -> None:
        self.search_paths: tuple[Path, ...] = tuple(
            [BUILTIN_DIR] * include_builtin + [Path(p).expanduser().resolve() for p in split_paths(paths)]
        )
        self.errors: list[AgentLoadError] = []
        self._entries: dict[str, AgentEntry] = {}
        for root in self.search_paths:
            if root != BUILTIN_DIR and not root.exists():
                self._fail(AgentLoadError(root, "agent search path does not exist"), strict)
                continue
            for folder in _agent_folders(root):
                try:
                    self._add(folder, builtin=root == BUILTIN_DIR)
                except AgentLoadError as exc:
                    self._fail(exc, strict)

    def _fail(self, exc: AgentLoadError, strict: bool) -> None:
        if strict:
            raise exc
        log.error("%s", exc)
        self.errors.append(exc)

    def _add(self, folder: Path, *, builtin: bool) -> None:
        manifest = load_manifest(folder)
        other = self._entries.get(manifest.name)
        if other is not None:
            raise AgentLoadError(
                folder, f"duplicate agent name {manifest.name!r}: also defined in {other.folder}", "name"
            )
        agent = build_agent(folder, manifest)
        # An agent may complete its manifest at start-up (an A2A agent's examples from its card).
        self._entries[manifest.name] = AgentEntry(agent.manifest, folder, agent, builtin)

    # -- lookups -------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._entries))

    def get(self, name: str) -> BaseAgent:
        entry = self._entries.get(name)
        if entry is None:
            raise UnknownAgent(f"unknown agent {name!r}; known: {', '.join(self.names) or 'none'}")
        return entry.agent

    def entry(self, name: str) -> AgentEntry:
        self.get(name)  # same error for unknown names
        return self._entries[name]

    def entries(self, *, include_disabled: bool = True) -> list[AgentEntry]:
        return [e for n, e in sorted(self._entries.items()) if include_disabled or e.enabled]

    def enabled(self) -> list[BaseAgent]:
        return [e.agent for e in self.entries(include_disabled=False)]

    def agents(self, *, include_disabled: bool = False) -> list[BaseAgent]:
        return [e.agent for e in self.entries(include_disabled=include_disabled)]

    def manifests(self, *, include_disabled: bool = False) -> list[AgentManifest]:
        return [e.manifest for e in self.entries(include_disabled=include_disabled)]

    def __iter__(self) -> Iterator[BaseAgent]:
        return iter(self.agents(include_disabled=True))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    # -- docs ----------------------------------------------------------------------------------
    def agent_list_markdown(self) -> str:
        """The agent list of docs/agents.md (a drift test keeps the doc equal to this)."""
        lines = ["| Agent | Kind | Enabled | Timeout | Tools | What it is for |", "|---|---|---|---|---|---|"]
        for e in self.entries():
            m = e.manifest
            tools = ", ".join(f"`{t.name}`" for t in m.tools) or "-"
            desc = " ".join(m.description.split()).replace("|", "\\|")
            lines.append(
                f"| `{m.name}` | {m.kind} | {'yes' if m.enabled else 'no'} | {m.timeout_s:g} s | {tools} | {desc} |"
            )
        lines.append("")
        for e in self.entries():
            m = e.manifest
            lines.append(f"### `{m.name}` — {m.title}")
            lines.append("")
            lines.append("Examples: " + "; ".join(f"“{x}”" for x in m.when_to_use[:3]))
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":  # python -m agents.registry > regenerates the list for docs/agents.md
    print(AgentRegistry().agent_list_markdown(), end="")
