"""Peak memory of ingesting 10k vs 100k records of a generated Kaggle arXiv snapshot file (target: within 1.3x).

    python benchmarks/stream_memory.py [--sizes 10000 100000] [--keep DIR]

Each size is written as a snapshot-format JSONL file (the fields of arxiv-metadata-oai-snapshot.json; abstracts
recombined from SciFact sentences, so no two are the same) and ingested into a fresh home by a child process,
which reports its own peak RSS (`ru_maxrss`). The child embeds with an instant 8-dimensional embedder (no model,
no HTTP server): what is measured is reading, planning and storing, and at 8 dimensions the vector index of 100k
papers is ~3 MB, so its growth cannot hide (or pass for) the parser's. The catalog's BM25 segment of the file is
written at its commit (issue 18).
Until the Kaggle-specific parser lands the file reads as generic JSONL, which is fine for measuring memory.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SCIFACT = Path(__file__).resolve().parents[2] / "shared/eval/scifact/corpus.jsonl"
CATEGORIES = ["cs.LG", "cs.CL", "q-bio.NC", "stat.ML", "physics.bio-ph", "math.OC"]


def sentences() -> list[str]:
    found: list[str] = []
    with SCIFACT.open(encoding="utf-8") as corpus:
        for line in corpus:
            found += [s for s in re.split(r"(?<=[.!?])\s+", json.loads(line)["text"]) if len(s) > 40]
    return found


def snapshot_record(i: int, pool: list[str], rng: random.Random) -> dict:
    """One line of the Kaggle arXiv metadata snapshot, in its field order and shapes."""
    year, month = 2007 + i % 17, 1 + i % 12
    names = [(rng.choice(["Smith", "Garc\\'ia", "Chen", "M\\\"uller", "Okafor"]), rng.choice("ABCDEFGH") + ".")
             for _ in range(1 + i % 6)]
    abstract = " ".join(rng.sample(pool, 5))
    return {
        "id": f"{year % 100:02d}{month:02d}.{i % 100000:05d}",
        "submitter": f"{names[0][1]} {names[0][0]}",
        "authors": ", ".join(f"{first} {last}" for last, first in names),
        "title": " ".join(abstract.split()[:9]).rstrip(".,;") + f" ({i})",
        "comments": f"{8 + i % 30} pages, {i % 9} figures",
        "journal-ref": None if i % 3 else f"Phys. Rev. D {i % 100}, {i % 9000} ({year})",
        "doi": None if i % 2 else f"10.1103/PhysRevD.{i}",
        "report-no": None,
        "categories": " ".join(rng.sample(CATEGORIES, 2)),
        "license": "http://arxiv.org/licenses/nonexclusive-distrib/1.0/",
        "abstract": "  " + abstract + "\n",
        "versions": [{"version": "v1", "created": f"Mon, {1 + i % 28} Apr {year} 17:23:{i % 60:02d} GMT"}],
        "update_date": f"{year}-{month:02d}-{1 + i % 28:02d}",
        "authors_parsed": [[last, first, ""] for last, first in names],
    }


def write_snapshot(path: Path, n: int, pool: list[str]) -> None:
    rng = random.Random(n)
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            out.write(json.dumps(snapshot_record(i, pool, rng)) + "\n")


class InstantEmbedder:
    name = "instant-8d"

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        vectors = np.array([[len(t) % 13 + 1, t.count(" ") % 11 + 1, hash(t) % 7 + 1, 1, 1, 1, 1, 1] for t in texts],
                           dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def child(file: Path, home: Path) -> None:
    """Ingest `file` into `home`; print one JSON line with the numbers."""
    from assistant.config import load_settings
    from assistant.index import Store, ingest

    settings = load_settings(home)
    store = Store(settings.chroma_path, settings.resolved_embedding_model, chunk_tokens=settings.chunk_tokens)
    started = time.perf_counter()
    report = ingest([file], store, InstantEmbedder(), settings)
    assert not report.files_failed, report.files_failed
    print(json.dumps({"papers": report.new, "chunks": report.chunks_embedded,
                      "seconds": round(time.perf_counter() - started, 1),
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def opened(home: Path) -> None:
    """Open the library `home` holds and run one dense search (which loads its vector index); print the peak RSS:
    what the library itself costs a process, whatever file built it."""
    from assistant.config import load_settings
    from assistant.index import Store

    settings = load_settings(home)
    store = Store(settings.chroma_path, settings.resolved_embedding_model, chunk_tokens=settings.chunk_tokens)
    list(store.query_chunks(InstantEmbedder().embed_query("attention"), 10))
    print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def cpu_flags() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "flags: (lscpu not available)"
    return next((line for line in out.splitlines() if line.startswith("Flags")), "flags: (not listed)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--keep", type=Path, help="write the files and homes here instead of a temporary folder")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--open", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.open:
        opened(args.open)
        return
    pool = sentences()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for n in args.sizes:
            file = folder / f"arxiv-snapshot-{n}.json"
            write_snapshot(file, n, pool)
            run = subprocess.run([sys.executable, __file__, "--child", str(file), str(folder / f"home-{n}")],
                                 capture_output=True, text=True, check=True)
            results[n] = json.loads(run.stdout.strip().splitlines()[-1])
            library = subprocess.run([sys.executable, __file__, "--open", str(folder / f"home-{n}")],
                                     capture_output=True, text=True, check=True)
            results[n]["library_rss_mib"] = json.loads(library.stdout.strip().splitlines()[-1])["peak_rss_mib"]
            print(f"{n:>8,} records ({file.stat().st_size / 2**20:,.0f} MB): {results[n]['papers']:,} papers, "
                  f"{results[n]['chunks']:,} chunks in {results[n]['seconds']} s, "
                  f"peak RSS {results[n]['peak_rss_mib']:,.0f} MiB; the library opened and searched alone "
                  f"{results[n]['library_rss_mib']:,.0f} MiB", flush=True)
    small, big = min(results), max(results)
    ratio = results[big]["peak_rss_mib"] / results[small]["peak_rss_mib"]
    print(f"peak RSS ratio {big:,} / {small:,} records: {ratio:.2f}x (target <= 1.3x)")
    growth = {n: results[n]["peak_rss_mib"] - results[n]["library_rss_mib"] for n in (small, big)}
    print(f"ingest peak over the library's own: {growth[small]:,.0f} MiB at {small:,}, {growth[big]:,.0f} MiB at "
          f"{big:,} records (what reading, planning and writing the file cost)")
    print(cpu_flags())


if __name__ == "__main__":
    main()
