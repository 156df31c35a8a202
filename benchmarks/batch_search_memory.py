"""`search --queries`: peak memory must not grow with the number of queries, and the first result must come at once.

    python benchmarks/batch_search_memory.py [--queries 1000,10000] [--papers 2000]

Builds a library of scale.py's papers with scale.py's instant embedding server, writes query files of each size
(SciFact's queries, repeated), and runs `search --queries FILE -k 10` on each in a fresh process: its peak RSS
(wait4's ru_maxrss), queries/s, and the seconds until its first JSON line. Before streaming, 100,000 queries ran
~30 min with no output, and held every query and every result in memory until the end.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import scale  # a sibling script, not a package
from embedding_server import serving


def run_batch(home: Path, queries: Path, env: dict[str, str]) -> tuple[float, float, float, int]:
    """(seconds to the first result line, total seconds, peak MB, result lines) of one `search --queries`."""
    started = time.perf_counter()
    process = subprocess.Popen(scale.cli(home, "search", "--queries", str(queries), "-k", "10"), env=env,
                               cwd=scale.CHECKOUT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    first = process.stdout.readline()
    to_first = time.perf_counter() - started
    lines = 1 + sum(1 for _ in process.stdout) if first else 0
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"search --queries {queries} failed with exit {process.returncode}")
    return to_first, time.perf_counter() - started, usage.ru_maxrss / 1024, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", default="1000,10000", help="query counts, comma-separated")
    parser.add_argument("--papers", type=int, default=2000, help="library size")
    args = parser.parse_args()
    counts = [int(n) for n in args.queries.split(",")]
    titles, sentences = scale.pieces([scale.SCIFACT / "corpus.jsonl"])
    with (scale.SCIFACT / "queries.jsonl").open(encoding="utf-8") as lines:
        texts = [json.loads(line)["text"] for line in lines]
    with tempfile.TemporaryDirectory(prefix="litassist-batch-") as tmp, serving() as server:
        work, home = Path(tmp), Path(tmp) / "home"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LITASSIST_"))}
        env |= {"PYTHONPATH": str(scale.CHECKOUT), "LITASSIST_EMBEDDING_PROVIDER": "openai",
                "LITASSIST_EMBEDDING_MODEL": scale.EMBEDDING_MODEL, "OPENAI_BASE_URL": server.base_url,
                "LITASSIST_LLM_PROVIDER": "offline"}
        scale.write_papers(work / "papers.jsonl", scale.papers(titles, sentences, 0, args.papers))
        scale.measured(scale.cli(home, "ingest", str(work / "papers.jsonl")), env)
        print(
            f"a library of {args.papers:,} papers\n\n"
            "| queries | first result | queries/s | peak RSS |\n| --- | --- | --- | --- |"
        )
        for count in counts:
            queries = work / f"queries-{count}.jsonl"
            with queries.open("w", encoding="utf-8") as out:
                for i, text in zip(range(count), itertools.cycle(texts)):
                    out.write(json.dumps({"id": i, "text": text}) + "\n")
            to_first, seconds, peak_mb, answered = run_batch(home, queries, env)
            assert answered == count, (answered, count)
            print(f"| {count:,} | {to_first:.1f} s | {count / seconds:,.0f} | {peak_mb:,.0f} MB |", flush=True)
    print("\n".join(scale.machine()))


if __name__ == "__main__":
    main()
