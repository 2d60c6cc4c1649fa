"""Retrieval benchmark: quality (recall@5/@10, MRR) and scale (latency, ingest rate, memory).

    python bench/retrieval_bench.py                 # quality + 10k and 100k scale tests
    python bench/retrieval_bench.py --scales 10000  # smaller
    python bench/retrieval_bench.py --skip-scale

Quality runs over the demo tenant (store/demo_data) with the labelled queries in
store/demo_data/eval/retrieval_queries.jsonl (falls back to bench/store_sample_queries.jsonl),
comparing full-text only, vector only and hybrid (RRF). Metrics are per *document*: a query's
hits are reduced to their documents in rank order. The scale test grows the corpus with
perturbed copies (see bench/store_scale.py) and times hybrid_search on the SQLite twin.
Reports: bench/results/retrieval.json and bench/results/retrieval.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.store_scale import NoisyCopyEmbedder, copies  # noqa: E402
from store.demo import DEMO_DATA_DIR, ensure_demo_tenant  # noqa: E402
from store.knowledge import Document, SearchFilters, SqliteKnowledgeIndex  # noqa: E402
from testkit.machine import machine as common_machine  # noqa: E402

EVAL_QUERIES = DEMO_DATA_DIR / "eval" / "retrieval_queries.jsonl"
SAMPLE_QUERIES = REPO / "bench" / "store_sample_queries.jsonl"
MODES = ("text", "vector", "hybrid")


def machine() -> dict[str, Any]:
    # The machine is shared: a high load average inflates every latency below.
    return {**common_machine(), "numpy": np.__version__}


def rss_mib() -> float:
    """Current resident set size (Linux /proc), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_queries(path: Path) -> list[dict[str, Any]]:
    queries = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        item = json.loads(line)
        if (
            not isinstance(item.get("query"), str)
            or not isinstance(item.get("relevant"), list)
            or not item["relevant"]
        ):
            raise SystemExit(f"{path}:{n}: expected {{'query': str, 'relevant': [doc ids]}}")
        queries.append(item)
    return queries


def ranked_documents(
    index: SqliteKnowledgeIndex, mode: str, text: str, vector: np.ndarray, tenant: str
) -> list[str]:
    hits = index.hybrid_search(
        text if mode != "vector" else "",
        vector if mode != "text" else None,
        50,
        SearchFilters(tenant),
        candidates=50,
    )
    return list(dict.fromkeys(h.document.id for h in hits))


def quality(index: SqliteKnowledgeIndex, tenant: str, queries: list[dict[str, Any]]) -> dict[str, Any]:
    known = set(index.document_hashes(tenant))
    vectors = index.embedder.embed([q["query"] for q in queries], task_type="RETRIEVAL_QUERY")
    results: dict[str, Any] = {}
    missing = sorted({d for q in queries for d in q["relevant"] if d not in known})
    for mode in MODES:
        r5 = r10 = mrr = 0.0
        per_query = []
        for q, vec in zip(queries, vectors, strict=True):
            docs = ranked_documents(index, mode, q["query"], vec, tenant)
            relevant = set(q["relevant"])
            first = next((i + 1 for i, d in enumerate(docs) if d in relevant), None)
            q5 = len(relevant & set(docs[:5])) / len(relevant)
            q10 = len(relevant & set(docs[:10])) / len(relevant)
            r5, r10, mrr = r5 + q5, r10 + q10, mrr + (1 / first if first else 0.0)
            per_query.append({"query": q["query"], "first_relevant_rank": first, "recall@5": q5})
        n = len(queries)
        results[mode] = {
            "recall@5": round(r5 / n, 4),
            "recall@10": round(r10 / n, 4),
            "mrr": round(mrr / n, 4),
            "misses@10": [p["query"] for p in per_query if (p["first_relevant_rank"] or 99) > 10],
        }
    results["queries"] = len(queries)
    results["relevant_ids_not_in_index"] = missing
    return results


def percentile(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values), p))


