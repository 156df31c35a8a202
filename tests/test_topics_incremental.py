"""Incremental topic maps: a small change assigns papers to the existing topics (ids, labels unchanged), a larger
one or a drifting field recomputes the map; the saved map keeps a bounded sample of points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from seeds import seed_paper_count

from assistant import Assistant
from assistant.clusters import (
    FIT_COSINE,
    POINTS_PER_TOPIC,
    UNCLUSTERED,
    ClusterMap,
    assign_new_papers,
    map_library,
    map_sample,
)
from assistant.corpus import Paper
from assistant.index.catalog import PaperColumns
from assistant.report import overview_lines

ONE_PAPER = """
@article{meanfield, title={Mean Field Games for Large Populations of Learning Agents}, year={2024},
  abstract={We study multi-agent reinforcement learning with thousands of agents through mean field games. Each agent
  responds to the average behaviour of the population, which makes learning tractable. Experiments on traffic
  routing show stable policies.}}
"""
TWO_PAPERS = """
@article{federated, title={Federated Fine-Tuning of Language Models on Edge Clients}, year={2024},
  abstract={Federated learning lets clients train a shared model without sending their data. We fine-tune language
  models across edge clients with compressed updates and show accuracy close to centralized training.}}
@article{gnn, title={Message Passing Limits of Graph Neural Networks}, year={2023},
  abstract={Graph neural networks aggregate messages from node neighbourhoods. We bound their expressive power on
  graphs with long-range dependencies and propose a rewiring scheme that improves node classification.}}
"""


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITASSIST_LLM_PROVIDER", "offline")


def ingest(lib: Assistant, folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    lib.ingest([path])


def groups_of(cluster_map: ClusterMap) -> dict[str, tuple[str, tuple[str, ...], str]]:
    """Cluster id -> (label, keywords, content key), topics and subtopics."""
    return {c.cluster_id: (c.label, tuple(c.keywords), c.content_key) for c in cluster_map.every_cluster()}


def expected_group(groups: list, vectors: dict[str, np.ndarray], x: np.ndarray) -> str:
    """The nearest group by its members' mean unit vector (the k-means rule), unclustered under FIT_COSINE."""
    means = {g.cluster_id: np.mean([v / np.linalg.norm(v) for p, v in vectors.items() if p in set(g.paper_ids)],
                                   axis=0) for g in groups}
    best = min(means, key=lambda c: np.linalg.norm(x - means[c]))
    return best if x @ means[best] / np.linalg.norm(means[best]) >= FIT_COSINE else UNCLUSTERED


