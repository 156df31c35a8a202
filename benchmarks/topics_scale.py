"""Time and peak RSS of the topic pipeline (clusters, subtopics, 2-D layout, keywords) at library sizes up to 1M.

    python benchmarks/topics_scale.py --sizes 5000 50000 1000000 [--code /work/main] [--limit-gb 8]

Papers are "instant embeddings" as in the scale issue: texts recombined from SciFact abstracts (4-8 sentences of
one abstract plus one sentence of another, so topics exist), embedded as a feature-hashed bag of words (384
signed buckets, normalised). A bag of words is linear, so a paper's vector is the sum of its sentences' vectors.
Stage times are wall-clock; total_cpu_s is the process's CPU time, the figure to compare on a shared machine
(one BLAS/OpenMP thread throughout, so CPU time is what an idle core would take). Each size runs in a fresh process
(peak RSS = that process's ru_maxrss, the vectors included), optionally under an address-space cap (`--limit-gb`), and
with `--code DIR` on another checkout's code (the "before" run: the old cluster_papers / project_2d / keywords over all
texts; a failure is reported as its exception line). `--whole` times map_library in one piece instead (records built
only for the papers it asks for) and prints the size of the map the app would save.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SCIFACT = Path(__file__).resolve().parents[1] / ".." / "shared" / "eval" / "scifact" / "corpus.jsonl"
CACHE = Path("/tmp/topics_scale")
SENTENCE = re.compile(r"(?<=[.!?])\s+")


def sentences() -> tuple[list[str], np.ndarray, np.ndarray]:
    """SciFact sentences, and per abstract its first sentence's index and its sentence count."""
    texts, starts, counts = [], [], []
    with SCIFACT.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            parts = [s for s in SENTENCE.split(f"{record.get('title', '')}. {record.get('text', '')}") if s.strip()]
            starts.append(len(texts))
            counts.append(len(parts))
            texts += parts
    return texts, np.array(starts), np.array(counts)


def generate(n: int) -> Path:
    """vectors_<n>.npy (float32, unit rows) and picks_<n>.npy (each paper's sentence indices, -1 = none)."""
    CACHE.mkdir(exist_ok=True)
    out = CACHE / f"vectors_{n}.npy"
    if out.exists():
        return out
    from sklearn.feature_extraction.text import HashingVectorizer

    texts, starts, counts = sentences()
    hashed = HashingVectorizer(n_features=384, alternate_sign=True, norm=None).transform(texts).toarray()
    rng = np.random.default_rng(n)
    base = rng.integers(len(starts), size=n)
    picks = np.full((n, 9), -1, dtype=np.int32)
    length = rng.integers(4, 9, size=n)
    for slot in range(8):
        chosen = starts[base] + rng.integers(0, 1 << 30, size=n) % counts[base]
        picks[:, slot] = np.where(slot < length, chosen, -1)
    other = rng.integers(len(starts), size=n)
    picks[:, 8] = starts[other] + rng.integers(0, 1 << 30, size=n) % counts[other]
    vectors = np.zeros((n, 384), dtype=np.float32)
    for begin in range(0, n, 8192):
        part = picks[begin : begin + 8192]
        block = np.where((part >= 0)[..., None], hashed[np.maximum(part, 0)], 0).sum(axis=1)
        vectors[begin : begin + 8192] = block / np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-9)
    np.save(CACHE / f"picks_{n}.npy", picks)
    np.save(out, vectors)
    return out


def run_whole(n: int, ids: list[str], vectors: np.ndarray, text: object) -> dict[str, object]:
    """map_library as the app runs it (records read only for keyword samples and saved points), and the size of
    the map it saves."""
    from assistant import clusters
    from assistant.corpus import Paper
    from assistant.index.catalog import PaperColumns

    years = [2000 + i % 25 for i in range(n)]

    def read_papers(wanted: list[str]) -> dict[str, Paper]:
        return {p: Paper(paper_id=p, title=f"Paper {p}", abstract=text(p), year=years[int(p[1:])]) for p in wanted}

    wall, cpu = time.perf_counter(), time.process_time()
    cluster_map = clusters.map_library(PaperColumns(ids, ids, years, vectors), read_papers, "v1")
    seconds = time.perf_counter() - wall
    return {"n": n, "topics": len(cluster_map.topics), "subtopics": sum(len(c.subtopics) for c in cluster_map.topics),
            "map_json_mb": round(len(cluster_map.model_dump_json()) / 2**20, 1), "points": len(cluster_map.points),
            "total_wall_s": round(seconds, 1), "total_cpu_s": round(time.process_time() - cpu, 1),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}


