"""`sidebar-assistant` command line. Each sub-command lives in backend/commands/."""

from __future__ import annotations

import click

from backend.commands.cluster import run_cluster
from backend.commands.eval_router import eval_router
from backend.commands.ingest import ingest
from backend.commands.learning import export_routing_feedback, shadow_report
from backend.commands.new_agent import new_agent
from backend.commands.serve import dev_token, run
from backend.commands.serve_agents import serve_agents


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Zendesk sidebar assistant."""


for command in (
    run,
    run_cluster,
    dev_token,
    ingest,
    new_agent,
    eval_router,
    export_routing_feedback,
    shadow_report,
    serve_agents,
):
    cli.add_command(command)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
