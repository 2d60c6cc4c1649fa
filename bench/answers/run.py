"""Run the answer benchmark: every case through the real Socket.IO path, scored, reported.

By default the real app (create_app + the orchestrator, an embedded Redis, the demo tenant's index)
is started in this process on a free port; ``--url`` points at a running assistant instead. Either
way the runner is only a sidebar: it connects with a dev token, joins with the sidebar's own ticket
payload, sends the turns and reads what comes back (chat:delta, chat:done).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from backend import protocol
from bench.common import RESULTS, add_report_args, write_report
from testkit.client import SidebarClient

from . import score
from .cases import BRIEF_ASK, CATEGORIES, DATA_DIR, Case, load_cases
from .payload import in_customer_words, sidebar_ticket, ticketless

ROOT = Path(__file__).resolve().parents[2]
TENANT = "demo"
SECRET = "answers-bench-secret-not-for-production"
# Incremental (content hashes): a warm cache only verifies. Separate per embedder: the local
# MiniLM index and a Vertex-embedded one have different vectors.
INDEX_DIRS = {
    "local": ROOT / ".pytest_cache" / "demo_index",
    "vertex": ROOT / ".pytest_cache" / "demo_index_vertex",
}
TURN_TIMEOUT_S = 90.0
ANSWER_TRIM = 400

Mint = Callable[[str], str]  # user id → dev token


# --- the client -----------------------------------------------------------------------------


class TimedClient(SidebarClient):
    """SidebarClient that also notes when each event arrived (perf_counter), for latencies."""

    def __init__(self) -> None:
        self.times: list[float] = []
        super().__init__()

    def _recorder(self, name: str):
        def record(data: Any = None) -> None:
            with self._cond:
                self.events.append((name, data))
                self.times.append(time.perf_counter())
                self._cond.notify_all()

        return record

    def send(self, message_id: str, text: str, timeout: float) -> dict[str, Any]:
        """One turn: emit chat:message, wait for its chat:done (or chat:error); client-side times."""
        with self._cond:
            start = len(self.events)
        sent = time.perf_counter()
        self.emit(protocol.MESSAGE, {"id": message_id, "text": text})
        deadline = sent + timeout
        first_delta = None
        with self._cond:
            i = start
            while True:
                while i < len(self.events):
                    name, data = self.events[i]
                    at = self.times[i]
                    i += 1
                    mine = isinstance(data, dict) and data.get("id") == message_id
                    if name == protocol.DELTA and mine and first_delta is None:
                        first_delta = at
                    elif name == protocol.DONE and mine:
                        return {
                            "done": data,
                            "first_token_s": _since(sent, first_delta),
                            "total_s": at - sent,
                        }
                    elif name == protocol.ERROR and (mine or not (isinstance(data, dict) and data.get("id"))):
                        err = data if isinstance(data, dict) else {"code": data}
                        why = f"chat:error {err.get('code')}: {str(err.get('message') or '')[:200]}"
                        return {"error": why, "first_token_s": _since(sent, first_delta)}
                left = deadline - time.perf_counter()
                if left <= 0:
                    return {
                        "error": f"no chat:done within {timeout:.0f} s",
                        "first_token_s": _since(sent, first_delta),
                    }
                self._cond.wait(left)

    def brief_record(self, joined_at: float, timeout: float) -> dict[str, Any]:
        """The brief the sidebar got on join, as a turn's record: what it states of the customer's
        ask and the records' state (the scored text), the sources it read (cited), join → brief:done."""
        try:
            done = self.wait_for(protocol.BRIEF_DONE, timeout=timeout)
        except TimeoutError:
            failed = self.of(protocol.BRIEF_ERROR)
            why = (
                f"brief:error {failed[0].get('code')}" if failed else f"no brief:done within {timeout:.0f} s"
            )
            return {"error": why}
        with self._cond:
            at = next(
                t for (n, _), t in zip(self.events, self.times, strict=True) if n == protocol.BRIEF_DONE
            )
        brief = done.get("brief") or {}
        return {
            "text": brief_scored_text(brief),
            "citations": [
                {"id": s, "kind": s.split(":", 1)[0], "cited": True} for s in brief.get("sources") or []
            ],
            "server_timings": brief.get("timings"),
            # Not `total_s`: the answer turns' latency targets are about answers (the brief's
            # own times are in bench/results/brief.md).
            "brief_s": round(at - joined_at, 4),
            "first_token_s": None,
            "error": None,
        }


