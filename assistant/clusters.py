"""Topic clusters over paper embeddings: grouping, stable ids across re-runs, keywords, a 2-D map, and cited
summaries per cluster.

The first half is pure functions (no store, no model). The second half turns a library into a ClusterMap
(reused while the library is unchanged, ids matched to the previous map when it changes) and summarizes
clusters through the agent's citation machinery, caching each summary by the cluster's content.

The method was chosen by measurement (benchmarks/cluster_choice.py) on the 179 seed papers and a 1,000-paper
SciFact sample. k = clusters, sil = cosine silhouette of clustered papers, un = unclustered, kept = papers
keeping their id (match_clusters) after the library grows by 5% and is re-clustered:

    candidate                              seeds: k  sil   un    kept    SciFact: k  sil   un     kept
    k-means, best silhouette k=2..sqrt(n)         5  .093  0.6%  56%              2  .154  15%    (60% in one)
    k-means, best silhouette in candidate_ks      5  .093  0.6%  56%              9  .079  4.1%   54%
    Ward cut, best silhouette                    11  .081  1.1%  73%             32  .053  2.7%   56%
    average-link cosine                           2: 93% in one cluster           6: 58% in one cluster
    HDBSCAN min_cluster_size=5 (384-d)            2  37% noise                    2  52% noise
    HDBSCAN on PCA-10 (+ noise reassigned)        6  49% noise (86% kept)         3  43% noise (30% misfit)
    Ward + k-means, best silhouette              10  .096  1.1%  58%              9  .079  4.5%   62%
    Ward + k-means, default k unless beaten       9  .094  1.1%  88%             22  .076  3.0%   70%   <- this

Silhouette on abstract embeddings is flat (seeds .080-.092 over k=4..14, SciFact .066-.073 over k=8..32), so
its argmax is noise: it flipped between k=9 and k=32 on two SciFact samples, and loses ids on re-runs (56-62%
kept). Unbounded, it picks k=2 on SciFact (a real split, useless as a map). HDBSCAN calls 37-52% of papers noise
in 384-d. Hence: a Ward tree polished by k-means (no random restarts; lower inertia than k-means with 3), with
k = sqrt(n/2) unless a candidate k beats its silhouette clearly (it does on well-separated synthetic topics).
All 5,183 SciFact papers: 6 s, k=40 (MAX_CLUSTERS), 1.8% unclustered; one core.

Scale (benchmarks/topics_scale.py, docs/topics.md): the Ward tree over all papers needs n^2/2 distances (9.3 GiB
at 50k: MemoryError). It now grows over a fixed 4,000-paper sample (by id hash) and a chunked float32 k-means
carries its centroids to every paper, so memory is O(n) and time O(n k) per pass; up to 4,000 papers nothing
changed (seeds through build_map: k=9, silhouette .083, 1.7% unclustered, 100% kept after +5%, before and after).
One sampled tree made the result a draw (benchmarks/topics_quality.py on all of SciFact, 5,183 papers, shipped
int8 MiniLM; kept = +5% growth as above, four growth draws for the "after" rows):

    code                                            k   sil    un     kept +5%
    whole-library Ward (commit 587607a)             40  .077   1.6%   99%
    one tree over 4,000 sampled papers (64819d1^)   40  .072   1.8%   93%  (growth draws 2-4: 98.5, 98.5, 99.1%)
    the same, eight other samples (salted hashes)   40  .073-.080     97.0-98.3%
    steadiest of 3 sampled trees (64819d1, now)     40  .076   1.7%   98%  (growth draws 1-4: 97.6, 98.4, 99.6, 99.1%)

Hence _steadiest_draw: three sampled trees, each polished by k-means on up to 10,000 papers, and the one whose
clustering four 5% leave-outs move least is kept (random 5% leave-outs of the growth test's 4,936-paper
library ranked the shipped draw last of nine). Cost, bounded at any size: the 50k pipeline of topics_scale.py took
54.4 s of CPU with it against 27.1 s without, and 27.1 s once Rows stopped re-normalising every k-means pass.
Each topic is split again into subtopics the same way (subtopic_k), and above TSNE_MAX papers the map is
topic_layout (seeds: trustworthiness@10 .878 against t-SNE's .885). A change of at most INCREMENTAL_SHARE of the
library is not clustered again: new papers join the nearest saved topic and subtopic centroids (library_map,
assign_new_papers; docs/topics.md says what triggers a recompute).

Keywords: plain c-TF-IDF puts "model", "training", "value", "networks" (seeds) or "cells", "patients" (SciFact)
in the top 8 of 3-8 clusters (21% / 18% of top terms shared by >= 3 clusters; 6 "paper words" on the seeds).
Dropping terms present in more than half of the clusters takes that to 0% / 2% with no hand-made list.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import re
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, Field
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.spatial.distance import squareform
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.manifold import MDS, TSNE
from sklearn.metrics import silhouette_score
from threadpoolctl import ThreadpoolController

from .citations import (
    WEAK_SUPPORT_BELOW,
    CitedText,
    Ledger,
    Usage,
    cite,
    quote_lines,
    reference_list,
    support_claims,
)
from .corpus import Paper
from .index import SENTENCE_BREAK, StoredPaper, count_tokens
from .index.catalog import PaperColumns, PaperText
from .llm import message_usage
from .prompting import prompt

log = logging.getLogger("litassist.clusters")

UNCLUSTERED = "unclustered"
UNDATED = "undated"
MIN_PAPERS = 6  # below this, splitting into topics says nothing: one cluster
MIN_CLUSTER_SIZE = 3  # a "topic" of one or two papers is an outlier, not a topic
FIT_COSINE = 0.3  # cosine to the rest of its cluster below this: the paper fits nowhere
MAX_CLUSTERS = 40  # more is not readable as a topic map
SILHOUETTE_SAMPLE = 2000  # exact silhouette is O(n^2); a fixed sample ranks k the same way
K_GRID = 12  # candidate k values tried between the bounds (all of them when the range is shorter)
SILHOUETTE_MARGIN = 0.02  # a k must beat the default k's silhouette by this much: 3x the k-to-k noise measured
WARD_SAMPLE = 4000  # papers in the Ward tree (n^2/2 distances: 64 MB); the rest join by k-means
SAMPLE_DRAWS = 3  # sampled trees tried above WARD_SAMPLE papers; the steadiest is kept (see _steadiest_draw)
STEADY_SAMPLE = 10_000  # papers on which the draws are compared: 15 k-means runs on 10k cost ~20 s of CPU
STEADY_TRIALS = 4  # leave-outs per draw: one leave-out in two or three sets off a shallow optimum's reshuffle
STEADY_DROP = 0.05  # share of those papers left out to test a draw's steadiness (the "+5% growth" of the table)
CHUNK = 32768  # rows per chunked pass: 48 MB of float32 384-d vectors
SUBTOPIC_MIN = 12  # a topic with fewer papers is not split
MAX_SUBTOPICS = 12  # subtopics per topic at most
KEYWORD_SAMPLE = 300  # member texts read for a topic's keywords at most
TSNE_MAX = 10_000  # t-SNE up to here (12 s at 5,183 papers); the linear topic_layout above
KMEANS_ITERATIONS = 50  # Lloyd passes at most (SciFact and the seeds settle in 8-20)
KMEANS_TOLERANCE = 1e-4  # share of papers changing cluster under which k-means has settled
MATCH_JACCARD = 0.3  # member overlap needed for a new cluster to inherit an old id
POINTS_PER_TOPIC = 1000  # map points saved per topic at most (the app draws 4,000 in all): a 1M map stays small
INCREMENTAL_SHARE = 0.01  # papers added or removed since the last clustering, as a share of it, assigned in place
SUMMARY_PAPERS = 400  # members offered to a summary at most (400 abstracts fill a 128k-token window)
DRIFT_MISFIT_SHARE = 0.2  # new papers fitting no topic above this share (and twice the map's): the field moved
_THREADS = ThreadpoolController()  # found once: a threadpool_limits() call looks for the libraries each time
_PHRASE_BREAK = re.compile(r"[.!?;:]+(?:\s+|$)")


@dataclass(frozen=True)
class Clustering:
    """Papers grouped into topics; `quality` carries silhouette (cosine), unclustered share and counts."""

    assignments: dict[str, str]
    method: str
    quality: dict[str, float] = field(default_factory=dict)


def cluster_papers(
    paper_ids: list[str], vectors: np.ndarray, n_clusters: int | None = None, seed: int = 0,
    start: dict[str, str] | None = None, ward_sample: int | None = None, draws: int = SAMPLE_DRAWS,
) -> Clustering:
    """Group papers by topic (Ward tree cut at k, polished by k-means); papers that fit nowhere -> UNCLUSTERED.

    Without n_clusters, k is default_k(n) unless another candidate k beats its cosine silhouette by
    SILHOUETTE_MARGIN (clear structure). With it, k groups are formed, but a group that falls under
    MIN_CLUSTER_SIZE once misfits leave it is unclustered too, so fewer can come back. Same input in any order
    gives the same result: rows are visited in paper-id order. `seed` picks the silhouette sample.

    Scale: the Ward tree and the choice of k use at most `ward_sample` (WARD_SAMPLE) papers, picked by a hash of
    their ids (the same papers on every run; a small change changes the sample a little); k-means over all
    papers then starts from those centroids. Every pass over all papers goes in chunks of CHUNK rows, in float32,
    so memory is O(n) beside the caller's vectors. Up to WARD_SAMPLE papers this is exactly the whole-library
    Ward + k-means measured above.

    `start` continues an earlier clustering of (mostly) the same papers: k-means starts from the centroids of its
    clusters, over the papers still present, instead of a fresh Ward cut. A fresh cut of a slightly changed
    library can reshape the tree (removing 4 of the 179 seed papers kept only 72-75% of papers in their cluster);
    continuing keeps a small change small (see build_map).
    """
    if len(paper_ids) != len(vectors):
        raise ValueError(f"{len(paper_ids)} paper ids but {len(vectors)} vectors")
    if n_clusters is not None and n_clusters < 1:
        raise ValueError(f"n_clusters must be at least 1, not {n_clusters}")
    order = np.asarray(sorted(range(len(paper_ids)), key=paper_ids.__getitem__), dtype=np.int64)
    ids = [paper_ids[i] for i in order]
    if len(set(ids)) != len(ids):
        raise ValueError("paper ids must be unique")
    if not ids:
        return Clustering({}, "empty", {"clusters": 0.0, "unclustered_share": 0.0})
    if len(ids) < MIN_PAPERS or n_clusters == 1:
        return Clustering(dict.fromkeys(ids, "c1"), "single cluster", {"clusters": 1.0, "unclustered_share": 0.0})
    rows = Rows(vectors, order)
    centroids = _start_centroids(ids, rows, start) if start else None
    if centroids is not None:
        method = f"k-means continued from the previous clusters, k={len(centroids)}"
    else:
        sample = _id_sample(ids, ward_sample or WARD_SAMPLE)
        k, centroids = _fresh_centroids(rows.take(sample), n_clusters, seed)
        method = f"ward+kmeans k={k}"
        if len(sample) < len(ids):
            centroids = _steadiest_draw(ids, rows, k, centroids, len(sample), seed, draws)
            method += f" (steadiest of {draws} trees over {len(sample):,} sampled papers)"
    labels, centroids = kmeans(rows, centroids)
    kept = _drop_misfits(rows, labels)
    assignments = _name_clusters(ids, kept)
    clustered = np.flatnonzero(kept >= 0)
    quality = {
        "k": float(len(centroids)),
        "clusters": float(len(set(kept[clustered].tolist()))),
        "silhouette": _silhouette_sampled(rows, kept, clustered, seed),
        "unclustered": float(len(ids) - len(clustered)),
        "unclustered_share": float(1 - len(clustered) / len(ids)),
    }
    return Clustering(assignments, method, quality)


class Rows:
    """Unit float32 rows of `vectors` in `order` (paper-id order), read in chunks: the caller's matrix is never
    copied whole (1M x 384 float32 is 1.5 GB; a sorted, normalised float64 copy would be 3 GB more).

    Norms are taken once, not on every k-means pass (re-normalising each chunk was 28% of `summarize` at 50k, by
    py-spy); unit float32 rows already in id order (as store.paper_columns returns them) are read as views."""

    def __init__(self, vectors: np.ndarray, order: np.ndarray):
        self.vectors, self.order = vectors, order
        self.in_order = len(order) == len(vectors) and bool(np.array_equal(order, np.arange(len(order))))
        self.scale: np.ndarray | None = None
        norms = [np.linalg.norm(self._raw(part), axis=1) for part in self._parts()]
        norms_all = np.concatenate(norms) if norms else np.ones(0, np.float32)
        if not np.allclose(norms_all, 1, atol=1e-5):
            self.scale = (1 / np.where(norms_all == 0, 1, norms_all)).astype(np.float32)

    def __len__(self) -> int:
        return len(self.order)

    def _parts(self) -> Iterable[slice]:
        for begin in range(0, len(self.order), CHUNK):
            yield slice(begin, min(begin + CHUNK, len(self.order)))

    def _raw(self, part: slice) -> np.ndarray:
        return np.asarray(self.vectors[part] if self.in_order else self.vectors[self.order[part]], dtype=np.float32)

    def take(self, positions: np.ndarray) -> np.ndarray:
        rows = np.asarray(self.vectors[self.order[positions]], dtype=np.float32)
        return rows * self.scale[positions, None] if self.scale is not None else rows

    def chunks(self) -> Iterable[tuple[slice, np.ndarray]]:
        for part in self._parts():
            rows = self._raw(part)
            yield part, rows * self.scale[part, None] if self.scale is not None else rows


def _id_sample(ids: list[str], size: int, salt: str = "") -> np.ndarray:
    """Positions of up to `size` papers with the smallest id hashes, in id order: the same papers on every run,
    and a library that changes by a few percent keeps all but a few percent of its sample. Another `salt` draws
    another sample."""
    if len(ids) <= size:
        return np.arange(len(ids))
    hashes = np.fromiter(
        (int.from_bytes(hashlib.blake2b((salt + i).encode(), digest_size=8).digest(), "big") for i in ids),
        dtype=np.uint64, count=len(ids),
    )
    return np.sort(np.argpartition(hashes, size)[:size])


def _steadiest_draw(
    ids: list[str], rows: Rows, k: int, first: np.ndarray, size: int, seed: int, draws: int,
) -> np.ndarray:
    """Of `draws` sampled Ward trees (cut at k, polished by k-means), the centroids whose k-means clustering
    moves least when STEADY_DROP of the papers are left out: converged on up to STEADY_SAMPLE papers.

    Which 4,000 papers the tree sees decides which flat k-means optimum the library lands in, and some are
    shallow: on SciFact (5,183 papers) eight draws gave silhouette .072-.080 and kept 93-98% of papers in their
    topic after +5% growth; the one shipped drew the worst of both (.072, 93%). The papers a 5% leave-out moves
    (two leave-outs, averaged) ranked that draw last of nine, and the two steadiest draws kept 98% (module docstring).
    """
    if draws < 2:
        return first
    trial = _id_sample(ids, STEADY_SAMPLE, "steady")
    trial_ids, trial_rows = [ids[i] for i in trial], Rows(rows.vectors, rows.order[trial])
    candidates = [first] + [_fresh_centroids(rows.take(_id_sample(ids, size, str(salt))), k, seed)[1]
                            for salt in range(1, draws)]
    scores, settled = [], []
    for centroids in candidates:
        labels, centroids = kmeans(trial_rows, centroids)
        kept = []
        for leave_out in range(STEADY_TRIALS):
            left_out = _id_sample(trial_ids, round(STEADY_DROP * len(trial)), f"leave-out {leave_out}")
            rest = np.setdiff1d(np.arange(len(trial)), left_out)
            kept.append(np.mean(kmeans(Rows(rows.vectors, trial_rows.order[rest]), centroids)[0] == labels[rest]))
        scores.append(float(np.mean(kept)))
        settled.append(centroids)
    return settled[int(np.argmax(scores))]


def _fresh_centroids(x: np.ndarray, n_clusters: int | None, seed: int) -> tuple[int, np.ndarray]:
    """(k, centroids) from a Ward tree cut of the sample x polished by k-means on it; k given or chosen by
    silhouette (see cluster_papers). The tree needs len(x)^2 distances: 128 MB at the 4,000-paper sample."""
    tree = linkage(_distances(x), "ward")
    whole = Rows(x, np.arange(len(x)))
    if n_clusters:
        return min(n_clusters, len(x)), kmeans(whole, _cut_centroids(x, tree, min(n_clusters, len(x))))[1]
    fits = {k: kmeans(whole, _cut_centroids(x, tree, k)) for k in candidate_ks(len(x))}
    score = {k: _silhouette(x, labels, seed) for k, (labels, _) in fits.items()}
    best = max(fits, key=lambda k: (score[k], -k))
    k = best if score[best] >= score[default_k(len(x))] + SILHOUETTE_MARGIN else default_k(len(x))
    return k, fits[k][1]


def _distances(x: np.ndarray) -> np.ndarray:
    """Condensed Euclidean distances between the rows, from one BLAS product in float64: scipy's pdist (what
    linkage runs on raw rows) loops in C on one core, 9% of `summarize` at 50k; the trees come out the same."""
    x = x.astype(np.float64)
    squares = np.einsum("ij,ij->i", x, x)
    distances = x @ x.T
    distances *= -2
    distances += squares[:, None]
    distances += squares[None, :]
    np.maximum(distances, 0, out=distances)
    np.sqrt(distances, out=distances)
    np.fill_diagonal(distances, 0)
    return squareform(distances, checks=False)


def _cut_centroids(x: np.ndarray, tree: np.ndarray, k: int) -> np.ndarray:
    cut = fcluster(tree, k, "maxclust") - 1
    return np.stack([x[cut == c].mean(axis=0) for c in range(cut.max() + 1)])


def _start_centroids(ids: list[str], rows: Rows, start: dict[str, str]) -> np.ndarray | None:
    """The centroids of `start`'s clusters over the papers still present; None when fewer than two have a paper."""
    names = sorted({c for c in start.values() if c != UNCLUSTERED})
    index = {name: i for i, name in enumerate(names)}
    labels = np.array([index.get(start.get(paper_id, UNCLUSTERED), -1) for paper_id in ids])
    sums, counts = _cluster_sums(rows, labels, len(names))
    present = counts > 0
    if present.sum() < 2:
        return None
    return (sums[present] / counts[present, None]).astype(np.float32)


