"""`sidebar-assistant new-agent NAME --kind ...` — scaffold a drop-in agent folder."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("new-agent")
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice(["dumb", "deterministic", "intelligent", "retrieval", "a2a"]),
    default="retrieval",
    show_default=True,
    help="dumb/deterministic/intelligent: a stub that works from the manifest; retrieval: a knowledge "
    "search; a2a: a remote agent reached over A2A (needs --url).",
)
@click.option(
    "--url", default=None, help="For --kind a2a: the remote agent card's URL (or the agent's base URL)."
)
@click.option(
    "--path",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory to create the folder in (default: the built-in agents/ folder). "
    "Pass it in AGENT_PATHS if it is not agents/.",
)
def new_agent(name: str, kind: str, path: Path | None, url: str | None) -> None:
    """Create agents/NAME/ with manifest.yaml, agent.py, prompts/ and README.md (a2a: manifest and README)."""
    from agents.registry import AgentLoadError, AgentRegistry
    from agents.scaffold import ScaffoldError, scaffold_agent

    try:
        folder = scaffold_agent(name, kind, path, url=url)
        registry = AgentRegistry([folder], include_builtin=False)  # proves it loads, agent.py included
    except (ScaffoldError, AgentLoadError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {folder}")
    agent = registry.get(name)
    if kind == "a2a":  # the card was fetched (bounded) while loading: say what came of it
        reason = getattr(agent, "unavailable_reason", None)
        if reason:
            click.echo(
                f"Agent card not usable yet: {reason} (without examples of its own it stays out of routing until a restart finds the card)"
            )
        else:
            click.echo(f"Agent card read: {len(agent.manifest.when_to_use)} routing examples from its skills")
    if kind == "a2a":
        click.echo("Next: edit the TODOs in manifest.yaml (description, auth by secret name), see README.md")
        return
    click.echo("Next: edit the TODOs in manifest.yaml (description, >= 10 real when_to_use examples),")
    click.echo(f"then run: pytest tests/unit/agents/test_contract.py -k {name}")
