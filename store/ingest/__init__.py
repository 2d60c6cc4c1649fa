"""Ingest Zendesk exports (files or the live API) and Markdown folders into a KnowledgeIndex."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from store.ingest.pipeline import IngestError, IngestReport, ingest_records
from store.ingest.readers import RawRecord, read_export, read_markdown_dir, read_user_segments
from store.ingest.records import SOURCES, IngestLimits, RecordError
from store.ingest.zendesk_api import (
    UserSegments,
    ZendeskApiError,
    ZendeskClient,
    ZendeskCredentials,
    article_records,
    macro_records,
    ticket_records,
)
from store.knowledge.types import KnowledgeIndex

LIVE_SOURCES = ("help-center", "tickets", "macros")


def ingest_path(
    index: KnowledgeIndex,
    tenant: str,
    source: str,
    path: str | Path,
    *,
    progress: bool = False,
    limits: IngestLimits | None = None,
    default_locale: str = "en-us",
) -> IngestReport:
    """Ingest one export file/folder (`source` in SOURCES). Idempotent: a re-run of unchanged
    input only skips; documents of this source missing from the input are deleted."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    lim = limits or IngestLimits()
    reader = read_markdown_dir(path, lim) if source == "markdown" else read_export(path, source, lim)
    records = list(reader)  # files are size-capped; knowing the total gives an honest progress bar
    return ingest_records(
        index,
        tenant,
        source,
        records,
        progress=progress,
        total=len(records),
        limits=lim,
        default_locale=default_locale,
        segments=read_user_segments(path) if source == "help-center" else None,
    )


def import_from_zendesk(
    index: KnowledgeIndex,
    tenant: str,
    client: ZendeskClient,
    *,
    sources: tuple[str, ...] = LIVE_SOURCES,
    locale: str = "en-us",
    start_time: int = 0,
    progress: bool = False,
    limits: IngestLimits | None = None,
) -> list[IngestReport]:
    """Live import. Articles and macros are full listings (removed ones are deleted); tickets use
    the incremental export from `start_time` (0 = everything, which also sweeps removed tickets)."""
    reports: list[IngestReport] = []
    for source in sources:
        if source not in LIVE_SOURCES:
            raise ValueError(f"source {source!r} cannot be imported live; expected {', '.join(LIVE_SOURCES)}")
    for source in sources:
        removed: list[str] = []
        segments = None
        if source == "help-center":
            records = article_records(client, locale)
            segments = UserSegments(client)
        elif source == "macros":
            records = macro_records(client)
        else:
            records = ticket_records(client, start_time, removed)
        reports.append(
            ingest_records(
                index,
                tenant,
                source,
                _guarded(records, f"zendesk {source}"),
                sweep=source != "tickets" or start_time == 0,
                progress=progress,
                limits=limits,
                default_locale=locale,
                explicit_deletes=removed,
                segments=segments,
            )
        )
    return reports


def _guarded(records: Iterator[RawRecord], label: str) -> Iterator[RawRecord]:
    """Turn an API failure mid-listing into a fatal record: pages already read stay ingested,
    and nothing is swept, because the listing is incomplete."""
    try:
        yield from records
    except ZendeskApiError as exc:
        yield RawRecord(label, error=str(exc), fatal=True)


__all__ = [
    "LIVE_SOURCES",
    "SOURCES",
    "IngestError",
    "IngestLimits",
    "IngestReport",
    "RawRecord",
    "RecordError",
    "ZendeskApiError",
    "ZendeskClient",
    "ZendeskCredentials",
    "import_from_zendesk",
    "ingest_path",
    "ingest_records",
    "read_export",
    "read_markdown_dir",
]