def _cluster_sums(rows: Rows, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster sums of the rows (float64) and member counts; label -1 counts nowhere."""
    sums = np.zeros((k, rows.vectors.shape[1]), dtype=np.float64)
    for part, chunk in rows.chunks():
        sums += _label_sums(labels[part], k, chunk)
    return sums, np.bincount(labels[labels >= 0], minlength=k)


def _label_sums(labels: np.ndarray, k: int, chunk: np.ndarray) -> np.ndarray:
    """Per-cluster sums of one chunk's rows (float32); label -1 counts nowhere."""
    member = labels >= 0
    one_hot = csr_matrix((np.ones(member.sum(), np.float32), (labels[member], np.flatnonzero(member))),
                         shape=(k, len(labels)))
    return one_hot @ chunk


def kmeans(rows: Rows, centroids: np.ndarray, max_iter: int = KMEANS_ITERATIONS) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means from the given centroids, one chunked pass per iteration (assign, then sum): O(n k d) time,
    O(k d) memory beside the labels. Stops when under KMEANS_TOLERANCE of the papers change cluster. One BLAS
    thread: the chunk products are then summed in the same order on every run (repeatable ids); a centroid that
    loses all its papers keeps its place. Each chunk is read once a pass, assigned and summed (reading it twice
    cost a copy per chunk for a topic's rows, which are not contiguous)."""
    centroids = np.asarray(centroids, dtype=np.float32)
    labels = np.full(len(rows), -1, dtype=np.int64)
    with _THREADS.limit(limits=1):
        for _ in range(max_iter):
            previous = labels.copy()
            half_norms = 0.5 * np.einsum("ij,ij->i", centroids, centroids)
            sums = np.zeros((len(centroids), rows.vectors.shape[1]), dtype=np.float64)
            for part, chunk in rows.chunks():
                labels[part] = np.argmax(chunk @ centroids.T - half_norms, axis=1)
                sums += _label_sums(labels[part], len(centroids), chunk)
            counts = np.bincount(labels, minlength=len(centroids))
            moved = np.mean(labels != previous)
            centroids = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centroids).astype(
                np.float32
            )
            if moved <= KMEANS_TOLERANCE:
                break
    return labels, centroids


def candidate_ks(n: int) -> list[int]:
    """The k values tried for n papers: sqrt(n)/4 .. sqrt(n), within 2..MAX_CLUSTERS, and default_k(n).
    Unbounded, silhouette picks k=2 on SciFact: a real split, but useless as a topic map."""
    high = max(2, min(MAX_CLUSTERS, math.ceil(math.sqrt(n))))
    low = min(high, max(2, math.ceil(math.sqrt(n) / 4)))
    return sorted({round(k) for k in np.geomspace(low, high, K_GRID)} | {default_k(n)})


def default_k(n: int) -> int:
    """k when silhouette has no clear preference, as on real abstracts (flat within +-0.006 over k=8..32):
    the sqrt(n/2) rule of thumb, so k depends on the corpus size only and re-runs keep their clusters."""
    return min(MAX_CLUSTERS, max(2, round(math.sqrt(n / 2))))


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def _silhouette(x: np.ndarray, labels: np.ndarray, seed: int) -> float:
    if not 2 <= len(set(labels.tolist())) < len(labels):
        return 0.0
    sample = SILHOUETTE_SAMPLE if len(labels) > SILHOUETTE_SAMPLE else None
    return float(silhouette_score(x, labels, metric="cosine", sample_size=sample, random_state=seed))


def _silhouette_sampled(rows: Rows, labels: np.ndarray, clustered: np.ndarray, seed: int) -> float:
    """Cosine silhouette of the clustered papers on a fixed sample of SILHOUETTE_SAMPLE (exact below that)."""
    if len(clustered) > SILHOUETTE_SAMPLE:
        clustered = np.sort(np.random.default_rng(seed).choice(clustered, SILHOUETTE_SAMPLE, replace=False))
    return _silhouette(rows.take(clustered), labels[clustered], seed)


def _drop_misfits(rows: Rows, labels: np.ndarray) -> np.ndarray:
    """Label -1 for papers unlike the rest of their cluster and for clusters too small to be a topic.

    "The rest": cosine to the centroid of the other members, from the cluster's sum S in one chunked pass:
    x.(S - x) / |S - x| with |S - x|^2 = |S|^2 - 2 x.S + 1. Counting the paper itself inflates small clusters:
    three unrelated papers have cosine 0.58 to their own centroid but ~0 to the other two's.
    """
    k = int(labels.max()) + 1
    sums = _cluster_sums(rows, labels, k)[0].astype(np.float32)
    square = np.einsum("ij,ij->i", sums, sums)
    kept = labels.copy()
    for part, chunk in rows.chunks():
        own = labels[part]
        dot = np.einsum("ij,ij->i", chunk, sums[own])
        rest = np.sqrt(np.maximum(square[own] - 2 * dot + 1, 0))
        fit = np.where(rest > 1e-6, (dot - 1) / np.where(rest > 1e-6, rest, 1), -1.0)
        kept[part] = np.where(fit < FIT_COSINE, -1, own)
    sizes = np.bincount(kept[kept >= 0], minlength=k)
    kept[(kept >= 0) & (sizes[np.maximum(kept, 0)] < MIN_CLUSTER_SIZE)] = -1
    return kept


def _name_clusters(ids: list[str], labels: np.ndarray) -> dict[str, str]:
    """Provisional ids c1, c2, ... by size (largest first), ties by smallest member id (ids are sorted)."""
    sizes = Counter(label for label in labels.tolist() if label >= 0)
    first_member: dict[int, int] = {}
    for index, label in enumerate(labels.tolist()):
        first_member.setdefault(label, index)
    ranked = sorted(sizes, key=lambda label: (-sizes[label], first_member[label]))
    names = {label: f"c{rank}" for rank, label in enumerate(ranked, start=1)} | {-1: UNCLUSTERED}
    return {paper_id: names[label] for paper_id, label in zip(ids, labels.tolist())}


def subtopic_k(size: int) -> int:
    """Subtopics in a topic of `size` papers: the sqrt(n/2) rule again, at most MAX_SUBTOPICS; none (0) under
    SUBTOPIC_MIN papers, where a split would make topics of two or three papers."""
    return 0 if size < SUBTOPIC_MIN else min(MAX_SUBTOPICS, max(2, round(math.sqrt(size / 2))))


def cluster_subtopics(
    paper_ids: list[str], vectors: np.ndarray, topics: dict[str, str], previous: dict[str, str] | None = None,
) -> dict[str, str]:
    """Paper id -> subtopic id ("c3.2": subtopic 2 of topic c3) for the members of each topic big enough to split;
    papers in no subtopic (too few papers, or unlike every subtopic) are left out.

    Each topic is clustered on its own (cluster_papers with k = subtopic_k, a WARD_SAMPLE / 4 tree, one draw: a
    topic's papers are fewer and the steadiness test would triple the cost), so the cost is one more k-means pass
    over the library. `previous` (the last map's subtopics) is continued where a topic kept its id and changed by
    at most K_HOLD, and its subtopic ids are matched as topic ids are."""
    rows_of: dict[str, list[int]] = {}
    for row, paper_id in enumerate(paper_ids):
        if topics.get(paper_id, UNCLUSTERED) != UNCLUSTERED:
            rows_of.setdefault(topics[paper_id], []).append(row)
    out: dict[str, str] = {}
    for topic, rows in sorted(rows_of.items()):
        k = subtopic_k(len(rows))
        if not k:
            continue
        member_ids = [paper_ids[row] for row in rows]
        before = {p: s.split(".", 1)[1] for p, s in (previous or {}).items() if s.startswith(topic + ".")}
        before = {p: f"c{s}" for p, s in before.items()}
        changed = len(before.keys() ^ set(member_ids)) / max(1, len(before))
        start = before if before and changed <= K_HOLD else None
        result = cluster_papers(member_ids, vectors[rows], k, start=start, ward_sample=WARD_SAMPLE // 4,
                                draws=1).assignments
        if before:
            result = match_clusters(before, result)
        out |= {p: f"{topic}.{s[1:]}" for p, s in result.items() if s != UNCLUSTERED}
    return out


def keyword_sample(member_ids: list[str], size: int = KEYWORD_SAMPLE) -> list[str]:
    """The members whose texts make a topic's keywords: all up to `size`, else a fixed id-hash sample. Bounded
    cost at any library size, and the same sample while the membership barely changes (stable labels)."""
    return [member_ids[i] for i in _id_sample(member_ids, size)]


def match_clusters(old: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    """Give new clusters the ids of the old clusters they continue, so names, summaries and links survive re-runs.

    Overlap is Jaccard over papers present in both runs (added or removed papers do not count against a
    cluster), matched one-to-one by the Hungarian method; below MATCH_JACCARD a cluster gets a fresh id
    (after the largest old "cN"). UNCLUSTERED maps to itself.
    """
    common = old.keys() & new.keys()
    old_groups = _groups({p: old[p] for p in common})
    new_groups = _groups(new)
    old_ids, new_ids = sorted(old_groups), sorted(new_groups, key=lambda c: (-len(new_groups[c]), min(new_groups[c])))
    overlap = np.zeros((len(new_ids), len(old_ids)))
    for row, new_id in enumerate(new_ids):
        members = new_groups[new_id] & common
        for col, old_id in enumerate(old_ids):
            union = members | old_groups[old_id]
            overlap[row, col] = len(members & old_groups[old_id]) / len(union) if union else 0.0
    renamed = {UNCLUSTERED: UNCLUSTERED}
    for row, col in zip(*linear_sum_assignment(overlap, maximize=True)):
        if overlap[row, col] >= MATCH_JACCARD:
            renamed[new_ids[row]] = old_ids[col]
    used = [int(c[1:]) for c in set(old.values()) if c[:1] == "c" and c[1:].isdigit()]
    fresh = max(used, default=0)
    for new_id in new_ids:
        if new_id not in renamed:
            fresh += 1
            renamed[new_id] = f"c{fresh}"
    return {paper_id: renamed[cluster] for paper_id, cluster in new.items()}


def _groups(assignments: dict[str, str]) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    for paper_id, cluster in assignments.items():
        if cluster != UNCLUSTERED:
            groups.setdefault(cluster, set()).add(paper_id)
    return groups


def cluster_keywords(texts_by_cluster: dict[str, list[str]], top_n: int = 8) -> dict[str, list[str]]:
    """TermCounts.keywords over texts given per cluster (each text one member)."""
    named = {f"{key}\0{i}": text for key, texts in texts_by_cluster.items() for i, text in enumerate(texts)}
    return TermCounts(named).keywords({key: [f"{key}\0{i}" for i in range(len(texts))]
                                       for key, texts in texts_by_cluster.items()}, top_n)


class TermCounts:
    """Unigram and bigram counts of each text, within sentences ("...benchmark data. Protein folding..." makes no
    "data protein"). Counted with sklearn's analyzer into one Counter per text: CountVectorizer.fit_transform on
    the sentences (as before) built a sentence-by-term matrix and sorted its vocabulary: 6% slower at 50k.

    map_library counts the topics' samples together and each topic's subtopics' samples together: a vocabulary
    stays that of a few thousand texts at any library size (one over all samples held 590k terms at 1M from the
    benchmark's recombined sentences; real abstracts have many more distinct bigrams)."""

    def __init__(self, texts: dict[str, str]):
        self.texts = texts
        self.row = {key: row for row, key in enumerate(texts)}
        analyze = CountVectorizer(ngram_range=(1, 2), stop_words="english",
                                  token_pattern=r"(?u)\b[^\W\d_][\w-]+\b").build_analyzer()
        vocabulary: dict[str, int] = {}
        indices, counts, ends = array("i"), array("i"), array("q", [0])
        for text in texts.values():
            terms: Counter[str] = Counter()
            for sentence in _PHRASE_BREAK.split(text):
                terms.update(analyze(sentence))
            indices.extend([vocabulary.setdefault(term, len(vocabulary)) for term in terms])
            counts.extend(terms.values())
            ends.append(len(indices))
        self.terms = np.array(list(vocabulary), dtype=object)
        self.counts = csr_matrix((np.frombuffer(counts, np.int32), np.frombuffer(indices, np.int32),
                                  np.frombuffer(ends, np.int64)), shape=(len(texts), len(vocabulary)))
        self.present = csr_matrix((np.ones(self.counts.nnz, dtype=np.int32), self.counts.indices,
                                   self.counts.indptr), shape=self.counts.shape)

    def keywords(self, members: dict[str, list[str]], top_n: int = 8) -> dict[str, list[str]]:
        """The most distinctive unigrams and bigrams of each cluster (its members' texts) among the clusters asked
        together, by class-based TF-IDF (BERTopic's c-TF-IDF): tf is per class, idf = log(1 + mean words per
        class / term count).

        Terms found in more than half of the clusters are dropped: that removes "model", "propose", "cells",
        "patients" and every other corpus-wide word without a hand-made list (see module docstring). A term must
        occur in two of the cluster's texts (when it has two): one paper's coinage ("aesopagent") names no topic.
        Terms come back as the members write them most often ("LLMs", "Lie algebra", not "llms", "lie").
        """
        keys = sorted(members)
        if not keys:  # a topic too small for subtopics
            return {}
        owners = [(row, self.row[member]) for row, key in enumerate(keys) for member in members[key]]
        in_class = csr_matrix((np.ones(len(owners), dtype=np.int32), ([r for r, _ in owners], [t for _, t in owners])),
                              shape=(len(keys), len(self.texts)))
        counts = (in_class @ self.counts).tocsc()
        documents = (in_class @ self.present).tocsc()  # texts of each class holding each term
        distinctive = np.flatnonzero(np.diff(counts.indptr) <= max(1, len(keys) // 2))  # classes holding each term
        counts, documents = counts[:, distinctive].tocsr(), documents[:, distinctive].tocsr()
        terms = self.terms[distinctive]
        class_words = np.asarray(counts.sum(axis=1)).ravel()
        idf = np.log(1 + class_words.mean() / np.maximum(1, np.asarray(counts.sum(axis=0)).ravel()))
        keywords = {}
        for row, key in enumerate(keys):
            span = slice(counts.indptr[row], counts.indptr[row + 1])
            columns = counts.indices[span]
            spread = np.asarray(documents[row, columns].todense()).ravel()
            scores = np.where(spread >= min(2, len(members[key])),
                              counts.data[span] / max(1, class_words[row]) * idf[columns], 0)
            ranked = sorted(
                (i for i in range(len(columns)) if scores[i] > 0), key=lambda i: (-scores[i], terms[columns[i]])
            )
            keywords[key] = surface_forms([str(terms[columns[i]]) for i in ranked[:top_n]],
                                          [self.texts[member] for member in members[key]])
        return keywords


def surface_forms(terms: list[str], texts: list[str]) -> list[str]:
    """Each lower-case term as the texts write it most often inside a sentence (ties: the lower-case form, then
    alphabetical). Sentence starts and Title Case titles count only for a term never written otherwise, and
    then only capitals past the first letter are kept: "Protein folding" stays protein folding, "LLMs" stays.
    A text is searched only if its lower-case form holds each word of the term: a distinctive term is in few of
    a cluster's texts, and the scan for it was 31% of keyword extraction at 50k."""
    out = []
    lowered = [text.lower() for text in texts]
    for term in terms:
        pattern = re.compile(r"(?<![\w-])" + r"\s+".join(map(re.escape, term.split())) + r"(?![\w-])", re.IGNORECASE)
        inside: Counter[str] = Counter()
        initial: Counter[str] = Counter()
        words = term.split()
        for text in (text for text, lower in zip(texts, lowered) if all(word in lower for word in words)):
            for match in pattern.finditer(text):
                form = " ".join(match.group().split())
                at_start = _sentence_start(text, match.start())
                title_case = " " in form and form == form.title() and form != term
                (initial if at_start or title_case else inside)[form] += 1
        if not inside:
            inside = Counter({form[:1].lower() + form[1:]: count for form, count in initial.items()})
        out.append(min(inside, key=lambda form: (-inside[form], form != term, form)) if inside else term)
    return out


def _sentence_start(text: str, position: int) -> bool:
    """Whether only spaces stand between `position` and the text's start or a sentence's end. Scans back over
    the spaces only: slicing the text before each match (as it did) made surface_forms quadratic in a text's
    length, 11% of `summarize` at 50k (py-spy)."""
    before = position - 1
    while before >= 0 and text[before].isspace():
        before -= 1
    return before < 0 or text[before] in ".!?:"


def representative_papers(member_ids: list[str], vectors: np.ndarray, n: int = 3) -> list[str]:
    """The n members nearest the cluster's centroid (cosine): the papers to show or summarise for a topic.
    `vectors` holds the members' rows in `member_ids` order. Ties (equal to 1e-9) go to the smaller id. Ranked in
    numpy: a Python sort key per member (and a dict of rows per cluster) was 14% of the map at 1M (py-spy)."""
    if not member_ids:
        return []
    order = sorted(range(len(member_ids)), key=member_ids.__getitem__)
    x = _unit(np.asarray(vectors, dtype=np.float64)[order])
    similarity = np.round(x @ _unit(x.mean(axis=0, keepdims=True))[0], 9)
    return [member_ids[order[i]] for i in np.lexsort((np.arange(len(order)), -similarity))[:n]]


def content_key(member_ids: Iterable[str], content_keys: dict[str, str]) -> str:
    """Hash of the members and their content: equal iff the same papers with the same text (cache summaries by it)."""
    payload = "\n".join(f"{paper_id}\t{content_keys[paper_id]}" for paper_id in sorted(set(member_ids)))
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()


def project_2d(vectors: np.ndarray, labels: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """2-D coordinates (row i for vectors[i]) for a topic map: t-SNE up to TSNE_MAX papers, above that (when the
    topic of each row is given, -1 = none) topic_layout, which is linear in n; t-SNE over 50,000 papers would
    take minutes and over a million hours."""
    if labels is not None and len(vectors) > TSNE_MAX and (labels >= 0).any():
        return topic_layout(vectors, labels, seed)
    return tsne_2d(vectors, seed)


def tsne_2d(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """t-SNE (cosine, PCA start, fixed seed, 500 iterations).

    Measured against PCA: trustworthiness@10 0.90 vs 0.74 on the seeds, 0.98 vs 0.76 on all of SciFact, and
    topics that PCA piles on top of each other come apart (2-D cluster silhouette 0.10 vs -0.01). Cost: ~12 s
    for 5,183 papers on one core. t-SNE depends on row order, so rows are put in a canonical order (by value)
    first; and it runs on one OpenMP thread because its parallel sums are not order-stable. Both make the map
    bit-for-bit repeatable for the same set of vectors (two threads on a busy 2-core machine were 5x slower).
    """
    x = _unit(np.asarray(vectors, dtype=np.float64))
    if len(x) < 2:
        return np.zeros((len(x), 2))
    canonical = np.lexsort(x.T[::-1])
    tsne = TSNE(2, metric="cosine", init="pca", perplexity=min(30.0, (len(x) - 1) / 3), max_iter=500, random_state=seed)
    with _THREADS.limit(limits=1):
        coords = tsne.fit_transform(x[canonical])
    return coords[np.argsort(canonical)]


def topic_layout(vectors: np.ndarray, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """A map in two chunked passes: topics placed by metric MDS of their centroids' cosine distances, each
    paper at its topic's place plus its offset from the centroid along the topic's two main axes (PCA of the
    members), scaled to stay within 45% of the distance to the nearest other topic. A paper without a topic
    (-1) sits with the nearest one. Same papers, same map: no random start beyond `seed`."""
    rows = Rows(vectors, np.arange(len(vectors)))
    k = int(labels.max()) + 1
    sums, counts = _cluster_sums(rows, labels, k)
    centroids = _unit((sums / np.maximum(counts, 1)[:, None]).astype(np.float32))
    topics = labels.copy()
    for part, chunk in rows.chunks():  # papers without a topic join the nearest centroid
        lost = topics[part] < 0
        if lost.any():
            topics[part][lost] = np.argmax(chunk[lost] @ centroids.T, axis=1)
    places = (
        np.zeros((k, 2))
        if k < 2
        else MDS(2, dissimilarity="precomputed", random_state=seed, n_init=1).fit_transform(
            np.clip(1 - centroids.astype(np.float64) @ centroids.T.astype(np.float64), 0, 2)
        )
    )
    scatter = np.zeros((k, vectors.shape[1], vectors.shape[1]))
    for part, chunk in rows.chunks():
        for topic in np.unique(topics[part]):
            offset = chunk[topics[part] == topic] - centroids[topic]
            scatter[topic] += offset.T @ offset
    axes, spread = [], np.zeros(k)
    for topic in range(k):
        values, vectors_t = np.linalg.eigh(scatter[topic])
        axes.append(vectors_t[:, -2:][:, ::-1] * np.sign(vectors_t[:1, -2:][:, ::-1] + 1e-12))  # sign fixed
        spread[topic] = 2.5 * math.sqrt(max(values[-1], 1e-12) / max(1, np.sum(topics == topic)))
    gaps = np.linalg.norm(places[:, None] - places[None], axis=-1) + np.eye(k) * 1e9
    radius = 0.45 * (gaps.min(axis=1) if k > 1 else np.ones(1))
    basis = np.stack(axes).astype(np.float32)
    coords = np.zeros((len(vectors), 2))
    for part, chunk in rows.chunks():
        own = topics[part]
        local = np.einsum("nd,ndj->nj", chunk - centroids[own], basis[own])
        coords[part] = places[own] + local * (radius[own] / spread[own])[:, None]
    return coords


# --- the topic map of a library -------------------------------------------------------------------------------

LABEL_KEYWORDS = 3  # keywords in a cluster's label
REPRESENTATIVES = 4  # papers nearest the centroid, shown first and quoted in extractive summaries
K_HOLD = 0.1  # an automatic k is kept until the library has grown or shrunk by this share since it was chosen


class Cluster(BaseModel):
    """One topic (or subtopic, id "c3.2" inside topic "c3"): its stable id, a label from its keywords, its members
    (representatives first), papers per year ("undated" counted apart) and its subtopics."""

    cluster_id: str
    label: str
    keywords: list[str]
    paper_ids: list[str]
    representative_ids: list[str]
    content_key: str
    years: dict[str, int] = Field(default_factory=dict)
    subtopics: list[Cluster] = Field(default_factory=list)
    centroid: str = ""  # the members' mean unit vector, base64 float32: papers added later join the nearest


class MapPoint(BaseModel):
    paper_id: str
    title: str
    cluster_id: str
    x: float
    y: float
    subtopic_id: str | None = None


class ClusterMap(BaseModel):
    """The library's topics (largest first) with their subtopics, the group of papers that fit no topic, and 2-D
    points: every paper's up to POINTS_PER_TOPIC per topic, a sample above (map_sample)."""

    library_version: str
    requested_clusters: int | None = None
    auto_k: tuple[int, int] | None = None  # (k, library size when chosen) of an automatic choice, for K_HOLD
    method: str
    quality: dict[str, float]
    topics: list[Cluster]
    unclustered: Cluster | None = None  # cluster_id UNCLUSTERED
    points: list[MapPoint]
    clustered_papers: int = 0  # library size at the last full clustering (0: a map from an older version)
    changed_since: int = 0  # papers added or removed since then, assigned without clustering again

    @property
    def paper_count(self) -> int:
        """Papers in the map (every paper is in one group, the unclustered included)."""
        return sum(len(c.paper_ids) for c in self.groups())

    def groups(self) -> list[Cluster]:
        """The topics, then the unclustered group: every paper of the map is in exactly one."""
        return [*self.topics, *([self.unclustered] if self.unclustered else [])]

    def get(self, cluster_id: str) -> Cluster | None:
        """A topic or a subtopic by id."""
        return next((c for c in self.every_cluster() if c.cluster_id == cluster_id), None)

    def every_cluster(self) -> list[Cluster]:
        """Topics, each followed by its subtopics, then the unclustered group."""
        return [c for top in self.groups() for c in (top, *top.subtopics)]

    def assignments(self) -> dict[str, str]:
        return {paper_id: c.cluster_id for c in self.groups() for paper_id in c.paper_ids}

    def subtopic_assignments(self) -> dict[str, str]:
        return {paper_id: s.cluster_id for c in self.topics for s in c.subtopics for paper_id in s.paper_ids}


class ClusterSummary(CitedText):
    """A few cited sentences on one cluster; citations point only to its members."""

    cluster_id: str
    title: str
    content_key: str


def distinct_labels(
    keywords: dict[str, list[str]], previous: dict[str, str] | None = None, exclude: str = "",
) -> dict[str, str]:
    """A label per cluster (of siblings: the topics, or one topic's subtopics) from its top keywords, as written.

    A word gives way to a listed bigram holding it ("reinforcement" -> "reinforcement learning"); a phrase
    sharing a stem with a chosen one is skipped; a phrase already in two earlier labels is passed over, so no
    phrase names three topics; phrases made only of `exclude`'s words (a subtopic's parent label) are skipped.
    A cluster keeps its `previous` label while every phrase of it is still among its keywords: labels change
    when the members change substantially, not when two keywords swap ranks.
    """
    used: Counter[str] = Counter()
    blocked = _stems(exclude.replace(",", " "))
    labels = {}
    for cluster_id in sorted(keywords, key=_cluster_number):
        words = keywords[cluster_id]
        old = (previous or {}).get(cluster_id)
        if old and {p.strip().lower() for p in old.split(",")} <= {w.lower() for w in words}:
            chosen = [p.strip() for p in old.split(",")]
        else:
            chosen = []
            for word in words:
                word = next((k for k in words if " " in k and word.lower() in k.lower().split()), word)
                if (used[word.lower()] >= 2 or _stems(word) <= blocked
                        or any(_stems(word) & _stems(other) for other in chosen)):
                    continue
                chosen.append(word)
                if len(chosen) == LABEL_KEYWORDS:
                    break
        used.update(phrase.lower() for phrase in chosen)
        label = ", ".join(chosen) or "Miscellaneous"
        labels[cluster_id] = label[0].upper() + label[1:] if label[:1].islower() else label
    return labels


def _stems(phrase: str) -> set[str]:
    """Words with one inflection cut ("pruning", "pruned", "prune" -> "prun"), so a label does not say one word
    thrice ("Network pruning, pruned model, prune" was a seed subtopic's label)."""
    return {_stem(w.lower()) for w in phrase.split()}


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def paper_text(paper: Paper | PaperText) -> str:
    return paper.abstract if paper.title_derived else f"{paper.title}. {paper.abstract}"


def display_title(paper: Paper) -> str:
    """The title, or for a paper without one "untitled (its first words…)": said once, never as a sentence that
    the summary then repeats."""
    if not paper.title_derived:
        return paper.title
    words = (paper.abstract or paper.title).split()
    return f"untitled ({' '.join(words[:8])}{'…' if len(words) > 8 else ''})"


def year_counts(years: Iterable[int | None]) -> dict[str, int]:
    """Papers per year, oldest first, with the undated counted as "undated" (never guessed)."""
    counts = Counter(str(year) if year else UNDATED for year in years)
    return {year: counts[year] for year in sorted(counts, key=lambda y: (y == UNDATED, y))}


# paper id -> title and abstract, for the ids asked: store.paper_texts (no records built), or records (tests)
PaperReader = Callable[[Sequence[str]], Mapping[str, Paper | PaperText]]
VectorReader = Callable[[Sequence[str]], PaperColumns]  # the columns and vectors of the ids asked (store.paper_columns)


def build_map(
    stored: list[StoredPaper], vectors: np.ndarray, version: str, n_clusters: int | None = None,
    previous: ClusterMap | None = None,
) -> ClusterMap:
    """map_library over papers held in memory (tests, benchmarks): rows of `stored` and `vectors` aligned."""
    papers = {sp.paper.paper_id: sp.paper for sp in stored}
    columns = PaperColumns(list(papers), [sp.content_key for sp in stored], [sp.paper.year for sp in stored],
                           np.asarray(vectors))
    return map_library(columns, lambda ids: {p: papers[p] for p in ids}, version, n_clusters, previous)


def map_library(
    columns: PaperColumns, read_papers: PaperReader, version: str, n_clusters: int | None = None,
    previous: ClusterMap | None = None,
) -> ClusterMap:
    """Cluster a library into topics and subtopics, keep the ids of `previous` where clusters continue, label
    them, and lay the papers out in 2-D. Texts are read (`read_papers`) only for the keyword samples and the
    saved map points: at a million papers that is tens of thousands, not a million 3-4 KB records.

    An automatic k is held while the library size stays within K_HOLD of the size it was chosen at: the
    sqrt(n/2) rule would otherwise step from 9 to 10 clusters when 5 papers join 179, reshuffling 16% of them.
    While k is held (or the same k is asked for again) and at most K_HOLD of the papers changed since `previous`,
    its clusters are continued rather than recomputed (cluster_papers' `start`): papers added or removed move
    few others, whichever way the library changed.
    """
    ids, vectors = columns.ids, columns.vectors
    held = previous.auto_k if previous and n_clusters is None and previous.requested_clusters is None else None
    if held and abs(len(ids) - held[1]) > K_HOLD * held[1]:
        held = None
    same_k = previous is not None and (held is not None or (n_clusters is not None
                                                            and n_clusters == previous.requested_clusters))
    start = None
    if previous is not None and same_k and _changed_share(previous, ids) <= K_HOLD:
        start = previous.assignments()
    result = cluster_papers(ids, vectors, n_clusters or (held[0] if held else None), start=start)
    auto_k = None if n_clusters else held or (int(result.quality.get("k", 1)), len(ids))
    assignments = match_clusters(previous.assignments(), result.assignments) if previous else result.assignments
    subtopics = cluster_subtopics(ids, vectors, assignments, previous.subtopic_assignments() if previous else None)
    members, sub_members = _members(assignments), _members(subtopics)
    topic_members = {c: m for c, m in members.items() if c != UNCLUSTERED}
    row_of = {p: i for i, p in enumerate(ids)}
    centroids = _centroids(vectors, row_of, topic_members | sub_members)
    representatives = {c: representative_papers(m, vectors[[row_of[p] for p in m]], REPRESENTATIVES)
                       for c, m in (topic_members | sub_members).items()}
    drawn = map_sample(assignments, representatives)
    samples = {c: keyword_sample(m) for c, m in (topic_members | sub_members).items()}
    sampled = sorted({p for m in samples.values() for p in m})
    papers = read_papers(sorted(set(sampled) | drawn))
    texts = {p: paper_text(papers[p]) for p in sampled}
    titles = {p: papers[p].title for p in drawn}
    del papers  # 200k papers at 1M: only their texts and the drawn points' titles are kept
    old_labels = {c.cluster_id: c.label for c in previous.every_cluster()} if previous else {}
    keywords = TermCounts({p: texts[p] for c in topic_members for p in samples[c]}).keywords(
        {c: samples[c] for c in topic_members})
    labels = distinct_labels(keywords, old_labels)
    content_keys, years = dict(zip(ids, columns.content_keys)), dict(zip(ids, columns.years))

    def cluster(cluster_id: str, paper_ids: list[str], words: list[str], label: str, subs: list[Cluster]) -> Cluster:
        representative = representatives.get(cluster_id, [])
        return Cluster(
            cluster_id=cluster_id, label=label, keywords=words, paper_ids=representative + sorted(
                set(paper_ids) - set(representative)), representative_ids=representative,
            content_key=content_key(paper_ids, content_keys), years=year_counts(years[p] for p in paper_ids),
            subtopics=subs, centroid=centroids.get(cluster_id, ""),
        )

    clusters = []
    for cluster_id, paper_ids in members.items():
        siblings = {s: m for s, m in sub_members.items() if s.split(".")[0] == cluster_id}
        sub_words = TermCounts({p: texts[p] for s in siblings for p in samples[s]}).keywords(
            {s: samples[s] for s in siblings})
        sub_labels = distinct_labels(sub_words, old_labels, exclude=labels.get(cluster_id, ""))
        subs = sorted((cluster(s, m, sub_words[s], sub_labels[s], []) for s, m in siblings.items()),
                      key=lambda c: (-len(c.paper_ids), _cluster_number(c.cluster_id)))
        label = labels.get(cluster_id, "Unclustered")
        clusters.append(cluster(cluster_id, paper_ids, keywords.get(cluster_id, []), label, subs))
    clusters.sort(key=lambda c: (c.cluster_id == UNCLUSTERED, -len(c.paper_ids), _cluster_number(c.cluster_id)))
    topic_rows = {c.cluster_id: i for i, c in enumerate(clusters) if c.cluster_id != UNCLUSTERED}
    coords = (
        project_2d(vectors, np.array([topic_rows.get(assignments[p], -1) for p in ids])) if ids else np.zeros((0, 2))
    )
    points = [
        MapPoint(paper_id=p, title=titles[p], cluster_id=assignments[p], subtopic_id=subtopics.get(p),
                 x=round(float(coords[row_of[p], 0]), 4), y=round(float(coords[row_of[p], 1]), 4))
        for p in sorted(drawn)
    ]
    return ClusterMap(library_version=version, requested_clusters=n_clusters, auto_k=auto_k, method=result.method,
                      quality=result.quality, points=points, clustered_papers=len(ids),
                      topics=[c for c in clusters if c.cluster_id != UNCLUSTERED],
                      unclustered=next((c for c in clusters if c.cluster_id == UNCLUSTERED), None))


def _centroids(vectors: np.ndarray, row_of: dict[str, int], members: dict[str, list[str]]) -> dict[str, str]:
    """Each cluster's mean unit vector, as base64 float32 (1.5 KB at 384-d), for assigning papers added later."""
    out = {}
    for cluster_id, paper_ids in members.items():
        mean = _unit(np.asarray(vectors[sorted(row_of[p] for p in paper_ids)], dtype=np.float32)).mean(axis=0)
        out[cluster_id] = base64.b64encode(mean.astype(np.float32).tobytes()).decode("ascii")
    return out


def _decode(centroid: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(centroid), dtype=np.float32)


def map_sample(
    assignments: dict[str, str], always: dict[str, list[str]], per_topic: int = POINTS_PER_TOPIC
) -> set[str]:
    """The papers whose points the saved map keeps: every paper of a topic (and of the unclustered group) up to
    `per_topic`, else that many evenly spaced in id order, plus every cluster's `always` (its representatives).
    40 topics keep at most ~41,000 points whatever the library's size; the app draws a share of them."""
    drawn = {p for paper_ids in always.values() for p in paper_ids}
    for paper_ids in _members(assignments).values():
        picks = np.linspace(0, len(paper_ids) - 1, min(per_topic, len(paper_ids))).round().astype(int)
        drawn.update(paper_ids[i] for i in picks)
    return drawn


def assign_new_papers(
    previous: ClusterMap, listing: PaperColumns, added: PaperColumns, version: str, read_papers: PaperReader,
    read_vectors: VectorReader,
) -> ClusterMap | None:
    """`previous` brought up to date without clustering again, or None when the map must be recomputed.

    Each added paper goes to the nearest topic centroid, then to the nearest subtopic centroid of that topic,
    with the rule that makes papers unclustered in a full run: below FIT_COSINE to the (rest of the) group, it is
    in none. Removed papers leave their groups. Ids, labels and keywords stay as they are; member counts, years,
    content keys (so summaries of changed groups are rewritten) and the map follow. New points are drawn beside
    the representative of their topic nearest to them. Cost: reading the ids, keys and years of the library
    (no vectors, no records) and the vectors of the added papers: O(change x k) arithmetic.

    None (recompute) when, since the last full clustering, more than INCREMENTAL_SHARE of its papers were added
    or removed; when more than DRIFT_MISFIT_SHARE (and more than twice the map's share) of 3 or more new papers
    fit no topic (a new field is arriving); when removals leave a topic or subtopic under MIN_CLUSTER_SIZE; or when
    the map has no centroids (written by an older version).
    """
    before = previous.assignments()
    present = set(listing.ids)
    removed = before.keys() - present
    changed = previous.changed_since + len(removed) + len(added.ids)
    groups = previous.every_cluster()
    if (not previous.clustered_papers or changed > INCREMENTAL_SHARE * previous.clustered_papers
            or any(not c.centroid for c in groups if c.cluster_id != UNCLUSTERED) or not previous.topics):
        return None
    row_of = {p: i for i, p in enumerate(added.ids)}
    topic_of = _nearest(previous.topics, added.ids, added.vectors)
    subtopic_of: dict[str, str] = {}
    misfits = sum(topic == UNCLUSTERED for topic in topic_of.values())
    unclustered_share = 1 - sum(len(c.paper_ids) for c in previous.topics) / max(1, len(before))
    if misfits >= 3 and misfits / len(added.ids) > max(DRIFT_MISFIT_SHARE, 2 * unclustered_share):
        return None
    for topic in previous.topics:
        if topic.subtopics:
            inside = [p for p in added.ids if topic_of[p] == topic.cluster_id]
            found = _nearest(topic.subtopics, inside, added.vectors[[row_of[p] for p in inside]])
            subtopic_of |= {p: s for p, s in found.items() if s != UNCLUSTERED}
    joining: dict[str, list[str]] = {}
    for paper_id in added.ids:
        for group in (topic_of[paper_id], subtopic_of.get(paper_id)):
            if group:
                joining.setdefault(group, []).append(paper_id)
    content_keys, years = dict(zip(listing.ids, listing.content_keys)), dict(zip(listing.ids, listing.years))

    def updated(group: Cluster) -> Cluster | None:
        gone, new = set(group.paper_ids) & removed, joining.get(group.cluster_id, [])
        subtopics = [updated(s) for s in group.subtopics]
        if not gone and not new and all(a is b for a, b in zip(subtopics, group.subtopics)):
            return group
        kept = [p for p in group.paper_ids if p not in gone]
        if group.cluster_id != UNCLUSTERED and len(kept) + len(new) < MIN_CLUSTER_SIZE or None in subtopics:
            return None
        representative = [p for p in group.representative_ids if p not in gone]
        paper_ids = representative + sorted((set(kept) - set(representative)) | set(new))
        return group.model_copy(update={
            "paper_ids": paper_ids, "representative_ids": representative, "subtopics": subtopics,
            "content_key": content_key(paper_ids, content_keys), "years": year_counts(years[p] for p in paper_ids)})

    topics = [updated(c) for c in previous.topics]
    if None in topics:
        return None
    unclustered = previous.unclustered
    if joining.get(UNCLUSTERED) and unclustered is None:
        unclustered = Cluster(cluster_id=UNCLUSTERED, label="Unclustered", keywords=[], paper_ids=[],
                              representative_ids=[], content_key="")
    if unclustered is not None:
        unclustered = updated(unclustered)
    points = [p for p in previous.points if p.paper_id not in removed]
    points += _new_points(previous, points, topic_of, subtopic_of, added, read_papers, read_vectors)
    return ClusterMap.model_validate(previous.model_dump() | {
        "library_version": version, "topics": topics, "unclustered": unclustered,
        "points": sorted(points, key=lambda p: p.paper_id), "changed_since": changed})


def _nearest(groups: list[Cluster], paper_ids: list[str], vectors: np.ndarray) -> dict[str, str]:
    """Paper id -> the nearest group's id, or UNCLUSTERED under FIT_COSINE: k-means' rule (nearest mean), then
    the misfit rule of _drop_misfits (for a paper outside the group, "the rest" is the whole group)."""
    if not paper_ids:
        return {}
    means = np.stack([_decode(g.centroid) for g in groups])
    x = _unit(np.asarray(vectors, dtype=np.float32))
    nearest = np.argmax(x @ means.T - 0.5 * np.einsum("ij,ij->i", means, means), axis=1)
    fit = np.einsum("ij,ij->i", x, means[nearest]) / np.maximum(np.linalg.norm(means[nearest], axis=1), 1e-12)
    return {p: groups[g].cluster_id if f >= FIT_COSINE else UNCLUSTERED
            for p, g, f in zip(paper_ids, nearest.tolist(), fit.tolist())}


def _new_points(previous: ClusterMap, points: list[MapPoint], topic_of: dict[str, str], subtopic_of: dict[str, str],
                added: PaperColumns, read_papers: PaperReader, read_vectors: VectorReader) -> list[MapPoint]:
    """Points for added papers whose group still has room (POINTS_PER_TOPIC): each at the place of the most
    similar representative of its topic (any drawn point for the unclustered), nudged by a hash of its id."""
    drawn = Counter(p.cluster_id for p in points)
    at = {p.paper_id: p for p in points}
    anchors = {c.cluster_id: [p for p in c.representative_ids if p in at] or [p.paper_id for p in points
                                                                          if p.cluster_id == c.cluster_id][:1]
               for c in previous.groups()}
    wanted = [p for p in added.ids if drawn[topic_of[p]] < POINTS_PER_TOPIC and anchors.get(topic_of[p])]
    if not wanted:
        return []
    anchor_vectors = read_vectors(sorted({a for p in wanted for a in anchors[topic_of[p]]}))
    anchor_rows = {p: _unit(v[None].astype(np.float32))[0] for p, v in zip(anchor_vectors.ids, anchor_vectors.vectors)}
    titles = read_papers(wanted)
    row_of = {p: i for i, p in enumerate(added.ids)}
    out = []
    for paper_id in wanted:
        x = _unit(added.vectors[row_of[paper_id]][None].astype(np.float32))[0]
        options = [a for a in anchors[topic_of[paper_id]] if a in anchor_rows]
        anchor = at[max(options, key=lambda a: float(anchor_rows[a] @ x))] if options else None
        if anchor is None:
            continue
        nudge = hashlib.blake2b(paper_id.encode(), digest_size=2).digest()
        out.append(MapPoint(paper_id=paper_id, title=titles[paper_id].title, cluster_id=topic_of[paper_id],
                            subtopic_id=subtopic_of.get(paper_id), x=round(anchor.x + (nudge[0] - 127.5) / 2550, 4),
                            y=round(anchor.y + (nudge[1] - 127.5) / 2550, 4)))
    return out


def library_map(store: Any, previous: ClusterMap | None, n_clusters: int | None = None) -> ClusterMap:
    """The topic map of the store's committed library: `previous` if nothing changed, updated in place after a
    small change (assign_new_papers), else clustered again (map_library, keeping previous ids). One read
    transaction throughout, so an ingest under way is not half in it."""
    with store.reading() as state:
        if previous and previous.library_version == state.version and previous.requested_clusters == n_clusters:
            return previous
        if previous and previous.requested_clusters == n_clusters and previous.clustered_papers:
            listing = store.paper_columns(vectors=False)
            before = previous.assignments()
            added = [p for p in listing.ids if p not in before]
            if len(added) <= INCREMENTAL_SHARE * previous.clustered_papers:
                updated = assign_new_papers(previous, listing, store.paper_columns(added), state.version,
                                            store.paper_texts, store.paper_columns)
                if updated is not None:
                    return updated
        return map_library(store.paper_columns(), store.paper_texts, state.version, n_clusters, previous)


def _members(assignments: dict[str, str]) -> dict[str, list[str]]:
    members: dict[str, list[str]] = {}
    for paper_id in sorted(assignments):
        members.setdefault(assignments[paper_id], []).append(paper_id)
    return members


def _changed_share(previous: ClusterMap, paper_ids: list[str]) -> float:
    """Papers added or removed since `previous`, as a share of its size."""
    before = previous.assignments().keys()
    return len(before ^ set(paper_ids)) / max(1, len(before))


def _cluster_number(cluster_id: str) -> tuple[int, ...]:
    """"c3" -> (3,), "c3.12" -> (3, 12): ids in numeric order; "unclustered" -> ()."""
    return tuple(int(part) for part in cluster_id[1:].split(".") if part.isdigit())


def summary_key(cluster: Cluster, provider: str, model: str | None) -> str:
    """A summary is reused while its cluster has the same papers with the same text, from the same model."""
    return hashlib.sha1(f"{cluster.content_key}|{provider}|{model or ''}".encode()).hexdigest()


class ClusterSummarizer:
    """Writes a cluster's cited summary with the configured chat model, or extractively without one."""

    def __init__(self, model: Any, provider: str, model_name: str | None, context_window: int, answer_tokens: int):
        self.model = model
        self.provider = provider
        self.model_name = model_name
        self.evidence_budget = max(400, context_window - answer_tokens - 400)

    def evidence_ids(self, cluster: Cluster) -> list[str]:
        """The members a summary draws on, whose records `summarize` needs: up to SUMMARY_PAPERS for a model;
        the representatives for an extractive summary, which quotes and cites only them. Reading 400 members
        per cluster for it was 6% of `summarize` at 50k."""
        return cluster.representative_ids if self.model is None else cluster.paper_ids[:SUMMARY_PAPERS]

    def summarize(self, cluster: Cluster, papers: dict[str, Paper]) -> ClusterSummary:
        ledger = Ledger()
        for paper_id in self.evidence_ids(cluster):  # representatives first, so they get the low numbers
            ledger.add(papers[paper_id], papers[paper_id].abstract)
        usage = (0, 0)
        quoted: list[tuple[int, int]] = []
        if self.model is None:
            title = cluster.label
            text, quoted = self._extractive(cluster, ledger)
        else:
            title, text, usage = self._generate(cluster, ledger)
        cited = cite(text, ledger, quoted)  # only members are in the ledger; numbered by first appearance
        claims = support_claims(cited, None, WEAK_SUPPORT_BELOW)  # the sentences each rests on
        if cited.removed:
            log.info(
                "cluster %s: removed %d citations to papers outside the cluster", cluster.cluster_id, cited.removed
            )
        return ClusterSummary(
            cluster_id=cluster.cluster_id, title=title, text=cited.text, references=reference_list(cited.citations),
            citations=cited.citations, claims=claims, quoted=cited.quoted, provider=self.provider,
            model=self.model_name,
            extractive=self.model is None, removed_citations=cited.removed, content_key=cluster.content_key,
            usage=Usage(prompt_tokens=usage[0], completion_tokens=usage[1]),
        )

    def _generate(self, cluster: Cluster, ledger: Ledger) -> tuple[str, str, tuple[int, int]]:
        evidence = ledger.render(list(ledger.items.values()), self.evidence_budget)
        request = prompt("cluster_summary").format(keywords=", ".join(cluster.keywords), evidence=evidence)
        reply = self.model.invoke(request)
        text = str(reply.content).strip()
        title = cluster.label
        first, _, rest = text.partition("\n")
        if first.lower().startswith("title:"):
            title = first.split(":", 1)[1].strip().strip("*\"'") or cluster.label
            text = rest.strip()
        prompt_tokens, completion_tokens = message_usage(reply)
        if not prompt_tokens:
            prompt_tokens, completion_tokens = count_tokens(request), count_tokens(str(reply.content))
        return title, text, (prompt_tokens, completion_tokens)

    @staticmethod
    def _extractive(cluster: Cluster, ledger: Ledger) -> tuple[str, list[tuple[int, int]]]:
        """Keywords plus, from each representative paper, the sentence that holds most of the cluster's keywords;
        and where the quoted titles and sentences are: brackets inside them are the paper's own text ("...and
        3' uridylation [1][2][3][4]" from its reference list), never citations."""
        listed = []
        for paper_id in cluster.representative_ids:
            evidence = ledger.items[paper_id]
            sentences = [s for s in SENTENCE_BREAK.split(evidence.paper.abstract) if len(s.split()) >= 6]
            if not sentences:
                continue
            best = max(
                sentences, key=lambda s: (sum(k.lower() in s.lower() for k in cluster.keywords), -sentences.index(s))
            )
            named = "" if evidence.paper.title_derived else f"{evidence.paper.title}: "  # its title is this text
            listed.append((f"{named}{best.strip().rstrip('.')}.", evidence.number))
        return quote_lines(prompt("cluster_extractive").format(
            size=len(cluster.paper_ids), keywords=", ".join(cluster.keywords), sentences="\x00"), listed)


# --- trends ----------------------------------------------------------------------------------------------------

TREND_YEARS = 3  # "recent" = the library's last 3 years with papers, against the 3 before
RISING_FACTOR = 1.5  # a topic rises when it grew 1.5x faster than the library over those windows
RISING_MIN = 5  # ... and has at least this many recent papers (2 -> 4 is no trend)


class Trend(BaseModel):
    """A topic's papers in the recent and the earlier window, against the library's; undated papers apart."""

    cluster_id: str
    recent: int
    earlier: int
    growth: float  # recent / earlier (earlier 0 -> recent, as if from one paper)
    library_growth: float
    undated: int
    window: tuple[int, int, int, int]  # earlier from..to, recent from..to (years)

    @property
    def rising(self) -> bool:
        return self.recent >= RISING_MIN and self.growth >= RISING_FACTOR * self.library_growth

    def describe(self) -> str:
        a, b, c, d = self.window
        undated = f"; {self.undated} undated papers not counted" if self.undated else ""
        return (f"{self.recent} papers in {c}–{d} vs {self.earlier} in {a}–{b} (×{self.growth:.1f}; "
                f"the library ×{self.library_growth:.1f}){undated}")


def trends(cluster_map: ClusterMap) -> list[Trend]:
    """Per topic, growth over the last TREND_YEARS years with papers against the library's, rising first then by
    growth. Empty when the library has no dated papers."""
    library: Counter[str] = Counter()
    for group in cluster_map.groups():
        library.update(group.years)
    dated = [int(y) for y in library if y != UNDATED]
    if not dated:
        return []
    last = max(dated)
    window = (last - 2 * TREND_YEARS + 1, last - TREND_YEARS, last - TREND_YEARS + 1, last)

    def counts(years: dict[str, int]) -> tuple[int, int]:
        recent = sum(n for y, n in years.items() if y != UNDATED and int(y) >= window[2])
        earlier = sum(n for y, n in years.items() if y != UNDATED and window[0] <= int(y) <= window[1])
        return recent, earlier

    overall = counts(dict(library))
    library_growth = overall[0] / max(1, overall[1])
    out = []
    for topic in cluster_map.topics:
        recent, earlier = counts(topic.years)
        out.append(Trend(cluster_id=topic.cluster_id, recent=recent, earlier=earlier,
                         growth=recent / max(1, earlier), library_growth=library_growth,
                         undated=topic.years.get(UNDATED, 0), window=window))
    return sorted(out, key=lambda t: (not t.rising, -t.growth, _cluster_number(t.cluster_id)))
