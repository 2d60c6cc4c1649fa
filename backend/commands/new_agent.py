"""`sidebar-assistant new-agent NAME --kind ...` — scaffold a drop-in agent folder."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("new-agent")
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice(["dumb", "deterministic", "intelligent", "retrieval"]),
    default="retrieval",
    show_default=True,
    help="dumb/deterministic/intelligent: a stub that works from the manifest; retrieval: a knowledge search.",
)
@click.option(
    "--path",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory to create the folder in (default: the built-in agents/ folder). "
    "Pass it in AGENT_PATHS if it is not agents/.",
)
def new_agent(name: str, kind: str, path: Path | None) -> None:
    """Create agents/NAME/ with manifest.yaml, agent.py, prompts/ and README.md."""
    from agents.registry import AgentLoadError, AgentRegistry
    from agents.scaffold import ScaffoldError, scaffold_agent

    try:
        folder = scaffold_agent(name, kind, path)
        AgentRegistry([folder], include_builtin=False)  # proves it loads, agent.py included
    except (ScaffoldError, AgentLoadError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {folder}")
    click.echo("Next: edit the TODOs in manifest.yaml (description, >= 10 real when_to_use examples),")
    click.echo(f"then run: pytest tests/unit/agents/test_contract.py -k {name}")