def run(n: int, new_code: bool, whole: bool = False) -> dict[str, object]:
    """The pipeline in this process; stage seconds and peak RSS (GB)."""
    from assistant import clusters

    vectors = np.load(CACHE / f"vectors_{n}.npy")
    picks = np.load(CACHE / f"picks_{n}.npy")
    texts, _, _ = sentences()
    ids = [f"p{i:07d}" for i in range(n)]
    row = {paper_id: i for i, paper_id in enumerate(ids)}

    def text(paper_id: str) -> str:
        return " ".join(texts[j] for j in picks[row[paper_id]] if j >= 0)

    if whole:
        return run_whole(n, ids, vectors, text)
    stages: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    started = time.perf_counter()
    result = clusters.cluster_papers(ids, vectors)
    stages["clusters"] = time.perf_counter() - started
    members: dict[str, list[str]] = {}
    for paper_id, cluster in result.assignments.items():
        members.setdefault(cluster, []).append(paper_id)
    members.pop(clusters.UNCLUSTERED, None)
    started = time.perf_counter()
    if new_code:
        subtopics = clusters.cluster_subtopics(ids, vectors, result.assignments)
        stages["subtopics"] = time.perf_counter() - started
        names = sorted(members)
        labels = np.array([names.index(c) if c in members else -1 for c in (result.assignments[p] for p in ids)])
        started = time.perf_counter()
        clusters.project_2d(vectors, labels)
        stages["layout"] = time.perf_counter() - started
        started = time.perf_counter()
        clusters.cluster_keywords({c: [text(p) for p in clusters.keyword_sample(m)] for c, m in members.items()})
        stages["keywords"] = time.perf_counter() - started
        extra = {"subtopics": len(set(subtopics.values()))}
    else:
        clusters.project_2d(vectors)
        stages["layout"] = time.perf_counter() - started
        started = time.perf_counter()
        clusters.cluster_keywords({c: [text(p) for p in m] for c, m in members.items()})
        stages["keywords"] = time.perf_counter() - started
        extra = {}
    return {
        "n": n,
        "topics": len(members),
        **extra,
        "unclustered": round(result.quality["unclustered_share"], 4),
        "silhouette": round(result.quality["silhouette"], 3),
        "seconds": {k: round(v, 1) for k, v in stages.items()},
        "total_wall_s": round(time.perf_counter() - wall, 1),
        "total_cpu_s": round(time.process_time() - cpu, 1),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def child(n: int, new_code: bool, limit_gb: float | None, whole: bool) -> None:
    if limit_gb:
        cap = int(limit_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    started = time.perf_counter()
    try:
        print(json.dumps(run(n, new_code, whole)))
    except Exception as error:  # noqa: BLE001 - the "before" code's failure is a result to report
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(json.dumps({"n": n, "failed": f"{type(error).__name__}: {str(error)[:120]}",
                          "after_s": round(time.perf_counter() - started, 1), "peak_rss_gb": round(rss, 2)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--code", help="run another checkout's assistant package (e.g. /work/main: before)")
    parser.add_argument("--limit-gb", type=float, help="address-space cap for each run")
    parser.add_argument("--whole", action="store_true",
                        help="time map_library as a whole (as the app runs it) and the size of the map it saves")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--old", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, not args.old, args.limit_gb, args.whole)
        return
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    print(f"cpu flags: {' '.join(f for f in flags.split() if f.startswith(('avx', 'sse4', 'fma')))}")
    code = Path(args.code or Path(__file__).resolve().parents[1])
    environment = os.environ | {"PYTHONPATH": str(code), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    for n in args.sizes:
        generate(n)
        command = [sys.executable, __file__, "--child", str(n)] + (["--old"] if args.code else [])
        command += ["--limit-gb", str(args.limit_gb)] if args.limit_gb else []
        command += ["--whole"] if args.whole else []
        done = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
        print(done.stdout.strip() or f"n={n}: exited {done.returncode}: {done.stderr.strip()[-300:]}", flush=True)


if __name__ == "__main__":
    main()