def brief_scored_text(brief: dict[str, Any]) -> str:
    """What a brief case scores: the customer's ask and the state line of each record it found."""
    ask = (brief.get("recap") or {}).get("ask") or ""
    states = [f"{e.get('kind', '').title()}: {e.get('state', '')}" for e in brief.get("entities") or []]
    return "\n".join([f"Customer wants: {ask}", *states])


def _since(t0: float, t: float | None) -> float | None:
    return None if t is None else round(t - t0, 4)


def _citation(c: dict[str, Any]) -> dict[str, Any]:
    return {k: c.get(k) for k in ("n", "id", "kind", "title", "cited")}


def join_payload(case: Case, key: str) -> dict[str, Any]:
    if case.ticket is None:
        return ticketless(key)
    ticket = sidebar_ticket(case.ticket)
    if case.customer_text is not None:
        ticket = in_customer_words(ticket, case.customer_text.subject, case.customer_text.description)
    return ticket


def run_case(
    case: Case, url: str, mint: Mint, user_id: str, *, timeout: float = TURN_TIMEOUT_S
) -> dict[str, Any]:
    """One case on its own connection and session (its own user id: sessions are per user and
    ticket), turns in order. Returns the case's record with every turn's verdict."""
    turns: list[dict[str, Any]] = []
    client = TimedClient()
    failure = None
    joined_at = time.perf_counter()
    try:
        client.connect(url, mint(user_id))
        joined_at = time.perf_counter()
        client.join(join_payload(case, user_id), timeout=30)
    except Exception as exc:  # connection or join refused: every turn is unanswered
        failure = f"{type(exc).__name__}: {exc}"[:300]
    try:
        for k, turn in enumerate(case.turns, 1):
            rec: dict[str, Any] = {"ask": turn.ask, "text": "", "citations": [], "routing": None}
            if failure is None and turn.ask == BRIEF_ASK:
                rec.update(client.brief_record(joined_at, timeout))
            elif failure is None:
                got = client.send(f"t{k}", turn.ask, timeout)
                done = got.get("done")
                if done:
                    message = done.get("message") or {}
                    rec.update(
                        text=message.get("text") or "",
                        citations=[_citation(c) for c in done.get("citations") or []],
                        routing=done.get("routing"),
                        server_timings=done.get("timings"),
                        total_s=round(got["total_s"], 4),
                    )
                rec["first_token_s"] = got.get("first_token_s")
                rec["error"] = got.get("error")
            else:
                rec["error"] = failure
            verdict = score.score_turn(turn, rec["text"], rec["citations"], rec["routing"], rec.get("error"))
            rec["verdict"] = verdict.as_dict()
            turns.append(rec)
    finally:
        client.disconnect()
    record = {
        "id": case.id,
        "split": case.split,
        "category": case.category,
        "ticket": case.ticket,
        "ci": case.ci,
        "turns": turns,
    }
    record["right"] = score.case_right(record)
    return record


