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

Keywords: plain c-TF-IDF puts "model", "training", "value", "networks" (seeds) or "cells", "patients" (SciFact)
in the top 8 of 3-8 clusters (21% / 18% of top terms shared by >= 3 clusters; 6 "paper words" on the seeds).
Dropping terms present in more than half of the clusters takes that to 0% / 2% with no hand-made list.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from .citations import WEAK_SUPPORT_BELOW, CitedText, Ledger, Usage, cite, reference_list, support_claims
from .corpus import Paper
from .index import SENTENCE_BREAK, StoredPaper, count_tokens
from .index.store import write_atomic
from .llm import message_usage, prompt

log = logging.getLogger("litassist.clusters")

UNCLUSTERED = "unclustered"
MIN_PAPERS = 6  # below this, splitting into topics says nothing: one cluster
MIN_CLUSTER_SIZE = 3  # a "topic" of one or two papers is an outlier, not a topic
FIT_COSINE = 0.3  # cosine to the rest of its cluster below this: the paper fits nowhere
MAX_CLUSTERS = 40  # more is not readable as a topic map
SILHOUETTE_SAMPLE = 2000  # exact silhouette is O(n^2); a fixed sample ranks k the same way
K_GRID = 12  # candidate k values tried between the bounds (all of them when the range is shorter)
SILHOUETTE_MARGIN = 0.02  # a k must beat the default k's silhouette by this much: 3x the k-to-k noise measured
MATCH_JACCARD = 0.3  # member overlap needed for a new cluster to inherit an old id
_PHRASE_BREAK = re.compile(r"[.!?;:]+(?:\s+|$)")


@dataclass(frozen=True)
class Clustering:
    """Papers grouped into topics; `quality` carries silhouette (cosine), unclustered share and counts."""

    assignments: dict[str, str]
    method: str
    quality: dict[str, float] = field(default_factory=dict)


def cluster_papers(
    paper_ids: list[str], vectors: np.ndarray, n_clusters: int | None = None, seed: int = 0,
    start: dict[str, str] | None = None,
) -> Clustering:
    """Group papers by topic (Ward tree cut at k, polished by k-means); papers that fit nowhere -> UNCLUSTERED.

    Without n_clusters, k is default_k(n) unless another candidate k beats its cosine silhouette by
    SILHOUETTE_MARGIN (clear structure). With it, k groups are formed, but a group that falls under
    MIN_CLUSTER_SIZE once misfits leave it is unclustered too, so fewer can come back. Same input in any order
    gives the same result: rows are sorted by paper id. `seed` picks the silhouette sample above 2,000 papers.

    `start` continues an earlier clustering of (mostly) the same papers: k-means starts from the centroids of its
    clusters, over the papers still present, instead of a fresh Ward cut. A fresh cut of a slightly changed
    library can reshape the tree (removing 4 of the 179 seed papers kept only 72-75% of papers in their cluster);
    continuing keeps a small change small (see build_map).
    """
    if len(paper_ids) != len(vectors):
        raise ValueError(f"{len(paper_ids)} paper ids but {len(vectors)} vectors")
    if len(set(paper_ids)) != len(paper_ids):
        raise ValueError("paper ids must be unique")
    if n_clusters is not None and n_clusters < 1:
        raise ValueError(f"n_clusters must be at least 1, not {n_clusters}")
    order = sorted(range(len(paper_ids)), key=lambda i: paper_ids[i])
    ids = [paper_ids[i] for i in order]
    if not ids:
        return Clustering({}, "empty", {"clusters": 0.0, "unclustered_share": 0.0})
    if len(ids) < MIN_PAPERS or n_clusters == 1:
        return Clustering(dict.fromkeys(ids, "c1"), "single cluster", {"clusters": 1.0, "unclustered_share": 0.0})
    x = _unit(np.asarray(vectors, dtype=np.float64)[order])
    continued = _continue_from(ids, x, start) if start else None
    if continued is not None:
        k, labels = len(set(continued.tolist())), continued
        method = f"k-means continued from the previous clusters, k={k}"
    else:
        k, labels = _fresh_clusters(x, n_clusters, seed)
        method = f"ward+kmeans k={k}"
    kept = _drop_misfits(x, labels)
    assignments = _name_clusters(ids, kept)
    clustered = kept >= 0
    quality = {
        "k": float(k),
        "clusters": float(len(set(kept[clustered]))),
        "silhouette": _silhouette(x[clustered], kept[clustered], seed),
        "unclustered": float(np.sum(~clustered)),
        "unclustered_share": float(np.mean(~clustered)),
    }
    return Clustering(assignments, method, quality)


