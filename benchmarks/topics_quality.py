"""Topic quality on real libraries, for this checkout or another (PYTHONPATH=/work/main for "before"):

    PYTHONPATH=. python benchmarks/topics_quality.py --home /tmp/topics/seeds --home /tmp/topics/scifact:1000

Per library (HOME or HOME:SAMPLE, a fixed random sample of its papers as in cluster_choice.py), through
build_map as the app calls it: k, cosine silhouette, unclustered share, kept = papers keeping their topic id
when the library grows by 5% (the smaller library's map is the `previous` one), and the labels:
shared = share of label phrases used by >= 3 topics, fragments = label words (as shown) that are not words of
the topic's own members' titles and abstracts (as written, a capital first letter allowed), stable = labels unchanged
(same id) after a 2% change (1% of papers removed, 1% added). With --layout also trustworthiness@10 of the 2-D map:
t-SNE against topic_layout. Where the code has incremental assignment (assign_new_papers): 1% of the papers (at least
one) are added to the map of the rest and assigned in place; "assigned as a recompute would" = share of them whose topic
id equals the one a full re-clustering (continued from that map) gives them.
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter

import numpy as np

from assistant import Assistant, clusters
from assistant.clusters import build_map
from assistant.index import StoredPaper

WORD = re.compile(r"[\w-]+")


def library(spec: str) -> tuple[list[StoredPaper], np.ndarray]:
    home, _, sample = spec.partition(":")
    stored, vectors = Assistant(home=home).store.paper_vectors()
    order = np.argsort([sp.paper.paper_id for sp in stored])
    if sample and int(sample) < len(order):
        order = order[np.sort(np.random.default_rng(0).choice(len(order), int(sample), replace=False))]
    return [stored[i] for i in order], np.asarray(vectors)[order]


def subset(stored: list[StoredPaper], vectors: np.ndarray, rows: np.ndarray) -> tuple[list[StoredPaper], np.ndarray]:
    return [stored[i] for i in rows], vectors[rows]


def label_measures(cluster_map, papers: dict) -> tuple[float, int, int]:  # either code's ClusterMap
    """(share of label phrases used by >= 3 topics, fragment words, label words)."""
    topics = cluster_map.topics
    phrases = [[p.strip().lower() for p in c.label.split(",")] for c in topics]
    used = Counter(p for label in phrases for p in set(label))
    shared = sum(used[p] >= 3 for label in phrases for p in label) / max(1, sum(map(len, phrases)))
    fragments = words = 0
    for cluster in topics:
        vocabulary = {w for p in cluster.paper_ids for w in WORD.findall(f"{papers[p].title} {papers[p].abstract}")}
        shown = WORD.findall(cluster.label)
        words += len(shown)
        fragments += sum(w not in vocabulary and w[:1].lower() + w[1:] not in vocabulary for w in shown)
    return shared, fragments, words


def incremental_agreement(stored: list[StoredPaper], vectors: np.ndarray) -> str:
    """", 1% added: assigned as a recompute would X%" (or why they were not assigned in place)."""
    from assistant.index.catalog import PaperColumns

    n = len(stored)
    new = np.sort(np.random.default_rng(3).choice(n, max(1, n // 100), replace=False))
    base = build_map(*subset(stored, vectors, np.setdiff1d(np.arange(n), new)), "i0")
    papers = {sp.paper.paper_id: sp.paper for sp in stored}
    row = {sp.paper.paper_id: i for i, sp in enumerate(stored)}

    def columns(ids: list[str]) -> PaperColumns:
        return PaperColumns(list(ids), [stored[row[p]].content_key for p in ids], [papers[p].year for p in ids],
                            vectors[[row[p] for p in ids]])

    added = columns([stored[i].paper.paper_id for i in new])
    updated = clusters.assign_new_papers(base, columns(list(papers)), added, "i1",
                                         lambda ids: {p: papers[p] for p in ids}, columns)
    if updated is None:
        return f", 1% added: recomputed (drift rule), {len(added.ids)} papers"
    full = build_map(stored, vectors, "i1", previous=base).assignments()
    agree = np.mean([updated.assignments()[p] == full[p] for p in added.ids])
    return f", 1% added ({len(added.ids)}): assigned as a recompute would {agree:.0%}"


def measure(spec: str, layout: bool) -> None:
    stored, vectors = library(spec)
    n = len(stored)
    papers = {sp.paper.paper_id: sp.paper for sp in stored}
    started = time.process_time()
    full = build_map(stored, vectors, "v1")
    seconds = time.process_time() - started
    topics = full.topics
    unclustered = n - sum(len(c.paper_ids) for c in topics)
    smaller = np.sort(np.random.default_rng(1).choice(n, round(n / 1.05), replace=False))
    before = build_map(*subset(stored, vectors, smaller), "v0")
    grown = build_map(stored, vectors, "v1", previous=before)
    old, new = before.assignments(), grown.assignments()
    kept = np.mean([new[p] == c for p, c in old.items()])
    rng = np.random.default_rng(2)
    dropped = rng.choice(n, max(1, n // 100), replace=False)
    base_rows = np.setdiff1d(np.arange(n), rng.choice(np.setdiff1d(np.arange(n), dropped), max(1, n // 100),
                                                      replace=False))
    base = build_map(*subset(stored, vectors, base_rows), "b0")
    changed = build_map(*subset(stored, vectors, np.setdiff1d(np.arange(n), dropped)), "b1", previous=base)
    old_labels = {c.cluster_id: c.label for c in base.topics}
    new_labels = {c.cluster_id: c.label for c in changed.groups()}
    stable = np.mean([new_labels.get(c) == label for c, label in old_labels.items()])
    shared, fragments, words = label_measures(full, papers)
    subtopics = sum(len(getattr(c, "subtopics", [])) for c in topics)
    agreement = incremental_agreement(stored, vectors) if hasattr(clusters, "assign_new_papers") else ""
    print(
        f"{spec}: {n} papers, k={len(topics)} (+{subtopics} subtopics), silhouette {full.quality['silhouette']:.3f}, "
        f"unclustered {unclustered / n:.1%}, kept after +5% {kept:.0%}, labels shared by >=3 {shared:.0%}, "
        f"fragments {fragments}/{words} words, labels unchanged after 2% {stable:.0%}, "
        f"build_map cpu {seconds:.1f}s{agreement}"
    )
    print("   labels:", " | ".join(c.label for c in topics[:12]))
    if layout:
        from sklearn.manifold import trustworthiness

        from assistant.clusters import topic_layout, tsne_2d

        rows = {c.cluster_id: i for i, c in enumerate(topics)}
        labels = np.array([rows.get(full.assignments()[sp.paper.paper_id], -1) for sp in stored])
        for name, coords in [("t-SNE", tsne_2d(vectors)), ("topic_layout", topic_layout(vectors, labels))]:
            print(
                f"   map {name}: trustworthiness@10 "
                f"{trustworthiness(vectors, coords, n_neighbors=10, metric='cosine'):.3f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", action="append", required=True, help="HOME or HOME:SAMPLE")
    parser.add_argument("--layout", action="store_true", help="also compare the 2-D layouts (new code only)")
    args = parser.parse_args()
    for spec in args.home:
        measure(spec, args.layout)


if __name__ == "__main__":
    main()