def time_queries(
    index: SqliteKnowledgeIndex, tenant: str, queries: list[str], vectors: np.ndarray, rounds: int
) -> dict[str, dict[str, float]]:
    """Latency per mode. Modes are interleaved per query so that load from other processes on
    this shared machine hits all three alike."""
    f = SearchFilters(tenant)
    for q, v in list(zip(queries, vectors, strict=True))[:5]:  # warm caches / mirror load
        index.hybrid_search(q, v, 10, f)
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    # CPU time of this process (all threads) per query: unlike wall time it barely moves with
    # other processes' load, so it estimates latency on an otherwise idle machine.
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(rounds):
        for q, v in zip(queries, vectors, strict=True):
            for mode in MODES:
                c0, t0 = time.process_time(), time.perf_counter()
                index.hybrid_search(
                    q if mode != "vector" else "", v if mode != "text" else None, 10, f, candidates=50
                )
                times[mode].append((time.perf_counter() - t0) * 1000)
                cpu[mode].append((time.process_time() - c0) * 1000)
    return {
        mode: {
            "p50_ms": round(percentile(ts, 50), 2),
            "p95_ms": round(percentile(ts, 95), 2),
            "mean_ms": round(statistics.fmean(ts), 2),
            "cpu_p50_ms": round(percentile(cpu[mode], 50), 2),
            "cpu_p95_ms": round(percentile(cpu[mode], 95), 2),
            "samples": len(ts),
        }
        for mode, ts in times.items()
    }