def _fresh_clusters(x: np.ndarray, n_clusters: int | None, seed: int) -> tuple[int, np.ndarray]:
    """(k, labels) from a Ward tree cut, k given or chosen by silhouette (see cluster_papers)."""
    tree = linkage(x, "ward")
    if n_clusters:
        k = min(n_clusters, len(x))
        return k, _ward_kmeans(x, tree, k)
    fits = {k: _ward_kmeans(x, tree, k) for k in candidate_ks(len(x))}
    score = {k: _silhouette(x, labels, seed) for k, labels in fits.items()}
    best = max(fits, key=lambda k: (score[k], -k))
    k = best if score[best] >= score[default_k(len(x))] + SILHOUETTE_MARGIN else default_k(len(x))
    return k, fits[k]


def _continue_from(ids: list[str], x: np.ndarray, start: dict[str, str]) -> np.ndarray | None:
    """k-means labels started from the centroids of `start`'s clusters (papers still present); None when fewer
    than two of its clusters have a paper left."""
    members: dict[str, list[int]] = {}
    for row, paper_id in enumerate(ids):
        cluster = start.get(paper_id, UNCLUSTERED)
        if cluster != UNCLUSTERED:
            members.setdefault(cluster, []).append(row)
    if len(members) < 2:
        return None
    centroids = np.stack([x[rows].mean(axis=0) for _, rows in sorted(members.items())])
    with threadpool_limits(1, user_api="openmp"):  # see _ward_kmeans
        return KMeans(len(centroids), init=centroids, n_init=1).fit_predict(x)


def candidate_ks(n: int) -> list[int]:
    """The k values tried for n papers: sqrt(n)/4 .. sqrt(n) (at most MAX_CLUSTERS), and default_k(n).
    Unbounded, silhouette picks k=2 on SciFact: a real split, but useless as a topic map."""
    low = max(2, math.ceil(math.sqrt(n) / 4))
    high = max(low, min(MAX_CLUSTERS, math.ceil(math.sqrt(n))))
    return sorted({round(k) for k in np.geomspace(low, high, K_GRID)} | {default_k(n)})


def default_k(n: int) -> int:
    """k when silhouette has no clear preference, as on real abstracts (flat within +-0.006 over k=8..32):
    the sqrt(n/2) rule of thumb, so k depends on the corpus size only and re-runs keep their clusters."""
    return min(MAX_CLUSTERS, max(2, round(math.sqrt(n / 2))))


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def _ward_kmeans(x: np.ndarray, tree: np.ndarray, k: int) -> np.ndarray:
    """Cut the Ward tree at k, then polish with k-means started from those centroids: no random restarts needed,
    lower inertia than k-means with 3 random restarts, and one tree serves every k. One OpenMP thread: k-means
    adds up per-thread partial sums in whatever order the threads finish, which is not repeatable."""
    cut = fcluster(tree, k, "maxclust") - 1
    centroids = np.stack([x[cut == c].mean(axis=0) for c in range(cut.max() + 1)])
    with threadpool_limits(1, user_api="openmp"):
        return KMeans(len(centroids), init=centroids, n_init=1).fit_predict(x)


def _silhouette(x: np.ndarray, labels: np.ndarray, seed: int) -> float:
    if not 2 <= len(set(labels.tolist())) < len(labels):
        return 0.0
    sample = SILHOUETTE_SAMPLE if len(labels) > SILHOUETTE_SAMPLE else None
    return float(silhouette_score(x, labels, metric="cosine", sample_size=sample, random_state=seed))


