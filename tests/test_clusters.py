"""Topic clusters: synthetic blobs on the unit sphere for the rules, one run on the real seed corpus."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from seeds import seed_paper_count
from sklearn.metrics import silhouette_score

from assistant import Assistant
from assistant.clusters import (
    UNCLUSTERED,
    Clustering,
    cluster_keywords,
    cluster_papers,
    content_key,
    distinct_labels,
    map_library,
    match_clusters,
    project_2d,
    representative_papers,
)

BLOB_SIZES = (30, 25, 20, 15)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def blob_points(centers: np.ndarray, blob: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Members of one topic: cosine ~0.6 to its centre, ~0.35 to each other, ~0 to other topics (384-d)."""
    return unit(centers[blob] + rng.normal(scale=0.07, size=(count, centers.shape[1])))


def blobs(outliers: int = 4, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Four topics (ids "b<blob>-<i>") plus random directions that fit none ("out-<i>"); also the centres."""
    rng = np.random.default_rng(seed)
    centers = unit(rng.normal(size=(len(BLOB_SIZES), 384)))
    ids = [f"b{blob}-{i:02d}" for blob, size in enumerate(BLOB_SIZES) for i in range(size)]
    ids += [f"out-{i}" for i in range(outliers)]
    parts = [blob_points(centers, blob, size, rng) for blob, size in enumerate(BLOB_SIZES)]
    vectors = np.vstack([*parts, unit(rng.normal(size=(outliers, 384)))])
    return ids, vectors, centers


def groups(assignments: dict[str, str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for paper_id, cluster in assignments.items():
        out.setdefault(cluster, set()).add(paper_id)
    return out


def blob_of(paper_id: str) -> str:
    return paper_id.split("-")[0]


def test_same_result_twice_and_in_any_input_order() -> None:
    ids, vectors, _ = blobs()
    first = cluster_papers(ids, vectors)
    shuffle = np.random.default_rng(7).permutation(len(ids))
    shuffled = cluster_papers([ids[i] for i in shuffle], vectors[shuffle])
    assert cluster_papers(ids, vectors) == first
    assert shuffled == first


def test_automatic_k_finds_the_blobs_and_outliers_go_unclustered() -> None:
    ids, vectors, _ = blobs()
    result = cluster_papers(ids, vectors)
    # Largest blob first: b0 (30) -> c1 ... b3 (15) -> c4; the random directions fit none of them.
    expected = {paper_id: UNCLUSTERED if paper_id.startswith("out") else f"c{int(paper_id[1]) + 1}" for paper_id in ids}
    assert result.assignments == expected
    assert result.quality["clusters"] == 4
    assert result.quality["unclustered"] == 4
    assert result.quality["unclustered_share"] == pytest.approx(4 / 94)
    assert result.quality["silhouette"] > 0.3


def test_automatic_k_without_outliers_is_the_blob_count() -> None:
    ids, vectors, _ = blobs(outliers=0)
    result = cluster_papers(ids, vectors)
    assert result.method == "ward+kmeans k=4"  # default_k(90) would be 7: silhouette overrides it
    assert sorted(len(m) for m in groups(result.assignments).values()) == sorted(BLOB_SIZES)


def test_n_clusters_is_honoured() -> None:
    ids, vectors, _ = blobs(outliers=0)
    for k in (5, 6, 8):  # more clusters than topics: blobs split, every paper still placed
        result = cluster_papers(ids, vectors, n_clusters=k)
        assert result.method == f"ward+kmeans k={k}"
        assert result.quality["clusters"] == k
        assert len(set(result.assignments.values())) == k
        # Pieces of one blob, never a mix of two.
        assert all(len({blob_of(p) for p in m}) == 1 for m in groups(result.assignments).values())


def test_tiny_corpora() -> None:
    empty = Clustering({}, "empty", {"clusters": 0.0, "unclustered_share": 0.0})
    assert cluster_papers([], np.zeros((0, 384))) == empty
    ids, vectors, _ = blobs(outliers=0)
    assert cluster_papers(ids[:1], vectors[:1]).assignments == {"b0-00": "c1"}
    assert set(cluster_papers(ids[:5], vectors[:5]).assignments.values()) == {"c1"}
    few = cluster_papers(ids[25:35], vectors[25:35], n_clusters=50)  # more clusters asked than papers: no crash
    assert len(few.assignments) == 10
    with pytest.raises(ValueError):
        cluster_papers(["a", "a"], vectors[:2])
    with pytest.raises(ValueError):
        cluster_papers(ids, vectors, n_clusters=0)


def test_match_clusters_keeps_ids_when_papers_come_and_go() -> None:
    ids, vectors, centers = blobs()
    renames = {"c1": "c7", "c2": "c3", "c3": "c9", "c4": "c4", UNCLUSTERED: UNCLUSTERED}  # stable ids of a past run
    stable = {p: renames[c] for p, c in cluster_papers(ids, vectors).assignments.items()}
    # Blob 3 grows by 12 papers (15 -> 27: 2nd largest, so its provisional id changes); one b0 paper goes.
    added = blob_points(centers, 3, 12, np.random.default_rng(99))
    new_ids = [p for p in ids if p != "b0-00"] + [f"b3-new{i:02d}" for i in range(12)]
    new_vectors = np.vstack([vectors[1:], added])
    provisional = cluster_papers(new_ids, new_vectors).assignments
    assert provisional["b3-00"] == "c2" and stable["b3-00"] == "c4"
    matched = match_clusters(stable, provisional)
    assert {p: matched[p] for p in stable if p in matched} == {p: c for p, c in stable.items() if p != "b0-00"}
    assert {matched[f"b3-new{i:02d}"] for i in range(12)} == {"c4"}
    assert match_clusters(stable, provisional) == matched


def test_match_clusters_gives_fresh_ids_to_new_clusters() -> None:
    old = {f"p{i:02d}": "c1" for i in range(10)} | {f"p{i:02d}": "c5" for i in range(10, 20)} | {"x": UNCLUSTERED}
    new = (
        {f"p{i:02d}": "c1" for i in range(3, 10)}  # 7/10 of old c1
        | {f"p{i:02d}": "c2" for i in (0, 1, 10, 11)}  # 2 from each: Jaccard 0.2 with either -> fresh
        | {f"p{i:02d}": "c3" for i in range(12, 20)}  # 8/10 of old c5
        | {f"q{i}": "c4" for i in range(5)}  # only new papers -> fresh
        | {"p02": UNCLUSTERED, "x": UNCLUSTERED}
    )
    matched = match_clusters(old, new)
    assert {c: sorted(m) for c, m in groups(matched).items()} == {
        "c1": [f"p{i:02d}" for i in range(3, 10)],
        "c5": [f"p{i:02d}" for i in range(12, 20)],
        "c6": [f"q{i}" for i in range(5)],  # larger fresh cluster numbered first
        "c7": ["p00", "p01", "p10", "p11"],
        UNCLUSTERED: ["p02", "x"],
    }
    assert match_clusters({}, {"a": "c2", "b": "c2", "c": "c1"}) == {"a": "c1", "b": "c1", "c": "c2"}


def test_cluster_keywords_finds_the_planted_words() -> None:
    filler = "In this paper we propose a novel method, and our model shows strong results on the benchmark data."
    texts = {
        "c1": [f"{filler} Protein folding predicts structure.", f"Protein folding works. {filler}", "Protein folding."],
        "c2": [f"{filler} Speech recognition in noise.", f"Speech recognition. {filler}"],
        "c3": [f"{filler} Graph coloring heuristics.", f"Graph coloring. {filler}", "Graph coloring bounds."],
    }
    keywords = cluster_keywords(texts, top_n=3)
    assert keywords == {
        "c1": ["folding", "protein", "protein folding"],
        "c2": ["recognition", "speech", "speech recognition"],
        "c3": ["coloring", "graph", "graph coloring"],
    }
    everything = cluster_keywords(texts, top_n=100)
    assert everything["c2"] == ["recognition", "speech", "speech recognition"]  # "noise": in one text only
    assert not {"paper", "propose", "model", "results", "data", "benchmark data"} & set(sum(everything.values(), []))
    assert cluster_keywords(dict(reversed(texts.items())), top_n=3) == keywords


def test_cluster_keywords_ties_and_edge_cases() -> None:
    assert cluster_keywords({"b": ["Beta alpha."], "a": ["Gamma delta."]}) == {
        "a": ["delta", "gamma", "gamma delta"],  # equal scores: alphabetical
        "b": ["alpha", "beta", "beta alpha"],
    }
    assert cluster_keywords({"c1": ["Protein folding protein."]}, top_n=2) == {"c1": ["protein", "folding"]}
    assert cluster_keywords({"c1": [""], "c2": ["the and of"]}) == {"c1": [], "c2": []}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a topic with no subtopics asks for none: no "mean of empty slice"
        assert cluster_keywords({}) == {}


def test_representative_papers_are_nearest_the_centroid() -> None:
    vectors = {
        "far-a": np.array([1.0, 2.0, 0.0]),
        "far-b": np.array([1.0, -2.0, 0.0]),
        "mid-a": np.array([1.0, 0.0, 0.5]),
        "mid-b": np.array([1.0, 0.0, -0.5]),
        "near-b": np.array([1.0, -0.1, 0.0]),
        "near-a": np.array([1.0, 0.1, 0.0]),
    }  # symmetric, so the centroid is the x axis
    members = list(vectors)
    assert representative_papers(members, np.stack(list(vectors.values()))) == ["near-a", "near-b", "mid-a"]
    everyone = ["near-a", "near-b", "mid-a", "mid-b", "far-a", "far-b"]
    assert representative_papers(members[::-1], np.stack([vectors[p] for p in members[::-1]]), n=10) == everyone
    tied = {"b": np.array([1.0, 1.0]), "a": np.array([1.0, -1.0]), "c": np.array([1.0, 0.0])}  # a and b tie
    assert representative_papers(list(tied), np.stack(list(tied.values()))) == ["c", "a", "b"]
    assert representative_papers([], np.zeros((0, 3))) == []


def test_content_key_changes_iff_members_or_their_content_change() -> None:
    keys = {"a": "k1", "b": "k2", "c": "k3"}
    base = content_key(["a", "b"], keys)
    assert content_key(["b", "a"], keys) == base
    assert content_key(iter(["a", "b", "a"]), keys | {"c": "changed"}) == base
    assert content_key(["a", "b", "c"], keys) != base
    assert content_key(["a"], keys) != base
    assert content_key(["a", "b"], keys | {"b": "k2-edited"}) != base
    assert len(base) == 40


def test_project_2d_is_deterministic_and_shaped() -> None:
    ids, vectors, _ = blobs()
    coords = project_2d(vectors)
    assert coords.shape == (94, 2)
    assert np.array_equal(project_2d(vectors), coords)
    shuffle = np.random.default_rng(3).permutation(len(ids))
    assert np.array_equal(project_2d(vectors[shuffle]), coords[shuffle])  # row order does not matter
    blob_labels = [blob_of(p) for p in ids[:90]]
    assert silhouette_score(coords[:90], blob_labels) > 0.5  # the four topics are apart on the map
    assert project_2d(np.zeros((0, 384))).shape == (0, 2)
    assert project_2d(vectors[:1]).shape == (1, 2)


@pytest.fixture(scope="module")
def seed_library(seeded_home: Path) -> tuple[list[str], np.ndarray, dict[str, str]]:
    """Paper ids, paper-level vectors and title+abstract texts of the seed corpus (ingested once per session)."""
    lib = Assistant(home=seeded_home)
    stored, vectors = lib.store.paper_vectors()
    texts = {p.paper_id: p.abstract if p.title_derived else f"{p.title}. {p.abstract}" for p in lib.papers()}
    return [sp.paper.paper_id for sp in stored], vectors, texts


def test_seed_corpus_clusters(seed_library: tuple[list[str], np.ndarray, dict[str, str]]) -> None:
    ids, vectors, texts = seed_library
    result = cluster_papers(ids, vectors)
    members = groups(result.assignments)
    unclustered = len(members.get(UNCLUSTERED, ()))
    keywords = cluster_keywords({c: [texts[p] for p in sorted(m)] for c, m in members.items()}, top_n=5)
    print(f"\nseed corpus: {result.method}, {result.quality['clusters']:.0f} clusters, {unclustered} unclustered")
    print({k: round(v, 3) for k, v in result.quality.items()})
    for cluster in ("c1", "c2", "c3"):
        print(cluster, len(members[cluster]), keywords[cluster])
    assert len(ids) == seed_paper_count() and set(result.assignments) == set(ids)
    assert 4 <= result.quality["clusters"] <= 14
    assert unclustered <= 0.10 * len(ids)
    assert min(len(m) for c, m in members.items() if c != UNCLUSTERED) >= 3
    assert result.quality["silhouette"] > 0.05
    assert any("reinforcement learning" in words for words in keywords.values())  # the seeds' main topic is found
    assert cluster_papers(ids[::-1], vectors[::-1]) == result


# --- the library's clusters, summaries, report, and the agent's cluster tools -----------------------------------

FIVE_NEW_PAPERS = """
@article{new1, title={Mean Field Games for Large Populations of Learning Agents}, year={2024},
  abstract={We study multi-agent reinforcement learning with thousands of agents through mean field games. Each agent
  responds to the average behaviour of the population, which makes learning tractable. Experiments on traffic
  routing show stable policies.}}
@article{new2, title={Federated Fine-Tuning of Language Models on Edge Clients}, year={2024},
  abstract={Federated learning lets clients train a shared model without sending their data. We fine-tune language
  models across edge clients with compressed updates and show accuracy close to centralized training.}}
@article{new3, title={Pruning Attention Heads Without Retraining}, year={2023},
  abstract={Large networks can be pruned after training. We remove attention heads by a saliency criterion without
  retraining and keep ImageNet accuracy within one point while halving inference cost.}}
@article{new4, title={Message Passing Limits of Graph Neural Networks}, year={2023},
  abstract={Graph neural networks aggregate messages from node neighbourhoods. We bound their expressive power on
  graphs with long-range dependencies and propose a rewiring scheme that improves node classification.}}
@article{new5, title={Self-Supervised Video Representations from Temporal Order}, year={2022},
  abstract={We learn video representations without labels by predicting the temporal order of clips. The
  self-supervised features transfer to action recognition and temporal segmentation benchmarks.}}
"""


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITASSIST_LLM_PROVIDER", "offline")


def test_clusters_none_is_the_current_map_whatever_its_k(seeded_copy: Path, offline: None) -> None:
    """One method: a number asks for that many topics, "auto" for k chosen, None for the map the library has now
    (what the app's chat and the agent use after the Explore tab picked a k)."""
    lib = Assistant(home=seeded_copy)
    three = lib.clusters(3)
    assert three.requested_clusters == 3 and len(three.topics) == 3
    assert Assistant(home=seeded_copy).clusters() == three  # the current map: k=3 is kept
    chosen = lib.clusters("auto")
    assert chosen.requested_clusters is None and len(chosen.topics) != 3
    assert Assistant(home=seeded_copy).clusters() == chosen


def test_library_clusters_are_cached_deterministic_and_keep_ids_when_papers_are_added(
    seeded_copy: Path, tmp_path: Path, offline: None
) -> None:
    lib = Assistant(home=seeded_copy)
    first = lib.clusters()
    assert Assistant(home=seeded_copy).clusters() == first  # reused while the library is unchanged
    (seeded_copy / "clusters" / "map.json").unlink()
    assert Assistant(home=seeded_copy).clusters() == first  # and recomputed from scratch, identical
    unclustered = first.get(UNCLUSTERED)
    assert 4 <= len(first.topics) <= 14 and (
        unclustered is None or len(unclustered.paper_ids) <= 0.1 * first.paper_count
    )
    assert sorted(p for c in first.groups() for p in c.paper_ids) == sorted(p.paper_id for p in first.points)

    bib = tmp_path / "five.bib"
    bib.write_text(FIVE_NEW_PAPERS, encoding="utf-8")
    assert lib.ingest([bib]).new == 5
    grown = Assistant(home=seeded_copy).clusters()
    assert len(grown.points) == 184
    before, after = first.assignments(), grown.assignments()
    kept = sum(after[p] == c for p, c in before.items()) / len(before)
    print(f"\nafter adding five papers: {kept:.1%} of papers keep their cluster id; "
          f"{len(first.topics)} -> {len(grown.topics)} clusters")
    assert kept >= 0.85  # the map is continued from the previous centroids, so added papers move little
    assert {c.cluster_id for c in first.topics} <= {c.cluster_id for c in grown.topics}


def test_summaries_cite_only_members_of_their_cluster(seeded_home: Path) -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from assistant.clusters import ClusterSummarizer

    lib = Assistant(home=seeded_home)
    cluster = lib.clusters().topics[0]
    outsider = next(p.paper_id for p in lib.clusters().points if p.paper_id not in cluster.paper_ids)
    reply = (f"Title: Deep reinforcement learning at scale\nThese papers train agents with value functions [1][2]. "
             f"Some study multi-agent settings [{outsider}][3]. Others do something else entirely [99].")
    model = GenericFakeChatModel(messages=iter([AIMessage(reply)]))
    summary = ClusterSummarizer(model, "openai-compatible", "fake", 8192, 700).summarize(
        cluster, lib.store.get_papers(cluster.paper_ids))
    assert summary.title == "Deep reinforcement learning at scale"
    assert summary.removed_citations == 2  # the outsider and the number that names no evidence
    assert [c.paper_id for c in summary.citations] == cluster.paper_ids[:3]
    assert outsider not in summary.text and "[99]" not in summary.text
    assert not summary.extractive and summary.usage.prompt_tokens > 0
    offline = ClusterSummarizer(None, "offline", None, 8192, 700)
    assert offline.evidence_ids(cluster) == cluster.representative_ids  # all an extractive summary reads
    assert ClusterSummarizer(model, "openai-compatible", "fake", 8192, 700).evidence_ids(cluster) == cluster.paper_ids


def test_offline_summaries_are_extractive_cited_and_cached(seeded_copy: Path, offline: None) -> None:
    lib = Assistant(home=seeded_copy)
    cluster = lib.clusters().topics[1]
    cached = seeded_copy / "clusters" / "summaries"
    shutil.rmtree(cached, ignore_errors=True)  # the copied home may hold summaries other tests cached in it
    summary = lib.cluster_summary(cluster.cluster_id)
    assert summary.extractive and summary.text.startswith("**Extractive summary**")
    assert summary.citations and {c.paper_id for c in summary.citations} <= set(cluster.representative_ids)
    assert all(f"[{c.number}]" in summary.text for c in summary.citations)
    assert Assistant(home=seeded_copy).cluster_summary(cluster.cluster_id) == summary
    assert len(list(cached.glob("*.json"))) == 1
    with pytest.raises(KeyError, match="no cluster 'c999'"):
        lib.cluster_summary("c999")


def test_summarize_writes_the_report_resumes_and_reruns_change_nothing(
    seeded_copy: Path, tmp_path: Path, offline: None
) -> None:
    lib = Assistant(home=seeded_copy)
    out = tmp_path / "report"
    topics = lib.clusters().topics
    clusters = sum(1 + len(t.subtopics) for t in topics)  # a summary per topic and per subtopic

    def interrupt_after_three(stage: str, done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lib.summarize(out, progress=interrupt_after_three)
    resumed = Assistant(home=seeded_copy).summarize(out)
    assert (resumed.summarized, resumed.cached) == (clusters - 3, 3)  # only what was missing
    files = {Path(f).name for f in resumed.files}
    assert files == {"report.md", "report.html", "clusters.json", "references.bib", "topic_map.png"}
    contents = {name: (out / name).read_bytes() for name in files}

    again = Assistant(home=seeded_copy).summarize(out)
    assert (again.summarized, again.cached) == (0, clusters)
    assert {name: (out / name).read_bytes() for name in files} == contents  # byte for byte

    data = json.loads(contents["clusters.json"])
    members = {c["id"]: set(c["members"]) for c in data["clusters"]}
    for cluster in data["clusters"]:
        assert {c["paper_id"] for c in cluster["citations"]} <= members[cluster["id"]]
    cited = {c["paper_id"] for cluster in data["clusters"] for c in cluster["citations"]}
    assert contents["references.bib"].decode().count("\n@") + 1 == len(cited)
    report = contents["report.md"].decode()
    assert report.startswith("# Topic report") and "![Topic map](topic_map.png)" in report
    assert report.count("\n## c") == len(topics) and report.count("\n### c") == clusters - len(topics)
    assert contents["topic_map.png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert Assistant(home=seeded_copy).summarize(out, force=True).summarized == clusters


def test_summarize_and_clusters_cli(seeded_copy: Path, tmp_path: Path, offline: None,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from assistant.cli import app

    runner = CliRunner()
    out = tmp_path / "report"
    result = runner.invoke(app, ["--home", str(seeded_copy), "summarize", "--out", str(out), "--format", "md"])
    assert result.exit_code == 0, result.output
    assert (out / "report.md").exists() and not (out / "report.html").exists()
    bad = runner.invoke(app, ["--home", str(seeded_copy), "summarize", "--out", str(out), "--format", "pdf"])
    assert bad.exit_code == 2 and "unknown format 'pdf'" in bad.output
    listing = runner.invoke(app, ["--home", str(seeded_copy), "clusters", "--json"])
    assert listing.exit_code == 0 and json.loads(listing.stdout)["topics"][0]["cluster_id"] == "c1"

    def every_record(self: Assistant) -> None:
        raise AssertionError("`clusters` read every paper (4.7 GB at 1M) for a few titles")

    monkeypatch.setattr(Assistant, "papers", every_record)
    shown = runner.invoke(app, ["--home", str(seeded_copy), "clusters"])
    assert shown.exit_code == 0, shown.output
    first = Assistant(home=seeded_copy).clusters().topics[0]
    assert Assistant(home=seeded_copy).paper(first.representative_ids[0]).title[:40] in " ".join(shown.stdout.split())
    empty = runner.invoke(app, ["--home", str(tmp_path / "empty"), "summarize", "--out", str(out)])
    assert empty.exit_code == 1 and "library is empty" in empty.output


def test_offline_ask_about_themes_lists_clusters_with_citations(seeded_home: Path, offline: None) -> None:
    lib = Assistant(home=seeded_home)
    answer = lib.ask("What are the main themes in my library?")
    cluster_map = lib.clusters()
    assert [s.tool for s in answer.steps] == ["search_papers", "list_clusters"]
    assert all(c.label in answer.text for c in cluster_map.topics)
    representatives = {p for c in cluster_map.topics for p in c.representative_ids[:2]}
    assert {c.paper_id for c in answer.citations} == representatives
    assert [c.number for c in answer.citations] == list(range(1, len(representatives) + 1))
    assert {e.paper.paper_id for e in answer.evidence} == representatives  # the evidence is what it cites
    assert answer.extractive and not answer.abstained


def test_agent_cluster_tools_list_and_summarize_with_citations(seeded_home: Path, offline: None) -> None:
    from langchain_core.messages import AIMessage
    from test_agent import ScriptedChatModel, tool_call

    from assistant.agent import Agent

    lib = Assistant(home=seeded_home)
    c1 = lib.clusters().get("c1")
    script = [
        tool_call("list_clusters"),
        tool_call("cluster_summary", cluster_id="c1"),
        tool_call("cluster_summary", cluster_id="c999"),
        AIMessage(
            f"The largest theme is {c1.label} [{c1.representative_ids[0]}], see also [{c1.representative_ids[1]}]."
        ),
    ]
    model = ScriptedChatModel(messages=iter(script), calls=[])
    agent = Agent(lib.retriever, lib.store, lib.settings, model, "openai-compatible", "scripted", topics=lib)
    events = list(agent.run("What are the main themes in my library?"))
    answer = events[-1].answer
    assert [s.tool for s in answer.steps] == ["search_papers", "list_clusters", "cluster_summary", "cluster_summary"]
    assert answer.steps[3].summary == "not found"
    assert [c.paper_id for c in answer.citations] == c1.representative_ids[:2]
    assert answer.removed_citations == 0
    system_prompt = str(model.calls[0][0].content)
    assert "list_clusters" in system_prompt and "cluster_summary" in system_prompt
    tool_results = [str(m.content) for m in model.calls[2] if m.type == "tool"]
    assert c1.label in tool_results[0] and tool_results[1].startswith("Cluster c1: ")
    assert "no cluster 'c999'" in str(model.calls[3][-2].content)  # the last tool result, before the final-step nudge


def kept_share(before: dict[str, str], after: dict[str, str]) -> float:
    """Share of the papers present in both maps that kept their cluster id."""
    common = before.keys() & after.keys()
    return sum(before[p] == after[p] for p in common) / len(common)


@pytest.mark.parametrize("pick", ["spread", "one_topic_centre"])
def test_removing_two_percent_of_papers_keeps_every_cluster_and_nine_in_ten_papers(
    seeded_copy: Path, offline: None, pick: str
) -> None:
    """Removal is as stable as addition: 2% of the papers go (spread over the library, or the most central papers
    of the largest topic), every cluster id survives and >= 90% of the remaining papers keep their cluster."""
    lib = Assistant(home=seeded_copy)
    first = lib.clusters()
    count = max(1, round(0.02 * len(first.points)))
    if pick == "spread":
        ids = sorted(p.paper_id for p in first.points)
        victims = ids[:: len(ids) // count][:count]
    else:
        victims = first.topics[0].paper_ids[:count]  # representatives first: the topic's centre
    assert len(lib.remove(paper_ids=victims).removed) == count
    after = Assistant(home=seeded_copy).clusters()
    kept = kept_share(first.assignments(), after.assignments())
    print(f"\nremoved {count} papers ({pick}): {kept:.1%} of the rest keep their cluster; "
          f"{len(first.topics)} -> {len(after.topics)} clusters")
    assert {c.cluster_id for c in first.topics} <= {c.cluster_id for c in after.topics}
    assert kept >= 0.90


def test_sampled_tree_finds_the_blobs_in_any_order_and_keeps_ids_as_the_library_grows() -> None:
    """Above the tree's sample size (here 60 of 360 papers) the sampled Ward tree + k-means over all papers still
    finds the topics, gives the same result for the same papers in any order, and a 5% growth keeps ids."""
    rng = np.random.default_rng(3)
    centers = unit(rng.normal(size=(6, 384)))
    ids = [f"b{blob}-{i:03d}" for blob in range(6) for i in range(60)]
    vectors = np.vstack([blob_points(centers, blob, 60, rng) for blob in range(6)]).astype(np.float32)
    result = cluster_papers(ids, vectors, ward_sample=60)
    assert "steadiest of 3 trees over 60 sampled papers" in result.method
    assert all(len({blob_of(p) for p in members}) == 1 for members in groups(result.assignments).values())
    assert len(groups(result.assignments)) == 6
    order = rng.permutation(len(ids))
    assert cluster_papers([ids[i] for i in order], vectors[order], ward_sample=60).assignments == result.assignments
    fewer = np.sort(rng.choice(len(ids), round(len(ids) / 1.05), replace=False))
    before = cluster_papers([ids[i] for i in fewer], vectors[fewer], ward_sample=60).assignments
    after = match_clusters(before, result.assignments)
    assert np.mean([after[p] == c for p, c in before.items()]) > 0.95


def test_a_label_names_each_word_once_whatever_its_inflection() -> None:
    """A seed subtopic read "Network pruning, pruned model, prune": one word three times."""
    labels = distinct_labels({"c1": ["network pruning", "pruned model", "prune", "sparsity", "speedup"],
                              "c2": ["values", "value alignment", "moral", "need"]})
    assert labels == {"c1": "Network pruning, sparsity, speedup", "c2": "Values, moral, need"}


def test_the_map_reads_titles_and_abstracts_as_the_records_hold_them(seeded_copy: Path, tmp_path: Path) -> None:
    """store.paper_texts (json_extract, no Paper built) gives what the records give, untitled papers included, and
    the map made from it equals the one made from the records."""
    untitled = tmp_path / "untitled.jsonl"
    untitled.write_text(json.dumps({"abstract": "Protein folding in living cells shapes every structure we see. "
                                    "A second sentence follows here."}) + "\n", encoding="utf-8")
    lib = Assistant(home=seeded_copy)
    assert lib.ingest([untitled]).new == 1
    ids = [p.paper_id for p in lib.papers()]
    texts, records = lib.store.paper_texts(ids), lib.store.get_papers(ids)
    assert texts.keys() == records.keys() and any(t.title_derived for t in texts.values())
    assert all((t.title, t.abstract, t.title_derived) == (records[p].title, records[p].abstract,
                                                           records[p].title_derived) for p, t in texts.items())
    columns = lib.store.paper_columns()
    assert (map_library(columns, lib.store.paper_texts, "v").model_dump()
            == map_library(columns, lib.store.get_papers, "v").model_dump())
