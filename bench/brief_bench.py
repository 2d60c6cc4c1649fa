"""Ticket brief benchmark: time on open (p50/p95) and what it would cost with Gemini.

Time: the real app in this process (orchestrator, embedded Redis, the demo index — the answer
benchmark's `local_server`), a sidebar client per demo ticket: `session:join` with the sidebar's
own payload → first `brief:section` (the recap) → `brief:done` (suggestions included), client-side;
then the same ticket opened again (the cached brief from the session) and a new customer comment
(a new version: recomputed).

Cost: the Gemini brief is one controlled-generation call per ticket version. Each demo ticket's
request is built by the real google-genai client against the fake Vertex server (testkit), and
its text — system instruction, ticket lines, response schema — is counted with the Gemma 3
tokenizer, which shares Gemini's SentencePiece vocabulary; the output is counted on the
extractive brief's fields as JSON (a Gemini brief has the same fields, similar length). Priced
with vertex_interface's list prices. A real Vertex account gives the exact counts (usageMetadata;
the brief's `cost` holds them) — see docs/brief.md.

    python -m bench.brief_bench [--tickets N] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path
from typing import Any

from backend import protocol
from backend.sidebar import demo_tickets
from bench.answers.payload import sidebar_ticket
from bench.answers.run import local_server
from bench.common import RESULTS, percentiles, write_report
from testkit.client import SidebarClient

REFRESH_TICKETS = 10
NEW_COMMENT = "Any news on this? I still need an answer, please."


def _timed_join(url: str, token: str, ticket: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    c = SidebarClient()
    c.connect(url, token)
    try:
        t0 = time.perf_counter()
        c.emit(protocol.JOIN, {"ticket": ticket})
        c.wait_for(protocol.STATE, timeout=30)
        state = time.perf_counter() - t0
        done = c.wait_for(protocol.BRIEF_DONE, timeout=timeout)
        total = time.perf_counter() - t0
        sections = c.of(protocol.BRIEF_SECTION)
    finally:
        c.disconnect()
    return {
        "state_s": state,
        "done_s": total,
        "cached": done["cached"],
        "sections": [s["section"] for s in sections],
        "server_timings": done["brief"].get("timings", {}),
        "suggestions": len(done["brief"]["suggestions"]["items"]),
        "entities": len(done["brief"]["entities"]),
    }


def _first_section_times(url: str, token: str, ticket: dict[str, Any]) -> tuple[float, float]:
    """(join → recap section, join → brief:done) on a fresh session."""
    c = SidebarClient()
    c.connect(url, token)
    try:
        t0 = time.perf_counter()
        c.emit(protocol.JOIN, {"ticket": ticket})
        c.wait_for(protocol.BRIEF_SECTION, lambda d: d["section"] == "recap", timeout=120)
        recap = time.perf_counter() - t0
        c.wait_for(protocol.BRIEF_DONE, timeout=120)
        return recap, time.perf_counter() - t0
    finally:
        c.disconnect()


def measure_time(ids: list[int]) -> dict[str, Any]:
    with local_server("local") as (url, mint):
        # The first brief of a process loads the embedder; no ticket should carry that.
        warm = {"id": "900001", "subject": "Warm-up", "description": "Where is my parcel? Please check."}
        _timed_join(url, mint("bench-warmup"), warm)
        cold, recap, cached, refresh, rows = [], [], [], [], []
        for i, tid in enumerate(ids):
            ticket = sidebar_ticket(tid)
            user = f"bench-{i}"
            r_recap, r_done = _first_section_times(url, mint(user), ticket)
            recap.append(r_recap)
            cold.append(r_done)
            again = _timed_join(url, mint(user), ticket)
            assert again["cached"], f"ticket {tid}: the second open was not served from the session"
            cached.append(again["done_s"])
            row = {"ticket": tid, "recap_ms": round(r_recap * 1000, 1), "done_ms": round(r_done * 1000, 1),
                   "cached_ms": round(again["done_s"] * 1000, 1), "suggestions": again["suggestions"],
                   "entities": again["entities"]}  # fmt: skip
            if i < REFRESH_TICKETS:
                newer = copy.deepcopy(ticket)
                newer.setdefault("comments", []).append(
                    {"author": "Customer", "role": "end-user", "public": True, "text": NEW_COMMENT}
                )
                r = _timed_join(url, mint(user), newer)
                assert not r["cached"], f"ticket {tid}: a new comment did not make a new brief"
                refresh.append(r["done_s"])
                row["refresh_ms"] = round(r["done_s"] * 1000, 1)
            rows.append(row)
            print(f"[{i + 1:>2}/{len(ids)}] #{tid}: recap {row['recap_ms']:.0f} ms, brief {row['done_ms']:.0f} ms, "
                  f"cached {row['cached_ms']:.0f} ms", flush=True)  # fmt: skip
    return {
        "tickets": len(ids),
        "recap_ms": percentiles(recap, (50, 95)),
        "brief_ms": percentiles(cold, (50, 95)),
        "cached_ms": percentiles(cached, (50, 95)),
        "refresh_ms": percentiles(refresh, (50, 95)),
        "rows": rows,
    }


# --- cost with Gemini ---------------------------------------------------------------------------
def gemma_tokenizer() -> tuple[Any, str]:
    """The Gemma 3 tokenizer from the FunctionGemma router's converted base model (no download),
    or a characters/4 estimate when it is not on this machine."""
    try:
        from transformers import AutoTokenizer

        from orchestrator.routing.functiongemma.model import DEFAULT_CACHE

        found = sorted(Path(DEFAULT_CACHE).expanduser().glob("converted-*/tokenizer.json"))
        if found:
            tok = AutoTokenizer.from_pretrained(found[-1].parent, local_files_only=True)
            return (lambda text: len(tok(text, add_special_tokens=False)["input_ids"])), "Gemma 3 tokenizer"
    except Exception:  # transformers missing or the cache unreadable: estimate instead
        pass
    return (lambda text: max(1, round(len(text) / 4))), "characters / 4 (estimate)"


def _request_text(body: dict[str, Any]) -> str:
    parts = [p.get("text", "") for c in body.get("contents", []) for p in c.get("parts", [])]
    system = [p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts", [])]
    schema = json.dumps((body.get("generationConfig") or {}).get("responseSchema") or {})
    return "\n".join([*system, *parts, schema])


def measure_cost(ids: list[int]) -> dict[str, Any]:
    from agents.commerce import LocalCommerceAPI
    from orchestrator.brief import BriefDone, BriefRequest, build_brief
    from testkit.fake_vertex import FakeVertex, json_reply, offline_credentials
    from vertex_interface import LLMConfig, create_llm

    count, tokenizer = gemma_tokenizer()
    commerce = LocalCommerceAPI()
    rows = []
    with FakeVertex() as fake:
        config = LLMConfig(
            backend="vertex",
            project="bench",
            location="europe-west4",
            api_endpoint=fake.base_url,
            timeout_s=5,
        )
        llm = create_llm(config, credentials=offline_credentials(), sleep=lambda s: None)
        price = config.price(config.gemini_model)
        for tid in ids:
            ticket = sidebar_ticket(tid)
            local = list(
                build_brief(BriefRequest("cost", "demo", "Dana", ticket), services={"commerce": commerce})
            )
            b = local[-1].brief
            answer = {
                **{k: b["recap"].get(k, "") for k in ("problem", "ask", "done", "next_step")},
                "language": b["signals"]["language"]["code"],
                "urgency": b["signals"]["urgency"]["level"],
                "urgency_reason": ", ".join(b["signals"]["urgency"]["why"]),
                "sentiment": b["signals"]["sentiment"]["label"],
            }
            fake.respond_with(lambda req, answer=answer: json_reply(answer))
            before = len(fake.calls("generateContent"))
            events = list(
                build_brief(
                    BriefRequest(f"cost-{tid}", "demo", "Dana", ticket),
                    llm=llm,
                    services={"commerce": commerce},
                )
            )
            assert isinstance(events[-1], BriefDone) and events[-1].brief["mode"] == "gemini"
            calls = fake.calls("generateContent")[before:]
            assert len(calls) == 1, f"ticket {tid}: {len(calls)} model calls for one brief"
            tin, tout = count(_request_text(calls[0].body or {})), count(json.dumps(answer))
            cost = (
                (tin * price.input_per_million + tout * price.output_per_million) / 1e6
                if price
                else float("nan")
            )
            rows.append({"ticket": tid, "input_tokens": tin, "output_tokens": tout, "cost_usd": cost})
    ins, outs, costs = ([r[k] for r in rows] for k in ("input_tokens", "output_tokens", "cost_usd"))

    def p95(xs: list[float]) -> float:
        return sorted(xs)[min(len(xs) - 1, max(0, -(-95 * len(xs) // 100) - 1))]

    return {
        "model": config.gemini_model,
        "price_per_million": {"input": price.input_per_million, "output": price.output_per_million}
        if price
        else None,
        "tokenizer": tokenizer,
        "calls_per_brief": 1,
        "input_tokens": {
            "mean": round(statistics.mean(ins), 1),
            "p50": statistics.median(ins),
            "p95": p95(ins),
        },
        "output_tokens": {
            "mean": round(statistics.mean(outs), 1),
            "p50": statistics.median(outs),
            "p95": p95(outs),
        },
        "cost_usd": {
            "mean": statistics.mean(costs),
            "p95": p95(costs),
            "per_1000_tickets": 1000 * statistics.mean(costs),
        },
        "rows": rows,
    }


def markdown(t: dict[str, Any], c: dict[str, Any]) -> str:
    def ms(d: dict[str, float], k: str) -> str:
        return f"{d[k]:,.0f}"

    per = c["cost_usd"]
    return "\n".join(
        [
            "# Ticket brief benchmark",
            "",
            "{machine}"
            f"{t['tickets']} demo tickets, each opened in the sidebar through the real Socket.IO path (the real app "
            "in process: orchestrator, embedded Redis, the demo index; offline backend). Client-side times from "
            "`session:join`. Runner: `python -m bench.brief_bench` (bench/brief_bench.py).",
            "",
            "## Time on open",
            "",
            "| what | p50 (ms) | p95 (ms) |",
            "|---|---:|---:|",
            f"| first section (the recap) | {ms(t['recap_ms'], 'p50')} | {ms(t['recap_ms'], 'p95')} |",
            f"| whole brief with suggestions (`brief:done`) | {ms(t['brief_ms'], 'p50')} | {ms(t['brief_ms'], 'p95')} |",
            f"| opened again: cached in the session | {ms(t['cached_ms'], 'p50')} | {ms(t['cached_ms'], 'p95')} |",
            f"| new comment: new version recomputed ({REFRESH_TICKETS} tickets) | {ms(t['refresh_ms'], 'p50')} | "
            f"{ms(t['refresh_ms'], 'p95')} |",
            "",
            "The recap, state lines and signals are extractive (no model); the rest of the time is the three "
            "retrieval agents' searches for the suggestions, run in parallel. Chat never waits for any of it.",
            "",
            "## Cost per ticket with Gemini",
            "",
            f"One controlled-generation call per ticket version (model `{c['model']}`, list price "
            f"${c['price_per_million']['input']:.2f} / ${c['price_per_million']['output']:.2f} per million input / "
            f"output tokens). Tokens counted with: {c['tokenizer']}, on the request the real google-genai client "
            "sends (system instruction, ticket lines, response schema); output counted on the brief's fields as JSON. "
            "Suggestions are retrieval only: no model tokens.",
            "",
            "| | mean | p50 | p95 |",
            "|---|---:|---:|---:|",
            f"| input tokens | {c['input_tokens']['mean']:,.0f} | {c['input_tokens']['p50']:,.0f} | {c['input_tokens']['p95']:,.0f} |",
            f"| output tokens | {c['output_tokens']['mean']:,.0f} | {c['output_tokens']['p50']:,.0f} | {c['output_tokens']['p95']:,.0f} |",
            f"| cost (USD) | {per['mean']:.6f} | | {per['p95']:.6f} |",
            "",
            f"**${per['per_1000_tickets']:.3f} per 1,000 ticket versions.** A cached brief costs nothing; each new "
            "comment is a new version. Exact counts need a Vertex account: the brief records Gemini's own "
            "`usageMetadata` in its `cost`.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.brief_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=int, default=0, help="only the first N demo tickets (default: all)")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    ap.add_argument("--out", default="brief")
    ap.add_argument("--smoke", action="store_true", help="toy scale: two tickets")
    args = ap.parse_args(argv)
    ids = [int(t["id"]) for t in demo_tickets()]
    ids = ids[: 2 if args.smoke else args.tickets or len(ids)]
    cost = measure_cost(ids)
    print(
        f"cost: {cost['input_tokens']} in, {cost['output_tokens']} out, ${cost['cost_usd']['mean']:.6f}/ticket"
    )
    timing = measure_time(ids)
    jp, mp = write_report(args.out, {"time": timing, "cost": cost}, markdown(timing, cost), args.out_dir)
    print(f"report: {mp} ({jp.name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
