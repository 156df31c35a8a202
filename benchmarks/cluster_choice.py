"""Which clustering method for the topic map: print, per candidate, clusters, silhouette, unclustered share, runtime.

    python benchmarks/cluster_choice.py [--seeds-home /tmp/clu-home] [--scifact-home DIR] [--sample 1000] [--full]

Candidates run on the paper-level embeddings of the seed corpus and of a SciFact sample. Centroid methods share
the module's misfit rule (cosine to the rest of the cluster < FIT_COSINE, or a cluster under MIN_CLUSTER_SIZE ->
unclustered), so their unclustered shares compare; HDBSCAN's unclustered papers are its noise.
Columns: k = clusters after the misfit rule; silhouette (cosine) over clustered papers; largest = the biggest
cluster's share (a giant cluster is no topic map); kept = share of papers that keep their cluster id (via
match_clusters) when the library grows by 5% and is clustered again: what a user sees of stability.
Then keywords (plain c-TF-IDF vs the module's, which drops terms found in over half the clusters) and the 2-D
map (PCA vs project_2d's t-SNE). The winners live in assistant/clusters.py; its docstring quotes these numbers.
Run with OPENBLAS_NUM_THREADS=1 on a shared machine: BLAS threads fighting over 2 busy cores distort timings.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter
from collections.abc import Callable

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.cluster import HDBSCAN, AgglomerativeClustering, KMeans
from sklearn.decomposition import PCA
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.manifold import trustworthiness
from sklearn.metrics import silhouette_score

from assistant import Assistant
from assistant.clusters import (
    UNCLUSTERED,
    Rows,
    _cut_centroids,
    _drop_misfits,
    _silhouette,
    _unit,
    candidate_ks,
    cluster_keywords,
    cluster_papers,
    default_k,
    match_clusters,
    project_2d,
)
from assistant.clusters import (
    kmeans as lloyd,
)

SCIFACT_HOME = "/root/.cache/litassist/eval/scifact-9d3febb426"
Labeler = Callable[[np.ndarray], np.ndarray]  # unit vectors (rows sorted by paper id) -> labels, -1 = unclustered
PAPER_WORDS = {"paper", "propose", "proposed", "method", "methods", "results", "approach", "model", "models"}


def best_by_silhouette(x: np.ndarray, ks: list[int], fit: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
    scored = [(_silhouette(x, labels, 0), -k, labels) for k in ks for labels in [fit(x, k)]]
    return _drop_misfits(whole(x), max(scored, key=lambda item: item[:2])[2])


def all_ks(n: int) -> list[int]:
    return list(range(2, max(3, min(40, math.ceil(math.sqrt(n)))) + 1))


def whole(x: np.ndarray) -> Rows:
    return Rows(x, np.arange(len(x)))


def _ward_kmeans(x: np.ndarray, tree: np.ndarray, k: int) -> np.ndarray:
    """The module's Ward cut polished by its k-means, over all of x."""
    return lloyd(whole(x), _cut_centroids(x, tree, k))[0]


def kmeans(x: np.ndarray, k: int) -> np.ndarray:
    return KMeans(k, n_init=3, random_state=0).fit_predict(x)


def ward_kmeans(x: np.ndarray, k: int) -> np.ndarray:
    return _ward_kmeans(x, linkage(x, "ward"), k)


def ward(x: np.ndarray, k: int) -> np.ndarray:
    return fcluster(linkage(x, "ward"), k, "maxclust") - 1


def average_cosine(x: np.ndarray, k: int) -> np.ndarray:
    return AgglomerativeClustering(k, metric="cosine", linkage="average").fit_predict(x)


def hdbscan(min_size: int, dims: int | None) -> Labeler:
    """HDBSCAN on the unit vectors (euclidean there ranks like cosine), optionally on a PCA reduction first."""

    def label(x: np.ndarray) -> np.ndarray:
        space = x if dims is None else _unit(PCA(dims, random_state=0).fit_transform(x))
        return HDBSCAN(min_cluster_size=min_size, copy=True).fit_predict(space)

    return label


def hdbscan_reassigned(min_size: int, dims: int) -> Labeler:
    """HDBSCAN on PCA dims, then noise joins its nearest cluster centroid (BERTopic's outlier reduction)."""

    def label(x: np.ndarray) -> np.ndarray:
        labels = hdbscan(min_size, dims)(x)
        if labels.max() < 0:
            return labels
        centroids = _unit(np.stack([x[labels == c].mean(axis=0) for c in range(labels.max() + 1)]))
        labels = np.where(labels >= 0, labels, np.argmax(x @ centroids.T, axis=1))
        return _drop_misfits(whole(x), labels)

    return label


