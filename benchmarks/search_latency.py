"""Warm search latency (hybrid, k=10): p50/p95 at the SciFact library and at ~100k synthesized chunks.

    python benchmarks/search_latency.py [SCIFACT_DIR] [--home HOME] [--chunks 100000] [--queries 200]
                                        [--no-synthesis] [--json]

HOME: the SciFact library to search (default: the evaluation cache of SCIFACT_DIR; built when missing).

The large library is synthesized from the real one: every SciFact paper is copied N times with a new id and
its real chunk vectors slightly perturbed (no re-embedding), so BM25 and HNSW work at full size.
Peak memory of a search process: see benchmarks/cold_start.py (this one also holds the synthesis).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from assistant import Assistant
from assistant.evaluate import eval_home, load_queries
from assistant.index import chunk_paper


def latencies(lib: Assistant, queries: list[str]) -> tuple[float, float]:
    lib.search(queries[0], k=10)  # warm: model loaded, BM25 postings cached
    times = []
    for query in queries:
        started = time.perf_counter()
        lib.search(query, k=10)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def query_embedding_ms(lib: Assistant, queries: list[str]) -> float:
    """Median time of the query vector alone, the part of a search the embedder decides."""
    times = []
    for query in queries:
        started = time.perf_counter()
        lib.embedder.embed_query(query)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def synthesize(real: Assistant, target: Assistant, chunks_wanted: int) -> int:
    """Copy every real paper (with its stored chunk vectors, perturbed) until ~chunks_wanted chunks exist."""
    rng = np.random.default_rng(0)
    papers = real.papers()
    owned = real.store.catalog.vector_ids_of([p.paper_id for p in papers])
    found = real.store.vectors.embeddings("chunks", [vid for vids in owned.values() for vid in vids])
    vectors = {pid: [(i, found[vid]) for i, vid in enumerate(vids)] for pid, vids in owned.items()}
    total_chunks = sum(len(vids) for vids in owned.values())
    copies = math.ceil(chunks_wanted / total_chunks)
    rows = []
    with target.store.writing(), target.store.committing():  # one write; searches see it once it is published
        for copy in range(copies):
            for paper in papers:
                clone = paper.model_copy(update={"paper_id": f"{paper.paper_id}~{copy}" if copy else paper.paper_id})
                chunks = chunk_paper(clone, real.settings.chunk_tokens)
                base = np.stack([v for _, v in sorted(vectors[paper.paper_id], key=lambda item: item[0])])
                noisy = base + (rng.normal(0, 0.01, base.shape).astype(np.float32) if copy else 0)
                noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
                rows.append((clone, chunks, noisy))
                if len(rows) == 500:
                    target.store.write_papers(rows)
                    rows = []
        if rows:
            target.store.write_papers(rows)
    return target.store.chunk_count()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", nargs="?", default=str(Path(__file__).parents[2] / "shared/eval/scifact"))
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--home", default=None, help="the SciFact library (default: its evaluation cache)")
    parser.add_argument("--no-synthesis", action="store_true", help="only the real library, not the large one")
    parser.add_argument("--json", action="store_true", help="end with the numbers as one JSON line")
    args = parser.parse_args()
    folder = Path(args.folder)
    real = Assistant(home=args.home or eval_home(folder))
    real.ingest([folder / "corpus.jsonl"])
    queries = [json.loads(line)["text"] for line in (folder / "queries.jsonl").read_text().splitlines()][: args.queries]
    load_queries(folder, "test")  # validates the folder layout

    p50, p95 = latencies(real, queries)
    stats = real.stats()
    print(f"{stats.papers} papers / {stats.chunks} chunks: hybrid k=10 p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    embed_p50 = query_embedding_ms(real, queries)
    print(f"of which the query vector: p50 {embed_p50:.1f} ms (the rest: Chroma, BM25, fusion, records)")
    if args.json:
        print(json.dumps({"warm_search_p50_ms": p50, "warm_search_p95_ms": p95, "query_vector_p50_ms": embed_p50}))
    if args.no_synthesis:
        return
    with tempfile.TemporaryDirectory() as tmp:
        big = Assistant(home=Path(tmp) / "home")
        started = time.perf_counter()
        n = synthesize(real, big, args.chunks)
        print(f"synthesized {big.store.paper_count()} papers / {n} chunks in {time.perf_counter() - started:.0f} s")
        p50, p95 = latencies(big, queries)
        print(f"{big.store.paper_count()} papers / {n} chunks: hybrid k=10 p50 {p50:.1f} ms, p95 {p95:.1f} ms")


if __name__ == "__main__":
    main()
