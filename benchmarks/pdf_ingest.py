"""PDF throughput on the shared papers: extraction (pages/s, reading order and all), chunking, and a full ingest
(papers/s, chunks/s) into a fresh temporary home, with the machine's CPU flags.

    python benchmarks/pdf_ingest.py [FOLDER] [--repeat N] [--json]

Extraction is timed without the cache (each PDF read from bytes), `--repeat` times, best run kept. The ingest
runs with an empty PDF text cache of its own; then the same PDFs are read again from that disk cache (the memory
cache emptied), as a re-import of an unchanged Zotero library or export reads them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from assistant import Assistant
from assistant.corpus import pdf as reader
from assistant.index import chunk_paper


def cpu_flags() -> str:
    """The CPU's model and flags (`lscpu`), printed beside the speeds."""
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "lscpu unavailable"
    return "\n".join(line for line in lines if line.startswith(("Model name", "CPU(s)", "Flags")))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "pdfs"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="end with the numbers as one JSON line")
    args = parser.parse_args()
    files = sorted(Path(args.folder).glob("*.pdf"))
    data = {path: path.read_bytes() for path in files}
    best = float("inf")
    for _ in range(args.repeat):
        started = time.perf_counter()
        texts = [reader.read_pdf(blob, str(path)) for path, blob in data.items()]
        best = min(best, time.perf_counter() - started)
    pages = sum(len(t.pages) for t in texts)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[reader.CACHE_ENV] = str(Path(tmp) / "pdf-cache")
        lib = Assistant(home=Path(tmp) / "home")
        lib.embedder.embed_documents(["warm up"])  # the model loads outside the timings
        reader._CACHE.clear()
        started = time.perf_counter()
        report = lib.ingest(files)
        ingest_seconds = time.perf_counter() - started
        started = time.perf_counter()
        chunks = [c for paper in lib.papers() for c in chunk_paper(paper, lib.settings.chunk_tokens)]
        chunk_seconds = time.perf_counter() - started
        cached = float("inf")
        for _ in range(args.repeat):
            reader._CACHE.clear()
            started = time.perf_counter()
            for path, blob in data.items():
                reader.read_source(blob, str(path))
            cached = min(cached, time.perf_counter() - started)
    print(f"{len(files)} PDFs, {pages} pages, {report.chunks_embedded} chunks embedded ({len(chunks)} re-chunked)")
    print(f"extraction: {pages / best:7.1f} pages/s   ({best:.2f} s, best of {args.repeat})")
    print(f"cached:     {pages / cached:7.1f} pages/s   ({cached:.3f} s: hash and disk cache, no extraction)")
    print(f"chunking:   {len(chunks) / chunk_seconds:7.1f} chunks/s (text cached)")
    print(f"ingest:     {len(files) / ingest_seconds:7.3f} papers/s  {report.chunks_embedded / ingest_seconds:6.1f} "
          f"chunks/s  ({ingest_seconds:.1f} s: parse, chunk, embed, store)")
    print(cpu_flags())
    if args.json:
        print(
            json.dumps(
                {
                    "pages_per_s": pages / best,
                    "cached_pages_per_s": pages / cached,
                    "papers_per_s": len(files) / ingest_seconds,
                    "chunks_per_s": report.chunks_embedded / ingest_seconds,
                }
            )
        )


if __name__ == "__main__":
    main()