def _drop_misfits(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Label -1 for papers unlike the rest of their cluster and for clusters too small to be a topic.

    "The rest": cosine to the centroid of the other members. Counting the paper itself inflates small clusters:
    three unrelated papers have cosine 0.58 to their own centroid but ~0 to the other two's.
    """
    kept = labels.copy()
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        others = _unit(x[members].sum(axis=0) - x[members])
        kept[members[np.sum(x[members] * others, axis=1) < FIT_COSINE]] = -1
    for label in np.unique(kept[kept >= 0]):
        if np.sum(kept == label) < MIN_CLUSTER_SIZE:
            kept[kept == label] = -1
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
    """The most distinctive unigrams and bigrams per cluster by class-based TF-IDF (BERTopic's c-TF-IDF): each
    cluster's texts form one document; tf is per class, idf = log(1 + mean words per class / term count).

    Terms found in more than half of the clusters are dropped: that removes "model", "propose", "cells",
    "patients" and every other corpus-wide word without a hand-made list (see module docstring). Bigrams are
    counted within sentences, so "...benchmark data. Protein folding..." does not make "data protein".
    """
    keys = sorted(texts_by_cluster)
    sentences, owners = [], []
    for row, key in enumerate(keys):
        for text in texts_by_cluster[key]:
            for sentence in _PHRASE_BREAK.split(text):
                sentences.append(sentence)
                owners.append(row)
    vectorizer = CountVectorizer(ngram_range=(1, 2), stop_words="english", token_pattern=r"(?u)\b[^\W\d_][\w-]+\b")
    try:
        by_sentence = vectorizer.fit_transform(sentences)
    except ValueError:  # no words at all: empty texts or only stopwords
        return {key: [] for key in texts_by_cluster}
    membership = csr_matrix((np.ones(len(owners)), (owners, range(len(owners)))), shape=(len(keys), len(owners)))
    counts = (membership @ by_sentence).tocsc()
    distinctive = np.flatnonzero(np.diff(counts.indptr) <= max(1, len(keys) // 2))  # classes holding each term
    counts, terms = counts[:, distinctive].tocsr(), vectorizer.get_feature_names_out()[distinctive]
    class_words = np.asarray(counts.sum(axis=1)).ravel()
    idf = np.log(1 + class_words.mean() / np.asarray(counts.sum(axis=0)).ravel())
    keywords = {}
    for row, key in enumerate(keys):
        columns = counts.indices[counts.indptr[row] : counts.indptr[row + 1]]
        scores = counts.data[counts.indptr[row] : counts.indptr[row + 1]] / class_words[row] * idf[columns]
        ranked = sorted(range(len(columns)), key=lambda i: (-scores[i], terms[columns[i]]))
        keywords[key] = [str(terms[columns[i]]) for i in ranked[:top_n]]
    return keywords


def representative_papers(member_ids: list[str], vectors_by_id: dict[str, np.ndarray], n: int = 3) -> list[str]:
    """The n members nearest the cluster's centroid (cosine): the papers to show or summarise for a topic.
    Ties (equal to 1e-9) go to the smaller id."""
    ids = sorted(set(member_ids))
    if not ids:
        return []
    x = _unit(np.stack([np.asarray(vectors_by_id[p], dtype=np.float64) for p in ids]))
    similarity = x @ _unit(x.mean(axis=0, keepdims=True))[0]
    return [ids[i] for i in sorted(range(len(ids)), key=lambda i: (-round(float(similarity[i]), 9), ids[i]))[:n]]


def content_key(member_ids: Iterable[str], content_keys: dict[str, str]) -> str:
    """Hash of the members and their content: equal iff the same papers with the same text (cache summaries by it)."""
    payload = "\n".join(f"{paper_id}\t{content_keys[paper_id]}" for paper_id in sorted(set(member_ids)))
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()


def project_2d(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D coordinates (row i for vectors[i]) for a topic map: t-SNE (cosine, PCA start, fixed seed, 500 iterations).

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
    with threadpool_limits(1):
        coords = tsne.fit_transform(x[canonical])
    return coords[np.argsort(canonical)]


# --- the topic map of a library -------------------------------------------------------------------------------

LABEL_KEYWORDS = 3  # keywords in a cluster's label
REPRESENTATIVES = 4  # papers nearest the centroid, shown first and quoted in extractive summaries
K_HOLD = 0.1  # an automatic k is kept until the library has grown or shrunk by this share since it was chosen


class Cluster(BaseModel):
    """One topic: its stable id, a label from its keywords, and its members (representatives first)."""

    cluster_id: str
    label: str
    keywords: list[str]
    paper_ids: list[str]
    representative_ids: list[str]
    content_key: str


class MapPoint(BaseModel):
    paper_id: str
    title: str
    cluster_id: str
    x: float
    y: float


class ClusterMap(BaseModel):
    """The library's clusters (largest first, "unclustered" last) and a 2-D point per paper."""

    library_version: str
    requested_clusters: int | None = None
    auto_k: tuple[int, int] | None = None  # (k, library size when chosen) of an automatic choice, for K_HOLD
    method: str
    quality: dict[str, float]
    clusters: list[Cluster]
    points: list[MapPoint]

    def get(self, cluster_id: str) -> Cluster | None:
        return next((c for c in self.clusters if c.cluster_id == cluster_id), None)

    def assignments(self) -> dict[str, str]:
        return {paper_id: c.cluster_id for c in self.clusters for paper_id in c.paper_ids}

    @property
    def topics(self) -> list[Cluster]:
        """The clusters proper, without the unclustered group."""
        return [c for c in self.clusters if c.cluster_id != UNCLUSTERED]


class ClusterSummary(CitedText):
    """A few cited sentences on one cluster; citations point only to its members."""

    cluster_id: str
    title: str
    content_key: str


def _label(keywords: list[str]) -> str:
    """A readable label from the top keywords: a word gives way to a listed bigram holding it ("reinforcement" ->
    "reinforcement learning"), words inside a chosen phrase are skipped, short words read as acronyms ("RL")."""
    chosen: list[str] = []
    for word in keywords:
        word = next((k for k in keywords if " " in k and word in k.split()), word)
        if any(_stems(word) & _stems(other) for other in chosen):
            continue
        chosen.append(word)
        if len(chosen) == LABEL_KEYWORDS:
            break
    if not chosen:
        return "Miscellaneous"
    label = ", ".join(" ".join(w.upper() if len(w) <= 3 else w for w in phrase.split()) for phrase in chosen)
    return label[0].upper() + label[1:]


def _stems(phrase: str) -> set[str]:
    return {w.removesuffix("s") for w in phrase.split()}


def paper_text(paper: Paper) -> str:
    return paper.abstract if paper.title_derived else f"{paper.title}. {paper.abstract}"


def build_map(
    stored: list[StoredPaper], vectors: np.ndarray, version: str, n_clusters: int | None = None,
    previous: ClusterMap | None = None,
) -> ClusterMap:
    """Cluster a library, keep the ids of `previous` where clusters continue, and lay the papers out in 2-D.

    An automatic k is held while the library size stays within K_HOLD of the size it was chosen at: the
    sqrt(n/2) rule would otherwise step from 9 to 10 clusters when 5 papers join 179, reshuffling 16% of them.
    While k is held (or the same k is asked for again) and at most K_HOLD of the papers changed since `previous`,
    its clusters are continued rather than recomputed (cluster_papers' `start`): papers added or removed move
    few others, whichever way the library changed.
    """
    ids = [sp.paper.paper_id for sp in stored]
    papers = {sp.paper.paper_id: sp.paper for sp in stored}
    held = previous.auto_k if previous and n_clusters is None and previous.requested_clusters is None else None
    if held and abs(len(ids) - held[1]) > K_HOLD * held[1]:
        held = None
    same_k = previous is not None and (held is not None or (n_clusters is not None
                                                            and n_clusters == previous.requested_clusters))
    start = previous.assignments() if same_k and _changed_share(previous, ids) <= K_HOLD else None
    result = cluster_papers(ids, vectors, n_clusters or (held[0] if held else None), start=start)
    auto_k = None if n_clusters else held or (int(result.quality.get("k", 1)), len(ids))
    assignments = match_clusters(previous.assignments(), result.assignments) if previous else result.assignments
    members: dict[str, list[str]] = {}
    for paper_id in sorted(assignments):
        members.setdefault(assignments[paper_id], []).append(paper_id)
    keywords = cluster_keywords({c: [paper_text(papers[p]) for p in m] for c, m in members.items() if c != UNCLUSTERED})
    by_id = dict(zip(ids, vectors))
    content_keys = {sp.paper.paper_id: sp.content_key for sp in stored}
    clusters = []
    for cluster_id, paper_ids in members.items():
        representative = representative_papers(paper_ids, by_id, REPRESENTATIVES) if cluster_id != UNCLUSTERED else []
        ordered = representative + [p for p in paper_ids if p not in representative]
        words = keywords.get(cluster_id, [])
        clusters.append(Cluster(
            cluster_id=cluster_id, label=_label(words) if cluster_id != UNCLUSTERED else "Unclustered",
            keywords=words, paper_ids=ordered, representative_ids=representative,
            content_key=content_key(paper_ids, content_keys),
        ))
    clusters.sort(key=lambda c: (c.cluster_id == UNCLUSTERED, -len(c.paper_ids), _cluster_number(c.cluster_id)))
    coords = project_2d(vectors) if len(ids) else np.zeros((0, 2))
    points = [
        MapPoint(paper_id=p, title=papers[p].title, cluster_id=assignments[p], x=round(float(x), 4), y=round(float(y), 4))
        for p, (x, y) in sorted(zip(ids, coords.tolist()))
    ]
    return ClusterMap(library_version=version, requested_clusters=n_clusters, auto_k=auto_k, method=result.method,
                      quality=result.quality, clusters=clusters, points=points)


def _changed_share(previous: ClusterMap, paper_ids: list[str]) -> float:
    """Papers added or removed since `previous`, as a share of its size."""
    before = {p.paper_id for p in previous.points}
    return len(before.symmetric_difference(paper_ids)) / max(1, len(before))


def _cluster_number(cluster_id: str) -> int:
    return int(cluster_id[1:]) if cluster_id[1:].isdigit() else 0


Cached = TypeVar("Cached", ClusterMap, ClusterSummary)


class ClusterCache:
    """HOME/clusters: the last map (reused while the library is unchanged) and one file per summary.

    Plain JSON files, written whole under a unique name then renamed into place, so a killed run leaves the old
    file or the new one. Chroma holds papers and vectors; these are derived views that can always be recomputed:
    a damaged file (binary, truncated, another layout) is logged in one line and recomputed.
    """

    def __init__(self, folder: Path):
        self.folder = folder

    def load_map(self) -> ClusterMap | None:
        return _read(self.folder / "map.json", ClusterMap)

    def save_map(self, cluster_map: ClusterMap) -> None:
        write_atomic(self.folder / "map.json", cluster_map.model_dump_json())

    def load_summary(self, key: str) -> ClusterSummary | None:
        return _read(self.folder / "summaries" / f"{key}.json", ClusterSummary)

    def save_summary(self, key: str, summary: ClusterSummary) -> None:
        write_atomic(self.folder / "summaries" / f"{key}.json", summary.model_dump_json())


def _read(path: Path, model: type[Cached]) -> Cached | None:
    """A cached record, or None when there is none or it cannot be used (it is then recomputed)."""
    try:
        return model.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:  # ValidationError is a ValueError: garbage, truncation, old layouts
        log.warning("%s cannot be used (%s); recomputing it", path, " ".join(str(error).split())[:120])
        return None


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

    def summarize(self, cluster: Cluster, papers: dict[str, Paper]) -> ClusterSummary:
        ledger = Ledger()
        for paper_id in cluster.paper_ids:  # representatives first, so they get the low numbers
            ledger.add(papers[paper_id], papers[paper_id].abstract)
        usage = (0, 0)
        if self.model is None:
            title, text = cluster.label, self._extractive(cluster, ledger)
        else:
            title, text, usage = self._generate(cluster, ledger)
        cited = cite(text.strip(), ledger)  # only members are in the ledger; numbered by first appearance
        claims = support_claims(cited, None, WEAK_SUPPORT_BELOW)  # the sentences each rests on
        if cited.removed:
            log.info("cluster %s: removed %d citations to papers outside the cluster", cluster.cluster_id, cited.removed)
        return ClusterSummary(
            cluster_id=cluster.cluster_id, title=title, text=cited.text, references=reference_list(cited.citations),
            citations=cited.citations, claims=claims, provider=self.provider, model=self.model_name,
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
    def _extractive(cluster: Cluster, ledger: Ledger) -> str:
        """Keywords plus, from each representative paper, the sentence that holds most of the cluster's keywords."""
        lines = []
        for paper_id in cluster.representative_ids:
            evidence = ledger.items[paper_id]
            sentences = [s for s in SENTENCE_BREAK.split(evidence.paper.abstract) if len(s.split()) >= 6]
            if not sentences:
                continue
            best = max(sentences, key=lambda s: (sum(k in s.lower() for k in cluster.keywords), -sentences.index(s)))
            lines.append(f"- {evidence.paper.title}: {best.strip().rstrip('.')}. [{evidence.number}]")
        return prompt("cluster_extractive").format(
            size=len(cluster.paper_ids), keywords=", ".join(cluster.keywords), sentences="\n".join(lines)
        )
