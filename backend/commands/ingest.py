"""`sidebar-assistant ingest` — placeholder until the store issue lands (owned by the store work)."""

import click


@click.command("ingest")
def ingest() -> None:
    """Ingest Zendesk exports into the knowledge index."""
    raise click.ClickException("ingest is not available yet")
