"""What a change costs as the library grows: ingest, add one paper, remove one, cold and warm search at each size.

    python benchmarks/scale.py [--sizes 2000,50000] [--work DIR] [--keep] [--reuse] [--corpus MORE.jsonl ...]

For each N it
1. writes N papers made from real abstracts (SciFact's corpus, plus any --corpus in the same BEIR JSONL form): each
   paper a unique id, a title spliced from two real titles and 4-9 real sentences drawn at random (seeded, so every
   run and machine gets the same papers), streamed to disk, so N = 1,000,000 needs no more memory than N = 2,000;
2. embeds through an OpenAI-compatible server on loopback whose vectors cost nothing (benchmarks/embedding_server.py:
   hashed bags of words, 384-d), so only litassist's parsing, store and indexes are timed;
3. runs the CLI of the checkout this file lives in (`python -m assistant`, PYTHONPATH = that checkout) in fresh
   processes: ingest of the N papers into a new home, add one paper, remove it, remove an old paper (one the
   ingest stored, whose vectors are in Chroma; each run removes another), a cold `search`; each one's wall
   time includes start-up, its CPU time and peak RSS come from the kernel (wait4's rusage of that process alone);
4. times warm hybrid searches (real SciFact queries) in one process through the Python API, after one untimed search.

It prints a Markdown table (and --json the same numbers), the CPU and its flags, and the checkout's commit, so a
before/after pair run on one machine can be compared. With --reuse (and --work, --keep) a home left by an earlier
run of the same N is measured again without its ingest (a 1M ingest takes over an hour): the ingest columns then
show "reused". Everything runs under the env settings of the `openai`
embedding provider (LITASSIST_EMBEDDING_PROVIDER=openai, OPENAI_BASE_URL=the loopback server).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from embedding_server import serving  # a sibling script, not a package

CHECKOUT = Path(__file__).resolve().parents[1]
SCIFACT = CHECKOUT.parent / "shared" / "eval" / "scifact"
SEED = 18  # the issue this benchmark was written for
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")
MIN_SENTENCE_CHARS = 20
EMBEDDING_MODEL = "hashed-bow-384"  # recorded in the home; only this benchmark's server makes such vectors


@dataclass
class Run:
    seconds: float
    cpu_seconds: float  # user + system of the process and its threads: what the work costs on a busy machine too
    peak_mb: float
    stdout: str


@dataclass
class Row:
    papers: int
    ingest_papers_per_s: float
    ingest_papers_per_cpu_s: float
    ingest_peak_mb: float
    remove_old_s: float
    add_s: float
    add_cpu_s: float
    add_peak_mb: float
    remove_s: float
    remove_cpu_s: float
    remove_peak_mb: float
    cold_search_s: float
    cold_search_cpu_s: float
    cold_search_peak_mb: float
    warm_p50_ms: float
    warm_p95_ms: float


def pieces(corpora: Sequence[Path]) -> tuple[list[str], list[str]]:
    """Every title and every sentence (of at least MIN_SENTENCE_CHARS) of the corpora, in file order."""
    titles, sentences = [], []
    for corpus in corpora:
        with corpus.open(encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                if title := " ".join(str(record.get("title") or "").split()):
                    titles.append(title)
                sentences += [s for s in SENTENCE_END.split(" ".join(str(record.get("text") or "").split()))
                              if len(s) >= MIN_SENTENCE_CHARS]
    if not titles or not sentences:
        raise SystemExit(f"no titles or sentences in {', '.join(map(str, corpora))}: give BEIR corpus.jsonl files")
    return titles, sentences


def papers(titles: list[str], sentences: list[str], start: int, count: int) -> Iterator[dict[str, str]]:
    """Papers start .. start+count-1 of one endless seeded sequence (paper i is the same in every call)."""
    for i in range(start, start + count):
        rng = random.Random(f"{SEED}-{i}")
        first, second = rng.choice(titles).split(), rng.choice(titles).split()
        title = " ".join(first[: max(1, len(first) // 2)] + second[len(second) // 2 :])
        text = " ".join(rng.choice(sentences) for _ in range(rng.randint(4, 9)))
        yield {"_id": f"scale-{i}", "title": title, "text": text}


def write_papers(path: Path, records: Iterator[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def measured(argv: list[str], env: dict[str, str]) -> Run:
    """Run a command to its end: wall and CPU seconds, its own peak RSS (ru_maxrss from wait4), its stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=CHECKOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv[2:])} failed (exit {process.returncode}): {stderr.strip()[-1500:]}")
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout)


