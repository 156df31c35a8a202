"""Ingest throughput vs the bare embedding model on the same texts, in the same run; peak memory.

    python benchmarks/ingest_throughput.py [CORPUS.jsonl] [--limit N] [--json]

1. bare model: encode exactly the texts ingest will embed (the chunk texts), nothing else;
2. full ingest of the same corpus into a fresh temporary home (parse, chunk, embed, Chroma, BM25).
Prints both rates and their ratio (target >= 0.85), and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from assistant import Assistant
from assistant.corpus import parse_file
from assistant.index import chunk_paper


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "corpus", nargs="?", default=str(Path(__file__).parents[2] / "shared/eval/scifact/corpus.jsonl")
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N papers (a quicker run)")
    parser.add_argument("--json", action="store_true", help="end with the numbers as one JSON line")
    args = parser.parse_args()
    source = Path(args.corpus)
    with tempfile.TemporaryDirectory() as tmp:
        if args.limit:
            subset = Path(tmp) / "corpus.jsonl"
            subset.write_text(
                "".join(source.read_text(encoding="utf-8").splitlines(True)[: args.limit]), encoding="utf-8"
            )
            source = subset
        lib = Assistant(home=Path(tmp) / "home")
        papers = parse_file(source).result.papers
        texts = [c.embed_text for p in papers for c in chunk_paper(p, lib.settings.chunk_tokens)]
        lib.embedder.embed_documents(texts[:64])  # load the model and warm up outside both timings

        started = time.perf_counter()
        for start in range(0, len(texts), 256):  # the same call sizes ingest uses
            lib.embedder.embed_documents(texts[start : start + 256])
        bare = time.perf_counter() - started

        started = time.perf_counter()
        report = lib.ingest([source])
        full = time.perf_counter() - started
    assert report.chunks_embedded == len(texts)
    print(f"corpus: {len(papers)} papers, {len(texts)} chunks")
    print(f"bare model:  {bare:8.1f} s  {len(papers) / bare:7.1f} papers/s  {len(texts) / bare:7.1f} chunks/s")
    print(f"full ingest: {full:8.1f} s  {len(papers) / full:7.1f} papers/s  {len(texts) / full:7.1f} chunks/s")
    print(f"ratio (ingest / bare model throughput): {bare / full:.3f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MiB")
    if args.json:
        print(json.dumps({"bare_model_papers_per_s": len(papers) / bare, "ingest_papers_per_s": len(papers) / full,
                          "ingest_over_bare": bare / full, "ingest_peak_rss_mib": peak}))


if __name__ == "__main__":
    main()
