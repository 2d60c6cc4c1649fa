"""The routing learning loop's offline half: archived sessions → labelled routing examples, and
the shadow router's report (docs/learning_loop.md).

Reads only what the session archive already holds: each assistant reply's `meta.routing` (what
the live router chose), its `meta.shadow` (what a candidate router would have chosen) and the
user's feedback on it (`wrong_sources`, with `expected_agents` when the user picked them).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from backend.protocol import PSEUDO_LABELS
from backend.sessions import Session, ThreadMessage
from store.sessions import SessionArchive, SessionRecord

Format = Literal["jsonl", "csv"]
EXAMPLE_FIELDS = ("text", "label", "routed", "router", "confidence", "session_id", "message_id", "ts")
PROGRESS_EVERY = 1000  # sessions between progress lines


@dataclass(frozen=True)
class FeedbackExample:
    """One flagged turn as a routing example. `label` is empty until a person labels it."""

    text: str
    label: str
    routed: str
    router: str
    confidence: float | None
    session_id: str
    message_id: str
    ts: str


def routing_label(routing: Mapping[str, Any] | None) -> str:
    """A routing decision as a label: agents joined with '+', or respond/clarify; '' if none."""
    if not routing:
        return ""
    action = routing.get("action")
    if action in PSEUDO_LABELS:
        return str(action)
    routes = routing.get("routes")
    if routes is None:  # replies archived before `routes` was recorded
        routes = [r.get("agent") for stage in routing.get("stages") or [] for r in stage]
    return "+".join(str(r) for r in routes if r)


def expected_label(expected: Iterable[str]) -> str:
    return "+".join(expected)


def same_label(a: str, b: str) -> bool:
    """Agents of one stage run in parallel: the order of names in a label carries no meaning."""
    return bool(a) and set(a.split("+")) == set(b.split("+"))


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_since(value: str | None) -> float | None:
    """ISO 8601 date or date-time (naive means UTC) → epoch seconds."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {value[:40]!r} is not an ISO 8601 date or date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _question(session: Session, reply: ThreadMessage) -> str:
    user = session.message(reply.reply_to) if reply.reply_to else None
    return user.text.strip() if user else ""


def flagged_turns(session: Session, *, since: float | None = None) -> Iterator[tuple[FeedbackExample, bool]]:
    """(example, labelled) for every reply of the session flagged `wrong_sources` since `since`."""
    for fb in session.feedback:
        if "wrong_sources" not in (fb.get("reasons") or []):
            continue
        at = float(fb.get("at") or 0)
        if since is not None and at < since:
            continue
        reply = session.message(str(fb.get("message_id", "")))
        if reply is None or reply.role != "assistant":
            continue
        text = _question(session, reply)
        if not text:
            continue
        routing = reply.meta.routing or {}
        confidence = routing.get("confidence")
        expected = [str(a) for a in fb.get("expected_agents") or []]
        yield (
            FeedbackExample(
                text=text,
                label=expected_label(expected),
                routed=routing_label(routing),
                router=str(routing.get("router") or ""),
                confidence=float(confidence) if isinstance(confidence, int | float) else None,
                session_id=session.id,
                message_id=reply.id,
                ts=iso(at) if at else "",
            ),
            bool(expected),
        )


@dataclass
class ScanStats:
    sessions: int = 0
    unreadable: int = 0  # archived documents that no longer parse as a Session


def scan_sessions(
    archive: SessionArchive,
    *,
    tenant: str | None = None,
    since: float | None = None,
    stats: ScanStats | None = None,
    progress: Callable[[ScanStats], None] | None = None,
) -> Iterator[Session]:
    """Archived sessions, parsed; unreadable ones are counted and skipped, never fatal."""
    stats = stats if stats is not None else ScanStats()
    record: SessionRecord
    for record in archive.iter_sessions(tenant=tenant, since=since):
        stats.sessions += 1
        if progress and stats.sessions % PROGRESS_EVERY == 0:
            progress(stats)
        try:
            yield Session.model_validate(record.data)
        except ValidationError:
            stats.unreadable += 1


