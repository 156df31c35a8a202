"""Today's path against this checkout, in one run on one machine: cold start, peak RSS, warm search, ingest.

    python benchmarks/compare_paths.py LIBRARY [--baseline REV] [--runs 5] [--ingest-papers 1500]

LIBRARY is a SciFact home (`litassist eval retrieval ../shared/eval/scifact --eval-home LIBRARY` builds it); the
baseline opens a copy of it (the ONNX default keeps the model's name, so both can open it, but their lexical index
layouts differ). The baseline is the source tree of git revision REV
(default bfd1c74, sentence-transformers on torch; it needs the `torch` and `export` extras installed), extracted
with `git archive`; each measurement runs the same script with PYTHONPATH at one tree or the other:
- cold start: `litassist search` in fresh processes, the two paths alternating, so load from other work hits both
  alike; the peak RSS of each process comes from wait4;
- warm hybrid search p50/p95 at the library's size: benchmarks/search_latency.py --no-synthesis;
- ingest throughput and the bare model's on the first N SciFact papers: benchmarks/ingest_throughput.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERY = "vitamin D and bone density"


def extract(revision: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], check=True, capture_output=True).stdout
    into.mkdir(parents=True)
    archive_file = into.with_suffix(".tar")
    archive_file.write_bytes(archive)
    with tarfile.open(archive_file) as tar:
        tar.extractall(into, filter="data")
    return into


def environment(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITASSIST_", "OPENAI_"))}
    return {**env, "PYTHONPATH": str(tree), "LITASSIST_LLM_PROVIDER": "offline"}


def timed_process(command: list[str], tree: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one child process running `tree`'s package (`-m` puts the cwd first)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, env=environment(tree), cwd=tree, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{' '.join(command)} failed (status {status})")
    return elapsed, usage.ru_maxrss / 1024


def cold_start(trees: dict[str, Path], libraries: dict[str, str], runs: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, list[float]]] = {name: {"help": [], "search": [], "rss": []} for name in trees}
    for _ in range(runs):
        for name, tree in trees.items():
            base = [sys.executable, "-m", "assistant", "--home", libraries[name], "-q"]
            results[name]["help"].append(timed_process(base + ["--help"], tree)[0])
            seconds, rss = timed_process(base + ["search", QUERY, "--json"], tree)
            results[name]["search"].append(seconds)
            results[name]["rss"].append(rss)
    return {name: {"help_s": statistics.median(r["help"]), "search_s": statistics.median(r["search"]),
                   "search_rss_mib": max(r["rss"])} for name, r in results.items()}


def script(tree: Path, name: str, *args: str) -> dict[str, float]:
    """Run benchmarks/NAME.py of this checkout against `tree`'s package; its last line is a JSON object."""
    command = [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args, "--json"]
    result = subprocess.run(command, env=environment(tree), cwd=tree, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{name} on {tree}: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("library", help="a SciFact home, e.g. the --eval-home of `litassist eval retrieval`")
    parser.add_argument("--baseline", default="bfd1c74", help="git revision of today's path")
    parser.add_argument("--scifact", default=str(ROOT.parent / "shared/eval/scifact"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ingest-papers", type=int, default=1500)
    parser.add_argument("--skip", nargs="*", default=[], choices=["cold", "warm", "ingest"])
    args = parser.parse_args()
    corpus = str(Path(args.scifact) / "corpus.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"today": extract(args.baseline, Path(tmp) / "baseline"), "new": ROOT}
        # Each path gets its own copy of the library: their derived files (the lexical index) differ in layout,
        # and one path must not rebuild the other's before every search. One untimed search settles them.
        libraries = {"today": str(shutil.copytree(args.library, Path(tmp) / "library")), "new": args.library}
        for name, tree in trees.items():
            timed_process([sys.executable, "-m", "assistant", "--home", libraries[name], "-q", "search", QUERY], tree)
        rows: dict[str, dict[str, float]] = {name: {} for name in trees}
        if "cold" not in args.skip:
            for name, numbers in cold_start(trees, libraries, args.runs).items():
                rows[name].update(numbers)
        for name, tree in trees.items():
            if "warm" not in args.skip:
                rows[name].update(script(tree, "search_latency", args.scifact, "--home", libraries[name],
                                         "--queries", str(args.queries), "--no-synthesis"))
            if "ingest" not in args.skip:
                rows[name].update(script(tree, "ingest_throughput", corpus, "--limit", str(args.ingest_papers)))
    print(f"{'measure':<34}{'today (' + args.baseline + ')':>22}{'this checkout':>16}{'new / today':>13}")
    for key in rows["new"]:
        today, new = rows["today"].get(key), rows["new"][key]
        ratio = f"{new / today:.2f}" if today else ""
        print(f"{key:<34}{today if today is not None else float('nan'):>22.3f}{new:>16.3f}{ratio:>13}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
