"""`litassist summarize` end to end on real homes, then a small ingest and the map again (incremental or not).

    python benchmarks/topics_summarize.py --sizes 5000 50000 [--work DIR]
    python benchmarks/topics_summarize.py --read-only-home /work/scale1m/home-1000000
    python benchmarks/topics_summarize.py --grow-home /work/scale1m/home-1000000 --work DIR

For each N: N papers from benchmarks/scale.py's generator (real SciFact titles and sentences recombined, seeded)
are ingested through the CLI with instant embeddings (its loopback hashed-bag-of-words server), then, each in a
fresh process (wall, CPU and peak RSS from wait4, as scale.py measures): `summarize` (topics, subtopics, map,
offline extractive summaries, report), `summarize` again (everything cached), an ingest of 0.5% more papers and
`clusters` (assigned in place: the change is under 1%), then 1% more and `clusters` (recomputed). Also the size of
the saved map (HOME/clusters/map.json) and its points.

--read-only-home maps an existing home without writing to it (another process may own it): the catalog is opened
read-only through SQLite, the map built and summarized in this process (what `summarize` does), the report written
to a temporary folder. --grow-home takes the two growth steps on an existing home with a saved map (new generator
rows past twice its size), then removes the papers it added. CPU flags are printed with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import scale  # a sibling script: its generator, CLI runner and embedding server

from assistant.corpus import Paper
from assistant.index.catalog import Catalog, PaperColumns


def flags() -> str:
    line = next((x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("flags")), "")
    return " ".join(f for f in line.split() if f.startswith(("avx", "fma")))


def report(name: str, run: scale.Run) -> None:
    print(
        f"  {name}: {run.seconds:.1f} s wall, {run.cpu_seconds:.1f} s CPU, peak RSS {run.peak_mb:,.0f} MB", flush=True
    )


def saved_map(home: Path) -> str:
    path = home / "clusters" / "map.json"
    data = json.loads(path.read_bytes())
    return (f"map.json {path.stat().st_size / 2**20:.1f} MB, {len(data['points']):,} points, "
            f"clustered over {data['clustered_papers']:,}, {data['changed_since']} assigned since")


def measure(n: int, work: Path, titles: list[str], sentences: list[str], env: dict[str, str]) -> None:
    home, data = work / f"home-{n}", work / f"papers-{n}.jsonl"
    print(f"N={n:,}", flush=True)
    if (home / "library.sqlite3").exists():  # a --work folder from an earlier run: its home is reused
        print(f"  {home} exists: not ingested again", flush=True)
    else:
        scale.write_papers(data, scale.papers(titles, sentences, 0, n))
        report("ingest", scale.measured(scale.cli(home, "ingest", str(data)), env))
    out = work / f"report-{n}"
    report("summarize", scale.measured(scale.cli(home, "summarize", "--out", str(out)), env))
    print(f"  {saved_map(home)}; report.md {(out / 'report.md').stat().st_size / 2**20:.1f} MB", flush=True)
    report("summarize again (cached)", scale.measured(scale.cli(home, "summarize", "--out", str(out)), env))
    grow(home, n, n, work, titles, sentences, env)


def grow(home: Path, n: int, start: int, work: Path, titles: list[str], sentences: list[str],
         env: dict[str, str]) -> list[Path]:
    """Ingest 0.5% more papers (generator rows from `start` on) and map again, then 1% more: the files ingested."""
    added = []
    for share in (0.005, 0.01):
        more = work / f"more-{n}-{start}.jsonl"
        scale.write_papers(more, scale.papers(titles, sentences, start, round(n * share)))
        start += round(n * share)
        report(f"ingest +{share:.1%}", scale.measured(scale.cli(home, "ingest", str(more)), env))
        added.append(more)
        report(f"clusters after +{share:.1%}", scale.measured(scale.cli(home, "clusters"), env))
        print(f"  {saved_map(home)}", flush=True)
    return added


class ReadOnlyCatalog:
    """store.paper_columns and store.get_papers over a catalog that is never written, nor its lock files.

    With an empty write-ahead log (everything checkpointed) the file is opened immutable: SQLite then takes no
    locks and opens no -wal or -shm file, so only library.sqlite3 is opened, O_RDONLY (checked with strace; chroma/ is
    not opened at all). With a log to read it falls back to mode=ro, which does write its read marks to the -shm
    file (as every reader of the home does)."""

    def __init__(self, home: Path):
        catalog, wal = home / "library.sqlite3", home / "library.sqlite3-wal"
        still_logged = wal.exists() and wal.stat().st_size > 0
        self.db = sqlite3.connect(f"file:{catalog}?mode=ro" + ("" if still_logged else "&immutable=1"), uri=True)

    def paper_columns(self, paper_ids: Sequence[str] | None = None, vectors: bool = True) -> PaperColumns:
        count = self.db.execute("SELECT count(*) FROM papers WHERE txn IS NULL").fetchone()[0]
        ids, keys, years, matrix = [], [], [], None
        for pid, key, year, blob in self.db.execute(
                "SELECT paper_id, content_key, year, vector FROM papers WHERE txn IS NULL ORDER BY paper_id"):
            if matrix is None:
                matrix = np.empty((count, len(blob) // 4), dtype=np.float32)
            matrix[len(ids)] = np.frombuffer(blob, dtype=np.float32)
            ids.append(pid)
            keys.append(key)
            years.append(year)
        return PaperColumns(ids, keys, years, matrix[: len(ids)])

    def connection(self) -> sqlite3.Connection:  # what Catalog.paper_texts reads through
        return self.db

    paper_texts = Catalog.paper_texts  # what `summarize` reads for keywords and map points (no records built)

    def get_papers(self, paper_ids: Sequence[str]) -> dict[str, Paper]:
        out = {}
        wanted = list(paper_ids)
        for begin in range(0, len(wanted), 900):
            batch = wanted[begin : begin + 900]
            for pid, record in self.db.execute(f"SELECT paper_id, record FROM papers WHERE txn IS NULL AND paper_id IN "
                                               f"({','.join('?' * len(batch))})", batch):
                out[pid] = Paper.model_validate_json(record)
        return out


def read_only(home: Path) -> None:
    """The map, offline summaries and report of an existing home, in this process, writing nothing into it."""
    from assistant.clusters import ClusterSummarizer, map_library
    from assistant.report import shown_papers, write_report

    catalog = ReadOnlyCatalog(home)
    wall, cpu = time.perf_counter(), time.process_time()
    columns = catalog.paper_columns()
    read_s = time.perf_counter() - wall
    cluster_map = map_library(columns, catalog.paper_texts, "read-only")
    del columns
    map_s = time.perf_counter() - wall
    summarizer = ClusterSummarizer(None, "offline", None, 8192, 1024)
    every = [c for topic in cluster_map.topics for c in (topic, *topic.subtopics)]
    summaries = {c.cluster_id: summarizer.summarize(c, catalog.get_papers(summarizer.evidence_ids(c))) for c in every}
    with tempfile.TemporaryDirectory() as out:
        write_report(Path(out), cluster_map, summaries, catalog.get_papers(shown_papers(cluster_map, summaries)))
        size = len(cluster_map.model_dump_json()) / 2**20
        print(
            f"{home}: {cluster_map.paper_count:,} papers, {len(cluster_map.topics)} topics, "
            f"{len(every) - len(cluster_map.topics)} subtopics; read {read_s:.0f} s, map {map_s:.0f} s, "
            f"total {time.perf_counter() - wall:.0f} s wall, {time.process_time() - cpu:.0f} s CPU, peak RSS "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB; map.json would be {size:.1f} MB "
            f"with {len(cluster_map.points):,} points; "
            f"report.md {(Path(out) / 'report.md').stat().st_size / 2**20:.1f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000])
    parser.add_argument("--work", type=Path, help="folder for the homes (default: a temporary one, removed)")
    parser.add_argument("--read-only-home", type=Path, help="map an existing home without writing to it")
    parser.add_argument("--grow-home", type=Path, help="an existing home with a saved map (e.g. the scale "
                        "benchmark's kept 1M home): +0.5%% then +1%% papers, each mapped again, then removed")
    args = parser.parse_args()
    print(f"cpu flags: {flags()}", flush=True)
    if args.read_only_home:
        read_only(args.read_only_home)
        return
    titles, sentences = scale.pieces([scale.SCIFACT / "corpus.jsonl"])
    with tempfile.TemporaryDirectory() as temporary, scale.serving() as server:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LITASSIST_"))}
        env |= {
            "PYTHONPATH": os.environ.get("PYTHONPATH", str(scale.CHECKOUT)),
            "LITASSIST_EMBEDDING_PROVIDER": "openai",
            "LITASSIST_EMBEDDING_MODEL": scale.EMBEDDING_MODEL,
            "OPENAI_BASE_URL": server.base_url,
            "LITASSIST_LLM_PROVIDER": "offline",
        }
        if args.grow_home:
            n = json.loads((args.grow_home / "clusters" / "map.json").read_bytes())["clustered_papers"]
            print(f"N={n:,} ({args.grow_home})", flush=True)
            added = grow(args.grow_home, n, 2 * n, work, titles, sentences, env)  # rows past any ingested
            scale.measured(scale.cli(args.grow_home, "remove", *(f"--source={f}" for f in added)), env)
            return
        for n in args.sizes:
            measure(n, work, titles, sentences, env)


if __name__ == "__main__":
    main()