def module_choice(x: np.ndarray) -> np.ndarray:
    ids = [f"{i:06d}" for i in range(len(x))]
    assignments = cluster_papers(ids, x).assignments
    names = sorted({c for c in assignments.values() if c != UNCLUSTERED}, key=lambda c: int(c[1:]))  # c1 -> 0
    return np.array([-1 if assignments[p] == UNCLUSTERED else names.index(assignments[p]) for p in ids])


def candidates(n: int) -> dict[str, Labeler]:
    bounded = f"k={candidate_ks(n)[0]}..{candidate_ks(n)[-1]}"
    return {
        f"kmeans silhouette k=2..{all_ks(n)[-1]}": lambda x: best_by_silhouette(x, all_ks(len(x)), kmeans),
        f"kmeans silhouette {bounded}": lambda x: best_by_silhouette(x, candidate_ks(len(x)), kmeans),
        f"ward silhouette {bounded}": lambda x: best_by_silhouette(x, candidate_ks(len(x)), ward),
        f"avg-cosine silhouette {bounded}": lambda x: best_by_silhouette(x, candidate_ks(len(x)), average_cosine),
        "hdbscan min_cluster_size=5": hdbscan(5, None),
        "hdbscan pca10 min_cluster_size=5": hdbscan(5, 10),
        "hdbscan pca10 mcs=5 + reassign": hdbscan_reassigned(5, 10),
        "hdbscan pca10 mcs=10 + reassign": hdbscan_reassigned(10, 10),
        f"ward+kmeans silhouette {bounded}": lambda x: best_by_silhouette(x, candidate_ks(len(x)), ward_kmeans),
        f"CHOSEN ward+kmeans default k={default_k(n)} unless beaten": module_choice,
    }


def kept_ids(old_labels: np.ndarray, old_rows: np.ndarray, new_labels: np.ndarray) -> float:
    """Share of the old papers whose stable cluster id is unchanged after re-clustering the grown library."""

    def assignments(rows: np.ndarray, labels: np.ndarray) -> dict[str, str]:
        names = [UNCLUSTERED if label < 0 else f"c{label + 1}" for label in labels.tolist()]
        return {f"{row:06d}": name for row, name in zip(rows, names)}

    old = assignments(old_rows, old_labels)
    new = match_clusters(old, assignments(np.arange(len(new_labels)), new_labels))
    return float(np.mean([new[paper] == cluster for paper, cluster in old.items()]))


def measure(name: str, x: np.ndarray) -> None:
    print(f"\n== {name}: {len(x)} papers")
    print(f"{'method':44} {'k':>3} {'silhouette':>10} {'unclustered':>12} {'largest':>8} {'kept':>7} {'seconds':>8}")
    before = np.sort(np.random.default_rng(1).choice(len(x), round(len(x) / 1.05), replace=False))
    for method, labeler in candidates(len(x)).items():
        started = time.perf_counter()
        labels = labeler(x)
        seconds = time.perf_counter() - started
        clustered = labels >= 0
        k = len(set(labels[clustered].tolist()))
        largest = np.bincount(labels[clustered]).max() / len(x) if k else 0.0
        kept = kept_ids(labeler(x[before]), before, labels)
        print(
            f"{method:44} {k:3d} {_silhouette(x[clustered], labels[clustered], 0):10.3f} "
            f"{np.sum(~clustered):4d} ({np.mean(~clustered):4.1%}) {largest:8.1%} {kept:7.1%} {seconds:8.2f}"
        )
    tree = linkage(x, "ward")
    curve = {k: _silhouette(x, _ward_kmeans(x, tree, k), 0) for k in candidate_ks(len(x))}
    print("ward+kmeans silhouette by k:", " ".join(f"{k}:{score:.3f}" for k, score in curve.items()))


def plain_ctfidf(texts_by_cluster: dict[str, list[str]], top_n: int = 8) -> dict[str, list[str]]:
    """c-TF-IDF as in BERTopic with English stopwords only: the baseline for the module's shared-term cut."""
    keys = sorted(texts_by_cluster)
    vectorizer = CountVectorizer(ngram_range=(1, 2), stop_words="english")
    counts = vectorizer.fit_transform([" ".join(texts_by_cluster[key]) for key in keys]).toarray().astype(float)
    terms = vectorizer.get_feature_names_out()
    class_words = counts.sum(axis=1, keepdims=True)
    scores = counts / class_words * np.log(1 + class_words.mean() / counts.sum(axis=0))
    ranked = np.argsort(-scores, axis=1, kind="stable")[:, :top_n]
    return {key: [str(terms[i]) for i in ranked[row]] for row, key in enumerate(keys)}