def run_cases(
    cases: Sequence[Case],
    url: str,
    mint: Mint,
    *,
    workers: int = 1,
    progress: bool = True,
    warmup: bool = True,
    timeout: float = TURN_TIMEOUT_S,
) -> list[dict[str, Any]]:
    """Every case (in parallel over ``workers`` connections), results in the cases' order."""
    tag = secrets.token_hex(3)  # fresh users per run: a running server keeps old sessions
    if warmup:
        # The first turn pays for lazy model and router loading; no case should carry that.
        c = TimedClient()
        try:
            c.connect(url, mint(f"bench-{tag}-warmup"))
            c.join(ticketless(f"{tag}-warmup"), timeout=30)
            c.send("w1", "hello", timeout=120)
        finally:
            c.disconnect()
    results: list[dict[str, Any] | None] = [None] * len(cases)
    lock = threading.Lock()
    finished = [0]
    t0 = time.monotonic()

    def one(i: int) -> None:
        r = run_case(cases[i], url, mint, f"bench-{tag}-{i}", timeout=timeout)
        results[i] = r
        with lock:
            finished[0] += 1
            if progress:
                times = [t.get("total_s") or 0.0 for t in r["turns"]]
                mark = "ok  " if r["right"] else "FAIL"
                print(
                    f"[{finished[0]:>3}/{len(cases)}] {mark} {r['id']} ({r['category']}, {r['split']}) "
                    f"{sum(times):.2f} s  [{time.monotonic() - t0:.0f} s]",
                    flush=True,
                )

    with ThreadPoolExecutor(max(1, workers)) as pool:
        list(pool.map(one, range(len(cases))))
    return [r for r in results if r is not None]


# --- the server -----------------------------------------------------------------------------


def vertex_skip_reason() -> str | None:
    """Why the Vertex backend cannot run here (None: it can)."""
    if not os.environ.get("GOOGLE_CLOUD_PROJECT"):
        return "GOOGLE_CLOUD_PROJECT is not set"
    try:
        import google.auth

        google.auth.default()
    except Exception as exc:
        return f"no application default credentials ({type(exc).__name__})"
    return None


@contextmanager
def local_server(
    backend: str = "local", index_dir: Path | None = None, *, briefs: bool = True
) -> Iterator[tuple[str, Mint]]:
    """The real app in this process on a free port: orchestrator, embedded Redis, demo index.
    `briefs`: the ticket brief on every join, as in production (off: to measure its effect)."""
    from backend.app import create_app
    from backend.assistant import build_assistant, build_llm
    from backend.auth import DevTokenAuthenticator
    from backend.redis_embedded import EmbeddedRedis
    from backend.settings import Settings
    from store.demo import ensure_demo_tenant
    from store.factory import KNOWLEDGE_FILENAME, open_knowledge_index
    from testkit.servers import LiveServer, stop_redis

    work = Path(tempfile.mkdtemp(prefix="answers-bench-"))
    redis_server = EmbeddedRedis(work / "redis", persist=False)
    try:
        settings = Settings(
            _env_file=None,
            redis_url=redis_server.url,
            data_dir=work / "data",
            secret_key=SECRET,
            turn_handler="orchestrator",
            brief_enabled=briefs,
            llm_backend=backend,
            rate_limit_per_minute=0,  # a benchmark is one user asking hundreds of questions
            turn_timeout_seconds=TURN_TIMEOUT_S,
            log_level="WARNING",
            log_format="text",
        )
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        t0 = time.monotonic()
        llm, embedder = build_llm(settings)
        index_dir = Path(index_dir or INDEX_DIRS[backend])
        index_dir.mkdir(parents=True, exist_ok=True)
        index = open_knowledge_index("sqlite", embedder=embedder, sqlite_path=index_dir / KNOWLEDGE_FILENAME)
        ensure_demo_tenant(index, TENANT, progress=False)
        handler = build_assistant(settings, llm=llm, index=index)
        print(f"assistant ready in {time.monotonic() - t0:.1f} s (index {index_dir})", flush=True)
        tokens = DevTokenAuthenticator(SECRET, 24 * 3600)
        try:
            with LiveServer(create_app(settings, handler=handler)) as srv:
                yield srv.url, lambda user: tokens.mint(TENANT, user)
        finally:
            index.close()
    finally:
        # Socket.IO's Redis listener outlives the server by a moment; its reconnect complaints
        # about the Redis we stop on purpose are noise.
        logging.getLogger("socketio.server").setLevel(logging.CRITICAL)
        stop_redis(redis_server)


# --- the report -----------------------------------------------------------------------------


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


def _ms(v: float | None) -> str:
    return "–" if v is None or v != v else f"{v:,.0f}"


def _met(m: bool | None) -> str:
    return "–" if m is None else "met" if m else "**missed**"


