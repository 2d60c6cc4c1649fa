"""The demo tenant `make run` serves: store/demo_data/ ingested idempotently on start."""

from __future__ import annotations

from pathlib import Path

from store.ingest import IngestError, IngestReport, ingest_path
from store.knowledge.types import KnowledgeIndex

DEMO_DATA_DIR = Path(__file__).resolve().parent / "demo_data"
# (source, path under the data dir) in ingest order: articles first, they are what tickets cite.
DEMO_SOURCES = (
    ("help-center", "help_center/articles.json"),
    ("tickets", "tickets/tickets.json"),
    ("macros", "macros/macros.json"),
)


def ensure_demo_tenant(
    index: KnowledgeIndex, tenant: str = "demo", *, progress: bool = True, data_dir: str | Path | None = None
) -> dict[str, IngestReport]:
    """Ingest the demo data set into `tenant`. Cheap when nothing changed: unchanged documents
    are recognised by content hash before any chunking or embedding. Missing files are skipped
    (reported with an error) so a partial data set still serves."""
    root = Path(data_dir) if data_dir is not None else DEMO_DATA_DIR
    reports: dict[str, IngestReport] = {}
    for source, rel in DEMO_SOURCES:
        path = root / rel
        if not path.exists():
            report = IngestReport(source=source, tenant=tenant)

            report.errors.append(IngestError(str(path), "demo data file is missing"))
            reports[source] = report
            continue
        reports[source] = ingest_path(index, tenant, source, path, progress=progress)
    return reports
