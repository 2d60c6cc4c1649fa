"""`sidebar-assistant export-routing-feedback` and `shadow-report`: the learning loop's commands
(docs/learning_loop.md). Both read the configured session archive (SQLite or Spanner), the same
one the server writes, and print progress and results on stderr/stdout — never settings values."""

from __future__ import annotations

from pathlib import Path

import click

from backend.settings import Settings


def open_configured_archive(settings: Settings):
    """The server's archive, through the server's own factory. A missing SQLite file is an error
    here (the server would create an empty one; an export from nothing is a wrong path)."""
    from backend.services import open_archive

    if settings.archive_backend == "sqlite" and not settings.sqlite_path.is_file():
        raise click.ClickException(
            f"no session archive at {settings.sqlite_path} (set DATA_DIR, or ARCHIVE_BACKEND=spanner)"
        )
    try:
        return open_archive(settings)
    except ValueError as exc:  # incomplete Spanner settings
        raise click.ClickException(str(exc)) from None


def _since(value: str | None) -> float | None:
    from backend.learning import parse_since

    try:
        return parse_since(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None


def _archive_failed(exc: Exception) -> click.ClickException:
    # The archive's own message (driver errors), bounded; settings never go into it.
    return click.ClickException(f"the session archive could not be read: {str(exc)[:300]}")


@click.command("export-routing-feedback")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    help="Labelled examples: one per turn flagged 'wrong sources' with the sources it should have used.",
)
@click.option(
    "--unlabelled",
    "unlabelled_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Turns flagged 'wrong sources' without a choice of sources, with an empty label for a person to fill in.",
)
@click.option("--since", default=None, help="Only feedback given at or after this ISO 8601 date/time (UTC).")
@click.option("--tenant", default=None, help="Only this tenant's sessions.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default=None,
    help="Default: from the file name (.jsonl or .csv).",
)
def export_routing_feedback(
    out_path: Path, unlabelled_path: Path | None, since: str | None, tenant: str | None, fmt: str | None
) -> None:
    """Write flagged turns as labelled routing examples (text, label, routed, router, confidence, ...).

    The files are accepted by `eval-router --data` and by the FunctionGemma trainer's
    `--include-feedback` once every row has a label.
    """
    from backend.learning import export_feedback, format_for, write_examples
    from store.sessions import ArchiveError

    since_ts = _since(since)
    try:
        out_fmt = format_for(out_path, fmt)  # type: ignore[arg-type]
        unl_fmt = format_for(unlabelled_path, fmt) if unlabelled_path else None  # type: ignore[arg-type]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if unlabelled_path and unlabelled_path.resolve() == out_path.resolve():
        raise click.BadParameter("--unlabelled must be a different file from --out")
    archive = open_configured_archive(Settings())

    def progress(stats, flagged: int) -> None:
        click.echo(f"scanned {stats.sessions} sessions, {flagged} flagged turns so far", err=True)

    try:
        result = export_feedback(archive, tenant=tenant, since=since_ts, progress=progress)
    except ArchiveError as exc:
        raise _archive_failed(exc) from None
    finally:
        archive.close()
    n = write_examples(result.labelled, out_path, out_fmt)
    summary = f"{n} labelled examples → {out_path}"
    if unlabelled_path and unl_fmt:
        m = write_examples(result.unlabelled, unlabelled_path, unl_fmt)
        summary += f"; {m} to label → {unlabelled_path}"
    elif result.unlabelled:
        summary += f"; {len(result.unlabelled)} flagged without sources not written (pass --unlabelled FILE)"
    click.echo(f"scanned {result.stats.sessions} sessions", err=True)
    if result.stats.unreadable:
        click.echo(f"skipped {result.stats.unreadable} unreadable archived sessions", err=True)
    click.echo(summary)


@click.command("shadow-report")
@click.option("--since", default=None, help="Only turns at or after this ISO 8601 date/time (UTC).")
@click.option("--tenant", default=None, help="Only this tenant's sessions.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench/results"),
    show_default=True,
)
@click.option("--name", default="shadow_report", show_default=True, help="Report file name (without suffix).")
def shadow_report(since: str | None, tenant: str | None, out_dir: Path, name: str) -> None:
    """Shadow router vs live router on archived turns: agreement, and accuracy on flagged turns.

    Writes NAME.json and NAME.md. Turns carry a shadow decision while SHADOW_ROUTER is set.
    """
    import json
    import re

    from backend.learning import shadow_markdown, write_text_atomic
    from backend.learning import shadow_report as build_report
    from store.sessions import ArchiveError

    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,100}", name):
        raise click.BadParameter("letters, digits, '_', '-' and '.' only", param_hint="--name")
    since_ts = _since(since)
    settings = Settings()
    archive = open_configured_archive(settings)

    def progress(stats, turns: int) -> None:
        click.echo(f"scanned {stats.sessions} sessions, {turns} turns with a shadow decision", err=True)

    try:
        report = build_report(archive, tenant=tenant, since=since_ts, progress=progress)
    except ArchiveError as exc:
        raise _archive_failed(exc) from None
    finally:
        archive.close()
    report["archive"] = settings.archive_backend
    json_path, md_path = out_dir / f"{name}.json", out_dir / f"{name}.md"
    write_text_atomic(json_path, json.dumps(report, indent=2) + "\n")
    write_text_atomic(md_path, shadow_markdown(report))
    for p in report["pairs"]:
        f = p["flagged"]
        agreement = "–" if p["agreement"] is None else f"{p['agreement']:.1%}"
        accuracy = (
            f"; on {f['n']} flagged turns live {f['live_accuracy']:.1%} vs candidate {f['candidate_accuracy']:.1%}"
            if f["n"]
            else ""
        )
        click.echo(f"{p['live']} vs {p['candidate']}: {p['turns']} turns, agreement {agreement}{accuracy}")
    if not report["pairs"]:
        click.echo("no archived turn has a shadow decision (is SHADOW_ROUTER set?)")
    click.echo(f"→ {md_path}")
