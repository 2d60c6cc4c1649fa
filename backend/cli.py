"""`sidebar-assistant` command line. Each sub-command lives in backend/commands/."""

from __future__ import annotations

import click

from backend.commands.ingest import ingest


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Zendesk sidebar assistant."""


cli.add_command(ingest)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