def _trim(text: str, n: int = ANSWER_TRIM) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def build_markdown(
    summary: dict[str, Any], results: Sequence[dict[str, Any]], meta: dict[str, Any], compare: str = ""
) -> str:
    splits = [s for s in ("dev", "test") if s in summary["by_split"]]
    targets = {s: score.target_status(summary["by_split"][s]) for s in splits}
    lines = [
        f"# Answer benchmark{' (' + meta['label'] + ')' if meta.get('label') else ''}",
        "",
        "{machine}"
        f"Backend `{meta['backend']}`, code at `{meta['commit']}`, {meta['cases']} cases "
        f"(case files {meta.get('cases_digest', '?')}; "
        f"{meta['selection']}), {meta['workers']} worker(s), {meta['runtime_s']:.0f} s in all. "
        "Every turn went through the real Socket.IO path (session:join with the sidebar's ticket "
        "payload, chat:message → chat:done); latencies are client-side. Scoring: bench/answers/score.py; "
        "cases: bench/answers/data/.",
        "",
        "## Headline",
        "",
        "| metric | " + " | ".join(splits) + " | target (test) | test |",
        "|---|" + "---:|" * len(splits) + "---|---|",
    ]

    def row(label: str, key: str, fmt: Callable[[Any], str], target: str | None = None) -> None:
        vals = []
        for s in splits:
            m = summary["by_split"][s]
            v = m
            for part in key.split("."):
                v = v.get(part) if isinstance(v, dict) else None
            vals.append(fmt(v))
        t = targets.get("test", {}).get(target or "", None) if target else None
        lines.append(
            f"| {label} | "
            + " | ".join(vals)
            + f" | {t['target'] if t else ''} | {_met(t['met']) if t else ''} |"
        )

    row("cases", "cases", str)
    row("case accuracy (all scored turns right)", "case_accuracy", _pct)
    row("fact accuracy", "fact_accuracy", _pct, "fact_accuracy")
    row("wrong-fact rate (scored turns)", "wrong_fact_rate", _pct, "wrong_fact_rate")
    row("wrong-fact turns", "wrong_fact_turns", str)
    row("citation precision", "citation_precision", _pct)
    row("decline precision", "decline_precision", _pct)
    row("decline recall", "decline_recall", _pct, "decline_recall")
    row("first token p50 (ms)", "first_token_ms.p50", _ms)
    row("first token p95 (ms)", "first_token_ms.p95", _ms)
    row("turn p50 (ms)", "total_ms.p50", _ms)
    row("turn p95 (ms)", "total_ms.p95", _ms, "p95_total_ms")
    row("turns", "turns", str)
    for s_label, key in (
        ("scored turns", "scored_turns"),
        ("fact turns", "fact_turns"),
        ("decline turns", "decline_turns"),
        ("turns without an answer", "errors"),
    ):
        row(s_label, key, str)
    lines += [
        "",
        f"Targets are the issue's, on the test split; p95 is of a whole turn on this machine "
        f"({meta['nproc']} cores).",
        "",
        "## Per category",
        "",
        *([f"![fact accuracy per category]({meta['chart']})", ""] if meta.get("chart") else []),
        "| category | split | cases | case acc. | fact acc. | wrong facts | citation precision | "
        "decline recall | decline precision | turn p95 (ms) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cat in CATEGORIES:
        for s in splits:
            m = summary["by_category"].get(cat, {}).get(s)
            if not m:
                continue
            lines.append(
                f"| {cat} | {s} | {m['cases']} | {_pct(m['case_accuracy'])} | {_pct(m['fact_accuracy'])} | "
                f"{m['wrong_fact_turns']} | {_pct(m['citation_precision'])} | {_pct(m['decline_recall'])} | "
                f"{_pct(m['decline_precision'])} | {_ms(m['total_ms']['p95'])} |"
            )
    if compare:
        lines += ["", compare.rstrip()]
    failures = [r for r in results if not r["right"]]
    lines += ["", f"## Failures ({len(failures)} of {len(results)} cases)", ""]
    for r in failures:
        ticket = f"ticket #{r['ticket']}" if r["ticket"] is not None else "no ticket"
        lines.append(f"### `{r['id']}` ({r['category']}, {r['split']}, {ticket})")
        lines.append("")
        for k, t in enumerate(r["turns"], 1):
            v = t["verdict"]
            mark = {True: "right", False: "**wrong**", None: "context"}[v["right"]]
            lines.append(f"{k}. Q: “{_md_cell(t['ask'])}” — {mark}")
            lines.append(f"   A: {_md_cell(_trim(t['text'])) or '_(no answer)_'}")
            if v["cited"]:
                lines.append(f"   cited: {', '.join(f'`{c}`' for c in v['cited'])}")
            if v["reasons"] and v["right"] is not True:
                lines.append(f"   why: {'; '.join(v['reasons'])}")
        lines.append("")
    return "\n".join(lines) + "\n"


def category_table(results: Sequence[dict[str, Any]], *, failures: bool = True) -> str:
    """A plain-text per-category summary (test output, terminal), failures named."""
    summary = score.summarise(results)
    rows = [
        f"{'category':<13} {'split':<5} {'cases':>5} {'case':>7} {'fact':>7} {'wrong':>5} {'decl.rec':>8}"
    ]
    for cat, splits in summary["by_category"].items():
        for split, m in splits.items():
            rows.append(
                f"{cat:<13} {split:<5} {m['cases']:>5} {_pct(m['case_accuracy']):>7} "
                f"{_pct(m['fact_accuracy']):>7} {m['wrong_fact_turns']:>5} {_pct(m['decline_recall']):>8}"
            )
    for r in results if failures else ():
        if r["right"]:
            continue
        for t in r["turns"]:
            if t["verdict"]["right"] is False:
                rows.append(
                    f"FAIL {r['id']}: {t['ask']!r} -> {_trim(t['text'], 160)!r}: {'; '.join(t['verdict']['reasons'])}"
                )
    return "\n".join(rows)


def write_chart(summary: dict[str, Any], path: Path, title: str) -> bool:
    """Fact accuracy per category, dev vs test (decline recall for unanswerable). Needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    cats = [c for c in CATEGORIES if c in summary["by_category"]]
    if not cats:
        return False

    def value(cat: str, split: str) -> float | None:
        m = summary["by_category"][cat].get(split) or {}
        v = m.get("fact_accuracy") if m.get("fact_turns") else m.get("decline_recall")
        return None if v is None else 100 * v

    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.4
    xs = range(len(cats))
    for j, split in enumerate(("dev", "test")):
        vals = [value(c, split) for c in cats]
        bars = ax.bar([x + (j - 0.5) * width for x in xs], [v or 0.0 for v in vals], width, label=split)
        # A label on every bar: a measured 0 % must not look like a category with no cases.
        ax.bar_label(bars, labels=["" if v is None else f"{v:.0f}" for v in vals], fontsize=7)
    ax.axhline(90, color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(cats, rotation=30, ha="right")
    ax.set_ylim(0, 110)
    ax.set_ylabel("fact accuracy (%)")
    ax.set_title(f"{title}: fact accuracy per category (unanswerable: decline recall)")
    ax.legend(loc="upper center", ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        return f"{head}{' (with uncommitted changes)' if dirty else ''}"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def rescore(results: Sequence[dict[str, Any]], cases: Sequence[Case]) -> list[dict[str, Any]]:
    """Earlier results judged by today's case definitions: the recorded answers, citations and
    routing are scored again. Cases that are gone, or whose questions changed, are left out."""
    by_id = {c.id: c for c in cases}
    out = []
    for r in results:
        case = by_id.get(r["id"])
        if case is None or [t.ask for t in case.turns] != [t["ask"] for t in r["turns"]]:
            continue
        turns = []
        for turn, rec in zip(case.turns, r["turns"], strict=True):
            v = score.score_turn(
                turn, rec.get("text") or "", rec.get("citations") or [], rec.get("routing"), rec.get("error")
            )
            turns.append({**rec, "verdict": v.as_dict()})
        new = {**r, "split": case.split, "category": case.category, "turns": turns}
        new["right"] = score.case_right(new)
        out.append(new)
    return out


def compare_section(results: Sequence[dict[str, Any]], baseline: Path, cases: Sequence[Case]) -> str:
    """Before → after per split and category, both sides scored with today's cases, on the cases
    both runs asked with the same questions."""
    import json

    raw = json.loads(baseline.read_text(encoding="utf-8"))
    before = rescore(raw.get("cases") or [], cases)
    common = {r["id"] for r in before} & {r["id"] for r in results}
    if not common:
        return ""
    b = score.summarise([r for r in before if r["id"] in common])
    a = score.summarise([r for r in results if r["id"] in common])
    bm = raw.get("meta") or {}
    lines = [
        "## Before → after",
        "",
        f"Before: `{baseline.name}` (code at `{bm.get('commit', '?')}`, run {raw.get('when', '?')}); its "
        f"recorded answers are scored again with today's cases. {len(common)} cases asked in both runs.",
        "",
        "| category | split | cases | fact acc. before | after | case acc. before | after | wrong facts before | after |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [("**all**", s, b["by_split"][s], a["by_split"][s]) for s in ("dev", "test") if s in a["by_split"]]
    rows += [
        (cat, s, b["by_category"][cat][s], a["by_category"][cat][s])
        for cat in CATEGORIES
        for s in ("dev", "test")
        if s in a["by_category"].get(cat, {}) and s in b["by_category"].get(cat, {})
    ]
    for cat, split, mb, ma in rows:
        fb, fa = (
            (mb["fact_accuracy"], ma["fact_accuracy"])
            if ma["fact_turns"]
            else (mb["decline_recall"], ma["decline_recall"])
        )
        note = "" if ma["fact_turns"] else " (decline recall)"
        lines.append(
            f"| {cat}{note} | {split} | {ma['cases']} | {_pct(fb)} | {_pct(fa)} | {_pct(mb['case_accuracy'])} | "
            f"{_pct(ma['case_accuracy'])} | {mb['wrong_fact_turns']} | {ma['wrong_fact_turns']} |"
        )
    return "\n".join(lines) + "\n"


def report(
    results: list[dict[str, Any]], meta: dict[str, Any], out: str, compare: str = "", out_dir: Path = RESULTS
) -> tuple[Path, Path]:
    summary = score.summarise(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    chart = out_dir / f"{out}.png"
    if write_chart(summary, chart, meta.get("label") or out):
        meta["chart"] = chart.name
    data = {
        "meta": meta,
        "targets": {
            s: score.target_status(summary["by_split"][s])
            for s in ("dev", "test")
            if s in summary["by_split"]
        },
        "summary": summary,
        "cases": results,
    }
    return write_report(out, data, build_markdown(summary, results, meta, compare), out_dir)


# --- command line ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.answers", description=__doc__.splitlines()[0])
    p.add_argument("--split", choices=("dev", "test", "all"), default="all")
    p.add_argument("--category", choices=CATEGORIES, action="append", help="only this category (repeatable)")
    p.add_argument("--ci-only", action="store_true", help="only the cases marked ci: true")
    p.add_argument("--url", help="a running assistant (default: start one in this process)")
    p.add_argument("--secret", help="with --url: its SECRET_KEY, to mint dev tokens")
    p.add_argument("--tenant", default=TENANT, help="with --url: the tenant holding the demo data")
    p.add_argument("--backend", choices=("local", "vertex"), default="local")
    p.add_argument("--out", help="report name under bench/results (default answers, answers_vertex)")
    p.add_argument("--label", default="", help="a label for the report's title (e.g. 'before')")
    p.add_argument("--limit", type=int, help="only the first N selected cases")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="cases asked in parallel (default 1: latency as one user sees it)",
    )
    p.add_argument("--data", type=Path, default=DATA_DIR, help="directory of case YAML files")
    p.add_argument("--index-dir", type=Path, help="cache dir of the demo knowledge index")
    p.add_argument(
        "--baseline",
        default="answers_baseline",
        help="an earlier report under bench/results to compare with (before → after); '' for none",
    )
    p.add_argument("--timeout", type=float, default=TURN_TIMEOUT_S, help="seconds to wait for one turn")
    p.add_argument(
        "--no-briefs", action="store_true", help="no ticket brief on join (brief cases then fail): its cost"
    )
    add_report_args(p)
    args = p.parse_args(argv)
    if args.smoke:  # two dev cases through the whole path and the report
        args.split, args.limit = "dev", 2
    return args


def select(cases: list[Case], args: argparse.Namespace) -> list[Case]:
    chosen = [
        c
        for c in cases
        if (args.split == "all" or c.split == args.split)
        and (not args.category or c.category in args.category)
        and (not args.ci_only or c.ci)
    ]
    return chosen[: args.limit] if args.limit else chosen


def cases_digest(data_dir: Path) -> str:
    """A short hash of the case files: two reports are comparable when it is the same."""
    h = hashlib.sha256()
    for path in sorted(Path(data_dir).glob("*.yaml")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or ("answers" if args.backend == "local" else f"answers_{args.backend}")
    all_cases = load_cases(args.data)
    cases = select(all_cases, args)
    selection = ", ".join(
        x
        for x in (
            f"split {args.split}",
            f"categories {'/'.join(args.category)}" if args.category else "",
            "ci subset" if args.ci_only else "",
            f"first {args.limit}" if args.limit else "",
        )
        if x
    )
    meta: dict[str, Any] = {
        "backend": args.backend,
        "commit": git_commit(),
        "cases_digest": cases_digest(args.data),
        "selection": selection,
        "cases": len(cases),
        "workers": args.workers,
        "nproc": os.cpu_count(),
        "label": args.label,
        "url": args.url or "in-process",
    }
    if not cases:
        print(f"no cases selected ({selection}) in {args.data}", file=sys.stderr)
        return 2
    if args.backend == "vertex" and not args.url:
        reason = vertex_skip_reason()
        if reason:
            print(f"skipped: {reason}")
            write_report(
                out,
                {"meta": meta, "skipped": reason},
                f"# Answer benchmark (vertex)\n\n{{machine}}skipped: {reason}\n",
                args.out_dir,
            )
            return 0
    t0 = time.monotonic()
    print(f"answer benchmark: {len(cases)} cases ({selection}), backend {args.backend}", flush=True)
    if args.url:
        if not args.secret:
            print("--url needs --secret (the server's SECRET_KEY) to mint dev tokens", file=sys.stderr)
            return 2
        from backend.auth import DevTokenAuthenticator

        tokens = DevTokenAuthenticator(args.secret, 24 * 3600)
        results = run_cases(
            cases, args.url, lambda u: tokens.mint(args.tenant, u), workers=args.workers, timeout=args.timeout
        )
    else:
        with local_server(args.backend, args.index_dir, briefs=not args.no_briefs) as (url, mint):
            results = run_cases(cases, url, mint, workers=args.workers, timeout=args.timeout)
    meta["runtime_s"] = round(time.monotonic() - t0, 1)
    compare = ""
    baseline = RESULTS / f"{args.baseline}.json" if args.baseline else None
    if baseline is not None and args.baseline != out and baseline.exists():
        compare = compare_section(results, baseline, all_cases)
    jp, mp = report(results, meta, out, compare, args.out_dir)
    summary = score.summarise(results)["by_split"]
    for split, m in summary.items():
        print(
            f"{split}: {m['cases']} cases, case accuracy {_pct(m['case_accuracy'])}, fact accuracy "
            f"{_pct(m['fact_accuracy'])}, wrong facts {m['wrong_fact_turns']}, decline recall "
            f"{_pct(m['decline_recall'])}, turn p95 {_ms(m['total_ms']['p95'])} ms"
        )
    print(category_table(results, failures=False))
    print(f"{meta['runtime_s']:.0f} s; report: {mp} ({jp.name})")
    return 0