@dataclass
class ExportResult:
    labelled: list[FeedbackExample] = field(default_factory=list)
    unlabelled: list[FeedbackExample] = field(default_factory=list)
    stats: ScanStats = field(default_factory=ScanStats)


def export_feedback(
    archive: SessionArchive,
    *,
    tenant: str | None = None,
    since: float | None = None,
    progress: Callable[[ScanStats, int], None] | None = None,
) -> ExportResult:
    """Every flagged turn in the archive, split into labelled and unlabelled, oldest first."""
    out = ExportResult()

    def report(stats: ScanStats) -> None:
        if progress:
            progress(stats, len(out.labelled) + len(out.unlabelled))

    # Feedback updates its session, so `since` on the session's update time loses nothing.
    for session in scan_sessions(archive, tenant=tenant, since=since, stats=out.stats, progress=report):
        for example, labelled in flagged_turns(session, since=since):
            (out.labelled if labelled else out.unlabelled).append(example)
    out.labelled.sort(key=lambda e: (e.ts, e.message_id))
    out.unlabelled.sort(key=lambda e: (e.ts, e.message_id))
    return out


def format_for(path: Path, fmt: Format | None) -> Format:
    """The file's format: given, or from its suffix. Readers (eval-router, train) pick the parser
    by suffix, so a mismatch would produce a file they misread: refused."""
    by_suffix: Format | None = {".csv": "csv", ".jsonl": "jsonl"}.get(path.suffix.lower())  # type: ignore[assignment]
    if fmt is None:
        if by_suffix is None:
            raise ValueError(f"{path.name}: name it .jsonl or .csv (or pass --format)")
        return by_suffix
    if by_suffix != fmt:
        raise ValueError(f"{path.name}: --format {fmt} needs a .{fmt} file name (readers go by suffix)")
    return fmt


def write_examples(examples: Iterable[FeedbackExample], path: Path, fmt: Format) -> int:
    """Write atomically (a reader never sees half a file); returns the number of rows."""
    rows = [asdict(e) for e in examples]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=EXAMPLE_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
        text = buf.getvalue()
    else:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    write_text_atomic(path, text)
    return len(rows)


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- shadow report --------------------------------------------------------------------------------
@dataclass
class ShadowPair:
    """One (live router, candidate router) pair's numbers over archived turns."""

    live: str
    candidate: str
    turns: int = 0
    answered: int = 0  # the candidate's decision arrived before the turn ended
    agree: int = 0
    late: int = 0  # answered after the turn ended, stored afterwards
    errors: int = 0
    pending: int = 0
    skipped: int = 0
    flagged: int = 0  # turns flagged wrong_sources with the expected sources named
    live_correct: int = 0
    candidate_correct: int = 0
    disagreements: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        def rate(n: int, d: int) -> float | None:
            return round(n / d, 4) if d else None

        return {
            "live": self.live,
            "candidate": self.candidate,
            "turns": self.turns,
            "answered": self.answered,
            "agreement": rate(self.agree, self.answered),
            "late": self.late,
            "errors": self.errors,
            "pending": self.pending,
            "skipped": self.skipped,
            "flagged": {
                "n": self.flagged,
                "live_accuracy": rate(self.live_correct, self.flagged),
                "candidate_accuracy": rate(self.candidate_correct, self.flagged),
            },
            # Label pairs only (never question text): where the two routers part ways most.
            "top_disagreements": [
                {"live": k.split(" → ")[0], "candidate": k.split(" → ")[1], "n": n}
                for k, n in self.disagreements.most_common(10)
            ],
        }