def cli(home: Path, *argv: str) -> list[str]:
    return [sys.executable, "-m", "assistant", "--home", str(home), "-q", *argv]


WARM_SEARCH = """
import json, sys, time
from assistant import Assistant
lib = Assistant(home=sys.argv[1])
queries = json.loads(sys.argv[2])
lib.search(queries[0])  # opens the store and loads the lexical index: what "warm" means
seconds = []
for query in queries:
    started = time.perf_counter()
    lib.search(query)
    seconds.append(time.perf_counter() - started)
print(json.dumps(seconds))
"""


def warm_searches(home: Path, queries: list[str], env: dict[str, str]) -> list[float]:
    return json.loads(measured([sys.executable, "-c", WARM_SEARCH, str(home), json.dumps(queries)], env).stdout)


def measure(n: int, work: Path, titles: list[str], sentences: list[str], queries: list[str],
            env: dict[str, str], reuse: bool = False) -> Row:
    data, one, home = work / f"papers-{n}.jsonl", work / f"one-{n}.jsonl", work / f"home-{n}"
    write_papers(one, papers(titles, sentences, n, 1))
    if reuse and (home / "library.sqlite3").exists():
        log(f"N={n:,}: reusing {home} (its ingest is not measured again)")
        ingest = None
    else:
        shutil.rmtree(home, ignore_errors=True)
        write_papers(data, papers(titles, sentences, 0, n))
        log(f"N={n:,}: ingest")
        ingest = measured(cli(home, "ingest", str(data), "--json"), env)
        new = json.loads(ingest.stdout)["new"]
        if new != n:
            raise SystemExit(f"N={n}: ingest stored {new} new papers, not {n}: the generated papers merged as "
                             "duplicates")
        log(f"N={n:,}: {n / ingest.seconds:.0f} papers/s")
    log(f"N={n:,}: add one, remove it, remove an old one, cold search, warm searches")
    add = measured(cli(home, "ingest", str(one)), env)
    remove = measured(cli(home, "remove", f"scale-{n}"), env)
    measured(cli(home, "remove", "--source", str(one)), env)  # forget the file too, so that --reuse adds it again
    remove_old = measured(cli(home, "remove", stored_paper(home, n)), env)
    cold = measured(cli(home, "search", queries[0], "--json"), env)
    if not json.loads(cold.stdout):
        raise SystemExit(f"N={n}: a cold search found nothing")
    warm = sorted(warm_searches(home, queries, env))
    nan = float("nan")
    return Row(n, n / ingest.seconds if ingest else nan, n / ingest.cpu_seconds if ingest else nan,
               ingest.peak_mb if ingest else nan, remove_old.seconds, add.seconds, add.cpu_seconds,
               add.peak_mb, remove.seconds, remove.cpu_seconds, remove.peak_mb, cold.seconds, cold.cpu_seconds,
               cold.peak_mb, statistics.median(warm) * 1000, warm[int(0.95 * (len(warm) - 1))] * 1000)


def stored_paper(home: Path, n: int) -> str:
    """The last paper of the ingest still stored (each run's "remove an old one" takes one), read-only."""
    with contextlib.closing(sqlite3.connect(f"file:{home / 'library.sqlite3'}?mode=ro", uri=True)) as db:
        for last in range(n - 1, -1, -100):
            ids = [f"scale-{i}" for i in range(last, max(last - 100, -1), -1)]
            found = {pid for (pid,) in db.execute(
                f"SELECT paper_id FROM papers WHERE txn IS NULL AND paper_id IN ({','.join('?' * len(ids))})", ids)}
            if stored := [pid for pid in ids if pid in found]:
                return stored[0]
    raise SystemExit(f"N={n}: {home} holds none of the generated papers")


