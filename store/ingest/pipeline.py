"""Ingest raw records into a KnowledgeIndex: parse, batch, upsert, sweep removed documents."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from store.ingest.readers import RawRecord
from store.ingest.records import (
    IngestLimits,
    RecordError,
    parse_article,
    parse_macro,
    parse_markdown,
    parse_ticket,
    parse_ticket_documents,
    record_label,
)
from store.knowledge.chunking import DocumentTooLargeError
from store.knowledge.types import Document, KnowledgeError, KnowledgeIndex, validate_tenant

_KIND_OF_SOURCE = {"help-center": "article", "tickets": "ticket", "macros": "macro"}


@dataclass(frozen=True)
class IngestError:
    ref: str
    message: str

    def __str__(self) -> str:
        return f"{self.ref}: {self.message}"


@dataclass
class IngestReport:
    source: str
    tenant: str
    added: int = 0
    updated: int = 0
    skipped: int = 0  # unchanged since the last ingest
    deleted: int = 0
    ignored: int = 0  # valid but not knowledge: drafts, unsolved tickets, inactive macros
    chunks_written: int = 0
    errors: list[IngestError] = field(default_factory=list)
    sweep_skipped: str | None = None  # why removed documents were not deleted, if they were not

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "tenant": self.tenant,
            "added": self.added,
            "updated": self.updated,
            "skipped": self.skipped,
            "deleted": self.deleted,
            "ignored": self.ignored,
            "chunks_written": self.chunks_written,
            "errors": [str(e) for e in self.errors],
            "sweep_skipped": self.sweep_skipped,
        }

    def summary(self) -> str:
        return (
            f"{self.source}: added {self.added}, updated {self.updated}, skipped {self.skipped}, "
            f"deleted {self.deleted}, ignored {self.ignored}, errors {len(self.errors)}"
        )


Segments = Mapping[str, Mapping[str, Any]]


def parse_documents(
    source: str,
    record: RawRecord,
    tenant: str,
    limits: IngestLimits,
    default_locale: str,
    segments: Segments | None = None,
) -> list[Document]:
    """Every document of one record: a solved ticket may give two (public, internal notes)."""
    if source == "tickets":
        return parse_ticket_documents(record.raw, tenant, limits, default_locale=default_locale)
    doc = parse_record(source, record, tenant, limits, default_locale, segments)
    return [doc] if doc is not None else []


def parse_record(
    source: str,
    record: RawRecord,
    tenant: str,
    limits: IngestLimits,
    default_locale: str,
    segments: Segments | None = None,
) -> Document | None:
    if source == "help-center":
        return parse_article(record.raw, tenant, limits, segments=segments)
    if source == "tickets":
        return parse_ticket(record.raw, tenant, limits, default_locale=default_locale)
    if source == "macros":
        return parse_macro(record.raw, tenant, limits, default_locale=default_locale)
    if source == "markdown":
        return parse_markdown(record.raw, record.rel_path, tenant, limits, default_locale=default_locale)
    raise ValueError(f"unknown source {source!r}")


def ingest_records(
    index: KnowledgeIndex,
    tenant: str,
    source: str,
    records: Iterable[RawRecord],
    *,
    sweep: bool = True,
    limits: IngestLimits | None = None,
    batch_size: int = 32,
    progress: bool = False,
    total: int | None = None,
    default_locale: str = "en-us",
    explicit_deletes: Iterable[str] = (),
    segments: Segments | None = None,
) -> IngestReport:
    """Upsert every valid record; with `sweep`, delete this source's documents that were not seen.

    `segments`: Help Center user segment definitions by id, for articles restricted to one.

    Each document is written atomically (its chunks replace the old ones in one transaction);
    a failing record is reported and the rest continue."""
    validate_tenant(tenant)
    if source not in {"help-center", "tickets", "macros", "markdown"}:
        raise ValueError(f"unknown source {source!r}")
    lim = limits or IngestLimits()
    report = IngestReport(source=source, tenant=tenant)
    seen: set[str] = set()
    batch: list[tuple[str, Document]] = []
    kind = _KIND_OF_SOURCE.get(source)
    bar = tqdm(
        total=total, desc=f"ingest {source}", unit="doc", file=sys.stderr, disable=not progress, leave=True
    )

    def flush() -> None:
        if not batch:
            return
        _upsert_batch(index, tenant, batch, report)
        batch.clear()

    try:
        for record in records:
            bar.update(1)
            if record.error:
                report.errors.append(IngestError(record.ref, record.error))
                if record.fatal:
                    report.sweep_skipped = f"{record.ref} could not be read"
                _mark_seen_on_error(record, kind, seen, report)
                continue
            try:
                docs = parse_documents(source, record, tenant, lim, default_locale, segments)
            except RecordError as exc:
                report.errors.append(IngestError(record.ref, str(exc)))
                _mark_seen_on_error(record, kind, seen, report)
                continue
            if not docs:
                report.ignored += 1
                continue
            for doc in docs:
                seen.add(doc.id)
                batch.append((record.ref, doc))
            if len(batch) >= batch_size:
                flush()
        flush()
    finally:
        bar.close()

    to_delete = [d for d in dict.fromkeys(explicit_deletes) if d not in seen]
    if sweep and report.sweep_skipped is None:
        existing = index.document_hashes(tenant, source=source)
        to_delete.extend(d for d in existing if d not in seen and d not in to_delete)
    if to_delete:
        report.deleted = index.delete(tenant, to_delete)
    return report


def _mark_seen_on_error(record: RawRecord, kind: str | None, seen: set[str], report: IngestReport) -> None:
    # A broken record may describe a document we indexed before; keep the old copy rather than
    # deleting it. If we cannot tell which document it is, deleting anything would be a guess.
    rid = record_label(record.raw)
    if kind and rid:
        seen.add(f"{kind}:{rid}")
        if kind == "ticket":
            seen.add(f"ticket:{rid}:internal")  # its internal notes document stays too
    elif record.rel_path:
        seen.add(f"article:md/{record.rel_path.rsplit('.', 1)[0]}")
        if report.sweep_skipped is None:  # front matter may name another id: do not guess
            report.sweep_skipped = f"{record.ref} failed and its document id is uncertain"
    elif report.sweep_skipped is None:
        report.sweep_skipped = f"{record.ref} failed and has no usable id"


def _upsert_batch(
    index: KnowledgeIndex, tenant: str, batch: list[tuple[str, Document]], report: IngestReport
) -> None:
    try:
        stats = index.upsert(tenant, [doc for _, doc in batch])
    except (DocumentTooLargeError, KnowledgeError, ValueError) as exc:
        if len(batch) == 1:
            ref, doc = batch[0]
            report.errors.append(IngestError(ref, f"{doc.id}: {exc}"))
            return
        # Isolate the failing document(s); every document is its own transaction anyway.
        for item in batch:
            _upsert_batch(index, tenant, [item], report)
        return
    report.added += stats.added
    report.updated += stats.updated
    report.skipped += stats.skipped
    report.chunks_written += stats.chunks_written