def test_a_new_paper_joins_its_nearest_topic_in_place_and_past_one_percent_the_map_is_recomputed(
    seeded_copy: Path, tmp_path: Path, offline: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = Assistant(home=seeded_copy)
    first = lib.clusters()
    seeds = seed_paper_count()
    assert first.clustered_papers == seeds and first.changed_since == 0
    ingest(lib, tmp_path, "one.bib", ONE_PAPER)  # 1 of the seed papers' count: under 1%
    columns = lib.store.paper_columns()
    new_id = next(p for p in columns.ids if p not in first.assignments())
    vectors = dict(zip(columns.ids, columns.vectors))
    x = vectors[new_id] / np.linalg.norm(vectors[new_id])

    def recompute(*args: object, **kwargs: object) -> None:
        raise AssertionError("the map was clustered again for a 0.6% change")

    monkeypatch.setattr("assistant.clusters.map_library", recompute)
    after = Assistant(home=seeded_copy).clusters()
    monkeypatch.undo()
    assert (after.paper_count, after.clustered_papers, after.changed_since) == (seeds + 1, seeds, 1)
    old, new = first.assignments(), after.assignments()
    assert all(new[p] == c for p, c in old.items())  # nobody moved
    old_subs, new_subs = first.subtopic_assignments(), after.subtopic_assignments()
    assert all(new_subs[p] == s for p, s in old_subs.items())
    topic = expected_group(first.topics, vectors, x)
    assert new[new_id] == topic
    if topic != UNCLUSTERED and first.get(topic).subtopics:
        assert new_subs.get(new_id, UNCLUSTERED) == expected_group(first.get(topic).subtopics, vectors, x)
    before_groups, after_groups = groups_of(first), groups_of(after)
    assert before_groups.keys() <= after_groups.keys()
    for cluster_id, (label, keywords, key) in before_groups.items():
        assert after_groups[cluster_id][:2] == (label, keywords)  # ids, labels and keywords stable
        joined = cluster_id in (new[new_id], new_subs.get(new_id))
        assert (after_groups[cluster_id][2] != key) == joined  # only the groups it joined are summarized again
    assert new_id in {p.paper_id for p in after.points}
    assert after.get(new[new_id]).years.get("2024", 0) == first.get(new[new_id]).years.get("2024", 0) + 1
    assert Assistant(home=seeded_copy).clusters() == after  # saved
    assert any(f"computed over {seeds} papers; 1 added or removed since then" in line
               for line in overview_lines(after))

    ingest(lib, tmp_path, "two.bib", TWO_PAPERS)  # 3 papers since the clustering: over 1% of the seeds
    recomputed = Assistant(home=seeded_copy).clusters()
    assert (recomputed.paper_count, recomputed.clustered_papers, recomputed.changed_since) == (seeds + 3,) * 2 + (0,)
    assert {c.cluster_id for c in first.topics} <= {c.cluster_id for c in recomputed.topics}
    kept = np.mean([recomputed.assignments()[p] == c for p, c in old.items()])
    assert kept >= 0.85


def test_removing_a_paper_updates_the_map_in_place(seeded_copy: Path, offline: None) -> None:
    lib = Assistant(home=seeded_copy)
    first = lib.clusters()
    victim = next(p for p in first.topics[0].paper_ids if p not in first.topics[0].representative_ids)
    assert lib.remove(paper_ids=[victim]).removed
    after = Assistant(home=seeded_copy).clusters()
    assert (after.paper_count, after.changed_since) == (178, 1)
    assert victim not in after.assignments() and victim not in {p.paper_id for p in after.points}
    assert all(after.assignments()[p] == c for p, c in first.assignments().items() if p != victim)
    assert [c.label for c in after.every_cluster()] == [c.label for c in first.every_cluster()]
    assert after.get(first.topics[0].cluster_id).content_key != first.topics[0].content_key


def blob_library(seed: int = 0) -> tuple[PaperColumns, dict[str, Paper], np.ndarray]:
    """Six topics of 100 papers on the unit sphere; each topic's texts use its own words."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(6, 384))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    ids, rows, papers = [], [], {}
    for blob in range(6):
        for i in range(100):
            paper_id = f"b{blob}-{i:03d}"
            ids.append(paper_id)
            rows.append(centers[blob] + rng.normal(scale=0.07, size=384))
            papers[paper_id] = Paper(paper_id=paper_id, title=f"Study {i} of theme{blob} methods",
                                     abstract=f"We examine theme{blob} data with theme{blob} tools and findings {i}.",
                                     year=2015 + i % 10)
    vectors = np.asarray(rows, dtype=np.float32)
    columns = PaperColumns(ids, [f"k-{p}" for p in ids], [papers[p].year for p in ids], vectors)
    return columns, papers, centers


def added(papers: dict[str, Paper], ids: list[str], vectors: np.ndarray) -> PaperColumns:
    for paper_id in ids:
        papers[paper_id] = Paper(paper_id=paper_id, title=f"New {paper_id}", abstract="new", year=2024)
    return PaperColumns(ids, [f"k-{p}" for p in ids], [2024] * len(ids), np.asarray(vectors, dtype=np.float32))


def test_assignment_rules_on_synthetic_topics() -> None:
    """Papers near a topic join it and one of its subtopics; 3+ papers that fit nothing, or more than 1% of the
    library, send the map back to a full clustering (None)."""
    columns, papers, centers = blob_library()

    def read(ids: list[str]) -> dict[str, Paper]:
        return {p: papers[p] for p in ids}

    def read_vectors(ids: list[str]) -> PaperColumns:
        rows = [columns.ids.index(p) for p in ids]
        return PaperColumns(list(ids), [], [], columns.vectors[rows])

    base = map_library(columns, read, "v1", n_clusters=6)
    assert len(base.topics) == 6 and all(t.centroid and t.subtopics for t in base.topics)
    rng = np.random.default_rng(9)
    near = added(papers, [f"new-{i}" for i in range(5)], centers[2] + rng.normal(scale=0.07, size=(5, 384)))
    listing = PaperColumns(columns.ids + near.ids, columns.content_keys + near.content_keys, columns.years + near.years,
                           np.zeros((0, 0)))
    updated = assign_new_papers(base, listing, near, "v2", read, read_vectors)
    assert updated is not None and updated.changed_since == 5
    home = base.assignments()["b2-000"]
    assert all(updated.assignments()[p] == home for p in near.ids)
    assert all(updated.subtopic_assignments().get(p, "").startswith(home + ".") for p in near.ids)
    assert all(p in {q.paper_id for q in updated.points} for p in near.ids)

    lost = added(papers, [f"odd-{i}" for i in range(4)], rng.normal(size=(4, 384)))  # random directions: no topic
    assert assign_new_papers(base, listing, lost, "v2", read, read_vectors) is None
    many = added(papers, [f"many-{i}" for i in range(7)], centers[1] + rng.normal(scale=0.07, size=(7, 384)))
    assert assign_new_papers(base, listing, many, "v2", read, read_vectors) is None  # 7 > 1% of 600
    assert assign_new_papers(updated, listing, near, "v3", read, read_vectors) is None  # 5 + 5 since clustering


def test_the_saved_map_keeps_a_bounded_sample_of_points() -> None:
    ids = [f"p{i:05d}" for i in range(3000)]
    assignments = {p: "c1" if i < 2500 else "c2" for i, p in enumerate(ids)}
    assignments[ids[-1]] = UNCLUSTERED
    always = {"c1": ["p00007", "p00013"]}
    drawn = map_sample(assignments, always)
    assert sum(assignments[p] == "c1" for p in drawn) <= POINTS_PER_TOPIC + 2
    assert {"p00007", "p00013", ids[-1]} <= drawn
    assert {p for p in ids[2500:]} <= drawn  # a topic under the cap keeps every point
    assert map_sample(assignments, always) == drawn