def scale_test(
    target: int,
    workdir: Path,
    demo_index: SqliteKnowledgeIndex,
    demo_tenant: str,
    queries: list[str],
    query_vectors: np.ndarray,
    rounds: int,
) -> dict[str, Any]:
    # Originals: every demo document with its chunk texts and stored vectors.
    conn = demo_index._conn  # bench-only peek at the twin's tables
    rows = conn.execute(
        "SELECT doc_id, kind, title, url, locale, tags FROM documents WHERE tenant = ?", (demo_tenant,)
    ).fetchall()
    chunk_rows = conn.execute(
        "SELECT doc_id, text, embedding FROM chunks WHERE tenant = ? ORDER BY doc_id, position",
        (demo_tenant,),
    ).fetchall()
    texts: dict[str, list[str]] = {}
    for doc_id, text, _ in chunk_rows:
        texts.setdefault(doc_id, []).append(text)
    base = np.frombuffer(b"".join(r[2] for r in chunk_rows), dtype=np.float32).reshape(len(chunk_rows), -1)
    originals = {
        doc_id: (
            Document(
                tenant="scale",
                kind=kind,
                external_id=doc_id.split(":", 1)[1],
                title=title,
                body="",
                source="scale",
                url=url,
                locale=locale,
                tags=tuple(json.loads(tags)),
            ),
            texts.get(doc_id, [title]),
        )
        for doc_id, kind, title, url, locale, tags in rows
    }
    embedder = NoisyCopyEmbedder(base)
    path = workdir / f"scale-{target}.sqlite3"
    rss_before = rss_mib()
    index = SqliteKnowledgeIndex(path, embedder)
    copies_per_round = max(1, target // max(1, len(chunk_rows)) // 4)
    written = 0
    copy_round = 0
    docs_written = 0
    t0 = time.perf_counter()
    # Copies are generated round by round until the index holds `target` chunks.
    while written < target:
        docs = copies(originals, copies_per_round, "scale", seed=copy_round)
        docs = [Document(**{**d.__dict__, "external_id": f"{d.external_id}-r{copy_round}"}) for d in docs]
        for i in range(0, len(docs), 256):
            stats = index.upsert("scale", docs[i : i + 256])
            written += stats.chunks_written
            docs_written += stats.added
            if written >= target:
                break
        copy_round += 1
    ingest_s = time.perf_counter() - t0
    chunks = index.stats("scale").chunks
    # Latency on a fresh handle: includes nothing of the writer's warm state but the OS cache.
    index.close()
    index = SqliteKnowledgeIndex(path, embedder)
    t_load = time.perf_counter()
    index.hybrid_search("warm up", query_vectors[0], 10, SearchFilters("scale"))
    mirror_load_s = time.perf_counter() - t_load
    load_before = os.getloadavg()[0]
    latency = time_queries(index, "scale", queries, query_vectors, rounds)
    mirror = index._mirrors["scale"]
    result = {
        "target_chunks": target,
        "chunks": chunks,
        "documents": docs_written,
        "ingest_seconds": round(ingest_s, 1),
        "ingest_chunks_per_s": round(chunks / ingest_s, 1),
        "ingest_docs_per_s": round(docs_written / ingest_s, 1),
        "mirror_load_seconds": round(mirror_load_s, 2),
        "loadavg_1m_during_latency": round((load_before + os.getloadavg()[0]) / 2, 2),
        "latency": latency,
        "memory": {
            "vector_matrix_mib": round(mirror.matrix[: mirror.size].nbytes / 2**20, 1),
            "process_rss_growth_mib": round(rss_mib() - rss_before, 1),
            "sqlite_file_mib": round(
                sum(p.stat().st_size for p in workdir.glob(f"scale-{target}.sqlite3*")) / 2**20, 1
            ),
        },
    }
    index.close()
    return result


def write_reports(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "retrieval.json").write_text(json.dumps(report, indent=2) + "\n")
    m = report["machine"]
    lines = [
        "# Retrieval benchmark",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram_gib']} GiB RAM, Python {m['python']}, numpy {m['numpy']}; "
        f"shared — load average {m.get('loadavg_1m_at_start', m.get('loadavg_at_start'))} at start, "
        f"{m.get('loadavg_1m_at_end')} at end. "
        f"Run at {report['started']}, took {report['seconds']} s.",
        "",
        "## Quality (demo tenant, document-level)",
        "",
        f"Queries: {report['quality']['queries']} from `{report['queries_file']}`; corpus: "
        f"{report['corpus']['documents']} documents, {report['corpus']['chunks']} chunks (MiniLM, 384 dims).",
        "",
        "| mode | recall@5 | recall@10 | MRR |",
        "| --- | --- | --- | --- |",
    ]
    for mode in MODES:
        q = report["quality"][mode]
        lines.append(f"| {mode} | {q['recall@5']:.3f} | {q['recall@10']:.3f} | {q['mrr']:.3f} |")
    best_single = max(report["quality"][m]["mrr"] for m in ("text", "vector"))
    lines += [
        "",
        f"Hybrid MRR / best single-list MRR = {report['quality']['hybrid']['mrr'] / best_single:.3f}."
        if best_single
        else "",
    ]
    if report["quality"]["relevant_ids_not_in_index"]:
        lines.append(
            f"Labelled ids missing from the index: {', '.join(report['quality']['relevant_ids_not_in_index'][:20])}"
        )
    lines += [
        "",
        f"MiniLM embedding throughput on demo chunks: {report['corpus']['minilm_chunks_per_s']} chunks/s; "
        f"demo ingest this run: {report['corpus']['ingest_seconds']} s for "
        f"{report['corpus']['chunks_embedded_this_run']} newly embedded chunks.",
        "",
    ]
    if report.get("scale"):
        lines += [
            "## Scale (SQLite twin, exact KNN + FTS5, k=10, 50 candidates per list)",
            "",
            "Corpus grown with perturbed copies of the demo documents; copies reuse the demo vectors plus "
            "Gaussian noise instead of re-embedding (see bench/store_scale.py). Query embedding time is excluded.",
            "",
            "Wall-clock latency depends on the shared machine's load (column *load avg*); *CPU* is this "
            "process's CPU time per query (all threads), a load-independent estimate of idle-machine latency.",
            "",
            "| chunks | hybrid p50 | hybrid p95 | hybrid CPU p50 / p95 | text p50 / p95 | vector p50 / p95 | load avg | ingest chunks/s | vectors MiB | RSS growth MiB | file MiB |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for s in report["scale"]:
            lat = s["latency"]
            lines.append(
                f"| {s['chunks']:,} | {lat['hybrid']['p50_ms']} ms | {lat['hybrid']['p95_ms']} ms | "
                f"{lat['hybrid']['cpu_p50_ms']} / {lat['hybrid']['cpu_p95_ms']} ms | "
                f"{lat['text']['p50_ms']} / {lat['text']['p95_ms']} ms | {lat['vector']['p50_ms']} / {lat['vector']['p95_ms']} ms | "
                f"{s['loadavg_1m_during_latency']} | {s['ingest_chunks_per_s']} | {s['memory']['vector_matrix_mib']} | "
                f"{s['memory']['process_rss_growth_mib']} | {s['memory']['sqlite_file_mib']} |"
            )
        if len(report["scale"]) > 1:
            a, b = report["scale"][0], report["scale"][-1]
            lines.append("")
            lines.append(
                f"Hybrid p95 ratio {b['chunks']:,} / {a['chunks']:,} chunks: "
                f"{b['latency']['hybrid']['p95_ms'] / a['latency']['hybrid']['p95_ms']:.2f}x for "
                f"{b['chunks'] / a['chunks']:.1f}x the data. Goal p95 ≤ 50 ms at 100k: "
                f"{'met' if b['chunks'] >= 100_000 and b['latency']['hybrid']['p95_ms'] <= 50 else 'not met in wall time on this run'}"
                f" (hybrid CPU p95 {b['latency']['hybrid']['cpu_p95_ms']} ms)."
            )
    (out / "retrieval.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=Path, default=None, help="JSONL of {query, relevant}.")
    parser.add_argument(
        "--scales", default="10000,100000", help="Comma-separated chunk counts for the scale test."
    )
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument(
        "--rounds", type=int, default=3, help="Passes over the query set per latency measurement."
    )
    parser.add_argument("--out", "--out-dir", dest="out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="toy scale: the first 5 queries, one 500-chunk scale test, one round (with --workdir "
        "holding a built demo index it takes seconds)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="Keep the demo index here between runs (default: a temp dir).",
    )
    args = parser.parse_args(argv)

    from vertex_interface.local_embedder import LocalEmbedder  # bench may cross layers

    queries_file = args.queries or (EVAL_QUERIES if EVAL_QUERIES.exists() else SAMPLE_QUERIES)
    queries = load_queries(queries_file)
    if args.smoke:
        queries, args.scales, args.rounds = queries[:5], "500", 1
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="retrieval-bench-") as tmp:
        work = Path(tmp)
        demo_dir = args.workdir or work
        demo_dir.mkdir(parents=True, exist_ok=True)
        index = SqliteKnowledgeIndex(demo_dir / "demo.sqlite3", LocalEmbedder())
        index.embedder.embed(["warm up"], task_type="RETRIEVAL_QUERY")
        t0 = time.perf_counter()
        reports = ensure_demo_tenant(index, "demo", progress=True)
        ingest_s = time.perf_counter() - t0
        stats = index.stats("demo")
        print("; ".join(r.summary() for r in reports.values()), file=sys.stderr)
        embedded_now = sum(r.chunks_written for r in reports.values())
        # Real MiniLM throughput on demo chunks, measured directly (the demo index may be cached).
        sample = [
            r[0] for r in index._conn.execute("SELECT text FROM chunks WHERE tenant = 'demo' LIMIT 128")
        ]
        t_embed = time.perf_counter()
        index.embedder.embed(sample, task_type="RETRIEVAL_DOCUMENT")
        embed_rate = len(sample) / (time.perf_counter() - t_embed)
        report: dict[str, Any] = {
            "started": started,
            "machine": machine(),
            "queries_file": str(
                queries_file.relative_to(REPO) if queries_file.is_relative_to(REPO) else queries_file
            ),
            "corpus": {
                "documents": stats.documents,
                "chunks": stats.chunks,
                "ingest_seconds": round(ingest_s, 1),
                "chunks_embedded_this_run": embedded_now,
                "minilm_chunks_per_s": round(embed_rate, 1),
            },
            "quality": quality(index, "demo", queries),
        }
        if not args.skip_scale:
            q_texts = [q["query"] for q in queries]
            q_vectors = index.embedder.embed(q_texts, task_type="RETRIEVAL_QUERY")
            t_embed = time.perf_counter()
            index.embedder.embed(q_texts[:20], task_type="RETRIEVAL_QUERY")
            report["query_embedding_ms_each"] = round(
                (time.perf_counter() - t_embed) * 1000 / min(20, len(q_texts)), 1
            )
            report["scale"] = []
            for target in (int(s) for s in args.scales.split(",") if s.strip()):
                print(f"scale test: {target:,} chunks", file=sys.stderr)
                report["scale"].append(
                    scale_test(target, work, index, "demo", q_texts, q_vectors, args.rounds)
                )
        index.close()
    report["seconds"] = round(time.perf_counter() - t_start, 1)
    report["machine"]["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    write_reports(report, args.out)
    print(json.dumps({k: report[k] for k in ("quality", "corpus")}, indent=2))
    for s in report.get("scale", []):
        print(
            json.dumps(
                {
                    "chunks": s["chunks"],
                    "latency": s["latency"],
                    "memory": s["memory"],
                    "ingest_chunks_per_s": s["ingest_chunks_per_s"],
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