def markdown(rows: list[Row]) -> str:
    lines = [("| library | add one paper (CLI, wall) | remove it | remove an old one | cold `search` | warm search | "
              "ingest, no model cost |"), "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ingest = "reused" if r.ingest_papers_per_s != r.ingest_papers_per_s else (
            f"{r.ingest_papers_per_s:,.0f} papers/s ({r.ingest_papers_per_cpu_s:,.0f} per cpu s), "
            f"{r.ingest_peak_mb:,.0f} MB")
        lines.append(
            f"| {r.papers:,} papers | {r.add_s:.1f} s (cpu {r.add_cpu_s:.1f} s), {r.add_peak_mb:,.0f} MB | "
            f"{r.remove_s:.1f} s (cpu {r.remove_cpu_s:.1f} s), {r.remove_peak_mb:,.0f} MB | {r.remove_old_s:.1f} s | "
            f"{r.cold_search_s:.1f} s (cpu {r.cold_search_cpu_s:.1f} s), {r.cold_search_peak_mb:,.0f} MB | "
            f"p50 {r.warm_p50_ms:.0f} ms, p95 {r.warm_p95_ms:.0f} ms | {ingest} |")
    return "\n".join(lines)


def machine() -> list[str]:
    """The CPU, its flags and the code measured: numbers mean something only beside these."""
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines()
    wanted = ("Model name", "CPU(s)", "Flags")
    cpu = [" ".join(line.split()) for line in lscpu if line.split(":")[0].strip() in wanted]
    commit = subprocess.run(["git", "-C", str(CHECKOUT), "describe", "--always", "--dirty"], capture_output=True,
                            text=True, check=False).stdout.strip()
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    return [f"code: {CHECKOUT} at {commit or 'unknown commit'}; Python {sys.version.split()[0]}",
            f"load average at the end (1, 5, 15 min): {load} (wall times stretch on a busy machine; cpu times less)",
            *cpu]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2000,50000", help="library sizes, comma-separated (default 2000,50000)")
    parser.add_argument("--work", type=Path, help="folder for the generated papers and homes (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated papers and homes")
    parser.add_argument("--reuse", action="store_true",
                        help="measure a home an earlier --keep run left in --work without ingesting it again")
    parser.add_argument("--corpus", type=Path, action="append", default=[],
                        help="another BEIR corpus.jsonl to take titles and sentences from (SciFact's is always used)")
    parser.add_argument("--scifact", type=Path, default=SCIFACT, help=f"SciFact's BEIR folder (default {SCIFACT})")
    parser.add_argument("--queries", type=int, default=50, help="warm searches per size (SciFact's queries)")
    parser.add_argument("--json", action="store_true", help="end with the numbers as one JSON line")
    args = parser.parse_args(argv)
    try:
        sizes = [int(size) for size in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes: give whole numbers separated by commas, not {args.sizes!r}")
    titles, sentences = pieces([args.scifact / "corpus.jsonl", *args.corpus])
    with (args.scifact / "queries.jsonl").open(encoding="utf-8") as lines:
        queries = [json.loads(line)["text"] for _, line in zip(range(args.queries), lines)]
    work = args.work or Path(tempfile.mkdtemp(prefix="litassist-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        with serving() as server:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LITASSIST_"))}
            env |= {"PYTHONPATH": str(CHECKOUT), "LITASSIST_EMBEDDING_PROVIDER": "openai",
                    "LITASSIST_EMBEDDING_MODEL": EMBEDDING_MODEL, "OPENAI_BASE_URL": server.base_url,
                    "LITASSIST_LLM_PROVIDER": "offline"}
            for n in sizes:
                rows.append(measure(n, work, titles, sentences, queries, env, args.reuse))
                print(markdown(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)  # each size as it is done
    finally:
        if not args.keep:
            for n in sizes:
                shutil.rmtree(work / f"home-{n}", ignore_errors=True)
                for name in (f"papers-{n}.jsonl", f"one-{n}.jsonl"):
                    (work / name).unlink(missing_ok=True)
            if not args.work:
                shutil.rmtree(work, ignore_errors=True)
    print(markdown(rows))
    print()
    print("\n".join(machine()))
    if args.json:
        print(json.dumps([asdict(row) for row in rows]))


if __name__ == "__main__":
    main()