def measure_keywords(name: str, x: np.ndarray, texts: list[str]) -> None:
    """How generic are the top-8 terms: share shared by >= 3 clusters, and how many are paper words."""
    labels = module_choice(x)
    by_cluster: dict[str, list[str]] = {}
    for label, text in zip(labels.tolist(), texts):
        if label >= 0:
            by_cluster.setdefault(f"c{label + 1}", []).append(text)
    for method, keywords in [("plain", plain_ctfidf(by_cluster)), ("module", cluster_keywords(by_cluster))]:
        counts = Counter(term for terms in keywords.values() for term in terms)
        top = [term for terms in keywords.values() for term in terms]
        shared = sum(counts[term] >= 3 for term in top) / len(top)
        paper_words = sum(term in PAPER_WORDS for term in top)
        print(
            f"keywords {name:8} {method:7} {len(keywords)} clusters: shared by >=3 clusters {shared:4.0%}, "
            f"paper words {paper_words}, most repeated {counts.most_common(4)}"
        )
        print("   ", {cluster: keywords[cluster][:5] for cluster in ("c1", "c2", "c3")})


def measure_maps(name: str, x: np.ndarray) -> None:
    """PCA vs t-SNE: trustworthiness (are 2-D neighbours real neighbours), cluster silhouette in 2-D, seconds."""
    labels = module_choice(x)
    clustered = labels >= 0
    for method, project in [("pca", pca), ("tsne", project_2d)]:
        started = time.perf_counter()
        coords = project(x)
        seconds = time.perf_counter() - started
        print(
            f"map {name:8} {method:5} "
            f"trustworthiness@10={trustworthiness(x, coords, n_neighbors=10, metric='cosine'):.3f} "
            f"2-D cluster silhouette={silhouette_score(coords[clustered], labels[clustered]):.3f} seconds={seconds:.2f}"
        )


def pca(x: np.ndarray) -> np.ndarray:
    return PCA(2, svd_solver="full").fit_transform(x)


def library(home: str, sample: int | None) -> tuple[np.ndarray, list[str]]:
    """Unit paper vectors sorted by paper id (optionally a fixed random sample) and each paper's title+abstract."""
    lib = Assistant(home=home)
    stored, vectors = lib.store.paper_vectors()
    got = {"ids": [sp.paper.paper_id for sp in stored], "embeddings": vectors}
    papers = {sp.paper.paper_id: sp.paper for sp in stored}
    order = np.argsort(got["ids"])
    if sample and sample < len(order):
        order = order[np.sort(np.random.default_rng(0).choice(len(order), sample, replace=False))]
    texts = []
    for index in order:
        paper = papers[got["ids"][index]]
        texts.append(paper.abstract if paper.title_derived else f"{paper.title}. {paper.abstract}")
    return _unit(np.asarray(got["embeddings"], dtype=np.float64)[order]), texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds-home", default="/tmp/clu-home", help="a home with the seed corpus ingested")
    parser.add_argument("--scifact-home", default=SCIFACT_HOME)
    parser.add_argument("--sample", type=int, default=1000, help="SciFact papers to sample")
    parser.add_argument("--full", action="store_true", help="also time the chosen method on all SciFact papers")
    args = parser.parse_args()
    corpora = {"seeds": library(args.seeds_home, None), "scifact": library(args.scifact_home, args.sample)}
    for name, (x, _) in corpora.items():
        measure(name, x)
    print()
    for name, (x, texts) in corpora.items():
        measure_keywords(name, x, texts)
    print()
    for name, (x, _) in corpora.items():
        measure_maps(name, x)
    if args.full:
        x, _ = library(args.scifact_home, None)
        for method, run in [("cluster_papers", module_choice), ("pca", pca), ("project_2d (t-SNE)", project_2d)]:
            started = time.perf_counter()
            out = run(x)
            seconds = time.perf_counter() - started
            if out.ndim == 2:
                quality = f"trustworthiness@10={trustworthiness(x, out, n_neighbors=10, metric='cosine'):.3f}"
            else:
                quality = f"k={len(set(out[out >= 0].tolist()))} unclustered={np.mean(out < 0):.1%}"
            print(f"full scifact ({len(x)} papers): {method} {seconds:.1f}s {quality}")


if __name__ == "__main__":
    main()
