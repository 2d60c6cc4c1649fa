"""`sidebar-assistant ingest` — load Zendesk exports, Markdown or a live account into the index.

A thin wrapper: the logic lives in store.ingest; this builds the embedder and index from Settings.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from backend.settings import Settings


def open_index(settings: Settings):  # -> store.knowledge.KnowledgeIndex
    """The index the server reads, with the embedder it uses (MiniLM offline, Vertex otherwise)."""
    from backend.assistant import build_llm
    from backend.assistant import open_index as open_configured_index

    _, embedder = build_llm(settings)
    try:
        return open_configured_index(settings, embedder)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("ingest")
@click.option("--tenant", required=True, help="Tenant (Zendesk account) the documents belong to.")
@click.option(
    "--source",
    "sources",
    type=click.Choice(["help-center", "tickets", "macros", "markdown"]),
    multiple=True,
    help="What PATH holds. With --from-zendesk: which resources to import (default: all three).",
)
@click.option(
    "--from-zendesk",
    is_flag=True,
    help="Import live from ZENDESK_SUBDOMAIN using ZENDESK_EMAIL + ZENDESK_API_TOKEN.",
)
@click.option(
    "--locale",
    default="en-us",
    show_default=True,
    help="Help Center locale (live import) and default locale.",
)
@click.option(
    "--start-time",
    type=int,
    default=0,
    show_default=True,
    help="Incremental ticket export start (unix seconds).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.argument("path", required=False, type=click.Path(path_type=Path))
def ingest(
    tenant: str,
    sources: tuple[str, ...],
    from_zendesk: bool,
    locale: str,
    start_time: int,
    as_json: bool,
    quiet: bool,
    path: Path | None,
) -> None:
    """Ingest Zendesk exports (or a folder of Markdown) at PATH into the knowledge index.

    Idempotent: unchanged documents are skipped, documents that disappeared from the source are
    deleted. Bad records are reported one by one; the rest are still ingested. Exit status 1
    when any record failed."""
    from store.ingest import IngestLimits, ZendeskClient, ZendeskCredentials, import_from_zendesk, ingest_path
    from store.knowledge.types import InvalidQueryError, validate_tenant

    try:
        validate_tenant(tenant)
    except InvalidQueryError as exc:
        raise click.BadParameter(str(exc), param_hint="--tenant") from exc
    if from_zendesk:
        if path is not None:
            raise click.UsageError("--from-zendesk takes no PATH")
        if "markdown" in sources:
            raise click.UsageError("markdown cannot be imported from Zendesk")
        try:
            credentials = ZendeskCredentials.from_env()
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
    else:
        if path is None or len(sources) != 1:
            raise click.UsageError("give exactly one --source and a PATH (or --from-zendesk)")
        if not path.exists():
            raise click.BadParameter(f"{path} does not exist", param_hint="PATH")

    settings = Settings()
    index = open_index(settings)
    try:
        if from_zendesk:
            client = ZendeskClient(credentials)
            click.echo(f"importing from {credentials.root} as {credentials.email}", err=True)
            reports = import_from_zendesk(
                index,
                tenant,
                client,
                sources=sources or ("help-center", "tickets", "macros"),
                locale=locale,
                start_time=start_time,
                progress=not quiet,
                limits=IngestLimits(),
            )
        else:
            reports = [
                ingest_path(index, tenant, sources[0], path, progress=not quiet, default_locale=locale)
            ]
    finally:
        index.close()

    if as_json:
        click.echo(json.dumps([r.as_dict() for r in reports], indent=2))
    else:
        for report in reports:
            click.echo(report.summary())
            for error in report.errors[:50]:
                click.echo(f"  error: {error}", err=True)
            if len(report.errors) > 50:
                click.echo(f"  ... and {len(report.errors) - 50} more errors", err=True)
            if report.sweep_skipped:
                click.echo(f"  removed documents were not deleted: {report.sweep_skipped}", err=True)
    if any(r.errors for r in reports):
        sys.exit(1)