def shadow_report(
    archive: SessionArchive,
    *,
    tenant: str | None = None,
    since: float | None = None,
    progress: Callable[[ScanStats, int], None] | None = None,
) -> dict[str, Any]:
    """Agreement of the shadow (candidate) router with the live one on every archived reply that
    has `meta.shadow`, and both routers' accuracy on replies whose feedback named the sources."""
    pairs: dict[tuple[str, str], ShadowPair] = {}
    stats = ScanStats()
    seen = 0

    def report(s: ScanStats) -> None:
        if progress:
            progress(s, seen)

    for session in scan_sessions(archive, tenant=tenant, since=since, stats=stats, progress=report):
        expected = {
            str(fb.get("message_id")): expected_label(fb.get("expected_agents") or [])
            for fb in session.feedback
            if "wrong_sources" in (fb.get("reasons") or []) and fb.get("expected_agents")
        }
        for reply in session.thread:
            shadow = reply.meta.shadow
            if reply.role != "assistant" or not isinstance(shadow, dict):
                continue
            if since is not None and reply.created_at < since:
                continue
            seen += 1
            routing = reply.meta.routing or {}
            live_name = str(routing.get("router") or "unknown")
            pair = pairs.setdefault(
                (live_name, str(shadow.get("router"))), ShadowPair(live_name, str(shadow.get("router")))
            )
            pair.turns += 1
            status = shadow.get("status")
            if status == "error":
                pair.errors += 1
            elif status == "pending":
                pair.pending += 1
            elif status == "skipped":
                pair.skipped += 1
            live_label, cand_label = routing_label(routing), routing_label(shadow)
            if status == "ok":
                pair.answered += 1
                pair.late += bool(shadow.get("late"))
                pair.agree += bool(shadow.get("agrees"))
                if not shadow.get("agrees"):
                    pair.disagreements[f"{live_label or '-'} → {cand_label or '-'}"] += 1
            gold = expected.get(reply.id)
            if gold:
                # A candidate that did not answer in time counts as wrong: promotion needs answers.
                pair.flagged += 1
                pair.live_correct += same_label(gold, live_label)
                pair.candidate_correct += status == "ok" and same_label(gold, cand_label)
    return {
        "generated_at": iso(datetime.now(UTC).timestamp()),
        "tenant": tenant,
        "since": iso(since) if since is not None else None,
        "sessions": stats.sessions,
        "unreadable_sessions": stats.unreadable,
        "turns_with_shadow": seen,
        "pairs": [p.as_dict() for p in sorted(pairs.values(), key=lambda p: -p.turns)],
    }


def shadow_markdown(report: dict[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "–" if v is None else f"{v:.1%}"

    scope = ", ".join(
        x for x in (f"tenant {report['tenant']}" if report["tenant"] else "", report["since"] or "") if x
    )
    lines = [
        "# Shadow router report",
        "",
        f"Generated {report['generated_at']} by `sidebar-assistant shadow-report` from "
        f"{report['sessions']} archived sessions{f' ({scope})' if scope else ''}: "
        f"{report['turns_with_shadow']} replies carry a shadow decision.",
        "",
        "Agreement is over turns the candidate answered in time (same action, same set of agents). "
        "Accuracy is on turns flagged *wrong sources* whose feedback named the sources that should "
        "have been used — by construction, turns the live router got wrong, so its accuracy there is "
        "low; the question is how many the candidate gets right (docs/learning_loop.md).",
        "",
        "| live | candidate | turns | answered (late) | agreement | errors | pending | skipped "
        "| flagged | live accuracy | candidate accuracy |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in report["pairs"]:
        f = p["flagged"]
        lines.append(
            f"| {p['live']} | {p['candidate']} | {p['turns']} | {p['answered']} ({p['late']}) "
            f"| {pct(p['agreement'])} "
            f"| {p['errors']} | {p['pending']} | {p['skipped']} | {f['n']} | {pct(f['live_accuracy'])} "
            f"| {pct(f['candidate_accuracy'])} |"
        )
    for p in report["pairs"]:
        if p["top_disagreements"]:
            lines += [
                "",
                f"Most frequent disagreements, {p['live']} → {p['candidate']}:",
                "",
                "| live chose | candidate chose | turns |",
                "| --- | --- | --- |",
                *[f"| {d['live']} | {d['candidate']} | {d['n']} |" for d in p["top_disagreements"]],
            ]
    if not report["pairs"]:
        lines += ["", "No archived reply has a shadow decision: set SHADOW_ROUTER and let it run."]
    return "\n".join(lines) + "\n"
